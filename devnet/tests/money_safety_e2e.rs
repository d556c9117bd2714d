//! Money that cannot be minted early or twice, or paid out of coins the chain has not minted
//! for, on one whole system (4 validators, relayer and signer processes, btcd with
//! `--rejectnonstd`, anvil, PostgreSQL):
//!
//! 1. Confirmations by value: 10.01 BTC paid to the peg as eleven 0.91 BTC outputs of one
//!    transaction waits for the 10 BTC tier's confirmations (each output alone would need only
//!    the default): nothing is attested below it, all eleven are minted at it.
//! 2. Ids that survive reorgs: an Ethereum deposit that a reorganisation deeper than the
//!    relayers' confirmations re-includes at another block-wide log position keeps its id, so it
//!    is minted once. A token deposit (`depositToken`: the token's `Transfer` log, then the
//!    vault's `Deposited`) is minted; then the blocks from its approval up are replaced by one
//!    block holding the approval and the deposit, so the `Deposited` log moves from block-wide
//!    index 1 to 2. Deposit ids name the transaction and the log's place among its transaction's
//!    vault deposits (0), not the block-wide index, so the relayers see the same deposit again —
//!    already attested — and the chain mints nothing more; a later deposit is minted as usual
//!    (the watchers went on).
//! 3. Finality: with `finality = "finalized"` an Ethereum deposit is attested only once the
//!    node's finalized block passes it, however many confirmations it has.
//! 4. (Run first, while the peg holds only the user's opening deposit.) A release never exceeds
//!    the reserves the chain may spend: every coin is backed (users are opened by deposits), so a
//!    withdrawal outruns only reserves locked by an unconfirmed release; it waits, saying why — a deposit still unconfirmed does not cover it — and is paid
//!    once the parent chain confirms what does; the peg then holds exactly what the ledger says.
//! 5. The token allowlist is enforced where the money enters: the vault refuses a freshly
//!    deployed token (`TokenNotListed`); two members' proposals (`ferry-signer listing propose`)
//!    are below the quorum and change nothing; the third forms a listing batch that the signers
//!    sign, a relayer delivers to the vault (`setListing`) and a quorum attests — then the vault
//!    and the chain list it, and a deposit of it is minted.
//! 6. Duties that cannot be abused: a member flooding fee-free duties meets its per-block limit
//!    (`duty_limit`) while the other members' attestations mint a deposit and a user's transfer
//!    commits.
//! 7. A reserves check that can fail (last: it pauses the bridge): a reserve UTXO spent outside
//!    Ferry by a quorum of member keys shows in the relayers' own peg index at the next reserves
//!    round, the bridge pauses naming the figures and `FerryReservesShort` fires in Prometheus;
//!    then ether taken out of the vault (`anvil_setBalance`) is found short by the next round on
//!    Ethereum as well.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestResult, WAIT, serial};
use ferry_app::query::ReservesView;
use ferry_client::Wallet;
use ferry_devnet::accounts;
use ferry_devnet::accounts::user_key;
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::system::System;
use ferry_parent_chains::ethereum::vault::{VaultError, vault_error};
use ferry_parent_chains::ethereum::{DEPOSITED_TOPIC, EthereumError, U256};
use ferry_relayer::config::Finality;
use ferry_relayer::confirmations::Tier;
use ferry_types::msg::{Msg, MsgAttestParentHeight};
use ferry_types::peg::{BitcoinNetwork, Peg};
use ferry_types::query::{
    BATCH_PATH, BatchStatus, BatchView, LISTING_PATH, RESERVES_CHECK_PATH, ReservesCheckView, TokenProposals,
    WithdrawalId, WithdrawalStatus, WithdrawalView,
};
use ferry_types::release::bitcoin::{
    ReleaseOutput, assemble_witness, plan_release, sighashes, sign_input, unsigned_transaction,
};
use ferry_types::release::eth::EthAddress;
use ferry_types::{Amount, Coin, Denom, ParentChain, TxCode};
use serde_json::{Value, json};

const PARENT_BLOCK: Duration = Duration::from_millis(300);
const ONE_TOKEN: u128 = 1_000_000_000_000_000_000;
const BTC: u128 = 100_000_000;

/// The block-wide index of the vault's `Deposited` log in transaction `tx_hash`, read from the
/// node's receipt (not through the code under test).
async fn deposited_log_index(rpc_url: &str, vault: &str, tx_hash: &str) -> TestResult<u64> {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [tx_hash]});
    let answer: Value = reqwest::Client::new().post(rpc_url).json(&request).send().await?.json().await?;
    let topic = format!("{DEPOSITED_TOPIC:#x}");
    let logs = answer.pointer("/result/logs").and_then(Value::as_array).ok_or("no receipt logs")?;
    let log = logs
        .iter()
        .find(|log| {
            log["address"].as_str().is_some_and(|address| address.eq_ignore_ascii_case(vault))
                && log.pointer("/topics/0").and_then(Value::as_str) == Some(topic.as_str())
        })
        .ok_or("no Deposited log")?;
    let index = log["logIndex"].as_str().ok_or("no logIndex")?;
    Ok(u64::from_str_radix(index.trim_start_matches("0x"), 16)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn money_is_minted_once_at_the_right_depth_and_paid_only_from_reserves() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("money-safety", 1).await?;
    // First, while the peg holds only the user's opening deposit.
    a_withdrawal_beyond_the_free_reserves_waits_until_deposits_cover_it(&mut system).await?;
    a_split_bitcoin_deposit_waits_for_the_tier_of_its_total(&mut system).await?;
    a_deposit_reincluded_at_another_log_position_by_a_deep_reorg_is_minted_once(&system).await?;
    an_ethereum_deposit_waits_for_its_block_to_be_finalized(&mut system).await?;
    a_token_enters_only_once_a_quorum_listed_it_in_the_vault(&system).await?;
    a_member_flooding_duties_hits_its_limit_while_the_others_keep_committing(&mut system).await?;
    value_taken_behind_the_chains_back_pauses_the_bridge_and_fires_the_alert(&system).await
}

/// Spends one free reserve UTXO of the peg to the miner with members 0..3's Bitcoin keys, outside
/// any batch; returns its id (`btc:<txid>:<vout>`) and value.
async fn steal_a_reserve_utxo(system: &System) -> TestResult<(String, u128)> {
    let client = system.client(0)?;
    let view: ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let stolen = view.bitcoin_utxos.iter().find(|utxo| utxo.locked_by.is_none()).ok_or("no free reserve UTXO")?;
    let peg = Peg::new(&accounts::federation_ceremony()?.manifest.bitcoin)?;
    let fee = 5_000;
    let thief = system.parents.miner.address().to_string();
    let output = ReleaseOutput::new(&thief, BitcoinNetwork::Regtest, Amount::new(stolen.amount.get() - fee))?;
    let plan = plan_release(&[stolen.utxo()], &[output], Amount::new(fee), Amount::new(546))?;
    let tx = unsigned_transaction(&plan, &peg);
    let hashes = sighashes(&tx, &plan, &peg)?;
    let mut signatures = Vec::new();
    for hash in &hashes {
        let mut by_member = BTreeMap::new();
        for member in 0..3 {
            by_member.insert(member, sign_input(&accounts::member_bitcoin_secret(member)?, hash));
        }
        signatures.push(by_member);
    }
    let signed = assemble_witness(&tx, &plan, &peg, &hashes, &signatures)?;
    system.parents.btcd.rpc().send_raw_transaction(&signed).await?;
    system.parents.btcd.mine(1).await?;
    Ok((format!("btc:{}:{}", stolen.txid, stolen.vout), stolen.amount.get()))
}

async fn value_taken_behind_the_chains_back_pauses_the_bridge_and_fires_the_alert(system: &System) -> TestResult {
    let client = system.client(0)?;
    let interval = client.params().await?.reserves_interval;
    let (stolen_id, stolen) = steal_a_reserve_utxo(system).await?;
    let mined_at = client.latest_height().await?;
    let status = common::wait_for_pause(&client, &format!("{stolen} sat left the peg")).await?;
    assert!(status.reason.starts_with("reserves shortfall on btc: sat: "), "{status:?}");
    let took = status.since_height.saturating_sub(mined_at);
    eprintln!("reserves: paused {took} sidechain blocks after the theft was mined (reserves_interval {interval})");
    // The next round whose parent height covers the theft: at most an interval away, plus the
    // parent clock's report spacing and the members' answers.
    assert!(took <= 2 * interval, "paused {took} blocks after the theft (interval {interval})");
    let check: ReservesCheckView = client.query(RESERVES_CHECK_PATH, None).await?.ok_or("no check")?;
    let sat = check.last.get(&ParentChain::Bitcoin).and_then(|check| check.assets.get(&Denom::sat()).cloned());
    let sat = sat.ok_or("no Bitcoin check")?;
    assert_eq!(sat.shortfall.get(), stolen.min(sat.least.get()), "{sat:?}");
    let gone: Vec<String> = check
        .last
        .get(&ParentChain::Bitcoin)
        .map(|check| check.gone.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    assert_eq!(gone, [stolen_id], "the quorum names the stolen output");
    system.prometheus.wait_for_alerts(WAIT, |alerts| common::reserves_short_fires(alerts, "sat")).await?;

    // Ether out of the vault: Ethereum's next check is short too (the bridge stays paused).
    let anvil = &system.parents.anvil;
    let vault = anvil.vault();
    let held = anvil.wallet().balance(vault).await?;
    anvil.set_balance(vault, held - U256::from(ONE_TOKEN)).await?;
    anvil.mine(1).await?;
    let started = std::time::Instant::now();
    loop {
        let check: ReservesCheckView = client.query(RESERVES_CHECK_PATH, None).await?.ok_or("no check")?;
        let wei = check.last.get(&ParentChain::Ethereum).and_then(|check| check.assets.get(&Denom::wei()).cloned());
        if let Some(wei) = wei.filter(|wei| !wei.shortfall.is_zero()) {
            assert_eq!(wei.shortfall.get(), ONE_TOKEN.min(wei.least.get()), "{wei:?}");
            break;
        }
        if started.elapsed() > WAIT {
            return Err(format!("the vault's missing ether was not found short: {check:?}").into());
        }
        tokio::time::sleep(PARENT_BLOCK).await;
    }
    system.prometheus.wait_for_alerts(WAIT, |alerts| common::reserves_short_fires(alerts, "wei")).await?;
    Ok(())
}

async fn an_ethereum_deposit_waits_for_its_block_to_be_finalized(system: &mut System) -> TestResult {
    for relayer in &mut system.relayers {
        relayer.reconfigure(|setup| setup.ethereum_finality = Finality::Finalized)?;
    }
    let user = user_key(0)?;
    let client = system.client(0)?;
    let before = common::balance(&client, &user.address(), &Denom::wei()).await?;
    let anvil = &system.parents.anvil;
    let deposit = anvil.deposit_eth(&user.address(), U256::from(ONE_TOKEN)).await?;
    let id = format!("eth:{}:0", deposit.tx_hash);
    // Forty blocks deep, far past the two confirmations, but anvil's finalized block trails its
    // tip by 64: no relayer attests.
    anvil.mine(40).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let record: Option<ferry_types::deposit_record::DepositRecord> =
        client.query(&format!("/deposit/{id}"), None).await?;
    assert!(record.is_none(), "attested before its block was final: {record:?}");
    // Once the finalized block passes it, it is minted.
    anvil.mine(30).await?;
    system.wait_for_balance(&user.address(), &Denom::wei(), before + ONE_TOKEN, PARENT_BLOCK, WAIT).await?;
    for relayer in &mut system.relayers {
        relayer.reconfigure(|setup| setup.ethereum_finality = Finality::Depth)?;
    }
    Ok(())
}

/// Polls (without mining) until withdrawal `id` is at least `status`.
async fn withdrawal_reaches(system: &System, id: WithdrawalId, status: WithdrawalStatus) -> TestResult<WithdrawalView> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = system.withdrawal(id).await?;
        if view.status >= status {
            return Ok(view);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{id} is not {status:?}: {view:?}").into());
        }
        tokio::time::sleep(PARENT_BLOCK).await;
    }
}

/// Every user coin is backed, so a withdrawal can outrun only the reserves the chain may spend
/// now: a first withdrawal locks the peg's only reserve UTXO (the user's opening deposit) in its
/// unconfirmed release; a second one then waits, saying why — also while a new deposit is still unconfirmed
/// (the peg never pays out of coins the chain has not minted) — and is paid once the parent chain
/// confirms what covers it.
async fn a_withdrawal_beyond_the_free_reserves_waits_until_deposits_cover_it(system: &mut System) -> TestResult {
    let client = system.client(0)?;
    let user = user_key(0)?;
    let params = client.params().await?;
    let batch_interval = params.withdrawals.batch_interval;
    let destination = RegtestWallet::from_seed([0x4f; 32])?.address().clone();
    let (first_amount, second_amount) = (5 * BTC, BTC);
    let (first, _) = system.withdraw(&user, &Denom::sat(), first_amount, &destination.to_string()).await?;
    withdrawal_reaches(system, first, WithdrawalStatus::Batched).await?;
    let view: ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let free: u128 =
        view.bitcoin_utxos.iter().filter(|utxo| utxo.locked_by.is_none()).map(|utxo| utxo.amount.get()).sum();
    assert!(free < second_amount, "precondition: the first release leaves {free} sat of reserve UTXOs free");

    let (second, _) = system.withdraw(&user, &Denom::sat(), second_amount, &destination.to_string()).await?;
    let waits = |view: &WithdrawalView| view.status == WithdrawalStatus::Queued && view.withdrawal.waiting.is_some();
    // The second also waits the large-withdrawal delay: it takes what the user withdrew of BTC
    // this window past `delay_above`. Past that, it waits for reserves.
    let eligible = system.withdrawal(second).await?.withdrawal.eligible_height;
    let height = client.latest_height().await?.max(eligible);
    client.wait_for_height(height + batch_interval + 1, WAIT).await?;
    let waiting = system.withdrawal(second).await?;
    assert!(waits(&waiting), "{waiting:?}");
    eprintln!("reserves: the second withdrawal waits: {}", waiting.withdrawal.waiting.clone().unwrap_or_default());
    // A deposit on its way (in btcd's mempool, not minted) does not cover it.
    let deposit = system.deposit_btc(&user.address(), 150_000_000).await?;
    let height = client.latest_height().await?;
    client.wait_for_height(height + batch_interval + 1, WAIT).await?;
    let still = system.withdrawal(second).await?;
    assert!(waits(&still), "batched before its reserves were confirmed: {still:?}");
    // Confirmed and minted (the first release confirms with it, its change returning to the
    // peg): paid, from whichever confirmed reserve the chain learned of first.
    let paid =
        system.wait_for_withdrawal(second, WithdrawalStatus::Released, PARENT_BLOCK, Duration::from_secs(120)).await?;
    let deposit = system.wait_for_deposit(&deposit, 0, PARENT_BLOCK, WAIT).await?;
    let minted_at = deposit.minted_height.ok_or("the covering deposit was not minted")?;
    let first = system.wait_for_withdrawal(first, WithdrawalStatus::Released, PARENT_BLOCK, WAIT).await?;
    let change_at = first.released_height.ok_or("the first release settled at no height")?;
    // A block's end (where batches form) comes after its transactions (where deposits mint and
    // releases settle), so a batch formed at that very height was formed after it.
    let covered_at = minted_at.min(change_at);
    assert!(
        paid.batched_height.is_some_and(|batched| batched >= covered_at),
        "batched before a confirmed reserve covered it (deposit minted at {minted_at}, the first release's change \
         confirmed at {change_at}): {paid:?} / {deposit:?}"
    );
    common::assert_bitcoin_reconciled(system).await?;
    Ok(())
}

/// Member `member`'s proposal to list `token`, with the operator command (`ferry-signer listing
/// propose`) and its signer's own configuration and key.
fn propose_listing(system: &System, member: usize, token: &EthAddress) -> TestResult {
    let signer = &system.signers[member];
    let output = std::process::Command::new(ferry_devnet::signer::binary()?)
        .args(["--json", "--config"])
        .arg(signer.config_path())
        .env("FERRY_SIGNER_DATABASE_URL", &signer.spec().database_url)
        .args(["listing", "propose", "--token", &token.to_string()])
        .args(["--window-cap", &(1_000 * ONE_TOKEN).to_string(), "--delay-above", &(100 * ONE_TOKEN).to_string()])
        .output()?;
    if !output.status.success() {
        return Err(format!("member {member}'s proposal: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(())
}

/// The token's listing proposals at `path` once `done` holds (within [`WAIT`]).
async fn proposals_when(
    client: &ferry_client::FerryClient,
    path: &str,
    done: impl Fn(&TokenProposals) -> bool,
) -> TestResult<TokenProposals> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state: TokenProposals = client.query(path, None).await?.unwrap_or_default();
        if done(&state) {
            return Ok(state);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{path}: {state:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_token_enters_only_once_a_quorum_listed_it_in_the_vault(system: &System) -> TestResult {
    let anvil = &system.parents.anvil;
    let client = system.client(0)?;
    let user = user_key(0)?;
    let deployed = anvil.wallet().deploy_test_token("Listed later", "LTR", 18).await?;
    let token = deployed.contract_address.ok_or("no token contract")?;
    let ferry_token = EthAddress::from_bytes(token.into_array());
    let denom = Denom::erc20(&ferry_token);

    // The vault refuses a token nobody listed, with its named error.
    let refused = anvil.deposit_token(token, U256::from(ONE_TOKEN), &user.address()).await;
    let error = refused.err().ok_or("the vault accepted an unlisted token")?;
    let decoded = error.downcast_ref::<EthereumError>().and_then(vault_error);
    assert!(matches!(decoded, Some(VaultError::TokenNotListed(_))), "{error:#}");

    // Two proposals are below the quorum: recorded, nothing signed or delivered.
    for member in [0, 1] {
        propose_listing(system, member, &ferry_token)?;
    }
    let path = format!("{LISTING_PATH}{ferry_token}");
    // Each proposal was included through its member's own node; node 0 may be a block behind.
    let proposals = proposals_when(&client, &path, |state| state.proposals.len() >= 2).await?;
    assert_eq!((proposals.proposals.len(), proposals.in_flight), (2, None));
    system.mine_parents(3).await?;
    assert!(!anvil.wallet().listed(anvil.vault(), token).await?, "listed below the quorum");

    // The third makes the quorum: the federation signs, a relayer delivers `setListing`, a
    // quorum attests it, and only then does the chain list the token.
    propose_listing(system, 2, &ferry_token)?;
    let proposals = proposals_when(&client, &path, |state| state.in_flight.is_some()).await?;
    let batch = proposals.in_flight.ok_or("no listing batch formed at the quorum")?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view: BatchView = client.query(&format!("{BATCH_PATH}{batch}"), None).await?.ok_or("no batch")?;
        if view.batch.status == BatchStatus::Released {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let logs: Vec<String> = system
                .signers
                .iter()
                .map(|signer| std::fs::read_to_string(signer.log_path()).unwrap_or_default())
                .map(|log| log.lines().filter(|line| line.contains(&format!("batch_id={batch}"))).take(5).collect())
                .collect();
            return Err(
                format!("listing batch {batch} not settled: {view:?}\nsigner logs:\n{}", logs.join("\n")).into()
            );
        }
        system.mine_parents(1).await?;
        tokio::time::sleep(PARENT_BLOCK).await;
    }
    assert!(anvil.wallet().listed(anvil.vault(), token).await?, "the vault lists the token");
    assert!(client.params().await?.lists(&denom), "the chain lists the token");

    // Now it deposits and mints.
    anvil.deposit_token(token, U256::from(ONE_TOKEN), &user.address()).await?;
    system.wait_for_balance(&user.address(), &denom, ONE_TOKEN, PARENT_BLOCK, WAIT).await?;
    Ok(())
}

async fn a_member_flooding_duties_hits_its_limit_while_the_others_keep_committing(system: &mut System) -> TestResult {
    // Member 3's own services stop (they would race the flood for its account's sequence).
    system.relayers[3].kill();
    system.signers[3].kill();
    let client = system.client(0)?;
    let flooder = accounts::member_key(3)?;
    let mut wallet = Wallet::load(&client, flooder.clone()).await?;
    let per_tx = client.params().await?.max_msgs_per_tx;
    // 30 transactions of parent-clock reports, sent at once: 1,920 duty messages, far more than
    // a member may have executed in a block (512).
    let mut checked = Vec::new();
    for n in 0..30u64 {
        let msgs: Vec<Msg> = (0..u64::from(per_tx))
            .map(|i| {
                let report = MsgAttestParentHeight {
                    attester: flooder.address(),
                    chain: ParentChain::Bitcoin,
                    height: 1_000_000 + n * 100 + i,
                };
                Msg::AttestParentHeight(report)
            })
            .collect();
        checked.push(client.broadcast_sync(wallet.sign_fee_exempt(&msgs)?).await?);
    }
    // While it floods, the other members' attestations and a user's transfer commit.
    let user = user_key(0)?;
    let before = common::balance(&client, &user.address(), &Denom::sat()).await?;
    let txid = system.deposit_btc(&user.address(), 5_000_000).await?;
    let record = system.wait_for_deposit(&txid, 0, PARENT_BLOCK, WAIT).await?;
    assert!(record.minted_height.is_some(), "{record:?}");
    let mut user_wallet = Wallet::load(&client, user.clone()).await?;
    let transfer = user_wallet.sign_transfer(
        accounts::member_key(0)?.address(),
        vec![Coin::new(1, Denom::sat())],
        &Coin::new(100, Denom::sat()),
    )?;
    let included = client.broadcast_and_wait(transfer, WAIT).await?;
    assert_eq!(included.code, 0, "{}", included.log);
    assert!(common::balance(&client, &user.address(), &Denom::sat()).await? > before);

    // The flood met its limit, by name: refused at CheckTx, or executed as nothing in its block.
    // (By now every admitted transaction is in a block, or was evicted on recheck.)
    let mut codes = Vec::new();
    for outcome in &checked {
        if outcome.code != 0 {
            codes.push(outcome.code);
        } else if let Ok(included) = client.wait_for_tx(outcome.hash, Duration::from_secs(1)).await {
            codes.push(included.code);
        }
    }
    let limited = codes.iter().filter(|code| **code == TxCode::DutyLimit.value()).count();
    assert!(limited >= 1, "no duty_limit among the flood's answers: {codes:?}");
    eprintln!("flood: {} answers, {limited} duty_limit", codes.len());

    system.relayers[3].restart()?;
    system.signers[3].restart()?;
    Ok(())
}

async fn a_split_bitcoin_deposit_waits_for_the_tier_of_its_total(system: &mut System) -> TestResult {
    const TIER: u32 = 5;
    let tier = Tier { min_amount: Amount::new(10 * BTC), confirmations: TIER };
    for relayer in &mut system.relayers {
        relayer.reconfigure(|setup| setup.bitcoin_tiers = vec![tier.clone()])?;
    }
    let user = user_key(0)?;
    let outputs = [91_000_000; 11];
    let txid = system.deposit_btc_outputs(&user.address(), &outputs).await?;
    let client = system.client(0)?;
    for confirmations in 1..TIER {
        system.parents.btcd.mine(1).await?;
        // Some fifteen relayer polls at this depth: no relayer may attest any of the outputs.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for vout in 0..outputs.len() {
            let record: Option<ferry_types::deposit_record::DepositRecord> =
                client.query(&format!("/deposit/btc:{txid}:{vout}"), None).await?;
            assert!(record.is_none(), "output {vout} attested at {confirmations} confirmations: {record:?}");
        }
    }
    // At the tier's depth all eleven are minted.
    system.parents.btcd.mine(1).await?;
    for vout in 0..outputs.len() {
        let record = system.wait_for_deposit(&txid, u32::try_from(vout)?, PARENT_BLOCK, WAIT).await?;
        assert!(record.minted_height.is_some(), "output {vout}: {record:?}");
    }
    Ok(())
}

async fn a_deposit_reincluded_at_another_log_position_by_a_deep_reorg_is_minted_once(system: &System) -> TestResult {
    let user = user_key(0)?;
    let address = user.address();
    let client = system.client(0)?;
    let anvil = &system.parents.anvil;
    let (wallet, vault, token) = (anvil.wallet(), anvil.vault(), anvil.token());
    let denom = Denom::erc20(&EthAddress::from_bytes(token.into_array()));
    let vault_text = format!("{vault:#x}");

    let amount = U256::from(3 * ONE_TOKEN);
    wallet.mint_test_token(token, wallet.address(), amount).await?;
    let approval = wallet.approve(token, vault, amount).await?;
    let deposit = wallet.deposit_token(vault, token, amount, &address).await?;
    let before = deposited_log_index(anvil.rpc_url(), &vault_text, &deposit.tx_hash).await?;
    let id = format!("eth:{}:0", deposit.tx_hash);
    system.wait_for_balance(&address, &denom, 3 * ONE_TOKEN, PARENT_BLOCK, WAIT).await?;
    let record: ferry_types::deposit_record::DepositRecord =
        client.query(&format!("/deposit/{id}"), None).await?.ok_or("no record")?;
    assert!(record.minted_height.is_some(), "{record:?}");

    // Deeper than the confirmations: every block from the approval's up is replaced; the new
    // first block holds the approval and then the deposit.
    let tip = anvil.block_number().await?;
    let depth = tip - approval.block_number + 1;
    anvil.reorg(depth, &[(approval.tx_hash.as_str(), 0), (deposit.tx_hash.as_str(), 0)]).await?;
    let after = deposited_log_index(anvil.rpc_url(), &vault_text, &deposit.tx_hash).await?;
    assert_ne!(before, after, "the re-included deposit's log must sit elsewhere in its block");
    eprintln!("Deposited log moved from block-wide index {before} to {after}");

    // A later deposit is minted: the relayers have scanned past the re-included one by then.
    let wei_before = common::balance(&client, &address, &Denom::wei()).await?;
    anvil.deposit_eth(&address, U256::from(ONE_TOKEN)).await?;
    system.wait_for_balance(&address, &Denom::wei(), wei_before + ONE_TOKEN, PARENT_BLOCK, WAIT).await?;

    // Minted once: the balance and the supply are the one deposit; no id names the new position.
    assert_eq!(common::balance(&client, &address, &denom).await?, 3 * ONE_TOKEN);
    let reserves: ferry_app::query::ReservesView = client.query("/reserves", None).await?.ok_or("no reserves")?;
    let ledger = reserves.assets.get(&denom).ok_or("no ledger")?;
    assert_eq!((ledger.supply.get(), ledger.reserves.get()), (3 * ONE_TOKEN, 3 * ONE_TOKEN));
    for position in [before, after] {
        let stale: Option<ferry_types::deposit_record::DepositRecord> =
            client.query(&format!("/deposit/eth:{}:{position}", deposit.tx_hash), None).await?;
        assert!(position == 0 || stale.is_none(), "a deposit recorded under a log position: {stale:?}");
    }
    Ok(())
}
