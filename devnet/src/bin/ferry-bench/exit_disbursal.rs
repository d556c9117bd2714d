//! Bitcoin emergency disbursal (issue 17 item 1): the size of the pre-signed, height-locked exit
//! tree ([`ferry_types::release::exit::plan_exit`]) for 10, 1,000 and 10,000 wrapped-BTC holders,
//! the chain's planning time, and the time one signer takes to sign all of it — next to one
//! ordinary release batch spending the same 25 reserve UTXOs, planned and signed in the same run
//! (the baseline: what a member signs today when a batch spends that reserve).
//!
//! In process and single-threaded, on the devnet's 3-of-4 peg with member 0's Bitcoin key.
//! Balances and the reserve come from a fixed seed, so runs are comparable; one holder in ten
//! holds under 3,000 sat, so the pooling of small claims shows. Figures only: nothing is asserted
//! on time.

use std::time::Duration;

use bitcoin::key::CompressedPublicKey;
use ferry_devnet::accounts;
use ferry_types::peg::Peg;
use ferry_types::release::bitcoin::{
    ReleaseRequest, Utxo, plan_release_at_rate, sighashes, sign_input, unsigned_transaction,
};
use ferry_types::release::exit::{
    ExitBasis, ExitLimits, ExitRequest, Holder, exit_sighashes, plan_exit, plan_recorded, record_claims, sighashes_hex,
};
use ferry_types::release::fee::FeeRate;
use ferry_types::{Address, Amount};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::bls::mean_micros;

/// Holder counts measured.
const HOLDERS: [usize; 3] = [10, 1_000, 10_000];
/// Reserve UTXOs the disbursal spends (and the baseline release).
const RESERVE_UTXOS: usize = 25;
/// The exit's fee rate (design §7's figures are at 10 sat/vB).
const RATE_SAT_PER_VB: u64 = 10;
/// Any parent-chain height: it changes no size or time.
const LOCK_HEIGHT: u32 = 900_000;
/// Each time is the mean over as many runs as fit in this budget (at least three).
const BUDGET: Duration = Duration::from_millis(1500);

/// What one holder count measured.
struct Measured {
    holders: usize,
    transactions: usize,
    total_vbytes: u64,
    largest_vbytes: u64,
    recipients: usize,
    pooled: usize,
    pooled_sat: u128,
    fees_sat: u128,
    sighashes: usize,
    plan_micros: f64,
    sighash_micros: f64,
    sign_micros: f64,
    /// What a signer does before signing: plan again from the recorded claims, hash, compare.
    rebuild_micros: f64,
}

/// Runs and prints.
pub fn run() -> anyhow::Result<()> {
    let peg = Peg::new(&accounts::federation_ceremony()?.manifest.bitcoin)?;
    let secret = accounts::member_bitcoin_secret(0)?;
    let rate = FeeRate::from_sat_per_vb(RATE_SAT_PER_VB);
    let limits = ExitLimits::default();
    println!(
        "\n== Bitcoin emergency disbursal: {}-of-{} peg, {RESERVE_UTXOS} reserve UTXOs, {RATE_SAT_PER_VB} sat/vB, \
         fan-outs <= {} vB, min output {} sat (in process, 1 thread) ==",
        peg.threshold(),
        peg.keys().len(),
        limits.max_tx_vbytes,
        limits.min_output
    );

    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let reserve_for = |total: u128, rng: &mut ChaCha20Rng| reserve(total, rng);

    // Baseline: one release batch spending all 25 UTXOs of the smallest case's reserve.
    let baseline_reserve = reserve_for(50_000_000, &mut rng);
    let (baseline_plan, baseline_sign, baseline_sighashes) = baseline(&baseline_reserve, &peg, rate, &secret)?;
    println!(
        "baseline: one release batch spending the {RESERVE_UTXOS} UTXOs: plan + sighashes {baseline_plan:.0} µs; \
         one signer signs its {baseline_sighashes} sighashes in {baseline_sign:.0} µs"
    );
    println!(
        "{:>8} {:>4} {:>10} {:>10} {:>7} {:>8} {:>12} {:>11} {:>10} {:>11} {:>11} {:>9} {:>13} {:>10}",
        "holders",
        "txs",
        "total vB",
        "largest vB",
        "paid",
        "pooled",
        "pooled sat",
        "fees sat",
        "plan ms",
        "sighash ms",
        "sighashes",
        "sign ms",
        "sign/baseline",
        "signer s"
    );
    for count in HOLDERS {
        let holders = holders(count, &mut rng);
        let claimed: u128 = holders.iter().map(|holder| holder.balance.get()).sum();
        // The reserve holds the balances plus a 2% fee pool (each deposit prepaid its input).
        let reserve = reserve_for(claimed + claimed / 50, &mut rng);
        let measured = measure(&reserve, &holders, &peg, rate, limits, &secret)?;
        println!(
            "{:>8} {:>4} {:>10} {:>10} {:>7} {:>8} {:>12} {:>11} {:>10.2} {:>11.2} {:>11} {:>9.2} {:>13.2} {:>10.4}",
            measured.holders,
            measured.transactions,
            measured.total_vbytes,
            measured.largest_vbytes,
            measured.recipients,
            measured.pooled,
            measured.pooled_sat,
            measured.fees_sat,
            measured.plan_micros / 1e3,
            measured.sighash_micros / 1e3,
            measured.sighashes,
            measured.sign_micros / 1e3,
            measured.sign_micros / baseline_sign,
            (measured.rebuild_micros + measured.sign_micros) / 1e6
        );
    }
    println!(
        "(plan = the pure planner the chain runs; sighash = exit_sighashes; sign = sign_input over every sighash with one \
         member's key; sign/baseline against the release batch above; signer s = a signer's whole work: plan again \
         from the recorded claims, hash, compare with the chain's, sign)"
    );
    Ok(())
}

/// Plans, hashes and signs the disbursal of `reserve` to `holders`, timing each step.
fn measure(
    reserve: &[Utxo],
    holders: &[Holder],
    peg: &Peg,
    rate: FeeRate,
    limits: ExitLimits,
    secret: &bitcoin::secp256k1::SecretKey,
) -> anyhow::Result<Measured> {
    let request = ExitRequest { reserve, holders, withdrawals: &[], peg, rate, lock_height: LOCK_HEIGHT, limits };
    let plan = plan_exit(&request)?;
    // Deterministic: the same request plans the same transactions.
    anyhow::ensure!(plan_exit(&request)? == plan, "two plans of one request differ");
    let sighashes: Vec<[u8; 32]> = exit_sighashes(&plan, peg)?.into_iter().flatten().collect();
    let vsizes = plan.max_vsizes(peg);
    let plan_micros = mean_micros(BUDGET, || plan_exit(&request));
    let claims = record_claims(holders, &[]);
    let basis = ExitBasis {
        inputs: plan.inputs().to_vec(),
        rate,
        lock_height: LOCK_HEIGHT,
        min_output: limits.min_output,
        max_tx_vbytes: limits.max_tx_vbytes,
    };
    let recorded: Vec<Vec<String>> = sighashes_hex(&exit_sighashes(&plan, peg)?);
    let rebuild = || -> anyhow::Result<bool> {
        let again = plan_recorded(&basis, &claims, peg)?;
        let ours: Vec<Vec<String>> = sighashes_hex(&exit_sighashes(&again, peg)?);
        Ok(ours == recorded)
    };
    anyhow::ensure!(rebuild()?, "the signer's rebuild from the recorded claims differs from the chain's plan");
    let rebuild_micros = mean_micros(BUDGET, rebuild);
    let sighash_micros = mean_micros(BUDGET, || exit_sighashes(&plan, peg));
    let sign_micros =
        mean_micros(BUDGET, || sighashes.iter().map(|sighash| sign_input(secret, sighash)).collect::<Vec<_>>());
    Ok(Measured {
        holders: holders.len(),
        transactions: vsizes.len(),
        total_vbytes: vsizes.iter().sum(),
        largest_vbytes: vsizes.iter().copied().max().unwrap_or(0),
        recipients: plan.recipients().len(),
        pooled: plan.pooled().len(),
        pooled_sat: plan.pooled().iter().map(|pooled| pooled.entitled.get()).sum(),
        fees_sat: plan.fee_total().get(),
        sighashes: sighashes.len(),
        plan_micros,
        sighash_micros,
        sign_micros,
        rebuild_micros,
    })
}

/// Plans one release spending every UTXO of `reserve` (one withdrawal of all of it) and signs it:
/// (µs to plan and hash, µs to sign, sighashes).
fn baseline(
    reserve: &[Utxo],
    peg: &Peg,
    rate: FeeRate,
    secret: &bitcoin::secp256k1::SecretKey,
) -> anyhow::Result<(f64, f64, usize)> {
    let destination = bitcoin::Address::p2wpkh(
        &CompressedPublicKey(accounts::member_bitcoin_secret(1)?.public_key(bitcoin::secp256k1::SECP256K1)),
        peg.network().network(),
    )
    .to_string();
    let total = Amount::new(reserve.iter().map(|utxo| utxo.amount.get()).sum());
    let requests = [ReleaseRequest { destination, burned: total, max_fee: total }];
    let plan_and_hash = || -> anyhow::Result<Vec<[u8; 32]>> {
        let priced = plan_release_at_rate(reserve, &requests, rate, peg, Amount::new(546))?;
        let tx = unsigned_transaction(&priced.plan, peg);
        Ok(sighashes(&tx, &priced.plan, peg)?)
    };
    let digests = plan_and_hash()?;
    anyhow::ensure!(digests.len() == reserve.len(), "the baseline spends {} inputs", digests.len());
    let plan_micros = mean_micros(BUDGET, plan_and_hash);
    let sign_micros =
        mean_micros(BUDGET, || digests.iter().map(|sighash| sign_input(secret, sighash)).collect::<Vec<_>>());
    Ok((plan_micros, sign_micros, digests.len()))
}

/// `count` holders with random accounts; one in ten holds 100–3,000 sat, the others
/// 10,000–5,000,000 sat.
fn holders(count: usize, rng: &mut ChaCha20Rng) -> Vec<Holder> {
    (0..count)
        .map(|_| {
            let mut account = [0u8; 20];
            rng.fill_bytes(&mut account);
            let balance = if rng.next_u32().is_multiple_of(10) {
                100 + rng.next_u64() % 2_900
            } else {
                10_000 + rng.next_u64() % 4_990_000
            };
            Holder {
                account: Address::from_bytes(account),
                balance: Amount::new(balance.into()),
                recovery_script: None,
            }
        })
        .collect()
}

/// [`RESERVE_UTXOS`] peg UTXOs with random txids holding `total` sat together in random parts.
fn reserve(total: u128, rng: &mut ChaCha20Rng) -> Vec<Utxo> {
    let weights: Vec<u128> = (0..RESERVE_UTXOS).map(|_| 1 + u128::from(rng.next_u32() % 1_000)).collect();
    let weight_sum: u128 = weights.iter().sum();
    let mut amounts: Vec<u128> = weights.iter().map(|weight| total * weight / weight_sum).collect();
    let assigned: u128 = amounts.iter().sum();
    if let Some(first) = amounts.first_mut() {
        *first += total - assigned.min(total);
    }
    amounts
        .into_iter()
        .map(|amount| {
            let mut txid = [0u8; 32];
            rng.fill_bytes(&mut txid);
            Utxo { txid: hex::encode(txid), vout: 0, amount: Amount::new(amount), owner: None }
        })
        .collect()
}
