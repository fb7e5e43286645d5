//! `beckon client`: a line-oriented JSON client for debugging and scripting. It logs in, reads
//! one request per line on standard input and prints every result, event and connection change
//! as one JSON line on standard output; diagnostics go to standard error.
//!
//! Input: `{"op":"invite","id":1,"userID":"bob","timeout":30}`: `op` is the SDK's operation
//! name, `id` (any JSON value, optional) comes back on the result, and every other key is the
//! operation's options (a lone `params` object is accepted too, as in a protocol frame).
//!
//! Output lines:
//! - `{"type":"connected","userID":..,"seq":..,"resumed":..}`, always the first line;
//! - `{"type":"result","id":..,"op":..,"code":0,"data":{..}}`, or with a non-zero `code` and a
//!   `message` (code -1: failed on this side, e.g. no answer in time or not connected);
//! - `{"type":"event","name":..,"seq":..,"data":{..}}` (`seq` left out when the event has none);
//! - `{"type":"reconnecting","closeCode":..}`, `{"type":"resync"}`,
//!   `{"type":"stopped","closeCode":..,"reason":..}`;
//! - `{"type":"error","id":..,"code":9001,"message":..}` for a line that is not a request.
//!
//! Requests run concurrently but are sent in input order. At the end of input the client waits
//! for the answers, logs out and exits 0 (with `--stay`, it keeps printing events until
//! Ctrl-C); a `logout` line ends the session the same way, and `login` is refused (9010)
//! because the process logs in by itself. A refused login exits 2 with the reason on stderr.

use crate::{credentials, AppArgs};
use anyhow::{anyhow, Context, Result};
use beckon_client::proto::frames::op;
use beckon_client::proto::ErrorCode;
use beckon_client::{Client, ClientConfig, ClientError, EventStream, Notice};
use clap::Args;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, IsTerminal};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::{self, JoinSet};
use tokio::time::{timeout_at, Instant};

/// `getSignalingInfo` runs here, on the message given in the line, as it does in the SDKs.
const GET_SIGNALING_INFO: &str = "getSignalingInfo";
/// `code` of a result that failed on this side (not sent, connection lost, no answer in time):
/// the server gave no code, and whether it applied the request is unknown.
const LOCAL_FAILURE: i64 = -1;
/// Validity of a UserSig minted here, in seconds (as `beckon usersig` by default).
const MINTED_SIG_VALIDITY: u64 = 7 * 86_400;
/// How long to wait for the SDK's last notices (the `stopped` line) after the logout.
const LAST_NOTICES: Duration = Duration::from_secs(2);
/// Lines read ahead of the requests being sent.
const INPUT_BACKLOG: usize = 64;

#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// WebSocket URL of the server.
    #[arg(long, env = "BECKON_SERVER", default_value = "ws://127.0.0.1:7420/ws")]
    server: String,
    /// The userID to log in as.
    #[arg(long, env = "BECKON_USER")]
    user: String,
    /// The user's UserSig. Without it one is minted with the app key: --sdkappid with
    /// --secret-key, or the dev credentials of a local server in --data-dir.
    #[arg(long, env = "BECKON_USERSIG", hide_env_values = true)]
    usersig: Option<String>,
    #[command(flatten)]
    app: AppArgs,
    /// Keep printing events after standard input ends, until Ctrl-C.
    #[arg(long)]
    stay: bool,
}

pub(crate) async fn run(args: ClientArgs) -> Result<()> {
    init_logging();
    let config = match login_config(&args) {
        Ok(config) => config,
        Err(error) => login_failed(&format!("{error:#}")),
    };
    let server = config.server_url.clone();
    let client = Client::new(config);
    // Subscribed before login, so the `connected` line and the invitations replayed at login
    // are printed first and none is missed.
    let notices = client.subscribe();
    if let Err(error) = client.login().await {
        login_failed(&match error {
            ClientError::Refused { code, message } => {
                format!("login to {server} refused with code {code}: {message}")
            }
            other => format!("cannot log in to {server}: {other}"),
        });
    }
    if std::io::stdin().is_terminal() {
        eprintln!(
            "beckon client: logged in as {}. Type one JSON request per line, e.g. \
             {{\"op\":\"invite\",\"id\":1,\"userID\":\"bob\",\"timeout\":30}}; Ctrl-D logs out.",
            client.user_id()
        );
    }
    let input = read_stdin()?;
    Session::new(client, notices, input, args.stay).run().await
}

/// Exit code 2 with the reason on stderr: nothing was printed on stdout, and a script can tell
/// this apart from a session that ended badly (1).
fn login_failed(message: &str) -> ! {
    eprintln!("beckon client: {message}");
    std::process::exit(2);
}

/// SDK logs go to stderr, errors only unless `BECKON_LOG` says otherwise: what the SDK warns
/// about already has its own stdout line (`reconnecting`, `resync`, `stopped`), and its
/// sequence-gap warning also fires when the server skips this device's own events.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BECKON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    // Only fails when a subscriber is already set, which then serves just as well.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The SDK settings: the given UserSig, or one minted with the app key.
fn login_config(args: &ClientArgs) -> Result<ClientConfig> {
    let given = args.usersig.as_deref().filter(|sig| !sig.is_empty());
    let (sdk_app_id, user_sig) = if let Some(sig) = given {
        // A UserSig alone does not say its app; a local dev server's file does.
        let dev = AppArgs {
            data_dir: args.app.data_dir.clone(),
            sdkappid: None,
            secret_key: None,
        };
        let sdk_app_id = match args.app.sdkappid {
            Some(id) => id,
            None => {
                credentials::resolve(&dev, false)
                    .context("--usersig needs --sdkappid (BECKON_SDKAPPID)")?
                    .sdk_app_id
            }
        };
        (sdk_app_id, sig.to_owned())
    } else {
        let creds = credentials::resolve(&args.app, false)
            .context("no --usersig (BECKON_USERSIG) given, and none can be minted")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let sig = creds.key().generate(&args.user, now, MINTED_SIG_VALIDITY);
        (creds.sdk_app_id, sig)
    };
    Ok(ClientConfig::new(
        args.server.clone(),
        sdk_app_id,
        args.user.clone(),
        user_sig,
    ))
}

/// One line of standard input.
enum Input {
    Line(String),
    NotUtf8,
}

/// Reads standard input on a plain thread: a read blocked in tokio's stdin would hold up the
/// runtime's shutdown (after Ctrl-C) until the user pressed Enter. The channel closes at EOF.
fn read_stdin() -> Result<mpsc::Receiver<Input>> {
    let (tx, rx) = mpsc::channel(INPUT_BACKLOG);
    std::thread::Builder::new()
        .name("stdin".to_owned())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match stdin.read_until(b'\n', &mut buf) {
                    Ok(0) => return,
                    Ok(_) => {
                        let input = String::from_utf8(std::mem::take(&mut buf))
                            .map_or(Input::NotUtf8, Input::Line);
                        if tx.blocking_send(input).is_err() {
                            return;
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        eprintln!("beckon client: cannot read standard input: {error}");
                        return;
                    }
                }
            }
        })
        .context("cannot start the standard input reader")?;
    Ok(rx)
}

/// A parsed input line.
struct Request {
    id: Value,
    op: String,
    params: Value,
}

/// A request, or the `id` (if any) and the reason the line is not one.
fn parse_line(line: &str) -> Result<Request, (Value, String)> {
    let mut object = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err((Value::Null, "a request is a JSON object".to_owned())),
        Err(error) => return Err((Value::Null, format!("not JSON: {error}"))),
    };
    let id = object.remove("id").unwrap_or(Value::Null);
    let op = match object.remove("op") {
        Some(Value::String(op)) if !op.is_empty() => op,
        Some(_) => return Err((id, "\"op\" must be a non-empty string".to_owned())),
        None => return Err((id, "missing \"op\" (the operation's name)".to_owned())),
    };
    // Protocol frames carry the options in `params`; the short form inlines them.
    let params = match object.remove("params") {
        Some(Value::Object(params)) if object.is_empty() => Value::Object(params),
        Some(other) => {
            object.insert("params".to_owned(), other);
            Value::Object(object)
        }
        None => Value::Object(object),
    };
    Ok(Request { id, op, params })
}

fn result_line(id: &Value, op: &str, outcome: Result<Value, ClientError>) -> Value {
    match outcome {
        Ok(data) => json!({"type": "result", "id": id, "op": op, "code": 0, "data": data}),
        Err(ClientError::Refused { code, message }) => {
            json!({"type": "result", "id": id, "op": op, "code": code, "message": message})
        }
        Err(other) => json!({
            "type": "result", "id": id, "op": op, "code": LOCAL_FAILURE, "message": other.to_string(),
        }),
    }
}

fn error_line(id: &Value, message: &str) -> Value {
    json!({
        "type": "error", "id": id, "code": ErrorCode::MalformedRequest.as_u32(), "message": message,
    })
}

fn notice_line(notice: &Notice) -> Value {
    match notice {
        Notice::Event(event) => {
            let mut line = Map::new();
            line.insert("type".to_owned(), "event".into());
            line.insert("name".to_owned(), event.name.clone().into());
            if let Some(seq) = event.seq {
                line.insert("seq".to_owned(), seq.into());
            }
            line.insert("data".to_owned(), event.data.clone());
            Value::Object(line)
        }
        Notice::Connected(result) => json!({
            "type": "connected", "userID": result.user_id, "seq": result.seq, "resumed": result.resumed,
        }),
        Notice::Reconnecting { close_code } => {
            json!({"type": "reconnecting", "closeCode": close_code})
        }
        Notice::Resync => json!({"type": "resync"}),
        Notice::Stopped { close_code, reason } => {
            json!({"type": "stopped", "closeCode": close_code, "reason": reason})
        }
    }
}

/// Standard output, one flushed line per JSON value.
struct Output {
    stdout: tokio::io::Stdout,
}

impl Output {
    async fn line(&mut self, value: &Value) -> std::io::Result<()> {
        let mut text = value.to_string();
        text.push('\n');
        self.stdout.write_all(text.as_bytes()).await?;
        self.stdout.flush().await
    }
}

/// Why the session ends.
enum End {
    /// Input ended (or a `logout` line) and every request was answered; with `--stay`, Ctrl-C.
    Done,
    /// Ctrl-C or SIGTERM before that.
    Interrupted,
    /// The SDK stopped by itself (e.g. credentials refused on a reconnect).
    Stopped(String),
    /// Standard output cannot be written.
    Output(std::io::Error),
}

type Call = Pin<Box<dyn Future<Output = Result<Value, ClientError>> + Send>>;

/// The logged-in loop: reads input, runs requests concurrently, prints everything.
struct Session {
    client: Client,
    notices: EventStream,
    input: mpsc::Receiver<Input>,
    input_open: bool,
    out: Output,
    stay: bool,
    /// Requests in flight, with the `id` and `op` their result line needs.
    requests: JoinSet<Result<Value, ClientError>>,
    in_flight: HashMap<task::Id, (Value, String)>,
    /// The `id` of a `logout` line, answered once the logout is done.
    logout_id: Option<Value>,
}

impl Session {
    fn new(client: Client, notices: EventStream, input: mpsc::Receiver<Input>, stay: bool) -> Self {
        Self {
            client,
            notices,
            input,
            input_open: true,
            out: Output {
                stdout: tokio::io::stdout(),
            },
            stay,
            requests: JoinSet::new(),
            in_flight: HashMap::new(),
            logout_id: None,
        }
    }

    async fn run(mut self) -> Result<()> {
        // The `connected` line first: login queued it before returning, and in the loop below
        // a bad input line could otherwise win the race.
        loop {
            let notice = self.notices.next().await;
            let connected = matches!(notice, Some(Notice::Connected(_)));
            if let Err(end) = self.on_notice(notice).await {
                return self.finish(end).await;
            }
            if connected {
                break;
            }
        }
        let interrupted = beckon_server::wait_for_signal();
        tokio::pin!(interrupted);
        let end = loop {
            let finished = !self.input_open && self.requests.is_empty();
            if finished && (!self.stay || self.logout_id.is_some()) {
                break End::Done;
            }
            let step = tokio::select! {
                () = &mut interrupted => Err(End::Interrupted),
                notice = self.notices.next() => self.on_notice(notice).await,
                Some(joined) = self.requests.join_next_with_id() => self.on_answer(joined).await,
                input = self.input.recv(), if self.input_open => self.on_input(input).await,
            };
            if let Err(end) = step {
                break end;
            }
        };
        self.finish(end).await
    }

    async fn on_notice(&mut self, notice: Option<Notice>) -> Result<(), End> {
        // The SDK keeps the stream open while the client lives.
        let Some(notice) = notice else {
            return Err(End::Stopped("the client ended".to_owned()));
        };
        self.out
            .line(&notice_line(&notice))
            .await
            .map_err(End::Output)?;
        match notice {
            Notice::Stopped { reason, .. } => Err(End::Stopped(reason)),
            _ => Ok(()),
        }
    }

    async fn on_answer(
        &mut self,
        joined: Result<(task::Id, Result<Value, ClientError>), task::JoinError>,
    ) -> Result<(), End> {
        let (task_id, outcome) = match joined {
            Ok((task_id, outcome)) => (task_id, outcome),
            Err(error) => (
                error.id(),
                Err(ClientError::Protocol(format!(
                    "the request failed: {error}"
                ))),
            ),
        };
        let (id, op) = self
            .in_flight
            .remove(&task_id)
            .unwrap_or((Value::Null, String::new()));
        self.out
            .line(&result_line(&id, &op, outcome))
            .await
            .map_err(End::Output)
    }

    async fn on_input(&mut self, input: Option<Input>) -> Result<(), End> {
        let line = match input {
            None => {
                self.input_open = false;
                return Ok(());
            }
            Some(Input::NotUtf8) => {
                let line = error_line(&Value::Null, "the line is not UTF-8");
                return self.out.line(&line).await.map_err(End::Output);
            }
            Some(Input::Line(line)) => line,
        };
        let line = line.trim();
        if line.is_empty() {
            return Ok(());
        }
        let request = match parse_line(line) {
            Ok(request) => request,
            Err((id, message)) => {
                return self
                    .out
                    .line(&error_line(&id, &message))
                    .await
                    .map_err(End::Output);
            }
        };
        let answer = match request.op.as_str() {
            GET_SIGNALING_INFO => {
                let info = request
                    .params
                    .get("message")
                    .and_then(Client::get_signaling_info);
                Ok(serde_json::to_value(info).unwrap_or(Value::Null))
            }
            // The session is this process's: it logs in at start and out at the end.
            op::LOGIN => Err(ClientError::Refused {
                code: ErrorCode::AlreadyLoggedIn.as_u32(),
                message: "already logged in (beckon client logs in when it starts)".to_owned(),
            }),
            op::LOGOUT => {
                // Ends the session like the end of input; answered after the logout.
                self.logout_id = Some(request.id);
                self.input_open = false;
                return Ok(());
            }
            _ => return self.start(request).await,
        };
        self.out
            .line(&result_line(&request.id, &request.op, answer))
            .await
            .map_err(End::Output)
    }

    /// Sends a request and lets it run while the next lines are read.
    async fn start(&mut self, request: Request) -> Result<(), End> {
        let Request { id, op, params } = request;
        let client = self.client.clone();
        let name = op.clone();
        let mut call: Call = Box::pin(async move { client.request(&name, params).await });
        // The SDK queues a request on its first poll; polling once here, before the next line
        // is read, keeps requests on the wire in input order (a proposed inviteID, then its
        // cancel) while their answers are awaited concurrently.
        match std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
            Poll::Ready(outcome) => self
                .out
                .line(&result_line(&id, &op, outcome))
                .await
                .map_err(End::Output),
            Poll::Pending => {
                let task_id = self.requests.spawn(call).id();
                self.in_flight.insert(task_id, (id, op));
                Ok(())
            }
        }
    }

    async fn finish(mut self, end: End) -> Result<()> {
        let outcome = match end {
            End::Done | End::Interrupted => Ok(()),
            End::Output(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            End::Output(error) => Err(anyhow!(error).context("cannot write standard output")),
            End::Stopped(reason) => {
                // Requests still in flight fail at once now; their lines still go out.
                while let Some(joined) = self.requests.join_next_with_id().await {
                    if self.on_answer(joined).await.is_err() {
                        break;
                    }
                }
                return Err(anyhow!("the client stopped: {reason}"));
            }
        };
        let Session {
            client,
            notices,
            out,
            mut requests,
            logout_id,
            ..
        } = self;
        // Requests still in flight here are abandoned: only Ctrl-C or a lost stdout leaves any.
        requests.shutdown().await;
        // A second Ctrl-C does not wait for the logout.
        tokio::select! {
            () = log_out(client, notices, out, logout_id) => {}
            () = beckon_server::wait_for_signal() => eprintln!("beckon client: interrupted again; quitting"),
        }
        outcome
    }
}

/// Logs out and prints the last lines: the answer to a `logout` line, then the notices up to
/// the SDK's `stopped`.
async fn log_out(
    client: Client,
    mut notices: EventStream,
    mut out: Output,
    logout_id: Option<Value>,
) {
    let logged_out = client.logout().await.map(|()| json!({}));
    match logout_id {
        Some(id) => {
            let _ = out.line(&result_line(&id, op::LOGOUT, logged_out)).await;
        }
        None => {
            if let Err(error) = logged_out {
                eprintln!("beckon client: logout: {error}");
            }
        }
    }
    // The stream ends once the SDK has let go of the client.
    drop(client);
    let deadline = Instant::now() + LAST_NOTICES;
    while let Ok(Some(notice)) = timeout_at(deadline, notices.next()).await {
        if out.line(&notice_line(&notice)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_requests() {
        let request = parse_line(r#"{"op":"invite","id":1,"userID":"bob","timeout":30}"#)
            .unwrap_or_else(|(_, message)| panic!("{message}"));
        assert_eq!(request.id, json!(1));
        assert_eq!(request.op, "invite");
        assert_eq!(request.params, json!({"userID": "bob", "timeout": 30}));

        let framed = parse_line(r#"{"op":"cancel","params":{"inviteID":"x"}}"#)
            .unwrap_or_else(|(_, message)| panic!("{message}"));
        assert_eq!(framed.id, Value::Null);
        assert_eq!(framed.params, json!({"inviteID": "x"}));

        let bare = parse_line(r#"{"op":"getConversationList"}"#)
            .unwrap_or_else(|(_, message)| panic!("{message}"));
        assert_eq!(bare.params, json!({}));
    }

    #[test]
    fn bad_lines_keep_their_id() {
        assert!(matches!(parse_line("not json"), Err((Value::Null, _))));
        assert!(matches!(parse_line("[1]"), Err((Value::Null, _))));
        let Err((id, _)) = parse_line(r#"{"id":"x","op":3}"#) else {
            panic!("a numeric op is refused");
        };
        assert_eq!(id, json!("x"));
        assert!(parse_line(r#"{"id":"y"}"#).is_err());
    }

    #[test]
    fn output_lines() {
        let event = Notice::Event(beckon_client::EventFrame {
            name: "newInvitationReceived".into(),
            seq: None,
            data: json!({"inviteID": "i"}),
        });
        assert_eq!(
            notice_line(&event).to_string(),
            r#"{"type":"event","name":"newInvitationReceived","data":{"inviteID":"i"}}"#
        );
        let refused = result_line(
            &json!("a"),
            "accept",
            Err(ClientError::Refused {
                code: 8010,
                message: "finished".into(),
            }),
        );
        assert_eq!(
            refused.to_string(),
            r#"{"type":"result","id":"a","op":"accept","code":8010,"message":"finished"}"#
        );
        assert_eq!(
            result_line(&Value::Null, "ping", Err(ClientError::Timeout))["code"],
            -1
        );
    }
}
