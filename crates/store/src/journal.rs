//! The journal's records: what each group commit appends (see log_file.rs for the files), with
//! every number decided and every event frame rendered. The indexer applies the same records
//! to the queryable tables behind it. Journals of earlier versions, rows of one SQLite table,
//! are read once at start-up and then removed.

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

/// Encodes `records` into `buffer` as MessagePack after room for the frame header, replacing
/// what it held (the writer keeps one buffer rather than allocating a large one per commit).
/// MessagePack rather than JSON: the records carry rendered JSON frames, which JSON would
/// escape a second time.
pub(crate) fn encode_frame(records: &[Record], buffer: &mut Vec<u8>) -> Result<(), StoreError> {
    buffer.clear();
    buffer.resize(crate::log_file::HEADER_BYTES, 0);
    // Named fields: records skip empty optional fields, so positions would not line up.
    rmp_serde::encode::write_named(&mut *buffer, records)
        .map_err(|e| StoreError::Corrupt(format!("journal encode: {e}")))
}

/// Decodes one frame's payload. Rows written before the journal was MessagePack are JSON
/// arrays, whose first byte (`[`) no MessagePack array has.
pub(crate) fn decode(pos: u64, bytes: &[u8]) -> Result<Vec<Record>, StoreError> {
    let decoded = if bytes.first() == Some(&b'[') {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    } else {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    };
    decoded.map_err(|e| StoreError::Corrupt(format!("journal row {pos} cannot be read: {e}")))
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
        let mut frame = Vec::new();
        encode_frame(&records, &mut frame).expect("encodes");
        let bytes = &frame[crate::log_file::HEADER_BYTES..];
        assert_ne!(bytes.first(), Some(&b'['), "not mistaken for a JSON row");
        let decoded = decode(1, bytes).expect("decodes");
        assert_eq!(format!("{decoded:?}"), format!("{records:?}"));
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
        let mut frame = Vec::new();
        encode_frame(&every_kind_of_record(), &mut frame).expect("encodes");
        frame.truncate(frame.len() / 2);
        let bytes = &frame[crate::log_file::HEADER_BYTES..];
        assert!(matches!(decode(9, bytes), Err(StoreError::Corrupt(m)) if m.contains("row 9")));
    }
}
