//! Consolidating the reserves: many small reserve UTXOs spent into one, paid from the fee pool
//! that Bitcoin deposits prepay ([`crate::bridge`]).
//!
//! At a batching height, when more than `bitcoin_max_reserve_utxos` reserve UTXOs are free (no
//! batch locked them) and no consolidation is pending, the chain forms a consolidation batch: the
//! smallest free UTXOs — enough to bring the free count down to half the limit, at most
//! [`CONSOLIDATION_INPUTS`], ties by outpoint — spent into one output back to the peg, at the
//! chain's fee rate ([`plan_consolidation`]); fewer inputs when the fee pool cannot pay for that
//! many (each deposit prepaid its own input; the transaction's overhead comes from the pool's
//! surplus). It has no withdrawals (items) and a total of zero; members sign it and relayers
//! deliver it like any Bitcoin batch, and the chain replaces it when it is stuck. When it settles,
//! the fee it paid leaves both the reserves and the fee pool; the inputs leave the UTXO set and
//! the one output joins it. So a release never has to spend a crowd of small inputs: coin
//! selection finds few, large ones, and every release stays within standard size.

use ferry_types::Params;
use ferry_types::event as ev;
use ferry_types::query::{Batch, BatchRelease, BitcoinRelease};
use ferry_types::release::bitcoin::{CONSOLIDATION_INPUTS, plan_consolidation};
use ferry_types::{Amount, Denom};

use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// Whether `batch` is a consolidation: a Bitcoin batch that pays no withdrawal and is no
/// hand-over migration.
pub fn is_consolidation(batch: &Batch) -> bool {
    batch.items.is_empty() && matches!(&batch.release, BatchRelease::Bitcoin(release) if !release.moves_reserves())
}

/// Forms a consolidation batch when the reserves are too fragmented (see the module docs).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn consolidate<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let rules = &params.withdrawals;
    if !rules.is_batch_height(height) {
        return Ok(());
    }
    let free_count = state.free_reserve_utxo_count()?;
    // During a hand-over the reserves are migrating, not consolidating.
    if free_count <= u64::from(rules.bitcoin_max_reserve_utxos) || state.running_handover()?.is_some() {
        return Ok(());
    }
    if crate::btc_exit::busy(state, params)? {
        return Ok(());
    }
    for id in state.pending_batches()? {
        if state.batch(id)?.is_some_and(|batch| is_consolidation(&batch)) {
            return Ok(());
        }
    }
    let Some(peg) = crate::batch::peg_of(&state.federation()?)? else { return Ok(()) };
    // Down to half the limit, smallest first; fewer when the pool cannot pay for that many.
    let keep = u64::from(rules.bitcoin_max_reserve_utxos / 2);
    let wanted = usize::try_from(free_count.saturating_sub(keep)).unwrap_or(usize::MAX).clamp(2, CONSOLIDATION_INPUTS);
    let free = state.free_reserve_utxos(false, wanted)?;
    let rate = state.bitcoin_fee_rate(params)?;
    let pool = state.ledger(&Denom::sat())?.fee_pool;
    let mut planned = None;
    for count in (2..=wanted).rev() {
        let inputs: Vec<_> = free.iter().take(count).map(|utxo| utxo.utxo()).collect();
        match plan_consolidation(&inputs, rate, &peg, rules.bitcoin_dust_limit) {
            Ok(plan) if plan.fee() <= pool => {
                planned = Some(plan);
                break;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(inputs = count, %error, height, "reserves not consolidated");
                return Ok(());
            }
        }
    }
    let Some(plan) = planned else {
        tracing::warn!(%pool, free = free_count, height, "the fee pool cannot pay a consolidation yet");
        return Ok(());
    };
    tracing::info!(inputs = plan.inputs().len(), fee = %plan.fee(), %rate, height, "consolidating the reserves");
    let release = match BitcoinRelease::new(plan, rate, &peg) {
        Ok(release) => release,
        Err(error) => {
            tracing::warn!(%error, height, "reserves not consolidated");
            return Ok(());
        }
    };
    let (inputs, fee) = (release.plan.inputs().len(), release.plan.fee());
    let id = crate::batch::record_itemless(state, &Denom::sat(), |_| BatchRelease::Bitcoin(release), height, events)?;
    events.push(Event::new(
        ev::CONSOLIDATION_FORMED,
        [
            (ev::BATCH_ID, id.to_string()),
            (ev::ITEMS, inputs.to_string()),
            (ev::AMOUNT, format!("{fee}{}", Denom::sat())),
        ],
    ));
    Ok(())
}

/// When a consolidation settles with `fee`: the fee leaves the reserves, paid as any upkeep
/// ([`crate::handover::pay_upkeep_fee`]: the fee pool first, which formation checked covers it).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn settled<R: StateRead>(state: &mut StateDelta<R>, fee: Amount) -> Result<(), StateError> {
    crate::handover::pay_upkeep_fee(state, fee)
}
