//! The `idle` scenario: M authenticated connections that then do nothing; reports the
//! server's resident memory per connection (from `/proc/<pid>/status`) and how fast the
//! connections were set up.

use crate::conn::Conn;
use crate::report::{self, Latency, LatencySummary};
use crate::system::Memory;
use crate::target::Target;
use crate::Common;
use anyhow::{bail, Context, Result};
use beckon_proto::frames::op;
use clap::Args;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub(crate) struct IdleArgs {
    /// Connections to open, each logged in as its own user.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Logins in flight at once while connecting.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// How long the connections stay idle before memory is read.
    #[arg(long, default_value = "2s", value_parser = crate::parse_duration)]
    hold: Duration,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Serialize)]
struct IdleReport {
    scenario: &'static str,
    connections: usize,
    /// Time to open and log in every connection.
    setup_s: f64,
    logins_per_second: f64,
    /// Connect + handshake + login, per connection.
    login_us: LatencySummary,
    /// Server memory before any client connected, and after holding them all.
    server_before: Option<Memory>,
    server_after: Option<Memory>,
    /// (after − before) / connections.
    server_bytes_per_connection: Option<f64>,
    /// This load generator's own memory with every connection open.
    client_rss_kib: Option<u64>,
    /// Connections sampled with a ping after the hold that answered.
    alive_sampled: usize,
    alive_answered: usize,
}

pub(crate) async fn run(args: IdleArgs) -> Result<()> {
    if args.connections == 0 || args.concurrency == 0 {
        bail!("--connections and --concurrency must be at least 1");
    }
    // Both this process and the server hold one descriptor per connection.
    crate::system::raise_file_limit(args.connections as u64 + 256)?;
    let mut target = Target::beckon(&args.common, args.connections.max(100_000) + 256).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server_before = target.memory()?;
    let endpoint = Arc::new(target.endpoint.clone());

    let bar = report::progress(args.common.quiet, args.connections as u64, "connect");
    let started = Instant::now();
    let mut conns: Vec<Conn> = Vec::with_capacity(args.connections);
    let mut login = Latency::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    let spawn = |tasks: &mut tokio::task::JoinSet<Result<(Conn, Duration)>>, index: usize| {
        let endpoint = Arc::clone(&endpoint);
        tasks.spawn(async move {
            let begun = Instant::now();
            let user = format!("idle-{index}");
            let (conn, _) = endpoint
                .login(index, &user, &format!("{user}-bench"), None)
                .await
                .with_context(|| format!("connection {index}"))?;
            Ok((conn, begun.elapsed()))
        });
    };
    while next < args.connections && tasks.len() < args.concurrency {
        spawn(&mut tasks, next);
        next += 1;
    }
    while let Some(joined) = tasks.join_next().await {
        let (conn, took) = joined.context("a login task failed")??;
        conns.push(conn);
        login.record(took);
        bar.inc(1);
        if next < args.connections {
            spawn(&mut tasks, next);
            next += 1;
        }
    }
    let setup = started.elapsed();
    bar.finish_and_clear();

    tokio::time::sleep(args.hold).await;
    target.check_alive()?;
    let server_after = target.memory()?;
    let client_rss_kib = crate::system::memory(std::process::id())
        .ok()
        .map(|m| m.rss_kib);
    // A few connections, spread over the set, must still answer.
    let step = (conns.len() / 10).max(1);
    let mut sampled = 0;
    let mut answered = 0;
    for conn in conns.iter_mut().step_by(step) {
        sampled += 1;
        let mut events = Vec::new();
        let pong = tokio::time::timeout(
            Duration::from_secs(10),
            conn.call(op::PING, &serde_json::json!({}), &mut events),
        )
        .await;
        if matches!(pong, Ok(Ok(frame)) if frame.code == 0) {
            answered += 1;
        }
    }
    drop(conns);
    target.finish().await?;

    let per_connection = match (server_before, server_after) {
        (Some(before), Some(after)) => Some(
            ((after.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / args.connections as f64)
                .round(),
        ),
        _ => None,
    };
    let report = IdleReport {
        scenario: "idle",
        connections: args.connections,
        setup_s: (setup.as_secs_f64() * 1000.0).round() / 1000.0,
        logins_per_second: (args.connections as f64 / setup.as_secs_f64()).round(),
        login_us: login.summary(),
        server_before,
        server_after,
        server_bytes_per_connection: per_connection,
        client_rss_kib,
        alive_sampled: sampled,
        alive_answered: answered,
    };
    report::emit(args.common.json, &report, &render(&report))?;
    if answered < sampled {
        bail!(
            "{} of {sampled} sampled idle connections did not answer a ping",
            sampled - answered
        );
    }
    Ok(())
}

fn render(report: &IdleReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "idle: {} authenticated connections",
        report.connections
    );
    let _ = writeln!(
        text,
        "  setup                {:.2} s ({:.0} logins/s); connect+login {}",
        report.setup_s, report.logins_per_second, report.login_us
    );
    match (report.server_before, report.server_after) {
        (Some(before), Some(after)) => {
            let _ = writeln!(
                text,
                "  server RSS           {} before, {} with the connections (peak {})",
                report::kib(before.rss_kib),
                report::kib(after.rss_kib),
                report::kib(after.peak_kib)
            );
            let _ = writeln!(
                text,
                "  per connection       {}",
                report::per_item(
                    after.rss_kib as i64 - before.rss_kib as i64,
                    report.connections as u64
                )
            );
        }
        _ => {
            let _ = writeln!(
                text,
                "  server RSS           n/a (give --server-pid with --server)"
            );
        }
    }
    if let Some(client) = report.client_rss_kib {
        let _ = writeln!(text, "  load generator RSS   {}", report::kib(client));
    }
    let _ = writeln!(
        text,
        "  still answering      {}/{} sampled",
        report.alive_answered, report.alive_sampled
    );
    text
}
