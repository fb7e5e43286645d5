//! The `beckon` binary: `serve`, `usersig` and `client`, with configuration and logging.

mod client_cli;
mod credentials;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

// Frames, jobs and records are allocated on one thread and freed on another all the time:
// mimalloc does that far more cheaply than glibc's allocator (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "beckon",
    version,
    about = "Self-hosted call-signaling server with Tencent-compatible signaling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite store in --data-dir).
    Serve(ServeArgs),
    /// Print a UserSig for a userID, signed with the configured app key.
    Usersig(UsersigArgs),
    /// Interactive/scriptable client: one JSON request per line on stdin, one JSON line per
    /// result or event on stdout.
    Client(client_cli::ClientArgs),
    /// Load tests: start a server (or use --server) and measure calls, groups, idle
    /// connections, timers and restarts.
    Bench(beckon_bench::BenchArgs),
}

/// The app identity: given explicitly, or the dev credentials kept in the data directory.
#[derive(Debug, Clone, Args)]
pub(crate) struct AppArgs {
    /// Data directory (database, and dev credentials when no key is configured).
    #[arg(long, env = "BECKON_DATA_DIR", default_value = "./beckon-data")]
    pub(crate) data_dir: PathBuf,
    /// The app's SDKAppID (with --secret-key; both unset means dev credentials).
    #[arg(long, env = "BECKON_SDKAPPID")]
    pub(crate) sdkappid: Option<u64>,
    /// The app's secret key, used to verify UserSigs.
    #[arg(long, env = "BECKON_SECRET_KEY", hide_env_values = true)]
    pub(crate) secret_key: Option<String>,
}

/// `--background-threads` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BackgroundThreadsArg {
    Adaptive,
    Normal,
    Idle,
}

impl From<BackgroundThreadsArg> for beckon_server::BackgroundThreads {
    fn from(arg: BackgroundThreadsArg) -> Self {
        match arg {
            BackgroundThreadsArg::Adaptive => Self::Adaptive,
            BackgroundThreadsArg::Normal => Self::Normal,
            BackgroundThreadsArg::Idle => Self::Idle,
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BECKON_LISTEN", default_value = "127.0.0.1:7420")]
    listen: SocketAddr,
    #[command(flatten)]
    app: AppArgs,
    /// Lifetime of invitations sent with timeout 0, in seconds.
    #[arg(long, env = "BECKON_MAX_INVITATION_LIFETIME", default_value_t = 86_400)]
    max_invitation_lifetime: u64,
    /// How long missed events are kept for reconnecting clients, in seconds.
    #[arg(long, env = "BECKON_EVENT_RETENTION", default_value_t = 86_400)]
    event_retention: u64,
    /// Most open WebSocket connections.
    #[arg(long, env = "BECKON_MAX_CONNECTIONS", default_value_t = 100_000)]
    max_connections: usize,
    /// Sustained requests per second allowed per connection (bursts of twice as many).
    #[arg(long, env = "BECKON_RATE_LIMIT", default_value_t = 200)]
    rate_limit: u32,
    /// Dev mode: serve `/dev/usersig` (mints a UserSig for anyone) and `/dev/users` for the
    /// demo page. Defaults to on with generated dev credentials, off with a configured key.
    #[arg(long, env = "BECKON_DEV")]
    dev: Option<bool>,
    /// Scheduling of the store's indexer and checkpointer (Linux): `adaptive` runs them under
    /// the idle policy while they keep up and the normal one while their queue backs up
    /// (normal throughout where the process may not raise a thread back); `normal`; `idle`
    /// always, for a machine Beckon has to itself.
    #[arg(long, env = "BECKON_BACKGROUND_THREADS", value_enum, default_value_t = BackgroundThreadsArg::Adaptive)]
    background_threads: BackgroundThreadsArg,
    /// Older spelling of `--background-threads idle`.
    #[arg(
        long,
        env = "BECKON_IDLE_BACKGROUND_THREADS",
        hide = true,
        default_value_t = false
    )]
    idle_background_threads: bool,
    /// Log format: `text` or `json`.
    #[arg(long, env = "BECKON_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[derive(Debug, Args)]
struct UsersigArgs {
    /// The userID to sign for.
    user_id: String,
    #[command(flatten)]
    app: AppArgs,
    /// Validity in seconds.
    #[arg(long, default_value_t = 7 * 86_400)]
    expire: u64,
}

fn init_logging(format: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BECKON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => anyhow::bail!("--log-format must be text or json, got {other:?}"),
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Usersig(args) => {
            let creds = credentials::resolve(&args.app, false)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            println!("{}", creds.key().generate(&args.user_id, now, args.expire));
            Ok(())
        }
        Command::Client(args) => runtime.block_on(client_cli::run(args)),
        Command::Bench(args) => runtime.block_on(beckon_bench::run(args)),
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_format)?;
    let creds = credentials::resolve(&args.app, true)?;
    let dev_mode = args.dev.unwrap_or(creds.generated);
    if dev_mode {
        eprintln!("################################################################");
        eprintln!("# DEV MODE IS ON: /dev/usersig hands out a UserSig for any user. #");
        eprintln!("# Never expose this server. Turn it off with --dev false.        #");
        eprintln!("################################################################");
    }
    let config = beckon_server::ServerConfig {
        listen: args.listen,
        data_dir: args.app.data_dir.clone(),
        sdk_app_id: creds.sdk_app_id,
        secret_key: creds.secret_key.clone(),
        max_invitation_lifetime: Duration::from_secs(args.max_invitation_lifetime.max(1)),
        event_retention: Duration::from_secs(args.event_retention.max(1)),
        max_connections: args.max_connections,
        rate_limit_per_second: args.rate_limit,
        background_threads: if args.idle_background_threads {
            beckon_server::BackgroundThreads::Idle
        } else {
            args.background_threads.into()
        },
        dev_mode,
        ..beckon_server::ServerConfig::default()
    };
    let server = beckon_server::Server::start(config)
        .await
        .context("cannot start the server")?;
    let addr = server.local_addr();
    // A closed standard output (a supervisor or script that read the address and went away)
    // must not stop the server, so write errors are ignored instead of panicking.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "beckon is serving on http://{addr}  (WebSocket: ws://{addr}{})",
        beckon_proto::WS_PATH
    );
    let _ = writeln!(
        out,
        "SDKAppID {}; data in {}",
        creds.sdk_app_id,
        args.app.data_dir.display()
    );
    let _ = out.flush();
    drop(out);
    server.run_until_signal().await.map_err(anyhow::Error::msg)
}
