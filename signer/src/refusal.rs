//! Why the signer refuses to sign: a [`Reason`] from a fixed set (it labels metrics and audit
//! records) and a [`Refusal`] naming what was wrong. Both the rebuild of a payload
//! ([`crate::rebuild`]) and the decision ([`crate::policy`]) refuse with these.

use std::fmt;

use ferry_types::query::WithdrawalId;

/// Why a batch was refused: a fixed set, so it can label metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The chain's payload (or transaction, txid, sighashes, chain id, vault, epoch, nonce,
    /// token) is not what this signer rebuilds.
    PayloadMismatch,
    /// An amount differs from the burn it pays: item amount, amount paid, batch total, asset of
    /// the burn, or the Bitcoin miner fee.
    AmountMismatch,
    /// A destination differs from the burn's, does not parse for the parent chain, is the peg
    /// itself, or is on the local denylist.
    Destination,
    /// An item names a withdrawal the chain has no record of, one recorded in another batch, or
    /// one listed twice.
    UnknownWithdrawal,
    /// No items, or more than the local maximum.
    ItemCount,
    /// Over the local rolling-window cap, or no local cap for the asset.
    Cap,
    /// A different payload was already signed for the same (epoch, nonce).
    DoubleSign,
    /// A Bitcoin release's change does not go to the peg this member's keys make.
    ChangeAddress,
    /// A Bitcoin release's transaction spends other inputs than its plan.
    Inputs,
    /// This signer is not set up for the batch's parent chain (no local chain id and vault, or
    /// no Bitcoin network).
    Unsupported,
    /// A Bitcoin release nodes would not relay (Bitcoin's standardness policy, checked with every
    /// signature at its longest): signing it could never pay anyone.
    NonStandard,
    /// A Bitcoin release's fee rate is outside the chain's bounds, or an item's share of the fee
    /// is above the budget (`max_fee`) its burn gave.
    Fee,
    /// A listing change (the vault's token allowlist) this member did not propose on the chain.
    Listing,
    /// A rotation or migration that is not the hand-over to the federation this signer rebuilt
    /// from a completed key generation (or no such federation).
    HandOver,
    /// A fact the batch would be signed on (the batch, a withdrawal record, the chain's
    /// parameters) could not be proven: no endpoint's answer verified against the light
    /// client's headers. Nothing is signed until it is; the batch is not voted down for it.
    Unverified,
}

impl Reason {
    /// Every reason, in label order of the metric series.
    pub const ALL: [Reason; 15] = [
        Reason::PayloadMismatch,
        Reason::AmountMismatch,
        Reason::Destination,
        Reason::UnknownWithdrawal,
        Reason::ItemCount,
        Reason::Cap,
        Reason::DoubleSign,
        Reason::ChangeAddress,
        Reason::Inputs,
        Reason::Unsupported,
        Reason::NonStandard,
        Reason::Fee,
        Reason::Listing,
        Reason::HandOver,
        Reason::Unverified,
    ];

    /// The metric label and audit tag.
    pub const fn label(self) -> &'static str {
        match self {
            Reason::PayloadMismatch => "payload_mismatch",
            Reason::AmountMismatch => "amount_mismatch",
            Reason::Destination => "destination",
            Reason::UnknownWithdrawal => "unknown_withdrawal",
            Reason::ItemCount => "item_count",
            Reason::Cap => "cap",
            Reason::DoubleSign => "double_sign",
            Reason::ChangeAddress => "change_address",
            Reason::Inputs => "inputs",
            Reason::Unsupported => "unsupported",
            Reason::NonStandard => "non_standard",
            Reason::Fee => "fee",
            Reason::Listing => "listing",
            Reason::HandOver => "hand_over",
            Reason::Unverified => "unverified",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A refusal: its reason and a message naming what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Refusal {
    /// The reason.
    pub reason: Reason,
    /// What was wrong, naming the item, field and values.
    pub message: String,
    /// The withdrawals refused, when the refusal is about them rather than the batch (a
    /// denylisted destination): the signer votes to abort the batch naming them, so the chain
    /// holds them and pays the others.
    pub items: Vec<WithdrawalId>,
}

impl Refusal {
    /// A refusal for `reason`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Refusal { reason, message: message.into(), items: Vec::new() }
    }
}
