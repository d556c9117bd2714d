//! `ferry-signer`: a federation member's signer (see the library docs). Subcommands:
//!
//! - `devnet-keygen`: devnets and tests only — a trusted-dealer key ceremony, sealing each
//!   member's keys under that member's own passphrase into a directory of its own (`member-<i>/`:
//!   keystore, account keystore for its relayer, manifest) and writing the federation manifest
//!   (real federations use the dealer-free key generation `run` takes part in);
//! - `keystore inspect FILE`: a keystore's public fields, without the passphrase;
//! - `run --config FILE`: the daemon — registers this member's signer keys, takes part in key
//!   generation for a proposed federation, follows the chain, rebuilds and checks every batch,
//!   signs what its policy allows, posts the signatures, audits every decision, serves `/metrics`
//!   and `/health`;
//! - `config validate`: parse and check the configuration, keystore and manifest;
//! - `audit verify`: recompute the audit log's hash chain and name the first broken row;
//! - `held refund`: this member's vote to refund a held withdrawal;
//! - `federation propose|propose-params|status`: this member's proposal of the next federation
//!   (a quorum of identical proposals starts its dealer-free key generation) or of the next
//!   parameters (a quorum's change takes effect after the governance delay), and the proposals,
//!   the key generation's progress and who is live;
//! - `listing propose|unlist`: this member's proposal to list a token in the vault (with its
//!   withdrawal limits) or to unlist it; a quorum of identical proposals becomes a listing the
//!   federation signs and relayers deliver to the vault.
//!
//! Passphrases come from a file or stdin, never from the command line. Every flag can also be set
//! by the environment variable named in `--help`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ferry_audit::AuditLog;
use ferry_client::FerryClient;
use ferry_daemon::audit_anchor::Anchorer;
use ferry_daemon::endpoint;
use ferry_daemon::logging::{self, LogOutput};
use ferry_keystore::sealing::{DEFAULT_KDF_LOG_N, MAX_KDF_LOG_N, MIN_KDF_LOG_N};
use ferry_keystore::{KdfParams, passphrase};
use ferry_signer::ceremony::{WrittenCeremony, keygen, write_ceremony};
use ferry_signer::config::{Config, ConfigFile, read_secret};
use ferry_signer::duty::post_duty;
use ferry_signer::keystore::Keystore;
use ferry_signer::metrics::{Metrics, now_seconds};
use ferry_signer::service::{Settings, Signer};
use ferry_signer::store::Store;
use ferry_signer::{Ceremony, Manifest, MemberSecrets, Overwrite};
use ferry_types::msg::audit::AuditLogName;
use ferry_types::msg::{
    MsgProposeListing, MsgProposeListingProto, MsgResolveHeld, MsgResolveUnattributed, MsgResolveUnattributedProto,
};
use ferry_types::peg::BitcoinNetwork;
use ferry_types::query::{
    DEPOSIT_PATH, LISTING_PATH, TokenProposals, UNATTRIBUTED_PATH, UnattributedPage, WITHDRAWAL_PATH, WithdrawalId,
    WithdrawalIdError, WithdrawalView,
};
use ferry_types::{Address, Msg};
use serde_json::json;
use zeroize::Zeroizing;

/// Ferry federation signer.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, env = "FERRY_SIGNER_JSON", global = true)]
    json: bool,
    /// Daemon configuration file (TOML; see deploy/signer.example.toml).
    #[arg(long, env = "FERRY_SIGNER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Overrides `chain.rpc`.
    #[arg(long, env = "FERRY_SIGNER_CHAIN_RPC", global = true)]
    chain_rpc: Option<String>,
    /// PostgreSQL URL (overrides `database.url_file`).
    #[arg(long, env = "FERRY_SIGNER_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Overrides `metrics.listen`.
    #[arg(long, env = "FERRY_SIGNER_METRICS_LISTEN", global = true)]
    metrics_listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Devnets and tests only: a trusted-dealer ceremony in which one process draws every
    /// member's BLS share (each member's keys sealed under its own passphrase, `--passphrase-file`
    /// once per member, into a directory of its own; and the federation manifest). Real
    /// federations generate their key without a dealer, through the chain (`run` takes part in
    /// the key generation a federation proposal starts).
    #[command(name = "devnet-keygen")]
    Keygen(KeygenArgs),
    /// Keystore tools.
    Keystore {
        #[command(subcommand)]
        command: KeystoreCommand,
    },
    /// Follow the chain and sign the release batches this member's policy allows.
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
    /// Apply the database migrations. Run it as the database's owner (its URL in --database-url
    /// or FERRY_SIGNER_DATABASE_URL) before the signer starts as `ferry_signer`, which owns no
    /// table and cannot migrate.
    Migrate,
    /// Withdrawals held by an aborted batch (enough members refused to pay them).
    Held {
        #[command(subcommand)]
        command: HeldCommand,
    },
    /// Payments to the peg that name no account (no valid memo): list them, and vote to credit
    /// one to an account or refund it (a quorum of identical votes carries it out).
    Unattributed {
        #[command(subcommand)]
        command: UnattributedCommand,
    },
    /// The next federation: propose a member set (a quorum of identical proposals starts its
    /// dealer-free key generation, which `run` takes part in), and show proposals, the latest key
    /// generation and who is live.
    Federation {
        #[command(subcommand)]
        command: FederationCommand,
    },
    /// The vault's token allowlist: this member's proposals (a quorum of identical ones takes
    /// effect once the federation's signed change reached the vault).
    Listing {
        #[command(subcommand)]
        command: ListingCommand,
    },
}

#[derive(Subcommand, Debug)]
enum FederationCommand {
    /// Propose the next federation: its members, in the order they will hold (share positions
    /// and Bitcoin key order), each with keys registered on the chain, and its threshold.
    Propose {
        /// Member accounts (ferry1…), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// Signatures needed to release funds: a majority of the members, at most all.
        #[arg(long)]
        threshold: u32,
    },
    /// Propose the complete next parameter set (edit the `/params` answer, e.g. from
    /// `ferry-signer --json federation status`): `attest_quorum` identical proposals take effect
    /// `params.governance.delay_blocks` after the quorum. The vault binding and the token
    /// listing cannot change this way.
    ProposeParams {
        /// The parameters as JSON (the `/params` query's form).
        #[arg(long)]
        file: PathBuf,
    },
    /// Open proposals, the latest key generation's progress, and each member's heartbeats.
    Status,
}

#[derive(Subcommand, Debug)]
enum ListingCommand {
    /// Propose to list an ERC-20 token, with the withdrawal limits the chain applies to it.
    Propose {
        /// The token contract (0x…).
        #[arg(long)]
        token: String,
        /// Most batched for release per outflow window, in the token's base units.
        #[arg(long)]
        window_cap: String,
        /// Withdrawals above this wait the withdrawal delay (base units).
        #[arg(long)]
        delay_above: String,
        /// The smallest withdrawal accepted (base units).
        #[arg(long, default_value = "1")]
        min_amount: String,
    },
    /// Propose to unlist a token: the vault refuses new deposits of it and the chain mints none;
    /// holders can still withdraw.
    Unlist {
        /// The token contract (0x…).
        #[arg(long)]
        token: String,
    },
}

#[derive(Subcommand, Debug)]
enum UnattributedCommand {
    /// The open unattributed payments.
    List,
    /// Vote to credit a payment to an account (minted like a deposit: the amount less what it
    /// prepays for its own spending). Check first that the account's owner proved the payment.
    Credit {
        /// The payment (`btc:<txid>:<vout>` or `eth:<0xhash>:<index>`).
        deposit: String,
        /// The account (`ferry1…`).
        account: String,
    },
    /// Vote to refund a payment to an address of its parent chain in the next batch (Bitcoin: its
    /// share of the miner fee comes out of it).
    Refund {
        /// The payment (`btc:<txid>:<vout>` or `eth:<0xhash>:<index>`).
        deposit: String,
        /// The Bitcoin or Ethereum address.
        address: String,
        /// Bitcoin: the largest fee share it may pay, in satoshi (Ethereum: none, the relayer pays
        /// the gas).
        #[arg(long)]
        max_fee: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum HeldCommand {
    /// Vote, with this member's key, to refund a held withdrawal to its sender's sidechain
    /// balance (it is refunded once a quorum of members voted). Audited in the signer's log.
    Refund {
        /// The withdrawal (`wd-<n>`).
        withdrawal: String,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Parse and check the configuration, open the keystore and check it against the manifest;
    /// print the effective settings.
    Validate,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the audit log's hash chain and name the first broken row; with the chain
    /// (`chain.rpc` or --chain-rpc) and the member (--member, else the configuration's keystore),
    /// also check the log against the head this member last anchored on the chain, naming a
    /// deleted tail or a rewritten history (exit status 1).
    Verify {
        /// The member whose anchor to check against (default: the account of `keys.keystore`).
        #[arg(long, env = "FERRY_SIGNER_MEMBER")]
        member: Option<Address>,
    },
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Federation members (N), at most 20 (the Bitcoin peg's multisig limit).
    #[arg(long, env = "FERRY_SIGNER_MEMBERS")]
    members: u32,
    /// Signatures needed to release funds (T), more than half of the members.
    #[arg(long, env = "FERRY_SIGNER_THRESHOLD")]
    threshold: u32,
    /// Output directory (created if missing): federation.json, and per member `member-<i>/` with
    /// keystore.json, account.keystore.json (its relayer's key) and a copy of federation.json.
    #[arg(long, env = "FERRY_SIGNER_OUT")]
    out: PathBuf,
    /// A file holding one member's passphrase (one trailing newline is ignored): once per member,
    /// in member order (member 0 first). Each member's keys are sealed under its own passphrase.
    #[arg(long = "passphrase-file", value_name = "FILE")]
    passphrase_files: Vec<PathBuf>,
    /// Refused: one passphrase (from stdin) cannot seal every member's keys.
    #[arg(long, hide = true)]
    passphrase_stdin: bool,
    /// Bitcoin network of the peg recorded in the manifest.
    #[arg(long, env = "FERRY_SIGNER_BITCOIN_NETWORK", default_value = "regtest", value_parser = parse_network)]
    bitcoin_network: BitcoinNetwork,
    /// scrypt cost as log2(N); lower values are only for tests.
    #[arg(
        long,
        env = "FERRY_SIGNER_KDF_LOG_N",
        default_value_t = DEFAULT_KDF_LOG_N,
        value_parser = clap::value_parser!(u8).range(i64::from(MIN_KDF_LOG_N)..=i64::from(MAX_KDF_LOG_N))
    )]
    kdf_log_n: u8,
    /// Replace existing output files.
    #[arg(long, env = "FERRY_SIGNER_FORCE")]
    force: bool,
}

#[derive(Subcommand, Debug)]
enum KeystoreCommand {
    /// Print a keystore's public fields (no passphrase needed).
    Inspect {
        /// The keystore file.
        file: PathBuf,
    },
}

fn parse_network(text: &str) -> Result<BitcoinNetwork, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("`{text}` is not a Bitcoin network (bitcoin, testnet, signet, regtest)"))
}

/// One passphrase per member, from `--passphrase-file` in member order: one passphrase for every
/// member is refused, so a member's passphrase opens its own keys and no one else's.
fn read_passphrases(args: &KeygenArgs) -> anyhow::Result<Vec<Zeroizing<Vec<u8>>>> {
    let per_member = "pass --passphrase-file once per member, in member order (member 0 first), each file \
                      holding that member's own passphrase; a passphrase is never taken from the command line";
    anyhow::ensure!(
        !args.passphrase_stdin,
        "--passphrase-stdin is refused: one passphrase would open every member's keys; {per_member}"
    );
    let members = usize::try_from(args.members)?;
    match args.passphrase_files.len() {
        0 => anyhow::bail!("no passphrase: {per_member}"),
        1 if members > 1 => anyhow::bail!(
            "one passphrase file for {members} members is refused: one passphrase would open every member's keys; \
             {per_member}"
        ),
        given if given != members => {
            anyhow::bail!("{given} passphrase files for {members} members: {per_member}")
        }
        _ => {}
    }
    let passphrases =
        args.passphrase_files.iter().map(|path| passphrase::read_file(path)).collect::<Result<Vec<_>, _>>()?;
    for (later, passphrase) in passphrases.iter().enumerate() {
        if let Some(earlier) = passphrases[..later].iter().position(|other| other == passphrase) {
            anyhow::bail!(
                "members {earlier} and {later} have the same passphrase ({} and {}): give each member its own",
                args.passphrase_files[earlier].display(),
                args.passphrase_files[later].display()
            );
        }
    }
    Ok(passphrases)
}

fn run_keygen(args: &KeygenArgs, json: bool) -> anyhow::Result<()> {
    ferry_signer::federation_size::check_federation_size(args.members, args.threshold)?;
    let kdf = KdfParams::with_log_n(args.kdf_log_n)?;
    let passphrases = read_passphrases(args)?;
    let overwrite = if args.force { Overwrite::Replace } else { Overwrite::Refuse };
    let mut ceremony = keygen(args.members, args.threshold, &mut rand::rngs::OsRng)?;
    ceremony.manifest.bitcoin.network = args.bitcoin_network;
    let written = write_ceremony(&args.out, &ceremony, &passphrases, kdf, overwrite)?;
    print_keygen(&ceremony, &written, json)
}

fn print_keygen(ceremony: &Ceremony, written: &WrittenCeremony, json: bool) -> anyhow::Result<()> {
    let manifest = &ceremony.manifest;
    let federation_key = hex::encode(manifest.public_key_set()?.public_key().to_bytes());
    if json {
        let members: Vec<_> = manifest
            .members
            .iter()
            .zip(written.member_dirs.iter().zip(written.keystores.iter().zip(&written.account_keystores)))
            .map(|(member, (dir, (keystore, account_keystore)))| {
                json!({
                    "index": member.index,
                    "account": member.account,
                    "dir": dir,
                    "keystore": keystore,
                    "account_keystore": account_keystore,
                })
            })
            .collect();
        let report = json!({
            "threshold": manifest.threshold,
            "members": members,
            "manifest": written.manifest,
            "bls_public_key": federation_key,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "federation of {} members, {} signatures needed (epoch {})",
        manifest.members.len(),
        manifest.threshold,
        manifest.epoch
    );
    for (member, dir) in manifest.members.iter().zip(&written.member_dirs) {
        println!("  member {}  {}  {}", member.index, member.account, dir.display());
    }
    println!("each member directory holds that member's keys only: send it to that member alone");
    println!("manifest: {}", written.manifest.display());
    println!("federation BLS public key: {federation_key}");
    Ok(())
}

fn run_inspect(file: &Path, json: bool) -> anyhow::Result<()> {
    let keystore = Keystore::read(file)?;
    let kdf = &keystore.kdf;
    if json {
        let report = json!({
            "version": keystore.version,
            "member_index": keystore.member_index,
            "account": keystore.account,
            "bitcoin_public_key": hex::encode(keystore.bitcoin_public_key),
            "bls_public_key_share": hex::encode(keystore.bls_public_key_share),
            "kdf": { "name": kdf.name, "log_n": kdf.log_n, "r": kdf.r, "p": kdf.p },
            "cipher": { "name": keystore.cipher.name },
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("keystore:             {}", file.display());
    println!("version:              {}", keystore.version);
    println!("member index:         {}", keystore.member_index);
    println!("account:              {}", keystore.account);
    println!("bitcoin public key:   {}", hex::encode(keystore.bitcoin_public_key));
    println!("bls public key share: {}", hex::encode(keystore.bls_public_key_share));
    println!("kdf:                  {} (log_n {}, r {}, p {})", kdf.name, kdf.log_n, kdf.r, kdf.p);
    println!("cipher:               {}", keystore.cipher.name);
    Ok(())
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let path = cli.config.as_ref().context("no configuration: pass --config FILE or set FERRY_SIGNER_CONFIG")?;
    let mut config = Config::load(path)?;
    if let Some(rpc) = &cli.chain_rpc {
        config.chain.rpc = rpc.clone();
    }
    if let Some(listen) = cli.metrics_listen {
        config.metrics.listen = listen;
    }
    config.validate()?;
    Ok(config)
}

fn database_url(cli: &Cli, config: Option<&Config>) -> anyhow::Result<String> {
    if let Some(url) = &cli.database_url {
        return Ok(url.clone());
    }
    let path = config.and_then(|config| config.database.url_file.as_ref()).context(
        "no database: set database.url_file in the configuration, FERRY_SIGNER_DATABASE_URL or --database-url",
    )?;
    Ok(read_secret("database.url_file", path)?)
}

/// Opens the member's keystore and the genesis federation's manifest. The keystore need not be
/// one of the manifest's members: a candidate's takes part in key generations and signs for the
/// epochs they make (`ferry_signer::handover::EpochView`).
fn open_keys(config: &Config) -> anyhow::Result<(MemberSecrets, Manifest)> {
    let passphrase = passphrase::read_file(&config.keys.passphrase_file).context("keys.passphrase_file")?;
    let secrets = Keystore::open(&config.keys.keystore, &*passphrase)
        .with_context(|| format!("keys.keystore {}", config.keys.keystore.display()))?;
    let manifest = Manifest::load(&config.keys.manifest).context("keys.manifest")?;
    Ok((secrets, manifest))
}

fn run_validate(cli: &Cli) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let (secrets, manifest) = open_keys(&config)?;
    config.local_knowledge(&manifest, secrets.account())?;
    let genesis_member = manifest.check_member(&secrets);
    if cli.json {
        let report = json!({
            "member_index": secrets.index(),
            "account": secrets.account(),
            "epoch": manifest.epoch,
            "genesis_member": genesis_member.is_ok(),
            "config": config,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let role = match &genesis_member {
            Ok(()) => format!("member {} of the epoch-{} federation", secrets.index(), manifest.epoch),
            Err(error) => format!("a candidate, not in the epoch-{} federation ({error})", manifest.epoch),
        };
        println!("configuration OK: {} is {role}\n{}", secrets.account(), toml::to_string_pretty(&config)?);
    }
    Ok(())
}

async fn run_daemon(cli: &Cli) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let (secrets, manifest) = open_keys(&config)?;
    let local = config.local_knowledge(&manifest, secrets.account())?;
    let policy = config.policy()?;
    let metrics = Metrics::new()?;
    let store = Store::connect(&database_url(cli, Some(&config))?).await?;
    let chain = FerryClient::new(&config.chain.rpc)?;
    let verified = config.chain.verified_reader()?;
    let poll = config.chain.poll_interval;
    tracing::info!(
        member = secrets.index(),
        account = %secrets.account(),
        epoch = manifest.epoch,
        ethereum = ?local.ethereum,
        bitcoin = ?local.bitcoin.as_ref().map(|peg| peg.address().to_string()),
        metrics = %config.metrics.listen,
        "ferry-signer starting"
    );
    let settings = Settings { local, policy, poll_interval: poll };
    let anchorer = Anchorer::new(
        AuditLog::SIGNER,
        AuditLogName::Signer,
        secrets.account(),
        config.audit_anchor,
        metrics.audit_anchor_gauges(),
    );
    let (anchor_pool, anchor_chain, anchor_key) = (store.pool().clone(), chain.clone(), secrets.account_key().clone());
    let signer = Signer::new((chain, verified), store, metrics.clone(), (secrets, manifest), settings)?;
    let stale_after = poll.saturating_mul(10).max(Duration::from_secs(30));
    let post_chain = anchor_chain.clone();
    let anchor = anchorer.run(anchor_pool, anchor_chain, move |msg| {
        let (chain, key) = (post_chain.clone(), anchor_key.clone());
        async move { post_duty(&chain, &key, &msg).await.map(|(_, height)| height) }
    });
    tokio::select! {
        result = serve_metrics(config.metrics.listen, metrics, stale_after) => result,
        () = signer.run() => Ok(()),
        () = anchor => Ok(()),
    }
}

/// `/metrics`, and `/health`: 503 naming the problem when no round completed for `stale_after`.
async fn serve_metrics(listen: SocketAddr, metrics: Metrics, stale_after: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let health_metrics = metrics.clone();
    let health = move || {
        let last = health_metrics.last_poll.get();
        let problem = if last > 0.0 {
            let age = now_seconds() - last;
            (age > stale_after.as_secs_f64()).then(|| format!("no complete round for {age:.0}s"))
        } else {
            (started.elapsed() > stale_after)
                .then(|| format!("no complete round since the start {:.0}s ago", started.elapsed().as_secs_f64()))
        };
        problem.map_or(Ok(()), Err)
    };
    Ok(endpoint::serve(listen, move || metrics.render(), health).await?)
}

async fn run_audit_verify(cli: &Cli, member: Option<Address>) -> anyhow::Result<bool> {
    let config = if cli.database_url.is_some() { load_config(cli).ok() } else { Some(load_config(cli)?) };
    let store = Store::connect(&database_url(cli, config.as_ref())?).await?;
    // The member: --member, else the keystore's public account (no passphrase needed).
    let member = match (member, &config) {
        (Some(member), _) => Some(member),
        (None, Some(config)) => Some(
            Keystore::read(&config.keys.keystore)
                .with_context(|| format!("keys.keystore {}", config.keys.keystore.display()))?
                .account,
        ),
        (None, None) => None,
    };
    let rpc = cli.chain_rpc.clone().or_else(|| config.as_ref().map(|config| config.chain.rpc.clone()));
    let genesis_file = config.as_ref().map(|config| config.chain.genesis_file.as_path());
    let anchor = ferry_daemon::audit_anchor::anchor_to_verify_against(
        member,
        rpc.as_deref(),
        genesis_file,
        AuditLogName::Signer,
    )
    .await
    .with_context(|| format!("reading the signer audit anchor from {}", rpc.as_deref().unwrap_or_default()))?;
    let report = AuditLog::SIGNER.verify_against(store.pool(), anchor.as_ref()).await?;
    if cli.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    Ok(report.is_intact())
}

/// Applies the migrations, as the database's owner.
async fn run_migrate(cli: &Cli) -> anyhow::Result<()> {
    let config = if cli.database_url.is_some() { None } else { Some(load_config(cli)?) };
    let pool = ferry_daemon::postgres::connect(&database_url(cli, config.as_ref())?, 1).await?;
    ferry_daemon::postgres::migrate(&pool).await.context("applying the migrations (as the database's owner?)")?;
    println!("schema current: {} migrations applied", ferry_daemon::postgres::MIGRATOR.iter().count());
    Ok(())
}

/// Sends this member's `MsgResolveHeld` for `withdrawal` and audits the vote.
async fn run_refund_vote(cli: &Cli, withdrawal: &str) -> anyhow::Result<()> {
    let id: WithdrawalId = withdrawal.parse().map_err(|e: WithdrawalIdError| anyhow::anyhow!("{e}"))?;
    let config = load_config(cli)?;
    let (secrets, _) = open_keys(&config)?;
    let store = Store::connect(&database_url(cli, Some(&config))?).await?;
    let chain = FerryClient::new(&config.chain.rpc)?;
    let view: WithdrawalView = chain
        .query(&format!("{WITHDRAWAL_PATH}{id}"), None)
        .await?
        .with_context(|| format!("the chain has no withdrawal {id}"))?;
    let held = view.withdrawal.held.as_ref().with_context(|| format!("{id} is {:?}, not held", view.status))?;
    let msg = Msg::ResolveHeld(MsgResolveHeld { member: secrets.account(), withdrawal: id });
    let (tx, height) = post_duty(&chain, secrets.account_key(), &msg)
        .await
        .map_err(|error| anyhow::anyhow!("the refund vote was not included: {error}"))?;
    store
        .append_event(
            ferry_signer::store::kind::REFUND_VOTE,
            &id.to_string(),
            &json!({"batch": held.batch, "reason": held.reason, "tx": tx, "height": height}),
        )
        .await?;
    let after: Option<WithdrawalView> = chain.query(&format!("{WITHDRAWAL_PATH}{id}"), None).await?;
    let status = after.map_or(view.status, |after| after.status);
    if cli.json {
        println!("{}", json!({"withdrawal": id.to_string(), "tx": tx, "height": height, "status": status}));
    } else {
        println!("refund vote for {id} included at height {height} (now {status:?})");
    }
    Ok(())
}

/// Lists the open unattributed payments, or sends and audits this member's vote on one.
async fn run_unattributed(cli: &Cli, command: &UnattributedCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let chain = FerryClient::new(&config.chain.rpc)?;
    let (deposit_id, proto) = match command {
        UnattributedCommand::List => {
            let page: UnattributedPage =
                chain.query(UNATTRIBUTED_PATH, None).await?.context("the chain answered no /unattributed")?;
            if cli.json {
                println!("{}", serde_json::to_string(&page)?);
            } else {
                println!("{} open unattributed payment(s)", page.total);
                for open in &page.open {
                    println!(
                        "  {}  {} sat  {} (height {})",
                        open.id,
                        open.amount,
                        open.reason.description(),
                        open.height
                    );
                }
            }
            return Ok(());
        }
        UnattributedCommand::Credit { deposit, account } => (
            deposit,
            MsgResolveUnattributedProto {
                deposit_id: deposit.clone(),
                credit_to: account.clone(),
                ..Default::default()
            },
        ),
        UnattributedCommand::Refund { deposit, address, max_fee } => (
            deposit,
            MsgResolveUnattributedProto {
                deposit_id: deposit.clone(),
                refund_to: address.clone(),
                max_fee: max_fee.clone().unwrap_or_default(),
                ..Default::default()
            },
        ),
    };
    let (secrets, _) = open_keys(&config)?;
    let vote = MsgResolveUnattributed::from_proto(&MsgResolveUnattributedProto {
        member: secrets.account().to_string(),
        ..proto
    })?;
    let store = Store::connect(&database_url(cli, Some(&config))?).await?;
    let (tx, height) = post_duty(&chain, secrets.account_key(), &Msg::ResolveUnattributed(vote.clone()))
        .await
        .map_err(|error| anyhow::anyhow!("the vote on {deposit_id} was not included: {error}"))?;
    store
        .append_event(
            ferry_signer::store::kind::UNATTRIBUTED_VOTE,
            deposit_id,
            &json!({"resolution": vote.resolution, "tx": tx, "height": height}),
        )
        .await?;
    // The deposit record's `unattributed.resolved` (the record's type lives in the state
    // machine, which the signer does not link).
    let record: Option<serde_json::Value> = chain.query(&format!("{DEPOSIT_PATH}{deposit_id}"), None).await?;
    let resolved = record.and_then(|record| record.get("unattributed")?.get("resolved").cloned());
    if cli.json {
        println!("{}", json!({"deposit": deposit_id, "tx": tx, "height": height, "resolved": resolved}));
    } else {
        match resolved {
            Some(resolved) => println!("vote on {deposit_id} included at height {height}; resolved: {resolved}"),
            None => {
                println!("vote on {deposit_id} included at height {height}; waiting for a quorum of identical votes")
            }
        }
    }
    Ok(())
}

/// Proposes the next federation, or shows proposals, key generation and liveness.
async fn run_federation(cli: &Cli, command: &FederationCommand) -> anyhow::Result<()> {
    use ferry_types::msg::federation::{MsgProposeFederation, MsgProposeFederationProto};
    use ferry_types::query::federation::{
        DKG_PATH, DkgSession, FEDERATION_PROPOSALS_PATH, FederationProposals, HANDOVER_PATH, Handover, LIVENESS_PATH,
        LivenessView, PARAMS_PROPOSALS_PATH, ParamsProposals,
    };
    let config = load_config(cli)?;
    let chain = FerryClient::new(&config.chain.rpc)?;
    match command {
        FederationCommand::Propose { members, threshold } => {
            let (secrets, _) = open_keys(&config)?;
            let proposal = MsgProposeFederation::from_proto(&MsgProposeFederationProto {
                member: secrets.account().to_string(),
                members: members.clone(),
                threshold: *threshold,
            })?;
            let store = Store::connect(&database_url(cli, Some(&config))?).await?;
            let (tx, height) = post_duty(&chain, secrets.account_key(), &Msg::ProposeFederation(proposal.clone()))
                .await
                .map_err(|error| anyhow::anyhow!("the proposal was not included: {error}"))?;
            let detail = json!({"members": members, "threshold": threshold, "tx": tx, "height": height});
            store.append_event(ferry_signer::store::kind::FEDERATION_PROPOSAL, "federation", &detail).await?;
            let session: Option<DkgSession> = chain.query(DKG_PATH, None).await?;
            let started = session.filter(|s| s.phase.is_running() && s.started >= height);
            if cli.json {
                println!("{}", json!({"tx": tx, "height": height, "session": started}));
            } else if let Some(session) = started {
                println!("proposal included at height {height}; key generation session {} started", session.session);
            } else {
                println!("proposal included at height {height}; waiting for a quorum of identical proposals");
            }
        }
        FederationCommand::ProposeParams { file } => {
            use ferry_types::msg::federation::{MsgProposeParams, MsgProposeParamsProto};
            let (secrets, _) = open_keys(&config)?;
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let proposal = MsgProposeParams::from_proto(&MsgProposeParamsProto {
                member: secrets.account().to_string(),
                params_json: text,
            })?;
            let hash = proposal.params_hash();
            let store = Store::connect(&database_url(cli, Some(&config))?).await?;
            let (tx, height) = post_duty(&chain, secrets.account_key(), &Msg::ProposeParams(proposal))
                .await
                .map_err(|error| anyhow::anyhow!("the parameter proposal was not included: {error}"))?;
            let detail = json!({"hash": hash, "tx": tx, "height": height});
            store.append_event(ferry_signer::store::kind::PARAMS_PROPOSAL, "params", &detail).await?;
            let record: ParamsProposals = chain.query(PARAMS_PROPOSALS_PATH, None).await?.unwrap_or_default();
            let scheduled = record.scheduled.filter(|scheduled| scheduled.hash == hash);
            if cli.json {
                println!(
                    "{}",
                    json!({"hash": hash, "tx": tx, "height": height, "effective": scheduled.as_ref().map(|s| s.effective)})
                );
            } else if let Some(scheduled) = scheduled {
                println!("parameters {hash} accepted; they take effect at height {}", scheduled.effective);
            } else {
                println!("parameters {hash} proposed at height {height}; waiting for a quorum of identical proposals");
            }
        }
        FederationCommand::Status => {
            let proposals: FederationProposals =
                chain.query(FEDERATION_PROPOSALS_PATH, None).await?.unwrap_or_default();
            let params_proposals: ParamsProposals = chain.query(PARAMS_PROPOSALS_PATH, None).await?.unwrap_or_default();
            let session: Option<DkgSession> = chain.query(DKG_PATH, None).await?;
            let liveness: Option<LivenessView> = chain.query(LIVENESS_PATH, None).await?;
            let handover: Option<Handover> = chain.query(HANDOVER_PATH, None).await?;
            if cli.json {
                let params = json!({"proposals": params_proposals.proposals.iter().map(|p| json!({"member": p.member, "hash": p.hash, "height": p.height})).collect::<Vec<_>>(), "scheduled": params_proposals.scheduled});
                println!(
                    "{}",
                    json!({"proposals": proposals, "params": params, "dkg": session, "handover": handover, "liveness": liveness})
                );
                return Ok(());
            }
            for proposal in &params_proposals.proposals {
                println!("parameters {} proposed by {} at height {}", proposal.hash, proposal.member, proposal.height);
            }
            if let Some(scheduled) = &params_proposals.scheduled {
                println!(
                    "parameters {} accepted at height {}, effective at height {}",
                    scheduled.hash, scheduled.accepted_at, scheduled.effective
                );
            }
            for proposal in &proposals.proposals {
                println!(
                    "proposal by {} at height {}: {}-of-{} [{}]",
                    proposal.member,
                    proposal.height,
                    proposal.threshold,
                    proposal.members.len(),
                    proposal.members.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                );
            }
            match &session {
                Some(session) => {
                    println!(
                        "key generation {} for epoch {}: attempt {}/{}, phase {} (until height {}), {}-of-{}",
                        session.session,
                        session.epoch,
                        session.attempt,
                        session.max_attempts,
                        session.phase.name(),
                        session.phase_ends,
                        session.threshold,
                        session.participants.len()
                    );
                    for p in &session.participants {
                        println!("  {}  dealt {}  confirmed {}", p.account, p.dealt, p.confirmed);
                    }
                    for fault in &session.faults {
                        println!("  dropped in attempt {}: {} ({:?})", fault.attempt, fault.account, fault.fault);
                    }
                }
                None => println!("no key generation has started"),
            }
            if let Some(handover) = &handover {
                print_handover(handover);
            }
            if let Some(liveness) = &liveness {
                println!("live members: {} (threshold {})", liveness.live, liveness.threshold);
                for member in &liveness.members {
                    let state = if member.live { "live" } else { "NOT LIVE" };
                    println!(
                        "  {}  {state}  last heartbeat round {} at height {}",
                        member.account, member.last_round, member.last_height
                    );
                }
            }
        }
    }
    Ok(())
}

/// One line per step of the hand-over to `handover.epoch` (the running one, or the last).
fn print_handover(handover: &ferry_types::query::federation::Handover) {
    let epoch = handover.epoch;
    match handover.switched {
        Some(height) => println!("hand-over to epoch {epoch}: switched at height {height}"),
        None => println!("hand-over to epoch {epoch}: running since height {} (releases wait)", handover.started),
    }
    let rotation = match (handover.rotation_batch, handover.rotated) {
        (_, Some(height)) => format!("vault rotated (attested at height {height})"),
        (Some(batch), None) => format!("vault rotation in batch {batch}"),
        (None, None) => "vault rotation waits for Ethereum batches in flight".to_owned(),
    };
    println!("  {rotation}");
    let moved: u128 = handover.migrated.iter().map(|utxo| utxo.amount.get()).sum();
    println!(
        "  {} migration batch(es) {:?}, {moved} sat at the new peg",
        handover.migration_batches.len(),
        handover.migration_batches
    );
    if let Some(reason) = &handover.waiting {
        println!("  WAITING: {reason}");
    }
}

async fn run_listing_proposal(cli: &Cli, command: &ListingCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let (secrets, _) = open_keys(&config)?;
    let member = secrets.account().to_string();
    let proto = match command {
        ListingCommand::Propose { token, window_cap, delay_above, min_amount } => MsgProposeListingProto {
            member,
            token: token.clone(),
            listed: true,
            window_cap: window_cap.clone(),
            delay_above: delay_above.clone(),
            min_amount: min_amount.clone(),
        },
        ListingCommand::Unlist { token } => {
            MsgProposeListingProto { member, token: token.clone(), listed: false, ..Default::default() }
        }
    };
    let proposal = MsgProposeListing::from_proto(&proto)?;
    let store = Store::connect(&database_url(cli, Some(&config))?).await?;
    let chain = FerryClient::new(&config.chain.rpc)?;
    let (tx, height) = post_duty(&chain, secrets.account_key(), &Msg::ProposeListing(proposal.clone()))
        .await
        .map_err(|error| anyhow::anyhow!("the listing proposal was not included: {error}"))?;
    let token = proposal.token.to_string();
    store
        .append_event(
            ferry_signer::store::kind::LISTING_PROPOSAL,
            &token,
            &json!({"listed": proposal.lists(), "limit": proposal.limit, "tx": tx, "height": height}),
        )
        .await?;
    let state: Option<TokenProposals> = chain.query(&format!("{LISTING_PATH}{token}"), None).await?;
    let state = state.unwrap_or_default();
    if cli.json {
        println!(
            "{}",
            json!({"token": token, "listed": proposal.lists(), "tx": tx, "height": height,
                   "proposals": state.proposals.len(), "in_flight": state.in_flight})
        );
    } else {
        let action = if proposal.lists() { "list" } else { "unlist" };
        match state.in_flight {
            Some(batch) => println!(
                "proposal to {action} {token} included at height {height}; listing batch {batch} is being signed and delivered"
            ),
            None => println!(
                "proposal to {action} {token} included at height {height}; {} member proposal(s) recorded, waiting for a quorum",
                state.proposals.len()
            ),
        }
    }
    Ok(())
}

fn async_main<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?.block_on(future)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Keygen(args) => run_keygen(args, cli.json),
        Command::Keystore { command: KeystoreCommand::Inspect { file } } => run_inspect(file, cli.json),
        Command::Config { command: ConfigCommand::Validate } => run_validate(&cli),
        Command::Run => {
            logging::init(LogOutput::Stderr);
            async_main(run_daemon(&cli))
        }
        Command::Held { command: HeldCommand::Refund { withdrawal } } => async_main(run_refund_vote(&cli, withdrawal)),
        Command::Listing { command } => async_main(run_listing_proposal(&cli, command)),
        Command::Unattributed { command } => async_main(run_unattributed(&cli, command)),
        Command::Federation { command } => async_main(run_federation(&cli, command)),
        Command::Migrate => async_main(run_migrate(&cli)),
        Command::Audit { command: AuditCommand::Verify { member } } => {
            match async_main(run_audit_verify(&cli, *member)) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(error) => Err(error),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
