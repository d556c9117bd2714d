//! A withdrawal two of four signers refuse, on the whole system: their signers refuse the batch
//! holding it (the destination is on their local denylists) and vote to abort it naming that
//! withdrawal; with two of four refusing the batch can never reach its 3 signatures, so the chain
//! aborts it; the other withdrawals are paid in a new batch; the refused one is held, then
//! refunded to the sender by three members running `ferry-signer held refund`. Nothing is lost:
//! supply, reserves and the peg's UTXOs reconcile with btcd.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{TestResult, WAIT, serial, wait_until};
use ferry_devnet::accounts::user_key;
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::system::System;
use ferry_types::Denom;
use ferry_types::query::{BatchStatus, BatchView, WithdrawalStatus, WithdrawalView};

const PARENT_BLOCK: Duration = Duration::from_millis(400);
const RELEASE_WAIT: Duration = Duration::from_secs(120);
const BTC: u64 = 100_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawal_two_signers_refuse_is_held_and_refunded_and_the_rest_of_its_batch_is_paid() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("abort", 1).await?;
    let user = user_key(0)?;
    let address = user.address();
    let client = system.client(0)?;
    let before = common::balance(&client, &address, &Denom::sat()).await?;
    let opened = common::assert_bitcoin_reconciled(&system).await?.0.reserves.get();
    let txid = system.deposit_btc(&address, BTC).await?;
    let minted = system.wait_for_deposit(&txid, 0, PARENT_BLOCK, WAIT).await?.minted_amount.ok_or("not minted")?;
    system.wait_for_balance(&address, &Denom::sat(), before + minted.get(), PARENT_BLOCK, WAIT).await?;

    let refused_destination = RegtestWallet::from_seed([0xab; 32])?.address().to_string();
    let paid_destination = RegtestWallet::from_seed([0xac; 32])?.address().to_string();
    for member in [0, 1] {
        let denied = refused_destination.clone();
        system.signers[member].reconfigure(|spec| spec.deny_destinations = vec![denied])?;
    }

    // Three withdrawals, usually in one batch (burned within one batch interval).
    let (first, _) = system.withdraw(&user, &Denom::sat(), 40_000, &paid_destination).await?;
    let (refused, _) = system.withdraw(&user, &Denom::sat(), 50_000, &refused_destination).await?;
    let (last, _) = system.withdraw(&user, &Denom::sat(), 60_000, &paid_destination).await?;
    let balance_after_burns = common::balance(&client, &address, &Denom::sat()).await?;

    // The refused one is held; the others are released (by a batch without it).
    // Blocks keep coming: if the three did not share a batch, an earlier one must settle (its
    // change back in the reserves) before the rest can be batched.
    let held = wait_until("the refused withdrawal is held", RELEASE_WAIT, || async {
        system.mine_parents(1).await?;
        let view = system.withdrawal(refused).await?;
        Ok((view.status == WithdrawalStatus::Held).then_some(view))
    })
    .await;
    let held = match held {
        Ok(held) => held,
        Err(error) => {
            for member in 0..4 {
                eprintln!("signer {member}:\n{}", common::log_tail(&system.signers[member].log_path(), 15));
            }
            eprintln!("{:?}", system.withdrawal(refused).await?);
            return Err(error);
        }
    };
    let aborted_batch = held.withdrawal.held.as_ref().ok_or("no held record")?.batch;
    let aborted: BatchView = client.query(&format!("/batch/{aborted_batch}"), None).await?.ok_or("no batch")?;
    assert_eq!(aborted.batch.status, BatchStatus::Aborted);
    assert_eq!(aborted.batch.abort_votes.len(), 2, "members 0 and 1 voted: {:?}", aborted.batch.abort_votes);
    for vote in aborted.batch.abort_votes.values() {
        assert_eq!(vote.items, [refused], "each vote names the refused withdrawal");
        assert!(vote.reason.contains("denylist"), "{}", vote.reason);
    }
    for id in [first, last] {
        let view = system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, RELEASE_WAIT).await?;
        assert_ne!(view.withdrawal.batch, Some(aborted_batch), "{id} paid by another batch");
    }
    // The refusing signers audited their votes.
    for member in [0, 1] {
        let store = ferry_signer::store::Store::connect(&system.signers[member].spec().database_url).await?;
        let entries = store.entries_for(aborted_batch).await?;
        assert!(entries.iter().any(|entry| entry.kind == ferry_signer::store::kind::ABORT_VOTE), "member {member}");
    }

    // Three members vote the refund with the operator command; two are not a quorum.
    let signer_binary = ferry_devnet::signer::binary()?;
    for (count, member) in [0usize, 2, 3].into_iter().enumerate() {
        let output = Command::new(&signer_binary)
            .args(["--json", "--config"])
            .arg(system.signers[member].config_path())
            .env("FERRY_SIGNER_DATABASE_URL", &system.signers[member].spec().database_url)
            .args(["held", "refund", &refused.to_string()])
            .output()?;
        assert!(output.status.success(), "member {member}: {}", String::from_utf8_lossy(&output.stderr));
        // Read where the vote was included: node 0 may not have committed that block yet.
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let height = printed["height"].as_u64().ok_or("the vote's output names no height")?;
        client.wait_for_height(height, WAIT).await?;
        let view: WithdrawalView =
            client.query(&format!("/withdrawal/{refused}"), Some(height)).await?.ok_or("no withdrawal")?;
        let status = view.status;
        let expected = if count < 2 { WithdrawalStatus::Held } else { WithdrawalStatus::Refunded };
        assert_eq!(status, expected, "after {} votes", count + 1);
    }
    let refunded_balance = common::balance(&client, &address, &Denom::sat()).await?;
    assert_eq!(refunded_balance, balance_after_burns + 50_000, "the sender got the held amount back");

    // Nothing owed, nothing lost: the ledger and btcd agree.
    let (ledger, reserves) = common::assert_bitcoin_reconciled(&system).await?;
    assert!(ledger.unreleased.is_zero(), "{ledger:?}");
    assert_eq!(ledger.reserves.get(), opened + u128::from(BTC) - 100_000, "reserves fell by the two paid withdrawals");
    assert!(reserves.bitcoin_utxos.iter().all(|utxo| utxo.locked_by.is_none()));
    Ok(())
}
