//! Rebuilding a Bitcoin exit disbursal ([`BatchRelease::BitcoinExit`]) before signing it.
//!
//! The chain records what it planned the disbursal from: the covered reserve inputs, the fee rate,
//! the lock height and limits, and its claims (every `sat` holder's balance and every unpaid
//! withdrawal, read here proven, page by page). The signer plans the tree again with the same pure
//! planner ([`plan_recorded`]) for **its own** peg — so every input is spent through its keys'
//! script and the residual goes back to it — and signs only when every transaction id and sighash
//! is the chain's. Before that it checks:
//! - the claims: as many as the record states, in claim order, none twice;
//! - the fee rate: within the chain's release bounds;
//! - the lock: `clock + bitcoin_exit.lock_blocks`, the chain's parameter (a lock far in the
//!   future would hold holders' coins for longer than they were promised);
//! - the release it follows (proven): that version exists with that txid, and its change, if
//!   any, is one of the inputs — the disbursal pays out what that release leaves behind.
//!
//! Unlike a release, a disbursal is not counted against the local outflow cap and its recovery
//! scripts are not checked against the local denylist: it pays every holder and can confirm only
//! after the federation stopped signing for `lock_blocks`, and one denylisted holder must not stop
//! every release behind the gate. It has no items, so nothing is voted down.
//!
//! Pure: no I/O.

use ferry_types::genesis::WithdrawalParams;
use ferry_types::peg::Peg;
use ferry_types::query::{Batch, BatchRelease, BitcoinExit};
use ferry_types::release::exit::{RecordedClaim, exit_sighashes, plan_recorded, sighashes_hex};

use super::{LocalKnowledge, Payload, Rebuilt, Refusal, refuse};
use crate::refusal::Reason;

/// What a disbursal is signed on besides its batch record, read proven at the same height.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitFacts {
    /// Its claims, every page in order.
    pub claims: Vec<RecordedClaim>,
    /// The release batch it follows (absent: not in the state).
    pub followed: Option<Batch>,
}

/// Rebuilds the disbursal `batch` from `facts`, the chain's `params` and `local` knowledge, and
/// checks that the chain's transactions and sighashes are exactly it (module docs).
///
/// # Errors
/// A [`Refusal`] naming the first difference.
pub fn rebuild_exit(
    batch: &Batch,
    facts: &ExitFacts,
    params: &WithdrawalParams,
    local: &LocalKnowledge,
) -> Result<Rebuilt, Refusal> {
    let id = batch.id;
    let BatchRelease::BitcoinExit(exit) = &batch.release else {
        return refuse(Reason::PayloadMismatch, format!("batch {id} is not an exit disbursal"));
    };
    let peg = signing_peg(id, exit, local)?;
    if !batch.items.is_empty() || !batch.total.is_zero() {
        return refuse(Reason::ItemCount, format!("disbursal {id} carries withdrawals"));
    }
    check_claims(id, exit, &facts.claims)?;
    check_terms(id, exit, params)?;
    check_follows(id, exit, facts.followed.as_ref(), local)?;
    let plan = plan_recorded(&exit.basis, &facts.claims, peg)
        .or_else(|error| refuse(Reason::PayloadMismatch, format!("disbursal {id} cannot be planned: {error}")))?;
    plan.check_standard(peg).or_else(|error| refuse(Reason::NonStandard, format!("disbursal {id}: {error}")))?;
    let txids: Vec<String> = plan.transactions().map(|tx| tx.tx.compute_txid().to_string()).collect();
    if txids != exit.txids {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "disbursal {id}: the chain states transactions {:?}, the rebuilt tree (to this signer's peg) is {txids:?}",
                exit.txids
            ),
        );
    }
    let hashes = exit_sighashes(&plan, peg)
        .or_else(|error| refuse(Reason::PayloadMismatch, format!("disbursal {id}: {error}")))?;
    let ours = sighashes_hex(&hashes);
    if ours != exit.sighashes {
        return refuse(
            Reason::PayloadMismatch,
            format!("disbursal {id}: the chain's sighashes are not the rebuilt tree's"),
        );
    }
    Ok(Rebuilt {
        batch: id,
        version: 0,
        replaces: None,
        epoch: exit.epoch,
        asset: batch.asset.clone(),
        chain: ferry_types::ParentChain::Bitcoin,
        total: batch.total,
        destinations: Vec::new(),
        payload: Payload::Bitcoin {
            txid: txids.first().cloned().unwrap_or_default(),
            sighashes: hashes.into_iter().flatten().collect(),
        },
    })
}

/// The peg `exit` is signed for: this member's own (the epoch of its keys), or during a
/// hand-over the next federation's, when this member is one of its members (a migration's
/// disbursal: the migration's output is at the next peg).
fn signing_peg<'a>(id: u64, exit: &BitcoinExit, local: &'a LocalKnowledge) -> Result<&'a Peg, Refusal> {
    let peg = if exit.epoch == local.epoch {
        local.bitcoin.as_ref()
    } else {
        let Some(next) = local.next.as_ref().filter(|next| next.epoch == exit.epoch) else {
            return refuse(
                Reason::Unsupported,
                format!(
                    "disbursal {id} is signed by the federation of epoch {}; this signer holds keys for epoch {} and knows no hand-over to it",
                    exit.epoch, local.epoch
                ),
            );
        };
        if !next.members.contains(&local.member) {
            return refuse(
                Reason::Unsupported,
                format!(
                    "disbursal {id} is signed by the federation of epoch {}, which this member is not in",
                    exit.epoch
                ),
            );
        }
        next.bitcoin.as_ref()
    };
    peg.map_or_else(
        || {
            refuse(
                Reason::Unsupported,
                format!("batch {id} is a Bitcoin disbursal and this signer has no [bitcoin] network configured"),
            )
        },
        Ok,
    )
}

/// The claims are the record's count, in claim order, each once.
fn check_claims(id: u64, exit: &BitcoinExit, claims: &[RecordedClaim]) -> Result<(), Refusal> {
    if usize::try_from(exit.claim_count).ok() != Some(claims.len()) {
        return refuse(
            Reason::PayloadMismatch,
            format!("disbursal {id} states {} claims; {} were read", exit.claim_count, claims.len()),
        );
    }
    if let Some(pair) = claims.windows(2).find(|pair| pair[0].claimant >= pair[1].claimant) {
        return refuse(
            Reason::PayloadMismatch,
            format!("disbursal {id}: claim {} is out of order or listed twice", pair[1].claimant),
        );
    }
    Ok(())
}

/// The fee rate is within the chain's bounds; the lock is the chain's parameter from the clock.
fn check_terms(id: u64, exit: &BitcoinExit, params: &WithdrawalParams) -> Result<(), Refusal> {
    let Some(terms) = &params.bitcoin_exit else {
        return refuse(Reason::Unsupported, format!("disbursal {id}: the chain's parameters have no Bitcoin exit"));
    };
    let bounds = params.bitcoin_fee_bounds();
    let rate = exit.basis.rate;
    if bounds.clamp(rate) != rate {
        return refuse(
            Reason::Fee,
            format!("disbursal {id}: priced at {rate}, outside the chain's bounds of {} to {}", bounds.min, bounds.max),
        );
    }
    let lock = exit.clock.saturating_add(u64::from(terms.lock_blocks));
    if u64::from(exit.basis.lock_height) != lock {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "disbursal {id}: locked until Bitcoin height {}, not {lock} (clock {} + {} blocks)",
                exit.basis.lock_height, exit.clock, terms.lock_blocks
            ),
        );
    }
    if exit.basis.min_output != terms.min_output || exit.basis.max_tx_vbytes != terms.max_tx_vbytes {
        return refuse(Reason::PayloadMismatch, format!("disbursal {id}: its limits are not the chain's parameters"));
    }
    Ok(())
}

/// The release version it follows exists with the stated txid, and what it leaves is an input:
/// a release's change, if any; a migration's output (only a migration to the next federation is
/// followed by a disbursal of the next epoch, and a disbursal of this member's epoch never
/// follows a migration).
fn check_follows(id: u64, exit: &BitcoinExit, followed: Option<&Batch>, local: &LocalKnowledge) -> Result<(), Refusal> {
    let follows = &exit.follows;
    let migration = followed.and_then(|batch| match &batch.release {
        BatchRelease::Bitcoin(release) => release.migration,
        _ => None,
    });
    let version = followed.and_then(|batch| {
        batch.bitcoin_versions().into_iter().find(|(version, _, _)| *version == follows.version).map(
            |(_, txid, plan)| {
                let left = match migration {
                    Some(_) => plan.outputs().first().map(|output| (output.amount, 0)),
                    None => plan.change().zip(plan.change_vout()),
                };
                (txid.to_owned(), left)
            },
        )
    });
    let Some((txid, left)) = version else {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "disbursal {id} follows batch {} version {}, which the chain does not hold",
                follows.batch, follows.version
            ),
        );
    };
    if txid != follows.txid {
        return refuse(
            Reason::PayloadMismatch,
            format!("disbursal {id} follows txid {}; that version is {txid}", follows.txid),
        );
    }
    let expected = if exit.epoch == local.epoch { None } else { Some(exit.epoch) };
    if migration != expected {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "disbursal {id} of epoch {} follows batch {}, which is {}",
                exit.epoch,
                follows.batch,
                migration.map_or_else(|| "no migration".to_owned(), |to| format!("a migration to epoch {to}"))
            ),
        );
    }
    if let Some((amount, vout)) = left {
        let spent =
            exit.basis.inputs.iter().any(|input| input.txid == txid && input.vout == vout && input.amount == amount);
        if !spent {
            return refuse(
                Reason::Inputs,
                format!("disbursal {id} does not spend the output {txid}:{vout} the batch it follows leaves"),
            );
        }
    }
    Ok(())
}
