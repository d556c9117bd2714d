//! Audit-log anchors (`MsgAnchorAudit`): each member's relayer and signer periodically anchor the
//! head of their PostgreSQL audit log — its row count and newest row's hash — so that `audit
//! verify` can check the log against something its database owner cannot rewrite.
//!
//! Invariant: a member's anchor of a log only moves forward, along the same history. An anchor
//! with more rows replaces the held one (and the height it was recorded at) when its
//! `previous_hash` — the log's row at the held count, as the daemon reads it now — is the held
//! head; the same count with the same hash changes nothing; fewer rows, the same count with
//! another hash, or more rows over another history is refused — the held anchor stays — and
//! kept as evidence (a count of refusals and the latest one, and an
//! [`ev::AUDIT_ANCHOR_REFUSED`] event): a log whose head went back or changed was cut, rewritten
//! or restored from an old backup. The message itself succeeds so the evidence stays on chain.
//!
//! Member-only, fee-exempt and limited per block because it is a federation duty
//! ([`crate::duties`]).

use ferry_types::event as ev;
use ferry_types::msg::audit::{AuditLogName, MsgAnchorAudit};
use ferry_types::query::audit::{
    AuditAnchor, REFUSED_FEWER_ROWS, REFUSED_OTHER_HASH, REFUSED_OTHER_HISTORY, RefusedAnchor,
};
use ferry_types::{Address, state_keys};

use crate::bank::BankError;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

impl<R: StateRead> StateDelta<R> {
    /// `member`'s anchor of `log`, if it ever anchored it.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn audit_anchor(&self, member: &Address, log: AuditLogName) -> Result<Option<AuditAnchor>, StateError> {
        self.get_record(&state_keys::audit_anchor(member, log))
    }
}

/// Records `anchor` if it moves the member's anchor of its log forward; keeps a refusal as
/// evidence otherwise. Returns a note for the transaction's log when the anchor did not move.
///
/// # Errors
/// Storage failures only: a refused anchor is recorded, not an error.
pub fn anchor_audit<R: StateRead>(
    state: &mut StateDelta<R>,
    anchor: &MsgAnchorAudit,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<Option<String>, BankError> {
    let key = state_keys::audit_anchor(&anchor.member, anchor.log);
    let offered_hash = hex::encode(anchor.head_hash);
    let held = state.audit_anchor(&anchor.member, anchor.log)?;
    let refusal = match &held {
        Some(held) if anchor.rows < held.rows => Some(REFUSED_FEWER_ROWS),
        Some(held) if anchor.rows == held.rows && offered_hash != held.head_hash => Some(REFUSED_OTHER_HASH),
        Some(held)
            if anchor.rows > held.rows
                && anchor.previous_hash.map(hex::encode).as_deref() != Some(held.head_hash.as_str()) =>
        {
            Some(REFUSED_OTHER_HISTORY)
        }
        Some(held) if anchor.rows == held.rows => {
            return Ok(Some(format!(
                "the {} log of {} is already anchored at {} rows (height {})",
                anchor.log, anchor.member, held.rows, held.height
            )));
        }
        _ => None,
    };
    match (held, refusal) {
        (Some(mut held), Some(reason)) => {
            let note = format!(
                "audit anchor refused ({reason}): the {} log of {} offers {} rows with head {offered_hash}; \
                 anchored at height {}: {} rows with head {}",
                anchor.log, anchor.member, anchor.rows, held.height, held.rows, held.head_hash
            );
            events.push(Event::new(
                ev::AUDIT_ANCHOR_REFUSED,
                [
                    (ev::MEMBER, anchor.member.to_string()),
                    (ev::AUDIT_LOG, anchor.log.to_string()),
                    (ev::ROWS, anchor.rows.to_string()),
                    (ev::HASH, offered_hash.clone()),
                    (ev::ANCHORED_ROWS, held.rows.to_string()),
                    (ev::ANCHORED_HASH, held.head_hash.clone()),
                    (ev::REASON, reason.to_owned()),
                ],
            ));
            held.refused = held.refused.saturating_add(1);
            held.last_refused =
                Some(RefusedAnchor { rows: anchor.rows, head_hash: offered_hash, height, reason: reason.to_owned() });
            state.put_record(key, &held);
            Ok(Some(note))
        }
        (held, _) => {
            let (anchors, refused, last_refused) =
                held.map_or((0, 0, None), |held| (held.anchors, held.refused, held.last_refused));
            events.push(Event::new(
                ev::AUDIT_ANCHORED,
                [
                    (ev::MEMBER, anchor.member.to_string()),
                    (ev::AUDIT_LOG, anchor.log.to_string()),
                    (ev::ROWS, anchor.rows.to_string()),
                    (ev::HASH, offered_hash.clone()),
                ],
            ));
            state.put_record(
                key,
                &AuditAnchor {
                    member: anchor.member,
                    log: anchor.log,
                    rows: anchor.rows,
                    head_hash: offered_hash,
                    height,
                    anchors: anchors.saturating_add(1),
                    refused,
                    last_refused,
                },
            );
            Ok(None)
        }
    }
}
