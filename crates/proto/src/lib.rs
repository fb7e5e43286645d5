//! Wire types of the `beckon.v1` protocol, shared by the server, the Rust SDK and the tools.
//!
//! Every frame is one JSON text message on a WebSocket. The full description, with examples,
//! lives in `docs/protocol.md`; this crate is its executable form.

pub mod codes;
pub mod frames;
pub mod json_write;
pub mod limits;
pub mod signaling;

pub use codes::{CloseCode, ErrorCode};
pub use frames::{ClientFrame, EventFrame, ResultFrame, ServerFrame};

/// WebSocket subprotocol a client asks for; the server answers with the same.
pub const SUBPROTOCOL: &str = "beckon.v1";

/// Path of the WebSocket endpoint.
pub const WS_PATH: &str = "/ws";
