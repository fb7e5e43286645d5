//! With `StoreConfig::idle_background_threads`, the store's background threads (the indexer
//! and the checkpointer) run under the idle scheduling policy: their work comes in bursts of
//! tens of milliseconds, and on a machine with few cores a burst at normal priority holds the
//! sessions and the journal's committer back, which is where a ring's latency is made. It is
//! off by default because a machine whose cores other processes keep busy then starves them:
//! the bounded index backlog holds the committer back, and every commit slows down.

/// Puts the calling thread under `SCHED_IDLE`: it runs only on a core nothing else wants, and a
/// waking thread of any other policy takes the core from it at once. A lowest nice value
/// instead (the fallback where the policy is refused) still lets a burst hold a core for the
/// scheduler's time slice. Linux only; elsewhere this does nothing.
pub(crate) fn run_in_background(thread: &str) {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        use thread_priority::ThreadPriority;
        let lowered = |policy| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(policy),
            )
        };
        if let Err(idle_refused) = lowered(NormalThreadSchedulePolicy::Idle) {
            // Normal policy at its minimum priority: the highest nice value.
            if let Err(error) = lowered(NormalThreadSchedulePolicy::Other) {
                tracing::warn!(%idle_refused, %error, thread, "could not lower the thread's scheduling priority");
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = thread;
}
