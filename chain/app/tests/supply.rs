//! Accounting invariants under random traffic: whatever transfers are tried (unaffordable
//! amounts, fees below the minimum, stale and future sequences, new recipients, unfunded
//! signers), every block conserves the supply of each denomination, events account for every
//! balance change, and executing the same blocks again from the same genesis writes exactly the
//! same state.

mod driver;

use std::collections::{BTreeMap, BTreeSet};

use driver::{CHAIN_ID, Chain, MemoryState, Signer, TestResult, default_min_fee, funded, genesis, key};
use ferry_app::{BlockOutcome, Event};
use ferry_types::event as ev;
use ferry_types::{AccountKey, Address, Coin, Denom, TxCode};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};

/// Keys that hold no genesis account; transfers may create their accounts, after which they can sign.
const FRESH_KEYS: usize = 3;
const MAX_SAT: u128 = 2_000_000;
const MAX_WEI: u128 = 100_000_000_000_000;

/// Opening balances of one genesis account.
#[derive(Clone, Copy, Debug)]
struct Opening {
    sat: u128,
    wei: u128,
}

#[derive(Clone, Copy, Debug)]
enum Sender {
    Holder(Index),
    Fresh(usize),
}

#[derive(Clone, Copy, Debug)]
enum Recipient {
    Account(Index),
    Fresh(usize),
    FeeCollector,
}

#[derive(Clone, Copy, Debug)]
enum SequenceChoice {
    Next,
    Stale,
    Future,
}

/// A transfer to attempt; senders and recipients are resolved against the key pool at run time.
#[derive(Clone, Debug)]
struct PlannedTransfer {
    sender: Sender,
    recipient: Recipient,
    sat: Option<u128>,
    wei: Option<u128>,
    /// Pay the fee in a denomination the transfer moves (else in one it does not, when there is one).
    fee_in_moved_denom: bool,
    /// Among the candidate fee denominations, prefer wei.
    fee_prefers_wei: bool,
    /// The fee as a percentage of the minimum in its denomination (below 100 is too little).
    fee_percent: u128,
    sequence: SequenceChoice,
}

#[derive(Clone, Debug)]
struct Scenario {
    openings: Vec<Opening>,
    blocks: Vec<Vec<PlannedTransfer>>,
}

fn opening() -> impl Strategy<Value = Opening> {
    let sat = prop_oneof![1 => Just(0u128), 4 => 1..=MAX_SAT];
    let wei = prop_oneof![1 => Just(0u128), 4 => 1..=MAX_WEI];
    (sat, wei).prop_map(|(sat, wei)| Opening { sat, wei })
}

fn planned_transfer() -> impl Strategy<Value = PlannedTransfer> {
    let sender = prop_oneof![
        8 => any::<Index>().prop_map(Sender::Holder),
        1 => (0..FRESH_KEYS).prop_map(Sender::Fresh),
    ];
    let recipient = prop_oneof![
        6 => any::<Index>().prop_map(Recipient::Account),
        2 => (0..FRESH_KEYS).prop_map(Recipient::Fresh),
        1 => Just(Recipient::FeeCollector),
    ];
    // Mostly affordable amounts, sometimes past the largest opening balance.
    let sat = prop_oneof![3 => 1..=MAX_SAT / 4, 1 => 1..=MAX_SAT * 5 / 4];
    let wei = prop_oneof![3 => 1..=MAX_WEI / 4, 1 => 1..=MAX_WEI * 5 / 4];
    let coins = prop_oneof![
        2 => sat.clone().prop_map(|sat| (Some(sat), None)),
        2 => wei.clone().prop_map(|wei| (None, Some(wei))),
        1 => (sat, wei).prop_map(|(sat, wei)| (Some(sat), Some(wei))),
    ];
    let fee_in_moved_denom = prop_oneof![9 => Just(true), 1 => Just(false)];
    let fee_percent = prop_oneof![5 => 100u128..=300, 1 => 50u128..100];
    let sequence = prop_oneof![
        8 => Just(SequenceChoice::Next),
        1 => Just(SequenceChoice::Stale),
        1 => Just(SequenceChoice::Future),
    ];
    (sender, recipient, coins, fee_in_moved_denom, any::<bool>(), fee_percent, sequence).prop_map(
        |(sender, recipient, (sat, wei), fee_in_moved_denom, fee_prefers_wei, fee_percent, sequence)| PlannedTransfer {
            sender,
            recipient,
            sat,
            wei,
            fee_in_moved_denom,
            fee_prefers_wei,
            fee_percent,
            sequence,
        },
    )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let openings = prop::collection::vec(opening(), 3..=8);
    let blocks = prop::collection::vec(prop::collection::vec(planned_transfer(), 0..=6), 1..=6);
    (openings, blocks).prop_map(|(openings, blocks)| Scenario { openings, blocks })
}

/// The genesis key pool (one key per opening) followed by the fresh keys.
fn key_pool(scenario: &Scenario) -> TestResult<(Vec<AccountKey>, Vec<AccountKey>)> {
    let holders =
        (0..scenario.openings.len()).map(|index| key(&format!("holder-{index}"))).collect::<TestResult<Vec<_>>>()?;
    let fresh = (0..FRESH_KEYS).map(|index| key(&format!("fresh-{index}"))).collect::<TestResult<Vec<_>>>()?;
    Ok((holders, fresh))
}

fn start(scenario: &Scenario, holders: &[AccountKey]) -> TestResult<Chain> {
    let accounts = holders
        .iter()
        .zip(&scenario.openings)
        .map(|(holder, opening)| {
            let coins: Vec<Coin> = [(opening.sat, Denom::sat()), (opening.wei, Denom::wei())]
                .into_iter()
                .filter(|(amount, _)| *amount > 0)
                .map(|(amount, denom)| Coin::new(amount, denom))
                .collect();
            funded(&holder.address(), &coins)
        })
        .collect::<Vec<_>>();
    Chain::start_funded(&genesis(&accounts), &accounts)
}

/// Signs `planned` against the committed state of `chain`; `pending` counts the transactions of
/// each sender already signed with the next sequence in the block being built.
fn sign(
    chain: &Chain,
    holders: &[AccountKey],
    fresh: &[AccountKey],
    planned: &PlannedTransfer,
    pending: &mut BTreeMap<Address, u64>,
) -> TestResult<Vec<u8>> {
    let sender = sender_key(holders, fresh, planned.sender)?;
    let recipient = match planned.recipient {
        Recipient::Account(index) => {
            holders.get(index.index(holders.len())).ok_or("recipient index out of range")?.address()
        }
        Recipient::Fresh(index) => fresh.get(index).ok_or("fresh index out of range")?.address(),
        Recipient::FeeCollector => Address::fee_collector(),
    };
    // A sender without a committed account signs with number 0, which belongs to another
    // account: its transaction is refused (unknown account, or a bad signature if a transfer
    // earlier in the block created the account).
    let (account_number, committed_sequence) =
        chain.account(&sender.address())?.map_or((0, 0), |account| (account.account_number, account.sequence));
    let in_block = pending.entry(sender.address()).or_insert(0);
    let next = committed_sequence + *in_block;
    let sequence = match planned.sequence {
        SequenceChoice::Next => {
            *in_block += 1;
            next
        }
        SequenceChoice::Stale => next.checked_sub(1).unwrap_or(next + 2),
        SequenceChoice::Future => next + 2,
    };
    let mut coins = Vec::new();
    if let Some(sat) = planned.sat {
        coins.push(Coin::new(sat, Denom::sat()));
    }
    if let Some(wei) = planned.wei {
        coins.push(Coin::new(wei, Denom::wei()));
    }
    let moved: Vec<Denom> = coins.iter().map(|coin| coin.denom.clone()).collect();
    let candidates: Vec<Denom> = [Denom::sat(), Denom::wei()]
        .into_iter()
        .filter(|denom| moved.contains(denom) == planned.fee_in_moved_denom)
        .collect();
    let candidates = if candidates.is_empty() { moved } else { candidates };
    let fee_denom = match candidates.as_slice() {
        [only] => only.clone(),
        _ if planned.fee_prefers_wei => Denom::wei(),
        _ => Denom::sat(),
    };
    let fee = Coin::new(default_min_fee(&fee_denom)?.get() * planned.fee_percent / 100, fee_denom);
    Signer::new(sender.clone(), CHAIN_ID, account_number).transfer(sequence, &recipient, &coins, &fee)
}

fn sender_key<'a>(holders: &'a [AccountKey], fresh: &'a [AccountKey], sender: Sender) -> TestResult<&'a AccountKey> {
    let key = match sender {
        Sender::Holder(index) => holders.get(index.index(holders.len())),
        Sender::Fresh(index) => fresh.get(index),
    };
    Ok(key.ok_or("sender index out of range")?)
}

/// Every (address, denom) balance in `state`.
fn balances(state: &MemoryState) -> TestResult<BTreeMap<(Address, Denom), i128>> {
    let mut balances = BTreeMap::new();
    for (address, record) in state.accounts()? {
        for (denom, amount) in record.balances {
            balances.insert((address, denom), i128::try_from(amount.get())?);
        }
    }
    Ok(balances)
}

/// The balance changes the events of `events` announce.
fn announced_changes(events: &[Event], changes: &mut BTreeMap<(Address, Denom), i128>) -> TestResult {
    for event in events {
        let attributes = driver::attributes(event);
        let attribute =
            |name: &str| attributes.get(name).copied().ok_or_else(|| format!("{} event lacks `{name}`", event.kind));
        let (from, to) = match event.kind {
            ev::FEE => (attribute(ev::PAYER)?.parse()?, Address::fee_collector()),
            ev::TRANSFER => (attribute(ev::SENDER)?.parse()?, attribute(ev::RECIPIENT)?.parse()?),
            _ => continue,
        };
        let coin: Coin = attribute(ev::AMOUNT)?.parse()?;
        let amount = i128::try_from(coin.amount.get())?;
        *changes.entry((from, coin.denom.clone())).or_insert(0) -= amount;
        *changes.entry((to, coin.denom)).or_insert(0) += amount;
    }
    changes.retain(|_, change| *change != 0);
    Ok(())
}

/// Checks the invariants that must hold after every block.
fn check_block(
    before: &MemoryState,
    after: &MemoryState,
    outcome: &BlockOutcome,
    opening_supply: &[(Denom, u128)],
) -> TestResult {
    for (denom, supply) in opening_supply {
        let now = after.supply(denom)?;
        if now != *supply {
            return Err(format!("supply of {denom} went from {supply} to {now}").into());
        }
    }

    let (old, new) = (balances(before)?, balances(after)?);
    let keys: BTreeSet<&(Address, Denom)> = old.keys().chain(new.keys()).collect();
    let mut actual = BTreeMap::new();
    for key in keys {
        let change = new.get(key).copied().unwrap_or(0) - old.get(key).copied().unwrap_or(0);
        if change != 0 {
            actual.insert(key.clone(), change);
        }
    }
    let mut announced = BTreeMap::new();
    for result in &outcome.tx_results {
        announced_changes(&result.events, &mut announced)?;
    }
    if actual != announced {
        return Err(format!("balances changed by {actual:?}, events announced {announced:?}").into());
    }

    let mut numbers = BTreeSet::new();
    for (address, record) in after.accounts()? {
        if !numbers.insert(record.account_number) {
            return Err(format!("account number {} is assigned twice ({address})", record.account_number).into());
        }
        if let Some((denom, _)) = record.balances.iter().find(|(_, amount)| amount.is_zero()) {
            return Err(format!("{address} stores a zero balance of {denom}").into());
        }
    }
    Ok(())
}

/// The blocks a scenario signed, and what each produced.
struct Run {
    blocks: Vec<Vec<Vec<u8>>>,
    outcomes: Vec<BlockOutcome>,
    final_state: MemoryState,
}

/// Signs and executes `scenario` block by block, checking the invariants after every block.
fn run(scenario: &Scenario) -> TestResult<Run> {
    let (holders, fresh) = key_pool(scenario)?;
    let mut chain = start(scenario, &holders)?;
    let opening_supply = vec![
        (Denom::sat(), scenario.openings.iter().map(|opening| opening.sat).sum::<u128>()),
        (Denom::wei(), scenario.openings.iter().map(|opening| opening.wei).sum::<u128>()),
    ];
    let mut run = Run { blocks: Vec::new(), outcomes: Vec::new(), final_state: MemoryState::default() };
    for planned_block in &scenario.blocks {
        let mut pending = BTreeMap::new();
        let mut txs = Vec::new();
        let mut signer_known = Vec::new();
        for planned in planned_block {
            let sender = sender_key(&holders, &fresh, planned.sender)?;
            signer_known.push(chain.account(&sender.address())?.is_some());
            txs.push(sign(&chain, &holders, &fresh, planned, &mut pending)?);
        }
        let before = chain.committed().clone();
        let outcome = chain.finalize_block(&txs)?;
        check_block(&before, chain.committed(), &outcome, &opening_supply)?;
        for ((result, known), planned) in outcome.tx_results.iter().zip(&signer_known).zip(planned_block) {
            let expected: &[TxCode] = if *known {
                &[
                    TxCode::Ok,
                    TxCode::InsufficientFee,
                    TxCode::InsufficientFunds,
                    TxCode::StaleSequence,
                    TxCode::FutureSequence,
                ]
            } else {
                &[
                    TxCode::UnknownAccount,
                    TxCode::InvalidSignature,
                    TxCode::InsufficientFee,
                    TxCode::StaleSequence,
                    TxCode::FutureSequence,
                ]
            };
            if !expected.contains(&result.code) {
                return Err(format!("{planned:?} was refused with {:?}: {}", result.code, result.log).into());
            }
        }
        run.blocks.push(txs);
        run.outcomes.push(outcome);
    }
    run.final_state = chain.committed().clone();
    Ok(run)
}

fn fail(error: driver::TestError) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_transfers_conserve_supply_and_match_their_events(scenario in scenario()) {
        run(&scenario).map_err(fail)?;
    }

    #[test]
    fn same_blocks_from_same_genesis_write_identical_changes(scenario in scenario()) {
        let first = run(&scenario).map_err(fail)?;
        let (holders, _) = key_pool(&scenario).map_err(fail)?;
        // The replay verifies signatures on one thread, the first run on rayon's global pool.
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
        one_thread.install(|| {
            let mut replay = start(&scenario, &holders).map_err(fail)?;
            for (height, (txs, expected)) in first.blocks.iter().zip(&first.outcomes).enumerate() {
                let again = replay.finalize_block(txs).map_err(fail)?;
                prop_assert_eq!(&again.changes, &expected.changes, "change set of block {}", height + 1);
                prop_assert_eq!(&again.tx_results, &expected.tx_results, "results of block {}", height + 1);
            }
            prop_assert_eq!(replay.committed(), &first.final_state);
            Ok(())
        })?;
    }
}

/// Guards against a generator that only ever produces refusals (or only successes): over a fixed
/// sample of scenarios, the random traffic reaches success and every refusal it is meant to.
#[test]
fn random_traffic_reaches_success_and_each_intended_refusal() -> TestResult {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario();
    let mut seen = BTreeMap::new();
    for _ in 0..16 {
        let scenario = strategy.new_tree(&mut runner).map_err(|reason| reason.to_string())?.current();
        for outcome in run(&scenario)?.outcomes {
            for result in outcome.tx_results {
                *seen.entry(result.code).or_insert(0u32) += 1;
            }
        }
    }
    for code in [
        TxCode::Ok,
        TxCode::InsufficientFee,
        TxCode::InsufficientFunds,
        TxCode::StaleSequence,
        TxCode::FutureSequence,
        TxCode::UnknownAccount,
    ] {
        assert!(seen.get(&code).copied().unwrap_or(0) > 0, "{code:?} never seen: {seen:?}");
    }
    assert!(seen.get(&TxCode::Ok).copied().unwrap_or(0) >= 40, "too few successes: {seen:?}");
    Ok(())
}
