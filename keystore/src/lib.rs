//! `ferry-keystore`: secrets sealed under a passphrase, and the passphrase read without ever
//! passing through argv or a configuration file. The signer's member keystores
//! (`ferry_signer::keystore`), the relayer's account keystore (`ferry_daemon::account_keystore`)
//! and the `ferry` CLI's keyring (`ferry_cli::keyring`) are three file formats built on the same
//! sealing: scrypt derives a key from the passphrase, XChaCha20-Poly1305 encrypts the secret and
//! authenticates the format's public fields ([`sealing`]).
//!
//! This crate does not know what it seals: it takes bytes and associated data and gives bytes
//! back, so it holds no key types, parses no keys and checks no public key against a secret —
//! each format does that for its own fields. It writes no files, never prints or logs a secret
//! (plaintexts and derived keys live in zeroizing buffers), and does no networking. Changing
//! anything here changes every keystore and keyring on disk (`docs/keystore.md`).

pub mod hex_bytes;
pub mod passphrase;
pub mod sealing;

pub use passphrase::PassphraseError;
pub use sealing::{
    CipherSection, KdfParams, KdfSection, SealError, associated_data, new_sections, open_bytes, seal_bytes,
};
