// One-to-one signaling against the real server: every call, event and refusal of the
// contract, with the exact `{name, data}` the app gets and who gets it.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import BeckonChat from '../src/index.js';
import { useServer, uid } from '../test-support/harness.js';
import { importAccounts, userSig } from '../test-support/server.js';

const { TSignaling, EVENT } = BeckonChat;
const S = useServer();

/**
 * Asserts a rejected promise with this code.
 * @param {Promise<unknown>} promise
 * @param {number} code
 * @param {RegExp} [text]
 */
async function rejects(promise, code, text) {
  await assert.rejects(promise, (/** @type {any} */ error) => {
    assert.ok(error instanceof Error, 'rejects with an Error');
    assert.ok(error instanceof BeckonChat.BeckonError, 'rejects with a BeckonError');
    assert.equal(error.code, code, `code ${error.code}: ${error.message}`);
    assert.equal(typeof error.message, 'string');
    assert.ok(error.message.length > 0);
    if (text) assert.match(error.message, text);
    return true;
  });
}

/** The signaling payload of a history message. @param {any} message */
function payload(message) {
  return JSON.parse(message.payload.data);
}

describe('invite and its answers', () => {
  test('invite: result, the invitee event, and the history message', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const result = await alice.chat.invite({ userID: b, data: '{"call":"video"}', timeout: 30 });
    assert.equal(result.code, 0);
    assert.match(result.inviteID, /^[0-9a-f-]{36}$/);
    assert.deepEqual(Object.keys(result).sort(), ['code', 'data', 'inviteID']);
    const message = /** @type {any} */ (result.data.message);
    assert.equal(message.type, 'TIMCustomElem');
    assert.equal(message.conversationID, `C2C${b}`);
    assert.equal(message.conversationType, 'C2C');
    assert.equal(message.from, a);
    assert.equal(message.to, b);
    assert.equal(message.flow, 'out');
    assert.equal(
      message.payload.data,
      JSON.stringify({ businessID: 1, timeout: 30, data: '{"call":"video"}', inviteID: result.inviteID, groupID: '', actionType: 1, inviter: a, inviteeList: [b] }),
    );

    const event = await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED);
    assert.equal(event.name, 'newInvitationReceived');
    const { expiresAt, timeoutRemaining, ...rest } = event.data;
    assert.deepEqual(rest, {
      inviteID: result.inviteID,
      inviter: a,
      groupID: '',
      inviteeList: [b],
      data: '{"call":"video"}',
      timeout: 30,
      onlineUserOnly: false,
    });
    assert.ok(timeoutRemaining >= 29 && timeoutRemaining <= 30, `timeoutRemaining ${timeoutRemaining}`);
    assert.equal(typeof expiresAt, 'number');
    // The history event comes first, then the signaling event.
    const names = bob.rec.events.filter((e) => e.name !== EVENT.NET_STATE_CHANGE && e.name !== EVENT.SDK_READY).map((e) => e.name);
    assert.deepEqual(names, [EVENT.MESSAGE_RECEIVED, TSignaling.NEW_INVITATION_RECEIVED]);
    // The inviter never gets its own invitation.
    assert.equal(alice.rec.named(TSignaling.NEW_INVITATION_RECEIVED).length, 0);
  });

  test('accept: the inviter and the accepter\'s other device hear it; the second device stops ringing', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const phone = await S.connect(b);
    const laptop = await S.connect(b);
    const alice = await S.connect(a);
    const { inviteID } = await alice.chat.invite({ userID: b, data: 'ring', timeout: 60 });
    await phone.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === inviteID);
    await laptop.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === inviteID);

    const accepted = await phone.chat.accept({ inviteID, data: 'on my way' });
    assert.equal(accepted.code, 0);
    assert.equal(accepted.inviteID, inviteID);
    const message = /** @type {any} */ (accepted.data.message);
    assert.equal(message.from, b);
    assert.equal(message.to, a);
    assert.equal(message.flow, 'out');
    assert.deepEqual(payload(message), { businessID: 1, timeout: 0, data: 'on my way', inviteID, groupID: '', actionType: 3, inviter: a, inviteeList: [b] });

    const toAlice = await alice.rec.next(TSignaling.INVITEE_ACCEPTED);
    assert.deepEqual(toAlice, {
      name: 'ts_invitee_accepted',
      data: { inviteID, inviter: a, groupID: '', invitee: b, data: 'on my way' },
    });
    const toLaptop = await laptop.rec.next(TSignaling.INVITEE_ACCEPTED);
    assert.deepEqual(toLaptop.data, { inviteID, inviter: a, groupID: '', invitee: b, data: 'on my way', handledOnOtherDevice: true });

    // The accepting device learns from its promise, not from an event: once a later event has
    // come (events of a user arrive in order), the accept event can no longer come.
    const next = await alice.chat.invite({ userID: b });
    await phone.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === next.inviteID);
    assert.equal(phone.rec.named(TSignaling.INVITEE_ACCEPTED).length, 0);
    // Too late now: the invitation is over.
    await rejects(laptop.chat.accept({ inviteID }), 8010);
    await rejects(laptop.chat.reject({ inviteID }), 8010);
  });

  test('reject: the inviter hears it with the rejecter\'s data', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const { inviteID } = await alice.chat.invite({ userID: b, data: 'x' });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED);
    const rejected = await bob.chat.reject({ inviteID, data: 'busy' });
    assert.equal(rejected.code, 0);
    assert.equal(rejected.inviteID, inviteID);
    assert.equal(payload(rejected.data.message).actionType, TSignaling.ACTION_TYPE_REJECT_INVITE);
    const event = await alice.rec.next(TSignaling.INVITEE_REJECTED);
    assert.deepEqual(event, {
      name: 'ts_invitee_rejected',
      data: { inviteID, inviter: a, groupID: '', invitee: b, data: 'busy' },
    });
    await rejects(bob.chat.accept({ inviteID }), 8010);
  });

  test('cancel: every pending invitee and the inviter\'s other device hear it', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const alice2 = await S.connect(a);
    const { inviteID } = await alice.chat.invite({ userID: b, data: 'x', timeout: 60 });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED);
    const cancelled = await alice.chat.cancel({ inviteID, data: 'hung up' });
    assert.equal(cancelled.code, 0);
    assert.equal(cancelled.inviteID, inviteID);
    assert.deepEqual(payload(cancelled.data.message), { businessID: 1, timeout: 0, data: 'hung up', inviteID, groupID: '', actionType: 2, inviter: a, inviteeList: [b] });
    assert.deepEqual(await bob.rec.next(TSignaling.INVITATION_CANCELLED), {
      name: 'ts_invitation_cancelled',
      data: { inviteID, inviter: a, groupID: '', data: 'hung up' },
    });
    assert.deepEqual((await alice2.rec.next(TSignaling.INVITATION_CANCELLED)).data, {
      inviteID, inviter: a, groupID: '', data: 'hung up', handledOnOtherDevice: true,
    });
    await rejects(bob.chat.accept({ inviteID }), 8010);
    await rejects(alice.chat.cancel({ inviteID }), 8020);
  });

  test('timeout: the server times the invitation out; inviter and invitee hear it', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const { inviteID } = await alice.chat.invite({ userID: b, data: 'quick', timeout: 1 });
    assert.equal((await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED)).data.timeout, 1);
    const toAlice = await alice.rec.next(TSignaling.INVITATION_TIMEOUT, undefined, 5000);
    assert.deepEqual(toAlice, {
      name: 'ts_invitation_timeout',
      data: { inviteID, inviter: a, groupID: '', inviteeList: [b], data: 'quick', isSelfTimeout: false },
    });
    const toBob = await bob.rec.next(TSignaling.INVITATION_TIMEOUT, undefined, 5000);
    assert.deepEqual(toBob.data, { inviteID, inviter: a, groupID: '', inviteeList: [b], data: 'quick', isSelfTimeout: true });
    // The timeout message came just before, from the inviter.
    const received = bob.rec.named(EVENT.MESSAGE_RECEIVED).map((e) => e.data[0]);
    assert.deepEqual(received.map((m) => payload(m).actionType), [TSignaling.ACTION_TYPE_INVITE, TSignaling.ACTION_TYPE_INVITE_TIMEOUT]);
    assert.equal(received[1].from, a);
    assert.equal(received[1].flow, 'in');
    await rejects(bob.chat.accept({ inviteID }), 8010, /no active invitation/);
  });

  test('modifyInvitation: every party but the modifying device hears it', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const { inviteID } = await alice.chat.invite({ userID: b, data: 'v1', timeout: 60 });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED);

    const modified = await alice.chat.modifyInvitation({ inviteID, data: 'v2' });
    assert.equal(modified.code, 0);
    assert.deepEqual(Object.keys(modified).sort(), ['code', 'data']);
    const message = /** @type {any} */ (modified.data.message);
    assert.deepEqual(payload(message), { businessID: 1, timeout: 60, data: 'v2', inviteID, groupID: '', actionType: 1, inviter: a, inviteeList: [b] });
    const changed = await bob.rec.next(EVENT.MESSAGE_MODIFIED);
    assert.equal(changed.data.length, 1);
    assert.equal(changed.data[0].ID, message.ID);
    assert.equal(changed.data[0].flow, 'in');
    assert.deepEqual(await bob.rec.next(TSignaling.INVITATION_MODIFIED), {
      name: 'ts_invitation_modified',
      data: { inviteID, data: 'v2', modifiedBy: a },
    });
    // An invitee may modify too.
    await bob.chat.modifyInvitation({ inviteID, data: 'v3' });
    assert.deepEqual((await alice.rec.next(TSignaling.INVITATION_MODIFIED)).data, { inviteID, data: 'v3', modifiedBy: b });
    // The cancel after it carries on; a modify after the end is refused.
    await alice.chat.cancel({ inviteID });
    await rejects(alice.chat.modifyInvitation({ inviteID, data: 'v4' }), 8010);
  });

  test('onlineUserOnly: no history message, events without replay', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const result = await alice.chat.invite({ userID: b, data: 'live', timeout: 30, onlineUserOnly: true });
    assert.deepEqual(result.data, {});
    const event = await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED);
    assert.equal(event.data.onlineUserOnly, true);
    assert.equal(bob.rec.named(EVENT.MESSAGE_RECEIVED).length, 0);
    await rejects(alice.chat.modifyInvitation({ inviteID: result.inviteID, data: 'm' }), 9008);
    const accepted = await bob.chat.accept({ inviteID: result.inviteID });
    assert.deepEqual(accepted, { code: 0, inviteID: result.inviteID, data: {} });
    assert.equal((await alice.rec.next(TSignaling.INVITEE_ACCEPTED)).data.invitee, b);
  });

  test('a proposed inviteID is used, and refused with 8012 once taken', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    await S.connect(b);
    const alice = await S.connect(a);
    const inviteID = `call-${uid('x')}`;
    const result = await alice.chat.invite({ userID: b, inviteID });
    assert.equal(result.inviteID, inviteID);
    await rejects(alice.chat.invite({ userID: b, inviteID }), 8012);
    await alice.chat.cancel({ inviteID });
    await rejects(alice.chat.invite({ userID: b, inviteID }), 8012);
  });
});

describe('refusals from the server', () => {
  test('8010, 8011, 8020, 9004, 9005', async () => {
    const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
    const bob = await S.connect(b);
    const carol = await S.connect(c);
    const alice = await S.connect(a);
    const { inviteID } = await alice.chat.invite({ userID: b, timeout: 60 });
    await rejects(carol.chat.accept({ inviteID }), 8011);
    await rejects(carol.chat.reject({ inviteID }), 8011);
    await rejects(bob.chat.cancel({ inviteID }), 8011);
    await rejects(carol.chat.modifyInvitation({ inviteID, data: 'x' }), 8011);
    await rejects(bob.chat.accept({ inviteID: 'no-such-invitation' }), 8010);
    await rejects(alice.chat.cancel({ inviteID: 'no-such-invitation' }), 8020);
    await rejects(alice.chat.modifyInvitation({ inviteID: 'no-such-invitation', data: 'x' }), 8010);
    await rejects(alice.chat.invite({ userID: uid('nobody') }), 9004);
    await rejects(alice.chat.invite({ userID: a }), 9005);
    await bob.chat.accept({ inviteID });
    await rejects(bob.chat.accept({ inviteID }), 8010);
    await rejects(alice.chat.cancel({ inviteID }), 8020);
  });
});

describe('listeners', () => {
  test('listeners added before login get the login replay of pending invitations, before SDK_READY', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    await importAccounts(S.srv, [b]);
    const alice = await S.connect(a);
    const first = await alice.chat.invite({ userID: b, data: 'while you were out', timeout: 120 });
    const second = await alice.chat.invite({ userID: b, data: 'again' });

    const { chat, rec } = S.chat();
    const login = await chat.login({ userID: b, userSig: userSig(b) });
    assert.equal(login.code, 0);
    assert.equal(login.data.repeatLogin, false);
    await rec.next(EVENT.SDK_READY);
    const names = rec.events.map((e) => e.name);
    assert.deepEqual(names, [
      EVENT.NET_STATE_CHANGE,
      EVENT.NET_STATE_CHANGE,
      TSignaling.NEW_INVITATION_RECEIVED,
      TSignaling.NEW_INVITATION_RECEIVED,
      EVENT.SDK_READY,
    ]);
    assert.deepEqual(rec.events.slice(0, 2).map((e) => e.data.state), ['connecting', 'connected']);
    const [one, two] = rec.named(TSignaling.NEW_INVITATION_RECEIVED).map((e) => e.data);
    assert.equal(one.inviteID, first.inviteID);
    assert.equal(one.data, 'while you were out');
    assert.equal(one.replay, true);
    assert.equal(one.timeout, 120);
    assert.ok(one.timeoutRemaining <= 120 && one.timeoutRemaining >= 110);
    assert.equal(two.inviteID, second.inviteID);
    // A repeated login of the same user is not an error.
    const again = await chat.login({ userID: b, userSig: userSig(b) });
    assert.equal(again.data.repeatLogin, true);
    await rejects(chat.login({ userID: a, userSig: userSig(a) }), 9010);
  });

  test('context is `this`; removeSignalingListener stops exactly that listener', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    /** @type {{who: string, self: unknown, event: any}[]} */
    const calls = [];
    const ctxA = { who: 'A' };
    const ctxB = { who: 'B' };
    /** @this {{who: string}} @param {any} event */
    function handler(event) {
      calls.push({ who: this.who, self: this, event });
    }
    assert.deepEqual(await bob.chat.addSignalingListener(TSignaling.NEW_INVITATION_RECEIVED, handler, ctxA), { code: 0 });
    await bob.chat.addSignalingListener(TSignaling.NEW_INVITATION_RECEIVED, handler, ctxB);

    const one = await alice.chat.invite({ userID: b });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === one.inviteID);
    assert.deepEqual(calls.map((c) => c.who), ['A', 'B']);
    assert.equal(calls[0].self, ctxA);
    assert.equal(calls[0].event.name, TSignaling.NEW_INVITATION_RECEIVED);
    assert.equal(calls[0].event.data.inviteID, one.inviteID);

    assert.deepEqual(await bob.chat.removeSignalingListener(TSignaling.NEW_INVITATION_RECEIVED, handler, ctxA), { code: 0 });
    const two = await alice.chat.invite({ userID: b });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === two.inviteID);
    assert.deepEqual(calls.map((c) => c.who), ['A', 'B', 'B']);

    // Without a context every registration of the handler goes.
    await bob.chat.addSignalingListener(TSignaling.NEW_INVITATION_RECEIVED, handler, ctxA);
    await bob.chat.removeSignalingListener(TSignaling.NEW_INVITATION_RECEIVED, handler);
    const three = await alice.chat.invite({ userID: b });
    await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === three.inviteID);
    assert.equal(calls.length, 3);
  });

  test('a throwing listener does not stop the others', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const quiet = console.error;
    console.error = () => {};
    try {
      await bob.chat.addSignalingListener(TSignaling.INVITATION_CANCELLED, () => {
        throw new Error('app bug');
      });
      const { inviteID } = await alice.chat.invite({ userID: b });
      await alice.chat.cancel({ inviteID });
      assert.equal((await bob.rec.next(TSignaling.INVITATION_CANCELLED)).data.inviteID, inviteID);
    } finally {
      console.error = quiet;
    }
  });
});

describe('getSignalingInfo', () => {
  test('reads the messages the server stores, and null for anything else', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const bob = await S.connect(b);
    const alice = await S.connect(a);
    const { inviteID, data } = await alice.chat.invite({ userID: b, data: '{"k":1}', timeout: 9 });
    assert.deepEqual(alice.chat.getSignalingInfo(data.message), {
      businessID: 1,
      inviteID,
      inviter: a,
      groupID: '',
      inviteeList: [b],
      data: '{"k":1}',
      actionType: TSignaling.ACTION_TYPE_INVITE,
      timeout: 9,
    });
    const received = await bob.rec.next(EVENT.MESSAGE_RECEIVED);
    assert.equal(bob.chat.getSignalingInfo(received.data[0])?.inviteID, inviteID);
    const accepted = await bob.chat.accept({ inviteID });
    assert.equal(bob.chat.getSignalingInfo(accepted.data.message)?.actionType, TSignaling.ACTION_TYPE_ACCEPT_INVITE);
    // The same function is on the module.
    assert.equal(BeckonChat.getSignalingInfo(data.message)?.inviteID, inviteID);
  });
});
