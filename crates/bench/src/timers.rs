//! The `timers` scenario: K pending invitations over many inviter/invitee pairs, with
//! timeouts spread uniformly over a window. Invitees stay connected and compare the arrival of
//! each INVITATION_TIMEOUT with the `expiresAt` their NEW_INVITATION_RECEIVED carried (same
//! machine, same clock) to see how late the server's timers fire; the server's memory shows
//! what a pending invitation costs.

use crate::conn::{Conn, Endpoint, Frame};
use crate::report::{self, merge_errors, Errors, Latency, LatencySummary};
use crate::system::{wall_us, Memory};
use crate::target::Target;
use crate::Common;
use anyhow::{bail, Context, Result};
use beckon_proto::frames::{op, InvitationTimeoutData, InviteParams, NewInvitationData};
use beckon_proto::signaling::event;
use clap::Args;
use rand::Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after its last deadline a pair waits for missing timeouts.
const GRACE: Duration = Duration::from_secs(10);
/// How long after the last invitation was created the server's memory is watched for its
/// low point (while none has timed out yet): creating them at full speed leaves the store's
/// indexer up to a second or more behind, and the records it has yet to apply are held in
/// memory until it has.
const SETTLE: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct TimersArgs {
    /// Pending invitations to create (K).
    #[arg(long, default_value_t = 2000)]
    invitations: usize,
    /// Inviter/invitee pairs the invitations are spread over.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Shortest timeout, in whole seconds; make it longer than creating them all takes to
    /// have all K pending at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    min_timeout: u64,
    /// Timeouts are spread uniformly over this many whole seconds after --min-timeout.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    window: u64,
    /// Invites one inviter keeps in flight while creating.
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Serialize)]
struct TimersReport {
    scenario: &'static str,
    invitations: usize,
    pairs: usize,
    min_timeout_s: u64,
    window_s: u64,
    /// Time to create all of them, and the rate.
    create_s: f64,
    creates_per_second: f64,
    /// Timeouts that reached their invitee, and those that never did.
    fired: u64,
    missing: u64,
    /// Arrival of INVITATION_TIMEOUT minus the invitation's expiresAt.
    lateness_us: LatencySummary,
    /// Timeouts that arrived before their expiresAt (counted as 0 late).
    early: u64,
    errors: Errors,
    server_before: Option<Memory>,
    /// Right after the last invitation was created.
    server_created: Option<Memory>,
    /// The lowest resident memory in the SETTLE time after that, while every invitation was
    /// still pending (falls back to `server_created` when one timed out at once).
    server_settled: Option<Memory>,
    /// Invitations still pending at that moment.
    pending_at_peak: u64,
    server_end: Option<Memory>,
    /// (settled − before) / pending.
    server_bytes_per_pending_invitation: Option<f64>,
}

/// Counters the progress bar and the memory snapshot watch.
#[derive(Default)]
struct Progress {
    created: AtomicU64,
    fired: AtomicU64,
}

pub(crate) async fn run(args: TimersArgs) -> Result<()> {
    if args.invitations == 0 || args.pairs == 0 || args.pipeline == 0 {
        bail!("--invitations, --pairs and --pipeline must be at least 1");
    }
    crate::system::raise_file_limit(4 * args.pairs as u64 + 256)?;
    let mut target = Target::beckon(&args.common, 100_000).await?;
    let endpoint = Arc::new(target.endpoint.clone());
    let pairs = connect(&endpoint, args.pairs).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server_before = target.memory()?;

    let mut timeouts: Vec<Vec<u64>> = vec![Vec::new(); args.pairs];
    let mut rng = rand::thread_rng();
    for index in 0..args.invitations {
        timeouts[index % args.pairs].push(args.min_timeout + rng.gen_range(0..args.window));
    }
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, ((inviter, invitee), timeouts)) in pairs.into_iter().zip(timeouts).enumerate() {
        tasks.spawn(pair(
            inviter,
            invitee,
            format!("tmr-b-{index}"),
            timeouts,
            args.pipeline,
            Arc::clone(&progress),
        ));
    }

    let total = args.invitations as u64;
    let bar = report::progress(args.common.quiet, total, "create");
    let mut created_at = None;
    let mut server_created = None;
    let mut server_settled: Option<Memory> = None;
    let mut pending_at_peak = 0;
    let mut outcome = Outcome::default();
    let mut failure = None;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(joined) => match joined.context("a client task failed") {
                    Ok(Ok(pair)) => outcome.add(&pair),
                    Ok(Err(error)) | Err(error) => { failure.get_or_insert(error); }
                },
                None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let created = progress.created.load(Ordering::Relaxed);
        let fired = progress.fired.load(Ordering::Relaxed);
        if created_at.is_none() {
            bar.set_position(created);
            if created + outcome.errors.values().sum::<u64>() >= total {
                created_at = Some(started.elapsed());
                server_created = target.memory()?;
                pending_at_peak = created.saturating_sub(fired);
                bar.set_prefix("timeouts");
                bar.set_position(fired);
            }
        } else {
            bar.set_position(fired);
            let settling = created_at.is_some_and(|at| started.elapsed() < at + SETTLE);
            if settling && fired == 0 {
                if let Some(now) = target.memory()? {
                    if server_settled.is_none_or(|low| now.rss_kib < low.rss_kib) {
                        server_settled = Some(now);
                    }
                }
            }
        }
    }
    let server_settled = server_settled.or(server_created);
    bar.finish_and_clear();
    target.check_alive()?;
    let server_end = target.memory()?;
    target.finish().await?;
    if let Some(error) = failure {
        return Err(error);
    }

    let create = created_at.unwrap_or_else(|| started.elapsed());
    let per_pending = match (server_before, server_settled) {
        (Some(before), Some(settled)) if pending_at_peak > 0 => Some(
            ((settled.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / pending_at_peak as f64)
                .round(),
        ),
        _ => None,
    };
    let report = TimersReport {
        scenario: "timers",
        invitations: args.invitations,
        pairs: args.pairs,
        min_timeout_s: args.min_timeout,
        window_s: args.window,
        create_s: (create.as_secs_f64() * 1000.0).round() / 1000.0,
        creates_per_second: (outcome.created as f64 / create.as_secs_f64()).round(),
        fired: outcome.fired,
        missing: outcome.created.saturating_sub(outcome.fired),
        lateness_us: outcome.lateness.summary(),
        early: outcome.early,
        errors: outcome.errors,
        server_before,
        server_created,
        server_settled,
        pending_at_peak,
        server_end,
        server_bytes_per_pending_invitation: per_pending,
    };
    report::emit(args.common.json, &report, &render(&report))?;
    if !report.errors.is_empty() {
        bail!(
            "some invites were refused: {}",
            report::errors_text(&report.errors)
        );
    }
    if report.missing > 0 {
        bail!("{} timeouts never reached their invitee", report.missing);
    }
    Ok(())
}

fn render(report: &TimersReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "timers: {} invitations over {} pairs, timeouts {}–{} s",
        report.invitations,
        report.pairs,
        report.min_timeout_s,
        report.min_timeout_s + report.window_s - 1
    );
    let _ = writeln!(
        text,
        "  created              in {:.2} s ({:.0}/s)",
        report.create_s, report.creates_per_second
    );
    let _ = writeln!(
        text,
        "  timeouts fired       {} ({} missing, {} early)",
        report.fired, report.missing, report.early
    );
    let _ = writeln!(
        text,
        "  lateness             p50 {}  p99 {}  max {}",
        report::us(report.lateness_us.p50_us),
        report::us(report.lateness_us.p99_us),
        report::us(report.lateness_us.max_us)
    );
    if let (Some(before), Some(created), Some(settled), Some(end)) = (
        report.server_before,
        report.server_created,
        report.server_settled,
        report.server_end,
    ) {
        let _ = writeln!(
            text,
            "  server RSS           {} before, {} with {} pending ({} as the last was created), peak {}",
            report::kib(before.rss_kib),
            report::kib(settled.rss_kib),
            report.pending_at_peak,
            report::kib(created.rss_kib),
            report::kib(end.peak_kib)
        );
        let _ = writeln!(
            text,
            "  per pending invite   {}",
            report::per_item(
                settled.rss_kib as i64 - before.rss_kib as i64,
                report.pending_at_peak
            )
        );
    } else {
        let _ = writeln!(
            text,
            "  server RSS           n/a (give --server-pid with --server)"
        );
    }
    if !report.errors.is_empty() {
        let _ = writeln!(
            text,
            "  refused              {}",
            report::errors_text(&report.errors)
        );
    }
    text
}

/// Logs in the pairs, invitees first so the invites find their accounts.
async fn connect(endpoint: &Arc<Endpoint>, pairs: usize) -> Result<Vec<(Conn, Conn)>> {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..pairs {
        let endpoint = Arc::clone(endpoint);
        tasks.spawn(async move {
            let invitee_id = format!("tmr-b-{index}");
            let (invitee, _) = endpoint
                .login(2 * index, &invitee_id, "bench", None)
                .await?;
            let inviter_id = format!("tmr-a-{index}");
            let (inviter, _) = endpoint
                .login(2 * index + 1, &inviter_id, "bench", None)
                .await?;
            Ok::<_, anyhow::Error>((index, inviter, invitee))
        });
    }
    let mut all = Vec::with_capacity(pairs);
    while let Some(joined) = tasks.join_next().await {
        all.push(joined.context("a login task failed")??);
    }
    all.sort_by_key(|(index, _, _)| *index);
    Ok(all.into_iter().map(|(_, a, b)| (a, b)).collect())
}

#[derive(Default)]
struct Outcome {
    created: u64,
    fired: u64,
    early: u64,
    lateness: Latency,
    errors: Errors,
}

impl Outcome {
    fn add(&mut self, other: &Outcome) {
        self.created += other.created;
        self.fired += other.fired;
        self.early += other.early;
        self.lateness.add(&other.lateness);
        merge_errors(&mut self.errors, &other.errors);
    }
}

/// Creates one pair's invitations, then waits for each timeout at the invitee.
async fn pair(
    mut inviter: Conn,
    mut invitee: Conn,
    invitee_user: String,
    timeouts: Vec<u64>,
    pipeline: usize,
    progress: Arc<Progress>,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut next = 0;
    let mut in_flight = 0;
    let mut expires: HashMap<String, u64> = HashMap::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    let longest = timeouts.iter().copied().max().unwrap_or(0);
    loop {
        while next < timeouts.len() && in_flight < pipeline {
            let params = InviteParams {
                user_id: invitee_user.clone(),
                timeout: Some(timeouts[next]),
                data: Some(String::new()),
                ..InviteParams::default()
            };
            inviter.send(op::INVITE, &params).await?;
            next += 1;
            in_flight += 1;
        }
        if next == timeouts.len() && in_flight == 0 && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + Duration::from_secs(longest) + GRACE);
        }
        let resolved = outcome.fired + outcome.errors.values().sum::<u64>();
        if resolved >= timeouts.len() as u64 {
            break;
        }
        let wake =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            frame = inviter.recv() => {
                let frame = frame.context("inviter connection")?;
                if frame.is_result() {
                    in_flight -= 1;
                    if frame.code == 0 {
                        outcome.created += 1;
                        progress.created.fetch_add(1, Ordering::Relaxed);
                    } else {
                        *outcome.errors.entry(frame.code).or_default() += 1;
                    }
                }
            }
            frame = invitee.recv() => {
                let frame = frame.context("invitee connection")?;
                on_invitee(&frame, &mut expires, &mut outcome, &progress)?;
            }
            () = tokio::time::sleep_until(wake) => break,
        }
    }
    inviter.close().await;
    invitee.close().await;
    Ok(outcome)
}

fn on_invitee(
    frame: &Frame,
    expires: &mut HashMap<String, u64>,
    outcome: &mut Outcome,
    progress: &Progress,
) -> Result<()> {
    if frame.is_event(event::NEW_INVITATION_RECEIVED) {
        let invitation: NewInvitationData = frame.data()?;
        expires.insert(invitation.invite_id, invitation.expires_at);
    } else if frame.is_event(event::INVITATION_TIMEOUT) {
        let arrived_us = wall_us();
        let timeout: InvitationTimeoutData = frame.data()?;
        if !timeout.is_self_timeout {
            return Ok(());
        }
        let Some(expires_at_ms) = expires.remove(&timeout.invite_id) else {
            bail!(
                "INVITATION_TIMEOUT for {} without its NEW_INVITATION_RECEIVED",
                timeout.invite_id
            );
        };
        let due_us = expires_at_ms * 1000;
        if arrived_us < due_us {
            outcome.early += 1;
            outcome.lateness.record_us(0);
        } else {
            outcome.lateness.record_us(arrived_us - due_us);
        }
        outcome.fired += 1;
        progress.fired.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
