//! Every metric `ferry-chain` exports, registered in one place. Names follow
//! `ferry_chain_<what>_<unit>`; label values are bounded (transaction phase and outcome code name,
//! batch status, and `asset` — a denomination with a ledger, which only genesis and deposits of
//! configured assets create).
//!
//! The bridge gauges ([`BridgeSnapshot`]) describe the state as of the last committed block; the
//! node reads that state at Commit and hands it over here, so this module does no state reads.
//! The alert rules and dashboards in `deploy/` are written against these names.

use ferry_types::query::BatchStatus;
use ferry_types::{Amount, TxCode};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

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
    /// Positions of the exit tree holding a claim (balances and unpaid withdrawals of
    /// Ethereum assets) in the committed state.
    pub exit_claims: IntGauge,
    /// Transactions by phase (`check`, `finalize`) and outcome (a [`TxCode`] name).
    pub txs: IntCounterVec,
    /// FinalizeBlock duration.
    pub finalize_block_seconds: Histogram,
    /// Commit duration (database write and fsync).
    pub commit_seconds: Histogram,
    /// CheckTx duration.
    pub check_tx_seconds: Histogram,
    /// The oldest height whose state this node still answers for (0: nothing pruned).
    pub pruned_below: IntGauge,
    /// Stale tree nodes, values and app hashes deleted by pruning.
    pub pruned_entries: IntCounter,
    /// Height of the newest snapshot this node wrote for state sync (0: none).
    pub snapshot_height: IntGauge,
    /// Snapshot chunks refused while restoring (their hash did not match the metadata).
    pub snapshot_chunks_refused: IntCounter,
    /// 1 while the bridge is paused (reserves invariant violated or a federation vote), else 0.
    pub bridge_paused: IntGauge,
    /// Wrapped supply per asset (in the asset's base unit: sat, wei, token units).
    pub asset_supply: GaugeVec,
    /// Parent-chain reserves per asset.
    pub asset_reserves: GaugeVec,
    /// Burned but not yet released, per asset.
    pub asset_unreleased: GaugeVec,
    /// Unattributed payments held, per asset.
    pub asset_unattributed: GaugeVec,
    /// Unattributed payments not resolved yet.
    pub unattributed_open: IntGauge,
    /// Height of each member's last heartbeat (0: none yet).
    pub member_last_heartbeat: IntGaugeVec,
    /// 1 for a member that answered one of the last `live_rounds` heartbeat rounds.
    pub member_live: IntGaugeVec,
    /// Members live.
    pub members_live: IntGauge,
    /// The federation's signing threshold (T).
    pub federation_threshold: IntGauge,
    /// The latest key generation session (0: none).
    pub dkg_session: IntGauge,
    /// Its attempt.
    pub dkg_attempt: IntGauge,
    /// 1 for its phase, 0 for the others.
    pub dkg_phase: IntGaugeVec,
    /// Participants dropped from it so far (silent, or convicted by a complaint).
    pub dkg_faults: IntGauge,
    /// The federation's epoch.
    pub federation_epoch: IntGauge,
    /// Sidechain blocks the running hand-over has taken (0: none runs).
    pub handover_blocks: IntGauge,
    /// 1 while the running hand-over cannot form a migration (its fee budget is short).
    pub handover_waiting: IntGauge,
    /// Reserve UTXOs at retired pegs (deposits minted within a grace) not yet in a sweep.
    pub retired_peg_utxos: IntGauge,
    /// 1 for an asset whose ledger breaks `supply + unreleased + fee_pool <= reserves`, computed
    /// exactly (the amount gauges above are floats and cannot be compared to the unit).
    pub reserves_violated: IntGaugeVec,
    /// Withdrawals queued (burned, not yet in a batch), per asset.
    pub withdrawals_queued: IntGaugeVec,
    /// Blocks since the oldest queued withdrawal became eligible for a batch (0: none waiting).
    pub oldest_queued_withdrawal_age: IntGauge,
    /// Unsettled batches by status (`signing`, `signed`).
    pub batches_pending: IntGaugeVec,
    /// Blocks since the oldest unsettled batch formed (0: none).
    pub oldest_unsettled_batch_age: IntGauge,
    /// `ferry_chain_bitcoin_fee_rate_sat_per_vbyte`.
    pub bitcoin_fee_rate: Gauge,
    /// `ferry_chain_bitcoin_parent_height`.
    pub bitcoin_parent_height: IntGauge,
    /// `ferry_chain_bitcoin_last_release_waited_blocks`.
    pub bitcoin_last_release_waited: IntGauge,
    /// `ferry_chain_bitcoin_release_bumps`.
    pub bitcoin_release_bumps: IntGauge,
    /// `ferry_chain_bitcoin_unconfirmed_release_age_blocks`.
    pub bitcoin_unconfirmed_release_age: IntGauge,
    /// `ferry_chain_bitcoin_release_replacements_total`.
    pub bitcoin_replacements: IntCounter,
    /// `ferry_chain_bitcoin_consolidations_total`.
    pub bitcoin_consolidations: IntCounter,
    /// What a quorum of relayers' parent-chain nodes showed the bridge holding, per asset, at the
    /// last reserves check.
    pub parent_holdings: GaugeVec,
    /// 1 for an asset the last reserves check found short (computed exactly), else 0.
    pub reserves_short: IntGaugeVec,
    /// Blocks since each parent chain's last reserves check (its height while none has happened).
    pub reserves_check_age: IntGaugeVec,
    /// Bitcoin blocks since the covering exit disbursal was derived (-1: none covers the reserve).
    pub exit_disbursal_age: IntGauge,
    /// Bitcoin blocks until the first exit disbursal that may still confirm opens (-1: none).
    pub exit_opens_in: IntGauge,
    /// Sidechain blocks since the last vault heartbeat landed (-1: none yet).
    pub vault_heartbeat_age: IntGauge,
}

/// Batch statuses of unsettled batches, as label values.
pub const PENDING_BATCH_STATUSES: [&str; 2] = ["signing", "signed"];

/// The bridge's figures as of one committed block, read from state by the node at Commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeSnapshot {
    /// Whether the bridge is paused.
    pub paused: bool,
    /// Every asset with a ledger, in denomination order.
    pub assets: Vec<AssetSnapshot>,
    /// The status of every unsettled batch.
    pub pending_batches: Vec<BatchStatus>,
    /// Blocks since the oldest unsettled batch formed (0: none).
    pub oldest_unsettled_batch_age: u64,
    /// Blocks since the oldest queued withdrawal became eligible (0: none waiting).
    pub oldest_queued_withdrawal_age: u64,
    /// Bitcoin fees: the rate, the parent clock, the last release's delay.
    pub bitcoin_fees: Option<ferry_types::query::BitcoinFeesView>,
    /// The highest version (replacements so far) of an unsettled Bitcoin release.
    pub bitcoin_release_bumps: u32,
    /// Parent blocks since the oldest unsettled, signed Bitcoin release was first signed (0: none).
    pub bitcoin_unconfirmed_release_age: u64,
    /// The committed height.
    pub height: u64,
    /// Each parent chain's (label) latest reserves check.
    pub reserves_checks: Vec<(String, ferry_types::query::ReservesCheck)>,
    /// Unattributed payments to the peg no member quorum has resolved yet.
    pub unattributed_open: u64,
    /// Unlocked reserve UTXOs at retired pegs, waiting for a sweep.
    pub retired_peg_utxos: u64,
    /// Who answers heartbeats.
    pub liveness: Option<ferry_types::query::federation::LivenessView>,
    /// The latest key generation session.
    pub dkg: Option<ferry_types::query::federation::DkgSession>,
    /// The federation's epoch, and the hand-over to the next one while it runs.
    pub federation: Option<(u64, Option<ferry_types::query::federation::Handover>)>,
    /// The covering exit disbursal's derivation clock, and the soonest lock height of any
    /// disbursal that may still confirm.
    pub exit_disbursal: Option<(u64, u32)>,
    /// The sidechain height the last vault heartbeat landed at.
    pub vault_heartbeat_landed: Option<u64>,
}

/// One asset's ledger and queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetSnapshot {
    /// The wrapped denomination.
    pub asset: String,
    /// Wrapped tokens in existence.
    pub supply: Amount,
    /// Parent-chain funds the bridge controls.
    pub reserves: Amount,
    /// Burned, not yet released.
    pub unreleased: Amount,
    /// Payments to the peg naming no account, held until resolved.
    pub unattributed: Amount,
    /// Whether the ledger breaks the reserves invariant.
    pub violated: bool,
    /// Withdrawals queued.
    pub queued: u64,
}

/// The label value of a batch status.
fn batch_status_label(status: BatchStatus) -> Option<&'static str> {
    match status {
        BatchStatus::Signing => Some("signing"),
        BatchStatus::Signed => Some("signed"),
        BatchStatus::Released | BatchStatus::Aborted => None,
    }
}

/// A gauge value: amounts beyond 2^53 lose precision, which is why the invariant has its own gauge.
fn amount_gauge(amount: Amount) -> f64 {
    amount.get() as f64
}

fn count_gauge(count: impl TryInto<i64>) -> i64 {
    count.try_into().unwrap_or(i64::MAX)
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
        let exit_claims = IntGauge::new(
            "ferry_chain_exit_claims",
            "Ethereum exit claims (balances and unpaid withdrawals) in the committed exit tree",
        )?;
        registry.register(Box::new(exit_claims.clone()))?;
        let exit_disbursal_age = IntGauge::new(
            "ferry_chain_exit_disbursal_age_blocks",
            "Bitcoin blocks since the covering exit disbursal was derived (-1: none covers the reserve)",
        )?;
        registry.register(Box::new(exit_disbursal_age.clone()))?;
        let exit_opens_in = IntGauge::new(
            "ferry_chain_exit_opens_in_blocks",
            "Bitcoin blocks until the covering exit disbursal becomes valid (-1: none); a refresh pushes it back",
        )?;
        registry.register(Box::new(exit_opens_in.clone()))?;
        let vault_heartbeat_age = IntGauge::new(
            "ferry_chain_vault_heartbeat_age_blocks",
            "Sidechain blocks since the last heartbeat landed in the vault (-1: none yet)",
        )?;
        registry.register(Box::new(vault_heartbeat_age.clone()))?;
        for gauge in [&exit_disbursal_age, &exit_opens_in, &vault_heartbeat_age] {
            gauge.set(-1);
        }
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
        let pruned_below = IntGauge::new(
            "ferry_chain_pruned_below_height",
            "The oldest height whose state this node still answers for (0: nothing pruned)",
        )?;
        let pruned_entries = IntCounter::new(
            "ferry_chain_pruned_entries_total",
            "Stale tree nodes, values and app hashes deleted by pruning",
        )?;
        registry.register(Box::new(pruned_below.clone()))?;
        registry.register(Box::new(pruned_entries.clone()))?;
        let snapshot_height =
            IntGauge::new("ferry_chain_snapshot_height", "Height of the newest state-sync snapshot written (0: none)")?;
        let snapshot_chunks_refused = IntCounter::new(
            "ferry_chain_snapshot_chunks_refused_total",
            "Snapshot chunks refused while restoring by state sync (hash mismatch; refetched elsewhere)",
        )?;
        registry.register(Box::new(snapshot_height.clone()))?;
        registry.register(Box::new(snapshot_chunks_refused.clone()))?;
        let bridge_paused =
            IntGauge::new("ferry_chain_bridge_paused", "1 while the bridge is paused, as of the last committed block")?;
        registry.register(Box::new(check_tx_seconds.clone()))?;
        registry.register(Box::new(bridge_paused.clone()))?;
        let per_asset = |name: &str, help: &str| -> Result<GaugeVec, prometheus::Error> {
            let gauge = GaugeVec::new(Opts::new(name, help), &["asset"])?;
            registry.register(Box::new(gauge.clone()))?;
            Ok(gauge)
        };
        let asset_supply = per_asset("ferry_chain_asset_supply", "Wrapped supply per asset, in its base unit")?;
        let asset_reserves =
            per_asset("ferry_chain_asset_reserves", "Parent-chain reserves per asset, in its base unit")?;
        let asset_unreleased =
            per_asset("ferry_chain_asset_unreleased", "Burned but not yet released per asset, in its base unit")?;
        let asset_unattributed = per_asset(
            "ferry_chain_asset_unattributed",
            "Payments to the peg naming no account, held until a member quorum resolves them, in the base unit",
        )?;
        let unattributed_open = IntGauge::new(
            "ferry_chain_unattributed_payments",
            "Payments to the peg naming no account (no valid memo) no member quorum has resolved yet",
        )?;
        let member_last_heartbeat = IntGaugeVec::new(
            Opts::new("ferry_chain_member_last_heartbeat_height", "Height of each member's last heartbeat (0: none)"),
            &["account"],
        )?;
        let member_live = IntGaugeVec::new(
            Opts::new(
                "ferry_chain_member_live",
                "1 when the member answered one of the last live_rounds heartbeat rounds (BLS and Bitcoin key online)",
            ),
            &["account"],
        )?;
        let members_live = IntGauge::new("ferry_chain_members_live", "Federation members live (answering heartbeats)")?;
        let federation_threshold =
            IntGauge::new("ferry_chain_federation_threshold", "Signatures needed to release funds (T)")?;
        let dkg_session = IntGauge::new("ferry_chain_dkg_session", "The latest key generation session (0: none)")?;
        let dkg_attempt = IntGauge::new("ferry_chain_dkg_attempt", "The latest key generation session's attempt")?;
        let dkg_phase = IntGaugeVec::new(
            Opts::new("ferry_chain_dkg_phase", "1 for the latest key generation session's phase"),
            &["phase"],
        )?;
        let dkg_faults = IntGauge::new(
            "ferry_chain_dkg_faults",
            "Participants dropped from the latest key generation session (silent or convicted by a complaint)",
        )?;
        let federation_epoch = IntGauge::new("ferry_chain_federation_epoch", "The federation's epoch")?;
        let handover_blocks = IntGauge::new(
            "ferry_chain_handover_blocks",
            "Sidechain blocks the running hand-over to the next federation has taken (0: none runs)",
        )?;
        let retired_peg_utxos = IntGauge::new(
            "ferry_chain_retired_peg_utxos",
            "Reserve UTXOs at retired federations' pegs (deposits minted within their grace) not yet in a sweep",
        )?;
        let handover_waiting = IntGauge::new(
            "ferry_chain_handover_waiting",
            "1 while the running hand-over cannot form a migration (the fee budget is short)",
        )?;
        let reserves_violated = IntGaugeVec::new(
            Opts::new(
                "ferry_chain_reserves_invariant_violated",
                "1 when supply + unreleased + fee pool exceeds reserves for the asset",
            ),
            &["asset"],
        )?;
        let withdrawals_queued = IntGaugeVec::new(
            Opts::new("ferry_chain_withdrawals_queued", "Withdrawals burned and not yet batched, per asset"),
            &["asset"],
        )?;
        let oldest_queued_withdrawal_age = IntGauge::new(
            "ferry_chain_oldest_queued_withdrawal_age_blocks",
            "Blocks since the oldest queued withdrawal became eligible for a batch (0: none waiting)",
        )?;
        let batches_pending = IntGaugeVec::new(
            Opts::new("ferry_chain_batches_pending", "Unsettled release batches by status"),
            &["status"],
        )?;
        let oldest_unsettled_batch_age = IntGauge::new(
            "ferry_chain_oldest_unsettled_batch_age_blocks",
            "Blocks since the oldest unsettled batch formed (0: none)",
        )?;
        let bitcoin_fee_rate = Gauge::new(
            "ferry_chain_bitcoin_fee_rate_sat_per_vbyte",
            "The fee rate the next Bitcoin release is priced at (moved by the controller)",
        )?;
        let bitcoin_parent_height = IntGauge::new(
            "ferry_chain_bitcoin_parent_height",
            "Bitcoin's height by the chain's parent clock (a quorum of relayers' reports)",
        )?;
        let bitcoin_last_release_waited = IntGauge::new(
            "ferry_chain_bitcoin_last_release_waited_blocks",
            "Parent blocks the last settled Bitcoin release took from its signing to its block",
        )?;
        let bitcoin_release_bumps = IntGauge::new(
            "ferry_chain_bitcoin_release_bumps",
            "Replacements of the most-replaced unsettled Bitcoin release (its version number; 0: none)",
        )?;
        let bitcoin_unconfirmed_release_age = IntGauge::new(
            "ferry_chain_bitcoin_unconfirmed_release_age_blocks",
            "Parent blocks since the oldest unsettled Bitcoin release was first signed (0: none)",
        )?;
        let bitcoin_replacements = IntCounter::new(
            "ferry_chain_bitcoin_release_replacements_total",
            "Bitcoin releases replaced with a higher fee (versions formed after the first)",
        )?;
        let bitcoin_consolidations =
            IntCounter::new("ferry_chain_bitcoin_consolidations_total", "Consolidations of the reserve UTXOs formed")?;
        let parent_holdings = per_asset(
            "ferry_chain_parent_holdings",
            "What the parent chains held for the bridge per asset at the last reserves check, in its base unit",
        )?;
        let reserves_short = IntGaugeVec::new(
            Opts::new(
                "ferry_chain_reserves_short",
                "1 when the last reserves check found the parent chain holding less than the ledger needs",
            ),
            &["asset"],
        )?;
        let reserves_check_age = IntGaugeVec::new(
            Opts::new("ferry_chain_reserves_check_age_blocks", "Blocks since the parent chain's last reserves check"),
            &["chain"],
        )?;
        registry.register(Box::new(reserves_short.clone()))?;
        registry.register(Box::new(reserves_check_age.clone()))?;
        registry.register(Box::new(bitcoin_release_bumps.clone()))?;
        registry.register(Box::new(bitcoin_unconfirmed_release_age.clone()))?;
        registry.register(Box::new(bitcoin_replacements.clone()))?;
        registry.register(Box::new(bitcoin_consolidations.clone()))?;
        registry.register(Box::new(bitcoin_fee_rate.clone()))?;
        registry.register(Box::new(bitcoin_parent_height.clone()))?;
        registry.register(Box::new(bitcoin_last_release_waited.clone()))?;
        registry.register(Box::new(reserves_violated.clone()))?;
        registry.register(Box::new(withdrawals_queued.clone()))?;
        registry.register(Box::new(oldest_queued_withdrawal_age.clone()))?;
        registry.register(Box::new(unattributed_open.clone()))?;
        registry.register(Box::new(member_last_heartbeat.clone()))?;
        registry.register(Box::new(member_live.clone()))?;
        registry.register(Box::new(members_live.clone()))?;
        registry.register(Box::new(federation_threshold.clone()))?;
        registry.register(Box::new(dkg_session.clone()))?;
        registry.register(Box::new(dkg_attempt.clone()))?;
        registry.register(Box::new(dkg_phase.clone()))?;
        registry.register(Box::new(dkg_faults.clone()))?;
        registry.register(Box::new(federation_epoch.clone()))?;
        registry.register(Box::new(handover_blocks.clone()))?;
        registry.register(Box::new(handover_waiting.clone()))?;
        registry.register(Box::new(retired_peg_utxos.clone()))?;
        for phase in ferry_types::query::federation::DKG_PHASE_NAMES {
            dkg_phase.with_label_values(&[phase]);
        }
        registry.register(Box::new(batches_pending.clone()))?;
        registry.register(Box::new(oldest_unsettled_batch_age.clone()))?;
        for status in PENDING_BATCH_STATUSES {
            batches_pending.with_label_values(&[status]);
        }
        for phase in PHASES {
            for code in TxCode::ALL {
                txs.with_label_values(&[phase, code.name()]);
            }
        }
        Ok(Metrics {
            registry,
            blocks,
            height,
            exit_claims,
            exit_disbursal_age,
            exit_opens_in,
            vault_heartbeat_age,
            txs,
            finalize_block_seconds,
            commit_seconds,
            check_tx_seconds,
            pruned_below,
            pruned_entries,
            snapshot_height,
            snapshot_chunks_refused,
            bridge_paused,
            asset_supply,
            asset_reserves,
            asset_unreleased,
            asset_unattributed,
            unattributed_open,
            member_last_heartbeat,
            member_live,
            members_live,
            federation_threshold,
            dkg_session,
            dkg_attempt,
            dkg_phase,
            dkg_faults,
            federation_epoch,
            handover_blocks,
            handover_waiting,
            retired_peg_utxos,
            reserves_violated,
            withdrawals_queued,
            oldest_queued_withdrawal_age,
            batches_pending,
            oldest_unsettled_batch_age,
            bitcoin_fee_rate,
            bitcoin_parent_height,
            bitcoin_last_release_waited,
            bitcoin_release_bumps,
            bitcoin_unconfirmed_release_age,
            bitcoin_replacements,
            bitcoin_consolidations,
            parent_holdings,
            reserves_short,
            reserves_check_age,
        })
    }

    /// Counts what a finalized block's events report (replacements, consolidations).
    pub fn count_block_events<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) {
        for kind in kinds {
            match kind {
                ferry_types::event::RELEASE_REPLACED => self.bitcoin_replacements.inc(),
                ferry_types::event::CONSOLIDATION_FORMED => self.bitcoin_consolidations.inc(),
                _ => {}
            }
        }
    }

    /// Sets the bridge gauges from the state of the last committed block.
    pub fn record_bridge(&self, snapshot: &BridgeSnapshot) {
        self.bridge_paused.set(i64::from(snapshot.paused));
        for asset in &snapshot.assets {
            let label = [asset.asset.as_str()];
            self.asset_supply.with_label_values(&label).set(amount_gauge(asset.supply));
            self.asset_reserves.with_label_values(&label).set(amount_gauge(asset.reserves));
            self.asset_unreleased.with_label_values(&label).set(amount_gauge(asset.unreleased));
            self.asset_unattributed.with_label_values(&label).set(amount_gauge(asset.unattributed));
            self.reserves_violated.with_label_values(&label).set(i64::from(asset.violated));
            self.withdrawals_queued.with_label_values(&label).set(count_gauge(asset.queued));
        }
        for status in PENDING_BATCH_STATUSES {
            let count = snapshot.pending_batches.iter().filter(|pending| batch_status_label(**pending) == Some(status));
            self.batches_pending.with_label_values(&[status]).set(count_gauge(count.count()));
        }
        self.oldest_unsettled_batch_age.set(count_gauge(snapshot.oldest_unsettled_batch_age));
        self.oldest_queued_withdrawal_age.set(count_gauge(snapshot.oldest_queued_withdrawal_age));
        self.unattributed_open.set(count_gauge(snapshot.unattributed_open));
        self.retired_peg_utxos.set(count_gauge(snapshot.retired_peg_utxos));
        if let Some(liveness) = &snapshot.liveness {
            for member in &liveness.members {
                let label = [member.account.to_string()];
                let label = [label[0].as_str()];
                self.member_last_heartbeat.with_label_values(&label).set(count_gauge(member.last_height));
                self.member_live.with_label_values(&label).set(i64::from(member.live));
            }
            self.members_live.set(i64::from(liveness.live));
            self.federation_threshold.set(i64::from(liveness.threshold));
        }
        if let Some(dkg) = &snapshot.dkg {
            self.dkg_session.set(count_gauge(dkg.session));
            self.dkg_attempt.set(i64::from(dkg.attempt));
            for phase in ferry_types::query::federation::DKG_PHASE_NAMES {
                self.dkg_phase.with_label_values(&[phase]).set(i64::from(dkg.phase.name() == phase));
            }
            self.dkg_faults.set(count_gauge(dkg.faults.len()));
        }
        if let Some((epoch, handover)) = &snapshot.federation {
            self.federation_epoch.set(count_gauge(*epoch));
            let running = handover.as_ref().filter(|handover| handover.in_progress());
            let blocks = running.map_or(0, |handover| snapshot.height.saturating_sub(handover.started));
            self.handover_blocks.set(count_gauge(blocks));
            self.handover_waiting.set(i64::from(running.is_some_and(|handover| handover.waiting.is_some())));
        }
        if let Some(fees) = &snapshot.bitcoin_fees {
            #[allow(clippy::cast_precision_loss)] // a gauge; rates are far below 2^52
            self.bitcoin_fee_rate.set(fees.fee_rate.sat_per_kvb() as f64 / 1_000.0);
            self.bitcoin_parent_height.set(count_gauge(fees.parent_height));
            self.bitcoin_last_release_waited.set(count_gauge(fees.last_release_waited.unwrap_or(0)));
        }
        let parent_height = snapshot.bitcoin_fees.as_ref().map_or(0, |fees| fees.parent_height);
        let (age, opens_in) = snapshot.exit_disbursal.map_or((-1, -1), |(clock, lock)| {
            (
                count_gauge(parent_height.saturating_sub(clock)),
                count_gauge(u64::from(lock).saturating_sub(parent_height)),
            )
        });
        self.exit_disbursal_age.set(age);
        self.exit_opens_in.set(opens_in);
        self.vault_heartbeat_age.set(
            snapshot.vault_heartbeat_landed.map_or(-1, |landed| count_gauge(snapshot.height.saturating_sub(landed))),
        );
        self.bitcoin_release_bumps.set(i64::from(snapshot.bitcoin_release_bumps));
        self.bitcoin_unconfirmed_release_age.set(count_gauge(snapshot.bitcoin_unconfirmed_release_age));
        for chain in ferry_types::ParentChain::ALL.map(ferry_types::ParentChain::tag) {
            let checked_at =
                snapshot.reserves_checks.iter().find(|(label, _)| label == chain).map(|(_, c)| c.checked_at);
            let age = snapshot.height.saturating_sub(checked_at.unwrap_or(0));
            self.reserves_check_age.with_label_values(&[chain]).set(count_gauge(age));
        }
        for (_, check) in &snapshot.reserves_checks {
            for (denom, asset) in &check.assets {
                let label = [denom.as_str()];
                self.parent_holdings.with_label_values(&label).set(amount_gauge(asset.holdings));
                self.reserves_short.with_label_values(&label).set(i64::from(!asset.shortfall.is_zero()));
            }
        }
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
        assert!(text.contains(r#"ferry_chain_batches_pending{status="signed"} 0"#), "{text}");
        assert!(text.contains("ferry_chain_oldest_unsettled_batch_age_blocks 0"), "{text}");
        Ok(())
    }

    #[test]
    fn a_snapshot_sets_every_bridge_gauge_per_asset_and_status() -> Result<(), prometheus::Error> {
        let metrics = Metrics::new()?;
        let broken = AssetSnapshot {
            asset: "sat".to_owned(),
            supply: Amount::new(150),
            reserves: Amount::new(100),
            unreleased: Amount::new(10),
            unattributed: Amount::new(4),
            violated: true,
            queued: 2,
        };
        let healthy = AssetSnapshot {
            asset: "wei".to_owned(),
            supply: Amount::new(7),
            reserves: Amount::new(7),
            ..AssetSnapshot::default()
        };
        metrics.record_bridge(&BridgeSnapshot {
            liveness: None,
            dkg: None,
            federation: None,
            paused: true,
            assets: vec![broken, healthy],
            pending_batches: vec![BatchStatus::Signing, BatchStatus::Signed, BatchStatus::Signing],
            oldest_unsettled_batch_age: 12,
            oldest_queued_withdrawal_age: 3,
            unattributed_open: 2,
            retired_peg_utxos: 1,
            bitcoin_fees: Some(ferry_types::query::BitcoinFeesView {
                fee_rate: ferry_types::release::fee::FeeRate::from_sat_per_kvb(7_500),
                min_fee_rate: ferry_types::release::fee::FeeRate::from_sat_per_vb(1),
                max_fee_rate: ferry_types::release::fee::FeeRate::from_sat_per_vb(1_000),
                target_confirm_blocks: 3,
                parent_height: 412,
                last_release_waited: Some(1),
            }),
            bitcoin_release_bumps: 2,
            bitcoin_unconfirmed_release_age: 14,
            exit_disbursal: Some((400, 430)),
            vault_heartbeat_landed: Some(60),
            height: 100,
            reserves_checks: vec![(
                "btc".to_owned(),
                ferry_types::query::ReservesCheck {
                    checked_at: 80,
                    assets: [(
                        ferry_types::Denom::sat(),
                        ferry_types::query::AssetCheck {
                            holdings: Amount::new(90),
                            least: Amount::new(95),
                            shortfall: Amount::new(5),
                            excess: Amount::ZERO,
                        },
                    )]
                    .into_iter()
                    .collect(),
                    ..ferry_types::query::ReservesCheck::default()
                },
            )],
        });
        metrics.count_block_events([
            ferry_types::event::RELEASE_REPLACED,
            ferry_types::event::TRANSFER,
            ferry_types::event::RELEASE_REPLACED,
            ferry_types::event::CONSOLIDATION_FORMED,
        ]);
        let text = metrics.render();
        for line in [
            "ferry_chain_bridge_paused 1",
            r#"ferry_chain_asset_supply{asset="sat"} 150"#,
            r#"ferry_chain_asset_reserves{asset="sat"} 100"#,
            r#"ferry_chain_asset_unreleased{asset="sat"} 10"#,
            r#"ferry_chain_reserves_invariant_violated{asset="sat"} 1"#,
            r#"ferry_chain_reserves_invariant_violated{asset="wei"} 0"#,
            r#"ferry_chain_withdrawals_queued{asset="sat"} 2"#,
            r#"ferry_chain_withdrawals_queued{asset="wei"} 0"#,
            r#"ferry_chain_batches_pending{status="signing"} 2"#,
            r#"ferry_chain_batches_pending{status="signed"} 1"#,
            "ferry_chain_oldest_unsettled_batch_age_blocks 12",
            "ferry_chain_oldest_queued_withdrawal_age_blocks 3",
            "ferry_chain_retired_peg_utxos 1",
            "ferry_chain_exit_disbursal_age_blocks 12",
            "ferry_chain_exit_opens_in_blocks 18",
            "ferry_chain_vault_heartbeat_age_blocks 40",
            "ferry_chain_unattributed_payments 2",
            r#"ferry_chain_asset_unattributed{asset="sat"} 4"#,
            "ferry_chain_bitcoin_fee_rate_sat_per_vbyte 7.5",
            "ferry_chain_bitcoin_parent_height 412",
            "ferry_chain_bitcoin_last_release_waited_blocks 1",
            "ferry_chain_bitcoin_release_bumps 2",
            "ferry_chain_bitcoin_unconfirmed_release_age_blocks 14",
            "ferry_chain_bitcoin_release_replacements_total 2",
            "ferry_chain_bitcoin_consolidations_total 1",
            r#"ferry_chain_parent_holdings{asset="sat"} 90"#,
            r#"ferry_chain_reserves_short{asset="sat"} 1"#,
            r#"ferry_chain_reserves_check_age_blocks{chain="btc"} 20"#,
            r#"ferry_chain_reserves_check_age_blocks{chain="eth"} 100"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        Ok(())
    }
}
