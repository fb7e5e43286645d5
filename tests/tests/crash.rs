//! A `beckon serve` process killed with SIGKILL right after it answered a burst of actions
//! keeps every one of them: answers wait for the journal's commit, and the tables that lag
//! behind it are brought up to date from the journal when the server starts again.

use beckon_tests::{beckon_bin, served_address, RawRead, RawSocket, SDK_APP_ID, WAIT};
use beckon_usersig::UserSigKey;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use tokio::process::{Child, Command};

const SECRET: &str = "crash-test-secret-0123456789abcdef";
/// Invitations in the burst; enough that the last ones are answered while the indexer still
/// gathers them.
const INVITES: usize = 300;
const ACCEPTED: usize = 100;
const MODIFIED: usize = 50;

/// Starts `beckon serve` on `data_dir` and returns it with its WebSocket URL.
async fn serve(data_dir: &str) -> (Child, String) {
    let sdk_app_id = SDK_APP_ID.to_string();
    let mut child = Command::new(beckon_bin())
        .args([
            "serve",
            "--data-dir",
            data_dir,
            "--listen",
            "127.0.0.1:0",
            "--sdkappid",
            &sdk_app_id,
            "--secret-key",
            SECRET,
            "--rate-limit",
            "100000",
        ])
        .env_remove("BECKON_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("beckon serve starts");
    let addr = served_address(child.stdout.take().expect("piped stdout")).await;
    (child, format!("ws://{addr}/ws"))
}

async fn login(url: &str, user: &str) -> RawSocket {
    let mut raw = RawSocket::connect(url).await;
    let sig = UserSigKey::new(SDK_APP_ID, SECRET).generate(user, beckon_tests::unix_now(), 3600);
    let result = raw
        .request(
            "login",
            json!({"SDKAppID": SDK_APP_ID, "userID": user, "userSig": sig, "instanceID": format!("{user}-device")}),
        )
        .await;
    assert_eq!(result["code"], 0, "login of {user}: {result}");
    raw
}

/// Sends every request at once and returns the results by request id.
async fn pipelined(raw: &mut RawSocket, requests: &[(u64, &str, Value)]) -> HashMap<u64, Value> {
    for (id, op, params) in requests {
        raw.send_text(&json!({"id": id, "op": op, "params": params}).to_string())
            .await;
    }
    let mut results = HashMap::new();
    while results.len() < requests.len() {
        match raw.read(WAIT).await {
            RawRead::Frame(frame) if frame["type"] == "result" => {
                let id = frame["id"].as_u64().expect("numeric id");
                assert_eq!(frame["code"], 0, "request {id} refused: {frame}");
                results.insert(id, frame);
            }
            RawRead::Frame(_) => {}
            other => panic!("{} results of {}: {other:?}", results.len(), requests.len()),
        }
    }
    results
}

/// Events a fresh login replays, up to the answer to the ping sent right after it (the server
/// sends every event the login produced before that answer).
async fn replayed(raw: &mut RawSocket) -> Vec<Value> {
    raw.send_text(r#"{"id":"after-login","op":"ping"}"#).await;
    let mut events = Vec::new();
    loop {
        match raw.read(WAIT).await {
            RawRead::Frame(frame) if frame["id"] == "after-login" => return events,
            RawRead::Frame(frame) => events.push(frame),
            other => panic!("no ping answer: {other:?}"),
        }
    }
}

#[tokio::test]
async fn sigkill_right_after_the_answers_loses_no_answered_action() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("UTF-8 temp path").to_owned();
    let (mut server, url) = serve(&data_dir).await;
    let mut bob = login(&url, "bob").await;
    let mut alice = login(&url, "alice").await;

    let invites: Vec<(u64, &str, Value)> = (1..=INVITES as u64)
        .map(|n| {
            let params = json!({"userID": "bob", "data": format!("call {n}"), "timeout": 3600});
            (n, "invite", params)
        })
        .collect();
    let results = pipelined(&mut alice, &invites).await;
    let invite_ids: Vec<String> = (1..=INVITES as u64)
        .map(|n| {
            results[&n]["data"]["inviteID"]
                .as_str()
                .expect("inviteID")
                .to_owned()
        })
        .collect();

    // Bob accepts the first ones while Alice changes the data of others, all at once.
    let accepts: Vec<(u64, &str, Value)> = invite_ids[..ACCEPTED]
        .iter()
        .zip(1..)
        .map(|(id, n)| (n, "accept", json!({"inviteID": id})))
        .collect();
    let modifies: Vec<(u64, &str, Value)> = invite_ids[ACCEPTED..ACCEPTED + MODIFIED]
        .iter()
        .zip(10_001..)
        .map(|(id, n)| {
            (
                n,
                "modifyInvitation",
                json!({"inviteID": id, "data": "changed"}),
            )
        })
        .collect();
    let (accept_results, modify_results) = tokio::join!(
        pipelined(&mut bob, &accepts),
        pipelined(&mut alice, &modifies)
    );
    assert_eq!(
        accept_results.len() + modify_results.len(),
        ACCEPTED + MODIFIED
    );

    // Killed at once: no graceful shutdown, no final indexing.
    server.start_kill().expect("SIGKILL");
    let status = server.wait().await.expect("server ends");
    assert!(!status.success(), "killed, not stopped: {status}");
    drop((alice, bob));

    let (mut server, url) = serve(&data_dir).await;
    // Bob's fresh login replays exactly the invitations he has not answered, as modified.
    let mut bob = login(&url, "bob").await;
    let replay: HashMap<String, String> = replayed(&mut bob)
        .await
        .into_iter()
        .filter(|frame| frame["name"] == "newInvitationReceived")
        .map(|frame| {
            (
                frame["data"]["inviteID"]
                    .as_str()
                    .expect("inviteID")
                    .to_owned(),
                frame["data"]["data"].as_str().expect("data").to_owned(),
            )
        })
        .collect();
    let pending: HashSet<&String> = invite_ids[ACCEPTED..].iter().collect();
    assert_eq!(replay.keys().collect::<HashSet<_>>(), pending);
    for (n, id) in invite_ids.iter().enumerate().skip(ACCEPTED) {
        let expected = if n < ACCEPTED + MODIFIED {
            "changed".to_owned()
        } else {
            format!("call {}", n + 1)
        };
        assert_eq!(replay[id], expected, "data of invitation {}", n + 1);
    }

    // Alice's history holds every invite and every accept, in order, numbered without gaps.
    let mut alice = login(&url, "alice").await;
    let mut messages = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut params = json!({"conversationID": "C2Cbob", "count": 100});
        if let Some(id) = &next {
            params["nextReqMessageID"] = json!(id);
        }
        let page = alice.request("getMessageList", params).await;
        assert_eq!(page["code"], 0, "{page}");
        let list = page["data"]["messageList"]
            .as_array()
            .expect("list")
            .clone();
        messages.splice(0..0, list);
        if page["data"]["isCompleted"] == true {
            break;
        }
        next = Some(
            page["data"]["nextReqMessageID"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    assert_eq!(messages.len(), INVITES + ACCEPTED);
    let sequences: Vec<u64> = messages
        .iter()
        .map(|m| m["sequence"].as_u64().expect("sequence"))
        .collect();
    assert_eq!(
        sequences,
        (1..=(INVITES + ACCEPTED) as u64).collect::<Vec<_>>()
    );

    // And the numbering goes on from there.
    let more = alice
        .request("invite", json!({"userID": "bob", "timeout": 60}))
        .await;
    assert_eq!(more["code"], 0, "{more}");
    assert_eq!(
        more["data"]["message"]["sequence"],
        (INVITES + ACCEPTED + 1) as u64
    );
    server.start_kill().expect("stop");
    let _ = server.wait().await;
}
