//! The relayer's I/O shell: polls the parent chains, records what it sees in PostgreSQL, lets the
//! pure [`Tracker`] decide, and sends attestations to the sidechain.
//!
//! Crash safety: the database is the truth. A block's observations and the cursor past it are
//! written before the next block is read; an attestation's intent (`attesting`) is written before
//! it is sent and its outcome after. A restart resumes from the cursor and re-evaluates every
//! pending deposit; re-sending an attestation is harmless (the chain counts a member once). A
//! refusal that passes (a sequence race, a paused bridge) leaves the deposit `attesting`, to be
//! sent again next round; only a final refusal marks it `rejected`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ferry_client::FerryClient;
use ferry_daemon::verified_reads::export;
use ferry_light::{ProvenState, Reader};
use ferry_types::msg::{MsgAttestDeposit, MsgAttestParentHeight, MsgAttestReserves};
use ferry_types::peg::Peg;
use ferry_types::query::{
    DEPOSIT_ADDRESSES_PAGE, DepositAddressRecord, RESERVES_CHECK_PATH, RESERVES_PATH, ReservesCheckView, ReservesView,
};
use ferry_types::{AccountKey, Amount, Denom, DepositFacts, DepositId, Msg, ParentChain};

use crate::attest::{AttestOutcome, Attester};
use crate::bitcoin::scan::{PegScripts, RetiredPeg, Scanned, peg_flows, scan_block};
use crate::confirmations::ConfirmationPolicy;
use crate::metrics::Metrics;
use crate::reserves::round_to_answer;
use crate::store::{Cursor, DepositStatus, ObserveOutcome, Store};
use crate::tracker::{Effect, Tracker};
use ferry_parent_chains::bitcoin::BitcoinRpc;
use ferry_parent_chains::ethereum::EthereumWatcher;

/// Least time between two parent-height reports of one member on Bitcoin (mainnet blocks are ten
/// minutes apart; regtest's come as fast as tests mine them), outside the reports forced before
/// deposit attestations.
const CLOCK_REPORT_SPACING: Duration = Duration::from_secs(2);
/// The same on Ethereum, whose clock only sets the height reserves rounds snapshot at: every
/// twelve-second block would keep the member account busy for little.
const ETHEREUM_CLOCK_REPORT_SPACING: Duration = Duration::from_secs(10);
/// Most deposit attestations sent in one sidechain transaction (the chain takes 64 messages).
const ATTESTATIONS_PER_TX: usize = 32;
/// How many of its latest blocks the Bitcoin watcher scans again when it learns of new deposit
/// addresses: a payment to an address registered just before it was mined may sit in a block
/// scanned with the list of a node one block behind.
const REGISTRATION_RESCAN: u64 = 6;
/// Most parent-chain blocks scanned per poll (bounds one poll's duration during catch-up).
const BLOCKS_PER_POLL: u64 = 500;
/// How far back the Bitcoin watcher rescans when its cursor's block is unknown to the node.
const BITCOIN_UNKNOWN_FORK_RESCAN: u64 = 100;
/// How far back the Ethereum watcher rescans after it sees a reorganisation below its cursor.
const ETHEREUM_REORG_RESCAN: u64 = 64;
/// How many of its latest attested Ethereum deposits a relayer whose node lost blocks checks
/// for each reserves snapshot (one receipt lookup each).
const GONE_CHECKED: usize = 1_000;

/// Bitcoin side.
pub struct BitcoinWatch {
    /// RPC client.
    pub rpc: BitcoinRpc,
    /// The peg (learned from the chain's `/federation`).
    pub peg: Peg,
    /// Confirmations.
    pub policy: ConfirmationPolicy,
    /// First height when no cursor is stored.
    pub start_height: u64,
}

/// Ethereum side.
pub struct EthereumWatch {
    /// RPC client.
    pub watcher: EthereumWatcher,
    /// Confirmations.
    pub policy: ConfirmationPolicy,
    /// First block when no cursor is stored.
    pub start_block: u64,
    /// Most blocks per `eth_getLogs`.
    pub max_log_range: u64,
    /// Which blocks deposits may be attested in besides the confirmations.
    pub finality: crate::config::Finality,
}

/// One federation member's relayer.
pub struct Relayer {
    /// Relay state.
    pub store: Store,
    /// The sidechain.
    pub chain: FerryClient,
    /// Proven reads of the sidechain: the federation, its pegs and the deposit addresses this
    /// relayer watches are read through it.
    pub verified: Arc<Reader>,
    /// Sends the member's attestations, one at a time (the delivery loop shares it: one
    /// account, one sequence).
    pub attester: Attester,
    /// Metrics.
    pub metrics: Metrics,
    /// Bitcoin, if watched.
    pub bitcoin: Option<BitcoinWatch>,
    /// Ethereum, if watched.
    pub ethereum: Option<EthereumWatch>,
    /// Per parent chain, the height this member last reported to the chain's parent clock, and
    /// when (reports are spaced by [`CLOCK_REPORT_SPACING`]).
    clock_reported: Mutex<BTreeMap<ParentChain, (u64, Instant)>>,
    /// Per parent chain, the last reserves round whose snapshot the chain refused for good (not
    /// sent again).
    reserves_refused: Mutex<BTreeMap<ParentChain, u64>>,
    /// Per parent chain, how far its last poll made it snapshot-ready, and the node's tip then.
    ready: Mutex<BTreeMap<ParentChain, (u64, u64)>>,
    /// Per parent chain, the highest height this relayer had scanned before its node lost blocks
    /// (a chain shorter than the cursor, without the cursor's block).
    rewound: Mutex<BTreeMap<ParentChain, u64>>,
    /// The Bitcoin scripts that pay the bridge: the peg's and every registered deposit address.
    peg_scripts: Mutex<Option<PegScripts>>,
}

/// The state the latest header `chain` shows commits to (the state after the block before it),
/// read proven through `verified`.
///
/// # Errors
/// When the chain's height cannot be read.
pub async fn latest_proven<'a>(chain: &FerryClient, verified: &'a Reader) -> anyhow::Result<ProvenState<'a>> {
    let height = chain.latest_height().await?;
    Ok(verified.at(height.saturating_sub(1)))
}

/// Learns the peg from the chain's federation, read proven.
///
/// # Errors
/// When no endpoint proves the federation, or it has no Bitcoin peg.
pub async fn peg(state: ProvenState<'_>) -> anyhow::Result<Peg> {
    let federation = state.federation().await.context("the chain's federation")?;
    let bitcoin = federation.bitcoin.context("the chain has no Bitcoin peg (`/federation` has no bitcoin keys)")?;
    Peg::new(&bitcoin).context("the chain's Bitcoin federation")
}

/// The peg, read proven ([`peg`]) once the chain proves it: a node that has just restarted may
/// not serve the header the read needs yet, and a lying one is passed over for the next endpoint.
/// Each failed attempt is logged; the next follows a second later.
pub async fn wait_for_peg(chain: &FerryClient, verified: &Reader) -> Peg {
    loop {
        let read = async { peg(latest_proven(chain, verified).await?).await };
        match read.await {
            Ok(peg) => return peg,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "the peg is not proven yet; trying again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Seconds since the Unix epoch (for "last done" gauges).
pub(crate) fn now_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

impl Relayer {
    /// Assembles a relayer.
    pub fn new(
        store: Store,
        (chain, verified): (FerryClient, Arc<Reader>),
        member: AccountKey,
        metrics: Metrics,
        bitcoin: Option<BitcoinWatch>,
        ethereum: Option<EthereumWatch>,
    ) -> Self {
        let attester = Attester::new(chain.clone(), member);
        let peg_scripts = Mutex::new(bitcoin.as_ref().map(|watch| PegScripts::new(watch.peg.clone())));
        Relayer {
            peg_scripts,
            store,
            chain,
            verified,
            attester,
            metrics,
            bitcoin,
            ethereum,
            clock_reported: Mutex::new(BTreeMap::new()),
            reserves_refused: Mutex::new(BTreeMap::new()),
            rewound: Mutex::new(BTreeMap::new()),
            ready: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs both watchers until the process ends; a failed poll is logged and retried.
    pub async fn run(&self, bitcoin_poll: Duration, ethereum_poll: Duration) {
        let bitcoin = async {
            if self.bitcoin.is_none() {
                return;
            }
            loop {
                if let Err(error) = self.poll_bitcoin().await {
                    tracing::warn!(target: "ferry_relayer::bitcoin", error = format!("{error:#}"), "bitcoin poll failed");
                }
                tokio::time::sleep(bitcoin_poll).await;
            }
        };
        let ethereum = async {
            if self.ethereum.is_none() {
                return;
            }
            loop {
                if let Err(error) = self.poll_ethereum().await {
                    tracing::warn!(target: "ferry_relayer::ethereum", error = format!("{error:#}"), "ethereum poll failed");
                }
                tokio::time::sleep(ethereum_poll).await;
            }
        };
        // Reserves snapshots in a loop of their own, so waiting for their inclusion never slows
        // the scans.
        let reserves = async {
            loop {
                self.answer_reserves_rounds().await;
                tokio::time::sleep(bitcoin_poll.min(ethereum_poll)).await;
            }
        };
        tokio::join!(bitcoin, ethereum, reserves);
    }

    /// Records how far `chain` can be snapshot (`ready_height`) and the node's tip, for
    /// [`Relayer::answer_reserves_rounds`].
    fn note_ready(&self, chain: ParentChain, ready_height: u64, tip: u64) {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner).insert(chain, (ready_height, tip));
    }

    /// Answers the open reserves round for every chain this relayer has polled (one read of
    /// `/reserves/check` for all of them).
    pub async fn answer_reserves_rounds(&self) {
        let ready: Vec<(ParentChain, (u64, u64))> =
            self.ready.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(c, r)| (*c, *r)).collect();
        if ready.is_empty() {
            return;
        }
        let view = match self.chain.query::<ReservesCheckView>(RESERVES_CHECK_PATH, None).await {
            Ok(Some(view)) => view,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = %error, "reserves rounds not read; will try again");
                return;
            }
        };
        for (chain, (ready_height, tip)) in ready {
            if let Err(error) = self.answer_reserves_round(&view, chain, ready_height, tip).await {
                tracing::warn!(%chain, error = format!("{error:#}"), "reserves snapshot not sent; will try again");
            }
        }
    }

    /// One Bitcoin round: detect a reorg below the cursor, scan new blocks, settle pending deposits.
    ///
    /// # Errors
    /// RPC or database failures (the next round retries).
    pub async fn poll_bitcoin(&self) -> anyhow::Result<()> {
        let Some(watch) = &self.bitcoin else { return Ok(()) };
        let tip = watch.rpc.get_block_count().await?;
        // One proven state for the round: the federation and the deposit addresses are read in it.
        let state = latest_proven(&self.chain, &self.verified).await?;
        self.follow_federation(state).await?;
        // Blocks up to `tip` were mined before the list is read, so a deposit address registered
        // before a payment to it was mined is known when that block is scanned.
        let learned = self.sync_deposit_addresses(state).await? > 0;
        self.scan_bitcoin(tip, learned).await
    }

    /// Follows the chain's federation: once it switched to another peg, the scan watches that
    /// peg and its deposit addresses (learned again from the first registration); while a
    /// hand-over runs, it also watches the next federation's peg, which the reserves migrate to
    /// (its outputs count in this member's reserve snapshots; payments to it are not deposits);
    /// it keeps watching every retired peg: payments to it are deposits of its epoch while its
    /// grace is open at the chain's height, rejected after; its sweeps are the federation's own.
    ///
    /// # Errors
    /// When the chain cannot be read or its federation makes no peg.
    async fn follow_federation(&self, state: ProvenState<'_>) -> anyhow::Result<()> {
        let federation = state.federation().await.context("the chain's federation")?;
        let next = state.next_federation().await?;
        let current =
            federation.bitcoin.as_ref().map(Peg::new).transpose().context("the chain's Bitcoin federation")?;
        let next = next.and_then(|next| next.bitcoin).as_ref().map(Peg::new).transpose().context("the next peg")?;
        let listed = state.retired_federations().await?;
        let height = state.height();
        export(&self.verified, &self.metrics.proven_reads);
        let mut retired = Vec::with_capacity(listed.len());
        for old in listed {
            let Some(keys) = old.federation.bitcoin else { continue };
            let peg = Peg::new(&keys).with_context(|| format!("the peg of retired epoch {}", old.epoch))?;
            retired.push(RetiredPeg { epoch: old.epoch, peg, minting: height <= old.grace_until });
        }
        let mut guard = self.peg_scripts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(scripts) = guard.as_mut() else { return Ok(()) };
        if let Some(current) = current
            && current.script_pubkey() != scripts.peg().script_pubkey()
        {
            tracing::info!(target: "ferry_relayer::bitcoin", epoch = federation.epoch, peg = %current.address(), "the federation switched: watching its peg");
            *scripts = PegScripts::new(current);
            self.metrics.deposit_addresses.set(0);
        }
        scripts.set_epoch(federation.epoch);
        scripts.set_next(next.as_ref());
        scripts.set_retired(&retired);
        if scripts.registered() == 0 {
            self.metrics.deposit_addresses.set(0);
        }
        Ok(())
    }

    /// Scans the Bitcoin blocks up to `tip` with the deposit addresses known now, then settles
    /// pending deposits; `rescan_recent` scans the last [`REGISTRATION_RESCAN`] blocks again (new
    /// deposit addresses were learned).
    ///
    /// # Errors
    /// RPC or database failures (the next round retries).
    pub async fn scan_bitcoin(&self, tip: u64, rescan_recent: bool) -> anyhow::Result<()> {
        let Some(watch) = &self.bitcoin else { return Ok(()) };
        self.metrics.parent_height.with_label_values(&["btc"]).set(i64::try_from(tip).unwrap_or(i64::MAX));
        // The block the scan continues from, whose hash the first scanned block must link to:
        // a reorganisation between the cursor check and the scan then stops the scan instead of
        // skipping the replaced blocks (the next round walks back).
        let mut reached: Option<Cursor> = match self.store.cursor(ParentChain::Bitcoin).await? {
            None => None,
            Some(cursor) => Some(self.bitcoin_resume_point(watch, &cursor, tip).await?),
        };
        if rescan_recent
            && let Some(from) = &reached
            && from.height >= watch.start_height
        {
            let height = from.height.saturating_sub(REGISTRATION_RESCAN).max(watch.start_height);
            reached = Some(Cursor { height, block_hash: watch.rpc.get_block_hash(height).await?.to_string() });
        }
        let mut next = reached.as_ref().map_or(watch.start_height, |from| from.height.saturating_add(1));
        let last = tip.min(next.saturating_add(BLOCKS_PER_POLL - 1));
        // The peg index forgets whatever it holds from the blocks about to be scanned (a stale
        // branch's, or this batch's before a crash), so it always describes one chain.
        self.store.unwind_peg_index(next.saturating_sub(1)).await?;
        // Observations are written a block at a time; the cursor once per batch. After a crash
        // the batch is scanned again, and recording an observation twice changes nothing.
        while next <= last {
            let hash = watch.rpc.get_block_hash(next).await?;
            let block = watch.rpc.get_block(&hash).await?;
            if let Some(previous) = &reached
                && block.header.prev_blockhash.to_string() != previous.block_hash
            {
                // The chain changed under the scan: stop here; the next round re-checks the cursor.
                tracing::info!(target: "ferry_relayer::bitcoin", height = next, "the chain changed under the scan; resuming next round");
                break;
            }
            let hash_text = hash.to_string();
            let (flows, scanned) = {
                let scripts = self.peg_scripts.lock().unwrap_or_else(PoisonError::into_inner);
                let scripts = scripts.as_ref().context("a Bitcoin watch without its peg scripts")?;
                (peg_flows(&block, scripts), scan_block(&block, scripts))
            };
            self.store.index_peg_block(next, &flows).await?;
            let mut found = Vec::new();
            for scanned in scanned {
                match scanned {
                    Scanned::Deposit { facts, coinbase } => found.push((facts, coinbase)),
                    Scanned::Rejected { txid, vout, reason } => {
                        if self.store.record_rejected(ParentChain::Bitcoin, &txid, vout, &reason).await? {
                            tracing::warn!(target: "ferry_relayer::bitcoin", txid, vout, reason, "payment to Ferry rejected");
                        }
                    }
                }
            }
            // The block's deposits in one database transaction.
            let outcomes = if found.is_empty() {
                Vec::new()
            } else {
                self.store.record_observed_in_block(&found, next, &hash_text).await?
            };
            for ((facts, coinbase), outcome) in found.iter().zip(outcomes) {
                self.note_conflict(facts, &outcome);
                tracing::info!(target: "ferry_relayer::bitcoin", deposit_id = %facts.id(), amount = %facts.amount, recipient = %facts.recipient, height = next, coinbase, ?outcome, "deposit observed");
            }
            reached = Some(Cursor { height: next, block_hash: hash_text });
            next = next.saturating_add(1);
        }
        if let Some(cursor) = &reached {
            self.store.set_cursor(ParentChain::Bitcoin, cursor).await?;
        }
        let scanned = next.saturating_sub(1);
        self.record_progress("btc", tip, scanned);
        self.report_height(ParentChain::Bitcoin, tip).await;

        // Settle: the canonical hash at each pending deposit's height, then the tracker decides.
        let pending = self.pending_of(ParentChain::Bitcoin).await?;
        let mut canonical = BTreeMap::new();
        for height in pending.iter().map(|o| o.block_height).collect::<BTreeSet<_>>() {
            if height <= tip {
                canonical.insert(height, watch.rpc.get_block_hash(height).await?.to_string());
            }
        }
        self.settle(ParentChain::Bitcoin, Tracker::new(watch.policy.clone()), pending, tip, &canonical, tip).await?;
        // The peg index is complete up to the scanned height.
        self.note_ready(ParentChain::Bitcoin, scanned, tip);
        Ok(())
    }

    /// Adds the deposit addresses registered since the last call to the scripts the Bitcoin scan
    /// watches, a page at a time. Returns how many were added.
    ///
    /// # Errors
    /// When the chain cannot be read.
    async fn sync_deposit_addresses(&self, state: ProvenState<'_>) -> anyhow::Result<usize> {
        let mut added = 0;
        loop {
            let after =
                self.peg_scripts.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(PegScripts::registered);
            let Some(after) = after else { return Ok(0) };
            let (registrations, total) = state.deposit_addresses_after(after, DEPOSIT_ADDRESSES_PAGE).await?;
            let count = registrations.len();
            self.watch_deposit_addresses(&registrations);
            added += count;
            if count < DEPOSIT_ADDRESSES_PAGE {
                if added > 0 {
                    tracing::info!(target: "ferry_relayer::bitcoin", added, total, "deposit addresses now watched");
                }
                return Ok(added);
            }
        }
    }

    /// Adds registered deposit addresses (in registration order) to the scripts the Bitcoin scan
    /// watches.
    pub fn watch_deposit_addresses(&self, records: &[DepositAddressRecord]) {
        let mut scripts = self.peg_scripts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(scripts) = scripts.as_mut() {
            for record in records {
                scripts.register(record);
            }
            self.metrics.deposit_addresses.set(i64::try_from(scripts.registered()).unwrap_or(i64::MAX));
        }
    }

    /// Reports `height` of `chain` to the chain's parent clock when it passed this member's last
    /// report (the chain counts a member's highest report; a lower one after a reorg changes
    /// nothing), at most once per [`CLOCK_REPORT_SPACING`] (Ethereum:
    /// [`ETHEREUM_CLOCK_REPORT_SPACING`]): the member account is shared with the signer, and a
    /// report per regtest block would keep taking its sequence. Deposit attestations carry their
    /// own report (see [`Relayer::attest_all`]). A failed report is logged and retried with the
    /// next poll.
    async fn report_height(&self, chain: ParentChain, height: u64) {
        let last = self.clock_reported.lock().unwrap_or_else(PoisonError::into_inner).get(&chain).copied();
        let spacing = match chain {
            ParentChain::Bitcoin => CLOCK_REPORT_SPACING,
            ParentChain::Ethereum => ETHEREUM_CLOCK_REPORT_SPACING,
        };
        if last.is_some_and(|(reported, at)| height <= reported || at.elapsed() < spacing) {
            return;
        }
        let report = MsgAttestParentHeight { attester: self.attester.address(), chain, height };
        let outcome = self.attester.send(Msg::AttestParentHeight(report.clone())).await;
        self.note_reported(&report, &outcome);
        match outcome {
            AttestOutcome::Accepted { .. } => tracing::debug!(%chain, height, "parent height reported"),
            outcome => {
                tracing::warn!(%chain, height, outcome = outcome.label(), "parent height report not accepted; will report again");
            }
        }
    }

    /// Remembers `report` as sent when the transaction carrying it was accepted.
    fn note_reported(&self, report: &MsgAttestParentHeight, outcome: &AttestOutcome) {
        if matches!(outcome, AttestOutcome::Accepted { .. }) {
            let mut reported = self.clock_reported.lock().unwrap_or_else(PoisonError::into_inner);
            if reported.get(&report.chain).is_none_or(|(height, _)| *height < report.height) {
                reported.insert(report.chain, (report.height, Instant::now()));
            }
        }
    }

    /// Sends this member's snapshot for `view`'s open round's `chain` question, once its own
    /// node can answer (`ready_height`: the peg index's scanned height, or the Ethereum height
    /// deposits are attested up to; `tip`: the node's best height). A round asking about a height
    /// above the node's tip waits for the node, unless this relayer saw the node lose blocks up to
    /// that height: then the node's whole best chain, scanned, is the answer — the blocks above
    /// its tip are gone, and what they held with them.
    async fn answer_reserves_round(
        &self,
        view: &ReservesCheckView,
        chain: ParentChain,
        ready_height: u64,
        tip: u64,
    ) -> anyhow::Result<()> {
        let Some(ask) = round_to_answer(view, chain, &self.attester.address()) else { return Ok(()) };
        let rewound_past = self.rewound.lock().unwrap_or_else(PoisonError::into_inner).get(&chain).copied();
        let lost = rewound_past.is_some_and(|from| from >= ask.parent_height)
            && tip < ask.parent_height
            && ready_height >= tip;
        if ask.parent_height > ready_height && !lost {
            tracing::debug!(%chain, round = ask.round, parent_height = ask.parent_height, ready_height, "reserves round waits for this node");
            return Ok(());
        }
        if self.reserves_refused.lock().unwrap_or_else(PoisonError::into_inner).get(&chain) == Some(&ask.round) {
            return Ok(());
        }
        // Asked about a height the node lost: what its whole chain holds (its tip).
        let at = if lost { ask.parent_height.min(tip) } else { ask.parent_height };
        let holdings = self.holdings_at(chain, &ask.assets, at).await?;
        let gone = match chain {
            ParentChain::Bitcoin => self.gone_reserve_outputs(ask.opened_at, at).await?,
            // Only a node that lost blocks can have lost attested deposits.
            ParentChain::Ethereum if rewound_past.is_some() => self.gone_ethereum_deposits(at).await?,
            ParentChain::Ethereum => Vec::new(),
        };
        for (denom, amount) in &holdings {
            #[allow(clippy::cast_precision_loss)] // a gauge
            self.metrics.reserves_holdings.with_label_values(&[denom.as_str()]).set(amount.get() as f64);
        }
        let snapshot = MsgAttestReserves {
            attester: self.attester.address(),
            round: ask.round,
            chain,
            parent_height: ask.parent_height,
            holdings: holdings.clone(),
            gone: gone.clone(),
        };
        let outcome = self.attester.send(Msg::AttestReserves(snapshot)).await;
        self.metrics.reserves_snapshots.with_label_values(&[chain.tag(), outcome.label()]).inc();
        let shown: BTreeMap<&str, String> =
            holdings.iter().map(|(denom, amount)| (denom.as_str(), amount.to_string())).collect();
        match outcome {
            AttestOutcome::Accepted { tx, height } => {
                let gone: Vec<String> = gone.iter().map(ToString::to_string).collect();
                let detail = serde_json::json!({"round": ask.round, "parent_height": ask.parent_height, "holdings": shown, "gone": gone, "tx": tx});
                self.store.append("reserves_snapshot", chain.tag(), &detail).await?;
                tracing::info!(%chain, round = ask.round, parent_height = ask.parent_height, holdings = ?shown, %tx, height, "reserves snapshot attested");
            }
            AttestOutcome::Refused { code, log } => {
                self.reserves_refused.lock().unwrap_or_else(PoisonError::into_inner).insert(chain, ask.round);
                tracing::warn!(%chain, round = ask.round, ?code, log, "reserves snapshot refused");
            }
            AttestOutcome::Deferred { code, log } => {
                tracing::info!(%chain, round = ask.round, ?code, log, "reserves snapshot deferred; will resend");
            }
            AttestOutcome::Unconfirmed(error) => {
                tracing::warn!(%chain, round = ask.round, error, "reserves snapshot not confirmed; will resend");
            }
        }
        Ok(())
    }

    /// The chain's reserve outputs as of sidechain height `opened_at` that this member's peg
    /// index does not hold unspent at parent height `at` ([`crate::reserves::gone_outputs`]).
    async fn gone_reserve_outputs(&self, opened_at: u64, at: u64) -> anyhow::Result<Vec<DepositId>> {
        let reserves: ReservesView =
            self.chain.query(RESERVES_PATH, Some(opened_at)).await?.context("the chain answered no /reserves")?;
        let outputs: Vec<(String, u32)> =
            reserves.bitcoin_utxos.iter().map(|utxo| (utxo.txid.clone(), utxo.vout)).collect();
        let held = self.store.peg_outputs_held_at(&outputs, at).await?;
        Ok(crate::reserves::gone_outputs(&reserves, &held))
    }

    /// The Ethereum deposits this relayer attested (the latest [`GONE_CHECKED`]) whose
    /// transaction its node holds in no block at or below `at`: what a rewind took away.
    async fn gone_ethereum_deposits(&self, at: u64) -> anyhow::Result<Vec<DepositId>> {
        let watch = self.ethereum.as_ref().context("no Ethereum watcher")?;
        let mut gone = Vec::new();
        for record in self.store.attested_up_to(ParentChain::Ethereum, u64::MAX, GONE_CHECKED).await? {
            let facts = &record.observation.facts;
            if watch.watcher.transaction_block(&facts.tx_id).await?.is_none_or(|block| block > at) {
                gone.push(facts.id());
            }
        }
        gone.sort();
        gone.truncate(ferry_types::msg::MAX_GONE_OUTPUTS);
        Ok(gone)
    }

    /// What this member's own node shows the bridge holding of each of `assets` at parent height
    /// `at`.
    async fn holdings_at(
        &self,
        chain: ParentChain,
        assets: &[Denom],
        at: u64,
    ) -> anyhow::Result<BTreeMap<Denom, Amount>> {
        let mut holdings = BTreeMap::new();
        for asset in assets {
            let amount = match chain {
                ParentChain::Bitcoin if *asset == Denom::sat() => u128::from(self.store.peg_holdings_at(at).await?),
                ParentChain::Bitcoin => anyhow::bail!("the reserves round names `{asset}` for Bitcoin"),
                ParentChain::Ethereum => {
                    let watch = self.ethereum.as_ref().context("no Ethereum watcher")?;
                    let held = watch.watcher.holdings_at(asset, at).await?;
                    u128::try_from(held).with_context(|| format!("the vault's {asset} balance {held}"))?
                }
            };
            holdings.insert(asset.clone(), Amount::new(amount));
        }
        Ok(holdings)
    }

    /// Where to continue after `cursor`: right after it if its block is still canonical, else
    /// after the fork point found by walking back along the stale branch. A node whose best chain
    /// is shorter than the cursor and which does not know the cursor's block lost blocks this
    /// relayer scanned (a wiped or replaced node): the scan starts over from `start_height`, and
    /// the relayer remembers the rewind (see [`Relayer::answer_reserves_rounds`]).
    async fn bitcoin_resume_point(&self, watch: &BitcoinWatch, cursor: &Cursor, tip: u64) -> anyhow::Result<Cursor> {
        let canonical = watch.rpc.get_block_hash(cursor.height).await.map(|h| h.to_string()).ok();
        if canonical.as_deref() == Some(cursor.block_hash.as_str()) {
            return Ok(cursor.clone());
        }
        let mut height = cursor.height;
        let mut stale: bitcoin::BlockHash = cursor.block_hash.parse().context("stored cursor hash")?;
        // Walk the stale branch back (nodes keep side-branch blocks) to the common ancestor. A
        // node that no longer has the stale block gets a bounded rescan instead when it is still
        // as long (resynced), and a full one when it is shorter (it lost the blocks);
        // observations are idempotent, so rescanning is always safe.
        let mut rewound = false;
        while height > watch.start_height {
            let Ok(block) = watch.rpc.get_block(&stale).await else {
                if tip < cursor.height {
                    rewound = true;
                    height = watch.start_height;
                } else {
                    height = height.saturating_sub(BITCOIN_UNKNOWN_FORK_RESCAN).max(watch.start_height);
                }
                break;
            };
            stale = block.header.prev_blockhash;
            height = height.saturating_sub(1);
            if watch.rpc.get_block_hash(height).await.ok() == Some(stale) {
                break;
            }
        }
        let height = height.min(tip);
        self.metrics.reorgs.with_label_values(&["btc"]).inc();
        let detail = serde_json::json!({"cursor_height": cursor.height, "cursor_hash": cursor.block_hash, "fork_height": height, "node_tip": tip});
        if rewound {
            self.note_rewind(ParentChain::Bitcoin, cursor.height, &detail).await?;
        } else {
            self.store.append("reorg", "btc", &detail).await?;
            tracing::warn!(target: "ferry_relayer::bitcoin", from = cursor.height, fork = height, "reorganisation: rescanning from the fork point");
        }
        let block_hash = watch.rpc.get_block_hash(height).await?.to_string();
        Ok(Cursor { height, block_hash })
    }

    /// Remembers that `chain`'s node lost blocks this relayer had scanned up to `scanned` (see
    /// [`Relayer::answer_reserves_rounds`]), audits a `rewind` with `detail`, and says so.
    async fn note_rewind(&self, chain: ParentChain, scanned: u64, detail: &serde_json::Value) -> anyhow::Result<()> {
        self.rewound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(chain)
            .and_modify(|from| *from = (*from).max(scanned))
            .or_insert(scanned);
        self.store.append("rewind", chain.tag(), detail).await?;
        tracing::error!(%chain, scanned, %detail, "the node lost blocks this relayer scanned (its chain is shorter and does not hold them): rescanning from the start; reserves snapshots will show what the node holds now");
        Ok(())
    }

    /// Counts and logs a deposit id seen again with other facts (the store audited it).
    fn note_conflict(&self, facts: &DepositFacts, outcome: &ObserveOutcome) {
        if let ObserveOutcome::Conflicting { stored } = outcome {
            self.metrics.deposit_conflicts.with_label_values(&[facts.chain.tag()]).inc();
            tracing::warn!(deposit_id = %facts.id(), ?stored, observed = ?facts, "deposit seen with other facts than stored: audited and skipped");
        }
    }

    /// One Ethereum round: detect a reorg below the cursor, fetch new `Deposited` logs, settle.
    ///
    /// # Errors
    /// RPC or database failures (the next round retries).
    pub async fn poll_ethereum(&self) -> anyhow::Result<()> {
        let Some(watch) = &self.ethereum else { return Ok(()) };
        let tip = watch.watcher.block_number().await?;
        self.metrics.parent_height.with_label_values(&["eth"]).set(i64::try_from(tip).unwrap_or(i64::MAX));
        // The vault's escape clock, for the operators' alert: a read failure is logged, the
        // round goes on (it is about the scan).
        match watch.watcher.escape_state().await {
            Ok(state) => self.metrics.record_escape(&state),
            Err(error) => {
                tracing::warn!(target: "ferry_relayer::ethereum", %error, "could not read the vault's escape hatch")
            }
        }
        let from = match self.store.cursor(ParentChain::Ethereum).await? {
            None => watch.start_block,
            Some(cursor) => {
                let canonical = watch.watcher.block_hash(cursor.height).await?;
                if canonical.as_deref() == Some(cursor.block_hash.as_str()) {
                    cursor.height.saturating_add(1)
                } else if tip < cursor.height {
                    // The node's chain is shorter than what was scanned and lost the cursor's
                    // block (a reset or replaced node): nothing of the old chain stands.
                    self.metrics.reorgs.with_label_values(&["eth"]).inc();
                    let rescan = watch.start_block.min(tip);
                    let detail = serde_json::json!({"cursor_height": cursor.height, "cursor_hash": cursor.block_hash, "node_tip": tip, "rescan_from": rescan});
                    self.note_rewind(ParentChain::Ethereum, cursor.height, &detail).await?;
                    rescan
                } else {
                    self.metrics.reorgs.with_label_values(&["eth"]).inc();
                    let rescan = cursor.height.saturating_sub(ETHEREUM_REORG_RESCAN).max(watch.start_block);
                    self.store
                        .append(
                            "reorg",
                            "eth",
                            &serde_json::json!({"cursor_height": cursor.height, "cursor_hash": cursor.block_hash, "rescan_from": rescan}),
                        )
                        .await?;
                    tracing::warn!(target: "ferry_relayer::ethereum", from = cursor.height, rescan, "reorganisation: rescanning");
                    rescan
                }
            }
        };
        let to = tip.min(from.saturating_add(watch.max_log_range.max(1) - 1));
        let mut scanned = from.saturating_sub(1);
        if from <= to {
            // The range's end is pinned by hash before the logs are read and checked after: a
            // reorganisation in between leaves the cursor where it was (the next round rescans)
            // instead of moving it past logs the new branch holds.
            let pinned = watch.watcher.block_hash(to).await?.context("block hash of the scanned range's end")?;
            let observations = watch.watcher.deposits_in(from, to).await?;
            if watch.watcher.block_hash(to).await?.as_deref() != Some(pinned.as_str()) {
                tracing::info!(target: "ferry_relayer::ethereum", to, "the chain changed under the scan; resuming next round");
                return Ok(());
            }
            // Tokens the chain does not list are never attested: the vault keeps them, nothing is minted.
            let params = if observations.is_empty() { None } else { Some(self.chain.params().await?) };
            for observation in observations {
                let facts = &observation.facts;
                if params.as_ref().is_some_and(|params| !params.lists(&facts.asset)) {
                    let reason =
                        format!("token {} is not listed on the chain (no withdrawal limit): not attested", facts.asset);
                    if self.store.record_rejected(ParentChain::Ethereum, &facts.tx_id, facts.index, &reason).await? {
                        tracing::warn!(target: "ferry_relayer::ethereum", deposit_id = %facts.id(), amount = %facts.amount, reason, "deposit of an unlisted token rejected");
                    }
                    continue;
                }
                let outcome =
                    self.store.record_observed(facts, observation.block_height, &observation.block_hash).await?;
                self.note_conflict(facts, &outcome);
                tracing::info!(target: "ferry_relayer::ethereum", deposit_id = %facts.id(), amount = %facts.amount, asset = %facts.asset, recipient = %facts.recipient, height = observation.block_height, ?outcome, "deposit observed");
            }
            self.store.set_cursor(ParentChain::Ethereum, &Cursor { height: to, block_hash: pinned }).await?;
            scanned = to;
        }
        self.record_progress("eth", tip, scanned.min(tip));

        let pending = self.pending_of(ParentChain::Ethereum).await?;
        let mut canonical = BTreeMap::new();
        for height in pending.iter().map(|o| o.block_height).collect::<BTreeSet<_>>() {
            if let Some(hash) = watch.watcher.block_hash(height).await? {
                canonical.insert(height, hash);
            }
        }
        // The height deposits may be attested up to: the tip, or the finalized block. It is what
        // this member reports to Ethereum's parent clock, and what it can snapshot reserves at.
        let (tracker, attestable) = match watch.finality {
            crate::config::Finality::Depth => (Tracker::new(watch.policy.clone()), tip),
            crate::config::Finality::Finalized => {
                // Nothing is final before the node names a finalized block.
                let finalized = watch.watcher.finalized_block_number().await?.unwrap_or(0);
                (Tracker::new(watch.policy.clone()).attestable_up_to(finalized), finalized.min(tip))
            }
        };
        self.report_height(ParentChain::Ethereum, attestable).await;
        self.settle(ParentChain::Ethereum, tracker, pending, tip, &canonical, attestable).await?;
        self.note_ready(ParentChain::Ethereum, attestable.min(scanned), tip);
        Ok(())
    }

    fn record_progress(&self, chain: &str, tip: u64, scanned: u64) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.metrics.scanned_height.with_label_values(&[chain]).set(gauge(scanned));
        self.metrics.lag_blocks.with_label_values(&[chain]).set(gauge(tip.saturating_sub(scanned)));
        self.metrics.last_poll.with_label_values(&[chain]).set(now_seconds());
    }

    async fn pending_of(&self, chain: ParentChain) -> anyhow::Result<Vec<ferry_parent_chains::Observation>> {
        Ok(self
            .store
            .pending()
            .await?
            .into_iter()
            .filter(|record| record.observation.facts.chain == chain)
            .map(|record| record.observation)
            .collect())
    }

    async fn settle(
        &self,
        chain: ParentChain,
        mut tracker: Tracker,
        pending: Vec<ferry_parent_chains::Observation>,
        tip: u64,
        canonical: &BTreeMap<u64, String>,
        clock_height: u64,
    ) -> anyhow::Result<()> {
        for observation in pending {
            tracker.observe(observation);
        }
        let mut ready = Vec::new();
        for effect in tracker.evaluate(tip, |height| canonical.get(&height).cloned()) {
            match effect {
                Effect::Attest(observation) => ready.push(observation.facts),
                Effect::Dropped { observation, canonical } => {
                    let id = observation.facts.id();
                    let reason = format!(
                        "block {} at height {} left the best chain (now {})",
                        observation.block_hash,
                        observation.block_height,
                        canonical.as_deref().unwrap_or("nothing")
                    );
                    self.store.mark_dropped(&id, &reason).await?;
                    tracing::warn!(deposit_id = %id, reason, "deposit dropped by a reorganisation");
                }
                Effect::Waiting { id, confirmations, required } => {
                    tracing::debug!(deposit_id = %id, confirmations, required, "waiting for confirmations");
                }
            }
        }
        // The chain's parent clock must reach these deposits' blocks before they mint (reserves
        // rounds rely on it): each attestation transaction carries this member's report of the
        // height they were judged at, first.
        let report = MsgAttestParentHeight { attester: self.attester.address(), chain, height: clock_height };
        self.attest_all(&ready, &report).await?;
        self.update_deposit_gauges().await?;
        self.metrics.last_poll.with_label_values(&[chain.tag()]).set(now_seconds());
        Ok(())
    }

    async fn update_deposit_gauges(&self) -> anyhow::Result<()> {
        let counts = self.store.counts().await?;
        for (status, count) in counts.deposits {
            // `rejected` covers both attestations the chain refused and payments refused at scan.
            let count = if status == DepositStatus::Rejected { count.saturating_add(counts.rejections) } else { count };
            self.metrics.deposits.with_label_values(&[status.as_str()]).set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        if let Ok(height) = self.chain.latest_height().await {
            self.metrics.sidechain_height.set(i64::try_from(height).unwrap_or(i64::MAX));
        }
        Ok(())
    }

    /// Sends this member's attestations of `ready`, up to [`ATTESTATIONS_PER_TX`] in one
    /// transaction (a block of deposits then costs one round trip, not one each), recording every
    /// intent before and every outcome after. The chain executes a transaction's messages all or
    /// none, so a transaction refused for good is not taken as every deposit's refusal: its
    /// deposits are sent again one by one, and each gets its own answer.
    async fn attest_all(&self, ready: &[DepositFacts], report: &MsgAttestParentHeight) -> anyhow::Result<()> {
        for chunk in ready.chunks(ATTESTATIONS_PER_TX) {
            if let [facts] = chunk {
                self.attest(facts, report).await?;
                continue;
            }
            for facts in chunk {
                self.store.mark_attesting(&facts.id()).await?;
            }
            let attester = self.attester.address();
            let msgs: Vec<Msg> = std::iter::once(Msg::AttestParentHeight(report.clone()))
                .chain(
                    chunk.iter().map(|facts| Msg::AttestDeposit(MsgAttestDeposit { attester, facts: facts.clone() })),
                )
                .collect();
            let outcome = self.attester.send_all(&msgs).await;
            self.note_reported(report, &outcome);
            for facts in chunk {
                self.metrics.attestations.with_label_values(&[facts.chain.tag(), outcome.label()]).inc();
            }
            match outcome {
                AttestOutcome::Accepted { tx, height } => {
                    for facts in chunk {
                        self.store.mark_attested(&facts.id(), &tx).await?;
                        tracing::info!(deposit_id = %facts.id(), %tx, height, together = chunk.len(), "deposit attested");
                    }
                }
                AttestOutcome::Refused { code, log } => {
                    tracing::warn!(
                        deposits = chunk.len(),
                        ?code,
                        log,
                        "attestations refused together; sending them one by one"
                    );
                    for facts in chunk {
                        self.attest(facts, report).await?;
                    }
                }
                AttestOutcome::Deferred { code, log } => {
                    tracing::warn!(
                        deposits = chunk.len(),
                        ?code,
                        log,
                        "attestations deferred by the sidechain; will resend"
                    );
                }
                AttestOutcome::Unconfirmed(error) => {
                    tracing::warn!(deposits = chunk.len(), error, "attestations not confirmed; will resend");
                }
            }
        }
        Ok(())
    }

    /// Sends this member's attestation of `facts` (after its parent-height `report`, in the same
    /// transaction), recording intent before and outcome after.
    async fn attest(&self, facts: &DepositFacts, report: &MsgAttestParentHeight) -> anyhow::Result<()> {
        let id = facts.id();
        let chain_label = facts.chain.tag();
        let attempt = self.store.mark_attesting(&id).await?;
        let msg = Msg::AttestDeposit(MsgAttestDeposit { attester: self.attester.address(), facts: facts.clone() });
        let outcome = self.attester.send_all(&[Msg::AttestParentHeight(report.clone()), msg]).await;
        self.note_reported(report, &outcome);
        self.metrics.attestations.with_label_values(&[chain_label, outcome.label()]).inc();
        match outcome {
            AttestOutcome::Accepted { tx, height } => {
                self.store.mark_attested(&id, &tx).await?;
                tracing::info!(deposit_id = %id, attempt, %tx, height, "deposit attested");
            }
            AttestOutcome::Deferred { code, log } => {
                tracing::warn!(deposit_id = %id, attempt, ?code, log, "attestation deferred by the sidechain; will resend");
            }
            AttestOutcome::Refused { code, log } => {
                self.store.mark_rejected(&id, &format!("sidechain refused the attestation: {log}")).await?;
                tracing::error!(deposit_id = %id, ?code, log, "sidechain refused the attestation");
            }
            AttestOutcome::Unconfirmed(error) => {
                tracing::warn!(deposit_id = %id, attempt, error, "attestation not confirmed; will resend");
            }
        }
        Ok(())
    }
}
