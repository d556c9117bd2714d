//! Federation signers as processes: writes a member's `ferry-signer` configuration from a
//! [`SignerConfigSpec`], starts `ferry-signer run`, and stops it (SIGKILL on drop, like a crash;
//! the signer records every signature before it leaves the process, so a restart re-signs the
//! same payloads and nothing else). Starting and stopping the process is [`crate::process`]'s;
//! this module holds what is the signer's own: its configuration and accessors.
//!
//! The keystore, its passphrase file and the federation manifest come from the key ceremony
//! (`ferry-signer devnet-keygen`); [`write_federation_keys`] writes the devnet federation's (the one
//! genesis names, [`crate::accounts::federation_ceremony`]) and
//! [`SignerConfigSpec::for_member`] points a member's configuration at them.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferry_keystore::KdfParams;
use ferry_signer::ceremony::{keystore_path, manifest_path};
use ferry_signer::{Overwrite, write_ceremony};
use toml_edit::{Array, DocumentMut, Item, Table, value};

use crate::process::{ServiceCommand, ServiceProcess, binary_path};

/// The devnet keystores' passphrase. Public, like every devnet key: it protects nothing.
pub const DEVNET_PASSPHRASE: &str = "ferry-devnet";

/// scrypt cost of the devnet keystores (the lowest accepted: they protect nothing, and every
/// signer start opens one).
const DEVNET_KDF_LOG_N: u8 = 10;

/// The devnet federation's key files, as [`write_federation_keys`] wrote them.
#[derive(Clone, Debug)]
pub struct FederationKeys {
    /// Member `i`'s keystore at position `i`.
    pub keystores: Vec<PathBuf>,
    /// The file holding [`DEVNET_PASSPHRASE`].
    pub passphrase_file: PathBuf,
    /// The federation manifest.
    pub manifest: PathBuf,
}

/// The light store file daemons keep in their directory (`chain.light_store`).
pub const LIGHT_STORE: &str = "light-store.json";

/// Writes a candidate member's keystore into `dir` (a one-member ceremony from `seed`: only its
/// account and Bitcoin key matter, and the DKG encryption key derived from the account); returns
/// the keystore's path and the candidate's account. It opens with the devnet passphrase.
///
/// # Errors
/// When the files cannot be written.
pub fn write_candidate_keys(dir: &Path, seed: u64) -> anyhow::Result<(PathBuf, ferry_types::Address)> {
    use rand_chacha::rand_core::SeedableRng;
    let ceremony = ferry_signer::keygen(1, 1, &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))?;
    let kdf = KdfParams::with_log_n(DEVNET_KDF_LOG_N)?;
    write_ceremony(dir, &ceremony, &[DEVNET_PASSPHRASE], kdf, Overwrite::Replace)
        .with_context(|| format!("writing a candidate keystore into {}", dir.display()))?;
    let account = ceremony.members.first().context("a one-member ceremony")?.account();
    Ok((keystore_path(dir, 0), account))
}

/// Writes the devnet federation's keystores (a directory per member, as `devnet-keygen` writes
/// them), manifest and passphrase file into `dir` (replacing earlier ones: the ceremony is
/// deterministic, so they are the same keys). Every member's keys are sealed under the one
/// public [`DEVNET_PASSPHRASE`]: devnet keys protect nothing, and one passphrase file keeps the
/// devnet simple; `devnet-keygen` itself refuses one passphrase for several members.
///
/// # Errors
/// When the files cannot be written.
pub fn write_federation_keys(dir: &Path) -> anyhow::Result<FederationKeys> {
    let ceremony = crate::accounts::federation_ceremony()?;
    let kdf = KdfParams::with_log_n(DEVNET_KDF_LOG_N)?;
    let passphrases = vec![DEVNET_PASSPHRASE; ceremony.members.len()];
    write_ceremony(dir, &ceremony, &passphrases, kdf, Overwrite::Replace)
        .with_context(|| format!("writing the devnet keystores into {}", dir.display()))?;
    let passphrase_file = dir.join("passphrase");
    fs::write(&passphrase_file, format!("{DEVNET_PASSPHRASE}\n"))
        .with_context(|| format!("writing {}", passphrase_file.display()))?;
    let keystores = ceremony.members.iter().map(|member| keystore_path(dir, member.index())).collect();
    Ok(FederationKeys { keystores, passphrase_file, manifest: manifest_path(dir) })
}

/// What one member's signer is configured with. [`SignerConfigSpec::new`] fills the devnet
/// defaults; the public fields can be changed before [`SignerProcess::start`].
#[derive(Clone, Debug)]
pub struct SignerConfigSpec {
    /// Directory for its configuration (`signer.toml`) and log (`signer.log`).
    pub dir: PathBuf,
    /// Sidechain RPC.
    pub chain_rpc: String,
    /// PostgreSQL URL of its database (given through the environment, never in the file).
    pub database_url: String,
    /// The member's keystore.
    pub keystore: PathBuf,
    /// The file holding the keystore's passphrase.
    pub passphrase_file: PathBuf,
    /// The ceremony's federation manifest.
    pub manifest: PathBuf,
    /// The Ethereum chain id and vault address (0x…) the member expects (None: it signs no
    /// Ethereum batch).
    pub ethereum: Option<(u64, String)>,
    /// The Bitcoin network (`regtest`, …; None: it signs no Bitcoin batch).
    pub bitcoin_network: Option<String>,
    /// How often it reads the pending batches (human duration, e.g. `200ms`).
    pub poll_interval: String,
    /// The rolling window of the local caps (human duration).
    pub window: String,
    /// Local caps per denomination, in base units (an asset without a cap is never signed).
    pub caps: Vec<(String, String)>,
    /// Most items per batch.
    pub max_batch_items: u32,
    /// Destinations the member never pays.
    pub deny_destinations: Vec<String>,
    /// The chain's genesis file (the light client's trust root) and the endpoints proven reads
    /// go through after `chain_rpc` ([`SignerConfigSpec::with_trust_root`]; required).
    pub trust_root: Option<(PathBuf, Vec<String>)>,
}

impl SignerConfigSpec {
    /// A devnet signer: Bitcoin on regtest, no Ethereum until [`SignerConfigSpec::with_ethereum`],
    /// polling every 200 ms, caps large enough never to bind in a devnet (all bitcoin; a million
    /// ether) over 24 hours, 32 items per batch, no denylist.
    pub fn new(
        dir: impl Into<PathBuf>,
        chain_rpc: impl Into<String>,
        database_url: impl Into<String>,
        keystore: impl Into<PathBuf>,
        passphrase_file: impl Into<PathBuf>,
        manifest: impl Into<PathBuf>,
    ) -> Self {
        SignerConfigSpec {
            dir: dir.into(),
            chain_rpc: chain_rpc.into(),
            database_url: database_url.into(),
            keystore: keystore.into(),
            passphrase_file: passphrase_file.into(),
            manifest: manifest.into(),
            ethereum: None,
            bitcoin_network: Some("regtest".to_owned()),
            poll_interval: "200ms".to_owned(),
            window: "24h".to_owned(),
            caps: vec![
                ("sat".to_owned(), "2100000000000000".to_owned()),
                ("wei".to_owned(), "1000000000000000000000000".to_owned()),
            ],
            max_batch_items: 32,
            deny_destinations: Vec::new(),
            trust_root: None,
        }
    }

    /// Verifies what it signs on from `genesis_file` (the light client's trust root), through
    /// `chain_rpc` and then `endpoints`.
    #[must_use]
    pub fn with_trust_root(mut self, genesis_file: impl Into<PathBuf>, endpoints: Vec<String>) -> Self {
        self.trust_root = Some((genesis_file.into(), endpoints));
        self
    }

    /// Member `member`'s signer with the keys [`write_federation_keys`] wrote (and the defaults
    /// of [`SignerConfigSpec::new`]).
    ///
    /// # Errors
    /// When `keys` has no keystore for `member`.
    pub fn for_member(
        keys: &FederationKeys,
        member: usize,
        dir: impl Into<PathBuf>,
        chain_rpc: impl Into<String>,
        database_url: impl Into<String>,
    ) -> anyhow::Result<Self> {
        let keystore =
            keys.keystores.get(member).with_context(|| format!("the devnet federation has no member {member}"))?;
        Ok(SignerConfigSpec::new(dir, chain_rpc, database_url, keystore, &keys.passphrase_file, &keys.manifest))
    }

    /// Signs Ethereum batches for `vault` on chain `chain_id`.
    #[must_use]
    pub fn with_ethereum(mut self, chain_id: u64, vault: impl Into<String>) -> Self {
        self.ethereum = Some((chain_id, vault.into()));
        self
    }

    /// Sets (or replaces) the local cap of `denom` (for example an `erc20/0x…` token).
    #[must_use]
    pub fn with_cap(mut self, denom: impl Into<String>, amount: impl Into<String>) -> Self {
        let denom = denom.into();
        self.caps.retain(|(existing, _)| *existing != denom);
        self.caps.push((denom, amount.into()));
        self
    }

    /// The `ferry-signer` configuration file's text, with metrics on `metrics` (the light store
    /// sits in its directory).
    pub fn to_toml(&self, metrics: SocketAddr) -> String {
        let path = |path: &Path| value(path.display().to_string());
        let mut doc = DocumentMut::new();
        let mut chain = Table::new();
        chain["rpc"] = value(&self.chain_rpc);
        chain["poll_interval"] = value(&self.poll_interval);
        if let Some((genesis_file, endpoints)) = &self.trust_root {
            chain["genesis_file"] = path(genesis_file);
            chain["endpoints"] = value(endpoints.iter().collect::<Array>());
            // A restart resumes its light client from the newest header it verified.
            chain["light_store"] = path(&self.dir.join(LIGHT_STORE));
        }
        doc["chain"] = Item::Table(chain);
        let mut keys = Table::new();
        keys["keystore"] = path(&self.keystore);
        keys["passphrase_file"] = path(&self.passphrase_file);
        keys["manifest"] = path(&self.manifest);
        doc["keys"] = Item::Table(keys);
        let mut metrics_table = Table::new();
        metrics_table["listen"] = value(metrics.to_string());
        doc["metrics"] = Item::Table(metrics_table);
        if let Some((chain_id, vault)) = &self.ethereum {
            let mut ethereum = Table::new();
            ethereum["chain_id"] = value(i64::try_from(*chain_id).unwrap_or(i64::MAX));
            ethereum["vault"] = value(vault);
            doc["ethereum"] = Item::Table(ethereum);
        }
        if let Some(network) = &self.bitcoin_network {
            let mut bitcoin = Table::new();
            bitcoin["network"] = value(network);
            doc["bitcoin"] = Item::Table(bitcoin);
        }
        let mut policy = Table::new();
        policy["window"] = value(&self.window);
        policy["max_batch_items"] = value(i64::from(self.max_batch_items));
        policy["deny_destinations"] = value(self.deny_destinations.iter().collect::<Array>());
        let mut caps = Table::new();
        for (denom, amount) in &self.caps {
            caps[denom.as_str()] = value(amount);
        }
        policy["caps"] = Item::Table(caps);
        doc["policy"] = Item::Table(policy);
        doc.to_string()
    }
}

/// A running signer process.
#[derive(Debug)]
pub struct SignerProcess {
    spec: SignerConfigSpec,
    metrics: SocketAddr,
    process: ServiceProcess,
}

/// The `ferry-signer` binary: `$FERRY_SIGNER_BIN`, next to the running executable (tests), or in
/// the target directory ([`binary_path`]).
///
/// # Errors
/// When it was not built.
pub fn binary() -> anyhow::Result<PathBuf> {
    binary_path("ferry-signer", "FERRY_SIGNER_BIN")
}

impl SignerProcess {
    /// Writes the configuration (`<dir>/signer.toml`, metrics on port 0) and starts the signer;
    /// once it has announced the port it got, the configuration names that port, so a restart
    /// keeps it.
    ///
    /// # Errors
    /// When files cannot be written, or the process cannot start or exits before it listens.
    pub fn start(spec: SignerConfigSpec) -> anyhow::Result<SignerProcess> {
        fs::create_dir_all(&spec.dir).with_context(|| format!("creating {}", spec.dir.display()))?;
        let config = spec.dir.join("signer.toml");
        let command = ServiceCommand::new(binary()?, spec.dir.join("signer.log"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("FERRY_SIGNER_DATABASE_URL", &spec.database_url)
            .log_filter_from("FERRY_SIGNER_LOG");
        let (process, metrics) = ServiceProcess::start_on_any_port(command, |metrics| {
            fs::write(&config, spec.to_toml(metrics)).with_context(|| format!("writing {}", config.display()))
        })?;
        Ok(SignerProcess { spec, metrics, process })
    }

    /// Stops the signer, changes its configuration with `change` (same metrics port), and
    /// starts it again.
    ///
    /// # Errors
    /// When the configuration cannot be written or the process cannot start.
    pub fn reconfigure(&mut self, change: impl FnOnce(&mut SignerConfigSpec)) -> anyhow::Result<()> {
        self.process.kill();
        change(&mut self.spec);
        let config = self.config_path();
        fs::write(&config, self.spec.to_toml(self.metrics)).with_context(|| format!("writing {}", config.display()))?;
        self.process.restart()
    }

    /// Kills the signer with SIGKILL (a crash).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again (after [`SignerProcess::kill`], or killing it first), with the same
    /// configuration and metrics port.
    ///
    /// # Errors
    /// When the process cannot start.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()
    }

    /// Whether the process is running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Its metrics endpoint.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    /// Its health endpoint (200 while its rounds complete).
    pub fn health_url(&self) -> String {
        format!("http://{}/health", self.metrics)
    }

    /// Its configuration.
    pub fn spec(&self) -> &SignerConfigSpec {
        &self.spec
    }

    /// Its configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.spec.dir.join("signer.toml")
    }

    /// Its log (stdout and stderr, appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.spec.dir.join("signer.log")
    }

    /// Leaves the signer running past this handle (for `make devnet`); returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.detach()
    }

    /// Its PID while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devnet_keys_open_with_the_devnet_passphrase_and_match_the_manifest() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let keys = write_federation_keys(dir.path())?;
        // Written twice: the same ceremony replaces the files.
        let again = write_federation_keys(dir.path())?;
        assert_eq!(again.keystores, keys.keystores);
        let manifest = ferry_signer::Manifest::load(&keys.manifest)?;
        let passphrase = fs::read_to_string(&keys.passphrase_file)?;
        let member = ferry_signer::Keystore::open(&keys.keystores[3], passphrase.trim_end())?;
        manifest.check_member(&member)?;
        let spec = SignerConfigSpec::for_member(&keys, 3, dir.path().join("s3"), "http://127.0.0.1:1", "postgres://")?;
        assert_eq!(spec.keystore, keys.keystores[3]);
        assert!(SignerConfigSpec::for_member(&keys, 4, dir.path(), "", "").is_err());
        Ok(())
    }

    #[test]
    fn the_configuration_names_every_part_and_quotes_paths() -> anyhow::Result<()> {
        let spec = SignerConfigSpec::new(
            "/tmp/signer 0",
            "http://127.0.0.1:26657",
            "postgres://x@127.0.0.1/db",
            "/keys/member \"0\".json",
            "/keys/pass",
            "/keys/federation.json",
        )
        .with_ethereum(31_337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
        .with_cap("erc20/0x5fbdb2315678afecb367f032d93f642f64180aa3", "1000")
        .with_cap("sat", "5");
        let text = spec.to_toml(SocketAddr::from(([127, 0, 0, 1], 9999)));
        let doc: DocumentMut = text.parse()?;
        assert_eq!(doc["keys"]["keystore"].as_str(), Some("/keys/member \"0\".json"));
        assert_eq!(doc["ethereum"]["chain_id"].as_integer(), Some(31_337));
        assert_eq!(doc["policy"]["caps"]["sat"].as_str(), Some("5"));
        assert_eq!(doc["policy"]["caps"]["erc20/0x5fbdb2315678afecb367f032d93f642f64180aa3"].as_str(), Some("1000"));
        assert_eq!(doc["metrics"]["listen"].as_str(), Some("127.0.0.1:9999"));
        assert!(!text.contains("postgres://"), "the database URL goes through the environment: {text}");
        Ok(())
    }
}
