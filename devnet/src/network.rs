//! A network of CometBFT validators on loopback, each with its application process.
//!
//! Validator `i` of subnet `s` listens on `127.0.s.(i+1)` with CometBFT's usual ports: P2P
//! 26656, RPC 26657, ABCI 26658, CometBFT metrics 26660, `ferry-chain` metrics 26661. Distinct
//! loopback addresses keep the ports identical across validators and networks apart.

use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_client::FerryClient;
use ferry_types::GenesisState;
use toml_edit::{DocumentMut, value};

use crate::tools::Tools;

/// CometBFT P2P port.
pub const P2P_PORT: u16 = 26656;
/// CometBFT RPC port.
pub const RPC_PORT: u16 = 26657;
/// ABCI port (`ferry-chain` listens, CometBFT connects).
pub const ABCI_PORT: u16 = 26658;
/// CometBFT's own Prometheus port.
pub const COMETBFT_METRICS_PORT: u16 = 26660;
/// `ferry-chain`'s Prometheus port.
pub const APP_METRICS_PORT: u16 = 26661;

/// Which application the validators run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    /// `ferry-chain`.
    Ferry,
    /// CometBFT's built-in `kvstore`, in process (the benchmark baseline).
    Kvstore,
    /// The same `kvstore` served over the ABCI socket by `abci-cli` (the baseline with the
    /// transport Ferry pays for).
    KvstoreSocket,
}

/// How to lay out a network.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    /// Directory holding every node's home (wiped by [`Network::create`]).
    pub dir: PathBuf,
    /// Number of validators.
    pub validators: usize,
    /// Third octet of the validators' loopback addresses.
    pub subnet: u8,
    /// Chain id.
    pub chain_id: String,
    /// Application.
    pub app: AppKind,
    /// Ferry genesis (ignored by kvstore).
    pub genesis: GenesisState,
    /// CometBFT `timeout_commit`.
    pub timeout_commit: Duration,
    /// CometBFT `timeout_propose`.
    pub timeout_propose: Duration,
    /// CometBFT mempool capacity, in transactions.
    pub mempool_size: usize,
    /// Heights of history each validator keeps (`ferry-chain --min-retain-blocks`), by index;
    /// a validator without an entry, or with 0, keeps everything.
    pub min_retain_blocks: Vec<u64>,
    /// Every node writes a state-sync snapshot at heights divisible by this (0: none).
    pub snapshot_interval: u64,
    /// Snapshot chunk size (`None`: `ferry-chain`'s default); small in tests, for many chunks.
    pub snapshot_chunk_bytes: Option<usize>,
    /// Delete `dir` when the network is dropped without a panic in flight (tests and
    /// benchmarks keep the logs of a failed run, and nothing of a passing one).
    pub remove_on_drop: bool,
    /// Ferry's ABCI over TCP on loopback instead of the Unix socket (the benchmark compares
    /// the two transports; see [`abci_socket`]).
    pub abci_over_tcp: bool,
}

impl NetworkSpec {
    /// A spec for a test or benchmark: a fresh directory under `target/networks/<name>-<pid>`
    /// and a loopback subnet no other network of this process uses and nothing listens on.
    ///
    /// # Errors
    /// When no free subnet is found.
    pub fn isolated(name: &str, validators: usize, genesis: GenesisState) -> anyhow::Result<Self> {
        let dir = crate::tools::repo_root().join("target/networks").join(format!("{name}-{}", std::process::id()));
        Ok(NetworkSpec {
            dir,
            validators,
            subnet: free_subnet(validators)?,
            chain_id: format!("ferry-{name}").chars().take(45).collect(),
            app: AppKind::Ferry,
            abci_over_tcp: false,
            genesis,
            timeout_commit: Duration::from_millis(300),
            timeout_propose: Duration::from_millis(1500),
            mempool_size: 20_000,
            min_retain_blocks: Vec::new(),
            snapshot_interval: 0,
            snapshot_chunk_bytes: None,
            remove_on_drop: true,
        })
    }

    /// Loopback address of validator `index`.
    pub fn ip(&self, index: usize) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, self.subnet, u8::try_from(index.saturating_add(1)).unwrap_or(u8::MAX))
    }
}

static NEXT_SUBNET: AtomicU8 = AtomicU8::new(0);

/// A subnet 127.0.s.0 (s in 100..=249) whose validator addresses have the RPC port free.
fn free_subnet(validators: usize) -> anyhow::Result<u8> {
    let offset = u8::try_from(std::process::id() % 150).unwrap_or(0);
    for _ in 0..150u8 {
        let step = NEXT_SUBNET.fetch_add(1, Ordering::Relaxed);
        let subnet = 100u8.saturating_add(offset.wrapping_add(step) % 150);
        let free = (1..=validators).all(|i| {
            let ip = Ipv4Addr::new(127, 0, subnet, u8::try_from(i).unwrap_or(u8::MAX));
            [P2P_PORT, RPC_PORT, ABCI_PORT].iter().all(|port| TcpListener::bind((ip, *port)).is_ok())
        });
        if free {
            return Ok(subnet);
        }
    }
    bail!("no free loopback subnet found in 127.0.100.0-127.0.249.0")
}

/// One node: CometBFT home and its processes. The first [`NetworkSpec::validators`] are the
/// validators; nodes added by [`Network::join_by_state_sync`] follow them as full nodes.
#[derive(Debug)]
pub struct Validator {
    /// Index in the network.
    pub index: usize,
    /// Loopback address.
    pub ip: Ipv4Addr,
    /// CometBFT home directory (`ferry/` inside holds the application's database).
    pub home: PathBuf,
    cometbft: Option<Child>,
    app: Option<Child>,
    app_program: &'static str,
}

impl Validator {
    /// CometBFT RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://{}:{RPC_PORT}", self.ip)
    }

    /// `ferry-chain` metrics URL.
    pub fn app_metrics_url(&self) -> String {
        format!("http://{}:{APP_METRICS_PORT}/metrics", self.ip)
    }

    /// CometBFT metrics URL.
    pub fn cometbft_metrics_url(&self) -> String {
        format!("http://{}:{COMETBFT_METRICS_PORT}/metrics", self.ip)
    }

    /// PIDs of the running processes, with their program names.
    pub fn pids(&self) -> Vec<(u32, &'static str)> {
        let mut pids = Vec::new();
        if let Some(child) = &self.app {
            pids.push((child.id(), self.app_program));
        }
        if let Some(child) = &self.cometbft {
            pids.push((child.id(), "cometbft"));
        }
        pids
    }
}

/// A running (or stopped) network. Dropping it kills every process it started, unless
/// [`Network::detach`] handed them over to a pid file.
#[derive(Debug)]
pub struct Network {
    spec: NetworkSpec,
    tools: Tools,
    validators: Vec<Validator>,
}

fn log_file(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening log {}", path.display()))
}

fn wait_for_port(address: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        if started.elapsed() > timeout {
            bail!("nothing listens on {address} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits until something accepts connections on the Unix socket at `path`.
fn wait_for_unix_socket(path: &Path, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        if started.elapsed() > timeout {
            bail!("nothing listens on {} after {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The Unix socket a Ferry validator's application serves ABCI on (CometBFT's `proxy_app`): on
/// the same host, a Unix socket spares every flushed request the delayed-ACK wait a TCP socket
/// without `TCP_NODELAY` costs (see `ferry_chain::abci::AbciAddress`).
pub fn abci_socket(home: &Path) -> PathBuf {
    home.join("abci.sock")
}

fn duration_text(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

impl Network {
    /// Generates the homes of a new network (wiping `spec.dir`): keys and configs with
    /// `cometbft testnet`, then our addresses, timeouts, metrics and genesis.
    ///
    /// # Errors
    /// When CometBFT fails or a file cannot be written.
    pub fn create(spec: NetworkSpec, tools: Tools) -> anyhow::Result<Network> {
        if spec.dir.exists() {
            fs::remove_dir_all(&spec.dir).with_context(|| format!("wiping {}", spec.dir.display()))?;
        }
        fs::create_dir_all(&spec.dir)?;
        let output = Command::new(&tools.cometbft)
            .args(["testnet", "--v", &spec.validators.to_string(), "--o"])
            .arg(&spec.dir)
            .args(["--starting-ip-address", &spec.ip(0).to_string(), "--populate-persistent-peers"])
            .output()
            .with_context(|| format!("running {} testnet", tools.cometbft.display()))?;
        if !output.status.success() {
            bail!("cometbft testnet failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let mut validators = Vec::with_capacity(spec.validators);
        for index in 0..spec.validators {
            let home = spec.dir.join(format!("node{index}"));
            Self::configure(&spec, index, &home)?;
            validators.push(Validator {
                index,
                ip: spec.ip(index),
                home,
                cometbft: None,
                app: None,
                app_program: "ferry-chain",
            });
        }
        Ok(Network { spec, tools, validators })
    }

    /// Re-opens the network under `spec.dir` created earlier (nothing running), with the full
    /// nodes that joined it since.
    pub fn existing(spec: NetworkSpec, tools: Tools) -> Network {
        let nodes = (0..).take_while(|index| spec.dir.join(format!("node{index}")).exists()).count();
        let validators = (0..nodes.max(spec.validators))
            .map(|index| Validator {
                index,
                ip: spec.ip(index),
                home: spec.dir.join(format!("node{index}")),
                cometbft: None,
                app: None,
                app_program: "ferry-chain",
            })
            .collect();
        Network { spec, tools, validators }
    }

    fn configure(spec: &NetworkSpec, index: usize, home: &Path) -> anyhow::Result<()> {
        let ip = spec.ip(index);
        let config_path = home.join("config/config.toml");
        let text = fs::read_to_string(&config_path).with_context(|| format!("reading {}", config_path.display()))?;
        let mut config: DocumentMut = text.parse().with_context(|| format!("parsing {}", config_path.display()))?;
        config["moniker"] = value(format!("validator{index}"));
        config["log_level"] = value("main:info,state:info,*:error");
        config["proxy_app"] = value(match spec.app {
            AppKind::Ferry if !spec.abci_over_tcp => format!("unix://{}", abci_socket(home).display()),
            AppKind::Ferry | AppKind::KvstoreSocket => format!("tcp://{ip}:{ABCI_PORT}"),
            AppKind::Kvstore => "kvstore".to_owned(),
        });
        config["rpc"]["laddr"] = value(format!("tcp://{ip}:{RPC_PORT}"));
        config["p2p"]["laddr"] = value(format!("tcp://{ip}:{P2P_PORT}"));
        config["p2p"]["addr_book_strict"] = value(false);
        config["p2p"]["allow_duplicate_ip"] = value(true);
        config["consensus"]["timeout_commit"] = value(duration_text(spec.timeout_commit));
        config["consensus"]["timeout_propose"] = value(duration_text(spec.timeout_propose));
        config["mempool"]["size"] = value(i64::try_from(spec.mempool_size).unwrap_or(i64::MAX));
        config["mempool"]["cache_size"] = value(i64::try_from(spec.mempool_size.saturating_mul(2)).unwrap_or(i64::MAX));
        config["instrumentation"]["prometheus"] = value(true);
        config["instrumentation"]["prometheus_listen_addr"] = value(format!("{ip}:{COMETBFT_METRICS_PORT}"));
        fs::write(&config_path, config.to_string())?;

        let genesis_path = home.join("config/genesis.json");
        let mut genesis: serde_json::Value = serde_json::from_slice(&fs::read(&genesis_path)?)?;
        genesis["chain_id"] = serde_json::Value::String(spec.chain_id.clone());
        if spec.app == AppKind::Ferry {
            genesis["app_state"] = serde_json::to_value(&spec.genesis)?;
        }
        fs::write(&genesis_path, serde_json::to_vec_pretty(&genesis)?)?;
        Ok(())
    }

    /// The spec this network was built from.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// The validators.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The network's CometBFT genesis file: the trust root of light clients (every node holds
    /// the same one).
    pub fn genesis_file(&self) -> PathBuf {
        self.spec.dir.join("node0/config/genesis.json")
    }

    /// A client for validator `index`'s RPC.
    ///
    /// # Errors
    /// When the index is out of range.
    pub fn client(&self, index: usize) -> anyhow::Result<FerryClient> {
        let validator = self.validator(index)?;
        Ok(FerryClient::new(&validator.rpc_url())?)
    }

    /// A proven reader (`ferry-light`) of the chain through validator `index`'s RPC, trusting
    /// the genesis file, as the daemons read what they act on.
    ///
    /// # Errors
    /// When the index is out of range or the genesis file is not there yet.
    pub fn verified_reader(&self, index: usize) -> anyhow::Result<std::sync::Arc<ferry_light::Reader>> {
        let validator = self.validator(index)?;
        let root = ferry_light::TrustRoot::from_genesis_file(&self.genesis_file())?;
        let period = std::time::Duration::from_secs(14 * 24 * 3600);
        Ok(std::sync::Arc::new(ferry_light::Reader::new(&[validator.rpc_url()], root, period)?))
    }

    fn validator(&self, index: usize) -> anyhow::Result<&Validator> {
        self.validators.get(index).with_context(|| format!("no validator {index}"))
    }

    fn validator_mut(&mut self, index: usize) -> anyhow::Result<&mut Validator> {
        self.validators.get_mut(index).with_context(|| format!("no validator {index}"))
    }

    /// Starts every validator.
    ///
    /// # Errors
    /// When a process cannot be started.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for index in 0..self.validators.len() {
            self.start(index)?;
        }
        Ok(())
    }

    /// Starts validator `index`: the application first (waiting for its ABCI port), then CometBFT.
    ///
    /// # Errors
    /// When a process cannot be started or the application does not come up.
    pub fn start(&mut self, index: usize) -> anyhow::Result<()> {
        let app = self.spec.app;
        let over_tcp = self.spec.abci_over_tcp;
        let min_retain_blocks = self.spec.min_retain_blocks.get(index).copied().unwrap_or(0);
        let (snapshot_interval, snapshot_chunk_bytes) = (self.spec.snapshot_interval, self.spec.snapshot_chunk_bytes);
        let tools = self.tools.clone();
        let validator = self.validator_mut(index)?;
        if validator.cometbft.is_some() {
            bail!("validator {index} is already running");
        }
        let ip = validator.ip;
        let mut app_command = match app {
            AppKind::Ferry => {
                let mut command = Command::new(&tools.ferry_chain);
                command
                    .arg("--home")
                    .arg(validator.home.join("ferry"))
                    .arg("--abci-addr")
                    .arg(if over_tcp {
                        format!("tcp://{ip}:{ABCI_PORT}")
                    } else {
                        format!("unix://{}", abci_socket(&validator.home).display())
                    })
                    .args(["--metrics-addr", &format!("{ip}:{APP_METRICS_PORT}")])
                    .args(["--min-retain-blocks", &min_retain_blocks.to_string()])
                    .env("RUST_LOG", std::env::var("FERRY_CHAIN_LOG").unwrap_or_else(|_| "info".to_owned()));
                Some(command)
            }
            AppKind::KvstoreSocket => {
                validator.app_program = "abci-cli";
                let mut command = Command::new(tools.cometbft.with_file_name("abci-cli"));
                command.args(["kvstore", "--log_level", "error", "--address", &format!("tcp://{ip}:{ABCI_PORT}")]);
                Some(command)
            }
            AppKind::Kvstore => None,
        };
        if let (AppKind::Ferry, Some(command)) = (app, app_command.as_mut()) {
            command.args(["--snapshot-interval", &snapshot_interval.to_string()]);
            if let Some(bytes) = snapshot_chunk_bytes {
                command.args(["--snapshot-chunk-bytes", &bytes.to_string()]);
            }
        }
        if let Some(mut command) = app_command {
            let log = validator.home.join("app.log");
            let child = command
                .stdin(Stdio::null())
                .stdout(log_file(&log)?)
                .stderr(log_file(&log)?)
                .process_group(0)
                .spawn()
                .with_context(|| format!("starting the application of validator {index}"))?;
            validator.app = Some(child);
            let listening = match app {
                AppKind::Ferry if !over_tcp => {
                    wait_for_unix_socket(&abci_socket(&validator.home), Duration::from_secs(20))
                }
                _ => wait_for_port(SocketAddr::from((ip, ABCI_PORT)), Duration::from_secs(20)),
            };
            listening.with_context(|| format!("application of validator {index} (log: {})", log.display()))?;
        }
        let child = Command::new(&tools.cometbft)
            .args(["start", "--home"])
            .arg(&validator.home)
            .stdin(Stdio::null())
            .stdout(log_file(&validator.home.join("cometbft.log"))?)
            .stderr(log_file(&validator.home.join("cometbft.log"))?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", tools.cometbft.display()))?;
        validator.cometbft = Some(child);
        Ok(())
    }

    /// Kills validator `index`'s processes with SIGKILL (a crash, not a shutdown).
    ///
    /// # Errors
    /// When the index is out of range.
    pub fn kill(&mut self, index: usize) -> anyhow::Result<()> {
        let validator = self.validator_mut(index)?;
        for child in [validator.cometbft.take(), validator.app.take()].into_iter().flatten() {
            kill_child(child);
        }
        Ok(())
    }

    /// Waits until every running validator's RPC reports at least `height`.
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait_for_height(&self, height: u64, timeout: Duration) -> anyhow::Result<()> {
        for validator in self.validators.iter().filter(|v| v.cometbft.is_some()) {
            FerryClient::new(&validator.rpc_url())?
                .wait_for_height(height, timeout)
                .await
                .with_context(|| format!("validator {} (logs in {})", validator.index, validator.home.display()))?;
        }
        Ok(())
    }

    /// PIDs of every running validator's processes, with their program names.
    pub fn pids(&self) -> Vec<(u32, &'static str)> {
        self.validators.iter().flat_map(Validator::pids).collect()
    }

    /// Hands the processes over: writes `<dir>/pids` (one `pid name` per line) and forgets them,
    /// so they outlive this process. [`stop_from_pid_file`] stops them.
    ///
    /// # Errors
    /// When the pid file cannot be written.
    pub fn detach(mut self) -> anyhow::Result<()> {
        self.spec.remove_on_drop = false;
        let lines: String = self.pids().into_iter().map(|(pid, name)| format!("{pid} {name}\n")).collect();
        for validator in &mut self.validators {
            validator.app = None;
            validator.cometbft = None;
        }
        // Appended: a node joined to a detached network adds its processes to the list.
        let mut pids = OpenOptions::new().create(true).append(true).open(self.spec.dir.join("pids"))?;
        std::io::Write::write_all(&mut pids, lines.as_bytes())?;
        Ok(())
    }

    /// Adds a full node (not a validator) that joins the running network by CometBFT state
    /// sync — from the validators' snapshots, not by replaying blocks from genesis — trusting
    /// the header validator 0 reports now, and starts it. Returns its index.
    ///
    /// # Errors
    /// When validator 0 cannot be read, the node's home cannot be made, or it does not start.
    pub async fn join_by_state_sync(&mut self) -> anyhow::Result<usize> {
        let index = self.validators.len();
        let ip = self.spec.ip(index);
        if [P2P_PORT, RPC_PORT, ABCI_PORT].iter().any(|port| TcpListener::bind((ip, *port)).is_err()) {
            bail!("{ip} is taken: no room for node {index} on this subnet");
        }
        let trusted = self.client(0)?;
        let trust_height = trusted.latest_height().await?;
        let header = tendermint_rpc::Client::header(trusted.rpc(), tendermint::block::Height::try_from(trust_height)?)
            .await
            .context("the trusted header from validator 0")?
            .header;
        let home = self.spec.dir.join(format!("node{index}"));
        let output = Command::new(&self.tools.cometbft)
            .args(["init", "--home"])
            .arg(&home)
            .output()
            .with_context(|| format!("running {} init", self.tools.cometbft.display()))?;
        if !output.status.success() {
            bail!("cometbft init failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let first = self.validator(0)?.home.clone();
        fs::copy(first.join("config/genesis.json"), home.join("config/genesis.json"))?;
        Self::configure(&self.spec, index, &home)?;
        let peers_of = |home: &Path| -> anyhow::Result<String> {
            let config: DocumentMut = fs::read_to_string(home.join("config/config.toml"))?.parse()?;
            Ok(config["p2p"]["persistent_peers"].as_str().unwrap_or_default().to_owned())
        };
        // Validator 0's peers are the others; with validator 0 itself, every validator.
        let node_id = Command::new(&self.tools.cometbft).args(["show-node-id", "--home"]).arg(&first).output()?;
        let first_peer = format!("{}@{}:{P2P_PORT}", String::from_utf8_lossy(&node_id.stdout).trim(), self.spec.ip(0));
        let peers = [first_peer, peers_of(&first)?].into_iter().filter(|peer| !peer.is_empty()).collect::<Vec<_>>();
        let config_path = home.join("config/config.toml");
        let mut config: DocumentMut = fs::read_to_string(&config_path)?.parse()?;
        config["moniker"] = value(format!("fullnode{index}"));
        config["p2p"]["persistent_peers"] = value(peers.join(","));
        let rpc_servers = (0..self.spec.validators.min(2)).map(|i| format!("http://{}:{RPC_PORT}", self.spec.ip(i)));
        config["statesync"]["enable"] = value(true);
        config["statesync"]["rpc_servers"] = value(rpc_servers.collect::<Vec<_>>().join(","));
        config["statesync"]["trust_height"] = value(i64::try_from(trust_height)?);
        config["statesync"]["trust_hash"] = value(header.hash().to_string());
        config["statesync"]["trust_period"] = value("168h0m0s");
        config["statesync"]["discovery_time"] = value("5s");
        fs::write(&config_path, config.to_string())?;
        self.validators.push(Validator { index, ip, home, cometbft: None, app: None, app_program: "ferry-chain" });
        self.start(index)?;
        Ok(index)
    }
}

fn kill_child(mut child: Child) {
    // SIGKILL; the child may already have exited, which is fine.
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Network {
    fn drop(&mut self) {
        for validator in &mut self.validators {
            for child in [validator.cometbft.take(), validator.app.take()].into_iter().flatten() {
                kill_child(child);
            }
        }
        if self.spec.remove_on_drop && !std::thread::panicking() {
            // Best effort: a leftover directory only costs disk space.
            let _ = fs::remove_dir_all(&self.spec.dir);
        }
    }
}

/// Stops the processes listed in `<dir>/pids` — only those whose command line still names the
/// program recorded there (a recycled PID is left alone): SIGTERM, then SIGKILL after 10 s.
/// Returns how many were stopped.
///
/// # Errors
/// When the pid file cannot be read.
pub fn stop_from_pid_file(dir: &Path) -> anyhow::Result<usize> {
    let path = dir.join("pids");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(0);
    };
    let ours: Vec<u32> = text
        .lines()
        .filter_map(|line| {
            let (pid, name) = line.split_once(' ')?;
            let pid: u32 = pid.parse().ok()?;
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline).contains(name).then_some(pid)
        })
        .collect();
    let signal = |sig: &str, pid: u32| {
        let _ = Command::new("kill").args([sig, &pid.to_string()]).stderr(Stdio::null()).status();
    };
    for pid in &ours {
        signal("-TERM", *pid);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && ours.iter().any(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in ours.iter().filter(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
        signal("-KILL", *pid);
    }
    fs::remove_file(&path)?;
    Ok(ours.len())
}
