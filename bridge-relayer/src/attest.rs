//! Sending a federation member's attestations (`MsgAttestDeposit`, `MsgAttestRelease`) to the
//! sidechain, and reading the chain's answer as what the relayer should do next.
//!
//! Both watchers and the delivery loop sign with the same member account, whose sequence allows
//! one transaction at a time, so every attestation goes through one [`Attester`] and its lock.
//! The answer is classified once, here ([`refusal_is_transient`], after
//! [`TxCode::passes_by_itself`]): a sequence race, a paused bridge or the member's duty limit for
//! the block means "send again later"; any other refusal is the chain's final word. This module
//! records nothing: the callers store intent and outcome.

use std::time::Duration;

use ferry_client::{ClientError, FerryClient, Wallet};
use ferry_types::{AccountKey, Address, Msg, TxCode};
use tokio::sync::Mutex;

/// How long to wait for an attestation to be included.
const INCLUSION_TIMEOUT: Duration = Duration::from_secs(30);

/// What became of an attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttestOutcome {
    /// Included and executed successfully.
    Accepted {
        /// The sidechain transaction hash.
        tx: String,
        /// The block holding it.
        height: u64,
    },
    /// Refused for a reason that passes (a sequence race, a paused bridge): send it again later.
    Deferred {
        /// The chain's code.
        code: Option<TxCode>,
        /// The chain's reason.
        log: String,
    },
    /// Refused for good.
    Refused {
        /// The chain's code.
        code: Option<TxCode>,
        /// The chain's reason.
        log: String,
    },
    /// No answer (node unreachable, not included in time): the outcome is unknown; send again.
    Unconfirmed(String),
}

impl AttestOutcome {
    /// The metrics label of this outcome (`accepted`, `deferred`, `refused`, `error`).
    pub const fn label(&self) -> &'static str {
        match self {
            AttestOutcome::Accepted { .. } => "accepted",
            AttestOutcome::Deferred { .. } => "deferred",
            AttestOutcome::Refused { .. } => "refused",
            AttestOutcome::Unconfirmed(_) => "error",
        }
    }
}

/// Whether a refusal with `code` passes by itself ([`TxCode::passes_by_itself`]), so the
/// attestation is sent again later rather than recorded as refused.
pub fn refusal_is_transient(code: Option<TxCode>) -> bool {
    code.is_some_and(TxCode::passes_by_itself)
}

fn refusal(code: Option<TxCode>, log: String) -> AttestOutcome {
    if refusal_is_transient(code) {
        AttestOutcome::Deferred { code, log }
    } else {
        AttestOutcome::Refused { code, log }
    }
}

/// Signs and sends one member's attestations, one at a time.
pub struct Attester {
    chain: FerryClient,
    member: AccountKey,
    serial: Mutex<()>,
}

impl Attester {
    /// An attester signing with `member` through `chain`.
    pub fn new(chain: FerryClient, member: AccountKey) -> Self {
        Attester { chain, member, serial: Mutex::new(()) }
    }

    /// The member's sidechain address (the `attester` of every message sent).
    pub fn address(&self) -> Address {
        self.member.address()
    }

    /// Signs `msg` (fee-exempt), broadcasts it and waits for its inclusion. Never fails: a
    /// failure is an outcome.
    pub async fn send(&self, msg: Msg) -> AttestOutcome {
        self.send_all(std::slice::from_ref(&msg)).await
    }

    /// As [`Attester::send`] for several messages in one transaction: the chain executes them all
    /// or none, so the outcome is theirs together.
    pub async fn send_all(&self, msgs: &[Msg]) -> AttestOutcome {
        let _serial = self.serial.lock().await;
        let mut wallet = match Wallet::load(&self.chain, self.member.clone()).await {
            Ok(wallet) => wallet,
            Err(error) => return AttestOutcome::Unconfirmed(format!("loading the member account: {error}")),
        };
        let tx = match wallet.sign_fee_exempt(msgs) {
            Ok(tx) => tx,
            Err(error) => return AttestOutcome::Unconfirmed(format!("signing: {error}")),
        };
        match self.chain.broadcast_and_wait(tx, INCLUSION_TIMEOUT).await {
            Ok(included) if included.code == 0 => {
                AttestOutcome::Accepted { tx: included.hash.to_string(), height: included.height }
            }
            Ok(included) => refusal(TxCode::from_value(included.code), included.log),
            Err(ClientError::Refused { code, log, .. }) => refusal(code, log),
            Err(error) => AttestOutcome::Unconfirmed(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_bridge_sequence_races_and_duty_limits_are_retried_everything_else_is_final() {
        let transient = [TxCode::BridgePaused, TxCode::StaleSequence, TxCode::FutureSequence, TxCode::DutyLimit];
        for code in transient {
            assert!(refusal_is_transient(Some(code)), "{code:?}");
            assert_eq!(refusal(Some(code), String::new()).label(), "deferred");
        }
        for code in TxCode::ALL.into_iter().filter(|code| !transient.contains(code)) {
            assert!(!refusal_is_transient(Some(code)), "{code:?}");
        }
        // A code that is not Ferry's is nothing the relayer can wait out.
        assert_eq!(refusal(None, "?".to_owned()).label(), "refused");
    }
}
