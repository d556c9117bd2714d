//! Taking apart a batch that will not be signed, so one refused withdrawal never freezes the
//! others.
//!
//! A batch still collecting its first signatures is **aborted** when
//! - `n − T + 1` members voted to abort it (`MsgAbortBatch`, sent by a signer that refuses it):
//!   with that many refusing, the `T` signatures it needs can no longer come; or
//! - it is still unsigned `abort_after_blocks` after it formed (signers down, or refusing
//!   without a vote) — checked at the end of every block, not while paused.
//!
//! A batch with any fully signed version is never aborted: that release may be on its way.
//!
//! Aborting marks the batch `aborted` (its id, the Ethereum nonce, is never used again, and
//! nobody signs it), unlocks its Bitcoin inputs, takes its total back out of the window's
//! outflow, and re-queues its withdrawals in id order — except those that `n − T + 1` voters
//! named, which are **held**: out of the queue, still owed (`unreleased`), until a quorum of
//! members refunds them to their senders' sidechain balances (`MsgResolveHeld`), which moves
//! the amount from `unreleased` back to `supply`. Nothing is paid or minted that the ledger does
//! not account for.

use std::collections::{BTreeMap, BTreeSet};

use ferry_types::event as ev;
use ferry_types::msg::{MsgAbortBatch, MsgResolveHeld};
use ferry_types::query::{AbortVote, Aborted, Batch, BatchRelease, BatchStatus, Held, WithdrawalId};
use ferry_types::{Amount, Coin, Params, TxCode, TxRejection};

use crate::bank::{self, BankError};
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

fn refused(code: TxCode, log: impl Into<String>) -> BankError {
    BankError::Rejected(TxRejection::new(code, log))
}

/// Whether `batch` has a fully signed version (then it can never be aborted).
fn has_signed_version(batch: &Batch) -> bool {
    batch.status != BatchStatus::Signing
        || matches!(&batch.release, BatchRelease::Bitcoin(release) if !release.superseded.is_empty())
}

/// Records a member's vote to abort a batch it will not sign; aborts the batch once `n − T + 1`
/// members voted (see the module docs). A member's first vote counts; votes on a batch already
/// aborted are ignored.
///
/// # Errors
/// `BadBatch` (no such batch, or one with a fully signed version); `InvalidMessage` (an item
/// that is not in the batch); storage failures.
pub fn abort_vote<R: StateRead>(
    state: &mut StateDelta<R>,
    vote: &MsgAbortBatch,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let Some(mut batch) = state.batch(vote.batch)? else {
        return Err(refused(TxCode::BadBatch, format!("there is no batch {}", vote.batch)));
    };
    if batch.status == BatchStatus::Aborted {
        return Ok(());
    }
    // Only the federation that signs a batch may refuse it (a sweep's is a retired one).
    if !crate::batch::signing_federation(state, &batch)?.is_member(&vote.member) {
        return Err(refused(
            TxCode::Unauthorized,
            format!("{} is not in the federation that signs batch {}", vote.member, batch.id),
        ));
    }
    if has_signed_version(&batch) {
        return Err(refused(
            TxCode::BadBatch,
            format!("batch {} is fully signed; a signed release can never be aborted", batch.id),
        ));
    }
    let in_batch: BTreeSet<WithdrawalId> = batch.items.iter().map(|item| item.withdrawal).collect();
    if let Some(stranger) = vote.items.iter().find(|id| !in_batch.contains(id)) {
        return Err(refused(TxCode::InvalidMessage, format!("{stranger} is not in batch {}", batch.id)));
    }
    if batch.abort_votes.contains_key(&vote.member) {
        return Ok(());
    }
    let items: BTreeSet<WithdrawalId> = vote.items.iter().copied().collect();
    batch
        .abort_votes
        .insert(vote.member, AbortVote { reason: vote.reason.clone(), items: items.into_iter().collect(), height });
    let needed = votes_to_abort(state, &batch)?;
    let votes = u32::try_from(batch.abort_votes.len()).unwrap_or(u32::MAX);
    events.push(Event::new(
        ev::ABORT_VOTE,
        [
            (ev::BATCH_ID, batch.id.to_string()),
            (ev::ATTESTER, vote.member.to_string()),
            (ev::REASON, vote.reason.clone()),
            (ev::ATTESTATIONS, votes.to_string()),
            (ev::QUORUM, needed.to_string()),
        ],
    ));
    if votes >= needed {
        let reasons: BTreeSet<&str> = batch.abort_votes.values().map(|vote| vote.reason.as_str()).collect();
        let reason = format!("{votes} members refused it: {}", reasons.into_iter().collect::<Vec<_>>().join("; "));
        dissolve(state, params, &mut batch, reason, needed, height, events)?;
    }
    state.put_batch(&batch);
    Ok(())
}

/// `n − T + 1`: the refusals that leave a batch short of its `T` signatures for good.
fn votes_to_abort<R: StateRead>(state: &StateDelta<R>, batch: &Batch) -> Result<u32, StateError> {
    let federation = crate::batch::signing_federation(state, batch)?;
    let members = u32::try_from(federation.members.len()).unwrap_or(u32::MAX);
    let threshold = crate::batch::signing_threshold(&federation, batch)?;
    Ok(members.saturating_sub(threshold).saturating_add(1).max(1))
}

/// Aborts `batch` if it is still unsigned `abort_after_blocks` after it formed; returns whether
/// it did (the caller stores the batch).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn abort_if_expired<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    batch: &mut Batch,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<bool, StateError> {
    let after = params.withdrawals.abort_after_blocks;
    if has_signed_version(batch) || height < batch.created_height.saturating_add(after) {
        return Ok(false);
    }
    let needed = votes_to_abort(state, batch)?;
    let reason = format!("not signed within {after} blocks of forming");
    dissolve(state, params, batch, reason, needed, height, events)?;
    Ok(true)
}

/// Aborts `batch` (see the module docs): the withdrawals named by `needed` voters are held, the
/// others re-queued. The caller stores the batch.
fn dissolve<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    batch: &mut Batch,
    reason: String,
    needed: u32,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    // Per item: the reasons of the members that named it.
    let mut named: BTreeMap<WithdrawalId, Vec<&str>> = BTreeMap::new();
    for vote in batch.abort_votes.values() {
        for item in &vote.items {
            named.entry(*item).or_default().push(vote.reason.as_str());
        }
    }
    let needed = usize::try_from(needed).unwrap_or(usize::MAX);
    let held: BTreeMap<WithdrawalId, String> = named
        .into_iter()
        .filter(|(_, reasons)| reasons.len() >= needed)
        .map(|(id, reasons)| (id, reasons.join("; ")))
        .collect();

    for item in &batch.items {
        let Some(mut withdrawal) = state.withdrawal(item.withdrawal)? else { continue };
        withdrawal.batch = None;
        match held.get(&item.withdrawal) {
            Some(why) => {
                tracing::warn!(withdrawal_id = %item.withdrawal, batch_id = batch.id, reason = %why, "withdrawal held");
                events.push(Event::new(
                    ev::WITHDRAWAL_HELD,
                    [(ev::WITHDRAWAL_ID, item.withdrawal.to_string()), (ev::REASON, why.clone())],
                ));
                withdrawal.held =
                    Some(Held { batch: batch.id, reason: why.clone(), height, refund_votes: BTreeSet::new() });
            }
            None => state.enqueue_withdrawal(&batch.asset, item.withdrawal)?,
        }
        state.put_withdrawal(&withdrawal);
    }
    if let BatchRelease::Bitcoin(release) = &batch.release {
        // Every version spends the same inputs.
        crate::bridge::lock_reserve_utxos(state, release.plan.inputs(), None)?;
    }
    let rules = &params.withdrawals;
    let window = rules.window(batch.created_height);
    if window == rules.window(height) {
        let outflow = state.outflow(&batch.asset, window)?.checked_sub(batch.total).unwrap_or(Amount::ZERO);
        state.put_outflow(&batch.asset, &crate::batch::WindowOutflow { window, amount: outflow });
    }
    state.remove_pending_batch(batch.id)?;
    crate::listing::aborted(state, batch)?;
    crate::vault_heartbeat::aborted(state, batch)?;
    crate::handover::aborted(state, batch)?;
    crate::btc_exit::aborted(state, batch)?;

    let held_ids: Vec<WithdrawalId> = held.into_keys().collect();
    events.push(Event::new(
        ev::BATCH_ABORTED,
        [(ev::BATCH_ID, batch.id.to_string()), (ev::REASON, reason.clone()), (ev::ITEMS, held_ids.len().to_string())],
    ));
    tracing::warn!(batch_id = batch.id, %reason, held = held_ids.len(), requeued = batch.items.len() - held_ids.len(), height, "batch aborted");
    batch.status = BatchStatus::Aborted;
    batch.aborted = Some(Aborted { height, reason, held: held_ids });
    Ok(())
}

/// Records a member's vote to refund a held withdrawal; at `quorum` votes the amount goes back
/// to the sender's sidechain balance (from `unreleased` to `supply`). A member's repeat vote and
/// votes on a refunded withdrawal are ignored.
///
/// # Errors
/// `InvalidMessage` (no such withdrawal, or not held); `Overflow`; storage failures.
pub fn resolve_held<R: StateRead>(
    state: &mut StateDelta<R>,
    vote: &MsgResolveHeld,
    quorum: u32,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let Some(mut withdrawal) = state.withdrawal(vote.withdrawal)? else {
        return Err(refused(TxCode::InvalidMessage, format!("there is no withdrawal {}", vote.withdrawal)));
    };
    if withdrawal.refunded_height.is_some() {
        return Ok(());
    }
    let Some(held) = withdrawal.held.as_mut() else {
        return Err(refused(
            TxCode::InvalidMessage,
            format!("{} is not held; only held withdrawals are refunded", vote.withdrawal),
        ));
    };
    if !held.refund_votes.insert(vote.member) {
        return Ok(());
    }
    if u32::try_from(held.refund_votes.len()).unwrap_or(u32::MAX) >= quorum {
        let coin = Coin { denom: withdrawal.asset.clone(), amount: withdrawal.amount };
        let mut ledger = state.ledger(&withdrawal.asset)?;
        ledger.unreleased = ledger
            .unreleased
            .checked_sub(withdrawal.amount)
            .map_err(|_| refused(TxCode::Overflow, format!("{} unreleased is below the refund", withdrawal.asset)))?;
        ledger.supply = ledger
            .supply
            .checked_add(withdrawal.amount)
            .map_err(|_| refused(TxCode::Overflow, format!("{} supply would overflow", withdrawal.asset)))?;
        state.put_ledger(&withdrawal.asset, &ledger)?;
        let mut sender = bank::load_or_create(state, &withdrawal.sender, events)?;
        bank::credit(&mut sender, &withdrawal.sender, &coin).map_err(BankError::Rejected)?;
        state.put_account(&withdrawal.sender, &sender);
        withdrawal.refunded_height = Some(height);
        events.push(Event::new(
            ev::WITHDRAWAL_REFUNDED,
            [
                (ev::WITHDRAWAL_ID, withdrawal.id.to_string()),
                (ev::RECIPIENT, withdrawal.sender.to_string()),
                (ev::AMOUNT, coin.to_string()),
            ],
        ));
        tracing::info!(withdrawal_id = %withdrawal.id, sender = %withdrawal.sender, amount = %coin, height, "held withdrawal refunded");
    }
    state.put_withdrawal(&withdrawal);
    Ok(())
}
