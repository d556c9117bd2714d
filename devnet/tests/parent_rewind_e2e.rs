//! A parent chain that loses blocks under a running system (4 validators, relayer and signer
//! processes, btcd with `--rejectnonstd`, anvil, PostgreSQL, Prometheus).
//!
//! btcd is restarted on the same addresses; in regtest it deletes its database at every start,
//! so it comes back with nothing but the genesis block: every block the relayers scanned, and the
//! peg outputs of the deposits the chain minted, are gone. The relayers see a chain shorter than
//! their cursors that does not hold their blocks, rescan it from the start (their own peg
//! indexes emptied), and answer the next reserves round with what the node holds now: a quorum
//! of them shows the peg empty, the bridge pauses naming the shortfall and the reserve outputs
//! gone (the minted deposits' ids) within a few blocks, and `FerryReservesShort` fires. When the new chain grows past the old heights nothing is minted
//! again. Then anvil is rolled back (`evm_revert`) to before an ether deposit the chain minted:
//! the relayers see their Ethereum node lose the blocks too, and the next Ethereum round is short
//! and names that deposit gone.

mod common;

use std::time::{Duration, Instant};

use common::{TestResult, WAIT, serial};
use ferry_devnet::accounts::user_key;
use ferry_devnet::system::System;
use ferry_parent_chains::ethereum::U256;
use ferry_types::query::{RESERVES_CHECK_PATH, ReservesCheckView};
use ferry_types::{Denom, ParentChain};

const PARENT_BLOCK: Duration = Duration::from_millis(300);
const ONE_ETH: u128 = 1_000_000_000_000_000_000;

/// The wrapped BTC in existence, by the chain's ledger.
async fn sat_supply(client: &ferry_client::FerryClient) -> TestResult<u128> {
    let view: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    Ok(view.assets.get(&Denom::sat()).map(|ledger| ledger.supply.get()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn parent_nodes_that_lose_their_chains_pause_the_bridge_and_nothing_is_minted_again() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("parent-rewind", 1).await?;
    let client = system.client(0)?;
    let user = user_key(0)?.address();

    // Anvil as it was before any deposit, to roll back to at the end.
    let anvil = &system.parents.anvil;
    let empty_vault = anvil.snapshot().await?;
    let ether = 2 * ONE_ETH;
    let wei_before = common::balance(&client, &user, &Denom::wei()).await?;
    let ether_deposit = anvil.deposit_eth(&user, U256::from(ether)).await?;
    system.wait_for_balance(&user, &Denom::wei(), wei_before + ether, PARENT_BLOCK, WAIT).await?;

    // A minted deposit, and a reserves round that found the peg holding it.
    let before = common::balance(&client, &user, &Denom::sat()).await?;
    let txid = system.deposit_btc(&user, 2_000_000).await?;
    system.wait_for_deposit(&txid, 0, PARENT_BLOCK, WAIT).await?;
    let minted = common::balance(&client, &user, &Denom::sat()).await? - before;
    let started = Instant::now();
    loop {
        let view: ReservesCheckView = client.query(RESERVES_CHECK_PATH, None).await?.ok_or("no check")?;
        let held = view
            .last
            .get(&ParentChain::Bitcoin)
            .and_then(|check| check.assets.get(&Denom::sat()))
            .map(|asset| (asset.holdings.get(), asset.shortfall.is_zero()));
        let eth_fine = view
            .last
            .get(&ParentChain::Ethereum)
            .and_then(|check| check.assets.get(&Denom::wei()))
            .is_some_and(|asset| asset.holdings.get() >= ether && asset.shortfall.is_zero());
        if held.is_some_and(|(holdings, fine)| holdings >= 2_000_000 && fine) && eth_fine {
            break;
        }
        if started.elapsed() > WAIT {
            return Err(format!("no reserves check found the deposit: {view:?}").into());
        }
        system.mine_parents(1).await?;
        tokio::time::sleep(PARENT_BLOCK).await;
    }
    let old_height = system.parents.btcd.rpc().get_block_count().await?;
    let supply_before = sat_supply(&client).await?;

    // The node loses its chain; a few blocks come on the new one.
    system.parents.btcd.restart_wiped().await?;
    assert!(system.parents.btcd.rpc().get_block_count().await? < 5, "btcd kept its regtest chain");
    system.parents.btcd.mine(3).await?;
    let lost_at = client.latest_height().await?;
    let interval = client.params().await?.reserves_interval;
    let status = common::wait_for_pause(&client, "btcd lost its chain").await?;
    assert!(status.reason.starts_with("reserves shortfall on btc: sat: 0 held"), "{status:?}");
    // The quorum also named what is gone: every reserve output the chain counts, the minted
    // deposits among them (the user's opening and the one above), each by its id.
    let view: ReservesCheckView = client.query(RESERVES_CHECK_PATH, None).await?.ok_or("no check")?;
    let gone: Vec<String> = view
        .last
        .get(&ParentChain::Bitcoin)
        .map(|check| check.gone.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let reserves: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let counted: Vec<String> =
        reserves.bitcoin_utxos.iter().map(|utxo| format!("btc:{}:{}", utxo.txid, utxo.vout)).collect();
    assert_eq!(gone, counted, "the outputs named gone");
    assert!(gone.contains(&format!("btc:{txid}:0")), "{gone:?}");
    assert!(status.reason.contains("reserve outputs gone from the parent chain: btc:"), "{status:?}");
    let took = status.since_height.saturating_sub(lost_at);
    eprintln!("rewind: paused {took} sidechain blocks after btcd lost its chain (reserves_interval {interval})");
    assert!(took <= 2 * interval, "paused {took} blocks after the loss");
    system.prometheus.wait_for_alerts(WAIT, |alerts| common::reserves_short_fires(alerts, "sat")).await?;

    // The new chain grows past the old heights: nothing is minted again.
    let new_height = system.parents.btcd.rpc().get_block_count().await?;
    system.parents.btcd.mine(u32::try_from(old_height.saturating_sub(new_height) + 5)?).await?;
    let passed = client.latest_height().await?;
    client.wait_for_height(passed + 10, WAIT).await?;
    assert_eq!(sat_supply(&client).await?, supply_before, "nothing minted again");
    assert_eq!(common::balance(&client, &user, &Denom::sat()).await? - before, minted);

    // Anvil rolled back to before the ether deposit: the vault's ether is gone with the blocks.
    let anvil = &system.parents.anvil;
    anvil.revert(empty_vault).await?;
    anvil.mine(1).await?;
    let check = common::wait_until("the lost ether found short", WAIT, || async {
        let view: ReservesCheckView = client.query(RESERVES_CHECK_PATH, None).await?.ok_or("no check")?;
        let check = view.last.get(&ParentChain::Ethereum).cloned();
        let short = check
            .as_ref()
            .and_then(|check| check.assets.get(&Denom::wei()))
            .is_some_and(|wei| wei.shortfall.get() >= ether);
        Ok(check.filter(|_| short))
    })
    .await?;
    // The quorum names the deposit whose transaction the node no longer holds.
    let gone: Vec<String> = check.gone.iter().map(ToString::to_string).collect();
    assert_eq!(gone, [format!("eth:{}:0", ether_deposit.tx_hash)], "the Ethereum deposit named gone");
    system.prometheus.wait_for_alerts(WAIT, |alerts| common::reserves_short_fires(alerts, "wei")).await?;
    Ok(())
}
