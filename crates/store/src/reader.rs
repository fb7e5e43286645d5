//! Read queries, each run on a pooled read connection.

use crate::event_runs;
use crate::now_ms;
use crate::{StoreConfig, StoreError};
use beckon_core::{ConversationRef, Invitation, StoredMessage};
use beckon_proto::frames::{Conversation, MessageListResult};
use beckon_proto::limits::MAX_CONVERSATIONS;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::borrow::Cow;

/// An event a resuming device missed: `(seq, origin instance, frame)`.
pub type MissedEvent = (u64, Option<String>, String);

/// What a device needs at login, read in one snapshot so that it fits the live events that
/// follow (every live event has a higher `seq` than `head`).
#[derive(Debug, Clone, Default)]
pub struct LoginSnapshot {
    /// The user's newest event number.
    pub head: u64,
    /// Events after the client's `lastSeq`, in order, as `(seq, origin instance, frame)`,
    /// when it resumes.
    pub backlog: Option<Vec<MissedEvent>>,
    /// The client gave a `lastSeq` that cannot be resumed from.
    pub resync: bool,
    /// Invitations the user is still pending in (not online-only), oldest first; filled when
    /// not resuming.
    pub pending: Vec<Invitation>,
}

fn parse_invitation(body: &[u8]) -> Result<Invitation, StoreError> {
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(format!("invitation row: {e}")))
}

/// Stored bodies packed in one buffer: one allocation per chunk instead of one per row.
pub(crate) struct Bodies {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Bodies {
    fn with_capacity(rows: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(rows * 384),
            ends: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, body: &[u8]) {
        self.bytes.extend_from_slice(body);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn parse(&self) -> Result<Vec<Invitation>, StoreError> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let body = &self.bytes[start..end];
                start = end;
                parse_invitation(body)
            })
            .collect()
    }
}

/// Reads every active invitation's stored body, `chunk` at a time, for `each` to parse;
/// stops early when `each` returns false.
pub(crate) fn active_invitation_bodies(
    conn: &Connection,
    chunk: usize,
    mut each: impl FnMut(Bodies) -> bool,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT body FROM active_invitations")?;
    let mut rows = stmt.query([])?;
    let mut bodies = Bodies::with_capacity(chunk);
    while let Some(row) = rows.next()? {
        let body = row.get_ref(0)?;
        bodies.push(
            body.as_bytes()
                .map_err(|e| StoreError::Corrupt(format!("invitation row: {e}")))?,
        );
        if bodies.len() == chunk
            && !each(std::mem::replace(&mut bodies, Bodies::with_capacity(chunk)))
        {
            return Ok(());
        }
    }
    if bodies.len() > 0 {
        each(bodies);
    }
    Ok(())
}

pub(crate) fn active_invitation_count(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn.query_row("SELECT count(*) FROM active_invitations", [], |row| {
        row.get(0)
    })?;
    Ok(count.unsigned_abs())
}

pub(crate) fn users(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT user_id FROM users")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn invitation_exists(conn: &Connection, invite_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM invite_ids WHERE invite_id = ?1")?
        .query_row([invite_id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(crate) fn login_snapshot(
    conn: &Connection,
    config: &StoreConfig,
    user_id: &str,
    last_seq: Option<u64>,
) -> Result<LoginSnapshot, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let (head, newest_run): (i64, Option<i64>) = tx
        .prepare_cached("SELECT seq, last_run FROM user_heads WHERE user_id = ?1")?
        .query_row([user_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .unwrap_or((0, None));
    let head = head as u64;
    let mut snapshot = LoginSnapshot {
        head,
        ..LoginSnapshot::default()
    };
    if let Some(last) = last_seq {
        if last == head {
            snapshot.backlog = Some(Vec::new());
        } else if last < head && head - last <= config.max_backlog_events as u64 {
            // Resumable only if the first missed event is still kept and younger than the
            // retention period (pruning runs periodically, so age is checked here too).
            let cutoff = now_ms().saturating_sub(config.event_retention_ms);
            snapshot.backlog = backlog_after(&tx, user_id, newest_run, last, cutoff)?;
        }
        snapshot.resync = snapshot.backlog.is_none();
    }
    if snapshot.backlog.is_none() {
        let mut stmt = tx.prepare_cached(
            "SELECT a.body FROM pending_invitees p JOIN active_invitations a
                 ON a.deadline_ms = p.deadline_ms AND a.invite_id = p.invite_id
             WHERE p.user_id = ?1",
        )?;
        let rows = stmt.query_map([user_id], |row| row.get::<_, String>(0))?;
        for body in rows {
            let invitation = parse_invitation(body?.as_bytes())?;
            if !invitation.online_user_only {
                snapshot.pending.push(invitation);
            }
        }
        snapshot.pending.sort_by_key(|i| i.created_at_ms);
    }
    tx.finish()?;
    Ok(snapshot)
}

/// Marks a stored message event that holds a reference (`\u{1}name\u{1}messageID`), not a frame.
pub(crate) const MESSAGE_REF: char = '\u{1}';

/// The user's kept events after `last`, in order, found by walking back from the user's newest
/// run; `None` when the first missed one is no longer kept (pruned, or older than `cutoff`).
/// The caller bounds the walk: every run holds at least one of the missed events.
fn backlog_after(
    conn: &Connection,
    user: &str,
    newest_run: Option<i64>,
    last: u64,
    cutoff: u64,
) -> Result<Option<Vec<MissedEvent>>, StoreError> {
    let first_missed = last + 1;
    let mut read = conn.prepare_cached(
        "SELECT user_id, first_seq, prev_run, events FROM event_runs WHERE run_id = ?1",
    )?;
    // Newest first.
    let mut runs = Vec::new();
    let mut next = newest_run;
    loop {
        let Some(run_id) = next else {
            return Ok(None);
        };
        let row: Option<(String, i64, Option<i64>, Vec<u8>)> = read
            .query_row([run_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
        // Pruned: the missed events are no longer all kept.
        let Some((owner, first_seq, prev_run, bytes)) = row else {
            return Ok(None);
        };
        // Runs are never renumbered, and each links to an earlier one.
        if owner != user || prev_run.is_some_and(|prev| prev >= run_id) {
            return Err(StoreError::Corrupt(format!(
                "the events of {user} link to run {run_id}, which is not theirs"
            )));
        }
        runs.push(event_runs::decode(user, first_seq as u64, &bytes)?);
        if first_seq as u64 <= first_missed {
            break;
        }
        next = prev_run;
    }
    let kept = runs
        .last()
        .and_then(|oldest| oldest.iter().find(|event| event.seq == first_missed))
        .is_some_and(|event| event.created_ms >= cutoff);
    if !kept {
        return Ok(None);
    }
    let mut backlog = Vec::new();
    for run in runs.into_iter().rev() {
        for event in run {
            if event.seq > last {
                let frame = expand(conn, user, event.seq, event.stored.into_owned())?;
                backlog.push((event.seq, event.origin.map(Cow::into_owned), frame));
            }
        }
    }
    Ok(Some(backlog))
}

/// The frame to send for a stored event: references are rendered for `user` as they are now
/// (a message deleted since is sent as an empty list).
fn expand(conn: &Connection, user: &str, seq: u64, stored: String) -> Result<String, StoreError> {
    let Some(rest) = stored.strip_prefix(MESSAGE_REF) else {
        return Ok(stored);
    };
    let Some((name, message_id)) = rest.split_once(MESSAGE_REF) else {
        return Err(StoreError::Corrupt(format!(
            "bad message reference in event {seq} of {user}"
        )));
    };
    let messages: Vec<_> = message(conn, message_id)?
        .map(|m| m.render_for(user))
        .into_iter()
        .collect();
    beckon_proto::frames::event_json(name, Some(seq), &messages)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

const MESSAGE_COLUMNS: &str =
    "message_id, conv_key, seq, from_user, time_s, payload_data, excluded";

fn message_from_row(
    row: &Row<'_>,
) -> rusqlite::Result<(String, String, i64, String, i64, String, bool)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn to_stored(
    (id, key, seq, from, time, payload_data, excluded): (
        String,
        String,
        i64,
        String,
        i64,
        String,
        bool,
    ),
) -> Result<StoredMessage, StoreError> {
    let conversation = ConversationRef::from_key(&key)
        .ok_or_else(|| StoreError::Corrupt(format!("bad conversation key in message {id}")))?;
    Ok(StoredMessage {
        id,
        conversation,
        from,
        sequence: seq as u64,
        time: time as u64,
        payload_data,
        excluded,
    })
}

pub(crate) fn message(
    conn: &Connection,
    message_id: &str,
) -> Result<Option<StoredMessage>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE message_id = ?1"
        ))?
        .query_row([message_id], message_from_row)
        .optional()?;
    row.map(to_stored).transpose()
}

pub(crate) fn conversations(
    conn: &Connection,
    user_id: &str,
) -> Result<Vec<Conversation>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.conv_key, c.unread, c.last_message_id FROM conversations c
         WHERE c.owner = ?1 ORDER BY c.updated_ms DESC, c.conv_key LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![user_id, MAX_CONVERSATIONS as i64], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut list = Vec::new();
    for row in rows {
        let (key, unread, last_id) = row?;
        let conversation = ConversationRef::from_key(&key)
            .ok_or_else(|| StoreError::Corrupt(format!("bad conversation key {key}")))?;
        let last_message = match last_id {
            Some(id) => message(conn, &id)?.map(|m| m.render_for(user_id)),
            None => None,
        };
        list.push(Conversation {
            conversation_id: conversation.conversation_id_for(user_id),
            kind: conversation.kind().to_owned(),
            unread_count: unread as u64,
            last_message,
        });
    }
    Ok(list)
}

pub(crate) fn messages(
    conn: &Connection,
    reader_id: &str,
    conversation: &ConversationRef,
    before: Option<&str>,
    count: usize,
) -> Result<Option<MessageListResult>, StoreError> {
    let key = conversation.key();
    // Where the page starts: the message before the cursor, or the conversation's newest.
    let start: Option<String> = match before {
        Some(id) => {
            let prev: Option<Option<String>> = conn
                .prepare_cached(
                    "SELECT prev_message_id FROM messages WHERE message_id = ?1 AND conv_key = ?2",
                )?
                .query_row(params![id, key], |row| row.get(0))
                .optional()?;
            match prev {
                Some(prev) => prev,
                None => return Ok(None),
            }
        }
        None => conn
            .prepare_cached("SELECT last_message_id FROM conversation_heads WHERE conv_key = ?1")?
            .query_row([&key], |row| row.get(0))
            .optional()?,
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS}, prev_message_id FROM messages WHERE message_id = ?1"
    ))?;
    // One more than asked for, to tell whether the page is the last.
    let mut page = Vec::with_capacity(count + 1);
    let mut next = start;
    while let Some(id) = next.take() {
        if page.len() > count {
            break;
        }
        let (row, prev): (_, Option<String>) = stmt
            .query_row([&id], |row| Ok((message_from_row(row)?, row.get(7)?)))
            .optional()?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the history of {key} links to a missing message {id}"
                ))
            })?;
        if row.1 != key {
            return Err(StoreError::Corrupt(format!(
                "the history of {key} links to message {id} of another conversation"
            )));
        }
        page.push(to_stored(row)?);
        next = prev;
    }
    let is_completed = page.len() <= count;
    page.truncate(count);
    page.reverse();
    let next_req_message_id = page.first().map(|m| m.id.clone()).unwrap_or_default();
    Ok(Some(MessageListResult {
        message_list: page.iter().map(|m| m.render_for(reader_id)).collect(),
        next_req_message_id,
        is_completed,
    }))
}

pub(crate) fn groups(conn: &Connection) -> Result<Vec<beckon_core::Group>, StoreError> {
    let mut groups: Vec<beckon_core::Group> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT group_id, name, kind, owner, created_ms FROM groups WHERE dismissed = 0",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(beckon_core::Group {
            group_id: row.get(0)?,
            name: row.get(1)?,
            kind: row.get(2)?,
            owner: row.get(3)?,
            members: Vec::new(),
            created_at_ms: row.get::<_, i64>(4)? as u64,
        })
    })?;
    for group in rows {
        let group = group?;
        index.insert(group.group_id.clone(), groups.len());
        groups.push(group);
    }
    // Members joined in one request share a time; the user ID then keeps the order stable.
    let mut stmt = conn.prepare(
        "SELECT group_id, user_id, joined_ms FROM group_members ORDER BY joined_ms, user_id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)? as u64,
        ))
    })?;
    for row in rows {
        let (group_id, user_id, joined_at_ms) = row?;
        if let Some(&i) = index.get(&group_id) {
            groups[i].members.push(beckon_core::Member {
                user_id,
                joined_at_ms,
            });
        }
    }
    // The owner is listed first, as when the group was made.
    for group in &mut groups {
        if let Some(pos) = group.members.iter().position(|m| m.user_id == group.owner) {
            let owner = group.members.remove(pos);
            group.members.insert(0, owner);
        }
    }
    Ok(groups)
}

pub(crate) fn group_id_used(conn: &Connection, group_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM groups WHERE group_id = ?1")?
        .query_row([group_id], |_| Ok(()))
        .optional()?
        .is_some())
}
