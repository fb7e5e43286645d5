//! The `group` scenario: callers ringing groups of K members (inviteInGroup, then cancel),
//! closed loop; reports the fan-out latency from the invite to the last invitee's
//! NEW_INVITATION_RECEIVED. Servers without groups refuse inviteInGroup with 9011 (unknown
//! group); the scenario then stops with a clear error instead of measuring something else.

use crate::conn::{Conn, Endpoint, Frame};
use crate::report::{self, Latency, LatencySummary};
use crate::target::Target;
use crate::Common;
use anyhow::{bail, Context, Result};
use beckon_proto::frames::{
    op, ActionParams, ActionResult, CreateGroupParams, InviteInGroupParams, MemberRef,
};
use beckon_proto::signaling::event;
use beckon_proto::ErrorCode;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Longest wait for one cycle's fan-out before the run counts as failed.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
    /// Groups, each with its own caller.
    #[arg(long, default_value_t = 2)]
    groups: usize,
    /// Members rung per invitation (K).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=200))]
    members: u64,
    /// Measured time.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    duration: Duration,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Serialize)]
struct GroupReport {
    scenario: &'static str,
    groups: usize,
    members: u64,
    duration_s: f64,
    /// inviteInGroup + cancel results with code 0.
    actions: u64,
    actions_per_second: f64,
    /// Invite → NEW_INVITATION_RECEIVED at the last of the K invitees.
    fan_out_last_us: LatencySummary,
    /// Invite → NEW_INVITATION_RECEIVED at each invitee.
    fan_out_each_us: LatencySummary,
}

pub(crate) async fn run(args: GroupArgs) -> Result<()> {
    if args.groups == 0 || args.duration.is_zero() {
        bail!("--groups and --duration must be more than 0");
    }
    let members = args.members as usize;
    crate::system::raise_file_limit(2 * (args.groups * (members + 1)) as u64 + 256)?;
    let mut target = Target::beckon(&args.common, 100_000).await?;
    let endpoint = Arc::new(target.endpoint.clone());
    let mut groups = Vec::with_capacity(args.groups);
    for group in 0..args.groups {
        groups.push(set_up(&endpoint, group, members).await?);
    }
    let end = Instant::now() + args.duration;
    let bar = report::progress(args.common.quiet, args.duration.as_millis() as u64, "group");
    let mut tasks = tokio::task::JoinSet::new();
    for group in groups {
        tasks.spawn(group.ring_until(end));
    }
    let started = Instant::now();
    let mut last = Latency::new();
    let mut each = Latency::new();
    let mut actions = 0;
    let mut failure = None;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(joined) => match joined.context("a client task failed") {
                    Ok(Ok(stats)) => {
                        last.add(&stats.last);
                        each.add(&stats.each);
                        actions += stats.actions;
                    }
                    Ok(Err(error)) | Err(error) => { failure.get_or_insert(error); }
                },
                None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                bar.set_position(started.elapsed().as_millis() as u64);
            }
        }
    }
    bar.finish_and_clear();
    target.check_alive()?;
    target.finish().await?;
    if let Some(error) = failure {
        return Err(error);
    }
    let report = GroupReport {
        scenario: "group",
        groups: args.groups,
        members: args.members,
        duration_s: args.duration.as_secs_f64(),
        actions,
        actions_per_second: (actions as f64 / args.duration.as_secs_f64()).round(),
        fan_out_last_us: last.summary(),
        fan_out_each_us: each.summary(),
    };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "group: {} callers ringing groups of {} for {:.1} s",
        report.groups, report.members, report.duration_s
    );
    let _ = writeln!(
        text,
        "  actions/s            {:.0} ({} actions)",
        report.actions_per_second, report.actions
    );
    let _ = writeln!(text, "  fan-out to the last  {}", report.fan_out_last_us);
    let _ = writeln!(text, "  fan-out to each      {}", report.fan_out_each_us);
    report::emit(args.common.json, &report, &text)
}

/// One group: its caller, and each member's frames funnelled into one channel.
struct Group {
    id: String,
    caller: Conn,
    member_ids: Vec<String>,
    frames: mpsc::UnboundedReceiver<(usize, Result<Frame>, Instant)>,
}

/// The part of NEW_INVITATION_RECEIVED that tells which cycle it belongs to.
#[derive(Deserialize)]
struct InviteRef {
    #[serde(default)]
    data: String,
}

struct GroupStats {
    last: Latency,
    each: Latency,
    actions: u64,
}

/// Logs the caller and members in, creates the group, and checks with one invitation that
/// this server has groups at all.
async fn set_up(endpoint: &Endpoint, group: usize, members: usize) -> Result<Group> {
    let group_id = format!("bench-group-{group}");
    let mut member_conns = Vec::with_capacity(members);
    let mut member_ids = Vec::with_capacity(members);
    for member in 0..members {
        let user = format!("gm-{group}-{member}");
        let (conn, _) = endpoint
            .login(group * (members + 1) + member, &user, "bench", None)
            .await?;
        member_conns.push(conn);
        member_ids.push(user);
    }
    let caller_id = format!("gc-{group}");
    let (mut caller, _) = endpoint
        .login(group * (members + 1) + members, &caller_id, "bench", None)
        .await?;
    let mut events = Vec::new();
    let create = CreateGroupParams {
        group_id: Some(group_id.clone()),
        name: group_id.clone(),
        kind: None,
        member_list: member_ids
            .iter()
            .map(|id| MemberRef {
                user_id: id.clone(),
            })
            .collect(),
    };
    let created = caller.call(op::CREATE_GROUP, &create, &mut events).await?;
    // An unknown operation means no group support; inviteInGroup below says so for certain.
    if created.code != 0 && created.code != ErrorCode::UnknownOperation.as_u32() {
        bail!("createGroup refused ({})", created.refusal());
    }
    let probe = InviteInGroupParams {
        group_id: group_id.clone(),
        invitee_list: member_ids.clone(),
        data: Some("probe".into()),
        ..InviteInGroupParams::default()
    };
    let result = caller
        .call(op::INVITE_IN_GROUP, &probe, &mut events)
        .await?;
    // 9011 right after a createGroup the server did not know: no group support at all.
    if result.code == ErrorCode::UnknownGroup.as_u32() && created.code != 0 {
        bail!(
            "groups are not available on this server yet: inviteInGroup was refused with {} ({})",
            result.code,
            result.message.as_deref().unwrap_or("")
        );
    }
    if result.code != 0 {
        bail!("inviteInGroup refused ({})", result.refusal());
    }
    let probe_id = result.data::<ActionResult>()?.invite_id;
    let cancel = ActionParams {
        invite_id: probe_id,
        data: None,
    };
    let cancelled = caller.call(op::CANCEL, &cancel, &mut events).await?;
    if cancelled.code != 0 {
        bail!("cancel refused ({})", cancelled.refusal());
    }
    let (frames_tx, frames) = mpsc::unbounded_channel();
    for (index, mut conn) in member_conns.into_iter().enumerate() {
        let frames_tx = frames_tx.clone();
        tokio::spawn(async move {
            loop {
                let frame = conn.recv().await;
                let failed = frame.is_err();
                if frames_tx.send((index, frame, Instant::now())).is_err() || failed {
                    break;
                }
            }
        });
    }
    Ok(Group {
        id: group_id,
        caller,
        member_ids,
        frames,
    })
}

impl Group {
    /// Closed loop until `end`: ring every member, wait until all have heard, cancel.
    async fn ring_until(mut self, end: Instant) -> Result<GroupStats> {
        let mut stats = GroupStats {
            last: Latency::new(),
            each: Latency::new(),
            actions: 0,
        };
        let mut cycle = 0u64;
        while Instant::now() < end {
            cycle += 1;
            let tag = format!("g{cycle}");
            let params = InviteInGroupParams {
                group_id: self.id.clone(),
                invitee_list: self.member_ids.clone(),
                data: Some(tag.clone()),
                ..InviteInGroupParams::default()
            };
            let sent = Instant::now();
            let id = self.caller.send(op::INVITE_IN_GROUP, &params).await?;
            let mut heard = vec![false; self.member_ids.len()];
            let mut invite_id = None;
            let deadline = sent + CYCLE_TIMEOUT;
            while invite_id.is_none() || heard.iter().any(|h| !h) {
                tokio::select! {
                    frame = self.caller.recv() => {
                        let frame = frame?;
                        if frame.is_result() && frame.id == Some(id) {
                            if frame.code != 0 {
                                bail!("inviteInGroup refused ({})", frame.refusal());
                            }
                            stats.actions += 1;
                            invite_id = Some(frame.data::<ActionResult>()?.invite_id);
                        }
                    }
                    Some((member, frame, at)) = self.frames.recv() => {
                        let frame = frame.with_context(|| format!("member {member}"))?;
                        if frame.is_event(event::NEW_INVITATION_RECEIVED) {
                            let invitation: InviteRef = frame.data()?;
                            if invitation.data == tag && !heard[member] {
                                heard[member] = true;
                                stats.each.record(at.duration_since(sent));
                                if heard.iter().all(|h| *h) {
                                    stats.last.record(at.duration_since(sent));
                                }
                            }
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => bail!("a group invitation did not reach every member within {CYCLE_TIMEOUT:?}"),
                }
            }
            let cancel = ActionParams {
                invite_id: invite_id.unwrap_or_default(),
                data: None,
            };
            let mut events = Vec::new();
            let cancelled = self.caller.call(op::CANCEL, &cancel, &mut events).await?;
            if cancelled.code != 0 {
                bail!("cancel refused ({})", cancelled.refusal());
            }
            stats.actions += 1;
        }
        self.caller.close().await;
        Ok(stats)
    }
}
