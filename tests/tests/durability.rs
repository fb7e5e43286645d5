//! Durability (spec sections 4–5): no event is lost or repeated across a reconnect, and
//! invitations and their deadlines survive a server restart.

use beckon_client::{
    event, ActionParams, Client, EventFrame, EventStream, InviteParams, ModifyParams, Notice,
};
use beckon_tests::{
    expect_connected, expect_event, now_ms, wait_until_ms, RawSocket, TestServer, WAIT,
};
use serde_json::{json, Value};
use std::time::Duration;

fn invite_params(user: &str, data: &str, timeout: u64) -> InviteParams {
    InviteParams {
        user_id: user.into(),
        data: Some(data.into()),
        timeout: Some(timeout),
        ..Default::default()
    }
}

async fn invite(client: &Client, user: &str, data: &str, timeout: u64) -> String {
    client
        .invite(invite_params(user, data, timeout))
        .await
        .expect("invite")
        .invite_id
}

fn action(invite_id: &str, data: &str) -> ActionParams {
    ActionParams {
        invite_id: invite_id.into(),
        data: Some(data.into()),
    }
}

async fn cancel(client: &Client, invite_id: &str) {
    client
        .cancel(action(invite_id, "bye"))
        .await
        .expect("cancel");
}

async fn modify(client: &Client, invite_id: &str, data: &str) {
    client
        .modify_invitation(ModifyParams {
            invite_id: invite_id.into(),
            data: data.into(),
        })
        .await
        .expect("modify");
}

/// The inviteID an event is about: from its data, or from the signaling payload of the
/// message a message event carries.
fn invite_of(name: &str, data: &Value) -> String {
    if name == event::MESSAGE_RECEIVED || name == event::MESSAGE_MODIFIED {
        let payload = data[0]["payload"]["data"]
            .as_str()
            .expect("message payload");
        let info: Value = serde_json::from_str(payload).expect("payload is JSON");
        info["inviteID"].as_str().expect("inviteID").to_owned()
    } else {
        data["inviteID"].as_str().expect("inviteID").to_owned()
    }
}

/// (name, inviteID) of a raw event frame.
fn raw_key(frame: &Value) -> (String, String) {
    let name = frame["name"].as_str().expect("event name").to_owned();
    let invite = invite_of(&name, &frame["data"]);
    (name, invite)
}

fn raw_seq(frame: &Value) -> u64 {
    frame["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("event without seq: {frame}"))
}

/// What one action causes for a user, in any order within the action.
fn group(names: &[&str], invite_id: &str) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), invite_id.to_owned()))
        .collect()
}

fn invited(id: &str) -> Vec<(String, String)> {
    group(
        &[event::MESSAGE_RECEIVED, event::NEW_INVITATION_RECEIVED],
        id,
    )
}

fn modified(id: &str) -> Vec<(String, String)> {
    group(&[event::MESSAGE_MODIFIED, event::INVITATION_MODIFIED], id)
}

fn cancelled(id: &str) -> Vec<(String, String)> {
    group(&[event::MESSAGE_RECEIVED, event::INVITATION_CANCELLED], id)
}

/// Checks that `keys` are `groups` one after another (order inside a group is free).
fn assert_groups(keys: &[(String, String)], groups: &[Vec<(String, String)>]) {
    let total: usize = groups.iter().map(Vec::len).sum();
    assert_eq!(
        keys.len(),
        total,
        "event count: got {keys:#?}, want {groups:#?}"
    );
    let mut at = 0;
    for want in groups {
        let mut got = keys[at..at + want.len()].to_vec();
        let mut want = want.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "events {at}.. of {keys:#?}");
        at += want.len();
    }
}

/// Reads exactly `n` events from a raw socket, each within `WAIT`.
async fn raw_events(raw: &mut RawSocket, n: usize) -> Vec<Value> {
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let frame = raw
            .next_event(WAIT)
            .await
            .unwrap_or_else(|| panic!("event {i} of {n} missing; got {events:#?}"));
        events.push(frame);
    }
    events
}

/// Raw events up to and including the first one `matches` accepts.
async fn raw_until(raw: &mut RawSocket, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let frame = raw
            .next_event(WAIT)
            .await
            .unwrap_or_else(|| panic!("expected event missing; got {events:#?}"));
        let done = matches(&frame);
        events.push(frame);
        if done {
            return events;
        }
    }
}

fn assert_consecutive(events: &[Value], first: u64) {
    let seqs: Vec<u64> = events.iter().map(raw_seq).collect();
    let want: Vec<u64> = (first..first + events.len() as u64).collect();
    assert_eq!(seqs, want, "seqs of {events:#?}");
}

fn login_seq(login: &Value) -> u64 {
    login["seq"].as_u64().expect("login result seq")
}

/// SDK events up to and including the first one `matches` accepts; other notices are skipped.
async fn sdk_until(
    events: &mut EventStream,
    matches: impl Fn(&EventFrame) -> bool,
) -> Vec<EventFrame> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = events
            .next_any_event(left)
            .await
            .unwrap_or_else(|| panic!("expected event not seen within {WAIT:?}; saw {seen:#?}"));
        let done = matches(&frame);
        seen.push(frame);
        if done {
            return seen;
        }
    }
}

/// Events until the client has reconnected (a Reconnecting notice, then Connected); calls
/// made before that could go out on the dying socket and fail as Disconnected.
async fn through_reconnect(events: &mut EventStream) -> Vec<EventFrame> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    let mut dropped = false;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match events.next_within(left).await {
            Some(Notice::Event(frame)) => seen.push(frame),
            Some(Notice::Reconnecting { .. }) => dropped = true,
            Some(Notice::Connected(_)) if dropped => return seen,
            Some(Notice::Stopped { close_code, reason }) => {
                panic!("client stopped ({close_code:?}): {reason}")
            }
            Some(_) => {}
            None => panic!("no reconnect within {WAIT:?}; saw {seen:#?}"),
        }
    }
}

fn is_for(frame: &EventFrame, name: &str, invite_id: &str) -> bool {
    frame.name == name && invite_of(&frame.name, &frame.data) == invite_id
}

fn count_for(frames: &[EventFrame], name: &str, invite_id: &str) -> usize {
    frames.iter().filter(|f| is_for(f, name, invite_id)).count()
}

/// The stored messages of `invite_id` with this `actionType`, as alice sees them.
async fn stored_actions(alice: &Client, invite_id: &str, action_type: u64) -> usize {
    let page = alice
        .get_message_list(beckon_client::GetMessageListParams {
            conversation_id: "C2Cbob".into(),
            next_req_message_id: None,
            count: Some(100),
        })
        .await
        .expect("getMessageList");
    assert!(page.is_completed);
    page.message_list
        .iter()
        .filter(|m| {
            let info: Value = serde_json::from_str(&m.payload.data).expect("payload is JSON");
            info["inviteID"] == invite_id && info["actionType"] == action_type
        })
        .count()
}

#[tokio::test]
async fn raw_resume_sends_exactly_the_missed_events_in_order() {
    let server = TestServer::start().await;
    let (mut bob, login) = server.raw_login("bob", "bob-phone", None).await;
    assert_eq!(
        (login["resumed"].as_bool(), login["resync"].as_bool()),
        (Some(false), Some(false))
    );
    let head = login_seq(&login);
    let (alice, _alice_events) = server.client("alice").await;

    let first = invite(&alice, "bob", "one", 60).await;
    let live = raw_events(&mut bob, 2).await;
    assert_consecutive(&live, head + 1);
    assert_groups(
        &live.iter().map(raw_key).collect::<Vec<_>>(),
        &[invited(&first)],
    );
    let last_seen = head + 2;
    bob.drop_abruptly();

    // While bob is away.
    modify(&alice, &first, "one, changed").await;
    cancel(&alice, &first).await;
    let second = invite(&alice, "bob", "two", 60).await;
    let third = invite(&alice, "bob", "three", 60).await;
    cancel(&alice, &third).await;

    let (mut bob, login) = server.raw_login("bob", "bob-phone", Some(last_seen)).await;
    assert_eq!(
        (login["resumed"].as_bool(), login["resync"].as_bool()),
        (Some(true), Some(false)),
        "{login}"
    );
    assert_eq!(login_seq(&login), last_seen + 10);
    let missed = raw_events(&mut bob, 10).await;
    assert_consecutive(&missed, last_seen + 1);
    assert_groups(
        &missed.iter().map(raw_key).collect::<Vec<_>>(),
        &[
            modified(&first),
            cancelled(&first),
            invited(&second),
            invited(&third),
            cancelled(&third),
        ],
    );

    // The next live event follows directly: nothing else (no replay) came in between.
    let fourth = invite(&alice, "bob", "four", 60).await;
    let next = raw_events(&mut bob, 2).await;
    assert_consecutive(&next, last_seen + 11);
    assert_groups(
        &next.iter().map(raw_key).collect::<Vec<_>>(),
        &[invited(&fourth)],
    );
}

#[tokio::test]
async fn sdk_reconnect_delivers_every_event_exactly_once() {
    let server = TestServer::start().await;
    let mut config = server.client_config("bob");
    // A slower first retry keeps bob away while alice acts.
    config.backoff_initial = Duration::from_millis(400);
    config.backoff_max = Duration::from_millis(800);
    let bob = Client::new(config);
    let mut bob_events = bob.subscribe();
    bob.login().await.expect("bob logs in");
    let (alice, _alice_events) = server.client("alice").await;

    let first = invite(&alice, "bob", "one", 60).await;
    let mut seen = sdk_until(&mut bob_events, |f| {
        is_for(f, event::NEW_INVITATION_RECEIVED, &first)
    })
    .await;
    bob.drop_connection();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match bob_events.next_within(left).await {
            Some(Notice::Reconnecting { .. }) => break,
            Some(Notice::Event(frame)) => seen.push(frame),
            Some(other) => panic!("unexpected notice {other:?}"),
            None => panic!("no Reconnecting notice after drop_connection"),
        }
    }
    modify(&alice, &first, "one, changed").await;
    cancel(&alice, &first).await;
    let second = invite(&alice, "bob", "two", 60).await;
    let third = invite(&alice, "bob", "three", 60).await;
    cancel(&alice, &third).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let resumed = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match bob_events.next_within(left).await {
            Some(Notice::Connected(result)) => break result,
            Some(Notice::Event(frame)) => seen.push(frame),
            Some(Notice::Reconnecting { .. }) => {}
            Some(other) => panic!("unexpected notice {other:?}"),
            None => panic!("bob did not reconnect"),
        }
    };
    assert!(resumed.resumed && !resumed.resync, "{resumed:?}");
    let fourth = invite(&alice, "bob", "four", 60).await;
    // Both events of the marker invitation end the collection.
    while seen
        .iter()
        .filter(|f| invite_of(&f.name, &f.data) == fourth)
        .count()
        < 2
    {
        let frame = bob_events
            .next_any_event(WAIT)
            .await
            .unwrap_or_else(|| panic!("events of the last invitation missing; saw {seen:#?}"));
        seen.push(frame);
    }

    let seqs: Vec<u64> = seen
        .iter()
        .map(|f| f.seq.expect("every event has a seq"))
        .collect();
    let first_seq = seqs[0];
    let want: Vec<u64> = (first_seq..first_seq + seqs.len() as u64).collect();
    assert_eq!(seqs, want, "every event once, in order: {seen:#?}");
    let keys: Vec<(String, String)> = seen
        .iter()
        .map(|f| (f.name.clone(), invite_of(&f.name, &f.data)))
        .collect();
    assert_groups(
        &keys,
        &[
            invited(&first),
            modified(&first),
            cancelled(&first),
            invited(&second),
            invited(&third),
            cancelled(&third),
            invited(&fourth),
        ],
    );
}

#[tokio::test]
async fn own_actions_are_not_replayed_to_the_acting_instance() {
    let server = TestServer::start().await;
    let (mut phone, login) = server.raw_login("bob", "bob-phone", None).await;
    let head = login_seq(&login);
    let (mut laptop, _) = server.raw_login("bob", "bob-laptop", None).await;
    let (alice, _alice_events) = server.client("alice").await;

    let invite_id = invite(&alice, "bob", "ring", 60).await;
    for raw in [&mut phone, &mut laptop] {
        let got = raw_events(raw, 2).await;
        assert_consecutive(&got, head + 1);
    }
    let last_seen = head + 2;
    laptop.drop_abruptly();
    let result = phone
        .request("accept", json!({"inviteID": invite_id, "data": "yes"}))
        .await;
    assert_eq!(result["code"], 0, "{result}");
    phone.drop_abruptly();
    let second = invite(&alice, "bob", "again", 60).await;

    // The phone accepted: its backlog skips the two events the accept made for bob.
    let (mut phone, login) = server.raw_login("bob", "bob-phone", Some(last_seen)).await;
    assert_eq!(login["resumed"], true, "{login}");
    let got = raw_events(&mut phone, 2).await;
    assert_consecutive(&got, last_seen + 3);
    assert_groups(
        &got.iter().map(raw_key).collect::<Vec<_>>(),
        &[invited(&second)],
    );

    // The laptop gets the accept (as handled on another device), then the new invitation.
    let (mut laptop, login) = server.raw_login("bob", "bob-laptop", Some(last_seen)).await;
    assert_eq!(login["resumed"], true, "{login}");
    let got = raw_events(&mut laptop, 4).await;
    assert_consecutive(&got, last_seen + 1);
    assert_groups(
        &got.iter().map(raw_key).collect::<Vec<_>>(),
        &[
            group(
                &[event::MESSAGE_RECEIVED, event::INVITEE_ACCEPTED],
                &invite_id,
            ),
            invited(&second),
        ],
    );
    let accepted = got[..2]
        .iter()
        .find(|f| f["name"] == event::INVITEE_ACCEPTED)
        .expect("accepted event");
    assert_eq!(accepted["data"]["invitee"], "bob");
    assert_eq!(accepted["data"]["data"], "yes");

    // Both continue with the same next live event.
    let third = invite(&alice, "bob", "third", 60).await;
    for raw in [&mut phone, &mut laptop] {
        let got = raw_events(raw, 2).await;
        assert_consecutive(&got, last_seen + 5);
        assert_groups(
            &got.iter().map(raw_key).collect::<Vec<_>>(),
            &[invited(&third)],
        );
    }
}

#[tokio::test]
async fn last_seq_beyond_the_head_resyncs_and_replays_pending() {
    let server = TestServer::start().await;
    server.create_users(&["bob"]).await;
    let (alice, _alice_events) = server.client("alice").await;
    let open = invite(&alice, "bob", "no timeout", 0).await;
    let timed = invite(&alice, "bob", "a minute", 60).await;
    let gone = invite(&alice, "bob", "gone", 60).await;
    cancel(&alice, &gone).await;

    let (mut bob, login) = server.raw_login("bob", "bob-phone", Some(1_000_000)).await;
    assert_eq!(
        (login["resumed"].as_bool(), login["resync"].as_bool()),
        (Some(false), Some(true)),
        "{login}"
    );
    let head = login_seq(&login);
    assert!(head < 1_000_000);
    let replayed = raw_events(&mut bob, 2).await;
    let mut ids = Vec::new();
    for frame in &replayed {
        assert_eq!(frame["name"], event::NEW_INVITATION_RECEIVED, "{frame}");
        assert_eq!(frame["data"]["replay"], true, "{frame}");
        assert!(
            frame.get("seq").is_none_or(Value::is_null),
            "replays carry no seq: {frame}"
        );
        ids.push(
            frame["data"]["inviteID"]
                .as_str()
                .expect("inviteID")
                .to_owned(),
        );
    }
    ids.sort();
    let mut want = vec![open.clone(), timed.clone()];
    want.sort();
    assert_eq!(ids, want, "only the pending invitations are replayed");
    let remaining = replayed
        .iter()
        .find(|f| f["data"]["inviteID"] == timed.as_str())
        .map(|f| {
            f["data"]["timeoutRemaining"]
                .as_u64()
                .expect("timeoutRemaining")
        })
        .expect("timed invitation");
    assert!(
        (1..=60).contains(&remaining),
        "timeoutRemaining {remaining}"
    );

    // Nothing else came: the next event is the next live one after the head.
    let next = invite(&alice, "bob", "live", 60).await;
    let got = raw_events(&mut bob, 2).await;
    assert_consecutive(&got, head + 1);
    assert_groups(
        &got.iter().map(raw_key).collect::<Vec<_>>(),
        &[invited(&next)],
    );
}

#[tokio::test]
async fn restart_neither_loses_nor_repeats_a_deadline() {
    let mut server = TestServer::start().await;
    let (alice, mut alice_events) = server.client("alice").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let invite_id = invite(&alice, "bob", "ring", 3).await;
    let ring = expect_event(&mut bob_events, event::NEW_INVITATION_RECEIVED).await;
    let expires_at = ring.data["expiresAt"].as_u64().expect("expiresAt");

    server.restart().await;
    let mut bob_seen = sdk_until(&mut bob_events, |f| {
        is_for(f, event::INVITATION_TIMEOUT, &invite_id)
    })
    .await;
    assert!(now_ms() >= expires_at, "timed out before the deadline");
    let mine = bob_seen.last().expect("matched").data.clone();
    assert_eq!(mine["isSelfTimeout"], true);
    assert_eq!(mine["inviteeList"], json!(["bob"]));
    assert_eq!(mine["data"], "ring");
    let mut alice_seen = sdk_until(&mut alice_events, |f| {
        is_for(f, event::INVITATION_TIMEOUT, &invite_id)
    })
    .await;
    let theirs = alice_seen.last().expect("matched").data.clone();
    assert_eq!(theirs["isSelfTimeout"], false);
    assert_eq!(theirs["inviteeList"], json!(["bob"]));

    // A second restart after the deadline must not fire it again.
    server.restart().await;
    bob_seen.extend(through_reconnect(&mut bob_events).await);
    alice_seen.extend(through_reconnect(&mut alice_events).await);
    let next = invite(&alice, "bob", "next", 30).await;
    bob_seen.extend(
        sdk_until(&mut bob_events, |f| {
            is_for(f, event::NEW_INVITATION_RECEIVED, &next)
        })
        .await,
    );
    bob.reject(action(&next, "no")).await.expect("reject");
    alice_seen.extend(
        sdk_until(&mut alice_events, |f| {
            is_for(f, event::INVITEE_REJECTED, &next)
        })
        .await,
    );
    assert_eq!(
        count_for(&bob_seen, event::INVITATION_TIMEOUT, &invite_id),
        1,
        "{bob_seen:#?}"
    );
    assert_eq!(
        count_for(&alice_seen, event::INVITATION_TIMEOUT, &invite_id),
        1,
        "{alice_seen:#?}"
    );
    assert_eq!(
        count_for(&bob_seen, event::NEW_INVITATION_RECEIVED, &invite_id),
        0,
        "no replay of a finished invitation"
    );
    assert_eq!(
        stored_actions(&alice, &invite_id, 5).await,
        1,
        "one timeout message"
    );
    assert_eq!(
        stored_actions(&alice, &invite_id, 1).await,
        1,
        "one invite message"
    );
}

#[tokio::test]
async fn deadline_passed_while_down_fires_at_start() {
    let mut server = TestServer::start().await;
    let (mut bob, _) = server.raw_login("bob", "bob-phone", None).await;
    let (alice, mut alice_events) = server.client("alice").await;
    let invite_id = invite(&alice, "bob", "late", 1).await;
    let got = raw_events(&mut bob, 2).await;
    let last_seen = got.iter().map(raw_seq).max().expect("two events");
    let ring = got
        .iter()
        .find(|f| f["name"] == event::NEW_INVITATION_RECEIVED)
        .expect("the invitation");
    let expires_at = ring["data"]["expiresAt"].as_u64().expect("expiresAt");
    bob.drop_abruptly();

    server.stop().await;
    wait_until_ms(expires_at).await;
    server.start_again().await;

    // Logged in fresh at once: the invitation already timed out, so it is not replayed.
    let (mut fresh, login) = server.raw_login("bob", "bob-laptop", None).await;
    assert_eq!(login["resumed"], false);
    // Resuming, the phone learns of the timeout.
    let (mut phone, login) = server.raw_login("bob", "bob-phone", Some(last_seen)).await;
    assert_eq!(login["resumed"], true, "{login}");
    let got = raw_events(&mut phone, 2).await;
    assert_consecutive(&got, last_seen + 1);
    assert_groups(
        &got.iter().map(raw_key).collect::<Vec<_>>(),
        &[group(
            &[event::MESSAGE_RECEIVED, event::INVITATION_TIMEOUT],
            &invite_id,
        )],
    );
    let timeout = got
        .iter()
        .find(|f| f["name"] == event::INVITATION_TIMEOUT)
        .expect("timeout event");
    assert_eq!(timeout["data"]["isSelfTimeout"], true);
    assert_eq!(timeout["data"]["inviteeList"], json!(["bob"]));
    assert_eq!(timeout["data"]["data"], "late");

    let mut alice_seen = through_reconnect(&mut alice_events).await;
    let next = invite(&alice, "bob", "next", 30).await;
    let before = raw_until(&mut fresh, |f| {
        f["name"] == event::NEW_INVITATION_RECEIVED && f["data"]["inviteID"] == next.as_str()
    })
    .await;
    assert!(
        !before
            .iter()
            .any(|f| f["name"] == event::NEW_INVITATION_RECEIVED
                && f["data"]["inviteID"] == invite_id.as_str()),
        "a timed-out invitation was replayed: {before:#?}"
    );
    let got = raw_events(&mut phone, 2).await;
    assert_consecutive(&got, last_seen + 3);

    let answer = phone
        .request("accept", json!({"inviteID": invite_id}))
        .await;
    assert_eq!(answer["code"], 8010, "{answer}");
    let rejected = phone.request("reject", json!({"inviteID": next})).await;
    assert_eq!(rejected["code"], 0, "{rejected}");
    alice_seen.extend(
        sdk_until(&mut alice_events, |f| {
            is_for(f, event::INVITEE_REJECTED, &next)
        })
        .await,
    );
    assert_eq!(
        count_for(&alice_seen, event::INVITATION_TIMEOUT, &invite_id),
        1,
        "{alice_seen:#?}"
    );
    assert_eq!(
        stored_actions(&alice, &invite_id, 5).await,
        1,
        "one timeout message"
    );
}

#[tokio::test]
async fn pending_invitation_without_timeout_survives_a_restart() {
    let mut server = TestServer::start().await;
    server.create_users(&["bob"]).await;
    let (alice, mut alice_events) = server.client("alice").await;
    let invite_id = invite(&alice, "bob", "whenever", 0).await;

    server.restart().await;
    let (bob, mut bob_events) = server.client("bob").await;
    let ring = expect_event(&mut bob_events, event::NEW_INVITATION_RECEIVED).await;
    assert_eq!(ring.data["inviteID"], invite_id.as_str());
    assert_eq!(ring.data["replay"], true);
    assert_eq!(ring.data["data"], "whenever");
    assert_eq!(ring.data["timeout"], 0);
    bob.accept(action(&invite_id, "here"))
        .await
        .expect("accept after restart");
    let accepted = expect_event(&mut alice_events, event::INVITEE_ACCEPTED).await;
    assert_eq!(accepted.data["inviteID"], invite_id.as_str());
    assert_eq!(accepted.data["data"], "here");
}

#[tokio::test]
async fn graceful_shutdown_closes_with_4002() {
    let mut server = TestServer::start().await;
    let (_alice, mut alice_events) = server.client("alice").await;
    let (mut raw, _) = server.raw_login("bob", "bob-phone", None).await;
    server.stop().await;
    assert_eq!(raw.closed().await, Some(4002));
    let deadline = tokio::time::Instant::now() + WAIT;
    let code = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match alice_events.next_within(left).await {
            Some(Notice::Reconnecting { close_code }) => break close_code,
            Some(Notice::Stopped { close_code, reason }) => {
                panic!("client stopped ({close_code:?}): {reason}")
            }
            Some(_) => {}
            None => panic!("no Reconnecting notice after shutdown"),
        }
    };
    assert_eq!(code, Some(4002));
    // The client comes back by itself once the server does.
    server.start_again().await;
    expect_connected(&mut alice_events).await;
}
