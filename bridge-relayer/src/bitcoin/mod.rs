//! Bitcoin: reading deposits out of raw blocks, over the RPC subset btcd and Bitcoin Core share,
//! and turning a signed release batch into the transaction that is broadcast.

pub mod release;
pub mod rpc;
pub mod scan;
