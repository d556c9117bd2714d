//! End-to-end tests of the sidechain against real CometBFT v0.38 validators on loopback.
//!
//! Each test starts its own 4-validator network; they run one at a time (see [`serial`]) so the
//! two-core CI machine is not asked to run twelve consensus processes at once.

mod common;

use common::{TestResult, USERS, WAIT, balance, metric, serial, start_funded_network, start_spec};
use ferry_client::ClientError;
use ferry_client::Wallet;
use ferry_devnet::accounts::{self, user_key};
use ferry_devnet::{Network, NetworkSpec};
use ferry_types::deposit_record::{DepositRecord, DepositStatus};
use ferry_types::msg::MsgAttestDeposit;
use ferry_types::query::{DEPOSIT_PATH, QUERY_PRUNED, RESERVES_PATH, ReservesView};
use ferry_types::{Address, Coin, Denom, Msg, TxCode};
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

/// Validator 3 keeps only the last [`KEPT`] heights of state and blocks; the others keep all.
const KEPT: u64 = 40;

/// A validator that prunes its history keeps computing the app hash the archive validators
/// compute, block after block, for a few hundred blocks of transfers; a query at a height it
/// pruned answers the documented code (4, pruned) while an archive node still answers it; and
/// a deposit minted long before the pruned range still never mints again — its id lives in the
/// current state, which pruning never touches.
#[tokio::test(flavor = "multi_thread")]
async fn a_pruning_validator_agrees_with_archive_validators_and_old_deposits_never_mint_again() -> TestResult {
    let _serial = serial().await;
    let mut spec = NetworkSpec::isolated("pruning", 4, accounts::genesis(USERS, 4)?)?;
    spec.min_retain_blocks = vec![0, 0, 0, KEPT];
    let network = start_spec(spec).await?;
    ferry_devnet::funding::attest_openings(&network, USERS).await?;
    let (archive, pruning) = (network.client(0)?, network.client(3)?);
    let opened_at = archive.latest_height().await?;
    let opening = ferry_devnet::funding::made_up_openings(USERS)?.remove(0);
    let reserves_before: ReservesView = archive.query(RESERVES_PATH, None).await?.ok_or("no reserves")?;

    // Transfers through the pruning validator (its CheckTx reads its pruned store) while the
    // chain grows well past the window, each checked against the archive's hashes.
    let mut alice = Wallet::load(&pruning, user_key(0)?).await?;
    let bob = user_key(1)?.address();
    let target = opened_at + 5 * KEPT;
    let mut checked = 0;
    while archive.latest_height().await? < target {
        let sent = alice.send(&pruning, bob, vec![Coin::new(1, Denom::sat())], &fee(), WAIT).await?;
        assert_eq!(sent.code, 0, "{}", sent.log);
        if sent.height % 7 == 0 {
            assert_app_hashes_agree(&network, sent.height).await?;
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} heights compared");
    let latest = network.client(3)?.wait_for_height(target, WAIT).await?;
    assert_app_hashes_agree(&network, latest).await?;

    // The pruned range is refused with its own code, by the app and by CometBFT's block store.
    let old = opened_at;
    match pruning.query::<ReservesView>(RESERVES_PATH, Some(old)).await {
        Err(ClientError::Query { code, log, .. }) if code == QUERY_PRUNED => {
            assert!(log.contains("pruned"), "{log}");
        }
        other => return Err(format!("a query at pruned height {old}: {other:?}").into()),
    }
    let archived: Option<ReservesView> = archive.query(RESERVES_PATH, Some(old)).await?;
    assert_eq!(archived.as_ref(), Some(&reserves_before), "the archive node still answers height {old}");
    let status = pruning.rpc().status().await?;
    assert!(
        status.sync_info.earliest_block_height.value() > old,
        "CometBFT kept blocks from {} (retain height from Commit)",
        status.sync_info.earliest_block_height
    );
    let pruned_below = app_metric(&network, 3, "ferry_chain_pruned_below_height").await?;
    assert!(pruned_below > old as f64, "pruned below {pruned_below}");

    // The opening deposit, minted before the pruned range, attested again through the pruning
    // node — by the member who never attested it and by one who did: nothing mints.
    let id = opening.id();
    let minted: DepositRecord =
        pruning.query(&format!("{DEPOSIT_PATH}{id}"), None).await?.ok_or("the opening deposit is unknown")?;
    assert!(minted.minted_height.is_some_and(|height| height <= old), "{minted:?}");
    let user_before = balance(&pruning, &opening.recipient, &Denom::sat()).await?;
    for member in [3, 0] {
        let mut wallet = Wallet::load(&pruning, accounts::member_key(member)?).await?;
        let again = MsgAttestDeposit { attester: wallet.address(), facts: opening.clone() };
        let tx = wallet.sign_fee_exempt(&[Msg::AttestDeposit(again)])?;
        let included = pruning.broadcast_and_wait(tx, WAIT).await?;
        assert_eq!(included.code, 0, "a repeated attestation is a no-op, not an error: {}", included.log);
    }
    let after: DepositRecord = pruning.query(&format!("{DEPOSIT_PATH}{id}"), None).await?.ok_or("deposit gone")?;
    assert_eq!((after.status, after.minted_height), (DepositStatus::Minted, minted.minted_height));
    assert_eq!(balance(&pruning, &opening.recipient, &Denom::sat()).await?, user_before, "minted twice");
    let supply = |view: &ReservesView| view.assets.get(&Denom::sat()).map(|ledger| ledger.supply);
    let reserves_after: ReservesView = archive.query(RESERVES_PATH, None).await?.ok_or("no reserves")?;
    assert_eq!(supply(&reserves_after), supply(&reserves_before), "the sat supply moved");
    assert_app_hashes_agree(&network, pruning.latest_height().await?).await?;
    Ok(())
}

/// Node `index`'s `ferry-chain` metric `series` (an error when it is not exported).
async fn app_metric(network: &Network, index: usize, series: &str) -> TestResult<f64> {
    let validator = network.validators().get(index).ok_or("no such node")?;
    let text = reqwest::get(validator.app_metrics_url()).await?.text().await?;
    Ok(metric(&text, series).ok_or_else(|| format!("node {index} exports no {series}"))?)
}

/// Snapshots every [`SNAPSHOT_INTERVAL`] heights, cut into 2 KiB chunks (many chunks per snapshot).
const SNAPSHOT_INTERVAL: u64 = 50;

/// A fifth node joins a running 4-validator network by state sync: it restores a validator
/// snapshot (its store starts at the snapshot's height — nothing before it was replayed), its
/// chunks checked one by one: three of the four validators serve corrupted chunks, each refused
/// and fetched again from the honest one. It then follows the chain with the same app hash and
/// takes transactions.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_joins_by_state_sync_refusing_corrupt_chunks_and_follows_with_the_same_app_hash() -> TestResult {
    let _serial = serial().await;
    let mut spec = NetworkSpec::isolated("statesync", 4, accounts::genesis(USERS, 4)?)?;
    spec.snapshot_interval = SNAPSHOT_INTERVAL;
    spec.snapshot_chunk_bytes = Some(2048);
    let mut network = start_spec(spec).await?;
    ferry_devnet::funding::attest_openings(&network, USERS).await?;
    // Right after every validator wrote a snapshot, so the next one is far off while the
    // joining node picks one.
    let started = std::time::Instant::now();
    loop {
        let mut written = Vec::new();
        for index in 0..4 {
            written.push(app_metric(&network, index, "ferry_chain_snapshot_height").await?);
        }
        let height = network.client(0)?.latest_height().await?;
        let newest = height / SNAPSHOT_INTERVAL * SNAPSHOT_INTERVAL;
        if newest > 0 && height < newest + 5 && written.iter().all(|written| *written == newest as f64) {
            break;
        }
        if started.elapsed() > 2 * WAIT {
            return Err(format!("no fresh snapshot on every validator: {written:?} at height {height}").into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut corrupted = 0;
    for validator in &network.validators()[..3] {
        for snapshot in std::fs::read_dir(validator.home.join("ferry/snapshots"))? {
            for file in std::fs::read_dir(snapshot?.path())? {
                let path = file?.path();
                if path.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.starts_with("chunk-")) {
                    let mut bytes = std::fs::read(&path)?;
                    if let Some(byte) = bytes.get_mut(7) {
                        *byte ^= 0x55;
                    }
                    std::fs::write(&path, bytes)?;
                    corrupted += 1;
                }
            }
        }
    }
    assert!(corrupted >= 6, "only {corrupted} chunks to corrupt");

    let joined = network.join_by_state_sync().await?;
    let node = network.client(joined)?;
    let tip = network.client(0)?.latest_height().await?;
    node.wait_for_height(tip, 2 * WAIT).await?;
    let refused = app_metric(&network, joined, "ferry_chain_snapshot_chunks_refused_total").await?;
    assert!(refused >= 1.0, "no corrupt chunk was refused");
    let log = common::log_tail(&network.validators()[joined].home.join("app.log"), 400);
    assert!(log.contains("snapshot restored"), "{log}");
    // Nothing before the snapshot was replayed: its store starts there, CometBFT's blocks too.
    match node.query::<ReservesView>(RESERVES_PATH, Some(1)).await {
        Err(ClientError::Query { code, .. }) if code == QUERY_PRUNED => {}
        other => return Err(format!("the joined node answered height 1: {other:?}").into()),
    }
    // CometBFT's own view once it has caught up: its block store starts after the snapshot.
    let started = std::time::Instant::now();
    let status = loop {
        let status = node.rpc().status().await?;
        if !status.sync_info.catching_up && status.sync_info.latest_block_height.value() >= tip {
            break status;
        }
        if started.elapsed() > WAIT {
            return Err(format!("the joined node's CometBFT did not catch up: {:?}", status.sync_info).into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(status.sync_info.earliest_block_height.value() > 1, "{:?}", status.sync_info);

    let mut alice = Wallet::load(&node, user_key(2)?).await?;
    let sent = alice.send(&node, user_key(3)?.address(), vec![Coin::new(3, Denom::sat())], &fee(), WAIT).await?;
    assert_eq!(sent.code, 0, "{}", sent.log);
    assert_app_hashes_agree(&network, sent.height).await?;
    Ok(())
}
