//! `ferry-devnet`: run a local Ferry network (`make devnet`) and stop it (`make devnet-down`).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_devnet::network::{self, APP_METRICS_PORT, COMETBFT_METRICS_PORT, RPC_PORT};
use ferry_devnet::process::{ServiceCommand, ServiceProcess};
use ferry_devnet::relayer::RelayerProcess;
use ferry_devnet::signer::SignerProcess;
use ferry_devnet::system::{self, System, SystemSpec};
use ferry_devnet::{NetworkSpec, demo, tools};
use ferry_types::GenesisState;

/// Local Ferry network on loopback.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Directory holding the devnet's state and logs.
    #[arg(long, env = "FERRY_DEVNET_DIR", default_value = ".devnet", global = true)]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a fresh devnet (replacing a stopped one: its parent chains cannot resume) and return
    /// once blocks are produced.
    Up {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Stop a running devnet and start a fresh one.
        #[arg(long)]
        reset: bool,
    },
    /// Stop every process the devnet started.
    Down,
    /// Add a full node to the running devnet that joins by state sync (from the validators'
    /// snapshots, written every 50 blocks; CometBFT's light client trusts the header validator 0
    /// shows now), and return once it has caught up. `down` stops it, `up` resumes it.
    Join {
        /// Number of validators the devnet was started with.
        #[arg(long, default_value_t = 4)]
        validators: usize,
    },
    /// Produce parent-chain blocks (one btcd block and one anvil block every `--interval`), so
    /// deposits and releases gather confirmations; `up` runs it in the background.
    Mine {
        /// btcd's RPC URL.
        #[arg(long)]
        bitcoin_rpc: String,
        /// File holding btcd's RPC password (user `ferry`).
        #[arg(long)]
        bitcoin_password_file: PathBuf,
        /// anvil's RPC URL.
        #[arg(long)]
        ethereum_rpc: String,
        /// Milliseconds between blocks.
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
    },
}

/// Blocks between two vault heartbeats on the devnet.
const DEVNET_VAULT_HEARTBEAT_BLOCKS: u64 = 100;
const CHAIN_ID: &str = "ferry-devnet";
/// The devnet's validators listen on 127.0.SUBNET.(i+1) (tests use other subnets).
const SUBNET: u8 = 0;
/// Funded demo/user accounts in the devnet genesis.
const USERS: usize = 16;
/// The devnet's validators write a state-sync snapshot every this many blocks (`join`).
const DEVNET_SNAPSHOT_INTERVAL: u64 = 50;

/// The devnet's sidechain (its genesis is filled in by [`System::start`]).
fn network_spec(chain_dir: PathBuf, validators: usize) -> NetworkSpec {
    NetworkSpec {
        dir: chain_dir,
        validators,
        subnet: SUBNET,
        chain_id: CHAIN_ID.to_owned(),
        app: ferry_devnet::AppKind::Ferry,
        genesis: GenesisState::default(),
        timeout_commit: Duration::from_millis(1000),
        timeout_propose: Duration::from_millis(3000),
        mempool_size: 20_000,
        min_retain_blocks: Vec::new(),
        snapshot_interval: DEVNET_SNAPSHOT_INTERVAL,
        snapshot_chunk_bytes: None,
        remove_on_drop: false,
        abci_over_tcp: false,
    }
}

async fn up(dir: PathBuf, validators: usize, reset: bool) -> anyhow::Result<()> {
    let dir = if dir.is_absolute() { dir } else { std::env::current_dir()?.join(dir) };
    let chain_dir = dir.join("chain");
    let bridge_dir = dir.join("bridge");
    if chain_dir.join("pids").exists() {
        if !reset {
            let client =
                ferry_client::FerryClient::new(&format!("http://{}:{RPC_PORT}", Ipv4Addr::new(127, 0, SUBNET, 1)))?;
            if client.latest_height().await.is_ok() {
                println!("devnet already running; endpoints in {}/env (`make devnet-down` stops it)", dir.display());
                return Ok(());
            }
        }
        network::stop_from_pid_file(&bridge_dir)?;
        network::stop_from_pid_file(&chain_dir)?;
    }
    // A devnet resumes only with the parent chains it ran on: `make devnet-down` saves btcd's
    // regtest chain (btcd deletes it at every start) and anvil writes its state; without both
    // (a crash, `--reset`, an older devnet) the sidechain would count coins that no longer
    // exist, so the whole devnet starts afresh and says why.
    let ran_before = chain_dir.join("node0/config/genesis.json").exists();
    let fresh = reset || !ran_before || !system::parents_saved(&bridge_dir);
    if fresh && ran_before {
        let why = if reset { "--reset" } else { "its parent chains were not saved (`make devnet-down` saves them)" };
        println!("a devnet ran in {} before: starting a fresh one ({why})", dir.display());
    }
    if fresh && bridge_dir.exists() {
        std::fs::remove_dir_all(&bridge_dir).context("wiping the old bridge state")?;
    }
    if !fresh {
        println!("resuming the devnet in {} on its saved parent chains", dir.display());
    }
    println!("creating a {validators}-validator devnet in {}", dir.display());
    println!(
        "starting PostgreSQL, btcd (regtest), anvil, {validators} validators, {validators} relayers, {validators} signers and Prometheus"
    );
    let mut system = System::start(SystemSpec {
        network: network_spec(chain_dir, validators),
        users: USERS,
        bridge_dir: bridge_dir.clone(),
        fresh,
        confirmations: 2,
        poll_interval: "1s".to_owned(),
        scratch_databases: false,
        persist_parents: true,
        // A heartbeat to the vault every 100 blocks, so the devnet shows them on its dashboards.
        vault_heartbeat_blocks: Some(DEVNET_VAULT_HEARTBEAT_BLOCKS),
        // The Bitcoin exit on, with mainnet's two weeks of blocks before a disbursal opens.
        bitcoin_exit: Some(ferry_types::genesis::BitcoinExitParams::default()),
    })
    .await?;
    let demo = demo::create(&mut system, &dir, fresh).await?;
    let bridge = BridgeEndpoints::of(&system);
    let miner = ServiceProcess::start(
        ServiceCommand::new(std::env::current_exe()?, bridge_dir.join("miner.log"))
            .arg("mine")
            .arg("--bitcoin-rpc")
            .arg(&bridge.bitcoin_rpc)
            .arg("--bitcoin-password-file")
            .arg(&bridge.bitcoin_password_file)
            .arg("--ethereum-rpc")
            .arg(&bridge.ethereum_rpc),
    )?;
    let spec = system.network.spec().clone();
    write_chain_registry(&dir, &system, &bridge).await?;
    let mut pids: Vec<(u32, &'static str)> = miner.detach().map(|pid| (pid, "ferry-devnet")).into_iter().collect();
    pids.extend(system.detach()?);
    let lines: String = pids.iter().map(|(pid, name)| format!("{pid} {name}\n")).collect();
    std::fs::write(bridge_dir.join("pids"), lines)?;
    let mut env = Env::default();
    print_endpoints(&spec, &mut env);
    print_bridge(&bridge, &mut env);
    print_demo(&demo, &mut env);
    std::fs::write(dir.join("env"), env.0).context("writing the devnet env file")?;
    println!("  endpoints written to {}/env; stop with `make devnet-down`", dir.display());
    print_try_it(&dir);
    Ok(())
}

/// Writes the wallet registration files (`chain.json`, `assetlist.json`) into `dir`.
async fn write_chain_registry(dir: &std::path::Path, system: &System, bridge: &BridgeEndpoints) -> anyhow::Result<()> {
    let params = system.network.client(0)?.params().await?;
    let rpc_urls: Vec<String> = system.network.validators().iter().map(|validator| validator.rpc_url()).collect();
    let (_, symbol, decimals) = ferry_devnet::anvil::TEST_TOKEN;
    let token = ferry_devnet::chain_registry::ListedToken {
        address: bridge.token.parse().context("the devnet's test token address")?,
        symbol: symbol.to_owned(),
        decimals: u32::from(decimals),
    };
    ferry_devnet::chain_registry::write(dir, &system.network.spec().chain_id, &rpc_urls, &params, &[token])?;
    println!(
        "  wallet registration: {0}/chain.json, {0}/assetlist.json (docs/cli.md, \"Stock Cosmos wallets\")",
        dir.display()
    );
    Ok(())
}

/// The devnet's `env` file: `export NAME=value` lines, so `source .devnet/env` sets them for the
/// shell and the programs it starts.
#[derive(Default)]
struct Env(String);

impl Env {
    fn set(&mut self, name: &str, value: impl std::fmt::Display) {
        self.0.push_str(&format!("export {name}='{value}'\n"));
    }

    /// The value [`Env::set`] wrote for `name` in the env file `text`.
    fn value(text: &str, name: &str) -> anyhow::Result<String> {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("export {name}='"))?.strip_suffix('\''))
            .map(str::to_owned)
            .with_context(|| format!("{name} is not in the env file"))
    }
}

fn print_demo(demo: &demo::Demo, env: &mut Env) {
    println!(
        "  demo user `{}`: {} (regtest {}, ethereum {}), keyring {}",
        demo::NAME,
        demo.account,
        demo.bitcoin_address,
        demo.ethereum_address,
        demo.keyring.display()
    );
    env.set("FERRY_KEYRING", demo.keyring.display());
    env.set("FERRY_FROM", demo::NAME);
    env.set("FERRY_PASSPHRASE_FILE", demo.passphrase_file.display());
    env.set("FERRY_DEMO_ADDRESS", &demo.account);
    env.set("FERRY_DEMO_BTC_ADDRESS", &demo.bitcoin_address);
    env.set("FERRY_DEMO_ETH_ADDRESS", &demo.ethereum_address);
    env.set("FERRY_CONFIRMATIONS", 2);
}

fn print_try_it(dir: &std::path::Path) {
    let env = dir.join("env");
    let bin = tools::repo_root().join("target/debug");
    println!(
        "
Try it (paste into a shell; parent-chain blocks come every 2 s):
  source {env} && export PATH={bin}:$PATH
  ferry balance
  dep=$(ferry deposit btc 0.1btc) && ferry status \"$dep\" --watch
  ferry deposit-address     # your own Bitcoin address: any wallet can pay it, no memo
  wd=$(ferry withdraw btc 0.05btc \"$FERRY_DEMO_BTC_ADDRESS\" --yes) && ferry status \"$wd\" --watch
  ferry reserves",
        env = env.display(),
        bin = bin.display()
    );
}

/// Where the bridge services of a running devnet listen.
struct BridgeEndpoints {
    bitcoin_rpc: String,
    bitcoin_password_file: std::path::PathBuf,
    ethereum_rpc: String,
    vault: String,
    token: String,
    database: String,
    relayer_metrics: Vec<String>,
    signer_metrics: Vec<String>,
    prometheus: String,
}

impl BridgeEndpoints {
    fn of(system: &System) -> Self {
        let parents = &system.parents;
        BridgeEndpoints {
            bitcoin_rpc: parents.btcd.rpc_url(),
            bitcoin_password_file: parents.btcd.rpc_password_file(),
            ethereum_rpc: parents.anvil.rpc_url().to_owned(),
            vault: parents.vault().to_string(),
            token: parents.token().to_string(),
            database: parents.postgres.url(),
            relayer_metrics: system.relayers.iter().map(RelayerProcess::metrics_url).collect(),
            signer_metrics: system.signers.iter().map(SignerProcess::metrics_url).collect(),
            prometheus: system.prometheus.url(),
        }
    }
}

fn print_bridge(bridge: &BridgeEndpoints, env: &mut Env) {
    println!(
        "  bitcoin (btcd regtest) rpc: {} (user `ferry`, password in {})",
        bridge.bitcoin_rpc,
        bridge.bitcoin_password_file.display()
    );
    println!("  ethereum (anvil) rpc: {}  vault {}  test token {}", bridge.ethereum_rpc, bridge.vault, bridge.token);
    println!("  postgres: {}", bridge.database);
    for (member, url) in bridge.relayer_metrics.iter().enumerate() {
        println!("  relayer {member} metrics: {url}");
    }
    for (member, url) in bridge.signer_metrics.iter().enumerate() {
        println!("  signer {member} metrics: {url}");
    }
    println!("  prometheus: {} (alerts: {}/alerts)", bridge.prometheus, bridge.prometheus);
    env.set("FERRY_BITCOIN_RPC", &bridge.bitcoin_rpc);
    env.set("FERRY_BITCOIN_RPC_USER", "ferry");
    env.set("FERRY_BITCOIN_RPC_PASSWORD_FILE", bridge.bitcoin_password_file.display());
    env.set("FERRY_ETHEREUM_RPC", &bridge.ethereum_rpc);
    env.set("FERRY_VAULT", &bridge.vault);
    env.set("FERRY_TEST_TOKEN", &bridge.token);
    env.set("FERRY_PROMETHEUS", &bridge.prometheus);
}

fn print_endpoints(spec: &NetworkSpec, env: &mut Env) {
    println!("\nFerry devnet `{}` is running:", spec.chain_id);
    for index in 0..spec.validators {
        let ip = spec.ip(index);
        println!(
            "  validator {index}: rpc http://{ip}:{RPC_PORT}  app metrics http://{ip}:{APP_METRICS_PORT}/metrics  cometbft metrics http://{ip}:{COMETBFT_METRICS_PORT}/metrics"
        );
    }
    env.set("FERRY_CHAIN_ID", &spec.chain_id);
    env.set("FERRY_NODE", format!("http://{}:{RPC_PORT}", spec.ip(0)));
    for index in 0..spec.validators {
        env.set(&format!("FERRY_VALIDATOR{index}_RPC"), format!("http://{}:{RPC_PORT}", spec.ip(index)));
    }
    println!("  logs: {}/node*/{{cometbft,app}}.log", spec.dir.display());
}

/// Mines one block on each parent chain every `interval`, forever; a failed round is logged and
/// retried (a node restarting must not end the devnet's block production).
async fn mine(
    bitcoin_rpc: &str,
    password_file: &std::path::Path,
    ethereum_rpc: &str,
    interval: Duration,
) -> anyhow::Result<()> {
    let password =
        std::fs::read_to_string(password_file).with_context(|| format!("reading {}", password_file.display()))?;
    let bitcoin = ferry_parent_chains::bitcoin::BitcoinRpc::new(bitcoin_rpc, "ferry", password.trim())?;
    let ethereum = ferry_parent_chains::ethereum::DevNode::connect(ethereum_rpc)?;
    loop {
        tokio::time::sleep(interval).await;
        // btcd's `generate` pays the devnet's regtest miner (btcd's --miningaddr).
        let mined: Result<Vec<String>, _> = bitcoin.call("generate", &[serde_json::json!(1)]).await;
        if let Err(error) = mined {
            eprintln!("btcd: {error}");
        }
        if let Err(error) = ethereum.mine(1).await {
            eprintln!("anvil: {error}");
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Up { validators, reset } => up(args.dir, validators, reset).await,
        Command::Mine { bitcoin_rpc, bitcoin_password_file, ethereum_rpc, interval_ms } => {
            mine(&bitcoin_rpc, &bitcoin_password_file, &ethereum_rpc, Duration::from_millis(interval_ms)).await
        }
        Command::Join { validators } => join(args.dir, validators).await,
        Command::Down => {
            // The Bitcoin chain first (btcd deletes it at its next start; anvil writes its own
            // state when stopped), then relayers (they hold database connections), then the rest.
            save_bitcoin_chain(&args.dir).await;
            let bridge = network::stop_from_pid_file(&args.dir.join("bridge"))?;
            let chain = network::stop_from_pid_file(&args.dir.join("chain"))?;
            println!("stopped {} devnet processes", bridge + chain);
            Ok(())
        }
    }
}

/// `ferry-devnet join`: a full node joins the running devnet by state sync.
async fn join(dir: PathBuf, validators: usize) -> anyhow::Result<()> {
    let dir = if dir.is_absolute() { dir } else { std::env::current_dir()?.join(dir) };
    let chain_dir = dir.join("chain");
    anyhow::ensure!(chain_dir.join("pids").exists(), "no devnet runs in {} (`make devnet` starts one)", dir.display());
    let mut network = ferry_devnet::Network::existing(network_spec(chain_dir, validators), tools::Tools::locate()?);
    let index = network.join_by_state_sync().await?;
    let node = network.client(index)?;
    let url = network.validators().get(index).map(|node| node.rpc_url()).unwrap_or_default();
    println!("node {index} joining by state sync (RPC {url}); snapshots come every {DEVNET_SNAPSHOT_INTERVAL} blocks");
    let started = std::time::Instant::now();
    loop {
        let tip = network.client(0)?.latest_height().await?;
        match node.latest_height().await {
            Ok(height) if height > 0 && height + 2 >= tip => {
                println!("node {index} caught up at height {height} in {:.0?}", started.elapsed());
                break;
            }
            Ok(height) => println!("node {index}: height {height} of {tip} ({:.0?})", started.elapsed()),
            Err(_) => println!("node {index}: starting ({:.0?})", started.elapsed()),
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "node {index} did not catch up in 5 minutes; see {}",
            network.validators().get(index).map(|node| node.home.display().to_string()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    network.detach()
}

/// Saves the running devnet's Bitcoin chain for the next `up` (read from its `env` file); a
/// devnet whose chain cannot be saved starts afresh next time, so a failure is only reported.
async fn save_bitcoin_chain(dir: &std::path::Path) {
    let saved = async {
        let env = std::fs::read_to_string(dir.join("env")).context("no env file: is a devnet running?")?;
        let value = |name: &str| Env::value(&env, name);
        let password = std::fs::read_to_string(value("FERRY_BITCOIN_RPC_PASSWORD_FILE")?)?;
        let rpc = ferry_parent_chains::bitcoin::BitcoinRpc::new(
            &value("FERRY_BITCOIN_RPC")?,
            &value("FERRY_BITCOIN_RPC_USER")?,
            password.trim(),
        )?;
        system::save_bitcoin_chain(&rpc, &dir.join("bridge")).await
    };
    match saved.await {
        Ok(tip) => println!("saved the Bitcoin chain ({tip} blocks) for the next `make devnet`"),
        Err(error) => println!("the Bitcoin chain was not saved ({error:#}): the next `make devnet` starts afresh"),
    }
}
