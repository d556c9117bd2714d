//! The delivery core: decides, for one batch, what the delivery loop does next. Pure.
//!
//! It is handed the batch as the sidechain reports it, this relayer's stored progress, and what
//! the shell learned from the parent chain this round (the tip, the canonical hash at the height
//! the release was recorded in, and — once asked for — where the release transaction is). It
//! answers with one [`Decision`]; the shell carries it out, records the outcome, and asks again
//! with the new facts (Malachite's "effects, resumed with their results"), until the decision is
//! one that waits for the world to move.
//!
//! Rules it implements:
//! - Nothing is done for a batch still collecting signatures; a settled batch is only recorded.
//! - A release is attested only once its block is `required` deep **and** that block is still the
//!   canonical one at its height; otherwise the recorded inclusion is dropped and the release is
//!   looked for (and, if absent, delivered) again.
//! - Whatever this member already attested on the sidechain is final there: once the chain shows
//!   it, nothing more is sent.
//! - What is attested is the transaction found in the block (on Ethereum: the one that emitted the
//!   vault's `Released` log), not the one this relayer sent, so every member attests the same hash
//!   whoever delivered.

use std::fmt;
use std::str::FromStr;

use ferry_types::query::BatchStatus;

/// Where a release stands in this relayer's store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReleaseStatus {
    /// Intent recorded: the release is being handed to the parent chain (outcome unknown).
    Delivering,
    /// Handed to the parent chain, or found there; not yet `confirmations` deep.
    Broadcast,
    /// Its block is deep enough and canonical.
    Confirmed,
    /// Intent recorded: `MsgAttestRelease` is being sent (outcome unknown).
    Attesting,
    /// The sidechain holds this member's attestation.
    Attested,
    /// The sidechain refused the attestation for good.
    Refused,
    /// The sidechain settled the batch.
    Settled,
}

impl ReleaseStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ReleaseStatus; 7] = [
        ReleaseStatus::Delivering,
        ReleaseStatus::Broadcast,
        ReleaseStatus::Confirmed,
        ReleaseStatus::Attesting,
        ReleaseStatus::Attested,
        ReleaseStatus::Refused,
        ReleaseStatus::Settled,
    ];

    /// The name stored in the `status` column (also a metrics label value).
    pub const fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Delivering => "delivering",
            ReleaseStatus::Broadcast => "broadcast",
            ReleaseStatus::Confirmed => "confirmed",
            ReleaseStatus::Attesting => "attesting",
            ReleaseStatus::Attested => "attested",
            ReleaseStatus::Refused => "refused",
            ReleaseStatus::Settled => "settled",
        }
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not a release status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a release status")]
pub struct UnknownReleaseStatus(pub String);

impl FromStr for ReleaseStatus {
    type Err = UnknownReleaseStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ReleaseStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownReleaseStatus(text.to_owned()))
    }
}

/// A release transaction in a parent-chain block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The transaction: a Bitcoin txid, or the hash (`0x…`) of the Ethereum transaction that
    /// emitted the vault's `Released` log. What is attested.
    pub parent_tx: String,
    /// The block's height.
    pub block_height: u64,
    /// The block's hash.
    pub block_hash: String,
}

/// This relayer's stored progress on a batch, as far as decisions go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Where it stands.
    pub status: ReleaseStatus,
    /// The block holding the release, as last seen.
    pub inclusion: Option<Inclusion>,
}

/// The batch as the sidechain reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SidechainBatch<'a> {
    /// Signing, signed or released (settled).
    pub status: BatchStatus,
    /// The release transaction this member attested, as the chain records it.
    pub attested: Option<&'a str>,
}

/// Where the release transaction is on its parent chain, once the shell looked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Located {
    /// Not looked for yet this round.
    NotLooked,
    /// Neither in the best chain nor waiting in the node's mempool: it must be (re)delivered.
    Absent,
    /// Known to the node, not yet in a block.
    Pending,
    /// In a block of the best chain.
    Included(Inclusion),
}

/// What the shell learned from the parent chain this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentChainView {
    /// The tip's height.
    pub tip: u64,
    /// The canonical block hash at the recorded inclusion's height (`None` above the tip or
    /// without a recorded inclusion).
    pub canonical_hash: Option<String>,
    /// Where the release is, if looked for.
    pub located: Located,
}

/// What this relayer may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// A federation member: attests releases. (`--deliver-only` relayers do not.)
    pub attests: bool,
    /// It can hand this release to the parent chain (on Ethereum: it has a funded wallet).
    pub delivers: bool,
}

/// What to do next about a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: the batch is still collecting signatures, or it is settled and so recorded.
    Skip,
    /// The sidechain settled the batch: record it.
    Settle,
    /// The sidechain already holds this member's attestation of `parent_tx`: record it.
    RecordAttested {
        /// What the chain says this member attested.
        parent_tx: String,
    },
    /// The recorded block left the best chain: forget the inclusion, then look again.
    Reorged {
        /// The inclusion recorded.
        inclusion: Inclusion,
        /// The hash now canonical at its height, if any.
        canonical: Option<String>,
    },
    /// In a canonical block, not deep enough yet.
    Wait {
        /// Confirmations so far.
        confirmations: u64,
        /// Confirmations required.
        required: u32,
    },
    /// Deep enough and canonical: record it confirmed.
    Confirm,
    /// Send (or, after a restart, re-send) `MsgAttestRelease{batch, parent_tx}`.
    Attest {
        /// The release transaction to attest.
        parent_tx: String,
    },
    /// Find the release on the parent chain.
    Locate,
    /// Found in a block: record the inclusion.
    Include(Inclusion),
    /// Known to the parent chain's node, waiting for a block.
    AwaitInclusion,
    /// Not on the parent chain: hand it over.
    Deliver,
    /// Not on the parent chain, and this relayer cannot deliver it: wait for one that can.
    AwaitDelivery,
    /// This relayer's part is done; the quorum is the other members' to complete.
    AwaitQuorum,
}

/// Decides the next step for one batch. `required` is the confirmations the release needs.
pub fn decide(
    batch: SidechainBatch<'_>,
    progress: Option<&Progress>,
    parent: &ParentChainView,
    required: u32,
    role: Role,
) -> Decision {
    let status = progress.map(|progress| progress.status);
    match batch.status {
        // Never fully signed: nothing was or will be delivered.
        BatchStatus::Signing | BatchStatus::Aborted => return Decision::Skip,
        BatchStatus::Released if status == Some(ReleaseStatus::Settled) => return Decision::Skip,
        BatchStatus::Released => return Decision::Settle,
        BatchStatus::Signed => {}
    }
    if matches!(status, Some(ReleaseStatus::Attested | ReleaseStatus::Refused | ReleaseStatus::Settled)) {
        return Decision::AwaitQuorum;
    }
    if role.attests
        && let Some(parent_tx) = batch.attested
    {
        return Decision::RecordAttested { parent_tx: parent_tx.to_owned() };
    }
    if let Some(inclusion) = progress.and_then(|progress| progress.inclusion.as_ref()) {
        if parent.canonical_hash.as_deref() != Some(inclusion.block_hash.as_str()) {
            return Decision::Reorged { inclusion: inclusion.clone(), canonical: parent.canonical_hash.clone() };
        }
        let confirmations =
            if inclusion.block_height <= parent.tip { parent.tip - inclusion.block_height + 1 } else { 0 };
        if confirmations < u64::from(required) {
            return Decision::Wait { confirmations, required };
        }
        if matches!(status, Some(ReleaseStatus::Delivering | ReleaseStatus::Broadcast)) {
            return Decision::Confirm;
        }
        if !role.attests {
            return Decision::AwaitQuorum;
        }
        return Decision::Attest { parent_tx: inclusion.parent_tx.clone() };
    }
    match &parent.located {
        Located::NotLooked => Decision::Locate,
        Located::Included(inclusion) => Decision::Include(inclusion.clone()),
        Located::Pending => Decision::AwaitInclusion,
        Located::Absent if role.delivers => Decision::Deliver,
        Located::Absent => Decision::AwaitDelivery,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBER: Role = Role { attests: true, delivers: true };

    fn signed(attested: Option<&str>) -> SidechainBatch<'_> {
        SidechainBatch { status: BatchStatus::Signed, attested }
    }

    fn inclusion(tx: &str, height: u64, hash: &str) -> Inclusion {
        Inclusion { parent_tx: tx.to_owned(), block_height: height, block_hash: hash.to_owned() }
    }

    fn progress(status: ReleaseStatus, inclusion: Option<Inclusion>) -> Progress {
        Progress { status, inclusion }
    }

    fn view(tip: u64, canonical: Option<&str>, located: Located) -> ParentChainView {
        ParentChainView { tip, canonical_hash: canonical.map(str::to_owned), located }
    }

    /// Drives the decisions the way the shell does, for a parent chain given as a list of
    /// canonical block hashes (`chain[h]` is the hash at height `h`) and a release found at
    /// `found` (`None`: absent). Returns the decisions taken until one waits.
    fn run(
        mut stored: Option<Progress>,
        chain: &[&str],
        found: Option<Inclusion>,
        attested: Option<&str>,
    ) -> Vec<Decision> {
        let tip = chain.len() as u64 - 1;
        let mut located = Located::NotLooked;
        let mut decisions = Vec::new();
        for _ in 0..10 {
            let canonical = stored
                .as_ref()
                .and_then(|p| p.inclusion.as_ref())
                .and_then(|i| chain.get(usize::try_from(i.block_height).unwrap_or(usize::MAX)))
                .map(|h| (*h).to_owned());
            let parent = ParentChainView { tip, canonical_hash: canonical, located: located.clone() };
            let decision = decide(signed(attested), stored.as_ref(), &parent, 2, MEMBER);
            decisions.push(decision.clone());
            match decision {
                Decision::Locate => {
                    located = found.clone().map_or(Located::Absent, Located::Included);
                }
                Decision::Include(inclusion) => {
                    stored = Some(progress(ReleaseStatus::Broadcast, Some(inclusion)));
                }
                Decision::Reorged { .. } => {
                    stored = Some(progress(ReleaseStatus::Broadcast, None));
                    located = Located::NotLooked;
                }
                Decision::Confirm => {
                    stored = stored.map(|p| progress(ReleaseStatus::Confirmed, p.inclusion));
                }
                _ => break,
            }
        }
        decisions
    }

    #[test]
    fn nothing_is_done_for_a_batch_still_signing_whatever_the_store_says() {
        let signing = SidechainBatch { status: BatchStatus::Signing, attested: None };
        let parent = view(10, None, Located::NotLooked);
        assert_eq!(decide(signing, None, &parent, 2, MEMBER), Decision::Skip);
    }

    #[test]
    fn settled_batch_is_recorded_once_from_any_status() {
        let released = SidechainBatch { status: BatchStatus::Released, attested: Some("aa") };
        let parent = view(10, None, Located::NotLooked);
        for status in ReleaseStatus::ALL {
            let stored = progress(status, None);
            let expected = if status == ReleaseStatus::Settled { Decision::Skip } else { Decision::Settle };
            assert_eq!(decide(released, Some(&stored), &parent, 2, MEMBER), expected, "{status}");
        }
        assert_eq!(decide(released, None, &parent, 2, MEMBER), Decision::Settle);
    }

    #[test]
    fn signed_batch_absent_from_the_parent_chain_is_located_then_delivered() {
        assert_eq!(run(None, &["g", "a1", "a2"], None, None), vec![Decision::Locate, Decision::Deliver]);
    }

    #[test]
    fn relayer_without_a_wallet_waits_for_another_to_deliver() {
        let parent = view(5, None, Located::Absent);
        let role = Role { attests: true, delivers: false };
        assert_eq!(decide(signed(None), None, &parent, 2, role), Decision::AwaitDelivery);
    }

    #[test]
    fn pending_release_is_neither_resent_nor_attested() {
        let stored = progress(ReleaseStatus::Broadcast, None);
        let parent = view(5, None, Located::Pending);
        assert_eq!(decide(signed(None), Some(&stored), &parent, 2, MEMBER), Decision::AwaitInclusion);
    }

    #[test]
    fn release_is_attested_at_exactly_the_required_depth_and_not_before() {
        let found = inclusion("tx", 2, "a2");
        // Tip 2: one confirmation of two.
        assert_eq!(
            run(None, &["g", "a1", "a2"], Some(found.clone()), None),
            vec![Decision::Locate, Decision::Include(found.clone()), Decision::Wait { confirmations: 1, required: 2 }]
        );
        // Tip 3: deep enough: confirm, then attest what the block holds.
        assert_eq!(
            run(None, &["g", "a1", "a2", "a3"], Some(found.clone()), None),
            vec![
                Decision::Locate,
                Decision::Include(found),
                Decision::Confirm,
                Decision::Attest { parent_tx: "tx".to_owned() }
            ]
        );
    }

    #[test]
    fn release_reorged_out_before_attesting_is_looked_for_and_redelivered() {
        let stored = progress(ReleaseStatus::Confirmed, Some(inclusion("tx", 2, "a2")));
        // A competing branch replaced block 2 and does not hold the release.
        let decisions = run(Some(stored), &["g", "a1", "b2", "b3", "b4"], None, None);
        assert_eq!(
            decisions,
            vec![
                Decision::Reorged { inclusion: inclusion("tx", 2, "a2"), canonical: Some("b2".to_owned()) },
                Decision::Locate,
                Decision::Deliver
            ]
        );
    }

    #[test]
    fn release_reincluded_in_another_block_counts_confirmations_from_there() {
        let stored = progress(ReleaseStatus::Broadcast, Some(inclusion("tx", 2, "a2")));
        let moved = inclusion("tx", 3, "b3");
        let decisions = run(Some(stored), &["g", "a1", "b2", "b3"], Some(moved.clone()), None);
        assert_eq!(
            decisions,
            vec![
                Decision::Reorged { inclusion: inclusion("tx", 2, "a2"), canonical: Some("b2".to_owned()) },
                Decision::Locate,
                Decision::Include(moved),
                Decision::Wait { confirmations: 1, required: 2 }
            ]
        );
    }

    #[test]
    fn block_above_a_shortened_tip_is_a_reorg() {
        let stored = progress(ReleaseStatus::Broadcast, Some(inclusion("tx", 4, "a4")));
        let parent = view(3, None, Located::NotLooked);
        assert!(matches!(
            decide(signed(None), Some(&stored), &parent, 2, MEMBER),
            Decision::Reorged { canonical: None, .. }
        ));
    }

    /// Another relayer's transaction paid the batch; this one's own (still in the store as
    /// `broadcast`, no block) lost. The winner's transaction is what gets attested.
    #[test]
    fn another_relayers_delivery_is_attested_not_ours() {
        let stored = progress(ReleaseStatus::Broadcast, None);
        let theirs = inclusion("0xtheirs", 1, "a1");
        let decisions = run(Some(stored), &["g", "a1", "a2"], Some(theirs.clone()), None);
        assert_eq!(
            decisions,
            vec![
                Decision::Locate,
                Decision::Include(theirs),
                Decision::Confirm,
                Decision::Attest { parent_tx: "0xtheirs".to_owned() }
            ]
        );
    }

    #[test]
    fn interrupted_attestation_is_resent_until_the_chain_shows_it() {
        let stored = progress(ReleaseStatus::Attesting, Some(inclusion("tx", 1, "a1")));
        let parent = view(5, Some("a1"), Located::NotLooked);
        assert_eq!(
            decide(signed(None), Some(&stored), &parent, 2, MEMBER),
            Decision::Attest { parent_tx: "tx".to_owned() }
        );
        assert_eq!(
            decide(signed(Some("tx")), Some(&stored), &parent, 2, MEMBER),
            Decision::RecordAttested { parent_tx: "tx".to_owned() }
        );
    }

    #[test]
    fn attested_or_refused_members_and_confirmed_deliver_only_relayers_only_wait() {
        let parent = view(5, Some("a1"), Located::NotLooked);
        for status in [ReleaseStatus::Attested, ReleaseStatus::Refused] {
            let stored = progress(status, Some(inclusion("tx", 1, "a1")));
            assert_eq!(decide(signed(None), Some(&stored), &parent, 2, MEMBER), Decision::AwaitQuorum, "{status}");
        }
        let deliver_only = Role { attests: false, delivers: true };
        let stored = progress(ReleaseStatus::Confirmed, Some(inclusion("tx", 1, "a1")));
        assert_eq!(decide(signed(Some("tx")), Some(&stored), &parent, 2, deliver_only), Decision::AwaitQuorum);
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in ReleaseStatus::ALL {
            assert_eq!(status.as_str().parse::<ReleaseStatus>(), Ok(status));
        }
        assert!("paid".parse::<ReleaseStatus>().is_err());
    }
}
