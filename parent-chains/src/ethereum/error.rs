//! What goes wrong talking to Ethereum: [`EthereumError`], which every operation of this module
//! returns, and [`DepositLogError`], a vault log that is not a valid deposit, named by its
//! [`LogLocation`]. The bottom of the module: it uses nothing else of it.

use std::fmt;
use std::time::Duration;

use alloy::primitives::{Address as EthAddress, B256, U256};
use alloy::rpc::types::Log;
use alloy::transports::TransportError;
use ferry_types::deposit::DepositError;

/// Why an Ethereum operation failed. Each variant carries what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum EthereumError {
    /// The RPC URL does not parse or is not HTTP(S).
    #[error("`{url}` is not an Ethereum HTTP RPC URL: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The node answered with an error, or the transport failed.
    #[error("Ethereum RPC `{method}` failed: {source}")]
    Rpc {
        /// The JSON-RPC method (or contract call) attempted.
        method: String,
        /// The transport or node error.
        #[source]
        source: TransportError,
    },
    /// No answer within the request timeout.
    #[error("Ethereum RPC `{method}` gave no answer within {after:?}")]
    Timeout {
        /// The JSON-RPC method attempted.
        method: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// A block range with its start after its end.
    #[error("block range {from}..={to} is empty: the start is after the end")]
    BadRange {
        /// First block asked for.
        from: u64,
        /// Last block asked for.
        to: u64,
    },
    /// A log the vault's filter returned is not a valid deposit.
    #[error(transparent)]
    DepositLog(#[from] DepositLogError),
    /// The private key does not parse (the key itself is never shown).
    #[error("the Ethereum private key is not 32 bytes of hex")]
    BadPrivateKey,
    /// A transaction could not be signed (the key itself is never shown).
    #[error("cannot sign {what}: {reason}")]
    Sign {
        /// What the transaction was for.
        what: String,
        /// The signer's complaint.
        reason: String,
    },
    /// A transaction was mined but reverted.
    #[error("transaction {tx_hash} ({what}) reverted in block {block_number}")]
    Reverted {
        /// What the transaction was for.
        what: String,
        /// Its hash.
        tx_hash: String,
        /// The block it was mined in.
        block_number: u64,
    },
    /// A transaction was not mined within the wait.
    #[error("transaction {tx_hash} ({what}) has no receipt after {after:?}")]
    NotMined {
        /// What the transaction was for.
        what: String,
        /// Its hash.
        tx_hash: String,
        /// How long was waited.
        after: Duration,
    },
    /// The node's answer lacks something it must carry.
    #[error("Ethereum RPC `{method}`: unexpected answer: {detail}")]
    UnexpectedAnswer {
        /// The JSON-RPC method.
        method: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

/// Where a log sits, for error messages: whatever of transaction hash, log index and block the
/// node supplied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLocation {
    /// Hash of the transaction that emitted the log.
    pub tx_hash: Option<B256>,
    /// Index of the log in its block.
    pub log_index: Option<u64>,
    /// Number of the block holding it.
    pub block_number: Option<u64>,
}

impl LogLocation {
    /// The location of `log`.
    pub fn of(log: &Log) -> Self {
        LogLocation { tx_hash: log.transaction_hash, log_index: log.log_index, block_number: log.block_number }
    }
}

impl fmt::Display for LogLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.log_index {
            Some(index) => write!(f, "log {index}")?,
            None => f.write_str("log ?")?,
        }
        match self.tx_hash {
            Some(hash) => write!(f, " of transaction {hash:#x}")?,
            None => f.write_str(" of transaction ?")?,
        }
        match self.block_number {
            Some(number) => write!(f, " in block {number}"),
            None => f.write_str(" in block ?"),
        }
    }
}

/// Why a log was not turned into a deposit. Each variant names the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DepositLogError {
    /// The node left out a field a mined log has (a pending log, or a broken node).
    #[error("{at}: the node gave no {missing}")]
    Incomplete {
        /// The log.
        at: LogLocation,
        /// The missing field (`transactionHash`, `logIndex`, `blockNumber` or `blockHash`).
        missing: &'static str,
    },
    /// The node marked the log as removed by a reorganisation.
    #[error("{at}: the node marked it removed (reorganised out)")]
    Removed {
        /// The log.
        at: LogLocation,
    },
    /// Emitted by another contract than the vault.
    #[error("{at}: emitted by {emitter}, not by the vault {vault}")]
    NotFromVault {
        /// The log.
        at: LogLocation,
        /// The contract that emitted it.
        emitter: EthAddress,
        /// The vault watched.
        vault: EthAddress,
    },
    /// Not a well-formed `Deposited` event (signature, topic count, data length or padding).
    #[error("{at}: not a well-formed Deposited event: {reason}")]
    Undecodable {
        /// The log.
        at: LogLocation,
        /// What the decoder refused.
        reason: String,
    },
    /// The amount exceeds the sidechain's 128-bit amounts (the vault refuses these, so this is
    /// not a genuine vault log).
    #[error("{at}: amount {amount} does not fit the sidechain's 128-bit amounts")]
    AmountTooLarge {
        /// The log.
        at: LogLocation,
        /// The amount in the log.
        amount: U256,
    },
    /// The log's position in its transaction does not fit the 32-bit index of deposit facts.
    #[error("{at}: its position among the transaction's deposits does not fit 32 bits")]
    PositionTooLarge {
        /// The log.
        at: LogLocation,
    },
    /// The facts are inconsistent (e.g. a zero amount, which the vault refuses).
    #[error("{at}: {source}")]
    InvalidFacts {
        /// The log.
        at: LogLocation,
        /// What `DepositFacts::validate` refused.
        source: DepositError,
    },
}
