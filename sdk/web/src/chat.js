// One chat instance: the connection to a Beckon server (login, reconnect and resume), the
// calls of Tencent Cloud Chat's Signaling API, and event dispatch to the app's listeners.

import { BeckonError } from './errors.js';
import { ERROR_CODE, EVENT, LIMITS, SUBPROTOCOL, TSignaling, TYPES } from './constants.js';
import { getSignalingInfo } from './signaling-info.js';
import * as check from './validate.js';

/** @typedef {import('./signaling-info.js').SignalingInfo} SignalingInfo */
// The public types are those of index.d.ts, so the implementation is checked against them.
/** @typedef {import('../index.js').SignalingEventName} SignalingEventName */
/** @typedef {import('../index.js').SdkEventName} SdkEventName */
/** @typedef {import('../index.js').SignalingResponse} SignalingResponse */
/** @typedef {import('../index.js').Message} Message */
/** @typedef {import('../index.js').LoginData} LoginData */
/** @typedef {import('../index.js').GroupProfile} GroupProfile */
/** @typedef {(event: {name: string, data: any}) => void} AnyHandler */
/**
 * @template {SignalingEventName} N
 * @template C
 * @typedef {import('../index.js').SignalingHandler<N, C>} SignalingHandler
 */
/**
 * @template {SdkEventName} N
 * @template C
 * @typedef {import('../index.js').SdkHandler<N, C>} SdkHandler
 */
/**
 * @template D
 * @typedef {import('../index.js').Response<D>} Response
 */

/**
 * What a WebSocket implementation must offer: the browser's `WebSocket`, Node's global one
 * (Node 22+), or the `ws` package's.
 * @typedef {object} SocketLike
 * @property {number} readyState
 * @property {(text: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {(() => void)} [terminate] `ws` only: drop the TCP connection at once.
 * @property {((event: any) => void) | null} onopen
 * @property {((event: any) => void) | null} onmessage
 * @property {((event: any) => void) | null} onclose
 * @property {((event: any) => void) | null} onerror
 */

/** @typedef {new (url: string, protocols?: string | string[]) => SocketLike} SocketConstructor */

/**
 * @typedef {object} ChatOptions
 * @property {number} SDKAppID The app's SDKAppID (the server's).
 * @property {string} [server] Server address: `http(s)://host[:port][/prefix]` (the WebSocket
 *   is `ws(s)://host[:port][/prefix]/ws`) or the WebSocket URL itself, `ws(s)://...`. Default
 *   `http://127.0.0.1:7420`.
 * @property {SocketConstructor} [WebSocket] WebSocket constructor to use. Default:
 *   `globalThis.WebSocket`, else the `ws` package (Node 20).
 * @property {number} [requestTimeout] How long a call may take, in ms, counting any wait for a
 *   reconnect. Default 10000.
 * @property {number} [pingInterval] Heartbeat period in ms (`ping` operation); a connection
 *   silent for twice as long is treated as dropped. 0 turns it off. Default 25000.
 */

/**
 * @typedef {object} ListenerEntry
 * @property {(event: {name: string, data: any}) => void} handler
 * @property {unknown} context
 */

/**
 * @typedef {object} Waiter
 * @property {number} id
 * @property {string} text
 * @property {(data: any) => void} resolve
 * @property {(error: BeckonError) => void} reject
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 * @property {boolean} done
 */

/**
 * @typedef {object} Session
 * @property {string} userID
 * @property {string} userSig
 * @property {boolean} stopped
 * @property {boolean} loggedIn True once a login succeeded in this session.
 * @property {boolean} ready True once SDK_READY was emitted in this session.
 * @property {Connection | null} attempt The connection being opened or logged in on.
 * @property {(() => void) | null} wake Cuts a backoff wait short (at logout).
 * @property {Promise<void> | null} hold Test hook: the next reconnect waits for it.
 */

/**
 * @typedef {object} LoginResult
 * @property {string} userID
 * @property {number} seq
 * @property {boolean} resumed
 * @property {boolean} resync
 * @property {number} serverTime
 * @property {number} eventRetentionSeconds
 */

/** @type {Set<string>} */
const SIGNALING_EVENTS = new Set([
  TSignaling.NEW_INVITATION_RECEIVED,
  TSignaling.INVITEE_ACCEPTED,
  TSignaling.INVITEE_REJECTED,
  TSignaling.INVITATION_CANCELLED,
  TSignaling.INVITATION_TIMEOUT,
  TSignaling.INVITATION_MODIFIED,
]);

/** @type {Set<string>} */
const SDK_EVENTS = new Set(Object.values(EVENT));

/** Server codes after which a failed re-login is worth another try. @type {Set<number>} */
const RETRYABLE_LOGIN_CODES = new Set([
  ERROR_CODE.RATE_LIMITED,
  ERROR_CODE.SHUTTING_DOWN,
  ERROR_CODE.OVERLOADED,
  ERROR_CODE.INTERNAL,
]);

/** SDK-local code for an unreadable frame from the server (ERROR event). */
const PROTOCOL_ERROR = 2802;

/** Largest frame the server reads (a larger one closes the connection with 4100). */
const MAX_FRAME_BYTES = 65536;
/** Largest `offlinePushInfo`, serialized. */
const MAX_OFFLINE_PUSH_INFO_BYTES = 4096;

const BACKOFF_INITIAL_MS = 100;
const BACKOFF_MAX_MS = 5000;
const OPEN = 1;

/**
 * The WebSocket URL for a server address.
 * @param {string} server
 * @returns {string}
 */
export function webSocketURL(server) {
  let url;
  try {
    url = new URL(server);
  } catch {
    throw new TypeError(`server must be a URL like http://127.0.0.1:7420 or ws://127.0.0.1:7420/ws, got ${JSON.stringify(server)}`);
  }
  const scheme = url.protocol;
  if (scheme === 'http:' || scheme === 'https:') {
    url.protocol = scheme === 'https:' ? 'wss:' : 'ws:';
    if (!url.pathname.endsWith('/ws')) {
      url.pathname = `${url.pathname.replace(/\/+$/, '')}/ws`;
    }
  } else if (scheme === 'ws:' || scheme === 'wss:') {
    if (url.pathname === '' || url.pathname === '/') {
      url.pathname = '/ws';
    }
  } else {
    throw new TypeError(`server must be an http(s):// or ws(s):// URL, got ${JSON.stringify(server)}`);
  }
  url.hash = '';
  return url.toString();
}

/** A random UUID v4. */
function randomUUID() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') {
    return c.randomUUID();
  }
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') {
    c.getRandomValues(bytes);
  } else {
    for (let i = 0; i < 16; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Reconnect delay for attempt `attempt` (0-based), "equal jitter": a cap of 100 ms doubling per
 * attempt up to 5 s, of which a random half is waited.
 * @param {number} attempt
 */
export function backoffDelay(attempt) {
  const cap = Math.min(BACKOFF_INITIAL_MS * 2 ** Math.min(attempt, 30), BACKOFF_MAX_MS);
  return cap / 2 + Math.random() * (cap / 2);
}

/** @param {number | null | undefined} code */
function isFatalClose(code) {
  return typeof code === 'number' && code >= 4100 && code <= 4199;
}

/** @param {unknown} error */
function asBeckonError(error) {
  if (error instanceof BeckonError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BeckonError(ERROR_CODE.NETWORK_ERROR, message);
}

/** One WebSocket and the requests waiting on it. */
class Connection {
  /** @param {SocketLike} sock */
  constructor(sock) {
    this.sock = sock;
    /** @type {Map<number, Waiter>} */
    this.pending = new Map();
    /** Events that came before the login result was handled. @type {any[]} */
    this.early = [];
    /** Logged in and serving. */
    this.ready = false;
    this.closed = false;
    /** @type {number | null} */
    this.closeCode = null;
    this.closeReason = '';
    this.openedAt = 0;
    this.lastHeard = Date.now();
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
  }
}

/**
 * A chat instance, as `TencentCloudChat.create()` returns one.
 */
export class Chat {
  /** @param {ChatOptions} options */
  constructor(options) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('create: options must be an object with SDKAppID and server');
    }
    const { SDKAppID, server = 'http://127.0.0.1:7420' } = options;
    if (typeof SDKAppID !== 'number' || !Number.isSafeInteger(SDKAppID) || SDKAppID <= 0) {
      throw new TypeError(`create: SDKAppID must be a positive integer, got ${check.describe(SDKAppID)}`);
    }
    if (typeof server !== 'string') {
      throw new TypeError('create: server must be a string URL');
    }
    const { requestTimeout = 10000, pingInterval = 25000 } = options;
    if (typeof requestTimeout !== 'number' || !(requestTimeout > 0) || !Number.isFinite(requestTimeout)) {
      throw new TypeError(`create: requestTimeout must be a positive number of ms, got ${check.describe(requestTimeout)}`);
    }
    if (typeof pingInterval !== 'number' || !(pingInterval >= 0) || !Number.isFinite(pingInterval)) {
      throw new TypeError(`create: pingInterval must be a number of ms (0: off), got ${check.describe(pingInterval)}`);
    }
    if (options.WebSocket !== undefined && typeof options.WebSocket !== 'function') {
      throw new TypeError('create: WebSocket must be a constructor');
    }
    /** @readonly */
    this.SDKAppID = SDKAppID;
    /** The WebSocket URL. @readonly */
    this.url = webSocketURL(server);
    /** Stable id of this SDK instance (device), sent at every login. @readonly */
    this.instanceID = randomUUID();
    /** @private */
    this._WebSocket = options.WebSocket;
    /** @private */
    this._requestTimeout = requestTimeout;
    /** @private */
    this._pingInterval = pingInterval;
    /** @private @type {Map<string, ListenerEntry[]>} */
    this._listeners = new Map();
    /** @private @type {Session | null} */
    this._session = null;
    /** @private @type {Connection | null} */
    this._conn = null;
    /** Requests waiting for a connection. @private @type {Waiter[]} */
    this._queue = [];
    /** Highest event seq processed; null before the first login and after logout. @private @type {number | null} */
    this._lastSeq = null;
    /** @private */
    this._nextID = 1;
    /** @private @type {string} */
    this._netState = TYPES.NET_STATE_DISCONNECTED;
    /** The user `_lastSeq` belongs to. @private @type {string | null} */
    this._lastUserID = null;
    /** Reconnect attempts since the last connection that lived a while. @private */
    this._attempt = 0;
  }

  // ---------------------------------------------------------------------------------------
  // Listeners

  /**
   * Listens for a signaling event (a value of `TSignaling`). The handler gets `{name, data}`
   * with `context` as `this`.
   * @template {SignalingEventName} N
   * @template [C=unknown]
   * @param {N} eventName
   * @param {SignalingHandler<N, C>} handler
   * @param {C} [context]
   * @returns {Promise<{code: 0}>}
   */
  async addSignalingListener(eventName, handler, context) {
    checkListener(eventName, handler, SIGNALING_EVENTS, 'TSignaling');
    this._add(eventName, /** @type {AnyHandler} */ (handler), context);
    return { code: 0 };
  }

  /**
   * Stops a listener added with `addSignalingListener` (the same handler and, if given, the
   * same context).
   * @template {SignalingEventName} N
   * @template [C=unknown]
   * @param {N} eventName
   * @param {SignalingHandler<N, C>} handler
   * @param {C} [context]
   * @returns {Promise<{code: 0}>}
   */
  async removeSignalingListener(eventName, handler, context) {
    checkListener(eventName, handler, SIGNALING_EVENTS, 'TSignaling');
    this._remove(eventName, /** @type {AnyHandler} */ (handler), context);
    return { code: 0 };
  }

  /**
   * Listens for an SDK event (a value of `EVENT`). The handler gets `{name, data}` with
   * `context` as `this`. Throws a TypeError for an unknown event name or a non-function.
   * @template {SdkEventName} N
   * @template [C=unknown]
   * @param {N} eventName
   * @param {SdkHandler<N, C>} handler
   * @param {C} [context]
   */
  on(eventName, handler, context) {
    const problem = listenerProblem(eventName, handler, SDK_EVENTS, 'EVENT');
    if (problem) throw new TypeError(problem);
    this._add(eventName, /** @type {AnyHandler} */ (handler), context);
  }

  /**
   * Stops a listener added with `on`.
   * @template {SdkEventName} N
   * @template [C=unknown]
   * @param {N} eventName
   * @param {SdkHandler<N, C>} handler
   * @param {C} [context]
   */
  off(eventName, handler, context) {
    this._remove(eventName, /** @type {AnyHandler} */ (handler), context);
  }

  /**
   * @private
   * @param {string} name
   * @param {AnyHandler} handler
   * @param {unknown} context
   */
  _add(name, handler, context) {
    const list = this._listeners.get(name) ?? [];
    list.push({ handler, context });
    this._listeners.set(name, list);
  }

  /**
   * @private
   * @param {string} name
   * @param {AnyHandler} handler
   * @param {unknown} context
   */
  _remove(name, handler, context) {
    const list = this._listeners.get(name);
    if (!list) return;
    const kept = list.filter(
      (entry) => !(entry.handler === handler && (context === undefined || entry.context === context)),
    );
    if (kept.length === 0) this._listeners.delete(name);
    else this._listeners.set(name, kept);
  }

  /**
   * Calls every listener of `name`, in the order they were added. A throwing handler is
   * reported on the console and does not stop the others.
   * @private
   * @param {string} name
   * @param {any} data
   */
  _emit(name, data) {
    const list = this._listeners.get(name);
    if (!list) return;
    const event = { name, data };
    for (const entry of [...list]) {
      try {
        entry.handler.call(entry.context, event);
      } catch (error) {
        console.error(`beckon: a listener of ${name} threw`, error);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Session

  /**
   * Logs in and keeps the connection up: when it drops, the SDK reconnects with backoff and
   * resumes from the last event it processed; the app only sees `NET_STATE_CHANGE`.
   * @param {{userID: string, userSig: string}} options
   * @returns {Promise<Response<LoginData>>}
   */
  async login(options) {
    const opts = check.options(options, 'login');
    const userID = check.userID(opts.userID);
    if (typeof opts.userSig !== 'string' || opts.userSig.length === 0) {
      throw check.invalid('userSig must be a non-empty string');
    }
    const userSig = opts.userSig;
    const current = this._session;
    if (current) {
      if (current.userID === userID && current.loggedIn) {
        // Logged in already (maybe reconnecting): keep the newer userSig for re-logins.
        current.userSig = userSig;
        return { code: 0, data: { repeatLogin: true, userID } };
      }
      throw new BeckonError(
        ERROR_CODE.ALREADY_LOGGED_IN,
        current.userID === userID
          ? 'a login is already in progress'
          : `already logged in as ${current.userID}; log out first`,
      );
    }
    if (this._lastSeq !== null && this._lastUserID !== userID) {
      // Sequence numbers belong to a user: never resume another user's.
      this._lastSeq = null;
    }
    /** @type {Session} */
    const session = { userID, userSig, stopped: false, loggedIn: false, ready: false, attempt: null, wake: null, hold: null };
    this._session = session;
    this._lastUserID = userID;
    this._attempt = 0;
    this._setNetState(TYPES.NET_STATE_CONNECTING);
    let outcome;
    try {
      outcome = await this._connectAndLogin(session);
    } catch (error) {
      if (session.stopped && this._session !== session) {
        throw new BeckonError(ERROR_CODE.NOT_LOGGED_IN, 'logged out while the login was in progress');
      }
      const failure = asBeckonError(error);
      if (this._session === session) {
        session.stopped = true;
        this._session = null;
        this._failQueue(ERROR_CODE.NOT_LOGGED_IN, `not logged in: ${failure.message}`);
        this._setNetState(TYPES.NET_STATE_DISCONNECTED);
      }
      throw failure;
    }
    if (session.stopped) {
      this._closeConnection(outcome.conn, 1000);
      throw new BeckonError(ERROR_CODE.NOT_LOGGED_IN, 'logged out while the login was in progress');
    }
    this._loggedIn(session, outcome.conn, outcome.result);
    return { code: 0, data: { repeatLogin: false, ...outcome.result } };
  }

  /**
   * Logs out, closes the connection and stops reconnecting. Requests still waiting are
   * rejected. The next login is a fresh one (pending invitations are replayed).
   * @returns {Promise<Response<{}>>}
   */
  async logout() {
    const session = this._session;
    if (!session) {
      this._lastSeq = null;
      return { code: 0, data: {} };
    }
    session.stopped = true;
    this._session = null;
    session.wake?.();
    this._failQueue(ERROR_CODE.NOT_LOGGED_IN, 'logged out');
    if (session.attempt) {
      this._closeConnection(session.attempt, 1000);
    }
    const conn = this._conn;
    if (conn) {
      this._conn = null;
      // No more events from here on; its loss is not a loss.
      conn.ready = false;
      this._stopPing(conn);
      try {
        await this._send(conn, 'logout', {});
      } catch {
        // Leaving anyway.
      }
      this._closeConnection(conn, 1000);
    }
    this._lastSeq = null;
    this._setNetState(TYPES.NET_STATE_DISCONNECTED);
    if (session.ready) {
      this._emit(EVENT.SDK_NOT_READY, {});
    }
    return { code: 0, data: {} };
  }

  /**
   * Logs out and forgets every listener.
   * @returns {Promise<Response<{}>>}
   */
  async destroy() {
    const result = await this.logout();
    this._listeners.clear();
    return result;
  }

  /** The logged-in userID, or `''`. */
  getLoginUser() {
    return this._session?.userID ?? '';
  }

  /** True after SDK_READY while logged in and connected. */
  isReady() {
    return this._session !== null && this._session.ready && this._conn !== null;
  }

  /**
   * Opens a connection and logs in on it, within the request timeout.
   * @private
   * @param {Session} session
   * @returns {Promise<{conn: Connection, result: LoginResult}>}
   */
  async _connectAndLogin(session) {
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    let timedOut = false;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        if (session.attempt) this._abandon(session.attempt);
        reject(new BeckonError(ERROR_CODE.REQUEST_TIMEOUT, `no login answer from ${this.url} in ${this._requestTimeout} ms`));
      }, this._requestTimeout);
    });
    const attempt = (async () => {
      const conn = await this._open(session);
      if (session.stopped) {
        this._closeConnection(conn, 1000);
        throw new BeckonError(ERROR_CODE.NOT_LOGGED_IN, 'logged out');
      }
      /** @type {Record<string, unknown>} */
      const params = {
        SDKAppID: this.SDKAppID,
        userID: session.userID,
        userSig: session.userSig,
        instanceID: this.instanceID,
      };
      if (this._lastSeq !== null) params.lastSeq = this._lastSeq;
      try {
        const result = /** @type {LoginResult} */ (await this._send(conn, 'login', params));
        return { conn, result };
      } catch (error) {
        this._closeConnection(conn, 1000);
        throw error;
      }
    })();
    try {
      return await Promise.race([attempt, expired]);
    } finally {
      clearTimeout(timer);
      session.attempt = null;
      if (timedOut) {
        // A late outcome of a timed-out attempt must not leave a socket open.
        attempt.then((late) => this._closeConnection(late.conn, 1000), () => {});
      }
    }
  }

  /**
   * Opens a WebSocket.
   * @private
   * @param {Session} session
   * @returns {Promise<Connection>}
   */
  async _open(session) {
    const WebSocketImpl = await this._webSocketConstructor();
    return new Promise((resolve, reject) => {
      /** @type {SocketLike} */
      let sock;
      try {
        sock = new WebSocketImpl(this.url, SUBPROTOCOL);
      } catch (error) {
        reject(new BeckonError(ERROR_CODE.NETWORK_ERROR, `cannot connect to ${this.url}: ${asBeckonError(error).message}`));
        return;
      }
      const conn = new Connection(sock);
      session.attempt = conn;
      let opened = false;
      sock.onopen = () => {
        opened = true;
        conn.openedAt = Date.now();
        conn.lastHeard = conn.openedAt;
        resolve(conn);
      };
      sock.onmessage = (event) => this._onMessage(conn, event.data);
      // Browsers follow every error with a close event; not every implementation does, so an
      // error ends the connection here and now (a close code, if one comes, is in the close).
      sock.onerror = () => {
        this._abandon(conn);
        if (!opened) reject(new BeckonError(ERROR_CODE.NETWORK_ERROR, `cannot connect to ${this.url}`));
      };
      sock.onclose = (event) => {
        this._onClose(conn, typeof event?.code === 'number' ? event.code : null, String(event?.reason ?? ''));
        if (!opened) {
          reject(new BeckonError(ERROR_CODE.NETWORK_ERROR, `cannot connect to ${this.url}`, { closeCode: conn.closeCode }));
        }
      };
    });
  }

  /**
   * @private
   * @returns {Promise<SocketConstructor>}
   */
  async _webSocketConstructor() {
    if (this._WebSocket) return this._WebSocket;
    const global = /** @type {{WebSocket?: SocketConstructor}} */ (globalThis);
    if (typeof global.WebSocket === 'function') {
      this._WebSocket = global.WebSocket;
      return global.WebSocket;
    }
    // Node 20 has no global WebSocket: use the `ws` package. The name is in a variable so that
    // bundlers for browsers do not try to include it.
    const name = 'ws';
    const mod = await import(name);
    const ctor = /** @type {SocketConstructor} */ (mod.WebSocket ?? mod.default);
    this._WebSocket = ctor;
    return ctor;
  }

  /**
   * After a successful (re)login: set the last seq, deliver early events, flush the queue, and
   * tell the app.
   * @private
   * @param {Session} session
   * @param {Connection} conn
   * @param {LoginResult} result
   */
  _loggedIn(session, conn, result) {
    const previous = this._lastSeq;
    // With a lastSeq sent, anything but a clean resume (or a server behind what we saw) means
    // events were lost: pending invitations are replayed and the app should refresh.
    const resync = previous !== null && (result.resync || !result.resumed || result.seq < previous);
    if (resync || previous === null) {
      this._lastSeq = result.seq;
    }
    conn.ready = true;
    session.loggedIn = true;
    this._conn = conn;
    this._setNetState(TYPES.NET_STATE_CONNECTED);
    const early = conn.early;
    conn.early = [];
    for (const frame of early) {
      this._deliver(frame);
    }
    const queued = this._queue;
    this._queue = [];
    for (const waiter of queued) {
      if (!waiter.done) this._transmit(conn, waiter);
    }
    this._startPing(conn);
    if (!session.ready || resync) {
      // A ping answered after the login's replay or backlog: SDK_READY comes once the
      // events of the login have been delivered.
      this._send(conn, 'ping', {}).then(
        () => {
          if (this._session === session && this._conn === conn && !session.stopped) {
            session.ready = true;
            this._emit(EVENT.SDK_READY, {});
          }
        },
        () => {},
      );
    }
  }

  /**
   * @private
   * @param {string} state
   */
  _setNetState(state) {
    if (this._netState === state) return;
    this._netState = state;
    this._emit(EVENT.NET_STATE_CHANGE, { state });
  }

  /**
   * The session cannot go on (kicked out, fatal close code, re-login refused): stop, keeping
   * the last seq so that a later login resumes.
   * @private
   * @param {Session} session
   * @param {number} code
   * @param {string} message
   */
  _stop(session, code, message) {
    if (session.stopped) return;
    session.stopped = true;
    if (this._session === session) this._session = null;
    const conn = this._conn;
    if (conn) {
      this._conn = null;
      this._stopPing(conn);
      this._closeConnection(conn, 1000);
    }
    this._failQueue(ERROR_CODE.NOT_LOGGED_IN, `not logged in: ${message}`);
    if (code === 4103 || code === ERROR_CODE.USERSIG_EXPIRED) {
      this._emit(EVENT.KICKED_OUT, { type: TYPES.KICKED_OUT_USERSIG_EXPIRED });
    } else {
      this._emit(EVENT.ERROR, { code, message });
    }
    this._setNetState(TYPES.NET_STATE_DISCONNECTED);
    if (session.ready) {
      this._emit(EVENT.SDK_NOT_READY, {});
    }
  }

  /**
   * The serving connection ended.
   * @private
   * @param {Connection} conn
   */
  _onLost(conn) {
    if (conn !== this._conn) return;
    this._conn = null;
    this._stopPing(conn);
    const session = this._session;
    if (!session || session.stopped) return;
    if (isFatalClose(conn.closeCode)) {
      const code = /** @type {number} */ (conn.closeCode);
      this._stop(session, code, `the server closed the connection with ${code}${conn.closeReason ? `: ${conn.closeReason}` : ''}`);
      return;
    }
    // Only a connection that lived a while resets the backoff.
    const lived = Date.now() - conn.openedAt;
    if (lived >= BACKOFF_MAX_MS) this._attempt = 0;
    this._reconnect(session);
  }

  /**
   * Reconnects with backoff until logged in again or stopped.
   * @private
   * @param {Session} session
   */
  async _reconnect(session) {
    this._setNetState(TYPES.NET_STATE_CONNECTING);
    for (;;) {
      if (session.hold) {
        const hold = session.hold;
        session.hold = null;
        await hold.catch(() => {});
      }
      const attempt = this._attempt ?? 0;
      this._attempt = attempt + 1;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, backoffDelay(attempt));
        session.wake = () => {
          clearTimeout(timer);
          resolve(undefined);
        };
      });
      session.wake = null;
      if (session.stopped) return;
      let outcome;
      try {
        outcome = await this._connectAndLogin(session);
      } catch (error) {
        if (session.stopped) return;
        const failure = asBeckonError(error);
        if (failure.refused && !RETRYABLE_LOGIN_CODES.has(failure.code)) {
          this._stop(session, failure.code, `re-login refused with ${failure.code}: ${failure.message}`);
          return;
        }
        if (isFatalClose(failure.closeCode)) {
          const code = /** @type {number} */ (failure.closeCode);
          this._stop(session, code, `the server closed the connection with ${code}`);
          return;
        }
        continue;
      }
      if (session.stopped) {
        this._closeConnection(outcome.conn, 1000);
        return;
      }
      this._loggedIn(session, outcome.conn, outcome.result);
      return;
    }
  }

  /**
   * @private
   * @param {Connection} conn
   */
  _startPing(conn) {
    if (!(this._pingInterval > 0)) return;
    const every = this._pingInterval;
    conn.pingTimer = setInterval(() => {
      if (conn.closed) {
        this._stopPing(conn);
        return;
      }
      if (Date.now() - conn.lastHeard >= 2 * every) {
        // Half-open TCP (a network change, a sleeping laptop): treat it as dropped.
        this._abandon(conn);
        return;
      }
      this._send(conn, 'ping', {}).catch(() => {});
    }, every);
  }

  /**
   * @private
   * @param {Connection} conn
   */
  _stopPing(conn) {
    if (conn.pingTimer !== undefined) {
      clearInterval(conn.pingTimer);
      conn.pingTimer = undefined;
    }
  }

  /**
   * Drops a connection at once, as a network failure would, and handles it as lost without
   * waiting for a close handshake.
   * @private
   * @param {Connection} conn
   */
  _abandon(conn) {
    if (conn.closed) return;
    const sock = conn.sock;
    try {
      if (typeof sock.terminate === 'function') sock.terminate();
      else sock.close(1000);
    } catch {
      // Already gone.
    }
    this._onClose(conn, null, 'dropped');
  }

  /**
   * Closes a connection politely; its end is not treated as a loss.
   * @private
   * @param {Connection} conn
   * @param {number} code
   */
  _closeConnection(conn, code) {
    if (conn === this._conn) this._conn = null;
    this._stopPing(conn);
    if (conn.closed) return;
    conn.ready = false;
    try {
      conn.sock.close(code);
    } catch {
      // Already gone.
    }
    this._onClose(conn, code, 'closed by the client');
  }

  /**
   * @private
   * @param {Connection} conn
   * @param {number | null} code
   * @param {string} reason
   */
  _onClose(conn, code, reason) {
    if (conn.closed) return;
    conn.closed = true;
    conn.closeCode = code;
    conn.closeReason = reason;
    const sock = conn.sock;
    sock.onmessage = null;
    sock.onopen = null;
    // Keep a no-op error handler: `ws` throws on an 'error' event without a listener.
    sock.onerror = () => {};
    sock.onclose = null;
    this._stopPing(conn);
    const waiting = [...conn.pending.values()];
    conn.pending.clear();
    const text = code === null ? 'the connection dropped' : `the connection closed (code ${code}${reason ? `: ${reason}` : ''})`;
    for (const waiter of waiting) {
      settle(waiter, () => waiter.reject(new BeckonError(ERROR_CODE.NETWORK_ERROR, `${text}; the request may or may not have been applied`, { closeCode: code })));
    }
    if (conn.ready) {
      conn.ready = false;
      this._onLost(conn);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Frames

  /**
   * @private
   * @param {Connection} conn
   * @param {unknown} raw
   */
  _onMessage(conn, raw) {
    if (conn.closed) return;
    conn.lastHeard = Date.now();
    /** @type {any} */
    let frame;
    try {
      frame = typeof raw === 'string' ? JSON.parse(raw) : undefined;
    } catch {
      frame = undefined;
    }
    if (typeof frame !== 'object' || frame === null) {
      this._emit(EVENT.ERROR, { code: PROTOCOL_ERROR, message: 'unreadable frame from the server' });
      return;
    }
    if (frame.type === 'result') {
      const waiter = typeof frame.id === 'number' ? conn.pending.get(frame.id) : undefined;
      if (!waiter) return;
      conn.pending.delete(frame.id);
      if (frame.code === 0) {
        settle(waiter, () => waiter.resolve(frame.data ?? {}));
      } else {
        const code = typeof frame.code === 'number' ? frame.code : PROTOCOL_ERROR;
        const message = typeof frame.message === 'string' ? frame.message : `refused with code ${code}`;
        settle(waiter, () => waiter.reject(new BeckonError(code, message, { refused: true })));
      }
    } else if (frame.type === 'event') {
      if (typeof frame.name !== 'string') return;
      if (conn.ready) this._deliver(frame);
      else conn.early.push(frame);
    }
  }

  /**
   * One event: the exactly-once filter on `seq`, then the listeners.
   * @private
   * @param {{name: string, seq?: number, data: any}} frame
   */
  _deliver(frame) {
    if (typeof frame.seq === 'number') {
      // Seen already (a resume overlapping what arrived live). Gaps are normal: events this
      // instance caused are numbered but not sent to it.
      if (this._lastSeq !== null && frame.seq <= this._lastSeq) return;
      this._lastSeq = frame.seq;
    }
    if (SIGNALING_EVENTS.has(frame.name) || frame.name === EVENT.MESSAGE_RECEIVED || frame.name === EVENT.MESSAGE_MODIFIED) {
      this._emit(frame.name, frame.data);
    }
  }

  /**
   * Sends a request on a connection that is open now.
   * @private
   * @param {Connection} conn
   * @param {string} op
   * @param {Record<string, unknown>} params
   * @returns {Promise<any>}
   */
  _send(conn, op, params) {
    return new Promise((resolve, reject) => {
      const waiter = this._waiter(op, params, resolve, reject);
      this._transmit(conn, waiter);
    });
  }

  /**
   * @private
   * @param {string} op
   * @param {Record<string, unknown>} params
   * @param {(data: any) => void} resolve
   * @param {(error: BeckonError) => void} reject
   * @returns {Waiter}
   */
  _waiter(op, params, resolve, reject) {
    const id = this._nextID;
    this._nextID += 1;
    /** @type {Waiter} */
    const waiter = {
      id,
      text: JSON.stringify({ id, op, params }),
      resolve,
      reject,
      timer: undefined,
      done: false,
    };
    waiter.timer = setTimeout(() => {
      if (waiter.done) return;
      waiter.done = true;
      this._queue = this._queue.filter((each) => each !== waiter);
      if (this._conn) this._conn.pending.delete(id);
      reject(new BeckonError(ERROR_CODE.REQUEST_TIMEOUT, `${op}: no answer within ${this._requestTimeout} ms`));
    }, this._requestTimeout);
    return waiter;
  }

  /**
   * @private
   * @param {Connection} conn
   * @param {Waiter} waiter
   */
  _transmit(conn, waiter) {
    if (conn.closed || conn.sock.readyState !== OPEN) {
      settle(waiter, () => waiter.reject(new BeckonError(ERROR_CODE.NETWORK_ERROR, 'the connection is closed')));
      return;
    }
    conn.pending.set(waiter.id, waiter);
    try {
      conn.sock.send(waiter.text);
    } catch (error) {
      conn.pending.delete(waiter.id);
      settle(waiter, () => waiter.reject(new BeckonError(ERROR_CODE.NETWORK_ERROR, `send failed: ${asBeckonError(error).message}`)));
    }
  }

  /**
   * A request of the logged-in user: sent now, or queued while (re)connecting.
   * @private
   * @param {string} op
   * @param {Record<string, unknown>} params
   * @returns {Promise<any>}
   */
  _request(op, params) {
    if (!this._session) {
      return Promise.reject(new BeckonError(ERROR_CODE.NOT_LOGGED_IN, `${op}: not logged in`));
    }
    return new Promise((resolve, reject) => {
      const waiter = this._waiter(op, params, resolve, reject);
      const size = check.utf8Length(waiter.text);
      if (size > MAX_FRAME_BYTES) {
        // The server would close the connection for good (4100): refuse here instead.
        settle(waiter, () => waiter.reject(new BeckonError(ERROR_CODE.TOO_LARGE, `${op}: the request is ${size} bytes; the limit is ${MAX_FRAME_BYTES} bytes`)));
        return;
      }
      const conn = this._conn;
      if (conn && conn.ready) this._transmit(conn, waiter);
      else this._queue.push(waiter);
    });
  }

  /**
   * @private
   * @param {number} code
   * @param {string} message
   */
  _failQueue(code, message) {
    const queued = this._queue;
    this._queue = [];
    for (const waiter of queued) {
      settle(waiter, () => waiter.reject(new BeckonError(code, message)));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Test hooks (not part of the API)

  /**
   * Drops the connection without a close handshake, as a network failure would. The next
   * reconnect attempt waits for `hold` if given.
   * @param {Promise<void>} [hold]
   * @returns {boolean} whether there was a connection to drop
   */
  _dropConnection(hold) {
    const conn = this._conn;
    if (!conn || !this._session) return false;
    if (hold) this._session.hold = hold;
    this._abandon(conn);
    return true;
  }

  /** The highest event seq processed (null before the first login). */
  _getLastSeq() {
    return this._lastSeq;
  }

  // ---------------------------------------------------------------------------------------
  // Signaling

  /**
   * Invites one user.
   * @param {import('../index.js').InviteOptions} options
   * @returns {Promise<SignalingResponse>}
   */
  async invite(options) {
    const opts = check.options(options, 'invite');
    /** @type {Record<string, unknown>} */
    const params = { userID: check.userID(opts.userID) };
    invitationOptions(opts, params);
    return actionResult(await this._request('invite', params));
  }

  /**
   * Invites members of a group.
   * @param {import('../index.js').InviteInGroupOptions} options
   * @returns {Promise<SignalingResponse>}
   */
  async inviteInGroup(options) {
    const opts = check.options(options, 'inviteInGroup');
    /** @type {Record<string, unknown>} */
    const params = {
      groupID: check.groupID(opts.groupID),
      inviteeList: check.userIDList(opts.inviteeList, 'inviteeList', 1, LIMITS.MAX_INVITEES),
    };
    invitationOptions(opts, params);
    return actionResult(await this._request('inviteInGroup', params));
  }

  /**
   * The inviter cancels the invitation.
   * @param {import('../index.js').AnswerOptions} options
   * @returns {Promise<SignalingResponse>}
   */
  async cancel(options) {
    return actionResult(await this._request('cancel', answerParams(options, 'cancel')));
  }

  /**
   * An invitee accepts the invitation.
   * @param {import('../index.js').AnswerOptions} options
   * @returns {Promise<SignalingResponse>}
   */
  async accept(options) {
    return actionResult(await this._request('accept', answerParams(options, 'accept')));
  }

  /**
   * An invitee rejects the invitation.
   * @param {import('../index.js').AnswerOptions} options
   * @returns {Promise<SignalingResponse>}
   */
  async reject(options) {
    return actionResult(await this._request('reject', answerParams(options, 'reject')));
  }

  /**
   * Changes the `data` of an active invitation (not an online-only one).
   * @param {import('../index.js').ModifyInvitationOptions} options
   * @returns {Promise<Response<{message?: Message}>>}
   */
  async modifyInvitation(options) {
    const opts = check.options(options, 'modifyInvitation');
    const params = { inviteID: check.inviteID(opts.inviteID), data: check.data(opts.data, true) };
    const result = await this._request('modifyInvitation', params);
    return { code: 0, data: messageData(result) };
  }

  /**
   * The signaling info of a history message, or `null` when it is not a signaling message.
   * Local and pure; never throws.
   * @param {unknown} message
   * @returns {SignalingInfo | null}
   */
  getSignalingInfo(message) {
    return getSignalingInfo(message);
  }

  // ---------------------------------------------------------------------------------------
  // History

  /** @returns {Promise<Response<{conversationList: import('../index.js').Conversation[]}>>} */
  async getConversationList() {
    return ok(await this._request('getConversationList', {}));
  }

  /**
   * One page of a conversation's messages, oldest to newest, paging backwards from the newest.
   * @param {{conversationID: string, nextReqMessageID?: string, count?: number}} options
   * @returns {Promise<Response<{messageList: Message[], nextReqMessageID: string, isCompleted: boolean}>>}
   */
  async getMessageList(options) {
    const opts = check.options(options, 'getMessageList');
    /** @type {Record<string, unknown>} */
    const params = { conversationID: conversationID(opts.conversationID) };
    const cursor = check.optionalString(opts.nextReqMessageID, 'nextReqMessageID');
    if (cursor !== undefined) params.nextReqMessageID = cursor;
    const count = check.optionalInteger(opts.count, 'count', 1, LIMITS.MAX_MESSAGE_PAGE);
    if (count !== undefined) params.count = count;
    return ok(await this._request('getMessageList', params));
  }

  /**
   * Clears a conversation's unread count.
   * @param {{conversationID: string}} options
   * @returns {Promise<Response<{}>>}
   */
  async setMessageRead(options) {
    const opts = check.options(options, 'setMessageRead');
    return ok(await this._request('setMessageRead', { conversationID: conversationID(opts.conversationID) }));
  }

  // ---------------------------------------------------------------------------------------
  // Groups

  /**
   * Creates a group owned by the caller.
   * @param {import('../index.js').CreateGroupOptions} options
   * @returns {Promise<Response<{group: GroupProfile}>>}
   */
  async createGroup(options) {
    const opts = check.options(options, 'createGroup');
    if (typeof opts.name !== 'string' || opts.name.length === 0) {
      throw check.invalid('name must be a non-empty string');
    }
    /** @type {Record<string, unknown>} */
    const params = { name: opts.name };
    if (opts.groupID !== undefined) params.groupID = check.groupID(opts.groupID);
    const type = check.optionalString(opts.type, 'type');
    if (type !== undefined) params.type = type;
    if (opts.memberList !== undefined) {
      if (!Array.isArray(opts.memberList)) {
        throw check.invalid('memberList must be an array of {userID}');
      }
      params.memberList = opts.memberList.map((member, index) => {
        if (!check.isObject(member)) {
          throw check.invalid(`memberList[${index}] must be an object {userID}`);
        }
        return { userID: check.userID(member.userID, `memberList[${index}].userID`) };
      });
    }
    return ok(await this._request('createGroup', params));
  }

  /**
   * @param {{groupID: string}} options
   * @returns {Promise<Response<{group: GroupProfile}>>}
   */
  async getGroupProfile(options) {
    const opts = check.options(options, 'getGroupProfile');
    return ok(await this._request('getGroupProfile', { groupID: check.groupID(opts.groupID) }));
  }

  /**
   * @param {{groupID: string, count?: number, offset?: number}} options
   * @returns {Promise<Response<{memberList: import('../index.js').GroupMember[]}>>}
   */
  async getGroupMemberList(options) {
    const opts = check.options(options, 'getGroupMemberList');
    /** @type {Record<string, unknown>} */
    const params = { groupID: check.groupID(opts.groupID) };
    const count = check.optionalInteger(opts.count, 'count', 1, LIMITS.MAX_MEMBER_PAGE);
    if (count !== undefined) params.count = count;
    const offset = check.optionalInteger(opts.offset, 'offset', 0, Number.MAX_SAFE_INTEGER);
    if (offset !== undefined) params.offset = offset;
    return ok(await this._request('getGroupMemberList', params));
  }

  /** @returns {Promise<Response<{groupList: GroupProfile[]}>>} */
  async getGroupList() {
    return ok(await this._request('getGroupList', {}));
  }

  /**
   * @param {{groupID: string, userIDList: string[]}} options
   * @returns {Promise<Response<import('../index.js').AddGroupMemberData>>}
   */
  async addGroupMember(options) {
    const opts = check.options(options, 'addGroupMember');
    const params = {
      groupID: check.groupID(opts.groupID),
      userIDList: check.userIDList(opts.userIDList, 'userIDList', 1, LIMITS.MAX_MEMBER_CHANGE),
    };
    return ok(await this._request('addGroupMember', params));
  }

  /**
   * @param {{groupID: string, userIDList: string[]}} options
   * @returns {Promise<Response<{group: GroupProfile, userIDList: string[]}>>}
   */
  async deleteGroupMember(options) {
    const opts = check.options(options, 'deleteGroupMember');
    const params = {
      groupID: check.groupID(opts.groupID),
      userIDList: check.userIDList(opts.userIDList, 'userIDList', 1, LIMITS.MAX_MEMBER_CHANGE),
    };
    return ok(await this._request('deleteGroupMember', params));
  }

  /**
   * Leaves a group (the owner dismisses it instead).
   * @param {string} groupID
   * @returns {Promise<Response<{groupID: string}>>}
   */
  async quitGroup(groupID) {
    return ok(await this._request('quitGroup', { groupID: check.groupID(groupID) }));
  }

  /**
   * Dismisses a group (owner only).
   * @param {string} groupID
   * @returns {Promise<Response<{groupID: string}>>}
   */
  async dismissGroup(groupID) {
    return ok(await this._request('dismissGroup', { groupID: check.groupID(groupID) }));
  }
}

/**
 * Settles a waiter once.
 * @param {Waiter} waiter
 * @param {() => void} how
 */
function settle(waiter, how) {
  if (waiter.done) return;
  waiter.done = true;
  clearTimeout(waiter.timer);
  how();
}

/**
 * @param {unknown} eventName
 * @param {unknown} handler
 * @param {Set<string>} names
 * @param {string} where
 * @returns {string | null}
 */
function listenerProblem(eventName, handler, names, where) {
  if (typeof eventName !== 'string' || !names.has(eventName)) {
    return `eventName must be a value of ${where} (${[...names].join(', ')}), got ${check.describe(eventName)}`;
  }
  if (typeof handler !== 'function') {
    return `handler must be a function, got ${check.describe(handler)}`;
  }
  return null;
}

/**
 * @param {unknown} eventName
 * @param {unknown} handler
 * @param {Set<string>} names
 * @param {string} where
 */
function checkListener(eventName, handler, names, where) {
  const problem = listenerProblem(eventName, handler, names, where);
  if (problem) throw check.invalid(problem);
}

/**
 * The options `invite` and `inviteInGroup` share.
 * @param {Record<string, unknown>} opts
 * @param {Record<string, unknown>} params
 */
function invitationOptions(opts, params) {
  const data = check.data(opts.data, false);
  if (data !== undefined) params.data = data;
  const timeout = check.optionalInteger(opts.timeout, 'timeout', 0, LIMITS.MAX_TIMEOUT_SECONDS);
  if (timeout !== undefined) params.timeout = timeout;
  const onlineUserOnly = check.optionalBoolean(opts.onlineUserOnly, 'onlineUserOnly');
  if (onlineUserOnly !== undefined) params.onlineUserOnly = onlineUserOnly;
  const push = check.optionalObject(opts.offlinePushInfo, 'offlinePushInfo');
  if (push !== undefined) {
    let text;
    try {
      text = JSON.stringify(push);
    } catch {
      throw check.invalid('offlinePushInfo must be a plain JSON object');
    }
    const size = check.utf8Length(text);
    if (size > MAX_OFFLINE_PUSH_INFO_BYTES) {
      throw new BeckonError(ERROR_CODE.TOO_LARGE, `offlinePushInfo is ${size} bytes; the limit is ${MAX_OFFLINE_PUSH_INFO_BYTES} bytes`);
    }
    params.offlinePushInfo = push;
  }
  if (opts.inviteID !== undefined) {
    params.inviteID = check.identifier(opts.inviteID, 'inviteID', LIMITS.MAX_INVITE_ID_BYTES);
  }
}

/**
 * @param {unknown} options
 * @param {string} what
 */
function answerParams(options, what) {
  const opts = check.options(options, what);
  /** @type {Record<string, unknown>} */
  const params = { inviteID: check.inviteID(opts.inviteID) };
  const data = check.data(opts.data, false);
  if (data !== undefined) params.data = data;
  return params;
}

/** @param {unknown} value */
function conversationID(value) {
  if (typeof value !== 'string' || value.length === 0) {
    throw check.invalid(`conversationID must be a non-empty string like "C2Cbob" or "GROUPteam", got ${check.describe(value)}`);
  }
  return value;
}

/**
 * @param {any} result
 * @returns {{message?: Message}}
 */
function messageData(result) {
  return result && result.message ? { message: result.message } : {};
}

/**
 * `{code: 0, inviteID, data: {message}}`, as Tencent's SDK resolves signaling calls.
 * @param {any} result
 * @returns {SignalingResponse}
 */
function actionResult(result) {
  return { code: 0, inviteID: String(result?.inviteID ?? ''), data: messageData(result) };
}

/**
 * @param {any} data
 * @returns {Response<any>}
 */
function ok(data) {
  return { code: 0, data: data ?? {} };
}
