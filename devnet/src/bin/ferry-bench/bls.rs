//! BLS threshold-signature benchmarks: what the chain spends checking the federation's release
//! signature shares and combining them, at federation thresholds T = 3, 16 and 64 (members =
//! T + 1), next to one plain BLS verification of the combined signature (the vault's check: one
//! hash to G2 and two pairings) measured in the same run.
//!
//! In process and single-threaded; the keys come from a seeded dealer, so runs are comparable.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_types::release::bls::{self, SignatureShare};
use rand_chacha::rand_core::SeedableRng;
use threshold_crypto::SecretKeySet;

/// Federation thresholds measured: T signature shares combine into a signature.
const THRESHOLDS: [usize; 3] = [3, 16, 64];

/// Each figure is the mean over as many runs as fit in this time (and at least three).
const BUDGET: Duration = Duration::from_millis(1500);

/// Mean microseconds of one call of `work`, repeated for `budget` and at least three times.
pub fn mean_micros<T>(budget: Duration, mut work: impl FnMut() -> T) -> f64 {
    let started = Instant::now();
    let mut runs = 0u32;
    while runs < 3 || started.elapsed() < budget {
        black_box(work());
        runs += 1;
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
}

/// One row of the table: µs and the ratio to the baseline.
fn row(label: &str, micros: f64, baseline: f64) {
    println!("  {label:<34} {micros:>11.0} µs  ratio {:>6.2}", micros / baseline);
}

/// Verification and combination times of release signature shares at T = 3, 16 and 64, with
/// ratios against one plain BLS verification of the combined signature.
pub fn run() -> anyhow::Result<()> {
    println!("BLS release signatures (threshold_crypto shares over the RFC 9380 G2 point, 1 thread):");
    let msg = b"ferry bench release payload".repeat(8);
    for threshold in THRESHOLDS {
        let members = threshold + 1;
        let mut rng = rand_chacha::ChaChaRng::seed_from_u64(u64::try_from(threshold)?);
        let keys = SecretKeySet::random(threshold - 1, &mut rng);
        let set = keys.public_keys();
        let shares: BTreeMap<u64, SignatureShare> = (0..u64::try_from(members)?)
            .map(|index| (index, bls::sign_share(&keys.secret_key_share(index), &msg)))
            .collect();
        let first: BTreeMap<u64, SignatureShare> =
            shares.iter().take(threshold).map(|(index, share)| (*index, share.clone())).collect();
        let last_index = *shares.keys().next_back().context("no shares")?;
        let last_share = shares.get(&last_index).context("no last share")?;
        anyhow::ensure!(
            shares.iter().all(|(index, share)| bls::verify_share(&set, *index, share, &msg)),
            "a share does not verify at T = {threshold}"
        );
        let signature = bls::combine(&set, &first, &msg)?;

        println!("T = {threshold} of {members} members:");
        let baseline = mean_micros(BUDGET, || bls::verify_signature(&set.public_key(), &signature, &msg));
        row("plain verify of the signature", baseline, baseline);
        row("verify 1 share", mean_micros(BUDGET, || bls::verify_share(&set, last_index, last_share, &msg)), baseline);
        row(
            &format!("verify {threshold} shares"),
            mean_micros(BUDGET, || first.iter().all(|(index, share)| bls::verify_share(&set, *index, share, &msg))),
            baseline,
        );
        row(
            &format!("combine {threshold} shares + verify"),
            mean_micros(BUDGET, || bls::combine(&set, &first, &msg)),
            baseline,
        );
    }
    Ok(())
}
