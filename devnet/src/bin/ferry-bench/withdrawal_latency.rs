//! Withdrawal latency on the whole system (`devnet::system`): from the block that commits a burn
//! to the broadcast of the release that pays it — btcd knows the batch's transaction (mempool
//! included), or the vault reports the batch's nonce released — for Bitcoin and Ethereum
//! withdrawals, next to the sidechain's own floor measured in the same run: `batch_interval`
//! blocks at the run's mean block time.
//!
//! It also times the signing itself — from the batch's appearance to its threshold of signatures
//! on the chain — and what the signers' proven reads (issue 15: every fact signed on read with a
//! Merkle proof against a light-client-verified header) cost during the run, from their
//! `ferry_signer_proven_read_seconds`: the signing latency without verification can be no lower
//! than the latency measured less that cost, so their ratio bounds what verification adds.

use std::time::{Duration, Instant};

use anyhow::Context;
use bitcoin::{OutPoint, Txid};
use ferry_devnet::accounts::user_key;
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::system::System;
use ferry_parent_chains::ethereum::U256;
use ferry_types::Denom;
use ferry_types::query::{BatchRelease, BatchStatus, BatchView, WithdrawalId, WithdrawalStatus};
use ferry_types::release::eth::EthAddress;

use crate::samples::Samples;

/// A parent-chain block is mined this often while the bench waits.
const PARENT_BLOCK: Duration = Duration::from_millis(400);
/// How often the bench looks for the release while it waits.
const POLL: Duration = Duration::from_millis(25);
/// How long one withdrawal may take from burn to broadcast, and then to settlement.
const RELEASE_WAIT: Duration = Duration::from_secs(120);

const BTC: u64 = 100_000_000;
const ETH: u128 = 1_000_000_000_000_000_000;

/// Latencies of one asset's withdrawals.
#[derive(Default)]
struct Latencies {
    seconds: Samples,
    blocks: Samples,
    /// From the batch's appearance to its signatures' threshold on the chain.
    signing: Samples,
}

/// Seconds every signer of `system` spent in proven reads so far, summed.
async fn proven_read_seconds(system: &System) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for signer in &system.signers {
        let text = reqwest::get(signer.metrics_url()).await?.text().await?;
        total += text
            .lines()
            .find_map(|line| line.strip_prefix("ferry_signer_proven_read_seconds ")?.trim().parse::<f64>().ok())
            .context("a signer exports no ferry_signer_proven_read_seconds")?;
    }
    Ok(total)
}

/// Times `count` Bitcoin and `count` Ethereum withdrawals, one at a time, and prints p50/p95
/// in seconds and sidechain blocks beside the floor of `batch_interval` blocks.
///
/// # Errors
/// The system cannot start, a deposit or withdrawal fails, or a release is not broadcast in time.
pub async fn latency(count: usize) -> anyhow::Result<()> {
    let mut system = System::isolated("bench-withdrawals", 4).await?;
    let client = system.client(0)?;
    let user = user_key(0)?;
    let address = user.address();

    // Reserves: one deposit of each asset, minted before anything is timed.
    let held = |view: ferry_types::query::BalancesView, denom: &Denom| {
        view.balances.iter().find(|coin| &coin.denom == denom).map_or(0, |coin| coin.amount.get())
    };
    let sat_before = held(client.balances(&address, None).await?, &Denom::sat());
    let wei_target = held(client.balances(&address, None).await?, &Denom::wei()) + 2 * ETH;
    let btc_deposit = system.deposit_btc(&address, BTC).await?;
    system.parents.anvil.deposit_eth(&address, U256::from(2 * ETH)).await?;
    // A Bitcoin deposit mints its amount less what it prepays for its own spending.
    let deposit = system.wait_for_deposit(&btc_deposit, 0, PARENT_BLOCK, RELEASE_WAIT).await?;
    let minted = deposit.minted_amount.map_or(0, |minted| minted.get());
    system.wait_for_balance(&address, &Denom::sat(), sat_before + minted, PARENT_BLOCK, RELEASE_WAIT).await?;
    system.wait_for_balance(&address, &Denom::wei(), wei_target, PARENT_BLOCK, RELEASE_WAIT).await?;

    let batch_interval = client.params().await?.withdrawals.batch_interval;
    let btc_destination = RegtestWallet::from_seed([0xb1; 32])?.address().to_string();
    let eth_destination = EthAddress::from_bytes([0xe1; 20]).to_string();
    let run_started = (Instant::now(), client.latest_height().await?);
    let reads_before = proven_read_seconds(&system).await?;
    let mut btc = Latencies::default();
    let mut eth = Latencies::default();
    for _ in 0..count {
        for (asset, amount, destination, samples) in [
            (Denom::sat(), u128::from(BTC / 100), &btc_destination, &mut btc),
            (Denom::wei(), ETH / 10, &eth_destination, &mut eth),
        ] {
            let (id, burn_height) = system.withdraw(&user, &asset, amount, destination).await?;
            let burned_at = Instant::now();
            let (release_height, signing) = wait_for_broadcast(&system, id).await?;
            samples.seconds.push(burned_at.elapsed().as_secs_f64());
            samples.signing.push(signing);
            samples.blocks.push(release_height.saturating_sub(burn_height) as f64);
            // Let it settle so the next withdrawal does not wait for a locked reserve UTXO.
            system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, RELEASE_WAIT).await?;
        }
    }
    let run_reads = proven_read_seconds(&system).await? - reads_before;
    let run_blocks = client.latest_height().await?.saturating_sub(run_started.1);
    let block_seconds = run_started.0.elapsed().as_secs_f64() / run_blocks.max(1) as f64;
    let floor_seconds = batch_interval as f64 * block_seconds;

    println!(
        "withdrawal latency (burn committed -> release broadcast; {count} BTC and {count} ETH withdrawals, \
         one at a time; parent block every {} ms):",
        PARENT_BLOCK.as_millis()
    );
    println!(
        "  floor: batch_interval {batch_interval} blocks x mean block {block_seconds:.3} s = {floor_seconds:.2} s  (baseline)"
    );
    for (label, samples) in [("BTC", &btc), ("ETH", &eth)] {
        let (tail_name, tail) = samples.seconds.tail();
        println!(
            "  {label}  seconds {}   blocks {}   ratio {tail_name}/floor {:.2}  ({} samples)",
            samples.seconds.summary(2),
            samples.blocks.summary(0),
            tail / floor_seconds,
            samples.seconds.len()
        );
    }
    // What verification can have added to one signing: every proven read of the run (idle
    // rounds included), per signer, spread over the batches signed.
    let batches = btc.signing.len() + eth.signing.len();
    let signers = system.signers.len().max(1) as f64;
    let reads_per_batch = run_reads / signers / batches.max(1) as f64;
    let mut signing = btc.signing.clone();
    signing.extend(&eth.signing);
    let p50 = signing.percentile(50);
    println!(
        "signing latency (batch listed -> threshold of signatures on the chain; {batches} batches): {} s",
        signing.summary(2)
    );
    println!(
        "  proven reads per signer during the run: {:.1} ms per batch signed ({:.2} s in all, idle rounds included)",
        reads_per_batch * 1_000.0,
        run_reads
    );
    println!(
        "  ratio with/without verification (p50) <= {:.3}  (goal <= 1.2; bound: the latency less all proven-read time)",
        p50 / (p50 - reads_per_batch).max(f64::MIN_POSITIVE)
    );
    crate::print_resident("the whole devnet after the withdrawals", &system.pids());
    drop(system);
    Ok(())
}

/// Waits until the release of withdrawal `id` is broadcast; returns the sidechain height at that
/// moment, and the seconds from its batch's first sighting to the batch's signatures reaching
/// their threshold. No parent block is mined meanwhile: signing and delivering need none, and blocks
/// mined every [`PARENT_BLOCK`] — far faster than the sidechain signs, unlike mainnet's pace —
/// would count against the release as confirmation delay, and the fee controller would raise
/// the rate release after release until a withdrawal's budget no longer covered it.
async fn wait_for_broadcast(system: &System, id: WithdrawalId) -> anyhow::Result<(u64, f64)> {
    let client = system.client(0)?;
    let started = Instant::now();
    let mut listed: Option<Instant> = None;
    let mut signed: Option<f64> = None;
    loop {
        if let Some(batch) = system.withdrawal(id).await?.withdrawal.batch {
            let view: BatchView =
                client.query(&format!("/batch/{batch}"), None).await?.with_context(|| format!("no batch {batch}"))?;
            let listed_at = *listed.get_or_insert_with(Instant::now);
            if signed.is_none()
                && (view.batch.status != BatchStatus::Signing || view.batch.signed_bitcoin_version().is_some())
            {
                signed = Some(listed_at.elapsed().as_secs_f64());
            }
            let broadcast = match &view.batch.release {
                BatchRelease::Bitcoin(release) => {
                    let txid: Txid = release.txid.parse()?;
                    system.parents.btcd.unspent_output(&OutPoint { txid, vout: 0 }).await?.is_some()
                }
                BatchRelease::BitcoinExit(_) => anyhow::bail!("{id} is in batch {batch}, an exit disbursal"),
                BatchRelease::Ethereum(_)
                | BatchRelease::EthereumListing(_)
                | BatchRelease::EthereumRotation(_)
                | BatchRelease::EthereumHeartbeat(_) => {
                    let anvil = &system.parents.anvil;
                    anvil.wallet().released(anvil.vault(), view.batch.id).await?
                }
            };
            if broadcast {
                let signing = signed.with_context(|| format!("{id}: broadcast before its batch was seen signed"))?;
                return Ok((client.latest_height().await?, signing));
            }
        }
        anyhow::ensure!(started.elapsed() < RELEASE_WAIT, "{id}: no release broadcast after {RELEASE_WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
}
