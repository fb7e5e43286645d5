// Beckon web SDK: the Signaling API of Tencent Cloud Chat's web SDK, served by a Beckon server.
//
//   import BeckonChat from 'beckon-web';
//   const chat = BeckonChat.create({ SDKAppID: 1400000001, server: 'http://127.0.0.1:7420' });
//   chat.addSignalingListener(BeckonChat.TSignaling.NEW_INVITATION_RECEIVED, onInvite);
//   await chat.login({ userID: 'bob', userSig });

import { Chat } from './chat.js';
import { ERROR_CODE, EVENT, TSignaling, TYPES, VERSION } from './constants.js';
import { BeckonError } from './errors.js';
import { getSignalingInfo } from './signaling-info.js';

/**
 * A chat instance, as `TencentCloudChat.create()` makes one.
 * @param {import('./chat.js').ChatOptions} options
 * @returns {Chat}
 */
export function create(options) {
  return new Chat(options);
}

const BeckonChat = Object.freeze({
  create,
  TSignaling,
  EVENT,
  TYPES,
  ERROR_CODE,
  VERSION,
  BeckonError,
  getSignalingInfo,
});

export default BeckonChat;
export { Chat, BeckonError, ERROR_CODE, EVENT, TSignaling, TYPES, VERSION, getSignalingInfo };
