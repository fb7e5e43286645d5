//! Errors of SDK calls.

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request; `code` is the wire error code (Tencent's numbers, e.g.
    /// 8010, or Beckon's 9xxx).
    #[error("refused with code {code}: {message}")]
    Refused {
        /// Wire error code.
        code: u32,
        /// The server's explanation.
        message: String,
    },
    /// Not connected (never logged in, logged out, stopped), or the connection dropped while
    /// the request was in flight, so whether it was applied is unknown.
    #[error("not connected to the server")]
    Disconnected,
    /// No answer within the configured request timeout.
    #[error("no answer within the request timeout")]
    Timeout,
    /// The WebSocket connection could not be opened.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server sent something this SDK cannot read.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The wire error code of a refusal; `None` for local failures.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}
