//! `ferry exit …`: the holder's side of the vault's escape hatch (issue 17, `docs/exits.md`).
//!
//! The claims come from the chain at the height of the vault's root — a node that still serves
//! that height, or a file `ferry exit export` wrote — and are checked against the root the vault
//! holds before anything is signed: a node or file that does not give the vault's root is refused.

use std::time::Duration;

use ferry_client::FerryClient;
use ferry_parent_chains::ethereum::{self as eth, EscapeState, EthereumWatcher};
use ferry_types::exit_tree::{Claim, ClaimsSnapshot};
use ferry_types::release::eth::EthAddress;
use serde_json::{Value, json};

use super::{Context, Output, alloy_address, parse_eth_address};
use crate::args::ExitCommand;
use crate::error::CliError;

/// Where one of the key's claims stands in the vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClaimState {
    /// It may be taken (once the vault is frozen).
    Open,
    /// It was taken.
    Exited,
    /// A withdrawal the vault paid by releasing its batch.
    PaidByRelease,
}

impl ClaimState {
    fn label(self) -> &'static str {
        match self {
            ClaimState::Open => "open",
            ClaimState::Exited => "exited",
            ClaimState::PaidByRelease => "paid by its release",
        }
    }
}

fn claim_json(index: u32, claim: &Claim, state: ClaimState) -> Value {
    json!({
        "index": index,
        "token": claim.token.to_string(),
        "nonce": claim.nonce,
        "amount": claim.amount.to_string(),
        "state": state.label(),
    })
}

fn claim_text(index: u32, claim: &Claim, state: ClaimState) -> String {
    let asset = if claim.token.is_zero() { "wei".to_owned() } else { format!("of token {}", claim.token) };
    let kind = if claim.nonce == 0 { String::new() } else { format!(" (withdrawal in batch {})", claim.nonce) };
    format!("  #{index}: {} {asset}{kind} — {}", claim.amount, state.label())
}

/// A human duration, rounded down to the largest unit.
fn duration_text(seconds: u64) -> String {
    match seconds {
        0 => "now".to_owned(),
        s if s >= 86_400 => format!("in {} d {} h", s / 86_400, s % 86_400 / 3_600),
        s if s >= 3_600 => format!("in {} h {} min", s / 3_600, s % 3_600 / 60),
        s => format!("in {s} s"),
    }
}

impl Context {
    pub(super) async fn exit(&self, out: Output, command: ExitCommand) -> Result<(), CliError> {
        match command {
            ExitCommand::Status { claims } => self.exit_status(out, claims.as_deref()).await,
            ExitCommand::Eth { to, claims } => self.exit_eth(out, to.as_deref(), claims.as_deref()).await,
            ExitCommand::Export { out: path, height } => self.exit_export(out, &path, height).await,
            ExitCommand::Btc { file, save, id } => self.exit_btc(out, file.as_deref(), save.as_deref(), id).await,
            ExitCommand::RecoveryAddress { address, clear } => self.recovery_address(out, address, clear).await,
        }
    }

    /// The vault (from `--vault`, or the chain's parameters) and a watcher of it.
    async fn escape_watcher(&self) -> Result<(EthereumWatcher, EthAddress), CliError> {
        let vault = match &self.global.vault {
            Some(vault) => parse_eth_address(vault, "--vault")?,
            None => self
                .vault(&self.client()?)
                .await
                .map_err(|e| e.with_hint("with the sidechain down, pass --vault (or set FERRY_VAULT)"))?,
        };
        Ok((EthereumWatcher::connect(self.ethereum_rpc()?, alloy_address(&vault))?, vault))
    }

    /// Every claim committed at `height`: from `file`, else from the node (which must still
    /// serve that height).
    async fn claims_at(&self, height: u64, file: Option<&std::path::Path>) -> Result<ClaimsSnapshot, CliError> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
            let snapshot: ClaimsSnapshot = serde_json::from_str(&text)
                .map_err(|e| CliError::bad_input(format!("{} is not a claims export: {e}", path.display())))?;
            if snapshot.height != height {
                return Err(CliError::bad_input(format!(
                    "{} holds the claims of height {}, the vault's root is of height {height}",
                    path.display(),
                    snapshot.height
                )));
            }
            return Ok(snapshot);
        }
        self.client()?.exit_claims(height).await.map_err(|e| {
            CliError::from(e).with_hint(format!(
                "the node must serve height {height} (an archive node), or pass --claims FILE from `ferry exit export --height {height}`"
            ))
        })
    }

    /// The claims at the vault's root height, refused unless they make the vault's root.
    async fn claims_of_vault(
        &self,
        state: &EscapeState,
        file: Option<&std::path::Path>,
    ) -> Result<ClaimsSnapshot, CliError> {
        if state.exit_root == [0; 32] {
            return Err(CliError::not_found("the vault never received a heartbeat: it holds no root to exit against"));
        }
        let snapshot = self.claims_at(state.root_height, file).await?;
        let root = snapshot.tree().root();
        if root != state.exit_root {
            return Err(CliError::refused(format!(
                "the claims of height {} make the root {}, but the vault holds {}: the node or file does not show the chain the vault trusts",
                state.root_height,
                hex::encode(root),
                hex::encode(state.exit_root)
            )));
        }
        Ok(snapshot)
    }

    async fn claim_state(&self, watcher: &EthereumWatcher, index: u32, claim: &Claim) -> Result<ClaimState, CliError> {
        if watcher.exited(index).await? {
            return Ok(ClaimState::Exited);
        }
        if claim.nonce != 0 && watcher.released(claim.nonce).await? {
            return Ok(ClaimState::PaidByRelease);
        }
        Ok(ClaimState::Open)
    }

    async fn exit_status(&self, out: Output, file: Option<&std::path::Path>) -> Result<(), CliError> {
        let account = self.resolve_account(self.acting_key_name()?)?;
        let (bitcoin_lines, bitcoin) = self.btc_exit_status(&account).await;
        let mut lines = Vec::new();
        let mut answer = if self.global.ethereum_rpc.is_some() {
            self.eth_exit_status(&account, file, &mut lines).await?
        } else {
            lines.push("Ethereum: no node given (--ethereum-rpc): the vault's escape hatch is not shown".to_owned());
            json!({ "account": account.to_string() })
        };
        lines.extend(bitcoin_lines);
        answer["bitcoin"] = bitcoin;
        out.emit(&answer, &lines.join("\n"));
        Ok(())
    }

    /// The Ethereum half of `ferry exit status`: the vault's escape hatch and the key's claims.
    async fn eth_exit_status(
        &self,
        account: &ferry_types::Address,
        file: Option<&std::path::Path>,
        lines: &mut Vec<String>,
    ) -> Result<Value, CliError> {
        let (watcher, vault) = self.escape_watcher().await?;
        let state = watcher.escape_state().await?;
        let opens = if state.frozen {
            "frozen: exits are open".to_owned()
        } else {
            format!("escape hatch opens {}", duration_text(state.opens_in()))
        };
        lines.push(format!(
            "vault {vault}: {opens}; root of sidechain height {} ({})",
            state.root_height,
            hex::encode(state.exit_root)
        ));
        let mut claims = Vec::new();
        match self.claims_of_vault(&state, file).await {
            Ok(snapshot) => {
                lines.push(format!("claims of {account} at height {}:", state.root_height));
                let mine = snapshot.of(account);
                if mine.is_empty() {
                    lines.push("  none".to_owned());
                }
                for (index, claim) in mine {
                    let claim_state = self.claim_state(&watcher, index, &claim).await?;
                    lines.push(claim_text(index, &claim, claim_state));
                    claims.push(claim_json(index, &claim, claim_state));
                }
            }
            Err(error) => lines.push(format!("claims unknown: {error}")),
        }
        Ok(json!({
            "vault": vault.to_string(),
            "frozen": state.frozen,
            "opens_at": state.opens_at,
            "opens_in_seconds": state.opens_in(),
            "root_height": state.root_height,
            "root": hex::encode(state.exit_root),
            "account": account.to_string(),
            "claims": claims,
        }))
    }

    async fn exit_eth(&self, out: Output, to: Option<&str>, file: Option<&std::path::Path>) -> Result<(), CliError> {
        let key = self.unlock()?;
        let account = key.info().account;
        let recipient = match to {
            Some(text) => parse_eth_address(text, "--to")?,
            None => parse_eth_address(&key.info().ethereum_address, "the key's Ethereum address")?,
        };
        let (watcher, vault) = self.escape_watcher().await?;
        let wallet = eth::Wallet::connect(self.ethereum_rpc()?, &key.ethereum_private_key_hex())?
            .with_receipt_wait(Duration::from_millis(200), self.timeout());
        let mut state = watcher.escape_state().await?;
        let mut froze = None;
        if !state.frozen {
            if state.opens_in() > 0 {
                return Err(CliError::refused(format!(
                    "the vault's escape hatch opens {}: the federation posted a heartbeat within the escape delay",
                    duration_text(state.opens_in())
                ))
                .with_hint("`ferry exit status` shows when"));
            }
            let receipt = wallet.freeze(alloy_address(&vault)).await?;
            eprintln!("froze the vault {vault}: tx {}", receipt.tx_hash);
            froze = Some(receipt.tx_hash);
            state = watcher.escape_state().await?;
        }
        let snapshot = self.claims_of_vault(&state, file).await?;
        let tree = snapshot.tree();
        let chain_id = wallet.chain_id().await?;
        let mut exits = Vec::new();
        let mut lines = Vec::new();
        for (index, claim) in snapshot.of(&account) {
            let claim_state = self.claim_state(&watcher, index, &claim).await?;
            if claim_state != ClaimState::Open {
                lines.push(claim_text(index, &claim, claim_state));
                continue;
            }
            let (public_key, signature) = key
                .sign_exit(chain_id, *vault.as_bytes(), &claim, *recipient.as_bytes())
                .map_err(|e| CliError::other(e.to_string()))?;
            let receipt = wallet
                .exit(
                    alloy_address(&vault),
                    &claim,
                    index,
                    &tree.proof(index),
                    &public_key,
                    alloy_address(&recipient),
                    &signature,
                )
                .await?;
            lines.push(format!(
                "{} — taken to {recipient}: tx {}",
                claim_text(index, &claim, ClaimState::Open),
                receipt.tx_hash
            ));
            let mut taken = claim_json(index, &claim, ClaimState::Exited);
            taken["tx_hash"] = json!(receipt.tx_hash);
            taken["recipient"] = json!(recipient.to_string());
            exits.push(taken);
        }
        if lines.is_empty() {
            lines.push(format!("{account} has no claim at height {}", state.root_height));
        }
        out.emit(
            &json!({ "vault": vault.to_string(), "froze": froze, "root_height": state.root_height, "exits": exits }),
            &lines.join("\n"),
        );
        Ok(())
    }

    async fn exit_export(&self, out: Output, path: &std::path::Path, height: Option<u64>) -> Result<(), CliError> {
        let height = match (height, self.global.ethereum_rpc.is_some()) {
            (Some(height), _) => height,
            (None, true) => self.escape_watcher().await?.0.escape_state().await?.root_height,
            (None, false) => FerryClient::latest_height(&self.client()?).await?,
        };
        let snapshot = self.claims_at(height, None).await?;
        let text = serde_json::to_string_pretty(&snapshot).map_err(|e| CliError::other(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| CliError::other(format!("cannot write {}: {e}", path.display())))?;
        let root = hex::encode(snapshot.tree().root());
        out.emit(
            &json!({ "height": height, "claims": snapshot.claims.len(), "root": root, "file": path.display().to_string() }),
            &format!("wrote the {} claims of height {height} (root {root}) to {}", snapshot.claims.len(), path.display()),
        );
        Ok(())
    }
}
