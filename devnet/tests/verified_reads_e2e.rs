//! Verified reads (`ferry-light`) against a real 4-validator network: a record read through
//! `/store` with its Merkle proof, checked against a header the light client verified from the
//! genesis validators, equals what the chain's own query says; a proven absence is `None`; an
//! endpoint that rewrites the record is caught (its answer does not verify), named, and not
//! followed while an honest endpoint answers; with only the liar, the read fails.

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
    Ok(())
}
