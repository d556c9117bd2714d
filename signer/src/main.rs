//! `ferry-signer`: a federation member's signer (see the library docs). Subcommands:
//!
//! - `keygen`: the trusted-dealer key ceremony, writing one encrypted keystore per member and the
//!   federation manifest;
//! - `keystore inspect FILE`: a keystore's public fields, without the passphrase.
//!
//! Passphrases come from a file or stdin, never from the command line. Every flag can also be set
//! by the environment variable named in `--help`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ferry_signer::ceremony::{WrittenCeremony, keygen, write_ceremony};
use ferry_signer::keystore::{DEFAULT_KDF_LOG_N, KdfParams, Keystore, MAX_KDF_LOG_N, MIN_KDF_LOG_N};
use ferry_signer::{Ceremony, Overwrite};
use ferry_types::peg::BitcoinNetwork;
use serde_json::json;
use zeroize::Zeroizing;

/// Ferry federation signer.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, env = "FERRY_SIGNER_JSON", global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Trusted-dealer key ceremony: one encrypted keystore per member and the federation manifest.
    Keygen(KeygenArgs),
    /// Keystore tools.
    Keystore {
        #[command(subcommand)]
        command: KeystoreCommand,
    },
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Federation members (N), at most 16 (the Bitcoin peg's multisig limit).
    #[arg(long, env = "FERRY_SIGNER_MEMBERS")]
    members: u32,
    /// Signatures needed to release funds (T), more than half of the members.
    #[arg(long, env = "FERRY_SIGNER_THRESHOLD")]
    threshold: u32,
    /// Output directory for member-<i>.keystore.json and federation.json (created if missing).
    #[arg(long, env = "FERRY_SIGNER_OUT")]
    out: PathBuf,
    /// File holding the keystore passphrase (one trailing newline is ignored).
    #[arg(long, env = "FERRY_SIGNER_PASSPHRASE_FILE", conflicts_with = "passphrase_stdin")]
    passphrase_file: Option<PathBuf>,
    /// Read the keystore passphrase from stdin, to its end (one trailing newline is ignored).
    #[arg(long, env = "FERRY_SIGNER_PASSPHRASE_STDIN")]
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

/// The passphrase from a file or stdin, without one trailing newline.
fn read_passphrase(args: &KeygenArgs) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut passphrase = match (&args.passphrase_file, args.passphrase_stdin) {
        (Some(path), _) => Zeroizing::new(
            std::fs::read(path).with_context(|| format!("cannot read the passphrase file {}", path.display()))?,
        ),
        (None, true) => {
            // Reserved up front so that reading does not reallocate and leave copies behind.
            let mut buffer = Zeroizing::new(Vec::with_capacity(4096));
            std::io::stdin().read_to_end(&mut buffer).context("cannot read the passphrase from stdin")?;
            buffer
        }
        (None, false) => anyhow::bail!(
            "no passphrase: pass --passphrase-file FILE or --passphrase-stdin (or set FERRY_SIGNER_PASSPHRASE_FILE); \
             a passphrase is never taken from the command line"
        ),
    };
    if passphrase.ends_with(b"\n") {
        passphrase.pop();
        if passphrase.ends_with(b"\r") {
            passphrase.pop();
        }
    }
    anyhow::ensure!(!passphrase.is_empty(), "the passphrase is empty");
    Ok(passphrase)
}

fn run_keygen(args: &KeygenArgs, json: bool) -> anyhow::Result<()> {
    ferry_signer::ceremony::check_federation_size(args.members, args.threshold)?;
    let kdf = KdfParams::with_log_n(args.kdf_log_n)?;
    let passphrase = read_passphrase(args)?;
    let overwrite = if args.force { Overwrite::Replace } else { Overwrite::Refuse };
    let mut ceremony = keygen(args.members, args.threshold, &mut rand::rngs::OsRng)?;
    ceremony.manifest.bitcoin.network = args.bitcoin_network;
    let written = write_ceremony(&args.out, &ceremony, &passphrase, kdf, overwrite)?;
    print_keygen(&ceremony, &written, json)
}

fn print_keygen(ceremony: &Ceremony, written: &WrittenCeremony, json: bool) -> anyhow::Result<()> {
    let manifest = &ceremony.manifest;
    let federation_key = hex::encode(manifest.public_key_set()?.public_key().to_bytes());
    if json {
        let members: Vec<_> = manifest
            .members
            .iter()
            .zip(&written.keystores)
            .map(|(member, keystore)| json!({ "index": member.index, "account": member.account, "keystore": keystore }))
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
    for (member, keystore) in manifest.members.iter().zip(&written.keystores) {
        println!("  member {}  {}  {}", member.index, member.account, keystore.display());
    }
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Keygen(args) => run_keygen(args, cli.json),
        Command::Keystore { command: KeystoreCommand::Inspect { file } } => run_inspect(file, cli.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
