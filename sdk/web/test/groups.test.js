// Groups: the group calls (Tencent's names) and inviteInGroup against the real server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import BeckonChat from '../src/index.js';
import { useServer, uid } from '../test-support/harness.js';

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

test('group calls: create, profile, members, list, add, delete, quit, dismiss', async () => {
  const [a, b, c, d] = [uid('alice'), uid('bob'), uid('carol'), uid('dave')];
  const bob = await S.connect(b);
  const carol = await S.connect(c);
  await S.connect(d);
  const alice = await S.connect(a);
  const groupID = uid('team');

  const created = await alice.chat.createGroup({ groupID, name: 'Team', type: TYPES.GRP_WORK, memberList: [{ userID: b }, { userID: c }] });
  assert.equal(created.code, 0);
  const { createTime, maxMemberCount, ...group } = created.data.group;
  assert.deepEqual(group, { groupID, name: 'Team', type: 'Private', ownerID: a, memberCount: 3 });
  assert.equal(typeof createTime, 'number');
  assert.equal(typeof maxMemberCount, 'number');
  await rejects(alice.chat.createGroup({ groupID, name: 'Again' }), 9021);
  const generated = await alice.chat.createGroup({ name: 'No ID', type: TYPES.GRP_MEETING });
  assert.ok(generated.data.group.groupID.length > 0);
  assert.equal(generated.data.group.type, 'ChatRoom');

  const profile = await bob.chat.getGroupProfile({ groupID });
  assert.deepEqual(profile, { code: 0, data: { group: created.data.group } });
  const members = await bob.chat.getGroupMemberList({ groupID });
  assert.equal(members.code, 0);
  assert.deepEqual(members.data.memberList.map((m) => [m.userID, m.role]), [[a, 'Owner'], ...[[b, 'Member'], [c, 'Member']].sort()]);
  const page = await bob.chat.getGroupMemberList({ groupID, count: 1, offset: 1 });
  assert.equal(page.data.memberList.length, 1);
  assert.equal(page.data.memberList[0].userID, members.data.memberList[1].userID);
  const bobsGroups = await bob.chat.getGroupList();
  assert.deepEqual(bobsGroups.data.groupList.map((g) => g.groupID), [groupID]);

  const added = await alice.chat.addGroupMember({ groupID, userIDList: [d, b] });
  assert.equal(added.code, 0);
  assert.deepEqual(added.data.successUserIDList, [d]);
  assert.deepEqual(added.data.existedUserIDList, [b]);
  assert.equal(added.data.group.memberCount, 4);
  await rejects(bob.chat.addGroupMember({ groupID, userIDList: [d] }), 9018);
  const deleted = await alice.chat.deleteGroupMember({ groupID, userIDList: [d] });
  assert.deepEqual(deleted.data.userIDList, [d]);
  assert.equal(deleted.data.group.memberCount, 3);

  await rejects(alice.chat.quitGroup(groupID), 9020);
  assert.deepEqual(await carol.chat.quitGroup(groupID), { code: 0, data: { groupID } });
  await rejects(carol.chat.getGroupProfile({ groupID }), 9012);
  await rejects(bob.chat.dismissGroup(groupID), 9018);
  assert.deepEqual(await alice.chat.dismissGroup(groupID), { code: 0, data: { groupID } });
  await rejects(bob.chat.getGroupProfile({ groupID }), 9011);
  assert.deepEqual((await bob.chat.getGroupList()).data.groupList, []);
});

test('inviteInGroup: invitees ring, answers reach inviter and the other invitees, history in the group', async () => {
  const [a, b, c, e] = [uid('alice'), uid('bob'), uid('carol'), uid('erin')];
  const bob = await S.connect(b);
  const carol = await S.connect(c);
  const erin = await S.connect(e);
  const alice = await S.connect(a);
  const groupID = uid('call');
  await alice.chat.createGroup({ groupID, name: 'Call', memberList: [{ userID: b }, { userID: c }, { userID: e }] });

  const result = await alice.chat.inviteInGroup({ groupID, inviteeList: [b, c], data: 'meet', timeout: 60 });
  assert.equal(result.code, 0);
  const { inviteID } = result;
  const message = /** @type {any} */ (result.data.message);
  assert.equal(message.conversationID, `GROUP${groupID}`);
  assert.equal(message.conversationType, 'GROUP');
  assert.equal(message.to, groupID);
  assert.deepEqual(alice.chat.getSignalingInfo(message), {
    businessID: 1, inviteID, inviter: a, groupID, inviteeList: [b, c], data: 'meet', actionType: 1, timeout: 60,
  });
  for (const who of [bob, carol]) {
    const event = await who.rec.next(TSignaling.NEW_INVITATION_RECEIVED);
    assert.equal(event.data.inviteID, inviteID);
    assert.equal(event.data.groupID, groupID);
    assert.deepEqual(event.data.inviteeList, [b, c]);
    assert.equal(event.data.inviter, a);
    assert.equal(event.data.data, 'meet');
  }
  // A member who is not invited sees the message in the group history but does not ring.
  const history = await erin.rec.next(EVENT.MESSAGE_RECEIVED);
  assert.equal(history.data[0].conversationID, `GROUP${groupID}`);

  await bob.chat.accept({ inviteID, data: 'in' });
  assert.deepEqual((await alice.rec.next(TSignaling.INVITEE_ACCEPTED)).data, { inviteID, inviter: a, groupID, invitee: b, data: 'in' });
  assert.deepEqual((await carol.rec.next(TSignaling.INVITEE_ACCEPTED)).data, { inviteID, inviter: a, groupID, invitee: b, data: 'in' });
  // One accept does not end it for the others.
  await carol.chat.reject({ inviteID, data: 'out' });
  assert.deepEqual((await alice.rec.next(TSignaling.INVITEE_REJECTED)).data, { inviteID, inviter: a, groupID, invitee: c, data: 'out' });
  assert.deepEqual((await bob.rec.next(TSignaling.INVITEE_REJECTED)).data, { inviteID, inviter: a, groupID, invitee: c, data: 'out' });
  await rejects(alice.chat.cancel({ inviteID }), 8020);

  const page = await erin.chat.getMessageList({ conversationID: `GROUP${groupID}` });
  assert.deepEqual(page.data.messageList.map((m) => erin.chat.getSignalingInfo(m)?.actionType), [1, 3, 4]);
  assert.equal(erin.rec.named(TSignaling.NEW_INVITATION_RECEIVED).length, 0);
});

test('inviteInGroup refusals and a member who quits while ringing', async () => {
  const [a, b, c, o] = [uid('alice'), uid('bob'), uid('carol'), uid('outsider')];
  const bob = await S.connect(b);
  const carol = await S.connect(c);
  const outsider = await S.connect(o);
  const alice = await S.connect(a);
  const groupID = uid('g');
  await alice.chat.createGroup({ groupID, name: 'G', memberList: [{ userID: b }, { userID: c }] });

  await rejects(alice.chat.inviteInGroup({ groupID: uid('missing'), inviteeList: [b] }), 9011);
  await rejects(outsider.chat.inviteInGroup({ groupID, inviteeList: [b] }), 9012);
  await rejects(alice.chat.inviteInGroup({ groupID, inviteeList: [b, o] }), 9012);
  await rejects(alice.chat.inviteInGroup({ groupID, inviteeList: [a, b] }), 9005);
  await rejects(alice.chat.inviteInGroup({ groupID, inviteeList: [b, b] }), 9006);

  const { inviteID } = await alice.chat.inviteInGroup({ groupID, inviteeList: [b, c], timeout: 60 });
  await carol.rec.next(TSignaling.NEW_INVITATION_RECEIVED);
  await carol.chat.quitGroup(groupID);
  const stop = await carol.rec.next(TSignaling.INVITATION_CANCELLED);
  assert.equal(stop.data.inviteID, inviteID);
  assert.equal(stop.data.reason, 'memberQuit');
  const told = await alice.rec.next(TSignaling.INVITEE_REJECTED);
  assert.equal(told.data.invitee, c);
  assert.equal(told.data.reason, 'memberQuit');
  assert.equal((await bob.rec.next(TSignaling.INVITEE_REJECTED)).data.invitee, c);
  // Dismissing the group ends the invitation for everyone still ringing.
  await alice.chat.dismissGroup(groupID);
  const dismissed = await bob.rec.next(TSignaling.INVITATION_CANCELLED);
  assert.equal(dismissed.data.reason, 'groupDismissed');
});

test('a group invitation times out for the invitees still pending only', async () => {
  const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
  const bob = await S.connect(b);
  const carol = await S.connect(c);
  const alice = await S.connect(a);
  const groupID = uid('t');
  await alice.chat.createGroup({ groupID, name: 'T', memberList: [{ userID: b }, { userID: c }] });
  const { inviteID } = await alice.chat.inviteInGroup({ groupID, inviteeList: [b, c], data: 'quick', timeout: 1 });
  await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED);
  await bob.chat.accept({ inviteID });
  const toAlice = await alice.rec.next(TSignaling.INVITATION_TIMEOUT, undefined, 5000);
  assert.deepEqual(toAlice.data, { inviteID, inviter: a, groupID, inviteeList: [c], data: 'quick', isSelfTimeout: false });
  const toCarol = await carol.rec.next(TSignaling.INVITATION_TIMEOUT, undefined, 5000);
  assert.deepEqual(toCarol.data, { inviteID, inviter: a, groupID, inviteeList: [c], data: 'quick', isSelfTimeout: true });
  // Bob had answered: he gets the timeout message (group history) but no timeout event. A later
  // event to him proves nothing more about the timeout is on its way.
  await bob.rec.next(EVENT.MESSAGE_RECEIVED, (list) => bob.chat.getSignalingInfo(list[0])?.actionType === TSignaling.ACTION_TYPE_INVITE_TIMEOUT, 5000);
  const later = await alice.chat.invite({ userID: b });
  await bob.rec.next(TSignaling.NEW_INVITATION_RECEIVED, (d) => d.inviteID === later.inviteID);
  assert.equal(bob.rec.named(TSignaling.INVITATION_TIMEOUT).length, 0);
});
