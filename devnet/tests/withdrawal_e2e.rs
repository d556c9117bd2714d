//! Withdrawals end to end, on the whole system (`devnet::system`): PostgreSQL, btcd regtest,
//! anvil with the vault, 4 CometBFT validators running ferry-chain, and one `ferry-relayer` and
//! one `ferry-signer` process per federation member (threshold 3 of 4).
//!
//! A user burns wrapped BTC, ETH and an ERC-20 on the sidechain; the chain batches them, the
//! signers rebuild and sign, a relayer delivers the release to btcd / the vault, the relayers
//! attest its confirmation, and the chain settles. Then the parent chains and the chain's ledger
//! must agree to the unit.

mod common;

use std::time::Duration;

use bitcoin::{OutPoint, Txid};
use common::{TestResult, WAIT, balance, serial, wait_for_a_finished_round, wait_until};
use ferry_devnet::NetworkSpec;
use ferry_devnet::accounts::{FEDERATION_MEMBERS, user_key};
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::system::{ISOLATED_CONFIRMATIONS, System, SystemSpec};
use ferry_parent_chains::ethereum::U256;
use ferry_types::query::{WithdrawalStatus, WithdrawalView};
use ferry_types::release::eth::EthAddress;
use ferry_types::{Denom, GenesisState};

/// A parent-chain block is mined this often while a test waits.
const PARENT_BLOCK: Duration = Duration::from_millis(400);
/// How long one withdrawal may take from burn to settled release.
const RELEASE_WAIT: Duration = Duration::from_secs(120);

const BTC: u64 = 100_000_000;
const ETH: u128 = 1_000_000_000_000_000_000;

async fn released(system: &System, id: ferry_types::query::WithdrawalId) -> TestResult<WithdrawalView> {
    Ok(system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, RELEASE_WAIT).await?)
}

/// The Bitcoin output the release of `view` pays it (a batch of one: output 0).
async fn bitcoin_payment(system: &System, view: &WithdrawalView) -> TestResult<ferry_devnet::btcd::UnspentOutput> {
    let txid: Txid = view.release_tx.as_deref().ok_or("released without a release tx")?.parse()?;
    let output = system.parents.btcd.unspent_output(&OutPoint { txid, vout: 0 }).await?;
    Ok(output.ok_or("the release's output 0 is not in btcd's UTXO set")?)
}

/// Checks, per asset, that nothing is owed any more, that supply (with the fee pool) is
/// reserves exactly, and that the chain's reserves are exactly what the parent chains hold: the
/// vault's ETH and token balances, and the peg's UTXOs, each unspent on btcd.
async fn assert_reconciled(system: &System, token: EthAddress) -> TestResult {
    let client = system.client(0)?;
    let reserves: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    for (denom, ledger) in &reserves.assets {
        assert!(ledger.unreleased.is_zero(), "{denom}: {} still unreleased", ledger.unreleased);
        // Every wrapped unit, and every satoshi deposits prepaid for their spending, is backed one
        // for one: every user was opened by deposits.
        assert_eq!(
            ledger.supply.get() + ledger.fee_pool.get(),
            ledger.reserves.get(),
            "{denom}: supply {} + fee pool {} vs reserves {}",
            ledger.supply,
            ledger.fee_pool,
            ledger.reserves,
        );
    }
    let ledger = |denom: &Denom| reserves.assets.get(denom).map_or(0, |ledger| ledger.reserves.get());
    let wallet = system.parents.anvil.wallet();
    let vault = system.parents.anvil.vault();
    assert_eq!(U256::from(ledger(&Denom::wei())), wallet.balance(vault).await?, "vault ETH vs ledger");
    let token_address = system.parents.anvil.token();
    assert_eq!(
        U256::from(ledger(&Denom::erc20(&token))),
        wallet.token_balance(token_address, vault).await?,
        "vault token balance vs ledger"
    );
    let mut utxo_total = 0u128;
    for utxo in &reserves.bitcoin_utxos {
        assert_eq!(utxo.locked_by, None, "{}:{} still locked", utxo.txid, utxo.vout);
        let outpoint = OutPoint { txid: utxo.txid.parse()?, vout: utxo.vout };
        let output = system.parents.btcd.unspent_output(&outpoint).await?.ok_or("a reserve UTXO is spent on btcd")?;
        assert_eq!(u128::from(output.value.to_sat()), utxo.amount.get(), "{outpoint} value");
        utxo_total += utxo.amount.get();
    }
    assert_eq!(utxo_total, ledger(&Denom::sat()), "peg UTXOs vs ledger");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn btc_eth_and_erc20_withdrawals_arrive_and_supply_and_reserves_reconcile() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("withdraw", 4).await?;
    let user = user_key(0)?;
    let address = user.address();
    let token = EthAddress::from_bytes(system.parents.anvil.token().into_array());
    let token_denom = Denom::erc20(&token);

    // Reserves first: one deposit of each asset.
    let client = system.client(0)?;
    let opened: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let opened = |denom: &Denom| opened.assets.get(denom).map_or(0, |ledger| ledger.reserves.get());
    let sat_before = balance(&client, &address, &Denom::sat()).await?;
    let wei_before = balance(&client, &address, &Denom::wei()).await?;
    let btc_deposit = system.deposit_btc(&address, 2 * BTC).await?;
    system.parents.anvil.deposit_token(system.parents.anvil.token(), U256::from(100 * ETH), &address).await?;
    system.parents.anvil.deposit_eth(&address, U256::from(3 * ETH)).await?;
    let minted =
        system.wait_for_deposit(&btc_deposit, 0, PARENT_BLOCK, WAIT).await?.minted_amount.ok_or("not minted")?;
    system.wait_for_balance(&address, &Denom::sat(), sat_before + minted.get(), PARENT_BLOCK, WAIT).await?;
    system.wait_for_balance(&address, &Denom::wei(), wei_before + 3 * ETH, PARENT_BLOCK, WAIT).await?;
    system.wait_for_balance(&address, &token_denom, 100 * ETH, PARENT_BLOCK, WAIT).await?;

    // Withdraw some of each to fresh destinations.
    let btc_destination = RegtestWallet::from_seed([0xd1; 32])?.address().clone();
    let eth_destination = EthAddress::from_bytes([0xe7; 20]);
    let token_destination = EthAddress::from_bytes([0xe8; 20]);
    let (btc_id, _) = system.withdraw(&user, &Denom::sat(), u128::from(BTC / 2), &btc_destination.to_string()).await?;
    let (eth_id, _) = system.withdraw(&user, &Denom::wei(), 2 * ETH, &eth_destination.to_string()).await?;
    let (token_id, _) = system.withdraw(&user, &token_denom, 40 * ETH, &token_destination.to_string()).await?;

    let btc = released(&system, btc_id).await?;
    let eth = released(&system, eth_id).await?;
    let tokens = released(&system, token_id).await?;

    // Each destination received exactly what the chain says it paid.
    let fee = u128::from(BTC / 2) - btc.paid.ok_or("no paid amount")?.get();
    assert!(fee > 0, "a Bitcoin withdrawal pays its share of the miner fee");
    let payment = bitcoin_payment(&system, &btc).await?;
    assert_eq!(u128::from(payment.value.to_sat()), u128::from(BTC / 2) - fee);
    assert_eq!(payment.script_pubkey, btc_destination.script_pubkey());
    let wallet = system.parents.anvil.wallet();
    let alloy_address = |address: EthAddress| ferry_parent_chains::ethereum::EthAddress::from(*address.as_bytes());
    assert_eq!(wallet.balance(alloy_address(eth_destination)).await?, U256::from(2 * ETH));
    assert_eq!(
        wallet.token_balance(system.parents.anvil.token(), alloy_address(token_destination)).await?,
        U256::from(40 * ETH)
    );
    assert_eq!(eth.paid.map(|paid| paid.get()), Some(2 * ETH));
    assert_eq!(tokens.paid.map(|paid| paid.get()), Some(40 * ETH));

    // The chain's ledger and the parent chains agree to the unit.
    let reserves: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let reserve = |denom: &Denom| reserves.assets.get(denom).map_or(0, |ledger| ledger.reserves.get());
    let sat = opened(&Denom::sat()) + u128::from(2 * BTC - BTC / 2);
    assert_eq!(reserve(&Denom::sat()), sat, "BTC reserves fell by the burn");
    assert_eq!(reserve(&Denom::wei()), opened(&Denom::wei()) + ETH, "ETH reserves fell by the burn");
    assert_eq!(reserve(&token_denom), 60 * ETH, "token reserves fell by the burn");
    assert_reconciled(&system, token).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_signer_down_releases_two_down_hold_everything_and_the_queue_drains_when_they_return() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("withdraw-down", 4).await?;
    let user = user_key(1)?;
    let address = user.address();
    let client = system.client(0)?;
    let before = balance(&client, &address, &Denom::sat()).await?;
    let deposit = system.deposit_btc(&address, BTC).await?;
    let minted = system.wait_for_deposit(&deposit, 0, PARENT_BLOCK, WAIT).await?.minted_amount.ok_or("not minted")?;
    system.wait_for_balance(&address, &Denom::sat(), before + minted.get(), PARENT_BLOCK, WAIT).await?;

    // One signer down: 3 of 4 remain, the release completes.
    system.signers[3].kill();
    let first = RegtestWallet::from_seed([0xd2; 32])?.address().clone();
    let (id, _) = system.withdraw(&user, &Denom::sat(), u128::from(BTC / 10), &first.to_string()).await?;
    let view = released(&system, id).await?;
    assert_eq!(bitcoin_payment(&system, &view).await?.script_pubkey, first.script_pubkey());

    // Two down: the batch forms but cannot be signed; nothing is released and nothing is lost.
    system.signers[2].kill();
    let second = RegtestWallet::from_seed([0xd3; 32])?.address().clone();
    let balance_before = balance(&client, &address, &Denom::sat()).await?;
    let (held, _) = system.withdraw(&user, &Denom::sat(), u128::from(BTC / 5), &second.to_string()).await?;
    let batched = system.wait_for_withdrawal(held, WithdrawalStatus::Batched, PARENT_BLOCK, WAIT).await?;
    let batch_id = batched.withdrawal.batch.ok_or("batched without a batch")?;
    let batch_path = format!("/batch/{batch_id}");
    let (chain, path) = (&client, batch_path.as_str());
    // The two running signers sign, and then each goes through a whole round with nothing left to do.
    wait_until("the two running signers signed", WAIT, || async move {
        let batch: ferry_types::query::BatchView = chain.query(path, None).await?.ok_or("no batch")?;
        Ok((batch.signature_count >= 2).then_some(()))
    })
    .await?;
    for signer in &system.signers[..2] {
        wait_for_a_finished_round(&signer.metrics_url(), "ferry_signer_last_poll_timestamp_seconds").await?;
    }
    let waiting = system.withdrawal(held).await?;
    assert_eq!(waiting.status, WithdrawalStatus::Batched, "signed with two signers down: {waiting:?}");
    let batch: ferry_types::query::BatchView = client.query(&batch_path, None).await?.ok_or("no batch")?;
    assert_eq!(batch.signature_count, 2, "only the two running signers signed");
    assert_eq!(batch.batch.status, ferry_types::query::BatchStatus::Signing, "{batch:?}");
    let reserves: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let sat = reserves.assets.get(&Denom::sat()).ok_or("no sat ledger")?;
    assert_eq!(sat.unreleased.get(), u128::from(BTC / 5), "the burn is owed, not lost");
    let fee = client.params().await?.min_fee(&Denom::sat()).ok_or("no sat fee")?.get();
    assert_eq!(
        balance(&client, &address, &Denom::sat()).await?,
        balance_before - u128::from(BTC / 5) - fee,
        "burned exactly once"
    );

    // They come back: the queue drains.
    system.signers[2].restart()?;
    system.signers[3].restart()?;
    let view = released(&system, held).await?;
    assert_eq!(bitcoin_payment(&system, &view).await?.script_pubkey, second.script_pubkey());
    assert_reconciled(&system, EthAddress::from_bytes(system.parents.anvil.token().into_array())).await?;
    Ok(())
}

/// Issue 10, item 7: a system stopped with its parent chains saved (`make devnet-down`) and
/// started again on them (`make devnet`) resumes consistently: btcd — which deletes its regtest
/// chain at every start — gets the saved blocks back, anvil reloads its state, the sidechain,
/// relayers and signers resume from their homes and databases; the ledger still matches the
/// parent chains to the unit, and the user withdraws and deposits on both chains again.
#[tokio::test(flavor = "multi_thread")]
async fn a_system_stopped_with_its_parent_chains_saved_resumes_on_them_and_keeps_paying() -> TestResult {
    let _serial = serial().await;
    let dir = tempfile::Builder::new().prefix("ferry-resume-").tempdir()?;
    let mut network = NetworkSpec::isolated("resume", FEDERATION_MEMBERS, GenesisState::default())?;
    network.dir = dir.path().join("chain");
    network.remove_on_drop = false;
    let spec = SystemSpec {
        network,
        users: 1,
        bridge_dir: dir.path().join("bridge"),
        fresh: true,
        confirmations: ISOLATED_CONFIRMATIONS,
        poll_interval: "200ms".to_owned(),
        scratch_databases: false,
        persist_parents: true,
        vault_heartbeat_blocks: None,
        bitcoin_exit: None,
    };
    let user = user_key(0)?;
    let btc_destination = RegtestWallet::from_seed([0xd7; 32])?.address().to_string();
    let eth_destination = EthAddress::from_bytes([0xe9; 20]).to_string();

    // A first run: the user (opened by deposits) withdraws on both chains; then it stops, saved.
    let system = System::start(spec.clone()).await?;
    let token = EthAddress::from_bytes(system.parents.anvil.token().into_array());
    for (asset, amount, destination) in
        [(Denom::sat(), u128::from(BTC / 10), &btc_destination), (Denom::wei(), ETH, &eth_destination)]
    {
        let (id, _) = system.withdraw(&user, &asset, amount, destination).await?;
        released(&system, id).await?;
    }
    assert_reconciled(&system, token).await?;
    let client = system.client(0)?;
    let ledger: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let bitcoin_tip = system.parents.btcd.rpc().get_block_count().await?;
    let bitcoin_hash = system.parents.btcd.rpc().get_block_hash(bitcoin_tip).await?;
    let ethereum_tip = system.parents.anvil.block_number().await?;
    system.stop_and_save().await?;

    // Started again on the saved chains.
    let mut system = System::start(SystemSpec { fresh: false, ..spec }).await?;
    let rpc = system.parents.btcd.rpc();
    assert!(rpc.get_block_count().await? >= bitcoin_tip, "btcd lost blocks");
    assert_eq!(rpc.get_block_hash(bitcoin_tip).await?, bitcoin_hash, "btcd holds another chain");
    assert!(system.parents.anvil.block_number().await? >= ethereum_tip, "anvil lost blocks");
    let client = system.client(0)?;
    let resumed: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    assert_eq!(resumed, ledger, "the sidechain resumed its ledger");
    assert_reconciled(&system, token).await?;

    // The user withdraws and deposits on both chains again.
    for (asset, amount, destination) in
        [(Denom::sat(), u128::from(BTC / 10), &btc_destination), (Denom::wei(), ETH, &eth_destination)]
    {
        let (id, _) = system.withdraw(&user, &asset, amount, destination).await?;
        released(&system, id).await?;
    }
    let address = user.address();
    let wei_before = balance(&client, &address, &Denom::wei()).await?;
    let deposit = system.deposit_btc(&address, BTC).await?;
    system.parents.anvil.deposit_eth(&address, U256::from(ETH)).await?;
    let record = system.wait_for_deposit(&deposit, 0, PARENT_BLOCK, WAIT).await?;
    assert!(record.minted_amount.is_some(), "{record:?}");
    system.wait_for_balance(&address, &Denom::wei(), wei_before + ETH, PARENT_BLOCK, WAIT).await?;
    assert_reconciled(&system, token).await?;
    Ok(())
}
