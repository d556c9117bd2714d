//! Release batches: formed deterministically at the end of every `batch_interval`-th block from
//! the queued withdrawals, signed by the federation (`MsgSubmitSignatures`), and settled when a
//! quorum of members attests the release on the parent chain (`MsgAttestRelease`).
//!
//! Forming, per asset with queued withdrawals, in denomination order:
//! - take queued withdrawals in id order, skipping those still waiting their delay, up to
//!   `max_batch_items`, and stop at the first one that would take the asset's outflow in the
//!   current window ([`ferry_types::genesis::WithdrawalParams`]) above its cap — it keeps its
//!   place for the next window, so later small withdrawals cannot starve it;
//! - Ethereum (ether or one ERC-20 token): one [`EthBatch`] with nonce = batch id, bound to the
//!   vault, its chain id and the federation epoch;
//! - Bitcoin: [`plan_release_at_rate`] over the reserve UTXOs no unsettled batch has locked, at
//!   the chain's fee rate ([`crate::bitcoin_fees`]): the fee is the rate × the release's size with
//!   the longest signatures, each output paying its burned amount minus its share; the inputs are
//!   locked by the batch. A withdrawal whose share is above its `max_fee` (or whose output would
//!   be dust) is left out and waits (`withdrawal_waiting` event, the reason on its record); when
//!   the free reserves cannot pay the rest, or the release would not be standard, the selection
//!   is halved until it fits; if nothing fits, the asset's withdrawals stay queued
//!   (`batch_deferred` event).
//!
//! While a federation hand-over runs ([`crate::handover`]) nothing forms: the queued withdrawals
//! wait, their records saying why.
//!
//! Signing: each member's signatures are checked as they arrive (its BLS share against its
//! public key share, or each input signature against the input's sighash and its Bitcoin key);
//! a bad one refuses the transaction, a member's repeat submission is ignored. At the threshold
//! an Ethereum batch's shares are combined into the federation signature the vault verifies; a
//! Bitcoin batch keeps the per-input signatures for a relayer to assemble the witness.
//!
//! Settling moves the batch's total out of the ledger's `reserves` and `unreleased`; for Bitcoin,
//! the spent inputs leave the reserve UTXO set and the change output joins it, and the release's
//! confirmation delay feeds the fee controller.

use std::collections::{BTreeMap, BTreeSet};

use ferry_types::event as ev;
use ferry_types::genesis::{Federation, WithdrawalParams};
use ferry_types::msg::{MsgAttestRelease, MsgSubmitSignatures, ReleaseSignatures, erc20_token, parent_chain_of};
use ferry_types::peg::Peg;
use ferry_types::query::{
    Batch, BatchItem, BatchRelease, BatchStatus, BatchView, BitcoinRelease, EthereumRelease, Withdrawal, WithdrawalId,
};
use ferry_types::release::bitcoin::{
    BtcReleaseError, MAX_RELEASE_INPUTS, PricedRelease, ReleaseRequest, Utxo, plan_release_at_rate,
};
use ferry_types::release::bls::{self, PublicKeySet};
use ferry_types::release::eth::{EthAddress, EthBatch, EthReleaseItem};
use ferry_types::release::fee::FeeRate;
use ferry_types::{Amount, Denom, Params, ParentChain, TxCode, TxRejection};
use serde::{Deserialize, Serialize};

use crate::bank::BankError;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of the batches.
pub mod keys {
    use ferry_types::Denom;

    pub use ferry_types::state_keys::batch;

    /// The last batch id assigned (JSON integer; absent before the first).
    pub const LAST_BATCH: &[u8] = b"last_batch";

    /// The batches not yet settled or aborted, one entry per batch keyed by its big-endian id.
    pub fn pending_batches() -> crate::state::Collection {
        crate::state::Collection::new("pending_batch/")
    }

    /// An asset's outflow in the current window.
    pub fn outflow(denom: &Denom) -> Vec<u8> {
        format!("outflow/{denom}").into_bytes()
    }
}

/// What an asset has had batched in one outflow window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOutflow {
    /// The window ([`WithdrawalParams::window`]).
    pub window: u64,
    /// Burned amounts batched in it.
    pub amount: Amount,
}

impl<R: StateRead> StateDelta<R> {
    /// The record of batch `id`.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn batch(&self, id: u64) -> Result<Option<Batch>, StateError> {
        self.get_record(&keys::batch(id))
    }

    /// Stores a batch record.
    pub fn put_batch(&mut self, batch: &Batch) {
        self.put_record(keys::batch(batch.id), batch);
    }

    /// Ids of the batches not yet settled or aborted, ascending.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn pending_batches(&self) -> Result<Vec<u64>, StateError> {
        self.all_entries(&keys::pending_batches())
    }

    /// Up to `limit` pending batch ids above `after`, ascending.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn pending_batch_page(&self, after: u64, limit: usize) -> Result<Vec<u64>, StateError> {
        self.entries(&keys::pending_batches(), Some(&after.to_be_bytes()), false, limit)
    }

    /// How many batches are pending.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn pending_batch_count(&self) -> Result<u64, StateError> {
        self.entry_count(&keys::pending_batches())
    }

    pub(crate) fn remove_pending_batch(&mut self, id: u64) -> Result<(), StateError> {
        self.remove_entry(&keys::pending_batches(), &id.to_be_bytes())
    }

    /// What `denom` has had batched in the window `window` (zero when that is not the stored window).
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn outflow(&self, denom: &Denom, window: u64) -> Result<Amount, StateError> {
        let stored: WindowOutflow = self.get_record(&keys::outflow(denom))?.unwrap_or_default();
        Ok(if stored.window == window { stored.amount } else { Amount::ZERO })
    }

    pub(crate) fn put_outflow(&mut self, denom: &Denom, outflow: &WindowOutflow) {
        self.put_record(keys::outflow(denom), outflow);
    }

    fn last_batch_id(&self) -> Result<u64, StateError> {
        Ok(self.get_record(keys::LAST_BATCH)?.unwrap_or(0))
    }
}

fn refused(code: TxCode, log: impl Into<String>) -> BankError {
    BankError::Rejected(TxRejection::new(code, log))
}

fn corrupt_federation(reason: String) -> StateError {
    StateError::Corrupt { key: "federation".to_owned(), reason }
}

/// The federation's Bitcoin peg, if it has one. Genesis validated it, so a failure is a corrupt record.
pub(crate) fn peg_of(federation: &Federation) -> Result<Option<Peg>, StateError> {
    federation.bitcoin.as_ref().map(Peg::new).transpose().map_err(|e| corrupt_federation(e.to_string()))
}

/// The federation whose members sign `batch`: the one of the epoch it names
/// ([`BatchRelease::signer_epoch`]: a sweep's retired federation, a disbursal's own — for a
/// hand-over's migration, the next federation); otherwise the current one.
///
/// # Errors
/// On storage failure, or an epoch whose federation was not kept (a corrupt record).
pub(crate) fn signing_federation<R: StateRead>(state: &StateDelta<R>, batch: &Batch) -> Result<Federation, StateError> {
    let current = state.federation()?;
    let Some(epoch) = batch.release.signer_epoch().filter(|epoch| *epoch != current.epoch) else {
        return Ok(current);
    };
    if let Some(next) = state.next_federation()?.filter(|next| next.epoch == epoch) {
        return Ok(next);
    }
    state.retired_federation(epoch)?.ok_or_else(|| StateError::Corrupt {
        key: format!("batch/{}", batch.id),
        reason: format!("it is signed by the federation of epoch {epoch}, which was not kept"),
    })
}

/// Whether `msgs` are all signatures or refusals for batches that name the federation signing
/// them ([`BatchRelease::signer_epoch`]: a sweep's retired federation, a migration's disbursal's
/// next one) and `signer` is a member of each: such a member may have left the federation, or not
/// joined it yet.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn signs_for_named_federation<R: StateRead>(
    state: &StateDelta<R>,
    signer: &ferry_types::Address,
    msgs: &[ferry_types::Msg],
) -> Result<bool, StateError> {
    for msg in msgs {
        let batch_id = match msg {
            ferry_types::Msg::SubmitSignatures(submit) => submit.batch,
            ferry_types::Msg::AbortBatch(vote) => vote.batch,
            _ => return Ok(false),
        };
        let Some(batch) = state.batch(batch_id)? else { return Ok(false) };
        if batch.release.signer_epoch().is_none() || !signing_federation(state, &batch)?.is_member(signer) {
            return Ok(false);
        }
    }
    Ok(!msgs.is_empty())
}

/// The pegs a Bitcoin release moves coins between.
pub(crate) struct ReleasePegs {
    /// The peg its inputs are at (and its change pays).
    pub from: Peg,
    /// For a migration or a sweep: the peg its one output pays.
    pub to: Option<Peg>,
}

/// The pegs of `release`: a sweep spends a retired peg into the current one, a migration the
/// current peg into the next federation's, anything else spends the current peg. `None` when
/// one of them is gone or the chain has no peg.
///
/// # Errors
/// On storage failure or a corrupt record.
pub(crate) fn release_pegs<R: StateRead>(
    state: &StateDelta<R>,
    release: &BitcoinRelease,
) -> Result<Option<ReleasePegs>, StateError> {
    let current = peg_of(&state.federation()?)?;
    let pegs = match (release.sweep, release.migration) {
        (Some(epoch), _) => {
            let retired = state.retired_federation(epoch)?.as_ref().map(peg_of).transpose()?.flatten();
            retired.map(|from| ReleasePegs { from, to: current })
        }
        (None, Some(_)) => {
            let next = state.next_federation()?.as_ref().map(peg_of).transpose()?.flatten();
            current.map(|from| ReleasePegs { from, to: next })
        }
        (None, None) => current.map(|from| ReleasePegs { from, to: None }),
    };
    Ok(pegs)
}

/// Signatures `batch` needs from `federation` (decodes only the key that signs it).
///
/// # Errors
/// When the stored federation key does not decode.
pub(crate) fn signing_threshold(federation: &Federation, batch: &Batch) -> Result<u32, StateError> {
    Ok(Keys::for_release(federation, &batch.release)?.threshold(batch))
}

/// The federation's decoded keys. Decoding a BLS key set costs about 0.4 ms per coefficient,
/// so callers decode only the key they need, and once per transaction or query.
struct Keys {
    bls: Option<PublicKeySet>,
    peg: Option<Peg>,
}

impl Keys {
    /// Decodes both keys. Genesis validated them, so a failure is a corrupt record.
    fn all(federation: &Federation) -> Result<Keys, StateError> {
        Ok(Keys { bls: bls_key_set(federation)?, peg: peg_of(federation)? })
    }

    /// Decodes the key that signs `release`. Genesis validated it, so a failure is a corrupt record.
    fn for_release(federation: &Federation, release: &BatchRelease) -> Result<Keys, StateError> {
        Ok(match release.parent_chain() {
            ParentChain::Ethereum => Keys { bls: bls_key_set(federation)?, peg: None },
            ParentChain::Bitcoin => Keys { bls: None, peg: peg_of(federation)? },
        })
    }

    /// Signatures `batch` needs (`u32::MAX` when its key was not decoded or does not exist).
    fn threshold(&self, batch: &Batch) -> u32 {
        match batch.release.parent_chain() {
            ParentChain::Ethereum => self.bls.as_ref().map_or(u32::MAX, bls::threshold_signatures),
            ParentChain::Bitcoin => self.peg.as_ref().map_or(u32::MAX, Peg::threshold),
        }
    }
}

/// The federation's BLS key set, if it has one. Genesis or a key generation validated it, so a
/// failure is a corrupt record.
pub(crate) fn bls_key_set(federation: &Federation) -> Result<Option<PublicKeySet>, StateError> {
    federation
        .bls
        .as_ref()
        .map(|bls| bls::decode_public_key_set(&bls.public_key_set))
        .transpose()
        .map_err(|e| corrupt_federation(e.to_string()))
}

/// The `/batch` views of `batches`: each record, its signature count, the threshold and the
/// release quorum. The federation's keys are decoded once for all of them (a sweep's, of a
/// retired federation, for it alone).
///
/// # Errors
/// When the stored federation keys do not decode.
pub fn views<R: StateRead>(state: &StateDelta<R>, batches: Vec<Batch>) -> Result<Vec<BatchView>, StateError> {
    let federation = state.federation()?;
    let keys = Keys::all(&federation)?;
    batches
        .into_iter()
        .map(|batch| {
            // A sweep or a disbursal names the federation that signs it.
            let threshold = match batch.release.signer_epoch() {
                Some(_) => signing_threshold(&signing_federation(state, &batch)?, &batch)?,
                None => keys.threshold(&batch),
            };
            Ok(BatchView {
                signature_count: u32::try_from(batch.signatures.len()).unwrap_or(u32::MAX),
                threshold,
                release_quorum: federation.attest_quorum,
                awaits_exit: crate::btc_exit::gate(state, &batch)?,
                batch,
            })
        })
        .collect()
}

/// A batch's release and items, or why the selection cannot be batched now.
type Release = Result<(BatchRelease, Vec<BatchItem>), String>;

/// A batch about to be recorded.
struct Formed {
    release: BatchRelease,
    items: Vec<BatchItem>,
    total: Amount,
}

/// Forms the batches of the block at `height` when it is a batching height (see the module docs).
///
/// # Errors
/// On storage failure.
pub fn form_batches<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let rules = &params.withdrawals;
    if !rules.is_batch_height(height) {
        return Ok(());
    }
    if let Some(reason) = crate::handover::holding_releases(state)? {
        for denom in state.ledger_denoms()? {
            let held = state.queued_withdrawals(&denom, None, QUEUE_LOOKED_AT)?;
            record_waiting(state, held.into_iter().map(|id| (id, reason.clone())).collect(), events)?;
        }
        return Ok(());
    }
    let federation = state.federation()?;
    let peg = peg_of(&federation)?;
    for denom in state.ledger_denoms()? {
        if state.queued_withdrawal_count(&denom)? == 0 {
            continue;
        }
        if parent_chain_of(&denom) == ParentChain::Bitcoin && crate::btc_exit::busy(state, params)? {
            // One reserve-moving Bitcoin batch at a time while exits are on (crate::btc_exit).
            let reason = "a Bitcoin reserve move is being signed or delivered; with the exit disbursal on, \
                          they go one at a time"
                .to_owned();
            let held = state.queued_withdrawals(&denom, None, QUEUE_LOOKED_AT)?;
            record_waiting(state, held.into_iter().map(|id| (id, reason.clone())).collect(), events)?;
            continue;
        }
        let window = rules.window(height);
        let outflow = state.outflow(&denom, window)?;
        let free = free_reserves(state, &denom)?;
        let (selected, short) = select(state, rules, &denom, outflow, free, height)?;
        record_waiting(state, short.into_iter().collect(), events)?;
        if selected.is_empty() {
            continue;
        }
        let id = state.last_batch_id()?.saturating_add(1);
        let formed = match parent_chain_of(&denom) {
            ParentChain::Ethereum => ethereum_release(rules, &federation, &denom, id, &selected),
            ParentChain::Bitcoin => {
                let selection = bitcoin_release(state, params, peg.as_ref(), &selected)?;
                record_waiting(state, selection.waiting, events)?;
                let Some(release) = selection.release else { continue };
                release
            }
        };
        let (release, items) = match formed {
            Ok(formed) => formed,
            Err(reason) => {
                tracing::info!(asset = %denom, height, withdrawals = selected.len(), %reason, "withdrawals stay queued");
                events.push(Event::new(
                    ev::BATCH_DEFERRED,
                    [
                        (ev::ASSET, denom.to_string()),
                        (ev::ITEMS, selected.len().to_string()),
                        (ev::REASON, reason.clone()),
                    ],
                ));
                // Each withdrawal says why it waits (its status query shows it), not only the event.
                let waiting = selected.iter().map(|withdrawal| (withdrawal.id, reason.clone())).collect();
                record_waiting(state, waiting, events)?;
                continue;
            }
        };
        let total = items
            .iter()
            .try_fold(Amount::ZERO, |sum, item| sum.checked_add(item.amount))
            .map_err(|e| StateError::Corrupt { key: format!("withdrawal_queue/{denom}"), reason: e.to_string() })?;
        record_batch(state, &denom, id, Formed { release, items, total }, height, events)?;
        let outflow = outflow.checked_add(total).unwrap_or(Amount::new(u128::MAX));
        state.put_outflow(&denom, &WindowOutflow { window, amount: outflow });
    }
    Ok(())
}

/// How many queued withdrawals one batch formation looks at, at most: a queue of any length
/// costs a block the same (withdrawals still in their delay are passed over and looked at again
/// at the next batching height).
pub const QUEUE_LOOKED_AT: usize = 1_024;

/// What of `denom`'s reserves a new batch may pay: the reserves less the fee pool (owed to
/// miners) and less what unsettled batches of the asset already pay. A batch never pays more:
/// the vault or the peg would otherwise pay out of coins the chain has not minted for (another
/// deposit still confirming) or has promised to someone else.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn free_reserves<R: StateRead>(state: &StateDelta<R>, denom: &Denom) -> Result<Amount, StateError> {
    let ledger = state.ledger(denom)?;
    let committed = ledger.fee_pool.checked_add(unsettled(state, denom)?.total).unwrap_or(Amount::new(u128::MAX));
    Ok(ledger.reserves.checked_sub(committed).unwrap_or(Amount::ZERO))
}

/// What the unsettled batches of one asset pay out of its reserves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unsettled {
    /// Their totals (what their withdrawals burned; a Bitcoin release's fee comes out of them).
    pub total: Amount,
    /// The most each Bitcoin batch's versions pay miners, summed (a consolidation's fee is paid
    /// on top of its zero total, from the fee pool).
    pub max_fees: Amount,
}

impl Unsettled {
    /// The most these batches can take out of the parent chain's holdings before they settle.
    pub fn outflow(&self) -> Amount {
        self.total.checked_add(self.max_fees).unwrap_or(Amount::new(u128::MAX))
    }
}

/// The unsettled batches of `denom`, summed.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn unsettled<R: StateRead>(state: &StateDelta<R>, denom: &Denom) -> Result<Unsettled, StateError> {
    let saturating = |a: Amount, b: Amount| a.checked_add(b).unwrap_or(Amount::new(u128::MAX));
    let mut sum = Unsettled::default();
    for id in state.pending_batches()? {
        let Some(batch) = state.batch(id)?.filter(|batch| &batch.asset == denom) else { continue };
        let max_fee = batch.bitcoin_versions().into_iter().map(|(_, _, plan)| plan.fee()).max().unwrap_or(Amount::ZERO);
        sum.total = saturating(sum.total, batch.total);
        sum.max_fees = saturating(sum.max_fees, max_fee);
    }
    Ok(sum)
}

/// A queued withdrawal left out of a batch, and why (shown in its status and event).
type Waiting = (WithdrawalId, String);

/// The queued withdrawals of `denom` the next batch takes (see the module docs), and the first
/// one left out because the free reserves cannot pay it, with why (it waits; the queue keeps its
/// order).
fn select<R: StateRead>(
    state: &StateDelta<R>,
    rules: &WithdrawalParams,
    denom: &Denom,
    outflow: Amount,
    free: Amount,
    height: u64,
) -> Result<(Vec<Withdrawal>, Option<Waiting>), StateError> {
    let Some(limit) = rules.limit(denom) else { return Ok((Vec::new(), None)) };
    let max_items = usize::try_from(rules.max_batch_items).unwrap_or(usize::MAX);
    let mut selected = Vec::new();
    let mut total = outflow;
    let mut paid = Amount::ZERO;
    let mut looked_at = 0;
    let mut after = None;
    while selected.len() < max_items && looked_at < QUEUE_LOOKED_AT {
        let page = state.queued_withdrawals(denom, after, max_items)?;
        let Some(last) = page.last() else { break };
        after = Some(*last);
        for id in page {
            looked_at += 1;
            if selected.len() >= max_items {
                break;
            }
            let withdrawal = state.withdrawal(id)?.ok_or_else(|| StateError::Corrupt {
                key: format!("withdrawal_queue/{denom}"),
                reason: format!("queued {id} has no record"),
            })?;
            if withdrawal.eligible_height > height {
                continue;
            }
            match total.checked_add(withdrawal.amount) {
                Ok(next) if next <= limit.window_cap => total = next,
                _ => return Ok((selected, None)),
            }
            match paid.checked_add(withdrawal.amount) {
                Ok(next) if next <= free => paid = next,
                _ => {
                    let reason = format!(
                        "waits for reserves: {free}{denom} free of the bridge's reserves (after unsettled batches and the fee pool), {paid}{denom} already taken by this batch, {}{denom} needed",
                        withdrawal.amount
                    );
                    return Ok((selected, Some((withdrawal.id, reason))));
                }
            }
            selected.push(withdrawal);
        }
    }
    Ok((selected, None))
}

fn ethereum_release(
    rules: &WithdrawalParams,
    federation: &Federation,
    denom: &Denom,
    id: u64,
    selected: &[Withdrawal],
) -> Release {
    let Some(bridge) = &rules.ethereum else {
        return Err("Ethereum releases are not configured (params.withdrawals.ethereum)".to_owned());
    };
    let token = erc20_token(denom).unwrap_or(EthAddress::ZERO);
    let mut eth_items = Vec::with_capacity(selected.len());
    let mut items = Vec::with_capacity(selected.len());
    for withdrawal in selected {
        // Destinations were checked when the withdrawal was accepted.
        let Ok(recipient) = withdrawal.destination.parse::<EthAddress>() else {
            return Err(format!("{} has a malformed destination", withdrawal.id));
        };
        eth_items.push(EthReleaseItem { token, recipient, amount: withdrawal.amount });
        items.push(item(withdrawal, withdrawal.amount));
    }
    let batch = EthBatch {
        chain_id: bridge.chain_id,
        vault: bridge.vault,
        epoch: federation.epoch,
        nonce: id,
        // The root of the claims this block leaves, attached at the block's end
        // (`exit_claims::attach_root`): the batch's withdrawals name its nonce there.
        exit_height: 0,
        exit_root: [0; 32],
        items: eth_items,
    };
    let payload = hex::encode(batch.payload());
    Ok((BatchRelease::Ethereum(EthereumRelease { batch, payload, signature: None, signature_compressed: None }), items))
}

fn item(withdrawal: &Withdrawal, paid: Amount) -> BatchItem {
    BatchItem {
        withdrawal: withdrawal.id,
        destination: withdrawal.destination.clone(),
        amount: withdrawal.amount,
        paid,
    }
}

/// A Bitcoin batch's release and items at the chain's fee rate, and the selected withdrawals
/// left out because they cannot pay their share (each with why).
struct BitcoinSelection {
    /// `None` when every selected withdrawal waits.
    release: Option<Release>,
    waiting: Vec<Waiting>,
}

/// Plans the Bitcoin release of `selected` at the chain's rate: a withdrawal whose fee share is
/// above its budget, or whose output would be dust, is left out (it waits, the others go); when
/// the free reserves cannot pay the rest, or the release would not be standard, the selection is
/// halved until it fits.
fn bitcoin_release<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    peg: Option<&Peg>,
    selected: &[Withdrawal],
) -> Result<BitcoinSelection, StateError> {
    let Some(peg) = peg else {
        let release = Some(Err("this chain has no Bitcoin peg".to_owned()));
        return Ok(BitcoinSelection { release, waiting: Vec::new() });
    };
    // Coin selection takes the largest first and at most MAX_RELEASE_INPUTS of them: only those
    // are read, however many the reserves hold.
    let free: Vec<_> =
        state.free_reserve_utxos(true, MAX_RELEASE_INPUTS)?.iter().map(crate::bridge::ReserveUtxo::utxo).collect();
    let rate = state.bitcoin_fee_rate(params)?;
    let dust_limit = params.withdrawals.bitcoin_dust_limit;
    let mut candidates: Vec<&Withdrawal> = selected.iter().collect();
    let mut waiting = Vec::new();
    let mut count = candidates.len();
    let release = loop {
        let chosen = candidates.get(..count).unwrap_or(&candidates);
        if chosen.is_empty() {
            break None;
        }
        let requests: Vec<ReleaseRequest> = chosen.iter().map(|withdrawal| ReleaseRequest::from(*withdrawal)).collect();
        match anchored(state, &free, &requests, rate, peg, dust_limit)? {
            Ok(priced) => break Some(bitcoin_batch(priced, chosen, rate, peg)),
            Err(error) => match error.blocking_output() {
                Some(index) if index < candidates.len() => {
                    let left_out = candidates.remove(index);
                    waiting.push((left_out.id, error.to_string()));
                    count = count.saturating_sub(1);
                }
                _ if error.must_wait() && count > 1 => count /= 2,
                _ => break Some(Err(error.to_string())),
            },
        }
    };
    Ok(BitcoinSelection { release, waiting })
}

/// Plans the release of `requests` from `free` ([`plan_release_at_rate`]) so that it spends at
/// least one input of the covering exit disbursal, which its confirmation then kills: when coin
/// selection over every free UTXO takes none of them (larger deposits arrived since), the covered
/// UTXOs alone are tried; when they cannot pay, the plan over all stands and the old disbursal
/// stays valid until a later release spends its inputs ([`crate::btc_exit::settled`] says so).
fn anchored<R: StateRead>(
    state: &StateDelta<R>,
    free: &[Utxo],
    requests: &[ReleaseRequest],
    rate: FeeRate,
    peg: &Peg,
    dust_limit: Amount,
) -> Result<Result<PricedRelease, BtcReleaseError>, StateError> {
    let planned = plan_release_at_rate(free, requests, rate, peg, dust_limit);
    let covered = crate::btc_exit::covered_among(state, free)?;
    let anchored = |priced: &PricedRelease| {
        priced.plan.inputs().iter().any(|input| covered.iter().any(|c| c.txid == input.txid && c.vout == input.vout))
    };
    Ok(match planned {
        Ok(priced) if !covered.is_empty() && !anchored(&priced) => {
            plan_release_at_rate(&covered, requests, rate, peg, dust_limit).or(Ok(priced))
        }
        planned => planned,
    })
}

/// The batch's release and items from a priced plan of `chosen` (in output order).
fn bitcoin_batch(priced: PricedRelease, chosen: &[&Withdrawal], rate: FeeRate, peg: &Peg) -> Release {
    let plan = priced.plan;
    let items = chosen.iter().zip(plan.outputs()).map(|(withdrawal, output)| item(withdrawal, output.amount)).collect();
    let release = BitcoinRelease::new(plan, rate, peg).map_err(|error| error.to_string())?;
    Ok((BatchRelease::Bitcoin(release), items))
}

/// Records why each of `waiting` was left out of its batch; the event marks when one starts waiting.
fn record_waiting<R: StateRead>(
    state: &mut StateDelta<R>,
    waiting: Vec<Waiting>,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    for (id, reason) in waiting {
        let Some(mut withdrawal) = state.withdrawal(id)? else { continue };
        if withdrawal.waiting.as_deref() == Some(reason.as_str()) {
            continue;
        }
        if withdrawal.waiting.is_none() {
            tracing::info!(withdrawal_id = %id, %reason, "withdrawal waits");
            events.push(Event::new(
                ev::WITHDRAWAL_WAITING,
                [(ev::WITHDRAWAL_ID, id.to_string()), (ev::REASON, reason.clone())],
            ));
        }
        withdrawal.waiting = Some(reason);
        state.put_withdrawal(&withdrawal);
    }
    Ok(())
}

/// Records a batch without withdrawals and with a total of zero — a consolidation
/// ([`crate::consolidation`]) or a listing change ([`crate::listing`]) — whose release
/// `release_for` builds from the new batch id; returns that id.
///
/// # Errors
/// On storage failure.
pub(crate) fn record_itemless<R: StateRead>(
    state: &mut StateDelta<R>,
    denom: &Denom,
    release_for: impl FnOnce(u64) -> BatchRelease,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<u64, StateError> {
    let id = state.last_batch_id()?.saturating_add(1);
    let formed = Formed { release: release_for(id), items: Vec::new(), total: Amount::ZERO };
    record_batch(state, denom, id, formed, height, events)?;
    Ok(id)
}

fn record_batch<R: StateRead>(
    state: &mut StateDelta<R>,
    denom: &Denom,
    id: u64,
    formed: Formed,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let Formed { release, items, total } = formed;
    let batched: BTreeSet<_> = items.iter().map(|item| item.withdrawal).collect();
    for withdrawal_id in &batched {
        if let Some(mut withdrawal) = state.withdrawal(*withdrawal_id)? {
            withdrawal.batch = Some(id);
            withdrawal.waiting = None;
            state.put_withdrawal(&withdrawal);
        }
    }
    for withdrawal_id in &batched {
        state.dequeue_withdrawal(denom, *withdrawal_id)?;
    }
    if let BatchRelease::Bitcoin(bitcoin) = &release {
        crate::bridge::lock_reserve_utxos(state, bitcoin.plan.inputs(), Some(id))?;
    }
    state.put_entry(&keys::pending_batches(), &id.to_be_bytes(), &id)?;
    state.put_record(keys::LAST_BATCH.to_vec(), &id);
    events.push(Event::new(
        ev::BATCH_CREATED,
        [
            (ev::BATCH_ID, id.to_string()),
            (ev::ASSET, denom.to_string()),
            (ev::ITEMS, items.len().to_string()),
            (ev::AMOUNT, format!("{total}{denom}")),
        ],
    ));
    tracing::info!(batch_id = id, asset = %denom, items = items.len(), %total, height, "batch formed");
    let batch = Batch {
        id,
        asset: denom.clone(),
        status: BatchStatus::Signing,
        items,
        total,
        created_height: height,
        signed_height: None,
        released_height: None,
        release,
        signatures: BTreeMap::new(),
        release_attestations: BTreeMap::new(),
        release_heights: BTreeMap::new(),
        abort_votes: BTreeMap::new(),
        aborted: None,
        release_tx: None,
    };
    if matches!(batch.release, BatchRelease::Bitcoin(_)) {
        let params = state.params()?;
        crate::btc_exit::derive_for(state, &params, &batch, height, events)?;
    }
    state.put_batch(&batch);
    Ok(())
}

/// Checks and records a member's signatures for a batch; at the threshold the batch is signed.
///
/// Refused while the bridge is paused. Signatures for a batch that is already signed or released,
/// and a member's repeat submission, are checked and then ignored.
///
/// # Errors
/// `BridgePaused`; `BadBatch` (no such batch); `InvalidMessage` (a BLS share for a Bitcoin batch
/// or the reverse); `InvalidReleaseSignature` naming the share or input that does not verify;
/// storage failures.
pub fn submit_signatures<R: StateRead>(
    state: &mut StateDelta<R>,
    submit: &MsgSubmitSignatures,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    crate::pause::ensure_running(state)?;
    let Some(mut batch) = state.batch(submit.batch)? else {
        return Err(refused(TxCode::BadBatch, format!("there is no batch {}", submit.batch)));
    };
    let federation = signing_federation(state, &batch)?;
    let keys = Keys::for_release(&federation, &batch.release)?;
    let Some(member) = federation.member_index(&submit.signer) else {
        let of = batch
            .release
            .signer_epoch()
            .map_or(String::new(), |epoch| format!(" of epoch {epoch}, which signs this batch"));
        return Err(refused(TxCode::Unauthorized, format!("{} is not a member of the federation{of}", submit.signer)));
    };
    let signatures = verify(&keys, &batch, member, &submit.signer, &submit.signatures)?;
    if batch.status != BatchStatus::Signing || batch.signatures.contains_key(&submit.signer) {
        return Ok(());
    }
    if let Some(exit) = crate::btc_exit::gate(state, &batch)? {
        return Err(refused(
            TxCode::BadBatch,
            format!(
                "batch {} waits for its exit disbursal (batch {exit}) to be signed: the reserve it leaves must have a signed exit first",
                batch.id
            ),
        ));
    }
    batch.signatures.insert(submit.signer, signatures);
    let threshold = keys.threshold(&batch);
    let count = u32::try_from(batch.signatures.len()).unwrap_or(u32::MAX);
    events.push(Event::new(
        ev::SIGNATURES_SUBMITTED,
        [
            (ev::BATCH_ID, batch.id.to_string()),
            (ev::SIGNER, submit.signer.to_string()),
            (ev::SIGNATURES, count.to_string()),
            (ev::THRESHOLD, threshold.to_string()),
        ],
    ));
    if count >= threshold {
        if let (Some(message), Some(key_set)) = (batch.release.bls_message(), &keys.bls) {
            let signature = combine(&federation, key_set, &batch.signatures, &message)?;
            batch.release.set_bls_signature(
                hex::encode(bls::eip2537_g2(&signature)),
                hex::encode(bls::encode_signature(&signature)),
            );
        }
        if let BatchRelease::Bitcoin(release) = &mut batch.release {
            let clock = crate::bitcoin_fees::clock_height(state)?;
            release.signed_parent_height = release.signed_parent_height.or(clock);
            release.bump_parent_height = clock;
        }
        batch.status = BatchStatus::Signed;
        batch.signed_height = Some(height);
        crate::btc_exit::signed(state, &batch)?;
        events.push(Event::new(ev::BATCH_SIGNED, [(ev::BATCH_ID, batch.id.to_string())]));
        tracing::info!(batch_id = batch.id, signatures = count, height, "batch signed");
    }
    state.put_batch(&batch);
    Ok(())
}

/// Checks `signatures` by member `member` (`signer`) for `batch`; returns them as stored (hex).
fn verify(
    keys: &Keys,
    batch: &Batch,
    member: usize,
    signer: &ferry_types::Address,
    signatures: &ReleaseSignatures,
) -> Result<Vec<String>, BankError> {
    let bad = |log: String| refused(TxCode::InvalidReleaseSignature, log);
    match (&batch.release, batch.release.bls_message(), signatures) {
        (_, Some(message), ReleaseSignatures::Bls(bytes)) => {
            let Some(key_set) = &keys.bls else {
                return Err(refused(TxCode::BadBatch, "the federation has no BLS key set"));
            };
            let share = bls::decode_signature_share(bytes)
                .map_err(|e| bad(format!("BLS share of member {member} ({signer}) for batch {}: {e}", batch.id)))?;
            let index = u64::try_from(member).unwrap_or(u64::MAX);
            if !bls::verify_share(key_set, index, &share, &message) {
                return Err(bad(format!(
                    "BLS share of member {member} ({signer}) does not verify over batch {}'s payload",
                    batch.id
                )));
            }
            Ok(vec![hex::encode(bytes)])
        }
        (release, _, ReleaseSignatures::Bitcoin(ders)) if release.parent_chain() == ParentChain::Bitcoin => {
            let Some(peg) = &keys.peg else {
                return Err(refused(TxCode::BadBatch, "this chain has no Bitcoin peg"));
            };
            let sighashes = release.bitcoin_sighashes().unwrap_or_default();
            if ders.len() != sighashes.len() {
                return Err(bad(format!(
                    "batch {} spends {} inputs; member {member} ({signer}) gave {} signatures",
                    batch.id,
                    sighashes.len(),
                    ders.len()
                )));
            }
            for (input, (der, sighash)) in ders.iter().zip(sighashes).enumerate() {
                let sighash: [u8; 32] =
                    hex::decode(sighash).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
                        refused(TxCode::BadBatch, format!("batch {} holds a malformed sighash", batch.id))
                    })?;
                ferry_types::release::bitcoin::verify_input_signature(peg, member, &sighash, der)
                    .map_err(|e| bad(format!("batch {} input {input}: {e}", batch.id)))?;
            }
            Ok(ders.iter().map(hex::encode).collect())
        }
        (_, _, ReleaseSignatures::Bitcoin(_)) => Err(refused(
            TxCode::InvalidMessage,
            format!("batch {} is an Ethereum batch: submit a BLS share, not Bitcoin signatures", batch.id),
        )),
        (_, None, ReleaseSignatures::Bls(_)) => Err(refused(
            TxCode::InvalidMessage,
            format!("batch {} is a Bitcoin batch: submit one signature per input, not a BLS share", batch.id),
        )),
    }
}

/// Combines the recorded (already verified) shares into the federation signature.
fn combine(
    federation: &Federation,
    key_set: &PublicKeySet,
    recorded: &BTreeMap<ferry_types::Address, Vec<String>>,
    message: &[u8],
) -> Result<bls::Signature, BankError> {
    let mut shares = BTreeMap::new();
    for (member, stored) in recorded {
        let share = federation
            .member_index(member)
            .and_then(|index| u64::try_from(index).ok())
            .zip(stored.first().and_then(|text| hex::decode(text).ok()))
            .and_then(|(index, bytes)| Some((index, bls::decode_signature_share(&bytes).ok()?)));
        if let Some((index, share)) = share {
            shares.insert(index, share);
        }
    }
    bls::combine(key_set, &shares, message)
        .map_err(|e| refused(TxCode::InvalidReleaseSignature, format!("combining batch shares: {e}")))
}

/// Records a member's attestation that `attest.parent_tx` released the batch; when `quorum`
/// members attested the same transaction the batch settles. Accepted while the bridge is paused
/// (the funds have left). A member's first attestation counts; later ones, and attestations of a
/// batch already released, are ignored.
///
/// # Errors
/// `BadBatch` (no such batch, not signed yet, or a Bitcoin txid other than the batch's);
/// `InvalidMessage` (a transaction id of the other chain's form); storage failures.
pub fn attest_release<R: StateRead>(
    state: &mut StateDelta<R>,
    attest: &MsgAttestRelease,
    params: &Params,
    quorum: u32,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let Some(mut batch) = state.batch(attest.batch)? else {
        return Err(refused(TxCode::BadBatch, format!("there is no batch {}", attest.batch)));
    };
    // Any signed version of a Bitcoin release may be the one that confirmed: the current one once
    // the batch is signed, any version it replaced at any time.
    let replaced = matches!(&batch.release, BatchRelease::Bitcoin(release)
        if release.superseded.iter().any(|version| version.txid == attest.parent_tx));
    match &batch.release {
        BatchRelease::Bitcoin(release)
            if !batch.bitcoin_versions().iter().any(|(_, txid, _)| *txid == attest.parent_tx) =>
        {
            return Err(refused(
                TxCode::BadBatch,
                format!("batch {}'s release transaction is {}, not {}", batch.id, release.txid, attest.parent_tx),
            ));
        }
        BatchRelease::BitcoinExit(_) => {
            return Err(refused(
                TxCode::BadBatch,
                format!("batch {} is an exit disbursal: it is kept, not released by the federation", batch.id),
            ));
        }
        release if release.parent_chain() == ParentChain::Ethereum && !attest.parent_tx.starts_with("0x") => {
            return Err(refused(
                TxCode::InvalidMessage,
                format!(
                    "batch {} is released on Ethereum; `{}` is not a 0x transaction hash",
                    batch.id, attest.parent_tx
                ),
            ));
        }
        _ => {}
    }
    match batch.status {
        BatchStatus::Released => return Ok(()),
        BatchStatus::Aborted => {
            return Err(refused(
                TxCode::BadBatch,
                format!("batch {} was aborted; nothing of it was released", batch.id),
            ));
        }
        BatchStatus::Signing if !replaced => {
            return Err(refused(
                TxCode::BadBatch,
                format!("batch {} is not signed yet, so it cannot have been released", batch.id),
            ));
        }
        BatchStatus::Signing | BatchStatus::Signed => {}
    }
    if batch.release_attestations.contains_key(&attest.attester) {
        return Ok(());
    }
    batch.release_attestations.insert(attest.attester, attest.parent_tx.clone());
    if attest.parent_height > 0 {
        batch.release_heights.insert(attest.attester, attest.parent_height);
    }
    let agreeing = batch.release_attestations.values().filter(|tx| **tx == attest.parent_tx).count();
    events.push(Event::new(
        ev::RELEASE_ATTESTED,
        [
            (ev::BATCH_ID, batch.id.to_string()),
            (ev::ATTESTER, attest.attester.to_string()),
            (ev::PARENT_TX, attest.parent_tx.clone()),
            (ev::ATTESTATIONS, agreeing.to_string()),
            (ev::QUORUM, quorum.to_string()),
        ],
    ));
    if u32::try_from(agreeing).unwrap_or(u32::MAX) >= quorum {
        settle(state, params, &mut batch, &attest.parent_tx, height, events)?;
    }
    state.put_batch(&batch);
    Ok(())
}

/// Marks `batch` released by `parent_tx` and takes its total out of the ledger (and, for
/// Bitcoin, swaps its inputs for its change in the reserve UTXO set, and records what the
/// version that confirmed paid each item).
fn settle<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    batch: &mut Batch,
    parent_tx: &str,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    batch.status = BatchStatus::Released;
    batch.released_height = Some(height);
    batch.release_tx = Some(parent_tx.to_owned());

    let mut ledger = state.ledger(&batch.asset)?;
    // Reserves below a confirmed release would already break the invariant, which the end of the
    // block reports by pausing; settling must not fail, since the funds have left.
    ledger.reserves = ledger.reserves.checked_sub(batch.total).unwrap_or(Amount::ZERO);
    ledger.unreleased = ledger.unreleased.checked_sub(batch.total).unwrap_or(Amount::ZERO);
    state.put_ledger(&batch.asset, &ledger)?;

    let confirmed = batch
        .bitcoin_versions()
        .into_iter()
        .find(|(_, txid, _)| *txid == parent_tx)
        .map(|(version, _, plan)| (version, plan.clone()));
    if let Some((version, plan)) = &confirmed {
        for input in plan.inputs() {
            state.remove_reserve_utxo(&input.txid, input.vout)?;
        }
        if let (Some(vout), Some(amount)) = (plan.change_vout(), plan.change()) {
            state.put_reserve_utxo(&crate::bridge::ReserveUtxo {
                txid: parent_tx.to_owned(),
                vout,
                amount,
                locked_by: None,
                owner: None,
                retired_epoch: None,
            })?;
        }
        for (item, output) in batch.items.iter_mut().zip(plan.outputs()) {
            item.paid = output.amount;
        }
        if crate::consolidation::is_consolidation(batch) {
            crate::consolidation::settled(state, plan.fee())?;
        }
        crate::btc_exit::settled(state, batch, *version, plan.inputs(), height, events)?;
        tracing::info!(batch_id = batch.id, version, fee = %plan.fee(), "the release's version {version} confirmed");
    }
    state.remove_pending_batch(batch.id)?;
    crate::bitcoin_fees::release_settled(state, params, batch, height, events)?;
    crate::listing::settled(state, batch, events)?;
    crate::vault_heartbeat::settled(state, batch, height, events)?;
    crate::handover::settled(state, batch, confirmed.as_ref().map(|(_, plan)| (parent_tx, plan)), height, events)?;
    events.push(Event::new(
        ev::BATCH_RELEASED,
        [
            (ev::BATCH_ID, batch.id.to_string()),
            (ev::PARENT_TX, parent_tx.to_owned()),
            (ev::AMOUNT, format!("{}{}", batch.total, batch.asset)),
        ],
    ));
    tracing::info!(batch_id = batch.id, %parent_tx, total = %batch.total, asset = %batch.asset, height, "batch released");
    Ok(())
}
