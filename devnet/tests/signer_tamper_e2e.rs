//! An honest signer behind a compromised endpoint signs nothing it cannot prove.
//!
//! The whole system runs (`devnet::system`); member 0's signer is moved behind a proxy that
//! plays a compromised RPC endpoint: it rewrites the user's destination into an attacker's
//! everywhere it appears, consistently — in the batches and withdrawal records of Ferry's JSON
//! answers and in the raw records of `/store` (the batch's items and payload, the withdrawal's
//! destination) — so a payload rebuilt from those answers would match and pay the attacker. The
//! signer reads what it signs on with Merkle proofs against headers its light client verified
//! from the genesis validators; the rewritten records do not verify, so it refuses (reason
//! `unverified`), names the endpoint, and writes the refusal to its audit log and metrics. The
//! three honest members still sign, and the user is paid.

mod common;

use std::time::Duration;

use common::{TestResult, WAIT, serial};
use ferry_devnet::accounts::{self, user_key};
use ferry_devnet::signer::SignerProcess;
use ferry_devnet::system::System;
use ferry_parent_chains::ethereum::{EthAddress as AlloyAddress, U256};
use ferry_types::Denom;
use ferry_types::query::WithdrawalStatus;
use ferry_types::release::eth::EthAddress;
use serde_json::Value;

const ETH: u128 = 1_000_000_000_000_000_000;
const PARENT_BLOCK: Duration = Duration::from_millis(400);

/// Replaces every occurrence of `from` in `bytes` by `to` (same length); `None` when none.
fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    let mut found = false;
    while let Some(at) = rest.windows(from.len()).position(|window| window == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
        found = true;
    }
    out.extend_from_slice(rest);
    found.then_some(out)
}

/// Every form an address takes in an answer: its 20 bytes (binary records, ABI payloads), its
/// lowercase hex (payload hex, JSON) and its EIP-55 form (destinations as the user wrote them).
fn forms(address: &EthAddress) -> [Vec<u8>; 3] {
    let lower = hex::encode(address.as_bytes());
    let checksummed = address.to_string();
    [address.as_bytes().to_vec(), lower.into_bytes(), checksummed.trim_start_matches("0x").as_bytes().to_vec()]
}

/// `bytes` with every form of `honest` rewritten into the same form of `attacker`.
fn swap(bytes: &[u8], honest: &EthAddress, attacker: &EthAddress) -> Option<Vec<u8>> {
    let mut current = bytes.to_vec();
    let mut changed = false;
    for (from, to) in forms(honest).iter().zip(forms(attacker).iter()) {
        if let Some(next) = replace_all(&current, from, to) {
            current = next;
            changed = true;
        }
    }
    changed.then_some(current)
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signer_behind_a_consistently_tampering_endpoint_signs_nothing_it_cannot_prove() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("tamper", 2).await?;

    let honest = EthAddress::from_bytes([0x4e; 20]);
    let attacker = EthAddress::from_bytes([0xa7; 20]);
    let json: common::Rewrite = std::sync::Arc::new(move |answer: &Value| {
        let text = answer.to_string();
        let swapped = swap(text.as_bytes(), &honest, &attacker)?;
        serde_json::from_slice(&swapped).ok()
    });
    let raw: common::RawRewrite = std::sync::Arc::new(move |_key: &[u8], value: &[u8]| swap(value, &honest, &attacker));
    let tamper = common::Tamper { json: Some(json), raw: Some(raw) };
    let (proxy, proxy_task) = common::start_tampering_proxy(system.chain_rpc(0), tamper).await?;

    // Member 0's signer now reads the chain through the compromised endpoint.
    system.signers[0].kill();
    let mut spec = system.signers[0].spec().clone();
    spec.chain_rpc = format!("http://{proxy}");
    spec.dir = spec.dir.join("behind-proxy");
    let mut tampered_signer = SignerProcess::start(spec.clone())?;

    // Reserves, then a withdrawal to the honest destination.
    let user = user_key(0)?;
    let client = system.client(0)?;
    let before = common::balance(&client, &user.address(), &Denom::wei()).await?;
    system.parents.anvil.deposit_eth(&user.address(), U256::from(2 * ETH)).await?;
    system.wait_for_balance(&user.address(), &Denom::wei(), before + 2 * ETH, PARENT_BLOCK, WAIT).await?;
    let (id, _) = system.withdraw(&user, &Denom::wei(), ETH, &honest.to_string()).await?;
    let view =
        system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, Duration::from_secs(120)).await?;
    let batch_id = view.withdrawal.batch.ok_or("released without a batch")?;

    // The honest members signed and the user, not the attacker, was paid.
    let wallet = system.parents.anvil.wallet();
    assert_eq!(wallet.balance(AlloyAddress::from(*honest.as_bytes())).await?, U256::from(ETH));
    assert_eq!(wallet.balance(AlloyAddress::from(*attacker.as_bytes())).await?, U256::ZERO);
    let batch: ferry_types::query::BatchView =
        client.query(&format!("/batch/{batch_id}"), None).await?.ok_or("no batch")?;
    let member0 = accounts::member_key(0)?.address();
    assert!(!batch.batch.signatures.contains_key(&member0), "member 0 signed a batch it was shown tampered");

    // Member 0 refused, and says why: in its metrics (every refusal under `unverified`, the
    // endpoint counted as answering what does not verify) and in its audit log.
    let text = reqwest::get(tampered_signer.metrics_url()).await?.text().await?;
    let refusals = metric(&text, r#"ferry_signer_signatures_total{chain="eth",outcome="refused"}"#);
    assert!(refusals >= 1.0, "no refusal counted: {text}");
    let unverified = metric(&text, r#"ferry_signer_policy_rejections_total{reason="unverified"}"#);
    assert_eq!(unverified, refusals, "refused for another reason than an unverified read: {text}");
    let liar = metric(&text, &format!(r#"ferry_signer_unverified_answers_total{{endpoint="http://{proxy}"}}"#));
    assert!(liar >= 1.0, "the lying endpoint is not named: {text}");
    let pool = sqlx::PgPool::connect(&spec.database_url).await?;
    let entries = ferry_audit::AuditLog::SIGNER.entries_for(&pool, &format!("batch-{batch_id}")).await?;
    let refusal = entries.iter().find(|entry| entry.kind == "batch.refused").ok_or("no refusal in the audit log")?;
    assert_eq!(refusal.detail["reason"], "unverified", "{}", refusal.detail);
    let message = refusal.detail["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not verify"), "the refusal does not say the proof failed: {message}");
    assert!(entries.iter().all(|entry| entry.kind != "batch.signed"), "{entries:?}");
    assert!(ferry_audit::AuditLog::SIGNER.verify(&pool).await?.is_intact());

    // Member 0 again behind the liar, now with two honest endpoints after it: it keeps signing
    // (with member 1 stopped, the batch needs its signature to pay) and keeps naming the liar.
    tampered_signer.kill();
    system.signers[1].kill();
    let mut three = spec.clone();
    three.dir = spec.dir.join("three-endpoints");
    three.trust_root = Some((system.network.genesis_file(), vec![system.chain_rpc(1), system.chain_rpc(2)]));
    let mut signer = SignerProcess::start(three)?;
    let (id, _) = system.withdraw(&user, &Denom::wei(), ETH / 2, &honest.to_string()).await?;
    let view =
        system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, Duration::from_secs(120)).await?;
    let batch_id = view.withdrawal.batch.ok_or("released without a batch")?;
    let batch: ferry_types::query::BatchView =
        client.query(&format!("/batch/{batch_id}"), None).await?.ok_or("no batch")?;
    assert!(batch.batch.signatures.contains_key(&member0), "member 0 did not sign through its honest endpoints");
    assert_eq!(wallet.balance(AlloyAddress::from(*honest.as_bytes())).await?, U256::from(ETH + ETH / 2));
    assert_eq!(wallet.balance(AlloyAddress::from(*attacker.as_bytes())).await?, U256::ZERO);
    let text = reqwest::get(signer.metrics_url()).await?.text().await?;
    let liar = metric(&text, &format!(r#"ferry_signer_unverified_answers_total{{endpoint="http://{proxy}"}}"#));
    assert!(liar >= 1.0, "the lying endpoint is not named: {text}");

    signer.kill();
    proxy_task.abort();
    Ok(())
}
