//! `Wallet`: sends signed transactions from one key — vault and test-token deployment, deposits
//! (for the devnet, the end-to-end tests and the CLI), claims of what the vault owes — and reads
//! the vault's views (`owed`, `listed`, its federation key). Applying a federation-signed vault
//! action (`release`, `setListing`, `rotate`), sent at once or signed first so the relayer can
//! record its hash, is in `release.rs`.
//!
//! Nonces are read from the node for every transaction (never cached), so the wallet stays
//! correct when a reorganisation drops its transactions.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address as EthAddress, B256, Bytes, FixedBytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;

use super::error::EthereumError;
use super::rpc::{CallPolicy, decode_word, hash_text, parse_url, undecodable};
use super::vault::{BLSHarness, FerryVault, RefusingRecipient, TestToken};

/// The vault's `escapeDelay` at deployment: seconds without a heartbeat after which anyone may
/// freeze it and holders exit (14 days, the anchors' Ethereum figure; see docs/exits.md).
pub const VAULT_ESCAPE_DELAY_SECS: u64 = 1_209_600;

/// Default interval between receipt polls.
pub const DEFAULT_RECEIPT_POLL: Duration = Duration::from_millis(500);
/// Default wait for a transaction to be mined.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// One log of a mined transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptLog {
    /// The contract that emitted it.
    pub address: EthAddress,
    /// Its index in the block.
    pub log_index: u64,
    /// Its topics.
    pub topics: Vec<B256>,
    /// Its data.
    pub data: Vec<u8>,
}

/// A mined, successful transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Transaction hash, `0x` + 64 lowercase hex (the `tx_id` of deposit facts).
    pub tx_hash: String,
    /// Block it was mined in.
    pub block_number: u64,
    /// Hash of that block, `0x` + 64 lowercase hex.
    pub block_hash: String,
    /// Gas it used.
    pub gas_used: u64,
    /// The contract it created, if any.
    pub contract_address: Option<EthAddress>,
    /// Its logs, in block order.
    pub logs: Vec<ReceiptLog>,
}

impl Receipt {
    /// The logs `contract` emitted.
    pub fn logs_from(&self, contract: EthAddress) -> impl Iterator<Item = &ReceiptLog> {
        self.logs.iter().filter(move |log| log.address == contract)
    }
}

/// A signing client of one Ethereum node.
#[derive(Clone)]
pub struct Wallet {
    pub(super) provider: DynProvider,
    /// Signs transactions built outside the provider's fillers (releases: signed first, their
    /// hash recorded, then sent).
    pub(super) signer: EthereumWallet,
    address: EthAddress,
    pub(super) calls: CallPolicy,
    receipt_poll: Duration,
    receipt_timeout: Duration,
}

impl Wallet {
    /// A wallet sending from `private_key` (hex, with or without `0x`) through the HTTP(S)
    /// JSON-RPC at `rpc_url`. Gas, nonce and chain id are filled from the node.
    ///
    /// # Errors
    /// [`EthereumError::BadUrl`], or [`EthereumError::BadPrivateKey`] (without the key).
    pub fn connect(rpc_url: &str, private_key: &str) -> Result<Self, EthereumError> {
        let url = parse_url(rpc_url)?;
        let signer: PrivateKeySigner = private_key.parse().map_err(|_| EthereumError::BadPrivateKey)?;
        let address = signer.address();
        let signer = EthereumWallet::from(signer);
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(signer.clone())
            .connect_http(url)
            .erased();
        Ok(Wallet {
            provider,
            signer,
            address,
            calls: CallPolicy::default(),
            receipt_poll: DEFAULT_RECEIPT_POLL,
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
        })
    }

    /// Polls for receipts every `poll`, giving up after `timeout`.
    #[must_use]
    pub fn with_receipt_wait(mut self, poll: Duration, timeout: Duration) -> Self {
        self.receipt_poll = poll;
        self.receipt_timeout = timeout;
        self
    }

    /// Reports every RPC call to `observer` as (method, latency, succeeded).
    #[must_use]
    pub fn with_observer(mut self, observer: impl Fn(&str, Duration, bool) + Send + Sync + 'static) -> Self {
        self.calls.observer = Some(std::sync::Arc::new(observer));
        self
    }

    /// The sending address.
    pub fn address(&self) -> EthAddress {
        self.address
    }

    /// Deploys `FerryVault(federation_key, epoch, genesis_tokens, VAULT_ESCAPE_DELAY_SECS)` from
    /// the committed artifact; the receipt's `contract_address` is the vault. `federation_key` is the federation's
    /// aggregate BLS public key in the EIP-2537 G1 encoding
    /// (`ferry_types::release::bls::eip2537_g1`); `genesis_tokens` are listed from the start.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or a reverted or unmined deployment (a key that is not
    /// a G1 point, or the point at infinity, or a genesis token without code, is refused by the
    /// constructor).
    pub async fn deploy_vault(
        &self,
        federation_key: &[u8; 128],
        epoch: u64,
        genesis_tokens: &[EthAddress],
    ) -> Result<Receipt, EthereumError> {
        let key = Bytes::copy_from_slice(federation_key);
        let request =
            FerryVault::deploy_builder(&self.provider, key, epoch, genesis_tokens.to_vec(), VAULT_ESCAPE_DELAY_SECS)
                .into_transaction_request();
        self.send("deploy FerryVault", request).await
    }

    /// Deploys the devnet's mintable `TestToken(name, symbol, decimals)`.
    ///
    /// # Errors
    /// As [`deploy_vault`](Self::deploy_vault).
    pub async fn deploy_test_token(&self, name: &str, symbol: &str, decimals: u8) -> Result<Receipt, EthereumError> {
        let request = TestToken::deploy_builder(&self.provider, name.to_owned(), symbol.to_owned(), decimals)
            .into_transaction_request();
        self.send("deploy TestToken", request).await
    }

    /// `vault.deposit{value: wei}(recipient)`.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or a reverted deposit (the node refuses to estimate
    /// gas for one, e.g. `ZeroAmount` for zero wei).
    pub async fn deposit_eth(
        &self,
        vault: EthAddress,
        recipient: &ferry_types::Address,
        wei: U256,
    ) -> Result<Receipt, EthereumError> {
        let request = FerryVault::new(vault, &self.provider)
            .deposit(FixedBytes(*recipient.as_bytes()))
            .value(wei)
            .into_transaction_request();
        self.send("FerryVault.deposit", request).await
    }

    /// `vault.depositToken(token, amount, recipient)`; the vault must be approved for `amount`.
    ///
    /// # Errors
    /// As [`deposit_eth`](Self::deposit_eth).
    pub async fn deposit_token(
        &self,
        vault: EthAddress,
        token: EthAddress,
        amount: U256,
        recipient: &ferry_types::Address,
    ) -> Result<Receipt, EthereumError> {
        let request = FerryVault::new(vault, &self.provider)
            .depositToken(token, amount, FixedBytes(*recipient.as_bytes()))
            .into_transaction_request();
        self.send("FerryVault.depositToken", request).await
    }

    /// `token.approve(spender, amount)`.
    ///
    /// # Errors
    /// As [`deposit_eth`](Self::deposit_eth).
    pub async fn approve(
        &self,
        token: EthAddress,
        spender: EthAddress,
        amount: U256,
    ) -> Result<Receipt, EthereumError> {
        let request = TestToken::new(token, &self.provider).approve(spender, amount).into_transaction_request();
        self.send("ERC20.approve", request).await
    }

    /// `TestToken.mint(to, amount)` (devnet tokens only).
    ///
    /// # Errors
    /// As [`deposit_eth`](Self::deposit_eth).
    pub async fn mint_test_token(
        &self,
        token: EthAddress,
        to: EthAddress,
        amount: U256,
    ) -> Result<Receipt, EthereumError> {
        let request = TestToken::new(token, &self.provider).mint(to, amount).into_transaction_request();
        self.send("TestToken.mint", request).await
    }

    /// `token.balanceOf(account)`.
    ///
    /// # Errors
    /// Transport, node and timeout errors.
    pub async fn token_balance(&self, token: EthAddress, account: EthAddress) -> Result<U256, EthereumError> {
        let request = TestToken::new(token, &self.provider).balanceOf(account).into_transaction_request();
        let answer = self.calls.run("eth_call", self.provider.call(request).into_future()).await?;
        decode_word("eth_call balanceOf", &answer)
    }

    /// The ETH balance of `account`, in wei.
    ///
    /// # Errors
    /// Transport, node and timeout errors.
    pub async fn balance(&self, account: EthAddress) -> Result<U256, EthereumError> {
        self.calls.run("eth_getBalance", self.provider.get_balance(account).into_future()).await
    }

    /// `vault.epoch()` and `vault.federationKey()`: the epoch and key the vault trusts now.
    ///
    /// # Errors
    /// As [`released`](Self::released).
    pub async fn federation(&self, vault: EthAddress) -> Result<(u64, Vec<u8>), EthereumError> {
        let answer = self.view(vault, FerryVault::epochCall {}).await?;
        let epoch =
            FerryVault::epochCall::abi_decode_returns(&answer).map_err(|e| undecodable("eth_call epoch", &e))?;
        let answer = self.view(vault, FerryVault::federationKeyCall {}).await?;
        let key = FerryVault::federationKeyCall::abi_decode_returns(&answer)
            .map_err(|e| undecodable("eth_call federationKey", &e))?;
        Ok((epoch, key.to_vec()))
    }

    /// `vault.listed(token)`: whether the vault accepts deposits of `token`.
    ///
    /// # Errors
    /// As [`released`](Self::released).
    pub async fn listed(&self, vault: EthAddress, token: EthAddress) -> Result<bool, EthereumError> {
        let answer = self.view(vault, FerryVault::listedCall { token }).await?;
        Ok(!decode_word("eth_call listed", &answer)?.is_zero())
    }

    /// `vault.owed(token, recipient)`: what a failed release payment left for `recipient` to claim.
    ///
    /// # Errors
    /// As [`released`](Self::released).
    pub async fn owed(
        &self,
        vault: EthAddress,
        token: EthAddress,
        recipient: EthAddress,
    ) -> Result<U256, EthereumError> {
        let answer = self.view(vault, FerryVault::owedCall { token, recipient }).await?;
        decode_word("eth_call owed", &answer)
    }

    /// `vault.claim(token)` from this wallet's address.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or the vault's refusal (`NothingOwed`, a failed payment).
    pub async fn claim(&self, vault: EthAddress, token: EthAddress) -> Result<Receipt, EthereumError> {
        let request = FerryVault::new(vault, &self.provider).claim(token).into_transaction_request();
        self.send("FerryVault.claim", request).await
    }

    /// Deploys the test-only `BLSHarness`.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or a reverted or unmined deployment.
    pub async fn deploy_bls_harness(&self) -> Result<Receipt, EthereumError> {
        let request = BLSHarness::deploy_builder(&self.provider).into_transaction_request();
        self.send("deploy BLSHarness", request).await
    }

    /// `harness.hashToG2(message, dst)`: the point, EIP-2537 G2 (256 bytes), computed with the
    /// node's precompiles.
    ///
    /// # Errors
    /// Transport, node and timeout errors (a node without EIP-2537 reverts with
    /// `PrecompileFailed`), or an answer that does not decode as `bytes`.
    pub async fn harness_hash_to_g2(
        &self,
        harness: EthAddress,
        message: &[u8],
        dst: &[u8],
    ) -> Result<Vec<u8>, EthereumError> {
        let call =
            BLSHarness::hashToG2Call { message: Bytes::copy_from_slice(message), dst: Bytes::copy_from_slice(dst) };
        let answer = self.view(harness, call).await?;
        let point = BLSHarness::hashToG2Call::abi_decode_returns(&answer)
            .map_err(|error| undecodable("eth_call hashToG2", &error))?;
        Ok(point.to_vec())
    }

    /// Deploys the test-only `RefusingRecipient` (refusing ETH until told otherwise).
    ///
    /// # Errors
    /// As [`deploy_bls_harness`](Self::deploy_bls_harness).
    pub async fn deploy_refusing_recipient(&self) -> Result<Receipt, EthereumError> {
        let request = RefusingRecipient::deploy_builder(&self.provider).into_transaction_request();
        self.send("deploy RefusingRecipient", request).await
    }

    /// `recipient.setAccepting(accept)` on a `RefusingRecipient`.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or a revert.
    pub async fn set_accepting(&self, recipient: EthAddress, accept: bool) -> Result<Receipt, EthereumError> {
        let request = RefusingRecipient::new(recipient, &self.provider).setAccepting(accept).into_transaction_request();
        self.send("RefusingRecipient.setAccepting", request).await
    }

    /// `recipient.claimFrom(vault, token)`: the `RefusingRecipient` claims what the vault owes it.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or the vault's refusal.
    pub async fn claim_as_recipient(
        &self,
        recipient: EthAddress,
        vault: EthAddress,
        token: EthAddress,
    ) -> Result<Receipt, EthereumError> {
        let request =
            RefusingRecipient::new(recipient, &self.provider).claimFrom(vault, token).into_transaction_request();
        self.send("RefusingRecipient.claimFrom", request).await
    }

    /// `eth_call` of `call` on `contract` at the latest block; the raw answer.
    pub(super) async fn view<C: SolCall>(&self, contract: EthAddress, call: C) -> Result<Bytes, EthereumError> {
        let request = TransactionRequest::default().with_to(contract).with_input(call.abi_encode());
        self.calls.run("eth_call", self.provider.call(request).into_future()).await
    }

    /// Signs and sends `request` (`what` names it in errors), then waits for its receipt.
    pub(super) async fn send(&self, what: &str, request: TransactionRequest) -> Result<Receipt, EthereumError> {
        let request = request.with_from(self.address);
        let pending = self.calls.run("eth_sendRawTransaction", self.provider.send_transaction(request)).await?;
        let tx_hash = *pending.tx_hash();
        let receipt = self.wait_for_receipt(what, tx_hash).await?;
        let block_number = receipt.block_number.ok_or_else(|| unexpected_receipt(tx_hash, "blockNumber"))?;
        if !receipt.status() {
            return Err(EthereumError::Reverted { what: what.to_owned(), tx_hash: hash_text(tx_hash), block_number });
        }
        let block_hash = receipt.block_hash.ok_or_else(|| unexpected_receipt(tx_hash, "blockHash"))?;
        let mut logs = Vec::new();
        for log in receipt.inner.logs() {
            let log_index = log.log_index.ok_or_else(|| unexpected_receipt(tx_hash, "logIndex"))?;
            logs.push(ReceiptLog {
                address: log.address(),
                log_index,
                topics: log.topics().to_vec(),
                data: log.data().data.to_vec(),
            });
        }
        Ok(Receipt {
            tx_hash: hash_text(tx_hash),
            block_number,
            block_hash: hash_text(block_hash),
            gas_used: receipt.gas_used,
            contract_address: receipt.contract_address,
            logs,
        })
    }

    async fn wait_for_receipt(&self, what: &str, tx_hash: B256) -> Result<TransactionReceipt, EthereumError> {
        let started = Instant::now();
        loop {
            let call = self.provider.get_transaction_receipt(tx_hash).into_future();
            if let Some(receipt) = self.calls.run("eth_getTransactionReceipt", call).await? {
                return Ok(receipt);
            }
            if started.elapsed() >= self.receipt_timeout {
                return Err(EthereumError::NotMined {
                    what: what.to_owned(),
                    tx_hash: hash_text(tx_hash),
                    after: self.receipt_timeout,
                });
            }
            tokio::time::sleep(self.receipt_poll).await;
        }
    }
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signer is left out: it holds the private key.
        f.debug_struct("Wallet")
            .field("address", &self.address)
            .field("calls", &self.calls)
            .field("receipt_poll", &self.receipt_poll)
            .field("receipt_timeout", &self.receipt_timeout)
            .finish_non_exhaustive()
    }
}

fn unexpected_receipt(tx_hash: B256, missing: &str) -> EthereumError {
    EthereumError::UnexpectedAnswer {
        method: "eth_getTransactionReceipt".to_owned(),
        detail: format!("the receipt of {} has no {missing}", hash_text(tx_hash)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Anvil's well-known dev account 0.
    const DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn key_gives_its_address_and_never_shows_in_debug_or_errors() -> Result<(), EthereumError> {
        let wallet = Wallet::connect("http://127.0.0.1:8545", &format!("0x{DEV_KEY}"))?;
        assert_eq!(wallet.address(), alloy::primitives::address!("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"));
        assert!(!format!("{wallet:?}").contains(&DEV_KEY[..16]));
        let bad_key = format!("{}zz", &DEV_KEY[..62]);
        let error = Wallet::connect("http://127.0.0.1:8545", &bad_key).err();
        assert!(matches!(error, Some(EthereumError::BadPrivateKey)));
        assert!(!error.map(|error| error.to_string()).unwrap_or_default().contains(&DEV_KEY[..16]));
        Ok(())
    }
}
