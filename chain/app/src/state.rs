//! The application's view of state: a read trait implemented by the node's store, a write
//! overlay ([`StateDelta`]) and the typed records kept under each key.

use std::collections::BTreeMap;

use ferry_types::genesis::Federation;
use ferry_types::{Address, Amount, Denom, Params};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Writes a block makes: key → new value, or `None` for a deletion. Ordered, so every node
/// applies and hashes them identically.
pub type ChangeSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A failure of the storage underneath the state machine. Not a property of any transaction:
/// the node must stop rather than continue with an unknown state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The backing store failed.
    #[error("storage failure: {0}")]
    Storage(String),
    /// A stored record does not decode: the database is corrupt or from another version.
    #[error("stored record under `{key}` is corrupt: {reason}")]
    Corrupt {
        /// The key, printed lossily.
        key: String,
        /// The decoder's complaint.
        reason: String,
    },
}

/// Read access to committed state at one version.
pub trait StateRead {
    /// The value under `key`, if any.
    ///
    /// # Errors
    /// [`StateError::Storage`] when the backing store fails.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
}

impl<T: StateRead + ?Sized> StateRead for &T {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(key)
    }
}

/// Buffered writes over a base state. Reads see the buffered writes first.
#[derive(Debug)]
pub struct StateDelta<R> {
    base: R,
    writes: ChangeSet,
}

impl<R: StateRead> StateDelta<R> {
    /// An empty overlay over `base`.
    pub fn new(base: R) -> Self {
        StateDelta { base, writes: ChangeSet::new() }
    }

    /// A nested overlay whose writes can be kept ([`StateDelta::absorb`]) or dropped.
    pub fn fork(&self) -> StateDelta<&Self> {
        StateDelta::new(self)
    }

    /// Takes over the writes of a fork of this overlay.
    pub fn absorb(&mut self, writes: ChangeSet) {
        self.writes.extend(writes);
    }

    /// The buffered writes.
    pub fn into_writes(self) -> ChangeSet {
        self.writes
    }

    /// Discards all buffered writes.
    pub fn clear(&mut self) {
        self.writes.clear();
    }

    /// Buffers `value` under `key`.
    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub(crate) fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StateError> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StateError::Corrupt {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: e.to_string(),
            }),
        }
    }

    pub(crate) fn put_json<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        // Serializing these plain structs (strings, integers, BTreeMaps with string keys) cannot fail.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.put_raw(key, bytes);
    }

    /// The account record of `address`.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn account(&self, address: &Address) -> Result<Option<AccountRecord>, StateError> {
        self.get_json(&keys::account(address))
    }

    /// Stores the account record of `address`.
    pub fn put_account(&mut self, address: &Address, record: &AccountRecord) {
        self.put_json(keys::account(address), record);
    }

    /// The chain parameters.
    ///
    /// # Errors
    /// On storage failure or when genesis never stored them.
    pub fn params(&self) -> Result<Params, StateError> {
        self.get_json(keys::PARAMS)?.ok_or_else(|| StateError::Corrupt {
            key: String::from_utf8_lossy(keys::PARAMS).into_owned(),
            reason: "missing (was InitChain run?)".to_owned(),
        })
    }

    /// Stores the chain parameters.
    pub fn put_params(&mut self, params: &Params) {
        self.put_json(keys::PARAMS.to_vec(), params);
    }

    /// The federation.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn federation(&self) -> Result<Federation, StateError> {
        Ok(self.get_json(keys::FEDERATION)?.unwrap_or_default())
    }

    /// Stores the federation.
    pub fn put_federation(&mut self, federation: &Federation) {
        self.put_json(keys::FEDERATION.to_vec(), federation);
    }

    /// Allocates the next account number.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn next_account_number(&mut self) -> Result<u64, StateError> {
        let next: u64 = self.get_json(keys::NEXT_ACCOUNT_NUMBER)?.unwrap_or(0);
        self.put_json(keys::NEXT_ACCOUNT_NUMBER.to_vec(), &next.saturating_add(1));
        Ok(next)
    }
}

impl<R: StateRead> StateRead for StateDelta<R> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.base.get(key),
        }
    }
}

/// An account: its number, next sequence, public key once known, and balances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Assigned when the account first appears; bound into its signatures.
    pub account_number: u64,
    /// The sequence its next transaction must carry.
    pub sequence: u64,
    /// Hex compressed secp256k1 key, recorded at its first transaction.
    pub public_key: Option<String>,
    /// Non-zero balances.
    pub balances: BTreeMap<Denom, Amount>,
}

impl AccountRecord {
    /// The balance of `denom` (zero when absent).
    pub fn balance(&self, denom: &Denom) -> Amount {
        self.balances.get(denom).copied().unwrap_or(Amount::ZERO)
    }

    /// Sets the balance of `denom`, dropping zero entries so records stay canonical.
    pub fn set_balance(&mut self, denom: &Denom, amount: Amount) {
        if amount.is_zero() {
            self.balances.remove(denom);
        } else {
            self.balances.insert(denom.clone(), amount);
        }
    }
}

/// Key layout of the application state.
pub mod keys {
    use ferry_types::Address;

    /// Prefix of account records: `acct/` + 20-byte account id.
    pub const ACCOUNT_PREFIX: &[u8] = b"acct/";
    /// Chain parameters (JSON).
    pub const PARAMS: &[u8] = b"params";
    /// The federation (JSON).
    pub const FEDERATION: &[u8] = b"federation";
    /// Next account number to assign (JSON integer).
    pub const NEXT_ACCOUNT_NUMBER: &[u8] = b"next_account_number";

    /// Key of an account record.
    pub fn account(address: &Address) -> Vec<u8> {
        [ACCOUNT_PREFIX, address.as_bytes().as_slice()].concat()
    }
}
