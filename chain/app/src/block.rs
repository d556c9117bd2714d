//! FinalizeBlock: every transaction of a decided block, in order, re-validated from scratch.
//!
//! Signature checks are pure, so they run in parallel ahead of the sequential execution, against
//! the account numbers at the start of the block. Execution re-checks a signature itself when the
//! account number changed in between (an account created earlier in the same block), so the result
//! is identical to a purely sequential run on every machine.
//!
//! After the transactions, the end of the block: the reserves invariant is checked (a violation
//! pauses the bridge), then, at batching heights and unless the bridge is paused, release batches
//! form. Their events are the block's own events.

use std::collections::BTreeSet;

use ferry_types::{DecodedTx, Msg, TxCode, TxRejection};
use rayon::prelude::*;

use crate::event::Event;
use crate::execute::{Executed, PreVerified, TxContext, execute};
use crate::signature_cache::SignatureCache;
use crate::state::{ChangeSet, StateDelta, StateError, StateRead};

/// A decided block, as the state machine needs it.
#[derive(Clone, Debug)]
pub struct BlockInput<'a> {
    /// Block height.
    pub height: u64,
    /// Block time, seconds since the Unix epoch (from the block header, never the local clock).
    pub time_unix: i64,
    /// This chain's id.
    pub chain_id: &'a str,
    /// Raw transactions, in block order.
    pub txs: &'a [&'a [u8]],
    /// The exit tree over the committed claims ([`crate::exit_claims::ClaimTree`], kept by the
    /// node): the block learns the root of the claims it leaves from it.
    pub claims: &'a dyn crate::exit_claims::ClaimRoots,
}

/// The result of one transaction in a block.
pub type TxOutcome = Executed;

/// Everything a block produced.
#[derive(Clone, Debug, Default)]
pub struct BlockOutcome {
    /// One outcome per transaction, in block order.
    pub tx_results: Vec<TxOutcome>,
    /// Block-level events.
    pub events: Vec<Event>,
    /// The block's writes, to be hashed into the app hash and persisted at Commit.
    pub changes: ChangeSet,
}

/// Executes a decided block on top of `base` (the state committed at `height - 1`).
///
/// # Errors
/// Only on storage failure: the node must not commit a block it could not execute.
pub fn finalize_block<R: StateRead + Sync>(
    base: &R,
    block: &BlockInput<'_>,
    signatures: &SignatureCache,
) -> Result<BlockOutcome, StateError> {
    let mut state = StateDelta::new(base);
    let params = state.params()?;

    let decoded: Vec<Result<DecodedTx, TxRejection>> =
        block.txs.par_iter().map(|bytes| DecodedTx::decode(bytes, params.max_tx_bytes)).collect();

    // Account numbers at the start of the block, for the parallel signature pass.
    let mut account_numbers = Vec::with_capacity(decoded.len());
    for tx in &decoded {
        let number = match tx {
            Ok(tx) => state.account(&tx.signer)?.map(|record| record.account_number),
            Err(_) => None,
        };
        account_numbers.push(number);
    }
    let pre_verified: Vec<Option<PreVerified>> = decoded
        .par_iter()
        .zip(account_numbers.par_iter())
        .map(|(tx, number)| match (tx, number) {
            (Ok(tx), Some(account_number)) if !signatures.contains(&tx.hash, *account_number) => Some(PreVerified {
                account_number: *account_number,
                result: tx.verify_signature(block.chain_id, *account_number),
            }),
            _ => None,
        })
        .collect();

    let context = TxContext { chain_id: block.chain_id, params: &params, signatures, height: block.height };
    let mut tx_results = Vec::with_capacity(decoded.len());
    for (tx, pre) in decoded.iter().zip(&pre_verified) {
        let outcome = match tx {
            Ok(tx) => execute(&mut state, &context, tx, pre.as_ref())?,
            Err(rejection) => Executed { code: rejection.code, log: rejection.log.clone(), events: Vec::new() },
        };
        if outcome.code != TxCode::Ok {
            tracing::debug!(height = block.height, code = outcome.code.name(), log = %outcome.log, "transaction refused in block");
        }
        tx_results.push(outcome);
    }
    let mut events = Vec::new();
    end_block(&mut state, &params, block, &mut events)?;
    Ok(BlockOutcome { tx_results, events, changes: state.into_writes() })
}

/// One pass over the unsettled batches: a stuck Bitcoin release is replaced, a batch unsigned for
/// too long is aborted (each batch is read, and written if it changed, once).
fn tend_pending_batches<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &ferry_types::Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let clock = state.bitcoin_clock()?.height;
    for id in state.pending_batches()? {
        let Some(mut batch) = state.batch(id)? else { continue };
        let version = bitcoin_version(&batch);
        let changed = crate::replacement::replace_if_due(state, params, &mut batch, clock, height, events)?
            || crate::abort::abort_if_expired(state, params, &mut batch, height, events)?;
        if bitcoin_version(&batch) != version {
            // A new version leaves a new change output: it gets its own exit disbursal.
            crate::btc_exit::derive_for(state, params, &batch, height, events)?;
        }
        if changed {
            state.put_batch(&batch);
        }
    }
    Ok(())
}

/// The version of a Bitcoin release (`None` for any other batch).
fn bitcoin_version(batch: &ferry_types::query::Batch) -> Option<u32> {
    match &batch.release {
        ferry_types::query::BatchRelease::Bitcoin(release) => Some(release.version),
        _ => None,
    }
}

/// The end of a block: the invariant first, so a violation this block introduced stops new
/// batches at once; then, unless the bridge is paused, batching, consolidating fragmented Bitcoin
/// reserves, replacing stuck Bitcoin releases, aborting batches unsigned for too long and moving
/// a federation hand-over on; then a reserves round opens when one is due (paused or not: a
/// paused bridge still wants to know what the parent chains hold), after the batches it must
/// allow for were formed; then a key generation's phase closes when its time is up, a heartbeat
/// round opens when due, and a scheduled parameter change is written for the next block; last,
/// the exit claims follow everything the block wrote, their root is recorded and given to the
/// Ethereum batches formed, and a vault heartbeat forms when due (paused or not).
fn end_block<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &ferry_types::Params,
    block: &BlockInput<'_>,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let height = block.height;
    crate::reserves::check_invariant(state, height, events)?;
    if !state.bridge_status()?.paused {
        crate::batch::form_batches(state, params, height, events)?;
        crate::consolidation::consolidate(state, params, height, events)?;
        crate::btc_exit::refresh_if_due(state, params, height, events)?;
        tend_pending_batches(state, params, height, events)?;
        crate::handover::advance(state, params, height, events)?;
        crate::handover::sweep_retired(state, params, height, events)?;
    }
    crate::reserves_check::open_round_if_due(state, params, height, events)?;
    crate::dkg::advance(state, params, height, events)?;
    crate::liveness::open_round_if_due(state, params, block, events)?;
    crate::governance::apply_due(state, height, events)?;
    crate::btc_exit::refresh_holders(state)?;
    let root = crate::exit_claims::close_block(state, height, block.claims)?;
    crate::vault_heartbeat::form_if_due(state, params, height, root, events)
}

/// The share of a proposal's bytes kept for federation duties first, in percent.
pub const DUTY_SHARE_PERCENT: usize = 50;

/// The order a proposer offers the mempool's `txs` in, as indices into `txs`, within `max_bytes`:
/// federation duties first (attestations, signatures, votes — what moves money between the
/// chains), up to [`DUTY_SHARE_PERCENT`] of the space; then everything else in arrival order;
/// then the remaining duties while they fit. Paid traffic, however much, cannot starve duties,
/// and duties cannot take the whole block. A signer's transactions keep their order (a duty
/// after a non-duty of the same signer, or after one of its duties that did not fit the share,
/// waits with the rest), so sequences stay in order.
pub fn proposal_order(txs: &[&[u8]], max_bytes: usize, max_tx_bytes: u64) -> Vec<usize> {
    let duty_space = max_bytes.saturating_mul(DUTY_SHARE_PERCENT) / 100;
    let mut first = Vec::new();
    let mut later_duties = Vec::new();
    let mut rest = Vec::new();
    let mut first_bytes = 0usize;
    let mut held_back = BTreeSet::new();
    for (index, bytes) in txs.iter().enumerate() {
        let Ok(tx) = DecodedTx::decode(bytes, max_tx_bytes) else {
            rest.push(index);
            continue;
        };
        let duty = !tx.msgs.is_empty() && tx.msgs.iter().all(Msg::is_duty);
        if !duty {
            held_back.insert(tx.signer);
            rest.push(index);
        } else if !held_back.contains(&tx.signer) && first_bytes.saturating_add(bytes.len()) <= duty_space {
            first_bytes = first_bytes.saturating_add(bytes.len());
            first.push(index);
        } else {
            held_back.insert(tx.signer);
            later_duties.push(index);
        }
    }
    let mut used = 0usize;
    first
        .into_iter()
        .chain(rest)
        .chain(later_duties)
        .take_while(|index| {
            used = used.saturating_add(txs.get(*index).map_or(0, |tx| tx.len()));
            used <= max_bytes
        })
        .collect()
}
