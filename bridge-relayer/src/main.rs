//! `ferry-relayer`: a federation member's relayer — deposits attested, signed releases delivered
//! and attested — or, with `--deliver-only`, a carrier of signed releases (see the library docs).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_audit::AuditLog;
use ferry_client::FerryClient;
use ferry_daemon::audit_anchor::Anchorer;
use ferry_daemon::endpoint;
use ferry_daemon::logging::{self, LogOutput};
use ferry_daemon::metrics::now_seconds;
use ferry_keystore::sealing::{DEFAULT_KDF_LOG_N, MAX_KDF_LOG_N, MIN_KDF_LOG_N};
use ferry_keystore::{KdfParams, passphrase};
use ferry_parent_chains::bitcoin::BitcoinRpc;
use ferry_parent_chains::ethereum::{EthAddress, EthereumWatcher, Wallet};
use ferry_relayer::attest::AttestOutcome;
use ferry_relayer::config::{AccountKeystore, Config, ConfigFile, read_secret};
use ferry_relayer::delivery::{BitcoinDelivery, Delivery, EthereumDelivery};
use ferry_relayer::metrics::Metrics;
use ferry_relayer::service::{BitcoinWatch, EthereumWatch, Relayer, wait_for_peg};
use ferry_relayer::store::Store;
use ferry_types::msg::audit::AuditLogName;
use ferry_types::{AccountKey, Address};

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
    /// The member key's keystore.
    Keystore {
        #[command(subcommand)]
        command: KeystoreCommand,
    },
    /// Apply the database migrations. Run it as the database's owner (its URL in --database-url
    /// or FERRY_RELAYER_DATABASE_URL) before the relayer starts as `ferry_relayer`, which owns
    /// no table and cannot migrate.
    Migrate,
}

#[derive(Subcommand, Debug)]
enum KeystoreCommand {
    /// Seal a plaintext member key (64 hex digits, as `chain.member_key_file` once held it) into
    /// an account keystore for `chain.member_keystore`; then delete the plaintext file.
    Seal {
        /// The plaintext key file (64 hex digits).
        #[arg(long)]
        key_file: PathBuf,
        /// File holding the passphrase to seal it under (one trailing newline is ignored).
        #[arg(long)]
        passphrase_file: PathBuf,
        /// The keystore to write (refused if it exists).
        #[arg(long)]
        out: PathBuf,
        /// scrypt cost as log2(N); lower values are only for tests.
        #[arg(
            long,
            default_value_t = DEFAULT_KDF_LOG_N,
            value_parser = clap::value_parser!(u8).range(i64::from(MIN_KDF_LOG_N)..=i64::from(MAX_KDF_LOG_N))
        )]
        kdf_log_n: u8,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Parse and check the configuration; print the effective settings.
    Validate,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the audit log's hash chain and name the first broken row; with the chain
    /// (`chain.rpc` or --chain-rpc) and the member (--member, else the account of
    /// `chain.member_keystore`), also check the log against the head this member last anchored
    /// on the chain, naming a deleted tail or a rewritten history (exit status 1).
    Verify {
        /// The member whose anchor to check against (default: the account of `chain.member_keystore`).
        #[arg(long, env = "FERRY_RELAYER_MEMBER")]
        member: Option<Address>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
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

/// The member's key, opened from its keystore before anything connects (None: deliver-only).
fn member_key(config: &Config) -> anyhow::Result<Option<AccountKey>> {
    if config.delivery.deliver_only {
        return Ok(None);
    }
    let member = config.chain.open_member_key()?;
    anyhow::ensure!(member.is_some(), "chain.member_keystore is not set");
    Ok(member)
}

/// `keystore seal`: the plaintext key sealed into a new keystore (mode 0600).
fn seal(key_file: &Path, passphrase_file: &Path, out: &Path, kdf_log_n: u8) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let hex_key = zeroize::Zeroizing::new(
        std::fs::read_to_string(key_file).with_context(|| format!("reading {}", key_file.display()))?,
    );
    let passphrase = passphrase::read_file(passphrase_file)?;
    let kdf = KdfParams::with_log_n(kdf_log_n)?;
    let keystore = AccountKeystore::seal_hex(&hex_key, &passphrase, kdf, &mut rand::rngs::OsRng)
        .with_context(|| format!("{}", key_file.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("writing {} (an existing keystore is never replaced)", out.display()))?;
    file.write_all(format!("{}\n", keystore.to_json()).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "sealed the key of member account {} into {}\nset chain.member_keystore = \"{}\" and chain.passphrase_file = \"{}\", then delete {}",
        keystore.account,
        out.display(),
        out.display(),
        passphrase_file.display(),
        key_file.display()
    );
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let config = load_config(args)?;
    let member = member_key(&config)?;
    let metrics = Metrics::new()?;
    let store = Store::connect(&database_url(args, &config)?).await?;
    let chain = FerryClient::new(&config.chain.rpc)?;
    let verified = Arc::new(config.chain.verified_reader()?);

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
        Some(Delivery {
            store: store.clone(),
            chain: chain.clone(),
            verified: verified.clone(),
            metrics: metrics.clone(),
            bitcoin,
            ethereum,
        })
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

    let member = member.context("chain.member_keystore is not set")?;
    let bitcoin = match (&config.bitcoin, bitcoin_rpc) {
        (Some(bitcoin), Some(rpc)) => Some(BitcoinWatch {
            rpc,
            peg: wait_for_peg(&chain, &verified).await,
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

    let anchorer = Anchorer::new(
        AuditLog::RELAYER,
        AuditLogName::Relayer,
        member.address(),
        config.audit_anchor,
        metrics.audit_anchor_gauges(),
    );
    let (anchor_pool, anchor_chain) = (store.pool().clone(), chain.clone());
    let relayer = Relayer::new(store, (chain, verified), member, metrics.clone(), bitcoin, ethereum);
    // The anchor goes through the relayer's attester: one transaction of the member account at a time.
    let attester = &relayer.attester;
    let anchor = anchorer.run(anchor_pool, anchor_chain, |msg| async move {
        match attester.send(msg).await {
            AttestOutcome::Accepted { height, .. } => Ok(height),
            other => Err(format!("{other:?}")),
        }
    });
    tokio::select! {
        result = serve_metrics(config.metrics.listen, metrics, stale_after) => result,
        ((), ()) = async { tokio::join!(relayer.run(bitcoin_poll, ethereum_poll), deliver(Some(&relayer.attester))) } => Ok(()),
        () = anchor => Ok(()),
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
            let member = member_key(&config)?;
            println!("configuration OK\n{}", toml::to_string_pretty(&config)?);
            if let Some(member) = member {
                println!("member key opened: account {}", member.address());
            }
            Ok(())
        }
        Command::Keystore { command: KeystoreCommand::Seal { key_file, passphrase_file, out, kdf_log_n } } => {
            seal(key_file, passphrase_file, out, *kdf_log_n)
        }
        Command::Audit { command: AuditCommand::Verify { member, json } } => {
            let report = audit_verify(&args, *member).await?;
            if *json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
            if report.is_intact() { Ok(()) } else { std::process::exit(1) }
        }
        Command::Migrate => {
            let url = tool_database_url(&args)?;
            let pool = ferry_daemon::postgres::connect(&url, 1).await?;
            ferry_daemon::postgres::migrate(&pool)
                .await
                .context("applying the migrations (as the database's owner?)")?;
            println!("schema current: {} migrations applied", ferry_daemon::postgres::MIGRATOR.iter().count());
            Ok(())
        }
    }
}

/// `audit verify`: the chain of hashes, and the head this member anchored on the chain when the
/// chain (`chain.rpc`, --chain-rpc) and the member (--member, `chain.member_keystore`'s public
/// account, no passphrase needed) are known.
async fn audit_verify(args: &Args, member: Option<Address>) -> anyhow::Result<ferry_audit::VerifyReport> {
    let store = Store::connect(&tool_database_url(args)?).await?;
    let config = load_config(args).ok();
    let member = match (member, config.as_ref().and_then(|config| config.chain.member_keystore.as_ref())) {
        (Some(member), _) => Some(member),
        (None, Some(path)) => Some(
            AccountKeystore::read(path).with_context(|| format!("chain.member_keystore {}", path.display()))?.account,
        ),
        (None, None) => None,
    };
    let rpc = args.chain_rpc.clone().or_else(|| config.as_ref().map(|config| config.chain.rpc.clone()));
    let genesis_file = config.as_ref().map(|config| config.chain.genesis_file.as_path());
    let anchor = ferry_daemon::audit_anchor::anchor_to_verify_against(
        member,
        rpc.as_deref(),
        genesis_file,
        AuditLogName::Relayer,
    )
    .await
    .with_context(|| format!("reading the relayer audit anchor from {}", rpc.as_deref().unwrap_or_default()))?;
    Ok(AuditLog::RELAYER.verify_against(store.pool(), anchor.as_ref()).await?)
}

/// The database of a one-off command: `--database-url`, else the configuration's.
fn tool_database_url(args: &Args) -> anyhow::Result<String> {
    match (&args.database_url, load_config(args).ok()) {
        (Some(url), _) => Ok(url.clone()),
        (None, Some(config)) => database_url(args, &config),
        (None, None) => anyhow::bail!("no database: pass --database-url or a valid --config"),
    }
}
