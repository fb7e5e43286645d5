// What the SDK decides by itself: constants, server addresses, option checks (9003 / 9007),
// calls before login (2024), listener validation, and getSignalingInfo on odd input.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import BeckonChat, { create, TSignaling, EVENT, TYPES, Chat, BeckonError } from '../src/index.js';
import { webSocketURL, backoffDelay } from '../src/chat.js';
import { useServer, uid } from '../test-support/harness.js';

const S = useServer();

/**
 * Asserts that `call` returns a promise (it must not throw) that rejects with `code` and a
 * message matching `text`.
 * @param {() => unknown} call
 * @param {number} code
 * @param {RegExp} [text]
 */
async function rejectsWith(call, code, text) {
  /** @type {any} */
  let promise;
  assert.doesNotThrow(() => {
    promise = call();
  }, 'the call must not throw synchronously');
  assert.ok(promise instanceof Promise, 'the call returns a promise');
  await assert.rejects(promise, (/** @type {any} */ error) => {
    assert.ok(error instanceof BeckonError);
    assert.ok(error instanceof Error);
    assert.equal(error.code, code, `code ${error.code}: ${error.message}`);
    if (text) assert.match(error.message, text);
    return true;
  });
}

describe('constants', () => {
  test('TSignaling, EVENT and TYPES have Tencent\'s values', () => {
    assert.deepEqual({ ...TSignaling }, {
      NEW_INVITATION_RECEIVED: 'newInvitationReceived',
      INVITEE_ACCEPTED: 'ts_invitee_accepted',
      INVITEE_REJECTED: 'ts_invitee_rejected',
      INVITATION_CANCELLED: 'ts_invitation_cancelled',
      INVITATION_TIMEOUT: 'ts_invitation_timeout',
      INVITATION_MODIFIED: 'ts_invitation_modified',
      ACTION_TYPE_UNKNOWN: 0,
      ACTION_TYPE_INVITE: 1,
      ACTION_TYPE_CANCEL_INVITE: 2,
      ACTION_TYPE_ACCEPT_INVITE: 3,
      ACTION_TYPE_REJECT_INVITE: 4,
      ACTION_TYPE_INVITE_TIMEOUT: 5,
    });
    assert.deepEqual({ ...EVENT }, {
      SDK_READY: 'sdkStateReady',
      SDK_NOT_READY: 'sdkStateNotReady',
      MESSAGE_RECEIVED: 'onMessageReceived',
      MESSAGE_MODIFIED: 'onMessageModified',
      NET_STATE_CHANGE: 'netStateChange',
      KICKED_OUT: 'kickedOut',
      ERROR: 'error',
    });
    assert.equal(TYPES.NET_STATE_CONNECTED, 'connected');
    assert.equal(TYPES.NET_STATE_CONNECTING, 'connecting');
    assert.equal(TYPES.NET_STATE_DISCONNECTED, 'disconnected');
    assert.equal(TYPES.KICKED_OUT_USERSIG_EXPIRED, 'kickedOutUserSigExpired');
    assert.equal(TYPES.GRP_WORK, 'Private');
    assert.equal(TYPES.GRP_PUBLIC, 'Public');
    assert.equal(TYPES.GRP_MEETING, 'ChatRoom');
    assert.equal(TYPES.GRP_AVCHATROOM, 'AVChatRoom');
    assert.equal(TYPES.GRP_COMMUNITY, 'Community');
    assert.equal(TYPES.CONV_C2C, 'C2C');
    assert.equal(TYPES.CONV_GROUP, 'GROUP');
    assert.equal(TYPES.MSG_CUSTOM, 'TIMCustomElem');
    assert.equal(BeckonChat.TSignaling, TSignaling);
    assert.equal(BeckonChat.create, create);
    assert.equal(typeof BeckonChat.VERSION, 'string');
  });
});

describe('create', () => {
  test('derives the WebSocket URL from the server address', () => {
    assert.equal(webSocketURL('http://127.0.0.1:7420'), 'ws://127.0.0.1:7420/ws');
    assert.equal(webSocketURL('http://127.0.0.1:7420/'), 'ws://127.0.0.1:7420/ws');
    assert.equal(webSocketURL('https://chat.example.com'), 'wss://chat.example.com/ws');
    assert.equal(webSocketURL('https://example.com/beckon/'), 'wss://example.com/beckon/ws');
    assert.equal(webSocketURL('ws://127.0.0.1:7420/ws'), 'ws://127.0.0.1:7420/ws');
    assert.equal(webSocketURL('ws://127.0.0.1:7420'), 'ws://127.0.0.1:7420/ws');
    assert.equal(webSocketURL('wss://example.com/custom/path'), 'wss://example.com/custom/path');
    assert.equal(create({ SDKAppID: 1, server: 'http://h:1' }).url, 'ws://h:1/ws');
    assert.equal(create({ SDKAppID: 1 }).url, 'ws://127.0.0.1:7420/ws');
  });

  test('refuses bad options at once', () => {
    assert.throws(() => create(/** @type {any} */ (undefined)), TypeError);
    assert.throws(() => create(/** @type {any} */ ({ SDKAppID: '1400000001', server: 'http://h' })), /SDKAppID/);
    assert.throws(() => create({ SDKAppID: 1, server: 'h:1' }), /server/);
    assert.throws(() => create({ SDKAppID: 1, server: 'ftp://h' }), /server/);
    assert.throws(() => create({ SDKAppID: 1, requestTimeout: 0 }), /requestTimeout/);
    assert.throws(() => create({ SDKAppID: 1, pingInterval: -1 }), /pingInterval/);
    assert.throws(() => create({ SDKAppID: 1, WebSocket: /** @type {any} */ ('ws') }), /WebSocket/);
  });

  test('each instance has its own instanceID', () => {
    const a = create({ SDKAppID: 1 });
    const b = create({ SDKAppID: 1 });
    assert.ok(a instanceof Chat);
    assert.match(a.instanceID, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(a.instanceID, b.instanceID);
  });

  test('backoff grows from 100 ms to 5 s with jitter', () => {
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const cap = Math.min(100 * 2 ** attempt, 5000);
      for (let i = 0; i < 20; i += 1) {
        const d = backoffDelay(attempt);
        assert.ok(d >= cap / 2 && d <= cap, `attempt ${attempt}: ${d}`);
      }
    }
  });
});

describe('before login', () => {
  test('every call rejects with 2024', async () => {
    const chat = create({ SDKAppID: 1400000001, server: 'http://127.0.0.1:9' });
    await rejectsWith(() => chat.invite({ userID: 'bob' }), 2024, /not logged in/);
    await rejectsWith(() => chat.inviteInGroup({ groupID: 'g', inviteeList: ['bob'] }), 2024);
    await rejectsWith(() => chat.cancel({ inviteID: 'x' }), 2024);
    await rejectsWith(() => chat.accept({ inviteID: 'x' }), 2024);
    await rejectsWith(() => chat.reject({ inviteID: 'x' }), 2024);
    await rejectsWith(() => chat.modifyInvitation({ inviteID: 'x', data: 'd' }), 2024);
    await rejectsWith(() => chat.getConversationList(), 2024);
    await rejectsWith(() => chat.getMessageList({ conversationID: 'C2Cbob' }), 2024);
    await rejectsWith(() => chat.setMessageRead({ conversationID: 'C2Cbob' }), 2024);
    await rejectsWith(() => chat.createGroup({ name: 'g' }), 2024);
    await rejectsWith(() => chat.getGroupProfile({ groupID: 'g' }), 2024);
    await rejectsWith(() => chat.getGroupMemberList({ groupID: 'g' }), 2024);
    await rejectsWith(() => chat.getGroupList(), 2024);
    await rejectsWith(() => chat.addGroupMember({ groupID: 'g', userIDList: ['bob'] }), 2024);
    await rejectsWith(() => chat.deleteGroupMember({ groupID: 'g', userIDList: ['bob'] }), 2024);
    await rejectsWith(() => chat.quitGroup('g'), 2024);
    await rejectsWith(() => chat.dismissGroup('g'), 2024);
    assert.deepEqual(await chat.logout(), { code: 0, data: {} });
    assert.equal(chat.getLoginUser(), '');
    assert.equal(chat.isReady(), false);
  });

  test('and after logout', async () => {
    const a = uid('alice');
    const { chat, rec } = await S.connect(a);
    assert.equal(chat.getLoginUser(), a);
    assert.equal(chat.isReady(), true);
    assert.deepEqual(await chat.logout(), { code: 0, data: {} });
    await rec.next(EVENT.SDK_NOT_READY);
    assert.deepEqual(rec.named(EVENT.NET_STATE_CHANGE).map((e) => e.data.state), ['connecting', 'connected', 'disconnected']);
    await rejectsWith(() => chat.invite({ userID: 'bob' }), 2024);
    await rejectsWith(() => chat.getConversationList(), 2024);
    // Logging in again works on the same instance.
    const again = await S.connect(a);
    assert.equal((await again.chat.getConversationList()).code, 0);
  });
});

describe('option checks reject with 9003 / 9007 and name the field', () => {
  test('invite and inviteInGroup', async () => {
    const { chat } = await S.connect(uid('alice'));
    await rejectsWith(() => chat.invite(/** @type {any} */ (undefined)), 9003, /options must be an object/);
    await rejectsWith(() => chat.invite(/** @type {any} */ ('bob')), 9003, /options/);
    await rejectsWith(() => chat.invite(/** @type {any} */ ({})), 9003, /userID/);
    await rejectsWith(() => chat.invite({ userID: '' }), 9003, /userID/);
    await rejectsWith(() => chat.invite(/** @type {any} */ ({ userID: 5 })), 9003, /userID/);
    await rejectsWith(() => chat.invite({ userID: 'x'.repeat(129) }), 9003, /userID must be 1 to 128 bytes/);
    await rejectsWith(() => chat.invite({ userID: 'a\u0001b' }), 9003, /control/);
    await rejectsWith(() => chat.invite(/** @type {any} */ ({ userID: 'bob', data: 5 })), 9003, /data must be a string/);
    await rejectsWith(() => chat.invite({ userID: 'bob', data: 'x'.repeat(8193) }), 9007, /data is 8193 bytes; the limit is 8192/);
    // The limit is in bytes of UTF-8: 2731 three-byte characters are 8193 bytes.
    await rejectsWith(() => chat.invite({ userID: 'bob', data: '\u4e2d'.repeat(2731) }), 9007, /8193 bytes/);
    await rejectsWith(() => chat.invite({ userID: 'bob', timeout: -1 }), 9003, /timeout must be an integer from 0 to 86400/);
    await rejectsWith(() => chat.invite({ userID: 'bob', timeout: 1.5 }), 9003, /timeout/);
    await rejectsWith(() => chat.invite({ userID: 'bob', timeout: 86401 }), 9003, /timeout/);
    await rejectsWith(() => chat.invite(/** @type {any} */ ({ userID: 'bob', timeout: '30' })), 9003, /timeout/);
    await rejectsWith(() => chat.invite(/** @type {any} */ ({ userID: 'bob', onlineUserOnly: 'yes' })), 9003, /onlineUserOnly/);
    await rejectsWith(() => chat.invite(/** @type {any} */ ({ userID: 'bob', offlinePushInfo: 'x' })), 9003, /offlinePushInfo/);
    await rejectsWith(() => chat.invite({ userID: 'bob', offlinePushInfo: { title: 'x'.repeat(5000) } }), 9007, /offlinePushInfo/);
    await rejectsWith(() => chat.invite({ userID: 'bob', inviteID: '' }), 9003, /inviteID/);
    await rejectsWith(() => chat.inviteInGroup(/** @type {any} */ ({ inviteeList: ['bob'] })), 9003, /groupID/);
    await rejectsWith(() => chat.inviteInGroup({ groupID: 'g', inviteeList: [] }), 9003, /inviteeList must hold 1 to 200/);
    await rejectsWith(() => chat.inviteInGroup(/** @type {any} */ ({ groupID: 'g', inviteeList: 'bob' })), 9003, /inviteeList/);
    await rejectsWith(() => chat.inviteInGroup(/** @type {any} */ ({ groupID: 'g', inviteeList: ['bob', 7] })), 9003, /inviteeList\[1\]/);
    await rejectsWith(() => chat.inviteInGroup({ groupID: 'g', inviteeList: ['bob'], data: 'x'.repeat(9000) }), 9007);
  });

  test('cancel, accept, reject, modifyInvitation', async () => {
    const { chat } = await S.connect(uid('alice'));
    for (const call of /** @type {const} */ (['cancel', 'accept', 'reject'])) {
      await rejectsWith(() => chat[call](/** @type {any} */ ({})), 9003, /inviteID/);
      await rejectsWith(() => chat[call](/** @type {any} */ ({ inviteID: 42 })), 9003, /inviteID/);
      await rejectsWith(() => chat[call](/** @type {any} */ ({ inviteID: 'x', data: {} })), 9003, /data/);
      await rejectsWith(() => chat[call]({ inviteID: 'x', data: 'x'.repeat(8193) }), 9007, /data/);
    }
    await rejectsWith(() => chat.modifyInvitation(/** @type {any} */ ({ inviteID: 'x' })), 9003, /data is required/);
    await rejectsWith(() => chat.modifyInvitation({ inviteID: 'x', data: 'x'.repeat(8193) }), 9007);
  });

  test('history and group calls', async () => {
    const { chat } = await S.connect(uid('alice'));
    await rejectsWith(() => chat.getMessageList(/** @type {any} */ ({})), 9003, /conversationID/);
    await rejectsWith(() => chat.getMessageList({ conversationID: 'C2Cbob', count: 0 }), 9003, /count must be an integer from 1 to 100/);
    await rejectsWith(() => chat.getMessageList({ conversationID: 'C2Cbob', count: 101 }), 9003, /count/);
    await rejectsWith(() => chat.getMessageList(/** @type {any} */ ({ conversationID: 'C2Cbob', nextReqMessageID: 3 })), 9003, /nextReqMessageID/);
    await rejectsWith(() => chat.setMessageRead(/** @type {any} */ ({ conversationID: null })), 9003, /conversationID/);
    await rejectsWith(() => chat.createGroup(/** @type {any} */ ({})), 9003, /name/);
    await rejectsWith(() => chat.createGroup(/** @type {any} */ ({ name: 'g', memberList: ['bob'] })), 9003, /memberList\[0\]/);
    await rejectsWith(() => chat.getGroupProfile(/** @type {any} */ ({})), 9003, /groupID/);
    await rejectsWith(() => chat.getGroupMemberList({ groupID: 'g', count: 0 }), 9003, /count/);
    await rejectsWith(() => chat.addGroupMember(/** @type {any} */ ({ groupID: 'g' })), 9003, /userIDList/);
    await rejectsWith(() => chat.deleteGroupMember({ groupID: 'g', userIDList: [''] }), 9003, /userIDList\[0\]/);
    await rejectsWith(() => chat.quitGroup(/** @type {any} */ ({ groupID: 'g' })), 9003, /groupID must be a string/);
    await rejectsWith(() => chat.dismissGroup(''), 9003, /groupID/);
  });

  test('login', async () => {
    const chat = create({ SDKAppID: 1400000001, server: S.srv.http });
    await rejectsWith(() => chat.login(/** @type {any} */ (null)), 9003, /options/);
    await rejectsWith(() => chat.login(/** @type {any} */ ({ userSig: 'x' })), 9003, /userID/);
    await rejectsWith(() => chat.login(/** @type {any} */ ({ userID: 'bob' })), 9003, /userSig/);
  });
});

describe('listener registration', () => {
  test('addSignalingListener / removeSignalingListener check the event name and the handler', async () => {
    const chat = create({ SDKAppID: 1 });
    await rejectsWith(() => chat.addSignalingListener(/** @type {any} */ ('newInvitation'), () => {}), 9003, /eventName must be a value of TSignaling/);
    await rejectsWith(() => chat.addSignalingListener(/** @type {any} */ (EVENT.SDK_READY), () => {}), 9003, /eventName/);
    await rejectsWith(() => chat.addSignalingListener(TSignaling.INVITEE_ACCEPTED, /** @type {any} */ (null)), 9003, /handler must be a function/);
    await rejectsWith(() => chat.removeSignalingListener(/** @type {any} */ ('nope'), () => {}), 9003, /eventName/);
    assert.deepEqual(await chat.addSignalingListener(TSignaling.INVITEE_ACCEPTED, () => {}), { code: 0 });
    assert.deepEqual(await chat.removeSignalingListener(TSignaling.INVITEE_ACCEPTED, () => {}), { code: 0 });
  });

  test('on / off take EVENT names', () => {
    const chat = create({ SDKAppID: 1 });
    assert.throws(() => chat.on(/** @type {any} */ ('sdkReady'), () => {}), TypeError);
    assert.throws(() => chat.on(EVENT.SDK_READY, /** @type {any} */ ('x')), TypeError);
    const handler = () => {};
    chat.on(EVENT.SDK_READY, handler);
    chat.off(EVENT.SDK_READY, handler);
    chat.off(/** @type {any} */ ('anything'), handler);
  });
});

describe('getSignalingInfo', () => {
  const good = JSON.stringify({ businessID: 1, timeout: 30, data: 'd', inviteID: 'i', groupID: '', actionType: 1, inviter: 'alice', inviteeList: ['bob'] });
  const chat = create({ SDKAppID: 1 });

  test('a signaling message gives its info, keys in the documented order', () => {
    const info = chat.getSignalingInfo({ type: 'TIMCustomElem', payload: { data: good } });
    assert.deepEqual(info, { businessID: 1, inviteID: 'i', inviter: 'alice', groupID: '', inviteeList: ['bob'], data: 'd', actionType: 1, timeout: 30 });
    assert.deepEqual(Object.keys(/** @type {object} */ (info)), ['businessID', 'inviteID', 'inviter', 'groupID', 'inviteeList', 'data', 'actionType', 'timeout']);
  });

  test('anything else gives null and never throws', () => {
    const throwing = new Proxy({}, {
      get() {
        throw new Error('boom');
      },
    });
    const cases = [
      undefined,
      null,
      5,
      'TIMCustomElem',
      [],
      {},
      throwing,
      { type: 'TIMTextElem', payload: { data: good } },
      { type: 'TIMCustomElem' },
      { type: 'TIMCustomElem', payload: null },
      { type: 'TIMCustomElem', payload: { data: 5 } },
      { type: 'TIMCustomElem', payload: { data: '{"hello":1}' } },
      { type: 'TIMCustomElem', payload: { data: 'inviteID actionType but not JSON' } },
      { type: 'TIMCustomElem', payload: { data: '["inviteID","actionType"]' } },
      { type: 'TIMCustomElem', payload: { data: good.replace('"timeout":30', '"timeout":-1') } },
      { type: 'TIMCustomElem', payload: { data: good.replace('"actionType":1', '"actionType":"1"') } },
      { type: 'TIMCustomElem', payload: { data: good.replace('["bob"]', '["bob",2]') } },
      { type: 'TIMCustomElem', payload: { data: good.replace(',"inviter":"alice"', '') } },
      { type: 'TIMCustomElem', payload: { data: good.replace('"businessID":1', '"businessID":1.5') } },
    ];
    cases.forEach((message, index) => {
      assert.equal(chat.getSignalingInfo(message), null, `case ${index}`);
    });
  });
});
