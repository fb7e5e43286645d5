//! Child processes the tool measures: `beckon serve` and the baseline relays. Each is started
//! from the current executable, announces its address on stdout, and is killed if its handle
//! is dropped, so an error or Ctrl-C never leaves one running.

use crate::system;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest wait for a child to announce its address (a big store takes a while to load).
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for a graceful stop before the child is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running child that serves WebSocket clients.
pub(crate) struct ChildProcess {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    what: &'static str,
    log: PathBuf,
    /// When the address line was read.
    pub(crate) serving_at: Instant,
}

/// The `beckon serve` command for a fresh or existing data directory, on a loopback port the
/// system picks, with the rate limit out of the way and room for many connections.
pub(crate) fn beckon_command(
    data_dir: &Path,
    sdk_app_id: u64,
    secret: &str,
    max_connections: usize,
) -> Result<Command> {
    let exe = std::env::current_exe().context("cannot find the beckon executable")?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--rate-limit", "1000000"])
        .arg("--max-connections")
        .arg(max_connections.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--sdkappid")
        .arg(sdk_app_id.to_string())
        // In the environment rather than argv, so it does not show in `ps`.
        .env("BECKON_SECRET_KEY", secret)
        .env("BECKON_LOG", "warn");
    Ok(command)
}

/// The hidden `beckon bench relay` command.
pub(crate) fn relay_command(mode: &str, data_dir: &Path) -> Result<Command> {
    let exe = std::env::current_exe().context("cannot find the beckon executable")?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "relay", "--mode", mode, "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir);
    Ok(command)
}

/// The address in a line like `beckon is serving on http://127.0.0.1:4242  (...)`.
fn serving_address(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once(" is serving on http://")?;
    rest.split_whitespace().next()?.parse().ok()
}

impl ChildProcess {
    /// Starts `command` and waits until it prints its address; stderr goes to `log`.
    pub(crate) async fn start(
        what: &'static str,
        mut command: Command,
        log: &Path,
    ) -> Result<Self> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start the {what}"))?;
        let pid = child.id().context("the child exited at once")?;
        let stdout = child.stdout.take().context("no stdout from the child")?;
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = serving_address(&line) {
                    return Ok(Some(addr));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let addr = match found {
            Ok(Ok(Some(addr))) => addr,
            outcome => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let why = match outcome {
                    Err(_) => format!("did not start within {START_TIMEOUT:?}"),
                    Ok(Err(error)) => format!("unreadable output: {error}"),
                    _ => "exited before serving".to_owned(),
                };
                bail!("the {what} {why}; its log:\n{}", tail(log));
            }
        };
        let serving_at = Instant::now();
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            addr,
            what,
            log: log.to_owned(),
            serving_at,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Fails if the child has exited (with its log), so a crash is reported as such.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!(
                "the {} exited ({status}); its log:\n{}",
                self.what,
                tail(&self.log)
            );
        }
        Ok(())
    }

    /// Graceful stop: SIGTERM and wait (killed after a minute). Returns how long it took.
    pub(crate) async fn stop(mut self) -> Result<Duration> {
        let started = Instant::now();
        if self.child.try_wait().ok().flatten().is_none() {
            system::terminate(self.pid)?;
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(started.elapsed()),
            Ok(Ok(status)) => bail!(
                "the {} stopped with {status}; its log:\n{}",
                self.what,
                tail(&self.log)
            ),
            Ok(Err(error)) => Err(error).context("cannot wait for the child"),
            Err(_) => {
                let _ = self.child.kill().await;
                bail!(
                    "the {} did not stop within {STOP_TIMEOUT:?}; killed it",
                    self.what
                )
            }
        }
    }
}

/// The last lines of a log file, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    if lines.is_empty() {
        "(empty)".to_owned()
    } else {
        lines[start..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::serving_address;

    #[test]
    fn reads_the_serving_line() {
        assert_eq!(
            serving_address(
                "beckon is serving on http://127.0.0.1:4242  (WebSocket: ws://127.0.0.1:4242/ws)"
            ),
            Some("127.0.0.1:4242".parse().unwrap())
        );
        assert_eq!(
            serving_address("relay is serving on http://127.0.0.1:9"),
            Some("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(serving_address("SDKAppID 1; data in /tmp"), None);
    }
}
