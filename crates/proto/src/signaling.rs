//! Signaling names and the history-message payload format Tencent clients already parse.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Event names, identical to the values of Tencent's `TSignaling` so app code keeps working.
pub mod event {
    pub const NEW_INVITATION_RECEIVED: &str = "newInvitationReceived";
    pub const INVITEE_ACCEPTED: &str = "ts_invitee_accepted";
    pub const INVITEE_REJECTED: &str = "ts_invitee_rejected";
    pub const INVITATION_CANCELLED: &str = "ts_invitation_cancelled";
    pub const INVITATION_TIMEOUT: &str = "ts_invitation_timeout";
    pub const INVITATION_MODIFIED: &str = "ts_invitation_modified";
    /// New history messages (data: a list of messages), Tencent's `EVENT.MESSAGE_RECEIVED`.
    pub const MESSAGE_RECEIVED: &str = "onMessageReceived";
    /// Changed history messages (data: a list of messages), Tencent's `EVENT.MESSAGE_MODIFIED`.
    pub const MESSAGE_MODIFIED: &str = "onMessageModified";

    /// The six signaling events, for validating listener names.
    pub const SIGNALING: [&str; 6] = [
        NEW_INVITATION_RECEIVED,
        INVITEE_ACCEPTED,
        INVITEE_REJECTED,
        INVITATION_CANCELLED,
        INVITATION_TIMEOUT,
        INVITATION_MODIFIED,
    ];
}

/// `actionType` values of the history payload (Tencent's `ACTION_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ActionType {
    Unknown = 0,
    Invite = 1,
    CancelInvite = 2,
    AcceptInvite = 3,
    RejectInvite = 4,
    InviteTimeout = 5,
}

impl ActionType {
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// `businessID` of every signaling payload.
pub const BUSINESS_ID: u32 = 1;

/// The JSON stored in a signaling history message's `payload.data`. Field order is part of
/// the contract: serde writes fields in declaration order, which is Tencent's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalingInfo {
    #[serde(rename = "businessID")]
    pub business_id: u32,
    pub timeout: u64,
    pub data: String,
    #[serde(rename = "inviteID")]
    pub invite_id: String,
    #[serde(rename = "groupID")]
    pub group_id: String,
    #[serde(rename = "actionType")]
    pub action_type: u8,
    pub inviter: String,
    #[serde(rename = "inviteeList")]
    pub invitee_list: Vec<String>,
}

impl SignalingInfo {
    /// The exact `payload.data` string of the history message: what serde_json gives for
    /// this struct, written by hand (one is made for every action).
    pub fn to_payload_data(&self) -> String {
        crate::json_write::signaling_info_json(self)
    }

    /// Parses a `payload.data` string; `None` unless it holds both `inviteID` and `actionType`
    /// and has this shape.
    pub fn from_payload_data(text: &str) -> Option<Self> {
        if !text.contains("inviteID") || !text.contains("actionType") {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// `getSignalingInfo(message)`: the signaling info of a history message, or `None` when
    /// it is not a signaling custom message. Never fails.
    pub fn from_message(message: &Value) -> Option<Self> {
        if message.get("type").and_then(Value::as_str) != Some(crate::frames::CUSTOM_ELEM) {
            return None;
        }
        let data = message.get("payload")?.get("data")?.as_str()?;
        Self::from_payload_data(data)
    }
}

/// Reads an app `data` string as a JSON object and returns the boolean value of `key`
/// (Tencent matches these flags as substrings; Beckon reads the value).
pub fn data_flag(data: &str, key: &str) -> bool {
    if !data.contains(key) {
        return false;
    }
    serde_json::from_str::<Value>(data)
        .ok()
        .and_then(|v| v.get(key).and_then(Value::as_bool))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> SignalingInfo {
        SignalingInfo {
            business_id: BUSINESS_ID,
            timeout: 30,
            data: "{\"k\":1}".into(),
            invite_id: "abc".into(),
            group_id: String::new(),
            action_type: ActionType::Invite.as_u8(),
            inviter: "alice".into(),
            invitee_list: vec!["bob".into()],
        }
    }

    #[test]
    fn payload_has_tencent_key_order() {
        assert_eq!(
            sample().to_payload_data(),
            r#"{"businessID":1,"timeout":30,"data":"{\"k\":1}","inviteID":"abc","groupID":"","actionType":1,"inviter":"alice","inviteeList":["bob"]}"#
        );
        for invitee_list in [vec![], vec!["b\"o\\b".to_owned(), "✓\u{1}".to_owned()]] {
            let info = SignalingInfo {
                invitee_list,
                group_id: "g\n".into(),
                timeout: u64::MAX,
                ..sample()
            };
            assert_eq!(
                info.to_payload_data(),
                serde_json::to_string(&info).unwrap()
            );
        }
    }

    #[test]
    fn signaling_info_from_message() {
        let msg = json!({"type": "TIMCustomElem", "payload": {"data": sample().to_payload_data()}});
        assert_eq!(SignalingInfo::from_message(&msg), Some(sample()));
        let text = json!({"type": "TIMTextElem", "payload": {"data": sample().to_payload_data()}});
        assert_eq!(SignalingInfo::from_message(&text), None);
        let other = json!({"type": "TIMCustomElem", "payload": {"data": "{\"inviteID\":1}"}});
        assert_eq!(SignalingInfo::from_message(&other), None);
        assert_eq!(SignalingInfo::from_message(&json!(null)), None);
        assert_eq!(
            SignalingInfo::from_message(&json!({"type": "TIMCustomElem"})),
            None
        );
    }

    #[test]
    fn flags_read_the_value() {
        assert!(data_flag(
            r#"{"excludeFromHistoryMessage":true}"#,
            "excludeFromHistoryMessage"
        ));
        assert!(!data_flag(
            r#"{"excludeFromHistoryMessage":false}"#,
            "excludeFromHistoryMessage"
        ));
        assert!(!data_flag(
            "excludeFromHistoryMessage",
            "excludeFromHistoryMessage"
        ));
        assert!(!data_flag("", "excludeFromHistoryMessage"));
    }
}
