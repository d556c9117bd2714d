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
//! - **Key**: scrypt(passphrase, salt, N = 2^log_n, r, p) → 32 bytes. Written with log_n = 15,
//!   r = 8, p = 1 (32 MiB, about a tenth of a second); read with log_n 10..=20, r 1..=8,
//!   p 1..=4, so a keystore cannot make the signer allocate more than 1 GiB.
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
//! This module holds the format and the cryptography; it reads a file in [`Keystore::read`] and
//! [`Keystore::open`] and never writes one (see [`crate::ceremony`]). The sealing itself
//! ([`new_sections`], [`seal_bytes`], [`open_bytes`]) is generic over what is sealed and its
//! associated data, so the `ferry` CLI's keyring seals user keys the same way.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use ferry_types::Address;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secrets::{MemberSecrets, PLAINTEXT_LEN, SecretsError};

/// The keystore format this crate writes and reads.
pub const KEYSTORE_VERSION: u32 = 1;
/// The key derivation function's name in `kdf.name`.
pub const KDF_NAME: &str = "scrypt";
/// The cipher's name in `cipher.name`.
pub const CIPHER_NAME: &str = "xchacha20poly1305";
/// Smallest accepted scrypt `log_n` (tests use it; too weak for real keystores).
pub const MIN_KDF_LOG_N: u8 = 10;
/// Largest accepted scrypt `log_n`.
pub const MAX_KDF_LOG_N: u8 = 20;
/// scrypt `log_n` used unless told otherwise.
pub const DEFAULT_KDF_LOG_N: u8 = 15;

const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const MAX_SCRYPT_R: u32 = 8;
const MAX_SCRYPT_P: u32 = 4;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
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
    /// The key derivation is not scrypt.
    #[error("unsupported key derivation `{0}` (expected `{KDF_NAME}`)")]
    UnsupportedKdf(String),
    /// The cipher is not XChaCha20-Poly1305.
    #[error("unsupported cipher `{0}` (expected `{CIPHER_NAME}`)")]
    UnsupportedCipher(String),
    /// scrypt parameters outside what this crate accepts.
    #[error(
        "scrypt parameters log_n = {log_n}, r = {r}, p = {p} are out of range \
         (log_n {MIN_KDF_LOG_N}..={MAX_KDF_LOG_N}, r 1..={MAX_SCRYPT_R}, p 1..={MAX_SCRYPT_P})"
    )]
    KdfOutOfRange {
        /// log2(N).
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// An empty passphrase was offered for a new keystore.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// Authentication failed: the passphrase is wrong, or a field or the ciphertext was altered.
    #[error("wrong passphrase or corrupted keystore")]
    WrongPassphraseOrCorrupted,
    /// The decrypted secrets do not have the plaintext layout's length.
    #[error("the decrypted secrets are {0} bytes long, expected {PLAINTEXT_LEN}")]
    BadPlaintextLength(usize),
    /// The decrypted secrets are not valid keys.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// A public field disagrees with the secrets it was sealed with.
    #[error("the keystore's {0} does not match the key it holds")]
    PublicFieldMismatch(&'static str),
    /// The random number generator failed.
    #[error("the random number generator failed: {0}")]
    Randomness(String),
    /// The cipher refused its input (never expected: the key and plaintext have fixed sizes).
    #[error("the cipher failed: {0}")]
    Cipher(&'static str),
}

/// scrypt parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// log2 of scrypt's cost parameter N.
    pub log_n: u8,
    /// scrypt's block size.
    pub r: u32,
    /// scrypt's parallelism.
    pub p: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams { log_n: DEFAULT_KDF_LOG_N, r: SCRYPT_R, p: SCRYPT_P }
    }
}

impl KdfParams {
    /// The default parameters with cost `2^log_n`.
    ///
    /// # Errors
    /// When `log_n` is outside `MIN_KDF_LOG_N..=MAX_KDF_LOG_N`.
    pub fn with_log_n(log_n: u8) -> Result<Self, KeystoreError> {
        let params = KdfParams { log_n, ..KdfParams::default() };
        params.check()?;
        Ok(params)
    }

    fn check(&self) -> Result<scrypt::Params, KeystoreError> {
        let out_of_range = || KeystoreError::KdfOutOfRange { log_n: self.log_n, r: self.r, p: self.p };
        if !(MIN_KDF_LOG_N..=MAX_KDF_LOG_N).contains(&self.log_n)
            || !(1..=MAX_SCRYPT_R).contains(&self.r)
            || !(1..=MAX_SCRYPT_P).contains(&self.p)
        {
            return Err(out_of_range());
        }
        scrypt::Params::new(self.log_n, self.r, self.p, KEY_LEN).map_err(|_| out_of_range())
    }
}

/// The `kdf` section of a keystore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfSection {
    /// Always [`KDF_NAME`].
    pub name: String,
    /// log2 of scrypt's N.
    pub log_n: u8,
    /// scrypt's r.
    pub r: u32,
    /// scrypt's p.
    pub p: u32,
    /// Random salt.
    #[serde(with = "hex_bytes")]
    pub salt: [u8; SALT_LEN],
}

/// The `cipher` section of a keystore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CipherSection {
    /// Always [`CIPHER_NAME`].
    pub name: String,
    /// Random nonce.
    #[serde(with = "hex_bytes")]
    pub nonce: [u8; NONCE_LEN],
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
            return Err(KeystoreError::EmptyPassphrase);
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
    /// [`KeystoreError::WrongPassphraseOrCorrupted`].
    pub fn open(path: impl AsRef<Path>, passphrase: impl AsRef<[u8]>) -> Result<MemberSecrets, KeystoreError> {
        Keystore::read(path)?.decrypt(passphrase)
    }

    /// Decrypts the secrets and checks them against the public fields.
    ///
    /// # Errors
    /// An unsupported KDF or cipher, out-of-range scrypt parameters, a wrong passphrase or any
    /// altered field ([`KeystoreError::WrongPassphraseOrCorrupted`]), or secrets that do not
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

/// The associated data sealing binds: `tag`, then each public field prefixed by its length
/// (4 bytes, big-endian), so no two field lists encode alike.
pub fn associated_data(tag: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let mut out = tag.to_vec();
    for field in fields {
        // Every field is far shorter than 4 GiB.
        out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// Fresh sealing sections: a random salt for scrypt with `kdf`'s costs and a random nonce.
///
/// This and [`seal_bytes`] / [`open_bytes`] are the format's generic sealing, independent of
/// what is sealed: the keystores above use it, and so does the `ferry` CLI's keyring (its own
/// plaintext and associated data; same KDF and cipher, same limits).
///
/// # Errors
/// Out-of-range scrypt parameters, or a failing RNG.
pub fn new_sections(
    kdf: KdfParams,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(KdfSection, CipherSection), KeystoreError> {
    kdf.check()?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    for buffer in [&mut salt[..], &mut nonce[..]] {
        rng.try_fill_bytes(buffer).map_err(|e| KeystoreError::Randomness(e.to_string()))?;
    }
    Ok((
        KdfSection { name: KDF_NAME.to_owned(), log_n: kdf.log_n, r: kdf.r, p: kdf.p, salt },
        CipherSection { name: CIPHER_NAME.to_owned(), nonce },
    ))
}

/// Encrypts `plaintext` under `passphrase` with the key scrypt derives under `kdf` and the nonce
/// of `cipher`, authenticating `associated_data`; returns the ciphertext followed by the tag.
/// Use fresh sections ([`new_sections`]) for every sealing: a nonce must never be reused.
///
/// # Errors
/// An empty passphrase, an unsupported KDF or cipher, or out-of-range scrypt parameters.
pub fn seal_bytes(
    kdf: &KdfSection,
    cipher: &CipherSection,
    passphrase: &[u8],
    associated_data: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, KeystoreError> {
    if passphrase.is_empty() {
        return Err(KeystoreError::EmptyPassphrase);
    }
    let aead = cipher_for(kdf, cipher, passphrase)?;
    // Room for the tag up front, so the buffer holding the plaintext is never reallocated
    // (which would leave an unwiped copy behind).
    let mut buffer = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buffer.extend_from_slice(plaintext);
    let encrypted = aead.encrypt_in_place(&XNonce::from(cipher.nonce), associated_data, &mut buffer);
    // On success the buffer holds only ciphertext; on failure, wipe the plaintext in it.
    let buffer = Zeroizing::new(buffer);
    encrypted.map_err(|_| KeystoreError::Cipher("encryption failed"))?;
    Ok(buffer.to_vec())
}

/// Decrypts what [`seal_bytes`] sealed, checking the tag over the ciphertext and
/// `associated_data`.
///
/// # Errors
/// An unsupported KDF or cipher, out-of-range scrypt parameters, or
/// [`KeystoreError::WrongPassphraseOrCorrupted`] for a wrong passphrase or any altered byte.
pub fn open_bytes(
    kdf: &KdfSection,
    cipher: &CipherSection,
    passphrase: &[u8],
    associated_data: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let aead = cipher_for(kdf, cipher, passphrase)?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    aead.decrypt_in_place(&XNonce::from(cipher.nonce), associated_data, &mut *buffer)
        .map_err(|_| KeystoreError::WrongPassphraseOrCorrupted)?;
    Ok(buffer)
}

/// The AEAD keyed by scrypt(passphrase) under `kdf`.
fn cipher_for(kdf: &KdfSection, cipher: &CipherSection, passphrase: &[u8]) -> Result<XChaCha20Poly1305, KeystoreError> {
    if kdf.name != KDF_NAME {
        return Err(KeystoreError::UnsupportedKdf(kdf.name.clone()));
    }
    if cipher.name != CIPHER_NAME {
        return Err(KeystoreError::UnsupportedCipher(cipher.name.clone()));
    }
    let params = KdfParams { log_n: kdf.log_n, r: kdf.r, p: kdf.p }.check()?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(passphrase, &kdf.salt, &params, &mut key[..]).map_err(|_| KeystoreError::KdfOutOfRange {
        log_n: kdf.log_n,
        r: kdf.r,
        p: kdf.p,
    })?;
    // A 32-byte key is the cipher's key length: this cannot fail.
    XChaCha20Poly1305::new_from_slice(&key[..]).map_err(|_| KeystoreError::Cipher("wrong key length"))
}

/// Serde as lowercase hex for byte arrays and vectors.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: impl AsRef<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<Vec<u8>>,
    {
        let text = String::deserialize(deserializer)?;
        let bytes = hex::decode(&text).map_err(|e| serde::de::Error::custom(format!("`{text}` is not hex: {e}")))?;
        let len = bytes.len();
        T::try_from(bytes).map_err(|_| serde::de::Error::custom(format!("`{text}` is {len} bytes, the wrong length")))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

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
        assert!(matches!(keystore.decrypt("correct horsE"), Err(KeystoreError::WrongPassphraseOrCorrupted)));
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
                matches!(altered.decrypt("pass"), Err(KeystoreError::WrongPassphraseOrCorrupted)),
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
        assert!(matches!(altered.decrypt("pass"), Err(KeystoreError::UnsupportedKdf(name)) if name == "argon2id"));
        let mut altered = keystore.clone();
        altered.cipher.name = "aes-256-gcm".to_owned();
        assert!(matches!(altered.decrypt("pass"), Err(KeystoreError::UnsupportedCipher(_))));
        let mut altered = keystore.clone();
        altered.kdf.log_n = 40;
        assert!(matches!(altered.decrypt("pass"), Err(KeystoreError::KdfOutOfRange { log_n: 40, .. })));
        assert!(matches!(Keystore::from_json(b"{\"version\": 1}"), Err(KeystoreError::NotAKeystore(_))));
        assert!(matches!(Keystore::from_json(b"[]"), Err(KeystoreError::NotAKeystore(_))));
        Ok(())
    }

    #[test]
    fn refuses_an_empty_passphrase_and_weak_or_huge_kdf_costs() -> Result<(), KeystoreError> {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        assert!(matches!(Keystore::seal(&member(0, 7)?, "", fast(), &mut rng), Err(KeystoreError::EmptyPassphrase)));
        assert!(KdfParams::with_log_n(MIN_KDF_LOG_N - 1).is_err());
        assert!(KdfParams::with_log_n(MAX_KDF_LOG_N + 1).is_err());
        assert_eq!(KdfParams::with_log_n(DEFAULT_KDF_LOG_N)?, KdfParams::default());
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
