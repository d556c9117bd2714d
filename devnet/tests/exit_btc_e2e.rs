//! Issue 17, Bitcoin: at every moment a signed, height-locked disbursal pays every wrapped-BTC
//! holder out of the reserve the chain holds. On the whole real system (CometBFT, the signers and
//! relayers, btcd with `--rejectnonstd`, PostgreSQL):
//! - a release is signed only after the disbursal of the reserve it leaves is (the chain's
//!   records and every signer's audit log);
//! - a later release kills the previous disbursal: btcd refuses it (its inputs are spent);
//! - the deposits are covered by a refresh before any release;
//! - a holder registers its own recovery address with `ferry exit recovery-address`;
//! - once the signers, the validators and all relayers but one are gone, btcd refuses the
//!   covering disbursal before its lock height (non-final); from it on, the remaining relayer
//!   broadcasts it from its database and `ferry exit btc` carries it on from a saved file; each
//!   holder's own P2WPKH address receives its pro-rata share less its output's fee, and outputs
//!   plus fees are the reserve exactly.

mod common;

use std::time::{Duration, Instant};

use bitcoin::{OutPoint, Txid};
use common::TestResult;
use common::cli::User;
use ferry_devnet::accounts::{self, user_key};
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::system::System;
use ferry_types::genesis::BitcoinExitParams;
use ferry_types::query::{BatchRelease, BatchView, BtcExitStatus, EXIT_BTC_PATH, ExitStanding, WithdrawalStatus};
use ferry_types::release::exit::{Claimant, SignedDisbursal, default_recovery_script};
use ferry_types::{Amount, Denom};

/// Parent blocks from a disbursal's derivation to its lock. The waits mine a block every
/// [`PARENT_BLOCK`], so the refresh margin must leave a reserve move due then (a refresh, or a
/// release, which kills the old disbursal as well) time to be signed and confirm before the old
/// disbursal opens: with 40 and 10 it had four seconds, and a relayer sometimes broadcast the old
/// disbursal over a release in flight.
const LOCK_BLOCKS: u32 = 400;
/// Blocks before a live disbursal's lock when a refresh is due.
const REFRESH_MARGIN_BLOCKS: u32 = 150;
/// What each withdrawal takes out.
const WITHDRAWN: u128 = 50_000_000;
const PARENT_BLOCK: Duration = Duration::from_millis(400);
const WAIT: Duration = Duration::from_secs(240);

/// Withdraws [`WITHDRAWN`] from user 0 and waits until its release settled; returns its batch.
async fn withdraw_and_settle(system: &System, destination: &str) -> TestResult<BatchView> {
    let (id, _) = system.withdraw(&user_key(0)?, &Denom::sat(), WITHDRAWN, destination).await?;
    let view = system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, WAIT).await?;
    let batch = view.withdrawal.batch.ok_or("released without a batch")?;
    Ok(system.client(0)?.query(&format!("/batch/{batch}"), None).await?.ok_or("no batch")?)
}

/// The disbursal covering the reserve, as the chain records it, once it is release `batch`'s.
async fn covering_after(system: &System, batch: &BatchView) -> TestResult<BatchView> {
    let client = system.client(0)?;
    let status: BtcExitStatus = client.query(EXIT_BTC_PATH, None).await?.ok_or("no /exit/btc")?;
    let covering = status.covering.ok_or("no disbursal covers the reserve")?;
    let view: BatchView = client.query(&format!("/batch/{covering}"), None).await?.ok_or("no disbursal batch")?;
    let BatchRelease::BitcoinExit(exit) = &view.batch.release else { return Err("not a disbursal".into()) };
    assert_eq!(exit.follows.batch, batch.batch.id, "the covering disbursal follows the last release");
    assert_eq!(exit.standing, ExitStanding::Covering);
    // Ordering: the disbursal was signed no later than the release it follows.
    let (exit_signed, release_signed) = (view.batch.signed_height, batch.batch.signed_height);
    assert!(
        exit_signed.is_some() && exit_signed <= release_signed,
        "disbursal {exit_signed:?}, release {release_signed:?}"
    );
    Ok(view)
}

/// Each signer that signed both has disbursal `exit` before release `release` in its audit log;
/// at least one signed both.
async fn audit_order(system: &System, exit: u64, release: u64) -> TestResult {
    let mut both = 0;
    for member in 0..accounts::FEDERATION_MEMBERS {
        let pool = sqlx::PgPool::connect(&system.signers[member].spec().database_url).await?;
        let seq = |entries: &[ferry_audit::AuditEntry]| {
            entries.iter().find(|entry| entry.kind == "batch.signed").map(|entry| entry.seq)
        };
        let exit_entries = ferry_audit::AuditLog::SIGNER.entries_for(&pool, &format!("batch-{exit}")).await?;
        let release_entries = ferry_audit::AuditLog::SIGNER.entries_for(&pool, &format!("batch-{release}")).await?;
        // A member may miss the disbursal: it leaves the pending batches once a threshold signed
        // it (the chain's gate, checked by the caller, held the release until then).
        if let (Some(release_seq), Some(exit_seq)) = (seq(&release_entries), seq(&exit_entries)) {
            assert!(exit_seq < release_seq, "member {member} signed release {release} before disbursal {exit}");
            both += 1;
        }
        pool.close().await;
    }
    assert!(both > 0, "no member's audit log shows both disbursal {exit} and release {release} signed");
    Ok(())
}

/// Mines btcd (only) until its tip is `height`.
async fn mine_to(system: &System, height: u64) -> TestResult {
    let tip = system.parents.btcd.rpc().get_block_count().await?;
    if height > tip {
        system.parents.btcd.mine(u32::try_from(height - tip)?).await?;
    }
    Ok(())
}

fn decoded(disbursal: &SignedDisbursal) -> TestResult<Vec<bitcoin::Transaction>> {
    Ok(disbursal.decoded()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn holders_take_their_btc_with_the_presigned_disbursal_after_the_federation_disappears() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let params = BitcoinExitParams {
        lock_blocks: LOCK_BLOCKS,
        refresh_margin_blocks: REFRESH_MARGIN_BLOCKS,
        fee_rate_percent: 100,
        ..BitcoinExitParams::default()
    };
    let mut system = System::isolated_with("exit-btc", 3, |spec| spec.bitcoin_exit = Some(params)).await?;
    let destination = RegtestWallet::from_seed([0xd5; 32])?.address().to_string();
    let home = tempfile::tempdir()?;
    let cli = User::of_system(&system, home.path(), 1)?;

    // The users' deposits are in no disbursal: the chain refreshes (a consolidation whose own
    // disbursal covers the whole reserve) before anything else moves the reserve.
    let client = system.client(0)?;
    let deadline = Instant::now() + WAIT;
    let refreshed = loop {
        let status: BtcExitStatus = client.query(EXIT_BTC_PATH, None).await?.ok_or("no /exit/btc")?;
        if let Some(covering) = status.covering {
            break covering;
        }
        assert!(Instant::now() < deadline, "the deposits were never covered: {status:?}");
        system.mine_parents(1).await?;
        tokio::time::sleep(PARENT_BLOCK).await;
    };
    let refresh: BatchView = client.query(&format!("/batch/{refreshed}"), None).await?.ok_or("no batch")?;
    let BatchRelease::BitcoinExit(exit) = &refresh.batch.release else { return Err("not a disbursal".into()) };
    let follows: BatchView = client.query(&format!("/batch/{}", exit.follows.batch), None).await?.ok_or("no batch")?;
    assert!(follows.batch.items.is_empty(), "the first disbursal follows a refresh, not a release");
    assert_eq!(exit.recipients, 3, "every user is paid by it");

    // User 2 has its exit paid elsewhere than its own key's address (from the next disbursal).
    let seed = ferry_types::key::sha256(b"ferry-devnet/user/2");
    assert_eq!(ferry_types::AccountKey::from_secret_bytes(&seed)?.address(), user_key(2)?.address());
    let secret = common::cli::write(home.path(), "user2.secret", &hex::encode(seed))?;
    cli.json(&["keys", "import", "user2", "--secret-file", &secret])?;
    let recovery = RegtestWallet::from_seed([0xe2; 32])?.address().clone();
    let wrong =
        cli.run(&["--from", "user2", "exit", "recovery-address", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"])?;
    assert!(!wrong.status.success(), "a mainnet address was taken on regtest");
    let set = cli.json(&["--from", "user2", "exit", "recovery-address", &recovery.to_string()])?;
    assert_eq!(set["registered"].as_str(), Some(recovery.to_string().as_str()), "{set}");

    // A withdrawal settles: its disbursal was signed first and now covers the reserve.
    let first = withdraw_and_settle(&system, &destination).await?;
    let first_exit = covering_after(&system, &first).await?;
    audit_order(&system, first_exit.batch.id, first.batch.id).await?;
    let first_file = home.path().join("first-exit.json");
    let saved = cli.json(&["exit", "btc", "--save", first_file.to_str().ok_or("path")?])?;
    assert_eq!(saved["exit"].as_u64(), Some(first_exit.batch.id), "{saved}");
    let first_disbursal: SignedDisbursal = serde_json::from_str(&std::fs::read_to_string(&first_file)?)?;

    // A second release spends the reserve again: its disbursal covers now, the first is dead.
    let second = withdraw_and_settle(&system, &destination).await?;
    let second_exit = covering_after(&system, &second).await?;
    audit_order(&system, second_exit.batch.id, second.batch.id).await?;
    let old: BatchView = client.query(&format!("/batch/{}", first_exit.batch.id), None).await?.ok_or("no batch")?;
    assert!(matches!(&old.batch.release, BatchRelease::BitcoinExit(exit) if exit.standing == ExitStanding::Superseded));
    let file = home.path().join("exit.json");
    cli.json(&["exit", "btc", "--save", file.to_str().ok_or("path")?])?;
    let disbursal: SignedDisbursal = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
    assert_eq!(disbursal.exit, second_exit.batch.id);
    let BatchRelease::BitcoinExit(recorded) = &second_exit.batch.release else { return Err("not a disbursal".into()) };
    let rate = recorded.basis.rate;
    // `ferry exit status` tells user 2 when the exit opens and what it pays where.
    let status = cli.json(&["--from", "user2", "exit", "status"])?;
    let bitcoin = &status["bitcoin"];
    assert_eq!(bitcoin["exit"].as_u64(), Some(disbursal.exit), "{status}");
    assert!(bitcoin["opens_in_blocks"].as_u64().is_some_and(|blocks| blocks > 0), "{status}");
    let script = hex::encode(recovery.script_pubkey().as_bytes());
    assert_eq!(bitcoin["payouts"][0]["script"].as_str(), Some(script.as_str()), "{status}");
    // What each holder should get: its balance at the snapshot height, less its output's fee.
    let mut balances = Vec::new();
    for index in 0..3 {
        let user = user_key(index)?.address();
        let held = client.balances(&user, Some(disbursal.snapshot_height)).await?;
        let sat = held.balances.iter().find(|coin| coin.denom == Denom::sat()).map_or(0, |coin| coin.amount.get());
        balances.push((user, sat));
    }

    // The federation and the sidechain disappear: the signers, the validators and every relayer
    // but member 0's, which keeps the disbursals it learnt of and broadcasts them on its own.
    let relayer_db = sqlx::PgPool::connect(&system.relayer_database_url(0)?).await?;
    let kept = |exit: u64| {
        let pool = relayer_db.clone();
        async move {
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM relayer_exits WHERE exit_id = $1")
                .bind(i64::try_from(exit)?)
                .fetch_optional(&pool)
                .await?;
            TestResult::Ok(state)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while kept(disbursal.exit).await?.as_deref() != Some("kept") {
        assert!(Instant::now() < deadline, "relayer 0 does not keep the covering disbursal");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    system.signers.clear();
    system.relayers.truncate(1);
    for validator in 0..system.network.spec().validators {
        system.network.kill(validator)?;
    }

    // Past the first disbursal's lock, btcd refuses it: the second release spent its inputs.
    mine_to(&system, u64::from(first_disbursal.lock_height)).await?;
    let btcd = system.parents.btcd.rpc();
    let first_intermediate = decoded(&first_disbursal)?.remove(0);
    let refused =
        btcd.send_raw_transaction(&first_intermediate).await.err().ok_or("the dead disbursal was accepted")?;
    assert!(!refused.is_already_known(), "{refused}");
    let dead = cli.run(&["exit", "btc", "--file", first_file.to_str().ok_or("path")?])?;
    assert!(!dead.status.success());
    assert!(
        String::from_utf8_lossy(&dead.stdout).contains("can never confirm"),
        "{}",
        String::from_utf8_lossy(&dead.stdout)
    );

    // Before the lock height btcd refuses the disbursal (non-final); the CLI says when it opens.
    let transactions = decoded(&disbursal)?;
    let lock = u64::from(disbursal.lock_height);
    mine_to(&system, lock - 1).await?;
    let early = btcd.send_raw_transaction(&transactions[0]).await.err().ok_or("a non-final disbursal was accepted")?;
    assert!(early.to_string().contains("final"), "{early}");
    let waiting = cli.json(&["exit", "btc", "--file", file.to_str().ok_or("path")?])?;
    assert_eq!(waiting["state"].as_str(), Some("locked"), "{waiting}");

    // From the lock height on, relayer 0 broadcasts the intermediate by itself (the sidechain is
    // gone: from its database); once that is in a block, the fan-outs follow (the CLI can send
    // them too, from the saved file).
    mine_to(&system, lock).await?;
    let intermediate = transactions[0].compute_txid();
    let deadline = Instant::now() + Duration::from_secs(60);
    while btcd.get_transaction_status(&intermediate).await?.is_none() {
        assert!(Instant::now() < deadline, "relayer 0 did not broadcast the open disbursal");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let step = cli.json(&["exit", "btc", "--file", file.to_str().ok_or("path")?])?;
    assert_eq!(step["state"].as_str(), Some("intermediate_pending"), "{step}");
    system.parents.btcd.mine(1).await?;
    let step = cli.json(&["exit", "btc", "--file", file.to_str().ok_or("path")?])?;
    assert_eq!(step["state"].as_str(), Some("fan_outs_pending"), "{step}");
    system.parents.btcd.mine(1).await?;
    let step = cli.json(&["exit", "btc", "--file", file.to_str().ok_or("path")?])?;
    assert_eq!(step["state"].as_str(), Some("done"), "{step}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while kept(disbursal.exit).await?.as_deref() != Some("done") {
        assert!(Instant::now() < deadline, "relayer 0 does not see its disbursal done");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(kept(first_disbursal.exit).await?.as_deref(), Some("dead"), "the superseded one is dead");

    // Each holder's own address received, in a block, its pro-rata share of the reserve less
    // its own output's fee (31 vB of P2WPKH at the disbursal's rate, rounded down). The tree's other fees come
    // out of what the reserve holds beyond the claims first; only what that cannot pay is shared
    // in proportion to the claims.
    assert!(disbursal.pooled.is_empty(), "{:?}", disbursal.pooled);
    // Every payout here is P2WPKH: 31 vB.
    let own_fee = u128::from(rate.sat_per_kvb()) * 31 / 1_000;
    let reserve: u128 = disbursal.inputs.iter().map(|utxo| utxo.amount.get()).sum();
    let claims: u128 = disbursal.payouts.iter().map(|payout| payout.claim.get()).sum();
    // The fees beyond the outputs' own: the tree's overhead, plus the residual when it is below
    // the peg's dust threshold (330 sat) and left to miners.
    let beyond_own = disbursal.fees.get() - own_fee * disbursal.payouts.len() as u128;
    let dust_left = if disbursal.residual.is_zero() { 330 } else { 0 };
    let share = |claim: u128, payable: u128| if payable >= claims { claim } else { claim * payable / claims };
    for (user, sat) in &balances {
        let payout = disbursal
            .payouts
            .iter()
            .find(|payout| payout.claimant == Claimant::Holder(*user))
            .ok_or_else(|| format!("{user} is not paid"))?;
        assert_eq!(payout.claim, Amount::new(*sat), "{user}'s claim is its balance at the snapshot");
        let script =
            if *user == user_key(2)?.address() { recovery.script_pubkey() } else { default_recovery_script(user) };
        assert_eq!(payout.script, hex::encode(script.as_bytes()), "{user} is paid where it said");
        let entitled = payout.paid.get() + own_fee;
        let (least, most) = (share(*sat, reserve - beyond_own), share(*sat, reserve - beyond_own + dust_left));
        assert!(
            (least..=most).contains(&entitled),
            "{user}: paid {} + its fee {own_fee} is not its pro-rata share of {least}..={most} sat",
            payout.paid
        );
        let txid: Txid = payout.txid.parse()?;
        let output =
            system.parents.btcd.unspent_output(&OutPoint { txid, vout: payout.vout }).await?.ok_or("no output")?;
        assert_eq!(u128::from(output.value.to_sat()), payout.paid.get(), "{user}");
        assert!(output.confirmations >= 1);
    }
    // Conservation: what the tree pays out plus its fees is the reserve it spends, exactly.
    let paid: u128 = disbursal.payouts.iter().map(|payout| payout.paid.get()).sum();
    assert_eq!(paid + disbursal.residual.get() + disbursal.fees.get(), reserve);
    let mut out_total = 0u128;
    let mut in_total = 0u128;
    for tx in &transactions {
        out_total += tx.output.iter().map(|output| u128::from(output.value.to_sat())).sum::<u128>();
    }
    for utxo in &disbursal.inputs {
        in_total += utxo.amount.get();
    }
    let internal: u128 = transactions[0].output.iter().map(|output| u128::from(output.value.to_sat())).sum::<u128>()
        - disbursal.residual.get();
    assert_eq!(in_total - (out_total - internal), disbursal.fees.get(), "fees are what the tree does not pay out");
    eprintln!(
        "disbursal: {} transactions, {} payouts, residual {} sat, fees {} sat; test took {:?}",
        transactions.len(),
        disbursal.payouts.len(),
        disbursal.residual,
        disbursal.fees,
        started.elapsed()
    );
    Ok(())
}
