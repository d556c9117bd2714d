//! The relayer's configuration: a TOML file, overridden by environment variables, overridden by
//! flags (see `main.rs`). Unknown keys are refused; secrets are never in the file — only paths to
//! files holding them. An annotated example is `deploy/relayer.example.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ferry_daemon::account_keystore::seal_hint;
pub use ferry_daemon::account_keystore::{AccountKeystore, AccountKeystoreError};
pub use ferry_daemon::config::{ConfigError, ConfigFile, read_secret};
use ferry_daemon::config::{check_file, check_url, invalid};
use ferry_daemon::verified_reads;
use ferry_keystore::passphrase;
use ferry_types::AccountKey;
use serde::{Deserialize, Serialize};

use crate::confirmations::{ConfirmationPolicy, PolicyError};

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The sidechain.
    pub chain: ChainConfig,
    /// Bitcoin: deposits watched, releases delivered (absent: neither).
    #[serde(default)]
    pub bitcoin: Option<BitcoinConfig>,
    /// Ethereum: deposits watched, releases delivered (absent: neither).
    #[serde(default)]
    pub ethereum: Option<EthereumConfig>,
    /// Relay state and audit log.
    pub database: DatabaseConfig,
    /// The metrics and health endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Delivery of signed releases and their attestation.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// How often the audit log's head is anchored on the sidechain.
    #[serde(default)]
    pub audit_anchor: ferry_daemon::audit_anchor::AnchorPolicy,
}

/// The sidechain side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// CometBFT RPC of a validator (`http://127.0.0.1:26657`).
    pub rpc: String,
    /// More RPC endpoints for the proven reads of what the relayer acts on (the federation and
    /// its pegs, the deposit addresses, the batches it delivers), tried after `rpc` in order; one
    /// honest endpoint that is up is enough, and one that lies is reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// The chain's CometBFT genesis file: the light client's trust root (chain id, genesis
    /// validators). Take it from the network's operators, not from a node you do not run.
    pub genesis_file: PathBuf,
    /// How long a verified header stays a valid starting point for verifying later ones.
    #[serde(with = "humantime_serde", default = "verified_reads::default_trusting_period")]
    pub trusting_period: Duration,
    /// A trust point instead of the genesis validators (a chain older than the trusting
    /// period): the height of a block whose header hash is `trust_hash`, both from the network's
    /// operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_height: Option<u64>,
    /// The trust point's header hash (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_hash: Option<String>,
    /// Where the newest verified header is kept across restarts (recommended: without it, a
    /// restart verifies again from the genesis or the trust point, which must still be within
    /// the trusting period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub light_store: Option<PathBuf>,
    /// The member's sidechain account key, sealed (`account.keystore.json` from the key
    /// ceremony, or `ferry-relayer keystore seal`). Required unless `delivery.deliver_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_keystore: Option<PathBuf>,
    /// File holding the keystore's passphrase (never the passphrase itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// The old plaintext key file: refused, with how to seal it (kept in the schema only so the
    /// refusal can say so instead of "unknown field").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_key_file: Option<PathBuf>,
}

impl ChainConfig {
    /// The reader of what this relayer acts on: through `rpc`, then `endpoints`.
    ///
    /// # Errors
    /// When the genesis file is not a usable trust root or an endpoint is not an RPC URL.
    pub fn verified_reader(&self) -> anyhow::Result<ferry_light::Reader> {
        self.verified_reads().open()
    }

    /// The proven-read keys of this table.
    pub fn verified_reads(&self) -> verified_reads::Settings<'_> {
        verified_reads::Settings {
            rpc: &self.rpc,
            endpoints: &self.endpoints,
            genesis_file: &self.genesis_file,
            trusting_period: self.trusting_period,
            trust_height: self.trust_height,
            trust_hash: self.trust_hash.as_deref(),
            light_store: self.light_store.as_deref(),
        }
    }

    /// Opens the member's keystore with the passphrase in `passphrase_file` (None for a
    /// deliver-only relayer, which has no key).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key: a plaintext key, an unreadable or empty
    /// passphrase file, a keystore that is not one, a wrong passphrase.
    pub fn open_member_key(&self) -> Result<Option<AccountKey>, ConfigError> {
        let Some(keystore) = &self.member_keystore else { return Ok(None) };
        let passphrase_file = self
            .passphrase_file
            .as_ref()
            .ok_or_else(|| invalid("chain.passphrase_file", "chain.member_keystore needs its passphrase file"))?;
        let passphrase = passphrase::read_file(passphrase_file).map_err(|e| invalid("chain.passphrase_file", e))?;
        AccountKeystore::open(keystore, &passphrase).map(Some).map_err(|e| invalid("chain.member_keystore", e))
    }
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
    /// Confirmations before attesting a deposit, or a release (by the batch's total).
    pub confirmations: ConfirmationPolicy,
}

/// Which Ethereum blocks a deposit may be attested in, besides its confirmations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finality {
    /// At or below the node's `finalized` block: a reorganisation below it would take a third of
    /// the stake being slashed. The default, for every proof-of-stake network.
    #[default]
    Finalized,
    /// The confirmations alone: for development chains without finality (anvil's `finalized`
    /// trails its tip by 64 blocks).
    Depth,
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
    /// Confirmations before attesting a deposit, or a release (by the batch's total).
    pub confirmations: ConfirmationPolicy,
    /// Which blocks a deposit may be attested in besides the confirmations (default: finalized).
    #[serde(default)]
    pub finality: Finality,
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

/// Delivery of releases the federation signed on the sidechain to their parent chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Run the delivery loop (a member's relayer also attests the releases it sees confirmed).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Carry releases without attesting anything (a relayer that is not a federation member):
    /// no member key is needed, and the deposit watchers do not run.
    #[serde(default)]
    pub deliver_only: bool,
    /// How often to read the sidechain's pending batches.
    #[serde(with = "humantime_serde", default = "default_delivery_poll")]
    pub poll_interval: Duration,
    /// File holding the private key (hex) of the Ethereum account that pays for release
    /// transactions. Absent: this relayer does not send Ethereum releases, but still attests the
    /// ones others deliver.
    #[serde(default)]
    pub ethereum_key_file: Option<PathBuf>,
    /// How many Bitcoin blocks back to look for a release whose outputs are all spent already.
    #[serde(default = "default_bitcoin_search_depth")]
    pub bitcoin_search_depth: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            enabled: true,
            deliver_only: false,
            poll_interval: default_delivery_poll(),
            ethereum_key_file: None,
            bitcoin_search_depth: default_bitcoin_search_depth(),
        }
    }
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

fn default_true() -> bool {
    true
}

fn default_delivery_poll() -> Duration {
    Duration::from_secs(2)
}

fn default_bitcoin_search_depth() -> u64 {
    // A week of blocks.
    1_008
}

fn default_log_range() -> u64 {
    1_000
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

fn check_policy(key: &'static str, policy: &ConfirmationPolicy) -> Result<(), ConfigError> {
    policy.validate().map_err(|e: PolicyError| invalid(key, e))
}

impl ConfigFile for Config {}

impl Config {
    /// Checks values the parser cannot: URLs, confirmation policies, that secret files exist
    /// (the member key unless `delivery.deliver_only`), that at least one parent chain is
    /// watched, that the delivery settings make sense.
    ///
    /// # Errors
    /// The first invalid value, by key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url("chain.rpc", &self.chain.rpc)?;
        self.validate_member_key()?;
        self.validate_delivery()?;
        self.chain.verified_reads().check()?;
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

    /// The member key is sealed: a plaintext key file — the old `chain.member_key_file`, or a
    /// `chain.member_keystore` holding 64 hex digits — is refused, saying how to seal it.
    fn validate_member_key(&self) -> Result<(), ConfigError> {
        let chain = &self.chain;
        if let Some(path) = &chain.member_key_file {
            return Err(invalid(
                "chain.member_key_file",
                format!("plaintext member keys are refused (the key can mint); {}", seal_hint(path)),
            ));
        }
        match (&chain.member_keystore, self.delivery.deliver_only) {
            (Some(path), _) => {
                check_file("chain.member_keystore", path)?;
                AccountKeystore::read(path).map_err(|e| invalid("chain.member_keystore", e))?;
                let passphrase_file = chain.passphrase_file.as_ref().ok_or_else(|| {
                    invalid("chain.passphrase_file", "chain.member_keystore needs its passphrase file")
                })?;
                check_file("chain.passphrase_file", passphrase_file)?;
            }
            (None, false) => {
                return Err(invalid(
                    "chain.member_keystore",
                    "a federation member's relayer needs its sealed key: set chain.member_keystore and \
                     chain.passphrase_file (or set delivery.deliver_only)",
                ));
            }
            (None, true) => {
                if chain.passphrase_file.is_some() {
                    return Err(invalid("chain.passphrase_file", "set, but there is no chain.member_keystore"));
                }
            }
        }
        Ok(())
    }

    fn validate_delivery(&self) -> Result<(), ConfigError> {
        let delivery = &self.delivery;
        if delivery.deliver_only && !delivery.enabled {
            return Err(invalid("delivery.deliver_only", "a deliver-only relayer with delivery disabled does nothing"));
        }
        if delivery.poll_interval.is_zero() {
            return Err(invalid("delivery.poll_interval", "must be above zero"));
        }
        if delivery.bitcoin_search_depth == 0 {
            return Err(invalid("delivery.bitcoin_search_depth", "must be at least 1"));
        }
        if let Some(path) = &delivery.ethereum_key_file {
            if self.ethereum.is_none() {
                return Err(invalid("delivery.ethereum_key_file", "set, but no [ethereum] section says where to send"));
            }
            check_file("delivery.ethereum_key_file", path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const EXAMPLE: &str = r#"
[chain]
rpc = "http://127.0.0.1:26657"
genesis_file = "/nonexistent/genesis.json"
member_keystore = "/nonexistent/account.keystore.json"
passphrase_file = "/nonexistent/keystore.pass"

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
        assert!(error.contains("chain.member_keystore"), "{error}");
        Ok(())
    }

    #[test]
    fn delivery_defaults_on_and_reads_human_durations() -> Result<(), ConfigError> {
        let config = Config::parse(EXAMPLE, Path::new("example.toml"))?;
        assert_eq!(config.delivery, DeliveryConfig::default());
        assert!(config.delivery.enabled && !config.delivery.deliver_only);
        let text = format!("{EXAMPLE}\n[delivery]\npoll_interval = \"250ms\"\nbitcoin_search_depth = 12\n");
        let config = Config::parse(&text, Path::new("x.toml"))?;
        assert_eq!(config.delivery.poll_interval, Duration::from_millis(250));
        assert_eq!(config.delivery.bitcoin_search_depth, 12);
        Ok(())
    }

    #[test]
    fn only_a_deliver_only_relayer_may_go_without_a_member_key() -> Result<(), ConfigError> {
        let dir = std::env::temp_dir().join(format!("ferry-relayer-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| invalid("test", e))?;
        let password = dir.join("btc.pass");
        std::fs::write(&password, "x").map_err(|e| invalid("test", e))?;
        let genesis = dir.join("genesis.json");
        std::fs::write(&genesis, "{}").map_err(|e| invalid("test", e))?;
        let text = EXAMPLE
            .replace("/nonexistent/genesis.json", &genesis.display().to_string())
            .replace("member_keystore = \"/nonexistent/account.keystore.json\"\n", "")
            .replace("passphrase_file = \"/nonexistent/keystore.pass\"\n", "")
            .replace("/nonexistent/btc.pass", &password.display().to_string());
        let member = Config::parse(&text, Path::new("x.toml"))?;
        let error = member.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("chain.member_keystore") && error.contains("deliver_only"), "{error}");

        let deliver_only = Config::parse(&format!("{text}\n[delivery]\ndeliver_only = true\n"), Path::new("x.toml"))?;
        deliver_only.validate()?;

        let idle = format!("{text}\n[delivery]\ndeliver_only = true\nenabled = false\n");
        let error = Config::parse(&idle, Path::new("x.toml"))?.validate().err().map(|e| e.to_string());
        assert!(error.unwrap_or_default().contains("delivery.deliver_only"));

        // An Ethereum key without an [ethereum] section to send to.
        let keyed =
            format!("{text}\n[delivery]\ndeliver_only = true\nethereum_key_file = \"{}\"\n", password.display());
        let error = Config::parse(&keyed, Path::new("x.toml"))?.validate().err().map(|e| e.to_string());
        assert!(error.unwrap_or_default().contains("delivery.ethereum_key_file"));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn a_plaintext_member_key_file_is_refused_saying_how_to_seal_it() -> Result<(), ConfigError> {
        let text = EXAMPLE.replace(
            "member_keystore = \"/nonexistent/account.keystore.json\"\n",
            "member_key_file = \"/etc/ferry/member.key\"\n",
        );
        let error = Config::parse(&text, Path::new("x.toml"))?.validate().err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(
            error.contains("chain.member_key_file") && error.contains("plaintext member keys are refused"),
            "{error}"
        );
        assert!(error.contains("ferry-relayer keystore seal --key-file /etc/ferry/member.key"), "{error}");
        Ok(())
    }

    /// The annotated example operators copy must stay a valid configuration, every section set.
    #[test]
    fn annotated_example_in_deploy_parses_with_every_section() -> Result<(), ConfigError> {
        let text = include_str!("../../deploy/relayer.example.toml");
        let config = Config::parse(text, Path::new("deploy/relayer.example.toml"))?;
        assert!(config.bitcoin.is_some() && config.ethereum.is_some());
        assert!(config.delivery.enabled && config.delivery.ethereum_key_file.is_some());
        assert_eq!(config.delivery.bitcoin_search_depth, default_bitcoin_search_depth());
        Ok(())
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let text = EXAMPLE.replace("rpc_user", "rpc_usr");
        let error = Config::parse(&text, Path::new("x.toml")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("rpc_usr"), "{error}");
    }
}
