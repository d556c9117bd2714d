//! Bitcoin standardness against a real btcd run as the devnet runs it (`--rejectnonstd`): for
//! every federation size the peg allows (2…20 members), a release spending a peg output, signed by
//! its threshold, passes `ferry_types::release::standardness::check`, weighs what the chain's
//! size bound (`ReleasePlan::max_vsize`, the longest-signature form) says within the signatures'
//! slack, pays the minimum relay fee on that bound, and btcd relays and mines it. A dust payment
//! is refused by btcd, so the node really applies the policy the check mirrors.

mod common;

use std::collections::BTreeMap;

use bitcoin::key::CompressedPublicKey;
use bitcoin::secp256k1::{SECP256K1, SecretKey};
use bitcoin::{Amount as Sats, KnownHrp, OutPoint, TxOut};
use common::{TestResult, serial};
use ferry_devnet::btcd::{Btcd, RegtestWallet};
use ferry_types::Amount;
use ferry_types::peg::{BitcoinFederation, BitcoinNetwork, Peg};
use ferry_types::release::bitcoin::{
    ReleaseOutput, Utxo, assemble_witness, plan_release, sighashes, sign_input, unsigned_transaction,
};
use ferry_types::release::standardness::{self, min_relay_fee, with_longest_signatures};

/// Federation sizes the peg allows (CHECKMULTISIG takes at most 20 keys; from 17 on, the key count
/// is a data push, which btcd must accept under `--rejectnonstd`).
const SIZES: std::ops::RangeInclusive<u8> = 2..=20;

/// What each peg output holds.
const RESERVE: u64 = 1_000_000;

/// A federation of `members` keys and its two-thirds-plus-one threshold.
fn federation(members: u8) -> TestResult<(Peg, Vec<SecretKey>)> {
    let secrets = (1..=members).map(|seed| SecretKey::from_slice(&[seed; 32])).collect::<Result<Vec<_>, _>>()?;
    let keys = secrets.iter().map(|secret| secret.public_key(SECP256K1).to_string()).collect();
    let threshold = (u32::from(members) * 2 / 3 + 1).min(u32::from(members));
    let peg = Peg::new(&BitcoinFederation { network: BitcoinNetwork::Regtest, threshold, keys })?;
    Ok((peg, secrets))
}

fn destination() -> TestResult<String> {
    let key = SecretKey::from_slice(&[0x77; 32])?.public_key(SECP256K1);
    Ok(bitcoin::Address::p2wpkh(&CompressedPublicKey(key), KnownHrp::Regtest).to_string())
}

#[tokio::test]
async fn releases_of_every_federation_size_are_standard_sized_as_bounded_and_relayed() -> TestResult {
    let _serial = serial().await;
    let mut wallet = RegtestWallet::from_seed([0x52; 32])?;
    let btcd = Btcd::isolated("standardness", wallet.address()).await?;
    let sizes = u32::try_from(SIZES.count())?;
    btcd.mine(100 + sizes).await?;
    let rpc = btcd.rpc();

    // One reserve output per federation size.
    let mut pegs = Vec::new();
    for members in SIZES {
        let (peg, secrets) = federation(members)?;
        let payment = TxOut { value: Sats::from_sat(RESERVE), script_pubkey: peg.script_pubkey() };
        let txid = wallet.pay(&rpc, vec![payment]).await?;
        pegs.push((
            peg,
            secrets,
            Utxo { txid: txid.to_string(), vout: 0, amount: Amount::new(RESERVE.into()), owner: None },
        ));
    }
    btcd.mine(1).await?;

    let mut released = Vec::new();
    for (peg, secrets, reserve) in &pegs {
        let members = secrets.len();
        let threshold = usize::try_from(peg.threshold())?;
        // Pay everything but the minimum relay fee of the size bound (no change).
        let probe = plan_release(
            std::slice::from_ref(reserve),
            &[ReleaseOutput::new(&destination()?, BitcoinNetwork::Regtest, Amount::new(500_000))?],
            Amount::new(1_000),
            Amount::new(330),
        )?;
        let bound = probe.max_vsize(peg);
        let fee = min_relay_fee(bound).to_sat();
        let output = ReleaseOutput::new(&destination()?, BitcoinNetwork::Regtest, Amount::new((RESERVE - fee).into()))?;
        let plan = plan_release(std::slice::from_ref(reserve), &[output], Amount::new(fee.into()), Amount::new(330))?;
        assert_eq!(plan.change(), None, "{members} members: the release should spend the reserve whole");
        let unsigned = unsigned_transaction(&plan, peg);
        let longest = with_longest_signatures(&unsigned, peg, &plan.witness_scripts(peg));
        assert_eq!(
            u64::try_from(longest.vsize())?,
            plan.max_vsize(peg),
            "{members} members: the two size bounds disagree"
        );

        let digests = sighashes(&unsigned, &plan, peg)?;
        let signatures: Vec<BTreeMap<usize, Vec<u8>>> = digests
            .iter()
            .map(|digest| (0..threshold).map(|member| (member, sign_input(&secrets[member], digest))).collect())
            .collect();
        let signed = assemble_witness(&unsigned, &plan, peg, &digests, &signatures)?;
        let prevouts = [TxOut { value: Sats::from_sat(RESERVE), script_pubkey: peg.script_pubkey() }];
        standardness::check(&signed, &prevouts, Sats::from_sat(fee))?;
        // A signature is 71 or 72 bytes with its type byte (rarely fewer): the bound exceeds the
        // signed size by at most a byte of witness per signature.
        let (actual, bounded) = (signed.weight().to_wu(), longest.weight().to_wu());
        assert!(
            actual <= bounded && bounded - actual <= 3 * u64::try_from(threshold)?,
            "{members} members ({threshold} signatures): signed {actual} WU, bound {bounded} WU"
        );
        let txid = rpc.send_raw_transaction(&signed).await.map_err(|error| {
            format!("{members}-member release ({} vB, fee {fee} sat) refused: {error}", signed.vsize())
        })?;
        released.push((members, txid, signed.vsize()));
    }
    btcd.mine(1).await?;
    for (members, txid, vsize) in released {
        let confirmed = btcd.unspent_output(&OutPoint { txid, vout: 0 }).await?.map(|out| out.confirmations);
        assert_eq!(confirmed, Some(1), "the {members}-member release ({vsize} vB) was not mined");
    }
    Ok(())
}

#[tokio::test]
async fn btcd_refuses_a_dust_output_as_mainnet_policy_does() -> TestResult {
    let _serial = serial().await;
    let mut wallet = RegtestWallet::from_seed([0x53; 32])?;
    let btcd = Btcd::isolated("standardness-dust", wallet.address()).await?;
    btcd.mine(101).await?;
    let script =
        destination()?.parse::<bitcoin::Address<_>>()?.require_network(bitcoin::Network::Regtest)?.script_pubkey();
    let threshold = standardness::dust_threshold(&script).to_sat();
    assert_eq!(threshold, 294);
    let dust = TxOut { value: Sats::from_sat(threshold - 1), script_pubkey: script.clone() };
    let refused = wallet.pay(&btcd.rpc(), vec![dust]).await;
    let error = refused.err().ok_or("btcd relayed a dust output: is --rejectnonstd set?")?;
    assert!(format!("{error:#}").contains("dust"), "refused for another reason: {error:#}");
    // At the threshold it is standard.
    let paid = TxOut { value: Sats::from_sat(threshold), script_pubkey: script };
    wallet.pay(&btcd.rpc(), vec![paid]).await?;
    Ok(())
}
