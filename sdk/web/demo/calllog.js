// The call log: folds signaling history messages (invite, cancel, accept, reject, timeout) into
// one record per invitation and words each one from the reader's side. Pure functions.

/** @typedef {'pending' | 'accepted' | 'rejected' | 'cancelled' | 'timeout'} InviteeState */

/**
 * @typedef {object} CallRecord
 * @property {string} inviteID
 * @property {string} groupID '' for one-to-one
 * @property {string} inviter
 * @property {string[]} invitees
 * @property {Map<string, InviteeState>} states
 * @property {number} time server seconds of the invite (or of the first message seen)
 * @property {number} lastTime server seconds of the newest message
 * @property {number} timeout seconds the invite rang for (0: no limit; -1: unknown)
 */

const ACTION_STATE = /** @type {Record<number, InviteeState>} */ ({
  2: 'cancelled',
  3: 'accepted',
  4: 'rejected',
  5: 'timeout',
});

/**
 * One record per invitation, newest first.
 * @param {any[]} messages history messages from any conversations
 * @param {(message: any) => any} signalingInfo `chat.getSignalingInfo`
 * @returns {CallRecord[]}
 */
export function collectCalls(messages, signalingInfo) {
  const sorted = [...messages].sort((a, b) => a.time - b.time || a.sequence - b.sequence);
  /** @type {Map<string, CallRecord>} */
  const calls = new Map();
  for (const message of sorted) {
    const info = signalingInfo(message);
    if (!info) continue;
    let record = calls.get(info.inviteID);
    if (!record) {
      record = {
        inviteID: info.inviteID,
        groupID: info.groupID,
        inviter: info.inviter,
        invitees: [],
        states: new Map(),
        time: message.time,
        lastTime: message.time,
        timeout: -1,
      };
      calls.set(info.inviteID, record);
    }
    record.lastTime = Math.max(record.lastTime, message.time);
    const list = Array.isArray(info.inviteeList) ? info.inviteeList : [];
    if (info.actionType === 1) {
      record.time = message.time;
      record.timeout = info.timeout;
      for (const invitee of list) {
        if (!record.invitees.includes(invitee)) record.invitees.push(invitee);
        if (!record.states.has(invitee)) record.states.set(invitee, 'pending');
      }
      continue;
    }
    const next = ACTION_STATE[info.actionType];
    if (!next) continue;
    for (const invitee of list) {
      if (!record.invitees.includes(invitee)) record.invitees.push(invitee);
      const current = record.states.get(invitee);
      if (current === undefined || current === 'pending') record.states.set(invitee, next);
    }
  }
  return [...calls.values()].sort((a, b) => b.time - a.time || b.lastTime - a.lastTime);
}

/**
 * @typedef {object} CallEntry
 * @property {'incoming' | 'outgoing' | 'missed' | 'declined' | 'unanswered' | 'ringing' | 'other'} kind
 * @property {string} title e.g. "Missed call from bob"
 * @property {string} detail e.g. "Not answered"
 * @property {string} peer who to show (a userID, or the group's name)
 * @property {boolean} group
 * @property {{userID: string} | {groupID: string, inviteeList: string[]} | null} callBack
 */

/**
 * Words a record from `me`'s side.
 * @param {CallRecord} record
 * @param {string} me
 * @param {string} [groupName]
 * @returns {CallEntry}
 */
export function describeCall(record, me, groupName) {
  const group = record.groupID !== '';
  const where = group ? groupName || record.groupID : '';
  const state = (/** @type {string} */ user) => record.states.get(user) ?? 'pending';

  if (record.inviter === me) {
    const others = record.invitees.filter((user) => user !== me);
    if (!group) {
      const peer = others[0] ?? '';
      const outcome = state(peer);
      const detail = {
        accepted: 'Answered',
        rejected: 'Declined',
        cancelled: 'Cancelled',
        timeout: 'No answer',
        pending: 'Ringing…',
      }[outcome];
      return {
        kind: outcome === 'accepted' ? 'outgoing' : outcome === 'pending' ? 'ringing' : 'unanswered',
        title: `You called ${peer}`,
        detail,
        peer,
        group: false,
        callBack: peer ? { userID: peer } : null,
      };
    }
    const states = others.map(state);
    const answered = states.filter((s) => s === 'accepted').length;
    let detail;
    if (states.includes('pending')) detail = answered ? `${answered} joined · ringing the rest` : 'Ringing…';
    else if (answered) detail = `${answered} of ${others.length} answered`;
    else if (states.every((s) => s === 'rejected')) detail = 'Declined';
    else if (states.every((s) => s === 'cancelled')) detail = 'Cancelled';
    else detail = 'No answer';
    return {
      kind: answered ? 'outgoing' : states.includes('pending') ? 'ringing' : 'unanswered',
      title: `You called ${where}`,
      detail: `${detail} · ${listNames(others)}`,
      peer: where,
      group: true,
      callBack: { groupID: record.groupID, inviteeList: others },
    };
  }

  if (record.invitees.includes(me)) {
    const outcome = state(me);
    const from = record.inviter;
    const suffix = group ? ` · ${where}` : '';
    const callBack = group
      ? { groupID: record.groupID, inviteeList: [from, ...record.invitees.filter((u) => u !== me && u !== from)] }
      : { userID: from };
    const peer = group ? where : from;
    switch (outcome) {
      case 'accepted':
        return { kind: 'incoming', title: `${group ? 'Group call' : 'Call'} from ${from}`, detail: `Answered${suffix}`, peer, group, callBack };
      case 'rejected':
        return { kind: 'declined', title: `${group ? 'Group call' : 'Call'} from ${from}`, detail: `Declined${suffix}`, peer, group, callBack };
      case 'cancelled':
        return { kind: 'missed', title: `Missed ${group ? 'group call' : 'call'} from ${from}`, detail: `Caller hung up${suffix}`, peer, group, callBack };
      case 'timeout':
        return { kind: 'missed', title: `Missed ${group ? 'group call' : 'call'} from ${from}`, detail: `Not answered${suffix}`, peer, group, callBack };
      default:
        return { kind: 'ringing', title: `${from} is calling`, detail: `Ringing now${suffix}`, peer, group, callBack };
    }
  }

  // A group call between other members.
  return {
    kind: 'other',
    title: `${record.inviter} called ${where}`,
    detail: listNames(record.invitees),
    peer: where,
    group: true,
    callBack: null,
  };
}

/** @param {string[]} names */
function listNames(names) {
  if (names.length <= 3) return names.join(', ');
  return `${names.slice(0, 2).join(', ')} and ${names.length - 2} more`;
}

/**
 * "just now", "5 min ago", "14:03", "Yesterday 14:03", "Mar 3, 14:03".
 * @param {number} seconds server seconds
 * @param {number} nowMs server-clock ms
 */
export function relativeTime(seconds, nowMs) {
  const ms = seconds * 1000;
  const diff = Math.max(0, nowMs - ms);
  if (diff < 45_000) return 'just now';
  if (diff < 60 * 60_000) return `${Math.max(1, Math.round(diff / 60_000))} min ago`;
  const when = new Date(ms);
  const now = new Date(nowMs);
  const clock = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const dayStart = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  if (ms >= dayStart) return clock;
  if (ms >= dayStart - 86_400_000) return `Yesterday ${clock}`;
  const day = when.toLocaleDateString([], { month: 'short', day: 'numeric' });
  return `${day}, ${clock}`;
}
