//! `beckon bench`: load scenarios against a Beckon server, and the baseline relays they are
//! compared with.
//!
//! By default each scenario starts the server itself as a child process of the current
//! executable (`beckon serve` on a fresh temporary data directory), so the load generator and
//! the server never share a runtime, and stops it at the end. `--server` targets a running
//! server instead. Results go to stdout (readable, or `--json`); progress to stderr.

// caller/callee and inviter/invitee are the domain's own pairs of words.
#![allow(clippy::similar_names)]

mod calls;
mod conn;
mod group;
mod idle;
mod process;
mod relay;
mod report;
mod restart;
mod system;
mod target;
mod timers;

use anyhow::Result;
use clap::{Args, Subcommand};
use std::time::Duration;

/// `beckon bench` and its scenarios.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Caller/callee pairs doing invite → ring → accept cycles; reports actions per second
    /// and the latency of invite → NEW_INVITATION_RECEIVED and accept → INVITEE_ACCEPTED.
    Calls(calls::CallsArgs),
    /// Callers ringing groups of K members; reports fan-out latency to the last invitee.
    Group(group::GroupArgs),
    /// M authenticated idle connections; reports the server's resident memory per connection.
    Idle(idle::IdleArgs),
    /// K pending invitations with timeouts spread over a window; reports memory and how late
    /// each timeout fires.
    Timers(timers::TimersArgs),
    /// Time from starting the server on a store holding K pending invitations to serving, and
    /// a check that every deadline is still right.
    Restart(restart::RestartArgs),
    /// The baseline relay the `calls --baseline` run compares with (started by the tool).
    #[command(hide = true)]
    Relay(relay::RelayArgs),
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// Measure a running server (ws://HOST:PORT[/ws]) instead of starting one.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// SDKAppID of the server given with --server.
    #[arg(long, env = "BECKON_SDKAPPID")]
    sdkappid: Option<u64>,
    /// Secret key of the server given with --server (used to mint UserSigs).
    #[arg(long, env = "BECKON_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Process id of the server given with --server, to report its memory.
    #[arg(long, requires = "server")]
    server_pid: Option<u32>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Number of loopback source addresses (127.0.0.1, 127.0.0.2, ...) the clients connect
    /// from; each gives about 28k ports.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=250))]
    sources: u8,
}

/// A duration flag: `5s`, `500ms`, `2m`, or a number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 5s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ms, s or m)"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range (0 to 24 h)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Runs `beckon bench ...`. Ctrl-C or SIGTERM stops the scenario; the child processes it
/// started are killed when their handles drop, so nothing is left running.
pub async fn run(args: BenchArgs) -> Result<()> {
    if let Scenario::Relay(relay_args) = args.scenario {
        return relay::serve(relay_args).await;
    }
    system::raise_file_limit(0)?;
    let scenario = async move {
        match args.scenario {
            Scenario::Calls(args) => calls::run(args).await,
            Scenario::Group(args) => group::run(args).await,
            Scenario::Idle(args) => idle::run(args).await,
            Scenario::Timers(args) => timers::run(args).await,
            Scenario::Restart(args) => restart::run(args).await,
            Scenario::Relay(_) => Ok(()),
        }
    };
    tokio::select! {
        outcome = scenario => outcome,
        () = system::interrupted() => anyhow::bail!("interrupted; stopped the server and the clients"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("five").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
