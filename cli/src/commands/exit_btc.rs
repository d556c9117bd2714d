//! `ferry exit btc`: the holder's side of the Bitcoin exit (issue 17, `docs/exits.md`).
//!
//! The signed disbursal comes from a file saved earlier or from a node (assembled with the
//! members' signatures the chain recorded, [`FerryClient::signed_disbursal`]); it is broadcast
//! step by step ([`ferry_parent_chains::disbursal::advance`]): nothing before its lock height,
//! the intermediate while every reserve UTXO it spends is unspent, the fan-outs once the
//! intermediate is in a block.

use std::path::Path;

use ferry_client::FerryClient;
use ferry_client::wallet::Wallet;
use ferry_parent_chains::disbursal::{DisbursalError, DisbursalStep, advance};
use ferry_types::msg::MsgSetRecoveryAddress;
use ferry_types::query::{BtcExitStatus, EXIT_BTC_PATH};
use ferry_types::query::{EXIT_BTC_RECOVERY_PATH, RecoveryView};
use ferry_types::release::exit::{Claimant, Payout, SignedDisbursal};
use ferry_types::{Coin, Denom, Msg};
use serde_json::json;

use super::{Context, Output, keyring_error};
use crate::error::CliError;

impl Context {
    pub(super) async fn exit_btc(
        &self,
        out: Output,
        file: Option<&Path>,
        save: Option<&Path>,
        id: Option<u64>,
    ) -> Result<(), CliError> {
        let disbursal = match file {
            Some(path) => read_disbursal(path)?,
            None => self.node_disbursal(id).await?,
        };
        if let Some(path) = save {
            let text = serde_json::to_string_pretty(&disbursal).map_err(|e| CliError::other(e.to_string()))?;
            std::fs::write(path, text).map_err(|e| CliError::other(format!("cannot write {}: {e}", path.display())))?;
            out.emit(
                &json!({
                    "exit": disbursal.exit,
                    "lock_height": disbursal.lock_height,
                    "transactions": disbursal.transactions.len(),
                    "file": path.display().to_string(),
                }),
                &format!(
                    "wrote exit disbursal {} ({} transactions, valid from Bitcoin height {}) to {}",
                    disbursal.exit,
                    disbursal.transactions.len(),
                    disbursal.lock_height,
                    path.display()
                ),
            );
            return Ok(());
        }
        let node = self.bitcoin_rpc()?;
        let step = advance(&node, &disbursal).await.map_err(|error| match error {
            DisbursalError::Malformed(error) => CliError::bad_input(format!("the disbursal: {error}")),
            DisbursalError::Rpc { what, error } => CliError::from(error).with_hint(what),
        })?;
        let (state, text) = match &step {
            DisbursalStep::Locked { tip, lock_height } => (
                "locked",
                format!(
                    "exit disbursal {} opens at Bitcoin height {lock_height}: {} blocks from the tip {tip}",
                    disbursal.exit,
                    u64::from(*lock_height).saturating_sub(*tip)
                ),
            ),
            DisbursalStep::Dead { spent } => (
                "dead",
                format!(
                    "exit disbursal {} can never confirm: its reserve UTXO {spent} was spent by a later release (a newer disbursal covers the reserve)",
                    disbursal.exit
                ),
            ),
            DisbursalStep::IntermediatePending { txid } => (
                "intermediate_pending",
                format!("intermediate {txid} sent; run again once it is in a block to send the fan-outs"),
            ),
            DisbursalStep::FanOutsPending { pending } => {
                ("fan_outs_pending", format!("{pending} fan-out transactions wait for a block"))
            }
            DisbursalStep::Done => {
                ("done", format!("every transaction of exit disbursal {} is in a block", disbursal.exit))
            }
        };
        let mine = self.own_payouts(&disbursal);
        let mut lines = vec![text];
        lines.extend(mine.iter().map(|(text, _)| text.clone()));
        out.emit(
            &json!({
                "exit": disbursal.exit,
                "state": state,
                "lock_height": disbursal.lock_height,
                "snapshot_height": disbursal.snapshot_height,
                "payouts": mine.iter().map(|(_, value)| value.clone()).collect::<Vec<_>>(),
            }),
            &lines.join("\n"),
        );
        if matches!(step, DisbursalStep::Dead { .. }) {
            return Err(CliError::refused(format!("exit disbursal {} is superseded", disbursal.exit)));
        }
        Ok(())
    }

    /// The Bitcoin half of `ferry exit status`: the covering disbursal, when it opens (against
    /// the Bitcoin node's tip, else the chain's clock), and what it pays `account`. Never fails:
    /// what cannot be read is said.
    pub(super) async fn btc_exit_status(&self, account: &ferry_types::Address) -> (Vec<String>, serde_json::Value) {
        let disbursal = match self.node_disbursal(None).await {
            Ok(disbursal) => disbursal,
            Err(error) => return (vec![format!("Bitcoin exit: {error}")], json!({ "error": error.to_string() })),
        };
        let tip = match self.bitcoin_rpc() {
            Ok(node) => node.get_block_count().await.ok(),
            Err(_) => None,
        };
        let clock = match tip {
            Some(tip) => Some(tip),
            None => match self.client() {
                Ok(client) => client
                    .query::<BtcExitStatus>(EXIT_BTC_PATH, None)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|status| status.clock),
                Err(_) => None,
            },
        };
        let opens_in = clock.map(|height| u64::from(disbursal.lock_height).saturating_sub(height));
        let when = match opens_in {
            Some(0) => "it is valid now: `ferry exit btc` broadcasts it".to_owned(),
            Some(blocks) => format!("it becomes valid in {blocks} Bitcoin blocks (about {} h)", blocks / 6),
            None => "no Bitcoin height known (--bitcoin-rpc)".to_owned(),
        };
        let mut lines = vec![format!(
            "Bitcoin exit: disbursal {} pays the balances of sidechain height {}, valid from Bitcoin height {}: {when}",
            disbursal.exit, disbursal.snapshot_height, disbursal.lock_height
        )];
        let (mine, pooled) = holder_share(&disbursal, account);
        for payout in &mine {
            lines.push(format!(
                "  pays {account} {} sat of its {} sat balance to script {}",
                payout.paid, payout.claim, payout.script
            ));
        }
        if pooled {
            lines.push(pooled_line(account));
        }
        if mine.is_empty() && !pooled {
            lines.push(format!("  nothing for {account} (no sat balance at that height)"));
        }
        let value = json!({
            "exit": disbursal.exit,
            "snapshot_height": disbursal.snapshot_height,
            "lock_height": disbursal.lock_height,
            "opens_in_blocks": opens_in,
            "payouts": mine.iter().map(|payout| json!({
                "claim": payout.claim, "paid": payout.paid, "script": payout.script, "txid": payout.txid, "vout": payout.vout,
            })).collect::<Vec<_>>(),
            "pooled": pooled,
        });
        (lines, value)
    }

    /// Shows, sets (`address`) or clears the --from key's Bitcoin recovery address.
    pub(super) async fn recovery_address(
        &self,
        out: Output,
        address: Option<String>,
        clear: bool,
    ) -> Result<(), CliError> {
        let client = self.client()?;
        let account = self.resolve_account(self.acting_key_name()?)?;
        let mut tx = None;
        if address.is_some() || clear {
            if let Some(address) = &address {
                let peg = self.peg(&client).await?;
                ferry_types::release::bitcoin::parse_destination(address, peg.network).map_err(|e| {
                    CliError::bad_input(format!("recovery address: {e}"))
                        .with_hint(format!("Bitcoin is on {} here: give an address of that network", peg.network))
                })?;
            }
            let params = client.params().await?;
            let fee = Self::min_fee(&params, &Denom::sat())?;
            let key = self.unlock()?;
            let msg = Msg::SetRecoveryAddress(MsgSetRecoveryAddress {
                account,
                asset: Denom::sat(),
                address: address.clone(),
            });
            let mut wallet = Wallet::load(&client, key.account_key().map_err(keyring_error)?).await?;
            let inclusion =
                wallet.submit(&client, &Coin { denom: Denom::sat(), amount: fee }, &[msg], self.timeout()).await?;
            if inclusion.code != 0 {
                return Err(CliError::refused(format!(
                    "the recovery address was refused in block {}: {}",
                    inclusion.height, inclusion.log
                )));
            }
            client.wait_for_height(inclusion.height + 1, self.timeout()).await?;
            tx = Some((inclusion.hash.to_string(), inclusion.height));
        }
        let view: RecoveryView = client
            .query(&format!("{EXIT_BTC_RECOVERY_PATH}{account}"), None)
            .await?
            .ok_or_else(|| CliError::not_found("the node has no /exit/btc/recovery"))?;
        let pays = view.registered.clone().or(view.default.clone()).unwrap_or_default();
        let how = if view.registered.is_some() { "registered" } else { "its own key's address" };
        let mut text = format!("the Bitcoin exit pays {account} to {pays} ({how})");
        if let Some((_, height)) = &tx {
            text.push_str(&format!("\nset in block {height}; it applies from the next disbursal the chain derives"));
        }
        out.emit(
            &json!({
                "account": account.to_string(),
                "registered": view.registered,
                "default": view.default,
                "pays": pays,
                "tx_hash": tx.as_ref().map(|(hash, _)| hash.clone()),
                "height": tx.as_ref().map(|(_, height)| *height),
            }),
            &text,
        );
        Ok(())
    }

    /// The signed disbursal `id` (default: the covering one) from the node.
    async fn node_disbursal(&self, id: Option<u64>) -> Result<SignedDisbursal, CliError> {
        let client = self.client()?;
        let id = match id {
            Some(id) => id,
            None => {
                let status: BtcExitStatus = client.query(EXIT_BTC_PATH, None).await?.unwrap_or_default();
                status.covering.ok_or_else(|| {
                    CliError::not_found("no exit disbursal covers the reserve yet (none before the first Bitcoin release with one confirms)")
                })?
            }
        };
        Ok(FerryClient::signed_disbursal(&client, id).await?)
    }

    /// The --from key's outputs in `disbursal` (text line, JSON), if a key is given.
    fn own_payouts(&self, disbursal: &SignedDisbursal) -> Vec<(String, serde_json::Value)> {
        let Some(account) = self.global.from.as_deref().and_then(|name| self.resolve_account(name).ok()) else {
            return Vec::new();
        };
        let (mine, pooled) = holder_share(disbursal, &account);
        let mut lines: Vec<(String, serde_json::Value)> = mine
            .into_iter()
            .map(|payout| {
                (
                    format!(
                        "  pays {account} {} sat of its {} sat balance at height {} in {}:{}",
                        payout.paid, payout.claim, disbursal.snapshot_height, payout.txid, payout.vout
                    ),
                    json!({ "claim": payout.claim, "paid": payout.paid, "txid": payout.txid, "vout": payout.vout }),
                )
            })
            .collect();
        if pooled {
            lines.push((pooled_line(&account), json!({ "pooled": true })));
        }
        lines
    }
}

/// What `disbursal` pays `account`: its outputs, and whether its claim was pooled instead.
fn holder_share<'a>(disbursal: &'a SignedDisbursal, account: &ferry_types::Address) -> (Vec<&'a Payout>, bool) {
    let holder = Claimant::Holder(*account);
    let outputs = disbursal.payouts.iter().filter(|payout| payout.claimant == holder).collect();
    (outputs, disbursal.pooled.contains(&holder))
}

fn pooled_line(account: &ferry_types::Address) -> String {
    format!(
        "  {account}'s balance is below the exit's least output: it stays in the residual at the federation's address"
    )
}

fn read_disbursal(path: &Path) -> Result<SignedDisbursal, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::bad_input(format!("{} is not a signed exit disbursal: {e}", path.display())))
}
