//! `ferry-devnet`: run a local Ferry network (`make devnet`) and stop it (`make devnet-down`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_devnet::network::{self, APP_METRICS_PORT, COMETBFT_METRICS_PORT, RPC_PORT};
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};

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
/// Funded demo/user accounts in the devnet genesis.
const USERS: usize = 16;

fn spec(dir: &std::path::Path, validators: usize) -> anyhow::Result<NetworkSpec> {
    let dir = if dir.is_absolute() { dir.to_path_buf() } else { std::env::current_dir()?.join(dir) };
    Ok(NetworkSpec {
        dir: dir.join("chain"),
        validators,
        subnet: 0,
        chain_id: CHAIN_ID.to_owned(),
        app: ferry_devnet::AppKind::Ferry,
        genesis: accounts::genesis(USERS, validators)?,
        timeout_commit: Duration::from_millis(1000),
        timeout_propose: Duration::from_millis(3000),
        mempool_size: 20_000,
        remove_on_drop: false,
    })
}

async fn up(dir: PathBuf, validators: usize, reset: bool) -> anyhow::Result<()> {
    let spec = spec(&dir, validators)?;
    let chain_dir = spec.dir.clone();
    if chain_dir.join("pids").exists() {
        if reset {
            network::stop_from_pid_file(&chain_dir)?;
        } else {
            let client = ferry_client::FerryClient::new(&format!("http://{}:{RPC_PORT}", spec.ip(0)))?;
            if client.latest_height().await.is_ok() {
                println!("devnet already running");
                print_endpoints(&spec, &dir)?;
                return Ok(());
            }
            network::stop_from_pid_file(&chain_dir)?;
        }
    }
    let tools = Tools::locate()?;
    let fresh = reset || !chain_dir.join("node0/config/genesis.json").exists();
    let mut network = if fresh {
        println!("creating a {validators}-validator devnet in {}", chain_dir.display());
        Network::create(spec.clone(), tools)?
    } else {
        println!("resuming the devnet in {}", chain_dir.display());
        Network::existing(spec.clone(), tools)
    };
    network.start_all()?;
    print!("waiting for blocks");
    let client = network.client(0)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let height = loop {
        match client.wait_for_height(2, Duration::from_secs(2)).await {
            Ok(height) => break height,
            Err(_) if std::time::Instant::now() < deadline => {
                print!(".");
                std::io::Write::flush(&mut std::io::stdout())?;
            }
            Err(_) => anyhow::bail!("no blocks after 90 s; see the logs in {}", chain_dir.display()),
        }
    };
    println!(" height {height}");
    network.detach()?;
    print_endpoints(&spec, &dir)?;
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
            let chain_dir = args.dir.join("chain");
            let stopped = network::stop_from_pid_file(&chain_dir)?;
            println!("stopped {stopped} devnet processes");
            Ok(())
        }
    }
}
