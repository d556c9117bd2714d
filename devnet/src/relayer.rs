//! Federation relayers as processes: writes each member's configuration and key file, starts
//! `ferry-relayer run`, and stops it (SIGKILL on drop, like a crash; the relayer is crash-safe).

use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// What one member's relayer watches.
#[derive(Clone, Debug)]
pub struct RelayerSetup {
    /// Directory for its config, key file and log.
    pub dir: PathBuf,
    /// Federation member index (its key derives from the devnet seed).
    pub member: usize,
    /// Sidechain RPC.
    pub chain_rpc: String,
    /// PostgreSQL URL of its own database.
    pub database_url: String,
    /// Bitcoin RPC URL, user and password file (None: not watched).
    pub bitcoin: Option<(String, String, PathBuf)>,
    /// Ethereum RPC URL and vault address (None: not watched).
    pub ethereum: Option<(String, String)>,
    /// Confirmations required on each chain.
    pub confirmations: u32,
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
    binary: PathBuf,
    metrics: SocketAddr,
    child: Option<Child>,
}

fn free_loopback_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The `ferry-relayer` binary next to the running executable (tests) or in the target directory.
///
/// # Errors
/// When it was not built.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FERRY_RELAYER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    let dir = if dir.ends_with("deps") { dir.parent().unwrap_or(dir) } else { dir };
    let candidate = dir.join("ferry-relayer");
    if candidate.exists() {
        return Ok(candidate);
    }
    let fallback = crate::tools::repo_root().join("target/debug/ferry-relayer");
    fallback.exists().then_some(fallback).context("ferry-relayer binary not found: run `cargo build --bins`")
}

impl RelayerProcess {
    /// Writes the configuration and starts the relayer.
    ///
    /// # Errors
    /// When files cannot be written or the process cannot start.
    pub fn start(setup: RelayerSetup) -> anyhow::Result<RelayerProcess> {
        fs::create_dir_all(&setup.dir)?;
        let key_file = setup.dir.join("member.key");
        fs::write(&key_file, crate::accounts::member_secret_hex(setup.member)?)?;
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_loopback_port()?));
        let mut config = format!(
            "[chain]\nrpc = \"{}\"\nmember_key_file = \"{}\"\n\n[database]\n\n[metrics]\nlisten = \"{metrics}\"\n",
            setup.chain_rpc,
            key_file.display()
        );
        let confirmations = setup.confirmations;
        let poll = &setup.poll_interval;
        if let Some((rpc, user, password_file)) = &setup.bitcoin {
            config.push_str(&format!(
                "\n[bitcoin]\nrpc = \"{rpc}\"\nrpc_user = \"{user}\"\nrpc_password_file = \"{}\"\npoll_interval = \"{poll}\"\nconfirmations = {{ default = {confirmations} }}\n",
                password_file.display()
            ));
        }
        if let Some((rpc, vault)) = &setup.ethereum {
            config.push_str(&format!(
                "\n[ethereum]\nrpc = \"{rpc}\"\nvault = \"{vault}\"\npoll_interval = \"{poll}\"\nconfirmations = {{ default = {confirmations} }}\n"
            ));
        }
        config.push_str(&format!("\n[delivery]\npoll_interval = \"{poll}\"\n"));
        if let Some(key) = &setup.ethereum_key {
            let key_file = setup.dir.join("ethereum.key");
            fs::write(&key_file, key)?;
            config.push_str(&format!("ethereum_key_file = \"{}\"\n", key_file.display()));
        }
        fs::write(setup.dir.join("relayer.toml"), config)?;
        let mut process = RelayerProcess { setup, binary: binary()?, metrics, child: None };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log_path = self.setup.dir.join("relayer.log");
        let log = || OpenOptions::new().create(true).append(true).open(&log_path);
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(self.setup.dir.join("relayer.toml"))
            .arg("run")
            .env("FERRY_RELAYER_DATABASE_URL", &self.setup.database_url)
            .env("RUST_LOG", std::env::var("FERRY_RELAYER_LOG").unwrap_or_else(|_| "info".to_owned()))
            .stdin(Stdio::null())
            .stdout(log()?)
            .stderr(log()?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the relayer with SIGKILL (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again after [`RelayerProcess::kill`].
    ///
    /// # Errors
    /// When the process cannot start.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Its metrics endpoint.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    /// Its directory (config, key, log).
    pub fn dir(&self) -> &Path {
        &self.setup.dir
    }

    /// Leaves the relayer running past this handle (for `make devnet`); returns its PID.
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|child| child.id())
    }

    /// Its PID while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for RelayerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
