//! The Cosmos SDK interfaces Ferry answers, so that stock clients (cosmjs, Keplr, Leap) work
//! with it: the standard ABCI query paths with their protobuf requests and responses, exactly
//! as a Cosmos SDK node exchanges them (types from `cosmos-sdk-proto`, through cosmrs); the
//! display units of Ferry's denominations; and how Ferry's flat fees read as gas.
//!
//! Pure: this module decodes requests and encodes answers; the state machine (`ferry-app`)
//! reads the state in between. Ferry's own JSON query paths ([`crate::query`]) stay as they are.
//!
//! Failures are logged the way a Cosmos SDK node's gRPC layer words them
//! (`rpc error: code = NotFound desc = …`): clients match on that text (cosmjs turns a missing
//! account into `null` only on `code = NotFound`).

use cosmrs::proto::cosmos::auth::v1beta1::{BaseAccount, QueryAccountRequest, QueryAccountResponse};
use cosmrs::proto::cosmos::bank::v1beta1::{
    DenomUnit, Metadata, QueryAllBalancesRequest, QueryAllBalancesResponse, QueryBalanceRequest, QueryBalanceResponse,
    QueryDenomMetadataRequest, QueryDenomMetadataResponse, QueryDenomsMetadataResponse, QuerySupplyOfRequest,
    QuerySupplyOfResponse, QueryTotalSupplyResponse,
};
use cosmrs::proto::cosmos::base::abci::v1beta1::{GasInfo, Result as TxResult};
use cosmrs::proto::cosmos::base::query::v1beta1::PageResponse;
use cosmrs::proto::cosmos::crypto::secp256k1::PubKey as Secp256k1PubKey;
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::proto::tendermint::abci::{Event as EventProto, EventAttribute};
use prost::Message;

use crate::address::Address;
use crate::amount::{Amount, Coin};
use crate::denom::{Denom, ERC20_PREFIX, SAT, WEI};

/// `cosmos.auth.v1beta1.Query/Account`: a [`BaseAccount`] (public key once the account has
/// signed, account number, sequence).
pub const ACCOUNT_PATH: &str = "/cosmos.auth.v1beta1.Query/Account";
/// `cosmos.bank.v1beta1.Query/Balance`: one denomination's balance (zero when none).
pub const BALANCE_PATH: &str = "/cosmos.bank.v1beta1.Query/Balance";
/// `cosmos.bank.v1beta1.Query/AllBalances`: every non-zero balance, by denomination.
pub const ALL_BALANCES_PATH: &str = "/cosmos.bank.v1beta1.Query/AllBalances";
/// `cosmos.bank.v1beta1.Query/SupplyOf`: the minted supply of one denomination.
pub const SUPPLY_OF_PATH: &str = "/cosmos.bank.v1beta1.Query/SupplyOf";
/// `cosmos.bank.v1beta1.Query/TotalSupply`: the supply of every denomination the chain minted.
pub const TOTAL_SUPPLY_PATH: &str = "/cosmos.bank.v1beta1.Query/TotalSupply";
/// `cosmos.bank.v1beta1.Query/DenomMetadata`: a denomination's display units.
pub const DENOM_METADATA_PATH: &str = "/cosmos.bank.v1beta1.Query/DenomMetadata";
/// `cosmos.bank.v1beta1.Query/DenomsMetadata`: the display units of every minted denomination.
pub const DENOMS_METADATA_PATH: &str = "/cosmos.bank.v1beta1.Query/DenomsMetadata";
/// `cosmos.tx.v1beta1.Service/Simulate`: runs a transaction against the state without keeping
/// anything, and says the fee it needs (see [`GAS_PER_TX`]).
pub const SIMULATE_PATH: &str = "/cosmos.tx.v1beta1.Service/Simulate";

/// Every standard path answered, in the order the operator guide lists them.
pub const STANDARD_QUERY_PATHS: [&str; 8] = [
    ACCOUNT_PATH,
    BALANCE_PATH,
    ALL_BALANCES_PATH,
    SUPPLY_OF_PATH,
    TOTAL_SUPPLY_PATH,
    DENOM_METADATA_PATH,
    DENOMS_METADATA_PATH,
    SIMULATE_PATH,
];

/// Ferry charges a flat minimum fee per transaction ([`crate::Params::min_fees`]), not a price
/// per unit of gas. Seen as gas, every transaction uses `GAS_PER_TX`, so a denomination's
/// minimum gas price is its minimum fee / `GAS_PER_TX` ([`min_gas_price`]): a wallet's usual
/// 200,000-gas transfer at that price pays twice the minimum, and `Simulate`'s `gas_used` times
/// that price is exactly the minimum. The gas limit a transaction states is not enforced.
pub const GAS_PER_TX: u64 = 100_000;

/// The minimum gas price of a denomination whose minimum fee is `min_fee`, as an exact decimal
/// (`100` sat → `0.001`).
pub fn min_gas_price(min_fee: Amount) -> String {
    let per_gas = u128::from(GAS_PER_TX);
    let whole = min_fee.get() / per_gas;
    let fraction = min_fee.get() % per_gas;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = GAS_PER_TX.to_string().len() - 1;
    let fraction = format!("{fraction:0digits$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// A standard query, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StandardQuery {
    /// [`ACCOUNT_PATH`].
    Account {
        /// The account asked for.
        address: Address,
    },
    /// [`BALANCE_PATH`].
    Balance {
        /// The account.
        address: Address,
        /// The denomination.
        denom: Denom,
    },
    /// [`ALL_BALANCES_PATH`] (pagination is ignored: an account holds a handful of denominations).
    AllBalances {
        /// The account.
        address: Address,
    },
    /// [`SUPPLY_OF_PATH`].
    SupplyOf {
        /// The denomination.
        denom: Denom,
    },
    /// [`TOTAL_SUPPLY_PATH`].
    TotalSupply,
    /// [`DENOM_METADATA_PATH`].
    DenomMetadata {
        /// The denomination.
        denom: Denom,
    },
    /// [`DENOMS_METADATA_PATH`].
    DenomsMetadata,
    /// [`SIMULATE_PATH`].
    Simulate {
        /// The transaction as the client encoded it (`TxRaw`, or `Tx`: the same wire form).
        tx_bytes: Vec<u8>,
    },
}

/// A standard query that cannot be answered, with the log a Cosmos SDK node would give.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rpc error: code = InvalidArgument desc = {0}")]
pub struct InvalidArgument(pub String);

/// The log of a "not found" answer, worded as a Cosmos SDK node's (`what` names the missing thing).
pub fn not_found_log(what: &str) -> String {
    format!("rpc error: code = NotFound desc = {what} not found")
}

impl StandardQuery {
    /// Whether `path` is one of the standard paths.
    pub fn answers(path: &str) -> bool {
        STANDARD_QUERY_PATHS.contains(&path)
    }

    /// Decodes the request `data` sent to `path`; `None` when `path` is not a standard path.
    ///
    /// # Errors
    /// [`InvalidArgument`] naming the field that does not decode or is not valid on Ferry.
    pub fn decode(path: &str, data: &[u8]) -> Result<Option<StandardQuery>, InvalidArgument> {
        let query = match path {
            ACCOUNT_PATH => {
                let request: QueryAccountRequest = decode(path, data)?;
                StandardQuery::Account { address: address(&request.address)? }
            }
            BALANCE_PATH => {
                let request: QueryBalanceRequest = decode(path, data)?;
                StandardQuery::Balance { address: address(&request.address)?, denom: denom(&request.denom)? }
            }
            ALL_BALANCES_PATH => {
                let request: QueryAllBalancesRequest = decode(path, data)?;
                StandardQuery::AllBalances { address: address(&request.address)? }
            }
            SUPPLY_OF_PATH => {
                let request: QuerySupplyOfRequest = decode(path, data)?;
                StandardQuery::SupplyOf { denom: denom(&request.denom)? }
            }
            TOTAL_SUPPLY_PATH => StandardQuery::TotalSupply,
            DENOM_METADATA_PATH => {
                let request: QueryDenomMetadataRequest = decode(path, data)?;
                StandardQuery::DenomMetadata { denom: denom(&request.denom)? }
            }
            DENOMS_METADATA_PATH => StandardQuery::DenomsMetadata,
            SIMULATE_PATH => {
                let request: SimulateRequest = decode(path, data)?;
                // The deprecated `tx` field (a decoded `Tx`) is not read: clients since Cosmos SDK
                // 0.43 send `tx_bytes`.
                if request.tx_bytes.is_empty() {
                    return Err(InvalidArgument("empty txBytes is not allowed".to_owned()));
                }
                StandardQuery::Simulate { tx_bytes: request.tx_bytes }
            }
            _ => return Ok(None),
        };
        Ok(Some(query))
    }
}

fn decode<T: Message + Default>(path: &str, data: &[u8]) -> Result<T, InvalidArgument> {
    T::decode(data).map_err(|error| InvalidArgument(format!("request to {path} does not decode: {error}")))
}

fn address(text: &str) -> Result<Address, InvalidArgument> {
    text.parse().map_err(|error| InvalidArgument(format!("invalid address `{text}`: {error}")))
}

fn denom(text: &str) -> Result<Denom, InvalidArgument> {
    text.parse().map_err(|error| InvalidArgument(format!("invalid denom: {error}")))
}

/// What an account query answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountFacts {
    /// The account.
    pub address: Address,
    /// Its number.
    pub account_number: u64,
    /// The sequence its next transaction must carry.
    pub sequence: u64,
    /// Its compressed public key, once it has signed a transaction.
    pub public_key: Option<[u8; 33]>,
}

/// The encoded answer to [`ACCOUNT_PATH`]: a `BaseAccount` packed in `Any`.
pub fn account_response(account: &AccountFacts) -> Vec<u8> {
    let pub_key = account.public_key.map(|key| cosmrs::Any {
        type_url: "/cosmos.crypto.secp256k1.PubKey".to_owned(),
        value: Secp256k1PubKey { key: key.to_vec() }.encode_to_vec(),
    });
    let base = BaseAccount {
        address: account.address.to_string(),
        pub_key,
        account_number: account.account_number,
        sequence: account.sequence,
    };
    let any = cosmrs::Any { type_url: "/cosmos.auth.v1beta1.BaseAccount".to_owned(), value: base.encode_to_vec() };
    QueryAccountResponse { account: Some(any) }.encode_to_vec()
}

/// The encoded answer to [`BALANCE_PATH`].
pub fn balance_response(balance: &Coin) -> Vec<u8> {
    QueryBalanceResponse { balance: Some(balance.to_proto()) }.encode_to_vec()
}

/// A page holding everything: `total` entries, no next key.
fn whole_page(total: usize) -> Option<PageResponse> {
    Some(PageResponse { next_key: Vec::new(), total: u64::try_from(total).unwrap_or(u64::MAX) })
}

/// The encoded answer to [`ALL_BALANCES_PATH`] (`balances` sorted by denomination).
pub fn all_balances_response(balances: &[Coin]) -> Vec<u8> {
    QueryAllBalancesResponse {
        balances: balances.iter().map(Coin::to_proto).collect(),
        pagination: whole_page(balances.len()),
    }
    .encode_to_vec()
}

/// The encoded answer to [`SUPPLY_OF_PATH`].
pub fn supply_of_response(supply: &Coin) -> Vec<u8> {
    QuerySupplyOfResponse { amount: Some(supply.to_proto()) }.encode_to_vec()
}

/// The encoded answer to [`TOTAL_SUPPLY_PATH`].
pub fn total_supply_response(supply: &[Coin]) -> Vec<u8> {
    QueryTotalSupplyResponse {
        supply: supply.iter().map(Coin::to_proto).collect(),
        pagination: whole_page(supply.len()),
    }
    .encode_to_vec()
}

/// The encoded answer to [`DENOM_METADATA_PATH`].
pub fn denom_metadata_response(denom: &Denom) -> Vec<u8> {
    QueryDenomMetadataResponse { metadata: Some(denom_metadata(denom)) }.encode_to_vec()
}

/// The encoded answer to [`DENOMS_METADATA_PATH`].
pub fn denoms_metadata_response(denoms: &[Denom]) -> Vec<u8> {
    QueryDenomsMetadataResponse {
        metadatas: denoms.iter().map(denom_metadata).collect(),
        pagination: whole_page(denoms.len()),
    }
    .encode_to_vec()
}

/// The display units of a denomination: one home for them, read by `DenomMetadata` and by the
/// chain-registry asset list `ferry-devnet` writes.
///
/// * `sat`: wrapped bitcoin, displayed in `btc` (8 decimals), symbol `fBTC`.
/// * `wei`: wrapped ether, `gwei` (9) and `eth` (18), symbol `fETH`.
/// * `erc20/0x…`: the chain does not record a token's decimals or symbol (the listing carries
///   only the contract address and limits), so only the base unit is given and the description
///   says so; the CLI takes the decimals from the user (`--decimals`).
pub fn denom_metadata(denom: &Denom) -> Metadata {
    let unit = |name: &str, exponent: u32| DenomUnit { denom: name.to_owned(), exponent, aliases: Vec::new() };
    let base = denom.as_str().to_owned();
    let (description, units, display, name, symbol) = match denom.as_str() {
        SAT => (
            "Bitcoin wrapped by the Ferry federation, redeemable 1:1 on Bitcoin".to_owned(),
            vec![unit(SAT, 0), unit("btc", 8)],
            "btc",
            "Ferry Bitcoin",
            "fBTC",
        ),
        WEI => (
            "Ether wrapped by the Ferry federation, redeemable 1:1 on Ethereum".to_owned(),
            vec![unit(WEI, 0), unit("gwei", 9), unit("eth", 18)],
            "eth",
            "Ferry Ether",
            "fETH",
        ),
        token => (
            format!(
                "ERC-20 token 0x{} wrapped by the Ferry federation, in the token's base units (the chain does not record its decimals)",
                token.strip_prefix(ERC20_PREFIX).unwrap_or(token)
            ),
            vec![unit(token, 0)],
            token,
            "Ferry ERC-20 token",
            "",
        ),
    };
    Metadata {
        description,
        denom_units: units,
        base,
        display: display.to_owned(),
        name: name.to_owned(),
        symbol: symbol.to_owned(),
        uri: String::new(),
        uri_hash: String::new(),
    }
}

/// The outcome of a simulated transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simulated {
    /// The gas limit the transaction states (not enforced by Ferry).
    pub gas_wanted: u64,
    /// What the transaction needs to pay: `None` for a fee-exempt one.
    pub fee_needed: Option<Coin>,
    /// What happened, in words (as a delivered transaction's log).
    pub log: String,
    /// The events the transaction would emit: type and key/value attributes.
    pub events: Vec<(String, Vec<(String, String)>)>,
}

/// Event type of the fee a simulated transaction needs (attribute [`FEE_NEEDED_AMOUNT`]).
pub const FEE_NEEDED_EVENT: &str = "fee_needed";
/// Attribute of [`FEE_NEEDED_EVENT`]: the fee, `<amount><denom>` (empty when fee-exempt).
pub const FEE_NEEDED_AMOUNT: &str = "amount";

/// The encoded answer to [`SIMULATE_PATH`]: `gas_used` is [`GAS_PER_TX`] (see there), and the
/// result carries the transaction's events plus a [`FEE_NEEDED_EVENT`].
pub fn simulate_response(simulated: &Simulated) -> Vec<u8> {
    let event = |kind: &str, attributes: &[(String, String)]| EventProto {
        r#type: kind.to_owned(),
        attributes: attributes
            .iter()
            .map(|(key, value)| EventAttribute { key: key.clone(), value: value.clone(), index: false })
            .collect(),
    };
    let fee = simulated.fee_needed.as_ref().map(ToString::to_string).unwrap_or_default();
    let mut events: Vec<EventProto> =
        simulated.events.iter().map(|(kind, attributes)| event(kind, attributes)).collect();
    events.push(event(FEE_NEEDED_EVENT, &[(FEE_NEEDED_AMOUNT.to_owned(), fee)]));
    SimulateResponse {
        gas_info: Some(GasInfo { gas_wanted: simulated.gas_wanted, gas_used: GAS_PER_TX }),
        result: Some(TxResult { log: simulated.log.clone(), events, ..TxResult::default() }),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_gas_price_is_the_minimum_fee_per_transaction_gas() {
        assert_eq!(min_gas_price(Amount::new(100)), "0.001");
        assert_eq!(min_gas_price(Amount::new(10_000_000_000)), "100000");
        assert_eq!(min_gas_price(Amount::new(150_001)), "1.50001");
        assert_eq!(min_gas_price(Amount::new(0)), "0");
    }

    #[test]
    fn requests_decode_and_bad_fields_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let alice = Address::from_bytes([7; 20]);
        let request = QueryBalanceRequest { address: alice.to_string(), denom: SAT.to_owned() };
        assert_eq!(
            StandardQuery::decode(BALANCE_PATH, &request.encode_to_vec())?,
            Some(StandardQuery::Balance { address: alice, denom: Denom::sat() })
        );
        let bad = QueryBalanceRequest { address: alice.to_string(), denom: "uatom".to_owned() };
        let error = StandardQuery::decode(BALANCE_PATH, &bad.encode_to_vec()).err().ok_or("uatom accepted")?;
        assert!(error.to_string().starts_with("rpc error: code = InvalidArgument"), "{error}");
        assert!(error.to_string().contains("uatom"), "{error}");
        let error = StandardQuery::decode(ACCOUNT_PATH, b"\xff\xff").err().ok_or("garbage accepted")?;
        assert!(error.to_string().contains(ACCOUNT_PATH), "{error}");
        assert_eq!(StandardQuery::decode("/account/x", b"")?, None);
        Ok(())
    }

    #[test]
    fn an_account_answer_is_a_base_account() -> Result<(), Box<dyn std::error::Error>> {
        let facts = AccountFacts {
            address: Address::from_bytes([1; 20]),
            account_number: 5,
            sequence: 9,
            public_key: Some([2; 33]),
        };
        let response = QueryAccountResponse::decode(account_response(&facts).as_slice())?;
        let any = response.account.ok_or("no account")?;
        assert_eq!(any.type_url, "/cosmos.auth.v1beta1.BaseAccount");
        let base = BaseAccount::decode(any.value.as_slice())?;
        assert_eq!((base.address, base.account_number, base.sequence), (facts.address.to_string(), 5, 9));
        let key = Secp256k1PubKey::decode(base.pub_key.ok_or("no key")?.value.as_slice())?;
        assert_eq!(key.key, vec![2; 33]);
        Ok(())
    }

    #[test]
    fn display_units_of_bitcoin_and_ether() {
        let btc = denom_metadata(&Denom::sat());
        assert_eq!((btc.base.as_str(), btc.display.as_str(), btc.symbol.as_str()), ("sat", "btc", "fBTC"));
        assert_eq!(btc.denom_units.iter().map(|unit| unit.exponent).collect::<Vec<_>>(), [0, 8]);
        let eth = denom_metadata(&Denom::wei());
        assert_eq!(eth.denom_units.last().map(|unit| (unit.denom.as_str(), unit.exponent)), Some(("eth", 18)));
    }
}
