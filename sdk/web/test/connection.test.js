// The connection: login refusals, reconnect with resume (invisible but for NET_STATE_CHANGE),
// requests waiting for the reconnect, KICKED_OUT at userSig expiry, and stops on fatal close codes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, connect as tcpConnect } from 'node:net';
import { WebSocket as WS } from 'ws';
import BeckonChat from '../src/index.js';
import { useServer, uid } from '../test-support/harness.js';
import { record } from '../test-support/events.js';
import { SDK_APP_ID, startServer, userSig } from '../test-support/server.js';

const { TSignaling, EVENT, TYPES } = BeckonChat;
const S = useServer();

/**
 * @param {Promise<unknown>} promise
 * @param {number} code
 */
async function rejects(promise, code) {
  await assert.rejects(promise, (/** @type {any} */ error) => {
    assert.ok(error instanceof BeckonChat.BeckonError);
    assert.equal(error.code, code, `code ${error.code}: ${error.message}`);
    return true;
  });
}

/** A promise and the function that resolves it. */
function gate() {
  /** @type {() => void} */
  let open = () => {};
  /** @type {Promise<void>} */
  const promise = new Promise((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('login', () => {
  test('refusals reject the login promise with the server\'s code and start nothing', async () => {
    const b = uid('bob');
    const { chat, rec } = S.chat();
    await rejects(chat.login({ userID: b, userSig: 'not-a-user-sig' }), 70003);
    await rejects(chat.login({ userID: b, userSig: userSig(b, { key: 'another key' }) }), 70009);
    await rejects(chat.login({ userID: b, userSig: userSig('someone-else') }), 70013);
    await rejects(chat.login({ userID: b, userSig: userSig(b, { sdkAppID: 1400000002 }) }), 70014);
    await rejects(chat.login({ userID: b, userSig: userSig(b, { time: Math.floor(Date.now() / 1000) - 100, expire: 10 }) }), 70001);
    const other = BeckonChat.create({ SDKAppID: 1400000002, server: S.srv.http });
    await rejects(other.login({ userID: b, userSig: userSig(b) }), 70014);
    assert.equal(rec.named(EVENT.SDK_READY).length, 0);
    assert.equal(rec.named(EVENT.KICKED_OUT).length, 0);
    assert.equal(rec.named(EVENT.NET_STATE_CHANGE).at(-1)?.data.state, TYPES.NET_STATE_DISCONNECTED);
    await rejects(chat.getConversationList(), 2024);
    // The same instance logs in fine afterwards.
    await chat.login({ userID: b, userSig: userSig(b) });
    await rec.next(EVENT.SDK_READY);
  });

  test('an unreachable server rejects the login with a network error', async () => {
    const chat = BeckonChat.create({ SDKAppID: SDK_APP_ID, server: 'http://127.0.0.1:9' });
    await rejects(chat.login({ userID: 'bob', userSig: userSig('bob') }), 2800);
  });

  test('a WebSocket constructor can be passed in; ws:// addresses work', async () => {
    const b = uid('bob');
    const chat = BeckonChat.create({ SDKAppID: SDK_APP_ID, server: S.srv.ws, WebSocket: /** @type {any} */ (WS) });
    S.chats.push(chat);
    const rec = record(chat);
    await chat.login({ userID: b, userSig: userSig(b) });
    await rec.next(EVENT.SDK_READY);
  });
});

describe('reconnect', () => {
  test('missed events arrive once, in order, after a dropped connection; the app sees only NET_STATE_CHANGE', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const warmup = await alice.chat.invite({ userID: b, data: 'warm-up' });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === warmup.inviteID);
    const before = bob.rec.events.length;

    const hold = gate();
    assert.equal(bob.chat._dropConnection(hold.promise), true);
    assert.deepEqual((await bob.rec.next(EVENT.NET_STATE_CHANGE)).data, { state: TYPES.NET_STATE_CONNECTING });
    assert.equal(bob.chat.isReady(), false);

    // While bob is away: two invitations, a cancel, a modification.
    const one = await alice.chat.invite({ userID: b, data: 'one', timeout: 60 });
    const two = await alice.chat.invite({ userID: b, data: 'two', timeout: 60 });
    await alice.chat.cancel({ inviteID: one.inviteID, data: 'never mind' });
    await alice.chat.modifyInvitation({ inviteID: two.inviteID, data: 'two, changed' });
    // A call made meanwhile waits for the connection.
    const waiting = bob.chat.getConversationList();
    hold.open();

    assert.deepEqual((await bob.rec.next(EVENT.NET_STATE_CHANGE)).data, { state: TYPES.NET_STATE_CONNECTED });
    await bob.rec.next(TSignaling.INVITATION_MODIFIED);
    const list = await waiting;
    assert.equal(list.code, 0);
    assert.equal(list.data.conversationList[0].conversationID, `C2C${a}`);

    // A later live event proves nothing else is still on its way.
    const three = await alice.chat.invite({ userID: b, data: 'three' });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === three.inviteID);

    const since = bob.rec.events.slice(before).map((e) => {
      if (e.name === EVENT.NET_STATE_CHANGE) return `net:${e.data.state}`;
      if (e.name === EVENT.MESSAGE_RECEIVED || e.name === EVENT.MESSAGE_MODIFIED) {
        const info = bob.chat.getSignalingInfo(e.data[0]);
        return `${e.name}:${info?.data}`;
      }
      return `${e.name}:${e.data.data}`;
    });
    assert.deepEqual(since, [
      'net:connecting',
      'net:connected',
      'onMessageReceived:one',
      'newInvitationReceived:one',
      // A resumed message event carries the message as it is now (see docs/protocol.md 3.2).
      'onMessageReceived:two, changed',
      'newInvitationReceived:two',
      'onMessageReceived:never mind',
      'ts_invitation_cancelled:never mind',
      'onMessageModified:two, changed',
      'ts_invitation_modified:two, changed',
      'onMessageReceived:three',
      'newInvitationReceived:three',
    ]);
    // A resume is not a new session: no SDK_READY, no replay.
    assert.equal(bob.rec.named(EVENT.SDK_READY).length, 1);
    assert.equal(bob.rec.events.slice(before).filter((e) => e.data?.replay).length, 0);
    // Bob's own actions after the reconnect do not come back to him (same instanceID).
    await bob.chat.accept({ inviteID: three.inviteID });
    await alice.rec.next(TSignaling.INVITEE_ACCEPTED, (d) => d.inviteID === three.inviteID);
    const four = await alice.chat.invite({ userID: b });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === four.inviteID);
    assert.equal(bob.rec.named(TSignaling.INVITEE_ACCEPTED).length, 0);
  });

  test('a request in flight when the connection drops fails with 2800; later ones go through', async () => {
    const b = uid('bob');
    const bob = await S.connect(b);
    const hold = gate();
    const inFlight = bob.chat.getConversationList();
    bob.chat._dropConnection(hold.promise);
    await rejects(inFlight, 2800);
    const later = bob.chat.getGroupList();
    hold.open();
    assert.equal((await later).code, 0);
  });

  test('a request waits at most the request timeout for the reconnect', async () => {
    const b = uid('bob');
    const bob = await S.connect(b, { requestTimeout: 300 });
    const hold = gate();
    bob.chat._dropConnection(hold.promise);
    await rejects(bob.chat.getConversationList(), 2801);
    hold.open();
    await bob.rec.next(EVENT.NET_STATE_CHANGE, (d) => d.state === TYPES.NET_STATE_CONNECTED);
    assert.equal((await bob.chat.getConversationList()).code, 0);
  });

  test('logout while reconnecting stops for good', async () => {
    const b = uid('bob');
    const bob = await S.connect(b);
    const hold = gate();
    bob.chat._dropConnection(hold.promise);
    const queued = bob.chat.getConversationList();
    assert.deepEqual(await bob.chat.logout(), { code: 0, data: {} });
    await rejects(queued, 2024);
    hold.open();
    await bob.rec.next(EVENT.SDK_NOT_READY);
    assert.equal(bob.rec.named(EVENT.NET_STATE_CHANGE).at(-1)?.data.state, TYPES.NET_STATE_DISCONNECTED);
    await rejects(bob.chat.getConversationList(), 2024);
  });

  test('a server restart (close code 4002): both sides reconnect and resume, nothing replayed or lost', async () => {
    let server = await startServer();
    const { dataDir } = server;
    const listen = server.http.replace('http://', '');
    /** @type {import('../src/chat.js').Chat[]} */
    const chats = [];
    try {
      const [a, b] = [uid('alice'), uid('bob')];
      /** @param {string} who */
      const connect = async (who) => {
        const chat = BeckonChat.create({ SDKAppID: SDK_APP_ID, server: server.http });
        chats.push(chat);
        const rec = record(chat);
        await chat.login({ userID: who, userSig: userSig(who) });
        await rec.next(EVENT.SDK_READY);
        return { chat, rec };
      };
      const bob = await connect(b);
      const alice = await connect(a);
      const before = await alice.chat.invite({ userID: b, data: 'before', timeout: 300 });
      await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === before.inviteID);

      // SIGTERM: the server closes every connection with 4002 and exits.
      await server.stop({ signal: 'SIGTERM', keepData: true });
      await bob.rec.next(EVENT.NET_STATE_CHANGE, (d) => d.state === TYPES.NET_STATE_CONNECTING);
      await alice.rec.next(EVENT.NET_STATE_CHANGE, (d) => d.state === TYPES.NET_STATE_CONNECTING);
      server = await startServer({ dataDir, listen });

      await bob.rec.next(EVENT.NET_STATE_CHANGE, (d) => d.state === TYPES.NET_STATE_CONNECTED, 10000);
      await alice.rec.next(EVENT.NET_STATE_CHANGE, (d) => d.state === TYPES.NET_STATE_CONNECTED, 10000);
      await bob.chat.accept({ inviteID: before.inviteID, data: 'after the restart' });
      assert.equal((await alice.rec.next(TSignaling.INVITEE_ACCEPTED)).data.data, 'after the restart');
      const after = await alice.chat.invite({ userID: b, data: 'after' });
      await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === after.inviteID);
      // The pending invitation was not replayed (a resume, not a fresh login) and no
      // SDK_READY came again.
      assert.equal(bob.rec.about(before.inviteID).length, 1);
      assert.equal(bob.rec.named(EVENT.SDK_READY).length, 1);
      assert.equal(bob.rec.named(EVENT.ERROR).length + bob.rec.named(EVENT.KICKED_OUT).length, 0);
    } finally {
      await Promise.all(chats.map((chat) => chat.logout().catch(() => {})));
      await server.stop();
    }
  });
});

/**
 * A TCP proxy to `target` that can black-hole its traffic (a half-open connection: nothing
 * arrives, nothing closes).
 * @param {string} target `http://host:port`
 */
async function blackHoleProxy(target) {
  const { hostname, port } = new URL(target);
  let frozen = false;
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  const server = createTcpServer((client) => {
    const upstream = tcpConnect(Number(port), hostname);
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      sockets.add(from);
      from.on('data', (chunk) => {
        if (!frozen) to.write(chunk);
      });
      from.on('close', () => to.destroy());
      from.on('error', () => to.destroy());
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    /** @param {boolean} value */
    freeze(value) {
      frozen = value;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}

describe('heartbeat', () => {
  test('a connection that goes silent is dropped and replaced', async () => {
    const proxy = await blackHoleProxy(S.srv.http);
    try {
      const [a, b] = [uid('alice'), uid('bob')];
      const alice = await S.connect(a);
      const bob = await S.connect(b, { server: proxy.url, pingInterval: 200 });
      proxy.freeze(true);
      // Pings go unanswered: after two intervals the SDK gives the connection up.
      await bob.rec.next(EVENT.NET_STATE_CHANGE, (d) => d.state === TYPES.NET_STATE_CONNECTING, 3000);
      const missed = await alice.chat.invite({ userID: b, data: 'during the outage' });
      proxy.freeze(false);
      await bob.rec.next(EVENT.NET_STATE_CHANGE, (d) => d.state === TYPES.NET_STATE_CONNECTED, 5000);
      await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === missed.inviteID);
      await bob.chat.logout();
    } finally {
      await proxy.close();
    }
  });
});

describe('resync', () => {
  test('missed events too old to resume: pending invitations are replayed and SDK_READY comes again', async () => {
    // Events are kept for resumption for 1 s on this server.
    const server = await startServer({ args: ['--event-retention', '1'] });
    /** @type {import('../src/chat.js').Chat[]} */
    const chats = [];
    try {
      const [a, b] = [uid('alice'), uid('bob')];
      /** @param {string} who */
      const connect = async (who) => {
        const chat = BeckonChat.create({ SDKAppID: SDK_APP_ID, server: server.http });
        chats.push(chat);
        const rec = record(chat);
        await chat.login({ userID: who, userSig: userSig(who) });
        await rec.next(EVENT.SDK_READY);
        return { chat, rec };
      };
      const bob = await connect(b);
      const alice = await connect(a);
      const hold = gate();
      bob.chat._dropConnection(hold.promise);
      await bob.rec.next(EVENT.NET_STATE_CHANGE, (d) => d.state === TYPES.NET_STATE_CONNECTING);
      const gone = await alice.chat.invite({ userID: b, data: 'gone' });
      await alice.chat.cancel({ inviteID: gone.inviteID });
      const pending = await alice.chat.invite({ userID: b, data: 'pending', timeout: 300 });
      // Let the missed events age past the retention period, then let bob back in.
      await new Promise((resolve) => setTimeout(resolve, 1600));
      const seqBefore = bob.chat._getLastSeq();
      const from = bob.rec.events.length;
      hold.open();
      await bob.rec.next(EVENT.SDK_READY, undefined, 10000);
      const names = bob.rec.events.slice(from).map((e) => e.name);
      assert.deepEqual(names, [EVENT.NET_STATE_CHANGE, TSignaling.NEW_INVITATION_RECEIVED, EVENT.SDK_READY]);
      const replay = bob.rec.named(TSignaling.NEW_INVITATION_RECEIVED).at(-1)?.data;
      assert.equal(replay.inviteID, pending.inviteID);
      assert.equal(replay.replay, true);
      assert.ok((bob.chat._getLastSeq() ?? 0) >= (seqBefore ?? 0));
      // Live events flow on afterwards.
      await alice.chat.cancel({ inviteID: pending.inviteID });
      await bob.rec.next(TSignaling.INVITATION_CANCELLED, (d) => d.inviteID === pending.inviteID);
    } finally {
      await Promise.all(chats.map((chat) => chat.logout().catch(() => {})));
      await server.stop();
    }
  });
});

describe('stops', () => {
  test('KICKED_OUT when the userSig expires; a new login with a fresh userSig resumes', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = await S.connect(a);
    const { chat, rec } = S.chat();
    await chat.login({ userID: b, userSig: userSig(b, { expire: 2 }) });
    await rec.next(EVENT.SDK_READY);
    const kicked = await rec.next(EVENT.KICKED_OUT, undefined, 8000);
    assert.deepEqual(kicked, { name: 'kickedOut', data: { type: TYPES.KICKED_OUT_USERSIG_EXPIRED } });
    await rec.next(EVENT.SDK_NOT_READY);
    assert.equal(rec.named(EVENT.NET_STATE_CHANGE).at(-1)?.data.state, TYPES.NET_STATE_DISCONNECTED);
    await rejects(chat.getConversationList(), 2024);

    // Missed while kicked out: it comes on the next login, which resumes.
    const missed = await alice.chat.invite({ userID: b, data: 'while kicked' });
    await chat.login({ userID: b, userSig: userSig(b) });
    const event = await rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === missed.inviteID);
    assert.equal(event.data.replay, undefined, 'resumed from the backlog, not replayed');
    await rec.next(EVENT.SDK_READY);
  });

  test('a fatal close code (4102) stops the SDK with an ERROR event', async () => {
    const b = uid('bob');
    const { chat, rec } = await S.connect(b);
    // 21 unknown operations in a row: the server closes with 4102 ("fix the client").
    const calls = [];
    for (let i = 0; i < 21; i += 1) calls.push(/** @type {any} */ (chat)._request('noSuchOperation', {}).catch((/** @type {any} */ e) => e.code));
    const codes = await Promise.all(calls);
    assert.deepEqual(codes.slice(0, 20), Array(20).fill(9002));
    assert.equal(codes[20], 2800);
    const error = await rec.next(EVENT.ERROR);
    assert.equal(error.data.code, 4102);
    assert.match(error.data.message, /4102/);
    await rec.next(EVENT.SDK_NOT_READY);
    assert.equal(rec.named(EVENT.NET_STATE_CHANGE).at(-1)?.data.state, TYPES.NET_STATE_DISCONNECTED);
    await rejects(chat.getConversationList(), 2024);
  });
});
