//! State sync: the node's snapshots of its state, served to nodes that join, and the restore of
//! one into a fresh store.
//!
//! Format 1. A snapshot of height `h` is every live key-value pair of version `h`, in key order,
//! each encoded `key length (u32, big-endian) ‖ key ‖ value length (u32) ‖ value`, cut into
//! chunks of about `chunk_bytes` (an entry never straddles two chunks). The snapshot's metadata
//! is the SHA-256 of every chunk, concatenated; its hash is the SHA-256 of the metadata. A
//! joining node checks the metadata against the hash when the snapshot is offered, every chunk
//! against its metadata entry as it arrives (a corrupt chunk is refetched from another peer and
//! its sender rejected), and the whole restored tree against the app hash CometBFT's light
//! client verified: only then is anything written.
//!
//! On disk: `<dir>/<height, 20 digits>/metadata` and `chunk-<index>`, written under a temporary
//! name and renamed, so a listed snapshot is always whole.

use std::fs;
use std::path::{Path, PathBuf};

use ferry_app::ChangeSet;
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

/// The only snapshot format this node writes and reads.
pub const FORMAT: u32 = 1;

/// How a node makes and keeps snapshots.
#[derive(Clone, Debug)]
pub struct SnapshotConfig {
    /// Where they are written.
    pub dir: PathBuf,
    /// A snapshot at every height divisible by it (0: none).
    pub interval: u64,
    /// How many of the latest are kept.
    pub keep: usize,
    /// The size chunks are cut at.
    pub chunk_bytes: usize,
}

/// A snapshot as listed: what CometBFT's `Snapshot` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its height.
    pub height: u64,
    /// Chunks.
    pub chunks: u32,
    /// SHA-256 of the metadata.
    pub hash: [u8; 32],
    /// Every chunk's SHA-256, concatenated.
    pub metadata: Vec<u8>,
}

/// A snapshot file operation that failed, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading or writing a snapshot file.
    #[error("snapshot file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Reading the state to export.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |error| SnapshotError::File { path: path.to_owned(), reason: error.to_string() }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn snapshot_dir(dir: &Path, height: u64) -> PathBuf {
    dir.join(format!("{height:020}"))
}

fn chunk_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("chunk-{index}"))
}

/// Appends one entry in the chunk encoding.
fn encode_entry(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    for part in [key, value] {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
}

/// One length-prefixed part at the front of `rest`, which then starts after it.
fn take_part(rest: &mut &[u8]) -> Option<Vec<u8>> {
    let (length, tail) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
    let (part, tail) = (tail.get(..length)?, tail.get(length..)?);
    *rest = tail;
    Some(part.to_vec())
}

/// The entries of one chunk, or `None` when it does not decode whole.
pub fn decode_chunk(mut chunk: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut entries = Vec::new();
    while !chunk.is_empty() {
        let key = take_part(&mut chunk)?;
        let value = take_part(&mut chunk)?;
        entries.push((key, value));
    }
    Some(entries)
}

impl SnapshotConfig {
    /// Whether a snapshot is due at `height`.
    pub fn due(&self, height: u64) -> bool {
        self.interval > 0 && height > 0 && height.is_multiple_of(self.interval)
    }

    /// Writes the snapshot of `height` from `store` and drops all but the newest `keep`.
    ///
    /// # Errors
    /// When the state cannot be read or a file cannot be written (nothing partial is listed).
    pub fn create(&self, store: &Store, height: u64) -> Result<SnapshotInfo, SnapshotError> {
        let target = snapshot_dir(&self.dir, height);
        let staging = self.dir.join(format!("{height:020}.partial"));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(file_error(&staging))?;
        }
        fs::create_dir_all(&staging).map_err(file_error(&staging))?;
        let mut hashes = Vec::new();
        let mut chunk = Vec::with_capacity(self.chunk_bytes);
        let write_chunk = |chunk: &mut Vec<u8>, hashes: &mut Vec<u8>| -> Result<(), SnapshotError> {
            let index = u32::try_from(hashes.len() / 32).unwrap_or(u32::MAX);
            let path = chunk_path(&staging, index);
            fs::write(&path, &chunk).map_err(file_error(&path))?;
            hashes.extend_from_slice(&sha256(chunk));
            chunk.clear();
            Ok(())
        };
        store.export(height, |key, value| {
            encode_entry(&mut chunk, key, value);
            if chunk.len() >= self.chunk_bytes {
                write_chunk(&mut chunk, &mut hashes)?;
            }
            Ok::<(), SnapshotError>(())
        })?;
        if !chunk.is_empty() || hashes.is_empty() {
            write_chunk(&mut chunk, &mut hashes)?;
        }
        let metadata_path = staging.join("metadata");
        fs::write(&metadata_path, &hashes).map_err(file_error(&metadata_path))?;
        if target.exists() {
            fs::remove_dir_all(&target).map_err(file_error(&target))?;
        }
        fs::rename(&staging, &target).map_err(file_error(&target))?;
        for old in self.list()?.into_iter().rev().skip(self.keep.max(1)) {
            let path = snapshot_dir(&self.dir, old.height);
            fs::remove_dir_all(&path).map_err(file_error(&path))?;
        }
        Ok(SnapshotInfo {
            height,
            chunks: u32::try_from(hashes.len() / 32).unwrap_or(u32::MAX),
            hash: sha256(&hashes),
            metadata: hashes,
        })
    }

    /// The whole snapshots on disk, oldest first.
    ///
    /// # Errors
    /// When the directory or a metadata file cannot be read.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut snapshots = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(snapshots),
            Err(error) => return Err(file_error(&self.dir)(error)),
        };
        for entry in entries {
            let entry = entry.map_err(file_error(&self.dir))?;
            let Some(height) = entry.file_name().to_str().and_then(|name| name.parse::<u64>().ok()) else {
                continue;
            };
            let metadata_path = entry.path().join("metadata");
            let metadata = fs::read(&metadata_path).map_err(file_error(&metadata_path))?;
            snapshots.push(SnapshotInfo {
                height,
                chunks: u32::try_from(metadata.len() / 32).unwrap_or(u32::MAX),
                hash: sha256(&metadata),
                metadata,
            });
        }
        snapshots.sort_by_key(|snapshot| snapshot.height);
        Ok(snapshots)
    }

    /// Chunk `index` of the snapshot at `height`, as stored.
    ///
    /// # Errors
    /// When it does not exist (pruned meanwhile) or cannot be read.
    pub fn chunk(&self, height: u64, index: u32) -> Result<Vec<u8>, SnapshotError> {
        let path = chunk_path(&snapshot_dir(&self.dir, height), index);
        fs::read(&path).map_err(file_error(&path))
    }
}

/// Why an offered snapshot is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferRefusal {
    /// Not format 1.
    #[error("snapshot format {0} is not {FORMAT}")]
    Format(u32),
    /// Its metadata does not hash to its hash, or lists another number of chunks.
    #[error("snapshot at height {0}: metadata does not match its hash and chunk count")]
    Inconsistent(u64),
}

/// What became of one applied chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkVerdict {
    /// Its hash matches: its entries are kept.
    Accepted,
    /// Its hash does not match the metadata: fetch it again, from someone else.
    Corrupt,
    /// It hashes right but does not decode: the snapshot itself is bad.
    Malformed,
}

/// A restore in progress: the snapshot offered and the entries of the chunks applied so far.
#[derive(Debug)]
pub struct Restore {
    /// The snapshot's height.
    pub height: u64,
    /// The app hash the light client verified for that height.
    pub app_hash: Vec<u8>,
    chunk_hashes: Vec<[u8; 32]>,
    applied: Vec<bool>,
    entries: ChangeSet,
}

impl Restore {
    /// Starts restoring `snapshot` (format `format`), expecting `app_hash`.
    ///
    /// # Errors
    /// An [`OfferRefusal`] naming what is wrong with the snapshot.
    pub fn offer(snapshot: &SnapshotInfo, format: u32, app_hash: Vec<u8>) -> Result<Restore, OfferRefusal> {
        if format != FORMAT {
            return Err(OfferRefusal::Format(format));
        }
        let chunk_hashes: Vec<[u8; 32]> =
            snapshot.metadata.chunks_exact(32).filter_map(|hash| <[u8; 32]>::try_from(hash).ok()).collect();
        let consistent = snapshot.metadata.len().is_multiple_of(32)
            && !chunk_hashes.is_empty()
            && usize::try_from(snapshot.chunks).ok() == Some(chunk_hashes.len())
            && sha256(&snapshot.metadata) == snapshot.hash;
        if !consistent {
            return Err(OfferRefusal::Inconsistent(snapshot.height));
        }
        let applied = vec![false; chunk_hashes.len()];
        Ok(Restore { height: snapshot.height, app_hash, chunk_hashes, applied, entries: ChangeSet::new() })
    }

    /// Checks and keeps chunk `index`.
    pub fn apply(&mut self, index: u32, chunk: &[u8]) -> ChunkVerdict {
        let Some(position) = usize::try_from(index).ok().filter(|position| *position < self.chunk_hashes.len()) else {
            return ChunkVerdict::Malformed;
        };
        if self.chunk_hashes.get(position) != Some(&sha256(chunk)) {
            return ChunkVerdict::Corrupt;
        }
        let Some(entries) = decode_chunk(chunk) else {
            return ChunkVerdict::Malformed;
        };
        if self.applied.get(position) == Some(&false) {
            self.entries.extend(entries.into_iter().map(|(key, value)| (key, Some(value))));
            if let Some(applied) = self.applied.get_mut(position) {
                *applied = true;
            }
        }
        ChunkVerdict::Accepted
    }

    /// Whether every chunk is in.
    pub fn complete(&self) -> bool {
        self.applied.iter().all(|applied| *applied)
    }

    /// The restored entries, as one change set over an empty state.
    pub fn into_changes(self) -> ChangeSet {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use ferry_app::StateRead;

    use super::*;

    fn store_with(entries: usize) -> Result<(tempfile::TempDir, Store), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("state.redb"))?;
        let changes: ChangeSet = (0..entries)
            .map(|index| Ok((format!("acct/{index:05}").into_bytes(), Some(vec![u8::try_from(index % 251)?; 40]))))
            .collect::<Result<_, std::num::TryFromIntError>>()?;
        let genesis = store.prepare(&changes, 0)?;
        store.commit(&genesis, Some("snap-chain"))?;
        let mut later = ChangeSet::new();
        later.insert(b"acct/00001".to_vec(), None);
        later.insert(b"zz".to_vec(), Some(b"last".to_vec()));
        let version = store.prepare(&later, 1)?;
        store.commit(&version, None)?;
        Ok((dir, store))
    }

    #[test]
    fn a_snapshot_restores_into_a_fresh_store_with_the_same_root() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, store) = store_with(500)?;
        let config = SnapshotConfig { dir: dir.path().join("snapshots"), interval: 1, keep: 1, chunk_bytes: 4096 };
        let info = config.create(&store, 1)?;
        assert!(info.chunks > 3, "{} chunks", info.chunks);
        assert_eq!(config.list()?, vec![info.clone()]);
        let app_hash = store.app_hash(1)?.ok_or("no app hash")?.to_vec();

        let mut restore = Restore::offer(&info, FORMAT, app_hash.clone())?;
        let mut corrupt = config.chunk(1, 0)?;
        if let Some(byte) = corrupt.get_mut(10) {
            *byte ^= 1;
        }
        assert_eq!(restore.apply(0, &corrupt), ChunkVerdict::Corrupt, "a flipped byte is caught");
        for index in 0..info.chunks {
            assert!(!restore.complete());
            assert_eq!(restore.apply(index, &config.chunk(1, index)?), ChunkVerdict::Accepted);
        }
        assert!(restore.complete());
        let fresh = Store::open(&dir.path().join("fresh.redb"))?;
        let pending = fresh.prepare_restore(&restore.into_changes(), 1)?;
        assert_eq!(pending.root.to_vec(), app_hash, "the restored tree has the snapshot's root");
        fresh.commit_restored(&pending, "snap-chain")?;
        assert_eq!((fresh.last_version()?, fresh.pruned_below()?), (Some(1), 1));
        let view = fresh.view(1)?;
        assert_eq!(view.get(b"acct/00001")?, None, "deleted before the snapshot");
        assert_eq!(view.get(b"zz")?, Some(b"last".to_vec()));
        assert_eq!(view.get(b"acct/00499")?, store.view(1)?.get(b"acct/00499")?);
        // The restored store goes on like the original.
        let mut next = ChangeSet::new();
        next.insert(b"acct/00002".to_vec(), Some(b"moved".to_vec()));
        assert_eq!(fresh.prepare(&next, 2)?.root, store.prepare(&next, 2)?.root);
        Ok(())
    }

    #[test]
    fn offers_with_a_wrong_format_or_metadata_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, store) = store_with(10)?;
        let config = SnapshotConfig { dir: dir.path().join("s"), interval: 1, keep: 2, chunk_bytes: 1 << 20 };
        let info = config.create(&store, 1)?;
        assert_eq!(Restore::offer(&info, 2, Vec::new()).err(), Some(OfferRefusal::Format(2)));
        let lying = SnapshotInfo { chunks: info.chunks + 1, ..info.clone() };
        assert_eq!(Restore::offer(&lying, FORMAT, Vec::new()).err(), Some(OfferRefusal::Inconsistent(1)));
        let tampered = SnapshotInfo { metadata: vec![0; 32], ..info };
        assert!(Restore::offer(&tampered, FORMAT, Vec::new()).is_err());
        assert_eq!(decode_chunk(&[0, 0, 0, 9, 1]), None, "a truncated entry");
        Ok(())
    }

    #[test]
    fn only_the_newest_snapshots_are_kept() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, store) = store_with(10)?;
        let config = SnapshotConfig { dir: dir.path().join("s"), interval: 1, keep: 1, chunk_bytes: 1 << 20 };
        config.create(&store, 0)?;
        config.create(&store, 1)?;
        assert_eq!(config.list()?.iter().map(|s| s.height).collect::<Vec<_>>(), [1]);
        Ok(())
    }
}
