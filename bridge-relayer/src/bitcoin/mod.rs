//! Bitcoin: reading deposits out of raw blocks, over the RPC subset btcd and Bitcoin Core share.

pub mod rpc;
pub mod scan;
