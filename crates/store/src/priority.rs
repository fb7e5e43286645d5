//! The scheduling policy of the store's background threads (the indexer and the checkpointer):
//! idle while they keep up, normal while the index queue says they are starved.
//!
//! Their work comes in bursts of tens of milliseconds. At normal priority a burst holds a core
//! the sessions and the journal's committer wait for, which is where a ring's latency tail is
//! made; under `SCHED_IDLE` a waking thread takes the core at once, and a core running only
//! idle-policy threads counts as free. But where other processes keep every core busy an
//! idle-policy thread barely runs, and the bounded index queue then holds every commit back.
//! So by default ([`BackgroundThreads::Adaptive`]) the normal policy is asked for when the
//! index queue is three quarters full (by the committer) or a read has waited 100 ms for the
//! indexer; each background thread takes it at its next check (a starved thread still runs
//! now and then), and the indexer withdraws the request once the queue is short again and
//! the raise has lasted `StoreConfig::background_raise_hold`.
//!
//! Linux lets an unprivileged thread leave `SCHED_IDLE` only if `RLIMIT_NICE` allows its nice
//! value (`CAP_SYS_NICE` always does), so a probe thread tries the round trip at start; where it
//! is refused the threads keep the normal policy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How the store's background threads are scheduled (Linux; elsewhere always normal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackgroundThreads {
    /// Idle policy while they keep up, normal while the index queue backs up; normal
    /// throughout where the process may not take a thread back from the idle policy.
    #[default]
    Adaptive,
    /// Always the normal policy.
    Normal,
    /// Always the idle policy (the lowest nice value where it is refused), even when starved:
    /// for a machine Beckon has to itself.
    Idle,
}

/// Shared by the background threads, which follow it, and the committer, which raises it.
pub(crate) struct Background {
    /// Adaptive, and the probe could leave the idle policy.
    adaptive: bool,
    idle_always: bool,
    /// The normal policy is asked for (adaptive only).
    raised: AtomicBool,
    raised_at: Mutex<Instant>,
    hold: Duration,
}

impl Background {
    pub(crate) fn new(mode: BackgroundThreads, hold: Duration) -> Self {
        let adaptive = mode == BackgroundThreads::Adaptive && os::can_leave_idle();
        if mode == BackgroundThreads::Adaptive && !adaptive {
            tracing::info!(
                "the store's background threads keep the normal scheduling policy: this process \
                 may not take a thread back from the idle policy (it needs RLIMIT_NICE of at \
                 least 20 - nice, or CAP_SYS_NICE)"
            );
        }
        Self {
            adaptive,
            idle_always: mode == BackgroundThreads::Idle,
            raised: AtomicBool::new(false),
            raised_at: Mutex::new(Instant::now()),
            hold,
        }
    }

    /// Called when the indexer is starved: by the committer when the queue is three quarters
    /// full, by a read that has waited long for it. `why` goes to the log.
    pub(crate) fn ask_for_normal(&self, why: &'static str) {
        if self.adaptive && !self.raised.swap(true, Ordering::AcqRel) {
            *self
                .raised_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Instant::now();
            tracing::debug!(why, "the indexer falls behind: the store's background threads take the normal scheduling policy");
        }
    }

    /// Back to idle once the queue is short and the raise has lasted its hold (so a busy
    /// spell does not flip it at every commit).
    fn settle(&self, queued_records: usize, short: usize) {
        if !self.raised.load(Ordering::Acquire) || queued_records >= short {
            return;
        }
        let raised_at = *self
            .raised_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if raised_at.elapsed() >= self.hold {
            self.raised.store(false, Ordering::Release);
            tracing::debug!("the index queue is short again: the store's background threads go back to the idle scheduling policy");
        }
    }

    /// The calling thread's part: sets its starting policy and follows later requests.
    pub(crate) fn enter(self: &Arc<Self>, thread: &'static str) -> ThreadPolicy {
        if self.idle_always {
            os::run_in_background(thread);
        }
        let policy = ThreadPolicy {
            shared: Arc::clone(self),
            thread,
            nice: os::own_nice(),
            idle: std::cell::Cell::new(false),
            stuck: std::cell::Cell::new(false),
        };
        policy.follow();
        policy
    }
}

/// One background thread's policy as it last set it.
pub(crate) struct ThreadPolicy {
    shared: Arc<Background>,
    thread: &'static str,
    /// The nice value it started with, taken back with the normal policy.
    nice: i32,
    idle: std::cell::Cell<bool>,
    /// A change was refused; no more are tried.
    stuck: std::cell::Cell<bool>,
}

impl ThreadPolicy {
    /// Called by the indexer between transactions, with the records still queued.
    pub(crate) fn settle(&self, queued_records: usize, short: usize) {
        self.shared.settle(queued_records, short);
    }

    /// Takes the policy asked for if it is not the current one: an atomic load when it is,
    /// so cheap enough to call for every record.
    #[inline]
    pub(crate) fn follow(&self) {
        if !self.shared.adaptive || self.stuck.get() {
            return;
        }
        let want_idle = !self.shared.raised.load(Ordering::Relaxed);
        if want_idle == self.idle.get() {
            return;
        }
        let result = if want_idle {
            os::set_idle()
        } else {
            os::set_normal(self.nice)
        };
        match result {
            Ok(()) => self.idle.set(want_idle),
            Err(error) => {
                // Not expected after the probe. Said once: the thread stops following, at
                // whatever policy it has.
                tracing::warn!(%error, thread = self.thread, want_idle, "could not change the thread's scheduling policy");
                self.stuck.set(true);
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod os {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    use thread_priority::{ThreadPriority, ThreadPriorityValue};

    fn set(priority: ThreadPriority, policy: NormalThreadSchedulePolicy) -> Result<(), String> {
        set_thread_priority_and_policy(
            thread_native_id(),
            priority,
            ThreadSchedulePolicy::Normal(policy),
        )
        .map_err(|error| format!("{error:?}"))
    }

    /// `SCHED_IDLE`: the thread runs only on a core nothing else wants, and a waking thread of
    /// any other policy takes the core from it at once.
    pub(super) fn set_idle() -> Result<(), String> {
        set(ThreadPriority::Min, NormalThreadSchedulePolicy::Idle)
    }

    /// The normal policy at `nice`. The crate takes a portable 0–99 scale for it; the value
    /// that maps to `nice` is looked up rather than computed, to stay exact.
    pub(super) fn set_normal(nice: i32) -> Result<(), String> {
        let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
        let priority = (0..=99u8)
            .filter_map(|value| ThreadPriorityValue::try_from(value).ok())
            .map(ThreadPriority::Crossplatform)
            .find(|priority| priority.to_posix(policy).ok() == Some(nice))
            .ok_or_else(|| format!("no priority maps to nice {nice}"))?;
        set(priority, NormalThreadSchedulePolicy::Other)
    }

    /// The calling thread's nice value, from `/proc/thread-self/stat` (field 19); 0 if it
    /// cannot be read.
    pub(super) fn own_nice() -> i32 {
        std::fs::read_to_string("/proc/thread-self/stat")
            .ok()
            .and_then(|stat| {
                // The command name may hold spaces; the fields after it are plain.
                let (_, fields) = stat.rsplit_once(')')?;
                fields.split_whitespace().nth(19 - 3)?.parse().ok()
            })
            .unwrap_or(0)
    }

    /// Whether a thread of this process may go idle and come back: tried on a thread of its
    /// own, which then ends.
    pub(super) fn can_leave_idle() -> bool {
        std::thread::Builder::new()
            .name("beckon-store-probe".into())
            .spawn(|| {
                let nice = own_nice();
                set_idle().is_ok() && set_normal(nice).is_ok()
            })
            .ok()
            .and_then(|probe| probe.join().ok())
            .unwrap_or(false)
    }

    /// The idle policy for good, or the lowest priority of the normal policy (the highest
    /// nice value) where it is refused, which still lets a burst hold a core for the
    /// scheduler's time slice.
    pub(super) fn run_in_background(thread: &str) {
        if let Err(idle_refused) = set_idle() {
            if let Err(error) = set(ThreadPriority::Min, NormalThreadSchedulePolicy::Other) {
                tracing::warn!(%idle_refused, %error, thread, "could not lower the thread's scheduling priority");
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    pub(super) fn set_idle() -> Result<(), String> {
        Ok(())
    }
    pub(super) fn set_normal(_nice: i32) -> Result<(), String> {
        Ok(())
    }
    pub(super) fn own_nice() -> i32 {
        0
    }
    pub(super) fn can_leave_idle() -> bool {
        false
    }
    pub(super) fn run_in_background(_thread: &str) {}
}
