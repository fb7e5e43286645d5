//! The signaling service: owns the active invitations in memory, applies the core rules to
//! them atomically, and turns their effects into store jobs and timer changes.
//!
//! Each invitation lives in one shard behind a mutex. A command locks the shard, runs the pure
//! rule, replaces the invitation and queues its store job before unlocking, so two racing
//! commands are ordered and exactly one can win; the job order in the store matches. Callers
//! learn the outcome only after the job is durably committed.

use crate::timers::{Deadlines, TimerCommand};
use beckon_core::{
    apply, create, Command, CommandKind, ConversationRef, DeadlineEffect, HistoryEffect,
    Invitation, NewInvitation, Refusal, Settings, Transition,
};
use beckon_proto::frames::{ActionResultView, InviteParams};
use beckon_proto::ErrorCode;
use beckon_store::{
    JobReport, LoginSnapshot, ReportedMessage, Store, StoreError, WriteJob, WriteOp,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

const SHARDS: usize = 64;

/// Active invitations of one shard, found by inviteID. A set of invitations rather than a
/// map from ID, so each ID is held once.
pub(crate) type Shard = HashSet<Active, foldhash::fast::RandomState>;

/// An active invitation in its shard: equal and hashed by its inviteID. Boxed, because the
/// table keeps about half its slots empty and a slot is then a pointer, not an invitation.
#[derive(Debug)]
pub(crate) struct Active(pub(crate) Box<Invitation>);

impl PartialEq for Active {
    fn eq(&self, other: &Self) -> bool {
        self.0.invite_id == other.0.invite_id
    }
}

impl Eq for Active {}

impl std::hash::Hash for Active {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.invite_id.as_str().hash(state);
    }
}

impl std::borrow::Borrow<str> for Active {
    fn borrow(&self) -> &str {
        &self.0.invite_id
    }
}

/// Who acts: the logged-in user and the device (SDK instance) they act from.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub instance_id: String,
}

/// The signaling service shared by every connection.
///
/// Lock order, to stay free of deadlocks: `groups`, then an invitation shard, then
/// `group_invites`.
pub struct Service {
    pub(crate) store: Store,
    settings: Settings,
    shards: Vec<Mutex<Shard>>,
    /// Picks an invitation's shard; seeded apart from the shards' own tables.
    shard_hasher: foldhash::fast::RandomState,
    users: RwLock<HashSet<String>>,
    timers: mpsc::UnboundedSender<TimerCommand>,
    /// Live groups. Group changes hold it for writing while they withdraw leavers from active
    /// invitations, so membership and ringing never disagree.
    pub(crate) groups: RwLock<crate::groups::GroupTable>,
    /// Active invitations per group, for withdrawing members who leave.
    pub(crate) group_invites: Mutex<HashMap<String, HashSet<String>>>,
}

/// What a new invitation's shared options came to.
pub(crate) struct InvitationOptions {
    pub(crate) offline_push_info: Option<serde_json::Value>,
    pub(crate) invite_id: String,
    /// The client chose the inviteID (the server's own are fresh UUIDs).
    pub(crate) proposed: bool,
}

/// Whether a transition creates its invitation or changes a stored one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change {
    Insert { proposed_id: bool },
    Update,
}

/// An accepted command whose store job is queued; resolve it to learn the final result.
pub struct PendingCommit {
    commit: oneshot::Receiver<Result<JobReport, StoreError>>,
    invite_id: String,
    reader: String,
    /// Set for creations: on an ID conflict the in-memory copy is rolled back.
    created: Option<Arc<Service>>,
}

impl PendingCommit {
    /// Waits for the commit and builds the caller's result.
    pub async fn finish(self) -> Result<ActionOutcome, Refusal> {
        let report = match self.commit.await {
            Ok(Ok(report)) => report,
            Ok(Err(error)) => return Err(store_failed(&error)),
            Err(_) => return Err(store_failed(&StoreError::WriterStopped)),
        };
        if report.conflict {
            if let Some(service) = self.created {
                service.forget(&self.invite_id);
            }
            return Err(Refusal::new(
                ErrorCode::InviteIdExists,
                "an invitation with this inviteID already exists",
            ));
        }
        Ok(ActionOutcome {
            invite_id: self.invite_id,
            reader: self.reader,
            message: report.messages.into_iter().next(),
        })
    }
}

/// A committed action: renders as its `ActionResult` for `reader`, from the message's payload
/// as the writer escaped it.
pub struct ActionOutcome {
    invite_id: String,
    reader: String,
    message: Option<ReportedMessage>,
}

impl ActionOutcome {
    /// Appends the result's `data` JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        ActionResultView {
            invite_id: &self.invite_id,
            message: self.message.as_ref().map(|m| m.view_for(&self.reader)),
        }
        .write_json(out);
    }
}

/// A history message ID: a UUID v7, so new messages land at the end of the ID index instead
/// of on a random page of it.
pub(crate) fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn store_failed(error: &StoreError) -> Refusal {
    tracing::error!(%error, "store failure");
    Refusal::new(
        ErrorCode::Internal,
        format!("storage failed, nothing was applied: {error}"),
    )
}

impl Service {
    /// Loads accounts and active invitations from the store and arms every deadline (those
    /// already past fire at once).
    pub(crate) async fn load(
        store: Store,
        settings: Settings,
    ) -> Result<(Arc<Self>, Deadlines, mpsc::UnboundedReceiver<TimerCommand>), StoreError> {
        let started = std::time::Instant::now();
        let (users, groups, active_count) = tokio::try_join!(
            store.users(),
            store.groups(),
            store.active_invitation_count()
        )?;
        let users: HashSet<String> = users.into_iter().collect();
        let groups = crate::groups::GroupTable::new(groups);
        let mut active = store.active_invitations();
        // Sized up front: growing a million-entry table rehashes every entry it holds.
        let per_shard = usize::try_from(active_count / SHARDS as u64).unwrap_or(0);
        let per_shard = per_shard + per_shard / 16 + 16;
        let (timers, timer_rx) = mpsc::unbounded_channel();
        let service = Arc::new(Self {
            store,
            settings,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard::with_capacity_and_hasher(
                        per_shard,
                        foldhash::fast::RandomState::default(),
                    ))
                })
                .collect(),
            shard_hasher: foldhash::fast::RandomState::default(),
            users: RwLock::new(users),
            timers,
            groups: RwLock::new(groups),
            group_invites: Mutex::new(HashMap::new()),
        });
        let now = crate::now_ms();
        let mut overdue = Vec::new();
        // Collected, then sorted into the set at once: far cheaper than a million inserts.
        let mut deadlines = Vec::new();
        let mut complete = false;
        while let Some(chunk) = active.recv().await {
            let chunk = chunk?;
            if chunk.is_empty() {
                complete = true;
                break;
            }
            for invitation in chunk {
                if invitation.deadline_ms <= now {
                    overdue.push((invitation.invite_id.clone(), invitation.deadline_ms));
                } else {
                    deadlines.push((invitation.deadline_ms, invitation.invite_id.as_str().into()));
                }
                service.track_group_invite(&invitation);
                if let Ok(mut shard) =
                    service.shards[service.shard_of(&invitation.invite_id)].lock()
                {
                    shard.insert(Active(Box::new(invitation)));
                }
            }
        }
        if !complete {
            return Err(StoreError::Task(
                "loading the active invitations stopped before the end".into(),
            ));
        }
        let deadlines: Deadlines = deadlines.into_iter().collect();
        tracing::info!(
            active = service.active_invitation_count(),
            users = service.users.read().map_or(0, |u| u.len()),
            ms = started.elapsed().as_millis(),
            "loaded accounts, groups and active invitations"
        );
        // Deadlines that passed while the server was down are applied and committed before
        // it serves anyone, so no login sees them as still pending.
        let commits: Vec<_> = overdue
            .iter()
            .filter_map(|(invite_id, deadline_ms)| service.fire_deadline(invite_id, *deadline_ms))
            .collect();
        if !commits.is_empty() {
            tracing::info!(
                count = commits.len(),
                "timing out invitations whose deadline passed while stopped"
            );
        }
        for commit in commits {
            commit.await.map_err(|_| StoreError::WriterStopped)??;
        }
        Ok((service, deadlines, timer_rx))
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Whether `user_id` has an account.
    pub fn user_exists(&self, user_id: &str) -> bool {
        self.users.read().is_ok_and(|users| users.contains(user_id))
    }

    /// Up to `limit` account IDs (in no particular order).
    pub fn user_ids(&self, limit: usize) -> Vec<String> {
        self.users
            .read()
            .map(|users| users.iter().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// Creates the account if it does not exist yet (durably, before returning).
    pub async fn ensure_user(&self, user_id: &str) -> Result<(), Refusal> {
        if self.user_exists(user_id) {
            return Ok(());
        }
        let job = WriteJob {
            ops: vec![WriteOp::EnsureUser {
                user_id: user_id.to_owned(),
            }],
            origin: None,
            live_only: false,
        };
        self.store.write(job).await.map_err(|e| store_failed(&e))?;
        if let Ok(mut users) = self.users.write() {
            users.insert(user_id.to_owned());
        }
        Ok(())
    }

    /// What a device needs at login.
    pub async fn login_snapshot(
        &self,
        user_id: &str,
        last_seq: Option<u64>,
    ) -> Result<LoginSnapshot, Refusal> {
        self.store
            .login_snapshot(user_id.to_owned(), last_seq)
            .await
            .map_err(|e| store_failed(&e))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `invite`: a one-to-one invitation. Checks that run without I/O happen here; a proposed
    /// inviteID is also checked against finished invitations in the store.
    pub async fn invite(
        self: &Arc<Self>,
        actor: &Actor,
        params: InviteParams,
    ) -> Result<PendingCommit, Refusal> {
        beckon_core::check_user_id("userID", &params.user_id)?;
        if params.user_id == actor.user_id {
            return Err(Refusal::new(
                ErrorCode::InviteSelf,
                "you cannot invite yourself",
            ));
        }
        if !self.user_exists(&params.user_id) {
            return Err(Refusal::new(
                ErrorCode::UnknownUser,
                format!(
                    "no account for user {:?}; it must log in once or be imported first",
                    params.user_id
                ),
            ));
        }
        let options = self
            .invitation_options(params.offline_push_info.as_ref(), params.invite_id)
            .await?;
        let new = NewInvitation {
            invite_id: options.invite_id,
            inviter: actor.user_id.clone(),
            group_id: String::new(),
            invitees: vec![params.user_id],
            data: params.data.unwrap_or_default(),
            timeout: params.timeout.unwrap_or(0),
            online_user_only: params.online_user_only.unwrap_or(false),
            offline_push_info: options.offline_push_info,
            invite_message_id: new_message_id(),
        };
        let participants = vec![actor.user_id.clone(), new.invitees[0].clone()];
        self.create(actor, new, options.proposed, participants)
    }

    /// Checks the options every invitation shares: `offlinePushInfo`, and a proposed
    /// `inviteID` (also against finished invitations in the store).
    pub(crate) async fn invitation_options(
        &self,
        offline_push_info: Option<&beckon_proto::frames::OfflinePushInfo>,
        proposed_id: Option<String>,
    ) -> Result<InvitationOptions, Refusal> {
        let offline_push_info = offline_push_info.map(check_offline_push_info).transpose()?;
        let proposed = proposed_id.is_some();
        let invite_id = match proposed_id {
            Some(id) => {
                beckon_core::check_invite_id("inviteID", &id)?;
                let used = self
                    .store
                    .invitation_exists(id.clone())
                    .await
                    .map_err(|e| store_failed(&e))?;
                if used {
                    return Err(Refusal::new(
                        ErrorCode::InviteIdExists,
                        "an invitation with this inviteID already exists",
                    ));
                }
                id
            }
            // Time-ordered, so new invitations land at the end of the stored index.
            None => uuid::Uuid::now_v7().to_string(),
        };
        Ok(InvitationOptions {
            offline_push_info,
            invite_id,
            proposed,
        })
    }

    /// Creates an invitation whose history goes to `participants`. Group callers hold the
    /// groups lock across this call.
    pub(crate) fn create(
        self: &Arc<Self>,
        actor: &Actor,
        new: NewInvitation,
        proposed_id: bool,
        participants: Vec<String>,
    ) -> Result<PendingCommit, Refusal> {
        let invite_id = new.invite_id.clone();
        let mut shard = self.lock_shard(&invite_id)?;
        if shard.contains(invite_id.as_str()) {
            return Err(Refusal::new(
                ErrorCode::InviteIdExists,
                "an invitation with this inviteID already exists",
            ));
        }
        let transition = create(new, crate::now_ms(), self.settings)?;
        let (commit, invitation) = self.carry_out(
            Some(actor),
            transition,
            Change::Insert { proposed_id },
            participants,
        );
        self.track_group_invite(&invitation);
        shard.insert(Active(Box::new(invitation)));
        drop(shard);
        Ok(PendingCommit {
            commit,
            invite_id,
            reader: actor.user_id.clone(),
            created: Some(Arc::clone(self)),
        })
    }

    /// `cancel`, `accept`, `reject`, `modifyInvitation` on an invitation.
    pub fn act(
        &self,
        actor: &Actor,
        invite_id: &str,
        kind: CommandKind,
    ) -> Result<PendingCommit, Refusal> {
        let unknown = match kind {
            CommandKind::Cancel { .. } => ErrorCode::CancelNotActive,
            _ => ErrorCode::InvitationNotActive,
        };
        let groups = self.read_groups()?;
        let mut shard = self.lock_shard(invite_id)?;
        let Some(Active(current)) = shard.get(invite_id) else {
            return Err(Refusal::new(
                unknown,
                "no active invitation with this inviteID (unknown or already ended)",
            ));
        };
        let command = Command {
            actor: actor.user_id.clone(),
            kind,
        };
        let transition = apply(current, &command, crate::now_ms())?;
        let participants = groups.participants(current);
        let (commit, invitation) =
            self.carry_out(Some(actor), transition, Change::Update, participants);
        self.store_transition(&mut shard, invitation);
        drop(shard);
        drop(groups);
        Ok(PendingCommit {
            commit,
            invite_id: invite_id.to_owned(),
            reader: actor.user_id.clone(),
            created: None,
        })
    }

    /// Applies the timeout of an invitation whose deadline is due (called by the timer, and at
    /// start-up for deadlines that passed while stopped); the commit to wait for, if anything
    /// was applied. A failed commit is logged by the store, which then stops the server.
    pub(crate) fn fire_deadline(
        &self,
        invite_id: &str,
        deadline_ms: u64,
    ) -> Option<oneshot::Receiver<Result<JobReport, StoreError>>> {
        let groups = self.read_groups().ok()?;
        let mut shard = self.lock_shard(invite_id).ok()?;
        let Active(current) = shard.get(invite_id)?;
        if current.deadline_ms != deadline_ms {
            return None;
        }
        let now = crate::now_ms();
        if now < deadline_ms {
            // The wall clock lags the timer wheel; come back at the stored deadline.
            let _ = self.timers.send(TimerCommand::Set {
                invite_id: invite_id.into(),
                deadline_ms,
            });
            return None;
        }
        let command = Command {
            actor: String::new(),
            kind: CommandKind::Timeout,
        };
        match apply(current, &command, now) {
            Ok(transition) => {
                let participants = groups.participants(current);
                let (commit, invitation) =
                    self.carry_out(None, transition, Change::Update, participants);
                self.store_transition(&mut shard, invitation);
                Some(commit)
            }
            Err(refusal) => {
                tracing::warn!(%refusal, %invite_id, "deadline reached but timeout refused");
                None
            }
        }
    }

    /// Queues the store job and timer change for a transition; history goes to
    /// `participants`. Must run under the shard lock. Gives back the new invitation state, for
    /// the shard (the job takes the effects).
    pub(crate) fn carry_out(
        &self,
        actor: Option<&Actor>,
        transition: Transition,
        change: Change,
        participants: Vec<String>,
    ) -> (oneshot::Receiver<Result<JobReport, StoreError>>, Invitation) {
        let insert = matches!(change, Change::Insert { .. });
        let Transition {
            invitation,
            effects,
        } = transition;
        let mut ops = Vec::with_capacity(3 + effects.notifications.len());
        ops.push(match change {
            Change::Insert { proposed_id } => WriteOp::InsertInvitation {
                invitation: invitation.clone(),
                proposed_id,
            },
            Change::Update => WriteOp::UpdateInvitation {
                invitation: invitation.clone(),
                resolved: effects.resolved,
            },
        });
        match &effects.history {
            Some(HistoryEffect::Append {
                from,
                payload,
                excluded,
            }) => ops.push(WriteOp::AppendMessage {
                message_id: if insert {
                    invitation.invite_message_id.clone().unwrap_or_default()
                } else {
                    new_message_id()
                },
                conversation: invitation.conversation(),
                participants,
                from: from.clone(),
                time: crate::now_ms() / 1000,
                payload_data: payload.to_payload_data(),
                excluded: *excluded,
            }),
            Some(HistoryEffect::Rewrite {
                message_id,
                payload,
            }) => ops.push(WriteOp::RewriteMessage {
                message_id: message_id.clone(),
                payload_data: payload.to_payload_data(),
                participants,
                modified_by: actor.map(|a| a.user_id.clone()).unwrap_or_default(),
            }),
            None => {}
        }
        ops.extend(effects.notifications.into_iter().map(WriteOp::Notify));
        let job = WriteJob {
            ops,
            origin: actor.map(|a| a.instance_id.clone()),
            live_only: invitation.online_user_only,
        };
        match effects.deadline {
            DeadlineEffect::Set(deadline_ms) => {
                let _ = self.timers.send(TimerCommand::Set {
                    invite_id: invitation.invite_id.as_str().into(),
                    deadline_ms,
                });
            }
            DeadlineEffect::Clear => {
                let _ = self.timers.send(TimerCommand::Clear {
                    invite_id: invitation.invite_id.as_str().into(),
                    deadline_ms: invitation.deadline_ms,
                });
            }
            DeadlineEffect::Unchanged => {}
        }
        (self.store.submit(job), invitation)
    }

    /// Drops an invitation whose creation the store refused.
    fn forget(&self, invite_id: &str) {
        let Ok(mut shard) = self.lock_shard(invite_id) else {
            return;
        };
        if let Some(Active(invitation)) = shard.take(invite_id) {
            self.untrack_group_invite(&invitation);
            let _ = self.timers.send(TimerCommand::Clear {
                invite_id: invite_id.into(),
                deadline_ms: invitation.deadline_ms,
            });
        }
    }

    fn shard_of(&self, invite_id: &str) -> usize {
        use std::hash::BuildHasher;
        (self.shard_hasher.hash_one(invite_id) as usize) % SHARDS
    }

    pub(crate) fn lock_shard(
        &self,
        invite_id: &str,
    ) -> Result<std::sync::MutexGuard<'_, Shard>, Refusal> {
        self.shards[self.shard_of(invite_id)]
            .lock()
            .map_err(|_| Refusal::new(ErrorCode::Internal, "invitation table lock poisoned"))
    }

    /// Number of active invitations held in memory.
    pub fn active_invitation_count(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.len()))
            .sum()
    }

    /// A reader's conversation. Reading a group's history needs current membership
    /// (`require_member`); clearing one's own unread count does not, so former members can
    /// still clear theirs.
    pub fn conversation_for(
        &self,
        reader: &str,
        conversation_id: &str,
        require_member: bool,
    ) -> Result<ConversationRef, Refusal> {
        match ConversationRef::from_conversation_id(reader, conversation_id) {
            Some(ConversationRef::Group { group_id }) => {
                if require_member {
                    self.read_groups()?.member_group(reader, &group_id)?;
                }
                Ok(ConversationRef::Group { group_id })
            }
            Some(conversation) => Ok(conversation),
            None => Err(Refusal::new(
                ErrorCode::InvalidParameter,
                format!(
                    "conversationID must be C2C<userID> or GROUP<groupID>, got {conversation_id:?}"
                ),
            )),
        }
    }

    /// `setMessageRead`.
    pub async fn mark_read(
        &self,
        user_id: &str,
        conversation: ConversationRef,
    ) -> Result<(), Refusal> {
        let job = WriteJob {
            ops: vec![WriteOp::MarkRead {
                user_id: user_id.to_owned(),
                conversation,
            }],
            origin: None,
            live_only: false,
        };
        self.store
            .write(job)
            .await
            .map(|_| ())
            .map_err(|e| store_failed(&e))
    }
}

impl Service {
    /// Keeps the in-memory table in step with a transition.
    pub(crate) fn store_transition(&self, shard: &mut Shard, invitation: Invitation) {
        if invitation.is_active() {
            shard.replace(Active(Box::new(invitation)));
        } else {
            self.untrack_group_invite(&invitation);
            shard.remove(invitation.invite_id.as_str());
        }
    }

    fn untrack_group_invite(&self, invitation: &Invitation) {
        if invitation.group_id.is_empty() {
            return;
        }
        if let Ok(mut index) = self.group_invites.lock() {
            if let Some(set) = index.get_mut(&invitation.group_id) {
                set.remove(&invitation.invite_id);
                if set.is_empty() {
                    index.remove(&invitation.group_id);
                }
            }
        }
    }

    fn track_group_invite(&self, invitation: &Invitation) {
        if invitation.group_id.is_empty() || !invitation.is_active() {
            return;
        }
        if let Ok(mut index) = self.group_invites.lock() {
            index
                .entry(invitation.group_id.clone())
                .or_default()
                .insert(invitation.invite_id.clone());
        }
    }

    pub(crate) fn read_groups(
        &self,
    ) -> Result<std::sync::RwLockReadGuard<'_, crate::groups::GroupTable>, Refusal> {
        self.groups
            .read()
            .map_err(|_| Refusal::new(ErrorCode::Internal, "group table lock poisoned"))
    }

    pub(crate) fn write_groups(
        &self,
    ) -> Result<std::sync::RwLockWriteGuard<'_, crate::groups::GroupTable>, Refusal> {
        self.groups
            .write()
            .map_err(|_| Refusal::new(ErrorCode::Internal, "group table lock poisoned"))
    }
}

fn check_offline_push_info(
    info: &beckon_proto::frames::OfflinePushInfo,
) -> Result<serde_json::Value, Refusal> {
    let value = serde_json::to_value(info)
        .map_err(|e| Refusal::new(ErrorCode::InvalidParameter, format!("offlinePushInfo: {e}")))?;
    let size = value.to_string().len();
    if size > beckon_proto::limits::MAX_OFFLINE_PUSH_INFO_BYTES {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "offlinePushInfo is {size} bytes; the limit is {} bytes",
                beckon_proto::limits::MAX_OFFLINE_PUSH_INFO_BYTES
            ),
        ));
    }
    Ok(value)
}
