//! A node joining by state sync at a large state (issue 13): four validators on loopback start
//! from a genesis of 1,000,000 accounts and write snapshots; a fifth node joins by CometBFT's
//! state sync (light-client-verified snapshot height, chunks fetched from the validators and
//! checked, the tree rebuilt and its root compared with the verified app hash) and is timed from
//! its start until CometBFT reports it caught up with the validators (goal ≤ 60 s). The growth
//! benchmark's in-process snapshot and restore figures are the application's share of this.

use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_devnet::{Network, NetworkSpec, Tools, accounts};
use ferry_types::genesis::GenesisAccount;
use tendermint_rpc::Client;

/// Snapshot every this many blocks on the validators (a snapshot of a million accounts costs
/// each validator a few seconds of a core; more often would slow the network the node joins).
const SNAPSHOT_INTERVAL: u64 = 50;
/// How long the validators may take to load the large genesis and reach a snapshot height.
const START_WAIT: Duration = Duration::from_secs(900);
/// How long the joining node may take before the run is refused.
const JOIN_WAIT: Duration = Duration::from_secs(600);

/// Runs and prints the join benchmark with `extra_accounts` accounts beyond the devnet's.
///
/// # Errors
/// When the network does not start, or the node does not join in [`JOIN_WAIT`].
pub async fn run_and_print(extra_accounts: usize) -> anyhow::Result<()> {
    println!("\n== state sync: a 5th node joins 4 validators at {extra_accounts} accounts (loopback) ==");
    let mut genesis = accounts::genesis(4, accounts::FEDERATION_MEMBERS)?;
    genesis.accounts.extend((0..extra_accounts).map(|index| GenesisAccount { address: crate::growth::address(index) }));
    let mut spec = NetworkSpec::isolated("bench-join", 4, genesis)?;
    spec.snapshot_interval = SNAPSHOT_INTERVAL;
    let mut network = Network::create(spec, Tools::locate()?)?;
    let started = Instant::now();
    network.start_all()?;
    // Two snapshot heights passed, so the first snapshot is written and listed.
    network.wait_for_height(2 * SNAPSHOT_INTERVAL + 5, START_WAIT).await?;
    println!(
        "  validators started from genesis and reached height {} in {:.1} s",
        2 * SNAPSHOT_INTERVAL + 5,
        started.elapsed().as_secs_f64()
    );

    let joining = Instant::now();
    let joined = network.join_by_state_sync().await?;
    let node = network.client(joined)?;
    let validator = network.client(0)?;
    let app_log = network.validators().get(joined).context("joined node")?.home.join("app.log");
    // When the node's log first shows the restore starting and ending (to the poll's 200 ms).
    let (mut restoring, mut restored) = (None, None);
    let (height, took) = loop {
        let log = std::fs::read_to_string(&app_log).unwrap_or_default();
        if restoring.is_none() && log.contains("restoring snapshot") {
            restoring = Some(joining.elapsed());
        }
        if restored.is_none() && log.contains("snapshot restored") {
            restored = Some(joining.elapsed());
        }
        let tip = validator.latest_height().await?;
        if let Ok(status) = node.rpc().status().await {
            let sync = &status.sync_info;
            if !sync.catching_up && sync.latest_block_height.value() + 1 >= tip {
                break (sync.latest_block_height.value(), joining.elapsed());
            }
        }
        anyhow::ensure!(joining.elapsed() < JOIN_WAIT, "the node did not join in {JOIN_WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (Some(restoring), Some(restored)) = (restoring, restored) else {
        anyhow::bail!("the node caught up without restoring a snapshot (log: {})", app_log.display());
    };
    println!(
        "  joined by state sync and caught up at height {height} in {:.1} s (goal <= 60 s): snapshot discovered and offered after {:.1} s \
         (CometBFT's discovery time is 5 s), chunks fetched and restored by {:.1} s, blocks since the snapshot applied by {:.1} s",
        took.as_secs_f64(),
        restoring.as_secs_f64(),
        restored.as_secs_f64(),
        took.as_secs_f64()
    );
    crate::print_resident(
        &format!("the 4 validators and the joined node at {extra_accounts} accounts"),
        &network.pids(),
    );
    Ok(())
}
