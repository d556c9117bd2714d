//! `ferry-devnet`: run a local Ferry network (`make devnet`) and stop it (`make devnet-down`).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_devnet::network::{self, APP_METRICS_PORT, COMETBFT_METRICS_PORT, RPC_PORT};
use ferry_devnet::relayer::RelayerProcess;
use ferry_devnet::signer::SignerProcess;
use ferry_devnet::system::{System, SystemSpec};
use ferry_devnet::{NetworkSpec, accounts};
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
    /// Start the devnet (resuming its state if it exists) and return once blocks are produced.
    Up {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Wipe the existing state first.
        #[arg(long)]
        reset: bool,
    },
    /// Stop every process the devnet started.
    Down,
}

const CHAIN_ID: &str = "ferry-devnet";
/// The devnet's validators listen on 127.0.SUBNET.(i+1) (tests use other subnets).
const SUBNET: u8 = 0;
/// Funded demo/user accounts in the devnet genesis.
const USERS: usize = 16;

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
        remove_on_drop: false,
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
    let fresh = reset || !chain_dir.join("node0/config/genesis.json").exists();
    if fresh && bridge_dir.exists() {
        std::fs::remove_dir_all(&bridge_dir).context("wiping the old bridge state")?;
    }
    if fresh {
        println!("creating a {validators}-validator devnet in {}", dir.display());
    } else {
        println!("resuming the devnet in {}", dir.display());
    }
    println!(
        "starting PostgreSQL, btcd (regtest), anvil, {validators} validators, {validators} relayers, {validators} signers and Prometheus"
    );
    let system = System::start(SystemSpec {
        network: network_spec(chain_dir, validators),
        users: USERS,
        bridge_dir: bridge_dir.clone(),
        fresh,
        confirmations: 2,
        poll_interval: "1s".to_owned(),
    })
    .await?;
    let bridge = BridgeEndpoints::of(&system);
    let spec = system.network.spec().clone();
    let pids = system.detach()?;
    let lines: String = pids.iter().map(|(pid, name)| format!("{pid} {name}\n")).collect();
    std::fs::write(bridge_dir.join("pids"), lines)?;
    print_endpoints(&spec, &dir)?;
    print_bridge(&bridge, &dir)?;
    Ok(())
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

fn print_bridge(bridge: &BridgeEndpoints, dir: &std::path::Path) -> anyhow::Result<()> {
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
    let mut env = std::fs::read_to_string(dir.join("env")).unwrap_or_default();
    env.push_str(&format!(
        "FERRY_BITCOIN_RPC={}\nFERRY_BITCOIN_RPC_PASSWORD_FILE={}\nFERRY_ETHEREUM_RPC={}\nFERRY_VAULT={}\nFERRY_TEST_TOKEN={}\nFERRY_PROMETHEUS={}\n",
        bridge.bitcoin_rpc,
        bridge.bitcoin_password_file.display(),
        bridge.ethereum_rpc,
        bridge.vault,
        bridge.token,
        bridge.prometheus
    ));
    std::fs::write(dir.join("env"), env)?;
    Ok(())
}

fn print_endpoints(spec: &NetworkSpec, dir: &std::path::Path) -> anyhow::Result<()> {
    let mut env = String::new();
    println!("\nFerry devnet `{}` is running:", spec.chain_id);
    for index in 0..spec.validators {
        let ip = spec.ip(index);
        println!(
            "  validator {index}: rpc http://{ip}:{RPC_PORT}  app metrics http://{ip}:{APP_METRICS_PORT}/metrics  cometbft metrics http://{ip}:{COMETBFT_METRICS_PORT}/metrics"
        );
    }
    let rpc = format!("http://{}:{RPC_PORT}", spec.ip(0));
    env.push_str(&format!("FERRY_CHAIN_ID={}\nFERRY_NODE={rpc}\n", spec.chain_id));
    for index in 0..spec.validators {
        env.push_str(&format!("FERRY_VALIDATOR{index}_RPC=http://{}:{RPC_PORT}\n", spec.ip(index)));
    }
    let demo = accounts::user_key(0)?.address();
    env.push_str(&format!("FERRY_DEMO_ADDRESS={demo}\n"));
    std::fs::write(dir.join("env"), env).context("writing the devnet env file")?;
    println!("  demo account: {demo} (seed `ferry-devnet/user/0`)");
    println!("  logs: {}/node*/{{cometbft,app}}.log", spec.dir.display());
    println!("  endpoints written to {}/env; stop with `make devnet-down`", dir.display());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Up { validators, reset } => up(args.dir, validators, reset).await,
        Command::Down => {
            // Relayers first (they hold database connections), then the rest.
            let bridge = network::stop_from_pid_file(&args.dir.join("bridge"))?;
            let chain = network::stop_from_pid_file(&args.dir.join("chain"))?;
            println!("stopped {} devnet processes", bridge + chain);
            Ok(())
        }
    }
}
