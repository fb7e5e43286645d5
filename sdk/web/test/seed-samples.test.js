// Every code sample of the seed page (shared/seed/signaling-web-api.txt, Tencent Cloud Chat's
// web "Signaling" chapter) runs verbatim against a real Beckon server. The only changes an app
// makes are the import (`import TencentCloudChat from 'beckon-web'`: the samples' identifier
// `TencentCloudChat` is bound to this SDK's default export) and the server address in
// `create`. The samples' text is as on the page; the page lost the line breaks of the original
// code blocks, so they are put back where a `//` comment ended or a statement had no `;` (the
// check below compares the samples to the page with whitespace ignored).
//
// Each sample runs as a function of `TencentCloudChat`, `chat` and `message` (the variables
// the samples use) and of `console`, which the test records: a sample reports what its promise
// resolved to by `console.warn('invite success:', imResponse)` and the like, so the test checks
// exactly what the sample saw, and then what the other side received.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import TencentCloudChat from '../src/index.js';
import { record } from '../test-support/events.js';
import { REPO_ROOT, SDK_APP_ID, startServer, userSig } from '../test-support/server.js';

const SAMPLES = {
  addSignalingListener: `let onNewInvitationReceived = function(event) {};chat.addSignalingListener(TencentCloudChat.TSignaling.NEW_INVITATION_RECEIVED, onNewInvitationReceived);`,

  removeSignalingListener: `let onNewInvitationReceived = function(event) {};chat.removeSignalingListener(TencentCloudChat.TSignaling.NEW_INVITATION_RECEIVED, onNewInvitationReceived);`,

  invite: `// invite someone
let promise = chat.invite({ userID: 'user1', data: '' }); promise.then(function(imResponse) { console.warn('invite success:', imResponse) }).catch(function(imError) { console.warn('invite error:', imError); });`,

  inviteExcluded: `// Invite someone, with the setting not to update the conversation's unreadCount and lastMessage.
let promise = chat.invite({userID: 'user1',data: JSON.stringify({ excludeFromHistoryMessage: true }),});promise.then(function(imResponse) {console.warn('invite success:', imResponse)}).catch(function(imError) {console.warn('invite error:', imError);});`,

  inviteTimeout: `// Invite someone, and set a 30-second timeout. If there is no operation within 30 seconds
// the inviter will receive the TencentCloudChat.TSignaling.INVITATION_TIMEOUT event.
let promise = chat.invite({ userID: 'user1', data: '', timeout: 30 }); promise.then(function(imResponse) { console.warn('invite success:', imResponse) }).catch(function(imError) { console.warn('invite error:', imError); });`,

  inviteOnlineOnly: `// Invite someone, set a 30-second timeout, and the related signaling will not be stored in roaming
// nor will it be pushed offline.
let promise = chat.invite({ userID: 'user1', data: '', timeout: 30, onlineUserOnly: true }); promise.then(function(imResponse) { console.warn('invite success:', imResponse) }).catch(function(imError) { console.warn('invite error:', imError); });`,

  inviteInGroup: `// Invite certain people within a group.
let promise = chat.inviteInGroup({groupID: 'AV1',inviteeList: ['user1', 'user2'],data: '',});promise.then(function(imResponse) {console.warn('inviteInGroup success:', imResponse)}).catch(function(imError) {console.warn('inviteInGroup error:', imError);});`,

  cancel: `let promise = chat.cancel({ inviteID: '38897dbf-ecd4-4b59-a132-bc31529a2b18', data: '', })
promise.then(function(imResponse) { console.log('cancel OK', imResponse); }).catch(function(error) { console.warn('cancel failed:', error); });`,

  accept: `let promise = chat.accept({inviteID: '38897dbf-ecd4-4b59-a132-bc31529a2b18',data: '',})
promise.then(function(imResponse) {console.log('accept OK', imResponse);}).catch(function(error) {console.warn('accept failed:', error);});`,

  reject: `let promise = chat.reject({inviteID: '38897dbf-ecd4-4b59-a132-bc31529a2b18',data: '',})
promise.then(function(imResponse) {console.log('reject OK', imResponse);}).catch(function(error) {console.warn('reject failed:', error);});`,

  getSignalingInfo: `// When signaling is null, it indicates that the message is a regular message, not a signaling message.
let signaling = chat.getSignalingInfo(message);console.log('signaling info', signaling);`,

  modifyInvitation: `let promise = chat.modifyInvitation({inviteID:'38897dbf-ecd4-4b59-a132-bc31529a2b18',data: 'xxxx'});promise.then(function(imResponse) {console.log('modifyInvitation OK', imResponse);}).catch(function(error) {console.warn('modifyInvitation failed:', error);});`,
};

const SEED_INVITE_ID = '38897dbf-ecd4-4b59-a132-bc31529a2b18';

/**
 * Runs a sample with `chat` and `message` in scope and a console that records what the sample
 * prints. `calls` lists the SDK calls the sample made, with what each returned.
 * @param {string} code
 * @param {import('../src/chat.js').Chat} chat
 * @param {unknown} [message]
 */
function run(code, chat, message) {
  /** @type {{level: string, args: unknown[]}[]} */
  const printed = [];
  /** @type {(() => void)[]} */
  let wake = [];
  /** @param {string} level */
  const printer = (level) => (/** @type {unknown[]} */ ...args) => {
    printed.push({ level, args });
    for (const w of wake) w();
    wake = [];
  };
  const fakeConsole = { log: printer('log'), warn: printer('warn'), error: printer('error'), info: printer('info') };
  /** @type {{method: string, args: unknown[], result: unknown}[]} */
  const calls = [];
  const spied = new Proxy(chat, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== 'function') return value;
      return (/** @type {unknown[]} */ ...args) => {
        const result = value.apply(target, args);
        calls.push({ method: String(property), args, result });
        return result;
      };
    },
  });
  // eslint-disable-next-line no-new-func
  const sample = new Function('TencentCloudChat', 'chat', 'message', 'console', code);
  sample(TencentCloudChat, spied, message, fakeConsole);
  return {
    calls,
    printed,
    /**
     * What the sample printed first, waiting up to 5 s for it.
     * @returns {Promise<{level: string, args: any[]}>}
     */
    async output() {
      const deadline = Date.now() + 5000;
      while (printed.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('the sample printed nothing within 5 s');
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, left);
          wake.push(() => {
            clearTimeout(timer);
            resolve(undefined);
          });
        });
      }
      return /** @type {{level: string, args: any[]}} */ (printed[0]);
    },
  };
}

/** Servers and chats to shut down at the end. */
/** @type {{stop: () => Promise<void>}[]} */
const servers = [];
/** @type {import('../src/chat.js').Chat[]} */
const chats = [];
after(async () => {
  await Promise.all(chats.map((chat) => chat.destroy().catch(() => {})));
  await Promise.all(servers.map((server) => server.stop()));
});

/** A fresh server (one per sample that needs the seed's fixed inviteID). */
async function server() {
  const srv = await startServer();
  servers.push(srv);
  return srv;
}

/**
 * `TencentCloudChat.create({SDKAppID})` plus the server address, and a login.
 * @param {{http: string}} srv
 * @param {string} userID
 */
async function login(srv, userID) {
  const chat = TencentCloudChat.create({ SDKAppID: SDK_APP_ID, server: srv.http });
  chats.push(chat);
  const rec = record(chat);
  await chat.login({ userID, userSig: userSig(userID) });
  await rec.next(TencentCloudChat.EVENT.SDK_READY);
  return { chat, rec };
}

/**
 * @param {{level: string, args: any[]}} line
 * @param {string} label
 */
function printedResult(line, label) {
  assert.equal(line.args[0], label, `the sample printed ${JSON.stringify(line.args[0])}: ${line.args[1]?.message ?? ''}`);
  return line.args[1];
}

describe('the samples are the seed page\'s', () => {
  const seedPath = join(REPO_ROOT, '..', 'shared', 'seed', 'signaling-web-api.txt');
  test('each sample appears on the seed page (whitespace aside)', () => {
    assert.ok(existsSync(seedPath), `no seed page at ${seedPath}`);
    const page = readFileSync(seedPath, 'utf8').replace(/\s+/g, '');
    for (const [name, code] of Object.entries(SAMPLES)) {
      assert.ok(page.includes(code.replace(/\s+/g, '')), `sample ${name} is not on the seed page`);
    }
  });
});

describe('seed samples against the server', () => {
  test('addSignalingListener: the handler is registered and called with {name, data}', async () => {
    const srv = await server();
    const user1 = await login(srv, 'user1');
    const alice = await login(srv, 'alice');
    const ran = run(SAMPLES.addSignalingListener, user1.chat);
    assert.equal(ran.calls.length, 1);
    const [call] = ran.calls;
    assert.equal(call.method, 'addSignalingListener');
    assert.equal(call.args[0], 'newInvitationReceived');
    assert.equal(typeof call.args[1], 'function');
    assert.deepEqual(await call.result, { code: 0 });
    // The sample's handler is one of the chat's listeners: an invitation reaches it.
    const handler = /** @type {Function} */ (call.args[1]);
    const listeners = /** @type {any} */ (user1.chat)._listeners.get('newInvitationReceived');
    assert.ok(listeners.some((/** @type {any} */ entry) => entry.handler === handler));
    const { inviteID } = await alice.chat.invite({ userID: 'user1' });
    assert.equal((await user1.rec.next('newInvitationReceived')).data.inviteID, inviteID);
    assert.deepEqual(ran.printed, []);
  });

  test('removeSignalingListener: resolves, and the sample\'s handler is not registered afterwards', async () => {
    const srv = await server();
    const user1 = await login(srv, 'user1');
    const ran = run(SAMPLES.removeSignalingListener, user1.chat);
    assert.equal(ran.calls.length, 1);
    const [call] = ran.calls;
    assert.equal(call.method, 'removeSignalingListener');
    assert.equal(call.args[0], 'newInvitationReceived');
    assert.deepEqual(await call.result, { code: 0 });
    const listeners = /** @type {any} */ (user1.chat)._listeners.get('newInvitationReceived') ?? [];
    assert.ok(!listeners.some((/** @type {any} */ entry) => entry.handler === call.args[1]));
  });

  describe('invite', () => {
    /** @type {{chat: import('../src/chat.js').Chat, rec: ReturnType<typeof record>}} */
    let alice;
    /** @type {{chat: import('../src/chat.js').Chat, rec: ReturnType<typeof record>}} */
    let user1;
    before(async () => {
      const srv = await server();
      user1 = await login(srv, 'user1');
      alice = await login(srv, 'alice');
    });

    /**
     * Runs an invite sample as alice; returns what it printed and what user1 received.
     * @param {string} code
     */
    async function invite(code) {
      const ran = run(code, alice.chat);
      const imResponse = printedResult(await ran.output(), 'invite success:');
      assert.equal(imResponse.code, 0);
      assert.equal(typeof imResponse.inviteID, 'string');
      const event = await user1.rec.next('newInvitationReceived', (d) => d.inviteID === imResponse.inviteID);
      assert.equal(event.data.inviter, 'alice');
      assert.deepEqual(event.data.inviteeList, ['user1']);
      assert.equal(event.data.data, imResponse.data.message ? alice.chat.getSignalingInfo(imResponse.data.message)?.data : event.data.data);
      return { imResponse, event };
    }

    test('invite someone', async () => {
      const { imResponse, event } = await invite(SAMPLES.invite);
      assert.equal(imResponse.data.message.conversationID, 'C2Cuser1');
      assert.equal(imResponse.data.message.isExcludedFromUnreadCount, false);
      assert.equal(event.data.data, '');
      assert.equal(event.data.timeout, 0);
      assert.equal(event.data.onlineUserOnly, false);
    });

    test('invite without updating unreadCount and lastMessage', async () => {
      const { imResponse, event } = await invite(SAMPLES.inviteExcluded);
      assert.equal(imResponse.data.message.isExcludedFromUnreadCount, true);
      assert.equal(imResponse.data.message.isExcludedFromLastMessage, true);
      assert.equal(event.data.data, '{"excludeFromHistoryMessage":true}');
      const received = user1.rec.named('onMessageReceived').at(-1)?.data[0];
      assert.equal(received.isExcludedFromUnreadCount, true);
    });

    test('invite with a 30-second timeout', async () => {
      const { imResponse, event } = await invite(SAMPLES.inviteTimeout);
      assert.equal(alice.chat.getSignalingInfo(imResponse.data.message)?.timeout, 30);
      assert.equal(event.data.timeout, 30);
      assert.ok(event.data.timeoutRemaining > 0 && event.data.timeoutRemaining <= 30);
      assert.equal(event.data.onlineUserOnly, false);
    });

    test('invite online users only, with a 30-second timeout', async () => {
      const before = user1.rec.named('onMessageReceived').length;
      const { imResponse, event } = await invite(SAMPLES.inviteOnlineOnly);
      assert.deepEqual(imResponse.data, {}, 'no history message for online-only signaling');
      assert.equal(event.data.timeout, 30);
      assert.equal(event.data.onlineUserOnly, true);
      assert.equal(user1.rec.named('onMessageReceived').length, before);
    });
  });

  test('inviteInGroup: group AV1 with user1 and user2', async () => {
    const srv = await server();
    const user1 = await login(srv, 'user1');
    const user2 = await login(srv, 'user2');
    const alice = await login(srv, 'alice');
    await alice.chat.createGroup({ groupID: 'AV1', name: 'AV1', type: TencentCloudChat.TYPES.GRP_AVCHATROOM, memberList: [{ userID: 'user1' }, { userID: 'user2' }] });
    const ran = run(SAMPLES.inviteInGroup, alice.chat);
    const imResponse = printedResult(await ran.output(), 'inviteInGroup success:');
    assert.equal(imResponse.code, 0);
    assert.equal(imResponse.data.message.conversationID, 'GROUPAV1');
    for (const user of [user1, user2]) {
      const event = await user.rec.next('newInvitationReceived');
      assert.equal(event.data.inviteID, imResponse.inviteID);
      assert.equal(event.data.groupID, 'AV1');
      assert.deepEqual(event.data.inviteeList, ['user1', 'user2']);
      assert.equal(event.data.inviter, 'alice');
    }
  });

  test('cancel: the inviter cancels invitation 38897dbf-...', async () => {
    const srv = await server();
    const user1 = await login(srv, 'user1');
    const alice = await login(srv, 'alice');
    await alice.chat.invite({ userID: 'user1', data: '', inviteID: SEED_INVITE_ID });
    await user1.rec.next('newInvitationReceived');
    const ran = run(SAMPLES.cancel, alice.chat);
    const imResponse = printedResult(await ran.output(), 'cancel OK');
    assert.equal(imResponse.code, 0);
    assert.equal(imResponse.inviteID, SEED_INVITE_ID);
    assert.equal(alice.chat.getSignalingInfo(imResponse.data.message)?.actionType, TencentCloudChat.TSignaling.ACTION_TYPE_CANCEL_INVITE);
    assert.deepEqual((await user1.rec.next('ts_invitation_cancelled')).data, { inviteID: SEED_INVITE_ID, inviter: 'alice', groupID: '', data: '' });
  });

  test('accept: the invitee accepts invitation 38897dbf-...', async () => {
    const srv = await server();
    const user1 = await login(srv, 'user1');
    const alice = await login(srv, 'alice');
    await alice.chat.invite({ userID: 'user1', data: '', inviteID: SEED_INVITE_ID });
    await user1.rec.next('newInvitationReceived');
    const ran = run(SAMPLES.accept, user1.chat);
    const imResponse = printedResult(await ran.output(), 'accept OK');
    assert.equal(imResponse.code, 0);
    assert.equal(imResponse.inviteID, SEED_INVITE_ID);
    assert.equal(user1.chat.getSignalingInfo(imResponse.data.message)?.actionType, TencentCloudChat.TSignaling.ACTION_TYPE_ACCEPT_INVITE);
    assert.deepEqual((await alice.rec.next('ts_invitee_accepted')).data, { inviteID: SEED_INVITE_ID, inviter: 'alice', groupID: '', invitee: 'user1', data: '' });
  });

  test('reject: the invitee rejects invitation 38897dbf-...', async () => {
    const srv = await server();
    const user1 = await login(srv, 'user1');
    const alice = await login(srv, 'alice');
    await alice.chat.invite({ userID: 'user1', data: '', inviteID: SEED_INVITE_ID });
    await user1.rec.next('newInvitationReceived');
    const ran = run(SAMPLES.reject, user1.chat);
    const imResponse = printedResult(await ran.output(), 'reject OK');
    assert.equal(imResponse.code, 0);
    assert.equal(imResponse.inviteID, SEED_INVITE_ID);
    assert.equal(user1.chat.getSignalingInfo(imResponse.data.message)?.actionType, TencentCloudChat.TSignaling.ACTION_TYPE_REJECT_INVITE);
    assert.deepEqual((await alice.rec.next('ts_invitee_rejected')).data, { inviteID: SEED_INVITE_ID, inviter: 'alice', groupID: '', invitee: 'user1', data: '' });
  });

  test('the cancel sample when there is no such invitation prints the 8020 error', async () => {
    const srv = await server();
    const alice = await login(srv, 'alice');
    const ran = run(SAMPLES.cancel, alice.chat);
    const line = await ran.output();
    assert.equal(line.level, 'warn');
    assert.equal(line.args[0], 'cancel failed:');
    assert.ok(line.args[1] instanceof TencentCloudChat.BeckonError);
    assert.ok(line.args[1] instanceof Error);
    assert.equal(line.args[1].code, 8020);
  });

  test('getSignalingInfo: a signaling message gives its info; a regular message gives null', async () => {
    const srv = await server();
    await login(srv, 'user1');
    const alice = await login(srv, 'alice');
    const { inviteID, data } = await alice.chat.invite({ userID: 'user1', data: '{"type":"video"}', timeout: 30 });
    const ran = run(SAMPLES.getSignalingInfo, alice.chat, data.message);
    const line = await ran.output();
    assert.equal(line.level, 'log');
    assert.equal(line.args[0], 'signaling info');
    assert.deepEqual(line.args[1], {
      businessID: 1,
      inviteID,
      inviter: 'alice',
      groupID: '',
      inviteeList: ['user1'],
      data: '{"type":"video"}',
      actionType: 1,
      timeout: 30,
    });
    const text = { type: 'TIMTextElem', payload: { text: 'hello' } };
    const plain = run(SAMPLES.getSignalingInfo, alice.chat, text);
    assert.deepEqual((await plain.output()).args, ['signaling info', null]);
  });

  test('modifyInvitation: data of invitation 38897dbf-... becomes xxxx', async () => {
    const srv = await server();
    const user1 = await login(srv, 'user1');
    const alice = await login(srv, 'alice');
    await alice.chat.invite({ userID: 'user1', data: 'original', timeout: 60, inviteID: SEED_INVITE_ID });
    await user1.rec.next('newInvitationReceived');
    const ran = run(SAMPLES.modifyInvitation, alice.chat);
    const imResponse = printedResult(await ran.output(), 'modifyInvitation OK');
    assert.equal(imResponse.code, 0);
    assert.equal(alice.chat.getSignalingInfo(imResponse.data.message)?.data, 'xxxx');
    assert.deepEqual((await user1.rec.next('ts_invitation_modified')).data, { inviteID: SEED_INVITE_ID, data: 'xxxx', modifiedBy: 'alice' });
    const modified = user1.rec.named('onMessageModified').at(-1)?.data[0];
    assert.equal(user1.chat.getSignalingInfo(modified)?.data, 'xxxx');
  });
});
