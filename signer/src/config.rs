//! The daemon's configuration: a TOML file, overridden by environment variables, overridden by
//! flags (see `main.rs`). Unknown keys are refused; secrets are never in the file — only paths
//! to files holding them. An annotated example is `deploy/signer.example.toml`.
//!
//! What a member expects of the payloads it signs — the Ethereum chain id and vault, the Bitcoin
//! network — is configured here, locally, and never taken from the chain: a chain that changed
//! them would get its batches refused, not signed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use ferry_daemon::config::{ConfigError, ConfigFile, read_secret};
use ferry_daemon::config::{check_file, check_url, invalid};
use ferry_daemon::verified_reads;
use ferry_types::genesis::EthereumBridge;
use ferry_types::peg::{BitcoinNetwork, Peg};
use ferry_types::release::eth::EthAddress;
use ferry_types::{Amount, Denom};
use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::policy::{Denylist, Policy};
use crate::rebuild::LocalKnowledge;

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The sidechain.
    pub chain: ChainConfig,
    /// The member's keys and the federation manifest.
    pub keys: KeysConfig,
    /// The signed-payload record and the audit log.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// The metrics and health endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// What Ethereum batches must be bound to (absent: no Ethereum batch is signed).
    #[serde(default)]
    pub ethereum: Option<EthereumConfig>,
    /// The Bitcoin network of the peg (absent: no Bitcoin batch is signed).
    #[serde(default)]
    pub bitcoin: Option<BitcoinConfig>,
    /// Local limits.
    pub policy: PolicyConfig,
    /// How often the audit log's head is anchored on the sidechain.
    #[serde(default)]
    pub audit_anchor: ferry_daemon::audit_anchor::AnchorPolicy,
}

/// The sidechain side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// CometBFT RPC of a validator (`http://127.0.0.1:26657`): where the signer finds work and
    /// posts its signatures.
    pub rpc: String,
    /// More RPC endpoints for the proven reads of what it signs on (tried after `rpc`, in
    /// order; one honest endpoint that is up is enough, and one that lies is reported).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// The chain's CometBFT genesis file: the light client's trust root (chain id, genesis
    /// validators). Take it from the network's operators, not from a node you do not run.
    pub genesis_file: PathBuf,
    /// How long a verified header stays a valid starting point for verifying later ones (must
    /// be shorter than the time in which a third of the validators' power could change hands).
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
    /// How often to read the pending batches.
    #[serde(with = "humantime_serde", default = "default_poll_interval")]
    pub poll_interval: Duration,
}

impl ChainConfig {
    /// The reader of what this member signs on: through `rpc`, then `endpoints`.
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
}

/// The member's keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The member's encrypted keystore (`ferry-signer devnet-keygen`).
    pub keystore: PathBuf,
    /// File holding the keystore's passphrase (one trailing newline is ignored).
    pub passphrase_file: PathBuf,
    /// The federation manifest of the same ceremony (`federation.json`).
    pub manifest: PathBuf,
}

/// PostgreSQL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// File holding the connection URL (it may contain a password). The URL can also come from
    /// `FERRY_SIGNER_DATABASE_URL` or `--database-url`.
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

/// The Ethereum chain and vault this member pays from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthereumConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The `FerryVault` contract (0x…; EIP-55 checksum checked when mixed case).
    pub vault: EthAddress,
}

/// The Bitcoin network of the peg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcoinConfig {
    /// `bitcoin`, `testnet`, `signet` or `regtest`; must be the manifest's.
    pub network: BitcoinNetwork,
}

/// Local limits (see [`Policy`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The rolling window the caps apply to.
    #[serde(with = "humantime_serde", default = "default_window")]
    pub window: Duration,
    /// Most this signer signs per asset within the window, in base units (strings: wei amounts
    /// exceed TOML's integers). Assets without an entry are never signed.
    #[serde(default)]
    pub caps: BTreeMap<Denom, Amount>,
    /// Most items in one batch.
    #[serde(default = "default_max_batch_items")]
    pub max_batch_items: u32,
    /// Destinations never paid (Ethereum or Bitcoin addresses).
    #[serde(default)]
    pub deny_destinations: Vec<String>,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9465))
}

fn default_window() -> Duration {
    Duration::from_secs(24 * 60 * 60)
}

fn default_max_batch_items() -> u32 {
    32
}

impl ConfigFile for Config {}

impl Config {
    /// Checks what the parser cannot: the URL, that files exist, positive durations and counts,
    /// a usable chain id and vault, and the denylist.
    ///
    /// # Errors
    /// The first invalid value, by key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url("chain.rpc", &self.chain.rpc)?;
        if self.chain.poll_interval.is_zero() {
            return Err(invalid("chain.poll_interval", "must be positive"));
        }
        check_file("keys.keystore", &self.keys.keystore)?;
        check_file("keys.passphrase_file", &self.keys.passphrase_file)?;
        check_file("keys.manifest", &self.keys.manifest)?;
        self.chain.verified_reads().check()?;
        if let Some(path) = &self.database.url_file {
            check_file("database.url_file", path)?;
        }
        if let Some(ethereum) = &self.ethereum {
            if ethereum.chain_id == 0 {
                return Err(invalid("ethereum.chain_id", "must be positive"));
            }
            if ethereum.vault.is_zero() {
                return Err(invalid("ethereum.vault", "the zero address is no vault"));
            }
        }
        if self.ethereum.is_none() && self.bitcoin.is_none() {
            return Err(invalid("ethereum/bitcoin", "configure at least one parent chain to sign for"));
        }
        self.policy()?;
        if !self.metrics.listen.ip().is_loopback() {
            tracing::warn!(listen = %self.metrics.listen, "metrics endpoint is not on loopback");
        }
        Ok(())
    }

    /// The local policy.
    ///
    /// # Errors
    /// A zero window or item count, or a denylist entry that is no address.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let policy = &self.policy;
        if policy.window.is_zero() {
            return Err(invalid("policy.window", "must be positive"));
        }
        if policy.max_batch_items == 0 {
            return Err(invalid("policy.max_batch_items", "must be at least 1"));
        }
        let denylist = Denylist::parse(policy.deny_destinations.iter().map(String::as_str))
            .map_err(|e| invalid("policy.deny_destinations", e))?;
        Ok(Policy {
            window: policy.window,
            caps: policy.caps.clone(),
            max_batch_items: policy.max_batch_items,
            denylist,
        })
    }

    /// The Ethereum chain id and vault this member expects.
    pub fn ethereum_bridge(&self) -> Option<EthereumBridge> {
        self.ethereum.as_ref().map(|ethereum| EthereumBridge::new(ethereum.chain_id, ethereum.vault))
    }

    /// What this member (`member`, its sidechain account) knows for itself: the manifest's
    /// epoch, the configured Ethereum chain id and vault, and the peg the manifest's keys make on
    /// the configured Bitcoin network.
    ///
    /// # Errors
    /// When the configured Bitcoin network is not the manifest's, or its keys make no peg.
    pub fn local_knowledge(
        &self,
        manifest: &Manifest,
        member: ferry_types::Address,
    ) -> Result<LocalKnowledge, ConfigError> {
        let bitcoin = match &self.bitcoin {
            None => None,
            Some(bitcoin) if bitcoin.network != manifest.bitcoin.network => {
                return Err(invalid(
                    "bitcoin.network",
                    format!(
                        "{} configured, but the manifest's peg is on {}",
                        bitcoin.network, manifest.bitcoin.network
                    ),
                ));
            }
            Some(_) => Some(Peg::new(&manifest.bitcoin).map_err(|e| invalid("keys.manifest", e))?),
        };
        Ok(LocalKnowledge {
            member,
            epoch: manifest.epoch,
            ethereum: self.ethereum_bridge(),
            bitcoin,
            next: None,
            retired: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const EXAMPLE: &str = r#"
[chain]
rpc = "http://127.0.0.1:26657"
endpoints = ["http://127.0.0.2:26657"]
genesis_file = "/nonexistent/genesis.json"
poll_interval = "250ms"

[keys]
keystore = "/nonexistent/member-0.keystore.json"
passphrase_file = "/nonexistent/passphrase"
manifest = "/nonexistent/federation.json"

[ethereum]
chain_id = 31337
vault = "0x5fbdb2315678afecb367f032d93f642f64180aa3"

[bitcoin]
network = "regtest"

[policy]
window = "12h"
max_batch_items = 16
deny_destinations = ["0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"]

[policy.caps]
sat = "1000000000"
wei = "100000000000000000000"
"#;

    #[test]
    fn example_parses_with_human_durations_big_amounts_and_defaults() -> Result<(), ConfigError> {
        let config = Config::parse(EXAMPLE, Path::new("example.toml"))?;
        assert_eq!(config.chain.poll_interval, Duration::from_millis(250));
        assert_eq!(config.metrics.listen, default_metrics_listen());
        let policy = config.policy()?;
        assert_eq!(policy.window, Duration::from_secs(12 * 3600));
        assert_eq!(policy.caps.get(&Denom::wei()), Some(&Amount::new(100_000_000_000_000_000_000)));
        assert_eq!(policy.denylist.len(), 1);
        assert_eq!(config.ethereum_bridge().map(|bridge| bridge.chain_id), Some(31337));
        // The key files do not exist: validation names the key.
        let error = config.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("keys.keystore"), "{error}");
        Ok(())
    }

    #[test]
    fn the_annotated_example_in_deploy_parses() -> Result<(), ConfigError> {
        let text = include_str!("../../deploy/signer.example.toml");
        let config = Config::parse(text, Path::new("deploy/signer.example.toml"))?;
        let policy = config.policy()?;
        assert_eq!(policy.caps.len(), 2);
        assert_eq!(config.bitcoin.map(|bitcoin| bitcoin.network), Some(BitcoinNetwork::Bitcoin));
        assert!(config.metrics.listen.ip().is_loopback());
        assert_eq!(
            config.audit_anchor,
            ferry_daemon::audit_anchor::AnchorPolicy::default(),
            "the defaults, spelled out"
        );
        Ok(())
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_name() {
        let refusal = |text: &str| {
            Config::parse(text, Path::new("x.toml")).and_then(|c| c.policy().map(|_| ())).err().map(|e| e.to_string())
        };
        let unknown = refusal(&EXAMPLE.replace("max_batch_items", "max_items")).unwrap_or_default();
        assert!(unknown.contains("max_items"), "{unknown}");
        let cap = refusal(&EXAMPLE.replace("sat = \"1000000000\"", "sat = 1000000000")).unwrap_or_default();
        assert!(cap.contains("caps") || cap.contains("string"), "{cap}");
        let denom = refusal(&EXAMPLE.replace("sat = ", "satoshi = ")).unwrap_or_default();
        assert!(denom.contains("satoshi"), "{denom}");
        let deny = refusal(&EXAMPLE.replace("0xfb69", "0xzz69")).unwrap_or_default();
        assert!(deny.contains("policy.deny_destinations"), "{deny}");
        let network = refusal(&EXAMPLE.replace("regtest", "mainnet")).unwrap_or_default();
        assert!(network.contains("mainnet"), "{network}");
    }
}
