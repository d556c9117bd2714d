//! The CLI's one error type: what went wrong (naming the input), a hint, and the exit code its
//! kind maps to. The codes are part of the interface (docs/cli.md) and never renumbered.

use ferry_client::ClientError;
use ferry_types::TxCode;

/// Exit codes, as documented in `ferry --help` and docs/cli.md.
pub const EXIT_HELP: &str = "Exit codes: 0 success; 1 other failure; 2 usage or bad input (unknown unit, malformed or \
wrong-network address, unknown key); 3 node or parent-chain RPC unreachable; 4 refused by the chain or a parent chain \
(insufficient funds, withdrawal refused, bridge paused); 5 not found (unknown deposit, withdrawal or account).";

/// What kind of failure, deciding the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Anything else (exit 1).
    Other,
    /// Bad usage or input (exit 2).
    BadInput,
    /// A node or RPC endpoint could not be reached (exit 3).
    Unreachable,
    /// The chain or a parent chain refused (exit 4).
    Refused,
    /// What was asked for does not exist (exit 5).
    NotFound,
}

impl ErrorKind {
    /// The process exit code of this kind.
    pub const fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Other => 1,
            ErrorKind::BadInput => 2,
            ErrorKind::Unreachable => 3,
            ErrorKind::Refused => 4,
            ErrorKind::NotFound => 5,
        }
    }
}

/// A failure to report: its kind, a message naming the bad input, and a hint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{message}")]
pub struct CliError {
    /// Decides the exit code.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl CliError {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CliError { kind, message: message.into(), hint: None }
    }

    /// Bad input (exit 2).
    pub fn bad_input(message: impl Into<String>) -> Self {
        CliError::new(ErrorKind::BadInput, message)
    }

    /// An unreachable endpoint (exit 3).
    pub fn unreachable(message: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Unreachable, message)
    }

    /// A refusal (exit 4).
    pub fn refused(message: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Refused, message)
    }

    /// Not found (exit 5).
    pub fn not_found(message: impl Into<String>) -> Self {
        CliError::new(ErrorKind::NotFound, message)
    }

    /// Any other failure (exit 1).
    pub fn other(message: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Other, message)
    }

    /// The same error with `hint`.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
}

impl From<ClientError> for CliError {
    fn from(error: ClientError) -> Self {
        let message = error.to_string();
        match &error {
            ClientError::Url { .. } => {
                CliError::bad_input(message).with_hint("give the node's CometBFT RPC as --node http://HOST:26657")
            }
            ClientError::Rpc { url, .. } => CliError::unreachable(message)
                .with_hint(format!("is a Ferry node running at {url}? Set --node or FERRY_NODE")),
            ClientError::Query { code: ferry_types::query::QUERY_NOT_FOUND, .. } => CliError::not_found(message),
            ClientError::Query { .. } => CliError::bad_input(message),
            ClientError::Refused { code, .. } => {
                let error = CliError::refused(message);
                match code {
                    Some(TxCode::InsufficientFunds) => error.with_hint("check the balance with `ferry balance`"),
                    Some(TxCode::InsufficientFee) => error.with_hint("pay at least the chain's min_fees (`--fee`)"),
                    Some(TxCode::BridgePaused) => error.with_hint("the bridge is paused: see `ferry federation`"),
                    _ => error,
                }
            }
            ClientError::Timeout(..) => CliError::other(message).with_hint("the node may be stalled; try again"),
            ClientError::Superseded { .. } => CliError::refused(message).with_hint(
                "another transaction signed with this key took its place (another wallet or node?); check with `ferry balance` and send again",
            ),
            ClientError::Decode { .. } | ClientError::Build(_) => CliError::other(message),
        }
    }
}

impl From<ferry_parent_chains::bitcoin::RpcError> for CliError {
    fn from(error: ferry_parent_chains::bitcoin::RpcError) -> Self {
        use ferry_parent_chains::bitcoin::RpcError;
        let message = error.to_string();
        match &error {
            RpcError::InvalidUrl { .. } => CliError::bad_input(message),
            RpcError::Transport { url, .. } => CliError::unreachable(message)
                .with_hint(format!("is a Bitcoin node running at {url}? Set --bitcoin-rpc or FERRY_BITCOIN_RPC")),
            RpcError::Http { status: 401, .. } => CliError::other(message).with_hint(
                "check --bitcoin-rpc-user and --bitcoin-rpc-password-file (FERRY_BITCOIN_RPC_PASSWORD_FILE)",
            ),
            RpcError::Rpc { .. } => CliError::refused(message),
            RpcError::Client { .. } | RpcError::Http { .. } | RpcError::Decode { .. } => CliError::other(message),
        }
    }
}

impl From<ferry_parent_chains::ethereum::EthereumError> for CliError {
    fn from(error: ferry_parent_chains::ethereum::EthereumError) -> Self {
        use ferry_parent_chains::ethereum::EthereumError;
        let message = error.to_string();
        match &error {
            EthereumError::BadUrl { .. } | EthereumError::BadPrivateKey | EthereumError::BadRange { .. } => {
                CliError::bad_input(message)
            }
            EthereumError::Rpc { source, .. } if source.is_transport_error() => CliError::unreachable(message)
                .with_hint("is an Ethereum node running there? Set --ethereum-rpc or FERRY_ETHEREUM_RPC"),
            EthereumError::Timeout { .. } => CliError::unreachable(message),
            EthereumError::Rpc { .. } | EthereumError::Reverted { .. } => CliError::refused(message)
                .with_hint("the node refused or reverted it: check the balance on Ethereum and the amount"),
            _ => CliError::other(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_documented_codes() {
        let codes: Vec<i32> =
            [ErrorKind::Other, ErrorKind::BadInput, ErrorKind::Unreachable, ErrorKind::Refused, ErrorKind::NotFound]
                .into_iter()
                .map(ErrorKind::exit_code)
                .collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5]);
        for code in 1..=5 {
            assert!(EXIT_HELP.contains(&format!("{code} ")), "exit {code} undocumented");
        }
    }

    #[test]
    fn chain_refusals_and_unreachable_nodes_have_their_own_codes() {
        let refused = ClientError::Refused { code: Some(TxCode::InsufficientFunds), raw_code: 10, log: "x".into() };
        assert_eq!(CliError::from(refused).exit_code(), 4);
        let rpc = ClientError::Rpc { url: "http://127.0.0.1:1".into(), method: "status", reason: "refused".into() };
        let error = CliError::from(rpc);
        assert_eq!(error.exit_code(), 3);
        assert!(error.hint.unwrap_or_default().contains("http://127.0.0.1:1"));
    }
}
