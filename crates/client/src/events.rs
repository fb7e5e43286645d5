//! What the app hears: notices on [`EventStream`]s, listener registration, and the
//! exactly-once filter on event sequence numbers.

use beckon_proto::frames::LoginResult;
use beckon_proto::EventFrame;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::{timeout, timeout_at, Instant};

/// Something that happened on the client, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// An event from the server (after the seq filter).
    Event(EventFrame),
    /// A login or re-login succeeded; events it produces follow.
    Connected(LoginResult),
    /// The connection dropped and the client is reconnecting. `close_code` is the server's
    /// WebSocket close code, `None` when the socket ended without one.
    Reconnecting {
        /// Close code of the lost connection, if the server sent one.
        close_code: Option<u16>,
    },
    /// Events were lost (too old to resume): the app must refresh its state. Pending
    /// invitations are replayed (as events with `replay: true`) after this notice.
    Resync,
    /// The client stopped and will not reconnect by itself (logout, a 4100–4199 close code,
    /// reconnect turned off, or a re-login refused). Call `login` to start again.
    Stopped {
        /// Close code of the last connection, if the server sent one.
        close_code: Option<u16>,
        /// Why, for logs and people.
        reason: String,
    },
}

/// A stream of every [`Notice`] from the moment of [`Client::subscribe`](crate::Client::subscribe).
/// Unbounded, so a slow reader never loses one.
#[derive(Debug)]
pub struct EventStream {
    rx: UnboundedReceiver<Notice>,
}

impl EventStream {
    pub(crate) fn new(rx: UnboundedReceiver<Notice>) -> Self {
        Self { rx }
    }

    /// The next notice; `None` once the client is gone.
    pub async fn next(&mut self) -> Option<Notice> {
        self.rx.recv().await
    }

    /// The next notice within `within`; `None` on timeout or when the client is gone.
    pub async fn next_within(&mut self, within: Duration) -> Option<Notice> {
        timeout(within, self.rx.recv()).await.ok().flatten()
    }

    /// Next event frame with this name, skipping others; None on timeout.
    pub async fn next_event(&mut self, name: &str, within: Duration) -> Option<EventFrame> {
        let deadline = Instant::now() + within;
        loop {
            match timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Notice::Event(frame))) if frame.name == name => return Some(frame),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Next event frame of any name within the bound.
    pub async fn next_any_event(&mut self, within: Duration) -> Option<EventFrame> {
        let deadline = Instant::now() + within;
        loop {
            match timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Notice::Event(frame))) => return Some(frame),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Collects the events that arrive until nothing more arrives for `quiet` (for asserting
    /// that nothing else came). Other notices are skipped but count as activity.
    pub async fn drain_events(&mut self, quiet: Duration) -> Vec<EventFrame> {
        let mut events = Vec::new();
        while let Ok(Some(notice)) = timeout(quiet, self.rx.recv()).await {
            if let Notice::Event(frame) = notice {
                events.push(frame);
            }
        }
        events
    }
}

/// Identifies one registered listener, for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u64);

/// An app callback for one event name.
pub(crate) type Handler = Arc<dyn Fn(&EventFrame) + Send + Sync>;

/// Listeners by event name, in registration order.
#[derive(Default)]
pub(crate) struct Listeners {
    next_id: u64,
    by_name: HashMap<String, Vec<(ListenerId, Handler)>>,
}

impl Listeners {
    pub(crate) fn add(&mut self, name: &str, handler: Handler) -> ListenerId {
        self.next_id += 1;
        let id = ListenerId(self.next_id);
        self.by_name
            .entry(name.to_owned())
            .or_default()
            .push((id, handler));
        id
    }

    pub(crate) fn remove(&mut self, name: &str, id: ListenerId) -> bool {
        let Some(list) = self.by_name.get_mut(name) else {
            return false;
        };
        let before = list.len();
        list.retain(|(each, _)| *each != id);
        let removed = list.len() != before;
        if list.is_empty() {
            self.by_name.remove(name);
        }
        removed
    }

    /// A copy of the handlers for `name`, so they run without the registry locked (a handler
    /// may add or remove listeners).
    pub(crate) fn handlers(&self, name: &str) -> Vec<Handler> {
        self.by_name
            .get(name)
            .map(|list| list.iter().map(|(_, h)| Arc::clone(h)).collect())
            .unwrap_or_default()
    }
}

/// The exactly-once filter: whether an event with `seq` is new, advancing `last` if so.
/// Events without a seq (login replay, online-only invitations) always pass.
pub(crate) fn accept_seq(last: &mut Option<u64>, seq: Option<u64>) -> bool {
    let Some(seq) = seq else {
        return true;
    };
    if last.is_some_and(|last| seq <= last) {
        return false;
    }
    *last = Some(seq);
    true
}

/// Sends a notice to every live subscriber, forgetting those that were dropped.
pub(crate) fn broadcast(subscribers: &mut Vec<UnboundedSender<Notice>>, notice: &Notice) {
    subscribers.retain(|tx| tx.send(notice.clone()).is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seq_filter_drops_repeats_and_old_events() {
        let mut last = Some(5);
        assert!(!accept_seq(&mut last, Some(5)));
        assert!(!accept_seq(&mut last, Some(3)));
        assert!(accept_seq(&mut last, Some(6)));
        assert_eq!(last, Some(6));
        assert!(accept_seq(&mut last, None));
        assert_eq!(last, Some(6));
        assert!(!accept_seq(&mut last, Some(6)));
        assert!(accept_seq(&mut last, Some(9)));
        assert_eq!(last, Some(9));
    }

    #[test]
    fn seq_filter_without_a_known_seq_accepts_zero() {
        let mut last = None;
        assert!(accept_seq(&mut last, Some(0)));
        assert_eq!(last, Some(0));
        assert!(!accept_seq(&mut last, Some(0)));
    }

    #[test]
    fn listeners_add_remove() {
        let mut listeners = Listeners::default();
        let a = listeners.add("x", Arc::new(|_| {}));
        let b = listeners.add("x", Arc::new(|_| {}));
        assert_ne!(a, b);
        assert_eq!(listeners.handlers("x").len(), 2);
        assert!(listeners.remove("x", a));
        assert!(!listeners.remove("x", a));
        assert!(!listeners.remove("y", b));
        assert_eq!(listeners.handlers("x").len(), 1);
        assert!(listeners.remove("x", b));
        assert!(listeners.handlers("x").is_empty());
    }

    #[tokio::test]
    async fn stream_helpers_skip_and_time_out() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut stream = EventStream::new(rx);
        let event = |name: &str, seq| EventFrame {
            name: name.into(),
            seq,
            data: json!({}),
        };
        tx.send(Notice::Resync).unwrap();
        tx.send(Notice::Event(event("a", Some(1)))).unwrap();
        tx.send(Notice::Event(event("b", Some(2)))).unwrap();
        let got = stream
            .next_event("b", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got.seq, Some(2));
        assert!(stream
            .next_any_event(Duration::from_millis(20))
            .await
            .is_none());
        tx.send(Notice::Event(event("c", None))).unwrap();
        tx.send(Notice::Reconnecting { close_code: None }).unwrap();
        tx.send(Notice::Event(event("d", None))).unwrap();
        let drained = stream.drain_events(Duration::from_millis(30)).await;
        let names: Vec<_> = drained.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["c", "d"]);
        drop(tx);
        assert!(stream.next().await.is_none());
    }
}
