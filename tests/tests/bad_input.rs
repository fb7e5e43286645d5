//! Bad input: malformed frames, wrong parameters, forged identities, bad credentials, abusive
//! transports and admin requests are refused with their documented codes, and the server keeps
//! serving everyone else.

use beckon_client::{event, ActionParams, Client, EventStream, InviteParams, Notice};
use beckon_tests::{
    http_post, now_ms, unix_now, wait_until_ms, RawRead, RawSocket, TestServer, SDK_APP_ID, SECRET,
    WAIT,
};
use beckon_usersig::UserSigKey;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// An SDK client that must never lose its connection during a test.
struct Watched {
    name: &'static str,
    client: Client,
    events: EventStream,
    connects: u32,
}

impl Watched {
    async fn join(server: &TestServer, name: &'static str) -> Self {
        let (client, events) = server.client(name).await;
        Self {
            name,
            client,
            events,
            connects: 0,
        }
    }

    /// Fails on any sign that the connection was dropped.
    fn check(&mut self, notice: &Notice) {
        let name = self.name;
        match notice {
            Notice::Connected(_) => {
                self.connects += 1;
                assert_eq!(self.connects, 1, "{name} had to log in again");
            }
            Notice::Reconnecting { close_code } => {
                panic!("{name} lost its connection (close code {close_code:?})")
            }
            Notice::Stopped { close_code, reason } => {
                panic!("{name} was stopped (close code {close_code:?}): {reason}")
            }
            Notice::Resync => panic!("{name} had to resync"),
            Notice::Event(_) => {}
        }
    }

    /// Waits for event `name` about `invite_id`.
    async fn wait_event(&mut self, name: &str, invite_id: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let notice = self
                .events
                .next_within(left)
                .await
                .unwrap_or_else(|| panic!("{} heard no {name} for {invite_id}", self.name));
            self.check(&notice);
            if let Notice::Event(frame) = notice {
                if frame.name == name && frame.data["inviteID"] == invite_id {
                    return frame.data;
                }
            }
        }
    }

    /// Checks every notice heard so far, without waiting.
    async fn assert_never_dropped(&mut self) {
        while let Some(notice) = self.events.next_within(Duration::ZERO).await {
            self.check(&notice);
        }
    }
}

/// Two connected SDK users who watch bad input happen to someone else.
struct Bystanders {
    carol: Watched,
    heidi: Watched,
}

impl Bystanders {
    async fn join(server: &TestServer) -> Self {
        Self {
            carol: Watched::join(server, "carol").await,
            heidi: Watched::join(server, "heidi").await,
        }
    }

    /// Carol rings heidi, heidi accepts, both ping: the server still serves them, on the
    /// connections they had before.
    async fn still_served(&mut self) {
        let sent = self
            .carol
            .client
            .invite(InviteParams {
                user_id: "heidi".into(),
                data: Some("still there?".into()),
                timeout: Some(30),
                ..Default::default()
            })
            .await
            .expect("bystander invite");
        let ring = self
            .heidi
            .wait_event(event::NEW_INVITATION_RECEIVED, &sent.invite_id)
            .await;
        assert_eq!(ring["inviter"], "carol");
        self.heidi
            .client
            .accept(ActionParams {
                invite_id: sent.invite_id.clone(),
                data: None,
            })
            .await
            .expect("bystander accept");
        let accepted = self
            .carol
            .wait_event(event::INVITEE_ACCEPTED, &sent.invite_id)
            .await;
        assert_eq!(accepted["invitee"], "heidi");
        self.carol.client.ping().await.expect("carol ping");
        self.heidi.client.ping().await.expect("heidi ping");
        self.carol.assert_never_dropped().await;
        self.heidi.assert_never_dropped().await;
    }
}

fn code_of(result: &Value) -> u64 {
    result["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("result without a numeric code: {result}"))
}

/// Asserts a refusal with `code`; returns its message.
fn refused(result: &Value, code: u64) -> String {
    assert_eq!(result["type"], "result", "not a result: {result}");
    assert_eq!(code_of(result), code, "unexpected result {result}");
    let message = result["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "refusal without a message: {result}");
    message
}

fn refused_naming(result: &Value, code: u64, field: &str) {
    let message = refused(result, code);
    assert!(
        message.contains(field),
        "message {message:?} does not name {field}"
    );
}

/// Sends a hand-written frame and returns the result with `id`.
async fn send_raw(raw: &mut RawSocket, text: &str, id: &Value) -> Value {
    raw.send_text(text).await;
    raw.result_for(id).await
}

async fn assert_ping_ok(raw: &mut RawSocket) {
    let result = raw.request("ping", json!({})).await;
    assert_eq!(code_of(&result), 0, "ping refused: {result}");
}

fn login_params(user: &str, sig: &str) -> Value {
    json!({"SDKAppID": SDK_APP_ID, "userID": user, "userSig": sig})
}

/// Alice (raw) invites bob; returns the inviteID.
async fn raw_invite(raw: &mut RawSocket, to: &str) -> String {
    let result = raw
        .request("invite", json!({"userID": to, "timeout": 30}))
        .await;
    assert_eq!(code_of(&result), 0, "invite refused: {result}");
    result["data"]["inviteID"]
        .as_str()
        .expect("inviteID")
        .to_owned()
}

/// Minimal HTTP/1.1 GET over loopback.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
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

fn admin_sig(server: &TestServer) -> String {
    server.user_sig("administrator")
}

async fn account_status(server: &TestServer, user: &str) -> Value {
    let (status, body) = server
        .admin_post(
            "account_check",
            "administrator",
            &admin_sig(server),
            &json!({"CheckItem": [{"UserID": user}]}),
        )
        .await;
    assert_eq!(status, 200, "account_check failed: {body}");
    assert_eq!(body["ActionStatus"], "OK", "{body}");
    body["ResultItem"][0]["AccountStatus"].clone()
}

fn assert_admin_refused(status: u16, body: &Value, want_status: u16, want_code: u64) {
    assert_eq!(status, want_status, "unexpected answer {body}");
    assert_eq!(body["ActionStatus"], "FAIL", "{body}");
    assert_eq!(body["ErrorCode"], want_code, "{body}");
}

#[tokio::test]
async fn frames_that_are_not_requests_are_malformed_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let mut raw = server.raw().await;

    for text in ["hello", "[1,2]", "5", "\"op\"", "null"] {
        let result = send_raw(&mut raw, text, &Value::Null).await;
        refused(&result, 9001);
        assert_eq!(result["id"], Value::Null, "{text} got {result}");
    }
    // An object whose `op` is missing or not a string: the id is still echoed.
    let result = send_raw(&mut raw, r#"{"id":7,"params":{}}"#, &json!(7)).await;
    refused(&result, 9001);
    let result = send_raw(&mut raw, r#"{"id":"x","op":5}"#, &json!("x")).await;
    refused(&result, 9001);
    // Whitespace anywhere, null params and an id that is itself an object are all fine.
    let spaced = " { \"id\" : { \"k\" : [ 1 , 2 ] } , \"op\" : \"ping\" , \"params\" : { } } ";
    let result = send_raw(&mut raw, spaced, &json!({"k": [1, 2]})).await;
    assert_eq!(code_of(&result), 0, "{result}");
    let result = send_raw(
        &mut raw,
        r#"{"id":8,"op":"p\u0069ng","params":null}"#,
        &json!(8),
    )
    .await;
    assert_eq!(code_of(&result), 0, "{result}");

    // The same connection still logs in and works.
    let login = raw
        .request("login", login_params("alice", &server.user_sig("alice")))
        .await;
    assert_eq!(code_of(&login), 0, "{login}");
    let result = send_raw(&mut raw, "{not json", &Value::Null).await;
    refused(&result, 9001);
    raw_invite(&mut raw, "carol").await;
    assert_ping_ok(&mut raw).await;
    others.still_served().await;
}

#[tokio::test]
async fn unknown_operations_and_requests_before_login() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let mut raw = server.raw().await;

    let result = send_raw(
        &mut raw,
        r#"{"id":"u1","op":"fly","params":{}}"#,
        &json!("u1"),
    )
    .await;
    refused(&result, 9002);
    for op in [
        "invite",
        "cancel",
        "accept",
        "getConversationList",
        "logout",
    ] {
        let result = raw.request(op, json!({"userID": "carol"})).await;
        refused(&result, 2024);
    }
    // Ping needs no login.
    assert_ping_ok(&mut raw).await;

    let login = raw
        .request("login", login_params("alice", &server.user_sig("alice")))
        .await;
    assert_eq!(code_of(&login), 0, "{login}");
    let result = send_raw(
        &mut raw,
        r#"{"id":{"n":[1,2]},"op":"Invite","params":{"userID":"carol"}}"#,
        &json!({"n": [1, 2]}),
    )
    .await;
    refused(&result, 9002);
    raw_invite(&mut raw, "carol").await;
    others.still_served().await;
}

#[tokio::test]
async fn missing_and_wrong_typed_parameters_name_the_field() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let (mut raw, _) = server.raw_login("alice", "alice-1", None).await;

    let cases = [
        ("invite", json!({}), "userID"),
        ("invite", json!({"userID": 5}), "userID"),
        (
            "invite",
            json!({"userID": "carol", "timeout": "x"}),
            "timeout",
        ),
        ("invite", json!({"userID": "carol", "data": {}}), "data"),
        (
            "invite",
            json!({"userID": "carol", "onlineUserOnly": "yes"}),
            "onlineUserOnly",
        ),
        ("cancel", json!({}), "inviteID"),
        ("accept", json!({"inviteID": 1}), "inviteID"),
        ("modifyInvitation", json!({"inviteID": "i"}), "data"),
        (
            "getMessageList",
            json!({"conversationID": []}),
            "conversationID",
        ),
    ];
    for (op, params, field) in cases {
        let result = raw.request(op, params.clone()).await;
        assert_eq!(code_of(&result), 9003, "{op} {params}: {result}");
        refused_naming(&result, 9003, field);
        // Positions inside `params` would not match the frame the client sent.
        let message = refused(&result, 9003);
        assert!(!message.contains(" at line "), "{message:?}");
    }
    // `params` that is not an object.
    for params in [r"[1]", r#""str""#, "7"] {
        let text = format!(r#"{{"id":"p","op":"invite","params":{params}}}"#);
        let result = send_raw(&mut raw, &text, &json!("p")).await;
        refused_naming(&result, 9003, "params");
    }

    // Nothing was created by the refusals, and the connection still works.
    let id = raw_invite(&mut raw, "carol").await;
    let ring = others
        .carol
        .wait_event(event::NEW_INVITATION_RECEIVED, &id)
        .await;
    assert_eq!(ring["inviter"], "alice");
    others.still_served().await;
}

#[tokio::test]
async fn oversized_data_and_push_info_are_too_large() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let (mut raw, _) = server.raw_login("alice", "alice-1", None).await;

    let too_long = "d".repeat(8 * 1024 + 1);
    let result = raw
        .request("invite", json!({"userID": "carol", "data": too_long}))
        .await;
    refused_naming(&result, 9007, "data");
    let big_push = json!({"title": "t", "description": "p".repeat(4100)});
    let result = raw
        .request(
            "invite",
            json!({"userID": "carol", "offlinePushInfo": big_push}),
        )
        .await;
    refused_naming(&result, 9007, "offlinePushInfo");
    let result = raw
        .request(
            "invite",
            json!({"userID": "carol", "offlinePushInfo": {"title": 5}}),
        )
        .await;
    refused_naming(&result, 9003, "offlinePushInfo");
    let result = raw
        .request(
            "invite",
            json!({"userID": "carol", "offlinePushInfo": {"androidInfo": "x"}}),
        )
        .await;
    refused(&result, 9003);

    // Exactly at the limits is accepted.
    let result = raw
        .request(
            "invite",
            json!({
                "userID": "carol",
                "data": "d".repeat(8 * 1024),
                "offlinePushInfo": {"title": "t", "description": "p".repeat(3000)},
            }),
        )
        .await;
    assert_eq!(code_of(&result), 0, "{result}");
    let invite_id = result["data"]["inviteID"].as_str().expect("inviteID");
    let ring = others
        .carol
        .wait_event(event::NEW_INVITATION_RECEIVED, invite_id)
        .await;
    assert_eq!(ring["data"].as_str().map(str::len), Some(8 * 1024));

    // An answer with oversized data is refused too, and the invitation stays answerable.
    let result = others
        .carol
        .client
        .accept(ActionParams {
            invite_id: invite_id.to_owned(),
            data: Some(too_long.clone()),
        })
        .await
        .expect_err("oversized accept data");
    assert_eq!(result.code(), Some(9007));
    others
        .carol
        .client
        .accept(ActionParams {
            invite_id: invite_id.to_owned(),
            data: None,
        })
        .await
        .expect("accept after the refusal");
    others.still_served().await;
}

#[tokio::test]
async fn invalid_user_ids_at_login_are_refused() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let mut raw = server.raw().await;

    let long = "u".repeat(129);
    for user in ["ali\u{1}ce", "alice\n", "", long.as_str()] {
        let result = raw
            .request("login", login_params(user, &server.user_sig(user)))
            .await;
        refused_naming(&result, 9003, "userID");
    }
    for params in [
        json!({"userID": "alice", "userSig": server.user_sig("alice")}),
        json!({"SDKAppID": "x", "userID": "alice", "userSig": server.user_sig("alice")}),
        json!({"SDKAppID": SDK_APP_ID, "userID": 5, "userSig": server.user_sig("alice")}),
    ] {
        let result = raw.request("login", params).await;
        refused(&result, 9003);
    }

    // 128 bytes is the longest valid userID; the connection logs in after its refusals.
    let longest = "u".repeat(128);
    let result = raw
        .request("login", login_params(&longest, &server.user_sig(&longest)))
        .await;
    assert_eq!(code_of(&result), 0, "{result}");
    assert_eq!(result["data"]["userID"], longest.as_str());
    let id = raw_invite(&mut raw, "carol").await;
    let ring = others
        .carol
        .wait_event(event::NEW_INVITATION_RECEIVED, &id)
        .await;
    assert_eq!(ring["inviter"], longest.as_str());
    others.still_served().await;
}

#[tokio::test]
async fn identities_in_params_are_ignored() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let (mut alice, _) = server.raw_login("alice", "alice-1", None).await;
    let (mut bob, _) = server.raw_login("bob", "bob-1", None).await;
    let (mut mallory, _) = server.raw_login("mallory", "mallory-1", None).await;

    let invite_id = raw_invite(&mut alice, "bob").await;
    // Bob claims to be the inviter: still not allowed to cancel.
    let result = bob
        .request(
            "cancel",
            json!({"inviteID": invite_id, "inviter": "alice", "userID": "alice"}),
        )
        .await;
    refused(&result, 8011);
    // Mallory claims to be bob: still not invited.
    for op in ["accept", "reject"] {
        let result = mallory
            .request(
                op,
                json!({"inviteID": invite_id, "userID": "bob", "invitee": "bob"}),
            )
            .await;
        refused(&result, 8011);
    }
    // The invitation is untouched: bob answers it as himself.
    let result = bob
        .request(
            "accept",
            json!({"inviteID": invite_id, "userID": "mallory"}),
        )
        .await;
    assert_eq!(code_of(&result), 0, "{result}");
    let accepted = loop {
        let event = alice
            .next_event(WAIT)
            .await
            .expect("alice hears the answer");
        if event["name"] == event::INVITEE_ACCEPTED {
            break event;
        }
        assert_ne!(event["name"], event::INVITEE_REJECTED, "{event}");
        assert_ne!(event["name"], event::INVITATION_CANCELLED, "{event}");
    };
    assert_eq!(accepted["data"]["invitee"], "bob");
    assert_eq!(accepted["data"]["inviter"], "alice");
    others.still_served().await;
}

#[tokio::test]
async fn bad_credentials_are_refused_with_their_codes() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let mut raw = server.raw().await;
    let now = unix_now();

    let cases = [
        // Bob's ticket used to log in as alice.
        (login_params("alice", &server.user_sig("bob")), 70013),
        // Another SDKAppID in the login.
        (
            json!({"SDKAppID": SDK_APP_ID + 1, "userID": "alice", "userSig": server.user_sig("alice")}),
            70014,
        ),
        // A ticket minted for another SDKAppID.
        (
            login_params(
                "alice",
                &UserSigKey::new(SDK_APP_ID + 1, SECRET).generate("alice", now, 86_400),
            ),
            70014,
        ),
        (
            login_params(
                "alice",
                &server.key().generate("alice", now - 2 * 86_400, 60),
            ),
            70001,
        ),
        (
            login_params(
                "alice",
                &UserSigKey::new(SDK_APP_ID, "another-secret").generate("alice", now, 86_400),
            ),
            70009,
        ),
        (login_params("alice", "garbage"), 70003),
        (login_params("alice", ""), 70003),
    ];
    for (params, code) in cases {
        let result = raw.request("login", params.clone()).await;
        assert_eq!(code_of(&result), code, "{params}: {result}");
        refused(&result, code);
        // Still not logged in.
        let result = raw.request("invite", json!({"userID": "carol"})).await;
        refused(&result, 2024);
    }

    let result = raw
        .request("login", login_params("alice", &server.user_sig("alice")))
        .await;
    assert_eq!(code_of(&result), 0, "{result}");
    // A second login on the same connection, even as the same user.
    for user in ["alice", "bob"] {
        let result = raw
            .request("login", login_params(user, &server.user_sig(user)))
            .await;
        refused(&result, 9010);
    }
    // Still alice.
    let id = raw_invite(&mut raw, "carol").await;
    let ring = others
        .carol
        .wait_event(event::NEW_INVITATION_RECEIVED, &id)
        .await;
    assert_eq!(ring["inviter"], "alice");
    others.still_served().await;
}

#[tokio::test]
async fn a_text_frame_over_the_limit_closes_with_4100() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let (mut raw, _) = server.raw_login("alice", "alice-1", None).await;

    // Just under 64 KiB is still served.
    let padded = json!({"id": "big", "op": "ping", "params": {"pad": "x".repeat(60 * 1024)}});
    let result = send_raw(&mut raw, &padded.to_string(), &json!("big")).await;
    assert_eq!(code_of(&result), 0, "{result}");

    let huge = json!({"id": "huge", "op": "ping", "params": {"pad": "x".repeat(100 * 1024)}});
    raw.send_text(&huge.to_string()).await;
    assert_eq!(raw.closed().await, Some(4100));

    // Only that connection went; alice can come back on a new one.
    let (mut again, _) = server.raw_login("alice", "alice-2", None).await;
    assert_ping_ok(&mut again).await;
    others.still_served().await;
}

#[tokio::test]
async fn a_binary_frame_closes_with_4101() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let (mut raw, _) = server.raw_login("alice", "alice-1", None).await;

    raw.send_binary(br#"{"id":1,"op":"ping"}"#.to_vec()).await;
    assert_eq!(raw.closed().await, Some(4101));

    let (mut again, _) = server.raw_login("alice", "alice-2", None).await;
    assert_ping_ok(&mut again).await;
    others.still_served().await;
}

#[tokio::test]
async fn many_malformed_frames_in_a_row_close_with_4102() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let (mut raw, _) = server.raw_login("alice", "alice-1", None).await;

    // 30 malformed frames, but a good request in the middle: never 20 in a row.
    for round in 0..2 {
        for _ in 0..15 {
            let result = send_raw(&mut raw, "hello", &Value::Null).await;
            refused(&result, 9001);
        }
        if round == 0 {
            assert_ping_ok(&mut raw).await;
        }
    }
    assert_ping_ok(&mut raw).await;

    // 25 in a row: answered for a while, then the connection is closed as broken.
    for _ in 0..25 {
        raw.send_text("hello").await;
    }
    let mut answered = 0;
    let code = loop {
        match raw.read(WAIT).await {
            RawRead::Frame(frame) => {
                refused(&frame, 9001);
                answered += 1;
            }
            RawRead::Closed(code) => break code,
            RawRead::TimedOut => panic!("not closed after 25 malformed frames"),
        }
    };
    assert_eq!(code, Some(4102));
    assert!(
        (19..25).contains(&answered),
        "{answered} malformed frames answered before the close"
    );

    let (mut again, _) = server.raw_login("alice", "alice-2", None).await;
    assert_ping_ok(&mut again).await;
    others.still_served().await;
}

/// Objects without a string `op` are as malformed (9001) as non-JSON, so they count too.
#[tokio::test]
async fn many_requests_without_op_in_a_row_close_with_4102() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let (mut raw, _) = server.raw_login("alice", "alice-1", None).await;

    for n in 0..25 {
        raw.send_text(&json!({"id": n, "params": {}}).to_string())
            .await;
    }
    let mut answered = 0;
    let code = loop {
        match raw.read(WAIT).await {
            RawRead::Frame(frame) => {
                refused(&frame, 9001);
                answered += 1;
            }
            RawRead::Closed(code) => break code,
            RawRead::TimedOut => {
                panic!("not closed after 25 requests without op ({answered} answered)")
            }
        }
    };
    assert_eq!(code, Some(4102), "after {answered} answers");

    let (mut again, _) = server.raw_login("alice", "alice-2", None).await;
    assert_ping_ok(&mut again).await;
    others.still_served().await;
}

#[tokio::test]
async fn a_session_whose_user_sig_expires_closes_with_4103() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let mut raw = server.raw().await;
    // Valid for two seconds: the server closes the session when it runs out.
    let signed_at = unix_now();
    let short_sig = server.key().generate("alice", signed_at, 2);
    let login = raw
        .request(
            "login",
            json!({"SDKAppID": SDK_APP_ID, "userID": "alice", "userSig": short_sig, "instanceID": "alice-1"}),
        )
        .await;
    assert_eq!(login["code"], 0, "login failed: {login}");
    // Frames going both ways meanwhile do not move the expiry.
    assert_ping_ok(&mut raw).await;
    assert_ping_ok(&mut raw).await;
    assert_eq!(raw.closed().await, Some(4103));
    assert!(
        unix_now() >= signed_at + 2,
        "closed before the UserSig expired"
    );
    others.still_served().await;
}

#[tokio::test]
async fn no_login_in_time_closes_with_4003() {
    let server = TestServer::start_with(|config| {
        config.login_timeout = Duration::from_millis(300);
    })
    .await;
    let mut others = Bystanders::join(&server).await;
    let mut late = server.raw().await;
    let started = Instant::now();
    // A ping is not a login.
    assert_ping_ok(&mut late).await;
    let (mut on_time, _) = server.raw_login("alice", "alice-1", None).await;
    let logged_in_at = now_ms();

    assert_eq!(late.closed().await, Some(4003));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed after {:?}, before the login timeout",
        started.elapsed()
    );

    // The socket that logged in outlives its own login deadline.
    wait_until_ms(logged_in_at + 400).await;
    assert_ping_ok(&mut on_time).await;
    raw_invite(&mut on_time, "carol").await;
    others.still_served().await;
}

/// Repeats a request while it is rate limited (9009), up to `WAIT`; returns the success.
async fn served_after_waiting(raw: &mut RawSocket, op: &str, params: &Value) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let result = raw.request(op, params.clone()).await;
        match code_of(&result) {
            0 => return result,
            9009 => {}
            other => panic!("unexpected code {other}: {result}"),
        }
        assert!(
            Instant::now() < deadline,
            "{op} still rate limited after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn requests_over_the_rate_limit_are_refused_and_then_served_again() {
    let server = TestServer::start_with(|config| {
        config.rate_limit_per_second = 5;
    })
    .await;
    let mut others = Bystanders::join(&server).await;
    let (mut raw, _) = server.raw_login("alice", "alice-1", None).await;

    for n in 0..30 {
        raw.send_text(&json!({"id": format!("r{n}"), "op": "ping"}).to_string())
            .await;
    }
    let mut answered_ok = 0;
    let mut limited = 0;
    for n in 0..30 {
        let result = raw.result_for(&json!(format!("r{n}"))).await;
        match code_of(&result) {
            0 => answered_ok += 1,
            9009 => limited += 1,
            other => panic!("unexpected code {other}: {result}"),
        }
    }
    assert!(limited > 0, "30 pings at once were all served");
    assert!(answered_ok > 0, "the burst allowance served nothing");
    assert!(
        answered_ok <= 15,
        "{answered_ok} of 30 served at 5 per second"
    );

    // Tokens come back: the same connection is served again, for pings and real work.
    served_after_waiting(&mut raw, "ping", &json!({})).await;
    let invite = served_after_waiting(&mut raw, "invite", &json!({"userID": "carol"})).await;
    let invite_id = invite["data"]["inviteID"].as_str().expect("inviteID");
    others
        .carol
        .wait_event(event::NEW_INVITATION_RECEIVED, invite_id)
        .await;
    others.still_served().await;
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_with_4001() {
    const INVITES: usize = 500;
    let server = TestServer::start_with(|config| {
        config.send_queue_frames = 8;
    })
    .await;
    let mut others = Bystanders::join(&server).await;
    let (mut alice, _) = server.raw_login("alice", "alice-1", None).await;
    // Bob logs in and then never reads.
    let (mut bob, _) = server.raw_login("bob", "bob-1", None).await;

    // Each invite gives bob two ~8 KiB events; together far more than socket buffers hold.
    let data = "s".repeat(8000);
    for n in 0..INVITES {
        let frame = json!({"id": n, "op": "invite", "params": {"userID": "bob", "data": data}});
        alice.send_text(&frame.to_string()).await;
    }
    // Pipelined commits may be answered in any order.
    let mut answered = std::collections::HashSet::new();
    while answered.len() < INVITES {
        match alice.read(WAIT).await {
            RawRead::Frame(result) if result["type"] == "result" => {
                assert_eq!(code_of(&result), 0, "invite refused: {result}");
                assert!(answered.insert(result["id"].as_u64().expect("numeric id")));
            }
            other => panic!("expected an invite result, got {other:?}"),
        }
    }
    // Events are dispatched in commit order: once heidi hears carol's later invitation, every
    // event for bob has been offered to his queue.
    others.still_served().await;

    let mut frames = 0;
    let code = loop {
        match bob.read(WAIT).await {
            RawRead::Frame(_) => frames += 1,
            RawRead::Closed(code) => break code,
            RawRead::TimedOut => panic!("slow bob was not disconnected ({frames} frames read)"),
        }
    };
    assert_eq!(code, Some(4001), "after {frames} frames");
    assert!(
        frames < 2 * INVITES,
        "all {frames} events were buffered for a client that did not read"
    );

    // Alice was never held up, and bob can come back.
    raw_invite(&mut alice, "carol").await;
    let (bob_again, _) = server.client("bob").await;
    bob_again.ping().await.expect("bob is served again");
    others.still_served().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_with_4004() {
    let server = TestServer::start_with(|config| {
        config.max_connections = 2;
    })
    .await;
    let mut others = Bystanders::join(&server).await;

    let mut third = server.raw().await;
    match third.read(WAIT).await {
        RawRead::Closed(code) => assert_eq!(code, Some(4004)),
        other => panic!("third connection not refused: {other:?}"),
    }
    others.still_served().await;

    // A freed slot is usable again.
    others.heidi.client.logout().await.expect("logout");
    let deadline = Instant::now() + WAIT;
    let mut admitted = loop {
        let mut raw = server.raw().await;
        raw.send_text(r#"{"id":"p","op":"ping"}"#).await;
        match raw.read(WAIT).await {
            RawRead::Frame(frame) => {
                assert_eq!(code_of(&frame), 0, "{frame}");
                break raw;
            }
            RawRead::Closed(code) => assert_eq!(code, Some(4004)),
            RawRead::TimedOut => panic!("no answer to a ping"),
        }
        assert!(Instant::now() < deadline, "slot not freed within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let login = admitted
        .request("login", login_params("alice", &server.user_sig("alice")))
        .await;
    assert_eq!(code_of(&login), 0, "{login}");
    let id = raw_invite(&mut admitted, "carol").await;
    others
        .carol
        .wait_event(event::NEW_INVITATION_RECEIVED, &id)
        .await;
    others.carol.client.ping().await.expect("carol ping");
    others.carol.assert_never_dropped().await;
}

#[tokio::test]
async fn admin_imports_accounts_with_the_administrator_sig() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let sig = admin_sig(&server);

    let (status, body) = server
        .admin_post(
            "account_import",
            "administrator",
            &sig,
            &json!({"UserID": "dave"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ActionStatus"], "OK", "{body}");
    assert_eq!(body["ErrorCode"], 0, "{body}");
    // Importing again is harmless.
    let (status, _) = server
        .admin_post(
            "account_import",
            "administrator",
            &sig,
            &json!({"UserID": "dave"}),
        )
        .await;
    assert_eq!(status, 200);

    let long = "u".repeat(129);
    let (status, body) = server
        .admin_post(
            "multiaccount_import",
            "administrator",
            &sig,
            &json!({"Accounts": ["frank", "bad\u{7}id", "", long, "grace"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ActionStatus"], "OK", "{body}");
    assert_eq!(body["FailAccounts"], json!(["bad\u{7}id", "", long]));

    assert_eq!(account_status(&server, "dave").await, "Imported");
    assert_eq!(account_status(&server, "frank").await, "Imported");
    assert_eq!(account_status(&server, "grace").await, "Imported");
    assert_eq!(account_status(&server, "erin").await, "NotImported");
    assert_eq!(account_status(&server, "bad\u{7}id").await, "NotImported");

    // Dave never logged in but can be rung; erin has no account.
    let (mut alice, _) = server.raw_login("alice", "alice-1", None).await;
    raw_invite(&mut alice, "dave").await;
    raw_invite(&mut alice, "frank").await;
    let result = alice.request("invite", json!({"userID": "erin"})).await;
    refused(&result, 9004);
    others.still_served().await;
}

#[tokio::test]
async fn admin_requests_without_administrator_credentials_are_refused() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let import = json!({"UserID": "dave"});
    let addr = server.addr();

    let path = "/v4/im_open_login_svc/account_import?random=1&contenttype=json";
    let (status, body) = http_post(addr, path, &import.to_string()).await;
    assert_admin_refused(status, &body, 401, 9017);
    let path = format!(
        "/v4/im_open_login_svc/account_import?sdkappid={SDK_APP_ID}&identifier=administrator&random=1"
    );
    let (status, body) = http_post(addr, &path, &import.to_string()).await;
    assert_admin_refused(status, &body, 401, 9017);

    // A valid ticket of an ordinary user.
    let (status, body) = server
        .admin_post(
            "account_import",
            "alice",
            &server.user_sig("alice"),
            &import,
        )
        .await;
    assert_admin_refused(status, &body, 403, 9017);
    // Bad administrator tickets.
    let wrong_secret =
        UserSigKey::new(SDK_APP_ID, "another-secret").generate("administrator", unix_now(), 600);
    let expired = server
        .key()
        .generate("administrator", unix_now() - 2 * 86_400, 60);
    let alices = server.user_sig("alice");
    for sig in [
        "garbage",
        wrong_secret.as_str(),
        expired.as_str(),
        alices.as_str(),
    ] {
        let (status, body) = server
            .admin_post("account_import", "administrator", sig, &import)
            .await;
        assert_admin_refused(status, &body, 401, 9017);
    }
    // Another app.
    let path = format!(
        "/v4/im_open_login_svc/account_import?sdkappid={}&identifier=administrator&usersig={}&random=1",
        SDK_APP_ID + 1,
        admin_sig(&server)
    );
    let (status, body) = http_post(addr, &path, &import.to_string()).await;
    assert_admin_refused(status, &body, 401, 70014);
    // Every command checks credentials.
    for command in ["multiaccount_import", "account_check"] {
        let (status, body) = server
            .admin_post(
                command,
                "administrator",
                "garbage",
                &json!({"Accounts": ["dave"]}),
            )
            .await;
        assert_admin_refused(status, &body, 401, 9017);
    }

    // Bad bodies with good credentials.
    let sig = admin_sig(&server);
    let path = format!(
        "/v4/im_open_login_svc/account_import?sdkappid={SDK_APP_ID}&identifier=administrator&usersig={sig}&random=1"
    );
    let (status, body) = http_post(addr, &path, "not json").await;
    assert_admin_refused(status, &body, 400, 9001);
    let (status, body) = server
        .admin_post(
            "account_import",
            "administrator",
            &sig,
            &json!({"UserID": 5}),
        )
        .await;
    assert_admin_refused(status, &body, 400, 9003);
    let (status, body) = server
        .admin_post(
            "account_import",
            "administrator",
            &sig,
            &json!({"UserID": ""}),
        )
        .await;
    assert_admin_refused(status, &body, 400, 9003);
    let accounts: Vec<String> = (0..101).map(|n| format!("bulk{n}")).collect();
    let (status, body) = server
        .admin_post(
            "multiaccount_import",
            "administrator",
            &sig,
            &json!({"Accounts": accounts}),
        )
        .await;
    assert_admin_refused(status, &body, 400, 9007);

    // None of the refused requests created an account.
    assert_eq!(account_status(&server, "dave").await, "NotImported");
    assert_eq!(account_status(&server, "bulk0").await, "NotImported");
    let (mut alice, _) = server.raw_login("alice", "alice-1", None).await;
    let result = alice.request("invite", json!({"userID": "dave"})).await;
    refused(&result, 9004);
    others.still_served().await;
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = TestServer::start().await;
    let mut others = Bystanders::join(&server).await;
    let (status, body) = http_get(server.addr(), "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["connections"], 2, "{body}");

    // Unknown paths and methods are not served as health.
    let (status, _) = http_get(server.addr(), "/nope").await;
    assert_eq!(status, 404);
    let (status, _) = http_post(server.addr(), "/healthz", "{}").await;
    assert_eq!(status, 405);
    others.still_served().await;
}
