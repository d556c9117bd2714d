//! Bitcoin: a JSON-RPC 1.0 client (HTTP, basic auth) for the part of the Bitcoin node RPC that btcd
//! and Bitcoin Core share, which is all Ferry uses: block count and hashes, raw blocks
//! (`getblock <hash> 0`, decoded with the `bitcoin` crate), raw transactions and broadcast, and
//! the whereabouts of a release (`gettxout`, `getrawtransaction <txid> 1`).
//!
//! Parameters are sent in the form both nodes accept: integer verbosity (btcd v0.26 refuses
//! `false` for `getblock`'s verbosity: "parameter #2 'verbosity' must be type int (got bool)"),
//! and only the positional parameters both define. Every answer that names an object by hash
//! is checked against the hash asked for, so a confused node cannot hand the relayer's scanner
//! the wrong block.
//!
//! Errors are typed ([`RpcError`]) and name the method and URL; the password is never part of
//! an error, a log line or `Debug` output. Each call's latency can be observed
//! ([`BitcoinRpc::with_observer`]) to feed `ferry_relayer_rpc_duration_seconds{chain="btc"}`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Block, BlockHash, Transaction, Txid};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::RpcObserver;

/// How long one call may take, unless [`BitcoinRpc::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of an unexpected HTTP body an error quotes.
const QUOTED_BODY_CHARS: usize = 200;

/// Why a call failed. Every variant names the method and the URL it was sent to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The URL given to [`BitcoinRpc::new`] cannot be parsed.
    #[error("bitcoin RPC URL `{url}` is invalid: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("bitcoin RPC client for {url} cannot be built: {reason}")]
    Client {
        /// The node's URL.
        url: String,
        /// The HTTP library's explanation.
        reason: String,
    },
    /// No answer: connection refused or reset, timeout, unreadable body.
    #[error("bitcoin RPC `{method}` to {url}: transport error: {reason}")]
    Transport {
        /// The RPC method.
        method: String,
        /// The node's URL.
        url: String,
        /// The HTTP library's explanation, with its causes.
        reason: String,
        /// Whether the call timed out.
        timeout: bool,
    },
    /// An HTTP error status without a JSON-RPC error in the body (e.g. 401 for bad credentials).
    #[error("bitcoin RPC `{method}` to {url}: HTTP {status}: {body}")]
    Http {
        /// The RPC method.
        method: String,
        /// The node's URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The beginning of the body.
        body: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("bitcoin RPC `{method}` to {url}: error {code}: {message}")]
    Rpc {
        /// The RPC method.
        method: String,
        /// The node's URL.
        url: String,
        /// The JSON-RPC error code (e.g. -5 not found, -8/-1 height out of range, -22/-25/-26
        /// for a transaction refused by `sendrawtransaction`).
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The node answered, but not with what the method promises.
    #[error("bitcoin RPC `{method}` to {url}: cannot decode the answer: {reason}")]
    Decode {
        /// The RPC method.
        method: String,
        /// The node's URL.
        url: String,
        /// What was wrong, quoting the offending value.
        reason: String,
    },
}

/// The JSON-RPC code both nodes answer for an unknown transaction or block
/// (`RPC_INVALID_ADDRESS_OR_KEY`).
pub const RPC_NOT_FOUND: i64 = -5;

/// Bitcoin Core's code for `sendrawtransaction` of a transaction already in a block
/// (`RPC_VERIFY_ALREADY_IN_CHAIN`).
pub const RPC_ALREADY_IN_CHAIN: i64 = -27;

/// An unspent output, as `gettxout` reports it (the fields used).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TxOut {
    /// Blocks confirming the transaction that created it; 0 while it waits in the mempool.
    pub confirmations: u64,
}

/// A transaction as `getrawtransaction <txid> 1` reports it (the fields used).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TransactionStatus {
    /// The block holding it (absent while it waits in the mempool).
    #[serde(default)]
    pub blockhash: Option<String>,
    /// Blocks confirming it (absent or 0 while it waits in the mempool).
    #[serde(default)]
    pub confirmations: Option<u64>,
}

impl RpcError {
    /// Whether a `sendrawtransaction` refusal says the node already has the transaction, in its
    /// mempool or in a block (btcd: "already have transaction", "transaction already exists";
    /// Bitcoin Core: code -27, "txn-already-in-mempool", "txn-already-known"). Delivering it
    /// again is then a success.
    pub fn is_already_known(&self) -> bool {
        match self {
            RpcError::Rpc { code, message, .. } => *code == RPC_ALREADY_IN_CHAIN || message.contains("already"),
            _ => false,
        }
    }

    /// The JSON-RPC error code, when the node answered with one.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            RpcError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the node could not be reached or did not answer in time (worth retrying).
    pub fn is_transport(&self) -> bool {
        matches!(self, RpcError::Transport { .. })
    }
}

/// A Bitcoin node's JSON-RPC endpoint. Cheap to clone (clones share the connection pool and
/// the observer).
#[derive(Clone)]
pub struct BitcoinRpc {
    http: reqwest::Client,
    url: String,
    user: String,
    password: String,
    timeout: Duration,
    observer: Option<RpcObserver>,
    next_id: Arc<AtomicU64>,
}

impl fmt::Debug for BitcoinRpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitcoinRpc")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// A JSON-RPC 1.0 answer: `{"result": …, "error": …, "id": …}`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Value,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: i64,
    message: String,
}

impl BitcoinRpc {
    /// A client for the node at `url` (`http://127.0.0.1:18334`), authenticating with HTTP
    /// basic auth. Nothing is sent until the first call.
    ///
    /// # Errors
    /// [`RpcError::InvalidUrl`] when `url` is not an absolute `http`/`https` URL, or carries
    /// credentials (they belong in `user` and `password`, never in a URL that gets logged);
    /// [`RpcError::Client`] when the HTTP client cannot be built.
    pub fn new(url: &str, user: &str, password: &str) -> Result<BitcoinRpc, RpcError> {
        let invalid = |reason: &str| RpcError::InvalidUrl { url: url.to_owned(), reason: reason.to_owned() };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid("credentials go in the RPC user and password file, not the URL"));
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| RpcError::Client { url: url.to_owned(), reason: error_chain(&e) })?;
        Ok(BitcoinRpc {
            http,
            url: url.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            observer: None,
            next_id: Arc::new(AtomicU64::new(1)),
        })
    }

    /// The same client with another per-call timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> BitcoinRpc {
        self.timeout = timeout;
        self
    }

    /// The same client, reporting every call to `observer` (method, latency, success). The
    /// Ethereum clients take the same type, so one observer can serve both chains' clients.
    #[must_use]
    pub fn with_observer(mut self, observer: RpcObserver) -> BitcoinRpc {
        self.observer = Some(observer);
        self
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with positional `params` and decodes its `result` as `T` (use
    /// `serde_json::Value` to take it as it comes, `()` for methods answering `null`).
    ///
    /// # Errors
    /// [`RpcError::Transport`], [`RpcError::Http`], [`RpcError::Rpc`] or [`RpcError::Decode`].
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: &[Value]) -> Result<T, RpcError> {
        let started = Instant::now();
        let outcome = self.exchange(method, params).await;
        let elapsed = started.elapsed();
        match &outcome {
            Ok(_) => tracing::trace!(method, elapsed_ms = elapsed.as_millis(), "bitcoin rpc call"),
            Err(error) => tracing::debug!(method, elapsed_ms = elapsed.as_millis(), %error, "bitcoin rpc call failed"),
        }
        if let Some(observer) = &self.observer {
            observer(method, elapsed, outcome.is_ok());
        }
        outcome
    }

    async fn exchange<T: DeserializeOwned>(&self, method: &str, params: &[Value]) -> Result<T, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = json!({ "jsonrpc": "1.0", "id": id, "method": method, "params": params });
        let transport = |error: reqwest::Error| RpcError::Transport {
            method: method.to_owned(),
            url: self.url.clone(),
            timeout: error.is_timeout(),
            reason: error_chain(&error),
        };
        let response = self
            .http
            .post(&self.url)
            .basic_auth(&self.user, Some(&self.password))
            .timeout(self.timeout)
            .json(&request)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        parse_response(method, &self.url, status, &body)
    }

    /// `getblockcount`: the height of the node's best chain.
    ///
    /// # Errors
    /// As [`BitcoinRpc::call`].
    pub async fn get_block_count(&self) -> Result<u64, RpcError> {
        self.call("getblockcount", &[]).await
    }

    /// `getblockhash <height>`: the hash of the best chain's block at `height`.
    ///
    /// # Errors
    /// As [`BitcoinRpc::call`]; a height above the tip is an [`RpcError::Rpc`] (btcd: code -1
    /// "Block number out of range"; Bitcoin Core: code -8 "Block height out of range").
    pub async fn get_block_hash(&self, height: u64) -> Result<BlockHash, RpcError> {
        let text: String = self.call("getblockhash", &[json!(height)]).await?;
        self.parse_hash("getblockhash", &text)
    }

    /// `getbestblockhash`: the hash of the best chain's tip.
    ///
    /// # Errors
    /// As [`BitcoinRpc::call`].
    pub async fn get_best_block_hash(&self) -> Result<BlockHash, RpcError> {
        let text: String = self.call("getbestblockhash", &[]).await?;
        self.parse_hash("getbestblockhash", &text)
    }

    /// `getblock <hash> 0`: the block, raw, decoded. Blocks off the best chain (e.g. one a reorg
    /// replaced) are returned too while the node keeps them.
    ///
    /// # Errors
    /// As [`BitcoinRpc::call`] (an unknown hash is [`RpcError::Rpc`] code -5); an
    /// [`RpcError::Decode`] when the hex is not a block, or is a block with another hash or a
    /// merkle root that does not match its transactions.
    pub async fn get_block(&self, hash: &BlockHash) -> Result<Block, RpcError> {
        const METHOD: &str = "getblock";
        let hex: String = self.call(METHOD, &[json!(hash.to_string()), json!(0)]).await?;
        decode_block(METHOD, &self.url, &hex, hash)
    }

    /// `sendrawtransaction <hex>`: hands `tx` to the node's mempool and returns its txid.
    ///
    /// # Errors
    /// As [`BitcoinRpc::call`]; a refused transaction is an [`RpcError::Rpc`] carrying the
    /// node's reason (codes and wording differ between btcd and Bitcoin Core).
    pub async fn send_raw_transaction(&self, tx: &Transaction) -> Result<Txid, RpcError> {
        const METHOD: &str = "sendrawtransaction";
        let text: String = self.call(METHOD, &[json!(serialize_hex(tx))]).await?;
        Txid::from_str(&text).map_err(|e| self.decode_error(METHOD, format!("txid `{text}`: {e}")))
    }

    /// `getrawtransaction <txid> 0`: the transaction, raw, decoded.
    ///
    /// Without a transaction index the node only knows unconfirmed transactions: btcd answers
    /// from its mempool and otherwise fails with code -5 "The transaction index must be enabled
    /// to query the blockchain (specify --txindex)"; Bitcoin Core likewise needs `-txindex` for
    /// confirmed transactions. Deposits are read from blocks, not through this call.
    ///
    /// # Errors
    /// As [`BitcoinRpc::call`]; an [`RpcError::Decode`] when the answer is not the transaction
    /// asked for.
    pub async fn get_raw_transaction(&self, txid: &Txid) -> Result<Transaction, RpcError> {
        const METHOD: &str = "getrawtransaction";
        let hex: String = self.call(METHOD, &[json!(txid.to_string()), json!(0)]).await?;
        let tx: Transaction = deserialize_hex(&hex)
            .map_err(|e| self.decode_error(METHOD, format!("not a transaction ({e}): `{}`", quote(&hex))))?;
        let got = tx.compute_txid();
        if got != *txid {
            return Err(self.decode_error(METHOD, format!("asked for transaction {txid}, got {got}")));
        }
        Ok(tx)
    }

    /// `gettxout <txid> <vout> <include_mempool>`: the output if it is unspent — in the best
    /// chain, or (with `include_mempool`) created by a transaction waiting in the mempool —
    /// with its confirmations (0 while pending); `None` when it is spent or never existed.
    ///
    /// btcd still reports an output that only a pending transaction spends as unspent; Bitcoin
    /// Core, asked with `include_mempool`, does not.
    ///
    /// # Errors
    /// As [`BitcoinRpc::call`].
    pub async fn get_tx_out(&self, txid: &Txid, vout: u32, include_mempool: bool) -> Result<Option<TxOut>, RpcError> {
        self.call("gettxout", &[json!(txid.to_string()), json!(vout), json!(include_mempool)]).await
    }

    /// `getrawtransaction <txid> 1`: where the node knows the transaction from — its mempool
    /// (no block), or a block when it keeps a transaction index (`--txindex`); `None` when the
    /// node does not know it (code -5).
    ///
    /// # Errors
    /// As [`BitcoinRpc::call`], except for "not found".
    pub async fn get_transaction_status(&self, txid: &Txid) -> Result<Option<TransactionStatus>, RpcError> {
        match self.call("getrawtransaction", &[json!(txid.to_string()), json!(1)]).await {
            Ok(status) => Ok(Some(status)),
            Err(error) if error.rpc_code() == Some(RPC_NOT_FOUND) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn parse_hash(&self, method: &str, text: &str) -> Result<BlockHash, RpcError> {
        BlockHash::from_str(text).map_err(|e| self.decode_error(method, format!("block hash `{}`: {e}", quote(text))))
    }

    fn decode_error(&self, method: &str, reason: String) -> RpcError {
        RpcError::Decode { method: method.to_owned(), url: self.url.clone(), reason }
    }
}

/// Turns an HTTP answer into the call's result. JSON-RPC errors come with status 200 from btcd
/// and with 404/500 from Bitcoin Core, so the body is read whatever the status.
fn parse_response<T: DeserializeOwned>(method: &str, url: &str, status: u16, body: &[u8]) -> Result<T, RpcError> {
    let decode = |reason: String| RpcError::Decode { method: method.to_owned(), url: url.to_owned(), reason };
    let success = (200..300).contains(&status);
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(_) if !success => {
            return Err(RpcError::Http {
                method: method.to_owned(),
                url: url.to_owned(),
                status,
                body: quote(&String::from_utf8_lossy(body)),
            });
        }
        Err(e) => {
            return Err(decode(format!("not a JSON-RPC answer ({e}): `{}`", quote(&String::from_utf8_lossy(body)))));
        }
    };
    if !envelope.error.is_null() {
        let error: ErrorObject = serde_json::from_value(envelope.error.clone())
            .map_err(|e| decode(format!("malformed error object {} ({e})", quote(&envelope.error.to_string()))))?;
        return Err(RpcError::Rpc {
            method: method.to_owned(),
            url: url.to_owned(),
            code: error.code,
            message: error.message,
        });
    }
    if !success {
        return Err(RpcError::Http {
            method: method.to_owned(),
            url: url.to_owned(),
            status,
            body: quote(&String::from_utf8_lossy(body)),
        });
    }
    serde_json::from_value(envelope.result.clone())
        .map_err(|e| decode(format!("unexpected result {} ({e})", quote(&envelope.result.to_string()))))
}

/// Decodes a raw block and checks it is the block asked for, with the transactions its header
/// commits to.
fn decode_block(method: &str, url: &str, hex: &str, expected: &BlockHash) -> Result<Block, RpcError> {
    let decode = |reason: String| RpcError::Decode { method: method.to_owned(), url: url.to_owned(), reason };
    let block: Block = deserialize_hex(hex).map_err(|e| decode(format!("not a block ({e}): `{}`", quote(hex))))?;
    let got = block.block_hash();
    if got != *expected {
        return Err(decode(format!("asked for block {expected}, got {got}")));
    }
    if !block.check_merkle_root() {
        return Err(decode(format!("block {got}: the transactions do not match the header's merkle root")));
    }
    Ok(block)
}

/// The first characters of `text`, marked when cut.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTED_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or(text)),
        None => text.to_owned(),
    }
}

/// An error and its causes, `outer: inner: …` (reqwest's own message alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bitcoin::hashes::Hash;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const URL: &str = "http://127.0.0.1:18334";

    /// `getblock <regtest genesis> 0` as btcd v0.26.2 answered it.
    const REGTEST_GENESIS_ANSWER: &str = r#"{"jsonrpc":"1.0","result":"0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f20020000000101000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000","error":null,"id":1}"#;
    const REGTEST_GENESIS_HASH: &str = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";

    #[test]
    fn raw_block_answer_decodes_to_the_block_asked_for() -> TestResult {
        let hex: String = parse_response("getblock", URL, 200, REGTEST_GENESIS_ANSWER.as_bytes())?;
        let hash = BlockHash::from_str(REGTEST_GENESIS_HASH)?;
        let block = decode_block("getblock", URL, &hex, &hash)?;
        assert_eq!(block.block_hash(), hash);
        assert_eq!(block.txdata.len(), 1);

        let other = BlockHash::all_zeros();
        let error = decode_block("getblock", URL, &hex, &other).err().ok_or("wrong block accepted")?;
        assert!(matches!(&error, RpcError::Decode { reason, .. } if reason.contains(REGTEST_GENESIS_HASH)), "{error}");

        let error = decode_block("getblock", URL, "00ff", &hash).err().ok_or("garbage accepted")?;
        assert!(matches!(&error, RpcError::Decode { reason, .. } if reason.contains("00ff")), "{error}");
        Ok(())
    }

    #[test]
    fn rpc_errors_carry_code_message_method_and_url() {
        // btcd answers errors with HTTP 200 …
        let btcd =
            br#"{"jsonrpc":"1.0","result":null,"error":{"code":-1,"message":"Block number out of range"},"id":1}"#;
        let error = parse_response::<String>("getblockhash", URL, 200, btcd).err();
        assert_eq!(
            error,
            Some(RpcError::Rpc {
                method: "getblockhash".to_owned(),
                url: URL.to_owned(),
                code: -1,
                message: "Block number out of range".to_owned()
            })
        );
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("getblockhash") && text.contains(URL) && text.contains("-1"), "{text}");

        // … Bitcoin Core with HTTP 500 (404 for an unknown method).
        let core = br#"{"result":null,"error":{"code":-8,"message":"Block height out of range"},"id":1}"#;
        let error = parse_response::<String>("getblockhash", URL, 500, core).err();
        assert_eq!(error.and_then(|e| e.rpc_code()), Some(-8));
    }

    #[test]
    fn duplicate_broadcasts_are_recognised_from_btcd_and_core_answers() {
        let refused = |code: i64, message: &str| RpcError::Rpc {
            method: "sendrawtransaction".to_owned(),
            url: URL.to_owned(),
            code,
            message: message.to_owned(),
        };
        for known in [
            refused(-25, "TX rejected: already have transaction 3f4a"),
            refused(-25, "TX rejected: transaction already exists"),
            refused(-26, "txn-already-in-mempool"),
            refused(-26, "txn-already-known"),
            refused(-27, "Transaction outputs already in utxo set"),
        ] {
            assert!(known.is_already_known(), "{known}");
        }
        for other in [
            refused(
                -26,
                "non-mandatory-script-verify-flag (Signature must be zero for failed CHECK(MULTI)SIG operation)",
            ),
            refused(-25, "bad-txns-inputs-missingorspent"),
        ] {
            assert!(!other.is_already_known(), "{other}");
        }
    }

    #[test]
    fn gettxout_and_verbose_transaction_answers_decode() -> TestResult {
        let unspent = br#"{"result":{"bestblock":"00ab","confirmations":3,"value":0.001,"scriptPubKey":{"hex":"0014"},"coinbase":false},"error":null,"id":1}"#;
        let out: Option<TxOut> = parse_response("gettxout", URL, 200, unspent)?;
        assert_eq!(out, Some(TxOut { confirmations: 3 }));
        let spent = br#"{"result":null,"error":null,"id":1}"#;
        assert_eq!(parse_response::<Option<TxOut>>("gettxout", URL, 200, spent)?, None);
        let pending = br#"{"result":{"hex":"02","txid":"aa","vin":[],"vout":[]},"error":null,"id":1}"#;
        let status: TransactionStatus = parse_response("getrawtransaction", URL, 200, pending)?;
        assert_eq!(status, TransactionStatus { blockhash: None, confirmations: None });
        let mined = br#"{"result":{"hex":"02","blockhash":"00cd","confirmations":2},"error":null,"id":1}"#;
        let status: TransactionStatus = parse_response("getrawtransaction", URL, 200, mined)?;
        assert_eq!(status.blockhash.as_deref(), Some("00cd"));
        Ok(())
    }

    #[test]
    fn http_and_decode_failures_are_told_apart() {
        // btcd's answer to bad credentials.
        let error = parse_response::<u64>("getblockcount", URL, 401, b"401 Unauthorized.\n").err();
        assert!(matches!(error, Some(RpcError::Http { status: 401, ref body, .. }) if body.contains("Unauthorized")));

        let error = parse_response::<u64>("getblockcount", URL, 200, b"<html>proxy</html>").err();
        assert!(matches!(error, Some(RpcError::Decode { ref reason, .. }) if reason.contains("<html>")));

        let wrong_type = br#"{"jsonrpc":"1.0","result":"twelve","error":null,"id":1}"#;
        let error = parse_response::<u64>("getblockcount", URL, 200, wrong_type).err();
        assert!(matches!(error, Some(RpcError::Decode { ref reason, .. }) if reason.contains("twelve")));

        let null_result = br#"{"jsonrpc":"1.0","result":null,"error":null,"id":1}"#;
        assert_eq!(parse_response::<()>("invalidateblock", URL, 200, null_result).ok(), Some(()));
    }

    #[test]
    fn urls_with_credentials_or_other_schemes_are_refused_and_debug_hides_the_password() -> TestResult {
        assert!(matches!(BitcoinRpc::new("http://u:p@127.0.0.1:1", "u", "p"), Err(RpcError::InvalidUrl { .. })));
        assert!(matches!(BitcoinRpc::new("ftp://127.0.0.1:1", "u", "p"), Err(RpcError::InvalidUrl { .. })));
        assert!(matches!(BitcoinRpc::new("127.0.0.1:1", "u", "p"), Err(RpcError::InvalidUrl { .. })));
        let rpc = BitcoinRpc::new(URL, "ferry", "hunter2")?;
        assert!(!format!("{rpc:?}").contains("hunter2"));
        Ok(())
    }

    /// Serves one HTTP request on loopback with `answer` and hands back the request's text.
    async fn serve_once(answer: &'static str) -> std::io::Result<(String, tokio::task::JoinHandle<String>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else { return String::new() };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read until the JSON body (the only `}` terminated part) has arrived.
            while !request.ends_with(b"}") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(buffer.get(..n).unwrap_or_default()),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            String::from_utf8_lossy(&request).into_owned()
        });
        Ok((url, server))
    }

    #[tokio::test]
    async fn call_sends_json_rpc_1_with_basic_auth_and_reports_latency() -> TestResult {
        let (url, server) = serve_once(r#"{"jsonrpc":"1.0","result":101,"error":null,"id":1}"#).await?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let observed = Arc::clone(&seen);
        let rpc =
            BitcoinRpc::new(&url, "ferry", "secret")?.with_observer(Arc::new(move |method: &str, elapsed, ok| {
                if let Ok(mut calls) = observed.lock() {
                    calls.push((method.to_owned(), elapsed, ok));
                }
            }));
        assert_eq!(rpc.get_block_count().await?, 101);
        let request = server.await?;
        // base64("ferry:secret")
        assert!(request.to_ascii_lowercase().contains("authorization: basic zmvycnk6c2vjcmv0"), "{request}");
        assert!(request.contains(r#""method":"getblockcount""#) && request.contains(r#""jsonrpc":"1.0""#), "{request}");
        let calls = seen.lock().map_err(|_| "observer lock poisoned")?.clone();
        assert!(matches!(calls.as_slice(), [(method, _, true)] if method == "getblockcount"), "{calls:?}");
        Ok(())
    }

    #[tokio::test]
    async fn unreachable_node_is_a_transport_error_naming_method_and_url() -> TestResult {
        // Bind then drop: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("http://127.0.0.1:{port}");
        let failures = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&failures);
        let rpc = BitcoinRpc::new(&url, "u", "p")?.with_observer(Arc::new(move |_: &str, _, ok| {
            if !ok {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let error = rpc.get_best_block_hash().await.err().ok_or("no error from a closed port")?;
        assert!(error.is_transport(), "{error}");
        assert!(error.to_string().contains("getbestblockhash") && error.to_string().contains(&url), "{error}");
        assert_eq!(failures.load(Ordering::Relaxed), 1);
        Ok(())
    }
}
