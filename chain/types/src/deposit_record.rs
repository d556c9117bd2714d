//! The chain's record of one deposit id — what `/deposit/<id>` answers and the state holds under
//! `deposit/<id>`: its status, each member's attestation, the facts minted, and an unattributed
//! payment's votes and resolution. Read by the CLI, the devnet and the tests; written only by the
//! state machine (`ferry_app::bridge`, `ferry_app::unattributed`).
//!
//! The state stores these in its binary encoding (BCS), where the order of the fields is the
//! encoding: reordering them changes the state's bytes and its app hash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::amount::Amount;
use crate::denom::Denom;
use crate::deposit::{DepositFacts, DepositId, Unattributed};
use crate::msg::Resolution;
use crate::query::WithdrawalId;

/// Where a deposit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositStatus {
    /// Attested by fewer than `attest_quorum` members with identical facts.
    Pending,
    /// Minted; never again.
    Minted,
    /// Below its asset's `min_deposit`: never minted, never spent, counted in the ledger's
    /// `below_minimum`.
    BelowMinimum,
    /// An ERC-20 token the chain does not list (no withdrawal limit, so it could never be
    /// withdrawn): never minted, and no ledger (no denomination) is created for it. The vault keeps
    /// it.
    Unlisted,
    /// A Bitcoin payment to the peg naming no account (no valid memo): held in the reserves,
    /// minted to nobody until members resolve it (`ferry_app::unattributed`).
    Unattributed,
}

/// A member that attested facts contradicting its own earlier attestation or the minted facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The member.
    pub member: Address,
    /// The first conflicting facts it attested.
    pub facts: DepositFacts,
    /// When that was recorded.
    pub height: u64,
    /// How many conflicting attestations it made.
    pub count: u32,
}

/// Everything the chain knows about one deposit id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositRecord {
    /// The id.
    pub id: DepositId,
    /// Pending or minted.
    pub status: DepositStatus,
    /// Each member's (first) attestation, as the hex digest of the facts it attested.
    pub attestations: BTreeMap<Address, String>,
    /// The distinct facts attested, by hex digest.
    pub candidates: BTreeMap<String, DepositFacts>,
    /// Members that attested conflicting facts (one entry per member).
    pub conflicts: Vec<Conflict>,
    /// The facts minted, once minted.
    pub minted: Option<DepositFacts>,
    /// What the recipient was credited: the amount less what it prepaid for its spending.
    #[serde(default)]
    pub minted_amount: Option<Amount>,
    /// Bitcoin: what it prepaid into the fee pool.
    #[serde(default)]
    pub spend_fee: Option<Amount>,
    /// Height of the first attestation.
    pub first_attested_height: u64,
    /// Height of the mint.
    pub minted_height: Option<u64>,
    /// The member whose attestation opened the record: it counts against that member's open
    /// records (`params.max_open_deposits_per_member`) until the record is decided.
    #[serde(default)]
    pub opened_by: Option<Address>,
    /// An unattributed payment's reason, votes and resolution.
    #[serde(default)]
    pub unattributed: Option<UnattributedState>,
}

/// An unattributed payment's state, in its deposit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnattributedState {
    /// Why it names no account.
    pub reason: Unattributed,
    /// Its denomination.
    #[serde(default = "Denom::sat")]
    pub asset: Denom,
    /// What it paid, in the asset's base unit.
    pub amount: Amount,
    /// When a quorum recorded it.
    pub height: u64,
    /// Each member's latest vote.
    #[serde(default)]
    pub votes: BTreeMap<Address, Resolution>,
    /// What a quorum decided, once it did.
    #[serde(default)]
    pub resolved: Option<Resolved>,
}

/// How an unattributed payment was resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// What the quorum voted.
    pub resolution: Resolution,
    /// When.
    pub height: u64,
    /// Credit: what the account received (the amount less `spend_fee`).
    #[serde(default)]
    pub credited: Option<Amount>,
    /// Credit: what it prepaid into the fee pool for its own spending.
    #[serde(default)]
    pub spend_fee: Option<Amount>,
    /// Refund: the withdrawal paying it back.
    #[serde(default)]
    pub withdrawal: Option<WithdrawalId>,
}
