//! Bitcoin releases on a moving fee market, on the whole system (4 validators, relayers, signers)
//! and a real two-node market: the relay btcd the system talks to, and a miner btcd that neither
//! accepts nor mines a transaction below its `--minrelaytxfee` (the market rate). The market
//! steps through a schedule; at each step one withdrawal is made and parent blocks are mined one
//! at a time until its release is mined. Blocks are paced as mainnet's would be next to the
//! sidechain: the next block is mined only once the newest version is signed and delivered (and,
//! when it clears the market, the miner holds it) and the chain's parent clock has the tip.
//!
//! Printed: parent blocks from the market step to the block holding the release (p50 and the
//! tail), next to the controller's floor of one bump period (`bitcoin_bump_after_blocks`) — a
//! release below the market waits at least that long for its first replacement; and the rate the
//! mined version paid (its fee over the signed-size bound, so at most one byte per signature
//! under the real rate) against the market's, the overpay ratio.

use std::time::Duration;

use anyhow::Context;
use bitcoin::Txid;
use ferry_devnet::accounts::{self, user_key};
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_devnet::system::System;
use ferry_types::Denom;
use ferry_types::peg::Peg;
use ferry_types::query::{BITCOIN_FEES_PATH, BatchStatus, BatchView, BitcoinFeesView, WithdrawalId, WithdrawalStatus};

use crate::samples::Samples;

/// The market's rate at each step, sat/vB (the chain starts at 10): a spike that stays, a fall,
/// a smaller rise.
pub const SCHEDULE: [u64; 12] = [20, 20, 20, 20, 5, 5, 5, 5, 12, 12, 12, 12];

const BTC: u64 = 100_000_000;
const WITHDRAW_SAT: u128 = 100_000;
/// A budget that never binds: the bench measures the controller, not budgets.
const BUDGET: u128 = 60_000;
const WAIT: Duration = Duration::from_secs(120);
/// How long the bench waits for btcd to pass a transaction to its peer (it trickles
/// announcements every ~10 s).
const RELAY_WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);
/// Parent blocks one step may take before the bench gives up on it.
const MAX_BLOCKS_PER_STEP: usize = 200;

async fn fees(system: &System) -> anyhow::Result<BitcoinFeesView> {
    system.client(0)?.query(BITCOIN_FEES_PATH, None).await?.context("no /bitcoin/fees")
}

async fn batch_of(system: &System, id: WithdrawalId) -> anyhow::Result<Option<BatchView>> {
    let Some(batch) = system.withdrawal(id).await?.withdrawal.batch else { return Ok(None) };
    Ok(system.client(0)?.query(&format!("/batch/{batch}"), None).await?)
}

/// Polls `check` until it gives a value, for at most `within`.
async fn poll<T, F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the chain's parent clock has the relay node's tip.
async fn clock_at_tip(system: &System) -> anyhow::Result<()> {
    let tip = system.parents.btcd.rpc().get_block_count().await?;
    poll("the parent clock has the tip", WAIT, || async {
        Ok((fees(system).await?.parent_height >= tip).then_some(()))
    })
    .await
}

/// Waits until `txid` is in `node`'s mempool or chain, for at most `within`; whether it is.
async fn holds(node: &Btcd, txid: &Txid, within: Duration) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if node.rpc().get_transaction_status(txid).await?.is_some() {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What one step measured.
struct Step {
    blocks: u64,
    version: u32,
    paid_sat_per_vb: f64,
}

/// Mines, block by block at the pace described in the module docs, until a version of the
/// release paying `id` is in a block; returns the height of that block and the version's
/// paid rate.
async fn mine_until_mined(
    system: &System,
    miner: &Btcd,
    peg: &Peg,
    id: WithdrawalId,
    market: u64,
) -> anyhow::Result<(u64, u32, f64)> {
    let relay = &system.parents.btcd;
    let mut last_version = None;
    for _ in 0..MAX_BLOCKS_PER_STEP {
        let view = poll("the release is signed", WAIT, || async {
            Ok(batch_of(system, id).await?.filter(|view| view.batch.status != BatchStatus::Signing))
        })
        .await?;
        for (version, txid, plan) in view.batch.bitcoin_versions() {
            // The destination's output (vout 0, never spent here) says whether, and how deep, a
            // version is mined; the node keeps no index of mined transactions.
            let paid = relay.rpc().get_tx_out(&txid.parse()?, 0, false).await?;
            if let Some(confirmations) = paid.map(|out| out.confirmations).filter(|c| *c > 0) {
                let height = relay.rpc().get_block_count().await? + 1 - confirmations;
                let paid = plan.fee().get() as f64 / plan.max_vsize(peg) as f64;
                return Ok((height, version, paid));
            }
        }
        let signed = view.batch.signed_bitcoin_version().context("a signed batch has a signed version")?;
        if last_version != Some(signed.version) {
            eprintln!("    version {} signed at {} (market {market} sat/vB)", signed.version, signed.fee_rate);
            last_version = Some(signed.version);
        }
        let txid: Txid = signed.txid.parse()?;
        // Delivered to the relay node; passed on to the miner if it clears the market (btcd
        // trickles announcements, an age at regtest's pace and nothing at mainnet's).
        holds(relay, &txid, RELAY_WAIT).await?;
        if signed.fee_rate.sat_per_kvb() >= market * 1_000 {
            holds(miner, &txid, RELAY_WAIT).await?;
        }
        miner.mine_and_relay(relay, WAIT).await?;
        clock_at_tip(system).await?;
    }
    anyhow::bail!("{id}'s release not mined within {MAX_BLOCKS_PER_STEP} parent blocks at market {market} sat/vB")
}

/// Runs the schedule and prints each step and the summary.
///
/// # Errors
/// The system cannot start, or a release is not mined in time.
pub async fn run(schedule: &[u64]) -> anyhow::Result<()> {
    println!("\n== Bitcoin fees on a moving market (relay btcd + miner btcd refusing anything below the market) ==");
    let first = *schedule.first().context("an empty schedule")?;
    let mut system = System::isolated("bench-fee-market", 1).await?;
    let user = user_key(0)?;
    let client = system.client(0)?;
    let deposit = system.deposit_btc(&user.address(), BTC).await?;
    system.wait_for_deposit(&deposit, 0, Duration::from_millis(300), WAIT).await?;
    let peg = Peg::new(&accounts::federation_ceremony()?.manifest.bitcoin)?;
    let bump_after = client.params().await?.withdrawals.bitcoin_bump_after_blocks;
    let destination = RegtestWallet::from_seed([0xfb; 32])?.address().to_string();

    let miner_dir = tempfile::Builder::new().prefix("ferry-bench-miner-").tempdir()?;
    let mining_address = system.parents.miner.address().clone();
    let mut miner = Btcd::start_miner(miner_dir.path(), &mining_address, system.parents.btcd.p2p_addr(), first).await?;
    let mut blocks = Samples::default();
    let mut overpay = Samples::default();
    let mut market_now = first;
    for (index, market) in schedule.iter().copied().enumerate() {
        if market != market_now {
            miner.restart_miner(market).await?;
            market_now = market;
        }
        miner.wait_for_chain_of(&system.parents.btcd, WAIT).await?;
        clock_at_tip(&system).await?;
        let step_height = system.parents.btcd.rpc().get_block_count().await?;
        let rate_before = fees(&system).await?.fee_rate;
        let amount = WITHDRAW_SAT + u128::try_from(index)?;
        let (id, _) = system.withdraw_with_budget(&user, &Denom::sat(), amount, &destination, BUDGET).await?;
        let (mined_height, version, paid) = mine_until_mined(&system, &miner, &peg, id, market).await?;
        let step = Step { blocks: mined_height.saturating_sub(step_height), version, paid_sat_per_vb: paid };
        // Settle it (the relayers attest after their confirmations) before the next step.
        while system.withdrawal(id).await?.status != WithdrawalStatus::Released {
            miner.mine_and_relay(&system.parents.btcd, WAIT).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ratio = step.paid_sat_per_vb / market as f64;
        println!(
            "  step {index:>2}: market {market:>3} sat/vB, chain rate {rate_before}: version {} mined {} block(s) after the step, paying {:.2} sat/vB (overpay {ratio:.2}); rate now {}",
            step.version,
            step.blocks,
            step.paid_sat_per_vb,
            fees(&system).await?.fee_rate
        );
        blocks.push(step.blocks as f64);
        overpay.push(ratio);
    }
    println!(
        "  blocks from a market step to the release's block   {}   (floor for a release below the market: one bump period = {bump_after} blocks; {} steps)",
        blocks.summary(0),
        blocks.len()
    );
    println!("  overpay (paid rate / market rate)                   {}   (goal p50 <= 1.30)", overpay.summary(2));
    drop(miner);
    Ok(())
}
