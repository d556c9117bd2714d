//! The node's ABCI handlers in process: genesis, blocks, restart from disk, queries at heights.

use bytes::Bytes;
use ferry_chain::metrics::Metrics;
use ferry_chain::{Fatal, Node, Store, in_process};
use ferry_types::genesis::Federation;
use ferry_types::msg::{MsgAttestDeposit, MsgSend};
use ferry_types::query::{BalancesView, QUERY_BAD_HEIGHT};
use ferry_types::{AccountKey, Coin, Denom, DepositFacts, GenesisState, Msg, Params, ParentChain, TxBuilder};
use tendermint::v0_38::abci::request;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CHAIN_ID: &str = "ferry-node-test";

fn alice() -> Result<AccountKey, ferry_types::key::KeyError> {
    AccountKey::from_seed("node-test/alice")
}

fn minter() -> Result<AccountKey, ferry_types::key::KeyError> {
    AccountKey::from_seed("node-test/minter")
}

/// A one-member federation (quorum 1): its attestation alone mints alice's deposit.
fn genesis_json() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let genesis = GenesisState {
        accounts: Vec::new(),
        federation: Federation { members: vec![minter()?.address()], attest_quorum: 1, ..Federation::default() },
        params: Params::default(),
    };
    Ok(serde_json::to_vec(&genesis)?)
}

/// The minter's attestation of a 1,000,000 sat Bitcoin deposit to alice (what funds her).
fn deposit_to_alice() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let facts = DepositFacts {
        chain: ParentChain::Bitcoin,
        tx_id: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b".to_owned(),
        index: 0,
        asset: Denom::sat(),
        amount: ferry_types::Amount::new(1_000_000),
        recipient: alice()?.address(),
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    };
    let minter = minter()?;
    let msg = Msg::AttestDeposit(MsgAttestDeposit { attester: minter.address(), facts });
    Ok(TxBuilder::new(CHAIN_ID, 0).sign_fee_exempt(&minter, 0, &[msg])?)
}

fn init_request(app_state: Vec<u8>) -> Result<request::InitChain, Box<dyn std::error::Error>> {
    Ok(in_process::init_chain(CHAIN_ID, app_state)?)
}

fn block(height: u64, txs: Vec<Vec<u8>>) -> Result<request::FinalizeBlock, Box<dyn std::error::Error>> {
    Ok(in_process::finalize_block(height, &txs)?)
}

fn transfer(sequence: u64, amount: u128) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let key = alice()?;
    let msg = Msg::Send(MsgSend {
        from: key.address(),
        to: ferry_types::Address::from_bytes([3; 20]),
        amount: vec![Coin::new(amount, Denom::sat())],
    });
    // Alice's account is number 1: the minter's (0) exists from genesis, hers from the deposit.
    Ok(TxBuilder::new(CHAIN_ID, 1).sign(&key, sequence, &Coin::new(100, Denom::sat()), &[msg])?)
}

fn query(node: &Node, path: &str, height: u64) -> Result<tendermint::v0_38::abci::response::Query, Fatal> {
    node.query(request::Query {
        data: Bytes::new(),
        path: path.to_owned(),
        height: height.try_into().unwrap_or_default(),
        prove: false,
    })
}

#[test]
fn invalid_genesis_is_refused_with_the_reason() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = Node::new(Store::open(&dir.path().join("s.redb"))?, Metrics::new()?)?;
    let error = node.init_chain(init_request(br#"{"accounts":"nope"}"#.to_vec())?).err().ok_or("accepted")?;
    assert!(matches!(error, Fatal::Genesis(_)), "{error}");
    assert!(error.to_string().contains("app_state"), "{error}");
    Ok(())
}

#[test]
fn restarted_node_resumes_at_its_last_commit_and_answers_queries_at_old_heights() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (hash_after_3, hash_after_4) = {
        let node = Node::new(Store::open(&path)?, Metrics::new()?)?;
        let genesis_hash = node.init_chain(init_request(genesis_json()?)?)?.app_hash;
        // InitChain again (CometBFT does after a crash before block 1): same answer.
        assert_eq!(node.init_chain(init_request(genesis_json()?)?)?.app_hash, genesis_hash);
        let funding = node.finalize_block(block(1, vec![deposit_to_alice()?])?)?;
        assert!(funding.tx_results.iter().all(|r| r.code.is_ok()), "{:?}", funding.tx_results);
        node.commit()?;
        let first = node.finalize_block(block(2, vec![transfer(0, 10)?])?)?;
        assert!(first.tx_results.iter().all(|r| r.code.is_ok()), "{:?}", first.tx_results);
        node.commit()?;
        let second = node.finalize_block(block(3, vec![transfer(1, 20)?, b"garbage".to_vec()])?)?;
        assert_eq!(second.tx_results.get(1).map(|r| r.code.value()), Some(1), "garbage is a decode error");
        node.commit()?;
        // Block 4 is finalized but the node "crashes" before Commit.
        let fourth = node.finalize_block(block(4, vec![transfer(2, 30)?])?)?;
        (second.app_hash, fourth.app_hash)
    };
    let node = Node::new(Store::open(&path)?, Metrics::new()?)?;
    let info = node.info()?;
    assert_eq!(info.last_block_height.value(), 3);
    assert_eq!(info.last_block_app_hash, hash_after_3);
    // CometBFT replays block 4: the same app hash comes out.
    assert_eq!(node.finalize_block(block(4, vec![transfer(2, 30)?])?)?.app_hash, hash_after_4);
    node.commit()?;

    let recipient = ferry_types::Address::from_bytes([3; 20]);
    let balance_at = |height: u64| -> Result<u128, Box<dyn std::error::Error>> {
        let answer = query(&node, &format!("/balances/{recipient}"), height)?;
        let view: BalancesView = serde_json::from_slice(&answer.value)?;
        Ok(view.balances.first().map_or(0, |c| c.amount.get()))
    };
    assert_eq!(balance_at(2)?, 10);
    assert_eq!(balance_at(3)?, 30);
    assert_eq!(balance_at(0)?, 60, "height 0 means latest");
    assert_eq!(query(&node, "/params", 9)?.code.value(), QUERY_BAD_HEIGHT);
    Ok(())
}
