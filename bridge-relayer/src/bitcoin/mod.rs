//! Bitcoin: reading deposits out of raw blocks.

pub mod scan;
