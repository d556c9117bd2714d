//! Withdrawals, sidechain side: `MsgWithdraw` burns wrapped tokens and queues a withdrawal
//! (`wd-<n>`) for the next batch of its asset ([`crate::batch`]).
//!
//! Everything that can be decided when the tokens are burned is decided then, so a queued
//! withdrawal is always releasable eventually: the asset has a configured limit, the amount is
//! between the asset's minimum and its window cap, the destination is an address of the peg's
//! Bitcoin network (not the peg itself) or of Ethereum, and the parent chain's release path is
//! configured. The burn moves the amount from `supply` to `unreleased` in the asset's ledger, so
//! the reserves invariant keeps holding until the release settles.
//!
//! The large-withdrawal delay (`delay_blocks` above an asset's `delay_above`) applies to what a
//! sender withdraws of the asset in the outflow window, not to each withdrawal: ten withdrawals
//! just under the threshold cannot leave at once. Every withdrawal that takes the sender's window
//! total past the threshold waits. (Across a window boundary at most twice the threshold leaves
//! undelayed; several accounts of one person are bounded by the asset's window cap, not here.)

use ferry_types::event as ev;
use ferry_types::msg::{MsgWithdraw, parent_chain_of};
use ferry_types::peg::Peg;
use ferry_types::query::{Withdrawal, WithdrawalId};
use ferry_types::release::bitcoin::{lone_release_fee, parse_destination};
use ferry_types::{Address, Amount, Denom, Params, ParentChain, TxCode, TxRejection};

use crate::bank::{self, BankError};
use crate::batch::WindowOutflow;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of the withdrawal queue.
pub mod keys {
    use ferry_types::Denom;

    pub use ferry_types::state_keys::withdrawal;

    /// The last withdrawal number assigned (JSON integer; 0 or absent before the first).
    pub const LAST_WITHDRAWAL: &[u8] = b"last_withdrawal";

    /// What a sender has withdrawn of an asset in the current outflow window
    /// ([`crate::batch::WindowOutflow`]; one record per sender and asset, overwritten when a new
    /// window starts).
    pub fn sender_outflow(sender: &ferry_types::Address, denom: &Denom) -> Vec<u8> {
        format!("withdrawn/{sender}/{denom}").into_bytes()
    }

    /// Queued (not yet batched) withdrawals of an asset, one entry per withdrawal keyed by its
    /// big-endian number, so the queue is walked in id (burn) order.
    pub fn queue(denom: &Denom) -> crate::state::Collection {
        crate::state::Collection::new(format!("withdrawal_queue/{denom}/"))
    }
}

fn refused(code: TxCode, log: impl Into<String>) -> BankError {
    BankError::Rejected(TxRejection::new(code, log))
}

impl<R: StateRead> StateDelta<R> {
    /// The record of withdrawal `id`.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn withdrawal(&self, id: WithdrawalId) -> Result<Option<Withdrawal>, StateError> {
        self.get_record(&keys::withdrawal(id))
    }

    /// Stores a withdrawal record.
    pub fn put_withdrawal(&mut self, withdrawal: &Withdrawal) {
        self.put_record(keys::withdrawal(withdrawal.id), withdrawal);
    }

    /// Up to `limit` queued withdrawals of `denom` in id order, after `after` when given.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn queued_withdrawals(
        &self,
        denom: &Denom,
        after: Option<WithdrawalId>,
        limit: usize,
    ) -> Result<Vec<WithdrawalId>, StateError> {
        let after = after.map(|id| id.0.to_be_bytes());
        self.entries(&keys::queue(denom), after.as_ref().map(<[u8; 8]>::as_slice), false, limit)
    }

    /// How many withdrawals of `denom` are queued.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn queued_withdrawal_count(&self, denom: &Denom) -> Result<u64, StateError> {
        self.entry_count(&keys::queue(denom))
    }

    /// Puts `id` in the queue of `denom` (in its id order; nothing when already there).
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub(crate) fn enqueue_withdrawal(&mut self, denom: &Denom, id: WithdrawalId) -> Result<(), StateError> {
        self.put_entry(&keys::queue(denom), &id.0.to_be_bytes(), &id)
    }

    /// Takes `id` out of the queue of `denom`.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub(crate) fn dequeue_withdrawal(&mut self, denom: &Denom, id: WithdrawalId) -> Result<(), StateError> {
        self.remove_entry(&keys::queue(denom), &id.0.to_be_bytes())
    }

    /// What `sender` has withdrawn of `denom` in outflow window `window` (zero when the stored
    /// record is of an earlier window).
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn sender_outflow(&self, sender: &Address, denom: &Denom, window: u64) -> Result<Amount, StateError> {
        let stored: WindowOutflow = self.get_record(&keys::sender_outflow(sender, denom))?.unwrap_or_default();
        Ok(if stored.window == window { stored.amount } else { Amount::ZERO })
    }

    fn next_withdrawal_id(&mut self) -> Result<WithdrawalId, StateError> {
        let last: u64 = self.get_record(keys::LAST_WITHDRAWAL)?.unwrap_or(0);
        let next = last.saturating_add(1);
        self.put_record(keys::LAST_WITHDRAWAL.to_vec(), &next);
        Ok(WithdrawalId(next))
    }
}

/// Checks that `withdraw` can be released once burned.
fn check_releasable<R: StateRead>(
    state: &StateDelta<R>,
    withdraw: &MsgWithdraw,
    params: &Params,
) -> Result<(), BankError> {
    let rules = &params.withdrawals;
    let asset = &withdraw.asset;
    let Some(limit) = rules.limit(asset) else {
        return Err(refused(
            TxCode::WithdrawalRefused,
            format!(
                "`{asset}` has no withdrawal limit configured (params.withdrawals.limits), so it cannot be withdrawn"
            ),
        ));
    };
    if withdraw.amount < limit.min_amount {
        return Err(refused(
            TxCode::WithdrawalRefused,
            format!("withdrawal of {}{asset} is below the minimum of {}{asset}", withdraw.amount, limit.min_amount),
        ));
    }
    if withdraw.amount > limit.window_cap {
        return Err(refused(
            TxCode::WithdrawalRefused,
            format!(
                "withdrawal of {}{asset} exceeds the cap of {}{asset} per {}-block window and could never be released; \
                 split it into smaller withdrawals",
                withdraw.amount, limit.window_cap, rules.window_blocks
            ),
        ));
    }
    if rules.denies(&withdraw.destination) {
        return Err(refused(
            TxCode::WithdrawalRefused,
            format!("destination `{}` is on this chain's denylist (params.withdrawals.denylist)", withdraw.destination),
        ));
    }
    let federation = state.federation()?;
    match parent_chain_of(asset) {
        ParentChain::Bitcoin => {
            let Some(bitcoin) = &federation.bitcoin else {
                return Err(refused(TxCode::WithdrawalRefused, "this chain has no Bitcoin peg to release from"));
            };
            let peg = Peg::new(bitcoin).map_err(|error| refused(TxCode::WithdrawalRefused, error.to_string()))?;
            let script = parse_destination(&withdraw.destination, bitcoin.network)
                .map_err(|error| refused(TxCode::InvalidMessage, format!("destination: {error}")))?;
            if script == peg.script_pubkey() {
                return Err(refused(
                    TxCode::InvalidMessage,
                    format!("destination `{}` is the peg itself", withdraw.destination),
                ));
            }
            check_bitcoin_budget(withdraw, params, &peg)?;
        }
        ParentChain::Ethereum => {
            if !withdraw.max_fee.is_zero() {
                return Err(refused(
                    TxCode::InvalidMessage,
                    "max_fee applies to Bitcoin withdrawals only; Ethereum releases are paid by the relayer",
                ));
            }
            if rules.ethereum.is_none() {
                return Err(refused(
                    TxCode::WithdrawalRefused,
                    "Ethereum releases are not configured on this chain (params.withdrawals.ethereum)",
                ));
            }
            if federation.bls.is_none() {
                return Err(refused(
                    TxCode::WithdrawalRefused,
                    "the federation has no BLS key (federation.bls) to sign Ethereum releases",
                ));
            }
        }
    }
    Ok(())
}

/// Checks a Bitcoin withdrawal's `max_fee`: given, leaving a non-dust output, and at least the
/// share a release paying only it would cost at the floor rate — a smaller budget could never be
/// paid. A budget above the share at today's rate is accepted: the withdrawal waits for the rate
/// to fall (its record says why).
fn check_bitcoin_budget(withdraw: &MsgWithdraw, params: &Params, peg: &Peg) -> Result<(), BankError> {
    let rules = &params.withdrawals;
    let max_fee = withdraw.max_fee;
    if max_fee.is_zero() {
        return Err(refused(
            TxCode::InvalidMessage,
            "a Bitcoin withdrawal needs max_fee: the most of its amount that may pay the miner fee",
        ));
    }
    let left = withdraw.amount.checked_sub(max_fee).unwrap_or(Amount::ZERO);
    if left < rules.bitcoin_dust_limit {
        return Err(refused(
            TxCode::WithdrawalRefused,
            format!(
                "max_fee {max_fee}sat would leave {left}sat of the {}sat withdrawal, below the {}sat dust limit",
                withdraw.amount, rules.bitcoin_dust_limit
            ),
        ));
    }
    let floor = rules.bitcoin_fee_bounds().min;
    let least = lone_release_fee(peg, &withdraw.destination, withdraw.amount, 1, floor)
        .map_err(|error| refused(TxCode::WithdrawalRefused, error.to_string()))?;
    if max_fee < least {
        return Err(refused(
            TxCode::WithdrawalRefused,
            format!(
                "max_fee {max_fee}sat is below {least}sat, the fee of a release paying only this withdrawal at the \
                 floor rate of {floor}; it could never be paid"
            ),
        ));
    }
    Ok(())
}

/// Executes `withdraw` at `height`: checks it can be released, burns the amount from the sender
/// (supply → unreleased) and queues it. Returns the new withdrawal's id.
///
/// # Errors
/// `BridgePaused`; `WithdrawalRefused` or `InvalidMessage` (naming the rule or the destination
/// problem); `UnknownAccount`/`InsufficientFunds`; `Overflow`; storage failures.
pub fn withdraw<R: StateRead>(
    state: &mut StateDelta<R>,
    withdraw: &MsgWithdraw,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<WithdrawalId, BankError> {
    crate::pause::ensure_running(state)?;
    check_releasable(state, withdraw, params)?;
    let destination = withdraw.destination.clone();
    let asset = &withdraw.asset;
    let burned = ferry_types::Coin { denom: asset.clone(), amount: withdraw.amount };
    let mut sender = state
        .account(&withdraw.sender)?
        .ok_or_else(|| refused(TxCode::UnknownAccount, format!("sender {} has no account", withdraw.sender)))?;
    bank::debit(&mut sender, &withdraw.sender, &burned).map_err(BankError::Rejected)?;
    state.put_account(&withdraw.sender, &sender);

    let mut ledger = state.ledger(asset)?;
    ledger.supply = ledger
        .supply
        .checked_sub(withdraw.amount)
        .map_err(|_| refused(TxCode::Overflow, format!("{asset} supply {} is below the burn", ledger.supply)))?;
    ledger.unreleased = ledger
        .unreleased
        .checked_add(withdraw.amount)
        .map_err(|_| refused(TxCode::Overflow, format!("{asset} unreleased amount would overflow")))?;
    state.put_ledger(asset, &ledger)?;

    let id = state.next_withdrawal_id()?;
    let window = params.withdrawals.window(height);
    let withdrawn = state
        .sender_outflow(&withdraw.sender, asset, window)?
        .checked_add(withdraw.amount)
        .map_err(|_| refused(TxCode::Overflow, format!("{asset} withdrawn by {} would overflow", withdraw.sender)))?;
    state.put_record(keys::sender_outflow(&withdraw.sender, asset), &WindowOutflow { window, amount: withdrawn });
    let delay_above = params.withdrawals.limit(asset).map(|limit| limit.delay_above);
    let delayed = delay_above.is_some_and(|threshold| withdrawn > threshold);
    let eligible_height = if delayed { height.saturating_add(params.withdrawals.delay_blocks) } else { height };
    state.put_withdrawal(&Withdrawal {
        id,
        sender: withdraw.sender,
        asset: asset.clone(),
        amount: withdraw.amount,
        destination: destination.clone(),
        max_fee: withdraw.max_fee,
        burned_height: height,
        eligible_height,
        batch: None,
        waiting: None,
        held: None,
        refunded_height: None,
    });
    state.enqueue_withdrawal(asset, id)?;
    events.push(Event::new(
        ev::WITHDRAWAL_QUEUED,
        [
            (ev::WITHDRAWAL_ID, id.to_string()),
            (ev::SENDER, withdraw.sender.to_string()),
            (ev::AMOUNT, burned.to_string()),
            (ev::DESTINATION, destination),
            (ev::ELIGIBLE_HEIGHT, eligible_height.to_string()),
        ],
    ));
    tracing::info!(withdrawal_id = %id, sender = %withdraw.sender, amount = %burned, max_fee = %withdraw.max_fee, withdrawn_in_window = %withdrawn, height, eligible_height, "withdrawal queued");
    Ok(id)
}
