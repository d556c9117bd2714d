//! The application's view of state: a read trait implemented by the node's store, a write
//! overlay ([`StateDelta`]) and the typed records kept under each key.

use std::collections::BTreeMap;
use std::ops::Bound;

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

/// Key-value entries, in the order a scan returned them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Read access to committed state at one version.
pub trait StateRead {
    /// The value under `key`, if any.
    ///
    /// # Errors
    /// [`StateError::Storage`] when the backing store fails.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    /// One page of the live entries under a prefix, in key order (see [`Scan`]). A collection
    /// kept one record per entry is walked with this instead of being rewritten whole.
    ///
    /// # Errors
    /// [`StateError::Storage`] when the backing store fails.
    fn scan(&self, scan: Scan<'_>) -> Result<Entries, StateError>;
}

impl<T: StateRead + ?Sized> StateRead for &T {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(key)
    }

    fn scan(&self, scan: Scan<'_>) -> Result<Entries, StateError> {
        (**self).scan(scan)
    }
}

/// One page of a walk over the keys that start with `prefix`: at most `limit` entries, in
/// ascending byte order of their keys (or descending), strictly past `after` when given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Every key returned starts with it.
    pub prefix: &'a [u8],
    /// Resume strictly past this key, in the walk's direction (the last key of the previous page).
    pub after: Option<&'a [u8]>,
    /// Walk from the largest key down.
    pub descending: bool,
    /// The most entries returned.
    pub limit: usize,
}

impl<'a> Scan<'a> {
    /// The first `limit` entries under `prefix`, ascending.
    pub fn ascending(prefix: &'a [u8], limit: usize) -> Self {
        Scan { prefix, after: None, descending: false, limit }
    }

    /// The last `limit` entries under `prefix`, descending.
    pub fn descending(prefix: &'a [u8], limit: usize) -> Self {
        Scan { prefix, after: None, descending: true, limit }
    }

    /// The key range this page covers, as bounds for an ordered map of keys.
    pub fn bounds(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let start = Bound::Included(self.prefix.to_vec());
        let end = prefix_end(self.prefix).map_or(Bound::Unbounded, Bound::Excluded);
        match (self.after, self.descending) {
            (None, _) => (start, end),
            (Some(after), false) => (Bound::Excluded(after.to_vec()), end),
            (Some(after), true) => (start, Bound::Excluded(after.to_vec())),
        }
    }

    /// The page of `map` this scan selects (for in-memory states).
    pub fn over(&self, map: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let range = map.range::<Vec<u8>, _>(self.bounds()).map(|(key, value)| (key.clone(), value.clone()));
        if self.descending { range.rev().take(self.limit).collect() } else { range.take(self.limit).collect() }
    }
}

/// The smallest key greater than every key that starts with `prefix` (`None` when none is:
/// an empty prefix, or one of 0xFF bytes only).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last.saturating_add(1));
            return Some(end);
        }
    }
    None
}

/// Every live entry under `prefix`, in ascending key order, read page by page.
///
/// # Errors
/// On storage failure.
pub fn scan_all(state: &impl StateRead, prefix: &[u8]) -> Result<Entries, StateError> {
    const PAGE: usize = 512;
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let after = entries.last().map(|(key, _)| key.as_slice());
        let page = state.scan(Scan { after, ..Scan::ascending(prefix, PAGE) })?;
        let full = page.len() == PAGE;
        entries.extend(page);
        if !full {
            return Ok(entries);
        }
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

    /// The writes buffered so far.
    pub fn writes(&self) -> &ChangeSet {
        &self.writes
    }

    /// The buffered writes.
    pub fn into_writes(self) -> ChangeSet {
        self.writes
    }

    /// Discards all buffered writes.
    pub fn clear(&mut self) {
        self.writes.clear();
    }

    /// The keys this overlay wrote (or deleted) under `prefix`, in key order.
    pub fn written_under(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.writes
            .range(prefix.to_vec()..)
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Buffers `value` under `key`.
    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Buffers the deletion of `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Adds (or replaces) the entry `suffix` of `collection`, counting it when it is new.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub(crate) fn put_entry<T: Serialize>(
        &mut self,
        collection: &Collection,
        suffix: &[u8],
        value: &T,
    ) -> Result<(), StateError> {
        let key = collection.key(suffix);
        if self.get(&key)?.is_none() {
            let count = self.entry_count(collection)?;
            self.put_record(collection.count_key(), &count.saturating_add(1));
        }
        self.put_record(key, value);
        Ok(())
    }

    /// Removes the entry `suffix` of `collection` if it is there.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub(crate) fn remove_entry(&mut self, collection: &Collection, suffix: &[u8]) -> Result<(), StateError> {
        let key = collection.key(suffix);
        if self.get(&key)?.is_some() {
            let count = self.entry_count(collection)?;
            self.put_record(collection.count_key(), &count.saturating_sub(1));
            self.delete(key);
        }
        Ok(())
    }

    /// How many entries `collection` has.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn entry_count(&self, collection: &Collection) -> Result<u64, StateError> {
        Ok(self.get_record(&collection.count_key())?.unwrap_or(0))
    }

    /// One page of `collection`'s entries in key order, strictly past the entry `after`.
    ///
    /// # Errors
    /// On storage failure or a corrupt entry.
    pub(crate) fn entries<T: DeserializeOwned>(
        &self,
        collection: &Collection,
        after: Option<&[u8]>,
        descending: bool,
        limit: usize,
    ) -> Result<Vec<T>, StateError> {
        let after = after.map(|suffix| collection.key(suffix));
        let scan = Scan { prefix: &collection.prefix, after: after.as_deref(), descending, limit };
        self.scan(scan)?.into_iter().map(|(key, value)| decode(&key, &value)).collect()
    }

    /// Every entry of `collection`, in key order (for queries; the state machine pages).
    ///
    /// # Errors
    /// On storage failure or a corrupt entry.
    pub(crate) fn all_entries<T: DeserializeOwned>(&self, collection: &Collection) -> Result<Vec<T>, StateError> {
        scan_all(self, &collection.prefix)?.into_iter().map(|(key, value)| decode(&key, &value)).collect()
    }

    pub(crate) fn get_record<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StateError> {
        self.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
    }

    pub(crate) fn put_record<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.put_raw(key, encode(value));
    }

    /// The account record of `address`.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn account(&self, address: &Address) -> Result<Option<AccountRecord>, StateError> {
        self.get_record(&keys::account(address))
    }

    /// Stores the account record of `address`.
    pub fn put_account(&mut self, address: &Address, record: &AccountRecord) {
        self.put_record(keys::account(address), record);
    }

    /// The chain parameters.
    ///
    /// # Errors
    /// On storage failure or when genesis never stored them.
    pub fn params(&self) -> Result<Params, StateError> {
        self.get_record(keys::PARAMS)?.ok_or_else(|| StateError::Corrupt {
            key: String::from_utf8_lossy(keys::PARAMS).into_owned(),
            reason: "missing (was InitChain run?)".to_owned(),
        })
    }

    /// Stores the chain parameters.
    pub fn put_params(&mut self, params: &Params) {
        self.put_record(keys::PARAMS.to_vec(), params);
    }

    /// The federation.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn federation(&self) -> Result<Federation, StateError> {
        Ok(self.get_record(keys::FEDERATION)?.unwrap_or_default())
    }

    /// Stores the federation.
    pub fn put_federation(&mut self, federation: &Federation) {
        self.put_record(keys::FEDERATION.to_vec(), federation);
    }

    /// Allocates the next account number.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn next_account_number(&mut self) -> Result<u64, StateError> {
        let next: u64 = self.get_record(keys::NEXT_ACCOUNT_NUMBER)?.unwrap_or(0);
        self.put_record(keys::NEXT_ACCOUNT_NUMBER.to_vec(), &next.saturating_add(1));
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

    /// The base's page merged with the buffered writes: a write replaces or deletes the base's
    /// entry. When deletions thin a page out, the next base page is read, so a page is short
    /// only at the end of the prefix.
    fn scan(&self, scan: Scan<'_>) -> Result<Entries, StateError> {
        let mut out = Vec::new();
        let mut cursor = scan.after.map(<[u8]>::to_vec);
        while out.len() < scan.limit {
            let page = Scan { after: cursor.as_deref(), ..scan };
            let base = self.base.scan(page)?;
            // The base's last key bounds the writes this page may merge; past it the next base
            // page decides, unless the base has nothing more.
            let last = if base.len() < scan.limit { None } else { base.last().map(|(key, _)| key.clone()) };
            let within = |key: &Vec<u8>| {
                last.as_ref().is_none_or(|last| if scan.descending { key >= last } else { key <= last })
            };
            let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
                base.into_iter().map(|(key, value)| (key, Some(value))).collect();
            let writes = self.writes.range::<Vec<u8>, _>(page.bounds());
            merged.extend(writes.filter(|(key, _)| within(key)).map(|(key, value)| (key.clone(), value.clone())));
            let live = merged.into_iter().filter_map(|(key, value)| value.map(|value| (key, value)));
            let room = scan.limit.saturating_sub(out.len());
            if scan.descending {
                out.extend(live.rev().take(room))
            } else {
                out.extend(live.take(room))
            }
            match last {
                None => break,
                Some(last) => cursor = Some(last),
            }
        }
        Ok(out)
    }
}

/// A record in the state's encoding: BCS (Binary Canonical Serialization) of its serde form,
/// which is binary for addresses and amounts (see `docs/design.md`, "State encoding").
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // BCS fails only on types it cannot express (floats, unordered maps, sequences over 2^31),
    // which no record holds; `records::tests` round-trips every record the app writes.
    bcs::to_bytes(value).unwrap_or_default()
}

/// The record `T` stored under `key` (the key only names a corrupt one).
///
/// # Errors
/// [`StateError::Corrupt`] when `bytes` is not the canonical encoding of a `T`.
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StateError> {
    bcs::from_bytes(bytes)
        .map_err(|e| StateError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), reason: e.to_string() })
}

/// A collection kept one record per entry — `<prefix><suffix>` — with its size in a counter
/// record outside the prefix, so adding or removing an entry costs the same however many there
/// are, and the state machine walks it page by page ([`StateRead::scan`]). Suffixes are chosen
/// so that byte order is the order the collection is walked in (big-endian numbers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collection {
    prefix: Vec<u8>,
}

impl Collection {
    /// The collection under `prefix`, which must end with a separator no other collection's
    /// prefix continues with (`/`).
    pub fn new(prefix: impl Into<Vec<u8>>) -> Self {
        Collection { prefix: prefix.into() }
    }

    /// The key of the entry `suffix`.
    pub fn key(&self, suffix: &[u8]) -> Vec<u8> {
        [self.prefix.as_slice(), suffix].concat()
    }

    /// The key of the entry counter (`count/<prefix>`, outside the prefix).
    pub fn count_key(&self) -> Vec<u8> {
        [b"count/".as_slice(), self.prefix.as_slice()].concat()
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
    pub use ferry_types::state_keys::{ACCOUNT_PREFIX, FEDERATION, PARAMS, account};

    /// Next account number to assign (JSON integer).
    pub const NEXT_ACCOUNT_NUMBER: &[u8] = b"next_account_number";
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    struct Map(BTreeMap<Vec<u8>, Vec<u8>>);

    impl StateRead for Map {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
            Ok(self.0.get(key).cloned())
        }

        fn scan(&self, scan: Scan<'_>) -> Result<Entries, StateError> {
            Ok(scan.over(&self.0))
        }
    }

    fn key(byte: u8) -> Vec<u8> {
        // Two prefixes, so a scan must stay inside its own.
        let prefix = if byte.is_multiple_of(5) { b"b/".as_slice() } else { b"a/".as_slice() };
        [prefix, &[byte]].concat()
    }

    proptest! {
        /// Paging through an overlay gives exactly the live entries of base + writes, in order,
        /// whatever the page size and direction, however many writes delete base entries.
        #[test]
        fn an_overlay_scans_like_its_flattened_state(
            base in proptest::collection::btree_map(any::<u8>(), any::<u8>(), 0..40),
            writes in proptest::collection::btree_map(any::<u8>(), proptest::option::of(any::<u8>()), 0..40),
            limit in 1usize..7,
            descending in any::<bool>(),
        ) {
            let base: BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().map(|(k, v)| (key(k), vec![v])).collect();
            let mut flat = base.clone();
            let mut delta = StateDelta::new(Map(base));
            for (k, v) in writes {
                match v {
                    Some(v) => {
                        delta.put_raw(key(k), vec![v]);
                        flat.insert(key(k), vec![v]);
                    }
                    None => {
                        delta.writes.insert(key(k), None);
                        flat.remove(&key(k));
                    }
                }
            }
            let fork = delta.fork();
            let mut expected: Vec<_> = flat.into_iter().filter(|(k, _)| k.starts_with(b"a/")).collect();
            if descending {
                expected.reverse();
            }
            let mut seen: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            loop {
                let after = seen.last().map(|(k, _)| k.clone());
                let page = fork.scan(Scan { prefix: b"a/", after: after.as_deref(), descending, limit })?;
                prop_assert!(page.len() <= limit);
                let done = page.len() < limit;
                seen.extend(page);
                if done {
                    break;
                }
            }
            prop_assert_eq!(seen, expected);
        }
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
