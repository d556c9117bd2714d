//! The relayer's configuration: a TOML file, overridden by environment variables, overridden by
//! flags (see `main.rs`). Unknown keys are refused; secrets are never in the file — only paths to
//! files holding them. An annotated example is `deploy/relayer.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::confirmations::{ConfirmationPolicy, PolicyError};

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The sidechain.
    pub chain: ChainConfig,
    /// Bitcoin watching (absent: not watched).
    #[serde(default)]
    pub bitcoin: Option<BitcoinConfig>,
    /// Ethereum watching (absent: not watched).
    #[serde(default)]
    pub ethereum: Option<EthereumConfig>,
    /// Relay state and audit log.
    pub database: DatabaseConfig,
    /// The metrics and health endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// The sidechain side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// CometBFT RPC of a validator (`http://127.0.0.1:26657`).
    pub rpc: String,
    /// File holding the member's sidechain account key (64 hex characters).
    pub member_key_file: PathBuf,
}

/// Bitcoin watching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcoinConfig {
    /// JSON-RPC URL of btcd or Bitcoin Core.
    pub rpc: String,
    /// RPC user name.
    pub rpc_user: String,
    /// File holding the RPC password.
    pub rpc_password_file: PathBuf,
    /// First block to scan when no cursor is stored yet.
    #[serde(default)]
    pub start_height: u64,
    /// How often to look for new blocks.
    #[serde(with = "humantime_serde", default = "default_bitcoin_poll")]
    pub poll_interval: Duration,
    /// Confirmations before attesting.
    pub confirmations: ConfirmationPolicy,
}

/// Ethereum watching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthereumConfig {
    /// JSON-RPC URL of an Ethereum node.
    pub rpc: String,
    /// The `FerryVault` address (0x…).
    pub vault: String,
    /// First block to scan when no cursor is stored yet.
    #[serde(default)]
    pub start_block: u64,
    /// Most blocks per `eth_getLogs` request.
    #[serde(default = "default_log_range")]
    pub max_log_range: u64,
    /// How often to look for new blocks.
    #[serde(with = "humantime_serde", default = "default_ethereum_poll")]
    pub poll_interval: Duration,
    /// Confirmations before attesting.
    pub confirmations: ConfirmationPolicy,
}

/// PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// File holding the connection URL (it may contain a password). The URL can also come from
    /// `FERRY_RELAYER_DATABASE_URL` or `--database-url`.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
}

/// The metrics and health endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Listen address (loopback by default).
    #[serde(default = "default_metrics_listen")]
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: default_metrics_listen() }
    }
}

fn default_bitcoin_poll() -> Duration {
    Duration::from_secs(2)
}

fn default_ethereum_poll() -> Duration {
    Duration::from_secs(1)
}

fn default_log_range() -> u64 {
    1_000
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

/// Why a configuration was refused; every variant names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The TOML is malformed or has unknown or missing keys.
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's complaint, with line and key.
        reason: String,
    },
    /// A value is invalid.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.to_string() }
}

fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(key, format!("`{url}` is not an http(s) URL")))
    }
}

fn check_policy(key: &'static str, policy: &ConfirmationPolicy) -> Result<(), ConfigError> {
    policy.validate().map_err(|e: PolicyError| invalid(key, e))
}

fn check_file(key: &'static str, path: &Path) -> Result<(), ConfigError> {
    if path.is_file() { Ok(()) } else { Err(invalid(key, format!("file {} does not exist", path.display()))) }
}

impl Config {
    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the line and key.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), reason: e.to_string() })
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::parse(&text, path)
    }

    /// Checks values the parser cannot: URLs, confirmation policies, that secret files exist,
    /// that at least one parent chain is watched.
    ///
    /// # Errors
    /// The first invalid value, by key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url("chain.rpc", &self.chain.rpc)?;
        check_file("chain.member_key_file", &self.chain.member_key_file)?;
        if self.bitcoin.is_none() && self.ethereum.is_none() {
            return Err(invalid("bitcoin/ethereum", "watch at least one parent chain"));
        }
        if let Some(bitcoin) = &self.bitcoin {
            check_url("bitcoin.rpc", &bitcoin.rpc)?;
            check_file("bitcoin.rpc_password_file", &bitcoin.rpc_password_file)?;
            check_policy("bitcoin.confirmations", &bitcoin.confirmations)?;
        }
        if let Some(ethereum) = &self.ethereum {
            check_url("ethereum.rpc", &ethereum.rpc)?;
            check_policy("ethereum.confirmations", &ethereum.confirmations)?;
            let hex = ethereum.vault.strip_prefix("0x").unwrap_or_default();
            if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("ethereum.vault", format!("`{}` is not a 0x-prefixed address", ethereum.vault)));
            }
            if ethereum.max_log_range == 0 {
                return Err(invalid("ethereum.max_log_range", "must be at least 1"));
            }
        }
        if let Some(path) = &self.database.url_file {
            check_file("database.url_file", path)?;
        }
        if !self.metrics.listen.ip().is_loopback() {
            tracing::warn!(listen = %self.metrics.listen, "metrics endpoint is not on loopback");
        }
        Ok(())
    }
}

/// Reads a secret from a file, trimming the trailing newline.
///
/// # Errors
/// When the file cannot be read.
pub fn read_secret(key: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[chain]
rpc = "http://127.0.0.1:26657"
member_key_file = "/nonexistent/member.key"

[bitcoin]
rpc = "http://127.0.0.1:18334"
rpc_user = "ferry"
rpc_password_file = "/nonexistent/btc.pass"
poll_interval = "500ms"
confirmations = { default = 3, tiers = [{ min_amount = "100000000", confirmations = 6 }] }

[database]
"#;

    #[test]
    fn example_parses_with_human_durations_and_defaults() -> Result<(), ConfigError> {
        let config = Config::parse(EXAMPLE, Path::new("example.toml"))?;
        let bitcoin = config.bitcoin.as_ref().ok_or_else(|| invalid("bitcoin", "missing"))?;
        assert_eq!(bitcoin.poll_interval, Duration::from_millis(500));
        assert_eq!(bitcoin.confirmations.required(ferry_types::Amount::new(100_000_000)), 6);
        assert_eq!(config.metrics.listen, default_metrics_listen());
        // The key file does not exist: validation names the key.
        let error = config.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("chain.member_key_file"), "{error}");
        Ok(())
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let text = EXAMPLE.replace("rpc_user", "rpc_usr");
        let error = Config::parse(&text, Path::new("x.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("rpc_usr"), "{error}");
    }
}
