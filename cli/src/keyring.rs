//! The user's keyring: one JSON file (default `~/.ferry/keyring.json`, mode 0600) of named
//! keys, each sealed under its own passphrase with the sealing the signer's keystores use too
//! (scrypt + XChaCha20-Poly1305, `ferry_keystore::sealing`).
//!
//! # One secret, three addresses
//!
//! A key is one secp256k1 secret (32 bytes). From it come the sidechain account (`ferry1…`, the
//! same derivation as every Ferry account), the Bitcoin P2WPKH address on the peg's network
//! (`bcrt1q…` on regtest, `tb1q…` on testnet) and the Ethereum address (Keccak-256 of the
//! public key). One secret keeps backups simple; the price is that the three addresses are
//! linkable by anyone who sees the public key used on two chains.
//!
//! # Format (version 1)
//!
//! `{"version": 1, "keys": [{"name", "account", "public_key", "ethereum_address", "kdf",
//! "cipher", "ciphertext"}]}` — public fields in the clear (so `keys list` needs no passphrase),
//! the secret encrypted; the associated data is the tag `ferry-keyring` then each public field
//! length-prefixed (u32 BE): version, name, account id, public key, Ethereum address, kdf name,
//! log_n, r, p, salt, cipher name, nonce. After decrypting, the secret's public key is compared
//! with the stored one. Unknown fields are refused.
//!
//! This module never prints or logs a secret; secrets live in zeroizing buffers.

use std::path::{Path, PathBuf};

use ferry_keystore::{
    CipherSection, KdfParams, KdfSection, SealError, associated_data, new_sections, open_bytes, seal_bytes,
};
use ferry_types::peg::BitcoinNetwork;
use ferry_types::release::eth::EthAddress;
use ferry_types::{AccountKey, Address};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

/// The keyring format this crate reads and writes.
pub const KEYRING_VERSION: u32 = 1;
const ASSOCIATED_DATA_TAG: &[u8] = b"ferry-keyring";
/// Longest key name.
pub const MAX_NAME_LEN: usize = 64;

/// Why a keyring operation failed. Every variant names the file or key.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The file could not be read or written.
    #[error("keyring {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file is not a keyring of this version.
    #[error("{path} is not a Ferry keyring: {reason}")]
    NotAKeyring {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No key of that name.
    #[error("no key named `{name}` in {path}")]
    UnknownKey {
        /// The name.
        name: String,
        /// The keyring.
        path: PathBuf,
    },
    /// A key of that name exists.
    #[error("a key named `{name}` already exists in {path}")]
    DuplicateName {
        /// The name.
        name: String,
        /// The keyring.
        path: PathBuf,
    },
    /// The name is not usable.
    #[error("`{0}` is not a key name: use 1 to 64 letters, digits, `-`, `_` or `.`")]
    BadName(String),
    /// The secret is not a secp256k1 secret key.
    #[error(
        "the secret is not a secp256k1 secret key (expected 32 bytes, 64 hex digits, nonzero and below the curve order)"
    )]
    BadSecret,
    /// Sealing or opening failed (a wrong passphrase is reported here).
    #[error("key `{name}`: {error}")]
    Seal {
        /// The key.
        name: String,
        /// The cause.
        error: SealError,
    },
    /// The secret opened does not give the public key stored beside it.
    #[error("key `{name}`: the keyring's public key does not match the key it holds")]
    PublicKeyMismatch {
        /// The key.
        name: String,
    },
}

/// A key's public side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Its name in the keyring.
    pub name: String,
    /// The sidechain account.
    pub account: Address,
    /// The compressed secp256k1 public key, hex.
    pub public_key: String,
    /// The Ethereum address (EIP-55).
    pub ethereum_address: String,
}

impl KeyInfo {
    /// The Bitcoin P2WPKH address on `network`.
    ///
    /// # Errors
    /// When the stored public key is not a valid key (a corrupted keyring).
    pub fn bitcoin_address(&self, network: BitcoinNetwork) -> Result<bitcoin::Address, KeyringError> {
        let bytes = hex::decode(&self.public_key).map_err(|_| KeyringError::BadSecret)?;
        let key = bitcoin::CompressedPublicKey::from_slice(&bytes).map_err(|_| KeyringError::BadSecret)?;
        Ok(bitcoin::Address::p2wpkh(&key, network.network()))
    }
}

/// A stored key: public fields and the sealed secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    name: String,
    account: Address,
    public_key: String,
    ethereum_address: String,
    kdf: KdfSection,
    cipher: CipherSection,
    ciphertext: String,
}

impl StoredKey {
    fn info(&self) -> KeyInfo {
        KeyInfo {
            name: self.name.clone(),
            account: self.account,
            public_key: self.public_key.clone(),
            ethereum_address: self.ethereum_address.clone(),
        }
    }

    fn associated_data(&self) -> Vec<u8> {
        let public_key = hex::decode(&self.public_key).unwrap_or_default();
        let fields: [&[u8]; 12] = [
            &KEYRING_VERSION.to_be_bytes(),
            self.name.as_bytes(),
            self.account.as_bytes(),
            &public_key,
            self.ethereum_address.as_bytes(),
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

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    keys: Vec<StoredKey>,
}

/// An unlocked key: the secret, and what derives from it.
pub struct UserKey {
    secret: Zeroizing<[u8; 32]>,
    info: KeyInfo,
}

impl std::fmt::Debug for UserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is left out.
        f.debug_struct("UserKey").field("info", &self.info).finish_non_exhaustive()
    }
}

impl UserKey {
    /// The key for `secret` (32 bytes), named `name`.
    ///
    /// # Errors
    /// [`KeyringError::BadSecret`] when it is not a secp256k1 secret key.
    pub fn from_secret(name: &str, secret: &[u8]) -> Result<UserKey, KeyringError> {
        let secret: [u8; 32] = secret.try_into().map_err(|_| KeyringError::BadSecret)?;
        let secret = Zeroizing::new(secret);
        let signing = k256::ecdsa::SigningKey::from_slice(&secret[..]).map_err(|_| KeyringError::BadSecret)?;
        let verifying = signing.verifying_key();
        let compressed = verifying.to_encoded_point(true);
        let uncompressed = verifying.to_encoded_point(false);
        let hash = Keccak256::digest(uncompressed.as_bytes().get(1..).unwrap_or_default());
        let mut eth = [0u8; 20];
        eth.copy_from_slice(hash.get(12..).unwrap_or_default());
        let account = AccountKey::from_secret_bytes(&secret[..]).map_err(|_| KeyringError::BadSecret)?.address();
        let info = KeyInfo {
            name: name.to_owned(),
            account,
            public_key: hex::encode(compressed.as_bytes()),
            ethereum_address: EthAddress::from_bytes(eth).to_string(),
        };
        Ok(UserKey { secret, info })
    }

    /// The public side.
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }

    /// The sidechain signing key.
    ///
    /// # Errors
    /// Never for a key built by [`UserKey::from_secret`].
    pub fn account_key(&self) -> Result<AccountKey, KeyringError> {
        AccountKey::from_secret_bytes(&self.secret[..]).map_err(|_| KeyringError::BadSecret)
    }

    /// The Bitcoin signing key.
    ///
    /// # Errors
    /// Never for a key built by [`UserKey::from_secret`].
    pub fn bitcoin_secret(&self) -> Result<bitcoin::secp256k1::SecretKey, KeyringError> {
        bitcoin::secp256k1::SecretKey::from_slice(&self.secret[..]).map_err(|_| KeyringError::BadSecret)
    }

    /// The exit request of `claim` from the frozen `vault` on chain `chain_id` to `recipient`,
    /// signed by this key, with the 64-byte public key the vault checks it against.
    ///
    /// # Errors
    /// Never for a key built by [`UserKey::from_secret`].
    pub fn sign_exit(
        &self,
        chain_id: u64,
        vault: [u8; 20],
        claim: &ferry_types::exit_tree::Claim,
        recipient: [u8; 20],
    ) -> Result<([u8; 64], [u8; 65]), KeyringError> {
        use ferry_types::exit_tree::{exit_public_key, sign_exit};
        let public_key = exit_public_key(&self.secret[..]).map_err(|_| KeyringError::BadSecret)?;
        let signature =
            sign_exit(&self.secret[..], chain_id, vault, claim, recipient).map_err(|_| KeyringError::BadSecret)?;
        Ok((public_key, signature))
    }

    /// The secret as hex, for the Ethereum signer.
    pub fn ethereum_private_key_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.secret[..]))
    }
}

/// A keyring file, loaded.
#[derive(Debug)]
pub struct Keyring {
    path: PathBuf,
    file: KeyringFile,
}

/// The default keyring path: `$HOME/.ferry/keyring.json` (`./.ferry/keyring.json` without a home).
pub fn default_path() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from).join(".ferry").join("keyring.json")
}

fn check_name(name: &str) -> Result<(), KeyringError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(KeyringError::BadName(name.to_owned())) }
}

impl Keyring {
    /// Loads the keyring at `path`; a missing file is an empty keyring.
    ///
    /// # Errors
    /// An unreadable file, or one that is not a version-1 keyring.
    pub fn open(path: &Path) -> Result<Keyring, KeyringError> {
        let io = |error| KeyringError::Io { path: path.to_owned(), error };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Keyring {
                    path: path.to_owned(),
                    file: KeyringFile { version: KEYRING_VERSION, keys: Vec::new() },
                });
            }
            Err(error) => return Err(io(error)),
        };
        let file: KeyringFile = serde_json::from_slice(&bytes)
            .map_err(|e| KeyringError::NotAKeyring { path: path.to_owned(), reason: e.to_string() })?;
        if file.version != KEYRING_VERSION {
            return Err(KeyringError::NotAKeyring {
                path: path.to_owned(),
                reason: format!("version {} (this ferry reads version {KEYRING_VERSION})", file.version),
            });
        }
        Ok(Keyring { path: path.to_owned(), file })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every key's public side, in the order added.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.file.keys.iter().map(StoredKey::info).collect()
    }

    fn stored(&self, name: &str) -> Result<&StoredKey, KeyringError> {
        self.file
            .keys
            .iter()
            .find(|key| key.name == name)
            .ok_or_else(|| KeyringError::UnknownKey { name: name.to_owned(), path: self.path.clone() })
    }

    /// The public side of key `name`.
    ///
    /// # Errors
    /// [`KeyringError::UnknownKey`].
    pub fn get(&self, name: &str) -> Result<KeyInfo, KeyringError> {
        self.stored(name).map(StoredKey::info)
    }

    /// Seals `secret` under `passphrase` as key `name` and writes the keyring.
    ///
    /// # Errors
    /// A bad or taken name, a bad secret, an empty passphrase, or a write failure.
    pub fn add(
        &mut self,
        name: &str,
        secret: &[u8],
        passphrase: &[u8],
        kdf: KdfParams,
    ) -> Result<KeyInfo, KeyringError> {
        check_name(name)?;
        if self.stored(name).is_ok() {
            return Err(KeyringError::DuplicateName { name: name.to_owned(), path: self.path.clone() });
        }
        let key = UserKey::from_secret(name, secret)?;
        let seal_error = |error| KeyringError::Seal { name: name.to_owned(), error };
        let (kdf, cipher) = new_sections(kdf, &mut rand::rngs::OsRng).map_err(seal_error)?;
        let info = key.info().clone();
        let mut stored = StoredKey {
            name: info.name.clone(),
            account: info.account,
            public_key: info.public_key.clone(),
            ethereum_address: info.ethereum_address.clone(),
            kdf,
            cipher,
            ciphertext: String::new(),
        };
        let sealed = seal_bytes(&stored.kdf, &stored.cipher, passphrase, &stored.associated_data(), &key.secret[..])
            .map_err(seal_error)?;
        stored.ciphertext = hex::encode(sealed);
        self.file.keys.push(stored);
        self.save()?;
        Ok(info)
    }

    /// Decrypts key `name` with `passphrase`.
    ///
    /// # Errors
    /// An unknown key, a wrong passphrase or altered file ([`KeyringError::Seal`]).
    pub fn unlock(&self, name: &str, passphrase: &[u8]) -> Result<UserKey, KeyringError> {
        let stored = self.stored(name)?;
        let seal_error = |error| KeyringError::Seal { name: name.to_owned(), error };
        let ciphertext =
            hex::decode(&stored.ciphertext).map_err(|_| seal_error(SealError::WrongPassphraseOrCorrupted))?;
        let secret = open_bytes(&stored.kdf, &stored.cipher, passphrase, &stored.associated_data(), &ciphertext)
            .map_err(seal_error)?;
        let key = UserKey::from_secret(name, &secret)?;
        if key.info() != &stored.info() {
            return Err(KeyringError::PublicKeyMismatch { name: name.to_owned() });
        }
        Ok(key)
    }

    /// Removes key `name` and writes the keyring.
    ///
    /// # Errors
    /// An unknown key or a write failure.
    pub fn delete(&mut self, name: &str) -> Result<KeyInfo, KeyringError> {
        let info = self.get(name)?;
        self.file.keys.retain(|key| key.name != name);
        self.save()?;
        Ok(info)
    }

    /// Writes the keyring: a private temporary file beside it, then a rename.
    fn save(&self) -> Result<(), KeyringError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |error| KeyringError::Io { path: self.path.clone(), error };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let temporary = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.file).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, &self.path).map_err(io)
    }
}

/// Imports `secret` (32 bytes) as key `name` into the keyring at `path`, sealed under
/// `passphrase` — for `make devnet`'s demo user.
///
/// # Errors
/// As [`Keyring::open`] and [`Keyring::add`].
pub fn import_key(path: &Path, name: &str, secret: &[u8], passphrase: &[u8]) -> Result<KeyInfo, KeyringError> {
    Keyring::open(path)?.add(name, secret, passphrase, KdfParams::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> KdfParams {
        KdfParams { log_n: ferry_keystore::sealing::MIN_KDF_LOG_N, ..KdfParams::default() }
    }

    #[test]
    fn one_secret_gives_the_ferry_bitcoin_and_ethereum_addresses() -> Result<(), KeyringError> {
        // Anvil's dev account 0: its address is well known.
        let secret =
            hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").unwrap_or_default();
        let key = UserKey::from_secret("dev", &secret)?;
        assert_eq!(key.info().ethereum_address, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        let account = AccountKey::from_secret_bytes(&secret).map_err(|_| KeyringError::BadSecret)?.address();
        assert_eq!(key.info().account, account);
        let address = key.info().bitcoin_address(BitcoinNetwork::Regtest)?.to_string();
        assert!(address.starts_with("bcrt1q"), "{address}");
        // The P2WPKH program is the account id: both are HASH160 of the same compressed key.
        let program = key.info().bitcoin_address(BitcoinNetwork::Regtest)?.script_pubkey();
        assert_eq!(program.as_bytes().get(2..), Some(&account.as_bytes()[..]));
        Ok(())
    }

    #[test]
    fn keys_round_trip_and_a_wrong_passphrase_or_edit_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keyring.json");
        let mut keyring = Keyring::open(&path)?;
        let added = keyring.add("alice", &[7; 32], b"pw", fast())?;
        assert!(matches!(keyring.add("alice", &[8; 32], b"pw", fast()), Err(KeyringError::DuplicateName { .. })));
        assert!(matches!(keyring.add("a b", &[8; 32], b"pw", fast()), Err(KeyringError::BadName(_))));
        let keyring = Keyring::open(&path)?;
        assert_eq!(keyring.list(), vec![added.clone()]);
        assert_eq!(keyring.unlock("alice", b"pw")?.info(), &added);
        assert!(matches!(keyring.unlock("alice", b"wrong"), Err(KeyringError::Seal { .. })));
        let text = std::fs::read_to_string(&path)?;
        assert!(!text.contains(&hex::encode([7u8; 32])));
        let edited = text.replace(&added.ethereum_address, &EthAddress::from_bytes([1; 20]).to_string());
        std::fs::write(&path, edited)?;
        assert!(matches!(Keyring::open(&path)?.unlock("alice", b"pw"), Err(KeyringError::Seal { .. })));
        Ok(())
    }
}
