//! `EthereumWatcher`: reads the chain tip, block hashes and the vault's deposits over JSON-RPC
//! (and, in `release.rs`, where the vault applied a release). It decides nothing: the relayer's
//! tracker judges confirmations and reorgs from the heights and hashes handed to it, and the CLI
//! shows them.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::Address as EthAddress;
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::Filter;

use super::deposit_log::{observation_from_log, plain_transfers};
use super::error::{EthereumError, LogLocation};
use super::rpc::{CallPolicy, decode_word, hash_text, parse_url};
use super::vault::{DEPOSITED_TOPIC, TRANSFER_TOPIC, TestToken};
use crate::observation::Observation;

/// A read-only view of one Ethereum node and one vault.
#[derive(Clone, Debug)]
pub struct EthereumWatcher {
    pub(super) provider: RootProvider,
    vault: EthAddress,
    pub(super) calls: CallPolicy,
}

impl EthereumWatcher {
    /// A watcher of `vault` through the HTTP(S) JSON-RPC at `rpc_url`. Connects lazily: the
    /// first call is the first request.
    ///
    /// # Errors
    /// [`EthereumError::BadUrl`] for a URL that is not HTTP(S).
    pub fn connect(rpc_url: &str, vault: EthAddress) -> Result<Self, EthereumError> {
        let url = parse_url(rpc_url)?;
        Ok(EthereumWatcher { provider: RootProvider::new_http(url), vault, calls: CallPolicy::default() })
    }

    /// Reports every RPC call to `observer` as (method, latency, succeeded).
    #[must_use]
    pub fn with_observer(mut self, observer: impl Fn(&str, Duration, bool) + Send + Sync + 'static) -> Self {
        self.calls.observer = Some(Arc::new(observer));
        self
    }

    /// Bounds each RPC call by `timeout` (default [`DEFAULT_REQUEST_TIMEOUT`](super::DEFAULT_REQUEST_TIMEOUT)).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.calls.timeout = timeout;
        self
    }

    /// The vault watched.
    pub fn vault(&self) -> EthAddress {
        self.vault
    }

    /// The node's chain id (to check the configuration names the right network).
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn chain_id(&self) -> Result<u64, EthereumError> {
        self.calls.run("eth_chainId", self.provider.get_chain_id().into_future()).await
    }

    /// The number of the node's latest block.
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn block_number(&self) -> Result<u64, EthereumError> {
        self.calls.run("eth_blockNumber", self.provider.get_block_number().into_future()).await
    }

    /// What the vault held of `asset` (`wei`, or an `erc20/…` token) at block `number`, by this
    /// node: its ether balance, or the token's `balanceOf(vault)`. For reserves snapshots.
    ///
    /// # Errors
    /// Transport or node errors, timeouts; an asset that is not Ethereum's.
    pub async fn holdings_at(
        &self,
        asset: &ferry_types::Denom,
        number: u64,
    ) -> Result<alloy::primitives::U256, EthereumError> {
        if *asset == ferry_types::Denom::wei() {
            let call = self.provider.get_balance(self.vault).number(number).into_future();
            return self.calls.run("eth_getBalance", call).await;
        }
        let Some(token) = ferry_types::msg::erc20_token(asset) else {
            return Err(EthereumError::UnexpectedAnswer {
                method: "holdings".to_owned(),
                detail: format!("`{asset}` is not an Ethereum asset"),
            });
        };
        let token = EthAddress::from(*token.as_bytes());
        let request = TestToken::new(token, &self.provider).balanceOf(self.vault).into_transaction_request();
        let answer = self.calls.run("eth_call", self.provider.call(request).number(number).into_future()).await?;
        decode_word("eth_call balanceOf", &answer)
    }

    /// The number of the node's `finalized` block, or `None` while it names none.
    ///
    /// # Errors
    /// Transport or node errors, timeouts.
    pub async fn finalized_block_number(&self) -> Result<Option<u64>, EthereumError> {
        let call = self.provider.get_block_by_number(BlockNumberOrTag::Finalized).into_future();
        Ok(self.calls.run("eth_getBlockByNumber", call).await?.map(|block| block.header.number))
    }

    /// The hash (`0x` + 64 lowercase hex) of the canonical block at `number`, or `None` above the
    /// tip. Re-asked before attesting: a different answer than when the deposit was seen means
    /// its block was reorganised out.
    ///
    /// # Errors
    /// Transport or node errors, timeouts, and a block whose number is not `number`.
    pub async fn block_hash(&self, number: u64) -> Result<Option<String>, EthereumError> {
        let method = "eth_getBlockByNumber";
        let call = self.provider.get_block_by_number(BlockNumberOrTag::Number(number)).into_future();
        let Some(block) = self.calls.run(method, call).await? else {
            return Ok(None);
        };
        if block.header.number != number {
            return Err(EthereumError::UnexpectedAnswer {
                method: method.to_owned(),
                detail: format!("asked for block {number}, got block {}", block.header.number),
            });
        }
        Ok(Some(hash_text(block.header.hash)))
    }

    /// The number of the block holding transaction `tx_hash` (`0x` + 64 hex) in the node's best
    /// chain, or `None` when the node holds it in no block (`eth_getTransactionReceipt`).
    ///
    /// # Errors
    /// A malformed hash; transport or node errors, timeouts.
    pub async fn transaction_block(&self, tx_hash: &str) -> Result<Option<u64>, EthereumError> {
        let method = "eth_getTransactionReceipt";
        let hash: alloy::primitives::B256 = tx_hash.parse().map_err(|_| EthereumError::UnexpectedAnswer {
            method: method.to_owned(),
            detail: format!("`{tx_hash}` is not a transaction hash"),
        })?;
        let receipt = self.calls.run(method, self.provider.get_transaction_receipt(hash).into_future()).await?;
        Ok(receipt.and_then(|receipt| receipt.block_number))
    }

    /// The vault's deposits in blocks `from_block..=to_block`, each with the number and hash of
    /// the block it was seen in, ordered by (block, log index). One `eth_getLogs` filtered on
    /// the vault's address and the `Deposited` topic: keep ranges within what the node allows
    /// (public providers often cap at a few thousand blocks).
    ///
    /// Logs the node marks `removed` are skipped (they are not in the best chain).
    ///
    /// # Errors
    /// [`EthereumError::BadRange`] when `from_block > to_block`; transport or node errors and
    /// timeouts; [`EthereumError::DepositLog`] naming the transaction and log index of a log
    /// that is not a valid deposit; [`EthereumError::UnexpectedAnswer`] for a log outside the
    /// range asked for.
    pub async fn deposits_in(&self, from_block: u64, to_block: u64) -> Result<Vec<Observation>, EthereumError> {
        if from_block > to_block {
            return Err(EthereumError::BadRange { from: from_block, to: to_block });
        }
        let filter = Filter::new()
            .address(self.vault)
            .event_signature(DEPOSITED_TOPIC)
            .from_block(from_block)
            .to_block(to_block);
        let method = "eth_getLogs";
        let mut logs = self.calls.run(method, self.provider.get_logs(&filter)).await?;
        logs.retain(|log| {
            if log.removed {
                tracing::warn!(log = %LogLocation::of(log), "eth_getLogs returned a removed log; skipped");
            }
            !log.removed
        });
        // Each log's place among its transaction's vault logs (a transaction's logs all lie in
        // its block, so in this range): what names the deposit, whatever the block-wide index.
        logs.sort_by_key(|log| (log.block_number, log.log_index));
        let mut positions: std::collections::BTreeMap<Option<alloy::primitives::B256>, u64> = Default::default();
        let mut observations = Vec::with_capacity(logs.len());
        for log in &logs {
            let position = positions.entry(log.transaction_hash).or_default();
            let observation = observation_from_log(log, self.vault, *position)?;
            *position += 1;
            if !(from_block..=to_block).contains(&observation.block_height) {
                return Err(EthereumError::UnexpectedAnswer {
                    method: method.to_owned(),
                    detail: format!(
                        "{} is outside the blocks asked for ({from_block}..={to_block})",
                        LogLocation::of(log)
                    ),
                });
            }
            observations.push(observation);
        }
        // ERC-20 tokens that reached the vault by a plain transfer: unattributed payments.
        let transfers = Filter::new()
            .event_signature(TRANSFER_TOPIC)
            .topic2(self.vault.into_word())
            .from_block(from_block)
            .to_block(to_block);
        let transfers = self.calls.run(method, self.provider.get_logs(&transfers)).await?;
        let unattributed: Vec<Observation> = plain_transfers(&transfers, &observations, self.vault)
            .into_iter()
            .filter(|observation| (from_block..=to_block).contains(&observation.block_height))
            .collect();
        observations.extend(unattributed);
        Ok(observations)
    }
}
