//! `ferry-parent-chains`: Ferry's clients of the parent chains, shared by the relayer, the `ferry`
//! CLI and the devnet — the Bitcoin node's JSON-RPC ([`bitcoin`]), and an Ethereum node with the
//! `FerryVault` bindings, a sending wallet and a read-only watcher ([`ethereum`]). Reading either
//! chain yields [`Observation`]s: deposits with the block they were seen in.
//!
//! It also sends a signed Bitcoin exit disbursal in the order its transactions become valid
//! ([`disbursal`]), for the relayer and `ferry exit btc` alike.
//!
//! It talks to nodes and reports what they say; it decides nothing. How deep a deposit must be,
//! what a reorganisation dropped, what to attest and when to deliver a release are the relayer's;
//! scanning Bitcoin blocks for the peg's outputs and assembling a release's witness stay there
//! too. This crate must not depend on the relayer, the signer or the state machine, touch the
//! sidechain or PostgreSQL, or hold a key other than the one a [`ethereum::Wallet`] is given to
//! send with (it never signs a release: the federation's signature comes from the sidechain).

pub mod bitcoin;
pub mod disbursal;
pub mod ethereum;
pub mod observation;

use std::sync::Arc;
use std::time::Duration;

pub use observation::Observation;

/// Told about every JSON-RPC call of either chain's clients once it completes: the method, how
/// long it took (request sent to answer decoded) and whether it succeeded — e.g. to feed
/// `ferry_relayer_rpc_duration_seconds`.
pub type RpcObserver = Arc<dyn Fn(&str, Duration, bool) + Send + Sync>;
