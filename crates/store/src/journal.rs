//! The journal's records: what each group commit appends (see log_file.rs for the files), with
//! every number decided and every event frame rendered. The indexer applies the same records
//! to the queryable tables behind it. Journals of earlier versions, rows of one SQLite table,
//! are read once at start-up and then removed.

use crate::compressed;
use crate::StoreError;
use beckon_core::{Group, Invitation, Member};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The journal of earlier versions: an SQLite database inside the data directory.
pub const LEGACY_JOURNAL_FILE: &str = "journal.sqlite3";

/// One change to the queryable tables, with every number and time already decided, so that
/// applying it again after a crash gives the same result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "camelCase")]
pub(crate) enum Record {
    User {
        user_id: String,
        created_ms: u64,
    },
    /// The invitation's full new state; `inserted` adds its pending invitees to the login
    /// index, `resolved` removes those who stopped pending.
    Invitation {
        invitation: Box<Invitation>,
        inserted: bool,
        resolved: Vec<String>,
    },
    Message {
        message_id: String,
        conv_key: String,
        seq: u64,
        from: String,
        time_s: u64,
        payload_data: String,
        excluded: bool,
        participants: Vec<String>,
        updated_ms: u64,
    },
    Rewrite {
        message_id: String,
        payload_data: String,
    },
    /// A numbered event as kept for resumption (`stored` is the frame or a message reference).
    Event {
        user_id: String,
        seq: u64,
        origin: Option<String>,
        created_ms: u64,
        stored: String,
    },
    CreateGroup {
        group: Group,
    },
    AddMembers {
        group_id: String,
        members: Vec<Member>,
    },
    RemoveMembers {
        group_id: String,
        user_ids: Vec<String>,
    },
    DismissGroup {
        group_id: String,
    },
    MarkRead {
        user_id: String,
        conv_key: String,
    },
}

/// Largest scratch buffer kept between commits: a rare large commit should not keep its size.
const SCRATCH_KEPT_BYTES: usize = 4 << 20;

/// Encodes a commit's records into a journal frame: LZ4-compressed MessagePack after room for
/// the frame header. MessagePack rather than JSON: the records carry rendered JSON frames,
/// which JSON would escape a second time. Compressed because a commit's records repeat field
/// names and user and invitation IDs, and every byte of a frame is written and synced before
/// its actions are answered: frames are a third to a fifth of their plain size. The scratch
/// buffers are kept from commit to commit (the writer has one encoder), so a frame costs one
/// allocation of its own size.
#[derive(Default)]
pub(crate) struct FrameEncoder {
    plain: Vec<u8>,
    scratch: Vec<u8>,
}

impl FrameEncoder {
    pub(crate) fn encode(&mut self, records: &[Record]) -> Result<Vec<u8>, StoreError> {
        self.plain.clear();
        // Named fields: records skip empty optional fields, so positions would not line up.
        rmp_serde::encode::write_named(&mut self.plain, records)
            .map_err(|e| StoreError::Corrupt(format!("journal encode: {e}")))?;
        let frame = compressed::compress(
            &self.plain,
            crate::log_file::HEADER_BYTES,
            &mut self.scratch,
        )
        .map_err(|e| StoreError::Corrupt(format!("journal compression: {e}")))?;
        if self.plain.capacity() > SCRATCH_KEPT_BYTES {
            *self = Self::default();
        }
        Ok(frame)
    }

    /// The plain size of the last frame encoded (for tests).
    #[cfg(test)]
    pub(crate) fn last_plain_len(&self) -> usize {
        self.plain.len()
    }
}

/// Decodes one frame's payload: compressed MessagePack, or, as written before, plain
/// MessagePack or JSON (rows of the SQLite journal were JSON arrays, whose first byte, `[`,
/// no MessagePack array has).
pub(crate) fn decode(pos: u64, bytes: &[u8]) -> Result<Vec<Record>, StoreError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("journal row {pos} cannot be read: {e}"))
    };
    if let Some(plain) = compressed::decompress(bytes, usize::MAX) {
        return rmp_serde::from_slice(&plain.map_err(|e| unreadable(&e))?)
            .map_err(|e| unreadable(&e));
    }
    let decoded = if bytes.first() == Some(&b'[') {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    } else {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    };
    decoded.map_err(|e| unreadable(&e))
}

/// A frame's payload as written before frames were compressed (plain MessagePack).
#[cfg(test)]
pub(crate) fn encode_plain(records: &[Record]) -> Vec<u8> {
    let mut plain = Vec::new();
    rmp_serde::encode::write_named(&mut plain, records).expect("encodes");
    plain
}

/// Calls `apply` with every row after `pos` of an earlier version's journal, in order, and
/// returns the newest position it held (`None` when there is none).
pub(crate) fn replay_legacy_after(
    data_dir: &Path,
    pos: u64,
    mut apply: impl FnMut(u64, Vec<Record>) -> Result<(), StoreError>,
) -> Result<Option<u64>, StoreError> {
    let path = data_dir.join(LEGACY_JOURNAL_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open(&path)?;
    crate::schema::configure(&conn)?;
    let newest: Option<i64> =
        conn.query_row("SELECT max(pos) FROM journal", [], |row| row.get(0))?;
    let mut stmt = conn.prepare("SELECT pos, records FROM journal WHERE pos > ?1 ORDER BY pos")?;
    let mut rows = stmt.query([pos as i64])?;
    while let Some(row) = rows.next()? {
        let pos = row.get::<_, i64>(0)? as u64;
        let bytes: Vec<u8> = row.get(1)?;
        apply(pos, decode(pos, &bytes)?)?;
    }
    Ok(Some(newest.map_or(0, |pos| pos as u64)))
}

/// Deletes an earlier version's journal once everything in it is durably applied.
pub(crate) fn remove_legacy(data_dir: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm"] {
        let path = data_dir.join(format!("{LEGACY_JOURNAL_FILE}{suffix}"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Journal {
                    path,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// Writes a row as an earlier version's journal held it, for the tests of reading one.
#[cfg(test)]
pub(crate) fn append_legacy(data_dir: &Path, pos: u64, bytes: &[u8]) -> Result<(), StoreError> {
    let conn = Connection::open(data_dir.join(LEGACY_JOURNAL_FILE))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS journal (pos INTEGER PRIMARY KEY, records BLOB NOT NULL);",
    )?;
    conn.execute(
        "INSERT INTO journal(pos, records) VALUES (?1, ?2)",
        rusqlite::params![pos as i64, bytes],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compressed::COMPRESSED;
    use beckon_core::{Invitee, InviteeState};

    fn every_kind_of_record() -> Vec<Record> {
        let invitation = Invitation {
            invite_id: "call-1".into(),
            inviter: "alice".into(),
            group_id: "g1".into(),
            invitees: vec![Invitee {
                user_id: "bob \"the\" \\ builder ✓".into(),
                state: InviteeState::Pending,
            }],
            data: "{\"k\":\"v\\n\"}".into(),
            timeout: 30,
            online_user_only: false,
            offline_push_info: Some(Box::new(
                serde_json::json!({"title": "t", "n": [1, 2.5, null, true], "o": {}}),
            )),
            created_at_ms: 1,
            deadline_ms: u64::MAX,
            invite_message_id: None,
            departed: vec!["carol".into()],
        };
        let member = Member {
            user_id: "alice".into(),
            joined_at_ms: 5,
        };
        vec![
            Record::User {
                user_id: "alice".into(),
                created_ms: 1,
            },
            Record::Invitation {
                invitation: Box::new(invitation),
                inserted: true,
                resolved: vec!["dave".into()],
            },
            Record::Message {
                message_id: "m1".into(),
                conv_key: "c2c:alice:bob".into(),
                seq: 1,
                from: "alice".into(),
                time_s: 2,
                payload_data: "{\"businessID\":1}".into(),
                excluded: true,
                participants: vec!["alice".into(), "bob".into()],
                updated_ms: 3,
            },
            Record::Rewrite {
                message_id: "m1".into(),
                payload_data: String::new(),
            },
            Record::Event {
                user_id: "bob".into(),
                seq: 7,
                origin: Some("device-1".into()),
                created_ms: 4,
                stored: "{\"type\":\"event\"}".into(),
            },
            Record::CreateGroup {
                group: Group {
                    group_id: "g1".into(),
                    name: "G".into(),
                    kind: "Work".into(),
                    owner: "alice".into(),
                    members: vec![member.clone()],
                    created_at_ms: 5,
                },
            },
            Record::AddMembers {
                group_id: "g1".into(),
                members: vec![member],
            },
            Record::RemoveMembers {
                group_id: "g1".into(),
                user_ids: vec!["alice".into()],
            },
            Record::DismissGroup {
                group_id: "g1".into(),
            },
            Record::MarkRead {
                user_id: "bob".into(),
                conv_key: "c2c:alice:bob".into(),
            },
        ]
    }

    #[test]
    fn every_record_reads_back_as_written() {
        let records = every_kind_of_record();
        let frame = FrameEncoder::default().encode(&records).expect("encodes");
        let bytes = &frame[crate::log_file::HEADER_BYTES..];
        assert_eq!(bytes.first(), Some(&COMPRESSED));
        let decoded = decode(1, bytes).expect("decodes");
        assert_eq!(format!("{decoded:?}"), format!("{records:?}"));
    }

    /// A commit's records as under load: ten invitations, each with its message and events.
    fn a_busy_commit() -> Vec<Record> {
        let mut records = Vec::new();
        for n in 0..10 {
            let mut commit = every_kind_of_record();
            let id = format!("0193a{n:03}-7e1c-7a3b-9f00-{:012x}", n * 7919);
            for record in &mut commit {
                match record {
                    Record::Invitation { invitation, .. } => invitation.invite_id = id.clone(),
                    Record::Message {
                        message_id, seq, ..
                    } => {
                        *message_id = format!("{id}-m");
                        *seq += n;
                    }
                    Record::Event { seq, .. } => *seq += n,
                    _ => {}
                }
            }
            records.extend(commit);
        }
        records
    }

    #[test]
    fn a_busy_commit_is_written_in_under_a_third_of_its_plain_size() {
        let records = a_busy_commit();
        let mut encoder = FrameEncoder::default();
        // Twice: the second reuses the scratch buffers of the first, larger commit.
        for records in [&records[..], &records[..records.len() / 3]] {
            let frame = encoder.encode(records).expect("encodes");
            assert_eq!(
                frame.len(),
                frame.capacity(),
                "one allocation of its own size"
            );
            let written = frame.len() - crate::log_file::HEADER_BYTES;
            let plain = encoder.last_plain_len();
            assert!(
                written * 3 < plain,
                "{written} bytes written for {plain} plain"
            );
            let decoded = decode(1, &frame[crate::log_file::HEADER_BYTES..]).expect("decodes");
            assert_eq!(format!("{decoded:?}"), format!("{records:?}"));
        }
    }

    #[test]
    fn a_plain_frame_of_an_earlier_version_reads_back() {
        let records = every_kind_of_record();
        let bytes = encode_plain(&records);
        assert_ne!(bytes.first(), Some(&COMPRESSED));
        let decoded = decode(1, &bytes).expect("decodes");
        assert_eq!(format!("{decoded:?}"), format!("{records:?}"));
    }

    #[test]
    fn damaged_compressed_frames_are_errors_naming_the_row() {
        let frame = FrameEncoder::default()
            .encode(&a_busy_commit())
            .expect("encodes");
        let good = frame[crate::log_file::HEADER_BYTES..].to_vec();
        let mut damaged = vec![
            ("cut in the block", good[..good.len() / 2].to_vec()),
            ("cut in the length", good[..3].to_vec()),
            ("marker alone", vec![COMPRESSED]),
        ];
        for (what, delta) in [("length one short", -1i64), ("length one long", 1)] {
            let mut bytes = good.clone();
            let length = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            let changed = u32::try_from(i64::from(length) + delta).expect("fits");
            bytes[1..5].copy_from_slice(&changed.to_le_bytes());
            damaged.push((what, bytes));
        }
        let mut huge = good.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        damaged.push(("a length no block could give", huge));
        let mut scrambled = good.clone();
        for byte in scrambled.iter_mut().skip(5).step_by(7) {
            *byte ^= 0x5a;
        }
        damaged.push(("scrambled", scrambled));
        for (what, bytes) in damaged {
            match decode(42, &bytes) {
                Err(StoreError::Corrupt(message)) => {
                    assert!(message.contains("row 42"), "{what}: {message}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_row_of_an_earlier_version_in_json_reads_back() {
        let records = every_kind_of_record();
        let bytes = serde_json::to_vec(&records).expect("encodes");
        let decoded = decode(1, &bytes).expect("decodes");
        assert_eq!(format!("{decoded:?}"), format!("{records:?}"));
    }

    #[test]
    fn a_cut_off_row_is_reported_as_corrupt() {
        let mut frame = FrameEncoder::default()
            .encode(&every_kind_of_record())
            .expect("encodes");
        frame.truncate(frame.len() / 2);
        let bytes = &frame[crate::log_file::HEADER_BYTES..];
        assert!(matches!(decode(9, bytes), Err(StoreError::Corrupt(m)) if m.contains("row 9")));
    }
}
