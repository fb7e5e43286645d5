//! Which devices are connected for each user, and delivery of committed events to them.

use beckon_proto::CloseCode;
use beckon_store::{Deliver, Delivery};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Something to write to one connection.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) seq: Option<u64>,
    pub(crate) frame: Arc<str>,
}

/// One logged-in connection, as the registry sees it.
pub(crate) struct ConnHandle {
    pub(crate) id: u64,
    pub(crate) instance: String,
    pub(crate) queue: mpsc::Sender<Outbound>,
    /// Set to a close code when the server wants the connection gone (e.g. too slow).
    pub(crate) kick_code: AtomicU16,
    /// Shared so that a session can wait on it across the turns of its loop.
    pub(crate) kicked: Arc<Notify>,
}

impl ConnHandle {
    pub(crate) fn kick(&self, code: CloseCode) {
        self.kick_code.store(code.as_u16(), Ordering::Relaxed);
        self.kicked.notify_one();
    }
}

const SHARDS: usize = 64;

/// Connections by user. Sharded so deliveries and logins rarely contend.
pub(crate) struct Registry {
    shards: Vec<Mutex<UserConnections>>,
    /// Picks a user's shard; seeded apart from the shards' own tables.
    shard_hasher: foldhash::fast::RandomState,
    next_id: AtomicU64,
    open_connections: AtomicUsize,
    max_connections: usize,
    closed: Notify,
}

type UserConnections = HashMap<String, Vec<Arc<ConnHandle>>, foldhash::fast::RandomState>;

impl Registry {
    fn shard_of(&self, user: &str) -> usize {
        use std::hash::BuildHasher;
        (self.shard_hasher.hash_one(user) as usize) % SHARDS
    }

    pub(crate) fn new(max_connections: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(UserConnections::default()))
                .collect(),
            shard_hasher: foldhash::fast::RandomState::default(),
            next_id: AtomicU64::new(1),
            open_connections: AtomicUsize::new(0),
            max_connections,
            closed: Notify::new(),
        }
    }

    /// Counts a new socket; `false` when the server is full.
    pub(crate) fn admit(&self) -> bool {
        let previous = self.open_connections.fetch_add(1, Ordering::AcqRel);
        if previous >= self.max_connections {
            self.open_connections.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Uncounts a socket admitted earlier.
    pub(crate) fn release(&self) {
        self.open_connections.fetch_sub(1, Ordering::AcqRel);
        self.closed.notify_waiters();
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.open_connections.load(Ordering::Acquire)
    }

    /// Resolves at the next connection close.
    pub(crate) async fn closed(&self) {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), self.closed.notified())
            .await;
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register(&self, user: &str, handle: Arc<ConnHandle>) {
        if let Ok(mut shard) = self.shards[self.shard_of(user)].lock() {
            shard.entry(user.to_owned()).or_default().push(handle);
        }
    }

    pub(crate) fn unregister(&self, user: &str, id: u64) {
        if let Ok(mut shard) = self.shards[self.shard_of(user)].lock() {
            if let Some(list) = shard.get_mut(user) {
                list.retain(|h| h.id != id);
                if list.is_empty() {
                    shard.remove(user);
                }
            }
        }
    }

    fn deliver_one(&self, delivery: &Delivery) {
        let Ok(shard) = self.shards[self.shard_of(&delivery.user_id)].lock() else {
            return;
        };
        let Some(handles) = shard.get(&delivery.user_id) else {
            return;
        };
        for handle in handles {
            if delivery.skip_instance.as_deref() == Some(handle.instance.as_str()) {
                continue;
            }
            let outbound = Outbound {
                seq: delivery.seq,
                frame: Arc::clone(&delivery.frame),
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = handle.queue.try_send(outbound) {
                handle.kick(CloseCode::SlowConsumer);
            }
        }
    }
}

/// Committed events, in commit order, straight from the store's committer thread: queuing
/// to a connection never waits (a full queue kicks it instead).
impl Deliver for Registry {
    fn deliver(&self, events: Vec<Delivery>) {
        for delivery in &events {
            self.deliver_one(delivery);
        }
    }
}
