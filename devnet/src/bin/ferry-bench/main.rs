//! `ferry-bench` (`make bench`): Ferry's throughput next to baselines measured in the same run.
//!
//! 1. In process: FinalizeBlock on blocks of signed transfers (execution + Merkle hashing, then
//!    Commit), next to secp256k1 verification of the same transactions on the same cores:
//!    FinalizeBlock on one thread against one-thread verification, and both on every core.
//! 2. On loopback: committed tx/s of a 4-validator Ferry network under signed transfers, next to
//!    a 4-validator network of CometBFT's built-in `kvstore` (in process and over the ABCI
//!    socket) under as many transactions of the same size. The load paces itself (at most half
//!    the mempool capacity in flight, a backoff on a full mempool), and a run whose committed
//!    count differs from its submitted count is refused.
//! 3. Deposits: latency from parent confirmation to mint; relayer catch-up over blocks carrying
//!    peg deposits against raw block reads of the same blocks, on a warm node, alternated.
//! 4. Withdrawals: BLS share verification and combination at T = 3, 16, 64 against one plain
//!    BLS verification; the gas of `FerryVault.release` for federations of 4, 16 and 64 members
//!    against the 4-member figure; withdrawal latency from committed burn to broadcast release
//!    (Bitcoin and Ethereum, p50 and p95 — the maximum, named as such, below 20 samples), next
//!    to the sidechain's floor of `batch_interval` blocks.
//! 5. Bitcoin fees on a moving market: parent blocks from a market step to the release's block
//!    against one bump period, and the overpay ratio (paid rate / market rate).
//! 6. State that scales: blocks that mint deposits, queue withdrawals and form a Bitcoin batch,
//!    at 10 and at 10,000 reserve UTXOs and queued withdrawals (in process).
//! 7. Reserves snapshots: a relayer's Bitcoin snapshot over its peg index at 10,000 peg outputs
//!    against 10 (PostgreSQL).
//! 8. Duties under a paid-transfer flood: blocks from a member's duty broadcast to its block, with
//!    an idle mempool and under a flood of signed transfers (4 validators on loopback).
//! 9. Growth: a block of 2,000 transfers at 1,000,000 accounts against 1,000; state-sync
//!    snapshot and restore at the large state; store size per 1,000 blocks with and without
//!    pruning (in process, [`growth`]); a fifth node joining four validators by state sync at
//!    1,000,000 accounts ([`join`]).
//! 10. Verified reads: the records one batch is signed on, proven (Merkle proofs against
//!     light-client-verified headers) against read from the JSON query paths ([`verified`]).
//! 11. Bitcoin emergency disbursal: the exit tree's size, planning time and one signer's signing
//!     time at 10, 1,000 and 10,000 holders, against one release batch of the same inputs
//!     ([`exit_disbursal`]).

mod bls;
mod deposits;
mod dkg;
mod duty_flood;
mod exit_disbursal;
mod exit_root;
mod fee_market;
mod growth;
mod join;
mod profile;
mod release_gas;
mod reserves_scale;
mod reserves_snapshot;
mod rotation;
mod samples;
mod verified;
mod withdrawal_latency;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use ferry_chain::metrics::Metrics;
use ferry_chain::{Node, Store};
use ferry_devnet::load::{self, LoadReport};
use ferry_devnet::{AppKind, Network, NetworkSpec, Tools, accounts};
use ferry_types::DecodedTx;

/// Ferry benchmarks.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Accounts sending in the network benchmark (one lane each).
    #[arg(long, default_value_t = 400)]
    senders: usize,
    /// Transfers per sender in the network benchmark: 400 x 325 = 130,000, so that even
    /// in-process kvstore (the fastest baseline, about 4,300 tx/s here) runs for 30 s or more
    /// on the same committed work as Ferry.
    #[arg(long, default_value_t = 325)]
    per_sender: usize,
    /// Transfers per sender in the duties-under-a-flood benchmark.
    #[arg(long, default_value_t = 25)]
    flood_per_sender: usize,
    /// Transfers per block in the in-process benchmark.
    #[arg(long, default_value_t = 2000)]
    block_txs: usize,
    /// Blocks in the in-process benchmark.
    #[arg(long, default_value_t = 5)]
    blocks: usize,
    /// Rounds of the in-process benchmark on each pool (the median rate of each is printed).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Skip the network and deposit benchmarks.
    #[arg(long)]
    in_process_only: bool,
    /// Run only the network benchmark.
    #[arg(long)]
    network_only: bool,
    /// Bitcoin deposits timed in the deposit-latency benchmark.
    #[arg(long, default_value_t = 20)]
    deposits: usize,
    /// Run only the deposit benchmarks.
    #[arg(long)]
    deposits_only: bool,
    /// Run only the withdrawal benchmarks.
    #[arg(long)]
    withdrawals_only: bool,
    /// Bitcoin and Ethereum withdrawals (each) timed in the withdrawal-latency benchmark.
    #[arg(long, default_value_t = 20)]
    withdrawals: usize,
    /// Regtest blocks in the relayer catch-up benchmark (each carrying one peg payment).
    #[arg(long, default_value_t = 300)]
    backlog: u32,
    /// Peg deposits (outputs of the one peg payment) in each block of the catch-up backlog.
    #[arg(long, default_value_t = 10)]
    backlog_deposits: usize,
    /// Registered deposit addresses the relayer watches during the catch-up benchmark.
    #[arg(long, default_value_t = 10_000)]
    deposit_addresses: u64,
    /// Reserve UTXOs and queued withdrawals of the large run of the state-scaling benchmark.
    #[arg(long, default_value_t = 10_000)]
    scale_entries: usize,
    /// Run only the state-scaling benchmark.
    #[arg(long)]
    scale_only: bool,
    /// Run only the fee-market benchmark.
    #[arg(long)]
    fees_only: bool,
    /// Run only the reserves-snapshot benchmark.
    #[arg(long)]
    snapshot_only: bool,
    /// Run only the duties-under-a-flood benchmark.
    #[arg(long)]
    duties_only: bool,
    /// Run only the key generation and heartbeat benchmark.
    #[arg(long)]
    dkg_only: bool,
    /// Run only the federation rotation benchmark (key generation and hand-over on the system).
    #[arg(long)]
    rotation_only: bool,
    /// Accounts in the large state of the growth benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    growth_accounts: usize,
    /// Blocks in the growth benchmark's disk measurement.
    #[arg(long, default_value_t = 10_000)]
    growth_blocks: usize,
    /// Run only the growth benchmark.
    #[arg(long)]
    growth_only: bool,
    /// Accounts beyond the devnet's in the state-sync join benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    join_accounts: usize,
    /// Run only the state-sync join benchmark.
    #[arg(long)]
    join_only: bool,
    /// Run only the verified-reads benchmark (the reads, then the withdrawal and signing latency).
    #[arg(long)]
    verified_only: bool,
    /// Run only the Bitcoin emergency disbursal benchmark.
    #[arg(long)]
    exit_only: bool,
}

const IN_PROCESS_CHAIN_ID: &str = "ferry-bench";

/// Rates of the in-process benchmark on a given number of threads.
struct InProcessRates {
    /// secp256k1 verifications per second of the blocks' transactions (the baseline).
    verify: f64,
    /// Transfers per second through FinalizeBlock.
    finalize: f64,
    /// Transfers per second through FinalizeBlock and Commit.
    with_commit: f64,
}

/// The median of `rates` (the upper one of an even count); NaN when empty.
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The in-process benchmark on a rayon pool of `threads` threads, `args.rounds` times: each
/// round verifies the blocks' signatures alone, then runs FinalizeBlock (+ Commit) of the same
/// blocks on a fresh store. Each rate is the median over the rounds.
fn in_process(args: &Args, threads: usize) -> anyhow::Result<InProcessRates> {
    use rayon::prelude::*;
    let senders = args.block_txs;
    // Each block holds one transfer from every sender, sequences advancing block by block.
    let lanes = load::ferry_transfers(IN_PROCESS_CHAIN_ID, senders, args.blocks)?.lanes;
    let blocks: Vec<Vec<Vec<u8>>> =
        (0..args.blocks).map(|block| lanes.iter().filter_map(|lane| lane.get(block).cloned()).collect()).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let decoded = blocks.iter().flatten().map(|tx| DecodedTx::decode(tx, 16 * 1024)).collect::<Result<Vec<_>, _>>()?;

    let (mut verify, mut finalize, mut with_commit) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.rounds.max(1) {
        // Baseline: secp256k1 verifications of the same transactions on the same threads.
        let started = Instant::now();
        pool.install(|| {
            decoded.par_iter().enumerate().try_for_each(|(index, tx)| {
                tx.verify_signature(IN_PROCESS_CHAIN_ID, u64::try_from(index % senders)?)?;
                anyhow::Ok(())
            })
        })?;
        verify.push(decoded.len() as f64 / started.elapsed().as_secs_f64());
        let (finalize_rate, with_commit_rate) = pool.install(|| finalize_blocks(&blocks, senders))?;
        finalize.push(finalize_rate);
        with_commit.push(with_commit_rate);
    }
    Ok(InProcessRates { verify: median(verify), finalize: median(finalize), with_commit: median(with_commit) })
}

/// FinalizeBlock and Commit of `blocks` on a fresh store whose `senders` users the devnet
/// federation opened first (untimed blocks of attested deposits, [`ferry_devnet::funding`]), on
/// the current rayon pool; returns transfers per second without and with Commit.
fn finalize_blocks(blocks: &[Vec<Vec<u8>>], senders: usize) -> anyhow::Result<(f64, f64)> {
    const CHAIN_ID: &str = IN_PROCESS_CHAIN_ID;
    let transfers: usize = blocks.iter().map(Vec::len).sum();
    let dir = tempfile::tempdir()?;
    let node = Node::new(Store::open(&dir.path().join("state.redb"))?, Metrics::new()?)?;
    let genesis = accounts::genesis(senders, accounts::FEDERATION_MEMBERS)?;
    node.init_chain(ferry_chain::in_process::init_chain(CHAIN_ID, serde_json::to_vec(&genesis)?)?)?;
    let openings = ferry_devnet::funding::offline_opening_blocks(&genesis, CHAIN_ID, senders, senders)?;
    let mut height = 0;
    for txs in &openings {
        height += 1;
        let response = node.finalize_block(ferry_chain::in_process::finalize_block(height, txs)?)?;
        node.commit()?;
        if let Some(failed) = response.tx_results.iter().find(|result| result.code.is_err()) {
            anyhow::bail!("an opening attestation failed: {}", failed.log);
        }
    }
    let mut finalize_seconds = 0.0;
    let mut commit_seconds = 0.0;
    let mut accepted = 0usize;
    for txs in blocks {
        height += 1;
        let request = ferry_chain::in_process::finalize_block(height, txs)?;
        let started = Instant::now();
        let response = node.finalize_block(request)?;
        finalize_seconds += started.elapsed().as_secs_f64();
        let started = Instant::now();
        node.commit()?;
        commit_seconds += started.elapsed().as_secs_f64();
        accepted += response.tx_results.iter().filter(|r| r.code.is_ok()).count();
    }
    anyhow::ensure!(accepted == transfers, "only {accepted} of {transfers} transfers succeeded");
    Ok((accepted as f64 / finalize_seconds, accepted as f64 / (finalize_seconds + commit_seconds)))
}

/// Prints one in-process run: FinalizeBlock against verification on the same threads.
fn print_in_process(label: &str, rates: &InProcessRates) {
    println!("{label}");
    println!("  secp256k1 verify                {:>10.0} /s    (baseline)", rates.verify);
    println!(
        "  FinalizeBlock                   {:>10.0} tx/s  ratio {:.2}  (goal >= 0.70)",
        rates.finalize,
        rates.finalize / rates.verify
    );
    println!(
        "  FinalizeBlock + Commit (fsync)  {:>10.0} tx/s  ratio {:.2}",
        rates.with_commit,
        rates.with_commit / rates.verify
    );
}

/// Which network [`network_run`] measures: an application, and for Ferry its ABCI transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measured {
    /// Ferry, ABCI over its Unix socket (what the devnet and the operator guide run).
    Ferry,
    /// Ferry, ABCI over TCP on loopback (the transport before issue 15's finding).
    FerryTcp,
    /// CometBFT's kvstore in process.
    Kvstore,
    /// CometBFT's kvstore over the ABCI socket.
    KvstoreSocket,
}

async fn network_run(measured: Measured, args: &Args, tx_size: Option<usize>) -> anyhow::Result<(LoadReport, usize)> {
    let (name, app) = match measured {
        Measured::Ferry => ("bench-ferry", AppKind::Ferry),
        Measured::FerryTcp => ("bench-ferry-tcp", AppKind::Ferry),
        Measured::Kvstore => ("bench-kvstore", AppKind::Kvstore),
        Measured::KvstoreSocket => ("bench-kvstore-socket", AppKind::KvstoreSocket),
    };
    let mut spec = NetworkSpec::isolated(name, 4, accounts::genesis(args.senders, 4)?)?;
    spec.app = app;
    spec.abci_over_tcp = measured == Measured::FerryTcp;
    spec.timeout_commit = Duration::from_millis(500);
    let chain_id = spec.chain_id.clone();
    let mut network = Network::create(spec, Tools::locate()?)?;
    network.start_all()?;
    network.wait_for_height(2, Duration::from_secs(60)).await?;
    if app == AppKind::Ferry {
        ferry_devnet::funding::attest_openings(&network, args.senders).await?;
    }
    let load = match (app, tx_size) {
        (AppKind::Ferry, _) => load::ferry_transfers(&chain_id, args.senders, args.per_sender)?,
        (AppKind::Kvstore | AppKind::KvstoreSocket, size) => {
            load::kvstore_writes(args.senders, args.per_sender, size.context("kvstore needs a size")?)
        }
    };
    let size = load.tx_size();
    let urls: Vec<String> = network.validators().iter().map(|v| v.rpc_url()).collect();
    // Half the mempool capacity in flight: blocks stay full, mempools never are.
    let report = {
        let _profiled = profile::window(&format!("network-{}", name.trim_start_matches("bench-")));
        load::run(&urls, load, network.spec().mempool_size / 2).await?
    };
    print_resident(&format!("the 4 validators after the load ({name})"), &network.pids());
    drop(network);
    Ok((report, size))
}

/// Prints the resident memory of `pids` (with everything they forked) and its goal.
fn print_resident(what: &str, pids: &[(u32, &str)]) {
    let roots: Vec<u32> = pids.iter().map(|(pid, _)| *pid).collect();
    let resident = ferry_devnet::memory::of_trees(&roots);
    println!(
        "resident memory of {what}: {:.0} MiB in {} processes (goal for the whole devnet <= 4096 MiB)",
        resident.bytes as f64 / (1024.0 * 1024.0),
        resident.processes
    );
}

fn print_report(label: &str, report: &LoadReport, size: usize) {
    println!(
        "{label:<15} committed {:>8.1} tx/s BFT time, {:>8.1} tx/s wall clock  ({} committed = {} submitted; {size}-byte txs; blocks {}..{} = {} block(s) over {:.2} s BFT time, {:.2} s wall clock; at most {} in flight, {} pauses for a full mempool)",
        report.tx_per_second(),
        report.tx_per_wall_second(),
        report.committed,
        report.submitted,
        report.blocks.0,
        report.blocks.1,
        report.block_count(),
        report.seconds,
        report.wall_seconds,
        report.window,
        report.mempool_full_retries
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.deposits_only {
        deposits::latency(args.deposits).await?;
        return deposits::catch_up(args.backlog, args.backlog_deposits, args.deposit_addresses).await;
    }
    if args.withdrawals_only {
        return withdrawals(args.withdrawals).await;
    }
    if args.scale_only {
        return reserves_scale::run_and_print(args.scale_entries);
    }
    if args.fees_only {
        return fee_market::run(&fee_market::SCHEDULE).await;
    }
    if args.snapshot_only {
        return reserves_snapshot::run().await;
    }
    if args.duties_only {
        return duty_flood::run(args.senders, args.flood_per_sender).await;
    }
    if args.dkg_only {
        return dkg::run();
    }
    if args.rotation_only {
        return rotation::run().await;
    }
    if args.growth_only {
        return growth::run_and_print(args.growth_accounts, args.growth_blocks);
    }
    if args.join_only {
        return join::run_and_print(args.join_accounts).await;
    }
    if args.verified_only {
        // Issue 15's figures: the reads alone, then the signing latency on the whole system.
        verified::run().await?;
        return withdrawal_latency::latency(args.withdrawals).await;
    }
    if args.exit_only {
        exit_root::run();
        return exit_disbursal::run();
    }
    if !args.network_only {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        println!(
            "== in-process FinalizeBlock ({} blocks x {} signed transfers; {cores} cores; median of {} rounds) ==",
            args.blocks,
            args.block_txs,
            args.rounds.max(1)
        );
        print_in_process("1 thread (FinalizeBlock and verification alike):", &in_process(&args, 1)?);
        print_in_process(
            &format!("all {cores} cores (FinalizeBlock and verification alike):"),
            &in_process(&args, cores)?,
        );
        reserves_scale::run_and_print(args.scale_entries)?;
        growth::run_and_print(args.growth_accounts, args.growth_blocks)?;
        join::run_and_print(args.join_accounts).await?;
        reserves_snapshot::run().await?;
        dkg::run()?;
        exit_root::run();
        exit_disbursal::run()?;
        if args.in_process_only {
            return Ok(());
        }
    }
    println!("\n== 4 validators on loopback, {} senders x {} transfers ==", args.senders, args.per_sender);
    let (ferry, size) = network_run(Measured::Ferry, &args, None).await?;
    print_report("ferry", &ferry, size);
    let (ferry_tcp, tcp_size) = network_run(Measured::FerryTcp, &args, None).await?;
    print_report("ferry/tcp", &ferry_tcp, tcp_size);
    let (kvstore, kv_size) = network_run(Measured::Kvstore, &args, Some(size)).await?;
    print_report("kvstore", &kvstore, kv_size);
    let (socket, socket_size) = network_run(Measured::KvstoreSocket, &args, Some(size)).await?;
    print_report("kvstore/socket", &socket, socket_size);
    println!(
        "ratio ferry unix socket / ferry tcp  {:.2} BFT time  (ABCI transport; reported)",
        ferry.tx_per_second() / ferry_tcp.tx_per_second().max(f64::MIN_POSITIVE)
    );
    // `load::run` refuses a run whose committed count differs from its submitted count; the
    // loads are built alike, so every figure stands on the same committed work.
    anyhow::ensure!(
        kvstore.committed == ferry.committed && socket.committed == ferry.committed,
        "unequal committed work: ferry {}, kvstore {}, kvstore/socket {}",
        ferry.committed,
        kvstore.committed,
        socket.committed
    );
    let ratio = |baseline: &LoadReport| ferry.tx_per_second() / baseline.tx_per_second().max(f64::MIN_POSITIVE);
    let wall_ratio =
        |baseline: &LoadReport| ferry.tx_per_wall_second() / baseline.tx_per_wall_second().max(f64::MIN_POSITIVE);
    println!(
        "ratio ferry/kvstore (in process)     {:.2} BFT time, {:.2} wall clock  (reported; no goal)",
        ratio(&kvstore),
        wall_ratio(&kvstore)
    );
    println!(
        "ratio ferry/kvstore (ABCI socket)    {:.2} BFT time, {:.2} wall clock  (goal >= 0.90)",
        ratio(&socket),
        wall_ratio(&socket)
    );
    duty_flood::run(args.senders, args.flood_per_sender).await?;
    verified::run().await?;
    if args.network_only {
        return Ok(());
    }

    println!("\n== deposits ==");
    deposits::latency(args.deposits).await?;
    deposits::catch_up(args.backlog, args.backlog_deposits, args.deposit_addresses).await?;

    withdrawals(args.withdrawals).await?;
    rotation::run().await
}

async fn withdrawals(count: usize) -> anyhow::Result<()> {
    println!("\n== withdrawals ==");
    bls::run()?;
    release_gas::run().await?;
    withdrawal_latency::latency(count).await?;
    fee_market::run(&fee_market::SCHEDULE).await
}
