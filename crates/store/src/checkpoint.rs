//! The checkpointer thread: copies the write-ahead log back into the database beside the
//! writer, so commits never pay for a checkpoint inline.

use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Time between checkpoint attempts.
const INTERVAL: Duration = Duration::from_millis(200);
/// WAL size (in pages) beyond which a passive checkpoint that could not finish is retried
/// with RESTART, which waits for readers, so the log cannot grow without bound.
const RESTART_ABOVE_PAGES: i64 = 200_000;

pub(crate) fn run(conn: &Connection, stop: &Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(INTERVAL);
        let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match passive {
            Ok((log, done)) if log > RESTART_ABOVE_PAGES && done < log => {
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "WAL checkpoint (restart) failed; will retry");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed; will retry"),
        }
    }
    // Leave a small log behind on a clean stop.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}
