//! `beckon client` as people script it: real processes talking through pipes to a real
//! server. Two clients ring each other, bad lines get error lines, requests go out in input
//! order, a refused login exits with 2, and dev mode mints the UserSig from a local server's
//! data directory.

use beckon_tests::{beckon_bin, served_address, TestServer, SDK_APP_ID, WAIT};
use serde_json::{json, Value};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Settings the clients must not pick up from the environment of the test run.
const BECKON_ENV: [&str; 6] = [
    "BECKON_SERVER",
    "BECKON_SDKAPPID",
    "BECKON_USER",
    "BECKON_USERSIG",
    "BECKON_DATA_DIR",
    "BECKON_SECRET_KEY",
];

/// A `beckon` command with a clean environment, killed if the test drops it.
fn beckon(args: &[&str]) -> Command {
    let mut command = Command::new(beckon_bin());
    command.args(args).kill_on_drop(true);
    for name in BECKON_ENV {
        command.env_remove(name);
    }
    command
}

/// A running `beckon client` with its stdin and stdout.
struct CliProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    name: String,
}

impl CliProcess {
    fn spawn(name: &str, args: &[&str]) -> Self {
        let mut child = beckon(&[&["client"], args].concat())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("beckon client starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self {
            child,
            stdin: Some(stdin),
            stdout,
            name: name.to_owned(),
        }
    }

    /// A client of the test server, logged in with a UserSig from the harness.
    fn of(server: &TestServer, user: &str) -> Self {
        let sdk_app_id = SDK_APP_ID.to_string();
        let sig = server.user_sig(user);
        let url = server.ws_url();
        let args = [
            "--server",
            &url,
            "--sdkappid",
            &sdk_app_id,
            "--user",
            user,
            "--usersig",
            &sig,
        ];
        Self::spawn(user, &args)
    }

    async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to client");
        stdin.flush().await.expect("flush to client");
    }

    /// The next output line, parsed; `None` at EOF.
    async fn next_line(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: no output line within {WAIT:?}", self.name))
            .expect("read client output")?;
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: {line:?} is not JSON: {e}", self.name)),
        )
    }

    /// The next line matching `wanted`, skipping others (events interleave with results).
    async fn line_where(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.next_line().await {
                Some(line) if wanted(&line) => return line,
                Some(_) => {}
                None => panic!("{}: output ended before {what}", self.name),
            }
        }
    }

    async fn result(&mut self, id: impl Into<Value>) -> Value {
        let id = id.into();
        self.line_where(&format!("the result of {id}"), |line| {
            line["type"] == "result" && line["id"] == id
        })
        .await
    }

    async fn event(&mut self, name: &str) -> Value {
        self.line_where(&format!("a {name} event"), |line| {
            line["type"] == "event" && line["name"] == name
        })
        .await
    }

    /// Closes stdin; returns the remaining lines and the exit status.
    async fn finish(mut self) -> (Vec<Value>, ExitStatus) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        while let Some(line) = self.next_line().await {
            rest.push(line);
        }
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{}: did not exit within {WAIT:?} after EOF", self.name))
            .expect("wait for client");
        (rest, status)
    }
}

/// Checks the first line is the `connected` line of `user`.
async fn expect_connected(cli: &mut CliProcess, user: &str) {
    let first = cli.next_line().await.expect("a first line");
    assert_eq!(first["type"], "connected", "first line: {first}");
    assert_eq!(first["userID"], user, "first line: {first}");
}

/// Checks the end after EOF: exit 0 and the logout's `stopped` line last.
async fn expect_clean_exit(cli: CliProcess) -> Vec<Value> {
    let name = cli.name.clone();
    let (rest, status) = cli.finish().await;
    assert!(status.success(), "{name} exited with {status}");
    let last = rest
        .last()
        .unwrap_or_else(|| panic!("{name}: no stopped line"));
    assert_eq!(last["type"], "stopped", "{name}: {last}");
    assert_eq!(last["reason"], "logged out", "{name}: {last}");
    rest
}

#[tokio::test]
async fn two_clients_ring_each_other() {
    let server = TestServer::start().await;
    // Bob logs in first: his login creates his account.
    let mut bob = CliProcess::of(&server, "bob");
    expect_connected(&mut bob, "bob").await;
    let mut alice = CliProcess::of(&server, "alice");
    expect_connected(&mut alice, "alice").await;

    alice
        .send(r#"{"op":"invite","id":"a1","userID":"bob","data":"hi","timeout":30}"#)
        .await;
    let sent = alice.result("a1").await;
    assert_eq!(sent["op"], "invite");
    assert_eq!(sent["code"], 0, "{sent}");
    let invite_id = sent["data"]["inviteID"]
        .as_str()
        .expect("inviteID")
        .to_owned();

    let ring = bob.event("newInvitationReceived").await;
    assert_eq!(ring["data"]["inviteID"], invite_id.as_str());
    assert_eq!(ring["data"]["inviter"], "alice");
    assert_eq!(ring["data"]["data"], "hi");

    bob.send(&json!({"op": "accept", "id": "b1", "inviteID": invite_id}).to_string())
        .await;
    let accepted = bob.result("b1").await;
    assert_eq!(accepted["code"], 0, "{accepted}");
    let heard = alice.event("ts_invitee_accepted").await;
    assert_eq!(heard["data"]["inviteID"], invite_id.as_str());
    assert_eq!(heard["data"]["invitee"], "bob");
    assert!(heard["seq"].is_u64(), "{heard}");

    // An answer after the end is refused with Tencent's code, and the line says so.
    bob.send(&json!({"op": "reject", "id": "b2", "inviteID": invite_id}).to_string())
        .await;
    let late = bob.result("b2").await;
    assert_eq!(late["code"], 8010, "{late}");
    assert!(late["message"].is_string(), "{late}");

    // getSignalingInfo runs locally on a message given in the line.
    let message = sent["data"]["message"].clone();
    alice
        .send(&json!({"op": "getSignalingInfo", "id": "a2", "message": message}).to_string())
        .await;
    let info = alice.result("a2").await;
    assert_eq!(info["data"]["inviteID"], invite_id.as_str(), "{info}");
    assert_eq!(info["data"]["actionType"], 1, "{info}");
    alice
        .send(r#"{"op":"getSignalingInfo","id":"a3","message":{"type":"TIMTextElem"}}"#)
        .await;
    assert_eq!(alice.result("a3").await["data"], Value::Null);

    // Bad lines get error lines and the session goes on; blank lines are ignored.
    alice.send("").await;
    alice.send("this is not json").await;
    let bad = alice
        .line_where("an error line", |line| line["type"] == "error")
        .await;
    assert_eq!(bad["code"], 9001, "{bad}");
    assert_eq!(bad["id"], Value::Null, "{bad}");
    alice.send(r#"{"id":"a4","userID":"bob"}"#).await;
    let no_op = alice
        .line_where("an error line", |line| line["type"] == "error")
        .await;
    assert_eq!(no_op["code"], 9001, "{no_op}");
    assert_eq!(no_op["id"], "a4", "{no_op}");
    alice.send(r#"{"op":"noSuchOperation","id":"a5"}"#).await;
    let unknown = alice.result("a5").await;
    assert_eq!(unknown["code"], 9002, "{unknown}");
    assert_eq!(unknown["op"], "noSuchOperation");

    // Requests go out in input order while answers are awaited concurrently: a proposed
    // inviteID and its cancel, written together.
    let proposed = format!("cli-{}", uuid::Uuid::new_v4());
    let both = format!(
        "{}\n{}",
        json!({"op": "invite", "id": "a6", "userID": "bob", "inviteID": proposed}),
        json!({"op": "cancel", "id": "a7", "inviteID": proposed}),
    );
    alice.send(&both).await;
    // Both succeed; their answers may arrive in either order.
    let mut answers = std::collections::HashMap::new();
    while answers.len() < 2 {
        let line = alice.next_line().await.expect("alice's output goes on");
        if line["type"] == "result" && (line["id"] == "a6" || line["id"] == "a7") {
            answers.insert(line["id"].to_string(), line);
        }
    }
    for answer in answers.values() {
        assert_eq!(answer["code"], 0, "{answer}");
    }
    let gone = bob.event("ts_invitation_cancelled").await;
    assert_eq!(gone["data"]["inviteID"], proposed.as_str());

    // Groups and group calls go through the same lines.
    alice
        .send(r#"{"op":"createGroup","id":"g1","groupID":"cli-team","name":"team","memberList":[{"userID":"bob"}]}"#)
        .await;
    let group = alice.result("g1").await;
    assert_eq!(group["data"]["group"]["memberCount"], 2, "{group}");
    alice
        .send(r#"{"op":"inviteInGroup","id":"g2","groupID":"cli-team","inviteeList":["bob"],"timeout":30}"#)
        .await;
    assert_eq!(alice.result("g2").await["code"], 0);
    let group_ring = bob.event("newInvitationReceived").await;
    assert_eq!(group_ring["data"]["groupID"], "cli-team");
    bob.send(r#"{"op":"quitGroup","id":"b3","groupID":"cli-team"}"#)
        .await;
    // The withdrawal event and the result may come in either order.
    let (mut quit, mut withdrawn) = (None, None);
    while quit.is_none() || withdrawn.is_none() {
        let line = bob.next_line().await.expect("bob's output goes on");
        if line["type"] == "result" && line["id"] == "b3" {
            quit = Some(line);
        } else if line["name"] == "ts_invitation_cancelled" {
            withdrawn = Some(line);
        }
    }
    assert_eq!(quit.map(|q| q["code"].clone()), Some(json!(0)));
    let withdrawn = withdrawn.unwrap_or_default();
    assert_eq!(withdrawn["data"]["reason"], "memberQuit", "{withdrawn}");

    // A request still in flight at EOF is answered before the logout.
    alice.send(r#"{"op":"ping","id":"a8"}"#).await;
    let rest = expect_clean_exit(alice).await;
    assert!(
        rest.iter()
            .any(|line| line["type"] == "result" && line["id"] == "a8" && line["code"] == 0),
        "no answer to a8 after EOF: {rest:?}"
    );
    expect_clean_exit(bob).await;
}

#[tokio::test]
async fn refused_login_exits_with_2() {
    let server = TestServer::start().await;
    let url = server.ws_url();
    let sdk_app_id = SDK_APP_ID.to_string();
    let output = beckon(&[
        "client",
        "--server",
        &url,
        "--sdkappid",
        &sdk_app_id,
        "--user",
        "alice",
        "--usersig",
        "not-a-sig",
    ])
    .stdin(Stdio::null())
    .output();
    let output = tokio::time::timeout(WAIT, output)
        .await
        .expect("a refused client exits in time")
        .expect("beckon client runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refused with code 70003"), "{stderr}");
}

#[tokio::test]
async fn dev_mode_mints_the_usersig_from_the_data_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("UTF-8 temp path").to_owned();
    let mut serve = beckon(&["serve", "--data-dir", &data_dir, "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("beckon serve starts");
    let addr = served_address(serve.stdout.take().expect("piped stdout")).await;
    let url = format!("ws://{addr}/ws");

    // No --usersig: minted from the dev credentials serve wrote.
    let mut alice = CliProcess::spawn(
        "alice",
        &["--server", &url, "--data-dir", &data_dir, "--user", "alice"],
    );
    expect_connected(&mut alice, "alice").await;
    alice.send(r#"{"op":"ping","id":1}"#).await;
    assert_eq!(alice.result(1).await["code"], 0);
    expect_clean_exit(alice).await;

    // --usersig without --sdkappid: the SDKAppID comes from the same file.
    let minted = beckon(&["usersig", "bob", "--data-dir", &data_dir])
        .stdin(Stdio::null())
        .output();
    let minted = tokio::time::timeout(WAIT, minted)
        .await
        .expect("usersig in time")
        .expect("usersig runs");
    assert!(minted.status.success(), "{minted:?}");
    let sig = String::from_utf8_lossy(&minted.stdout).trim().to_owned();
    let mut bob = CliProcess::spawn(
        "bob",
        &[
            "--server",
            &url,
            "--data-dir",
            &data_dir,
            "--user",
            "bob",
            "--usersig",
            &sig,
        ],
    );
    expect_connected(&mut bob, "bob").await;
    expect_clean_exit(bob).await;

    serve.kill().await.expect("stop beckon serve");
}

#[tokio::test]
async fn serve_keeps_serving_when_its_standard_output_is_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("UTF-8 temp path").to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = beckon(&["serve", "--data-dir", &data_dir, "--listen", &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("beckon serve starts");
    // Closed before the server writes anything: every line it prints meets a broken pipe.
    drop(serve.stdout.take());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            serve.try_wait().expect("status").is_none(),
            "serve exited when its output was closed"
        );
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut raw = beckon_tests::RawSocket::connect(&format!("ws://{listen}/ws")).await;
    let pong = raw.request("ping", json!({})).await;
    assert_eq!(pong["code"], 0, "{pong}");
    // It stops only when asked, and cleanly: a server that died of its closed output would
    // have exited with a panic's status by now or at the latest here.
    let pid = serve.id().expect("serve is running").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(signalled.success(), "SIGINT sent");
    let status = tokio::time::timeout(WAIT, serve.wait())
        .await
        .expect("serve stops in time")
        .expect("serve status");
    assert!(status.success(), "serve exited with {status}");
}
