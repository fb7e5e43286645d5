//! The `restart` scenario: K pending invitations with long timeouts (and a few short ones whose
//! deadline passes while the server is down), a graceful stop, a start on the same store. It
//! reports the time from spawning the server until it serves (its address line, then a first
//! login), and checks that every deadline is still right: a sample of invitees, logging in
//! fresh, is replayed exactly its long invitations with the same `expiresAt` and a consistent
//! `timeoutRemaining`, and each short invitation has its timeout message in history.

use crate::conn::{Conn, Endpoint};
use crate::report::{self, Errors};
use crate::system::Memory;
use crate::target::Target;
use crate::Common;
use anyhow::{bail, Context, Result};
use beckon_proto::frames::{
    op, ActionResult, GetMessageListParams, InviteParams, MessageListResult, NewInvitationData,
};
use beckon_proto::signaling::{event, ActionType, SignalingInfo};
use clap::Args;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long timeouts: an hour plus up to another hour, so each invitation has its own deadline.
const LONG_TIMEOUT_S: u64 = 3600;
/// Longest wait for the server to answer the first login after the restart.
const FIRST_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the short invitations' timeout messages may take to appear after the restart.
const SHORT_WAIT: Duration = Duration::from_secs(10);
/// Mismatch descriptions kept for the report.
const MAX_PROBLEMS: usize = 20;

#[derive(Debug, Args)]
pub(crate) struct RestartArgs {
    /// Pending invitations with long timeouts (K).
    #[arg(long, default_value_t = 2000)]
    invitations: usize,
    /// Inviter/invitee pairs they are spread over.
    #[arg(long, default_value_t = 20)]
    pairs: usize,
    /// Invitations whose deadline passes while the server is down.
    #[arg(long, default_value_t = 10)]
    short: usize,
    /// Their timeout, in whole seconds.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=60))]
    short_timeout: u64,
    /// Invitees whose replay is checked in full after the restart.
    #[arg(long, default_value_t = 10)]
    verify_users: usize,
    /// Invites one inviter keeps in flight while creating.
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Serialize)]
struct RestartReport {
    scenario: &'static str,
    invitations: usize,
    short: usize,
    pairs: usize,
    create_s: f64,
    /// Graceful stop (SIGTERM until exit).
    stop_s: f64,
    /// From spawning the server to its "serving" line, and to the first successful login.
    spawn_to_serving_s: f64,
    spawn_to_first_login_s: f64,
    server_before_stop: Option<Memory>,
    server_after_restart: Option<Memory>,
    /// Invitees whose replay was checked, and the invitations in it.
    verified_invitees: usize,
    verified_invitations: usize,
    /// Short invitations found timed out in history, and how many of those timed out only
    /// after the restart (the rest fired before the stop finished).
    short_timed_out: usize,
    short_timed_out_after_restart: usize,
    errors: Errors,
    /// What did not match (first few).
    problems: Vec<String>,
}

/// One pair's long invitations: inviteID → expiresAt (ms), as the invitee heard it.
struct Created {
    index: usize,
    inviter: Conn,
    invitee: Conn,
    expires: HashMap<String, u64>,
    errors: Errors,
}

pub(crate) async fn run(args: RestartArgs) -> Result<()> {
    if args.pairs == 0 || args.pipeline == 0 {
        bail!("--pairs and --pipeline must be at least 1");
    }
    if args.common.server.is_some() {
        bail!("restart stops and starts the server itself: drop --server");
    }
    crate::system::raise_file_limit(4 * args.pairs as u64 + 256)?;
    let mut target = Target::beckon(&args.common, 100_000).await?;
    let endpoint = Arc::new(target.endpoint.clone());
    let pairs = connect(&endpoint, args.pairs).await?;

    // Long invitations, all pairs at once.
    let bar = report::progress(args.common.quiet, args.invitations as u64, "create");
    let created_count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (inviter, invitee)) in pairs.into_iter().enumerate() {
        let count =
            args.invitations / args.pairs + usize::from(index < args.invitations % args.pairs);
        tasks.spawn(create_long(
            index,
            inviter,
            invitee,
            count,
            args.pipeline,
            Arc::clone(&created_count),
        ));
    }
    let mut created: Vec<Created> = Vec::with_capacity(args.pairs);
    let mut errors = Errors::new();
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(joined) => {
                    let pair = joined.context("a client task failed")??;
                    report::merge_errors(&mut errors, &pair.errors);
                    created.push(pair);
                }
                None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                bar.set_position(created_count.load(Ordering::Relaxed));
            }
        }
    }
    bar.finish_and_clear();
    let create = started.elapsed();
    created.sort_by_key(|pair| pair.index);
    if !errors.is_empty() {
        bail!(
            "invites were refused while creating: {}",
            report::errors_text(&errors)
        );
    }

    // Short invitations last, on the invitees that are verified, right before the stop.
    let verify = args.verify_users.clamp(1, args.pairs);
    let mut short: Vec<(usize, String, u64)> = Vec::with_capacity(args.short);
    for number in 0..args.short {
        let index = number % verify;
        let pair = &mut created[index];
        let params = InviteParams {
            user_id: invitee_name(index),
            timeout: Some(args.short_timeout),
            data: Some(format!("short-{number}")),
            ..InviteParams::default()
        };
        let mut events = Vec::new();
        let result = pair.inviter.call(op::INVITE, &params, &mut events).await?;
        if result.code != 0 {
            bail!("a short invite was refused ({})", result.refusal());
        }
        let invite_id = result.data::<ActionResult>()?.invite_id;
        let expires_at = wait_for_invitation(&mut pair.invitee, &invite_id).await?;
        short.push((index, invite_id, expires_at));
    }
    let server_before_stop = target.memory()?;
    let mut expected = Vec::with_capacity(created.len());
    for pair in created {
        // Closing politely lets the server's graceful stop finish at once.
        pair.inviter.close().await;
        pair.invitee.close().await;
        expected.push(pair.expires);
    }
    let stop = target.stop().await?;
    let stopped_wall_ms = crate::system::wall_us() / 1000;

    // Let every short deadline pass while the server is down.
    let last_short = short.iter().map(|(_, _, at)| *at).max().unwrap_or(0);
    let now_ms = crate::system::wall_us() / 1000;
    if last_short + 500 > now_ms {
        tokio::time::sleep(Duration::from_millis(last_short + 500 - now_ms)).await;
    }

    let (spawned, serving) = target.start_again().await?;
    let endpoint = target.endpoint.clone();
    let first_login = first_login(&endpoint).await?;
    let first_login_at = Instant::now();
    let server_after_restart = target.memory()?;

    let mut problems = Vec::new();
    let mut verified_invitations = 0;
    let mut first = Some(first_login);
    for (index, expires) in expected.iter().enumerate().take(verify) {
        let conn = match first.take() {
            Some(conn) => conn,
            None => {
                endpoint
                    .login(
                        index,
                        &invitee_name(index),
                        &format!("verify-{index}"),
                        None,
                    )
                    .await?
                    .0
            }
        };
        verified_invitations += verify_replay(conn, index, expires, &mut problems).await?;
    }
    let (short_timed_out, short_after) =
        verify_short(&endpoint, &short, stopped_wall_ms, &mut problems).await?;
    target.check_alive()?;
    target.finish().await?;

    let report = RestartReport {
        scenario: "restart",
        invitations: args.invitations,
        short: args.short,
        pairs: args.pairs,
        create_s: round3(create.as_secs_f64()),
        stop_s: round3(stop.as_secs_f64()),
        spawn_to_serving_s: round3(serving.duration_since(spawned).as_secs_f64()),
        spawn_to_first_login_s: round3(first_login_at.duration_since(spawned).as_secs_f64()),
        server_before_stop,
        server_after_restart,
        verified_invitees: verify,
        verified_invitations,
        short_timed_out,
        short_timed_out_after_restart: short_after,
        errors,
        problems: problems.iter().take(MAX_PROBLEMS).cloned().collect(),
    };
    report::emit(args.common.json, &report, &render(&report))?;
    if !problems.is_empty() {
        bail!(
            "{} deadline checks failed after the restart",
            problems.len()
        );
    }
    Ok(())
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn render(report: &RestartReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "restart: {} pending invitations (+{} short) over {} pairs",
        report.invitations, report.short, report.pairs
    );
    let _ = writeln!(text, "  created in           {:.2} s", report.create_s);
    let _ = writeln!(text, "  graceful stop        {:.2} s", report.stop_s);
    let _ = writeln!(
        text,
        "  spawn → serving      {:.3} s",
        report.spawn_to_serving_s
    );
    let _ = writeln!(
        text,
        "  spawn → first login  {:.3} s",
        report.spawn_to_first_login_s
    );
    if let (Some(before), Some(after)) = (report.server_before_stop, report.server_after_restart) {
        let _ = writeln!(
            text,
            "  server RSS           {} before the stop, {} after the restart",
            report::kib(before.rss_kib),
            report::kib(after.rss_kib)
        );
    }
    let _ = writeln!(
        text,
        "  replay checked       {} invitations of {} invitees: {}",
        report.verified_invitations,
        report.verified_invitees,
        if report.problems.is_empty() {
            "all deadlines right"
        } else {
            "MISMATCHES"
        }
    );
    let _ = writeln!(
        text,
        "  short ones timed out {}/{} ({} at start-up, the rest before the stop)",
        report.short_timed_out, report.short, report.short_timed_out_after_restart
    );
    for problem in &report.problems {
        let _ = writeln!(text, "  ! {problem}");
    }
    text
}

fn invitee_name(index: usize) -> String {
    format!("rs-b-{index}")
}

async fn connect(endpoint: &Arc<Endpoint>, pairs: usize) -> Result<Vec<(Conn, Conn)>> {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..pairs {
        let endpoint = Arc::clone(endpoint);
        tasks.spawn(async move {
            let (invitee, _) = endpoint
                .login(2 * index, &invitee_name(index), "bench", None)
                .await?;
            let (inviter, _) = endpoint
                .login(2 * index + 1, &format!("rs-a-{index}"), "bench", None)
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

/// Creates `count` long invitations from one inviter, pipelined, and waits until the invitee
/// has heard of each.
async fn create_long(
    index: usize,
    mut inviter: Conn,
    mut invitee: Conn,
    count: usize,
    pipeline: usize,
    progress: Arc<AtomicU64>,
) -> Result<Created> {
    let mut sent = 0;
    let mut answered = 0;
    let mut accepted = 0;
    let mut expires = HashMap::with_capacity(count);
    let mut errors = Errors::new();
    while answered < count || expires.len() < accepted {
        while sent < count && sent - answered < pipeline {
            let params = InviteParams {
                user_id: invitee_name(index),
                timeout: Some(LONG_TIMEOUT_S + (sent as u64 * 7) % LONG_TIMEOUT_S),
                data: Some(format!("long-{sent}")),
                ..InviteParams::default()
            };
            inviter.send(op::INVITE, &params).await?;
            sent += 1;
        }
        tokio::select! {
            frame = inviter.recv() => {
                let frame = frame.context("inviter connection")?;
                if frame.is_result() {
                    answered += 1;
                    if frame.code == 0 {
                        accepted += 1;
                        progress.fetch_add(1, Ordering::Relaxed);
                    } else {
                        *errors.entry(frame.code).or_default() += 1;
                    }
                }
            }
            frame = invitee.recv() => {
                let frame = frame.context("invitee connection")?;
                if frame.is_event(event::NEW_INVITATION_RECEIVED) {
                    let invitation: NewInvitationData = frame.data()?;
                    expires.insert(invitation.invite_id, invitation.expires_at);
                }
            }
        }
    }
    Ok(Created {
        index,
        inviter,
        invitee,
        expires,
        errors,
    })
}

/// Reads the invitee's frames until NEW_INVITATION_RECEIVED for `invite_id`; its expiresAt.
async fn wait_for_invitation(invitee: &mut Conn, invite_id: &str) -> Result<u64> {
    let wait = async {
        loop {
            let frame = invitee.recv().await?;
            if frame.is_event(event::NEW_INVITATION_RECEIVED) {
                let invitation: NewInvitationData = frame.data()?;
                if invitation.invite_id == invite_id {
                    return Ok::<_, anyhow::Error>(invitation.expires_at);
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .context("the invitee never heard of a short invitation")?
}

/// Retries a login until the restarted server answers it; the connection is the first one
/// verified.
async fn first_login(endpoint: &Endpoint) -> Result<Conn> {
    let deadline = Instant::now() + FIRST_LOGIN_TIMEOUT;
    loop {
        match endpoint.login(0, &invitee_name(0), "verify-0", None).await {
            Ok((conn, _)) => return Ok(conn),
            Err(error) if Instant::now() >= deadline => {
                return Err(error).context("the restarted server never accepted a login");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Collects the replay a fresh login produced (a ping's result marks its end: the server
/// writes the whole replay before it reads the next request) and compares it with what the
/// invitee heard before the restart. Returns how many invitations it checked.
async fn verify_replay(
    mut conn: Conn,
    index: usize,
    expected: &HashMap<String, u64>,
    problems: &mut Vec<String>,
) -> Result<usize> {
    let mut events = Vec::new();
    let pong = conn
        .call(op::PING, &serde_json::json!({}), &mut events)
        .await?;
    let now_ms = crate::system::wall_us() / 1000;
    if pong.code != 0 {
        bail!("ping refused after the restart ({})", pong.refusal());
    }
    let user = invitee_name(index);
    let mut seen = HashSet::new();
    for frame in events
        .iter()
        .filter(|f| f.is_event(event::NEW_INVITATION_RECEIVED))
    {
        let invitation: NewInvitationData = frame.data()?;
        let id = invitation.invite_id.clone();
        match expected.get(&id) {
            None => problems.push(format!(
                "{user}: replayed {id} ({}), which should not be pending",
                invitation.data
            )),
            Some(&expires_at) => {
                if invitation.expires_at != expires_at {
                    problems.push(format!(
                        "{user}: {id} expiresAt {} after the restart, {expires_at} before",
                        invitation.expires_at
                    ));
                }
                // The server rounds the remaining time up to whole seconds when it sends.
                let left_ms = expires_at.saturating_sub(now_ms);
                let told_ms = invitation.timeout_remaining * 1000;
                if told_ms + 1000 < left_ms || told_ms > left_ms + 2000 {
                    problems.push(format!(
                        "{user}: {id} timeoutRemaining {} s but {} ms are left",
                        invitation.timeout_remaining, left_ms
                    ));
                }
                if !invitation.replay {
                    problems.push(format!("{user}: {id} replayed without replay: true"));
                }
            }
        }
        seen.insert(id);
    }
    let missing = expected.keys().filter(|id| !seen.contains(*id)).count();
    if missing > 0 {
        problems.push(format!(
            "{user}: {missing} of {} pending invitations were not replayed",
            expected.len()
        ));
    }
    conn.close().await;
    Ok(expected.len())
}

/// Each short invitation must have its timeout message in the conversation's history. Returns
/// how many did, and how many of those were stamped after the stop.
async fn verify_short(
    endpoint: &Endpoint,
    short: &[(usize, String, u64)],
    stopped_ms: u64,
    problems: &mut Vec<String>,
) -> Result<(usize, usize)> {
    let mut by_pair: HashMap<usize, Vec<&str>> = HashMap::new();
    for (index, invite_id, _) in short {
        by_pair.entry(*index).or_default().push(invite_id);
    }
    let mut found = 0;
    let mut after = 0;
    for (index, ids) in by_pair {
        let (mut conn, _) = endpoint
            .login(index, &format!("rs-a-{index}"), "verify-short", None)
            .await?;
        let deadline = Instant::now() + SHORT_WAIT;
        let timed_out = loop {
            let params = GetMessageListParams {
                conversation_id: format!("C2C{}", invitee_name(index)),
                next_req_message_id: None,
                count: Some(beckon_proto::limits::MAX_MESSAGE_PAGE as u64),
            };
            let mut events = Vec::new();
            let page = conn
                .call(op::GET_MESSAGE_LIST, &params, &mut events)
                .await?;
            if page.code != 0 {
                bail!("getMessageList refused ({})", page.refusal());
            }
            let page: MessageListResult = page.data()?;
            let timed_out: HashMap<String, u64> = page
                .message_list
                .iter()
                .filter_map(|m| {
                    let info = SignalingInfo::from_payload_data(&m.payload.data)?;
                    (info.action_type == ActionType::InviteTimeout.as_u8())
                        .then_some((info.invite_id, m.time))
                })
                .collect();
            if ids.iter().all(|id| timed_out.contains_key(*id)) || Instant::now() >= deadline {
                break timed_out;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for id in ids {
            match timed_out.get(id) {
                Some(&time_s) => {
                    found += 1;
                    // Message times are whole seconds.
                    if time_s * 1000 + 999 >= stopped_ms {
                        after += 1;
                    }
                }
                None => problems.push(format!(
                    "short invitation {id} has no timeout message after the restart"
                )),
            }
        }
        conn.close().await;
    }
    Ok((found, after))
}
