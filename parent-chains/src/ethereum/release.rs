//! Applying the federation-signed vault actions — a release batch, a listing change, a rotation —
//! and finding where the vault applied them. I/O only: the relayer's delivery core decides when
//! to call what.
//!
//! - [`Wallet::apply`] (and [`Wallet::release`], [`Wallet::set_listing`], [`Wallet::rotate`])
//!   sends an action and waits for its receipt; [`Wallet::simulate`] runs it as an `eth_call`.
//! - [`Wallet::sign_release`] builds `vault.release(batch, signature)`, lets the node simulate it
//!   (`eth_estimateGas`, then [`Wallet::simulate_release`] with the gas limit that will be signed
//!   — a refusal comes back as the vault's custom error, see
//!   [`vault_error`](super::vault::vault_error)) and signs it without sending, so the caller can
//!   record the transaction's hash before it leaves the process; [`Wallet::send_signed`] sends it.
//! - [`EthereumWatcher::released`] reads `vault.released(nonce)`; [`EthereumWatcher::released_log`]
//!   finds the vault's `Released(nonce)` log, whoever sent the transaction that emitted it — the
//!   transaction every member attests; [`EthereumWatcher::transaction_state`] tells whether a
//!   transaction sent earlier is still pending.

use std::future::IntoFuture;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{Ethereum, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address as EthAddress, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::SolCall;
use ferry_types::release::eth::{EthBatch, EthListing, EthRotation};

use super::error::{EthereumError, LogLocation};
use super::rpc::{decode_word, hash_text, undecodable};
use super::vault::{FerryVault, RELEASED_TOPIC, VaultAction, release_batch};
use super::wallet::{Receipt, Wallet};
use super::watcher::EthereumWatcher;

/// Gas added on top of the node's estimate, in percent: the state a release runs against can
/// change between estimation and inclusion (a recipient's code, a token's storage).
const GAS_MARGIN_PERCENT: u64 = 20;

/// A signed transaction, not yet sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// Its hash, `0x` + 64 lowercase hex.
    pub tx_hash: String,
    /// The EIP-2718 encoding `eth_sendRawTransaction` takes.
    pub raw: Vec<u8>,
    /// The gas limit signed.
    pub gas_limit: u64,
}

/// Where the node has a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionState {
    /// The node does not know it (never sent, or dropped from its pool).
    Unknown,
    /// In the node's pool, not mined.
    Pending,
    /// Mined in block `block_number`.
    Mined {
        /// The block.
        block_number: u64,
        /// Whether it succeeded (a reverted transaction paid nothing).
        succeeded: bool,
    },
}

/// The vault's `Released(nonce, …)` log: the transaction that paid a batch and its block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleasedLog {
    /// The transaction that emitted it, `0x` + 64 lowercase hex.
    pub tx_hash: String,
    /// The block's number.
    pub block_number: u64,
    /// The block's hash, `0x` + 64 lowercase hex.
    pub block_hash: String,
}

impl Wallet {
    /// `vault.release(batch, signature)`: delivers a withdrawal batch the federation signed.
    /// `signature` is the combined signature in the EIP-2537 G2 encoding (256 bytes,
    /// `ferry_types::release::bls::eip2537_g2`); other lengths are sent as given (the vault
    /// refuses them).
    ///
    /// # Errors
    /// Transport, node and timeout errors; a refused release fails at gas estimation with the
    /// vault's custom error in its revert data ([`vault_error`](super::vault::vault_error)):
    /// `WrongEpoch`, `AlreadyReleased`, `EmptyBatch`, `MalformedSignature`, `BadSignature`.
    pub async fn release(
        &self,
        vault: EthAddress,
        batch: &EthBatch,
        signature: &[u8],
    ) -> Result<Receipt, EthereumError> {
        self.apply(vault, VaultAction::Release(batch), signature).await
    }

    /// Sends `action` (a release or a listing change) with the federation's `signature` and
    /// waits for its receipt.
    ///
    /// # Errors
    /// As [`release`](Self::release) and [`set_listing`](Self::set_listing).
    pub async fn apply(
        &self,
        vault: EthAddress,
        action: VaultAction<'_>,
        signature: &[u8],
    ) -> Result<Receipt, EthereumError> {
        self.send(action.function(), self.action_request(vault, action, signature)).await
    }

    /// Runs `vault.release(batch, signature)` as an `eth_call` from this wallet's address at the
    /// latest block, with `gas_limit` if given; nothing is sent. A pre-flight check: `Ok` when
    /// the release would succeed now.
    ///
    /// # Errors
    /// As [`release`](Self::release); with too low a `gas_limit`, the vault's
    /// `InsufficientGasForPayment`.
    pub async fn simulate_release(
        &self,
        vault: EthAddress,
        batch: &EthBatch,
        signature: &[u8],
        gas_limit: Option<u64>,
    ) -> Result<(), EthereumError> {
        self.simulate(vault, VaultAction::Release(batch), signature, gas_limit).await
    }

    /// As [`simulate_release`](Self::simulate_release), for either vault action.
    ///
    /// # Errors
    /// As [`apply`](Self::apply), with the vault's refusal in the revert data.
    pub async fn simulate(
        &self,
        vault: EthAddress,
        action: VaultAction<'_>,
        signature: &[u8],
        gas_limit: Option<u64>,
    ) -> Result<(), EthereumError> {
        let mut request = self.action_request(vault, action, signature);
        if let Some(gas) = gas_limit {
            request = request.with_gas_limit(gas);
        }
        self.calls.run("eth_call", self.provider.call(request).into_future()).await?;
        Ok(())
    }

    /// The transaction from this wallet that applies `action` with `signature` on `vault` (to be
    /// sent, simulated or signed).
    fn action_request(&self, vault: EthAddress, action: VaultAction<'_>, signature: &[u8]) -> TransactionRequest {
        TransactionRequest::default().with_to(vault).with_input(action.calldata(signature)).with_from(self.address())
    }

    /// `vault.released(nonce)`: whether the batch with this nonce was paid.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or an answer that is not one ABI word.
    pub async fn released(&self, vault: EthAddress, nonce: u64) -> Result<bool, EthereumError> {
        let answer = self.view(vault, FerryVault::releasedCall { nonce }).await?;
        Ok(!decode_word("eth_call released", &answer)?.is_zero())
    }

    /// `vault.setListing(listing, signature)`: applies a listing change the federation signed.
    ///
    /// # Errors
    /// Transport, node and timeout errors; a refused change fails at gas estimation with the
    /// vault's custom error ([`vault_error`](super::vault::vault_error)): `WrongEpoch`,
    /// `AlreadyReleased`, `ZeroToken`, `MalformedSignature`, `BadSignature`.
    pub async fn set_listing(
        &self,
        vault: EthAddress,
        listing: &EthListing,
        signature: &[u8],
    ) -> Result<Receipt, EthereumError> {
        self.apply(vault, VaultAction::Listing(listing), signature).await
    }

    /// `vault.rotate(rotation, signature)`: hands the vault to the next federation key, with the
    /// current federation's signature of [`EthRotation::payload`].
    ///
    /// # Errors
    /// Transport, node and timeout errors; a refused rotation fails at gas estimation with the
    /// vault's custom error ([`vault_error`](super::vault::vault_error)): `WrongEpoch`,
    /// `WrongNextEpoch`, `MalformedSignature`, `BadSignature`, `FederationKeyLength`,
    /// `FederationKeyNotInG1`, `FederationKeyIsInfinity`; a key that is not hex is sent as empty
    /// (the vault refuses it).
    pub async fn rotate(
        &self,
        vault: EthAddress,
        rotation: &EthRotation,
        signature: &[u8],
    ) -> Result<Receipt, EthereumError> {
        self.apply(vault, VaultAction::Rotation(rotation), signature).await
    }

    /// `vault.releaseMessage(batch)`: the bytes the vault verifies the signature over, as the
    /// vault itself encodes them on its chain (to compare with [`EthBatch::payload`]).
    ///
    /// # Errors
    /// Transport, node and timeout errors, or an answer that does not decode as `bytes`.
    pub async fn release_message(&self, vault: EthAddress, batch: &EthBatch) -> Result<Vec<u8>, EthereumError> {
        let call = FerryVault::releaseMessageCall { batch: release_batch(batch) };
        let answer = self.view(vault, call).await?;
        let message = FerryVault::releaseMessageCall::abi_decode_returns(&answer)
            .map_err(|error| undecodable("eth_call releaseMessage", &error))?;
        Ok(message.to_vec())
    }

    /// Builds, simulates and signs `vault.release(batch, signature)` from this wallet, without
    /// sending it. The nonce is the account's next one counting pending transactions; the gas
    /// limit is the node's estimate plus [`GAS_MARGIN_PERCENT`]; fees are the node's EIP-1559
    /// estimate.
    ///
    /// # Errors
    /// Transport, node and timeout errors; a release the vault would refuse fails at the
    /// simulation with its custom error in the revert data
    /// ([`vault_error`](super::vault::vault_error)): `AlreadyReleased` when another relayer
    /// delivered it first, `WrongEpoch`, `BadSignature`, …; [`EthereumError::Sign`] when signing
    /// fails.
    pub async fn sign_release(
        &self,
        vault: EthAddress,
        batch: &EthBatch,
        signature: &[u8],
    ) -> Result<SignedTransaction, EthereumError> {
        self.sign_action(vault, VaultAction::Release(batch), signature).await
    }

    /// As [`sign_release`](Self::sign_release), for either vault action (a release or a listing
    /// change): estimated, simulated with the gas limit that will be signed, signed, not sent.
    ///
    /// # Errors
    /// As [`sign_release`](Self::sign_release); a listing refused by the vault comes back with
    /// its custom error (`AlreadyReleased`, `WrongEpoch`, `BadSignature`, …).
    pub async fn sign_action(
        &self,
        vault: EthAddress,
        action: VaultAction<'_>,
        signature: &[u8],
    ) -> Result<SignedTransaction, EthereumError> {
        let request = self.action_request(vault, action, signature);
        let estimate =
            self.calls.run("eth_estimateGas", self.provider.estimate_gas(request.clone()).into_future()).await?;
        let gas_limit = estimate.saturating_add(estimate.saturating_mul(GAS_MARGIN_PERCENT) / 100);
        // The call about to be signed, with its gas limit, against the latest state.
        self.simulate(vault, action, signature, Some(gas_limit)).await?;
        self.sign(action.function(), request.with_gas_limit(gas_limit)).await
    }

    /// Hands a transaction signed by [`sign_release`](Self::sign_release) to the node.
    ///
    /// # Errors
    /// Transport, node and timeout errors (the node refusing it: a replaced nonce, too low a
    /// fee); [`EthereumError::UnexpectedAnswer`] when the node names another transaction hash.
    pub async fn send_signed(&self, signed: &SignedTransaction) -> Result<(), EthereumError> {
        let method = "eth_sendRawTransaction";
        let pending = self.calls.run(method, self.provider.send_raw_transaction(&signed.raw)).await?;
        let answered = hash_text(*pending.tx_hash());
        if answered != signed.tx_hash {
            return Err(EthereumError::UnexpectedAnswer {
                method: method.to_owned(),
                detail: format!("sent transaction {} but the node answered {answered}", signed.tx_hash),
            });
        }
        Ok(())
    }

    /// Fills in the nonce (counting pending transactions), the chain id and the node's EIP-1559
    /// fees, and signs `request`, whose gas limit is set.
    async fn sign(&self, what: &str, request: TransactionRequest) -> Result<SignedTransaction, EthereumError> {
        let gas_limit = request
            .gas
            .ok_or_else(|| EthereumError::Sign { what: what.to_owned(), reason: "no gas limit set".to_owned() })?;
        let nonce_call = self.provider.get_transaction_count(self.address()).pending().into_future();
        let nonce = self.calls.run("eth_getTransactionCount", nonce_call).await?;
        let chain_id = self.calls.run("eth_chainId", self.provider.get_chain_id().into_future()).await?;
        let fees = self.calls.run("eth_feeHistory", self.provider.estimate_eip1559_fees()).await?;
        let request = request
            .with_nonce(nonce)
            .with_chain_id(chain_id)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope = <TransactionRequest as NetworkTransactionBuilder<Ethereum>>::build(request, &self.signer)
            .await
            .map_err(|error| EthereumError::Sign { what: what.to_owned(), reason: error.to_string() })?;
        Ok(SignedTransaction { tx_hash: hash_text(*envelope.tx_hash()), raw: envelope.encoded_2718(), gas_limit })
    }
}

impl EthereumWatcher {
    /// `vault.released(nonce)`: whether the vault paid the batch with this nonce, in the node's
    /// latest state.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or an answer that is not one ABI word.
    pub async fn released(&self, nonce: u64) -> Result<bool, EthereumError> {
        let call = FerryVault::releasedCall { nonce };
        let request = TransactionRequest::default().with_to(self.vault()).with_input(call.abi_encode());
        let answer = self.calls.run("eth_call", self.provider.call(request).into_future()).await?;
        Ok(!decode_word("eth_call released", &answer)?.is_zero())
    }

    /// The vault's `Released(nonce)` log in the best chain, looked for from block `to` down to
    /// block `from`, at most `max_range` blocks per `eth_getLogs` (the newest range first: a
    /// release is usually recent). `None` when no block in `from..=to` holds it.
    ///
    /// # Errors
    /// Transport, node and timeout errors; [`EthereumError::UnexpectedAnswer`] for a log without
    /// its transaction hash, block number or block hash.
    pub async fn released_log(
        &self,
        nonce: u64,
        from: u64,
        to: u64,
        max_range: u64,
    ) -> Result<Option<ReleasedLog>, EthereumError> {
        self.applied_log(RELEASED_TOPIC, nonce, from, to, max_range).await
    }

    /// Whether the vault applied `action`: `released(nonce)` for a release, a listing change or a
    /// heartbeat, `epoch() >= new_epoch` for a rotation — in the node's latest state.
    ///
    /// # Errors
    /// As [`released`](Self::released).
    pub async fn applied(&self, action: VaultAction<'_>) -> Result<bool, EthereumError> {
        match action {
            VaultAction::Release(_) | VaultAction::Listing(_) | VaultAction::Heartbeat(_) => {
                self.released(action.applied_key()).await
            }
            VaultAction::Rotation(rotation) => {
                let request = TransactionRequest::default()
                    .with_to(self.vault())
                    .with_input(FerryVault::epochCall {}.abi_encode());
                let answer = self.calls.run("eth_call", self.provider.call(request).into_future()).await?;
                let epoch = decode_word("eth_call epoch", &answer)?;
                Ok(epoch >= U256::from(rotation.new_epoch))
            }
        }
    }

    /// As [`released_log`](Self::released_log) for the event `topic0` whose first indexed topic
    /// is `nonce` ([`VaultAction::applied_key`]): `Released` for a release, `ListingSet` for a
    /// listing change, `KeyRotated` (the new epoch) for a rotation ([`VaultAction::applied_topic`]).
    ///
    /// # Errors
    /// As [`released_log`](Self::released_log).
    pub async fn applied_log(
        &self,
        topic0: B256,
        nonce: u64,
        from: u64,
        to: u64,
        max_range: u64,
    ) -> Result<Option<ReleasedLog>, EthereumError> {
        let method = "eth_getLogs";
        let topic = B256::from(U256::from(nonce));
        let mut high = to;
        while high >= from {
            let low = high.saturating_sub(max_range.max(1) - 1).max(from);
            let filter = Filter::new()
                .address(self.vault())
                .event_signature(topic0)
                .topic1(topic)
                .from_block(low)
                .to_block(high);
            let logs = self.calls.run(method, self.provider.get_logs(&filter)).await?;
            if let Some(log) = logs.iter().find(|log| !log.removed && log.address() == self.vault()) {
                let missing = |field: &str| EthereumError::UnexpectedAnswer {
                    method: method.to_owned(),
                    detail: format!("{}: no {field}", LogLocation::of(log)),
                };
                return Ok(Some(ReleasedLog {
                    tx_hash: hash_text(log.transaction_hash.ok_or_else(|| missing("transactionHash"))?),
                    block_number: log.block_number.ok_or_else(|| missing("blockNumber"))?,
                    block_hash: hash_text(log.block_hash.ok_or_else(|| missing("blockHash"))?),
                }));
            }
            if low == 0 || low == from {
                break;
            }
            high = low - 1;
        }
        Ok(None)
    }

    /// Where the node has transaction `tx_hash` (`0x` + 64 hex).
    ///
    /// # Errors
    /// Transport, node and timeout errors; [`EthereumError::UnexpectedAnswer`] for a hash that is
    /// not 32 bytes of hex.
    pub async fn transaction_state(&self, tx_hash: &str) -> Result<TransactionState, EthereumError> {
        let hash: B256 = tx_hash.parse().map_err(|_| EthereumError::UnexpectedAnswer {
            method: "eth_getTransactionByHash".to_owned(),
            detail: format!("`{tx_hash}` is not a transaction hash"),
        })?;
        let call = self.provider.get_transaction_by_hash(hash).into_future();
        let Some(transaction) = self.calls.run("eth_getTransactionByHash", call).await? else {
            return Ok(TransactionState::Unknown);
        };
        let Some(block_number) = transaction.block_number else {
            return Ok(TransactionState::Pending);
        };
        let call = self.provider.get_transaction_receipt(hash).into_future();
        match self.calls.run("eth_getTransactionReceipt", call).await? {
            Some(receipt) => Ok(TransactionState::Mined { block_number, succeeded: receipt.status() }),
            // Mined a moment ago and reorganised out since, or the node is still indexing it.
            None => Ok(TransactionState::Pending),
        }
    }
}
