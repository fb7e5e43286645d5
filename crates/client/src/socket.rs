//! One WebSocket connection: opening it with the `beckon.v1` subprotocol, the login exchange,
//! and closing it politely.

use crate::error::ClientError;
use beckon_proto::frames::{op, ClientFrame, LoginParams, LoginResult};
use beckon_proto::{EventFrame, ServerFrame, SUBPROTOCOL};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The socket type the SDK drives.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest message accepted from the server; protects the app from a runaway server.
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Read buffer per connection; frames are small and load tools open thousands of clients.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// How long a polite close may take before the socket is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Why a connect-and-login attempt failed.
#[derive(Debug)]
pub(crate) enum LoginError {
    /// The server answered the login with a refusal.
    Refused { code: u32, message: String },
    /// Connecting failed, the socket closed (with `close_code` if one was sent), or the answer
    /// was late or unreadable.
    Failed {
        close_code: Option<u16>,
        error: ClientError,
    },
}

impl LoginError {
    fn failed(error: ClientError) -> Self {
        Self::Failed {
            close_code: None,
            error,
        }
    }

    /// The error the app sees for a failed first login.
    pub(crate) fn into_client_error(self) -> ClientError {
        match self {
            Self::Refused { code, message } => ClientError::Refused { code, message },
            Self::Failed { error, .. } => error,
        }
    }
}

/// A successful login: the socket, the result, and any events that (against the contract)
/// arrived before the result, kept for delivery after it.
pub(crate) type LoggedIn = (Ws, LoginResult, Vec<EventFrame>);

/// The JSON text of a request frame.
pub(crate) fn request_text(id: u64, op: &str, params: Value) -> Result<String, ClientError> {
    let frame = ClientFrame {
        id: Value::from(id),
        op: op.to_owned(),
        params,
    };
    serde_json::to_string(&frame)
        .map_err(|e| ClientError::Protocol(format!("cannot encode {op}: {e}")))
}

/// The close code of a received close message, if it carried one.
pub(crate) fn close_code(frame: Option<&CloseFrame>) -> Option<u16> {
    frame.map(|f| u16::from(f.code))
}

/// Opens the WebSocket, asking for the `beckon.v1` subprotocol.
async fn open(url: &str) -> Result<Ws, ClientError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ClientError::Connect(format!("bad server URL {url:?}: {e}")))?;
    request.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| ClientError::Connect(format!("{url}: {e}")))?;
    Ok(ws)
}

/// Connects and logs in, all within `limit`.
pub(crate) async fn login(
    url: &str,
    id: u64,
    params: &LoginParams,
    limit: Duration,
) -> Result<LoggedIn, LoginError> {
    let attempt = async {
        let mut ws = open(url).await.map_err(LoginError::failed)?;
        let params = serde_json::to_value(params)
            .map_err(|e| LoginError::failed(ClientError::Protocol(e.to_string())))?;
        let text = request_text(id, op::LOGIN, params).map_err(LoginError::failed)?;
        ws.send(Message::text(text))
            .await
            .map_err(|e| LoginError::failed(ClientError::Connect(format!("sending login: {e}"))))?;
        let mut early = Vec::new();
        loop {
            let text = match ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    let close_code = close_code(frame.as_ref());
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    return Err(LoginError::Failed {
                        close_code,
                        error: ClientError::Connect(format!(
                            "server closed the connection during login (code {}): {reason}",
                            close_code.map_or_else(|| "none".to_owned(), |c| c.to_string())
                        )),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Err(LoginError::failed(ClientError::Connect(format!(
                        "connection lost during login: {e}"
                    ))))
                }
                None => return Err(LoginError::failed(ClientError::Disconnected)),
            };
            match serde_json::from_str::<ServerFrame>(text.as_str()) {
                Ok(ServerFrame::Result(result)) if result.id.as_u64() == Some(id) => {
                    if result.code != 0 {
                        close(ws, WsCloseCode::Normal).await;
                        return Err(LoginError::Refused {
                            code: result.code,
                            message: result.message.unwrap_or_default(),
                        });
                    }
                    let data = result.data.unwrap_or(Value::Null);
                    let login: LoginResult = serde_json::from_value(data).map_err(|e| {
                        LoginError::failed(ClientError::Protocol(format!(
                            "unreadable login result: {e}"
                        )))
                    })?;
                    return Ok((ws, login, early));
                }
                Ok(ServerFrame::Result(other)) => {
                    tracing::debug!(id = %other.id, "result for no request during login");
                }
                Ok(ServerFrame::Event(event)) => early.push(event),
                Err(e) => tracing::warn!(error = %e, "unreadable frame from server"),
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Err(LoginError::failed(ClientError::Timeout)),
    }
}

/// Sends a close frame and waits briefly for the server's, so the server sees a clean close.
pub(crate) async fn close(mut ws: Ws, code: WsCloseCode) {
    let polite = async {
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, polite).await;
}
