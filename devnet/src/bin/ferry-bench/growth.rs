//! A chain that grows (issue 13), in process on the node's real store:
//!
//! 1. FinalizeBlock + Commit of a block of [`SENDERS`] signed transfers on a state of 1,000,000
//!    accounts, 100,000 deposit records and 10,000 queued withdrawals, against the same block on
//!    a state of 1,000 accounts and none of the rest (goal ≤ 1.5×). Seeding: the accounts come
//!    in through genesis (the real path), the deposit records are written straight into the
//!    store as minted records (the one direct write: 300,000 attestations would take longer
//!    than the rest of the bench), the senders are opened by federation attestations and the
//!    withdrawals are real signed `MsgWithdraw`s, left queued (no batching height comes).
//! 2. Disk: the store's file size after every 1,000 blocks of transfers over 10,000 blocks,
//!    with pruning (`--min-retain-blocks` 100) and without (goal: flat with pruning).
//! 3. State sync at the large state: writing its snapshot, then restoring it into a fresh store
//!    (every chunk checked, the tree rebuilt, its root compared) — the application's share of a
//!    join, against the 60 s goal for the whole join.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_app::StateDelta;
use ferry_chain::metrics::Metrics;
use ferry_chain::snapshot::{ChunkVerdict, FORMAT, Restore, SnapshotConfig};
use ferry_chain::{Node, Store};
use ferry_client::wallet::Wallet;
use ferry_devnet::accounts::{self, user_key};
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::load;
use ferry_types::deposit_record::{DepositRecord, DepositStatus};
use ferry_types::genesis::GenesisAccount;
use ferry_types::msg::{Msg, MsgWithdraw};
use ferry_types::{Address, Amount, Coin, Denom, DepositFacts, GenesisState, ParentChain};

const CHAIN_ID: &str = "ferry-bench-growth";
/// Transfers per measured block, one from each sender.
const SENDERS: usize = 2_000;
/// Measured blocks per state (the median is printed).
const ROUNDS: usize = 5;
/// Queued withdrawals per sender in the large state (× [`SENDERS`] = 10,000).
const WITHDRAWALS_PER_SENDER: usize = 5;
/// Transfers in each block of the disk measurement.
const DISK_SENDERS: usize = 20;
/// Heights a pruning node keeps in the disk measurement.
const DISK_RETAIN: u64 = 100;

/// What the state holds besides the senders.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Accounts beyond the senders.
    pub accounts: usize,
    /// Minted deposit records.
    pub deposits: usize,
    /// Whether the senders also queue [`WITHDRAWALS_PER_SENDER`] withdrawals each.
    pub withdrawals: bool,
}

/// A node on a fresh store driven block by block in process.
struct Chain {
    node: Node,
    store: Arc<Store>,
    height: u64,
    dir: tempfile::TempDir,
}

fn params(genesis: &mut GenesisState) {
    let rules = &mut genesis.params.withdrawals;
    // No batching height comes during the bench: withdrawals stay queued.
    rules.batch_interval = u64::MAX / 4;
    accounts::lift_withdrawal_limits(rules);
}

/// A made-up account address, distinct for each `index`.
pub(crate) fn address(index: usize) -> Address {
    let digest = ferry_types::key::sha256(format!("ferry-bench/growth/{index}").as_bytes());
    let mut bytes = [0u8; 20];
    bytes.copy_from_slice(digest.get(..20).unwrap_or(&[0; 20]));
    Address::from_bytes(bytes)
}

impl Chain {
    /// Genesis with `senders` devnet users then `size.accounts` made-up accounts, `size.deposits`
    /// minted deposit records written straight into version 1, the senders opened by attestations.
    fn start(senders: usize, size: Size, min_retain_blocks: u64) -> anyhow::Result<Chain> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("state.redb"))?);
        let mut genesis = accounts::genesis(senders, accounts::FEDERATION_MEMBERS)?;
        params(&mut genesis);
        genesis.accounts.extend((0..size.accounts).map(|index| GenesisAccount { address: address(index) }));
        let node = Node::from_shared(store.clone(), Metrics::new()?)?;
        node.init_chain(ferry_chain::in_process::init_chain(CHAIN_ID, serde_json::to_vec(&genesis)?)?)?;
        drop(node);

        let mut seed = StateDelta::new(store.view(0)?);
        for index in 0..size.deposits {
            let facts = DepositFacts {
                chain: ParentChain::Bitcoin,
                tx_id: format!("{index:064x}"),
                index: 0,
                asset: Denom::sat(),
                amount: Amount::new(100_000),
                recipient: address(index % size.accounts.max(1)),
                deposit_address: false,
                unattributed: None,
                peg_epoch: None,
            };
            seed.put_deposit(&DepositRecord {
                id: facts.id(),
                status: DepositStatus::Minted,
                attestations: Default::default(),
                candidates: Default::default(),
                conflicts: Vec::new(),
                minted: Some(facts),
                minted_amount: None,
                spend_fee: None,
                first_attested_height: 0,
                minted_height: Some(0),
                opened_by: None,
                unattributed: None,
            });
        }
        let pending = store.prepare(&seed.into_writes(), 1)?;
        store.commit(&pending, None)?;

        let node = Node::from_shared(store.clone(), Metrics::new()?)?.with_pruning(min_retain_blocks)?;
        let mut chain = Chain { node, store, height: 1, dir };
        // Genesis numbers the users first, then the made-up accounts, then the members.
        let first_member = senders + size.accounts;
        let openings = ferry_devnet::funding::offline_opening_blocks(&genesis, CHAIN_ID, senders, first_member)?;
        for txs in &openings {
            chain.block(txs)?;
        }
        if size.withdrawals {
            let destination = RegtestWallet::from_seed([0x6e; 32])?.address().to_string();
            let mut wallets = (0..senders)
                .map(|index| Ok(Wallet::offline(user_key(index)?, CHAIN_ID, u64::try_from(index)?, 0)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for _ in 0..WITHDRAWALS_PER_SENDER {
                let txs = wallets
                    .iter_mut()
                    .map(|wallet| {
                        let withdraw = MsgWithdraw {
                            sender: wallet.address(),
                            asset: Denom::sat(),
                            amount: Amount::new(100_000),
                            destination: destination.clone(),
                            max_fee: Amount::new(20_000),
                        };
                        Ok(wallet.sign(&Coin::new(100, Denom::sat()), &[Msg::Withdraw(withdraw)])?)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                chain.block(&txs)?;
            }
        }
        Ok(chain)
    }

    /// Runs the next block (every transaction must succeed); returns its FinalizeBlock and
    /// Commit times.
    fn block(&mut self, txs: &[Vec<u8>]) -> anyhow::Result<BlockTimes> {
        self.height += 1;
        let request = ferry_chain::in_process::finalize_block(self.height, txs)?;
        let started = Instant::now();
        let response = self.node.finalize_block(request)?;
        let finalized = Instant::now();
        self.node.commit()?;
        let times = BlockTimes { finalize: finalized - started, commit: finalized.elapsed() };
        if let Some(failed) = response.tx_results.iter().find(|result| result.code.is_err()) {
            anyhow::bail!("a transaction at height {} failed: {}", self.height, failed.log);
        }
        Ok(times)
    }

    fn file_bytes(&self) -> anyhow::Result<u64> {
        Ok(std::fs::metadata(self.dir.path().join("state.redb"))?.len())
    }
}

/// One block's FinalizeBlock (execution and Merkle hashing) and Commit (the write) times.
#[derive(Clone, Copy, Debug)]
struct BlockTimes {
    finalize: Duration,
    commit: Duration,
}

impl BlockTimes {
    fn total(&self) -> Duration {
        self.finalize + self.commit
    }
}

/// The block of median FinalizeBlock + Commit time among [`ROUNDS`] blocks of [`SENDERS`]
/// transfers on a state of `size`, and how long seeding it took.
fn block_cost(size: Size) -> anyhow::Result<(BlockTimes, Duration)> {
    let started = Instant::now();
    let mut chain = Chain::start(SENDERS, size, 0)?;
    let seeded = started.elapsed();
    let lanes = load::ferry_transfers(CHAIN_ID, SENDERS, ROUNDS + WITHDRAWALS_PER_SENDER)?.lanes;
    // The withdrawals took the first sequences of each sender.
    let skip = if size.withdrawals { WITHDRAWALS_PER_SENDER } else { 0 };
    let mut times = Vec::new();
    let _profiled = crate::profile::window(if size.withdrawals { "growth-large" } else { "growth-small" });
    for round in 0..ROUNDS {
        let txs: Vec<Vec<u8>> = lanes.iter().filter_map(|lane| lane.get(skip + round).cloned()).collect();
        times.push(chain.block(&txs)?);
    }
    times.sort_by_key(BlockTimes::total);
    Ok((times.get(times.len() / 2).copied().context("no rounds")?, seeded))
}

/// The store's file size after every 1,000 of `blocks` blocks of transfers.
fn disk_growth(blocks: usize, min_retain_blocks: u64) -> anyhow::Result<Vec<u64>> {
    let mut chain =
        Chain::start(DISK_SENDERS, Size { accounts: 0, deposits: 0, withdrawals: false }, min_retain_blocks)?;
    let lanes = load::ferry_transfers(CHAIN_ID, DISK_SENDERS, blocks)?.lanes;
    let mut sizes = Vec::new();
    for block in 0..blocks {
        let txs: Vec<Vec<u8>> = lanes.iter().filter_map(|lane| lane.get(block).cloned()).collect();
        chain.block(&txs)?;
        if (block + 1) % 1_000 == 0 {
            sizes.push(chain.file_bytes()?);
        }
    }
    Ok(sizes)
}

/// Writes the snapshot of the chain's latest height, then restores it into a fresh store:
/// (snapshot seconds, restore seconds, chunks).
fn state_sync(chain: &Chain) -> anyhow::Result<(Duration, Duration, u32)> {
    let config = SnapshotConfig { dir: chain.dir.path().join("snapshots"), interval: 1, keep: 1, chunk_bytes: 4 << 20 };
    let started = Instant::now();
    let info = config.create(&chain.store, chain.height)?;
    let written = started.elapsed();
    let app_hash = chain.store.app_hash(chain.height)?.context("no app hash")?.to_vec();
    let started = Instant::now();
    let mut restore = Restore::offer(&info, FORMAT, app_hash.clone())?;
    for index in 0..info.chunks {
        anyhow::ensure!(restore.apply(index, &config.chunk(info.height, index)?) == ChunkVerdict::Accepted);
    }
    let fresh = Store::open(&chain.dir.path().join("restored.redb"))?;
    let pending = fresh.prepare_restore(&restore.into_changes(), info.height)?;
    anyhow::ensure!(pending.root.to_vec() == app_hash, "the restored root differs from the app hash");
    fresh.commit_restored(&pending, CHAIN_ID)?;
    Ok((written, started.elapsed(), info.chunks))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn parts(times: &BlockTimes) -> String {
    format!("FinalizeBlock {:.1} + Commit {:.1}", ms(times.finalize), ms(times.commit))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Runs and prints the growth benchmark with `accounts` accounts in the large state and
/// `blocks` blocks in the disk measurement.
///
/// # Errors
/// When a block fails or the store cannot be written.
pub fn run_and_print(accounts: usize, blocks: usize) -> anyhow::Result<()> {
    println!("\n== growth: a block of {SENDERS} transfers as the state grows (in process, median of {ROUNDS}) ==");
    let small = Size { accounts: 1_000, deposits: 0, withdrawals: false };
    let large = Size { accounts, deposits: 100_000, withdrawals: true };
    let (small_cost, small_seeded) = block_cost(small)?;
    println!(
        "  {:>9} accounts                          FinalizeBlock + Commit {:>8.1} ms  ({}; baseline; seeded in {:.1} s)",
        small.accounts,
        ms(small_cost.total()),
        parts(&small_cost),
        small_seeded.as_secs_f64()
    );
    let (large_cost, large_seeded) = block_cost(large)?;
    println!(
        "  {:>9} accounts, {} deposits, {} queued  FinalizeBlock + Commit {:>8.1} ms  ({}) ratio {:.2}  (goal <= 1.5; seeded in {:.1} s)",
        large.accounts,
        large.deposits,
        SENDERS * WITHDRAWALS_PER_SENDER,
        ms(large_cost.total()),
        parts(&large_cost),
        large_cost.total().as_secs_f64() / small_cost.total().as_secs_f64(),
        large_seeded.as_secs_f64()
    );

    println!("\n== growth: state-sync snapshot and restore at {accounts} accounts (in process) ==");
    let chain = Chain::start(SENDERS, large, 0)?;
    let (written, restored, chunks) = state_sync(&chain)?;
    println!(
        "  snapshot {:.1} s ({chunks} chunks of <= 4 MiB), restore (chunks checked, tree rebuilt, root compared) {:.1} s: {:.1} s of the 60 s goal for a join",
        written.as_secs_f64(),
        restored.as_secs_f64(),
        (written + restored).as_secs_f64()
    );
    drop(chain);

    println!("\n== growth: store file size per 1,000 blocks ({DISK_SENDERS} transfers each, {blocks} blocks) ==");
    let archive = disk_growth(blocks, 0)?;
    let pruned = disk_growth(blocks, DISK_RETAIN)?;
    for (index, (archive, pruned)) in archive.iter().zip(&pruned).enumerate() {
        println!(
            "  after {:>6} blocks: keeping all {:>8.1} MiB   keeping {DISK_RETAIN} {:>8.1} MiB",
            (index + 1) * 1_000,
            mib(*archive),
            mib(*pruned)
        );
    }
    let growth = |sizes: &[u64]| -> f64 {
        match (sizes.get(1), sizes.last()) {
            (Some(first), Some(last)) => {
                mib(last.saturating_sub(*first)) / (sizes.len().saturating_sub(2).max(1)) as f64
            }
            _ => f64::NAN,
        }
    };
    println!(
        "  growth per 1,000 blocks after the first 2,000: keeping all {:.2} MiB, pruning {:.2} MiB (goal: flat)",
        growth(&archive),
        growth(&pruned)
    );
    Ok(())
}
