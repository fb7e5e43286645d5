//! The lifecycle rules: who may do what to an invitation, and what each action causes.

use crate::{
    check_data, DeadlineEffect, Effects, HistoryEffect, Invitation, Invitee, InviteeState,
    Notification, Refusal, Transition,
};
use beckon_proto::frames::{
    InvitationCancelledData, InvitationModifiedData, InvitationTimeoutData, InviteeAnsweredData,
};
use beckon_proto::signaling::{data_flag, event, ActionType, SignalingInfo, BUSINESS_ID};
use beckon_proto::{limits, ErrorCode};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashSet;

/// Server-wide settings the rules depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Lifetime of an invitation with `timeout: 0`, in milliseconds.
    pub max_lifetime_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_lifetime_ms: 24 * 3600 * 1000,
        }
    }
}

/// A command on an existing invitation, by `actor` (the server itself for `Timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub actor: String,
    pub kind: CommandKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    Cancel {
        data: String,
    },
    Accept {
        data: String,
    },
    Reject {
        data: String,
    },
    Modify {
        data: String,
    },
    /// The deadline passed (the server's timer fired).
    Timeout,
    /// Group members stopped being members (quit, removed, or the group was dismissed):
    /// those pending stop ringing. If the inviter is among them, or the group is gone, the
    /// whole invitation is cancelled.
    Withdraw {
        users: Vec<String>,
        reason: WithdrawReason,
    },
}

/// Why members were withdrawn from a group invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    MemberQuit,
    MemberRemoved,
    GroupDismissed,
}

impl WithdrawReason {
    /// The `reason` extra in event data.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MemberQuit => "memberQuit",
            Self::MemberRemoved => "memberRemoved",
            Self::GroupDismissed => "groupDismissed",
        }
    }
}

/// A new invitation, as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvitation {
    pub invite_id: String,
    pub inviter: String,
    pub group_id: String,
    pub invitees: Vec<String>,
    pub data: String,
    pub timeout: u64,
    pub online_user_only: bool,
    pub offline_push_info: Option<Value>,
    /// ID the invite history message will get (ignored for online-only invitations).
    pub invite_message_id: String,
}

const EXCLUDE_KEYS: [&str; 2] = [
    "excludeFromHistoryMessage",
    "excludeOriginalSignalingFromHistoryMessage",
];
const EXCLUDE_TIMEOUT_KEY: &str = "excludeTimeoutSignalingFromHistoryMessage";

fn excluded_by(data: &str) -> bool {
    EXCLUDE_KEYS.iter().any(|key| data_flag(data, key))
}

fn to_raw<T: serde::Serialize>(data: &T) -> Box<RawValue> {
    // Event data structs hold only strings, numbers, booleans and lists.
    serde_json::value::to_raw_value(data).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

fn payload(
    inv: &Invitation,
    action: ActionType,
    data: &str,
    timeout: u64,
    invitees: Vec<String>,
) -> SignalingInfo {
    SignalingInfo {
        business_id: BUSINESS_ID,
        timeout,
        data: data.to_owned(),
        invite_id: inv.invite_id.clone(),
        group_id: inv.group_id.clone(),
        action_type: action.as_u8(),
        inviter: inv.inviter.clone(),
        invitee_list: invitees,
    }
}

/// Creates an invitation at `now_ms`. The caller has already checked that every invitee has
/// an account (and, for groups, membership); these are the invitation's own rules.
pub fn create(new: NewInvitation, now_ms: u64, settings: Settings) -> Result<Transition, Refusal> {
    if new.invitees.is_empty() {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            "the invitee list is empty",
        ));
    }
    if new.invitees.len() > limits::MAX_INVITEES {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            format!(
                "at most {} invitees per invitation, got {}",
                limits::MAX_INVITEES,
                new.invitees.len()
            ),
        ));
    }
    let mut seen = HashSet::with_capacity(new.invitees.len());
    for invitee in &new.invitees {
        if *invitee == new.inviter {
            return Err(Refusal::new(
                ErrorCode::InviteSelf,
                "you cannot invite yourself",
            ));
        }
        if !seen.insert(invitee.as_str()) {
            return Err(Refusal::new(
                ErrorCode::DuplicateInvitee,
                format!("{invitee} appears more than once in the invitee list"),
            ));
        }
    }
    if new.timeout > limits::MAX_TIMEOUT_SECONDS {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            format!(
                "timeout must be 0 to {} seconds, got {}",
                limits::MAX_TIMEOUT_SECONDS,
                new.timeout
            ),
        ));
    }
    check_data(&new.data)?;

    let lifetime_ms = if new.timeout > 0 {
        new.timeout * 1000
    } else {
        settings.max_lifetime_ms
    };
    let invitation = Invitation {
        invite_id: new.invite_id,
        inviter: new.inviter,
        group_id: new.group_id,
        invitees: new
            .invitees
            .into_iter()
            .map(|user_id| Invitee {
                user_id,
                state: InviteeState::Pending,
            })
            .collect(),
        data: new.data,
        timeout: new.timeout,
        online_user_only: new.online_user_only,
        offline_push_info: new.offline_push_info.map(Box::new),
        created_at_ms: now_ms,
        deadline_ms: now_ms.saturating_add(lifetime_ms),
        invite_message_id: (!new.online_user_only).then_some(new.invite_message_id),
        departed: Vec::new(),
    };
    let event_data = to_raw(&invitation.new_invitation_data(now_ms, false));
    let notifications = invitation
        .invitees
        .iter()
        .map(|i| Notification {
            recipient: i.user_id.clone(),
            skip_origin: false,
            name: event::NEW_INVITATION_RECEIVED,
            data: event_data.clone(),
        })
        .collect();
    let history = (!invitation.online_user_only).then(|| HistoryEffect::Append {
        from: invitation.inviter.clone(),
        payload: payload(
            &invitation,
            ActionType::Invite,
            &invitation.data,
            invitation.timeout,
            invitation
                .invitees
                .iter()
                .map(|i| i.user_id.clone())
                .collect(),
        ),
        excluded: excluded_by(&invitation.data),
    });
    let deadline = DeadlineEffect::Set(invitation.deadline_ms);
    Ok(Transition {
        invitation,
        effects: Effects {
            history,
            notifications,
            deadline,
            resolved: Vec::new(),
        },
    })
}

/// Applies `command` to the stored invitation at `now_ms`.
pub fn apply(inv: &Invitation, command: &Command, now_ms: u64) -> Result<Transition, Refusal> {
    let mut transition = match &command.kind {
        CommandKind::Cancel { data } => cancel(inv, &command.actor, data),
        CommandKind::Accept { data } => answer(inv, &command.actor, data, InviteeState::Accepted),
        CommandKind::Reject { data } => answer(inv, &command.actor, data, InviteeState::Rejected),
        CommandKind::Modify { data } => modify(inv, &command.actor, data),
        CommandKind::Timeout => timeout(inv, now_ms),
        CommandKind::Withdraw { users, reason } => withdraw(inv, users, *reason),
    }?;
    // Members who had left the group hear nothing more of its invitations (those leaving
    // with this very command still hear that they stop ringing).
    let departed = &inv.departed;
    if !departed.is_empty() {
        transition
            .effects
            .notifications
            .retain(|n| !departed.contains(&n.recipient));
    }
    Ok(transition)
}

fn cancel(inv: &Invitation, actor: &str, data: &str) -> Result<Transition, Refusal> {
    if !inv.is_active() {
        return Err(Refusal::new(
            ErrorCode::CancelNotActive,
            "the invitation has already ended",
        ));
    }
    if actor != inv.inviter {
        return Err(Refusal::new(
            ErrorCode::NoPermission,
            "only the inviter can cancel an invitation",
        ));
    }
    check_data(data)?;
    let mut next = inv.clone();
    let resolved: Vec<String> = inv.pending().map(str::to_owned).collect();
    for invitee in &mut next.invitees {
        if invitee.state == InviteeState::Pending {
            invitee.state = InviteeState::Cancelled;
        }
    }
    let event_data = |handled_on_other_device| {
        to_raw(&InvitationCancelledData {
            invite_id: inv.invite_id.clone(),
            inviter: inv.inviter.clone(),
            group_id: inv.group_id.clone(),
            data: data.to_owned(),
            handled_on_other_device,
            reason: None,
        })
    };
    let mut notifications: Vec<Notification> = resolved
        .iter()
        .map(|user| Notification {
            recipient: user.clone(),
            skip_origin: false,
            name: event::INVITATION_CANCELLED,
            data: event_data(false),
        })
        .collect();
    notifications.push(Notification {
        recipient: inv.inviter.clone(),
        skip_origin: true,
        name: event::INVITATION_CANCELLED,
        data: event_data(true),
    });
    let history = (!inv.online_user_only).then(|| HistoryEffect::Append {
        from: inv.inviter.clone(),
        payload: payload(inv, ActionType::CancelInvite, data, 0, resolved.clone()),
        excluded: excluded_by(data),
    });
    Ok(Transition {
        invitation: next,
        effects: Effects {
            history,
            notifications,
            deadline: DeadlineEffect::Clear,
            resolved,
        },
    })
}

fn answer(
    inv: &Invitation,
    actor: &str,
    data: &str,
    answer: InviteeState,
) -> Result<Transition, Refusal> {
    let verb = if answer == InviteeState::Accepted {
        "accept"
    } else {
        "reject"
    };
    if !inv.is_active() {
        return Err(Refusal::new(
            ErrorCode::InvitationNotActive,
            "the invitation has already ended",
        ));
    }
    match inv.state_of(actor) {
        None => {
            return Err(Refusal::new(
                ErrorCode::NoPermission,
                format!("only an invitee can {verb} this invitation"),
            ))
        }
        Some(InviteeState::Pending) => {}
        Some(state) => {
            return Err(Refusal::new(
                ErrorCode::InvitationNotActive,
                format!(
                    "you already answered this invitation (state: {})",
                    state_name(state)
                ),
            ))
        }
    }
    check_data(data)?;
    let mut next = inv.clone();
    for invitee in &mut next.invitees {
        if invitee.user_id == actor {
            invitee.state = answer;
        }
    }
    let (name, action) = if answer == InviteeState::Accepted {
        (event::INVITEE_ACCEPTED, ActionType::AcceptInvite)
    } else {
        (event::INVITEE_REJECTED, ActionType::RejectInvite)
    };
    let event_data = |handled_on_other_device| {
        to_raw(&InviteeAnsweredData {
            invite_id: inv.invite_id.clone(),
            inviter: inv.inviter.clone(),
            group_id: inv.group_id.clone(),
            invitee: actor.to_owned(),
            data: data.to_owned(),
            handled_on_other_device,
            reason: None,
        })
    };
    let mut notifications = vec![Notification {
        recipient: inv.inviter.clone(),
        skip_origin: false,
        name,
        data: event_data(false),
    }];
    if !inv.group_id.is_empty() {
        notifications.extend(inv.invitees.iter().filter(|i| i.user_id != actor).map(|i| {
            Notification {
                recipient: i.user_id.clone(),
                skip_origin: false,
                name,
                data: event_data(false),
            }
        }));
    }
    notifications.push(Notification {
        recipient: actor.to_owned(),
        skip_origin: true,
        name,
        data: event_data(true),
    });
    let history = (!inv.online_user_only).then(|| HistoryEffect::Append {
        from: actor.to_owned(),
        payload: payload(inv, action, data, 0, vec![actor.to_owned()]),
        excluded: excluded_by(data),
    });
    let deadline = if next.is_active() {
        DeadlineEffect::Unchanged
    } else {
        DeadlineEffect::Clear
    };
    Ok(Transition {
        invitation: next,
        effects: Effects {
            history,
            notifications,
            deadline,
            resolved: vec![actor.to_owned()],
        },
    })
}

fn modify(inv: &Invitation, actor: &str, data: &str) -> Result<Transition, Refusal> {
    if !inv.is_active() {
        return Err(Refusal::new(
            ErrorCode::InvitationNotActive,
            "the invitation has already ended",
        ));
    }
    if inv.online_user_only {
        return Err(Refusal::new(
            ErrorCode::OnlineOnlyNotModifiable,
            "an online-only invitation cannot be modified",
        ));
    }
    if actor != inv.inviter
        && (inv.state_of(actor).is_none() || inv.departed.iter().any(|d| d == actor))
    {
        return Err(Refusal::new(
            ErrorCode::NoPermission,
            "only the inviter or an invitee can modify this invitation",
        ));
    }
    check_data(data)?;
    let mut next = inv.clone();
    data.clone_into(&mut next.data);
    let event_data = to_raw(&InvitationModifiedData {
        invite_id: inv.invite_id.clone(),
        data: data.to_owned(),
        modified_by: actor.to_owned(),
    });
    let notifications = std::iter::once(inv.inviter.as_str())
        .chain(inv.invitees.iter().map(|i| i.user_id.as_str()))
        .map(|user| Notification {
            recipient: user.to_owned(),
            skip_origin: user == actor,
            name: event::INVITATION_MODIFIED,
            data: event_data.clone(),
        })
        .collect();
    let history = inv
        .invite_message_id
        .as_ref()
        .map(|message_id| HistoryEffect::Rewrite {
            message_id: message_id.clone(),
            payload: payload(
                &next,
                ActionType::Invite,
                data,
                inv.timeout,
                inv.invitees.iter().map(|i| i.user_id.clone()).collect(),
            ),
        });
    Ok(Transition {
        invitation: next,
        effects: Effects {
            history,
            notifications,
            deadline: DeadlineEffect::Unchanged,
            resolved: Vec::new(),
        },
    })
}

fn timeout(inv: &Invitation, now_ms: u64) -> Result<Transition, Refusal> {
    if !inv.is_active() {
        return Err(Refusal::new(
            ErrorCode::InvitationNotActive,
            "the invitation has already ended",
        ));
    }
    if now_ms < inv.deadline_ms {
        return Err(Refusal::new(
            ErrorCode::Internal,
            "the deadline has not passed yet",
        ));
    }
    let timed_out: Vec<String> = inv.pending().map(str::to_owned).collect();
    let mut next = inv.clone();
    for invitee in &mut next.invitees {
        if invitee.state == InviteeState::Pending {
            invitee.state = InviteeState::Timeout;
        }
    }
    let event_data = |invitee_list: Vec<String>, is_self_timeout| {
        to_raw(&InvitationTimeoutData {
            invite_id: inv.invite_id.clone(),
            inviter: inv.inviter.clone(),
            group_id: inv.group_id.clone(),
            invitee_list,
            data: inv.data.clone(),
            is_self_timeout,
        })
    };
    let mut notifications = vec![Notification {
        recipient: inv.inviter.clone(),
        skip_origin: false,
        name: event::INVITATION_TIMEOUT,
        data: event_data(timed_out.clone(), false),
    }];
    notifications.extend(timed_out.iter().map(|user| Notification {
        recipient: user.clone(),
        skip_origin: false,
        name: event::INVITATION_TIMEOUT,
        data: event_data(vec![user.clone()], true),
    }));
    let history = (!inv.online_user_only).then(|| HistoryEffect::Append {
        from: inv.inviter.clone(),
        payload: payload(
            inv,
            ActionType::InviteTimeout,
            &inv.data,
            0,
            timed_out.clone(),
        ),
        excluded: data_flag(&inv.data, EXCLUDE_TIMEOUT_KEY),
    });
    Ok(Transition {
        invitation: next,
        effects: Effects {
            history,
            notifications,
            deadline: DeadlineEffect::Clear,
            resolved: timed_out,
        },
    })
}

fn withdraw(
    inv: &Invitation,
    users: &[String],
    reason: WithdrawReason,
) -> Result<Transition, Refusal> {
    if !inv.is_active() {
        return Err(Refusal::new(
            ErrorCode::InvitationNotActive,
            "the invitation has already ended",
        ));
    }
    let whole = reason == WithdrawReason::GroupDismissed || users.contains(&inv.inviter);
    let newly_departed: Vec<String> = inv
        .invitees
        .iter()
        .map(|i| &i.user_id)
        .filter(|user| users.contains(user) && !inv.departed.contains(user))
        .cloned()
        .collect();
    if !whole && newly_departed.is_empty() {
        return Err(Refusal::new(
            ErrorCode::InvitationNotActive,
            "none of these users takes part in the invitation",
        ));
    }
    let leaving: Vec<String> = inv
        .pending()
        .filter(|user| whole || users.iter().any(|u| u == user))
        .map(str::to_owned)
        .collect();
    let mut next = inv.clone();
    next.departed.extend(newly_departed);
    if leaving.is_empty() {
        // Only members who had already answered left: nothing rings, nobody is told.
        return Ok(Transition {
            invitation: next,
            effects: Effects {
                history: None,
                notifications: Vec::new(),
                deadline: DeadlineEffect::Unchanged,
                resolved: Vec::new(),
            },
        });
    }
    for invitee in &mut next.invitees {
        if leaving.contains(&invitee.user_id) {
            invitee.state = InviteeState::Cancelled;
        }
    }
    let reason_text = if whole && reason != WithdrawReason::GroupDismissed {
        "inviterLeft"
    } else {
        reason.as_str()
    };
    let cancelled = to_raw(&InvitationCancelledData {
        invite_id: inv.invite_id.clone(),
        inviter: inv.inviter.clone(),
        group_id: inv.group_id.clone(),
        data: String::new(),
        handled_on_other_device: false,
        reason: Some(reason_text.to_owned()),
    });
    let mut notifications: Vec<Notification> = leaving
        .iter()
        .map(|user| Notification {
            recipient: user.clone(),
            skip_origin: false,
            name: event::INVITATION_CANCELLED,
            data: cancelled.clone(),
        })
        .collect();
    if whole {
        // The invitation is over for everyone, the inviter included.
        notifications.push(Notification {
            recipient: inv.inviter.clone(),
            skip_origin: false,
            name: event::INVITATION_CANCELLED,
            data: cancelled,
        });
    } else {
        // The others learn who left, as a refusal they already know how to handle.
        let others: Vec<&str> = std::iter::once(inv.inviter.as_str())
            .chain(inv.invitees.iter().map(|i| i.user_id.as_str()))
            .filter(|user| {
                !leaving.iter().any(|l| l == user) && !next.departed.iter().any(|d| d == user)
            })
            .collect();
        for leaver in &leaving {
            let data = to_raw(&InviteeAnsweredData {
                invite_id: inv.invite_id.clone(),
                inviter: inv.inviter.clone(),
                group_id: inv.group_id.clone(),
                invitee: leaver.clone(),
                data: String::new(),
                handled_on_other_device: false,
                reason: Some(reason_text.to_owned()),
            });
            notifications.extend(others.iter().map(|user| Notification {
                recipient: (*user).to_owned(),
                skip_origin: false,
                name: event::INVITEE_REJECTED,
                data: data.clone(),
            }));
        }
    }
    let history = (!inv.online_user_only).then(|| HistoryEffect::Append {
        from: inv.inviter.clone(),
        payload: payload(inv, ActionType::CancelInvite, "", 0, leaving.clone()),
        excluded: false,
    });
    let deadline = if next.is_active() {
        DeadlineEffect::Unchanged
    } else {
        DeadlineEffect::Clear
    };
    Ok(Transition {
        invitation: next,
        effects: Effects {
            history,
            notifications,
            deadline,
            resolved: leaving,
        },
    })
}

fn state_name(state: InviteeState) -> &'static str {
    match state {
        InviteeState::Pending => "pending",
        InviteeState::Accepted => "accepted",
        InviteeState::Rejected => "rejected",
        InviteeState::Timeout => "timeout",
        InviteeState::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests;
