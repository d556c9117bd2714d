//! Ferry's shared vocabulary: amounts, denominations, addresses, transaction messages, the
//! transaction wire format and its signing domain, genesis, query answers, the chain's deposit
//! records and event names.
//!
//! Everything here is pure: no I/O, no clocks, no randomness. The chain, the client, the relayer,
//! the signer and the CLI all speak these types, so each concept is defined here exactly once.
//! This crate must not depend on any networking, storage or async runtime.

pub mod address;
pub mod amount;
pub mod code;
pub mod cosmos_api;
pub mod denom;
pub mod deposit;
pub mod deposit_record;
pub mod dkg;
pub mod eth_address;
pub mod event;
pub mod exit_tree;
pub mod genesis;
pub mod key;
pub mod liveness;
pub mod msg;
pub mod peg;
pub mod query;
pub mod release;
pub mod state_keys;
pub mod tx;

pub use address::{Address, AddressError, BECH32_PREFIX};
pub use amount::{Amount, AmountError, Coin};
pub use code::TxCode;
pub use denom::{Denom, DenomError};
pub use deposit::{DepositFacts, DepositId, ParentChain};
pub use genesis::{GenesisAccount, GenesisError, GenesisState, Params};
pub use key::AccountKey;
pub use msg::Msg;
pub use tx::{DecodedTx, TxBuilder, TxRejection};
