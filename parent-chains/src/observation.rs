//! What reading a parent chain yields: a deposit seen in a block. The relayer's tracker decides
//! from these when a deposit may be attested; the CLI shows how deep each one is.

use ferry_types::DepositFacts;

/// A deposit seen in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// What was seen.
    pub facts: DepositFacts,
    /// Height of the block holding it.
    pub block_height: u64,
    /// Hash of that block.
    pub block_hash: String,
    /// Paid by a Bitcoin coinbase transaction: the relayer attests it only once it can be spent
    /// (coinbase maturity, 100 confirmations), whatever its policy asks.
    pub coinbase: bool,
}
