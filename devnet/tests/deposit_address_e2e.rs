//! Deposit addresses on the whole system (real btcd with `--rejectnonstd`, PostgreSQL, four
//! validators, relayer and signer processes): a user registers their own Bitcoin deposit address
//! with `ferry deposit-address` — before the chain knows their account — and a plain wallet (no
//! memo, not Ferry's CLI) pays it. The payment mints to that account exactly once; another
//! account's address is another address and mints nothing of it; a withdrawal then spends the
//! deposit address's UTXO beside a memo deposit's plain peg UTXO, each input with its own witness
//! script, in a release btcd mines, and the peg reconciles to the satoshi.

mod common;

use std::time::Duration;

use bitcoin::{Amount as Sats, OutPoint, TxOut};
use common::cli::{User, write};
use common::{TestResult, WAIT, serial};
use ferry_app::query::ReservesView;
use ferry_devnet::system::System;
use ferry_types::deposit_record::DepositStatus;
use ferry_types::query::WithdrawalStatus;
use ferry_types::{AccountKey, Address, Denom};

/// The confirmations [`System::isolated`]'s relayers wait for.
const CONFIRMATIONS: u32 = ferry_devnet::system::ISOLATED_CONFIRMATIONS;
/// A parent-chain block is mined this often while the test waits.
const PARENT_BLOCK: Duration = Duration::from_millis(300);
/// What the plain wallet pays alice's deposit address.
const PAID: u64 = 5 * 100_000_000;
/// What alice then deposits with a memo to the peg.
const MEMO_DEPOSIT: u64 = 100_000_000;
/// What alice withdraws: more than either deposit, so the release spends both.
const WITHDRAWN: u128 = 550_000_000;
/// Alice's key (a test secret; never holds value elsewhere).
const ALICE_SECRET: &str = "6a2f8e3d5c4b3a29180f7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c4b3a2918";

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_wallet_pays_a_deposit_address_which_mints_once_to_its_account_and_a_release_spends() -> TestResult {
    let _serial = serial().await;
    // No devnet user: the reserves are alice's deposits alone.
    let mut system = System::isolated("deposit-addr", 0).await?;
    let client = system.client(0)?;
    let home = tempfile::tempdir()?;
    let user = User::of_system(&system, home.path(), CONFIRMATIONS)?;
    let secret = write(home.path(), "alice.secret", ALICE_SECRET)?;
    let alice = user.json(&["keys", "import", "alice", "--secret-file", &secret])?;
    user.json(&["keys", "add", "bob"])?;
    let alice_account: Address = alice["account"].as_str().ok_or("account")?.parse()?;
    assert!(client.account(&alice_account, None).await?.is_none(), "alice must be new to the chain");

    // Registering opens alice's account (fee-exempt: she holds nothing) and prints a QR code.
    let first = user.json(&["--from", "alice", "deposit-address"])?;
    assert_eq!(first["registered_now"], true, "{first}");
    let again = user.json(&["--from", "alice", "deposit-address"])?;
    assert_eq!(again["registered_now"], false, "{again}");
    assert_eq!(again["address"], first["address"], "registering twice gives the same address");
    assert_eq!(first["uri"].as_str(), first["address"].as_str().map(|a| format!("bitcoin:{a}")).as_deref());
    let bob = user.json(&["--from", "bob", "deposit-address"])?;
    assert_ne!(bob["address"], first["address"], "each account has its own address");
    let shown = user.run(&["--from", "alice", "deposit-address"])?;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success() && text.contains('█') && text.contains(first["address"].as_str().ok_or("address")?));

    // A plain wallet pays alice's address: one output, no memo.
    let address: bitcoin::Address = first["address"]
        .as_str()
        .ok_or("address")?
        .parse::<bitcoin::Address<_>>()?
        .require_network(bitcoin::Network::Regtest)?;
    let rpc = system.parents.btcd.rpc();
    let payment = TxOut { value: Sats::from_sat(PAID), script_pubkey: address.script_pubkey() };
    let txid = system.parents.miner.pay(&rpc, vec![payment]).await?;
    let paid_tx = rpc.get_raw_transaction(&txid).await?;
    let vout = paid_tx.output.iter().position(|out| out.script_pubkey == address.script_pubkey()).ok_or("no output")?;
    assert!(paid_tx.output.iter().all(|out| !out.script_pubkey.is_op_return()), "a plain payment carries no memo");

    let record = system.wait_for_deposit(&txid, u32::try_from(vout)?, PARENT_BLOCK, WAIT).await?;
    let minted = record.minted.as_ref().ok_or("not minted")?;
    assert_eq!(record.status, DepositStatus::Minted);
    assert_eq!((minted.recipient, minted.deposit_address), (alice_account, true));
    let expected = common::btc_minted_to(&client, u128::from(PAID), Some(&alice_account)).await?;
    assert_eq!(record.minted_amount.map(|a| a.get()), Some(expected));
    // `ferry status <txid>` finds it by its output to alice's address.
    let status = user.json(&["--from", "alice", "status", &txid.to_string()])?;
    assert_eq!(
        (status["id"].as_str(), status["stage"].as_str()),
        (Some(record.id.as_str()), Some("minted")),
        "{status}"
    );
    // Exactly once: more blocks and relayer rounds change nothing; bob got nothing.
    system.mine_parents(3).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(common::balance(&client, &alice_account, &Denom::sat()).await?, expected);
    let bob_account: Address = bob["account"].as_str().ok_or("account")?.parse()?;
    assert_eq!(common::balance(&client, &bob_account, &Denom::sat()).await?, 0);
    let reserves: ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let utxo = reserves
        .bitcoin_utxos
        .iter()
        .find(|utxo| utxo.txid == txid.to_string() && usize::try_from(utxo.vout).ok() == Some(vout))
        .ok_or("the payment is not a reserve UTXO")?;
    assert_eq!(utxo.owner, Some(alice_account), "the reserve knows which script spends it");

    // A memo deposit to the peg's own script beside it.
    let memo_txid = system.deposit_btc(&alice_account, MEMO_DEPOSIT).await?;
    let memo_record = system.wait_for_deposit(&memo_txid, 0, PARENT_BLOCK, WAIT).await?;
    assert_eq!(memo_record.minted.as_ref().map(|facts| facts.deposit_address), Some(false));

    // Alice withdraws more than either: the release spends both UTXOs, the signers rebuild each
    // input's witness script from the chain's record, and btcd mines it.
    let key = AccountKey::from_secret_bytes(&hex::decode(ALICE_SECRET)?)?;
    let destination = ferry_devnet::btcd::RegtestWallet::from_seed([0x62; 32])?.address().to_string();
    let (id, _) = system.withdraw(&key, &Denom::sat(), WITHDRAWN, &destination).await?;
    let released = system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, WAIT).await?;
    let release: bitcoin::Txid = released.release_tx.as_deref().ok_or("no release tx")?.parse()?;
    let release_tx = rpc.get_raw_transaction(&release).await?;
    let spent = OutPoint { txid, vout: u32::try_from(vout)? };
    let memo_spent = OutPoint { txid: memo_txid, vout: 0 };
    for outpoint in [spent, memo_spent] {
        assert!(release_tx.input.iter().any(|input| input.previous_output == outpoint), "{release_tx:?}");
    }
    assert!(system.parents.btcd.unspent_output(&spent).await?.is_none());
    common::assert_bitcoin_reconciled(&system).await?;
    Ok(())
}
