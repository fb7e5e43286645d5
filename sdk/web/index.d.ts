// Type definitions for beckon-web, the web SDK of Beckon (a self-hosted server offering the
// Signaling API of Tencent Cloud Chat's web SDK). The wire protocol is docs/protocol.md.

// ---------------------------------------------------------------------------------------------
// Constants

/** Signaling event names (Tencent's values) and history `actionType` values. */
export interface TSignalingConstants {
  readonly NEW_INVITATION_RECEIVED: 'newInvitationReceived';
  readonly INVITEE_ACCEPTED: 'ts_invitee_accepted';
  readonly INVITEE_REJECTED: 'ts_invitee_rejected';
  readonly INVITATION_CANCELLED: 'ts_invitation_cancelled';
  readonly INVITATION_TIMEOUT: 'ts_invitation_timeout';
  readonly INVITATION_MODIFIED: 'ts_invitation_modified';
  readonly ACTION_TYPE_UNKNOWN: 0;
  readonly ACTION_TYPE_INVITE: 1;
  readonly ACTION_TYPE_CANCEL_INVITE: 2;
  readonly ACTION_TYPE_ACCEPT_INVITE: 3;
  readonly ACTION_TYPE_REJECT_INVITE: 4;
  readonly ACTION_TYPE_INVITE_TIMEOUT: 5;
}

/** SDK event names for `chat.on` / `chat.off` (Tencent's values). */
export interface EventConstants {
  readonly SDK_READY: 'sdkStateReady';
  readonly SDK_NOT_READY: 'sdkStateNotReady';
  readonly MESSAGE_RECEIVED: 'onMessageReceived';
  readonly MESSAGE_MODIFIED: 'onMessageModified';
  readonly NET_STATE_CHANGE: 'netStateChange';
  readonly KICKED_OUT: 'kickedOut';
  readonly ERROR: 'error';
}

/** Constant values (Tencent's names and values). */
export interface TypesConstants {
  readonly NET_STATE_CONNECTED: 'connected';
  readonly NET_STATE_CONNECTING: 'connecting';
  readonly NET_STATE_DISCONNECTED: 'disconnected';
  readonly KICKED_OUT_USERSIG_EXPIRED: 'kickedOutUserSigExpired';
  readonly GRP_WORK: 'Private';
  readonly GRP_PUBLIC: 'Public';
  readonly GRP_MEETING: 'ChatRoom';
  readonly GRP_AVCHATROOM: 'AVChatRoom';
  readonly GRP_COMMUNITY: 'Community';
  readonly CONV_C2C: 'C2C';
  readonly CONV_GROUP: 'GROUP';
  readonly MSG_CUSTOM: 'TIMCustomElem';
}

/** Error codes: the server's wire codes, and the SDK's own 28xx codes. */
export interface ErrorCodeConstants {
  /** Not logged in (also after logout, or once the SDK stopped: kicked out, refused). */
  readonly NOT_LOGGED_IN: 2024;
  /** The connection dropped while the request was in flight: it may or may not have been applied. */
  readonly NETWORK_ERROR: 2800;
  /** No answer within the request timeout (which counts any wait for a reconnect). */
  readonly REQUEST_TIMEOUT: 2801;
  readonly INVITATION_NOT_ACTIVE: 8010;
  readonly NO_PERMISSION: 8011;
  readonly INVITE_ID_EXISTS: 8012;
  readonly CANCEL_NOT_ACTIVE: 8020;
  readonly USERSIG_EXPIRED: 70001;
  readonly USERSIG_MALFORMED: 70003;
  readonly USERSIG_BAD_SIGNATURE: 70009;
  readonly USERSIG_IDENTIFIER_MISMATCH: 70013;
  readonly SDKAPPID_MISMATCH: 70014;
  readonly MALFORMED_REQUEST: 9001;
  readonly UNKNOWN_OPERATION: 9002;
  readonly INVALID_PARAMETER: 9003;
  readonly UNKNOWN_USER: 9004;
  readonly INVITE_SELF: 9005;
  readonly DUPLICATE_INVITEE: 9006;
  readonly TOO_LARGE: 9007;
  readonly ONLINE_ONLY_NOT_MODIFIABLE: 9008;
  readonly RATE_LIMITED: 9009;
  readonly ALREADY_LOGGED_IN: 9010;
  readonly UNKNOWN_GROUP: 9011;
  readonly NOT_GROUP_MEMBER: 9012;
  readonly UNKNOWN_MESSAGE: 9013;
  readonly UNKNOWN_CONVERSATION: 9014;
  readonly SHUTTING_DOWN: 9015;
  readonly OVERLOADED: 9016;
  readonly NOT_GROUP_OWNER: 9018;
  readonly GROUP_FULL: 9019;
  readonly OWNER_CANNOT_QUIT: 9020;
  readonly GROUP_ID_EXISTS: 9021;
  readonly INTERNAL: 9500;
}

export declare const TSignaling: TSignalingConstants;
export declare const EVENT: EventConstants;
export declare const TYPES: TypesConstants;
export declare const ERROR_CODE: ErrorCodeConstants;
export declare const VERSION: string;

export type SignalingEventName = TSignalingConstants[
  | 'NEW_INVITATION_RECEIVED'
  | 'INVITEE_ACCEPTED'
  | 'INVITEE_REJECTED'
  | 'INVITATION_CANCELLED'
  | 'INVITATION_TIMEOUT'
  | 'INVITATION_MODIFIED'];
export type SdkEventName = EventConstants[keyof EventConstants];
export type NetState = 'connected' | 'connecting' | 'disconnected';
export type ActionType = 0 | 1 | 2 | 3 | 4 | 5;

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * What every refused or failed call rejects with: an `Error` with a numeric `code` (Tencent's
 * imError shape `{code, message}`).
 */
export declare class BeckonError extends Error {
  constructor(code: number, message: string, extra?: { closeCode?: number | null; refused?: boolean });
  /** `'BeckonError'` */
  name: string;
  /** The error code (see `ERROR_CODE`). */
  code: number;
  /** The WebSocket close code when a connection ended, if any. */
  closeCode: number | null | undefined;
  /** True when the server answered with this code; false when the SDK made it up. */
  refused: boolean;
}

// ---------------------------------------------------------------------------------------------
// Data

/** A history message, as Tencent's SDK shapes it (always a custom signaling message here). */
export interface Message {
  ID: string;
  /** `C2C<peer>` or `GROUP<groupID>`, as the reader names it. */
  conversationID: string;
  conversationType: 'C2C' | 'GROUP';
  from: string;
  /** The other user (C2C) or the groupID. */
  to: string;
  /** `out` when the reader sent it. */
  flow: 'in' | 'out';
  /** Server time, seconds since the Unix epoch. */
  time: number;
  /** Per-conversation number from 1. */
  sequence: number;
  type: 'TIMCustomElem';
  payload: { data: string; description: string; extension: string };
  isExcludedFromUnreadCount: boolean;
  isExcludedFromLastMessage: boolean;
}

export interface Conversation {
  conversationID: string;
  type: 'C2C' | 'GROUP';
  unreadCount: number;
  lastMessage: Message | null;
}

/** What `getSignalingInfo` returns for a signaling message. */
export interface SignalingInfo {
  businessID: number;
  inviteID: string;
  inviter: string;
  groupID: string;
  inviteeList: string[];
  data: string;
  actionType: number;
  timeout: number;
}

export interface GroupProfile {
  groupID: string;
  name: string;
  /** Tencent's group type names (`TYPES.GRP_*`). */
  type: string;
  ownerID: string;
  memberCount: number;
  maxMemberCount: number;
  /** Server time, seconds. */
  createTime: number;
}

export interface GroupMember {
  userID: string;
  role: 'Owner' | 'Member';
  /** Server time, seconds. */
  joinTime: number;
}

// ---------------------------------------------------------------------------------------------
// Events

export interface NewInvitationReceivedData {
  inviteID: string;
  inviter: string;
  /** `''` for one-to-one. */
  groupID: string;
  inviteeList: string[];
  data: string;
  /** Beckon extra: the timeout the inviter set, seconds (0: none). */
  timeout: number;
  /** Beckon extra: whole seconds until the server times the invitation out. */
  timeoutRemaining: number;
  /** Beckon extra: the server's deadline, ms since the Unix epoch. */
  expiresAt: number;
  /** Beckon extra. */
  onlineUserOnly: boolean;
  /** Beckon extra: present (true) on the login replay of a pending invitation. */
  replay?: true;
}

export interface InviteeAnsweredData {
  inviteID: string;
  inviter: string;
  groupID: string;
  invitee: string;
  /** The answerer's data. */
  data: string;
  /** Beckon extra: on the answerer's other devices. */
  handledOnOtherDevice?: true;
  /** Beckon extra: `memberQuit` / `memberRemoved` when the server ended this invitee's part. */
  reason?: string;
}

export interface InvitationCancelledData {
  inviteID: string;
  inviter: string;
  groupID: string;
  /** The canceller's data. */
  data: string;
  /** Beckon extra: on the inviter's other devices. */
  handledOnOtherDevice?: true;
  /** Beckon extra: `memberQuit`, `memberRemoved`, `inviterLeft`, `groupDismissed` for a group change. */
  reason?: string;
}

export interface InvitationTimeoutData {
  inviteID: string;
  inviter: string;
  groupID: string;
  /** To the inviter: every invitee that timed out; to an invitee: itself. */
  inviteeList: string[];
  /** The invitation's current data. */
  data: string;
  isSelfTimeout: boolean;
}

export interface InvitationModifiedData {
  inviteID: string;
  data: string;
  /** Beckon extra: who modified it. */
  modifiedBy: string;
}

export interface SignalingEventMap {
  newInvitationReceived: NewInvitationReceivedData;
  ts_invitee_accepted: InviteeAnsweredData;
  ts_invitee_rejected: InviteeAnsweredData;
  ts_invitation_cancelled: InvitationCancelledData;
  ts_invitation_timeout: InvitationTimeoutData;
  ts_invitation_modified: InvitationModifiedData;
}

export interface SdkEventMap {
  sdkStateReady: Record<string, never>;
  sdkStateNotReady: Record<string, never>;
  onMessageReceived: Message[];
  onMessageModified: Message[];
  netStateChange: { state: NetState };
  kickedOut: { type: TypesConstants['KICKED_OUT_USERSIG_EXPIRED'] };
  error: { code: number; message: string };
}

/** What a handler gets: `{name, data}`, as in Tencent's SDK. */
export interface ChatEvent<N extends string, D> {
  name: N;
  data: D;
}

export type SignalingHandler<N extends SignalingEventName, C = unknown> = (
  this: C,
  event: ChatEvent<N, SignalingEventMap[N]>,
) => void;

export type SdkHandler<N extends SdkEventName, C = unknown> = (this: C, event: ChatEvent<N, SdkEventMap[N]>) => void;

// ---------------------------------------------------------------------------------------------
// Calls

/** A WebSocket constructor: the browser's, Node's global one, or the `ws` package's. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => {
  readyState: number;
  send(text: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
};

export interface ChatOptions {
  /** The app's SDKAppID (the server's). */
  SDKAppID: number;
  /**
   * Server address: `http(s)://host[:port][/prefix]` (the WebSocket is then
   * `ws(s)://host[:port][/prefix]/ws`) or the WebSocket URL itself, `ws(s)://...`.
   * Default `http://127.0.0.1:7420`.
   */
  server?: string;
  /** WebSocket constructor. Default: `globalThis.WebSocket`, else the `ws` package (Node 20). */
  WebSocket?: WebSocketConstructor;
  /** How long a call may take, in ms, counting any wait for a reconnect. Default 10000. */
  requestTimeout?: number;
  /** Heartbeat period in ms; a connection silent for twice as long counts as dropped. 0: off. Default 25000. */
  pingInterval?: number;
}

export interface OfflinePushInfo {
  disablePush?: boolean;
  disableVoipPush?: boolean;
  title?: string;
  description?: string;
  extension?: string;
  androidInfo?: Record<string, unknown>;
  apnsInfo?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface InviteOptions {
  userID: string;
  /** Custom data, at most 8192 bytes of UTF-8. Default `''`. */
  data?: string;
  /** Seconds, integer 0–86400; 0 (default): no timeout (the server's maximum lifetime applies). */
  timeout?: number;
  onlineUserOnly?: boolean;
  offlinePushInfo?: OfflinePushInfo;
  /** Beckon: propose the inviteID (1–128 bytes, never used before on the server; else 8012). */
  inviteID?: string;
}

export interface InviteInGroupOptions {
  groupID: string;
  /** 1–200 members of the group, not the caller. */
  inviteeList: string[];
  data?: string;
  timeout?: number;
  onlineUserOnly?: boolean;
  offlinePushInfo?: OfflinePushInfo;
  /** Beckon: propose the inviteID. */
  inviteID?: string;
}

export interface AnswerOptions {
  inviteID: string;
  data?: string;
}

export interface ModifyInvitationOptions {
  inviteID: string;
  data: string;
}

/** `{code: 0, inviteID, data: {message}}`; `message` is absent for online-only invitations. */
export interface SignalingResponse {
  code: 0;
  inviteID: string;
  data: { message?: Message };
}

export interface Response<D> {
  code: 0;
  data: D;
}

export interface LoginData {
  repeatLogin: boolean;
  userID: string;
  /** Present on a new login: the server's newest event seq for the user. */
  seq?: number;
  resumed?: boolean;
  resync?: boolean;
  /** Server clock, ms. */
  serverTime?: number;
  eventRetentionSeconds?: number;
}

export interface CreateGroupOptions {
  /** Proposed groupID; the server makes one when absent. */
  groupID?: string;
  name: string;
  /** `TYPES.GRP_*`; default `Private`. */
  type?: string;
  /** Members besides the creator (the owner). */
  memberList?: { userID: string }[];
}

export interface AddGroupMemberData {
  successUserIDList: string[];
  failureUserIDList: string[];
  existedUserIDList: string[];
  group: GroupProfile;
}

/** A chat instance, as `TencentCloudChat.create()` makes one. */
export declare class Chat {
  constructor(options: ChatOptions);
  readonly SDKAppID: number;
  /** The WebSocket URL. */
  readonly url: string;
  /** This instance's (device's) id, sent at every login; random per instance. */
  readonly instanceID: string;

  /** Listens for a signaling event; `context` is `this` in the handler. */
  addSignalingListener<N extends SignalingEventName, C = unknown>(
    eventName: N,
    handler: SignalingHandler<N, C>,
    context?: C,
  ): Promise<{ code: 0 }>;
  /** Stops a listener (the same handler and, if given, the same context). */
  removeSignalingListener<N extends SignalingEventName, C = unknown>(
    eventName: N,
    handler: SignalingHandler<N, C>,
    context?: C,
  ): Promise<{ code: 0 }>;
  /** Listens for an SDK event (`EVENT.*`). Throws a TypeError for an unknown name. */
  on<N extends SdkEventName, C = unknown>(eventName: N, handler: SdkHandler<N, C>, context?: C): void;
  off<N extends SdkEventName, C = unknown>(eventName: N, handler: SdkHandler<N, C>, context?: C): void;

  login(options: { userID: string; userSig: string }): Promise<Response<LoginData>>;
  logout(): Promise<Response<{}>>;
  /** Logs out and forgets every listener. */
  destroy(): Promise<Response<{}>>;
  /** The logged-in userID, or `''`. */
  getLoginUser(): string;
  /** True after SDK_READY while logged in and connected. */
  isReady(): boolean;

  invite(options: InviteOptions): Promise<SignalingResponse>;
  inviteInGroup(options: InviteInGroupOptions): Promise<SignalingResponse>;
  cancel(options: AnswerOptions): Promise<SignalingResponse>;
  accept(options: AnswerOptions): Promise<SignalingResponse>;
  reject(options: AnswerOptions): Promise<SignalingResponse>;
  modifyInvitation(options: ModifyInvitationOptions): Promise<Response<{ message?: Message }>>;
  /** Local and pure: the signaling info of a message, or null. Never throws. */
  getSignalingInfo(message: unknown): SignalingInfo | null;

  getConversationList(): Promise<Response<{ conversationList: Conversation[] }>>;
  getMessageList(options: {
    conversationID: string;
    nextReqMessageID?: string;
    /** 1–100, default 15. */
    count?: number;
  }): Promise<Response<{ messageList: Message[]; nextReqMessageID: string; isCompleted: boolean }>>;
  setMessageRead(options: { conversationID: string }): Promise<Response<{}>>;

  createGroup(options: CreateGroupOptions): Promise<Response<{ group: GroupProfile }>>;
  getGroupProfile(options: { groupID: string }): Promise<Response<{ group: GroupProfile }>>;
  getGroupMemberList(options: {
    groupID: string;
    /** 1–100, default 100. */
    count?: number;
    offset?: number;
  }): Promise<Response<{ memberList: GroupMember[] }>>;
  getGroupList(): Promise<Response<{ groupList: GroupProfile[] }>>;
  addGroupMember(options: { groupID: string; userIDList: string[] }): Promise<Response<AddGroupMemberData>>;
  deleteGroupMember(options: {
    groupID: string;
    userIDList: string[];
  }): Promise<Response<{ group: GroupProfile; userIDList: string[] }>>;
  quitGroup(groupID: string): Promise<Response<{ groupID: string }>>;
  dismissGroup(groupID: string): Promise<Response<{ groupID: string }>>;
}

export declare function create(options: ChatOptions): Chat;
export declare function getSignalingInfo(message: unknown): SignalingInfo | null;

declare const BeckonChat: {
  readonly create: typeof create;
  readonly TSignaling: TSignalingConstants;
  readonly EVENT: EventConstants;
  readonly TYPES: TypesConstants;
  readonly ERROR_CODE: ErrorCodeConstants;
  readonly VERSION: string;
  readonly BeckonError: typeof BeckonError;
  readonly getSignalingInfo: typeof getSignalingInfo;
};
export default BeckonChat;
