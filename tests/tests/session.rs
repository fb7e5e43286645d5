//! Session rules around the edges: logout and login again on one connection, large results,
//! request ids, and retention-based resync.

use beckon_tests::{now_ms, wait_until_ms, RawRead, TestServer, WAIT};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn logout_gives_the_connection_a_fresh_login_period() {
    let server = TestServer::start_with(|c| c.login_timeout = Duration::from_millis(400)).await;
    let (mut raw, _) = server.raw_login("alice", "dev-a", None).await;
    // Let the connection outlive its first login period while logged in.
    wait_until_ms(now_ms() + 600).await;
    let logout = raw.request("logout", json!({})).await;
    assert_eq!(logout["code"], 0);
    // Still open right after the logout, and a new login on it works.
    let ping = raw.request("ping", json!({})).await;
    assert_eq!(ping["code"], 0);
    let login = raw
        .request(
            "login",
            json!({"SDKAppID": beckon_tests::SDK_APP_ID, "userID": "bob", "userSig": server.user_sig("bob")}),
        )
        .await;
    assert_eq!(login["code"], 0, "{login}");
    assert_eq!(login["data"]["userID"], "bob");
    // Logged out again and idle, the fresh period ends with 4003.
    assert_eq!(raw.request("logout", json!({})).await["code"], 0);
    assert_eq!(raw.closed().await, Some(4003));
}

#[tokio::test]
async fn a_full_page_of_large_messages_arrives_whole() {
    let server = TestServer::start().await;
    server.create_users(&["bob"]).await;
    let (mut alice, _) = server.raw_login("alice", "dev-a", None).await;
    let data = "x".repeat(8000);
    for _ in 0..50 {
        let sent = alice
            .request("invite", json!({"userID": "bob", "data": data}))
            .await;
        assert_eq!(sent["code"], 0, "{sent}");
        let id = sent["data"]["inviteID"].clone();
        let cancelled = alice
            .request("cancel", json!({"inviteID": id, "data": data}))
            .await;
        assert_eq!(cancelled["code"], 0, "{cancelled}");
    }
    let page = alice
        .request(
            "getMessageList",
            json!({"conversationID": "C2Cbob", "count": 100}),
        )
        .await;
    assert_eq!(page["code"], 0);
    assert_eq!(
        page["data"]["messageList"].as_array().map(Vec::len),
        Some(100)
    );
    assert_eq!(page["data"]["isCompleted"], true);
    // The connection survived the ~1 MiB frame.
    assert_eq!(alice.request("ping", json!({})).await["code"], 0);
}

#[tokio::test]
async fn an_overlong_request_id_is_refused_and_not_run() {
    let server = TestServer::start().await;
    server.create_users(&["bob"]).await;
    let (mut alice, _) = server.raw_login("alice", "dev-a", None).await;
    let long_id = "i".repeat(300);
    alice
        .send_text(&json!({"id": long_id, "op": "invite", "params": {"userID": "bob"}}).to_string())
        .await;
    let RawRead::Frame(result) = alice.read(WAIT).await else {
        panic!("no result")
    };
    assert_eq!(result["code"], 9003);
    assert!(result["id"].is_null());
    let history = alice
        .request("getMessageList", json!({"conversationID": "C2Cbob"}))
        .await;
    assert_eq!(
        history["data"]["messageList"],
        json!([]),
        "the invite must not have run"
    );
}

#[tokio::test]
async fn events_older_than_the_retention_period_force_a_resync() {
    let server = TestServer::start_with(|c| c.event_retention = Duration::from_secs(1)).await;
    server.create_users(&["bob"]).await;
    let (bob, login) = server.raw_login("bob", "dev-b", None).await;
    let seen = login["seq"].as_u64().expect("seq");
    drop(bob);
    let (mut alice, _) = server.raw_login("alice", "dev-a", None).await;
    let sent = alice
        .request("invite", json!({"userID": "bob", "timeout": 0}))
        .await;
    assert_eq!(sent["code"], 0);
    // The event was committed before this answer; once the retention has passed since, it
    // can no longer be resumed from.
    wait_until_ms(now_ms() + 1000).await;
    let (mut bob, login) = server.raw_login("bob", "dev-b", Some(seen)).await;
    assert_eq!(login["resync"], true, "{login}");
    assert_eq!(login["resumed"], false);
    // The pending invitation is replayed instead.
    let replay = bob.next_event(WAIT).await.expect("replayed invitation");
    assert_eq!(replay["name"], "newInvitationReceived");
    assert_eq!(replay["data"]["replay"], true);
    assert_eq!(replay["data"]["inviteID"], sent["data"]["inviteID"]);
}

#[tokio::test]
async fn a_resumed_invitation_counts_its_remaining_time_from_now() {
    let server = TestServer::start().await;
    server.create_users(&["bob"]).await;
    let (bob, login) = server.raw_login("bob", "dev-b", None).await;
    let seen = login["seq"].as_u64().expect("seq");
    drop(bob);
    let (mut alice, _) = server.raw_login("alice", "dev-a", None).await;
    assert_eq!(
        alice
            .request("invite", json!({"userID": "bob", "timeout": 30}))
            .await["code"],
        0
    );
    wait_until_ms(now_ms() + 1100).await;
    let (mut bob, login) = server.raw_login("bob", "dev-b", Some(seen)).await;
    assert_eq!(login["resumed"], true);
    let events = bob.drain_events(beckon_tests::QUIET).await;
    let ring = events
        .iter()
        .find(|e| e["name"] == "newInvitationReceived")
        .expect("missed invitation resent");
    let remaining = ring["data"]["timeoutRemaining"]
        .as_u64()
        .expect("remaining");
    assert!((27..30).contains(&remaining), "remaining {remaining}");
    assert!(ring["seq"].as_u64().is_some());
}
