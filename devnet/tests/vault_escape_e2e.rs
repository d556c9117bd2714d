//! `FerryVault`'s escape hatch end to end on a real anvil (1.7, Prague): BLS-signed heartbeats
//! carrying the root of `ferry_types::exit_tree`, the escape delay, `freeze()`, and holders
//! exiting ETH and a token with proofs and signatures made by the Rust module — and every
//! refusal on the way decoded as the vault's named custom error.
//!
//! The heartbeat is signed the way the federation signs a release (threshold_crypto shares over
//! `EthHeartbeat::payload`, combined at the threshold, EIP-2537-encoded). This test encodes the
//! escape-hatch calls itself (plain ABI words, independent of the project's bindings) and sends
//! them through anvil's JSON-RPC from an unlocked dev account; deposits and the release go
//! through `Wallet` as everywhere else.

mod common;

use std::time::{Duration, Instant};

use ferry_devnet::anvil::{self, Anvil, batch_address, federation_key, sign_message, sign_release};
use ferry_parent_chains::ethereum::vault::{VaultError, vault_error};
use ferry_parent_chains::ethereum::wallet::VAULT_ESCAPE_DELAY_SECS;
use ferry_parent_chains::ethereum::{EthAddress, EthereumError, U256};
use ferry_types::exit_tree::{self, Claim, EXIT_TREE_DEPTH, ExitProof, ExitTree, Hash, amount_word, keccak256};
use ferry_types::release::eth::{EthBatch, EthHeartbeat, EthReleaseItem};
use ferry_types::{AccountKey, Address, Amount};
use rand_chacha::ChaChaRng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use threshold_crypto::SecretKeySet;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ONE_ETH: u128 = 1_000_000_000_000_000_000;
/// The federation epoch of the vault under test.
const EPOCH: u64 = 5;
/// Anvil's dev account 1: sends the escape-hatch calls (anyone may), unlocked in anvil.
const SUBMITTER: &str = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";

/// A holder of the sidechain: the secret of their Ferry account key and its account id.
struct Holder {
    secret: [u8; 32],
    account: [u8; 20],
}

impl Holder {
    fn new(seed: &str) -> TestResult<Holder> {
        let secret = ferry_types::key::sha256(seed.as_bytes());
        let account = *AccountKey::from_secret_bytes(&secret)?.address().as_bytes();
        Ok(Holder { secret, account })
    }
}

/// One exit as `FerryVault.exit` takes it.
#[derive(Clone)]
struct Exit {
    claim: Claim,
    index: u32,
    proof: ExitProof,
    public_key: [u8; 64],
    recipient: [u8; 20],
    signature: [u8; 65],
}

impl Exit {
    /// `holder`'s exit of its leaf `index` of `tree`, signed for `recipient`.
    fn signed(
        holder: &Holder,
        vault: [u8; 20],
        tree: &ExitTree,
        (index, claim): (u32, Claim),
        recipient: [u8; 20],
    ) -> TestResult<Exit> {
        let signature = exit_tree::sign_exit(&holder.secret, anvil::CHAIN_ID, vault, &claim, recipient)?;
        Ok(Exit {
            claim,
            index,
            proof: tree.proof(index),
            public_key: exit_tree::exit_public_key(&holder.secret)?,
            recipient,
            signature,
        })
    }

    /// The calldata of `exit((address,bytes20,uint64,uint256),uint256,bytes32[],bytes,address,bytes)`:
    /// the claim is a static tuple, so its four words sit in the head like plain arguments.
    fn calldata(&self) -> Vec<u8> {
        let proof: Vec<u8> = self.proof.iter().flatten().copied().collect();
        let proof_tail = [&uint(EXIT_TREE_DEPTH as u128)[..], &proof].concat();
        let public_key_tail = dynamic_bytes(&self.public_key);
        let signature_tail = dynamic_bytes(&self.signature);
        let head_size = 9 * 32;
        let public_key_at = head_size + proof_tail.len();
        let signature_at = public_key_at + public_key_tail.len();
        [
            &selector("exit((address,bytes20,uint64,uint256),uint256,bytes32[],bytes,address,bytes)")[..],
            &claim_words(&self.claim),
            &uint(u128::from(self.index)),
            &uint(head_size as u128),
            &uint(public_key_at as u128),
            &address_word(self.recipient),
            &uint(signature_at as u128),
            &proof_tail,
            &public_key_tail,
            &signature_tail,
        ]
        .concat()
    }
}

/// The four head words of a `Claim` tuple `(address token, bytes20 account, uint64 nonce, uint256 amount)`.
fn claim_words(claim: &Claim) -> Vec<u8> {
    [
        address_word(*claim.token.as_bytes()),
        bytes20_word(*claim.account.as_bytes()),
        uint(u128::from(claim.nonce)),
        uint(claim.amount.get()),
    ]
    .concat()
}

/// `account`'s claim of `amount` of `token` (nonce 0: a balance).
fn held(token: [u8; 20], account: [u8; 20], amount: u128) -> Claim {
    Claim {
        token: ferry_types::eth_address::EthAddress::from_bytes(token),
        account: Address::from_bytes(account),
        nonce: 0,
        amount: Amount::new(amount),
    }
}

fn selector(signature: &str) -> [u8; 4] {
    let hash = keccak256(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

fn uint(value: u128) -> [u8; 32] {
    amount_word(value)
}

fn address_word(address: [u8; 20]) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(&address);
    word
}

/// A `bytes20` ABI word: left-aligned, unlike an address.
fn bytes20_word(bytes: [u8; 20]) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[..20].copy_from_slice(&bytes);
    word
}

/// The tail of a dynamic `bytes`: its length, then the bytes padded to whole words.
fn dynamic_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = uint(bytes.len() as u128).to_vec();
    out.extend_from_slice(bytes);
    out.resize(32 + bytes.len().div_ceil(32) * 32, 0);
    out
}

/// The vault heartbeat of `nonce` posting `root` for `height`.
fn heartbeat_of(vault: [u8; 20], nonce: u64, height: u64, root: &Hash) -> EthHeartbeat {
    EthHeartbeat {
        chain_id: anvil::CHAIN_ID,
        vault: ferry_types::eth_address::EthAddress::from_bytes(vault),
        epoch: EPOCH,
        nonce,
        height,
        balances_root: *root,
    }
}

/// The four head words of a `Heartbeat` tuple `(uint64 epoch, uint64 nonce, uint64 height, bytes32 balancesRoot)`.
fn heartbeat_words(heartbeat: &EthHeartbeat) -> Vec<u8> {
    [
        uint(u128::from(heartbeat.epoch)),
        uint(u128::from(heartbeat.nonce)),
        uint(u128::from(heartbeat.height)),
        heartbeat.balances_root,
    ]
    .concat()
}

/// The calldata of `heartbeat((uint64,uint64,uint64,bytes32),bytes)`.
fn heartbeat_calldata(heartbeat: &EthHeartbeat, signature: &[u8]) -> Vec<u8> {
    [
        &selector("heartbeat((uint64,uint64,uint64,bytes32),bytes)")[..],
        &heartbeat_words(heartbeat),
        &uint(5 * 32),
        &dynamic_bytes(signature),
    ]
    .concat()
}

/// `n - s` for the secp256k1 group order `n` (big-endian, `0 < s < n`).
fn negated(s: [u8; 32]) -> [u8; 32] {
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae,
        0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
    ];
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for byte in (0..32).rev() {
        let difference = i16::from(ORDER[byte]) - i16::from(s[byte]) - borrow;
        borrow = i16::from(difference < 0);
        out[byte] = (difference + 256 * borrow) as u8;
    }
    out
}

fn hex_of(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn bytes_of(value: &Value) -> TestResult<Vec<u8>> {
    let text = value.as_str().ok_or_else(|| format!("not a hex string: {value}"))?;
    Ok(hex::decode(text.trim_start_matches("0x"))?)
}

fn quantity(value: &Value) -> TestResult<u64> {
    let text = value.as_str().ok_or_else(|| format!("not a quantity: {value}"))?;
    Ok(u64::from_str_radix(text.trim_start_matches("0x"), 16)?)
}

/// Anvil's JSON-RPC, sending from the unlocked [`SUBMITTER`].
struct Rpc {
    http: reqwest::Client,
    url: String,
    vault: String,
}

impl Rpc {
    /// The answer of `method`: `Ok(result)` or `Err(error object)`.
    async fn request(&self, method: &str, params: Value) -> TestResult<Result<Value, Value>> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let answer: Value = self.http.post(&self.url).json(&body).send().await?.json().await?;
        Ok(match answer.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(answer["result"].clone()),
        })
    }

    async fn call(&self, data: &[u8]) -> TestResult<Result<Vec<u8>, Value>> {
        let call = json!({"from": SUBMITTER, "to": self.vault, "data": hex_of(data)});
        match self.request("eth_call", json!([call, "latest"])).await? {
            Ok(result) => Ok(Ok(bytes_of(&result)?)),
            Err(error) => Ok(Err(error)),
        }
    }

    /// A view's answer.
    async fn view(&self, data: &[u8]) -> TestResult<Vec<u8>> {
        self.call(data).await?.map_err(|error| format!("view refused: {error}").into())
    }

    /// Sends `data` to the vault and returns the gas the mined, successful transaction used.
    async fn send(&self, what: &str, data: &[u8]) -> TestResult<u64> {
        let transaction = json!({"from": SUBMITTER, "to": self.vault, "data": hex_of(data), "gas": "0x1e8480"});
        let hash =
            self.request("eth_sendTransaction", json!([transaction])).await?.map_err(|e| format!("{what}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let receipt = self.request("eth_getTransactionReceipt", json!([hash])).await?.map_err(|e| e.to_string())?;
            if !receipt.is_null() {
                if quantity(&receipt["status"])? != 1 {
                    return Err(format!("{what} reverted: {receipt}").into());
                }
                return quantity(&receipt["gasUsed"]);
            }
            if Instant::now() > deadline {
                return Err(format!("{what}: no receipt for {hash}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts that `data` is refused with the custom error `error` (its Solidity signature) and
    /// returns the error's arguments.
    async fn refused(&self, what: &str, data: &[u8], error: &str) -> TestResult<Vec<u8>> {
        let revert = match self.call(data).await? {
            Ok(result) => {
                return Err(format!("{what}: expected {error}, the call succeeded: {}", hex_of(&result)).into());
            }
            Err(refusal) => bytes_of(&refusal["data"]).map_err(|_| format!("{what}: no revert data in {refusal}"))?,
        };
        assert_eq!(hex_of(revert.get(..4).unwrap_or(&revert)), hex_of(&selector(error)), "{what}: expected {error}");
        Ok(revert[4..].to_vec())
    }
}

fn vault_refusal<T: std::fmt::Debug>(result: Result<T, EthereumError>) -> TestResult<VaultError> {
    match result {
        Ok(value) => Err(format!("expected a refusal, got {value:?}").into()),
        Err(error) => vault_error(&error).ok_or_else(|| format!("not a vault error: {error}").into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn holders_exit_eth_and_tokens_from_a_vault_frozen_after_the_escape_delay() -> TestResult {
    let _serial = common::serial().await;
    let started = Instant::now();
    let keys = SecretKeySet::random(2, &mut ChaChaRng::seed_from_u64(17));
    let anvil = Anvil::start_with_federation(federation_key(&keys, EPOCH)).await?;
    let (wallet, vault, token) = (anvil.wallet(), anvil.vault(), anvil.token());
    let (vault_bytes, token_bytes): ([u8; 20], [u8; 20]) = (vault.into(), token.into());
    let rpc = Rpc { http: reqwest::Client::new(), url: anvil.rpc_url().to_owned(), vault: vault.to_string() };

    // Two holders deposit ETH and the test token (the only ways into the vault).
    let (alice, bob, mallory) = (Holder::new("alice exits")?, Holder::new("bob exits")?, Holder::new("mallory")?);
    let (alice_eth, bob_eth, alice_tokens, bob_tokens) = (3 * ONE_ETH, ONE_ETH / 2, 500_000_000u128, 250_000_000u128);
    let tokens = U256::from(alice_tokens + bob_tokens);
    wallet.mint_test_token(token, wallet.address(), tokens).await?;
    wallet.approve(token, vault, tokens).await?;
    // Bob also burned two withdrawals of ETH on the sidechain: batch 7 (the vault releases it
    // before the freeze) and batch 8 (never released). Both sit in the tree as his claims.
    let (paid_withdrawal, unpaid_withdrawal) = (ONE_ETH / 10, ONE_ETH / 20);
    let bob_deposit = bob_eth + paid_withdrawal + unpaid_withdrawal;
    for (holder, wei, units) in [(&alice, alice_eth, alice_tokens), (&bob, bob_deposit, bob_tokens)] {
        let recipient = Address::from_bytes(holder.account);
        wallet.deposit_eth(vault, &recipient, U256::from(wei)).await?;
        wallet.deposit_token(vault, token, U256::from(units), &recipient).await?;
    }

    // The chain's exit tree: the two holders' claims among 200 other accounts' leaves.
    let paid_claim = Claim { nonce: 7, ..held([0; 20], bob.account, paid_withdrawal) };
    let unpaid_claim = Claim { nonce: 8, ..held([0; 20], bob.account, unpaid_withdrawal) };
    let claims = [
        (3, held([0; 20], alice.account, alice_eth), &alice),
        (4, held(token_bytes, alice.account, alice_tokens), &alice),
        (150, held([0; 20], bob.account, bob_eth), &bob),
        (151, held(token_bytes, bob.account, bob_tokens), &bob),
        (160, unpaid_claim, &bob),
    ];
    let mut tree = ExitTree::from_leaves((0..205u32).map(|index| {
        let other = ferry_types::key::sha256(&index.to_be_bytes());
        (index, held([0; 20], other[..20].try_into().unwrap_or_default(), u128::from(index) + 1).leaf())
    }));
    for &(index, claim, _) in &claims {
        tree.set(index, claim.leaf());
    }
    tree.set(161, paid_claim.leaf());
    let root = tree.root();

    // The vault hashes leaves, exit requests and heartbeats exactly as the Rust module does.
    let leaf_call = [&selector("exitLeaf((address,bytes20,uint64,uint256))")[..], &claim_words(&unpaid_claim)].concat();
    assert_eq!(rpc.view(&leaf_call).await?, unpaid_claim.leaf());
    let message_call = [
        &selector("exitMessage((address,bytes20,uint64,uint256),address)")[..],
        &claim_words(&unpaid_claim),
        &address_word([0xb0; 20]),
    ]
    .concat();
    let rust_message = exit_tree::exit_message(anvil::CHAIN_ID, vault_bytes, &unpaid_claim, [0xb0; 20]);
    assert_eq!(rpc.view(&message_call).await?, rust_message);
    let current = heartbeat_of(vault_bytes, 102, 10, &root);
    let heartbeat_view =
        [&selector("heartbeatMessage((uint64,uint64,uint64,bytes32))")[..], &heartbeat_words(&current)].concat();
    assert_eq!(rpc.view(&heartbeat_view).await?[64..], dynamic_bytes(&current.payload())[32..]);

    // Heartbeats land while the federation runs: an earlier root, then the current one.
    let sign_heartbeat = |heartbeat: &EthHeartbeat| sign_message(&keys, &[0, 1, 2], &heartbeat.payload());
    let earlier_root = ExitTree::from_leaves([(0, held([0; 20], alice.account, 1).leaf())]).root();
    let earlier = heartbeat_of(vault_bytes, 101, 4, &earlier_root);
    let first_gas = rpc.send("heartbeat 4", &heartbeat_calldata(&earlier, &sign_heartbeat(&earlier)?)).await?;
    let signature = sign_heartbeat(&current)?;
    let heartbeat_gas = rpc.send("heartbeat 10", &heartbeat_calldata(&current, &signature)).await?;
    eprintln!("gas: first heartbeat {first_gas}, next heartbeat {heartbeat_gas}");
    assert_eq!(rpc.view(&selector("exitRoot()")).await?, root);

    // Each heartbeat applies once; one for a lower height, delivered late, never rolls the root
    // back (it still counts as a sign of life).
    let again =
        rpc.refused("the same nonce", &heartbeat_calldata(&current, &signature), "AlreadyReleased(uint64)").await?;
    assert_eq!(again, uint(102));
    let older = heartbeat_of(vault_bytes, 103, 9, &earlier_root);
    rpc.send("heartbeat 9, late", &heartbeat_calldata(&older, &sign_heartbeat(&older)?)).await?;
    assert_eq!(rpc.view(&selector("exitRoot()")).await?, root, "rolled back");
    assert_eq!(rpc.view(&selector("lastHeartbeatHeight()")).await?, uint(10));
    let forged = heartbeat_calldata(&heartbeat_of(vault_bytes, 104, 11, &earlier_root), &signature);
    rpc.refused("signature of another heartbeat", &forged, "BadSignature()").await?;

    // Too early: neither freeze nor exit.
    let opens_at = rpc.view(&selector("escapeOpensAt()")).await?;
    assert_eq!(rpc.refused("early freeze", &selector("freeze()"), "EscapeNotOpen(uint256)").await?, opens_at);
    let alice_eth_exit = Exit::signed(&alice, vault_bytes, &tree, (3, claims[0].1), [0xa1; 20])?;
    rpc.refused("exit before freeze", &alice_eth_exit.calldata(), "NotFrozen()").await?;

    // While it runs, the federation releases batch 7: bob's first withdrawal is paid.
    let withdrawal_to = EthAddress::from([0xb7; 20]);
    // It carries the root of the claims where it formed: the same root at a later height (its
    // withdrawal was a claim naming nonce 7 there already) — the vault keeps the root, moves its
    // height on and restarts the escape clock.
    let batch_seven = EthBatch {
        chain_id: anvil::CHAIN_ID,
        vault: batch_address(vault),
        epoch: EPOCH,
        nonce: 7,
        exit_height: 11,
        exit_root: root,
        items: vec![EthReleaseItem {
            token: batch_address(EthAddress::ZERO),
            recipient: batch_address(withdrawal_to),
            amount: Amount::new(paid_withdrawal),
        }],
    };
    wallet.release(vault, &batch_seven, &sign_release(&keys, &[0, 1, 2], &batch_seven)?).await?;
    assert_eq!(wallet.balance(withdrawal_to).await?, U256::from(paid_withdrawal));
    assert_eq!(rpc.view(&selector("lastHeartbeatHeight()")).await?, uint(11));
    assert_eq!(rpc.view(&selector("exitRoot()")).await?, root);

    // The federation stops; the escape delay passes; anyone freezes the vault.
    let delay = VAULT_ESCAPE_DELAY_SECS + 1;
    rpc.request("evm_increaseTime", json!([delay])).await?.map_err(|e| e.to_string())?;
    rpc.request("evm_mine", json!([])).await?.map_err(|e| e.to_string())?;
    let freeze_gas = rpc.send("freeze", &selector("freeze()")).await?;
    assert_eq!(rpc.view(&selector("frozen()")).await?, uint(1));
    rpc.refused("second freeze", &selector("freeze()"), "VaultFrozen()").await?;

    // Frozen for good: no release, heartbeat or deposit.
    let release = EthBatch {
        chain_id: anvil::CHAIN_ID,
        vault: batch_address(vault),
        epoch: EPOCH,
        nonce: 1,
        exit_height: 12,
        exit_root: root,
        items: vec![EthReleaseItem {
            token: batch_address(EthAddress::ZERO),
            recipient: batch_address(EthAddress::from([0xa1; 20])),
            amount: Amount::new(ONE_ETH),
        }],
    };
    let error = vault_refusal(wallet.release(vault, &release, &sign_release(&keys, &[0, 1, 2], &release)?).await)?;
    assert!(matches!(error, VaultError::VaultFrozen(_)), "release after the freeze: {error:?}");
    let error = vault_refusal(wallet.deposit_eth(vault, &Address::from_bytes(alice.account), U256::from(1)).await)?;
    assert!(matches!(error, VaultError::VaultFrozen(_)), "deposit after the freeze: {error:?}");
    let late_heartbeat = heartbeat_of(vault_bytes, 105, 12, &root);
    let late = heartbeat_calldata(&late_heartbeat, &sign_heartbeat(&late_heartbeat)?);
    rpc.refused("heartbeat after the freeze", &late, "VaultFrozen()").await?;

    // Forgeries of alice's ETH claim, each refused before her own exit.
    let mut forged = alice_eth_exit.clone();
    forged.proof[7][31] ^= 1;
    rpc.refused("a sibling changed", &forged.calldata(), "BadExitProof()").await?;
    let more = Exit::signed(&alice, vault_bytes, &tree, (3, held([0; 20], alice.account, alice_eth + 1)), [0xa1; 20])?;
    rpc.refused("amount + 1", &more.calldata(), "BadExitProof()").await?;
    let moved = Exit { index: 4, proof: tree.proof(4), ..alice_eth_exit.clone() };
    rpc.refused("another index", &moved.calldata(), "BadExitProof()").await?;
    let by_mallory = Exit::signed(&mallory, vault_bytes, &tree, (3, claims[0].1), [0xa1; 20])?;
    rpc.refused("mallory's key for alice's account", &by_mallory.calldata(), "WrongAccountKey()").await?;
    let signed_by_mallory = Exit { signature: by_mallory.signature, ..alice_eth_exit.clone() };
    rpc.refused("signed by another key", &signed_by_mallory.calldata(), "BadExitSignature()").await?;
    let redirected = Exit { recipient: [0xee; 20], ..alice_eth_exit.clone() };
    rpc.refused("another recipient than signed", &redirected.calldata(), "BadExitSignature()").await?;
    let mut other_v = alice_eth_exit.clone();
    other_v.signature[64] ^= 1; // 27 <-> 28: the other recovery id recovers another key, or none
    rpc.refused("the other v", &other_v.calldata(), "BadExitSignature()").await?;
    // Bob's withdrawal in batch 7 was paid by its release: its claim is refused, proof or not.
    let paid_exit = Exit::signed(&bob, vault_bytes, &tree, (161, paid_claim), [0xb0; 20])?;
    let released = rpc.refused("a withdrawal its batch paid", &paid_exit.calldata(), "ClaimReleased(uint64)").await?;
    assert_eq!(released, uint(7));
    // (r, n - s) with the other v recovers alice's key too: only the low-s rule refuses it.
    let mut high_s = other_v.clone();
    let s_high = negated(high_s.signature[32..64].try_into()?);
    high_s.signature[32..64].copy_from_slice(&s_high);
    rpc.refused("high s", &high_s.calldata(), "BadExitSignature()").await?;

    // Both holders exit both assets, and bob his unpaid withdrawal; each recipient receives the claim.
    let mut exit_gas = Vec::new();
    for &(index, claim, holder) in &claims {
        let recipient = if holder.account == alice.account { [0xa1; 20] } else { [0xb0; 20] };
        let exit = Exit::signed(holder, vault_bytes, &tree, (index, claim), recipient)?;
        let (amount, asset) = (claim.amount.get(), EthAddress::from(*claim.token.as_bytes()));
        let recipient = EthAddress::from(recipient);
        let balance = |asset: EthAddress| async move {
            if asset == EthAddress::ZERO {
                wallet.balance(recipient).await
            } else {
                wallet.token_balance(asset, recipient).await
            }
        };
        let before = balance(asset).await?;
        exit_gas.push(rpc.send("exit", &exit.calldata()).await?);
        assert_eq!(balance(asset).await?, before + U256::from(amount), "leaf {index}");

        // The same leaf again: refused, nothing paid twice.
        assert_eq!(rpc.refused("second exit", &exit.calldata(), "AlreadyExited(uint256)").await?, uint(index.into()));
    }
    eprintln!("gas: freeze {freeze_gas}, exits (ETH, token, ETH, token, withdrawal ETH) {exit_gas:?}");
    assert_eq!(wallet.balance(vault).await?, U256::ZERO);
    assert_eq!(wallet.token_balance(token, vault).await?, U256::ZERO);
    eprintln!("test took {:?}", started.elapsed());
    Ok(())
}
