//! Every metric `ferry-chain` exports, registered in one place. Names follow
//! `ferry_chain_<what>_<unit>`; label values are bounded (transaction phase and outcome code name).

use ferry_types::TxCode;
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// Seconds buckets for block-processing durations (1 ms … 10 s).
const DURATION_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Seconds buckets for CheckTx (10 µs … 100 ms).
const CHECK_TX_BUCKETS: &[f64] = &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1];

/// The node's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Blocks finalized.
    pub blocks: IntCounter,
    /// Last committed height.
    pub height: IntGauge,
    /// Transactions by phase (`check`, `finalize`) and outcome (a [`TxCode`] name).
    pub txs: IntCounterVec,
    /// FinalizeBlock duration.
    pub finalize_block_seconds: Histogram,
    /// Commit duration (database write and fsync).
    pub commit_seconds: Histogram,
    /// CheckTx duration.
    pub check_tx_seconds: Histogram,
    /// 1 while the bridge is paused (reserves invariant violated or a federation vote), else 0.
    pub bridge_paused: IntGauge,
}

/// The phases a transaction is counted in.
pub const PHASES: [&str; 2] = ["check", "finalize"];

impl Metrics {
    /// Creates and registers every metric, with all label combinations initialised to zero.
    ///
    /// # Errors
    /// When a metric is malformed or registered twice (a programming error caught by tests).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let blocks = IntCounter::new("ferry_chain_blocks_total", "Blocks finalized by this node")?;
        let height = IntGauge::new("ferry_chain_height", "Last committed block height")?;
        let txs = IntCounterVec::new(
            Opts::new("ferry_chain_txs_total", "Transactions by phase and outcome"),
            &["phase", "outcome"],
        )?;
        let finalize_block_seconds = Histogram::with_opts(
            HistogramOpts::new("ferry_chain_finalize_block_duration_seconds", "FinalizeBlock duration")
                .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new("ferry_chain_commit_duration_seconds", "Commit duration (write and fsync)")
                .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let check_tx_seconds = Histogram::with_opts(
            HistogramOpts::new("ferry_chain_check_tx_duration_seconds", "CheckTx duration")
                .buckets(CHECK_TX_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(blocks.clone()))?;
        registry.register(Box::new(height.clone()))?;
        registry.register(Box::new(txs.clone()))?;
        registry.register(Box::new(finalize_block_seconds.clone()))?;
        registry.register(Box::new(commit_seconds.clone()))?;
        let bridge_paused =
            IntGauge::new("ferry_chain_bridge_paused", "1 while the bridge is paused, as of the last committed block")?;
        registry.register(Box::new(check_tx_seconds.clone()))?;
        registry.register(Box::new(bridge_paused.clone()))?;
        for phase in PHASES {
            for code in TxCode::ALL {
                txs.with_label_values(&[phase, code.name()]);
            }
        }
        Ok(Metrics {
            registry,
            blocks,
            height,
            txs,
            finalize_block_seconds,
            commit_seconds,
            check_tx_seconds,
            bridge_paused,
        })
    }

    /// Counts one transaction.
    pub fn count_tx(&self, phase: &str, code: TxCode) {
        self.txs.with_label_values(&[phase, code.name()]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec only fails on malformed metric families, which `new` rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// Serves `/metrics` and `/health` on `listener` until the process ends.
///
/// # Errors
/// When serving fails.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/metrics", get(move || std::future::ready(metrics.render())))
        .route("/health", get(|| std::future::ready("ok\n")));
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_starts_at_zero() -> Result<(), prometheus::Error> {
        let text = Metrics::new()?.render();
        assert!(text.contains(r#"ferry_chain_txs_total{outcome="invalid_signature",phase="finalize"} 0"#), "{text}");
        assert!(text.contains("ferry_chain_finalize_block_duration_seconds_bucket"));
        assert!(text.contains("ferry_chain_blocks_total 0"));
        assert!(text.contains("ferry_chain_bridge_paused 0"));
        Ok(())
    }
}
