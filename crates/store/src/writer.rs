//! The writer thread: event and message numbering, and the journal frame of each batch.
//!
//! The writer turns each job into records with every number decided (a user's next event
//! number, a conversation's next message number), renders the events and encodes the batch's
//! records as one journal frame; the committer thread makes it durable and only then replies,
//! hands the numbered events to the server for delivery, and passes the records to the
//! indexer. Numbers are kept in memory and
//! loaded from the indexed tables on first use: a user or conversation not yet touched since
//! start-up has nothing unindexed (start-up replays the journal first).

use crate::committer::{Prepared, Reply};
use crate::journal::{self, Record};
use crate::{now_ms, StoreConfig, StoreError};
use beckon_core::{ConversationRef, Invitation, Notification, StoredMessage};
use beckon_proto::frames::MessageView;
use beckon_proto::json_write::JsonString;
use beckon_proto::signaling::event;
use foldhash::HashMap;
use rusqlite::{Connection, OptionalExtension};
use std::collections::VecDeque;
use std::sync::{mpsc, Arc};
use tokio::sync::{oneshot, watch};

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
    /// conflict. Only a `proposed_id` (chosen by the client) is looked up among finished
    /// invitations: the server's own are fresh UUIDs.
    InsertInvitation {
        invitation: Invitation,
        proposed_id: bool,
    },
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
    pub messages: Vec<ReportedMessage>,
}

/// A message a job appended or rewrote, with its payload's data escaped once: the writer
/// renders every participant's event from it, and the server the actor's result.
#[derive(Debug, Clone)]
pub struct ReportedMessage {
    pub stored: StoredMessage,
    /// [`StoredMessage::escaped_payload`] of `stored`.
    pub escaped_payload: JsonString,
}

impl ReportedMessage {
    /// The message as `reader` sees it, borrowed from this one.
    pub fn view_for(&self, reader: &str) -> MessageView<'_> {
        self.stored.view_for(reader, &self.escaped_payload)
    }
}

/// Where committed events go: called on the store's committer thread after each journal
/// sync, batch by batch in commit order, so it must hand them on without waiting.
pub trait Deliver: Send + Sync + 'static {
    fn deliver(&self, events: Vec<Delivery>);
}

/// For a consumer on a task of its own (and tests that read the events as a stream).
impl Deliver for tokio::sync::mpsc::UnboundedSender<Vec<Delivery>> {
    fn deliver(&self, events: Vec<Delivery>) {
        let _ = self.send(events);
    }
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

/// Where the writer's work goes, and what it shares with the indexer.
pub(crate) struct WriterLinks {
    pub(crate) committer: mpsc::SyncSender<Prepared>,
    /// Newest position the indexer has applied.
    pub(crate) applied: watch::Receiver<u64>,
    /// Set after a failed commit; later jobs are refused without touching the database.
    pub(crate) failure: Arc<watch::Sender<Option<String>>>,
}

pub(crate) struct Writer {
    /// Read connection to the indexed tables, for numbers not yet cached and ID checks.
    tables: Connection,
    config: StoreConfig,
    links: WriterLinks,
    numbers: Numbers,
    unindexed: Unindexed,
    next_pos: u64,
    frame_encoder: journal::FrameEncoder,
}

/// Cached sequence heads, loaded from the indexed tables on first use.
#[derive(Default)]
struct Numbers {
    /// Newest event number per user.
    user_heads: HashMap<String, u64>,
    /// Newest message number per conversation key.
    conversation_heads: HashMap<String, u64>,
}

/// What the writer committed that the indexer may not have applied yet, for the few checks
/// that read the tables: taken IDs, and invite messages (the only ones a rewrite changes).
#[derive(Default)]
struct Unindexed {
    invite_ids: HashMap<String, u64>,
    group_ids: HashMap<String, u64>,
    messages: HashMap<String, (u64, StoredMessage)>,
    /// What each position added, oldest first, to forget once it is applied.
    order: VecDeque<(u64, Vec<Key>)>,
}

enum Key {
    Invite(String),
    Group(String),
    Message(String),
}

impl Unindexed {
    fn forget_through(&mut self, applied: u64) {
        while self.order.front().is_some_and(|(pos, _)| *pos <= applied) {
            let Some((_, keys)) = self.order.pop_front() else {
                break;
            };
            for key in keys {
                match key {
                    Key::Invite(id) => remove_if_applied(&mut self.invite_ids, &id, applied),
                    Key::Group(id) => remove_if_applied(&mut self.group_ids, &id, applied),
                    Key::Message(id) => {
                        if self
                            .messages
                            .get(&id)
                            .is_some_and(|(pos, _)| *pos <= applied)
                        {
                            self.messages.remove(&id);
                        }
                    }
                }
            }
        }
    }
}

fn remove_if_applied(map: &mut HashMap<String, u64>, id: &str, applied: u64) {
    if map.get(id).is_some_and(|pos| *pos <= applied) {
        map.remove(id);
    }
}

/// Who caused a job's events, and whether they are kept.
struct Source {
    origin: Option<String>,
    live_only: bool,
}

/// One group commit in the making.
struct Batch {
    pos: u64,
    now: u64,
    records: Vec<Record>,
    deliveries: Vec<Delivery>,
    keys: Vec<Key>,
}

impl Writer {
    /// `last_pos`: the newest position in the journal.
    pub(crate) fn new(
        last_pos: u64,
        tables: Connection,
        config: StoreConfig,
        links: WriterLinks,
    ) -> Self {
        let applied = *links.applied.borrow();
        let next_pos = last_pos.max(applied) + 1;
        Self {
            tables,
            config,
            links,
            numbers: Numbers::default(),
            unindexed: Unindexed::default(),
            next_pos,
            frame_encoder: journal::FrameEncoder::default(),
        }
    }

    pub(crate) fn run(mut self, jobs: &mpsc::Receiver<Envelope>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < self.config.max_batch_jobs {
                match jobs.try_recv() {
                    Ok(envelope) => batch.push(envelope),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        tracing::debug!("store writer stopped");
    }

    fn commit_batch(&mut self, envelopes: Vec<Envelope>) {
        if let Some(error) = self.links.failure.borrow().clone() {
            for Envelope::Job(_, reply) in envelopes {
                let _ = reply.send(Err(StoreError::Corrupt(format!(
                    "store failed earlier: {error}"
                ))));
            }
            return;
        }
        let applied = *self.links.applied.borrow();
        self.unindexed.forget_through(applied);
        let mut batch = Batch {
            pos: self.next_pos,
            now: now_ms(),
            records: Vec::with_capacity(envelopes.len() * 4),
            deliveries: Vec::new(),
            keys: Vec::new(),
        };
        let mut reports = Vec::with_capacity(envelopes.len());
        let mut frame = Vec::new();
        let (jobs, replies): (Vec<_>, Vec<_>) = envelopes
            .into_iter()
            .map(|Envelope::Job(job, reply)| (job, reply))
            .unzip();
        let result = (|| -> Result<(), StoreError> {
            for job in jobs {
                reports.push(self.apply_job(job, &mut batch)?);
            }
            if !batch.records.is_empty() {
                frame = self.frame_encoder.encode(&batch.records)?;
            }
            Ok(())
        })();
        let prepared = match result {
            Ok(()) => {
                let frame = if batch.records.is_empty() {
                    None
                } else {
                    // Counted as taken now: the batches after it are numbered before it is
                    // durable, and a failed commit stops the store.
                    self.next_pos += 1;
                    self.unindexed
                        .order
                        .push_back((batch.pos, std::mem::take(&mut batch.keys)));
                    Some((batch.pos, frame))
                };
                Prepared {
                    frame,
                    records: batch.records,
                    deliveries: batch.deliveries,
                    replies: replies
                        .into_iter()
                        .zip(reports)
                        .map(|(reply, report)| (reply, Ok(report)))
                        .collect(),
                }
            }
            Err(error) => {
                tracing::error!(%error, "store commit failed");
                let text = error.to_string();
                self.links.failure.send_replace(Some(text.clone()));
                // Answered after the batches before it, in order.
                Prepared {
                    frame: None,
                    records: Vec::new(),
                    deliveries: Vec::new(),
                    replies: replies
                        .into_iter()
                        .map(|reply| -> Reply {
                            (
                                reply,
                                Err(StoreError::Corrupt(format!("commit failed: {text}"))),
                            )
                        })
                        .collect(),
                }
            }
        };
        if let Err(mpsc::SendError(prepared)) = self.links.committer.send(prepared) {
            for (reply, _) in prepared.replies {
                let _ = reply.send(Err(StoreError::WriterStopped));
            }
        }
    }

    /// Whether a new invitation's or group's ID is taken, among committed ones (indexed or
    /// not) and earlier jobs of this batch.
    fn conflicts(&self, job: &WriteJob) -> Result<bool, StoreError> {
        for op in &job.ops {
            match op {
                WriteOp::InsertInvitation {
                    invitation,
                    proposed_id,
                } => {
                    let id = &invitation.invite_id;
                    if self.unindexed.invite_ids.contains_key(id)
                        || (*proposed_id && crate::reader::invitation_exists(&self.tables, id)?)
                    {
                        return Ok(true);
                    }
                }
                WriteOp::CreateGroup { group } => {
                    let id = &group.group_id;
                    if self.unindexed.group_ids.contains_key(id)
                        || crate::reader::group_id_used(&self.tables, id)?
                    {
                        return Ok(true);
                    }
                }
                _ => {}
            }
        }
        Ok(false)
    }

    /// Takes the job apart: its strings move into the records instead of being copied (the
    /// indexer frees them on its own thread, and every copy was an allocation more).
    fn apply_job(&mut self, job: WriteJob, batch: &mut Batch) -> Result<JobReport, StoreError> {
        let mut report = JobReport::default();
        if self.conflicts(&job)? {
            report.conflict = true;
            return Ok(report);
        }
        let now = batch.now;
        let creates_invitation = job
            .ops
            .iter()
            .any(|op| matches!(op, WriteOp::InsertInvitation { .. }));
        let WriteJob {
            ops,
            origin,
            live_only,
        } = job;
        let source = Source { origin, live_only };
        for op in ops {
            match op {
                WriteOp::EnsureUser { user_id } => batch.records.push(Record::User {
                    user_id,
                    created_ms: now,
                }),
                WriteOp::InsertInvitation { invitation, .. } => {
                    let id = invitation.invite_id.clone();
                    self.unindexed.invite_ids.insert(id.clone(), batch.pos);
                    batch.keys.push(Key::Invite(id));
                    batch.records.push(Record::Invitation {
                        invitation: Box::new(invitation),
                        inserted: true,
                        resolved: Vec::new(),
                    });
                }
                WriteOp::UpdateInvitation {
                    invitation,
                    resolved,
                } => batch.records.push(Record::Invitation {
                    invitation: Box::new(invitation),
                    inserted: false,
                    resolved,
                }),
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
                    let seq = self.next_conversation_seq(&key)?;
                    let stored = StoredMessage {
                        id: message_id.clone(),
                        conversation,
                        from: from.clone(),
                        sequence: seq,
                        time,
                        payload_data: payload_data.clone(),
                        excluded,
                    };
                    // The message's record goes before its events', as the journal has always
                    // held them; it is built last so that it can take the job's values.
                    let at = batch.records.len();
                    let escaped_payload = self.message_events(
                        &source,
                        batch,
                        &stored,
                        &participants,
                        &from,
                        event::MESSAGE_RECEIVED,
                    )?;
                    batch.records.insert(
                        at,
                        Record::Message {
                            message_id,
                            conv_key: key,
                            seq,
                            from,
                            time_s: time,
                            payload_data,
                            excluded,
                            participants,
                            updated_ms: now,
                        },
                    );
                    // Only an invitation's own message is ever rewritten (modifyInvitation).
                    if creates_invitation {
                        self.remember_message(batch, &stored);
                    }
                    report.messages.push(ReportedMessage {
                        stored,
                        escaped_payload,
                    });
                }
                WriteOp::RewriteMessage {
                    message_id,
                    payload_data,
                    participants,
                    modified_by,
                } => {
                    let current = match self.unindexed.messages.get(&message_id) {
                        Some((_, message)) => Some(message.clone()),
                        None => crate::reader::message(&self.tables, &message_id)?,
                    };
                    if let Some(mut stored) = current {
                        stored.payload_data.clone_from(&payload_data);
                        batch.records.push(Record::Rewrite {
                            message_id,
                            payload_data,
                        });
                        let escaped_payload = self.message_events(
                            &source,
                            batch,
                            &stored,
                            &participants,
                            &modified_by,
                            event::MESSAGE_MODIFIED,
                        )?;
                        self.remember_message(batch, &stored);
                        report.messages.push(ReportedMessage {
                            stored,
                            escaped_payload,
                        });
                    }
                }
                WriteOp::Notify(notification) => {
                    self.push_event(
                        &source,
                        batch,
                        &notification.recipient,
                        notification.skip_origin,
                        |seq| event_frame(notification.name, seq, &notification.data),
                        None,
                    )?;
                }
                WriteOp::CreateGroup { group } => {
                    let id = group.group_id.clone();
                    self.unindexed.group_ids.insert(id.clone(), batch.pos);
                    batch.keys.push(Key::Group(id));
                    batch.records.push(Record::CreateGroup { group });
                }
                WriteOp::AddMembers { group_id, members } => {
                    batch.records.push(Record::AddMembers { group_id, members });
                }
                WriteOp::RemoveMembers { group_id, user_ids } => {
                    batch
                        .records
                        .push(Record::RemoveMembers { group_id, user_ids });
                }
                WriteOp::DismissGroup { group_id } => {
                    batch.records.push(Record::DismissGroup { group_id });
                }
                WriteOp::MarkRead {
                    user_id,
                    conversation,
                } => batch.records.push(Record::MarkRead {
                    user_id,
                    conv_key: conversation.key(),
                }),
            }
        }
        Ok(report)
    }

    fn remember_message(&mut self, batch: &mut Batch, stored: &StoredMessage) {
        self.unindexed
            .messages
            .insert(stored.id.clone(), (batch.pos, stored.clone()));
        batch.keys.push(Key::Message(stored.id.clone()));
    }

    /// Tells every participant about a message (`name`: received or modified), rendered for
    /// each; the acting device of `actor` is skipped. Returns the escaped payload the frames
    /// share.
    fn message_events(
        &mut self,
        source: &Source,
        batch: &mut Batch,
        stored: &StoredMessage,
        participants: &[String],
        actor: &str,
        name: &str,
    ) -> Result<JsonString, StoreError> {
        let kept = message_ref(name, &stored.id);
        let escaped = stored.escaped_payload();
        for participant in participants {
            let skip = participant == actor;
            let render = |seq| {
                let view = stored.view_for(participant, &escaped);
                beckon_proto::json_write::event_json_with(name, seq, |out| {
                    out.push(b'[');
                    view.write_json(out);
                    out.push(b']');
                    Ok(())
                })
                .map(Arc::from)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
            };
            self.push_event(source, batch, participant, skip, render, Some(&kept))?;
        }
        Ok(escaped)
    }

    /// Numbers (unless live-only), records and queues one event; `render` writes its frame
    /// for the number given.
    fn push_event(
        &mut self,
        source: &Source,
        batch: &mut Batch,
        user: &str,
        skip_origin: bool,
        render: impl FnOnce(Option<u64>) -> Result<Arc<str>, StoreError>,
        kept_as: Option<&str>,
    ) -> Result<(), StoreError> {
        let skip_instance = if skip_origin {
            source.origin.clone()
        } else {
            None
        };
        if source.live_only {
            let frame = render(None)?;
            batch.deliveries.push(Delivery {
                user_id: user.to_owned(),
                seq: None,
                skip_instance,
                frame,
            });
            return Ok(());
        }
        let seq = self.next_user_seq(user)?;
        let frame = render(Some(seq))?;
        batch.records.push(Record::Event {
            user_id: user.to_owned(),
            seq,
            origin: skip_instance.clone(),
            created_ms: batch.now,
            stored: kept_as.map_or_else(|| frame.to_string(), str::to_owned),
        });
        batch.deliveries.push(Delivery {
            user_id: user.to_owned(),
            seq: Some(seq),
            skip_instance,
            frame,
        });
        Ok(())
    }

    fn next_user_seq(&mut self, user: &str) -> Result<u64, StoreError> {
        let head = if let Some(head) = self.numbers.user_heads.get_mut(user) {
            head
        } else {
            let stored: Option<i64> = self
                .tables
                .prepare_cached("SELECT seq FROM user_heads WHERE user_id = ?1")?
                .query_row([user], |row| row.get(0))
                .optional()?;
            self.numbers
                .user_heads
                .entry(user.to_owned())
                .or_insert(stored.unwrap_or(0) as u64)
        };
        *head += 1;
        Ok(*head)
    }

    fn next_conversation_seq(&mut self, key: &str) -> Result<u64, StoreError> {
        let head = if let Some(head) = self.numbers.conversation_heads.get_mut(key) {
            head
        } else {
            let stored: Option<i64> = self
                .tables
                .prepare_cached("SELECT seq FROM conversation_heads WHERE conv_key = ?1")?
                .query_row([key], |row| row.get(0))
                .optional()?;
            self.numbers
                .conversation_heads
                .entry(key.to_owned())
                .or_insert(stored.unwrap_or(0) as u64)
        };
        *head += 1;
        Ok(*head)
    }
}

/// What is kept for resumption for a message event: a reference, rendered again for the
/// reader on resume (the message JSON would be most of the bytes written per action).
fn message_ref(name: &str, message_id: &str) -> String {
    format!(
        "{}{name}{}{message_id}",
        crate::reader::MESSAGE_REF,
        crate::reader::MESSAGE_REF
    )
}

fn event_frame<T: serde::Serialize + ?Sized>(
    name: &str,
    seq: Option<u64>,
    data: &T,
) -> Result<Arc<str>, StoreError> {
    beckon_proto::frames::event_json(name, seq, data)
        .map(Arc::from)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}
