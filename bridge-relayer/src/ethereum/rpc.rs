//! How this module talks to an Ethereum node: URL parsing, one timeout per call, the latency
//! observer, and the error type every Ethereum operation returns.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::transports::TransportError;
use alloy::transports::http::reqwest::Url;

use super::vault::DepositLogError;

/// Default bound on one JSON-RPC call.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Called after every JSON-RPC call with the method name, how long it took and whether it
/// succeeded, e.g. to feed `ferry_relayer_rpc_duration_seconds`.
pub type RpcObserver = Arc<dyn Fn(&str, Duration, bool) + Send + Sync>;

/// Why an Ethereum operation failed. Each variant carries what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum EthereumError {
    /// The RPC URL does not parse or is not HTTP(S).
    #[error("`{url}` is not an Ethereum HTTP RPC URL: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The node answered with an error, or the transport failed.
    #[error("Ethereum RPC `{method}` failed: {source}")]
    Rpc {
        /// The JSON-RPC method (or contract call) attempted.
        method: String,
        /// The transport or node error.
        #[source]
        source: TransportError,
    },
    /// No answer within the request timeout.
    #[error("Ethereum RPC `{method}` gave no answer within {after:?}")]
    Timeout {
        /// The JSON-RPC method attempted.
        method: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// A block range with its start after its end.
    #[error("block range {from}..={to} is empty: the start is after the end")]
    BadRange {
        /// First block asked for.
        from: u64,
        /// Last block asked for.
        to: u64,
    },
    /// A log the vault's filter returned is not a valid deposit.
    #[error(transparent)]
    DepositLog(#[from] DepositLogError),
    /// The private key does not parse (the key itself is never shown).
    #[error("the Ethereum private key is not 32 bytes of hex")]
    BadPrivateKey,
    /// A transaction could not be signed (the key itself is never shown).
    #[error("cannot sign {what}: {reason}")]
    Sign {
        /// What the transaction was for.
        what: String,
        /// The signer's complaint.
        reason: String,
    },
    /// A transaction was mined but reverted.
    #[error("transaction {tx_hash} ({what}) reverted in block {block_number}")]
    Reverted {
        /// What the transaction was for.
        what: String,
        /// Its hash.
        tx_hash: String,
        /// The block it was mined in.
        block_number: u64,
    },
    /// A transaction was not mined within the wait.
    #[error("transaction {tx_hash} ({what}) has no receipt after {after:?}")]
    NotMined {
        /// What the transaction was for.
        what: String,
        /// Its hash.
        tx_hash: String,
        /// How long was waited.
        after: Duration,
    },
    /// The node's answer lacks something it must carry.
    #[error("Ethereum RPC `{method}`: unexpected answer: {detail}")]
    UnexpectedAnswer {
        /// The JSON-RPC method.
        method: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

/// Parses an HTTP(S) RPC URL.
///
/// # Errors
/// [`EthereumError::BadUrl`] when it does not parse or has another scheme.
pub(crate) fn parse_url(url: &str) -> Result<Url, EthereumError> {
    let parsed =
        url.parse::<Url>().map_err(|error| EthereumError::BadUrl { url: url.to_owned(), reason: error.to_string() })?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(EthereumError::BadUrl {
            url: url.to_owned(),
            reason: format!("scheme `{other}` (expected http or https)"),
        }),
    }
}

/// Runs RPC calls with a timeout and reports each to the observer.
#[derive(Clone)]
pub(crate) struct CallPolicy {
    pub(crate) timeout: Duration,
    pub(crate) observer: Option<RpcObserver>,
}

impl fmt::Debug for CallPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallPolicy")
            .field("timeout", &self.timeout)
            .field("observer", &self.observer.as_ref().map(|_| "set"))
            .finish()
    }
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy { timeout: DEFAULT_REQUEST_TIMEOUT, observer: None }
    }
}

impl CallPolicy {
    /// Runs `call` (the JSON-RPC `method`) within the timeout and reports its latency.
    pub(crate) async fn run<T>(
        &self,
        method: &str,
        call: impl Future<Output = Result<T, TransportError>>,
    ) -> Result<T, EthereumError> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, call).await;
        let elapsed = started.elapsed();
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(EthereumError::Rpc { method: method.to_owned(), source }),
            Err(_) => Err(EthereumError::Timeout { method: method.to_owned(), after: self.timeout }),
        };
        if let Some(observer) = &self.observer {
            observer(method, elapsed, result.is_ok());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(parse_url("http://127.0.0.1:8545").is_ok());
        assert!(parse_url("https://eth.example.org/v1").is_ok());
        for bad in ["ws://127.0.0.1:8545", "127.0.0.1:8545", "not a url", ""] {
            let result = parse_url(bad);
            assert!(matches!(&result, Err(EthereumError::BadUrl { url, .. }) if url == bad), "{bad}: {result:?}");
        }
    }

    #[tokio::test]
    async fn every_call_is_reported_to_the_observer_with_its_outcome() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let policy = CallPolicy {
            timeout: Duration::from_millis(50),
            observer: Some(Arc::new(move |method: &str, _elapsed: Duration, ok: bool| {
                if let Ok(mut seen) = record.lock() {
                    seen.push((method.to_owned(), ok));
                }
            })),
        };
        assert!(matches!(policy.run("eth_blockNumber", async { Ok(1u64) }).await, Ok(1)));
        let never = std::future::pending::<Result<u64, TransportError>>();
        assert!(matches!(
            policy.run("eth_getLogs", never).await,
            Err(EthereumError::Timeout { method, .. }) if method == "eth_getLogs"
        ));
        let seen = seen.lock().map(|seen| seen.clone()).unwrap_or_default();
        assert_eq!(seen, vec![("eth_blockNumber".to_owned(), true), ("eth_getLogs".to_owned(), false)]);
    }
}
