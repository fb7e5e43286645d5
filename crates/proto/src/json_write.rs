//! Hand-rendered JSON of the frames sent most often (event and result envelopes, history
//! messages): keys are written as fixed bytes and strings escaped with SIMD, where serde_json
//! escapes every key and value byte by byte. Unit tests check the output is serde_json's.

use crate::frames::{ActionResultView, MessageView};
use crate::signaling::SignalingInfo;
use serde::Serialize;
use serde_json::value::RawValue;

/// Room reserved for a rendered frame: most events and results fit, so a frame is not
/// copied three or four times while its buffer doubles.
const FRAME_BYTES_HINT: usize = 1024;

/// A string written out as a JSON string literal (quotes and escapes included), for a text
/// that many frames embed: it is escaped once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonString(String);

impl JsonString {
    pub fn new(text: &str) -> Self {
        Self(json_escape_simd::escape(text))
    }

    /// The literal, quotes included.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

impl Serialize for JsonString {
    /// As the string it stands for (a slow path: the hot frames copy the literal as it is).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text: String = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

/// Appends `value` as a JSON string literal, quotes included.
fn push_str(out: &mut Vec<u8>, value: &str) {
    json_escape_simd::escape_into(value, out);
}

fn push_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn push_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

fn into_string(json: Vec<u8>) -> serde_json::Result<String> {
    // Written from `&str`s and ASCII only; the check is cheaper than the copies it replaces.
    String::from_utf8(json).map_err(serde::ser::Error::custom)
}

/// The JSON of an event frame whose `data` is written by `write_data`.
pub fn event_json_with(
    name: &str,
    seq: Option<u64>,
    write_data: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<String> {
    let mut json = Vec::with_capacity(FRAME_BYTES_HINT);
    json.extend_from_slice(br#"{"type":"event","name":"#);
    push_str(&mut json, name);
    if let Some(seq) = seq {
        json.extend_from_slice(br#","seq":"#);
        push_u64(&mut json, seq);
    }
    json.extend_from_slice(br#","data":"#);
    write_data(&mut json)?;
    json.push(b'}');
    into_string(json)
}

/// The JSON of a result frame; `write_data`, if given, writes its `data`.
pub fn result_json_with(
    id: &RawValue,
    code: u32,
    message: Option<&str>,
    write_data: Option<impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>>,
) -> serde_json::Result<String> {
    let mut json = Vec::with_capacity(FRAME_BYTES_HINT);
    json.extend_from_slice(br#"{"type":"result","id":"#);
    json.extend_from_slice(id.get().as_bytes());
    json.extend_from_slice(br#","code":"#);
    push_u64(&mut json, u64::from(code));
    if let Some(message) = message {
        json.extend_from_slice(br#","message":"#);
        push_str(&mut json, message);
    }
    if let Some(write_data) = write_data {
        json.extend_from_slice(br#","data":"#);
        write_data(&mut json)?;
    }
    json.push(b'}');
    into_string(json)
}

/// Writes `data` with serde_json (for the parts that are not hand-rendered).
pub fn serde_data<T: Serialize + ?Sized>(
    data: &T,
) -> impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()> + '_ {
    move |out| serde_json::to_writer(out, data)
}

/// [`SignalingInfo::to_payload_data`]: the JSON serde_json gives for it.
pub(crate) fn signaling_info_json(info: &SignalingInfo) -> String {
    let mut out = Vec::with_capacity(256 + info.data.len());
    out.extend_from_slice(br#"{"businessID":"#);
    push_u64(&mut out, u64::from(info.business_id));
    out.extend_from_slice(br#","timeout":"#);
    push_u64(&mut out, info.timeout);
    out.extend_from_slice(br#","data":"#);
    push_str(&mut out, &info.data);
    out.extend_from_slice(br#","inviteID":"#);
    push_str(&mut out, &info.invite_id);
    out.extend_from_slice(br#","groupID":"#);
    push_str(&mut out, &info.group_id);
    out.extend_from_slice(br#","actionType":"#);
    push_u64(&mut out, u64::from(info.action_type));
    out.extend_from_slice(br#","inviter":"#);
    push_str(&mut out, &info.inviter);
    out.extend_from_slice(br#","inviteeList":["#);
    for (index, invitee) in info.invitee_list.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_str(&mut out, invitee);
    }
    out.extend_from_slice(b"]}");
    // Written from `&str`s and ASCII only.
    String::from_utf8(out).unwrap_or_default()
}

impl MessageView<'_> {
    /// Appends this message's JSON: the same as serde_json gives for it (and for the
    /// [`crate::frames::Message`] it stands for).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"ID":"#);
        push_str(out, self.id);
        out.extend_from_slice(br#","conversationID":"#);
        push_str(out, &self.conversation_id);
        out.extend_from_slice(br#","conversationType":"#);
        push_str(out, self.conversation_type);
        out.extend_from_slice(br#","from":"#);
        push_str(out, self.from);
        out.extend_from_slice(br#","to":"#);
        push_str(out, &self.to);
        out.extend_from_slice(br#","flow":"#);
        push_str(out, self.flow);
        out.extend_from_slice(br#","time":"#);
        push_u64(out, self.time);
        out.extend_from_slice(br#","sequence":"#);
        push_u64(out, self.sequence);
        out.extend_from_slice(br#","type":"#);
        push_str(out, self.kind);
        out.extend_from_slice(br#","payload":{"data":"#);
        out.extend_from_slice(self.payload.data.as_json().as_bytes());
        out.extend_from_slice(br#","description":"#);
        push_str(out, self.payload.description);
        out.extend_from_slice(br#","extension":"#);
        push_str(out, self.payload.extension);
        out.extend_from_slice(br#"},"isExcludedFromUnreadCount":"#);
        push_bool(out, self.is_excluded_from_unread_count);
        out.extend_from_slice(br#","isExcludedFromLastMessage":"#);
        push_bool(out, self.is_excluded_from_last_message);
        out.push(b'}');
    }
}

impl ActionResultView<'_> {
    /// Appends this result's JSON, the same as serde_json gives for it.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"inviteID":"#);
        push_str(out, self.invite_id);
        if let Some(message) = &self.message {
            out.extend_from_slice(br#","message":"#);
            message.write_json(out);
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{CustomPayloadView, EventFrame, ResultFrame, ServerFrame};

    /// Strings that need every kind of escape, and some that need none.
    fn awkward() -> Vec<String> {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é✓😀\u{2028}\u{fffd}");
        vec![
            String::new(),
            "plain".into(),
            "say \"hi\"\\n".into(),
            all,
            "a\u{1f}b\u{7f}c".into(),
            "x".repeat(100) + "\"" + &"y".repeat(40),
        ]
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for text in awkward() {
            let mut out = Vec::new();
            push_str(&mut out, &text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
        }
    }

    #[test]
    fn envelopes_render_as_serde_json_does() {
        let data = serde_json::json!({"inviteID": "i\"1", "n": [1, 2]});
        for name in awkward() {
            for seq in [None, Some(0), Some(u64::MAX)] {
                let ours = event_json_with(&name, seq, serde_data(&data)).unwrap();
                let theirs = serde_json::to_string(&ServerFrame::Event(EventFrame {
                    name: name.clone(),
                    seq,
                    data: data.clone(),
                }))
                .unwrap();
                assert_eq!(ours, theirs);
            }
        }
        for id in ["7", "\"a\"", "null", r#"{"k":[1,"\""]}"#] {
            let id = RawValue::from_string(id.to_owned()).unwrap();
            let id_value: serde_json::Value = serde_json::from_str(id.get()).unwrap();
            for (code, message, with_data) in awkward()
                .into_iter()
                .map(|m| (9003, Some(m), false))
                .chain([(0, None, true), (0, None, false)])
            {
                let ours = result_json_with(
                    &id,
                    code,
                    message.as_deref(),
                    with_data.then(|| serde_data(&data)),
                )
                .unwrap();
                let theirs = serde_json::to_string(&ServerFrame::Result(ResultFrame {
                    id: id_value.clone(),
                    code,
                    message,
                    data: with_data.then(|| data.clone()),
                }))
                .unwrap();
                assert_eq!(ours, theirs);
            }
        }
    }

    #[test]
    fn messages_and_action_results_render_as_serde_json_does() {
        for text in awkward() {
            let escaped = JsonString::new(&text);
            assert_eq!(escaped.as_json(), serde_json::to_string(&text).unwrap());
            for (excluded, time) in [(false, 0), (true, u64::MAX)] {
                let view = MessageView {
                    id: &text,
                    conversation_id: format!("C2C{text}"),
                    conversation_type: "C2C",
                    from: &text,
                    to: text.clone(),
                    flow: "in",
                    time,
                    sequence: 7,
                    kind: "TIMCustomElem",
                    payload: CustomPayloadView {
                        data: &escaped,
                        description: "",
                        extension: "",
                    },
                    is_excluded_from_unread_count: excluded,
                    is_excluded_from_last_message: excluded,
                };
                let mut ours = Vec::new();
                view.write_json(&mut ours);
                let theirs = serde_json::to_string(&view).unwrap();
                assert_eq!(String::from_utf8(ours).unwrap(), theirs);

                for message in [None, Some(view)] {
                    let result = ActionResultView {
                        invite_id: &text,
                        message,
                    };
                    let mut ours = Vec::new();
                    result.write_json(&mut ours);
                    let theirs = serde_json::to_string(&result).unwrap();
                    assert_eq!(String::from_utf8(ours).unwrap(), theirs);
                }
            }
        }
    }
}
