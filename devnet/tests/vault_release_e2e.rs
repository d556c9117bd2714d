//! `FerryVault.release` end to end on a real anvil (1.7, Prague, EIP-2537 precompiles):
//! the Solidity hash-to-curve against the RFC 9380 vectors, threshold-signed batches paid out,
//! every kind of refusal decoded as the vault's named custom error, deferred payments claimed,
//! the gas of a release across federation sizes, and the hand-over to the next federation key
//! (`rotate`).
//!
//! Signatures are made the way the federation makes them: threshold_crypto key sets from a
//! seeded RNG, shares from `ferry_types::release::bls::sign_share` over `EthBatch::payload`,
//! combined at the threshold and sent in the EIP-2537 encoding. Each test starts its own anvil;
//! dropping it kills the process, also when a test fails.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use ferry_devnet::anvil::{self, Anvil, FederationKey, batch_address, federation_key, sign_message, sign_release};
use ferry_parent_chains::ethereum::vault::{
    FerryVault, PAID_TOPIC, PAYMENT_DEFERRED_TOPIC, RELEASED_TOPIC, VaultError, vault_error,
};
use ferry_parent_chains::ethereum::{EthAddress, EthereumError, Receipt, U256, Wallet};
use ferry_types::release::bls::{self, RELEASE_DST};
use ferry_types::release::eth::{EthBatch, EthListing, EthReleaseItem, EthRotation};
use ferry_types::{Address, Amount};
use rand_chacha::ChaChaRng;
use rand_chacha::rand_core::SeedableRng;
use threshold_crypto::SecretKeySet;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ONE_ETH: u128 = 1_000_000_000_000_000_000;
/// The federation epoch of the vaults under test.
const EPOCH: u64 = 3;
/// Anvil's dev account 1 (`0x7099…79c8`): a well-known test key, a second claimant.
const DEV_PRIVATE_KEY_1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// A federation whose releases take `threshold` signatures (threshold_crypto degree T − 1),
/// its keys drawn from `seed`.
fn federation(threshold: usize, seed: u64) -> SecretKeySet {
    SecretKeySet::random(threshold - 1, &mut ChaChaRng::seed_from_u64(seed))
}

/// The 4-member federation of these tests (T = 3).
fn federation_of_four() -> SecretKeySet {
    federation(3, 4)
}

fn address(byte: u8) -> EthAddress {
    EthAddress::from([byte; 20])
}

fn item(token: EthAddress, recipient: EthAddress, amount: u128) -> EthReleaseItem {
    EthReleaseItem { token: batch_address(token), recipient: batch_address(recipient), amount: Amount::new(amount) }
}

fn batch(vault: EthAddress, nonce: u64, items: Vec<EthReleaseItem>) -> EthBatch {
    EthBatch {
        chain_id: anvil::CHAIN_ID,
        vault: batch_address(vault),
        epoch: EPOCH,
        nonce,
        exit_height: nonce,
        exit_root: [nonce as u8; 32],
        items,
    }
}

/// Anvil with the vault trusting `keys` at [`EPOCH`], holding 10 ETH and 1000 fUSD of deposits.
async fn funded_anvil(keys: &SecretKeySet) -> TestResult<Anvil> {
    let anvil = Anvil::start_with_federation(federation_key(keys, EPOCH)).await?;
    fund(&anvil, anvil.vault()).await?;
    Ok(anvil)
}

/// Deposits 10 ETH and 1000 fUSD into `vault` (the only ways in).
async fn fund(anvil: &Anvil, vault: EthAddress) -> TestResult {
    let wallet = anvil.wallet();
    let depositor = Address::from_bytes([0x5a; 20]);
    wallet.deposit_eth(vault, &depositor, U256::from(10 * ONE_ETH)).await?;
    let tokens = U256::from(1_000_000_000u64);
    wallet.mint_test_token(anvil.token(), wallet.address(), tokens).await?;
    wallet.approve(anvil.token(), vault, tokens).await?;
    wallet.deposit_token(vault, anvil.token(), tokens, &depositor).await?;
    Ok(())
}

/// The vault's custom error in `result`, which must be a refusal.
fn refusal<T: std::fmt::Debug>(result: Result<T, EthereumError>) -> TestResult<VaultError> {
    match result {
        Ok(value) => Err(format!("expected a refusal, got {value:?}").into()),
        Err(error) => vault_error(&error).ok_or_else(|| format!("not a vault error: {error}").into()),
    }
}

/// The names of the vault's release events in `receipt`, in log order.
fn events(receipt: &Receipt, vault: EthAddress) -> Vec<&'static str> {
    receipt
        .logs_from(vault)
        .map(|log| match log.topics.first() {
            Some(topic) if *topic == RELEASED_TOPIC => "Released",
            Some(topic) if *topic == PAID_TOPIC => "Paid",
            Some(topic) if *topic == PAYMENT_DEFERRED_TOPIC => "PaymentDeferred",
            _ => "other",
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn solidity_hash_to_g2_matches_every_rfc9380_vector_and_the_rust_hash() -> TestResult {
    let _serial = common::serial().await;
    let path = ferry_devnet::tools::repo_root().join("testdata/rfc9380_hash_to_g2.json");
    let vectors: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let dst = vectors["dst"].as_str().ok_or("no dst")?;
    assert_eq!(dst, "QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_");
    let vectors = vectors["vectors"].as_array().ok_or("no vectors")?;
    assert_eq!(vectors.len(), 5, "RFC 9380 J.10.1 has five vectors");

    let anvil = Anvil::start().await?;
    let harness = anvil.wallet().deploy_bls_harness().await?.contract_address.ok_or("no harness")?;
    for vector in vectors {
        let message = vector["msg"].as_str().ok_or("no msg")?;
        // EIP-2537 G2: x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1, each 16 zero bytes ‖ 48 bytes.
        let mut expected = Vec::with_capacity(256);
        for coordinate in ["x_c0", "x_c1", "y_c0", "y_c1"] {
            let text = vector[coordinate].as_str().ok_or("no coordinate")?;
            let bytes = hex::decode(text.trim_start_matches("0x"))?;
            assert_eq!(bytes.len(), 48, "{coordinate} of {message:?}");
            expected.extend_from_slice(&[0; 16]);
            expected.extend_from_slice(&bytes);
        }
        let point = anvil.wallet().harness_hash_to_g2(harness, message.as_bytes(), dst.as_bytes()).await?;
        assert_eq!(hex::encode(&point), hex::encode(&expected), "hash_to_curve({message:?})");
    }

    // Ferry's tag on a real payload: the vault hashes to the point the signers sign.
    let payload = batch(anvil.vault(), 9, vec![item(EthAddress::ZERO, address(0xa1), ONE_ETH)]).payload();
    let on_chain = anvil.wallet().harness_hash_to_g2(harness, &payload, RELEASE_DST).await?;
    assert_eq!(on_chain, bls::eip2537_g2_point(&bls::hash_to_g2(&payload, RELEASE_DST)).to_vec());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn threshold_signed_batch_pays_eth_and_token_recipients_exactly_once() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let keys = federation_of_four();
    let anvil = funded_anvil(&keys).await?;
    let (wallet, vault, token) = (anvil.wallet(), anvil.vault(), anvil.token());
    let (alice, bob) = (address(0xa1), address(0xb0));
    let release = batch(
        vault,
        7,
        vec![
            item(EthAddress::ZERO, alice, 3 * ONE_ETH / 2),
            item(token, bob, 250_000_000),
            item(EthAddress::ZERO, bob, ONE_ETH / 4),
        ],
    );
    // The vault's own encoding of what it verifies is the payload the federation signs.
    assert_eq!(hex::encode(wallet.release_message(vault, &release).await?), hex::encode(release.payload()));

    // Any three of the four members make the same signature.
    let signature = sign_release(&keys, &[0, 2, 3], &release)?;
    assert_eq!(signature, sign_release(&keys, &[1, 2, 3], &release)?);
    assert!(!wallet.released(vault, 7).await?);
    let vault_eth = wallet.balance(vault).await?;

    let receipt = wallet.release(vault, &release, &signature).await?;
    eprintln!("release of 3 items: gas {}", receipt.gas_used);
    assert_eq!(events(&receipt, vault), ["Released", "Paid", "Paid", "Paid"]);
    assert_eq!(wallet.balance(alice).await?, U256::from(3 * ONE_ETH / 2));
    assert_eq!(wallet.balance(bob).await?, U256::from(ONE_ETH / 4));
    assert_eq!(wallet.token_balance(token, bob).await?, U256::from(250_000_000u64));
    assert_eq!(wallet.balance(vault).await?, vault_eth - U256::from(7 * ONE_ETH / 4));
    assert_eq!(wallet.token_balance(token, vault).await?, U256::from(750_000_000u64));
    assert!(wallet.released(vault, 7).await?);
    assert!(!wallet.released(vault, 8).await?);

    // The same signed batch again: refused, nothing paid twice.
    let replay = refusal(wallet.release(vault, &release, &signature).await)?;
    assert!(matches!(replay, VaultError::AlreadyReleased(FerryVault::AlreadyReleased { nonce: 7 })), "{replay:?}");
    assert_eq!(wallet.balance(alice).await?, U256::from(3 * ONE_ETH / 2));
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_refuses_foreign_misbound_malformed_and_tampered_releases_with_named_errors() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let keys = federation_of_four();
    let anvil = funded_anvil(&keys).await?;
    let (wallet, vault) = (anvil.wallet(), anvil.vault());
    let alice = address(0xa1);
    let release = batch(vault, 1, vec![item(EthAddress::ZERO, alice, ONE_ETH)]);
    let good = sign_release(&keys, &[0, 1, 2], &release)?;
    let bad_signature = |error: &VaultError| matches!(error, VaultError::BadSignature(_));
    let malformed = |error: &VaultError| matches!(error, VaultError::MalformedSignature(_));

    // Keys that are not the federation's: another 3-of-n federation signs the same batch.
    let other_federation = sign_release(&federation(3, 99), &[0, 1, 2], &release)?;
    let error = refusal(wallet.release(vault, &release, &other_federation).await)?;
    assert!(bad_signature(&error), "another federation's signature: {error:?}");

    // Signed for another chain id.
    let other_chain = EthBatch { chain_id: 1, ..release.clone() };
    let error = refusal(wallet.release(vault, &release, &sign_release(&keys, &[0, 1, 2], &other_chain)?).await)?;
    assert!(bad_signature(&error), "signed for chain id 1: {error:?}");

    // Signed for another vault of the same federation: refused here, accepted there.
    let (second_vault, _) = anvil.deploy_vault(&federation_key(&keys, EPOCH)).await?;
    fund(&anvil, second_vault).await?;
    let for_second = batch(second_vault, 1, release.items.clone());
    let second_signature = sign_release(&keys, &[1, 2, 3], &for_second)?;
    let error = refusal(wallet.release(vault, &release, &second_signature).await)?;
    assert!(bad_signature(&error), "signed for vault {second_vault}: {error:?}");
    wallet.release(second_vault, &for_second, &second_signature).await?;
    assert!(wallet.released(second_vault, 1).await? && !wallet.released(vault, 1).await?);

    // Malformed signatures: wrong lengths, and 256 bytes that are not a point the precompile takes.
    let mut off_curve = good;
    off_curve[255] ^= 1; // y.c1 changed: still below p, no longer on the curve
    let mut not_below_p = good;
    not_below_p[16..64].fill(0xff); // x.c0 above the field modulus
    let mut dirty_padding = good;
    dirty_padding[0] = 1; // the 16 bytes before each 48-byte field element must be zero
    for (what, signature) in [
        ("255 bytes", &good[..255]),
        ("257 bytes", &[&good[..], &[0][..]].concat()[..]),
        ("empty", &[][..]),
        ("not on the curve", &off_curve[..]),
        ("a coordinate not below p", &not_below_p[..]),
        ("non-zero padding", &dirty_padding[..]),
    ] {
        let error = refusal(wallet.release(vault, &release, signature).await)?;
        assert!(malformed(&error), "{what}: {error:?}");
    }

    // Another epoch, properly signed by the federation: the vault trusts its key for EPOCH only.
    let next_epoch = EthBatch { epoch: EPOCH + 1, ..release.clone() };
    let error = refusal(wallet.release(vault, &next_epoch, &sign_release(&keys, &[0, 1, 2], &next_epoch)?).await)?;
    assert!(
        matches!(error, VaultError::WrongEpoch(FerryVault::WrongEpoch { expected: EPOCH, got }) if got == EPOCH + 1),
        "{error:?}"
    );

    // An item changed after signing.
    let mut tampered = release.clone();
    tampered.items[0].amount = Amount::new(5 * ONE_ETH);
    let error = refusal(wallet.release(vault, &tampered, &good).await)?;
    assert!(bad_signature(&error), "tampered amount: {error:?}");
    let mut redirected = release.clone();
    redirected.items[0].recipient = batch_address(address(0xee));
    let error = refusal(wallet.release(vault, &redirected, &good).await)?;
    assert!(bad_signature(&error), "tampered recipient: {error:?}");

    // A batch without items, even when signed.
    let empty = batch(vault, 2, Vec::new());
    let error = refusal(wallet.release(vault, &empty, &sign_release(&keys, &[0, 1, 2], &empty)?).await)?;
    assert!(matches!(error, VaultError::EmptyBatch(_)), "{error:?}");

    // Too little gas to give the payment its full PAYMENT_GAS: refused, never turned into a
    // deferred payment.
    let error = refusal(wallet.simulate_release(vault, &release, &good, Some(300_000)).await)?;
    assert!(
        matches!(error, VaultError::InsufficientGasForPayment(FerryVault::InsufficientGasForPayment { item })
            if item == U256::ZERO),
        "{error:?}"
    );

    // Nothing left the vault; the genuine signature still works.
    assert!(!wallet.released(vault, 1).await?);
    wallet.simulate_release(vault, &release, &good, None).await?;
    assert_eq!(wallet.balance(alice).await?, U256::from(ONE_ETH), "only the second vault paid alice");
    wallet.release(vault, &release, &good).await?;
    assert_eq!(wallet.balance(alice).await?, U256::from(2 * ONE_ETH));
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_payments_are_owed_and_claimed_later_while_the_rest_of_the_batch_is_paid() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let keys = federation_of_four();
    let anvil = funded_anvil(&keys).await?;
    let (wallet, vault, token) = (anvil.wallet(), anvil.vault(), anvil.token());
    let refusing = wallet.deploy_refusing_recipient().await?.contract_address.ok_or("no recipient contract")?;
    let claimant = Wallet::connect(anvil.rpc_url(), DEV_PRIVATE_KEY_1)?;
    let (alice, bob, carol) = (address(0xa1), address(0xb0), claimant.address());

    // The vault holds 1000 fUSD: carol's 1200 cannot be paid now, bob's 100 can.
    let release = batch(
        vault,
        11,
        vec![
            item(EthAddress::ZERO, refusing, ONE_ETH),
            item(EthAddress::ZERO, alice, 2 * ONE_ETH),
            item(token, carol, 1_200_000_000),
            item(token, bob, 100_000_000),
        ],
    );
    let receipt = wallet.release(vault, &release, &sign_release(&keys, &[0, 1, 3], &release)?).await?;
    assert_eq!(events(&receipt, vault), ["Released", "PaymentDeferred", "Paid", "PaymentDeferred", "Paid"]);
    assert_eq!(wallet.balance(alice).await?, U256::from(2 * ONE_ETH));
    assert_eq!(wallet.token_balance(token, bob).await?, U256::from(100_000_000u64));
    assert_eq!(wallet.balance(refusing).await?, U256::ZERO);
    assert_eq!(wallet.owed(vault, EthAddress::ZERO, refusing).await?, U256::from(ONE_ETH));
    assert_eq!(wallet.owed(vault, token, carol).await?, U256::from(1_200_000_000u64));
    assert_eq!(wallet.owed(vault, EthAddress::ZERO, alice).await?, U256::ZERO);
    assert!(wallet.released(vault, 11).await?);

    // Still refusing: the claim fails and the debt stays.
    let error = refusal(wallet.claim_as_recipient(refusing, vault, EthAddress::ZERO).await)?;
    assert!(matches!(error, VaultError::EthTransferFailed(_)), "{error:?}");
    assert_eq!(wallet.owed(vault, EthAddress::ZERO, refusing).await?, U256::from(ONE_ETH));

    wallet.set_accepting(refusing, true).await?;
    wallet.claim_as_recipient(refusing, vault, EthAddress::ZERO).await?;
    assert_eq!(wallet.balance(refusing).await?, U256::from(ONE_ETH));
    assert_eq!(wallet.owed(vault, EthAddress::ZERO, refusing).await?, U256::ZERO);
    let error = refusal(wallet.claim_as_recipient(refusing, vault, EthAddress::ZERO).await)?;
    assert!(matches!(error, VaultError::NothingOwed(_)), "a second claim: {error:?}");

    // Once the vault holds enough fUSD again, carol claims hers.
    fund(&anvil, vault).await?;
    claimant.claim(vault, token).await?;
    assert_eq!(wallet.token_balance(token, carol).await?, U256::from(1_200_000_000u64));
    assert_eq!(wallet.owed(vault, token, carol).await?, U256::ZERO);
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn release_gas_is_the_same_for_federations_of_4_16_and_64_members() -> TestResult {
    let _serial = common::serial().await;
    let anvil = Anvil::start().await?;
    let mut measured = Vec::new();
    for (members, threshold) in [(4, 3), (16, 11), (64, 43)] {
        let gas = anvil.measure_release_gas(members, threshold, members).await?;
        eprintln!(
            "release, {members} members, T = {threshold}: gas {} (calldata {}, execution {})",
            gas.gas_used, gas.calldata_gas, gas.execution_gas
        );
        measured.push(gas);
    }
    let first = measured[0].execution_gas;
    assert!(measured.iter().all(|gas| gas.execution_gas == first), "{measured:?}");
    // Only the calldata's zero bytes may differ: at most 12 gas for each of the 192 signature
    // bytes that are not fixed padding.
    for gas in &measured {
        assert!(gas.gas_used.abs_diff(measured[0].gas_used) <= 12 * 192, "{measured:?}");
    }
    Ok(())
}

/// The vault refuses a federation key it could never verify against.
#[tokio::test(flavor = "multi_thread")]
async fn vault_refuses_a_federation_key_that_is_not_a_g1_point() -> TestResult {
    let _serial = common::serial().await;
    let anvil = Anvil::start().await?;
    let mut off_curve = anvil.federation().key;
    off_curve[127] ^= 1;
    for (what, key) in [("off the curve", off_curve), ("the point at infinity", [0; 128])] {
        let error = match anvil.deploy_vault(&FederationKey { key, epoch: EPOCH }).await {
            Ok(deployed) => return Err(format!("{what}: deployed {deployed:?}").into()),
            Err(error) => error,
        };
        let ethereum = error.downcast_ref::<EthereumError>().ok_or_else(|| format!("{what}: {error:#}"))?;
        let refused = vault_error(ethereum).ok_or_else(|| format!("{what}: {ethereum}"))?;
        assert!(
            matches!(
                (what, &refused),
                ("off the curve", VaultError::FederationKeyNotInG1(_))
                    | ("the point at infinity", VaultError::FederationKeyIsInfinity(_))
            ),
            "{what}: {refused:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_applies_once_only_under_the_federations_signature_and_shares_the_release_nonces() -> TestResult {
    let _serial = common::serial().await;
    let keys = federation_of_four();
    let anvil = funded_anvil(&keys).await?;
    let (wallet, vault) = (anvil.wallet(), anvil.vault());
    let new_token = wallet.deploy_test_token("New", "NEW", 18).await?.contract_address.ok_or("no token")?;
    let depositor = Address::from_bytes([0x5b; 20]);
    wallet.mint_test_token(new_token, wallet.address(), U256::from(1_000u64)).await?;
    wallet.approve(new_token, vault, U256::from(1_000u64)).await?;
    let error = refusal(wallet.deposit_token(vault, new_token, U256::from(1_000u64), &depositor).await)?;
    assert!(matches!(error, VaultError::TokenNotListed(_)), "{error:?}");

    let listing = EthListing {
        chain_id: anvil::CHAIN_ID,
        vault: batch_address(vault),
        epoch: EPOCH,
        nonce: 9,
        token: batch_address(new_token),
        listed: true,
    };
    let good = sign_message(&keys, &[0, 1, 3], &listing.payload())?;
    // Another federation, another epoch, another token under the same signature: refused.
    let foreign = sign_message(&federation(3, 99), &[0, 1, 2], &listing.payload())?;
    let error = refusal(wallet.set_listing(vault, &listing, &foreign).await)?;
    assert!(matches!(error, VaultError::BadSignature(_)), "{error:?}");
    let next_epoch = EthListing { epoch: EPOCH + 1, ..listing.clone() };
    let error = refusal(
        wallet.set_listing(vault, &next_epoch, &sign_message(&keys, &[0, 1, 2], &next_epoch.payload())?).await,
    )?;
    assert!(matches!(error, VaultError::WrongEpoch(_)), "{error:?}");
    let other_token = EthListing { token: batch_address(address(0x77)), ..listing.clone() };
    let error = refusal(wallet.set_listing(vault, &other_token, &good).await)?;
    assert!(matches!(error, VaultError::BadSignature(_)), "{error:?}");
    // A release's signature over its own payload is no listing.
    let release = batch(vault, 9, vec![item(EthAddress::ZERO, address(0xa1), 1)]);
    let error = refusal(wallet.set_listing(vault, &listing, &sign_release(&keys, &[0, 1, 2], &release)?).await)?;
    assert!(matches!(error, VaultError::BadSignature(_)), "{error:?}");
    assert!(!wallet.listed(vault, new_token).await?);

    // Applied once: the token deposits; the nonce is spent for a replay and for a release.
    wallet.set_listing(vault, &listing, &good).await?;
    assert!(wallet.listed(vault, new_token).await?);
    wallet.deposit_token(vault, new_token, U256::from(1_000u64), &depositor).await?;
    let error = refusal(wallet.set_listing(vault, &listing, &good).await)?;
    assert!(matches!(error, VaultError::AlreadyReleased(_)), "replayed: {error:?}");
    let error = refusal(wallet.release(vault, &release, &sign_release(&keys, &[0, 1, 2], &release)?).await)?;
    assert!(matches!(error, VaultError::AlreadyReleased(_)), "a release at the listing's nonce: {error:?}");

    // Unlisting stops deposits; the tokens already in can still be released.
    let unlisting = EthListing { nonce: 10, listed: false, ..listing.clone() };
    wallet.set_listing(vault, &unlisting, &sign_message(&keys, &[1, 2, 3], &unlisting.payload())?).await?;
    assert!(!wallet.listed(vault, new_token).await?);
    wallet.mint_test_token(new_token, wallet.address(), U256::from(5u64)).await?;
    wallet.approve(new_token, vault, U256::from(5u64)).await?;
    let error = refusal(wallet.deposit_token(vault, new_token, U256::from(5u64), &depositor).await)?;
    assert!(matches!(error, VaultError::TokenNotListed(_)), "{error:?}");
    let payout = batch(vault, 11, vec![item(new_token, address(0xb2), 400)]);
    wallet.release(vault, &payout, &sign_release(&keys, &[0, 2, 3], &payout)?).await?;
    Ok(())
}

/// The degree-(k − 1) interpolation of `signers`' shares of `message`: what k members can make
/// together. At k = T it is the federation's signature; below T it is not.
fn combined_by(keys: &SecretKeySet, signers: &[u64], message: &[u8]) -> TestResult<[u8; 256]> {
    let shares: BTreeMap<u64, bls::SignatureShare> =
        signers.iter().map(|&index| (index, bls::sign_share(&keys.secret_key_share(index), message))).collect();
    let degree = signers.len() - 1;
    // A key set of degree k − 1 interpolates with the same Lagrange coefficients (they depend on
    // the indices only); its own keys play no part.
    let interpolating = SecretKeySet::random(degree, &mut ChaChaRng::seed_from_u64(1)).public_keys();
    let signature = interpolating
        .combine_signatures(shares.iter().map(|(index, share)| (*index, share)))
        .map_err(|error| format!("combining: {error:?}"))?;
    Ok(bls::eip2537_g2(&signature))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vault_rotates_only_to_the_next_epoch_only_under_the_current_key_and_never_to_no_key() -> TestResult {
    let _serial = common::serial().await;
    let old = federation_of_four();
    let anvil = funded_anvil(&old).await?;
    let (wallet, vault) = (anvil.wallet(), anvil.vault());
    // The next federation: 5 members, T = 4.
    let new = federation(4, 5);
    let new_key = hex::encode(bls::eip2537_g1(&new.public_keys().public_key()));
    let rotation = EthRotation {
        chain_id: anvil::CHAIN_ID,
        vault: batch_address(vault),
        epoch: EPOCH,
        new_epoch: EPOCH + 1,
        new_key: new_key.clone(),
    };
    let payload = rotation.payload().ok_or("the key is hex")?;
    let signed = |rotation: &EthRotation, signers: &[u64]| -> TestResult<[u8; 256]> {
        sign_message(&old, signers, &rotation.payload().ok_or("hex")?).map_err(Into::into)
    };

    // Fewer than T (two of the four old members): refused.
    let error = refusal(wallet.rotate(vault, &rotation, &combined_by(&old, &[0, 1], &payload)?).await)?;
    assert!(matches!(error, VaultError::BadSignature(_)), "{error:?}");
    // The new key cannot hand the vault to itself.
    let error = refusal(wallet.rotate(vault, &rotation, &sign_message(&new, &[0, 1, 2, 3], &payload)?).await)?;
    assert!(matches!(error, VaultError::BadSignature(_)), "{error:?}");
    // Signed by the current key, but for epoch + 2, or claiming another current epoch.
    let skip = EthRotation { new_epoch: EPOCH + 2, ..rotation.clone() };
    let error = refusal(wallet.rotate(vault, &skip, &signed(&skip, &[0, 1, 2])?).await)?;
    assert!(
        matches!(error, VaultError::WrongNextEpoch(FerryVault::WrongNextEpoch { expected, got }) if expected == EPOCH + 1 && got == EPOCH + 2),
        "{error:?}"
    );
    let stale = EthRotation { epoch: EPOCH - 1, new_epoch: EPOCH, ..rotation.clone() };
    let error = refusal(wallet.rotate(vault, &stale, &signed(&stale, &[0, 1, 2])?).await)?;
    assert!(matches!(error, VaultError::WrongEpoch(_)), "{error:?}");
    // Signed by the current key, to the zero key or to bytes that are not a G1 point.
    let zero = EthRotation { new_key: hex::encode([0u8; 128]), ..rotation.clone() };
    let error = refusal(wallet.rotate(vault, &zero, &signed(&zero, &[0, 1, 2])?).await)?;
    assert!(matches!(error, VaultError::FederationKeyIsInfinity(_)), "{error:?}");
    let junk = EthRotation { new_key: hex::encode([7u8; 128]), ..rotation.clone() };
    let error = refusal(wallet.rotate(vault, &junk, &signed(&junk, &[0, 1, 2])?).await)?;
    assert!(matches!(error, VaultError::FederationKeyNotInG1(_)), "{error:?}");
    // The signature of another rotation (another key) does not carry over.
    let error = refusal(wallet.rotate(vault, &rotation, &signed(&zero, &[0, 1, 2])?).await)?;
    assert!(matches!(error, VaultError::BadSignature(_)), "{error:?}");
    assert_eq!(wallet.federation(vault).await?.0, EPOCH, "nothing changed yet");

    // The current key's threshold hands it over.
    let signature = signed(&rotation, &[1, 2, 3])?;
    let receipt = wallet.rotate(vault, &rotation, &signature).await?;
    eprintln!("rotation: gas {}", receipt.gas_used);
    let (epoch, key) = wallet.federation(vault).await?;
    assert_eq!((epoch, hex::encode(key)), (EPOCH + 1, new_key));
    // Replayed: the vault is past that epoch.
    let error = refusal(wallet.rotate(vault, &rotation, &signature).await)?;
    assert!(matches!(error, VaultError::WrongEpoch(_)), "{error:?}");

    // A release signed by the new key pays; one signed by the old key reverts, whatever epoch it names.
    let paid = EthBatch { epoch: EPOCH + 1, ..batch(vault, 11, vec![item(EthAddress::ZERO, address(0xc1), ONE_ETH)]) };
    let receipt = wallet.release(vault, &paid, &sign_release(&new, &[0, 2, 3, 4], &paid)?).await?;
    assert_eq!(events(&receipt, vault), ["Released", "Paid"]);
    assert_eq!(wallet.balance(address(0xc1)).await?, U256::from(ONE_ETH));
    let old_epoch = batch(vault, 12, vec![item(EthAddress::ZERO, address(0xc2), ONE_ETH)]);
    let error = refusal(wallet.release(vault, &old_epoch, &sign_release(&old, &[0, 1, 2], &old_epoch)?).await)?;
    assert!(matches!(error, VaultError::WrongEpoch(_)), "{error:?}");
    let old_key = EthBatch { epoch: EPOCH + 1, ..old_epoch.clone() };
    let error = refusal(wallet.release(vault, &old_key, &sign_release(&old, &[0, 1, 2], &old_key)?).await)?;
    assert!(matches!(error, VaultError::BadSignature(_)), "{error:?}");
    assert_eq!(wallet.balance(address(0xc2)).await?, U256::ZERO);

    // The rotation signed for this vault does not rotate another vault of the same federation.
    let (other, _) = anvil.deploy_vault(&federation_key(&old, EPOCH)).await?;
    let error = refusal(wallet.rotate(other, &rotation, &signature).await)?;
    assert!(matches!(error, VaultError::BadSignature(_)), "{error:?}");
    Ok(())
}
