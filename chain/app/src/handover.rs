//! The hand-over from the current federation to the one a key generation produced
//! ([`crate::dkg`]): the chain drives it on both parent chains, and the current federation signs
//! nothing else while it runs.
//!
//! - **Start.** When a key generation completes, its federation waits at `/federation/next` and a
//!   [`Handover`] record opens. From then on no withdrawal batch or consolidation forms: queued
//!   withdrawals wait, saying why; batches formed before finish as usual (signed, delivered,
//!   attested, replaced or aborted by the current federation). Deposits keep being minted.
//! - **Ethereum.** Once no Ethereum batch is in flight, the chain forms the vault's rotation
//!   batch ([`EthRotation`]: this epoch's key hands the vault to the next epoch's key); members
//!   sign it with their current BLS shares, a relayer delivers `FerryVault.rotate` and a quorum
//!   attests it like any release. Waiting for the in-flight batches matters: the vault refuses
//!   batches of the old epoch after the rotation, so one signed before it would never pay.
//! - **Bitcoin.** At each batching height, once no release or consolidation is in flight, the
//!   chain forms a migration batch: up to [`MIGRATION_INPUTS`] free reserve UTXOs, largest first
//!   (with the Bitcoin exit on, the inputs of the live disbursals first: such a migration waits
//!   for its own disbursal, signed by the next federation, [`crate::btc_exit`]),
//!   spent into one output at the next federation's peg ([`plan_migration`]), at the chain's fee
//!   rate, the fee paid from the fee pool that deposits prepay, then from the reserves' surplus,
//!   then from the satoshi collected as transaction fees ([`fee_budget`]; fewer inputs when that
//!   cannot pay for that many; nothing, logged, until it can — each deposit prepaid its own
//!   input, so only a transaction's overhead can be short). Members sign it with their Bitcoin keys; relayers deliver it, the chain
//!   replaces it when stuck ([`crate::replacement`]), a quorum attests it. Its output is kept in
//!   the hand-over record (`migrated`), not in the reserve UTXO set: nothing the current
//!   federation signs may spend it. One migration is in flight at a time; deposits minted during
//!   the hand-over are migrated by the next one.
//! - **Switch.** When the rotation is attested (or the chain has no vault), no batch is in flight
//!   and no reserve UTXO is left at the current peg, the next federation becomes the federation:
//!   its members attest, its key set signs, its peg holds the reserves (the migrated outputs join
//!   the reserve UTXO set) and gives the deposit addresses. The old federation is kept at
//!   `/federation/epoch/<n>` and the hand-over record at `/federation/handover/<epoch>`.
//!
//! - **The old peg's grace.** Wallets keep paying an address they saved. For
//!   `old_peg_grace_blocks` after the switch, deposits to the retired peg (or to a deposit
//!   address derived from it) are still minted ([`crate::bridge`] checks the epoch a deposit's
//!   facts name); their outputs wait in the reserves marked with the retired epoch, which only a
//!   sweep spends: at batching heights, while no hand-over runs and no sweep is in flight, a
//!   sweep batch moves up to [`MIGRATION_INPUTS`] of them into one output at the current peg,
//!   paid like a migration, signed by the retired federation (kept at `/federation/epoch/<n>`)
//!   and attested by the current one. Later payments to a retired peg are not minted.
//!
//! Money is conserved throughout: a migration's total is zero, its fee leaves the reserves with
//! what paid it ([`pay_upkeep_fee`]), and the ledger's reserves count the migrated outputs
//! from the moment their migration settles.

use ferry_types::event as ev;
use ferry_types::genesis::Federation;
use ferry_types::query::federation::{Handover, MigratedUtxo, RetiredFederation};
use ferry_types::query::{Batch, BatchRelease, BitcoinRelease, EthereumRotation};
use ferry_types::release::bitcoin::{ReleasePlan, plan_migration};
use ferry_types::release::bls;
use ferry_types::release::eth::EthRotation;
use ferry_types::{Address, Amount, Coin, Denom, Params, ParentChain};

use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// Reserve UTXOs one migration batch spends at most (a standard transaction at 20 members).
pub const MIGRATION_INPUTS: usize = ferry_types::release::bitcoin::CONSOLIDATION_INPUTS;

/// State keys of hand-overs (their home is [`ferry_types::state_keys`]: signers read them
/// proven).
pub mod keys {
    pub use ferry_types::state_keys::{handover, retired_federation as retired};
}

impl<R: StateRead> StateDelta<R> {
    /// The hand-over to `epoch`, if one started.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn handover(&self, epoch: u64) -> Result<Option<Handover>, StateError> {
        self.get_record(&keys::handover(epoch))
    }

    /// The running hand-over, if any: the one to the federation waiting at `/federation/next`.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn running_handover(&self) -> Result<Option<Handover>, StateError> {
        let Some(next) = self.next_federation()? else { return Ok(None) };
        Ok(self.handover(next.epoch)?.filter(Handover::in_progress))
    }

    /// The federation of a past `epoch`, as it was when it handed over.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn retired_federation(&self, epoch: u64) -> Result<Option<Federation>, StateError> {
        self.get_record(&keys::retired(epoch))
    }

    fn put_handover(&mut self, handover: &Handover) {
        self.put_record(keys::handover(handover.epoch), handover);
    }
}

/// Every retired federation, newest first, with the height it handed over and the end of its
/// peg's grace (epochs follow one another: each hand-over brings in the next).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn retired_federations<R: StateRead>(state: &StateDelta<R>) -> Result<Vec<RetiredFederation>, StateError> {
    let grace = state.params()?.deposits.old_peg_grace_blocks;
    let mut retired = Vec::new();
    let mut epoch = state.federation()?.epoch;
    while let Some(previous) = epoch.checked_sub(1) {
        let (Some(federation), Some(switched)) = (state.retired_federation(previous)?, switched_away(state, previous)?)
        else {
            break;
        };
        retired.push(RetiredFederation::new(previous, federation, switched, grace));
        epoch = previous;
    }
    Ok(retired)
}

/// The height at which the federation of `epoch` handed over to the next (each hand-over brings
/// in the next epoch), if it did.
///
/// # Errors
/// On storage failure or a corrupt record.
pub(crate) fn switched_away<R: StateRead>(state: &StateDelta<R>, epoch: u64) -> Result<Option<u64>, StateError> {
    let Some(next) = epoch.checked_add(1) else { return Ok(None) };
    Ok(state.handover(next)?.and_then(|handover| handover.switched))
}

/// Why queued withdrawals wait while a hand-over runs, if one does.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn holding_releases<R: StateRead>(state: &StateDelta<R>) -> Result<Option<String>, StateError> {
    Ok(state.running_handover()?.map(|handover| {
        format!("the federation hands over to epoch {}; releases resume after the switch", handover.epoch)
    }))
}

/// What a migration's fee may come from, in this order: the fee pool that deposits prepaid for
/// their spending; the reserves' surplus beyond everything they back
/// ([`crate::reserves::surplus`]); the satoshi the chain collected as transaction fees (the fee
/// collector's balance, burned for it). Never coins the ledger owes a holder.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn fee_budget<R: StateRead>(state: &StateDelta<R>) -> Result<Amount, StateError> {
    let ledger = state.ledger(&Denom::sat())?;
    let collected =
        state.account(&Address::fee_collector())?.map_or(Amount::ZERO, |record| record.balance(&Denom::sat()));
    Ok(ledger
        .fee_pool
        .checked_add(crate::reserves::surplus(&ledger))
        .and_then(|budget| budget.checked_add(collected))
        .unwrap_or(Amount::new(u128::MAX)))
}

/// A reserve move no withdrawal pays for (a migration, sweep, consolidation or exit refresh)
/// settled having paid `fee` to miners: the fee leaves the reserves; it comes out of the fee pool
/// first, then the surplus, then the fee collector's satoshi, which are burned (supply falls with
/// them), as [`fee_budget`] allowed at formation.
pub(crate) fn pay_upkeep_fee<R: StateRead>(state: &mut StateDelta<R>, fee: Amount) -> Result<(), StateError> {
    let sat = Denom::sat();
    let mut ledger = state.ledger(&sat)?;
    let surplus = crate::reserves::surplus(&ledger);
    let from_pool = fee.min(ledger.fee_pool);
    ledger.fee_pool = ledger.fee_pool.checked_sub(from_pool).unwrap_or(Amount::ZERO);
    let rest = fee.checked_sub(from_pool).unwrap_or(Amount::ZERO);
    let from_collector = rest.checked_sub(surplus).unwrap_or(Amount::ZERO);
    // The funds have left: settling must not fail. A shortfall breaks the invariant, which pauses.
    ledger.reserves = ledger.reserves.checked_sub(fee).unwrap_or(Amount::ZERO);
    if !from_collector.is_zero() {
        let collector = Address::fee_collector();
        if let Some(mut record) = state.account(&collector)? {
            let burned = Coin { amount: from_collector.min(record.balance(&sat)), denom: sat.clone() };
            if crate::bank::debit(&mut record, &collector, &burned).is_ok() {
                state.put_account(&collector, &record);
                ledger.supply = ledger.supply.checked_sub(burned.amount).unwrap_or(Amount::ZERO);
                tracing::info!(burned = %burned.amount, "collected fees paid part of a migration");
            }
        }
    }
    state.put_ledger(&sat, &ledger)
}

/// Opens the hand-over to `next` (key generation `session` completed at `height`).
pub(crate) fn start<R: StateRead>(
    state: &mut StateDelta<R>,
    next: &Federation,
    session: u64,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let params = state.params()?;
    let current = state.federation()?;
    // Nothing to rotate on a chain without a vault or without a key that could sign it.
    let has_vault = params.withdrawals.ethereum.is_some() && current.bls.is_some();
    let handover = Handover {
        epoch: next.epoch,
        session,
        started: height,
        rotation_batch: None,
        rotated: (!has_vault).then_some(height),
        migration_batches: Vec::new(),
        migrated: Vec::new(),
        switched: None,
        waiting: None,
    };
    state.put_handover(&handover);
    let members = crate::event::accounts_text(&next.members);
    events.push(Event::new(ev::HANDOVER_STARTED, [(ev::EPOCH, next.epoch.to_string()), (ev::MEMBERS, members)]));
    tracing::info!(epoch = next.epoch, members = next.members.len(), height, "federation hand-over started");
    Ok(())
}

/// End of block (not while the bridge is paused): forms the rotation and migration batches that
/// are due and switches the federation when both chains are handed over (see the module docs).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn advance<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let Some(mut handover) = state.running_handover()? else { return Ok(()) };
    let Some(next) = state.next_federation()? else { return Ok(()) };
    let (mut ethereum_busy, mut bitcoin_busy) = (false, false);
    for id in state.pending_batches()? {
        match state.batch(id)?.map(|batch| batch.release.parent_chain()) {
            Some(ParentChain::Ethereum) => ethereum_busy = true,
            Some(ParentChain::Bitcoin) => bitcoin_busy = true,
            None => {}
        }
    }
    if handover.rotated.is_none() && handover.rotation_batch.is_none() && !ethereum_busy {
        form_rotation(state, params, &next, &mut handover, height, events)?;
    }
    if !bitcoin_busy && params.withdrawals.is_batch_height(height) {
        form_migration(state, params, &next, &mut handover, height, events)?;
    }
    state.put_handover(&handover);
    // Read again: a batch formed above is in flight too.
    if handover.rotated.is_some() && state.pending_batch_count()? == 0 && state.free_reserve_utxo_count()? == 0 {
        switch(state, next, handover, height, events)?;
    }
    Ok(())
}

fn form_rotation<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    next: &Federation,
    handover: &mut Handover,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let Some(bridge) = params.withdrawals.ethereum.clone() else { return Ok(()) };
    let key_set = crate::batch::bls_key_set(next)?.ok_or_else(|| StateError::Corrupt {
        key: "dkg/next_federation".to_owned(),
        reason: "the next federation has no BLS key set".to_owned(),
    })?;
    let current = state.federation()?;
    let rotation = EthRotation {
        chain_id: bridge.chain_id,
        vault: bridge.vault,
        epoch: current.epoch,
        new_epoch: next.epoch,
        new_key: hex::encode(bls::eip2537_g1(&key_set.public_key())),
    };
    let payload = rotation.payload().map(hex::encode).unwrap_or_default();
    let release = BatchRelease::EthereumRotation(EthereumRotation {
        rotation,
        payload,
        signature: None,
        signature_compressed: None,
    });
    let id = crate::batch::record_itemless(state, &Denom::wei(), |_| release, height, events)?;
    handover.rotation_batch = Some(id);
    events.push(Event::new(ev::ROTATION_FORMED, [(ev::EPOCH, next.epoch.to_string()), (ev::BATCH_ID, id.to_string())]));
    tracing::info!(epoch = next.epoch, batch_id = id, height, "vault rotation formed");
    Ok(())
}

/// The migration of the most of `utxos` (in order, the first `keep` at least) from `from` into
/// `to` whose fee [`fee_budget`] covers, at the chain's fee rate — or why there is none.
fn affordable_migration<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    utxos: &[ferry_types::query::ReserveUtxo],
    keep: usize,
    from: &ferry_types::peg::Peg,
    to: &ferry_types::peg::Peg,
) -> Result<Result<BitcoinRelease, String>, StateError> {
    let rate = state.bitcoin_fee_rate(params)?;
    let budget = fee_budget(state)?;
    let mut refusal = String::from("nothing to move");
    for count in (keep.max(1)..=utxos.len()).rev() {
        let inputs: Vec<_> = utxos.iter().take(count).map(|utxo| utxo.utxo()).collect();
        match plan_migration(&inputs, rate, from, to, params.withdrawals.bitcoin_dust_limit) {
            Ok(plan) if plan.fee() <= budget => {
                return Ok(BitcoinRelease::new(plan, rate, from).map_err(|error| error.to_string()));
            }
            Ok(plan) => {
                refusal = format!(
                    "the fee pool, surplus and collected fees hold {budget} sat, less than the {} sat fee",
                    plan.fee()
                );
            }
            Err(error) => refusal = error.to_string(),
        }
    }
    Ok(Err(refusal))
}

fn form_migration<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    next: &Federation,
    handover: &mut Handover,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let (Some(peg), Some(next_peg)) = (crate::batch::peg_of(&state.federation()?)?, crate::batch::peg_of(next)?) else {
        return Ok(());
    };
    // With exits on, the inputs of the live disbursals come first and move together
    // (`keep`); when the budget cannot move them all yet, the other UTXOs go first.
    let (free, keep) = crate::btc_exit::migration_inputs(state, params, MIGRATION_INPUTS)?;
    if free.is_empty() {
        return Ok(());
    }
    let mut planned = affordable_migration(state, params, &free, keep, &peg, &next_peg)?;
    if planned.is_err() && keep > 0 && keep < free.len() {
        planned = affordable_migration(state, params, &free[keep..], 0, &peg, &next_peg)?;
    }
    let release = match planned {
        Ok(release) => BitcoinRelease { migration: Some(next.epoch), ..release },
        Err(reason) => {
            if handover.waiting.as_deref() != Some(reason.as_str()) {
                tracing::warn!(epoch = next.epoch, %reason, height, "no migration formed yet");
            }
            handover.waiting = Some(reason);
            return Ok(());
        }
    };
    handover.waiting = None;
    let inputs = release.plan.inputs().len();
    let moved = release.plan.outputs().first().map(|output| output.amount).unwrap_or_default();
    let id = crate::batch::record_itemless(state, &Denom::sat(), |_| BatchRelease::Bitcoin(release), height, events)?;
    handover.migration_batches.push(id);
    events.push(Event::new(
        ev::MIGRATION_FORMED,
        [
            (ev::EPOCH, next.epoch.to_string()),
            (ev::BATCH_ID, id.to_string()),
            (ev::ITEMS, inputs.to_string()),
            (ev::AMOUNT, format!("{moved}{}", Denom::sat())),
        ],
    ));
    tracing::info!(epoch = next.epoch, batch_id = id, inputs, %moved, height, "reserves migration formed");
    Ok(())
}

/// End of block (not while the bridge is paused): at batching heights, while no hand-over runs
/// and no sweep is in flight, forms a sweep of the reserve UTXOs at the oldest retired peg that
/// holds any (see the module docs).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn sweep_retired<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    if !params.withdrawals.is_batch_height(height) || state.retired_reserve_utxo_count()? == 0 {
        return Ok(());
    }
    if state.running_handover()?.is_some() {
        return Ok(());
    }
    for id in state.pending_batches()? {
        if state.batch(id)?.is_some_and(|batch| batch.release.sweep_epoch().is_some()) {
            return Ok(());
        }
    }
    let mut utxos = state.retired_reserve_utxos(MIGRATION_INPUTS)?;
    let Some(epoch) = utxos.first().and_then(|utxo| utxo.retired_epoch) else { return Ok(()) };
    utxos.retain(|utxo| utxo.retired_epoch == Some(epoch));
    // Largest first, as a migration: the fee budget then moves the most.
    utxos.sort_by_key(|utxo| std::cmp::Reverse(utxo.amount));
    let retired = state.retired_federation(epoch)?.as_ref().map(crate::batch::peg_of).transpose()?.flatten();
    let (Some(from), Some(to)) = (retired, crate::batch::peg_of(&state.federation()?)?) else {
        return Err(StateError::Corrupt {
            key: String::from_utf8_lossy(&keys::retired(epoch)).into_owned(),
            reason: format!("reserve UTXOs wait at the peg of epoch {epoch}, which has no kept federation with a peg"),
        });
    };
    let release = match affordable_migration(state, params, &utxos, 0, &from, &to)? {
        Ok(release) => BitcoinRelease { sweep: Some(epoch), ..release },
        Err(reason) => {
            tracing::warn!(epoch, %reason, height, "no sweep of the retired peg formed yet");
            return Ok(());
        }
    };
    let inputs = release.plan.inputs().len();
    let moved = release.plan.outputs().first().map(|output| output.amount).unwrap_or_default();
    let id = crate::batch::record_itemless(state, &Denom::sat(), |_| BatchRelease::Bitcoin(release), height, events)?;
    events.push(Event::new(
        ev::SWEEP_FORMED,
        [
            (ev::EPOCH, epoch.to_string()),
            (ev::BATCH_ID, id.to_string()),
            (ev::ITEMS, inputs.to_string()),
            (ev::AMOUNT, format!("{moved}{}", Denom::sat())),
        ],
    ));
    tracing::info!(epoch, batch_id = id, inputs, %moved, height, "sweep of the retired peg formed");
    Ok(())
}

/// A sweep settled: its fee is paid as a migration's ([`pay_upkeep_fee`]) and its output
/// joins the reserves at the current peg.
fn swept<R: StateRead>(
    state: &mut StateDelta<R>,
    batch: &Batch,
    epoch: u64,
    (parent_tx, plan): (&str, &ReleasePlan),
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    pay_upkeep_fee(state, plan.fee())?;
    for (vout, output) in plan.outputs().iter().enumerate() {
        state.put_reserve_utxo(&crate::bridge::ReserveUtxo {
            txid: parent_tx.to_owned(),
            vout: u32::try_from(vout).unwrap_or(u32::MAX),
            amount: output.amount,
            locked_by: None,
            owner: None,
            retired_epoch: None,
        })?;
        events.push(Event::new(
            ev::SWEPT,
            [
                (ev::EPOCH, epoch.to_string()),
                (ev::BATCH_ID, batch.id.to_string()),
                (ev::AMOUNT, format!("{}{}", output.amount, Denom::sat())),
            ],
        ));
    }
    tracing::info!(epoch, batch_id = batch.id, %parent_tx, height, "the retired peg's deposits swept to the current peg");
    Ok(())
}

/// A hand-over batch settled: the rotation marks Ethereum handed over; a migration pays its fee
/// ([`pay_upkeep_fee`]) and its output (`plan`, the version that confirmed as `parent_tx`) is
/// kept for the switch; a sweep's output joins the reserves ([`swept`]). Does nothing for other
/// batches.
///
/// # Errors
/// On storage failure or a corrupt record.
pub(crate) fn settled<R: StateRead>(
    state: &mut StateDelta<R>,
    batch: &Batch,
    confirmed: Option<(&str, &ReleasePlan)>,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    if let (Some(epoch), Some(confirmed)) = (batch.release.sweep_epoch(), confirmed) {
        return swept(state, batch, epoch, confirmed, height, events);
    }
    let Some(mut handover) = state.running_handover()? else { return Ok(()) };
    if handover.rotation_batch == Some(batch.id) {
        handover.rotated = Some(height);
        events.push(Event::new(
            ev::ROTATED,
            [(ev::EPOCH, handover.epoch.to_string()), (ev::BATCH_ID, batch.id.to_string())],
        ));
        tracing::info!(epoch = handover.epoch, batch_id = batch.id, height, "the vault is handed over");
    } else if let (true, Some((parent_tx, plan))) = (handover.migration_batches.contains(&batch.id), confirmed) {
        pay_upkeep_fee(state, plan.fee())?;
        for (vout, output) in plan.outputs().iter().enumerate() {
            let vout = u32::try_from(vout).unwrap_or(u32::MAX);
            handover.migrated.push(MigratedUtxo { txid: parent_tx.to_owned(), vout, amount: output.amount });
            events.push(Event::new(
                ev::MIGRATED,
                [
                    (ev::EPOCH, handover.epoch.to_string()),
                    (ev::BATCH_ID, batch.id.to_string()),
                    (ev::AMOUNT, format!("{}{}", output.amount, Denom::sat())),
                ],
            ));
        }
        tracing::info!(epoch = handover.epoch, batch_id = batch.id, %parent_tx, height, "reserves migrated");
    } else {
        return Ok(());
    }
    state.put_handover(&handover);
    Ok(())
}

/// A hand-over batch was aborted: the rotation is formed again (once no Ethereum batch is in
/// flight), a migration's inputs are free again and migrate in a later batch. Does nothing for
/// other batches.
///
/// # Errors
/// On storage failure or a corrupt record.
pub(crate) fn aborted<R: StateRead>(state: &mut StateDelta<R>, batch: &Batch) -> Result<(), StateError> {
    let Some(mut handover) = state.running_handover()? else { return Ok(()) };
    if handover.rotation_batch == Some(batch.id) {
        handover.rotation_batch = None;
        state.put_handover(&handover);
    }
    Ok(())
}

/// The next federation becomes the federation (see the module docs).
fn switch<R: StateRead>(
    state: &mut StateDelta<R>,
    next: Federation,
    mut handover: Handover,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let current = state.federation()?;
    state.put_record(keys::retired(current.epoch), &current);
    for migrated in &handover.migrated {
        state.put_reserve_utxo(&crate::bridge::ReserveUtxo {
            txid: migrated.txid.clone(),
            vout: migrated.vout,
            amount: migrated.amount,
            locked_by: None,
            owner: None,
            retired_epoch: None,
        })?;
    }
    state.put_federation(&next);
    state.delete(crate::dkg::keys::NEXT_FEDERATION.to_vec());
    handover.switched = Some(height);
    state.put_handover(&handover);
    let members = crate::event::accounts_text(&next.members);
    events.push(Event::new(
        ev::FEDERATION_SWITCHED,
        [(ev::EPOCH, next.epoch.to_string()), (ev::MEMBERS, members), (ev::THRESHOLD, next.attest_quorum.to_string())],
    ));
    tracing::info!(
        epoch = next.epoch,
        members = next.members.len(),
        migrated = handover.migrated.len(),
        height,
        "the federation switched"
    );
    Ok(())
}
