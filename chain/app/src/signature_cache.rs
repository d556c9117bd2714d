//! A memo of signatures this node already verified, so a transaction's signature is checked once
//! per node — at CheckTx — rather than again at every mempool recheck and at FinalizeBlock.
//!
//! Keyed by the transaction hash (SHA-256 of the exact bytes, which include the signature) and the
//! account number the signature was verified against. Verification is a pure function of those,
//! so consulting the memo never changes a result: a node with an empty memo (restarted, or that
//! never saw the transaction in its mempool) computes the same block outcome, only slower.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

/// Bounded memo of verified (transaction hash, account number) pairs; the oldest entries go first.
#[derive(Debug)]
pub struct SignatureCache {
    inner: Mutex<Entries>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Entries {
    set: BTreeSet<([u8; 32], u64)>,
    order: VecDeque<([u8; 32], u64)>,
}

impl SignatureCache {
    /// A memo holding at most `capacity` entries (0 disables it).
    pub fn new(capacity: usize) -> Self {
        SignatureCache { inner: Mutex::new(Entries::default()), capacity }
    }

    /// A memo that remembers nothing.
    pub fn disabled() -> Self {
        Self::new(0)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The entries stay consistent even if a holder panicked mid-way: worst case an entry is
        // missing from `order` and is never evicted, which only costs memory.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `tx_hash`'s signature was verified against `account_number`.
    pub fn contains(&self, tx_hash: &[u8; 32], account_number: u64) -> bool {
        self.capacity > 0 && self.entries().set.contains(&(*tx_hash, account_number))
    }

    /// Records a verified signature.
    pub fn insert(&self, tx_hash: [u8; 32], account_number: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries();
        if entries.set.insert((tx_hash, account_number)) {
            entries.order.push_back((tx_hash, account_number));
            while entries.order.len() > self.capacity {
                if let Some(oldest) = entries.order.pop_front() {
                    entries.set.remove(&oldest);
                }
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries().set.len()
    }

    /// Whether the memo is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_pairs_and_evicts_the_oldest() {
        let cache = SignatureCache::new(2);
        cache.insert([1; 32], 7);
        assert!(cache.contains(&[1; 32], 7));
        assert!(!cache.contains(&[1; 32], 8), "another account number is another fact");
        cache.insert([2; 32], 7);
        cache.insert([3; 32], 7);
        assert!(!cache.contains(&[1; 32], 7));
        assert_eq!(cache.len(), 2);
        let disabled = SignatureCache::disabled();
        disabled.insert([1; 32], 7);
        assert!(!disabled.contains(&[1; 32], 7));
    }
}
