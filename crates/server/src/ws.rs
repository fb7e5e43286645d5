//! One WebSocket session: decode frames, authorize, call the service, encode results, and
//! write the user's events in sequence order. Decides no domain outcome itself.

use crate::registry::{ConnHandle, Outbound};
use crate::service::{store_failed, Actor, PendingCommit};
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use beckon_core::{CommandKind, Refusal};
use beckon_proto::frames::{
    op, ActionParams, GetMessageListParams, InviteInGroupParams, InviteParams, LoginParams,
    LoginResult, ModifyParams, SetMessageReadParams,
};
use beckon_proto::{limits, CloseCode, ErrorCode};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, SplitSink};
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{futures::OwnedNotified, mpsc};

/// Malformed frames in a row after which a client is considered broken (close 4102).
const MAX_BAD_FRAMES_IN_A_ROW: u32 = 20;
/// Longest a single write may take before the client counts as too slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most queued frames written with one flush.
const WRITE_BURST: usize = 64;
/// Longest wait for the close frame to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

type Sink = SplitSink<WebSocket, Message>;

struct Session {
    user: Option<LoggedIn>,
    last_delivered: u64,
    bucket: TokenBucket,
    bad_frames_in_a_row: u32,
}

struct LoggedIn {
    actor: Actor,
    handle: Arc<ConnHandle>,
    sig_expires: tokio::time::Instant,
}

/// A standard token bucket: `rate` tokens per second, holding at most `2 * rate`.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: rate * 2.0,
            updated: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.updated).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate * 2.0);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The answer to one request, rendered as its frame once; the code is kept for counting
/// malformed frames.
struct Reply {
    code: u32,
    frame: String,
}

fn result_ok<T: serde::Serialize + ?Sized>(id: &RawValue, data: &T) -> Reply {
    match beckon_proto::frames::result_json(id, 0, None, Some(data)) {
        Ok(frame) => Reply { code: 0, frame },
        // Results hold only strings, numbers, booleans, lists and maps with string keys.
        Err(error) => result_err(id, &unencodable(&error)),
    }
}

fn unencodable(error: &serde_json::Error) -> Refusal {
    Refusal::new(
        ErrorCode::Internal,
        format!("the result could not be encoded: {error}"),
    )
}

fn result_err(id: &RawValue, refusal: &Refusal) -> Reply {
    let code = refusal.code.as_u32();
    Reply {
        code,
        frame: beckon_proto::frames::result_json::<()>(id, code, Some(&refusal.message), None)
            .unwrap_or_default(),
    }
}

fn parse<T: DeserializeOwned>(op_name: &str, params: Params) -> Result<T, Refusal> {
    let mut json = serde_json::Deserializer::from_str(params.0);
    serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let path = error.path().to_string();
        let place = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        // The line and column would point into `params`, not into the frame the client sent.
        let error = error.into_inner();
        let mut reason = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        if reason.ends_with(&position) {
            reason.truncate(reason.len() - position.len());
        }
        Refusal::new(
            ErrorCode::InvalidParameter,
            format!("invalid parameters for {op_name}{place}: {reason}"),
        )
    })
}

async fn write(sink: &mut Sink, text: String) -> bool {
    matches!(
        tokio::time::timeout(
            WRITE_TIMEOUT,
            sink.send(Message::Text(Utf8Bytes::from(text)))
        )
        .await,
        Ok(Ok(()))
    )
}

const SLOW_CONSUMER: (CloseCode, &str) = (
    CloseCode::SlowConsumer,
    "send queue full: the client reads too slowly",
);

/// Writes one frame of the main loop. A client that stops reading blocks the write, so the
/// kick for a full queue (or the write timeout) must be able to interrupt it.
async fn write_or_kick(
    sink: &mut Sink,
    text: String,
    handle: Option<&ConnHandle>,
) -> Result<(), Option<(CloseCode, &'static str)>> {
    write_all_or_kick(sink, std::iter::once(text), handle).await
}

/// Writes several frames with one flush (one socket write for a burst of events).
async fn write_all_or_kick(
    sink: &mut Sink,
    texts: impl IntoIterator<Item = String>,
    handle: Option<&ConnHandle>,
) -> Result<(), Option<(CloseCode, &'static str)>> {
    let write = async {
        for text in texts {
            sink.feed(Message::Text(Utf8Bytes::from(text))).await?;
        }
        sink.flush().await
    };
    let mut write = pin!(write);
    // Nearly every write finishes at once, the socket having room: it needs neither a timer
    // nor a wait for the kick (a kick is then seen by the main loop).
    let first_try = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    if let Poll::Ready(written) = first_try {
        return written.map_err(|_| None);
    }
    let kicked = async {
        match handle {
            Some(handle) => handle.kicked.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        written = tokio::time::timeout(WRITE_TIMEOUT, write) => match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(None),
            Err(_) => Err(Some(SLOW_CONSUMER)),
        },
        () = kicked => Err(Some(SLOW_CONSUMER)),
    }
}

async fn close(sink: &mut Sink, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code: code.as_u16(),
        reason: Utf8Bytes::from(reason.to_owned()),
    };
    // Short: the peer may not be reading at all.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
}

/// Serves one socket until it closes.
pub(crate) async fn serve(socket: WebSocket, state: Arc<AppState>) {
    let (mut sink, mut stream) = socket.split();
    if !state.registry.admit() {
        close(
            &mut sink,
            CloseCode::Overloaded,
            "too many connections; retry later",
        )
        .await;
        return;
    }
    let (queue_tx, mut queue_rx) = mpsc::channel::<Outbound>(state.config.send_queue_frames);
    let mut session = Session {
        user: None,
        last_delivered: 0,
        bucket: TokenBucket::new(state.config.rate_limit_per_second),
        bad_frames_in_a_row: 0,
    };
    let mut in_flight: FuturesUnordered<BoxFuture<'static, Reply>> = FuturesUnordered::new();
    let login_deadline = tokio::time::sleep(state.config.login_timeout);
    let mut login_deadline = pin!(login_deadline);
    let mut shutdown = state.shutdown.clone();
    let mut draining = *shutdown.borrow();
    // Made once, like the waits below: once it fires `draining` is set, which disables its
    // branch, so it is never polled again.
    let shutdown_changed = shutdown.changed();
    let mut shutdown_changed = pin!(shutdown_changed);
    let never = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    // One timer for the session, moved when the signature changes: a new one for every turn
    // of the loop cost a timer registration per frame.
    let mut sig_expiry_armed = never;
    let sig_expiry_timer = tokio::time::sleep_until(never);
    let mut sig_expiry_timer = pin!(sig_expiry_timer);
    // The logged-in session's wait for a kick, and whose handle it is for.
    let mut kick_wait: Option<(Arc<ConnHandle>, Pin<Box<OwnedNotified>>)> = None;

    let close_with: Option<(CloseCode, &str)> = loop {
        let sig_expiry = session.user.as_ref().map_or(never, |u| u.sig_expires);
        if sig_expiry != sig_expiry_armed {
            sig_expiry_timer.as_mut().reset(sig_expiry);
            sig_expiry_armed = sig_expiry;
        }
        match &session.user {
            Some(user)
                if !kick_wait
                    .as_ref()
                    .is_some_and(|(for_handle, _)| Arc::ptr_eq(for_handle, &user.handle)) =>
            {
                let wait = Arc::clone(&user.handle.kicked).notified_owned();
                kick_wait = Some((Arc::clone(&user.handle), Box::pin(wait)));
            }
            Some(_) => {}
            None => kick_wait = None,
        }
        let kicked = async {
            match kick_wait.as_mut() {
                Some((_, wait)) => wait.as_mut().await,
                None => std::future::pending().await,
            }
        };
        if draining && in_flight.is_empty() {
            break Some((
                CloseCode::ShuttingDown,
                "server shutting down; reconnect shortly",
            ));
        }
        tokio::select! {
            biased;
            () = kicked => {
                let code = session.user.as_ref().map_or(0, |u| u.handle.kick_code.load(Ordering::Relaxed));
                if code == CloseCode::SlowConsumer.as_u16() {
                    break Some(SLOW_CONSUMER);
                }
                break Some((CloseCode::ProtocolViolation, "closed by the server"));
            }
            _ = &mut shutdown_changed, if !draining => { draining = true; }
            () = &mut login_deadline, if session.user.is_none() => {
                break Some((CloseCode::LoginTimeout, "no login within the login timeout"));
            }
            () = &mut sig_expiry_timer, if session.user.is_some() => {
                break Some((CloseCode::AuthExpired, "userSig expired; log in again with a fresh one"));
            }
            Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                let handle = session.user.as_ref().map(|u| &*u.handle);
                if let Err(close) = write_or_kick(&mut sink, result.frame, handle).await { break close; }
            }
            Some(outbound) = queue_rx.recv() => {
                // Take what else is already queued, so a burst goes out in one write.
                let mut frames = Vec::new();
                let mut next = Some(outbound);
                while let Some(outbound) = next.take() {
                    let fresh = outbound.seq.is_none_or(|seq| seq > session.last_delivered);
                    if fresh {
                        if let Some(seq) = outbound.seq {
                            session.last_delivered = seq;
                        }
                        frames.push(outbound.frame.to_string());
                    }
                    if frames.len() < WRITE_BURST {
                        next = queue_rx.try_recv().ok();
                    }
                }
                if frames.is_empty() { continue; }
                let handle = session.user.as_ref().map(|u| &*u.handle);
                if let Err(close) = write_all_or_kick(&mut sink, frames, handle).await { break close; }
            }
            incoming = stream.next(), if !draining && in_flight.len() < state.config.max_in_flight => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => break Some((CloseCode::BinaryFrame, "binary frames are not part of beckon.v1")),
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                    Some(Ok(_)) => continue, // ping/pong are answered by the transport
                };
                if text.len() > limits::MAX_FRAME_BYTES {
                    break Some((CloseCode::FrameTooLarge, "frame larger than the maximum frame size"));
                }
                let was_logged_in = session.user.is_some();
                let step = handle_frame(&state, &mut session, &queue_tx, &mut sink, text.as_str()).await;
                if was_logged_in && session.user.is_none() {
                    // After logout the connection gets a fresh login period.
                    login_deadline.as_mut().reset(tokio::time::Instant::now() + state.config.login_timeout);
                }
                if step.is_malformed() {
                    session.bad_frames_in_a_row += 1;
                    if session.bad_frames_in_a_row > MAX_BAD_FRAMES_IN_A_ROW {
                        break Some((CloseCode::ProtocolViolation, "too many malformed frames in a row"));
                    }
                } else {
                    session.bad_frames_in_a_row = 0;
                }
                match step {
                    Step::Reply(reply) => {
                        let handle = session.user.as_ref().map(|u| &*u.handle);
                        if let Err(close) = write_or_kick(&mut sink, reply.frame, handle).await { break close; }
                    }
                    Step::Later(future) => in_flight.push(future),
                    Step::Replied => {}
                    Step::Close(code, reason) => break Some((code, reason)),
                }
            }
        }
    };
    if let Some(user) = &session.user {
        state
            .registry
            .unregister(&user.actor.user_id, user.handle.id);
    }
    if let Some((code, reason)) = close_with {
        close(&mut sink, code, reason).await;
    }
    state.registry.release();
}

impl Step {
    /// A frame that is not a request at all, or names no operation.
    fn is_malformed(&self) -> bool {
        let malformed = [
            ErrorCode::MalformedRequest.as_u32(),
            ErrorCode::UnknownOperation.as_u32(),
        ];
        matches!(self, Step::Reply(reply) if malformed.contains(&reply.code))
    }
}

enum Step {
    Reply(Reply),
    Later(BoxFuture<'static, Reply>),
    /// Already written (login writes its result and the events that follow it).
    Replied,
    Close(CloseCode, &'static str),
}

fn later<T: serde::Serialize>(
    id: Box<RawValue>,
    future: impl std::future::Future<Output = Result<T, Refusal>> + Send + 'static,
) -> Step {
    Step::Later(Box::pin(async move {
        match future.await {
            Ok(data) => result_ok(&id, &data),
            Err(refusal) => result_err(&id, &refusal),
        }
    }))
}

fn commit_step(id: &RawValue, pending: Result<PendingCommit, Refusal>) -> Step {
    match pending {
        Ok(pending) => {
            let id = id.to_owned();
            Step::Later(Box::pin(async move {
                match pending.finish().await {
                    Ok(outcome) => {
                        let data = |out: &mut Vec<u8>| {
                            outcome.write_json(out);
                            Ok(())
                        };
                        match beckon_proto::json_write::result_json_with(&id, 0, None, Some(data)) {
                            Ok(frame) => Reply { code: 0, frame },
                            Err(error) => result_err(&id, &unencodable(&error)),
                        }
                    }
                    Err(refusal) => result_err(&id, &refusal),
                }
            }))
        }
        Err(refusal) => Step::Reply(result_err(id, &refusal)),
    }
}

/// A request frame as it arrives: each part kept as its JSON text and decoded only as far as
/// its operation needs (its params straight into their typed struct, with no `Value` tree).
#[derive(serde::Deserialize)]
struct RawRequest<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    op: Option<&'a RawValue>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// The `params` of a request as JSON text: an object, or `{}` when absent or null.
#[derive(Clone, Copy)]
struct Params<'a>(&'a str);

async fn handle_frame(
    state: &Arc<AppState>,
    session: &mut Session,
    queue_tx: &mpsc::Sender<Outbound>,
    sink: &mut Sink,
    text: &str,
) -> Step {
    // Only an object is a request (serde would also take a struct from an array).
    let request = if text.trim_start().starts_with('{') {
        serde_json::from_str::<RawRequest>(text).ok()
    } else {
        None
    };
    let Some(request) = request else {
        return Step::Reply(result_err(
            RawValue::NULL,
            &Refusal::new(
                ErrorCode::MalformedRequest,
                "a request must be a JSON object with \"op\"",
            ),
        ));
    };
    let id: &RawValue = request.id.unwrap_or(RawValue::NULL);
    if id.get().len() > limits::MAX_REQUEST_ID_BYTES {
        // Not run: the client could not match its result anyway.
        return Step::Reply(result_err(
            RawValue::NULL,
            &Refusal::new(
                ErrorCode::InvalidParameter,
                format!(
                    "\"id\" is longer than {} bytes",
                    limits::MAX_REQUEST_ID_BYTES
                ),
            ),
        ));
    }
    let op_name = request
        .op
        .and_then(|op| serde_json::from_str::<Cow<str>>(op.get()).ok());
    let Some(op_name) = op_name else {
        return Step::Reply(result_err(
            id,
            &Refusal::new(ErrorCode::MalformedRequest, "\"op\" must be a string"),
        ));
    };
    let params = match request.params {
        None => Params("{}"),
        Some(params) if params.get() == "null" => Params("{}"),
        Some(params) if params.get().starts_with('{') => Params(params.get()),
        Some(_) => {
            return Step::Reply(result_err(
                id,
                &Refusal::new(ErrorCode::InvalidParameter, "\"params\" must be an object"),
            ))
        }
    };
    if !session.bucket.take() {
        return Step::Reply(result_err(
            id,
            &Refusal::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} requests per second; slow down",
                    state.config.rate_limit_per_second
                ),
            ),
        ));
    }
    let op_name: &str = &op_name;
    if op_name == op::PING {
        return Step::Reply(result_ok(
            id,
            &serde_json::json!({"serverTime": crate::now_ms()}),
        ));
    }
    if op_name == op::LOGIN {
        return login(state, session, queue_tx, sink, id, params).await;
    }
    let Some(user) = &session.user else {
        let known = KNOWN_OPS.contains(&op_name);
        let refusal = if known {
            Refusal::new(ErrorCode::NotLoggedIn, "log in first")
        } else {
            Refusal::new(
                ErrorCode::UnknownOperation,
                format!("unknown operation {op_name:?}"),
            )
        };
        return Step::Reply(result_err(id, &refusal));
    };
    let actor = user.actor.clone();
    let service = &state.service;
    match op_name {
        op::LOGOUT => {
            if let Some(user) = session.user.take() {
                state
                    .registry
                    .unregister(&user.actor.user_id, user.handle.id);
            }
            Step::Reply(result_ok(id, &serde_json::json!({})))
        }
        op::INVITE => match parse::<InviteParams>(op_name, params) {
            Ok(params) => commit_step(id, service.invite(&actor, params).await),
            Err(refusal) => Step::Reply(result_err(id, &refusal)),
        },
        op::INVITE_IN_GROUP => match parse::<InviteInGroupParams>(op_name, params) {
            Ok(params) => commit_step(id, service.invite_in_group(&actor, params).await),
            Err(refusal) => Step::Reply(result_err(id, &refusal)),
        },
        op::CREATE_GROUP
        | op::GET_GROUP_PROFILE
        | op::GET_GROUP_MEMBER_LIST
        | op::GET_GROUP_LIST
        | op::ADD_GROUP_MEMBER
        | op::DELETE_GROUP_MEMBER
        | op::QUIT_GROUP
        | op::DISMISS_GROUP => {
            // Group changes are rare; answering them in order keeps a following
            // inviteInGroup from overtaking the change it depends on.
            let result = group_op(service, &actor, op_name, params).await;
            Step::Reply(match result {
                Ok(data) => result_ok(id, &data),
                Err(refusal) => result_err(id, &refusal),
            })
        }
        op::CANCEL | op::ACCEPT | op::REJECT => match parse::<ActionParams>(op_name, params) {
            Ok(params) => {
                let data = params.data.unwrap_or_default();
                let kind = match op_name {
                    op::CANCEL => CommandKind::Cancel { data },
                    op::ACCEPT => CommandKind::Accept { data },
                    _ => CommandKind::Reject { data },
                };
                commit_step(id, service.act(&actor, &params.invite_id, kind))
            }
            Err(refusal) => Step::Reply(result_err(id, &refusal)),
        },
        op::MODIFY_INVITATION => match parse::<ModifyParams>(op_name, params) {
            Ok(params) => commit_step(
                id,
                service.act(
                    &actor,
                    &params.invite_id,
                    CommandKind::Modify { data: params.data },
                ),
            ),
            Err(refusal) => Step::Reply(result_err(id, &refusal)),
        },
        op::GET_CONVERSATION_LIST => {
            let store = service.store().clone();
            later(id.to_owned(), async move {
                let list = store
                    .conversations(actor.user_id)
                    .await
                    .map_err(|e| store_failed(&e))?;
                Ok(serde_json::json!({ "conversationList": list }))
            })
        }
        op::GET_MESSAGE_LIST => match parse::<GetMessageListParams>(op_name, params) {
            Ok(params) => {
                let conversation =
                    match service.conversation_for(&actor.user_id, &params.conversation_id, true) {
                        Ok(conversation) => conversation,
                        Err(refusal) => return Step::Reply(result_err(id, &refusal)),
                    };
                let count = match params.count {
                    None => limits::DEFAULT_MESSAGE_PAGE,
                    Some(n) if (1..=limits::MAX_MESSAGE_PAGE as u64).contains(&n) => n as usize,
                    Some(n) => {
                        return Step::Reply(result_err(
                            id,
                            &Refusal::new(
                                ErrorCode::InvalidParameter,
                                format!("count must be 1 to {}, got {n}", limits::MAX_MESSAGE_PAGE),
                            ),
                        ))
                    }
                };
                let store = service.store().clone();
                let before = params.next_req_message_id.filter(|s| !s.is_empty());
                later(id.to_owned(), async move {
                    let page = store
                        .messages(actor.user_id, conversation, before, count)
                        .await
                        .map_err(|e| store_failed(&e))?
                        .ok_or_else(|| {
                            Refusal::new(
                                ErrorCode::UnknownMessage,
                                "nextReqMessageID names no message of this conversation",
                            )
                        })?;
                    Ok(serde_json::to_value(page).unwrap_or(Value::Null))
                })
            }
            Err(refusal) => Step::Reply(result_err(id, &refusal)),
        },
        op::SET_MESSAGE_READ => match parse::<SetMessageReadParams>(op_name, params) {
            Ok(params) => {
                match service.conversation_for(&actor.user_id, &params.conversation_id, false) {
                    Ok(conversation) => {
                        let service = Arc::clone(service);
                        later(id.to_owned(), async move {
                            service.mark_read(&actor.user_id, conversation).await?;
                            Ok(serde_json::json!({}))
                        })
                    }
                    Err(refusal) => Step::Reply(result_err(id, &refusal)),
                }
            }
            Err(refusal) => Step::Reply(result_err(id, &refusal)),
        },
        other => Step::Reply(result_err(
            id,
            &Refusal::new(
                ErrorCode::UnknownOperation,
                format!("unknown operation {other:?}"),
            ),
        )),
    }
}

async fn group_op(
    service: &Arc<crate::Service>,
    actor: &Actor,
    op_name: &str,
    params: Params<'_>,
) -> Result<Value, Refusal> {
    use beckon_proto::frames::{
        CreateGroupParams, GroupIdParams, GroupMemberListParams, GroupMembersParams,
    };
    match op_name {
        op::CREATE_GROUP => {
            let params: CreateGroupParams = parse(op_name, params)?;
            let group = service.create_group(actor, params).await?;
            Ok(serde_json::json!({ "group": group }))
        }
        op::GET_GROUP_PROFILE => {
            let params: GroupIdParams = parse(op_name, params)?;
            let group = service.group_profile(actor, &params.group_id)?;
            Ok(serde_json::json!({ "group": group }))
        }
        op::GET_GROUP_MEMBER_LIST => {
            let params: GroupMemberListParams = parse(op_name, params)?;
            let count = match params.count {
                None => limits::MAX_MEMBER_PAGE,
                Some(n) if (1..=limits::MAX_MEMBER_PAGE as u64).contains(&n) => n as usize,
                Some(n) => {
                    return Err(Refusal::new(
                        ErrorCode::InvalidParameter,
                        format!("count must be 1 to {}, got {n}", limits::MAX_MEMBER_PAGE),
                    ))
                }
            };
            let offset = usize::try_from(params.offset.unwrap_or(0)).unwrap_or(usize::MAX);
            let members = service.group_members(actor, &params.group_id, offset, count)?;
            Ok(serde_json::json!({ "memberList": members }))
        }
        op::GET_GROUP_LIST => Ok(serde_json::json!({ "groupList": service.group_list(actor)? })),
        op::ADD_GROUP_MEMBER => {
            let params: GroupMembersParams = parse(op_name, params)?;
            let (added, existed, group) = service.add_group_members(actor, params).await?;
            Ok(serde_json::json!({
                "successUserIDList": added,
                "failureUserIDList": [],
                "existedUserIDList": existed,
                "group": group,
            }))
        }
        op::DELETE_GROUP_MEMBER => {
            let params: GroupMembersParams = parse(op_name, params)?;
            let (removed, group) = service.delete_group_members(actor, params).await?;
            Ok(serde_json::json!({ "group": group, "userIDList": removed }))
        }
        op::QUIT_GROUP => {
            let params: GroupIdParams = parse(op_name, params)?;
            service.quit_group(actor, &params.group_id).await?;
            Ok(serde_json::json!({ "groupID": params.group_id }))
        }
        _ => {
            let params: GroupIdParams = parse(op_name, params)?;
            service.dismiss_group(actor, &params.group_id).await?;
            Ok(serde_json::json!({ "groupID": params.group_id }))
        }
    }
}

const KNOWN_OPS: [&str; 19] = [
    op::CREATE_GROUP,
    op::GET_GROUP_PROFILE,
    op::GET_GROUP_MEMBER_LIST,
    op::GET_GROUP_LIST,
    op::ADD_GROUP_MEMBER,
    op::DELETE_GROUP_MEMBER,
    op::QUIT_GROUP,
    op::DISMISS_GROUP,
    op::LOGOUT,
    op::INVITE,
    op::INVITE_IN_GROUP,
    op::CANCEL,
    op::ACCEPT,
    op::REJECT,
    op::MODIFY_INVITATION,
    op::GET_CONVERSATION_LIST,
    op::GET_MESSAGE_LIST,
    op::SET_MESSAGE_READ,
    op::PING,
];

fn unix_now() -> u64 {
    crate::now_ms() / 1000
}

async fn login(
    state: &Arc<AppState>,
    session: &mut Session,
    queue_tx: &mpsc::Sender<Outbound>,
    sink: &mut Sink,
    id: &RawValue,
    params: Params<'_>,
) -> Step {
    if session.user.is_some() {
        return Step::Reply(result_err(
            id,
            &Refusal::new(
                ErrorCode::AlreadyLoggedIn,
                "this connection is already logged in",
            ),
        ));
    }
    let params: LoginParams = match parse(op::LOGIN, params) {
        Ok(params) => params,
        Err(refusal) => return Step::Reply(result_err(id, &refusal)),
    };
    if let Err(refusal) = beckon_core::check_user_id("userID", &params.user_id) {
        return Step::Reply(result_err(id, &refusal));
    }
    if params.sdk_app_id != state.key.sdk_app_id() {
        return Step::Reply(result_err(
            id,
            &Refusal::new(
                ErrorCode::SdkAppIdMismatch,
                format!("this server serves SDKAppID {}", state.key.sdk_app_id()),
            ),
        ));
    }
    let now = unix_now();
    let expires_unix = match state.key.verify(&params.user_id, &params.user_sig, now) {
        Ok(expiry) => expiry,
        Err(error) => {
            let code = ErrorCode::from_u32(error.code()).unwrap_or(ErrorCode::UserSigMalformed);
            return Step::Reply(result_err(id, &Refusal::new(code, error.to_string())));
        }
    };
    let instance_id = match params.instance_id {
        Some(instance) => match beckon_core::check_invite_id("instanceID", &instance) {
            Ok(()) => instance,
            Err(refusal) => return Step::Reply(result_err(id, &refusal)),
        },
        None => uuid::Uuid::new_v4().to_string(),
    };
    if let Err(refusal) = state.service.ensure_user(&params.user_id).await {
        return Step::Reply(result_err(id, &refusal));
    }
    let handle = Arc::new(ConnHandle {
        id: state.registry.next_id(),
        instance: instance_id.clone(),
        queue: queue_tx.clone(),
        kick_code: std::sync::atomic::AtomicU16::new(0),
        kicked: Arc::new(tokio::sync::Notify::new()),
    });
    // Registered before the snapshot: events committed after it queue up and are deduplicated
    // by sequence number against the snapshot.
    state
        .registry
        .register(&params.user_id, Arc::clone(&handle));
    let snapshot = match state
        .service
        .login_snapshot(&params.user_id, params.last_seq)
        .await
    {
        Ok(snapshot) => snapshot,
        Err(refusal) => {
            state.registry.unregister(&params.user_id, handle.id);
            return Step::Reply(result_err(id, &refusal));
        }
    };
    let result = LoginResult {
        user_id: params.user_id.clone(),
        seq: snapshot.head,
        resumed: snapshot.backlog.is_some(),
        resync: snapshot.resync,
        server_time: crate::now_ms(),
        event_retention_seconds: state.config.event_retention.as_secs(),
    };
    let remaining = expires_unix.saturating_sub(now);
    session.user = Some(LoggedIn {
        actor: Actor {
            user_id: params.user_id.clone(),
            instance_id: instance_id.clone(),
        },
        handle,
        sig_expires: tokio::time::Instant::now()
            + Duration::from_secs(remaining.min(10 * 365 * 24 * 3600)),
    });
    session.last_delivered = snapshot.head;
    if !write(sink, result_ok(id, &result).frame).await {
        return Step::Close(CloseCode::SlowConsumer, "could not write the login result");
    }
    if let Some(backlog) = snapshot.backlog {
        let now_ms = crate::now_ms();
        for (seq, origin, frame) in backlog {
            if origin.as_deref() != Some(instance_id.as_str())
                && !write(sink, refresh_remaining(frame, now_ms)).await
            {
                return Step::Close(CloseCode::SlowConsumer, "could not write missed events");
            }
            session.last_delivered = session.last_delivered.max(seq);
        }
    } else {
        {
            let now_ms = crate::now_ms();
            for invitation in snapshot.pending {
                let data = invitation.new_invitation_data(now_ms, true);
                let frame = beckon_proto::frames::event_json(
                    beckon_proto::signaling::event::NEW_INVITATION_RECEIVED,
                    None,
                    &data,
                )
                .unwrap_or_default();
                if !write(sink, frame).await {
                    return Step::Close(
                        CloseCode::SlowConsumer,
                        "could not write pending invitations",
                    );
                }
            }
        }
    }
    Step::Replied
}

/// A stored `newInvitationReceived` frame with `timeoutRemaining` counted from now rather than
/// from when it was first sent.
fn refresh_remaining(frame: String, now_ms: u64) -> String {
    if !frame.contains(beckon_proto::signaling::event::NEW_INVITATION_RECEIVED) {
        return frame;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(&frame) else {
        return frame;
    };
    let Some(expires_at) = value["data"]["expiresAt"].as_u64() else {
        return frame;
    };
    value["data"]["timeoutRemaining"] =
        Value::from(expires_at.saturating_sub(now_ms).div_ceil(1000));
    serde_json::to_string(&value).unwrap_or(frame)
}
