//! Answers to the standard Cosmos SDK queries ([`ferry_types::cosmos_api`]) over a state view,
//! so stock clients read accounts, balances, supply and display units as from any Cosmos SDK
//! chain; and `Simulate`: a transaction executed on a scratch copy of the state, never kept,
//! which says the fee the transaction needs.

use ferry_types::cosmos_api::{self as api, AccountFacts, Simulated, StandardQuery};
use ferry_types::query::{QUERY_BAD_REQUEST, QUERY_NOT_FOUND, QUERY_OK};
use ferry_types::{Coin, DecodedTx, Denom, TxCode};

use crate::execute::{self, PreVerified, TxContext};
use crate::query::QueryAnswer;
use crate::signature_cache::SignatureCache;
use crate::state::{StateDelta, StateError, StateRead};

/// What a simulation needs besides the state: the chain's id and the height it simulates at (the
/// block after the state's).
#[derive(Clone, Copy, Debug)]
pub struct SimulationContext<'a> {
    /// This chain's id.
    pub chain_id: &'a str,
    /// Height of the block the transaction would be in.
    pub height: u64,
}

fn protobuf(value: Vec<u8>) -> QueryAnswer {
    QueryAnswer { code: QUERY_OK, value, log: String::new() }
}

/// Answers the standard `query` (decoded by [`StandardQuery::decode`]).
///
/// # Errors
/// Only on storage failure.
pub fn answer<R: StateRead>(
    state: R,
    query: StandardQuery,
    context: &SimulationContext<'_>,
) -> Result<QueryAnswer, StateError> {
    let state = StateDelta::new(state);
    let answer = match query {
        StandardQuery::Account { address } => match state.account(&address)? {
            None => QueryAnswer::error(QUERY_NOT_FOUND, api::not_found_log(&format!("account {address}"))),
            Some(record) => {
                let public_key = record
                    .public_key
                    .as_deref()
                    .and_then(|text| hex::decode(text).ok())
                    .and_then(|bytes| <[u8; 33]>::try_from(bytes).ok());
                protobuf(api::account_response(&AccountFacts {
                    address,
                    account_number: record.account_number,
                    sequence: record.sequence,
                    public_key,
                }))
            }
        },
        StandardQuery::Balance { address, denom } => {
            let amount = state.account(&address)?.map(|record| record.balance(&denom)).unwrap_or_default();
            protobuf(api::balance_response(&Coin { denom, amount }))
        }
        StandardQuery::AllBalances { address } => {
            let balances: Vec<Coin> = state
                .account(&address)?
                .map(|record| record.balances.into_iter().map(|(denom, amount)| Coin { denom, amount }).collect())
                .unwrap_or_default();
            protobuf(api::all_balances_response(&balances))
        }
        StandardQuery::SupplyOf { denom } => {
            let amount = state.ledger(&denom)?.supply;
            protobuf(api::supply_of_response(&Coin { denom, amount }))
        }
        StandardQuery::TotalSupply => {
            let mut supply = Vec::new();
            for denom in state.ledger_denoms()? {
                let amount = state.ledger(&denom)?.supply;
                if !amount.is_zero() {
                    supply.push(Coin { denom, amount });
                }
            }
            protobuf(api::total_supply_response(&supply))
        }
        StandardQuery::DenomMetadata { denom } => {
            if known_denoms(&state)?.contains(&denom) {
                protobuf(api::denom_metadata_response(&denom))
            } else {
                QueryAnswer::error(QUERY_NOT_FOUND, api::not_found_log(&format!("client metadata for denom {denom}")))
            }
        }
        StandardQuery::DenomsMetadata => protobuf(api::denoms_metadata_response(&known_denoms(&state)?)),
        StandardQuery::Simulate { tx_bytes } => simulate(state, &tx_bytes, context)?,
    };
    Ok(answer)
}

/// The denominations the chain has minted or takes fees in, sorted.
fn known_denoms<R: StateRead>(state: &StateDelta<R>) -> Result<Vec<Denom>, StateError> {
    let mut denoms = state.ledger_denoms()?;
    denoms.extend(state.params()?.min_fees.into_iter().map(|coin| coin.denom));
    denoms.sort();
    denoms.dedup();
    Ok(denoms)
}

/// Executes the transaction in `tx_bytes` on a scratch copy of `state` as if it were in the next
/// block, signed and paying exactly the fee it needs (wallets simulate before they sign and
/// before they know the fee). Nothing is kept: not the writes, not the signature cache entry.
///
/// # Errors
/// Only on storage failure; a transaction that would fail is an answer naming why.
fn simulate<R: StateRead>(
    state: StateDelta<R>,
    tx_bytes: &[u8],
    context: &SimulationContext<'_>,
) -> Result<QueryAnswer, StateError> {
    let params = state.params()?;
    let refused = |code: TxCode, log: &str| {
        QueryAnswer::error(
            QUERY_BAD_REQUEST,
            format!(
                "rpc error: code = InvalidArgument desc = transaction would fail with code {}: {log}",
                code.value()
            ),
        )
    };
    let mut tx = match DecodedTx::decode_for_simulation(tx_bytes, params.max_tx_bytes) {
        Ok(tx) => tx,
        Err(rejection) => return Ok(refused(rejection.code, &rejection.log)),
    };
    let fee_needed = execute::fee_needed(&tx, &params);
    tx.fee.clone_from(&fee_needed);
    let account_number = state.account(&tx.signer)?.map_or(0, |record| record.account_number);
    let signatures = SignatureCache::new(1);
    let tx_context =
        TxContext { chain_id: context.chain_id, params: &params, signatures: &signatures, height: context.height };
    let signed = PreVerified { account_number, result: Ok(()) };
    let mut scratch = state;
    let executed = execute::execute(&mut scratch, &tx_context, &tx, Some(&signed))?;
    if executed.code != TxCode::Ok {
        return Ok(refused(executed.code, &executed.log));
    }
    let simulated = Simulated {
        gas_wanted: api::GAS_PER_TX,
        fee_needed,
        log: executed.log,
        events: executed
            .events
            .into_iter()
            .map(|event| {
                let attributes = event.attributes.into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
                (event.kind.to_owned(), attributes)
            })
            .collect(),
    };
    Ok(protobuf(api::simulate_response(&simulated)))
}
