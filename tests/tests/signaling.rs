//! One-to-one signaling through the real server and SDK: who hears which event with which
//! fields, every refusal code, races, multi-device, login replay, online-only, listeners.

use beckon_client::{
    event, ActionParams, ActionResult, Client, ClientError, EventFrame, EventStream,
    GetMessageListParams, InviteParams, ModifyParams, SignalingInfo,
};
use beckon_tests::{expect_event, now_ms, TestServer, QUIET, WAIT};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const NEW: &str = event::NEW_INVITATION_RECEIVED;
const ACCEPTED: &str = event::INVITEE_ACCEPTED;
const REJECTED: &str = event::INVITEE_REJECTED;
const CANCELLED: &str = event::INVITATION_CANCELLED;
const TIMEOUT: &str = event::INVITATION_TIMEOUT;
const MODIFIED: &str = event::INVITATION_MODIFIED;

/// NEW_INVITATION_RECEIVED: Tencent's keys plus Beckon's documented extras.
const NEW_KEYS: [&str; 9] = [
    "inviteID",
    "inviter",
    "groupID",
    "inviteeList",
    "data",
    "timeout",
    "timeoutRemaining",
    "expiresAt",
    "onlineUserOnly",
];
const ANSWER_KEYS: [&str; 5] = ["inviteID", "inviter", "groupID", "invitee", "data"];
const CANCEL_KEYS: [&str; 4] = ["inviteID", "inviter", "groupID", "data"];
const TIMEOUT_KEYS: [&str; 6] = [
    "inviteID",
    "inviter",
    "groupID",
    "inviteeList",
    "data",
    "isSelfTimeout",
];
const MODIFIED_KEYS: [&str; 3] = ["inviteID", "data", "modifiedBy"];

fn invite_to(user: &str, data: &str, timeout: u64) -> InviteParams {
    InviteParams {
        user_id: user.into(),
        data: Some(data.into()),
        timeout: Some(timeout),
        ..Default::default()
    }
}

fn action(invite_id: &str, data: &str) -> ActionParams {
    ActionParams {
        invite_id: invite_id.into(),
        data: Some(data.into()),
    }
}

fn modify(invite_id: &str, data: &str) -> ModifyParams {
    ModifyParams {
        invite_id: invite_id.into(),
        data: data.into(),
    }
}

/// Asserts the exact key set of an event's data (order-free).
fn assert_keys(data: &Value, expected: &[&str], what: &str) {
    let mut got: Vec<&str> = data
        .as_object()
        .unwrap_or_else(|| panic!("{what}: data is not an object: {data}"))
        .keys()
        .map(String::as_str)
        .collect();
    got.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{what}: key set of {data}");
}

fn refusal_code<T: std::fmt::Debug>(outcome: Result<T, ClientError>, what: &str) -> u32 {
    match outcome {
        Ok(value) => panic!("{what}: expected a refusal, got {value:?}"),
        Err(error) => error
            .code()
            .unwrap_or_else(|| panic!("{what}: expected a refusal, got {error:?}")),
    }
}

fn is_signaling(frame: &EventFrame) -> bool {
    event::SIGNALING.contains(&frame.name.as_str())
}

/// Signaling events that arrive until the stream is quiet (history events are skipped).
async fn drain_signaling(events: &mut EventStream) -> Vec<EventFrame> {
    events
        .drain_events(QUIET)
        .await
        .into_iter()
        .filter(is_signaling)
        .collect()
}

async fn assert_no_signaling(events: &mut EventStream, who: &str) {
    let got = drain_signaling(events).await;
    assert!(
        got.is_empty(),
        "{who} must get no signaling event, got {got:?}"
    );
}

/// Waits (bounded) until `expected` signaling events arrived, then keeps any extras that
/// follow before the stream goes quiet.
async fn collect_signaling(events: &mut EventStream, expected: usize) -> Vec<EventFrame> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < expected {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = events
            .next_any_event(left)
            .await
            .unwrap_or_else(|| panic!("only {} of {expected} events within {WAIT:?}", got.len()));
        if is_signaling(&frame) {
            got.push(frame);
        }
    }
    got.extend(drain_signaling(events).await);
    got
}

/// Event names per inviteID, in arrival order.
fn names_by_invite(frames: &[EventFrame]) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for frame in frames {
        let id = frame.data["inviteID"]
            .as_str()
            .expect("inviteID")
            .to_owned();
        map.entry(id).or_default().push(frame.name.clone());
    }
    map
}

/// The signaling payload of an action result's history message.
fn info_of(result: &ActionResult) -> SignalingInfo {
    let message = result
        .message
        .as_ref()
        .expect("result carries the history message");
    Client::get_signaling_info(&serde_json::to_value(message).expect("message as JSON"))
        .expect("the result message is a signaling message")
}

/// Every history message of a C2C conversation, oldest first.
async fn history(client: &Client, conversation_id: &str) -> Vec<Value> {
    let page = client
        .get_message_list(GetMessageListParams {
            conversation_id: conversation_id.into(),
            count: Some(100),
            ..Default::default()
        })
        .await
        .expect("getMessageList");
    assert!(page.is_completed, "test histories fit in one page");
    page.message_list
        .iter()
        .map(|m| serde_json::to_value(m).expect("message as JSON"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. Who receives each event, with which fields.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn invite_rings_every_invitee_device_and_never_the_inviter() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_alice2, mut alice2_rx) = server.client("alice").await;
    let (_bob, mut bob_rx) = server.client("bob").await;
    let (_bob2, mut bob2_rx) = server.client("bob").await;

    let before = now_ms();
    let sent = alice
        .invite(invite_to("bob", "hello", 30))
        .await
        .expect("invite");
    let after = now_ms();
    assert!(!sent.invite_id.is_empty());
    // The result carries the stored invite message, rendered for the inviter.
    let message = sent
        .message
        .clone()
        .expect("invite result has data.message");
    assert_eq!(message.conversation_id, "C2Cbob");
    assert_eq!(message.conversation_type, "C2C");
    assert_eq!(
        (message.from.as_str(), message.to.as_str()),
        ("alice", "bob")
    );
    assert_eq!(message.flow, "out");
    assert_eq!(message.kind, "TIMCustomElem");
    assert_eq!(
        message.payload.data,
        format!(
            r#"{{"businessID":1,"timeout":30,"data":"hello","inviteID":"{}","groupID":"","actionType":1,"inviter":"alice","inviteeList":["bob"]}}"#,
            sent.invite_id
        )
    );

    for (who, rx) in [("bob", &mut bob_rx), ("bob's second device", &mut bob2_rx)] {
        let ring = expect_event(rx, NEW).await;
        assert_keys(&ring.data, &NEW_KEYS, who);
        let d = &ring.data;
        assert_eq!(d["inviteID"], sent.invite_id.as_str(), "{who}");
        assert_eq!(d["inviter"], "alice");
        assert_eq!(d["groupID"], "");
        assert_eq!(d["inviteeList"], json!(["bob"]));
        assert_eq!(d["data"], "hello");
        assert_eq!(d["timeout"], 30);
        assert_eq!(d["onlineUserOnly"], false);
        let remaining = d["timeoutRemaining"].as_u64().expect("timeoutRemaining");
        assert!(
            (29..=30).contains(&remaining),
            "{who}: timeoutRemaining {remaining}"
        );
        let expires = d["expiresAt"].as_u64().expect("expiresAt");
        assert!(
            (before + 30_000..=after + 30_000).contains(&expires),
            "{who}: expiresAt {expires} not creation + 30 s ({before}..{after})"
        );
        assert!(ring.seq.is_some(), "a kept event has a seq");
        assert_no_signaling(rx, who).await;
    }
    assert_no_signaling(&mut alice_rx, "the inviting device").await;
    assert_no_signaling(&mut alice2_rx, "the inviter's other device").await;
}

/// Accept or reject from bob's first device; returns nothing, asserts everything.
async fn answer_is_announced(accept: bool) {
    let (name, verb) = if accept {
        (ACCEPTED, "accept")
    } else {
        (REJECTED, "reject")
    };
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_alice2, mut alice2_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (bob2, mut bob2_rx) = server.client("bob").await;

    let sent = alice
        .invite(invite_to("bob", "call", 30))
        .await
        .expect("invite");
    let id = sent.invite_id.as_str();
    expect_event(&mut bob_rx, NEW).await;
    expect_event(&mut bob2_rx, NEW).await;

    let answer = action(id, "answer-data");
    let done = if accept {
        bob.accept(answer).await
    } else {
        bob.reject(answer).await
    };
    let done = done.unwrap_or_else(|e| panic!("{verb}: {e}"));
    assert_eq!(done.invite_id, id);
    let info = info_of(&done);
    let action_type = if accept { 3 } else { 4 };
    assert_eq!(info.action_type, action_type);
    assert_eq!(info.invitee_list, ["bob"]);
    assert_eq!(info.data, "answer-data");
    assert_eq!(info.timeout, 0);
    assert_eq!(done.message.as_ref().map(|m| m.from.as_str()), Some("bob"));

    for (who, rx) in [
        ("inviter", &mut alice_rx),
        ("inviter's other device", &mut alice2_rx),
    ] {
        let heard = expect_event(rx, name).await;
        assert_keys(&heard.data, &ANSWER_KEYS, who);
        assert_eq!(
            heard.data,
            json!({"inviteID": id, "inviter": "alice", "groupID": "", "invitee": "bob", "data": "answer-data"}),
            "{who}"
        );
        assert_no_signaling(rx, who).await;
    }
    // The second phone stops ringing: it hears that another device handled the call.
    let other = expect_event(&mut bob2_rx, name).await;
    let mut keys = ANSWER_KEYS.to_vec();
    keys.push("handledOnOtherDevice");
    assert_keys(&other.data, &keys, "answerer's other device");
    assert_eq!(other.data["handledOnOtherDevice"], true);
    assert_eq!(other.data["invitee"], "bob");
    assert_eq!(other.data["data"], "answer-data");
    assert_no_signaling(&mut bob2_rx, "answerer's other device").await;
    assert_no_signaling(&mut bob_rx, "the answering device").await;
    // And it can no longer answer.
    assert_eq!(
        refusal_code(bob2.accept(action(id, "")).await, "late accept"),
        8010
    );
}

#[tokio::test]
async fn accept_reaches_inviter_and_stops_the_accepters_other_device() {
    answer_is_announced(true).await;
}

#[tokio::test]
async fn reject_reaches_inviter_and_stops_the_rejecters_other_device() {
    answer_is_announced(false).await;
}

#[tokio::test]
async fn cancel_reaches_pending_invitee_and_inviters_other_devices() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_alice2, mut alice2_rx) = server.client("alice").await;
    let (_bob, mut bob_rx) = server.client("bob").await;
    let (_bob2, mut bob2_rx) = server.client("bob").await;

    let sent = alice
        .invite(invite_to("bob", "call", 30))
        .await
        .expect("invite");
    let id = sent.invite_id.as_str();
    expect_event(&mut bob_rx, NEW).await;
    expect_event(&mut bob2_rx, NEW).await;

    let done = alice.cancel(action(id, "bye")).await.expect("cancel");
    assert_eq!(done.invite_id, id);
    let info = info_of(&done);
    assert_eq!(info.action_type, 2);
    assert_eq!(info.invitee_list, ["bob"]);
    assert_eq!(info.data, "bye");

    for (who, rx) in [
        ("invitee", &mut bob_rx),
        ("invitee's other device", &mut bob2_rx),
    ] {
        let heard = expect_event(rx, CANCELLED).await;
        assert_keys(&heard.data, &CANCEL_KEYS, who);
        assert_eq!(
            heard.data,
            json!({"inviteID": id, "inviter": "alice", "groupID": "", "data": "bye"}),
            "{who}"
        );
        assert_no_signaling(rx, who).await;
    }
    let other = expect_event(&mut alice2_rx, CANCELLED).await;
    let mut keys = CANCEL_KEYS.to_vec();
    keys.push("handledOnOtherDevice");
    assert_keys(&other.data, &keys, "inviter's other device");
    assert_eq!(other.data["handledOnOtherDevice"], true);
    assert_eq!(other.data["data"], "bye");
    assert_no_signaling(&mut alice2_rx, "inviter's other device").await;
    assert_no_signaling(&mut alice_rx, "the cancelling device").await;
}

/// Modify from one device; every other device of both parties hears it.
async fn modify_is_announced(by_inviter: bool) {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_alice2, mut alice2_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (_bob2, mut bob2_rx) = server.client("bob").await;

    let sent = alice
        .invite(invite_to("bob", "v1", 30))
        .await
        .expect("invite");
    let id = sent.invite_id.as_str();
    expect_event(&mut bob_rx, NEW).await;
    expect_event(&mut bob2_rx, NEW).await;

    let (modifier, by) = if by_inviter {
        (&alice, "alice")
    } else {
        (&bob, "bob")
    };
    let done = modifier
        .modify_invitation(modify(id, "v2"))
        .await
        .expect("modify");
    assert_eq!(done.invite_id, id);
    // The result is the rewritten invite message.
    let info = info_of(&done);
    assert_eq!((info.action_type, info.timeout), (1, 30));
    assert_eq!(info.data, "v2");
    assert_eq!(info.invite_id, id);

    let mut listeners = vec![("alice2", &mut alice2_rx), ("bob2", &mut bob2_rx)];
    let acting = if by_inviter {
        listeners.push(("bob", &mut bob_rx));
        &mut alice_rx
    } else {
        listeners.push(("alice", &mut alice_rx));
        &mut bob_rx
    };
    for (who, rx) in listeners {
        let heard = expect_event(rx, MODIFIED).await;
        assert_keys(&heard.data, &MODIFIED_KEYS, who);
        assert_eq!(
            heard.data,
            json!({"inviteID": id, "data": "v2", "modifiedBy": by}),
            "{who}"
        );
        assert_no_signaling(rx, who).await;
    }
    assert_no_signaling(acting, "the modifying device").await;
}

#[tokio::test]
async fn modify_by_inviter_reaches_every_party_but_the_modifying_device() {
    modify_is_announced(true).await;
}

#[tokio::test]
async fn modify_by_invitee_reaches_every_party_but_the_modifying_device() {
    modify_is_announced(false).await;
}

#[tokio::test]
async fn many_deadlines_at_once_all_fire_with_few_timeouts_in_flight() {
    // Two timeouts at a time may await their commit; forty fall due together.
    let server = TestServer::start_with(|config| config.max_timeouts_in_flight = 2).await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_bob, mut bob_rx) = server.client("bob").await;
    let sends = (0..40).map(|n| alice.invite(invite_to("bob", &format!("ring {n}"), 1)));
    let sent: Vec<String> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(|result| result.expect("invite").invite_id)
        .collect();
    let mut timed_out = Vec::new();
    for frame in collect_signaling(&mut bob_rx, 80).await {
        if frame.name == TIMEOUT {
            timed_out.push(
                frame.data["inviteID"]
                    .as_str()
                    .expect("inviteID")
                    .to_owned(),
            );
        }
    }
    timed_out.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(timed_out, expected, "each invitation timed out once");
    let inviter_heard = collect_signaling(&mut alice_rx, 40).await;
    assert_eq!(
        inviter_heard.iter().filter(|f| f.name == TIMEOUT).count(),
        40
    );
}

#[tokio::test]
async fn timeout_fires_once_to_inviter_and_invitee() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_bob, mut bob_rx) = server.client("bob").await;
    let (bob2, mut bob2_rx) = server.client("bob").await;

    let sent = alice
        .invite(invite_to("bob", "ring", 1))
        .await
        .expect("invite");
    let id = sent.invite_id.as_str();
    let ring = expect_event(&mut bob_rx, NEW).await;
    let expires = ring.data["expiresAt"].as_u64().expect("expiresAt");
    expect_event(&mut bob2_rx, NEW).await;

    let mine = expect_event(&mut alice_rx, TIMEOUT).await;
    assert!(
        now_ms() >= expires,
        "timeout fired before the server deadline"
    );
    assert_keys(&mine.data, &TIMEOUT_KEYS, "inviter");
    assert_eq!(
        mine.data,
        json!({"inviteID": id, "inviter": "alice", "groupID": "", "inviteeList": ["bob"], "data": "ring", "isSelfTimeout": false})
    );
    for (who, rx) in [
        ("invitee", &mut bob_rx),
        ("invitee's other device", &mut bob2_rx),
    ] {
        let theirs = expect_event(rx, TIMEOUT).await;
        assert_keys(&theirs.data, &TIMEOUT_KEYS, who);
        assert_eq!(
            theirs.data,
            json!({"inviteID": id, "inviter": "alice", "groupID": "", "inviteeList": ["bob"], "data": "ring", "isSelfTimeout": true}),
            "{who}"
        );
    }
    // Exactly once.
    assert_no_signaling(&mut alice_rx, "inviter after the timeout").await;
    assert_no_signaling(&mut bob_rx, "invitee after the timeout").await;
    assert_no_signaling(&mut bob2_rx, "invitee's other device after the timeout").await;
    // Answers after the end are refused, not dropped.
    assert_eq!(
        refusal_code(bob2.accept(action(id, "")).await, "accept after timeout"),
        8010
    );
    assert_eq!(
        refusal_code(alice.cancel(action(id, "")).await, "cancel after timeout"),
        8020
    );
}

// ---------------------------------------------------------------------------------------
// 2. Every error code.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn actions_on_unknown_or_finished_invitations_are_refused() {
    let server = TestServer::start().await;
    let (alice, _alice_rx) = server.client("alice").await;
    let (bob, _bob_rx) = server.client("bob").await;

    let unknown = "no-such-invitation";
    assert_eq!(
        refusal_code(bob.accept(action(unknown, "")).await, "accept unknown"),
        8010
    );
    assert_eq!(
        refusal_code(bob.reject(action(unknown, "")).await, "reject unknown"),
        8010
    );
    assert_eq!(
        refusal_code(
            alice.modify_invitation(modify(unknown, "x")).await,
            "modify unknown"
        ),
        8010
    );
    assert_eq!(
        refusal_code(alice.cancel(action(unknown, "")).await, "cancel unknown"),
        8020
    );

    let sent = alice
        .invite(invite_to("bob", "", 30))
        .await
        .expect("invite");
    let id = sent.invite_id.as_str();
    bob.accept(action(id, "")).await.expect("first accept");
    assert_eq!(
        refusal_code(bob.accept(action(id, "")).await, "accept twice"),
        8010
    );
    assert_eq!(
        refusal_code(bob.reject(action(id, "")).await, "reject after accept"),
        8010
    );
    assert_eq!(
        refusal_code(
            alice.modify_invitation(modify(id, "x")).await,
            "modify finished"
        ),
        8010
    );
    assert_eq!(
        refusal_code(alice.cancel(action(id, "")).await, "cancel finished"),
        8020
    );

    let cancelled = alice
        .invite(invite_to("bob", "", 30))
        .await
        .expect("invite");
    let id = cancelled.invite_id.as_str();
    alice.cancel(action(id, "")).await.expect("cancel");
    assert_eq!(
        refusal_code(alice.cancel(action(id, "")).await, "cancel twice"),
        8020
    );
    assert_eq!(
        refusal_code(bob.reject(action(id, "")).await, "reject cancelled"),
        8010
    );
    assert_eq!(
        refusal_code(
            bob.modify_invitation(modify(id, "x")).await,
            "modify cancelled"
        ),
        8010
    );
}

#[tokio::test]
async fn actions_without_permission_get_8011() {
    let server = TestServer::start().await;
    let (alice, _alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (carol, _carol_rx) = server.client("carol").await;

    let sent = alice
        .invite(invite_to("bob", "", 30))
        .await
        .expect("invite");
    let id = sent.invite_id.as_str();
    expect_event(&mut bob_rx, NEW).await;
    assert_eq!(
        refusal_code(bob.cancel(action(id, "")).await, "cancel by invitee"),
        8011
    );
    assert_eq!(
        refusal_code(carol.cancel(action(id, "")).await, "cancel by outsider"),
        8011
    );
    assert_eq!(
        refusal_code(carol.accept(action(id, "")).await, "accept by non-invitee"),
        8011
    );
    assert_eq!(
        refusal_code(carol.reject(action(id, "")).await, "reject by non-invitee"),
        8011
    );
    assert_eq!(
        refusal_code(alice.accept(action(id, "")).await, "accept by inviter"),
        8011
    );
    // None of that touched the invitation: bob can still accept.
    bob.accept(action(id, ""))
        .await
        .expect("accept still possible");
}

#[tokio::test]
async fn proposed_invite_id_already_used_gets_8012() {
    let server = TestServer::start().await;
    let (alice, _alice_rx) = server.client("alice").await;
    let (bob, _bob_rx) = server.client("bob").await;
    let (carol, _carol_rx) = server.client("carol").await;

    let proposed = |user: &str| InviteParams {
        invite_id: Some("my-call-1".into()),
        ..invite_to(user, "", 30)
    };
    let sent = alice
        .invite(proposed("bob"))
        .await
        .expect("first use of the ID");
    assert_eq!(sent.invite_id, "my-call-1");
    assert_eq!(
        refusal_code(alice.invite(proposed("carol")).await, "reuse while active"),
        8012
    );
    assert_eq!(
        refusal_code(bob.invite(proposed("carol")).await, "reuse by another user"),
        8012
    );
    alice.cancel(action("my-call-1", "")).await.expect("cancel");
    assert_eq!(
        refusal_code(alice.invite(proposed("bob")).await, "reuse after the end"),
        8012
    );
    assert_eq!(
        refusal_code(carol.invite(proposed("alice")).await, "reuse after the end"),
        8012
    );
}

#[tokio::test]
async fn requests_before_login_get_2024() {
    let server = TestServer::start().await;
    server.create_users(&["alice", "bob"]).await;
    let mut raw = server.raw().await;
    let requests = [
        ("invite", json!({"userID": "bob"})),
        ("cancel", json!({"inviteID": "x"})),
        ("accept", json!({"inviteID": "x"})),
        ("reject", json!({"inviteID": "x"})),
        ("modifyInvitation", json!({"inviteID": "x", "data": "d"})),
        ("getMessageList", json!({"conversationID": "C2Cbob"})),
        ("getConversationList", json!({})),
    ];
    for (op, params) in requests {
        let result = raw.request(op, params).await;
        assert_eq!(result["code"], 2024, "{op} before login: {result}");
        assert!(
            result["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{op}: {result}"
        );
    }
}

#[tokio::test]
async fn invalid_invitations_get_their_codes() {
    let server = TestServer::start().await;
    let (alice, _alice_rx) = server.client("alice").await;
    let (_bob, mut bob_rx) = server.client("bob").await;

    let unknown = alice
        .invite(invite_to("nobody-ever-logged-in", "", 30))
        .await;
    assert_eq!(refusal_code(unknown, "invite unknown user"), 9004);
    assert_eq!(
        refusal_code(
            alice.invite(invite_to("alice", "", 30)).await,
            "invite self"
        ),
        9005
    );

    let too_big = "x".repeat(8193);
    assert_eq!(
        refusal_code(alice.invite(invite_to("bob", &too_big, 30)).await, "8193 B"),
        9007
    );
    let at_limit = "x".repeat(8192);
    let sent = alice
        .invite(invite_to("bob", &at_limit, 30))
        .await
        .expect("8192 bytes fit");
    assert_eq!(
        refusal_code(
            alice
                .modify_invitation(modify(&sent.invite_id, &too_big))
                .await,
            "modify 8193 B"
        ),
        9007
    );

    let long = alice.invite(invite_to("bob", "", 86_401)).await;
    assert_eq!(refusal_code(long, "timeout 86401"), 9003);
    alice
        .invite(invite_to("bob", "", 86_400))
        .await
        .expect("timeout 86400 is allowed");
    for timeout in [json!(-1), json!("30"), json!(1.5), json!(true)] {
        let outcome = alice
            .request("invite", json!({"userID": "bob", "timeout": timeout}))
            .await;
        assert_eq!(refusal_code(outcome, &format!("timeout {timeout}")), 9003);
    }

    let online_only = InviteParams {
        online_user_only: Some(true),
        ..invite_to("bob", "", 30)
    };
    let live = alice.invite(online_only).await.expect("online-only invite");
    let modified = alice.modify_invitation(modify(&live.invite_id, "x")).await;
    assert_eq!(refusal_code(modified, "modify online-only"), 9008);

    // Only the three valid invitations rang.
    let rings = collect_signaling(&mut bob_rx, 3).await;
    assert_eq!(rings.len(), 3, "{rings:?}");
    assert!(rings.iter().all(|e| e.name == NEW));
}

// ---------------------------------------------------------------------------------------
// 3. Races.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Winner {
    Accept,
    Cancel,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_racing_accept_has_exactly_one_winner_both_sides_agree() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;

    let mut winners: HashMap<String, Winner> = HashMap::new();
    for _ in 0..50 {
        let sent = alice
            .invite(invite_to("bob", "", 30))
            .await
            .expect("invite");
        let id = sent.invite_id;
        let (cancel, accept) =
            tokio::join!(alice.cancel(action(&id, "")), bob.accept(action(&id, "")));
        let winner = match (cancel, accept) {
            (Ok(_), Err(lost)) => {
                assert_eq!(lost.code(), Some(8010), "accept lost: {lost:?}");
                Winner::Cancel
            }
            (Err(lost), Ok(_)) => {
                assert_eq!(lost.code(), Some(8020), "cancel lost: {lost:?}");
                Winner::Accept
            }
            other => panic!("exactly one must win: {other:?}"),
        };
        winners.insert(id, winner);
    }
    let accepts = winners.values().filter(|w| **w == Winner::Accept).count();
    let cancels = winners.len() - accepts;

    let alice_heard = names_by_invite(&collect_signaling(&mut alice_rx, accepts).await);
    let bob_heard = names_by_invite(&collect_signaling(&mut bob_rx, 50 + cancels).await);
    for (id, winner) in &winners {
        let (alice_expects, bob_expects): (&[&str], &[&str]) = match winner {
            Winner::Accept => (&[ACCEPTED], &[NEW]),
            Winner::Cancel => (&[], &[NEW, CANCELLED]),
        };
        assert_eq!(
            alice_heard.get(id).cloned().unwrap_or_default(),
            alice_expects,
            "inviter's events for {id} ({winner:?} won)"
        );
        assert_eq!(
            bob_heard.get(id).cloned().unwrap_or_default(),
            bob_expects,
            "invitee's events for {id} ({winner:?} won)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_devices_accepting_at_once_exactly_one_wins() {
    const ROUNDS: usize = 20;
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob1, mut bob1_rx) = server.client("bob").await;
    let (bob2, mut bob2_rx) = server.client("bob").await;

    let mut first_won: HashMap<String, bool> = HashMap::new();
    for round in 0..ROUNDS {
        let sent = alice
            .invite(invite_to("bob", "", 30))
            .await
            .expect("invite");
        let id = sent.invite_id;
        // Alternate which request leaves first, so each device both wins and loses.
        let (one, two) = if round % 2 == 0 {
            tokio::join!(bob1.accept(action(&id, "")), bob2.accept(action(&id, "")))
        } else {
            let (two, one) =
                tokio::join!(bob2.accept(action(&id, "")), bob1.accept(action(&id, "")));
            (one, two)
        };
        let first = match (one, two) {
            (Ok(_), Err(lost)) if lost.code() == Some(8010) => true,
            (Err(lost), Ok(_)) if lost.code() == Some(8010) => false,
            other => panic!("exactly one device must win, the other get 8010: {other:?}"),
        };
        first_won.insert(id, first);
    }
    let firsts = first_won.values().filter(|first| **first).count();

    let alice_heard = names_by_invite(&collect_signaling(&mut alice_rx, ROUNDS).await);
    let bob1_frames = collect_signaling(&mut bob1_rx, ROUNDS + (ROUNDS - firsts)).await;
    let bob2_frames = collect_signaling(&mut bob2_rx, ROUNDS + firsts).await;
    for frame in bob1_frames
        .iter()
        .chain(&bob2_frames)
        .filter(|f| f.name == ACCEPTED)
    {
        assert_eq!(frame.data["handledOnOtherDevice"], true, "{frame:?}");
    }
    let (bob1_heard, bob2_heard) = (names_by_invite(&bob1_frames), names_by_invite(&bob2_frames));
    for (id, first) in &first_won {
        let heard = |map: &HashMap<String, Vec<String>>| map.get(id).cloned().unwrap_or_default();
        assert_eq!(
            heard(&alice_heard),
            [ACCEPTED],
            "inviter hears one accept for {id}"
        );
        let (winner, loser) = if *first {
            (&bob1_heard, &bob2_heard)
        } else {
            (&bob2_heard, &bob1_heard)
        };
        assert_eq!(heard(winner), [NEW], "winning device for {id}");
        assert_eq!(
            heard(loser),
            [NEW, ACCEPTED],
            "losing device stops ringing for {id}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 5. Login replay and the maximum lifetime.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pending_invitation_is_replayed_at_fresh_login_and_ended_ones_are_not() {
    let server = TestServer::start().await;
    server.create_users(&["bob"]).await;
    let (alice, mut alice_rx) = server.client("alice").await;

    // Ended by timeout while bob is away.
    let expired = alice
        .invite(invite_to("bob", "expired", 1))
        .await
        .expect("invite");
    // Ended by cancel.
    let cancelled = alice
        .invite(invite_to("bob", "cancelled", 30))
        .await
        .expect("invite");
    alice
        .cancel(action(&cancelled.invite_id, ""))
        .await
        .expect("cancel");
    // Online-only: never replayed.
    let live = InviteParams {
        online_user_only: Some(true),
        ..invite_to("bob", "live", 30)
    };
    alice.invite(live).await.expect("online-only invite");
    // Still pending.
    let pending = alice
        .invite(invite_to("bob", "pending", 30))
        .await
        .expect("invite");
    let timed_out = expect_event(&mut alice_rx, TIMEOUT).await;
    assert_eq!(timed_out.data["inviteID"], expired.invite_id.as_str());

    // A fresh device with a listener attached before login.
    let bob = Client::new(server.client_config("bob"));
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    bob.add_signaling_listener(NEW, move |frame| {
        let _ = tx.send(frame.clone());
    });
    let mut bob_rx = bob.subscribe();
    bob.login().await.expect("login");

    // Exactly one replay, and it is the pending invitation (not the ended or online-only ones).
    let replays = collect_signaling(&mut bob_rx, 1).await;
    let ids: Vec<&Value> = replays.iter().map(|e| &e.data["inviteID"]).collect();
    assert_eq!(ids, [pending.invite_id.as_str()], "replayed: {replays:?}");
    let replay = replays[0].clone();
    assert_eq!(replay.name, NEW);
    let mut keys = NEW_KEYS.to_vec();
    keys.push("replay");
    assert_keys(&replay.data, &keys, "replayed invitation");
    let d = &replay.data;
    assert_eq!(d["inviteID"], pending.invite_id.as_str());
    assert_eq!(d["inviter"], "alice");
    assert_eq!(d["groupID"], "");
    assert_eq!(d["inviteeList"], json!(["bob"]));
    assert_eq!(d["data"], "pending");
    assert_eq!(d["replay"], true);
    assert_eq!(d["timeout"], 30);
    assert_eq!(d["onlineUserOnly"], false);
    let remaining = d["timeoutRemaining"].as_u64().expect("timeoutRemaining");
    assert!(
        remaining > 0 && remaining <= 30,
        "timeoutRemaining {remaining}"
    );
    assert_eq!(
        replay.seq, None,
        "a login replay is not kept for resumption"
    );

    let by_listener = tokio::time::timeout(WAIT, heard.recv())
        .await
        .expect("listener added before login is called")
        .expect("listener channel open");
    assert_eq!(by_listener, replay);
    assert!(
        heard.try_recv().is_err(),
        "the listener hears only the pending invitation"
    );
    // The replayed invitation is live: bob can answer it.
    bob.accept(action(&pending.invite_id, ""))
        .await
        .expect("accept replayed");
}

#[tokio::test]
async fn timeout_zero_ends_at_the_server_maximum_lifetime() {
    let server = TestServer::start_with(|config| {
        config.max_invitation_lifetime = Duration::from_secs(2);
    })
    .await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_bob, mut bob_rx) = server.client("bob").await;

    let before = now_ms();
    let sent = alice
        .invite(InviteParams {
            user_id: "bob".into(),
            data: Some("forever?".into()),
            ..Default::default()
        })
        .await
        .expect("invite without timeout");
    let after = now_ms();
    let ring = expect_event(&mut bob_rx, NEW).await;
    assert_eq!(ring.data["timeout"], 0);
    let expires = ring.data["expiresAt"].as_u64().expect("expiresAt");
    assert!(
        (before + 2000..=after + 2000).contains(&expires),
        "expiresAt {expires} is not creation + max lifetime ({before}..{after})"
    );
    let remaining = ring.data["timeoutRemaining"]
        .as_u64()
        .expect("timeoutRemaining");
    assert!((1..=2).contains(&remaining), "timeoutRemaining {remaining}");

    let mine = expect_event(&mut alice_rx, TIMEOUT).await;
    assert!(now_ms() >= expires, "ended before its deadline");
    assert_eq!(mine.data["inviteID"], sent.invite_id.as_str());
    assert_eq!(mine.data["isSelfTimeout"], false);
    let theirs = expect_event(&mut bob_rx, TIMEOUT).await;
    assert_eq!(theirs.data["isSelfTimeout"], true);
    assert_eq!(theirs.data["data"], "forever?");
    assert_no_signaling(&mut alice_rx, "inviter").await;
    assert_no_signaling(&mut bob_rx, "invitee").await;
}

// ---------------------------------------------------------------------------------------
// 6. Online-only invitations.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn online_only_invitation_has_no_seq_no_message_and_no_history() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;

    // A normal invitation first, so the history is known to work in this conversation.
    let kept = alice
        .invite(invite_to("bob", "kept", 30))
        .await
        .expect("invite");
    let ring = expect_event(&mut bob_rx, NEW).await;
    assert!(ring.seq.is_some(), "a kept invitation's event has a seq");
    alice
        .cancel(action(&kept.invite_id, ""))
        .await
        .expect("cancel");
    expect_event(&mut bob_rx, CANCELLED).await;

    let live = alice
        .invite(InviteParams {
            online_user_only: Some(true),
            ..invite_to("bob", "live", 30)
        })
        .await
        .expect("online-only invite");
    assert!(
        live.message.is_none(),
        "no history message: {:?}",
        live.message
    );
    let ring = expect_event(&mut bob_rx, NEW).await;
    assert_eq!(ring.data["inviteID"], live.invite_id.as_str());
    assert_eq!(ring.data["onlineUserOnly"], true);
    assert_eq!(ring.seq, None, "online-only events have no seq");

    let accepted = bob
        .accept(action(&live.invite_id, "yes"))
        .await
        .expect("accept");
    assert!(
        accepted.message.is_none(),
        "accept of an online-only invitation has no message"
    );
    let heard = expect_event(&mut alice_rx, ACCEPTED).await;
    assert_eq!(heard.data["inviteID"], live.invite_id.as_str());
    assert_eq!(heard.seq, None, "the accept inherits online-only");

    for (client, conversation) in [(&alice, "C2Cbob"), (&bob, "C2Calice")] {
        let ids: Vec<String> = history(client, conversation)
            .await
            .iter()
            .filter_map(Client::get_signaling_info)
            .map(|info| info.invite_id)
            .collect();
        assert_eq!(
            ids,
            [kept.invite_id.clone(), kept.invite_id.clone()],
            "{conversation}"
        );
    }
}

#[tokio::test]
async fn online_only_invitation_is_not_replayed_at_login() {
    let server = TestServer::start().await;
    server.create_users(&["bob"]).await;
    let (alice, _alice_rx) = server.client("alice").await;
    alice
        .invite(InviteParams {
            online_user_only: Some(true),
            ..invite_to("bob", "live", 30)
        })
        .await
        .expect("online-only invite to an offline user");

    let (_bob, mut bob_rx) = server.client("bob").await;
    assert_no_signaling(&mut bob_rx, "bob logging in after an online-only invite").await;
}

// ---------------------------------------------------------------------------------------
// 7, 8. Listeners and getSignalingInfo.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn removed_listener_is_not_called() {
    let server = TestServer::start().await;
    let (alice, _alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;

    let (kept_tx, mut kept) = tokio::sync::mpsc::unbounded_channel();
    let (removed_tx, mut removed) = tokio::sync::mpsc::unbounded_channel();
    bob.add_signaling_listener(NEW, move |frame| {
        let _ = kept_tx.send(frame.clone());
    });
    let gone = bob.add_signaling_listener(NEW, move |frame| {
        let _ = removed_tx.send(frame.clone());
    });
    assert!(bob.remove_signaling_listener(NEW, gone));
    assert!(!bob.remove_signaling_listener(NEW, gone), "already removed");

    let sent = alice
        .invite(invite_to("bob", "", 30))
        .await
        .expect("invite");
    // Listeners run before the stream hears the event, so both channels are settled now.
    let ring = expect_event(&mut bob_rx, NEW).await;
    assert_eq!(ring.data["inviteID"], sent.invite_id.as_str());
    assert_eq!(kept.try_recv().expect("kept listener called"), ring);
    assert!(
        removed.try_recv().is_err(),
        "removed listener must not be called"
    );
}

#[tokio::test]
async fn get_signaling_info_reads_signaling_messages_only() {
    let server = TestServer::start().await;
    let (alice, _alice_rx) = server.client("alice").await;
    let (bob, _bob_rx) = server.client("bob").await;

    let sent = alice
        .invite(invite_to("bob", r#"{"call":"video"}"#, 45))
        .await
        .expect("invite");
    let info = info_of(&sent);
    assert_eq!(
        info,
        SignalingInfo {
            business_id: 1,
            timeout: 45,
            data: r#"{"call":"video"}"#.into(),
            invite_id: sent.invite_id.clone(),
            group_id: String::new(),
            action_type: 1,
            inviter: "alice".into(),
            invitee_list: vec!["bob".into()],
        }
    );
    let rejected = bob
        .reject(action(&sent.invite_id, "busy"))
        .await
        .expect("reject");
    let info = info_of(&rejected);
    assert_eq!((info.action_type, info.timeout), (4, 0));
    assert_eq!(
        (info.inviter.as_str(), info.data.as_str()),
        ("alice", "busy")
    );
    assert_eq!(info.invitee_list, ["bob"]);
    // The same messages read back from bob's history.
    let kinds: Vec<(String, u8)> = history(&bob, "C2Calice")
        .await
        .iter()
        .filter_map(Client::get_signaling_info)
        .map(|info| (info.invite_id, info.action_type))
        .collect();
    let id = sent.invite_id;
    assert_eq!(kinds, [(id.clone(), 1), (id, 4)]);

    let not_signaling = [
        json!(null),
        json!("text"),
        json!({"type": "TIMTextElem", "payload": {"text": "hi"}}),
        json!({"type": "TIMCustomElem", "payload": {"data": "{\"foo\":1}"}}),
        json!({"type": "TIMCustomElem", "payload": {"data": "inviteID actionType but not JSON"}}),
        json!({"type": "TIMCustomElem", "payload": {"data": 5}}),
        json!({"type": "TIMCustomElem"}),
    ];
    for value in not_signaling {
        assert_eq!(Client::get_signaling_info(&value), None, "{value}");
    }
}
