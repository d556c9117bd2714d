//! End-to-end tests of the sidechain against real CometBFT v0.38 validators on loopback.
//!
//! Each test starts its own 4-validator network; they run one at a time (see [`serial`]) so the
//! two-core CI machine is not asked to run twelve consensus processes at once.

mod common;

use common::{TestResult, WAIT, balance, serial, start_funded_network};
use ferry_client::ClientError;
use ferry_client::Wallet;
use ferry_devnet::Network;
use ferry_devnet::accounts::user_key;
use ferry_types::{Address, Coin, Denom, TxCode};
use tendermint_rpc::Client;

fn fee() -> Coin {
    Coin::new(100, Denom::sat())
}

/// Asserts every validator computed the same app hash at `height`, equal to the one in the
/// header of `height + 1` that the network agreed on.
async fn assert_app_hashes_agree(network: &Network, height: u64) -> TestResult {
    network.wait_for_height(height + 1, WAIT).await?;
    let header = network.client(0)?.rpc().header(tendermint::block::Height::try_from(height + 1)?).await?.header;
    let agreed = hex::encode(header.app_hash.as_bytes());
    for index in 0..network.validators().len() {
        let computed = network.client(index)?.app_hash(height).await?;
        assert_eq!(computed.app_hash, agreed, "validator {index} at height {height}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_finalize_and_all_validators_agree_on_the_app_hash() -> TestResult {
    let _serial = serial().await;
    let network = start_funded_network("transfers").await?;
    let sender_client = network.client(1)?;
    let reader = network.client(3)?;
    let mut alice = Wallet::load(&sender_client, user_key(0)?).await?;
    let bob = user_key(1)?.address();
    let carol = Address::from_bytes([0xca; 20]);
    let bob_before = balance(&reader, &bob, &Denom::sat()).await?;
    let alice_before = balance(&reader, &alice.address(), &Denom::sat()).await?;

    // One transfer through CometBFT's broadcast_tx_commit, one through broadcast_tx_sync + wait.
    let first_tx = alice.sign_transfer(bob, vec![Coin::new(5_000, Denom::sat())], &fee())?;
    let first = sender_client.broadcast_commit(first_tx).await?;
    let second = alice
        .send(&sender_client, carol, vec![Coin::new(7, Denom::wei()), Coin::new(1, Denom::sat())], &fee(), WAIT)
        .await?;
    assert_eq!((first.code, second.code), (0, 0), "{} / {}", first.log, second.log);
    assert!(first.events.iter().any(|(kind, _)| kind == ferry_types::event::TRANSFER));

    network.wait_for_height(second.height, WAIT).await?;
    assert_eq!(balance(&reader, &bob, &Denom::sat()).await?, bob_before + 5_000);
    assert_eq!(balance(&reader, &carol, &Denom::wei()).await?, 7);
    assert_eq!(balance(&reader, &alice.address(), &Denom::sat()).await?, alice_before - 5_000 - 1 - 2 * 100);
    // The recipient's balance before the transfer is still visible at the older height.
    let before = reader.balances(&bob, Some(first.height - 1)).await?;
    assert_eq!(before.balances.iter().find(|c| c.denom == Denom::sat()).map(|c| c.amount.get()), Some(bob_before));

    assert_app_hashes_agree(&network, second.height).await?;

    // The application's metrics count the blocks and both transfers on every validator.
    for validator in network.validators() {
        let text = reqwest::get(validator.app_metrics_url()).await?.text().await?;
        let value = |series: &str| -> Option<f64> {
            text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        };
        assert!(value("ferry_chain_blocks_total").is_some_and(|blocks| blocks >= 2.0), "{text}");
        let finalized = value(r#"ferry_chain_txs_total{outcome="ok",phase="finalize"}"#);
        assert!(finalized.is_some_and(|count| count >= 2.0), "validator {}: {text}", validator.index);
        assert!(text.contains("ferry_chain_commit_duration_seconds_count"), "{text}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn validator_killed_with_sigkill_restarts_catches_up_and_agrees() -> TestResult {
    let _serial = serial().await;
    let mut network = start_funded_network("restart").await?;
    let client = network.client(0)?;
    let mut alice = Wallet::load(&client, user_key(2)?).await?;
    let bob = user_key(3)?.address();

    alice.send(&client, bob, vec![Coin::new(10, Denom::sat())], &fee(), WAIT).await?;
    network.kill(3)?;
    // The three others keep finalizing transfers while validator 3 is down.
    let mut last = 0;
    for _ in 0..5 {
        last = alice.send(&client, bob, vec![Coin::new(10, Denom::sat())], &fee(), WAIT).await?.height;
    }
    let others_height = client.wait_for_height(last + 3, WAIT).await?;
    network.start(3)?;
    let restarted = network.client(3)?;
    restarted.wait_for_height(others_height + 2, WAIT).await?;
    assert_eq!(balance(&restarted, &bob, &Denom::sat()).await?, balance(&client, &bob, &Denom::sat()).await?);
    let after = alice.send(&client, bob, vec![Coin::new(10, Denom::sat())], &fee(), WAIT).await?;
    assert_app_hashes_agree(&network, last).await?;
    assert_app_hashes_agree(&network, after.height).await?;
    Ok(())
}

/// Flips one byte of `tx` at `position`.
fn mutate(tx: &[u8], position: usize) -> Vec<u8> {
    let mut mutated = tx.to_vec();
    if let Some(byte) = mutated.get_mut(position) {
        *byte ^= 0x5a;
    }
    mutated
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_mutated_transactions_are_rejected_with_documented_codes_while_blocks_continue() -> TestResult {
    let _serial = serial().await;
    let network = start_funded_network("garbage").await?;
    let client = network.client(2)?;
    let start_height = client.latest_height().await?;
    let mut alice = Wallet::load(&client, user_key(4)?).await?;
    let bob = user_key(5)?.address();

    // Random bytes.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for length in [1usize, 7, 64, 300, 2000] {
        let garbage: Vec<u8> = (0..length)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect();
        let outcome = client.broadcast_sync(garbage).await?;
        assert_eq!(outcome.tx_code(), Some(TxCode::Decode), "random {length} bytes: {}", outcome.log);
    }

    // Every single-byte mutation of a valid transaction is refused with one of Ferry's codes.
    let valid = alice.sign_transfer(bob, vec![Coin::new(1, Denom::sat())], &fee())?;
    let mut seen = std::collections::BTreeSet::new();
    for position in (0..valid.len()).step_by(3) {
        let outcome = client.broadcast_sync(mutate(&valid, position)).await?;
        let code = outcome.tx_code();
        assert!(
            matches!(code, Some(c) if c != TxCode::Ok),
            "mutation at byte {position} got code {} ({})",
            outcome.code,
            outcome.log
        );
        seen.extend(code);
    }
    assert!(seen.contains(&TxCode::InvalidSignature) && seen.contains(&TxCode::Decode), "codes seen: {seen:?}");

    // Targeted refusals name the problem.
    let other_chain = {
        let mut wrong = Wallet::offline(user_key(4)?, "another-chain", 4, alice.sequence());
        wrong.sign_transfer(bob, vec![Coin::new(1, Denom::sat())], &fee())?
    };
    let outcome = client.broadcast_sync(other_chain).await?;
    assert_eq!(outcome.tx_code(), Some(TxCode::WrongChainId), "{}", outcome.log);
    assert!(outcome.log.contains("another-chain"), "{}", outcome.log);

    let chain_id = client.chain_id().await?;
    let future = Wallet::offline(user_key(4)?, chain_id.clone(), 4, alice.sequence() + 5).sign_transfer(
        bob,
        vec![Coin::new(1, Denom::sat())],
        &fee(),
    )?;
    assert_eq!(client.broadcast_sync(future).await?.tx_code(), Some(TxCode::FutureSequence));

    // `valid` (not yet submitted) holds the account's next sequence.
    let next = alice.sequence() - 1;
    let too_much = Wallet::offline(user_key(4)?, chain_id.clone(), 4, next).sign_transfer(
        bob,
        vec![Coin::new(u128::from(ferry_devnet::funding::OPENING_SAT), Denom::sat())],
        &fee(),
    )?;
    assert_eq!(client.broadcast_sync(too_much).await?.tx_code(), Some(TxCode::InsufficientFunds));

    let cheap = Wallet::offline(user_key(4)?, chain_id.clone(), 4, next).sign_transfer(
        bob,
        vec![Coin::new(1, Denom::sat())],
        &Coin::new(1, Denom::sat()),
    )?;
    assert_eq!(client.broadcast_sync(cheap).await?.tx_code(), Some(TxCode::InsufficientFee));

    // The valid transaction still goes through, and a replay of its sequence is stale.
    let included = client.broadcast_and_wait(valid, WAIT).await?;
    assert_eq!(included.code, 0, "{}", included.log);
    let stale = Wallet::offline(user_key(4)?, chain_id, 4, next).sign_transfer(
        bob,
        vec![Coin::new(2, Denom::sat())],
        &fee(),
    )?;
    let outcome = client.broadcast_sync(stale).await?;
    assert_eq!(outcome.tx_code(), Some(TxCode::StaleSequence), "{}", outcome.log);

    // Blocks kept coming on every validator, and they agree.
    network.wait_for_height(start_height + 3, WAIT).await?;
    assert_app_hashes_agree(&network, included.height).await?;
    Ok(())
}

/// Two transactions of one account at one sequence, sent at once through two validators: both
/// may enter a mempool, only one can be included. The other's sender learns it from the chain
/// as soon as the account's sequence passes it ([`ClientError::Superseded`]) instead of waiting
/// out its timeout — the member daemons sharing an account re-sign at once on it.
#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_whose_sequence_another_took_is_reported_superseded_not_awaited() -> TestResult {
    let _serial = serial().await;
    let network = start_funded_network("superseded").await?;
    let (first, second) = (network.client(1)?, network.client(2)?);
    let bob = user_key(7)?.address();
    let mut raced = 0;
    for _ in 0..5 {
        let mut one = Wallet::load(&first, user_key(6)?).await?;
        let mut other = one.clone();
        let a = one.sign_transfer(bob, vec![Coin::new(1, Denom::sat())], &fee())?;
        let b = other.sign_transfer(bob, vec![Coin::new(2, Denom::sat())], &fee())?;
        // A wait that would outlast the test if the loser were awaited to its timeout.
        let long = std::time::Duration::from_secs(600);
        let (a, b) = tokio::join!(first.broadcast_and_wait(a, long), second.broadcast_and_wait(b, long));
        let (included, lost) = match (a, b) {
            (Ok(included), lost) | (lost, Ok(included)) => (included, lost),
            (a, b) => return Err(format!("neither transaction was included: {a:?} / {b:?}").into()),
        };
        assert_eq!(included.code, 0, "{}", included.log);
        match lost {
            // Gossip reached the other validator first: its CheckTx refused the second.
            Err(ClientError::Refused { code: Some(TxCode::StaleSequence), .. }) => {}
            Err(ClientError::Superseded { signer, sequence, .. }) => {
                assert_eq!((signer, sequence), (user_key(6)?.address(), one.sequence() - 1));
                raced += 1;
            }
            other => return Err(format!("the losing transaction: {other:?}").into()),
        }
    }
    eprintln!("{raced} of 5 tries raced into two mempools");
    assert!(raced > 0, "in five tries both transactions never entered a mempool together");
    Ok(())
}
