//! Deposits, driven through the in-process driver: federation members attest what they saw on the
//! parent chains; a deposit mints exactly once, when `attest_quorum` distinct members attested
//! identical facts; conflicting attestations are recorded and never mint; attestations are
//! fee-exempt, accepted only from members and only alone in their transaction; and the per-asset
//! ledger behind `/reserves` keeps wrapped supply equal to the sum of balances.

mod driver;

use std::collections::{BTreeMap, BTreeSet};

use driver::{
    CHAIN_ID, Chain, Holding, Signer, TestResult, attestation, attributes, deposit_utxos, events_of,
    federation_genesis, funded, key, sat, send, wei,
};
use ferry_app::bridge::{AssetLedger, ReserveUtxo};
use ferry_app::{Event, TxOutcome};
use ferry_types::deposit_record::{Conflict, DepositRecord, DepositStatus};
use ferry_types::event as ev;
use ferry_types::genesis::Federation;
use ferry_types::query::{DEPOSIT_PATH, FEDERATION_PATH, QUERY_BAD_REQUEST, QUERY_NOT_FOUND, QUERY_OK};
use ferry_types::{AccountKey, Address, Amount, Coin, Denom, DepositFacts, GenesisError, TxCode};
use ferry_types::{DepositId, ParentChain};

/// Members in every test federation.
const MEMBERS: usize = 4;
/// Identical attestations a deposit needs to mint.
const QUORUM: u32 = 3;
const ALICE_SAT: u128 = 1_000_000;
const ALICE_WEI: u128 = 5_000_000_000_000_000_000;
const DEPOSIT_SAT: u128 = 50_000;
const DEPOSIT_WEI: u128 = 3_000_000_000_000_000_000;
const DEPOSIT_TOKEN: u128 = 7_000;
const BTC_TXID: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
/// Sorts before [`BTC_TXID`].
const OTHER_BTC_TXID: &str = "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098";
const ETH_TX: &str = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";
const TOKEN: &str = "erc20/0x00000000000000000000000000000000000000ab";

/// A chain with a federation of four members (quorum 3) and alice, a funded non-member.
struct Bridge {
    chain: Chain,
    /// Account 0: holds sat and wei, is not a member.
    alice: Signer,
    /// The members, in genesis order.
    members: Vec<Signer>,
}

impl Bridge {
    /// Alice (account 0) and the four members (accounts 1 to 4).
    fn start() -> TestResult<Bridge> {
        let alice = key("alice")?;
        Bridge::start_with(vec![funded(&alice.address(), &[sat(ALICE_SAT), wei(ALICE_WEI)])])
    }

    /// Genesis `accounts` (alice among them or not), then the members.
    fn start_with(accounts: Vec<Holding>) -> TestResult<Bridge> {
        Bridge::start_configured(accounts, |_| {})
    }

    /// As [`Bridge::start_with`], with `configure` applied to the genesis parameters.
    fn start_configured(
        accounts: Vec<Holding>,
        configure: impl FnOnce(&mut ferry_types::Params),
    ) -> TestResult<Bridge> {
        let keys = member_keys()?;
        let addresses: Vec<Address> = keys.iter().map(AccountKey::address).collect();
        let alice = key("alice")?;
        let mut genesis = federation_genesis(&accounts, &addresses, QUORUM);
        // The test token is listed (a withdrawal limit like ether's); others are not.
        let limits = &mut genesis.params.withdrawals.limits;
        if let Some(wei) = limits.iter().find(|limit| limit.denom == Denom::wei()).cloned() {
            limits.push(ferry_types::genesis::AssetLimit { denom: token()?, ..wei });
        }
        configure(&mut genesis.params);
        let chain = Chain::start_funded(&genesis, &accounts)?;
        let members = keys.iter().map(|key| chain.signer(key)).collect::<TestResult<Vec<_>>>()?;
        // Alice may hold no genesis account in this chain; she then signs as account 0, unknown to it.
        let alice = match chain.account(&alice.address())? {
            Some(_) => chain.signer(&alice)?,
            None => Signer::new(alice, CHAIN_ID, 0),
        };
        Ok(Bridge { chain, alice, members })
    }

    fn member(&self, index: usize) -> TestResult<&Signer> {
        self.members.get(index).ok_or_else(|| format!("there is no member {index}").into())
    }

    fn member_address(&self, index: usize) -> TestResult<Address> {
        Ok(self.member(index)?.address)
    }

    /// Member `index`'s attestation of `facts` at its next committed sequence.
    fn attestation_tx(&self, index: usize, facts: &DepositFacts) -> TestResult<Vec<u8>> {
        let member = self.member(index)?;
        member.attest(self.chain.sequence(&member.address)?, facts)
    }

    /// Member `index` attests `facts` alone in the next block.
    fn attest(&mut self, index: usize, facts: &DepositFacts) -> TestResult<TxOutcome> {
        let tx = self.attestation_tx(index, facts)?;
        self.execute_one(&tx)
    }

    /// Runs `tx` alone in the next block and returns its outcome.
    fn execute_one(&mut self, tx: &[u8]) -> TestResult<TxOutcome> {
        let mut results = self.chain.execute_block(&[tx])?;
        match (results.pop(), results.is_empty()) {
            (Some(outcome), true) => Ok(outcome),
            _ => Err("a one-transaction block did not return exactly one result".into()),
        }
    }

    /// The record of the deposit `facts` describe, which must exist.
    fn record(&self, facts: &DepositFacts) -> TestResult<DepositRecord> {
        self.chain.deposit(&facts.id())?.ok_or_else(|| format!("no record of deposit {}", facts.id()).into())
    }

    /// The ledger of `denom` from `/reserves` (`None` when the denom has none).
    fn ledger(&self, denom: &Denom) -> TestResult<Option<AssetLedger>> {
        Ok(self.chain.reserves()?.assets.get(denom).cloned())
    }
}

fn member_keys() -> TestResult<Vec<AccountKey>> {
    (0..MEMBERS).map(|index| key(&format!("member-{index}"))).collect()
}

fn address(seed: &str) -> TestResult<Address> {
    Ok(key(seed)?.address())
}

fn token() -> TestResult<Denom> {
    Ok(TOKEN.parse()?)
}

/// A ledger of `supply` with nothing withdrawn: every coin backed (the test holdings count as
/// minted deposits).
fn ledger(supply: u128) -> AssetLedger {
    AssetLedger {
        supply: Amount::new(supply),
        reserves: Amount::new(supply),
        unreleased: Amount::ZERO,
        below_minimum: Amount::ZERO,
        fee_pool: Amount::ZERO,
        unattributed: Amount::ZERO,
    }
}

/// The reserve UTXO of the Bitcoin deposit the tests mint: output 1 of [`BTC_TXID`].
fn deposit_utxo() -> ReserveUtxo {
    ReserveUtxo {
        txid: BTC_TXID.to_owned(),
        vout: 1,
        amount: Amount::new(DEPOSIT_SAT),
        locked_by: None,
        owner: None,
        retired_epoch: None,
    }
}

/// Bitcoin output `vout` of [`BTC_TXID`] paying `amount` satoshi for `recipient`.
/// The default parameters' minimum Bitcoin deposit.
const MIN_SAT: u128 = 10_000;

fn btc(vout: u32, amount: u128, recipient: &Address) -> DepositFacts {
    DepositFacts {
        chain: ParentChain::Bitcoin,
        tx_id: BTC_TXID.to_owned(),
        index: vout,
        asset: Denom::sat(),
        amount: Amount::new(amount),
        recipient: *recipient,
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    }
}

/// Log `log_index` of [`ETH_TX`] depositing `amount` of `asset` for `recipient`.
fn eth(log_index: u32, asset: Denom, amount: u128, recipient: &Address) -> DepositFacts {
    DepositFacts {
        chain: ParentChain::Ethereum,
        tx_id: ETH_TX.to_owned(),
        index: log_index,
        asset,
        amount: Amount::new(amount),
        recipient: *recipient,
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    }
}

fn codes(results: &[TxOutcome]) -> Vec<TxCode> {
    results.iter().map(|result| result.code).collect()
}

/// The attributes of the only event of `kind` in `events`.
fn only_event<'a>(events: &'a [Event], kind: &str) -> TestResult<BTreeMap<&'static str, &'a str>> {
    match events_of(events, kind).as_slice() {
        [event] => Ok(attributes(event)),
        other => Err(format!("expected one `{kind}` event, got {}: {events:?}", other.len()).into()),
    }
}

/// The `deposit_attested` attributes one attestation by `attester` is expected to carry.
fn attested<'a>(id: &'a str, attester: &'a str, count: &'a str) -> BTreeMap<&'static str, &'a str> {
    BTreeMap::from([(ev::DEPOSIT_ID, id), (ev::ATTESTER, attester), (ev::ATTESTATIONS, count), (ev::QUORUM, "3")])
}

/// Attesters named by the `deposit_conflict` events of `outcomes`.
fn conflict_attesters(outcomes: &[TxOutcome]) -> BTreeSet<String> {
    outcomes
        .iter()
        .flat_map(|outcome| events_of(&outcome.events, ev::DEPOSIT_CONFLICT))
        .filter_map(|event| attributes(event).get(ev::ATTESTER).map(|attester| (*attester).to_owned()))
        .collect()
}

/// Supply per denomination equals the sum of all balances of it (every held denom has a ledger),
/// and the Bitcoin reserve UTXOs add up to the `sat` reserves.
fn assert_ledgers_match_balances(chain: &Chain) -> TestResult {
    let reserves = chain.reserves()?;
    let held = chain.committed().held_denoms()?;
    for denom in held.iter().chain(reserves.assets.keys()) {
        let ledger = reserves.assets.get(denom).ok_or_else(|| format!("{denom} is held but has no ledger"))?;
        assert_eq!(
            ledger.supply.get(),
            chain.committed().supply(denom)?,
            "{denom} supply at height {}",
            chain.height()
        );
    }
    let utxos = reserves
        .bitcoin_utxos
        .iter()
        .try_fold(0u128, |total, utxo| total.checked_add(utxo.amount.get()))
        .ok_or("reserve UTXOs overflow")?;
    let sat_reserves = reserves.assets.get(&Denom::sat()).map_or(0, |ledger| ledger.reserves.get());
    assert_eq!(utxos, sat_reserves, "reserve UTXOs against sat reserves at height {}", chain.height());
    Ok(())
}

#[test]
fn btc_deposit_mints_exactly_once_when_the_third_of_four_members_attests_identical_facts() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let facts = btc(1, DEPOSIT_SAT, &dana);
    let id = facts.id().to_string();
    assert_eq!(id, format!("btc:{BTC_TXID}:1"));
    assert_eq!(bridge.chain.deposit(&facts.id())?, None);

    for (index, count) in [(0, "1"), (1, "2")] {
        let outcome = bridge.attest(index, &facts)?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
        let attester = bridge.member_address(index)?.to_string();
        assert_eq!(only_event(&outcome.events, ev::DEPOSIT_ATTESTED)?, attested(&id, &attester, count));
        assert!(events_of(&outcome.events, ev::DEPOSIT_MINTED).is_empty(), "{:?}", outcome.events);
        let record = bridge.record(&facts)?;
        assert_eq!(
            (record.status, record.attestations.len(), record.minted),
            (DepositStatus::Pending, index + 1, None)
        );
        assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, 0);
        assert_eq!(bridge.chain.account(&dana)?, None);
    }
    assert_eq!(bridge.ledger(&Denom::sat())?, Some(ledger(ALICE_SAT)));
    assert_eq!(deposit_utxos(&bridge.chain.reserves()?), []);

    let third = bridge.attest(2, &facts)?;

    assert_eq!(third.code, TxCode::Ok, "{}", third.log);
    let attester = bridge.member_address(2)?.to_string();
    assert_eq!(only_event(&third.events, ev::DEPOSIT_ATTESTED)?, attested(&id, &attester, "3"));
    let dana_text = dana.to_string();
    let minted =
        BTreeMap::from([(ev::DEPOSIT_ID, id.as_str()), (ev::RECIPIENT, dana_text.as_str()), (ev::AMOUNT, "50000sat")]);
    assert_eq!(only_event(&third.events, ev::DEPOSIT_MINTED)?, minted);
    let created = BTreeMap::from([(ev::ADDRESS, dana_text.as_str()), (ev::ACCOUNT_NUMBER, "5")]);
    assert_eq!(only_event(&third.events, ev::ACCOUNT_CREATED)?, created);
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, DEPOSIT_SAT);
    let record = bridge.record(&facts)?;
    let digest = hex::encode(facts.digest());
    let expected = DepositRecord {
        id: facts.id(),
        status: DepositStatus::Minted,
        attestations: (0..3)
            .map(|index| Ok((bridge.member_address(index)?, digest.clone())))
            .collect::<TestResult<_>>()?,
        candidates: BTreeMap::from([(digest.clone(), facts.clone())]),
        conflicts: Vec::new(),
        minted: Some(facts.clone()),
        // No Bitcoin peg on this chain: nothing to prepay.
        minted_amount: Some(facts.amount),
        spend_fee: None,
        first_attested_height: 1,
        minted_height: Some(3),
        opened_by: Some(bridge.member_address(0)?),
        unattributed: None,
    };
    assert_eq!(record, expected);
    let reserves = bridge.chain.reserves()?;
    assert_eq!(reserves.assets.get(&Denom::sat()), Some(&ledger(ALICE_SAT + DEPOSIT_SAT)));
    assert_eq!(reserves.assets.get(&Denom::wei()), Some(&ledger(ALICE_WEI)));
    let utxo = deposit_utxo();
    assert_eq!(deposit_utxos(&reserves), [utxo]);

    // The fourth attestation is counted and mints nothing.
    let fourth = bridge.attest(3, &facts)?;
    assert_eq!(fourth.code, TxCode::Ok, "{}", fourth.log);
    let attester = bridge.member_address(3)?.to_string();
    assert_eq!(only_event(&fourth.events, ev::DEPOSIT_ATTESTED)?, attested(&id, &attester, "4"));
    assert!(events_of(&fourth.events, ev::DEPOSIT_MINTED).is_empty(), "{:?}", fourth.events);

    // Nor does anything afterwards, however many blocks later.
    for _ in 0..3 {
        let txs = (0..MEMBERS).map(|index| bridge.attestation_tx(index, &facts)).collect::<TestResult<Vec<_>>>()?;
        let results = bridge.chain.execute_block(&txs)?;
        assert_eq!(codes(&results), [TxCode::Ok; MEMBERS]);
        for result in &results {
            assert!(events_of(&result.events, ev::DEPOSIT_MINTED).is_empty(), "{:?}", result.events);
            assert_eq!(only_event(&result.events, ev::DEPOSIT_ATTESTED)?.get(ev::ATTESTATIONS), Some(&"4"));
        }
        bridge.chain.empty_block()?;
    }
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, DEPOSIT_SAT);
    assert_eq!(bridge.chain.reserves()?, reserves);
    let record = bridge.record(&facts)?;
    assert_eq!((record.status, record.attestations.len(), record.minted_height), (DepositStatus::Minted, 4, Some(3)));
    assert_ledgers_match_balances(&bridge.chain)?;

    // History: nothing at genesis, pending at height 2, minted from height 3.
    assert_eq!(bridge.chain.deposit_at(0, &facts.id())?, None);
    assert_eq!(bridge.chain.deposit_at(2, &facts.id())?.map(|record| record.status), Some(DepositStatus::Pending));
    assert_eq!(bridge.chain.deposit_at(3, &facts.id())?.map(|record| record.status), Some(DepositStatus::Minted));
    assert_eq!(bridge.chain.balance_at(2, &dana, &Denom::sat())?, 0);
    assert_eq!(bridge.chain.balance_at(3, &dana, &Denom::sat())?, DEPOSIT_SAT);
    Ok(())
}

#[test]
fn all_four_identical_attestations_in_one_block_mint_once() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let facts = btc(0, DEPOSIT_SAT, &dana);
    let txs = (0..MEMBERS).map(|index| bridge.attestation_tx(index, &facts)).collect::<TestResult<Vec<_>>>()?;

    let results = bridge.chain.execute_block(&txs)?;

    assert_eq!(codes(&results), [TxCode::Ok; MEMBERS]);
    let counts = results
        .iter()
        .map(|result| Ok(only_event(&result.events, ev::DEPOSIT_ATTESTED)?.get(ev::ATTESTATIONS).copied()))
        .collect::<TestResult<Vec<_>>>()?;
    assert_eq!(counts, [Some("1"), Some("2"), Some("3"), Some("4")]);
    let mints: Vec<usize> = results.iter().map(|result| events_of(&result.events, ev::DEPOSIT_MINTED).len()).collect();
    assert_eq!(mints, [0, 0, 1, 0]);
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, DEPOSIT_SAT);
    assert_eq!(bridge.ledger(&Denom::sat())?, Some(ledger(ALICE_SAT + DEPOSIT_SAT)));
    assert_eq!(bridge.record(&facts)?.minted_height, Some(1));
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn ether_deposit_mints_wei_to_an_existing_account_and_adds_no_bitcoin_utxo() -> TestResult {
    let mut bridge = Bridge::start()?;
    let alice = bridge.alice.address;
    let facts = eth(7, Denom::wei(), DEPOSIT_WEI, &alice);
    assert_eq!(facts.id().to_string(), format!("eth:{ETH_TX}:7"));

    let outcomes = (0..3).map(|index| bridge.attest(index, &facts)).collect::<TestResult<Vec<_>>>()?;

    assert_eq!(codes(&outcomes), [TxCode::Ok; 3]);
    let third = outcomes.last().ok_or("no outcome")?;
    let id = facts.id().to_string();
    let alice_text = alice.to_string();
    let minted = BTreeMap::from([
        (ev::DEPOSIT_ID, id.as_str()),
        (ev::RECIPIENT, alice_text.as_str()),
        (ev::AMOUNT, "3000000000000000000wei"),
    ]);
    assert_eq!(only_event(&third.events, ev::DEPOSIT_MINTED)?, minted);
    assert!(events_of(&third.events, ev::ACCOUNT_CREATED).is_empty(), "{:?}", third.events);
    assert_eq!(bridge.chain.balance(&alice, &Denom::wei())?, ALICE_WEI + DEPOSIT_WEI);
    assert_eq!(bridge.chain.balance(&alice, &Denom::sat())?, ALICE_SAT);
    let reserves = bridge.chain.reserves()?;
    assert_eq!(reserves.assets.get(&Denom::wei()), Some(&ledger(ALICE_WEI + DEPOSIT_WEI)));
    assert_eq!(reserves.assets.get(&Denom::sat()), Some(&ledger(ALICE_SAT)));
    assert_eq!(deposit_utxos(&reserves), []);
    assert_eq!(bridge.record(&facts)?.minted, Some(facts));
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn erc20_deposit_mints_the_token_denom_and_adds_no_bitcoin_utxo() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let token = token()?;
    let facts = eth(0, token.clone(), DEPOSIT_TOKEN, &dana);
    assert_eq!(bridge.ledger(&token)?, None);

    for index in 0..2 {
        assert_eq!(bridge.attest(index, &facts)?.code, TxCode::Ok);
    }
    assert_eq!(bridge.ledger(&token)?, None);
    let third = bridge.attest(2, &facts)?;

    assert_eq!(third.code, TxCode::Ok, "{}", third.log);
    let amount = format!("{DEPOSIT_TOKEN}{TOKEN}");
    assert_eq!(only_event(&third.events, ev::DEPOSIT_MINTED)?.get(ev::AMOUNT), Some(&amount.as_str()));
    assert_eq!(bridge.chain.balance(&dana, &token)?, DEPOSIT_TOKEN);
    assert_eq!(bridge.chain.balance(&dana, &Denom::wei())?, 0);
    let reserves = bridge.chain.reserves()?;
    let assets: Vec<(&str, &AssetLedger)> =
        reserves.assets.iter().map(|(denom, ledger)| (denom.as_str(), ledger)).collect();
    assert_eq!(assets, [(TOKEN, &ledger(DEPOSIT_TOKEN)), ("sat", &ledger(ALICE_SAT)), ("wei", &ledger(ALICE_WEI))]);
    assert_eq!(deposit_utxos(&reserves), []);
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn outputs_of_bitcoin_transactions_are_separate_deposits_kept_as_sorted_reserve_utxos() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let later_output = btc(2, 30_000, &dana);
    let other_tx = DepositFacts { tx_id: OTHER_BTC_TXID.to_owned(), ..btc(0, 20_000, &dana) };
    let first_output = btc(0, 10_000, &dana);

    for facts in [&later_output, &other_tx, &first_output] {
        let txs = (0..3).map(|index| bridge.attestation_tx(index, facts)).collect::<TestResult<Vec<_>>>()?;
        assert_eq!(codes(&bridge.chain.execute_block(&txs)?), [TxCode::Ok; 3]);
    }

    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, 60_000);
    let reserves = bridge.chain.reserves()?;
    let deposited = deposit_utxos(&reserves);
    let utxos: Vec<(&str, u32, u128)> =
        deposited.iter().map(|utxo| (utxo.txid.as_str(), utxo.vout, utxo.amount.get())).collect();
    assert_eq!(utxos, [(OTHER_BTC_TXID, 0, 20_000), (BTC_TXID, 0, 10_000), (BTC_TXID, 2, 30_000)]);
    assert_eq!(reserves.assets.get(&Denom::sat()), Some(&ledger(ALICE_SAT + 60_000)));
    for facts in [&later_output, &other_tx, &first_output] {
        assert_eq!(bridge.record(facts)?.status, DepositStatus::Minted, "{}", facts.id());
    }
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn one_member_repeating_its_attestation_never_mints() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let facts = btc(1, DEPOSIT_SAT, &dana);
    let member = bridge.member(0)?.clone();
    let id = facts.id().to_string();
    let attester = member.address.to_string();
    let first = member.attest(0, &facts)?;
    assert_eq!(bridge.execute_one(&first)?.code, TxCode::Ok);

    // The very same signed bytes again: refused as a used sequence, in a block and in CheckTx.
    let replay = bridge.execute_one(&first)?;
    assert_eq!(replay.code, TxCode::StaleSequence);
    assert_eq!(replay.log, format!("sequence 0 of {attester} was already used; next is 1"));
    assert_eq!(bridge.chain.check_tx(&first)?.code, TxCode::StaleSequence);

    // New transactions with the same facts: accepted, counted once.
    for sequence in 1..=5 {
        let outcome = bridge.execute_one(&member.attest(sequence, &facts)?)?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
        assert_eq!(only_event(&outcome.events, ev::DEPOSIT_ATTESTED)?, attested(&id, &attester, "1"));
    }
    // As many copies as one transaction may carry: still one attestation.
    let copies = vec![attestation(&member.address, &facts); 64];
    let outcome = bridge.execute_one(&member.sign_fee_exempt(6, &copies)?)?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let counts: BTreeSet<Option<&str>> = events_of(&outcome.events, ev::DEPOSIT_ATTESTED)
        .iter()
        .map(|event| attributes(event).get(ev::ATTESTATIONS).copied())
        .collect();
    assert_eq!(counts, BTreeSet::from([Some("1")]));
    assert_eq!(events_of(&outcome.events, ev::DEPOSIT_ATTESTED).len(), 64);
    assert!(events_of(&outcome.events, ev::DEPOSIT_MINTED).is_empty());

    let record = bridge.record(&facts)?;
    assert_eq!(record.status, DepositStatus::Pending);
    assert_eq!(record.attestations, BTreeMap::from([(member.address, hex::encode(facts.digest()))]));
    assert_eq!((record.conflicts, record.minted), (Vec::new(), None));
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, 0);
    assert_eq!(bridge.chain.account(&dana)?, None);
    assert_eq!(bridge.ledger(&Denom::sat())?, Some(ledger(ALICE_SAT)));
    assert_eq!(deposit_utxos(&bridge.chain.reserves()?), []);
    assert_eq!(bridge.chain.sequence(&member.address)?, 7);
    Ok(())
}

#[test]
fn attestation_from_a_non_member_is_unauthorized_and_names_the_address() -> TestResult {
    let mut bridge = Bridge::start()?;
    let facts = btc(1, DEPOSIT_SAT, &address("dana")?);
    let alice = bridge.alice.clone();
    let mallory = Signer::new(key("mallory")?, CHAIN_ID, 0);
    let txs = [
        alice.attest(0, &facts)?,
        alice.sign(0, &sat(100), &[attestation(&alice.address, &facts)])?,
        mallory.attest(0, &facts)?,
    ];
    let named = [alice.address, alice.address, mallory.address];

    for tx in &txs {
        assert_eq!(bridge.chain.check_tx(tx)?.code, TxCode::Unauthorized);
    }
    let outcome = bridge.chain.finalize_block(&txs)?;

    assert_eq!(codes(&outcome.tx_results), [TxCode::Unauthorized; 3]);
    for (result, address) in outcome.tx_results.iter().zip(named) {
        assert_eq!(
            result.log,
            format!("{address} is not a federation member; only members may perform federation duties")
        );
        assert_eq!(result.events, []);
    }
    assert!(outcome.changes.is_empty(), "refused attestations wrote {:?}", outcome.changes);
    assert_eq!(bridge.chain.deposit(&facts.id())?, None);
    assert_eq!(bridge.chain.sequence(&alice.address)?, 0);
    assert_eq!(bridge.chain.balance(&alice.address, &Denom::sat())?, ALICE_SAT);
    assert_eq!(bridge.chain.account(&mallory.address)?, None);
    Ok(())
}

#[test]
fn attestation_naming_a_member_but_signed_by_another_key_is_unauthorized() -> TestResult {
    let mut bridge = Bridge::start()?;
    let facts = btc(1, DEPOSIT_SAT, &address("dana")?);
    let (alice, member, other_member) = (bridge.alice.clone(), bridge.member(0)?.clone(), bridge.member(1)?.clone());
    let forged = [
        alice.sign_fee_exempt(0, &[attestation(&member.address, &facts)])?,
        other_member.sign_fee_exempt(0, &[attestation(&member.address, &facts)])?,
    ];

    let results = bridge.chain.execute_block(&forged)?;

    assert_eq!(codes(&results), [TxCode::Unauthorized; 2]);
    let logs: Vec<&str> = results.iter().map(|result| result.log.as_str()).collect();
    assert_eq!(
        logs,
        [
            format!("message sender {} is not the transaction signer {}", member.address, alice.address),
            format!("message sender {} is not the transaction signer {}", member.address, other_member.address),
        ]
    );
    assert_eq!(bridge.chain.deposit(&facts.id())?, None);
    assert_eq!(bridge.chain.sequence(&member.address)?, 0);
    assert_eq!(bridge.chain.sequence(&other_member.address)?, 0);
    Ok(())
}

/// A bridge whose member 0 also holds 10 000 sat (its genesis account is account 1, after alice).
fn bridge_with_funded_member() -> TestResult<Bridge> {
    let alice = key("alice")?;
    let member = member_keys()?.first().map(AccountKey::address).ok_or("no member key")?;
    Bridge::start_with(vec![
        funded(&alice.address(), &[sat(ALICE_SAT), wei(ALICE_WEI)]),
        funded(&member, &[sat(10_000)]),
    ])
}

#[test]
fn member_attestation_carrying_a_fee_is_refused_as_invalid_message() -> TestResult {
    let mut bridge = bridge_with_funded_member()?;
    let facts = btc(1, DEPOSIT_SAT, &address("dana")?);
    let member = bridge.member(0)?.clone();
    let tx = member.sign(0, &sat(100), &[attestation(&member.address, &facts)])?;

    assert_eq!(bridge.chain.check_tx(&tx)?.code, TxCode::InvalidMessage);
    let outcome = bridge.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::InvalidMessage);
    assert_eq!(outcome.log, "federation duties are fee-exempt; remove the fee 100sat");
    assert_eq!(bridge.chain.balance(&member.address, &Denom::sat())?, 10_000);
    assert_eq!(bridge.chain.sequence(&member.address)?, 0);
    assert_eq!(bridge.chain.account(&Address::fee_collector())?, None);
    assert_eq!(bridge.chain.deposit(&facts.id())?, None);
    Ok(())
}

#[test]
fn attestation_sharing_a_transaction_with_a_transfer_is_refused() -> TestResult {
    let mut bridge = bridge_with_funded_member()?;
    let facts = btc(1, DEPOSIT_SAT, &address("dana")?);
    let member = bridge.member(0)?.clone();
    let erin = address("erin")?;
    let attest = attestation(&member.address, &facts);
    let transfer = send(&member.address, &erin, &[sat(1_000)]);
    let txs = [
        member.sign(0, &sat(100), &[attest.clone(), transfer.clone()])?,
        member.sign(0, &sat(100), &[transfer.clone(), attest.clone()])?,
        member.sign_fee_exempt(0, &[attest, transfer])?,
    ];

    for tx in &txs {
        assert_eq!(bridge.chain.check_tx(tx)?.code, TxCode::InvalidMessage);
    }
    let results = bridge.chain.execute_block(&txs)?;

    assert_eq!(codes(&results), [TxCode::InvalidMessage; 3]);
    for result in &results {
        assert_eq!(result.log, "federation duties cannot share a transaction with other messages");
    }
    assert_eq!(bridge.chain.balance(&member.address, &Denom::sat())?, 10_000);
    assert_eq!(bridge.chain.sequence(&member.address)?, 0);
    assert_eq!(bridge.chain.account(&erin)?, None);
    assert_eq!(bridge.chain.deposit(&facts.id())?, None);
    Ok(())
}

#[test]
fn transfer_without_a_fee_is_not_exempt_even_from_a_member() -> TestResult {
    let mut bridge = bridge_with_funded_member()?;
    let erin = address("erin")?;
    let (alice, member) = (bridge.alice.clone(), bridge.member(0)?.clone());
    let txs = [
        alice.sign_fee_exempt(0, &[send(&alice.address, &erin, &[sat(1_000)])])?,
        member.sign_fee_exempt(0, &[send(&member.address, &erin, &[sat(1_000)])])?,
    ];

    let results = bridge.chain.execute_block(&txs)?;

    assert_eq!(codes(&results), [TxCode::InsufficientFee; 2]);
    for result in &results {
        assert_eq!(result.log, "transaction offers no fee");
    }
    assert_eq!(bridge.chain.account(&erin)?, None);
    assert_eq!(bridge.chain.balance(&member.address, &Denom::sat())?, 10_000);
    Ok(())
}

#[test]
fn conflicting_facts_are_recorded_and_never_mint_while_the_honest_facts_mint_once() -> TestResult {
    let dana = address("dana")?;
    let mallory = address("mallory")?;
    let honest_btc = btc(1, DEPOSIT_SAT, &dana);
    let honest_eth = eth(3, Denom::wei(), DEPOSIT_WEI, &dana);
    let cases = [
        ("more satoshi", honest_btc.clone(), btc(1, DEPOSIT_SAT + 1, &dana)),
        ("another recipient", honest_btc.clone(), btc(1, DEPOSIT_SAT, &mallory)),
        ("another asset", honest_eth.clone(), DepositFacts { asset: token()?, ..honest_eth.clone() }),
    ];
    for (lie_kind, honest, lie) in cases {
        let mut bridge = Bridge::start()?;
        let opening = bridge.ledger(&honest.asset)?.map_or(0, |ledger| ledger.reserves.get());
        let liar = bridge.member_address(1)?;
        let id = honest.id().to_string();
        assert_eq!(lie.id(), honest.id(), "{lie_kind}");

        assert_eq!(bridge.attest(0, &honest)?.code, TxCode::Ok, "{lie_kind}");
        let lied = bridge.attest(1, &lie)?;

        assert_eq!(lied.code, TxCode::Ok, "{lie_kind}: {}", lied.log);
        let liar_text = liar.to_string();
        // Before anything minted, differing facts are competing candidates, not yet a conflict.
        assert!(events_of(&lied.events, ev::DEPOSIT_CONFLICT).is_empty(), "{lie_kind}");
        assert_eq!(only_event(&lied.events, ev::DEPOSIT_ATTESTED)?, attested(&id, &liar_text, "1"), "{lie_kind}");
        let record = bridge.record(&honest)?;
        assert!(record.conflicts.is_empty(), "{lie_kind}: {:?}", record.conflicts);
        let candidates =
            BTreeMap::from([(hex::encode(honest.digest()), honest.clone()), (hex::encode(lie.digest()), lie.clone())]);
        assert_eq!(record.candidates, candidates, "{lie_kind}");
        assert_eq!(record.attestations.get(&liar), Some(&hex::encode(lie.digest())), "{lie_kind}");

        // Repeating the lie changes nothing. Switching to the honest facts does not count (a
        // member's first attestation is the one that counts) and records the self-contradiction.
        let repeated = bridge.attest(1, &lie)?;
        assert_eq!(events_of(&repeated.events, ev::DEPOSIT_CONFLICT).len(), 0, "{lie_kind}");
        assert!(bridge.record(&honest)?.conflicts.is_empty(), "{lie_kind}");
        let switched = bridge.attest(1, &honest)?;
        assert_eq!(switched.code, TxCode::Ok, "{lie_kind}");
        let conflict = BTreeMap::from([(ev::DEPOSIT_ID, id.as_str()), (ev::ATTESTER, liar_text.as_str())]);
        assert_eq!(only_event(&switched.events, ev::DEPOSIT_CONFLICT)?, conflict, "{lie_kind}");
        assert_eq!(
            bridge.record(&honest)?.conflicts,
            [Conflict { member: liar, facts: honest.clone(), height: 4, count: 1 }],
            "{lie_kind}"
        );
        assert_eq!(only_event(&switched.events, ev::DEPOSIT_ATTESTED)?.get(ev::ATTESTATIONS), Some(&"1"));
        assert!(events_of(&switched.events, ev::DEPOSIT_MINTED).is_empty(), "{lie_kind}");

        let second = bridge.attest(2, &honest)?;
        assert_eq!(only_event(&second.events, ev::DEPOSIT_ATTESTED)?.get(ev::ATTESTATIONS), Some(&"2"));
        assert!(events_of(&second.events, ev::DEPOSIT_MINTED).is_empty(), "{lie_kind}");
        let third = bridge.attest(3, &honest)?;
        assert_eq!(only_event(&third.events, ev::DEPOSIT_ATTESTED)?.get(ev::ATTESTATIONS), Some(&"3"));
        assert_eq!(events_of(&third.events, ev::DEPOSIT_MINTED).len(), 1, "{lie_kind}");

        // After the mint the lie is still refused to mint, however often it is repeated.
        for _ in 0..3 {
            assert_eq!(bridge.attest(1, &lie)?.code, TxCode::Ok, "{lie_kind}");
        }
        let record = bridge.record(&honest)?;
        assert_eq!((record.status, record.minted.as_ref()), (DepositStatus::Minted, Some(&honest)), "{lie_kind}");
        assert_eq!(bridge.chain.balance(&dana, &honest.asset)?, honest.amount.get(), "{lie_kind}");
        assert_eq!(
            bridge.chain.balance(&dana, &lie.asset)?,
            if lie.asset == honest.asset { honest.amount.get() } else { 0 }
        );
        assert_eq!(bridge.chain.account(&mallory)?, None, "{lie_kind}");
        let minted = bridge.ledger(&honest.asset)?.ok_or("no ledger")?;
        assert_eq!(minted.reserves.get(), opening + honest.amount.get(), "{lie_kind}");
        if lie.asset != honest.asset {
            assert_eq!(bridge.ledger(&lie.asset)?, None, "{lie_kind}");
        }
        assert_ledgers_match_balances(&bridge.chain)?;
    }
    Ok(())
}

#[test]
fn honest_quorum_mints_even_when_a_member_attests_conflicting_facts_first() -> TestResult {
    let mut bridge = Bridge::start()?;
    let (dana, mallory) = (address("dana")?, address("mallory")?);
    let honest = btc(1, DEPOSIT_SAT, &dana);
    let lie = btc(1, 5 * DEPOSIT_SAT, &mallory);

    assert_eq!(bridge.attest(1, &lie)?.code, TxCode::Ok);
    let outcomes = [0, 2, 3].into_iter().map(|index| bridge.attest(index, &honest)).collect::<TestResult<Vec<_>>>()?;

    assert_eq!(codes(&outcomes), [TxCode::Ok; 3]);
    let mints: Vec<usize> =
        outcomes.iter().map(|outcome| events_of(&outcome.events, ev::DEPOSIT_MINTED).len()).collect();
    assert_eq!(mints, [0, 0, 1]);
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, DEPOSIT_SAT);
    assert_eq!(bridge.chain.account(&mallory)?, None);
    assert_eq!(bridge.ledger(&Denom::sat())?, Some(ledger(ALICE_SAT + DEPOSIT_SAT)));
    let utxo = deposit_utxo();
    assert_eq!(deposit_utxos(&bridge.chain.reserves()?), [utxo]);
    assert_eq!(bridge.record(&honest)?.minted, Some(honest));
    assert_ledgers_match_balances(&bridge.chain)
}

/// Design: "a member that attests conflicting facts is recorded". The members who attested the
/// facts that minted did nothing wrong and must not be named as conflicting.
#[test]
fn honest_members_attesting_after_a_conflicting_member_are_not_named_as_conflicting() -> TestResult {
    let mut bridge = Bridge::start()?;
    let honest = btc(1, DEPOSIT_SAT, &address("dana")?);
    let lie = btc(1, DEPOSIT_SAT, &address("mallory")?);
    let liar = bridge.member_address(1)?;

    let outcomes = vec![
        bridge.attest(0, &honest)?,
        bridge.attest(1, &lie)?,
        bridge.attest(2, &honest)?,
        bridge.attest(3, &honest)?,
    ];

    assert_eq!(codes(&outcomes), [TxCode::Ok; MEMBERS]);
    assert_eq!(bridge.record(&honest)?.minted, Some(honest.clone()));
    let named: BTreeSet<Address> = bridge.record(&honest)?.conflicts.iter().map(|conflict| conflict.member).collect();
    assert_eq!(named, BTreeSet::from([liar]), "members recorded in `conflicts`");
    assert_eq!(
        conflict_attesters(&outcomes),
        BTreeSet::from([liar.to_string()]),
        "attesters of deposit_conflict events"
    );
    Ok(())
}

/// Design: "a member that attests conflicting facts is recorded", whether or not it was the first
/// to attest the deposit.
#[test]
fn member_attesting_conflicting_facts_first_is_named_as_conflicting() -> TestResult {
    let mut bridge = Bridge::start()?;
    let honest = btc(1, DEPOSIT_SAT, &address("dana")?);
    let lie = btc(1, DEPOSIT_SAT, &address("mallory")?);
    let liar = bridge.member_address(1)?;

    let outcomes = vec![
        bridge.attest(1, &lie)?,
        bridge.attest(0, &honest)?,
        bridge.attest(2, &honest)?,
        bridge.attest(3, &honest)?,
    ];

    assert_eq!(codes(&outcomes), [TxCode::Ok; MEMBERS]);
    let record = bridge.record(&honest)?;
    assert_eq!(record.minted, Some(honest.clone()));
    let named: BTreeSet<Address> = record.conflicts.iter().map(|conflict| conflict.member).collect();
    assert_eq!(named, BTreeSet::from([liar]), "members recorded in `conflicts`: {:?}", record.conflicts);
    assert!(record.conflicts.iter().all(|conflict| conflict.facts == lie), "{:?}", record.conflicts);
    assert_eq!(
        conflict_attesters(&outcomes),
        BTreeSet::from([liar.to_string()]),
        "attesters of deposit_conflict events"
    );
    Ok(())
}

#[test]
fn malformed_facts_are_refused_at_decode_as_invalid_message() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let member = bridge.member(0)?.clone();
    let good_btc = btc(1, DEPOSIT_SAT, &dana);
    let good_eth = eth(0, Denom::wei(), DEPOSIT_WEI, &dana);
    let hash = ETH_TX.trim_start_matches("0x");
    let cases = [
        (
            DepositFacts { asset: Denom::wei(), ..good_btc.clone() },
            "asset `wei` cannot be deposited from btc".to_owned(),
        ),
        (DepositFacts { asset: token()?, ..good_btc.clone() }, format!("asset `{TOKEN}` cannot be deposited from btc")),
        (
            DepositFacts { asset: Denom::sat(), ..good_eth.clone() },
            "asset `sat` cannot be deposited from eth".to_owned(),
        ),
        (DepositFacts { amount: Amount::ZERO, ..good_btc.clone() }, "deposit amount is zero".to_owned()),
        (DepositFacts { amount: Amount::ZERO, ..good_eth.clone() }, "deposit amount is zero".to_owned()),
        (
            DepositFacts { tx_id: BTC_TXID.to_uppercase(), ..good_btc.clone() },
            format!("`{}` is not a transaction id", BTC_TXID.to_uppercase()),
        ),
        (
            DepositFacts { tx_id: format!("0x{BTC_TXID}"), ..good_btc.clone() },
            format!("`0x{BTC_TXID}` is not a transaction id"),
        ),
        (
            DepositFacts { tx_id: BTC_TXID[1..].to_owned(), ..good_btc.clone() },
            format!("`{}` is not a transaction id", &BTC_TXID[1..]),
        ),
        (DepositFacts { tx_id: String::new(), ..good_btc.clone() }, "`` is not a transaction id".to_owned()),
        (DepositFacts { tx_id: hash.to_owned(), ..good_eth.clone() }, format!("`{hash}` is not a transaction id")),
        (
            DepositFacts { tx_id: format!("0x{}", hash.to_uppercase()), ..good_eth.clone() },
            "is not a transaction id".to_owned(),
        ),
        (
            DepositFacts { tx_id: format!("0X{hash}"), ..good_eth.clone() },
            format!("`0X{hash}` is not a transaction id"),
        ),
    ];
    let txs = cases.iter().map(|(facts, _)| member.attest(0, facts)).collect::<TestResult<Vec<_>>>()?;

    for tx in &txs {
        assert_eq!(bridge.chain.check_tx(tx)?.code, TxCode::InvalidMessage);
    }
    let outcome = bridge.chain.finalize_block(&txs)?;

    assert_eq!(codes(&outcome.tx_results), [TxCode::InvalidMessage; 12]);
    for ((facts, expected), result) in cases.iter().zip(&outcome.tx_results) {
        let prefix = "message `/ferry.bridge.v1.MsgAttestDeposit` field `facts`: ";
        assert!(result.log.starts_with(prefix), "{facts:?}: {}", result.log);
        assert!(result.log.contains(expected.as_str()), "{facts:?}: {:?} does not say {expected:?}", result.log);
    }
    assert!(outcome.changes.is_empty(), "refused attestations wrote {:?}", outcome.changes);
    assert_eq!(bridge.chain.sequence(&member.address)?, 0);
    // The well-formed facts are still accepted at sequence 0.
    assert_eq!(bridge.attest(0, &good_btc)?.code, TxCode::Ok);
    Ok(())
}

#[test]
fn attestations_are_fee_exempt_and_advance_the_members_sequence() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let deposits = [btc(0, DEPOSIT_SAT, &dana), eth(1, Denom::wei(), DEPOSIT_WEI, &dana), eth(2, token()?, 9, &dana)];
    let mut sent = [0u64; MEMBERS];

    for facts in &deposits {
        for index in 0..MEMBERS {
            let outcome = bridge.attest(index, facts)?;
            assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
            *sent.get_mut(index).ok_or("no counter")? += 1;
            assert!(events_of(&outcome.events, ev::FEE).is_empty(), "{:?}", outcome.events);
            let address = bridge.member_address(index)?.to_string();
            let next = sent.get(index).ok_or("no counter")?.to_string();
            let sequence = BTreeMap::from([(ev::ADDRESS, address.as_str()), (ev::SEQUENCE_VALUE, next.as_str())]);
            assert_eq!(only_event(&outcome.events, ev::SEQUENCE)?, sequence);
        }
    }

    assert_eq!(sent, [3; MEMBERS]);
    for (member, key) in bridge.members.iter().zip(member_keys()?) {
        let account = bridge.chain.account(&member.address)?.ok_or("member has no account")?;
        assert_eq!(account.sequence, 3);
        assert_eq!(account.public_key, Some(hex::encode(key.public_key_bytes())));
        for denom in [Denom::sat(), Denom::wei(), token()?] {
            assert_eq!(bridge.chain.balance(&member.address, &denom)?, 0, "{denom}");
        }
    }
    assert_eq!(bridge.chain.account(&Address::fee_collector())?, None);
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, DEPOSIT_SAT);
    assert_eq!(bridge.chain.balance(&dana, &Denom::wei())?, DEPOSIT_WEI);
    assert_eq!(bridge.chain.balance(&dana, &token()?)?, 9);
    Ok(())
}

#[test]
fn supply_equals_the_sum_of_balances_and_reserves_follow_mints_across_blocks() -> TestResult {
    let bob = address("bob")?;
    let alice = key("alice")?;
    let genesis_token: u128 = 5_000;
    let mut bridge = Bridge::start_with(vec![
        funded(&alice.address(), &[sat(ALICE_SAT), wei(ALICE_WEI)]),
        funded(&bob, &[Coin::new(genesis_token, token()?)]),
    ])?;
    let (dana, erin) = (address("dana")?, address("erin")?);
    assert_ledgers_match_balances(&bridge.chain)?;
    let sat_deposits =
        [btc(0, 20_000, &dana), DepositFacts { tx_id: OTHER_BTC_TXID.to_owned(), ..btc(3, 30_000, &erin) }];
    let wei_deposit = eth(0, Denom::wei(), DEPOSIT_WEI, &alice.address());
    let token_deposit = eth(1, token()?, DEPOSIT_TOKEN, &bob);

    // Block 1: the first BTC deposit reaches quorum next to an ordinary transfer paying a fee.
    let mut txs = (0..3).map(|index| bridge.attestation_tx(index, &sat_deposits[0])).collect::<TestResult<Vec<_>>>()?;
    txs.push(bridge.alice.transfer(0, &erin, &[sat(1_000)], &sat(100))?);
    assert_eq!(codes(&bridge.chain.execute_block(&txs)?), [TxCode::Ok; 4]);
    assert_ledgers_match_balances(&bridge.chain)?;

    // Block 2: ether and token deposits, two attestations each (pending).
    let txs = [&wei_deposit, &token_deposit]
        .into_iter()
        .flat_map(|facts| (0..2).map(move |index| (index, facts)))
        .map(|(index, facts)| {
            let member = bridge.member(index)?;
            let sequence = bridge.chain.sequence(&member.address)? + u64::from(facts == &token_deposit);
            member.attest(sequence, facts)
        })
        .collect::<TestResult<Vec<_>>>()?;
    assert_eq!(codes(&bridge.chain.execute_block(&txs)?), [TxCode::Ok; 4]);
    assert_ledgers_match_balances(&bridge.chain)?;
    assert_eq!(bridge.ledger(&Denom::wei())?, Some(ledger(ALICE_WEI)));

    // Block 3: one transaction of member 3 carrying the third attestations of both and the first of
    // the second BTC deposit, two more attestations of that deposit, and a wei transfer.
    let member = bridge.member(3)?;
    let duties: Vec<_> =
        [&wei_deposit, &token_deposit, &sat_deposits[1]].map(|facts| attestation(&member.address, facts)).to_vec();
    let mut txs = vec![member.sign_fee_exempt(bridge.chain.sequence(&member.address)?, &duties)?];
    for index in 0..2 {
        txs.push(bridge.attestation_tx(index, &sat_deposits[1])?);
    }
    txs.push(bridge.alice.transfer(1, &dana, &[wei(1_000)], &wei(10_000_000_000))?);
    let results = bridge.chain.execute_block(&txs)?;
    assert_eq!(codes(&results), [TxCode::Ok; 4]);
    let mints: Vec<usize> = results.iter().map(|result| events_of(&result.events, ev::DEPOSIT_MINTED).len()).collect();
    assert_eq!(mints, [2, 0, 1, 0]);
    assert_ledgers_match_balances(&bridge.chain)?;

    let reserves = bridge.chain.reserves()?;
    let assets: Vec<(&str, &AssetLedger)> =
        reserves.assets.iter().map(|(denom, ledger)| (denom.as_str(), ledger)).collect();
    assert_eq!(
        assets,
        [
            (TOKEN, &ledger(genesis_token + DEPOSIT_TOKEN)),
            ("sat", &ledger(ALICE_SAT + 50_000)),
            ("wei", &ledger(ALICE_WEI + DEPOSIT_WEI)),
        ]
    );
    let deposited = deposit_utxos(&reserves);
    let utxos: Vec<(&str, u32, u128)> =
        deposited.iter().map(|utxo| (utxo.txid.as_str(), utxo.vout, utxo.amount.get())).collect();
    assert_eq!(utxos, [(OTHER_BTC_TXID, 3, 30_000), (BTC_TXID, 0, 20_000)]);
    assert_eq!(bridge.chain.balance(&erin, &Denom::sat())?, 31_000);
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, 20_000);
    assert_eq!(bridge.chain.balance(&bob, &token()?)?, genesis_token + DEPOSIT_TOKEN);
    assert_eq!(bridge.chain.balance(&Address::fee_collector(), &Denom::sat())?, 100);

    // More attestations of everything, blocks later: the ledgers do not move.
    for facts in sat_deposits.iter().chain([&wei_deposit, &token_deposit]) {
        let txs = (0..MEMBERS).map(|index| bridge.attestation_tx(index, facts)).collect::<TestResult<Vec<_>>>()?;
        assert_eq!(codes(&bridge.chain.execute_block(&txs)?), [TxCode::Ok; MEMBERS]);
    }
    assert_eq!(bridge.chain.reserves()?, reserves);
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn mint_that_would_overflow_the_recipient_balance_is_refused_and_the_deposit_stays_pending() -> TestResult {
    let whale = address("whale")?;
    let mut bridge = Bridge::start_with(vec![funded(&whale, &[sat(u128::MAX - 10)])])?;
    let facts = btc(1, MIN_SAT, &whale);
    for index in 0..2 {
        assert_eq!(bridge.attest(index, &facts)?.code, TxCode::Ok);
    }

    let refused = [bridge.attest(2, &facts)?, bridge.attest(3, &facts)?];

    for outcome in &refused {
        assert_eq!(outcome.code, TxCode::Overflow);
        assert_eq!(outcome.log, format!("message 0: balance of {whale} in sat would overflow; messages reverted"));
        assert!(events_of(&outcome.events, ev::DEPOSIT_MINTED).is_empty());
    }
    let record = bridge.record(&facts)?;
    assert_eq!((record.status, record.attestations.len()), (DepositStatus::Pending, 2));
    assert_eq!(bridge.chain.balance(&whale, &Denom::sat())?, u128::MAX - 10);
    assert_eq!(bridge.ledger(&Denom::sat())?, Some(ledger(u128::MAX - 10)));
    assert_eq!(deposit_utxos(&bridge.chain.reserves()?), []);
    assert_eq!(bridge.chain.sequence(&bridge.member_address(2)?)?, 1);
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn mint_that_would_overflow_the_supply_is_refused_and_creates_no_account() -> TestResult {
    let whale = address("whale")?;
    let mut bridge = Bridge::start_with(vec![funded(&whale, &[sat(u128::MAX - 10)])])?;
    let dana = address("dana")?;
    let facts = btc(1, MIN_SAT, &dana);

    let outcomes = (0..3).map(|index| bridge.attest(index, &facts)).collect::<TestResult<Vec<_>>>()?;

    assert_eq!(codes(&outcomes), [TxCode::Ok, TxCode::Ok, TxCode::Overflow]);
    let log = outcomes.last().map(|outcome| outcome.log.as_str());
    assert_eq!(log, Some("message 0: sat supply or reserves would overflow; messages reverted"));
    assert_eq!(bridge.chain.account(&dana)?, None);
    assert_eq!(bridge.record(&facts)?.status, DepositStatus::Pending);
    assert_eq!(bridge.ledger(&Denom::sat())?, Some(ledger(u128::MAX - 10)));
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn check_tx_admits_member_attestations_and_refuses_what_a_block_would_refuse() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let facts = btc(1, DEPOSIT_SAT, &dana);
    let first = bridge.attestation_tx(0, &facts)?;

    assert_eq!(bridge.chain.check_tx(&first)?.code, TxCode::Ok);
    assert_eq!(bridge.chain.check_tx(&first)?.code, TxCode::StaleSequence);
    assert_eq!(bridge.chain.check_tx(&bridge.alice.attest(0, &facts)?)?.code, TxCode::Unauthorized);
    let member = bridge.member(1)?.clone();
    let with_fee = member.sign(0, &sat(100), &[attestation(&member.address, &facts)])?;
    assert_eq!(bridge.chain.check_tx(&with_fee)?.code, TxCode::InvalidMessage);
    let others = [bridge.attestation_tx(1, &facts)?, bridge.attestation_tx(2, &facts)?];
    for tx in &others {
        assert_eq!(bridge.chain.check_tx(tx)?.code, TxCode::Ok);
    }
    assert_eq!(bridge.chain.mempool_balance(&dana, &Denom::sat())?, DEPOSIT_SAT);
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, 0);

    let results = bridge.chain.execute_block(&[first, others[0].clone(), others[1].clone()])?;

    assert_eq!(codes(&results), [TxCode::Ok; 3]);
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, DEPOSIT_SAT);
    assert_eq!(bridge.record(&facts)?.minted_height, Some(1));
    Ok(())
}

#[test]
fn deposit_query_refuses_malformed_ids_and_reports_unattested_deposits_as_not_found() -> TestResult {
    let bridge = Bridge::start()?;
    let id: DepositId = format!("eth:{ETH_TX}:4").parse()?;

    let unknown = bridge.chain.query(&format!("{DEPOSIT_PATH}{id}"))?;
    let malformed = bridge.chain.query(&format!("{DEPOSIT_PATH}btc:{}:1", BTC_TXID.to_uppercase()))?;

    assert_eq!(
        (unknown.code, unknown.log.as_str()),
        (QUERY_NOT_FOUND, format!("no attestation of deposit {id} yet").as_str())
    );
    assert_eq!(malformed.code, QUERY_BAD_REQUEST);
    assert!(malformed.log.contains("is not a deposit id"), "{}", malformed.log);
    Ok(())
}

#[test]
fn genesis_gives_members_empty_accounts_and_the_federation_query_lists_them() -> TestResult {
    let bridge = Bridge::start()?;
    let members: Vec<Address> = bridge.members.iter().map(|member| member.address).collect();

    let answer = bridge.chain.query(FEDERATION_PATH)?;

    assert_eq!(answer.code, QUERY_OK, "{}", answer.log);
    let federation: Federation = serde_json::from_slice(&answer.value)?;
    assert_eq!(federation, Federation { members: members.clone(), attest_quorum: QUORUM, ..Federation::default() });
    assert_eq!(bridge.chain.account(&bridge.alice.address)?.map(|account| account.account_number), Some(0));
    for (number, member) in (1u64..).zip(&members) {
        let account = bridge.chain.account(member)?.ok_or("member has no account")?;
        assert_eq!((account.account_number, account.sequence, account.public_key), (number, 0, None));
        assert!(
            bridge
                .chain
                .committed()
                .accounts()?
                .iter()
                .any(|(address, record)| address == member && record.balances.is_empty())
        );
    }
    let reserves = bridge.chain.reserves()?;
    let assets: Vec<(&str, &AssetLedger)> =
        reserves.assets.iter().map(|(denom, ledger)| (denom.as_str(), ledger)).collect();
    assert_eq!(assets, [("sat", &ledger(ALICE_SAT)), ("wei", &ledger(ALICE_WEI))]);
    assert_eq!(deposit_utxos(&reserves), []);
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn genesis_refuses_a_quorum_a_minority_could_reach_or_the_members_cannot() -> TestResult {
    let keys = member_keys()?;
    let addresses: Vec<Address> = keys.iter().map(AccountKey::address).collect();
    let of = |count: usize| addresses.iter().take(count).copied().collect::<Vec<_>>();
    let refusal =
        |members: &[Address], quorum: u32| ferry_app::init_chain(&federation_genesis(&[], members, quorum)).err();

    assert_eq!(refusal(&of(4), 2), Some(GenesisError::BadQuorum { quorum: 2, members: 4 }));
    assert_eq!(refusal(&of(4), 5), Some(GenesisError::BadQuorum { quorum: 5, members: 4 }));
    assert_eq!(refusal(&of(4), 0), Some(GenesisError::BadQuorum { quorum: 0, members: 4 }));
    assert_eq!(refusal(&of(3), 1), Some(GenesisError::BadQuorum { quorum: 1, members: 3 }));
    let twice = [of(3), of(1)].concat();
    let first = *addresses.first().ok_or("no member")?;
    assert_eq!(refusal(&twice, 3), Some(GenesisError::DuplicateMember(first)));
    for (count, quorum) in [(4, 3), (4, 4), (3, 2), (1, 1), (0, 0)] {
        assert_eq!(refusal(&of(count), quorum), None, "{quorum} of {count}");
    }
    Ok(())
}

#[test]
fn a_member_opening_more_undecided_records_than_its_limit_is_refused_until_they_are_decided() -> TestResult {
    let alice = key("alice")?;
    let accounts = vec![funded(&alice.address(), &[sat(ALICE_SAT), wei(ALICE_WEI)])];
    let mut bridge = Bridge::start_configured(accounts, |params| params.max_open_deposits_per_member = 2)?;
    let dana = address("dana")?;
    let (first, second, third) = (btc(0, DEPOSIT_SAT, &dana), btc(1, DEPOSIT_SAT, &dana), btc(2, DEPOSIT_SAT, &dana));
    for facts in [&first, &second] {
        assert_eq!(bridge.attest(0, facts)?.code, TxCode::Ok);
    }
    // A third id member 0 alone vouches for: refused, nothing stored.
    let refused = bridge.attest(0, &third)?;
    assert_eq!(refused.code, TxCode::DutyLimit, "{}", refused.log);
    assert!(refused.log.contains("at most 2 (params.max_open_deposits_per_member)"), "{}", refused.log);
    assert_eq!(bridge.chain.deposit(&third.id())?, None);
    // Another member may still open it; member 0 may attest records it did not open.
    assert_eq!(bridge.attest(1, &third)?.code, TxCode::Ok);
    assert_eq!(bridge.attest(0, &third)?.code, TxCode::Ok);
    // Once a quorum decides one of member 0's records, it may open another.
    for index in 1..3 {
        assert_eq!(bridge.attest(index, &first)?.code, TxCode::Ok);
    }
    assert_eq!(bridge.record(&first)?.status, DepositStatus::Minted);
    assert_eq!(bridge.attest(0, &btc(3, DEPOSIT_SAT, &dana))?.code, TxCode::Ok);
    assert_eq!(bridge.attest(0, &btc(4, DEPOSIT_SAT, &dana))?.code, TxCode::DutyLimit);
    Ok(())
}

#[test]
fn a_deposit_of_an_unlisted_token_is_recorded_never_minted_and_creates_no_denomination() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let unlisted: Denom = "erc20/0x00000000000000000000000000000000000000cd".parse()?;
    assert!(!ferry_types::Params::default().lists(&unlisted));
    let facts = eth(5, unlisted.clone(), 9_000, &dana);
    let mut last = Vec::new();
    for index in 0..3 {
        last = bridge.attest(index, &facts)?.events;
    }
    let event = only_event(&last, ev::DEPOSIT_UNLISTED)?;
    assert!(event.get(ev::REASON).is_some_and(|reason| reason.contains("not listed")), "{event:?}");
    assert!(events_of(&last, ev::DEPOSIT_MINTED).is_empty());
    assert_eq!(bridge.record(&facts)?.status, DepositStatus::Unlisted);
    assert!(events_of(&bridge.attest(3, &facts)?.events, ev::DEPOSIT_MINTED).is_empty(), "never later");
    assert_eq!(bridge.chain.balance(&dana, &unlisted)?, 0);
    assert_eq!(bridge.ledger(&unlisted)?, None, "no ledger: no denomination to iterate");
    assert_ledgers_match_balances(&bridge.chain)
}

#[test]
fn a_deposit_below_the_minimum_is_recorded_never_minted_and_counted_apart_from_the_reserves() -> TestResult {
    let mut bridge = Bridge::start()?;
    let dana = address("dana")?;
    let minimum = ferry_types::Params::default().deposits.min_deposit(&Denom::sat()).get();
    assert_eq!(minimum, MIN_SAT);
    let dust = btc(3, 546, &dana);
    let just_enough = btc(4, minimum, &dana);
    let before = bridge.ledger(&Denom::sat())?.unwrap_or_default();
    let mut last = Vec::new();
    for index in 0..3 {
        last = bridge.attest(index, &dust)?.events;
    }
    let rejected = only_event(&last, ev::DEPOSIT_BELOW_MINIMUM)?;
    assert_eq!(rejected.get(ev::AMOUNT).copied(), Some("546sat"), "{rejected:?}");
    assert!(events_of(&last, ev::DEPOSIT_MINTED).is_empty());
    let record = bridge.record(&dust)?;
    assert_eq!((record.status, record.minted_height), (DepositStatus::BelowMinimum, None));
    // A fourth attestation changes nothing: never minted later either.
    assert!(events_of(&bridge.attest(3, &dust)?.events, ev::DEPOSIT_MINTED).is_empty());
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, 0);
    let after = bridge.ledger(&Denom::sat())?.unwrap_or_default();
    assert_eq!((after.supply, after.reserves), (before.supply, before.reserves), "neither minted nor reserves");
    assert_eq!(after.below_minimum.get(), 546, "counted apart");
    assert!(deposit_utxos(&bridge.chain.reserves()?).is_empty(), "never coin-selected");

    // Exactly the minimum mints.
    for index in 0..3 {
        bridge.attest(index, &just_enough)?;
    }
    assert_eq!(bridge.record(&just_enough)?.status, DepositStatus::Minted);
    assert_eq!(bridge.chain.balance(&dana, &Denom::sat())?, minimum);
    Ok(())
}

#[test]
fn deposit_address_registrations_are_bounded_per_block_and_refused_beyond_without_a_trace() -> TestResult {
    let mut genesis = driver::genesis(&[]);
    genesis.params.max_deposit_address_registrations_per_block = 2;
    let mut chain = Chain::start(&genesis)?;
    let registration = |seed: &str| -> TestResult<(Address, Vec<u8>)> {
        let key = driver::key(seed)?;
        let account = key.address();
        let msg = ferry_types::Msg::RegisterDepositAddress(ferry_types::msg::MsgRegisterDepositAddress { account });
        Ok((account, driver::Signer::new(key, chain.chain_id(), 0).sign_fee_exempt(0, &[msg])?))
    };
    let (first, second, third) = (registration("r1")?, registration("r2")?, registration("r3")?);
    let results = chain.execute_block(&[&first.1, &second.1, &third.1])?;
    assert_eq!(codes(&results), [TxCode::Ok, TxCode::Ok, TxCode::DutyLimit], "{results:?}");
    let full = results.last().map(|result| result.log.clone()).unwrap_or_default();
    assert!(full.contains("max_deposit_address_registrations_per_block"), "{full}");
    // The refused one opened nothing and can come again in the next block.
    assert!(chain.account(&third.0)?.is_none());
    let results = chain.execute_block(&[&third.1])?;
    assert_eq!(codes(&results), [TxCode::Ok], "{results:?}");
    assert!(chain.account(&third.0)?.is_some());
    Ok(())
}

#[test]
fn a_quorum_attesting_an_output_that_is_already_a_reserve_never_counts_it_twice() -> TestResult {
    let mut bridge = Bridge::start()?;
    // Alice's holding is backed by reserve UTXO FUNDING_TXID:0, which no deposit record names
    // (like a release's change): attested as a payment, it must not be counted again.
    let before = bridge.chain.reserves()?;
    let mut facts = btc(0, ALICE_SAT, &Address::unattributed_pool());
    facts.tx_id = driver::FUNDING_TXID.to_owned();
    facts.unattributed = Some(ferry_types::deposit::Unattributed::NoMemo);
    let outcomes = (0..3).map(|index| bridge.attest(index, &facts)).collect::<TestResult<Vec<_>>>()?;
    assert_eq!(codes(&outcomes), [TxCode::Ok, TxCode::Ok, TxCode::InvalidMessage], "{outcomes:?}");
    assert!(outcomes[2].log.contains("already a reserve output"), "{}", outcomes[2].log);
    assert_eq!(bridge.chain.reserves()?, before, "nothing counted twice");
    Ok(())
}
