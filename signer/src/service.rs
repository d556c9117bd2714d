//! The daemon's I/O shell: reads the chain, hands everything to the pure [`decide`], records the
//! decision through the double-sign guard ([`Store::record_signing`]), signs, posts
//! `MsgSubmitSignatures` and audits the outcome.
//!
//! Each round:
//! 1. the chain's height, at which every query of the round reads; the running key generation's
//!    next step ([`crate::dkg`]); its federation, for which this member must hold keys — the
//!    manifest's at genesis, a key generation's later ([`EpochView`]; otherwise nothing of it is
//!    signed, and the reason is logged once); a heartbeat; the next federation while a hand-over
//!    runs (a member of it — a candidate too — signs the disbursals of the migrations to it); the
//!    bridge status (paused: nothing is signed, since the chain would refuse it); the
//!    withdrawal parameters;
//! 2. every page of `/batches/pending`;
//! 3. for each batch still `signing` without this member's signature, oldest first: its
//!    withdrawal records, what this signer signed for its asset in the window, then
//!    [`decide`]. A refusal is audited and counted (once per batch and reason while the process
//!    runs, so a batch the chain keeps offering does not flood the log); an approval goes
//!    through the guard — whose row and audit entry commit before the signature exists — and is
//!    then signed, posted and its outcome audited. A failed post is retried in later rounds,
//!    with a growing pause.
//!
//! Crash safety: the guard's row is written before signing, so a restart re-signs exactly the
//! same payload (the guard allows it, the chain counts a member once) and can never sign another
//! for the same (epoch, nonce).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_client::FerryClient;
use ferry_types::msg::{MAX_REASON_BYTES, MsgAbortBatch, MsgSubmitSignatures, parent_chain_of};
use ferry_types::peg::Peg;
use ferry_types::query::{
    BRIDGE_PATH, Batch, BatchRelease, BatchStatus, BatchView, BridgeStatus, PENDING_BATCHES_PATH, Withdrawal,
    WithdrawalId,
};
use ferry_types::{Msg, Params, ParentChain};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::dkg::{Participant, RoundContext};
use crate::duty::post_duty;
use crate::handover::EpochView;
use crate::handover::HandoverView as NextView;
use crate::heartbeat::Heartbeats;
use crate::manifest::Manifest;
use crate::metrics::{Metrics, now_seconds};
use crate::policy::{Decision, DecisionInput, Policy, decide};
use crate::rebuild::{LocalKnowledge, Rebuilt};
use crate::refusal::{Reason, Refusal};
use crate::secrets::MemberSecrets;
use crate::signing::sign;
use crate::store::{Guarded, Store};

/// Longest pause before retrying a batch whose post failed.
const MAX_POST_BACKOFF: Duration = Duration::from_secs(60);

/// One page of `/batches/pending`, batches kept raw so that one undecodable batch is refused on
/// its own instead of stopping every other.
#[derive(Deserialize)]
struct PendingPage {
    batches: Vec<Value>,
    next_after: Option<u64>,
}

/// What the signer remembers of a batch between rounds (not across restarts).
#[derive(Clone, Debug)]
enum Remembered {
    /// Refused for this reason (audited once); `payload` is the payload hash when the guard
    /// refused, so the same offer is not audited again; `voted` once its abort vote (if the
    /// refusal names withdrawals) is in.
    Refused { refusal: Refusal, payload: Option<[u8; 32]>, voted: bool },
    /// Posting failed `failures` times; not retried before `retry_at`.
    PostFailed { failures: u32, retry_at: Instant },
}

/// Whether a post was included.
enum Posted {
    Included { tx: String, height: u64 },
    Failed(String),
}

/// How a signer decides and how often it looks (from its configuration and manifest).
#[derive(Clone, Debug)]
pub struct Settings {
    /// What it knows for itself (epoch, Ethereum chain id and vault, peg).
    pub local: LocalKnowledge,
    /// Its limits.
    pub policy: Policy,
    /// How often it reads the pending batches.
    pub poll_interval: Duration,
}

/// What a batch is signed on, each proven (`ferry_light`: a Merkle proof against a header the
/// light client verified) in the state the latest header commits to.
struct Proven {
    batch: Batch,
    withdrawals: BTreeMap<WithdrawalId, Withdrawal>,
    params: Params,
    /// For an exit disbursal: its claims and the release it follows.
    exit: Option<crate::rebuild::ExitFacts>,
}

/// One federation member's signer.
pub struct Signer {
    chain: FerryClient,
    verified: ferry_light::Reader,
    /// The chain's parameters last proven, and the height they were proven at: every batch of a
    /// round is proven at the same height, so they are read once per round.
    proven_params: Option<(u64, Params)>,
    store: Store,
    metrics: Metrics,
    secrets: MemberSecrets,
    epochs: EpochView,
    not_signing: Option<String>,
    /// The locally configured Bitcoin network (none: this signer signs no Bitcoin batch).
    configured_network: Option<ferry_types::peg::BitcoinNetwork>,
    local: LocalKnowledge,
    policy: Policy,
    poll_interval: Duration,
    remembered: BTreeMap<u64, Remembered>,
    paused: Option<bool>,
    participant: Participant,
    heartbeats: Heartbeats,
    handover: NextView,
}

impl Signer {
    /// Assembles a signer: `secrets` of a member of the genesis federation `manifest`, or of a
    /// candidate (see [`EpochView`]).
    ///
    /// # Errors
    /// None today; kept fallible for the daemon's setup.
    pub fn new(
        (chain, verified): (FerryClient, ferry_light::Reader),
        store: Store,
        metrics: Metrics,
        (secrets, manifest): (MemberSecrets, Manifest),
        settings: Settings,
    ) -> anyhow::Result<Signer> {
        let epochs = EpochView::new(manifest, &secrets);
        let Settings { local, policy, poll_interval } = settings;
        let secrets_for_participant = &secrets;
        let participant = Participant::new(secrets_for_participant);
        Ok(Signer {
            chain,
            verified,
            proven_params: None,
            store,
            metrics,
            secrets,
            epochs,
            not_signing: None,
            configured_network: local.bitcoin.as_ref().map(Peg::network),
            local,
            policy,
            poll_interval,
            remembered: BTreeMap::new(),
            paused: None,
            participant,
            heartbeats: Heartbeats::default(),
            handover: NextView::default(),
        })
    }

    /// Runs rounds until the process ends; a failed round is logged, counted and retried.
    pub async fn run(mut self) {
        loop {
            match self.poll().await {
                Ok(()) => self.metrics.last_poll.set(now_seconds()),
                Err(error) => {
                    self.metrics.poll_errors.inc();
                    tracing::warn!(error = format!("{error:#}"), "signer round failed");
                }
            }
            ferry_daemon::verified_reads::export(&self.verified, &self.metrics.proven_reads);
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// One round (see the module documentation).
    ///
    /// # Errors
    /// When the chain or the database cannot be read, or the chain's federation is not the
    /// manifest's. Failures about one batch are logged and do not end the round.
    pub async fn poll(&mut self) -> anyhow::Result<()> {
        let height = self.chain.latest_height().await?;
        self.metrics.chain_height.set(i64::try_from(height).unwrap_or(i64::MAX));
        // Every query of the round reads the state at this one height; what is signed on is read
        // proven in the state header `height` commits to.
        let at = Some(height);
        let verified = &self.verified;
        let state = verified.at(height.saturating_sub(1));
        let federation = state.federation().await.context("the chain's federation")?;
        // A key generation for the next federation goes on whether or not the bridge is paused,
        // and whether or not this member is in the current federation (a candidate takes part);
        // its failure does not stop this round's signing.
        let io = RoundContext {
            chain: &self.chain,
            state,
            store: &self.store,
            metrics: &self.metrics,
            secrets: &self.secrets,
        };
        if let Err(error) = self.participant.round(io, height).await {
            tracing::warn!(error = format!("{error:#}"), "key generation step not taken this round");
        }
        let network = self.configured_network;
        let keys = match self.epochs.keys_for(&federation, state, &self.secrets, network).await {
            Ok(keys) => Some(keys),
            Err(error) => {
                let reason = format!("{error:#}");
                if self.not_signing.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(epoch = federation.epoch, %reason, "no keys for the chain's federation: signing nothing of it");
                    self.not_signing = Some(reason);
                }
                self.metrics.signing_epoch.set(-1);
                self.local.bitcoin = None;
                None
            }
        };
        if let Some(keys) = &keys {
            self.not_signing = None;
            self.metrics.signing_epoch.set(i64::try_from(keys.epoch).unwrap_or(i64::MAX));
            self.local.epoch = keys.epoch;
            self.local.bitcoin.clone_from(&keys.peg);
            if let Err(error) =
                self.heartbeats.round(&self.chain, &self.metrics, &self.secrets, &keys.bls, &federation, height).await
            {
                tracing::warn!(error = format!("{error:#}"), "heartbeat not answered this round");
            }
        }
        let own = keys.map(|keys| keys.epoch);
        self.local.next = match self.handover.next_federation(state, network).await {
            Ok(next) => next,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "no next federation rebuilt: signing no hand-over batch");
                None
            }
        };
        let account = self.secrets.account();
        let next_member =
            self.local.next.as_ref().filter(|next| next.members.contains(&account)).map(|next| next.epoch);
        // A candidate (no keys for the current federation) signs only what the next federation it
        // is in signs before the switch: the disbursals of the hand-over's migrations.
        if own.is_none() && next_member.is_none() {
            return Ok(());
        }
        let bridge: BridgeStatus = self.chain.query(BRIDGE_PATH, at).await?.unwrap_or_default();
        let batches = self.pending(height).await?;

        let mut awaiting = Vec::new();
        let mut pending_ids = BTreeSet::new();
        for raw in batches {
            match serde_json::from_value::<BatchView>(raw.clone()) {
                Ok(view) => {
                    pending_ids.insert(view.batch.id);
                    // A release waiting for its exit disbursal is signed after it (the chain
                    // refuses its signatures until then): no signature is wasted on it.
                    if view.batch.status == BatchStatus::Signing
                        && !view.batch.signatures.contains_key(&account)
                        && view.awaits_exit.is_none()
                    {
                        awaiting.push(view);
                    }
                }
                Err(error) => {
                    let id = raw.get("id").and_then(Value::as_u64);
                    let Some(id) = id else {
                        tracing::error!(%error, "a pending batch without an id does not decode");
                        continue;
                    };
                    pending_ids.insert(id);
                    let refusal = Refusal::new(Reason::PayloadMismatch, format!("batch {id} does not decode: {error}"));
                    let chain = chain_of_raw(&raw);
                    self.refuse(id, chain, refusal, None, json!({}), true).await?;
                }
            }
        }
        awaiting = self.sweeps_to_sign(awaiting, height).await;
        // A disbursal names the epoch whose members sign it: this member's own, or the next
        // federation's (a migration's) when this member is in it.
        awaiting.retain(|view| match view.batch.release.signer_epoch() {
            Some(epoch) if matches!(view.batch.release, BatchRelease::BitcoinExit(_)) => {
                Some(epoch) == own || Some(epoch) == next_member
            }
            _ => own.is_some(),
        });
        self.metrics.pending_batches.set(i64::try_from(pending_ids.len()).unwrap_or(i64::MAX));
        self.metrics.awaiting_signature.set(i64::try_from(awaiting.len()).unwrap_or(i64::MAX));
        self.remembered.retain(|id, _| pending_ids.contains(id));

        if self.paused != Some(bridge.paused) {
            if bridge.paused {
                tracing::warn!(reason = bridge.reason, since = bridge.since_height, "bridge paused: signing nothing");
            } else if self.paused.is_some() {
                tracing::info!(since = bridge.since_height, "bridge resumed: signing again");
            }
            self.paused = Some(bridge.paused);
        }
        if bridge.paused {
            return Ok(());
        }
        for view in awaiting {
            let id = view.batch.id;
            let span = tracing::info_span!("batch", batch_id = id, asset = %view.batch.asset);
            if let Err(error) = self.handle(&view, height).instrument(span).await {
                tracing::warn!(batch_id = id, error = format!("{error:#}"), "batch not handled this round");
            }
        }
        Ok(())
    }

    /// `awaiting` without the sweeps this member does not sign: those of a retired federation it
    /// was not in (not its to sign or refuse), and those whose retired peg it cannot rebuild this
    /// round (logged; tried again next round). The pegs it rebuilt go to its local knowledge.
    async fn sweeps_to_sign(&mut self, awaiting: Vec<BatchView>, height: u64) -> Vec<BatchView> {
        let mut kept = Vec::with_capacity(awaiting.len());
        for view in awaiting {
            let Some(epoch) = view.batch.release.sweep_epoch() else {
                kept.push(view);
                continue;
            };
            let state = self.verified.at(height.saturating_sub(1));
            let retired = match state.retired_federation(epoch).await {
                Ok(Some(retired)) => retired,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(batch_id = view.batch.id, epoch, %error, "the retired federation a sweep spends is not readable");
                    continue;
                }
            };
            if !retired.is_member(&self.secrets.account()) {
                continue;
            }
            let network = self.configured_network;
            match self.epochs.retired_peg(&retired, state, &self.secrets, network).await {
                Ok(Some(peg)) => {
                    self.local.retired.insert(epoch, peg);
                    kept.push(view);
                }
                Ok(None) => kept.push(view),
                Err(error) => {
                    tracing::warn!(
                        batch_id = view.batch.id,
                        epoch,
                        error = format!("{error:#}"),
                        "the retired peg a sweep spends is not rebuilt: not signing it this round"
                    );
                }
            }
        }
        kept
    }

    /// Every page of `/batches/pending` at `height`.
    async fn pending(&self, height: u64) -> anyhow::Result<Vec<Value>> {
        let mut batches = Vec::new();
        let mut path = PENDING_BATCHES_PATH.to_owned();
        let mut last_after = 0;
        loop {
            let page: PendingPage =
                self.chain.query(&path, Some(height)).await?.context("no answer to /batches/pending")?;
            batches.extend(page.batches);
            match page.next_after {
                // Pages continue after increasing batch ids; anything else would loop forever.
                Some(after) if after > last_after => {
                    last_after = after;
                    path = format!("{PENDING_BATCHES_PATH}/{after}");
                }
                Some(after) => anyhow::bail!("/batches/pending continues after {after}, which it already passed"),
                None => return Ok(batches),
            }
        }
    }

    /// Decides one batch, read at `height`, and acts on the decision.
    async fn handle(&mut self, view: &BatchView, height: u64) -> anyhow::Result<()> {
        let id = view.batch.id;
        let chain = parent_chain_of(&view.batch.asset);
        if let Some(Remembered::PostFailed { retry_at, .. }) = self.remembered.get(&id)
            && Instant::now() < *retry_at
        {
            return Ok(());
        }
        // The listing only says what to look at; what is signed on is read again, proven.
        let proven = match self.proven(id, height).await {
            Ok(Some(proven)) => proven,
            Ok(None) => {
                tracing::debug!(batch_id = id, "batch not in the state the latest header proves yet");
                return Ok(());
            }
            Err(error) => {
                let refusal = Refusal::new(Reason::Unverified, format!("batch {id}: {error:#}"));
                return self.refuse(id, chain, refusal, None, json!({ "chain": chain.tag() }), true).await;
            }
        };
        let Proven { batch, withdrawals, params, exit } = &proven;
        if batch.status != BatchStatus::Signing {
            return Ok(());
        }
        let signed_in_window =
            self.store.signed_in_window(&batch.asset, self.policy.window, self.local.epoch, batch.id).await?;
        let input = DecisionInput {
            batch,
            withdrawals,
            params: &params.withdrawals,
            local: &self.local,
            policy: &self.policy,
            signed_in_window,
            exit: exit.as_ref(),
        };
        let context = json!({
            "chain": chain.tag(),
            "asset": batch.asset.as_str(),
            "items": batch.items.len(),
            "total": batch.total.to_string(),
            "signed_in_window": signed_in_window.to_string(),
        });
        let rebuilt = match decide(&input) {
            Decision::Refuse(refusal) => return self.refuse(batch.id, chain, refusal, None, context, true).await,
            Decision::Sign(rebuilt) => rebuilt,
        };
        let payload = rebuilt.payload_hash();
        if let Some(Remembered::Refused { payload: Some(refused), .. }) = self.remembered.get(&batch.id)
            && *refused == payload
        {
            // The guard refused this very payload already (audited then).
            return Ok(());
        }
        match self.store.record_signing(&rebuilt, &self.policy).await? {
            Guarded::Refused(refusal) => self.refuse(batch.id, chain, refusal, Some(payload), context, false).await,
            guarded => self.sign_and_post(&rebuilt, guarded == Guarded::AlreadyRecorded).await,
        }
    }

    /// Batch `id`, its withdrawal records and the chain's parameters, proven at `height - 1`
    /// (the state header `height` commits to); `None` when the batch is not in that state yet.
    ///
    /// # Errors
    /// When a read does not verify on any endpoint, or a proven record does not decode.
    async fn proven(&mut self, id: u64, height: u64) -> anyhow::Result<Option<Proven>> {
        let at = height.saturating_sub(1);
        let state = self.verified.at(at);
        let Some(batch) = state.batch(id).await? else { return Ok(None) };
        let mut withdrawals = BTreeMap::new();
        for item in &batch.items {
            if let Some(record) = state.withdrawal(item.withdrawal).await? {
                withdrawals.insert(item.withdrawal, record);
            }
        }
        let params = match &self.proven_params {
            Some((proven_at, params)) if *proven_at == at => params.clone(),
            _ => {
                let params = state.params().await?;
                self.proven_params = Some((at, params.clone()));
                params
            }
        };
        let exit = match &batch.release {
            BatchRelease::BitcoinExit(exit) => Some(crate::rebuild::ExitFacts {
                claims: state.exit_claims(batch.id, exit.claim_pages()).await?,
                followed: state.batch(exit.follows.batch).await?,
            }),
            _ => None,
        };
        Ok(Some(Proven { batch, withdrawals, params, exit }))
    }

    /// Records a refusal: audited (unless `audit` is false because the guard already did) and
    /// counted once per batch and refusal while the process runs.
    async fn refuse(
        &mut self,
        batch: u64,
        chain: ParentChain,
        refusal: Refusal,
        payload: Option<[u8; 32]>,
        context: Value,
        audit: bool,
    ) -> anyhow::Result<()> {
        if let Some(Remembered::Refused { refusal: before, voted, .. }) = self.remembered.get(&batch)
            && *before == refusal
        {
            tracing::debug!(batch_id = batch, reason = %refusal.reason, "still refused");
            // An abort vote that did not get in is cast again each round until it does.
            if !*voted && !refusal.items.is_empty() {
                let voted = self.vote_abort(batch, chain, &refusal).await?;
                self.remembered.insert(batch, Remembered::Refused { refusal, payload, voted });
            }
            return Ok(());
        }
        if audit {
            self.store.record_refusal(batch, &refusal, context).await?;
        }
        self.metrics.refused(chain.tag(), refusal.reason);
        tracing::warn!(batch_id = batch, chain = chain.tag(), reason = %refusal.reason, message = refusal.message, "batch refused");
        let voted = refusal.items.is_empty() || self.vote_abort(batch, chain, &refusal).await?;
        self.remembered.insert(batch, Remembered::Refused { refusal, payload, voted });
        Ok(())
    }

    /// Signs the recorded payload, posts the signatures and audits the outcome.
    async fn sign_and_post(&mut self, rebuilt: &Rebuilt, again: bool) -> anyhow::Result<()> {
        let share = self.epochs.current().map(|keys| &keys.bls);
        let signatures = sign(rebuilt, share, self.secrets.bitcoin_secret_key())
            .context("no share of the chain's federation key to sign with")?;
        let chain = rebuilt.chain;
        let msg = Msg::SubmitSignatures(MsgSubmitSignatures {
            signer: self.secrets.account(),
            batch: rebuilt.batch,
            signatures,
        });
        match self.post(msg).await {
            Posted::Included { tx, height } => {
                self.store.record_posted(rebuilt.batch, chain, &tx, height).await?;
                self.metrics.signed(chain.tag(), now_seconds());
                self.remembered.remove(&rebuilt.batch);
                tracing::info!(
                    batch_id = rebuilt.batch,
                    chain = chain.tag(),
                    asset = %rebuilt.asset,
                    items = rebuilt.items(),
                    total = %rebuilt.total,
                    payload_hash = hex::encode(rebuilt.payload_hash()),
                    tx,
                    height,
                    again,
                    "batch signed"
                );
            }
            Posted::Failed(error) => {
                self.store.record_post_failed(rebuilt.batch, chain, &error).await?;
                self.metrics.failed(chain.tag());
                let failures = match self.remembered.get(&rebuilt.batch) {
                    Some(Remembered::PostFailed { failures, .. }) => failures.saturating_add(1),
                    _ => 1,
                };
                let pause = self.poll_interval.saturating_mul(1u32 << failures.min(16)).min(MAX_POST_BACKOFF);
                self.remembered
                    .insert(rebuilt.batch, Remembered::PostFailed { failures, retry_at: Instant::now() + pause });
                tracing::warn!(batch_id = rebuilt.batch, chain = chain.tag(), error, failures, retry_in = ?pause, "posting signatures failed");
            }
        }
        Ok(())
    }

    /// Votes to abort `batch`, naming the withdrawals `refusal` refuses, so the chain holds them
    /// and pays the rest in another batch instead of the whole batch waiting on this member. The
    /// vote and its outcome are audited; returns whether it got in (if not, the caller votes
    /// again next round).
    async fn vote_abort(&self, batch: u64, chain: ParentChain, refusal: &Refusal) -> anyhow::Result<bool> {
        let mut reason = String::new();
        for c in format!("{}: {}", refusal.reason, refusal.message).chars().filter(|c| !c.is_control()) {
            if reason.len() + c.len_utf8() > MAX_REASON_BYTES {
                break;
            }
            reason.push(c);
        }
        let vote = MsgAbortBatch { member: self.secrets.account(), batch, reason, items: refusal.items.clone() };
        let items: Vec<String> = refusal.items.iter().map(ToString::to_string).collect();
        let (included, outcome) = match self.post(Msg::AbortBatch(vote)).await {
            Posted::Included { tx, height } => {
                tracing::warn!(batch_id = batch, chain = chain.tag(), ?items, tx, height, "voted to abort the batch");
                (true, json!({"abort_vote": "included", "items": items, "tx": tx, "height": height}))
            }
            Posted::Failed(error) => {
                tracing::warn!(
                    batch_id = batch,
                    chain = chain.tag(),
                    ?items,
                    error,
                    "abort vote not included; voting again next round"
                );
                (false, json!({"abort_vote": "failed", "items": items, "error": error}))
            }
        };
        self.store.record_abort_vote(batch, outcome).await?;
        Ok(included)
    }

    /// Posts a fee-exempt duty (signatures, an abort vote) and waits for its block, retrying a
    /// few times when it races another transaction of the member's account.
    async fn post(&self, msg: Msg) -> Posted {
        match post_duty(&self.chain, self.secrets.account_key(), &msg).await {
            Ok((tx, height)) => Posted::Included { tx, height },
            Err(error) => Posted::Failed(error),
        }
    }
}

/// The parent chain of a batch that does not decode, from its `asset` if readable (Ethereum
/// otherwise: only the metric's `chain` label depends on it).
fn chain_of_raw(raw: &Value) -> ParentChain {
    raw.get("asset")
        .and_then(Value::as_str)
        .and_then(|asset| asset.parse().ok())
        .map_or(ParentChain::Ethereum, |asset| parent_chain_of(&asset))
}
