//! State that scales: what a block that mints Bitcoin deposits, one that queues withdrawals, and
//! one that forms a Bitcoin batch (coin selection over the free reserve UTXOs, the queue walked
//! from its head) cost with 10 reserve UTXOs and 10 queued withdrawals, against the same blocks
//! with 10,000 of each — in process (FinalizeBlock + Commit on the node's real store), the work
//! per measured block identical in both runs. The goal is flat: the large run within 1.5× of
//! the small one.
//!
//! Both chains start from the same genesis of [`ACCOUNTS`] accounts, more keys than the
//! large run adds, so the Merkle tree and the database have about the same depth in both: what
//! differs is the size of the collections alone. (Any Merkle store costs more per write as the
//! whole state grows — logarithmically; that is a property of the state's total size, which the
//! chain-growth issue measures, not of these collections.)

use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_chain::metrics::Metrics;
use ferry_chain::{Node, Store};
use ferry_client::wallet::Wallet;
use ferry_devnet::accounts::{self, member_key, user_key};
use ferry_devnet::btcd::RegtestWallet;
use ferry_types::event as ev;
use ferry_types::msg::{Msg, MsgAttestDeposit, MsgWithdraw};
use ferry_types::{Amount, Coin, Denom, DepositFacts, ParentChain};

const CHAIN_ID: &str = "ferry-bench-scale";
/// Accounts in both runs' genesis (see the module docs); the user is funded by the deposits.
const ACCOUNTS: usize = 60_000;
/// Blocks between batching heights: the setup of the large run fits before the first.
const BATCH_INTERVAL: u64 = 100;
/// Items per batch (small, so the small run's queue can fill a batch as the large run's does).
const BATCH_ITEMS: u32 = 8;
/// Deposits minted, and withdrawals queued, by each measured block.
const PER_BLOCK: usize = 8;
/// Measured blocks of each kind per run (the median is printed).
const ROUNDS: usize = 7;
/// Each deposit, in satoshi: a batch of [`BATCH_ITEMS`] withdrawals needs one input.
const DEPOSIT_SAT: u128 = 1_000_000;
const WITHDRAW_SAT: u128 = 100_000;
const WITHDRAW_BUDGET: u128 = 20_000;
/// Attestations per transaction, as the relayer batches them.
const ATTESTATIONS_PER_TX: usize = 32;

/// Median seconds of each measured block kind.
struct Costs {
    mint: f64,
    withdraw: f64,
    batch: f64,
}

/// A chain on a fresh store, driven block by block, with the devnet federation's 3-of-4 quorum
/// attesting and one user withdrawing.
struct ScaleChain {
    node: Node,
    height: u64,
    members: Vec<Wallet>,
    user: Wallet,
    next_deposit: u64,
    destination: String,
    _dir: tempfile::TempDir,
}

impl ScaleChain {
    fn start() -> anyhow::Result<ScaleChain> {
        let dir = tempfile::tempdir()?;
        let node = Node::new(Store::open(&dir.path().join("state.redb"))?, Metrics::new()?)?;
        let mut genesis = accounts::genesis(ACCOUNTS, 4)?;
        let rules = &mut genesis.params.withdrawals;
        rules.batch_interval = BATCH_INTERVAL;
        rules.max_batch_items = BATCH_ITEMS;
        rules.bitcoin_max_reserve_utxos = u32::MAX;
        accounts::lift_withdrawal_limits(rules);
        node.init_chain(ferry_chain::in_process::init_chain(CHAIN_ID, serde_json::to_vec(&genesis)?)?)?;
        // Genesis numbers the users from 0 and the members after them.
        let members = (0..3)
            .map(|index| Ok(Wallet::offline(member_key(index)?, CHAIN_ID, u64::try_from(ACCOUNTS + index)?, 0)))
            .collect::<anyhow::Result<_>>()?;
        Ok(ScaleChain {
            node,
            height: 0,
            members,
            user: Wallet::offline(user_key(0)?, CHAIN_ID, 0, 0),
            next_deposit: 0,
            destination: RegtestWallet::from_seed([0xb5; 32])?.address().to_string(),
            _dir: dir,
        })
    }

    /// Runs the next block with `txs` (all must succeed); returns its FinalizeBlock + Commit
    /// time and the event kinds it emitted.
    fn block(&mut self, txs: &[Vec<u8>]) -> anyhow::Result<(Duration, Vec<String>)> {
        self.height += 1;
        let request = ferry_chain::in_process::finalize_block(self.height, txs)?;
        let started = Instant::now();
        let response = self.node.finalize_block(request)?;
        self.node.commit()?;
        let took = started.elapsed();

        if let Some(failed) = response.tx_results.iter().find(|result| result.code.is_err()) {
            anyhow::bail!("a transaction at height {} failed: {}", self.height, failed.log);
        }
        let tx_events = response.tx_results.iter().flat_map(|result| &result.events);
        let kinds = response.events.iter().chain(tx_events).map(|event| event.kind.clone()).collect();
        Ok((took, kinds))
    }

    /// The attestation transactions (3 members) minting the next `count` deposits.
    fn deposits(&mut self, count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
        let recipient = self.user.address();
        let facts: Vec<DepositFacts> = (0..count)
            .map(|_| {
                self.next_deposit += 1;
                let tx_id = format!("{:064x}", self.next_deposit);
                DepositFacts {
                    chain: ParentChain::Bitcoin,
                    tx_id,
                    index: 0,
                    asset: Denom::sat(),
                    amount: Amount::new(DEPOSIT_SAT),
                    recipient,
                    deposit_address: false,
                    unattributed: None,
                    peg_epoch: None,
                }
            })
            .collect();
        let mut txs = Vec::new();
        for member in &mut self.members {
            let attester = member.address();
            for chunk in facts.chunks(ATTESTATIONS_PER_TX) {
                let msgs: Vec<Msg> = chunk
                    .iter()
                    .map(|facts| Msg::AttestDeposit(MsgAttestDeposit { attester, facts: facts.clone() }))
                    .collect();
                txs.push(member.sign_fee_exempt(&msgs)?);
            }
        }
        Ok(txs)
    }

    /// `count` withdrawal transactions of the user.
    fn withdrawals(&mut self, count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
        let fee = Coin::new(100, Denom::sat());
        (0..count)
            .map(|_| {
                let msg = Msg::Withdraw(MsgWithdraw {
                    sender: self.user.address(),
                    asset: Denom::sat(),
                    amount: Amount::new(WITHDRAW_SAT),
                    destination: self.destination.clone(),
                    max_fee: Amount::new(WITHDRAW_BUDGET),
                });
                Ok(self.user.sign(&fee, &[msg])?)
            })
            .collect()
    }

    /// Empty blocks up to the one before the next batching height.
    fn skip_to_batching_height(&mut self) -> anyhow::Result<()> {
        while !(self.height + 1).is_multiple_of(BATCH_INTERVAL) {
            self.block(&[])?;
        }
        Ok(())
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Fills `chain` with `entries` transactions made by `make`, `chunk` per block (untimed setup).
fn fill(
    chain: &mut ScaleChain,
    entries: usize,
    chunk: usize,
    make: fn(&mut ScaleChain, usize) -> anyhow::Result<Vec<Vec<u8>>>,
) -> anyhow::Result<()> {
    let mut left = entries;
    while left > 0 {
        let count = left.min(chunk);
        let txs = make(chain, count)?;
        chain.block(&txs)?;
        left -= count;
    }
    Ok(())
}

/// [`ROUNDS`] timed blocks of [`PER_BLOCK`] transactions made by `make`, each of which must emit
/// `PER_BLOCK` events of `kind`; returns the seconds each block took.
fn timed_rounds(
    chain: &mut ScaleChain,
    make: fn(&mut ScaleChain, usize) -> anyhow::Result<Vec<Vec<u8>>>,
    kind: &str,
) -> anyhow::Result<Vec<f64>> {
    let mut seconds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let txs = make(chain, PER_BLOCK)?;
        let (took, kinds) = chain.block(&txs)?;
        let done = kinds.iter().filter(|emitted| *emitted == kind).count();
        anyhow::ensure!(done == PER_BLOCK, "a block emitted {done} `{kind}` events, not {PER_BLOCK}");
        seconds.push(took.as_secs_f64());
    }
    Ok(seconds)
}

/// One run with `entries` reserve UTXOs and `entries` queued withdrawals before measuring.
fn run(entries: usize) -> anyhow::Result<Costs> {
    let mut chain = ScaleChain::start()?;
    // Setup: `entries` deposits minted, a few hundred per block.
    fill(&mut chain, entries, 640, ScaleChain::deposits)?;
    let mint = timed_rounds(&mut chain, ScaleChain::deposits, ev::DEPOSIT_MINTED)?;
    fill(&mut chain, entries, 1_000, ScaleChain::withdrawals)?;
    anyhow::ensure!(chain.height < BATCH_INTERVAL, "the setup ran into a batching height ({})", chain.height);
    let withdraw = timed_rounds(&mut chain, ScaleChain::withdrawals, ev::WITHDRAWAL_QUEUED)?;
    let mut batch = Vec::new();
    for _ in 0..ROUNDS {
        chain.skip_to_batching_height()?;
        let (took, kinds) = chain.block(&[])?;
        anyhow::ensure!(
            kinds.iter().any(|kind| kind == ev::BATCH_CREATED),
            "no batch formed at height {}: {kinds:?}",
            chain.height
        );
        batch.push(took.as_secs_f64());
    }
    Ok(Costs { mint: median(mint), withdraw: median(withdraw), batch: median(batch) })
}

/// Prints each block kind's cost at 10 and at `large` entries, and the ratio.
///
/// # Errors
/// When a block fails or does not do its work.
pub fn run_and_print(large: usize) -> anyhow::Result<()> {
    const SMALL: usize = 10;
    println!(
        "\n== state that scales: blocks at {SMALL} vs {large} reserve UTXOs and queued withdrawals (in process, FinalizeBlock + Commit, median of {ROUNDS}) =="
    );
    let small_costs = run(SMALL).context("the small run")?;
    let large_costs = run(large).context("the large run")?;
    for (label, small, big) in [
        (format!("mint {PER_BLOCK} Bitcoin deposits"), small_costs.mint, large_costs.mint),
        (format!("queue {PER_BLOCK} withdrawals"), small_costs.withdraw, large_costs.withdraw),
        (format!("form a {BATCH_ITEMS}-item Bitcoin batch"), small_costs.batch, large_costs.batch),
    ] {
        println!(
            "  {label:<32} {:>8.2} ms at {SMALL:>6}  {:>8.2} ms at {large:>6}  ratio {:.2}  (goal <= 1.50)",
            small * 1e3,
            big * 1e3,
            big / small.max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}
