//! Response codes of CheckTx and FinalizeBlock: one code per reason a transaction is refused.
//!
//! These numbers are part of Ferry's public interface (the CLI, relayers and tests match on
//! them); never renumber an existing code.

use serde::{Deserialize, Serialize};

/// Why a transaction was refused, as an ABCI response code (`0` is success).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum TxCode {
    /// Accepted.
    Ok = 0,
    /// The bytes are not a `TxRaw` holding a well-formed Ferry transaction.
    Decode = 1,
    /// The transaction is larger than the `max_tx_bytes` parameter.
    TooLarge = 2,
    /// A message is malformed: unknown type, bad address, bad or zero amount, duplicate denom.
    InvalidMessage = 3,
    /// The transaction is bound to another chain id.
    WrongChainId = 4,
    /// The signer has no account on the chain.
    UnknownAccount = 5,
    /// The sequence was already used.
    StaleSequence = 6,
    /// The sequence is ahead of the account's next sequence.
    FutureSequence = 7,
    /// The signature does not verify over the received body and auth-info bytes.
    InvalidSignature = 8,
    /// The fee is below the minimum for its denomination, or is in a denom with no fee schedule.
    InsufficientFee = 9,
    /// The signer cannot pay the fee plus the amounts sent.
    InsufficientFunds = 10,
    /// A message names a sender other than the transaction's signer.
    Unauthorized = 11,
    /// A balance would exceed 2^128 - 1.
    Overflow = 12,
    /// The bridge is paused (reserves invariant violated, or paused by a federation vote): no
    /// mints, withdrawals or signature submissions until it resumes. Relayers retry later.
    BridgePaused = 13,
    /// A withdrawal the bridge's rules refuse: an asset without a configured limit, an amount
    /// below the minimum or above the window cap, a destination chain that is not configured.
    WithdrawalRefused = 14,
    /// A BLS signature share or a Bitcoin input signature does not verify (the log names which).
    InvalidReleaseSignature = 15,
    /// The batch named does not exist, is not in a state that accepts the message (a release
    /// attested before the batch is signed), or the message contradicts it (another txid).
    BadBatch = 16,
    /// A federation member sent more duty messages in this block than `max_duty_msgs_per_block`
    /// allows (its sequence is used; the messages are not executed; send them in a later block).
    DutyLimit = 17,
    /// A reserves snapshot that does not answer the open round: another round, a parent height
    /// other than the round's target, or not exactly the assets the round asks for.
    ReservesRound = 18,
    /// A federation change the chain's state refuses: a proposal while a key generation runs, a
    /// proposed member without registered keys, a DKG message for another session, attempt or
    /// phase, or one that does not verify (the log names which).
    FederationChange = 19,
}

impl TxCode {
    /// All codes, in numeric order.
    pub const ALL: [TxCode; 20] = [
        TxCode::Ok,
        TxCode::Decode,
        TxCode::TooLarge,
        TxCode::InvalidMessage,
        TxCode::WrongChainId,
        TxCode::UnknownAccount,
        TxCode::StaleSequence,
        TxCode::FutureSequence,
        TxCode::InvalidSignature,
        TxCode::InsufficientFee,
        TxCode::InsufficientFunds,
        TxCode::Unauthorized,
        TxCode::Overflow,
        TxCode::BridgePaused,
        TxCode::WithdrawalRefused,
        TxCode::InvalidReleaseSignature,
        TxCode::BadBatch,
        TxCode::DutyLimit,
        TxCode::ReservesRound,
        TxCode::FederationChange,
    ];

    /// Whether a refusal with this code passes by itself, so the same messages may be sent
    /// again later: a sequence race with another transaction of the account (`StaleSequence`,
    /// `FutureSequence`), a paused bridge (until the federation resumes it), or a member's duty
    /// limit for the block (`DutyLimit`). Every other refusal is final for those messages.
    pub const fn passes_by_itself(self) -> bool {
        matches!(self, TxCode::StaleSequence | TxCode::FutureSequence | TxCode::BridgePaused | TxCode::DutyLimit)
    }

    /// The numeric ABCI code.
    pub const fn value(self) -> u32 {
        self as u32
    }

    /// The code for a numeric value, if it is one of Ferry's.
    pub fn from_value(value: u32) -> Option<TxCode> {
        TxCode::ALL.into_iter().find(|code| code.value() == value)
    }

    /// A stable snake_case name, used as a metrics label and in logs.
    pub const fn name(self) -> &'static str {
        match self {
            TxCode::Ok => "ok",
            TxCode::Decode => "decode",
            TxCode::TooLarge => "too_large",
            TxCode::InvalidMessage => "invalid_message",
            TxCode::WrongChainId => "wrong_chain_id",
            TxCode::UnknownAccount => "unknown_account",
            TxCode::StaleSequence => "stale_sequence",
            TxCode::FutureSequence => "future_sequence",
            TxCode::InvalidSignature => "invalid_signature",
            TxCode::InsufficientFee => "insufficient_fee",
            TxCode::InsufficientFunds => "insufficient_funds",
            TxCode::Unauthorized => "unauthorized",
            TxCode::Overflow => "overflow",
            TxCode::BridgePaused => "bridge_paused",
            TxCode::WithdrawalRefused => "withdrawal_refused",
            TxCode::InvalidReleaseSignature => "invalid_release_signature",
            TxCode::BadBatch => "bad_batch",
            TxCode::DutyLimit => "duty_limit",
            TxCode::ReservesRound => "reserves_round",
            TxCode::FederationChange => "federation_change",
        }
    }
}

/// The ABCI codespace Ferry's codes live in.
pub const CODESPACE: &str = "ferry";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for code in TxCode::ALL {
            assert_eq!(TxCode::from_value(code.value()), Some(code));
            assert!(names.insert(code.name()));
        }
        assert_eq!(TxCode::from_value(99), None);
    }
}
