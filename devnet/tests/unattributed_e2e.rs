//! Unattributed payments on the whole system (real btcd with `--rejectnonstd`, PostgreSQL, four
//! validators, relayer and signer processes): Bitcoin paid to the peg as a new user's third-party
//! wallet would — one memo with a wrong tag, one transaction with two memos (which btcd's relay
//! policy refuses and a miner may still mine) — mints nothing, yet is not lost. A quorum of
//! relayers records each as unattributed with its reason; the chain holds it in the reserves;
//! `ferry status <txid>` says what happened and what its owner can do; a gauge counts them. Below
//! the quorum, members' votes do nothing; at the quorum one payment is credited to an account and
//! the other refunded to a Bitcoin address, where btcd shows it arriving. The same for ERC-20
//! tokens that reach the vault without `depositToken`: held, credited, refunded by the vault.

mod common;

use std::process::Command;
use std::time::Duration;

use bitcoin::script::PushBytesBuf;
use bitcoin::{Amount as Sats, ScriptBuf, TxOut};
use common::cli::User;
use common::{TestResult, WAIT, serial, wait_until};
use ferry_devnet::system::System;
use ferry_parent_chains::ethereum::U256;
use ferry_types::deposit::Unattributed;
use ferry_types::deposit_record::DepositRecord;
use ferry_types::peg::deposit_memo;
use ferry_types::query::{UNATTRIBUTED_PATH, UnattributedPage, WithdrawalId, WithdrawalStatus};
use ferry_types::{AccountKey, Address, Denom};

/// A parent-chain block is mined this often while the test waits.
const PARENT_BLOCK: Duration = Duration::from_millis(300);
/// The payment whose memo has the wrong tag.
const WRONG_TAG_SATS: u64 = 20_000_000;
/// The payment carrying two memos.
const TWO_MEMOS_SATS: u64 = 30_000_000;
/// Test tokens minted straight to the vault and then credited (2 tokens of 18 decimals).
const CREDITED_TOKENS: u128 = 2_000_000_000_000_000_000;
/// Test tokens minted straight to the vault and then refunded.
const REFUNDED_TOKENS: u128 = 1_000_000_000_000_000_000;
/// The refund's budget for its share of the miner fee.
const REFUND_MAX_FEE: u64 = 100_000;

/// `ferry-signer --json --config <member's> unattributed <args>` (through the member's own
/// node); returns its JSON answer once validator 0, which the test reads, has committed the
/// vote's block.
async fn signer_vote(system: &System, member: usize, args: &[&str]) -> TestResult<serde_json::Value> {
    let output = Command::new(ferry_devnet::signer::binary()?)
        .args(["--json", "--config"])
        .arg(system.signers[member].config_path())
        .env("FERRY_SIGNER_DATABASE_URL", &system.signers[member].spec().database_url)
        .arg("unattributed")
        .args(args)
        .output()?;
    if !output.status.success() {
        return Err(format!("member {member} {args:?}: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    if let Some(height) = answer["height"].as_u64() {
        system.client(0)?.wait_for_height(height + 1, common::WAIT).await?;
    }
    Ok(answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn payments_naming_no_account_are_held_then_credited_or_refunded_by_a_member_quorum() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("unattributed", 0).await?;
    let client = system.client(0)?;
    let reader = system.network.verified_reader(0)?;
    let peg = ferry_relayer::service::peg(ferry_relayer::service::latest_proven(&client, &reader).await?).await?;
    let carol = AccountKey::from_secret_bytes(&[0x71; 32])?.address();
    let dave = AccountKey::from_secret_bytes(&[0x72; 32])?.address();

    // A wallet library's payments: a memo tagged FERRY2, and two FERRY1 memos.
    let mut wrong = b"FERRY2".to_vec();
    wrong.extend_from_slice(carol.as_bytes());
    let wrong_memo = ScriptBuf::new_op_return(PushBytesBuf::try_from(wrong)?);
    let to_peg = |sats: u64| TxOut { value: Sats::from_sat(sats), script_pubkey: peg.script_pubkey() };
    let memo = |script: ScriptBuf| TxOut { value: Sats::ZERO, script_pubkey: script };
    let rpc = system.parents.btcd.rpc();
    let wrong_tag = system.parents.miner.pay(&rpc, vec![to_peg(WRONG_TAG_SATS), memo(wrong_memo)]).await?;
    let two_outputs = vec![to_peg(TWO_MEMOS_SATS), memo(deposit_memo(&carol)), memo(deposit_memo(&dave))];
    // btcd (like Bitcoin Core before version 30) relays one OP_RETURN output at most.
    assert!(system.parents.miner.pay(&rpc, two_outputs.clone()).await.is_err(), "btcd relayed two OP_RETURN outputs");
    let two_memos = system.parents.miner.pay_in_block(&system.parents.btcd, two_outputs).await?;
    let wrong_id = format!("btc:{wrong_tag}:0");
    let two_id = format!("btc:{two_memos}:0");

    // A quorum records both as unattributed, with their reasons; nothing is minted.
    let page = wait_until("both payments recorded as unattributed", WAIT, || async {
        system.mine_parents(1).await?;
        tokio::time::sleep(PARENT_BLOCK).await;
        let page: UnattributedPage = client.query(UNATTRIBUTED_PATH, None).await?.ok_or("no /unattributed")?;
        Ok((page.total == 2).then_some(page))
    })
    .await?;
    let reason = |id: &str| page.open.iter().find(|open| open.id.as_str() == id).map(|open| open.reason);
    // FERRY2 is no Ferry memo at all: the payment carries none.
    assert_eq!(reason(&wrong_id), Some(Unattributed::NoMemo), "{page:?}");
    assert_eq!(reason(&two_id), Some(Unattributed::SeveralMemos), "{page:?}");
    let (ledger, _) = common::assert_bitcoin_reconciled(&system).await?;
    assert_eq!(ledger.unattributed.get(), u128::from(WRONG_TAG_SATS + TWO_MEMOS_SATS), "{ledger:?}");
    assert_eq!(ledger.supply.get(), 0, "minted to nobody: {ledger:?}");
    for account in [carol, dave] {
        assert_eq!(common::balance(&client, &account, &Denom::sat()).await?, 0);
    }
    let validator = system.network.validators().first().ok_or("no validator")?;
    let metrics = reqwest::get(validator.app_metrics_url()).await?.text().await?;
    assert_eq!(common::metric(&metrics, "ferry_chain_unattributed_payments"), Some(2.0));

    // The payer asks `ferry status` with the txid: what happened, and what they can do.
    let home = tempfile::tempdir()?;
    let user = User::of_system(&system, home.path(), ferry_devnet::system::ISOLATED_CONFIRMATIONS)?;
    let status = user.json(&["status", &wrong_tag.to_string()])?;
    assert_eq!(status["stage"], "unattributed", "{status}");
    let note = status["note"].as_str().unwrap_or_default();
    assert!(note.contains("no FERRY1 memo") && note.contains("refund"), "{note}");

    // Credit the wrong-tag payment to carol: two votes are below the quorum and change nothing.
    let carol_text = carol.to_string();
    for member in [0, 1] {
        signer_vote(&system, member, &["credit", &wrong_id, &carol_text]).await?;
    }
    assert_eq!(common::balance(&client, &carol, &Denom::sat()).await?, 0, "two votes credited carol");
    let record: DepositRecord = client.query(&format!("/deposit/{wrong_id}"), None).await?.ok_or("no record")?;
    assert!(record.unattributed.as_ref().is_some_and(|state| state.resolved.is_none() && state.votes.len() == 2));
    // A third vote for something else is no quorum either.
    signer_vote(&system, 2, &["credit", &wrong_id, &dave.to_string()]).await?;
    assert_eq!(common::balance(&client, &dave, &Denom::sat()).await?, 0);
    signer_vote(&system, 3, &["credit", &wrong_id, &carol_text]).await?;
    // Carol gets it as a deposit would: the amount less what it prepays for its own spending.
    let record: DepositRecord = client.query(&format!("/deposit/{wrong_id}"), None).await?.ok_or("no record")?;
    let resolved = record.unattributed.and_then(|state| state.resolved).ok_or("not resolved at the quorum")?;
    let (credited, spend_fee) =
        (resolved.credited.ok_or("no credit")?.get(), resolved.spend_fee.ok_or("no spend fee")?.get());
    assert!(spend_fee > 0 && credited + spend_fee == u128::from(WRONG_TAG_SATS), "{credited} + {spend_fee}");
    assert_eq!(common::balance(&client, &carol, &Denom::sat()).await?, credited);
    // Later votes change nothing.
    signer_vote(&system, 2, &["credit", &wrong_id, &carol_text]).await?;
    assert_eq!(common::balance(&client, &carol, &Denom::sat()).await?, credited);

    // Refund the two-memo payment to a Bitcoin address: at the quorum it becomes a withdrawal
    // from the unattributed pool, batched, signed and paid like any other.
    let refund_to = ferry_devnet::btcd::RegtestWallet::from_seed([0x73; 32])?.address().clone();
    let refund_text = refund_to.to_string();
    let max_fee = REFUND_MAX_FEE.to_string();
    let mut answer = serde_json::Value::Null;
    for member in [1, 2, 3] {
        answer = signer_vote(&system, member, &["refund", &two_id, &refund_text, "--max-fee", &max_fee]).await?;
    }
    let withdrawal: WithdrawalId =
        answer["resolved"]["withdrawal"].as_str().ok_or_else(|| format!("no refund withdrawal: {answer}"))?.parse()?;
    let view = system.wait_for_withdrawal(withdrawal, WithdrawalStatus::Released, PARENT_BLOCK, WAIT).await?;
    assert_eq!(view.withdrawal.sender, Address::unattributed_pool());
    let paid = view.paid.ok_or("no paid amount")?.get();
    assert!(paid + u128::from(REFUND_MAX_FEE) >= u128::from(TWO_MEMOS_SATS) && paid < u128::from(TWO_MEMOS_SATS));
    let release: bitcoin::Txid = view.release_tx.as_deref().ok_or("no release tx")?.parse()?;
    let release_tx = rpc.get_raw_transaction(&release).await?;
    let vout = release_tx
        .output
        .iter()
        .position(|out| out.script_pubkey == refund_to.script_pubkey())
        .ok_or("no refund output")?;
    let arrived =
        system.parents.btcd.unspent_output(&bitcoin::OutPoint { txid: release, vout: u32::try_from(vout)? }).await?;
    assert_eq!(arrived.map(|out| u128::from(out.value.to_sat())), Some(paid), "the refund is on btcd");

    // Nothing open, nothing owed to nobody: the ledger and btcd agree to the satoshi.
    let page: UnattributedPage = client.query(UNATTRIBUTED_PATH, None).await?.ok_or("no /unattributed")?;
    assert_eq!(page.total, 0, "{page:?}");
    let (ledger, _) = common::assert_bitcoin_reconciled(&system).await?;
    assert!(ledger.unattributed.is_zero() && ledger.unreleased.is_zero(), "{ledger:?}");
    let status = user.json(&["status", &two_memos.to_string()])?;
    assert_eq!(status["stage"], "resolved", "{status}");
    assert!(status["note"].as_str().is_some_and(|note| note.contains(&withdrawal.to_string())), "{status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_sent_to_the_vault_without_depositing_them_are_held_then_credited_or_refunded() -> TestResult {
    let _serial = serial().await;
    let system = System::isolated("unattributed-eth", 0).await?;
    let client = system.client(0)?;
    let (token, vault) = (system.parents.anvil.token(), system.parents.anvil.vault());
    let denom = Denom::erc20(&system.parents.token());
    // Tokens arrive at the vault without `depositToken` (minted straight to it: a `Transfer` log
    // to the vault and no `Deposited`), twice.
    let wallet = system.parents.anvil.wallet();
    wallet.mint_test_token(token, vault, U256::from(CREDITED_TOKENS)).await?;
    wallet.mint_test_token(token, vault, U256::from(REFUNDED_TOKENS)).await?;
    let page = wait_until("both transfers recorded as unattributed", WAIT, || async {
        system.mine_parents(1).await?;
        tokio::time::sleep(PARENT_BLOCK).await;
        let page: UnattributedPage = client.query(UNATTRIBUTED_PATH, None).await?.ok_or("no /unattributed")?;
        Ok((page.total == 2).then_some(page))
    })
    .await?;
    assert!(page.open.iter().all(|open| open.reason == Unattributed::PlainTransfer), "{page:?}");
    let id_of = |amount: u128| {
        page.open.iter().find(|open| open.amount.get() == amount).map(|open| open.id.to_string()).ok_or("not listed")
    };
    let (credit_id, refund_id) = (id_of(CREDITED_TOKENS)?, id_of(REFUNDED_TOKENS)?);
    let ledger = |reserves: ferry_app::query::ReservesView| reserves.assets.get(&denom).cloned().unwrap_or_default();
    let held = ledger(client.query("/reserves", None).await?.ok_or("no reserves")?);
    assert_eq!((held.unattributed.get(), held.supply.get()), (CREDITED_TOKENS + REFUNDED_TOKENS, 0), "{held:?}");

    // Credit one to carol (no spending cost on Ethereum: the whole amount).
    let carol = AccountKey::from_secret_bytes(&[0x74; 32])?.address();
    for member in [0, 1, 2] {
        signer_vote(&system, member, &["credit", &credit_id, &carol.to_string()]).await?;
    }
    assert_eq!(common::balance(&client, &carol, &denom).await?, CREDITED_TOKENS);
    // Refund the other to an Ethereum address: the vault pays it in a release.
    let refund_to = "0x00000000000000000000000000000000000000e7";
    let mut answer = serde_json::Value::Null;
    for member in [1, 2, 3] {
        answer = signer_vote(&system, member, &["refund", &refund_id, refund_to]).await?;
    }
    let withdrawal: WithdrawalId =
        answer["resolved"]["withdrawal"].as_str().ok_or_else(|| format!("no refund withdrawal: {answer}"))?.parse()?;
    system.wait_for_withdrawal(withdrawal, WithdrawalStatus::Released, PARENT_BLOCK, WAIT).await?;
    let received = wallet.token_balance(token, refund_to.parse()?).await?;
    assert_eq!(received, U256::from(REFUNDED_TOKENS), "the refund reached the address");
    let after = ledger(client.query("/reserves", None).await?.ok_or("no reserves")?);
    assert!(after.unattributed.is_zero() && after.unreleased.is_zero(), "{after:?}");
    assert_eq!((after.supply.get(), after.reserves.get()), (CREDITED_TOKENS, CREDITED_TOKENS), "{after:?}");
    Ok(())
}
