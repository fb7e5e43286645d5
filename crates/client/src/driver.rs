//! The connection task: the only owner of the socket. It logs in, matches results to waiting
//! requests, delivers events (running listeners in order), and reconnects with backoff,
//! resuming from the last seen event seq.

use crate::backoff;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::events::{accept_seq, broadcast, Listeners, Notice};
use crate::socket::{self, close_code, LoggedIn, LoginError, Ws};
use beckon_proto::frames::{LoginParams, LoginResult};
use beckon_proto::{CloseCode, ErrorCode, EventFrame, ResultFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// Where a request's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<ResultFrame, ClientError>>;

/// What the [`Client`](crate::Client) asks of the connection task.
pub(crate) enum Command {
    /// Send a request (now, or after the reconnect if the socket is down).
    Request { id: u64, text: String, reply: Reply },
    /// Send `logout`, then close and stop. Answered at once when no socket is up.
    Logout { id: u64, text: String, reply: Reply },
    /// Drop the socket without a close handshake, as a network failure would.
    Drop,
}

/// State shared by the [`Client`](crate::Client) handles and the connection task.
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    pub(crate) instance_id: String,
    pub(crate) user_sig: Mutex<String>,
    next_request_id: AtomicU64,
    /// Highest event seq seen; `None` until the first login (then `lastSeq` is omitted).
    pub(crate) last_seq: Mutex<Option<u64>>,
    pub(crate) listeners: Mutex<Listeners>,
    pub(crate) subscribers: Mutex<Vec<UnboundedSender<Notice>>>,
}

/// Locks a mutex; a poisoned one is still usable because no code panics while holding these
/// locks (listeners run unlocked and inside `catch_unwind`).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(config: ClientConfig) -> Self {
        Self {
            user_sig: Mutex::new(config.user_sig.clone()),
            config,
            instance_id: uuid::Uuid::new_v4().to_string(),
            next_request_id: AtomicU64::new(1),
            last_seq: Mutex::new(None),
            listeners: Mutex::new(Listeners::default()),
            subscribers: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    fn login_params(&self) -> LoginParams {
        LoginParams {
            sdk_app_id: self.config.sdk_app_id,
            user_id: self.config.user_id.clone(),
            user_sig: lock(&self.user_sig).clone(),
            instance_id: Some(self.instance_id.clone()),
            last_seq: *lock(&self.last_seq),
        }
    }

    pub(crate) fn notify(&self, notice: &Notice) {
        broadcast(&mut lock(&self.subscribers), notice);
    }

    /// Delivers one event: the seq filter, then listeners in registration order, then
    /// subscribers.
    fn deliver(&self, event: EventFrame) {
        {
            let mut last = lock(&self.last_seq);
            // Gaps are normal: events this instance caused are numbered but not sent to it.
            if !accept_seq(&mut last, event.seq) {
                tracing::debug!(name = %event.name, seq = ?event.seq, "dropped an event already seen");
                return;
            }
        }
        let handlers = lock(&self.listeners).handlers(&event.name);
        for handler in handlers {
            // A panicking app handler must not kill the connection task.
            if catch_unwind(AssertUnwindSafe(|| handler(&event))).is_err() {
                tracing::error!(name = %event.name, "a signaling listener panicked");
            }
        }
        self.notify(&Notice::Event(event));
    }
}

/// How a live connection ended.
enum Ended {
    /// Lost; reconnect unless the close code or the config says stop.
    Lost {
        close_code: Option<u16>,
        reason: String,
    },
    /// Logged out, or every `Client` handle was dropped.
    Finished,
}

/// Refusals of a re-login that may pass on a later attempt; any other refusal (bad or
/// expired userSig, ...) would only repeat, so the client stops.
fn retryable(code: u32) -> bool {
    matches!(
        ErrorCode::from_u32(code),
        Some(
            ErrorCode::RateLimited
                | ErrorCode::ShuttingDown
                | ErrorCode::Overloaded
                | ErrorCode::Internal
        )
    )
}

/// A successful answer made up locally (logout with no socket up).
fn ok_frame(id: u64) -> ResultFrame {
    ResultFrame {
        id: id.into(),
        code: 0,
        message: None,
        data: None,
    }
}

/// The connection task of one login session (from `login` to logout or stop).
pub(crate) struct Driver {
    shared: Arc<Shared>,
    commands: UnboundedReceiver<Command>,
    /// False once every command sender is gone.
    commands_open: bool,
    /// Requests made while no socket is up, sent after the next login.
    queued: Vec<(u64, String, Reply)>,
    /// Requests sent on the current socket, by id.
    pending: HashMap<u64, Reply>,
    /// The logout in progress, if any.
    logout: Option<(u64, Reply)>,
    finish_reason: &'static str,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, commands: UnboundedReceiver<Command>) -> Self {
        Self {
            shared,
            commands,
            commands_open: true,
            queued: Vec::new(),
            pending: HashMap::new(),
            logout: None,
            finish_reason: "logged out",
        }
    }

    /// Runs the session; the first login's outcome goes to `first`.
    pub(crate) async fn run(mut self, first: oneshot::Sender<Result<LoginResult, ClientError>>) {
        self.session(first).await;
        // Whatever is still waiting can no longer be answered.
        self.fail_pending();
        for (_, _, reply) in self.queued.drain(..) {
            let _ = reply.send(Err(ClientError::Disconnected));
        }
        if let Some((id, reply)) = self.logout.take() {
            let _ = reply.send(Ok(ok_frame(id)));
        }
    }

    async fn session(&mut self, first: oneshot::Sender<Result<LoginResult, ClientError>>) {
        // The first login's failure goes back to the caller; it does not start reconnecting.
        let mut ws = match self.login_guarded().await {
            None => {
                let _ = first.send(Err(ClientError::Disconnected));
                return;
            }
            Some(Err(error)) => {
                let _ = first.send(Err(error.into_client_error()));
                return;
            }
            Some(Ok((ws, result, early))) => {
                self.logged_in(&result, early);
                let _ = first.send(Ok(result));
                ws
            }
        };
        let config = self.shared.config.clone();
        let mut attempt: u32 = 0;
        loop {
            let connected_at = Instant::now();
            let (close_code, reason) = match self.serve(ws).await {
                Ended::Finished => {
                    self.stopped(None, self.finish_reason.to_owned());
                    return;
                }
                Ended::Lost { close_code, reason } => (close_code, reason),
            };
            self.fail_pending();
            if close_code.is_some_and(|code| !CloseCode::should_reconnect(code)) {
                self.stopped(
                    close_code,
                    format!("server closed the connection: {reason}"),
                );
                return;
            }
            if !config.reconnect {
                self.stopped(
                    close_code,
                    format!("connection lost ({reason}); reconnect is off"),
                );
                return;
            }
            // Only a connection that lived a while resets the backoff, so a server that drops
            // every connection at once is not hammered.
            if connected_at.elapsed() >= config.backoff_max {
                attempt = 0;
            }
            tracing::info!(?close_code, %reason, "connection lost; reconnecting");
            self.shared.notify(&Notice::Reconnecting { close_code });
            ws = loop {
                let wait = backoff::delay(
                    attempt,
                    config.backoff_initial,
                    config.backoff_max,
                    &mut rand::thread_rng(),
                );
                attempt = attempt.saturating_add(1);
                if !self.sleep_guarded(wait).await {
                    self.stopped(None, self.finish_reason.to_owned());
                    return;
                }
                match self.login_guarded().await {
                    None => {
                        self.stopped(None, self.finish_reason.to_owned());
                        return;
                    }
                    Some(Ok((ws, result, early))) => {
                        self.logged_in(&result, early);
                        break ws;
                    }
                    Some(Err(LoginError::Refused { code, message })) if !retryable(code) => {
                        self.stopped(
                            None,
                            format!("re-login refused with code {code}: {message}"),
                        );
                        return;
                    }
                    Some(Err(LoginError::Failed {
                        close_code: Some(code),
                        error,
                    })) if !CloseCode::should_reconnect(code) => {
                        self.stopped(Some(code), error.to_string());
                        return;
                    }
                    Some(Err(error)) => {
                        tracing::debug!(?error, attempt, "reconnect attempt failed");
                    }
                }
            };
        }
    }

    fn stopped(&self, close_code: Option<u16>, reason: String) {
        tracing::info!(?close_code, %reason, "client stopped");
        self.shared.notify(&Notice::Stopped { close_code, reason });
    }

    /// After a (re)login: set the last seq, tell the app, deliver any early events.
    fn logged_in(&self, result: &LoginResult, early: Vec<EventFrame>) {
        let resync = {
            let mut last = lock(&self.shared.last_seq);
            // With a lastSeq sent, anything but a clean resume (or a server behind what we
            // saw) means events were lost.
            let resync =
                last.is_some_and(|mine| result.resync || !result.resumed || result.seq < mine);
            if resync || last.is_none() {
                *last = Some(result.seq);
            }
            resync
        };
        self.shared.notify(&Notice::Connected(result.clone()));
        if resync {
            tracing::warn!(seq = result.seq, "events were lost; resync");
            self.shared.notify(&Notice::Resync);
        }
        for event in early {
            self.shared.deliver(event);
        }
    }

    /// One connect-and-login attempt, still taking commands meanwhile. `None`: stop (logout
    /// or every client dropped).
    async fn login_guarded(&mut self) -> Option<Result<LoggedIn, LoginError>> {
        let shared = Arc::clone(&self.shared);
        let params = shared.login_params();
        let id = shared.next_request_id();
        let attempt = socket::login(
            &shared.config.server_url,
            id,
            &params,
            shared.config.request_timeout,
        );
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                outcome = &mut attempt => return Some(outcome),
                command = self.commands.recv(), if self.commands_open => {
                    if !self.on_command_offline(command) {
                        return None;
                    }
                }
            }
        }
    }

    /// Waits out a backoff delay, still taking commands. False: stop.
    async fn sleep_guarded(&mut self, wait: Duration) -> bool {
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                command = self.commands.recv(), if self.commands_open => {
                    if !self.on_command_offline(command) {
                        return false;
                    }
                }
            }
        }
    }

    /// A command while no socket is up. False: stop.
    fn on_command_offline(&mut self, command: Option<Command>) -> bool {
        match command {
            None => {
                self.commands_open = false;
                self.finish_reason = "client dropped";
                false
            }
            Some(Command::Request { id, text, reply }) => {
                self.queued.push((id, text, reply));
                true
            }
            Some(Command::Drop) => true,
            Some(Command::Logout { id, reply, .. }) => {
                let _ = reply.send(Ok(ok_frame(id)));
                self.finish_reason = "logged out";
                false
            }
        }
    }

    /// Serves one logged-in socket until it ends.
    async fn serve(&mut self, mut ws: Ws) -> Ended {
        for (id, text, reply) in std::mem::take(&mut self.queued) {
            // A caller that gave up must not have its action applied late.
            if reply.is_closed() {
                continue;
            }
            self.pending.insert(id, reply);
            if let Err(e) = ws.send(Message::text(text)).await {
                return self.lost(None, format!("send failed: {e}"));
            }
        }
        let ping_every = self.shared.config.ping_interval;
        let heartbeat = !ping_every.is_zero();
        // With no heartbeat the tick branch is disabled, so the period is unused.
        let period = if heartbeat {
            ping_every
        } else {
            Duration::from_secs(1)
        };
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut logout_deadline: Option<Instant> = None;
        loop {
            tokio::select! {
                message = ws.next() => {
                    last_heard = Instant::now();
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            if self.on_text(text.as_str()) {
                                socket::close(ws, WsCloseCode::Normal).await;
                                return Ended::Finished;
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let code = close_code(frame.as_ref());
                            let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                            // Sends tungstenite's queued close reply.
                            let _ = tokio::time::timeout(Duration::from_millis(200), ws.flush()).await;
                            let reason = match code {
                                Some(code) => format!("close code {code} {reason}"),
                                None => "closed without a code".to_owned(),
                            };
                            return self.lost(code, reason);
                        }
                        Some(Ok(Message::Binary(_))) => tracing::warn!("binary frame from server ignored"),
                        // Pings are answered by tungstenite; pongs only prove liveness.
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return self.lost(None, e.to_string()),
                        None => return self.lost(None, "connection closed".to_owned()),
                    }
                }
                command = self.commands.recv(), if self.commands_open => match command {
                    None => {
                        self.commands_open = false;
                        if self.logout.is_none() {
                            self.finish_reason = "client dropped";
                            socket::close(ws, WsCloseCode::Normal).await;
                            return Ended::Finished;
                        }
                    }
                    Some(Command::Request { id, text, reply }) => {
                        self.pending.insert(id, reply);
                        if let Err(e) = ws.send(Message::text(text)).await {
                            return self.lost(None, format!("send failed: {e}"));
                        }
                    }
                    Some(Command::Logout { id, text, reply }) => {
                        self.logout = Some((id, reply));
                        self.finish_reason = "logged out";
                        logout_deadline = Some(Instant::now() + self.shared.config.request_timeout);
                        if let Err(e) = ws.send(Message::text(text)).await {
                            return self.lost(None, format!("send failed: {e}"));
                        }
                    }
                    // Dropping the socket here closes TCP without a WebSocket close.
                    Some(Command::Drop) => return self.lost(None, "dropped by the app".to_owned()),
                },
                _ = ticker.tick(), if heartbeat => {
                    if last_heard.elapsed() >= ping_every * 2 {
                        return self.lost(None, "no traffic from the server".to_owned());
                    }
                    // Forget requests whose callers timed out.
                    self.pending.retain(|_, reply| !reply.is_closed());
                    if let Err(e) = ws.send(Message::Ping(Bytes::new())).await {
                        return self.lost(None, format!("send failed: {e}"));
                    }
                }
                () = tokio::time::sleep_until(logout_deadline.unwrap_or_else(Instant::now)), if logout_deadline.is_some() => {
                    // The server never answered the logout: leave anyway.
                    if let Some((_, reply)) = self.logout.take() {
                        let _ = reply.send(Err(ClientError::Timeout));
                    }
                    socket::close(ws, WsCloseCode::Normal).await;
                    return Ended::Finished;
                }
            }
        }
    }

    /// The socket ended; during a logout that is the logout's end, not a loss.
    fn lost(&mut self, close_code: Option<u16>, reason: String) -> Ended {
        if let Some((id, reply)) = self.logout.take() {
            let _ = reply.send(Ok(ok_frame(id)));
            return Ended::Finished;
        }
        Ended::Lost { close_code, reason }
    }

    /// One text frame. True when it answered the logout in progress.
    fn on_text(&mut self, text: &str) -> bool {
        match serde_json::from_str::<ServerFrame>(text) {
            Ok(ServerFrame::Result(result)) => {
                let id = result.id.as_u64();
                if id.is_some() && self.logout.as_ref().map(|(logout_id, _)| *logout_id) == id {
                    if let Some((_, reply)) = self.logout.take() {
                        let _ = reply.send(Ok(result));
                    }
                    return true;
                }
                if let Some(reply) = id.and_then(|id| self.pending.remove(&id)) {
                    let _ = reply.send(Ok(result));
                } else {
                    tracing::debug!(id = %result.id, "result for no waiting request");
                }
            }
            Ok(ServerFrame::Event(event)) => self.shared.deliver(event),
            Err(e) => tracing::warn!(error = %e, "unreadable frame from server"),
        }
        false
    }

    /// Requests in flight on a lost socket fail: the app cannot know whether they applied.
    fn fail_pending(&mut self) {
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(ClientError::Disconnected));
        }
    }
}
