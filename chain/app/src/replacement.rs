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
//! A consolidation or a hand-over migration keeps its inputs and its one output's destination,
//! the output paying the higher fee, which the fee pool must cover.
//!
//! When no replacement is possible (the rate at its ceiling, or the budgets spent), the batch
//! keeps its signed versions and records why (`bump_blocked`); it is tried again one bump
//! period later.

use ferry_types::Params;
use ferry_types::event as ev;
use ferry_types::query::{Batch, BatchRelease, BatchStatus, BitcoinRelease, SignedBitcoinVersion};
use ferry_types::release::bitcoin::{ReleaseRequest, price_replacement, replace_consolidation, replace_migration};
use ferry_types::release::fee::bumped_rate;

use crate::batch::ReleasePegs;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// Replaces `batch`'s release if it is a signed Bitcoin release whose newest version waited a
/// bump period by the parent clock at `clock` (see the module docs); returns whether anything
/// changed (a new version, or why there is none), for the caller to store the batch.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn replace_if_due<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    batch: &mut Batch,
    clock: u64,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<bool, StateError> {
    let due = match &batch.release {
        BatchRelease::Bitcoin(release) if batch.status == BatchStatus::Signed && clock > 0 => release
            .bump_parent_height
            .is_some_and(|since| clock >= since.saturating_add(params.withdrawals.bitcoin_bump_after_blocks)),
        _ => false,
    };
    if !due {
        return Ok(false);
    }
    let BatchRelease::Bitcoin(release) = &batch.release else { return Ok(false) };
    let Some(pegs) = crate::batch::release_pegs(state, release)? else { return Ok(false) };
    replace(state, params, &pegs, batch, clock, height, events)?;
    Ok(true)
}

/// Forms `batch`'s next version, or records why it cannot.
fn replace<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    pegs: &ReleasePegs,
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
        requests.push(ReleaseRequest::from(&withdrawal));
    }
    let BatchRelease::Bitcoin(release) = &mut batch.release else { return Ok(()) };
    let ceiling = rules.bitcoin_fee_bounds().max;
    let rate = bumped_rate(release.fee_rate).max(chain_rate).min(ceiling);
    let priced = if rate <= release.fee_rate {
        Err(format!("the fee rate is at its ceiling of {ceiling}"))
    } else if requests.is_empty() {
        // A consolidation (the fee pool pays) or a migration or sweep (the pool, the surplus,
        // the collected fees: [`crate::handover::fee_budget`]).
        let pool = state.ledger(&ferry_types::Denom::sat())?.fee_pool;
        let dust = rules.bitcoin_dust_limit;
        let peg = &pegs.from;
        let (planned, budget) = match (release.moves_reserves(), &pegs.to) {
            (false, _) => (
                replace_consolidation(&release.plan, rate, peg, dust).map_err(|e| e.to_string()),
                crate::handover::fee_budget(state)?,
            ),
            (true, Some(to)) => (
                replace_migration(&release.plan, rate, peg, to, dust).map_err(|e| e.to_string()),
                crate::handover::fee_budget(state)?,
            ),
            (true, None) => (Err("the federation whose peg this batch pays is gone".to_owned()), pool),
        };
        match planned {
            Ok(plan) if plan.fee() > budget => {
                Err(format!("the fee pool holds {budget} sat, less than the replacement's {} sat", plan.fee()))
            }
            planned => planned,
        }
    } else {
        price_replacement(&release.plan, &requests, rate, &pegs.from, rules.bitcoin_dust_limit)
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
    let next = match BitcoinRelease::new(priced, rate, &pegs.from) {
        Ok(next) => BitcoinRelease {
            version: release.version.saturating_add(1),
            signed_parent_height: release.signed_parent_height,
            migration: release.migration,
            sweep: release.sweep,
            ..next
        },
        Err(error) => {
            release.bump_blocked = Some(error.to_string());
            release.bump_parent_height = Some(clock);
            return Ok(());
        }
    };
    for (item, output) in batch.items.iter_mut().zip(next.plan.outputs()) {
        item.paid = output.amount;
    }
    let fee = next.plan.fee();
    let replaced = std::mem::replace(release, next);
    release.superseded = replaced.superseded;
    let previous = SignedBitcoinVersion {
        version: replaced.version,
        plan: replaced.plan,
        unsigned_tx: replaced.unsigned_tx,
        txid: replaced.txid,
        sighashes: replaced.sighashes,
        fee_rate: replaced.fee_rate,
        signatures: std::mem::take(&mut batch.signatures),
    };
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
