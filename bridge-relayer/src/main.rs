//! `ferry-relayer`: a federation member's relayer — deposits attested, signed releases delivered
//! and attested — or, with `--deliver-only`, a carrier of signed releases (see the library docs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_client::FerryClient;
use ferry_daemon::endpoint;
use ferry_daemon::logging::{self, LogOutput};
use ferry_daemon::metrics::now_seconds;
use ferry_parent_chains::bitcoin::BitcoinRpc;
use ferry_parent_chains::ethereum::{EthAddress, EthereumWatcher, Wallet};
use ferry_relayer::config::{Config, ConfigFile, read_secret};
use ferry_relayer::delivery::{BitcoinDelivery, Delivery, EthereumDelivery};
use ferry_relayer::metrics::Metrics;
use ferry_relayer::service::{BitcoinWatch, EthereumWatch, Relayer, peg};
use ferry_relayer::store::Store;
use ferry_types::AccountKey;

/// Ferry relayer: deposits in, releases out.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML; see deploy/relayer.example.toml).
    #[arg(long, env = "FERRY_RELAYER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Overrides `chain.rpc`.
    #[arg(long, env = "FERRY_RELAYER_CHAIN_RPC", global = true)]
    chain_rpc: Option<String>,
    /// PostgreSQL URL (overrides `database.url_file`).
    #[arg(long, env = "FERRY_RELAYER_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Overrides `metrics.listen`.
    #[arg(long, env = "FERRY_RELAYER_METRICS_LISTEN", global = true)]
    metrics_listen: Option<SocketAddr>,
    /// Carry signed releases only, attesting nothing (sets `delivery.deliver_only`): for a
    /// relayer that is not a federation member.
    #[arg(long, global = true)]
    deliver_only: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Watch the parent chains and attest deposits; deliver and attest signed releases.
    Run,
    /// Configuration checks.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Audit log checks.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Parse and check the configuration; print the effective settings.
    Validate,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the audit log's hash chain and name the first broken row.
    Verify,
}

fn load_config(args: &Args) -> anyhow::Result<Config> {
    let path = args.config.as_ref().context("no configuration: pass --config or set FERRY_RELAYER_CONFIG")?;
    let mut config = Config::load(path)?;
    if let Some(rpc) = &args.chain_rpc {
        config.chain.rpc = rpc.clone();
    }
    if let Some(listen) = args.metrics_listen {
        config.metrics.listen = listen;
    }
    if args.deliver_only {
        config.delivery.deliver_only = true;
    }
    config.validate()?;
    Ok(config)
}

fn database_url(args: &Args, config: &Config) -> anyhow::Result<String> {
    if let Some(url) = &args.database_url {
        return Ok(url.clone());
    }
    let path = config
        .database
        .url_file
        .as_ref()
        .context("no database: set database.url_file, FERRY_RELAYER_DATABASE_URL or --database-url")?;
    Ok(read_secret("database.url_file", path)?)
}

/// `/metrics`, and `/health`: 503 naming every chain not polled for `stale_after`.
async fn serve_metrics(listen: SocketAddr, metrics: Metrics, stale_after: Duration) -> anyhow::Result<()> {
    let health_metrics = metrics.clone();
    let health = move || {
        let now = now_seconds();
        let stale: Vec<String> = ["btc", "eth", "sidechain"]
            .into_iter()
            .filter_map(|chain| {
                let last = health_metrics.last_poll.with_label_values(&[chain]).get();
                (last > 0.0 && now - last > stale_after.as_secs_f64())
                    .then(|| format!("{chain} not polled for {:.0}s", now - last))
            })
            .collect();
        if stale.is_empty() { Ok(()) } else { Err(stale.join("; ")) }
    };
    Ok(endpoint::serve(listen, move || metrics.render(), health).await?)
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let config = load_config(args)?;
    let metrics = Metrics::new()?;
    let store = Store::connect(&database_url(args, &config)?).await?;
    let chain = FerryClient::new(&config.chain.rpc)?;

    let observer = |label: &'static str, metrics: &Metrics| {
        let metrics = metrics.clone();
        move |_method: &str, elapsed: Duration, ok: bool| metrics.observe_rpc(label, elapsed.as_secs_f64(), ok)
    };
    let bitcoin_rpc = match &config.bitcoin {
        None => None,
        Some(bitcoin) => {
            let password = read_secret("bitcoin.rpc_password_file", &bitcoin.rpc_password_file)?;
            Some(
                BitcoinRpc::new(&bitcoin.rpc, &bitcoin.rpc_user, &password)?
                    .with_observer(Arc::new(observer("btc", &metrics))),
            )
        }
    };
    let ethereum_watcher = match &config.ethereum {
        None => None,
        Some(ethereum) => {
            let vault: EthAddress = ethereum.vault.parse().context("ethereum.vault")?;
            Some(EthereumWatcher::connect(&ethereum.rpc, vault)?.with_observer(observer("eth", &metrics)))
        }
    };
    let delivery = if config.delivery.enabled {
        let ethereum = match (&config.ethereum, &ethereum_watcher) {
            (Some(ethereum), Some(watcher)) => {
                let wallet = match &config.delivery.ethereum_key_file {
                    Some(path) => {
                        let key = read_secret("delivery.ethereum_key_file", path)?;
                        Some(Wallet::connect(&ethereum.rpc, key.trim())?.with_observer(observer("eth", &metrics)))
                    }
                    None => None,
                };
                Some(EthereumDelivery {
                    watcher: watcher.clone(),
                    wallet,
                    policy: ethereum.confirmations.clone(),
                    start_block: ethereum.start_block,
                    max_log_range: ethereum.max_log_range,
                })
            }
            _ => None,
        };
        let bitcoin = match (&config.bitcoin, &bitcoin_rpc) {
            (Some(bitcoin), Some(rpc)) => Some(BitcoinDelivery {
                rpc: rpc.clone(),
                policy: bitcoin.confirmations.clone(),
                search_depth: config.delivery.bitcoin_search_depth,
            }),
            _ => None,
        };
        Some(Delivery { store: store.clone(), chain: chain.clone(), metrics: metrics.clone(), bitcoin, ethereum })
    } else {
        None
    };
    let delivery_poll = config.delivery.poll_interval;
    let bitcoin_poll = config.bitcoin.as_ref().map_or(Duration::from_secs(2), |b| b.poll_interval);
    let ethereum_poll = config.ethereum.as_ref().map_or(Duration::from_secs(1), |e| e.poll_interval);
    let stale_after =
        bitcoin_poll.max(ethereum_poll).max(delivery_poll).saturating_mul(10).max(Duration::from_secs(30));
    let deliver = |attester| async move {
        match &delivery {
            Some(delivery) => delivery.run(attester, delivery_poll).await,
            None => std::future::pending().await,
        }
    };

    if config.delivery.deliver_only {
        tracing::info!(metrics = %config.metrics.listen, bitcoin = config.bitcoin.is_some(), ethereum = config.ethereum.is_some(), ethereum_wallet = config.delivery.ethereum_key_file.is_some(), "ferry-relayer starting (deliver-only)");
        return tokio::select! {
            result = serve_metrics(config.metrics.listen, metrics, stale_after) => result,
            () = deliver(None) => Ok(()),
        };
    }

    let key_file = config.chain.member_key_file.as_ref().context("chain.member_key_file is not set")?;
    let secret = read_secret("chain.member_key_file", key_file)?;
    let member = AccountKey::from_secret_bytes(&hex::decode(secret.trim()).context("chain.member_key_file: not hex")?)
        .context("chain.member_key_file")?;
    let bitcoin = match (&config.bitcoin, bitcoin_rpc) {
        (Some(bitcoin), Some(rpc)) => Some(BitcoinWatch {
            rpc,
            peg: peg(&chain).await?,
            policy: bitcoin.confirmations.clone(),
            start_height: bitcoin.start_height,
        }),
        _ => None,
    };
    let ethereum = match (&config.ethereum, ethereum_watcher) {
        (Some(ethereum), Some(watcher)) => Some(EthereumWatch {
            watcher,
            policy: ethereum.confirmations.clone(),
            start_block: ethereum.start_block,
            max_log_range: ethereum.max_log_range,
            finality: ethereum.finality,
        }),
        _ => None,
    };
    tracing::info!(member = %member.address(), metrics = %config.metrics.listen, bitcoin = config.bitcoin.is_some(), ethereum = config.ethereum.is_some(), delivery = config.delivery.enabled, ethereum_wallet = config.delivery.ethereum_key_file.is_some(), "ferry-relayer starting");

    let relayer = Relayer::new(store, chain, member, metrics.clone(), bitcoin, ethereum);
    tokio::select! {
        result = serve_metrics(config.metrics.listen, metrics, stale_after) => result,
        ((), ()) = async { tokio::join!(relayer.run(bitcoin_poll, ethereum_poll), deliver(Some(&relayer.attester))) } => Ok(()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init(LogOutput::Stdout);
    let args = Args::parse();
    match &args.command {
        Command::Run => run(&args).await,
        Command::Config { command: ConfigCommand::Validate } => {
            let config = load_config(&args)?;
            println!("configuration OK\n{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let config = load_config(&args).ok();
            let url = match (&args.database_url, config.as_ref()) {
                (Some(url), _) => url.clone(),
                (None, Some(config)) => database_url(&args, config)?,
                (None, None) => anyhow::bail!("no database: pass --database-url or a valid --config"),
            };
            let report = Store::connect(&url).await?.verify().await?;
            println!("{report}");
            if report.is_intact() { Ok(()) } else { std::process::exit(1) }
        }
    }
}
