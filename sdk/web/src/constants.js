// Constant names and values of Tencent Cloud Chat's web SDK, so that app code written for it
// (`TencentCloudChat.TSignaling.NEW_INVITATION_RECEIVED`, `TencentCloudChat.EVENT.SDK_READY`, ...)
// keeps working unchanged.

/** SDK version. */
export const VERSION = '0.1.0';

/** WebSocket subprotocol of the Beckon wire protocol. */
export const SUBPROTOCOL = 'beckon.v1';

/**
 * Signaling event names (the values are Tencent's) and `ACTION_TYPE_*` values of the history
 * payload.
 */
export const TSignaling = Object.freeze({
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

/** SDK event names for `chat.on` / `chat.off` (Tencent's values). */
export const EVENT = Object.freeze({
  SDK_READY: 'sdkStateReady',
  SDK_NOT_READY: 'sdkStateNotReady',
  MESSAGE_RECEIVED: 'onMessageReceived',
  MESSAGE_MODIFIED: 'onMessageModified',
  NET_STATE_CHANGE: 'netStateChange',
  KICKED_OUT: 'kickedOut',
  ERROR: 'error',
});

/** Constant values (Tencent's names and values). */
export const TYPES = Object.freeze({
  NET_STATE_CONNECTED: 'connected',
  NET_STATE_CONNECTING: 'connecting',
  NET_STATE_DISCONNECTED: 'disconnected',
  KICKED_OUT_USERSIG_EXPIRED: 'kickedOutUserSigExpired',
  GRP_WORK: 'Private',
  GRP_PUBLIC: 'Public',
  GRP_MEETING: 'ChatRoom',
  GRP_AVCHATROOM: 'AVChatRoom',
  GRP_COMMUNITY: 'Community',
  CONV_C2C: 'C2C',
  CONV_GROUP: 'GROUP',
  MSG_CUSTOM: 'TIMCustomElem',
});

/**
 * Error codes. Server codes keep their wire numbers (docs/protocol.md, section 8); the 28xx
 * codes are the SDK's own, for failures that happen on the client side.
 */
export const ERROR_CODE = Object.freeze({
  /** Not logged in (also after a logout, or once the SDK stopped: kicked out, refused). */
  NOT_LOGGED_IN: 2024,
  /** The connection dropped while the request was in flight: it may or may not have been applied. */
  NETWORK_ERROR: 2800,
  /** No answer in time (the request timeout, 10 s by default, counts any wait for a reconnect). */
  REQUEST_TIMEOUT: 2801,
  INVITATION_NOT_ACTIVE: 8010,
  NO_PERMISSION: 8011,
  INVITE_ID_EXISTS: 8012,
  CANCEL_NOT_ACTIVE: 8020,
  USERSIG_EXPIRED: 70001,
  USERSIG_MALFORMED: 70003,
  USERSIG_BAD_SIGNATURE: 70009,
  USERSIG_IDENTIFIER_MISMATCH: 70013,
  SDKAPPID_MISMATCH: 70014,
  MALFORMED_REQUEST: 9001,
  UNKNOWN_OPERATION: 9002,
  INVALID_PARAMETER: 9003,
  UNKNOWN_USER: 9004,
  INVITE_SELF: 9005,
  DUPLICATE_INVITEE: 9006,
  TOO_LARGE: 9007,
  ONLINE_ONLY_NOT_MODIFIABLE: 9008,
  RATE_LIMITED: 9009,
  ALREADY_LOGGED_IN: 9010,
  UNKNOWN_GROUP: 9011,
  NOT_GROUP_MEMBER: 9012,
  UNKNOWN_MESSAGE: 9013,
  UNKNOWN_CONVERSATION: 9014,
  SHUTTING_DOWN: 9015,
  OVERLOADED: 9016,
  NOT_GROUP_OWNER: 9018,
  GROUP_FULL: 9019,
  OWNER_CANNOT_QUIT: 9020,
  GROUP_ID_EXISTS: 9021,
  INTERNAL: 9500,
});

/** Limits checked locally before a request is sent (the server checks them again). */
export const LIMITS = Object.freeze({
  MAX_USER_ID_BYTES: 128,
  MAX_GROUP_ID_BYTES: 128,
  MAX_INVITE_ID_BYTES: 128,
  MAX_DATA_BYTES: 8192,
  MAX_TIMEOUT_SECONDS: 86400,
  MAX_INVITEES: 200,
  MAX_MESSAGE_PAGE: 100,
  MAX_MEMBER_PAGE: 100,
  MAX_MEMBER_CHANGE: 500,
  MAX_GROUP_NAME_BYTES: 100,
});
