//! The `calls` scenario: N caller/callee pairs doing invite → ring → accept cycles, closed
//! loop (each pair starts its next cycle when the last one finished) or open loop (`--rate`
//! actions per second in total, on a fixed schedule). With `--baseline` the same pattern also
//! runs against the bare and the SQLite relay, each in its own process.

use crate::conn::{Conn, Endpoint, Frame};
use crate::report::{self, merge_errors, Errors, Latency, LatencySummary};
use crate::target::{RelayMode, Target};
use crate::Common;
use anyhow::{bail, Context, Result};
use beckon_proto::frames::{op, ActionParams, InviteParams};
use beckon_proto::signaling::event;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// Most invitations one pair may have in flight in the open loop; beyond it scheduled
/// invites are skipped (and counted), so a server that falls behind cannot exhaust memory.
const MAX_IN_FLIGHT_PER_PAIR: usize = 4096;
/// How long in-flight cycles may take to finish after the measured window.
const DRAIN: Duration = Duration::from_secs(5);
/// Pairs connecting at once.
const CONNECT_CONCURRENCY: usize = 64;

#[derive(Debug, Args)]
pub(crate) struct CallsArgs {
    /// Caller/callee pairs (two connections each).
    #[arg(long, default_value_t = 10)]
    pairs: usize,
    /// Measured time.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Unmeasured time before it, to reach a steady state.
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
    warmup: Duration,
    /// Open loop: this many signaling actions per second in total (invite and accept count
    /// one each). Without it, closed loop: as fast as the server answers.
    #[arg(long)]
    rate: Option<u32>,
    /// Run the same pattern against a bare WebSocket relay and one that appends each message
    /// to SQLite, and report Beckon's figures as ratios to theirs.
    #[arg(long)]
    baseline: bool,
    #[command(flatten)]
    common: Common,
}

/// When each pair starts, stops, and how often it invites.
#[derive(Debug, Clone, Copy)]
struct Plan {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    /// Open loop: one invite per interval, starting at `start + phase`.
    interval: Option<Duration>,
    phase: Duration,
}

/// What one target did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CallsResult {
    target: &'static str,
    /// Invite and accept results with code 0 received in the measured window.
    actions: u64,
    actions_per_second: f64,
    /// Invite → NEW_INVITATION_RECEIVED at the callee. In the open loop, from the scheduled
    /// send time, so a backlog shows as latency.
    invite_to_received_us: LatencySummary,
    /// Accept → INVITEE_ACCEPTED at the caller.
    accept_to_accepted_us: LatencySummary,
    /// Refusals by code.
    errors: Errors,
    /// Open loop: scheduled invites not sent because a pair had too many in flight.
    skipped: u64,
    /// Cycles still unfinished when the drain time ran out.
    unfinished: u64,
    /// Server memory at the end, when known.
    server_rss_kib: Option<u64>,
    /// The server's CPU time in the measured window per action, µs, when its process is known.
    server_cpu_us_per_action: Option<f64>,
    /// The same by thread name (threads of one name summed).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    server_cpu_us_per_action_by_thread: BTreeMap<String, f64>,
    /// This tool's own CPU time in the measured window per action, µs: it shares the machine.
    tool_cpu_us_per_action: Option<f64>,
}

/// CPU time of the server's and this tool's threads, at the start and the end of the
/// measured window.
#[derive(Default)]
struct CpuSamples {
    server: Option<(BTreeMap<String, u64>, BTreeMap<String, u64>)>,
    tool: Option<(BTreeMap<String, u64>, BTreeMap<String, u64>)>,
}

impl CpuSamples {
    async fn take(server_pid: Option<u32>, from: Instant, to: Instant) -> Self {
        let sample = |pid: Option<u32>| pid.and_then(|pid| crate::system::cpu_by_thread(pid).ok());
        let tool_pid = Some(std::process::id());
        tokio::time::sleep_until(from).await;
        let (server_before, tool_before) = (sample(server_pid), sample(tool_pid));
        tokio::time::sleep_until(to).await;
        let (server_after, tool_after) = (sample(server_pid), sample(tool_pid));
        Self {
            server: server_before.zip(server_after),
            tool: tool_before.zip(tool_after),
        }
    }
}

/// µs of CPU per action between two samples, by thread name; empty without actions.
fn per_action_by_thread(
    (before, after): &(BTreeMap<String, u64>, BTreeMap<String, u64>),
    actions: u64,
) -> BTreeMap<String, f64> {
    if actions == 0 {
        return BTreeMap::new();
    }
    after
        .iter()
        .map(|(name, ns)| {
            let spent = ns.saturating_sub(before.get(name).copied().unwrap_or(0));
            (
                name.clone(),
                round_tenth(spent as f64 / 1000.0 / actions as f64),
            )
        })
        .filter(|(_, us)| *us > 0.0)
        .collect()
}

fn round_tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[derive(Debug, Serialize)]
struct Ratios {
    /// Beckon's actions/s divided by the relay's.
    throughput: f64,
    /// Beckon's p50 and p99 invite → received latency divided by the relay's.
    invite_p50: f64,
    invite_p99: f64,
    accept_p50: f64,
    accept_p99: f64,
    /// Beckon's server CPU per action divided by the relay's, when both are known.
    server_cpu: Option<f64>,
}

#[derive(Debug, Serialize)]
struct CallsReport {
    scenario: &'static str,
    mode: &'static str,
    pairs: usize,
    duration_s: f64,
    warmup_s: f64,
    /// Open loop: the target rate in actions per second.
    rate: Option<u32>,
    results: Vec<CallsResult>,
    /// Beckon relative to each relay, when `--baseline` ran.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    ratios: HashMap<&'static str, Ratios>,
}

pub(crate) async fn run(args: CallsArgs) -> Result<()> {
    if args.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    if args.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    if args.rate == Some(0) {
        bail!("--rate must be more than 0 (leave it out for the closed loop)");
    }
    crate::system::raise_file_limit(4 * args.pairs as u64 + 256)?;
    let mut results = vec![measure(&args, Target::beckon(&args.common, 100_000).await?).await?];
    let mut ratios = HashMap::new();
    if args.baseline {
        for mode in [RelayMode::Bare, RelayMode::Sqlite] {
            let relay = measure(&args, Target::relay(&args.common, mode).await?).await?;
            ratios.insert(relay.target, ratios_of(&results[0], &relay));
            results.push(relay);
        }
    }
    let report = CallsReport {
        scenario: "calls",
        mode: if args.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        pairs: args.pairs,
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        rate: args.rate,
        results,
        ratios,
    };
    report::emit(args.common.json, &report, &render(&report))?;
    if report.results.iter().any(|r| r.actions == 0) {
        bail!("a target completed no action");
    }
    let refused: u64 = report
        .results
        .iter()
        .map(|r| r.errors.values().sum::<u64>())
        .sum();
    if refused > 0 {
        bail!("{refused} actions were refused (see the summary)");
    }
    // In the closed loop every cycle must finish; in the open loop a backlog is a result.
    let unfinished: u64 = report.results.iter().map(|r| r.unfinished).sum();
    if report.rate.is_none() && unfinished > 0 {
        bail!("{unfinished} cycles never finished (see the summary)");
    }
    Ok(())
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        (a / b * 1000.0).round() / 1000.0
    }
}

fn ratios_of(beckon: &CallsResult, relay: &CallsResult) -> Ratios {
    let (bi, ri) = (&beckon.invite_to_received_us, &relay.invite_to_received_us);
    let (ba, ra) = (&beckon.accept_to_accepted_us, &relay.accept_to_accepted_us);
    Ratios {
        throughput: ratio(beckon.actions_per_second, relay.actions_per_second),
        invite_p50: ratio(bi.p50_us as f64, ri.p50_us as f64),
        invite_p99: ratio(bi.p99_us as f64, ri.p99_us as f64),
        accept_p50: ratio(ba.p50_us as f64, ra.p50_us as f64),
        accept_p99: ratio(ba.p99_us as f64, ra.p99_us as f64),
        server_cpu: beckon
            .server_cpu_us_per_action
            .zip(relay.server_cpu_us_per_action)
            .map(|(beckon, relay)| ratio(beckon, relay)),
    }
}

fn render(report: &CallsReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "calls: {} pairs, {} loop{}, {:.1} s measured after {:.1} s warm-up",
        report.pairs,
        report.mode,
        report
            .rate
            .map(|r| format!(" at {r} actions/s"))
            .unwrap_or_default(),
        report.duration_s,
        report.warmup_s
    );
    let width = 30;
    let mut row = |label: &str, cell: &dyn Fn(&CallsResult) -> String| {
        let _ = write!(text, "  {label:<26}");
        for result in &report.results {
            let _ = write!(text, "{:>width$}", cell(result));
        }
        text.push('\n');
    };
    row("", &|r| r.target.to_owned());
    row("actions/s", &|r| format!("{:.0}", r.actions_per_second));
    row("actions", &|r| r.actions.to_string());
    for (name, pick) in [
        (
            "invite → received",
            (|r: &CallsResult| r.invite_to_received_us) as fn(&CallsResult) -> LatencySummary,
        ),
        ("accept → accepted", |r: &CallsResult| {
            r.accept_to_accepted_us
        }),
    ] {
        row(&format!("{name} p50"), &|r| report::us(pick(r).p50_us));
        row("  p99", &|r| report::us(pick(r).p99_us));
        row("  p99.9", &|r| report::us(pick(r).p999_us));
        row("  max", &|r| report::us(pick(r).max_us));
    }
    row("refused", &|r| report::errors_text(&r.errors));
    if report
        .results
        .iter()
        .any(|r| r.skipped > 0 || r.unfinished > 0)
    {
        row("skipped (backlog)", &|r| r.skipped.to_string());
        row("unfinished", &|r| r.unfinished.to_string());
    }
    row("server RSS at end", &|r| {
        r.server_rss_kib.map_or("n/a".to_owned(), report::kib)
    });
    let micros = |us: Option<f64>| us.map_or("n/a".to_owned(), |us| format!("{us:.1} µs"));
    row("server CPU per action", &|r| {
        micros(r.server_cpu_us_per_action)
    });
    row("tool CPU per action", &|r| micros(r.tool_cpu_us_per_action));
    for result in &report.results {
        if result.server_cpu_us_per_action_by_thread.len() > 1 {
            let threads: Vec<String> = result
                .server_cpu_us_per_action_by_thread
                .iter()
                .map(|(name, us)| format!("{name} {us:.1}"))
                .collect();
            let _ = writeln!(
                text,
                "  {} server CPU per action by thread (µs): {}",
                result.target,
                threads.join(", ")
            );
        }
    }
    for result in report.results.iter().skip(1) {
        if let Some(ratio) = report.ratios.get(result.target) {
            let cpu = ratio.server_cpu.map_or(String::new(), |cpu| {
                format!("; server CPU per action ×{cpu:.2}")
            });
            let _ = writeln!(
                text,
                "  beckon / {}: throughput ×{:.3}; latency p50 ×{:.2} (invite) ×{:.2} (accept), p99 ×{:.2} / ×{:.2}{cpu}",
                result.target,
                ratio.throughput,
                ratio.invite_p50,
                ratio.accept_p50,
                ratio.invite_p99,
                ratio.accept_p99
            );
        }
    }
    if let Some(rate) = report.rate {
        text.push_str("  (open loop: invite latency counts from the scheduled send time)\n");
        for result in &report.results {
            if result.actions_per_second < 0.95 * f64::from(rate) {
                let _ = writeln!(
                    text,
                    "  {} did not keep up with {rate} actions/s: it answered {:.0}/s and fell behind",
                    result.target, result.actions_per_second
                );
            }
        }
    }
    text
}

/// Runs the pattern against one target and stops it.
async fn measure(args: &CallsArgs, mut target: Target) -> Result<CallsResult> {
    let endpoint = Arc::new(target.endpoint.clone());
    let pairs = connect_pairs(&endpoint, args.pairs, args.common.quiet, target.label).await?;
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(2.0 * args.pairs as f64 / f64::from(rate)));
    let done = Arc::new(AtomicU64::new(0));
    let bar = report::progress_timed(args.common.quiet, args.warmup + args.duration, target.label);
    let cpu = tokio::spawn(CpuSamples::take(target.pid(), measure_from, end));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (caller, callee)) in pairs.into_iter().enumerate() {
        let plan = Plan {
            start,
            measure_from,
            end,
            interval,
            phase: interval.map_or(Duration::ZERO, |i| {
                i.mul_f64(index as f64 / args.pairs as f64)
            }),
        };
        let callee_id = format!("callee-{index}");
        tasks.spawn(pair(caller, callee, callee_id, plan, Arc::clone(&done)));
    }
    let ticker = {
        let bar = bar.clone();
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let now = Instant::now();
                let count = done.load(Ordering::Relaxed);
                let rate = (count - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                last = (now, count);
                bar.set_position(now.saturating_duration_since(start).as_millis() as u64);
                bar.set_message(format!("{rate:.0} actions/s"));
            }
        })
    };
    let mut total = PairStats::default();
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.context("a client task failed") {
            Ok(Ok(stats)) => total.add(&stats),
            Ok(Err(error)) | Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    ticker.abort();
    bar.finish_and_clear();
    // Done by now: the pairs drain past the end of the window.
    let cpu = cpu.await.unwrap_or_default();
    let server_cpu = cpu
        .server
        .map(|samples| per_action_by_thread(&samples, total.actions))
        .unwrap_or_default();
    let tool_cpu = cpu
        .tool
        .map(|samples| per_action_by_thread(&samples, total.actions))
        .unwrap_or_default();
    let memory = target.memory().ok().flatten();
    let label = target.label;
    target.check_alive()?;
    target.finish().await?;
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(CallsResult {
        target: label,
        actions: total.actions,
        actions_per_second: (total.actions as f64 / args.duration.as_secs_f64() * 10.0).round()
            / 10.0,
        invite_to_received_us: total.invite.summary(),
        accept_to_accepted_us: total.accept.summary(),
        errors: total.errors,
        skipped: total.skipped,
        unfinished: total.unfinished,
        server_rss_kib: memory.map(|m| m.rss_kib),
        server_cpu_us_per_action: (!server_cpu.is_empty())
            .then(|| round_tenth(server_cpu.values().sum())),
        server_cpu_us_per_action_by_thread: server_cpu,
        tool_cpu_us_per_action: (!tool_cpu.is_empty())
            .then(|| round_tenth(tool_cpu.values().sum())),
    })
}

/// Logs in every pair: callee first, so the caller's invite finds an account.
async fn connect_pairs(
    endpoint: &Arc<Endpoint>,
    pairs: usize,
    quiet: bool,
    label: &str,
) -> Result<Vec<(Conn, Conn)>> {
    let bar = report::progress(quiet, pairs as u64, &format!("{label} login"));
    let mut connected = Vec::with_capacity(pairs);
    for chunk_start in (0..pairs).step_by(CONNECT_CONCURRENCY) {
        let mut batch = tokio::task::JoinSet::new();
        for index in chunk_start..(chunk_start + CONNECT_CONCURRENCY).min(pairs) {
            let endpoint = Arc::clone(endpoint);
            batch.spawn(async move {
                let callee_id = format!("callee-{index}");
                let (callee, _) = endpoint
                    .login(2 * index, &callee_id, &format!("{callee_id}-bench"), None)
                    .await?;
                let caller_id = format!("caller-{index}");
                let (caller, _) = endpoint
                    .login(
                        2 * index + 1,
                        &caller_id,
                        &format!("{caller_id}-bench"),
                        None,
                    )
                    .await?;
                Ok::<_, anyhow::Error>((index, caller, callee))
            });
        }
        while let Some(joined) = batch.join_next().await {
            let (index, caller, callee) = joined.context("a login task failed")??;
            connected.push((index, caller, callee));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    connected.sort_by_key(|(index, _, _)| *index);
    Ok(connected
        .into_iter()
        .map(|(_, caller, callee)| (caller, callee))
        .collect())
}

#[derive(Default)]
struct PairStats {
    invite: Latency,
    accept: Latency,
    actions: u64,
    errors: Errors,
    skipped: u64,
    unfinished: u64,
}

impl PairStats {
    fn add(&mut self, other: &PairStats) {
        self.invite.add(&other.invite);
        self.accept.add(&other.accept);
        self.actions += other.actions;
        merge_errors(&mut self.errors, &other.errors);
        self.skipped += other.skipped;
        self.unfinished += other.unfinished;
    }
}

/// Just the field the calls pattern needs from invite / accept event data.
#[derive(Deserialize)]
struct InviteRef {
    #[serde(rename = "inviteID")]
    invite_id: String,
    #[serde(default)]
    data: String,
}

/// One pair's cycles. Each invite carries its cycle number in `data`, so the callee's event
/// can be matched to the send time without a client-proposed inviteID (which would cost the
/// server a store lookup per invite).
struct PairRun {
    caller: Conn,
    callee: Conn,
    callee_id: String,
    plan: Plan,
    stats: PairStats,
    /// cycle → when its invite was sent (open loop: scheduled).
    invites: HashMap<u64, Instant>,
    /// inviteID → when its accept was sent.
    accepts: HashMap<String, Instant>,
    /// Results and events still expected.
    outstanding: u64,
    next_cycle: u64,
    done: Arc<AtomicU64>,
}

async fn pair(
    caller: Conn,
    callee: Conn,
    callee_id: String,
    plan: Plan,
    done: Arc<AtomicU64>,
) -> Result<PairStats> {
    let mut run = PairRun {
        caller,
        callee,
        callee_id,
        plan,
        stats: PairStats::default(),
        invites: HashMap::new(),
        accepts: HashMap::new(),
        outstanding: 0,
        next_cycle: 0,
        done,
    };
    run.go().await?;
    run.stats.unfinished = (run.invites.len() + run.accepts.len()) as u64;
    run.caller.close().await;
    run.callee.close().await;
    Ok(run.stats)
}

impl PairRun {
    async fn go(&mut self) -> Result<()> {
        tokio::time::sleep_until(self.plan.start).await;
        let mut ticker = self.plan.interval.map(|interval| {
            let mut ticker = tokio::time::interval_at(self.plan.start + self.plan.phase, interval);
            // Catch up after a stall, as an open-loop client must.
            ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
            ticker
        });
        if ticker.is_none() {
            self.invite(Instant::now()).await?;
        }
        let drain_until = self.plan.end + DRAIN;
        loop {
            let now = Instant::now();
            if now >= self.plan.end && self.outstanding == 0 {
                return Ok(());
            }
            if now >= drain_until {
                return Ok(());
            }
            let wake = if now < self.plan.end {
                self.plan.end
            } else {
                drain_until
            };
            let open = ticker.is_some() && now < self.plan.end;
            tokio::select! {
                scheduled = async {
                    match ticker.as_mut() {
                        Some(ticker) => ticker.tick().await,
                        None => std::future::pending().await,
                    }
                }, if open => {
                    if self.invites.len() >= MAX_IN_FLIGHT_PER_PAIR {
                        self.stats.skipped += 1;
                    } else {
                        self.invite(scheduled).await?;
                    }
                }
                frame = self.caller.recv() => {
                    let frame = frame.context("caller connection")?;
                    self.on_caller(&frame)?;
                }
                frame = self.callee.recv() => {
                    let frame = frame.context("callee connection")?;
                    self.on_callee(&frame).await?;
                }
                () = tokio::time::sleep_until(wake) => {}
            }
            if ticker.is_none() && self.outstanding == 0 && Instant::now() < self.plan.end {
                self.invite(Instant::now()).await?;
            }
        }
    }

    fn measured(&self, sent: Instant) -> bool {
        sent >= self.plan.measure_from && sent < self.plan.end
    }

    fn completed(&mut self) {
        let now = Instant::now();
        if now >= self.plan.measure_from && now < self.plan.end {
            self.stats.actions += 1;
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    async fn invite(&mut self, sent: Instant) -> Result<()> {
        let cycle = self.next_cycle;
        self.next_cycle += 1;
        let params = InviteParams {
            user_id: self.callee_id.clone(),
            data: Some(format!("c{cycle}")),
            ..InviteParams::default()
        };
        self.caller.send_with_id(cycle, op::INVITE, &params).await?;
        self.invites.insert(cycle, sent);
        self.outstanding += 2;
        Ok(())
    }

    fn on_caller(&mut self, frame: &Frame) -> Result<()> {
        if frame.is_result() {
            self.outstanding = self.outstanding.saturating_sub(1);
            if frame.code == 0 {
                self.completed();
            } else {
                *self.stats.errors.entry(frame.code).or_default() += 1;
                // No event will follow a refused invite.
                self.outstanding = self.outstanding.saturating_sub(1);
                if let Some(cycle) = frame.id {
                    self.invites.remove(&cycle);
                }
            }
        } else if frame.is_event(event::INVITEE_ACCEPTED) {
            let accepted: InviteRef = frame.data()?;
            if let Some(sent) = self.accepts.remove(&accepted.invite_id) {
                self.outstanding = self.outstanding.saturating_sub(1);
                if self.measured(sent) {
                    self.stats.accept.record(sent.elapsed());
                }
            }
        }
        Ok(())
    }

    async fn on_callee(&mut self, frame: &Frame) -> Result<()> {
        if frame.is_result() {
            self.outstanding = self.outstanding.saturating_sub(1);
            if frame.code == 0 {
                self.completed();
            } else {
                *self.stats.errors.entry(frame.code).or_default() += 1;
                self.outstanding = self.outstanding.saturating_sub(1);
            }
        } else if frame.is_event(event::NEW_INVITATION_RECEIVED) {
            let received = Instant::now();
            let invitation: InviteRef = frame.data()?;
            let Some(cycle) = invitation
                .data
                .strip_prefix('c')
                .and_then(|n| n.parse::<u64>().ok())
            else {
                return Ok(());
            };
            let Some(sent) = self.invites.remove(&cycle) else {
                return Ok(());
            };
            self.outstanding = self.outstanding.saturating_sub(1);
            if self.measured(sent) {
                self.stats.invite.record(received.duration_since(sent));
            }
            let params = ActionParams {
                invite_id: invitation.invite_id.clone(),
                data: None,
            };
            self.callee.send_with_id(cycle, op::ACCEPT, &params).await?;
            self.accepts.insert(invitation.invite_id, Instant::now());
            self.outstanding += 2;
        }
        Ok(())
    }
}
