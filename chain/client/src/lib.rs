//! `ferry-client`: a typed client for a Ferry node over CometBFT's RPC — broadcast, ABCI
//! queries, waiting for inclusion — and [`Wallet`], which signs transactions for one account.
//!
//! Everything that talks to a Ferry node goes through here (CLI, relayer, signer, devnet,
//! benchmarks). This crate must not hold chain rules: encodings come from `ferry-types`.

pub mod wallet;

use std::time::{Duration, Instant};

use ferry_types::query::{
    ACCOUNT_PATH, APP_HASH_PATH, AccountView, AppHashView, BALANCES_PATH, BalancesView, PARAMS_PATH, QUERY_NOT_FOUND,
};
use ferry_types::{Address, Params, TxCode};
use serde::de::DeserializeOwned;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client, HttpClient};

pub use tendermint::Hash as TxHash;

/// How often a wait for a transaction asks the node's index.
const TX_POLL: Duration = Duration::from_millis(100);
/// How long a transaction is still looked for after its signer's committed sequence passed it
/// (the node indexes a block's transactions a moment after committing it).
const INDEXER_GRACE: Duration = Duration::from_secs(2);
/// The least time a found transaction's block is given to be committed, even when the caller's
/// timeout is spent (it is normally a few milliseconds).
const COMMIT_GRACE: Duration = Duration::from_secs(5);
pub use wallet::Wallet;

/// A client error, naming the endpoint and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not a usable CometBFT RPC address.
    #[error("invalid node URL `{url}`: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The RPC call failed (node unreachable, HTTP or JSON-RPC error).
    #[error("RPC `{method}` to {url} failed: {reason}")]
    Rpc {
        /// The node.
        url: String,
        /// The RPC method.
        method: &'static str,
        /// The transport's complaint.
        reason: String,
    },
    /// The ABCI query was refused by the application.
    #[error("query `{path}` refused (code {code}): {log}")]
    Query {
        /// The path.
        path: String,
        /// The answer code.
        code: u32,
        /// The application's reason.
        log: String,
    },
    /// An answer did not decode.
    #[error("answer to `{what}` does not decode: {reason}")]
    Decode {
        /// What was asked.
        what: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// The transaction was admitted to a mempool but another transaction of its account took
    /// its sequence in a committed block (sent through another node, or by another process
    /// holding the same key), so it will never be included. Sign it again at the next sequence.
    #[error("transaction {hash} will never be included: another transaction of {signer} took its sequence {sequence}")]
    Superseded {
        /// The lost transaction.
        hash: TxHash,
        /// Its signer.
        signer: Address,
        /// The sequence it carried.
        sequence: u64,
    },
    /// A transaction was refused.
    #[error("transaction refused: {code:?} ({}): {log}", code.map_or(0, TxCode::value))]
    Refused {
        /// Ferry's code, when the number is one of Ferry's.
        code: Option<TxCode>,
        /// The raw ABCI code.
        raw_code: u32,
        /// The application's reason.
        log: String,
    },
    /// Building or signing failed.
    #[error(transparent)]
    Build(#[from] ferry_types::tx::TxBuildError),
}

/// The answer to a `broadcast_tx_sync`: CheckTx's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The transaction hash.
    pub hash: TxHash,
    /// The raw ABCI code (0 = admitted to the mempool).
    pub code: u32,
    /// The application's log.
    pub log: String,
}

impl CheckOutcome {
    /// Ferry's code, if the number is one of Ferry's.
    pub fn tx_code(&self) -> Option<TxCode> {
        TxCode::from_value(self.code)
    }
}

/// A transaction's result in a committed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The transaction hash.
    pub hash: TxHash,
    /// The block that holds it.
    pub height: u64,
    /// The raw ABCI code of its execution.
    pub code: u32,
    /// The application's log.
    pub log: String,
    /// Its events, as (type, [(key, value)]).
    pub events: Vec<(String, Vec<(String, String)>)>,
}

impl Inclusion {
    /// The value of attribute `key` of the first event of type `kind`.
    pub fn event_attribute(&self, kind: &str, key: &str) -> Option<&str> {
        self.events
            .iter()
            .filter(|(event, _)| event == kind)
            .flat_map(|(_, attributes)| attributes)
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// A typed client for one node's CometBFT RPC endpoint.
#[derive(Clone, Debug)]
pub struct FerryClient {
    rpc: HttpClient,
    url: String,
}

impl FerryClient {
    /// A client for the CometBFT RPC at `url` (for example `http://127.0.0.1:26657`).
    ///
    /// # Errors
    /// When the URL is malformed.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let url_error = |reason: String| ClientError::Url { url: url.to_owned(), reason };
        let parsed = url.parse().map_err(|e: tendermint_rpc::Error| url_error(e.to_string()))?;
        let rpc = HttpClient::builder(parsed)
            .compat_mode(CompatMode::V0_38)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| url_error(e.to_string()))?;
        Ok(FerryClient { rpc, url: url.to_owned() })
    }

    /// The node's RPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn rpc_error(&self, method: &'static str) -> impl Fn(tendermint_rpc::Error) -> ClientError + '_ {
        move |error| ClientError::Rpc { url: self.url.clone(), method, reason: rpc_error_text(&error) }
    }

    /// The underlying RPC client, for calls this crate does not wrap.
    pub fn rpc(&self) -> &HttpClient {
        &self.rpc
    }

    /// The latest height whose state the node's application committed: a query at it is
    /// answered. (`/status` can name a block the application is still committing, and a query at
    /// that height is refused for a moment.)
    ///
    /// # Errors
    /// When the node is unreachable.
    pub async fn latest_height(&self) -> Result<u64, ClientError> {
        let info = self.rpc.abci_info().await.map_err(self.rpc_error("abci_info"))?;
        Ok(info.last_block_height.value())
    }

    /// The chain id the node serves.
    ///
    /// # Errors
    /// When the node is unreachable.
    pub async fn chain_id(&self) -> Result<String, ClientError> {
        let status = self.rpc.status().await.map_err(self.rpc_error("status"))?;
        Ok(status.node_info.network.to_string())
    }

    /// Submits `tx` and returns CheckTx's verdict without waiting for a block.
    ///
    /// # Errors
    /// When the node is unreachable (a refusal is an `Ok` with a non-zero code).
    pub async fn broadcast_sync(&self, tx: Vec<u8>) -> Result<CheckOutcome, ClientError> {
        let response = self.rpc.broadcast_tx_sync(tx).await.map_err(self.rpc_error("broadcast_tx_sync"))?;
        Ok(CheckOutcome { hash: response.hash, code: response.code.value(), log: response.log })
    }

    /// Submits `tx` and waits until it is in a block (or refused by CheckTx, or superseded).
    ///
    /// # Errors
    /// [`ClientError::Refused`] when CheckTx refuses it; [`ClientError::Superseded`] as soon as
    /// another transaction of its signer took its sequence in a committed block (waiting out
    /// `timeout` would then be for nothing); RPC errors and timeouts.
    pub async fn broadcast_and_wait(&self, tx: Vec<u8>, timeout: Duration) -> Result<Inclusion, ClientError> {
        // A transaction the chain could not decode is refused by CheckTx below, with its reason.
        let signed = ferry_types::tx::DecodedTx::decode(&tx, u64::MAX).ok().map(|tx| (tx.signer, tx.sequence));
        let checked = self.broadcast_sync(tx).await?;
        if checked.code != 0 {
            return Err(ClientError::Refused { code: checked.tx_code(), raw_code: checked.code, log: checked.log });
        }
        let started = Instant::now();
        // When the signer's committed sequence passed the transaction's while it was not found.
        let mut passed: Option<Instant> = None;
        loop {
            if let Some(found) = self.find_tx(checked.hash).await {
                return self.committed(found, timeout.saturating_sub(started.elapsed())).await;
            }
            if let Some(since) = passed
                && since.elapsed() > INDEXER_GRACE
                && let Some((signer, sequence)) = signed
            {
                return Err(ClientError::Superseded { hash: checked.hash, signer, sequence });
            }
            if started.elapsed() > timeout {
                return Err(ClientError::Timeout(timeout, format!("transaction {}", checked.hash)));
            }
            if passed.is_none()
                && let Some((signer, sequence)) = signed
                && self.account(&signer, None).await.ok().flatten().is_some_and(|account| account.sequence > sequence)
            {
                // Committed blocks are indexed a moment after they commit: the transaction may
                // be the one that took the sequence. Looked for a little longer.
                passed = Some(Instant::now());
            }
            tokio::time::sleep(TX_POLL).await;
        }
    }

    /// `found` once the node's application has committed its block. The index has a transaction
    /// as soon as its block is executed, a moment before the block's state is committed and
    /// answers queries: returning earlier would let a caller read the state from before it.
    async fn committed(&self, found: Inclusion, timeout: Duration) -> Result<Inclusion, ClientError> {
        self.wait_for_height(found.height, timeout.max(COMMIT_GRACE)).await?;
        Ok(found)
    }

    /// The transaction `hash` if the node's index has it in an executed block.
    async fn find_tx(&self, hash: TxHash) -> Option<Inclusion> {
        let found = self.rpc.tx(hash, false).await.ok()?;
        Some(Inclusion {
            hash,
            height: found.height.value(),
            code: found.tx_result.code.value(),
            log: found.tx_result.log,
            events: flatten_events(&found.tx_result.events),
        })
    }

    /// Submits `tx` through CometBFT's `broadcast_tx_commit` (waits for the block in the node).
    ///
    /// # Errors
    /// [`ClientError::Refused`] when CheckTx refuses it; RPC errors.
    pub async fn broadcast_commit(&self, tx: Vec<u8>) -> Result<Inclusion, ClientError> {
        let response = self.rpc.broadcast_tx_commit(tx).await.map_err(self.rpc_error("broadcast_tx_commit"))?;
        if response.check_tx.code.is_err() {
            return Err(ClientError::Refused {
                code: TxCode::from_value(response.check_tx.code.value()),
                raw_code: response.check_tx.code.value(),
                log: response.check_tx.log,
            });
        }
        Ok(Inclusion {
            hash: response.hash,
            height: response.height.value(),
            code: response.tx_result.code.value(),
            log: response.tx_result.log,
            events: flatten_events(&response.tx_result.events),
        })
    }

    /// Waits until the transaction `hash` is in a committed block, polling the node's index.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after `timeout`.
    pub async fn wait_for_tx(&self, hash: TxHash, timeout: Duration) -> Result<Inclusion, ClientError> {
        let started = Instant::now();
        loop {
            if let Some(found) = self.find_tx(hash).await {
                return self.committed(found, timeout.saturating_sub(started.elapsed())).await;
            }
            if started.elapsed() > timeout {
                return Err(ClientError::Timeout(timeout, format!("transaction {hash}")));
            }
            tokio::time::sleep(TX_POLL).await;
        }
    }

    /// Waits until the node has committed `height`.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after `timeout`; the last RPC error is not reported, since a
    /// node that is still starting refuses connections.
    pub async fn wait_for_height(&self, height: u64, timeout: Duration) -> Result<u64, ClientError> {
        let started = Instant::now();
        loop {
            if let Ok(latest) = self.latest_height().await
                && latest >= height
            {
                return Ok(latest);
            }
            if started.elapsed() > timeout {
                return Err(ClientError::Timeout(timeout, format!("height {height} at {}", self.url)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs an ABCI query and decodes its JSON answer; `Ok(None)` when nothing is stored.
    ///
    /// # Errors
    /// RPC errors, refusals other than "not found", undecodable answers.
    pub async fn query<T: DeserializeOwned>(&self, path: &str, height: Option<u64>) -> Result<Option<T>, ClientError> {
        let height = height.map(tendermint::block::Height::try_from).transpose().map_err(|e| ClientError::Query {
            path: path.to_owned(),
            code: 0,
            log: e.to_string(),
        })?;
        let answer = self
            .rpc
            .abci_query(Some(path.to_owned()), Vec::new(), height, false)
            .await
            .map_err(self.rpc_error("abci_query"))?;
        match answer.code.value() {
            0 => serde_json::from_slice(&answer.value)
                .map(Some)
                .map_err(|e| ClientError::Decode { what: path.to_owned(), reason: e.to_string() }),
            QUERY_NOT_FOUND => Ok(None),
            code => Err(ClientError::Query { path: path.to_owned(), code, log: answer.log }),
        }
    }

    /// The account record of `address`, if it exists.
    ///
    /// # Errors
    /// See [`FerryClient::query`].
    pub async fn account(&self, address: &Address, height: Option<u64>) -> Result<Option<AccountView>, ClientError> {
        self.query(&format!("{ACCOUNT_PATH}{address}"), height).await
    }

    /// The balances of `address` (empty for an unknown account).
    ///
    /// # Errors
    /// See [`FerryClient::query`].
    pub async fn balances(&self, address: &Address, height: Option<u64>) -> Result<BalancesView, ClientError> {
        Ok(self
            .query(&format!("{BALANCES_PATH}{address}"), height)
            .await?
            .unwrap_or(BalancesView { address: *address, balances: Vec::new() }))
    }

    /// Every Ethereum exit claim committed at `height`, page by page (the node must still serve
    /// that height).
    ///
    /// # Errors
    /// RPC errors, and `NotFound`-like `Ok` pages missing (reported as a query error).
    pub async fn exit_claims(&self, height: u64) -> Result<ferry_types::exit_tree::ClaimsSnapshot, ClientError> {
        use ferry_types::query::{EXIT_CLAIMS_PATH, ExitClaimPage};
        let mut claims = Vec::new();
        let mut from = 0;
        loop {
            let path = format!("{EXIT_CLAIMS_PATH}{from}");
            let page: ExitClaimPage = self.query(&path, Some(height)).await?.ok_or_else(|| ClientError::Query {
                path: path.clone(),
                code: ferry_types::query::QUERY_NOT_FOUND,
                log: format!("no exit claims at height {height}"),
            })?;
            claims.extend(page.claims);
            match page.next {
                Some(next) => from = next,
                None => return Ok(ferry_types::exit_tree::ClaimsSnapshot { height, claims }),
            }
        }
    }

    /// Bitcoin exit disbursal `id`, assembled with its members' signatures into transactions
    /// anyone can broadcast once its lock height passed ([`ferry_types::release::exit::SignedDisbursal`]):
    /// planned again from its record and claims for the peg of its epoch's federation at the
    /// height it was signed (the current one or, for a migration's, the next one), so a node
    /// that changed the record cannot make it pay elsewhere without the witnesses failing.
    ///
    /// # Errors
    /// RPC errors; a query error when `id` is no disbursal, is not signed yet, or does not assemble.
    pub async fn signed_disbursal(&self, id: u64) -> Result<ferry_types::release::exit::SignedDisbursal, ClientError> {
        use ferry_types::query::{
            BatchRelease, BatchStatus, BtcDisbursalView, EXIT_BTC_DISBURSAL_PATH, FEDERATION_PATH,
        };
        let path = format!("{EXIT_BTC_DISBURSAL_PATH}{id}");
        let refused =
            |log: String| ClientError::Query { path: path.clone(), code: ferry_types::query::QUERY_NOT_FOUND, log };
        let view: BtcDisbursalView =
            self.query(&path, None).await?.ok_or_else(|| refused(format!("no exit disbursal {id}")))?;
        let BatchRelease::BitcoinExit(exit) = &view.batch.release else {
            return Err(refused(format!("batch {id} is no exit disbursal")));
        };
        if view.batch.status != BatchStatus::Signed {
            return Err(refused(format!("exit disbursal {id} is not signed yet")));
        }
        // The federation of its epoch, as it stood when it was signed: the current one, or
        // during a hand-over (a migration's disbursal) the next one.
        let mut federation: ferry_types::genesis::Federation = self
            .query(FEDERATION_PATH, view.batch.signed_height)
            .await?
            .ok_or_else(|| refused("no federation".to_owned()))?;
        if federation.epoch != exit.epoch {
            federation = self
                .query(ferry_types::query::federation::NEXT_FEDERATION_PATH, view.batch.signed_height)
                .await?
                .filter(|next: &ferry_types::genesis::Federation| next.epoch == exit.epoch)
                .ok_or_else(|| refused(format!("no federation of epoch {} when it was signed", exit.epoch)))?;
        }
        let peg = federation
            .bitcoin
            .as_ref()
            .map(ferry_types::peg::Peg::new)
            .transpose()
            .map_err(|e| refused(format!("the federation's peg: {e}")))?
            .ok_or_else(|| refused("the federation has no Bitcoin peg".to_owned()))?;
        let mut signatures = std::collections::BTreeMap::new();
        for (member, ders) in &view.batch.signatures {
            let Some(index) = federation.member_index(member) else { continue };
            let decoded: Result<Vec<Vec<u8>>, _> = ders.iter().map(hex::decode).collect();
            signatures.insert(index, decoded.map_err(|e| refused(format!("a signature of {member}: {e}")))?);
        }
        ferry_types::release::exit::assemble_recorded(
            id,
            exit.snapshot_height,
            &exit.basis,
            &view.claims,
            &signatures,
            &peg,
        )
        .map_err(|e| refused(format!("exit disbursal {id} does not assemble: {e}")))
    }

    /// The chain parameters.
    ///
    /// # Errors
    /// See [`FerryClient::query`].
    pub async fn params(&self) -> Result<Params, ClientError> {
        self.query(PARAMS_PATH, None).await?.ok_or_else(|| ClientError::Query {
            path: PARAMS_PATH.to_owned(),
            code: QUERY_NOT_FOUND,
            log: "no parameters stored".to_owned(),
        })
    }

    /// The app hash this node computed after `height`.
    ///
    /// # Errors
    /// See [`FerryClient::query`].
    pub async fn app_hash(&self, height: u64) -> Result<AppHashView, ClientError> {
        self.query(APP_HASH_PATH, Some(height)).await?.ok_or_else(|| ClientError::Query {
            path: APP_HASH_PATH.to_owned(),
            code: QUERY_NOT_FOUND,
            log: format!("no app hash at height {height}"),
        })
    }
}

fn flatten_events(events: &[tendermint::abci::Event]) -> Vec<(String, Vec<(String, String)>)> {
    events
        .iter()
        .map(|event| {
            let attributes = event
                .attributes
                .iter()
                .map(|a| (a.key_str().unwrap_or_default().to_owned(), a.value_str().unwrap_or_default().to_owned()))
                .collect();
            (event.kind.clone(), attributes)
        })
        .collect()
}

/// What a CometBFT RPC error says: for an error the node answered, its JSON-RPC message and
/// data (where CometBFT writes "mempool is full", "tx already exists in cache", …), not only the
/// headline "response error"; otherwise the error's own description.
fn rpc_error_text(error: &tendermint_rpc::Error) -> String {
    match error.detail() {
        tendermint_rpc::error::ErrorDetail::Response(response) => response.source.to_string(),
        detail => detail.to_string(),
    }
}
