//! Ethereum: every Ethereum access of Ferry goes through this module (alloy is used nowhere
//! else), so a change of client library or node touches one place.
//!
//! From the bottom up (each module uses only those above it):
//! - [`error`]: [`EthereumError`], which every operation returns, and [`DepositLogError`].
//! - `rpc`: URL parsing, the per-call timeout and latency observer, hashes as text.
//! - [`vault`]: bindings generated from the committed artifacts, the calldata of the
//!   federation-signed vault actions, the events' topics and the vault's custom errors.
//! - [`deposit_log`]: the pure conversion of a vault `Deposited` log into
//!   [`DepositFacts`](ferry_types::DepositFacts) (deposit id `eth:<txhash>:<position>`) plus the
//!   block it was seen in, and plain token transfers to the vault as unattributed payments.
//! - [`wallet`]: [`Wallet`] sends signed transactions (deployment, deposits, claims) and reads
//!   the vault's views.
//! - [`watcher`]: [`EthereumWatcher`] reads the tip, block hashes (for reorg re-checks) and the
//!   vault's deposits in a block range. It decides nothing.
//! - [`release`]: applying a federation-signed vault action (sent at once, or signed first so
//!   its hash can be recorded, then sent) and finding the vault's log of it, whoever sent it.
//! - [`dev_node`]: [`DevNode`], anvil's mining, snapshot and reorg controls, for the devnet and
//!   the tests only.
//!
//! Transaction and block hashes leave this module as text, `0x` + 64 lowercase hex, the form the
//! deposit facts and the relayer's tracker use.

pub mod deposit_log;
pub mod dev_node;
pub mod error;
pub mod escape;
pub mod release;
mod rpc;
pub mod vault;
pub mod wallet;
pub mod watcher;

pub use alloy::primitives::{Address as EthAddress, U256};
pub use deposit_log::observation_from_log;
pub use dev_node::{DevNode, SnapshotId};
pub use error::{DepositLogError, EthereumError, LogLocation};
pub use escape::EscapeState;
pub use release::{ReleasedLog, SignedTransaction, TransactionState};
pub use rpc::DEFAULT_REQUEST_TIMEOUT;
pub use vault::DEPOSITED_TOPIC;
pub use wallet::{Receipt, ReceiptLog, Wallet};
pub use watcher::EthereumWatcher;
