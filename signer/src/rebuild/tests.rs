//! The pure core end to end: honest batches of both chains are signed (and the signatures verify
//! as the chain checks them); every kind of tampering is refused with its named reason.

use std::collections::BTreeMap;
use std::time::Duration;

use bitcoin::{Network, OutPoint, ScriptBuf, Transaction};
use ferry_types::genesis::{EthereumBridge, WithdrawalParams};
use ferry_types::msg::ReleaseSignatures;
use ferry_types::peg::Peg;
use ferry_types::query::{
    Batch, BatchItem, BatchRelease, BatchStatus, BitcoinRelease, EthereumRelease, SignedBitcoinVersion, Withdrawal,
    WithdrawalId,
};
use ferry_types::release::bitcoin::{
    ReleaseOutput, ReleaseRequest, Utxo, plan_release, plan_release_at_rate, price_replacement, verify_input_signature,
};
use ferry_types::release::bls;
use ferry_types::release::eth::{EthAddress, EthBatch, EthListing, EthReleaseItem};
use ferry_types::release::fee::{FeeRate, bumped_rate};
use ferry_types::{Address, Amount, Denom};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::ceremony::{Ceremony, keygen};
use crate::policy::{Decision, DecisionInput, Denylist, Policy, decide};
use crate::refusal::Reason;
use crate::signing::sign;

const BATCH: u64 = 7;
/// Each Bitcoin burn's `max_fee`.
const BUDGET: u128 = 20_000;
const CHAIN_ID: u64 = 31_337;
const VAULT: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const ALICE: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const BOB: &str = "0x52908400098527886E0F7030069857D2E4169EE7";
const MALLORY: &str = "0xde709f2102306220921060314715629080e2fb77";

fn ceremony(seed: u64) -> Ceremony {
    match keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(seed)) {
        Ok(ceremony) => ceremony,
        Err(error) => unreachable!("keygen 3 of 4: {error}"),
    }
}

fn eth(text: &str) -> EthAddress {
    text.to_ascii_lowercase().parse().unwrap_or(EthAddress::ZERO)
}

fn peg(ceremony: &Ceremony) -> Peg {
    match Peg::new(&ceremony.manifest.bitcoin) {
        Ok(peg) => peg,
        Err(error) => unreachable!("a ceremony's keys make a peg: {error}"),
    }
}

/// A P2WSH regtest address of a throwaway script, one per `n`.
fn regtest_address(n: u8) -> String {
    bitcoin::Address::p2wsh(&ScriptBuf::from_bytes(vec![0x51, n]), Network::Regtest).to_string()
}

/// Everything `decide` needs, honest until a test edits it.
struct Case {
    ceremony: Ceremony,
    batch: Batch,
    withdrawals: BTreeMap<WithdrawalId, Withdrawal>,
    params: WithdrawalParams,
    local: LocalKnowledge,
    policy: Policy,
    signed_in_window: Amount,
}

impl Case {
    fn new(asset: Denom, burns: &[(&str, u128)], release: impl FnOnce(&Case, &[Withdrawal]) -> BatchRelease) -> Case {
        Case::with_params(asset, burns, WithdrawalParams::default(), release)
    }

    /// As [`Case::new`], under the chain's withdrawal parameters `params`.
    fn with_params(
        asset: Denom,
        burns: &[(&str, u128)],
        params: WithdrawalParams,
        release: impl FnOnce(&Case, &[Withdrawal]) -> BatchRelease,
    ) -> Case {
        let ceremony = ceremony(11);
        let local = LocalKnowledge {
            member: Address::from_bytes([0x4d; 20]),
            epoch: ceremony.manifest.epoch,
            ethereum: Some(EthereumBridge::new(CHAIN_ID, eth(VAULT))),
            bitcoin: Some(peg(&ceremony)),
            next: None,
            retired: Default::default(),
        };
        let policy = Policy {
            window: Duration::from_secs(86_400),
            caps: BTreeMap::from([
                (Denom::sat(), Amount::new(10_000_000)),
                (Denom::wei(), Amount::new(100_000_000_000_000_000_000)),
            ]),
            max_batch_items: 8,
            denylist: Denylist::default(),
        };
        let records: Vec<Withdrawal> = burns
            .iter()
            .enumerate()
            .map(|(position, (destination, amount))| Withdrawal {
                id: WithdrawalId(position as u64 + 1),
                sender: Address::from_bytes([position as u8 + 1; 20]),
                asset: asset.clone(),
                amount: Amount::new(*amount),
                destination: (*destination).to_owned(),
                max_fee: Amount::new(if asset == Denom::sat() { BUDGET } else { 0 }),
                burned_height: 3,
                eligible_height: 3,
                batch: Some(BATCH),
                waiting: None,
                held: None,
                refunded_height: None,
            })
            .collect();
        let items = records
            .iter()
            .map(|record| BatchItem {
                withdrawal: record.id,
                destination: record.destination.clone(),
                amount: record.amount,
                paid: record.amount,
            })
            .collect();
        let total = Amount::new(records.iter().map(|record| record.amount.get()).sum());
        let mut case = Case {
            ceremony,
            batch: Batch {
                id: BATCH,
                asset,
                status: BatchStatus::Signing,
                items,
                total,
                created_height: 5,
                signed_height: None,
                released_height: None,
                release: BatchRelease::Ethereum(EthereumRelease {
                    batch: EthBatch {
                        chain_id: 0,
                        vault: EthAddress::ZERO,
                        epoch: 0,
                        nonce: 0,
                        exit_height: 0,
                        exit_root: [0; 32],
                        items: Vec::new(),
                    },
                    payload: String::new(),
                    signature: None,
                    signature_compressed: None,
                }),
                signatures: BTreeMap::new(),
                release_attestations: BTreeMap::new(),
                release_heights: BTreeMap::new(),
                abort_votes: BTreeMap::new(),
                aborted: None,
                release_tx: None,
            },
            withdrawals: BTreeMap::new(),
            params,
            local,
            policy,
            signed_in_window: Amount::ZERO,
        };
        case.batch.release = release(&case, &records);
        if let BatchRelease::Bitcoin(bitcoin) = &case.batch.release {
            for (item, output) in case.batch.items.iter_mut().zip(bitcoin.plan.outputs()) {
                item.paid = output.amount;
            }
        }
        case.withdrawals = records.into_iter().map(|record| (record.id, record)).collect();
        case
    }

    /// An ether batch of two withdrawals, built as the chain builds it.
    fn ethereum() -> Case {
        Case::new(Denom::wei(), &[(ALICE, 1_000_000_000_000_000_000), (BOB, 2_500_000_000_000_000)], |case, records| {
            let items = records
                .iter()
                .map(|record| EthReleaseItem {
                    token: EthAddress::ZERO,
                    recipient: eth(&record.destination),
                    amount: record.amount,
                })
                .collect();
            eth_release(EthBatch {
                chain_id: CHAIN_ID,
                vault: eth(VAULT),
                epoch: case.ceremony.manifest.epoch,
                nonce: BATCH,
                exit_height: case.batch.created_height,
                exit_root: [0x5e; 32],
                items,
            })
        })
    }

    /// A Bitcoin batch of two withdrawals, planned and built as the chain builds it.
    fn bitcoin() -> Case {
        Case::bitcoin_under(WithdrawalParams::default())
    }

    /// [`Case::bitcoin`] under the chain's withdrawal parameters `params`.
    fn bitcoin_under(params: WithdrawalParams) -> Case {
        let burns = [(regtest_address(1), 300_000), (regtest_address(2), 200_000)];
        let burns: Vec<(&str, u128)> = burns.iter().map(|(address, amount)| (address.as_str(), *amount)).collect();
        Case::with_params(Denom::sat(), &burns, params, |case, records| {
            let requests: Vec<ReleaseRequest> = records.iter().map(ReleaseRequest::from).collect();
            let utxos = [utxo(0xaa, 0, 1_000_000), utxo(0xbb, 1, 400_000)];
            let peg = peg(&case.ceremony);
            let priced = plan_release_at_rate(&utxos, &requests, rate(), &peg, case.params.bitcoin_dust_limit);
            match priced {
                Ok(priced) => btc_release(priced.plan, &peg),
                Err(error) => unreachable!("the reserves cover the release: {error}"),
            }
        })
    }

    fn decide(&self) -> Decision {
        decide(&DecisionInput {
            batch: &self.batch,
            withdrawals: &self.withdrawals,
            params: &self.params,
            local: &self.local,
            policy: &self.policy,
            signed_in_window: self.signed_in_window,
            exit: None,
        })
    }

    /// The reason `decide` refuses with (`None`: it signs).
    fn refusal(&self) -> Option<Reason> {
        match self.decide() {
            Decision::Sign(_) => None,
            Decision::Refuse(refusal) => {
                assert!(!refusal.message.is_empty(), "a refusal without a message: {refusal:?}");
                Some(refusal.reason)
            }
        }
    }

    /// Edits the chain's Ethereum payload and re-encodes its hex, as a consistent liar would.
    fn edit_eth(&mut self, edit: impl FnOnce(&mut EthBatch)) {
        if let BatchRelease::Ethereum(release) = &mut self.batch.release {
            edit(&mut release.batch);
            release.payload = hex::encode(release.batch.payload());
        }
    }

    fn bitcoin_release(&mut self) -> &mut BitcoinRelease {
        match &mut self.batch.release {
            BatchRelease::Bitcoin(release) => release,
            _ => unreachable!("a Bitcoin case"),
        }
    }

    fn chain_tx(&mut self) -> Transaction {
        let bytes = hex::decode(&self.bitcoin_release().unsigned_tx).unwrap_or_default();
        bitcoin::consensus::deserialize(&bytes).unwrap_or_else(|_| unreachable!("the chain's tx decodes"))
    }
}

fn utxo(byte: u8, vout: u32, sats: u128) -> Utxo {
    Utxo { txid: format!("{byte:02x}").repeat(32), vout, amount: Amount::new(sats), owner: None }
}

fn eth_release(batch: EthBatch) -> BatchRelease {
    let payload = hex::encode(batch.payload());
    BatchRelease::Ethereum(EthereumRelease { batch, payload, signature: None, signature_compressed: None })
}

fn btc_release(plan: ReleasePlan, peg: &Peg) -> BatchRelease {
    match BitcoinRelease::new(plan, rate(), peg) {
        Ok(release) => BatchRelease::Bitcoin(release),
        Err(error) => unreachable!("a plan's sighashes compute: {error}"),
    }
}

/// The rate the test batches are priced at: the default parameters' start rate.
fn rate() -> FeeRate {
    FeeRate::from_sat_per_vb(WithdrawalParams::default().bitcoin_start_fee_rate)
}

/// A listing change of `token` proposed by `proposers`, as the chain records it.
fn listing_case(proposers: &[Address]) -> Case {
    let token = eth(BOB);
    let mut case = Case::new(Denom::erc20(&token), &[], |case, _| {
        let listing = EthListing {
            chain_id: CHAIN_ID,
            vault: eth(VAULT),
            epoch: case.ceremony.manifest.epoch,
            nonce: BATCH,
            token,
            listed: true,
        };
        BatchRelease::EthereumListing(ferry_types::query::EthereumListing {
            payload: hex::encode(listing.payload()),
            listing,
            limit: Some(ferry_types::genesis::AssetLimit {
                denom: Denom::erc20(&token),
                window_cap: Amount::new(1_000),
                delay_above: Amount::new(500),
                min_amount: Amount::new(1),
            }),
            proposers: proposers.iter().map(|member| (*member, 3)).collect(),
            signature: None,
            signature_compressed: None,
        })
    });
    // A listing moves nothing: no local cap for the token is needed.
    case.policy.caps.clear();
    case
}

#[test]
fn a_listing_is_signed_only_when_this_member_proposed_it_and_only_as_rebuilt() -> Result<(), Box<dyn std::error::Error>>
{
    let member = Address::from_bytes([0x4d; 20]);
    let case = listing_case(&[member, Address::from_bytes([1; 20])]);
    let Decision::Sign(rebuilt) = case.decide() else { return Err(format!("{:?}", case.decide()).into()) };
    let Payload::Listing { bytes, .. } = &rebuilt.payload else { return Err("not a listing payload".into()) };
    let message = case.batch.release.bls_message().ok_or("no message")?;
    assert_eq!(bytes, &message);
    let set = case.ceremony.manifest.public_key_set()?;
    let member_keys = case.ceremony.members.first().ok_or("no member")?;
    let Some(ReleaseSignatures::Bls(share)) =
        sign(&rebuilt, Some(member_keys.bls_secret_key_share()), member_keys.bitcoin_secret_key())
    else {
        return Err("not a BLS share".into());
    };
    assert!(bls::verify_share(&set, u64::from(member_keys.index()), &bls::decode_signature_share(&share)?, &message));

    assert_eq!(listing_case(&[Address::from_bytes([1; 20])]).refusal(), Some(Reason::Listing));
    let mut other_vault = listing_case(&[member]);
    if let BatchRelease::EthereumListing(change) = &mut other_vault.batch.release {
        change.listing.vault = eth(MALLORY);
        change.payload = hex::encode(change.listing.payload());
    }
    assert_eq!(other_vault.refusal(), Some(Reason::PayloadMismatch));
    let mut flipped = listing_case(&[member]);
    if let BatchRelease::EthereumListing(change) = &mut flipped.batch.release {
        change.listing.listed = false;
        change.payload = hex::encode(change.listing.payload());
    }
    assert_eq!(flipped.refusal(), Some(Reason::PayloadMismatch));
    Ok(())
}

#[test]
fn an_honest_ethereum_batch_is_signed_with_a_share_the_chain_accepts() -> Result<(), Box<dyn std::error::Error>> {
    let case = Case::ethereum();
    let Decision::Sign(rebuilt) = case.decide() else { return Err(format!("{:?}", case.decide()).into()) };
    assert_eq!((rebuilt.batch, rebuilt.epoch, rebuilt.items()), (BATCH, 1, 2));
    let BatchRelease::Ethereum(release) = &case.batch.release else { return Err("not ethereum".into()) };
    let Payload::Ethereum { bytes, .. } = &rebuilt.payload else { return Err("not an ethereum payload".into()) };
    assert_eq!(hex::encode(bytes), release.payload);
    let set = case.ceremony.manifest.public_key_set()?;
    for member in &case.ceremony.members {
        let Some(ReleaseSignatures::Bls(share)) =
            sign(&rebuilt, Some(member.bls_secret_key_share()), member.bitcoin_secret_key())
        else {
            return Err("not a BLS share".into());
        };
        let share = bls::decode_signature_share(&share)?;
        assert!(bls::verify_share(&set, u64::from(member.index()), &share, &release.batch.signing_message()));
    }
    Ok(())
}

#[test]
fn an_honest_bitcoin_batch_is_signed_per_input_as_the_chain_checks() -> Result<(), Box<dyn std::error::Error>> {
    let mut case = Case::bitcoin();
    let Decision::Sign(rebuilt) = case.decide() else { return Err(format!("{:?}", case.decide()).into()) };
    let release = case.bitcoin_release().clone();
    let Payload::Bitcoin { txid, sighashes } = &rebuilt.payload else { return Err("not a bitcoin payload".into()) };
    assert_eq!(txid, &release.txid);
    assert_eq!(sighashes.iter().map(hex::encode).collect::<Vec<_>>(), release.sighashes);
    let peg = peg(&case.ceremony);
    for member in &case.ceremony.members {
        let Some(ReleaseSignatures::Bitcoin(signatures)) =
            sign(&rebuilt, Some(member.bls_secret_key_share()), member.bitcoin_secret_key())
        else {
            return Err("not bitcoin".into());
        };
        assert_eq!(signatures.len(), sighashes.len());
        for (signature, sighash) in signatures.iter().zip(sighashes) {
            verify_input_signature(&peg, member.index() as usize, sighash, signature)?;
        }
    }
    // The payload hash is what is signed, so another batch has another.
    let ethereum = Case::ethereum();
    let Decision::Sign(other) = ethereum.decide() else { return Err("ethereum refused".into()) };
    assert_ne!(rebuilt.payload_hash(), other.payload_hash());
    Ok(())
}

#[test]
fn an_ethereum_release_must_carry_the_exit_root_of_the_height_it_formed_at() -> Result<(), Box<dyn std::error::Error>> {
    // Another height's root (an older one would leave its withdrawals claimable as queued
    // after the vault paid them): refused, however the payload bytes match it.
    let mut case = Case::ethereum();
    case.edit_eth(|batch| batch.exit_height -= 1);
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
    // The chain's root is signed as recorded: a signer does not pick another.
    let case = Case::ethereum();
    let Decision::Sign(rebuilt) = case.decide() else { return Err(format!("{:?}", case.decide()).into()) };
    let Payload::Ethereum { batch, .. } = &rebuilt.payload else { return Err("not an Ethereum payload".into()) };
    assert_eq!((batch.exit_height, batch.exit_root), (case.batch.created_height, [0x5e; 32]));
    Ok(())
}

#[test]
fn a_tampered_destination_is_refused() {
    // The batch's item and payload both pay Mallory; the burn named Alice.
    let mut case = Case::ethereum();
    case.batch.items[0].destination = MALLORY.to_owned();
    case.edit_eth(|batch| batch.items[0].recipient = eth(MALLORY));
    assert_eq!(case.refusal(), Some(Reason::Destination));
    // Only the payload pays Mallory.
    let mut case = Case::ethereum();
    case.edit_eth(|batch| batch.items[0].recipient = eth(MALLORY));
    assert_eq!(case.refusal(), Some(Reason::Destination));
    // A Bitcoin plan output to another address.
    let mut case = Case::bitcoin();
    let release = case.bitcoin_release();
    let mut outputs = release.plan.outputs().to_vec();
    outputs[1] = ReleaseOutput::new(&regtest_address(9), ferry_types::peg::BitcoinNetwork::Regtest, outputs[1].amount)
        .unwrap_or_else(|_| unreachable!("a regtest address"));
    let plan = plan_release(release.plan.inputs(), &outputs, release.plan.fee(), Amount::new(546))
        .unwrap_or_else(|_| unreachable!("same amounts"));
    case.batch.release = btc_release(plan, &peg(&case.ceremony));
    assert_eq!(case.refusal(), Some(Reason::Destination));
}

#[test]
fn a_changed_amount_is_refused() {
    let mut case = Case::ethereum();
    case.edit_eth(|batch| batch.items[1].amount = Amount::new(batch.items[1].amount.get() * 10));
    assert_eq!(case.refusal(), Some(Reason::AmountMismatch));
    let mut case = Case::ethereum();
    case.batch.items[0].amount = Amount::new(1);
    assert_eq!(case.refusal(), Some(Reason::AmountMismatch));
    let mut case = Case::ethereum();
    case.batch.total = Amount::new(case.batch.total.get() + 1);
    assert_eq!(case.refusal(), Some(Reason::AmountMismatch));
    // Bitcoin: an item said to be paid more than the burn less the fee.
    let mut case = Case::bitcoin();
    case.batch.items[0].paid = case.batch.items[0].amount;
    assert_eq!(case.refusal(), Some(Reason::AmountMismatch));
}

#[test]
fn a_bitcoin_plan_that_overpays_miners_is_refused() {
    // Same outputs, 10 000 sat more fee, 10 000 sat less change: the reserves would fall by more
    // than was burned.
    let mut case = Case::bitcoin();
    let release = case.bitcoin_release();
    let plan = plan_release(
        release.plan.inputs(),
        release.plan.outputs(),
        Amount::new(release.plan.fee().get() + 10_000),
        Amount::new(546),
    )
    .unwrap_or_else(|_| unreachable!("the input covers it"));
    case.batch.release = btc_release(plan, &peg(&case.ceremony));
    assert_eq!(case.refusal(), Some(Reason::AmountMismatch));
}

#[test]
fn a_bitcoin_fee_rate_outside_the_bounds_or_a_share_above_its_budget_is_refused() {
    // Priced at 0.5 sat/vB, below the floor (and below the minimum relay fee): a release no node
    // relays. The chain's own numbers are consistent with that rate, so only the bound catches it.
    let mut case = Case::bitcoin();
    case.bitcoin_release().fee_rate = FeeRate::from_sat_per_kvb(500);
    let refused = case.decide();
    assert!(
        matches!(&refused, Decision::Refuse(refusal) if refusal.reason == Reason::Fee
            && refusal.message.contains("outside the chain's bounds of 1 sat/vB to 1000 sat/vB")),
        "{refused:?}"
    );
    // Above the ceiling.
    let mut case = Case::bitcoin();
    case.bitcoin_release().fee_rate = FeeRate::from_sat_per_vb(1_001);
    assert_eq!(case.refusal(), Some(Reason::Fee));
    // A burn whose budget is below its share at the batch's rate.
    let mut case = Case::bitcoin();
    for burn in case.withdrawals.values_mut() {
        burn.max_fee = Amount::new(100);
    }
    let refused = case.decide();
    assert!(
        matches!(&refused, Decision::Refuse(refusal) if refusal.reason == Reason::Fee
            && refusal.message.contains("above its max_fee of 100 sat")),
        "{refused:?}"
    );
    // A chain that prices at a higher (in-bounds) rate than it states: the fee is not the rate's.
    let mut case = Case::bitcoin();
    case.bitcoin_release().fee_rate = FeeRate::from_sat_per_vb(3);
    assert_eq!(case.refusal(), Some(Reason::AmountMismatch));
    assert_eq!(Case::bitcoin().refusal(), None);
}

#[test]
fn a_changed_vault_chain_id_epoch_or_nonce_in_the_payload_is_refused() {
    let edits: [fn(&mut EthBatch); 5] = [
        |batch| batch.vault = eth(MALLORY),
        |batch| batch.chain_id = 1,
        |batch| batch.epoch = 2,
        |batch| batch.nonce = BATCH + 1,
        |batch| batch.items[0].token = eth(MALLORY),
    ];
    for edit in edits {
        let mut case = Case::ethereum();
        case.edit_eth(edit);
        assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
    }
    // Honest fields, but payload bytes that are not their encoding.
    let mut case = Case::ethereum();
    if let BatchRelease::Ethereum(release) = &mut case.batch.release {
        release.payload.replace_range(..2, "ff");
    }
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
    // A signer configured for another vault refuses the honest batch.
    let mut case = Case::ethereum();
    case.local.ethereum = Some(EthereumBridge::new(CHAIN_ID, eth(BOB)));
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
}

#[test]
fn an_extra_item_is_refused() {
    // An item (and payout) for a withdrawal the chain has no record of.
    let mut case = Case::ethereum();
    let extra = BatchItem {
        withdrawal: WithdrawalId(9),
        destination: MALLORY.to_owned(),
        amount: Amount::new(5),
        paid: Amount::new(5),
    };
    case.batch.items.push(extra.clone());
    case.batch.total = Amount::new(case.batch.total.get() + 5);
    case.edit_eth(|batch| {
        batch.items.push(EthReleaseItem { token: EthAddress::ZERO, recipient: eth(MALLORY), amount: Amount::new(5) })
    });
    assert_eq!(case.refusal(), Some(Reason::UnknownWithdrawal));
    // A withdrawal that exists but belongs to another batch.
    let mut other = case.withdrawals.get(&WithdrawalId(1)).cloned().unwrap_or_else(|| unreachable!("wd-1"));
    other.id = WithdrawalId(9);
    other.batch = Some(BATCH - 1);
    case.withdrawals.insert(WithdrawalId(9), other);
    assert_eq!(case.refusal(), Some(Reason::UnknownWithdrawal));
    // The same withdrawal listed twice.
    let mut case = Case::ethereum();
    let first = case.batch.items[0].clone();
    case.batch.items.push(first);
    assert_eq!(case.refusal(), Some(Reason::UnknownWithdrawal));
    // A payout in the payload that no item stands for.
    let mut case = Case::ethereum();
    case.edit_eth(|batch| {
        batch.items.push(EthReleaseItem { token: EthAddress::ZERO, recipient: eth(MALLORY), amount: Amount::new(5) })
    });
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
}

#[test]
fn a_bitcoin_change_output_to_a_foreign_address_is_refused() {
    // The chain's transaction sends the change to a peg of other keys (consistent txid and
    // sighashes for that transaction).
    let mut case = Case::bitcoin();
    let foreign = peg(&ceremony(99));
    let plan = case.bitcoin_release().plan.clone();
    case.batch.release = btc_release(plan, &foreign);
    assert_eq!(case.refusal(), Some(Reason::ChangeAddress));
    // A signer whose manifest is another federation's sees every honest change as foreign.
    let mut case = Case::bitcoin();
    case.local.bitcoin = Some(foreign);
    assert_eq!(case.refusal(), Some(Reason::ChangeAddress));
}

#[test]
fn an_input_set_that_does_not_match_the_plan_is_refused() {
    let mut case = Case::bitcoin();
    let mut tx = case.chain_tx();
    tx.input[0].previous_output = OutPoint { txid: tx.input[0].previous_output.txid, vout: 5 };
    let release = case.bitcoin_release();
    release.unsigned_tx = bitcoin::consensus::encode::serialize_hex(&tx);
    release.txid = tx.compute_txid().to_string();
    assert_eq!(case.refusal(), Some(Reason::Inputs));
    // An extra input the plan does not list.
    let mut case = Case::bitcoin();
    let mut tx = case.chain_tx();
    let mut extra = tx.input[0].clone();
    extra.previous_output.vout = 9;
    tx.input.push(extra);
    case.bitcoin_release().unsigned_tx = bitcoin::consensus::encode::serialize_hex(&tx);
    assert_eq!(case.refusal(), Some(Reason::Inputs));
}

#[test]
fn other_transaction_and_sighash_tampering_is_refused() {
    // Another lock time: same inputs and outputs, another transaction.
    let mut case = Case::bitcoin();
    let mut tx = case.chain_tx();
    tx.lock_time = bitcoin::absolute::LockTime::from_consensus(500);
    case.bitcoin_release().unsigned_tx = bitcoin::consensus::encode::serialize_hex(&tx);
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
    // Sighashes that are not the transaction's.
    let mut case = Case::bitcoin();
    case.bitcoin_release().sighashes[0] = "00".repeat(32);
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
    // A txid that is not the transaction's.
    let mut case = Case::bitcoin();
    case.bitcoin_release().txid = "11".repeat(32);
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
    // A Bitcoin release for an ether batch.
    let mut case = Case::ethereum();
    case.batch.release = Case::bitcoin().batch.release;
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
}

#[test]
fn local_policy_refuses_denied_destinations_caps_and_item_counts() -> Result<(), Box<dyn std::error::Error>> {
    let mut case = Case::ethereum();
    case.policy.denylist = Denylist::parse([BOB.to_ascii_lowercase().as_str()])?;
    assert_eq!(case.refusal(), Some(Reason::Destination));
    let mut case = Case::bitcoin();
    case.policy.denylist = Denylist::parse([regtest_address(2).as_str()])?;
    assert_eq!(case.refusal(), Some(Reason::Destination));

    // The batch's total is 500 000 sat under a cap of 10 000 000.
    let mut case = Case::bitcoin();
    case.signed_in_window = Amount::new(9_500_000);
    assert_eq!(case.refusal(), None, "exactly at the cap");
    case.signed_in_window = Amount::new(9_500_001);
    assert_eq!(case.refusal(), Some(Reason::Cap));
    case.signed_in_window = Amount::ZERO;
    case.policy.caps.remove(&Denom::sat());
    assert_eq!(case.refusal(), Some(Reason::Cap));

    let mut case = Case::ethereum();
    case.policy.max_batch_items = 1;
    assert_eq!(case.refusal(), Some(Reason::ItemCount));
    case.policy.max_batch_items = 8;
    case.batch.items.clear();
    assert_eq!(case.refusal(), Some(Reason::ItemCount));
    Ok(())
}

#[test]
fn a_chain_this_signer_is_not_set_up_for_is_refused() {
    let mut case = Case::ethereum();
    case.local.ethereum = None;
    assert_eq!(case.refusal(), Some(Reason::Unsupported));
    let mut case = Case::bitcoin();
    case.local.bitcoin = None;
    assert_eq!(case.refusal(), Some(Reason::Unsupported));
}

#[test]
fn a_bitcoin_destination_of_another_network_or_the_peg_itself_is_refused() {
    let testnet = bitcoin::Address::p2wsh(&ScriptBuf::from_bytes(vec![0x51, 1]), Network::Testnet).to_string();
    let mut case = Case::bitcoin();
    for item in &mut case.batch.items {
        if item.withdrawal == WithdrawalId(1) {
            item.destination = testnet.clone();
        }
    }
    if let Some(burn) = case.withdrawals.get_mut(&WithdrawalId(1)) {
        burn.destination = testnet.clone();
    }
    assert_eq!(case.refusal(), Some(Reason::Destination));

    let mut case = Case::bitcoin();
    let peg_address = peg(&case.ceremony).address().to_string();
    case.batch.items[0].destination = peg_address.clone();
    if let Some(burn) = case.withdrawals.get_mut(&WithdrawalId(1)) {
        burn.destination = peg_address;
    }
    assert_eq!(case.refusal(), Some(Reason::Destination));
}

impl Case {
    /// [`Case::bitcoin`] after the chain replaced its release once at `rate` (version 1), the
    /// first version kept as signed.
    fn replaced_at(rate: FeeRate) -> Case {
        let mut case = Case::bitcoin();
        let peg = peg(&case.ceremony);
        let requests: Vec<ReleaseRequest> =
            case.batch.items.iter().map(|item| ReleaseRequest::from(&case.withdrawals[&item.withdrawal])).collect();
        let first = case.bitcoin_release().clone();
        let priced = price_replacement(&first.plan, &requests, rate, &peg, case.params.bitcoin_dust_limit)
            .unwrap_or_else(|error| unreachable!("the budgets leave room: {error}"));
        let BatchRelease::Bitcoin(mut second) = btc_release(priced.plan, &peg) else { unreachable!("bitcoin") };
        second.fee_rate = rate;
        second.version = 1;
        second.superseded = vec![SignedBitcoinVersion {
            version: 0,
            plan: first.plan,
            unsigned_tx: first.unsigned_tx,
            txid: first.txid,
            sighashes: first.sighashes,
            fee_rate: first.fee_rate,
            signatures: BTreeMap::new(),
        }];
        for (item, output) in case.batch.items.iter_mut().zip(second.plan.outputs()) {
            item.paid = output.amount;
        }
        case.batch.release = BatchRelease::Bitcoin(second);
        case
    }
}

#[test]
fn an_honest_replacement_is_signed_and_names_the_version_it_replaces() {
    let case = Case::replaced_at(bumped_rate(rate()));
    let Decision::Sign(rebuilt) = case.decide() else { unreachable!("refused: {:?}", case.decide()) };
    let BatchRelease::Bitcoin(release) = &case.batch.release else { unreachable!("bitcoin") };
    assert_eq!(rebuilt.version, 1);
    assert_eq!(rebuilt.replaces, Some(sighash_payload_hash(&release.superseded[0].sighashes)));
    assert_ne!(rebuilt.replaces, Some(rebuilt.payload_hash()));
}

#[test]
fn a_replacement_that_changes_a_destination_overspends_a_budget_or_skips_a_version_is_refused() {
    // The chain's replacement pays another address (consistent txid and sighashes).
    let mut case = Case::replaced_at(bumped_rate(rate()));
    let release = case.bitcoin_release();
    let mut outputs = release.plan.outputs().to_vec();
    outputs[0] = ReleaseOutput::new(&regtest_address(9), ferry_types::peg::BitcoinNetwork::Regtest, outputs[0].amount)
        .unwrap_or_else(|_| unreachable!("a regtest address"));
    let plan = plan_release(release.plan.inputs(), &outputs, release.plan.fee(), Amount::new(546))
        .unwrap_or_else(|_| unreachable!("same amounts"));
    let replaced = std::mem::take(&mut release.superseded);
    case.batch.release = btc_release(plan, &peg(&case.ceremony));
    let release = case.bitcoin_release();
    release.version = 1;
    release.superseded = replaced;
    release.fee_rate = bumped_rate(rate());
    assert_eq!(case.refusal(), Some(Reason::Destination));
    // Budgets the replacement's shares exceed (the burns say 300 sat at most): within them the
    // fee cannot rise above the first version's.
    let mut case = Case::replaced_at(bumped_rate(rate()));
    for burn in case.withdrawals.values_mut() {
        burn.max_fee = Amount::new(300);
    }
    let refused = case.decide();
    assert!(
        matches!(&refused, Decision::Refuse(refusal) if refusal.reason == Reason::Fee
            && refusal.message.contains("within the withdrawals' budgets")),
        "{refused:?}"
    );
    // Version 2 claiming to replace version 0.
    let mut case = Case::replaced_at(bumped_rate(rate()));
    case.bitcoin_release().version = 2;
    assert_eq!(case.refusal(), Some(Reason::PayloadMismatch));
}

/// A consolidation batch as the chain builds it: the reserve UTXOs into one output to the peg.
fn consolidation_case() -> Case {
    Case::new(Denom::sat(), &[], |case, _| {
        let peg = peg(&case.ceremony);
        let inputs: Vec<Utxo> = (0..5).map(|i| utxo(0x10 + i, 0, 12_000)).collect();
        let plan = ferry_types::release::bitcoin::plan_consolidation(&inputs, rate(), &peg, Amount::new(546))
            .unwrap_or_else(|error| unreachable!("the inputs pay for themselves: {error}"));
        btc_release(plan, &peg)
    })
}

#[test]
fn a_consolidation_to_the_own_peg_is_signed_and_one_paying_elsewhere_is_refused() {
    let case = consolidation_case();
    assert!(case.batch.items.is_empty());
    assert_eq!(case.refusal(), None, "{:?}", case.decide());
    // The same inputs, the change to another federation's peg.
    let mut case = consolidation_case();
    let plan = case.bitcoin_release().plan.clone();
    case.batch.release = btc_release(plan, &peg(&ceremony(99)));
    assert_eq!(case.refusal(), Some(Reason::ChangeAddress));
    // A fee above the rate on its size (less change): refused.
    let mut case = consolidation_case();
    case.bitcoin_release().fee_rate = FeeRate::from_sat_per_vb(WithdrawalParams::default().bitcoin_start_fee_rate + 5);
    assert!(matches!(case.refusal(), Some(Reason::AmountMismatch)), "{:?}", case.decide());
    // An Ethereum batch without items is still refused.
    let mut case = Case::ethereum();
    case.batch.items.clear();
    assert_eq!(case.refusal(), Some(Reason::ItemCount));
}

/// The next federation a completed key generation made, as this signer rebuilt it: another
/// ceremony's key and peg stand in for it.
fn next_federation(epoch: u64) -> Result<NextFederation, Box<dyn std::error::Error>> {
    let next = ceremony(23);
    let key = next.manifest.public_key_set()?.public_key();
    Ok(NextFederation {
        epoch,
        key: hex::encode(bls::eip2537_g1(&key)),
        members: Vec::new(),
        bitcoin: Some(peg(&next)),
    })
}

/// The vault's rotation to `next`, as the chain forms it.
fn rotation_case(next: &NextFederation) -> Case {
    let mut case = Case::new(Denom::wei(), &[], |case, _| {
        let rotation = ferry_types::release::eth::EthRotation {
            chain_id: CHAIN_ID,
            vault: eth(VAULT),
            epoch: case.ceremony.manifest.epoch,
            new_epoch: next.epoch,
            new_key: next.key.clone(),
        };
        BatchRelease::EthereumRotation(ferry_types::query::EthereumRotation {
            payload: rotation.payload().map(hex::encode).unwrap_or_default(),
            rotation,
            signature: None,
            signature_compressed: None,
        })
    });
    case.local.next = Some(next.clone());
    case
}

#[test]
fn a_rotation_is_signed_only_to_the_key_this_signer_rebuilt_from_the_transcript()
-> Result<(), Box<dyn std::error::Error>> {
    let epoch = ceremony(11).manifest.epoch;
    let next = next_federation(epoch + 1)?;
    let case = rotation_case(&next);
    let Decision::Sign(rebuilt) = case.decide() else { return Err(format!("{:?}", case.decide()).into()) };
    let Payload::Rotation { bytes, .. } = &rebuilt.payload else { return Err("not a rotation payload".into()) };
    assert_eq!(Some(bytes.clone()), case.batch.release.bls_message());

    // No completed key generation seen, another key, another epoch: refused.
    let mut unseen = rotation_case(&next);
    unseen.local.next = None;
    assert_eq!(unseen.refusal(), Some(Reason::HandOver));
    let mut other_key = rotation_case(&next);
    other_key.local.next = Some(next_federation(epoch + 1).map(|n| NextFederation { key: "00".repeat(128), ..n })?);
    assert_eq!(other_key.refusal(), Some(Reason::HandOver));
    let skipping = rotation_case(&NextFederation { epoch: epoch + 2, ..next.clone() });
    let mut skipping = skipping;
    skipping.local.next = Some(next.clone());
    assert_eq!(skipping.refusal(), Some(Reason::HandOver));
    // Bytes that are not the rotation's.
    let mut tampered = rotation_case(&next);
    if let BatchRelease::EthereumRotation(change) = &mut tampered.batch.release {
        change.payload = hex::encode([0u8; 192]);
    }
    assert_eq!(tampered.refusal(), Some(Reason::PayloadMismatch));
    Ok(())
}

/// A vault heartbeat as the chain forms it: the root of the height before the batch formed.
fn heartbeat_case() -> Case {
    Case::new(Denom::wei(), &[], |case, _| {
        BatchRelease::EthereumHeartbeat(ferry_types::query::EthereumHeartbeat {
            heartbeat: ferry_types::release::eth::EthHeartbeat {
                chain_id: CHAIN_ID,
                vault: eth(VAULT),
                epoch: case.ceremony.manifest.epoch,
                nonce: BATCH,
                height: case.batch.created_height,
                balances_root: [0x5e; 32],
            },
            signature: None,
            signature_compressed: None,
        })
    })
}

#[test]
fn a_vault_heartbeat_is_signed_for_this_signers_vault_and_epoch_and_the_height_it_formed_at()
-> Result<(), Box<dyn std::error::Error>> {
    let case = heartbeat_case();
    let Decision::Sign(rebuilt) = case.decide() else { return Err(format!("{:?}", case.decide()).into()) };
    let Payload::Heartbeat { bytes, .. } = &rebuilt.payload else { return Err("not a heartbeat payload".into()) };
    assert_eq!(Some(bytes.clone()), case.batch.release.bls_message());
    assert_eq!(bytes.len(), 7 * 32);

    let tamper = |change: fn(&mut ferry_types::release::eth::EthHeartbeat)| {
        let mut case = heartbeat_case();
        if let BatchRelease::EthereumHeartbeat(heartbeat) = &mut case.batch.release {
            change(&mut heartbeat.heartbeat);
        }
        case.refusal()
    };
    assert_eq!(tamper(|hb| hb.vault = eth(BOB)), Some(Reason::PayloadMismatch), "another vault");
    assert_eq!(tamper(|hb| hb.chain_id += 1), Some(Reason::PayloadMismatch), "another chain");
    assert_eq!(tamper(|hb| hb.epoch += 1), Some(Reason::PayloadMismatch), "another epoch");
    assert_eq!(tamper(|hb| hb.nonce += 1), Some(Reason::PayloadMismatch), "another nonce");
    assert_eq!(tamper(|hb| hb.height -= 1), Some(Reason::PayloadMismatch), "an older height");
    // Without a vault configured, the signer cannot tell: unsupported.
    let mut unconfigured = heartbeat_case();
    unconfigured.local.ethereum = None;
    assert_eq!(unconfigured.refusal(), Some(Reason::Unsupported));
    Ok(())
}

/// A migration of two reserve UTXOs to `to`'s peg for `epoch`, as the chain forms it.
fn migration_case(to: &Peg, epoch: u64) -> Case {
    Case::new(Denom::sat(), &[], |case, _| {
        let peg = peg(&case.ceremony);
        let inputs = [utxo(0xaa, 0, 1_000_000), utxo(0xbb, 1, 400_000)];
        let plan = ferry_types::release::bitcoin::plan_migration(&inputs, rate(), &peg, to, Amount::new(546))
            .unwrap_or_else(|error| unreachable!("a migration plans: {error}"));
        match BitcoinRelease::new(plan, rate(), &peg) {
            Ok(release) => BatchRelease::Bitcoin(BitcoinRelease { migration: Some(epoch), ..release }),
            Err(error) => unreachable!("a plan's sighashes compute: {error}"),
        }
    })
}

#[test]
fn a_migration_is_signed_only_to_the_next_federations_peg() -> Result<(), Box<dyn std::error::Error>> {
    let epoch = ceremony(11).manifest.epoch + 1;
    let next = next_federation(epoch)?;
    let next_peg = next.bitcoin.clone().ok_or("no next peg")?;
    let mut case = migration_case(&next_peg, epoch);
    case.local.next = Some(next.clone());
    let Decision::Sign(rebuilt) = case.decide() else { return Err(format!("{:?}", case.decide()).into()) };
    let Payload::Bitcoin { sighashes, .. } = &rebuilt.payload else { return Err("not a Bitcoin payload".into()) };
    assert_eq!(sighashes.len(), 2);

    // Not during a hand-over this signer saw, or for another epoch: refused.
    let mut unseen = migration_case(&next_peg, epoch);
    assert_eq!(unseen.refusal(), Some(Reason::HandOver));
    unseen.local.next = Some(NextFederation { epoch: epoch + 1, ..next.clone() });
    assert_eq!(unseen.refusal(), Some(Reason::HandOver));
    // Paying any other peg (here: the current one) is not the migration this signer rebuilds.
    let current = peg(&ceremony(11));
    let mut elsewhere = migration_case(&current, epoch);
    elsewhere.local.next = Some(next);
    assert!(
        matches!(elsewhere.refusal(), Some(Reason::PayloadMismatch | Reason::Destination)),
        "{:?}",
        elsewhere.decide()
    );
    Ok(())
}

/// A sweep of two reserve UTXOs at the retired peg `from` (epoch `epoch`) into `to`, as the
/// chain forms it.
fn sweep_case(from: &Peg, to: Option<&Peg>, epoch: u64) -> Case {
    let (from, to) = (from.clone(), to.cloned());
    Case::new(Denom::sat(), &[], move |case, _| {
        let to = to.clone().unwrap_or_else(|| peg(&case.ceremony));
        let inputs = [utxo(0xaa, 0, 1_000_000), utxo(0xbb, 1, 400_000)];
        let plan = ferry_types::release::bitcoin::plan_migration(&inputs, rate(), &from, &to, Amount::new(546))
            .unwrap_or_else(|error| unreachable!("a sweep plans: {error}"));
        match BitcoinRelease::new(plan, rate(), &from) {
            Ok(release) => BatchRelease::Bitcoin(BitcoinRelease { sweep: Some(epoch), ..release }),
            Err(error) => unreachable!("a plan's sighashes compute: {error}"),
        }
    })
}

#[test]
fn a_sweep_is_signed_only_from_a_retired_peg_this_signer_rebuilt_into_the_current_one()
-> Result<(), Box<dyn std::error::Error>> {
    let retired = next_federation(ceremony(11).manifest.epoch + 1)?.bitcoin.ok_or("no peg")?;
    let mut case = sweep_case(&retired, None, 1);
    case.local.retired.insert(1, retired.clone());
    let Decision::Sign(rebuilt) = case.decide() else { return Err(format!("{:?}", case.decide()).into()) };
    let Payload::Bitcoin { sighashes, .. } = &rebuilt.payload else { return Err("not a Bitcoin payload".into()) };
    assert_eq!(sighashes.len(), 2);

    // A retired peg this signer did not rebuild, or another epoch's: refused.
    let unseen = sweep_case(&retired, None, 1);
    assert_eq!(unseen.refusal(), Some(Reason::HandOver));
    let mut other_epoch = sweep_case(&retired, None, 2);
    other_epoch.local.retired.insert(1, retired.clone());
    assert_eq!(other_epoch.refusal(), Some(Reason::HandOver));
    // Paying anything but the current peg (here: back to the retired one).
    let mut elsewhere = sweep_case(&retired, Some(&retired), 1);
    elsewhere.local.retired.insert(1, retired.clone());
    assert!(
        matches!(elsewhere.refusal(), Some(Reason::PayloadMismatch | Reason::Destination)),
        "{:?}",
        elsewhere.decide()
    );
    Ok(())
}

/// A consolidation release (batch 7) and the exit disbursal (batch 8) the chain derives for what
/// it leaves: another reserve UTXO and its change, paid to two holders.
struct ExitCase {
    batch: Batch,
    facts: ExitFacts,
    params: WithdrawalParams,
    local: LocalKnowledge,
}

impl ExitCase {
    fn new() -> ExitCase {
        let case = Case::bitcoin();
        let peg = peg(&case.ceremony);
        let params = WithdrawalParams {
            bitcoin_exit: Some(ferry_types::genesis::BitcoinExitParams {
                lock_blocks: 20,
                ..ferry_types::genesis::BitcoinExitParams::default()
            }),
            ..WithdrawalParams::default()
        };
        let consolidation = ferry_types::release::bitcoin::plan_consolidation(
            &[utxo(0xa1, 0, 1_000_000)],
            rate(),
            &peg,
            Amount::new(546),
        )
        .unwrap_or_else(|error| unreachable!("a consolidation plans: {error}"));
        let followed_release = match btc_release(consolidation, &peg) {
            BatchRelease::Bitcoin(release) => release,
            _ => unreachable!("a Bitcoin release"),
        };
        let change = followed_release.plan.change().unwrap_or(Amount::ZERO);
        let inputs = vec![
            utxo(0xb2, 1, 600_000),
            Utxo { txid: followed_release.txid.clone(), vout: 0, amount: change, owner: None },
        ];
        let epoch = case.local.epoch;
        ExitCase::following(case, params, followed_release, inputs, &peg, epoch)
    }

    /// The disbursal of a hand-over's migration of the reserve to the next federation (epoch + 1,
    /// made of `members`), paying out the migration's output at the next peg: the next
    /// federation signs it.
    fn of_migration(members: Vec<Address>) -> Result<ExitCase, Box<dyn std::error::Error>> {
        let mut case = Case::bitcoin();
        let params = ExitCase::new().params;
        let epoch = case.local.epoch + 1;
        let next = NextFederation { members, ..next_federation(epoch)? };
        let next_peg = next.bitcoin.clone().ok_or("no next peg")?;
        let plan = ferry_types::release::bitcoin::plan_migration(
            &[utxo(0xa1, 0, 1_000_000), utxo(0xb2, 1, 600_000)],
            rate(),
            &peg(&case.ceremony),
            &next_peg,
            Amount::new(546),
        )?;
        let release =
            BitcoinRelease { migration: Some(epoch), ..BitcoinRelease::new(plan, rate(), &peg(&case.ceremony))? };
        let moved = release.plan.outputs().first().ok_or("no output")?.amount;
        let inputs = vec![Utxo { txid: release.txid.clone(), vout: 0, amount: moved, owner: None }];
        case.local.next = Some(next);
        Ok(ExitCase::following(case, params, release, inputs, &next_peg, epoch))
    }

    /// The disbursal of `inputs` at `peg`, signed by the federation of `epoch`, following
    /// `followed_release`, paying two holders.
    fn following(
        case: Case,
        params: WithdrawalParams,
        followed_release: BitcoinRelease,
        inputs: Vec<Utxo>,
        peg: &Peg,
        epoch: u64,
    ) -> ExitCase {
        let holders = [
            ferry_types::release::exit::Holder {
                account: Address::from_bytes([1; 20]),
                balance: Amount::new(900_000),
                recovery_script: None,
            },
            ferry_types::release::exit::Holder {
                account: Address::from_bytes([2; 20]),
                balance: Amount::new(690_000),
                recovery_script: None,
            },
        ];
        let claims = ferry_types::release::exit::record_claims(&holders, &[]);
        let basis = ferry_types::release::exit::ExitBasis {
            inputs,
            rate: rate(),
            lock_height: 120,
            min_output: Amount::new(1_000),
            max_tx_vbytes: 50_000,
        };
        let plan = ferry_types::release::exit::plan_recorded(&basis, &claims, peg)
            .unwrap_or_else(|error| unreachable!("the disbursal plans: {error}"));
        let sighashes = ferry_types::release::exit::exit_sighashes(&plan, peg)
            .unwrap_or_else(|error| unreachable!("sighashes: {error}"));
        let basis = ferry_types::release::exit::ExitBasis { inputs: plan.inputs().to_vec(), ..basis };
        let exit = ferry_types::query::BitcoinExit {
            follows: ferry_types::query::FollowedRelease {
                batch: BATCH,
                version: 0,
                txid: followed_release.txid.clone(),
            },
            epoch,
            snapshot_height: 40,
            clock: 100,
            basis,
            claim_count: 2,
            recipients: 2,
            pooled: 0,
            residual: plan.residual().unwrap_or(Amount::ZERO),
            fees: plan.fee_total(),
            txids: plan.transactions().map(|tx| tx.tx.compute_txid().to_string()).collect(),
            sighashes: ferry_types::release::exit::sighashes_hex(&sighashes),
            standing: ferry_types::query::ExitStanding::Candidate,
        };
        let followed = Batch {
            items: Vec::new(),
            total: Amount::ZERO,
            release: BatchRelease::Bitcoin(followed_release),
            ..case.batch.clone()
        };
        let batch = Batch {
            id: BATCH + 1,
            items: Vec::new(),
            total: Amount::ZERO,
            release: BatchRelease::BitcoinExit(exit),
            ..case.batch.clone()
        };
        ExitCase { batch, facts: ExitFacts { claims, followed: Some(followed) }, params, local: case.local }
    }

    fn exit(&mut self) -> &mut ferry_types::query::BitcoinExit {
        match &mut self.batch.release {
            BatchRelease::BitcoinExit(exit) => exit,
            _ => unreachable!("an exit case"),
        }
    }

    fn refusal(&self) -> Option<Reason> {
        rebuild_exit(&self.batch, &self.facts, &self.params, &self.local).err().map(|refusal| {
            assert!(!refusal.message.is_empty());
            refusal.reason
        })
    }
}

#[test]
fn an_honest_exit_disbursal_is_signed_input_by_input_as_the_chain_checks() -> Result<(), Box<dyn std::error::Error>> {
    let case = ExitCase::new();
    let rebuilt = rebuild_exit(&case.batch, &case.facts, &case.params, &case.local)?;
    let Payload::Bitcoin { sighashes, .. } = &rebuilt.payload else { return Err("not a Bitcoin payload".into()) };
    let expected: Vec<String> =
        case.batch.release.bitcoin_sighashes().unwrap_or_default().iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        sighashes.iter().map(hex::encode).collect::<Vec<_>>(),
        expected,
        "the flattened order the chain verifies"
    );
    assert_eq!((rebuilt.batch, rebuilt.version, rebuilt.total), (BATCH + 1, 0, Amount::ZERO));
    Ok(())
}

#[test]
fn a_migrations_disbursal_is_signed_by_the_next_federations_members_to_the_next_peg()
-> Result<(), Box<dyn std::error::Error>> {
    let member = Case::bitcoin().local.member;
    let case = ExitCase::of_migration(vec![Address::from_bytes([9; 20]), member])?;
    let rebuilt = rebuild_exit(&case.batch, &case.facts, &case.params, &case.local)?;
    let Payload::Bitcoin { sighashes, .. } = &rebuilt.payload else { return Err("not a Bitcoin payload".into()) };
    let expected: Vec<String> =
        case.batch.release.bitcoin_sighashes().unwrap_or_default().iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(sighashes.iter().map(hex::encode).collect::<Vec<_>>(), expected);
    // Guarded under the next epoch: the same batch id can never be signed twice there.
    assert_eq!(rebuilt.epoch, case.local.epoch + 1);

    // A member of the current federation only: not its to sign.
    let outsider = ExitCase::of_migration(vec![Address::from_bytes([9; 20])])?;
    assert_eq!(outsider.refusal(), Some(Reason::Unsupported));
    // No hand-over this signer rebuilt: refused.
    let mut unseen = ExitCase::of_migration(vec![member])?;
    unseen.local.next = None;
    assert_eq!(unseen.refusal(), Some(Reason::Unsupported));
    // The chain states the current epoch for it: the tree would be rebuilt to the current peg,
    // where the migration's output is not — and a current-epoch disbursal never follows a migration.
    let mut current = ExitCase::of_migration(vec![member])?;
    current.exit().epoch = current.local.epoch;
    assert!(matches!(current.refusal(), Some(Reason::PayloadMismatch)), "{:?}", current.refusal());
    // A next-epoch disbursal following a plain release: refused.
    let mut release = ExitCase::new();
    release.exit().epoch = release.local.epoch + 1;
    release.local.next = ExitCase::of_migration(vec![member])?.local.next;
    assert_eq!(release.refusal(), Some(Reason::PayloadMismatch));
    // Leaving the migration's output out: refused.
    let mut left_out = ExitCase::of_migration(vec![member])?;
    left_out.exit().basis.inputs[0].vout = 1;
    assert!(left_out.refusal().is_some());
    Ok(())
}

#[test]
fn a_tampered_exit_disbursal_is_refused_naming_what_differs() {
    type Edit = Box<dyn Fn(&mut ExitCase)>;
    let tamper: Vec<(&str, Edit, Reason)> = vec![
        (
            "a claim's amount",
            Box::new(|case| case.facts.claims[0].amount = Amount::new(1_900_000)),
            Reason::PayloadMismatch,
        ),
        (
            "a claim's script",
            Box::new(|case| case.facts.claims[1].script = "0014".to_owned() + &"ee".repeat(20)),
            Reason::PayloadMismatch,
        ),
        (
            "a claim left out",
            Box::new(|case| {
                case.facts.claims.pop();
            }),
            Reason::PayloadMismatch,
        ),
        ("claims out of order", Box::new(|case| case.facts.claims.reverse()), Reason::PayloadMismatch),
        (
            "a lock beyond the parameter",
            Box::new(|case| case.exit().basis.lock_height = 10_000),
            Reason::PayloadMismatch,
        ),
        (
            "a rate above the bounds",
            Box::new(|case| case.exit().basis.rate = FeeRate::from_sat_per_vb(5_000)),
            Reason::Fee,
        ),
        (
            "another release followed",
            Box::new(|case| case.exit().follows.txid = "cd".repeat(32)),
            Reason::PayloadMismatch,
        ),
        (
            "the change left out",
            Box::new(|case| {
                let followed = case.exit().follows.txid.clone();
                case.exit().basis.inputs.retain(|input| input.txid != followed);
            }),
            Reason::Inputs,
        ),
        ("a sighash", Box::new(|case| case.exit().sighashes[0][0] = "00".repeat(32)), Reason::PayloadMismatch),
        (
            "another peg's residual",
            Box::new(|case| case.local.bitcoin = Some(peg(&ceremony(99)))),
            Reason::PayloadMismatch,
        ),
        ("no exit on the chain", Box::new(|case| case.params.bitcoin_exit = None), Reason::Unsupported),
    ];
    assert_eq!(ExitCase::new().refusal(), None, "the honest case is signed");
    for (what, edit, reason) in tamper {
        let mut case = ExitCase::new();
        edit(&mut case);
        assert_eq!(case.refusal(), Some(reason), "{what}");
    }
}
