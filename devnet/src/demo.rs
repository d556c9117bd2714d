//! The devnet's demo user: account `ferry-devnet/user/0` (opened by real deposits when the system
//! starts, [`crate::funding`]), imported into a
//! devnet-local `ferry` keyring as `demo`, with coins on both parent chains (BTC from the
//! regtest miner, ETH from anvil's faucet, test tokens minted), so the "try it" commands
//! `make devnet` prints work when pasted. Public seed and passphrase: it protects nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bitcoin::{Amount as Sats, TxOut};
use ferry_cli::keyring::{Keyring, import_key};
use ferry_parent_chains::ethereum::U256;
use ferry_types::peg::BitcoinNetwork;

use crate::system::System;

/// The demo key's name in the keyring.
pub const NAME: &str = "demo";
/// The demo keyring's passphrase (public, like every devnet secret).
pub const PASSPHRASE: &str = "ferry-devnet";
/// Regtest coins the demo user gets on its own Bitcoin address.
pub const BTC_SATS: u64 = 100_000_000;
/// Ether the demo user gets on anvil.
pub const ETH_WEI: u128 = 100_000_000_000_000_000_000;
/// Test tokens minted to the demo user (18 decimals).
pub const TOKENS: u128 = 1_000_000_000_000_000_000_000;

/// Where the demo user's keys are and what it holds on the parent chains.
#[derive(Clone, Debug)]
pub struct Demo {
    /// The keyring file (`FERRY_KEYRING`).
    pub keyring: PathBuf,
    /// The file holding [`PASSPHRASE`] (`FERRY_PASSPHRASE_FILE`).
    pub passphrase_file: PathBuf,
    /// The sidechain account.
    pub account: String,
    /// Its regtest address.
    pub bitcoin_address: String,
    /// Its Ethereum address.
    pub ethereum_address: String,
}

/// Imports the demo key into `dir/keyring.json` (once; a rerun finds it there) and funds its
/// parent-chain addresses: regtest coins when `fresh` (btcd keeps them across restarts), ether
/// and test tokens every time (anvil starts empty on every `make devnet`).
///
/// # Errors
/// When the keyring cannot be written or a parent chain refuses the funding.
pub async fn create(system: &mut System, dir: &Path, fresh: bool) -> anyhow::Result<Demo> {
    let keyring = dir.join("keyring.json");
    let passphrase_file = dir.join("demo.passphrase");
    std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n"))
        .with_context(|| format!("writing {}", passphrase_file.display()))?;
    let existing = if keyring.exists() { Keyring::open(&keyring)?.get(NAME).ok() } else { None };
    let info = match existing {
        Some(info) => info,
        None => {
            let secret = ferry_types::key::sha256(b"ferry-devnet/user/0");
            import_key(&keyring, NAME, &secret, PASSPHRASE.as_bytes())?
        }
    };
    let bitcoin_address = info.bitcoin_address(BitcoinNetwork::Regtest)?;
    let ethereum: ferry_parent_chains::ethereum::EthAddress =
        info.ethereum_address.parse().with_context(|| format!("demo Ethereum address {}", info.ethereum_address))?;
    let parents = &mut system.parents;
    if fresh {
        let rpc = parents.btcd.rpc();
        parents
            .miner
            .pay(&rpc, vec![TxOut { value: Sats::from_sat(BTC_SATS), script_pubkey: bitcoin_address.script_pubkey() }])
            .await
            .context("funding the demo user's regtest address")?;
        parents.btcd.mine(1).await?;
    }
    parents.anvil.dev_node().set_balance(ethereum, U256::from(ETH_WEI)).await?;
    parents.anvil.wallet().mint_test_token(parents.anvil.token(), ethereum, U256::from(TOKENS)).await?;
    Ok(Demo {
        keyring,
        passphrase_file,
        account: info.account.to_string(),
        bitcoin_address: bitcoin_address.to_string(),
        ethereum_address: info.ethereum_address.clone(),
    })
}
