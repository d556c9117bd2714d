#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;

fn uniform(rng: &mut ChaCha20Rng) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    rng.fill_bytes(&mut bytes);
    bytes
}

struct Participant {
    key: EncryptionKey,
    polynomial: Polynomial,
}

fn participants(n: usize, threshold: usize, seed: u64) -> Vec<Participant> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let key = EncryptionKey::from_secret(scalar_from_uniform_bytes(&uniform(&mut rng)));
            let random: Vec<[u8; 64]> = (0..threshold).map(|_| uniform(&mut rng)).collect();
            Participant { key, polynomial: Polynomial::from_uniform_bytes(&random) }
        })
        .collect()
}

const RUN: Run = Run { session: 7, attempt: 1 };

fn dealings(group: &[Participant]) -> Vec<Dealing> {
    let keys: Vec<G1Affine> = group.iter().map(|p| p.key.public()).collect();
    group.iter().zip(0u32..).map(|(p, i)| deal(&p.polynomial, RUN, i, &p.key, &keys)).collect()
}

/// What participant `j` computes from the posted dealings: its shares from every dealer.
fn received(group: &[Participant], dealings: &[Dealing], j: u32) -> Vec<Scalar> {
    let me = &group[j as usize];
    dealings
        .iter()
        .zip(0u32..)
        .map(|(dealing, i)| {
            let key = me.key.pairwise_key(&group[i as usize].key.public());
            let share = decrypt_share(&dealing.encrypted_shares[j as usize], &share_pad(RUN, i, j, &key)).unwrap();
            assert!(share_matches(&dealing.commitment, j, &share), "dealer {i}'s share for {j} matches");
            share
        })
        .collect()
}

#[test]
fn an_honest_run_gives_a_key_any_threshold_of_shares_signs_for() {
    let (n, t) = (4, 3);
    let group = participants(n, t, 1);
    let dealings = dealings(&group);
    for (dealing, i) in dealings.iter().zip(0u32..) {
        check_dealing(&dealing.commitment, &dealing.proof, RUN, i, t).unwrap();
    }
    let commitment = group_commitment(dealings.iter().map(|d| d.commitment.as_slice()));
    let set = key_set(&commitment).unwrap();
    assert_eq!(bls::threshold_signatures(&set), 3);
    let msg = b"a release payload";
    let mut shares = BTreeMap::new();
    for j in 0..n as u32 {
        let secret = combine_shares(received(&group, &dealings, j));
        assert_eq!(base(&secret), commitment_at(&commitment, j), "public share of {j}");
        let share = secret_key_share(&secret).unwrap();
        let confirmation = sign_confirmation(&share, RUN, &commitment[0]);
        assert!(verify_confirmation(&set, j, &confirmation, RUN, &commitment[0]));
        assert!(!verify_confirmation(&set, (j + 1) % n as u32, &confirmation, RUN, &commitment[0]));
        assert!(!bls::verify_share(&set, u64::from(j), &confirmation, &confirmation_message(RUN, &commitment[0])));
        shares.insert(u64::from(j), bls::sign_share(&share, msg));
    }
    // Any three of the four combine into the group's signature.
    for skip in 0..n as u64 {
        let three: BTreeMap<u64, SignatureShare> =
            shares.iter().filter(|(i, _)| **i != skip).map(|(i, s)| (*i, s.clone())).collect();
        let signature = bls::combine(&set, &three, msg).unwrap();
        assert!(bls::verify_signature(&set.public_key(), &signature, msg));
    }
    // The group key is the sum of the dealers' constant terms, which nobody knows alone.
    let secret = combine_shares(group.iter().map(|p| p.polynomial.coefficients[0]));
    assert_eq!(base(&secret), commitment[0]);
}

#[test]
fn a_wrong_share_convicts_its_dealer_and_a_false_complaint_its_accuser() {
    let group = participants(4, 3, 2);
    let mut dealings = dealings(&group);
    // Dealer 3 sends participant 1 a share off its polynomial.
    let (dealer, victim) = (3u32, 1u32);
    let key = group[victim as usize].key.pairwise_key(&group[dealer as usize].key.public());
    let pad = share_pad(RUN, dealer, victim, &key);
    let wrong = group[dealer as usize].polynomial.share(victim) + Scalar::one();
    dealings[dealer as usize].encrypted_shares[victim as usize] = xor(&scalar_to_bytes(&wrong), &pad);

    let victim_key = &group[victim as usize].key;
    let dealer_public = group[dealer as usize].key.public();
    let proof = victim_key.prove_pairwise_key(&dealer_public, &key, RUN);
    assert!(verify_pairwise_key(&victim_key.public(), &dealer_public, &key, RUN, &proof));
    let verdict = judge_complaint(
        RUN,
        (dealer, &dealings[dealer as usize].commitment),
        (victim, &dealings[dealer as usize].encrypted_shares[victim as usize]),
        &key,
    );
    assert_eq!(verdict, Verdict::DealerFaulty);

    // Participant 2 accuses dealer 0, whose share is fine.
    let accuser = &group[2].key;
    let key = accuser.pairwise_key(&group[0].key.public());
    let verdict = judge_complaint(RUN, (0, &dealings[0].commitment), (2, &dealings[0].encrypted_shares[2]), &key);
    assert_eq!(verdict, Verdict::AccuserFaulty);

    // A share whose plaintext is not a scalar convicts the dealer too.
    let garbage = xor(&[0xff; 32], &share_pad(RUN, 0, 2, &key));
    assert_eq!(judge_complaint(RUN, (0, &dealings[0].commitment), (2, &garbage), &key), Verdict::DealerFaulty);
}

#[test]
fn a_complaint_cannot_reveal_a_made_up_key() {
    let group = participants(3, 2, 3);
    let (accuser, dealer) = (&group[0].key, group[1].key.public());
    let honest = accuser.pairwise_key(&dealer);
    let proof = accuser.prove_pairwise_key(&dealer, &honest, RUN);
    // Another point (as if the accuser made up a key to decrypt garbage) does not verify.
    let made_up = group[2].key.pairwise_key(&dealer);
    assert!(!verify_pairwise_key(&accuser.public(), &dealer, &made_up, RUN, &proof));
    let proof_for_made_up = accuser.prove_pairwise_key(&dealer, &made_up, RUN);
    assert!(!verify_pairwise_key(&accuser.public(), &dealer, &made_up, RUN, &proof_for_made_up));
    // Nor in another run, nor for another accuser.
    let other = Run { session: 7, attempt: 2 };
    assert!(!verify_pairwise_key(&accuser.public(), &dealer, &honest, other, &proof));
    assert!(!verify_pairwise_key(&group[2].key.public(), &dealer, &honest, RUN, &proof));
    // Round trip of the wire form.
    assert_eq!(Proof::from_bytes(&proof.to_bytes(), "proof").unwrap(), proof);
    assert!(Proof::from_bytes(&[0xff; 64], "proof").is_err());
}

#[test]
fn a_dealing_is_bound_to_its_dealer_run_and_threshold() {
    let group = participants(4, 3, 4);
    let dealings = dealings(&group);
    let d = &dealings[2];
    check_dealing(&d.commitment, &d.proof, RUN, 2, 3).unwrap();
    assert!(matches!(check_dealing(&d.commitment, &d.proof, RUN, 1, 3), Err(DkgError::ProofInvalid { .. })));
    let later = Run { session: 7, attempt: 2 };
    assert!(matches!(check_dealing(&d.commitment, &d.proof, later, 2, 3), Err(DkgError::ProofInvalid { .. })));
    assert!(matches!(check_dealing(&d.commitment, &d.proof, RUN, 2, 4), Err(DkgError::CommitmentLength { .. })));
    // Copying another dealer's commitment (a rogue key) comes without a proof for this position.
    assert!(check_dealing(&dealings[0].commitment, &d.proof, RUN, 2, 3).is_err());
}

#[test]
fn an_encryption_key_registration_proves_possession_for_its_account() {
    let group = participants(2, 1, 5);
    let alice = Address::from_bytes([1; 20]);
    let bob = Address::from_bytes([2; 20]);
    let proof = group[0].key.prove_possession(&alice);
    assert!(verify_possession(&group[0].key.public(), &alice, &proof));
    assert!(!verify_possession(&group[0].key.public(), &bob, &proof));
    assert!(!verify_possession(&group[1].key.public(), &alice, &proof));
    let bytes = encode_point(&group[0].key.public());
    assert_eq!(decode_point(&bytes, "key").unwrap(), group[0].key.public());
    assert!(decode_point(&G1Affine::identity().to_compressed(), "key").is_err());
    assert!(decode_point(&bytes[..47], "key").is_err());
}

#[test]
fn no_participant_can_read_another_participants_shares() {
    let group = participants(4, 3, 6);
    let dealings = dealings(&group);
    // Participant 0 tries its own pairwise keys on the shares sent to participant 1.
    for (dealing, i) in dealings.iter().zip(0u32..) {
        let own_key = group[0].key.pairwise_key(&group[i as usize].key.public());
        let attempt = decrypt_share(&dealing.encrypted_shares[1], &share_pad(RUN, i, 1, &own_key));
        assert!(!attempt.is_some_and(|share| share_matches(&dealing.commitment, 1, &share)));
    }
}

#[test]
fn scalars_round_trip_big_endian() {
    let s = Scalar::from(0x0102_0304u64);
    let bytes = scalar_to_bytes(&s);
    assert_eq!(&bytes[28..], &[1, 2, 3, 4]);
    assert_eq!(scalar_from_bytes(&bytes), Some(s));
    assert_eq!(scalar_from_bytes(&[0xff; 32]), None);
}
