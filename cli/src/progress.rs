//! Where a deposit or a withdrawal stands, computed from the chain's records and what the
//! parent chain says (confirmations). Pure: the caller fetches, this module only decides what
//! the user sees, so every stage is unit-tested.

use ferry_types::deposit_record::{DepositRecord, DepositStatus, UnattributedState};
use ferry_types::msg::Resolution;
use ferry_types::query::{BatchRelease, BatchView, WithdrawalStatus, WithdrawalView};
use ferry_types::release::fee::FeeRate;
use ferry_types::{Amount, Denom, DepositId};
use serde::Serialize;

use crate::units;

/// A deposit's stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositStage {
    /// Neither the parent chain (as far as asked) nor the chain know it yet.
    Unseen,
    /// In the parent chain, gathering confirmations.
    Confirming,
    /// Attested by some members, short of the quorum.
    Attesting,
    /// Minted on the sidechain.
    Minted,
    /// Below the chain's minimum deposit for its asset: never minted (reported by `ferry reserves`).
    BelowMinimum,
    /// A token the chain does not list (no withdrawal limit): never minted.
    Unlisted,
    /// A payment to the peg naming no account (no valid memo): held, minted to nobody until a
    /// member quorum credits or refunds it.
    Unattributed,
    /// An unattributed payment a member quorum resolved: credited to an account or refunded.
    Resolved,
}

/// A deposit's progress: parent confirmations k/N, attestations q/Q, minted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DepositProgress {
    /// The deposit.
    pub id: DepositId,
    /// Where it stands.
    pub stage: DepositStage,
    /// Parent-chain confirmations, when known.
    pub confirmations: Option<u64>,
    /// Confirmations the relayers wait for.
    pub required_confirmations: u64,
    /// Members attesting the leading facts.
    pub attestations: u32,
    /// Attestations needed to mint.
    pub quorum: u32,
    /// Whether it is minted.
    pub minted: bool,
    /// The height of the mint.
    pub minted_height: Option<u64>,
    /// What is (or will be) minted, once attested: amount in base units.
    pub amount: Option<Amount>,
    /// Its denomination.
    pub asset: Option<String>,
    /// The sidechain account credited.
    pub recipient: Option<String>,
    /// An unattributed payment: what happened and what its owner can do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DepositProgress {
    /// Whether nothing more will happen.
    pub fn is_final(&self) -> bool {
        matches!(
            self.stage,
            DepositStage::Minted | DepositStage::BelowMinimum | DepositStage::Unlisted | DepositStage::Resolved
        )
    }

    /// One line for people.
    pub fn render(&self) -> String {
        let confirmations = match self.confirmations {
            Some(k) => format!("{}/{}", k.min(self.required_confirmations), self.required_confirmations),
            None if self.minted => format!("{0}/{0}", self.required_confirmations),
            None => format!("?/{}", self.required_confirmations),
        };
        let what = match (&self.amount, &self.asset) {
            (Some(amount), Some(asset)) => match asset.parse() {
                Ok(denom) => format!(" {}", units::display(*amount, &denom)),
                Err(_) => format!(" {amount} {asset}"),
            },
            _ => String::new(),
        };
        let minted = match (self.minted_height, self.stage) {
            (Some(height), _) => format!("minted at height {height}"),
            (None, DepositStage::BelowMinimum) => "not minted: below the chain's minimum deposit".to_owned(),
            (None, DepositStage::Unlisted) => "not minted: the chain does not list this token".to_owned(),
            (None, DepositStage::Unattributed | DepositStage::Resolved) => self.note.clone().unwrap_or_default(),
            (None, _) => "not minted".to_owned(),
        };
        format!(
            "{}{what}: {:?} — confirmations {confirmations}, attestations {}/{}, {minted}",
            self.id, self.stage, self.attestations, self.quorum
        )
    }
}

/// The progress of deposit `id` from its chain record (if any), the parent chain's
/// confirmations of it (if known), the confirmations relayers require and the quorum.
pub fn deposit_progress(
    id: DepositId,
    record: Option<&DepositRecord>,
    confirmations: Option<u64>,
    required_confirmations: u64,
    quorum: u32,
) -> DepositProgress {
    let minted = record.is_some_and(|r| r.status == DepositStatus::Minted);
    // The facts most members attested are the ones that can mint.
    let leading = record.and_then(|record| {
        record
            .candidates
            .iter()
            .map(|(digest, facts)| {
                let count = record.attestations.values().filter(|d| *d == digest).count();
                (count, facts)
            })
            .max_by_key(|(count, _)| *count)
    });
    let facts = record.and_then(|r| r.minted.as_ref()).or(leading.map(|(_, facts)| facts));
    let attestations = leading.map_or(0, |(count, _)| u32::try_from(count).unwrap_or(u32::MAX));
    let below_minimum = record.is_some_and(|r| r.status == DepositStatus::BelowMinimum);
    let unlisted = record.is_some_and(|r| r.status == DepositStatus::Unlisted);
    let unattributed = record.and_then(|r| r.unattributed.as_ref());
    let note = unattributed.map(unattributed_note);
    let stage = if let Some(state) = unattributed {
        if state.resolved.is_some() { DepositStage::Resolved } else { DepositStage::Unattributed }
    } else if minted {
        DepositStage::Minted
    } else if below_minimum {
        DepositStage::BelowMinimum
    } else if unlisted {
        DepositStage::Unlisted
    } else if attestations > 0 {
        DepositStage::Attesting
    } else if confirmations.is_some() {
        DepositStage::Confirming
    } else {
        DepositStage::Unseen
    };
    DepositProgress {
        id,
        stage,
        confirmations,
        required_confirmations,
        attestations: if minted { attestations.max(quorum) } else { attestations },
        quorum,
        minted,
        minted_height: record.and_then(|r| r.minted_height),
        amount: record.and_then(|r| r.minted_amount).or(facts.map(|f| f.amount)),
        asset: facts.map(|f| f.asset.to_string()),
        recipient: facts.filter(|f| f.unattributed.is_none()).map(|f| f.recipient.to_string()),
        note,
    }
}

/// What happened to an unattributed payment, and what its owner can do.
fn unattributed_note(state: &UnattributedState) -> String {
    let why = state.reason.description();
    match &state.resolved {
        None => format!(
            "not minted: {why}. The bridge holds it; the federation can credit it to your account or refund it to a Bitcoin address — ask its operators, proving the payment is yours (sign with the key that paid it). {} of them have voted so far",
            state.votes.len()
        ),
        Some(resolved) => match (&resolved.resolution, resolved.withdrawal, resolved.credited) {
            (Resolution::Credit { account }, _, Some(credited)) => {
                format!(
                    "{why}; the federation credited {} to {account} at height {}",
                    units::display(credited, &Denom::sat()),
                    resolved.height
                )
            }
            (Resolution::Refund { destination, .. }, Some(withdrawal), _) => format!(
                "{why}; the federation refunds it to {destination} as {withdrawal} (decided at height {}; follow it: ferry status {withdrawal})",
                resolved.height
            ),
            _ => format!("{why}; resolved at height {}", resolved.height),
        },
    }
}

/// A withdrawal's stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStage {
    /// Burned, waiting for a batch.
    Queued,
    /// In a batch gathering signatures.
    Batched,
    /// Signed; waiting for a relayer to broadcast the release.
    Signed,
    /// The release is on the parent chain, gathering confirmations and attestations.
    Broadcast,
    /// Settled: the parent chain paid the destination.
    Released,
    /// Held: enough members refused to pay it that its batch was aborted; a member quorum
    /// refunds it.
    Held,
    /// Refunded to the sender's sidechain balance (after it was held).
    Refunded,
}

/// A withdrawal's progress: queued → batched → signatures t/T → broadcast → released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WithdrawalProgress {
    /// The withdrawal id.
    pub id: String,
    /// Where it stands.
    pub stage: WithdrawalStage,
    /// Amount burned (base units).
    pub amount: Amount,
    /// Its denomination.
    pub asset: String,
    /// Where it is paid.
    pub destination: String,
    /// What the destination receives, once batched.
    pub paid: Option<Amount>,
    /// Its batch.
    pub batch: Option<u64>,
    /// Members that signed the batch.
    pub signatures: u32,
    /// Signatures needed.
    pub threshold: u32,
    /// The release transaction, once known.
    pub release_tx: Option<String>,
    /// Parent-chain confirmations of the release, when known.
    pub confirmations: Option<u64>,
    /// Members that attested the release.
    pub release_attestations: u32,
    /// Attestations needed to settle.
    pub release_quorum: u32,
    /// The height it settled at.
    pub released_height: Option<u64>,
    /// Bitcoin: its budget for its share of the miner fee.
    pub max_fee: Option<Amount>,
    /// Bitcoin, once batched: its share of the miner fee (the amount less what is paid).
    pub fee_paid: Option<Amount>,
    /// Bitcoin, once batched: the fee rate its release is priced at.
    pub fee_rate: Option<FeeRate>,
    /// Why its asset's last batch left it queued.
    pub waiting: Option<String>,
    /// Why members refused to pay it, when held (or refunded after).
    pub held: Option<String>,
    /// Bitcoin: every version of its release, oldest first (more than one once the chain
    /// replaced a stuck release with a higher fee).
    pub versions: Vec<ReleaseVersion>,
    /// Bitcoin: the parent height at which the chain replaces the release if it is still
    /// unconfirmed (while its newest version is signed).
    pub next_replacement_at: Option<u64>,
    /// Bitcoin: why the chain could not replace the release when one was due.
    pub replacement_blocked: Option<String>,
}

/// One version of a Bitcoin release, as `ferry status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseVersion {
    /// 0 for the first.
    pub version: u32,
    /// Its txid.
    pub txid: String,
    /// The rate it was priced at.
    pub fee_rate: FeeRate,
    /// What it pays miners in all.
    pub fee: Amount,
    /// This withdrawal's share of that fee.
    pub fee_share: Option<Amount>,
}

impl WithdrawalProgress {
    /// Whether nothing more will happen.
    pub fn is_final(&self) -> bool {
        matches!(self.stage, WithdrawalStage::Released | WithdrawalStage::Refunded)
    }

    /// One line for people.
    pub fn render(&self) -> String {
        let amount = match self.asset.parse() {
            Ok(denom) => units::display(self.amount, &denom),
            Err(_) => format!("{} {}", self.amount, self.asset),
        };
        let mut line = format!("{} ({amount} to {}): {:?}", self.id, self.destination, self.stage);
        if let (WithdrawalStage::Queued, Some(reason)) = (self.stage, &self.waiting) {
            line.push_str(&format!(" — waits: {reason}"));
        }
        if let (WithdrawalStage::Held | WithdrawalStage::Refunded, Some(reason)) = (self.stage, &self.held) {
            line.push_str(&format!(" — members refused to pay it: {reason}"));
        }
        if let Some(batch) = self.batch {
            line.push_str(&format!(" — batch {batch}, signatures {}/{}", self.signatures, self.threshold));
        }
        if let (Some(fee), Some(budget), Some(rate)) = (self.fee_paid, self.max_fee, self.fee_rate) {
            line.push_str(&format!(", miner fee {fee} sat of its {budget} sat budget at {rate}"));
        }
        if self.versions.len() > 1 {
            let versions: Vec<String> = self
                .versions
                .iter()
                .map(|v| format!("v{} {} at {} ({} sat)", v.version, v.txid, v.fee_rate, v.fee))
                .collect();
            line.push_str(&format!(", versions [{}]", versions.join("; ")));
        }
        if self.stage < WithdrawalStage::Released {
            if let Some(height) = self.next_replacement_at {
                line.push_str(&format!(", replaced at Bitcoin height {height} if unconfirmed"));
            }
            if let Some(reason) = &self.replacement_blocked {
                line.push_str(&format!(", not replaceable: {reason}"));
            }
        }
        if self.stage >= WithdrawalStage::Broadcast {
            if let Some(tx) = &self.release_tx {
                line.push_str(&format!(", release {tx}"));
            }
            if let Some(k) = self.confirmations {
                line.push_str(&format!(", confirmations {k}"));
            }
            line.push_str(&format!(", release attestations {}/{}", self.release_attestations, self.release_quorum));
        }
        if let Some(height) = self.released_height {
            line.push_str(&format!(", released at height {height}"));
        }
        line
    }
}

/// The progress of a withdrawal from its view, its batch (once batched) and the parent chain's
/// confirmations of the release transaction (when the caller could learn them).
pub fn withdrawal_progress(
    view: &WithdrawalView,
    batch: Option<&BatchView>,
    confirmations: Option<u64>,
    bump_after_blocks: u64,
) -> WithdrawalProgress {
    let release_attestations =
        batch.map_or(0, |b| u32::try_from(b.batch.release_attestations.len()).unwrap_or(u32::MAX));
    let stage = match view.status {
        WithdrawalStatus::Queued => WithdrawalStage::Queued,
        WithdrawalStatus::Batched => WithdrawalStage::Batched,
        WithdrawalStatus::Signed if confirmations.is_some() || release_attestations > 0 => WithdrawalStage::Broadcast,
        WithdrawalStatus::Signed => WithdrawalStage::Signed,
        WithdrawalStatus::Released => WithdrawalStage::Released,
        WithdrawalStatus::Held => WithdrawalStage::Held,
        WithdrawalStatus::Refunded => WithdrawalStage::Refunded,
    };
    let bitcoin = batch.and_then(|b| match &b.batch.release {
        ferry_types::query::BatchRelease::Bitcoin(release) => Some(release),
        _ => None,
    });
    let release_tx = view.release_tx.clone().or_else(|| {
        batch.and_then(|b| match &b.batch.release {
            ferry_types::query::BatchRelease::Bitcoin(release) if confirmations.is_some() => Some(release.txid.clone()),
            _ => b.batch.release_attestations.values().next().cloned(),
        })
    });
    WithdrawalProgress {
        id: view.withdrawal.id.to_string(),
        stage,
        amount: view.withdrawal.amount,
        asset: view.withdrawal.asset.to_string(),
        destination: view.withdrawal.destination.clone(),
        paid: view.paid,
        batch: view.withdrawal.batch,
        signatures: batch.map_or(0, |b| b.signature_count),
        threshold: batch.map_or(0, |b| b.threshold),
        release_tx,
        confirmations,
        release_attestations,
        release_quorum: batch.map_or(0, |b| b.release_quorum),
        released_height: view.released_height,
        max_fee: Some(view.withdrawal.max_fee).filter(|budget| !budget.is_zero()),
        fee_paid: view
            .paid
            .filter(|_| bitcoin.is_some())
            .and_then(|paid| view.withdrawal.amount.checked_sub(paid).ok()),
        fee_rate: bitcoin.map(|release| release.fee_rate),
        waiting: view.withdrawal.waiting.clone(),
        held: view.withdrawal.held.as_ref().map(|held| held.reason.clone()),
        versions: batch.map(|b| release_versions(&b.batch, view)).unwrap_or_default(),
        next_replacement_at: bitcoin
            .and_then(|release| release.bump_parent_height)
            .map(|since| since.saturating_add(bump_after_blocks)),
        replacement_blocked: bitcoin.and_then(|release| release.bump_blocked.clone()),
    }
}

/// Every version of `batch`'s Bitcoin release, oldest first, with `view`'s share of each.
fn release_versions(batch: &ferry_types::query::Batch, view: &WithdrawalView) -> Vec<ReleaseVersion> {
    let BatchRelease::Bitcoin(release) = &batch.release else { return Vec::new() };
    let position = batch.items.iter().position(|item| item.withdrawal == view.withdrawal.id);
    let share = |plan: &ferry_types::release::bitcoin::ReleasePlan| {
        let output = plan.outputs().get(position?)?;
        view.withdrawal.amount.checked_sub(output.amount).ok()
    };
    release
        .superseded
        .iter()
        .map(|old| ReleaseVersion {
            version: old.version,
            txid: old.txid.clone(),
            fee_rate: old.fee_rate,
            fee: old.plan.fee(),
            fee_share: share(&old.plan),
        })
        .chain([ReleaseVersion {
            version: release.version,
            txid: release.txid.clone(),
            fee_rate: release.fee_rate,
            fee: release.plan.fee(),
            fee_share: share(&release.plan),
        }])
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferry_types::query::{Withdrawal, WithdrawalId};
    use ferry_types::{Address, Denom, DepositFacts, ParentChain};

    use super::*;

    fn facts(amount: u128) -> DepositFacts {
        DepositFacts {
            chain: ParentChain::Bitcoin,
            tx_id: "ab".repeat(32),
            index: 0,
            asset: Denom::sat(),
            amount: Amount::new(amount),
            recipient: Address::from_bytes([3; 20]),
            deposit_address: false,
            unattributed: None,
            peg_epoch: None,
        }
    }

    fn record(attesters: &[(u8, u128)], minted: bool) -> DepositRecord {
        let mut candidates = BTreeMap::new();
        let mut attestations = BTreeMap::new();
        for (member, amount) in attesters {
            let facts = facts(*amount);
            let digest = hex::encode(facts.digest());
            candidates.insert(digest.clone(), facts);
            attestations.insert(Address::from_bytes([*member; 20]), digest);
        }
        DepositRecord {
            id: facts(1).id(),
            status: if minted { DepositStatus::Minted } else { DepositStatus::Pending },
            attestations,
            candidates,
            conflicts: Vec::new(),
            minted: minted.then(|| facts(500)),
            minted_amount: minted.then_some(Amount::new(480)),
            spend_fee: minted.then_some(Amount::new(20)),
            first_attested_height: 10,
            minted_height: minted.then_some(12),
            opened_by: None,
            unattributed: None,
        }
    }

    #[test]
    fn deposit_stages_follow_confirmations_attestations_and_the_mint() {
        let id = facts(1).id();
        let unseen = deposit_progress(id.clone(), None, None, 2, 3);
        assert_eq!(unseen.stage, DepositStage::Unseen);
        let confirming = deposit_progress(id.clone(), None, Some(1), 2, 3);
        assert_eq!(
            (confirming.stage, confirming.render().contains("confirmations 1/2")),
            (DepositStage::Confirming, true)
        );
        // Two members agree, one saw something else: the leading facts count 2 of 3.
        let pending = record(&[(1, 500), (2, 500), (3, 499)], false);
        let attesting = deposit_progress(id.clone(), Some(&pending), Some(2), 2, 3);
        assert_eq!(
            (attesting.stage, attesting.attestations, attesting.amount),
            (DepositStage::Attesting, 2, Some(Amount::new(500)))
        );
        assert!(!attesting.is_final());
        let minted = deposit_progress(id, Some(&record(&[(1, 500), (2, 500), (3, 500)], true)), None, 2, 3);
        assert!(minted.is_final());
        assert!(minted.render().contains("attestations 3/3, minted at height 12"), "{}", minted.render());
        assert!(minted.render().contains("confirmations 2/2"), "{}", minted.render());
    }

    #[test]
    fn a_queued_withdrawal_and_a_released_one() {
        let withdrawal = Withdrawal {
            id: WithdrawalId(4),
            sender: Address::from_bytes([1; 20]),
            asset: Denom::sat(),
            amount: Amount::new(100_000),
            destination: "bcrt1qexample".to_owned(),
            max_fee: Amount::new(900),
            burned_height: 20,
            eligible_height: 20,
            batch: None,
            waiting: Some("its share of the fee at 2 sat/vB is 1200 sat, above its max_fee of 900 sat".to_owned()),
            held: None,
            refunded_height: None,
        };
        let queued = WithdrawalView::of(withdrawal.clone(), None);
        let progress = withdrawal_progress(&queued, None, None, 6);
        assert_eq!((progress.stage, progress.is_final()), (WithdrawalStage::Queued, false));
        let line = progress.render();
        assert!(
            line.starts_with("wd-4 (0.001 BTC (100000 sat) to bcrt1qexample): Queued — waits: its share"),
            "{line}"
        );
        assert!(line.contains("above its max_fee of 900 sat"), "{line}");
        let mut released = queued;
        released.status = WithdrawalStatus::Released;
        released.released_height = Some(40);
        released.release_tx = Some("cd".repeat(32));
        let progress = withdrawal_progress(&released, None, Some(3), 6);
        assert!(progress.is_final());
        assert!(progress.render().contains("released at height 40"), "{}", progress.render());
        assert!(!progress.render().contains("waits"), "a released withdrawal no longer waits: {}", progress.render());
        assert_eq!(progress.release_tx, released.release_tx);
    }
}
