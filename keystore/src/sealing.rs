//! The sealing every Ferry keystore format shares: a key derived from the passphrase with scrypt,
//! the secret encrypted with XChaCha20-Poly1305, and the format's public fields authenticated as
//! associated data, so editing any of them fails exactly as a wrong passphrase does.
//!
//! - **Key**: scrypt(passphrase, salt, N = 2^log_n, r, p) → 32 bytes. Written with log_n = 15,
//!   r = 8, p = 1 (32 MiB, about a tenth of a second); read with log_n 10..=20, r 1..=8,
//!   p 1..=4, so a keystore cannot make its reader allocate more than 1 GiB.
//! - **Sections**: `kdf` (`{"name": "scrypt", "log_n", "r", "p", "salt"}`, a 32-byte salt) and
//!   `cipher` (`{"name": "xchacha20poly1305", "nonce"}`, a 24-byte nonce), both fresh for every
//!   sealing ([`new_sections`]).
//! - **Ciphertext**: the plaintext encrypted, followed by the 16-byte tag ([`seal_bytes`],
//!   [`open_bytes`]).
//! - **Associated data**: a format's tag, then each public field as a 4-byte big-endian length and
//!   its bytes ([`associated_data`]); which fields, in which order, is the format's to say.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::hex_bytes;

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
/// Length of the random scrypt salt.
pub const SALT_LEN: usize = 32;
/// Length of the random XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of the authentication tag that follows the encrypted plaintext.
pub const TAG_LEN: usize = 16;

const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const MAX_SCRYPT_R: u32 = 8;
const MAX_SCRYPT_P: u32 = 4;
const KEY_LEN: usize = 32;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
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
    /// An empty passphrase was offered for sealing.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// Authentication failed: the passphrase is wrong, or a field or the ciphertext was altered.
    #[error("wrong passphrase or corrupted keystore")]
    WrongPassphraseOrCorrupted,
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
    pub fn with_log_n(log_n: u8) -> Result<Self, SealError> {
        let params = KdfParams { log_n, ..KdfParams::default() };
        params.check()?;
        Ok(params)
    }

    fn check(&self) -> Result<scrypt::Params, SealError> {
        let out_of_range = || SealError::KdfOutOfRange { log_n: self.log_n, r: self.r, p: self.p };
        if !(MIN_KDF_LOG_N..=MAX_KDF_LOG_N).contains(&self.log_n)
            || !(1..=MAX_SCRYPT_R).contains(&self.r)
            || !(1..=MAX_SCRYPT_P).contains(&self.p)
        {
            return Err(out_of_range());
        }
        scrypt::Params::new(self.log_n, self.r, self.p, KEY_LEN).map_err(|_| out_of_range())
    }
}

/// The `kdf` section of a sealed secret.
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

/// The `cipher` section of a sealed secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CipherSection {
    /// Always [`CIPHER_NAME`].
    pub name: String,
    /// Random nonce.
    #[serde(with = "hex_bytes")]
    pub nonce: [u8; NONCE_LEN],
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
/// # Errors
/// Out-of-range scrypt parameters, or a failing RNG.
pub fn new_sections(
    kdf: KdfParams,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(KdfSection, CipherSection), SealError> {
    kdf.check()?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    for buffer in [&mut salt[..], &mut nonce[..]] {
        rng.try_fill_bytes(buffer).map_err(|e| SealError::Randomness(e.to_string()))?;
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
) -> Result<Vec<u8>, SealError> {
    if passphrase.is_empty() {
        return Err(SealError::EmptyPassphrase);
    }
    let aead = cipher_for(kdf, cipher, passphrase)?;
    // Room for the tag up front, so the buffer holding the plaintext is never reallocated
    // (which would leave an unwiped copy behind).
    let mut buffer = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buffer.extend_from_slice(plaintext);
    let encrypted = aead.encrypt_in_place(&XNonce::from(cipher.nonce), associated_data, &mut buffer);
    // On success the buffer holds only ciphertext; on failure, wipe the plaintext in it.
    let buffer = Zeroizing::new(buffer);
    encrypted.map_err(|_| SealError::Cipher("encryption failed"))?;
    Ok(buffer.to_vec())
}

/// Decrypts what [`seal_bytes`] sealed, checking the tag over the ciphertext and
/// `associated_data`.
///
/// # Errors
/// An unsupported KDF or cipher, out-of-range scrypt parameters, or
/// [`SealError::WrongPassphraseOrCorrupted`] for a wrong passphrase or any altered byte.
pub fn open_bytes(
    kdf: &KdfSection,
    cipher: &CipherSection,
    passphrase: &[u8],
    associated_data: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let aead = cipher_for(kdf, cipher, passphrase)?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    aead.decrypt_in_place(&XNonce::from(cipher.nonce), associated_data, &mut *buffer)
        .map_err(|_| SealError::WrongPassphraseOrCorrupted)?;
    Ok(buffer)
}

/// The AEAD keyed by scrypt(passphrase) under `kdf`.
fn cipher_for(kdf: &KdfSection, cipher: &CipherSection, passphrase: &[u8]) -> Result<XChaCha20Poly1305, SealError> {
    if kdf.name != KDF_NAME {
        return Err(SealError::UnsupportedKdf(kdf.name.clone()));
    }
    if cipher.name != CIPHER_NAME {
        return Err(SealError::UnsupportedCipher(cipher.name.clone()));
    }
    let params = KdfParams { log_n: kdf.log_n, r: kdf.r, p: kdf.p }.check()?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(passphrase, &kdf.salt, &params, &mut key[..]).map_err(|_| SealError::KdfOutOfRange {
        log_n: kdf.log_n,
        r: kdf.r,
        p: kdf.p,
    })?;
    // A 32-byte key is the cipher's key length: this cannot fail.
    XChaCha20Poly1305::new_from_slice(&key[..]).map_err(|_| SealError::Cipher("wrong key length"))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    const TAG: &[u8] = b"ferry-test";

    fn fast() -> KdfParams {
        KdfParams { log_n: MIN_KDF_LOG_N, ..KdfParams::default() }
    }

    #[test]
    fn opens_with_the_passphrase_and_associated_data_it_was_sealed_with_only() -> Result<(), SealError> {
        let (kdf, cipher) = new_sections(fast(), &mut ChaCha20Rng::seed_from_u64(1))?;
        let public = associated_data(TAG, &[b"alice", &[1, 2, 3]]);
        let sealed = seal_bytes(&kdf, &cipher, b"correct horse", &public, &[5; 40])?;
        assert_eq!(sealed.len(), 40 + TAG_LEN);
        assert!(!sealed.windows(8).any(|window| window == [5; 8]), "plaintext in the clear");
        assert_eq!(open_bytes(&kdf, &cipher, b"correct horse", &public, &sealed)?.as_slice(), &[5; 40]);

        let wrong = |result: Result<Zeroizing<Vec<u8>>, SealError>| {
            matches!(result, Err(SealError::WrongPassphraseOrCorrupted))
        };
        assert!(wrong(open_bytes(&kdf, &cipher, b"correct horsE", &public, &sealed)));
        let other_field = associated_data(TAG, &[b"alicf", &[1, 2, 3]]);
        assert!(wrong(open_bytes(&kdf, &cipher, b"correct horse", &other_field, &sealed)));
        let mut salted = kdf.clone();
        salted.salt[0] ^= 1;
        assert!(wrong(open_bytes(&salted, &cipher, b"correct horse", &public, &sealed)));
        let mut tampered = sealed.clone();
        tampered[40] ^= 1;
        assert!(wrong(open_bytes(&kdf, &cipher, b"correct horse", &public, &tampered)));
        Ok(())
    }

    #[test]
    fn associated_data_prefixes_every_field_with_its_length() {
        assert_eq!(associated_data(b"t", &[b"ab", b""]), b"t\0\0\0\x02ab\0\0\0\0".to_vec());
        assert_ne!(associated_data(b"t", &[b"ab", b"c"]), associated_data(b"t", &[b"a", b"bc"]));
    }

    #[test]
    fn names_the_unsupported_kdf_or_cipher() -> Result<(), SealError> {
        let (kdf, cipher) = new_sections(fast(), &mut ChaCha20Rng::seed_from_u64(2))?;
        let sealed = seal_bytes(&kdf, &cipher, b"pass", b"", b"secret")?;
        let argon = KdfSection { name: "argon2id".to_owned(), ..kdf.clone() };
        let refused = open_bytes(&argon, &cipher, b"pass", b"", &sealed);
        assert!(matches!(refused, Err(SealError::UnsupportedKdf(name)) if name == "argon2id"));
        let aes = CipherSection { name: "aes-256-gcm".to_owned(), ..cipher.clone() };
        assert!(matches!(open_bytes(&kdf, &aes, b"pass", b"", &sealed), Err(SealError::UnsupportedCipher(_))));
        let huge = KdfSection { log_n: 40, ..kdf };
        assert!(matches!(
            open_bytes(&huge, &cipher, b"pass", b"", &sealed),
            Err(SealError::KdfOutOfRange { log_n: 40, .. })
        ));
        Ok(())
    }

    #[test]
    fn refuses_an_empty_passphrase_and_weak_or_huge_kdf_costs() -> Result<(), SealError> {
        let (kdf, cipher) = new_sections(fast(), &mut ChaCha20Rng::seed_from_u64(3))?;
        assert!(matches!(seal_bytes(&kdf, &cipher, b"", b"", b"secret"), Err(SealError::EmptyPassphrase)));
        assert!(KdfParams::with_log_n(MIN_KDF_LOG_N - 1).is_err());
        assert!(KdfParams::with_log_n(MAX_KDF_LOG_N + 1).is_err());
        assert!(new_sections(KdfParams { p: MAX_SCRYPT_P + 1, ..fast() }, &mut ChaCha20Rng::seed_from_u64(4)).is_err());
        assert_eq!(KdfParams::with_log_n(DEFAULT_KDF_LOG_N)?, KdfParams::default());
        Ok(())
    }
}
