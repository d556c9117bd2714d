//! Bitcoin release fees on the whole system (`devnet::system`: PostgreSQL, btcd regtest with
//! `--rejectnonstd`, anvil, 4 validators, a relayer and a signer per member, 3 of 4).
//!
//! The chain prices each release at the rate it keeps: the fee is the rate × the release's size
//! with the longest signatures, carved out of the withdrawals it pays. The relayers feed the
//! chain's parent clock; a release mined one block after its signing is faster than the target,
//! so the controller lowers the rate for the next. A withdrawal whose budget is below its share
//! at today's rate waits, says why, and holds nothing back. Every satoshi reconciles with btcd.

mod common;

use std::time::Duration;

use bitcoin::{OutPoint, Txid};
use common::{TestResult, WAIT, serial, wait_until};
use ferry_devnet::accounts::user_key;
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::system::System;
use ferry_types::genesis::Federation;
use ferry_types::peg::Peg;
use ferry_types::query::{
    BITCOIN_FEES_PATH, BatchRelease, BatchView, BitcoinFeesView, WithdrawalId, WithdrawalStatus, WithdrawalView,
};
use ferry_types::release::bitcoin::lone_release_fee;
use ferry_types::{Amount, Denom};

/// A parent-chain block is mined this often while a release gathers its confirmations.
const PARENT_BLOCK: Duration = Duration::from_millis(400);
/// How long one withdrawal may take from burn to settled release.
const RELEASE_WAIT: Duration = Duration::from_secs(120);

const BTC: u64 = 100_000_000;

async fn fees(system: &System) -> TestResult<BitcoinFeesView> {
    Ok(system.client(0)?.query(BITCOIN_FEES_PATH, None).await?.ok_or("no /bitcoin/fees")?)
}

/// Waits until the chain's parent clock has reached btcd's tip (the relayers report it).
async fn clock_caught_up(system: &System) -> TestResult<u64> {
    let tip = system.parents.btcd.rpc().get_block_count().await?;
    wait_until("the parent clock reaches btcd's tip", WAIT, || async {
        Ok(Some(fees(system).await?.parent_height).filter(|height| *height >= tip))
    })
    .await
}

/// Waits until `id`'s batch is signed and its release sits in btcd's mempool (no block mined).
async fn broadcast(system: &System, id: WithdrawalId) -> TestResult<BatchView> {
    let client = system.client(0)?;
    wait_until("the release is in btcd's mempool", RELEASE_WAIT, || async {
        let view = system.withdrawal(id).await?;
        let Some(batch) = view.withdrawal.batch else { return Ok(None) };
        let batch: BatchView = client.query(&format!("/batch/{batch}"), None).await?.ok_or("no batch")?;
        let BatchRelease::Bitcoin(release) = &batch.batch.release else { return Err("not a Bitcoin batch".into()) };
        let txid: Txid = release.txid.parse()?;
        let known = system.parents.btcd.rpc().get_transaction_status(&txid).await?;
        Ok(known.map(|_| batch))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_pay_the_chains_rate_by_size_the_rate_falls_after_fast_releases_and_a_small_budget_waits() -> TestResult
{
    let _serial = serial().await;
    let mut system = System::isolated("btc-fees", 1).await?;
    let user = user_key(0)?;
    let address = user.address();
    let client = system.client(0)?;
    let before = common::balance(&client, &address, &Denom::sat()).await?;
    // The ledger after the user's opening deposit (the test's figures are on top of it).
    let opened = common::assert_bitcoin_reconciled(&system).await?.0;
    // A payment below the chain's minimum deposit is recorded, never minted, and counted apart.
    let tiny_txid = system.deposit_btc(&address, 2_000).await?;
    let txid = system.deposit_btc(&address, BTC).await?;
    let deposit = system.wait_for_deposit(&txid, 0, PARENT_BLOCK, WAIT).await?;
    let minted = deposit.minted_amount.ok_or("not minted")?.get();
    // It prepaid its own spending, at the chain's rate, into the fee pool.
    let prepaid = deposit.spend_fee.ok_or("nothing prepaid")?.get();
    assert_eq!(minted + prepaid, u128::from(BTC));
    system.wait_for_balance(&address, &Denom::sat(), before + minted, PARENT_BLOCK, WAIT).await?;
    let tiny: ferry_types::deposit_record::DepositRecord = wait_until("the small deposit is decided", WAIT, || async {
        let record: Option<ferry_types::deposit_record::DepositRecord> =
            client.query(&format!("/deposit/btc:{tiny_txid}:0"), None).await?;
        Ok(record.filter(|record| record.status != ferry_types::deposit_record::DepositStatus::Pending))
    })
    .await?;
    assert_eq!(tiny.status, ferry_types::deposit_record::DepositStatus::BelowMinimum);
    assert_eq!(common::balance(&client, &address, &Denom::sat()).await?, before + minted, "not minted");
    let federation: Federation = client.query("/federation", None).await?.ok_or("no federation")?;
    let peg = Peg::new(&federation.bitcoin.ok_or("no peg")?)?;
    let start = fees(&system).await?;
    let destination = RegtestWallet::from_seed([0xf1; 32])?.address().to_string();

    // A budget that pays a lone release at the floor rate: accepted, but below its share at the
    // start rate, so it waits — saying why — and the withdrawals after it go.
    let small = 100_000;
    let floor_fee = lone_release_fee(&peg, &destination, Amount::new(small), 1, start.min_fee_rate)?;
    let (patient, _) = system.withdraw_with_budget(&user, &Denom::sat(), small, &destination, floor_fee.get()).await?;

    let mut rate = start.fee_rate;
    let mut burned = small;
    for round in 0..2 {
        let amount = 200_000 + round * 10_000;
        clock_caught_up(&system).await?;
        let (id, _) = system.withdraw(&user, &Denom::sat(), amount, &destination).await?;
        burned += amount;
        let batch = broadcast(&system, id).await?;
        let BatchRelease::Bitcoin(release) = &batch.batch.release else { return Err("not a Bitcoin batch".into()) };
        assert_eq!(release.fee_rate, rate, "round {round}: priced at the chain's rate");
        let items: Vec<WithdrawalId> = batch.batch.items.iter().map(|item| item.withdrawal).collect();
        assert_eq!(items, [id], "round {round}: the waiting withdrawal is not in the batch");

        // The transaction btcd accepted: its real fee is the plan's, at least the rate × its size
        // and at most one byte per signature more (signatures are 71 or 72 bytes).
        let txid: Txid = release.txid.parse()?;
        let tx = system.parents.btcd.rpc().get_raw_transaction(&txid).await?;
        let vsize = u128::from(u64::try_from(tx.vsize())?);
        let fee = release.plan.fee().get();
        let per_vb = u128::from(rate.sat_per_kvb());
        let signatures = u128::try_from(tx.input.len() * 3)?;
        assert!(fee * 1_000 >= per_vb * vsize, "round {round}: fee {fee} sat below {rate} × {vsize} vB");
        assert!(
            fee * 1_000 <= per_vb * (vsize + signatures),
            "round {round}: fee {fee} sat above {rate} × ({vsize} + {signatures}) vB"
        );

        // Mined in the next block: one parent block after signing, below the 3-block target.
        system.parents.btcd.mine(1).await?;
        let released: WithdrawalView =
            system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, RELEASE_WAIT).await?;
        let paid = released.paid.ok_or("released without a paid amount")?.get();
        assert_eq!(amount - paid, fee, "round {round}: a lone withdrawal pays the whole fee");
        assert!(fee <= released.withdrawal.max_fee.get(), "round {round}: within its budget");
        let output = system.parents.btcd.unspent_output(&OutPoint { txid, vout: 0 }).await?.ok_or("no payment")?;
        assert_eq!(u128::from(output.value.to_sat()), paid, "round {round}: btcd holds what the chain says it paid");

        let after = fees(&system).await?;
        eprintln!(
            "round {round}: {fee} sat for {vsize} vB signed at {rate}; waited {:?} blocks; next rate {}",
            after.last_release_waited, after.fee_rate
        );
        assert!(after.last_release_waited.is_some_and(|waited| waited < after.target_confirm_blocks), "{after:?}");
        assert!(after.fee_rate < rate && after.fee_rate >= after.min_fee_rate, "round {round}: {rate} → {after:?}");
        rate = after.fee_rate;
    }

    let waiting = system.withdrawal(patient).await?;
    assert_eq!(waiting.status, WithdrawalStatus::Queued);
    let reason = waiting.withdrawal.waiting.ok_or("no waiting reason")?;
    assert!(reason.contains(&format!("above its max_fee of {floor_fee} sat")), "{reason}");

    // The ledger and btcd agree to the satoshi: reserves fell by exactly what the released ones
    // burned; the waiting one is still owed.
    let (ledger, _) = common::assert_bitcoin_reconciled(&system).await?;
    assert_eq!(ledger.unreleased.get(), small, "the waiting withdrawal is owed");
    assert_eq!(ledger.below_minimum.get(), 2_000, "the small deposit is counted apart from the reserves");
    assert_eq!(ledger.reserves.get(), opened.reserves.get() + u128::from(BTC) - (burned - small));
    assert_eq!(ledger.fee_pool.get(), opened.fee_pool.get() + prepaid, "the deposit's prepayment is in the fee pool");
    Ok(())
}
