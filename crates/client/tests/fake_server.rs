//! The SDK's connection logic against a scripted fake `beckon.v1` server: login, requests,
//! events and their seq filter, drop and resume, resync, stop codes, logout.

use beckon_client::{
    ActionParams, Client, ClientConfig, ClientError, EventFrame, InviteParams, Notice,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// Refuses a handshake without the `beckon.v1` subprotocol (or off `/ws`), as the real
/// server does, and answers with the subprotocol.
#[allow(clippy::result_large_err)] // tungstenite's callback signature, not ours
fn echo_subprotocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let protocol = HeaderValue::from_static("beckon.v1");
    if req.uri().path() != "/ws" || req.headers().get("Sec-WebSocket-Protocol") != Some(&protocol) {
        let mut refusal = ErrorResponse::new(Some("beckon.v1 on /ws only".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    resp.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol);
    Ok(resp)
}

/// Accepts WebSocket connections and hands each to the test to script.
struct FakeServer {
    url: String,
    conns: mpsc::UnboundedReceiver<Conn>,
}

impl FakeServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, echo_subprotocol).await
                    {
                        let _ = tx.send(Conn { ws });
                    }
                });
            }
        });
        Self { url, conns }
    }

    fn config(&self, user: &str) -> ClientConfig {
        let mut config = ClientConfig::new(self.url.clone(), 1_400_000_000, user, "sig-1");
        config.backoff_initial = Duration::from_millis(10);
        config.backoff_max = Duration::from_millis(50);
        config.request_timeout = Duration::from_secs(3);
        config
    }

    async fn accept(&mut self) -> Conn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("no connection came")
            .unwrap()
    }

    async fn no_connection_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, self.conns.recv())
            .await
            .is_err()
    }
}

/// One server-side connection.
struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Conn {
    /// The next text frame as JSON; `None` when the socket ends.
    async fn recv(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("client silent");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).unwrap())
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn recv_op(&mut self, op: &str) -> Value {
        let frame = self.recv().await.expect("socket ended");
        assert_eq!(frame["op"], op, "unexpected frame {frame}");
        frame
    }

    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    async fn reply(&mut self, request: &Value, data: Value) {
        self.send(json!({"type": "result", "id": request["id"], "code": 0, "data": data}))
            .await;
    }

    async fn refuse(&mut self, request: &Value, code: u32, message: &str) {
        self.send(json!({"type": "result", "id": request["id"], "code": code, "message": message}))
            .await;
    }

    async fn event(&mut self, name: &str, seq: Option<u64>, data: Value) {
        let mut frame = json!({"type": "event", "name": name, "data": data});
        if let Some(seq) = seq {
            frame["seq"] = json!(seq);
        }
        self.send(frame).await;
    }

    /// Reads the login frame, answers it, and returns its params.
    async fn login(&mut self, seq: u64, resumed: bool, resync: bool) -> Value {
        let frame = self.recv_op("login").await;
        let data = json!({"userID": frame["params"]["userID"], "seq": seq, "resumed": resumed,
            "resync": resync, "serverTime": 1_700_000_000_000_u64, "eventRetentionSeconds": 86400});
        self.reply(&frame, data).await;
        frame["params"].clone()
    }

    async fn close(&mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "bye".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
    }

    /// True once the client closed or dropped the socket.
    async fn ended(&mut self) -> bool {
        self.recv().await.is_none()
    }
}

async fn login(server: &mut FakeServer, client: &Client, seq: u64) -> Conn {
    let (result, conn) = tokio::join!(client.login(), async {
        let mut conn = server.accept().await;
        conn.login(seq, false, false).await;
        conn
    });
    assert_eq!(result.unwrap().seq, seq);
    conn
}

async fn next_notice(stream: &mut beckon_client::EventStream) -> Notice {
    stream.next_within(WAIT).await.expect("no notice")
}

#[tokio::test]
async fn login_requests_events_and_refusals() {
    let mut server = FakeServer::start().await;
    let client = Client::new(server.config("alice"));
    let heard: Arc<Mutex<Vec<Option<u64>>>> = Arc::default();
    let sink = Arc::clone(&heard);
    let listener =
        client.add_signaling_listener("newInvitationReceived", move |event: &EventFrame| {
            sink.lock().unwrap().push(event.seq);
        });
    let mut stream = client.subscribe();

    let (result, (mut conn, params)) = tokio::join!(client.login(), async {
        let mut conn = server.accept().await;
        let params = conn.login(5, false, false).await;
        (conn, params)
    });
    let result = result.unwrap();
    assert_eq!((result.user_id.as_str(), result.seq), ("alice", 5));
    assert_eq!(params["SDKAppID"], 1_400_000_000);
    assert_eq!(params["userID"], "alice");
    assert_eq!(params["userSig"], "sig-1");
    assert_eq!(params["instanceID"], client.instance_id());
    assert!(uuid::Uuid::parse_str(client.instance_id()).is_ok());
    assert!(
        params.get("lastSeq").is_none(),
        "first login sends no lastSeq: {params}"
    );
    assert_eq!(client.last_seq(), 5);
    assert_eq!(next_notice(&mut stream).await, Notice::Connected(result));

    // A second login on a live session is refused locally.
    assert_eq!(client.login().await.unwrap_err().code(), Some(9010));

    // Request and result, matched by id even with a stray result in between.
    let invite = InviteParams {
        user_id: "bob".into(),
        timeout: Some(30),
        ..Default::default()
    };
    let (sent, ()) = tokio::join!(client.invite(invite), async {
        let frame = conn.recv_op("invite").await;
        assert_eq!(frame["params"], json!({"userID": "bob", "timeout": 30}));
        assert!(frame["id"].is_u64());
        conn.send(json!({"type": "result", "id": 999_999, "code": 0, "data": {}}))
            .await;
        conn.reply(&frame, json!({"inviteID": "inv-1"})).await;
    });
    assert_eq!(sent.unwrap().invite_id, "inv-1");

    let accept = ActionParams {
        invite_id: "inv-x".into(),
        data: None,
    };
    let (refused, ()) = tokio::join!(client.accept(accept), async {
        let frame = conn.recv_op("accept").await;
        conn.refuse(&frame, 8010, "invitation is not active").await;
    });
    let refused = refused.unwrap_err();
    assert_eq!(refused.code(), Some(8010));
    assert_eq!(
        refused,
        ClientError::Refused {
            code: 8010,
            message: "invitation is not active".into()
        }
    );

    // Raw request: a result without data reads as {}.
    let (raw, ()) = tokio::join!(client.request("ping", json!({})), async {
        let frame = conn.recv_op("ping").await;
        conn.send(json!({"type": "result", "id": frame["id"], "code": 0}))
            .await;
    });
    assert_eq!(raw.unwrap(), json!({}));

    // Events: repeats and old seqs are dropped, seq-less ones always pass.
    conn.event("newInvitationReceived", Some(6), json!({"inviteID": "a"}))
        .await;
    conn.event("newInvitationReceived", Some(6), json!({"inviteID": "a"}))
        .await;
    conn.event("newInvitationReceived", Some(4), json!({"inviteID": "old"}))
        .await;
    conn.event("newInvitationReceived", None, json!({"inviteID": "online"}))
        .await;
    conn.event("ts_invitation_cancelled", Some(7), json!({"inviteID": "a"}))
        .await;
    let events = stream.drain_events(QUIET).await;
    let seqs: Vec<_> = events.iter().map(|e| (e.name.as_str(), e.seq)).collect();
    assert_eq!(
        seqs,
        [
            ("newInvitationReceived", Some(6)),
            ("newInvitationReceived", None),
            ("ts_invitation_cancelled", Some(7))
        ]
    );
    assert_eq!(*heard.lock().unwrap(), [Some(6), None]);
    assert_eq!(client.last_seq(), 7);

    // A removed listener hears nothing more; a panicking one does not break delivery.
    assert!(client.remove_signaling_listener("newInvitationReceived", listener));
    assert!(!client.remove_signaling_listener("newInvitationReceived", listener));
    client.add_signaling_listener("newInvitationReceived", |_| panic!("app bug"));
    conn.event("newInvitationReceived", Some(8), json!({}))
        .await;
    conn.event("newInvitationReceived", Some(9), json!({}))
        .await;
    let events = stream.drain_events(QUIET).await;
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [Some(8), Some(9)]
    );
    assert_eq!(heard.lock().unwrap().len(), 2);

    // Dropping every handle closes the socket.
    drop(client);
    assert!(conn.ended().await);
}

#[tokio::test]
async fn drop_reconnect_resume_and_resync() {
    let mut server = FakeServer::start().await;
    let client = Client::new(server.config("bob"));
    let mut stream = client.subscribe();
    let mut conn = login(&mut server, &client, 3).await;
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Connected(_)
    ));
    conn.event("newInvitationReceived", Some(4), json!({}))
        .await;
    assert_eq!(stream.next_any_event(WAIT).await.unwrap().seq, Some(4));

    // A request in flight when the server goes away fails with Disconnected.
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .cancel(ActionParams {
                    invite_id: "i".into(),
                    data: None,
                })
                .await
        }
    });
    conn.recv_op("cancel").await;
    conn.close(4001).await;
    assert_eq!(
        pending.await.unwrap().unwrap_err(),
        ClientError::Disconnected
    );
    assert_eq!(
        next_notice(&mut stream).await,
        Notice::Reconnecting {
            close_code: Some(4001)
        }
    );

    // Re-login with the same instance and lastSeq; a request made meanwhile waits for it.
    let mut conn = server.accept().await;
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.get_conversation_list().await }
    });
    let frame = conn.recv_op("login").await;
    assert_eq!(frame["params"]["lastSeq"], 4);
    assert_eq!(frame["params"]["instanceID"], client.instance_id());
    conn.reply(
        &frame,
        json!({"userID": "bob", "seq": 6, "resumed": true, "resync": false,
        "serverTime": 1, "eventRetentionSeconds": 60}),
    )
    .await;
    conn.event("newInvitationReceived", Some(5), json!({}))
        .await;
    conn.event("ts_invitee_accepted", Some(6), json!({})).await;
    let frame = conn.recv_op("getConversationList").await;
    assert_eq!(frame["params"], json!({}));
    conn.reply(&frame, json!({"conversationList": []})).await;
    assert!(waiting.await.unwrap().unwrap().conversation_list.is_empty());
    assert!(matches!(next_notice(&mut stream).await, Notice::Connected(r) if r.resumed));
    assert_eq!(stream.next_any_event(WAIT).await.unwrap().seq, Some(5));
    assert_eq!(stream.next_any_event(WAIT).await.unwrap().seq, Some(6));
    assert_eq!(client.last_seq(), 6);

    // The app drops the socket; the server sees it end and the client resumes from 6. The
    // server no longer has those events: resync, then replayed pending invitations.
    client.drop_connection();
    assert!(conn.ended().await);
    assert_eq!(
        next_notice(&mut stream).await,
        Notice::Reconnecting { close_code: None }
    );
    let mut conn = server.accept().await;
    let frame = conn.recv_op("login").await;
    assert_eq!(frame["params"]["lastSeq"], 6);
    conn.reply(
        &frame,
        json!({"userID": "bob", "seq": 40, "resumed": false, "resync": true,
        "serverTime": 1, "eventRetentionSeconds": 60}),
    )
    .await;
    conn.event(
        "newInvitationReceived",
        None,
        json!({"inviteID": "p", "replay": true}),
    )
    .await;
    assert!(matches!(next_notice(&mut stream).await, Notice::Connected(r) if r.resync));
    assert_eq!(next_notice(&mut stream).await, Notice::Resync);
    let replay = stream.next_any_event(WAIT).await.unwrap();
    assert_eq!((replay.seq, &replay.data["replay"]), (None, &json!(true)));
    assert_eq!(client.last_seq(), 40);
    conn.event("newInvitationReceived", Some(41), json!({}))
        .await;
    assert_eq!(stream.next_any_event(WAIT).await.unwrap().seq, Some(41));
}

#[tokio::test]
async fn timed_out_request_is_not_sent_after_reconnect() {
    let mut server = FakeServer::start().await;
    let mut config = server.config("carol");
    config.request_timeout = Duration::from_millis(400);
    let client = Client::new(config);
    let mut conn = login(&mut server, &client, 0).await;
    conn.close(4002).await;

    // The re-login is never answered, so a request made meanwhile times out.
    let mut silent = server.accept().await;
    silent.recv_op("login").await;
    let started = tokio::time::Instant::now();
    let invite = InviteParams {
        user_id: "dave".into(),
        ..Default::default()
    };
    assert_eq!(
        client.invite(invite).await.unwrap_err(),
        ClientError::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(350));

    // The next attempt succeeds; the abandoned invite is not sent late.
    let mut conn = server.accept().await;
    let frame = conn.recv_op("login").await;
    assert_eq!(
        frame["params"]["lastSeq"], 0,
        "a seq of 0 is still sent: {frame}"
    );
    conn.reply(
        &frame,
        json!({"userID": "carol", "seq": 0, "resumed": true, "resync": false,
        "serverTime": 1, "eventRetentionSeconds": 60}),
    )
    .await;
    let (pong, ()) = tokio::join!(client.ping(), async {
        let frame = conn.recv_op("ping").await;
        conn.reply(&frame, json!({})).await;
    });
    pong.unwrap();
}

#[tokio::test]
async fn stop_codes_end_reconnecting_and_login_resumes() {
    let mut server = FakeServer::start().await;
    let client = Client::new(server.config("erin"));
    let mut stream = client.subscribe();
    let mut conn = login(&mut server, &client, 2).await;
    conn.event("ts_invitation_timeout", Some(3), json!({}))
        .await;
    conn.close(4103).await;
    let stopped = loop {
        if let Notice::Stopped { close_code, .. } = next_notice(&mut stream).await {
            break close_code;
        }
    };
    assert_eq!(stopped, Some(4103));
    assert!(server.no_connection_within(QUIET).await);
    assert_eq!(client.ping().await.unwrap_err(), ClientError::Disconnected);

    // A fresh userSig and login again: it resumes from the last seen seq.
    client.set_user_sig("sig-2".into());
    let (result, params) = tokio::join!(client.login(), async {
        let mut conn = server.accept().await;
        conn.login(3, true, false).await
    });
    result.unwrap();
    assert_eq!(
        (params["lastSeq"].clone(), params["userSig"].clone()),
        (json!(3), json!("sig-2"))
    );
}

#[tokio::test]
async fn reconnect_off_stops_on_any_drop() {
    let mut server = FakeServer::start().await;
    let mut config = server.config("fred");
    config.reconnect = false;
    let client = Client::new(config);
    let mut stream = client.subscribe();
    let mut conn = login(&mut server, &client, 0).await;
    conn.close(4001).await;
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Connected(_)
    ));
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Stopped {
            close_code: Some(4001),
            ..
        }
    ));
    assert!(server.no_connection_within(QUIET).await);
}

#[tokio::test]
async fn refused_login_does_not_reconnect() {
    let mut server = FakeServer::start().await;
    let client = Client::new(server.config("gina"));
    let (result, ()) = tokio::join!(client.login(), async {
        let mut conn = server.accept().await;
        let frame = conn.recv_op("login").await;
        conn.refuse(&frame, 70009, "userSig signature does not verify")
            .await;
    });
    assert_eq!(result.unwrap_err().code(), Some(70009));
    assert!(server.no_connection_within(QUIET).await);
    assert_eq!(client.ping().await.unwrap_err(), ClientError::Disconnected);
    assert_eq!(client.last_seq(), 0);

    // Nothing listens: connecting fails with Connect.
    let config = ClientConfig::new("ws://127.0.0.1:1/ws", 1, "x", "y");
    assert!(matches!(
        Client::connect(config).await,
        Err(ClientError::Connect(_))
    ));
}

#[tokio::test]
async fn relogin_refusal_stops() {
    let mut server = FakeServer::start().await;
    let client = Client::new(server.config("hank"));
    let mut stream = client.subscribe();
    let mut conn = login(&mut server, &client, 1).await;
    conn.close(1001).await;
    let mut conn = server.accept().await;
    let frame = conn.recv_op("login").await;
    conn.refuse(&frame, 70001, "userSig expired").await;
    let reason = loop {
        if let Notice::Stopped { reason, .. } = next_notice(&mut stream).await {
            break reason;
        }
    };
    assert!(reason.contains("70001"), "{reason}");
    assert!(server.no_connection_within(QUIET).await);
}

#[tokio::test]
async fn logout_closes_and_next_login_is_fresh() {
    let mut server = FakeServer::start().await;
    let client = Client::new(server.config("ivy"));
    let mut stream = client.subscribe();
    let mut conn = login(&mut server, &client, 9).await;
    let (out, ()) = tokio::join!(client.logout(), async {
        let frame = conn.recv_op("logout").await;
        conn.reply(&frame, json!({})).await;
        assert!(conn.ended().await);
    });
    out.unwrap();
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Connected(_)
    ));
    assert_eq!(
        next_notice(&mut stream).await,
        Notice::Stopped {
            close_code: None,
            reason: "logged out".into()
        }
    );
    assert!(server.no_connection_within(QUIET).await);
    assert_eq!(client.last_seq(), 0);
    client.logout().await.unwrap();

    let (result, params) = tokio::join!(client.login(), async {
        let mut conn = server.accept().await;
        conn.login(9, false, false).await
    });
    result.unwrap();
    assert!(params.get("lastSeq").is_none());
}

#[tokio::test]
async fn logout_while_reconnecting_stops_at_once() {
    let mut server = FakeServer::start().await;
    let mut config = server.config("jay");
    config.backoff_initial = Duration::from_secs(2);
    config.backoff_max = Duration::from_secs(2);
    let client = Client::new(config);
    let mut stream = client.subscribe();
    let mut conn = login(&mut server, &client, 0).await;
    conn.close(4002).await;
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Connected(_)
    ));
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Reconnecting { .. }
    ));
    tokio::time::timeout(Duration::from_millis(500), client.logout())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Stopped { .. }
    ));
    assert!(
        server
            .no_connection_within(Duration::from_millis(2500))
            .await
    );
}

#[tokio::test]
async fn silent_server_counts_as_dropped() {
    let mut server = FakeServer::start().await;
    let mut config = server.config("kim");
    config.ping_interval = Duration::from_millis(100);
    let client = Client::new(config);
    let mut stream = client.subscribe();
    // The fake server reads nothing after login, so the client's pings go unanswered.
    let _silent = login(&mut server, &client, 0).await;
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Connected(_)
    ));
    assert_eq!(
        next_notice(&mut stream).await,
        Notice::Reconnecting { close_code: None }
    );
    let mut conn = server.accept().await;
    conn.login(0, true, false).await;
    assert!(matches!(
        next_notice(&mut stream).await,
        Notice::Connected(_)
    ));
}
