//! `ferry-app`: Ferry's deterministic state machine — accounts, the bank, fees, and the bridge
//! (deposits, withdrawals, release batches, the reserves invariant and the reserves check against
//! the parent chains) — as pure functions over a
//! key-value view of state.
//!
//! The node (`ferry-chain`) owns storage, the Merkle tree, ABCI and the clock; this crate sees
//! state only through [`state::StateRead`] and returns the writes a block makes as a
//! [`state::ChangeSet`]. Height, time and chain id come in as arguments. This crate must not do
//! I/O, read the wall clock, use randomness, floats or hash-ordered collections: every validator
//! must compute the same result from the same block.
//!
//! Transactions are checked in phases: stateless decoding ([`ferry_types::DecodedTx`]), then
//! checks against state (fee, account, sequence, signature), then execution ([`execute`]).

pub mod abort;
pub mod audit_anchor;
pub mod bank;
pub mod batch;
pub mod bitcoin_fees;
pub mod block;
pub mod bridge;
pub mod btc_exit;
pub mod consolidation;
pub mod cosmos_query;
pub mod deposit_address;
pub mod dkg;
pub mod duties;
pub mod event;
pub mod execute;
pub mod exit_claims;
pub mod genesis;
pub mod governance;
pub mod handover;
pub mod listing;
pub mod liveness;
pub mod membership;
pub mod pause;
pub mod query;
pub mod records;
pub mod replacement;
pub mod reserves;
pub mod reserves_check;
pub mod signature_cache;
pub mod state;
pub mod unattributed;
pub mod vault_heartbeat;
pub mod withdrawal;

pub use block::{BlockInput, BlockOutcome, TxOutcome, finalize_block};
pub use event::Event;
pub use execute::check_tx;
pub use genesis::init_chain;
pub use signature_cache::SignatureCache;
pub use state::{ChangeSet, Entries, Scan, StateDelta, StateError, StateRead};
