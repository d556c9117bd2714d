//! The `ferry` CLI end to end, on the whole system (`devnet::system`), driven only through the
//! binary as a new user would: import a key, deposit BTC (from a coin over 1,000 blocks old) and
//! ETH from it, watch them mint, send to another key, withdraw both, watch them release, and
//! check balances on both sides. The test plays the faucet (it funds the user's Bitcoin and Ethereum addresses from the parent
//! chains' dev accounts) and mines parent blocks while the user waits.
//!
//! The binary is `target/debug/ferry` (`cargo build --bins`), or `FERRY_CLI_BIN`.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use bitcoin::{Amount as Sats, OutPoint, TxOut};
use common::cli::{User, write};
use common::{TestResult, WAIT, serial};
use ferry_devnet::NetworkSpec;
use ferry_devnet::accounts;
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::system::{System, SystemSpec};
use ferry_parent_chains::ethereum::U256;
use ferry_types::GenesisState;
use serde_json::{Value, json};

/// Parent-chain confirmations the relayers wait for (deposits and releases).
const CONFIRMATIONS: u32 = 2;
/// A parent-chain block is mined this often while the user waits.
const PARENT_BLOCK: Duration = Duration::from_millis(400);
/// How long a watched deposit or withdrawal may take.
const WATCH: Duration = Duration::from_secs(180);

const BTC: u64 = 100_000_000;
const ETH: u128 = 1_000_000_000_000_000_000;
/// Blocks mined on top of the user's funding before the deposit: more than the 1,000 a
/// block-by-block search would read.
const OLD_COIN_DEPTH: u32 = 1_001;
/// The user's key (a test secret; never holds value elsewhere).
const ALICE_SECRET: &str = "5f1e7e2d4c3b2a190817f6e5d4c3b2a1908f7e6d5c4b3a2918f7e6d5c4b3a291";

/// Runs `ferry --json status <id> --watch` to the end while mining a parent block every
/// [`PARENT_BLOCK`]; returns every update (NDJSON).
async fn watch(system: &System, user: &User, id: &str) -> TestResult<Vec<Value>> {
    let timeout = WATCH.as_secs().to_string();
    let mut child: Child = user
        .command(&["--json", "status", id, "--watch", "--interval-ms", "300", "--watch-timeout", &timeout])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    while child.try_wait()?.is_none() {
        system.mine_parents(1).await?;
        tokio::time::sleep(PARENT_BLOCK).await;
    }
    let output = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!("status {id} --watch: {}\n{text}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let updates: Vec<Value> = text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    Ok(updates)
}

/// Funds `address` on anvil (the Ethereum faucet).
async fn fund_ether(rpc: &str, address: &str, wei: u128) -> TestResult {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": [address, format!("0x{wei:x}")]});
    let answer: Value = reqwest::Client::new().post(rpc).json(&body).send().await?.json().await?;
    assert!(answer.get("error").is_none(), "anvil_setBalance: {answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_user_bridges_btc_and_eth_both_ways_with_the_cli_alone() -> TestResult {
    let _serial = serial().await;
    let bridge = tempfile::Builder::new().prefix("ferry-bridge-").tempdir()?;
    let mut system = System::start(SystemSpec {
        network: NetworkSpec::isolated("cli", accounts::FEDERATION_MEMBERS, GenesisState::default())?,
        // Alice brings her own keys and coins: no devnet user, so the ledger is hers alone.
        users: 0,
        bridge_dir: bridge.path().to_path_buf(),
        fresh: true,
        confirmations: CONFIRMATIONS,
        poll_interval: "200ms".to_owned(),
        scratch_databases: true,
        persist_parents: false,
        vault_heartbeat_blocks: None,
        // The Bitcoin exit on, as on a real chain: Alice's withdrawal waits for the disbursal of
        // what it leaves, and she sees nothing of it but a few more blocks.
        bitcoin_exit: Some(ferry_types::genesis::BitcoinExitParams {
            lock_blocks: 500,
            refresh_margin_blocks: 100,
            fee_rate_percent: 100,
            ..ferry_types::genesis::BitcoinExitParams::default()
        }),
    })
    .await?;
    let home = tempfile::tempdir()?;
    let user = User::of_system(&system, home.path(), CONFIRMATIONS)?;

    // Keys: import the user's secret, add a friend.
    let secret = write(home.path(), "alice.secret", ALICE_SECRET)?;
    let alice = user.json(&["keys", "import", "alice", "--secret-file", &secret])?;
    let bob = user.json(&["keys", "add", "bob"])?;
    let alice_account = alice["account"].as_str().ok_or("account")?.to_owned();
    let bob_account = bob["account"].as_str().ok_or("account")?.to_owned();
    let alice_btc: bitcoin::Address =
        alice["bitcoin_address"].as_str().ok_or("btc")?.parse::<bitcoin::Address<_>>()?.assume_checked();
    let alice_eth = alice["ethereum_address"].as_str().ok_or("eth")?.to_owned();

    // The faucet: 1 BTC to alice's regtest address (confirmed), 10 ETH on anvil.
    let rpc = system.parents.btcd.rpc();
    let funding = vec![TxOut { value: Sats::from_sat(BTC), script_pubkey: alice_btc.script_pubkey() }];
    system.parents.miner.pay(&rpc, funding).await?;
    system.mine_parents(1).await?;
    // The coin ages past the 1,000 blocks a block-by-block search would look at: the CLI must
    // find it through btcd's address index.
    system.parents.btcd.mine(OLD_COIN_DEPTH).await?;
    fund_ether(system.parents.anvil.rpc_url(), &alice_eth, 10 * ETH).await?;

    // Deposits from alice's own keys.
    let btc_deposit = user.json(&["--from", "alice", "deposit", "btc", "0.5btc"])?;
    let eth_deposit = user.json(&["--from", "alice", "deposit", "eth", "2eth"])?;
    let btc_id = btc_deposit["deposit_id"].as_str().ok_or("btc deposit id")?.to_owned();
    assert_eq!(btc_deposit["coins_searched"], "address_index", "{btc_deposit}");
    let eth_id = eth_deposit["deposit_id"].as_str().ok_or("eth deposit id")?.to_owned();
    let print_only = user.json(&["--from", "alice", "deposit", "btc", "0.1btc", "--print-only"])?;
    // A token the federation has not listed is refused before any transaction, saying why.
    let unlisted = system.parents.anvil.wallet().deploy_test_token("Unlisted", "UNL", 18).await?;
    let unlisted = unlisted.contract_address.ok_or("no token contract")?.to_string();
    let refused = user.run(&["--from", "alice", "deposit", "erc20", &unlisted, "1", "--decimals", "18"])?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not listed by the federation"), "{stderr}");
    assert_eq!(print_only["memo_data"].as_str().map(str::len), Some(52), "{print_only}");

    for id in [&btc_id, &eth_id] {
        let updates = watch(&system, &user, id).await?;
        let last = updates.last().ok_or("no update")?;
        assert_eq!((last["stage"].as_str(), last["done"].as_bool()), (Some("minted"), Some(true)), "{updates:?}");
        assert!(last["attestations"].as_u64() >= last["quorum"].as_u64(), "{last}");
        eprintln!(
            "{id}: {} updates, stages {:?}",
            updates.len(),
            updates.iter().map(|u| u["stage"].clone()).collect::<Vec<_>>()
        );
    }
    // A parent txid finds the deposit too.
    let by_txid = user.json(&["status", btc_deposit["txid"].as_str().ok_or("txid")?])?;
    assert_eq!(by_txid["id"], btc_id.as_str());
    // The deposit mints its amount less what it prepays for its own spending.
    let btc_minted = common::btc_minted(&system.client(0)?, u128::from(BTC / 2)).await?;
    assert_eq!(user.balance("alice", "sat")?, btc_minted);
    assert_eq!(user.balance(&alice_account, "wei")?, 2 * ETH);

    // Send to bob (the fee is paid in the asset moved).
    user.json(&["--from", "alice", "send", "bob", "0.1btc"])?;
    assert_eq!(user.balance(&bob_account, "sat")?, u128::from(BTC / 10));

    // Withdraw both to fresh parent-chain addresses.
    let btc_destination = RegtestWallet::from_seed([0xc1; 32])?.address().to_string();
    let eth_destination = "0x00000000000000000000000000000000000c1e01";
    let btc_withdrawal = user.json(&["--from", "alice", "withdraw", "btc", "0.2btc", &btc_destination, "--yes"])?;
    let eth_withdrawal = user.json(&["--from", "alice", "withdraw", "eth", "1eth", eth_destination, "--yes"])?;
    // The quote: its share of a lone release at the chain's rate, and a budget at twice the rate.
    let number = |value: &serde_json::Value, key: &str| -> TestResult<u64> {
        Ok(value[key].as_str().ok_or_else(|| format!("no `{key}` in {value}"))?.parse()?)
    };
    let estimate = number(&btc_withdrawal, "miner_fee_estimate")?;
    let budget = number(&btc_withdrawal, "max_fee")?;
    let receives_at_least = number(&btc_withdrawal, "receives_at_least")?;
    assert!(estimate > 0 && budget >= estimate, "estimate {estimate} sat, budget {budget} sat");
    assert_eq!(receives_at_least, BTC / 5 - budget, "the budget comes out of the amount at most");
    for withdrawal in [&btc_withdrawal, &eth_withdrawal] {
        let id = withdrawal["withdrawal_id"].as_str().ok_or("withdrawal id")?;
        let updates = watch(&system, &user, id).await?;
        let last = updates.last().ok_or("no update")?;
        assert_eq!(last["stage"], "released", "{updates:?}");
        eprintln!("{id}: stages {:?}", updates.iter().map(|u| u["stage"].clone()).collect::<Vec<_>>());
    }

    // Both sides: the sidechain balances, and what the parent chains paid.
    let btc_status = user.json(&["status", btc_withdrawal["withdrawal_id"].as_str().ok_or("id")?])?;
    let release: bitcoin::Txid = btc_status["release_tx"].as_str().ok_or("release tx")?.parse()?;
    let paid =
        system.parents.btcd.unspent_output(&OutPoint { txid: release, vout: 0 }).await?.ok_or("no release output")?;
    // Alone in a one-input release at the unchanged rate, its share is exactly the quote.
    assert_eq!(number(&btc_status, "fee_paid")?, estimate, "{btc_status}");
    assert_eq!(paid.value.to_sat(), BTC / 5 - estimate);
    assert_eq!(number(&btc_status, "paid")?, paid.value.to_sat());
    assert_eq!(paid.script_pubkey, btc_destination.parse::<bitcoin::Address<_>>()?.assume_checked().script_pubkey());
    // Her BTC is covered by the disbursal the release left behind: `ferry exit status` says when
    // it would open and what it would pay her.
    let exit = user.json(&["--from", "alice", "exit", "status"])?;
    assert!(exit["bitcoin"]["opens_in_blocks"].as_u64().is_some_and(|blocks| blocks > 0), "{exit}");
    assert_eq!(exit["bitcoin"]["payouts"].as_array().map(Vec::len), Some(1), "{exit}");
    let eth_paid = system.parents.anvil.wallet().balance(eth_destination.parse()?).await?;
    assert_eq!(eth_paid, U256::from(ETH));
    let params = system.client(0)?.params().await?;
    let fee = |denom: ferry_types::Denom| params.min_fee(&denom).map_or(0, |fee| fee.get());
    let sat_fee = fee(ferry_types::Denom::sat());
    let wei_fee = fee(ferry_types::Denom::wei());
    assert_eq!(user.balance("alice", "sat")?, btc_minted - u128::from(BTC / 10 + BTC / 5) - 2 * sat_fee);
    assert_eq!(user.balance("alice", "wei")?, ETH - wei_fee);

    // The ledger beside the parent chains.
    // Both parent chains' RPCs are configured, so every asset is checked against what its parent
    // chain holds, and every check matches.
    let reserves = user.json(&["reserves"])?;
    let assets = reserves["assets"].as_array().ok_or("assets")?;
    let denoms: Vec<&str> = assets.iter().filter_map(|row| row["denom"].as_str()).collect();
    for bridged in ["sat", "wei"] {
        assert!(denoms.contains(&bridged), "{bridged} missing from the reserves: {reserves}");
    }
    for row in assets {
        assert_eq!(row["matches"], true, "reserves not checked, or a mismatch: {row}");
        assert_eq!(row["parent_chain"], row["reserves"], "{row}");
    }
    // The deposit's prepaid spending is reported: what alice deposited less what she got.
    let sat = assets.iter().find(|row| row["denom"] == "sat").ok_or("no sat row")?;
    assert_eq!(sat["fee_pool"].as_str(), Some((u128::from(BTC / 2) - btc_minted).to_string().as_str()), "{sat}");
    // The federation's own reserves check: a quorum of the members' relayers found both parent
    // chains holding what the ledger needs (a round every `reserves_interval` blocks).
    let started = std::time::Instant::now();
    let checks = loop {
        let reserves = user.json(&["reserves"])?;
        let checks = reserves["federation_checks"].as_array().cloned().unwrap_or_default();
        let chains: std::collections::BTreeSet<&str> = checks.iter().filter_map(|c| c["chain"].as_str()).collect();
        if chains.len() == 2 {
            break checks;
        }
        if started.elapsed() > WAIT {
            return Err(format!("no federation check of both chains: {reserves}").into());
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for check in &checks {
        assert_eq!(check["shortfall"], "0", "{check}");
    }

    // Insufficient funds: bob has no ether.
    let refused = user.run(&["--from", "bob", "withdraw", "eth", "1eth", eth_destination, "--yes"])?;
    assert_eq!(refused.status.code(), Some(4), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("insufficient funds"));
    let refused = user.run(&["--from", "bob", "send", "alice", "1btc"])?;
    assert_eq!(refused.status.code(), Some(4));
    Ok(())
}
