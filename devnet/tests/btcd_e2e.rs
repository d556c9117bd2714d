//! End-to-end against a real btcd (regtest): a deposit paid to the peg address is found by the
//! relayer's scanner in the raw block its RPC client fetches, and a reorganisation replaces the
//! deposit's block at its height — the facts the relayer's confirmation and reorg handling rely on.
//!
//! Every test starts its own btcd on free loopback ports; dropping it kills the process.

mod common;

use std::path::Path;
use std::time::Instant;

use bitcoin::{Amount as Sats, TxOut};
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_parent_chains::bitcoin::RpcError;
use ferry_relayer::bitcoin::scan::{Scanned, scan_block};
use ferry_types::peg::{BitcoinFederation, BitcoinNetwork, Peg, deposit_memo};
use ferry_types::{Address, Amount, Denom, DepositFacts, ParentChain};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Blocks to mine before the first coinbase can be spent.
const MATURE: u32 = 101;

/// The deposit's value, in satoshis.
const DEPOSIT_SATS: u64 = 125_000;

/// A 3-of-4 regtest peg, built as the chain builds it from the federation's keys.
fn peg() -> TestResult<Peg> {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let keys = (1u8..=4)
        .map(|seed| {
            let secret = bitcoin::secp256k1::SecretKey::from_slice(&[seed; 32])?;
            Ok(bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &secret).to_string())
        })
        .collect::<Result<Vec<_>, bitcoin::secp256k1::Error>>()?;
    Ok(Peg::new(&BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: 3, keys })?)
}

/// The outputs of a deposit of [`DEPOSIT_SATS`] to `peg` for `recipient`.
fn deposit_outputs(peg: &Peg, recipient: &Address) -> Vec<TxOut> {
    vec![
        TxOut { value: Sats::from_sat(DEPOSIT_SATS), script_pubkey: peg.script_pubkey() },
        TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(recipient) },
    ]
}

fn expected_deposit(txid: &bitcoin::Txid, recipient: Address) -> Scanned {
    Scanned::Deposit {
        facts: DepositFacts {
            chain: ParentChain::Bitcoin,
            tx_id: txid.to_string(),
            index: 0,
            asset: Denom::sat(),
            amount: Amount::new(u128::from(DEPOSIT_SATS)),
            recipient,
            deposit_address: false,
            unattributed: None,
            peg_epoch: None,
        },
        coinbase: false,
    }
}

#[tokio::test]
async fn deposit_to_the_peg_is_found_in_the_raw_block_fetched_over_rpc() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let mut wallet = RegtestWallet::from_seed([0x11; 32])?;
    let btcd = Btcd::isolated("btcd-deposit", wallet.address()).await?;
    let rpc = btcd.rpc();
    eprintln!("btcd up in {:?}", started.elapsed());

    let mined = btcd.mine(MATURE).await?;
    assert_eq!(mined.len(), MATURE as usize);
    assert_eq!(rpc.get_block_count().await?, u64::from(MATURE));
    eprintln!("{MATURE} blocks mined after {:?}", started.elapsed());

    let peg = peg()?;
    let recipient = Address::from_bytes([0x42; 20]);
    let txid = wallet.pay(&rpc, deposit_outputs(&peg, &recipient)).await?;

    // Unconfirmed, btcd serves it from its mempool.
    let pending = rpc.get_raw_transaction(&txid).await?;
    assert_eq!(pending.compute_txid(), txid);

    let [block_hash] = btcd.mine(1).await?[..] else { return Err("`generate 1` did not return one hash".into()) };
    let height = u64::from(MATURE) + 1;
    assert_eq!(rpc.get_best_block_hash().await?, block_hash);
    assert_eq!(rpc.get_block_hash(height).await?, block_hash);

    let block = rpc.get_block(&block_hash).await?;
    assert!(block.txdata.iter().any(|tx| tx.compute_txid() == txid), "the deposit was not mined");
    assert_eq!(
        scan_block(&block, &ferry_relayer::bitcoin::scan::PegScripts::new(peg.clone())),
        vec![expected_deposit(&txid, recipient)]
    );

    // Confirmed, it is out of the mempool; btcd's transaction index (`--txindex`) still serves it.
    assert_eq!(rpc.get_raw_transaction(&txid).await?.compute_txid(), txid);
    let status = rpc.get_transaction_status(&txid).await?.ok_or("the index lost the deposit")?;
    assert_eq!(status.blockhash.as_deref(), Some(block_hash.to_string().as_str()));
    // Above the tip is an RPC error, not a transport one.
    let error = rpc.get_block_hash(height + 1).await.err().ok_or("a block above the tip")?;
    assert!(matches!(error, RpcError::Rpc { .. }), "{error}");
    eprintln!("deposit found after {:?}", started.elapsed());

    let pid = btcd.pid().ok_or("btcd has no process")?;
    drop(btcd);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "btcd {pid} still running after drop");
    Ok(())
}

#[tokio::test]
async fn reorg_replaces_the_deposit_block_at_its_height() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let mut wallet = RegtestWallet::from_seed([0x22; 32])?;
    let btcd = Btcd::isolated("btcd-reorg", wallet.address()).await?;
    let rpc = btcd.rpc();
    btcd.mine(MATURE).await?;

    let peg = peg()?;
    let recipient = Address::from_bytes([0x43; 20]);
    let txid = wallet.pay(&rpc, deposit_outputs(&peg, &recipient)).await?;
    let deposit_height = u64::from(MATURE) + 1;
    let mined = btcd.mine(3).await?;
    let Some(&deposit_block) = mined.first() else { return Err("nothing mined".into()) };
    assert_eq!(rpc.get_block_hash(deposit_height).await?, deposit_block);
    let seen =
        scan_block(&rpc.get_block(&deposit_block).await?, &ferry_relayer::bitcoin::scan::PegScripts::new(peg.clone()));
    assert_eq!(seen, vec![expected_deposit(&txid, recipient)]);
    let old_tip = rpc.get_block_count().await?;

    // Replace the deposit's block and the two above it with a longer branch.
    let (replaced, branch) = btcd.reorg_from(deposit_height, 4).await?;
    assert_eq!(replaced, mined);
    assert_eq!(branch.len(), 4);
    assert_eq!(rpc.get_block_count().await?, old_tip + 1);

    // What a relayer re-checking its observation sees: another block at that height.
    let now_at_height = rpc.get_block_hash(deposit_height).await?;
    assert_ne!(now_at_height, deposit_block, "the deposit's block is still canonical");
    assert_eq!(Some(&now_at_height), branch.first());
    for (offset, hash) in (0u64..).zip(&branch) {
        assert_eq!(&rpc.get_block_hash(deposit_height + offset).await?, hash);
    }

    // The replaced block can still be read by hash (the node keeps side branches) …
    let orphan = rpc.get_block(&deposit_block).await?;
    assert_eq!(orphan.block_hash(), deposit_block);

    // … and btcd put the deposit back in its mempool, so the new branch mined it again: same
    // deposit id (txid:vout), different block — its confirmations start over.
    let replacement = rpc.get_block(&now_at_height).await?;
    assert_eq!(
        scan_block(&replacement, &ferry_relayer::bitcoin::scan::PegScripts::new(peg.clone())),
        vec![expected_deposit(&txid, recipient)]
    );
    eprintln!("reorg test done in {:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn deposit_double_spent_on_the_replacing_branch_disappears() -> TestResult {
    let _serial = common::serial().await;
    let mut wallet = RegtestWallet::from_seed([0x44; 32])?;
    let btcd = Btcd::isolated("btcd-double-spend", wallet.address()).await?;
    let rpc = btcd.rpc();
    btcd.mine(MATURE).await?;

    let peg = peg()?;
    let recipient = Address::from_bytes([0x44; 20]);
    let deposit = wallet.pay(&rpc, deposit_outputs(&peg, &recipient)).await?;
    let deposit_height = u64::from(MATURE) + 1;
    let [deposit_block] = btcd.mine(1).await?[..] else { return Err("`generate 1` did not return one hash".into()) };
    assert_eq!(
        scan_block(&rpc.get_block(&deposit_block).await?, &ferry_relayer::bitcoin::scan::PegScripts::new(peg.clone())),
        vec![expected_deposit(&deposit, recipient)]
    );

    // The block is reorganised away; while the deposit waits in the mempool again, the payer
    // double-spends its input back to himself (BIP 125), and the new branch mines that.
    btcd.invalidate_block(&deposit_block).await?;
    let refund = TxOut { value: Sats::from_sat(DEPOSIT_SATS), script_pubkey: wallet.address().script_pubkey() };
    let conflict = wallet.replace(&rpc, &deposit, vec![refund]).await?;
    let branch = btcd.mine(2).await?;

    assert_ne!(rpc.get_block_hash(deposit_height).await?, deposit_block);
    let mut mined = Vec::new();
    for hash in &branch {
        let block = rpc.get_block(hash).await?;
        assert!(
            scan_block(&block, &ferry_relayer::bitcoin::scan::PegScripts::new(peg.clone())).is_empty(),
            "a deposit on the new branch"
        );
        mined.extend(block.txdata.iter().map(bitcoin::Transaction::compute_txid));
    }
    assert!(mined.contains(&conflict) && !mined.contains(&deposit), "{mined:?}");
    // Neither confirmed nor pending: the node has forgotten the deposit.
    let error = rpc.get_raw_transaction(&deposit).await.err().ok_or("the double-spent deposit is still known")?;
    assert_eq!(error.rpc_code(), Some(-5), "{error}");
    Ok(())
}

#[tokio::test]
async fn reconsidering_the_invalidated_branch_keeps_the_longer_one() -> TestResult {
    let _serial = common::serial().await;
    let wallet = RegtestWallet::from_seed([0x33; 32])?;
    let btcd = Btcd::isolated("btcd-reconsider", wallet.address()).await?;
    let rpc = btcd.rpc();
    let original = btcd.mine(3).await?;
    let (replaced, branch) = btcd.reorg_from(2, 3).await?;
    assert_eq!(replaced, original.get(1..).unwrap_or_default());
    let Some(&first_replaced) = replaced.first() else { return Err("nothing replaced".into()) };

    // The old branch (2 blocks above height 1) is valid again but has less work than the new
    // one (3 blocks): the best chain does not move.
    btcd.reconsider_block(&first_replaced).await?;
    assert_eq!(rpc.get_block_count().await?, 4);
    assert_eq!(Some(rpc.get_best_block_hash().await?), branch.last().copied());
    Ok(())
}
