//! Bitcoin: reading deposits out of raw blocks (fetched with `ferry_parent_chains::bitcoin`), and
//! turning a signed release batch into the transaction that is broadcast.

pub mod release;
pub mod scan;

/// The Bitcoin JSON-RPC client moved to `ferry_parent_chains::bitcoin`; this path remains only
/// until `devnet/src/system.rs` names that crate.
pub use ferry_parent_chains::bitcoin as rpc;
