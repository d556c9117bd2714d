//! A Bitcoin fee spike on the whole system, with a real two-node fee market: the relay btcd the
//! relayers and users talk to (the system's own), and a miner btcd connected to it with a high
//! `--minrelaytxfee` that neither accepts nor mines anything cheaper. Blocks are mined only on
//! the miner; the relay node follows over P2P.
//!
//! A release broadcast at the chain's rate, below the market, stays unmined; the parent clock
//! runs on; the chain replaces it every bump period with a higher fee; three of four signers sign
//! each version — one of them killed and restarted between versions — while the fourth reads the
//! chain through a compromised endpoint that shows every version priced far above the budgets
//! (in Ferry's JSON answers and in the raw records alike): the prices do not verify against the
//! light client's headers, so it refuses each (reason `unverified`, counted, audited, never
//! signed) instead of acting on what it was shown; once a version clears the
//! market it is mined, and the controller's rate moves to the rate that cleared. Every version spends the same outpoints; the
//! destination gets the burn less the final version's share; no signer holds two different
//! signatures for one (epoch, nonce, version); supply, reserves and the peg's UTXOs on btcd
//! reconcile. Then the market falls (the miner restarts at 1 sat/vB) and the controller's rate
//! falls over the next releases, within its bounds.

mod common;

use std::time::Duration;

use bitcoin::OutPoint;
use common::{TestResult, WAIT, serial, wait_until};
use ferry_devnet::accounts::{self, user_key};
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_devnet::prometheus::ServiceKind;
use ferry_devnet::signer::SignerProcess;
use ferry_devnet::system::System;
use ferry_signer::rebuild::sighash_payload_hash;
use ferry_signer::store::Store as SignerStore;
use ferry_types::Denom;
use ferry_types::query::{
    BITCOIN_FEES_PATH, BatchRelease, BatchStatus, BatchView, BitcoinFeesView, WithdrawalId, WithdrawalStatus,
};
use ferry_types::release::fee::FeeRate;
use serde_json::Value;

/// The market's floor while the fee spike lasts, sat/vB (the chain starts at 10).
const SPIKE: u64 = 20;
/// How long a release may take to clear the spike (several bump periods of signing).
const SPIKE_WAIT: Duration = Duration::from_secs(300);
const BTC: u64 = 100_000_000;

async fn fees(system: &System) -> TestResult<BitcoinFeesView> {
    Ok(system.client(0)?.query(BITCOIN_FEES_PATH, None).await?.ok_or("no /bitcoin/fees")?)
}

async fn batch_of(system: &System, id: WithdrawalId) -> TestResult<Option<BatchView>> {
    let Some(batch) = system.withdrawal(id).await?.withdrawal.batch else { return Ok(None) };
    Ok(system.client(0)?.query(&format!("/batch/{batch}"), None).await?)
}

/// The compromised endpoint's lie: every Bitcoin batch (in `/batch/<n>` and `/batches/pending`)
/// priced at 900 sat/vB, within the chain's bounds but far above any burn's budget.
fn overpriced(answer: &Value) -> Option<Value> {
    let mut answer = answer.clone();
    let mut changed = false;
    let mut reprice = |batch: &mut Value| {
        if let Some(rate) = batch.pointer_mut("/release/bitcoin/fee_rate") {
            *rate = Value::from(900_000u64);
            changed = true;
        }
    };
    match answer.get_mut("batches").and_then(Value::as_array_mut) {
        Some(batches) => batches.iter_mut().for_each(&mut reprice),
        None => reprice(&mut answer),
    }
    changed.then_some(answer)
}

/// The same lie in a raw `/store` record: a Bitcoin batch's fee rate set far above the budgets
/// (well-formed, so only its proof can tell).
fn overpriced_record(key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    key.starts_with(b"batch/").then_some(())?;
    let mut batch: ferry_types::query::Batch = bcs::from_bytes(value).ok()?;
    let BatchRelease::Bitcoin(release) = &mut batch.release else { return None };
    release.fee_rate = FeeRate::from_sat_per_vb(900_000);
    bcs::to_bytes(&batch).ok()
}

/// Mines one block on the miner and waits until the relay node has it.
async fn mine_on_miner(miner: &Btcd, relay: &Btcd) -> TestResult {
    Ok(miner.mine_and_relay(relay, WAIT).await?)
}

/// Waits until the miner has the relay node's chain (after a start or restart).
async fn synced(miner: &Btcd, relay: &Btcd) -> TestResult {
    Ok(miner.wait_for_chain_of(relay, WAIT).await?)
}

/// Mines on the miner, a block at a time, until withdrawal `id` is released.
async fn mine_until_released(system: &System, miner: &Btcd, id: WithdrawalId, within: Duration) -> TestResult {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if system.withdrawal(id).await?.status == WithdrawalStatus::Released {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{id} not released: {:?}", batch_of(system, id).await?).into());
        }
        mine_on_miner(miner, &system.parents.btcd).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_below_the_market_is_replaced_until_mined_and_the_rate_follows_the_market_both_ways() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("fee-market", 1).await?;
    let user = user_key(0)?;
    let address = user.address();
    let client = system.client(0)?;
    let before = common::balance(&client, &address, &Denom::sat()).await?;
    let txid = system.deposit_btc(&address, BTC).await?;
    let block = Duration::from_millis(300);
    let minted = system.wait_for_deposit(&txid, 0, block, WAIT).await?.minted_amount.ok_or("not minted")?;
    system.wait_for_balance(&address, &Denom::sat(), before + minted.get(), block, WAIT).await?;

    // From here on, blocks come only from the miner.
    let miner_dir = tempfile::Builder::new().prefix("ferry-miner-").tempdir()?;
    let mining_address = system.parents.miner.address().clone();
    let mut miner = Btcd::start_miner(miner_dir.path(), &mining_address, system.parents.btcd.p2p_addr(), SPIKE).await?;
    synced(&miner, &system.parents.btcd).await?;
    let start = fees(&system).await?;
    assert!(start.fee_rate < FeeRate::from_sat_per_vb(SPIKE), "the chain starts below the spike: {start:?}");

    // Member 3's signer reads the chain through a compromised endpoint for the whole spike: every
    // Bitcoin batch (each version) it is shown is priced far above the burns' budgets. It
    // refuses each, saying why; the three honest members sign every version.
    system.signers[3].kill();
    let rewrite: common::Rewrite = std::sync::Arc::new(overpriced);
    let raw: common::RawRewrite = std::sync::Arc::new(overpriced_record);
    let tamper = common::Tamper { json: Some(rewrite), raw: Some(raw) };
    let (proxy, proxy_task) = common::start_tampering_proxy(system.chain_rpc(3), tamper).await?;
    let mut spec = system.signers[3].spec().clone();
    spec.chain_rpc = format!("http://{proxy}");
    spec.dir = spec.dir.join("behind-proxy");
    let mut tampered_signer = SignerProcess::start(spec.clone())?;
    let destination = RegtestWallet::from_seed([0xfa; 32])?.address().to_string();
    let amount = 300_000;
    let (id, _) = system.withdraw(&user, &Denom::sat(), amount, &destination).await?;

    // Mine until a replacement is being signed, then crash member 2's signer and bring it back.
    let deadline = tokio::time::Instant::now() + SPIKE_WAIT;
    loop {
        let replaced = batch_of(&system, id).await?.is_some_and(|view| match &view.batch.release {
            BatchRelease::Bitcoin(release) => release.version >= 1,
            _ => false,
        });
        if replaced {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("no replacement: {:?}", batch_of(&system, id).await?).into());
        }
        mine_on_miner(&miner, &system.parents.btcd).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    system.signers[2].kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    system.signers[2].restart()?;
    mine_until_released(&system, &miner, id, SPIKE_WAIT).await?;

    // Every version spends the same outpoints; the one mined cleared the market.
    let view = batch_of(&system, id).await?.ok_or("no batch")?;
    assert_eq!(view.batch.status, BatchStatus::Released);
    let BatchRelease::Bitcoin(release) = &view.batch.release else { return Err("not a Bitcoin batch".into()) };
    assert!(release.version >= 2, "replaced more than once to clear {SPIKE} sat/vB: version {}", release.version);
    for old in &release.superseded {
        assert_eq!(old.plan.inputs(), release.plan.inputs(), "version {} spends other outpoints", old.version);
        assert!(old.fee_rate < release.fee_rate);
        assert_eq!(old.signatures.len(), 3, "version {}: three of four signed", old.version);
    }
    // Node 0 counted every replacement it finalized.
    let chain_metrics = system
        .scrape_targets()?
        .into_iter()
        .find(|target| target.kind == ServiceKind::Chain && target.member == 0)
        .ok_or("no chain metrics")?;
    let text = reqwest::get(format!("http://{}/metrics", chain_metrics.address)).await?.text().await?;
    let replacements = common::metric(&text, "ferry_chain_bitcoin_release_replacements_total").unwrap_or(0.0);
    assert!(
        replacements >= f64::from(release.version),
        "{replacements} replacements counted for version {}",
        release.version
    );
    let mined = view.batch.release_tx.clone().ok_or("no release tx")?;
    let (version, _, plan) =
        view.batch.bitcoin_versions().into_iter().find(|(_, txid, _)| *txid == mined).ok_or("mined no version")?;
    let longest = plan.max_vsize(&ferry_types::peg::Peg::new(&accounts::federation_ceremony()?.manifest.bitcoin)?);
    let fee = plan.fee().get();
    assert!(
        fee * 1_000 >= u128::from(SPIKE * 1_000) * u128::from(longest) - 1,
        "version {version}: {fee} sat for {longest} vB"
    );
    let paid =
        system.parents.btcd.unspent_output(&OutPoint { txid: mined.parse()?, vout: 0 }).await?.ok_or("no payment")?;
    assert_eq!(u128::from(paid.value.to_sat()), amount - fee, "the destination gets the burn less the final share");
    assert_eq!(system.withdrawal(id).await?.paid.map(|paid| paid.get()), Some(amount - fee));

    // No signer holds two signatures for one (epoch, nonce, version), and what each signed is
    // what the chain shows for that version.
    let epoch = accounts::federation_ceremony()?.manifest.epoch;
    let chain_versions: std::collections::BTreeMap<u32, Vec<String>> = release
        .superseded
        .iter()
        .map(|old| (old.version, old.sighashes.clone()))
        .chain([(release.version, release.sighashes.clone())])
        .collect();
    for member in 0..3 {
        let store = SignerStore::connect(&system.signers[member].spec().database_url).await?;
        let signed = store.signed_versions(epoch, view.batch.id).await?;
        assert!(!signed.is_empty(), "member {member} signed nothing");
        for (version, hash) in signed {
            let sighashes = chain_versions.get(&version).ok_or("a version the chain never made")?;
            assert_eq!(hash, sighash_payload_hash(sighashes), "member {member} version {version}");
        }
        assert!(store.verify().await?.is_intact(), "member {member}'s audit log");
    }

    // The controller saw a slow release: the rate rose, within its bounds, at least to the rate
    // of the version that was mined.
    let risen = fees(&system).await?;
    assert!(risen.last_release_waited.is_some_and(|waited| waited > risen.target_confirm_blocks), "{risen:?}");
    assert!(risen.fee_rate > start.fee_rate && risen.fee_rate <= risen.max_fee_rate, "{start:?} → {risen:?}");
    let cleared = release.superseded.iter().find(|old| old.txid == mined).map_or(release.fee_rate, |old| old.fee_rate);
    assert!(risen.fee_rate >= cleared.min(risen.max_fee_rate), "mined at {cleared}, the rate is {risen:?}");

    // Member 3 refused every version — in its metrics and its audit log — and signed none: the
    // lying prices did not verify, so it acted on nothing it was shown.
    let text = reqwest::get(tampered_signer.metrics_url()).await?.text().await?;
    let count = |series: &str| common::metric(&text, series).unwrap_or(0.0);
    let refusals = count(r#"ferry_signer_signatures_total{chain="btc",outcome="refused"}"#);
    let unverified = count(r#"ferry_signer_policy_rejections_total{reason="unverified"}"#);
    assert!(refusals >= 1.0 && unverified == refusals, "{text}");
    let pool = sqlx::PgPool::connect(&spec.database_url).await?;
    let entries = ferry_audit::AuditLog::SIGNER.entries_for(&pool, &format!("batch-{}", view.batch.id)).await?;
    assert!(
        entries.iter().any(|entry| entry.kind == "batch.refused" && entry.detail["reason"] == "unverified"),
        "no `unverified` refusal in member 3's audit log: {entries:?}"
    );
    assert!(entries.iter().all(|entry| entry.kind != "batch.signed"), "{entries:?}");
    let member3 = accounts::member_key(3)?.address();
    assert!(
        release.superseded.iter().all(|old| !old.signatures.contains_key(&member3))
            && !view.batch.signatures.contains_key(&member3),
        "member 3 signed a version it was shown overpriced"
    );
    tampered_signer.kill();
    proxy_task.abort();

    // The market falls: releases confirm in the next block and the rate falls, release by release.
    system.signers[3].restart()?;
    miner.restart_miner(1).await?;
    synced(&miner, &system.parents.btcd).await?;
    let mut rate = risen.fee_rate;
    for round in 0..2 {
        // The parent clock has the tip before the batch is signed (relayers report it every 2 s).
        let tip = system.parents.btcd.rpc().get_block_count().await?;
        wait_until("the parent clock reaches the tip", WAIT, || async {
            Ok(Some(fees(&system).await?.parent_height).filter(|height| *height >= tip))
        })
        .await?;
        let (id, _) = system.withdraw(&user, &Denom::sat(), 100_000 + round * 1_000, &destination).await?;
        // btcd trickles transaction announcements to peers every ~10 s, an age at regtest's pace
        // and nothing at mainnet's: the next block is mined once the miner holds the release.
        wait_until("the miner holds the release", SPIKE_WAIT, || async {
            let Some(view) = batch_of(&system, id).await? else { return Ok(None) };
            let Some(signed) = view.batch.signed_bitcoin_version() else { return Ok(None) };
            Ok(miner.rpc().get_transaction_status(&signed.txid.parse()?).await?.map(|_| ()))
        })
        .await?;
        mine_until_released(&system, &miner, id, SPIKE_WAIT).await?;
        let after = fees(&system).await?;
        eprintln!(
            "after the spike, release {round}: waited {:?}, rate {rate} → {}",
            after.last_release_waited, after.fee_rate
        );
        assert!(after.fee_rate < rate && after.fee_rate >= after.min_fee_rate, "round {round}: {rate} → {after:?}");
        rate = after.fee_rate;
    }

    // The ledger and btcd agree to the satoshi.
    let (ledger, _) = common::assert_bitcoin_reconciled(&system).await?;
    assert!(ledger.unreleased.is_zero(), "{ledger:?}");
    drop(miner);
    Ok(())
}
