//! The whole Ferry system on loopback: PostgreSQL, btcd (regtest), anvil with the vault, a
//! 4-validator sidechain whose genesis names that vault, one relayer and one signer per
//! federation member, and Prometheus scraping all of them with the deployed alert rules. `make devnet`, the withdrawal end-to-end tests and the withdrawal benchmark
//! all start it here, so they run the same system.
//!
//! Order matters: the parent chains start first (genesis names the vault and token anvil
//! deployed — deterministic addresses, the same on every restart), then the sidechain, then the
//! services that need all three, then Prometheus over every service's metrics. Every process is stopped on drop unless detached.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bitcoin::{Amount as Sats, TxOut, Txid};
use ferry_client::FerryClient;
use ferry_client::wallet::Wallet;
use ferry_types::event as ev;
use ferry_types::msg::MsgWithdraw;
use ferry_types::peg::{Peg, deposit_memo};
use ferry_types::query::{WithdrawalId, WithdrawalStatus, WithdrawalView};
use ferry_types::release::eth::EthAddress;
use ferry_types::{AccountKey, Address, Amount, Coin, Denom, Msg};

use crate::anvil::{self, Anvil};
use crate::btcd::{Btcd, RegtestWallet};
use crate::network::{APP_METRICS_PORT, COMETBFT_METRICS_PORT, RPC_PORT};
use crate::postgres::{PgServer, ScratchDatabase, migrate_for_service};
use crate::prometheus::{self, Prometheus, PrometheusSpec, ScrapeTarget, ServiceKind};
use crate::relayer::{RelayerProcess, RelayerSetup};
use crate::signer::{FederationKeys, SignerConfigSpec, SignerProcess, write_federation_keys};
use crate::{Network, NetworkSpec, Tools, accounts};

/// How often the system's Prometheus scrapes and evaluates its rules.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

/// Local cap every devnet signer applies to the test token (far above any devnet amount).
const TOKEN_CAP: &str = "1000000000000000000000000";

/// How to lay out the system. [`SystemSpec::network`]'s genesis is replaced by the devnet
/// genesis with Ethereum pointed at the vault anvil deploys.
#[derive(Clone, Debug)]
pub struct SystemSpec {
    /// The sidechain (directory, subnet, block times, chain id).
    pub network: NetworkSpec,
    /// User accounts, each opened by real deposits on both parent chains once the system runs
    /// ([`crate::funding::deposit_openings`]; a resumed system is not opened again).
    pub users: usize,
    /// Directory of the bridge services' state (PostgreSQL, btcd, keys, relayers, signers).
    pub bridge_dir: PathBuf,
    /// Create the sidechain afresh (`false`: resume the homes already in the network's directory).
    pub fresh: bool,
    /// Parent-chain confirmations the relayers wait for (deposits and releases).
    pub confirmations: u32,
    /// Relayer and signer poll interval (human duration).
    pub poll_interval: String,
    /// Give every relayer and signer a database of this run only, dropped with the system
    /// (tests and benchmarks: runs sharing a `DATABASE_URL` server never meet), instead of the
    /// devnet's `relayer_<m>` / `signer_<m>`, which a restarted devnet resumes from.
    pub scratch_databases: bool,
    /// Keep the parent chains in `bridge_dir/parents` ([`Parents::save`] and a persistent anvil),
    /// and resume them from there when saved: a resumed system (`fresh: false`) then finds the
    /// blocks and coins its sidechain counts.
    pub persist_parents: bool,
    /// Blocks between the vault heartbeats the chain forms (`None`: the genesis default, about a
    /// day of blocks, so that none forms in a short run).
    pub vault_heartbeat_blocks: Option<u64>,
    /// The Bitcoin emergency disbursal's parameters (`None`: the genesis default, no disbursal).
    pub bitcoin_exit: Option<ferry_types::genesis::BitcoinExitParams>,
}

/// Where a persistent system keeps its parent chains, under its bridge directory.
const PARENTS_DIR: &str = "parents";
/// The saved Bitcoin chain ([`crate::btcd::save_chain`]).
const BITCOIN_CHAIN_FILE: &str = "bitcoin-chain.hex";
/// Anvil's state file.
const ANVIL_STATE_FILE: &str = "anvil-state.json";

/// Whether `bridge_dir` holds saved parent chains to resume (both of them).
pub fn parents_saved(bridge_dir: &Path) -> bool {
    let dir = bridge_dir.join(PARENTS_DIR);
    dir.join(BITCOIN_CHAIN_FILE).exists() && dir.join(ANVIL_STATE_FILE).exists()
}

/// Saves the Bitcoin chain of the btcd at `rpc` under `bridge_dir` (anvil saves its own when
/// stopped with SIGTERM); returns the tip saved. `make devnet-down` calls it before stopping
/// the processes.
///
/// # Errors
/// RPC or file errors.
pub async fn save_bitcoin_chain(
    rpc: &ferry_parent_chains::bitcoin::BitcoinRpc,
    bridge_dir: &Path,
) -> anyhow::Result<u64> {
    let dir = bridge_dir.join(PARENTS_DIR);
    std::fs::create_dir_all(&dir)?;
    crate::btcd::save_chain(rpc, &dir.join(BITCOIN_CHAIN_FILE)).await
}

/// The parent chains and the database, started before the sidechain.
#[derive(Debug)]
pub struct Parents {
    /// The database server (a private cluster unless `DATABASE_URL` is set).
    pub postgres: PgServer,
    /// Bitcoin regtest.
    pub btcd: Btcd,
    /// The regtest wallet the blocks are mined to (spendable after 100 blocks).
    pub miner: RegtestWallet,
    /// Ethereum, with the vault trusting the devnet federation and a test token.
    pub anvil: Anvil,
    /// The bridge directory whose parent chains these are, when they persist there.
    persisted_in: Option<PathBuf>,
}

impl Parents {
    /// Starts PostgreSQL (unless `DATABASE_URL` is set), btcd with 101 blocks mined, and anvil
    /// with the vault trusting the devnet federation ([`accounts::federation_vault_key`]). With
    /// `persist`, anvil keeps its chain under `bridge_dir`, and both chains resume from what is
    /// saved there ([`parents_saved`]).
    ///
    /// # Errors
    /// When a part does not start or a saved chain cannot be restored.
    pub async fn start(bridge_dir: &Path, persist: bool) -> anyhow::Result<Parents> {
        std::fs::create_dir_all(bridge_dir)?;
        let saved = bridge_dir.join(PARENTS_DIR);
        let postgres = PgServer::from_env_or_start(Some(&bridge_dir.join("postgres"))).await?;
        let miner = RegtestWallet::from_seed(*b"ferry-devnet/regtest-miner/00000")?;
        let btcd = Btcd::start(&bridge_dir.join("btcd"), miner.address()).await?;
        let chain_file = saved.join(BITCOIN_CHAIN_FILE);
        if persist && chain_file.exists() {
            let tip = btcd.restore_chain(&chain_file).await.context("restoring the saved Bitcoin chain")?;
            // The file describes the chain at the last save only: once the chain moves on it is
            // stale, so it goes (a later crash then restarts afresh rather than on an old chain).
            std::fs::remove_file(&chain_file)?;
            tracing::info!(tip, "btcd resumed the saved regtest chain");
        }
        if btcd.rpc().get_block_count().await? < 101 {
            btcd.mine(101).await?;
        }
        let key = accounts::federation_vault_key()?;
        let anvil = if persist {
            std::fs::create_dir_all(&saved)?;
            Anvil::start_persistent(key, &saved.join(ANVIL_STATE_FILE)).await?
        } else {
            Anvil::start_with_federation(key).await?
        };
        let persisted_in = persist.then(|| bridge_dir.to_path_buf());
        Ok(Parents { postgres, btcd, miner, anvil, persisted_in })
    }

    /// Saves the Bitcoin chain ([`save_bitcoin_chain`]) and stops anvil so it writes its state:
    /// what a later [`Parents::start`] with `persist` resumes from.
    ///
    /// # Errors
    /// Parents started without `persist`; RPC or file errors.
    pub async fn save(&mut self) -> anyhow::Result<()> {
        let bridge_dir = self.persisted_in.clone().context("these parent chains were not started to persist")?;
        save_bitcoin_chain(&self.btcd.rpc(), &bridge_dir).await?;
        self.anvil.shutdown();
        Ok(())
    }

    /// The vault's address, as the sidechain names it.
    pub fn vault(&self) -> EthAddress {
        EthAddress::from_bytes(self.anvil.vault().into_array())
    }

    /// The test token's address.
    pub fn token(&self) -> EthAddress {
        EthAddress::from_bytes(self.anvil.token().into_array())
    }
}

/// The running system. Fields drop in declaration order: the services first, then their
/// scratch databases, the sidechain and the parent chains they use.
#[derive(Debug)]
pub struct System {
    /// Member `i`'s relayer at position `i`.
    pub relayers: Vec<RelayerProcess>,
    /// Member `i`'s signer at position `i`.
    pub signers: Vec<SignerProcess>,
    /// Member `i`'s relayer and signer databases when [`SystemSpec::scratch_databases`], held only
    /// to be dropped after the services that use them.
    _databases: Vec<ScratchDatabase>,
    /// The sidechain.
    pub network: Network,
    /// The parent chains and the database.
    pub parents: Parents,
    /// The federation's keystores and manifest, as the signers read them.
    pub keys: FederationKeys,
    /// Prometheus scraping every service above every [`SCRAPE_INTERVAL`], evaluating
    /// `deploy/prometheus/alerts.yml`.
    pub prometheus: Prometheus,
    /// The temporary directory of an [`System::isolated`] system; declared last so it is removed
    /// after every process above has stopped.
    scratch: Option<tempfile::TempDir>,
}

/// Parent-chain confirmations of an [`System::isolated`] system's relayers.
pub const ISOLATED_CONFIRMATIONS: u32 = 2;

impl System {
    /// A system for a test or benchmark: its own loopback subnet, 300 ms blocks, the devnet
    /// federation, `users` accounts opened by deposits, relayers needing [`ISOLATED_CONFIRMATIONS`], services
    /// polling every 200 ms, and every file in a temporary directory removed when it is dropped.
    ///
    /// # Errors
    /// As [`System::start`].
    pub async fn isolated(name: &str, users: usize) -> anyhow::Result<System> {
        System::isolated_with(name, users, |_| {}).await
    }

    /// As [`System::isolated`], with `configure` applied to the spec first.
    ///
    /// # Errors
    /// As [`System::start`].
    pub async fn isolated_with(
        name: &str,
        users: usize,
        configure: impl FnOnce(&mut SystemSpec),
    ) -> anyhow::Result<System> {
        let scratch = tempfile::Builder::new().prefix("ferry-system-").tempdir()?;
        let mut spec = SystemSpec {
            network: NetworkSpec::isolated(name, accounts::FEDERATION_MEMBERS, ferry_types::GenesisState::default())?,
            users,
            bridge_dir: scratch.path().to_path_buf(),
            fresh: true,
            confirmations: ISOLATED_CONFIRMATIONS,
            poll_interval: "200ms".to_owned(),
            scratch_databases: true,
            persist_parents: false,
            vault_heartbeat_blocks: None,
            bitcoin_exit: None,
        };
        configure(&mut spec);
        let mut system = System::start(spec).await?;
        system.scratch = Some(scratch);
        Ok(system)
    }

    /// Starts everything and returns once the sidechain produces blocks and every service runs.
    ///
    /// # Errors
    /// When a part does not start; whatever started is stopped again.
    pub async fn start(mut spec: SystemSpec) -> anyhow::Result<System> {
        let parents = Parents::start(&spec.bridge_dir, spec.persist_parents).await?;
        let mut genesis = accounts::genesis(spec.users, spec.network.validators)?;
        accounts::with_ethereum(&mut genesis, anvil::CHAIN_ID, parents.vault(), &[parents.token()]);
        if let (Some(blocks), Some(bridge)) =
            (spec.vault_heartbeat_blocks, genesis.params.withdrawals.ethereum.as_mut())
        {
            bridge.heartbeat_interval_blocks = blocks;
        }
        if spec.bitcoin_exit.is_some() {
            genesis.params.withdrawals.bitcoin_exit.clone_from(&spec.bitcoin_exit);
        }
        spec.network.genesis = genesis;
        let tools = Tools::locate()?;
        let mut network = if spec.fresh {
            Network::create(spec.network.clone(), tools)?
        } else {
            Network::existing(spec.network.clone(), tools)
        };
        network.start_all()?;
        network.wait_for_height(2, Duration::from_secs(90)).await.with_context(|| {
            format!("the sidechain produced no blocks; see the logs in {}", spec.network.dir.display())
        })?;
        let keys = write_federation_keys(&spec.bridge_dir.join("keys"))?;
        let mut relayers = Vec::new();
        let mut signers = Vec::new();
        let mut databases = Vec::new();
        for member in 0..spec.network.validators {
            let postgres = &parents.postgres;
            let relayer_database = service_database(
                postgres,
                &spec,
                &format!("relayer_{member}"),
                ferry_relayer::store::ROLE,
                &mut databases,
            )
            .await?;
            relayers.push(start_relayer(&parents, &network, &spec, member, relayer_database)?);
            let signer_database = service_database(
                postgres,
                &spec,
                &format!("signer_{member}"),
                ferry_signer::store::ROLE,
                &mut databases,
            )
            .await?;
            signers.push(SignerProcess::start(signer_spec(
                &parents,
                &network,
                &keys,
                &spec,
                member,
                signer_database,
            )?)?);
        }
        let prometheus = Prometheus::start(PrometheusSpec {
            dir: spec.bridge_dir.join("prometheus"),
            scrape_interval: SCRAPE_INTERVAL,
            targets: scrape_targets(&network, &relayers, &signers)?,
            rule_files: vec![prometheus::deploy_alert_rules()],
        })
        .await?;
        let mut system =
            System { relayers, signers, _databases: databases, network, parents, keys, prometheus, scratch: None };
        if spec.fresh {
            crate::funding::deposit_openings(&mut system, spec.users).await.context("opening the devnet users")?;
        }
        Ok(system)
    }

    /// Starts the signer daemon of a candidate member — a keystore outside the genesis
    /// federation ([`crate::signer::write_candidate_keys`] from `seed`), talking to member 0's
    /// validator, with its own scratch database — at the next position of [`System::signers`];
    /// returns its account. It registers its keys and takes part in key generations it is
    /// proposed for; it signs once a hand-over made it a member.
    ///
    /// # Errors
    /// When its files, database or process cannot be set up.
    pub async fn start_candidate_signer(&mut self, seed: u64) -> anyhow::Result<Address> {
        let position = self.signers.len();
        let bridge_dir = self.keys.manifest.parent().and_then(Path::parent).context("no bridge directory")?.to_owned();
        let (keystore, account) =
            crate::signer::write_candidate_keys(&bridge_dir.join(format!("candidate{position}")), seed)?;
        let database = self.parents.postgres.scratch_database(&format!("signer_{position}")).await?;
        let database_url = migrate_for_service(database.url(), ferry_signer::store::ROLE).await?;
        let mut spec = SignerConfigSpec::new(
            bridge_dir.join(format!("signer{position}")),
            self.chain_rpc(0),
            database_url,
            keystore,
            &self.keys.passphrase_file,
            &self.keys.manifest,
        )
        .with_ethereum(anvil::CHAIN_ID, self.parents.vault().to_string())
        .with_cap(Denom::erc20(&self.parents.token()).to_string(), TOKEN_CAP)
        .with_trust_root(self.network.genesis_file(), Vec::new());
        if let Some(first) = self.signers.first() {
            spec.poll_interval.clone_from(&first.spec().poll_interval);
        }
        self._databases.push(database);
        self.signers.push(SignerProcess::start(spec)?);
        Ok(account)
    }

    /// Stops the system with its parent chains saved (it was started with `persist_parents`):
    /// the relayers and signers first, so nothing moves while the chains are saved, then the rest.
    /// A [`System::start`] of the same spec with `fresh: false` resumes it.
    ///
    /// # Errors
    /// When the chains cannot be saved (everything is stopped anyway).
    pub async fn stop_and_save(mut self) -> anyhow::Result<()> {
        self.relayers.clear();
        self.signers.clear();
        self.parents.save().await
    }

    /// Every metrics endpoint of the system, as Prometheus scrapes it.
    ///
    /// # Errors
    /// Never for the URLs the harnesses build.
    pub fn scrape_targets(&self) -> anyhow::Result<Vec<ScrapeTarget>> {
        scrape_targets(&self.network, &self.relayers, &self.signers)
    }

    /// Member `member`'s validator RPC (each member's services talk to its own validator).
    pub fn chain_rpc(&self, member: usize) -> String {
        chain_rpc(&self.network, member)
    }

    /// The URL member `member`'s relayer connects to its database with (as `ferry_relayer`).
    ///
    /// # Errors
    /// When there is no such member.
    pub fn relayer_database_url(&self, member: usize) -> anyhow::Result<String> {
        let relayer = self.relayers.get(member).with_context(|| format!("no relayer for member {member}"))?;
        Ok(relayer.database_url().to_owned())
    }

    /// PIDs of every process the system started (validators, services, parent chains,
    /// PostgreSQL, Prometheus), with their program names.
    pub fn pids(&self) -> Vec<(u32, &'static str)> {
        let mut pids = self.network.pids();
        pids.extend(self.service_pids());
        pids
    }

    /// PIDs of the processes beside the sidechain, services first (what [`System::detach`]
    /// hands over for the bridge's pid file).
    fn service_pids(&self) -> Vec<(u32, &'static str)> {
        let mut pids = Vec::new();
        pids.extend(self.prometheus.pid().map(|pid| (pid, "prometheus")));
        pids.extend(self.relayers.iter().filter_map(RelayerProcess::pid).map(|pid| (pid, "ferry-relayer")));
        pids.extend(self.signers.iter().filter_map(SignerProcess::pid).map(|pid| (pid, "ferry-signer")));
        pids.extend(self.parents.anvil.pid().map(|pid| (pid, "anvil")));
        pids.extend(self.parents.btcd.pid().map(|pid| (pid, "btcd")));
        pids.extend(self.parents.postgres.pid().map(|pid| (pid, "postgres")));
        pids
    }

    /// Leaves every process running (for `make devnet`): the sidechain's PIDs go to its pid file,
    /// the others are returned, services first, for the bridge's pid file.
    ///
    /// # Errors
    /// When the sidechain's pid file cannot be written.
    pub fn detach(self) -> anyhow::Result<Vec<(u32, &'static str)>> {
        let pids = self.service_pids();
        let System { parents, network, relayers, signers, prometheus, .. } = self;
        network.detach()?;
        // Each handle forgets its child, so dropping it no longer stops the process.
        prometheus.detach();
        for relayer in relayers {
            relayer.detach();
        }
        for signer in signers {
            signer.detach();
        }
        let Parents { postgres, btcd, anvil, .. } = parents;
        anvil.detach();
        btcd.detach();
        postgres.detach();
        Ok(pids)
    }
}

/// Member `member`'s validator RPC.
fn chain_rpc(network: &Network, member: usize) -> String {
    format!("http://{}:{RPC_PORT}", network.spec().ip(member))
}

/// The URL service `role` connects to the service database `name` with, its migrations applied
/// as the owner ([`migrate_for_service`]): with [`SystemSpec::scratch_databases`] a scratch
/// database of this run (kept in `scratch`, dropped with the system), else the devnet's stable
/// database of that name — emptied first for a fresh system (a relayer's cursors or a signer's
/// double-sign guard from an earlier chain must not meet the new one).
async fn service_database(
    postgres: &PgServer,
    spec: &SystemSpec,
    name: &str,
    role: &str,
    scratch: &mut Vec<ScratchDatabase>,
) -> anyhow::Result<String> {
    let owner_url = if spec.scratch_databases {
        let database = postgres.scratch_database(name).await?;
        let url = database.url().to_owned();
        scratch.push(database);
        url
    } else {
        if spec.fresh {
            postgres.drop_database(name).await?;
        }
        postgres.create_database(name).await?
    };
    migrate_for_service(&owner_url, role).await
}

fn start_relayer(
    parents: &Parents,
    network: &Network,
    spec: &SystemSpec,
    member: usize,
    database_url: String,
) -> anyhow::Result<RelayerProcess> {
    let btcd = &parents.btcd;
    RelayerProcess::start(RelayerSetup {
        dir: spec.bridge_dir.join(format!("relayer{member}")),
        member,
        chain_rpc: chain_rpc(network, member),
        genesis_file: network.genesis_file(),
        endpoints: Vec::new(),
        database_url,
        bitcoin: Some((btcd.rpc_url(), btcd.rpc_user().to_owned(), btcd.rpc_password_file())),
        ethereum: Some((parents.anvil.rpc_url().to_owned(), parents.vault().to_string())),
        confirmations: spec.confirmations,
        bitcoin_tiers: Vec::new(),
        ethereum_finality: ferry_relayer::config::Finality::Depth,
        poll_interval: spec.poll_interval.clone(),
        ethereum_key: anvil::RELAYER_PRIVATE_KEYS.get(member).map(|key| (*key).to_owned()),
    })
}

fn signer_spec(
    parents: &Parents,
    network: &Network,
    keys: &FederationKeys,
    spec: &SystemSpec,
    member: usize,
    database_url: String,
) -> anyhow::Result<SignerConfigSpec> {
    let mut signer = SignerConfigSpec::for_member(
        keys,
        member,
        spec.bridge_dir.join(format!("signer{member}")),
        chain_rpc(network, member),
        database_url,
    )?
    .with_ethereum(anvil::CHAIN_ID, parents.vault().to_string())
    .with_cap(Denom::erc20(&parents.token()).to_string(), TOKEN_CAP)
    .with_trust_root(network.genesis_file(), Vec::new());
    signer.poll_interval = spec.poll_interval.clone();
    Ok(signer)
}

/// Each validator's application and CometBFT metrics, and each relayer's and signer's.
fn scrape_targets(
    network: &Network,
    relayers: &[RelayerProcess],
    signers: &[SignerProcess],
) -> anyhow::Result<Vec<ScrapeTarget>> {
    let mut targets = Vec::new();
    for member in 0..network.spec().validators {
        let ip = network.spec().ip(member);
        targets.push(ScrapeTarget { kind: ServiceKind::Chain, member, address: format!("{ip}:{APP_METRICS_PORT}") });
        let cometbft = format!("{ip}:{COMETBFT_METRICS_PORT}");
        targets.push(ScrapeTarget { kind: ServiceKind::CometBft, member, address: cometbft });
    }
    for (member, relayer) in relayers.iter().enumerate() {
        targets.push(ScrapeTarget::from_metrics_url(ServiceKind::Relayer, member, &relayer.metrics_url())?);
    }
    for (member, signer) in signers.iter().enumerate() {
        targets.push(ScrapeTarget::from_metrics_url(ServiceKind::Signer, member, &signer.metrics_url())?);
    }
    Ok(targets)
}

/// How long a submitted sidechain transaction may take to be included.
const INCLUSION_TIMEOUT: Duration = Duration::from_secs(30);
/// The fee budget [`System::withdraw`] gives a Bitcoin withdrawal (sat): about ten times a lone
/// release's share at the devnet's start rate.
pub const TEST_BITCOIN_BUDGET: u128 = 20_000;

impl System {
    /// A client of member `member`'s validator.
    ///
    /// # Errors
    /// Never for the URLs this type builds.
    pub fn client(&self, member: usize) -> anyhow::Result<FerryClient> {
        self.network.client(member)
    }

    /// Pays `sats` from the regtest miner to the chain's current peg with a memo naming
    /// `recipient` (a deposit; it mints once the relayers see the confirmations).
    ///
    /// # Errors
    /// RPC errors, or a miner without enough mature coins.
    pub async fn deposit_btc(&mut self, recipient: &Address, sats: u64) -> anyhow::Result<Txid> {
        self.deposit_btc_outputs(recipient, &[sats]).await
    }

    /// As [`System::deposit_btc`], one transaction paying the peg one output per amount in
    /// `outputs` (output `i` is deposit `btc:<txid>:i`), with the memo last.
    ///
    /// # Errors
    /// As [`System::deposit_btc`].
    pub async fn deposit_btc_outputs(&mut self, recipient: &Address, outputs: &[u64]) -> anyhow::Result<Txid> {
        let federation: ferry_types::genesis::Federation =
            self.client(0)?.query("/federation", None).await?.context("the chain has no federation")?;
        let peg = Peg::new(&federation.bitcoin.context("the chain has no Bitcoin peg")?)?;
        let outputs: Vec<(&Peg, u64)> = outputs.iter().map(|sats| (&peg, *sats)).collect();
        self.pay_pegs(recipient, &outputs).await
    }

    /// One transaction paying each `(peg, sats)` of `outputs` (output `i` is deposit
    /// `btc:<txid>:i`), with a memo naming `recipient` last: a wallet paying pegs it saved.
    ///
    /// # Errors
    /// As [`System::deposit_btc`].
    pub async fn pay_pegs(&mut self, recipient: &Address, outputs: &[(&Peg, u64)]) -> anyhow::Result<Txid> {
        let mut outputs: Vec<TxOut> = outputs
            .iter()
            .map(|(peg, sats)| TxOut { value: Sats::from_sat(*sats), script_pubkey: peg.script_pubkey() })
            .collect();
        outputs.push(TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(recipient) });
        let rpc = self.parents.btcd.rpc();
        self.parents.miner.pay(&rpc, outputs).await
    }

    /// Burns `amount` of `asset` from `key`'s account for `destination`, paying the minimum fee in
    /// `asset`; returns the withdrawal's id once the burn is in a block.
    ///
    /// # Errors
    /// When the chain refuses it (the error names why) or RPC errors.
    pub async fn withdraw(
        &self,
        key: &AccountKey,
        asset: &Denom,
        amount: u128,
        destination: &str,
    ) -> anyhow::Result<(WithdrawalId, u64)> {
        // A Bitcoin withdrawal's budget: ample at devnet rates, never more than leaves a 546 sat output.
        let max_fee = if *asset == Denom::sat() { TEST_BITCOIN_BUDGET.min(amount.saturating_sub(546)) } else { 0 };
        self.withdraw_with_budget(key, asset, amount, destination, max_fee).await
    }

    /// As [`System::withdraw`] with the fee budget `max_fee` (sat; 0 for Ethereum).
    ///
    /// # Errors
    /// When the chain refuses it (the error names why) or RPC errors.
    pub async fn withdraw_with_budget(
        &self,
        key: &AccountKey,
        asset: &Denom,
        amount: u128,
        destination: &str,
        max_fee: u128,
    ) -> anyhow::Result<(WithdrawalId, u64)> {
        let client = self.client(0)?;
        let params = client.params().await?;
        let fee = params.min_fee(asset).with_context(|| format!("`{asset}` cannot pay fees"))?;
        let mut wallet = Wallet::load(&client, key.clone()).await?;
        let msg = Msg::Withdraw(MsgWithdraw {
            sender: key.address(),
            asset: asset.clone(),
            amount: Amount::new(amount),
            destination: destination.to_owned(),
            max_fee: Amount::new(max_fee),
        });
        let fee = Coin { denom: asset.clone(), amount: fee };
        let inclusion = wallet.submit(&client, &fee, &[msg], INCLUSION_TIMEOUT).await?;
        anyhow::ensure!(inclusion.code == 0, "withdrawal refused in block {}: {}", inclusion.height, inclusion.log);
        let id = inclusion
            .event_attribute(ev::WITHDRAWAL_QUEUED, ev::WITHDRAWAL_ID)
            .context("the withdrawal's block names no withdrawal id")?
            .parse()?;
        // Read back through the same node only once the block after it exists: the transaction
        // is found as soon as its block is executed, its state once that block is committed.
        client.wait_for_height(inclusion.height + 1, INCLUSION_TIMEOUT).await?;
        Ok((id, inclusion.height))
    }

    /// The chain's record of withdrawal `id`.
    ///
    /// # Errors
    /// RPC errors, or an unknown id.
    pub async fn withdrawal(&self, id: WithdrawalId) -> anyhow::Result<WithdrawalView> {
        self.client(0)?.query(&format!("/withdrawal/{id}"), None).await?.with_context(|| format!("{id} is unknown"))
    }

    /// Waits until withdrawal `id` reaches `status` (or a later one), mining a block on both
    /// parent chains every `block_interval` meanwhile so releases gather their confirmations.
    ///
    /// # Errors
    /// When it is not there within `timeout` (naming where it stands), or RPC errors.
    pub async fn wait_for_withdrawal(
        &self,
        id: WithdrawalId,
        status: WithdrawalStatus,
        block_interval: Duration,
        timeout: Duration,
    ) -> anyhow::Result<WithdrawalView> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let view = self.withdrawal(id).await?;
            if view.status >= status {
                return Ok(view);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("{id} is {:?} after {timeout:?}, not {status:?}: {view:?}", view.status);
            }
            self.mine_parents(1).await?;
            tokio::time::sleep(block_interval).await;
        }
    }

    /// Waits until `address` holds at least `amount` of `denom` on the sidechain (a deposit
    /// minted), mining a block on both parent chains every `block_interval` meanwhile.
    ///
    /// # Errors
    /// When it does not within `timeout` (naming the balance reached), or RPC errors.
    pub async fn wait_for_balance(
        &self,
        address: &Address,
        denom: &Denom,
        amount: u128,
        block_interval: Duration,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let client = self.client(0)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let balances = client.balances(address, None).await?;
            let held = balances.balances.iter().find(|coin| &coin.denom == denom).map_or(0, |coin| coin.amount.get());
            if held >= amount {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("{address} holds {held}{denom} after {timeout:?}, not {amount}{denom}");
            }
            self.mine_parents(1).await?;
            tokio::time::sleep(block_interval).await;
        }
    }

    /// Waits until the chain decided Bitcoin deposit `txid:vout` (minted, or below the minimum),
    /// mining a block on both parent chains every `block_interval` meanwhile; returns its record
    /// (`minted_amount` is what the recipient was credited: the amount less what it prepaid for
    /// its spending).
    ///
    /// # Errors
    /// When it is not decided within `timeout`, or RPC errors.
    pub async fn wait_for_deposit(
        &self,
        txid: &Txid,
        vout: u32,
        block_interval: Duration,
        timeout: Duration,
    ) -> anyhow::Result<ferry_types::deposit_record::DepositRecord> {
        let client = self.client(0)?;
        let path = format!("/deposit/btc:{txid}:{vout}");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let record: Option<ferry_types::deposit_record::DepositRecord> = client.query(&path, None).await?;
            if let Some(record) =
                record.filter(|record| record.status != ferry_types::deposit_record::DepositStatus::Pending)
            {
                return Ok(record);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("deposit btc:{txid}:{vout} not decided after {timeout:?}");
            }
            self.mine_parents(1).await?;
            tokio::time::sleep(block_interval).await;
        }
    }

    /// Mines `blocks` on btcd and on anvil.
    ///
    /// # Errors
    /// RPC errors.
    pub async fn mine_parents(&self, blocks: u32) -> anyhow::Result<()> {
        self.parents.btcd.mine(blocks).await?;
        self.parents.anvil.mine(u64::from(blocks)).await
    }
}
