//! Store tests on a real database in a temporary directory: reads see acknowledged writes
//! although the tables are indexed behind the journal, and journal frames a crash left
//! unindexed are applied exactly once when the store opens again.

use super::*;
use beckon_core::ConversationRef;
use std::time::Duration;

fn open(dir: &Path) -> Store {
    let (deliveries, _) = tokio_mpsc::unbounded_channel();
    Store::open(dir, StoreConfig::default(), Arc::new(deliveries)).expect("store opens")
}

fn message_job(id: &str, time: u64) -> WriteJob {
    WriteJob {
        ops: vec![
            WriteOp::EnsureUser {
                user_id: "alice".into(),
            },
            WriteOp::EnsureUser {
                user_id: "bob".into(),
            },
            WriteOp::AppendMessage {
                message_id: id.into(),
                conversation: ConversationRef::c2c("alice", "bob"),
                participants: vec!["alice".into(), "bob".into()],
                from: "alice".into(),
                time,
                payload_data: format!("{{\"n\":{time}}}"),
                excluded: false,
            },
        ],
        origin: None,
        live_only: false,
    }
}

async fn bob_unread(store: &Store) -> u64 {
    let conversations = store.conversations("bob".into()).await.expect("reads");
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    conversations[0].unread_count
}

async fn bob_head(store: &Store) -> u64 {
    store
        .login_snapshot("bob".into(), None)
        .await
        .expect("reads")
        .head
}

async fn close(store: Store) {
    tokio::task::spawn_blocking(move || store.close())
        .await
        .expect("closes");
}

/// Far longer than any test: a read or a close that waited for the gathering to end would
/// hit `NOT_WITHIN` instead.
const GATHER_AN_HOUR: Duration = Duration::from_secs(3600);
const NOT_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test]
async fn reads_see_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (deliveries, _) = tokio_mpsc::unbounded_channel();
    let config = StoreConfig {
        index_gather: GATHER_AN_HOUR,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config, Arc::new(deliveries)).expect("store opens");
    for n in 1..=20u64 {
        store
            .write(message_job(&format!("m{n}"), n))
            .await
            .expect("commits");
        // Read right after the acknowledgement, while the indexer is still gathering: the
        // reader asks it to apply now.
        let unread = tokio::time::timeout(NOT_WITHIN, bob_unread(&store)).await;
        assert_eq!(unread.ok(), Some(n), "the read waited for the gathering");
        assert_eq!(bob_head(&store).await, n);
    }
    let page = store
        .messages(
            "bob".into(),
            ConversationRef::c2c("alice", "bob"),
            None,
            100,
        )
        .await
        .expect("reads")
        .expect("conversation exists");
    let sequences: Vec<u64> = page.message_list.iter().map(|m| m.sequence).collect();
    assert_eq!(sequences, (1..=20).collect::<Vec<_>>());
    // One more write the indexer is gathering: closing applies it without waiting out the
    // gathering, and it is there after a restart.
    store.write(message_job("m21", 21)).await.expect("commits");
    let (closed_tx, closed) = std::sync::mpsc::channel();
    // A thread of its own: a close that hangs must fail the test, not hold its runtime.
    std::thread::spawn(move || {
        store.close();
        let _ = closed_tx.send(());
    });
    assert!(
        closed.recv_timeout(NOT_WITHIN).is_ok(),
        "the close waited for the gathering"
    );
    let store = open(dir.path());
    assert_eq!(bob_unread(&store).await, 21);
    close(store).await;
}

/// Appends a frame to a closed store's journal, as its next position.
fn append_frame(dir: &Path, frame: &mut [u8]) {
    let mut log =
        log_file::Log::open(dir, log_file::SEGMENT_BYTES, 0, |_, _| Ok(())).expect("journal opens");
    let pos = log.last_pos() + 1;
    log.append(pos, frame).expect("appends");
}

/// Bob's second message and its event, as a crash right after their journal commit leaves them.
fn unindexed_m2() -> Vec<journal::Record> {
    vec![
        journal::Record::Message {
            message_id: "m2".into(),
            conv_key: ConversationRef::c2c("alice", "bob").key(),
            seq: 2,
            from: "alice".into(),
            time_s: 2,
            payload_data: "{}".into(),
            excluded: false,
            participants: vec!["alice".into(), "bob".into()],
            updated_ms: 2_000,
        },
        journal::Record::Event {
            user_id: "bob".into(),
            seq: 2,
            origin: None,
            created_ms: now_ms(),
            stored: "{\"type\":\"event\",\"name\":\"x\",\"seq\":2,\"data\":{}}".into(),
        },
    ]
}

#[tokio::test]
async fn journal_rows_a_crash_left_unindexed_are_applied_once() {
    let frame = journal::FrameEncoder::default()
        .encode(&unindexed_m2())
        .expect("encodes");
    a_frame_a_crash_left_unindexed_is_applied_once(frame).await;
}

#[tokio::test]
async fn a_plain_journal_frame_of_an_earlier_version_is_applied_once() {
    let mut frame = vec![0; log_file::HEADER_BYTES];
    frame.extend(journal::encode_plain(&unindexed_m2()));
    a_frame_a_crash_left_unindexed_is_applied_once(frame).await;
}

/// `frame` holds `unindexed_m2()`.
async fn a_frame_a_crash_left_unindexed_is_applied_once(mut frame: Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    store.write(message_job("m1", 1)).await.expect("commits");
    assert_eq!(bob_head(&store).await, 1);
    close(store).await;

    // What a crash right after a journal commit leaves: a frame the tables do not include.
    append_frame(dir.path(), &mut frame);

    let store = open(dir.path());
    assert_eq!(
        bob_unread(&store).await,
        2,
        "the journaled message is indexed"
    );
    assert_eq!(bob_head(&store).await, 2, "the journaled event is indexed");
    // Numbering goes on from the replayed numbers.
    let report = store.write(message_job("m3", 3)).await.expect("commits");
    assert_eq!(report.messages[0].stored.sequence, 3);
    assert_eq!(bob_head(&store).await, 3);
    close(store).await;

    // Opening again applies nothing twice.
    let store = open(dir.path());
    assert_eq!(bob_unread(&store).await, 3);
    assert_eq!(bob_head(&store).await, 3);
    let snapshot = store
        .login_snapshot("bob".into(), Some(0))
        .await
        .expect("reads");
    let seqs: Vec<u64> = snapshot
        .backlog
        .expect("resumable")
        .iter()
        .map(|(seq, _, _)| *seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    close(store).await;
}

#[tokio::test]
async fn a_journal_row_written_as_json_by_an_earlier_version_is_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    store.write(message_job("m1", 1)).await.expect("commits");
    close(store).await;

    // The store is at position 1; an earlier version's journal held position 2.
    let bytes = serde_json::to_vec(&unindexed_m2()).expect("encodes");
    journal::append_legacy(dir.path(), 2, &bytes).expect("appends");

    let store = open(dir.path());
    assert_eq!(bob_unread(&store).await, 2);
    assert_eq!(bob_head(&store).await, 2);
    assert!(
        !dir.path().join(LEGACY_JOURNAL_FILE).exists(),
        "the old journal is removed once applied"
    );
    let report = store.write(message_job("m3", 3)).await.expect("commits");
    assert_eq!(report.messages[0].stored.sequence, 3);
    close(store).await;

    let store = open(dir.path());
    assert_eq!(bob_unread(&store).await, 3);
    assert_eq!(bob_head(&store).await, 3);
    close(store).await;
}

#[tokio::test]
async fn an_unreadable_journal_row_stops_the_store_from_opening() {
    let dir = tempfile::tempdir().expect("temp dir");
    close(open(dir.path())).await;
    let mut frame = vec![0; log_file::HEADER_BYTES];
    frame.extend_from_slice(b"not records");
    append_frame(dir.path(), &mut frame);
    let (deliveries, _) = tokio_mpsc::unbounded_channel();
    let error = Store::open(dir.path(), StoreConfig::default(), Arc::new(deliveries))
        .err()
        .expect("refuses to open");
    assert!(
        error.to_string().contains("journal row 1 cannot be read"),
        "{error}"
    );
}

#[tokio::test]
async fn a_proposed_invitation_id_already_used_is_a_conflict() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let invitation = Invitation {
        invite_id: "call-1".into(),
        ..pending_invitation(0)
    };
    let insert = |proposed_id| WriteJob {
        ops: vec![WriteOp::InsertInvitation {
            invitation: invitation.clone(),
            proposed_id,
        }],
        origin: None,
        live_only: false,
    };
    // Queued together: the second sees the first, indexed or not.
    let first = store.submit(insert(true));
    let second = store.submit(insert(true));
    assert!(!first.await.expect("answers").expect("commits").conflict);
    assert!(second.await.expect("answers").expect("commits").conflict);
    // And once indexed, the tables know it.
    assert!(store
        .invitation_exists("call-1".into())
        .await
        .expect("reads"));
    let third = store.write(insert(true)).await.expect("commits");
    assert!(third.conflict);
    close(store).await;
}

fn pending_invitation(n: usize) -> Invitation {
    Invitation {
        invite_id: format!("call-{n:06}"),
        inviter: "alice".into(),
        group_id: String::new(),
        invitees: vec![beckon_core::Invitee {
            user_id: "bob".into(),
            state: beckon_core::InviteeState::Pending,
        }],
        data: String::new(),
        timeout: 30,
        online_user_only: false,
        offline_push_info: None,
        created_at_ms: 1,
        deadline_ms: 30_001 + n as u64,
        invite_message_id: None,
        departed: Vec::new(),
    }
}

/// Stores `count` pending invitations, in jobs of a thousand.
async fn store_pending(store: &Store, count: usize) {
    for first in (0..count).step_by(1000) {
        let ops = (first..count.min(first + 1000))
            .map(|n| WriteOp::InsertInvitation {
                invitation: pending_invitation(n),
                proposed_id: false,
            })
            .collect();
        store
            .write(WriteJob {
                ops,
                origin: None,
                live_only: false,
            })
            .await
            .expect("commits");
    }
}

/// Drains the start-up load: every chunk until the end marker, or the first error.
async fn load_active(store: &Store) -> Result<Vec<Invitation>, StoreError> {
    let mut chunks = store.active_invitations();
    let mut loaded = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        if chunk.is_empty() {
            return Ok(loaded);
        }
        loaded.extend(chunk);
    }
    Err(StoreError::Task(
        "the load ended without its end marker".into(),
    ))
}

#[tokio::test]
async fn the_start_up_load_yields_every_active_invitation_once_then_its_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    // Several read chunks (4,096 rows each), parsed on two threads.
    let count = 10_000;
    store_pending(&store, count).await;
    assert_eq!(
        store.active_invitation_count().await.expect("counts"),
        count as u64
    );
    let mut ids: Vec<String> = load_active(&store)
        .await
        .expect("loads")
        .into_iter()
        .map(|invitation| invitation.invite_id)
        .collect();
    ids.sort();
    let expected: Vec<String> = (0..count)
        .map(|n| pending_invitation(n).invite_id)
        .collect();
    assert_eq!(ids, expected);
    close(store).await;
}

#[tokio::test]
async fn an_unreadable_active_invitation_fails_the_load_instead_of_ending_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    store_pending(&store, 9_000).await;
    // Make sure the rows are indexed before spoiling one of them behind the store's back.
    assert_eq!(
        store.active_invitation_count().await.expect("counts"),
        9_000
    );
    let spoil = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    spoil
        .execute(
            "UPDATE active_invitations SET body = '{not json' WHERE invite_id = 'call-004500'",
            [],
        )
        .expect("updates");
    drop(spoil);
    let loaded = load_active(&store).await;
    assert!(
        matches!(&loaded, Err(StoreError::Corrupt(text)) if text.contains("invitation row")),
        "{:?}",
        loaded.map(|all| all.len())
    );
    close(store).await;
}

#[tokio::test]
async fn conversation_rows_summed_over_a_transaction_keep_their_order_with_mark_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let mark_read = WriteJob {
        ops: vec![WriteOp::MarkRead {
            user_id: "bob".into(),
            conversation: ConversationRef::c2c("alice", "bob"),
        }],
        origin: None,
        live_only: false,
    };
    // Submitted together, so they are committed (and indexed) together: three messages, bob
    // reads, two more.
    let mut jobs: Vec<_> = (1..=3)
        .map(|n| store.submit(message_job(&format!("m{n}"), n)))
        .collect();
    jobs.push(store.submit(mark_read));
    jobs.extend((4..=5).map(|n| store.submit(message_job(&format!("m{n}"), n))));
    for job in jobs {
        job.await.expect("answers").expect("commits");
    }
    assert_eq!(bob_unread(&store).await, 2);
    let conversations = store.conversations("alice".into()).await.expect("reads");
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    assert_eq!(conversations[0].unread_count, 0, "alice sent them all");
    let last = conversations[0]
        .last_message
        .as_ref()
        .expect("has a last message");
    assert_eq!(last.id, "m5");
    close(store).await;
}

#[tokio::test]
async fn an_invitation_stored_and_answered_in_one_transaction_leaves_no_pending_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let job = |op| WriteJob {
        ops: vec![op],
        origin: None,
        live_only: false,
    };
    let insert = |invitation| {
        job(WriteOp::InsertInvitation {
            invitation,
            proposed_id: false,
        })
    };
    let accepted = |invitation: Invitation| {
        let mut answered = invitation;
        answered.invitees[0].state = beckon_core::InviteeState::Accepted;
        job(WriteOp::UpdateInvitation {
            invitation: answered,
            resolved: vec!["bob".into()],
        })
    };
    let old = pending_invitation(1);
    let answered = pending_invitation(2);
    let ringing = pending_invitation(3);
    store.write(insert(old.clone())).await.expect("commits");
    // A read waits until it is indexed, so the old one is in the tables before the rest.
    assert!(store
        .invitation_exists(old.invite_id.clone())
        .await
        .expect("reads"));
    // Submitted together, so they are indexed together: one invitation stored and answered,
    // one stored, and the older one answered.
    let jobs = vec![
        store.submit(insert(answered.clone())),
        store.submit(accepted(answered.clone())),
        store.submit(insert(ringing.clone())),
        store.submit(accepted(old.clone())),
    ];
    for job in jobs {
        job.await.expect("answers").expect("commits");
    }
    let snapshot = store
        .login_snapshot("bob".into(), None)
        .await
        .expect("reads");
    let pending: Vec<&str> = snapshot
        .pending
        .iter()
        .map(|invitation| invitation.invite_id.as_str())
        .collect();
    assert_eq!(pending, [ringing.invite_id.as_str()]);
    // No row is left behind for the answered ones (the replay query would hide it).
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    let rows: Vec<String> = tables
        .prepare("SELECT invite_id FROM pending_invitees WHERE user_id = 'bob'")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .expect("reads");
    assert_eq!(rows, [ringing.invite_id.as_str()]);
    let loaded = load_active(&store).await.expect("loads");
    assert_eq!(loaded, [ringing]);
    for id in [old.invite_id, answered.invite_id] {
        assert!(store.invitation_exists(id).await.expect("reads"));
    }
    close(store).await;
}

/// Bob's resumable backlog after `last`, as sequence numbers.
async fn bob_backlog_after(store: &Store, last: u64) -> Option<Vec<u64>> {
    let snapshot = store
        .login_snapshot("bob".into(), Some(last))
        .await
        .expect("reads");
    snapshot
        .backlog
        .map(|events| events.iter().map(|(seq, _, _)| *seq).collect())
}

/// Writes messages m1..=m`count` from alice to bob, each read back before the next is
/// written: a read waits for what was written to be indexed, so each becomes a run of its own.
async fn write_messages_each_a_run(store: &Store, count: u64) {
    for n in 1..=count {
        store
            .write(message_job(&format!("m{n}"), n))
            .await
            .expect("commits");
        assert_eq!(
            bob_backlog_after(store, 0).await,
            Some((1..=n).collect::<Vec<_>>())
        );
    }
}

#[tokio::test]
async fn a_resume_from_anywhere_in_a_run_of_events_gets_exactly_the_events_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    // One job, so one indexer transaction: bob's 600 events are kept as runs of 256, 256, 88.
    let mut job = message_job("m0", 1);
    for n in 1..600u64 {
        // Past the two EnsureUser ops: the message alone.
        job.ops
            .extend(message_job(&format!("m{n}"), n + 1).ops.into_iter().skip(2));
    }
    store.write(job).await.expect("commits");
    for last in [0, 1, 255, 256, 257, 511, 512, 598, 599] {
        assert_eq!(
            bob_backlog_after(&store, last).await,
            Some((last + 1..=600).collect::<Vec<_>>()),
            "resuming after {last}"
        );
    }
    assert_eq!(bob_backlog_after(&store, 600).await, Some(Vec::new()));
    close(store).await;

    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    let runs: Vec<(i64, i64)> = tables
        .prepare(
            "SELECT first_seq, last_seq FROM event_runs WHERE user_id = 'bob' ORDER BY first_seq",
        )
        .expect("prepares")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("reads")
        .collect::<Result<_, _>>()
        .expect("reads");
    assert_eq!(runs, vec![(1, 256), (257, 512), (513, 600)]);
}

#[tokio::test]
async fn events_kept_one_per_row_by_an_earlier_version_stay_resumable() {
    let dir = tempfile::tempdir().expect("temp dir");
    close(open(dir.path())).await;
    // What a version 2 database held: an `events` table with a row per event.
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    tables
        .execute_batch(&format!(
            "DROP TABLE event_runs;
             DROP TABLE user_heads;
             CREATE TABLE user_heads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE events (user_id TEXT NOT NULL, seq INTEGER NOT NULL, origin TEXT,
                 created_ms INTEGER NOT NULL, frame TEXT NOT NULL, PRIMARY KEY (user_id, seq))
                 WITHOUT ROWID;
             CREATE INDEX events_created ON events(created_ms);
             INSERT INTO events VALUES ('bob', 1, NULL, {now}, 'f1'), ('bob', 2, 'phone', {now}, 'f2'),
                 ('bob', 3, NULL, {now}, 'f3');
             INSERT INTO user_heads VALUES ('bob', 3);
             PRAGMA user_version = 2;",
            now = now_ms()
        ))
        .expect("writes the old schema");
    drop(tables);

    let store = open(dir.path());
    let snapshot = store
        .login_snapshot("bob".into(), Some(1))
        .await
        .expect("reads");
    assert_eq!(
        snapshot.backlog,
        Some(vec![
            (2, Some("phone".to_owned()), "f2".to_owned()),
            (3, None, "f3".to_owned())
        ])
    );
    // Numbering goes on after the migrated events.
    store.write(message_job("m1", 1)).await.expect("commits");
    assert_eq!(bob_backlog_after(&store, 3).await, Some(vec![4]));
    close(store).await;
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    let old_tables: i64 = tables
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('events', 'events_created')",
            [],
            |row| row.get(0),
        )
        .expect("reads");
    assert_eq!(old_tables, 0, "the old table is gone");
}

/// Spoils the tables behind the store's back with `damage`, then resumes bob from the start:
/// the error the resume must report.
async fn resume_bob_after(dir: &Path, store: &Store, damage: &str) -> StoreError {
    let spoil = rusqlite::Connection::open(dir.join("beckon.sqlite3")).expect("opens");
    spoil.execute(damage, []).expect("spoils");
    drop(spoil);
    store
        .login_snapshot("bob".into(), Some(0))
        .await
        .expect_err("the damage is reported")
}

#[tokio::test]
async fn an_unreadable_run_of_events_fails_the_resume_instead_of_skipping_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    store.write(message_job("m1", 1)).await.expect("commits");
    assert_eq!(bob_backlog_after(&store, 0).await, Some(vec![1]));
    // Spoil the run behind the store's back.
    let error = resume_bob_after(
        dir.path(),
        &store,
        "UPDATE event_runs SET events = x'c1' WHERE user_id = 'bob'",
    )
    .await;
    assert!(
        matches!(&error, StoreError::Corrupt(m) if m.contains("events of bob from 1")),
        "{error:?}"
    );
    close(store).await;
}

#[tokio::test]
async fn a_version_3_database_keeps_its_invitations_and_resumable_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    close(open(dir.path())).await;
    // What a version 3 database held: every invitation by ID with an active flag, pending rows
    // by (user, invitation), events in runs by (user, first event), heads without runs.
    let ringing = pending_invitation(1);
    let mut answered = pending_invitation(2);
    answered.invitees[0].state = beckon_core::InviteeState::Accepted;
    let body = |invitation: &Invitation| serde_json::to_string(invitation).expect("encodes");
    let run = |first: u64, last: u64| {
        let events: Vec<_> = (first..=last)
            .map(|seq| event_runs::KeptEvent {
                seq,
                origin: None,
                created_ms: now_ms(),
                stored: format!("f{seq}").into(),
            })
            .collect();
        event_runs::encode(&events).expect("encodes")
    };
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    tables
        .execute_batch(
            "DROP TABLE invite_ids; DROP TABLE active_invitations; DROP TABLE pending_invitees;
             DROP TABLE user_heads; DROP TABLE event_runs;
             CREATE TABLE invitations (invite_id TEXT PRIMARY KEY, active INTEGER NOT NULL,
                 body TEXT NOT NULL) WITHOUT ROWID;
             CREATE INDEX invitations_active ON invitations(active) WHERE active = 1;
             CREATE TABLE pending_invitees (user_id TEXT NOT NULL, invite_id TEXT NOT NULL,
                 PRIMARY KEY (user_id, invite_id)) WITHOUT ROWID;
             CREATE TABLE user_heads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE event_runs (user_id TEXT NOT NULL, first_seq INTEGER NOT NULL,
                 last_seq INTEGER NOT NULL, newest_ms INTEGER NOT NULL, events BLOB NOT NULL,
                 PRIMARY KEY (user_id, first_seq)) WITHOUT ROWID;
             CREATE INDEX event_runs_newest ON event_runs(newest_ms);
             INSERT INTO user_heads VALUES ('bob', 5), ('carol', 1);
             PRAGMA user_version = 3;",
        )
        .expect("writes the old schema");
    for (invitation, active) in [(&ringing, 1), (&answered, 0)] {
        tables
            .execute(
                "INSERT INTO invitations VALUES (?1, ?2, ?3)",
                rusqlite::params![invitation.invite_id, active, body(invitation)],
            )
            .expect("inserts");
    }
    tables
        .execute(
            "INSERT INTO pending_invitees VALUES ('bob', ?1)",
            [&ringing.invite_id],
        )
        .expect("inserts");
    // Carol's run sorts between bob's, as it did by (user, first event).
    for (user, first, last) in [("bob", 1, 3), ("carol", 1, 1), ("bob", 4, 5)] {
        tables
            .execute(
                "INSERT INTO event_runs VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![user, first, last, now_ms() as i64, run(first, last)],
            )
            .expect("inserts");
    }
    drop(tables);

    let store = open(dir.path());
    let snapshot = store
        .login_snapshot("bob".into(), None)
        .await
        .expect("reads");
    assert_eq!(snapshot.pending, std::slice::from_ref(&ringing));
    assert_eq!(snapshot.head, 5);
    assert_eq!(
        load_active(&store).await.expect("loads"),
        std::slice::from_ref(&ringing)
    );
    for id in [&ringing.invite_id, &answered.invite_id] {
        assert!(store.invitation_exists(id.clone()).await.expect("reads"));
    }
    for last in 0..5 {
        assert_eq!(
            bob_backlog_after(&store, last).await,
            Some((last + 1..=5).collect::<Vec<_>>()),
            "resuming after {last}"
        );
    }
    // New events link on to the migrated ones, and the ringing invitation can still end.
    store.write(message_job("m1", 1)).await.expect("commits");
    assert_eq!(bob_backlog_after(&store, 2).await, Some(vec![3, 4, 5, 6]));
    let mut timed_out = ringing.clone();
    timed_out.invitees[0].state = beckon_core::InviteeState::Timeout;
    store
        .write(WriteJob {
            ops: vec![WriteOp::UpdateInvitation {
                invitation: timed_out,
                resolved: vec!["bob".into()],
            }],
            origin: None,
            live_only: false,
        })
        .await
        .expect("commits");
    let snapshot = store
        .login_snapshot("bob".into(), None)
        .await
        .expect("reads");
    assert!(snapshot.pending.is_empty(), "{:?}", snapshot.pending);
    assert_eq!(store.active_invitation_count().await.expect("counts"), 0);
    close(store).await;
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    let old_tables: i64 = tables
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '%before_v4'
                 OR name IN ('invitations', 'invitations_active', 'event_runs_newest')",
            [],
            |row| row.get(0),
        )
        .expect("reads");
    assert_eq!(old_tables, 0, "the old tables are gone");
}

#[tokio::test]
async fn a_version_4_database_upgrades_and_its_uncompressed_runs_still_resume() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    write_messages_each_a_run(&store, 2).await;
    close(store).await;
    // What version 4 wrote: the same runs as plain MessagePack.
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    let runs: Vec<(i64, String, i64, Vec<u8>)> = tables
        .prepare("SELECT run_id, user_id, first_seq, events FROM event_runs")
        .expect("prepares")
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("reads")
        .collect::<Result<_, _>>()
        .expect("reads");
    assert!(runs.len() >= 4, "{} runs", runs.len());
    for (run_id, user, first, events) in &runs {
        let events = event_runs::decode(user, *first as u64, events).expect("decodes");
        let plain = rmp_serde::to_vec(&events).expect("encodes");
        tables
            .execute(
                "UPDATE event_runs SET events = ?1 WHERE run_id = ?2",
                rusqlite::params![plain, run_id],
            )
            .expect("rewrites");
    }
    tables
        .execute_batch("PRAGMA user_version = 4")
        .expect("sets the version");
    drop(tables);

    let store = open(dir.path());
    store.write(message_job("m3", 3)).await.expect("commits");
    assert_eq!(bob_backlog_after(&store, 0).await, Some(vec![1, 2, 3]));
    assert_eq!(bob_backlog_after(&store, 1).await, Some(vec![2, 3]));
    close(store).await;
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    let version: i64 = tables
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("reads");
    assert_eq!(version, 7);
    let first_bytes: Vec<u8> = tables
        .prepare(
            "SELECT substr(events, 1, 1) FROM event_runs WHERE user_id = 'bob' ORDER BY run_id",
        )
        .expect("prepares")
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .expect("reads")
        .map(|byte| byte.expect("reads")[0])
        .collect();
    assert_eq!(first_bytes.len(), 3, "{first_bytes:?}");
    assert_ne!(
        first_bytes[0],
        compressed::COMPRESSED,
        "the old runs stay as they were"
    );
    assert_eq!(
        first_bytes[2],
        compressed::COMPRESSED,
        "a new run is compressed"
    );
}

#[tokio::test]
async fn a_resume_past_pruned_runs_asks_for_a_resync() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    write_messages_each_a_run(&store, 3).await;
    // Pruning deletes from the front: bob's first run goes.
    let prune = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    prune
        .execute(
            "DELETE FROM event_runs WHERE run_id =
                 (SELECT min(run_id) FROM event_runs WHERE user_id = 'bob')",
            [],
        )
        .expect("deletes");
    drop(prune);
    assert_eq!(bob_backlog_after(&store, 0).await, None);
    assert_eq!(bob_backlog_after(&store, 1).await, Some(vec![2, 3]));
    close(store).await;
}

#[tokio::test]
async fn the_indexer_keeps_the_write_ahead_log_near_its_limit_when_checkpoints_fall_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (deliveries, _) = tokio_mpsc::unbounded_channel();
    let limit = 256 * 1024;
    let config = StoreConfig {
        wal_limit_bytes: limit,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config, Arc::new(deliveries)).expect("store opens");
    // Stop the checkpointer, as if it never caught up: only the indexer can bound the log.
    let stopping = store.clone();
    tokio::task::spawn_blocking(move || stopping.stop_checkpointer())
        .await
        .expect("stops");
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let wal_size = || std::fs::metadata(&wal).map_or(0, |meta| meta.len());
    let mut largest = 0;
    // About 4 MB of messages, each indexed on its own (a read waits for it).
    let payload = "x".repeat(4000);
    for n in 0..1000u64 {
        let mut job = message_job(&format!("m{n}"), n);
        if let Some(WriteOp::AppendMessage { payload_data, .. }) = job.ops.last_mut() {
            payload_data.clone_from(&payload);
        }
        store.write(job).await.expect("commits");
        bob_head(&store).await;
        largest = largest.max(wal_size());
    }
    assert!(
        largest < 4 * limit,
        "the log reached {largest} bytes with a limit of {limit}"
    );
    assert_eq!(bob_head(&store).await, 1000);
    close(store).await;
}

#[tokio::test]
async fn a_run_that_links_to_a_later_one_fails_the_resume_instead_of_looping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    // Two runs of bob's, each indexed on its own (a read waits for it).
    for n in 1..=2 {
        store
            .write(message_job(&format!("m{n}"), n))
            .await
            .expect("commits");
        assert_eq!(bob_head(&store).await, n);
    }
    // Bob's newest run made to link to itself behind the store's back.
    let error = resume_bob_after(
        dir.path(),
        &store,
        "UPDATE event_runs SET prev_run = run_id WHERE run_id =
             (SELECT last_run FROM user_heads WHERE user_id = 'bob')",
    )
    .await;
    assert!(
        matches!(&error, StoreError::Corrupt(m) if m.contains("events of bob link to run")),
        "{error:?}"
    );
    close(store).await;
}

/// Scheduling policies of this process's threads named `name` (the kernel keeps 15 bytes of a
/// name): 0 normal, 5 idle.
#[cfg(target_os = "linux")]
fn policies_of_threads(name: &str) -> Vec<i64> {
    let mut policies = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("lists threads") {
        let dir = task.expect("reads a thread").path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        if comm.trim_end() != name {
            continue;
        }
        // Fields after the name in parentheses start at the third; the policy is the 41st.
        let after_name = &stat[stat.rfind(')').expect("stat has a name") + 2..];
        let field = after_name
            .split(' ')
            .nth(41 - 3)
            .expect("stat has a policy");
        policies.push(field.parse().expect("the policy is a number"));
    }
    policies
}

const BACKGROUND_THREADS: [&str; 2] = ["beckon-store-in", "beckon-store-ch"];
const COMMIT_PATH_THREADS: [&str; 2] = ["beckon-store-sy", "beckon-store-wr"];

/// Opens a store and waits until its four threads have named themselves and background ones
/// of `background_policy` are running (a thread names itself after it starts, so finding the
/// names of other tests' stores is not enough).
#[cfg(target_os = "linux")]
fn open_and_wait_for_threads(
    dir: &Path,
    background_threads: BackgroundThreads,
    background_policy: i64,
) -> Store {
    let (deliveries, _) = tokio_mpsc::unbounded_channel();
    let config = StoreConfig {
        background_threads,
        ..StoreConfig::default()
    };
    let store = Store::open(dir, config, Arc::new(deliveries)).expect("store opens");
    let deadline = std::time::Instant::now() + NOT_WITHIN;
    let started = || {
        BACKGROUND_THREADS.iter().all(|name| {
            let policies = policies_of_threads(name);
            policies.contains(&background_policy)
        }) && COMMIT_PATH_THREADS
            .iter()
            .all(|name| !policies_of_threads(name).is_empty())
    };
    while !started() {
        assert!(
            std::time::Instant::now() < deadline,
            "policies of {BACKGROUND_THREADS:?}: {:?}, of {COMMIT_PATH_THREADS:?}: {:?}",
            BACKGROUND_THREADS.map(policies_of_threads),
            COMMIT_PATH_THREADS.map(policies_of_threads)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    store
}

#[cfg(target_os = "linux")]
const SCHED_IDLE: i64 = 5;

#[cfg(target_os = "linux")]
#[tokio::test]
async fn with_idle_background_threads_the_indexer_and_the_checkpointer_run_under_the_idle_policy_and_the_commit_path_does_not(
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_and_wait_for_threads(dir.path(), BackgroundThreads::Idle, SCHED_IDLE);
    for name in COMMIT_PATH_THREADS {
        let policies = policies_of_threads(name);
        assert!(policies.iter().all(|&p| p == 0), "{name}: {policies:?}");
    }
    close(store).await;
}

/// With `BackgroundThreads::Normal` no store thread leaves the normal policy.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn with_normal_background_threads_every_store_thread_keeps_the_normal_policy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_and_wait_for_threads(dir.path(), BackgroundThreads::Normal, 0);
    // Stores of tests running beside this one share the thread names; this store's threads
    // are among them, and only stores opened with another setting have idle ones.
    for name in BACKGROUND_THREADS.iter().chain(&COMMIT_PATH_THREADS) {
        assert!(
            policies_of_threads(name).contains(&0),
            "{name}: {:?}",
            policies_of_threads(name)
        );
    }
    close(store).await;
}

/// A message from `from` to bob in their one-to-one conversation.
fn message_to_bob_job(from: &str, id: &str, time: u64) -> WriteJob {
    let mut job = message_job(id, time);
    if let Some(WriteOp::AppendMessage {
        conversation,
        participants,
        from: sender,
        ..
    }) = job.ops.last_mut()
    {
        *conversation = ConversationRef::c2c(from, "bob");
        *participants = vec![from.to_owned(), "bob".into()];
        *sender = from.to_owned();
    }
    job.ops.insert(
        0,
        WriteOp::EnsureUser {
            user_id: from.to_owned(),
        },
    );
    job
}

/// Writes a message from `from` to bob and returns the number it got in their conversation.
async fn sequence_of_message_to_bob(store: &Store, from: &str, id: &str, time: u64) -> u64 {
    let report = store
        .write(message_to_bob_job(from, id, time))
        .await
        .expect("commits");
    report.messages[0].stored.sequence
}

/// Bob's history with `peer`, pages of `count` walked from the newest: the IDs of each page.
async fn pages_of_bob_history(store: &Store, peer: &str, count: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = store
            .messages(
                "bob".into(),
                ConversationRef::c2c(peer, "bob"),
                before.clone(),
                count,
            )
            .await
            .expect("reads")
            .expect("the cursor is known");
        pages.push(page.message_list.iter().map(|m| m.id.clone()).collect());
        if page.is_completed {
            return pages;
        }
        before = Some(page.next_req_message_id);
    }
}

/// Seven messages from alice and five from carol to bob, interleaved, some in one commit.
async fn write_two_conversations(store: &Store) {
    for n in 1..=5u64 {
        let (alice, carol) = tokio::join!(
            store.write(message_to_bob_job("alice", &format!("a{n}"), n)),
            store.write(message_to_bob_job("carol", &format!("c{n}"), n)),
        );
        alice.expect("commits");
        carol.expect("commits");
    }
    for n in 6..=7u64 {
        store
            .write(message_to_bob_job("alice", &format!("a{n}"), n))
            .await
            .expect("commits");
    }
}

/// A data directory holding `write_two_conversations`, its store closed.
async fn closed_store_with_two_conversations() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    write_two_conversations(&store).await;
    close(store).await;
    dir
}

fn ids(prefix: &str, range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|n| format!("{prefix}{n}")).collect()
}

#[tokio::test]
async fn history_pages_walk_back_one_conversation_among_interleaved_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    write_two_conversations(&store).await;
    let alice = vec![ids("a", 5..=7), ids("a", 2..=4), ids("a", 1..=1)];
    assert_eq!(pages_of_bob_history(&store, "alice", 3).await, alice);
    let carol = vec![ids("c", 1..=5)];
    assert_eq!(pages_of_bob_history(&store, "carol", 5).await, carol);
    assert_eq!(
        pages_of_bob_history(&store, "dave", 5).await,
        vec![Vec::<String>::new()],
        "a conversation without messages is an empty last page"
    );
    // A cursor from another conversation is not one of this conversation's messages.
    let page = store
        .messages(
            "bob".into(),
            ConversationRef::c2c("alice", "bob"),
            Some("c3".into()),
            5,
        )
        .await
        .expect("reads");
    assert!(page.is_none(), "{page:?}");
    // Numbering goes on after a restart, from the conversation's head.
    close(store).await;
    let store = open(dir.path());
    assert_eq!(
        sequence_of_message_to_bob(&store, "carol", "c6", 6).await,
        6
    );
    assert_eq!(
        pages_of_bob_history(&store, "carol", 4).await,
        vec![ids("c", 3..=6), ids("c", 1..=2)]
    );
    close(store).await;
}

#[tokio::test]
async fn a_version_6_database_links_its_messages_and_pages_its_history_as_before() {
    let dir = closed_store_with_two_conversations().await;
    // What version 6 had: the (conv_key, seq) index, no links and no heads.
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    tables
        .execute_batch(
            "CREATE UNIQUE INDEX messages_conv_seq ON messages(conv_key, seq);
             UPDATE messages SET prev_message_id = NULL;
             DELETE FROM conversation_heads;
             PRAGMA user_version = 6;",
        )
        .expect("goes back to version 6");
    drop(tables);

    let store = open(dir.path());
    let alice = vec![ids("a", 4..=7), ids("a", 1..=3)];
    assert_eq!(pages_of_bob_history(&store, "alice", 4).await, alice);
    assert_eq!(
        pages_of_bob_history(&store, "carol", 2).await,
        vec![ids("c", 4..=5), ids("c", 2..=3), ids("c", 1..=1)]
    );
    assert_eq!(
        sequence_of_message_to_bob(&store, "alice", "a8", 8).await,
        8
    );
    assert_eq!(
        pages_of_bob_history(&store, "alice", 5).await,
        vec![ids("a", 4..=8), ids("a", 1..=3)]
    );
    close(store).await;
    let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
    let (version, index): (i64, i64) = tables
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM sqlite_master WHERE name = 'messages_conv_seq')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("reads");
    assert_eq!((version, index), (7, 0), "version 7, without the index");
}

#[tokio::test]
async fn a_history_link_to_a_missing_message_or_to_another_conversation_is_an_error() {
    let dir = closed_store_with_two_conversations().await;
    for (link, expected) in [
        ("gone", "links to a missing message gone"),
        ("c2", "links to message c2 of another conversation"),
    ] {
        let tables = rusqlite::Connection::open(dir.path().join("beckon.sqlite3")).expect("opens");
        tables
            .execute(
                "UPDATE messages SET prev_message_id = ?1 WHERE message_id = 'a5'",
                [link],
            )
            .expect("damages the link");
        drop(tables);
        let store = open(dir.path());
        let page = store
            .messages("bob".into(), ConversationRef::c2c("alice", "bob"), None, 5)
            .await;
        match page {
            Err(StoreError::Corrupt(message)) => assert!(message.contains(expected), "{message}"),
            other => panic!("{link}: {other:?}"),
        }
        // The messages before the damage still page.
        let newest = store
            .messages("bob".into(), ConversationRef::c2c("alice", "bob"), None, 2)
            .await
            .expect("reads")
            .expect("conversation exists");
        let ids: Vec<_> = newest.message_list.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a6", "a7"]);
        close(store).await;
    }
}
