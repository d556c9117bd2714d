//! Unattributed payments: Bitcoin paid to the peg without a valid memo (none, several, malformed),
//! or ERC-20 tokens sent to the vault by a plain `transfer` (not `depositToken`), name no account. A quorum of members attests it like a deposit, with the reason and the
//! unattributed pool as recipient ([`ferry_types::Address::unattributed_pool`]); the chain then
//! holds it in the reserves (`AssetLedger::unattributed`, a reserve UTXO like any other) and mints
//! nothing. Members resolve each by quorum (`MsgResolveUnattributed`): credit it to an account
//! (minted like a deposit: the amount less what it prepays for its own spending), or refund it to
//! a Bitcoin address — a withdrawal from the pool, batched and paid like any other, paying its own
//! share of the miner fee. Payments below the minimum deposit stay below-minimum records (never
//! spent: moving them would cost more than they hold).

use std::collections::BTreeMap;

use ferry_types::deposit::Unattributed;
use ferry_types::deposit_record::{DepositRecord, DepositStatus, Resolved, UnattributedState};
use ferry_types::event as ev;
use ferry_types::msg::{MsgResolveUnattributed, MsgWithdraw, Resolution, check_destination, parent_chain_of};
use ferry_types::query::OpenUnattributed;
use ferry_types::release::bitcoin::parse_destination;
use ferry_types::{Address, Amount, Coin, Denom, DepositFacts, DepositId, Params, ParentChain, TxCode, TxRejection};

use crate::bank::{self, BankError};
use crate::event::Event;
use crate::state::{Collection, StateDelta, StateError, StateRead};

/// State keys of unattributed payments.
pub mod keys {
    use crate::state::Collection;

    /// The open (unresolved) payments, keyed by deposit id.
    pub fn open() -> Collection {
        Collection::new("unattributed_open/")
    }
}

fn refused(code: TxCode, log: impl Into<String>) -> BankError {
    BankError::Rejected(TxRejection::new(code, log))
}

impl<R: StateRead> StateDelta<R> {
    /// Up to `limit` open unattributed payments in deposit id order, after `after` when given.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn open_unattributed(
        &self,
        after: Option<&DepositId>,
        limit: usize,
    ) -> Result<Vec<OpenUnattributed>, StateError> {
        self.entries(&keys::open(), after.map(|id| id.as_str().as_bytes()), false, limit)
    }

    /// How many unattributed payments are open.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn open_unattributed_count(&self) -> Result<u64, StateError> {
        self.entry_count(&keys::open())
    }
}

/// Records the unattributed payment `facts` (reason `reason`) a quorum attested: the output joins
/// the reserves and the ledger's `unattributed`; nothing is minted.
///
/// # Errors
/// `Overflow` if the ledger would overflow; storage failures.
pub(crate) fn record<R: StateRead>(
    state: &mut StateDelta<R>,
    record: &mut DepositRecord,
    facts: &DepositFacts,
    reason: Unattributed,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let mut ledger = state.ledger(&facts.asset)?;
    let overflow = || refused(TxCode::Overflow, format!("{} reserves would overflow", facts.asset));
    ledger.reserves = ledger.reserves.checked_add(facts.amount).map_err(|_| overflow())?;
    ledger.unattributed = ledger.unattributed.checked_add(facts.amount).map_err(|_| overflow())?;
    state.put_ledger(&facts.asset, &ledger)?;
    crate::bridge::put_deposit_utxo(state, facts)?;
    let id = facts.id();
    let open: Collection = keys::open();
    state.put_entry(
        &open,
        id.as_str().as_bytes(),
        &OpenUnattributed { id: id.clone(), amount: facts.amount, reason, height },
    )?;
    record.status = DepositStatus::Unattributed;
    record.unattributed = Some(UnattributedState {
        reason,
        asset: facts.asset.clone(),
        amount: facts.amount,
        height,
        votes: BTreeMap::new(),
        resolved: None,
    });
    events.push(Event::new(
        ev::DEPOSIT_UNATTRIBUTED,
        [
            (ev::DEPOSIT_ID, id.to_string()),
            (ev::AMOUNT, format!("{}{}", facts.amount, facts.asset)),
            (ev::REASON, reason.description().to_owned()),
        ],
    ));
    tracing::warn!(deposit_id = %id, amount = %facts.amount, %reason, height, "unattributed payment to the peg: held, minted to nobody until members resolve it");
    Ok(())
}

/// Records `vote`; at `quorum` identical votes carries it out. Votes after the resolution change
/// nothing.
///
/// # Errors
/// `InvalidMessage` for a payment that is not unattributed or a refund address of another
/// network; the refund's withdrawal refusals (`WithdrawalRefused`, `BridgePaused`, …) or a
/// credit worth less than its own spending, at the vote that reaches the quorum; storage failures.
pub fn resolve<R: StateRead>(
    state: &mut StateDelta<R>,
    vote: &MsgResolveUnattributed,
    params: &Params,
    quorum: u32,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let id = &vote.deposit;
    let Some(mut deposit) = state.deposit(id)? else {
        return Err(refused(TxCode::InvalidMessage, format!("no payment {id} is recorded")));
    };
    let Some(open) = deposit.unattributed.as_mut() else {
        return Err(refused(
            TxCode::InvalidMessage,
            format!("{id} is not an unattributed payment (it is {:?})", deposit.status),
        ));
    };
    if open.resolved.is_some() {
        return Ok(());
    }
    if let Resolution::Refund { destination, .. } = &vote.resolution {
        check_refund_address(state, &open.asset, destination)?;
    }
    open.votes.insert(vote.member, vote.resolution.clone());
    let agreeing = open.votes.values().filter(|voted| **voted == vote.resolution).count();
    let shown = show(&vote.resolution);
    events.push(Event::new(
        ev::UNATTRIBUTED_VOTE,
        [
            (ev::DEPOSIT_ID, id.to_string()),
            (ev::ATTESTER, vote.member.to_string()),
            (ev::RESOLUTION, shown.clone()),
            (ev::ATTESTATIONS, agreeing.to_string()),
            (ev::QUORUM, quorum.to_string()),
        ],
    ));
    if u32::try_from(agreeing).unwrap_or(u32::MAX) >= quorum {
        let (asset, amount) = (open.asset.clone(), open.amount);
        let resolved = carry_out(state, id, &asset, amount, &vote.resolution, params, height, events)?;
        open.resolved = Some(resolved);
        state.remove_entry(&keys::open(), id.as_str().as_bytes())?;
        tracing::info!(deposit_id = %id, resolution = shown, %amount, height, "unattributed payment resolved");
    }
    state.put_deposit(&deposit);
    Ok(())
}

/// Refuses a refund address that is not one of `asset`'s parent chain (on Bitcoin: of the peg's
/// network).
fn check_refund_address<R: StateRead>(
    state: &StateDelta<R>,
    asset: &Denom,
    destination: &str,
) -> Result<(), BankError> {
    let bad = |error: String| refused(TxCode::InvalidMessage, format!("refund_to: {error}"));
    match parent_chain_of(asset) {
        ParentChain::Bitcoin => {
            let network = state.federation()?.bitcoin.map(|bitcoin| bitcoin.network);
            let network = network.ok_or_else(|| refused(TxCode::InvalidMessage, "this chain has no Bitcoin peg"))?;
            parse_destination(destination, network).map(|_| ()).map_err(|error| bad(error.to_string()))
        }
        ParentChain::Ethereum => check_destination(asset, destination).map(|_| ()).map_err(bad),
    }
}

/// `credit:<account>` or `refund:<address>`.
fn show(resolution: &Resolution) -> String {
    match resolution {
        Resolution::Credit { account } => format!("credit:{account}"),
        Resolution::Refund { destination, .. } => format!("refund:{destination}"),
    }
}

/// Moves `amount` out of the ledger's `unattributed`: minted to the account, or withdrawn from
/// the pool to the refund address.
#[allow(clippy::too_many_arguments)]
fn carry_out<R: StateRead>(
    state: &mut StateDelta<R>,
    id: &DepositId,
    asset: &Denom,
    amount: Amount,
    resolution: &Resolution,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<Resolved, BankError> {
    let mut ledger = state.ledger(asset)?;
    let overflow = || refused(TxCode::Overflow, format!("the {asset} ledger would overflow"));
    ledger.unattributed = ledger.unattributed.checked_sub(amount).map_err(|_| {
        refused(TxCode::Overflow, format!("the ledger's unattributed {asset} is below {id}'s {amount}"))
    })?;
    let mut resolved =
        Resolved { resolution: resolution.clone(), height, credited: None, spend_fee: None, withdrawal: None };
    let mut attributes = vec![(ev::DEPOSIT_ID, id.to_string()), (ev::RESOLUTION, show(resolution))];
    match resolution {
        Resolution::Credit { account } => {
            let spend_fee = match parent_chain_of(asset) {
                ParentChain::Bitcoin => crate::bridge::bitcoin_spend_fee(state, params, None)?,
                ParentChain::Ethereum => Amount::ZERO,
            };
            let credited =
                amount.checked_sub(spend_fee).ok().filter(|credited| !credited.is_zero()).ok_or_else(|| {
                    refused(
                        TxCode::InvalidMessage,
                        format!("{id} holds {amount}{asset}, not more than its own spending ({spend_fee}{asset})"),
                    )
                })?;
            ledger.supply = ledger.supply.checked_add(credited).map_err(|_| overflow())?;
            ledger.fee_pool = ledger.fee_pool.checked_add(spend_fee).map_err(|_| overflow())?;
            state.put_ledger(asset, &ledger)?;
            let coin = Coin { denom: asset.clone(), amount: credited };
            let mut record = bank::load_or_create(state, account, events)?;
            bank::credit(&mut record, account, &coin).map_err(BankError::Rejected)?;
            state.put_account(account, &record);
            resolved.credited = Some(credited);
            resolved.spend_fee = (!spend_fee.is_zero()).then_some(spend_fee);
            attributes.push((ev::RECIPIENT, account.to_string()));
            attributes.push((ev::AMOUNT, coin.to_string()));
        }
        Resolution::Refund { destination, max_fee } => {
            // Into the pool's balance, then withdrawn like any burn: every rule a withdrawal
            // meets (limits, budget, destination) applies, and the batch pays it.
            ledger.supply = ledger.supply.checked_add(amount).map_err(|_| overflow())?;
            state.put_ledger(asset, &ledger)?;
            let pool = Address::unattributed_pool();
            let mut record = bank::load_or_create(state, &pool, events)?;
            bank::credit(&mut record, &pool, &Coin { denom: asset.clone(), amount }).map_err(BankError::Rejected)?;
            state.put_account(&pool, &record);
            let withdraw = MsgWithdraw {
                sender: pool,
                asset: asset.clone(),
                amount,
                destination: destination.clone(),
                max_fee: *max_fee,
            };
            let withdrawal = crate::withdrawal::withdraw(state, &withdraw, params, height, events)?;
            resolved.withdrawal = Some(withdrawal);
            attributes.push((ev::WITHDRAWAL_ID, withdrawal.to_string()));
        }
    }
    events.push(Event::new(ev::UNATTRIBUTED_RESOLVED, attributes));
    Ok(resolved)
}
