//! Federation relayers as processes: writes each member's configuration and its member key —
//! sealed in an account keystore under the devnet passphrase, as an operator's relayer reads it
//! (`chain.member_keystore`, `chain.passphrase_file`; never plaintext) — starts
//! `ferry-relayer run`, and stops it (SIGKILL on drop, like a crash; the relayer is crash-safe).
//! Starting and stopping the process is [`crate::process`]'s; this module holds what is the
//! relayer's own: its configuration and accessors.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ferry_relayer::config::AccountKeystore;

use crate::process::{ServiceCommand, ServiceProcess, binary_path};

/// What one member's relayer watches.
#[derive(Clone, Debug)]
pub struct RelayerSetup {
    /// Directory for its config, keystore, passphrase file and log.
    pub dir: PathBuf,
    /// Federation member index (its key derives from the devnet seed).
    pub member: usize,
    /// Sidechain RPC.
    pub chain_rpc: String,
    /// More sidechain RPC endpoints its proven reads may go through after `chain_rpc`.
    pub endpoints: Vec<String>,
    /// The sidechain's genesis file: the trust root of the relayer's proven reads.
    pub genesis_file: PathBuf,
    /// PostgreSQL URL of its own database.
    pub database_url: String,
    /// Bitcoin RPC URL, user and password file (None: not watched).
    pub bitcoin: Option<(String, String, PathBuf)>,
    /// Ethereum RPC URL and vault address (None: not watched).
    pub ethereum: Option<(String, String)>,
    /// Confirmations required on each chain.
    pub confirmations: u32,
    /// Bitcoin deposits paying at least a tier's amount in one block need its confirmations.
    pub bitcoin_tiers: Vec<ferry_relayer::confirmations::Tier>,
    /// Which Ethereum blocks deposits may be attested in (anvil has no real finality: `Depth`).
    pub ethereum_finality: ferry_relayer::config::Finality,
    /// Poll interval (human duration, e.g. `200ms`), also of release delivery.
    pub poll_interval: String,
    /// Private key (0x hex) of the Ethereum account that pays for `FerryVault.release`
    /// transactions (None: Ethereum releases are only attested, never sent by this relayer).
    pub ethereum_key: Option<String>,
}

/// A running relayer process.
#[derive(Debug)]
pub struct RelayerProcess {
    setup: RelayerSetup,
    metrics: SocketAddr,
    process: ServiceProcess,
}

/// The `ferry-relayer` binary: `$FERRY_RELAYER_BIN`, next to the running executable (tests), or in
/// the target directory ([`binary_path`]).
///
/// # Errors
/// When it was not built.
pub fn binary() -> anyhow::Result<PathBuf> {
    binary_path("ferry-relayer", "FERRY_RELAYER_BIN")
}

/// The member's account keystore, in the relayer's directory.
const MEMBER_KEYSTORE: &str = "account.keystore.json";
/// The file holding its passphrase ([`crate::signer::DEVNET_PASSPHRASE`]), in the relayer's
/// directory.
const PASSPHRASE_FILE: &str = "keystore.pass";
/// Where relayers of earlier devnets kept the member key in plaintext (removed at start).
const OLD_PLAINTEXT_KEY_FILE: &str = "member.key";
/// scrypt cost of the devnet's relayer keystores (the lowest accepted: devnet keys protect
/// nothing, and every relayer start opens one).
const DEVNET_KDF_LOG_N: u8 = 10;
/// The Ethereum wallet key file, in the relayer's directory.
const ETHEREUM_KEY_FILE: &str = "ethereum.key";

impl RelayerProcess {
    /// Writes the configuration and starts the relayer with its metrics on port 0; once it has
    /// announced the port it got, the configuration names that port, so a restart keeps it.
    ///
    /// # Errors
    /// When files cannot be written, or the process cannot start or exits before it listens.
    pub fn start(setup: RelayerSetup) -> anyhow::Result<RelayerProcess> {
        fs::create_dir_all(&setup.dir)?;
        Self::write_member_keystore(&setup)?;
        if let Some(key) = &setup.ethereum_key {
            fs::write(setup.dir.join(ETHEREUM_KEY_FILE), key)?;
        }
        let config_path = setup.dir.join("relayer.toml");
        let command = ServiceCommand::new(binary()?, setup.dir.join("relayer.log"))
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .env("FERRY_RELAYER_DATABASE_URL", &setup.database_url)
            .log_filter_from("FERRY_RELAYER_LOG");
        let (process, metrics) = ServiceProcess::start_on_any_port(command, |metrics| {
            Ok(fs::write(&config_path, Self::config(&setup, metrics))?)
        })?;
        Ok(RelayerProcess { setup, metrics, process })
    }

    /// Seals member `setup.member`'s sidechain key into the relayer's directory under the devnet
    /// passphrase, and writes the passphrase file beside it (a plaintext key file left by an
    /// earlier devnet is removed).
    fn write_member_keystore(setup: &RelayerSetup) -> anyhow::Result<()> {
        use rand_chacha::rand_core::SeedableRng;
        let secret = crate::accounts::member_secret_hex(setup.member)?;
        let seed = u64::try_from(setup.member)?;
        let kdf = ferry_keystore::KdfParams::with_log_n(DEVNET_KDF_LOG_N)?;
        let keystore = AccountKeystore::seal_hex(
            &secret,
            crate::signer::DEVNET_PASSPHRASE,
            kdf,
            &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed),
        )?;
        fs::write(setup.dir.join(MEMBER_KEYSTORE), keystore.to_json())?;
        fs::write(setup.dir.join(PASSPHRASE_FILE), format!("{}\n", crate::signer::DEVNET_PASSPHRASE))?;
        match fs::remove_file(setup.dir.join(OLD_PLAINTEXT_KEY_FILE)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// The configuration file's text, with metrics on `metrics` (the keystore and passphrase
    /// file it names are written by [`RelayerProcess::start`]).
    fn config(setup: &RelayerSetup, metrics: SocketAddr) -> String {
        let mut config = format!(
            "[chain]\nrpc = \"{}\"\ngenesis_file = \"{}\"\nlight_store = \"{}\"\nmember_keystore = \"{}\"\npassphrase_file = \"{}\"\n\n[database]\n\n[metrics]\nlisten = \"{metrics}\"\n",
            setup.chain_rpc,
            setup.genesis_file.display(),
            setup.dir.join(crate::signer::LIGHT_STORE).display(),
            setup.dir.join(MEMBER_KEYSTORE).display(),
            setup.dir.join(PASSPHRASE_FILE).display()
        );
        if !setup.endpoints.is_empty() {
            let quoted: Vec<String> = setup.endpoints.iter().map(|endpoint| format!("\"{endpoint}\"")).collect();
            config =
                config.replacen("\n\n[database]", &format!("\nendpoints = [{}]\n\n[database]", quoted.join(", ")), 1);
        }
        let confirmations = setup.confirmations;
        let poll = &setup.poll_interval;
        if let Some((rpc, user, password_file)) = &setup.bitcoin {
            let tiers: Vec<String> = setup
                .bitcoin_tiers
                .iter()
                .map(|tier| {
                    format!("{{ min_amount = \"{}\", confirmations = {} }}", tier.min_amount, tier.confirmations)
                })
                .collect();
            config.push_str(&format!(
                "\n[bitcoin]\nrpc = \"{rpc}\"\nrpc_user = \"{user}\"\nrpc_password_file = \"{}\"\npoll_interval = \"{poll}\"\nconfirmations = {{ default = {confirmations}, tiers = [{}] }}\n",
                password_file.display(),
                tiers.join(", ")
            ));
        }
        if let Some((rpc, vault)) = &setup.ethereum {
            config.push_str(&format!(
                "\n[ethereum]\nrpc = \"{rpc}\"\nvault = \"{vault}\"\npoll_interval = \"{poll}\"\nconfirmations = {{ default = {confirmations} }}\nfinality = \"{}\"\n",
                match setup.ethereum_finality {
                    ferry_relayer::config::Finality::Finalized => "finalized",
                    ferry_relayer::config::Finality::Depth => "depth",
                }
            ));
        }
        config.push_str(&format!("\n[delivery]\npoll_interval = \"{poll}\"\n"));
        if setup.ethereum_key.is_some() {
            config.push_str(&format!("ethereum_key_file = \"{}\"\n", setup.dir.join(ETHEREUM_KEY_FILE).display()));
        }
        config
    }

    /// Stops the relayer, changes its setup and starts it again (same metrics port).
    ///
    /// # Errors
    /// When the configuration cannot be written or the process cannot start.
    pub fn reconfigure(&mut self, change: impl FnOnce(&mut RelayerSetup)) -> anyhow::Result<()> {
        self.process.kill();
        change(&mut self.setup);
        let config_path = self.setup.dir.join("relayer.toml");
        fs::write(&config_path, Self::config(&self.setup, self.metrics))?;
        self.process.restart()
    }

    /// Kills the relayer with SIGKILL (a crash).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again after [`RelayerProcess::kill`].
    ///
    /// # Errors
    /// When the process cannot start.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()
    }

    /// Its metrics endpoint.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    /// Its directory (config, keystore, log).
    pub fn dir(&self) -> &Path {
        &self.setup.dir
    }

    /// Its database's URL.
    pub fn database_url(&self) -> &str {
        &self.setup.database_url
    }

    /// Leaves the relayer running past this handle (for `make devnet`); returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.detach()
    }

    /// Its PID while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}
