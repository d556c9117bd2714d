//! How this module talks to an Ethereum node: URL parsing, one timeout per call, the latency
//! observer, and the forms answers are read in (hashes as `0x` text, one-word `eth_call` answers).

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use alloy::primitives::{B256, Bytes, U256};
use alloy::transports::TransportError;
use alloy::transports::http::reqwest::Url;

use super::error::EthereumError;
use crate::RpcObserver;

/// Default bound on one JSON-RPC call.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

/// `0x` + 64 lowercase hex digits: the form of transaction and block hashes in deposit facts,
/// deposit ids and observations.
pub fn hash_text(hash: B256) -> String {
    format!("0x{}", hex::encode(hash.as_slice()))
}

/// The one 32-byte ABI word an `eth_call` of a view answers (`method` names it in errors).
pub(crate) fn decode_word(method: &str, answer: &Bytes) -> Result<U256, EthereumError> {
    let word: [u8; 32] = answer.as_ref().try_into().map_err(|_| EthereumError::UnexpectedAnswer {
        method: method.to_owned(),
        detail: format!("expected one 32-byte word, got {} bytes", answer.len()),
    })?;
    Ok(U256::from_be_bytes(word))
}

/// An `eth_call` answer the ABI decoder refused.
pub(crate) fn undecodable(method: &str, error: &alloy::sol_types::Error) -> EthereumError {
    EthereumError::UnexpectedAnswer { method: method.to_owned(), detail: error.to_string() }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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

    #[test]
    fn a_view_answer_must_be_one_word() {
        assert!(matches!(decode_word("eth_call", &Bytes::from(vec![0; 32])), Ok(value) if value == U256::ZERO));
        assert!(matches!(
            decode_word("eth_call", &Bytes::from(vec![0; 31])),
            Err(EthereumError::UnexpectedAnswer { .. })
        ));
    }
}
