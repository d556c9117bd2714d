//! What each command does: fetch, decide with the pure modules, act, print. The only module of
//! the crate that talks to the Ferry node and the parent chains (through `ferry-client` and
//! `ferry-parent-chains`' Bitcoin and Ethereum clients).

use std::str::FromStr;
use std::time::Duration;

use ferry_client::FerryClient;
use ferry_client::wallet::Wallet;
use ferry_parent_chains::bitcoin::BitcoinRpc;
use ferry_parent_chains::ethereum::{self as eth, EthereumWatcher, U256};
use ferry_types::deposit_record::DepositRecord;
use ferry_types::event as ev;
use ferry_types::genesis::Federation;
use ferry_types::msg::{MsgWithdraw, check_destination};
use ferry_types::peg::{BitcoinNetwork, Peg, deposit_memo};
use ferry_types::query::{
    BITCOIN_FEES_PATH, BatchView, BitcoinFeesView, BridgeStatus, PegView, WithdrawalId, WithdrawalView,
};
use ferry_types::query::{DepositAddressView, ReservesCheckView, ReservesView};
use ferry_types::release::bitcoin::lone_release_fee;
use ferry_types::release::eth::EthAddress;
use ferry_types::release::fee::FeeRate;
use ferry_types::{Address, Amount, Coin, Denom, DepositId, Msg, Params, ParentChain};
use serde::Serialize;
use serde_json::{Value, json};

use crate::args::{Cli, Command, DepositCommand, Global, KeysCommand, WithdrawCommand};
use crate::bitcoin_wallet;
use crate::error::CliError;
use crate::ids::StatusId;
use crate::input::{SecretSource, confirm};
use crate::keyring::{KeyInfo, Keyring, UserKey};
use crate::progress::{self, DepositProgress, WithdrawalProgress};
use crate::units::{self, AssetKind};

mod exit;
mod exit_btc;

/// Writes results: one JSON document per call with `--json`, text otherwise.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Prints `value` (JSON mode) or `text`.
    pub fn emit(&self, value: &impl Serialize, text: &str) {
        if self.json {
            println!("{}", serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));
        } else {
            println!("{text}");
        }
    }

    /// Like [`Output::emit`] for a command that creates something to follow (a deposit, a
    /// withdrawal): in human mode the explanation goes to stderr and only `id` to stdout, so
    /// `id=$(ferry deposit …)` captures it.
    pub fn emit_id(&self, value: &impl Serialize, id: &str, text: &str) {
        if self.json {
            self.emit(value, text);
        } else {
            eprintln!("{text}");
            println!("{id}");
        }
    }
}

/// Runs the command line.
///
/// # Errors
/// Whatever the command met, as a [`CliError`] carrying its exit code.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.global.json };
    let ctx = Context { global: cli.global };
    match cli.command {
        Command::Keys(command) => ctx.keys(out, command),
        Command::Balance { address } => ctx.balance(out, address.as_deref()).await,
        Command::Send { to, amount, token, decimals } => ctx.send(out, &to, &amount, token.as_deref(), decimals).await,
        Command::Deposit(command) => ctx.deposit(out, command).await,
        Command::DepositAddress { no_qr } => ctx.deposit_address(out, no_qr).await,
        Command::Withdraw(command) => ctx.withdraw(out, command).await,
        Command::Status { id, watch, interval_ms, watch_timeout } => {
            ctx.status(out, &id, watch, Duration::from_millis(interval_ms.max(100)), watch_timeout).await
        }
        Command::Federation { command: None } => ctx.federation(out).await,
        Command::Federation { command: Some(crate::args::FederationCommand::Proposals) } => ctx.proposals(out).await,
        Command::Reserves => ctx.reserves(out).await,
        Command::Exit(command) => ctx.exit(out, command).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "ferry", &mut std::io::stdout());
            Ok(())
        }
    }
}

struct Context {
    global: Global,
}

/// A key's addresses, as `keys` prints them.
fn key_json(info: &KeyInfo, network: BitcoinNetwork) -> Result<Value, CliError> {
    let bitcoin = info.bitcoin_address(network).map_err(|e| CliError::other(e.to_string()))?;
    Ok(json!({
        "name": info.name,
        "account": info.account.to_string(),
        "bitcoin_address": bitcoin.to_string(),
        "bitcoin_network": network.to_string(),
        "ethereum_address": info.ethereum_address,
        "public_key": info.public_key,
    }))
}

fn key_text(info: &KeyInfo, network: BitcoinNetwork) -> String {
    let bitcoin = info.bitcoin_address(network).map(|a| a.to_string()).unwrap_or_else(|e| e.to_string());
    format!(
        "{}\n  account   {}\n  bitcoin   {bitcoin} ({network})\n  ethereum  {}",
        info.name, info.account, info.ethereum_address
    )
}

fn keyring_error(error: crate::keyring::KeyringError) -> CliError {
    use crate::keyring::KeyringError;
    let message = error.to_string();
    match error {
        KeyringError::UnknownKey { .. } => CliError::bad_input(message).with_hint("`ferry keys list` shows the keys"),
        KeyringError::BadName(_) | KeyringError::DuplicateName { .. } | KeyringError::BadSecret => {
            CliError::bad_input(message)
        }
        KeyringError::Seal { .. } | KeyringError::PublicKeyMismatch { .. } => CliError::bad_input(message),
        KeyringError::Io { .. } | KeyringError::NotAKeyring { .. } => CliError::other(message),
    }
}

fn parse_eth_address(text: &str, what: &str) -> Result<EthAddress, CliError> {
    text.parse::<EthAddress>().map_err(|e| CliError::bad_input(format!("{what}: {e}")))
}

fn alloy_address(address: &EthAddress) -> eth::EthAddress {
    eth::EthAddress::from(*address.as_bytes())
}

impl Context {
    fn client(&self) -> Result<FerryClient, CliError> {
        Ok(FerryClient::new(&self.global.node)?)
    }

    fn keyring(&self) -> Result<Keyring, CliError> {
        let path = self.global.keyring.clone().unwrap_or_else(crate::keyring::default_path);
        Keyring::open(&path).map_err(keyring_error)
    }

    fn secrets(&self) -> SecretSource {
        SecretSource::new(self.global.passphrase_file.as_deref())
    }

    fn acting_key_name(&self) -> Result<&str, CliError> {
        self.global.from.as_deref().ok_or_else(|| {
            CliError::bad_input("no key to act as")
                .with_hint("pass --from NAME (or set FERRY_FROM); see `ferry keys list`")
        })
    }

    /// Unlocks the `--from` key.
    fn unlock(&self) -> Result<UserKey, CliError> {
        let name = self.acting_key_name()?;
        let keyring = self.keyring()?;
        keyring.get(name).map_err(keyring_error)?;
        let passphrase = self.secrets().passphrase(name, false)?;
        keyring.unlock(name, &passphrase).map_err(keyring_error)
    }

    fn bitcoin_network(&self) -> Result<BitcoinNetwork, CliError> {
        BitcoinNetwork::from_str(&self.global.bitcoin_network)
            .map_err(|e| CliError::bad_input(format!("--bitcoin-network `{}`: {e}", self.global.bitcoin_network)))
    }

    /// An address, or the account of a key of that name.
    fn resolve_account(&self, text: &str) -> Result<Address, CliError> {
        if let Ok(address) = text.parse::<Address>() {
            return Ok(address);
        }
        let parse_error = text.parse::<Address>().err().map(|e| e.to_string()).unwrap_or_default();
        match self.keyring().ok().and_then(|k| k.get(text).ok()) {
            Some(info) => Ok(info.account),
            None => {
                Err(CliError::bad_input(format!("`{text}` is neither a key name nor a Ferry address: {parse_error}"))
                    .with_hint("Ferry addresses look like ferry1…; `ferry keys list` shows the keys"))
            }
        }
    }

    fn bitcoin_rpc(&self) -> Result<BitcoinRpc, CliError> {
        let url = self.global.bitcoin_rpc.as_deref().ok_or_else(|| {
            CliError::bad_input("no Bitcoin node given").with_hint("pass --bitcoin-rpc URL (or set FERRY_BITCOIN_RPC)")
        })?;
        let password = match &self.global.bitcoin_rpc_password_file {
            Some(path) => {
                let bytes =
                    ferry_keystore::passphrase::read_file(path).map_err(|e| CliError::bad_input(e.to_string()))?;
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| CliError::bad_input(format!("{} is not UTF-8", path.display())))?
            }
            None => String::new(),
        };
        Ok(BitcoinRpc::new(url, &self.global.bitcoin_rpc_user, &password)?.with_timeout(Duration::from_secs(15)))
    }

    fn ethereum_rpc(&self) -> Result<&str, CliError> {
        self.global.ethereum_rpc.as_deref().ok_or_else(|| {
            CliError::bad_input("no Ethereum node given")
                .with_hint("pass --ethereum-rpc URL (or set FERRY_ETHEREUM_RPC)")
        })
    }

    /// `--vault`, else the vault the chain's parameters name.
    async fn vault(&self, client: &FerryClient) -> Result<EthAddress, CliError> {
        if let Some(vault) = &self.global.vault {
            return parse_eth_address(vault, "--vault");
        }
        let params = client.params().await?;
        params.withdrawals.ethereum.map(|bridge| bridge.vault).ok_or_else(|| {
            CliError::not_found("this chain names no Ethereum vault").with_hint("pass --vault (or set FERRY_VAULT)")
        })
    }

    async fn peg(&self, client: &FerryClient) -> Result<PegView, CliError> {
        client
            .query::<PegView>(ferry_types::query::PEG_PATH, None)
            .await?
            .ok_or_else(|| CliError::not_found("this chain has no Bitcoin peg"))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.global.timeout.max(1))
    }

    // ---- keys ----

    fn keys(&self, out: Output, command: KeysCommand) -> Result<(), CliError> {
        let network = self.bitcoin_network()?;
        let mut keyring = self.keyring()?;
        match command {
            KeysCommand::Add { name } => {
                let passphrase = self.secrets().passphrase(&name, true)?;
                let secret = random_secret()?;
                let info = keyring
                    .add(&name, &secret[..], &passphrase, ferry_keystore::KdfParams::default())
                    .map_err(keyring_error)?;
                out.emit(&key_json(&info, network)?, &format!("added {}", key_text(&info, network)));
            }
            KeysCommand::Import { name, secret_file } => {
                let passphrase = self.secrets().passphrase(&name, true)?;
                let secret = self.secrets().import_secret(secret_file.as_deref())?;
                let info = keyring
                    .add(&name, &secret[..], &passphrase, ferry_keystore::KdfParams::default())
                    .map_err(keyring_error)?;
                out.emit(&key_json(&info, network)?, &format!("imported {}", key_text(&info, network)));
            }
            KeysCommand::List => {
                let keys = keyring.list();
                let json: Result<Vec<Value>, CliError> = keys.iter().map(|k| key_json(k, network)).collect();
                let text = if keys.is_empty() {
                    format!("no keys in {}; add one with `ferry keys add NAME`", keyring.path().display())
                } else {
                    keys.iter().map(|k| key_text(k, network)).collect::<Vec<_>>().join("\n")
                };
                out.emit(&json!({ "keys": json? }), &text);
            }
            KeysCommand::Show { name } => {
                let info = keyring.get(&name).map_err(keyring_error)?;
                out.emit(&key_json(&info, network)?, &key_text(&info, network));
            }
            KeysCommand::Delete { name, yes } => {
                let info = keyring.get(&name).map_err(keyring_error)?;
                if !yes
                    && !confirm(&format!(
                        "Delete key `{name}` ({})? Its funds are lost without a backup.",
                        info.account
                    ))?
                {
                    return Err(CliError::other("not deleted"));
                }
                let info = keyring.delete(&name).map_err(keyring_error)?;
                out.emit(
                    &json!({ "deleted": info.name, "account": info.account.to_string() }),
                    &format!("deleted {name}"),
                );
            }
        }
        Ok(())
    }

    // ---- balance and send ----

    async fn balance(&self, out: Output, address: Option<&str>) -> Result<(), CliError> {
        let address = match address {
            Some(text) => self.resolve_account(text)?,
            None => {
                let name = self.acting_key_name().map_err(|e| e.with_hint("give an address, or --from NAME"))?;
                self.keyring()?.get(name).map_err(keyring_error)?.account
            }
        };
        let view = self.client()?.balances(&address, None).await?;
        let lines: Vec<String> =
            view.balances.iter().map(|c| format!("  {}", units::display(c.amount, &c.denom))).collect();
        let text = if lines.is_empty() {
            format!("{address}: no balance")
        } else {
            format!("{address}\n{}", lines.join("\n"))
        };
        let balances: Vec<Value> = view
            .balances
            .iter()
            .map(|c| json!({ "denom": c.denom.to_string(), "amount": c.amount.to_string() }))
            .collect();
        out.emit(&json!({ "address": address.to_string(), "balances": balances }), &text);
        Ok(())
    }

    /// Refuses (exit 4) when `address` cannot pay `amount` plus `fee` of `denom`.
    async fn ensure_funds(
        &self,
        client: &FerryClient,
        address: &Address,
        denom: &Denom,
        amount: Amount,
        fee: Amount,
    ) -> Result<(), CliError> {
        let needed = amount.checked_add(fee).map_err(|e| CliError::bad_input(e.to_string()))?;
        let held = client
            .balances(address, None)
            .await?
            .balances
            .iter()
            .find(|c| &c.denom == denom)
            .map_or(Amount::ZERO, |c| c.amount);
        if held < needed {
            return Err(CliError::refused(format!(
                "insufficient funds: {address} holds {}, this needs {} ({} plus the fee {})",
                units::display(held, denom),
                units::display(needed, denom),
                units::display(amount, denom),
                units::display(fee, denom)
            ))
            .with_hint("deposit first (`ferry deposit`), or send less"));
        }
        Ok(())
    }

    fn min_fee(params: &Params, denom: &Denom) -> Result<Amount, CliError> {
        params.min_fee(denom).ok_or_else(|| {
            CliError::bad_input(format!("`{denom}` cannot pay fees on this chain, so it cannot be moved"))
        })
    }

    async fn send(
        &self,
        out: Output,
        to: &str,
        amount_text: &str,
        token: Option<&str>,
        decimals: u8,
    ) -> Result<(), CliError> {
        let to = self.resolve_account(to)?;
        let (denom, amount) = match token {
            Some(token) => {
                let denom = Denom::erc20(&parse_eth_address(token, "--token")?);
                let asset = AssetKind::Token { denom: denom.clone(), decimals };
                (denom, units::parse_amount(amount_text, &asset).map_err(|e| CliError::bad_input(e.to_string()))?)
            }
            None => {
                let (asset, amount) =
                    units::parse_with_unit(amount_text).map_err(|e| CliError::bad_input(e.to_string()))?;
                (asset.denom(), amount)
            }
        };
        let key = self.unlock()?;
        let client = self.client()?;
        let fee = Self::min_fee(&client.params().await?, &denom)?;
        let from = key.info().account;
        self.ensure_funds(&client, &from, &denom, amount, fee).await?;
        let account_key = key.account_key().map_err(keyring_error)?;
        let mut wallet = Wallet::load(&client, account_key).await?;
        let fee_coin = Coin { denom: denom.clone(), amount: fee };
        let inclusion =
            wallet.send(&client, to, vec![Coin { denom: denom.clone(), amount }], &fee_coin, self.timeout()).await?;
        if inclusion.code != 0 {
            return Err(CliError::refused(format!(
                "the transfer failed in block {}: {}",
                inclusion.height, inclusion.log
            )));
        }
        out.emit(
            &json!({
                "tx_hash": inclusion.hash.to_string(), "height": inclusion.height, "from": from.to_string(),
                "to": to.to_string(), "denom": denom.to_string(), "amount": amount.to_string(), "fee": fee.to_string(),
            }),
            &format!(
                "sent {} to {to} (fee {}) in block {}, tx {}",
                units::display(amount, &denom),
                units::display(fee, &denom),
                inclusion.height,
                inclusion.hash
            ),
        );
        Ok(())
    }

    // ---- deposits ----

    async fn recipient(&self, to: Option<&str>) -> Result<Address, CliError> {
        match to {
            Some(text) => self.resolve_account(text),
            None => {
                let name = self.acting_key_name().map_err(|e| e.with_hint("pass --from NAME or --to ferry1…"))?;
                Ok(self.keyring()?.get(name).map_err(keyring_error)?.account)
            }
        }
    }

    /// `ferry deposit-address`: the key's registered deposit address, registering it first when
    /// the chain has none (no second transaction when it has).
    async fn deposit_address(&self, out: Output, no_qr: bool) -> Result<(), CliError> {
        let client = self.client()?;
        let key = self.unlock()?;
        let account = key.info().account;
        let path = format!("{}{account}", ferry_types::query::DEPOSIT_ADDRESS_PATH);
        let (view, registered_now) = match client.query::<DepositAddressView>(&path, None).await? {
            Some(view) => (view, false),
            None => {
                let account_key = key.account_key().map_err(keyring_error)?;
                let inclusion = Wallet::register_deposit_address(&client, account_key, self.timeout()).await?;
                if inclusion.code != 0 {
                    return Err(CliError::refused(format!(
                        "the deposit address registration failed in block {}: {}",
                        inclusion.height, inclusion.log
                    )));
                }
                let view =
                    client.query::<DepositAddressView>(&path, Some(inclusion.height)).await?.ok_or_else(|| {
                        CliError::not_found(format!(
                            "block {} registered no deposit address for {account}",
                            inclusion.height
                        ))
                    })?;
                (view, true)
            }
        };
        let params = client.params().await?;
        let minimum = params.deposits.min_deposit(&Denom::sat());
        let mut text = format!("deposit address of {account}: {}\n", view.address);
        if !no_qr {
            text.push_str(&qr_code(&view.uri)?);
        }
        text.push_str(&format!(
            "Any Bitcoin wallet or exchange can pay it; no memo is needed. Each payment of at least {} mints to {account} once confirmed (`ferry status <txid>` follows it).",
            units::display(minimum, &Denom::sat())
        ));
        if registered_now {
            text.push_str(&format!(
                "\nregistered in block {} (registration {})",
                view.record.height, view.record.number
            ));
        }
        out.emit(
            &json!({
                "account": account.to_string(), "address": view.address, "uri": view.uri,
                "witness_script": view.witness_script, "registration": view.record.number,
                "registered_height": view.record.height, "registered_now": registered_now,
                "min_deposit_sat": minimum.to_string(),
            }),
            &text,
        );
        Ok(())
    }

    async fn deposit(&self, out: Output, command: DepositCommand) -> Result<(), CliError> {
        let client = self.client()?;
        match command {
            DepositCommand::Btc { amount, print_only, to } => {
                let amount = units::parse_amount(&amount, &AssetKind::Bitcoin)
                    .map_err(|e| CliError::bad_input(e.to_string()))?;
                let sats =
                    u64::try_from(amount.get()).map_err(|_| CliError::bad_input("amount too large for Bitcoin"))?;
                let recipient = self.recipient(to.as_deref()).await?;
                let peg = self.peg(&client).await?;
                let peg_address = peg
                    .address
                    .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
                    .map_err(|e| CliError::other(format!("the chain's peg address `{}`: {e}", peg.address)))?
                    .assume_checked();
                let memo = deposit_memo(&recipient);
                let memo_data = memo.as_bytes().get(2..).map(hex::encode).unwrap_or_default();
                if print_only {
                    let value = json!({
                        "peg_address": peg.address, "network": peg.network.to_string(), "amount_sat": sats,
                        "recipient": recipient.to_string(), "memo_script": hex::encode(memo.as_bytes()), "memo_data": memo_data,
                    });
                    let text = format!(
                        "Pay {} to the peg {} ({}) in ONE transaction that also has exactly one OP_RETURN output:\n  \
                         OP_RETURN data (hex): {memo_data}\n  output script (hex): {}\nThe deposit credits {recipient} \
                         once the federation sees it confirmed. Each output to the peg is one deposit btc:<txid>:<vout>.",
                        units::display(amount, &Denom::sat()),
                        peg.address,
                        peg.network,
                        hex::encode(memo.as_bytes())
                    );
                    out.emit(&value, &text);
                    return Ok(());
                }
                let rpc = self.bitcoin_rpc()?;
                let key = self.unlock()?;
                let own = key.info().bitcoin_address(peg.network).map_err(keyring_error)?;
                let (available, coverage) =
                    bitcoin_wallet::find_unspent(&rpc, &own, self.global.bitcoin_scan_blocks).await?;
                let outputs = vec![
                    bitcoin::TxOut {
                        value: bitcoin::Amount::from_sat(sats),
                        script_pubkey: peg_address.script_pubkey(),
                    },
                    bitcoin::TxOut { value: bitcoin::Amount::ZERO, script_pubkey: memo },
                ];
                let (tx, spent) = bitcoin_wallet::build_payment(
                    &available,
                    coverage,
                    outputs,
                    &own.script_pubkey(),
                    self.global.bitcoin_fee_rate,
                )
                .map_err(|e| CliError { message: format!("{} ({own})", e.message), ..e })?;
                let secret = key.bitcoin_secret().map_err(keyring_error)?;
                let tx = bitcoin_wallet::sign_p2wpkh(tx, &spent, &secret)?;
                let txid = rpc.send_raw_transaction(&tx).await?;
                let id = format!("btc:{txid}:0");
                out.emit_id(
                    &json!({
                        "txid": txid.to_string(), "deposit_id": id, "amount_sat": sats, "recipient": recipient.to_string(),
                        "from": own.to_string(), "coins_searched": coverage.label(),
                    }),
                    &id,
                    &format!(
                        "deposited {} from {own} to {recipient}: tx {txid}\nfollow it: ferry status {id} --watch",
                        units::display(amount, &Denom::sat())
                    ),
                );
            }
            DepositCommand::Eth { amount, to } => {
                let amount =
                    units::parse_amount(&amount, &AssetKind::Ether).map_err(|e| CliError::bad_input(e.to_string()))?;
                let recipient = self.recipient(to.as_deref()).await?;
                let vault = self.vault(&client).await?;
                let key = self.unlock()?;
                let wallet = eth::Wallet::connect(self.ethereum_rpc()?, &key.ethereum_private_key_hex())?;
                let receipt = wallet.deposit_eth(alloy_address(&vault), &recipient, U256::from(amount.get())).await?;
                self.report_eth_deposit(out, &receipt, vault, &recipient, &units::display(amount, &Denom::wei()))?;
            }
            DepositCommand::Erc20 { token, amount, decimals, to } => {
                let token = parse_eth_address(&token, "token")?;
                let denom = Denom::erc20(&token);
                let asset = AssetKind::Token { denom: denom.clone(), decimals };
                let amount = units::parse_amount(&amount, &asset).map_err(|e| CliError::bad_input(e.to_string()))?;
                let recipient = self.recipient(to.as_deref()).await?;
                let vault = self.vault(&client).await?;
                let key = self.unlock()?;
                let wallet = eth::Wallet::connect(self.ethereum_rpc()?, &key.ethereum_private_key_hex())?;
                let value = U256::from(amount.get());
                // Checked before the approval, which would otherwise be a wasted transaction.
                if !wallet.listed(alloy_address(&vault), alloy_address(&token)).await? {
                    return Err(CliError::bad_input(format!(
                        "token {token} is not listed by the federation: the vault {vault} refuses deposits of it \
                         (listing is a federation decision; see `/listing/{token}` on the sidechain)"
                    )));
                }
                wallet.approve(alloy_address(&token), alloy_address(&vault), value).await?;
                let receipt =
                    wallet.deposit_token(alloy_address(&vault), alloy_address(&token), value, &recipient).await?;
                self.report_eth_deposit(out, &receipt, vault, &recipient, &format!("{amount} {denom}"))?;
            }
        }
        Ok(())
    }

    fn report_eth_deposit(
        &self,
        out: Output,
        receipt: &eth::Receipt,
        vault: EthAddress,
        recipient: &Address,
        what: &str,
    ) -> Result<(), CliError> {
        // The deposit is the transaction's first (and only) vault `Deposited` log: position 0.
        receipt
            .logs_from(alloy_address(&vault))
            .find(|log| log.topics.first() == Some(&eth::DEPOSITED_TOPIC))
            .ok_or_else(|| CliError::other(format!("transaction {} emitted no vault deposit", receipt.tx_hash)))?;
        let id = format!("eth:{}:0", receipt.tx_hash);
        out.emit_id(
            &json!({ "tx_hash": receipt.tx_hash, "block": receipt.block_number, "deposit_id": id, "recipient": recipient.to_string() }),
            &id,
            &format!(
                "deposited {what} to {recipient}: tx {} in block {}\nfollow it: ferry status {id} --watch",
                receipt.tx_hash, receipt.block_number
            ),
        );
        Ok(())
    }

    // ---- withdrawals ----

    async fn withdraw(&self, out: Output, command: WithdrawCommand) -> Result<(), CliError> {
        // Everything that needs no node is checked first.
        let mut max_fee = None;
        let (denom, amount, destination, yes) = match command {
            WithdrawCommand::Btc { amount, destination, max_fee: budget, options } => {
                let amount = units::parse_amount(&amount, &AssetKind::Bitcoin)
                    .map_err(|e| CliError::bad_input(e.to_string()))?;
                max_fee = budget
                    .map(|budget| units::parse_amount(&budget, &AssetKind::Bitcoin))
                    .transpose()
                    .map_err(|e| CliError::bad_input(format!("--max-fee: {e}")))?;
                (Denom::sat(), amount, destination, options.yes)
            }
            WithdrawCommand::Eth { amount, destination, options } => {
                let amount =
                    units::parse_amount(&amount, &AssetKind::Ether).map_err(|e| CliError::bad_input(e.to_string()))?;
                (Denom::wei(), amount, destination, options.yes)
            }
            WithdrawCommand::Erc20 { token, amount, destination, decimals, options } => {
                let denom = Denom::erc20(&parse_eth_address(&token, "token")?);
                let asset = AssetKind::Token { denom: denom.clone(), decimals };
                let amount = units::parse_amount(&amount, &asset).map_err(|e| CliError::bad_input(e.to_string()))?;
                (denom, amount, destination, options.yes)
            }
        };
        let destination = check_destination(&denom, &destination)
            .map_err(|e| CliError::bad_input(format!("destination `{destination}`: {e}")))?;
        let bad_network = |e: ferry_types::release::bitcoin::BtcReleaseError, network: BitcoinNetwork| {
            CliError::bad_input(format!("destination: {e}"))
                .with_hint(format!("Bitcoin is on {network} here: give an address of that network"))
        };
        if denom == Denom::sat() {
            // The network the user works on (--bitcoin-network), checked before asking the node.
            let network = self.bitcoin_network()?;
            ferry_types::release::bitcoin::parse_destination(&destination, network)
                .map_err(|e| bad_network(e, network))?;
        }
        let client = self.client()?;
        if denom == Denom::sat() {
            let peg = self.peg(&client).await?;
            ferry_types::release::bitcoin::parse_destination(&destination, peg.network)
                .map_err(|e| bad_network(e, peg.network))?;
        }
        let params = client.params().await?;
        let withdrawals = &params.withdrawals;
        let limit = withdrawals.limit(&denom).ok_or_else(|| {
            CliError::refused(format!("`{denom}` cannot be withdrawn on this chain (it has no withdrawal limit)"))
        })?;
        if denom != Denom::sat() && withdrawals.ethereum.is_none() {
            return Err(CliError::refused("this chain has no Ethereum vault to release to"));
        }
        if amount < limit.min_amount {
            return Err(CliError::bad_input(format!(
                "amount {} is below the smallest withdrawal, {}",
                units::display(amount, &denom),
                units::display(limit.min_amount, &denom)
            )));
        }
        if amount > limit.window_cap {
            return Err(CliError::bad_input(format!(
                "amount {} is above the most that can leave in one window, {}",
                units::display(amount, &denom),
                units::display(limit.window_cap, &denom)
            )));
        }
        let fee = Self::min_fee(&params, &denom)?;
        let quote = if denom == Denom::sat() {
            Some(self.bitcoin_fee_quote(&client, &destination, amount, max_fee, withdrawals).await?)
        } else {
            None
        };
        let key = self.unlock()?;
        let sender = key.info().account;
        self.ensure_funds(&client, &sender, &denom, amount, fee).await?;
        let mut summary = format!(
            "Withdraw {} from {sender}\n  sidechain fee     {}\n",
            units::display(amount, &denom),
            units::display(fee, &denom)
        );
        match &quote {
            Some(quote) => {
                summary.push_str(&format!(
                    "  miner fee         about {} now at {} (its share of the batch's fee, out of the amount)\n  \
                     fee budget        {} (max_fee: never more)\n  {destination} receives at least {}",
                    units::display(quote.estimate, &denom),
                    quote.rate,
                    units::display(quote.budget, &denom),
                    units::display(quote.least_received(amount), &denom)
                ));
                if quote.budget < quote.estimate {
                    summary.push_str("\n  the budget is below today's share: it waits until the fee rate falls");
                }
            }
            None => summary.push_str(&format!("  {destination} receives {}", units::display(amount, &denom))),
        }
        if amount > limit.delay_above {
            summary.push_str(&format!(
                "\n  above {}: waits {} blocks before batching",
                units::display(limit.delay_above, &denom),
                withdrawals.delay_blocks
            ));
        }
        if !yes {
            eprintln!("{summary}");
            if !confirm("Proceed?")? {
                return Err(CliError::other("withdrawal cancelled"));
            }
        }
        let msg = Msg::Withdraw(MsgWithdraw {
            sender,
            asset: denom.clone(),
            amount,
            destination: destination.clone(),
            max_fee: quote.as_ref().map_or(Amount::ZERO, |quote| quote.budget),
        });
        let mut wallet = Wallet::load(&client, key.account_key().map_err(keyring_error)?).await?;
        let inclusion =
            wallet.submit(&client, &Coin { denom: denom.clone(), amount: fee }, &[msg], self.timeout()).await?;
        if inclusion.code != 0 {
            return Err(CliError::refused(format!(
                "the withdrawal failed in block {}: {}",
                inclusion.height, inclusion.log
            )));
        }
        let id = inclusion
            .event_attribute(ev::WITHDRAWAL_QUEUED, ev::WITHDRAWAL_ID)
            .ok_or_else(|| CliError::other(format!("block {} names no withdrawal id", inclusion.height)))?
            .to_owned();
        out.emit_id(
            &json!({
                "withdrawal_id": id, "tx_hash": inclusion.hash.to_string(), "height": inclusion.height,
                "denom": denom.to_string(), "amount": amount.to_string(), "fee": fee.to_string(),
                "miner_fee_estimate": quote.as_ref().map(|q| q.estimate.to_string()),
                "max_fee": quote.as_ref().map(|q| q.budget.to_string()),
                "fee_rate_sat_per_kvb": quote.as_ref().map(|q| q.rate.sat_per_kvb()),
                "receives_at_least": quote.as_ref().map_or(amount, |q| q.least_received(amount)).to_string(),
                "destination": destination,
            }),
            &id,
            &format!(
                "{summary}\nwithdrawal {id} queued in block {}\nfollow it: ferry status {id} --watch",
                inclusion.height
            ),
        );
        Ok(())
    }

    /// Today's Bitcoin fee for a withdrawal of `amount` to `destination` (paid alone by a
    /// one-input release: batches share their fee, so the real share is at most about this),
    /// and the budget: `max_fee` if given, else the share at twice today's rate (two bumps of
    /// headroom), within what the chain accepts.
    async fn bitcoin_fee_quote(
        &self,
        client: &FerryClient,
        destination: &str,
        amount: Amount,
        max_fee: Option<Amount>,
        rules: &ferry_types::genesis::WithdrawalParams,
    ) -> Result<FeeQuote, CliError> {
        let fees: BitcoinFeesView = client
            .query(BITCOIN_FEES_PATH, None)
            .await?
            .ok_or_else(|| CliError::not_found("this chain reports no Bitcoin fees (`/bitcoin/fees`)"))?;
        let federation: Federation = client
            .query(ferry_types::query::FEDERATION_PATH, None)
            .await?
            .ok_or_else(|| CliError::not_found("this chain has no federation"))?;
        let bitcoin = federation.bitcoin.ok_or_else(|| CliError::not_found("this chain has no Bitcoin peg"))?;
        let peg = Peg::new(&bitcoin).map_err(|e| CliError::other(format!("the chain's peg: {e}")))?;
        let share = |rate| {
            lone_release_fee(&peg, destination, amount, 1, rate)
                .map_err(|e| CliError::bad_input(format!("amount {amount} sat: {e}")))
        };
        let estimate = share(fees.fee_rate)?;
        let floor = share(fees.min_fee_rate)?;
        let most = amount.checked_sub(rules.bitcoin_dust_limit).unwrap_or(Amount::ZERO);
        let doubled = FeeRate::from_sat_per_kvb(fees.fee_rate.sat_per_kvb().saturating_mul(2));
        let budget = match max_fee {
            Some(budget) => budget,
            None => share(doubled)?.min(most),
        };
        if budget < floor {
            return Err(CliError::bad_input(format!(
                "--max-fee {budget} sat is below {floor} sat, the fee of a release paying only this withdrawal at \
                 the floor rate of {}; it could never be paid",
                fees.min_fee_rate
            )));
        }
        if budget > most {
            return Err(CliError::bad_input(format!(
                "a fee budget of {budget} sat leaves less than the {} sat dust limit of the {amount} sat withdrawal",
                rules.bitcoin_dust_limit
            )));
        }
        Ok(FeeQuote { rate: fees.fee_rate, estimate, budget })
    }

    // ---- status ----

    async fn status(
        &self,
        out: Output,
        id: &str,
        watch: bool,
        interval: Duration,
        watch_timeout: u64,
    ) -> Result<(), CliError> {
        let id: StatusId = id.parse().map_err(|e: crate::ids::StatusIdError| CliError::bad_input(e.to_string()))?;
        let client = self.client()?;
        let deadline = (watch_timeout > 0).then(|| tokio::time::Instant::now() + Duration::from_secs(watch_timeout));
        let mut last: Option<Value> = None;
        loop {
            let (value, text, done) = match &id {
                StatusId::Withdrawal(id) => {
                    let progress = self.withdrawal_status(&client, *id).await?;
                    let mut value = serde_json::to_value(&progress).unwrap_or_default();
                    value["kind"] = json!("withdrawal");
                    value["done"] = json!(progress.is_final());
                    (value, progress.render(), progress.is_final())
                }
                deposit => {
                    let found = self.deposit_status(&client, deposit).await;
                    let list = match found {
                        Ok(list) => list,
                        // Watching a deposit not seen yet: keep looking.
                        Err(error) if watch && error.kind == crate::error::ErrorKind::NotFound => Vec::new(),
                        Err(error) => return Err(error),
                    };
                    let done = !list.is_empty() && list.iter().all(DepositProgress::is_final);
                    let text = if list.is_empty() {
                        "not seen yet".to_owned()
                    } else {
                        list.iter().map(DepositProgress::render).collect::<Vec<_>>().join("\n")
                    };
                    let value = match list.as_slice() {
                        [one] => {
                            let mut value = serde_json::to_value(one).unwrap_or_default();
                            value["kind"] = json!("deposit");
                            value["done"] = json!(done);
                            value
                        }
                        many => json!({ "kind": "deposits", "deposits": many, "done": done }),
                    };
                    (value, text, done)
                }
            };
            if last.as_ref() != Some(&value) {
                out.emit(&value, &text);
                last = Some(value);
            }
            if !watch || done {
                return Ok(());
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(CliError::other(format!("not done after {watch_timeout} s of watching")));
            }
            tokio::time::sleep(interval).await;
        }
    }

    async fn withdrawal_status(&self, client: &FerryClient, id: WithdrawalId) -> Result<WithdrawalProgress, CliError> {
        let view: WithdrawalView = client
            .query(&format!("{}{id}", ferry_types::query::WITHDRAWAL_PATH), None)
            .await?
            .ok_or_else(|| CliError::not_found(format!("no withdrawal {id} on this chain")))?;
        let batch: Option<BatchView> = match view.withdrawal.batch {
            Some(batch) => client.query(&format!("{}{batch}", ferry_types::query::BATCH_PATH), None).await?,
            None => None,
        };
        let mut confirmations = None;
        if let Some(batch) = &batch
            && self.global.bitcoin_rpc.is_some()
        {
            // Output 0 pays the first withdrawal and nobody spends it soon; a failure leaves it
            // unknown. Any version of a replaced release may be the one out there.
            let rpc = self.bitcoin_rpc()?;
            for (_, txid, _) in batch.batch.bitcoin_versions() {
                let Ok(txid) = txid.parse() else { continue };
                confirmations = rpc.get_tx_out(&txid, 0, true).await.ok().flatten().map(|out| out.confirmations);
                if confirmations.is_some() {
                    break;
                }
            }
        }
        let bump_after = client.params().await?.withdrawals.bitcoin_bump_after_blocks;
        Ok(progress::withdrawal_progress(&view, batch.as_ref(), confirmations, bump_after))
    }

    async fn deposit_status(&self, client: &FerryClient, id: &StatusId) -> Result<Vec<DepositProgress>, CliError> {
        let federation: Federation = client
            .query(ferry_types::query::FEDERATION_PATH, None)
            .await?
            .ok_or_else(|| CliError::not_found("the chain has no federation"))?;
        let quorum = federation.attest_quorum;
        // (id, parent confirmations if known)
        let mut found: Vec<(DepositId, Option<u64>)> = Vec::new();
        match id {
            StatusId::Deposit(id) => {
                let confirmations = match id.chain() {
                    Some(ParentChain::Bitcoin) => self.bitcoin_confirmations(client, id.as_str()).await?,
                    _ => self
                        .ethereum_confirmations(client, id.as_str())
                        .await?
                        .and_then(|list| list.first().map(|(_, k)| *k)),
                };
                found.push((id.clone(), confirmations));
            }
            StatusId::BitcoinTx(txid) => {
                for vout in 0..16u32 {
                    let id = DepositId::from_str(&format!("btc:{txid}:{vout}"))
                        .map_err(|e| CliError::bad_input(e.to_string()))?;
                    let record: Option<DepositRecord> = self.deposit_record(client, &id).await?;
                    let confirmations = self.bitcoin_confirmations(client, id.as_str()).await?;
                    if record.is_some() || confirmations.is_some() {
                        found.push((id, confirmations));
                    }
                }
            }
            StatusId::EthereumTx(hash) => {
                let list = self.ethereum_confirmations(client, hash).await?.ok_or_else(|| {
                    CliError::bad_input("finding the deposits of an Ethereum transaction needs its node").with_hint(
                        "pass --ethereum-rpc (or set FERRY_ETHEREUM_RPC), or give the deposit id eth:<hash>:<logindex>",
                    )
                })?;
                found.extend(list.into_iter().map(|(id, k)| (id, Some(k))));
            }
            StatusId::Withdrawal(_) => {}
        }
        let mut progress = Vec::new();
        for (id, confirmations) in found {
            let record = self.deposit_record(client, &id).await?;
            if record.is_none() && confirmations.is_none() {
                continue;
            }
            progress.push(progress::deposit_progress(
                id,
                record.as_ref(),
                confirmations,
                self.global.confirmations,
                quorum,
            ));
        }
        if progress.is_empty() {
            return Err(CliError::not_found(format!("no deposit {} is known yet", status_text(id)))
                .with_hint("the federation attests once the parent chain confirms it; pass --bitcoin-rpc/--ethereum-rpc to see the parent chain too"));
        }
        Ok(progress)
    }

    async fn deposit_record(&self, client: &FerryClient, id: &DepositId) -> Result<Option<DepositRecord>, CliError> {
        Ok(client.query(&format!("{}{id}", ferry_types::query::DEPOSIT_PATH), None).await?)
    }

    /// Confirmations of the peg output `btc:<txid>:<vout>` (None: no Bitcoin node given, not a
    /// peg output, or spent). An output paying the `--from` key's registered deposit address
    /// counts as a peg output.
    async fn bitcoin_confirmations(&self, client: &FerryClient, id: &str) -> Result<Option<u64>, CliError> {
        if self.global.bitcoin_rpc.is_none() {
            return Ok(None);
        }
        let mut parts = id.split(':').skip(1);
        let (Some(txid), Some(vout)) = (parts.next(), parts.next().and_then(|v| v.parse::<u32>().ok())) else {
            return Ok(None);
        };
        let script_of = |address: &str| {
            address
                .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
                .map(|a| hex::encode(a.assume_checked().script_pubkey().as_bytes()))
                .unwrap_or_default()
        };
        let mut scripts = vec![script_of(&self.peg(client).await?.address)];
        if let Some(name) = self.global.from.as_deref() {
            let account = self.keyring()?.get(name).map_err(keyring_error)?.account;
            let path = format!("{}{account}", ferry_types::query::DEPOSIT_ADDRESS_PATH);
            if let Some(view) = client.query::<DepositAddressView>(&path, None).await? {
                scripts.push(script_of(&view.address));
            }
        }
        #[derive(serde::Deserialize)]
        struct Out {
            confirmations: u64,
            #[serde(rename = "scriptPubKey")]
            script: Script,
        }
        #[derive(serde::Deserialize)]
        struct Script {
            hex: String,
        }
        let rpc = self.bitcoin_rpc()?;
        let answer: Option<Out> = rpc.call("gettxout", &[json!(txid), json!(vout), json!(true)]).await?;
        Ok(answer.filter(|out| scripts.contains(&out.script.hex)).map(|out| out.confirmations))
    }

    /// The vault deposits of transaction `hash` (of `eth:<hash>:<index>` when an id is given)
    /// with their confirmations; None without an Ethereum node.
    async fn ethereum_confirmations(
        &self,
        client: &FerryClient,
        id_or_hash: &str,
    ) -> Result<Option<Vec<(DepositId, u64)>>, CliError> {
        let Some(rpc) = self.global.ethereum_rpc.as_deref() else { return Ok(None) };
        let vault = self.vault(client).await?;
        let watcher = EthereumWatcher::connect(rpc, alloy_address(&vault))?;
        let tip = watcher.block_number().await?;
        let from = tip.saturating_sub(self.global.ethereum_search_blocks);
        let observations = watcher.deposits_in(from, tip).await?;
        Ok(Some(
            observations
                .into_iter()
                .filter(|o| {
                    let id = o.facts.id();
                    id.as_str() == id_or_hash || o.facts.tx_id == id_or_hash
                })
                .map(|o| (o.facts.id(), (tip + 1).saturating_sub(o.block_height)))
                .collect(),
        ))
    }

    // ---- federation and reserves ----

    async fn proposals(&self, out: Output) -> Result<(), CliError> {
        use ferry_types::query::federation::{
            FEDERATION_PROPOSALS_PATH, FederationProposals, PARAMS_PROPOSALS_PATH, ParamsProposals,
        };
        let client = self.client()?;
        let federation: FederationProposals = client.query(FEDERATION_PROPOSALS_PATH, None).await?.unwrap_or_default();
        let params: ParamsProposals = client.query(PARAMS_PROPOSALS_PATH, None).await?.unwrap_or_default();
        let mut text = String::new();
        if federation.proposals.is_empty() {
            text.push_str("no open federation proposal\n");
        }
        for proposal in &federation.proposals {
            text.push_str(&format!(
                "federation proposed by {} at height {}: {}-of-{} [{}]\n",
                proposal.member,
                proposal.height,
                proposal.threshold,
                proposal.members.len(),
                proposal.members.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
        if params.proposals.is_empty() {
            text.push_str("no open parameter proposal\n");
        }
        for proposal in &params.proposals {
            text.push_str(&format!(
                "parameters {} proposed by {} at height {}\n",
                proposal.hash, proposal.member, proposal.height
            ));
        }
        match &params.scheduled {
            Some(scheduled) => text.push_str(&format!(
                "parameters {} accepted at height {}, effective at height {}",
                scheduled.hash, scheduled.accepted_at, scheduled.effective
            )),
            None => text.push_str("no parameter change scheduled"),
        }
        out.emit(&json!({"federation": federation, "params": params}), &text);
        Ok(())
    }

    async fn federation(&self, out: Output) -> Result<(), CliError> {
        let client = self.client()?;
        let federation: Federation = client
            .query(ferry_types::query::FEDERATION_PATH, None)
            .await?
            .ok_or_else(|| CliError::not_found("the chain has no federation"))?;
        let bridge: BridgeStatus = client.query(ferry_types::query::BRIDGE_PATH, None).await?.unwrap_or_default();
        let peg: Option<PegView> = client.query(ferry_types::query::PEG_PATH, None).await?;
        let params = client.params().await?;
        let vault = params.withdrawals.ethereum.as_ref();
        let mut text = format!(
            "federation of {} (epoch {}), deposit and release quorum {}\n",
            federation.members.len(),
            federation.epoch,
            federation.attest_quorum
        );
        let liveness: Option<ferry_types::query::federation::LivenessView> =
            client.query(ferry_types::query::federation::LIVENESS_PATH, None).await?;
        let session: Option<ferry_types::query::federation::DkgSession> =
            client.query(ferry_types::query::federation::DKG_PATH, None).await?;
        let handover: Option<ferry_types::query::federation::Handover> =
            client.query(ferry_types::query::federation::HANDOVER_PATH, None).await?;
        for (index, member) in federation.members.iter().enumerate() {
            let heartbeat = liveness.as_ref().and_then(|view| view.members.iter().find(|m| m.account == *member));
            let live = match heartbeat {
                Some(m) if m.live && m.last_round > 0 => format!("live (heartbeat at height {})", m.last_height),
                Some(m) if m.live => "live (no heartbeat round yet)".to_owned(),
                Some(m) => format!("NOT LIVE (last heartbeat at height {})", m.last_height),
                None => String::new(),
            };
            text.push_str(&format!("  member {index}  {member}  {live}\n"));
        }
        if let Some(view) = &liveness {
            text.push_str(&format!(
                "live members {} of {} (threshold {}; an alert fires below {})\n",
                view.live,
                view.members.len(),
                view.threshold,
                view.threshold.saturating_add(1)
            ));
        }
        if let Some(session) = &session {
            text.push_str(&format!(
                "key generation {} for epoch {}: {} (attempt {}, {} participants)\n",
                session.session,
                session.epoch,
                session.phase.name(),
                session.attempt,
                session.participants.len()
            ));
        }
        if let Some(handover) = handover.as_ref().filter(|handover| handover.in_progress()) {
            text.push_str(&format!(
                "hand-over to epoch {} running since height {} (releases wait): vault {}, {} migration batch(es){}\n",
                handover.epoch,
                handover.started,
                if handover.rotated.is_some() { "rotated" } else { "not rotated yet" },
                handover.migration_batches.len(),
                handover.waiting.as_ref().map(|reason| format!("; WAITING: {reason}")).unwrap_or_default()
            ));
        }
        if let Some(peg) = &peg {
            text.push_str(&format!(
                "bitcoin peg  {} ({}), {}-of-{}\n",
                peg.address,
                peg.network,
                peg.threshold,
                peg.keys.len()
            ));
        }
        if let Some(vault) = vault {
            text.push_str(&format!("ethereum vault  {} (chain id {})\n", vault.vault, vault.chain_id));
        }
        text.push_str(&if bridge.paused {
            format!("bridge PAUSED since height {}: {}", bridge.since_height, bridge.reason)
        } else {
            "bridge running".to_owned()
        });
        out.emit(
            &json!({
                "members": federation.members.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "attest_quorum": federation.attest_quorum, "epoch": federation.epoch,
                "bitcoin_peg": peg, "ethereum_vault": vault.map(|v| json!({"address": v.vault.to_string(), "chain_id": v.chain_id})),
                "bridge": bridge,
                "liveness": liveness,
                "key_generation": session,
                "handover": handover,
            }),
            &text,
        );
        Ok(())
    }

    async fn reserves(&self, out: Output) -> Result<(), CliError> {
        let client = self.client()?;
        let view: ReservesView = client
            .query(ferry_types::query::RESERVES_PATH, None)
            .await?
            .ok_or_else(|| CliError::not_found("the chain answers no reserves"))?;
        // What the peg holds: the chain's reserve UTXOs still unspent on the Bitcoin node.
        let bitcoin_actual = match self.global.bitcoin_rpc {
            Some(_) => {
                let rpc = self.bitcoin_rpc()?;
                let mut total: u128 = 0;
                for utxo in &view.bitcoin_utxos {
                    #[derive(serde::Deserialize)]
                    struct Out {
                        value: f64,
                    }
                    let answer: Option<Out> =
                        rpc.call("gettxout", &[json!(utxo.txid), json!(utxo.vout), json!(false)]).await?;
                    if let Some(out) = answer {
                        let sats = bitcoin::Amount::from_btc(out.value)
                            .map_err(|e| CliError::other(format!("gettxout value {}: {e}", out.value)))?;
                        total += u128::from(sats.to_sat());
                    }
                }
                Some(total)
            }
            None => None,
        };
        let ethereum = match self.global.ethereum_rpc.as_deref() {
            Some(rpc) => {
                let vault = self.vault(&client).await?;
                // Reads only: a throwaway key satisfies the wallet type and signs nothing.
                let throwaway = hex::encode(random_secret()?.as_slice());
                Some((eth::Wallet::connect(rpc, &throwaway)?, vault))
            }
            None => None,
        };
        let mut rows = Vec::new();
        let mut text =
            format!("{:<52} {:>26} {:>26} {:>26}  parent chain\n", "asset", "supply", "reserves", "unreleased");
        for (denom, ledger) in &view.assets {
            let actual: Option<u128> = match denom.as_str() {
                ferry_types::denom::SAT => bitcoin_actual,
                ferry_types::denom::WEI => match &ethereum {
                    Some((wallet, vault)) => Some(u256_to_u128(wallet.balance(alloy_address(vault)).await?)),
                    None => None,
                },
                other => match (&ethereum, other.strip_prefix("erc20/")) {
                    (Some((wallet, vault)), Some(token)) => {
                        let token = parse_eth_address(token, "ledger token")?;
                        Some(u256_to_u128(wallet.token_balance(alloy_address(&token), alloy_address(vault)).await?))
                    }
                    _ => None,
                },
            };
            // The vault also holds deposits below the minimum (never minted); the chain's reserve
            // UTXOs never include below-minimum coins.
            let held_by_parent = if *denom == Denom::sat() {
                ledger.reserves.get()
            } else {
                ledger.reserves.get().saturating_add(ledger.below_minimum.get())
            };
            let matches = actual.map(|a| a == held_by_parent);
            let verdict = match (actual, matches) {
                (Some(a), Some(true)) => format!("{a} (matches)"),
                (Some(a), _) => format!("{a} (MISMATCH)"),
                (None, _) => "not checked (no parent-chain RPC)".to_owned(),
            };
            text.push_str(&format!(
                "{:<52} {:>26} {:>26} {:>26}  {verdict}\n",
                denom.to_string(),
                ledger.supply.to_string(),
                ledger.reserves.to_string(),
                ledger.unreleased.to_string()
            ));
            if !ledger.below_minimum.is_zero() {
                text.push_str(&format!(
                    "  {denom}: {} below the minimum deposit, never minted\n",
                    ledger.below_minimum
                ));
            }
            if !ledger.fee_pool.is_zero() {
                text.push_str(&format!(
                    "  {denom}: {} in the fee pool (prepaid by deposits, pays consolidations)\n",
                    ledger.fee_pool
                ));
            }
            if !ledger.unattributed.is_zero() {
                text.push_str(&format!(
                    "  {denom}: {} paid to the peg naming no account, held until the federation credits or refunds it\n",
                    ledger.unattributed
                ));
            }
            rows.push(json!({
                "denom": denom.to_string(), "supply": ledger.supply.to_string(), "reserves": ledger.reserves.to_string(),
                "unreleased": ledger.unreleased.to_string(),
                "below_minimum": ledger.below_minimum.to_string(), "fee_pool": ledger.fee_pool.to_string(),
                "unattributed": ledger.unattributed.to_string(),
                "parent_chain": actual.map(|a| a.to_string()), "matches": matches,
            }));
        }
        text.push_str(&format!("bitcoin reserve UTXOs: {}\n", view.bitcoin_utxos.len()));
        // The federation's own check: what a quorum of members' nodes showed the bridge holding.
        let checks: ReservesCheckView =
            client.query(ferry_types::query::RESERVES_CHECK_PATH, None).await?.unwrap_or_default();
        let mut federation = Vec::new();
        for (chain, check) in &checks.last {
            for (denom, asset) in &check.assets {
                let verdict = if !asset.shortfall.is_zero() {
                    format!("SHORT by {}", asset.shortfall)
                } else if !asset.excess.is_zero() {
                    format!("ok, {} more than the books hold", asset.excess)
                } else {
                    "ok".to_owned()
                };
                text.push_str(&format!(
                    "federation check of {denom} on {chain} (round {}, parent height {}, {} members agreed, at sidechain height {}): holds {}, needs at least {}: {verdict}\n",
                    check.round, check.parent_height, check.attesters, check.checked_at, asset.holdings, asset.least
                ));
                let gone: Vec<String> = check.gone.iter().map(ToString::to_string).collect();
                federation.push(json!({
                    "chain": chain.tag(), "denom": denom.to_string(), "round": check.round,
                    "parent_height": check.parent_height, "checked_at": check.checked_at,
                    "attesters": check.attesters, "holdings": asset.holdings.to_string(),
                    "least": asset.least.to_string(), "shortfall": asset.shortfall.to_string(),
                    "excess": asset.excess.to_string(), "gone": gone,
                }));
            }
            for id in &check.gone {
                text.push_str(&format!(
                    "  gone from {chain}: reserve output {id} (the members' nodes no longer hold it)\n"
                ));
            }
        }
        if checks.last.is_empty() {
            text.push_str(&format!(
                "federation check: none yet (a round every {} blocks, answered by the members' relayers)\n",
                checks.interval
            ));
        }
        out.emit(
            &json!({ "assets": rows, "bitcoin_utxos": view.bitcoin_utxos.len(), "federation_checks": federation }),
            text.trim_end(),
        );
        Ok(())
    }
}

fn status_text(id: &StatusId) -> String {
    match id {
        StatusId::Deposit(id) => id.to_string(),
        StatusId::BitcoinTx(tx) | StatusId::EthereumTx(tx) => format!("in transaction {tx}"),
        StatusId::Withdrawal(id) => id.to_string(),
    }
}

fn u256_to_u128(value: U256) -> u128 {
    u128::try_from(value).unwrap_or(u128::MAX)
}

/// A fresh secp256k1 secret from the OS's randomness.
fn random_secret() -> Result<zeroize::Zeroizing<[u8; 32]>, CliError> {
    use rand::RngCore;
    loop {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut secret[..])
            .map_err(|e| CliError::other(format!("the random number generator failed: {e}")))?;
        if k256::ecdsa::SigningKey::from_slice(&secret[..]).is_ok() {
            return Ok(secret);
        }
    }
}

/// What a Bitcoin withdrawal is quoted before it is sent.
struct FeeQuote {
    /// The chain's fee rate now.
    rate: FeeRate,
    /// Its share at that rate, paid alone.
    estimate: Amount,
    /// Its `max_fee`.
    budget: Amount,
}

impl FeeQuote {
    /// The least the destination receives: the amount less the whole budget.
    fn least_received(&self, amount: Amount) -> Amount {
        amount.checked_sub(self.budget).unwrap_or(Amount::ZERO)
    }
}

/// `text` as a QR code drawn with Unicode half blocks (two modules per character row), dark on
/// light with the quiet zone, readable by a phone from a terminal.
fn qr_code(text: &str) -> Result<String, CliError> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|error| CliError::bad_input(format!("`{text}` does not fit a QR code: {error}")))?;
    let drawn = code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).build();
    Ok(format!("{drawn}\n"))
}
