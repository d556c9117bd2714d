//! Wallet registration data for a Ferry network, in the Cosmos chain-registry format
//! (github.com/cosmos/chain-registry: `chain.json` and `assetlist.json`), which wallets (Keplr,
//! Leap, Cosmostation) and front ends read to add a chain: its id, bech32 prefix `ferry`, coin
//! type 118 (every Ferry key is a plain Cosmos secp256k1 key, see docs/cli.md), RPC endpoints,
//! fee denominations with their gas prices, and each asset's display units.
//!
//! Display units come from [`ferry_types::cosmos_api::denom_metadata`] and gas prices from
//! [`ferry_types::cosmos_api::min_gas_price`], so the files say what the chain's own queries say.

use std::path::Path;

use anyhow::Context;
use ferry_types::cosmos_api::{GAS_PER_TX, denom_metadata, min_gas_price};
use ferry_types::release::eth::EthAddress;
use ferry_types::{Denom, Params};
use serde_json::{Value, json};

/// The chain-registry name of a Ferry network with `chain_id` (lowercase letters and digits).
pub fn chain_name(chain_id: &str) -> String {
    chain_id.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// An ERC-20 token the network has listed, with what the chain does not record about it.
#[derive(Clone, Debug)]
pub struct ListedToken {
    /// The token contract.
    pub address: EthAddress,
    /// Its symbol on Ethereum.
    pub symbol: String,
    /// Its decimals on Ethereum.
    pub decimals: u32,
}

/// `chain.json`: what a wallet needs to add the chain.
pub fn chain_json(chain_id: &str, rpc_urls: &[String], params: &Params) -> Value {
    let fee_tokens: Vec<Value> = params
        .min_fees
        .iter()
        .map(|fee| {
            let low: f64 = min_gas_price(fee.amount).parse().unwrap_or(0.0);
            json!({
                "denom": fee.denom.as_str(),
                "fixed_min_gas_price": low,
                "low_gas_price": low,
                "average_gas_price": low * 2.0,
                "high_gas_price": low * 4.0,
            })
        })
        .collect();
    let rpc: Vec<Value> = rpc_urls
        .iter()
        .enumerate()
        .map(|(index, url)| json!({ "address": url, "provider": format!("validator {index}") }))
        .collect();
    json!({
        "$schema": "../chain.schema.json",
        "chain_name": chain_name(chain_id),
        "chain_type": "cosmos",
        "status": "live",
        "network_type": "devnet",
        "pretty_name": "Ferry",
        "website": "https://github.com/ferry-bridge/ferry",
        "chain_id": chain_id,
        "bech32_prefix": ferry_types::BECH32_PREFIX,
        "slip44": 118,
        "key_algos": ["secp256k1"],
        "fees": { "fee_tokens": fee_tokens },
        "description": format!(
            "Ferry federated-peg sidechain: wrapped BTC and ETH. Fees are flat per transaction; as gas, every transaction uses {GAS_PER_TX}, so the gas prices here are each denomination's minimum fee / {GAS_PER_TX}."
        ),
        "apis": { "rpc": rpc, "rest": [], "grpc": [] },
    })
}

/// `assetlist.json`: every fee denomination and listed token with its display units.
pub fn assetlist_json(chain_id: &str, params: &Params, tokens: &[ListedToken]) -> Value {
    let mut assets: Vec<Value> = params.min_fees.iter().map(|fee| asset(&fee.denom, None)).collect();
    assets.extend(tokens.iter().map(|token| asset(&Denom::erc20(&token.address), Some(token))));
    json!({ "$schema": "../assetlist.schema.json", "chain_name": chain_name(chain_id), "assets": assets })
}

fn asset(denom: &Denom, token: Option<&ListedToken>) -> Value {
    let metadata = denom_metadata(denom);
    let mut units: Vec<Value> =
        metadata.denom_units.iter().map(|unit| json!({ "denom": unit.denom, "exponent": unit.exponent })).collect();
    let (display, symbol, counterparty) = match token {
        // The chain does not record a token's decimals; the devnet knows the token it deployed.
        Some(token) => {
            let display = token.symbol.to_lowercase();
            units.push(json!({ "denom": display, "exponent": token.decimals }));
            let counterparty = json!({ "chain_name": "ethereum", "base_denom": format!("{}", token.address) });
            (display, token.symbol.clone(), counterparty)
        }
        None => {
            // `sat` and `wei` are the parent chains' own base units.
            let parent = match ferry_types::msg::parent_chain_of(denom) {
                ferry_types::ParentChain::Bitcoin => "bitcoin",
                ferry_types::ParentChain::Ethereum => "ethereum",
            };
            let counterparty = json!({ "chain_name": parent, "base_denom": denom.as_str() });
            (metadata.display.clone(), metadata.symbol.clone(), counterparty)
        }
    };
    json!({
        "description": metadata.description,
        "denom_units": units,
        "type_asset": "sdk.coin",
        "base": metadata.base,
        "name": metadata.name,
        "display": display,
        "symbol": symbol,
        "traces": [{ "type": "bridge", "counterparty": counterparty, "provider": "Ferry federation" }],
    })
}

/// Writes `chain.json` and `assetlist.json` into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(
    dir: &Path,
    chain_id: &str,
    rpc_urls: &[String],
    params: &Params,
    tokens: &[ListedToken],
) -> anyhow::Result<()> {
    for (name, value) in [
        ("chain.json", chain_json(chain_id, rpc_urls, params)),
        ("assetlist.json", assetlist_json(chain_id, params, tokens)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&value)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_and_assets_say_what_the_chain_says() -> anyhow::Result<()> {
        let params = Params::default();
        let chain = chain_json("ferry-devnet", &["http://127.0.0.1:26657".to_owned()], &params);
        assert_eq!(chain["bech32_prefix"], "ferry");
        assert_eq!(chain["slip44"], 118);
        assert_eq!(chain["chain_name"], "ferrydevnet");
        let fee_tokens = chain["fees"]["fee_tokens"].as_array().context("no fee tokens")?;
        let sat = fee_tokens.iter().find(|token| token["denom"] == "sat").context("sat pays no fee")?;
        let min_fee = params.min_fee(&Denom::sat()).context("no sat minimum")?;
        // The wallet's 100,000 gas at the minimum price is exactly the minimum fee.
        let price = sat["fixed_min_gas_price"].as_f64().context("no price")?;
        assert!((price * GAS_PER_TX as f64 - min_fee.get() as f64).abs() < 1e-6, "{price}");

        let token: EthAddress = "0x00000000000000000000000000000000000000aa".parse()?;
        let assets = assetlist_json(
            "ferry-devnet",
            &params,
            &[ListedToken { address: token, symbol: "fUSD".into(), decimals: 6 }],
        );
        let assets = assets["assets"].as_array().context("no assets")?;
        let btc = assets.iter().find(|asset| asset["base"] == "sat").context("no sat asset")?;
        assert_eq!((btc["display"].as_str(), btc["symbol"].as_str()), (Some("btc"), Some("fBTC")));
        assert!(
            btc["denom_units"]
                .as_array()
                .is_some_and(|units| units.iter().any(|u| u["denom"] == "btc" && u["exponent"] == 8))
        );
        let usd = assets.iter().find(|asset| asset["symbol"] == "fUSD").context("no token asset")?;
        assert!(usd["denom_units"].as_array().is_some_and(|units| units.iter().any(|u| u["exponent"] == 6)));
        Ok(())
    }
}
