//! ABCI query paths and their JSON answers.
//!
//! Paths: `/account/<address>`, `/balances/<address>`, `/params`, `/app_hash`,
//! `/deposit/<id>`, `/reserves`, `/federation`. Every query is
//! answered at the height CometBFT passes (0 = latest committed).

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::amount::Coin;

/// Path prefix of the account query.
pub const ACCOUNT_PATH: &str = "/account/";
/// Path prefix of the balances query.
pub const BALANCES_PATH: &str = "/balances/";
/// Path of the params query.
pub const PARAMS_PATH: &str = "/params";
/// Path prefix of the deposit query (`/deposit/<deposit id>`).
pub const DEPOSIT_PATH: &str = "/deposit/";
/// Path of the reserves query (per-asset supply and reserves, and the Bitcoin reserve UTXOs).
pub const RESERVES_PATH: &str = "/reserves";
/// Path of the federation query.
pub const FEDERATION_PATH: &str = "/federation";
/// Path of the Bitcoin peg query.
pub const PEG_PATH: &str = "/peg";
/// Path of the app-hash query: the Merkle root this node computed at the height.
pub const APP_HASH_PATH: &str = "/app_hash";

/// Query answer code: found.
pub const QUERY_OK: u32 = 0;
/// Query answer code: the path or its argument is malformed.
pub const QUERY_BAD_REQUEST: u32 = 1;
/// Query answer code: nothing stored under that key at that height.
pub const QUERY_NOT_FOUND: u32 = 2;
/// Query answer code: the height is not available (in the future or before genesis).
pub const QUERY_BAD_HEIGHT: u32 = 3;

/// Answer to `/account/<address>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The account.
    pub address: Address,
    /// Its number (bound into every signature).
    pub account_number: u64,
    /// The next sequence it must sign with.
    pub sequence: u64,
    /// Hex compressed public key, once the account has signed a transaction.
    pub public_key: Option<String>,
}

/// Answer to `/balances/<address>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancesView {
    /// The account.
    pub address: Address,
    /// Non-zero balances, sorted by denom.
    pub balances: Vec<Coin>,
}

/// Answer to `/app_hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHashView {
    /// The height.
    pub height: u64,
    /// Hex Merkle root of the state after that height.
    pub app_hash: String,
}

/// Answer to `/peg`: where Bitcoin deposits go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegView {
    /// Bitcoin network.
    pub network: crate::peg::BitcoinNetwork,
    /// The P2WSH address deposits pay to.
    pub address: String,
    /// Hex witness script (the t-of-n multisig).
    pub witness_script: String,
    /// Signatures needed to spend.
    pub threshold: u32,
    /// Hex keys in script order.
    pub keys: Vec<String>,
}

impl PegView {
    /// The view of `peg`.
    pub fn of(peg: &crate::peg::Peg, network: crate::peg::BitcoinNetwork) -> Self {
        PegView {
            network,
            address: peg.address().to_string(),
            witness_script: hex::encode(peg.witness_script().as_bytes()),
            threshold: peg.threshold(),
            keys: peg.keys().iter().map(ToString::to_string).collect(),
        }
    }
}
