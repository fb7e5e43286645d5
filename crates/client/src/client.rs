//! The public [`Client`] handle: the signaling calls, listeners and notices.

use crate::config::ClientConfig;
use crate::driver::{lock, Command, Driver, Shared};
use crate::error::ClientError;
use crate::events::{EventStream, Handler, ListenerId};
use crate::socket::request_text;
use beckon_proto::frames::{
    op, ActionParams, ActionResult, AddGroupMemberResult, ConversationListResult,
    CreateGroupParams, DeleteGroupMemberResult, GetMessageListParams, GroupIdParams,
    GroupListResult, GroupMemberListParams, GroupMemberListResult, GroupMembersParams, GroupResult,
    InviteInGroupParams, InviteParams, LoginResult, MessageListResult, ModifyParams,
    SetMessageReadParams,
};
use beckon_proto::signaling::SignalingInfo;
use beckon_proto::{ErrorCode, EventFrame, ResultFrame};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::oneshot;
use tokio::time::timeout;

/// A Beckon client for one user on one device. Cheap to clone; every clone is the same
/// client. Dropping the last clone stops its connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// Command channel of the running connection task, if a login started one.
    session: Mutex<Option<UnboundedSender<Command>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("user_id", &self.user_id())
            .field("instance_id", &self.instance_id())
            .field("last_seq", &self.last_seq())
            .finish_non_exhaustive()
    }
}

/// `{}`: the params of operations that take none.
fn no_params() -> Value {
    Value::Object(Map::new())
}

impl Client {
    /// A client that is not connected yet; it gets a new random instanceID.
    pub fn new(config: ClientConfig) -> Client {
        Client {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared::new(config)),
                session: Mutex::new(None),
            }),
        }
    }

    /// [`Client::new`] then [`Client::login`].
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let client = Client::new(config);
        client.login().await?;
        Ok(client)
    }

    /// Connects and logs in, then keeps the connection up (reconnecting and resuming when it
    /// drops). If this first attempt fails (refusal, unreachable server, timeout) the error is
    /// returned and nothing keeps running. After a stop (not a logout), logging in again
    /// resumes from the last seen event. Refused with code 9010 while already logged in.
    pub async fn login(&self) -> Result<LoginResult, ClientError> {
        let (first_tx, first_rx) = oneshot::channel();
        {
            let mut session = lock(&self.inner.session);
            if session
                .as_ref()
                .is_some_and(|commands| !commands.is_closed())
            {
                return Err(ClientError::Refused {
                    code: ErrorCode::AlreadyLoggedIn.as_u32(),
                    message: "already logged in".to_owned(),
                });
            }
            let (commands, commands_rx) = unbounded_channel();
            *session = Some(commands);
            let driver = Driver::new(Arc::clone(&self.inner.shared), commands_rx);
            tokio::spawn(driver.run(first_tx));
        }
        first_rx.await.unwrap_or(Err(ClientError::Disconnected))
    }

    /// Logs out, closes the connection and stops reconnecting. The next login is a fresh one
    /// (no `lastSeq`: pending invitations are replayed). Does nothing when not logged in.
    pub async fn logout(&self) -> Result<(), ClientError> {
        let Some(commands) = lock(&self.inner.session).take() else {
            return Ok(());
        };
        let id = self.inner.shared.next_request_id();
        let text = request_text(id, op::LOGOUT, no_params())?;
        let (reply, answer) = oneshot::channel();
        if commands.send(Command::Logout { id, text, reply }).is_err() {
            // Already stopped: there is no connection to log out of.
            *lock(&self.inner.shared.last_seq) = None;
            return Ok(());
        }
        let limit = self.inner.shared.config.request_timeout;
        let answer = timeout(limit, answer).await;
        // Let the task finish so that its last events do not move the reset seq below.
        let _ = timeout(limit, commands.closed()).await;
        *lock(&self.inner.shared.last_seq) = None;
        match answer {
            Err(_) => Err(ClientError::Timeout),
            Ok(Err(_)) => Ok(()),
            Ok(Ok(outcome)) => into_data(outcome?).map(drop),
        }
    }

    /// Invites one user (`invite`).
    pub async fn invite(&self, params: InviteParams) -> Result<ActionResult, ClientError> {
        self.call(op::INVITE, &params).await
    }

    /// Invites members of a group (`inviteInGroup`).
    pub async fn invite_in_group(
        &self,
        params: InviteInGroupParams,
    ) -> Result<ActionResult, ClientError> {
        self.call(op::INVITE_IN_GROUP, &params).await
    }

    /// Cancels one's own invitation (`cancel`).
    pub async fn cancel(&self, params: ActionParams) -> Result<ActionResult, ClientError> {
        self.call(op::CANCEL, &params).await
    }

    /// Accepts an invitation (`accept`).
    pub async fn accept(&self, params: ActionParams) -> Result<ActionResult, ClientError> {
        self.call(op::ACCEPT, &params).await
    }

    /// Rejects an invitation (`reject`).
    pub async fn reject(&self, params: ActionParams) -> Result<ActionResult, ClientError> {
        self.call(op::REJECT, &params).await
    }

    /// Changes an active invitation's `data` (`modifyInvitation`).
    pub async fn modify_invitation(
        &self,
        params: ModifyParams,
    ) -> Result<ActionResult, ClientError> {
        self.call(op::MODIFY_INVITATION, &params).await
    }

    /// The user's conversations (`getConversationList`).
    pub async fn get_conversation_list(&self) -> Result<ConversationListResult, ClientError> {
        self.call(op::GET_CONVERSATION_LIST, &no_params()).await
    }

    /// One page of a conversation's history (`getMessageList`).
    pub async fn get_message_list(
        &self,
        params: GetMessageListParams,
    ) -> Result<MessageListResult, ClientError> {
        self.call(op::GET_MESSAGE_LIST, &params).await
    }

    /// Clears a conversation's unread count (`setMessageRead`).
    pub async fn set_message_read(&self, conversation_id: &str) -> Result<(), ClientError> {
        let params = SetMessageReadParams {
            conversation_id: conversation_id.to_owned(),
        };
        self.request(
            op::SET_MESSAGE_READ,
            to_value(op::SET_MESSAGE_READ, &params)?,
        )
        .await
        .map(drop)
    }

    /// Creates a group owned by this user (`createGroup`).
    pub async fn create_group(
        &self,
        params: CreateGroupParams,
    ) -> Result<GroupResult, ClientError> {
        self.call(op::CREATE_GROUP, &params).await
    }

    /// A group's profile (`getGroupProfile`, members only).
    pub async fn get_group_profile(&self, group_id: &str) -> Result<GroupResult, ClientError> {
        self.call(op::GET_GROUP_PROFILE, &group_ref(group_id)).await
    }

    /// A page of a group's members (`getGroupMemberList`, members only).
    pub async fn get_group_member_list(
        &self,
        params: GroupMemberListParams,
    ) -> Result<GroupMemberListResult, ClientError> {
        self.call(op::GET_GROUP_MEMBER_LIST, &params).await
    }

    /// The groups this user is in (`getGroupList`).
    pub async fn get_group_list(&self) -> Result<GroupListResult, ClientError> {
        self.call(op::GET_GROUP_LIST, &no_params()).await
    }

    /// Adds members (`addGroupMember`, owner only).
    pub async fn add_group_member(
        &self,
        params: GroupMembersParams,
    ) -> Result<AddGroupMemberResult, ClientError> {
        self.call(op::ADD_GROUP_MEMBER, &params).await
    }

    /// Removes members (`deleteGroupMember`, owner only).
    pub async fn delete_group_member(
        &self,
        params: GroupMembersParams,
    ) -> Result<DeleteGroupMemberResult, ClientError> {
        self.call(op::DELETE_GROUP_MEMBER, &params).await
    }

    /// Leaves a group (`quitGroup`; the owner dismisses instead).
    pub async fn quit_group(&self, group_id: &str) -> Result<(), ClientError> {
        let params = to_value(op::QUIT_GROUP, &group_ref(group_id))?;
        self.request(op::QUIT_GROUP, params).await.map(drop)
    }

    /// Dismisses a group (`dismissGroup`, owner only).
    pub async fn dismiss_group(&self, group_id: &str) -> Result<(), ClientError> {
        let params = to_value(op::DISMISS_GROUP, &group_ref(group_id))?;
        self.request(op::DISMISS_GROUP, params).await.map(drop)
    }

    /// A round trip to the server (`ping`).
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.request(op::PING, no_params()).await.map(drop)
    }

    /// Sends any operation and returns the result's `data` (`{}` if absent). Null `params`
    /// are left out of the frame.
    pub async fn request(&self, op: &str, params: Value) -> Result<Value, ClientError> {
        into_data(self.send_request(op, params).await?)
    }

    /// Calls `handler` for every event named `event_name` (any name, e.g.
    /// `newInvitationReceived` or `onMessageReceived`), on the connection task, in event
    /// order. Handlers should be quick; a panic in one is logged and ignored.
    pub fn add_signaling_listener(
        &self,
        event_name: &str,
        handler: impl Fn(&EventFrame) + Send + Sync + 'static,
    ) -> ListenerId {
        let handler: Handler = Arc::new(handler);
        lock(&self.inner.shared.listeners).add(event_name, handler)
    }

    /// Removes a listener; false when it was not registered under that name.
    pub fn remove_signaling_listener(&self, event_name: &str, id: ListenerId) -> bool {
        lock(&self.inner.shared.listeners).remove(event_name, id)
    }

    /// Every notice (events, connection changes) from now on.
    pub fn subscribe(&self) -> EventStream {
        let (tx, rx) = unbounded_channel();
        lock(&self.inner.shared.subscribers).push(tx);
        EventStream::new(rx)
    }

    /// `getSignalingInfo(message)`: the signaling payload of a history message (as JSON), or
    /// `None` when it is not a signaling message.
    pub fn get_signaling_info(message: &Value) -> Option<SignalingInfo> {
        SignalingInfo::from_message(message)
    }

    /// Highest event seq seen (0 before the first login).
    pub fn last_seq(&self) -> u64 {
        lock(&self.inner.shared.last_seq).unwrap_or(0)
    }

    /// The configured userID.
    pub fn user_id(&self) -> &str {
        &self.inner.shared.config.user_id
    }

    /// This client's instanceID, stable across reconnects.
    pub fn instance_id(&self) -> &str {
        &self.inner.shared.instance_id
    }

    /// Drops the socket without logging out, as a network failure would; requests in flight
    /// fail with [`ClientError::Disconnected`] and the client reconnects (if enabled).
    pub fn drop_connection(&self) {
        if let Some(commands) = lock(&self.inner.session).as_ref() {
            let _ = commands.send(Command::Drop);
        }
    }

    /// The userSig for the next login or re-login (e.g. before the current one expires).
    pub fn set_user_sig(&self, sig: String) {
        *lock(&self.inner.shared.user_sig) = sig;
    }

    async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        op: &str,
        params: &P,
    ) -> Result<R, ClientError> {
        let data = self.request(op, to_value(op, params)?).await?;
        serde_json::from_value(data)
            .map_err(|e| ClientError::Protocol(format!("unreadable {op} result: {e}")))
    }

    /// Hands the request to the connection task and waits for its answer, all within the
    /// request timeout (which covers waiting for a reconnect).
    async fn send_request(&self, op: &str, params: Value) -> Result<ResultFrame, ClientError> {
        let commands = lock(&self.inner.session)
            .clone()
            .ok_or(ClientError::Disconnected)?;
        let id = self.inner.shared.next_request_id();
        let text = request_text(id, op, params)?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::Request { id, text, reply })
            .map_err(|_| ClientError::Disconnected)?;
        // Only the session slot may keep the task alive (it stops when all senders are gone).
        drop(commands);
        match timeout(self.inner.shared.config.request_timeout, answer).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Ok(Ok(outcome)) => outcome,
        }
    }
}

fn to_value(op: &str, params: &impl Serialize) -> Result<Value, ClientError> {
    serde_json::to_value(params)
        .map_err(|e| ClientError::Protocol(format!("cannot encode {op} params: {e}")))
}

/// A result's `data`, or the refusal as an error.
fn into_data(result: ResultFrame) -> Result<Value, ClientError> {
    if result.code != 0 {
        return Err(ClientError::Refused {
            code: result.code,
            message: result.message.unwrap_or_default(),
        });
    }
    Ok(result.data.unwrap_or_else(no_params))
}

fn group_ref(group_id: &str) -> GroupIdParams {
    GroupIdParams {
        group_id: group_id.to_owned(),
    }
}
