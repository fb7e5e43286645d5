//! The indexer thread: applies journaled records to the queryable tables, behind the writer.
//!
//! Its commits need no `fsync` of their own (`synchronous=NORMAL`): the journal already holds
//! every record durably, and the position applied is stored in the same transaction, so after
//! a crash the tables are at some earlier position and the journal replays the rest exactly
//! once. Four times a second one commit is made durable (`synchronous=FULL`); journal segments
//! up to that position may then be reused. Taking every queued batch into one transaction lets
//! many actions share each dirty page.

use crate::event_runs::{self, KeptEvent, MAX_EVENTS_PER_RUN};
use crate::journal::Record;
use crate::priority::{Background, ThreadPolicy};
use crate::{now_ms, StoreConfig, StoreError};
use beckon_core::Invitation;
use foldhash::HashMap;
use rusqlite::{params, Connection, OptionalExtension};
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Most records handed to the indexer and not yet applied before the committer waits: a burst
/// it cannot keep up with then slows the writers instead of piling up in memory (creating a
/// million invitations once held about a gigabyte of records here). About two full commits.
const MAX_QUEUED_RECORDS: usize = 2 * MAX_RECORDS_PER_COMMIT;
/// Records queued at which an idle-policy indexer counts as starved (see `priority.rs`): three
/// quarters of the bound, so a busy moment of the server's own does not count, with room left
/// for the raised thread to notice before the committer has to wait.
pub(crate) const STARVED_AT_RECORDS: usize = MAX_QUEUED_RECORDS * 3 / 4;

/// The count of records queued for the indexer, which bounds the committer, and what ends
/// the indexer's gathering early. The indexer gathers without being woken by each sync (at
/// 10,000 actions a second that was 2,000 wake-ups a second of the committer's own time).
#[derive(Default)]
pub(crate) struct Backlog {
    state: Mutex<BacklogState>,
    drained: Condvar,
    /// Notified when a commit's worth of records is queued or a reader waits.
    apply_now: Condvar,
}

#[derive(Default)]
struct BacklogState {
    records: usize,
    /// The indexer has stopped: nobody will drain the queue.
    closed: bool,
    /// Committers waiting for room (one at most; counted for tests).
    waiting: usize,
    /// A reader waits for committed records, or the committer has stopped: apply what is
    /// queued now.
    asked: bool,
}

impl Backlog {
    /// Counts `records` about to be queued, first waiting while the queue is full (a batch
    /// larger than the bound goes into an empty queue). Returns the count queued then.
    pub(crate) fn add(&self, records: usize) -> usize {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.closed && state.records > 0 && state.records + records > MAX_QUEUED_RECORDS {
            state.waiting += 1;
            state = self
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
        state.records += records;
        if state.records >= MAX_RECORDS_PER_COMMIT {
            self.apply_now.notify_one();
        }
        state.records
    }

    fn queued(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records
    }

    /// Asks a gathering indexer to apply what is queued without waiting for more.
    pub(crate) fn ask_to_apply(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .asked = true;
        self.apply_now.notify_one();
    }

    /// Waits while the indexer gathers, at most `timeout`; true if it should apply now (a
    /// reader waits or a commit's worth is queued). Takes the reader's request.
    fn wait_while_gathering(&self, timeout: Duration) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut state, _) = self
            .apply_now
            .wait_timeout_while(state, timeout, |state| {
                !state.asked && state.records < MAX_RECORDS_PER_COMMIT
            })
            .unwrap_or_else(PoisonError::into_inner);
        let now = state.asked || state.records >= MAX_RECORDS_PER_COMMIT;
        state.asked = false;
        now
    }

    fn remove(&self, records: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.records = state.records.saturating_sub(records);
        self.drained.notify_all();
    }

    fn close(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.drained.notify_all();
    }
}

/// A committed journal batch for the indexer.
pub(crate) type Batch = (u64, Vec<Record>);
/// The batches of one journal sync, in order, as the committer hands them over.
pub(crate) type Synced = Vec<Batch>;

/// Time between durable commits of the indexed tables: bounds how much journal is kept, and
/// keeps each flush small (see the checkpoint interval).
const DURABLE_EVERY: Duration = Duration::from_millis(250);
/// Most records applied in one transaction, so readers waiting for it are not held long.
const MAX_RECORDS_PER_COMMIT: usize = 50_000;
/// Longest interval between prunes of old events (shorter when the retention is short).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PRUNE_CHUNK: i64 = 20_000;

pub(crate) struct Indexer {
    conn: Connection,
    event_retention_ms: u64,
    /// The tables' write-ahead log, and the size past which it is checkpointed whole.
    wal_path: PathBuf,
    wal_limit_bytes: u64,
    gather_for: Duration,
    applied_pos: u64,
    /// Newest position applied and committed; readers wait on it.
    applied: watch::Sender<u64>,
    /// Newest position applied and on disk; the writer deletes the journal up to it.
    durable: Arc<AtomicU64>,
    last_durable: Instant,
    last_prune: Instant,
    /// Records queued and not yet applied; the committer waits on it.
    pub(crate) backlog: Arc<Backlog>,
    /// The indexer thread's scheduling policy, followed between records (none while the
    /// opening thread replays the journal).
    policy: Option<ThreadPolicy>,
}

impl Indexer {
    pub(crate) fn new(
        conn: Connection,
        config: &StoreConfig,
        wal_path: PathBuf,
        durable: Arc<AtomicU64>,
    ) -> Result<(Self, watch::Receiver<u64>), StoreError> {
        let applied_pos: i64 = conn.query_row(
            "SELECT coalesce((SELECT value FROM meta WHERE key = 'applied_pos'), 0)",
            [],
            |row| row.get(0),
        )?;
        let applied_pos = applied_pos as u64;
        durable.store(applied_pos, Ordering::Release);
        let (applied, applied_rx) = watch::channel(applied_pos);
        Ok((
            Self {
                conn,
                event_retention_ms: config.event_retention_ms,
                wal_path,
                wal_limit_bytes: config.wal_limit_bytes,
                gather_for: config.index_gather,
                applied_pos,
                applied,
                durable,
                last_durable: Instant::now(),
                last_prune: Instant::now(),
                backlog: Arc::new(Backlog::default()),
                policy: None,
            },
            applied_rx,
        ))
    }

    pub(crate) fn applied_pos(&self) -> u64 {
        self.applied_pos
    }

    /// Applies batches the writer commits until it stops, then makes everything durable.
    pub(crate) fn run(
        mut self,
        batches: &mpsc::Receiver<Synced>,
        failure: &watch::Sender<Option<String>>,
        background: &Arc<Background>,
    ) {
        self.policy = Some(background.enter("indexer"));
        loop {
            let first = match batches.recv_timeout(self.prune_interval().min(DURABLE_EVERY)) {
                Ok(batch) => batch,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.settle_policy();
                    if let Err(error) = self.idle_work() {
                        tracing::warn!(%error, "indexer upkeep failed; will retry");
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let pending = self.gather(first, batches);
            let durable = self.last_durable.elapsed() >= DURABLE_EVERY;
            if let Err(error) = self.apply(&pending, durable) {
                tracing::error!(%error, "indexing committed records failed");
                failure.send_replace(Some(format!("indexing failed: {error}")));
                self.backlog.close();
                // Dropping `applied` tells waiting readers; the journal keeps everything.
                return;
            }
            self.backlog
                .remove(pending.iter().map(|(_, records)| records.len()).sum());
            self.settle_policy();
            self.bound_wal();
            if let Err(error) = self.prune_if_due() {
                tracing::warn!(%error, "pruning old events failed; will retry");
            }
        }
        self.backlog.close();
        if let Err(error) = self.apply(&[], true) {
            tracing::warn!(%error, "final durable commit of the indexed tables failed");
        }
        tracing::debug!("store indexer stopped");
    }

    /// Collects batches for one transaction: for `StoreConfig::index_gather`, until a
    /// commit's worth is queued, or until a reader waits (it asks the backlog). Between those
    /// it sleeps instead of being woken by each sync.
    fn gather(&self, first: Synced, batches: &mpsc::Receiver<Synced>) -> Vec<Batch> {
        let deadline = Instant::now() + self.gather_for;
        let mut records = 0;
        let mut pending = Vec::new();
        let mut take = |synced: Synced, pending: &mut Vec<Batch>| {
            records += synced.iter().map(|(_, batch)| batch.len()).sum::<usize>();
            pending.extend(synced);
            records >= MAX_RECORDS_PER_COMMIT
        };
        if take(first, &mut pending) {
            return pending;
        }
        let mut apply_now = false;
        loop {
            loop {
                match batches.try_recv() {
                    Ok(batch) => {
                        if take(batch, &mut pending) {
                            return pending;
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return pending,
                }
            }
            if apply_now {
                return pending;
            }
            self.follow_policy();
            // The committer queues a sync before it counts it committed, so what a waiting
            // reader needs is in the queue when it is drained once more.
            let left = deadline.saturating_duration_since(Instant::now());
            apply_now = left.is_zero() || self.backlog.wait_while_gathering(left);
        }
    }

    /// Checkpoints the whole write-ahead log once it is past its limit, between two of the
    /// indexer's own transactions (the only moment no writer holds it), so that the next one
    /// starts the log over; the queue meanwhile holds the writers back.
    fn bound_wal(&self) {
        let size = std::fs::metadata(&self.wal_path).map_or(0, |meta| meta.len());
        if size <= self.wal_limit_bytes {
            return;
        }
        match self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
                row.get::<_, i64>(0)
            }) {
            Ok(0) => tracing::info!(bytes = size, "checkpointed the whole write-ahead log"),
            // A read held it past the busy timeout; tried again after the next commit.
            Ok(_) => tracing::warn!(
                bytes = size,
                "the write-ahead log could not be checkpointed whole"
            ),
            Err(error) => tracing::warn!(%error, "checkpoint of the write-ahead log failed"),
        }
    }

    fn idle_work(&mut self) -> Result<(), StoreError> {
        if self.durable.load(Ordering::Acquire) < self.applied_pos {
            self.apply(&[], true)?;
        }
        self.prune_if_due()
    }

    /// Applies `batches` in one transaction; `durable` commits it with an `fsync`.
    pub(crate) fn apply(&mut self, batches: &[Batch], durable: bool) -> Result<(), StoreError> {
        if durable {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let result = self.apply_inner(batches);
        if durable {
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let applied = result?;
        self.applied_pos = applied;
        self.applied.send_replace(applied);
        if durable {
            self.durable.store(applied, Ordering::Release);
            self.last_durable = Instant::now();
        }
        Ok(())
    }

    /// Between transactions: withdraws a raise once the queue is short (an eighth of its
    /// bound) and takes the scheduling policy asked for.
    fn settle_policy(&self) {
        if let Some(policy) = &self.policy {
            policy.settle(self.backlog.queued(), MAX_QUEUED_RECORDS / 8);
            policy.follow();
        }
    }

    /// Takes the scheduling policy asked for, if it changed (see `priority.rs`).
    #[inline]
    fn follow_policy(&self) {
        if let Some(policy) = &self.policy {
            policy.follow();
        }
    }

    fn apply_inner(&self, batches: &[Batch]) -> Result<u64, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut summed = Summed::default();
        let mut applied = self.applied_pos;
        // The statements of every action are looked up once per transaction: hashing the SQL
        // to find a cached statement for each record was a measurable part of indexing.
        let mut insert_message = tx.prepare_cached(INSERT_MESSAGE)?;
        for (pos, records) in batches {
            for record in records {
                apply_record(&tx, record, &mut summed, &mut insert_message)?;
                self.follow_policy();
            }
            applied = *pos;
        }
        drop(insert_message);
        for change in summed.invitations.values() {
            write_invitation(&tx, change)?;
            self.follow_policy();
        }
        for (key, change) in &summed.conversations {
            upsert_conversation(&tx, *key, change)?;
            self.follow_policy();
        }
        for (conv_key, head) in &summed.conversation_heads {
            if let Some(last_message_id) = &head.last_message_id {
                tx.prepare_cached(
                    "INSERT INTO conversation_heads(conv_key, seq, last_message_id)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT(conv_key) DO UPDATE SET
                        seq = excluded.seq, last_message_id = excluded.last_message_id",
                )?
                .execute(params![conv_key, head.seq, last_message_id.as_ref()])?;
            }
        }
        for (user, events) in &summed.events {
            keep_events(&tx, user, events)?;
            self.follow_policy();
        }
        tx.prepare_cached(
            "INSERT INTO meta(key, value) VALUES ('applied_pos', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )?
        .execute([applied as i64])?;
        tx.commit()?;
        Ok(applied)
    }

    fn prune_interval(&self) -> Duration {
        PRUNE_EVERY.min(Duration::from_millis(
            (self.event_retention_ms / 2).max(100),
        ))
    }

    fn prune_if_due(&mut self) -> Result<(), StoreError> {
        if self.last_prune.elapsed() < self.prune_interval() {
            return Ok(());
        }
        self.last_prune = Instant::now();
        let cutoff = now_ms().saturating_sub(self.event_retention_ms) as i64;
        // Runs are in the order written: everything before the first one young enough to keep
        // goes (a run written out of time order is kept a little longer, never cut short).
        let keep_from: Option<i64> = self
            .conn
            .query_row(
                "SELECT run_id FROM event_runs WHERE newest_ms >= ?1 ORDER BY run_id LIMIT 1",
                [cutoff],
                |row| row.get(0),
            )
            .optional()?;
        let keep_from = keep_from.unwrap_or(i64::MAX);
        // In chunks, so a large prune never holds the indexer for long.
        loop {
            let deleted = self.conn.execute(
                "DELETE FROM event_runs WHERE run_id IN
                    (SELECT run_id FROM event_runs WHERE run_id < ?1 ORDER BY run_id LIMIT ?2)",
                params![keep_from, PRUNE_CHUNK],
            )?;
            if (deleted as i64) < PRUNE_CHUNK {
                return Ok(());
            }
        }
    }
}

/// Row changes summed over one transaction and written once at its end: each invitation's
/// newest state, a user's events (written as runs), and each conversation row's unread count
/// and last message. Under load an invitation is often answered, and a conversation gets several
/// messages, within one transaction; one write then stands for all of them.
#[derive(Default)]
struct Summed<'r> {
    invitations: HashMap<&'r str, InvitationChange<'r>>,
    /// Each user's events, in order (the writer numbers them in commit order).
    events: HashMap<&'r str, Vec<KeptEvent<'r>>>,
    conversations: HashMap<(&'r str, &'r str), ConversationChange<'r>>,
    /// Each conversation's newest message so far, which the next one links to.
    conversation_heads: HashMap<&'r str, ConversationHead<'r>>,
}

/// A conversation's newest message number and ID.
struct ConversationHead<'r> {
    seq: i64,
    last_message_id: Option<Cow<'r, str>>,
}

/// An invitation's newest state in one transaction.
struct InvitationChange<'r> {
    invitation: &'r Invitation,
    /// First stored in this transaction (an insert rather than an update).
    inserted: bool,
    /// Invitees whose pending row this transaction adds (still pending at its end).
    pending: Vec<&'r str>,
}

/// A new invitation's ID, which stays when the invitation ends.
const INSERT_INVITE_ID: &str = "INSERT OR IGNORE INTO invite_ids(invite_id) VALUES (?1)";
/// An active invitation's newest state, first stored or updated in place.
const UPSERT_ACTIVE: &str =
    "INSERT INTO active_invitations(deadline_ms, invite_id, body) VALUES (?1, ?2, ?3)
     ON CONFLICT(deadline_ms, invite_id) DO UPDATE SET body = excluded.body";
const DELETE_ACTIVE: &str =
    "DELETE FROM active_invitations WHERE deadline_ms = ?1 AND invite_id = ?2";
const INSERT_MESSAGE: &str =
    "INSERT INTO messages(message_id, conv_key, seq, from_user, time_s, payload_data, excluded,
         prev_message_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Writes an invitation's newest state: its row among the active ones, or the removal of that
/// row once it has ended (an invitation that starts and ends in one transaction leaves only
/// its ID).
fn write_invitation(tx: &Connection, change: &InvitationChange<'_>) -> Result<(), StoreError> {
    let invitation = change.invitation;
    let deadline_ms = invitation.deadline_ms as i64;
    if change.inserted {
        tx.prepare_cached(INSERT_INVITE_ID)?
            .execute([&invitation.invite_id])?;
    }
    if invitation.is_active() {
        let body =
            serde_json::to_string(invitation).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.prepare_cached(UPSERT_ACTIVE)?.execute(params![
            deadline_ms,
            invitation.invite_id,
            body
        ])?;
    } else if !change.inserted {
        tx.prepare_cached(DELETE_ACTIVE)?
            .execute(params![deadline_ms, invitation.invite_id])?;
    }
    // Most invitations are answered within the transaction that added them: nothing to add.
    if change.pending.is_empty() {
        return Ok(());
    }
    let mut pending = tx.prepare_cached(
        "INSERT OR IGNORE INTO pending_invitees(user_id, deadline_ms, invite_id) VALUES (?1, ?2, ?3)",
    )?;
    for user in &change.pending {
        pending.execute(params![user, deadline_ms, invitation.invite_id])?;
    }
    Ok(())
}

/// What the messages of one transaction do to one (owner, conversation) row.
#[derive(Default)]
struct ConversationChange<'r> {
    unread: i64,
    /// The newest message that counts as the last one, if any did.
    last_message_id: Option<&'r str>,
    updated_ms: i64,
}

/// Writes a user's events of one transaction as runs of at most `MAX_EVENTS_PER_RUN`, at the
/// end of the table, each linked to the user's run before it; the user's head then names the
/// newest.
fn keep_events(tx: &Connection, user: &str, events: &[KeptEvent<'_>]) -> Result<(), StoreError> {
    let mut prev_run: Option<i64> = tx
        .prepare_cached("SELECT last_run FROM user_heads WHERE user_id = ?1")?
        .query_row([user], |row| row.get(0))
        .optional()?
        .flatten();
    let mut insert = tx.prepare_cached(
        "INSERT INTO event_runs(user_id, first_seq, last_seq, newest_ms, prev_run, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut head = 0;
    for run in events.chunks(MAX_EVENTS_PER_RUN) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            continue;
        };
        let newest_ms = run.iter().map(|e| e.created_ms).max().unwrap_or(0);
        insert.execute(params![
            user,
            first.seq as i64,
            last.seq as i64,
            newest_ms as i64,
            prev_run,
            event_runs::encode(run)?
        ])?;
        prev_run = Some(tx.last_insert_rowid());
        head = head.max(last.seq);
    }
    tx.prepare_cached(
        "INSERT INTO user_heads(user_id, seq, last_run) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id) DO UPDATE SET
            seq = max(seq, excluded.seq), last_run = excluded.last_run",
    )?
    .execute(params![user, head as i64, prev_run])?;
    Ok(())
}

fn upsert_conversation(
    tx: &Connection,
    (owner, conv_key): (&str, &str),
    change: &ConversationChange<'_>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO conversations(owner, conv_key, unread, last_message_id, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(owner, conv_key) DO UPDATE SET
            unread = unread + excluded.unread,
            last_message_id = coalesce(excluded.last_message_id, last_message_id),
            updated_ms = max(updated_ms, excluded.updated_ms)",
    )?
    .execute(params![
        owner,
        conv_key,
        change.unread,
        change.last_message_id,
        change.updated_ms
    ])?;
    Ok(())
}

fn apply_record<'r>(
    tx: &Connection,
    record: &'r Record,
    summed: &mut Summed<'r>,
    insert_message: &mut rusqlite::CachedStatement<'_>,
) -> Result<(), StoreError> {
    match record {
        Record::User {
            user_id,
            created_ms,
        } => {
            tx.prepare_cached("INSERT OR IGNORE INTO users(user_id, created_ms) VALUES (?1, ?2)")?
                .execute(params![user_id, *created_ms as i64])?;
        }
        Record::Invitation {
            invitation,
            inserted,
            resolved,
        } => {
            let change = summed
                .invitations
                .entry(invitation.invite_id.as_str())
                .or_insert_with(|| InvitationChange {
                    invitation,
                    inserted: false,
                    pending: Vec::new(),
                });
            change.invitation = invitation;
            if *inserted {
                change.inserted = true;
                change.pending.extend(invitation.pending());
            }
            for user in resolved {
                // Added in this transaction: it never reaches the table.
                if let Some(at) = change.pending.iter().position(|p| *p == user.as_str()) {
                    change.pending.swap_remove(at);
                } else {
                    // Looked up in the statement cache only when needed: hashing the SQL
                    // for every record was a measurable part of indexing.
                    tx.prepare_cached(
                        "DELETE FROM pending_invitees
                         WHERE user_id = ?1 AND deadline_ms = ?2 AND invite_id = ?3",
                    )?
                    .execute(params![
                        user,
                        invitation.deadline_ms as i64,
                        invitation.invite_id
                    ])?;
                }
            }
        }
        Record::Message {
            message_id,
            conv_key,
            seq,
            from,
            time_s,
            payload_data,
            excluded,
            participants,
            updated_ms,
        } => {
            let head = match summed.conversation_heads.entry(conv_key.as_str()) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    let stored = tx
                        .prepare_cached(
                            "SELECT seq, last_message_id FROM conversation_heads WHERE conv_key = ?1",
                        )?
                        .query_row([conv_key], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()?;
                    let (seq, last_message_id) = stored
                        .map_or((0, None), |(seq, id): (i64, String)| {
                            (seq, Some(Cow::Owned(id)))
                        });
                    entry.insert(ConversationHead {
                        seq,
                        last_message_id,
                    })
                }
            };
            insert_message.execute(params![
                message_id,
                conv_key,
                *seq as i64,
                from,
                *time_s as i64,
                payload_data,
                i64::from(*excluded),
                head.last_message_id.as_deref()
            ])?;
            head.seq = head.seq.max(*seq as i64);
            head.last_message_id = Some(Cow::Borrowed(message_id.as_str()));
            for participant in participants {
                let change = summed
                    .conversations
                    .entry((participant.as_str(), conv_key.as_str()))
                    .or_default();
                change.unread += i64::from(!*excluded && participant != from);
                if !*excluded {
                    change.last_message_id = Some(message_id.as_str());
                    change.updated_ms = change.updated_ms.max(*updated_ms as i64);
                }
            }
        }
        Record::Rewrite {
            message_id,
            payload_data,
        } => {
            tx.prepare_cached("UPDATE messages SET payload_data = ?2 WHERE message_id = ?1")?
                .execute(params![message_id, payload_data])?;
        }
        Record::Event {
            user_id,
            seq,
            origin,
            created_ms,
            stored,
        } => {
            summed
                .events
                .entry(user_id.as_str())
                .or_default()
                .push(KeptEvent {
                    seq: *seq,
                    origin: origin.as_deref().map(Cow::Borrowed),
                    created_ms: *created_ms,
                    stored: Cow::Borrowed(stored),
                });
        }
        Record::CreateGroup { group } => {
            tx.prepare_cached(
                "INSERT INTO groups(group_id, name, kind, owner, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(group_id) DO NOTHING",
            )?
            .execute(params![
                group.group_id,
                group.name,
                group.kind,
                group.owner,
                group.created_at_ms as i64
            ])?;
            insert_members(tx, &group.group_id, &group.members)?;
        }
        Record::AddMembers { group_id, members } => insert_members(tx, group_id, members)?,
        Record::RemoveMembers { group_id, user_ids } => {
            let mut delete = tx
                .prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2")?;
            for user in user_ids {
                delete.execute(params![group_id, user])?;
            }
        }
        Record::DismissGroup { group_id } => {
            tx.prepare_cached("UPDATE groups SET dismissed = 1 WHERE group_id = ?1")?
                .execute([group_id])?;
            tx.prepare_cached("DELETE FROM group_members WHERE group_id = ?1")?
                .execute([group_id])?;
        }
        Record::MarkRead { user_id, conv_key } => {
            // Messages before it in this transaction land first, so it clears them too.
            if let Some(change) = summed
                .conversations
                .remove(&(user_id.as_str(), conv_key.as_str()))
            {
                upsert_conversation(tx, (user_id, conv_key), &change)?;
            }
            tx.prepare_cached(
                "UPDATE conversations SET unread = 0 WHERE owner = ?1 AND conv_key = ?2",
            )?
            .execute(params![user_id, conv_key])?;
        }
    }
    Ok(())
}

fn insert_members(
    tx: &Connection,
    group_id: &str,
    members: &[beckon_core::Member],
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO group_members(group_id, user_id, joined_ms) VALUES (?1, ?2, ?3)",
    )?;
    for member in members {
        insert.execute(params![
            group_id,
            member.user_id,
            member.joined_at_ms as i64
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(backlog: &Backlog) -> usize {
        backlog
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
    }

    /// Waits (for the event, not a time) until a committer is blocked on the backlog.
    fn until_blocked(backlog: &Backlog) {
        while waiting(backlog) == 0 {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_full_backlog_holds_the_committer_until_the_indexer_drains_or_stops() {
        let backlog = Arc::new(Backlog::default());
        // One batch larger than the bound goes into an empty queue.
        backlog.add(MAX_QUEUED_RECORDS + 1);
        let blocked = {
            let backlog = Arc::clone(&backlog);
            std::thread::spawn(move || backlog.add(10))
        };
        until_blocked(&backlog);
        assert!(!blocked.is_finished());
        backlog.remove(MAX_QUEUED_RECORDS + 1);
        blocked.join().expect("the committer goes on once drained");
        assert_eq!(waiting(&backlog), 0);
        backlog.remove(10);

        backlog.add(MAX_QUEUED_RECORDS);
        let blocked = {
            let backlog = Arc::clone(&backlog);
            std::thread::spawn(move || backlog.add(20))
        };
        until_blocked(&backlog);
        backlog.close();
        blocked
            .join()
            .expect("a stopped indexer never leaves the committer waiting");
    }
}
