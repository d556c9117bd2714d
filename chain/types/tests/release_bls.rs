//! The federation's release signatures end to end, without threshold_crypto's own verification as
//! the judge: the RFC 9380 hash-to-G2 vectors, the threshold flow at 3 of 4, the plain pairing
//! check the vault performs (computed with the `bls12_381` crate from the bytes the vault sees),
//! and the Ethereum payload layout and address checksums.

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;

use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use ferry_types::Amount;
use ferry_types::release::bls::{
    self, BlsError, RELEASE_DST, Signature, SignatureShare, combine, eip2537_g1, eip2537_g2, eip2537_g2_point,
    hash_to_g2, sign_share, verify_share, verify_signature,
};
use ferry_types::release::eth::{EthAddress, EthAddressError, EthBatch, EthReleaseItem, RELEASE_TAG};
use rand::SeedableRng;
use serde::Deserialize;
use threshold_crypto::{PublicKeySet, SecretKeySet, SecretKeyShare};

#[derive(Deserialize)]
struct Vectors {
    dst: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    msg: String,
    x_c0: String,
    x_c1: String,
    y_c0: String,
    y_c1: String,
}

/// `0x` + 96 hex digits as the EIP-2537 64-byte field element (16 zero bytes, then 48).
fn eip2537_fp(hex_text: &str) -> Vec<u8> {
    let bytes = hex::decode(hex_text.strip_prefix("0x").expect("0x prefix")).expect("hex");
    assert_eq!(bytes.len(), 48, "{hex_text} is not a 48-byte field element");
    [vec![0u8; 16], bytes].concat()
}

#[test]
fn hash_to_g2_matches_every_rfc9380_vector() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/rfc9380_hash_to_g2.json");
    let file: Vectors = serde_json::from_str(&std::fs::read_to_string(path).expect(path)).expect("vector JSON");
    assert_eq!(file.dst, "QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_");
    assert_eq!(file.vectors.len(), 5);
    for vector in &file.vectors {
        let encoded = eip2537_g2_point(&hash_to_g2(vector.msg.as_bytes(), file.dst.as_bytes()));
        let coordinates = [&vector.x_c0, &vector.x_c1, &vector.y_c0, &vector.y_c1];
        for (name, (expected, actual)) in
            ["x.c0", "x.c1", "y.c0", "y.c1"].iter().zip(coordinates.iter().zip(encoded.chunks_exact(64)))
        {
            assert_eq!(actual, eip2537_fp(expected).as_slice(), "{name} of H({:?})", vector.msg);
        }
    }
}

struct Federation {
    set: PublicKeySet,
    shares: Vec<SecretKeyShare>,
}

/// A dealer's key set for `members` members of which `threshold_signatures` must sign.
fn dealer(members: u64, threshold_signatures: usize, seed: u64) -> Federation {
    let mut rng = rand_chacha::ChaChaRng::seed_from_u64(seed);
    let secret = SecretKeySet::random(threshold_signatures - 1, &mut rng);
    Federation { set: secret.public_keys(), shares: (0..members).map(|i| secret.secret_key_share(i)).collect() }
}

fn shares_of(federation: &Federation, members: &[u64], msg: &[u8]) -> BTreeMap<u64, SignatureShare> {
    members.iter().map(|&index| (index, sign_share(&federation.shares[index as usize], msg))).collect()
}

/// `e(pk, H(msg)) == e(g1, sig)` with the `bls12_381` crate, from the EIP-2537 bytes the vault
/// receives (public key) and from the compressed signature, cross-checked against its EIP-2537 form.
fn vault_pairing_check(set: &PublicKeySet, signature: &Signature, msg: &[u8]) -> bool {
    let g1 = eip2537_g1(&set.public_key());
    let mut g1_zcash = [0u8; 96];
    g1_zcash[..48].copy_from_slice(&g1[16..64]);
    g1_zcash[48..].copy_from_slice(&g1[80..128]);
    let key = bls12_381::G1Affine::from_uncompressed(&g1_zcash).expect("EIP-2537 public key is a G1 point");
    assert_eq!(key.to_compressed(), set.public_key().to_bytes());

    let sig = bls12_381::G2Affine::from_compressed(&bls::encode_signature(signature)).expect("signature is a G2 point");
    let g2 = eip2537_g2(signature);
    let mut g2_zcash = [0u8; 192];
    // EIP-2537 is c0 first; zcash is c1 first.
    for (zcash_slot, eip_slot) in [1usize, 0, 3, 2].into_iter().enumerate() {
        g2_zcash[48 * zcash_slot..48 * (zcash_slot + 1)].copy_from_slice(&g2[64 * eip_slot + 16..64 * (eip_slot + 1)]);
    }
    assert_eq!(bls12_381::G2Affine::from_uncompressed(&g2_zcash).expect("EIP-2537 signature is a G2 point"), sig);

    let hashed = bls12_381::G2Affine::from(
        <bls12_381::G2Projective as HashToCurve<ExpandMsgXmd<sha2_09::Sha256>>>::hash_to_curve(msg, RELEASE_DST),
    );
    bls12_381::pairing(&key, &hashed) == bls12_381::pairing(&bls12_381::G1Affine::generator(), &sig)
}

#[test]
fn three_of_four_shares_combine_into_a_signature_the_vault_accepts() -> Result<(), BlsError> {
    let federation = dealer(4, 3, 7);
    assert_eq!(bls::threshold_signatures(&federation.set), 3);
    let msg = b"release batch 1";
    let all = shares_of(&federation, &[0, 1, 2, 3], msg);
    for (index, share) in &all {
        assert!(verify_share(&federation.set, *index, share, msg), "member {index}'s share");
    }

    let mut signatures = Vec::new();
    for subset in [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]] {
        let chosen: BTreeMap<u64, SignatureShare> = subset.iter().map(|index| (*index, all[index].clone())).collect();
        signatures.push(combine(&federation.set, &chosen, msg)?);
    }
    assert!(signatures.windows(2).all(|pair| pair[0] == pair[1]), "every 3 of 4 give the same signature");
    // With all four, combine uses the first three by index.
    assert_eq!(combine(&federation.set, &all, msg)?, signatures[0]);

    let signature = &signatures[0];
    assert!(verify_signature(&federation.set.public_key(), signature, msg));
    assert!(vault_pairing_check(&federation.set, signature, msg));
    assert!(!vault_pairing_check(&federation.set, signature, b"release batch 2"));
    Ok(())
}

#[test]
fn shares_for_another_message_or_member_fail() {
    let federation = dealer(4, 3, 8);
    let msg = b"release batch 1";
    let share = sign_share(&federation.shares[1], msg);
    assert!(verify_share(&federation.set, 1, &share, msg));
    assert!(!verify_share(&federation.set, 1, &share, b"release batch 2"));
    assert!(!verify_share(&federation.set, 2, &share, msg));
    // Another federation's member 1 is not this federation's member 1.
    let other = dealer(4, 3, 9);
    assert!(!verify_share(&federation.set, 1, &sign_share(&other.shares[1], msg), msg));
    // A share over threshold_crypto's own hash, not the RFC 9380 point, is not a release share.
    assert!(!verify_share(&federation.set, 1, &federation.shares[1].sign(msg), msg));
}

#[test]
fn too_few_or_invalid_shares_do_not_combine() {
    let federation = dealer(4, 3, 10);
    let msg = b"release batch 1";
    let two = shares_of(&federation, &[0, 3], msg);
    assert_eq!(combine(&federation.set, &two, msg), Err(BlsError::NotEnoughShares { have: 2, need: 3 }));

    let mut forged = shares_of(&federation, &[0, 1, 3], msg);
    forged.insert(1, sign_share(&federation.shares[1], b"something else"));
    assert_eq!(
        combine(&federation.set, &forged, msg),
        Err(BlsError::CombinedSignatureInvalid { members: vec![0, 1, 3] })
    );
    // Shares filed under the wrong member index do not combine either.
    let shuffled: BTreeMap<u64, SignatureShare> =
        [(0, sign_share(&federation.shares[1], msg)), (1, sign_share(&federation.shares[0], msg))]
            .into_iter()
            .chain([(2, sign_share(&federation.shares[2], msg))])
            .collect();
    assert!(matches!(combine(&federation.set, &shuffled, msg), Err(BlsError::CombinedSignatureInvalid { .. })));
}

fn address(text: &str) -> EthAddress {
    text.parse().expect(text)
}

#[test]
fn batch_payload_is_the_solidity_abi_encoding() {
    let batch = EthBatch {
        chain_id: 31337,
        vault: address("0x5fbdb2315678afecb367f032d93f642f64180aa3"),
        epoch: 1,
        nonce: 7,
        exit_height: 42,
        exit_root: [0xee; 32],
        items: vec![
            EthReleaseItem {
                token: EthAddress::ZERO,
                recipient: address("0x70997970c51812dc3a010c7d01b50e0d17dc79c8"),
                amount: Amount::new(1_000_000_000_000_000_000),
            },
            EthReleaseItem {
                token: address("0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"),
                recipient: address("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"),
                amount: Amount::new(u128::MAX),
            },
        ],
    };
    let expected_words = [
        "46455252595f52454c454153455f563100000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000007a69",
        "0000000000000000000000005fbdb2315678afecb367f032d93f642f64180aa3",
        "0000000000000000000000000000000000000000000000000000000000000001",
        "0000000000000000000000000000000000000000000000000000000000000007",
        "000000000000000000000000000000000000000000000000000000000000002a",
        "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
        "0000000000000000000000000000000000000000000000000000000000000100",
        "0000000000000000000000000000000000000000000000000000000000000002",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8",
        "0000000000000000000000000000000000000000000000000de0b6b3a7640000",
        "000000000000000000000000e7f1725e7734ce288f8367e1bb143e90bb3f0512",
        "0000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc",
        "00000000000000000000000000000000ffffffffffffffffffffffffffffffff",
    ];
    let payload = batch.payload();
    assert_eq!(payload.len(), 32 * expected_words.len());
    for (index, (word, expected)) in payload.chunks_exact(32).zip(expected_words).enumerate() {
        assert_eq!(hex::encode(word), expected, "word {index}");
    }
    assert_eq!(&payload[..32], &RELEASE_TAG);
    assert_eq!(batch.signing_message(), payload);

    let empty = EthBatch { items: Vec::new(), ..batch };
    assert_eq!(empty.payload().len(), 9 * 32);
}

#[test]
fn batches_serialize_with_decimal_amounts_and_checksummed_addresses() -> Result<(), serde_json::Error> {
    let batch = EthBatch {
        chain_id: 1,
        vault: address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
        epoch: 2,
        nonce: 3,
        exit_height: 4,
        exit_root: [0xab; 32],
        items: vec![EthReleaseItem {
            token: EthAddress::ZERO,
            recipient: address("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"),
            amount: Amount::new(u128::MAX),
        }],
    };
    let json = serde_json::to_value(&batch)?;
    assert_eq!(json["vault"], "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    assert_eq!(json["items"][0]["amount"], "340282366920938463463374607431768211455");
    assert_eq!(json["exit_root"], "ab".repeat(32));
    assert_eq!(serde_json::from_value::<EthBatch>(json)?, batch);
    Ok(())
}

#[test]
fn eip55_vectors_from_the_eip_round_trip() {
    for checksummed in [
        // All upper case.
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        // All lower case.
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        // Mixed case.
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        let parsed = address(checksummed);
        assert_eq!(parsed.to_string(), checksummed);
        assert_eq!(address(&checksummed.to_lowercase()), parsed);
    }
}

#[test]
fn mixed_case_with_a_bad_checksum_is_refused_with_the_correct_spelling() {
    let wrong = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
    let error = wrong.parse::<EthAddress>().expect_err("bad checksum accepted");
    assert_eq!(
        error,
        EthAddressError::ChecksumMismatch {
            given: wrong.to_owned(),
            expected: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".to_owned(),
        }
    );
    assert!(error.to_string().contains("did you mean 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed?"));
    for malformed in [
        "",
        "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaedd",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg",
        "0x+aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
    ] {
        assert_eq!(malformed.parse::<EthAddress>(), Err(EthAddressError::Malformed(malformed.to_owned())));
    }
}
