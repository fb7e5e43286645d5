//! A raw `beckon.v1` client connection for load generation: connect from one of several
//! loopback source addresses, log in, send `{id, op, params}` requests, read results and
//! events. Lighter than the SDK: no reconnects, no listeners, and an event's `data` is parsed
//! only when a scenario asks for it.

use anyhow::{bail, Context, Result};
use beckon_proto::frames::{op, LoginParams, LoginResult};
use beckon_usersig::UserSigKey;
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Per-connection read buffer: frames are small, and the idle scenario opens 100k clients.
const READ_BUFFER: usize = 4 * 1024;
/// Validity of the UserSigs the tool mints; longer than any run.
const SIG_VALIDITY_SECONDS: u64 = 2 * 86_400;

/// Where the clients connect, and how they sign in.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    /// `ws://ADDR/ws`, sent in the handshake.
    pub(crate) url: String,
    pub(crate) key: UserSigKey,
    /// Loopback source addresses to spread connections over (0: let the system choose).
    pub(crate) sources: u8,
}

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr, path: &str, key: UserSigKey, sources: u8) -> Self {
        let sources = if addr.ip().is_loopback() && addr.is_ipv4() {
            sources
        } else {
            0
        };
        Self {
            addr,
            url: format!("ws://{addr}{path}"),
            key,
            sources,
        }
    }

    pub(crate) fn user_sig(&self, user: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.key.generate(user, now, SIG_VALIDITY_SECONDS)
    }

    /// Opens a WebSocket; connection `index` uses source address 127.0.0.(1 + index % sources)
    /// so that one machine can hold more connections than one address has ports.
    pub(crate) async fn connect(&self, index: usize) -> Result<Conn> {
        let socket = TcpSocket::new_v4().context("cannot create a socket")?;
        if self.sources > 0 {
            let host = 1 + (index % usize::from(self.sources)) as u8;
            let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), 0);
            socket
                .bind(source)
                .with_context(|| format!("cannot bind a client socket to {source}"))?;
        }
        let stream = socket
            .connect(self.addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .context("bad WebSocket URL")?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(beckon_proto::SUBPROTOCOL),
        );
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .with_context(|| format!("WebSocket handshake with {} failed", self.url))?;
        Ok(Conn { ws, next_id: 1 })
    }

    /// Connects and logs in as `user` (creating the account on a Beckon server). Events that
    /// arrive before the login result (none, by the protocol) and right after it are the
    /// caller's to read with `recv`.
    pub(crate) async fn login(
        &self,
        index: usize,
        user: &str,
        instance: &str,
        last_seq: Option<u64>,
    ) -> Result<(Conn, LoginResult)> {
        let mut conn = self.connect(index).await?;
        let result = conn.login(self, user, instance, last_seq).await?;
        Ok((conn, result))
    }
}

/// One frame from the server, with `data` kept as raw JSON until asked for.
#[derive(Debug, Deserialize)]
pub(crate) struct Frame {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The request id a result answers (the tool only sends integer ids).
    #[serde(default)]
    pub(crate) id: Option<u64>,
    #[serde(default)]
    pub(crate) code: u32,
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// Event name.
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

impl Frame {
    pub(crate) fn is_result(&self) -> bool {
        self.kind == "result"
    }

    pub(crate) fn is_event(&self, name: &str) -> bool {
        self.kind == "event" && self.name == name
    }

    /// `data` as `T`.
    pub(crate) fn data<T: DeserializeOwned>(&self) -> Result<T> {
        let raw = self.data.as_deref().map_or("null", RawValue::get);
        serde_json::from_str(raw).with_context(|| {
            format!(
                "unexpected data in {} {}: {raw}",
                self.kind,
                if self.kind == "event" {
                    self.name.as_str()
                } else {
                    ""
                }
            )
        })
    }

    /// "code N: message", for refusals.
    pub(crate) fn refusal(&self) -> String {
        format!(
            "code {}: {}",
            self.code,
            self.message.as_deref().unwrap_or("(no message)")
        )
    }
}

#[derive(Serialize)]
struct Request<'a, P> {
    id: u64,
    op: &'a str,
    params: &'a P,
}

/// An open client WebSocket.
pub(crate) struct Conn {
    ws: WebSocketStream<TcpStream>,
    next_id: u64,
}

impl Conn {
    /// Sends a request with an explicit id.
    pub(crate) async fn send_with_id<P: Serialize>(
        &mut self,
        id: u64,
        op: &str,
        params: &P,
    ) -> Result<()> {
        let text = serde_json::to_string(&Request { id, op, params })
            .with_context(|| format!("cannot encode {op}"))?;
        self.ws
            .send(Message::Text(text.into()))
            .await
            .with_context(|| format!("cannot send {op}"))
    }

    /// Sends a request with the next id and returns that id.
    pub(crate) async fn send<P: Serialize>(&mut self, op: &str, params: &P) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_with_id(id, op, params).await?;
        Ok(id)
    }

    /// The next frame. A closed socket is an error naming the close code. Cancel-safe, so it
    /// can sit in a `select!`.
    pub(crate) async fn recv(&mut self) -> Result<Frame> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .with_context(|| format!("unreadable frame from the server: {text}"));
                }
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(frame) => bail!(
                        "the server closed the connection (code {}: {})",
                        u16::from(frame.code),
                        frame.reason
                    ),
                    None => bail!("the server closed the connection"),
                },
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("connection failed"),
                None => bail!("the connection ended"),
            }
        }
    }

    /// Sends a request and waits for its result; events read meanwhile go to `events`.
    pub(crate) async fn call<P: Serialize>(
        &mut self,
        op: &str,
        params: &P,
        events: &mut Vec<Frame>,
    ) -> Result<Frame> {
        let id = self.send(op, params).await?;
        loop {
            let frame = self.recv().await?;
            if frame.is_result() && frame.id == Some(id) {
                return Ok(frame);
            }
            if frame.kind == "event" {
                events.push(frame);
            }
        }
    }

    /// Logs this connection in; a refusal is an error.
    pub(crate) async fn login(
        &mut self,
        endpoint: &Endpoint,
        user: &str,
        instance: &str,
        last_seq: Option<u64>,
    ) -> Result<LoginResult> {
        let params = LoginParams {
            sdk_app_id: endpoint.key.sdk_app_id(),
            user_id: user.to_owned(),
            user_sig: endpoint.user_sig(user),
            instance_id: Some(instance.to_owned()),
            last_seq,
        };
        let mut early = Vec::new();
        let result = self.call(op::LOGIN, &params, &mut early).await?;
        if result.code != 0 {
            bail!("login of {user} refused ({})", result.refusal());
        }
        result.data()
    }

    /// Closes politely (the server then unregisters the connection at once).
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.ws.close(None)).await;
    }
}
