//! End-to-end tests of the relayer's Ethereum watcher against a real anvil (1.7, Prague) with
//! `FerryVault` and `TestToken` deployed from the committed artifacts.
//!
//! Each test starts its own anvil on a free loopback port; dropping it kills the process, also
//! when a test fails.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_devnet::anvil::Anvil;
use ferry_parent_chains::Observation;
use ferry_parent_chains::ethereum::{DEPOSITED_TOPIC, EthAddress, Receipt, U256};
use ferry_types::{Address, Amount, Denom, DepositFacts, ParentChain};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const ONE_ETH: u128 = 1_000_000_000_000_000_000;

fn alice() -> Address {
    let mut bytes = [0xa1; 20];
    bytes[19] = 0xf0;
    Address::from_bytes(bytes)
}

fn bob() -> Address {
    Address::from_bytes([
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0, 0x11, 0x22,
        0x33,
    ])
}

/// The position of `receipt`'s one `Deposited` log among its transaction's vault deposits, read
/// straight from the receipt (not through the code under test): 0.
fn deposited_position(receipt: &Receipt, vault: EthAddress) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let logs: Vec<_> = receipt.logs_from(vault).collect();
    assert_eq!(logs.len(), 1, "vault logs of {}", receipt.tx_hash);
    assert_eq!(logs[0].topics.first(), Some(&DEPOSITED_TOPIC));
    Ok(0)
}

/// What the watcher must report for `receipt`'s deposit.
fn expected(receipt: &Receipt, index: u32, asset: Denom, amount: u128, recipient: Address) -> Observation {
    Observation {
        facts: DepositFacts {
            chain: ParentChain::Ethereum,
            tx_id: receipt.tx_hash.clone(),
            index,
            asset,
            amount: Amount::new(amount),
            recipient,
            deposit_address: false,
            unattributed: None,
            peg_epoch: None,
        },
        block_height: receipt.block_number,
        block_hash: receipt.block_hash.clone(),
        coinbase: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn eth_and_token_deposits_are_found_with_exact_facts_and_block_hashes() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let anvil = Anvil::start().await?;
    let (vault_deployment, token_deployment) = anvil.deployments().ok_or("a fresh anvil deployed both")?;
    eprintln!(
        "anvil up with contracts in {:?} (gas: FerryVault deployment {}, TestToken deployment {})",
        started.elapsed(),
        vault_deployment.gas_used,
        token_deployment.gas_used
    );
    let calls = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&calls);
    let watcher = anvil.watcher()?.with_observer(move |method: &str, _latency: Duration, ok: bool| {
        if let Ok(mut calls) = record.lock() {
            calls.push((method.to_owned(), ok));
        }
    });
    let vault = anvil.vault();
    let token = anvil.token();

    let eth = anvil.deposit_eth(&alice(), U256::from(ONE_ETH)).await?;
    let token_amount = 250_000_000u128; // 250 fUSD (6 decimals)
    let erc20 = anvil.deposit_token(token, U256::from(token_amount), &bob()).await?;
    eprintln!("gas used: deposit {}, depositToken {}", eth.gas_used, erc20.gas_used);
    assert!(erc20.block_number > eth.block_number);

    let token_denom: Denom = format!("erc20/0x{}", hex::encode(token.as_slice())).parse()?;
    let want_eth = expected(&eth, deposited_position(&eth, vault)?, Denom::wei(), ONE_ETH, alice());
    let want_token = expected(&erc20, deposited_position(&erc20, vault)?, token_denom, token_amount, bob());
    assert_eq!(want_eth.facts.id().as_str(), format!("eth:{}:{}", eth.tx_hash, want_eth.facts.index));

    let tip = watcher.block_number().await?;
    assert_eq!(tip, erc20.block_number);
    let found = watcher.deposits_in(0, tip).await?;
    assert_eq!(found, vec![want_eth.clone(), want_token.clone()]);
    for observation in &found {
        observation.facts.validate()?;
    }

    // Ranges are inclusive at both ends and see only their own blocks.
    assert_eq!(watcher.deposits_in(eth.block_number, eth.block_number).await?, vec![want_eth]);
    assert_eq!(watcher.deposits_in(eth.block_number + 1, tip).await?, vec![want_token]);
    assert_eq!(watcher.deposits_in(0, eth.block_number - 1).await?, vec![]);

    assert_eq!(watcher.block_hash(eth.block_number).await?, Some(eth.block_hash.clone()));
    assert_eq!(watcher.block_hash(tip + 1).await?, None);
    assert_eq!(watcher.chain_id().await?, ferry_devnet::anvil::CHAIN_ID);
    let calls = calls.lock().map(|calls| calls.clone()).unwrap_or_default();
    // Each range: one read of the vault's `Deposited` logs, one of token transfers to the vault.
    assert_eq!(calls.iter().filter(|(method, ok)| method == "eth_getLogs" && *ok).count(), 8, "{calls:?}");
    assert_eq!(calls.iter().filter(|(method, _)| method == "eth_getBlockByNumber").count(), 2, "{calls:?}");
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn reorged_out_deposit_disappears_and_the_block_hash_at_its_height_changes() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let anvil = Anvil::start().await?;
    let watcher = anvil.watcher()?;
    let deposit = anvil.deposit_eth(&alice(), U256::from(5 * ONE_ETH)).await?;
    anvil.mine(2).await?;
    let tip = watcher.block_number().await?;
    assert_eq!(tip, deposit.block_number + 2);
    assert_eq!(watcher.deposits_in(deposit.block_number, tip).await?.len(), 1);
    let seen_hash = watcher.block_hash(deposit.block_number).await?;
    assert_eq!(seen_hash.as_deref(), Some(deposit.block_hash.as_str()));

    // Replace the deposit's block and the two above it with three empty blocks.
    anvil.reorg(3, &[]).await?;

    assert_eq!(watcher.block_number().await?, tip, "a reorg of equal length keeps the height");
    let now = watcher.block_hash(deposit.block_number).await?;
    assert!(now.is_some());
    assert_ne!(now, seen_hash, "the block at the deposit's height must be a different one");
    assert_eq!(watcher.deposits_in(0, tip).await?, vec![]);
    assert_eq!(anvil.wallet().balance(anvil.vault()).await?, U256::ZERO, "the deposit is undone");
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deposit_reincluded_by_a_reorg_keeps_its_id_in_a_new_block() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let anvil = Anvil::start().await?;
    let watcher = anvil.watcher()?;
    let deposit = anvil.deposit_eth(&bob(), U256::from(ONE_ETH)).await?;
    anvil.mine(1).await?;
    let before = watcher.deposits_in(0, deposit.block_number + 1).await?;
    assert_eq!(before.len(), 1);

    // New branch from the deposit's parent: the deposit moves one block up.
    anvil.reorg(2, &[(deposit.tx_hash.as_str(), 1)]).await?;

    let after = watcher.deposits_in(0, watcher.block_number().await?).await?;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].facts, before[0].facts, "same transaction, same log index: same facts and id");
    assert_eq!(after[0].block_height, deposit.block_number + 1);
    assert_ne!(watcher.block_hash(deposit.block_number).await?, Some(deposit.block_hash.clone()));
    assert_eq!(watcher.block_hash(after[0].block_height).await?, Some(after[0].block_hash.clone()));
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deposit_after_a_reverted_snapshot_is_gone_and_its_height_is_rebuilt() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let anvil = Anvil::start().await?;
    let watcher = anvil.watcher()?;
    let snapshot = anvil.snapshot().await?;
    let deposit = anvil.deposit_token(anvil.token(), U256::from(42u64), &alice()).await?;
    assert_eq!(watcher.deposits_in(deposit.block_number, deposit.block_number).await?.len(), 1);

    anvil.revert(snapshot).await?;
    assert!(watcher.block_number().await? < deposit.block_number);
    assert_eq!(watcher.block_hash(deposit.block_number).await?, None);
    anvil.mine(4).await?;

    let tip = watcher.block_number().await?;
    assert!(tip >= deposit.block_number);
    assert_eq!(watcher.deposits_in(0, tip).await?, vec![]);
    assert_ne!(watcher.block_hash(deposit.block_number).await?, Some(deposit.block_hash.clone()));
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_anvil_stops_its_process() -> TestResult {
    let _serial = common::serial().await;
    let anvil = Anvil::start().await?;
    let pid = anvil.pid().ok_or("no pid")?;
    let url = anvil.rpc_url().to_owned();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(anvil);
    // Reaped by the drop, so the PID is gone (not a zombie) and the port answers no more.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "anvil {pid} still running");
    let watcher = ferry_parent_chains::ethereum::EthereumWatcher::connect(&url, EthAddress::ZERO)?;
    assert!(watcher.block_number().await.is_err());
    Ok(())
}
