//! The delivery loop's I/O shell. Each round it reads the sidechain's pending batches (and, for
//! releases it stored but the chain no longer lists, `/batch/<n>`), and for each signed batch asks
//! the [decision core](super::decision) what to do, gathers what it needs from the parent chain,
//! acts, records, and asks again until the answer is to wait.
//!
//! Crash safety: `relayer_releases` records intent before every act and the outcome after.
//! Killed at any point, the relayer finds on restart either nothing (it never acted), a
//! `delivering` row (the release may or may not have left: it is looked for on the parent chain
//! first — by txid on Bitcoin, by `released(nonce)` and the recorded transaction hash on Ethereum
//! — and only delivered again when absent), or a later status that resumes where it stopped. A
//! second delivery cannot pay twice — a Bitcoin transaction spends its inputs once, the vault
//! pays a nonce once — and an attestation sent twice is counted once by the chain.
//!
//! One batch failing (a node unreachable, a refused transaction) does not hold up the others: the
//! error is counted in `ferry_relayer_delivery_errors_total`, logged, and retried next round.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bitcoin::Txid;
use ferry_client::FerryClient;
use ferry_daemon::verified_reads::export;
use ferry_light::{ProvenState, Reader};
use ferry_types::msg::MsgAttestRelease;
use ferry_types::query::{Batch, BatchRelease, BatchStatus, BatchView, PENDING_BATCHES_PATH, PendingBatchesView};
use ferry_types::{Msg, ParentChain};
use tracing::Instrument;

use super::decision::{Decision, Inclusion, Located, ParentChainView, ReleaseStatus, Role, SidechainBatch, decide};
use crate::attest::{AttestOutcome, Attester};
use crate::bitcoin::release::signed_release;
use crate::confirmations::ConfirmationPolicy;
use crate::metrics::{Metrics, RELEASE_STATES};
use crate::service::{latest_proven, now_seconds};
use crate::store::{ReleaseRecord, ReleaseSummary, Store};
use ferry_parent_chains::bitcoin::BitcoinRpc;
use ferry_parent_chains::ethereum::vault::{VaultAction, VaultError, vault_error};
use ferry_parent_chains::ethereum::{EthereumWatcher, TransactionState, Wallet};

/// Most decisions carried out for one batch in one round (each moves the release forward; the
/// bound only guards against a parent chain that answers inconsistently within a round).
const MAX_STEPS: usize = 12;

/// Bitcoin delivery.
pub struct BitcoinDelivery {
    /// RPC client.
    pub rpc: BitcoinRpc,
    /// Confirmations a release needs before it is attested (by the batch's total).
    pub policy: ConfirmationPolicy,
    /// How many blocks back to look for a release whose outputs are all spent already.
    pub search_depth: u64,
}

/// Ethereum delivery.
pub struct EthereumDelivery {
    /// Reads the vault and the chain.
    pub watcher: EthereumWatcher,
    /// Pays for release transactions (absent: this relayer only attests what others deliver).
    pub wallet: Option<Wallet>,
    /// Confirmations a release needs before it is attested (by the batch's total).
    pub policy: ConfirmationPolicy,
    /// The oldest block a `Released` log is looked for in (the vault's deployment).
    pub start_block: u64,
    /// Most blocks per `eth_getLogs`.
    pub max_log_range: u64,
}

/// The delivery loop.
pub struct Delivery {
    /// Relay state (shared with the deposit watchers).
    pub store: Store,
    /// The sidechain: the pending batches are listed through it.
    pub chain: FerryClient,
    /// Proven reads of the sidechain: each batch acted on, and the federation whose signatures
    /// a Bitcoin release carries, are read through it.
    pub verified: Arc<Reader>,
    /// Metrics.
    pub metrics: Metrics,
    /// Bitcoin, if this relayer talks to it.
    pub bitcoin: Option<BitcoinDelivery>,
    /// Ethereum, if this relayer talks to it.
    pub ethereum: Option<EthereumDelivery>,
}

/// The vault action of an Ethereum batch (a release, a listing change, the rotation or a
/// heartbeat) and its federation
/// signature once combined; `None` for a Bitcoin batch.
fn vault_action(release: &BatchRelease) -> Option<(VaultAction<'_>, Option<&String>)> {
    match release {
        BatchRelease::Ethereum(release) => Some((VaultAction::Release(&release.batch), release.signature.as_ref())),
        BatchRelease::EthereumListing(change) => {
            Some((VaultAction::Listing(&change.listing), change.signature.as_ref()))
        }
        BatchRelease::EthereumRotation(change) => {
            Some((VaultAction::Rotation(&change.rotation), change.signature.as_ref()))
        }
        BatchRelease::EthereumHeartbeat(change) => {
            Some((VaultAction::Heartbeat(&change.heartbeat), change.signature.as_ref()))
        }
        BatchRelease::Bitcoin(_) | BatchRelease::BitcoinExit(_) => None,
    }
}

fn summary_of(batch: &Batch) -> ReleaseSummary {
    ReleaseSummary {
        batch: batch.id,
        chain: batch.release.parent_chain(),
        asset: batch.asset.clone(),
        items: u32::try_from(batch.items.len()).unwrap_or(u32::MAX),
        total: batch.total,
    }
}

impl Delivery {
    /// Runs delivery rounds every `poll` until the process ends; a failed round is logged and
    /// retried. `attester` is the member's (absent for a `--deliver-only` relayer, which attests
    /// nothing).
    pub async fn run(&self, attester: Option<&Attester>, poll: Duration) {
        loop {
            if let Err(error) = self.poll(attester).await {
                tracing::warn!(target: "ferry_relayer::delivery", error = format!("{error:#}"), "delivery round failed");
            }
            // Also with the sidechain down: kept disbursals are broadcast from the database.
            if let Err(error) = self.exits_round().await {
                tracing::warn!(target: "ferry_relayer::exits", error = format!("{error:#}"), "exit disbursal round failed");
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// One round over every pending batch and every release the store holds unsettled.
    ///
    /// # Errors
    /// When the sidechain or the database cannot be read (a single batch's failure is counted
    /// and logged, not returned).
    pub async fn poll(&self, attester: Option<&Attester>) -> anyhow::Result<()> {
        let state = latest_proven(&self.chain, &self.verified).await?;
        let mut seen = BTreeSet::new();
        for listed in self.pending_batches().await? {
            seen.insert(listed.batch.id);
            // The listing says what to look at; what is acted on is the batch record, proven.
            match self.proven(state, listed.batch.id).await {
                Ok(Some(batch)) => self.advance_logged(&batch, attester, state).await,
                Ok(None) => {} // listed at the latest height, not yet in the state proven
                Err(error) => {
                    self.metrics.delivery_errors.with_label_values(&[listed.batch.release.parent_chain().tag()]).inc();
                    tracing::warn!(target: "ferry_relayer::delivery", batch = listed.batch.id, error = format!("{error:#}"), "batch not read proven; will retry");
                }
            }
        }
        // Batches the chain no longer lists as pending were settled (or, after a chain reset,
        // are unknown): read each once to record how it ended.
        for record in self.store.unsettled_releases().await? {
            let batch = record.summary.batch;
            if seen.contains(&batch) {
                continue;
            }
            match self.proven(state, batch).await? {
                Some(proven) => self.advance_logged(&proven, attester, state).await,
                None => {
                    tracing::warn!(target: "ferry_relayer::delivery", batch, "the store holds a release of a batch the sidechain does not know");
                }
            }
        }
        export(&self.verified, &self.metrics.proven_reads);
        self.update_gauges().await?;
        self.metrics.last_poll.with_label_values(&["sidechain"]).set(now_seconds());
        Ok(())
    }

    /// Every page of `/batches/pending`.
    async fn pending_batches(&self) -> anyhow::Result<Vec<BatchView>> {
        let mut batches = Vec::new();
        let mut path = PENDING_BATCHES_PATH.to_owned();
        loop {
            let page: PendingBatchesView =
                self.chain.query(&path, None).await?.with_context(|| format!("the sidechain has no `{path}`"))?;
            batches.extend(page.batches);
            match page.next_after {
                Some(after) => path = format!("{PENDING_BATCHES_PATH}/{after}"),
                None => return Ok(batches),
            }
        }
    }

    /// Batch `id` in `state`, proven (`None`: not in that state).
    async fn proven(&self, state: ProvenState<'_>, id: u64) -> anyhow::Result<Option<Batch>> {
        state.batch(id).await.with_context(|| format!("batch {id}"))
    }

    async fn advance_logged(&self, batch: &Batch, attester: Option<&Attester>, state: ProvenState<'_>) {
        let chain = batch.release.parent_chain();
        let span = tracing::info_span!("release", batch = batch.id, chain = chain.tag());
        if let Err(error) = self.advance(batch, attester, state).instrument(span).await {
            self.metrics.delivery_errors.with_label_values(&[chain.tag()]).inc();
            tracing::warn!(target: "ferry_relayer::delivery", batch = batch.id, chain = chain.tag(), error = format!("{error:#}"), "release not advanced; will retry");
        }
    }

    /// Whether this relayer talks to `chain`, and the confirmations its releases need.
    fn policy(&self, chain: ParentChain) -> Option<&ConfirmationPolicy> {
        match chain {
            ParentChain::Bitcoin => self.bitcoin.as_ref().map(|side| &side.policy),
            ParentChain::Ethereum => self.ethereum.as_ref().map(|side| &side.policy),
        }
    }

    /// Whether this relayer can hand a release to `chain` (Ethereum needs a wallet).
    fn can_deliver(&self, chain: ParentChain) -> bool {
        match chain {
            ParentChain::Bitcoin => self.bitcoin.is_some(),
            ParentChain::Ethereum => self.ethereum.as_ref().is_some_and(|side| side.wallet.is_some()),
        }
    }

    /// Carries `batch` as far as it can go this round.
    async fn advance(&self, batch: &Batch, attester: Option<&Attester>, state: ProvenState<'_>) -> anyhow::Result<()> {
        if matches!(batch.release, BatchRelease::BitcoinExit(_)) {
            // A disbursal is kept, never delivered: it is valid only once its lock height passed.
            return Ok(());
        }
        let summary = summary_of(batch);
        let chain = summary.chain;
        // A Bitcoin release being re-signed for a replacement is still out there in its earlier
        // signed version: it is delivered, looked for and attested as a signed batch.
        let status = match batch.status {
            BatchStatus::Signing if batch.signed_bitcoin_version().is_some() => BatchStatus::Signed,
            status => status,
        };
        let required = match (status, self.policy(chain)) {
            (BatchStatus::Signing, _) => return Ok(()),
            (BatchStatus::Signed, None) => {
                tracing::debug!(target: "ferry_relayer::delivery", "not connected to this batch's parent chain");
                return Ok(());
            }
            (_, policy) => policy.map_or(1, |policy| policy.required(batch.total)),
        };
        let attested = attester.and_then(|attester| batch.release_attestations.get(&attester.address()));
        let sidechain = SidechainBatch { status, attested: attested.map(String::as_str) };
        let role = Role { attests: attester.is_some(), delivers: self.can_deliver(chain) };
        let mut record = self.store.release(batch.id).await?;
        let mut located = Located::NotLooked;
        let mut tip = None;
        for _ in 0..MAX_STEPS {
            let progress = record.as_ref().map(ReleaseRecord::progress);
            let parent = if status == BatchStatus::Signed {
                let tip = match tip {
                    Some(tip) => tip,
                    None => *tip.insert(self.tip(chain).await?),
                };
                let canonical = match progress.as_ref().and_then(|progress| progress.inclusion.as_ref()) {
                    Some(inclusion) => self.block_hash(chain, inclusion.block_height, tip).await?,
                    None => None,
                };
                ParentChainView { tip, canonical_hash: canonical, located: located.clone() }
            } else {
                // A settled batch needs nothing from the parent chain.
                ParentChainView { tip: 0, canonical_hash: None, located: Located::NotLooked }
            };
            match decide(sidechain, progress.as_ref(), &parent, required, role) {
                Decision::Skip | Decision::AwaitQuorum => return Ok(()),
                Decision::Settle => {
                    if record.is_some()
                        && self.store.mark_release_settled(batch.id, batch.release_tx.as_deref()).await?
                    {
                        tracing::info!(target: "ferry_relayer::delivery", batch = batch.id, chain = chain.tag(), tx = batch.release_tx.as_deref().unwrap_or("?"), items = summary.items, total = %summary.total, asset = %summary.asset, "release settled on the sidechain");
                    }
                    return Ok(());
                }
                Decision::RecordAttested { parent_tx } => {
                    if record.is_some() {
                        self.store.mark_release_attested(batch.id, &parent_tx, None).await?;
                    }
                    return Ok(());
                }
                Decision::Reorged { inclusion, canonical } => {
                    tracing::warn!(target: "ferry_relayer::delivery", batch = batch.id, chain = chain.tag(), tx = inclusion.parent_tx, height = inclusion.block_height, block = inclusion.block_hash, canonical = canonical.as_deref().unwrap_or("none"), "release block left the best chain; looking for the release again");
                    self.store.mark_release_reorged(batch.id, canonical.as_deref()).await?;
                    located = Located::NotLooked;
                }
                Decision::Wait { confirmations, required } => {
                    tracing::debug!(target: "ferry_relayer::delivery", confirmations, required, "release waiting for confirmations");
                    return Ok(());
                }
                Decision::Confirm => {
                    let inclusion =
                        progress.and_then(|progress| progress.inclusion).context("confirming without a block")?;
                    let confirmations = parent.tip.saturating_sub(inclusion.block_height).saturating_add(1);
                    self.store.mark_release_confirmed(batch.id, confirmations).await?;
                    tracing::info!(target: "ferry_relayer::delivery", batch = batch.id, chain = chain.tag(), tx = inclusion.parent_tx, height = inclusion.block_height, confirmations, items = summary.items, total = %summary.total, "release confirmed");
                }
                Decision::Attest { parent_tx } => {
                    let attester = attester.context("attesting without a member key")?;
                    let mined_at = progress
                        .as_ref()
                        .and_then(|progress| progress.inclusion.as_ref())
                        .map_or(0, |inclusion| inclusion.block_height);
                    return self.attest(attester, &summary, &parent_tx, mined_at).await;
                }
                Decision::Locate => located = self.locate(batch, record.as_ref()).await?,
                Decision::Include(inclusion) => {
                    self.store.mark_release_included(&summary, &inclusion).await?;
                    let ours =
                        record.as_ref().and_then(|record| record.parent_tx.as_deref()) == Some(&inclusion.parent_tx);
                    tracing::info!(target: "ferry_relayer::delivery", batch = batch.id, chain = chain.tag(), tx = inclusion.parent_tx, height = inclusion.block_height, delivered_by_us = ours, "release in a block");
                }
                Decision::AwaitInclusion => {
                    tracing::debug!(target: "ferry_relayer::delivery", "release waiting for a block");
                    return Ok(());
                }
                Decision::Deliver => {
                    self.deliver(batch, &summary, state).await?;
                    return Ok(());
                }
                Decision::AwaitDelivery => {
                    tracing::debug!(target: "ferry_relayer::delivery", "release waiting for a relayer that can deliver it");
                    return Ok(());
                }
            }
            record = self.store.release(batch.id).await?;
        }
        anyhow::bail!("batch {} did not settle into a waiting state within {MAX_STEPS} steps", batch.id)
    }

    async fn tip(&self, chain: ParentChain) -> anyhow::Result<u64> {
        Ok(match chain {
            ParentChain::Bitcoin => self.bitcoin_side()?.rpc.get_block_count().await?,
            ParentChain::Ethereum => self.ethereum_side()?.watcher.block_number().await?,
        })
    }

    /// The canonical block hash at `height` (`None` above `tip`).
    async fn block_hash(&self, chain: ParentChain, height: u64, tip: u64) -> anyhow::Result<Option<String>> {
        if height > tip {
            return Ok(None);
        }
        Ok(match chain {
            ParentChain::Bitcoin => Some(self.bitcoin_side()?.rpc.get_block_hash(height).await?.to_string()),
            ParentChain::Ethereum => self.ethereum_side()?.watcher.block_hash(height).await?,
        })
    }

    fn bitcoin_side(&self) -> anyhow::Result<&BitcoinDelivery> {
        self.bitcoin.as_ref().context("this relayer is not connected to Bitcoin")
    }

    fn ethereum_side(&self) -> anyhow::Result<&EthereumDelivery> {
        self.ethereum.as_ref().context("this relayer is not connected to Ethereum")
    }

    async fn locate(&self, batch: &Batch, record: Option<&ReleaseRecord>) -> anyhow::Result<Located> {
        match vault_action(&batch.release) {
            None => self.locate_bitcoin(batch).await,
            Some((action, _)) => self.locate_ethereum(action, record).await,
        }
    }

    /// Where the Bitcoin release is. Every version the chain made spends the same inputs, so at
    /// most one is in a block: each is looked for, newest first ([`Self::locate_bitcoin_version`]);
    /// one in a block is the release. Otherwise it is pending only when the newest *signed*
    /// version is what the node holds — an older version waiting in its mempool must be replaced
    /// by delivering the newest.
    async fn locate_bitcoin(&self, batch: &ferry_types::query::Batch) -> anyhow::Result<Located> {
        let newest_signed = batch.signed_bitcoin_version().map(|version| version.txid);
        let mut newest_pending = false;
        for (_, txid, plan) in batch.bitcoin_versions() {
            match self.locate_bitcoin_version(txid, plan).await? {
                found @ Located::Included(_) => return Ok(found),
                Located::Pending if newest_signed.as_deref() == Some(txid) => newest_pending = true,
                _ => {}
            }
        }
        if newest_pending {
            return Ok(Located::Pending);
        }
        let (_, _, plan) = batch.bitcoin_versions().into_iter().next().context("a Bitcoin batch without a release")?;
        let first = plan.inputs().first().context("a release without inputs")?.outpoint()?;
        // Spent in a block (a version pending in the mempool does not count: it gets replaced).
        if self.bitcoin_side()?.rpc.get_tx_out(&first.txid, first.vout, false).await?.is_none() {
            anyhow::bail!(
                "the inputs of batch {}'s release are spent, but no version of it is in the last \
                 delivery.bitcoin_search_depth blocks (raise it, or another transaction spent them)",
                batch.id
            );
        }
        Ok(Located::Absent)
    }

    /// Where one version of a Bitcoin release transaction is. Its txid is final before it is
    /// signed, so it is found whoever broadcast it:
    /// 1. an unspent output of it (the change first: the chain does not spend it before the batch
    ///    settles) gives its depth, and the block at that depth must hold it;
    /// 2. else the node's own lookup: its mempool, or its transaction index if it keeps one;
    /// 3. else, when its first input is still unspent in the best chain, it is not mined;
    /// 4. else (its inputs are spent and so are all its outputs) the last `search_depth` blocks
    ///    are searched — where not finding it means another version spent the inputs.
    async fn locate_bitcoin_version(
        &self,
        txid: &str,
        plan: &ferry_types::release::bitcoin::ReleasePlan,
    ) -> anyhow::Result<Located> {
        let side = self.bitcoin_side()?;
        let rpc = &side.rpc;
        let txid: Txid = txid.parse().with_context(|| format!("release txid `{txid}`"))?;
        let tip = rpc.get_block_count().await?;
        let mut outputs: Vec<u32> = plan.change_vout().into_iter().collect();
        outputs.push(0);
        for vout in outputs {
            if let Some(output) = rpc.get_tx_out(&txid, vout, true).await? {
                if output.confirmations == 0 {
                    return Ok(Located::Pending);
                }
                return self.bitcoin_block_of(txid, tip, output.confirmations).await;
            }
        }
        if let Some(status) = rpc.get_transaction_status(&txid).await? {
            return match status.confirmations {
                Some(confirmations) if confirmations > 0 && status.blockhash.is_some() => {
                    self.bitcoin_block_of(txid, tip, confirmations).await
                }
                _ => Ok(Located::Pending),
            };
        }
        let first = plan.inputs().first().context("a release without inputs")?.outpoint()?;
        if rpc.get_tx_out(&first.txid, first.vout, false).await?.is_some() {
            return Ok(Located::Absent);
        }
        let lowest = tip.saturating_sub(side.search_depth.saturating_sub(1));
        for height in (lowest..=tip).rev() {
            if let Some(found) = self.bitcoin_block_holding(txid, height).await? {
                return Ok(found);
            }
        }
        Ok(Located::Absent)
    }

    /// The release at `confirmations` deep from `tip`: the block there must hold it. The tip may
    /// have grown since it was read, so the next block is tried too; if neither holds it (the
    /// chain moved while looking) it counts as pending until the next round.
    async fn bitcoin_block_of(&self, txid: Txid, tip: u64, confirmations: u64) -> anyhow::Result<Located> {
        let height = tip.saturating_add(1).saturating_sub(confirmations);
        for candidate in [height, height.saturating_add(1)] {
            if let Some(found) = self.bitcoin_block_holding(txid, candidate).await? {
                return Ok(found);
            }
        }
        Ok(Located::Pending)
    }

    /// The block at `height`, if the best chain has one and it holds `txid`.
    async fn bitcoin_block_holding(&self, txid: Txid, height: u64) -> anyhow::Result<Option<Located>> {
        let rpc = &self.bitcoin_side()?.rpc;
        let Ok(hash) = rpc.get_block_hash(height).await else { return Ok(None) };
        let block = rpc.get_block(&hash).await?;
        Ok(block.txdata.iter().any(|tx| tx.compute_txid() == txid).then(|| {
            Located::Included(Inclusion {
                parent_tx: txid.to_string(),
                block_height: height,
                block_hash: hash.to_string(),
            })
        }))
    }

    /// Where the Ethereum action (a release, a listing change or the rotation) is: once the vault
    /// says it is applied, the transaction that emitted its `Released`, `ListingSet` or `KeyRotated` log (whoever
    /// sent it); before, the transaction this relayer sent, if the node still has it pending.
    async fn locate_ethereum(
        &self,
        action: VaultAction<'_>,
        record: Option<&ReleaseRecord>,
    ) -> anyhow::Result<Located> {
        let side = self.ethereum_side()?;
        let key = action.applied_key();
        if side.watcher.applied(action).await? {
            let tip = side.watcher.block_number().await?;
            let log = side
                .watcher
                .applied_log(action.applied_topic(), key, side.start_block, tip, side.max_log_range)
                .await?
                .with_context(|| {
                    format!(
                        "the vault says {} {key} is applied, but no log of it is in blocks {}..={tip}",
                        action.function(),
                        side.start_block
                    )
                })?;
            return Ok(Located::Included(Inclusion {
                parent_tx: log.tx_hash,
                block_height: log.block_number,
                block_hash: log.block_hash,
            }));
        }
        let sent = record
            .filter(|record| matches!(record.status, ReleaseStatus::Delivering | ReleaseStatus::Broadcast))
            .and_then(|record| record.parent_tx.as_deref());
        if let Some(tx) = sent {
            match side.watcher.transaction_state(tx).await? {
                // Mined and successful a moment ago: its log shows up next round.
                TransactionState::Pending | TransactionState::Mined { succeeded: true, .. } => {
                    return Ok(Located::Pending);
                }
                TransactionState::Unknown | TransactionState::Mined { succeeded: false, .. } => {}
            }
        }
        Ok(Located::Absent)
    }

    async fn deliver(&self, batch: &Batch, summary: &ReleaseSummary, state: ProvenState<'_>) -> anyhow::Result<()> {
        match vault_action(&batch.release) {
            None => self.deliver_bitcoin(batch, summary, state).await,
            Some((action, signature)) => self.deliver_ethereum(action, signature, summary).await,
        }
    }

    /// Assembles the witness from the chain's signatures and broadcasts. A node that already has
    /// the transaction (in its mempool or a block) counts as a delivery.
    async fn deliver_bitcoin(
        &self,
        batch: &Batch,
        summary: &ReleaseSummary,
        state: ProvenState<'_>,
    ) -> anyhow::Result<()> {
        let rpc = &self.bitcoin_side()?.rpc;
        // A sweep spends a retired federation's peg, whose members signed it.
        let federation = match batch.release.sweep_epoch() {
            None => state.federation().await.context("the chain's federation")?,
            Some(epoch) => state
                .retired_federation(epoch)
                .await?
                .with_context(|| format!("the chain proves no federation of epoch {epoch}"))?,
        };
        let tx = match signed_release(batch, &federation) {
            Ok(tx) => tx,
            Err(error) => return self.delivery_failed(summary, &error.to_string()).await,
        };
        let txid = tx.compute_txid().to_string();
        let attempt = self.store.mark_release_delivering(summary, &txid).await?;
        match rpc.send_raw_transaction(&tx).await {
            Ok(_) => {}
            Err(error) if error.is_already_known() => {
                tracing::debug!(target: "ferry_relayer::delivery", %error, "the node already has the release");
            }
            Err(error) => return self.delivery_failed(summary, &format!("broadcast refused: {error}")).await,
        }
        self.store.mark_release_broadcast(summary.batch, &txid).await?;
        self.delivered(summary, &txid, attempt);
        Ok(())
    }

    /// Signs the action — `release(batch, signature)` or `setListing(listing, signature)` — after
    /// the node simulated it, records the transaction's hash, then sends it. The vault's
    /// `AlreadyReleased` means another relayer was first: nothing is sent or recorded, and the
    /// next round looks for that relayer's transaction.
    async fn deliver_ethereum(
        &self,
        action: VaultAction<'_>,
        signature: Option<&String>,
        summary: &ReleaseSummary,
    ) -> anyhow::Result<()> {
        let side = self.ethereum_side()?;
        let wallet = side.wallet.as_ref().context("delivering without an Ethereum wallet")?;
        let vault = side.watcher.vault();
        let configured = ferry_types::release::eth::EthAddress::from_bytes(vault.into());
        if action.vault() != configured {
            let reason = format!("the batch is for vault {}, this relayer's vault is {configured}", action.vault());
            return self.delivery_failed(summary, &reason).await;
        }
        let Some(signature) = signature else {
            return self.delivery_failed(summary, "the batch is signed but carries no federation signature").await;
        };
        let signature = match hex::decode(signature) {
            Ok(signature) => signature,
            Err(error) => {
                return self.delivery_failed(summary, &format!("federation signature is not hex: {error}")).await;
            }
        };
        let signed = match wallet.sign_action(vault, action, &signature).await {
            Ok(signed) => signed,
            Err(error) => return self.ethereum_refused(summary, &error).await,
        };
        let attempt = self.store.mark_release_delivering(summary, &signed.tx_hash).await?;
        if let Err(error) = wallet.send_signed(&signed).await {
            return self.ethereum_refused(summary, &error).await;
        }
        self.store.mark_release_broadcast(summary.batch, &signed.tx_hash).await?;
        self.delivered(summary, &signed.tx_hash, attempt);
        Ok(())
    }

    async fn ethereum_refused(
        &self,
        summary: &ReleaseSummary,
        error: &ferry_parent_chains::ethereum::EthereumError,
    ) -> anyhow::Result<()> {
        match vault_error(error) {
            // The node's state (its latest or, on some nodes, its pending block) already pays the
            // batch: another relayer's transaction won or waits for a block. The next round finds
            // its `Released` log, or — if that transaction is dropped — delivers again.
            Some(VaultError::AlreadyReleased(_)) => {
                tracing::info!(target: "ferry_relayer::delivery", batch = summary.batch, "the vault already pays this batch: another relayer's release came first");
                Ok(())
            }
            Some(refusal) => {
                self.delivery_failed(summary, &format!("the vault refuses the release: {refusal:?}")).await
            }
            None => self.delivery_failed(summary, &error.to_string()).await,
        }
    }

    async fn delivery_failed(&self, summary: &ReleaseSummary, reason: &str) -> anyhow::Result<()> {
        let chain = summary.chain.tag();
        self.metrics.delivery_errors.with_label_values(&[chain]).inc();
        let new = self.store.record_release_failure(summary, reason).await?;
        if new {
            tracing::error!(target: "ferry_relayer::delivery", batch = summary.batch, chain, reason, "release delivery failed; will retry");
        } else {
            tracing::debug!(target: "ferry_relayer::delivery", batch = summary.batch, chain, reason, "release delivery failed again");
        }
        Ok(())
    }

    fn delivered(&self, summary: &ReleaseSummary, tx: &str, attempt: u32) {
        let chain = summary.chain.tag();
        self.metrics.last_delivery.with_label_values(&[chain]).set(now_seconds());
        tracing::info!(target: "ferry_relayer::delivery", batch = summary.batch, chain, tx, items = summary.items, total = %summary.total, asset = %summary.asset, attempt, "release delivered");
    }

    /// Sends this member's attestation of `parent_tx` (mined at `parent_height`), intent recorded
    /// before, outcome after.
    async fn attest(
        &self,
        attester: &Attester,
        summary: &ReleaseSummary,
        parent_tx: &str,
        parent_height: u64,
    ) -> anyhow::Result<()> {
        let batch = summary.batch;
        let chain = summary.chain.tag();
        let attempt = self.store.mark_release_attesting(batch).await?;
        let msg = Msg::AttestRelease(MsgAttestRelease {
            attester: attester.address(),
            batch,
            parent_tx: parent_tx.to_owned(),
            parent_height,
        });
        let outcome = attester.send(msg).await;
        self.metrics.release_attestations.with_label_values(&[chain, outcome.label()]).inc();
        match outcome {
            AttestOutcome::Accepted { tx, height } => {
                self.store.mark_release_attested(batch, parent_tx, Some(&tx)).await?;
                tracing::info!(target: "ferry_relayer::delivery", batch, chain, parent_tx, attestation = %tx, height, attempt, "release attested");
            }
            AttestOutcome::Deferred { code, log } => {
                tracing::warn!(target: "ferry_relayer::delivery", batch, chain, attempt, ?code, log, "release attestation deferred by the sidechain; will resend");
            }
            AttestOutcome::Refused { code, log } => {
                self.store.mark_release_refused(batch, &format!("sidechain refused the attestation: {log}")).await?;
                tracing::error!(target: "ferry_relayer::delivery", batch, chain, ?code, log, "sidechain refused the release attestation");
            }
            AttestOutcome::Unconfirmed(error) => {
                tracing::warn!(target: "ferry_relayer::delivery", batch, chain, attempt, error, "release attestation not confirmed; will resend");
            }
        }
        Ok(())
    }

    async fn update_gauges(&self) -> anyhow::Result<()> {
        for chain in [ParentChain::Bitcoin, ParentChain::Ethereum] {
            for state in RELEASE_STATES {
                self.metrics.releases.with_label_values(&[chain.tag(), state]).set(0);
            }
        }
        for (chain, status, count) in self.store.release_counts().await? {
            self.metrics
                .releases
                .with_label_values(&[chain.tag(), status.as_str()])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        Ok(())
    }
}
