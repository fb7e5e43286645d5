//! Invitation deadlines. The stored deadline is the truth: this only wakes the service when
//! one is due, and is re-armed from the store at start-up.
//!
//! Deadlines are kept in one ordered set of `(deadline, inviteID)` with a single sleep armed
//! for the earliest, which costs about a tenth of a timer-wheel entry plus an index per
//! invitation: a server holding a million pending invitations keeps a million of these.

use crate::service::Service;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeSet;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A change to the armed deadlines. A deadline never moves, so clearing names it too.
#[derive(Debug)]
pub(crate) enum TimerCommand {
    Set {
        invite_id: Box<str>,
        deadline_ms: u64,
    },
    Clear {
        invite_id: Box<str>,
        deadline_ms: u64,
    },
}

/// The armed deadlines, earliest first.
pub(crate) type Deadlines = BTreeSet<(u64, Box<str>)>;

/// Most commands applied between two looks at the clock.
const COMMANDS_PER_TURN: usize = 1024;

fn instant_of(deadline_ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(crate::now_ms()))
}

/// Runs the timers until shutdown, starting from the deadlines loaded at start-up. At most
/// `in_flight` timeouts are applied and not yet committed: when the store falls behind (a
/// million deadlines falling due faster than it commits), due deadlines wait here, in the set,
/// instead of as queued jobs holding whole invitations.
pub(crate) async fn run(
    service: Arc<Service>,
    mut armed: Deadlines,
    in_flight: usize,
    mut commands: mpsc::UnboundedReceiver<TimerCommand>,
    mut shutdown: watch::Receiver<bool>,
) {
    let far = Duration::from_secs(365 * 24 * 3600);
    let mut sleep = pin!(tokio::time::sleep(far));
    // The deadline the sleep is set for, so it is reset only when the earliest one changes.
    let mut sleeping_until: Option<u64> = None;
    let mut batch = Vec::with_capacity(COMMANDS_PER_TURN);
    let mut committing = FuturesUnordered::new();
    loop {
        let earliest = armed.first().map(|(deadline, _)| *deadline);
        if earliest != sleeping_until {
            let until = earliest.map_or_else(|| tokio::time::Instant::now() + far, instant_of);
            sleep.as_mut().reset(until);
            sleeping_until = earliest;
        }
        tokio::select! {
            received = commands.recv_many(&mut batch, COMMANDS_PER_TURN) => {
                if received == 0 {
                    break;
                }
                for command in batch.drain(..) {
                    match command {
                        TimerCommand::Set { invite_id, deadline_ms } => {
                            armed.insert((deadline_ms, invite_id));
                        }
                        TimerCommand::Clear { invite_id, deadline_ms } => {
                            armed.remove(&(deadline_ms, invite_id));
                        }
                    }
                }
            }
            () = &mut sleep, if earliest.is_some() && committing.len() < in_flight => {
                let now = crate::now_ms();
                while committing.len() < in_flight
                    && armed.first().is_some_and(|(deadline, _)| *deadline <= now)
                {
                    if let Some((deadline_ms, invite_id)) = armed.pop_first() {
                        committing.extend(service.fire_deadline(&invite_id, deadline_ms));
                    }
                }
                // Woken early by the clock, or stopped at the limit: sleep again.
                sleeping_until = None;
            }
            Some(_) = committing.next(), if !committing.is_empty() => {}
            _ = shutdown.wait_for(|stopping| *stopping) => break,
        }
    }
}
