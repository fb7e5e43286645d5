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

/// Encodes `records` into `buffer`, replacing what it held (the writer keeps one buffer
/// rather than allocating and freeing a large one per commit).
pub(crate) fn encode_into(records: &[Record], buffer: &mut Vec<u8>) -> Result<(), StoreError> {
    buffer.clear();
    serde_json::to_writer(&mut *buffer, records)
        .map_err(|e| StoreError::Corrupt(format!("journal encode: {e}")))
}

fn decode(pos: u64, bytes: &[u8]) -> Result<Vec<Record>, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("journal row {pos} cannot be read: {e}")))
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
