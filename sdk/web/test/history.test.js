// History: MESSAGE_RECEIVED / MESSAGE_MODIFIED, getConversationList, getMessageList and
// setMessageRead against the real server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import BeckonChat from '../src/index.js';
import { useServer, uid } from '../test-support/harness.js';

const { TSignaling, EVENT } = BeckonChat;
const S = useServer();

test('MESSAGE_RECEIVED: a list with the message, for both sides, rendered for each', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const bob = await S.connect(b);
  const alice = await S.connect(a);
  const alice2 = await S.connect(a);
  const { inviteID, data } = await alice.chat.invite({ userID: b, data: 'hello' });
  const sent = /** @type {any} */ (data.message);

  const toBob = await bob.rec.next(EVENT.MESSAGE_RECEIVED);
  assert.equal(toBob.name, 'onMessageReceived');
  assert.ok(Array.isArray(toBob.data));
  assert.equal(toBob.data.length, 1);
  const received = toBob.data[0];
  assert.deepEqual(received, { ...sent, conversationID: `C2C${a}`, flow: 'in' });
  assert.deepEqual(Object.keys(received).sort(), [
    'ID', 'conversationID', 'conversationType', 'flow', 'from', 'isExcludedFromLastMessage',
    'isExcludedFromUnreadCount', 'payload', 'sequence', 'time', 'to', 'type',
  ]);
  assert.deepEqual(received.payload, { data: sent.payload.data, description: '', extension: '' });
  assert.equal(typeof received.time, 'number');
  assert.ok(Math.abs(received.time - Date.now() / 1000) < 60, 'time is in seconds');
  // The inviter's other device gets it too, as sent (flow out); the sending device does not.
  const toAlice2 = await alice2.rec.next(EVENT.MESSAGE_RECEIVED);
  assert.deepEqual(toAlice2.data, [sent]);
  await bob.chat.accept({ inviteID });
  const accept = await alice.rec.next(EVENT.MESSAGE_RECEIVED);
  assert.equal(accept.data[0].from, b);
  assert.equal(accept.data[0].flow, 'in');
  assert.equal(alice.rec.named(EVENT.MESSAGE_RECEIVED).length, 1, 'the invite message did not come back to its sender');
});

test('MESSAGE_MODIFIED after modifyInvitation', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const bob = await S.connect(b);
  const alice = await S.connect(a);
  const { inviteID, data } = await alice.chat.invite({ userID: b, data: 'before', timeout: 60 });
  const sent = /** @type {any} */ (data.message);
  await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED);
  await alice.chat.modifyInvitation({ inviteID, data: 'after' });
  const modified = await bob.rec.next(EVENT.MESSAGE_MODIFIED);
  assert.equal(modified.name, 'onMessageModified');
  assert.equal(modified.data.length, 1);
  const message = modified.data[0];
  assert.equal(message.ID, sent.ID);
  assert.equal(message.sequence, sent.sequence);
  assert.equal(bob.chat.getSignalingInfo(message)?.data, 'after');
  // Then the signaling event.
  await bob.rec.next(TSignaling.INVITATION_MODIFIED);
});

test('getConversationList, getMessageList paging and setMessageRead', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const bob = await S.connect(b);
  const alice = await S.connect(a);
  /** @type {string[]} */
  const ids = [];
  for (const data of ['m1', 'm2', 'm3']) {
    const { inviteID } = await alice.chat.invite({ userID: b, data });
    ids.push(inviteID);
    await alice.chat.cancel({ inviteID, data: `${data}-cancel` });
  }
  await bob.rec.next(TSignaling.INVITATION_CANCELLED, (d) => d.inviteID === ids[2]);

  const list = await bob.chat.getConversationList();
  assert.equal(list.code, 0);
  assert.equal(list.data.conversationList.length, 1);
  const conversation = list.data.conversationList[0];
  assert.equal(conversation.conversationID, `C2C${a}`);
  assert.equal(conversation.type, 'C2C');
  assert.equal(conversation.unreadCount, 6);
  assert.equal(bob.chat.getSignalingInfo(conversation.lastMessage)?.data, 'm3-cancel');

  // Newest page first; each page oldest to newest.
  const page1 = await bob.chat.getMessageList({ conversationID: `C2C${a}`, count: 4 });
  assert.equal(page1.code, 0);
  assert.deepEqual(page1.data.messageList.map((m) => bob.chat.getSignalingInfo(m)?.data), ['m2', 'm2-cancel', 'm3', 'm3-cancel']);
  assert.equal(page1.data.isCompleted, false);
  assert.equal(page1.data.nextReqMessageID, page1.data.messageList[0].ID);
  const page2 = await bob.chat.getMessageList({ conversationID: `C2C${a}`, count: 4, nextReqMessageID: page1.data.nextReqMessageID });
  assert.deepEqual(page2.data.messageList.map((m) => bob.chat.getSignalingInfo(m)?.data), ['m1', 'm1-cancel']);
  assert.equal(page2.data.isCompleted, true);
  const all = await bob.chat.getMessageList({ conversationID: `C2C${a}` });
  assert.equal(all.data.messageList.length, 6);
  assert.deepEqual(all.data.messageList.map((m) => m.sequence), [1, 2, 3, 4, 5, 6]);

  assert.deepEqual(await bob.chat.setMessageRead({ conversationID: `C2C${a}` }), { code: 0, data: {} });
  const after = await bob.chat.getConversationList();
  assert.equal(after.data.conversationList[0].unreadCount, 0);
  // The sender's own messages never count as unread.
  const mine = await alice.chat.getConversationList();
  assert.equal(mine.data.conversationList[0].unreadCount, 0);

  await assert.rejects(bob.chat.getMessageList({ conversationID: `C2C${a}`, nextReqMessageID: 'no-such-message' }), { code: 9013 });
  await assert.rejects(bob.chat.getMessageList({ conversationID: 'nonsense' }), { code: 9003 });
  const empty = await bob.chat.getMessageList({ conversationID: `C2C${uid('stranger')}` });
  assert.deepEqual(empty.data, { messageList: [], nextReqMessageID: '', isCompleted: true });
});

test('excludeFromHistoryMessage keeps a message out of unreadCount and lastMessage', async () => {
  const [a, b] = [uid('alice'), uid('bob')];
  const bob = await S.connect(b);
  const alice = await S.connect(a);
  await alice.chat.invite({ userID: b, data: 'counted' });
  const { inviteID } = await alice.chat.invite({ userID: b, data: JSON.stringify({ excludeFromHistoryMessage: true }) });
  const excluded = await bob.rec.next(EVENT.MESSAGE_RECEIVED, (list) => list[0].isExcludedFromUnreadCount);
  assert.equal(excluded.data[0].isExcludedFromLastMessage, true);
  await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === inviteID);
  const list = await bob.chat.getConversationList();
  const conversation = list.data.conversationList[0];
  assert.equal(conversation.unreadCount, 1);
  assert.equal(bob.chat.getSignalingInfo(conversation.lastMessage)?.data, 'counted');
});
