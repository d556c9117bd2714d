//! Bitcoin: reading deposits out of raw blocks (fetched with `ferry_parent_chains::bitcoin`), and
//! turning a signed release batch into the transaction that is broadcast.

pub mod release;
pub mod scan;
