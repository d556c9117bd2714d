//! One federation member's secret keys, held so that they are wiped from memory when dropped and
//! never shown by `Debug`.
//!
//! A member holds three secrets, each encoded as 32 big-endian bytes:
//!
//! - its BLS secret key share (threshold_crypto; the dealer's polynomial evaluated at
//!   `index + 1`), a BLS12-381 scalar;
//! - its Bitcoin key (secp256k1), whose public key is its entry in the Bitcoin peg;
//! - its sidechain account key (secp256k1, [`ferry_types::AccountKey`]), whose address is its
//!   federation membership on the chain.
//!
//! The constructor checks all three, so the accessors cannot fail. Wiping: threshold_crypto's
//! `SecretKeyShare` and k256's key (inside `AccountKey`) zeroize themselves on drop, the
//! encodings live in [`zeroize::Zeroizing`], and the `Copy` type `secp256k1::SecretKey` is
//! erased by this type's `Drop`. This module does no I/O.

use std::fmt;

use ferry_types::{AccountKey, Address};
use threshold_crypto::ff::{PrimeField, PrimeFieldRepr};
use threshold_crypto::{Fr, FrRepr, PublicKeyShare, SecretKeyShare};
use zeroize::{Zeroize, Zeroizing};

/// Length of each secret's encoding in bytes.
pub const SECRET_LEN: usize = 32;

/// Length of the three secrets' encodings together (the keystore's plaintext).
pub const PLAINTEXT_LEN: usize = 3 * SECRET_LEN;

/// Why secret bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The BLS share is not a scalar below the BLS12-381 group order.
    #[error("member {index}: the BLS secret key share is not a BLS12-381 scalar (32 big-endian bytes below the order)")]
    BadBlsShare {
        /// The member.
        index: u32,
    },
    /// The Bitcoin key is not a valid secp256k1 secret key.
    #[error("member {index}: the Bitcoin secret key is not a valid secp256k1 secret key")]
    BadBitcoinKey {
        /// The member.
        index: u32,
    },
    /// The account key is not a valid secp256k1 secret key.
    #[error("member {index}: the account secret key is not a valid secp256k1 secret key")]
    BadAccountKey {
        /// The member.
        index: u32,
    },
}

/// A federation member's secrets: BLS key share, Bitcoin key and sidechain account key.
///
/// Zeroized on drop; `Debug` shows only the member index and account address.
pub struct MemberSecrets {
    index: u32,
    bls_share: SecretKeyShare,
    bitcoin_key: secp256k1::SecretKey,
    account_key: AccountKey,
    /// The three encodings, BLS share ‖ Bitcoin key ‖ account key: the keystore's plaintext.
    encoded: Zeroizing<[u8; PLAINTEXT_LEN]>,
}

impl MemberSecrets {
    /// Member `index`'s secrets from their encodings, concatenated as
    /// BLS share ‖ Bitcoin key ‖ account key (32 big-endian bytes each).
    ///
    /// # Errors
    /// When any of the three is not a valid key; the error names which.
    pub fn from_bytes(index: u32, encoded: Zeroizing<[u8; PLAINTEXT_LEN]>) -> Result<Self, SecretsError> {
        let (bls, rest) = encoded.split_at(SECRET_LEN);
        let (bitcoin, account) = rest.split_at(SECRET_LEN);
        let bls_share = bls_share_from_bytes(bls).ok_or(SecretsError::BadBlsShare { index })?;
        let bitcoin_key =
            secp256k1::SecretKey::from_slice(bitcoin).map_err(|_| SecretsError::BadBitcoinKey { index })?;
        let account_key = AccountKey::from_secret_bytes(account).map_err(|_| SecretsError::BadAccountKey { index })?;
        Ok(MemberSecrets { index, bls_share, bitcoin_key, account_key, encoded })
    }

    /// The member's position in the federation (0-based; threshold_crypto's share index).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The BLS secret key share, for signing releases.
    pub fn bls_secret_key_share(&self) -> &SecretKeyShare {
        &self.bls_share
    }

    /// The public half of the BLS key share (what the federation's public key set gives for
    /// this index).
    pub fn bls_public_key_share(&self) -> PublicKeyShare {
        self.bls_share.public_key_share()
    }

    /// The Bitcoin secret key, for signing release inputs.
    ///
    /// `secp256k1::SecretKey` is `Copy` and does not wipe itself: call
    /// [`secp256k1::SecretKey::non_secure_erase`] on copies when done with them.
    pub fn bitcoin_secret_key(&self) -> &secp256k1::SecretKey {
        &self.bitcoin_key
    }

    /// The compressed SEC1 Bitcoin public key (the member's key in the peg).
    pub fn bitcoin_public_key(&self) -> [u8; 33] {
        secp256k1::PublicKey::from_secret_key_global(&self.bitcoin_key).serialize()
    }

    /// The sidechain account key, for signing the member's transactions.
    pub fn account_key(&self) -> &AccountKey {
        &self.account_key
    }

    /// The member's sidechain account address.
    pub fn account(&self) -> Address {
        self.account_key.address()
    }

    /// The three encodings, BLS share ‖ Bitcoin key ‖ account key (see [`Self::from_bytes`]).
    pub fn to_bytes(&self) -> &[u8; PLAINTEXT_LEN] {
        &self.encoded
    }
}

impl Drop for MemberSecrets {
    fn drop(&mut self) {
        self.bitcoin_key.non_secure_erase();
    }
}

impl fmt::Debug for MemberSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberSecrets")
            .field("index", &self.index)
            .field("account", &self.account())
            .field("secrets", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Writes the 32-byte big-endian encoding of a BLS scalar into `out`, and wipes `scalar`.
pub(crate) fn bls_scalar_to_bytes(scalar: &mut Fr, out: &mut [u8]) {
    let mut repr = scalar.into_repr();
    // A 4-limb representation is exactly 32 bytes: writing it into a 32-byte slice cannot fail,
    // and a shorter slice would be a programming error caught by the round-trip tests.
    let _ = repr.write_be(&mut out[..]);
    repr.0.zeroize();
    // threshold_crypto's `from_mut` is its one way to wipe an `Fr` (which has no `Zeroize`
    // impl): it copies the scalar into a share, which is dropped (and zeroized) at once.
    drop(SecretKeyShare::from_mut(scalar));
}

/// The BLS secret key share encoded by `bytes` (32 big-endian bytes), or `None` if they are
/// not a scalar below the group order.
fn bls_share_from_bytes(bytes: &[u8]) -> Option<SecretKeyShare> {
    if bytes.len() != SECRET_LEN {
        return None;
    }
    let mut repr = FrRepr::default();
    let read = repr.read_be(bytes);
    let scalar = Fr::from_repr(repr);
    repr.0.zeroize();
    read.ok()?;
    let mut scalar = scalar.ok()?;
    Some(SecretKeyShare::from_mut(&mut scalar))
}

#[cfg(test)]
mod tests {
    use threshold_crypto::ff::Field;

    use super::*;

    fn encoded(bls: u8, bitcoin: u8, account: u8) -> Zeroizing<[u8; PLAINTEXT_LEN]> {
        let mut out = Zeroizing::new([0u8; PLAINTEXT_LEN]);
        for (chunk, fill) in out.chunks_exact_mut(SECRET_LEN).zip([bls, bitcoin, account]) {
            chunk.fill(fill);
        }
        out
    }

    #[test]
    fn round_trips_through_its_encoding() -> Result<(), SecretsError> {
        let secrets = MemberSecrets::from_bytes(2, encoded(1, 2, 3))?;
        let again = MemberSecrets::from_bytes(2, Zeroizing::new(*secrets.to_bytes()))?;
        assert_eq!(again.bls_public_key_share(), secrets.bls_public_key_share());
        assert_eq!(again.bitcoin_public_key(), secrets.bitcoin_public_key());
        assert_eq!(again.account(), secrets.account());
        let expected = AccountKey::from_secret_bytes(&[3; SECRET_LEN]).map(|key| key.address());
        assert_eq!(Ok(secrets.account()), expected);
        Ok(())
    }

    #[test]
    fn refuses_out_of_range_secrets_naming_which() {
        // 0xff…ff is above both the BLS12-381 and the secp256k1 group orders; zero is no key.
        assert_eq!(
            MemberSecrets::from_bytes(1, encoded(0xff, 2, 3)).err(),
            Some(SecretsError::BadBlsShare { index: 1 })
        );
        assert_eq!(
            MemberSecrets::from_bytes(1, encoded(1, 0xff, 3)).err(),
            Some(SecretsError::BadBitcoinKey { index: 1 })
        );
        assert_eq!(
            MemberSecrets::from_bytes(1, encoded(1, 2, 0)).err(),
            Some(SecretsError::BadAccountKey { index: 1 })
        );
    }

    #[test]
    fn debug_never_shows_secret_bytes() -> Result<(), SecretsError> {
        let secrets = MemberSecrets::from_bytes(0, encoded(0x11, 0x22, 0x33))?;
        let shown = format!("{secrets:?} {secrets:#?}");
        assert!(shown.contains("redacted"), "{shown}");
        for secret in ["1111", "2222", "3333", "17, 17", "34, 34", "51, 51"] {
            assert!(!shown.contains(secret), "Debug shows secret bytes: {shown}");
        }
        Ok(())
    }

    #[test]
    fn scalar_encoding_is_big_endian_wipes_the_scalar_and_round_trips() {
        let Ok(mut scalar) = Fr::from_repr(FrRepr([7, 0, 0, 1])) else { unreachable!("a small value is a scalar") };
        let expected = SecretKeyShare::from_mut(&mut scalar.clone()).public_key_share();
        let mut out = [0u8; SECRET_LEN];
        bls_scalar_to_bytes(&mut scalar, &mut out);
        assert_eq!(scalar, Fr::zero(), "the scalar was not wiped");
        assert_eq!(out[31], 7, "the low limb's low byte comes last");
        assert_eq!(out[7], 1, "the high limb comes first");
        assert_eq!(bls_share_from_bytes(&out).map(|share| share.public_key_share()), Some(expected));
    }
}
