//! Schema of the indexed tables and connection settings.

use crate::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// Schema version stored in `PRAGMA user_version`; bump with a migration when tables change.
/// Version 2 added `meta` (the journal position applied); version 3 keeps events in runs
/// (`event_runs`) instead of a row each (`events`). Older databases upgrade in place.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
-- applied_pos: the newest journal position these tables include.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- body is the JSON of beckon_core::Invitation; active rows are loaded at start-up.
CREATE TABLE IF NOT EXISTS invitations (
    invite_id TEXT PRIMARY KEY,
    active INTEGER NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invitations_active ON invitations(active) WHERE active = 1;

-- Which invitations each user is still pending in: the login replay reads this.
CREATE TABLE IF NOT EXISTS pending_invitees (
    user_id TEXT NOT NULL,
    invite_id TEXT NOT NULL,
    PRIMARY KEY (user_id, invite_id)
) WITHOUT ROWID;

-- Newest event number per user; kept apart from events so pruning never resets numbering.
CREATE TABLE IF NOT EXISTS user_heads (
    user_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;

-- Numbered events kept for resumption, a run of one user's consecutive events per row
-- (see event_runs.rs); newest_ms is the run's newest event, which pruning goes by.
CREATE TABLE IF NOT EXISTS event_runs (
    user_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    newest_ms INTEGER NOT NULL,
    events BLOB NOT NULL,
    PRIMARY KEY (user_id, first_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_runs_newest ON event_runs(newest_ms);

CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    conv_key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    from_user TEXT NOT NULL,
    time_s INTEGER NOT NULL,
    payload_data TEXT NOT NULL,
    excluded INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_conv_seq ON messages(conv_key, seq);

-- Dismissed groups keep their row (dismissed = 1) so their ID is never reused.
CREATE TABLE IF NOT EXISTS groups (
    group_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    dismissed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS group_members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    joined_ms INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS conversations (
    owner TEXT NOT NULL,
    conv_key TEXT NOT NULL,
    unread INTEGER NOT NULL,
    last_message_id TEXT,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (owner, conv_key)
) WITHOUT ROWID;
";

pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Ok(())
}

pub(crate) fn set_wal(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "cannot switch the database to WAL mode (got {mode})"
        )));
    }
    Ok(())
}

/// Opens the indexer's write connection and brings the schema up to date.
pub(crate) fn open_indexer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    set_wal(&conn)?;
    // NORMAL: the journal holds every record durably; see indexer.rs.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoints run on their own thread (see checkpoint.rs), not inline in a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    tune(&conn, INDEXER_CACHE_KIB)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this server's {SCHEMA_VERSION}; upgrade beckon"
        )));
    }
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(SCHEMA)?;
    move_events_into_runs(&tx)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(conn)
}

/// Upgrades a version 2 database: each kept event becomes a run of one.
fn move_events_into_runs(conn: &Connection) -> Result<(), StoreError> {
    let old_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events')",
        [],
        |row| row.get(0),
    )?;
    if !old_table {
        return Ok(());
    }
    let mut read = conn.prepare("SELECT user_id, seq, origin, created_ms, frame FROM events")?;
    let mut insert = conn.prepare(
        "INSERT INTO event_runs(user_id, first_seq, last_seq, newest_ms, events)
         VALUES (?1, ?2, ?2, ?3, ?4)",
    )?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let user: String = row.get(0)?;
        let seq: i64 = row.get(1)?;
        let origin: Option<String> = row.get(2)?;
        let created_ms: i64 = row.get(3)?;
        let stored: String = row.get(4)?;
        let run = crate::event_runs::encode(&[crate::event_runs::KeptEvent {
            seq: seq as u64,
            origin: origin.map(Into::into),
            created_ms: created_ms as u64,
            stored: stored.into(),
        }])?;
        insert.execute(rusqlite::params![user, seq, created_ms, run])?;
    }
    drop(rows);
    drop(read);
    drop(insert);
    conn.execute_batch("DROP TABLE events")?;
    Ok(())
}

/// Page cache of the indexer, which writes everywhere in the tables: page spills were a fifth
/// of the writing thread's time with SQLite's small default.
const INDEXER_CACHE_KIB: i64 = 32 * 1024;
/// Page cache of each read connection (up to 9 of them): reads touch few pages each.
const READER_CACHE_KIB: i64 = 4 * 1024;

/// No memory map: mapped pages of a large database count in the server's resident memory,
/// per connection, and the tables are off the commit path now.
fn tune(conn: &Connection, cache_kib: i64) -> Result<(), StoreError> {
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Opens the connection the checkpointer thread uses.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// Opens a read connection.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    tune(&conn, READER_CACHE_KIB)?;
    Ok(conn)
}
