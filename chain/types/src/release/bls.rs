//! The federation's BLS threshold signatures (threshold_crypto) over the RFC 9380 hash-to-curve point.
//!
//! Keys and shares are threshold_crypto's: BLS12-381 with public keys in G1 and signatures in G2.
//! What a member signs is not threshold_crypto's own `hash_g2` of the message but the standard
//! hash-to-curve point `BLS12381G2_XMD:SHA-256_SSWU_RO_` (RFC 9380, computed by the `bls12_381`
//! crate) under [`RELEASE_DST`], so that the Ethereum vault can recompute the same point with the
//! EIP-2537 precompiles and check the combined signature with the plain BLS equation
//! `e(pk, H(m)) == e(g1, sig)`. Both crates use the zcash point encoding, so points cross between
//! them as bytes.
//!
//! Encodings, fixed here once for genesis, manifests, transactions and the vault:
//! - a public key set is lowercase hex of its commitment coefficients, each a 48-byte compressed
//!   G1 point, coefficient 0 first (the federation public key); a set of T coefficients combines
//!   T signature shares;
//! - a signature share or signature is a 96-byte compressed G2 point (hex on the wire);
//! - the vault reads the EIP-2537 forms ([`eip2537_g1`], [`eip2537_g2`]).
//!
//! Pure: no randomness and no key generation here (the signer crate owns the key ceremony).

use std::collections::BTreeMap;

use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use serde::{Deserialize, Serialize};
use threshold_crypto::group::{CurveAffine, EncodedPoint};
use threshold_crypto::pairing::bls12_381::{G1Compressed, G2Compressed, G2Uncompressed};
pub use threshold_crypto::{G2Affine, PublicKey, PublicKeySet, SecretKeyShare, Signature, SignatureShare};

/// Domain separation tag of Ferry release signatures (RFC 9380 section 3.1: the suite name with
/// an application prefix). The vault hashes with the same tag.
pub const RELEASE_DST: &[u8] = b"FERRY_RELEASE_V1_BLS12381G2_XMD:SHA-256_SSWU_RO_";

/// Bytes of a compressed G1 point (a public key or commitment coefficient).
pub const G1_COMPRESSED_LEN: usize = 48;

/// Bytes of a compressed G2 point (a signature or signature share).
pub const G2_COMPRESSED_LEN: usize = 96;

/// The zcash encoding's point-at-infinity flag, in the first byte.
const INFINITY_FLAG: u8 = 0x40;

/// Bytes of one base-field element in the EIP-2537 encoding: 16 zero bytes and 48 big-endian bytes.
const EIP2537_FP_LEN: usize = 64;

/// Bytes of one base-field element in the zcash encoding.
const FP_LEN: usize = 48;

/// Why a key set, share or signature was refused, or shares could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlsError {
    /// The public key set text is not lowercase hex.
    #[error("`{0}` is not a public key set: expected lowercase hex of 48-byte compressed G1 points")]
    KeySetNotHex(String),
    /// The public key set is empty or not a whole number of 48-byte points.
    #[error("a public key set of {0} bytes: expected a non-zero multiple of 48 (compressed G1 points)")]
    KeySetLength(usize),
    /// A coefficient of the public key set is not a point of the prime-order subgroup of G1.
    #[error(
        "coefficient {index} of the public key set (`{hex}`) is not a compressed G1 point in the prime-order subgroup"
    )]
    InvalidCoefficient {
        /// Position of the coefficient (0 = the federation public key).
        index: usize,
        /// The coefficient's bytes, in hex.
        hex: String,
    },
    /// A coefficient of the public key set is the point at infinity: no dealer produces that.
    #[error("coefficient {index} of the public key set is the point at infinity")]
    IdentityCoefficient {
        /// Position of the coefficient (0 = the federation public key).
        index: usize,
    },
    /// A signature or signature share does not have the length of a compressed G2 point.
    #[error("a {what} is 96 bytes (a compressed G2 point), got {len}")]
    SignatureLength {
        /// `signature` or `signature share`.
        what: &'static str,
        /// The length given.
        len: usize,
    },
    /// A signature or signature share is not a point of the prime-order subgroup of G2, or is the
    /// point at infinity.
    #[error("`{hex}` is not a {what}: expected a compressed G2 point in the prime-order subgroup, not the identity")]
    InvalidSignature {
        /// `signature` or `signature share`.
        what: &'static str,
        /// The bytes given, in hex.
        hex: String,
    },
    /// threshold_crypto refused a key set whose coefficients all decoded (its serde layout changed).
    #[error("threshold_crypto refused the public key set: {0}")]
    KeySetLayout(String),
    /// Fewer shares than the threshold.
    #[error("{have} signature shares, the federation threshold is {need}")]
    NotEnoughShares {
        /// Shares given.
        have: usize,
        /// Shares needed (T).
        need: usize,
    },
    /// The shares combined into a signature that does not verify: at least one was invalid.
    #[error("the signature combined from the shares of members {members:?} does not verify against the federation key")]
    CombinedSignatureInvalid {
        /// The member indices whose shares were combined.
        members: Vec<u64>,
    },
}

/// The point `msg` hashes to under `dst`: RFC 9380 `hash_to_curve` with the suite
/// `BLS12381G2_XMD:SHA-256_SSWU_RO_` (expand_message_xmd with SHA-256, simplified SWU map,
/// random-oracle construction), as a threshold_crypto point.
pub fn hash_to_g2(msg: &[u8], dst: &[u8]) -> G2Affine {
    let point = <bls12_381::G2Projective as HashToCurve<ExpandMsgXmd<sha2_09::Sha256>>>::hash_to_curve(msg, dst);
    let mut encoded = G2Uncompressed::empty();
    encoded.as_mut().copy_from_slice(&bls12_381::G2Affine::from(point).to_uncompressed());
    // The bls12_381 crate returns a point of the prime-order subgroup (it clears the cofactor) in
    // the zcash encoding both crates share, so the decoding skips the on-curve and subgroup checks
    // (a G2 subgroup check would cost a quarter of the hash); the RFC 9380 vector tests pin the
    // mapping. Failing would be a deliberate crash, never reached: signing a substitute point
    // would make signatures that no verifier accepts.
    #[allow(clippy::expect_used)]
    encoded.into_affine_unchecked().expect("bls12_381 hash_to_curve yields a valid G2 subgroup point")
}

/// Lowercase hex of the set's commitment coefficients (48-byte compressed G1 points, coefficient 0,
/// the federation public key, first): the form genesis and federation manifests carry.
pub fn encode_public_key_set(set: &PublicKeySet) -> String {
    coefficients(set).iter().map(hex::encode).collect()
}

/// Parses [`encode_public_key_set`]'s form.
///
/// # Errors
/// When the text is not lowercase hex, is empty or not a multiple of 48 bytes, or a coefficient
/// is not a point of G1's prime-order subgroup or is the point at infinity.
pub fn decode_public_key_set(text: &str) -> Result<PublicKeySet, BlsError> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(BlsError::KeySetNotHex(text.to_owned()));
    }
    let bytes = hex::decode(text).map_err(|_| BlsError::KeySetNotHex(text.to_owned()))?;
    if bytes.is_empty() || bytes.len() % G1_COMPRESSED_LEN != 0 {
        return Err(BlsError::KeySetLength(bytes.len()));
    }
    let mut coeff = Vec::with_capacity(bytes.len() / G1_COMPRESSED_LEN);
    for (index, chunk) in bytes.chunks_exact(G1_COMPRESSED_LEN).enumerate() {
        let mut encoded = G1Compressed::empty();
        encoded.as_mut().copy_from_slice(chunk);
        let point =
            encoded.into_affine().map_err(|_| BlsError::InvalidCoefficient { index, hex: hex::encode(chunk) })?;
        if point.is_zero() {
            return Err(BlsError::IdentityCoefficient { index });
        }
        coeff.push(chunk.to_vec());
    }
    // threshold_crypto offers no constructor from coefficients; its serde form is the way in. The
    // points were checked above, and the deserializer checks them again.
    serde_json::to_value(PublicKeySetLayout { commit: CommitmentLayout { coeff } })
        .and_then(serde_json::from_value)
        .map_err(|error| BlsError::KeySetLayout(error.to_string()))
}

/// The number of signature shares that combine into a federation signature (T): the number of
/// the set's coefficients. threshold_crypto's own `threshold()` is T − 1.
pub fn threshold_signatures(set: &PublicKeySet) -> u32 {
    u32::try_from(set.threshold().saturating_add(1)).unwrap_or(u32::MAX)
}

/// The 96-byte compressed form of a signature share.
pub fn encode_signature_share(share: &SignatureShare) -> [u8; G2_COMPRESSED_LEN] {
    share.to_bytes()
}

/// Parses a 96-byte compressed signature share.
///
/// # Errors
/// When the bytes are not 96 long, not a point of G2's prime-order subgroup, or the identity.
pub fn decode_signature_share(bytes: &[u8]) -> Result<SignatureShare, BlsError> {
    decode_signature_as(bytes, "signature share").map(SignatureShare)
}

/// The 96-byte compressed form of a (combined) signature.
pub fn encode_signature(signature: &Signature) -> [u8; G2_COMPRESSED_LEN] {
    signature.to_bytes()
}

/// Parses a 96-byte compressed signature.
///
/// # Errors
/// When the bytes are not 96 long, not a point of G2's prime-order subgroup, or the identity.
pub fn decode_signature(bytes: &[u8]) -> Result<Signature, BlsError> {
    decode_signature_as(bytes, "signature")
}

fn decode_signature_as(bytes: &[u8], what: &'static str) -> Result<Signature, BlsError> {
    let array: &[u8; G2_COMPRESSED_LEN] =
        bytes.try_into().map_err(|_| BlsError::SignatureLength { what, len: bytes.len() })?;
    let invalid = || BlsError::InvalidSignature { what, hex: hex::encode(bytes) };
    let signature = Signature::from_bytes(array).map_err(|_| invalid())?;
    // A point that decoded with the infinity flag set is the identity.
    if array[0] & INFINITY_FLAG != 0 {
        return Err(invalid());
    }
    Ok(signature)
}

/// Member `share`'s signature share over `msg`: threshold_crypto `sign_g2` of
/// [`hash_to_g2`]`(msg, RELEASE_DST)`.
pub fn sign_share(share: &SecretKeyShare, msg: &[u8]) -> SignatureShare {
    share.sign_g2(hash_to_g2(msg, RELEASE_DST))
}

/// Whether `share` is member `index`'s signature share over `msg` under the federation's key set.
/// `index` is the member's position in the federation's member list (0-based), which is
/// threshold_crypto's share index.
pub fn verify_share(set: &PublicKeySet, index: u64, share: &SignatureShare, msg: &[u8]) -> bool {
    set.public_key_share(index).verify_g2(share, hash_to_g2(msg, RELEASE_DST))
}

/// Whether `signature` is a valid signature over `msg` by `key` (the plain BLS check
/// `e(key, H(msg)) == e(g1, signature)`, the one the vault performs).
pub fn verify_signature(key: &PublicKey, signature: &Signature, msg: &[u8]) -> bool {
    key.verify_g2(signature, hash_to_g2(msg, RELEASE_DST))
}

/// The federation signature over `msg`: combines the first T shares by member index (T =
/// [`threshold_signatures`]) and checks the result against the set's public key. Shares past the
/// first T are ignored, so callers should verify each share ([`verify_share`]) before keeping it.
///
/// # Errors
/// [`BlsError::NotEnoughShares`] with fewer than T shares; [`BlsError::CombinedSignatureInvalid`]
/// when one of the combined shares was not a valid share over `msg`.
pub fn combine(set: &PublicKeySet, shares: &BTreeMap<u64, SignatureShare>, msg: &[u8]) -> Result<Signature, BlsError> {
    let need = set.threshold().saturating_add(1);
    if shares.len() < need {
        return Err(BlsError::NotEnoughShares { have: shares.len(), need });
    }
    let chosen: Vec<(u64, &SignatureShare)> = shares.iter().take(need).map(|(index, share)| (*index, share)).collect();
    let members: Vec<u64> = chosen.iter().map(|(index, _)| *index).collect();
    // threshold_crypto fails only on too few shares or a repeated index; neither can happen here.
    let signature =
        set.combine_signatures(chosen).map_err(|_| BlsError::NotEnoughShares { have: shares.len(), need })?;
    if !verify_signature(&set.public_key(), &signature, msg) {
        return Err(BlsError::CombinedSignatureInvalid { members });
    }
    Ok(signature)
}

/// The EIP-2537 encoding of a G1 point (the federation public key as the vault stores it):
/// x then y, each 16 zero bytes followed by the 48-byte big-endian field element. The point at
/// infinity is all zeros.
pub fn eip2537_g1(key: &PublicKey) -> [u8; 2 * EIP2537_FP_LEN] {
    let mut encoded = G1Compressed::empty();
    encoded.as_mut().copy_from_slice(&key.to_bytes());
    // Deliberate crash, never reached: a `PublicKey` only ever holds a valid G1 point, so its own
    // compressed form decodes.
    #[allow(clippy::expect_used)]
    let point = encoded.into_affine().expect("a public key's compressed form decodes");
    let mut out = [0u8; 2 * EIP2537_FP_LEN];
    if point.is_zero() {
        return out;
    }
    // zcash uncompressed G1: x ‖ y, 48 bytes each; flag bits are clear for a finite point.
    let uncompressed = point.into_uncompressed();
    for (slot, element) in out.chunks_exact_mut(EIP2537_FP_LEN).zip(uncompressed.as_ref().chunks_exact(FP_LEN)) {
        slot[EIP2537_FP_LEN - FP_LEN..].copy_from_slice(element);
    }
    out
}

/// The EIP-2537 encoding of a G2 point: x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1, each 16 zero bytes followed
/// by the 48-byte big-endian field element. (The zcash encoding orders each Fp2 element c1
/// first; EIP-2537 wants c0 first.) The point at infinity is all zeros.
pub fn eip2537_g2_point(point: &G2Affine) -> [u8; 4 * EIP2537_FP_LEN] {
    let mut out = [0u8; 4 * EIP2537_FP_LEN];
    if point.is_zero() {
        return out;
    }
    // zcash uncompressed G2: x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0, 48 bytes each; flag bits are clear for a
    // finite point.
    let uncompressed = point.into_uncompressed();
    let zcash: Vec<&[u8]> = uncompressed.as_ref().chunks_exact(FP_LEN).collect();
    for (slot, zcash_position) in out.chunks_exact_mut(EIP2537_FP_LEN).zip([1, 0, 3, 2]) {
        if let Some(element) = zcash.get(zcash_position) {
            slot[EIP2537_FP_LEN - FP_LEN..].copy_from_slice(element);
        }
    }
    out
}

/// The EIP-2537 encoding of a signature (see [`eip2537_g2_point`]): what `FerryVault.release` takes.
pub fn eip2537_g2(signature: &Signature) -> [u8; 4 * EIP2537_FP_LEN] {
    eip2537_g2_point(&g2_point(signature))
}

fn g2_point(signature: &Signature) -> G2Affine {
    let mut encoded = G2Compressed::empty();
    encoded.as_mut().copy_from_slice(&signature.to_bytes());
    // Deliberate crash, never reached: a `Signature` only ever holds a valid G2 point, so its own
    // compressed form decodes.
    #[allow(clippy::expect_used)]
    encoded.into_affine().expect("a signature's compressed form decodes")
}

/// threshold_crypto 0.4's serde layout of [`PublicKeySet`]: `{commit: {coeff: [compressed G1]}}`,
/// each point a tuple of 48 bytes. The only way to read or build a set's coefficients; the
/// round-trip tests pin it.
#[derive(Serialize, Deserialize)]
struct PublicKeySetLayout {
    commit: CommitmentLayout,
}

#[derive(Serialize, Deserialize)]
struct CommitmentLayout {
    coeff: Vec<Vec<u8>>,
}

fn coefficients(set: &PublicKeySet) -> Vec<Vec<u8>> {
    let layout = serde_json::to_value(set).and_then(serde_json::from_value::<PublicKeySetLayout>);
    // Deliberate crash, never reached with the pinned threshold_crypto 0.4: its serde form of a
    // set is the layout above (the key-set round-trip tests fail first if that ever changes), and
    // encoding an empty or partial key set instead would lose the federation's key.
    #[allow(clippy::expect_used)]
    layout.expect("threshold_crypto 0.4 serializes a PublicKeySet as {commit: {coeff: [..]}}").commit.coeff
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use rand::SeedableRng;
    use threshold_crypto::SecretKeySet;

    use super::*;

    fn key_set(threshold_signatures: usize, seed: u64) -> SecretKeySet {
        SecretKeySet::random(threshold_signatures - 1, &mut rand_chacha::ChaChaRng::seed_from_u64(seed))
    }

    #[test]
    fn public_key_set_round_trips_through_hex() -> Result<(), BlsError> {
        let set = key_set(3, 1).public_keys();
        let text = encode_public_key_set(&set);
        assert_eq!(text.len(), 3 * 2 * G1_COMPRESSED_LEN);
        assert!(text.starts_with(&hex::encode(set.public_key().to_bytes())));
        let decoded = decode_public_key_set(&text)?;
        assert_eq!(decoded, set);
        assert_eq!(threshold_signatures(&decoded), 3);
        Ok(())
    }

    #[test]
    fn malformed_public_key_sets_are_refused_by_name() {
        let text = encode_public_key_set(&key_set(2, 2).public_keys());
        assert!(matches!(decode_public_key_set(&text.to_uppercase()), Err(BlsError::KeySetNotHex(_))));
        assert!(matches!(decode_public_key_set("zz"), Err(BlsError::KeySetNotHex(_))));
        assert_eq!(decode_public_key_set(""), Err(BlsError::KeySetLength(0)));
        assert_eq!(decode_public_key_set(&text[..text.len() - 2]), Err(BlsError::KeySetLength(95)));
        // Flip a bit of coefficient 1's x coordinate: off the curve, or on it but outside the subgroup.
        let mut bytes = hex::decode(&text).expect("hex");
        bytes[2 * G1_COMPRESSED_LEN - 1] ^= 1;
        assert!(matches!(
            decode_public_key_set(&hex::encode(&bytes)),
            Err(BlsError::InvalidCoefficient { index: 1, .. })
        ));
        let mut identity = [0u8; G1_COMPRESSED_LEN];
        identity[0] = 0xc0;
        let with_identity = format!("{}{}", &text[..2 * G1_COMPRESSED_LEN], hex::encode(identity));
        assert_eq!(decode_public_key_set(&with_identity), Err(BlsError::IdentityCoefficient { index: 1 }));
    }

    #[test]
    fn signatures_round_trip_and_malformed_ones_are_refused() -> Result<(), BlsError> {
        let keys = key_set(1, 3);
        let share = sign_share(&keys.secret_key_share(0u64), b"payload");
        assert_eq!(decode_signature_share(&encode_signature_share(&share))?, share);
        assert_eq!(decode_signature(&encode_signature(&share.0))?, share.0);
        assert_eq!(decode_signature(&[0u8; 95]), Err(BlsError::SignatureLength { what: "signature", len: 95 }));
        let mut identity = [0u8; G2_COMPRESSED_LEN];
        identity[0] = 0xc0;
        assert!(matches!(decode_signature_share(&identity), Err(BlsError::InvalidSignature { .. })));
        let mut garbled = encode_signature_share(&share);
        garbled[G2_COMPRESSED_LEN - 1] ^= 1;
        assert!(matches!(decode_signature_share(&garbled), Err(BlsError::InvalidSignature { .. })));
        Ok(())
    }

    #[test]
    fn eip2537_g1_is_zero_padded_x_then_y() {
        let key = key_set(1, 4).public_keys().public_key();
        let encoded = eip2537_g1(&key);
        // Compressed form = x with the compression flag (and the sign flag) in the top bits.
        let mut x = key.to_bytes();
        x[0] &= 0x1f;
        assert_eq!(&encoded[..16], &[0u8; 16]);
        assert_eq!(&encoded[16..64], &x);
        assert_eq!(&encoded[64..80], &[0u8; 16]);
        assert_ne!(&encoded[80..], &[0u8; 48]);
    }
}
