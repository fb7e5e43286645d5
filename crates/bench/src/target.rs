//! What a scenario measures: a Beckon server the tool starts (default), a running one given
//! with `--server`, or one of the baseline relays; with the handle to read its memory and to
//! stop it.

use crate::conn::Endpoint;
use crate::process::{self, ChildProcess};
use crate::system::Memory;
use crate::Common;
use anyhow::{bail, Context, Result};
use beckon_usersig::UserSigKey;
use rand::Rng;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The thing under measurement.
pub(crate) struct Target {
    pub(crate) endpoint: Endpoint,
    /// "beckon", "bare relay", "SQLite relay".
    pub(crate) label: &'static str,
    child: Option<ChildProcess>,
    pid: Option<u32>,
    /// For a started server: its data directory (inside `dir`) and credentials.
    data_dir: PathBuf,
    secret: String,
    max_connections: usize,
    sources: u8,
    // Removed when the target is dropped, after the child is gone.
    dir: Option<tempfile::TempDir>,
}

/// Which baseline relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelayMode {
    Bare,
    Sqlite,
}

impl RelayMode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Sqlite => "sqlite",
        }
    }
}

impl Target {
    /// Starts `beckon serve` on a fresh data directory, or connects to `--server`.
    pub(crate) async fn beckon(common: &Common, max_connections: usize) -> Result<Self> {
        if let Some(url) = &common.server {
            let (Some(sdk_app_id), Some(secret)) = (common.sdkappid, &common.secret_key) else {
                bail!("--server needs --sdkappid and --secret-key (or BECKON_SDKAPPID, BECKON_SECRET_KEY) to mint UserSigs");
            };
            let (addr, path) = resolve(url).await?;
            return Ok(Self {
                endpoint: Endpoint::new(
                    addr,
                    &path,
                    UserSigKey::new(sdk_app_id, secret.clone()),
                    common.sources,
                ),
                label: "beckon",
                child: None,
                pid: common.server_pid,
                data_dir: PathBuf::new(),
                secret: String::new(),
                max_connections,
                sources: common.sources,
                dir: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("beckon-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let mut rng = rand::thread_rng();
        let sdk_app_id = rng.gen_range(1_400_000_000..1_500_000_000);
        let secret = (0..32).fold(String::with_capacity(64), |mut text, _| {
            let _ = write!(text, "{:02x}", rng.gen::<u8>());
            text
        });
        let mut target = Self {
            endpoint: Endpoint::new(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                beckon_proto::WS_PATH,
                UserSigKey::new(sdk_app_id, secret.clone()),
                common.sources,
            ),
            label: "beckon",
            child: None,
            pid: None,
            data_dir: dir.path().join("data"),
            secret,
            max_connections,
            sources: common.sources,
            dir: Some(dir),
        };
        target.start_again().await?;
        Ok(target)
    }

    /// Starts a baseline relay in its own process.
    pub(crate) async fn relay(common: &Common, mode: RelayMode) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("beckon-relay-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let command = process::relay_command(mode.name(), dir.path())?;
        let child = ChildProcess::start("relay", command, &dir.path().join("relay.log")).await?;
        Ok(Self {
            endpoint: Endpoint::new(
                child.addr(),
                beckon_proto::WS_PATH,
                // The relay accepts any signature; the key only keeps the login frame the same.
                UserSigKey::new(1, "relay"),
                common.sources,
            ),
            label: match mode {
                RelayMode::Bare => "bare relay",
                RelayMode::Sqlite => "SQLite relay",
            },
            pid: Some(child.pid()),
            child: Some(child),
            data_dir: PathBuf::new(),
            secret: String::new(),
            max_connections: 0,
            sources: common.sources,
            dir: Some(dir),
        })
    }

    /// Whether the tool started this server (and so may stop and restart it).
    pub(crate) fn started_here(&self) -> bool {
        self.dir.is_some()
    }

    /// The server's process id, when known.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The server's memory, when its process is known.
    pub(crate) fn memory(&self) -> Result<Option<Memory>> {
        match self.pid {
            Some(pid) => crate::system::memory(pid).map(Some),
            None => Ok(None),
        }
    }

    /// Fails if the started server has died.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        match &mut self.child {
            Some(child) => child.check_alive(),
            None => Ok(()),
        }
    }

    /// Stops the started server gracefully (SIGTERM); returns how long that took.
    pub(crate) async fn stop(&mut self) -> Result<Duration> {
        match self.child.take() {
            Some(child) => {
                self.pid = None;
                child.stop().await
            }
            None => Ok(Duration::ZERO),
        }
    }

    /// Starts the server (again) on its data directory; returns when it was spawned and when
    /// it printed its address.
    pub(crate) async fn start_again(&mut self) -> Result<(Instant, Instant)> {
        if !self.started_here() {
            bail!("this scenario restarts the server, so it must start it: drop --server");
        }
        let Some(dir) = &self.dir else {
            bail!("no data directory");
        };
        let command = process::beckon_command(
            &self.data_dir,
            self.endpoint.key.sdk_app_id(),
            &self.secret,
            self.max_connections,
        )?;
        let spawned = Instant::now();
        let child = ChildProcess::start("server", command, &dir.path().join("server.log")).await?;
        self.endpoint = Endpoint::new(
            child.addr(),
            beckon_proto::WS_PATH,
            self.endpoint.key.clone(),
            self.sources,
        );
        self.pid = Some(child.pid());
        let serving = child.serving_at;
        self.child = Some(child);
        Ok((spawned, serving))
    }

    /// Stops what the tool started; the data directory goes with the target.
    pub(crate) async fn finish(mut self) -> Result<()> {
        self.stop().await.map(|_| ())
    }
}

/// `ws://HOST:PORT[/PATH]` → a socket address and the path (default `/ws`).
async fn resolve(url: &str) -> Result<(std::net::SocketAddr, String)> {
    let Some(rest) = url.strip_prefix("ws://") else {
        bail!("--server must be a ws:// URL like ws://127.0.0.1:7420/ws (wss is not supported by the load clients)");
    };
    let (host, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], rest[slash..].to_owned()),
        None => (rest, beckon_proto::WS_PATH.to_owned()),
    };
    let addr = tokio::net::lookup_host(host)
        .await
        .with_context(|| format!("cannot resolve {host:?} (use HOST:PORT)"))?
        .find(std::net::SocketAddr::is_ipv4)
        .with_context(|| format!("{host:?} has no IPv4 address"))?;
    Ok((addr, path))
}
