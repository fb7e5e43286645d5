//! History conversations and messages: storage keys and the per-reader rendering.
//!
//! A message is stored once per conversation; each reader sees it with their own
//! `conversationID` and `flow`.

use beckon_proto::frames::{CustomPayload, CustomPayloadView, Message, MessageView, CUSTOM_ELEM};
use beckon_proto::json_write::JsonString;

/// A conversation as stored: a pair of users or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConversationRef {
    /// `low` sorts before or equal to `high`, so both parties name the same conversation.
    C2C {
        low: String,
        high: String,
    },
    Group {
        group_id: String,
    },
}

/// Separator in storage keys; a control character can never occur in a user or group ID.
const KEY_SEPARATOR: char = '\u{1f}';
const KEY_SEPARATOR_STR: &str = "\u{1f}";

impl ConversationRef {
    /// The one-to-one conversation between `a` and `b`.
    pub fn c2c(a: &str, b: &str) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        Self::C2C {
            low: low.to_owned(),
            high: high.to_owned(),
        }
    }

    /// The conversation a reader names with a Tencent `conversationID` (`C2C<peer>` or
    /// `GROUP<groupID>`); `None` when the ID has neither prefix or names nothing.
    pub fn from_conversation_id(reader: &str, conversation_id: &str) -> Option<Self> {
        if let Some(peer) = conversation_id.strip_prefix("C2C") {
            (!peer.is_empty()).then(|| Self::c2c(reader, peer))
        } else if let Some(group_id) = conversation_id.strip_prefix("GROUP") {
            (!group_id.is_empty()).then(|| Self::Group {
                group_id: group_id.to_owned(),
            })
        } else {
            None
        }
    }

    /// Unique storage key of the conversation.
    pub fn key(&self) -> String {
        match self {
            Self::C2C { low, high } => {
                ["c", KEY_SEPARATOR_STR, low, KEY_SEPARATOR_STR, high].concat()
            }
            Self::Group { group_id } => ["g", KEY_SEPARATOR_STR, group_id].concat(),
        }
    }

    /// Parses a storage key back.
    pub fn from_key(key: &str) -> Option<Self> {
        let mut parts = key.split(KEY_SEPARATOR);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("c"), Some(low), Some(high), None) => Some(Self::C2C {
                low: low.to_owned(),
                high: high.to_owned(),
            }),
            (Some("g"), Some(group_id), None, None) => Some(Self::Group {
                group_id: group_id.to_owned(),
            }),
            _ => None,
        }
    }

    /// `C2C` or `GROUP`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::C2C { .. } => "C2C",
            Self::Group { .. } => "GROUP",
        }
    }

    /// The `conversationID` as `reader` sees it.
    pub fn conversation_id_for(&self, reader: &str) -> String {
        match self {
            Self::C2C { low, high } => {
                let peer = if reader == low { high } else { low };
                ["C2C", peer.as_str()].concat()
            }
            Self::Group { group_id } => ["GROUP", group_id.as_str()].concat(),
        }
    }

    /// Where a message from `from` is addressed: the peer, or the group.
    pub fn to_for(&self, from: &str) -> String {
        match self {
            Self::C2C { low, high } => (if from == low { high } else { low }).clone(),
            Self::Group { group_id } => group_id.clone(),
        }
    }
}

/// A history message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub conversation: ConversationRef,
    pub from: String,
    /// Per-conversation sequence number, from 1.
    pub sequence: u64,
    /// Server time, seconds.
    pub time: u64,
    pub payload_data: String,
    /// Kept out of unread counts and `lastMessage`.
    pub excluded: bool,
}

impl StoredMessage {
    /// The payload's data as a JSON string literal, for [`StoredMessage::view_for`].
    pub fn escaped_payload(&self) -> JsonString {
        JsonString::new(&self.payload_data)
    }

    /// The message as `reader` sees it, borrowed; `escaped_payload` is this message's
    /// [`StoredMessage::escaped_payload`], made once for all its readers.
    pub fn view_for<'a>(
        &'a self,
        reader: &str,
        escaped_payload: &'a JsonString,
    ) -> MessageView<'a> {
        MessageView {
            id: &self.id,
            conversation_id: self.conversation.conversation_id_for(reader),
            conversation_type: self.conversation.kind(),
            from: &self.from,
            to: self.conversation.to_for(&self.from),
            flow: if reader == self.from { "out" } else { "in" },
            time: self.time,
            sequence: self.sequence,
            kind: CUSTOM_ELEM,
            payload: CustomPayloadView {
                data: escaped_payload,
                description: "",
                extension: "",
            },
            is_excluded_from_unread_count: self.excluded,
            is_excluded_from_last_message: self.excluded,
        }
    }

    /// The message as `reader` sees it.
    pub fn render_for(&self, reader: &str) -> Message {
        Message {
            id: self.id.clone(),
            conversation_id: self.conversation.conversation_id_for(reader),
            conversation_type: self.conversation.kind().to_owned(),
            from: self.from.clone(),
            to: self.conversation.to_for(&self.from),
            flow: if reader == self.from { "out" } else { "in" }.to_owned(),
            time: self.time,
            sequence: self.sequence,
            kind: CUSTOM_ELEM.to_owned(),
            payload: CustomPayload {
                data: self.payload_data.clone(),
                description: String::new(),
                extension: String::new(),
            },
            is_excluded_from_unread_count: self.excluded,
            is_excluded_from_last_message: self.excluded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2c_is_named_from_each_side() {
        let conv = ConversationRef::c2c("bob", "alice");
        assert_eq!(conv, ConversationRef::c2c("alice", "bob"));
        assert_eq!(conv.conversation_id_for("alice"), "C2Cbob");
        assert_eq!(conv.conversation_id_for("bob"), "C2Calice");
        assert_eq!(
            ConversationRef::from_conversation_id("alice", "C2Cbob"),
            Some(conv.clone())
        );
        assert_eq!(ConversationRef::from_key(&conv.key()), Some(conv));
        assert_eq!(ConversationRef::from_conversation_id("alice", "C2C"), None);
        assert_eq!(ConversationRef::from_conversation_id("alice", "xyz"), None);
    }

    #[test]
    fn a_view_renders_the_same_json_as_the_message() {
        use beckon_proto::frames::{ActionResult, ActionResultView};
        let no_message = ActionResult {
            invite_id: "i1".into(),
            message: None,
        };
        let no_message_view = ActionResultView {
            invite_id: "i1",
            message: None,
        };
        assert_eq!(
            serde_json::to_string(&no_message_view).expect("encodes"),
            serde_json::to_string(&no_message).expect("encodes")
        );
        for (conversation, excluded) in [
            (ConversationRef::c2c("alice", "bob"), false),
            (
                ConversationRef::Group {
                    group_id: "g1".into(),
                },
                true,
            ),
        ] {
            let msg = StoredMessage {
                id: "m1".into(),
                conversation,
                from: "alice".into(),
                sequence: 7,
                time: 10,
                payload_data: "{\"data\":\"say \\\"hi\\\"\\n ✓\"}".into(),
                excluded,
            };
            let escaped = msg.escaped_payload();
            for reader in ["alice", "bob"] {
                let owned = serde_json::to_string(&msg.render_for(reader)).expect("encodes");
                let view = serde_json::to_string(&msg.view_for(reader, &escaped)).expect("encodes");
                assert_eq!(view, owned, "reader {reader}");
                let owned_result = ActionResult {
                    invite_id: "i\"1".into(),
                    message: Some(msg.render_for(reader)),
                };
                let view_result = ActionResultView {
                    invite_id: "i\"1",
                    message: Some(msg.view_for(reader, &escaped)),
                };
                assert_eq!(
                    serde_json::to_string(&view_result).expect("encodes"),
                    serde_json::to_string(&owned_result).expect("encodes"),
                    "result for reader {reader}"
                );
            }
        }
    }

    #[test]
    fn render_sets_flow_and_peer() {
        let msg = StoredMessage {
            id: "m1".into(),
            conversation: ConversationRef::c2c("alice", "bob"),
            from: "alice".into(),
            sequence: 1,
            time: 10,
            payload_data: "{}".into(),
            excluded: false,
        };
        let mine = msg.render_for("alice");
        assert_eq!(
            (
                mine.flow.as_str(),
                mine.to.as_str(),
                mine.conversation_id.as_str()
            ),
            ("out", "bob", "C2Cbob")
        );
        let theirs = msg.render_for("bob");
        assert_eq!(
            (
                theirs.flow.as_str(),
                theirs.to.as_str(),
                theirs.conversation_id.as_str()
            ),
            ("in", "bob", "C2Calice")
        );
    }
}
