//! Key generation and heartbeat costs: the cryptographic work of a dealer-free key generation
//! (`ferry_types::dkg`) for n = 4, 16, 20 and 64 members (T = 2n/3 + 1; 64 is beyond the Bitcoin
//! peg, for the BLS part alone), the bytes it puts on the chain, and what the chain spends per
//! block checking heartbeats — each beside one plain BLS verification (one hash to G2 and two
//! pairings, the vault's check) measured in the same run.
//!
//! In process and single-threaded, keys from a seeded RNG. The protocol's wall time on the
//! devnet is bounded by its phases (`params.dkg.phase_blocks` blocks each), not by this work;
//! `devnet/tests/federation_e2e.rs` runs it.

use std::time::Duration;

use ferry_types::dkg::{self, EncryptionKey, G1Affine, Polynomial, Run};
use ferry_types::liveness;
use ferry_types::msg::federation::{MsgDkgConfirm, MsgDkgDeal, MsgHeartbeat};
use ferry_types::release::bls;
use ferry_types::{Address, Msg};
use rand_chacha::ChaChaRng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::bls::mean_micros as mean_micros_for;

/// Federation sizes measured.
const SIZES: [usize; 4] = [4, 16, 20, 64];

/// Each figure is the mean over as many runs as fit in this time (and at least three).
const BUDGET: Duration = Duration::from_millis(800);

fn mean_micros<T>(work: impl FnMut() -> T) -> f64 {
    mean_micros_for(BUDGET, work)
}

fn uniform(rng: &mut ChaChaRng) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn row(label: &str, micros: f64, baseline: f64) {
    println!("    {label:<46} {micros:>12.0} µs  ratio {:>8.2}", micros / baseline);
}

/// Prints the table.
///
/// # Errors
/// When a dealing does not check or a share does not match (the bench then measured nothing
/// meaningful).
pub fn run() -> anyhow::Result<()> {
    println!("\n== key generation and heartbeats (1 thread) ==");
    let set = threshold_crypto::SecretKeySet::random(2, &mut ChaChaRng::seed_from_u64(7));
    let message = b"ferry bench baseline".to_vec();
    let signature = bls::combine(
        &set.public_keys(),
        &(0..3u64).map(|i| (i, bls::sign_share(&set.secret_key_share(i), &message))).collect(),
        &message,
    )?;
    let baseline = mean_micros(|| bls::verify_signature(&set.public_keys().public_key(), &signature, &message));
    println!("  baseline: one BLS signature verification {baseline:.0} µs");
    let run = Run { session: 1, attempt: 1 };
    for n in SIZES {
        let threshold = n * 2 / 3 + 1;
        let mut rng = ChaChaRng::seed_from_u64(u64::try_from(n)?);
        let keys: Vec<EncryptionKey> =
            (0..n).map(|_| EncryptionKey::from_secret(dkg::scalar_from_uniform_bytes(&uniform(&mut rng)))).collect();
        let publics: Vec<G1Affine> = keys.iter().map(EncryptionKey::public).collect();
        let polynomials: Vec<Polynomial> = (0..n)
            .map(|_| Polynomial::from_uniform_bytes(&(0..threshold).map(|_| uniform(&mut rng)).collect::<Vec<_>>()))
            .collect();
        let dealings: Vec<dkg::Dealing> = polynomials
            .iter()
            .zip(&keys)
            .zip(0u32..)
            .map(|((polynomial, key), dealer)| dkg::deal(polynomial, run, dealer, key, &publics))
            .collect();
        for (dealing, dealer) in dealings.iter().zip(0u32..) {
            dkg::check_dealing(&dealing.commitment, &dealing.proof, run, dealer, threshold)?;
        }
        println!("  n = {n}, T = {threshold}:");
        let deal = mean_micros(|| dkg::deal(&polynomials[0], run, 0, &keys[0], &publics));
        row("a member deals (commitment, proof, n shares)", deal, baseline);
        let check = mean_micros(|| dkg::check_dealing(&dealings[0].commitment, &dealings[0].proof, run, 0, threshold));
        row("the chain checks one dealing", check, baseline);
        let me = 1u32;
        let receive_all = mean_micros(|| {
            dealings
                .iter()
                .zip(0u32..)
                .map(|(dealing, dealer)| {
                    let share = &dealing.encrypted_shares[me as usize];
                    dkg::receive(
                        run,
                        &keys[me as usize],
                        me,
                        (dealer, &publics[dealer as usize], &dealing.commitment),
                        share,
                    )
                })
                .collect::<Vec<_>>()
        });
        row("a member decrypts and checks its n shares", receive_all, baseline);
        let group = dkg::group_commitment(dealings.iter().map(|d| d.commitment.as_slice()));
        let key_set = dkg::key_set(&group)?;
        let final_share = dkg::combine_shares(polynomials.iter().map(|p| p.share(me)));
        let secret = dkg::secret_key_share(&final_share).ok_or_else(|| anyhow::anyhow!("share conversion"))?;
        let confirmation = dkg::sign_confirmation(&secret, run, &group[0]);
        anyhow::ensure!(dkg::verify_confirmation(&key_set, me, &confirmation, run, &group[0]), "confirmation");
        let confirm = mean_micros(|| dkg::verify_confirmation(&key_set, me, &confirmation, run, &group[0]));
        row("the chain checks one confirmation", confirm, baseline);
        let (accuser, dealer) = (&keys[1], publics[0]);
        let pairwise = accuser.pairwise_key(&dealer);
        let proof = accuser.prove_pairwise_key(&dealer, &pairwise, run);
        let judge = mean_micros(|| {
            dkg::verify_pairwise_key(&accuser.public(), &dealer, &pairwise, run, &proof)
                && dkg::judge_complaint(
                    run,
                    (0, &dealings[0].commitment),
                    (1, &dealings[0].encrypted_shares[1]),
                    &pairwise,
                ) == dkg::Verdict::AccuserFaulty
        });
        row("the chain judges one complaint", judge, baseline);
        let chain_total = n as f64 * (check + confirm);
        row("the chain's work for the whole run (no complaint)", chain_total, baseline);
        let member_total = deal + receive_all;
        row("each member's work for the whole run", member_total, baseline);
        let participant = Address::from_bytes([1; 20]);
        let deal_bytes: usize = dealings
            .iter()
            .map(|d| {
                Msg::DkgDeal(MsgDkgDeal {
                    participant,
                    run,
                    commitment: d.commitment.clone(),
                    proof: d.proof,
                    encrypted_shares: d.encrypted_shares.clone(),
                })
                .to_any()
                .value
                .len()
            })
            .sum();
        let confirm_bytes = n * Msg::DkgConfirm(MsgDkgConfirm { participant, run, signature: confirmation.clone() })
            .to_any()
            .value
            .len();
        println!(
            "    chain bytes (message bodies): dealings {deal_bytes}, confirmations {confirm_bytes}, total {} ({} per member)",
            deal_bytes + confirm_bytes,
            (deal_bytes + confirm_bytes) / n
        );
    }
    heartbeats(baseline)
}

/// The chain's cost of one member's heartbeat (a BLS share and an ECDSA check), and per block at
/// the default interval for a 4- and a 20-member federation.
fn heartbeats(baseline: f64) -> anyhow::Result<()> {
    let set = threshold_crypto::SecretKeySet::random(2, &mut ChaChaRng::seed_from_u64(9));
    let bitcoin = secp256k1::SecretKey::from_slice(&[5; 32])?;
    let public = secp256k1::PublicKey::from_secret_key(secp256k1::global::SECP256K1, &bitcoin);
    let message = liveness::heartbeat_message("ferry-bench", 3, &[1; 32]);
    let share = liveness::sign_share(&set.secret_key_share(1u64), &message);
    let ecdsa = liveness::sign_bitcoin(&bitcoin, &message);
    anyhow::ensure!(liveness::verify_share(&set.public_keys(), 1, &share, &message), "heartbeat share");
    let one = mean_micros(|| {
        liveness::verify_share(&set.public_keys(), 1, &share, &message)
            && liveness::verify_bitcoin(&public, &ecdsa, &message)
    });
    let interval = ferry_types::genesis::LivenessParams::default().heartbeat_interval;
    let bytes = Msg::Heartbeat(MsgHeartbeat {
        member: Address::from_bytes([1; 20]),
        round: 3,
        bls_signature: Some(share),
        bitcoin_signature: Some(ecdsa),
    })
    .to_any()
    .value
    .len();
    println!("  heartbeats (a round every {interval} blocks):");
    row("the chain checks one heartbeat", one, baseline);
    for members in [4u32, 20] {
        let per_block = one * f64::from(members) / interval as f64;
        row(&format!("per block, {members} members"), per_block, baseline);
    }
    println!("    bytes per heartbeat message body: {bytes}");
    Ok(())
}
