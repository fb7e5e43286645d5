//! The invitation state machine: every rule of the signaling lifecycle, as pure functions.
//!
//! `create` and `apply` take the stored invitation, a command and the server time, and return
//! the new invitation with its effects (history to store, events to send, deadline to set or
//! clear). No I/O, no clock reads, no async: the server feeds the clock and carries the effects
//! out, so a reader of this crate knows every rule without reading the transport.

pub mod groups;
pub mod history;
mod rules;

pub use groups::{Group, Member};
pub use history::{ConversationRef, StoredMessage};
pub use rules::{apply, create, Command, CommandKind, NewInvitation, Settings, WithdrawReason};

use beckon_proto::{limits, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Where one invitee stands. Only `Pending` can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InviteeState {
    Pending,
    Accepted,
    Rejected,
    Timeout,
    Cancelled,
}

/// One invitee and their own answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitee {
    pub user_id: String,
    pub state: InviteeState,
}

/// An invitation as the server stores it: the single source of truth for every party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub invite_id: String,
    pub inviter: String,
    /// `""` for one-to-one invitations.
    pub group_id: String,
    pub invitees: Vec<Invitee>,
    /// The invitation's current app data (the invite's, or the last `modifyInvitation`'s).
    pub data: String,
    /// Seconds, as the inviter set it; 0 means "no timeout" (bounded by the maximum lifetime).
    pub timeout: u64,
    pub online_user_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: most invitations have none, and a pending invitation should be small.
    pub offline_push_info: Option<Box<Value>>,
    /// Server time of creation, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Server time at which still-pending invitees time out.
    pub deadline_ms: u64,
    /// ID of the stored invite history message (absent for online-only invitations); the
    /// message `modifyInvitation` rewrites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_message_id: Option<String>,
    /// Invitees who left the group: they hear nothing more of it and cannot act on it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departed: Vec<String>,
}

impl Invitation {
    /// Active while at least one invitee is pending; finished for good afterwards.
    pub fn is_active(&self) -> bool {
        self.invitees
            .iter()
            .any(|i| i.state == InviteeState::Pending)
    }

    /// Invitees still pending, in invitation order.
    pub fn pending(&self) -> impl Iterator<Item = &str> {
        self.invitees
            .iter()
            .filter(|i| i.state == InviteeState::Pending)
            .map(|i| i.user_id.as_str())
    }

    /// The state of `user_id`, when invited.
    pub fn state_of(&self, user_id: &str) -> Option<InviteeState> {
        self.invitees
            .iter()
            .find(|i| i.user_id == user_id)
            .map(|i| i.state)
    }

    /// The conversation this invitation's history goes into.
    pub fn conversation(&self) -> ConversationRef {
        if self.group_id.is_empty() {
            let invitee = self.invitees.first().map_or("", |i| i.user_id.as_str());
            ConversationRef::c2c(&self.inviter, invitee)
        } else {
            ConversationRef::Group {
                group_id: self.group_id.clone(),
            }
        }
    }

    /// `NEW_INVITATION_RECEIVED` data as sent at `now_ms` (live or as a login replay).
    pub fn new_invitation_data(
        &self,
        now_ms: u64,
        replay: bool,
    ) -> beckon_proto::frames::NewInvitationData {
        beckon_proto::frames::NewInvitationData {
            invite_id: self.invite_id.clone(),
            inviter: self.inviter.clone(),
            group_id: self.group_id.clone(),
            invitee_list: self.invitees.iter().map(|i| i.user_id.clone()).collect(),
            data: self.data.clone(),
            timeout: self.timeout,
            timeout_remaining: self.deadline_ms.saturating_sub(now_ms).div_ceil(1000),
            expires_at: self.deadline_ms,
            online_user_only: self.online_user_only,
            replay,
        }
    }
}

/// A refused command: a wire code and a message that says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_u32())
    }
}

/// One event to one user. The store numbers it in the user's event sequence (unless the
/// invitation is online-only) and the server sends it to every connected device of the user,
/// except the acting device when `skip_origin` is set.
#[derive(Debug, Clone)]
pub struct Notification {
    pub recipient: String,
    pub skip_origin: bool,
    pub name: &'static str,
    /// The event's `data` as JSON, rendered once from its typed struct: every frame of the
    /// event embeds it as it is.
    pub data: Box<RawValue>,
}

impl PartialEq for Notification {
    fn eq(&self, other: &Self) -> bool {
        self.recipient == other.recipient
            && self.skip_origin == other.skip_origin
            && self.name == other.name
            && self.data.get() == other.data.get()
    }
}

/// What the history gets from one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryEffect {
    /// Store a new signaling message from `from` with this payload.
    Append {
        from: String,
        payload: beckon_proto::signaling::SignalingInfo,
        /// Kept out of `unreadCount` and `lastMessage` (the `excludeFrom…` flags).
        excluded: bool,
    },
    /// Rewrite the stored invite message's payload (`modifyInvitation`).
    Rewrite {
        message_id: String,
        payload: beckon_proto::signaling::SignalingInfo,
    },
}

/// What happens to the invitation's deadline timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineEffect {
    Set(u64),
    Clear,
    Unchanged,
}

/// Everything an accepted command causes, for the server to carry out.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    pub history: Option<HistoryEffect>,
    pub notifications: Vec<Notification>,
    pub deadline: DeadlineEffect,
    /// Invitees who stopped being pending with this command.
    pub resolved: Vec<String>,
}

/// The outcome of an accepted command.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub invitation: Invitation,
    pub effects: Effects,
}

/// Checks a `userID`: 1–128 bytes of UTF-8 without control characters.
pub fn check_user_id(field: &str, user_id: &str) -> Result<(), Refusal> {
    check_identifier(field, user_id, limits::MAX_USER_ID_BYTES)
}

/// Checks a `groupID` (same rules as a userID).
pub fn check_group_id(field: &str, group_id: &str) -> Result<(), Refusal> {
    check_identifier(field, group_id, limits::MAX_GROUP_ID_BYTES)
}

/// Checks a client-proposed `inviteID`.
pub fn check_invite_id(field: &str, invite_id: &str) -> Result<(), Refusal> {
    check_identifier(field, invite_id, limits::MAX_INVITE_ID_BYTES)
}

fn check_identifier(field: &str, value: &str, max: usize) -> Result<(), Refusal> {
    if value.is_empty() || value.len() > max {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            format!("{field} must be 1 to {max} bytes long, got {}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// Checks an action's `data` against the size limit.
pub fn check_data(data: &str) -> Result<(), Refusal> {
    if data.len() > limits::MAX_DATA_BYTES {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "data is {} bytes; the limit is {} bytes",
                data.len(),
                limits::MAX_DATA_BYTES
            ),
        ));
    }
    Ok(())
}
