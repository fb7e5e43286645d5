// Beckon demo: sign in, see who you can call, ring one person or several members of a group,
// answer on any of your devices, and read the call log — all through the web SDK, served by
// `beckon serve` itself.

import BeckonChat from '/sdk/index.js';
import { icon } from './icons.js';
import { Tones } from './tones.js';
import { collectCalls, describeCall, relativeTime } from './calllog.js';

const { TSignaling, EVENT, TYPES, ERROR_CODE } = BeckonChat;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const SESSION_KEY = 'beckon.demo.session';
const RING_KEY = 'beckon.demo.ringSeconds';
const SOUND_KEY = 'beckon.demo.sound';
/** How long the "call ended" screen stays when the other side ended the call. */
const END_SCREEN_MS = 6000;
const PEOPLE_REFRESH_MS = 8000;
const LOG_CONVERSATIONS = 30;
const LOG_MESSAGES = 60;
const LOG_ENTRIES = 40;
/** How long past its deadline a ringing call may wait for the server's timeout event. */
const STALE_GRACE_MS = 10_000;
const RING_CIRCUMFERENCE = 2 * Math.PI * 92;
const CALL_DATA = { app: 'beckon-demo', media: 'audio' };

/**
 * @typedef {'pending' | 'accepted' | 'rejected' | 'cancelled' | 'timeout' | 'left'} PartState
 *
 * @typedef {object} Call
 * @property {string} inviteID
 * @property {'in' | 'out'} direction
 * @property {string} inviter
 * @property {string} groupID '' for one-to-one
 * @property {string} groupName
 * @property {string[]} invitees
 * @property {Map<string, PartState>} states
 * @property {number} timeout seconds (0: no limit)
 * @property {number | null} expiresAt the server's deadline, server ms (incoming calls)
 * @property {number | null} localDeadline the deadline on this device's clock, estimated
 * @property {'ringing' | 'active' | 'ended'} phase
 * @property {boolean} busy a request about this call is in flight
 * @property {number} startedAt local ms the call was answered
 * @property {string} endReason
 * @property {string} endText
 * @property {boolean} replay
 */

const app = {
  /** @type {import('/sdk/index.js').Chat | null} */
  chat: null,
  me: '',
  devMode: false,
  /** Server clock minus this clock, ms (from the login result). @type {number | null} */
  clockOffset: null,
  /** @type {string[]} */
  people: [],
  /** @type {Map<string, any>} */
  groups: new Map(),
  /** @type {Map<string, Call>} */
  calls: new Map(),
  /** inviteID of the call on screen. @type {string | null} */
  focus: null,
  /** @type {import('./calllog.js').CallRecord[]} */
  log: [],
  logLoaded: false,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  endTimer: undefined,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  logTimer: undefined,
  logRunning: false,
  logDirty: false,
  /** @type {ReturnType<typeof setInterval> | undefined} */
  peopleTimer: undefined,
  /** @type {ReturnType<typeof setInterval> | undefined} */
  clockTimer: undefined,
  tones: new Tones(),
};

// ---------------------------------------------------------------------------------------------
// Small helpers

/** @param {unknown} value */
function esc(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** @param {string} name */
function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + (ch.codePointAt(0) ?? 0)) % 360;
  return h;
}

/** @param {string} name */
function initials(name) {
  const words = name.trim().split(/[\s._-]+/).filter(Boolean);
  if (words.length >= 2) return (first(words[0]) + first(words[1])).toUpperCase();
  return first(name.trim() || '?').toUpperCase();
}

/** @param {string} text */
function first(text) {
  return Array.from(text)[0] ?? '';
}

/**
 * @param {string} name
 * @param {{size?: string, group?: boolean}} [options]
 */
function avatar(name, options = {}) {
  const size = options.size ? ` avatar-${options.size}` : '';
  const inner = options.group ? icon('users') : esc(initials(name));
  return `<span class="avatar${size}${options.group ? ' avatar-group' : ''}" style="--h:${hue(name)}" aria-hidden="true">${inner}</span>`;
}

/** @param {number} ms */
function clock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** Server-clock ms now. */
function serverNow() {
  return Date.now() + (app.clockOffset ?? 0);
}

function uuid() {
  // randomUUID exists only in secure contexts (https, localhost); a LAN address over http has none.
  if (typeof (/** @type {any} */ (globalThis.crypto))?.randomUUID === 'function') {
    try {
      return crypto.randomUUID();
    } catch {
      // Not a secure context: fall through.
    }
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** @param {string} data */
function parseData(data) {
  try {
    const value = JSON.parse(data);
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

/**
 * A sentence for a refused or failed call.
 * @param {any} error
 * @param {string} [who]
 */
function explain(error, who) {
  const code = error?.code;
  switch (code) {
    case ERROR_CODE.UNKNOWN_USER:
      return who ? `There’s no one called “${who}” on this server yet.` : 'That user has no account on this server yet.';
    case ERROR_CODE.INVITE_SELF:
      return 'You can’t call yourself.';
    case ERROR_CODE.INVITATION_NOT_ACTIVE:
    case ERROR_CODE.CANCEL_NOT_ACTIVE:
      return 'This call has already ended.';
    case ERROR_CODE.NO_PERMISSION:
      return 'You’re not part of this call.';
    case ERROR_CODE.UNKNOWN_GROUP:
      return 'That group no longer exists.';
    case ERROR_CODE.NOT_GROUP_MEMBER:
      return who ? `${who} isn’t a member of that group.` : 'Not a member of that group.';
    case ERROR_CODE.GROUP_ID_EXISTS:
      return 'A group with that ID already exists.';
    case ERROR_CODE.NOT_LOGGED_IN:
      return 'You’re signed out.';
    case ERROR_CODE.NETWORK_ERROR:
    case ERROR_CODE.REQUEST_TIMEOUT:
      return 'Connection problem — please try again.';
    case ERROR_CODE.RATE_LIMITED:
      return 'Too many requests — slow down a little.';
    case ERROR_CODE.USERSIG_EXPIRED:
      return 'Your sign-in has expired.';
    case ERROR_CODE.USERSIG_BAD_SIGNATURE:
    case ERROR_CODE.USERSIG_MALFORMED:
    case ERROR_CODE.USERSIG_IDENTIFIER_MISMATCH:
      return 'The UserSig doesn’t match this user and server.';
    case ERROR_CODE.SDKAPPID_MISMATCH:
      return 'That SDKAppID is not this server’s.';
    default: {
      const text = error?.message ? String(error.message) : 'Something went wrong.';
      return text.charAt(0).toUpperCase() + text.slice(1);
    }
  }
}

/**
 * @param {string} text
 * @param {'info' | 'good' | 'bad'} [kind]
 */
function toast(text, kind = 'info') {
  const box = $('toasts');
  const item = document.createElement('div');
  item.className = `toast toast-${kind}`;
  item.dataset.testid = 'toast';
  item.setAttribute('role', kind === 'bad' ? 'alert' : 'status');
  item.textContent = text;
  box.append(item);
  while (box.children.length > 3) box.firstElementChild?.remove();
  setTimeout(() => {
    item.classList.add('toast-out');
    setTimeout(() => item.remove(), 300);
  }, 4200);
}

function loadSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
    return saved && typeof saved.userID === 'string' ? saved : null;
  } catch {
    return null;
  }
}

/** @param {object | null} session */
function saveSession(session) {
  try {
    if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else localStorage.removeItem(SESSION_KEY);
  } catch {
    // Private mode: nothing remembered.
  }
}

function ringSeconds() {
  const input = /** @type {HTMLInputElement} */ ($('ring-timeout'));
  const value = Math.round(Number(input.value));
  const seconds = Number.isFinite(value) ? Math.min(600, Math.max(1, value)) : 30;
  input.value = String(seconds);
  return seconds;
}

// ---------------------------------------------------------------------------------------------
// Start, sign in, sign out

async function boot() {
  wireStatic();
  let users = [];
  try {
    const response = await fetch('/dev/users', { cache: 'no-store' });
    app.devMode = response.ok;
    if (response.ok) users = (await response.json()).users ?? [];
  } catch {
    $('boot-text').textContent = 'Can’t reach the Beckon server. Is it running?';
    return;
  }
  $('boot').hidden = true;
  const asUser = new URLSearchParams(location.search).get('user');
  const saved = loadSession();
  if (asUser && app.devMode) {
    await signIn({ userID: asUser });
  } else if (saved && (app.devMode || saved.userSig)) {
    await signIn(saved);
  } else {
    showLogin(users);
  }
}

/** @param {string[]} [users] */
function showLogin(users) {
  $('shell').hidden = true;
  $('login').hidden = false;
  $('dev-login').hidden = !app.devMode;
  $('manual-login').hidden = app.devMode;
  const suggest = $('login-suggest');
  const list = users ?? [];
  suggest.hidden = !app.devMode || list.length === 0;
  $('login-suggest-list').innerHTML = list
    .slice(0, 12)
    .map((user) => `<button type="button" class="chip" data-user="${esc(user)}">${avatar(user, { size: 'xs' })}${esc(user)}</button>`)
    .join('');
  const focusField = app.devMode ? $('login-user') : $('manual-user');
  requestAnimationFrame(() => focusField.focus());
}

/** @param {string} text */
function loginError(text) {
  const box = $('login-error');
  box.textContent = text;
  box.hidden = !text;
}

/** @param {boolean} busy */
function loginBusy(busy) {
  for (const button of document.querySelectorAll('#login button[type=submit]')) {
    /** @type {HTMLButtonElement} */ (button).disabled = busy;
    button.classList.toggle('is-busy', busy);
  }
}

/**
 * @param {{userID: string, SDKAppID?: number, userSig?: string}} creds
 */
async function signIn(creds) {
  const userID = creds.userID.trim();
  loginBusy(true);
  loginError('');
  /** @type {import('/sdk/index.js').Chat | null} */
  let chat = null;
  try {
    let { SDKAppID, userSig } = creds;
    if (!userSig) {
      const response = await fetch(`/dev/usersig?userID=${encodeURIComponent(userID)}`, { cache: 'no-store' });
      const body = await response.json().catch(() => ({}));
      if (response.status === 404) {
        app.devMode = false;
        showLogin();
        loginError('This server is not in dev mode: paste a UserSig to sign in.');
        return;
      }
      if (!response.ok) throw new Error(body.message || `the server answered ${response.status}`);
      SDKAppID = body.SDKAppID;
      userSig = body.userSig;
    }
    chat = BeckonChat.create({ SDKAppID: Number(SDKAppID), server: location.origin });
    app.chat = chat;
    app.me = userID;
    app.clockOffset = null;
    listen(chat);
    const result = await chat.login({ userID, userSig: /** @type {string} */ (userSig) });
    if (app.chat !== chat) return;
    if (typeof result.data.serverTime === 'number') app.clockOffset = result.data.serverTime - Date.now();
    saveSession(app.devMode ? { userID } : { userID, SDKAppID: Number(SDKAppID), userSig });
    showShell();
  } catch (error) {
    if (chat) {
      if (app.chat === chat) app.chat = null;
      chat.destroy().catch(() => {});
    }
    resetCalls();
    saveSession(null);
    showLogin();
    const field = /** @type {HTMLInputElement} */ ($(app.devMode ? 'login-user' : 'manual-user'));
    field.value = userID;
    loginError(`Couldn’t sign in: ${explain(error)}`);
  } finally {
    loginBusy(false);
  }
}

function showShell() {
  $('login').hidden = true;
  $('shell').hidden = false;
  $('me-name').textContent = app.me;
  $('me-avatar').outerHTML = `<span id="me-avatar">${avatar(app.me, { size: 'sm' })}</span>`;
  $('dev-badge').hidden = !app.devMode;
  $('people').innerHTML = skeletonRows(3);
  $('groups').innerHTML = skeletonRows(1);
  $('log').innerHTML = skeletonRows(3);
  app.logLoaded = false;
  refreshPeople();
  refreshGroups();
  refreshLog();
  clearInterval(app.peopleTimer);
  app.peopleTimer = setInterval(() => {
    if (document.visibilityState === 'visible') refreshPeople();
  }, PEOPLE_REFRESH_MS);
  clearInterval(app.clockTimer);
  app.clockTimer = setInterval(() => renderLog(), 30_000);
}

/** @param {number} n */
function skeletonRows(n) {
  return Array.from({ length: n }, () => '<li class="row skeleton"><span class="avatar"></span><span class="bar"></span></li>').join('');
}

async function signOut() {
  const chat = app.chat;
  app.chat = null;
  saveSession(null);
  resetCalls();
  clearInterval(app.peopleTimer);
  clearInterval(app.clockTimer);
  if (chat) await chat.destroy().catch(() => {});
  app.me = '';
  app.people = [];
  app.groups.clear();
  app.log = [];
  let users = [];
  if (app.devMode) {
    users = await fetch('/dev/users', { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : { users: [] }))
      .then((b) => b.users ?? [], () => []);
  }
  showLogin(users);
}

function resetCalls() {
  app.calls.clear();
  app.focus = null;
  clearTimeout(app.endTimer);
  renderCall();
}

// ---------------------------------------------------------------------------------------------
// SDK events

/** @param {import('/sdk/index.js').Chat} chat */
function listen(chat) {
  /**
   * @template T
   * @param {(data: T) => void} handler
   * @returns {(event: {data: T}) => void}
   */
  const mine = (handler) => (event) => {
    if (app.chat === chat) handler(event.data);
  };
  chat.addSignalingListener(TSignaling.NEW_INVITATION_RECEIVED, mine(onInvited));
  chat.addSignalingListener(TSignaling.INVITEE_ACCEPTED, mine(onAccepted));
  chat.addSignalingListener(TSignaling.INVITEE_REJECTED, mine(onRejected));
  chat.addSignalingListener(TSignaling.INVITATION_CANCELLED, mine(onCancelled));
  chat.addSignalingListener(TSignaling.INVITATION_TIMEOUT, mine(onTimeout));
  chat.on(EVENT.MESSAGE_RECEIVED, mine(() => scheduleLog()));
  chat.on(EVENT.MESSAGE_MODIFIED, mine(() => scheduleLog()));
  chat.on(EVENT.NET_STATE_CHANGE, mine((data) => renderNet(data.state)));
  chat.on(EVENT.SDK_READY, mine(() => {
    if (!$('shell').hidden) {
      refreshPeople();
      scheduleLog();
    }
  }));
  chat.on(EVENT.KICKED_OUT, mine(() => {
    if (app.devMode) {
      // A dev UserSig expired: mint a new one and carry on.
      const userID = app.me;
      app.chat = null;
      chat.destroy().catch(() => {});
      signIn({ userID });
    } else {
      signOut().then(() => loginError('Your UserSig has expired. Paste a fresh one to sign in again.'));
    }
  }));
  chat.on(EVENT.ERROR, mine((data) => {
    if (chat.getLoginUser()) {
      // Still signed in (the SDK carries on): just say so.
      toast(`Connection problem: ${data.message}`, 'bad');
      return;
    }
    signOut().then(() => loginError(`Disconnected by the server: ${data.message}`));
  }));
}

/** @param {string} state */
function renderNet(state) {
  const net = $('net');
  net.dataset.state = state;
  const label = /** @type {HTMLElement} */ (net.querySelector('span'));
  label.textContent =
    state === TYPES.NET_STATE_CONNECTED ? 'Online' : state === TYPES.NET_STATE_CONNECTING ? 'Reconnecting…' : 'Offline';
}

/** @param {import('/sdk/index.js').NewInvitationReceivedData} data */
function onInvited(data) {
  if (app.calls.has(data.inviteID)) return;
  const extra = parseData(data.data);
  /** @type {Call} */
  const call = {
    inviteID: data.inviteID,
    direction: 'in',
    inviter: data.inviter,
    groupID: data.groupID,
    groupName: groupName(data.groupID, extra.groupName),
    invitees: [...data.inviteeList],
    states: new Map(data.inviteeList.map((user) => [user, /** @type {PartState} */ ('pending')])),
    timeout: typeof data.timeout === 'number' ? data.timeout : -1,
    expiresAt: typeof data.expiresAt === 'number' ? data.expiresAt : null,
    localDeadline: typeof data.timeoutRemaining === 'number' ? Date.now() + data.timeoutRemaining * 1000 : null,
    phase: 'ringing',
    busy: false,
    startedAt: 0,
    endReason: '',
    endText: '',
    replay: Boolean(data.replay),
  };
  app.calls.set(call.inviteID, call);
  if (call.groupID && !app.groups.has(call.groupID)) refreshGroups();
  const current = focused();
  if (!current || current.phase === 'ended') {
    setFocus(call);
  } else {
    toast(`${call.inviter} is also calling you`);
    renderCall();
  }
  scheduleLog();
}

/** @param {import('/sdk/index.js').InviteeAnsweredData} data */
function onAccepted(data) {
  const call = app.calls.get(data.inviteID);
  scheduleLog();
  if (!call || call.phase === 'ended') return;
  if (data.invitee === app.me) {
    if (data.handledOnOtherDevice) endCall(call, 'answered-elsewhere', 'Answered on another device');
    return;
  }
  call.states.set(data.invitee, 'accepted');
  if (call.direction === 'out' && call.phase === 'ringing') {
    goActive(call);
  } else {
    if (call.groupID && call.phase === 'active') toast(`${data.invitee} joined the call`, 'good');
    renderCall();
  }
}

/** @param {import('/sdk/index.js').InviteeAnsweredData} data */
function onRejected(data) {
  const call = app.calls.get(data.inviteID);
  scheduleLog();
  if (!call || call.phase === 'ended') return;
  if (data.invitee === app.me) {
    if (data.handledOnOtherDevice) endCall(call, 'declined-elsewhere', 'Declined on another device');
    return;
  }
  call.states.set(data.invitee, data.reason ? 'left' : 'rejected');
  if (call.direction === 'out') settleOutgoing(call);
  renderCall();
}

/** @param {import('/sdk/index.js').InvitationCancelledData} data */
function onCancelled(data) {
  const call = app.calls.get(data.inviteID);
  scheduleLog();
  if (!call || call.phase === 'ended') return;
  const why = {
    groupDismissed: 'The group was dismissed',
    inviterLeft: `${call.inviter} left the group`,
    memberQuit: 'You left the group',
    memberRemoved: 'You were removed from the group',
  }[data.reason ?? ''];
  if (call.direction === 'in') {
    endCall(call, 'cancelled', why ?? `${call.inviter} hung up`);
  } else {
    endCall(call, 'cancelled', data.handledOnOtherDevice ? 'Cancelled on another device' : why ?? 'Call cancelled');
  }
}

/** @param {import('/sdk/index.js').InvitationTimeoutData} data */
function onTimeout(data) {
  const call = app.calls.get(data.inviteID);
  scheduleLog();
  if (!call || call.phase === 'ended') return;
  if (data.isSelfTimeout) {
    if (call.direction === 'in') endCall(call, 'missed', `You missed ${call.inviter}’s call`);
    return;
  }
  for (const user of data.inviteeList) call.states.set(user, 'timeout');
  settleOutgoing(call);
  renderCall();
}

/**
 * An outgoing call nobody is still ringing for: ended unless someone answered.
 * @param {Call} call
 */
function settleOutgoing(call) {
  if (call.phase !== 'ringing') return;
  const states = call.invitees.map((user) => call.states.get(user));
  if (states.includes('pending') || states.includes('accepted')) return;
  const peer = call.invitees[0];
  if (states.every((s) => s === 'rejected')) {
    endCall(call, 'declined', call.groupID ? 'Everyone declined' : `${peer} declined`);
  } else if (states.every((s) => s === 'timeout')) {
    endCall(call, 'no-answer', call.groupID ? 'No one answered' : `${peer} didn’t answer`);
  } else {
    endCall(call, 'no-answer', 'No one joined');
  }
}

// ---------------------------------------------------------------------------------------------
// Call state

function focused() {
  return app.focus ? app.calls.get(app.focus) ?? null : null;
}

/** @param {Call} call */
function setFocus(call) {
  clearTimeout(app.endTimer);
  app.focus = call.inviteID;
  renderCall();
}

/** @param {Call} call */
function goActive(call) {
  call.phase = 'active';
  call.startedAt = Date.now();
  if (call.direction === 'in') call.states.set(app.me, 'accepted');
  renderCall();
}

/**
 * @param {Call} call
 * @param {string} reason
 * @param {string} text
 * @param {{quiet?: boolean}} [options] quiet: close the screen now (this user ended it)
 */
function endCall(call, reason, text, options = {}) {
  if (call.phase === 'ended') return;
  const wasRinging = call.phase === 'ringing';
  call.phase = 'ended';
  call.busy = false;
  call.endReason = reason;
  call.endText = text;
  scheduleLog();
  if (app.focus !== call.inviteID) {
    app.calls.delete(call.inviteID);
    if (call.direction === 'in' && wasRinging && (reason === 'missed' || reason === 'cancelled')) {
      toast(`Missed call from ${call.inviter}`, 'bad');
    }
    renderCall();
    return;
  }
  if (options.quiet) {
    dismiss();
    return;
  }
  renderCall();
  clearTimeout(app.endTimer);
  app.endTimer = setTimeout(() => {
    if (app.focus === call.inviteID) dismiss();
  }, END_SCREEN_MS);
}

/** Closes the call screen, or moves on to the next ringing call. */
function dismiss() {
  clearTimeout(app.endTimer);
  const current = focused();
  if (current && current.phase === 'ended') app.calls.delete(current.inviteID);
  app.focus = null;
  const next = [...app.calls.values()].find((c) => c.phase !== 'ended');
  if (next) app.focus = next.inviteID;
  renderCall();
}

/** A call this user is busy with (on screen and not over). */
function busyCall() {
  const call = focused();
  return call && call.phase !== 'ended' ? call : null;
}

/** @param {Call} call */
function pendingInvitees(call) {
  return call.invitees.filter((user) => call.states.get(user) === 'pending');
}

/**
 * Where the countdown runs to, on this device's clock: the server's deadline corrected by the
 * clock offset measured at login, or (if that looks off) the remaining time the server sent.
 * The remaining time is whole seconds rounded up and counted before the frame travelled, so the
 * deadline it gives is never early: the clock's estimate is capped by it. The offset is taken when
 * the login answer is handled, after the server stamped it, so it tends to put the deadline late.
 * @param {Call} call
 */
function deadline(call) {
  if (call.timeout === 0) return null;
  if (call.expiresAt !== null && app.clockOffset !== null) {
    const byClock = call.expiresAt - app.clockOffset;
    if (call.localDeadline === null) return byClock;
    if (call.localDeadline - byClock < 2500) return Math.min(byClock, call.localDeadline);
  }
  return call.localDeadline;
}

/** @param {Call} call */
function peerOf(call) {
  if (call.groupID) return call.groupName;
  return call.direction === 'in' ? call.inviter : call.invitees[0];
}

// ---------------------------------------------------------------------------------------------
// Actions

/** @param {string} target */
async function startCall(target) {
  const userID = target.trim();
  if (!userID || !app.chat) return;
  if (userID === app.me) {
    toast('That’s you — pick someone else.');
    return;
  }
  if (busyCall()) {
    toast('Finish your current call first.');
    return;
  }
  app.tones.unlock();
  const timeout = ringSeconds();
  /** @type {Call} */
  const call = {
    inviteID: uuid(),
    direction: 'out',
    inviter: app.me,
    groupID: '',
    groupName: '',
    invitees: [userID],
    states: new Map([[userID, 'pending']]),
    timeout,
    expiresAt: null,
    localDeadline: Date.now() + timeout * 1000,
    phase: 'ringing',
    busy: true,
    startedAt: 0,
    endReason: '',
    endText: '',
    replay: false,
  };
  app.calls.set(call.inviteID, call);
  setFocus(call);
  try {
    await app.chat.invite({ userID, inviteID: call.inviteID, timeout, data: JSON.stringify(CALL_DATA) });
    call.busy = false;
    renderCall();
    scheduleLog();
  } catch (error) {
    endCall(call, 'failed', explain(error, userID));
  }
}

/**
 * @param {string} groupID
 * @param {string[]} inviteeList
 */
async function startGroupCall(groupID, inviteeList) {
  if (!app.chat) return;
  if (busyCall()) {
    toast('Finish your current call first.');
    return;
  }
  app.tones.unlock();
  const timeout = ringSeconds();
  const name = groupName(groupID);
  /** @type {Call} */
  const call = {
    inviteID: uuid(),
    direction: 'out',
    inviter: app.me,
    groupID,
    groupName: name,
    invitees: [...inviteeList],
    states: new Map(inviteeList.map((user) => [user, /** @type {PartState} */ ('pending')])),
    timeout,
    expiresAt: null,
    localDeadline: Date.now() + timeout * 1000,
    phase: 'ringing',
    busy: true,
    startedAt: 0,
    endReason: '',
    endText: '',
    replay: false,
  };
  app.calls.set(call.inviteID, call);
  setFocus(call);
  try {
    await app.chat.inviteInGroup({
      groupID,
      inviteeList,
      inviteID: call.inviteID,
      timeout,
      data: JSON.stringify({ ...CALL_DATA, groupName: name }),
    });
    call.busy = false;
    renderCall();
    scheduleLog();
  } catch (error) {
    endCall(call, 'failed', explain(error));
  }
}

/** @param {Call} call */
async function acceptCall(call) {
  if (!app.chat || call.busy || call.phase !== 'ringing') return;
  app.tones.unlock();
  const current = focused();
  if (current && current !== call) await leaveCall(current);
  setFocus(call);
  call.busy = true;
  renderCall();
  try {
    await app.chat.accept({ inviteID: call.inviteID, data: JSON.stringify(CALL_DATA) });
    call.busy = false;
    if (call.phase === 'ringing') goActive(call);
  } catch (error) {
    call.busy = false;
    endCall(call, 'gone', explain(error));
  }
  scheduleLog();
}

/** @param {Call} call */
async function rejectCall(call) {
  if (!app.chat || call.busy || call.phase !== 'ringing') return;
  call.busy = true;
  renderCall();
  try {
    await app.chat.reject({ inviteID: call.inviteID, data: JSON.stringify(CALL_DATA) });
    endCall(call, 'you-declined', 'You declined', { quiet: true });
    toast(`Declined ${call.inviter}’s call`);
  } catch (error) {
    call.busy = false;
    endCall(call, 'gone', explain(error));
  }
}

/** @param {Call} call */
async function cancelCall(call) {
  if (!app.chat || call.phase !== 'ringing' || call.direction !== 'out') return;
  call.busy = true;
  renderCall();
  try {
    await app.chat.cancel({ inviteID: call.inviteID });
    endCall(call, 'you-cancelled', 'Call cancelled', { quiet: true });
    toast(`Call to ${peerOf(call)} cancelled`);
  } catch (error) {
    call.busy = false;
    if (/** @type {any} */ (error)?.code === ERROR_CODE.CANCEL_NOT_ACTIVE) {
      // It ended first (answered, declined, timed out): the event says how; wait briefly for it.
      setTimeout(() => {
        if (call.phase === 'ringing') endCall(call, 'gone', 'The call had already ended');
      }, 1500);
    } else {
      toast(`Couldn’t cancel: ${explain(error)}`, 'bad');
    }
    renderCall();
  }
}

/** @param {Call} call */
function hangUp(call) {
  const length = call.startedAt ? clock(Date.now() - call.startedAt) : '';
  stopRinging(call);
  endCall(call, 'hung-up', 'Call ended', { quiet: true });
  toast(length ? `Call with ${peerOf(call)} ended · ${length}` : 'Call ended');
}

/**
 * The inviter leaving a call stops those still being rung.
 * @param {Call} call
 */
function stopRinging(call) {
  if (call.direction === 'out' && app.chat && pendingInvitees(call).length > 0) {
    app.chat.cancel({ inviteID: call.inviteID }).catch(() => {});
  }
}

/**
 * Ends whatever the current call is, to take another one.
 * @param {Call} call
 */
async function leaveCall(call) {
  if (call.phase === 'active') hangUp(call);
  else if (call.phase === 'ringing' && call.direction === 'out') await cancelCall(call);
  else if (call.phase === 'ringing') {
    // Another incoming call is being taken: this one keeps ringing in the waiting list.
    app.focus = null;
  } else dismiss();
}

// ---------------------------------------------------------------------------------------------
// The call screen

function renderCall() {
  const call = focused();
  const screen = $('call');
  renderWaiting();
  updateTones();
  updateTitle();
  if (!call) {
    screen.hidden = true;
    document.body.classList.remove('has-call');
    return;
  }
  screen.hidden = false;
  document.body.classList.add('has-call');
  const state =
    call.phase === 'ended' ? 'ended' : call.phase === 'active' ? 'active' : call.direction === 'in' ? 'incoming' : 'outgoing';
  screen.dataset.state = state;
  screen.dataset.direction = call.direction;
  screen.dataset.inviteId = call.inviteID;
  screen.dataset.endReason = call.endReason;
  screen.dataset.group = call.groupID ? 'true' : 'false';

  const peer = peerOf(call);
  const endKinds = /** @type {Record<string, string>} */ ({
    missed: 'Missed call',
    cancelled: call.direction === 'in' ? 'Missed call' : 'Call cancelled',
    declined: 'Call declined',
    'no-answer': 'No answer',
    'answered-elsewhere': 'Call answered',
    'declined-elsewhere': 'Call declined',
    failed: 'Call failed',
  });
  const kinds = {
    incoming: call.groupID ? 'Incoming group call' : 'Incoming call',
    outgoing: call.groupID ? 'Group call' : 'Calling',
    active: call.groupID ? 'Group call' : 'In call',
    ended: endKinds[call.endReason] ?? 'Call ended',
  };
  $('call-kind').textContent = kinds[state];
  $('call-avatar').outerHTML = `<span id="call-avatar">${avatar(peer, { size: 'xl', group: Boolean(call.groupID) })}</span>`;
  $('call-title').textContent = peer;

  const status = $('call-status');
  if (state === 'incoming') {
    status.textContent = call.groupID ? `${call.inviter} is calling the group` : 'is calling you…';
    if (call.busy) status.textContent = 'Connecting…';
  } else if (state === 'outgoing') {
    status.textContent = call.busy ? 'Calling…' : 'Ringing…';
  } else if (state === 'active') {
    status.textContent = clock(Date.now() - call.startedAt);
  } else if (call.endReason.endsWith('-elsewhere')) {
    status.innerHTML = `${icon('devices')}<span>${esc(call.endText)}</span>`;
  } else {
    status.textContent = call.endText;
  }

  renderParticipants(call);
  renderActions(call, state);
  tick();
}

/** @param {Call} call */
function renderParticipants(call) {
  const list = $('call-people');
  if (!call.groupID) {
    list.innerHTML = '';
    list.hidden = true;
    return;
  }
  list.hidden = false;
  const labels = {
    inviter: 'calling',
    pending: 'ringing',
    accepted: 'joined',
    rejected: 'declined',
    timeout: 'no answer',
    cancelled: 'cancelled',
    left: 'left',
  };
  /** @type {[string, string][]} */
  const people = [];
  if (call.direction === 'in') people.push([call.inviter, 'inviter']);
  for (const user of call.invitees) {
    if (user !== app.me) people.push([user, call.states.get(user) ?? 'pending']);
  }
  list.innerHTML = people
    .map(
      ([user, s]) =>
        `<li class="part part-${s}" data-testid="call-participant" data-user="${esc(user)}" data-state="${s}">${avatar(user, { size: 'xs' })}<span>${esc(user)}</span><em>${labels[/** @type {keyof typeof labels} */ (s)] ?? s}</em></li>`,
    )
    .join('');
}

/**
 * @param {Call} call
 * @param {string} state
 */
function renderActions(call, state) {
  const disabled = call.busy ? ' disabled' : '';
  const button = (/** @type {string} */ action, /** @type {string} */ cls, /** @type {string} */ label, /** @type {string} */ glyph) =>
    `<div class="call-action"><button type="button" class="round ${cls}" data-action="${action}" data-testid="call-${action}" aria-label="${label}"${disabled}>${glyph}</button><span>${label}</span></div>`;
  const hangupIcon = icon('phone', 'icon-hangup');
  let html = '';
  if (state === 'incoming') {
    html = button('reject', 'round-red', 'Decline', hangupIcon) + button('accept', 'round-green pulse', 'Accept', icon('phone'));
  } else if (state === 'outgoing') {
    html = button('cancel', 'round-red', 'Cancel', hangupIcon);
  } else if (state === 'active') {
    html = button('hangup', 'round-red', 'Hang up', hangupIcon);
  } else {
    html = `<button type="button" class="btn btn-light" data-action="dismiss" data-testid="call-dismiss">Close</button>`;
    const callBack = call.direction === 'in' ? call.inviter : call.groupID ? '' : call.invitees[0];
    if (callBack && ['missed', 'cancelled', 'declined', 'no-answer'].includes(call.endReason)) {
      html += `<button type="button" class="btn btn-call-text" data-action="redial" data-testid="call-redial">${icon('phone')}Call ${esc(callBack)}</button>`;
    }
  }
  $('call-actions').innerHTML = html;
}

function renderWaiting() {
  const box = $('call-waiting');
  const waiting = [...app.calls.values()].filter(
    (c) => c.inviteID !== app.focus && c.direction === 'in' && c.phase === 'ringing',
  );
  box.innerHTML = waiting
    .map(
      (c) => `<div class="waiting" data-testid="waiting-call" data-invite-id="${esc(c.inviteID)}">
        ${avatar(c.groupID ? c.groupName : c.inviter, { size: 'sm', group: Boolean(c.groupID) })}
        <div class="waiting-text"><strong>${esc(c.inviter)}</strong><span>${c.groupID ? `is calling ${esc(c.groupName)}` : 'is also calling'}</span></div>
        <button type="button" class="round round-sm round-red" data-waiting="reject" data-id="${esc(c.inviteID)}" aria-label="Decline">${icon('phone', 'icon-hangup')}</button>
        <button type="button" class="round round-sm round-green" data-waiting="accept" data-id="${esc(c.inviteID)}" aria-label="Accept">${icon('phone')}</button>
      </div>`,
    )
    .join('');
  box.hidden = waiting.length === 0;
}

/** Countdown, progress ring and in-call timer: runs a few times a second. */
function tick() {
  expireStale();
  const call = focused();
  const countdown = $('call-countdown');
  const bar = /** @type {SVGCircleElement} */ (/** @type {unknown} */ ($('call-ring-bar')));
  const visual = $('call-visual');
  if (!call) return;
  const end = call.phase === 'ringing' ? deadline(call) : null;
  if (end === null) {
    countdown.hidden = true;
    visual.classList.remove('timed');
    delete countdown.dataset.remainingMs;
    delete countdown.dataset.seconds;
    if (call.phase === 'active') bar.style.strokeDashoffset = '0';
  } else {
    const remaining = Math.max(0, end - Date.now());
    const total = Math.max(1, (call.timeout > 0 ? call.timeout : 30) * 1000);
    const text = clock(Math.ceil(remaining / 1000) * 1000);
    countdown.hidden = false;
    countdown.dataset.remainingMs = String(Math.round(remaining));
    countdown.dataset.seconds = String(Math.ceil(remaining / 1000));
    const label = call.direction === 'in' ? 'Stops ringing in' : 'Rings for';
    const html = `<span>${label}</span> <b data-testid="call-countdown-value">${text}</b>`;
    if (countdown.innerHTML !== html) countdown.innerHTML = html;
    countdown.classList.toggle('urgent', remaining <= 5000);
    visual.classList.add('timed');
    bar.style.strokeDasharray = String(RING_CIRCUMFERENCE);
    bar.style.strokeDashoffset = String(RING_CIRCUMFERENCE * (1 - Math.min(1, remaining / total)));
  }
  if (call.phase === 'active') {
    const text = clock(Date.now() - call.startedAt);
    const status = $('call-status');
    if (status.textContent !== text) status.textContent = text;
  }
}

/**
 * The server times calls out and says so; if that word never came (events lost while
 * disconnected), a call still ringing well past its deadline is ended here.
 */
function expireStale() {
  for (const call of [...app.calls.values()]) {
    if (call.phase !== 'ringing' || call.busy) continue;
    const end = deadline(call);
    if (end === null || Date.now() < end + STALE_GRACE_MS) continue;
    if (call.direction === 'in') endCall(call, 'missed', `You missed ${call.inviter}’s call`);
    else endCall(call, 'no-answer', call.groupID ? 'No one answered' : `${call.invitees[0]} didn’t answer`);
  }
}

function updateTones() {
  const call = focused();
  const ringingIn = [...app.calls.values()].some((c) => c.direction === 'in' && c.phase === 'ringing');
  if (call && call.phase === 'ringing' && call.direction === 'out') app.tones.ringback();
  else if (ringingIn && !(call && call.phase === 'active')) app.tones.ring();
  else app.tones.stop();
}

function updateTitle() {
  const ringing = [...app.calls.values()].find((c) => c.direction === 'in' && c.phase === 'ringing');
  document.title = ringing ? `📞 ${ringing.inviter} is calling…` : app.me ? `Beckon · ${app.me}` : 'Beckon';
}

// ---------------------------------------------------------------------------------------------
// People and groups

async function refreshPeople() {
  const chat = app.chat;
  if (!chat) return;
  if (app.devMode) {
    try {
      const response = await fetch('/dev/users', { cache: 'no-store' });
      if (response.ok) {
        const body = await response.json();
        if (app.chat !== chat) return;
        app.people = (body.users ?? []).filter((/** @type {string} */ user) => user !== app.me);
      }
    } catch {
      // Keep the last list.
    }
  }
  renderPeople();
}

/** Everyone to show: the server's accounts (dev mode) and whoever appears in the call log. */
function knownPeople() {
  const names = new Set(app.people);
  for (const record of app.log) {
    for (const user of [record.inviter, ...record.invitees]) if (user !== app.me) names.add(user);
  }
  return [...names].sort((a, b) => a.localeCompare(b));
}

function renderPeople() {
  const list = $('people');
  const people = knownPeople();
  /** @type {Map<string, import('./calllog.js').CallRecord>} */
  const last = new Map();
  for (const record of app.log) {
    if (record.groupID) continue;
    for (const user of [record.inviter, ...record.invitees]) if (!last.has(user)) last.set(user, record);
  }
  $('people-datalist').innerHTML = people.map((user) => `<option value="${esc(user)}"></option>`).join('');
  if (people.length === 0) {
    list.innerHTML = `<li class="empty" data-testid="people-empty">
      <div class="empty-art">${icon('users')}</div>
      <strong>No one else is here yet</strong>
      <span>${app.devMode ? 'Open this page in another window and sign in with a different name — they’ll show up here.' : 'Type a user ID above to call someone.'}</span>
    </li>`;
    return;
  }
  list.innerHTML = people
    .map((user) => {
      const record = last.get(user);
      let sub = 'No calls yet';
      if (record) {
        const entry = describeCall(record, app.me);
        sub = `${entry.kind === 'missed' ? 'Missed call' : entry.detail} · ${relativeTime(record.time, serverNow())}`;
      }
      return `<li class="row" data-testid="person" data-user="${esc(user)}">
        ${avatar(user)}
        <div class="row-main"><span class="row-title">${esc(user)}</span><span class="row-sub">${esc(sub)}</span></div>
        <button type="button" class="round round-sm round-green" data-action="call" data-user="${esc(user)}" data-testid="person-call" title="Call ${esc(user)}" aria-label="Call ${esc(user)}">${icon('phone')}</button>
      </li>`;
    })
    .join('');
}

async function refreshGroups() {
  const chat = app.chat;
  if (!chat) return;
  try {
    const result = await chat.getGroupList();
    if (app.chat !== chat) return;
    app.groups = new Map(result.data.groupList.map((group) => [group.groupID, group]));
  } catch (error) {
    if (app.chat === chat) toast(`Couldn’t load your groups: ${explain(error)}`, 'bad');
  }
  renderGroups();
  renderLog();
}

/**
 * @param {string} groupID
 * @param {string} [fallback]
 */
function groupName(groupID, fallback) {
  if (!groupID) return '';
  return app.groups.get(groupID)?.name || fallback || groupID;
}

function renderGroups() {
  const list = $('groups');
  const groups = [...app.groups.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  if (groups.length === 0) {
    list.innerHTML = `<li class="empty empty-sm" data-testid="groups-empty">
      <span>Make a group to ring several people at once.</span>
    </li>`;
    return;
  }
  list.innerHTML = groups
    .map(
      (group) => `<li class="row" data-testid="group-item" data-group="${esc(group.groupID)}">
        ${avatar(group.name || group.groupID, { group: true })}
        <div class="row-main"><span class="row-title">${esc(group.name || group.groupID)}</span>
        <span class="row-sub">${group.memberCount} member${group.memberCount === 1 ? '' : 's'}${group.ownerID === app.me ? ' · you own it' : ''}</span></div>
        <button type="button" class="round round-sm round-green" data-action="group-call" data-group="${esc(group.groupID)}" data-testid="group-call" title="Group call" aria-label="Call ${esc(group.name)}">${icon('phone')}</button>
      </li>`,
    )
    .join('');
}

function openGroupDialog() {
  const dialog = /** @type {HTMLDialogElement} */ ($('group-dialog'));
  /** @type {HTMLInputElement} */ ($('group-name')).value = '';
  /** @type {HTMLInputElement} */ ($('group-extra')).value = '';
  $('group-error').hidden = true;
  const people = knownPeople();
  $('group-pick').innerHTML = people.length
    ? people
        .map(
          (user) => `<label class="pick-item" data-testid="group-member-option" data-user="${esc(user)}">
            <input type="checkbox" value="${esc(user)}">${avatar(user, { size: 'xs' })}<span>${esc(user)}</span></label>`,
        )
        .join('')
    : '<p class="muted">No one else is here yet; add user IDs below.</p>';
  dialog.showModal();
  /** @type {HTMLInputElement} */ ($('group-name')).focus();
}

/** @param {SubmitEvent} event */
async function createGroup(event) {
  event.preventDefault();
  if (!app.chat) return;
  const name = /** @type {HTMLInputElement} */ ($('group-name')).value.trim();
  const picked = [...document.querySelectorAll('#group-pick input:checked')].map((el) => /** @type {HTMLInputElement} */ (el).value);
  const extra = /** @type {HTMLInputElement} */ ($('group-extra')).value
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const members = [...new Set([...picked, ...extra])].filter((user) => user !== app.me);
  const error = $('group-error');
  if (!name) {
    error.textContent = 'Give the group a name.';
    error.hidden = false;
    return;
  }
  const submit = /** @type {HTMLButtonElement} */ (document.querySelector('[data-testid=group-create]'));
  submit.disabled = true;
  try {
    const result = await app.chat.createGroup({ name, memberList: members.map((userID) => ({ userID })) });
    /** @type {HTMLDialogElement} */ ($('group-dialog')).close();
    toast(`Group “${result.data.group.name}” created`, 'good');
    await refreshGroups();
  } catch (err) {
    error.textContent = explain(err);
    error.hidden = false;
  } finally {
    submit.disabled = false;
  }
}

/**
 * @param {string} groupID
 * @param {string[]} [preselect]
 */
async function openGroupCall(groupID, preselect) {
  if (!app.chat) return;
  if (busyCall()) {
    toast('Finish your current call first.');
    return;
  }
  const dialog = /** @type {HTMLDialogElement} */ ($('gcall-dialog'));
  const name = groupName(groupID);
  $('gcall-title').textContent = `Call ${name}`;
  $('gcall-error').hidden = true;
  $('gcall-pick').innerHTML = '<p class="muted">Loading members…</p>';
  dialog.dataset.group = groupID;
  dialog.showModal();
  try {
    const result = await app.chat.getGroupMemberList({ groupID });
    const members = result.data.memberList.map((m) => m.userID).filter((user) => user !== app.me);
    if (members.length === 0) {
      $('gcall-pick').innerHTML = '<p class="muted">You’re the only member. Add people to the group first.</p>';
      return;
    }
    $('gcall-pick').innerHTML = members
      .map((user) => {
        const checked = !preselect || preselect.includes(user) ? ' checked' : '';
        return `<label class="pick-item" data-testid="group-call-member" data-user="${esc(user)}">
          <input type="checkbox" value="${esc(user)}"${checked}>${avatar(user, { size: 'xs' })}<span>${esc(user)}</span></label>`;
      })
      .join('');
    updateGroupCallButton();
  } catch (error) {
    $('gcall-pick').innerHTML = '';
    $('gcall-error').textContent = explain(error);
    $('gcall-error').hidden = false;
  }
}

function updateGroupCallButton() {
  const count = document.querySelectorAll('#gcall-pick input:checked').length;
  const start = /** @type {HTMLButtonElement} */ ($('gcall-start'));
  start.disabled = count === 0;
  start.innerHTML = `${icon('phone')}${count === 0 ? 'Call' : `Ring ${count} ${count === 1 ? 'person' : 'people'}`}`;
}

/** @param {SubmitEvent} event */
function startGroupCallFromDialog(event) {
  event.preventDefault();
  const dialog = /** @type {HTMLDialogElement} */ ($('gcall-dialog'));
  const picked = [...document.querySelectorAll('#gcall-pick input:checked')].map((el) => /** @type {HTMLInputElement} */ (el).value);
  if (picked.length === 0) return;
  dialog.close();
  startGroupCall(dialog.dataset.group ?? '', picked);
}

// ---------------------------------------------------------------------------------------------
// Call log

function scheduleLog() {
  clearTimeout(app.logTimer);
  app.logTimer = setTimeout(() => refreshLog(), 300);
}

async function refreshLog() {
  const chat = app.chat;
  if (!chat) return;
  if (app.logRunning) {
    app.logDirty = true;
    return;
  }
  app.logRunning = true;
  try {
    const conversations = (await chat.getConversationList()).data.conversationList.slice(0, LOG_CONVERSATIONS);
    const pages = await Promise.all(
      conversations.map((c) =>
        chat.getMessageList({ conversationID: c.conversationID, count: LOG_MESSAGES }).then(
          (r) => r.data.messageList,
          () => [],
        ),
      ),
    );
    if (app.chat !== chat) return;
    app.log = collectCalls(pages.flat(), (m) => chat.getSignalingInfo(m)).slice(0, LOG_ENTRIES);
    app.logLoaded = true;
    renderLog();
    renderPeople();
  } catch (error) {
    if (app.chat === chat && !app.logLoaded) {
      $('log').innerHTML = `<li class="empty"><strong>Couldn’t load your calls</strong><span>${esc(explain(error))}</span></li>`;
    }
  } finally {
    app.logRunning = false;
    if (app.logDirty) {
      app.logDirty = false;
      scheduleLog();
    }
  }
}

function renderLog() {
  const list = $('log');
  if (!app.logLoaded) return;
  if (app.log.length === 0) {
    list.innerHTML = `<li class="empty" data-testid="call-log-empty">
      <div class="empty-art">${icon('clock')}</div>
      <strong>No calls yet</strong>
      <span>Calls you make and get show up here.</span>
    </li>`;
    return;
  }
  const now = serverNow();
  const glyphs = {
    incoming: icon('phoneIn'),
    outgoing: icon('phoneOut'),
    missed: icon('phoneMissed'),
    declined: icon('phoneMissed'),
    unanswered: icon('phoneOut'),
    ringing: icon('phone'),
    other: icon('users'),
  };
  list.innerHTML = app.log
    .map((record) => {
      const entry = describeCall(record, app.me, record.groupID ? groupName(record.groupID) : '');
      const back = entry.callBack
        ? `<button type="button" class="icon-btn" data-action="callback" data-invite-id="${esc(record.inviteID)}" data-testid="call-log-callback" title="Call back" aria-label="Call back">${icon('phone')}</button>`
        : '';
      return `<li class="row log-row kind-${entry.kind}" data-testid="call-log-item" data-kind="${entry.kind}" data-invite-id="${esc(record.inviteID)}">
        ${avatar(entry.peer, { group: entry.group })}
        <div class="row-main">
          <span class="row-title" data-testid="call-log-title">${esc(entry.title)}</span>
          <span class="row-sub"><span class="kind-icon">${glyphs[entry.kind]}</span><span data-testid="call-log-detail">${esc(entry.detail)}</span></span>
        </div>
        <time class="row-time" datetime="${new Date(record.time * 1000).toISOString()}">${esc(relativeTime(record.time, now))}</time>
        ${back}
      </li>`;
    })
    .join('');
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wireStatic() {
  $('people-refresh').innerHTML = icon('refresh');
  $('log-refresh').innerHTML = icon('refresh');
  $('logout').innerHTML = icon('logout');
  $('new-group').innerHTML = `${icon('plus')}New group`;
  /** @type {HTMLButtonElement} */ (document.querySelector('[data-testid=dial-submit]')).innerHTML = icon('phone');

  const ring = /** @type {HTMLInputElement} */ ($('ring-timeout'));
  const savedRing = Number(localStorage.getItem(RING_KEY));
  if (savedRing >= 1 && savedRing <= 600) ring.value = String(savedRing);
  ring.addEventListener('change', () => localStorage.setItem(RING_KEY, String(ringSeconds())));

  const sound = $('sound');
  const renderSound = () => {
    sound.innerHTML = app.tones.enabled ? icon('volume') : icon('mute');
    sound.title = app.tones.enabled ? 'Mute ringtone' : 'Unmute ringtone';
    sound.setAttribute('aria-pressed', String(app.tones.enabled));
  };
  app.tones.setEnabled(localStorage.getItem(SOUND_KEY) !== 'off');
  renderSound();
  sound.addEventListener('click', () => {
    app.tones.setEnabled(!app.tones.enabled);
    localStorage.setItem(SOUND_KEY, app.tones.enabled ? 'on' : 'off');
    app.tones.unlock();
    renderSound();
    updateTones();
  });
  document.addEventListener('pointerdown', () => app.tones.unlock(), { capture: true });

  $('dev-login').addEventListener('submit', (event) => {
    event.preventDefault();
    app.tones.unlock();
    const userID = /** @type {HTMLInputElement} */ ($('login-user')).value.trim();
    if (userID) signIn({ userID });
  });
  $('login-suggest-list').addEventListener('click', (event) => {
    const chip = /** @type {HTMLElement} */ (event.target).closest('[data-user]');
    if (!chip) return;
    /** @type {HTMLInputElement} */ ($('login-user')).value = /** @type {HTMLElement} */ (chip).dataset.user ?? '';
    app.tones.unlock();
    signIn({ userID: /** @type {HTMLElement} */ (chip).dataset.user ?? '' });
  });
  $('manual-login').addEventListener('submit', (event) => {
    event.preventDefault();
    app.tones.unlock();
    const userID = /** @type {HTMLInputElement} */ ($('manual-user')).value.trim();
    const SDKAppID = Number(/** @type {HTMLInputElement} */ ($('manual-appid')).value.trim());
    const userSig = /** @type {HTMLTextAreaElement} */ ($('manual-sig')).value.trim();
    if (!Number.isSafeInteger(SDKAppID) || SDKAppID <= 0) {
      loginError('SDKAppID is a positive number, like 1400000001.');
      return;
    }
    signIn({ userID, SDKAppID, userSig });
  });
  $('logout').addEventListener('click', () => signOut());
  $('people-refresh').addEventListener('click', () => {
    refreshPeople();
    refreshGroups();
  });
  $('log-refresh').addEventListener('click', () => refreshLog());
  $('dial').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = /** @type {HTMLInputElement} */ ($('dial-input'));
    const target = input.value.trim();
    if (target) {
      input.value = '';
      startCall(target);
    }
  });
  $('people').addEventListener('click', (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest('[data-action=call]');
    if (button) startCall(/** @type {HTMLElement} */ (button).dataset.user ?? '');
  });
  $('groups').addEventListener('click', (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest('[data-action=group-call]');
    if (button) openGroupCall(/** @type {HTMLElement} */ (button).dataset.group ?? '');
  });
  $('log').addEventListener('click', (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest('[data-action=callback]');
    if (!button) return;
    const record = app.log.find((r) => r.inviteID === /** @type {HTMLElement} */ (button).dataset.inviteId);
    if (!record) return;
    const target = describeCall(record, app.me).callBack;
    if (!target) return;
    if ('userID' in target) startCall(target.userID);
    else openGroupCall(target.groupID, target.inviteeList);
  });
  $('new-group').addEventListener('click', () => openGroupDialog());
  $('group-form').addEventListener('submit', (event) => createGroup(/** @type {SubmitEvent} */ (event)));
  $('gcall-form').addEventListener('submit', (event) => startGroupCallFromDialog(/** @type {SubmitEvent} */ (event)));
  $('gcall-pick').addEventListener('change', () => updateGroupCallButton());
  for (const button of document.querySelectorAll('dialog [data-close]')) {
    button.addEventListener('click', () => /** @type {HTMLDialogElement} */ (button.closest('dialog')).close());
  }

  $('call-actions').addEventListener('click', (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest('[data-action]');
    const call = focused();
    if (!button || !call) return;
    switch (/** @type {HTMLElement} */ (button).dataset.action) {
      case 'accept':
        acceptCall(call);
        break;
      case 'reject':
        rejectCall(call);
        break;
      case 'cancel':
        cancelCall(call);
        break;
      case 'hangup':
        hangUp(call);
        break;
      case 'dismiss':
        dismiss();
        break;
      case 'redial': {
        const target = call.direction === 'in' ? call.inviter : call.invitees[0];
        dismiss();
        startCall(target);
        break;
      }
      default:
    }
  });
  $('call-waiting').addEventListener('click', (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest('[data-waiting]');
    if (!button) return;
    const call = app.calls.get(/** @type {HTMLElement} */ (button).dataset.id ?? '');
    if (!call) return;
    if (/** @type {HTMLElement} */ (button).dataset.waiting === 'accept') acceptCall(call);
    else rejectCall(call);
  });
  document.addEventListener('keydown', (event) => {
    const call = focused();
    if (event.key === 'Escape' && call && call.phase === 'ended') dismiss();
  });
  window.addEventListener('focus', () => {
    if (app.chat) refreshPeople();
  });
  setInterval(tick, 200);
}

boot().catch((error) => {
  console.error(error);
  $('boot').hidden = false;
  $('boot-text').textContent = `Beckon could not start: ${error?.message ?? error}`;
});
