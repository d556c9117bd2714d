//! `ferry-relayer`: a federation member's eyes on the parent chains. It scans Bitcoin and
//! Ethereum for deposits to the federation, waits for the configured confirmations (dropping
//! anything a reorganisation removes), attests what it saw to the sidechain, and later delivers
//! signed releases.
//!
//! The decision logic is pure and lives apart from I/O: [`bitcoin::scan`] turns a block into
//! observations, [`confirmations`] says how deep a deposit must be, and [`tracker`] decides —
//! from heights and block hashes handed to it — what to attest and what a reorg dropped. The
//! relayer must never attest a deposit it has not seen confirmed on a block it re-checked, and
//! never mints anything itself: the chain mints only at a quorum of identical attestations.

pub mod bitcoin;
pub mod config;
pub mod confirmations;
pub mod ethereum;
pub mod metrics;
pub mod service;
pub mod store;
pub mod tracker;
