//! `ferry-signer run` against a real 4-validator Ferry network and PostgreSQL, through the devnet
//! harness (`ferry_devnet::signer`): an ether withdrawal is batched; with one honest signer down
//! and one signer configured for another vault, the batch cannot reach its threshold (3 of 4) —
//! the mismatched signer refuses it as `payload_mismatch` and audits why; when the stopped signer
//! comes back the batch is signed, the federation signature verifies over the payload, and the
//! honest signers' audit logs hold the signature record and its inclusion.
//!
//! A Bitcoin batch (over a reserve UTXO that three members attest) is rebuilt and signed per
//! input by every member, and the witness assembles from the signatures the chain recorded.
//!
//! The full withdrawal flows (vault and btcd payouts, reconciliation) are the devnet tests'.

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bitcoin::{Network as BitcoinNet, ScriptBuf};

use ferry_client::{FerryClient, Wallet};
use ferry_devnet::postgres::{PgServer, ScratchDatabase};
use ferry_devnet::signer::{SignerConfigSpec, SignerProcess, write_federation_keys};
use ferry_devnet::system::TEST_BITCOIN_BUDGET;
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_signer::Ceremony;
use ferry_signer::store::{Store, kind};
use ferry_types::msg::audit::AuditLogName;
use ferry_types::msg::{MsgAttestDeposit, MsgWithdraw};
use ferry_types::peg::Peg;
use ferry_types::query::{BATCH_PATH, BatchRelease, BatchStatus, BatchView};
use ferry_types::release::bitcoin::assemble_witness;
use ferry_types::release::bls;
use ferry_types::release::eth::EthAddress;
use ferry_types::{Amount, Coin, Denom, Msg};
use ferry_types::{DepositFacts, ParentChain};

type TestResult<T = ()> = anyhow::Result<T>;

const CHAIN_ID: u64 = 31_337;
const VAULT: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const OTHER_VAULT: &str = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
const DESTINATION: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const WAIT: Duration = Duration::from_secs(90);

async fn batch(client: &FerryClient, id: u64) -> TestResult<Option<BatchView>> {
    Ok(client.query(&format!("{BATCH_PATH}{id}"), None).await?)
}

/// Polls `check` every 200 ms until it yields a value or `WAIT` passes.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> TestResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResult<Option<T>>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(started.elapsed() < WAIT, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Held for the whole of each test: one network at a time on the two-core machine.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

async fn metrics(signer: &SignerProcess) -> TestResult<String> {
    Ok(reqwest::get(signer.metrics_url()).await?.text().await?)
}

/// Waits until `signer` has completed a whole poll round that began after this call: its
/// `ferry_signer_last_poll_timestamp_seconds` (set as a round completes) moved twice since.
async fn a_whole_round(signer: &SignerProcess) -> TestResult {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let mut after = now();
    for _ in 0..2 {
        after = eventually("a poll round completed", || async move {
            let text = metrics(signer).await?;
            let last = text.lines().find_map(|line| {
                line.strip_prefix("ferry_signer_last_poll_timestamp_seconds ")?.trim().parse::<f64>().ok()
            });
            Ok(last.filter(|&last| last > after))
        })
        .await?;
    }
    Ok(())
}

/// A running 4-validator network whose genesis names the devnet federation, its keystores on
/// disk, a PostgreSQL server and one signer per member (member `i` talking to validator `i`).
struct Federation {
    client: FerryClient,
    ceremony: Ceremony,
    signers: Vec<SignerProcess>,
    urls: Vec<String>,
    min_fee: Amount,
    /// The validators, stopped when the test ends.
    _network: Network,
    // Dropped last: the signers must stop before their databases and key files go.
    _databases: Vec<ScratchDatabase>,
    _server: PgServer,
    _keys: tempfile::TempDir,
}

impl Federation {
    /// Starts everything; `vault_of(member)` is the vault member `member` expects.
    async fn start(name: &str, vault_of: impl Fn(usize) -> &'static str) -> TestResult<Federation> {
        let mut genesis = accounts::genesis(2, accounts::FEDERATION_MEMBERS)?;
        accounts::with_ethereum(&mut genesis, CHAIN_ID, VAULT.parse()?, &[]);
        let min_fee = genesis.params.min_fee(&Denom::wei()).expect("wei pays fees");
        let mut network = Network::create(NetworkSpec::isolated(name, 4, genesis)?, Tools::locate()?)?;
        network.start_all()?;
        let client = network.client(0)?;
        client.wait_for_height(2, WAIT).await?;

        // The devnet ceremony's keystores (the federation genesis names), one database per member.
        let keys = tempfile::tempdir()?;
        let key_files = write_federation_keys(keys.path())?;
        let ceremony = accounts::federation_ceremony()?;
        let server = PgServer::from_env_or_start(None).await?;
        let mut signers = Vec::new();
        let mut urls = Vec::new();
        let mut databases = Vec::new();
        for member in 0..accounts::FEDERATION_MEMBERS {
            let database = server.scratch_database(&format!("{}_{member}", name.replace('-', "_"))).await?;
            let url = database.url().to_owned();
            databases.push(database);
            let dir = network.spec().dir.join(format!("signer{member}"));
            let spec =
                SignerConfigSpec::for_member(&key_files, member, dir, network.validators()[member].rpc_url(), &url)?
                    .with_ethereum(CHAIN_ID, vault_of(member))
                    .with_trust_root(network.genesis_file(), Vec::new());
            signers.push(SignerProcess::start(spec)?);
            urls.push(url);
        }
        Ok(Federation {
            client,
            ceremony,
            signers,
            urls,
            min_fee,
            _network: network,
            _databases: databases,
            _server: server,
            _keys: keys,
        })
    }

    /// Members 0..3 attest a made-up deposit of `amount` of `asset` to user 0, as their relayers
    /// would: what user 0 withdraws, and the reserves it is paid from (a batch never pays more).
    async fn mint(&self, chain: ParentChain, asset: Denom, amount: u128) -> TestResult {
        let tx_id = match chain {
            ParentChain::Bitcoin => "ab".repeat(32),
            ParentChain::Ethereum => format!("0x{}", "cd".repeat(32)),
        };
        let recipient = accounts::user_key(0)?.address();
        let facts = DepositFacts {
            chain,
            tx_id,
            index: 0,
            asset,
            amount: Amount::new(amount),
            recipient,
            deposit_address: false,
            unattributed: None,
            peg_epoch: None,
        };
        // Through the daemons' own posting path: a member's signer shares its account (key
        // registration, heartbeats), so a sequence race is retried, as the relayer would.
        for member in &self.ceremony.members[..3] {
            let attest = Msg::AttestDeposit(MsgAttestDeposit { attester: member.account(), facts: facts.clone() });
            ferry_signer::duty::post_duty(&self.client, member.account_key(), &attest)
                .await
                .map_err(|error| anyhow::anyhow!("attestation refused: {error}"))?;
        }
        Ok(())
    }

    /// User 0 burns `amount` of `asset` to `destination`; the burn is included.
    async fn withdraw(&self, asset: Denom, amount: u128, destination: &str, fee: Coin) -> TestResult {
        let user = accounts::user_key(0)?;
        let mut wallet = Wallet::load(&self.client, user.clone()).await?;
        let max_fee = Amount::new(if asset == Denom::sat() { TEST_BITCOIN_BUDGET } else { 0 });
        let withdraw = Msg::Withdraw(MsgWithdraw {
            sender: user.address(),
            asset,
            amount: Amount::new(amount),
            destination: destination.to_owned(),
            max_fee,
        });
        let tx = wallet.sign(&fee, &[withdraw])?;
        let burned = self.client.broadcast_and_wait(tx, WAIT).await?;
        anyhow::ensure!(burned.code == 0, "withdrawal refused: {}", burned.log);
        Ok(())
    }

    /// Waits until `member`'s metrics count one signed batch of `chain`, then checks its audit
    /// log for batch `id`: the record and the inclusion, a verifying chain.
    async fn check_signed(&self, member: usize, chain: &str, id: u64, total: u128) -> TestResult {
        let signer = &self.signers[member];
        let counted = format!(r#"ferry_signer_signatures_total{{chain="{chain}",outcome="signed"}} 1"#);
        eventually("the signature counted", || async { Ok(metrics(signer).await?.contains(&counted).then_some(())) })
            .await?;
        let store = Store::connect(&self.urls[member]).await?;
        let entries = store.entries_for(id).await?;
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, [kind::SIGNED, kind::POSTED], "member {member}: {entries:?}");
        assert_eq!(store.signed(1, id).await?.map(|row| row.total), Some(Amount::new(total)));
        assert!(store.verify().await?.is_intact());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signers_rebuild_refuse_a_foreign_vault_and_sign_once_a_stopped_member_returns() -> TestResult {
    let _serial = serial().await;
    let mut federation =
        Federation::start("signer-eth-e2e", |member| if member == 3 { OTHER_VAULT } else { VAULT }).await?;
    federation.signers[0].kill();
    // Reserves to pay from: a (made-up) 0.01 ETH deposit.
    federation.mint(ParentChain::Ethereum, Denom::wei(), 10_000_000_000_000_000).await?;

    // A user burns 0.002 fETH to an Ethereum address.
    let fee = Coin { denom: Denom::wei(), amount: federation.min_fee };
    federation.withdraw(Denom::wei(), 2_000_000_000_000_000, DESTINATION, fee).await?;
    let burned_at = Instant::now();

    // Two honest signatures; the signer expecting another vault refuses; the batch waits.
    let client = &federation.client;
    eventually("two signatures on batch 1", || async {
        Ok(batch(client, 1).await?.filter(|view| view.signature_count >= 2))
    })
    .await?;
    let refusing = &federation.signers[3];
    eventually("the refusal counted", || async {
        let text = metrics(refusing).await?;
        Ok(text.contains(r#"ferry_signer_policy_rejections_total{reason="payload_mismatch"} 1"#).then_some(()))
    })
    .await?;
    // The refusing signer has looked at the batch again since, and still not signed it.
    a_whole_round(refusing).await?;
    let waiting = batch(client, 1).await?.expect("batch 1");
    assert_eq!((waiting.batch.status, waiting.signature_count), (BatchStatus::Signing, 2));
    let members = federation.ceremony.manifest.accounts();
    assert!(!waiting.batch.signatures.contains_key(&members[3]) && !waiting.batch.signatures.contains_key(&members[0]));
    let refused = Store::connect(&federation.urls[3]).await?.entries_for(1).await?;
    assert_eq!(refused.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), [kind::REFUSED], "{refused:?}");
    assert_eq!(refused[0].detail["reason"], "payload_mismatch");
    let message = refused[0].detail["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("vault {VAULT}, this signer expects {OTHER_VAULT}")), "{message}");

    // The stopped member comes back: the threshold is met and the federation signature verifies.
    federation.signers[0].restart()?;
    let client = &federation.client;
    let signed = eventually("batch 1 signed", || async {
        Ok(batch(client, 1).await?.filter(|view| view.batch.status == BatchStatus::Signed))
    })
    .await?;
    let signing_seconds = burned_at.elapsed().as_secs_f64();
    let BatchRelease::Ethereum(release) = &signed.batch.release else { anyhow::bail!("not an Ethereum batch") };
    assert_eq!(release.batch.vault, VAULT.parse::<EthAddress>()?);
    let signature = bls::decode_signature(&hex::decode(release.signature_compressed.as_deref().unwrap_or(""))?)?;
    let key = federation.ceremony.manifest.public_key_set()?.public_key();
    assert!(bls::verify_signature(&key, &signature, &release.batch.signing_message()));
    assert!(signed.batch.signatures.contains_key(&members[0]));
    assert!(!signed.batch.signatures.contains_key(&members[3]));
    for member in 0..3 {
        federation.check_signed(member, "eth", 1, 2_000_000_000_000_000).await?;
    }
    let text = metrics(&federation.signers[0]).await?;
    assert!(!text.contains("ferry_signer_last_signature_timestamp_seconds 0\n"), "{text}");
    println!("ether: burn included → batch signed, one signer restarted on the way: {signing_seconds:.1} s");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bitcoin_batch_is_rebuilt_and_signed_per_input_by_every_member() -> TestResult {
    let _serial = serial().await;
    let federation = Federation::start("signer-btc-e2e", |_| VAULT).await?;
    let client = &federation.client;

    // A reserve UTXO: three members attest a (made-up) 0.01 BTC deposit, as their relayers would.
    federation.mint(ParentChain::Bitcoin, Denom::sat(), 1_000_000).await?;

    // A user burns 300 000 sat to a regtest address.
    let destination = bitcoin::Address::p2wsh(&ScriptBuf::from_bytes(vec![0x51]), BitcoinNet::Regtest).to_string();
    let fee = Coin { denom: Denom::sat(), amount: Amount::new(1_000) };
    federation.withdraw(Denom::sat(), 300_000, &destination, fee).await?;
    let burned_at = Instant::now();
    let signed = eventually("batch 1 signed", || async {
        Ok(batch(client, 1).await?.filter(|view| view.batch.status == BatchStatus::Signed))
    })
    .await?;
    let signing_seconds = burned_at.elapsed().as_secs_f64();

    // The chain holds a threshold of valid signatures for every input; the witness assembles.
    let BatchRelease::Bitcoin(release) = &signed.batch.release else { anyhow::bail!("not a Bitcoin batch") };
    let peg = Peg::new(&federation.ceremony.manifest.bitcoin)?;
    let sighashes: Vec<[u8; 32]> = release
        .sighashes
        .iter()
        .map(|hash| hex::decode(hash)?.try_into().map_err(|_| anyhow::anyhow!("a sighash of another length")))
        .collect::<TestResult<_>>()?;
    let members = federation.ceremony.manifest.accounts();
    let mut per_input = vec![BTreeMap::new(); sighashes.len()];
    for (member, signatures) in &signed.batch.signatures {
        let index = members.iter().position(|account| account == member).expect("a member");
        for (input, signature) in signatures.iter().enumerate() {
            per_input[input].insert(index, hex::decode(signature)?);
        }
    }
    let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&hex::decode(&release.unsigned_tx)?)?;
    let witnessed = assemble_witness(&tx, &release.plan, &peg, &sighashes, &per_input)?;
    assert_eq!(witnessed.compute_txid().to_string(), release.txid);
    // The destination gets the burn less the whole fee (it is alone): the rate on the size with
    // the longest signatures, never below the rate on the real signed size.
    let fee = release.plan.fee().get();
    assert_eq!(release.plan.outputs()[0].amount, Amount::new(300_000 - fee));
    assert_eq!(
        fee,
        u128::from(
            release
                .fee_rate
                .fee_for(
                    ferry_types::release::standardness::with_longest_signatures(
                        &tx,
                        &peg,
                        &release.plan.witness_scripts(&peg)
                    )
                    .weight()
                )
                .to_sat()
        )
    );
    assert!(fee * 1_000 >= u128::from(release.fee_rate.sat_per_kvb()) * u128::from(witnessed.vsize() as u64));
    assert_eq!(release.plan.change(), Some(Amount::new(700_000)));

    // Every member signs (all are honest here); the ones past the threshold are counted by them
    // all the same, and each audit log holds the record and the inclusion.
    for member in 0..4 {
        federation.check_signed(member, "btc", 1, 300_000).await?;
    }
    // Each running signer anchored its audit log's head on the chain (`MsgAnchorAudit`, from
    // its member account), and its log holds the anchored head.
    for (member, account) in members.iter().enumerate() {
        let anchor = eventually("the signer's audit anchor", || async {
            Ok(ferry_daemon::audit_anchor::chain_anchor(client, account, AuditLogName::Signer).await?)
        })
        .await?;
        let store = Store::connect(&federation.urls[member]).await?;
        let report = ferry_audit::AuditLog::SIGNER.verify_against(store.pool(), Some(&anchor)).await?;
        assert!(report.is_intact() && report.anchor.as_ref().is_some_and(|check| check.holds()), "{report}");
    }
    let blocks = signed.batch.signed_height.unwrap_or_default().saturating_sub(signed.batch.created_height);
    println!("bitcoin: burn included → batch signed: {signing_seconds:.1} s; batch formed → signed: {blocks} blocks");
    Ok(())
}
