//! Stable numeric error codes and WebSocket close codes.
//!
//! Signaling codes keep Tencent's numbers so existing apps' error handling keeps working; the
//! 9xxx codes are Beckon's own for refusals Tencent has no number for. Numbers never change
//! meaning once released.

/// Why a request was refused. The numeric value is what goes on the wire as `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// Not logged in yet (Tencent 2024).
    NotLoggedIn = 2024,
    /// Unknown or finished invitation, or the invitee already answered (Tencent 8010).
    InvitationNotActive = 8010,
    /// Caller has no right to this action on this invitation (Tencent 8011).
    NoPermission = 8011,
    /// A client-proposed inviteID is already taken (Tencent 8012).
    InviteIdExists = 8012,
    /// Cancel of an unknown or finished invitation (Tencent 8020).
    CancelNotActive = 8020,
    /// UserSig expired (Tencent 70001).
    UserSigExpired = 70001,
    /// UserSig cannot be decoded (Tencent 70003).
    UserSigMalformed = 70003,
    /// UserSig signature does not verify with this app's key (Tencent 70009).
    UserSigBadSignature = 70009,
    /// UserSig was minted for another userID (Tencent 70013).
    UserSigIdentifierMismatch = 70013,
    /// UserSig or login names another SDKAppID (Tencent 70014).
    SdkAppIdMismatch = 70014,
    /// The frame is not a JSON object with an `op`.
    MalformedRequest = 9001,
    /// `op` names no operation.
    UnknownOperation = 9002,
    /// A parameter is missing, of the wrong type or out of range; the message names it.
    InvalidParameter = 9003,
    /// The invitee (or other named user) has no account.
    UnknownUser = 9004,
    /// A user cannot invite themself.
    InviteSelf = 9005,
    /// The same user appears twice in an invitee list.
    DuplicateInvitee = 9006,
    /// `data` (or another field) is longer than its documented limit.
    TooLarge = 9007,
    /// `modifyInvitation` on an online-only invitation.
    OnlineOnlyNotModifiable = 9008,
    /// The connection sent requests faster than its rate limit.
    RateLimited = 9009,
    /// `login` on a connection that is already logged in.
    AlreadyLoggedIn = 9010,
    /// Unknown group.
    UnknownGroup = 9011,
    /// The caller or an invitee is not a member of the group.
    NotGroupMember = 9012,
    /// A `nextReqMessageID` cursor names no message of that conversation.
    UnknownMessage = 9013,
    /// An unknown conversationID.
    UnknownConversation = 9014,
    /// The server is shutting down and takes no new work; retry on another connection.
    ShuttingDown = 9015,
    /// Too many connections or pending work; retry later.
    Overloaded = 9016,
    /// Admin request without valid administrator credentials.
    AdminUnauthorized = 9017,
    /// Only the group's owner may do this.
    NotGroupOwner = 9018,
    /// The group (or the user's group count) is at its size limit.
    GroupFull = 9019,
    /// The owner cannot quit a group; dismiss it instead.
    OwnerCannotQuit = 9020,
    /// A proposed groupID is taken (also by a dismissed group).
    GroupIdExists = 9021,
    /// The server failed; the message says what. Nothing was applied.
    Internal = 9500,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 32] = [
        Self::NotLoggedIn,
        Self::InvitationNotActive,
        Self::NoPermission,
        Self::InviteIdExists,
        Self::CancelNotActive,
        Self::UserSigExpired,
        Self::UserSigMalformed,
        Self::UserSigBadSignature,
        Self::UserSigIdentifierMismatch,
        Self::SdkAppIdMismatch,
        Self::MalformedRequest,
        Self::UnknownOperation,
        Self::InvalidParameter,
        Self::UnknownUser,
        Self::InviteSelf,
        Self::DuplicateInvitee,
        Self::TooLarge,
        Self::OnlineOnlyNotModifiable,
        Self::RateLimited,
        Self::AlreadyLoggedIn,
        Self::UnknownGroup,
        Self::NotGroupMember,
        Self::UnknownMessage,
        Self::UnknownConversation,
        Self::ShuttingDown,
        Self::Overloaded,
        Self::AdminUnauthorized,
        Self::NotGroupOwner,
        Self::GroupFull,
        Self::OwnerCannotQuit,
        Self::GroupIdExists,
        Self::Internal,
    ];

    /// The number sent on the wire.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The known code with this number, if any.
    pub fn from_u32(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_u32() == code)
    }
}

/// WebSocket close codes the server uses. 4000–4099: the client should reconnect (with
/// backoff, resuming from its last sequence number); 4100–4199: it should not, because the same
/// request would be refused again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// The client did not read fast enough; its bounded send queue filled up.
    SlowConsumer = 4001,
    /// The server is shutting down; reconnect to it (or another node) shortly.
    ShuttingDown = 4002,
    /// No `login` arrived within the login deadline.
    LoginTimeout = 4003,
    /// The server has too many connections; retry later.
    Overloaded = 4004,
    /// A frame was larger than the maximum frame size.
    FrameTooLarge = 4100,
    /// The client sent a binary frame; the protocol is JSON text only.
    BinaryFrame = 4101,
    /// The client kept sending bad frames; it is broken.
    ProtocolViolation = 4102,
    /// Credentials failed or expired during the session; log in again with a fresh userSig.
    AuthExpired = 4103,
}

impl CloseCode {
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// Whether a client receiving raw close code `code` should reconnect by itself.
    pub fn should_reconnect(code: u16) -> bool {
        !(4100..4200).contains(&code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_u32()), "duplicate {code:?}");
            assert_eq!(ErrorCode::from_u32(code.as_u32()), Some(code));
        }
        assert_eq!(ErrorCode::from_u32(1), None);
    }

    #[test]
    fn close_code_ranges() {
        assert!(CloseCode::should_reconnect(
            CloseCode::SlowConsumer.as_u16()
        ));
        assert!(CloseCode::should_reconnect(1006));
        assert!(!CloseCode::should_reconnect(
            CloseCode::FrameTooLarge.as_u16()
        ));
        assert!(!CloseCode::should_reconnect(
            CloseCode::AuthExpired.as_u16()
        ));
    }
}
