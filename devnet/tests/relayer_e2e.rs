//! Deposits end to end: real btcd (regtest), anvil, PostgreSQL, a 4-validator Ferry network and
//! three federation relayers (the quorum) as processes. A deposit mints exactly once to the memo's
//! recipient after the configured confirmations, and not before.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::{Amount as Sats, TxOut};
use common::{
    TestResult, WAIT, balance, serial, start_network_with, wait_for_a_finished_round, wait_for_balance, wait_until,
};
use ferry_client::FerryClient;
use ferry_devnet::anvil::Anvil;
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_devnet::postgres::{PgServer, ScratchDatabase};
use ferry_devnet::relayer::{RelayerProcess, RelayerSetup};
use ferry_parent_chains::bitcoin::BitcoinRpc;
use ferry_parent_chains::ethereum::U256;
use ferry_relayer::confirmations::ConfirmationPolicy;
use ferry_relayer::service::{BitcoinWatch, Relayer};
use ferry_relayer::store::{DepositRecord, DepositStatus, Store};
use ferry_types::msg::audit::AuditLogName;
use ferry_types::peg::deposit_memo;
use ferry_types::query::{PEG_PATH, PegView};
use ferry_types::{Address, Denom, DepositId, ParentChain};

const CONFIRMATIONS: u32 = 3;

/// Everything a deposit needs: the network, both parent chains, PostgreSQL and three relayers.
struct Fixture {
    // Field order is drop order: relayers stop before the services they use.
    relayers: Vec<RelayerProcess>,
    dir: std::path::PathBuf,
    network: ferry_devnet::Network,
    client: FerryClient,
    wallet: RegtestWallet,
    btcd: Btcd,
    anvil: Anvil,
    postgres: PgServer,
    databases: Vec<ScratchDatabase>,
    peg_script: bitcoin::ScriptBuf,
}

impl Fixture {
    /// The parts, and three relayer processes.
    async fn start(name: &str) -> TestResult<Fixture> {
        let mut fixture = Fixture::start_parts(name).await?;
        for member in 0..3 {
            let rpc = fixture.network.validators().get(member).ok_or("validator")?.rpc_url();
            fixture.start_relayer(name, member, rpc, Vec::new()).await?;
        }
        Ok(fixture)
    }

    /// Starts member `member`'s relayer reading the sidechain through `rpc`, then `endpoints`.
    async fn start_relayer(&mut self, name: &str, member: usize, rpc: String, endpoints: Vec<String>) -> TestResult {
        let database_url = self.database(name, member).await?;
        let relayer = RelayerProcess::start(RelayerSetup {
            dir: self.dir.join(format!("member{member}")),
            member,
            chain_rpc: rpc,
            endpoints,
            genesis_file: self.network.genesis_file(),
            database_url,
            bitcoin: Some((self.btcd.rpc_url(), self.btcd.rpc_user().to_owned(), self.btcd.rpc_password_file())),
            ethereum: Some((self.anvil.rpc_url().to_owned(), format!("{:#x}", self.anvil.vault()))),
            confirmations: CONFIRMATIONS,
            bitcoin_tiers: Vec::new(),
            ethereum_finality: ferry_relayer::config::Finality::Depth,
            poll_interval: "200ms".to_owned(),
            ethereum_key: None,
        })?;
        self.relayers.push(relayer);
        Ok(())
    }

    /// A scratch database for member `member`'s relayer, dropped with the fixture.
    async fn database(&mut self, name: &str, member: usize) -> TestResult<String> {
        let database = self.postgres.scratch_database(&format!("{}_{member}", name.replace('-', "_"))).await?;
        // Migrated as the owner; the relayer (and this test's stores) connect as its role.
        let url = ferry_devnet::postgres::migrate_for_service(database.url(), ferry_relayer::store::ROLE).await?;
        self.databases.push(database);
        Ok(url)
    }

    /// The network, both parent chains and PostgreSQL, without relayers.
    async fn start_parts(name: &str) -> TestResult<Fixture> {
        // Anvil first: the genesis lists its test token (an unlisted token is never attested).
        let anvil = Anvil::start().await?;
        let mut genesis = ferry_devnet::accounts::genesis(8, 4)?;
        let as_ferry = |address: ferry_parent_chains::ethereum::EthAddress| {
            ferry_types::release::eth::EthAddress::from_bytes(address.into_array())
        };
        ferry_devnet::accounts::with_ethereum(
            &mut genesis,
            ferry_devnet::anvil::CHAIN_ID,
            as_ferry(anvil.vault()),
            &[as_ferry(anvil.token())],
        );
        let network = start_network_with(name, genesis).await?;
        let client = network.client(0)?;
        let wallet = RegtestWallet::from_seed([7; 32])?;
        let btcd = Btcd::isolated(name, wallet.address()).await?;
        btcd.mine(101).await?;
        let postgres = PgServer::from_env_or_start(None).await?;
        let dir = ferry_devnet::tools::repo_root().join(format!("target/relayers/{name}-{}", std::process::id()));
        let peg: PegView = client.query(PEG_PATH, None).await?.ok_or("no peg")?;
        let peg_script = peg.address.parse::<bitcoin::Address<_>>()?.assume_checked().script_pubkey();
        Ok(Fixture {
            relayers: Vec::new(),
            dir,
            network,
            client,
            wallet,
            btcd,
            anvil,
            postgres,
            databases: Vec::new(),
            peg_script,
        })
    }

    async fn pay_peg(&mut self, sats: u64, memo: Option<&Address>) -> TestResult<bitcoin::Txid> {
        let mut outputs = vec![TxOut { value: Sats::from_sat(sats), script_pubkey: self.peg_script.clone() }];
        if let Some(recipient) = memo {
            outputs.push(TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(recipient) });
        }
        Ok(self.wallet.pay(&self.btcd.rpc(), outputs).await?)
    }
}

impl Fixture {
    /// Each relayer's own store.
    async fn stores(&self) -> TestResult<Vec<Store>> {
        let mut stores = Vec::new();
        for relayer in &self.relayers {
            stores.push(Store::connect(relayer.database_url()).await?);
        }
        Ok(stores)
    }

    /// The tip of `chain` now.
    async fn tip(&self, chain: ParentChain) -> TestResult<u64> {
        Ok(match chain {
            ParentChain::Bitcoin => self.btcd.rpc().get_block_count().await?,
            ParentChain::Ethereum => self.anvil.block_number().await?,
        })
    }

    /// Waits until every relayer has scanned `chain` up to its current tip (its stored cursor is
    /// there) and then finished the round under way, deciding about every pending deposit at that
    /// tip. Returns the tip.
    async fn wait_until_evaluated(&self, chain: ParentChain) -> TestResult<u64> {
        let tip = self.tip(chain).await?;
        let series = format!(r#"ferry_relayer_last_poll_timestamp_seconds{{chain="{}"}}"#, chain.tag());
        for (relayer, store) in self.relayers.iter().zip(self.stores().await?) {
            let store = &store;
            wait_until(&format!("{} scanned to {} {tip}", relayer.database_url(), chain.tag()), WAIT, || async move {
                Ok(store.cursor(chain).await?.filter(|cursor| cursor.height >= tip))
            })
            .await?;
            wait_for_a_finished_round(&relayer.metrics_url(), &series).await?;
        }
        Ok(tip)
    }

    /// Waits until every relayer's store satisfies `ready`, given its deposits of `chain` with
    /// `tx_id` (a relayer records what it scanned as it goes).
    async fn wait_for_records(
        &self,
        chain: ParentChain,
        tx_id: &str,
        what: &str,
        ready: impl Fn(&[DepositRecord]) -> bool,
    ) -> TestResult {
        for store in self.stores().await? {
            let (store, ready) = (&store, &ready);
            wait_until(what, WAIT, || async move {
                let records = deposits_of(store, chain, tx_id).await?;
                Ok(ready(&records).then_some(()))
            })
            .await?;
        }
        Ok(())
    }
}

/// The deposits of `chain` from transaction `tx_id` (outputs or logs 0 to 3) in `store`, whatever
/// their status.
async fn deposits_of(store: &Store, chain: ParentChain, tx_id: &str) -> TestResult<Vec<DepositRecord>> {
    let mut found = Vec::new();
    for index in 0..4 {
        let id: DepositId = format!("{chain}:{tx_id}:{index}").parse()?;
        found.extend(store.deposit(&id).await?);
    }
    Ok(found)
}

/// Asserts that every relayer holds the undecided deposits of `chain` at exactly `depths`
/// (confirmations at `tip`, deepest first), each below the required depth, still `observed`, and
/// with no attestation attempted.
async fn assert_waiting_at(fx: &Fixture, chain: ParentChain, tip: u64, depths: &[u64]) -> TestResult {
    assert!(depths.iter().all(|&depth| depth < u64::from(CONFIRMATIONS)), "{depths:?}");
    for store in fx.stores().await? {
        let pending: Vec<DepositRecord> =
            store.pending().await?.into_iter().filter(|record| record.observation.facts.chain == chain).collect();
        let mut found: Vec<u64> = pending.iter().map(|record| tip + 1 - record.observation.block_height).collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(found, depths, "{pending:?}");
        for record in &pending {
            assert_eq!((record.status, record.attempts), (DepositStatus::Observed, 0), "attested early: {record:?}");
        }
    }
    Ok(())
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.relayers.clear();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deposits_from_bitcoin_and_ethereum_mint_exactly_once_after_the_confirmations() -> TestResult {
    let _serial = serial().await;
    let mut fx = Fixture::start("relay").await?;
    let client = fx.client.clone();
    let btc_recipient = Address::from_bytes([0xb1; 20]);
    fx.pay_peg(150_000, Some(&btc_recipient)).await?;
    // One and two confirmations: every relayer saw the deposit at that depth, decided to wait,
    // and sent nothing.
    for depth in 1..CONFIRMATIONS {
        fx.btcd.mine(1).await?;
        let tip = fx.wait_until_evaluated(ParentChain::Bitcoin).await?;
        assert_waiting_at(&fx, ParentChain::Bitcoin, tip, &[u64::from(depth)]).await?;
        assert_eq!(
            balance(&client, &btc_recipient, &Denom::sat()).await?,
            0,
            "minted before {CONFIRMATIONS} confirmations"
        );
    }
    fx.btcd.mine(1).await?;
    let btc_minted = common::btc_minted(&client, 150_000).await?;
    wait_for_balance(&client, &btc_recipient, &Denom::sat(), btc_minted).await?;

    // Ethereum: ETH and an ERC-20.
    // (The token deposit mines its mint and approve transactions first, so it goes first: the
    // ETH deposit's block then gives it its second confirmation.)
    let eth_recipient = Address::from_bytes([0xe1; 20]);
    let token_denom: Denom = format!("erc20/{:#x}", fx.anvil.token()).to_lowercase().parse()?;
    fx.anvil.deposit_token(fx.anvil.token(), U256::from(250_000_000u64), &eth_recipient).await?;
    fx.anvil.deposit_eth(&eth_recipient, U256::from(2_000_000_000_000_000_000u128)).await?;
    let tip = fx.wait_until_evaluated(ParentChain::Ethereum).await?;
    assert_waiting_at(&fx, ParentChain::Ethereum, tip, &[2, 1]).await?;
    assert_eq!(balance(&client, &eth_recipient, &Denom::wei()).await?, 0, "minted before the confirmations");
    assert_eq!(balance(&client, &eth_recipient, &token_denom).await?, 0, "minted before the confirmations");
    fx.anvil.mine(u64::from(CONFIRMATIONS)).await?;
    wait_for_balance(&client, &eth_recipient, &Denom::wei(), 2_000_000_000_000_000_000).await?;
    wait_for_balance(&client, &eth_recipient, &token_denom, 250_000_000).await?;

    // More blocks and more polls change nothing: each deposit minted exactly once.
    fx.btcd.mine(3).await?;
    fx.anvil.mine(3).await?;
    fx.wait_until_evaluated(ParentChain::Bitcoin).await?;
    fx.wait_until_evaluated(ParentChain::Ethereum).await?;
    assert_eq!(balance(&client, &btc_recipient, &Denom::sat()).await?, btc_minted);
    assert_eq!(balance(&client, &eth_recipient, &Denom::wei()).await?, 2_000_000_000_000_000_000);
    assert_eq!(balance(&client, &eth_recipient, &token_denom).await?, 250_000_000);

    // Every relayer exports its progress and counts, and reports itself healthy.
    for relayer in &fx.relayers {
        let text = reqwest::get(relayer.metrics_url()).await?.text().await?;
        let value = |series: &str| -> Option<f64> {
            text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        };
        assert!(value(r#"ferry_relayer_scanned_height{chain="btc"}"#).is_some_and(|h| h >= 104.0), "{text}");
        assert_eq!(value(r#"ferry_relayer_deposits{state="attested"}"#), Some(3.0), "{text}");
        assert_eq!(value(r#"ferry_relayer_attestations_total{chain="btc",outcome="accepted"}"#), Some(1.0), "{text}");
        let health = reqwest::get(relayer.metrics_url().replace("/metrics", "/health")).await?;
        assert!(health.status().is_success(), "{:?}", health.text().await);
    }

    // Each relayer anchored its audit log's head on the chain from its member account, and its
    // log holds the anchored head.
    for (member, relayer) in fx.relayers.iter().enumerate() {
        let account = ferry_devnet::accounts::member_key(member)?.address();
        let client = &client;
        let anchor = wait_until("the relayer's audit anchor", WAIT, || async move {
            Ok(ferry_daemon::audit_anchor::chain_anchor(client, &account, AuditLogName::Relayer).await?)
        })
        .await?;
        let store = Store::connect(relayer.database_url()).await?;
        let report = ferry_audit::AuditLog::RELAYER.verify_against(store.pool(), Some(&anchor)).await?;
        assert!(report.is_intact() && report.anchor.as_ref().is_some_and(|check| check.holds()), "{report}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deposit_reorged_out_before_confirmations_never_mints_and_a_payment_without_memo_is_held_unattributed()
-> TestResult {
    let _serial = serial().await;
    let mut fx = Fixture::start("reorg").await?;
    let client = fx.client.clone();
    let recipient = Address::from_bytes([0xd0; 20]);

    // Bitcoin: the deposit's block is reorganised away before its third confirmation and the
    // payer double-spends it on the new branch.
    let deposit = fx.pay_peg(80_000, Some(&recipient)).await?;
    let [deposit_block] = fx.btcd.mine(1).await?[..] else { return Err("mined other than one block".into()) };
    let deposit_id = deposit.to_string();
    let observed = |records: &[DepositRecord]| records.iter().any(|r| r.status == DepositStatus::Observed);
    fx.wait_for_records(ParentChain::Bitcoin, &deposit_id, "the bitcoin deposit observed", observed).await?;
    fx.btcd.invalidate_block(&deposit_block).await?;
    let refund = TxOut { value: Sats::from_sat(80_000), script_pubkey: fx.wallet.address().script_pubkey() };
    fx.wallet.replace(&fx.btcd.rpc(), &deposit, vec![refund]).await?;
    fx.btcd.mine(4).await?;

    // Ethereum: the deposit's block is reorganised away with the transaction dropped.
    let ether = fx.anvil.deposit_eth(&recipient, U256::from(1_000_000_000u64)).await?;
    fx.anvil.mine(1).await?;
    fx.wait_for_records(ParentChain::Ethereum, &ether.tx_hash, "the ether deposit observed", observed).await?;
    fx.anvil.reorg(2, &[]).await?;
    fx.anvil.mine(4).await?;

    // Payments that cannot mint: no memo (attested as unattributed: the chain holds it), and a
    // memo without a payment to the peg (no money: refused).
    let no_memo = fx.pay_peg(30_000, None).await?;
    let elsewhere = TxOut { value: Sats::from_sat(30_000), script_pubkey: fx.wallet.address().script_pubkey() };
    let memo = TxOut { value: Sats::ZERO, script_pubkey: deposit_memo(&recipient) };
    let memo_only = fx.wallet.pay(&fx.btcd.rpc(), vec![elsewhere, memo]).await?;
    fx.btcd.mine(CONFIRMATIONS + 2).await?;
    // Every relayer drops both deposits, records the refusal and attests the unattributed payment
    // (then nothing is left to decide).
    let dropped = |records: &[DepositRecord]| records.iter().all(|r| r.status == DepositStatus::Dropped);
    fx.wait_for_records(ParentChain::Bitcoin, &deposit_id, "the bitcoin deposit dropped", dropped).await?;
    fx.wait_for_records(ParentChain::Ethereum, &ether.tx_hash, "the ether deposit dropped", dropped).await?;
    for store in fx.stores().await? {
        let store = &store;
        wait_until("the refused memo recorded", WAIT, || async move {
            Ok((store.counts().await?.rejections >= 1).then_some(()))
        })
        .await?;
    }
    fx.wait_until_evaluated(ParentChain::Bitcoin).await?;
    fx.wait_until_evaluated(ParentChain::Ethereum).await?;

    assert_eq!(balance(&client, &recipient, &Denom::sat()).await?, 0, "a reorged-out bitcoin deposit minted");
    assert_eq!(balance(&client, &recipient, &Denom::wei()).await?, 0, "a reorged-out ether deposit minted");
    // The chain holds the payment without a memo as unattributed, minted to nobody.
    let no_memo_id = format!("btc:{no_memo}:0");
    let held = wait_until("the payment without a memo recorded unattributed", WAIT, || async {
        let record: Option<ferry_types::deposit_record::DepositRecord> =
            client.query(&format!("/deposit/{no_memo_id}"), None).await?;
        Ok(record.filter(|record| record.status == ferry_types::deposit_record::DepositStatus::Unattributed))
    })
    .await?;
    assert_eq!(held.unattributed.map(|state| state.reason), Some(ferry_types::deposit::Unattributed::NoMemo));
    // Every relayer recorded the dropped deposits and the refused memo, with reasons.
    for url in fx.databases.iter().map(ScratchDatabase::url) {
        let store = ferry_relayer::store::Store::connect(url).await?;
        let counts = store.counts().await?;
        assert_eq!(counts.rejections, 1, "{url}: {counts:?}");
        assert_eq!(counts.deposits.get(&DepositStatus::Dropped), Some(&2), "{url}: {counts:?}");
        for chain_deposits in [
            deposits_of(&store, ParentChain::Bitcoin, &deposit_id).await?,
            deposits_of(&store, ParentChain::Ethereum, &ether.tx_hash).await?,
        ] {
            assert!(
                chain_deposits.iter().all(|record| record.attempts == 0),
                "attested before dropped: {chain_deposits:?}"
            );
        }
        assert!(store.verify().await?.is_intact());
        // The unattributed payment and the refusal are in the audit log, with their reasons.
        let unattributed = store.audit_entries(&no_memo_id).await?;
        assert!(unattributed.iter().any(|entry| entry.detail.to_string().contains("no_memo")), "{unattributed:?}");
        let refused_memo = store.audit_entries(&format!("btc:{memo_only}:1")).await?;
        assert!(
            refused_memo.iter().any(|entry| entry.detail.to_string().contains("without a payment to the peg")),
            "{refused_memo:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn relayers_killed_repeatedly_still_mint_every_deposit_exactly_once() -> TestResult {
    let _serial = serial().await;
    let mut fx = Fixture::start("crash").await?;
    let client = fx.client.clone();
    let recipients: Vec<Address> = (1..=4u8).map(|i| Address::from_bytes([0xc0 + i; 20])).collect();
    for (round, recipient) in recipients.iter().enumerate() {
        fx.pay_peg(10_000 * (u64::try_from(round)? + 1), Some(recipient)).await?;
        fx.anvil.deposit_eth(recipient, U256::from(1_000u64 * (u64::try_from(round)? + 1))).await?;
        // Crash a different relayer at a different moment of every round.
        let victim = round % fx.relayers.len();
        for step in 0..CONFIRMATIONS {
            fx.btcd.mine(1).await?;
            fx.anvil.mine(1).await?;
            tokio::time::sleep(Duration::from_millis(150 * u64::from(step + 1))).await;
            if step == u32::try_from(round)? % CONFIRMATIONS {
                fx.relayers.get_mut(victim).ok_or("relayer")?.restart()?;
            }
        }
    }
    fx.btcd.mine(2).await?;
    fx.anvil.mine(2).await?;
    for (round, recipient) in recipients.iter().enumerate() {
        let factor = u128::try_from(round)? + 1;
        wait_for_balance(&client, recipient, &Denom::sat(), common::btc_minted(&client, 10_000 * factor).await?)
            .await?;
        wait_for_balance(&client, recipient, &Denom::wei(), 1_000 * factor).await?;
    }
    // Nothing more arrives later: every relayer has scanned to the tips and decided again.
    fx.wait_until_evaluated(ParentChain::Bitcoin).await?;
    fx.wait_until_evaluated(ParentChain::Ethereum).await?;
    for (round, recipient) in recipients.iter().enumerate() {
        let factor = u128::try_from(round)? + 1;
        assert_eq!(
            balance(&client, recipient, &Denom::sat()).await?,
            common::btc_minted(&client, 10_000 * factor).await?
        );
        assert_eq!(balance(&client, recipient, &Denom::wei()).await?, 1_000 * factor);
    }
    Ok(())
}

/// A reorganisation forced at one moment of a watcher's round: when the watched RPC's next
/// `getblockhash` returns once armed (the round's cursor check), the block at the armed hash is
/// invalidated on btcd and three blocks are mined on the new branch, before the scan goes on.
#[derive(Clone, Default)]
struct ReorgTrap {
    armed: Arc<Mutex<Option<bitcoin::BlockHash>>>,
    fired: Arc<AtomicBool>,
}

impl ReorgTrap {
    /// The observer to give the watched RPC client; `btcd` is another client of the same node.
    fn observer(&self, btcd: BitcoinRpc) -> ferry_parent_chains::RpcObserver {
        let trap = self.clone();
        let handle = tokio::runtime::Handle::current();
        Arc::new(move |method: &str, _elapsed, ok| {
            if method != "getblockhash" || !ok {
                return;
            }
            let Some(hash) = trap.armed.lock().ok().and_then(|mut armed| armed.take()) else { return };
            tokio::task::block_in_place(|| {
                handle.block_on(async {
                    let invalidated = btcd.call::<()>("invalidateblock", &[serde_json::json!(hash.to_string())]).await;
                    let mined = btcd.call::<Vec<String>>("generate", &[serde_json::json!(3)]).await;
                    trap.fired.store(invalidated.is_ok() && mined.is_ok(), Ordering::SeqCst);
                });
            });
        })
    }

    /// Replaces the block `hash` (and its descendants) at the next cursor check.
    fn arm(&self, hash: bitcoin::BlockHash) -> TestResult {
        *self.armed.lock().map_err(|_| "trap lock poisoned")? = Some(hash);
        Ok(())
    }
}

/// Item 3 of the watcher's contract: a reorganisation between its cursor check and its scan
/// (forced with `invalidateblock` right after the check) makes the scan's first block fail to
/// link to the cursor, so the scan stops instead of skipping the replaced blocks; the next round
/// walks back to the fork and finds both deposits on the new branch — the one first seen on the
/// replaced block and one that only the new branch holds — and each mints exactly once. (Three
/// relayers are the quorum, so a deposit the trapped one skipped would never mint.)
#[tokio::test(flavor = "multi_thread")]
async fn a_reorg_between_the_cursor_check_and_the_scan_misses_no_deposit() -> TestResult {
    let _serial = serial().await;
    let name = "scan-reorg";
    let mut fx = Fixture::start_parts(name).await?;
    let trap = ReorgTrap::default();
    let mut relayers = Vec::new();
    let mut stores = Vec::new();
    for member in 0..3 {
        let store = Store::connect(&fx.database(name, member).await?).await?;
        let rpc = if member == 0 { fx.btcd.rpc().with_observer(trap.observer(fx.btcd.rpc())) } else { fx.btcd.rpc() };
        stores.push(store.clone());
        relayers.push(Relayer::new(
            store,
            (fx.network.client(member)?, fx.network.verified_reader(member)?),
            ferry_devnet::accounts::member_key(member)?,
            ferry_relayer::metrics::Metrics::new()?,
            Some(BitcoinWatch {
                rpc,
                peg: ferry_relayer::service::peg(
                    ferry_relayer::service::latest_proven(&fx.client, &*fx.network.verified_reader(0)?).await?,
                )
                .await?,
                policy: ConfirmationPolicy::flat(CONFIRMATIONS),
                start_height: 1,
            }),
            None,
        ));
    }
    for relayer in &relayers {
        relayer.poll_bitcoin().await?;
    }
    // Deposit A in block H; member 0 scans it (one confirmation: waiting).
    let (first, second) = (Address::from_bytes([0xa1; 20]), Address::from_bytes([0xa2; 20]));
    let first_tx = fx.pay_peg(150_000, Some(&first)).await?;
    let [replaced] = fx.btcd.mine(1).await?[..] else { return Err("one block".into()) };
    let replaced_height = fx.tip(ParentChain::Bitcoin).await?;
    relayers[0].poll_bitcoin().await?;
    assert_eq!(stores[0].cursor(ParentChain::Bitcoin).await?.map(|cursor| cursor.height), Some(replaced_height));
    // Block H + 1 gives the next round work; deposit B waits in the mempool.
    fx.btcd.mine(1).await?;
    let second_tx = fx.pay_peg(160_000, Some(&second)).await?;

    // The round: cursor H checked — H replaced (A and B mined on the new branch) — scan.
    trap.arm(replaced)?;
    relayers[0].poll_bitcoin().await?;
    assert!(trap.fired.load(Ordering::SeqCst), "the reorganisation was not forced");
    let cursor = stores[0].cursor(ParentChain::Bitcoin).await?.ok_or("no cursor")?;
    assert!(cursor.height <= replaced_height, "scanned past the fork on the new branch: {cursor:?}");

    // Rounds with new blocks until both mint.
    let minted = (common::btc_minted(&fx.client, 150_000).await?, common::btc_minted(&fx.client, 160_000).await?);
    let started = std::time::Instant::now();
    loop {
        for relayer in &relayers {
            relayer.poll_bitcoin().await?;
        }
        let held =
            (balance(&fx.client, &first, &Denom::sat()).await?, balance(&fx.client, &second, &Denom::sat()).await?);
        if held == minted {
            break;
        }
        if started.elapsed() > WAIT {
            return Err(format!("after the reorganisation {held:?} of {minted:?} minted").into());
        }
        fx.btcd.mine(1).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Later rounds change nothing; member 0 recorded the reorganisation and both deposits.
    fx.btcd.mine(2).await?;
    for relayer in &relayers {
        relayer.poll_bitcoin().await?;
    }
    let client = fx.network.client(3)?;
    client.wait_for_height(fx.client.latest_height().await? + 1, WAIT).await?;
    assert_eq!(balance(&client, &first, &Denom::sat()).await?, minted.0);
    assert_eq!(balance(&client, &second, &Denom::sat()).await?, minted.1);
    for tx in [first_tx, second_tx] {
        let records = deposits_of(&stores[0], ParentChain::Bitcoin, &tx.to_string()).await?;
        assert_eq!(records.len(), 1, "{records:?}");
        assert!(records[0].observation.block_height > replaced_height - 1, "{records:?}");
    }
    let audited = stores[0].audit_entries("btc").await?;
    assert!(audited.iter().any(|entry| entry.kind == "reorg"), "member 0 audited no reorganisation: {audited:?}");
    Ok(())
}

/// A relayer whose own sidechain node lies about the federation — a consistent lie: the JSON
/// `/federation` and the raw record both name a peg with one key swapped for the attacker's —
/// watches the real peg anyway: it reads the federation proven, the liar's answer does not verify
/// against the light client's headers, and the honest endpoint configured after it answers.
/// Its attestation is needed for the quorum (three of three relayers), so the deposit to the
/// real peg minting shows it followed the real peg; its metrics name the liar. (With the liar
/// alone it does not start: no proven federation, no peg to watch.)
#[tokio::test(flavor = "multi_thread")]
async fn a_relayer_behind_a_node_that_lies_about_the_federation_watches_the_real_peg_and_names_the_liar() -> TestResult
{
    let _serial = serial().await;
    let name = "relay-liar";
    let mut fx = Fixture::start_parts(name).await?;
    let attacker = bitcoin::secp256k1::PublicKey::from_secret_key(
        bitcoin::secp256k1::SECP256K1,
        &bitcoin::secp256k1::SecretKey::from_slice(&[0x42; 32])?,
    )
    .to_string();
    let swapped = attacker.clone();
    let json: common::Rewrite = Arc::new(move |answer: &serde_json::Value| {
        let mut answer = answer.clone();
        *answer.pointer_mut("/bitcoin/keys/0")? = serde_json::Value::String(swapped.clone());
        Some(answer)
    });
    let raw: common::RawRewrite = Arc::new(move |key: &[u8], value: &[u8]| {
        (key == ferry_types::state_keys::FEDERATION).then_some(())?;
        let mut federation: ferry_types::genesis::Federation = bcs::from_bytes(value).ok()?;
        *federation.bitcoin.as_mut()?.keys.first_mut()? = attacker.clone();
        bcs::to_bytes(&federation).ok()
    });
    let honest = fx.network.validators().first().ok_or("validator")?.rpc_url();
    let (liar, liar_task) =
        common::start_tampering_proxy(honest.clone(), common::Tamper { json: Some(json), raw: Some(raw) }).await?;
    let liar_url = format!("http://{liar}");
    // The lie is the whole answer a plain client gets.
    let told: ferry_types::genesis::Federation =
        FerryClient::new(&liar_url)?.query(ferry_types::query::FEDERATION_PATH, None).await?.ok_or("no federation")?;
    assert_ne!(told, fx.client.query(ferry_types::query::FEDERATION_PATH, None).await?.ok_or("no federation")?);

    fx.start_relayer(name, 0, liar_url.clone(), vec![honest]).await?;
    for member in 1..3 {
        let rpc = fx.network.validators().get(member).ok_or("validator")?.rpc_url();
        fx.start_relayer(name, member, rpc, Vec::new()).await?;
    }
    let recipient = Address::from_bytes([0xb7; 20]);
    fx.pay_peg(120_000, Some(&recipient)).await?;
    fx.btcd.mine(CONFIRMATIONS).await?;
    let minted = common::btc_minted(&fx.client, 120_000).await?;
    wait_for_balance(&fx.client, &recipient, &Denom::sat(), minted).await?;

    let metrics_url = fx.relayers.first().ok_or("relayer 0")?.metrics_url();
    let series = format!(r#"ferry_relayer_unverified_answers_total{{endpoint="{liar_url}"}}"#);
    let lies = wait_until("the liar named in relayer 0's metrics", WAIT, || {
        let (metrics_url, series) = (metrics_url.clone(), series.clone());
        async move {
            let text = reqwest::get(metrics_url).await?.text().await?;
            Ok(common::metric(&text, &series).filter(|count| *count >= 1.0))
        }
    })
    .await?;
    assert!(lies >= 1.0);
    liar_task.abort();
    Ok(())
}
