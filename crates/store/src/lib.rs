//! Durable storage: the only crate that knows SQL.
//!
//! One writer thread commits many jobs at once (group commit) to an append-only journal
//! file: a durable commit costs about a millisecond, so committing per action would cap the
//! server near a thousand actions per second, and appending one frame per commit writes each
//! byte once. The writer numbers each user's events and each conversation's messages, so numbering
//! order is commit order; after each commit it hands the numbered events, in order, to the
//! server for delivery, and the records to the indexer thread, which applies them to the
//! queryable tables behind it. Reads use a small pool of separate connections (WAL lets them
//! run beside the indexer) and first wait until the indexer has applied everything committed
//! when they started, so a client always reads its own acknowledged writes.

mod checkpoint;
mod committer;
mod compressed;
mod event_runs;
mod indexer;
mod journal;
mod log_file;
mod priority;
mod reader;
mod schema;
mod writer;

pub use journal::LEGACY_JOURNAL_FILE;
pub use log_file::LOG_DIR;

pub use priority::BackgroundThreads;
pub use reader::LoginSnapshot;
pub use writer::{Deliver, Delivery, JobReport, ReportedMessage, WriteJob, WriteOp};

use beckon_core::Invitation;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

/// Why storage failed. Any of these means the durable state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal file {}: {message}", path.display())]
    Journal { path: PathBuf, message: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store writer has stopped")]
    WriterStopped,
    #[error("a read task failed: {0}")]
    Task(String),
}

/// Store tuning.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// How long numbered events are kept for resumption.
    pub event_retention_ms: u64,
    /// Most events a resuming client is sent; past that it is told to resync.
    pub max_backlog_events: usize,
    /// Most jobs committed in one transaction.
    pub max_batch_jobs: usize,
    /// Size a journal segment file grows to before the next is started.
    pub journal_segment_bytes: u64,
    /// Size of the tables' write-ahead log past which the indexer stops to checkpoint all of
    /// it: the checkpointer alone never catches up while the indexer commits back to back.
    pub wal_limit_bytes: u64,
    /// Longest the indexer gathers committed batches into one transaction while no reader
    /// waits: most of an indexing commit is writing dirty pages, and a longer gathering
    /// shares them among more actions.
    pub index_gather: std::time::Duration,
    /// Scheduling of the indexer and the checkpointer (Linux): under `SCHED_IDLE` their
    /// bursts never delay the threads a ring passes through; by default they leave it while
    /// the index queue backs up (see `priority.rs` and docs/architecture.md).
    pub background_threads: BackgroundThreads,
    /// Least time the background threads keep the normal policy once the index queue has
    /// backed up, so that a busy spell does not flip it at every commit.
    pub background_raise_hold: std::time::Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            event_retention_ms: 24 * 3600 * 1000,
            max_backlog_events: 10_000,
            max_batch_jobs: 4096,
            journal_segment_bytes: log_file::SEGMENT_BYTES,
            wal_limit_bytes: 256 * 1024 * 1024,
            index_gather: std::time::Duration::from_millis(200),
            background_threads: BackgroundThreads::default(),
            background_raise_hold: std::time::Duration::from_secs(5),
        }
    }
}

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    config: StoreConfig,
    /// Read-locked to send (sessions on every worker at once), write-locked to close.
    jobs: RwLock<Option<mpsc::Sender<writer::Envelope>>>,
    readers: Mutex<Vec<rusqlite::Connection>>,
    /// Newest journal position committed, and the indexer's newest applied one.
    committed: Arc<AtomicU64>,
    applied: tokio::sync::watch::Receiver<u64>,
    /// Tells the indexer a reader waits, so it applies at once instead of gathering more.
    index_backlog: Arc<indexer::Backlog>,
    /// The background threads' scheduling, which a long wait for the indexer raises.
    background: Arc<priority::Background>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    committer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    indexer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
    stop_checkpoints: Arc<std::sync::atomic::AtomicBool>,
    /// Set once a commit fails; see [`Store::failure`].
    failure: tokio::sync::watch::Receiver<Option<String>>,
}

/// Name of the database of indexed tables inside the data directory.
pub const DB_FILE: &str = "beckon.sqlite3";

/// How long a read waits for the indexer before it asks for the background threads' normal
/// policy (an indexing transaction takes tens of milliseconds).
const READ_WAIT_BEFORE_RAISE: std::time::Duration = std::time::Duration::from_millis(100);

/// Batches the writer may number ahead of the journal's sync before it waits.
const PREPARED_QUEUE_BATCHES: usize = 256;

impl Store {
    /// Opens (creating when needed) the database in `data_dir` and starts the writer. Numbered
    /// events are handed to `deliveries` after each commit, in commit order.
    pub fn open(
        data_dir: &Path,
        config: StoreConfig,
        deliveries: Arc<dyn Deliver>,
    ) -> Result<Self, StoreError> {
        let dir_error = |source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(dir_error)?;
        let path = data_dir.join(DB_FILE);
        let durable = Arc::new(AtomicU64::new(0));
        let background = Arc::new(priority::Background::new(
            config.background_threads,
            config.background_raise_hold,
        ));
        let (mut indexer, applied) = indexer::Indexer::new(
            schema::open_indexer(&path)?,
            &config,
            data_dir.join(format!("{DB_FILE}-wal")),
            Arc::clone(&durable),
        )?;
        // What a crash left unapplied goes into the tables before anyone reads them: first
        // what an earlier version's journal holds, then the journal's own frames.
        let mut replayed = 0usize;
        let legacy =
            journal::replay_legacy_after(data_dir, indexer.applied_pos(), |pos, records| {
                replayed += 1;
                indexer.apply(&[(pos, records)], false)
            })?;
        if legacy.is_some() {
            // Everything the old journal held is in the tables now; the new one goes on after.
            indexer.apply(&[], true)?;
            journal::remove_legacy(data_dir)?;
        }
        let mut log = log_file::Log::open(
            data_dir,
            config.journal_segment_bytes,
            indexer.applied_pos(),
            |pos, payload| {
                replayed += 1;
                indexer.apply(&[(pos, journal::decode(pos, payload)?)], false)
            },
        )?;
        log.prepare_spares();
        if replayed > 0 {
            indexer.apply(&[], true)?;
            tracing::info!(
                batches = replayed,
                "applied journal batches left by a crash"
            );
        }
        let (failure_tx, failure) = tokio::sync::watch::channel(None);
        let failure_tx = Arc::new(failure_tx);
        let committed_pos = Arc::new(AtomicU64::new(0));
        // Unbounded in syncs: the backlog bounds it in records.
        let (index_tx, index_rx) = mpsc::channel();
        let (prepared_tx, prepared_rx) = mpsc::sync_channel(PREPARED_QUEUE_BATCHES);
        let writer = writer::Writer::new(
            log.last_pos(),
            schema::open_reader(&path)?,
            config.clone(),
            writer::WriterLinks {
                committer: prepared_tx,
                applied: applied.clone(),
                failure: Arc::clone(&failure_tx),
            },
        );
        let committer = committer::Committer::new(
            log,
            committer::CommitLinks {
                deliveries,
                indexer: index_tx,
                backlog: Arc::clone(&indexer.backlog),
                background: Arc::clone(&background),
                durable,
                committed: Arc::clone(&committed_pos),
                failure: Arc::clone(&failure_tx),
            },
        );
        let index_backlog = Arc::clone(&indexer.backlog);
        let indexer_failure = Arc::clone(&failure_tx);
        let indexer_background = Arc::clone(&background);
        let indexer_thread = std::thread::Builder::new()
            .name("beckon-store-indexer".into())
            .spawn(move || {
                indexer.run(&index_rx, &indexer_failure, &indexer_background);
            })
            .map_err(dir_error)?;
        let committer_thread = std::thread::Builder::new()
            .name("beckon-store-sync".into())
            .spawn(move || committer.run(&prepared_rx))
            .map_err(dir_error)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("beckon-store-writer".into())
            .spawn(move || writer.run(&rx))
            .map_err(dir_error)?;
        let checkpoint_conns = vec![schema::open_checkpointer(&path)?];
        let stop_checkpoints = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::clone(&stop_checkpoints);
        let checkpointer_background = Arc::clone(&background);
        let checkpointer = std::thread::Builder::new()
            .name("beckon-store-checkpoint".into())
            .spawn(move || {
                let policy = checkpointer_background.enter("checkpointer");
                checkpoint::run(&checkpoint_conns, &stop, &policy);
            })
            .map_err(dir_error)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                config,
                jobs: RwLock::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                committed: committed_pos,
                applied,
                index_backlog,
                background: Arc::clone(&background),
                writer_thread: Mutex::new(Some(thread)),
                committer_thread: Mutex::new(Some(committer_thread)),
                indexer_thread: Mutex::new(Some(indexer_thread)),
                checkpointer: Mutex::new(Some(checkpointer)),
                stop_checkpoints,
                failure,
            }),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Queues a job without waiting. Jobs are applied in the order they are queued; the
    /// returned receiver resolves after the job's transaction committed.
    pub fn submit(&self, job: WriteJob) -> oneshot::Receiver<Result<JobReport, StoreError>> {
        let (reply, rx) = oneshot::channel();
        let sent = match self.inner.jobs.read() {
            Ok(guard) => guard
                .as_ref()
                .is_some_and(|tx| tx.send(writer::Envelope::Job(job, reply)).is_ok()),
            Err(_) => false,
        };
        // On failure the reply sender was dropped with the envelope, so the receiver reports
        // the writer as gone.
        let _ = sent;
        rx
    }

    /// Queues a job and waits for its commit.
    pub async fn write(&self, job: WriteJob) -> Result<JobReport, StoreError> {
        self.submit(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?
    }

    /// Resolves with the error once a commit has failed. From then on every write is refused:
    /// the caller's in-memory state may be ahead of the disk, so the server must stop and
    /// restart from the durable state.
    pub async fn failure(&self) -> String {
        let mut failure = self.inner.failure.clone();
        let error = match failure.wait_for(Option::is_some).await {
            Ok(error) => error.clone().unwrap_or_default(),
            Err(_) => String::from("the store writer stopped"),
        };
        error
    }

    /// Stops the writer after it has committed every queued job, and the indexer after it has
    /// applied them.
    pub fn close(&self) {
        if let Ok(mut jobs) = self.inner.jobs.write() {
            jobs.take();
        }
        for thread in [
            &self.inner.writer_thread,
            &self.inner.committer_thread,
            &self.inner.indexer_thread,
        ] {
            let thread = thread.lock().ok().and_then(|mut t| t.take());
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
        self.stop_checkpointer();
    }

    /// Stops the checkpointer thread (after a last checkpoint) and waits for it.
    fn stop_checkpointer(&self) {
        self.inner
            .stop_checkpoints
            .store(true, std::sync::atomic::Ordering::Release);
        let checkpointer = self
            .inner
            .checkpointer
            .lock()
            .ok()
            .and_then(|mut t| t.take());
        if let Some(thread) = checkpointer {
            let _ = thread.join();
        }
    }

    /// Runs `f` on a pooled read connection on the blocking thread pool, once the tables hold
    /// everything committed before the call.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &StoreConfig) -> Result<T, StoreError> + Send + 'static,
    {
        let committed = self.inner.committed.load(Ordering::Acquire);
        if *self.inner.applied.borrow() < committed {
            self.inner.index_backlog.ask_to_apply();
            let mut applied = self.inner.applied.clone();
            let caught_up = |applied: &u64| *applied >= committed;
            let waited = tokio::time::timeout(READ_WAIT_BEFORE_RAISE, applied.wait_for(caught_up))
                .await
                .map(|result| result.map(drop));
            let result = if let Ok(result) = waited {
                result
            } else {
                // Far longer than a transaction takes: an idle-policy indexer is not getting
                // a core.
                self.inner
                    .background
                    .ask_for_normal("a read waited 100 ms for the indexer");
                applied.wait_for(caught_up).await.map(drop)
            };
            result.map_err(|_| StoreError::WriterStopped)?;
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => schema::open_reader(&inner.path)?,
            };
            let result = f(&conn, &inner.config);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < 8 {
                    pool.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Every invitation still active, for arming timers at start-up, in chunks as they are
    /// read; an empty chunk ends it (a channel closed before that means the load failed).
    /// One thread reads while two parse, and the caller works on the chunks as they come:
    /// with a million pending invitations this is most of the time to start.
    pub fn active_invitations(&self) -> tokio_mpsc::Receiver<Result<Vec<Invitation>, StoreError>> {
        const CHUNK: usize = 4096;
        const PARSERS: usize = 2;
        let (parsed_tx, parsed_rx) = tokio_mpsc::channel(8);
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let (bodies_tx, bodies_rx) = mpsc::sync_channel::<reader::Bodies>(4);
            // Taken away by a parser that stops early, so the reader stops too.
            let bodies_rx = Mutex::new(Some(bodies_rx));
            let parsed_all = std::thread::scope(|scope| {
                let parsers: Vec<_> = (0..PARSERS)
                    .map(|_| {
                        let parsed_tx = parsed_tx.clone();
                        let bodies_rx = &bodies_rx;
                        scope.spawn(move || loop {
                            let next = bodies_rx
                                .lock()
                                .ok()
                                .and_then(|rx| rx.as_ref().map(mpsc::Receiver::recv));
                            let Some(Ok(bodies)) = next else {
                                return true;
                            };
                            let parsed = bodies.parse();
                            let failed = parsed.is_err();
                            if parsed_tx.blocking_send(parsed).is_err() || failed {
                                if let Ok(mut rx) = bodies_rx.lock() {
                                    rx.take();
                                }
                                return false;
                            }
                        })
                    })
                    .collect();
                let read = schema::open_reader(&inner.path).and_then(|conn| {
                    reader::active_invitation_bodies(&conn, CHUNK, |bodies| {
                        bodies_tx.send(bodies).is_ok()
                    })
                });
                drop(bodies_tx);
                let parsed = parsers
                    .into_iter()
                    .all(|parser| parser.join().unwrap_or(false));
                read.map(|()| parsed)
            });
            match parsed_all {
                // The end: an empty chunk, so a load that stopped early is told apart.
                Ok(true) => {
                    let _ = parsed_tx.blocking_send(Ok(Vec::new()));
                }
                Ok(false) => {}
                Err(error) => {
                    let _ = parsed_tx.blocking_send(Err(error));
                }
            }
        });
        parsed_rx
    }

    /// How many invitations are active (to size tables before loading them).
    pub async fn active_invitation_count(&self) -> Result<u64, StoreError> {
        self.read(|conn, _| reader::active_invitation_count(conn))
            .await
    }

    /// Every known userID.
    pub async fn users(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn, _| reader::users(conn)).await
    }

    /// Every live group with its members.
    pub async fn groups(&self) -> Result<Vec<beckon_core::Group>, StoreError> {
        self.read(|conn, _| reader::groups(conn)).await
    }

    /// Whether a group with this ID was ever created (dismissed ones included).
    pub async fn group_id_used(&self, group_id: String) -> Result<bool, StoreError> {
        self.read(move |conn, _| reader::group_id_used(conn, &group_id))
            .await
    }

    /// Whether an invitation with this ID was ever stored.
    pub async fn invitation_exists(&self, invite_id: String) -> Result<bool, StoreError> {
        self.read(move |conn, _| reader::invitation_exists(conn, &invite_id))
            .await
    }

    /// What a logging-in device needs, read in one consistent snapshot.
    pub async fn login_snapshot(
        &self,
        user_id: String,
        last_seq: Option<u64>,
    ) -> Result<LoginSnapshot, StoreError> {
        self.read(move |conn, config| reader::login_snapshot(conn, config, &user_id, last_seq))
            .await
    }

    /// The user's conversations, most recently active first.
    pub async fn conversations(
        &self,
        user_id: String,
    ) -> Result<Vec<beckon_proto::frames::Conversation>, StoreError> {
        self.read(move |conn, _| reader::conversations(conn, &user_id))
            .await
    }

    /// One page of a conversation's messages; `None` when `before` names no message of it.
    pub async fn messages(
        &self,
        reader_id: String,
        conversation: beckon_core::ConversationRef,
        before: Option<String>,
        count: usize,
    ) -> Result<Option<beckon_proto::frames::MessageListResult>, StoreError> {
        self.read(move |conn, _| {
            reader::messages(conn, &reader_id, &conversation, before.as_deref(), count)
        })
        .await
    }

    /// The stored message with this ID.
    pub async fn message(
        &self,
        message_id: String,
    ) -> Result<Option<beckon_core::StoredMessage>, StoreError> {
        self.read(move |conn, _| reader::message(conn, &message_id))
            .await
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
