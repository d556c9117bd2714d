//! An honest signer shown a tampered payload refuses it and records why.
//!
//! The whole system runs (`devnet::system`); member 0's signer is moved behind a proxy that
//! plays a compromised RPC endpoint: every batch it forwards to that signer pays an attacker
//! instead of the user (the destination rewritten in the batch's items and in the signed payload
//! alike), while the withdrawal records pass untouched. The signer rebuilds the payload from the
//! records, sees the difference, refuses, and writes the refusal with its reason to its audit
//! log and its metrics. The three honest members still sign, and the user is paid.

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

/// Rewrites `honest` into `attacker` (40 lowercase hex digits each; any letter case matched)
/// inside every batch answer: the payload hex, the Ethereum batch items and the withdrawal
/// destinations listed in the batch. Withdrawal records (`/withdrawal/…`) pass untouched.
fn tamper_answer(honest: &str, attacker: &str, answer: &Value) -> Option<Value> {
    let is_batch = answer.get("batches").is_some() || answer.get("release").is_some();
    if !is_batch {
        return None;
    }
    let text = answer.to_string();
    let lower = text.to_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = lower[rest..].find(honest) {
        let at = rest + found;
        out.push_str(&text[rest..at]);
        out.push_str(attacker);
        rest = at + honest.len();
    }
    out.push_str(&text[rest..]);
    if out == text { None } else { serde_json::from_str(&out).ok() }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signer_behind_a_tampering_endpoint_refuses_the_changed_destination_and_records_why() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("tamper", 2).await?;

    let honest = EthAddress::from_bytes([0x4e; 20]);
    let attacker = EthAddress::from_bytes([0xa7; 20]);
    let (honest_hex, attacker_hex) = (hex::encode(honest.as_bytes()), hex::encode(attacker.as_bytes()));
    let rewrite: common::Rewrite = std::sync::Arc::new(move |answer| tamper_answer(&honest_hex, &attacker_hex, answer));
    let (proxy, proxy_task) = common::start_tampering_proxy(system.chain_rpc(0), rewrite).await?;

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

    // Member 0 refused, and says why: in its metrics (every refusal under the `destination`
    // reason) and in its audit log.
    let text = reqwest::get(tampered_signer.metrics_url()).await?.text().await?;
    let refusals = metric(&text, r#"ferry_signer_signatures_total{chain="eth",outcome="refused"}"#);
    assert!(refusals >= 1.0, "no refusal counted: {text}");
    let for_destination = metric(&text, r#"ferry_signer_policy_rejections_total{reason="destination"}"#);
    assert_eq!(for_destination, refusals, "refused for another reason than the destination: {text}");
    let pool = sqlx::PgPool::connect(&spec.database_url).await?;
    let entries = ferry_audit::AuditLog::SIGNER.entries_for(&pool, &format!("batch-{batch_id}")).await?;
    let refusal = entries.iter().find(|entry| entry.kind == "batch.refused").ok_or("no refusal in the audit log")?;
    assert_eq!(refusal.detail["reason"], "destination", "{}", refusal.detail);
    // The message names both: what the batch pays and what the burn named.
    let message = refusal.detail["message"].as_str().unwrap_or_default().to_lowercase();
    for (who, address) in [("attacker", attacker), ("honest destination", honest)] {
        assert!(message.contains(&hex::encode(address.as_bytes())), "the refusal does not name the {who}: {message}");
    }
    assert!(entries.iter().all(|entry| entry.kind != "batch.signed"), "{entries:?}");
    assert!(ferry_audit::AuditLog::SIGNER.verify(&pool).await?.is_intact());

    tampered_signer.kill();
    proxy_task.abort();
    Ok(())
}
