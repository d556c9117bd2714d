//! Posting this member's duties to the chain — signatures, key-generation steps, heartbeats,
//! votes: fee-exempt transactions from the member account, retried while they race another
//! transaction of the same account. The signing round, the key generation and the heartbeats all
//! post through [`post_duty`].

use std::time::Duration;

use ferry_client::{ClientError, FerryClient, Wallet};
use ferry_types::{Msg, TxCode};

/// How long to wait for a duty to be included.
const INCLUSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at a post when it races another transaction of the same account (sequence): the
/// member account is shared by the signer, the relayer (attestations, parent-height reports,
/// reserves snapshots) and operator commands.
const SEQUENCE_ATTEMPTS: u32 = 30;
/// Least pause between those attempts; up to as much again is added, varying with the clock, so
/// two senders on a fixed cadence do not keep colliding.
const SEQUENCE_RETRY: Duration = Duration::from_millis(250);
/// Posts `msg`, a fee-exempt duty of the member `key`, and waits for its block; retries a few
/// times on a refusal that passes by itself (a race with another transaction of the member's
/// account, which its relayer shares; the member's duty limit for the block).
/// Returns the transaction hash and height.
///
/// # Errors
/// Why it was not included, in words.
pub async fn post_duty(chain: &FerryClient, key: &ferry_types::AccountKey, msg: &Msg) -> Result<(String, u64), String> {
    let mut last = String::new();
    for _ in 0..SEQUENCE_ATTEMPTS {
        let tx = match Wallet::load(chain, key.clone()).await {
            Ok(mut wallet) => match wallet.sign_fee_exempt(std::slice::from_ref(msg)) {
                Ok(tx) => tx,
                Err(error) => return Err(format!("signing the transaction: {error}")),
            },
            Err(error) => return Err(format!("loading the member account: {error}")),
        };
        let (code, log) = match chain.broadcast_and_wait(tx, INCLUSION_TIMEOUT).await {
            Ok(included) if included.code == 0 => return Ok((included.hash.to_string(), included.height)),
            Ok(included) => (TxCode::from_value(included.code), included.log),
            Err(ClientError::Refused { code, log, .. }) => (code, log),
            // Accepted but never included: another transaction of this account (the member's
            // other daemon, an operator command sent through another node) took its sequence.
            // Signed again at the next sequence — at once when the chain shows it.
            Err(error @ (ClientError::Superseded { .. } | ClientError::Timeout(..))) => {
                last = error.to_string();
                continue;
            }
            Err(error) => return Err(error.to_string()),
        };
        last = format!("the chain refused it ({}): {log}", code.map_or("unknown code", TxCode::name));
        if !code.is_some_and(TxCode::passes_by_itself) {
            break;
        }
        tokio::time::sleep(retry_pause()).await;
    }
    Err(last)
}

/// [`SEQUENCE_RETRY`] plus a part of it that varies with the clock's sub-second digits.
fn retry_pause() -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    SEQUENCE_RETRY + SEQUENCE_RETRY.mul_f64(f64::from(nanos % 1_000) / 1_000.0)
}
