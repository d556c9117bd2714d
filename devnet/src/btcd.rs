//! A private btcd in regtest on loopback, for the end-to-end tests and the devnet, and a tiny
//! single-key wallet ([`RegtestWallet`]) that spends the coinbases btcd mines to it.
//!
//! [`Btcd::start`] picks free ports on 127.0.0.1, keeps everything (data, logs, the config file
//! holding the RPC credentials) under one directory, and waits until the RPC answers. The
//! process is stopped when the [`Btcd`] is dropped, unless [`Btcd::detach`] handed it over.
//!
//! btcd runs with `--rejectnonstd`: tests meet Bitcoin's standardness rules as on mainnet.
//!
//! Reorganisations for tests use btcd's `invalidateblock` (present in v0.26):
//! [`Btcd::reorg_from`] invalidates the block at a height and mines a replacement branch.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::key::CompressedPublicKey;
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, BlockHash, KnownHrp, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use ferry_parent_chains::bitcoin::BitcoinRpc;
use serde_json::json;

/// The RPC user of every btcd this module starts (the password is random, in a file).
pub const RPC_USER: &str = "ferry";

/// Regtest coinbase maturity: a coinbase of height `h` can be spent in block `h + 100`.
pub const COINBASE_MATURITY: u64 = 100;

/// How long btcd may take to answer its first RPC.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts at starting btcd (another process may take a port between our probe and btcd's bind).
const START_ATTEMPTS: usize = 3;

/// A running btcd (regtest). Dropping it kills the process (SIGKILL; the chain is disposable).
#[derive(Debug)]
pub struct Btcd {
    child: Option<Child>,
    dir: PathBuf,
    rpc_addr: SocketAddr,
    p2p_addr: SocketAddr,
    rpc: BitcoinRpc,
    remove_on_drop: bool,
    /// The mining address and extra flags it was started with (a restart reuses them).
    mining_address: String,
    extra_args: Vec<String>,
}

impl Btcd {
    /// The btcd binary: `$FERRY_BTCD`, else `.tools/bin/btcd` (installed by `make setup`).
    ///
    /// # Errors
    /// When it does not exist, naming the command that installs it.
    pub fn binary() -> anyhow::Result<PathBuf> {
        let path = std::env::var_os("FERRY_BTCD")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::tools::repo_root().join(".tools/bin/btcd"));
        if !path.exists() {
            bail!("btcd not found at {}: run `make setup` (or `bash deploy/setup.sh`)", path.display());
        }
        Ok(path)
    }

    /// Starts btcd for a test: in a fresh `target/btcd/<name>-<pid>` that is deleted when the
    /// node is dropped without a panic in flight (a failed test keeps the logs).
    ///
    /// # Errors
    /// As [`Btcd::start`].
    pub async fn isolated(name: &str, mining_address: &bitcoin::Address) -> anyhow::Result<Btcd> {
        let dir = crate::tools::repo_root().join("target/btcd").join(format!("{name}-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let mut btcd = Btcd::start(&dir, mining_address).await?;
        btcd.remove_on_drop = true;
        Ok(btcd)
    }

    /// Starts btcd in regtest with its data, logs, config and password file under `dir`
    /// (created if missing; an existing chain there is reused), RPC and P2P on free 127.0.0.1
    /// ports, paying mined blocks to `mining_address`; returns once the RPC answers.
    ///
    /// btcd itself creates an empty `~/.btcd` (it makes its default home directory whatever
    /// the flags say); nothing is written there.
    ///
    /// # Errors
    /// When btcd is missing, cannot be started, exits, or does not answer within 30 s (the
    /// error quotes the end of its log).
    pub async fn start(dir: &Path, mining_address: &bitcoin::Address) -> anyhow::Result<Btcd> {
        let binary = Btcd::binary()?;
        let password = prepare_dir(dir)?;
        Btcd::start_with_args(&binary, dir, &mining_address.to_string(), &password, Vec::new()).await
    }

    /// Starts the miner of a two-node fee market in `dir`: a btcd connected only to `relay` (the
    /// node relayers and users talk to), with a minimum relay fee of `min_fee_rate` sat/vB and no
    /// free or priority space, so it neither accepts nor mines a transaction paying less. Blocks
    /// mined here reach the relay node over P2P. Moving the market = [`Btcd::restart_miner`].
    ///
    /// # Errors
    /// As [`Btcd::start`].
    pub async fn start_miner(
        dir: &Path,
        mining_address: &bitcoin::Address,
        relay: SocketAddr,
        min_fee_rate: u64,
    ) -> anyhow::Result<Btcd> {
        let binary = Btcd::binary()?;
        let password = prepare_dir(dir)?;
        let args = miner_args(relay, min_fee_rate);
        let mut miner = Btcd::start_with_args(&binary, dir, &mining_address.to_string(), &password, args).await?;
        miner.remove_on_drop = true;
        Ok(miner)
    }

    /// Restarts a miner from [`Btcd::start_miner`] with another minimum fee rate (its chain is
    /// kept; its mempool starts empty and fills with what the relay node announces from now on).
    ///
    /// # Errors
    /// As [`Btcd::start`]; or when this node is not a miner.
    pub async fn restart_miner(&mut self, min_fee_rate: u64) -> anyhow::Result<()> {
        let relay = self
            .extra_args
            .iter()
            .find_map(|arg| arg.strip_prefix("--connect="))
            .context("not a miner node (no --connect)")?
            .parse()?;
        self.stop();
        let password = fs::read_to_string(self.dir.join("rpc.password"))?;
        let binary = Btcd::binary()?;
        let restarted = Btcd::start_with_args(
            &binary,
            &self.dir,
            &self.mining_address,
            password.trim(),
            miner_args(relay, min_fee_rate),
        )
        .await?;
        let mut restarted = restarted;
        restarted.remove_on_drop = self.remove_on_drop;
        // The old handle's process is stopped; dropping it must not remove the shared directory.
        self.remove_on_drop = false;
        let _stopped = std::mem::replace(self, restarted);
        Ok(())
    }

    /// Restarts this node on the same addresses. In regtest btcd deletes its database at every
    /// start, so the node comes back with an empty chain (genesis only): a parent chain that lost
    /// every block under a running system, as after a wiped or replaced node.
    ///
    /// # Errors
    /// As [`Btcd::start`].
    pub async fn restart_wiped(&mut self) -> anyhow::Result<()> {
        self.stop();
        let password = fs::read_to_string(self.dir.join("rpc.password"))?;
        let binary = Btcd::binary()?;
        let addrs = Some((self.rpc_addr, self.p2p_addr));
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Btcd::try_start(&binary, &self.dir, &self.mining_address, password.trim(), &self.extra_args, addrs)
                .await
            {
                Ok(mut restarted) => {
                    restarted.remove_on_drop = self.remove_on_drop;
                    self.remove_on_drop = false;
                    let _stopped = std::mem::replace(self, restarted);
                    return Ok(());
                }
                Err(error) => {
                    last_error = Some(error);
                    // The old process's ports may take a moment to be free again.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("btcd was not restarted")))
    }

    async fn start_with_args(
        binary: &Path,
        dir: &Path,
        mining_address: &str,
        password: &str,
        extra_args: Vec<String>,
    ) -> anyhow::Result<Btcd> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Btcd::try_start(binary, dir, mining_address, password, &extra_args, None).await {
                Ok(btcd) => return Ok(btcd),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("btcd was not started")))
    }

    async fn try_start(
        binary: &Path,
        dir: &Path,
        mining_address: &str,
        password: &str,
        extra_args: &[String],
        addrs: Option<(SocketAddr, SocketAddr)>,
    ) -> anyhow::Result<Btcd> {
        let (rpc_addr, p2p_addr) = match addrs {
            Some(addrs) => addrs,
            None => (free_loopback_addr()?, free_loopback_addr()?),
        };
        let log = dir.join("btcd.out");
        let log_file = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .with_context(|| format!("opening {}", log.display()))
        };
        let child = Command::new(binary)
            .arg("--configfile")
            .arg(dir.join("btcd.conf"))
            .arg("--datadir")
            .arg(dir.join("data"))
            .arg("--logdir")
            .arg(dir.join("logs"))
            .args(["--regtest", "--notls", "--nodnsseed", "--nocfilters", "--debuglevel=info"])
            // Mainnet's relay policy (regtest accepts non-standard transactions by default); what
            // btcd does not check (P2WSH witness limits) `ferry_types::release::standardness` does.
            .arg("--rejectnonstd")
            // The transaction and address indexes: `getrawtransaction` of any confirmed
            // transaction, and `searchrawtransactions`, with which `ferry deposit btc` finds a
            // key's coins however old they are.
            .args(["--txindex", "--addrindex"])
            .arg(format!("--rpclisten={rpc_addr}"))
            .arg(format!("--listen={p2p_addr}"))
            .arg(format!("--miningaddr={mining_address}"))
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(log_file()?)
            .stderr(log_file()?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let rpc = BitcoinRpc::new(&format!("http://{rpc_addr}"), RPC_USER, password)?;
        let mut btcd = Btcd {
            child: Some(child),
            dir: dir.to_path_buf(),
            rpc_addr,
            p2p_addr,
            rpc,
            remove_on_drop: false,
            mining_address: mining_address.to_owned(),
            extra_args: extra_args.to_vec(),
        };
        btcd.wait_until_ready().await.with_context(|| format!("btcd in {}: {}", dir.display(), log_tail(&log)))?;
        Ok(btcd)
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let rpc = self.rpc.clone().with_timeout(Duration::from_secs(2));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!("btcd exited during startup ({status})");
            }
            match rpc.get_block_count().await {
                Ok(_) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    bail!("btcd did not answer within {STARTUP_TIMEOUT:?}: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// A client for this node's RPC.
    pub fn rpc(&self) -> BitcoinRpc {
        self.rpc.clone()
    }

    /// The RPC URL (`http://127.0.0.1:<port>`).
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// The RPC user name ([`RPC_USER`]).
    pub fn rpc_user(&self) -> &'static str {
        RPC_USER
    }

    /// The file holding the RPC password (mode 0600), for a relayer's `rpc_password_file`.
    pub fn rpc_password_file(&self) -> PathBuf {
        self.dir.join("rpc.password")
    }

    /// The P2P listen address.
    pub fn p2p_addr(&self) -> SocketAddr {
        self.p2p_addr
    }

    /// The node's directory (data, logs, config).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id, while this handle owns the process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until this node's chain is at least as long as `other`'s (a miner after its start
    /// or restart, catching up with the relay node over P2P).
    ///
    /// # Errors
    /// An RPC failure, or not caught up within `within`.
    pub async fn wait_for_chain_of(&self, other: &Btcd, within: Duration) -> anyhow::Result<()> {
        let height = other.rpc().get_block_count().await?;
        let deadline = Instant::now() + within;
        while self.rpc().get_block_count().await? < height {
            anyhow::ensure!(Instant::now() < deadline, "btcd in {} did not reach height {height}", self.dir.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Mines one block on this (miner) node and waits until `relay` has it.
    ///
    /// # Errors
    /// An RPC failure, or the relay node not following within `within`.
    pub async fn mine_and_relay(&self, relay: &Btcd, within: Duration) -> anyhow::Result<()> {
        self.mine(1).await?;
        relay.wait_for_chain_of(self, within).await
    }

    /// Mines `blocks` blocks on the node's best chain (btcd's `generate`), paying the mining
    /// address, and returns their hashes in chain order. They are part of the best chain when
    /// this returns.
    ///
    /// # Errors
    /// When the RPC fails or answers something other than block hashes.
    pub async fn mine(&self, blocks: u32) -> anyhow::Result<Vec<BlockHash>> {
        let hashes: Vec<String> = self.rpc.call("generate", &[json!(blocks)]).await?;
        hashes
            .iter()
            .map(|hash| hash.parse::<BlockHash>().with_context(|| format!("`generate` returned `{hash}`")))
            .collect()
    }

    /// Mines one block on the best chain holding exactly `txs` (after its coinbase) and submits it
    /// (`submitblock`): what a miner may include though btcd's relay policy (`--rejectnonstd`)
    /// refuses it — several OP_RETURN outputs, say, which Bitcoin Core relays since version 30.
    /// The coinbase claims nothing (a zero output to `pay_to`) and commits to the witnesses.
    ///
    /// # Errors
    /// RPC failures, or the node refusing the block (naming why).
    pub async fn mine_block_with(&self, txs: Vec<Transaction>, pay_to: &bitcoin::Address) -> anyhow::Result<BlockHash> {
        use bitcoin::block::{Header, Version as BlockVersion};
        let tip_hash = self.rpc.get_best_block_hash().await?;
        let tip = self.rpc.get_block(&tip_hash).await?;
        let height = self.rpc.get_block_count().await? + 1;
        let reserved = [0u8; 32];
        let height_push =
            bitcoin::script::Builder::new().push_int(i64::try_from(height)?).push_slice([0u8; 2]).into_script();
        let mut coinbase = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: height_push,
                sequence: Sequence::MAX,
                witness: Witness::from_slice(&[reserved]),
            }],
            output: vec![TxOut { value: Amount::ZERO, script_pubkey: pay_to.script_pubkey() }],
        };
        let mut block =
            bitcoin::Block {
                header: Header {
                    version: BlockVersion::from_consensus(0x2000_0000),
                    prev_blockhash: tip_hash,
                    merkle_root: bitcoin::TxMerkleNode::all_zeros(),
                    time: tip.header.time.max(u32::try_from(
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
                    )?) + 1,
                    bits: tip.header.bits,
                    nonce: 0,
                },
                txdata: std::iter::once(coinbase.clone()).chain(txs).collect(),
            };
        let witness_root = block.witness_root().context("a block with transactions has a witness root")?;
        let commitment = bitcoin::Block::compute_witness_commitment(&witness_root, &reserved);
        let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
        script.extend_from_slice(commitment.as_byte_array());
        coinbase.output.push(TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::from_bytes(script) });
        if let Some(first) = block.txdata.first_mut() {
            *first = coinbase;
        }
        block.header.merkle_root =
            block.compute_merkle_root().context("a block with transactions has a merkle root")?;
        let target = block.header.target();
        while !target.is_met_by(block.header.block_hash()) {
            block.header.nonce = block.header.nonce.checked_add(1).context("no nonce meets the regtest target")?;
        }
        let refused: Option<String> =
            self.rpc.call("submitblock", &[json!(bitcoin::consensus::encode::serialize_hex(&block))]).await?;
        if let Some(reason) = refused {
            bail!("btcd refused the block at height {height}: {reason}");
        }
        Ok(block.block_hash())
    }

    /// Marks `hash` and its descendants invalid (`invalidateblock`); if it was on the best
    /// chain, the tip moves back to its parent and the transactions of the removed blocks
    /// return to the mempool.
    ///
    /// # Errors
    /// When the RPC fails (e.g. an unknown block or the genesis block).
    pub async fn invalidate_block(&self, hash: &BlockHash) -> anyhow::Result<()> {
        self.rpc.call::<()>("invalidateblock", &[json!(hash.to_string())]).await?;
        Ok(())
    }

    /// Undoes [`Btcd::invalidate_block`] (`reconsiderblock`): the block's branch becomes a
    /// candidate again and wins if it has more work.
    ///
    /// # Errors
    /// When the RPC fails.
    pub async fn reconsider_block(&self, hash: &BlockHash) -> anyhow::Result<()> {
        self.rpc.call::<()>("reconsiderblock", &[json!(hash.to_string())]).await?;
        Ok(())
    }

    /// A reorganisation: invalidates the best chain's block at `height` (and everything above
    /// it), then mines `new_blocks` blocks on its parent. Returns the replaced hashes (from
    /// `height` up) and the new branch's. Unconfirmed transactions of the replaced blocks are
    /// back in the mempool, so the new branch usually mines them again in other blocks.
    ///
    /// # Errors
    /// When `height` is 0 or above the tip, or an RPC fails.
    pub async fn reorg_from(&self, height: u64, new_blocks: u32) -> anyhow::Result<(Vec<BlockHash>, Vec<BlockHash>)> {
        let tip = self.rpc.get_block_count().await?;
        if height == 0 || height > tip {
            bail!("cannot reorganise from height {height}: the chain is at 1..={tip}");
        }
        let mut replaced = Vec::new();
        for at in height..=tip {
            replaced.push(self.rpc.get_block_hash(at).await?);
        }
        let Some(first) = replaced.first() else { bail!("no block at height {height}") };
        self.invalidate_block(first).await?;
        let branch = self.mine(new_blocks).await?;
        Ok((replaced, branch))
    }

    /// The output `outpoint` if the best chain has it unspent (`gettxout`), with its
    /// confirmations; `None` when a block spent it or it never existed. btcd also finds the
    /// outputs of pending transactions (0 confirmations) but, unlike Bitcoin Core, still reports
    /// an output that only a pending transaction spends as unspent.
    ///
    /// # Errors
    /// When the RPC fails or answers something that is not an output.
    pub async fn unspent_output(&self, outpoint: &OutPoint) -> anyhow::Result<Option<UnspentOutput>> {
        Btcd::unspent_output_via(&self.rpc, outpoint).await
    }

    /// Submits the blocks [`save_chain`] wrote to `path`, in order, to this node (a regtest btcd
    /// started afresh: same genesis), so it holds the saved chain again — same blocks, hashes
    /// and UTXOs; returns the tip reached.
    ///
    /// # Errors
    /// An unreadable file, or a block the node refuses (naming its height).
    pub async fn restore_chain(&self, path: &Path) -> anyhow::Result<u64> {
        let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (index, block) in text.lines().filter(|line| !line.is_empty()).enumerate() {
            let refused: Option<String> = self.rpc.call("submitblock", &[json!(block)]).await?;
            if let Some(reason) = refused {
                bail!("btcd refused saved block {} of {}: {reason}", index + 1, path.display());
            }
        }
        Ok(self.rpc.get_block_count().await?)
    }

    /// As [`Btcd::unspent_output`], through `rpc`.
    async fn unspent_output_via(rpc: &BitcoinRpc, outpoint: &OutPoint) -> anyhow::Result<Option<UnspentOutput>> {
        let answer: Option<GetTxOut> =
            rpc.call("gettxout", &[json!(outpoint.txid.to_string()), json!(outpoint.vout), json!(true)]).await?;
        answer
            .map(|out| {
                Ok(UnspentOutput {
                    // btcd answers in BTC as a JSON number; the decimal text of an f64 that came
                    // from 8-decimal text reads back exactly.
                    value: Amount::from_btc(out.value)
                        .with_context(|| format!("`gettxout` value {} of {outpoint}", out.value))?,
                    script_pubkey: ScriptBuf::from_hex(&out.script_pubkey.hex)
                        .with_context(|| format!("`gettxout` script of {outpoint}"))?,
                    confirmations: out.confirmations,
                })
            })
            .transpose()
    }

    /// Kills the process now (also done on drop).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            kill_child(child);
        }
    }

    /// Hands the process over (for `make devnet`): returns its pid and no longer stops it.
    pub fn detach(mut self) -> Option<u32> {
        self.remove_on_drop = false;
        self.child.take().map(|child| child.id())
    }
}

/// An unspent output, as [`Btcd::unspent_output`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnspentOutput {
    /// Its value.
    pub value: Amount,
    /// The script it pays.
    pub script_pubkey: ScriptBuf,
    /// Blocks confirming its transaction (0 while pending).
    pub confirmations: u64,
}

/// `gettxout`'s answer (the fields used).
#[derive(serde::Deserialize)]
struct GetTxOut {
    value: f64,
    confirmations: u64,
    #[serde(rename = "scriptPubKey")]
    script_pubkey: GetTxOutScript,
}

#[derive(serde::Deserialize)]
struct GetTxOutScript {
    hex: String,
}

impl Drop for Btcd {
    fn drop(&mut self) {
        self.stop();
        if self.remove_on_drop && !std::thread::panicking() {
            // Best effort: a leftover directory only costs disk space.
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Creates `dir` with a fresh RPC password file and the config naming it; returns the password.
fn prepare_dir(dir: &Path) -> anyhow::Result<String> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let password = random_password()?;
    write_private(&dir.join("rpc.password"), &password)?;
    write_private(&dir.join("btcd.conf"), &format!("[Application Options]\nrpcuser={RPC_USER}\nrpcpass={password}\n"))?;
    Ok(password)
}

/// A fee-market miner's flags: connected to `relay` only, refusing (and so never mining) what
/// pays below `min_fee_rate` sat/vB — btcd's `--minrelaytxfee` is in BTC per 1,000 bytes.
fn miner_args(relay: SocketAddr, min_fee_rate: u64) -> Vec<String> {
    let btc_per_kb = Amount::from_sat(min_fee_rate.saturating_mul(1_000)).to_btc();
    vec![
        format!("--connect={relay}"),
        format!("--minrelaytxfee={btc_per_kb:.8}"),
        "--limitfreerelay=0".to_owned(),
        "--blockprioritysize=0".to_owned(),
    ]
}

fn kill_child(mut child: Child) {
    // SIGKILL; the child may already have exited, which is fine. `wait` reaps it.
    let _ = child.kill();
    let _ = child.wait();
}

/// A loopback address nothing listens on right now.
fn free_loopback_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("probing for a free loopback port")?;
    Ok(listener.local_addr()?)
}

/// 32 hex characters from the kernel's random source.
fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("reading /dev/urandom for the btcd RPC password")?;
    Ok(hex::encode(bytes))
}

/// Writes `text` to a file only the owner can read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The last lines of btcd's output, for error messages.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines.get(lines.len().saturating_sub(5)..).unwrap_or_default().join("\n");
    format!("log {} ends with:\n{tail}", path.display())
}

/// A regtest wallet with one key, whose P2WPKH address is meant to be btcd's mining address.
/// It spends only the coinbase outputs paid to it, one per payment, finding them by reading
/// the best chain's blocks, and sends the change back to itself. Its payments signal BIP 125
/// replaceability, so a test can double-spend one ([`RegtestWallet::replace`]).
#[derive(Debug)]
pub struct RegtestWallet {
    secp: Secp256k1<All>,
    secret: SecretKey,
    public_key: CompressedPublicKey,
    address: bitcoin::Address,
    /// Per height: the block read, and the coinbase output paying us in it (if any).
    coinbases: BTreeMap<u64, (BlockHash, Option<(OutPoint, TxOut)>)>,
    /// Outputs this wallet has spent (in transactions it broadcast).
    spent: BTreeSet<OutPoint>,
    /// What each broadcast transaction spent, and the fee it paid.
    sent: BTreeMap<Txid, (OutPoint, TxOut, Amount)>,
}

impl RegtestWallet {
    /// The fee of a payment (generous for a one-input transaction at btcd's default relay fee
    /// of 1 sat/vB, well below its "absurd fee" limit). A replacement pays this much more.
    pub const FEE: Amount = Amount::from_sat(10_000);

    /// Change below this is left to the fee instead of creating a dust output.
    pub const MIN_CHANGE: Amount = Amount::from_sat(1_000);

    /// A wallet whose key is `seed` (any 32 bytes below the curve order, not all zero).
    ///
    /// # Errors
    /// When `seed` is not a valid secret key.
    pub fn from_seed(seed: [u8; 32]) -> anyhow::Result<RegtestWallet> {
        let secp = Secp256k1::new();
        let secret = SecretKey::from_slice(&seed).context("wallet seed is not a secp256k1 secret key")?;
        let public_key = CompressedPublicKey(secret.public_key(&secp));
        let address = bitcoin::Address::p2wpkh(&public_key, KnownHrp::Regtest);
        Ok(RegtestWallet {
            secp,
            secret,
            public_key,
            address,
            coinbases: BTreeMap::new(),
            spent: BTreeSet::new(),
            sent: BTreeMap::new(),
        })
    }

    /// The wallet's P2WPKH address (`bcrt1q…`): pass it to [`Btcd::start`] as mining address.
    pub fn address(&self) -> &bitcoin::Address {
        &self.address
    }

    /// Pays `outputs` from one mature coinbase output of this wallet it has not spent yet,
    /// with change to itself minus [`RegtestWallet::FEE`], broadcasts, and returns the txid.
    ///
    /// # Errors
    /// When no mature unspent coinbase covers the outputs and the fee (mine more blocks), an
    /// RPC fails, or the node refuses the transaction.
    pub async fn pay(&mut self, rpc: &BitcoinRpc, outputs: Vec<TxOut>) -> anyhow::Result<Txid> {
        let paid = total(&outputs)?;
        let needed = paid.checked_add(Self::FEE).context("outputs plus fee overflow")?;
        let (outpoint, prevout) = self.find_coinbase(rpc, needed).await?;
        self.sign_and_send(rpc, outpoint, prevout, outputs, Self::FEE).await
    }

    /// As [`RegtestWallet::pay`], but the payment goes straight into a block `btcd` mines
    /// ([`Btcd::mine_block_with`]) instead of through its mempool: for payments its relay policy
    /// refuses and a miner may take. Returns the txid once mined.
    ///
    /// # Errors
    /// As [`RegtestWallet::pay`]; the node refusing the block.
    pub async fn pay_in_block(&mut self, btcd: &Btcd, outputs: Vec<TxOut>) -> anyhow::Result<Txid> {
        let rpc = btcd.rpc();
        let paid = total(&outputs)?;
        let needed = paid.checked_add(Self::FEE).context("outputs plus fee overflow")?;
        let (outpoint, prevout) = self.find_coinbase(&rpc, needed).await?;
        let tx = self.sign(outpoint, &prevout, outputs, Self::FEE)?;
        let txid = tx.compute_txid();
        btcd.mine_block_with(vec![tx], &self.address.clone()).await?;
        self.spent.insert(outpoint);
        self.sent.insert(txid, (outpoint, prevout, Self::FEE));
        Ok(txid)
    }

    /// Double-spends `txid` (a payment of this wallet, unconfirmed or returned to the mempool
    /// by a reorganisation): pays `outputs` from the same coinbase output with
    /// [`RegtestWallet::FEE`] more fee, which replaces it in the mempool (BIP 125).
    ///
    /// # Errors
    /// When `txid` is not a payment of this wallet, the output cannot cover the outputs and
    /// the fee, or the node refuses the replacement.
    pub async fn replace(&mut self, rpc: &BitcoinRpc, txid: &Txid, outputs: Vec<TxOut>) -> anyhow::Result<Txid> {
        let (outpoint, prevout, fee) =
            self.sent.get(txid).cloned().with_context(|| format!("{txid} is not a payment of this wallet"))?;
        let fee = fee.checked_add(Self::FEE).context("fee overflow")?;
        let needed = total(&outputs)?.checked_add(fee).context("outputs plus fee overflow")?;
        if prevout.value < needed {
            bail!("{outpoint} holds {}, the replacement needs {needed}", prevout.value);
        }
        self.sign_and_send(rpc, outpoint, prevout, outputs, fee).await
    }

    async fn sign_and_send(
        &mut self,
        rpc: &BitcoinRpc,
        outpoint: OutPoint,
        prevout: TxOut,
        outputs: Vec<TxOut>,
        fee: Amount,
    ) -> anyhow::Result<Txid> {
        let tx = self.sign(outpoint, &prevout, outputs, fee)?;
        let txid = rpc.send_raw_transaction(&tx).await?;
        self.spent.insert(outpoint);
        self.sent.insert(txid, (outpoint, prevout, fee));
        Ok(txid)
    }

    /// A transaction spending `outpoint` (a P2WPKH output of this wallet worth `prevout`) to
    /// `outputs`, change to itself minus `fee`, signed (SIGHASH_ALL, segwit v0).
    fn sign(
        &self,
        outpoint: OutPoint,
        prevout: &TxOut,
        outputs: Vec<TxOut>,
        fee: Amount,
    ) -> anyhow::Result<Transaction> {
        let needed = total(&outputs)?.checked_add(fee).context("outputs plus fee overflow")?;
        let change = prevout
            .value
            .checked_sub(needed)
            .with_context(|| format!("{outpoint} holds {}, the payment needs {needed}", prevout.value))?;
        let mut output = outputs;
        if change >= Self::MIN_CHANGE {
            output.push(TxOut { value: change, script_pubkey: self.address.script_pubkey() });
        }
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output,
        };
        let mut cache = SighashCache::new(&mut tx);
        let sighash = cache
            .p2wpkh_signature_hash(0, &prevout.script_pubkey, prevout.value, EcdsaSighashType::All)
            .context("computing the segwit v0 sighash")?;
        let signature = bitcoin::ecdsa::Signature {
            signature: self.secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &self.secret),
            sighash_type: EcdsaSighashType::All,
        };
        let witness = cache.witness_mut(0).context("the transaction has no input 0")?;
        *witness = Witness::p2wpkh(&signature, &self.public_key.0);
        Ok(tx)
    }

    /// The first mature coinbase output paying this wallet, not spent by it, worth at least
    /// `needed`. Blocks are read once per height and re-read when a reorg changed the hash.
    async fn find_coinbase(&mut self, rpc: &BitcoinRpc, needed: Amount) -> anyhow::Result<(OutPoint, TxOut)> {
        let tip = rpc.get_block_count().await?;
        // Spendable in the next block (tip + 1) when height + maturity <= tip + 1.
        let mature_up_to = (tip + 1).saturating_sub(COINBASE_MATURITY);
        let script = self.address.script_pubkey();
        for height in 1..=mature_up_to {
            let hash = rpc.get_block_hash(height).await?;
            let cached = self.coinbases.get(&height).filter(|(seen, _)| *seen == hash).map(|(_, coinbase)| coinbase);
            let coinbase = match cached {
                Some(coinbase) => coinbase.clone(),
                None => {
                    let block = rpc.get_block(&hash).await?;
                    let coinbase = block.txdata.first().and_then(|tx| {
                        let txid = tx.compute_txid();
                        tx.output.iter().enumerate().find(|(_, out)| out.script_pubkey == script).map(|(vout, out)| {
                            (OutPoint { txid, vout: u32::try_from(vout).unwrap_or(u32::MAX) }, out.clone())
                        })
                    });
                    self.coinbases.insert(height, (hash, coinbase.clone()));
                    coinbase
                }
            };
            if let Some((outpoint, out)) = coinbase
                && !self.spent.contains(&outpoint)
                && out.value >= needed
            {
                // A chain resumed from a saved one holds spends this wallet did not make here.
                if Btcd::unspent_output_via(rpc, &outpoint).await?.is_none() {
                    self.spent.insert(outpoint);
                    continue;
                }
                return Ok((outpoint, out));
            }
        }
        bail!(
            "no mature unspent coinbase of {} worth {needed} up to height {mature_up_to} (tip {tip}); mine more blocks",
            self.address
        )
    }
}

/// The sum of `outputs`' values.
fn total(outputs: &[TxOut]) -> anyhow::Result<Amount> {
    outputs.iter().try_fold(Amount::ZERO, |sum, out| sum.checked_add(out.value)).context("outputs overflow")
}

/// Writes every block of the best chain of the node at `rpc` above genesis to `path` (raw hex,
/// one per line, by height; atomically): btcd deletes its regtest database at every start, so
/// this is how a devnet's Bitcoin chain outlives a restart ([`Btcd::restore_chain`]). Returns the
/// tip saved.
///
/// # Errors
/// RPC or file errors.
pub async fn save_chain(rpc: &BitcoinRpc, path: &Path) -> anyhow::Result<u64> {
    let tip = rpc.get_block_count().await?;
    let mut text = String::new();
    for height in 1..=tip {
        let hash = rpc.get_block_hash(height).await?;
        let raw: String = rpc.call("getblock", &[json!(hash.to_string()), json!(0)]).await?;
        text.push_str(&raw);
        text.push('\n');
    }
    let partial = path.with_extension("partial");
    fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(tip)
}
