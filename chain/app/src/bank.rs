//! The bank: balances, transfers and account creation.

use ferry_types::event as ev;
use ferry_types::{Address, Coin, TxCode, TxRejection};

use crate::event::Event;
use crate::state::{AccountRecord, StateDelta, StateError, StateRead};

/// Either a refused operation or a storage failure.
#[derive(Debug)]
pub enum BankError {
    /// The operation is refused; state must be rolled back by the caller.
    Rejected(TxRejection),
    /// Storage failed.
    State(StateError),
}

impl From<StateError> for BankError {
    fn from(error: StateError) -> Self {
        BankError::State(error)
    }
}

/// Loads `address`, creating it with the next account number if it does not exist yet.
///
/// # Errors
/// On storage failure.
pub fn load_or_create<R: StateRead>(
    state: &mut StateDelta<R>,
    address: &Address,
    events: &mut Vec<Event>,
) -> Result<AccountRecord, StateError> {
    if let Some(record) = state.account(address)? {
        return Ok(record);
    }
    let account_number = state.next_account_number()?;
    events.push(Event::new(
        ev::ACCOUNT_CREATED,
        [(ev::ADDRESS, address.to_string()), (ev::ACCOUNT_NUMBER, account_number.to_string())],
    ));
    Ok(AccountRecord { account_number, ..AccountRecord::default() })
}

/// Removes `coin` from `from`'s record.
///
/// # Errors
/// `InsufficientFunds` naming the balance and the amount asked.
pub fn debit(record: &mut AccountRecord, owner: &Address, coin: &Coin) -> Result<(), TxRejection> {
    let balance = record.balance(&coin.denom);
    let rest = balance.checked_sub(coin.amount).map_err(|_| {
        TxRejection::new(TxCode::InsufficientFunds, format!("{owner} holds {balance}{} but needs {coin}", coin.denom))
    })?;
    record.set_balance(&coin.denom, rest);
    Ok(())
}

/// Adds `coin` to `to`'s record.
///
/// # Errors
/// `Overflow` when the balance would exceed 2^128 - 1.
pub fn credit(record: &mut AccountRecord, owner: &Address, coin: &Coin) -> Result<(), TxRejection> {
    let balance = record.balance(&coin.denom);
    let sum = balance.checked_add(coin.amount).map_err(|_| {
        TxRejection::new(TxCode::Overflow, format!("balance of {owner} in {} would overflow", coin.denom))
    })?;
    record.set_balance(&coin.denom, sum);
    Ok(())
}

/// Moves `coins` from `from` to `to`, creating `to` if needed, and emits one transfer event per coin.
///
/// # Errors
/// `InsufficientFunds` or `Overflow` (the caller discards the overlay), or a storage failure.
pub fn transfer<R: StateRead>(
    state: &mut StateDelta<R>,
    from: &Address,
    to: &Address,
    coins: &[Coin],
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let mut sender = state.account(from)?.ok_or_else(|| {
        BankError::Rejected(TxRejection::new(TxCode::UnknownAccount, format!("sender {from} has no account")))
    })?;
    for coin in coins {
        debit(&mut sender, from, coin).map_err(BankError::Rejected)?;
    }
    state.put_account(from, &sender);
    let mut recipient = load_or_create(state, to, events)?;
    for coin in coins {
        credit(&mut recipient, to, coin).map_err(BankError::Rejected)?;
        events.push(Event::new(
            ev::TRANSFER,
            [(ev::SENDER, from.to_string()), (ev::RECIPIENT, to.to_string()), (ev::AMOUNT, coin.to_string())],
        ));
    }
    state.put_account(to, &recipient);
    Ok(())
}
