//! `ferry-chain`: the Ferry sidechain node — an ABCI 2.0 application served to CometBFT v0.38
//! through tower-abci, with a crash-safe Merkleized store and Prometheus metrics.
//!
//! This crate is the I/O shell around `ferry-app`: it turns ABCI requests into state-machine
//! calls, hashes and persists their writes, and answers queries. It must not contain
//! transaction rules; those live in `ferry-app` so they can be tested without a network.

pub mod abci;
pub mod in_process;
pub mod metrics;
pub mod node;
pub mod pruning;
pub mod snapshot;
pub mod store;

pub use node::{Fatal, Node};
pub use store::Store;
