// Compile-time checks of index.d.ts (run by `npm run typecheck`; never executed):
// app code written against the declared API type-checks, and the JavaScript module matches
// the declarations.

import BeckonChat, { type Chat, type Message, TSignaling, EVENT, TYPES, BeckonError } from '../index.js';
import * as declared from '../index.js';
import * as implemented from '../src/index.js';

// The implementation has every declared export, with compatible types.
const exportsMatch: typeof declared = implemented;
void exportsMatch;

const chat: Chat = BeckonChat.create({ SDKAppID: 1400000001, server: 'http://127.0.0.1:7420' });

async function app(): Promise<void> {
  const context = { ringing: 0 };
  await chat.addSignalingListener(
    TSignaling.NEW_INVITATION_RECEIVED,
    function (event) {
      this.ringing += 1;
      const inviter: string = event.data.inviter;
      const remaining: number = event.data.timeoutRemaining;
      void inviter;
      void remaining;
    },
    context,
  );
  chat.on(EVENT.MESSAGE_RECEIVED, (event) => {
    const list: Message[] = event.data;
    void list;
  });
  chat.on(EVENT.NET_STATE_CHANGE, (event) => {
    if (event.data.state === TYPES.NET_STATE_CONNECTING) {
      // reconnecting
    }
  });
  await chat.login({ userID: 'alice', userSig: 'sig' });
  const { inviteID, data } = await chat.invite({ userID: 'bob', data: '', timeout: 30 });
  const info = chat.getSignalingInfo(data.message);
  const action: number | undefined = info?.actionType;
  void action;
  await chat.cancel({ inviteID });
  await chat.inviteInGroup({ groupID: 'AV1', inviteeList: ['user1', 'user2'], data: '' });
  const modified = await chat.modifyInvitation({ inviteID, data: 'x' });
  void modified.data.message?.ID;
  const conversations = await chat.getConversationList();
  const unread: number = conversations.data.conversationList[0].unreadCount;
  void unread;
  const page = await chat.getMessageList({ conversationID: 'C2Cbob', count: 15 });
  void page.data.isCompleted;
  const group = await chat.createGroup({ name: 'team', type: TYPES.GRP_WORK, memberList: [{ userID: 'bob' }] });
  await chat.quitGroup(group.data.group.groupID);
  try {
    await chat.accept({ inviteID });
  } catch (error) {
    if (error instanceof BeckonError && error.code === BeckonChat.ERROR_CODE.INVITATION_NOT_ACTIVE) {
      // too late
    }
  }
  // @ts-expect-error: not a signaling event name
  await chat.addSignalingListener('sdkStateReady', () => {});
}
void app;
