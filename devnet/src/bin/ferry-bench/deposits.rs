//! Deposit benchmarks: latency from the block that gives a deposit its required finality (its
//! last confirmation on Bitcoin; on Ethereum the block that makes the node's `finalized` block
//! pass it) to the committed mint, and the relayer's catch-up rate over a backlog of regtest
//! blocks beside the node's raw `getblock` rate measured in the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use bitcoin::{Amount as Sats, TxOut};
use ferry_client::FerryClient;
use ferry_devnet::anvil::Anvil;
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_devnet::postgres::PgServer;
use ferry_devnet::relayer::{RelayerProcess, RelayerSetup};
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_parent_chains::ethereum::U256;
use ferry_relayer::bitcoin::scan::{PegScripts, scan_block};
use ferry_relayer::confirmations::ConfirmationPolicy;
use ferry_relayer::metrics::Metrics;
use ferry_relayer::service::{BitcoinWatch, Relayer};
use ferry_relayer::store::Store;
use ferry_types::Address;
use ferry_types::peg::deposit_memo;
use ferry_types::query::{DEPOSIT_PATH, DepositAddressRecord, PEG_PATH, PegView};

use crate::samples::Samples;

const CONFIRMATIONS: u32 = 3;

/// Latency of `rounds` Bitcoin deposits, then `rounds` Ethereum deposits under
/// `finality = "finalized"`, through three relayer processes.
pub async fn latency(rounds: usize) -> anyhow::Result<()> {
    // Anvil first: the genesis names its vault.
    let anvil = Anvil::start_with_federation(accounts::federation_vault_key()?).await?;
    let mut genesis = accounts::genesis(2, 4)?;
    let vault = ferry_types::release::eth::EthAddress::from_bytes(anvil.vault().into_array());
    accounts::with_ethereum(&mut genesis, ferry_devnet::anvil::CHAIN_ID, vault, &[]);
    let spec = NetworkSpec::isolated("bench-deposits", 4, genesis)?;
    let mut network = Network::create(spec, Tools::locate()?)?;
    network.start_all()?;
    network.wait_for_height(2, Duration::from_secs(60)).await?;
    let client = network.client(0)?;
    let mut wallet = RegtestWallet::from_seed([9; 32])?;
    let btcd = Btcd::isolated("bench-deposits", wallet.address()).await?;
    btcd.mine(101 + u32::try_from(rounds)?).await?;
    let postgres = PgServer::from_env_or_start(None).await?;
    let dir = ferry_devnet::tools::repo_root().join(format!("target/relayers/bench-{}", std::process::id()));
    // Declared before the relayers, so dropped after them.
    let mut databases = Vec::new();
    let mut relayers = Vec::new();
    for member in 0..3 {
        let database = postgres.scratch_database(&format!("bench_deposits_{member}")).await?;
        let database_url = database.url().to_owned();
        databases.push(database);
        relayers.push(RelayerProcess::start(RelayerSetup {
            dir: dir.join(format!("member{member}")),
            member,
            chain_rpc: network.validators().get(member).context("validator")?.rpc_url(),
            genesis_file: network.genesis_file(),
            endpoints: Vec::new(),
            database_url,
            bitcoin: Some((btcd.rpc_url(), btcd.rpc_user().to_owned(), btcd.rpc_password_file())),
            ethereum: Some((anvil.rpc_url().to_owned(), vault.to_string())),
            confirmations: CONFIRMATIONS,
            bitcoin_tiers: Vec::new(),
            ethereum_finality: ferry_relayer::config::Finality::Finalized,
            poll_interval: "200ms".to_owned(),
            ethereum_key: None,
        })?);
    }
    let peg: PegView = client.query(PEG_PATH, None).await?.context("no peg")?;
    let peg_script = peg.address.parse::<bitcoin::Address<_>>()?.assume_checked().script_pubkey();

    let mut blocks = Samples::default();
    let mut seconds = Samples::default();
    for round in 0..rounds {
        let recipient = Address::from_bytes([u8::try_from(round % 250)?.wrapping_add(1); 20]);
        let outputs = vec![
            TxOut { value: Sats::from_sat(20_000), script_pubkey: peg_script.clone() },
            TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(&recipient) },
        ];
        let txid = wallet.pay(&btcd.rpc(), outputs).await?;
        btcd.mine(CONFIRMATIONS - 1).await?;
        // The block that gives the last required confirmation.
        btcd.mine(1).await?;
        let confirmed_at = Instant::now();
        let side_height = client.latest_height().await?;
        let minted_height = wait_for_mint(&client, &format!("{DEPOSIT_PATH}btc:{txid}:0")).await?;
        seconds.push(confirmed_at.elapsed().as_secs_f64());
        blocks.push(minted_height.saturating_sub(side_height) as f64);
    }
    println!(
        "deposit latency ({rounds} BTC deposits, {CONFIRMATIONS} confirmations, relayers polling every 200 ms, 300 ms blocks):"
    );
    println!("  sidechain blocks  {}  (goal: p95 <= 2)", blocks.summary(0));
    println!("  seconds           {}", seconds.summary(2));

    // Ethereum at `finalized`: anvil mines on demand, so the block that moves its finalized
    // block past the deposit's is the moment the required finality is reached.
    let watcher = anvil.watcher()?;
    let mut blocks = Samples::default();
    let mut seconds = Samples::default();
    let mut behind = Samples::default();
    for round in 0..rounds {
        let recipient = Address::from_bytes([u8::try_from(round % 250)?.wrapping_add(1); 20]);
        let receipt = anvil.deposit_eth(&recipient, U256::from(1_000_000_000_000_000u64)).await?;
        let included = receipt.block_number;
        let mut mined = 0u64;
        while watcher.finalized_block_number().await?.is_none_or(|finalized| finalized < included) {
            anvil.mine(1).await?;
            mined += 1;
        }
        let finalized_at = Instant::now();
        let side_height = client.latest_height().await?;
        let minted_height = wait_for_mint(&client, &format!("{DEPOSIT_PATH}eth:{}:0", receipt.tx_hash)).await?;
        seconds.push(finalized_at.elapsed().as_secs_f64());
        blocks.push(minted_height.saturating_sub(side_height) as f64);
        behind.push(mined as f64);
    }
    println!(
        "deposit latency ({rounds} ETH deposits, finality = \"finalized\" (anvil: {} blocks until the deposit's block is finalized), relayers polling every 200 ms, 300 ms blocks):",
        behind.summary(0)
    );
    println!("  sidechain blocks after finalization  {}  (goal: p95 <= 2)", blocks.summary(0));
    println!("  seconds                              {}", seconds.summary(2));
    drop(relayers);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn wait_for_mint(client: &FerryClient, path: &str) -> anyhow::Result<u64> {
    let started = Instant::now();
    loop {
        if let Some(record) = client.query::<ferry_types::deposit_record::DepositRecord>(path, None).await?
            && let Some(height) = record.minted_height
        {
            return Ok(height);
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "{path} not minted after 60 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The ed25519 base point: a valid public key for a trust root that is never used.
const ED25519_BASE_POINT: [u8; 32] = {
    let mut point = [0x66; 32];
    point[0] = 0x58;
    point
};

/// The relayer's scan rate over `backlog` regtest blocks that each carry one transaction paying
/// the peg `per_block` times (one memo, `per_block` peg outputs), next to the plain
/// read-decode-scan rate of the same blocks. Both run on a warm node: one untimed read of every
/// block first, then baseline, relayer, baseline, and the relayer is compared with the mean of
/// the two baseline runs. The relayer watches `deposit_addresses` registered deposit addresses
/// besides the peg (loaded as its sync from the chain would; the baseline scans for the peg
/// alone), so the ratio includes what watching them costs.
pub async fn catch_up(backlog: u32, per_block: usize, deposit_addresses: u64) -> anyhow::Result<()> {
    anyhow::ensure!(per_block >= 1, "each backlog block needs at least one deposit");
    let mut wallet = RegtestWallet::from_seed([10; 32])?;
    let btcd = Btcd::isolated("bench-catchup", wallet.address()).await?;
    let rpc = btcd.rpc();
    let peg = ferry_types::peg::Peg::new(
        accounts::genesis(0, 4)?.federation.bitcoin.as_ref().context("devnet genesis has a peg")?,
    )?;
    // One mature coinbase per deposit transaction, then the backlog: a deposit transaction per block.
    btcd.mine(backlog + 100).await?;
    let first = rpc.get_block_count().await? + 1;
    for block in 0..backlog {
        let recipient = Address::from_bytes([u8::try_from(block % 250)?.wrapping_add(1); 20]);
        let mut outputs: Vec<TxOut> = (0..per_block)
            .map(|_| TxOut { value: Sats::from_sat(20_000), script_pubkey: peg.script_pubkey() })
            .collect();
        outputs.push(TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(&recipient) });
        wallet.pay(&rpc, outputs).await?;
        btcd.mine(1).await?;
    }
    let tip = rpc.get_block_count().await?;
    let blocks = tip + 1 - first;

    // Baseline: fetch, decode and scan every backlog block for the peg alone, nothing else.
    let peg_only = PegScripts::new(peg.clone());
    let registered: Vec<DepositAddressRecord> = (1..=deposit_addresses)
        .map(|number| {
            let mut account = [0u8; 20];
            account[..8].copy_from_slice(&number.to_be_bytes());
            DepositAddressRecord { number, account: Address::from_bytes(account), height: 1 }
        })
        .collect();
    let mut watching = PegScripts::new(peg.clone());
    for record in &registered {
        watching.register(record);
    }
    let scan_pass = |scripts: &PegScripts| {
        let scripts = scripts.clone();
        let rpc = rpc.clone();
        async move {
            let started = Instant::now();
            let mut deposits = 0usize;
            for height in first..=tip {
                let block = rpc.get_block(&rpc.get_block_hash(height).await?).await?;
                deposits += std::hint::black_box(scan_block(&block, &scripts)).len();
            }
            anyhow::Ok((blocks as f64 / started.elapsed().as_secs_f64(), deposits))
        }
    };
    let raw_pass = || scan_pass(&peg_only);
    let (_, deposits) = raw_pass().await?; // warms the node's caches for every run below
    anyhow::ensure!(
        deposits == per_block * usize::try_from(backlog)?,
        "the backlog holds {deposits} deposits, not {}",
        per_block * usize::try_from(backlog)?
    );
    let (raw_before, _) = raw_pass().await?;
    // The same reads, scanning for the peg and every registered deposit address.
    let (watching_rate, watched_deposits) = scan_pass(&watching).await?;
    anyhow::ensure!(watched_deposits == deposits, "watching deposit addresses changed what the scan finds");

    // The relayer (`Relayer::poll_bitcoin`): the same reads and scan; per block with deposits one
    // transaction writing each deposit's `relayer_deposits` row and `deposit.observed` audit row; per
    // poll (up to 500 blocks) one transaction writing the cursor and its `cursor.set` audit row,
    // then the settle pass over every pending deposit (a `getblockhash` per pending height and
    // the deposit counts). Nothing is attested: the policy asks more confirmations than the
    // chain has, so no sidechain is needed. A fresh database, so the relayer scans from scratch.
    let postgres = PgServer::from_env_or_start(None).await?;
    let database = postgres.scratch_database("bench_catchup").await?;
    let store = Store::connect(database.url()).await?;
    // No sidechain: a reader with a placeholder trust root, never asked (the scan reads none).
    let placeholder = tendermint::PublicKey::from_raw_ed25519(&ED25519_BASE_POINT).context("ed25519 key")?;
    let root = ferry_light::TrustRoot::new("bench", vec![tendermint::validator::Info::new(placeholder, 1u32.into())])?;
    let unused = "http://127.0.0.1:9".to_owned();
    let verified =
        std::sync::Arc::new(ferry_light::Reader::new(std::slice::from_ref(&unused), root, Duration::from_secs(60))?);
    let relayer = Relayer::new(
        store,
        (FerryClient::new(&unused)?, verified),
        accounts::member_key(0)?,
        Metrics::new()?,
        Some(BitcoinWatch {
            rpc: rpc.clone(),
            peg: peg.clone(),
            policy: ConfirmationPolicy::flat(1_000_000),
            start_height: first,
        }),
        None,
    );
    relayer.watch_deposit_addresses(&registered);
    let started = Instant::now();
    loop {
        // What `poll_bitcoin` does after reading the tip and syncing the deposit addresses.
        relayer.scan_bitcoin(tip, false).await?;
        let scanned = relayer.store.cursor(ferry_types::ParentChain::Bitcoin).await?.map_or(0, |c| c.height);
        if scanned >= tip {
            break;
        }
    }
    let relayer_rate = blocks as f64 / started.elapsed().as_secs_f64();
    let recorded = relayer.store.counts().await?.deposits.values().sum::<u64>();
    anyhow::ensure!(
        usize::try_from(recorded)? == deposits,
        "the relayer recorded {recorded} deposits of the {deposits} in the backlog"
    );
    let (raw_after, _) = raw_pass().await?;
    let raw_rate = (raw_before + raw_after) / 2.0;
    println!(
        "relayer catch-up over {blocks} regtest blocks, each with a {per_block}-deposit peg payment ({deposits} deposits; warm node; the relayer watches {deposit_addresses} deposit addresses):"
    );
    println!(
        "  getblockhash + getblock + decode + scan  {raw_rate:>8.0} blocks/s  (baseline: mean of {raw_before:.0} before and {raw_after:.0} after)"
    );
    println!(
        "  the same, scanning for {deposit_addresses} deposit addresses too  {watching_rate:>8.0} blocks/s  ratio {:.2}  (goal >= 0.80)",
        watching_rate / raw_rate
    );
    println!(
        "  relayer (the same + per block one transaction: a row and an audit row per deposit; per poll the cursor, its audit row and a settle pass) {relayer_rate:>8.0} blocks/s  ratio {:.2}  (goal >= 0.80)",
        relayer_rate / raw_rate
    );
    drop(relayer);
    database.remove().await?;
    Ok(())
}
