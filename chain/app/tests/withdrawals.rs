//! Withdrawals, driven through the in-process driver with real cryptography: a federation of four
//! (threshold 3) holding threshold_crypto BLS shares dealt from a seeded RNG and secp256k1
//! Bitcoin keys. Users burn wrapped tokens with `MsgWithdraw`; batches form every
//! `batch_interval` blocks within the per-asset window caps and delays; members post BLS shares
//! or per-input Bitcoin signatures, which the chain checks and combines at the threshold; a
//! quorum of release attestations settles a batch and the ledger and reserve UTXOs reconcile
//! exactly. A broken reserves invariant pauses the bridge while blocks keep coming; pause votes
//! flip it at quorum.

#![allow(clippy::expect_used)]

mod driver;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use driver::{Chain, MemoryState, Signer, TestResult, attestation, attributes, events_of, key};
use ferry_app::bridge::{AssetLedger, ReserveUtxo};
use ferry_app::{BlockOutcome, Event, TxOutcome};
use ferry_types::deposit::Unattributed;
use ferry_types::event as ev;
use ferry_types::genesis::{AssetLimit, BlsFederation, EthereumBridge, Federation, WithdrawalParams};
use ferry_types::msg::{
    MsgAbortBatch, MsgAttestParentHeight, MsgAttestRelease, MsgAttestReserves, MsgRegisterDepositAddress,
    MsgResolveHeld, MsgResolveUnattributed, MsgSetPaused, MsgSubmitSignatures, MsgWithdraw, ReleaseSignatures,
    Resolution,
};
use ferry_types::peg::{BitcoinFederation, BitcoinNetwork, Peg};
use ferry_types::query::{
    BITCOIN_FEES_PATH, BatchRelease, BatchStatus, BatchView, BitcoinFeesView, DepositAddressPage, DepositAddressView,
    ExitStanding, QUERY_BAD_REQUEST, QUERY_NOT_FOUND, RESERVES_CHECK_PATH, ReservesCheckView, ReservesRound,
    UnattributedPage, WithdrawalStatus,
};
use ferry_types::release::bitcoin::{
    assemble_witness, input_spend_fee, lone_release_fee, sighashes, sign_input, unsigned_transaction,
};
use ferry_types::release::bls;
use ferry_types::release::eth::{EthAddress, EthBatch, EthReleaseItem};
use ferry_types::release::fee::{FeeRate, bumped_rate};
use ferry_types::{
    AccountKey, Address, Amount, Coin, Denom, DepositFacts, DepositId, GenesisState, Msg, Params, ParentChain, TxCode,
};
use rand::SeedableRng;
use threshold_crypto::SecretKeySet;

const MEMBERS: usize = 4;
const QUORUM: u32 = 3;
const BATCH_INTERVAL: u64 = 4;
const WINDOW_BLOCKS: u64 = 40;
const DELAY_BLOCKS: u64 = 10;
/// The fee rate the chain starts at, sat/vB.
const START_RATE: u64 = 2;
/// Sidechain blocks an unsigned batch lives before it is aborted (the timeout test shortens it).
const ABORT_AFTER: u64 = 1_000;

/// A regtest P2WSH address of a throwaway script, one per `n`.
fn regtest_address(n: u8) -> String {
    bitcoin::Address::p2wsh(&bitcoin::ScriptBuf::from_bytes(vec![0x51, n]), bitcoin::Network::Regtest).to_string()
}

/// A destination on the chain's denylist (it is listed in capitals: any case matches).
fn chain_denied() -> String {
    regtest_address(66)
}
/// Parent blocks before a signed release is replaced.
const BUMP_AFTER: u64 = 4;
/// Each Bitcoin withdrawal's budget for its fee share.
const BTC_BUDGET: u128 = 5_000;
const DUST: u128 = 546;
const SAT_CAP: u128 = 500_000;
const SAT_DELAY_ABOVE: u128 = 200_000;
const SAT_MIN: u128 = 10_000;
const ETH: u128 = 1_000_000_000_000_000_000;
const WEI_CAP: u128 = 3 * ETH;
const TOKEN_CAP: u128 = 1_000_000;
const ETH_CHAIN_ID: u64 = 31_337;
const EPOCH: u64 = 1;
const VAULT: &str = "0x1111111111111111111111111111111111111111";
const TOKEN: &str = "erc20/0x00000000000000000000000000000000000000ab";
/// EIP-55's own example address.
const ETH_DESTINATION: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
/// BIP 173's regtest P2WPKH example.
const BTC_DESTINATION: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// The same program on mainnet.
const MAINNET_DESTINATION: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
const BTC_TXID: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
const ETH_TX: &str = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";
const RELEASE_TX: &str = "0x9b2f2c0e1a7d4b1f6c3e8a5d2b9f0c7e4a1d8b5f2c9e6a3d0b7f4c1e8a5d2b9f";
/// Deposited before every test: two Bitcoin outputs, ether and the token, all to alice.
const DEPOSIT_SAT: [u128; 2] = [600_000, 400_000];
const DEPOSIT_WEI: u128 = 5 * ETH;
const DEPOSIT_TOKEN: u128 = 2_000_000;

/// A chain whose federation can sign both kinds of release, and alice, who deposited.
struct Bridge {
    chain: Chain,
    /// Holds only deposited funds (no genesis balance), so nothing is unbacked.
    alice: Signer,
    members: Vec<Signer>,
    /// The dealer's key set; member `i` holds share `i`.
    bls: SecretKeySet,
    /// Member `i`'s Bitcoin key.
    bitcoin_keys: Vec<bitcoin::secp256k1::SecretKey>,
    /// Block-level events of the blocks run through [`Bridge::block`] since the last
    /// [`Bridge::run_to_batch_height`].
    block_events: Vec<Event>,
    /// Every block run through [`Bridge::block`] (and the deposit block at height 1), in height
    /// order: the transactions' bytes and what the block produced.
    fed: Vec<(Vec<Vec<u8>>, BlockOutcome)>,
}

fn token() -> Denom {
    TOKEN.parse().expect("a valid token denom")
}

fn vault() -> EthAddress {
    VAULT.parse().expect("a valid vault address")
}

fn coin(amount: u128, denom: &Denom) -> Coin {
    Coin { denom: denom.clone(), amount: Amount::new(amount) }
}

fn withdrawal_params() -> WithdrawalParams {
    let limit = |denom: Denom, window_cap: u128, delay_above: u128, min_amount: u128| AssetLimit {
        denom,
        window_cap: Amount::new(window_cap),
        delay_above: Amount::new(delay_above),
        min_amount: Amount::new(min_amount),
    };
    WithdrawalParams {
        batch_interval: BATCH_INTERVAL,
        max_batch_items: 8,
        window_blocks: WINDOW_BLOCKS,
        limits: vec![
            limit(Denom::sat(), SAT_CAP, SAT_DELAY_ABOVE, SAT_MIN),
            limit(Denom::wei(), WEI_CAP, 2 * ETH, ETH / 1_000),
            limit(token(), TOKEN_CAP, TOKEN_CAP / 2, 1),
        ],
        delay_blocks: DELAY_BLOCKS,
        bitcoin_min_fee_rate: 1,
        bitcoin_max_fee_rate: 100,
        bitcoin_start_fee_rate: START_RATE,
        bitcoin_target_confirm_blocks: 3,
        bitcoin_bump_after_blocks: BUMP_AFTER,
        bitcoin_max_reserve_utxos: 50,
        abort_after_blocks: ABORT_AFTER,
        denylist: vec![chain_denied().to_ascii_uppercase()],
        bitcoin_dust_limit: Amount::new(DUST),
        ethereum: Some(EthereumBridge::new(ETH_CHAIN_ID, vault())),
        bitcoin_exit: None,
    }
}

fn member_keys() -> TestResult<Vec<AccountKey>> {
    (0..MEMBERS).map(|index| key(&format!("member-{index}"))).collect()
}

fn bitcoin_secret(index: usize) -> bitcoin::secp256k1::SecretKey {
    let seed = u8::try_from(index + 1).expect("few members");
    bitcoin::secp256k1::SecretKey::from_slice(&[seed; 32]).expect("a valid scalar")
}

/// The genesis every test starts from, with `withdrawals` as the withdrawal parameters.
fn genesis(withdrawals: WithdrawalParams, bls: &SecretKeySet) -> TestResult<GenesisState> {
    let members: Vec<Address> = member_keys()?.iter().map(AccountKey::address).collect();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let keys = (0..MEMBERS)
        .map(|index| {
            hex::encode(bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &bitcoin_secret(index)).serialize())
        })
        .collect();
    let mut params = Params { withdrawals, ..Params::default() };
    params.min_fees.push(coin(1, &token()));
    Ok(GenesisState {
        accounts: Vec::new(),
        federation: Federation {
            members,
            attest_quorum: QUORUM,
            bitcoin: Some(BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: QUORUM, keys }),
            epoch: EPOCH,
            bls: Some(BlsFederation { public_key_set: bls::encode_public_key_set(&bls.public_keys()) }),
        },
        params,
    })
}

fn deposits(alice: &Address) -> Vec<DepositFacts> {
    let facts = |chain, tx_id: &str, index, asset: Denom, amount| DepositFacts {
        chain,
        tx_id: tx_id.to_owned(),
        index,
        asset,
        amount: Amount::new(amount),
        recipient: *alice,
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    };
    vec![
        facts(ParentChain::Bitcoin, BTC_TXID, 0, Denom::sat(), DEPOSIT_SAT[0]),
        facts(ParentChain::Bitcoin, BTC_TXID, 1, Denom::sat(), DEPOSIT_SAT[1]),
        facts(ParentChain::Ethereum, ETH_TX, 0, Denom::wei(), DEPOSIT_WEI),
        facts(ParentChain::Ethereum, ETH_TX, 1, token(), DEPOSIT_TOKEN),
    ]
}

impl Bridge {
    fn start() -> TestResult<Bridge> {
        Bridge::start_with(withdrawal_params())
    }

    /// Starts the chain and mints the deposits of [`deposits`] in block 1.
    fn start_with(withdrawals: WithdrawalParams) -> TestResult<Bridge> {
        let dealer = SecretKeySet::random(
            usize::try_from(QUORUM - 1).expect("small"),
            &mut rand_chacha::ChaChaRng::seed_from_u64(42),
        );
        let mut chain = Chain::start(&genesis(withdrawals, &dealer)?)?;
        let members = member_keys()?.iter().map(|key| chain.signer(key)).collect::<TestResult<Vec<_>>>()?;
        let alice_key = key("alice")?;
        let txs = members
            .iter()
            .take(usize::try_from(QUORUM).expect("small"))
            .map(|member| {
                let msgs: Vec<Msg> =
                    deposits(&alice_key.address()).iter().map(|facts| attestation(&member.address, facts)).collect();
                member.sign_fee_exempt(0, &msgs)
            })
            .collect::<TestResult<Vec<_>>>()?;
        let outcome = chain.finalize_block(&txs)?;
        let results = &outcome.tx_results;
        assert!(results.iter().all(|result| result.code == TxCode::Ok), "deposits: {results:?}");
        let alice = chain.signer(&alice_key)?;
        let bitcoin_keys = (0..MEMBERS).map(bitcoin_secret).collect();
        let fed = vec![(txs, outcome)];
        Ok(Bridge { chain, alice, members, bls: dealer, bitcoin_keys, block_events: Vec::new(), fed })
    }

    fn member(&self, index: usize) -> &Signer {
        self.members.get(index).expect("a member")
    }

    /// `signer`'s transaction of `msgs` at its committed sequence, paying `fee`.
    fn user_tx(&self, signer: &Signer, fee: &Coin, msgs: &[Msg]) -> TestResult<Vec<u8>> {
        signer.sign(self.chain.sequence(&signer.address)?, fee, msgs)
    }

    /// Member `index`'s fee-exempt transaction of `msgs` at its committed sequence.
    fn duty_tx(&self, index: usize, msgs: &[Msg]) -> TestResult<Vec<u8>> {
        let member = self.member(index);
        member.sign_fee_exempt(self.chain.sequence(&member.address)?, msgs)
    }

    /// Alice's withdrawal of `amount` of `asset` to `destination`, paying the minimum fee in the asset.
    fn withdraw_tx(&self, asset: &Denom, amount: u128, destination: &str) -> TestResult<Vec<u8>> {
        let fee = Params::default().min_fee(asset).map_or(1, |fee| fee.get());
        self.user_tx(&self.alice, &coin(fee, asset), &[withdraw_msg(&self.alice.address, asset, amount, destination)])
    }

    /// Runs `txs` as the next block, keeping its block-level events for [`Bridge::run_to_batch_height`].
    fn block<T: AsRef<[u8]>>(&mut self, txs: &[T]) -> TestResult<Vec<TxOutcome>> {
        let outcome = self.chain.finalize_block(txs)?;
        self.block_events.extend(outcome.events.iter().cloned());
        let results = outcome.tx_results.clone();
        self.fed.push((txs.iter().map(|tx| tx.as_ref().to_vec()).collect(), outcome));
        Ok(results)
    }

    fn one(&mut self, tx: &[u8]) -> TestResult<TxOutcome> {
        let mut results = self.block(&[tx])?;
        match (results.pop(), results.is_empty()) {
            (Some(outcome), true) => Ok(outcome),
            _ => Err("a one-transaction block did not return one result".into()),
        }
    }

    /// Alice withdraws in a block of its own; returns the withdrawal id from the log.
    fn withdraw(&mut self, asset: &Denom, amount: u128, destination: &str) -> TestResult<String> {
        let tx = self.withdraw_tx(asset, amount, destination)?;
        let outcome = self.one(&tx)?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
        withdrawal_id(&outcome)
    }

    /// Runs empty blocks up to and including the next batching height (none when the latest
    /// block was one); returns the block-level events since the last call.
    fn run_to_batch_height(&mut self) -> TestResult<Vec<Event>> {
        while !self.chain.height().is_multiple_of(BATCH_INTERVAL) {
            self.block::<&[u8]>(&[])?;
        }
        Ok(std::mem::take(&mut self.block_events))
    }

    /// Member `index`'s signatures for batch `id`, made the way a signer makes them: over the
    /// payload or sighashes the batch record holds (the tests check those separately).
    fn signatures(&self, index: usize, id: u64) -> TestResult<ReleaseSignatures> {
        let batch = self.chain.batch(id)?.batch;
        Ok(match &batch.release {
            BatchRelease::Ethereum(_)
            | BatchRelease::EthereumListing(_)
            | BatchRelease::EthereumRotation(_)
            | BatchRelease::EthereumHeartbeat(_) => {
                let payload = batch.release.bls_message().ok_or("no BLS message")?;
                let share = bls::sign_share(&self.bls.secret_key_share(u64::try_from(index)?), &payload);
                ReleaseSignatures::Bls(bls::encode_signature_share(&share).to_vec())
            }
            BatchRelease::Bitcoin(_) | BatchRelease::BitcoinExit(_) => {
                let secret = self.bitcoin_keys.get(index).ok_or("no such member")?;
                let mut signatures = Vec::new();
                for sighash in batch.release.bitcoin_sighashes().unwrap_or_default() {
                    let sighash: [u8; 32] = hex::decode(sighash)?.try_into().map_err(|_| "sighash length")?;
                    signatures.push(sign_input(secret, &sighash));
                }
                ReleaseSignatures::Bitcoin(signatures)
            }
        })
    }

    fn submit_tx(&self, index: usize, id: u64, signatures: ReleaseSignatures) -> TestResult<Vec<u8>> {
        let signer = self.member(index).address;
        self.duty_tx(index, &[Msg::SubmitSignatures(MsgSubmitSignatures { signer, batch: id, signatures })])
    }

    /// Member `index` signs batch `id` correctly, alone in a block.
    fn sign(&mut self, index: usize, id: u64) -> TestResult<TxOutcome> {
        let tx = self.submit_tx(index, id, self.signatures(index, id)?)?;
        self.one(&tx)
    }

    fn attest_release_tx(&self, index: usize, id: u64, parent_tx: &str) -> TestResult<Vec<u8>> {
        self.attest_release_at_tx(index, id, parent_tx, 0)
    }

    /// Member `index` attests that `parent_tx` released batch `id`, mined at `parent_height`.
    fn attest_release_at_tx(&self, index: usize, id: u64, parent_tx: &str, parent_height: u64) -> TestResult<Vec<u8>> {
        let attester = self.member(index).address;
        let attest = MsgAttestRelease { attester, batch: id, parent_tx: parent_tx.to_owned(), parent_height };
        self.duty_tx(index, &[Msg::AttestRelease(attest)])
    }

    /// Member `index` reports Bitcoin's best height.
    fn report_height(&mut self, index: usize, height: u64) -> TestResult<TxOutcome> {
        let attester = self.member(index).address;
        let report = MsgAttestParentHeight { attester, chain: ParentChain::Bitcoin, height };
        let tx = self.duty_tx(index, &[Msg::AttestParentHeight(report)])?;
        let outcome = self.one(&tx)?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
        Ok(outcome)
    }

    /// Alice's withdrawal of `amount` sat to `destination` with the budget `max_fee`.
    fn withdraw_sat_tx(&self, amount: u128, destination: &str, max_fee: u128) -> TestResult<Vec<u8>> {
        self.withdraw_any_tx(&Denom::sat(), amount, destination, max_fee)
    }

    fn withdraw_any_tx(&self, asset: &Denom, amount: u128, destination: &str, max_fee: u128) -> TestResult<Vec<u8>> {
        let msg = Msg::Withdraw(MsgWithdraw {
            sender: self.alice.address,
            asset: asset.clone(),
            amount: Amount::new(amount),
            destination: destination.to_owned(),
            max_fee: Amount::new(max_fee),
        });
        let fee = Params::default().min_fee(asset).map_or(1, |fee| fee.get());
        self.user_tx(&self.alice, &coin(fee, asset), &[msg])
    }

    fn fees(&self) -> TestResult<BitcoinFeesView> {
        Ok(self.chain.query_json(BITCOIN_FEES_PATH)?.ok_or("no /bitcoin/fees answer")?)
    }

    fn attest_release(&mut self, index: usize, id: u64, parent_tx: &str) -> TestResult<TxOutcome> {
        let tx = self.attest_release_tx(index, id, parent_tx)?;
        self.one(&tx)
    }

    fn vote_tx(&self, index: usize, paused: bool) -> TestResult<Vec<u8>> {
        let member = self.member(index).address;
        let reason = if paused { "halt" } else { "all clear" }.to_owned();
        self.duty_tx(index, &[Msg::SetPaused(MsgSetPaused { member, paused, reason })])
    }

    fn ledger(&self, denom: &Denom) -> TestResult<AssetLedger> {
        Ok(self.chain.reserves()?.assets.get(denom).cloned().unwrap_or_default())
    }

    fn peg(&self) -> TestResult<Peg> {
        let federation: Federation = self.chain.query_json("/federation")?.ok_or("no federation")?;
        Ok(Peg::new(&federation.bitcoin.ok_or("no peg")?)?)
    }
}

fn withdraw_msg(sender: &Address, asset: &Denom, amount: u128, destination: &str) -> Msg {
    Msg::Withdraw(MsgWithdraw {
        sender: *sender,
        asset: asset.clone(),
        amount: Amount::new(amount),
        destination: destination.to_owned(),
        max_fee: Amount::new(if *asset == Denom::sat() { BTC_BUDGET } else { 0 }),
    })
}

/// The withdrawal id a successful withdrawal's log and event name (they must agree).
fn withdrawal_id(outcome: &TxOutcome) -> TestResult<String> {
    let id = withdrawal_id_of(outcome)?;
    assert_eq!(outcome.log, format!("withdrawal {id} queued"));
    Ok(id)
}

/// The id of the only batch of `asset` created among `events`.
/// The one release batch of `asset` created among `events` (an exit disbursal is no release).
fn created_batch(events: &[Event], asset: &Denom) -> TestResult<u64> {
    let disbursals: Vec<&str> = events_of(events, ev::EXIT_DERIVED)
        .into_iter()
        .filter_map(|event| attributes(event).get(ev::BATCH_ID).copied())
        .collect();
    let ids: Vec<u64> = events_of(events, ev::BATCH_CREATED)
        .into_iter()
        .map(attributes)
        .filter(|attributes| attributes.get(ev::ASSET) == Some(&asset.as_str()))
        .filter(|attributes| attributes.get(ev::BATCH_ID).is_none_or(|id| !disbursals.contains(id)))
        .filter_map(|attributes| attributes.get(ev::BATCH_ID)?.parse().ok())
        .collect();
    match ids.as_slice() {
        [id] => Ok(*id),
        other => Err(format!("expected one {asset} batch, got {other:?} in {events:?}").into()),
    }
}

fn codes(results: &[TxOutcome]) -> Vec<TxCode> {
    results.iter().map(|result| result.code).collect()
}

/// The sum of the reserve UTXOs equals the `sat` reserves, and every asset satisfies the
/// invariant.
fn assert_reconciled(bridge: &Bridge) -> TestResult {
    let reserves = bridge.chain.reserves()?;
    let utxos: u128 = reserves.bitcoin_utxos.iter().map(|utxo| utxo.amount.get()).sum();
    let sat = reserves.assets.get(&Denom::sat()).ok_or("no sat ledger")?;
    assert_eq!(utxos, sat.reserves.get(), "reserve UTXOs against sat reserves");
    for (denom, ledger) in &reserves.assets {
        let owed = ledger.supply.get() + ledger.unreleased.get() + ledger.fee_pool.get();
        assert!(owed <= ledger.reserves.get(), "{denom}: {ledger:?}");
        assert_eq!(ledger.supply.get(), bridge.chain.committed().supply(denom)?, "{denom} supply against balances");
    }
    Ok(())
}

#[test]
fn btc_withdrawal_is_burned_batched_signed_by_three_of_four_and_settles_with_its_change_in_the_reserves() -> TestResult
{
    let mut bridge = Bridge::start()?;
    let amount = 150_000;
    let alice_before = bridge.chain.balance(&bridge.alice.address, &Denom::sat())?;

    let id = bridge.withdraw(&Denom::sat(), amount, BTC_DESTINATION)?;

    assert_eq!(id, "wd-1");
    let burned_height = bridge.chain.height();
    assert_eq!(bridge.chain.balance(&bridge.alice.address, &Denom::sat())?, alice_before - amount - 100);
    let total_deposited: u128 = DEPOSIT_SAT.iter().sum();
    // Each deposit prepaid its own spending at the start rate into the fee pool.
    let prepaid = 2 * input_spend_fee(&bridge.peg()?, None, FeeRate::from_sat_per_vb(START_RATE)).get();
    let ledger = bridge.ledger(&Denom::sat())?;
    assert_eq!(
        (ledger.supply.get(), ledger.unreleased.get(), ledger.reserves.get()),
        (total_deposited - prepaid - amount, amount, total_deposited)
    );
    let queued = bridge.chain.withdrawal(&id)?;
    assert_eq!(queued.status, WithdrawalStatus::Queued);
    assert_eq!(queued.withdrawal.destination, BTC_DESTINATION);
    assert_eq!(queued.withdrawal.eligible_height, burned_height, "below delay_above: no delay");
    assert_reconciled(&bridge)?;

    let events = bridge.run_to_batch_height()?;
    let batch_id = created_batch(&events, &Denom::sat())?;
    let view = bridge.chain.batch(batch_id)?;
    assert_eq!(
        (view.batch.status, view.threshold, view.signature_count, view.release_quorum),
        (BatchStatus::Signing, 3, 0, QUORUM)
    );
    assert_eq!(bridge.chain.withdrawal(&id)?.status, WithdrawalStatus::Batched);
    let BatchRelease::Bitcoin(release) = &view.batch.release else { return Err("not a Bitcoin batch".into()) };
    // What a signer checks: the transaction rebuilds from the plan, pays the destination the
    // burned amount less the fee, returns the change to the peg, and the sighashes are its own.
    let peg = bridge.peg()?;
    let tx = unsigned_transaction(&release.plan, &peg);
    assert_eq!(bitcoin::consensus::encode::serialize_hex(&tx), release.unsigned_tx);
    assert_eq!(tx.compute_txid().to_string(), release.txid);
    let hashes: Vec<String> = sighashes(&tx, &release.plan, &peg)?.iter().map(hex::encode).collect();
    assert_eq!(hashes, release.sighashes);
    let destination = ferry_types::release::bitcoin::parse_destination(BTC_DESTINATION, BitcoinNetwork::Regtest)?;
    let fee = release.plan.fee().get();
    let paid = tx.output.first().ok_or("no output")?;
    assert_eq!((paid.script_pubkey.clone(), paid.value.to_sat()), (destination, u64::try_from(amount - fee)?));
    let change = tx.output.get(1).ok_or("no change")?;
    assert_eq!(change.script_pubkey, peg.script_pubkey());
    assert_eq!(release.plan.inputs().len(), 1, "the largest UTXO covers it");
    assert_eq!(release.fee_rate, FeeRate::from_sat_per_vb(START_RATE), "priced at the chain's rate");
    let input_total = release.plan.input_total().get();
    assert_eq!(input_total, DEPOSIT_SAT[0]);
    assert_eq!(u128::from(change.value.to_sat()), input_total - amount, "inputs = outputs + fee + change");
    let locked: Vec<Option<u64>> = bridge.chain.reserves()?.bitcoin_utxos.iter().map(|utxo| utxo.locked_by).collect();
    assert_eq!(locked, [Some(batch_id), None], "the spent input is locked by the batch");

    let outcomes = [bridge.sign(0, batch_id)?, bridge.sign(2, batch_id)?];
    assert_eq!(codes(&outcomes), [TxCode::Ok; 2]);
    assert_eq!(bridge.chain.batch(batch_id)?.batch.status, BatchStatus::Signing);
    let third = bridge.sign(3, batch_id)?;
    assert_eq!(third.code, TxCode::Ok, "{}", third.log);
    assert_eq!(events_of(&third.events, ev::BATCH_SIGNED).len(), 1);
    let signed = bridge.chain.batch(batch_id)?;
    assert_eq!((signed.batch.status, signed.signature_count), (BatchStatus::Signed, 3));
    assert_eq!(bridge.chain.withdrawal(&id)?.status, WithdrawalStatus::Signed);

    // A relayer assembles the witness from the stored per-input signatures.
    let mut per_input: Vec<BTreeMap<usize, Vec<u8>>> = vec![BTreeMap::new(); tx.input.len()];
    for (member, stored) in &signed.batch.signatures {
        let index = bridge.members.iter().position(|signer| signer.address == *member).ok_or("not a member")?;
        for (input, der) in stored.iter().enumerate() {
            per_input.get_mut(input).ok_or("extra signature")?.insert(index, hex::decode(der)?);
        }
    }
    let raw_hashes: Vec<[u8; 32]> = sighashes(&tx, &release.plan, &peg)?;
    let witnessed = assemble_witness(&tx, &release.plan, &peg, &raw_hashes, &per_input)?;
    assert_eq!(witnessed.compute_txid(), tx.compute_txid());
    // The fee is the rate times the signed size, up to the bytes a signature may be longer (one
    // per signature) — never below the rate.
    let signed_vsize = u128::from(witnessed.vsize() as u64);
    let rate = u128::from(START_RATE);
    assert!(fee >= rate * signed_vsize, "fee {fee} below {rate} sat/vB × {signed_vsize} vB");
    assert!(fee <= rate * (signed_vsize + 1), "fee {fee} above {rate} sat/vB × {signed_vsize} vB + a signature byte");

    let txid = release.txid.clone();
    for member in [1, 2] {
        assert_eq!(bridge.attest_release(member, batch_id, &txid)?.code, TxCode::Ok);
    }
    assert_eq!(bridge.chain.batch(batch_id)?.batch.status, BatchStatus::Signed, "two attestations do not settle");
    let settled = bridge.attest_release(3, batch_id, &txid)?;
    assert_eq!(events_of(&settled.events, ev::BATCH_RELEASED).len(), 1);

    let released = bridge.chain.withdrawal(&id)?;
    assert_eq!(released.status, WithdrawalStatus::Released);
    assert_eq!(released.paid, Some(Amount::new(amount - fee)));
    assert_eq!(released.release_tx.as_deref(), Some(txid.as_str()));
    let ledger = bridge.ledger(&Denom::sat())?;
    assert_eq!(
        (ledger.supply.get(), ledger.unreleased.get(), ledger.reserves.get()),
        (total_deposited - prepaid - amount, 0, total_deposited - amount),
        "reserves fall by exactly what was burned"
    );
    let utxos = bridge.chain.reserves()?.bitcoin_utxos;
    let change_utxo = ReserveUtxo {
        txid,
        vout: 1,
        amount: Amount::new(input_total - amount),
        locked_by: None,
        owner: None,
        retired_epoch: None,
    };
    assert!(utxos.contains(&change_utxo), "change UTXO in the reserves: {utxos:?}");
    assert_eq!(utxos.len(), 2, "the spent deposit left the set: {utxos:?}");
    assert!(bridge.chain.pending_batches(None)?.batches.is_empty());
    assert_reconciled(&bridge)
}

#[test]
fn ether_and_token_withdrawals_form_one_batch_per_denom_paid_by_a_combined_signature_valid_under_the_federation_key()
-> TestResult {
    let mut bridge = Bridge::start()?;
    let ether = ETH / 2;
    let tokens = 300_000;
    let txs = [
        bridge.withdraw_tx(&Denom::wei(), ether, ETH_DESTINATION)?,
        bridge.alice.sign(
            bridge.chain.sequence(&bridge.alice.address)? + 1,
            &coin(1, &token()),
            &[withdraw_msg(&bridge.alice.address, &token(), tokens, &ETH_DESTINATION.to_lowercase())],
        )?,
    ];
    let results = bridge.chain.execute_block(&txs)?;
    assert_eq!(codes(&results), [TxCode::Ok; 2], "{results:?}");
    let ids = results.iter().map(withdrawal_id).collect::<TestResult<Vec<_>>>()?;
    assert_eq!(ids, ["wd-1", "wd-2"]);
    assert_eq!(bridge.chain.withdrawal("wd-2")?.withdrawal.destination, ETH_DESTINATION, "stored checksummed");

    let events = bridge.run_to_batch_height()?;
    let ether_batch = created_batch(&events, &Denom::wei())?;
    let token_batch = created_batch(&events, &token())?;
    assert_ne!(ether_batch, token_batch);
    let recipient: EthAddress = ETH_DESTINATION.parse()?;
    let token_address: EthAddress = "0x00000000000000000000000000000000000000ab".parse()?;
    let key_set = bridge.bls.public_keys();
    for (id, token, amount) in [(ether_batch, EthAddress::ZERO, ether), (token_batch, token_address, tokens)] {
        // What a signer rebuilds: the payload from the chain id, vault, epoch, nonce and the burns,
        // with the exit root of the claims the batch's block left (its withdrawals name it there).
        let view = bridge.chain.batch(id)?;
        let formed = view.batch.created_height;
        let claims_root =
            ferry_app::exit_claims::ClaimTree::load(bridge.chain.committed_at(formed).ok_or("no state")?)?.root();
        let expected = EthBatch {
            chain_id: ETH_CHAIN_ID,
            vault: vault(),
            epoch: EPOCH,
            nonce: id,
            exit_height: formed,
            exit_root: claims_root,
            items: vec![EthReleaseItem { token, recipient, amount: Amount::new(amount) }],
        };
        let BatchRelease::Ethereum(release) = &view.batch.release else { return Err("not an Ethereum batch".into()) };
        assert_eq!(release.batch, expected);
        assert_eq!(release.payload, hex::encode(expected.payload()));

        for member in [3, 1] {
            assert_eq!(bridge.sign(member, id)?.code, TxCode::Ok);
        }
        assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Signing);
        assert_eq!(bridge.sign(0, id)?.code, TxCode::Ok);

        let signed = bridge.chain.batch(id)?;
        assert_eq!(signed.batch.status, BatchStatus::Signed);
        let BatchRelease::Ethereum(release) = &signed.batch.release else { return Err("not an Ethereum batch".into()) };
        let compressed = hex::decode(release.signature_compressed.as_deref().ok_or("no combined signature")?)?;
        let signature = bls::decode_signature(&compressed)?;
        assert!(bls::verify_signature(&key_set.public_key(), &signature, &expected.payload()));
        assert_eq!(release.signature.as_deref(), Some(hex::encode(bls::eip2537_g2(&signature)).as_str()));
        assert_eq!(release.signature.as_deref().map(str::len), Some(2 * 256));

        let before = bridge.ledger(&view.batch.asset)?;
        for member in 0..3 {
            assert_eq!(bridge.attest_release(member, id, RELEASE_TX)?.code, TxCode::Ok);
        }
        let after = bridge.ledger(&view.batch.asset)?;
        assert_eq!(after.reserves.get(), before.reserves.get() - amount);
        assert_eq!((after.unreleased.get(), after.supply), (before.unreleased.get() - amount, before.supply));
        assert_eq!(bridge.chain.batch(id)?.batch.release_tx.as_deref(), Some(RELEASE_TX));
    }
    assert_eq!(bridge.ledger(&Denom::wei())?.reserves.get(), DEPOSIT_WEI - ether);
    assert_eq!(bridge.ledger(&token())?.reserves.get(), DEPOSIT_TOKEN - tokens);
    assert_reconciled(&bridge)
}

#[test]
fn bad_shares_bad_input_signatures_and_the_wrong_kind_are_refused_naming_what_failed() -> TestResult {
    let mut bridge = Bridge::start()?;
    bridge.withdraw(&Denom::wei(), ETH, ETH_DESTINATION)?;
    bridge.withdraw(&Denom::sat(), 50_000, BTC_DESTINATION)?;
    let events = bridge.run_to_batch_height()?;
    let (ether, btc) = (created_batch(&events, &Denom::wei())?, created_batch(&events, &Denom::sat())?);

    // Member 1 posts member 2's share, a share over another payload, and garbage.
    let ReleaseSignatures::Bls(someone_elses) = bridge.signatures(2, ether)? else { return Err("kind".into()) };
    let other_payload = bls::sign_share(&bridge.bls.secret_key_share(1u64), b"another payload");
    let ReleaseSignatures::Bitcoin(mut btc_signatures) = bridge.signatures(1, btc)? else { return Err("kind".into()) };
    let ReleaseSignatures::Bitcoin(wrong_key) = bridge.signatures(2, btc)? else { return Err("kind".into()) };
    let mut flipped = btc_signatures.clone();
    if let Some(byte) = flipped.first_mut().and_then(|der| der.last_mut()) {
        *byte ^= 1;
    }
    let refused = [
        (ether, ReleaseSignatures::Bls(someone_elses), TxCode::InvalidReleaseSignature, "BLS share of member 1"),
        (
            ether,
            ReleaseSignatures::Bls(bls::encode_signature_share(&other_payload).to_vec()),
            TxCode::InvalidReleaseSignature,
            "does not verify over batch",
        ),
        (ether, ReleaseSignatures::Bls(vec![7; 96]), TxCode::InvalidReleaseSignature, "is not a signature share"),
        (btc, ReleaseSignatures::Bitcoin(wrong_key), TxCode::InvalidReleaseSignature, "input 0"),
        (btc, ReleaseSignatures::Bitcoin(flipped), TxCode::InvalidReleaseSignature, "input 0"),
        (btc, ReleaseSignatures::Bitcoin(vec![vec![0x30]]), TxCode::InvalidReleaseSignature, "not a strict DER"),
        (btc, ReleaseSignatures::Bls(vec![7; 96]), TxCode::InvalidMessage, "is a Bitcoin batch"),
        (ether, ReleaseSignatures::Bitcoin(vec![vec![0x30]]), TxCode::InvalidMessage, "is an Ethereum batch"),
        (99, ReleaseSignatures::Bls(vec![7; 96]), TxCode::BadBatch, "there is no batch 99"),
    ];
    for (batch, signatures, code, named) in refused {
        // Built one at a time: a message refused after the (fee-exempt) sequence check advances the sequence.
        let tx = bridge.submit_tx(1, batch, signatures)?;
        let checked = bridge.chain.check_tx(&tx)?;
        assert_eq!(checked.code, code, "{}", checked.log);
        let outcome = bridge.one(&tx)?;
        assert_eq!(outcome.code, code, "{}", outcome.log);
        assert!(outcome.log.contains(named), "`{}` does not name `{named}`", outcome.log);
    }
    assert!(bridge.chain.batch(ether)?.batch.signatures.is_empty());
    assert!(bridge.chain.batch(btc)?.batch.signatures.is_empty());

    // One signature too few or too many for the inputs.
    btc_signatures.push(btc_signatures.first().cloned().unwrap_or_default());
    let outcome = bridge.one(&bridge.submit_tx(1, btc, ReleaseSignatures::Bitcoin(btc_signatures))?)?;
    assert_eq!(outcome.code, TxCode::InvalidReleaseSignature);
    assert!(outcome.log.contains("spends 1 inputs; member 1"), "{}", outcome.log);
    Ok(())
}

#[test]
fn duties_from_non_members_or_with_a_fee_are_refused() -> TestResult {
    let mut bridge = Bridge::start()?;
    bridge.withdraw(&Denom::wei(), ETH, ETH_DESTINATION)?;
    let id = created_batch(&bridge.run_to_batch_height()?, &Denom::wei())?;
    let signatures = bridge.signatures(0, id)?;
    let alice = bridge.alice.address;
    let as_alice =
        Msg::SubmitSignatures(MsgSubmitSignatures { signer: alice, batch: id, signatures: signatures.clone() });
    let from_alice = bridge.alice.sign_fee_exempt(bridge.chain.sequence(&alice)?, &[as_alice])?;
    let member = bridge.member(0).address;
    let with_fee = bridge.member(0).sign(
        bridge.chain.sequence(&member)?,
        &coin(100, &Denom::sat()),
        &[Msg::SubmitSignatures(MsgSubmitSignatures { signer: member, batch: id, signatures })],
    )?;
    let vote_by_alice = bridge.alice.sign_fee_exempt(
        bridge.chain.sequence(&alice)?,
        &[Msg::SetPaused(MsgSetPaused { member: alice, paused: true, reason: String::new() })],
    )?;
    let release_by_alice = bridge.alice.sign_fee_exempt(
        bridge.chain.sequence(&alice)?,
        &[Msg::AttestRelease(MsgAttestRelease {
            attester: alice,
            batch: id,
            parent_tx: RELEASE_TX.to_owned(),
            parent_height: 0,
        })],
    )?;
    for (tx, code) in [
        (from_alice, TxCode::Unauthorized),
        (with_fee, TxCode::InvalidMessage),
        (vote_by_alice, TxCode::Unauthorized),
        (release_by_alice, TxCode::Unauthorized),
    ] {
        let outcome = bridge.one(&tx)?;
        assert_eq!(outcome.code, code, "{}", outcome.log);
    }
    assert!(bridge.chain.batch(id)?.batch.signatures.is_empty());
    assert!(!bridge.chain.bridge_status()?.paused);
    Ok(())
}

#[test]
fn two_of_four_signatures_leave_the_batch_signing_and_repeats_change_nothing() -> TestResult {
    let mut bridge = Bridge::start()?;
    bridge.withdraw(&Denom::sat(), 50_000, BTC_DESTINATION)?;
    let id = created_batch(&bridge.run_to_batch_height()?, &Denom::sat())?;

    let first = bridge.sign(1, id)?;
    assert_eq!(first.code, TxCode::Ok);
    let submitted = events_of(&first.events, ev::SIGNATURES_SUBMITTED);
    let [event] = submitted.as_slice() else { return Err("one signatures event".into()) };
    assert_eq!(attributes(event).get(ev::SIGNATURES), Some(&"1"));
    let recorded = bridge.chain.batch(id)?;
    let repeat = bridge.sign(1, id)?;
    assert_eq!(repeat.code, TxCode::Ok, "a repeat is harmless");
    assert!(events_of(&repeat.events, ev::SIGNATURES_SUBMITTED).is_empty());
    assert_eq!(bridge.chain.batch(id)?.batch, recorded.batch, "a repeat changes nothing");

    assert_eq!(bridge.sign(2, id)?.code, TxCode::Ok);
    for _ in 0..2 * BATCH_INTERVAL {
        bridge.chain.empty_block()?;
    }
    let waiting = bridge.chain.batch(id)?;
    assert_eq!((waiting.batch.status, waiting.signature_count), (BatchStatus::Signing, 2));
    assert_eq!(bridge.chain.pending_batches(None)?.batches.iter().map(|view| view.batch.id).collect::<Vec<_>>(), [id]);
    let early = bridge.attest_release(0, id, &release_txid(&waiting)?)?;
    assert_eq!(early.code, TxCode::BadBatch, "{}", early.log);

    // The third signature completes it; a fourth, later one is accepted and ignored.
    assert_eq!(bridge.sign(0, id)?.code, TxCode::Ok);
    let late = bridge.sign(3, id)?;
    assert_eq!(late.code, TxCode::Ok);
    let signed = bridge.chain.batch(id)?;
    assert_eq!((signed.batch.status, signed.signature_count), (BatchStatus::Signed, 3));
    Ok(())
}

fn release_txid(view: &BatchView) -> TestResult<String> {
    match &view.batch.release {
        BatchRelease::Bitcoin(release) => Ok(release.txid.clone()),
        _ => Err("not a Bitcoin batch".into()),
    }
}

#[test]
fn release_attestations_settle_at_quorum_of_one_transaction_and_bitcoin_must_name_the_batch_txid() -> TestResult {
    let mut bridge = Bridge::start()?;
    bridge.withdraw(&Denom::sat(), 50_000, BTC_DESTINATION)?;
    bridge.withdraw(&Denom::wei(), ETH, ETH_DESTINATION)?;
    let events = bridge.run_to_batch_height()?;
    let (btc, ether) = (created_batch(&events, &Denom::sat())?, created_batch(&events, &Denom::wei())?);
    for member in 0..3 {
        bridge.sign(member, btc)?;
        bridge.sign(member, ether)?;
    }
    let txid = release_txid(&bridge.chain.batch(btc)?)?;

    let wrong_txid = bridge.attest_release(0, btc, &"cd".repeat(32))?;
    assert_eq!(wrong_txid.code, TxCode::BadBatch);
    assert!(wrong_txid.log.contains(&txid), "{}", wrong_txid.log);
    assert_eq!(bridge.attest_release(0, ether, &"cd".repeat(32))?.code, TxCode::InvalidMessage);
    assert_eq!(bridge.attest_release(0, 77, &txid)?.code, TxCode::BadBatch);

    // Two members attest one Ethereum transaction, one attests another: no quorum on either.
    let other = RELEASE_TX.replace("9b", "aa");
    bridge.attest_release(0, ether, RELEASE_TX)?;
    bridge.attest_release(1, ether, &other)?;
    bridge.attest_release(2, ether, RELEASE_TX)?;
    bridge.attest_release(1, ether, RELEASE_TX)?;
    assert_eq!(bridge.chain.batch(ether)?.batch.status, BatchStatus::Signed, "a member's first attestation counts");
    let settled = bridge.attest_release(3, ether, RELEASE_TX)?;
    assert_eq!(events_of(&settled.events, ev::BATCH_RELEASED).len(), 1);
    let reserves = bridge.ledger(&Denom::wei())?.reserves;
    let late = bridge.attest_release(1, ether, RELEASE_TX)?;
    assert_eq!((late.code, bridge.ledger(&Denom::wei())?.reserves), (TxCode::Ok, reserves), "settles once");

    // Three attestations of the Bitcoin txid in one block settle it.
    let txs = (0..3).map(|member| bridge.attest_release_tx(member, btc, &txid)).collect::<TestResult<Vec<_>>>()?;
    let outcome = bridge.chain.finalize_block(&txs)?;
    assert_eq!(codes(&outcome.tx_results), [TxCode::Ok; 3]);
    assert_eq!(bridge.chain.batch(btc)?.batch.status, BatchStatus::Released);
    assert_reconciled(&bridge)
}

#[test]
fn small_withdrawals_cannot_exceed_the_window_cap_and_the_rest_batches_in_the_next_window() -> TestResult {
    // No delay: alice's total would pass the 2 ETH threshold and hold the later ones back.
    let mut rules = withdrawal_params();
    for limit in &mut rules.limits {
        limit.delay_above = limit.window_cap;
    }
    let mut bridge = Bridge::start_with(rules)?;
    // Nine withdrawals of 0.5 ETH against a cap of 3 ETH per window: six fit in a window.
    let each = ETH / 2;
    let sequence = bridge.chain.sequence(&bridge.alice.address)?;
    let txs = (0..9u64)
        .map(|offset| {
            let msg = withdraw_msg(&bridge.alice.address, &Denom::wei(), each, ETH_DESTINATION);
            bridge.alice.sign(sequence + offset, &coin(10_000_000_000, &Denom::wei()), &[msg])
        })
        .collect::<TestResult<Vec<_>>>()?;
    let results = bridge.chain.execute_block(&txs)?;
    assert_eq!(codes(&results), [TxCode::Ok; 9]);

    let mut batched = BTreeMap::new();
    let mut window_of_height = BTreeMap::new();
    while bridge.chain.height() < 3 * WINDOW_BLOCKS {
        let outcome = bridge.chain.empty_block()?;
        for event in events_of(&outcome.events, ev::BATCH_CREATED) {
            let items: u64 = attributes(event).get(ev::ITEMS).ok_or("items")?.parse()?;
            let window = bridge.chain.height() / WINDOW_BLOCKS;
            *batched.entry(window).or_insert(0u64) += items;
            window_of_height.insert(bridge.chain.height(), items);
        }
    }
    // Window 0 (heights 0-39) takes six, window 1 the remaining three.
    assert_eq!(batched, BTreeMap::from([(0, 6), (1, 3)]), "by height: {window_of_height:?}");
    for id in 1..=9 {
        assert_eq!(bridge.chain.withdrawal(&format!("wd-{id}"))?.status, WithdrawalStatus::Batched);
    }
    let first_batch = bridge.chain.batch(1)?.batch;
    let ids: Vec<String> = first_batch.items.iter().map(|item| item.withdrawal.to_string()).collect();
    assert_eq!(ids, ["wd-1", "wd-2", "wd-3", "wd-4", "wd-5", "wd-6"], "in id order");
    assert_eq!(first_batch.total.get(), 6 * each);
    Ok(())
}

/// Bob: an account alice funds with `amount` sat, and his signer.
fn fund_bob(bridge: &mut Bridge, amount: u128) -> TestResult<Signer> {
    let bob_key = key("bob")?;
    let send = driver::send(&bridge.alice.address, &bob_key.address(), &[coin(amount, &Denom::sat())]);
    let tx = bridge.user_tx(&bridge.alice, &coin(100, &Denom::sat()), &[send])?;
    let sent = bridge.one(&tx)?;
    assert_eq!(sent.code, TxCode::Ok, "{}", sent.log);
    bridge.chain.signer(&bob_key)
}

/// `signer`'s withdrawal of `amount` sat in a block of its own; returns its id.
fn withdraw_as(bridge: &mut Bridge, signer: &Signer, amount: u128) -> TestResult<String> {
    let msg = withdraw_msg(&signer.address, &Denom::sat(), amount, BTC_DESTINATION);
    let outcome = bridge.one(&bridge.user_tx(signer, &coin(100, &Denom::sat()), &[msg])?)?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    withdrawal_id(&outcome)
}

#[test]
fn large_withdrawal_waits_its_delay_while_a_later_small_one_is_batched() -> TestResult {
    let mut bridge = Bridge::start()?;
    let bob = fund_bob(&mut bridge, 2 * SAT_MIN)?;
    let large = SAT_DELAY_ABOVE + 1;
    let large_id = bridge.withdraw(&Denom::sat(), large, BTC_DESTINATION)?;
    let burned = bridge.chain.height();
    // Another sender's: alice's own would add to her total this window and wait too.
    let small_id = withdraw_as(&mut bridge, &bob, SAT_MIN)?;
    assert_eq!(bridge.chain.withdrawal(&large_id)?.withdrawal.eligible_height, burned + DELAY_BLOCKS);

    let first = created_batch(&bridge.run_to_batch_height()?, &Denom::sat())?;
    let items: Vec<String> =
        bridge.chain.batch(first)?.batch.items.iter().map(|item| item.withdrawal.to_string()).collect();
    assert_eq!(items, [small_id]);
    assert_eq!(bridge.chain.withdrawal(&large_id)?.status, WithdrawalStatus::Queued);

    let mut batched_at = None;
    while batched_at.is_none() {
        let outcome = bridge.chain.empty_block()?;
        if !events_of(&outcome.events, ev::BATCH_CREATED).is_empty() {
            batched_at = Some(bridge.chain.height());
        }
    }
    let height = batched_at.ok_or("never batched")?;
    assert!(height >= burned + DELAY_BLOCKS, "batched at {height}, burned at {burned}");
    assert!(height < burned + DELAY_BLOCKS + BATCH_INTERVAL, "batched at {height}, burned at {burned}");
    assert_eq!(bridge.chain.withdrawal(&large_id)?.status, WithdrawalStatus::Batched);
    Ok(())
}

#[test]
fn the_delay_threshold_counts_what_a_sender_withdraws_in_the_window_not_each_withdrawal() -> TestResult {
    let mut bridge = Bridge::start()?;
    let bob = fund_bob(&mut bridge, 2 * SAT_DELAY_ABOVE)?;
    // Ten withdrawals, each just under the threshold, in one block (so in one window).
    let each = SAT_DELAY_ABOVE / 4 - 1;
    let sequence = bridge.chain.sequence(&bridge.alice.address)?;
    let fee = coin(100, &Denom::sat());
    let txs = (0..10)
        .map(|offset| {
            let msg = withdraw_msg(&bridge.alice.address, &Denom::sat(), each, BTC_DESTINATION);
            bridge.alice.sign(sequence + offset, &fee, &[msg])
        })
        .collect::<TestResult<Vec<_>>>()?;
    let outcomes = bridge.block(&txs)?;
    let burned = bridge.chain.height();
    let mut eligible = Vec::new();
    for outcome in &outcomes {
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
        eligible.push(bridge.chain.withdrawal(&withdrawal_id(outcome)?)?.withdrawal.eligible_height);
    }
    // 4 × 49,999 = 199,996 is within the 200,000 threshold; the fifth takes alice past it, and
    // every one from there waits the delay.
    let mut expected = vec![burned; 4];
    expected.extend([burned + DELAY_BLOCKS; 6]);
    assert_eq!(eligible, expected);

    // Another sender in the same window has a threshold of his own.
    let bobs = withdraw_as(&mut bridge, &bob, each)?;
    assert_eq!(bridge.chain.withdrawal(&bobs)?.withdrawal.eligible_height, bridge.chain.height());

    // In the next window alice starts from zero again.
    while !(bridge.chain.height() + 1).is_multiple_of(WINDOW_BLOCKS) {
        bridge.block::<&[u8]>(&[])?;
    }
    let next = bridge.withdraw(&Denom::sat(), each, BTC_DESTINATION)?;
    assert_eq!(bridge.chain.withdrawal(&next)?.withdrawal.eligible_height, bridge.chain.height());
    assert_reconciled(&bridge)?;
    Ok(())
}

#[test]
fn withdrawals_the_rules_can_never_release_are_refused_when_submitted() -> TestResult {
    // The token pays fees but has no withdrawal limit on this chain: it is not listed, so its
    // deposit at the start was recorded and never minted — nothing of it can be withdrawn.
    let mut rules = withdrawal_params();
    rules.limits.retain(|limit| limit.denom != token());
    let mut bridge = Bridge::start_with(rules)?;
    assert_eq!(bridge.chain.balance(&bridge.alice.address, &token())?, 0, "an unlisted token is never minted");
    let cases = [
        (
            Denom::sat(),
            SAT_CAP + 1,
            BTC_DESTINATION,
            TxCode::WithdrawalRefused,
            "exceeds the cap of 500000sat per 40-block window",
        ),
        (Denom::sat(), SAT_MIN - 1, BTC_DESTINATION, TxCode::WithdrawalRefused, "below the minimum of 10000sat"),
        (token(), 5, ETH_DESTINATION, TxCode::InsufficientFunds, "holds 0"),
    ];
    let before = bridge.chain.reserves()?;
    for (asset, amount, destination, code, named) in cases {
        let outcome = bridge.one(&bridge.withdraw_tx(&asset, amount, destination)?)?;
        assert_eq!(outcome.code, code, "{}", outcome.log);
        assert!(outcome.log.contains(named), "`{}` does not name `{named}`", outcome.log);
    }
    assert_eq!(bridge.chain.reserves()?.assets, before.assets, "nothing burned");
    assert_eq!(bridge.chain.query("/withdrawal/wd-1")?.code, QUERY_NOT_FOUND);
    Ok(())
}

#[test]
fn ether_withdrawals_are_refused_while_no_vault_is_configured() -> TestResult {
    let mut bridge = Bridge::start_with(WithdrawalParams { ethereum: None, ..withdrawal_params() })?;
    let outcome = bridge.one(&bridge.withdraw_tx(&Denom::wei(), ETH, ETH_DESTINATION)?)?;
    assert_eq!(outcome.code, TxCode::WithdrawalRefused);
    assert!(outcome.log.contains("params.withdrawals.ethereum"), "{}", outcome.log);
    Ok(())
}

#[test]
fn bad_destinations_are_refused_with_the_named_error() -> TestResult {
    let mut bridge = Bridge::start()?;
    let peg = bridge.peg()?.address().to_string();
    let bad_checksum = ETH_DESTINATION.replace("aAe", "AAe");
    let cases = [
        (Denom::sat(), MAINNET_DESTINATION.to_owned(), "this peg is on regtest"),
        (Denom::sat(), peg, "is the peg itself"),
        (Denom::sat(), ETH_DESTINATION.to_owned(), "not a Bitcoin address"),
        (Denom::wei(), bad_checksum, "EIP-55 checksum mismatch"),
        (Denom::wei(), "0x0000000000000000000000000000000000000000".to_owned(), "zero address"),
        (Denom::wei(), BTC_DESTINATION.to_owned(), "not an Ethereum address"),
    ];
    for (asset, destination, named) in cases {
        let amount = if asset == Denom::sat() { SAT_MIN } else { ETH };
        let tx = bridge.withdraw_tx(&asset, amount, &destination)?;
        let checked = bridge.chain.check_tx(&tx)?;
        let outcome = bridge.one(&tx)?;
        for result in [&checked, &outcome] {
            assert_eq!(result.code, TxCode::InvalidMessage, "{destination}: {}", result.log);
            assert!(
                result.log.contains("destination") && result.log.contains(named),
                "`{}` lacks `{named}`",
                result.log
            );
        }
    }
    assert_eq!(bridge.chain.query("/withdrawal/wd-1")?.code, QUERY_NOT_FOUND);
    Ok(())
}

#[test]
fn withdrawal_beyond_the_balance_is_refused_and_burns_nothing() -> TestResult {
    let mut bridge = Bridge::start()?;
    // Alice keeps 200 000 sat less the transfer's fee, then asks to withdraw 200 000 sat.
    let bob = key("bob")?.address();
    let kept = 200_000;
    let given = bridge.chain.balance(&bridge.alice.address, &Denom::sat())? - kept;
    let transfer = bridge.alice.transfer(
        bridge.chain.sequence(&bridge.alice.address)?,
        &bob,
        &[coin(given, &Denom::sat())],
        &coin(100, &Denom::sat()),
    )?;
    assert_eq!(bridge.one(&transfer)?.code, TxCode::Ok);
    let balance = bridge.chain.balance(&bridge.alice.address, &Denom::sat())?;
    assert_eq!(balance, kept - 100);
    let tx = bridge.withdraw_tx(&Denom::sat(), kept, BTC_DESTINATION)?;

    let checked = bridge.chain.check_tx(&tx)?;
    assert_eq!(checked.code, TxCode::InsufficientFunds);
    assert_eq!(bridge.chain.mempool_balance(&bridge.alice.address, &Denom::sat())?, balance, "CheckTx changes nothing");
    let ledger = bridge.ledger(&Denom::sat())?;
    let outcome = bridge.one(&tx)?;

    assert_eq!(outcome.code, TxCode::InsufficientFunds, "{}", outcome.log);
    assert!(events_of(&outcome.events, ev::WITHDRAWAL_QUEUED).is_empty());
    assert_eq!(bridge.ledger(&Denom::sat())?, ledger, "nothing burned");
    assert_eq!(bridge.chain.balance(&bridge.alice.address, &Denom::sat())?, balance - 100, "only the fee is charged");
    assert_eq!(bridge.chain.query("/withdrawal/wd-1")?.code, QUERY_NOT_FOUND);
    let next = bridge.withdraw(&Denom::sat(), SAT_MIN, BTC_DESTINATION)?;
    assert_eq!(next, "wd-1", "the refused withdrawal took no id");
    assert_reconciled(&bridge)
}

#[test]
fn bitcoin_withdrawals_beyond_the_free_reserves_stay_queued_until_the_locked_ones_settle() -> TestResult {
    // Neither the window cap nor a delay holds these withdrawals back: only the reserves do.
    let mut rules = withdrawal_params();
    for limit in &mut rules.limits {
        limit.window_cap = Amount::new(u128::from(u64::MAX));
        limit.delay_above = limit.window_cap;
    }
    let mut bridge = Bridge::start_with(rules)?;
    // 450 000 sat takes the 600 000 sat UTXO and locks it. 399 500 sat would leave a 500 sat
    // change from the free 400 000 sat UTXO — dust, and no other free UTXO to add — so it waits.
    let first = bridge.withdraw(&Denom::sat(), 450_000, BTC_DESTINATION)?;
    let events = bridge.run_to_batch_height()?;
    let batch = created_batch(&events, &Denom::sat())?;
    let second = bridge.withdraw(&Denom::sat(), 399_500, BTC_DESTINATION)?;
    let events = bridge.run_to_batch_height()?;
    let deferred = events_of(&events, ev::BATCH_DEFERRED);
    assert_eq!(deferred.len(), 1, "{events:?}");
    assert!(events_of(&events, ev::BATCH_CREATED).is_empty());
    let waiting = bridge.chain.withdrawal(&second)?;
    assert_eq!(waiting.status, WithdrawalStatus::Queued);
    let reason = attributes(deferred.first().ok_or("no deferral")?).get(ev::REASON).map(|reason| (*reason).to_owned());
    assert_eq!(waiting.withdrawal.waiting, reason, "the withdrawal says why it waits");
    assert_eq!(events_of(&events, ev::WITHDRAWAL_WAITING).len(), 1, "{events:?}");

    for member in 0..3 {
        bridge.sign(member, batch)?;
    }
    let txid = release_txid(&bridge.chain.batch(batch)?)?;
    for member in 0..3 {
        bridge.attest_release(member, batch, &txid)?;
    }
    assert_eq!(bridge.chain.withdrawal(&first)?.status, WithdrawalStatus::Released);
    // The change (149 000 sat) and the 400 000 sat UTXO now pay it.
    let events = bridge.run_to_batch_height()?;
    let next = created_batch(&events, &Denom::sat())?;
    let view = bridge.chain.batch(next)?;
    let BatchRelease::Bitcoin(release) = &view.batch.release else { return Err("not Bitcoin".into()) };
    assert_eq!(release.plan.inputs().len(), 2);
    assert!(release.plan.inputs().iter().any(|input| input.txid == txid), "spends the change");
    assert_reconciled(&bridge)
}

#[test]
fn forced_reserves_violation_pauses_the_bridge_while_blocks_keep_coming_until_a_quorum_resumes_it() -> TestResult {
    let mut bridge = Bridge::start()?;
    // A signed Ethereum batch on its way, and a queued Bitcoin withdrawal, before the violation.
    bridge.withdraw(&Denom::wei(), ETH, ETH_DESTINATION)?;
    let ether = created_batch(&bridge.run_to_batch_height()?, &Denom::wei())?;
    let mut txs = vec![bridge.withdraw_tx(&Denom::sat(), SAT_MIN, BTC_DESTINATION)?];
    for member in 0..3 {
        txs.push(bridge.submit_tx(member, ether, bridge.signatures(member, ether)?)?);
    }
    assert_eq!(codes(&bridge.block(&txs)?), [TxCode::Ok; 4]);
    assert_eq!(bridge.chain.batch(ether)?.batch.status, BatchStatus::Signed);
    assert!(
        !bridge.chain.height().is_multiple_of(BATCH_INTERVAL),
        "the violation must come before the next batching height"
    );

    let honest = bridge.ledger(&Denom::sat())?;
    let broken = AssetLedger { reserves: Amount::new(honest.reserves.get() - 1), ..honest.clone() };
    bridge.chain.overwrite_committed(ferry_app::bridge::keys::ledger(&Denom::sat()), ferry_app::state::encode(&broken));
    let height = bridge.chain.height() + 1;
    let outcome = bridge.chain.empty_block()?;

    let paused = events_of(&outcome.events, ev::BRIDGE_PAUSED);
    let [event] = paused.as_slice() else { return Err(format!("no bridge_paused event: {:?}", outcome.events).into()) };
    let reason = attributes(event).get(ev::REASON).map(|reason| (*reason).to_owned()).unwrap_or_default();
    assert!(reason.starts_with("reserves invariant violated for sat: "), "{reason}");
    let status = bridge.chain.bridge_status()?;
    assert_eq!((status.paused, status.since_height, status.reason.as_str()), (true, height, reason.as_str()));

    // Blocks keep coming, and no batch forms at the batching heights they pass.
    for _ in 0..2 * BATCH_INTERVAL {
        let outcome = bridge.chain.empty_block()?;
        assert!(events_of(&outcome.events, ev::BATCH_CREATED).is_empty());
        assert!(events_of(&outcome.events, ev::BRIDGE_PAUSED).is_empty(), "reported once");
    }
    assert_eq!(bridge.chain.height(), height + 2 * BATCH_INTERVAL);
    assert_eq!(bridge.chain.withdrawal("wd-2")?.status, WithdrawalStatus::Queued);

    // No mint, no withdrawal, no signatures; releases already out still settle.
    let alice = bridge.alice.address;
    let new_deposit = DepositFacts { index: 9, ..deposits(&alice).remove(0) };
    let mint = bridge.duty_tx(0, &[attestation(&bridge.member(0).address, &new_deposit)])?;
    let withdraw = bridge.withdraw_tx(&Denom::sat(), SAT_MIN, BTC_DESTINATION)?;
    let signature = bridge.submit_tx(3, ether, bridge.signatures(3, ether)?)?;
    for tx in [mint, withdraw, signature] {
        assert_eq!(bridge.chain.check_tx(&tx)?.code, TxCode::BridgePaused);
        let outcome = bridge.one(&tx)?;
        assert_eq!(outcome.code, TxCode::BridgePaused);
        assert!(outcome.log.contains("reserves invariant violated for sat"), "{}", outcome.log);
    }
    for member in 0..3 {
        assert_eq!(bridge.attest_release(member, ether, RELEASE_TX)?.code, TxCode::Ok);
    }
    assert_eq!(bridge.chain.batch(ether)?.batch.status, BatchStatus::Released);

    // Resuming while the ledger is still broken pauses again at the end of the same block.
    let votes = (0..3).map(|member| bridge.vote_tx(member, false)).collect::<TestResult<Vec<_>>>()?;
    let outcome = bridge.chain.finalize_block(&votes)?;
    assert_eq!(codes(&outcome.tx_results), [TxCode::Ok; 3]);
    assert_eq!(events_of(&outcome.tx_results[2].events, ev::BRIDGE_RESUMED).len(), 1);
    assert_eq!(events_of(&outcome.events, ev::BRIDGE_PAUSED).len(), 1);
    assert!(bridge.chain.bridge_status()?.paused);

    // Repaired, two votes to resume are not enough; the third resumes and nothing re-pauses.
    let repaired = AssetLedger { reserves: honest.reserves, ..bridge.ledger(&Denom::sat())? };
    bridge
        .chain
        .overwrite_committed(ferry_app::bridge::keys::ledger(&Denom::sat()), ferry_app::state::encode(&repaired));
    for member in [0, 1] {
        bridge.one(&bridge.vote_tx(member, false)?)?;
    }
    let status = bridge.chain.bridge_status()?;
    assert!(status.paused);
    assert_eq!(status.votes.len(), 2);
    let resumed = bridge.one(&bridge.vote_tx(3, false)?)?;
    assert_eq!(events_of(&resumed.events, ev::BRIDGE_RESUMED).len(), 1);
    let status = bridge.chain.bridge_status()?;
    assert!(!status.paused);
    assert!(status.votes.is_empty(), "votes reset at the flip");
    assert!(status.reason.contains("resumed by a vote of 3 members"), "{}", status.reason);
    bridge.run_to_batch_height()?;
    assert_eq!(bridge.chain.withdrawal("wd-2")?.status, WithdrawalStatus::Batched);
    assert!(!bridge.chain.bridge_status()?.paused);
    Ok(())
}

#[test]
fn pause_votes_flip_the_bridge_only_at_quorum() -> TestResult {
    let mut bridge = Bridge::start()?;
    for member in [0, 1] {
        assert_eq!(bridge.one(&bridge.vote_tx(member, true)?)?.code, TxCode::Ok);
    }
    assert!(!bridge.chain.bridge_status()?.paused, "two of four do not pause");
    // A member changing its mind replaces its vote.
    bridge.one(&bridge.vote_tx(1, false)?)?;
    bridge.one(&bridge.vote_tx(2, true)?)?;
    assert!(!bridge.chain.bridge_status()?.paused, "still two for pausing");
    bridge.one(&bridge.vote_tx(3, true)?)?;
    let status = bridge.chain.bridge_status()?;
    assert!(status.paused);
    assert!(status.reason.contains("paused by a vote of 3 members: halt"), "{}", status.reason);
    let outcome = bridge.one(&bridge.withdraw_tx(&Denom::sat(), SAT_MIN, BTC_DESTINATION)?)?;
    assert_eq!(outcome.code, TxCode::BridgePaused);
    for member in [0, 2, 3] {
        bridge.one(&bridge.vote_tx(member, false)?)?;
    }
    assert!(!bridge.chain.bridge_status()?.paused);
    assert_eq!(bridge.one(&bridge.withdraw_tx(&Denom::sat(), SAT_MIN, BTC_DESTINATION)?)?.code, TxCode::Ok);
    Ok(())
}

#[test]
fn queries_answer_withdrawals_batches_pending_pages_and_refuse_malformed_ids() -> TestResult {
    let mut bridge = Bridge::start_with(WithdrawalParams { max_batch_items: 1, ..withdrawal_params() })?;
    let sequence = bridge.chain.sequence(&bridge.alice.address)?;
    // Twenty ether withdrawals, one per batch: more pending batches than one page holds.
    let count = 20u64;
    let txs = (0..count)
        .map(|offset| {
            let msg = withdraw_msg(&bridge.alice.address, &Denom::wei(), ETH / 1_000, ETH_DESTINATION);
            bridge.alice.sign(sequence + offset, &coin(10_000_000_000, &Denom::wei()), &[msg])
        })
        .collect::<TestResult<Vec<_>>>()?;
    assert!(bridge.chain.execute_block(&txs)?.iter().all(|result| result.code == TxCode::Ok));
    for _ in 0..count {
        bridge.chain.empty_block()?;
        bridge.run_to_batch_height()?;
    }
    let page = bridge.chain.pending_batches(None)?;
    let page_ids: Vec<u64> = page.batches.iter().map(|view| view.batch.id).collect();
    assert_eq!(page.pending, count);
    assert_eq!(page_ids, (1..=16).collect::<Vec<_>>());
    assert_eq!(page.next_after, Some(16));
    let rest = bridge.chain.pending_batches(Some(16))?;
    assert_eq!(rest.batches.iter().map(|view| view.batch.id).collect::<Vec<_>>(), [17, 18, 19, 20]);
    assert_eq!(rest.next_after, None);

    assert_eq!(bridge.chain.query("/batch/batch-3")?.value, bridge.chain.query("/batch/3")?.value);
    for bad in ["/withdrawal/wd-01", "/withdrawal/7", "/batch/0", "/batch/x", "/batches/pending/x", "/batches/pendingx"]
    {
        assert_eq!(bridge.chain.query(bad)?.code, QUERY_BAD_REQUEST, "{bad}");
    }
    assert_eq!(bridge.chain.query("/batch/21")?.code, QUERY_NOT_FOUND);
    assert_eq!(bridge.chain.query("/withdrawal/wd-21")?.code, QUERY_NOT_FOUND);
    let status = bridge.chain.bridge_status()?;
    assert_eq!((status.paused, status.since_height), (false, 0));
    Ok(())
}

#[test]
fn two_chains_fed_the_same_blocks_reach_the_same_state_at_every_height() -> TestResult {
    let mut one = Bridge::start()?;
    one.withdraw(&Denom::sat(), 50_000, BTC_DESTINATION)?;
    one.withdraw(&Denom::wei(), ETH, ETH_DESTINATION)?;
    let events = one.run_to_batch_height()?;
    let batches = [created_batch(&events, &Denom::sat())?, created_batch(&events, &Denom::wei())?];
    for id in batches {
        for member in 0..3 {
            assert_eq!(one.sign(member, id)?.code, TxCode::Ok);
        }
    }
    assert_eq!(u64::try_from(one.fed.len())?, one.chain.height(), "every block of the first chain was recorded");

    // The second chain starts from the same genesis and is handed the very bytes of every block
    // the first one ran, as CometBFT hands each validator the decided block: nothing is rebuilt.
    let mut two = Chain::start(&genesis(withdrawal_params(), &one.bls)?)?;
    assert_eq!(two.committed_at(0).map(MemoryState::entries), one.chain.committed_at(0).map(MemoryState::entries));
    for (index, (txs, first)) in one.fed.iter().enumerate() {
        let height = index + 1;
        let second = two.finalize_block(txs)?;
        assert_eq!(second.tx_results, first.tx_results, "transaction results at height {height}");
        assert_eq!(second.events, first.events, "block events at height {height}");
        assert_eq!(second.changes, first.changes, "the writes (what the app hash commits to) at height {height}");
    }
    assert_eq!(two.height(), one.chain.height());
    let mut states = BTreeSet::new();
    for height in 0..=one.chain.height() {
        let stored = |chain: &Chain| chain.committed_at(height).map(MemoryState::entries).cloned();
        let (first, second) = (stored(&one.chain), stored(&two));
        assert!(first.is_some(), "no state at height {height}");
        assert_eq!(first, second, "stored keys and values at height {height}");
        states.insert(first);
    }
    // The blocks did something: every height holds another state, and both batches are signed.
    assert_eq!(u64::try_from(states.len())?, one.chain.height() + 1, "a block left the state unchanged");
    for id in batches {
        assert_eq!(two.batch(id)?.batch.status, BatchStatus::Signed);
    }
    Ok(())
}

#[test]
fn every_bridge_response_code_after_overflow_is_reachable_in_finalize_block_and_check_tx() -> TestResult {
    // Both chains: alice's ether withdrawal is batched and its batch collects signatures.
    let start = || -> TestResult<(Bridge, u64)> {
        let mut bridge = Bridge::start()?;
        bridge.withdraw(&Denom::wei(), ETH, ETH_DESTINATION)?;
        let id = created_batch(&bridge.run_to_batch_height()?, &Denom::wei())?;
        Ok((bridge, id))
    };
    let (mut in_block, id) = start()?;
    let (mut in_mempool, same_id) = start()?;
    assert_eq!(id, same_id);
    // One signer per transaction: a refused message still spends its signer's sequence in a
    // block, but not in CheckTx.
    let while_running = |bridge: &Bridge| -> TestResult<Vec<Vec<u8>>> {
        Ok(vec![
            bridge.withdraw_tx(&Denom::sat(), SAT_MIN - 1, BTC_DESTINATION)?,
            bridge.submit_tx(3, id, ReleaseSignatures::Bls(vec![7; 96]))?,
            bridge.attest_release_tx(2, id, RELEASE_TX)?,
        ])
    };
    let block_running = in_block.block(&while_running(&in_block)?)?;
    let mut check_running = Vec::new();
    for tx in while_running(&in_mempool)? {
        check_running.push(in_mempool.chain.check_tx(&tx)?);
    }

    // A quorum votes to pause, in a block of each chain; then alice withdraws.
    let mut block_paused = Vec::new();
    let mut check_paused = Vec::new();
    for (bridge, in_check_tx) in [(&mut in_block, false), (&mut in_mempool, true)] {
        let votes = (0..3).map(|member| bridge.vote_tx(member, true)).collect::<TestResult<Vec<_>>>()?;
        assert_eq!(codes(&bridge.block(&votes)?), [TxCode::Ok; 3]);
        assert!(bridge.chain.bridge_status()?.paused);
        let withdraw = bridge.withdraw_tx(&Denom::wei(), ETH, ETH_DESTINATION)?;
        if in_check_tx {
            check_paused.push(bridge.chain.check_tx(&withdraw)?);
        } else {
            block_paused.push(bridge.one(&withdraw)?);
        }
    }

    // `duty_limit` is reached by a flood of duties, `reserves_round` by reserves snapshots, in
    // their own tests below; `federation_change` in the federation tests (tests/federation.rs).
    let bridge_codes: Vec<TxCode> = TxCode::ALL
        .into_iter()
        .filter(|code| {
            *code > TxCode::Overflow
                && !matches!(code, TxCode::DutyLimit | TxCode::ReservesRound | TxCode::FederationChange)
        })
        .collect();
    let reached = |running: &[TxOutcome], paused: &[TxOutcome]| -> BTreeSet<TxCode> {
        codes(running).into_iter().chain(codes(paused)).collect()
    };
    assert_eq!(reached(&block_running, &block_paused), bridge_codes.iter().copied().collect());
    assert_eq!(reached(&check_running, &check_paused), bridge_codes.iter().copied().collect());
    let expected = [TxCode::WithdrawalRefused, TxCode::InvalidReleaseSignature, TxCode::BadBatch];
    assert_eq!(codes(&block_running), expected, "{block_running:?}");
    assert_eq!(codes(&check_running), expected, "{check_running:?}");
    assert_eq!(codes(&block_paused), [TxCode::BridgePaused]);
    assert_eq!(codes(&check_paused), [TxCode::BridgePaused]);
    for (block, check) in block_running.iter().zip(&check_running) {
        assert_eq!(block.log, check.log, "CheckTx and FinalizeBlock give the same reason");
    }
    for paused in block_paused.iter().chain(&check_paused) {
        assert!(paused.log.contains("the bridge is paused since height"), "{}", paused.log);
    }
    Ok(())
}

#[test]
fn bitcoin_budgets_are_checked_when_submitted_naming_the_rule() -> TestResult {
    let mut bridge = Bridge::start()?;
    let peg = bridge.peg()?;
    let floor = lone_release_fee(&peg, BTC_DESTINATION, Amount::new(50_000), 1, FeeRate::from_sat_per_vb(1))?.get();
    let cases = [
        (Denom::sat(), 50_000, 0, TxCode::InvalidMessage, "needs max_fee"),
        (Denom::sat(), 50_000, floor - 1, TxCode::WithdrawalRefused, "it could never be paid"),
        (Denom::sat(), 50_000, 50_000 - DUST + 1, TxCode::WithdrawalRefused, "below the 546sat dust limit"),
        (Denom::wei(), ETH / 100, 10, TxCode::InvalidMessage, "Bitcoin withdrawals only"),
    ];
    let before = bridge.chain.reserves()?;
    for (asset, amount, max_fee, code, named) in cases {
        let outcome = bridge.one(&bridge.withdraw_any_tx(&asset, amount, destination_for(&asset), max_fee)?)?;
        assert_eq!(outcome.code, code, "{asset} max_fee {max_fee}: {}", outcome.log);
        assert!(outcome.log.contains(named), "`{}` does not name `{named}`", outcome.log);
    }
    assert_eq!(bridge.chain.reserves()?.assets, before.assets, "nothing burned");
    let at_floor = bridge.one(&bridge.withdraw_sat_tx(50_000, BTC_DESTINATION, floor)?)?;
    assert_eq!(at_floor.code, TxCode::Ok, "the floor itself is a payable budget: {}", at_floor.log);
    Ok(())
}

/// A destination on `asset`'s parent chain.
fn destination_for(asset: &Denom) -> &'static str {
    if *asset == Denom::sat() { BTC_DESTINATION } else { ETH_DESTINATION }
}

#[test]
fn a_withdrawal_whose_fee_share_exceeds_its_budget_waits_with_the_reason_and_does_not_hold_back_the_others()
-> TestResult {
    let mut bridge = Bridge::start()?;
    let peg = bridge.peg()?;
    // The floor-rate budget: accepted, but at the start rate of 2 sat/vB its share is about double.
    let tight = lone_release_fee(&peg, BTC_DESTINATION, Amount::new(40_000), 1, FeeRate::from_sat_per_vb(1))?.get();
    let outcomes = bridge.block(&[bridge.withdraw_sat_tx(40_000, BTC_DESTINATION, tight)?])?;
    assert_eq!(codes(&outcomes), [TxCode::Ok]);
    let patient = withdrawal_id(outcomes.first().ok_or("no outcome")?)?;
    let paid = bridge.withdraw(&Denom::sat(), 60_000, BTC_DESTINATION)?;

    let events = bridge.run_to_batch_height()?;
    let batch_id = created_batch(&events, &Denom::sat())?;
    let batch = bridge.chain.batch(batch_id)?.batch;
    let items: Vec<String> = batch.items.iter().map(|item| item.withdrawal.to_string()).collect();
    assert_eq!(items, [paid], "the one within its budget goes");
    let waiting = events_of(&events, ev::WITHDRAWAL_WAITING);
    assert_eq!(waiting.len(), 1, "{events:?}");
    let attributes = attributes(waiting.first().ok_or("no event")?);
    assert_eq!(attributes.get(ev::WITHDRAWAL_ID).map(ToString::to_string), Some(patient.clone()));
    let view = bridge.chain.withdrawal(&patient)?;
    assert_eq!(view.status, WithdrawalStatus::Queued);
    let reason = view.withdrawal.waiting.ok_or("no waiting reason on the record")?;
    assert!(reason.contains(&format!("above its max_fee of {tight} sat")), "{reason}");
    assert!(reason.contains("2 sat/vB"), "names the rate: {reason}");

    // The next batching height leaves it waiting, alone now, without a second event.
    bridge.block::<&[u8]>(&[])?;
    let again = bridge.run_to_batch_height()?;
    assert!(events_of(&again, ev::WITHDRAWAL_WAITING).is_empty(), "{again:?}");
    assert_reconciled(&bridge)
}

#[test]
fn the_parent_clock_moves_at_a_quorum_and_the_fee_rate_follows_release_delays_within_its_bounds() -> TestResult {
    let mut bridge = Bridge::start()?;
    assert_eq!(bridge.fees()?.fee_rate, FeeRate::from_sat_per_vb(START_RATE));
    for member in [0, 1] {
        bridge.report_height(member, 100)?;
    }
    assert_eq!(bridge.fees()?.parent_height, 0, "two of four reports are not a quorum");
    let moved = bridge.report_height(2, 100)?;
    assert_eq!(events_of(&moved.events, ev::PARENT_HEIGHT).len(), 1);
    bridge.report_height(3, 150)?;
    bridge.report_height(0, 10_000)?;
    assert_eq!(bridge.fees()?.parent_height, 100, "one member ahead, or lying, does not move the clock");

    // A release signed at 100 and mined at 101: faster than the 3-block target, the rate falls
    // from 2 to the floor of 1 sat/vB.
    let settle = |bridge: &mut Bridge, mined: u64| -> TestResult<Vec<Event>> {
        bridge.withdraw(&Denom::sat(), 30_000, BTC_DESTINATION)?;
        let events = bridge.run_to_batch_height()?;
        let id = created_batch(&events, &Denom::sat())?;
        for member in [0, 1, 2] {
            bridge.sign(member, id)?;
        }
        let txid = release_txid(&bridge.chain.batch(id)?)?;
        let mut last = Vec::new();
        for member in [1, 2, 3] {
            let tx = bridge.attest_release_at_tx(member, id, &txid, mined)?;
            last = bridge.one(&tx)?.events;
        }
        assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Released);
        Ok(last)
    };
    let events = settle(&mut bridge, 101)?;
    assert_eq!(events_of(&events, ev::FEE_RATE_CHANGED).len(), 1);
    let fees = bridge.fees()?;
    assert_eq!((fees.fee_rate, fees.last_release_waited), (FeeRate::from_sat_per_vb(1), Some(1)));
    settle(&mut bridge, 101)?;
    assert_eq!(bridge.fees()?.fee_rate, FeeRate::from_sat_per_vb(1), "never below the floor");

    // Signed at 100, mined at 110: slower than the target, up by max(×1.25, +1 sat/vB).
    settle(&mut bridge, 110)?;
    let fees = bridge.fees()?;
    assert_eq!((fees.fee_rate, fees.last_release_waited), (FeeRate::from_sat_per_vb(2), Some(10)));
    for member in [1, 2, 3] {
        bridge.report_height(member, 200)?;
    }
    // Signed at 200, mined at 203: on target, unchanged.
    let events = settle(&mut bridge, 203)?;
    assert!(events_of(&events, ev::FEE_RATE_CHANGED).is_empty());
    assert_eq!(bridge.fees()?.fee_rate, FeeRate::from_sat_per_vb(2));
    assert_reconciled(&bridge)
}

/// Alice withdraws to the Bitcoin destination with `max_fee`; the batch forms and members 0–2
/// sign it. Returns the batch id.
fn signed_bitcoin_batch(bridge: &mut Bridge, amount: u128, max_fee: u128) -> TestResult<u64> {
    let outcome = bridge.one(&bridge.withdraw_sat_tx(amount, BTC_DESTINATION, max_fee)?)?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let events = bridge.run_to_batch_height()?;
    let id = created_batch(&events, &Denom::sat())?;
    for member in [0, 1, 2] {
        bridge.sign(member, id)?;
    }
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Signed);
    Ok(id)
}

fn bitcoin_release(view: &BatchView) -> TestResult<ferry_types::query::BitcoinRelease> {
    match &view.batch.release {
        BatchRelease::Bitcoin(release) => Ok(release.clone()),
        _ => Err("not a Bitcoin batch".into()),
    }
}

/// Members 1–3 report Bitcoin at `height`; returns the block-level events of their blocks.
fn clock_to(bridge: &mut Bridge, height: u64) -> TestResult<Vec<Event>> {
    for member in [1, 2, 3] {
        bridge.report_height(member, height)?;
    }
    Ok(std::mem::take(&mut bridge.block_events))
}

#[test]
fn a_release_unconfirmed_for_a_bump_period_is_replaced_and_whichever_version_confirms_settles() -> TestResult {
    let mut bridge = Bridge::start()?;
    clock_to(&mut bridge, 100)?;
    let amount = 80_000;
    let id = signed_bitcoin_batch(&mut bridge, amount, BTC_BUDGET)?;
    let first = bitcoin_release(&bridge.chain.batch(id)?)?;
    assert_eq!((first.version, first.signed_parent_height, first.bump_parent_height), (0, Some(100), Some(100)));

    // One block short of the bump period: nothing happens.
    let early = clock_to(&mut bridge, 100 + BUMP_AFTER - 1)?;
    assert!(events_of(&early, ev::RELEASE_REPLACED).is_empty(), "{early:?}");
    let due = clock_to(&mut bridge, 100 + BUMP_AFTER)?;
    assert_eq!(events_of(&due, ev::RELEASE_REPLACED).len(), 1, "{due:?}");

    let view = bridge.chain.batch(id)?;
    let second = bitcoin_release(&view)?;
    assert_eq!(view.batch.status, BatchStatus::Signing, "the replacement needs signatures");
    assert!(view.batch.signatures.is_empty());
    assert_eq!(second.version, 1);
    assert_eq!(second.fee_rate, bumped_rate(FeeRate::from_sat_per_vb(START_RATE)));
    let kept = second.superseded.first().ok_or("the first version is not kept")?;
    assert_eq!((kept.txid.as_str(), kept.signatures.len()), (first.txid.as_str(), 3));
    // Same inputs and change, same destinations paid less, and a fee nodes accept as a replacement.
    assert_eq!(second.plan.inputs(), first.plan.inputs());
    assert_eq!(second.plan.change(), first.plan.change());
    for (new, old) in second.plan.outputs().iter().zip(first.plan.outputs()) {
        assert_eq!(new.script_pubkey, old.script_pubkey);
        assert!(new.amount < old.amount, "{} < {}", new.amount, old.amount);
    }
    let vsize = u128::from(second.plan.max_vsize(&bridge.peg()?));
    assert!(second.plan.fee().get() >= first.plan.fee().get() + vsize, "BIP 125: the fee pays its own relay");
    let withdrawal = bridge.chain.withdrawal("wd-1")?;
    assert_eq!(withdrawal.status, WithdrawalStatus::Signed, "an earlier version is signed and out there");

    // The replacement is signed; then the FIRST version is the one that confirmed.
    for member in [0, 2, 3] {
        bridge.sign(member, id)?;
    }
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Signed);
    let unknown = bridge.attest_release(1, id, &"cd".repeat(32))?;
    assert_eq!(unknown.code, TxCode::BadBatch, "{}", unknown.log);
    for member in [1, 2, 3] {
        let outcome = bridge.attest_release(member, id, &first.txid)?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    }
    let settled = bridge.chain.batch(id)?;
    assert_eq!(settled.batch.status, BatchStatus::Released);
    assert_eq!(settled.batch.release_tx.as_deref(), Some(first.txid.as_str()));
    let paid = first.plan.outputs().first().ok_or("no output")?.amount;
    assert_eq!(bridge.chain.withdrawal("wd-1")?.paid, Some(paid), "paid what the confirmed version paid");
    let change = first.plan.change().ok_or("no change")?;
    let utxos = bridge.chain.reserves()?.bitcoin_utxos;
    assert!(utxos.iter().any(|utxo| utxo.txid == first.txid && utxo.amount == change), "{utxos:?}");
    assert_reconciled(&bridge)
}

#[test]
fn a_replacement_beyond_the_budgets_is_not_formed_and_says_why() -> TestResult {
    let mut bridge = Bridge::start()?;
    clock_to(&mut bridge, 100)?;
    // A budget just above its share at the start rate: no room for a replacement's fee.
    let peg = bridge.peg()?;
    let share = lone_release_fee(&peg, BTC_DESTINATION, Amount::new(60_000), 1, FeeRate::from_sat_per_vb(START_RATE))?;
    let id = signed_bitcoin_batch(&mut bridge, 60_000, share.get() + 10)?;
    let before = bitcoin_release(&bridge.chain.batch(id)?)?;
    let events = clock_to(&mut bridge, 100 + BUMP_AFTER)?;
    let blocked = events_of(&events, ev::REPLACEMENT_BLOCKED);
    assert_eq!(blocked.len(), 1, "{events:?}");
    let view = bridge.chain.batch(id)?;
    let after = bitcoin_release(&view)?;
    assert_eq!((view.batch.status, after.version, after.txid.as_str()), (BatchStatus::Signed, 0, before.txid.as_str()));
    let reason = after.bump_blocked.ok_or("no reason recorded")?;
    assert!(reason.contains("within the withdrawals' budgets"), "{reason}");
    // Tried again a bump period later, without a second event for the same reason.
    let again = clock_to(&mut bridge, 100 + 2 * BUMP_AFTER)?;
    assert!(events_of(&again, ev::REPLACEMENT_BLOCKED).is_empty(), "{again:?}");
    assert_reconciled(&bridge)
}

#[test]
fn the_replaced_version_confirming_settles_the_batch_while_its_replacement_is_still_being_signed() -> TestResult {
    let mut bridge = Bridge::start()?;
    clock_to(&mut bridge, 100)?;
    let id = signed_bitcoin_batch(&mut bridge, 70_000, BTC_BUDGET)?;
    let first = bitcoin_release(&bridge.chain.batch(id)?)?;
    clock_to(&mut bridge, 100 + BUMP_AFTER)?;
    let replacing = bridge.chain.batch(id)?;
    let second = bitcoin_release(&replacing)?;
    assert_eq!((replacing.batch.status, second.version), (BatchStatus::Signing, 1));
    // The unsigned replacement cannot have been released.
    let early = bridge.attest_release(1, id, &second.txid)?;
    assert_eq!(early.code, TxCode::BadBatch, "{}", early.log);
    for member in [1, 2, 3] {
        let outcome = bridge.attest_release(member, id, &first.txid)?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    }
    let settled = bridge.chain.batch(id)?;
    assert_eq!(
        (settled.batch.status, settled.batch.release_tx.as_deref()),
        (BatchStatus::Released, Some(first.txid.as_str()))
    );
    // Late signatures for the replacement change nothing.
    let late = bridge.sign(0, id)?;
    assert_eq!(late.code, TxCode::Ok, "{}", late.log);
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Released);
    assert_reconciled(&bridge)
}

/// Member `index` votes to abort batch `id`, naming `items`.
fn abort_vote(bridge: &mut Bridge, index: usize, id: u64, items: &[&str]) -> TestResult<TxOutcome> {
    let member = bridge.member(index).address;
    let items = items.iter().map(|item| item.parse()).collect::<Result<Vec<_>, _>>()?;
    let vote = MsgAbortBatch { member, batch: id, reason: "destination on the signer's denylist".to_owned(), items };
    let tx = bridge.duty_tx(index, &[Msg::AbortBatch(vote)])?;
    bridge.one(&tx)
}

/// Member `index` votes to refund held withdrawal `id`.
fn refund_vote(bridge: &mut Bridge, index: usize, id: &str) -> TestResult<TxOutcome> {
    let member = bridge.member(index).address;
    let tx = bridge.duty_tx(index, &[Msg::ResolveHeld(MsgResolveHeld { member, withdrawal: id.parse()? })])?;
    bridge.one(&tx)
}

#[test]
fn a_withdrawal_two_of_four_refuse_is_held_and_refunded_while_the_rest_of_its_batch_is_paid() -> TestResult {
    let mut bridge = Bridge::start()?;
    let refused_destination = regtest_address(7);
    let first = bridge.withdraw(&Denom::sat(), 40_000, BTC_DESTINATION)?;
    let refused = bridge.withdraw(&Denom::sat(), 50_000, &refused_destination)?;
    let last = bridge.withdraw(&Denom::sat(), 60_000, BTC_DESTINATION)?;
    let alice_after_burns = bridge.chain.balance(&bridge.alice.address, &Denom::sat())?;
    let events = bridge.run_to_batch_height()?;
    let id = created_batch(&events, &Denom::sat())?;
    assert_eq!(bridge.chain.batch(id)?.batch.items.len(), 3);
    let outflow_before = bridge.chain.reserves()?;

    // One vote is not enough (3 of 4 could still sign); an item outside the batch is refused.
    let stranger = abort_vote(&mut bridge, 0, id, &["wd-99"])?;
    assert_eq!(stranger.code, TxCode::InvalidMessage, "{}", stranger.log);
    assert_eq!(abort_vote(&mut bridge, 0, id, &[&refused])?.code, TxCode::Ok);
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Signing);
    let second = abort_vote(&mut bridge, 1, id, &[&refused])?;
    assert_eq!(second.code, TxCode::Ok, "{}", second.log);
    assert_eq!(events_of(&second.events, ev::BATCH_ABORTED).len(), 1, "{:?}", second.events);
    assert_eq!(events_of(&second.events, ev::WITHDRAWAL_HELD).len(), 1);

    let aborted = bridge.chain.batch(id)?;
    assert_eq!(aborted.batch.status, BatchStatus::Aborted);
    assert_eq!(aborted.batch.aborted.as_ref().map(|a| a.held.len()), Some(1));
    assert!(bridge.chain.pending_batches(None)?.batches.is_empty(), "no longer pending");
    let utxos = bridge.chain.reserves()?.bitcoin_utxos;
    assert!(utxos.iter().all(|utxo| utxo.locked_by.is_none()), "inputs unlocked: {utxos:?}");
    assert_eq!(bridge.chain.withdrawal(&refused)?.status, WithdrawalStatus::Held);
    for queued in [&first, &last] {
        assert_eq!(bridge.chain.withdrawal(queued)?.status, WithdrawalStatus::Queued, "{queued} re-queued");
    }
    // Members never sign an aborted nonce: late signatures change nothing, and no abort or
    // release applies to it any more.
    assert_eq!(bridge.sign(2, id)?.code, TxCode::Ok);
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Aborted);
    let txid = release_txid(&aborted)?;
    assert_eq!(bridge.attest_release(2, id, &txid)?.code, TxCode::BadBatch);
    assert_eq!(outflow_before.assets, bridge.chain.reserves()?.assets, "the ledger still owes all three");

    // The other two are paid by a new batch.
    let events = bridge.run_to_batch_height()?;
    let next = created_batch(&events, &Denom::sat())?;
    assert_ne!(next, id, "batch ids are never reused");
    let items: Vec<String> = bridge.chain.batch(next)?.batch.items.iter().map(|i| i.withdrawal.to_string()).collect();
    assert_eq!(items, [first.clone(), last.clone()]);
    for member in [0, 1, 2] {
        bridge.sign(member, next)?;
    }
    let txid = release_txid(&bridge.chain.batch(next)?)?;
    for member in [1, 2, 3] {
        bridge.attest_release(member, next, &txid)?;
    }
    assert_eq!(bridge.chain.withdrawal(&last)?.status, WithdrawalStatus::Released);

    // The held one goes back to Alice by a member quorum (3): two votes are not enough.
    let not_held = refund_vote(&mut bridge, 0, &first)?;
    assert_eq!(not_held.code, TxCode::InvalidMessage, "{}", not_held.log);
    for member in [0, 1] {
        assert_eq!(refund_vote(&mut bridge, member, &refused)?.code, TxCode::Ok);
    }
    assert_eq!(bridge.chain.withdrawal(&refused)?.status, WithdrawalStatus::Held);
    let refunded = refund_vote(&mut bridge, 3, &refused)?;
    assert_eq!(events_of(&refunded.events, ev::WITHDRAWAL_REFUNDED).len(), 1, "{:?}", refunded.events);
    assert_eq!(bridge.chain.withdrawal(&refused)?.status, WithdrawalStatus::Refunded);
    assert_eq!(bridge.chain.balance(&bridge.alice.address, &Denom::sat())?, alice_after_burns + 50_000);
    assert_eq!(refund_vote(&mut bridge, 2, &refused)?.code, TxCode::Ok, "a late vote changes nothing");
    assert_eq!(bridge.chain.balance(&bridge.alice.address, &Denom::sat())?, alice_after_burns + 50_000);
    let ledger = bridge.ledger(&Denom::sat())?;
    assert_eq!(ledger.unreleased.get(), 0, "nothing owed any more");
    assert_reconciled(&bridge)
}

#[test]
fn a_batch_unsigned_for_too_long_is_aborted_and_its_withdrawals_are_batched_again() -> TestResult {
    const ABORT_AFTER: u64 = 30;
    let mut bridge = Bridge::start_with(WithdrawalParams { abort_after_blocks: ABORT_AFTER, ..withdrawal_params() })?;
    let id = bridge.withdraw(&Denom::sat(), 45_000, BTC_DESTINATION)?;
    let events = bridge.run_to_batch_height()?;
    let batch = created_batch(&events, &Denom::sat())?;
    // Two signatures only (two signers down), then time passes.
    bridge.sign(0, batch)?;
    bridge.sign(1, batch)?;
    let formed = bridge.chain.batch(batch)?.batch.created_height;
    let mut aborted_at = None;
    while bridge.chain.height() < formed + ABORT_AFTER + BATCH_INTERVAL {
        let outcome = bridge.chain.finalize_block::<&[u8]>(&[])?;
        if !events_of(&outcome.events, ev::BATCH_ABORTED).is_empty() {
            aborted_at = Some(bridge.chain.height());
        }
    }
    assert_eq!(aborted_at, Some(formed + ABORT_AFTER), "aborted exactly abort_after_blocks after forming");
    assert_eq!(bridge.chain.batch(batch)?.batch.status, BatchStatus::Aborted);
    let view = bridge.chain.withdrawal(&id)?;
    assert_ne!(view.withdrawal.batch, Some(batch), "re-queued, then batched again");
    assert!(view.withdrawal.held.is_none(), "nobody named it: not held");
    assert_reconciled(&bridge)
}

#[test]
fn the_chain_refuses_a_denylisted_destination_at_the_withdrawal_in_any_case() -> TestResult {
    let mut bridge = Bridge::start()?;
    let before = bridge.chain.reserves()?;
    let outcome = bridge.one(&bridge.withdraw_tx(&Denom::sat(), 30_000, &chain_denied())?)?;
    assert_eq!(outcome.code, TxCode::WithdrawalRefused, "{}", outcome.log);
    assert!(outcome.log.contains("denylist"), "{}", outcome.log);
    assert_eq!(bridge.chain.reserves()?.assets, before.assets, "nothing burned");
    Ok(())
}

#[test]
fn fragmented_reserves_are_consolidated_from_the_fee_pool_and_the_ledger_stays_exact() -> TestResult {
    let mut bridge = Bridge::start_with(WithdrawalParams { bitcoin_max_reserve_utxos: 4, ..withdrawal_params() })?;
    // Six more small deposits: eight reserve UTXOs, more than four.
    let small: Vec<DepositFacts> = (0..6)
        .map(|vout| DepositFacts {
            chain: ParentChain::Bitcoin,
            tx_id: "7e".repeat(32),
            index: vout,
            asset: Denom::sat(),
            amount: Amount::new(12_000),
            recipient: bridge.alice.address,
            deposit_address: false,
            unattributed: None,
            peg_epoch: None,
        })
        .collect();
    for member in 0..3 {
        let msgs: Vec<Msg> = small.iter().map(|facts| attestation(&bridge.member(member).address, facts)).collect();
        let tx = bridge.duty_tx(member, &msgs)?;
        assert_eq!(bridge.one(&tx)?.code, TxCode::Ok);
    }
    let before = bridge.ledger(&Denom::sat())?;
    let prepaid = input_spend_fee(&bridge.peg()?, None, FeeRate::from_sat_per_vb(START_RATE)).get();
    assert_eq!(before.fee_pool.get(), 8 * prepaid, "every deposit prepaid its spending");
    assert_eq!(bridge.chain.reserves()?.bitcoin_utxos.len(), 8);

    let events = bridge.run_to_batch_height()?;
    let id = created_batch(&events, &Denom::sat())?;
    let view = bridge.chain.batch(id)?;
    assert!(view.batch.items.is_empty(), "a consolidation pays no withdrawal");
    let release = bitcoin_release(&view)?;
    // Down to half the limit (two), smallest first: the six 12,000 sat deposits, into one output
    // back to the peg.
    let inputs = release.plan.inputs();
    assert_eq!(inputs.len(), 6, "{inputs:?}");
    assert!(inputs.iter().all(|input| input.amount.get() == 12_000), "{inputs:?}");
    assert!(release.plan.outputs().is_empty());
    let fee = release.plan.fee().get();
    assert!(fee > 0 && fee <= before.fee_pool.get(), "paid from the pool: {fee}");
    for member in [0, 1, 2] {
        bridge.sign(member, id)?;
    }
    for member in [1, 2, 3] {
        bridge.attest_release(member, id, &release.txid)?;
    }
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Released);
    let after = bridge.ledger(&Denom::sat())?;
    assert_eq!(after.reserves.get(), before.reserves.get() - fee, "the fee left the reserves");
    assert_eq!(after.fee_pool.get(), before.fee_pool.get() - fee, "and the fee pool");
    assert_eq!(after.supply, before.supply, "nobody's balance paid for it");
    let utxos = bridge.chain.reserves()?.bitcoin_utxos;
    assert_eq!(utxos.len(), 8 - inputs.len() + 1, "{utxos:?}");
    assert!(utxos.iter().any(|utxo| utxo.txid == release.txid && utxo.vout == 0));
    assert_reconciled(&bridge)
}

#[test]
fn a_member_flooding_duties_stops_at_its_limit_per_block_and_proposals_put_duties_first() -> TestResult {
    let mut bridge = Bridge::start()?;
    let limit = u64::from(Params::default().max_duty_msgs_per_block);
    let member = bridge.member(3).clone();
    let start = bridge.chain.sequence(&member.address)?;
    let report = |height: u64| {
        Msg::AttestParentHeight(MsgAttestParentHeight { attester: member.address, chain: ParentChain::Bitcoin, height })
    };
    let per_tx = u64::from(Params::default().max_msgs_per_tx);
    let txs_at_limit = limit / per_tx;
    // One transaction more than the limit allows in a block, then a user's transfer.
    let mut flood = Vec::new();
    for n in 0..=txs_at_limit {
        let msgs: Vec<Msg> = (0..per_tx).map(|i| report(1_000 + n * per_tx + i)).collect();
        flood.push(member.sign_fee_exempt(start + n, &msgs)?);
    }
    let bob = key("bob")?.address();
    let transfer = bridge.user_tx(
        &bridge.alice,
        &coin(100, &Denom::sat()),
        &[driver::send(&bridge.alice.address, &bob, &[coin(1, &Denom::sat())])],
    )?;

    // The proposer puts the duties first, up to half the space, then the transfer, then the rest.
    let mut offered: Vec<&[u8]> = vec![transfer.as_slice()];
    offered.extend(flood.iter().map(Vec::as_slice));
    let flood_bytes: usize = flood.iter().map(Vec::len).sum();
    let order =
        ferry_app::block::proposal_order(&offered, flood_bytes + transfer.len(), Params::default().max_tx_bytes);
    assert_eq!(order.len(), offered.len(), "everything fits");
    let transfer_at = order.iter().position(|index| *index == 0).ok_or("transfer left out")?;
    assert!(transfer_at > 0 && transfer_at < order.len() - 1, "duties first, up to half the space: {order:?}");
    assert!(
        order.windows(2).filter(|pair| pair[0] != 0 && pair[1] != 0).all(|pair| pair[0] < pair[1]),
        "a signer's order kept: {order:?}"
    );

    let mut block: Vec<Vec<u8>> = flood.clone();
    block.push(transfer);
    let results = bridge.block(&block)?;
    let (within, last) = results.split_at(results.len() - 1);
    let (over, at_limit) = within.split_last().ok_or("no duties")?;
    assert!(at_limit.iter().all(|result| result.code == TxCode::Ok), "{at_limit:?}");
    assert_eq!(over.code, TxCode::DutyLimit, "{over:?}");
    assert!(over.log.contains("limit of 512 per block"), "{}", over.log);
    assert_eq!(last.first().map(|result| result.code), Some(TxCode::Ok), "the transfer commits: {last:?}");
    // The refused transaction used its sequence; the member's next duty goes in the next block.
    assert_eq!(bridge.chain.sequence(&member.address)?, start + txs_at_limit + 1);
    let next = member.sign_fee_exempt(start + txs_at_limit + 1, &[report(5_000)])?;
    assert_eq!(bridge.one(&next)?.code, TxCode::Ok);
    Ok(())
}

/// Member `index`'s reserves snapshot of `chain` for `round` at `parent_height`.
fn reserves_tx(
    bridge: &Bridge,
    index: usize,
    round: u64,
    chain: ParentChain,
    parent_height: u64,
    holdings: &[(Denom, u128)],
) -> TestResult<Vec<u8>> {
    reserves_tx_naming_gone(bridge, index, (round, chain, parent_height), holdings, &[])
}

/// As [`reserves_tx`] for `(round, chain, parent_height)`, naming the reserve outputs `gone`.
fn reserves_tx_naming_gone(
    bridge: &Bridge,
    index: usize,
    (round, chain, parent_height): (u64, ParentChain, u64),
    holdings: &[(Denom, u128)],
    gone: &[&DepositId],
) -> TestResult<Vec<u8>> {
    let snapshot = MsgAttestReserves {
        attester: bridge.member(index).address,
        round,
        chain,
        parent_height,
        holdings: holdings.iter().map(|(denom, amount)| (denom.clone(), Amount::new(*amount))).collect(),
        gone: gone.iter().map(|id| (*id).clone()).collect(),
    };
    bridge.duty_tx(index, &[Msg::AttestReserves(snapshot)])
}

fn reserves_view(bridge: &Bridge) -> TestResult<ReservesCheckView> {
    Ok(serde_json::from_slice(&bridge.chain.query(RESERVES_CHECK_PATH)?.value)?)
}

/// Runs empty blocks until a reserves round opens; returns it.
fn next_reserves_round(bridge: &mut Bridge, after: Option<u64>) -> TestResult<ReservesRound> {
    for _ in 0..=Params::default().reserves_interval {
        if let Some(round) = reserves_view(bridge)?.round.filter(|round| Some(round.number) != after) {
            return Ok(round);
        }
        bridge.block::<&[u8]>(&[])?;
    }
    Err("no reserves round opened".into())
}

#[test]
fn a_quorum_snapshot_below_what_the_ledger_needs_pauses_the_bridge_and_other_rounds_are_refused() -> TestResult {
    let mut bridge = Bridge::start()?;
    // The parent clocks (a quorum of reports) fix the snapshot heights; Bitcoin's at 300.
    for member in 0..3 {
        bridge.report_height(member, 300)?;
        let attester = bridge.member(member).address;
        let report = MsgAttestParentHeight { attester, chain: ParentChain::Ethereum, height: 900 };
        let tx = bridge.duty_tx(member, &[Msg::AttestParentHeight(report)])?;
        assert_eq!(bridge.one(&tx)?.code, TxCode::Ok);
    }
    // A withdrawal in flight: the ledger still counts it, the parent chain may already have paid it.
    bridge.withdraw(&Denom::wei(), ETH, ETH_DESTINATION)?;
    let ether = created_batch(&bridge.run_to_batch_height()?, &Denom::wei())?;
    let round = next_reserves_round(&mut bridge, None)?;
    let btc = round.chains.get(&ParentChain::Bitcoin).ok_or("no Bitcoin question")?;
    let eth = round.chains.get(&ParentChain::Ethereum).ok_or("no Ethereum question")?;
    assert_eq!((btc.parent_height, eth.parent_height), (300, 900));
    let wei_needed = eth.needed.get(&Denom::wei()).cloned().unwrap_or_default();
    assert_eq!(wei_needed.held.get(), DEPOSIT_WEI);
    assert_eq!(wei_needed.in_flight.get(), bridge.chain.batch(ether)?.batch.total.get());
    let sat_held = btc.needed.get(&Denom::sat()).map(|needed| needed.held.get()).unwrap_or_default();
    let eth_assets: Vec<Denom> = eth.needed.keys().cloned().collect();

    // Snapshots that do not answer the round are refused, naming why.
    let number = round.number;
    for (round, chain, height, holdings, why) in [
        (number + 1, ParentChain::Bitcoin, 300, (Denom::sat(), sat_held), "is not open"),
        (number, ParentChain::Bitcoin, 299, (Denom::sat(), sat_held), "not 299"),
        (number, ParentChain::Ethereum, 900, (Denom::wei(), DEPOSIT_WEI), "exactly these"),
    ] {
        let tx = reserves_tx(&bridge, 0, round, chain, height, &[holdings])?;
        let outcome = bridge.one(&tx)?;
        assert_eq!(outcome.code, TxCode::ReservesRound, "{}", outcome.log);
        assert!(outcome.log.contains(why), "{}", outcome.log);
    }

    // Bitcoin: one member lies low, three agree on what the ledger needs: checked, no pause.
    // Outputs named gone count only when every agreeing member names them: the liar's and one
    // honest member's extra ids are left out.
    let output = |vout: u32| -> TestResult<DepositId> { Ok(format!("btc:{}:{vout}", "ab".repeat(32)).parse()?) };
    let (kept, extra, lied) = (output(0)?, output(1)?, output(2)?);
    let question = (number, ParentChain::Bitcoin, 300);
    let lie = reserves_tx_naming_gone(&bridge, 3, question, &[(Denom::sat(), 1)], &[&kept, &lied])?;
    assert_eq!(bridge.one(&lie)?.code, TxCode::Ok);
    for (member, gone) in [(0, vec![&kept, &extra]), (1, vec![&kept]), (2, vec![&kept, &extra])] {
        let tx = reserves_tx_naming_gone(&bridge, member, question, &[(Denom::sat(), sat_held + 5)], &gone)?;
        assert_eq!(bridge.one(&tx)?.code, TxCode::Ok);
    }
    let view = reserves_view(&bridge)?;
    let checked = view.last.get(&ParentChain::Bitcoin).ok_or("Bitcoin not checked")?;
    let sat = checked.assets.get(&Denom::sat()).cloned().unwrap_or_default();
    assert_eq!((sat.shortfall.get(), sat.excess.get(), checked.attesters), (0, 5, 3));
    assert_eq!(checked.gone, [kept], "only what every agreeing member names");
    assert!(!bridge.chain.bridge_status()?.paused);

    // Ethereum: the vault paid the in-flight release (allowed for) and lost one more wei.
    let short = wei_needed.least().get() - 1;
    let holdings: Vec<(Denom, u128)> = eth_assets
        .iter()
        .map(|denom| (denom.clone(), if *denom == Denom::wei() { short } else { DEPOSIT_TOKEN }))
        .collect();
    for member in 0..2 {
        let tx = reserves_tx(&bridge, member, number, ParentChain::Ethereum, 900, &holdings)?;
        assert_eq!(bridge.one(&tx)?.code, TxCode::Ok);
        assert!(!bridge.chain.bridge_status()?.paused, "below a quorum nothing happens");
    }
    let tx = reserves_tx(&bridge, 2, number, ParentChain::Ethereum, 900, &holdings)?;
    let outcome = bridge.one(&tx)?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let status = bridge.chain.bridge_status()?;
    assert!(status.paused);
    assert!(status.reason.starts_with("reserves shortfall on eth: wei: "), "{}", status.reason);
    assert!(status.reason.contains("short by 1)"), "{}", status.reason);
    let checked = reserves_view(&bridge)?.last.get(&ParentChain::Ethereum).cloned().ok_or("not checked")?;
    assert!(checked.short());

    // The next round asks again, paused or not.
    let next = next_reserves_round(&mut bridge, Some(number))?;
    assert_eq!(next.number, number + 1);
    assert!(next.chains.values().all(|target| !target.checked && target.reports.is_empty()));
    Ok(())
}

/// Member `index` proposes to list `token` with `limit` (`None`: to unlist it).
fn propose_listing(
    bridge: &mut Bridge,
    index: usize,
    token: EthAddress,
    limit: Option<AssetLimit>,
) -> TestResult<TxOutcome> {
    let member = bridge.member(index).address;
    let msg = Msg::ProposeListing(ferry_types::msg::MsgProposeListing { member, token, limit });
    let tx = bridge.duty_tx(index, &[msg])?;
    bridge.one(&tx)
}

#[test]
fn a_token_is_listed_only_by_a_quorum_and_only_once_the_vault_applied_the_signed_change() -> TestResult {
    let mut bridge = Bridge::start()?;
    let token = EthAddress::from_bytes([0xee; 20]);
    let denom = Denom::erc20(&token);
    let limit = AssetLimit {
        denom: denom.clone(),
        window_cap: Amount::new(1_000_000),
        delay_above: Amount::new(500_000),
        min_amount: Amount::new(10),
    };
    let params = |bridge: &Bridge| -> TestResult<Params> {
        Ok(bridge.chain.query_json(ferry_types::query::PARAMS_PATH)?.ok_or("no params")?)
    };
    assert!(!params(&bridge)?.lists(&denom));

    // Below the quorum: recorded, nothing formed.
    for index in 0..2 {
        let outcome = propose_listing(&mut bridge, index, token, Some(limit.clone()))?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
        assert!(events_of(&outcome.events, ev::BATCH_CREATED).is_empty());
    }
    let proposals: ferry_types::query::TokenProposals =
        bridge.chain.query_json(&format!("/listing/{token}"))?.ok_or("no proposals")?;
    assert_eq!((proposals.proposals.len(), proposals.in_flight), (2, None));
    // A different limit does not count with them.
    let other = AssetLimit { window_cap: Amount::new(7), ..limit.clone() };
    let outcome = propose_listing(&mut bridge, 2, token, Some(other))?;
    assert!(events_of(&outcome.events, ev::BATCH_CREATED).is_empty(), "2 + 1 different is no quorum");

    // The third identical proposal forms the listing batch; the chain does not list yet.
    let outcome = propose_listing(&mut bridge, 2, token, Some(limit.clone()))?;
    let created = events_of(&outcome.events, ev::BATCH_CREATED);
    let id: u64 =
        created.first().and_then(|event| attributes(event).get(ev::BATCH_ID)?.parse().ok()).ok_or("no batch")?;
    assert!(!params(&bridge)?.lists(&denom), "not before the vault applied it");
    let view = bridge.chain.batch(id)?;
    let BatchRelease::EthereumListing(change) = &view.batch.release else { return Err("not a listing batch".into()) };
    assert_eq!((change.listing.nonce, change.listing.token, change.listing.listed), (id, token, true));
    assert_eq!(change.proposers.len(), 3);
    assert_eq!(hex::decode(&change.payload)?, change.listing.payload());
    // While it is in flight: another change is refused, the same one joins its proposers.
    assert_eq!(propose_listing(&mut bridge, 3, token, None)?.code, TxCode::BadBatch);
    assert_eq!(propose_listing(&mut bridge, 3, token, Some(limit.clone()))?.code, TxCode::Ok);
    let BatchRelease::EthereumListing(change) = &bridge.chain.batch(id)?.batch.release else {
        return Err("gone".into());
    };
    assert_eq!(change.proposers.len(), 4);

    // Signed by the BLS threshold: the combined signature verifies over the listing payload.
    for member in 0..3 {
        assert_eq!(bridge.sign(member, id)?.code, TxCode::Ok);
    }
    let signed = bridge.chain.batch(id)?;
    assert_eq!(signed.batch.status, BatchStatus::Signed);
    let BatchRelease::EthereumListing(change) = &signed.batch.release else { return Err("gone".into()) };
    let signature = bls::decode_signature(&hex::decode(change.signature_compressed.as_deref().ok_or("unsigned")?)?)?;
    assert!(bls::verify_signature(&bridge.bls.public_keys().public_key(), &signature, &change.listing.payload()));

    // Two attestations of the vault's transaction are not a quorum; the third settles it.
    let vault_tx = format!("0x{}", "ab".repeat(32));
    for member in 0..2 {
        bridge.attest_release(member, id, &vault_tx)?;
        assert!(!params(&bridge)?.lists(&denom));
    }
    let settled = bridge.attest_release(2, id, &vault_tx)?;
    assert_eq!(events_of(&settled.events, ev::LISTING_SETTLED).len(), 1);
    let after = params(&bridge)?;
    assert!(after.lists(&denom));
    assert_eq!(after.withdrawals.limit(&denom), Some(&limit));
    let proposals: ferry_types::query::TokenProposals =
        bridge.chain.query_json(&format!("/listing/{token}"))?.ok_or("no proposals")?;
    assert_eq!(proposals.in_flight, None, "free for the next change");

    // Unlisting by a quorum stops the mints but keeps the limits, so holders can withdraw.
    let mut unlisting = None;
    for member in 0..3 {
        let outcome = propose_listing(&mut bridge, member, token, None)?;
        unlisting = unlisting.or_else(|| {
            events_of(&outcome.events, ev::BATCH_CREATED)
                .first()
                .and_then(|event| attributes(event).get(ev::BATCH_ID)?.parse::<u64>().ok())
        });
    }
    let unlisting = unlisting.ok_or("no unlisting batch")?;
    for member in 0..3 {
        bridge.sign(member, unlisting)?;
    }
    for member in 0..3 {
        bridge.attest_release(member, unlisting, &format!("0x{}", "cd".repeat(32)))?;
    }
    let after = params(&bridge)?;
    assert!(!after.lists(&denom));
    assert_eq!(after.withdrawals.limit(&denom), Some(&limit));

    // A listing nobody signs is aborted after `abort_after_blocks`: nothing changes, and the
    // token is free for new proposals.
    for member in 0..3 {
        propose_listing(&mut bridge, member, token, Some(limit.clone()))?;
    }
    let path = format!("/listing/{token}");
    let stuck: ferry_types::query::TokenProposals = bridge.chain.query_json(&path)?.ok_or("no proposals")?;
    let stuck = stuck.in_flight.ok_or("no listing batch")?;
    for _ in 0..=ABORT_AFTER {
        bridge.block::<&[u8]>(&[])?;
    }
    assert_eq!(bridge.chain.batch(stuck)?.batch.status, BatchStatus::Aborted);
    let proposals: ferry_types::query::TokenProposals = bridge.chain.query_json(&path)?.ok_or("no proposals")?;
    assert_eq!(proposals.in_flight, None);
    assert!(!params(&bridge)?.lists(&denom));
    assert_eq!(propose_listing(&mut bridge, 0, token, Some(limit))?.code, TxCode::Ok);
    Ok(())
}

// ---- deposit addresses and unattributed payments (issue 11) ----

/// Bitcoin output `vout` of a second transaction paying `amount` sat: to `recipient`'s deposit
/// address (`deposit_address`), or to the peg naming no account (`recipient` the pool).
fn bitcoin_payment(vout: u32, amount: u128, recipient: Address, deposit_address: bool) -> DepositFacts {
    let unattributed = (recipient == Address::unattributed_pool()).then_some(Unattributed::NoMemo);
    DepositFacts {
        chain: ParentChain::Bitcoin,
        tx_id: "7b".repeat(32),
        index: vout,
        asset: Denom::sat(),
        amount: Amount::new(amount),
        recipient,
        deposit_address,
        unattributed,
        peg_epoch: None,
    }
}

impl Bridge {
    /// Members `0..QUORUM` attest `facts`, each alone in a block; returns the last outcome.
    fn attest_by_quorum(&mut self, facts: &DepositFacts) -> TestResult<TxOutcome> {
        let mut last = None;
        for index in 0..usize::try_from(QUORUM)? {
            let msg = attestation(&self.member(index).address, facts);
            let tx = self.duty_tx(index, &[msg])?;
            last = Some(self.one(&tx)?);
        }
        last.ok_or_else(|| "no member".into())
    }

    /// Member `index`'s vote on the unattributed payment `id`.
    fn vote(&mut self, index: usize, id: &DepositId, resolution: Resolution) -> TestResult<TxOutcome> {
        let member = self.member(index).address;
        let msg = Msg::ResolveUnattributed(MsgResolveUnattributed { member, deposit: id.clone(), resolution });
        let tx = self.duty_tx(index, &[msg])?;
        self.one(&tx)
    }
}

#[test]
fn a_registration_opens_the_account_fee_free_and_registering_again_changes_nothing() -> TestResult {
    let mut bridge = Bridge::start()?;
    let bob_key = key("bob")?;
    let bob = bob_key.address();
    assert!(bridge.chain.account(&bob)?.is_none());
    let register = [Msg::RegisterDepositAddress(MsgRegisterDepositAddress { account: bob })];
    // A fee is refused (nothing to pay it with, and none is due).
    let fresh = Signer::new(bob_key.clone(), bridge.chain.chain_id(), 0);
    let with_fee = bridge.one(&fresh.sign(0, &coin(100, &Denom::sat()), &register)?)?;
    assert_eq!(with_fee.code, TxCode::InvalidMessage, "{}", with_fee.log);
    // Signed with account number 0 and sequence 0, it opens the account.
    let first = bridge.one(&fresh.sign_fee_exempt(0, &register)?)?;
    assert_eq!(first.code, TxCode::Ok, "{}", first.log);
    let registered = events_of(&first.events, ev::DEPOSIT_ADDRESS_REGISTERED);
    assert_eq!(registered.len(), 1, "{:?}", first.events);
    assert_eq!(bridge.chain.sequence(&bob)?, 1);
    let view: DepositAddressView =
        bridge.chain.query_json(&format!("/deposit_address/{bob}"))?.ok_or("no deposit address")?;
    let peg = bridge.peg()?;
    assert_eq!(view.address, peg.deposit_address(&bob).to_string());
    assert_eq!(view.record.number, 1);
    // Replaying the opening transaction is a stale sequence; registering again is a no-op.
    let replay = bridge.one(&fresh.sign_fee_exempt(0, &register)?)?;
    assert_eq!(replay.code, TxCode::StaleSequence, "{}", replay.log);
    let bob_signer = bridge.chain.signer(&bob_key)?;
    let again = bridge.one(&bob_signer.sign_fee_exempt(1, &register)?)?;
    assert_eq!(again.code, TxCode::Ok, "{}", again.log);
    assert!(events_of(&again.events, ev::DEPOSIT_ADDRESS_REGISTERED).is_empty());
    let page: DepositAddressPage = bridge.chain.query_json("/deposit_addresses/0")?.ok_or("no page")?;
    assert_eq!((page.total, page.registrations.len()), (1, 1));
    // Someone else's registration travels alone: not beside a transfer.
    let mixed = bridge.user_tx(
        &bridge.alice,
        &coin(100, &Denom::sat()),
        &[
            Msg::RegisterDepositAddress(MsgRegisterDepositAddress { account: bridge.alice.address }),
            driver::send(&bridge.alice.address, &bob, &[coin(1, &Denom::sat())]),
        ],
    )?;
    assert_eq!(bridge.one(&mixed)?.code, TxCode::InvalidMessage);
    Ok(())
}

#[test]
fn a_payment_to_a_deposit_address_mints_only_once_registered_and_its_reserve_names_its_owner() -> TestResult {
    let mut bridge = Bridge::start()?;
    let carol_key = key("carol")?;
    let carol = carol_key.address();
    let facts = bitcoin_payment(0, 300_000, carol, true);
    // No relayer could have seen a payment to an address nobody registered: refused.
    let tx = bridge.duty_tx(0, &[attestation(&bridge.member(0).address, &facts)])?;
    let refused = bridge.one(&tx)?;
    assert_eq!(refused.code, TxCode::InvalidMessage, "{}", refused.log);
    assert!(refused.log.contains("no registered deposit address"), "{}", refused.log);

    let register = Signer::new(carol_key, bridge.chain.chain_id(), 0)
        .sign_fee_exempt(0, &[Msg::RegisterDepositAddress(MsgRegisterDepositAddress { account: carol })])?;
    assert_eq!(bridge.one(&register)?.code, TxCode::Ok);
    let minted = bridge.attest_by_quorum(&facts)?;
    assert_eq!(minted.code, TxCode::Ok, "{}", minted.log);
    let peg = bridge.peg()?;
    let prepaid = input_spend_fee(&peg, Some(&carol), FeeRate::from_sat_per_vb(START_RATE)).get();
    assert!(prepaid > input_spend_fee(&peg, None, FeeRate::from_sat_per_vb(START_RATE)).get());
    assert_eq!(bridge.chain.balance(&carol, &Denom::sat())?, 300_000 - prepaid);
    let reserves = bridge.chain.reserves()?;
    let utxo = reserves.bitcoin_utxos.iter().find(|utxo| utxo.txid == facts.tx_id).ok_or("no reserve UTXO")?;
    assert_eq!(utxo.owner, Some(carol));
    Ok(())
}

#[test]
fn an_unattributed_payment_is_held_until_a_quorum_credits_or_refunds_it() -> TestResult {
    let mut bridge = Bridge::start()?;
    let pool = Address::unattributed_pool();
    let (first, second) = (bitcoin_payment(0, 300_000, pool, false), bitcoin_payment(1, 250_000, pool, false));
    for facts in [&first, &second] {
        let outcome = bridge.attest_by_quorum(facts)?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
        assert_eq!(events_of(&outcome.events, ev::DEPOSIT_UNATTRIBUTED).len(), 1, "{:?}", outcome.events);
    }
    let before = bridge.chain.reserves()?.assets.get(&Denom::sat()).cloned().ok_or("no ledger")?;
    assert_eq!(before.unattributed.get(), 550_000, "{before:?}");
    assert_eq!(bridge.chain.balance(&pool, &Denom::sat())?, 0, "nothing is credited to the pool");
    let page: UnattributedPage = bridge.chain.query_json("/unattributed")?.ok_or("no page")?;
    assert_eq!(page.total, 2);

    // A vote on a minted deposit, or a refund to another network's address, is refused.
    let minted = DepositId::from_str(&format!("btc:{BTC_TXID}:0"))?;
    let dave = key("dave")?.address();
    assert_eq!(bridge.vote(0, &minted, Resolution::Credit { account: dave })?.code, TxCode::InvalidMessage);
    let mainnet = Resolution::Refund { destination: MAINNET_DESTINATION.to_owned(), max_fee: Amount::new(BTC_BUDGET) };
    assert_eq!(bridge.vote(0, &first.id(), mainnet)?.code, TxCode::InvalidMessage);

    // Credit: two votes do nothing, the third credits dave like a deposit.
    for index in 0..2 {
        assert_eq!(bridge.vote(index, &first.id(), Resolution::Credit { account: dave })?.code, TxCode::Ok);
    }
    assert_eq!(bridge.chain.balance(&dave, &Denom::sat())?, 0);
    let credited = bridge.vote(2, &first.id(), Resolution::Credit { account: dave })?;
    assert_eq!(credited.code, TxCode::Ok, "{}", credited.log);
    let prepaid = input_spend_fee(&bridge.peg()?, None, FeeRate::from_sat_per_vb(START_RATE)).get();
    assert_eq!(bridge.chain.balance(&dave, &Denom::sat())?, 300_000 - prepaid);
    // A late vote changes nothing.
    assert_eq!(bridge.vote(3, &first.id(), Resolution::Credit { account: dave })?.code, TxCode::Ok);
    assert_eq!(bridge.chain.balance(&dave, &Denom::sat())?, 300_000 - prepaid);

    // Refund: at the quorum, a withdrawal from the pool to the address, paying its own fee.
    let refund = Resolution::Refund { destination: BTC_DESTINATION.to_owned(), max_fee: Amount::new(BTC_BUDGET) };
    let mut last = None;
    for index in 1..4 {
        last = Some(bridge.vote(index, &second.id(), refund.clone())?);
    }
    let outcome = last.ok_or("no vote")?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let id = withdrawal_id_of(&outcome)?;
    let view = bridge.chain.withdrawal(&id)?;
    assert_eq!(
        (view.withdrawal.sender, view.withdrawal.amount.get(), view.withdrawal.destination.as_str()),
        (pool, 250_000, BTC_DESTINATION)
    );
    let after = bridge.chain.reserves()?.assets.get(&Denom::sat()).cloned().ok_or("no ledger")?;
    assert!(after.unattributed.is_zero(), "{after:?}");
    assert_eq!(after.unreleased.get(), before.unreleased.get() + 250_000, "{after:?}");
    assert_eq!(after.fee_pool.get(), before.fee_pool.get() + prepaid, "{after:?}");
    assert_eq!(after.reserves, before.reserves);
    let page: UnattributedPage = bridge.chain.query_json("/unattributed")?.ok_or("no page")?;
    assert_eq!(page.total, 0);
    Ok(())
}

/// The withdrawal `outcome` queued, from its events.
fn withdrawal_id_of(outcome: &TxOutcome) -> TestResult<String> {
    let queued = events_of(&outcome.events, ev::WITHDRAWAL_QUEUED);
    let [event] = queued.as_slice() else { return Err(format!("expected one queued event: {outcome:?}").into()) };
    Ok(attributes(event).get(ev::WITHDRAWAL_ID).map(|id| (*id).to_owned()).ok_or("no id attribute")?)
}

/// Every exit claim committed at the chain's latest height, by position.
fn exit_claims(bridge: &Bridge) -> TestResult<BTreeMap<u32, ferry_types::exit_tree::Claim>> {
    let mut claims = BTreeMap::new();
    let mut from = 0;
    loop {
        let page: ferry_types::query::ExitClaimPage =
            bridge.chain.query_json(&format!("{}{from}", ferry_types::query::EXIT_CLAIMS_PATH))?.ok_or("no page")?;
        claims.extend(page.claims);
        match page.next {
            Some(next) => from = next,
            None => return Ok(claims),
        }
    }
}

/// Alice's claims in `token` as (nonce, amount), in position order.
fn claims_of(
    claims: &BTreeMap<u32, ferry_types::exit_tree::Claim>,
    account: &Address,
    token: EthAddress,
) -> Vec<(u64, u128)> {
    claims
        .values()
        .filter(|claim| claim.account == *account && claim.token == token)
        .map(|claim| (claim.nonce, claim.amount.get()))
        .collect()
}

#[test]
fn exit_claims_follow_balances_and_withdrawals_until_their_release_settles() -> TestResult {
    let mut bridge = Bridge::start()?;
    let alice = bridge.alice.address;
    let token_address: EthAddress = "0x00000000000000000000000000000000000000ab".parse()?;
    let claims = exit_claims(&bridge)?;
    assert_eq!(claims_of(&claims, &alice, EthAddress::ZERO), [(0, DEPOSIT_WEI)], "{claims:?}");
    assert_eq!(claims_of(&claims, &alice, token_address), [(0, DEPOSIT_TOKEN)]);

    // A burn moves the amount from the balance's claim to the withdrawal's, still owed.
    let ether = ETH / 2;
    bridge.withdraw(&Denom::wei(), ether, ETH_DESTINATION)?;
    let fees = DEPOSIT_WEI - ether - bridge.chain.balance(&alice, &Denom::wei())?;
    let claims = exit_claims(&bridge)?;
    let balance_left = DEPOSIT_WEI - ether - fees;
    assert_eq!(claims_of(&claims, &alice, EthAddress::ZERO), [(0, balance_left), (0, ether)], "{claims:?}");

    // Batched: the withdrawal's claim names the batch, which the vault refuses once released;
    // the release carries the root of exactly these claims, so once the vault pays it, its root
    // holds the withdrawal under the batch's nonce.
    let events = bridge.run_to_batch_height()?;
    let id = created_batch(&events, &Denom::wei())?;
    let claims = exit_claims(&bridge)?;
    assert_eq!(claims_of(&claims, &alice, EthAddress::ZERO), [(0, balance_left), (id, ether)]);
    let BatchRelease::Ethereum(release) = bridge.chain.batch(id)?.batch.release else {
        return Err("not Ethereum".into());
    };
    let tree =
        ferry_types::exit_tree::ExitTree::from_leaves(claims.iter().map(|(index, claim)| (*index, claim.leaf())));
    assert_eq!((release.batch.exit_height, release.batch.exit_root), (bridge.chain.height(), tree.root()));

    // The root a block records is the tree over the claims it leaves; a block that changes no
    // claim keeps the record.
    let height = bridge.chain.height();
    bridge.chain.empty_block()?;
    let root: ferry_types::exit_tree::ExitRoot =
        bridge.chain.query_json(ferry_types::query::EXIT_ROOT_PATH)?.ok_or("no root")?;
    assert_eq!((root.height, root.root), (height, tree.root()));

    // Settled: the release paid it, nothing is claimed for it any more.
    for member in 0..3 {
        bridge.sign(member, id)?;
    }
    for member in 0..3 {
        assert_eq!(bridge.attest_release(member, id, RELEASE_TX)?.code, TxCode::Ok);
    }
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Released);
    let claims = exit_claims(&bridge)?;
    assert_eq!(claims_of(&claims, &alice, EthAddress::ZERO), [(0, balance_left)]);
    // What the claims add up to is what the vault owes: the supply less the keyless fee
    // collector's share, plus the burns not yet paid (none now).
    let ledger = bridge.ledger(&Denom::wei())?;
    let claimed: u128 = claims.values().filter(|claim| claim.token == EthAddress::ZERO).map(|c| c.amount.get()).sum();
    let collected = bridge.chain.balance(&Address::fee_collector(), &Denom::wei())?;
    assert_eq!(claimed + collected, ledger.supply.get() + ledger.unreleased.get());
    assert_reconciled(&bridge)
}

#[test]
fn a_vault_heartbeat_forms_each_interval_with_the_exit_root_and_lands_once_its_delivery_is_attested() -> TestResult {
    const INTERVAL: u64 = 6;
    let mut params = withdrawal_params();
    params.ethereum =
        Some(EthereumBridge { heartbeat_interval_blocks: INTERVAL, ..EthereumBridge::new(ETH_CHAIN_ID, vault()) });
    let mut bridge = Bridge::start_with(params)?;
    let heartbeats = |bridge: &Bridge| -> TestResult<Vec<BatchView>> {
        let pending = bridge.chain.pending_batches(None)?;
        Ok(pending
            .batches
            .into_iter()
            .filter(|view| matches!(view.batch.release, BatchRelease::EthereumHeartbeat(_)))
            .collect())
    };
    while bridge.chain.height() < INTERVAL {
        bridge.chain.empty_block()?;
    }
    let [first] = &heartbeats(&bridge)?[..] else { return Err("one heartbeat once the interval passed".into()) };
    let BatchRelease::EthereumHeartbeat(heartbeat) = &first.batch.release else { return Err("not a heartbeat".into()) };
    // It posts the root over the claims of the block it formed in, under its batch id.
    let covered = first.batch.created_height;
    let committed = bridge.chain.committed_at(covered).ok_or("no state at the covered height")?;
    let expected = ferry_app::exit_claims::ClaimTree::load(committed)?.root();
    assert_eq!(heartbeat.heartbeat.height, covered);
    assert_eq!(heartbeat.heartbeat.balances_root, expected);
    assert_eq!((heartbeat.heartbeat.nonce, heartbeat.heartbeat.vault), (first.batch.id, vault()));
    assert_eq!((first.batch.items.len(), first.batch.total, &first.batch.asset), (0, Amount::ZERO, &Denom::wei()));

    // While it is in flight, no other forms, however long it takes.
    for _ in 0..2 * INTERVAL {
        bridge.chain.empty_block()?;
    }
    assert_eq!(heartbeats(&bridge)?.len(), 1);

    // Signed by a quorum like any vault action: the combined signature verifies over its payload.
    let id = first.batch.id;
    for member in 0..3 {
        assert_eq!(bridge.sign(member, id)?.code, TxCode::Ok);
    }
    let signed = bridge.chain.batch(id)?;
    assert_eq!(signed.batch.status, BatchStatus::Signed);
    let BatchRelease::EthereumHeartbeat(signed_heartbeat) = &signed.batch.release else {
        return Err("not a heartbeat".into());
    };
    let compressed = hex::decode(signed_heartbeat.signature_compressed.as_deref().ok_or("no combined signature")?)?;
    let signature = bls::decode_signature(&compressed)?;
    assert!(bls::verify_signature(&bridge.bls.public_keys().public_key(), &signature, &heartbeat.heartbeat.payload()));

    // Its delivery attested by a quorum: it landed; the next one forms an interval after it formed.
    for member in 0..3 {
        assert_eq!(bridge.attest_release(member, id, RELEASE_TX)?.code, TxCode::Ok);
    }
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Released);
    let state = ferry_app::StateDelta::new(bridge.chain.committed());
    let landed = state.last_vault_heartbeat()?.ok_or("no landed heartbeat")?;
    assert_eq!((landed.nonce, landed.height, landed.root), (id, covered, expected));
    bridge.chain.empty_block()?;
    let [second] = &heartbeats(&bridge)?[..] else {
        return Err("the next heartbeat forms at once: its interval passed".into());
    };
    assert!(second.batch.id > id);
    assert_reconciled(&bridge)
}

/// The Bitcoin exit on: a 20-block lock, refreshed 5 blocks before it opens.
fn exit_params() -> WithdrawalParams {
    WithdrawalParams {
        bitcoin_exit: Some(ferry_types::genesis::BitcoinExitParams {
            lock_blocks: 20,
            refresh_margin_blocks: 5,
            fee_rate_percent: 100,
            ..ferry_types::genesis::BitcoinExitParams::default()
        }),
        ..withdrawal_params()
    }
}

/// The disbursal record `id`.
fn disbursal(bridge: &Bridge, id: u64) -> TestResult<ferry_types::query::BitcoinExit> {
    match bridge.chain.batch(id)?.batch.release {
        BatchRelease::BitcoinExit(exit) => Ok(exit),
        _ => Err(format!("batch {id} is no disbursal").into()),
    }
}

fn pending(bridge: &Bridge) -> TestResult<Vec<u64>> {
    Ok(bridge.chain.pending_batches(None)?.batches.iter().map(|view| view.batch.id).collect())
}

fn exit_status(bridge: &Bridge) -> TestResult<ferry_types::query::BtcExitStatus> {
    Ok(serde_json::from_slice(&bridge.chain.query(ferry_types::query::EXIT_BTC_PATH)?.value)?)
}

/// The disbursal derived among `events` for `batch`.
fn derived_for(events: &[Event], batch: u64) -> TestResult<u64> {
    let derived = events_of(events, ev::EXIT_DERIVED);
    let event = derived
        .iter()
        .find(|event| attributes(event).get(ev::FOLLOWS) == Some(&batch.to_string().as_str()))
        .ok_or_else(|| format!("no disbursal derived for batch {batch}: {events:?}"))?;
    Ok(attributes(event).get(ev::BATCH_ID).ok_or("no id")?.parse()?)
}

/// Members 0–2 sign `id`; each is accepted.
fn sign_by_three(bridge: &mut Bridge, id: u64) -> TestResult {
    for member in [0, 1, 2] {
        let outcome = bridge.sign(member, id)?;
        assert_eq!(outcome.code, TxCode::Ok, "batch {id}: {}", outcome.log);
    }
    Ok(())
}

/// Members 1–3 attest that `txid` released `id`.
fn settle_with(bridge: &mut Bridge, id: u64, txid: &str) -> TestResult {
    for member in [1, 2, 3] {
        let outcome = bridge.attest_release(member, id, txid)?;
        assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    }
    assert_eq!(bridge.chain.batch(id)?.batch.status, BatchStatus::Released);
    Ok(())
}

#[test]
fn with_the_bitcoin_exit_every_reserve_move_waits_for_the_disbursal_of_what_it_leaves() -> TestResult {
    let mut bridge = Bridge::start_with(exit_params())?;
    let mut events = clock_to(&mut bridge, 100)?;

    // The deposits are in no disbursal: a refresh forms, with the disbursal of its output.
    events.extend(bridge.run_to_batch_height()?);
    let refresh_event = events_of(&events, ev::EXIT_REFRESH);
    assert_eq!(refresh_event.len(), 1, "{events:?}");
    let refresh: u64 = attributes(refresh_event[0]).get(ev::BATCH_ID).ok_or("no id")?.parse()?;
    let first = derived_for(&events, refresh)?;
    let exit = disbursal(&bridge, first)?;
    assert_eq!((exit.clock, exit.basis.lock_height), (100, 120));
    assert_eq!(exit.claim_count, 1, "alice's balance is the one claim");
    assert_eq!(bridge.chain.batch(refresh)?.awaits_exit, Some(first));

    // Its signatures are refused until its disbursal is signed.
    let early = bridge.sign(0, refresh)?;
    assert_eq!(early.code, TxCode::BadBatch, "{}", early.log);
    assert!(early.log.contains("waits for its exit disbursal"), "{}", early.log);
    sign_by_three(&mut bridge, first)?;
    assert_eq!(bridge.chain.batch(first)?.batch.status, BatchStatus::Signed);
    assert!(!pending(&bridge)?.contains(&first), "a signed disbursal is kept, not delivered");
    sign_by_three(&mut bridge, refresh)?;
    let refresh_tx = release_txid(&bridge.chain.batch(refresh)?)?;
    // A disbursal is never released by the federation.
    let attest = bridge.attest_release(1, first, &refresh_tx)?;
    assert_eq!(attest.code, TxCode::BadBatch, "{}", attest.log);
    settle_with(&mut bridge, refresh, &refresh_tx)?;
    assert_eq!(exit_status(&bridge)?.covering, Some(first));
    assert_eq!(disbursal(&bridge, first)?.standing, ExitStanding::Covering);

    // A withdrawal: its release spends the covered output, waits for its own disbursal, and
    // nothing else moves the reserve meanwhile.
    let amount = 80_000;
    let outcome = bridge.one(&bridge.withdraw_sat_tx(amount, BTC_DESTINATION, BTC_BUDGET)?)?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let events = bridge.run_to_batch_height()?;
    let release = created_batch(&events, &Denom::sat())?;
    let second = derived_for(&events, release)?;
    let planned = bitcoin_release(&bridge.chain.batch(release)?)?;
    let covered = disbursal(&bridge, first)?.basis.inputs;
    assert!(planned.plan.inputs().iter().any(|input| covered.contains(input)), "the release spends a covered input");
    let exit = disbursal(&bridge, second)?;
    let change = planned.plan.change().ok_or("no change")?;
    assert!(exit.basis.inputs.iter().any(|input| input.txid == planned.txid && input.amount == change));
    let queued = bridge.one(&bridge.withdraw_sat_tx(amount, BTC_DESTINATION, BTC_BUDGET)?)?;
    assert_eq!(queued.code, TxCode::Ok, "{}", queued.log);
    let events = bridge.run_to_batch_height()?;
    assert!(events_of(&events, ev::BATCH_CREATED).is_empty(), "a second reserve move formed: {events:?}");
    let waiting = bridge.chain.withdrawal(&withdrawal_id(&queued)?)?.withdrawal.waiting.unwrap_or_default();
    assert!(waiting.contains("one at a time"), "the queued withdrawal says why it waits: {waiting}");
    let refused = bridge.sign(1, release)?;
    assert_eq!(refused.code, TxCode::BadBatch, "{}", refused.log);
    sign_by_three(&mut bridge, second)?;
    sign_by_three(&mut bridge, release)?;

    // A replacement gets its own disbursal, and waits for it too.
    let events = clock_to(&mut bridge, 100 + BUMP_AFTER)?;
    assert_eq!(events_of(&events, ev::RELEASE_REPLACED).len(), 1, "{events:?}");
    let third = derived_for(&events, release)?;
    assert_eq!(bridge.chain.batch(release)?.awaits_exit, Some(third));
    let gated = bridge.sign(0, release)?;
    assert_eq!(gated.code, TxCode::BadBatch, "{}", gated.log);

    // Version 0 confirms: its disbursal covers; the replacement's and the refresh's are dead.
    settle_with(&mut bridge, release, &planned.txid)?;
    assert_eq!(exit_status(&bridge)?.covering, Some(second));
    assert_eq!(disbursal(&bridge, second)?.standing, ExitStanding::Covering);
    for dead in [first, third] {
        assert_eq!(disbursal(&bridge, dead)?.standing, ExitStanding::Superseded, "disbursal {dead}");
        assert!(!pending(&bridge)?.contains(&dead));
    }
    assert_reconciled(&bridge)?;

    // The queued withdrawal goes now; once it settled, nothing moves until the covering
    // disbursal's lock nears: then a refresh forms.
    let events = bridge.run_to_batch_height()?;
    let next = created_batch(&events, &Denom::sat())?;
    let fourth = derived_for(&events, next)?;
    sign_by_three(&mut bridge, fourth)?;
    sign_by_three(&mut bridge, next)?;
    let next_tx = release_txid(&bridge.chain.batch(next)?)?;
    settle_with(&mut bridge, next, &next_tx)?;
    let lock = u64::from(disbursal(&bridge, fourth)?.basis.lock_height);
    // A refresh is upkeep nobody's withdrawal pays: the fee pool, the surplus, then the fees the
    // chain collected pay it. Alice pays a fee in sat, so there is enough to pay one.
    let bob = key("bob")?.address();
    let fee = coin(2_000, &Denom::sat());
    let send_tx =
        bridge.user_tx(&bridge.alice, &fee, &[driver::send(&bridge.alice.address, &bob, &[coin(1, &Denom::sat())])])?;
    let sent = bridge.one(&send_tx)?;
    assert_eq!(sent.code, TxCode::Ok, "{}", sent.log);
    let mut quiet = clock_to(&mut bridge, lock - 6)?;
    quiet.extend(bridge.run_to_batch_height()?);
    assert!(events_of(&quiet, ev::EXIT_REFRESH).is_empty(), "{quiet:?}");
    let mut due = clock_to(&mut bridge, lock - 5)?;
    due.extend(bridge.run_to_batch_height()?);
    let refreshed = events_of(&due, ev::EXIT_REFRESH);
    assert_eq!(refreshed.len(), 1, "{due:?}");
    assert!(attributes(refreshed[0]).get(ev::REASON).is_some_and(|reason| reason.contains("opens at")));
    assert_reconciled(&bridge)
}

#[test]
fn a_recovery_address_must_be_a_standard_address_of_the_pegs_network_and_the_next_disbursal_pays_it() -> TestResult {
    // No Bitcoin clock yet, so no disbursal (nor refresh) forms before the address is set.
    let mut bridge = Bridge::start_with(exit_params())?;
    let alice = bridge.alice.address;
    let fee = coin(1_000, &Denom::sat());
    let set = |bridge: &mut Bridge, address: Option<String>| -> TestResult<TxOutcome> {
        let msg = Msg::SetRecoveryAddress(ferry_types::msg::MsgSetRecoveryAddress {
            account: alice,
            asset: Denom::sat(),
            address,
        });
        let tx = bridge.user_tx(&bridge.alice, &fee, &[msg])?;
        bridge.one(&tx)
    };
    let peg_address = bitcoin::Address::from_script(&bridge.peg()?.script_pubkey(), bitcoin::Network::Regtest)?;
    for (address, why) in [
        (MAINNET_DESTINATION.to_owned(), "regtest"),
        (peg_address.to_string(), "peg"),
        (chain_denied(), "denylist"),
        ("not-an-address".to_owned(), "address"),
    ] {
        let outcome = set(&mut bridge, Some(address.clone()))?;
        assert_eq!(outcome.code, TxCode::InvalidMessage, "{address}: {}", outcome.log);
        assert!(outcome.log.contains(why), "{address}: {}", outcome.log);
    }
    let recovery = regtest_address(7);
    let outcome = set(&mut bridge, Some(recovery.clone()))?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let path = format!("{}{alice}", ferry_types::query::EXIT_BTC_RECOVERY_PATH);
    let view: ferry_types::query::RecoveryView = serde_json::from_slice(&bridge.chain.query(&path)?.value)?;
    assert_eq!(view.registered.as_deref(), Some(recovery.as_str()));

    // The next disbursal (the refresh's) pays alice there.
    let mut events = clock_to(&mut bridge, 100)?;
    events.extend(bridge.run_to_batch_height()?);
    let refresh: u64 = attributes(events_of(&events, ev::EXIT_REFRESH).first().ok_or("no refresh")?)
        .get(ev::BATCH_ID)
        .ok_or("no id")?
        .parse()?;
    let exit = derived_for(&events, refresh)?;
    let answer = bridge.chain.query(&format!("{}{exit}", ferry_types::query::EXIT_BTC_DISBURSAL_PATH))?;
    let view: ferry_types::query::BtcDisbursalView = serde_json::from_slice(&answer.value)?;
    let script =
        ferry_types::release::bitcoin::parse_destination(&recovery, ferry_types::peg::BitcoinNetwork::Regtest)?;
    assert_eq!(view.claims.len(), 1);
    assert_eq!(view.claims[0].script, hex::encode(script.as_bytes()));

    // Cleared: back to its own key's address.
    let outcome = set(&mut bridge, None)?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let view: ferry_types::query::RecoveryView = serde_json::from_slice(&bridge.chain.query(&path)?.value)?;
    assert_eq!(view.registered, None);
    assert!(view.default.is_some_and(|address| address.starts_with("bcrt1q")));
    Ok(())
}

#[test]
fn a_disbursal_pays_the_accounts_its_own_block_wrote() -> TestResult {
    let mut bridge = Bridge::start_with(exit_params())?;
    // Two reports (blocks 2 and 3); the third, in the batching block 4, makes the clock, and the
    // refresh forms in that same block — after a transfer to bob in it.
    bridge.report_height(1, 100)?;
    bridge.report_height(2, 100)?;
    assert_eq!(bridge.chain.height() + 1, BATCH_INTERVAL);
    let bob = key("bob")?.address();
    let fee = coin(1_000, &Denom::sat());
    let transfer = bridge.user_tx(
        &bridge.alice,
        &fee,
        &[driver::send(&bridge.alice.address, &bob, &[coin(50_000, &Denom::sat())])],
    )?;
    let attester = bridge.member(3).address;
    let report = MsgAttestParentHeight { attester, chain: ParentChain::Bitcoin, height: 100 };
    let clock = bridge.duty_tx(3, &[Msg::AttestParentHeight(report)])?;
    let outcomes = bridge.block(&[transfer, clock])?;
    assert!(outcomes.iter().all(|outcome| outcome.code == TxCode::Ok), "{outcomes:?}");
    let events = std::mem::take(&mut bridge.block_events);
    let refresh: u64 = attributes(events_of(&events, ev::EXIT_REFRESH).first().ok_or("no refresh")?)
        .get(ev::BATCH_ID)
        .ok_or("no id")?
        .parse()?;
    let exit = disbursal(&bridge, derived_for(&events, refresh)?)?;
    assert_eq!(exit.claim_count, 2, "alice and bob, whose account this very block wrote");
    assert_eq!(exit.recipients, 2);
    Ok(())
}

#[test]
fn a_disbursal_no_reserve_move_spent_stays_live_and_a_refresh_kills_it_before_its_lock() -> TestResult {
    // Caps high enough for a large withdrawal; no refresh for uncovered deposits, so the deposit
    // below stays out of every disbursal until a release spends it.
    let mut params = exit_params();
    params.limits[0] = AssetLimit {
        denom: Denom::sat(),
        window_cap: Amount::new(10_000_000),
        delay_above: Amount::new(10_000_000),
        min_amount: Amount::new(SAT_MIN),
    };
    if let Some(exit) = params.bitcoin_exit.as_mut() {
        exit.max_uncovered_percent = 100;
    }
    let mut bridge = Bridge::start_with(params)?;
    clock_to(&mut bridge, 100)?;

    // A first release: its disbursal covers what it leaves (the 400,000 sat deposit and its change).
    let outcome = bridge.one(&bridge.withdraw_sat_tx(100_000, BTC_DESTINATION, BTC_BUDGET)?)?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let events = bridge.run_to_batch_height()?;
    let first_release = created_batch(&events, &Denom::sat())?;
    let first = derived_for(&events, first_release)?;
    sign_by_three(&mut bridge, first)?;
    sign_by_three(&mut bridge, first_release)?;
    let txid = release_txid(&bridge.chain.batch(first_release)?)?;
    settle_with(&mut bridge, first_release, &txid)?;
    assert_eq!(exit_status(&bridge)?.covering, Some(first));

    // Later, a large deposit, then a withdrawal only it can pay: the release spends none of the
    // covering disbursal's inputs, so that one stays valid next to the new one.
    clock_to(&mut bridge, 105)?;
    let outcome = bridge.attest_by_quorum(&bitcoin_payment(0, 5_000_000, bridge.alice.address, false))?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let outcome = bridge.one(&bridge.withdraw_sat_tx(2_000_000, BTC_DESTINATION, BTC_BUDGET)?)?;
    assert_eq!(outcome.code, TxCode::Ok, "{}", outcome.log);
    let events = bridge.run_to_batch_height()?;
    let second_release = created_batch(&events, &Denom::sat())?;
    let second = derived_for(&events, second_release)?;
    let covered = disbursal(&bridge, first)?.basis.inputs;
    let planned = bitcoin_release(&bridge.chain.batch(second_release)?)?;
    assert!(!planned.plan.inputs().iter().any(|input| covered.contains(input)), "the covered inputs cannot pay it");
    sign_by_three(&mut bridge, second)?;
    sign_by_three(&mut bridge, second_release)?;
    settle_with(&mut bridge, second_release, &planned.txid)?;
    assert_eq!(exit_status(&bridge)?.covering, Some(second));
    assert_eq!(disbursal(&bridge, first)?.standing, ExitStanding::Covering, "still valid: nothing spent its inputs");

    // Before the OLDER one's lock passes, a refresh forms and spends one of its inputs.
    let lock = u64::from(disbursal(&bridge, first)?.basis.lock_height);
    assert!(lock < u64::from(disbursal(&bridge, second)?.basis.lock_height));
    let mut due = clock_to(&mut bridge, lock - 5)?;
    due.extend(bridge.run_to_batch_height()?);
    let refreshed = events_of(&due, ev::EXIT_REFRESH);
    assert_eq!(refreshed.len(), 1, "{due:?}");
    let reason = attributes(refreshed[0]).get(ev::REASON).copied().unwrap_or_default();
    assert!(reason.contains(&format!("disbursal {first}")), "{reason}");
    let refresh: u64 = attributes(refreshed[0]).get(ev::BATCH_ID).ok_or("no id")?.parse()?;
    let inputs = bitcoin_release(&bridge.chain.batch(refresh)?)?.plan.inputs().to_vec();
    assert!(inputs.iter().any(|input| covered.contains(input)), "the refresh kills the older disbursal");
    let newer = disbursal(&bridge, second)?.basis.inputs;
    assert!(inputs.iter().any(|input| newer.contains(input)), "and the newer one");
    assert_reconciled(&bridge)
}
