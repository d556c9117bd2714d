//! `ferry-signer run` against a real 4-validator Ferry network and PostgreSQL, through the devnet
//! harness (`ferry_devnet::signer`): an ether withdrawal is batched; with one honest signer down
//! and one signer configured for another vault, the batch cannot reach its threshold (3 of 4) —
//! the mismatched signer refuses it as `payload_mismatch` and audits why; when the stopped signer
//! comes back the batch is signed, the federation signature verifies over the payload, and the
//! honest signers' audit logs hold the signature record and its inclusion.
//!
//! The full withdrawal flows (vault and btcd payouts, reconciliation) are the devnet tests'.

#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use ferry_client::{FerryClient, Wallet};
use ferry_devnet::postgres::PgServer;
use ferry_devnet::signer::{SignerConfigSpec, SignerProcess};
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_signer::ceremony::{keystore_path, manifest_path};
use ferry_signer::store::{Store, kind};
use ferry_signer::{KdfParams, Overwrite, write_ceremony};
use ferry_types::msg::MsgWithdraw;
use ferry_types::query::{BATCH_PATH, BatchRelease, BatchStatus, BatchView};
use ferry_types::release::bls;
use ferry_types::release::eth::EthAddress;
use ferry_types::{Amount, Coin, Denom, Msg};

type TestResult<T = ()> = anyhow::Result<T>;

const CHAIN_ID: u64 = 31_337;
const VAULT: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const OTHER_VAULT: &str = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
const DESTINATION: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const PASSPHRASE: &str = "devnet signer passphrase";
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

async fn metrics(signer: &SignerProcess) -> TestResult<String> {
    Ok(reqwest::get(signer.metrics_url()).await?.text().await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn signers_rebuild_refuse_a_foreign_vault_and_sign_once_a_stopped_member_returns() -> TestResult {
    let mut genesis = accounts::genesis(2, accounts::FEDERATION_MEMBERS)?;
    accounts::with_ethereum(&mut genesis, CHAIN_ID, VAULT.parse()?, &[]);
    let min_fee = genesis.params.min_fee(&Denom::wei()).expect("wei pays fees");
    let mut network = Network::create(NetworkSpec::isolated("signer-e2e", 4, genesis)?, Tools::locate()?)?;
    network.start_all()?;
    let client = network.client(0)?;
    client.wait_for_height(2, WAIT).await?;

    // The devnet ceremony's keystores (the federation genesis names), one database per member.
    let keys = tempfile::tempdir()?;
    let ceremony = accounts::federation_ceremony()?;
    write_ceremony(keys.path(), &ceremony, PASSPHRASE, KdfParams::with_log_n(10)?, Overwrite::Refuse)?;
    let passphrase = keys.path().join("passphrase");
    std::fs::write(&passphrase, format!("{PASSPHRASE}\n"))?;
    let server = PgServer::from_env_or_start(None).await?;
    let mut signers = Vec::new();
    let mut urls = Vec::new();
    for member in 0..accounts::FEDERATION_MEMBERS {
        let url = server.create_database(&format!("signer_chain_e2e_{member}_{}", std::process::id())).await?;
        let vault = if member == 3 { OTHER_VAULT } else { VAULT };
        let spec = SignerConfigSpec::new(
            network.spec().dir.join(format!("signer{member}")),
            network.validators()[member].rpc_url(),
            url.clone(),
            keystore_path(keys.path(), u32::try_from(member)?),
            &passphrase,
            manifest_path(keys.path()),
        )
        .with_ethereum(CHAIN_ID, vault);
        signers.push(SignerProcess::start(spec)?);
        urls.push(url);
    }
    signers[0].kill();
    for signer in &signers[1..] {
        eventually("a healthy signer", || async {
            Ok(reqwest::get(signer.health_url()).await.ok().filter(|r| r.status().is_success()).map(|_| ()))
        })
        .await?;
    }

    // A user burns 0.002 fETH to an Ethereum address.
    let user = accounts::user_key(0)?;
    let mut wallet = Wallet::load(&client, user.clone()).await?;
    let withdraw = Msg::Withdraw(MsgWithdraw {
        sender: user.address(),
        asset: Denom::wei(),
        amount: Amount::new(2_000_000_000_000_000),
        destination: DESTINATION.to_owned(),
    });
    let tx = wallet.sign(&Coin { denom: Denom::wei(), amount: min_fee }, &[withdraw])?;
    let burned = client.broadcast_and_wait(tx, WAIT).await?;
    anyhow::ensure!(burned.code == 0, "withdrawal refused: {}", burned.log);
    let burned_at = Instant::now();

    // Two honest signatures; the signer expecting another vault refuses; the batch waits.
    let waiting = eventually("two signatures on batch 1", || async {
        Ok(batch(&client, 1).await?.filter(|view| view.signature_count >= 2))
    })
    .await?;
    let refusing = &signers[3];
    eventually("the refusal counted", || async {
        let text = metrics(refusing).await?;
        Ok(text.contains(r#"ferry_signer_policy_rejections_total{reason="payload_mismatch"} 1"#).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = batch(&client, 1).await?.expect("batch 1");
    assert_eq!((still.batch.status, still.signature_count), (BatchStatus::Signing, 2), "{waiting:?}");
    let members = ceremony.manifest.accounts();
    assert!(!still.batch.signatures.contains_key(&members[3]) && !still.batch.signatures.contains_key(&members[0]));
    let refused = Store::connect(&urls[3]).await?.entries_for(1).await?;
    assert_eq!(refused.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), [kind::REFUSED], "{refused:?}");
    assert_eq!(refused[0].detail["reason"], "payload_mismatch");
    let message = refused[0].detail["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("vault {VAULT}, this signer expects {OTHER_VAULT}")), "{message}");

    // The stopped member comes back: the threshold is met and the federation signature verifies.
    signers[0].restart()?;
    let signed = eventually("batch 1 signed", || async {
        Ok(batch(&client, 1).await?.filter(|view| view.batch.status == BatchStatus::Signed))
    })
    .await?;
    let signing_seconds = burned_at.elapsed().as_secs_f64();
    let BatchRelease::Ethereum(release) = &signed.batch.release else { anyhow::bail!("not an Ethereum batch") };
    assert_eq!(release.batch.vault, VAULT.parse::<EthAddress>()?);
    let signature = bls::decode_signature(&hex::decode(release.signature_compressed.as_deref().unwrap_or(""))?)?;
    let key = ceremony.manifest.public_key_set()?.public_key();
    assert!(bls::verify_signature(&key, &signature, &release.batch.signing_message()));
    assert!(signed.batch.signatures.contains_key(&members[0]));
    assert!(!signed.batch.signatures.contains_key(&members[3]));

    for (member, url) in urls.iter().enumerate().take(3) {
        // Counted once the inclusion is audited.
        let signer = &signers[member];
        eventually("the signature counted", || async {
            let text = metrics(signer).await?;
            Ok(text.contains(r#"ferry_signer_signatures_total{chain="eth",outcome="signed"} 1"#).then_some(()))
        })
        .await?;
        let store = Store::connect(url).await?;
        let entries = store.entries_for(1).await?;
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, [kind::SIGNED, kind::POSTED], "member {member}: {entries:?}");
        assert_eq!(store.signed(1, 1).await?.map(|row| row.total), Some(Amount::new(2_000_000_000_000_000)));
        assert!(store.verify().await?.is_intact());
    }
    let text = metrics(&signers[0]).await?;
    assert!(!text.contains("ferry_signer_last_signature_timestamp_seconds 0\n"), "{text}");
    println!("burn included → batch signed (one signer restarted on the way): {signing_seconds:.1} s");
    drop(signers);
    Ok(())
}
