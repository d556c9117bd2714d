//! Delivery of signed releases: the loop that carries batches the federation signed on the
//! sidechain to their parent chain, waits until the release is confirmed there, and (for a
//! federation member) attests it back with `MsgAttestRelease`.
//!
//! [`decision`] is the pure core: from the batch, the stored progress and what the parent chain
//! shows, it says what to do next. [`Delivery`] is the I/O shell around it: it reads the
//! sidechain's `/batches/pending`, asks the parent chains, records intent before acting and the
//! outcome after in `relayer_releases`, and sends. It must not alter what it carries: the
//! Bitcoin transaction and the Ethereum batch are the chain's, signed by the federation; a
//! relayer only decides when to hand them over and what it saw happen. [`exits`] keeps the
//! signed Bitcoin exit disbursals and broadcasts one once it opens.

pub mod decision;
pub mod exits;
mod service;

pub use service::{BitcoinDelivery, Delivery, EthereumDelivery};
