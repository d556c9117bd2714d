//! InitChain: the state a chain starts from.

use ferry_types::event as ev;
use ferry_types::{Amount, GenesisState};

use crate::event::Event;
use crate::state::{AccountRecord, ChangeSet, Entries, Scan, StateDelta, StateError, StateRead};

struct Empty;

impl StateRead for Empty {
    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(None)
    }

    fn scan(&self, _scan: Scan<'_>) -> Result<Entries, StateError> {
        Ok(Vec::new())
    }
}

/// Builds the genesis writes: parameters, federation, and the funded accounts numbered in
/// genesis order from 0.
///
/// # Errors
/// When the genesis breaks a rule of [`GenesisState::validate`].
pub fn init_chain(genesis: &GenesisState) -> Result<(ChangeSet, Vec<Event>), ferry_types::GenesisError> {
    genesis.validate()?;
    let mut state = StateDelta::new(Empty);
    state.put_params(&genesis.params);
    state.put_federation(&genesis.federation);
    for account in &genesis.accounts {
        // The in-memory overlay over an empty base cannot fail.
        let account_number = state.next_account_number().unwrap_or_default();
        let mut record = AccountRecord { account_number, ..AccountRecord::default() };
        for coin in &account.coins {
            let sum = record.balance(&coin.denom).checked_add(coin.amount).unwrap_or(Amount::new(u128::MAX));
            record.set_balance(&coin.denom, sum);
        }
        state.put_account(&account.address, &record);
    }
    // Federation members sign attestations, so each needs an account (they hold no funds).
    for member in &genesis.federation.members {
        if state.account(member).unwrap_or_default().is_none() {
            let account_number = state.next_account_number().unwrap_or_default();
            state.put_account(member, &AccountRecord { account_number, ..AccountRecord::default() });
        }
    }
    // Wrapped supply starts at the genesis balances (devnet funding); reserves start at zero, so
    // that supply is recorded as unbacked, which the reserves invariant allows for.
    let mut ledgers: std::collections::BTreeMap<&ferry_types::Denom, crate::bridge::AssetLedger> = Default::default();
    for coin in genesis.accounts.iter().flat_map(|account| &account.coins) {
        let ledger = ledgers.entry(&coin.denom).or_default();
        ledger.supply = ledger.supply.checked_add(coin.amount).unwrap_or(Amount::new(u128::MAX));
        ledger.unbacked = ledger.supply;
    }
    for (denom, ledger) in &ledgers {
        // The in-memory overlay over an empty base cannot fail.
        let _ = state.put_ledger(denom, ledger);
    }
    let events = vec![Event::new(ev::GENESIS, [(ev::ACCOUNTS, genesis.accounts.len().to_string())])];
    Ok((state.into_writes(), events))
}
