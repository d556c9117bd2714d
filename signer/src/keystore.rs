//! Encrypted keystores: one JSON file per federation member holding its secrets under a
//! passphrase, with its public keys in the clear so operators can tell keystores apart without
//! the passphrase.
//!
//! # Format (version 1)
//!
//! ```json
//! {
//!   "version": 1,
//!   "member_index": 0,
//!   "account": "ferry1…",
//!   "bitcoin_public_key": "02…",          // 33-byte compressed secp256k1 key, hex
//!   "bls_public_key_share": "8f…",        // 48-byte compressed BLS12-381 G1 point, hex
//!   "kdf": { "name": "scrypt", "log_n": 15, "r": 8, "p": 1, "salt": "…" },   // 32-byte salt
//!   "cipher": { "name": "xchacha20poly1305", "nonce": "…" },                 // 24-byte nonce
//!   "ciphertext": "…"                     // 96 bytes of secrets + 16-byte tag, hex
//! }
//! ```
//!
//! - **Key** and **cipher**: the sealing of [`ferry_keystore::sealing`] — scrypt(passphrase, salt,
//!   N = 2^log_n, r, p) → 32 bytes, written with log_n = 15, r = 8, p = 1 and read with log_n
//!   10..=20, r 1..=8, p 1..=4, so a keystore cannot make the signer allocate more than 1 GiB.
//! - **Plaintext**: 96 bytes, fixed layout: BLS secret key share ‖ Bitcoin secret key ‖ account
//!   secret key, 32 big-endian bytes each (see [`crate::secrets`]).
//! - **Associated data**: every other field is authenticated by the AEAD, so editing any public
//!   field makes decryption fail exactly as a wrong passphrase does. The associated data is the
//!   ASCII tag `ferry-keystore` followed by each field as a 4-byte big-endian length and its bytes,
//!   in this order: version (u32 BE), member_index (u32 BE), account (the 20-byte account id),
//!   bitcoin_public_key, bls_public_key_share, kdf.name, log_n (1 byte), r (u32 BE), p (u32 BE),
//!   salt, cipher.name, nonce. Hex fields enter as the bytes they encode.
//! - After decrypting, the secrets' public keys are compared with the public fields as well.
//!
//! Unknown fields are refused. The version is read first, so a newer keystore is reported as
//! "unsupported keystore version N" rather than as a schema error.
//!
//! This module holds the member keystore's format; the cryptography is `ferry-keystore`'s, which the
//! `ferry` CLI's keyring seals user keys with too. It reads a file in [`Keystore::read`] and
//! [`Keystore::open`] and never writes one (see [`crate::ceremony`]).

use std::path::{Path, PathBuf};

use ferry_keystore::{
    CipherSection, KdfParams, KdfSection, SealError, associated_data, hex_bytes, new_sections, open_bytes, seal_bytes,
};
use ferry_types::Address;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secrets::{MemberSecrets, PLAINTEXT_LEN, SecretsError};

/// The keystore format this crate writes and reads.
pub const KEYSTORE_VERSION: u32 = 1;
const ASSOCIATED_DATA_TAG: &[u8] = b"ferry-keystore";

/// Why a keystore could not be written, read or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The file could not be read.
    #[error("cannot read keystore {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file is not JSON of the keystore schema.
    #[error("not a Ferry keystore: {0}")]
    NotAKeystore(String),
    /// The keystore is of another version.
    #[error("unsupported keystore version {0} (this ferry-signer reads version {KEYSTORE_VERSION})")]
    UnsupportedVersion(u64),
    /// Sealing or opening failed: a wrong passphrase, an altered field, an unsupported KDF or
    /// cipher, an empty passphrase for a new keystore.
    #[error(transparent)]
    Sealing(#[from] SealError),
    /// The decrypted secrets do not have the plaintext layout's length.
    #[error("the decrypted secrets are {0} bytes long, expected {PLAINTEXT_LEN}")]
    BadPlaintextLength(usize),
    /// The decrypted secrets are not valid keys.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// A public field disagrees with the secrets it was sealed with.
    #[error("the keystore's {0} does not match the key it holds")]
    PublicFieldMismatch(&'static str),
}

/// A member's keystore as stored: public fields in the clear, secrets encrypted. See the module
/// documentation for the format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keystore {
    /// Format version ([`KEYSTORE_VERSION`]).
    pub version: u32,
    /// The member's position in the federation.
    pub member_index: u32,
    /// The member's sidechain account.
    pub account: Address,
    /// The member's compressed Bitcoin public key.
    #[serde(with = "hex_bytes")]
    pub bitcoin_public_key: [u8; 33],
    /// The member's BLS public key share (compressed G1).
    #[serde(with = "hex_bytes")]
    pub bls_public_key_share: [u8; threshold_crypto::PK_SIZE],
    /// How the key was derived from the passphrase.
    pub kdf: KdfSection,
    /// How the secrets were encrypted.
    pub cipher: CipherSection,
    /// The encrypted secrets followed by the authentication tag.
    #[serde(with = "hex_bytes")]
    pub ciphertext: Vec<u8>,
}

impl Keystore {
    /// Encrypts `secrets` under `passphrase`, with a fresh salt and nonce from `rng`.
    ///
    /// # Errors
    /// An empty passphrase, out-of-range scrypt parameters, or a failing RNG.
    pub fn seal(
        secrets: &MemberSecrets,
        passphrase: impl AsRef<[u8]>,
        kdf: KdfParams,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Keystore, KeystoreError> {
        let passphrase = passphrase.as_ref();
        if passphrase.is_empty() {
            return Err(SealError::EmptyPassphrase.into());
        }
        let (kdf, cipher) = new_sections(kdf, rng)?;
        let mut keystore = Keystore {
            version: KEYSTORE_VERSION,
            member_index: secrets.index(),
            account: secrets.account(),
            bitcoin_public_key: secrets.bitcoin_public_key(),
            bls_public_key_share: secrets.bls_public_key_share().to_bytes(),
            kdf,
            cipher,
            ciphertext: Vec::new(),
        };
        keystore.ciphertext =
            seal_bytes(&keystore.kdf, &keystore.cipher, passphrase, &keystore.associated_data(), secrets.to_bytes())?;
        Ok(keystore)
    }

    /// Reads a keystore's public fields without decrypting it.
    ///
    /// # Errors
    /// An unreadable file, or one that is not a version-1 keystore.
    pub fn read(path: impl AsRef<Path>) -> Result<Keystore, KeystoreError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| KeystoreError::Read { path: path.to_owned(), error })?;
        Keystore::from_json(&bytes)
    }

    /// Parses a keystore's JSON, checking its version first.
    ///
    /// # Errors
    /// Not JSON, another version, or a schema mismatch.
    pub fn from_json(bytes: &[u8]) -> Result<Keystore, KeystoreError> {
        let not_a_keystore = |e: serde_json::Error| KeystoreError::NotAKeystore(e.to_string());
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(not_a_keystore)?;
        match value.get("version").map(serde_json::Value::as_u64) {
            None => return Err(KeystoreError::NotAKeystore("no `version` field".to_owned())),
            Some(None) => return Err(KeystoreError::NotAKeystore("`version` is not a number".to_owned())),
            Some(Some(version)) if version != u64::from(KEYSTORE_VERSION) => {
                return Err(KeystoreError::UnsupportedVersion(version));
            }
            Some(Some(_)) => {}
        }
        serde_json::from_value(value).map_err(not_a_keystore)
    }

    /// The keystore as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain fields, hex strings and a bech32 address cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads and decrypts the keystore at `path`.
    ///
    /// # Errors
    /// See [`Keystore::read`] and [`Keystore::decrypt`]; a wrong passphrase is
    /// [`SealError::WrongPassphraseOrCorrupted`].
    pub fn open(path: impl AsRef<Path>, passphrase: impl AsRef<[u8]>) -> Result<MemberSecrets, KeystoreError> {
        Keystore::read(path)?.decrypt(passphrase)
    }

    /// Decrypts the secrets and checks them against the public fields.
    ///
    /// # Errors
    /// An unsupported KDF or cipher, out-of-range scrypt parameters, a wrong passphrase or any
    /// altered field ([`SealError::WrongPassphraseOrCorrupted`]), or secrets that do not
    /// match the public keys.
    pub fn decrypt(&self, passphrase: impl AsRef<[u8]>) -> Result<MemberSecrets, KeystoreError> {
        if self.version != KEYSTORE_VERSION {
            return Err(KeystoreError::UnsupportedVersion(u64::from(self.version)));
        }
        let buffer =
            open_bytes(&self.kdf, &self.cipher, passphrase.as_ref(), &self.associated_data(), &self.ciphertext)?;
        let plaintext: [u8; PLAINTEXT_LEN] =
            buffer.as_slice().try_into().map_err(|_| KeystoreError::BadPlaintextLength(buffer.len()))?;
        let secrets = MemberSecrets::from_bytes(self.member_index, Zeroizing::new(plaintext))?;
        if secrets.account() != self.account {
            return Err(KeystoreError::PublicFieldMismatch("account"));
        }
        if secrets.bitcoin_public_key() != self.bitcoin_public_key {
            return Err(KeystoreError::PublicFieldMismatch("bitcoin_public_key"));
        }
        if secrets.bls_public_key_share().to_bytes() != self.bls_public_key_share {
            return Err(KeystoreError::PublicFieldMismatch("bls_public_key_share"));
        }
        Ok(secrets)
    }

    /// The bytes every public field contributes to the AEAD (see the module documentation).
    fn associated_data(&self) -> Vec<u8> {
        let fields: [&[u8]; 12] = [
            &self.version.to_be_bytes(),
            &self.member_index.to_be_bytes(),
            self.account.as_bytes(),
            &self.bitcoin_public_key,
            &self.bls_public_key_share,
            self.kdf.name.as_bytes(),
            &[self.kdf.log_n],
            &self.kdf.r.to_be_bytes(),
            &self.kdf.p.to_be_bytes(),
            &self.kdf.salt,
            self.cipher.name.as_bytes(),
            &self.cipher.nonce,
        ];
        associated_data(ASSOCIATED_DATA_TAG, &fields)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use ferry_keystore::sealing::{MIN_KDF_LOG_N, TAG_LEN};

    use super::*;

    fn member(index: u32, fill: u8) -> Result<MemberSecrets, SecretsError> {
        MemberSecrets::from_bytes(index, Zeroizing::new([fill; PLAINTEXT_LEN]))
    }

    fn fast() -> KdfParams {
        KdfParams { log_n: MIN_KDF_LOG_N, ..KdfParams::default() }
    }

    #[test]
    fn seals_and_opens_with_the_passphrase_only() -> Result<(), KeystoreError> {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let secrets = member(3, 5)?;
        let keystore = Keystore::seal(&secrets, "correct horse", fast(), &mut rng)?;
        let json = keystore.to_json();
        let opened = Keystore::from_json(json.as_bytes())?.decrypt("correct horse")?;
        assert_eq!(opened.to_bytes(), secrets.to_bytes());
        assert_eq!(opened.index(), 3);
        assert!(matches!(
            keystore.decrypt("correct horsE"),
            Err(KeystoreError::Sealing(SealError::WrongPassphraseOrCorrupted))
        ));
        assert_eq!(keystore.ciphertext.len(), PLAINTEXT_LEN + TAG_LEN);
        assert!(!json.contains(&hex::encode([5u8; 8])), "secrets in the clear: {json}");
        Ok(())
    }

    #[test]
    fn every_public_field_is_authenticated() -> Result<(), KeystoreError> {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let keystore = Keystore::seal(&member(1, 7)?, "pass", fast(), &mut rng)?;
        let other = Keystore::seal(&member(2, 9)?, "pass", fast(), &mut rng)?;
        type Edit<'a> = Box<dyn Fn(&mut Keystore) + 'a>;
        let edits: Vec<(&str, Edit)> = vec![
            ("member_index", Box::new(|k| k.member_index = 2)),
            ("account", Box::new(|k| k.account = other.account)),
            ("bitcoin_public_key", Box::new(|k| k.bitcoin_public_key = other.bitcoin_public_key)),
            ("bls_public_key_share", Box::new(|k| k.bls_public_key_share = other.bls_public_key_share)),
            ("kdf.salt", Box::new(|k| k.kdf.salt[0] ^= 1)),
            ("kdf.r", Box::new(|k| k.kdf.r = 4)),
            ("cipher.nonce", Box::new(|k| k.cipher.nonce[0] ^= 1)),
            ("ciphertext", Box::new(|k| k.ciphertext[0] ^= 1)),
            ("tag", Box::new(|k| k.ciphertext[PLAINTEXT_LEN] ^= 1)),
        ];
        for (field, edit) in edits {
            let mut altered = keystore.clone();
            edit(&mut altered);
            assert!(
                matches!(altered.decrypt("pass"), Err(KeystoreError::Sealing(SealError::WrongPassphraseOrCorrupted))),
                "editing {field} went unnoticed"
            );
        }
        keystore.decrypt("pass")?;
        Ok(())
    }

    #[test]
    fn names_what_is_unsupported() -> Result<(), KeystoreError> {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let keystore = Keystore::seal(&member(0, 7)?, "pass", fast(), &mut rng)?;
        let mut value: serde_json::Value =
            serde_json::from_str(&keystore.to_json()).map_err(|e| KeystoreError::NotAKeystore(e.to_string()))?;
        value["version"] = 2.into();
        let error = Keystore::from_json(value.to_string().as_bytes()).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("unsupported keystore version 2 (this ferry-signer reads version 1)"));

        let mut altered = keystore.clone();
        altered.kdf.name = "argon2id".to_owned();
        let refused = altered.decrypt("pass");
        assert!(matches!(refused, Err(KeystoreError::Sealing(SealError::UnsupportedKdf(name))) if name == "argon2id"));
        let mut altered = keystore.clone();
        altered.cipher.name = "aes-256-gcm".to_owned();
        assert!(matches!(altered.decrypt("pass"), Err(KeystoreError::Sealing(SealError::UnsupportedCipher(_)))));
        let mut altered = keystore.clone();
        altered.kdf.log_n = 40;
        assert!(matches!(
            altered.decrypt("pass"),
            Err(KeystoreError::Sealing(SealError::KdfOutOfRange { log_n: 40, .. }))
        ));
        assert!(matches!(Keystore::from_json(b"{\"version\": 1}"), Err(KeystoreError::NotAKeystore(_))));
        assert!(matches!(Keystore::from_json(b"[]"), Err(KeystoreError::NotAKeystore(_))));
        Ok(())
    }

    #[test]
    fn refuses_an_empty_passphrase() -> Result<(), KeystoreError> {
        // The KDF's cost limits are the sealing's, tested in ferry-keystore.
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let sealed = Keystore::seal(&member(0, 7)?, "", fast(), &mut rng);
        assert!(matches!(sealed, Err(KeystoreError::Sealing(SealError::EmptyPassphrase))));
        Ok(())
    }

    #[test]
    fn secrets_that_disagree_with_the_public_fields_are_refused() -> Result<(), KeystoreError> {
        // Someone who knows the passphrase seals member 1's secrets under member 2's public keys:
        // the AEAD accepts it, the cross-check does not.
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let real = Keystore::seal(&member(1, 7)?, "pass", fast(), &mut rng)?;
        let other = Keystore::seal(&member(2, 9)?, "pass", fast(), &mut rng)?;
        let mut forged = real.clone();
        forged.bitcoin_public_key = other.bitcoin_public_key;
        forged.ciphertext =
            seal_bytes(&forged.kdf, &forged.cipher, b"pass", &forged.associated_data(), member(1, 7)?.to_bytes())?;
        assert!(matches!(forged.decrypt("pass"), Err(KeystoreError::PublicFieldMismatch("bitcoin_public_key"))));
        Ok(())
    }
}
