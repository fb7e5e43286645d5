//! Operating-system helpers: the open-file limit, signals, and a process's memory and CPU time
//! from /proc.

use anyhow::{bail, Context, Result};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::collections::BTreeMap;

/// Raises this process's open-file limit so that `needed` descriptors fit: the soft limit goes
/// up to the hard one, and past it when allowed (root). Children started later inherit it,
/// which is how the server gets room for as many connections as the clients open.
pub(crate) fn raise_file_limit(needed: u64) -> Result<u64> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).context("cannot read the open-file limit")?;
    if needed > hard {
        if setrlimit(Resource::RLIMIT_NOFILE, needed, needed).is_ok() {
            return Ok(needed);
        }
        bail!(
            "this run needs about {needed} open files per process but the hard limit is {hard}; \
             raise it (as root: `ulimit -Hn {needed}`, or LimitNOFILE / limits.conf) or ask for fewer connections"
        );
    }
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .context("cannot raise the open-file soft limit to the hard limit")?;
    }
    Ok(hard)
}

/// Asks a process to stop (SIGTERM), as a supervisor would.
pub(crate) fn terminate(pid: u32) -> Result<()> {
    let pid = i32::try_from(pid).context("process id out of range")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .with_context(|| format!("cannot signal process {pid}"))
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Memory {
    /// Resident set size now (VmRSS), KiB.
    pub(crate) rss_kib: u64,
    /// Peak resident set size (VmHWM), KiB.
    pub(crate) peak_kib: u64,
}

pub(crate) fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in {path}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// On-CPU time of a process's threads so far, in nanoseconds, summed by thread name (from
/// `/proc/<pid>/task/*/schedstat`, which counts in nanoseconds rather than clock ticks). A
/// thread that exits between two samples takes its time with it.
pub(crate) fn cpu_by_thread(pid: u32) -> Result<BTreeMap<String, u64>> {
    let dir = format!("/proc/{pid}/task");
    let mut by_name = BTreeMap::new();
    for task in std::fs::read_dir(&dir).with_context(|| format!("cannot read {dir}"))? {
        let path = task.with_context(|| format!("cannot read {dir}"))?.path();
        // A thread may end while the directory is read: skip it.
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        let on_cpu_ns: u64 = stat
            .split_whitespace()
            .next()
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("unreadable {}", path.join("schedstat").display()))?;
        *by_name.entry(name.trim().to_owned()).or_insert(0) += on_cpu_ns;
    }
    Ok(by_name)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn interrupted() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Wall clock in microseconds since the Unix epoch (the server stamps deadlines with the same
/// clock, so the difference is meaningful on one machine).
pub(crate) fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_shows_its_cpu_time_under_its_name() {
        const SPENT_NS: u64 = 5_000_000;
        let busy = std::thread::Builder::new()
            .name("cpu-probe".into())
            .spawn(|| {
                // Spins until the kernel has counted 5 ms on a core for this thread.
                let own = || -> u64 {
                    std::fs::read_to_string("/proc/thread-self/schedstat")
                        .ok()
                        .and_then(|s| s.split_whitespace().next()?.parse().ok())
                        .expect("own schedstat")
                };
                while own() < SPENT_NS {}
                cpu_by_thread(std::process::id()).expect("reads /proc")
            })
            .expect("spawns");
        let seen = busy.join().expect("joins");
        assert!(
            seen.get("cpu-probe").copied().unwrap_or(0) >= SPENT_NS,
            "{seen:?}"
        );
    }

    #[test]
    fn a_process_that_does_not_exist_is_an_error() {
        assert!(cpu_by_thread(u32::MAX).is_err());
    }
}
