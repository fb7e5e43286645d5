//! Frames on the socket, and the typed parameters and results of each operation.
//!
//! Field names are Tencent's (`inviteID`, `userID`, `SDKAppID`, ...), so the JSON is what a
//! Tencent app already builds and reads.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// `type` of a custom (signaling) history message.
pub const CUSTOM_ELEM: &str = "TIMCustomElem";

/// Operation names (`op`) the server understands.
pub mod op {
    pub const LOGIN: &str = "login";
    pub const LOGOUT: &str = "logout";
    pub const INVITE: &str = "invite";
    pub const INVITE_IN_GROUP: &str = "inviteInGroup";
    pub const CANCEL: &str = "cancel";
    pub const ACCEPT: &str = "accept";
    pub const REJECT: &str = "reject";
    pub const MODIFY_INVITATION: &str = "modifyInvitation";
    pub const GET_CONVERSATION_LIST: &str = "getConversationList";
    pub const GET_MESSAGE_LIST: &str = "getMessageList";
    pub const SET_MESSAGE_READ: &str = "setMessageRead";
    pub const PING: &str = "ping";
    pub const CREATE_GROUP: &str = "createGroup";
    pub const GET_GROUP_PROFILE: &str = "getGroupProfile";
    pub const GET_GROUP_MEMBER_LIST: &str = "getGroupMemberList";
    pub const GET_GROUP_LIST: &str = "getGroupList";
    pub const ADD_GROUP_MEMBER: &str = "addGroupMember";
    pub const DELETE_GROUP_MEMBER: &str = "deleteGroupMember";
    pub const QUIT_GROUP: &str = "quitGroup";
    pub const DISMISS_GROUP: &str = "dismissGroup";
}

/// Client → server: `{"id": .., "op": "invite", "params": {..}}`. `id` is any JSON value the
/// client picks; the result echoes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFrame {
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub id: Value,
    pub op: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

/// Server → client frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    Result(ResultFrame),
    Event(EventFrame),
}

/// The answer to one request. `code` 0 means success and `data` holds the result; any other
/// code is a refusal and `message` says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFrame {
    #[serde(default)]
    pub id: Value,
    pub code: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// An event. `seq` is the user's event sequence number; it is absent on events that are not
/// kept for resumption (login replay, online-only invitations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFrame {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub data: Value,
}

/// The JSON of `ServerFrame::Event` for typed `data`, written straight from it: the server
/// renders every event this way, without building a `Value` tree first.
pub fn event_json<T: Serialize + ?Sized>(
    name: &str,
    seq: Option<u64>,
    data: &T,
) -> serde_json::Result<String> {
    crate::json_write::event_json_with(name, seq, crate::json_write::serde_data(data))
}

/// The JSON of `ServerFrame::Result`, written straight from typed `data`: the server answers
/// every request this way, without building a `Value` tree of the result first.
pub fn result_json<T: Serialize + ?Sized>(
    id: &RawValue,
    code: u32,
    message: Option<&str>,
    data: Option<&T>,
) -> serde_json::Result<String> {
    crate::json_write::result_json_with(id, code, message, data.map(crate::json_write::serde_data))
}

/// `login` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginParams {
    #[serde(rename = "SDKAppID")]
    pub sdk_app_id: u64,
    #[serde(rename = "userID")]
    pub user_id: String,
    #[serde(rename = "userSig")]
    pub user_sig: String,
    /// Stable id of this SDK instance (device); events caused by this instance are not sent
    /// back to it, even after a reconnect.
    #[serde(
        rename = "instanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub instance_id: Option<String>,
    /// Last event `seq` this instance saw; the server first sends every later event.
    #[serde(rename = "lastSeq", default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

/// `login` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResult {
    #[serde(rename = "userID")]
    pub user_id: String,
    /// The user's newest event sequence number when the login was served.
    pub seq: u64,
    /// True when `lastSeq` was given and every later event follows, in order.
    pub resumed: bool,
    /// True when `lastSeq` was given but events after it are no longer kept (or it is from
    /// another server): the client must refresh its state; pending invitations are replayed.
    pub resync: bool,
    /// Server clock, milliseconds since the Unix epoch.
    #[serde(rename = "serverTime")]
    pub server_time: u64,
    /// How long missed events are kept for resumption, in seconds.
    #[serde(rename = "eventRetentionSeconds")]
    pub event_retention_seconds: u64,
}

/// `offlinePushInfo` of an invitation, as in Tencent's SDK. Keys of older SDK versions
/// (`androidOPPOChannelID`, `iOSSound`, ...) are kept in `extra` and stored as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfflinePushInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_push: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_voip_push: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android_info: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns_info: Option<serde_json::Map<String, Value>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// `invite` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteParams {
    #[serde(rename = "userID")]
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(
        rename = "onlineUserOnly",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub online_user_only: Option<bool>,
    #[serde(
        rename = "offlinePushInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub offline_push_info: Option<OfflinePushInfo>,
    /// A client-proposed inviteID (the server makes a UUID v4 when absent).
    #[serde(rename = "inviteID", default, skip_serializing_if = "Option::is_none")]
    pub invite_id: Option<String>,
}

/// `inviteInGroup` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInGroupParams {
    #[serde(rename = "groupID")]
    pub group_id: String,
    #[serde(rename = "inviteeList")]
    pub invitee_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(
        rename = "onlineUserOnly",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub online_user_only: Option<bool>,
    #[serde(
        rename = "offlinePushInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub offline_push_info: Option<OfflinePushInfo>,
    #[serde(rename = "inviteID", default, skip_serializing_if = "Option::is_none")]
    pub invite_id: Option<String>,
}

/// `cancel`, `accept` and `reject` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionParams {
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `modifyInvitation` parameters (`data` is required).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifyParams {
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    pub data: String,
}

/// Result of `invite`, `inviteInGroup`, `cancel`, `accept`, `reject` and `modifyInvitation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    /// The stored history message of this action; absent for online-only invitations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

/// An [`ActionResult`] written from a [`MessageView`] (the same JSON), so the server renders
/// the result from the payload the writer escaped for the events.
#[derive(Debug, Serialize)]
pub struct ActionResultView<'a> {
    #[serde(rename = "inviteID")]
    pub invite_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageView<'a>>,
}

/// A history message as Tencent's SDK shapes it, rendered for one reader (`flow`,
/// `conversationID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "conversationID")]
    pub conversation_id: String,
    #[serde(rename = "conversationType")]
    pub conversation_type: String,
    pub from: String,
    pub to: String,
    pub flow: String,
    /// Server time, seconds since the Unix epoch.
    pub time: u64,
    pub sequence: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: CustomPayload,
    #[serde(rename = "isExcludedFromUnreadCount")]
    pub is_excluded_from_unread_count: bool,
    #[serde(rename = "isExcludedFromLastMessage")]
    pub is_excluded_from_last_message: bool,
}

/// A [`Message`] as written for one reader, borrowing the stored message's parts (the same
/// fields in the same order, so the same JSON). The writer renders one per participant, and
/// the payload's data, escaped once as a JSON string, is shared by all of them: the data is
/// itself JSON, full of quotes, and escaping it was about a third of each frame's cost.
#[derive(Debug, Serialize)]
pub struct MessageView<'a> {
    #[serde(rename = "ID")]
    pub id: &'a str,
    #[serde(rename = "conversationID")]
    pub conversation_id: String,
    #[serde(rename = "conversationType")]
    pub conversation_type: &'static str,
    pub from: &'a str,
    pub to: String,
    pub flow: &'static str,
    pub time: u64,
    pub sequence: u64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub payload: CustomPayloadView<'a>,
    #[serde(rename = "isExcludedFromUnreadCount")]
    pub is_excluded_from_unread_count: bool,
    #[serde(rename = "isExcludedFromLastMessage")]
    pub is_excluded_from_last_message: bool,
}

/// `payload` of a [`MessageView`]: `data` is already a JSON string literal.
#[derive(Debug, Serialize)]
pub struct CustomPayloadView<'a> {
    pub data: &'a crate::json_write::JsonString,
    pub description: &'static str,
    pub extension: &'static str,
}

/// `payload` of a custom message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomPayload {
    pub data: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub extension: String,
}

/// `getMessageList` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetMessageListParams {
    #[serde(rename = "conversationID")]
    pub conversation_id: String,
    #[serde(
        rename = "nextReqMessageID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_req_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// `getMessageList` result: one page, oldest to newest; pass `nextReqMessageID` to get the
/// page before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageListResult {
    #[serde(rename = "messageList")]
    pub message_list: Vec<Message>,
    #[serde(rename = "nextReqMessageID")]
    pub next_req_message_id: String,
    #[serde(rename = "isCompleted")]
    pub is_completed: bool,
}

/// One conversation of the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    #[serde(rename = "conversationID")]
    pub conversation_id: String,
    /// `C2C` or `GROUP`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "unreadCount")]
    pub unread_count: u64,
    /// Newest message not excluded from the last message, if any.
    #[serde(rename = "lastMessage", default)]
    pub last_message: Option<Message>,
}

/// `getConversationList` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationListResult {
    #[serde(rename = "conversationList")]
    pub conversation_list: Vec<Conversation>,
}

/// `setMessageRead` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMessageReadParams {
    #[serde(rename = "conversationID")]
    pub conversation_id: String,
}

/// `NEW_INVITATION_RECEIVED` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvitationData {
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    pub inviter: String,
    #[serde(rename = "groupID")]
    pub group_id: String,
    #[serde(rename = "inviteeList")]
    pub invitee_list: Vec<String>,
    pub data: String,
    /// Beckon extra: the timeout the inviter set, in seconds (0: none).
    pub timeout: u64,
    /// Beckon extra: whole seconds left before the server times the invitation out, counted
    /// when the server sent this event; with `timeout` 0, until the maximum lifetime.
    #[serde(rename = "timeoutRemaining")]
    pub timeout_remaining: u64,
    /// Beckon extra: the server's deadline, milliseconds since the Unix epoch.
    #[serde(rename = "expiresAt")]
    pub expires_at: u64,
    #[serde(rename = "onlineUserOnly")]
    pub online_user_only: bool,
    /// Beckon extra: true when sent at login for an invitation still pending.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

/// `INVITEE_ACCEPTED` / `INVITEE_REJECTED` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteeAnsweredData {
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    pub inviter: String,
    #[serde(rename = "groupID")]
    pub group_id: String,
    pub invitee: String,
    pub data: String,
    /// Beckon extra: true on the answering user's other devices.
    #[serde(
        rename = "handledOnOtherDevice",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub handled_on_other_device: bool,
    /// Beckon extra: set when the server ended this invitee's part because they left the
    /// group (`memberQuit`, `memberRemoved`); absent on a real answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `INVITATION_CANCELLED` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationCancelledData {
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    pub inviter: String,
    #[serde(rename = "groupID")]
    pub group_id: String,
    pub data: String,
    /// Beckon extra: true on the inviter's other devices.
    #[serde(
        rename = "handledOnOtherDevice",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub handled_on_other_device: bool,
    /// Beckon extra: set when the server cancelled because of a group change (`memberQuit`,
    /// `memberRemoved`, `inviterLeft`, `groupDismissed`); absent on a real cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `INVITATION_TIMEOUT` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationTimeoutData {
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    pub inviter: String,
    #[serde(rename = "groupID")]
    pub group_id: String,
    #[serde(rename = "inviteeList")]
    pub invitee_list: Vec<String>,
    pub data: String,
    #[serde(rename = "isSelfTimeout")]
    pub is_self_timeout: bool,
}

/// `INVITATION_MODIFIED` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationModifiedData {
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    pub data: String,
    /// Beckon extra: who changed it.
    #[serde(rename = "modifiedBy")]
    pub modified_by: String,
}

/// `{userID}` entry of a group's `memberList` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRef {
    #[serde(rename = "userID")]
    pub user_id: String,
}

/// `createGroup` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGroupParams {
    /// Proposed groupID; the server makes one (`@BKN#...`) when absent.
    #[serde(rename = "groupID", default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub name: String,
    /// Tencent's group type names: `Private` (default, Tencent's GRP_WORK), `Public`,
    /// `ChatRoom`, `AVChatRoom`, `Community`. Beckon treats them alike.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Initial members besides the creator (who always becomes the owner).
    #[serde(rename = "memberList", default)]
    pub member_list: Vec<MemberRef>,
}

/// Parameters naming one group (`getGroupProfile`, `quitGroup`, `dismissGroup`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupIdParams {
    #[serde(rename = "groupID")]
    pub group_id: String,
}

/// `getGroupMemberList` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMemberListParams {
    #[serde(rename = "groupID")]
    pub group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// `addGroupMember` / `deleteGroupMember` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMembersParams {
    #[serde(rename = "groupID")]
    pub group_id: String,
    #[serde(rename = "userIDList")]
    pub user_id_list: Vec<String>,
}

/// A group as Tencent's SDK shapes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProfile {
    #[serde(rename = "groupID")]
    pub group_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "ownerID")]
    pub owner_id: String,
    #[serde(rename = "memberCount")]
    pub member_count: u64,
    #[serde(rename = "maxMemberCount")]
    pub max_member_count: u64,
    /// Server time, seconds.
    #[serde(rename = "createTime")]
    pub create_time: u64,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    #[serde(rename = "userID")]
    pub user_id: String,
    /// `Owner` or `Member`.
    pub role: String,
    /// Server time, seconds.
    #[serde(rename = "joinTime")]
    pub join_time: u64,
}

/// `createGroup` / `getGroupProfile` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupResult {
    pub group: GroupProfile,
}

/// `getGroupList` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupListResult {
    #[serde(rename = "groupList")]
    pub group_list: Vec<GroupProfile>,
}

/// `getGroupMemberList` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMemberListResult {
    #[serde(rename = "memberList")]
    pub member_list: Vec<GroupMember>,
}

/// `addGroupMember` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddGroupMemberResult {
    #[serde(rename = "successUserIDList")]
    pub success_user_id_list: Vec<String>,
    #[serde(rename = "failureUserIDList")]
    pub failure_user_id_list: Vec<String>,
    #[serde(rename = "existedUserIDList")]
    pub existed_user_id_list: Vec<String>,
    pub group: GroupProfile,
}

/// `deleteGroupMember` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteGroupMemberResult {
    pub group: GroupProfile,
    #[serde(rename = "userIDList")]
    pub user_id_list: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn result_and_event_frames_are_tagged() {
        let frame = ServerFrame::Result(ResultFrame {
            id: json!(7),
            code: 0,
            message: None,
            data: Some(json!({"a": 1})),
        });
        assert_eq!(
            serde_json::to_string(&frame).unwrap(),
            r#"{"type":"result","id":7,"code":0,"data":{"a":1}}"#
        );
        let event: ServerFrame =
            serde_json::from_str(r#"{"type":"event","name":"x","seq":3,"data":{}}"#).unwrap();
        assert_eq!(
            event,
            ServerFrame::Event(EventFrame {
                name: "x".into(),
                seq: Some(3),
                data: json!({})
            })
        );
    }

    #[test]
    fn typed_events_render_as_event_frames() {
        let data = [CustomPayload {
            data: "d\"x".into(),
            description: String::new(),
            extension: "e".into(),
        }];
        for seq in [Some(9), None] {
            let typed = event_json("MESSAGE_RECEIVED", seq, &data).unwrap();
            let through_value = serde_json::to_string(&ServerFrame::Event(EventFrame {
                name: "MESSAGE_RECEIVED".into(),
                seq,
                data: serde_json::to_value(&data).unwrap(),
            }))
            .unwrap();
            assert_eq!(typed, through_value);
        }
    }

    #[test]
    fn typed_results_render_as_result_frames() {
        let data = ActionResult {
            invite_id: "i\"1".into(),
            message: None,
        };
        let seven = RawValue::from_string("7".into()).unwrap();
        let typed = result_json(&seven, 0, None, Some(&data)).unwrap();
        let through_value = serde_json::to_string(&ServerFrame::Result(ResultFrame {
            id: json!(7),
            code: 0,
            message: None,
            data: Some(serde_json::to_value(&data).unwrap()),
        }))
        .unwrap();
        assert_eq!(typed, through_value);
        let a = RawValue::from_string("\"a\"".into()).unwrap();
        let refused = result_json::<Value>(&a, 8010, Some("no"), None).unwrap();
        let through_value = serde_json::to_string(&ServerFrame::Result(ResultFrame {
            id: json!("a"),
            code: 8010,
            message: Some("no".into()),
            data: None,
        }))
        .unwrap();
        assert_eq!(refused, through_value);
    }

    #[test]
    fn offline_push_info_keeps_older_keys_and_checks_types() {
        assert!(serde_json::from_value::<OfflinePushInfo>(json!({"title": 5})).is_err());
        let ok: OfflinePushInfo = serde_json::from_value(
            json!({"title": "t", "apnsInfo": {"sound": "a"}, "iOSSound": "x"}),
        )
        .unwrap();
        assert_eq!(ok.title.as_deref(), Some("t"));
        assert_eq!(ok.extra.get("iOSSound"), Some(&json!("x")));
    }
}
