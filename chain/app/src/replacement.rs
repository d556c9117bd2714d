//! Replacing stuck Bitcoin releases (BIP 125), scheduled by the chain.
//!
//! At the end of every block (not while paused), each signed Bitcoin release whose newest
//! version has waited `bitcoin_bump_after_blocks` parent blocks by the parent clock
//! ([`crate::bitcoin_fees`]) without settling gets a next version, priced by
//! [`price_replacement`]: the same inputs, change and destinations; the rate raised to at least
//! ×1.25 and +1 sat/vB ([`bumped_rate`]), or to the chain's current rate if that is higher,
//! within the ceiling; each withdrawal's share capped by its `max_fee` and never below its
//! previous share; a fee nodes will accept as a replacement.
//!
//! The version it replaces is kept, with its signatures, in `superseded`: relayers keep
//! broadcasting the newest signed version, and whichever version confirms settles the batch —
//! they spend the same inputs, so only one can. The batch goes back to `signing` for the new
//! version; members sign it like any batch, and their signers check its lineage first.
//!
//! When no replacement is possible (the rate at its ceiling, or the budgets spent), the batch
//! keeps its signed versions and records why (`bump_blocked`); it is tried again one bump
//! period later.

use ferry_types::event as ev;
use ferry_types::query::{Batch, BatchRelease, BatchStatus, SignedBitcoinVersion};
use ferry_types::release::bitcoin::{
    ReleasePlan, ReleaseRequest, plan_consolidation, price_replacement, sighashes, unsigned_transaction,
};
use ferry_types::release::fee::{FeeRate, bumped_rate};
use ferry_types::release::standardness::min_relay_fee;
use ferry_types::{Amount, Params, peg::Peg};

use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// Replaces every signed Bitcoin release that waited a bump period (see the module docs).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn replace_stuck_releases<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let clock = state.bitcoin_clock()?.height;
    if clock == 0 {
        return Ok(());
    }
    let mut peg = None;
    for id in state.pending_batches()? {
        let Some(mut batch) = state.batch(id)? else { continue };
        let due = match &batch.release {
            BatchRelease::Bitcoin(release) if batch.status == BatchStatus::Signed => release
                .bump_parent_height
                .is_some_and(|since| clock >= since.saturating_add(params.withdrawals.bitcoin_bump_after_blocks)),
            _ => false,
        };
        if !due {
            continue;
        }
        if peg.is_none() {
            peg = crate::batch::peg_of(&state.federation()?)?;
        }
        let Some(peg) = &peg else { return Ok(()) };
        replace(state, params, peg, &mut batch, clock, height, events)?;
        state.put_batch(&batch);
    }
    Ok(())
}

/// A consolidation's replacement: the same inputs at `rate`, its fee at least the incremental
/// relay fee above the previous one and within the fee pool.
fn replace_consolidation(
    previous: &ReleasePlan,
    rate: FeeRate,
    peg: &Peg,
    dust_limit: Amount,
    pool: Amount,
) -> Result<ReleasePlan, String> {
    let plan = plan_consolidation(previous.inputs(), rate, peg, dust_limit).map_err(|e| e.to_string())?;
    let increment = u128::from(min_relay_fee(plan.max_vsize(peg)).to_sat());
    let needed = previous.fee().get().saturating_add(increment);
    if plan.fee().get() < needed {
        return Err(format!("a replacement at {rate} pays {} sat; nodes replace only for {needed} sat", plan.fee()));
    }
    if plan.fee() > pool {
        return Err(format!("the fee pool holds {pool} sat, less than the replacement's {} sat", plan.fee()));
    }
    Ok(plan)
}

/// Forms `batch`'s next version, or records why it cannot.
fn replace<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    peg: &Peg,
    batch: &mut Batch,
    clock: u64,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let rules = &params.withdrawals;
    let chain_rate = state.bitcoin_fee_rate(params)?;
    let mut requests = Vec::with_capacity(batch.items.len());
    for item in &batch.items {
        let withdrawal = state.withdrawal(item.withdrawal)?.ok_or_else(|| StateError::Corrupt {
            key: format!("batch/{}", batch.id),
            reason: format!("item {} has no withdrawal record", item.withdrawal),
        })?;
        requests.push(ReleaseRequest {
            destination: withdrawal.destination,
            burned: withdrawal.amount,
            max_fee: withdrawal.max_fee,
        });
    }
    let BatchRelease::Bitcoin(release) = &mut batch.release else { return Ok(()) };
    let ceiling = rules.bitcoin_fee_bounds().max;
    let rate = bumped_rate(release.fee_rate).max(chain_rate).min(ceiling);
    let priced = if rate <= release.fee_rate {
        Err(format!("the fee rate is at its ceiling of {ceiling}"))
    } else if requests.is_empty() {
        let pool = state.ledger(&ferry_types::Denom::sat())?.fee_pool;
        replace_consolidation(&release.plan, rate, peg, rules.bitcoin_dust_limit, pool)
    } else {
        price_replacement(&release.plan, &requests, rate, peg, rules.bitcoin_dust_limit)
            .map(|priced| priced.plan)
            .map_err(|e| e.to_string())
    };
    let priced = match priced {
        Ok(priced) => priced,
        Err(reason) => {
            if release.bump_blocked.as_deref() != Some(reason.as_str()) {
                tracing::warn!(batch_id = batch.id, version = release.version, %reason, height, "release not replaced");
                events.push(Event::new(
                    ev::REPLACEMENT_BLOCKED,
                    [(ev::BATCH_ID, batch.id.to_string()), (ev::REASON, reason.clone())],
                ));
            }
            release.bump_blocked = Some(reason);
            // Tried again one bump period later (the chain's rate may have risen by then).
            release.bump_parent_height = Some(clock);
            return Ok(());
        }
    };
    let tx = unsigned_transaction(&priced, peg);
    let hashes = match sighashes(&tx, &priced, peg) {
        Ok(hashes) => hashes,
        Err(error) => {
            release.bump_blocked = Some(error.to_string());
            release.bump_parent_height = Some(clock);
            return Ok(());
        }
    };
    let previous = SignedBitcoinVersion {
        version: release.version,
        plan: release.plan.clone(),
        unsigned_tx: std::mem::take(&mut release.unsigned_tx),
        txid: std::mem::take(&mut release.txid),
        sighashes: std::mem::take(&mut release.sighashes),
        fee_rate: release.fee_rate,
        signatures: std::mem::take(&mut batch.signatures),
    };
    for (item, output) in batch.items.iter_mut().zip(priced.outputs()) {
        item.paid = output.amount;
    }
    let fee = priced.fee();
    release.version = release.version.saturating_add(1);
    release.unsigned_tx = bitcoin::consensus::encode::serialize_hex(&tx);
    release.txid = tx.compute_txid().to_string();
    release.sighashes = hashes.iter().map(hex::encode).collect();
    release.plan = priced;
    release.fee_rate = rate;
    release.bump_parent_height = None;
    release.bump_blocked = None;
    events.push(Event::new(
        ev::RELEASE_REPLACED,
        [
            (ev::BATCH_ID, batch.id.to_string()),
            (ev::VERSION, release.version.to_string()),
            (ev::PARENT_TX, release.txid.clone()),
            (ev::FEE_RATE, rate.sat_per_kvb().to_string()),
            (ev::AMOUNT, format!("{fee}sat")),
        ],
    ));
    tracing::info!(batch_id = batch.id, version = release.version, replaces = %previous.txid, txid = %release.txid, %rate, %fee, height, "release replaced: signing the next version");
    release.superseded.push(previous);
    batch.status = BatchStatus::Signing;
    Ok(())
}
