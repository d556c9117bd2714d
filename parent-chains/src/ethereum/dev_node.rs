//! `DevNode`: the controls a development node (anvil) offers on top of Ethereum's JSON-RPC —
//! mining on demand, snapshots and reorganisations — for the devnet and the end-to-end tests.
//! Never pointed at a real network.
//!
//! Reorganisations: anvil 1.7's `anvil_reorg(depth, [(tx, offset)…])` replaces the last `depth`
//! blocks with `depth` new ones on the same parent, holding only the transactions listed (each
//! in block `offset` of the new branch, counted from the first replaced block). Transactions of
//! the replaced blocks that are not listed are gone: no receipt, not back in the pool. Every
//! replaced height gets a new block hash. `evm_snapshot`/`evm_revert` roll the chain back to a
//! snapshot, after which newly mined blocks take the same heights with different hashes.

use std::future::IntoFuture;
use std::time::Duration;

use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::{Provider, RootProvider};

use super::error::EthereumError;
use super::rpc::{CallPolicy, hash_text, parse_url};

/// An `evm_snapshot` id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotId(U256);

/// A development node's controls.
#[derive(Clone, Debug)]
pub struct DevNode {
    provider: RootProvider,
    calls: CallPolicy,
}

impl DevNode {
    /// The development node at `rpc_url` (HTTP).
    ///
    /// # Errors
    /// [`EthereumError::BadUrl`].
    pub fn connect(rpc_url: &str) -> Result<Self, EthereumError> {
        Ok(DevNode { provider: RootProvider::new_http(parse_url(rpc_url)?), calls: CallPolicy::default() })
    }

    /// Bounds each RPC call by `timeout`.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.calls.timeout = timeout;
        self
    }

    /// The node's chain id (also a readiness probe).
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn chain_id(&self) -> Result<u64, EthereumError> {
        self.calls.run("eth_chainId", self.provider.get_chain_id().into_future()).await
    }

    /// The latest block number.
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn block_number(&self) -> Result<u64, EthereumError> {
        self.calls.run("eth_blockNumber", self.provider.get_block_number().into_future()).await
    }

    /// Whether `account` holds contract code at the latest block (`eth_getCode`).
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn has_code(&self, account: alloy::primitives::Address) -> Result<bool, EthereumError> {
        let code = self.calls.run("eth_getCode", self.provider.get_code_at(account).into_future()).await?;
        Ok(!code.is_empty())
    }

    /// Mines `blocks` empty blocks (`anvil_mine`).
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn mine(&self, blocks: u64) -> Result<(), EthereumError> {
        let method = "anvil_mine";
        let call = self.provider.raw_request::<_, serde_json::Value>(method.into(), (U256::from(blocks),));
        self.calls.run(method, call).await.map(drop)
    }

    /// Moves the node's clock `seconds` forward (`evm_increaseTime`), for the next block mined.
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn increase_time(&self, seconds: u64) -> Result<(), EthereumError> {
        let method = "evm_increaseTime";
        let call = self.provider.raw_request::<_, serde_json::Value>(method.into(), (U256::from(seconds),));
        self.calls.run(method, call).await.map(drop)
    }

    /// Sets `account`'s ether balance to `wei` (`anvil_setBalance`): the devnet's faucet.
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn set_balance(&self, account: alloy::primitives::Address, wei: U256) -> Result<(), EthereumError> {
        let method = "anvil_setBalance";
        let call = self.provider.raw_request::<_, serde_json::Value>(method.into(), (account, wei));
        self.calls.run(method, call).await.map(drop)
    }

    /// Records the chain state (`evm_snapshot`).
    ///
    /// # Errors
    /// Transport or node errors, and timeouts.
    pub async fn snapshot(&self) -> Result<SnapshotId, EthereumError> {
        let method = "evm_snapshot";
        let call = self.provider.raw_request::<_, U256>(method.into(), ());
        self.calls.run(method, call).await.map(SnapshotId)
    }

    /// Rolls the chain back to `snapshot` (`evm_revert`); blocks mined since are discarded.
    /// A snapshot can be reverted to once.
    ///
    /// # Errors
    /// Transport or node errors and timeouts; [`EthereumError::UnexpectedAnswer`] when the node
    /// does not know the snapshot.
    pub async fn revert(&self, snapshot: SnapshotId) -> Result<(), EthereumError> {
        let method = "evm_revert";
        let call = self.provider.raw_request::<_, bool>(method.into(), (snapshot.0,));
        if self.calls.run(method, call).await? {
            Ok(())
        } else {
            Err(EthereumError::UnexpectedAnswer {
                method: method.to_owned(),
                detail: format!("the node refused to revert to snapshot {:#x}", snapshot.0),
            })
        }
    }

    /// Replaces the last `depth` blocks with `depth` new blocks holding only the transactions
    /// in `reinclude`, each given as (hash of a transaction of the replaced blocks, offset of its
    /// new block in the branch: 0 is the first replaced height). Everything else those blocks
    /// held is dropped (`anvil_reorg`).
    ///
    /// # Errors
    /// Transport or node errors and timeouts; [`EthereumError::UnexpectedAnswer`] for a
    /// transaction the node does not know.
    pub async fn reorg(&self, depth: u64, reinclude: &[(&str, u64)]) -> Result<(), EthereumError> {
        let mut pairs: Vec<(Bytes, u64)> = Vec::with_capacity(reinclude.len());
        for (tx_hash, offset) in reinclude {
            pairs.push((self.raw_transaction(tx_hash).await?, *offset));
        }
        let method = "anvil_reorg";
        let call = self.provider.raw_request::<_, serde_json::Value>(method.into(), (depth, pairs));
        self.calls.run(method, call).await.map(drop)
    }

    /// The signed transaction `tx_hash` (`0x` + 64 hex) as raw bytes.
    async fn raw_transaction(&self, tx_hash: &str) -> Result<Bytes, EthereumError> {
        let method = "eth_getRawTransactionByHash";
        let hash: B256 = tx_hash.parse().map_err(|_| EthereumError::UnexpectedAnswer {
            method: method.to_owned(),
            detail: format!("`{tx_hash}` is not a transaction hash"),
        })?;
        let call = self.provider.raw_request::<_, Option<Bytes>>(method.into(), (hash,));
        self.calls.run(method, call).await?.ok_or_else(|| EthereumError::UnexpectedAnswer {
            method: method.to_owned(),
            detail: format!("the node does not know transaction {}", hash_text(hash)),
        })
    }
}
