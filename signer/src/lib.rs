//! `ferry-signer`: a federation member's signing service — the key ceremony (trusted-dealer
//! keygen into encrypted keystores and a public federation manifest), and the daemon that follows
//! the chain, rebuilds every release payload from chain state, applies its own policy and posts
//! BLS signature shares and Bitcoin input signatures.
//!
//! Secrets never appear in argv, logs or error messages, and are zeroized after use. The policy
//! core is pure: chain state, height and the signer's own records come in as arguments.
//!
//! Modules:
//! - [`secrets`]: one member's BLS key share, Bitcoin key and account key ([`MemberSecrets`]),
//!   wiped on drop and redacted in `Debug`;
//! - [`ceremony`]: the trusted-dealer ceremony ([`keygen`]) and writing its output
//!   ([`write_ceremony`]);
//! - [`keystore`]: the encrypted keystore format (scrypt + XChaCha20-Poly1305, public fields
//!   authenticated) and [`Keystore::open`];
//! - [`manifest`]: the public federation manifest genesis is built from, and its validation.
//!
//! The formats are documented in the modules and in `docs/keystore.md`.

pub mod ceremony;
pub mod keystore;
pub mod manifest;
pub mod secrets;

pub use ceremony::{Ceremony, Overwrite, keygen, write_ceremony};
pub use keystore::{KdfParams, Keystore, KeystoreError};
pub use manifest::{Manifest, ManifestError};
pub use secrets::MemberSecrets;
