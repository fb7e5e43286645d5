//! Rust SDK for Beckon: a `beckon.v1` WebSocket client with Tencent's signaling calls,
//! automatic reconnect that resumes missed events by sequence number, and event listeners.
//!
//! ```no_run
//! # async fn demo() -> Result<(), beckon_client::ClientError> {
//! use beckon_client::{Client, ClientConfig, InviteParams};
//!
//! let client = Client::new(ClientConfig::new("ws://127.0.0.1:7420/ws", 1400000000, "alice", "sig"));
//! // Attach listeners before login: login itself produces events (pending invitations).
//! client.add_signaling_listener("newInvitationReceived", |event| println!("{:?}", event.data));
//! client.login().await?;
//! let sent = client.invite(InviteParams { user_id: "bob".into(), ..Default::default() }).await?;
//! println!("invited: {}", sent.invite_id);
//! # Ok(()) }
//! ```

mod backoff;
mod client;
mod config;
mod driver;
mod error;
mod events;
mod socket;

pub use client::Client;
pub use config::ClientConfig;
pub use error::ClientError;
pub use events::{EventStream, ListenerId, Notice};

/// The wire types crate, for everything not re-exported below.
pub use beckon_proto as proto;
pub use beckon_proto::frames::{
    ActionParams, ActionResult, AddGroupMemberResult, Conversation, ConversationListResult,
    CreateGroupParams, CustomPayload, DeleteGroupMemberResult, GetMessageListParams,
    GroupListResult, GroupMember, GroupMemberListParams, GroupMemberListResult, GroupMembersParams,
    GroupProfile, GroupResult, InviteInGroupParams, InviteParams, LoginResult, MemberRef, Message,
    MessageListResult, ModifyParams, OfflinePushInfo,
};
pub use beckon_proto::signaling::{event, SignalingInfo};
pub use beckon_proto::EventFrame;
