//! The Bitcoin emergency disbursal in consensus (issue 17): at every moment a signed,
//! height-locked tree of transactions exists that pays every wrapped-BTC holder out of the
//! reserve the chain holds, should the federation stop signing (docs/exits.md).
//!
//! - **Derivation.** When a release or consolidation at the current peg forms — and again for
//!   each replacement version — the chain derives the disbursal for the reserve that version
//!   leaves behind ([`derive_for`]): the free reserve UTXOs (largest first, at most
//!   [`MAX_EXIT_INPUTS`] with the change) plus that version's change output, paid out to the
//!   claims of the block — every `sat` holder (the holder index [`refresh_holders`] keeps; module
//!   accounts excluded: their balance stays in the residual), to the address it registered
//!   ([`set_recovery_address`]) or its own key's P2WPKH, and every queued, unbatched `sat`
//!   withdrawal — by the pure planner [`ferry_types::release::exit`], at `lock = Bitcoin clock +
//!   lock_blocks`. It is recorded as a batch of its own ([`BatchRelease::BitcoinExit`]) that
//!   members sign input by input like a release, with its claims in pages
//!   ([`state_keys::exit_btc_claims`]) that signers read with proofs and plan again before
//!   signing.
//! - **Ordering.** The release version is not signable until its disbursal is signed
//!   ([`gate`], checked in `MsgSubmitSignatures`): so when the release confirms, the disbursal
//!   of what it left is already signed. With exits on, reserve-moving Bitcoin batches go one at a
//!   time ([`busy`]): two in flight would each leave the other's change uncovered. Coin selection
//!   prefers a covered input ([`covered_among`]), so a release kills the disbursal it replaces.
//! - **Covering and live.** When a release version confirms ([`settled`]), its disbursal becomes
//!   the covering one ([`state_keys::EXIT_BTC_COVERING`]); every disbursal whose input it spent,
//!   and the other versions' candidates, are superseded. One it did not spend stays live — valid
//!   next to the new one — until a later reserve move spends it ([`live`]).
//! - **Refresh.** Before any live disbursal's lock comes within `refresh_margin_blocks`, or when
//!   deposits no disbursal covers grow beyond `max_uncovered_percent`, a refresh forms
//!   ([`refresh_if_due`]): a consolidation spending an input of every live disbursal, whose own
//!   disbursal covers the whole reserve. So no disbursal opens while the federation signs.
//! - A version whose disbursal cannot be planned (no reserve left, a reserve too small to pay its
//!   own fees, no Bitcoin clock yet) is signed without one, and the chain says so in an event:
//!   a disbursal that cannot exist must not hold withdrawals back.
//!
//! A disbursal pays the balances of the block it was derived in; transfers after that are
//! reflected by the next one. Deposits minted after it are covered by the next release or refresh.
//!
//! - **Hand-over.** A migration moves the reserve to the next federation's peg, which the current
//!   federation cannot sign for. Its inputs start with every input of the live disbursals
//!   ([`migration_inputs`]: whole disbursals, so none is left half-spent), and such a migration
//!   gets a disbursal of its own at the next peg ([`left_by_migration`]: its output and earlier
//!   migrated outputs no live disbursal spends), which the **next** federation's members sign
//!   ([`BitcoinExit::epoch`]) before the current one may sign the migration. A migration that
//!   moves only coins no disbursal covers needs none and leaves the live ones valid. After the
//!   switch, the migration's disbursal is the current federation's like any other.

use ferry_types::Params;
use ferry_types::event as ev;
use ferry_types::genesis::BitcoinExitParams;
use ferry_types::msg::MsgSetRecoveryAddress;
use ferry_types::query::RecoveryView;
use ferry_types::query::{
    Batch, BatchRelease, BatchStatus, BitcoinExit, BitcoinRelease, BtcDisbursalView, BtcExitStatus, ExitStanding,
    FollowedRelease, WithdrawalId,
};
use ferry_types::release::bitcoin::{Utxo, parse_destination, plan_consolidation};
use ferry_types::release::exit::default_recovery_script;
use ferry_types::release::exit::{
    CLAIMS_PER_PAGE, ExitBasis, Holder, MAX_EXIT_INPUTS, RecordedClaim, UnpaidWithdrawal, exit_sighashes,
    plan_recorded, record_claims,
};
use ferry_types::{Address, Amount, Denom, TxCode, TxRejection, state_keys};

use crate::bank::BankError;

use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// Chain-internal keys.
mod keys {
    use crate::state::Collection;

    /// Every account holding `sat`, with its balance (`(Address, Amount)` by account id): the
    /// disbursal's holders, read without scanning every account.
    pub fn holders() -> Collection {
        Collection::new(b"exit/btc/holder/".to_vec())
    }

    /// Every disbursal that may still confirm (its release confirmed and no later one spent its
    /// inputs yet), by id (`(u64 id, u32 lock height)`): the covering one, and an older one a
    /// reserve move did not spend (it stays valid until one does, and its lock must not pass
    /// unrefreshed).
    pub fn live() -> Collection {
        Collection::new(b"exit/btc/live/".to_vec())
    }
}

/// Brings the holder index up to date with the accounts written so far in this block. Runs
/// before each derivation and at the end of every block.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn refresh_holders<R: StateRead>(state: &mut StateDelta<R>) -> Result<(), StateError> {
    let holders = keys::holders();
    for key in state.written_under(state_keys::ACCOUNT_PREFIX) {
        let Ok(id) = <[u8; 20]>::try_from(&key[state_keys::ACCOUNT_PREFIX.len()..]) else { continue };
        let account = Address::from_bytes(id);
        // Nobody holds a module account's key: its balance stays in the residual.
        if crate::exit_claims::keyless(&account) {
            continue;
        }
        let balance = state.account(&account)?.map_or(Amount::ZERO, |record| record.balance(&Denom::sat()));
        let indexed: Option<(Address, Amount)> = state.get_record(&holders.key(account.as_bytes()))?;
        match (balance.is_zero(), indexed) {
            (true, None) => {}
            (true, Some(_)) => state.remove_entry(&holders, account.as_bytes())?,
            (false, Some((_, amount))) if amount == balance => {}
            (false, _) => state.put_entry(&holders, account.as_bytes(), &(account, balance))?,
        }
    }
    Ok(())
}

/// `MsgSetRecoveryAddress`: where the exit pays the signer's wrapped BTC from the next
/// disbursal on. The address must be a standard one of the peg's network, not the peg itself, and
/// not on the chain's denylist (a disbursal pays every holder at once; it is not refused for one).
///
/// # Errors
/// `InvalidMessage` naming what is wrong with the address; storage failures.
pub fn set_recovery_address<R: StateRead>(
    state: &mut StateDelta<R>,
    set: &MsgSetRecoveryAddress,
    params: &Params,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let refused = |log: String| BankError::Rejected(TxRejection::new(TxCode::InvalidMessage, log));
    let key = state_keys::recovery_btc(&set.account);
    match &set.address {
        None => state.delete(key),
        Some(address) => {
            let federation = state.federation()?;
            let Some(peg) = crate::batch::peg_of(&federation)? else {
                return Err(refused("this chain has no Bitcoin peg".to_owned()));
            };
            let script = parse_destination(address, peg.network())
                .map_err(|error| refused(format!("recovery address: {error}")))?;
            if script == peg.script_pubkey() {
                return Err(refused("recovery address: that is the federation's own peg".to_owned()));
            }
            if params.withdrawals.denies(address) {
                return Err(refused(format!("recovery address `{address}` is on this chain's denylist")));
            }
            state.put_record(key, address);
        }
    }
    let destination = set.address.clone().unwrap_or_default();
    tracing::info!(account = %set.account, %destination, "Bitcoin recovery address set");
    events.push(Event::new(
        ev::RECOVERY_ADDRESS_SET,
        [(ev::ADDRESS, set.account.to_string()), (ev::DESTINATION, destination)],
    ));
    Ok(())
}

/// `/exit/btc/recovery/<account>`: the address the exit pays `account` (its own key's P2WPKH
/// unless it registered another).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn recovery_address<R: StateRead>(state: &StateDelta<R>, account: &Address) -> Result<RecoveryView, StateError> {
    let registered: Option<String> = state.get_record(&state_keys::recovery_btc(account))?;
    let network = crate::batch::peg_of(&state.federation()?)?.map(|peg| peg.network());
    let default = network.and_then(|network| {
        bitcoin::Address::from_script(&default_recovery_script(account), network.network())
            .ok()
            .map(|address| address.to_string())
    });
    Ok(RecoveryView { account: *account, registered, default })
}

/// Whether a reserve-moving Bitcoin batch (a release, consolidation or migration; a sweep spends
/// only retired UTXOs no disbursal covers) or a disbursal is still being signed or delivered.
/// With exits on, no other forms meanwhile.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn busy<R: StateRead>(state: &StateDelta<R>, params: &Params) -> Result<bool, StateError> {
    if params.withdrawals.bitcoin_exit.is_none() {
        return Ok(false);
    }
    for id in state.pending_batches()? {
        let moving = state.batch(id)?.is_some_and(|batch| match &batch.release {
            BatchRelease::Bitcoin(release) => release.sweep.is_none(),
            BatchRelease::BitcoinExit(_) => true,
            _ => false,
        });
        if moving {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The disbursal covering the reserve now, if any.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn covering<R: StateRead>(state: &StateDelta<R>) -> Result<Option<(u64, BitcoinExit)>, StateError> {
    let Some(id) = state.get_record::<u64>(state_keys::EXIT_BTC_COVERING)? else { return Ok(None) };
    Ok(exit_of(state, id)?.map(|exit| (id, exit)))
}

fn exit_of<R: StateRead>(state: &StateDelta<R>, id: u64) -> Result<Option<BitcoinExit>, StateError> {
    Ok(state.batch(id)?.and_then(|batch| match batch.release {
        BatchRelease::BitcoinExit(exit) => Some(exit),
        _ => None,
    }))
}

/// Every disbursal that may still confirm ([`live`]), with its record, by id.
fn live_exits<R: StateRead>(state: &StateDelta<R>) -> Result<Vec<(u64, BitcoinExit)>, StateError> {
    let mut exits = Vec::new();
    for (id, _) in live(state)? {
        exits.extend(exit_of(state, id)?.map(|exit| (id, exit)));
    }
    Ok(exits)
}

/// The inputs of `exit` a batch at the current peg may spend now: free reserve UTXOs (not locked
/// by a batch in flight, not at a retired peg), in the disbursal's input order.
fn spendable_inputs<R: StateRead>(
    state: &StateDelta<R>,
    exit: &BitcoinExit,
) -> Result<Vec<crate::bridge::ReserveUtxo>, StateError> {
    let mut spendable = Vec::new();
    for input in &exit.basis.inputs {
        let utxo = state.reserve_utxo(&input.txid, input.vout)?;
        spendable.extend(utxo.filter(|utxo| utxo.locked_by.is_none() && utxo.retired_epoch.is_none()));
    }
    Ok(spendable)
}

/// The inputs coin selection should prefer so a release spends at least one input of the
/// covering disbursal (which it then kills): those of `free` the covering disbursal spends.
/// Empty when there is no covering disbursal or exits are off.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn covered_among<R: StateRead>(state: &StateDelta<R>, free: &[Utxo]) -> Result<Vec<Utxo>, StateError> {
    let Some((_, exit)) = covering(state)? else { return Ok(Vec::new()) };
    Ok(free.iter().filter(|utxo| spends(&exit, utxo)).cloned().collect())
}

fn spends(exit: &BitcoinExit, utxo: &Utxo) -> bool {
    exit.basis.inputs.iter().any(|input| input.txid == utxo.txid && input.vout == utxo.vout)
}

/// The unsigned disbursal `version` of Bitcoin batch `batch` waits for, if any: that version's
/// signatures are refused until it is signed.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn gate<R: StateRead>(state: &StateDelta<R>, batch: &Batch) -> Result<Option<u64>, StateError> {
    let BatchRelease::Bitcoin(release) = &batch.release else { return Ok(None) };
    let Some(exit) = state.get_record::<u64>(&state_keys::exit_btc_for(batch.id, release.version))? else {
        return Ok(None);
    };
    Ok(match state.batch(exit)? {
        Some(record) if record.status != BatchStatus::Signed => Some(exit),
        _ => None,
    })
}

/// Derives the disbursal for the reserve the current version of Bitcoin batch `batch` leaves
/// behind (see the module docs), when exits are on: for a release or consolidation, at the
/// current peg ([`left_by_release`]); for a hand-over's migration that needs one, at the next
/// peg ([`left_by_migration`]); never for a sweep.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn derive_for<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    batch: &Batch,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let Some(exit_params) = &params.withdrawals.bitcoin_exit else { return Ok(()) };
    let BatchRelease::Bitcoin(release) = &batch.release else { return Ok(()) };
    let reserve = match (release.sweep, release.migration) {
        (Some(_), _) => return Ok(()),
        (None, Some(epoch)) => match left_by_migration(state, release, epoch)? {
            Some(reserve) => reserve,
            None => {
                tracing::info!(
                    batch_id = batch.id,
                    version = release.version,
                    height,
                    "the migration moves no coin a live exit disbursal covers: it needs no disbursal of its own"
                );
                return Ok(());
            }
        },
        (None, None) => left_by_release(state, release)?,
    };
    let follows = FollowedRelease { batch: batch.id, version: release.version, txid: release.txid.clone() };
    let planned = match reserve {
        Ok(reserve) => plan_for(state, params, exit_params, reserve)?,
        Err(reason) => Err(reason),
    };
    let derived = match planned {
        Ok(derived) => derived,
        Err(reason) => {
            tracing::warn!(batch_id = batch.id, version = release.version, %reason, height, "no exit disbursal for this release version");
            events.push(Event::new(
                ev::EXIT_NOT_DERIVED,
                [
                    (ev::BATCH_ID, batch.id.to_string()),
                    (ev::VERSION, release.version.to_string()),
                    (ev::REASON, reason),
                ],
            ));
            return Ok(());
        }
    };
    let Derived { epoch, basis, claims, clock, plan, sighashes } = derived;
    let claim_count = u32::try_from(claims.len()).unwrap_or(u32::MAX);
    let exit = BitcoinExit {
        follows,
        epoch,
        snapshot_height: height,
        clock,
        basis,
        claim_count,
        recipients: u32::try_from(plan.recipients().len()).unwrap_or(u32::MAX),
        pooled: u32::try_from(plan.pooled().len()).unwrap_or(u32::MAX),
        residual: plan.residual().unwrap_or(Amount::ZERO),
        fees: plan.fee_total(),
        txids: plan.transactions().map(|tx| tx.tx.compute_txid().to_string()).collect(),
        sighashes: ferry_types::release::exit::sighashes_hex(&sighashes),
        standing: ExitStanding::Candidate,
    };
    let (lock_height, recipients, pooled) = (exit.basis.lock_height, exit.recipients, exit.pooled);
    let id = crate::batch::record_itemless(state, &Denom::sat(), |_| BatchRelease::BitcoinExit(exit), height, events)?;
    for (page, chunk) in claims.chunks(CLAIMS_PER_PAGE).enumerate() {
        let page = u32::try_from(page).unwrap_or(u32::MAX);
        state.put_record(state_keys::exit_btc_claims(id, page), &chunk.to_vec());
    }
    state.put_record(state_keys::exit_btc_for(batch.id, release.version), &id);
    events.push(Event::new(
        ev::EXIT_DERIVED,
        [
            (ev::BATCH_ID, id.to_string()),
            (ev::FOLLOWS, batch.id.to_string()),
            (ev::VERSION, release.version.to_string()),
            (ev::LOCK_HEIGHT, lock_height.to_string()),
            (ev::RECIPIENTS, recipients.to_string()),
            (ev::POOLED, pooled.to_string()),
        ],
    ));
    tracing::info!(
        exit_id = id,
        follows = batch.id,
        version = release.version,
        lock_height,
        recipients,
        pooled,
        height,
        "exit disbursal derived: the release waits for it to be signed"
    );
    Ok(())
}

struct Derived {
    epoch: u64,
    basis: ExitBasis,
    claims: Vec<RecordedClaim>,
    clock: u64,
    plan: ferry_types::release::exit::ExitPlan,
    sighashes: Vec<Vec<[u8; 32]>>,
}

/// The reserve a disbursal pays out: its inputs, the peg they are at and the epoch of the
/// federation holding it (whose members sign the disbursal).
struct Reserve {
    epoch: u64,
    peg: ferry_types::peg::Peg,
    inputs: Vec<Utxo>,
}

/// What a release or consolidation at the current peg leaves: the free reserve UTXOs (largest
/// first) and its change, at most [`MAX_EXIT_INPUTS`] together; `Err` names why there is none.
fn left_by_release<R: StateRead>(
    state: &StateDelta<R>,
    release: &BitcoinRelease,
) -> Result<Result<Reserve, String>, StateError> {
    let federation = state.federation()?;
    let Some(peg) = crate::batch::peg_of(&federation)? else {
        return Ok(Err("this chain has no Bitcoin peg".to_owned()));
    };
    let change = release.plan.change().zip(release.plan.change_vout());
    let room = MAX_EXIT_INPUTS.saturating_sub(usize::from(change.is_some()));
    let mut inputs: Vec<Utxo> =
        state.free_reserve_utxos(true, room)?.iter().map(crate::bridge::ReserveUtxo::utxo).collect();
    if let Some((amount, vout)) = change {
        inputs.push(Utxo { txid: release.txid.clone(), vout, amount, owner: None });
    }
    Ok(Ok(Reserve { epoch: federation.epoch, peg, inputs }))
}

/// What a hand-over's migration to `epoch` leaves at the next federation's peg, when it needs a
/// disbursal: when it spends an input of a live disbursal (which it kills; [`migration_inputs`]
/// has it move all that disbursal covers) or when none is live. Its output is paid out, with the
/// outputs earlier migrations moved that no live disbursal spends; the next federation signs it.
/// `None`: it moves only coins no disbursal covers and leaves every live one valid.
fn left_by_migration<R: StateRead>(
    state: &StateDelta<R>,
    release: &BitcoinRelease,
    epoch: u64,
) -> Result<Option<Result<Reserve, String>>, StateError> {
    let live_exits: Vec<BitcoinExit> = live_exits(state)?.into_iter().map(|(_, exit)| exit).collect();
    let kills = live_exits.iter().any(|exit| release.plan.inputs().iter().any(|utxo| spends(exit, utxo)));
    if !live_exits.is_empty() && !kills {
        return Ok(None);
    }
    let Some(next) = state.next_federation()?.filter(|next| next.epoch == epoch) else {
        return Ok(Some(Err(format!("the federation of epoch {epoch} is not the one the hand-over runs to"))));
    };
    let Some(peg) = crate::batch::peg_of(&next)? else {
        return Ok(Some(Err(format!("the federation of epoch {epoch} has no Bitcoin peg"))));
    };
    let mut inputs = Vec::new();
    for (vout, output) in release.plan.outputs().iter().enumerate() {
        let vout = u32::try_from(vout).unwrap_or(u32::MAX);
        inputs.push(Utxo { txid: release.txid.clone(), vout, amount: output.amount, owner: None });
    }
    if let Some(handover) = state.running_handover()? {
        for migrated in &handover.migrated {
            let utxo = Utxo { txid: migrated.txid.clone(), vout: migrated.vout, amount: migrated.amount, owner: None };
            if !live_exits.iter().any(|exit| spends(exit, &utxo)) {
                inputs.push(utxo);
            }
        }
    }
    inputs.truncate(MAX_EXIT_INPUTS);
    Ok(Some(Ok(Reserve { epoch, peg, inputs })))
}

/// The free reserve UTXOs a hand-over's next migration spends, in order, and how many of the
/// first ones it must take together: with exits on, every free input of the live disbursals
/// comes first — whole disbursals, the covering one first, as many as fit in `limit` — so a
/// migration moves everything a disbursal covers or none of it (its own disbursal then covers
/// them at the next peg, [`left_by_migration`]); then the largest other free UTXOs, up to `limit`.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn migration_inputs<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    limit: usize,
) -> Result<(Vec<crate::bridge::ReserveUtxo>, usize), StateError> {
    let free = state.free_reserve_utxos(true, limit)?;
    if params.withdrawals.bitcoin_exit.is_none() {
        return Ok((free, 0));
    }
    let mut exits = live_exits(state)?;
    if let Some(covering) = state.get_record::<u64>(state_keys::EXIT_BTC_COVERING)? {
        exits.sort_by_key(|(id, _)| *id != covering);
    }
    let mut anchors: Vec<crate::bridge::ReserveUtxo> = Vec::new();
    for (_, exit) in exits {
        let whole: Vec<_> =
            spendable_inputs(state, &exit)?.into_iter().filter(|utxo| !anchors.contains(utxo)).collect();
        if anchors.len().saturating_add(whole.len()) <= limit {
            anchors.extend(whole);
        }
    }
    let keep = anchors.len();
    let rest: Vec<_> = free.into_iter().filter(|utxo| !anchors.contains(utxo)).collect();
    anchors.extend(rest);
    anchors.truncate(limit);
    Ok((anchors, keep))
}

/// Plans the disbursal of `reserve`; `Err` names why there is none.
fn plan_for<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    exit_params: &BitcoinExitParams,
    reserve: Reserve,
) -> Result<Result<Derived, String>, StateError> {
    let Reserve { epoch, peg, inputs } = reserve;
    let Some(clock) = crate::bitcoin_fees::clock_height(state)? else {
        return Ok(Err("the members have not reported a Bitcoin height yet".to_owned()));
    };
    let Some(lock_height) = u32::try_from(clock.saturating_add(u64::from(exit_params.lock_blocks))).ok() else {
        return Ok(Err(format!("Bitcoin height {clock} is out of range")));
    };
    refresh_holders(state)?;
    let mut holders = Vec::new();
    for (account, balance) in state.all_entries::<(Address, Amount)>(&keys::holders())? {
        let registered: Option<String> = state.get_record(&state_keys::recovery_btc(&account))?;
        // Registration checked the address for the peg's network; a peg since moved to another
        // network (never, in practice) falls back to the account's own key.
        let recovery_script = registered.and_then(|address| parse_destination(&address, peg.network()).ok());
        holders.push(Holder { account, balance, recovery_script });
    }
    let mut withdrawals = Vec::new();
    for id in state.queued_withdrawals(&Denom::sat(), None, usize::MAX)? {
        let Some(withdrawal) = state.withdrawal(id)? else { continue };
        match parse_destination(&withdrawal.destination, peg.network()) {
            Ok(script) => withdrawals.push(UnpaidWithdrawal { id: id.0, script, amount: withdrawal.amount }),
            Err(error) => {
                return Ok(Err(format!("queued {}'s destination does not parse: {error}", WithdrawalId(id.0))));
            }
        }
    }
    let rate = exit_params.fee_rate(state.bitcoin_fee_rate(params)?, params.withdrawals.bitcoin_fee_bounds());
    let basis = ExitBasis {
        inputs,
        rate,
        lock_height,
        min_output: exit_params.min_output,
        max_tx_vbytes: exit_params.max_tx_vbytes,
    };
    let claims = record_claims(&holders, &withdrawals);
    let plan = match plan_recorded(&basis, &claims, &peg) {
        Ok(plan) => plan,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let sighashes = match exit_sighashes(&plan, &peg) {
        Ok(sighashes) => sighashes,
        Err(error) => return Ok(Err(error.to_string())),
    };
    // The recorded inputs are in the intermediate's order, which is what signers plan from.
    let basis = ExitBasis { inputs: plan.inputs().to_vec(), ..basis };
    Ok(Ok(Derived { epoch, basis, claims, clock, plan, sighashes }))
}

/// When a disbursal collects its threshold of signatures: it leaves the pending batches (it is
/// kept, never delivered).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn signed<R: StateRead>(state: &mut StateDelta<R>, batch: &Batch) -> Result<(), StateError> {
    if matches!(batch.release, BatchRelease::BitcoinExit(_)) {
        state.remove_pending_batch(batch.id)?;
    }
    Ok(())
}

/// When version `version` of Bitcoin batch `batch` confirmed: its disbursal becomes the covering
/// one; the previous covering one and the other versions' disbursals are superseded.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn settled<R: StateRead>(
    state: &mut StateDelta<R>,
    batch: &Batch,
    version: u32,
    spent: &[Utxo],
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let BatchRelease::Bitcoin(release) = &batch.release else { return Ok(()) };
    if release.sweep.is_some() {
        // A sweep spends retired UTXOs no disbursal covers.
        return Ok(());
    }
    let confirmed: Option<u64> = state.get_record(&state_keys::exit_btc_for(batch.id, version))?;
    for (id, exit) in live_exits(state)? {
        if spent.iter().any(|utxo| spends(&exit, utxo)) {
            set_standing(state, id, ExitStanding::Superseded)?;
        } else {
            tracing::warn!(
                exit_id = id,
                batch_id = batch.id,
                height,
                "the reserve move spent none of this disbursal's inputs: it stays valid until one does (a refresh before its lock)"
            );
        }
    }
    for other in 0..=release.version {
        let Some(id) = state.get_record::<u64>(&state_keys::exit_btc_for(batch.id, other))? else { continue };
        if Some(id) != confirmed {
            set_standing(state, id, ExitStanding::Superseded)?;
        }
    }
    match confirmed {
        Some(id) => {
            set_standing(state, id, ExitStanding::Covering)?;
            state.put_record(state_keys::EXIT_BTC_COVERING.to_vec(), &id);
            events.push(Event::new(
                ev::EXIT_COVERING,
                [(ev::BATCH_ID, id.to_string()), (ev::FOLLOWS, batch.id.to_string())],
            ));
            tracing::info!(exit_id = id, follows = batch.id, version, height, "exit disbursal now covers the reserve");
        }
        None => {
            let still_live = match state.get_record::<u64>(state_keys::EXIT_BTC_COVERING)? {
                Some(id) => live(state)?.iter().any(|(live, _)| *live == id),
                None => false,
            };
            if !still_live {
                state.delete(state_keys::EXIT_BTC_COVERING.to_vec());
            }
        }
    }
    Ok(())
}

/// Every disbursal that may still confirm, as (id, lock height), by id.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn live<R: StateRead>(state: &StateDelta<R>) -> Result<Vec<(u64, u32)>, StateError> {
    state.all_entries(&keys::live())
}

/// When Bitcoin batch `batch` is aborted: its disbursals can never be valid.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn aborted<R: StateRead>(state: &mut StateDelta<R>, batch: &Batch) -> Result<(), StateError> {
    let BatchRelease::Bitcoin(release) = &batch.release else { return Ok(()) };
    for version in 0..=release.version {
        if let Some(id) = state.get_record::<u64>(&state_keys::exit_btc_for(batch.id, version))? {
            set_standing(state, id, ExitStanding::Superseded)?;
        }
    }
    Ok(())
}

/// Sets disbursal `id`'s standing; a superseded one still being signed leaves the pending batches.
fn set_standing<R: StateRead>(state: &mut StateDelta<R>, id: u64, standing: ExitStanding) -> Result<(), StateError> {
    let Some(mut batch) = state.batch(id)? else { return Ok(()) };
    let BatchRelease::BitcoinExit(exit) = &mut batch.release else { return Ok(()) };
    exit.standing = standing;
    match standing {
        ExitStanding::Superseded => {
            state.remove_pending_batch(id)?;
            state.remove_entry(&keys::live(), &id.to_be_bytes())?;
        }
        ExitStanding::Covering => state.put_entry(&keys::live(), &id.to_be_bytes(), &(id, exit.basis.lock_height))?,
        ExitStanding::Candidate => {}
    }
    state.put_batch(&batch);
    Ok(())
}

/// `/exit/btc`: the covering disbursal, the Bitcoin clock, and the disbursals derived for the
/// releases in flight.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn status<R: StateRead>(state: &StateDelta<R>) -> Result<BtcExitStatus, StateError> {
    let mut candidates = Vec::new();
    for id in state.pending_batches()? {
        let Some(batch) = state.batch(id)? else { continue };
        let BatchRelease::Bitcoin(release) = &batch.release else { continue };
        for version in 0..=release.version {
            candidates.extend(state.get_record::<u64>(&state_keys::exit_btc_for(id, version))?);
        }
    }
    Ok(BtcExitStatus {
        covering: state.get_record(state_keys::EXIT_BTC_COVERING)?,
        clock: crate::bitcoin_fees::clock_height(state)?,
        candidates,
    })
}

/// `/exit/btc/<id>`: disbursal `id` with its claims (`None`: no such disbursal).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn disbursal<R: StateRead>(state: &StateDelta<R>, id: u64) -> Result<Option<BtcDisbursalView>, StateError> {
    let Some(batch) = state.batch(id)? else { return Ok(None) };
    let BatchRelease::BitcoinExit(exit) = &batch.release else { return Ok(None) };
    let mut claims = Vec::new();
    for page in 0..exit.claim_pages() {
        let chunk: Vec<RecordedClaim> = state.get_record(&state_keys::exit_btc_claims(id, page))?.unwrap_or_default();
        claims.extend(chunk);
    }
    Ok(Some(BtcDisbursalView { batch, claims }))
}

/// Why a refresh is due, if it is (see [`refresh_if_due`]).
fn refresh_reason<R: StateRead>(
    state: &StateDelta<R>,
    exit_params: &BitcoinExitParams,
    free: &[Utxo],
) -> Result<Option<String>, StateError> {
    let covering = covering(state)?;
    if let Some(clock) = crate::bitcoin_fees::clock_height(state)? {
        for (id, lock) in live(state)? {
            let due = u64::from(lock).saturating_sub(u64::from(exit_params.refresh_margin_blocks));
            if clock >= due {
                return Ok(Some(format!(
                    "disbursal {id} opens at Bitcoin height {lock}: {} blocks from the clock {clock}",
                    u64::from(lock).saturating_sub(clock)
                )));
            }
        }
    }
    let uncovered: u128 = free
        .iter()
        .filter(|utxo| covering.as_ref().is_none_or(|(_, exit)| !spends(exit, utxo)))
        .map(|utxo| utxo.amount.get())
        .sum();
    let reserves = state.ledger(&Denom::sat())?.reserves.get();
    if uncovered > 0
        && uncovered.saturating_mul(100) > reserves.saturating_mul(u128::from(exit_params.max_uncovered_percent))
    {
        return Ok(Some(format!("{uncovered} sat of the {reserves} sat reserve are in no disbursal")));
    }
    Ok(None)
}

/// Forms a **refresh** when one is due, at batching heights while nothing else moves the reserve:
/// a consolidation of the free reserve UTXOs (largest first, at most [`MAX_EXIT_INPUTS`], one at
/// least; paid as any upkeep, [`crate::handover::fee_budget`]) whose disbursal covers everything it leaves. It is due when the
/// covering disbursal's lock is within `refresh_margin_blocks` of the Bitcoin clock — its
/// confirmation spends that disbursal's inputs, so it can never open while the federation
/// signs — or when deposits no disbursal covers hold more than `max_uncovered_percent` of the
/// reserves (the first deposits included).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn refresh_if_due<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let Some(exit_params) = &params.withdrawals.bitcoin_exit else { return Ok(()) };
    if !params.withdrawals.is_batch_height(height) || busy(state, params)? || state.running_handover()?.is_some() {
        return Ok(());
    }
    let Some(peg) = crate::batch::peg_of(&state.federation()?)? else { return Ok(()) };
    let free: Vec<Utxo> =
        state.free_reserve_utxos(true, MAX_EXIT_INPUTS)?.iter().map(crate::bridge::ReserveUtxo::utxo).collect();
    let Some(reason) = refresh_reason(state, exit_params, &free)? else { return Ok(()) };
    // At least one input of every disbursal that may still confirm comes first, so the refresh
    // kills them all; then the largest free UTXOs.
    let mut anchors: Vec<Utxo> = Vec::new();
    for (_, exit) in live_exits(state)? {
        if free.iter().chain(&anchors).any(|utxo| spends(&exit, utxo)) {
            continue;
        }
        anchors.extend(spendable_inputs(state, &exit)?.first().map(crate::bridge::ReserveUtxo::utxo));
    }
    let free: Vec<Utxo> = anchors
        .iter()
        .cloned()
        .chain(free.into_iter().filter(|utxo| !anchors.contains(utxo)))
        .take(MAX_EXIT_INPUTS)
        .collect();
    let rules = &params.withdrawals;
    let rate = state.bitcoin_fee_rate(params)?;
    // Paid as any upkeep: the fee pool, the surplus, then the collected fees.
    let budget = crate::handover::fee_budget(state)?;
    let mut planned = None;
    for count in (1..=free.len()).rev() {
        match plan_consolidation(&free[..count], rate, &peg, rules.bitcoin_dust_limit) {
            Ok(plan) if plan.fee() <= budget => {
                planned = Some(plan);
                break;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(inputs = count, %error, height, %reason, "exit disbursal not refreshed");
                return Ok(());
            }
        }
    }
    let Some(plan) = planned else {
        tracing::warn!(%budget, height, %reason, "the fee pool, surplus and collected fees cannot pay a refresh of the exit disbursal yet");
        return Ok(());
    };
    let release = match BitcoinRelease::new(plan, rate, &peg) {
        Ok(release) => release,
        Err(error) => {
            tracing::warn!(%error, height, "exit disbursal not refreshed");
            return Ok(());
        }
    };
    let inputs = release.plan.inputs().len();
    // Formed only if its disbursal can be: a refresh without one would leave nothing covering
    // and be formed again at once, spending the fee pool for nothing. The holder index must be
    // current first: the trial fork sees only its own writes, not the accounts this block wrote.
    refresh_holders(state)?;
    let mut trial = state.fork();
    let mut formed = Vec::new();
    let id = crate::batch::record_itemless(
        &mut trial,
        &Denom::sat(),
        |_| BatchRelease::Bitcoin(release),
        height,
        &mut formed,
    )?;
    if trial.get_record::<u64>(&state_keys::exit_btc_for(id, 0))?.is_none() {
        tracing::warn!(height, %reason, "exit disbursal not refreshed: the refresh's own disbursal cannot be derived");
        return Ok(());
    }
    let writes = trial.into_writes();
    state.absorb(writes);
    events.extend(formed);
    events.push(Event::new(
        ev::EXIT_REFRESH,
        [(ev::BATCH_ID, id.to_string()), (ev::ITEMS, inputs.to_string()), (ev::REASON, reason.clone())],
    ));
    tracing::info!(batch_id = id, inputs, %reason, height, "refreshing the exit disbursal");
    Ok(())
}
