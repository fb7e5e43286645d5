//! The writer thread: group commit, event and message numbering, and delivery hand-off.

use crate::{now_ms, StoreConfig, StoreError};
use beckon_core::{ConversationRef, Invitation, Notification, StoredMessage};
use beckon_proto::frames::EventFrame;
use beckon_proto::signaling::event;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

/// One unit of work, applied atomically with the others of its transaction.
#[derive(Debug, Clone)]
pub struct WriteJob {
    pub ops: Vec<WriteOp>,
    /// Instance (device) that caused the job; `skip_origin` events and its own message
    /// notifications are not sent back to it.
    pub origin: Option<String>,
    /// Events of this job go to connected devices only: not numbered, not kept.
    pub live_only: bool,
}

/// One change.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Records an account (no-op when it exists).
    EnsureUser { user_id: String },
    /// Stores a new invitation; if the ID is taken the whole job is skipped and reported as a
    /// conflict.
    InsertInvitation { invitation: Invitation },
    /// Stores an invitation's new state; `resolved` invitees leave the pending index.
    UpdateInvitation {
        invitation: Invitation,
        resolved: Vec<String>,
    },
    /// Appends a history message and tells every participant.
    AppendMessage {
        message_id: String,
        conversation: ConversationRef,
        participants: Vec<String>,
        from: String,
        time: u64,
        payload_data: String,
        excluded: bool,
    },
    /// Replaces a message's payload and tells every participant.
    RewriteMessage {
        message_id: String,
        payload_data: String,
        participants: Vec<String>,
        /// Who changed it: their acting device is not told.
        modified_by: String,
    },
    /// Sends one event.
    Notify(Notification),
    /// Stores a new group; if the ID was ever used the whole job is skipped and reported as a
    /// conflict.
    CreateGroup { group: beckon_core::Group },
    /// Adds members to a group.
    AddMembers {
        group_id: String,
        members: Vec<beckon_core::Member>,
    },
    /// Removes members from a group.
    RemoveMembers {
        group_id: String,
        user_ids: Vec<String>,
    },
    /// Marks a group dismissed and drops its members.
    DismissGroup { group_id: String },
    /// Clears a user's unread count in a conversation.
    MarkRead {
        user_id: String,
        conversation: ConversationRef,
    },
}

/// What a committed job produced.
#[derive(Debug, Clone, Default)]
pub struct JobReport {
    /// The invitation ID was already taken; nothing of the job was applied.
    pub conflict: bool,
    /// Messages the job appended or rewrote, as stored.
    pub messages: Vec<StoredMessage>,
}

/// An event ready to send: the server writes `frame` to every connection of `user_id`
/// except the one whose instance is `skip_instance`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub user_id: String,
    pub seq: Option<u64>,
    pub skip_instance: Option<String>,
    pub frame: Arc<str>,
}

pub(crate) enum Envelope {
    Job(WriteJob, oneshot::Sender<Result<JobReport, StoreError>>),
}

pub(crate) struct Writer {
    conn: Connection,
    config: StoreConfig,
    deliveries: tokio_mpsc::UnboundedSender<Vec<Delivery>>,
    numbers: Numbers,
    last_prune: Instant,
    /// Set after a failed commit; later jobs are refused without touching the database.
    failure: tokio::sync::watch::Sender<Option<String>>,
}

/// Cached sequence heads, loaded from the database on first use.
#[derive(Default)]
struct Numbers {
    /// Newest event number per user.
    user_heads: HashMap<String, u64>,
    /// Newest message number per conversation key.
    conversation_heads: HashMap<String, u64>,
}

/// Longest interval between prunes of old events (shorter when the retention is short).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PRUNE_CHUNK: i64 = 20_000;

struct Batch {
    deliveries: Vec<Delivery>,
    touched_users: HashMap<String, u64>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        config: StoreConfig,
        deliveries: tokio_mpsc::UnboundedSender<Vec<Delivery>>,
        failure: tokio::sync::watch::Sender<Option<String>>,
    ) -> Self {
        Self {
            conn,
            config,
            deliveries,
            numbers: Numbers::default(),
            last_prune: Instant::now(),
            failure,
        }
    }

    pub(crate) fn run(mut self, jobs: &mpsc::Receiver<Envelope>) {
        loop {
            let first = match jobs.recv_timeout(self.prune_interval()) {
                Ok(envelope) => envelope,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.prune_if_due();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < self.config.max_batch_jobs {
                match jobs.try_recv() {
                    Ok(envelope) => batch.push(envelope),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
            self.prune_if_due();
        }
        tracing::debug!("store writer stopped");
    }

    fn commit_batch(&mut self, envelopes: Vec<Envelope>) {
        if let Some(error) = self.failure.borrow().clone() {
            for Envelope::Job(_, reply) in envelopes {
                let _ = reply.send(Err(StoreError::Corrupt(format!(
                    "store failed earlier: {error}"
                ))));
            }
            return;
        }
        let mut batch = Batch {
            deliveries: Vec::new(),
            touched_users: HashMap::new(),
        };
        let mut reports = Vec::with_capacity(envelopes.len());
        let result = (|| -> Result<(), StoreError> {
            let tx = self.conn.unchecked_transaction()?;
            for Envelope::Job(job, _) in &envelopes {
                reports.push(self.numbers.apply_job(&tx, job, &mut batch)?);
            }
            for (user, seq) in &batch.touched_users {
                tx.prepare_cached(
                    "INSERT INTO user_heads(user_id, seq) VALUES (?1, ?2)
                     ON CONFLICT(user_id) DO UPDATE SET seq = excluded.seq",
                )?
                .execute(params![user, *seq as i64])?;
            }
            tx.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                if !batch.deliveries.is_empty() {
                    let _ = self.deliveries.send(batch.deliveries);
                }
                for (Envelope::Job(_, reply), report) in envelopes.into_iter().zip(reports) {
                    let _ = reply.send(Ok(report));
                }
            }
            Err(error) => {
                tracing::error!(%error, "store commit failed");
                // Cached numbers may be ahead of what was committed.
                self.numbers = Numbers::default();
                let text = error.to_string();
                self.failure.send_replace(Some(text.clone()));
                for Envelope::Job(_, reply) in envelopes {
                    let _ = reply.send(Err(StoreError::Corrupt(format!("commit failed: {text}"))));
                }
            }
        }
    }

    fn prune_interval(&self) -> Duration {
        PRUNE_EVERY.min(Duration::from_millis(
            (self.config.event_retention_ms / 2).max(100),
        ))
    }

    fn prune_if_due(&mut self) {
        if self.last_prune.elapsed() < self.prune_interval() {
            return;
        }
        self.last_prune = Instant::now();
        let cutoff = now_ms().saturating_sub(self.config.event_retention_ms) as i64;
        // In chunks, so a large prune never holds the writer for long.
        loop {
            let deleted = self.conn.execute(
                "DELETE FROM events WHERE (user_id, seq) IN
                    (SELECT user_id, seq FROM events WHERE created_ms < ?1 LIMIT ?2)",
                params![cutoff, PRUNE_CHUNK],
            );
            match deleted {
                Ok(n) if n as i64 == PRUNE_CHUNK => {}
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "pruning old events failed; will retry");
                    break;
                }
            }
        }
    }
}

impl Numbers {
    fn apply_job(
        &mut self,
        tx: &Connection,
        job: &WriteJob,
        batch: &mut Batch,
    ) -> Result<JobReport, StoreError> {
        let mut report = JobReport::default();
        let now = now_ms();
        for op in &job.ops {
            match op {
                WriteOp::EnsureUser { user_id } => {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO users(user_id, created_ms) VALUES (?1, ?2)",
                    )?
                    .execute(params![user_id, now as i64])?;
                }
                WriteOp::InsertInvitation { invitation } => {
                    let inserted = tx
                        .prepare_cached(
                            "INSERT INTO invitations(invite_id, active, body) VALUES (?1, ?2, ?3)
                             ON CONFLICT(invite_id) DO NOTHING",
                        )?
                        .execute(params![
                            invitation.invite_id,
                            i64::from(invitation.is_active()),
                            invitation_json(invitation)?
                        ])?;
                    if inserted == 0 {
                        report.conflict = true;
                        return Ok(report);
                    }
                    let mut pending = tx.prepare_cached(
                        "INSERT OR IGNORE INTO pending_invitees(user_id, invite_id) VALUES (?1, ?2)",
                    )?;
                    for user in invitation.pending() {
                        pending.execute(params![user, invitation.invite_id])?;
                    }
                }
                WriteOp::UpdateInvitation {
                    invitation,
                    resolved,
                } => {
                    tx.prepare_cached(
                        "UPDATE invitations SET active = ?2, body = ?3 WHERE invite_id = ?1",
                    )?
                    .execute(params![
                        invitation.invite_id,
                        i64::from(invitation.is_active()),
                        invitation_json(invitation)?
                    ])?;
                    let mut unpend = tx.prepare_cached(
                        "DELETE FROM pending_invitees WHERE user_id = ?1 AND invite_id = ?2",
                    )?;
                    for user in resolved {
                        unpend.execute(params![user, invitation.invite_id])?;
                    }
                }
                WriteOp::AppendMessage {
                    message_id,
                    conversation,
                    participants,
                    from,
                    time,
                    payload_data,
                    excluded,
                } => {
                    let key = conversation.key();
                    let seq = self.next_conversation_seq(tx, &key)?;
                    tx.prepare_cached(
                        "INSERT INTO messages(message_id, conv_key, seq, from_user, time_s, payload_data, excluded)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![message_id, key, seq as i64, from, *time as i64, payload_data, i64::from(*excluded)])?;
                    let stored = StoredMessage {
                        id: message_id.clone(),
                        conversation: conversation.clone(),
                        from: from.clone(),
                        sequence: seq,
                        time: *time,
                        payload_data: payload_data.clone(),
                        excluded: *excluded,
                    };
                    let mut upsert = tx.prepare_cached(
                        "INSERT INTO conversations(owner, conv_key, unread, last_message_id, updated_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT(owner, conv_key) DO UPDATE SET
                            unread = unread + excluded.unread,
                            last_message_id = coalesce(excluded.last_message_id, last_message_id),
                            updated_ms = max(updated_ms, excluded.updated_ms)",
                    )?;
                    for participant in participants {
                        let unread = i64::from(!*excluded && participant != from);
                        let last = (!*excluded).then_some(message_id.as_str());
                        let updated = if *excluded { 0 } else { now as i64 };
                        upsert.execute(params![participant, key, unread, last, updated])?;
                    }
                    self.message_events(
                        tx,
                        job,
                        batch,
                        &stored,
                        participants,
                        from,
                        event::MESSAGE_RECEIVED,
                        now,
                    )?;
                    report.messages.push(stored);
                }
                WriteOp::RewriteMessage {
                    message_id,
                    payload_data,
                    participants,
                    modified_by,
                } => {
                    tx.prepare_cached(
                        "UPDATE messages SET payload_data = ?2 WHERE message_id = ?1",
                    )?
                    .execute(params![message_id, payload_data])?;
                    if let Some(stored) = crate::reader::message(tx, message_id)? {
                        self.message_events(
                            tx,
                            job,
                            batch,
                            &stored,
                            participants,
                            modified_by,
                            event::MESSAGE_MODIFIED,
                            now,
                        )?;
                        report.messages.push(stored);
                    }
                }
                WriteOp::Notify(notification) => {
                    self.push_event(
                        tx,
                        job,
                        batch,
                        &notification.recipient,
                        notification.skip_origin,
                        notification.name,
                        notification.data.clone(),
                        now,
                        None,
                    )?;
                }
                WriteOp::CreateGroup { group } => {
                    let inserted = tx
                        .prepare_cached(
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
                    if inserted == 0 {
                        report.conflict = true;
                        return Ok(report);
                    }
                    insert_members(tx, &group.group_id, &group.members)?;
                }
                WriteOp::AddMembers { group_id, members } => insert_members(tx, group_id, members)?,
                WriteOp::RemoveMembers { group_id, user_ids } => {
                    let mut delete = tx.prepare_cached(
                        "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",
                    )?;
                    for user in user_ids {
                        delete.execute(params![group_id, user])?;
                    }
                }
                WriteOp::DismissGroup { group_id } => {
                    tx.prepare_cached("UPDATE groups SET dismissed = 1 WHERE group_id = ?1")?
                        .execute([group_id])?;
                    tx.prepare_cached("DELETE FROM group_members WHERE group_id = ?1")?
                        .execute([group_id])?;
                }
                WriteOp::MarkRead {
                    user_id,
                    conversation,
                } => {
                    tx.prepare_cached(
                        "UPDATE conversations SET unread = 0 WHERE owner = ?1 AND conv_key = ?2",
                    )?
                    .execute(params![user_id, conversation.key()])?;
                }
            }
        }
        Ok(report)
    }

    /// Tells every participant about a message (`name`: received or modified), rendered for
    /// each; the acting device of `actor` is skipped.
    #[allow(clippy::too_many_arguments)] // the batch context plus the message's attributes
    fn message_events(
        &mut self,
        tx: &Connection,
        job: &WriteJob,
        batch: &mut Batch,
        stored: &StoredMessage,
        participants: &[String],
        actor: &str,
        name: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let kept = message_ref(name, &stored.id);
        for participant in participants {
            let data = serde_json::to_value([stored.render_for(participant)])
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let skip = participant == actor;
            self.push_event(
                tx,
                job,
                batch,
                participant,
                skip,
                name,
                data,
                now,
                Some(&kept),
            )?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // one event's every attribute; a struct would only rename them
    fn push_event(
        &mut self,
        tx: &Connection,
        job: &WriteJob,
        batch: &mut Batch,
        user: &str,
        skip_origin: bool,
        name: &str,
        data: serde_json::Value,
        now: u64,
        kept_as: Option<&str>,
    ) -> Result<(), StoreError> {
        let skip_instance = if skip_origin {
            job.origin.clone()
        } else {
            None
        };
        if job.live_only {
            let frame = event_frame(name, None, data)?;
            batch.deliveries.push(Delivery {
                user_id: user.to_owned(),
                seq: None,
                skip_instance,
                frame,
            });
            return Ok(());
        }
        let seq = self.next_user_seq(tx, user)?;
        batch.touched_users.insert(user.to_owned(), seq);
        let frame = event_frame(name, Some(seq), data)?;
        tx.prepare_cached("INSERT INTO events(user_id, seq, origin, created_ms, frame) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![user, seq as i64, skip_instance, now as i64, kept_as.unwrap_or(&frame)])?;
        batch.deliveries.push(Delivery {
            user_id: user.to_owned(),
            seq: Some(seq),
            skip_instance,
            frame,
        });
        Ok(())
    }

    fn next_user_seq(&mut self, tx: &Connection, user: &str) -> Result<u64, StoreError> {
        let head = if let Some(head) = self.user_heads.get_mut(user) {
            head
        } else {
            {
                let stored: Option<i64> = tx
                    .prepare_cached("SELECT seq FROM user_heads WHERE user_id = ?1")?
                    .query_row([user], |row| row.get(0))
                    .optional()?;
                self.user_heads
                    .entry(user.to_owned())
                    .or_insert(stored.unwrap_or(0) as u64)
            }
        };
        *head += 1;
        Ok(*head)
    }

    fn next_conversation_seq(&mut self, tx: &Connection, key: &str) -> Result<u64, StoreError> {
        let head = if let Some(head) = self.conversation_heads.get_mut(key) {
            head
        } else {
            {
                let stored: Option<i64> = tx
                    .prepare_cached("SELECT max(seq) FROM messages WHERE conv_key = ?1")?
                    .query_row([key], |row| row.get(0))?;
                self.conversation_heads
                    .entry(key.to_owned())
                    .or_insert(stored.unwrap_or(0) as u64)
            }
        };
        *head += 1;
        Ok(*head)
    }
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

/// What the events table keeps for a message event: a reference, rendered again for the
/// reader on resume (the message JSON would be most of the bytes written per action).
fn message_ref(name: &str, message_id: &str) -> String {
    format!(
        "{}{name}{}{message_id}",
        crate::reader::MESSAGE_REF,
        crate::reader::MESSAGE_REF
    )
}

fn invitation_json(invitation: &Invitation) -> Result<String, StoreError> {
    serde_json::to_string(invitation).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn event_frame(
    name: &str,
    seq: Option<u64>,
    data: serde_json::Value,
) -> Result<Arc<str>, StoreError> {
    let frame = beckon_proto::ServerFrame::Event(EventFrame {
        name: name.to_owned(),
        seq,
        data,
    });
    serde_json::to_string(&frame)
        .map(Arc::from)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}
