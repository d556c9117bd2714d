//! Every metric `ferry-relayer` exports, registered in one place. Names follow
//! `ferry_relayer_<what>_<unit>`; labels are bounded (`chain`, `state`, `outcome`). Deposits and
//! releases have their own families (`ferry_relayer_deposits`, `ferry_relayer_releases`, …).

use ferry_daemon::metrics::MetricsRegistry;
use ferry_daemon::verified_reads::ReadGauges;
use prometheus::{Gauge, GaugeVec, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec};

/// Chains the relayer talks to, as label values.
pub const CHAINS: [&str; 3] = ["btc", "eth", "sidechain"];
/// Deposit states, as label values.
pub const DEPOSIT_STATES: [&str; 5] = ["observed", "attesting", "attested", "dropped", "rejected"];
/// Attestation outcomes, as label values (see [`crate::attest::AttestOutcome::label`]).
pub const ATTEST_OUTCOMES: [&str; 4] = ["accepted", "deferred", "refused", "error"];
/// Release states, as label values (see [`crate::delivery::decision::ReleaseStatus`]).
pub const RELEASE_STATES: [&str; 7] =
    ["delivering", "broadcast", "confirmed", "attesting", "attested", "refused", "settled"];
const RPC_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The relayer's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: MetricsRegistry,
    /// Tip height of each parent chain.
    pub parent_height: IntGaugeVec,
    /// Last scanned height of each parent chain.
    pub scanned_height: IntGaugeVec,
    /// Tip minus scanned height.
    pub lag_blocks: IntGaugeVec,
    /// The sidechain's latest height.
    pub sidechain_height: IntGauge,
    /// Deposits by state, as stored.
    pub deposits: IntGaugeVec,
    /// Reorganisations seen.
    pub reorgs: IntCounterVec,
    /// Deposit ids seen again with other facts (audited and skipped).
    pub deposit_conflicts: IntCounterVec,
    /// Failed RPC calls.
    pub rpc_errors: IntCounterVec,
    /// RPC latency.
    pub rpc_seconds: HistogramVec,
    /// Attestations sent, by outcome.
    pub attestations: IntCounterVec,
    /// Seconds since the Unix epoch of the last complete poll of each chain (for alerts;
    /// `sidechain` is the delivery loop's round).
    pub last_poll: GaugeVec,
    /// Releases by parent chain and state, as stored.
    pub releases: IntGaugeVec,
    /// Delivery rounds of a batch that failed (RPC errors, refused transactions), by parent chain.
    pub delivery_errors: IntCounterVec,
    /// Seconds since the Unix epoch of the last release this relayer handed to each parent chain.
    pub last_delivery: GaugeVec,
    /// Release attestations sent, by parent chain and outcome.
    pub release_attestations: IntCounterVec,
    /// Reserves snapshots sent, by parent chain and outcome.
    pub reserves_snapshots: IntCounterVec,
    /// What this relayer's own node showed the bridge holding per asset at its last snapshot.
    pub reserves_holdings: GaugeVec,
    /// Registered Bitcoin deposit addresses the scan watches.
    pub deposit_addresses: IntGauge,
    /// What proven reads cost and which endpoints lied.
    pub proven_reads: ReadGauges,
    /// Rows of the audit log's head last anchored on the chain (0: none yet).
    pub audit_anchored_rows: IntGauge,
    /// When it was anchored (or found anchored), Unix seconds (0: never).
    pub audit_anchored_at: Gauge,
    /// Seconds of Ethereum block time until the vault's escape hatch opens (0: open or frozen;
    /// -1: not read, no Ethereum): each heartbeat puts it back to the escape delay.
    pub vault_escape_opens_in: IntGauge,
    /// Whether the vault is frozen (only exits work).
    pub vault_frozen: IntGauge,
    /// The sidechain height whose claims the vault's exit root covers.
    pub vault_root_height: IntGauge,
    /// Bitcoin blocks until the newest kept exit disbursal that can still confirm opens (0:
    /// open; -1: none kept, or no Bitcoin).
    pub exit_opens_in_blocks: IntGauge,
    /// Kept exit disbursals by broadcasting state.
    pub exit_disbursals: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric, all label combinations initialised to zero.
    ///
    /// # Errors
    /// When a metric is malformed or registered twice.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = MetricsRegistry::new();
        let parent_height =
            registry.int_gauge_vec("ferry_relayer_parent_height", "Tip height of the parent chain", &["chain"])?;
        let scanned_height =
            registry.int_gauge_vec("ferry_relayer_scanned_height", "Last parent-chain height scanned", &["chain"])?;
        let lag_blocks =
            registry.int_gauge_vec("ferry_relayer_lag_blocks", "Parent-chain blocks not scanned yet", &["chain"])?;
        let sidechain_height = registry.int_gauge("ferry_relayer_sidechain_height", "Latest sidechain height seen")?;
        let deposits = registry.int_gauge_vec("ferry_relayer_deposits", "Deposits by state", &["state"])?;
        let reorgs =
            registry.int_counter_vec("ferry_relayer_reorgs_total", "Parent-chain reorganisations", &["chain"])?;
        let deposit_conflicts = registry.int_counter_vec(
            "ferry_relayer_deposit_conflicts_total",
            "Deposit ids seen again with other facts than stored (audited, skipped)",
            &["chain"],
        )?;
        let rpc_errors = registry.int_counter_vec("ferry_relayer_rpc_errors_total", "Failed RPC calls", &["chain"])?;
        let rpc_seconds = registry.histogram_vec(
            "ferry_relayer_rpc_duration_seconds",
            "RPC call latency",
            RPC_BUCKETS,
            &["chain"],
        )?;
        let attestations = registry.int_counter_vec(
            "ferry_relayer_attestations_total",
            "Deposit attestations sent",
            &["chain", "outcome"],
        )?;
        let last_poll = registry.gauge_vec(
            "ferry_relayer_last_poll_timestamp_seconds",
            "When each chain was last polled successfully",
            &["chain"],
        )?;
        let releases = registry.int_gauge_vec(
            "ferry_relayer_releases",
            "Releases by parent chain and state",
            &["chain", "state"],
        )?;
        let delivery_errors = registry.int_counter_vec(
            "ferry_relayer_delivery_errors_total",
            "Release delivery rounds that failed",
            &["chain"],
        )?;
        let last_delivery = registry.gauge_vec(
            "ferry_relayer_last_delivery_timestamp_seconds",
            "When this relayer last delivered a release",
            &["chain"],
        )?;
        let release_attestations = registry.int_counter_vec(
            "ferry_relayer_release_attestations_total",
            "Release attestations sent",
            &["chain", "outcome"],
        )?;
        let reserves_snapshots = registry.int_counter_vec(
            "ferry_relayer_reserves_snapshots_total",
            "Reserves snapshots sent to the chain's reserves rounds",
            &["chain", "outcome"],
        )?;
        let reserves_holdings = registry.gauge_vec(
            "ferry_relayer_reserves_holdings",
            "What this relayer's parent-chain node showed the bridge holding at its last snapshot, in base units",
            &["asset"],
        )?;
        let vault_escape_opens_in = registry.int_gauge(
            "ferry_relayer_vault_escape_opens_in_seconds",
            "Seconds until the vault's escape hatch opens (0: open or frozen); heartbeats push it back",
        )?;
        // -1 until read: a relayer without Ethereum never claims the hatch is open.
        vault_escape_opens_in.set(-1);
        let vault_frozen = registry.int_gauge("ferry_relayer_vault_frozen", "Whether the vault is frozen (1)")?;
        let vault_root_height = registry.int_gauge(
            "ferry_relayer_vault_root_height",
            "The sidechain height whose claims the vault's exit root covers",
        )?;
        let exit_opens_in_blocks = registry.int_gauge(
            "ferry_relayer_exit_opens_in_blocks",
            "Bitcoin blocks until the newest kept exit disbursal opens (0: open, -1: none); each release or refresh pushes it back",
        )?;
        exit_opens_in_blocks.set(-1);
        let exit_disbursals = registry.int_gauge_vec(
            "ferry_relayer_exit_disbursals",
            "Kept exit disbursals by broadcasting state",
            &["state"],
        )?;
        for state in crate::delivery::exits::STATES {
            exit_disbursals.with_label_values(&[state]).set(0);
        }
        let deposit_addresses = registry.int_gauge(
            "ferry_relayer_deposit_addresses",
            "Registered Bitcoin deposit addresses the scan watches besides the peg",
        )?;
        let proven_reads = ReadGauges {
            unverified_answers: registry.int_gauge_vec(
                "ferry_relayer_unverified_answers_total",
                "Answers of a sidechain endpoint whose proof did not verify against the light client's headers (a lying node)",
                &["endpoint"],
            )?,
            read_seconds: registry.gauge(
                "ferry_relayer_proven_read_seconds",
                "Seconds spent in proven reads of the sidechain since start (round trips, header and Merkle proof checks)",
            )?,
        };
        let audit_anchored_rows = registry.int_gauge(
            "ferry_relayer_audit_anchored_rows",
            "Rows of the relayer audit log's head last anchored on the sidechain (0: none yet)",
        )?;
        let audit_anchored_at = registry.gauge(
            "ferry_relayer_audit_anchored_timestamp_seconds",
            "When the relayer audit log's head was last anchored on the sidechain (Unix seconds; 0: never)",
        )?;
        for chain in CHAINS {
            rpc_errors.with_label_values(&[chain]);
            rpc_seconds.with_label_values(&[chain]);
            last_poll.with_label_values(&[chain]);
        }
        for state in DEPOSIT_STATES {
            deposits.with_label_values(&[state]);
        }
        for chain in ["btc", "eth"] {
            parent_height.with_label_values(&[chain]);
            scanned_height.with_label_values(&[chain]);
            lag_blocks.with_label_values(&[chain]);
            reorgs.with_label_values(&[chain]);
            delivery_errors.with_label_values(&[chain]);
            last_delivery.with_label_values(&[chain]);
            for outcome in ATTEST_OUTCOMES {
                attestations.with_label_values(&[chain, outcome]);
                release_attestations.with_label_values(&[chain, outcome]);
                reserves_snapshots.with_label_values(&[chain, outcome]);
            }
            for state in RELEASE_STATES {
                releases.with_label_values(&[chain, state]);
            }
        }
        Ok(Metrics {
            registry,
            parent_height,
            scanned_height,
            lag_blocks,
            sidechain_height,
            deposits,
            reorgs,
            deposit_conflicts,
            rpc_errors,
            rpc_seconds,
            attestations,
            last_poll,
            releases,
            delivery_errors,
            last_delivery,
            release_attestations,
            reserves_snapshots,
            reserves_holdings,
            deposit_addresses,
            proven_reads,
            audit_anchored_rows,
            audit_anchored_at,
            vault_escape_opens_in,
            vault_frozen,
            vault_root_height,
            exit_opens_in_blocks,
            exit_disbursals,
        })
    }

    /// Records where the vault's escape hatch stands.
    pub fn record_escape(&self, state: &ferry_parent_chains::ethereum::EscapeState) {
        let opens_in = if state.frozen { 0 } else { state.opens_in() };
        self.vault_escape_opens_in.set(i64::try_from(opens_in).unwrap_or(i64::MAX));
        self.vault_frozen.set(i64::from(state.frozen));
        self.vault_root_height.set(i64::try_from(state.root_height).unwrap_or(i64::MAX));
    }

    /// Records one RPC call.
    pub fn observe_rpc(&self, chain: &str, seconds: f64, ok: bool) {
        self.rpc_seconds.with_label_values(&[chain]).observe(seconds);
        if !ok {
            self.rpc_errors.with_label_values(&[chain]).inc();
        }
    }

    /// The gauges the audit anchorer keeps current.
    pub fn audit_anchor_gauges(&self) -> ferry_daemon::audit_anchor::AnchorGauges {
        ferry_daemon::audit_anchor::AnchorGauges {
            rows: self.audit_anchored_rows.clone(),
            at: self.audit_anchored_at.clone(),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_labels_are_the_stored_status_names() {
        let releases: Vec<&str> =
            crate::delivery::decision::ReleaseStatus::ALL.into_iter().map(|status| status.as_str()).collect();
        assert_eq!(releases, RELEASE_STATES);
        let deposits: Vec<&str> = crate::store::DepositStatus::ALL.into_iter().map(|status| status.as_str()).collect();
        assert_eq!(deposits, DEPOSIT_STATES);
    }

    #[test]
    fn series_start_at_zero() -> Result<(), prometheus::Error> {
        let text = Metrics::new()?.render();
        assert!(text.contains(r#"ferry_relayer_deposits{state="dropped"} 0"#), "{text}");
        assert!(text.contains(r#"ferry_relayer_reorgs_total{chain="eth"} 0"#), "{text}");
        assert!(text.contains(r#"ferry_relayer_releases{chain="btc",state="settled"} 0"#), "{text}");
        assert!(
            text.contains(r#"ferry_relayer_release_attestations_total{chain="eth",outcome="deferred"} 0"#),
            "{text}"
        );
        Ok(())
    }
}
