//! Helpers shared by the black-box tests: start the real server on `127.0.0.1:0` with a
//! fresh data directory, mint UserSigs, log clients in through the Rust SDK, and speak the raw
//! protocol when a test needs to send what no SDK would.

use beckon_client::{Client, ClientConfig, EventStream, Notice};
use beckon_server::{RunningServer, Server, ServerConfig};
use beckon_usersig::UserSigKey;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for `cargo build -p beckon`.
const BUILD_WAIT: Duration = Duration::from_secs(900);

/// Upper bound for waiting on something that should happen; tests fail, never hang.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(300);

pub const SDK_APP_ID: u64 = 1_400_000_001;
pub const SECRET: &str = "test-secret-key-0123456789abcdef";

/// A real server on a loopback port, with its own data directory.
pub struct TestServer {
    pub config: ServerConfig,
    server: Option<RunningServer>,
    addr: SocketAddr,
    // Kept for the directory's lifetime.
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the default test configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` changes the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_owned(),
            sdk_app_id: SDK_APP_ID,
            secret_key: SECRET.into(),
            rate_limit_per_second: 100_000,
            ..ServerConfig::default()
        };
        adjust(&mut config);
        let server = Server::start(config.clone()).await.expect("server starts");
        let addr = server.local_addr();
        Self {
            config,
            server: Some(server),
            addr,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn key(&self) -> UserSigKey {
        UserSigKey::new(SDK_APP_ID, SECRET)
    }

    /// A UserSig valid for a day.
    pub fn user_sig(&self, user: &str) -> String {
        self.key().generate(user, unix_now(), 86_400)
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().expect("server is running")
    }

    /// SDK settings for `user`, with fast reconnects for tests.
    pub fn client_config(&self, user: &str) -> ClientConfig {
        let mut config = ClientConfig::new(self.ws_url(), SDK_APP_ID, user, self.user_sig(user));
        config.backoff_initial = Duration::from_millis(20);
        config.backoff_max = Duration::from_millis(200);
        config
    }

    /// A logged-in client and the stream of everything it hears, subscribed before login.
    pub async fn client(&self, user: &str) -> (Client, EventStream) {
        let client = Client::new(self.client_config(user));
        let events = client.subscribe();
        client
            .login()
            .await
            .unwrap_or_else(|e| panic!("login of {user} failed: {e}"));
        (client, events)
    }

    /// Creates accounts by logging each user in once and out again.
    pub async fn create_users(&self, users: &[&str]) {
        for user in users {
            let (client, _) = self.client(user).await;
            client.logout().await.expect("logout");
        }
    }

    /// Graceful shutdown; the data directory stays.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Starts the server again on the same data directory and the same port.
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "stop the server first");
        let mut config = self.config.clone();
        config.listen = self.addr;
        let server = Server::start(config).await.expect("server restarts");
        self.server = Some(server);
    }

    /// Stops and starts again.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// A raw protocol connection (not logged in).
    pub async fn raw(&self) -> RawSocket {
        RawSocket::connect(&self.ws_url()).await
    }

    /// A raw connection logged in as `user`; returns it with the login result's data.
    pub async fn raw_login(
        &self,
        user: &str,
        instance: &str,
        last_seq: Option<u64>,
    ) -> (RawSocket, Value) {
        let mut raw = self.raw().await;
        let mut params = json!({
            "SDKAppID": SDK_APP_ID, "userID": user, "userSig": self.user_sig(user), "instanceID": instance,
        });
        if let Some(seq) = last_seq {
            params["lastSeq"] = json!(seq);
        }
        let result = raw.request("login", params).await;
        assert_eq!(result["code"], 0, "login failed: {result}");
        (raw, result["data"].clone())
    }

    /// POSTs JSON to an admin endpoint; returns (HTTP status, body).
    pub async fn admin_post(
        &self,
        command: &str,
        identifier: &str,
        sig: &str,
        body: &Value,
    ) -> (u16, Value) {
        let path = format!(
            "/v4/im_open_login_svc/{command}?sdkappid={SDK_APP_ID}&identifier={identifier}&usersig={sig}&random=1&contenttype=json"
        );
        http_post(self.addr, &path, &body.to_string()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A server still running at the end of a test is dropped with the runtime.
        self.server.take();
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Waits until the wall clock passes `deadline_ms` (a known instant, not a guess).
pub async fn wait_until_ms(deadline_ms: u64) {
    let now = now_ms();
    if deadline_ms > now {
        tokio::time::sleep(Duration::from_millis(deadline_ms - now + 5)).await;
    }
}

/// Minimal HTTP/1.1 POST over loopback (the admin API is plain JSON over HTTP).
pub async fn http_post(addr: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A WebSocket speaking raw `beckon.v1` frames.
pub struct RawSocket {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
    /// Events read while waiting for a result, in order.
    pub buffered: Vec<Value>,
}

/// How a raw read ended.
#[derive(Debug, PartialEq)]
pub enum RawRead {
    Frame(Value),
    Closed(Option<u16>),
    TimedOut,
}

impl RawSocket {
    pub async fn connect(url: &str) -> Self {
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            beckon_proto::SUBPROTOCOL.parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connects");
        Self {
            ws,
            next_id: 1,
            buffered: Vec::new(),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// Reads the next frame, or how the socket ended.
    pub async fn read(&mut self, within: Duration) -> RawRead {
        loop {
            match tokio::time::timeout(within, self.ws.next()).await {
                Err(_) => return RawRead::TimedOut,
                Ok(None | Some(Err(_))) => return RawRead::Closed(None),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return RawRead::Frame(
                        serde_json::from_str(text.as_str()).expect("server frames are JSON"),
                    )
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return RawRead::Closed(frame.map(|f| u16::from(f.code)))
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Sends a request and returns its result frame; events that arrive first are buffered.
    pub async fn request(&mut self, op: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(&json!({"id": id, "op": op, "params": params}).to_string())
            .await;
        self.result_for(&json!(id)).await
    }

    /// Waits for the result frame with this id.
    pub async fn result_for(&mut self, id: &Value) -> Value {
        loop {
            match self.read(WAIT).await {
                RawRead::Frame(frame) if frame["type"] == "result" && frame["id"] == *id => {
                    return frame
                }
                RawRead::Frame(frame) if frame["type"] == "event" => self.buffered.push(frame),
                RawRead::Frame(other) => panic!("unexpected frame {other}"),
                other => panic!("no result for {id}: {other:?}"),
            }
        }
    }

    /// The next event (buffered first).
    pub async fn next_event(&mut self, within: Duration) -> Option<Value> {
        if !self.buffered.is_empty() {
            return Some(self.buffered.remove(0));
        }
        match self.read(within).await {
            RawRead::Frame(frame) if frame["type"] == "event" => Some(frame),
            RawRead::Frame(other) => panic!("expected an event, got {other}"),
            _ => None,
        }
    }

    /// Every event arriving until the socket is quiet for `quiet`.
    pub async fn drain_events(&mut self, quiet: Duration) -> Vec<Value> {
        let mut events = std::mem::take(&mut self.buffered);
        while let Some(event) = self.next_event(quiet).await {
            events.push(event);
        }
        events
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.read(WAIT).await {
                RawRead::Frame(_) => {}
                RawRead::Closed(code) => return code,
                RawRead::TimedOut => panic!("server did not close the socket"),
            }
        }
    }

    /// Closes the TCP connection abruptly, without a close frame.
    pub fn drop_abruptly(self) {
        drop(self);
    }
}

/// Waits for the next notice that is an event named `name`, failing the test on timeout.
pub async fn expect_event(events: &mut EventStream, name: &str) -> beckon_client::EventFrame {
    events
        .next_event(name, WAIT)
        .await
        .unwrap_or_else(|| panic!("no {name} event within {WAIT:?}"))
}

/// Waits for the next `Connected` notice.
pub async fn expect_connected(events: &mut EventStream) -> beckon_client::LoginResult {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match events.next_within(left).await {
            Some(Notice::Connected(result)) => return result,
            Some(_) => {}
            None => panic!("no Connected notice within {WAIT:?}"),
        }
    }
}

/// The `beckon` binary next to this test's target directory, built (once per test run) so
/// that it is never stale: this package cannot depend on a binary-only package.
pub fn beckon_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/cli-<hash> → target/<profile>/beckon
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable is in target/<profile>/deps");
        let bin = profile_dir.join(format!("beckon{}", std::env::consts::EXE_SUFFIX));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build
            .current_dir(workspace)
            .args(["build", "--quiet", "-p", "beckon"]);
        if let Some(target_dir) = profile_dir.parent() {
            build.arg("--target-dir").arg(target_dir);
        }
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let mut child = build.spawn().expect("cargo build starts");
        let deadline = Instant::now() + BUILD_WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("cargo build status") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cargo build -p beckon took longer than {BUILD_WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "cargo build -p beckon failed: {status}");
        assert!(bin.exists(), "no binary at {}", bin.display());
        bin
    })
}

/// Reads `beckon serve`'s standard output until it says where it serves, and returns that
/// address (`HOST:PORT`); the rest of the output is read and dropped in the background.
pub async fn served_address(stdout: tokio::process::ChildStdout) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    // "beckon is serving on http://ADDR  (WebSocket: ws://ADDR/ws)"
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("serve prints its address in time")
            .expect("read serve output")
            .expect("serve is running");
        if let Some(rest) = line.split("serving on http://").nth(1) {
            let addr = rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_owned();
            // Keep reading, so the server's later lines never meet a closed pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return addr;
        }
    }
}
