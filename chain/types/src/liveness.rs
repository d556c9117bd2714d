//! Federation liveness: every `heartbeat_interval` blocks the chain opens a heartbeat round with
//! a challenge; each member answers with a BLS signature share and a Bitcoin-key signature over
//! [`heartbeat_message`], proving both of its signing keys are online now.
//!
//! Neither signature can ever be used for anything else:
//! - the BLS share is over the RFC 9380 hash of the message under [`HEARTBEAT_DST`], a tag no
//!   release uses (a release share hashes under `RELEASE_DST`), and the message starts with
//!   `FERRY_HEARTBEAT_V1`, not a release or listing tag word;
//! - the Bitcoin key signs [`bitcoin_digest`], a BIP340-style tagged SHA-256 of the message. A
//!   Bitcoin signature hash is SHA-256 of a 32-byte value (the first SHA-256 of the preimage);
//!   the heartbeat digest is SHA-256 of at least 64 + [`MESSAGE_MIN_LEN`] bytes, so the two
//!   could only coincide through a SHA-256 collision.
//!
//! The challenge mixes the block time and the hash of the opening block's transactions, so a
//! member cannot sign heartbeats ahead of time and go offline.

use sha2::{Digest, Sha256};

use crate::release::bls::{self, PublicKeySet, SecretKeyShare, SignatureShare};

/// Domain separation tag of heartbeat BLS shares.
pub const HEARTBEAT_DST: &[u8] = b"FERRY_HEARTBEAT_V1_BLS12381G2_XMD:SHA-256_SSWU_RO_";

/// The message's leading bytes.
pub const MESSAGE_TAG: &[u8] = b"FERRY_HEARTBEAT_V1";

/// The shortest heartbeat message: the tag, an empty chain id's length, the round and the
/// challenge.
pub const MESSAGE_MIN_LEN: usize = MESSAGE_TAG.len() + 4 + 8 + 32;

const BITCOIN_DIGEST_TAG: &[u8] = b"ferry/heartbeat/bitcoin";

/// The challenge of round `round` opened at a block of time `time_unix` whose transactions hash
/// to `txs_hash`.
pub fn challenge(chain_id: &str, round: u64, time_unix: i64, txs_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"ferry-heartbeat-challenge-v1");
    hasher.update((chain_id.len() as u32).to_be_bytes());
    hasher.update(chain_id.as_bytes());
    hasher.update(round.to_be_bytes());
    hasher.update(time_unix.to_be_bytes());
    hasher.update(txs_hash);
    hasher.finalize().into()
}

/// What each member signs in round `round`.
pub fn heartbeat_message(chain_id: &str, round: u64, challenge: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MESSAGE_MIN_LEN + chain_id.len());
    out.extend_from_slice(MESSAGE_TAG);
    out.extend_from_slice(&(chain_id.len() as u32).to_be_bytes());
    out.extend_from_slice(chain_id.as_bytes());
    out.extend_from_slice(&round.to_be_bytes());
    out.extend_from_slice(challenge);
    out
}

/// The digest the Bitcoin key signs: `SHA256(SHA256(tag) ‖ SHA256(tag) ‖ message)`.
pub fn bitcoin_digest(message: &[u8]) -> [u8; 32] {
    let tag = Sha256::digest(BITCOIN_DIGEST_TAG);
    Sha256::new().chain_update(tag).chain_update(tag).chain_update(message).finalize().into()
}

/// The member's BLS share over the heartbeat.
pub fn sign_share(share: &SecretKeyShare, message: &[u8]) -> SignatureShare {
    share.sign_g2(bls::hash_to_g2(message, HEARTBEAT_DST))
}

/// Whether `signature` is member `index`'s heartbeat share.
pub fn verify_share(set: &PublicKeySet, index: u64, signature: &SignatureShare, message: &[u8]) -> bool {
    set.public_key_share(index).verify_g2(signature, bls::hash_to_g2(message, HEARTBEAT_DST))
}

/// The Bitcoin key's heartbeat signature (64-byte compact ECDSA).
pub fn sign_bitcoin(key: &secp256k1::SecretKey, message: &[u8]) -> [u8; 64] {
    let digest = secp256k1::Message::from_digest(bitcoin_digest(message));
    secp256k1::global::SECP256K1.sign_ecdsa(&digest, key).serialize_compact()
}

/// Whether `signature` is `key`'s heartbeat signature over `message`.
pub fn verify_bitcoin(key: &secp256k1::PublicKey, signature: &[u8; 64], message: &[u8]) -> bool {
    let digest = secp256k1::Message::from_digest(bitcoin_digest(message));
    secp256k1::ecdsa::Signature::from_compact(signature)
        .is_ok_and(|signature| secp256k1::global::SECP256K1.verify_ecdsa(&digest, &signature, key).is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use rand::SeedableRng;
    use threshold_crypto::SecretKeySet;

    use super::*;
    use crate::release::eth::{LISTING_TAG, RELEASE_TAG};

    #[test]
    fn a_heartbeat_is_never_a_release_or_a_sighash() {
        let set = SecretKeySet::random(2, &mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
        let challenge = challenge("ferry-1", 7, 1_700_000_000, &[3; 32]);
        let message = heartbeat_message("ferry-1", 7, &challenge);
        assert!(message.len() >= MESSAGE_MIN_LEN);
        assert_ne!(&message[..32], RELEASE_TAG.as_slice());
        assert_ne!(&message[..32], LISTING_TAG.as_slice());
        let share = sign_share(&set.secret_key_share(1u64), &message);
        assert!(verify_share(&set.public_keys(), 1, &share, &message));
        assert!(!verify_share(&set.public_keys(), 0, &share, &message));
        // The same key share's release signature over the same bytes is another point.
        assert!(!bls::verify_share(&set.public_keys(), 1, &share, &message));
        assert_ne!(bls::sign_share(&set.secret_key_share(1u64), &message), share);

        let key = secp256k1::SecretKey::from_slice(&[9; 32]).unwrap();
        let public = secp256k1::PublicKey::from_secret_key(secp256k1::global::SECP256K1, &key);
        let signature = sign_bitcoin(&key, &message);
        assert!(verify_bitcoin(&public, &signature, &message));
        assert!(!verify_bitcoin(&public, &signature, &heartbeat_message("ferry-1", 8, &challenge)));
        // Not a signature over the message's double SHA-256 (how Bitcoin hashes what it signs).
        let sighash_style: [u8; 32] = Sha256::digest(Sha256::digest(&message)).into();
        assert_ne!(bitcoin_digest(&message), sighash_style);
    }

    #[test]
    fn challenges_differ_by_round_time_and_block() {
        let base = challenge("c", 1, 10, &[0; 32]);
        assert_ne!(base, challenge("c", 2, 10, &[0; 32]));
        assert_ne!(base, challenge("c", 1, 11, &[0; 32]));
        assert_ne!(base, challenge("c", 1, 10, &[1; 32]));
        assert_ne!(base, challenge("d", 1, 10, &[0; 32]));
    }
}
