//! `ferry-chain` binary: opens the store, serves ABCI to CometBFT and metrics to Prometheus.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ferry_chain::metrics::{self, Metrics};
use ferry_chain::snapshot::SnapshotConfig;
use ferry_chain::{Node, Store};

/// The Ferry sidechain node (ABCI application for CometBFT v0.38).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Directory holding the node's database (created if missing).
    #[arg(long, env = "FERRY_CHAIN_HOME")]
    home: PathBuf,
    /// Where the ABCI server listens (CometBFT's `proxy_app`): `unix:///path/abci.sock` when
    /// CometBFT runs on the same host (recommended: no per-request delayed-ACK wait), else
    /// `[tcp://]ip:port`.
    #[arg(long, env = "FERRY_CHAIN_ABCI_ADDR", default_value = "127.0.0.1:26658")]
    abci_addr: ferry_chain::abci::AbciAddress,
    /// Address of the Prometheus `/metrics` and `/health` endpoint.
    #[arg(long, env = "FERRY_CHAIN_METRICS_ADDR", default_value = "127.0.0.1:26661")]
    metrics_addr: SocketAddr,
    /// Heights of state (and CometBFT blocks, through Commit's `retain_height`) to keep; older
    /// ones are pruned in the background and queries at them answer code 4 (pruned). 0 keeps
    /// every height (an archive node). Keep it above the longest window any reader queries back
    /// over, and above `[statesync] trust_period` in blocks for nodes that serve light clients.
    #[arg(long, env = "FERRY_CHAIN_MIN_RETAIN_BLOCKS", default_value_t = 0)]
    min_retain_blocks: u64,
    /// Write a state-sync snapshot (under `<home>/snapshots`) at every height divisible by
    /// this, for new nodes to join from (0: none). Blocks are then kept from the oldest
    /// snapshot on, whatever `--min-retain-blocks` says.
    #[arg(long, env = "FERRY_CHAIN_SNAPSHOT_INTERVAL", default_value_t = 0)]
    snapshot_interval: u64,
    /// How many of the newest snapshots to keep.
    #[arg(long, env = "FERRY_CHAIN_SNAPSHOT_KEEP", default_value_t = 2)]
    snapshot_keep: usize,
    /// The size snapshot chunks are cut at, in bytes.
    #[arg(long, env = "FERRY_CHAIN_SNAPSHOT_CHUNK_BYTES", default_value_t = 4 << 20)]
    snapshot_chunk_bytes: usize,
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
    let snapshots = SnapshotConfig {
        dir: args.home.join("snapshots"),
        interval: args.snapshot_interval,
        keep: args.snapshot_keep,
        chunk_bytes: args.snapshot_chunk_bytes.max(1),
    };
    let node =
        Arc::new(Node::new(store, metrics.clone())?.with_pruning(args.min_retain_blocks)?.with_snapshots(snapshots));
    let info = node.info()?;
    tracing::info!(height = %info.last_block_height, app_hash = %info.last_block_app_hash, abci = %args.abci_addr, metrics = %args.metrics_addr, min_retain_blocks = args.min_retain_blocks, snapshot_interval = args.snapshot_interval, "ferry-chain starting");

    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding metrics address {}", args.metrics_addr))?;
    tokio::spawn(async move {
        if let Err(error) = metrics::serve(metrics_listener, metrics).await {
            tracing::error!(%error, "metrics endpoint stopped");
        }
    });
    ferry_chain::abci::serve(node, &args.abci_addr)
        .await
        .map_err(|e| anyhow::anyhow!("ABCI server on {}: {e}", args.abci_addr))
}
