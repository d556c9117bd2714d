//! Deposit addresses: each account may register its own Bitcoin deposit address
//! ([`ferry_types::peg::Peg::deposit_witness_script`]), which any wallet or exchange can pay
//! without a memo; a payment to it mints to that account and to no other.
//!
//! A registration (`MsgRegisterDepositAddress`) is fee-exempt and may come from an account the
//! chain does not know yet — a new user has nothing to pay a fee with before its first deposit —
//! so what bounds them is a count per block (`params.max_deposit_address_registrations_per_block`).
//! Registering again changes nothing. Registrations are numbered in order, so relayers follow the
//! list by number (`/deposit_addresses/<after>`) and watch every registered script.

use ferry_types::event as ev;
use ferry_types::msg::MsgRegisterDepositAddress;
use ferry_types::query::DepositAddressRecord;
use ferry_types::{Address, Params, TxCode, TxRejection};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::state::{Collection, StateDelta, StateError, StateRead};

/// State keys of deposit addresses.
pub mod keys {
    use ferry_types::Address;

    use crate::state::Collection;

    /// The registrations, keyed by big-endian registration number (relayers read them proven:
    /// [`ferry_types::state_keys::deposit_address`]).
    pub fn registrations() -> Collection {
        Collection::new(ferry_types::state_keys::DEPOSIT_ADDRESS_PREFIX)
    }

    /// An account's registration number (JSON integer).
    pub fn number_of(account: &Address) -> Vec<u8> {
        [b"deposit_address_of/".as_slice(), account.as_bytes().as_slice()].concat()
    }

    /// Registrations executed in the block being executed.
    pub const BLOCK_LOAD: &[u8] = b"deposit_address_load";
}

/// Registrations executed at `height`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlockLoad {
    height: u64,
    registrations: u64,
}

impl<R: StateRead> StateDelta<R> {
    /// `account`'s registered deposit address, if it has one.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn deposit_address(&self, account: &Address) -> Result<Option<DepositAddressRecord>, StateError> {
        let Some(number) = self.get_record::<u64>(&keys::number_of(account))? else { return Ok(None) };
        self.get_record(&keys::registrations().key(&number.to_be_bytes()))
    }

    /// Up to `limit` registrations numbered above `after`, in order.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn deposit_addresses_after(&self, after: u64, limit: usize) -> Result<Vec<DepositAddressRecord>, StateError> {
        self.entries(&keys::registrations(), Some(&after.to_be_bytes()), false, limit)
    }

    /// How many deposit addresses are registered.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn deposit_address_count(&self) -> Result<u64, StateError> {
        self.entry_count(&keys::registrations())
    }
}

/// Whether the block at `height` has room for `count` more registrations; refuses them (before
/// anything is charged or opened) when it has not.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn check_room<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    count: usize,
    height: u64,
) -> Result<Result<(), TxRejection>, StateError> {
    let load: BlockLoad = state.get_record(keys::BLOCK_LOAD)?.unwrap_or_default();
    let used = if load.height == height { load.registrations } else { 0 };
    let limit = u64::from(params.max_deposit_address_registrations_per_block);
    if used.saturating_add(u64::try_from(count).unwrap_or(u64::MAX)) > limit {
        return Ok(Err(TxRejection::new(
            TxCode::DutyLimit,
            format!(
                "block {height} already holds {used} deposit address registrations, the limit is {limit} per block (params.max_deposit_address_registrations_per_block): send it again in a later block"
            ),
        )));
    }
    Ok(Ok(()))
}

/// Registers `register.account`'s deposit address, or does nothing when it has one. Returns its
/// registration number.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn register<R: StateRead>(
    state: &mut StateDelta<R>,
    register: &MsgRegisterDepositAddress,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<u64, StateError> {
    let account = register.account;
    if let Some(existing) = state.deposit_address(&account)? {
        return Ok(existing.number);
    }
    let registrations: Collection = keys::registrations();
    let number = state.entry_count(&registrations)?.saturating_add(1);
    let record = DepositAddressRecord { number, account, height };
    state.put_entry(&registrations, &number.to_be_bytes(), &record)?;
    state.put_record(keys::number_of(&account), &number);
    let load: BlockLoad = state.get_record(keys::BLOCK_LOAD)?.unwrap_or_default();
    let used = if load.height == height { load.registrations } else { 0 };
    state.put_record(keys::BLOCK_LOAD.to_vec(), &BlockLoad { height, registrations: used.saturating_add(1) });
    events.push(Event::new(
        ev::DEPOSIT_ADDRESS_REGISTERED,
        [(ev::ADDRESS, account.to_string()), (ev::NUMBER, number.to_string())],
    ));
    tracing::info!(%account, number, height, "deposit address registered");
    Ok(number)
}

#[cfg(test)]
mod tests {
    use ferry_types::state_keys;

    #[test]
    fn relayers_read_registrations_at_the_keys_the_chain_writes() {
        let registrations = super::keys::registrations();
        assert_eq!(registrations.key(&7u64.to_be_bytes()), state_keys::deposit_address(7));
        assert_eq!(registrations.count_key(), state_keys::deposit_address_count());
    }
}
