//! Documented limits on sizes and counts (see docs/protocol.md, "Limits").

/// Largest WebSocket frame the server reads; bigger frames close the connection (4100).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Longest `userID`, in bytes of UTF-8.
pub const MAX_USER_ID_BYTES: usize = 128;
/// Longest `groupID`, in bytes of UTF-8.
pub const MAX_GROUP_ID_BYTES: usize = 128;
/// Longest `inviteID` a client may propose, in bytes.
pub const MAX_INVITE_ID_BYTES: usize = 128;
/// Longest `data` string of an action, in bytes of UTF-8.
pub const MAX_DATA_BYTES: usize = 8 * 1024;
/// Largest `offlinePushInfo` object, serialized, in bytes.
pub const MAX_OFFLINE_PUSH_INFO_BYTES: usize = 4 * 1024;
/// Longest invitation timeout, in seconds.
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;
/// Most invitees of one invitation.
pub const MAX_INVITEES: usize = 200;
/// Most messages one `getMessageList` page returns (Tencent's limit is 15).
pub const MAX_MESSAGE_PAGE: usize = 100;
/// Most conversations `getConversationList` returns (the most recently active).
pub const MAX_CONVERSATIONS: usize = 500;
/// Default `getMessageList` page size, as Tencent's.
pub const DEFAULT_MESSAGE_PAGE: usize = 15;
/// Longest request `id` echoed back, serialized, in bytes.
pub const MAX_REQUEST_ID_BYTES: usize = 256;
/// Most members of one group, the owner included.
pub const MAX_GROUP_MEMBERS: usize = 1000;
/// Most groups one user may be a member of.
pub const MAX_GROUPS_PER_USER: usize = 1000;
/// Longest group name, in bytes of UTF-8.
pub const MAX_GROUP_NAME_BYTES: usize = 100;
/// Most userIDs in one `addGroupMember` / `deleteGroupMember` call.
pub const MAX_MEMBER_CHANGE: usize = 500;
/// Most members one `getGroupMemberList` page returns.
pub const MAX_MEMBER_PAGE: usize = 100;
