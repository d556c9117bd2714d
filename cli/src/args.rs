//! The command line: every flag also read from an environment variable (the names `make devnet`
//! writes to `.devnet/env`), secrets only from files, stdin or a prompt — never argv.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::EXIT_HELP;

/// `ferry`: bridge BTC, ETH and ERC-20 tokens to and from the Ferry sidechain.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, after_help = EXIT_HELP)]
pub struct Cli {
    /// Global settings.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command takes.
#[derive(Clone, Debug, Args)]
pub struct Global {
    /// One JSON document on stdout (NDJSON, one per update, with --watch) instead of text.
    #[arg(long, global = true, env = "FERRY_JSON")]
    pub json: bool,
    /// The Ferry node's CometBFT RPC.
    #[arg(long, global = true, env = "FERRY_NODE", default_value = "http://127.0.0.1:26657")]
    pub node: String,
    /// The keyring file (default ~/.ferry/keyring.json).
    #[arg(long, global = true, env = "FERRY_KEYRING")]
    pub keyring: Option<PathBuf>,
    /// The key to act as (a name in the keyring).
    #[arg(long, global = true, env = "FERRY_FROM")]
    pub from: Option<String>,
    /// Read the key's passphrase from this file (otherwise: a prompt on a terminal, or stdin).
    #[arg(long, global = true, env = "FERRY_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Bitcoin node JSON-RPC (btcd or Bitcoin Core).
    #[arg(long, global = true, env = "FERRY_BITCOIN_RPC")]
    pub bitcoin_rpc: Option<String>,
    /// Bitcoin RPC user.
    #[arg(long, global = true, env = "FERRY_BITCOIN_RPC_USER", default_value = "ferry")]
    pub bitcoin_rpc_user: String,
    /// File holding the Bitcoin RPC password.
    #[arg(long, global = true, env = "FERRY_BITCOIN_RPC_PASSWORD_FILE")]
    pub bitcoin_rpc_password_file: Option<PathBuf>,
    /// Blocks back from the tip searched for the key's Bitcoin outputs when the node offers neither
    /// an address index (btcd --addrindex) nor scantxoutset (Bitcoin Core), which find them all.
    #[arg(long, global = true, env = "FERRY_BITCOIN_SCAN_BLOCKS", default_value_t = 1000)]
    pub bitcoin_scan_blocks: u64,
    /// Bitcoin fee rate of deposits, sat/vB.
    #[arg(long, global = true, env = "FERRY_BITCOIN_FEE_RATE", default_value_t = 2)]
    pub bitcoin_fee_rate: u64,
    /// Bitcoin network for `keys` addresses when no node is asked (other commands use the peg's).
    #[arg(long, global = true, env = "FERRY_BITCOIN_NETWORK", default_value = "regtest")]
    pub bitcoin_network: String,
    /// Ethereum node JSON-RPC.
    #[arg(long, global = true, env = "FERRY_ETHEREUM_RPC")]
    pub ethereum_rpc: Option<String>,
    /// The FerryVault contract (default: the vault the chain's parameters name).
    #[arg(long, global = true, env = "FERRY_VAULT")]
    pub vault: Option<String>,
    /// Blocks back from the tip searched for a vault deposit by transaction hash.
    #[arg(long, global = true, env = "FERRY_ETHEREUM_SEARCH_BLOCKS", default_value_t = 5000)]
    pub ethereum_search_blocks: u64,
    /// Parent-chain confirmations the federation's relayers wait for (shown as k/N).
    #[arg(long, global = true, env = "FERRY_CONFIRMATIONS", default_value_t = 6)]
    pub confirmations: u64,
    /// How long to wait for a sidechain transaction to be included, in seconds.
    #[arg(long, global = true, env = "FERRY_TIMEOUT", default_value_t = 60)]
    pub timeout: u64,
}

/// `ferry exit …`.
#[derive(Debug, Subcommand)]
pub enum ExitCommand {
    /// When the vault's escape hatch opens, and what the --from key could take out of it: its
    /// claims at the height of the vault's last heartbeat root.
    Status {
        /// Read the claims from this file (`ferry exit export`) instead of a node.
        #[arg(long, env = "FERRY_EXIT_CLAIMS")]
        claims: Option<PathBuf>,
    },
    /// Take the --from key's claims out of the vault: freezes it first if its escape hatch is
    /// open, proves each claim against the vault's root and signs it with the key; paid to --to
    /// (default: the key's own Ethereum address, which also pays the gas).
    Eth {
        /// Where the vault pays (a 0x address).
        #[arg(long)]
        to: Option<String>,
        /// Read the claims from this file (`ferry exit export`) instead of a node.
        #[arg(long, env = "FERRY_EXIT_CLAIMS")]
        claims: Option<PathBuf>,
    },
    /// The Bitcoin exit: broadcast the signed disbursal once its lock height passed — the
    /// intermediate transaction first, then (run it again once that is in a block) the fan-outs
    /// paying every holder. It comes from --file, else from the node (the disbursal covering the
    /// reserve, or --id). With --save it is written to a file instead: keep that file, it needs
    /// no sidechain to be broadcast.
    Btc {
        /// Read the signed disbursal from this file (`ferry exit btc --save`).
        #[arg(long, conflicts_with = "id")]
        file: Option<PathBuf>,
        /// Write the signed disbursal to this file and broadcast nothing.
        #[arg(long)]
        save: Option<PathBuf>,
        /// The disbursal's batch id (default: the one covering the reserve now).
        #[arg(long)]
        id: Option<u64>,
    },
    /// Where the Bitcoin exit pays the --from key's wrapped BTC: without arguments, shows it;
    /// with ADDRESS, registers it (from the next disbursal on); with --clear, goes back to the
    /// key's own P2WPKH address. The Ethereum exit needs none: `ferry exit eth --to`.
    RecoveryAddress {
        /// A Bitcoin address of the peg's network.
        #[arg(conflicts_with = "clear")]
        address: Option<String>,
        /// Pay the key's own address again.
        #[arg(long)]
        clear: bool,
    },
    /// Write every claim at a height (default: that of the vault's last root with
    /// --ethereum-rpc, else the latest) to a file, for exits once no node serves that height.
    Export {
        /// The file to write (JSON).
        #[arg(long)]
        out: PathBuf,
        /// The sidechain height.
        #[arg(long)]
        height: Option<u64>,
    },
}

/// `ferry federation …`.
#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Open proposals of the next federation and of parameters, and the scheduled change.
    Proposals,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the keys in the keyring.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Balances of an account (ADDRESS, or the --from key's).
    Balance {
        /// A `ferry1…` address.
        address: Option<String>,
    },
    /// Send tokens on the sidechain from the --from key.
    Send {
        /// The recipient, `ferry1…` or a key name.
        to: String,
        /// The amount with its unit: 0.01btc, 1000sat, 0.5eth, 20gwei, 1000wei; with --token: 12.5 or 1000unit.
        amount: String,
        /// Send this ERC-20 token (its 0x address) instead.
        #[arg(long, env = "FERRY_TOKEN")]
        token: Option<String>,
        /// The token's decimals, for amounts without `unit`.
        #[arg(long, env = "FERRY_TOKEN_DECIMALS", default_value_t = 18)]
        decimals: u8,
    },
    /// Deposit from a parent chain to the sidechain.
    #[command(subcommand)]
    Deposit(DepositCommand),
    /// The --from key's own Bitcoin deposit address: registers it on the chain the first time
    /// (fee-exempt, even for an account that holds nothing yet) and prints it with a QR code. Any
    /// wallet or exchange can pay it, no memo needed; payments mint to this account.
    DepositAddress {
        /// Print the address without the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Withdraw to a parent chain (burns the wrapped tokens; the federation releases them).
    #[command(subcommand)]
    Withdraw(WithdrawCommand),
    /// Progress of a deposit (btc:<txid>:<vout>, eth:<0xhash>:<index>, a parent txid) or a withdrawal (wd-<n>).
    Status {
        /// The id.
        id: String,
        /// Follow it until minted or released, one line (NDJSON with --json) per change.
        #[arg(long, env = "FERRY_WATCH")]
        watch: bool,
        /// Poll interval of --watch, in milliseconds.
        #[arg(long, env = "FERRY_WATCH_INTERVAL_MS", default_value_t = 1000)]
        interval_ms: u64,
        /// Give up watching after this many seconds (0: never).
        #[arg(long, env = "FERRY_WATCH_TIMEOUT", default_value_t = 0)]
        watch_timeout: u64,
    },
    /// The federation: members and who is live, quorums, the Bitcoin peg, the vault, the latest
    /// key generation, whether the bridge is paused; `federation proposals` lists the open
    /// proposals (next federation, parameters) and the scheduled parameter change.
    Federation {
        /// What to show instead of the federation itself.
        #[command(subcommand)]
        command: Option<FederationCommand>,
    },
    /// The chain's ledger per asset beside what the peg and the vault actually hold.
    Reserves,
    /// Emergency exits: take what the chain says you own out of the vault if the federation
    /// disappears (its escape hatch opens after 14 days without a heartbeat).
    #[command(subcommand)]
    Exit(ExitCommand),
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `ferry keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new random key.
    Add {
        /// Its name.
        name: String,
    },
    /// Import a secret (64 hex digits) from --secret-file, or stdin after the passphrase line.
    Import {
        /// Its name.
        name: String,
        /// File holding the secret as 64 hex digits.
        #[arg(long, env = "FERRY_SECRET_FILE")]
        secret_file: Option<PathBuf>,
    },
    /// List the keys.
    List,
    /// Show a key's addresses (sidechain, Bitcoin, Ethereum).
    Show {
        /// Its name.
        name: String,
    },
    /// Delete a key.
    Delete {
        /// Its name.
        name: String,
        /// Do not ask.
        #[arg(long, env = "FERRY_YES")]
        yes: bool,
    },
}

/// `ferry deposit …`.
#[derive(Debug, Subcommand)]
pub enum DepositCommand {
    /// Pay BTC to the peg from the key's Bitcoin address (or print what an external wallet must pay).
    Btc {
        /// The amount: 0.01btc or 1000sat.
        amount: String,
        /// Only print the peg address and the OP_RETURN memo for an external wallet.
        #[arg(long, env = "FERRY_PRINT_ONLY")]
        print_only: bool,
        /// Credit this sidechain account (default: the --from key's).
        #[arg(long, env = "FERRY_DEPOSIT_TO")]
        to: Option<String>,
    },
    /// Deposit ETH into the vault from the key's Ethereum address.
    Eth {
        /// The amount: 0.5eth, 20gwei, 1000wei.
        amount: String,
        /// Credit this sidechain account (default: the --from key's).
        #[arg(long, env = "FERRY_DEPOSIT_TO")]
        to: Option<String>,
    },
    /// Approve and deposit an ERC-20 token into the vault.
    Erc20 {
        /// The token contract (0x…).
        token: String,
        /// The amount: 12.5 (in the token's decimals) or 1000unit.
        amount: String,
        /// The token's decimals.
        #[arg(long, env = "FERRY_TOKEN_DECIMALS", default_value_t = 18)]
        decimals: u8,
        /// Credit this sidechain account (default: the --from key's).
        #[arg(long, env = "FERRY_DEPOSIT_TO")]
        to: Option<String>,
    },
}

/// Options every withdrawal takes.
#[derive(Clone, Debug, Args)]
pub struct WithdrawOptions {
    /// Do not ask for confirmation.
    #[arg(long, env = "FERRY_YES")]
    pub yes: bool,
}

/// `ferry withdraw …`.
#[derive(Debug, Subcommand)]
pub enum WithdrawCommand {
    /// Withdraw BTC to a Bitcoin address of the peg's network.
    Btc {
        /// The amount burned: 0.01btc or 1000sat (its share of the release's miner fee comes out of it).
        amount: String,
        /// The Bitcoin address paid.
        destination: String,
        /// The most of the amount that may pay its share of the miner fee (0.0001btc or 5000sat).
        /// Default: the share at twice today's fee rate. A budget below today's share is accepted:
        /// the withdrawal waits until the chain's rate falls.
        #[arg(long, env = "FERRY_MAX_FEE")]
        max_fee: Option<String>,
        /// Options.
        #[command(flatten)]
        options: WithdrawOptions,
    },
    /// Withdraw ETH to an Ethereum address.
    Eth {
        /// The amount: 0.5eth, 20gwei, 1000wei.
        amount: String,
        /// The Ethereum address paid (0x…, EIP-55 checksum checked when mixed case).
        destination: String,
        /// Options.
        #[command(flatten)]
        options: WithdrawOptions,
    },
    /// Withdraw an ERC-20 token to an Ethereum address.
    Erc20 {
        /// The token contract (0x…).
        token: String,
        /// The amount: 12.5 (in the token's decimals) or 1000unit.
        amount: String,
        /// The Ethereum address paid.
        destination: String,
        /// The token's decimals.
        #[arg(long, env = "FERRY_TOKEN_DECIMALS", default_value_t = 18)]
        decimals: u8,
        /// Options.
        #[command(flatten)]
        options: WithdrawOptions,
    },
}
