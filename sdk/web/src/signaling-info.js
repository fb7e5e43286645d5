// `getSignalingInfo(message)`: recognising a signaling history message, locally, by the same
// rule as the server (docs/protocol.md, 7.2).

import { TYPES } from './constants.js';

/**
 * @typedef {object} SignalingInfo
 * @property {number} businessID
 * @property {string} inviteID
 * @property {string} inviter
 * @property {string} groupID
 * @property {string[]} inviteeList
 * @property {string} data
 * @property {number} actionType
 * @property {number} timeout
 */

/**
 * @param {unknown} value
 * @param {number} max
 */
function isUint(value, max) {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}

/**
 * The signaling info of a message, or `null` when it is not a signaling message: the message
 * must be a custom message (`type: "TIMCustomElem"`) whose `payload.data` contains both
 * `inviteID` and `actionType` and parses as the signaling JSON (all eight keys, with their
 * types). Never throws.
 * @param {unknown} message
 * @returns {SignalingInfo | null}
 */
export function getSignalingInfo(message) {
  try {
    if (typeof message !== 'object' || message === null) return null;
    const msg = /** @type {{type?: unknown, payload?: unknown}} */ (message);
    if (msg.type !== TYPES.MSG_CUSTOM) return null;
    const payload = msg.payload;
    if (typeof payload !== 'object' || payload === null) return null;
    const text = /** @type {{data?: unknown}} */ (payload).data;
    if (typeof text !== 'string') return null;
    if (!text.includes('inviteID') || !text.includes('actionType')) return null;
    /** @type {unknown} */
    const parsed = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
    const p = /** @type {Record<string, unknown>} */ (parsed);
    if (
      !isUint(p.businessID, 0xffffffff) ||
      !isUint(p.timeout, Number.MAX_SAFE_INTEGER) ||
      typeof p.data !== 'string' ||
      typeof p.inviteID !== 'string' ||
      typeof p.groupID !== 'string' ||
      !isUint(p.actionType, 255) ||
      typeof p.inviter !== 'string' ||
      !Array.isArray(p.inviteeList) ||
      !p.inviteeList.every((each) => typeof each === 'string')
    ) {
      return null;
    }
    return {
      businessID: /** @type {number} */ (p.businessID),
      inviteID: p.inviteID,
      inviter: p.inviter,
      groupID: p.groupID,
      inviteeList: /** @type {string[]} */ ([...p.inviteeList]),
      data: p.data,
      actionType: /** @type {number} */ (p.actionType),
      timeout: /** @type {number} */ (p.timeout),
    };
  } catch {
    return null;
  }
}
