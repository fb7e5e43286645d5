//! History messages of one-to-one signaling (spec section 6): the stored custom messages and
//! their exact payload, live message events, conversations, unread counts and paging.

use beckon_client::{
    event, ActionParams, ActionResult, Client, ClientError, Conversation, EventFrame, EventStream,
    GetMessageListParams, InviteParams, Message, MessageListResult, ModifyParams, SignalingInfo,
};
use beckon_tests::{expect_event, unix_now, TestServer, WAIT};
use serde_json::Value;
use std::collections::HashSet;

const INVITE: u8 = 1;
const CANCEL: u8 = 2;
const ACCEPT: u8 = 3;
const REJECT: u8 = 4;
const TIMEOUT: u8 = 5;

fn json_str(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// The signaling info a message should carry (inviter "alice", one-to-one).
fn info(timeout: u64, data: &str, invite_id: &str, action: u8, invitees: &[&str]) -> SignalingInfo {
    SignalingInfo {
        business_id: 1,
        timeout,
        data: data.to_owned(),
        invite_id: invite_id.to_owned(),
        group_id: String::new(),
        action_type: action,
        inviter: "alice".to_owned(),
        invitee_list: invitees.iter().map(|u| (*u).to_owned()).collect(),
    }
}

/// The documented `payload.data`, written out by hand so key order and escaping are checked
/// independently of the server's serializer.
fn documented(info: &SignalingInfo) -> String {
    let invitees: Vec<String> = info.invitee_list.iter().map(|u| json_str(u)).collect();
    format!(
        r#"{{"businessID":{},"timeout":{},"data":{},"inviteID":{},"groupID":{},"actionType":{},"inviter":{},"inviteeList":[{}]}}"#,
        info.business_id,
        info.timeout,
        json_str(&info.data),
        json_str(&info.invite_id),
        json_str(&info.group_id),
        info.action_type,
        json_str(&info.inviter),
        invitees.join(",")
    )
}

fn invite_params(user: &str, data: &str, timeout: u64) -> InviteParams {
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

async fn invite(client: &Client, user: &str, data: &str, timeout: u64) -> ActionResult {
    client
        .invite(invite_params(user, data, timeout))
        .await
        .expect("invite")
}

/// The stored message an action result carries (rendered for the actor).
fn message_of(result: &ActionResult) -> Message {
    result
        .message
        .clone()
        .expect("the result carries the stored message")
}

fn page_params(conversation: &str, count: u64, cursor: Option<&str>) -> GetMessageListParams {
    GetMessageListParams {
        conversation_id: conversation.into(),
        next_req_message_id: cursor.map(str::to_owned),
        count: Some(count),
    }
}

/// The whole history of a conversation (small enough for one page).
async fn history(client: &Client, conversation: &str) -> Vec<Message> {
    let page = client
        .get_message_list(page_params(conversation, 100, None))
        .await
        .expect("getMessageList");
    assert!(page.is_completed, "history of {conversation} fits one page");
    page.message_list
}

async fn conversation(client: &Client, id: &str) -> Conversation {
    let list = client
        .get_conversation_list()
        .await
        .expect("getConversationList");
    list.conversation_list
        .into_iter()
        .find(|c| c.conversation_id == id)
        .unwrap_or_else(|| panic!("{} has no conversation {id}", client.user_id()))
}

/// (unreadCount, lastMessage ID) of a conversation.
async fn unread_and_last(client: &Client, id: &str) -> (u64, Option<String>) {
    let conv = conversation(client, id).await;
    (conv.unread_count, conv.last_message.map(|m| m.id))
}

fn refusal_code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> u32 {
    result
        .expect_err("the call is refused")
        .code()
        .expect("a refusal with a code")
}

/// Events up to and including the first one `matches` accepts; fails after `WAIT`.
async fn until(events: &mut EventStream, matches: impl Fn(&EventFrame) -> bool) -> Vec<EventFrame> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = events
            .next_any_event(left)
            .await
            .unwrap_or_else(|| panic!("expected event not seen within {WAIT:?}; saw {seen:?}"));
        let done = matches(&frame);
        seen.push(frame);
        if done {
            return seen;
        }
    }
}

/// The messages of an onMessageReceived / onMessageModified event.
fn event_messages(frame: &EventFrame) -> Vec<Message> {
    serde_json::from_value(frame.data.clone()).expect("message events carry a list of messages")
}

/// Whether `frame` is the message event `name` about message `id`.
fn is_message_event(frame: &EventFrame, name: &str, id: &str) -> bool {
    frame.name == name && event_messages(frame).iter().any(|m| m.id == id)
}

fn is_event_for(frame: &EventFrame, name: &str, invite_id: &str) -> bool {
    frame.name == name && frame.data["inviteID"] == invite_id
}

/// The single message of the message event `name` about message `id`, waited for.
async fn message_event(events: &mut EventStream, name: &str, id: &str) -> Message {
    let seen = until(events, |f| is_message_event(f, name, id)).await;
    let frame = seen.last().expect("the matching event");
    let mut list = event_messages(frame);
    assert_eq!(list.len(), 1, "one message per action: {frame:?}");
    list.remove(0)
}

/// A message as one reader must see it.
struct Expected {
    /// Unknown for timeout messages (no caller gets a result).
    id: Option<String>,
    from: &'static str,
    info: SignalingInfo,
}

/// Checks the stored message an action result carries (rendered for the actor) and expects it
/// in history.
fn record(
    expected: &mut Vec<Expected>,
    result: &ActionResult,
    from: &'static str,
    info: SignalingInfo,
) {
    let message = message_of(result);
    assert_eq!(
        message.payload.data,
        documented(&info),
        "result message of {info:?}"
    );
    assert_eq!(
        message.flow, "out",
        "the actor reads its own message as out"
    );
    expected.push(Expected {
        id: Some(message.id),
        from,
        info,
    });
}

#[tokio::test]
async fn each_action_stores_one_message_in_the_documented_format() {
    let server = TestServer::start().await;
    let start = unix_now();
    let (alice, mut alice_events) = server.client("alice").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let mut expected = Vec::new();

    let sent = invite(&alice, "bob", "hi", 30).await;
    let id1 = sent.invite_id.clone();
    record(
        &mut expected,
        &sent,
        "alice",
        info(30, "hi", &id1, INVITE, &["bob"]),
    );
    let accepted = bob.accept(action(&id1, "yes")).await.expect("accept");
    record(
        &mut expected,
        &accepted,
        "bob",
        info(0, "yes", &id1, ACCEPT, &["bob"]),
    );

    let sent = invite(&alice, "bob", "{\"call\":\"video\"}", 45).await;
    let id2 = sent.invite_id.clone();
    record(
        &mut expected,
        &sent,
        "alice",
        info(45, "{\"call\":\"video\"}", &id2, INVITE, &["bob"]),
    );
    let rejected = bob
        .reject(action(&id2, "busy \"now\""))
        .await
        .expect("reject");
    record(
        &mut expected,
        &rejected,
        "bob",
        info(0, "busy \"now\"", &id2, REJECT, &["bob"]),
    );

    let sent = invite(&alice, "bob", "third", 30).await;
    let id3 = sent.invite_id.clone();
    record(
        &mut expected,
        &sent,
        "alice",
        info(30, "third", &id3, INVITE, &["bob"]),
    );
    let cancelled = alice.cancel(action(&id3, "bye")).await.expect("cancel");
    record(
        &mut expected,
        &cancelled,
        "alice",
        info(0, "bye", &id3, CANCEL, &["bob"]),
    );

    // Timeout: the message carries the invite's data and the timed-out invitee.
    let sent = invite(&alice, "bob", "ring", 1).await;
    let id4 = sent.invite_id.clone();
    record(
        &mut expected,
        &sent,
        "alice",
        info(1, "ring", &id4, INVITE, &["bob"]),
    );
    until(&mut alice_events, |f| {
        is_event_for(f, event::INVITATION_TIMEOUT, &id4)
    })
    .await;
    expected.push(Expected {
        id: None,
        from: "alice",
        info: info(0, "ring", &id4, TIMEOUT, &["bob"]),
    });

    // Modify rewrites the invite message in place instead of adding one.
    let sent = invite(&alice, "bob", "v1", 30).await;
    let id5 = sent.invite_id.clone();
    let invite5 = message_of(&sent);
    let modified = alice
        .modify_invitation(ModifyParams {
            invite_id: id5.clone(),
            data: "v2".into(),
        })
        .await
        .expect("modify");
    let rewritten = message_of(&modified);
    assert_eq!(
        rewritten.id, invite5.id,
        "modify returns the rewritten invite message"
    );
    assert_eq!(rewritten.sequence, invite5.sequence);
    record(
        &mut expected,
        &modified,
        "alice",
        info(30, "v2", &id5, INVITE, &["bob"]),
    );
    until(&mut bob_events, |f| {
        is_event_for(f, event::INVITATION_MODIFIED, &id5)
    })
    .await;
    let end = unix_now();

    let alice_list = history(&alice, "C2Cbob").await;
    let bob_list = history(&bob, "C2Calice").await;
    for (reader, conversation_id, list) in [
        ("alice", "C2Cbob", &alice_list),
        ("bob", "C2Calice", &bob_list),
    ] {
        assert_eq!(
            list.len(),
            expected.len(),
            "{reader} sees one message per action: {list:#?}"
        );
        let mut last_sequence = 0;
        for (message, want) in list.iter().zip(&expected) {
            let what = format!("{reader}'s message {:?}", want.info);
            if let Some(id) = &want.id {
                assert_eq!(&message.id, id, "{what}");
            }
            assert!(!message.id.is_empty(), "{what}");
            assert_eq!(message.conversation_id, conversation_id, "{what}");
            assert_eq!(message.conversation_type, "C2C", "{what}");
            assert_eq!(message.from, want.from, "{what}");
            assert_eq!(
                message.to,
                if want.from == "alice" { "bob" } else { "alice" },
                "{what}"
            );
            assert_eq!(
                message.flow,
                if want.from == reader { "out" } else { "in" },
                "{what}"
            );
            assert!(
                (start..=end).contains(&message.time),
                "{what}: time {} not in {start}..={end}",
                message.time
            );
            assert!(
                message.sequence > last_sequence,
                "{what}: sequence {} after {last_sequence}",
                message.sequence
            );
            last_sequence = message.sequence;
            assert_eq!(message.kind, "TIMCustomElem", "{what}");
            // Byte for byte: apps parse this string themselves.
            assert_eq!(message.payload.data, documented(&want.info), "{what}");
            assert!(!message.is_excluded_from_unread_count, "{what}");
            assert!(!message.is_excluded_from_last_message, "{what}");
        }
    }
    // One stored message per action, seen by both sides under the same ID and sequence.
    let ids = |list: &[Message]| {
        list.iter()
            .map(|m| (m.id.clone(), m.sequence))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&alice_list), ids(&bob_list));
    let unique: HashSet<_> = alice_list.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(unique.len(), alice_list.len(), "message IDs are unique");
}

#[tokio::test]
async fn get_signaling_info_parses_every_stored_message() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.client("alice").await;
    let (bob, _bob_events) = server.client("bob").await;
    let data = "{\"excludeFromHistoryMessage\":false,\"room\":7}";
    let first = invite(&alice, "bob", data, 20).await.invite_id;
    bob.reject(action(&first, "no")).await.expect("reject");
    let second = invite(&alice, "bob", "x", 1).await.invite_id;
    until(&mut alice_events, |f| {
        is_event_for(f, event::INVITATION_TIMEOUT, &second)
    })
    .await;
    let third = invite(&alice, "bob", "", 0).await.invite_id;
    bob.accept(action(&third, "")).await.expect("accept");

    let want = [
        info(20, data, &first, INVITE, &["bob"]),
        info(0, "no", &first, REJECT, &["bob"]),
        info(1, "x", &second, INVITE, &["bob"]),
        info(0, "x", &second, TIMEOUT, &["bob"]),
        info(0, "", &third, INVITE, &["bob"]),
        info(0, "", &third, ACCEPT, &["bob"]),
    ];
    for list in [
        history(&alice, "C2Cbob").await,
        history(&bob, "C2Calice").await,
    ] {
        assert_eq!(list.len(), want.len());
        for (message, want) in list.iter().zip(&want) {
            let value = serde_json::to_value(message).expect("message serializes");
            assert_eq!(
                Client::get_signaling_info(&value).as_ref(),
                Some(want),
                "{value}"
            );
            // Not a custom message: not signaling.
            let mut text = value.clone();
            text["type"] = Value::from("TIMTextElem");
            assert_eq!(Client::get_signaling_info(&text), None);
        }
    }
}

#[tokio::test]
async fn modify_rewrites_the_invite_message_and_devices_hear_of_it() {
    let server = TestServer::start().await;
    let (alice1, mut a1) = server.client("alice").await;
    let (_alice2, mut a2) = server.client("alice").await;
    let (bob1, mut b1) = server.client("bob").await;
    let (_bob2, mut b2) = server.client("bob").await;

    let sent = invite(&alice1, "bob", "v1", 30).await;
    let invite_id = sent.invite_id.clone();
    let original = message_of(&sent);
    let v1 = documented(&info(30, "v1", &invite_id, INVITE, &["bob"]));
    assert_eq!(original.payload.data, v1);
    // New messages reach the other side and the sender's other device, rendered per reader.
    for events in [&mut b1, &mut b2] {
        let got = message_event(events, event::MESSAGE_RECEIVED, &original.id).await;
        assert_eq!(
            (
                got.flow.as_str(),
                got.conversation_id.as_str(),
                got.from.as_str()
            ),
            ("in", "C2Calice", "alice")
        );
        assert_eq!(got.payload.data, v1);
        assert_eq!(got.sequence, original.sequence);
    }
    let got = message_event(&mut a2, event::MESSAGE_RECEIVED, &original.id).await;
    assert_eq!(
        (got.flow.as_str(), got.conversation_id.as_str()),
        ("out", "C2Cbob")
    );
    assert_eq!(got.payload.data, v1);

    alice1
        .modify_invitation(ModifyParams {
            invite_id: invite_id.clone(),
            data: "v2".into(),
        })
        .await
        .expect("modify by the inviter");
    let v2 = documented(&info(30, "v2", &invite_id, INVITE, &["bob"]));
    for events in [&mut b1, &mut b2] {
        let got = message_event(events, event::MESSAGE_MODIFIED, &original.id).await;
        assert_eq!(
            (got.flow.as_str(), got.conversation_id.as_str()),
            ("in", "C2Calice")
        );
        assert_eq!(got.payload.data, v2);
        assert_eq!(
            got.sequence, original.sequence,
            "the same message, rewritten"
        );
    }
    let got = message_event(&mut a2, event::MESSAGE_MODIFIED, &original.id).await;
    assert_eq!(
        (got.flow.as_str(), got.conversation_id.as_str()),
        ("out", "C2Cbob")
    );
    assert_eq!(got.payload.data, v2);
    for (client, conversation_id) in [(&alice1, "C2Cbob"), (&bob1, "C2Calice")] {
        let list = history(client, conversation_id).await;
        assert_eq!(list.len(), 1, "modify adds no message: {list:#?}");
        assert_eq!(list[0].id, original.id);
        assert_eq!(
            list[0].payload.data, v2,
            "getMessageList shows the new data"
        );
    }

    // The invitee may modify too; the inviter's devices see the rewrite.
    bob1.modify_invitation(ModifyParams {
        invite_id: invite_id.clone(),
        data: "v3".into(),
    })
    .await
    .expect("modify by the invitee");
    let v3 = documented(&info(30, "v3", &invite_id, INVITE, &["bob"]));
    let before = until(&mut a1, |f| {
        f.name == event::MESSAGE_MODIFIED && event_messages(f).iter().any(|m| m.payload.data == v3)
    })
    .await;
    let got = event_messages(before.last().expect("matched"));
    assert_eq!(
        (got[0].id.as_str(), got[0].flow.as_str()),
        (original.id.as_str(), "out")
    );
    assert!(
        !before
            .iter()
            .any(|f| is_message_event(f, event::MESSAGE_RECEIVED, &original.id)),
        "the sending device got its own invite as onMessageReceived: {before:?}"
    );
    assert_eq!(history(&alice1, "C2Cbob").await[0].payload.data, v3);

    // An answer: bob's other device and both of alice's get it; the answering device does not.
    let accepted = bob1.accept(action(&invite_id, "ok")).await.expect("accept");
    let answer = message_of(&accepted);
    let got = message_event(&mut b2, event::MESSAGE_RECEIVED, &answer.id).await;
    assert_eq!(
        (
            got.flow.as_str(),
            got.conversation_id.as_str(),
            got.from.as_str()
        ),
        ("out", "C2Calice", "bob")
    );
    for events in [&mut a1, &mut a2] {
        let got = message_event(events, event::MESSAGE_RECEIVED, &answer.id).await;
        assert_eq!(
            (got.flow.as_str(), got.conversation_id.as_str()),
            ("in", "C2Cbob")
        );
        assert_eq!(
            got.payload.data,
            documented(&info(0, "ok", &invite_id, ACCEPT, &["bob"]))
        );
    }
    // bob1's events are in order: anything for the accept would come before the next invite.
    let next = invite(&alice1, "bob", "again", 30).await.invite_id;
    let seen = until(&mut b1, |f| {
        is_event_for(f, event::NEW_INVITATION_RECEIVED, &next)
    })
    .await;
    assert!(
        !seen
            .iter()
            .any(|f| is_message_event(f, event::MESSAGE_RECEIVED, &answer.id)),
        "the answering device got its own message as onMessageReceived: {seen:?}"
    );
}

#[tokio::test]
async fn conversations_count_unread_and_honour_exclusion_flags() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.client("alice").await;
    let (bob, _bob_events) = server.client("bob").await;

    let sent = invite(&alice, "bob", "call", 30).await;
    let rejected = bob
        .reject(action(&sent.invite_id, "busy"))
        .await
        .expect("reject");
    let reject_id = message_of(&rejected).id;
    let alice_conv = conversation(&alice, "C2Cbob").await;
    assert_eq!(alice_conv.kind, "C2C");
    assert_eq!(
        alice_conv.unread_count, 1,
        "the inviter counts the invitee's reject only"
    );
    let last = alice_conv.last_message.expect("a last message");
    assert_eq!(
        (last.id.as_str(), last.flow.as_str()),
        (reject_id.as_str(), "in")
    );
    let bob_list = bob
        .get_conversation_list()
        .await
        .expect("conversations")
        .conversation_list;
    assert_eq!(bob_list.len(), 1, "{bob_list:#?}");
    assert_eq!(bob_list[0].conversation_id, "C2Calice");
    assert_eq!(
        bob_list[0].unread_count, 1,
        "the invitee counts the invite, not his own reject"
    );
    let last = bob_list[0].last_message.clone().expect("a last message");
    assert_eq!(
        (last.id.as_str(), last.flow.as_str()),
        (reject_id.as_str(), "out")
    );

    bob.set_message_read("C2Calice")
        .await
        .expect("setMessageRead");
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (0, Some(reject_id.clone()))
    );
    assert_eq!(
        unread_and_last(&alice, "C2Cbob").await,
        (1, Some(reject_id.clone())),
        "only the reader's count"
    );
    alice
        .set_message_read("C2Cbob")
        .await
        .expect("setMessageRead");
    assert_eq!(unread_and_last(&alice, "C2Cbob").await.0, 0);

    // Excluded messages are stored but neither counted nor shown as the last message.
    let excluded = invite(&alice, "bob", "{\"excludeFromHistoryMessage\":true}", 30).await;
    let hidden_invite = message_of(&excluded);
    assert!(
        hidden_invite.is_excluded_from_unread_count && hidden_invite.is_excluded_from_last_message
    );
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (0, Some(reject_id.clone()))
    );
    let cancelled = alice
        .cancel(action(
            &excluded.invite_id,
            "{\"excludeOriginalSignalingFromHistoryMessage\":true}",
        ))
        .await
        .expect("cancel");
    let hidden_cancel = message_of(&cancelled);
    assert!(
        hidden_cancel.is_excluded_from_unread_count && hidden_cancel.is_excluded_from_last_message
    );
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (0, Some(reject_id.clone()))
    );
    assert_eq!(
        unread_and_last(&alice, "C2Cbob").await,
        (0, Some(reject_id.clone()))
    );
    let stored = history(&bob, "C2Calice").await;
    let flags: Vec<_> = stored
        .iter()
        .map(|m| {
            (
                m.id.as_str(),
                m.is_excluded_from_unread_count,
                m.is_excluded_from_last_message,
            )
        })
        .collect();
    assert_eq!(
        flags[2..],
        [
            (hidden_invite.id.as_str(), true, true),
            (hidden_cancel.id.as_str(), true, true)
        ],
        "excluded messages stay in history"
    );

    // The value is read: `false` does not exclude.
    let counted = invite(&alice, "bob", "{\"excludeFromHistoryMessage\":false}", 30).await;
    let counted_id = message_of(&counted).id;
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (1, Some(counted_id.clone()))
    );
    assert_eq!(
        unread_and_last(&alice, "C2Cbob").await,
        (0, Some(counted_id))
    );
    let cancelled = alice
        .cancel(action(
            &counted.invite_id,
            "{\"excludeOriginalSignalingFromHistoryMessage\":false}",
        ))
        .await
        .expect("cancel");
    let cancel_id = message_of(&cancelled).id;
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (2, Some(cancel_id))
    );

    // Timeout messages read their own key, from the invite's data.
    let quiet = invite(
        &alice,
        "bob",
        "{\"excludeTimeoutSignalingFromHistoryMessage\":true}",
        1,
    )
    .await;
    let quiet_invite = message_of(&quiet);
    assert!(
        !quiet_invite.is_excluded_from_unread_count,
        "the key only concerns the timeout message"
    );
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (3, Some(quiet_invite.id.clone()))
    );
    until(&mut alice_events, |f| {
        is_event_for(f, event::INVITATION_TIMEOUT, &quiet.invite_id)
    })
    .await;
    let timeout_message = history(&bob, "C2Calice")
        .await
        .pop()
        .expect("the timeout message");
    let payload: Value =
        serde_json::from_str(&timeout_message.payload.data).expect("payload is JSON");
    assert_eq!(
        (payload["inviteID"].as_str(), payload["actionType"].as_u64()),
        (Some(quiet.invite_id.as_str()), Some(5))
    );
    assert!(
        timeout_message.is_excluded_from_unread_count
            && timeout_message.is_excluded_from_last_message
    );
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (3, Some(quiet_invite.id.clone()))
    );

    let loud = invite(
        &alice,
        "bob",
        "{\"excludeTimeoutSignalingFromHistoryMessage\":false}",
        1,
    )
    .await;
    assert_eq!(unread_and_last(&bob, "C2Calice").await.0, 4);
    until(&mut alice_events, |f| {
        is_event_for(f, event::INVITATION_TIMEOUT, &loud.invite_id)
    })
    .await;
    let timeout_message = history(&bob, "C2Calice")
        .await
        .pop()
        .expect("the timeout message");
    assert!(timeout_message.payload.data.contains(&loud.invite_id));
    assert!(!timeout_message.is_excluded_from_unread_count);
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (5, Some(timeout_message.id))
    );
}

#[tokio::test]
async fn message_list_pages_backwards_without_gaps_or_repeats() {
    let server = TestServer::start().await;
    server.create_users(&["bob", "carol"]).await;
    let (alice, _alice_events) = server.client("alice").await;
    for round in 0..10 {
        let sent = invite(&alice, "bob", &format!("n{round}"), 0).await;
        alice
            .cancel(action(&sent.invite_id, &format!("c{round}")))
            .await
            .expect("cancel");
    }
    let elsewhere = message_of(&invite(&alice, "carol", "other", 0).await).id;

    let full = history(&alice, "C2Cbob").await;
    let datas: Vec<String> = full
        .iter()
        .map(|m| {
            SignalingInfo::from_payload_data(&m.payload.data)
                .expect("signaling")
                .data
        })
        .collect();
    let want: Vec<String> = (0..10)
        .flat_map(|i| [format!("n{i}"), format!("c{i}")])
        .collect();
    assert_eq!(datas, want, "oldest to newest");

    let mut pages: Vec<MessageListResult> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        assert!(pages.len() < 5, "paging does not end: {pages:#?}");
        let page = alice
            .get_message_list(page_params("C2Cbob", 7, cursor.as_deref()))
            .await
            .expect("getMessageList");
        let done = page.is_completed;
        cursor = Some(page.next_req_message_id.clone());
        pages.push(page);
        if done {
            break;
        }
    }
    let sizes: Vec<usize> = pages.iter().map(|p| p.message_list.len()).collect();
    assert_eq!(sizes, [7, 7, 6]);
    for page in &pages {
        assert!(
            page.message_list
                .windows(2)
                .all(|w| w[0].sequence < w[1].sequence),
            "each page is oldest to newest"
        );
    }
    // Newest page first; joined oldest-first they are the full history exactly.
    let joined: Vec<&str> = pages
        .iter()
        .rev()
        .flat_map(|p| p.message_list.iter().map(|m| m.id.as_str()))
        .collect();
    let all: Vec<&str> = full.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(joined, all);

    let bad_cursor = |cursor: &str| page_params("C2Cbob", 7, Some(cursor));
    assert_eq!(
        refusal_code(alice.get_message_list(bad_cursor("no-such-message")).await),
        9013
    );
    assert_eq!(
        refusal_code(alice.get_message_list(bad_cursor(&elsewhere)).await),
        9013,
        "a cursor of another conversation"
    );
    assert_eq!(
        refusal_code(alice.get_message_list(page_params("C2Cbob", 0, None)).await),
        9003
    );
    assert_eq!(
        refusal_code(
            alice
                .get_message_list(page_params("C2Cbob", 101, None))
                .await
        ),
        9003
    );
    assert_eq!(
        refusal_code(alice.get_message_list(page_params("xyz", 7, None)).await),
        9003
    );
}

#[tokio::test]
async fn online_only_invitations_store_nothing() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.client("alice").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let online = |data: &str| InviteParams {
        online_user_only: Some(true),
        ..invite_params("bob", data, 30)
    };

    let first = alice.invite(online("a")).await.expect("invite");
    assert!(
        first.message.is_none(),
        "no history message for online-only: {first:?}"
    );
    expect_event(&mut bob_events, event::NEW_INVITATION_RECEIVED).await;
    let accepted = bob
        .accept(action(&first.invite_id, "ok"))
        .await
        .expect("accept");
    assert!(accepted.message.is_none());
    expect_event(&mut alice_events, event::INVITEE_ACCEPTED).await;
    let second = alice.invite(online("b")).await.expect("invite");
    let cancelled = alice
        .cancel(action(&second.invite_id, ""))
        .await
        .expect("cancel");
    assert!(second.message.is_none() && cancelled.message.is_none());

    // A stored invitation afterwards is the first message either side hears of or finds.
    let stored = invite(&alice, "bob", "stored", 30).await;
    let stored_id = message_of(&stored).id;
    let seen = until(&mut bob_events, |f| f.name == event::MESSAGE_RECEIVED).await;
    let got = event_messages(seen.last().expect("matched"));
    assert_eq!(
        got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [stored_id.as_str()]
    );
    for (client, conversation_id) in [(&alice, "C2Cbob"), (&bob, "C2Calice")] {
        let list = history(client, conversation_id).await;
        assert_eq!(
            list.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            [stored_id.as_str()]
        );
    }
    assert_eq!(
        unread_and_last(&bob, "C2Calice").await,
        (1, Some(stored_id))
    );
}
