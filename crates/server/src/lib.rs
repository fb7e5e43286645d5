//! The Beckon server: sessions, connection registry, delivery, timers and HTTP/WebSocket
//! handlers around the store and the core rules.
//!
//! `Server::start` binds, loads the durable state (accounts, active invitations and their
//! deadlines) and serves until `shutdown` or a signal; it is what `beckon serve` runs and what
//! the black-box tests start on `127.0.0.1:0`.

mod admin;
mod assets;
mod dev;
mod groups;
mod http;
mod registry;
mod service;
mod timers;
mod ws;

pub use service::Service;

pub use beckon_store::BackgroundThreads;
use beckon_store::{Store, StoreConfig};
use beckon_usersig::UserSigKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything the server needs to run. `Default` gives the documented defaults, with a
/// placeholder app key that callers replace.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub sdk_app_id: u64,
    pub secret_key: String,
    /// Lifetime of `timeout: 0` invitations.
    pub max_invitation_lifetime: Duration,
    /// How long missed events are kept for resumption.
    pub event_retention: Duration,
    /// Most open WebSocket connections; more are refused with close code 4004.
    pub max_connections: usize,
    /// Frames queued for one connection before it counts as too slow and is closed (4001).
    pub send_queue_frames: usize,
    /// Timeouts applied but not yet committed; further due deadlines wait in the timer.
    pub max_timeouts_in_flight: usize,
    /// Time a new connection has to log in (close code 4003).
    pub login_timeout: Duration,
    /// Sustained requests per second per connection (bursts of twice this are allowed).
    pub rate_limit_per_second: u32,
    /// Requests of one connection in flight at once; further frames wait to be read.
    pub max_in_flight: usize,
    /// The identifier whose UserSig authorizes admin HTTP requests.
    pub admin_identifier: String,
    /// Dev mode: `/dev/usersig` mints UserSigs for anyone and `/dev/users` lists accounts, for
    /// the demo page. Never for production.
    pub dev_mode: bool,
    /// Scheduling of the store's indexer and checkpointer (see `StoreConfig`).
    pub background_threads: BackgroundThreads,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7420)),
            data_dir: PathBuf::from("beckon-data"),
            sdk_app_id: 0,
            secret_key: String::new(),
            max_invitation_lifetime: Duration::from_secs(24 * 3600),
            event_retention: Duration::from_secs(24 * 3600),
            max_connections: 100_000,
            send_queue_frames: 1024,
            max_timeouts_in_flight: 4096,
            login_timeout: Duration::from_secs(10),
            rate_limit_per_second: 200,
            max_in_flight: 64,
            admin_identifier: "administrator".into(),
            dev_mode: false,
            background_threads: BackgroundThreads::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] beckon_store::StoreError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Shared state of a running server.
pub(crate) struct AppState {
    pub(crate) config: ServerConfig,
    pub(crate) key: UserSigKey,
    pub(crate) service: Arc<Service>,
    pub(crate) registry: Arc<registry::Registry>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// A started server.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    http_task: JoinHandle<()>,
    service: Arc<Service>,
    registry: Arc<registry::Registry>,
    background: Vec<JoinHandle<()>>,
    store: Store,
}

/// Entry point.
pub struct Server;

impl Server {
    /// Binds, loads state, arms deadlines (firing those that passed while stopped) and serves.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
        if config.secret_key.is_empty() {
            return Err(StartError::Config(
                "no secret key configured (--secret-key)".into(),
            ));
        }
        let store_config = StoreConfig {
            event_retention_ms: config.event_retention.as_millis() as u64,
            background_threads: config.background_threads,
            ..StoreConfig::default()
        };
        let registry = Arc::new(registry::Registry::new(config.max_connections));
        let store = Store::open(&config.data_dir, store_config, Arc::clone(&registry) as _)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);

        let settings = beckon_core::Settings {
            max_lifetime_ms: config.max_invitation_lifetime.as_millis() as u64,
        };
        let (service, deadlines, timer_rx) = Service::load(store.clone(), settings).await?;
        let background = vec![tokio::spawn(timers::run(
            Arc::clone(&service),
            deadlines,
            config.max_timeouts_in_flight.max(1),
            timer_rx,
            shutdown_rx.clone(),
        ))];

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let state = Arc::new(AppState {
            key: UserSigKey::new(config.sdk_app_id, config.secret_key.clone()),
            config,
            service: Arc::clone(&service),
            registry: Arc::clone(&registry),
            shutdown: shutdown_rx.clone(),
        });
        let app = http::router(state);
        let mut stop = shutdown_rx;
        let http_task = tokio::spawn(async move {
            // Signaling frames are small and latency-bound: never wait on Nagle's algorithm.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            });
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopping| *stopping).await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "HTTP server failed");
            }
        });
        tracing::info!(%addr, "serving");
        Ok(RunningServer {
            addr,
            shutdown_tx,
            http_task,
            service,
            registry,
            background,
            store,
        })
    }
}

impl RunningServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service, for embedding and tests.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Number of open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.registry.connection_count()
    }

    /// Graceful shutdown: stops accepting, lets each connection finish its in-flight requests
    /// and closes it with 4002, stops the timers, then commits everything queued.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        let _ = self.http_task.await;
        // Connections drain on their own once signalled; wait until they are gone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.registry.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            self.registry.closed().await;
        }
        for task in self.background {
            task.abort();
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }

    /// Serves until SIGINT/SIGTERM, then shuts down gracefully. Returns an error when it had to
    /// stop because storage failed (the process should exit non-zero and be restarted).
    pub async fn run_until_signal(self) -> Result<(), String> {
        let store = self.store.clone();
        let outcome = tokio::select! {
            () = wait_for_signal() => Ok(()),
            error = store.failure() => Err(format!("storage failed: {error}")),
        };
        match &outcome {
            Ok(()) => tracing::info!("shutting down: finishing in-flight work"),
            Err(error) => tracing::error!(%error, "shutting down because storage failed"),
        }
        self.shutdown().await;
        tracing::info!("stopped");
        outcome
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; never when the handlers cannot be installed.
pub async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Server time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
