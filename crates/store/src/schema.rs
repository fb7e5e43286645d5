//! Schema of the indexed tables and connection settings.

use crate::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// Schema version stored in `PRAGMA user_version`; bump with a migration when tables change.
/// Version 2 added `meta` (the journal position applied); version 3 kept events in runs
/// instead of a row each; version 4 keeps active invitations in deadline order apart from the
/// IDs ever used, and runs of events in the order written, each linked to its user's previous
/// run; version 5 stores new runs of events compressed (a version 4 server could not read
/// them; the runs it wrote still read); version 6 writes the journal's frames compressed (a
/// version 5 server could not replay them; the frames it wrote still replay); version 7 links
/// each message to its conversation's previous one instead of indexing `(conv_key, seq)`.
/// Older databases upgrade in place.
const SCHEMA_VERSION: i64 = 7;
/// The version whose tables are the current ones (see `REPLACED_TABLES`).
const TABLES_VERSION: i64 = 4;
/// The version from which messages are linked (see `link_messages`).
const LINKED_MESSAGES_VERSION: i64 = 7;

/// Tables of older versions that version 4 replaces: renamed out of the way before the new ones
/// are created, copied over, then dropped.
const REPLACED_TABLES: [&str; 3] = ["invitations", "pending_invitees", "event_runs"];
const OLD_SUFFIX: &str = "_before_v4";

// Rows a timeout or an event touches are kept in the order those happen, so that a second's
// worth of them shares a few pages at the ends of each table instead of dirtying a page of its
// own in a table of a million rows (see docs/benchmarks.md).
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

-- Every invitation ID ever used, so that a client-chosen one is never reused; the server's
-- own are time-ordered, so new rows land at the end.
CREATE TABLE IF NOT EXISTS invite_ids (
    invite_id TEXT PRIMARY KEY
) WITHOUT ROWID;

-- Active invitations only, in deadline order; body is the JSON of beckon_core::Invitation.
-- An invitation's row goes when it ends. Loaded at start-up.
CREATE TABLE IF NOT EXISTS active_invitations (
    deadline_ms INTEGER NOT NULL,
    invite_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (deadline_ms, invite_id)
) WITHOUT ROWID;

-- Which active invitations each user is still pending in: the login replay reads this.
CREATE TABLE IF NOT EXISTS pending_invitees (
    user_id TEXT NOT NULL,
    deadline_ms INTEGER NOT NULL,
    invite_id TEXT NOT NULL,
    PRIMARY KEY (user_id, deadline_ms, invite_id)
) WITHOUT ROWID;

-- Newest event number per user and the run holding it; kept apart from the runs so pruning
-- never resets numbering.
CREATE TABLE IF NOT EXISTS user_heads (
    user_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    last_run INTEGER
) WITHOUT ROWID;

-- Numbered events kept for resumption, a run of one user's consecutive events per row (see
-- event_runs.rs), in the order written; prev_run is the same user's previous run, which a
-- resume walks back along. newest_ms is the run's newest event: pruning deletes from the
-- front up to the first run young enough to keep.
CREATE TABLE IF NOT EXISTS event_runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    newest_ms INTEGER NOT NULL,
    prev_run INTEGER,
    events BLOB NOT NULL
);

-- History in the order written; prev_message_id is the same conversation's previous message,
-- which a page of history walks back along from conversation_heads. An index on
-- (conv_key, seq) would take an insert in the middle of the tree per message (a page per
-- conversation per transaction); a link keeps every insert at the end of the table.
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    conv_key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    from_user TEXT NOT NULL,
    time_s INTEGER NOT NULL,
    payload_data TEXT NOT NULL,
    excluded INTEGER NOT NULL,
    prev_message_id TEXT
);

-- Newest message number per conversation and the message holding it.
CREATE TABLE IF NOT EXISTS conversation_heads (
    conv_key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    last_message_id TEXT NOT NULL
) WITHOUT ROWID;

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
    // A burst the checkpoints fell behind on leaves a large log; it shrinks back to this when
    // it next starts over, instead of keeping its largest size on disk.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
    tune(&conn, INDEXER_CACHE_KIB)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this server's {SCHEMA_VERSION}; upgrade beckon"
        )));
    }
    let tx = conn.unchecked_transaction()?;
    if version < TABLES_VERSION {
        for table in REPLACED_TABLES {
            if table_exists(&tx, table)? {
                tx.execute_batch(&format!(
                    "ALTER TABLE {table} RENAME TO {table}{OLD_SUFFIX}"
                ))?;
            }
        }
    }
    tx.execute_batch(SCHEMA)?;
    if version < TABLES_VERSION {
        upgrade_to_v4(&tx)?;
    }
    if version < LINKED_MESSAGES_VERSION {
        link_messages(&tx)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(conn)
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |row| row.get(0),
    )?)
}

/// Adds `column` (its name and type) to `table` unless the table has it; says whether it did.
fn add_column_if_missing(conn: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    let name = column.split_whitespace().next().unwrap_or(column);
    let present: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        [table, name],
        |row| row.get(0),
    )?;
    if !present {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column}"))?;
    }
    Ok(!present)
}

/// Links the messages of an earlier version, each to its conversation's previous one, fills
/// `conversation_heads`, and drops the `(conv_key, seq)` index the links replace (used here
/// one last time to find each message's predecessor).
fn link_messages(conn: &Connection) -> Result<(), StoreError> {
    if add_column_if_missing(conn, "messages", "prev_message_id TEXT")? {
        let count: i64 = conn.query_row("SELECT count(*) FROM messages", [], |row| row.get(0))?;
        if count > 0 {
            // About 13 s a million on our test machine: worth saying why the start waits.
            tracing::info!(
                messages = count,
                "linking the history of an earlier version, once"
            );
        }
    }
    // In SQLite a bare column beside max() comes from the row holding the maximum.
    conn.execute_batch(
        "UPDATE messages SET prev_message_id = (
             SELECT p.message_id FROM messages p
             WHERE p.conv_key = messages.conv_key AND p.seq < messages.seq
             ORDER BY p.seq DESC LIMIT 1)
         WHERE prev_message_id IS NULL;
         INSERT OR REPLACE INTO conversation_heads(conv_key, seq, last_message_id)
             SELECT conv_key, max(seq), message_id FROM messages GROUP BY conv_key;
         DROP INDEX IF EXISTS messages_conv_seq;",
    )?;
    Ok(())
}

/// Brings the tables of a version 2 or 3 database (renamed with `OLD_SUFFIX`) into the
/// version 4 ones, then drops them.
fn upgrade_to_v4(conn: &Connection) -> Result<(), StoreError> {
    add_column_if_missing(conn, "user_heads", "last_run INTEGER")?;
    let invitations = format!("invitations{OLD_SUFFIX}");
    if table_exists(conn, &invitations)? {
        let deadline = "CAST(json_extract(i.body, '$.deadline_ms') AS INTEGER)";
        conn.execute_batch(&format!(
            "INSERT OR IGNORE INTO invite_ids(invite_id) SELECT invite_id FROM {invitations};
             INSERT INTO active_invitations(deadline_ms, invite_id, body)
                 SELECT {deadline}, i.invite_id, i.body FROM {invitations} i WHERE i.active = 1;"
        ))?;
        let pending = format!("pending_invitees{OLD_SUFFIX}");
        if table_exists(conn, &pending)? {
            conn.execute_batch(&format!(
                "INSERT OR IGNORE INTO pending_invitees(user_id, deadline_ms, invite_id)
                     SELECT p.user_id, {deadline}, p.invite_id FROM {pending} p
                     JOIN {invitations} i ON i.invite_id = p.invite_id WHERE i.active = 1"
            ))?;
        }
        conn.execute_batch(&format!("DROP TABLE {invitations}"))?;
    }
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS pending_invitees{OLD_SUFFIX}"
    ))?;
    link_old_runs(conn)
}

/// Copies the events an older version kept (runs in version 3, a row per event in version 2)
/// into linked runs, each user's in order; heads point at their user's newest run.
fn link_old_runs(conn: &Connection) -> Result<(), StoreError> {
    let old_runs = format!("event_runs{OLD_SUFFIX}");
    let source = if table_exists(conn, &old_runs)? {
        format!(
            "SELECT user_id, first_seq, last_seq, newest_ms, events, NULL, NULL
             FROM {old_runs} ORDER BY user_id, first_seq"
        )
    } else if table_exists(conn, "events")? {
        "SELECT user_id, seq, seq, created_ms, NULL, origin, frame FROM events
         ORDER BY user_id, seq"
            .to_owned()
    } else {
        return Ok(());
    };
    let mut read = conn.prepare(&source)?;
    let mut insert = conn.prepare(
        "INSERT INTO event_runs(user_id, first_seq, last_seq, newest_ms, prev_run, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut set_head = conn.prepare("UPDATE user_heads SET last_run = ?2 WHERE user_id = ?1")?;
    let mut rows = read.query([])?;
    let mut last: Option<(String, i64)> = None;
    while let Some(row) = rows.next()? {
        let user: String = row.get(0)?;
        let first_seq: i64 = row.get(1)?;
        let newest_ms: i64 = row.get(3)?;
        let events: Vec<u8> = match row.get::<_, Option<Vec<u8>>>(4)? {
            Some(run) => run,
            // A version 2 event: a run of one.
            None => crate::event_runs::encode(&[crate::event_runs::KeptEvent {
                seq: first_seq as u64,
                origin: row.get::<_, Option<String>>(5)?.map(Into::into),
                created_ms: newest_ms as u64,
                stored: row.get::<_, String>(6)?.into(),
            }])?,
        };
        let prev_run = match &last {
            Some((last_user, run)) if *last_user == user => Some(*run),
            Some((last_user, run)) => {
                set_head.execute(rusqlite::params![last_user, run])?;
                None
            }
            None => None,
        };
        insert.execute(rusqlite::params![
            user,
            first_seq,
            row.get::<_, i64>(2)?,
            newest_ms,
            prev_run,
            events
        ])?;
        last = Some((user, conn.last_insert_rowid()));
    }
    if let Some((user, run)) = last {
        set_head.execute(rusqlite::params![user, run])?;
    }
    drop(rows);
    drop((read, insert, set_head));
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {old_runs}; DROP TABLE IF EXISTS events;"
    ))?;
    Ok(())
}

/// Page cache of the indexer, which writes everywhere in the tables: page spills were a fifth
/// of the writing thread's time with SQLite's small default.
const INDEXER_CACHE_KIB: i64 = 32 * 1024;
/// Size the write-ahead log is cut back to when it starts over.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;
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
