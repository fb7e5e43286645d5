//! Client settings: where to connect, who to log in as, and how to behave on failures.

use std::fmt;
use std::time::Duration;

/// Settings of one [`Client`](crate::Client). Build with [`ClientConfig::new`] and adjust the
/// public fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// WebSocket URL of the server, e.g. `ws://127.0.0.1:7420/ws`.
    pub server_url: String,
    /// Tencent `SDKAppID`.
    pub sdk_app_id: u64,
    /// The user to log in as.
    pub user_id: String,
    /// The user's signature for the first login ([`Client::set_user_sig`](crate::Client::set_user_sig)
    /// replaces it for later logins).
    pub user_sig: String,
    /// Reconnect (and resume) by itself after the connection drops. Default true.
    pub reconnect: bool,
    /// How long a request (including login) may take, counting any wait for a reconnect.
    /// Default 10 s.
    pub request_timeout: Duration,
    /// First reconnect delay; it doubles per failed attempt. Default 100 ms.
    pub backoff_initial: Duration,
    /// Longest reconnect delay. Default 5 s.
    pub backoff_max: Duration,
    /// How often to send a WebSocket ping; a connection silent for twice this long is treated
    /// as dropped (catches half-open TCP after a network change). Zero turns it off.
    /// Default 15 s.
    pub ping_interval: Duration,
}

impl ClientConfig {
    /// Settings with the defaults above.
    pub fn new(
        server_url: impl Into<String>,
        sdk_app_id: u64,
        user_id: impl Into<String>,
        user_sig: impl Into<String>,
    ) -> Self {
        Self {
            server_url: server_url.into(),
            sdk_app_id,
            user_id: user_id.into(),
            user_sig: user_sig.into(),
            reconnect: true,
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            ping_interval: Duration::from_secs(15),
        }
    }
}

// Hand-written so that logs never carry the userSig (a bearer credential).
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server_url", &self.server_url)
            .field("sdk_app_id", &self.sdk_app_id)
            .field("user_id", &self.user_id)
            .field("user_sig", &"<redacted>")
            .field("reconnect", &self.reconnect)
            .field("request_timeout", &self.request_timeout)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("ping_interval", &self.ping_interval)
            .finish()
    }
}
