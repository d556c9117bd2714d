//! Verified reads (issue 15): what a signer reads to sign one batch — nine records (a batch's
//! record, eight withdrawal records, the parameters; here nine account records of the same
//! kind of size, on a network without a bridge) — read as before, through Ferry's JSON query
//! paths with no proof (the baseline), against read through `ferry-light`: each record with its
//! Merkle proof from `/store`, checked against a header the light client verified. Both on the
//! same 4-validator loopback network in the same run, alternated round by round, each round at
//! a new height (so the proven one also verifies that height's header); the first proven round
//! also pays the light client's verification from genesis (printed apart).

use std::time::{Duration, Instant};

use ferry_app::state::keys;
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_light::{Reader, TrustRoot};
use ferry_types::Address;

use crate::samples::Samples;

/// Records per round: one batch, eight withdrawals, the parameters.
const RECORDS: usize = 9;
/// Rounds timed per kind.
const ROUNDS: usize = 50;

/// Runs and prints.
pub async fn run() -> anyhow::Result<()> {
    println!(
        "\n== verified reads: the {RECORDS} records one batch is signed on, {ROUNDS} rounds (4 validators on loopback) =="
    );
    let spec = NetworkSpec::isolated("bench-verified", 4, accounts::genesis(RECORDS, 4)?)?;
    let mut network = Network::create(spec, Tools::locate()?)?;
    network.start_all()?;
    network.wait_for_height(2, Duration::from_secs(60)).await?;
    ferry_devnet::funding::attest_openings(&network, RECORDS).await?;
    let client = network.client(1)?;
    let users: Vec<Address> =
        (0..RECORDS).map(|index| accounts::user_key(index).map(|key| key.address())).collect::<anyhow::Result<_>>()?;
    let height = client.latest_height().await?;
    network.wait_for_height(height + 1, Duration::from_secs(60)).await?;

    let reader = Reader::new(
        &[network.validators()[1].rpc_url()],
        TrustRoot::from_genesis_file(&network.genesis_file())?,
        Duration::from_secs(24 * 3600),
    )?;
    let first = Instant::now();
    for user in &users {
        reader.record(&keys::account(user), height).await?.ok_or_else(|| anyhow::anyhow!("{user} not proven"))?;
    }
    let cold = first.elapsed().as_secs_f64();

    // Each round reads at a new height, as a signer's rounds do: the proven reads then verify
    // one new header (skipping from the last one) besides their nine proofs.
    let (mut json, mut proven) = (Samples::default(), Samples::default());
    let mut last = height;
    for _ in 0..ROUNDS {
        network.wait_for_height(last + 2, Duration::from_secs(60)).await?;
        let at = client.latest_height().await?.saturating_sub(1);
        last = at;
        let started = Instant::now();
        for user in &users {
            client.account(user, Some(at)).await?.ok_or_else(|| anyhow::anyhow!("{user} has no account"))?;
        }
        json.push(started.elapsed().as_secs_f64() * 1_000.0);
        let started = Instant::now();
        for user in &users {
            reader.record(&keys::account(user), at).await?.ok_or_else(|| anyhow::anyhow!("{user} not proven"))?;
        }
        proven.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    let mut round_trip = Samples::default();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        client.latest_height().await?;
        round_trip.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    println!("one RPC round trip (status)      {} ms", round_trip.summary(2));
    let per_record = |samples: &Samples| samples.percentile(50) / RECORDS as f64;
    println!(
        "unverified (JSON query paths)   {} ms per round, {:.2} ms per record",
        json.summary(2),
        per_record(&json)
    );
    println!(
        "proven (Merkle proof + header)  {} ms per round, {:.2} ms per record",
        proven.summary(2),
        per_record(&proven)
    );
    println!("first proven round, light client from genesis included: {:.1} ms", cold * 1_000.0);
    println!(
        "ratio proven/unverified (p50)   {:.2}  (the reads only; a signature also waits for its block)",
        proven.percentile(50) / json.percentile(50).max(f64::MIN_POSITIVE)
    );
    drop(network);
    Ok(())
}
