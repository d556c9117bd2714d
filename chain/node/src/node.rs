//! The ABCI application: ABCI requests in, state-machine calls and storage out.
//!
//! Consensus requests are serialized by CometBFT (one connection); CheckTx runs on a separate
//! mempool overlay that is reset to the committed state at every Commit (CometBFT then rechecks
//! the remaining mempool against it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use ferry_app::cosmos_query::SimulationContext;
use ferry_app::execute::TxContext;
use ferry_app::exit_claims::ClaimTree;
use ferry_app::query::QueryAnswer;
use ferry_app::{BlockInput, BlockOutcome, SignatureCache, StateDelta, StateError, StateRead};
use ferry_types::cosmos_api::StandardQuery;
use ferry_types::query::{
    APP_HASH_PATH, AppHashView, BatchRelease, JMT_PROOF_OP, QUERY_BAD_HEIGHT, QUERY_BAD_REQUEST, QUERY_NOT_FOUND,
    QUERY_PRUNED, STORE_PATH,
};
use ferry_types::{GenesisState, Params, TxCode};
use tendermint::AppHash;
use tendermint::abci::types::ExecTxResult;
use tendermint::abci::{Code, Event as AbciEvent};
use tendermint::merkle::proof::{ProofOp, ProofOps};
use tendermint::v0_38::abci::{request, response};

use crate::metrics::{AssetSnapshot, BridgeSnapshot, Metrics};
use crate::pruning::Pruner;
use crate::snapshot::{ChunkVerdict, Restore, SnapshotConfig, SnapshotInfo};
use crate::store::{PendingVersion, StateView, Store, StoreError};

/// Where genesis records the chain id in the state itself (the node's key, outside the state
/// machine's records), so that a node restoring a snapshot learns it from verified state.
pub const CHAIN_ID_KEY: &[u8] = b"node/chain_id";

/// A failure after which the node must stop: its state can no longer be trusted to match its peers.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state machine hit a storage failure.
    #[error(transparent)]
    State(#[from] StateError),
    /// The genesis `app_state` is invalid.
    #[error("cannot start the chain: {0}")]
    Genesis(String),
    /// CometBFT sent requests out of order.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A thread the node needs could not start.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

/// What the node learns at genesis and keeps: the chain id and the parameters.
#[derive(Clone, Debug)]
struct ChainConfig {
    chain_id: String,
    params: Params,
}

/// How many verified signatures the node remembers (about 64 bytes each).
const SIGNATURE_CACHE_ENTRIES: usize = 200_000;

struct Finalized {
    height: u64,
    pending: PendingVersion,
    /// The block's writes to the exit claims, for the exit tree at Commit.
    claim_changes: ferry_app::ChangeSet,
}

/// The application behind CometBFT.
pub struct Node {
    store: Arc<Store>,
    /// Drops history beyond the retained window; `None` keeps every height.
    pruner: Option<Pruner>,
    /// Where and how often snapshots for state sync are written; `None`: none are.
    snapshots: Option<Arc<SnapshotConfig>>,
    /// Set while a snapshot is being written (one at a time).
    snapshotting: Arc<std::sync::atomic::AtomicBool>,
    /// Height of the oldest snapshot on disk (0: none), kept by the snapshot thread so that
    /// Commit never lists the snapshot directory.
    oldest_snapshot: Arc<AtomicU64>,
    /// The snapshot being restored by state sync, if any.
    restore: Mutex<Option<Restore>>,
    chain: Mutex<Option<Arc<ChainConfig>>>,
    /// Last committed height, kept in memory so CheckTx does not read the database per transaction.
    committed_height: AtomicU64,
    signatures: SignatureCache,
    finalized: Mutex<Option<Finalized>>,
    mempool: Mutex<StateDelta<StateView>>,
    /// The exit tree over the committed exit claims: rebuilt from the store at start-up and
    /// after a state-sync restore, updated at each Commit; each block records its root.
    claims: Mutex<ClaimTree>,
    metrics: Metrics,
}

/// ABCI events; only attributes worth searching by (accounts, later ids) are indexed by
/// CometBFT, since every indexed attribute costs a write per transaction on every node.
fn to_abci_events(events: Vec<ferry_app::Event>) -> Vec<AbciEvent> {
    events
        .into_iter()
        .map(|event| {
            let attributes = event.attributes.into_iter().map(|(key, value)| {
                let indexed = ferry_types::event::INDEXED_ATTRIBUTES.contains(&key);
                (key, value, indexed)
            });
            AbciEvent::new(event.kind, attributes)
        })
        .collect()
}

fn app_hash(root: [u8; 32]) -> AppHash {
    // A 32-byte vector is always a valid app hash.
    AppHash::try_from(root.to_vec()).unwrap_or_default()
}

impl Node {
    /// Wraps an opened store.
    ///
    /// # Errors
    /// On storage failure.
    pub fn new(store: Store, metrics: Metrics) -> Result<Self, Fatal> {
        Self::from_shared(Arc::new(store), metrics)
    }

    /// Wraps a store someone else also holds (a benchmark seeding state straight into it
    /// between two nodes' lives; never two nodes at once).
    ///
    /// # Errors
    /// On storage failure.
    pub fn from_shared(store: Arc<Store>, metrics: Metrics) -> Result<Self, Fatal> {
        let version = store.last_version()?.unwrap_or(0);
        let mempool = StateDelta::new(store.view(version)?);
        let chain = match store.chain_id()? {
            Some(chain_id) => Some(ChainConfig { chain_id, params: mempool.params()? }),
            None => None,
        };
        metrics.height.set(i64::try_from(version).unwrap_or(i64::MAX));
        metrics.record_bridge(&bridge_snapshot(&mempool, version)?);
        let claims = ClaimTree::load(&store.view(version)?)?;
        metrics.exit_claims.set(i64::try_from(claims.len()).unwrap_or(i64::MAX));
        Ok(Node {
            store,
            pruner: None,
            snapshots: None,
            snapshotting: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            oldest_snapshot: Arc::new(AtomicU64::new(0)),
            restore: Mutex::new(None),
            chain: Mutex::new(chain.map(Arc::new)),
            committed_height: AtomicU64::new(version),
            signatures: SignatureCache::new(SIGNATURE_CACHE_ENTRIES),
            finalized: Mutex::new(None),
            mempool: Mutex::new(mempool),
            claims: Mutex::new(claims),
            metrics,
        })
    }

    /// Keeps only the last `min_retain_blocks` heights of state (and asks CometBFT to keep only
    /// those blocks); 0 keeps everything. What the window already left behind goes at once.
    ///
    /// # Errors
    /// When the pruning thread cannot start.
    pub fn with_pruning(mut self, min_retain_blocks: u64) -> Result<Self, Fatal> {
        if min_retain_blocks > 0 {
            let pruner = Pruner::start(self.store.clone(), min_retain_blocks, self.metrics.clone())
                .map_err(|e| Fatal::Thread("pruning", e))?;
            pruner.committed(self.committed_height.load(Ordering::Acquire));
            self.pruner = Some(pruner);
        }
        Ok(self)
    }

    /// Writes a snapshot for state sync at every `config.interval` heights (in the background)
    /// and serves them to joining nodes.
    pub fn with_snapshots(mut self, config: SnapshotConfig) -> Self {
        if config.interval > 0 {
            record_oldest_snapshot(&config, &self.oldest_snapshot);
            self.snapshots = Some(Arc::new(config));
        }
        self
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn chain(&self) -> Result<Arc<ChainConfig>, Fatal> {
        lock(&self.chain).clone().ok_or_else(|| Fatal::Protocol("block before InitChain".to_owned()))
    }

    /// `Info`: the last committed height and app hash, so CometBFT replays only what is missing.
    ///
    /// # Errors
    /// On storage failure.
    pub fn info(&self) -> Result<response::Info, Fatal> {
        let height = self.store.last_version()?.unwrap_or(0);
        let hash = self.store.app_hash(height)?;
        Ok(response::Info {
            data: "ferry".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            app_version: 1,
            last_block_height: height.try_into().unwrap_or_default(),
            last_block_app_hash: hash.map(app_hash).unwrap_or_default(),
        })
    }

    /// `InitChain`: loads genesis as version 0. Idempotent: CometBFT calls it again after a
    /// crash before the first block, and the stored genesis is then answered as is.
    ///
    /// # Errors
    /// On an invalid genesis or a storage failure.
    pub fn init_chain(&self, request: request::InitChain) -> Result<response::InitChain, Fatal> {
        if let Some(root) = self.store.app_hash(0)? {
            tracing::info!(chain_id = %request.chain_id, "genesis already loaded");
            return Ok(response::InitChain {
                consensus_params: None,
                validators: Vec::new(),
                app_hash: app_hash(root),
            });
        }
        let genesis = GenesisState::from_json(&request.app_state_bytes).map_err(|e| Fatal::Genesis(e.to_string()))?;
        let (mut changes, _events) = ferry_app::init_chain(&genesis).map_err(|e| Fatal::Genesis(e.to_string()))?;
        changes.insert(CHAIN_ID_KEY.to_vec(), Some(request.chain_id.as_bytes().to_vec()));
        let pending = self.store.prepare(&changes, 0)?;
        self.store.commit(&pending, Some(&request.chain_id))?;
        *lock(&self.chain) =
            Some(Arc::new(ChainConfig { chain_id: request.chain_id.clone(), params: genesis.params.clone() }));
        *lock(&self.mempool) = StateDelta::new(self.store.view(0)?);
        tracing::info!(chain_id = %request.chain_id, accounts = genesis.accounts.len(), app_hash = %hex::encode(pending.root), "genesis loaded");
        Ok(response::InitChain { consensus_params: None, validators: Vec::new(), app_hash: app_hash(pending.root) })
    }

    /// `PrepareProposal`: the mempool's transactions in order, up to the byte limit.
    pub fn prepare_proposal(&self, request: request::PrepareProposal) -> response::PrepareProposal {
        let limit = usize::try_from(request.max_tx_bytes).unwrap_or(0);
        // Before genesis there are no parameters; no transaction decodes then anyway.
        let max_tx_bytes = lock(&self.mempool).params().map_or(0, |params| params.max_tx_bytes);
        let raw: Vec<&[u8]> = request.txs.iter().map(Bytes::as_ref).collect();
        let order = ferry_app::block::proposal_order(&raw, limit, max_tx_bytes);
        let txs = order.into_iter().filter_map(|index| request.txs.get(index).cloned()).collect();
        response::PrepareProposal { txs }
    }

    /// `FinalizeBlock`: executes the block and computes the app hash; nothing is persisted
    /// until `Commit`.
    ///
    /// # Errors
    /// On storage failure.
    pub fn finalize_block(&self, request: request::FinalizeBlock) -> Result<response::FinalizeBlock, Fatal> {
        let started = Instant::now();
        let height = request.height.value();
        let chain = self.chain()?;
        let chain_id = &chain.chain_id;
        let base = self.store.view(height.saturating_sub(1))?;
        let txs: Vec<&[u8]> = request.txs.iter().map(Bytes::as_ref).collect();
        let claims = lock(&self.claims);
        let block =
            BlockInput { height, time_unix: request.time.unix_timestamp(), chain_id, txs: &txs, claims: &*claims };
        let BlockOutcome { tx_results, events, changes } = ferry_app::finalize_block(&base, &block, &self.signatures)?;
        drop(claims);
        let tx_events = tx_results.iter().flat_map(|result| &result.events);
        self.metrics.count_block_events(events.iter().chain(tx_events).map(|event| event.kind));
        let pending = self.store.prepare(&changes, height)?;
        let root = pending.root;
        let claim_changes =
            ferry_app::exit_claims::claim_writes(&changes).map(|(key, value)| (key.clone(), value.clone())).collect();
        *lock(&self.finalized) = Some(Finalized { height, pending, claim_changes });

        let accepted = tx_results.iter().filter(|r| r.code == TxCode::Ok).count();
        for result in &tx_results {
            self.metrics.count_tx("finalize", result.code);
        }
        let tx_results = tx_results
            .into_iter()
            .map(|result| ExecTxResult {
                code: Code::from(result.code.value()),
                log: result.log,
                events: to_abci_events(result.events),
                codespace: if result.code == TxCode::Ok {
                    String::new()
                } else {
                    ferry_types::code::CODESPACE.to_owned()
                },
                ..ExecTxResult::default()
            })
            .collect();
        self.metrics.blocks.inc();
        self.metrics.finalize_block_seconds.observe(started.elapsed().as_secs_f64());
        tracing::info!(height, txs = txs.len(), accepted, app_hash = %hex::encode(root), "block finalized");
        Ok(response::FinalizeBlock {
            events: to_abci_events(events),
            tx_results,
            validator_updates: Vec::new(),
            consensus_param_updates: None,
            app_hash: app_hash(root),
        })
    }

    /// `Commit`: persists the finalized block and resets the mempool overlay.
    ///
    /// # Errors
    /// On storage failure, or a Commit without a FinalizeBlock.
    pub fn commit(&self) -> Result<response::Commit, Fatal> {
        let started = Instant::now();
        let Some(Finalized { height, pending, claim_changes }) = lock(&self.finalized).take() else {
            return Err(Fatal::Protocol("Commit without FinalizeBlock".to_owned()));
        };
        self.store.commit(&pending, None)?;
        {
            let mut claims = lock(&self.claims);
            claims.apply(&claim_changes)?;
            self.metrics.exit_claims.set(i64::try_from(claims.len()).unwrap_or(i64::MAX));
        }
        let committed = StateDelta::new(self.store.view(height)?);
        self.metrics.record_bridge(&bridge_snapshot(&committed, height)?);
        *lock(&self.mempool) = committed;
        self.committed_height.store(height, Ordering::Release);
        self.metrics.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        let retain_height = self.retain_height(height);
        if let Some(config) = self.snapshots.as_ref().filter(|config| config.due(height)) {
            self.start_snapshot(config.clone(), height);
        }
        Ok(response::Commit { data: Bytes::new(), retain_height: retain_height.try_into().unwrap_or_default() })
    }

    /// Asks the pruner for what falls out of the window at `height`, and answers CometBFT's
    /// retain height: that window's start, but never past the oldest snapshot this node serves
    /// (a joining node's light client verifies the headers at the snapshot's height).
    fn retain_height(&self, height: u64) -> u64 {
        let Some(pruner) = &self.pruner else { return 0 };
        let keep_from = pruner.committed(height);
        match self.oldest_snapshot.load(Ordering::Acquire) {
            0 => keep_from,
            oldest => keep_from.min(oldest),
        }
    }

    /// Writes the snapshot of `height` on a thread of its own (skipped while one is still
    /// being written: a slow disk makes snapshots rarer, never Commit slower).
    fn start_snapshot(&self, config: Arc<SnapshotConfig>, height: u64) {
        if self.snapshotting.swap(true, Ordering::AcqRel) {
            tracing::warn!(height, "previous snapshot still being written; skipping this one");
            return;
        }
        let (store, busy, metrics) = (self.store.clone(), self.snapshotting.clone(), self.metrics.clone());
        let oldest = self.oldest_snapshot.clone();
        let spawned = std::thread::Builder::new().name("snapshot".to_owned()).spawn(move || {
            let started = Instant::now();
            match config.create(&store, height) {
                Ok(snapshot) => {
                    record_oldest_snapshot(&config, &oldest);
                    metrics.snapshot_height.set(i64::try_from(height).unwrap_or(i64::MAX));
                    tracing::info!(
                        height,
                        chunks = snapshot.chunks,
                        seconds = started.elapsed().as_secs_f64(),
                        "snapshot written"
                    );
                }
                Err(error) => tracing::error!(%error, height, "snapshot failed"),
            }
            busy.store(false, Ordering::Release);
        });
        if let Err(error) = spawned {
            tracing::error!(%error, height, "cannot start the snapshot thread");
            self.snapshotting.store(false, Ordering::Release);
        }
    }

    /// `ListSnapshots`: the snapshots on disk.
    pub fn list_snapshots(&self) -> response::ListSnapshots {
        let Some(config) = &self.snapshots else { return response::ListSnapshots::default() };
        let snapshots = match config.list() {
            Ok(snapshots) => snapshots,
            Err(error) => {
                tracing::warn!(%error, "cannot list snapshots");
                Vec::new()
            }
        };
        let snapshots = snapshots
            .into_iter()
            .filter_map(|snapshot| {
                Some(tendermint::abci::types::Snapshot {
                    height: snapshot.height.try_into().ok()?,
                    format: crate::snapshot::FORMAT,
                    chunks: snapshot.chunks,
                    hash: snapshot.hash.to_vec().into(),
                    metadata: snapshot.metadata.into(),
                })
            })
            .collect();
        response::ListSnapshots { snapshots }
    }

    /// `LoadSnapshotChunk`: one chunk as stored (empty when it is gone or unreadable).
    pub fn load_snapshot_chunk(&self, request: request::LoadSnapshotChunk) -> response::LoadSnapshotChunk {
        let chunk = match &self.snapshots {
            Some(config) if request.format == crate::snapshot::FORMAT => {
                config.chunk(request.height.value(), request.chunk).unwrap_or_else(|error| {
                    tracing::warn!(%error, "cannot serve a snapshot chunk");
                    Vec::new()
                })
            }
            _ => Vec::new(),
        };
        response::LoadSnapshotChunk { chunk: chunk.into() }
    }

    /// `OfferSnapshot`: accepts a well-formed snapshot into an empty store.
    ///
    /// # Errors
    /// On storage failure.
    pub fn offer_snapshot(&self, request: request::OfferSnapshot) -> Result<response::OfferSnapshot, Fatal> {
        if let Some(held) = self.store.last_version()? {
            tracing::warn!(held, "offered a snapshot while holding state; refusing");
            return Ok(response::OfferSnapshot::Abort);
        }
        let snapshot = request.snapshot;
        let Ok(hash) = <[u8; 32]>::try_from(snapshot.hash.as_ref()) else {
            return Ok(response::OfferSnapshot::Reject);
        };
        let info = SnapshotInfo {
            height: snapshot.height.value(),
            chunks: snapshot.chunks,
            hash,
            metadata: snapshot.metadata.to_vec(),
        };
        match Restore::offer(&info, snapshot.format, request.app_hash.as_bytes().to_vec()) {
            Ok(restore) => {
                tracing::info!(height = info.height, chunks = info.chunks, "restoring snapshot");
                *lock(&self.restore) = Some(restore);
                Ok(response::OfferSnapshot::Accept)
            }
            Err(refusal) => {
                tracing::warn!(%refusal, "snapshot refused");
                Ok(if snapshot.format == crate::snapshot::FORMAT {
                    response::OfferSnapshot::Reject
                } else {
                    response::OfferSnapshot::RejectFormat
                })
            }
        }
    }

    /// `ApplySnapshotChunk`: checks each chunk against the snapshot's metadata (a corrupt one is
    /// refetched and its sender rejected); with the last one, rebuilds the tree and writes it
    /// only if its root is the app hash the light client verified.
    ///
    /// # Errors
    /// On storage failure.
    pub fn apply_snapshot_chunk(
        &self,
        request: request::ApplySnapshotChunk,
    ) -> Result<response::ApplySnapshotChunk, Fatal> {
        use tendermint::abci::response::ApplySnapshotChunkResult as Outcome;
        let answer = |result, refetch_chunks: Vec<u32>, reject_senders: Vec<String>| response::ApplySnapshotChunk {
            result,
            refetch_chunks,
            reject_senders,
        };
        let mut restoring = lock(&self.restore);
        let Some(restore) = restoring.as_mut() else {
            return Ok(answer(Outcome::Abort, Vec::new(), Vec::new()));
        };
        match restore.apply(request.index, &request.chunk) {
            ChunkVerdict::Corrupt => {
                self.metrics.snapshot_chunks_refused.inc();
                tracing::warn!(index = request.index, sender = %request.sender, "snapshot chunk does not match its hash; refetching it from another peer");
                return Ok(answer(Outcome::Retry, vec![request.index], vec![request.sender]));
            }
            ChunkVerdict::Malformed => {
                tracing::warn!(
                    index = request.index,
                    "snapshot chunk hashes right but does not decode; rejecting the snapshot"
                );
                *restoring = None;
                return Ok(answer(Outcome::RejectSnapshot, Vec::new(), Vec::new()));
            }
            ChunkVerdict::Accepted if !restore.complete() => {
                return Ok(answer(Outcome::Accept, Vec::new(), Vec::new()));
            }
            ChunkVerdict::Accepted => {}
        }
        let Some(restore) = restoring.take() else { return Ok(answer(Outcome::Abort, Vec::new(), Vec::new())) };
        let (height, app_hash) = (restore.height, restore.app_hash.clone());
        let changes = restore.into_changes();
        let entries = changes.len();
        let Some(chain_id) = changes.get(CHAIN_ID_KEY).cloned().flatten().and_then(|id| String::from_utf8(id).ok())
        else {
            tracing::warn!(height, "the snapshot's state records no chain id; rejecting it");
            return Ok(answer(Outcome::RejectSnapshot, Vec::new(), Vec::new()));
        };
        let pending = self.store.prepare_restore(&changes, height)?;
        if pending.root.as_slice() != app_hash.as_slice() {
            tracing::warn!(height, restored = %hex::encode(pending.root), trusted = %hex::encode(&app_hash), "the restored state's root is not the trusted app hash; rejecting the snapshot");
            return Ok(answer(Outcome::RejectSnapshot, Vec::new(), Vec::new()));
        }
        self.store.commit_restored(&pending, &chain_id)?;
        *lock(&self.claims) = ClaimTree::load(&self.store.view(height)?)?;
        let committed = StateDelta::new(self.store.view(height)?);
        *lock(&self.chain) = Some(Arc::new(ChainConfig { chain_id: chain_id.clone(), params: committed.params()? }));
        self.metrics.record_bridge(&bridge_snapshot(&committed, height)?);
        *lock(&self.mempool) = committed;
        self.committed_height.store(height, Ordering::Release);
        self.metrics.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        tracing::info!(height, entries, chain_id, app_hash = %hex::encode(pending.root), "snapshot restored");
        Ok(answer(Outcome::Accept, Vec::new(), Vec::new()))
    }

    /// `CheckTx`: full validation against the mempool state.
    ///
    /// # Errors
    /// On storage failure.
    pub fn check_tx(&self, request: request::CheckTx) -> Result<response::CheckTx, Fatal> {
        let started = Instant::now();
        let Some(chain) = lock(&self.chain).clone() else {
            return Ok(response::CheckTx {
                code: Code::from(TxCode::WrongChainId.value()),
                log: "chain not initialised yet".to_owned(),
                ..response::CheckTx::default()
            });
        };
        let next_height = self.committed_height.load(Ordering::Acquire).saturating_add(1);
        let context = TxContext {
            chain_id: &chain.chain_id,
            params: &chain.params,
            signatures: &self.signatures,
            height: next_height,
        };
        let executed = ferry_app::check_tx(&mut lock(&self.mempool), &context, &request.tx)?;
        self.metrics.count_tx("check", executed.code);
        self.metrics.check_tx_seconds.observe(started.elapsed().as_secs_f64());
        Ok(response::CheckTx {
            code: Code::from(executed.code.value()),
            log: executed.log,
            codespace: if executed.code == TxCode::Ok {
                String::new()
            } else {
                ferry_types::code::CODESPACE.to_owned()
            },
            gas_wanted: 1,
            ..response::CheckTx::default()
        })
    }

    /// `Query` at a height (0 = latest committed).
    ///
    /// # Errors
    /// On storage failure.
    pub fn query(&self, request: request::Query) -> Result<response::Query, Fatal> {
        let latest = self.store.last_version()?.unwrap_or(0);
        let asked = request.height.value();
        let height = if asked == 0 { latest } else { asked };
        let pruned_below = self.store.pruned_below()?;
        let pruned = || {
            QueryAnswer::error(
                QUERY_PRUNED,
                format!(
                    "height {height} is pruned on this node, which keeps heights {pruned_below}..={latest}; ask an archive node"
                ),
            )
        };
        let answer = if height > latest {
            QueryAnswer::error(QUERY_BAD_HEIGHT, format!("height {height} is not committed yet (latest {latest})"))
        } else if height < pruned_below {
            pruned()
        } else if request.path == APP_HASH_PATH {
            match self.store.app_hash(height)? {
                Some(root) => QueryAnswer {
                    code: 0,
                    value: serde_json::to_vec(&AppHashView { height, app_hash: hex::encode(root) }).unwrap_or_default(),
                    log: String::new(),
                },
                None => QueryAnswer::error(QUERY_NOT_FOUND, format!("no app hash at height {height}")),
            }
        } else if request.path == STORE_PATH {
            return Ok(match self.stored_record(&request, height)? {
                Some((answer, proof)) => query_response(answer, height, proof),
                // Pruned since the check above.
                None => query_response(pruned(), height, None),
            });
        } else {
            match (self.store.retained_view(height)?, StandardQuery::decode(&request.path, &request.data)) {
                // Pruned since the check above.
                (None, _) => pruned(),
                (Some(view), Ok(None)) => ferry_app::query::query(view, &request.path)?,
                (Some(view), Ok(Some(standard))) => {
                    let chain = lock(&self.chain).clone();
                    let chain_id = chain.as_ref().map_or("", |chain| chain.chain_id.as_str());
                    let context = SimulationContext { chain_id, height: height.saturating_add(1) };
                    ferry_app::cosmos_query::answer(view, standard, &context)?
                }
                (Some(_), Err(invalid)) => QueryAnswer::error(QUERY_BAD_REQUEST, invalid.to_string()),
            }
        };
        Ok(query_response(answer, height, None))
    }
}

impl Node {
    /// The raw record at `request.data` (a state key) at `height`, with its Merkle proof when
    /// `request.prove` ([`STORE_PATH`]); `None` when `height` is pruned.
    fn stored_record(
        &self,
        request: &request::Query,
        height: u64,
    ) -> Result<Option<(QueryAnswer, Option<ProofOps>)>, Fatal> {
        let Some(view) = self.store.retained_view(height)? else { return Ok(None) };
        let key = request.data.to_vec();
        let (value, proof) = if request.prove {
            let (value, proof) = view.proven(&key)?;
            // Encoding into a Vec cannot fail; an empty proof would only fail its verification.
            let data = borsh::to_vec(&proof).unwrap_or_default();
            (
                value,
                Some(ProofOps { ops: vec![ProofOp { field_type: JMT_PROOF_OP.to_owned(), key: key.clone(), data }] }),
            )
        } else {
            (view.get(&key)?, None)
        };
        let answer = match value {
            Some(value) => QueryAnswer { code: 0, value, log: String::new() },
            None => {
                QueryAnswer::error(QUERY_NOT_FOUND, format!("no record at key `{}`", String::from_utf8_lossy(&key)))
            }
        };
        Ok(Some((answer, proof)))
    }
}

fn query_response(answer: QueryAnswer, height: u64, proof: Option<ProofOps>) -> response::Query {
    response::Query {
        code: Code::from(answer.code),
        log: answer.log,
        value: answer.value.into(),
        height: height.try_into().unwrap_or_default(),
        codespace: if answer.code == 0 { String::new() } else { ferry_types::code::CODESPACE.to_owned() },
        proof,
        ..response::Query::default()
    }
}

/// Reads which snapshot is the oldest on disk into `oldest` (0: none). A directory that cannot
/// be listed records height 1, so every block is kept until a listing succeeds.
fn record_oldest_snapshot(config: &SnapshotConfig, oldest: &AtomicU64) {
    let height = match config.list() {
        Ok(snapshots) => snapshots.first().map_or(0, |snapshot| snapshot.height),
        Err(error) => {
            tracing::warn!(%error, "cannot list snapshots; keeping every block");
            1
        }
    };
    oldest.store(height, Ordering::Release);
}

/// How many withdrawals at the head of each queue [`bridge_snapshot`] reads for their age.
const QUEUE_HEAD_LOOKED_AT: usize = 64;

/// The bridge's figures in `state`, committed at `height`, for the metrics: each asset's ledger
/// and queue, the unsettled batches and how long the oldest have waited. A handful of reads per
/// asset and per unsettled batch, once per block.
///
/// # Errors
/// On storage failure or a corrupt record.
fn bridge_snapshot(state: &StateDelta<StateView>, height: u64) -> Result<BridgeSnapshot, Fatal> {
    let mut assets = Vec::new();
    let mut oldest_queued_withdrawal_age = 0;
    for denom in state.ledger_denoms()? {
        let ledger = state.ledger(&denom)?;
        // The queue is in id (burn) order, but a later withdrawal may have a shorter delay, so the
        // head of the queue is looked at, not only its first entry; bounded so that a long queue
        // (a stuck bridge) does not cost a read per withdrawal per block.
        for id in state.queued_withdrawals(&denom, None, QUEUE_HEAD_LOOKED_AT)? {
            if let Some(withdrawal) = state.withdrawal(id)? {
                oldest_queued_withdrawal_age =
                    oldest_queued_withdrawal_age.max(height.saturating_sub(withdrawal.eligible_height));
            }
        }
        assets.push(AssetSnapshot {
            asset: denom.to_string(),
            supply: ledger.supply,
            reserves: ledger.reserves,
            unreleased: ledger.unreleased,
            unattributed: ledger.unattributed,
            violated: ferry_app::reserves::violation(&ledger).is_some(),
            queued: state.queued_withdrawal_count(&denom)?,
        });
    }
    let bitcoin_fees = state.bitcoin_fees()?;
    let parent_height = bitcoin_fees.as_ref().map_or(0, |fees| fees.parent_height);
    let mut pending_batches = Vec::new();
    let mut oldest_unsettled_batch_age = 0;
    let (mut bitcoin_release_bumps, mut bitcoin_unconfirmed_release_age) = (0, 0);
    for id in state.pending_batches()? {
        if let Some(batch) = state.batch(id)? {
            oldest_unsettled_batch_age = oldest_unsettled_batch_age.max(height.saturating_sub(batch.created_height));
            pending_batches.push(batch.status);
            if let BatchRelease::Bitcoin(release) = &batch.release {
                bitcoin_release_bumps = bitcoin_release_bumps.max(release.version);
                if let Some(signed) = release.signed_parent_height {
                    bitcoin_unconfirmed_release_age =
                        bitcoin_unconfirmed_release_age.max(parent_height.saturating_sub(signed));
                }
            }
        }
    }
    let mut reserves_checks = Vec::new();
    for chain in ferry_types::ParentChain::ALL {
        if let Some(check) = state.reserves_check(chain)? {
            reserves_checks.push((chain.to_string(), check));
        }
    }
    Ok(BridgeSnapshot {
        paused: state.bridge_status()?.paused,
        height,
        reserves_checks,
        assets,
        pending_batches,
        oldest_unsettled_batch_age,
        oldest_queued_withdrawal_age,
        bitcoin_fees,
        bitcoin_release_bumps,
        bitcoin_unconfirmed_release_age,
        unattributed_open: state.open_unattributed_count()?,
        retired_peg_utxos: state.retired_reserve_utxo_count()?,
        // Before InitChain there are no parameters, and nothing to be live for.
        liveness: match state.params() {
            Ok(params) => Some(state.liveness(&params)?),
            Err(_) => None,
        },
        dkg: state.latest_dkg()?,
        federation: match state.federation() {
            Ok(federation) => Some((federation.epoch, state.running_handover()?)),
            Err(_) => None,
        },
        // The covering disbursal's age, and the soonest lock of any that may still confirm.
        exit_disbursal: match ferry_app::btc_exit::covering(state)? {
            Some((_, exit)) => {
                let soonest = ferry_app::btc_exit::live(state)?.into_iter().map(|(_, lock)| lock).min();
                Some((exit.clock, soonest.unwrap_or(exit.basis.lock_height)))
            }
            None => None,
        },
        vault_heartbeat_landed: state.last_vault_heartbeat()?.map(|landed| landed.settled_height),
    })
}

/// Locks a mutex, recovering the data if a previous holder panicked: every critical section
/// here either completes or leaves data that the next Commit replaces.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use ferry_types::genesis::Federation;
    use ferry_types::msg::MsgSetPaused;
    use ferry_types::{AccountKey, GenesisState, Msg, Params, TxBuilder};

    use super::*;
    use crate::in_process;

    const CHAIN_ID: &str = "ferry-node-unit";

    #[test]
    fn quorum_pause_votes_reach_finalize_block_events_and_the_paused_gauge_at_commit()
    -> Result<(), Box<dyn std::error::Error>> {
        let keys = (0..4)
            .map(|index| AccountKey::from_seed(&format!("node-unit/member/{index}")))
            .collect::<Result<Vec<_>, _>>()?;
        let genesis = GenesisState {
            accounts: Vec::new(),
            federation: Federation {
                members: keys.iter().map(AccountKey::address).collect(),
                attest_quorum: 3,
                ..Federation::default()
            },
            params: Params::default(),
        };
        let dir = tempfile::tempdir()?;
        let node = Node::new(Store::open(&dir.path().join("s.redb"))?, Metrics::new()?)?;
        node.init_chain(in_process::init_chain(CHAIN_ID, serde_json::to_vec(&genesis)?)?)?;
        // Members get accounts 0..3 at genesis (no funded accounts come first).
        let votes = keys
            .iter()
            .take(3)
            .zip(0u64..)
            .map(|(key, account_number)| {
                let vote = MsgSetPaused { member: key.address(), paused: true, reason: "drill".to_owned() };
                TxBuilder::new(CHAIN_ID, account_number).sign_fee_exempt(key, 0, &[Msg::SetPaused(vote)])
            })
            .collect::<Result<Vec<_>, _>>()?;

        let finalized = node.finalize_block(in_process::finalize_block(1, &votes)?)?;
        assert!(finalized.tx_results.iter().all(|result| result.code.is_ok()), "{:?}", finalized.tx_results);
        let paused_events = finalized
            .tx_results
            .iter()
            .flat_map(|result| &result.events)
            .filter(|event| event.kind == ferry_types::event::BRIDGE_PAUSED)
            .count();
        assert_eq!(paused_events, 1);
        assert_eq!(node.metrics().bridge_paused.get(), 0, "the gauge follows commits");
        node.commit()?;
        assert_eq!(node.metrics().bridge_paused.get(), 1);
        assert!(node.metrics().render().contains("ferry_chain_bridge_paused 1"));
        Ok(())
    }
}
