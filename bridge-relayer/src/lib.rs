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
//!
//! It talks to the parent chains through `ferry-parent-chains` (the Bitcoin RPC client, the
//! Ethereum watcher, wallet and vault bindings), which the CLI and the devnet share; what to do
//! with what those clients report is decided here.
//!
//! Releases go the other way ([`delivery`]): batches the federation signed on the sidechain are
//! carried to their parent chain unchanged ([`bitcoin::release`] assembles the witness from the
//! chain's signatures; the vault checks the Ethereum signature), and a member attests the release
//! transaction once it is confirmed on a block it re-checked. The relayer signs no release
//! itself; a `--deliver-only` relayer carries releases without attesting anything.
//!
//! Every reserves round the chain opens, the relayer also attests what its own nodes show the
//! bridge holding at the round's parent height ([`reserves`]): the peg's outputs from its own
//! index of the scanned blocks, the vault's balances. It reports each parent chain's height to
//! the chain before attesting deposits, which is what lets the chain fix a snapshot height at or
//! above every minted deposit.

pub mod attest;
pub mod bitcoin;
pub mod config;
pub mod confirmations;
pub mod delivery;
pub mod metrics;
pub mod reserves;
pub mod service;
pub mod store;
pub mod tracker;
