//! A private anvil (Ethereum development node) on loopback, for the end-to-end tests and the
//! devnet: started on a free port of 127.0.0.1 with the Prague hardfork, with `FerryVault` and
//! a mintable `TestToken` deployed from the committed artifacts (`contracts/out/`) by anvil's
//! first dev account. The vault trusts a federation key given by the caller
//! ([`Anvil::start_with_federation`]) or the fixed, publicly known [`dev_federation`]
//! ([`Anvil::start`]).
//!
//! For release tests and the gas benchmark it also signs batches as a test federation would
//! ([`sign_release`]: threshold_crypto shares combined at the threshold) and measures a release's
//! gas on a rolled-back chain ([`Anvil::measure_release_gas`]).
//!
//! Dropping an [`Anvil`] kills the process it started (that PID only). Every Ethereum call goes
//! through `ferry_parent_chains::ethereum`; this file makes none of its own.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_parent_chains::ethereum::vault::release_calldata;
use ferry_parent_chains::ethereum::{DevNode, EthAddress, EthereumWatcher, Receipt, SnapshotId, U256, Wallet};
use ferry_types::Address;
use ferry_types::Amount;
use ferry_types::release::bls::{self, eip2537_g1};
use ferry_types::release::eth::{EthAddress as BatchAddress, EthBatch, EthReleaseItem};
use rand_chacha::ChaChaRng;
use rand_chacha::rand_core::SeedableRng;
use threshold_crypto::SecretKeySet;

use crate::tools::repo_root;

/// Anvil's dev account 0 (`0xf39f…2266`): a well-known test key, never used outside a devnet.
pub const DEV_PRIVATE_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Keys of anvil's funded dev accounts 1 to 4 (the standard test mnemonic): one per federation
/// member's relayer, paying for the `FerryVault.release` transactions it sends. Public knowledge.
pub const RELAYER_PRIVATE_KEYS: [&str; 4] = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];
/// The chain id the private anvil runs with.
pub const CHAIN_ID: u64 = 31337;
/// The hardfork: Prague has the EIP-2537 BLS12-381 precompiles `FerryVault.release` uses.
pub const HARDFORK: &str = "prague";
/// Name, symbol and decimals of the deployed `TestToken`.
pub const TEST_TOKEN: (&str, &str, u8) = ("Ferry Test Dollar", "fUSD", 6);

/// Signatures the [`dev_federation`] needs (T of its 4 members).
pub const DEV_FEDERATION_THRESHOLD: usize = 3;
/// The federation epoch [`Anvil::start`] deploys the vault for (a federation's first epoch).
pub const DEV_FEDERATION_EPOCH: u64 = 1;
/// Seed of the [`dev_federation`]'s keys.
const DEV_FEDERATION_SEED: [u8; 32] = *b"ferry-devnet/anvil-federation/01";

/// How long anvil may take to answer its first RPC call.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports are tried when the one picked is taken before anvil binds it.
const PORT_ATTEMPTS: usize = 5;

/// A running private anvil with the vault and a test token deployed.
#[derive(Debug)]
pub struct Anvil {
    process: Process,
    rpc_url: String,
    wallet: Wallet,
    node: DevNode,
    /// The vault's and the token's deployment receipts (`None` when resumed from a saved state).
    deployments: Option<(Receipt, Receipt)>,
    vault_address: EthAddress,
    token_address: EthAddress,
    federation: FederationKey,
}

/// The federation a vault trusts: its aggregate BLS public key in the EIP-2537 G1 encoding (the
/// vault's constructor argument, `ferry_types::release::bls::eip2537_g1`) and its epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FederationKey {
    /// The aggregate public key, EIP-2537 G1 (128 bytes).
    pub key: [u8; 128],
    /// The federation epoch bound into every batch.
    pub epoch: u64,
}

/// The fixed test federation [`Anvil::start`] deploys the vault for: threshold_crypto keys of
/// [`DEV_FEDERATION_THRESHOLD`]-of-n signing from a fixed seed, so a test can sign releases the
/// vault accepts (with shares `secret_key_share(0..)`). Its secrets are public knowledge: it
/// must never guard anything but a local test chain.
pub fn dev_federation() -> SecretKeySet {
    SecretKeySet::random(DEV_FEDERATION_THRESHOLD - 1, &mut ChaChaRng::from_seed(DEV_FEDERATION_SEED))
}

/// The vault's form of `keys`' federation at `epoch`.
pub fn federation_key(keys: &SecretKeySet, epoch: u64) -> FederationKey {
    FederationKey { key: eip2537_g1(&keys.public_keys().public_key()), epoch }
}

/// The federation signature of `batch` by the members `signers` of `keys` (threshold_crypto share
/// indices; the first T of them are combined), EIP-2537-encoded as `FerryVault.release` takes it.
///
/// # Errors
/// Fewer signers than the threshold.
pub fn sign_release(keys: &SecretKeySet, signers: &[u64], batch: &EthBatch) -> anyhow::Result<[u8; 256]> {
    sign_message(keys, signers, &batch.signing_message())
}

/// As [`sign_release`], over any vault message (e.g. a listing change's payload).
///
/// # Errors
/// As [`sign_release`].
pub fn sign_message(keys: &SecretKeySet, signers: &[u64], message: &[u8]) -> anyhow::Result<[u8; 256]> {
    let shares =
        signers.iter().map(|&index| (index, bls::sign_share(&keys.secret_key_share(index), message))).collect();
    let signature = bls::combine(&keys.public_keys(), &shares, message)?;
    Ok(bls::eip2537_g2(&signature))
}

/// An address of the node's types as the batch's.
pub fn batch_address(address: EthAddress) -> BatchAddress {
    BatchAddress::from_bytes(address.into())
}

/// What one `FerryVault.release` transaction cost (see [`Anvil::measure_release_gas`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseGas {
    /// Members of the federation.
    pub members: u64,
    /// Signatures combined (T).
    pub threshold: usize,
    /// Gas of the whole transaction.
    pub gas_used: u64,
    /// The part paying for the calldata bytes (4 per zero byte, 16 per other byte): it varies
    /// with the zero bytes the signature happens to contain.
    pub calldata_gas: u64,
    /// `gas_used` less the 21 000 base cost and `calldata_gas`: what the vault's code spent.
    pub execution_gas: u64,
}

/// Base cost of every transaction.
const TRANSACTION_BASE_GAS: u64 = 21_000;

/// Intrinsic gas of calldata: 4 per zero byte, 16 per other byte (EIP-2028).
fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|&byte| if byte == 0 { 4 } else { 16 }).sum()
}

/// The anvil binary: `$FERRY_ANVIL`, else `.tools/bin/anvil` (installed by `make setup`).
pub fn binary() -> PathBuf {
    std::env::var_os("FERRY_ANVIL").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".tools/bin/anvil"))
}

/// A port the kernel reports free on 127.0.0.1. Another process may take it before anvil binds
/// it; anvil then exits ("address in use") and [`Anvil::start`] retries on a new port. (Only
/// another anvil with the same chain id taking exactly this port in that window would be
/// mistaken for ours.)
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Kills `child` (SIGKILL) and reaps it; it may already have exited, which is fine.
fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The anvil process; dropping it kills that PID.
#[derive(Debug)]
struct Process(Option<Child>);

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            kill(child);
        }
    }
}

/// What the process wrote to `log` (its stderr), for error messages.
fn read_log(log: &mut File) -> String {
    let mut text = String::new();
    let _ = log.seek(SeekFrom::Start(0));
    let _ = log.read_to_string(&mut text);
    text.trim().to_owned()
}

impl Anvil {
    /// Starts anvil on a free loopback port, waits for its RPC and deploys, from dev account 0,
    /// `FerryVault` for the [`dev_federation`] at [`DEV_FEDERATION_EPOCH`] and `TestToken`.
    ///
    /// # Errors
    /// As [`start_with_federation`](Self::start_with_federation).
    pub async fn start() -> anyhow::Result<Anvil> {
        Self::start_with_federation(federation_key(&dev_federation(), DEV_FEDERATION_EPOCH)).await
    }

    /// Starts anvil on a free loopback port, waits for its RPC and deploys, from dev account 0,
    /// `TestToken` and then `FerryVault` trusting `federation` with the test token listed (the
    /// devnet genesis lists it too).
    ///
    /// # Errors
    /// When the binary is missing, the process exits or does not answer within 30 s, runs
    /// another chain id, or a deployment fails (also for a federation key the vault refuses).
    /// The process is killed on every error.
    pub async fn start_with_federation(federation: FederationKey) -> anyhow::Result<Anvil> {
        Self::start_with_state(federation, None).await
    }

    /// As [`start_with_federation`](Self::start_with_federation), keeping the chain in
    /// `state_file`: anvil writes it every second and when stopped gracefully
    /// ([`Anvil::shutdown`]), with the states of past blocks (reads at old heights keep working).
    /// When the file exists the chain resumes from it — same blocks, hashes and balances — and
    /// nothing is deployed again (the vault and the token are at their deterministic addresses).
    ///
    /// # Errors
    /// As [`start_with_federation`](Self::start_with_federation); a saved chain without the
    /// contracts.
    pub async fn start_persistent(federation: FederationKey, state_file: &Path) -> anyhow::Result<Anvil> {
        Self::start_with_state(federation, Some(state_file)).await
    }

    async fn start_with_state(federation: FederationKey, state_file: Option<&Path>) -> anyhow::Result<Anvil> {
        let binary = binary();
        if !binary.exists() {
            bail!("anvil not found at {}: run `make setup` (or set FERRY_ANVIL)", binary.display());
        }
        let resumed = state_file.is_some_and(Path::exists);
        let mut attempt = 0;
        let (process, rpc_url, node) = loop {
            attempt += 1;
            let port = free_port()?;
            match Self::spawn(&binary, port, state_file).await? {
                Ok(started) => break started,
                Err(stderr) if attempt < PORT_ATTEMPTS && stderr.contains("in use") => continue,
                Err(stderr) => bail!("anvil exited during startup on port {port}: {stderr}"),
            }
        };
        // `process` kills anvil if an error returns early below.
        let wallet = Wallet::connect(&rpc_url, DEV_PRIVATE_KEY)?
            .with_receipt_wait(Duration::from_millis(20), Duration::from_secs(30));
        if resumed {
            // Dev account 0 deployed the token (nonce 0), then the vault (nonce 1).
            let token_address = wallet.address().create(0);
            let vault_address = wallet.address().create(1);
            for (name, address) in [("TestToken", token_address), ("FerryVault", vault_address)] {
                anyhow::ensure!(
                    node.has_code(address).await?,
                    "the saved anvil chain has no {name} at {address}: remove the devnet directory to start afresh"
                );
            }
            let deployments = None;
            return Ok(Anvil { process, rpc_url, wallet, node, deployments, vault_address, token_address, federation });
        }
        let (name, symbol, decimals) = TEST_TOKEN;
        let token = wallet.deploy_test_token(name, symbol, decimals).await.context("deploying TestToken")?;
        let token_address = token.contract_address.context("the TestToken deployment created no contract")?;
        let vault = wallet
            .deploy_vault(&federation.key, federation.epoch, &[token_address])
            .await
            .context("deploying FerryVault")?;
        let vault_address = vault.contract_address.context("the FerryVault deployment created no contract")?;
        let deployments = Some((vault, token));
        Ok(Anvil { process, rpc_url, wallet, node, deployments, vault_address, token_address, federation })
    }

    /// Stops anvil with SIGTERM, so a persistent one ([`Anvil::start_persistent`]) writes its
    /// state file, and waits (at most 10 s, then kills it).
    pub fn shutdown(&mut self) {
        let Some(mut child) = self.process.0.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill(child);
    }

    /// Deploys another `FerryVault` trusting `federation` on this node (e.g. a second vault of
    /// the same federation, or one per federation size), with the test token listed; returns its
    /// address. The vault of [`vault`](Self::vault) stays as it is.
    ///
    /// # Errors
    /// RPC errors, or a deployment the vault's constructor refuses.
    pub async fn deploy_vault(&self, federation: &FederationKey) -> anyhow::Result<(EthAddress, Receipt)> {
        let receipt = self
            .wallet
            .deploy_vault(&federation.key, federation.epoch, &[self.token_address])
            .await
            .context("deploying FerryVault")?;
        let address = receipt.contract_address.context("the FerryVault deployment created no contract")?;
        Ok((address, receipt))
    }

    /// Spawns anvil on `port` and waits until it answers. `Ok(Err(log))` when it exited
    /// (e.g. the port was taken meanwhile).
    async fn spawn(
        binary: &Path,
        port: u16,
        state_file: Option<&Path>,
    ) -> anyhow::Result<Result<(Process, String, DevNode), String>> {
        let mut log = tempfile::tempfile().context("creating anvil's log file")?;
        let mut command = Command::new(binary);
        if let Some(state) = state_file {
            command.arg("--state").arg(state).args(["--state-interval", "1", "--preserve-historical-states"]);
        }
        let child = command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--hardfork", HARDFORK, "--chain-id", &CHAIN_ID.to_string(), "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log.try_clone()?))
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        // Killed on every early return below.
        let mut process = Process(Some(child));
        let rpc_url = format!("http://127.0.0.1:{port}");
        let probe = DevNode::connect(&rpc_url)?.with_request_timeout(Duration::from_secs(1));
        let started = Instant::now();
        loop {
            if let Some(child) = process.0.as_mut()
                && let Some(status) = child.try_wait().context("polling the anvil process")?
            {
                process.0 = None;
                return Ok(Err(format!("{status}: {}", read_log(&mut log))));
            }
            match probe.chain_id().await {
                Ok(CHAIN_ID) => break,
                Ok(other) => {
                    bail!("the node at {rpc_url} runs chain id {other}, not {CHAIN_ID}: is another node on that port?")
                }
                Err(_) if started.elapsed() < STARTUP_TIMEOUT => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(error) => bail!(
                    "anvil at {rpc_url} gave no answer within {STARTUP_TIMEOUT:?}: {error}; log: {}",
                    read_log(&mut log)
                ),
            }
        }
        let node = DevNode::connect(&rpc_url)?;
        Ok(Ok((process, rpc_url, node)))
    }

    /// The JSON-RPC URL, `http://127.0.0.1:<port>`.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.0.as_ref().map(Child::id)
    }

    /// The deployed `FerryVault`.
    pub fn vault(&self) -> EthAddress {
        self.vault_address
    }

    /// The gas of releasing the same one-item batch (1 gwei of ETH to an untouched account,
    /// nonce 1) signed by `threshold` of the `members` of a federation whose keys come from
    /// `seed`: deploys a vault for that federation, funds it, releases, and rolls the chain back
    /// to where it was, so every measurement starts from the same state (and the vault, and with
    /// it the signed message, gets the same address each time).
    ///
    /// # Errors
    /// RPC errors, a refused release, `threshold` above `members`, or a transaction priced by the
    /// EIP-7623 calldata floor (then `execution_gas` would not be what the code spent).
    pub async fn measure_release_gas(&self, members: u64, threshold: usize, seed: u64) -> anyhow::Result<ReleaseGas> {
        let first_signer = members.checked_sub(u64::try_from(threshold)?).context("more signers than members")?;
        let degree = threshold.checked_sub(1).context("a threshold of zero signatures")?;
        let keys = SecretKeySet::random(degree, &mut ChaChaRng::seed_from_u64(seed));
        let federation = federation_key(&keys, DEV_FEDERATION_EPOCH);
        let snapshot = self.snapshot().await?;
        let measured = async {
            let (vault, _) = self.deploy_vault(&federation).await?;
            self.wallet.deposit_eth(vault, &Address::from_bytes([0x77; 20]), U256::from(1_000_000_000u64)).await?;
            let batch = EthBatch {
                chain_id: CHAIN_ID,
                vault: batch_address(vault),
                epoch: federation.epoch,
                nonce: 1,
                exit_height: 1,
                exit_root: [0x5e; 32],
                items: vec![EthReleaseItem {
                    token: BatchAddress::ZERO,
                    recipient: BatchAddress::from_bytes([0xf0; 20]),
                    amount: Amount::new(1_000_000_000),
                }],
            };
            let signers: Vec<u64> = (first_signer..members).collect();
            let signature = sign_release(&keys, &signers, &batch)?;
            let receipt = self.wallet.release(vault, &batch, &signature).await?;
            let calldata = release_calldata(&batch, &signature);
            let calldata_gas = calldata_gas(&calldata);
            let tokens: u64 = calldata.iter().map(|&byte| if byte == 0 { 1 } else { 4 }).sum();
            anyhow::ensure!(
                receipt.gas_used > TRANSACTION_BASE_GAS + 10 * tokens,
                "release gas {} is the EIP-7623 calldata floor",
                receipt.gas_used
            );
            let execution_gas = receipt.gas_used - TRANSACTION_BASE_GAS - calldata_gas;
            Ok::<_, anyhow::Error>(ReleaseGas {
                members,
                threshold,
                gas_used: receipt.gas_used,
                calldata_gas,
                execution_gas,
            })
        }
        .await;
        self.revert(snapshot).await?;
        measured
    }

    /// The federation the deployed vault trusts.
    pub fn federation(&self) -> &FederationKey {
        &self.federation
    }

    /// The deployed `TestToken`.
    pub fn token(&self) -> EthAddress {
        self.token_address
    }

    /// The receipts of the vault's and the token's deployments (`None` for a chain resumed from
    /// a saved state, which deployed nothing).
    pub fn deployments(&self) -> Option<(&Receipt, &Receipt)> {
        self.deployments.as_ref().map(|(vault, token)| (vault, token))
    }

    /// Dev account 0's wallet (it deployed the contracts and makes the deposits).
    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    /// The mining, snapshot and reorg controls.
    pub fn dev_node(&self) -> &DevNode {
        &self.node
    }

    /// A relayer's watcher of this node's vault.
    ///
    /// # Errors
    /// Never for the URL this type builds; kept fallible as `EthereumWatcher::connect` is.
    pub fn watcher(&self) -> anyhow::Result<EthereumWatcher> {
        Ok(EthereumWatcher::connect(&self.rpc_url, self.vault_address)?)
    }

    /// Deposits `wei` for `recipient` (`FerryVault.deposit`), mined in its own block.
    ///
    /// # Errors
    /// RPC errors or a revert (zero wei, zero recipient).
    pub async fn deposit_eth(&self, recipient: &Address, wei: U256) -> anyhow::Result<Receipt> {
        Ok(self.wallet.deposit_eth(self.vault_address, recipient, wei).await?)
    }

    /// Mints `amount` of `token` (a `TestToken`) to dev account 0, approves the vault for it and
    /// deposits it for `recipient`; returns the `depositToken` receipt.
    ///
    /// # Errors
    /// RPC errors or a revert.
    pub async fn deposit_token(&self, token: EthAddress, amount: U256, recipient: &Address) -> anyhow::Result<Receipt> {
        self.wallet.mint_test_token(token, self.wallet.address(), amount).await.context("minting")?;
        self.wallet.approve(token, self.vault_address, amount).await.context("approving the vault")?;
        Ok(self.wallet.deposit_token(self.vault_address, token, amount, recipient).await?)
    }

    /// The latest block number.
    ///
    /// # Errors
    /// RPC errors.
    pub async fn block_number(&self) -> anyhow::Result<u64> {
        Ok(self.node.block_number().await?)
    }

    /// Mines `blocks` empty blocks.
    ///
    /// # Errors
    /// RPC errors.
    pub async fn mine(&self, blocks: u64) -> anyhow::Result<()> {
        Ok(self.node.mine(blocks).await?)
    }

    /// Moves the chain's clock `seconds` forward and mines a block on it (`evm_increaseTime`):
    /// how a test lets the vault's escape delay pass.
    ///
    /// # Errors
    /// RPC errors.
    pub async fn pass_time(&self, seconds: u64) -> anyhow::Result<()> {
        self.node.increase_time(seconds).await?;
        Ok(self.node.mine(1).await?)
    }

    /// Sets `account`'s ether balance to `wei` (`anvil_setBalance`), as of the next block: the
    /// devnet's faucet, and in tests a way to take value out of the vault behind the chain's back.
    ///
    /// # Errors
    /// RPC errors.
    pub async fn set_balance(&self, account: EthAddress, wei: U256) -> anyhow::Result<()> {
        Ok(self.node.set_balance(account, wei).await?)
    }

    /// Records the chain state (`evm_snapshot`).
    ///
    /// # Errors
    /// RPC errors.
    pub async fn snapshot(&self) -> anyhow::Result<SnapshotId> {
        Ok(self.node.snapshot().await?)
    }

    /// Rolls back to `snapshot` (`evm_revert`), discarding the blocks mined since.
    ///
    /// # Errors
    /// RPC errors, or an unknown snapshot.
    pub async fn revert(&self, snapshot: SnapshotId) -> anyhow::Result<()> {
        Ok(self.node.revert(snapshot).await?)
    }

    /// Replaces the last `depth` blocks with new ones holding only `reinclude` (transaction
    /// hash, offset of its new block from the first replaced height) — see
    /// `ferry_parent_chains::ethereum::dev_node` (`anvil_reorg`).
    ///
    /// # Errors
    /// RPC errors, or an unknown transaction.
    pub async fn reorg(&self, depth: u64, reinclude: &[(&str, u64)]) -> anyhow::Result<()> {
        Ok(self.node.reorg(depth, reinclude).await?)
    }

    /// Kills the process now (also done on drop).
    pub fn stop(&mut self) {
        if let Some(child) = self.process.0.take() {
            kill(child);
        }
    }

    /// Leaves the process running and returns its PID, for `make devnet` to record in its pid
    /// file; from then on nothing here stops it.
    pub fn detach(mut self) -> Option<u32> {
        // Dropping a `Child` neither kills nor waits for the process.
        self.process.0.take().map(|child| child.id())
    }
}
