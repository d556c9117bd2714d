//! `ferry-chain` binary: opens the store, serves ABCI to CometBFT and metrics to Prometheus.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ferry_chain::metrics::{self, Metrics};
use ferry_chain::{Node, Store};

/// The Ferry sidechain node (ABCI application for CometBFT v0.38).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Directory holding the node's database (created if missing).
    #[arg(long, env = "FERRY_CHAIN_HOME")]
    home: PathBuf,
    /// Address the ABCI server listens on (CometBFT's `proxy_app`).
    #[arg(long, env = "FERRY_CHAIN_ABCI_ADDR", default_value = "127.0.0.1:26658")]
    abci_addr: SocketAddr,
    /// Address of the Prometheus `/metrics` and `/health` endpoint.
    #[arg(long, env = "FERRY_CHAIN_METRICS_ADDR", default_value = "127.0.0.1:26661")]
    metrics_addr: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    std::fs::create_dir_all(&args.home).with_context(|| format!("creating {}", args.home.display()))?;
    let store = Store::open(&args.home.join("state.redb"))?;
    let metrics = Metrics::new()?;
    let node = Arc::new(Node::new(store, metrics.clone())?);
    let info = node.info()?;
    tracing::info!(height = %info.last_block_height, app_hash = %info.last_block_app_hash, abci = %args.abci_addr, metrics = %args.metrics_addr, "ferry-chain starting");

    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding metrics address {}", args.metrics_addr))?;
    tokio::spawn(async move {
        if let Err(error) = metrics::serve(metrics_listener, metrics).await {
            tracing::error!(%error, "metrics endpoint stopped");
        }
    });
    ferry_chain::abci::serve(node, args.abci_addr)
        .await
        .map_err(|e| anyhow::anyhow!("ABCI server on {}: {e}", args.abci_addr))
}
