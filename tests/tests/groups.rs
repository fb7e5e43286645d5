//! Groups and group invitations through the real server, the Rust SDK and the admin HTTP API:
//! group rules and limits, who hears each group event, history and unread in the group
//! conversation, members leaving mid-call, login replay, reconnect and restart.

use beckon_client::{
    event, ActionParams, ActionResult, Client, ClientError, CreateGroupParams, EventFrame,
    EventStream, GetMessageListParams, GroupMemberListParams, GroupMembersParams, GroupProfile,
    InviteInGroupParams, MemberRef, Message, ModifyParams, Notice,
};
use beckon_tests::{
    expect_event, http_post, now_ms, unix_now, wait_until_ms, RawSocket, TestServer, QUIET,
    SDK_APP_ID, WAIT,
};
use serde_json::{json, Value};
use std::time::Duration;

const NEW: &str = event::NEW_INVITATION_RECEIVED;
const ACCEPTED: &str = event::INVITEE_ACCEPTED;
const REJECTED: &str = event::INVITEE_REJECTED;
const CANCELLED: &str = event::INVITATION_CANCELLED;
const TIMEOUT: &str = event::INVITATION_TIMEOUT;
const EXCLUDE: &str = r#"{"excludeFromHistoryMessage":true}"#;

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

fn create_params(group_id: Option<&str>, name: &str, members: &[&str]) -> CreateGroupParams {
    CreateGroupParams {
        group_id: group_id.map(str::to_owned),
        name: name.into(),
        kind: None,
        member_list: members
            .iter()
            .map(|u| MemberRef {
                user_id: (*u).into(),
            })
            .collect(),
    }
}

/// Creates group `group_id` owned by `owner` with `members`.
async fn make_group(owner: &Client, group_id: &str, members: &[&str]) {
    owner
        .create_group(create_params(Some(group_id), "team", members))
        .await
        .expect("createGroup");
}

fn change(group_id: &str, users: &[&str]) -> GroupMembersParams {
    GroupMembersParams {
        group_id: group_id.into(),
        user_id_list: users.iter().map(|u| (*u).into()).collect(),
    }
}

fn page(group_id: &str, count: Option<u64>, offset: Option<u64>) -> GroupMemberListParams {
    GroupMemberListParams {
        group_id: group_id.into(),
        count,
        offset,
    }
}

fn group_invite(
    group_id: &str,
    invitees: &[&str],
    data: &str,
    timeout: u64,
) -> InviteInGroupParams {
    InviteInGroupParams {
        group_id: group_id.into(),
        invitee_list: invitees.iter().map(|u| (*u).into()).collect(),
        data: Some(data.into()),
        timeout: Some(timeout),
        ..Default::default()
    }
}

async fn invite(
    inviter: &Client,
    group_id: &str,
    invitees: &[&str],
    data: &str,
    timeout: u64,
) -> String {
    inviter
        .invite_in_group(group_invite(group_id, invitees, data, timeout))
        .await
        .expect("inviteInGroup")
        .invite_id
}

fn action(invite_id: &str, data: &str) -> ActionParams {
    ActionParams {
        invite_id: invite_id.into(),
        data: Some(data.into()),
    }
}

/// The code and message of a refusal.
fn refusal<T: std::fmt::Debug>(outcome: Result<T, ClientError>, what: &str) -> (u32, String) {
    match outcome {
        Ok(value) => panic!("{what}: expected a refusal, got {value:?}"),
        Err(ClientError::Refused { code, message }) => (code, message),
        Err(other) => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

fn code<T: std::fmt::Debug>(outcome: Result<T, ClientError>, what: &str) -> u32 {
    refusal(outcome, what).0
}

fn is_signaling(frame: &EventFrame) -> bool {
    event::SIGNALING.contains(&frame.name.as_str())
}

/// (name, data) of a signaling event; the clock-dependent extras of an invitation are
/// dropped so whole events compare with `==`.
fn view(frame: &EventFrame) -> (String, Value) {
    let mut data = frame.data.clone();
    if let Some(map) = data.as_object_mut() {
        map.remove("timeoutRemaining");
        map.remove("expiresAt");
    }
    (frame.name.clone(), data)
}

async fn drain_signaling(events: &mut EventStream) -> Vec<(String, Value)> {
    events
        .drain_events(QUIET)
        .await
        .iter()
        .filter(|f| is_signaling(f))
        .map(view)
        .collect()
}

async fn assert_no_signaling(events: &mut EventStream, who: &str) {
    let got = drain_signaling(events).await;
    assert!(
        got.is_empty(),
        "{who} must get no signaling event, got {got:#?}"
    );
}

/// Waits (bounded) for `expected` signaling events, then keeps any extras that arrive before
/// the stream goes quiet, so a caller comparing the whole list also proves nothing else came.
async fn signaling(events: &mut EventStream, expected: usize) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < expected {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = events
            .next_any_event(left)
            .await
            .unwrap_or_else(|| panic!("only {got:#?} of {expected} events within {WAIT:?}"));
        if is_signaling(&frame) {
            got.push(view(&frame));
        }
    }
    got.extend(drain_signaling(events).await);
    got
}

/// Order-free comparison, for events of one job that reach a user in no promised order.
fn sorted(mut list: Vec<(String, Value)>) -> Vec<(String, Value)> {
    list.sort_by_key(|(name, data)| format!("{name}{data}"));
    list
}

fn ev(name: &str, data: Value) -> (String, Value) {
    (name.to_owned(), data)
}

fn ring(
    id: &str,
    group: &str,
    inviter: &str,
    invitees: &[&str],
    data: &str,
    timeout: u64,
) -> (String, Value) {
    ev(
        NEW,
        json!({"inviteID": id, "inviter": inviter, "groupID": group, "inviteeList": invitees,
               "data": data, "timeout": timeout, "onlineUserOnly": false}),
    )
}

fn answer(
    name: &str,
    id: &str,
    group: &str,
    inviter: &str,
    actor: &str,
    data: &str,
) -> (String, Value) {
    ev(
        name,
        json!({"inviteID": id, "inviter": inviter, "groupID": group, "invitee": actor, "data": data}),
    )
}

/// INVITEE_REJECTED telling the others that `invitee` left the group while ringing.
fn left(id: &str, group: &str, inviter: &str, leaver: &str, reason: &str) -> (String, Value) {
    ev(
        REJECTED,
        json!({"inviteID": id, "inviter": inviter, "groupID": group, "invitee": leaver,
               "data": "", "reason": reason}),
    )
}

fn cancelled(id: &str, group: &str, inviter: &str, data: &str) -> (String, Value) {
    ev(
        CANCELLED,
        json!({"inviteID": id, "inviter": inviter, "groupID": group, "data": data}),
    )
}

/// INVITATION_CANCELLED sent by the server because of a group change.
fn withdrawn(id: &str, group: &str, inviter: &str, reason: &str) -> (String, Value) {
    ev(
        CANCELLED,
        json!({"inviteID": id, "inviter": inviter, "groupID": group, "data": "", "reason": reason}),
    )
}

fn timed_out(
    id: &str,
    group: &str,
    inviter: &str,
    list: &[&str],
    data: &str,
    own: bool,
) -> (String, Value) {
    ev(
        TIMEOUT,
        json!({"inviteID": id, "inviter": inviter, "groupID": group, "inviteeList": list,
               "data": data, "isSelfTimeout": own}),
    )
}

fn js(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// The exact `payload.data` of a group signaling history message.
fn payload(
    timeout: u64,
    data: &str,
    id: &str,
    group: &str,
    action: u8,
    inviter: &str,
    invitees: &[&str],
) -> String {
    format!(
        r#"{{"businessID":1,"timeout":{timeout},"data":{},"inviteID":{},"groupID":{},"actionType":{action},"inviter":{},"inviteeList":{}}}"#,
        js(data),
        js(id),
        js(group),
        js(inviter),
        serde_json::to_string(invitees).expect("a list serializes"),
    )
}

/// Every message of a conversation, oldest first.
async fn history(client: &Client, conversation_id: &str) -> Vec<Message> {
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
}

fn payloads(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.payload.data.clone()).collect()
}

/// (unreadCount, lastMessage ID) of one conversation, if the user has it.
async fn conversation(client: &Client, conversation_id: &str) -> Option<(u64, Option<String>)> {
    client
        .get_conversation_list()
        .await
        .expect("getConversationList")
        .conversation_list
        .into_iter()
        .find(|c| c.conversation_id == conversation_id)
        .map(|c| {
            assert_eq!(c.kind, "GROUP", "{conversation_id} is a group conversation");
            (c.unread_count, c.last_message.map(|m| m.id))
        })
}

async fn group_ids(client: &Client) -> Vec<String> {
    let mut ids: Vec<String> = client
        .get_group_list()
        .await
        .expect("getGroupList")
        .group_list
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    ids.sort();
    ids
}

async fn members(client: &Client, group_id: &str) -> Vec<(String, String)> {
    client
        .get_group_member_list(page(group_id, None, None))
        .await
        .expect("getGroupMemberList")
        .member_list
        .into_iter()
        .map(|m| (m.user_id, m.role))
        .collect()
}

fn roles(owner: &str, others: &[&str]) -> Vec<(String, String)> {
    std::iter::once((owner.to_owned(), "Owner".to_owned()))
        .chain(
            others
                .iter()
                .map(|u| ((*u).to_owned(), "Member".to_owned())),
        )
        .collect()
}

/// POSTs to the Tencent-style group admin API; returns (HTTP status, body).
async fn group_admin_as(
    server: &TestServer,
    command: &str,
    identifier: &str,
    sig: &str,
    body: &Value,
) -> (u16, Value) {
    let path = format!(
        "/v4/group_open_http_svc/{command}?sdkappid={SDK_APP_ID}&identifier={identifier}&usersig={sig}&random=7&contenttype=json"
    );
    http_post(server.addr(), &path, &body.to_string()).await
}

async fn group_admin(server: &TestServer, command: &str, body: &Value) -> (u16, Value) {
    let sig = server.user_sig("administrator");
    group_admin_as(server, command, "administrator", &sig, body).await
}

/// Raw events until the socket is quiet for a second.
async fn drain_raw(raw: &mut RawSocket) -> Vec<Value> {
    raw.drain_events(Duration::from_secs(1)).await
}

/// Events until the client has reconnected (Reconnecting, then Connected).
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
            None => panic!("no reconnect within {WAIT:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Group operations and their rules.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn creator_owns_a_group_with_a_given_or_generated_id() {
    let server = TestServer::start().await;
    let (alice, _a) = server.client("alice").await;
    let (bob, _b) = server.client("bob").await;
    let (carol, _c) = server.client("carol").await;
    let (dave, _d) = server.client("dave").await;

    let before = unix_now();
    // Duplicates and the creator in memberList are merged.
    let made = alice
        .create_group(create_params(
            Some("team-1"),
            "Team",
            &["carol", "bob", "bob", "alice"],
        ))
        .await
        .expect("createGroup")
        .group;
    let after = unix_now();
    assert_eq!(made.group_id, "team-1");
    assert_eq!(made.name, "Team");
    assert_eq!(made.kind, "Private", "Tencent's default type");
    assert_eq!(made.owner_id, "alice");
    assert_eq!(made.member_count, 3);
    assert_eq!(made.max_member_count, 1000);
    assert!(
        (before..=after).contains(&made.create_time),
        "createTime {}",
        made.create_time
    );
    // A member sees the same profile.
    assert_eq!(
        bob.get_group_profile("team-1")
            .await
            .expect("profile")
            .group,
        made
    );
    // Owner first, then the initial members.
    assert_eq!(
        members(&carol, "team-1").await,
        roles("alice", &["bob", "carol"])
    );

    let generated = bob
        .create_group(create_params(None, "Other", &["carol"]))
        .await
        .expect("createGroup without groupID")
        .group;
    assert!(
        generated.group_id.starts_with("@BKN#"),
        "{}",
        generated.group_id
    );
    assert_eq!(generated.owner_id, "bob");
    let again = bob
        .create_group(create_params(None, "Third", &[]))
        .await
        .expect("createGroup without groupID")
        .group;
    assert!(again.group_id.starts_with("@BKN#"));
    assert_ne!(
        again.group_id, generated.group_id,
        "generated IDs are unique"
    );
    assert_eq!(again.member_count, 1, "the owner alone");

    // Each user lists only their own groups.
    let mut bobs = vec![
        "team-1".to_owned(),
        generated.group_id.clone(),
        again.group_id.clone(),
    ];
    bobs.sort();
    assert_eq!(group_ids(&alice).await, ["team-1"]);
    assert_eq!(group_ids(&bob).await, bobs);
    let mut carols = vec!["team-1".to_owned(), generated.group_id.clone()];
    carols.sort();
    assert_eq!(group_ids(&carol).await, carols);
    assert!(group_ids(&dave).await.is_empty());
    let listed = alice
        .get_group_list()
        .await
        .expect("getGroupList")
        .group_list;
    assert_eq!(listed, [made], "getGroupList carries the profile");
}

#[tokio::test]
async fn group_creation_is_validated() {
    let server = TestServer::start().await;
    let (alice, _a) = server.client("alice").await;
    let (bob, _b) = server.client("bob").await;
    make_group(&alice, "taken", &["bob"]).await;

    let (c, message) = refusal(
        bob.create_group(create_params(Some("taken"), "n", &[]))
            .await,
        "live groupID reused",
    );
    assert_eq!(c, 9021, "{message}");
    alice.dismiss_group("taken").await.expect("dismiss");
    assert_eq!(
        code(
            alice
                .create_group(create_params(Some("taken"), "n", &[]))
                .await,
            "dismissed groupID reused"
        ),
        9021
    );

    assert_eq!(
        code(
            alice.create_group(create_params(Some("g1"), "", &[])).await,
            "empty name"
        ),
        9003
    );
    // 100 bytes (50 two-byte characters) is the limit; 101 bytes is over it.
    let longest = "é".repeat(50);
    assert_eq!(
        code(
            alice
                .create_group(create_params(Some("g2"), &format!("{longest}x"), &[]))
                .await,
            "101-byte name"
        ),
        9003
    );
    let fits = alice
        .create_group(create_params(Some("g3"), &longest, &[]))
        .await
        .expect("100-byte name")
        .group;
    assert_eq!(fits.name, longest);
    let (c, message) = refusal(
        alice
            .create_group(create_params(Some("g4"), "n", &["bob", "ghost", "phantom"]))
            .await,
        "unknown accounts",
    );
    assert_eq!(c, 9004);
    assert!(
        message.contains("ghost") && message.contains("phantom") && !message.contains("bob"),
        "{message}"
    );
    let bad_type = CreateGroupParams {
        kind: Some("Nope".into()),
        ..create_params(Some("g5"), "n", &[])
    };
    assert_eq!(
        code(alice.create_group(bad_type).await, "unknown type"),
        9003
    );
    let long_id = "x".repeat(129);
    assert_eq!(
        code(
            alice
                .create_group(create_params(Some(&long_id), "n", &[]))
                .await,
            "129-byte groupID"
        ),
        9003
    );

    // None of the refused requests made a group.
    assert_eq!(group_ids(&alice).await, ["g3"]);
    assert!(group_ids(&bob).await.is_empty());
}

#[tokio::test]
async fn only_the_owner_changes_membership_and_the_owner_cannot_quit() {
    let server = TestServer::start().await;
    let (alice, _a) = server.client("alice").await;
    let (bob, _b) = server.client("bob").await;
    let (carol, _c) = server.client("carol").await;
    let (dave, _d) = server.client("dave").await;
    make_group(&alice, "g", &["bob"]).await;

    // A member is not the owner.
    assert_eq!(
        code(
            bob.add_group_member(change("g", &["carol"])).await,
            "member adds"
        ),
        9018
    );
    assert_eq!(
        code(
            bob.delete_group_member(change("g", &["alice"])).await,
            "member removes"
        ),
        9018
    );
    assert_eq!(code(bob.dismiss_group("g").await, "member dismisses"), 9018);
    // Neither is an outsider.
    assert_eq!(
        code(
            carol.add_group_member(change("g", &["carol"])).await,
            "outsider adds self"
        ),
        9018
    );
    assert_eq!(
        code(carol.dismiss_group("g").await, "outsider dismisses"),
        9018
    );
    assert_eq!(code(carol.quit_group("g").await, "outsider quits"), 9012);
    assert_eq!(
        code(carol.get_group_profile("g").await, "outsider profile"),
        9012
    );
    assert_eq!(
        code(
            carol.get_group_member_list(page("g", None, None)).await,
            "outsider members"
        ),
        9012
    );
    // The owner cannot quit, nor remove themself.
    assert_eq!(code(alice.quit_group("g").await, "owner quits"), 9020);
    assert_eq!(
        code(
            alice.delete_group_member(change("g", &["alice"])).await,
            "owner removes self"
        ),
        9003
    );
    assert_eq!(
        code(
            alice.add_group_member(change("g", &["ghost"])).await,
            "unknown account"
        ),
        9004
    );
    assert_eq!(
        code(
            alice.add_group_member(change("g", &[])).await,
            "empty userIDList"
        ),
        9003
    );
    // Nothing changed.
    assert_eq!(members(&bob, "g").await, roles("alice", &["bob"]));

    // Unknown group, for every operation.
    let none = "no-such-group";
    assert_eq!(code(alice.get_group_profile(none).await, "profile"), 9011);
    assert_eq!(
        code(
            alice.get_group_member_list(page(none, None, None)).await,
            "members"
        ),
        9011
    );
    assert_eq!(
        code(alice.add_group_member(change(none, &["bob"])).await, "add"),
        9011
    );
    assert_eq!(
        code(
            alice.delete_group_member(change(none, &["bob"])).await,
            "delete"
        ),
        9011
    );
    assert_eq!(code(alice.quit_group(none).await, "quit"), 9011);
    assert_eq!(code(alice.dismiss_group(none).await, "dismiss"), 9011);
    assert_eq!(
        code(
            alice
                .invite_in_group(group_invite(none, &["bob"], "", 30))
                .await,
            "invite"
        ),
        9011
    );

    // The owner adds: new ones and existing ones are told apart.
    let added = alice
        .add_group_member(change("g", &["dave", "bob", "carol"]))
        .await
        .expect("addGroupMember");
    assert_eq!(added.success_user_id_list, ["carol", "dave"]);
    assert_eq!(added.existed_user_id_list, ["bob"]);
    assert!(added.failure_user_id_list.is_empty());
    assert_eq!(added.group.member_count, 4);
    assert_eq!(
        members(&dave, "g").await,
        roles("alice", &["bob", "carol", "dave"])
    );
    // The owner removes.
    let removed = alice
        .delete_group_member(change("g", &["carol"]))
        .await
        .expect("deleteGroupMember");
    assert_eq!(removed.user_id_list, ["carol"]);
    assert_eq!(removed.group.member_count, 3);
    assert_eq!(
        code(carol.get_group_profile("g").await, "removed member"),
        9012
    );
    // A member quits.
    dave.quit_group("g").await.expect("quitGroup");
    assert_eq!(code(dave.quit_group("g").await, "quit twice"), 9012);
    let profile = alice.get_group_profile("g").await.expect("profile").group;
    assert_eq!(
        (profile.owner_id.as_str(), profile.member_count),
        ("alice", 2)
    );
    assert_eq!(members(&alice, "g").await, roles("alice", &["bob"]));
    // The owner dismisses; the group is gone for everyone.
    alice.dismiss_group("g").await.expect("dismissGroup");
    assert_eq!(
        code(bob.get_group_profile("g").await, "dismissed group"),
        9011
    );
    assert_eq!(code(alice.dismiss_group("g").await, "dismiss twice"), 9011);
}

#[tokio::test]
async fn group_list_drops_groups_after_quit_removal_and_dismiss() {
    let server = TestServer::start().await;
    let (alice, _a) = server.client("alice").await;
    let (bob, _b) = server.client("bob").await;
    make_group(&alice, "g-quit", &["bob"]).await;
    make_group(&alice, "g-remove", &["bob"]).await;
    make_group(&alice, "g-dismiss", &["bob"]).await;
    make_group(&bob, "g-own", &[]).await;
    let everything = ["g-dismiss", "g-own", "g-quit", "g-remove"];
    assert_eq!(group_ids(&bob).await, everything);

    bob.quit_group("g-quit").await.expect("quit");
    assert_eq!(group_ids(&bob).await, ["g-dismiss", "g-own", "g-remove"]);
    alice
        .delete_group_member(change("g-remove", &["bob"]))
        .await
        .expect("remove");
    assert_eq!(group_ids(&bob).await, ["g-dismiss", "g-own"]);
    alice.dismiss_group("g-dismiss").await.expect("dismiss");
    assert_eq!(group_ids(&bob).await, ["g-own"]);
    // The owner keeps the groups still alive.
    assert_eq!(group_ids(&alice).await, ["g-quit", "g-remove"]);
    // Re-adding puts the group back in the list.
    alice
        .add_group_member(change("g-quit", &["bob"]))
        .await
        .expect("re-add");
    assert_eq!(group_ids(&bob).await, ["g-own", "g-quit"]);
}

#[tokio::test]
async fn member_list_pages_by_count_and_offset() {
    let server = TestServer::start().await;
    server.create_users(&["m1", "m2", "m3", "m4", "m5"]).await;
    let (alice, _a) = server.client("alice").await;
    make_group(&alice, "g", &["m3", "m1", "m2"]).await;
    alice
        .add_group_member(change("g", &["m5", "m4"]))
        .await
        .expect("add");
    let all = members(&alice, "g").await;
    assert_eq!(all, roles("alice", &["m1", "m2", "m3", "m4", "m5"]));

    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let got = alice
            .get_group_member_list(page("g", Some(2), Some(offset)))
            .await
            .expect("page")
            .member_list;
        assert_eq!(got.len(), 2, "page at offset {offset}");
        paged.extend(got.into_iter().map(|m| (m.user_id, m.role)));
    }
    assert_eq!(paged, all, "pages in order cover every member once");
    let past = alice
        .get_group_member_list(page("g", Some(2), Some(6)))
        .await
        .expect("past the end");
    assert!(past.member_list.is_empty());
    let last = alice
        .get_group_member_list(page("g", Some(100), Some(5)))
        .await
        .expect("last");
    assert_eq!(last.member_list.len(), 1);
    assert_eq!(last.member_list[0].user_id, "m5");
    assert_eq!(
        code(
            alice.get_group_member_list(page("g", Some(0), None)).await,
            "count 0"
        ),
        9003
    );
    assert_eq!(
        code(
            alice
                .get_group_member_list(page("g", Some(101), None))
                .await,
            "count 101"
        ),
        9003
    );
}

#[tokio::test]
async fn group_sizes_are_limited_and_refused_clearly() {
    let server = TestServer::start().await;
    let admin_sig = server.user_sig("administrator");
    let users: Vec<String> = (0..1001).map(|i| format!("m{i:04}")).collect();
    for chunk in users.chunks(100) {
        let (status, body) = server
            .admin_post(
                "multiaccount_import",
                "administrator",
                &admin_sig,
                &json!({"Accounts": chunk}),
            )
            .await;
        assert_eq!(
            (status, &body["ActionStatus"]),
            (200, &json!("OK")),
            "{body}"
        );
        assert_eq!(body["FailAccounts"], json!([]));
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let (boss, _b) = server.client("boss").await;

    // 1000 members at most, the owner included.
    let (c, message) = refusal(
        boss.create_group(create_params(Some("too-big"), "n", &refs[..1000]))
            .await,
        "1001 members",
    );
    assert_eq!(c, 9019);
    assert!(message.contains("1000"), "names the limit: {message}");
    let full = boss
        .create_group(create_params(Some("full"), "n", &refs[..999]))
        .await
        .expect("1000 members")
        .group;
    assert_eq!(full.member_count, 1000);
    let (c, message) = refusal(
        boss.add_group_member(change("full", &[refs[1000]])).await,
        "1001st member",
    );
    assert_eq!(c, 9019);
    assert!(message.contains("1000"), "names the limit: {message}");
    // At most 500 users per change.
    assert_eq!(
        code(
            boss.delete_group_member(change("full", &refs[..501])).await,
            "501 removals"
        ),
        9003
    );

    // Paging covers all 1000 members once.
    let mut seen = Vec::new();
    for offset in (0..1000).step_by(100) {
        let got = boss
            .get_group_member_list(page("full", Some(100), Some(offset)))
            .await
            .expect("page")
            .member_list;
        assert_eq!(got.len(), 100);
        seen.extend(got.into_iter().map(|m| m.user_id));
    }
    let mut expected: Vec<String> = std::iter::once("boss".to_owned())
        .chain(users[..999].iter().cloned())
        .collect();
    assert_eq!(seen, expected);
    expected.sort();
    expected.dedup();
    assert_eq!(expected.len(), 1000);

    // At most 200 invitees per invitation.
    assert_eq!(
        code(
            boss.invite_in_group(group_invite("full", &refs[..201], "", 30))
                .await,
            "201 invitees"
        ),
        9003
    );
    let sent = boss
        .invite_in_group(group_invite("full", &refs[..200], "", 30))
        .await
        .expect("200 invitees");
    assert!(sent.message.is_some());
}

#[tokio::test]
async fn a_user_in_the_most_groups_can_join_no_more() {
    let server = TestServer::start().await;
    let (hub, _h) = server.client("hub").await;
    let (other, _o) = server.client("other").await;
    for i in 0..1000 {
        hub.create_group(create_params(Some(&format!("h{i}")), "n", &[]))
            .await
            .expect("within the per-user limit");
    }
    assert_eq!(
        hub.get_group_list().await.expect("list").group_list.len(),
        1000
    );
    let (c, message) = refusal(
        hub.create_group(create_params(Some("h1000"), "n", &[]))
            .await,
        "1001st group",
    );
    assert_eq!(c, 9019);
    assert!(message.contains("1000"), "names the limit: {message}");
    make_group(&other, "o", &[]).await;
    assert_eq!(
        code(
            other.add_group_member(change("o", &["hub"])).await,
            "added to a 1001st group"
        ),
        9019
    );
    assert_eq!(
        code(
            other
                .create_group(create_params(Some("o2"), "n", &["hub"]))
                .await,
            "created with hub"
        ),
        9019
    );
    // Leaving one makes room again.
    hub.dismiss_group("h0").await.expect("dismiss");
    other
        .add_group_member(change("o", &["hub"]))
        .await
        .expect("room again");
}

// ---------------------------------------------------------------------------------------
// 2. inviteInGroup: its rules and who hears what.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn invite_in_group_needs_members_only_and_a_clean_list() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_bob, mut bob_rx) = server.client("bob").await;
    let (carol, _c) = server.client("carol").await;
    let (_dave, _d) = server.client("dave").await;
    make_group(&alice, "g", &["bob"]).await;

    let (c, message) = refusal(
        carol
            .invite_in_group(group_invite("g", &["bob"], "", 30))
            .await,
        "inviter not a member",
    );
    assert_eq!(c, 9012, "{message}");
    let (c, message) = refusal(
        alice
            .invite_in_group(group_invite(
                "g",
                &["bob", "carol", "dave", "ghost"],
                "",
                30,
            ))
            .await,
        "invitees not members",
    );
    assert_eq!(c, 9012);
    for outsider in ["carol", "dave", "ghost"] {
        assert!(
            message.contains(outsider),
            "the error names {outsider}: {message}"
        );
    }
    assert!(!message.contains("bob"), "bob is a member: {message}");
    assert_eq!(
        code(
            alice
                .invite_in_group(group_invite("g", &["bob", "bob"], "", 30))
                .await,
            "duplicate"
        ),
        9006
    );
    assert_eq!(
        code(
            alice
                .invite_in_group(group_invite("g", &["bob", "alice"], "", 30))
                .await,
            "inviter listed"
        ),
        9005
    );
    assert_eq!(
        code(
            alice.invite_in_group(group_invite("g", &[], "", 30)).await,
            "empty list"
        ),
        9003
    );
    assert_eq!(
        code(
            alice
                .invite_in_group(group_invite("g", &["bob"], "", 86_401))
                .await,
            "timeout"
        ),
        9003
    );

    // Nothing rang and nothing was stored.
    assert_no_signaling(&mut bob_rx, "bob after refusals").await;
    assert_no_signaling(&mut alice_rx, "alice after refusals").await;
    assert!(history(&alice, "GROUPg").await.is_empty());
}

#[tokio::test]
async fn group_accept_keeps_the_others_ringing_and_reaches_invitees_only() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (_bob2, mut bob2_rx) = server.client("bob").await;
    let (carol, mut carol_rx) = server.client("carol").await;
    let (_dave, mut dave_rx) = server.client("dave").await;
    make_group(&alice, "g", &["bob", "carol", "dave"]).await;

    let id = invite(&alice, "g", &["bob", "carol"], "call", 2).await;
    let first = expect_event(&mut carol_rx, NEW).await;
    let expires = first.data["expiresAt"].as_u64().expect("expiresAt");
    // Both answers well before the 2 s deadline; events are checked afterwards.
    bob.accept(action(&id, "in")).await.expect("accept");
    assert_eq!(
        code(bob.accept(action(&id, "")).await, "accept twice"),
        8010
    );
    // Carol still rings after bob's accept, and heard it.
    let heard = expect_event(&mut carol_rx, ACCEPTED).await;
    carol
        .reject(action(&id, "busy"))
        .await
        .expect("reject while still pending");
    assert_eq!(
        code(alice.cancel(action(&id, "")).await, "cancel ended"),
        8020
    );
    assert_eq!(
        code(carol.accept(action(&id, "")).await, "answer twice"),
        8010
    );

    let new = ring(&id, "g", "alice", &["bob", "carol"], "call", 2);
    let accepted = answer(ACCEPTED, &id, "g", "alice", "bob", "in");
    let rejected = answer(REJECTED, &id, "g", "alice", "carol", "busy");
    let mut other_device = accepted.clone();
    other_device.1["handledOnOtherDevice"] = json!(true);
    assert_eq!(view(&first), new);
    assert_eq!(view(&heard), accepted);
    assert_no_signaling(&mut carol_rx, "carol after her own answer").await;
    assert_eq!(
        signaling(&mut alice_rx, 2).await,
        [accepted, rejected.clone()],
        "the inviter: no ring, both answers"
    );
    assert_eq!(
        signaling(&mut bob_rx, 2).await,
        [new.clone(), rejected.clone()],
        "the accepting device: no echo of its own accept"
    );
    assert_eq!(
        signaling(&mut bob2_rx, 3).await,
        [new, other_device, rejected],
        "bob's other device stops ringing"
    );

    // Ended: its deadline passes without a timeout.
    wait_until_ms(expires).await;
    for (who, rx) in [
        ("alice", &mut alice_rx),
        ("bob", &mut bob_rx),
        ("carol", &mut carol_rx),
    ] {
        assert_no_signaling(rx, who).await;
    }
    // The non-invited member heard no signaling, only the three stored messages.
    let heard = dave_rx.drain_events(QUIET).await;
    let names: Vec<&str> = heard.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, [event::MESSAGE_RECEIVED; 3], "{heard:#?}");
    let history = history(&alice, "GROUPg").await;
    let actions: Vec<u64> = history
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(&m.payload.data).expect("JSON")["actionType"]
                .as_u64()
                .expect("actionType")
        })
        .collect();
    assert_eq!(actions, [1, 3, 4], "invite, accept, reject; no timeout");
}

#[tokio::test]
async fn group_cancel_lists_the_invitees_still_pending() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_alice2, mut alice2_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (_carol, mut carol_rx) = server.client("carol").await;
    let (_dave, mut dave_rx) = server.client("dave").await;
    make_group(&alice, "g", &["bob", "carol", "dave"]).await;

    let id = invite(&alice, "g", &["bob", "carol", "dave"], "call", 30).await;
    for rx in [&mut bob_rx, &mut carol_rx, &mut dave_rx] {
        expect_event(rx, NEW).await;
    }
    bob.accept(action(&id, "")).await.expect("accept");
    for rx in [&mut alice_rx, &mut alice2_rx, &mut carol_rx, &mut dave_rx] {
        expect_event(rx, ACCEPTED).await;
    }

    let result = alice.cancel(action(&id, "bye")).await.expect("cancel");
    let stored = result.message.expect("cancel message");
    assert_eq!(
        stored.payload.data,
        payload(0, "bye", &id, "g", 2, "alice", &["carol", "dave"])
    );
    let to_pending = cancelled(&id, "g", "alice", "bye");
    assert_eq!(signaling(&mut carol_rx, 1).await, vec![to_pending.clone()]);
    assert_eq!(signaling(&mut dave_rx, 1).await, vec![to_pending.clone()]);
    let mut other_device = to_pending;
    other_device.1["handledOnOtherDevice"] = json!(true);
    assert_eq!(signaling(&mut alice2_rx, 1).await, [other_device]);
    assert_no_signaling(&mut alice_rx, "the cancelling device").await;
    assert_no_signaling(&mut bob_rx, "the invitee who accepted").await;
}

#[tokio::test]
async fn group_timeout_ends_only_the_silent_invitees_in_one_message() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (carol, mut carol_rx) = server.client("carol").await;
    let (dave, mut dave_rx) = server.client("dave").await;
    let (_erin, mut erin_rx) = server.client("erin").await;
    let (frank, mut frank_rx) = server.client("frank").await;
    make_group(&alice, "g", &["bob", "carol", "dave", "erin", "frank"]).await;

    let id = invite(&alice, "g", &["bob", "carol", "dave", "erin"], "ring", 2).await;
    let new = ring(
        &id,
        "g",
        "alice",
        &["bob", "carol", "dave", "erin"],
        "ring",
        2,
    );
    let mut expires = 0;
    for rx in [&mut bob_rx, &mut carol_rx, &mut dave_rx, &mut erin_rx] {
        let got = expect_event(rx, NEW).await;
        assert_eq!(view(&got), new);
        expires = got.data["expiresAt"].as_u64().expect("expiresAt");
    }
    bob.accept(action(&id, "yes")).await.expect("accept");
    carol.reject(action(&id, "no")).await.expect("reject");

    let yes = answer(ACCEPTED, &id, "g", "alice", "bob", "yes");
    let no = answer(REJECTED, &id, "g", "alice", "carol", "no");
    let to_inviter = timed_out(&id, "g", "alice", &["dave", "erin"], "ring", false);
    // Everyone sees the answers; only the silent ones and the inviter see the timeout.
    assert_eq!(
        signaling(&mut alice_rx, 3).await,
        [yes.clone(), no.clone(), to_inviter]
    );
    assert!(now_ms() >= expires, "timed out before the server deadline");
    assert_eq!(signaling(&mut bob_rx, 1).await, vec![no.clone()]);
    assert_eq!(signaling(&mut carol_rx, 1).await, vec![yes.clone()]);
    assert_eq!(
        signaling(&mut dave_rx, 3).await,
        [
            yes.clone(),
            no.clone(),
            timed_out(&id, "g", "alice", &["dave"], "ring", true)
        ]
    );
    assert_eq!(
        signaling(&mut erin_rx, 3).await,
        [
            yes,
            no,
            timed_out(&id, "g", "alice", &["erin"], "ring", true)
        ]
    );
    assert_no_signaling(&mut frank_rx, "the member not invited").await;

    // One timeout message naming only the silent ones, seen by every member.
    let expected = [
        payload(
            2,
            "ring",
            &id,
            "g",
            1,
            "alice",
            &["bob", "carol", "dave", "erin"],
        ),
        payload(0, "yes", &id, "g", 3, "alice", &["bob"]),
        payload(0, "no", &id, "g", 4, "alice", &["carol"]),
        payload(0, "ring", &id, "g", 5, "alice", &["dave", "erin"]),
    ];
    for who in [&alice, &dave, &frank] {
        assert_eq!(
            payloads(&history(who, "GROUPg").await),
            expected,
            "{}",
            who.user_id()
        );
    }
    assert_eq!(
        code(dave.accept(action(&id, "")).await, "accept after timeout"),
        8010
    );
}

#[tokio::test]
async fn group_history_is_stored_once_per_action_for_every_member() {
    let server = TestServer::start().await;
    server.create_users(&["erin"]).await;
    let (alice, _a) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (carol, mut carol_rx) = server.client("carol").await;
    let (dave, mut dave_rx) = server.client("dave").await;
    let (frank, _f) = server.client("frank").await;
    let g = "hist-g";
    let conv = "GROUPhist-g";
    make_group(&alice, g, &["bob", "carol", "dave", "erin"]).await;

    let first = alice
        .invite_in_group(group_invite(g, &["bob", "carol"], "x", 30))
        .await
        .expect("invite");
    let id1 = first.invite_id.clone();
    expect_event(&mut bob_rx, NEW).await;
    expect_event(&mut carol_rx, NEW).await;
    let accept = bob.accept(action(&id1, "ok")).await.expect("accept");
    // Excluded: stored, but not unread and not the last message.
    let reject = carol.reject(action(&id1, EXCLUDE)).await.expect("reject");
    let second = alice
        .invite_in_group(group_invite(g, &["bob"], EXCLUDE, 0))
        .await
        .expect("excluded invite");
    let id2 = second.invite_id.clone();
    let cancel = alice.cancel(action(&id2, "")).await.expect("cancel");
    // Online-only: nothing stored.
    let live = InviteInGroupParams {
        online_user_only: Some(true),
        ..group_invite(g, &["bob", "carol"], "live", 30)
    };
    let live = alice
        .invite_in_group(live)
        .await
        .expect("online-only invite");
    assert!(live.message.is_none());
    let live_cancel = alice
        .cancel(action(&live.invite_id, ""))
        .await
        .expect("cancel online-only");
    assert!(live_cancel.message.is_none());

    let results: [&ActionResult; 5] = [&first, &accept, &reject, &second, &cancel];
    let expected = [
        payload(30, "x", &id1, g, 1, "alice", &["bob", "carol"]),
        payload(0, "ok", &id1, g, 3, "alice", &["bob"]),
        payload(0, EXCLUDE, &id1, g, 4, "alice", &["carol"]),
        payload(0, EXCLUDE, &id2, g, 1, "alice", &["bob"]),
        payload(0, "", &id2, g, 2, "alice", &["bob"]),
    ];
    let froms = ["alice", "bob", "carol", "alice", "alice"];
    let excluded = [false, false, true, true, false];
    let ids: Vec<String> = results
        .iter()
        .map(|r| {
            r.message
                .as_ref()
                .expect("result carries the stored message")
                .id
                .clone()
        })
        .collect();

    let (erin, mut erin_rx) = server.client("erin").await;
    for reader in [&alice, &bob, &carol, &dave, &erin] {
        let who = reader.user_id();
        let got = history(reader, conv).await;
        assert_eq!(
            payloads(&got),
            expected,
            "{who} sees each action once, byte for byte"
        );
        let got_ids: Vec<&str> = got.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(got_ids, ids, "{who}");
        for (i, m) in got.iter().enumerate() {
            assert_eq!(
                (
                    m.conversation_id.as_str(),
                    m.conversation_type.as_str(),
                    m.to.as_str()
                ),
                (conv, "GROUP", g),
                "{who}"
            );
            assert_eq!(m.from, froms[i], "{who}");
            assert_eq!(m.flow, if froms[i] == who { "out" } else { "in" }, "{who}");
            assert_eq!(
                m.is_excluded_from_unread_count, excluded[i],
                "{who} message {i}"
            );
            assert_eq!(
                m.is_excluded_from_last_message, excluded[i],
                "{who} message {i}"
            );
        }
    }
    // Unread: every non-excluded message not sent by the reader; invited or not.
    let last = Some(ids[4].clone());
    assert_eq!(conversation(&alice, conv).await, Some((1, last.clone())));
    assert_eq!(conversation(&bob, conv).await, Some((2, last.clone())));
    assert_eq!(conversation(&carol, conv).await, Some((3, last.clone())));
    assert_eq!(
        conversation(&dave, conv).await,
        Some((3, last.clone())),
        "online member not invited"
    );
    assert_eq!(
        conversation(&erin, conv).await,
        Some((3, last)),
        "member who logs in later"
    );
    dave.set_message_read(conv).await.expect("setMessageRead");
    assert_eq!(conversation(&dave, conv).await.map(|c| c.0), Some(0));

    // The non-invited members got the messages but no signaling.
    let heard = dave_rx.drain_events(QUIET).await;
    let names: Vec<&str> = heard.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, [event::MESSAGE_RECEIVED; 5], "{heard:#?}");
    assert_no_signaling(&mut erin_rx, "erin (never invited)").await;

    // Outsiders cannot read the group conversation.
    assert_eq!(
        code(
            frank
                .get_message_list(GetMessageListParams {
                    conversation_id: conv.into(),
                    ..Default::default()
                })
                .await,
            "outsider reads history"
        ),
        9012
    );
    assert_eq!(conversation(&frank, conv).await, None);
}

#[tokio::test]
async fn online_only_group_invitation_stores_nothing_and_is_not_replayed() {
    let server = TestServer::start().await;
    server.create_users(&["carol"]).await;
    let (alice, _a) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (_dave, mut dave_rx) = server.client("dave").await;
    make_group(&alice, "g", &["bob", "carol", "dave"]).await;

    let live = InviteInGroupParams {
        online_user_only: Some(true),
        ..group_invite("g", &["bob", "carol"], "live", 30)
    };
    let sent = alice
        .invite_in_group(live)
        .await
        .expect("online-only invite");
    assert!(sent.message.is_none(), "no history message");
    let got = expect_event(&mut bob_rx, NEW).await;
    assert_eq!(got.seq, None, "online-only events are not kept");
    assert_eq!(got.data["onlineUserOnly"], true);
    let accepted = bob
        .accept(action(&sent.invite_id, ""))
        .await
        .expect("accept");
    assert!(accepted.message.is_none(), "answers inherit the flag");

    // Carol was offline: no replay at login.
    let (_carol, mut carol_rx) = server.client("carol").await;
    assert_no_signaling(&mut carol_rx, "carol at login").await;
    let heard = dave_rx.drain_events(QUIET).await;
    assert!(
        heard.is_empty(),
        "no message or event for the member not invited: {heard:#?}"
    );
    assert!(history(&alice, "GROUPg").await.is_empty());
    assert_eq!(conversation(&bob, "GROUPg").await.map_or(0, |c| c.0), 0);
}

// ---------------------------------------------------------------------------------------
// 3. Members leaving during a call.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn removed_pending_invitees_stop_ringing_and_the_others_learn_who_left() {
    let server = TestServer::start().await;
    server.create_users(&["erin"]).await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (carol, mut carol_rx) = server.client("carol").await;
    let (_dave, mut dave_rx) = server.client("dave").await;
    make_group(&alice, "g", &["bob", "carol", "dave", "erin"]).await;

    let id = invite(&alice, "g", &["bob", "carol", "erin"], "call", 30).await;
    expect_event(&mut bob_rx, NEW).await;
    expect_event(&mut carol_rx, NEW).await;

    // Removing a member who is not invited touches no invitation.
    alice
        .delete_group_member(change("g", &["dave"]))
        .await
        .expect("remove dave");
    assert_no_signaling(&mut dave_rx, "dave (not invited)").await;
    assert_no_signaling(&mut alice_rx, "alice after removing dave").await;
    assert_no_signaling(&mut carol_rx, "carol after removing dave").await;

    // Two pending invitees (one offline) removed at once.
    let removed = alice
        .delete_group_member(change("g", &["bob", "erin"]))
        .await
        .expect("remove bob and erin");
    assert_eq!(removed.group.member_count, 2);
    assert_eq!(
        signaling(&mut bob_rx, 1).await,
        [withdrawn(&id, "g", "alice", "memberRemoved")]
    );
    let learned = vec![
        left(&id, "g", "alice", "bob", "memberRemoved"),
        left(&id, "g", "alice", "erin", "memberRemoved"),
    ];
    assert_eq!(sorted(signaling(&mut alice_rx, 2).await), learned);
    assert_eq!(sorted(signaling(&mut carol_rx, 2).await), learned);

    // Their part is over; the one left can still answer.
    assert_eq!(
        code(bob.accept(action(&id, "")).await, "removed invitee accepts"),
        8010
    );
    assert_eq!(
        code(
            bob.get_message_list(GetMessageListParams {
                conversation_id: "GROUPg".into(),
                ..Default::default()
            })
            .await,
            "removed reads"
        ),
        9012
    );
    carol
        .accept(action(&id, "here"))
        .await
        .expect("remaining invitee accepts");
    assert_eq!(
        signaling(&mut alice_rx, 1).await,
        [answer(ACCEPTED, &id, "g", "alice", "carol", "here")]
    );
    assert_eq!(
        code(
            alice.cancel(action(&id, "")).await,
            "ended by the last answer"
        ),
        8020
    );

    // One cancel message lists the leavers.
    assert_eq!(
        payloads(&history(&alice, "GROUPg").await),
        [
            payload(30, "call", &id, "g", 1, "alice", &["bob", "carol", "erin"]),
            payload(0, "", &id, "g", 2, "alice", &["bob", "erin"]),
            payload(0, "here", &id, "g", 3, "alice", &["carol"]),
        ]
    );
    // The removed offline invitee is not rung at login.
    let (_erin, mut erin_rx) = server.client("erin").await;
    assert_no_signaling(&mut erin_rx, "erin at login").await;
}

#[tokio::test]
async fn quitting_pending_invitee_stops_ringing_and_the_others_learn_who_left() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (carol, mut carol_rx) = server.client("carol").await;
    let (dave, mut dave_rx) = server.client("dave").await;
    make_group(&alice, "g", &["bob", "carol", "dave"]).await;

    let id = invite(&alice, "g", &["bob", "carol", "dave"], "call", 30).await;
    for rx in [&mut bob_rx, &mut carol_rx, &mut dave_rx] {
        expect_event(rx, NEW).await;
    }
    bob.accept(action(&id, "")).await.expect("accept");
    for rx in [&mut alice_rx, &mut carol_rx, &mut dave_rx] {
        expect_event(rx, ACCEPTED).await;
    }

    carol.quit_group("g").await.expect("quit");
    assert_eq!(
        signaling(&mut carol_rx, 1).await,
        [withdrawn(&id, "g", "alice", "memberQuit")]
    );
    let learned = left(&id, "g", "alice", "carol", "memberQuit");
    for (who, rx) in [
        ("alice", &mut alice_rx),
        ("bob (accepted)", &mut bob_rx),
        ("dave (pending)", &mut dave_rx),
    ] {
        assert_eq!(signaling(rx, 1).await, vec![learned.clone()], "{who}");
    }
    assert_eq!(
        code(carol.accept(action(&id, "")).await, "quitter accepts"),
        8010
    );

    // Dave still rings; his answer ends the invitation.
    dave.reject(action(&id, ""))
        .await
        .expect("dave still pending");
    assert_eq!(
        signaling(&mut alice_rx, 1).await,
        [answer(REJECTED, &id, "g", "alice", "dave", "")]
    );
    assert_eq!(code(alice.cancel(action(&id, "")).await, "ended"), 8020);
    assert_eq!(
        payloads(&history(&alice, "GROUPg").await)[2],
        payload(0, "", &id, "g", 2, "alice", &["carol"])
    );
}

#[tokio::test]
async fn inviter_leaving_cancels_the_whole_invitation() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (carol, mut carol_rx) = server.client("carol").await;
    let (_dave, mut dave_rx) = server.client("dave").await;
    make_group(&alice, "g", &["bob", "carol", "dave"]).await;

    // The inviter quits.
    let id = invite(&bob, "g", &["carol", "dave"], "b-call", 30).await;
    expect_event(&mut carol_rx, NEW).await;
    expect_event(&mut dave_rx, NEW).await;
    bob.quit_group("g").await.expect("inviter quits");
    let over = withdrawn(&id, "g", "bob", "inviterLeft");
    for (who, rx) in [
        ("bob", &mut bob_rx),
        ("carol", &mut carol_rx),
        ("dave", &mut dave_rx),
    ] {
        assert_eq!(signaling(rx, 1).await, vec![over.clone()], "{who}");
    }
    assert_no_signaling(&mut alice_rx, "alice (not a party)").await;
    assert_eq!(
        code(
            carol.accept(action(&id, "")).await,
            "accept after inviter left"
        ),
        8010
    );
    assert_eq!(
        code(bob.cancel(action(&id, "")).await, "cancel after leaving"),
        8020
    );

    // The inviter is removed.
    let id2 = invite(&carol, "g", &["dave"], "c-call", 30).await;
    expect_event(&mut dave_rx, NEW).await;
    alice
        .delete_group_member(change("g", &["carol"]))
        .await
        .expect("remove the inviter");
    let over2 = withdrawn(&id2, "g", "carol", "inviterLeft");
    assert_eq!(signaling(&mut carol_rx, 1).await, vec![over2.clone()]);
    assert_eq!(signaling(&mut dave_rx, 1).await, [over2]);
    assert_no_signaling(&mut alice_rx, "alice (not a party)").await;

    assert_eq!(
        payloads(&history(&alice, "GROUPg").await),
        [
            payload(30, "b-call", &id, "g", 1, "bob", &["carol", "dave"]),
            payload(0, "", &id, "g", 2, "bob", &["carol", "dave"]),
            payload(30, "c-call", &id2, "g", 1, "carol", &["dave"]),
            payload(0, "", &id2, "g", 2, "carol", &["dave"]),
        ]
    );
}

#[tokio::test]
async fn dismissing_a_group_ends_all_its_active_invitations() {
    let server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (carol, mut carol_rx) = server.client("carol").await;
    let (_dave, mut dave_rx) = server.client("dave").await;
    make_group(&alice, "g", &["bob", "carol", "dave"]).await;
    make_group(&alice, "other", &["bob"]).await;

    let id1 = invite(&alice, "g", &["bob", "carol"], "one", 30).await;
    let id2 = invite(&bob, "g", &["carol", "dave"], "two", 30).await;
    // An invitation in another group is untouched.
    let id3 = invite(&alice, "other", &["bob"], "three", 30).await;
    bob.accept(action(&id1, "")).await.expect("accept");
    assert_eq!(
        signaling(&mut carol_rx, 3).await.len(),
        3,
        "two rings and bob's accept"
    );
    assert_eq!(signaling(&mut dave_rx, 1).await.len(), 1);
    assert_eq!(signaling(&mut alice_rx, 1).await.len(), 1, "bob's accept");
    assert_eq!(signaling(&mut bob_rx, 2).await.len(), 2, "two rings");

    alice.dismiss_group("g").await.expect("dismiss");
    let one = withdrawn(&id1, "g", "alice", "groupDismissed");
    let two = withdrawn(&id2, "g", "bob", "groupDismissed");
    assert_eq!(signaling(&mut alice_rx, 1).await, vec![one.clone()]);
    assert_eq!(
        signaling(&mut bob_rx, 1).await,
        vec![two.clone()],
        "bob had accepted #1 and sent #2"
    );
    assert_eq!(
        sorted(signaling(&mut carol_rx, 2).await),
        sorted(vec![one, two.clone()])
    );
    assert_eq!(signaling(&mut dave_rx, 1).await, [two]);

    assert_eq!(code(carol.accept(action(&id1, "")).await, "#1 ended"), 8010);
    assert_eq!(code(bob.cancel(action(&id2, "")).await, "#2 ended"), 8020);
    bob.accept(action(&id3, ""))
        .await
        .expect("the other group's invitation is live");
    assert_eq!(
        code(
            bob.get_message_list(GetMessageListParams {
                conversation_id: "GROUPg".into(),
                ..Default::default()
            })
            .await,
            "history of a dismissed group"
        ),
        9011
    );
    assert_eq!(group_ids(&carol).await, Vec::<String>::new());
    assert_eq!(group_ids(&bob).await, ["other"]);
}

// ---------------------------------------------------------------------------------------
// 4. Replay, reconnect, restart.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn late_login_replays_every_pending_group_invitation_with_the_time_left() {
    let server = TestServer::start().await;
    server.create_users(&["bob", "carol"]).await;
    let (alice, _a) = server.client("alice").await;
    make_group(&alice, "g", &["bob", "carol"]).await;

    let timed = invite(&alice, "g", &["bob", "carol"], "timed", 30).await;
    let open = invite(&alice, "g", &["bob", "carol"], "open", 0).await;
    let ended = invite(&alice, "g", &["bob", "carol"], "ended", 30).await;
    alice.cancel(action(&ended, "")).await.expect("cancel");

    let (bob, mut bob_rx) = server.client("bob").await;
    let mut by_id = signaling(&mut bob_rx, 2).await;
    by_id.sort_by_key(|(_, d)| d["data"].as_str().map(str::to_owned));
    let mut expected = vec![
        ring(&open, "g", "alice", &["bob", "carol"], "open", 0),
        ring(&timed, "g", "alice", &["bob", "carol"], "timed", 30),
    ];
    for e in &mut expected {
        e.1["replay"] = json!(true);
    }
    assert_eq!(by_id, expected, "pending ones only");

    // Replays carry the time left on the server clock and no seq.
    let mut remaining = std::collections::HashMap::new();
    let mut stream = bob_rx;
    bob.logout().await.expect("logout");
    bob.login().await.expect("fresh login");
    for _ in 0..2 {
        let got = expect_event(&mut stream, NEW).await;
        assert_eq!(got.seq, None, "a replay is not kept for resumption");
        let id = got.data["inviteID"].as_str().expect("inviteID").to_owned();
        remaining.insert(
            id,
            got.data["timeoutRemaining"]
                .as_u64()
                .expect("timeoutRemaining"),
        );
    }
    let timed_left = remaining[&timed];
    assert!(
        (1..=30).contains(&timed_left),
        "timeoutRemaining {timed_left}"
    );
    let open_left = remaining[&open];
    assert!(
        (86_000..=86_400).contains(&open_left),
        "timeout 0 runs to the maximum lifetime: {open_left}"
    );

    // One accept does not end it for carol, who logs in later still.
    bob.accept(action(&timed, ""))
        .await
        .expect("accept replayed");
    let (_carol, mut carol_rx) = server.client("carol").await;
    let mut got = signaling(&mut carol_rx, 2).await;
    got.sort_by_key(|(_, d)| d["data"].as_str().map(str::to_owned));
    assert_eq!(got, expected, "carol still rings for both");
}

#[tokio::test]
async fn reconnect_resumes_a_group_invitation_missed_while_away() {
    let server = TestServer::start().await;
    let (alice, _a) = server.client("alice").await;
    let (raw, login) = server.raw_login("bob", "bob-phone", None).await;
    make_group(&alice, "g", &["bob"]).await;
    let seq = login["seq"].as_u64().expect("seq");
    raw.drop_abruptly();

    let id = invite(&alice, "g", &["bob"], "missed", 30).await;
    let (mut raw, login) = server.raw_login("bob", "bob-phone", Some(seq)).await;
    assert_eq!(login["resumed"], true, "{login}");
    let got = drain_raw(&mut raw).await;
    let rings: Vec<&Value> = got.iter().filter(|f| f["name"] == NEW).collect();
    assert_eq!(rings.len(), 1, "exactly one ring: {got:#?}");
    let d = &rings[0]["data"];
    assert_eq!(
        (d["inviteID"].as_str(), d["groupID"].as_str()),
        (Some(id.as_str()), Some("g"))
    );
    assert!(
        rings[0]["seq"].as_u64().is_some(),
        "resumed events keep their seq"
    );
    let answered = raw.request("accept", json!({"inviteID": id})).await;
    assert_eq!(answered["code"], 0, "{answered}");
}

#[tokio::test]
async fn groups_and_pending_group_invitations_survive_a_restart() {
    let mut server = TestServer::start().await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (bob, mut bob_rx) = server.client("bob").await;
    let (carol, mut carol_rx) = server.client("carol").await;
    make_group(&alice, "g", &["bob", "carol"]).await;
    let profile: GroupProfile = alice.get_group_profile("g").await.expect("profile").group;
    let roster = members(&alice, "g").await;

    // #1 ends only by a member change; #2 times out.
    let open = invite(&alice, "g", &["bob", "carol"], "open", 0).await;
    let timed = invite(&alice, "g", &["carol"], "timed", 2).await;
    expect_event(&mut bob_rx, NEW).await;
    let mut carol_seen = vec![
        expect_event(&mut carol_rx, NEW).await,
        expect_event(&mut carol_rx, NEW).await,
    ];

    server.restart().await;
    let mut alice_seen = through_reconnect(&mut alice_rx).await;
    through_reconnect(&mut bob_rx).await;
    carol_seen.extend(through_reconnect(&mut carol_rx).await);

    assert_eq!(
        bob.get_group_profile("g").await.expect("profile").group,
        profile
    );
    assert_eq!(members(&carol, "g").await, roster);
    assert_eq!(group_ids(&bob).await, ["g"]);
    assert_eq!(
        code(
            bob.create_group(create_params(Some("g"), "n", &[])).await,
            "reuse after restart"
        ),
        9021
    );
    assert_eq!(
        code(bob.dismiss_group("g").await, "still not the owner"),
        9018
    );

    // Withdrawal still finds the invitation after the restart.
    alice
        .delete_group_member(change("g", &["bob"]))
        .await
        .expect("remove bob");
    assert_eq!(
        signaling(&mut bob_rx, 1).await,
        [withdrawn(&open, "g", "alice", "memberRemoved")]
    );

    // The timed one times out exactly once.
    let timeouts_of = |seen: &[EventFrame]| {
        seen.iter()
            .filter(|f| f.name == TIMEOUT && f.data["inviteID"] == timed.as_str())
            .count()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while timeouts_of(&carol_seen) == 0 || timeouts_of(&alice_seen) == 0 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (a, c) = tokio::join!(alice_rx.drain_events(QUIET), carol_rx.drain_events(QUIET));
        alice_seen.extend(a);
        carol_seen.extend(c);
        assert!(!left.is_zero(), "no timeout within {WAIT:?}");
    }
    alice_seen.extend(alice_rx.drain_events(QUIET).await);
    carol_seen.extend(carol_rx.drain_events(QUIET).await);
    assert_eq!(timeouts_of(&carol_seen), 1, "{carol_seen:#?}");
    assert_eq!(timeouts_of(&alice_seen), 1, "{alice_seen:#?}");
    let timeouts: Vec<String> = payloads(&history(&alice, "GROUPg").await)
        .into_iter()
        .filter(|p| p.contains(&timed) && p.contains(r#""actionType":5"#))
        .collect();
    assert_eq!(
        timeouts,
        [payload(0, "timed", &timed, "g", 5, "alice", &["carol"])]
    );
    // Carol still rings for #1.
    carol
        .accept(action(&open, ""))
        .await
        .expect("accept after restart");
}

// ---------------------------------------------------------------------------------------
// 5. Admin HTTP API.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_api_creates_changes_and_destroys_groups() {
    let server = TestServer::start().await;
    server.create_users(&["dave"]).await;
    let (alice, mut alice_rx) = server.client("alice").await;
    let (_bob, mut bob_rx) = server.client("bob").await;
    let (_carol, mut carol_rx) = server.client("carol").await;

    let (status, body) = group_admin(
        &server,
        "create_group",
        &json!({"Owner_Account": "alice", "Type": "Work", "GroupId": "adm", "Name": "Ops",
                "MemberList": [{"Member_Account": "bob"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["ActionStatus"], &body["ErrorCode"], &body["GroupId"]),
        (&json!("OK"), &json!(0), &json!("adm"))
    );
    let profile = alice.get_group_profile("adm").await.expect("profile").group;
    assert_eq!(
        (
            profile.owner_id.as_str(),
            profile.name.as_str(),
            profile.kind.as_str(),
            profile.member_count
        ),
        ("alice", "Ops", "Private", 2)
    );

    let (status, body) = group_admin(
        &server,
        "create_group",
        &json!({"Owner_Account": "bob", "Name": "Gen"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["GroupId"]
            .as_str()
            .is_some_and(|id| id.starts_with("@BKN#")),
        "{body}"
    );

    let refused = [
        (
            json!({"Owner_Account": "bob", "GroupId": "adm", "Name": "x"}),
            9021,
        ),
        (json!({"Owner_Account": "ghost", "Name": "x"}), 9004),
        (
            json!({"Owner_Account": "bob", "Name": "x", "MemberList": [{"Member_Account": "ghost"}]}),
            9004,
        ),
        (json!({"Owner_Account": "bob", "Name": ""}), 9003),
    ];
    for (request, expected) in refused {
        let (status, body) = group_admin(&server, "create_group", &request).await;
        assert_eq!(
            (status, &body["ActionStatus"], &body["ErrorCode"]),
            (400, &json!("FAIL"), &json!(expected)),
            "{request}: {body}"
        );
    }

    let (status, body) = group_admin(
        &server,
        "add_group_member",
        &json!({"GroupId": "adm", "MemberList": [{"Member_Account": "carol"}, {"Member_Account": "dave"}, {"Member_Account": "bob"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["MemberList"],
        json!([{"Member_Account": "carol", "Result": 1}, {"Member_Account": "dave", "Result": 1}, {"Member_Account": "bob", "Result": 2}])
    );
    let (status, body) =
        group_admin(&server, "get_group_member_info", &json!({"GroupId": "adm"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["MemberNum"], 4);
    let listed: Vec<(&str, &str)> = body["MemberList"]
        .as_array()
        .expect("MemberList")
        .iter()
        .map(|m| {
            (
                m["Member_Account"].as_str().expect("account"),
                m["Role"].as_str().expect("role"),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("alice", "Owner"),
            ("bob", "Member"),
            ("carol", "Member"),
            ("dave", "Member")
        ]
    );

    // Removing a ringing invitee through the API stops their ringing.
    let id = invite(&alice, "adm", &["bob", "carol"], "call", 30).await;
    expect_event(&mut bob_rx, NEW).await;
    expect_event(&mut carol_rx, NEW).await;
    let (status, body) = group_admin(
        &server,
        "delete_group_member",
        &json!({"GroupId": "adm", "MemberToDel_Account": ["bob"]}),
    )
    .await;
    assert_eq!(
        (status, &body["ActionStatus"]),
        (200, &json!("OK")),
        "{body}"
    );
    assert_eq!(
        signaling(&mut bob_rx, 1).await,
        [withdrawn(&id, "adm", "alice", "memberRemoved")]
    );
    let learned = left(&id, "adm", "alice", "bob", "memberRemoved");
    assert_eq!(signaling(&mut alice_rx, 1).await, vec![learned.clone()]);
    assert_eq!(signaling(&mut carol_rx, 1).await, [learned]);

    // Bad credentials change nothing.
    let (status, body) = group_admin_as(
        &server,
        "destroy_group",
        "administrator",
        "garbage",
        &json!({"GroupId": "adm"}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = group_admin_as(
        &server,
        "create_group",
        "administrator",
        "garbage",
        &json!({"Owner_Account": "bob", "Name": "x"}),
    )
    .await;
    assert_eq!(status, 401);
    let alice_sig = server.user_sig("alice");
    let (status, _) = group_admin_as(
        &server,
        "destroy_group",
        "alice",
        &alice_sig,
        &json!({"GroupId": "adm"}),
    )
    .await;
    assert_eq!(status, 403, "a user's own sig is not the administrator's");
    assert_eq!(
        alice
            .get_group_profile("adm")
            .await
            .expect("still there")
            .group
            .member_count,
        3
    );

    // Destroying ends the remaining ringing.
    let (status, body) = group_admin(&server, "destroy_group", &json!({"GroupId": "adm"})).await;
    assert_eq!(
        (status, &body["ActionStatus"]),
        (200, &json!("OK")),
        "{body}"
    );
    let over = withdrawn(&id, "adm", "alice", "groupDismissed");
    assert_eq!(signaling(&mut carol_rx, 1).await, vec![over.clone()]);
    assert_eq!(signaling(&mut alice_rx, 1).await, [over]);
    assert_eq!(
        code(alice.get_group_profile("adm").await, "destroyed"),
        9011
    );
    for command in ["get_group_member_info", "destroy_group"] {
        let (status, body) = group_admin(&server, command, &json!({"GroupId": "adm"})).await;
        assert_eq!(
            (status, &body["ErrorCode"]),
            (404, &json!(9011)),
            "{command}: {body}"
        );
    }
}

#[tokio::test]
async fn a_member_who_answered_and_left_hears_no_more_of_the_call() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.client("alice").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (carol, mut carol_events) = server.client("carol").await;
    let (_dave, mut dave_events) = server.client("dave").await;
    make_group(&alice, "g-left", &["bob", "carol", "dave"]).await;
    // dave stays pending throughout, so the call is still active at the end.
    let id = invite(&alice, "g-left", &["bob", "carol", "dave"], "", 30).await;
    expect_event(&mut bob_events, NEW).await;
    expect_event(&mut carol_events, NEW).await;
    expect_event(&mut dave_events, NEW).await;
    carol.accept(action(&id, "")).await.expect("carol accepts");
    expect_event(&mut alice_events, ACCEPTED).await;
    expect_event(&mut bob_events, ACCEPTED).await;
    carol.quit_group("g-left").await.expect("carol quits");
    // She had answered: nobody is rung or told, and nothing is stored for it.
    assert_no_signaling(&mut alice_events, "alice").await;
    assert_no_signaling(&mut carol_events, "carol").await;
    // Later answers and changes of the call no longer reach her, and she cannot change it.
    bob.accept(action(&id, "")).await.expect("bob accepts");
    expect_event(&mut alice_events, ACCEPTED).await;
    assert_no_signaling(&mut carol_events, "carol after leaving").await;
    let modify = carol
        .modify_invitation(ModifyParams {
            invite_id: id.clone(),
            data: "x".into(),
        })
        .await;
    assert_eq!(code(modify, "modify by a former member"), 8011);
    // A former member can still clear the unread count of the group conversation.
    carol
        .set_message_read("GROUPg-left")
        .await
        .expect("setMessageRead after leaving");
    let list = carol.get_message_list(GetMessageListParams {
        conversation_id: "GROUPg-left".into(),
        ..Default::default()
    });
    assert_eq!(code(list.await, "history after leaving"), 9012);
}
