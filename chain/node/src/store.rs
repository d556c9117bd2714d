//! The node's storage engine: a crash-safe embedded database (redb) holding a versioned
//! key-value state and a Jellyfish Merkle Tree over it, whose root is the app hash.
//!
//! Version `h` is the state after block `h`; version 0 is genesis. Every version stays readable
//! (queries at any height) until [`Store::prune`] drops the versions below a retained one. A
//! block's writes, tree nodes and metadata are written in one redb transaction at Commit, so a
//! crash leaves either the old or the new version, never a mix.
//!
//! The tree is keyed by key hashes, which have no useful order; a separate index of every key
//! ever written, in byte order, lets the state machine walk a prefix ([`StateRead::scan`]): each
//! indexed key is live at a version when the versioned values say so. Deleted keys stay in the
//! index (a walk steps over them) until pruning removes them.
//!
//! Pruning. Every Commit also records what its version made stale: the tree nodes jmt reports
//! (a node stale since `v` is read only by versions below `v`) and the values it superseded (the
//! key's previous entry, and for a deletion the deletion itself, which nothing needs once the
//! values it hides are gone). Pruning below `p` deletes every node and value stale since `p` or
//! earlier, in small transactions, so every version from `p` on reads exactly as before. Only
//! history goes: the latest state, which holds the replay guards (minted deposit ids, used
//! nonces), is never touched.

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
/// Node metadata: chain id, last committed height, app hash per height, layout version, the
/// oldest version kept.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Tree nodes a version made stale: stale-since version (8, big-endian) ‖ borsh(NodeKey).
const STALE_NODES: TableDefinition<&[u8], ()> = TableDefinition::new("stale_nodes");
/// Value entries a version made stale: stale-since version (8) ‖ key hash (32) ‖ the stale
/// entry's version (8) → the key when the stale entry is a deletion (pruning it may drop the key
/// from [`KEY_INDEX`]), else empty.
const STALE_VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("stale_values");

const META_HEIGHT: &str = "height";
const META_CHAIN_ID: &str = "chain_id";
const META_LAYOUT: &str = "layout";
const META_PRUNED_BELOW: &str = "pruned_below";
const APP_HASH_PREFIX: &str = "app_hash/";
/// The table layout (and record encoding) this code reads and writes; 2 added [`KEY_INDEX`],
/// 3 the stale indexes, 4 the binary record encoding (BCS instead of JSON). A store of an
/// older layout is refused: resync the node (state sync or replay).
const LAYOUT: u32 = 4;

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
    format!("{APP_HASH_PREFIX}{height:020}")
}

fn version_of(bytes: &[u8]) -> Option<Version> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// Where a pruning pass stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneProgress {
    /// Entries (tree nodes, values, app hashes) this pass deleted.
    pub deleted: usize,
    /// Whether everything stale below the target is gone.
    pub done: bool,
}

/// A block's tree update, computed at FinalizeBlock and written at Commit.
#[derive(Debug)]
pub struct PendingVersion {
    /// The version (block height) this update creates.
    pub version: Version,
    /// The new Merkle root.
    pub root: [u8; 32],
    batch: TreeUpdateBatch,
    /// The keys this version writes (for the key index), and whether each write deletes.
    keys: Vec<(Vec<u8>, bool)>,
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
            try_store!("create table", write.open_table(STALE_NODES))?;
            try_store!("create table", write.open_table(STALE_VALUES))?;
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

    /// The oldest version still readable (0 until something was pruned).
    ///
    /// # Errors
    /// On storage failure.
    pub fn pruned_below(&self) -> Result<Version, StoreError> {
        Ok(self.meta(META_PRUNED_BELOW)?.as_deref().and_then(version_of).unwrap_or(0))
    }

    /// A read-only view of the state at `version`, which must not be pruned.
    ///
    /// # Errors
    /// On storage failure, or when `version` is pruned.
    pub fn view(&self, version: Version) -> Result<StateView, StoreError> {
        self.retained_view(version)?
            .ok_or_else(|| StoreError { operation: "open view", reason: format!("version {version} is pruned") })
    }

    /// A read-only view of the state at `version`, or `None` when that version is pruned. The
    /// check and the view read one snapshot, so a pruning pass running meanwhile cannot take
    /// anything from under the view.
    ///
    /// # Errors
    /// On storage failure.
    pub fn retained_view(&self, version: Version) -> Result<Option<StateView>, StoreError> {
        let read = try_store!("begin read", self.db.begin_read())?;
        let meta = try_store!("open meta", read.open_table(META))?;
        let pruned_below = try_store!("read meta", meta.get(META_PRUNED_BELOW))?
            .and_then(|value| version_of(value.value()))
            .unwrap_or(0);
        if version < pruned_below {
            return Ok(None);
        }
        let values = try_store!("open values", read.open_table(VALUES))?;
        let nodes = try_store!("open nodes", read.open_table(NODES))?;
        let keys = try_store!("open key index", read.open_table(KEY_INDEX))?;
        Ok(Some(StateView { values, nodes, keys, version }))
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
        let keys = changes.iter().map(|(key, value)| (key.clone(), value.is_none())).collect();
        Ok(PendingVersion { version, root: root.0, batch, keys })
    }

    /// Every live entry of `version`, in key order, handed to `each` (a snapshot's export). One
    /// read snapshot throughout: commits and pruning passes meanwhile change nothing it reads.
    ///
    /// # Errors
    /// On storage failure, a pruned `version`, or the first error `each` returns.
    pub fn export<E: From<StoreError>>(
        &self,
        version: Version,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let view = self.view(version)?;
        for entry in try_store!("range key index", view.keys.range::<&[u8]>(..))? {
            let (key, _) = try_store!("read key index", entry)?;
            if let Some(value) = view.value_at(key_hash(key.value()), version)? {
                each(key.value(), &value)?;
            }
        }
        Ok(())
    }

    /// The tree of `changes` as the whole state at `version`, built from nothing (a snapshot
    /// restored by state sync into this store, which must be empty). Nothing is written.
    ///
    /// # Errors
    /// When the store already holds state, or on a tree inconsistency.
    pub fn prepare_restore(&self, changes: &ChangeSet, version: Version) -> Result<PendingVersion, StoreError> {
        if let Some(held) = self.last_version()? {
            return Err(StoreError {
                operation: "restore snapshot",
                reason: format!("the store already holds height {held}; restore only into an empty one"),
            });
        }
        let empty = EmptyBelow(version);
        let tree: Sha256Jmt<'_, EmptyBelow> = JellyfishMerkleTree::new(&empty);
        let value_set = changes.iter().map(|(key, value)| (key_hash(key), value.clone()));
        let (root, batch): (RootHash, TreeUpdateBatch) =
            try_store!("hash snapshot", tree.put_value_set(value_set, version))?;
        let keys = changes.iter().map(|(key, value)| (key.clone(), value.is_none())).collect();
        Ok(PendingVersion { version, root: root.0, batch, keys })
    }

    /// Writes a restored version (with the chain id): it becomes the oldest the store holds.
    ///
    /// # Errors
    /// On storage failure; the store then stays empty.
    pub fn commit_restored(&self, pending: &PendingVersion, chain_id: &str) -> Result<(), StoreError> {
        self.write_version(pending, Some(chain_id), true)
    }

    /// Durably writes a prepared version (and, at genesis, the chain id) in one transaction.
    ///
    /// # Errors
    /// On storage failure; the database then still holds the previous version.
    pub fn commit(&self, pending: &PendingVersion, chain_id: Option<&str>) -> Result<(), StoreError> {
        self.write_version(pending, chain_id, false)
    }

    fn write_version(
        &self,
        pending: &PendingVersion,
        chain_id: Option<&str>,
        restored: bool,
    ) -> Result<(), StoreError> {
        let write = try_store!("begin write", self.db.begin_write())?;
        {
            let mut nodes = try_store!("open nodes", write.open_table(NODES))?;
            for (node_key, node) in pending.batch.node_batch.nodes() {
                let key = try_store!("encode node key", borsh::to_vec(node_key))?;
                let value = try_store!("encode node", borsh::to_vec(node))?;
                try_store!("write node", nodes.insert(key.as_slice(), value.as_slice()))?;
            }
            let mut stale_nodes = try_store!("open stale nodes", write.open_table(STALE_NODES))?;
            for stale in &pending.batch.stale_node_index_batch {
                let node_key = try_store!("encode node key", borsh::to_vec(&stale.node_key))?;
                let key = [stale.stale_since_version.to_be_bytes().as_slice(), node_key.as_slice()].concat();
                try_store!("write stale node", stale_nodes.insert(key.as_slice(), ()))?;
            }
            let mut values = try_store!("open values", write.open_table(VALUES))?;
            let mut stale_values = try_store!("open stale values", write.open_table(STALE_VALUES))?;
            for (key, deleted) in &pending.keys {
                let hash = key_hash(key);
                let previous = {
                    let range = value_key(&hash, 0)..value_key(&hash, pending.version);
                    let mut earlier =
                        try_store!("range values", values.range(range.start.as_slice()..range.end.as_slice()))?;
                    match earlier.next_back() {
                        Some(entry) => try_store!("read value", entry)?.0.value().get(32..).and_then(version_of),
                        None => None,
                    }
                };
                if let Some(previous) = previous {
                    let stale = stale_value_key(pending.version, &hash, previous);
                    try_store!("write stale value", stale_values.insert(stale.as_slice(), b"".as_slice()))?;
                }
                if *deleted {
                    let stale = stale_value_key(pending.version, &hash, pending.version);
                    try_store!("write stale value", stale_values.insert(stale.as_slice(), key.as_slice()))?;
                }
            }
            for ((version, hash), value) in pending.batch.node_batch.values() {
                let stored = match value {
                    Some(value) => [&[1u8][..], value.as_slice()].concat(),
                    None => vec![0u8],
                };
                try_store!("write value", values.insert(value_key(hash, *version).as_slice(), stored.as_slice()))?;
            }
            // The index holds every key ever written, so most writes find their key there
            // already; skipping those leaves its pages alone (an insert of a present key still
            // copies its page, a random one in a large state).
            let mut index = try_store!("open key index", write.open_table(KEY_INDEX))?;
            for (key, _) in &pending.keys {
                if try_store!("read key index", index.get(key.as_slice()))?.is_none() {
                    try_store!("write key index", index.insert(key.as_slice(), ()))?;
                }
            }
            let mut meta = try_store!("open meta", write.open_table(META))?;
            try_store!("write height", meta.insert(META_HEIGHT, pending.version.to_be_bytes().as_slice()))?;
            try_store!("write app hash", meta.insert(app_hash_key(pending.version).as_str(), pending.root.as_slice()))?;
            if let Some(chain_id) = chain_id {
                try_store!("write chain id", meta.insert(META_CHAIN_ID, chain_id.as_bytes()))?;
            }
            if restored {
                let held_from = pending.version.to_be_bytes();
                try_store!("write pruned height", meta.insert(META_PRUNED_BELOW, held_from.as_slice()))?;
            }
        }
        try_store!("commit", write.commit())
    }
}

impl Store {
    /// One pruning pass: makes every version below `below` unreadable (at once, in the pass's
    /// first transaction) and deletes up to `budget` entries that only those versions needed.
    /// Call it again until [`PruneProgress::done`]; each call is one short transaction, so a
    /// Commit waits at most for one pass. `below` never passes the last committed version.
    ///
    /// # Errors
    /// On storage failure; what was deleted before it stays deleted, and the next pass resumes.
    pub fn prune(&self, below: Version, budget: usize) -> Result<PruneProgress, StoreError> {
        let below = below.min(self.last_version()?.unwrap_or(0));
        let write = try_store!("begin write", self.db.begin_write())?;
        let mut progress = PruneProgress::default();
        {
            let mut meta = try_store!("open meta", write.open_table(META))?;
            let pruned_below =
                try_store!("read meta", meta.get(META_PRUNED_BELOW))?.and_then(|value| version_of(value.value()));
            if pruned_below.unwrap_or(0) < below {
                try_store!("write pruned height", meta.insert(META_PRUNED_BELOW, below.to_be_bytes().as_slice()))?;
            }
            let below = below.max(pruned_below.unwrap_or(0));
            // Everything stale since `below` or earlier: keys under (below + 1) ‖ ….
            let end = below.saturating_add(1).to_be_bytes();

            let mut stale_nodes = try_store!("open stale nodes", write.open_table(STALE_NODES))?;
            let mut nodes = try_store!("open nodes", write.open_table(NODES))?;
            let stale: Vec<Vec<u8>> = try_store!("range stale nodes", stale_nodes.range(..end.as_slice()))?
                .take(budget)
                .map(|entry| entry.map(|(key, _)| key.value().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|e| store_error("read stale nodes")(&e))?;
            for key in &stale {
                try_store!("delete node", nodes.remove(key.get(8..).unwrap_or_default()))?;
                try_store!("delete stale node", stale_nodes.remove(key.as_slice()))?;
            }
            progress.deleted += stale.len();

            let mut stale_values = try_store!("open stale values", write.open_table(STALE_VALUES))?;
            let mut values = try_store!("open values", write.open_table(VALUES))?;
            let mut index = try_store!("open key index", write.open_table(KEY_INDEX))?;
            let room = budget.saturating_sub(progress.deleted);
            let stale: Vec<(Vec<u8>, Vec<u8>)> =
                try_store!("range stale values", stale_values.range(..end.as_slice()))?
                    .take(room)
                    .map(|entry| entry.map(|(key, deleted)| (key.value().to_vec(), deleted.value().to_vec())))
                    .collect::<Result<_, _>>()
                    .map_err(|e| store_error("read stale values")(&e))?;
            for (stale_key, deleted_key) in &stale {
                // stale-since (8) ‖ key hash (32) ‖ version (8): the value entry is the last 40.
                let entry = stale_key.get(8..).unwrap_or_default();
                try_store!("delete value", values.remove(entry))?;
                try_store!("delete stale value", stale_values.remove(stale_key.as_slice()))?;
                if !deleted_key.is_empty() {
                    // A deletion pruned with every value before it: the key is gone from every
                    // retained version unless written again since.
                    let hash = entry.get(..32).unwrap_or_default();
                    let mut upper = hash.to_vec();
                    upper.extend_from_slice(&u64::MAX.to_be_bytes());
                    let written_again =
                        try_store!("range values", values.range(hash..upper.as_slice()))?.next().is_some();
                    if !written_again {
                        try_store!("delete key index", index.remove(deleted_key.as_slice()))?;
                    }
                }
            }
            progress.deleted += stale.len();

            let room = budget.saturating_sub(progress.deleted);
            let (first, last) = (app_hash_key(0), app_hash_key(below));
            let hashes: Vec<String> = try_store!("range app hashes", meta.range(first.as_str()..last.as_str()))?
                .take(room)
                .map(|entry| entry.map(|(key, _)| key.value().to_owned()))
                .collect::<Result<_, _>>()
                .map_err(|e| store_error("read app hashes")(&e))?;
            for key in &hashes {
                try_store!("delete app hash", meta.remove(key.as_str()))?;
            }
            progress.deleted += hashes.len();
            progress.done = progress.deleted < budget;
        }
        try_store!("commit", write.commit())?;
        Ok(progress)
    }
}

fn stale_value_key(stale_since: Version, hash: &KeyHash, version: Version) -> [u8; 48] {
    let mut out = [0u8; 48];
    out[..8].copy_from_slice(&stale_since.to_be_bytes());
    out[8..].copy_from_slice(&value_key(hash, version));
    out
}

/// The tree below a restored version: an empty root at `version − 1`, nothing else.
struct EmptyBelow(Version);

impl TreeReader for EmptyBelow {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let root_below = node_key.nibble_path().is_empty() && node_key.version().saturating_add(1) == self.0;
        Ok(root_below.then_some(Node::Null))
    }

    fn get_value_option(&self, _max_version: Version, _key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(None)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
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

impl StateView {
    /// The value of `key` at this view's version with its Merkle proof against the version's
    /// root (the app hash): a proof of existence, or of absence when the value is `None`.
    ///
    /// # Errors
    /// On storage failure or a tree inconsistency.
    pub fn proven(
        &self,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, jmt::proof::SparseMerkleProof<sha2::Sha256>), StoreError> {
        let tree: Sha256Jmt<'_, StateView> = JellyfishMerkleTree::new(self);
        try_store!("prove value", tree.get_with_proof(key_hash(key), self.version))
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
    use redb::ReadableTableMetadata;

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

    fn count<K: redb::Key + 'static, V: redb::Value + 'static>(
        store: &Store,
        table: TableDefinition<K, V>,
    ) -> Result<u64, Box<dyn std::error::Error>> {
        let read = store.db.begin_read()?;
        Ok(read.open_table(table)?.len()?)
    }

    /// A deterministic mix of writes, overwrites and deletions over 40 keys for `version`.
    fn block(version: u64) -> ChangeSet {
        (0..6u64)
            .map(|slot| {
                let key = format!("k/{:02}", (version * 7 + slot * 13) % 40).into_bytes();
                let value = (!(version + slot).is_multiple_of(5)).then(|| format!("v{version}.{slot}").into_bytes());
                (key, value)
            })
            .collect()
    }

    #[test]
    fn pruning_drops_only_history_no_retained_version_reads() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let archive = Store::open(&dir.path().join("archive.redb"))?;
        let pruned = Store::open(&dir.path().join("pruned.redb"))?;
        let keep = 10;
        for version in 0..120 {
            let changes = block(version);
            let (a, p) = (archive.prepare(&changes, version)?, pruned.prepare(&changes, version)?);
            assert_eq!(a.root, p.root, "version {version}: a pruning store hashes like an archive");
            archive.commit(&a, None)?;
            pruned.commit(&p, None)?;
            if version >= keep {
                while !pruned.prune(version + 1 - keep, 7)?.done {}
            }
        }
        let oldest = 120 - keep;
        assert_eq!(pruned.pruned_below()?, oldest);
        assert!(pruned.retained_view(oldest - 1)?.is_none(), "a pruned version is refused");
        assert!(pruned.view(oldest - 1).is_err());
        assert_eq!(pruned.app_hash(oldest - 1)?, None);
        for version in oldest..120 {
            assert_eq!(pruned.app_hash(version)?, archive.app_hash(version)?);
            let (a, p) = (archive.view(version)?, pruned.view(version)?);
            for slot in 0..40 {
                let key = format!("k/{slot:02}").into_bytes();
                assert_eq!(a.get(&key)?, p.get(&key)?, "version {version}, key {slot}");
            }
            assert_eq!(a.scan(Scan::ascending(b"k/", 100))?, p.scan(Scan::ascending(b"k/", 100))?);
        }
        let (archived, kept) = (count(&archive, NODES)?, count(&pruned, NODES)?);
        assert!(kept * 3 < archived, "tree nodes: {kept} kept of the archive's {archived}");
        let (archived, kept) = (count(&archive, VALUES)?, count(&pruned, VALUES)?);
        assert!(kept * 2 < archived, "values: {kept} kept of the archive's {archived}");
        let live = pruned.view(119)?.scan(Scan::ascending(b"k/", 100))?.len() as u64;
        assert!(count(&pruned, KEY_INDEX)? < live + 6 * keep, "keys deleted before the window leave the key index");
        // The tree goes on from a pruned store exactly as from the archive.
        let next = block(120);
        assert_eq!(pruned.prepare(&next, 120)?.root, archive.prepare(&next, 120)?.root);
        Ok(())
    }
}
