//! `beckon client`: a line-oriented JSON client for debugging and scripting.

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// WebSocket URL of the server.
    #[arg(long, default_value = "ws://127.0.0.1:7420/ws")]
    server: String,
}

pub(crate) async fn run(_args: ClientArgs) -> Result<()> {
    anyhow::bail!("not built yet")
}
