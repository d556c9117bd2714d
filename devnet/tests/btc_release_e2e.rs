//! Bitcoin releases end to end against a real btcd (regtest): reserve UTXOs paid to the 3-of-4
//! peg are spent by a release planned and built with `ferry_types::release::bitcoin`, signed per
//! input by three of the four members, assembled and broadcast; btcd's own script check accepts
//! it and pays the destinations and the change to the peg exactly. It refuses a witness with a
//! forged signature or with valid signatures out of script order, so that check is real.
//!
//! Every test starts its own btcd on free loopback ports; dropping it kills the process.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use bitcoin::key::CompressedPublicKey;
use bitcoin::secp256k1::{SECP256K1, SecretKey};
use bitcoin::{Amount as Sats, KnownHrp, OutPoint, ScriptBuf, Transaction, TxOut, Txid, Witness};
use common::{TestResult, serial};
use ferry_devnet::btcd::{Btcd, RegtestWallet, UnspentOutput};
use ferry_parent_chains::bitcoin::RpcError;
use ferry_types::Amount;
use ferry_types::peg::{BitcoinFederation, BitcoinNetwork, Peg};
use ferry_types::release::bitcoin::{
    BtcReleaseError, ReleaseOutput, ReleasePlan, Utxo, assemble_witness, plan_release, sighashes, sign_input,
    unsigned_transaction, verify_input_signature,
};

/// Blocks before the first coinbase can be spent.
const MATURE: u32 = 101;

/// The deposits that make the peg's reserves, in satoshi.
const DEPOSITS: [u64; 3] = [50_000_000, 30_000_000, 20_000_000];

/// The release's miner fee, in satoshi (a chain parameter in Ferry; ~10 sat/vB here).
const FEE: u128 = 5_000;

/// Change below this would be dust.
const DUST: u128 = 546;

/// Members' key seeds, in member order. Their keys sort in the witness script as members
/// 2, 3, 1, 0 (checked in [`Federation::new`]), so confusing member order with script order fails.
const MEMBER_SEEDS: [u8; 4] = [0x31, 0x32, 0x33, 0x34];

/// The 3-of-4 federation: its peg and each member's Bitcoin secret key, in member order.
struct Federation {
    peg: Peg,
    secrets: Vec<SecretKey>,
}

impl Federation {
    fn new() -> TestResult<Federation> {
        let secrets =
            MEMBER_SEEDS.iter().map(|seed| SecretKey::from_slice(&[*seed; 32])).collect::<Result<Vec<_>, _>>()?;
        let keys = secrets.iter().map(|secret| secret.public_key(SECP256K1).to_string()).collect();
        let peg = Peg::new(&BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: 3, keys })?;
        let positions: Vec<Option<usize>> = (0..secrets.len()).map(|member| peg.script_position(member)).collect();
        assert_eq!(positions, [Some(3), Some(2), Some(0), Some(1)], "member → script position");
        Ok(Federation { peg, secrets })
    }

    /// Each listed member signs every sighash, as its signer would; the chain's check
    /// ([`verify_input_signature`]) accepts each signature.
    fn sign(&self, members: &[usize], digests: &[[u8; 32]]) -> TestResult<Vec<BTreeMap<usize, Vec<u8>>>> {
        let mut per_input = Vec::new();
        for digest in digests {
            let mut signatures = BTreeMap::new();
            for &member in members {
                let secret = self.secrets.get(member).ok_or("no such member")?;
                let signature = sign_input(secret, digest);
                verify_input_signature(&self.peg, member, digest, &signature)?;
                signatures.insert(member, signature);
            }
            per_input.push(signatures);
        }
        Ok(per_input)
    }
}

/// A regtest P2WPKH address of a key from `seed`.
fn p2wpkh(seed: u8) -> TestResult<String> {
    let key = SecretKey::from_slice(&[seed; 32])?.public_key(SECP256K1);
    Ok(bitcoin::Address::p2wpkh(&CompressedPublicKey(key), KnownHrp::Regtest).to_string())
}

/// A regtest P2TR address (key path) of a key from `seed`.
fn p2tr(seed: u8) -> TestResult<String> {
    let (key, _) = SecretKey::from_slice(&[seed; 32])?.public_key(SECP256K1).x_only_public_key();
    Ok(bitcoin::Address::p2tr(SECP256K1, key, None, KnownHrp::Regtest).to_string())
}

/// Starts btcd, pays each of [`DEPOSITS`] to the peg from the wallet's coinbases, confirms them,
/// and returns the reserve UTXOs as the chain records them.
async fn funded_peg(name: &str, peg: &Peg) -> TestResult<(Btcd, Vec<Utxo>)> {
    let mut wallet = RegtestWallet::from_seed([0x51; 32])?;
    let btcd = Btcd::isolated(name, wallet.address()).await?;
    // One mature coinbase per deposit.
    btcd.mine(MATURE + u32::try_from(DEPOSITS.len())? - 1).await?;
    let rpc = btcd.rpc();
    let mut reserves = Vec::new();
    for sats in DEPOSITS {
        let payment = TxOut { value: Sats::from_sat(sats), script_pubkey: peg.script_pubkey() };
        let txid = wallet.pay(&rpc, vec![payment]).await?;
        reserves.push(Utxo { txid: txid.to_string(), vout: 0, amount: Amount::new(u128::from(sats)), owner: None });
    }
    btcd.mine(1).await?;
    for utxo in &reserves {
        let unspent = btcd.unspent_output(&outpoint(utxo)?).await?.ok_or("a deposit is not confirmed")?;
        assert_eq!((unspent.value.to_sat(), unspent.confirmations), (u64::try_from(utxo.amount.get())?, 1));
    }
    Ok((btcd, reserves))
}

fn outpoint(utxo: &Utxo) -> TestResult<OutPoint> {
    Ok(OutPoint { txid: utxo.txid.parse()?, vout: utxo.vout })
}

/// Plans and builds the release of `outputs`: the plan, the unsigned transaction and its sighashes.
fn build(
    reserves: &[Utxo],
    outputs: &[ReleaseOutput],
    peg: &Peg,
) -> TestResult<(ReleasePlan, Transaction, Vec<[u8; 32]>)> {
    let plan = plan_release(reserves, outputs, Amount::new(FEE), Amount::new(DUST))?;
    let tx = unsigned_transaction(&plan, peg);
    let digests = sighashes(&tx, &plan, peg)?;
    Ok((plan, tx, digests))
}

/// What btcd says about output `vout` of `txid` (unspent, or `None`).
async fn output(btcd: &Btcd, txid: Txid, vout: u32) -> TestResult<Option<UnspentOutput>> {
    Ok(btcd.unspent_output(&OutPoint { txid, vout }).await?)
}

#[tokio::test]
async fn release_signed_by_three_of_four_members_pays_both_destinations_and_change_to_the_peg() -> TestResult {
    let _serial = serial().await;
    let started = Instant::now();
    let federation = Federation::new()?;
    let peg = &federation.peg;
    let (btcd, reserves) = funded_peg("btc-release", peg).await?;
    let rpc = btcd.rpc();
    eprintln!("btcd up and the peg funded after {:?}", started.elapsed());

    let alice = ReleaseOutput::new(&p2wpkh(0x61)?, BitcoinNetwork::Regtest, Amount::new(60_000_000))?;
    let bob = ReleaseOutput::new(&p2tr(0x62)?, BitcoinNetwork::Regtest, Amount::new(15_000_000))?;
    let (plan, tx, digests) = build(&reserves, &[alice.clone(), bob.clone()], peg)?;
    // Largest first: the 0.5 and 0.3 BTC deposits cover 0.75 BTC + fee; the rest is change.
    let [first, second, third] = &reserves[..] else { return Err("expected three reserve UTXOs".into()) };
    assert_eq!(plan.inputs(), [first.clone(), second.clone()]);
    assert_eq!(plan.change(), Some(Amount::new(80_000_000 - 75_000_000 - FEE)));
    assert_eq!(plan.change_vout(), Some(2));
    let known_txid = tx.compute_txid();

    // Members 0, 2 and 3 sign; member 1 is offline.
    let signatures = federation.sign(&[0, 2, 3], &digests)?;
    let signed = assemble_witness(&tx, &plan, peg, &digests, &signatures)?;
    let vsize = u64::try_from(signed.vsize())?;
    let bound = plan.max_vsize(peg);
    assert!(vsize <= bound, "vsize {vsize} above the planned bound {bound}");
    eprintln!(
        "release: {} inputs, {} outputs, {vsize} vB (bound {bound} vB), fee {FEE} sat = {:.1} sat/vB",
        signed.input.len(),
        signed.output.len(),
        FEE as f64 / vsize as f64
    );

    let txid = rpc.send_raw_transaction(&signed).await?;
    assert_eq!(txid, known_txid, "the txid was known before any signature");
    // Pending, its outputs are known unconfirmed.
    assert_eq!(output(&btcd, txid, 0).await?.map(|out| out.confirmations), Some(0));

    let [block_hash] = btcd.mine(1).await?[..] else { return Err("`generate 1` did not return one hash".into()) };
    let block = rpc.get_block(&block_hash).await?;
    let mined = block.txdata.iter().find(|candidate| candidate.compute_txid() == txid).ok_or("release not mined")?;
    assert_eq!(mined.output.len(), 3);

    let paid = |out: &ReleaseOutput| -> TestResult<UnspentOutput> {
        Ok(UnspentOutput {
            value: Sats::from_sat(u64::try_from(out.amount.get())?),
            script_pubkey: out.script_pubkey.clone(),
            confirmations: 1,
        })
    };
    assert_eq!(output(&btcd, txid, 0).await?, Some(paid(&alice)?));
    assert_eq!(output(&btcd, txid, 1).await?, Some(paid(&bob)?));
    let change = output(&btcd, txid, 2).await?.ok_or("no change output")?;
    assert_eq!(change.script_pubkey, peg.script_pubkey(), "the change pays the peg");
    assert_eq!(change.value, Sats::from_sat(4_995_000));
    assert_eq!(output(&btcd, txid, 3).await?, None);
    // The spent reserves are gone; the unselected one is still there.
    assert_eq!(btcd.unspent_output(&outpoint(first)?).await?, None);
    assert_eq!(btcd.unspent_output(&outpoint(second)?).await?, None);
    assert!(btcd.unspent_output(&outpoint(third)?).await?.is_some());
    eprintln!("release confirmed after {:?}", started.elapsed());
    Ok(())
}

/// `tx` with input `input`'s witness made of `items` (byte strings).
fn with_witness(tx: &Transaction, input: usize, items: &[Vec<u8>]) -> TestResult<Transaction> {
    let mut tx = tx.clone();
    let txin = tx.input.get_mut(input).ok_or("no such input")?;
    txin.witness = Witness::from_slice(items);
    Ok(tx)
}

/// The refusal btcd gives for `tx`: it must be an RPC error (not transport), returned as text.
async fn refused(btcd: &Btcd, tx: &Transaction) -> TestResult<String> {
    match btcd.rpc().send_raw_transaction(tx).await {
        Ok(txid) => Err(format!("btcd accepted {txid}").into()),
        Err(RpcError::Rpc { message, .. }) => Ok(message),
        Err(other) => Err(other.into()),
    }
}

#[tokio::test]
async fn two_signatures_do_not_assemble_and_btcd_refuses_forged_or_misordered_witnesses() -> TestResult {
    let _serial = serial().await;
    let federation = Federation::new()?;
    let peg = &federation.peg;
    let (btcd, reserves) = funded_peg("btc-release-refused", peg).await?;

    let carol = ReleaseOutput::new(&p2wpkh(0x63)?, BitcoinNetwork::Regtest, Amount::new(45_000_000))?;
    let (plan, tx, digests) = build(&reserves, &[carol], peg)?;
    assert_eq!(plan.inputs().len(), 1, "the 0.5 BTC deposit covers it alone");
    let digest = *digests.first().ok_or("no sighash")?;

    // Two members are not enough, however valid their signatures.
    let two = federation.sign(&[0, 3], &digests)?;
    let error = assemble_witness(&tx, &plan, peg, &digests, &two).err().ok_or("assembled with two signatures")?;
    assert!(matches!(error, BtcReleaseError::NotEnoughSignatures { input: 0, valid: 2, needed: 3, .. }), "{error}");

    // The witness assemble_witness builds from members 1, 2, 3 (script positions 2, 0, 1).
    let signatures = federation.sign(&[1, 2, 3], &digests)?;
    let signed = assemble_witness(&tx, &plan, peg, &digests, &signatures)?;
    let items: Vec<Vec<u8>> = signed.input.first().ok_or("no input")?.witness.iter().map(<[u8]>::to_vec).collect();
    let script = peg.witness_script().as_bytes().to_vec();
    let with_type = |member: usize| -> TestResult<Vec<u8>> {
        let mut signature = signatures.first().and_then(|set| set.get(&member)).cloned().ok_or("no signature")?;
        signature.push(0x01);
        Ok(signature)
    };
    // Script order: member 2 (position 0), member 3 (position 1), member 1 (position 2).
    assert_eq!(items, [vec![], with_type(2)?, with_type(3)?, with_type(1)?, script.clone()]);

    // A well-formed signature of the right sighash by a key outside the federation, in member
    // 3's place: our check would refuse it, so build the witness by hand and let btcd judge.
    let outsider = sign_input(&SecretKey::from_slice(&[0x77; 32])?, &digest);
    let mut forged_signature = outsider;
    forged_signature.push(0x01);
    let forged = with_witness(&tx, 0, &[vec![], with_type(2)?, forged_signature, with_type(1)?, script.clone()])?;
    let reason = refused(&btcd, &forged).await?;
    eprintln!("btcd refused the forged witness: {reason}");
    assert!(reason.contains("failed to validate input"), "{reason}");

    // The three valid signatures in member order (1, 2, 3) instead of script order.
    let misordered = with_witness(&tx, 0, &[vec![], with_type(1)?, with_type(2)?, with_type(3)?, script.clone()])?;
    let reason = refused(&btcd, &misordered).await?;
    eprintln!("btcd refused the misordered witness: {reason}");
    assert!(reason.contains("failed to validate input"), "{reason}");

    // A signature for another sighash (input 0 of a different release) in member 2's place.
    let other_destination = ReleaseOutput::new(&p2wpkh(0x64)?, BitcoinNetwork::Regtest, Amount::new(45_000_000))?;
    let (_, _, other_digests) = build(&reserves, &[other_destination], peg)?;
    let other_digest = other_digests.first().ok_or("no sighash")?;
    let secret = federation.secrets.get(2).ok_or("no member 2")?;
    let mut stale = sign_input(secret, other_digest);
    stale.push(0x01);
    let replayed = with_witness(&tx, 0, &[vec![], stale, with_type(3)?, with_type(1)?, script])?;
    let reason = refused(&btcd, &replayed).await?;
    eprintln!("btcd refused a signature of another release's sighash: {reason}");
    assert!(reason.contains("failed to validate input"), "{reason}");

    // The refusals were about those signatures: the real witness goes through.
    let txid = btcd.rpc().send_raw_transaction(&signed).await?;
    assert_eq!(txid, tx.compute_txid());
    btcd.mine(1).await?;
    let paid = output(&btcd, txid, 0).await?.ok_or("carol's output is missing")?;
    assert_eq!((paid.value, paid.confirmations), (Sats::from_sat(45_000_000), 1));
    let change = output(&btcd, txid, 1).await?.ok_or("no change")?;
    assert_eq!(change.script_pubkey, peg.script_pubkey());
    assert_eq!(change.value, Sats::from_sat(50_000_000 - 45_000_000 - 5_000));
    assert_eq!(output(&btcd, txid, 1).await?.map(|out| out.script_pubkey), Some(ScriptBuf::from(peg.address())));
    Ok(())
}
