//! Verified reads (`ferry-light`) against a real 4-validator network: a record read through
//! `/store` with its Merkle proof, checked against a header the light client verified from the
//! genesis validators, equals what the chain's own query says; a proven absence is `None`; an
//! endpoint that rewrites the record is caught (its answer does not verify), named, and not
//! followed while an honest endpoint answers; with only the liar, the read fails. A root older
//! than the trusting period fails naming the fix and blaming no endpoint; a trust point (a
//! recent block's height and hash) and a light store kept by an earlier reader both start where
//! the genesis no longer can.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestResult, WAIT, serial, start_funded_network};
use ferry_app::state::{AccountRecord, keys};
use ferry_devnet::accounts::user_key;
use ferry_light::{ReadError, Reader, TrustRoot};
use ferry_types::Address;

const TRUSTING_PERIOD: Duration = Duration::from_secs(24 * 3600);

#[tokio::test(flavor = "multi_thread")]
async fn proven_reads_follow_the_light_client_and_a_lying_endpoint_is_named() -> TestResult {
    let _serial = serial().await;
    let network = start_funded_network("verified-reads").await?;
    let genesis = network.validators()[0].home.join("config/genesis.json");
    let client = network.client(1)?;
    let alice = user_key(0)?.address();

    // A read at a committed height: its app hash is in the next header.
    let height = client.latest_height().await?;
    network.wait_for_height(height + 1, WAIT).await?;

    // The liar raises every balance it serves by one base unit (the record stays well-formed).
    let inflate: common::RawRewrite = Arc::new(|key: &[u8], value: &[u8]| {
        let mut record: AccountRecord = bcs::from_bytes(value).ok()?;
        key.starts_with(keys::ACCOUNT_PREFIX).then_some(())?;
        for amount in record.balances.values_mut() {
            *amount = ferry_types::Amount::new(amount.get() + 1);
        }
        bcs::to_bytes(&record).ok()
    });
    let tamper = common::Tamper { json: None, raw: Some(inflate) };
    let (liar, liar_task) = common::start_tampering_proxy(network.validators()[2].rpc_url(), tamper).await?;
    let liar_url = format!("http://{liar}");
    let honest_url = network.validators()[1].rpc_url();

    let reader =
        Reader::new(&[liar_url.clone(), honest_url], TrustRoot::from_genesis_file(&genesis)?, TRUSTING_PERIOD)?;
    let proven = reader.record(&keys::account(&alice), height).await?.ok_or("alice's account read as absent")?;
    let record: AccountRecord = bcs::from_bytes(&proven)?;
    let view = client.balances(&alice, Some(height)).await?;
    let expected: Vec<(String, u128)> =
        view.balances.iter().map(|coin| (coin.denom.to_string(), coin.amount.get())).collect();
    let read: Vec<(String, u128)> =
        record.balances.iter().map(|(denom, amount)| (denom.to_string(), amount.get())).collect();
    assert_eq!(read, expected, "the proven record is the chain's, not the liar's");
    assert!(!read.is_empty(), "alice holds something");
    assert_eq!(reader.liars().get(&liar_url), Some(&1), "the liar is named: {:?}", reader.liars());

    // A proven absence.
    let nobody = Address::from_bytes([0x0b; 20]);
    assert_eq!(reader.record(&keys::account(&nobody), height).await?, None);

    // Later heights verify from the header already trusted.
    let later = client.latest_height().await?;
    network.wait_for_height(later + 1, WAIT).await?;
    assert!(reader.record(&keys::account(&alice), later).await?.is_some());

    // Only the liar: nothing verifies, and the error says why.
    let alone = Reader::new(std::slice::from_ref(&liar_url), TrustRoot::from_genesis_file(&genesis)?, TRUSTING_PERIOD)?;
    match alone.record(&keys::account(&alice), height).await {
        Err(ReadError::Unverified(reasons)) => {
            assert!(reasons.iter().any(|reason| reason.contains("does not verify")), "{reasons:?}");
        }
        other => return Err(format!("a lying endpoint alone gave {other:?}").into()),
    }
    liar_task.abort();
    trust_points_and_the_light_store_outlive_the_genesis(&network, &genesis).await
}

/// With a trusting period of a few seconds, the genesis ages out while the network runs.
async fn trust_points_and_the_light_store_outlive_the_genesis(
    network: &ferry_devnet::Network,
    genesis: &std::path::Path,
) -> TestResult {
    use tendermint_rpc::Client;
    const SHORT: Duration = Duration::from_secs(8);
    let alice = user_key(0)?.address();
    let url = network.validators()[1].rpc_url();
    let rpc = tendermint_rpc::HttpClient::new(url.as_str())?;
    let first = rpc.commit(tendermint::block::Height::from(1u32)).await?.signed_header.header.time;
    let aged = (first + (SHORT + Duration::from_secs(1)))?;
    while tendermint::Time::now() < aged {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let client = network.client(1)?;
    let proven_height = |client: ferry_client::FerryClient| async move {
        let height = client.latest_height().await?;
        network.wait_for_height(height + 1, WAIT).await?;
        TestResult::Ok(height)
    };

    // From the genesis: stale, and no endpoint is blamed.
    let from_genesis = Reader::new(std::slice::from_ref(&url), TrustRoot::from_genesis_file(genesis)?, SHORT)?;
    let at = proven_height(client.clone()).await?;
    match from_genesis.record(&keys::account(&alice), at).await {
        Err(ReadError::TrustExpired { height: 1 }) => {}
        other => return Err(format!("a genesis older than the trusting period gave {other:?}").into()),
    }
    assert!(from_genesis.liars().is_empty(), "an endpoint was blamed: {:?}", from_genesis.liars());

    // From a recent trust point, with a light store.
    let point = client.latest_height().await?;
    let hash = rpc.commit(tendermint::block::Height::try_from(point)?).await?.signed_header.header.hash();
    let store = tempfile::tempdir()?;
    let store_file = store.path().join("light.json");
    let root = TrustRoot::from_genesis_file(genesis)?.with_trust_point(point, &hash.to_string())?;
    let from_point = Reader::new(std::slice::from_ref(&url), root, SHORT)?.with_store(&store_file)?;
    let at = proven_height(client.clone()).await?;
    assert!(from_point.record(&keys::account(&alice), at).await?.is_some(), "alice's account proven from the point");
    assert!(store_file.exists(), "the light store was written");

    // A wrong trust point (another block's hash) verifies nothing.
    let other = rpc.commit(tendermint::block::Height::try_from(point - 1)?).await?.signed_header.header.hash();
    let wrong = TrustRoot::from_genesis_file(genesis)?.with_trust_point(point, &other.to_string())?;
    let misled = Reader::new(std::slice::from_ref(&url), wrong, SHORT)?;
    match misled.record(&keys::account(&alice), at).await {
        Err(ReadError::Unverified(reasons)) => {
            assert!(reasons.iter().any(|reason| reason.contains("not the trust point's")), "{reasons:?}");
        }
        other => return Err(format!("a wrong trust point gave {other:?}").into()),
    }

    // A restart with the aged genesis and the store resumes from the stored header.
    let resumed = Reader::new(std::slice::from_ref(&url), TrustRoot::from_genesis_file(genesis)?, SHORT)?
        .with_store(&store_file)?;
    let at = proven_height(client).await?;
    assert!(resumed.record(&keys::account(&alice), at).await?.is_some(), "proven from the stored header");
    Ok(())
}
