//! The store's background threads (the indexer and the checkpointer) run at the lowest
//! scheduling priority: their work comes in bursts of tens of milliseconds, and on a machine
//! with few cores a burst at normal priority holds the sessions and the journal's committer
//! back, which is where a ring's latency is made. Nothing waits on them except reads, and the
//! bounded index backlog holds the committer back if they fall too far behind.

/// The nice value of the background threads (the lowest there is; raising it back needs
/// privileges, so it is set once, when a thread starts).
pub(crate) const BACKGROUND_NICE: i32 = 19;

/// Lowers the calling thread's priority to `BACKGROUND_NICE`. On Linux a nice value is per
/// thread; elsewhere this does nothing, since it would lower the whole process.
pub(crate) fn run_in_background(thread: &str) {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), BACKGROUND_NICE)
    {
        tracing::warn!(%error, thread, "could not lower the thread's scheduling priority");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = thread;
}
