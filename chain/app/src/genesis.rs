//! InitChain: the state a chain starts from.

use ferry_types::GenesisState;
use ferry_types::event as ev;

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

/// Builds the genesis writes: parameters, federation, and the genesis accounts numbered in
/// genesis order from 0, then the members' accounts. Every account opens empty and no asset has
/// a ledger yet: supply enters only by attested deposits, with their reserves.
///
/// # Errors
/// When the genesis breaks a rule of [`GenesisState::validate`].
pub fn init_chain(genesis: &GenesisState) -> Result<(ChangeSet, Vec<Event>), ferry_types::GenesisError> {
    genesis.validate()?;
    let mut state = StateDelta::new(Empty);
    state.put_params(&genesis.params);
    state.put_federation(&genesis.federation);
    // Federation members sign attestations, so each needs an account (they hold no funds).
    let members = genesis.federation.members.iter();
    for address in genesis.accounts.iter().map(|account| &account.address).chain(members) {
        // The in-memory overlay over an empty base cannot fail.
        if state.account(address).unwrap_or_default().is_none() {
            let account_number = state.next_account_number().unwrap_or_default();
            state.put_account(address, &AccountRecord { account_number, ..AccountRecord::default() });
        }
    }
    // No claims yet: the empty exit tree's root, so the first block has nothing to record.
    // The in-memory overlay over an empty base cannot fail.
    crate::exit_claims::record_root(&mut state, 0, ferry_types::exit_tree::ExitTree::new().root()).unwrap_or_default();
    let events = vec![Event::new(ev::GENESIS, [(ev::ACCOUNTS, genesis.accounts.len().to_string())])];
    Ok((state.into_writes(), events))
}
