//! The journal: the only write a commit waits for. Each group commit appends one row holding
//! the batch's records (already numbered and rendered), at the right edge of one b-tree, so a
//! durable commit writes about as many pages as the bytes it adds. The indexer applies the same
//! records to the queryable tables behind it; rows it has durably applied are deleted.

use crate::StoreError;
use beckon_core::{Group, Invitation, Member};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Name of the journal database inside the data directory.
pub const JOURNAL_FILE: &str = "journal.sqlite3";

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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    pos INTEGER PRIMARY KEY,
    records BLOB NOT NULL
);
";

/// Opens the journal for writing: WAL, and every commit on disk before it returns.
pub(crate) fn open(data_dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(data_dir.join(JOURNAL_FILE))?;
    crate::schema::configure(&conn)?;
    crate::schema::set_wal(&conn)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Encodes `records` into `buffer` as MessagePack, replacing what it held (the writer keeps one
/// buffer rather than allocating and freeing a large one per commit). MessagePack rather than
/// JSON: the records carry rendered JSON frames, which JSON would escape a second time.
pub(crate) fn encode_into(records: &[Record], buffer: &mut Vec<u8>) -> Result<(), StoreError> {
    buffer.clear();
    // Named fields: records skip empty optional fields, so positions would not line up.
    rmp_serde::encode::write_named(&mut *buffer, records)
        .map_err(|e| StoreError::Corrupt(format!("journal encode: {e}")))
}

/// Decodes one row. Rows written before the journal was MessagePack are JSON arrays, whose
/// first byte (`[`) no MessagePack array has.
fn decode(pos: u64, bytes: &[u8]) -> Result<Vec<Record>, StoreError> {
    let decoded = if bytes.first() == Some(&b'[') {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    } else {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    };
    decoded.map_err(|e| StoreError::Corrupt(format!("journal row {pos} cannot be read: {e}")))
}

pub(crate) fn append(conn: &Connection, pos: u64, bytes: &[u8]) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO journal(pos, records) VALUES (?1, ?2)")?
        .execute(params![pos as i64, bytes])?;
    Ok(())
}

/// Deletes the rows the indexer has durably applied.
pub(crate) fn forget_through(conn: &Connection, pos: u64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM journal WHERE pos <= ?1")?
        .execute([pos as i64])?;
    Ok(())
}

/// The newest position ever written (0 for an empty journal).
pub(crate) fn last_pos(conn: &Connection) -> Result<u64, StoreError> {
    let pos: Option<i64> = conn.query_row("SELECT max(pos) FROM journal", [], |row| row.get(0))?;
    Ok(pos.unwrap_or(0) as u64)
}

/// Calls `apply` with every batch after `pos`, in order.
pub(crate) fn replay_after(
    conn: &Connection,
    pos: u64,
    mut apply: impl FnMut(u64, Vec<Record>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT pos, records FROM journal WHERE pos > ?1 ORDER BY pos")?;
    let mut rows = stmt.query([pos as i64])?;
    while let Some(row) = rows.next()? {
        let pos = row.get::<_, i64>(0)? as u64;
        let bytes: Vec<u8> = row.get(1)?;
        apply(pos, decode(pos, &bytes)?)?;
    }
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
        let mut bytes = Vec::new();
        encode_into(&records, &mut bytes).expect("encodes");
        assert_ne!(bytes.first(), Some(&b'['), "not mistaken for a JSON row");
        let decoded = decode(1, &bytes).expect("decodes");
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
        let mut bytes = Vec::new();
        encode_into(&every_kind_of_record(), &mut bytes).expect("encodes");
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(decode(9, &bytes), Err(StoreError::Corrupt(m)) if m.contains("row 9")));
    }
}
