//! `ferry-devnet`: starts and stops real Ferry networks — CometBFT validators, each with its
//! `ferry-chain` application — on loopback, for `make devnet`, the end-to-end tests and the
//! benchmarks. One home for "how a Ferry network is laid out": directories, ports, genesis.
//!
//! Every process it starts is tracked by PID and stopped by it (on drop for tests, through the
//! pid file for `make devnet-down`). It binds only 127.0.0.0/8 addresses. It holds no chain rules.

pub mod accounts;
pub mod anvil;
pub mod btcd;
pub mod chain_registry;
pub mod demo;
pub mod funding;
pub mod load;
pub mod memory;
pub mod network;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod relayer;
pub mod signer;
pub mod system;
pub mod tools;

pub use network::{AppKind, Network, NetworkSpec};
pub use tools::Tools;
