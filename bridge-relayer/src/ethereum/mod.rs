//! Ethereum: every Ethereum access of Ferry goes through this module (alloy is used nowhere
//! else), so a change of client library or node touches one place.
//!
//! - [`vault`]: bindings generated from the committed artifacts, and the pure conversion of a
//!   vault `Deposited` log into [`DepositFacts`](ferry_types::DepositFacts) (deposit id
//!   `eth:<txhash>:<logindex>`) plus the block it was seen in.
//! - [`watcher`]: [`EthereumWatcher`] reads the tip, block hashes (for reorg re-checks) and the
//!   vault's deposits in a block range. It decides nothing.
//! - [`wallet`]: [`Wallet`] sends signed transactions (deployment, deposits, releases).
//! - [`release`]: delivering a signed batch (sign, record the hash, send) and finding the
//!   vault's `Released` log of a batch, whoever delivered it.
//! - [`dev_node`]: [`DevNode`], anvil's mining, snapshot and reorg controls, for the devnet and
//!   the tests only.
//!
//! Transaction and block hashes leave this module as text, `0x` + 64 lowercase hex, the form the
//! deposit facts and the tracker use.

pub mod dev_node;
pub mod release;
mod rpc;
pub mod vault;
pub mod wallet;
pub mod watcher;

pub use alloy::primitives::{Address as EthAddress, U256};
pub use dev_node::{DevNode, SnapshotId};
pub use release::{ReleasedLog, SignedTransaction, TransactionState};
pub use rpc::{DEFAULT_REQUEST_TIMEOUT, EthereumError, RpcObserver};
pub use vault::{DEPOSITED_TOPIC, DepositLogError, LogLocation, observation_from_log};
pub use wallet::{Receipt, ReceiptLog, Wallet};
pub use watcher::EthereumWatcher;
