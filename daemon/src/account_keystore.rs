//! A federation member's sidechain account key, sealed on its own: the key a relayer attests
//! deposits with (attestations mint, so it is never read as plaintext). It is the same account
//! key the member's signer keystore holds beside its BLS share and Bitcoin key, sealed separately
//! so the relayer's host never holds the keys that sign releases.
//!
//! # Format (version 1)
//!
//! `{"version": 1, "account": "ferry1…", "kdf": {…}, "cipher": {…}, "ciphertext": "…"}`; the
//! sealing is `ferry_keystore::sealing` (scrypt + XChaCha20-Poly1305), as for the signer's member
//! keystores and the CLI's keyring. The plaintext is the 32-byte secp256k1 secret. The associated
//! data is the tag `ferry-account-keystore` followed by each field length-prefixed (u32 BE):
//! version (u32 BE), account (the 20-byte account id), kdf.name, log_n (1 byte), r (u32 BE),
//! p (u32 BE), salt, cipher.name, nonce. After decrypting, the key's account is compared with
//! `account`. Unknown fields are refused.
//!
//! A file holding the key as 64 hex digits — the form relayers once read — is recognised and
//! refused with [`AccountKeystoreError::Plaintext`], which says how to seal it.

use std::path::{Path, PathBuf};

use ferry_keystore::{
    CipherSection, KdfParams, KdfSection, SealError, associated_data, new_sections, open_bytes, seal_bytes,
};
use ferry_types::{AccountKey, Address};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The format version this crate writes and reads.
pub const ACCOUNT_KEYSTORE_VERSION: u32 = 1;
/// Length of the sealed secret.
pub const SECRET_LEN: usize = 32;
const ASSOCIATED_DATA_TAG: &[u8] = b"ferry-account-keystore";

/// What to do with a plaintext key file at `key_file` instead (named in
/// [`AccountKeystoreError::Plaintext`] and by the relayer's configuration check).
pub fn seal_hint(key_file: &Path) -> String {
    format!(
        "seal it with `ferry-relayer keystore seal --key-file {} --passphrase-file PASS --out KEYSTORE` (or use the \
         account.keystore.json the key ceremony wrote for this member), delete the plaintext file, and set \
         chain.member_keystore = KEYSTORE and chain.passphrase_file = PASS",
        key_file.display()
    )
}

/// Why an account keystore could not be read, opened or sealed.
#[derive(Debug, thiserror::Error)]
pub enum AccountKeystoreError {
    /// The file could not be read.
    #[error("cannot read account keystore {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file holds a plaintext key (64 hex digits).
    #[error("{} holds a plaintext key, and plaintext member keys are refused: {}", path.display(), seal_hint(path))]
    Plaintext {
        /// The file.
        path: PathBuf,
    },
    /// The file is not JSON of this format.
    #[error("{path} is not a Ferry account keystore: {reason}")]
    NotAKeystore {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The keystore is of another version.
    #[error("unsupported account keystore version {0} (this build reads version {ACCOUNT_KEYSTORE_VERSION})")]
    UnsupportedVersion(u64),
    /// Sealing or opening failed (a wrong passphrase is reported here).
    #[error(transparent)]
    Sealing(#[from] SealError),
    /// The secret is not a secp256k1 secret key.
    #[error("not a secp256k1 secret key (expected 32 bytes, 64 hex digits, nonzero and below the curve order)")]
    BadSecret,
    /// The key opened does not give the account stored beside it.
    #[error("the keystore's account {stored} does not match the key it holds ({actual})")]
    AccountMismatch {
        /// The account in the file.
        stored: Address,
        /// The key's account.
        actual: Address,
    },
}

/// A sealed account key as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountKeystore {
    /// Format version ([`ACCOUNT_KEYSTORE_VERSION`]).
    pub version: u32,
    /// The account the key controls.
    pub account: Address,
    /// How the key was derived from the passphrase.
    pub kdf: KdfSection,
    /// How the secret was encrypted.
    pub cipher: CipherSection,
    /// The encrypted secret followed by the authentication tag.
    #[serde(with = "ferry_keystore::hex_bytes")]
    pub ciphertext: Vec<u8>,
}

impl AccountKeystore {
    /// Seals the 32-byte secp256k1 `secret` under `passphrase`, with a fresh salt and nonce.
    ///
    /// # Errors
    /// A secret that is not a key, an empty passphrase, out-of-range scrypt parameters, a failing
    /// RNG.
    pub fn seal(
        secret: &[u8],
        passphrase: impl AsRef<[u8]>,
        kdf: KdfParams,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AccountKeystore, AccountKeystoreError> {
        let passphrase = passphrase.as_ref();
        if passphrase.is_empty() {
            return Err(SealError::EmptyPassphrase.into());
        }
        if secret.len() != SECRET_LEN {
            return Err(AccountKeystoreError::BadSecret);
        }
        let key = AccountKey::from_secret_bytes(secret).map_err(|_| AccountKeystoreError::BadSecret)?;
        let (kdf, cipher) = new_sections(kdf, rng)?;
        let mut keystore = AccountKeystore {
            version: ACCOUNT_KEYSTORE_VERSION,
            account: key.address(),
            kdf,
            cipher,
            ciphertext: Vec::new(),
        };
        keystore.ciphertext =
            seal_bytes(&keystore.kdf, &keystore.cipher, passphrase, &keystore.associated_data(), secret)?;
        Ok(keystore)
    }

    /// Seals a key written as hex (64 digits, an optional `0x`, surrounding whitespace ignored),
    /// as relayers' plaintext key files held it.
    ///
    /// # Errors
    /// Text that is not a key's hex, and what [`AccountKeystore::seal`] refuses.
    pub fn seal_hex(
        hex_text: &str,
        passphrase: impl AsRef<[u8]>,
        kdf: KdfParams,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AccountKeystore, AccountKeystoreError> {
        let text = hex_text.trim();
        let text = text.strip_prefix("0x").unwrap_or(text);
        let secret = Zeroizing::new(hex::decode(text).map_err(|_| AccountKeystoreError::BadSecret)?);
        AccountKeystore::seal(&secret, passphrase, kdf, rng)
    }

    /// Reads a keystore without decrypting it; a plaintext key file is refused as such.
    ///
    /// # Errors
    /// An unreadable file, a plaintext key ([`AccountKeystoreError::Plaintext`]), or a file that
    /// is not a version-1 account keystore.
    pub fn read(path: impl AsRef<Path>) -> Result<AccountKeystore, AccountKeystoreError> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|error| AccountKeystoreError::Read { path: path.to_owned(), error })?,
        );
        if looks_like_plaintext_key(&bytes) {
            return Err(AccountKeystoreError::Plaintext { path: path.to_owned() });
        }
        AccountKeystore::from_json(&bytes).map_err(|error| match error {
            AccountKeystoreError::NotAKeystore { reason, .. } => {
                AccountKeystoreError::NotAKeystore { path: path.to_owned(), reason }
            }
            other => other,
        })
    }

    /// Parses a keystore's JSON, checking its version first.
    ///
    /// # Errors
    /// Not JSON, another version, or a schema mismatch.
    pub fn from_json(bytes: &[u8]) -> Result<AccountKeystore, AccountKeystoreError> {
        let not_a_keystore =
            |reason: String| AccountKeystoreError::NotAKeystore { path: PathBuf::from("<json>"), reason };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| not_a_keystore(e.to_string()))?;
        match value.get("version").map(serde_json::Value::as_u64) {
            None => return Err(not_a_keystore("no `version` field".to_owned())),
            Some(None) => return Err(not_a_keystore("`version` is not a number".to_owned())),
            Some(Some(version)) if version != u64::from(ACCOUNT_KEYSTORE_VERSION) => {
                return Err(AccountKeystoreError::UnsupportedVersion(version));
            }
            Some(Some(_)) => {}
        }
        serde_json::from_value(value).map_err(|e| not_a_keystore(e.to_string()))
    }

    /// The keystore as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Plain fields, hex strings and a bech32 address always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads and decrypts the keystore at `path`.
    ///
    /// # Errors
    /// See [`AccountKeystore::read`] and [`AccountKeystore::decrypt`].
    pub fn open(path: impl AsRef<Path>, passphrase: impl AsRef<[u8]>) -> Result<AccountKey, AccountKeystoreError> {
        AccountKeystore::read(path)?.decrypt(passphrase)
    }

    /// Decrypts the key and checks it against `account`.
    ///
    /// # Errors
    /// A wrong passphrase or any altered field ([`SealError::WrongPassphraseOrCorrupted`]), an
    /// unsupported KDF or cipher, or a key whose account is not `account`.
    pub fn decrypt(&self, passphrase: impl AsRef<[u8]>) -> Result<AccountKey, AccountKeystoreError> {
        if self.version != ACCOUNT_KEYSTORE_VERSION {
            return Err(AccountKeystoreError::UnsupportedVersion(u64::from(self.version)));
        }
        let secret =
            open_bytes(&self.kdf, &self.cipher, passphrase.as_ref(), &self.associated_data(), &self.ciphertext)?;
        let key = AccountKey::from_secret_bytes(&secret).map_err(|_| AccountKeystoreError::BadSecret)?;
        if key.address() != self.account {
            return Err(AccountKeystoreError::AccountMismatch { stored: self.account, actual: key.address() });
        }
        Ok(key)
    }

    fn associated_data(&self) -> Vec<u8> {
        let fields: [&[u8]; 9] = [
            &self.version.to_be_bytes(),
            self.account.as_bytes(),
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

/// Whether `bytes` is a key written as hex: 64 hex digits (an optional `0x`), surrounded by
/// nothing but whitespace.
pub fn looks_like_plaintext_key(bytes: &[u8]) -> bool {
    let text = bytes.trim_ascii();
    let text = text.strip_prefix(b"0x").unwrap_or(text);
    text.len() == 2 * SECRET_LEN && text.iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use ferry_keystore::sealing::MIN_KDF_LOG_N;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    fn fast() -> KdfParams {
        KdfParams { log_n: MIN_KDF_LOG_N, ..KdfParams::default() }
    }

    #[test]
    fn opens_with_its_passphrase_only_and_never_holds_the_key_in_the_clear() -> Result<(), AccountKeystoreError> {
        let keystore = AccountKeystore::seal(&SECRET, "pass", fast(), &mut ChaCha20Rng::seed_from_u64(1))?;
        let expected = AccountKey::from_secret_bytes(&SECRET).map_err(|_| AccountKeystoreError::BadSecret)?;
        let json = keystore.to_json();
        assert!(!json.contains(&hex::encode(SECRET)), "the key in the clear: {json}");
        let opened = AccountKeystore::from_json(json.as_bytes())?.decrypt("pass")?;
        assert_eq!(opened.address(), expected.address());
        assert!(matches!(
            keystore.decrypt("pasS"),
            Err(AccountKeystoreError::Sealing(SealError::WrongPassphraseOrCorrupted))
        ));
        Ok(())
    }

    #[test]
    fn the_account_and_sections_are_authenticated() -> Result<(), AccountKeystoreError> {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let keystore = AccountKeystore::seal(&SECRET, "pass", fast(), &mut rng)?;
        let other = AccountKeystore::seal(&[9; 32], "pass", fast(), &mut rng)?;
        let mut altered = keystore.clone();
        altered.account = other.account;
        assert!(matches!(altered.decrypt("pass"), Err(AccountKeystoreError::Sealing(_))));
        let mut altered = keystore.clone();
        altered.kdf.salt[0] ^= 1;
        assert!(matches!(altered.decrypt("pass"), Err(AccountKeystoreError::Sealing(_))));
        Ok(())
    }

    #[test]
    fn plaintext_hex_is_recognised_and_sealable() -> Result<(), AccountKeystoreError> {
        let hex_key = hex::encode(SECRET);
        assert!(looks_like_plaintext_key(format!("{hex_key}\n").as_bytes()));
        assert!(looks_like_plaintext_key(format!("0x{hex_key}").as_bytes()));
        assert!(!looks_like_plaintext_key(b"{\"version\": 1}"));
        let sealed =
            AccountKeystore::seal_hex(&format!(" {hex_key}\n"), "p", fast(), &mut ChaCha20Rng::seed_from_u64(3))?;
        let direct = AccountKeystore::seal(&SECRET, "p", fast(), &mut ChaCha20Rng::seed_from_u64(3))?;
        assert_eq!(sealed, direct);
        let refused = AccountKeystore::seal_hex("abcd", "p", fast(), &mut ChaCha20Rng::seed_from_u64(3));
        assert!(matches!(refused, Err(AccountKeystoreError::BadSecret)));
        Ok(())
    }
}
