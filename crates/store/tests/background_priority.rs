//! The adaptive scheduling of the store's background threads beside busy processes: a starved
//! idle-policy indexer is raised to the normal policy, by a read that waits for it or by a
//! backed-up queue, and goes back to idle once it has caught up. Its own test binary, so that
//! its busy threads and thread names meet no other test's.

#![cfg(target_os = "linux")]

use beckon_core::ConversationRef;
use beckon_store::{BackgroundThreads, Store, StoreConfig, WriteJob, WriteOp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCHED_OTHER: i64 = 0;
const SCHED_IDLE: i64 = 5;
/// A bound that only a broken build reaches; each wait ends as soon as its condition holds.
const NOT_WITHIN: Duration = Duration::from_secs(120);
/// Long enough that a raise is seen by a watcher polling every few milliseconds.
const HOLD: Duration = Duration::from_secs(1);

/// Scheduling policies of this process's threads whose (15-byte) name is `name`.
fn policies_of_threads(name: &str) -> Vec<i64> {
    let mut policies = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return policies;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        if comm.trim_end() != name {
            continue;
        }
        let Some(name_end) = stat.rfind(')') else {
            continue;
        };
        // Fields after the name start at the third; the policy is the 41st.
        if let Some(policy) = stat[name_end + 2..]
            .split(' ')
            .nth(41 - 3)
            .and_then(|field| field.parse().ok())
        {
            policies.push(policy);
        }
    }
    policies
}

fn both_background_threads_are(policy: i64) -> bool {
    ["beckon-store-in", "beckon-store-ch"]
        .iter()
        .all(|name| policies_of_threads(name) == [policy])
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + NOT_WITHIN;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{what}: indexer {:?}, checkpointer {:?}",
            policies_of_threads("beckon-store-in"),
            policies_of_threads("beckon-store-ch")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A thread that notes whether both background threads were ever seen under the normal
/// policy at once, polling until dropped.
struct RaiseWatch {
    seen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RaiseWatch {
    fn start() -> Self {
        let seen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen_by_thread, stop_thread) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stop_thread.load(Ordering::Relaxed) {
                if both_background_threads_are(SCHED_OTHER) {
                    seen_by_thread.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> bool {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Drop for RaiseWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Threads at normal priority that keep every core busy until dropped.
struct BusyLoops {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyLoops {
    fn start() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2 * cores)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn message_to_bob(n: u64) -> WriteJob {
    WriteJob {
        ops: vec![
            WriteOp::EnsureUser {
                user_id: "alice".into(),
            },
            WriteOp::EnsureUser {
                user_id: "bob".into(),
            },
            WriteOp::AppendMessage {
                message_id: format!("m{n}"),
                conversation: ConversationRef::c2c("alice", "bob"),
                participants: vec!["alice".into(), "bob".into()],
                from: "alice".into(),
                time: 1_700_000_000 + n,
                payload_data: format!("{{\"n\":{n}}}"),
                excluded: false,
            },
        ],
        origin: None,
        live_only: false,
    }
}

async fn bob_unread(store: &Store) -> u64 {
    let conversations = store.conversations("bob".into()).await.expect("reads");
    conversations.first().map_or(0, |c| c.unread_count)
}

/// Whether Linux lets this process take a thread back from `SCHED_IDLE`, read from /proc
/// independently of the store's own probe: `CAP_SYS_NICE` (bit 23 of the effective set), or
/// `RLIMIT_NICE` of at least 20 - nice.
fn process_may_leave_idle() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let nice_limit: i64 = limits
        .lines()
        .find(|line| line.starts_with("Max nice priority"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(0);
    // This process runs at nice 0 unless started otherwise; 20 - 0 is the most it can need.
    cap_eff & (1 << 23) != 0 || nice_limit >= 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starved_idle_indexer_is_raised_by_a_waiting_read_or_a_backed_up_queue_and_goes_back_once_caught_up(
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (deliveries, _keep) = tokio::sync::mpsc::unbounded_channel();
    let config = StoreConfig {
        background_threads: BackgroundThreads::Adaptive,
        background_raise_hold: HOLD,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config, Arc::new(deliveries)).expect("store opens");
    if !process_may_leave_idle() {
        // Nothing could raise an idle thread here, so none is made idle.
        wait_until("normal policy without the right to raise", || {
            both_background_threads_are(SCHED_OTHER)
        })
        .await;
        tokio::task::spawn_blocking(move || store.close())
            .await
            .expect("closes");
        return;
    }
    wait_until("idle policy at start", || {
        both_background_threads_are(SCHED_IDLE)
    })
    .await;
    for commit_path_thread in ["beckon-store-sy", "beckon-store-wr"] {
        assert_eq!(
            policies_of_threads(commit_path_thread),
            [SCHED_OTHER],
            "{commit_path_thread} keeps the normal policy"
        );
    }
    let mut sent = 0u64;

    // A read waits for a starved indexer: after a while it asks for the normal policy.
    {
        let _busy = BusyLoops::start();
        let raised = RaiseWatch::start();
        let deadline = Instant::now() + NOT_WITHIN;
        while !raised.seen() {
            assert!(Instant::now() < deadline, "never raised by a read");
            sent += 1;
            store.write(message_to_bob(sent)).await.expect("commits");
            assert_eq!(bob_unread(&store).await, sent, "a read sees its write");
        }
    }
    wait_until("back to idle after the read's raise", || {
        both_background_threads_are(SCHED_IDLE)
    })
    .await;

    // Writes alone, nobody reading: the queue backs up past a commit's worth.
    {
        let _busy = BusyLoops::start();
        let raised = RaiseWatch::start();
        let deadline = Instant::now() + NOT_WITHIN;
        while !raised.seen() {
            assert!(Instant::now() < deadline, "never raised by the queue");
            let commits: Vec<_> = (0..2_000)
                .map(|_| {
                    sent += 1;
                    store.submit(message_to_bob(sent))
                })
                .collect();
            for commit in commits {
                commit.await.expect("answered").expect("commits");
            }
        }
    }
    assert_eq!(bob_unread(&store).await, sent, "every message indexed");
    wait_until("back to idle after the queue's raise", || {
        both_background_threads_are(SCHED_IDLE)
    })
    .await;
    tokio::task::spawn_blocking(move || store.close())
        .await
        .expect("closes");
}
