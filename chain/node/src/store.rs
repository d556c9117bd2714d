//! The node's storage engine: a crash-safe embedded database (redb) holding a versioned
//! key-value state and a Jellyfish Merkle Tree over it, whose root is the app hash.
//!
//! Version `h` is the state after block `h`; version 0 is genesis. Every version stays readable
//! (queries at any height). A block's writes, tree nodes and metadata are written in one redb
//! transaction at Commit, so a crash leaves either the old or the new version, never a mix.
//!
//! The tree is keyed by key hashes, which have no useful order; a separate index of every key
//! ever written, in byte order, lets the state machine walk a prefix ([`StateRead::scan`]): each
//! indexed key is live at a version when the versioned values say so. Deleted keys stay in the
//! index (a walk steps over them) until pruning removes them.

use std::ops::Bound;
use std::path::Path;

use ferry_app::{ChangeSet, Entries, Scan, StateError, StateRead};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, Sha256Jmt, Version};
use redb::{Database, ReadOnlyTable, ReadableTable, TableDefinition};

/// Tree nodes: borsh(NodeKey) → borsh(Node).
const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_nodes");
/// Versioned values: key hash (32) ‖ version (8, big-endian) → 1 ‖ value, or 0 for a deletion.
const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("values");
/// Every key ever written, in byte order (the value is empty).
const KEY_INDEX: TableDefinition<&[u8], ()> = TableDefinition::new("key_index");
/// Node metadata: chain id, last committed height, app hash per height, layout version.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_HEIGHT: &str = "height";
const META_CHAIN_ID: &str = "chain_id";
const META_LAYOUT: &str = "layout";
/// The table layout this code reads and writes; 2 added [`KEY_INDEX`].
const LAYOUT: u32 = 2;

/// A storage failure, naming the operation.
#[derive(Debug, thiserror::Error)]
#[error("store: {operation}: {reason}")]
pub struct StoreError {
    operation: &'static str,
    reason: String,
}

fn store_error(operation: &'static str) -> impl Fn(&dyn std::fmt::Display) -> StoreError {
    move |reason| StoreError { operation, reason: reason.to_string() }
}

macro_rules! try_store {
    ($operation:literal, $expr:expr) => {
        $expr.map_err(|e| store_error($operation)(&e))
    };
}

impl From<StoreError> for StateError {
    fn from(error: StoreError) -> Self {
        StateError::Storage(error.to_string())
    }
}

/// The hash under which `key` lives in the tree.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<sha2::Sha256>(key)
}

fn value_key(hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&hash.0);
    out[32..].copy_from_slice(&version.to_be_bytes());
    out
}

fn app_hash_key(height: u64) -> String {
    format!("app_hash/{height:020}")
}

/// A block's tree update, computed at FinalizeBlock and written at Commit.
#[derive(Debug)]
pub struct PendingVersion {
    /// The version (block height) this update creates.
    pub version: Version,
    /// The new Merkle root.
    pub root: [u8; 32],
    batch: TreeUpdateBatch,
    /// The keys this version writes, for the key index.
    keys: Vec<Vec<u8>>,
}

/// The database.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a redb database, or holds state in an older
    /// layout (resync the node from its peers).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = try_store!("open database", Database::create(path))?;
        let write = try_store!("begin write", db.begin_write())?;
        {
            try_store!("create table", write.open_table(NODES))?;
            try_store!("create table", write.open_table(VALUES))?;
            try_store!("create table", write.open_table(KEY_INDEX))?;
            let mut meta = try_store!("create table", write.open_table(META))?;
            let layout = try_store!("read meta", meta.get(META_LAYOUT))?.map(|value| value.value().to_vec());
            let has_state = try_store!("read meta", meta.get(META_HEIGHT))?.is_some();
            match layout {
                Some(layout) if layout == LAYOUT.to_be_bytes() => {}
                None if !has_state => {
                    try_store!("write layout", meta.insert(META_LAYOUT, LAYOUT.to_be_bytes().as_slice()))?;
                }
                _ => {
                    return Err(StoreError {
                        operation: "open database",
                        reason: format!(
                            "{} holds state in an older layout than {LAYOUT}; move it aside and resync this node",
                            path.display()
                        ),
                    });
                }
            }
        }
        try_store!("commit", write.commit())?;
        Ok(Store { db })
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let read = try_store!("begin read", self.db.begin_read())?;
        let table = try_store!("open meta", read.open_table(META))?;
        let value = try_store!("read meta", table.get(key))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// The last committed version, or `None` before genesis.
    ///
    /// # Errors
    /// On storage failure.
    pub fn last_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.meta(META_HEIGHT)?.and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok()).map(u64::from_be_bytes))
    }

    /// The app hash after `version`, if committed.
    ///
    /// # Errors
    /// On storage failure.
    pub fn app_hash(&self, version: Version) -> Result<Option<[u8; 32]>, StoreError> {
        Ok(self.meta(&app_hash_key(version))?.and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok()))
    }

    /// The chain id recorded at genesis.
    ///
    /// # Errors
    /// On storage failure.
    pub fn chain_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.meta(META_CHAIN_ID)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// A read-only view of the state at `version`.
    ///
    /// # Errors
    /// On storage failure.
    pub fn view(&self, version: Version) -> Result<StateView, StoreError> {
        let read = try_store!("begin read", self.db.begin_read())?;
        let values = try_store!("open values", read.open_table(VALUES))?;
        let nodes = try_store!("open nodes", read.open_table(NODES))?;
        let keys = try_store!("open key index", read.open_table(KEY_INDEX))?;
        Ok(StateView { values, nodes, keys, version })
    }

    /// Hashes `changes` into the tree on top of the last committed version, creating `version`.
    ///
    /// # Errors
    /// On storage failure or a tree inconsistency.
    pub fn prepare(&self, changes: &ChangeSet, version: Version) -> Result<PendingVersion, StoreError> {
        let view = self.view(version.saturating_sub(1))?;
        let tree: Sha256Jmt<'_, StateView> = JellyfishMerkleTree::new(&view);
        let value_set = changes.iter().map(|(key, value)| (key_hash(key), value.clone()));
        let (root, batch): (RootHash, TreeUpdateBatch) =
            try_store!("hash block", tree.put_value_set(value_set, version))?;
        Ok(PendingVersion { version, root: root.0, batch, keys: changes.keys().cloned().collect() })
    }

    /// Durably writes a prepared version (and, at genesis, the chain id) in one transaction.
    ///
    /// # Errors
    /// On storage failure; the database then still holds the previous version.
    pub fn commit(&self, pending: &PendingVersion, chain_id: Option<&str>) -> Result<(), StoreError> {
        let write = try_store!("begin write", self.db.begin_write())?;
        {
            let mut nodes = try_store!("open nodes", write.open_table(NODES))?;
            for (node_key, node) in pending.batch.node_batch.nodes() {
                let key = try_store!("encode node key", borsh::to_vec(node_key))?;
                let value = try_store!("encode node", borsh::to_vec(node))?;
                try_store!("write node", nodes.insert(key.as_slice(), value.as_slice()))?;
            }
            let mut values = try_store!("open values", write.open_table(VALUES))?;
            for ((version, hash), value) in pending.batch.node_batch.values() {
                let stored = match value {
                    Some(value) => [&[1u8][..], value.as_slice()].concat(),
                    None => vec![0u8],
                };
                try_store!("write value", values.insert(value_key(hash, *version).as_slice(), stored.as_slice()))?;
            }
            let mut index = try_store!("open key index", write.open_table(KEY_INDEX))?;
            for key in &pending.keys {
                try_store!("write key index", index.insert(key.as_slice(), ()))?;
            }
            let mut meta = try_store!("open meta", write.open_table(META))?;
            try_store!("write height", meta.insert(META_HEIGHT, pending.version.to_be_bytes().as_slice()))?;
            try_store!("write app hash", meta.insert(app_hash_key(pending.version).as_str(), pending.root.as_slice()))?;
            if let Some(chain_id) = chain_id {
                try_store!("write chain id", meta.insert(META_CHAIN_ID, chain_id.as_bytes()))?;
            }
        }
        try_store!("commit", write.commit())
    }
}

/// The state at one version, read from a consistent snapshot of the database.
pub struct StateView {
    values: ReadOnlyTable<&'static [u8], &'static [u8]>,
    nodes: ReadOnlyTable<&'static [u8], &'static [u8]>,
    keys: ReadOnlyTable<&'static [u8], ()>,
    version: Version,
}

impl StateView {
    /// The version this view reads.
    pub fn version(&self) -> Version {
        self.version
    }

    fn value_at(&self, hash: KeyHash, max_version: Version) -> Result<Option<Vec<u8>>, StoreError> {
        let start = value_key(&hash, 0);
        let end = value_key(&hash, max_version);
        let mut range = try_store!("range values", self.values.range(start.as_slice()..=end.as_slice()))?;
        match range.next_back() {
            None => Ok(None),
            Some(entry) => {
                let (_, value) = try_store!("read value", entry)?;
                let bytes = value.value();
                Ok(match bytes.split_first() {
                    Some((1, rest)) => Some(rest.to_vec()),
                    _ => None,
                })
            }
        }
    }
}

impl StateRead for StateView {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.value_at(key_hash(key), self.version)?)
    }

    /// Walks the key index one key at a time (each step is one ordered seek), keeping the keys
    /// live at this view's version.
    fn scan(&self, scan: Scan<'_>) -> Result<Entries, StateError> {
        let (mut lower, mut upper) = scan.bounds();
        let mut out = Vec::new();
        while out.len() < scan.limit {
            let key = {
                let bounds = (as_slice(&lower), as_slice(&upper));
                let mut range = try_store!("range key index", self.keys.range::<&[u8]>(bounds))?;
                let next = if scan.descending { range.next_back() } else { range.next() };
                match next {
                    None => break,
                    Some(entry) => try_store!("read key index", entry)?.0.value().to_vec(),
                }
            };
            if let Some(value) = self.value_at(key_hash(&key), self.version)? {
                out.push((key.clone(), value));
            }
            if scan.descending {
                upper = Bound::Excluded(key);
            } else {
                lower = Bound::Excluded(key);
            }
        }
        Ok(out)
    }
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl TreeReader for StateView {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let key = borsh::to_vec(node_key)?;
        match self.nodes.get(key.as_slice())? {
            None => Ok(None),
            Some(value) => Ok(Some(borsh::from_slice(value.value())?)),
        }
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.value_at(key_hash, max_version)?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("state sync restore is not supported by this store")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, Option<&str>)]) -> ChangeSet {
        pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))).collect()
    }

    #[test]
    fn versions_stay_readable_and_survive_reopen() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.redb");
        let roots = {
            let store = Store::open(&path)?;
            let v0 = store.prepare(&changes(&[("a", Some("1")), ("b", Some("2"))]), 0)?;
            store.commit(&v0, Some("test-chain"))?;
            let v1 = store.prepare(&changes(&[("a", Some("3")), ("b", None)]), 1)?;
            store.commit(&v1, None)?;
            let v2 = store.prepare(&ChangeSet::new(), 2)?;
            store.commit(&v2, None)?;
            let v3 = store.prepare(&changes(&[("c", Some("4"))]), 3)?;
            store.commit(&v3, None)?;
            assert_ne!(v0.root, v1.root);
            assert_eq!(v1.root, v2.root, "an empty block keeps the root");
            [v0.root, v1.root, v3.root]
        };
        let store = Store::open(&path)?;
        assert_eq!(store.last_version()?, Some(3));
        assert_eq!(store.chain_id()?.as_deref(), Some("test-chain"));
        assert_eq!(store.app_hash(0)?, Some(roots[0]));
        assert_eq!(store.app_hash(3)?, Some(roots[2]));
        let at0 = store.view(0)?;
        assert_eq!(at0.get(b"a")?, Some(b"1".to_vec()));
        assert_eq!(at0.get(b"b")?, Some(b"2".to_vec()));
        let at1 = store.view(1)?;
        assert_eq!(at1.get(b"a")?, Some(b"3".to_vec()));
        assert_eq!(at1.get(b"b")?, None);
        assert_eq!(store.view(3)?.get(b"c")?, Some(b"4".to_vec()));
        assert_eq!(at1.get(b"c")?, None);
        Ok(())
    }

    #[test]
    fn a_scan_walks_the_keys_live_at_its_version_in_order_both_ways() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("s.redb"))?;
        let v0 = store
            .prepare(&changes(&[("q/1", Some("a")), ("q/2", Some("b")), ("q/3", Some("c")), ("r", Some("x"))]), 0)?;
        store.commit(&v0, None)?;
        let v1 = store.prepare(&changes(&[("q/2", None), ("q/4", Some("d")), ("p", Some("y"))]), 1)?;
        store.commit(&v1, None)?;
        let keys = |entries: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<String> {
            entries.into_iter().map(|(key, _)| String::from_utf8_lossy(&key).into_owned()).collect()
        };
        assert_eq!(keys(store.view(0)?.scan(Scan::ascending(b"q/", 10))?), ["q/1", "q/2", "q/3"]);
        assert_eq!(keys(store.view(1)?.scan(Scan::ascending(b"q/", 10))?), ["q/1", "q/3", "q/4"]);
        assert_eq!(keys(store.view(1)?.scan(Scan::descending(b"q/", 2))?), ["q/4", "q/3"]);
        let after = Scan { after: Some(b"q/1"), ..Scan::ascending(b"q/", 1) };
        assert_eq!(keys(store.view(1)?.scan(after)?), ["q/3"], "resumes past the deleted key");
        let before = Scan { after: Some(b"q/3"), ..Scan::descending(b"q/", 5) };
        assert_eq!(keys(store.view(1)?.scan(before)?), ["q/1"]);
        assert_eq!(
            store.view(1)?.scan(Scan::ascending(b"q/", 10))?.first().map(|(_, v)| v.clone()),
            Some(b"a".to_vec())
        );
        Ok(())
    }

    #[test]
    fn same_changes_give_same_root_in_independent_stores() -> Result<(), Box<dyn std::error::Error>> {
        let roots: Vec<[u8; 32]> = (0..2)
            .map(|_| -> Result<[u8; 32], Box<dyn std::error::Error>> {
                let dir = tempfile::tempdir()?;
                let store = Store::open(&dir.path().join("s.redb"))?;
                let v0 = store.prepare(&changes(&[("x", Some("1")), ("y", Some("2"))]), 0)?;
                store.commit(&v0, None)?;
                Ok(v0.root)
            })
            .collect::<Result<_, _>>()?;
        assert_eq!(roots.first(), roots.get(1));
        Ok(())
    }
}
