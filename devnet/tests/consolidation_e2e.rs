//! Dust-proof reserves on the whole system: 200 deposits of just above the minimum, then one
//! withdrawal larger than any 100 of them. The chain consolidates the fragmented reserves from
//! the fee pool the deposits prepaid, so coin selection finds few large inputs and the release is
//! standard (btcd runs `--rejectnonstd`), pays at least the relay fee, and confirms. Payments
//! below the minimum mint nothing and are reported apart. The ledger and btcd agree to the
//! satoshi.

mod common;

use std::time::Duration;

use bitcoin::{Amount as Sats, OutPoint, TxOut};
use common::{TestResult, serial, wait_until};
use ferry_devnet::accounts::{self, user_key};
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::system::System;
use ferry_types::Denom;
use ferry_types::peg::{Peg, deposit_memo};
use ferry_types::query::{BatchRelease, BatchView, WithdrawalStatus};

const PARENT_BLOCK: Duration = Duration::from_millis(300);
/// 200 deposits are attested one transaction at a time by each relayer.
const MINT_WAIT: Duration = Duration::from_secs(400);
const RELEASE_WAIT: Duration = Duration::from_secs(300);
/// Deposits: 200 of just above the 10,000 sat minimum, in transactions of 50 peg outputs.
const DEPOSITS: usize = 200;
const SMALL: u64 = 11_000;
const BELOW_MINIMUM: u64 = 5_000;

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_small_deposits_are_consolidated_and_a_large_withdrawal_is_a_standard_release() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("consolidate", 1).await?;
    let user = user_key(0)?;
    let address = user.address();
    let client = system.client(0)?;
    let peg = Peg::new(&accounts::federation_ceremony()?.manifest.bitcoin)?;
    let before = common::balance(&client, &address, &Denom::sat()).await?;
    let rpc = system.parents.btcd.rpc();
    // One mature coinbase per paying transaction.
    system.parents.btcd.mine(u32::try_from(DEPOSITS / 50 + 1)?).await?;
    let mut deposits = Vec::new();
    for _ in 0..DEPOSITS / 50 {
        let mut outputs: Vec<TxOut> =
            (0..50).map(|_| TxOut { value: Sats::from_sat(SMALL), script_pubkey: peg.script_pubkey() }).collect();
        outputs.push(TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(&address) });
        let txid = system.parents.miner.pay(&rpc, outputs).await?;
        deposits.extend((0..50).map(|vout| (txid, vout)));
    }
    let mut dust: Vec<TxOut> =
        (0..3).map(|_| TxOut { value: Sats::from_sat(BELOW_MINIMUM), script_pubkey: peg.script_pubkey() }).collect();
    dust.push(TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(&address) });
    let dust_txid = system.parents.miner.pay(&rpc, dust).await?;

    // Every deposit decided: the small ones minted (less their prepaid spending), the dust not.
    let mut minted = 0u128;
    for (txid, vout) in &deposits {
        let record = system.wait_for_deposit(txid, *vout, PARENT_BLOCK, MINT_WAIT).await?;
        minted += record.minted_amount.ok_or_else(|| format!("{txid}:{vout} not minted: {:?}", record.status))?.get();
    }
    for vout in 0..3 {
        let record = system.wait_for_deposit(&dust_txid, vout, PARENT_BLOCK, MINT_WAIT).await?;
        assert_eq!(record.status, ferry_types::deposit_record::DepositStatus::BelowMinimum, "{dust_txid}:{vout}");
    }
    assert_eq!(common::balance(&client, &address, &Denom::sat()).await?, before + minted);

    // The chain consolidates down to half its 50-UTXO limit, paying from the fee pool.
    let consolidated = wait_until("the reserves are consolidated", RELEASE_WAIT, || async {
        system.mine_parents(1).await?;
        let reserves: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
        let free = reserves.bitcoin_utxos.iter().filter(|utxo| utxo.locked_by.is_none()).count();
        Ok((free <= 50).then_some(reserves))
    })
    .await;
    let consolidated = match consolidated {
        Ok(consolidated) => consolidated,
        Err(error) => {
            // Where it stands, for the failure message.
            let bridge: Option<ferry_types::query::BridgeStatus> = client.query("/bridge", None).await?;
            let reserves: ferry_app::query::ReservesView =
                client.query("/reserves", None).await?.ok_or("no reserves")?;
            let free = reserves.bitcoin_utxos.iter().filter(|utxo| utxo.locked_by.is_none()).count();
            return Err(format!("{error}; {free} free reserve UTXOs; bridge {bridge:?}; {:?}", reserves.assets).into());
        }
    };
    let ledger = consolidated.assets.get(&Denom::sat()).ok_or("no sat ledger")?;
    assert!(
        consolidated.bitcoin_utxos.iter().any(|utxo| utxo.amount.get() > u128::from(SMALL)),
        "a consolidated output exists: {:?}",
        consolidated.bitcoin_utxos.len()
    );
    assert_eq!(ledger.below_minimum.get(), 3 * u128::from(BELOW_MINIMUM), "payments below the minimum reported");

    // One withdrawal larger than any 100 of the small deposits together.
    let amount = 1_500_000;
    let destination = RegtestWallet::from_seed([0xcc; 32])?.address().to_string();
    // The consolidations above confirmed over parent blocks mined as fast as the loop polls, so
    // the fee controller may have raised the rate well above its start (on a loaded machine more
    // blocks pass per release): a budget that covers it, since this test is about the release's
    // size and standardness, not its price.
    let budget = 150_000;
    let (id, _) = system.withdraw_with_budget(&user, &Denom::sat(), amount, &destination, budget).await?;
    let released = system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, RELEASE_WAIT).await?;
    let batch: BatchView = client
        .query(&format!("/batch/{}", released.withdrawal.batch.ok_or("no batch")?), None)
        .await?
        .ok_or("no batch")?;
    let BatchRelease::Bitcoin(release) = &batch.batch.release else { return Err("not a Bitcoin batch".into()) };
    let inputs = release.plan.inputs().len();
    assert!(inputs < 100, "coin selection found few inputs: {inputs}");
    release.plan.check_standard(&peg)?;
    let vsize = u128::from(release.plan.max_vsize(&peg));
    assert!(release.plan.fee().get() >= vsize, "at least the relay fee: {} sat for {vsize} vB", release.plan.fee());
    let txid = batch.batch.release_tx.clone().ok_or("no release tx")?;
    let paid = system.parents.btcd.unspent_output(&OutPoint { txid: txid.parse()?, vout: 0 }).await?.ok_or("unpaid")?;
    assert_eq!(u128::from(paid.value.to_sat()), released.paid.ok_or("no paid amount")?.get());
    eprintln!(
        "{DEPOSITS} deposits → {} reserve UTXOs; the withdrawal spent {inputs} inputs",
        consolidated.bitcoin_utxos.len()
    );

    // The ledger and btcd agree to the satoshi.
    common::assert_bitcoin_reconciled(&system).await?;
    Ok(())
}
