//! Transaction validation and the bank, driven through the in-process driver: every response code
//! up to `Overflow` (the bridge's later codes are reached in `withdrawals.rs`), fees, sequences,
//! account creation, events and queries at past heights.

mod driver;

use driver::{
    CHAIN_ID, Chain, Holding, Signer, TestResult, attributes, events_of, funded, genesis, key, sat, send, wei,
};
use ferry_app::query::QueryAnswer;
use ferry_app::{Event, TxOutcome};
use ferry_types::event as ev;
use ferry_types::genesis::Federation;
use ferry_types::query::{ACCOUNT_PATH, PARAMS_PATH, QUERY_BAD_HEIGHT, QUERY_BAD_REQUEST, QUERY_NOT_FOUND, QUERY_OK};
use ferry_types::{Address, Coin, Denom, DepositFacts, Params, ParentChain, TxCode};

const ALICE_SAT: u128 = 1_000_000;
const ALICE_WEI: u128 = 1_000_000_000_000_000_000;
const BOB_SAT: u128 = 500_000;
const CAROL_SAT: u128 = 50;
const MIN_SAT_FEE: u128 = 100;
const MIN_WEI_FEE: u128 = 10_000_000_000;
/// Account number the fee collector receives when the first fee creates it (after the three
/// genesis accounts of [`Bank`]).
const COLLECTOR_NUMBER: u64 = 3;
/// An ERC-20 denomination no fee schedule covers.
const TOKEN: &str = "erc20/0x00000000000000000000000000000000000000ab";

/// A chain whose genesis funds alice (account 0), bob (1) and carol (2, too poor for a fee).
struct Bank {
    chain: Chain,
    alice: Signer,
    bob: Signer,
    carol: Signer,
}

impl Bank {
    fn start() -> TestResult<Bank> {
        Bank::start_with(Vec::new(), Params::default())
    }

    /// The standard accounts, then `extra` accounts (numbered from 3), under `params`.
    fn start_with(extra: Vec<Holding>, params: Params) -> TestResult<Bank> {
        Bank::start_with_federation(extra, params, Federation::default())
    }

    /// As [`Bank::start_with`], with `federation` (its members' accounts follow `extra`).
    fn start_with_federation(extra: Vec<Holding>, params: Params, federation: Federation) -> TestResult<Bank> {
        let (alice, bob, carol) = (key("alice")?, key("bob")?, key("carol")?);
        let mut accounts = vec![
            funded(&alice.address(), &[sat(ALICE_SAT), wei(ALICE_WEI)]),
            funded(&bob.address(), &[sat(BOB_SAT)]),
            funded(&carol.address(), &[sat(CAROL_SAT)]),
        ];
        accounts.extend(extra);
        let mut state = genesis(&accounts);
        state.params = params;
        state.federation = federation;
        let chain = Chain::start_funded(&state, &accounts)?;
        Ok(Bank { alice: chain.signer(&alice)?, bob: chain.signer(&bob)?, carol: chain.signer(&carol)?, chain })
    }

    fn sat_of(&self, address: &Address) -> TestResult<u128> {
        self.chain.balance(address, &Denom::sat())
    }

    fn sequence_of(&self, address: &Address) -> TestResult<u64> {
        let account = self.chain.account(address)?.ok_or_else(|| format!("{address} has no account"))?;
        Ok(account.sequence)
    }

    /// Runs `tx` alone in the next block and returns its outcome.
    fn execute_one(&mut self, tx: &[u8]) -> TestResult<TxOutcome> {
        let mut results = self.chain.execute_block(&[tx])?;
        match (results.pop(), results.is_empty()) {
            (Some(outcome), true) => Ok(outcome),
            _ => Err("a one-transaction block did not return exactly one result".into()),
        }
    }
}

fn codes(results: &[TxOutcome]) -> Vec<TxCode> {
    results.iter().map(|result| result.code).collect()
}

fn collector() -> Address {
    Address::fee_collector()
}

/// `bytes` with the only occurrence of `from` replaced by `to` (same length).
fn replace_unique(bytes: &[u8], from: &[u8], to: &[u8]) -> TestResult<Vec<u8>> {
    if from.len() != to.len() {
        return Err("replacement must keep the length".into());
    }
    let positions: Vec<usize> =
        bytes.windows(from.len()).enumerate().filter(|(_, window)| *window == from).map(|(at, _)| at).collect();
    let [at] = positions.as_slice() else {
        return Err(format!("{:?} occurs {} times", String::from_utf8_lossy(from), positions.len()).into());
    };
    let mut tampered = bytes.to_vec();
    tampered.get_mut(*at..*at + from.len()).ok_or("replacement out of range")?.copy_from_slice(to);
    Ok(tampered)
}

#[test]
fn genesis_numbers_accounts_in_genesis_order_from_zero() -> TestResult {
    let bank = Bank::start()?;
    for (signer, number) in [(&bank.alice, 0), (&bank.bob, 1), (&bank.carol, 2)] {
        let account = bank.chain.account(&signer.address)?.ok_or("genesis account missing")?;
        assert_eq!(account.account_number, number, "{}", signer.address);
        assert_eq!(account.sequence, 0);
        assert_eq!(account.public_key, None);
    }
    assert_eq!(bank.chain.account(&collector())?, None);
    assert_eq!(bank.chain.genesis_events(), [Event::new(ev::GENESIS, [(ev::ACCOUNTS, "3".to_owned())])]);
    Ok(())
}

#[test]
fn transfer_moves_funds_and_charges_the_fee_to_the_fee_collector() -> TestResult {
    let mut bank = Bank::start()?;
    let tx = bank.alice.transfer(0, &bank.bob.address, &[sat(250_000)], &sat(100))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!((outcome.code, outcome.log.as_str()), (TxCode::Ok, ""));
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT - 250_000 - 100);
    assert_eq!(bank.sat_of(&bank.bob.address)?, BOB_SAT + 250_000);
    assert_eq!(bank.sat_of(&collector())?, 100);
    assert_eq!(bank.chain.balance(&bank.alice.address, &Denom::wei())?, ALICE_WEI);
    let alice = bank.chain.account(&bank.alice.address)?.ok_or("alice vanished")?;
    assert_eq!(alice.sequence, 1);
    assert_eq!(alice.public_key, Some(hex::encode(bank.alice.key.public_key_bytes())));
    assert_eq!(bank.sequence_of(&bank.bob.address)?, 0, "receiving must not advance the sequence");
    assert_eq!(bank.chain.committed().supply(&Denom::sat())?, ALICE_SAT + BOB_SAT + CAROL_SAT);
    Ok(())
}

#[test]
fn transfer_to_self_costs_only_the_fee() -> TestResult {
    let mut bank = Bank::start()?;
    let tx = bank.alice.transfer(0, &bank.alice.address, &[sat(400_000)], &sat(120))?;

    assert_eq!(bank.execute_one(&tx)?.code, TxCode::Ok);
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT - 120);
    assert_eq!(bank.sat_of(&collector())?, 120);
    Ok(())
}

#[test]
fn replayed_and_reused_sequences_are_refused_as_stale() -> TestResult {
    let mut bank = Bank::start()?;
    let first = bank.alice.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    assert_eq!(bank.execute_one(&first)?.code, TxCode::Ok);
    let reused = bank.alice.transfer(0, &bank.carol.address, &[sat(7_000)], &sat(100))?;

    let results = bank.chain.execute_block(&[first.clone(), reused])?;

    assert_eq!(codes(&results), [TxCode::StaleSequence, TxCode::StaleSequence]);
    let expected = format!("sequence 0 of {} was already used; next is 1", bank.alice.address);
    assert!(results.iter().all(|result| result.log == expected), "{results:?}");
    assert!(results.iter().all(|result| result.events.is_empty()));
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT - 1_100);
    assert_eq!(bank.sat_of(&bank.carol.address)?, CAROL_SAT);
    assert_eq!(bank.sat_of(&collector())?, 100);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 1);
    assert_eq!(bank.chain.check_tx(&first)?.code, TxCode::StaleSequence);
    Ok(())
}

#[test]
fn future_sequence_is_refused_without_charging_the_fee() -> TestResult {
    let mut bank = Bank::start()?;
    let tx = bank.alice.transfer(2, &bank.bob.address, &[sat(1_000)], &sat(100))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::FutureSequence);
    assert_eq!(outcome.log, format!("sequence 2 of {} is ahead; next is 0", bank.alice.address));
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 0);
    assert_eq!(bank.chain.account(&collector())?, None);
    assert_eq!(bank.chain.check_tx(&tx)?.code, TxCode::FutureSequence);
    Ok(())
}

#[test]
fn transaction_signed_for_another_chain_is_refused_as_wrong_chain_id() -> TestResult {
    let mut bank = Bank::start()?;
    let elsewhere = Signer::new(bank.alice.key.clone(), "other-chain-7", 0);
    let tx = elsewhere.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::WrongChainId);
    assert_eq!(outcome.log, format!("transaction is for chain `other-chain-7`, this is `{CHAIN_ID}`"));
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 0);
    assert_eq!(bank.chain.check_tx(&tx)?.code, TxCode::WrongChainId);
    Ok(())
}

#[test]
fn signature_over_another_account_number_is_invalid() -> TestResult {
    let mut bank = Bank::start()?;
    // Bob's account number: a signature for the right chain but the wrong account.
    let misnumbered = Signer::new(bank.alice.key.clone(), CHAIN_ID, 1);
    let tx = misnumbered.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::InvalidSignature);
    assert_eq!(
        outcome.log,
        format!(
            "signature of {} does not verify for chain `{CHAIN_ID}`, account number 0, sequence 0",
            bank.alice.address
        )
    );
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 0);
    assert_eq!(bank.chain.check_tx(&tx)?.code, TxCode::InvalidSignature);
    Ok(())
}

#[test]
fn tampered_amount_or_fee_breaks_the_signature() -> TestResult {
    let mut bank = Bank::start()?;
    let tx = bank.alice.transfer(0, &bank.bob.address, &[sat(250_000)], &sat(137))?;
    let bigger_amount = replace_unique(&tx, b"250000", b"950000")?;
    let smaller_fee = replace_unique(&tx, b"137", b"101")?;

    let results = bank.chain.execute_block(&[bigger_amount.clone(), smaller_fee.clone()])?;

    assert_eq!(codes(&results), [TxCode::InvalidSignature, TxCode::InvalidSignature]);
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT);
    assert_eq!(bank.sat_of(&bank.bob.address)?, BOB_SAT);
    assert_eq!(bank.chain.check_tx(&bigger_amount)?.code, TxCode::InvalidSignature);
    assert_eq!(bank.chain.check_tx(&smaller_fee)?.code, TxCode::InvalidSignature);
    // The untouched original still goes through: the refusals consumed nothing.
    assert_eq!(bank.execute_one(&tx)?.code, TxCode::Ok);
    assert_eq!(bank.sat_of(&bank.bob.address)?, BOB_SAT + 250_000);
    Ok(())
}

#[test]
fn bytes_that_are_not_a_transaction_are_a_decode_error() -> TestResult {
    let mut bank = Bank::start()?;
    let tx = bank.alice.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    let truncated = tx.get(..tx.len() - 10).ok_or("transaction too short")?.to_vec();
    let garbage = vec![0xff, 0xff, 0xff];

    let results = bank.chain.execute_block(&[truncated.clone(), garbage.clone()])?;

    assert_eq!(codes(&results), [TxCode::Decode, TxCode::Decode]);
    assert!(results.iter().all(|result| result.log.contains("TxRaw does not decode")), "{results:?}");
    assert_eq!(bank.chain.check_tx(&garbage)?.code, TxCode::Decode);
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT);
    Ok(())
}

#[test]
fn transaction_above_max_tx_bytes_is_refused_as_too_large() -> TestResult {
    let params = Params { max_tx_bytes: 1_024, ..Params::default() };
    let mut bank = Bank::start_with(Vec::new(), params)?;
    let mut chatty = bank.alice.clone();
    chatty.builder.memo = "x".repeat(2_000);
    let tx = chatty.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    let small = bank.alice.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    assert!(small.len() <= 1_024, "an ordinary transfer is {} bytes", small.len());

    let results = bank.chain.execute_block(&[tx.clone(), small])?;

    assert_eq!(codes(&results), [TxCode::TooLarge, TxCode::Ok]);
    let log = results.first().map(|result| result.log.clone()).unwrap_or_default();
    assert_eq!(log, format!("transaction is {} bytes, the limit is 1024", tx.len()));
    assert_eq!(bank.chain.check_tx(&tx)?.code, TxCode::TooLarge);
    Ok(())
}

#[test]
fn malformed_messages_are_refused_as_invalid_without_charging() -> TestResult {
    let params = Params { max_msgs_per_tx: 2, ..Params::default() };
    let mut bank = Bank::start_with(Vec::new(), params)?;
    let (alice, bob) = (&bank.alice, bank.bob.address);
    let fee = sat(100);
    let cases = [
        (alice.transfer(0, &bob, &[sat(0)], &fee)?, "zero amount of `sat`"),
        (alice.transfer(0, &bob, &[sat(5), sat(6)], &fee)?, "denom `sat` given twice"),
        (alice.transfer(0, &bob, &[], &fee)?, "no coins given"),
        (alice.sign(0, &fee, &[])?, "transaction carries no message"),
        (alice.sign(0, &fee, &vec![send(&alice.address, &bob, &[sat(1)]); 3])?, "3 messages, the limit is 2"),
    ];
    let txs: Vec<&[u8]> = cases.iter().map(|(tx, _)| tx.as_slice()).collect();

    let results = bank.chain.execute_block(&txs)?;

    assert_eq!(codes(&results), [TxCode::InvalidMessage; 5]);
    for ((_, expected), result) in cases.iter().zip(&results) {
        assert!(result.log.contains(expected), "{:?} does not say {expected:?}", result.log);
    }
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 0);
    for (tx, _) in &cases {
        assert_eq!(bank.chain.check_tx(tx)?.code, TxCode::InvalidMessage);
    }
    Ok(())
}

#[test]
fn fee_the_signer_cannot_pay_is_refused_without_state_change() -> TestResult {
    let mut bank = Bank::start()?;
    let tx = bank.carol.transfer(0, &bank.bob.address, &[sat(10)], &sat(100))?;

    assert_eq!(bank.chain.check_tx(&tx)?.code, TxCode::InsufficientFunds);
    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::InsufficientFunds);
    assert_eq!(outcome.log, format!("{} holds 50sat but needs 100sat", bank.carol.address));
    assert!(outcome.events.is_empty());
    assert_eq!(bank.sat_of(&bank.carol.address)?, CAROL_SAT);
    assert_eq!(bank.sequence_of(&bank.carol.address)?, 0);
    assert_eq!(bank.chain.account(&collector())?, None);
    Ok(())
}

#[test]
fn amount_beyond_balance_in_a_block_charges_the_fee_and_reverts_the_transfer() -> TestResult {
    let mut bank = Bank::start()?;
    let dave = key("dave")?.address();
    let tx = bank.bob.transfer(0, &dave, &[sat(600_000)], &sat(100))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::InsufficientFunds);
    assert_eq!(
        outcome.log,
        format!("message 0: {} holds 499900sat but needs 600000sat; fee charged, messages reverted", bank.bob.address)
    );
    assert_eq!(bank.sat_of(&bank.bob.address)?, BOB_SAT - 100);
    assert_eq!(bank.sequence_of(&bank.bob.address)?, 1);
    assert_eq!(bank.sat_of(&collector())?, 100);
    assert_eq!(bank.chain.account(&dave)?, None, "the reverted transfer must not create the recipient");
    let kinds: Vec<&str> = outcome.events.iter().map(|event| event.kind).collect();
    assert_eq!(kinds, [ev::ACCOUNT_CREATED, ev::FEE, ev::SEQUENCE]);
    // The next sequence is 1 now: the same bytes are stale.
    assert_eq!(bank.execute_one(&tx)?.code, TxCode::StaleSequence);
    Ok(())
}

#[test]
fn amount_beyond_balance_in_check_tx_is_refused_and_changes_nothing() -> TestResult {
    let mut bank = Bank::start()?;
    let dave = key("dave")?.address();
    let too_much = bank.bob.transfer(0, &dave, &[sat(600_000)], &sat(100))?;

    let outcome = bank.chain.check_tx(&too_much)?;

    assert_eq!(outcome.code, TxCode::InsufficientFunds);
    assert!(outcome.log.contains("holds 499900sat but needs 600000sat"), "{}", outcome.log);
    assert_eq!(bank.chain.mempool_balance(&bank.bob.address, &Denom::sat())?, BOB_SAT);
    let mempool_bob = bank.chain.mempool_account(&bank.bob.address)?.ok_or("bob vanished")?;
    assert_eq!(mempool_bob.sequence, 0);
    assert_eq!(bank.chain.mempool_account(&collector())?, None);
    // Sequence 0 is still free in the mempool.
    let affordable = bank.bob.transfer(0, &dave, &[sat(400_000)], &sat(100))?;
    assert_eq!(bank.chain.check_tx(&affordable)?.code, TxCode::Ok);
    Ok(())
}

#[test]
fn failing_message_reverts_the_earlier_messages_of_the_same_transaction() -> TestResult {
    let mut bank = Bank::start()?;
    let (alice, bob, carol) = (bank.alice.address, bank.bob.address, bank.carol.address);
    let msgs = [send(&alice, &bob, &[sat(1_000)]), send(&alice, &carol, &[sat(2_000_000)])];
    let tx = bank.alice.sign(0, &sat(100), &msgs)?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::InsufficientFunds);
    assert!(outcome.log.starts_with("message 1: "), "{}", outcome.log);
    assert_eq!(bank.sat_of(&bob)?, BOB_SAT);
    assert_eq!(bank.sat_of(&carol)?, CAROL_SAT);
    assert_eq!(bank.sat_of(&alice)?, ALICE_SAT - 100);
    assert!(events_of(&outcome.events, ev::TRANSFER).is_empty());
    Ok(())
}

#[test]
fn fee_below_the_minimum_is_refused_as_insufficient_fee() -> TestResult {
    let mut bank = Bank::start()?;
    let bob = bank.bob.address;
    let sat_tx = bank.alice.transfer(0, &bob, &[sat(1_000)], &sat(MIN_SAT_FEE - 1))?;
    let wei_tx = bank.alice.transfer(0, &bob, &[wei(1_000)], &wei(MIN_WEI_FEE - 1))?;

    let results = bank.chain.execute_block(&[sat_tx.clone(), wei_tx])?;

    assert_eq!(codes(&results), [TxCode::InsufficientFee, TxCode::InsufficientFee]);
    let logs: Vec<&str> = results.iter().map(|result| result.log.as_str()).collect();
    assert_eq!(
        logs,
        ["fee 99sat is below the minimum 100sat", "fee 9999999999wei is below the minimum 10000000000wei"]
    );
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 0);
    assert_eq!(bank.chain.check_tx(&sat_tx)?.code, TxCode::InsufficientFee);
    // Exactly the minimum is enough.
    let minimum = bank.alice.transfer(0, &bob, &[sat(1_000)], &sat(MIN_SAT_FEE))?;
    assert_eq!(bank.execute_one(&minimum)?.code, TxCode::Ok);
    Ok(())
}

#[test]
fn fee_in_a_denom_the_transaction_does_not_move_is_refused() -> TestResult {
    let mut bank = Bank::start()?;
    let tx = bank.alice.transfer(0, &bank.bob.address, &[sat(1_000)], &wei(MIN_WEI_FEE))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::InsufficientFee);
    assert_eq!(outcome.log, "fee is in `wei`, which the transaction does not move; pay it in the asset being moved");
    assert_eq!(bank.chain.balance(&bank.alice.address, &Denom::wei())?, ALICE_WEI);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 0);
    Ok(())
}

#[test]
fn fee_in_a_denom_without_fee_schedule_is_refused() -> TestResult {
    let token: Denom = TOKEN.parse()?;
    let holder_key = key("token-holder")?;
    let holdings = [Coin::new(1_000_000, token.clone()), sat(10_000)];
    let mut bank = Bank::start_with(vec![funded(&holder_key.address(), &holdings)], Params::default())?;
    let holder = bank.chain.signer(&holder_key)?;
    let bob = bank.bob.address;
    let token_fee = holder.transfer(0, &bob, &[Coin::new(500, token.clone())], &Coin::new(1_000, token.clone()))?;

    let outcome = bank.execute_one(&token_fee)?;

    assert_eq!(outcome.code, TxCode::InsufficientFee);
    assert_eq!(outcome.log, format!("fees cannot be paid in `{TOKEN}`"));
    assert_eq!(bank.chain.balance(&holder.address, &token)?, 1_000_000);
    assert_eq!(bank.sequence_of(&holder.address)?, 0);
    // The token still moves when the fee is paid in a scheduled denom the transaction also moves.
    let sat_fee = holder.transfer(0, &bob, &[Coin::new(500, token.clone()), sat(1)], &sat(100))?;
    assert_eq!(bank.execute_one(&sat_fee)?.code, TxCode::Ok);
    assert_eq!(bank.chain.balance(&bob, &token)?, 500);
    Ok(())
}

#[test]
fn fee_in_a_denom_left_out_of_the_schedule_is_refused() -> TestResult {
    let sat_only = Params { min_fees: vec![sat(MIN_SAT_FEE)], ..Params::default() };
    let mut bank = Bank::start_with(Vec::new(), sat_only)?;
    let tx = bank.alice.transfer(0, &bank.bob.address, &[wei(1_000)], &wei(MIN_WEI_FEE))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!((outcome.code, outcome.log.as_str()), (TxCode::InsufficientFee, "fees cannot be paid in `wei`"));
    assert_eq!(bank.chain.balance(&bank.alice.address, &Denom::wei())?, ALICE_WEI);
    Ok(())
}

#[test]
fn queries_answer_params_and_refuse_malformed_paths() -> TestResult {
    let bank = Bank::start()?;

    let params = bank.chain.query(PARAMS_PATH)?;
    assert_eq!(params.code, QUERY_OK);
    assert_eq!(serde_json::from_slice::<Params>(&params.value)?, Params::default());
    let bad_address = bank.chain.query(&format!("{ACCOUNT_PATH}ferry1nope"))?;
    assert_eq!(bad_address.code, QUERY_BAD_REQUEST);
    assert!(bad_address.log.contains("ferry1nope"), "{}", bad_address.log);
    let unknown = bank.chain.query("/nonsense")?;
    assert_eq!(unknown.code, QUERY_BAD_REQUEST);
    assert!(unknown.log.contains("`/nonsense`"), "{}", unknown.log);
    let nobody = key("nobody")?.address();
    assert_eq!(bank.chain.query(&format!("{ACCOUNT_PATH}{nobody}"))?.code, QUERY_NOT_FOUND);
    assert_eq!(bank.chain.balance(&nobody, &Denom::sat())?, 0);
    Ok(())
}

#[test]
fn signer_without_an_account_is_refused_as_unknown_account() -> TestResult {
    let mut bank = Bank::start()?;
    let stranger = Signer::new(key("stranger")?, CHAIN_ID, 0);
    let tx = stranger.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;

    assert_eq!(bank.chain.check_tx(&tx)?.code, TxCode::UnknownAccount);
    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::UnknownAccount);
    assert_eq!(outcome.log, format!("signer {} has no account; fund it first", stranger.address));
    assert_eq!(bank.chain.account(&stranger.address)?, None);
    assert_eq!(bank.sat_of(&bank.bob.address)?, BOB_SAT);
    Ok(())
}

#[test]
fn message_sender_other_than_the_signer_is_unauthorized() -> TestResult {
    let mut bank = Bank::start()?;
    let (alice, bob, carol) = (bank.alice.address, bank.bob.address, bank.carol.address);
    let steal = bank.alice.sign(0, &sat(100), &[send(&bob, &alice, &[sat(400_000)])])?;
    let smuggled = bank.alice.sign(0, &sat(100), &[send(&alice, &carol, &[sat(1)]), send(&bob, &alice, &[sat(1)])])?;

    let results = bank.chain.execute_block(&[steal.clone(), smuggled])?;

    assert_eq!(codes(&results), [TxCode::Unauthorized, TxCode::Unauthorized]);
    let expected = format!("message sender {bob} is not the transaction signer {alice}");
    assert!(results.iter().all(|result| result.log == expected), "{results:?}");
    assert_eq!(bank.sat_of(&bob)?, BOB_SAT);
    assert_eq!(bank.sat_of(&alice)?, ALICE_SAT);
    assert_eq!(bank.sequence_of(&alice)?, 0);
    assert_eq!(bank.chain.check_tx(&steal)?.code, TxCode::Unauthorized);
    Ok(())
}

#[test]
fn consecutive_sequences_from_one_account_succeed_in_one_block() -> TestResult {
    let mut bank = Bank::start()?;
    let first = bank.alice.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    let second = bank.alice.transfer(1, &bank.carol.address, &[sat(2_000)], &sat(100))?;

    let results = bank.chain.execute_block(&[first, second])?;

    assert_eq!(codes(&results), [TxCode::Ok, TxCode::Ok]);
    assert_eq!(bank.sat_of(&bank.alice.address)?, ALICE_SAT - 3_200);
    assert_eq!(bank.sat_of(&bank.bob.address)?, BOB_SAT + 1_000);
    assert_eq!(bank.sat_of(&bank.carol.address)?, CAROL_SAT + 2_000);
    assert_eq!(bank.sat_of(&collector())?, 200);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 2);
    Ok(())
}

#[test]
fn sequences_out_of_order_in_one_block_refuse_the_early_one() -> TestResult {
    let mut bank = Bank::start()?;
    let first = bank.alice.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    let second = bank.alice.transfer(1, &bank.bob.address, &[sat(2_000)], &sat(100))?;

    let results = bank.chain.execute_block(&[second, first])?;

    assert_eq!(codes(&results), [TxCode::FutureSequence, TxCode::Ok]);
    assert_eq!(bank.sat_of(&bank.bob.address)?, BOB_SAT + 1_000);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 1);
    Ok(())
}

#[test]
fn check_tx_admits_consecutive_sequences_on_the_mempool_state() -> TestResult {
    let mut bank = Bank::start()?;
    let bob = bank.bob.address;
    let first = bank.alice.transfer(0, &bob, &[sat(1_000)], &sat(100))?;
    let second = bank.alice.transfer(1, &bob, &[sat(2_000)], &sat(100))?;
    let second_again = bank.alice.transfer(1, &bob, &[sat(3_000)], &sat(100))?;
    let gap = bank.alice.transfer(3, &bob, &[sat(4_000)], &sat(100))?;

    let checked = [
        bank.chain.check_tx(&first)?.code,
        bank.chain.check_tx(&second)?.code,
        bank.chain.check_tx(&second_again)?.code,
        bank.chain.check_tx(&gap)?.code,
    ];

    assert_eq!(checked, [TxCode::Ok, TxCode::Ok, TxCode::StaleSequence, TxCode::FutureSequence]);
    let in_mempool = bank.chain.mempool_account(&bank.alice.address)?.ok_or("alice vanished")?;
    assert_eq!(in_mempool.sequence, 2);
    assert_eq!(bank.chain.mempool_balance(&bob, &Denom::sat())?, BOB_SAT + 3_000);
    // CheckTx never touches committed state.
    assert_eq!(bank.sat_of(&bob)?, BOB_SAT);
    assert_eq!(bank.sequence_of(&bank.alice.address)?, 0);

    let results = bank.chain.execute_block(&[first, second])?;
    assert_eq!(codes(&results), [TxCode::Ok, TxCode::Ok]);
    let third = bank.alice.transfer(2, &bob, &[sat(5_000)], &sat(100))?;
    assert_eq!(bank.chain.check_tx(&third)?.code, TxCode::Ok);
    Ok(())
}

#[test]
fn mempool_state_is_reset_to_the_committed_state_after_a_block() -> TestResult {
    let mut bank = Bank::start()?;
    let first = bank.alice.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    let second = bank.alice.transfer(1, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    assert_eq!(bank.chain.check_tx(&first)?.code, TxCode::Ok);

    // The proposer left `first` out of the block.
    bank.chain.empty_block()?;

    assert_eq!(bank.chain.check_tx(&second)?.code, TxCode::FutureSequence);
    assert_eq!(bank.chain.check_tx(&first)?.code, TxCode::Ok);
    Ok(())
}

#[test]
fn transfer_to_a_new_address_creates_its_account() -> TestResult {
    let mut bank = Bank::start()?;
    let dave = key("dave")?.address();
    let tx = bank.alice.transfer(0, &dave, &[sat(5_000)], &sat(100))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::Ok);
    let created: Vec<_> = events_of(&outcome.events, ev::ACCOUNT_CREATED).into_iter().map(attributes).collect();
    let (collector_text, dave_text) = (collector().to_string(), dave.to_string());
    let expected_collector = [(ev::ADDRESS, collector_text.as_str()), (ev::ACCOUNT_NUMBER, "3")];
    let expected_dave = [(ev::ADDRESS, dave_text.as_str()), (ev::ACCOUNT_NUMBER, "4")];
    assert_eq!(created, [expected_collector.into(), expected_dave.into()]);
    let account = bank.chain.account(&dave)?.ok_or("dave was not created")?;
    assert_eq!((account.account_number, account.sequence, account.public_key), (4, 0, None));
    assert_eq!(bank.sat_of(&dave)?, 5_000);
    let collector_account = bank.chain.account(&collector())?.ok_or("collector was not created")?;
    assert_eq!(collector_account.account_number, COLLECTOR_NUMBER);
    Ok(())
}

#[test]
fn account_created_earlier_in_a_block_can_sign_later_in_the_same_block() -> TestResult {
    let mut bank = Bank::start()?;
    let dave_key = key("dave")?;
    // Dave will get number 4: the fee collector takes 3 at the first fee.
    let dave = Signer::new(dave_key, CHAIN_ID, 4);
    let fund = bank.alice.transfer(0, &dave.address, &[sat(5_000)], &sat(100))?;
    let spend = dave.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;

    let results = bank.chain.execute_block(&[fund, spend])?;

    assert_eq!(codes(&results), [TxCode::Ok, TxCode::Ok]);
    assert_eq!(bank.sat_of(&dave.address)?, 3_900);
    assert_eq!(bank.sat_of(&bank.bob.address)?, BOB_SAT + 1_000);
    assert_eq!(bank.sat_of(&collector())?, 200);
    Ok(())
}

#[test]
fn transfer_events_name_sender_recipient_amounts_fee_and_next_sequence() -> TestResult {
    let mut bank = Bank::start()?;
    let (alice, bob) = (bank.alice.address, bank.bob.address);
    let opening = bank.alice.transfer(0, &bob, &[sat(1)], &sat(100))?;
    assert_eq!(bank.execute_one(&opening)?.code, TxCode::Ok);
    let tx = bank.alice.transfer(1, &bob, &[sat(1_000), wei(50_000_000_000)], &sat(150))?;

    let outcome = bank.execute_one(&tx)?;

    assert_eq!(outcome.code, TxCode::Ok);
    let transfer = |amount: &str| {
        Event::new(
            ev::TRANSFER,
            [(ev::SENDER, alice.to_string()), (ev::RECIPIENT, bob.to_string()), (ev::AMOUNT, amount.to_owned())],
        )
    };
    assert_eq!(
        outcome.events,
        [
            Event::new(ev::FEE, [(ev::PAYER, alice.to_string()), (ev::AMOUNT, "150sat".to_owned())]),
            Event::new(ev::SEQUENCE, [(ev::ADDRESS, alice.to_string()), (ev::SEQUENCE_VALUE, "2".to_owned())]),
            transfer("1000sat"),
            transfer("50000000000wei"),
        ]
    );
    Ok(())
}

#[test]
fn queries_at_older_heights_see_older_state() -> TestResult {
    let mut bank = Bank::start()?;
    let (alice, bob) = (bank.alice.address, bank.bob.address);
    let first = bank.alice.transfer(0, &bob, &[sat(1_000)], &sat(100))?;
    let second = bank.alice.transfer(1, &bob, &[sat(2_000)], &sat(100))?;
    bank.chain.execute_block(&[first])?;
    bank.chain.execute_block(&[second])?;
    bank.chain.empty_block()?;
    assert_eq!(bank.chain.height(), 3);

    let bob_by_height: Vec<u128> =
        (0..=3).map(|height| bank.chain.balance_at(height, &bob, &Denom::sat())).collect::<TestResult<_>>()?;
    assert_eq!(bob_by_height, [BOB_SAT, BOB_SAT + 1_000, BOB_SAT + 3_000, BOB_SAT + 3_000]);
    let alice_sequences: Vec<u64> = (0..=3)
        .map(|height| {
            let account = bank.chain.account_at(height, &alice)?.ok_or("alice missing")?;
            Ok(account.sequence)
        })
        .collect::<TestResult<_>>()?;
    assert_eq!(alice_sequences, [0, 1, 2, 2]);
    assert_eq!(bank.chain.account_at(0, &collector())?, None);
    assert_eq!(bank.chain.balance_at(1, &collector(), &Denom::sat())?, 100);
    let future: QueryAnswer = bank.chain.query_at(4, &format!("{ACCOUNT_PATH}{alice}"))?;
    assert_eq!(future.code, QUERY_BAD_HEIGHT);
    Ok(())
}

/// One transaction per response code up to and including `Overflow`, in the order of
/// [`TxCode::ALL`] (the bridge's codes follow `Overflow`; they are reached the same way in
/// `withdrawals.rs`). Genesis bounds every denom's supply by 2^128 - 1, so no transfer can
/// overflow a balance: `Overflow` is reached by `minter`'s attestation of a deposit of the
/// minimum on a chain whose sat supply is already 2^128 - 1.
fn one_transaction_per_code(bank: &Bank, minter: &Signer) -> TestResult<Vec<Vec<u8>>> {
    let (alice, bob) = (&bank.alice, bank.bob.address);
    let fee = sat(100);
    let amount = [sat(1_000)];
    let mut chatty = alice.clone();
    chatty.builder.memo = "x".repeat(2_000);
    let stranger = Signer::new(key("stranger")?, CHAIN_ID, 0);
    Ok(vec![
        alice.transfer(0, &bob, &amount, &fee)?,
        vec![0xff, 0xff, 0xff],
        chatty.transfer(1, &bob, &amount, &fee)?,
        alice.transfer(1, &bob, &[sat(0)], &fee)?,
        Signer::new(alice.key.clone(), "other-chain-7", 0).transfer(1, &bob, &amount, &fee)?,
        stranger.transfer(0, &bob, &amount, &fee)?,
        alice.transfer(0, &bob, &amount, &fee)?,
        alice.transfer(5, &bob, &amount, &fee)?,
        Signer::new(alice.key.clone(), CHAIN_ID, 9).transfer(1, &bob, &amount, &fee)?,
        alice.transfer(1, &bob, &amount, &sat(99))?,
        bank.carol.transfer(0, &bob, &[sat(10)], &fee)?,
        alice.sign(1, &fee, &[send(&bob, &alice.address, &amount)])?,
        minter.attest(0, &minimum_deposit(&bob))?,
    ])
}

/// A Bitcoin deposit of the default minimum to `recipient`.
fn minimum_deposit(recipient: &Address) -> DepositFacts {
    DepositFacts {
        chain: ParentChain::Bitcoin,
        tx_id: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b".to_owned(),
        index: 0,
        asset: Denom::sat(),
        amount: ferry_types::Params::default().deposits.min_deposit(&Denom::sat()),
        recipient: *recipient,
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    }
}

#[test]
fn every_bank_response_code_up_to_overflow_is_reachable_in_finalize_block_and_check_tx() -> TestResult {
    // The whale holds the rest of 2^128 - 1 sat: the supply is full, and a one-member federation
    // (quorum 1) mints with a single attestation.
    let whale = key("whale")?.address();
    let minter = key("minter")?;
    let full = u128::MAX - ALICE_SAT - BOB_SAT - CAROL_SAT;
    let start = || {
        let params = Params { max_tx_bytes: 1_024, ..Params::default() };
        let federation = Federation { members: vec![minter.address()], attest_quorum: 1, ..Federation::default() };
        Bank::start_with_federation(vec![funded(&whale, &[sat(full)])], params, federation)
    };
    let mut in_block = start()?;
    let txs = one_transaction_per_code(&in_block, &in_block.chain.signer(&minter)?)?;

    let block_results = in_block.chain.execute_block(&txs)?;
    let mut in_mempool = start()?;
    let mut check_results = Vec::new();
    for tx in &txs {
        check_results.push(in_mempool.chain.check_tx(tx)?);
    }

    // The codes up to `Overflow` are the bank's; the later ones belong to the bridge.
    let reachable: Vec<TxCode> = TxCode::ALL.into_iter().filter(|code| *code <= TxCode::Overflow).collect();
    assert_eq!(reachable.last(), Some(&TxCode::Overflow));
    assert_eq!(codes(&block_results), reachable);
    assert_eq!(codes(&check_results), reachable);
    let overflow = "message 0: sat supply or reserves would overflow; messages reverted";
    assert_eq!(block_results.last().map(|outcome| outcome.log.as_str()), Some(overflow));
    assert_eq!(check_results.last().map(|outcome| outcome.log.as_str()), Some(overflow));
    assert_eq!(in_block.sat_of(&in_block.bob.address)?, BOB_SAT + 1_000, "only the first transfer paid bob");
    Ok(())
}

#[test]
fn re_encoded_transaction_with_the_same_signature_is_refused() -> TestResult {
    let mut bank = Bank::start()?;
    let tx = bank.alice.transfer(0, &bank.bob.address, &[sat(1_000)], &sat(100))?;
    // The same body, auth info and signature in a different `TxRaw` encoding, so a different
    // CometBFT transaction hash: an unknown field appended (field 15, varint 1), and an empty
    // `body_bytes` field in front that the real one overrides.
    let unknown_field = [tx.as_slice(), &[0x78, 0x01]].concat();
    let repeated_field = [[0x0a, 0x00].as_slice(), &tx].concat();

    let checked = [bank.chain.check_tx(&unknown_field)?.code, bank.chain.check_tx(&repeated_field)?.code];
    let results = bank.chain.execute_block(&[unknown_field, repeated_field, tx])?;

    assert_eq!(checked, [TxCode::Decode, TxCode::Decode], "a third party can re-encode a pending transaction");
    assert_eq!(
        codes(&results),
        [TxCode::Decode, TxCode::Decode, TxCode::Ok],
        "a re-encoded copy pre-empted the transaction its signer broadcast"
    );
    Ok(())
}
