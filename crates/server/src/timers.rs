//! Invitation deadlines on tokio's timer wheel. The stored deadline is the truth: this only
//! wakes the service when one is due, and is re-armed from the store at start-up.

use crate::service::Service;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::time::{delay_queue, DelayQueue};

/// A change to the armed deadlines.
#[derive(Debug)]
pub(crate) enum TimerCommand {
    Set { invite_id: String, deadline_ms: u64 },
    Clear { invite_id: String },
}

/// Runs the timers until shutdown.
pub(crate) async fn run(
    service: Arc<Service>,
    mut commands: mpsc::UnboundedReceiver<TimerCommand>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut queue: DelayQueue<(String, u64)> = DelayQueue::new();
    let mut keys: HashMap<String, delay_queue::Key> = HashMap::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(TimerCommand::Set { invite_id, deadline_ms }) => {
                    let delay = Duration::from_millis(deadline_ms.saturating_sub(crate::now_ms()));
                    if let Some(old) = keys.remove(&invite_id) {
                        queue.remove(&old);
                    }
                    let key = queue.insert((invite_id.clone(), deadline_ms), delay);
                    keys.insert(invite_id, key);
                }
                Some(TimerCommand::Clear { invite_id }) => {
                    if let Some(key) = keys.remove(&invite_id) {
                        queue.remove(&key);
                    }
                }
                None => break,
            },
            Some(expired) = futures_util::StreamExt::next(&mut queue), if !queue.is_empty() => {
                let (invite_id, deadline_ms) = expired.into_inner();
                keys.remove(&invite_id);
                service.deadline_reached(&invite_id, deadline_ms);
            }
            _ = shutdown.wait_for(|stopping| *stopping) => break,
        }
    }
}
