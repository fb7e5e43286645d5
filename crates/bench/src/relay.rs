//! The baseline relays `calls --baseline` compares Beckon with: the same frames for the calls
//! pattern, and nothing else. `login` is acked without checks; `invite` is acked and forwarded
//! to the callee as `newInvitationReceived`; `accept` is acked and forwarded to the inviter as
//! `ts_invitee_accepted`. No auth, no state (the inviter travels inside the inviteID), no
//! storage, so its figures are what this machine can do at all.
//!
//! The SQLite mode adds only durability with Beckon's rule: every message is appended to a
//! table by one writer thread that commits many per transaction (WAL, synchronous=FULL), and
//! is acked and forwarded only after its commit.

use anyhow::{Context, Result};
use beckon_proto::frames::{
    op, ActionParams, ActionResult, ClientFrame, InviteParams, InviteeAnsweredData, LoginResult,
    NewInvitationData, ResultFrame,
};
use beckon_proto::signaling::event;
use beckon_proto::{ErrorCode, EventFrame, ServerFrame};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Frames queued for one connection (as Beckon's default send queue).
const QUEUE_FRAMES: usize = 1024;
/// Most messages one SQLite transaction takes (as Beckon's store writer).
const MAX_BATCH: usize = 4096;
const SHARDS: usize = 64;

/// `beckon bench relay` (hidden; started by `calls --baseline`).
#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// `bare` (relay only) or `sqlite` (append each message to SQLite before relaying it).
    #[arg(long, value_parser = ["bare", "sqlite"])]
    mode: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where the SQLite mode keeps its database.
    #[arg(long)]
    data_dir: PathBuf,
}

/// One frame to write, to a connection's queue.
type Outbound = mpsc::Sender<Arc<str>>;

/// What handling one message does once it may: answer the sender, forward to a user.
struct Effects {
    reply: String,
    forward: Option<(String, Arc<str>)>,
}

/// A message waiting for its commit.
struct Job {
    record: String,
    effects: Effects,
    sender: Outbound,
}

struct Relay {
    /// Connected users (the last connection of each userID receives its events).
    users: Vec<Mutex<HashMap<String, Outbound>>>,
    next_invite: AtomicU64,
    writer: Option<std::sync::mpsc::Sender<Job>>,
}

fn shard_of(user: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    (BuildHasherDefault::<DefaultHasher>::default().hash_one(user) as usize) % SHARDS
}

impl Relay {
    fn register(&self, user: &str, queue: Outbound) {
        if let Ok(mut shard) = self.users[shard_of(user)].lock() {
            shard.insert(user.to_owned(), queue);
        }
    }

    fn unregister(&self, user: &str, queue: &Outbound) {
        if let Ok(mut shard) = self.users[shard_of(user)].lock() {
            if shard.get(user).is_some_and(|q| q.same_channel(queue)) {
                shard.remove(user);
            }
        }
    }

    fn carry_out(&self, effects: Effects, sender: &Outbound) {
        let _ = sender.try_send(Arc::from(effects.reply));
        if let Some((user, frame)) = effects.forward {
            let target = self.users[shard_of(&user)]
                .lock()
                .ok()
                .and_then(|shard| shard.get(&user).cloned());
            if let Some(target) = target {
                let _ = target.try_send(frame);
            }
        }
    }
}

/// Serves until SIGTERM/Ctrl-C.
pub(crate) async fn serve(args: RelayArgs) -> Result<()> {
    let sqlite = args.mode == "sqlite";
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
    let relay = Arc::new(Relay {
        users: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        next_invite: AtomicU64::new(1),
        writer: sqlite.then_some(jobs_tx),
    });
    if sqlite {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
        let log = open_log(&args.data_dir.join("relay.sqlite"))?;
        start_writer(log, Arc::clone(&relay), jobs_rx)?;
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    println!("relay is serving on http://{addr}  (mode {})", args.mode);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(connection(Arc::clone(&relay), stream));
                }
            }
            () = crate::system::interrupted() => return Ok(()),
        }
    }
}

async fn connection(relay: Arc<Relay>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // The same small buffers as Beckon's server.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024);
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, answer_protocol, Some(config))
            .await
    else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (queue, mut queued) = mpsc::channel::<Arc<str>>(QUEUE_FRAMES);
    let mut user: Option<String> = None;
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let effects = handle(&relay, &mut user, &queue, text.as_str());
                match &relay.writer {
                    Some(writer) => {
                        let job = Job { record: text.as_str().to_owned(), effects, sender: queue.clone() };
                        if writer.send(job).is_err() {
                            break;
                        }
                    }
                    None => relay.carry_out(effects, &queue),
                }
            }
            Some(frame) = queued.recv() => {
                if sink.send(Message::Text(frame.as_ref().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    if let Some(user) = user {
        relay.unregister(&user, &queue);
    }
}

/// Answers the client's subprotocol request with `beckon.v1`, as Beckon does.
// The error type is tungstenite's, fixed by its callback signature.
#[allow(clippy::result_large_err, clippy::unnecessary_wraps)]
fn answer_protocol(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    if request.headers().contains_key("Sec-WebSocket-Protocol") {
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(beckon_proto::SUBPROTOCOL),
        );
    }
    Ok(response)
}

fn result(id: Value, code: ErrorCode, message: &str) -> String {
    encode(&ServerFrame::Result(ResultFrame {
        id,
        code: code.as_u32(),
        message: Some(message.to_owned()),
        data: None,
    }))
}

fn ok(id: Value, data: Value) -> String {
    encode(&ServerFrame::Result(ResultFrame {
        id,
        code: 0,
        message: None,
        data: Some(data),
    }))
}

fn encode(frame: &ServerFrame) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

fn event_frame<T: serde::Serialize>(name: &str, data: &T) -> Arc<str> {
    Arc::from(encode(&ServerFrame::Event(EventFrame {
        name: name.to_owned(),
        seq: None,
        data: serde_json::to_value(data).unwrap_or(Value::Null),
    })))
}

fn now_ms() -> u64 {
    crate::system::wall_us() / 1000
}

/// Decodes one request and says what to send; registers the user at login.
fn handle(relay: &Relay, user: &mut Option<String>, queue: &Outbound, text: &str) -> Effects {
    let reply = |reply: String| Effects {
        reply,
        forward: None,
    };
    let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
        return reply(result(
            Value::Null,
            ErrorCode::MalformedRequest,
            "not a request",
        ));
    };
    let id = frame.id;
    match (frame.op.as_str(), user.as_deref()) {
        (op::LOGIN, _) => {
            let Some(user_id) = frame.params.get("userID").and_then(Value::as_str) else {
                return reply(result(id, ErrorCode::InvalidParameter, "userID missing"));
            };
            relay.register(user_id, queue.clone());
            *user = Some(user_id.to_owned());
            let login = LoginResult {
                user_id: user_id.to_owned(),
                seq: 0,
                resumed: false,
                resync: false,
                server_time: now_ms(),
                event_retention_seconds: 0,
            };
            reply(ok(id, serde_json::to_value(login).unwrap_or(Value::Null)))
        }
        (op::INVITE, Some(inviter)) => {
            let Ok(params) = serde_json::from_value::<InviteParams>(frame.params) else {
                return reply(result(id, ErrorCode::InvalidParameter, "bad invite"));
            };
            // The inviter rides in the inviteID, so accept needs no lookup.
            let number = relay.next_invite.fetch_add(1, Ordering::Relaxed);
            let invite_id = format!("{inviter}~{number}");
            let data = NewInvitationData {
                invite_id: invite_id.clone(),
                inviter: inviter.to_owned(),
                group_id: String::new(),
                invitee_list: vec![params.user_id.clone()],
                data: params.data.unwrap_or_default(),
                timeout: 0,
                timeout_remaining: 0,
                expires_at: 0,
                online_user_only: false,
                replay: false,
            };
            let forward = event_frame(event::NEW_INVITATION_RECEIVED, &data);
            let result = ActionResult {
                invite_id,
                message: None,
            };
            Effects {
                reply: ok(id, serde_json::to_value(result).unwrap_or(Value::Null)),
                forward: Some((params.user_id, forward)),
            }
        }
        (op::ACCEPT, Some(invitee)) => {
            let Ok(params) = serde_json::from_value::<ActionParams>(frame.params) else {
                return reply(result(id, ErrorCode::InvalidParameter, "bad accept"));
            };
            let Some(inviter) = params
                .invite_id
                .rsplit_once('~')
                .map(|(inviter, _)| inviter.to_owned())
            else {
                return reply(result(
                    id,
                    ErrorCode::InvitationNotActive,
                    "not a relay inviteID",
                ));
            };
            let data = InviteeAnsweredData {
                invite_id: params.invite_id.clone(),
                inviter: inviter.clone(),
                group_id: String::new(),
                invitee: invitee.to_owned(),
                data: params.data.unwrap_or_default(),
                handled_on_other_device: false,
                reason: None,
            };
            let forward = event_frame(event::INVITEE_ACCEPTED, &data);
            let result = ActionResult {
                invite_id: params.invite_id,
                message: None,
            };
            Effects {
                reply: ok(id, serde_json::to_value(result).unwrap_or(Value::Null)),
                forward: Some((inviter, forward)),
            }
        }
        (op::PING, _) => reply(ok(id, serde_json::json!({"serverTime": now_ms()}))),
        (_, None) => reply(result(id, ErrorCode::NotLoggedIn, "log in first")),
        (other, Some(_)) => reply(result(
            id,
            ErrorCode::UnknownOperation,
            &format!("the relay only knows login, invite and accept, not {other:?}"),
        )),
    }
}

/// The append-only log, with Beckon's durability settings.
fn open_log(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .context("cannot enable WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!("SQLite refused WAL mode (got {mode})");
    }
    connection
        .pragma_update(None, "synchronous", "FULL")
        .context("cannot set synchronous=FULL")?;
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, body TEXT NOT NULL)",
        )
        .context("cannot create the log table")?;
    Ok(connection)
}

/// Starts the writer thread: takes every queued message (up to `MAX_BATCH`), appends them in
/// one transaction, commits, then acks and forwards them in order.
fn start_writer(
    connection: rusqlite::Connection,
    relay: Arc<Relay>,
    jobs: std::sync::mpsc::Receiver<Job>,
) -> Result<()> {
    std::thread::Builder::new()
        .name("relay-writer".into())
        .spawn(move || {
            if let Err(error) = write_loop(connection, &relay, &jobs) {
                eprintln!("relay writer stopped: {error:#}");
                std::process::exit(1);
            }
        })
        .context("cannot start the writer thread")?;
    Ok(())
}

fn write_loop(
    mut connection: rusqlite::Connection,
    relay: &Relay,
    jobs: &std::sync::mpsc::Receiver<Job>,
) -> Result<()> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let tx = connection.transaction().context("cannot begin")?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO log(at_ms, body) VALUES (?1, ?2)")
                .context("cannot prepare")?;
            let at = now_ms() as i64;
            for job in &batch {
                insert
                    .execute(rusqlite::params![at, job.record])
                    .context("cannot append")?;
            }
        }
        tx.commit().context("cannot commit")?;
        for job in batch.drain(..) {
            relay.carry_out(job.effects, &job.sender);
        }
    }
    Ok(())
}
