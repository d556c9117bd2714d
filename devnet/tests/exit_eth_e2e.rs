//! Issue 17, Ethereum: the federation's heartbeats carry the chain's exit root to the vault while
//! it runs; once it disappears and the escape delay passes, holders take what the chain says they
//! own out of the vault with `ferry exit eth` alone — on the whole real system (CometBFT, the
//! signers and relayers, anvil, PostgreSQL), proofs built by the CLI from the chain's claims (a
//! node, or a file `ferry exit export` wrote).

mod common;

use std::time::{Duration, Instant};

use common::TestResult;
use common::cli::User;
use ferry_devnet::accounts::user_key;
use ferry_devnet::system::System;
use ferry_parent_chains::ethereum::wallet::VAULT_ESCAPE_DELAY_SECS;
use ferry_parent_chains::ethereum::{EthAddress, U256};
use ferry_types::Denom;
use ferry_types::exit_tree::ClaimsSnapshot;

/// Blocks between two heartbeats in this test.
const HEARTBEAT_BLOCKS: u64 = 8;
/// Test tokens each user deposits.
const TOKENS: u128 = 7_000_000;
const WAIT: Duration = Duration::from_secs(180);

/// The vault's root height once it is at least `height`, waited for (mining Ethereum blocks,
/// so each delivered heartbeat gets the confirmations its attestation waits for).
async fn root_at_least(system: &System, height: u64) -> TestResult<ferry_parent_chains::ethereum::EscapeState> {
    let anvil = &system.parents.anvil;
    let started = Instant::now();
    loop {
        let state = anvil.watcher()?.escape_state().await?;
        if state.root_height >= height {
            return Ok(state);
        }
        if started.elapsed() > WAIT {
            return Err(format!("no heartbeat covering height {height} landed: the vault holds {state:?}").into());
        }
        system.mine_parents(1).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every claim committed at `height`, read from validator 0.
async fn claims_at(system: &System, height: u64) -> TestResult<ClaimsSnapshot> {
    Ok(system.client(0)?.exit_claims(height).await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn holders_exit_eth_and_tokens_with_the_cli_after_the_federation_disappears() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let mut system =
        System::isolated_with("exit-eth", 2, |spec| spec.vault_heartbeat_blocks = Some(HEARTBEAT_BLOCKS)).await?;
    let (anvil, token_address) = (&system.parents.anvil, system.parents.token());
    let (token_denom, token) = (Denom::erc20(&token_address), EthAddress::from(*token_address.as_bytes()));
    let users = [user_key(0)?, user_key(1)?];
    for user in &users {
        anvil.deposit_token(token, U256::from(TOKENS), &user.address()).await?;
    }
    anvil.mine(3).await?;
    for user in &users {
        system.wait_for_balance(&user.address(), &token_denom, TOKENS, Duration::from_millis(300), WAIT).await?;
    }
    let funded = system.client(0)?.latest_height().await?;

    // Heartbeats land while the federation runs: the vault's root is the chain's, at its height.
    let state = root_at_least(&system, funded).await?;
    let snapshot = claims_at(&system, state.root_height).await?;
    assert_eq!(snapshot.tree().root(), state.exit_root, "the vault's root is the tree of the chain's claims");
    assert!(!state.frozen);
    for user in &users {
        let mine = snapshot.of(&user.address());
        assert!(mine.iter().any(|(_, claim)| claim.token.is_zero() && claim.amount.get() > 0), "{mine:?}");
        assert!(mine.iter().any(|(_, claim)| claim.token == token_address && claim.amount.get() == TOKENS), "{mine:?}");
    }

    // The users' CLI, each with its key imported; the second exits from an exported file.
    let homes = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut clis = Vec::new();
    for (index, (user, home)) in users.iter().zip(&homes).enumerate() {
        let cli = User::of_system(&system, home.path(), 1)?;
        // The devnet's user keys are SHA-256 of their seed (`accounts::user_key`).
        let seed = ferry_types::key::sha256(format!("ferry-devnet/user/{index}").as_bytes());
        assert_eq!(ferry_types::AccountKey::from_secret_bytes(&seed)?.address(), user.address());
        let secret = common::cli::write(home.path(), "user.secret", &hex::encode(seed))?;
        let imported = cli.json(&["keys", "import", &format!("user{index}"), "--secret-file", &secret])?;
        // The key's own Ethereum address sends the exits: it needs gas money.
        let ethereum: EthAddress = imported["ethereum_address"].as_str().ok_or("no ethereum address")?.parse()?;
        anvil.set_balance(ethereum, U256::from(10u128.pow(19))).await?;
        clis.push(cli);
    }
    let export = homes[1].path().join("claims.json");
    let exported = clis[1].json(&["exit", "export", "--out", export.to_str().ok_or("path")?])?;
    assert_eq!(exported["height"].as_u64(), Some(state.root_height));
    assert_eq!(exported["root"].as_str(), Some(hex::encode(state.exit_root).as_str()));

    // While the federation is there, the escape hatch stays shut: no freeze, no exit.
    let early = clis[0].run(&["--from", "user0", "exit", "eth"])?;
    assert!(!early.status.success(), "an exit before the escape delay succeeded");
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("escape hatch opens in"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );

    // The federation disappears (signers and relayers stop); the escape delay passes.
    system.signers.clear();
    system.relayers.clear();
    let last = anvil.watcher()?.escape_state().await?;
    anvil.pass_time(VAULT_ESCAPE_DELAY_SECS + 1).await?;
    let status = clis[0].json(&["--from", "user0", "exit", "status"])?;
    assert_eq!(status["opens_in_seconds"].as_u64(), Some(0), "{status}");
    assert_eq!(status["claims"].as_array().map(Vec::len), Some(2), "{status}");

    // Each user exits both claims to a fresh address; the first one's run freezes the vault.
    let snapshot = claims_at(&system, last.root_height).await?;
    for (index, user) in users.iter().enumerate() {
        let recipient = EthAddress::from([0xe0 + index as u8; 20]);
        let mut args = vec![
            "--from".to_owned(),
            format!("user{index}"),
            "exit".to_owned(),
            "eth".to_owned(),
            "--to".to_owned(),
            recipient.to_string(),
        ];
        if index == 1 {
            args.extend(["--claims".to_owned(), export.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let answer = clis[index].json(&args)?;
        assert_eq!(answer["froze"].is_string(), index == 0, "{answer}");
        assert_eq!(answer["exits"].as_array().map(Vec::len), Some(2), "{answer}");
        for (_, claim) in snapshot.of(&user.address()) {
            let received = if claim.token.is_zero() {
                anvil.wallet().balance(recipient).await?
            } else {
                anvil.wallet().token_balance(token, recipient).await?
            };
            assert_eq!(received, U256::from(claim.amount.get()), "user {index}: {claim:?}");
        }
        // Again: every claim is taken; nothing is sent, nothing paid twice.
        let again = clis[index].json(&args)?;
        assert_eq!(again["exits"].as_array().map(Vec::len), Some(0), "{again}");
    }
    assert!(anvil.watcher()?.escape_state().await?.frozen);
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}
