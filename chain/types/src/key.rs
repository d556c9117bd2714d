//! Sidechain account keys (secp256k1) and address derivation.

use k256::ecdsa::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::address::Address;

/// A secp256k1 account key. Holds the secret; keep it out of logs.
#[derive(Clone)]
pub struct AccountKey {
    secret: SigningKey,
}

/// Why key material was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid secp256k1 secret key (expected 32 bytes, non-zero, below the group order)")]
pub struct KeyError;

impl AccountKey {
    /// A key from 32 secret bytes.
    ///
    /// # Errors
    /// When the bytes are not a valid secp256k1 scalar.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        SigningKey::from_slice(bytes).map(|secret| AccountKey { secret }).map_err(|_| KeyError)
    }

    /// A deterministic key derived from a seed phrase: `SHA256(seed)` as the secret. For devnets
    /// and tests only: anyone who knows the seed holds the key.
    ///
    /// # Errors
    /// In the negligible case that the hash is not a valid scalar.
    pub fn from_seed(seed: &str) -> Result<Self, KeyError> {
        Self::from_secret_bytes(&Sha256::digest(seed.as_bytes()))
    }

    /// The compressed SEC1 public key.
    pub fn public_key_bytes(&self) -> [u8; 33] {
        compressed(self.secret.verifying_key())
    }

    /// The account address.
    pub fn address(&self) -> Address {
        address_of(self.secret.verifying_key())
    }

    /// The key as cosmrs' signer, for building transactions.
    pub(crate) fn cosmrs_signing_key(&self) -> cosmrs::crypto::secp256k1::SigningKey {
        cosmrs::crypto::secp256k1::SigningKey::new(Box::new(self.secret.clone()))
    }
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountKey({})", self.address())
    }
}

/// The compressed SEC1 encoding of a public key.
pub fn compressed(key: &VerifyingKey) -> [u8; 33] {
    let point = key.to_encoded_point(true);
    let mut out = [0u8; 33];
    out.copy_from_slice(point.as_bytes());
    out
}

/// The account address of a public key: `RIPEMD160(SHA256(compressed key))`, as in Cosmos SDK.
pub fn address_of(key: &VerifyingKey) -> Address {
    address_of_compressed(&compressed(key))
}

/// The account address of a compressed SEC1 public key.
pub fn address_of_compressed(key: &[u8; 33]) -> Address {
    use ripemd::Digest as _;
    let digest: [u8; 20] = ripemd::Ripemd160::digest(Sha256::digest(key)).into();
    Address::from_bytes(digest)
}

/// SHA-256 of `bytes` (the hash used for address derivation and module addresses).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
