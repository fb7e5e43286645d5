//! Groups and group invitations: the in-memory group table, the group operations, and
//! `inviteInGroup`. Members who leave while ringing are withdrawn from active invitations in
//! the same locked step that changes the membership.

use crate::service::{store_failed, Actor, Change, PendingCommit, Service};
use beckon_core::groups::{new_group, plan_additions};
use beckon_core::{
    apply, Command, CommandKind, Group, Invitation, Member, NewInvitation, Refusal, WithdrawReason,
};
use beckon_proto::frames::{
    CreateGroupParams, GroupMember, GroupMembersParams, GroupProfile, InviteInGroupParams,
};
use beckon_proto::{limits, ErrorCode};
use beckon_store::{JobReport, StoreError, WriteJob, WriteOp};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::oneshot;

type Commit = oneshot::Receiver<Result<JobReport, StoreError>>;

/// Live groups, and the groups of each user.
pub(crate) struct GroupTable {
    by_id: HashMap<String, Group>,
    by_user: HashMap<String, BTreeSet<String>>,
}

impl GroupTable {
    pub(crate) fn new(groups: Vec<Group>) -> Self {
        let mut table = Self {
            by_id: HashMap::new(),
            by_user: HashMap::new(),
        };
        for group in groups {
            for member in &group.members {
                table
                    .by_user
                    .entry(member.user_id.clone())
                    .or_default()
                    .insert(group.group_id.clone());
            }
            table.by_id.insert(group.group_id.clone(), group);
        }
        table
    }

    fn get(&self, group_id: &str) -> Result<&Group, Refusal> {
        self.by_id.get(group_id).ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnknownGroup,
                format!("unknown group {group_id:?}"),
            )
        })
    }

    /// The group, when `user` is a member of it.
    pub(crate) fn member_group(&self, user: &str, group_id: &str) -> Result<&Group, Refusal> {
        let group = self.get(group_id)?;
        group.check_member(user)?;
        Ok(group)
    }

    /// Who sees an invitation's history: every member of its group, or both parties of a
    /// one-to-one invitation.
    pub(crate) fn participants(&self, invitation: &Invitation) -> Vec<String> {
        match self.by_id.get(&invitation.group_id) {
            Some(group) if !invitation.group_id.is_empty() => group.member_ids(),
            _ => std::iter::once(invitation.inviter.clone())
                .chain(invitation.invitees.iter().map(|i| i.user_id.clone()))
                .collect(),
        }
    }

    fn group_count(&self, user: &str) -> usize {
        self.by_user.get(user).map_or(0, BTreeSet::len)
    }

    fn insert(&mut self, group: Group) {
        for member in &group.members {
            self.by_user
                .entry(member.user_id.clone())
                .or_default()
                .insert(group.group_id.clone());
        }
        self.by_id.insert(group.group_id.clone(), group);
    }

    fn add_members(&mut self, group_id: &str, members: &[Member]) {
        for member in members {
            self.by_user
                .entry(member.user_id.clone())
                .or_default()
                .insert(group_id.to_owned());
        }
        if let Some(group) = self.by_id.get_mut(group_id) {
            group.members.extend(members.iter().cloned());
        }
    }

    fn remove_members(&mut self, group_id: &str, users: &[String]) {
        for user in users {
            if let Some(set) = self.by_user.get_mut(user) {
                set.remove(group_id);
                if set.is_empty() {
                    self.by_user.remove(user);
                }
            }
        }
        if let Some(group) = self.by_id.get_mut(group_id) {
            group.members.retain(|m| !users.contains(&m.user_id));
        }
    }

    fn remove(&mut self, group_id: &str) {
        if let Some(group) = self.by_id.remove(group_id) {
            let users = group.member_ids();
            for user in &users {
                if let Some(set) = self.by_user.get_mut(user) {
                    set.remove(group_id);
                    if set.is_empty() {
                        self.by_user.remove(user);
                    }
                }
            }
        }
    }
}

/// Waits for the commits of a group change; the last one is the membership change itself.
async fn finish_all(commits: Vec<Commit>) -> Result<Option<JobReport>, Refusal> {
    let mut last = None;
    for commit in commits {
        last = Some(match commit.await {
            Ok(Ok(report)) => report,
            Ok(Err(error)) => return Err(store_failed(&error)),
            Err(_) => return Err(store_failed(&StoreError::WriterStopped)),
        });
    }
    Ok(last)
}

fn job(ops: Vec<WriteOp>, actor: &Actor) -> WriteJob {
    WriteJob {
        ops,
        origin: Some(actor.instance_id.clone()),
        live_only: false,
    }
}

fn check_accounts(service: &Service, users: &[String]) -> Result<(), Refusal> {
    let unknown: Vec<&str> = users
        .iter()
        .filter(|u| !service.user_exists(u))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::UnknownUser,
            format!("no account for: {}", unknown.join(", ")),
        ))
    }
}

impl Service {
    /// `createGroup`: the creator becomes the owner.
    pub async fn create_group(
        &self,
        actor: &Actor,
        params: CreateGroupParams,
    ) -> Result<GroupProfile, Refusal> {
        let members: Vec<String> = params.member_list.into_iter().map(|m| m.user_id).collect();
        let proposed = params.group_id.is_some();
        let group_id = params
            .group_id
            .unwrap_or_else(|| format!("@BKN#{}", uuid::Uuid::new_v4().simple()));
        // Shape first (formats, sizes), then accounts, then whether the ID was ever used.
        let group = new_group(
            group_id,
            &params.name,
            params.kind.as_deref(),
            &actor.user_id,
            &members,
            crate::now_ms(),
        )?;
        check_accounts(self, &members)?;
        if proposed
            && self
                .store
                .group_id_used(group.group_id.clone())
                .await
                .map_err(|e| store_failed(&e))?
        {
            return Err(Refusal::new(
                ErrorCode::GroupIdExists,
                format!("groupID {:?} is already used", group.group_id),
            ));
        }
        let commit = {
            let mut groups = self.write_groups()?;
            if groups.by_id.contains_key(&group.group_id) {
                return Err(Refusal::new(
                    ErrorCode::GroupIdExists,
                    format!("groupID {:?} is already used", group.group_id),
                ));
            }
            if let Some(full) = group
                .members
                .iter()
                .find(|m| groups.group_count(&m.user_id) >= limits::MAX_GROUPS_PER_USER)
            {
                return Err(Refusal::new(
                    ErrorCode::GroupFull,
                    format!(
                        "{} is already in {} groups, the limit",
                        full.user_id,
                        limits::MAX_GROUPS_PER_USER
                    ),
                ));
            }
            groups.insert(group.clone());
            self.store.submit(job(
                vec![WriteOp::CreateGroup {
                    group: group.clone(),
                }],
                actor,
            ))
        };
        let report = finish_all(vec![commit]).await?;
        if report.is_some_and(|r| r.conflict) {
            if let Ok(mut groups) = self.write_groups() {
                groups.remove(&group.group_id);
            }
            return Err(Refusal::new(
                ErrorCode::GroupIdExists,
                format!("groupID {:?} is already used", group.group_id),
            ));
        }
        Ok(group.profile())
    }

    /// `getGroupProfile` (members only).
    pub fn group_profile(&self, actor: &Actor, group_id: &str) -> Result<GroupProfile, Refusal> {
        Ok(self
            .read_groups()?
            .member_group(&actor.user_id, group_id)?
            .profile())
    }

    /// `getGroupMemberList` (members only), paged by `offset` and `count`.
    pub fn group_members(
        &self,
        actor: &Actor,
        group_id: &str,
        offset: usize,
        count: usize,
    ) -> Result<Vec<GroupMember>, Refusal> {
        let groups = self.read_groups()?;
        let group = groups.member_group(&actor.user_id, group_id)?;
        Ok(group
            .members
            .iter()
            .skip(offset)
            .take(count)
            .map(|m| group.member_view(m))
            .collect())
    }

    /// `getGroupList`: the caller's groups.
    pub fn group_list(&self, actor: &Actor) -> Result<Vec<GroupProfile>, Refusal> {
        let groups = self.read_groups()?;
        Ok(groups
            .by_user
            .get(&actor.user_id)
            .into_iter()
            .flatten()
            .filter_map(|id| groups.by_id.get(id).map(Group::profile))
            .collect())
    }

    /// `addGroupMember` (owner only). Returns (added, already members).
    pub async fn add_group_members(
        &self,
        actor: &Actor,
        params: GroupMembersParams,
    ) -> Result<(Vec<String>, Vec<String>, GroupProfile), Refusal> {
        check_member_change(&params.user_id_list)?;
        check_accounts(self, &params.user_id_list)?;
        let (commit, added, existed, profile) = {
            let mut groups = self.write_groups()?;
            let group = groups.get(&params.group_id)?;
            group.check_owner(&actor.user_id, "add members")?;
            let added = plan_additions(group, &params.user_id_list)?;
            let mut existed: Vec<String> = params
                .user_id_list
                .iter()
                .filter(|u| group.is_member(u))
                .cloned()
                .collect();
            existed.sort();
            existed.dedup();
            if let Some(full) = added
                .iter()
                .find(|u| groups.group_count(u) >= limits::MAX_GROUPS_PER_USER)
            {
                return Err(Refusal::new(
                    ErrorCode::GroupFull,
                    format!(
                        "{full} is already in {} groups, the limit",
                        limits::MAX_GROUPS_PER_USER
                    ),
                ));
            }
            let now = crate::now_ms();
            let members: Vec<Member> = added
                .iter()
                .map(|user_id| Member {
                    user_id: user_id.clone(),
                    joined_at_ms: now,
                })
                .collect();
            groups.add_members(&params.group_id, &members);
            let commit = self.store.submit(job(
                vec![WriteOp::AddMembers {
                    group_id: params.group_id.clone(),
                    members,
                }],
                actor,
            ));
            let profile = groups.get(&params.group_id)?.profile();
            (commit, added, existed, profile)
        };
        finish_all(vec![commit]).await?;
        Ok((added, existed, profile))
    }

    /// `deleteGroupMember` (owner only; not the owner). Pending invitees among them stop
    /// ringing. Returns the users removed.
    pub async fn delete_group_members(
        &self,
        actor: &Actor,
        params: GroupMembersParams,
    ) -> Result<(Vec<String>, GroupProfile), Refusal> {
        check_member_change(&params.user_id_list)?;
        let (commits, removed, profile) = {
            let mut groups = self.write_groups()?;
            let group = groups.get(&params.group_id)?;
            group.check_owner(&actor.user_id, "remove members")?;
            if params.user_id_list.contains(&group.owner) {
                return Err(Refusal::new(
                    ErrorCode::InvalidParameter,
                    "the owner cannot be removed; dismiss the group instead",
                ));
            }
            let mut removed: Vec<String> = Vec::new();
            for user in &params.user_id_list {
                if group.is_member(user) && !removed.contains(user) {
                    removed.push(user.clone());
                }
            }
            let mut commits = self.withdraw(
                &groups,
                &params.group_id,
                &removed,
                WithdrawReason::MemberRemoved,
            );
            groups.remove_members(&params.group_id, &removed);
            commits.push(self.store.submit(job(
                vec![WriteOp::RemoveMembers {
                    group_id: params.group_id.clone(),
                    user_ids: removed.clone(),
                }],
                actor,
            )));
            let profile = groups.get(&params.group_id)?.profile();
            (commits, removed, profile)
        };
        finish_all(commits).await?;
        Ok((removed, profile))
    }

    /// `quitGroup` (not the owner). Pending invitations of the caller in the group stop
    /// ringing; invitations the caller sent in it are cancelled.
    pub async fn quit_group(&self, actor: &Actor, group_id: &str) -> Result<(), Refusal> {
        let commits = {
            let mut groups = self.write_groups()?;
            let group = groups.member_group(&actor.user_id, group_id)?;
            if group.owner == actor.user_id {
                return Err(Refusal::new(
                    ErrorCode::OwnerCannotQuit,
                    "the owner cannot quit; dismiss the group instead",
                ));
            }
            let leaving = vec![actor.user_id.clone()];
            let mut commits =
                self.withdraw(&groups, group_id, &leaving, WithdrawReason::MemberQuit);
            groups.remove_members(group_id, &leaving);
            commits.push(self.store.submit(job(
                vec![WriteOp::RemoveMembers {
                    group_id: group_id.to_owned(),
                    user_ids: leaving,
                }],
                actor,
            )));
            commits
        };
        finish_all(commits).await.map(|_| ())
    }

    /// `dismissGroup` (owner only): every active invitation of the group is cancelled.
    pub async fn dismiss_group(&self, actor: &Actor, group_id: &str) -> Result<(), Refusal> {
        let commits = {
            let mut groups = self.write_groups()?;
            groups
                .get(group_id)?
                .check_owner(&actor.user_id, "dismiss it")?;
            let mut commits = self.withdraw(&groups, group_id, &[], WithdrawReason::GroupDismissed);
            groups.remove(group_id);
            commits.push(self.store.submit(job(
                vec![WriteOp::DismissGroup {
                    group_id: group_id.to_owned(),
                }],
                actor,
            )));
            commits
        };
        finish_all(commits).await.map(|_| ())
    }

    /// Withdraws `users` (everyone, on dismissal) from the group's active invitations. Runs
    /// under the groups write lock, before the membership changes, so the history of the
    /// withdrawal still reaches the leavers.
    fn withdraw(
        &self,
        groups: &GroupTable,
        group_id: &str,
        users: &[String],
        reason: WithdrawReason,
    ) -> Vec<Commit> {
        let invite_ids: Vec<String> = self
            .group_invites
            .lock()
            .map(|index| {
                index
                    .get(group_id)
                    .map(|set| set.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let mut commits = Vec::new();
        for invite_id in invite_ids {
            let Ok(mut shard) = self.lock_shard(&invite_id) else {
                continue;
            };
            let Some(crate::service::Active(current)) = shard.get(invite_id.as_str()) else {
                continue;
            };
            let command = Command {
                actor: String::new(),
                kind: CommandKind::Withdraw {
                    users: users.to_vec(),
                    reason,
                },
            };
            // Refused when none of the users is pending there: nothing to do.
            if let Ok(transition) = apply(current, &command, crate::now_ms()) {
                let participants = groups.participants(current);
                let (commit, invitation) =
                    self.carry_out(None, transition, Change::Update, participants);
                commits.push(commit);
                self.store_transition(&mut shard, invitation);
            }
        }
        commits
    }

    /// `inviteInGroup`: the inviter and every invitee must be members.
    pub async fn invite_in_group(
        self: &Arc<Self>,
        actor: &Actor,
        params: InviteInGroupParams,
    ) -> Result<PendingCommit, Refusal> {
        beckon_core::check_group_id("groupID", &params.group_id)?;
        let options = self
            .invitation_options(params.offline_push_info.as_ref(), params.invite_id)
            .await?;
        // Held across the creation: a member leaving now either happens before (and is
        // refused here) or after (and is withdrawn from this invitation).
        let groups = self.read_groups()?;
        let group = groups.member_group(&actor.user_id, &params.group_id)?;
        let outsiders: Vec<&str> = params
            .invitee_list
            .iter()
            .filter(|u| !group.is_member(u))
            .map(String::as_str)
            .collect();
        if !outsiders.is_empty() {
            return Err(Refusal::new(
                ErrorCode::NotGroupMember,
                format!(
                    "not members of group {}: {}",
                    params.group_id,
                    outsiders.join(", ")
                ),
            ));
        }
        let new = NewInvitation {
            invite_id: options.invite_id,
            inviter: actor.user_id.clone(),
            group_id: params.group_id.clone(),
            invitees: params.invitee_list,
            data: params.data.unwrap_or_default(),
            timeout: params.timeout.unwrap_or(0),
            online_user_only: params.online_user_only.unwrap_or(false),
            offline_push_info: options.offline_push_info,
            invite_message_id: crate::service::new_message_id(),
        };
        let participants = group.member_ids();
        let pending = self.create(actor, new, options.proposed, participants);
        drop(groups);
        pending
    }

    /// Admin: acts as the owner of `group_id`.
    pub(crate) fn owner_of(&self, group_id: &str) -> Result<Actor, Refusal> {
        let groups = self.read_groups()?;
        let group = groups.get(group_id)?;
        Ok(Actor {
            user_id: group.owner.clone(),
            instance_id: String::new(),
        })
    }
}

fn check_member_change(users: &[String]) -> Result<(), Refusal> {
    if users.is_empty() || users.len() > limits::MAX_MEMBER_CHANGE {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            format!(
                "userIDList must hold 1 to {} userIDs",
                limits::MAX_MEMBER_CHANGE
            ),
        ));
    }
    Ok(())
}
