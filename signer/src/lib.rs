//! `ferry-signer`: a federation member's signing service — the key ceremony (trusted-dealer
//! keygen into encrypted keystores and a public federation manifest), and the daemon that follows
//! the chain, rebuilds every release payload from chain state, applies its own policy and posts
//! BLS signature shares and Bitcoin input signatures.
//!
//! Secrets never appear in argv, logs or error messages, and are zeroized after use. The
//! decision core is pure: chain state, local knowledge and the signer's own records come in as
//! arguments, and it never signs bytes it did not rebuild itself. It never signs two different
//! payloads for one (epoch, batch nonce): that record lives in PostgreSQL and commits before a
//! signature leaves the process.
//!
//! Modules:
//! - [`secrets`]: one member's BLS key share, Bitcoin key and account key ([`MemberSecrets`]),
//!   wiped on drop and redacted in `Debug`;
//! - [`ceremony`]: the trusted-dealer ceremony ([`keygen`]) and writing its output
//!   ([`write_ceremony`]);
//! - [`keystore`]: the member keystore's format (sealed with `ferry-keystore`: scrypt +
//!   XChaCha20-Poly1305, public fields authenticated) and [`Keystore::open`];
//! - [`federation_size`]: how many members a federation may have and how many must sign;
//! - [`manifest`]: the public federation manifest genesis is built from, and its validation;
//! - [`rebuild`]: a batch's payload rebuilt from withdrawal records and local knowledge, and
//!   compared with the chain's (pure);
//! - [`refusal`]: why a batch is refused — a [`Reason`] from a fixed set and what was wrong;
//! - [`policy`]: the decision — sign or refuse, with a named reason (pure);
//! - [`signing`]: this member's signatures over an approved payload (pure);
//! - [`dkg`]: this member's part in a dealer-free key generation for the next federation (the
//!   decision pure, the posting in the daemon's round);
//! - [`handover`]: the next federation rebuilt from a completed key generation's transcript,
//!   which rotation and migration batches must match;
//! - [`heartbeat`]: this member's answers to the chain's heartbeat rounds (liveness);
//! - [`duty`]: posting those duties — signatures, key-generation steps, heartbeats — to the chain;
//! - [`store`]: the double-sign guard and the hash-chained audit log in PostgreSQL;
//! - [`config`], [`metrics`], [`service`]: the daemon's configuration, metrics and I/O loop.
//!
//! The formats are documented in the modules and in `docs/keystore.md`; the daemon's settings in
//! `deploy/signer.example.toml`.

pub mod ceremony;
pub mod config;
pub mod dkg;
pub mod duty;
pub mod federation_size;
pub mod handover;
pub mod heartbeat;
pub mod keystore;
pub mod manifest;
pub mod metrics;
pub mod policy;
pub mod rebuild;
pub mod refusal;
pub mod secrets;
pub mod service;
pub mod signing;
pub mod store;

pub use ceremony::{Ceremony, Overwrite, keygen, write_ceremony};
pub use keystore::{Keystore, KeystoreError};
pub use manifest::{Manifest, ManifestError};
pub use policy::Decision;
pub use refusal::{Reason, Refusal};
pub use secrets::MemberSecrets;
