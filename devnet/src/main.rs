//! `ferry-devnet`: run a local Ferry network (`make devnet`) and stop it (`make devnet-down`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_devnet::anvil::{self, Anvil};
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_devnet::network::{self, APP_METRICS_PORT, COMETBFT_METRICS_PORT, RPC_PORT};
use ferry_devnet::postgres::Postgres;
use ferry_devnet::relayer::{RelayerProcess, RelayerSetup};
use ferry_devnet::signer::{SignerConfigSpec, SignerProcess, write_federation_keys};
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_types::release::eth::EthAddress;

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

/// The devnet's network; Ethereum releases pay out of `vault`, and `token` can be bridged.
fn spec(dir: &std::path::Path, validators: usize, vault: EthAddress, token: EthAddress) -> anyhow::Result<NetworkSpec> {
    let dir = if dir.is_absolute() { dir.to_path_buf() } else { std::env::current_dir()?.join(dir) };
    let mut genesis = accounts::genesis(USERS, validators)?;
    accounts::with_ethereum(&mut genesis, anvil::CHAIN_ID, vault, &[token]);
    Ok(NetworkSpec {
        dir: dir.join("chain"),
        validators,
        subnet: SUBNET,
        chain_id: CHAIN_ID.to_owned(),
        app: ferry_devnet::AppKind::Ferry,
        genesis,
        timeout_commit: Duration::from_millis(1000),
        timeout_propose: Duration::from_millis(3000),
        mempool_size: 20_000,
        remove_on_drop: false,
    })
}

async fn up(dir: PathBuf, validators: usize, reset: bool) -> anyhow::Result<()> {
    let chain_dir = chain_dir(&dir)?;
    let bridge_dir = dir.join("bridge");
    if chain_dir.join("pids").exists() {
        if !reset {
            let client = ferry_client::FerryClient::new(&format!(
                "http://{}:{RPC_PORT}",
                std::net::Ipv4Addr::new(127, 0, SUBNET, 1)
            ))?;
            if client.latest_height().await.is_ok() {
                println!("devnet already running (`make devnet-down` stops it; `--reset` starts afresh)");
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
    std::fs::create_dir_all(&bridge_dir)?;

    // The parent chains first: the genesis names the vault anvil deploys.
    println!("starting PostgreSQL, btcd (regtest) and anvil");
    let parents = start_parents(&bridge_dir).await?;
    let (vault, token) = (parents.anvil.vault().into_array(), parents.anvil.token().into_array());
    let spec = spec(&dir, validators, EthAddress::from_bytes(vault), EthAddress::from_bytes(token))?;

    let tools = Tools::locate()?;
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
    let bridge = start_services(&bridge_dir, &spec, parents).await?;
    print_endpoints(&spec, &dir)?;
    print_bridge(&bridge, &dir)?;
    Ok(())
}

fn chain_dir(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let dir = if dir.is_absolute() { dir.to_path_buf() } else { std::env::current_dir()?.join(dir) };
    Ok(dir.join("chain"))
}

/// The parent chains and the database, started before the sidechain.
struct Parents {
    postgres: Option<Postgres>,
    database_base: String,
    btcd: Btcd,
    anvil: Anvil,
}

/// Starts PostgreSQL (unless `DATABASE_URL` is set), btcd regtest with 101 blocks mined, and anvil
/// with the vault trusting the devnet federation.
async fn start_parents(bridge_dir: &std::path::Path) -> anyhow::Result<Parents> {
    let (database_base, postgres) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let postgres = Postgres::start(&bridge_dir.join("postgres")).await?;
            (postgres.url(), Some(postgres))
        }
    };
    let wallet = RegtestWallet::from_seed(*b"ferry-devnet/regtest-miner/00000")?;
    let btcd = Btcd::start(&bridge_dir.join("btcd"), wallet.address()).await?;
    if btcd.rpc().get_block_count().await? < 101 {
        btcd.mine(101).await?;
    }
    let anvil = Anvil::start_with_federation(accounts::federation_vault_key()?).await?;
    Ok(Parents { postgres, database_base, btcd, anvil })
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
}

/// Starts one relayer and one signer per federation member against the running chain and
/// parents, and records every PID the devnet started in `<dir>/bridge/pids`.
async fn start_services(
    bridge_dir: &std::path::Path,
    spec: &NetworkSpec,
    parents: Parents,
) -> anyhow::Result<BridgeEndpoints> {
    let Parents { postgres, database_base, btcd, anvil } = parents;
    let mut pids: Vec<(u32, &'static str)> = Vec::new();
    let record = |pid: Option<u32>, name: &'static str, pids: &mut Vec<(u32, &'static str)>| {
        if let Some(pid) = pid {
            pids.push((pid, name));
        }
    };
    println!("starting {0} relayers and {0} signers", spec.validators);
    let keys = write_federation_keys(&bridge_dir.join("keys"))?;
    let token_denom = ferry_types::Denom::erc20(&EthAddress::from_bytes(anvil.token().into_array()));
    let mut endpoints = BridgeEndpoints {
        bitcoin_rpc: btcd.rpc_url(),
        bitcoin_password_file: btcd.rpc_password_file(),
        ethereum_rpc: anvil.rpc_url().to_owned(),
        vault: format!("{:#x}", anvil.vault()),
        token: format!("{:#x}", anvil.token()),
        database: database_base.clone(),
        relayer_metrics: Vec::new(),
        signer_metrics: Vec::new(),
    };
    for member in 0..spec.validators {
        let name = format!("relayer_{member}");
        let database_url = match &postgres {
            Some(postgres) => postgres.create_database(&name).await?,
            None => ferry_devnet::postgres::url_with_database(&database_base, &name),
        };
        let relayer = RelayerProcess::start(RelayerSetup {
            dir: bridge_dir.join(format!("relayer{member}")),
            member,
            chain_rpc: format!("http://{}:{RPC_PORT}", spec.ip(member)),
            database_url,
            bitcoin: Some((
                endpoints.bitcoin_rpc.clone(),
                btcd.rpc_user().to_owned(),
                endpoints.bitcoin_password_file.clone(),
            )),
            ethereum: Some((endpoints.ethereum_rpc.clone(), endpoints.vault.clone())),
            confirmations: 2,
            poll_interval: "1s".to_owned(),
        })?;
        endpoints.relayer_metrics.push(relayer.metrics_url());
        record(relayer.detach(), "ferry-relayer", &mut pids);

        let name = format!("signer_{member}");
        let database_url = match &postgres {
            Some(postgres) => postgres.create_database(&name).await?,
            None => ferry_devnet::postgres::url_with_database(&database_base, &name),
        };
        let signer = SignerProcess::start(
            SignerConfigSpec::for_member(
                &keys,
                member,
                bridge_dir.join(format!("signer{member}")),
                format!("http://{}:{RPC_PORT}", spec.ip(member)),
                database_url,
            )?
            .with_ethereum(anvil::CHAIN_ID, endpoints.vault.clone())
            .with_cap(token_denom.to_string(), "1000000000000000000000000"),
        )?;
        endpoints.signer_metrics.push(signer.metrics_url());
        record(signer.detach(), "ferry-signer", &mut pids);
    }
    record(anvil.detach(), "anvil", &mut pids);
    record(btcd.detach(), "btcd", &mut pids);
    if let Some(postgres) = postgres {
        record(postgres.detach(), "postgres", &mut pids);
    }
    let lines: String = pids.iter().map(|(pid, name)| format!("{pid} {name}\n")).collect();
    std::fs::write(bridge_dir.join("pids"), lines)?;
    Ok(endpoints)
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
    let mut env = std::fs::read_to_string(dir.join("env")).unwrap_or_default();
    env.push_str(&format!(
        "FERRY_BITCOIN_RPC={}\nFERRY_BITCOIN_RPC_PASSWORD_FILE={}\nFERRY_ETHEREUM_RPC={}\nFERRY_VAULT={}\nFERRY_TEST_TOKEN={}\n",
        bridge.bitcoin_rpc,
        bridge.bitcoin_password_file.display(),
        bridge.ethereum_rpc,
        bridge.vault,
        bridge.token
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
