//! The committer thread: makes numbered batches durable, then answers and delivers them.
//!
//! The writer numbers and encodes a batch while the committer waits for the disk with the
//! batches before it: with both on one thread, the writer spent half its time in
//! `fdatasync()` and jobs queued behind it. The committer takes every batch prepared since its
//! last sync and makes them all durable with one write and one sync, then, in numbering order,
//! passes their records to the indexer, counts them committed, hands their events to the
//! server and answers their jobs.

use crate::indexer::{self, Backlog, Synced};
use crate::log_file::Log;
use crate::priority::Background;
use crate::writer::{Deliver, Delivery, JobReport};
use crate::StoreError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::{oneshot, watch};

/// A job's answer, sent once its batch is durable.
pub(crate) type Reply = (
    oneshot::Sender<Result<JobReport, StoreError>>,
    Result<JobReport, StoreError>,
);

/// A batch numbered and encoded by the writer, waiting to be made durable.
pub(crate) struct Prepared {
    /// Its journal position and frame; `None` when the batch changed nothing.
    pub(crate) frame: Option<(u64, Vec<u8>)>,
    pub(crate) records: Vec<crate::journal::Record>,
    pub(crate) deliveries: Vec<Delivery>,
    pub(crate) replies: Vec<Reply>,
}

/// Where committed work goes.
pub(crate) struct CommitLinks {
    /// Called here rather than through a channel to a task of the server's: one thread
    /// hand-off fewer between the disk and the recipients' connections.
    pub(crate) deliveries: Arc<dyn Deliver>,
    pub(crate) indexer: mpsc::Sender<Synced>,
    /// Records the indexer has yet to apply: waited on before more are queued.
    pub(crate) backlog: Arc<Backlog>,
    /// Asked for the normal policy when the backlog says the indexer is starved.
    pub(crate) background: Arc<Background>,
    /// Newest position the indexer has made durable: journal segments up to it can go.
    pub(crate) durable: Arc<AtomicU64>,
    /// Newest position committed to the journal; readers wait until it is applied.
    pub(crate) committed: Arc<AtomicU64>,
    /// Set after a failed commit; later jobs are refused without touching the journal.
    pub(crate) failure: Arc<watch::Sender<Option<String>>>,
}

pub(crate) struct Committer {
    journal: Log,
    links: CommitLinks,
}

impl Committer {
    pub(crate) fn new(journal: Log, links: CommitLinks) -> Self {
        links.committed.store(journal.last_pos(), Ordering::Release);
        Self { journal, links }
    }

    pub(crate) fn run(mut self, prepared: &mpsc::Receiver<Prepared>) {
        while let Ok(first) = prepared.recv() {
            let mut group = vec![first];
            while let Ok(next) = prepared.try_recv() {
                group.push(next);
            }
            self.commit(group);
        }
        // The indexer may be gathering: once woken it finds the queue closed.
        let CommitLinks {
            indexer, backlog, ..
        } = self.links;
        drop(indexer);
        backlog.ask_to_apply();
        tracing::debug!("store committer stopped");
    }

    fn commit(&mut self, mut group: Vec<Prepared>) {
        let failed_earlier = self.links.failure.borrow().clone();
        let result = match failed_earlier {
            Some(error) => Err(format!("store failed earlier: {error}")),
            None => self.write(&mut group).map_err(|error| {
                tracing::error!(%error, "store commit failed");
                let text = error.to_string();
                self.links.failure.send_replace(Some(text.clone()));
                format!("commit failed: {text}")
            }),
        };
        if let Err(text) = result {
            for batch in group {
                for (reply, _) in batch.replies {
                    let _ = reply.send(Err(StoreError::Corrupt(text.clone())));
                }
            }
            return;
        }
        let mut synced = Vec::with_capacity(group.len());
        let mut answers = Vec::with_capacity(group.len());
        for batch in group {
            if let Some((pos, _)) = batch.frame {
                synced.push((pos, batch.records));
            }
            answers.push((batch.deliveries, batch.replies));
        }
        if let Some(&(newest, _)) = synced.last() {
            // Queued before it counts as committed: a reader that sees it committed finds it
            // in the indexer's queue (see Indexer::gather). A full queue holds the answers
            // back until the indexer catches up.
            let queued = self
                .links
                .backlog
                .add(synced.iter().map(|(_, records)| records.len()).sum());
            if queued >= indexer::STARVED_AT_RECORDS {
                self.links
                    .background
                    .ask_for_normal("the index queue is three quarters full");
            }
            if self.links.indexer.send(synced).is_err() {
                // Durable, but the tables will not show it until a restart replays the
                // journal: stop serving.
                self.links
                    .failure
                    .send_replace(Some("the store indexer has stopped".to_owned()));
            }
            self.links.committed.store(newest, Ordering::Release);
        }
        for (deliveries, replies) in answers {
            if !deliveries.is_empty() {
                self.links.deliveries.deliver(deliveries);
            }
            for (reply, report) in replies {
                let _ = reply.send(report);
            }
        }
        // Committed already: a segment that cannot be let go of now is tried again later.
        if let Err(error) = self
            .journal
            .forget_through(self.links.durable.load(Ordering::Acquire))
        {
            tracing::warn!(%error, "cannot reuse an applied journal segment; will retry");
        }
    }

    /// Writes the group's frames and waits until they are on disk.
    fn write(&mut self, group: &mut [Prepared]) -> Result<(), StoreError> {
        for batch in group.iter_mut() {
            if let Some((pos, frame)) = &mut batch.frame {
                self.journal.write(*pos, frame)?;
            }
        }
        self.journal.sync()
    }
}
