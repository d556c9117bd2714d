//! `ferry-cli`: the `ferry` command a user bridges assets with — keys, balances, transfers,
//! deposits from Bitcoin and Ethereum, withdrawals, progress, the federation and reserves.
//!
//! Pure logic lives apart from I/O and is unit-tested: [`units`] (amounts with explicit units),
//! [`ids`] (what `status` accepts), [`progress`] (stages computed from the chain's records),
//! coin selection and signing in [`bitcoin_wallet`]. [`commands`] is the only module that talks
//! to the node and the parent chains, through `ferry-client` and `ferry-relayer`'s clients.
//! [`keyring`] holds the user's keys sealed under passphrases. This crate must not hold chain
//! rules: destinations, payloads and fees are checked with `ferry-types` and the chain's params.

pub mod args;
pub mod bitcoin_wallet;
pub mod commands;
pub mod error;
pub mod ids;
pub mod input;
pub mod keyring;
pub mod progress;
pub mod units;

pub use error::{CliError, ErrorKind};
pub use keyring::import_key;
