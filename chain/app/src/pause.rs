//! The bridge's pause switch: while paused, nothing new enters or leaves through the bridge — no
//! mints, withdrawals, new batches or signature submissions — but releases already on their way
//! still settle (the funds have left) and members can still vote.
//!
//! The bridge pauses on its own when the reserves invariant breaks ([`crate::reserves`]), or when
//! `attest_quorum` members vote to pause ([`set_paused`]); it resumes only by such a vote. Votes
//! are kept per member (the latest counts) and cleared at every flip.

use ferry_types::event as ev;
use ferry_types::msg::MsgSetPaused;
use ferry_types::query::{BridgeStatus, PauseVote};
use ferry_types::{TxCode, TxRejection};

use crate::bank::BankError;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of the pause switch.
pub mod keys {
    /// The bridge status ([`ferry_types::query::BridgeStatus`]).
    pub const BRIDGE_STATUS: &[u8] = b"bridge_status";
}

impl<R: StateRead> StateDelta<R> {
    /// Whether the bridge is paused, why, and the pending votes.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn bridge_status(&self) -> Result<BridgeStatus, StateError> {
        Ok(self.get_record(keys::BRIDGE_STATUS)?.unwrap_or_default())
    }

    /// Stores the bridge status.
    pub fn put_bridge_status(&mut self, status: &BridgeStatus) {
        self.put_record(keys::BRIDGE_STATUS.to_vec(), status);
    }
}

/// Refuses with `BridgePaused` (naming the reason) while the bridge is paused.
///
/// # Errors
/// `BridgePaused`; storage failures.
pub fn ensure_running<R: StateRead>(state: &StateDelta<R>) -> Result<(), BankError> {
    let status = state.bridge_status()?;
    if status.paused {
        return Err(BankError::Rejected(TxRejection::new(
            TxCode::BridgePaused,
            format!(
                "the bridge is paused since height {}: {}; retry after it resumes",
                status.since_height, status.reason
            ),
        )));
    }
    Ok(())
}

/// Pauses the bridge for `reason` at `height` (the votes are cleared) and emits `bridge_paused`.
/// Does nothing when it is already paused.
///
/// # Errors
/// On storage failure.
pub fn pause<R: StateRead>(
    state: &mut StateDelta<R>,
    reason: String,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let status = state.bridge_status()?;
    if status.paused {
        return Ok(());
    }
    flip(state, true, reason, height, events);
    Ok(())
}

fn flip<R: StateRead>(state: &mut StateDelta<R>, paused: bool, reason: String, height: u64, events: &mut Vec<Event>) {
    let kind = if paused { ev::BRIDGE_PAUSED } else { ev::BRIDGE_RESUMED };
    events.push(Event::new(kind, [(ev::REASON, reason.clone())]));
    if paused {
        tracing::warn!(height, %reason, "bridge paused");
    } else {
        tracing::info!(height, %reason, "bridge resumed");
    }
    state.put_bridge_status(&BridgeStatus { paused, reason, since_height: height, votes: Default::default() });
}

/// Records `vote`; when `quorum` members' latest votes ask for the opposite of the current state,
/// the bridge flips and the votes are cleared. A vote for the current state is recorded but
/// changes nothing by itself.
///
/// Resuming while the reserves invariant is still broken is followed by a new pause at the end
/// of the same block.
///
/// # Errors
/// Storage failures only.
pub fn set_paused<R: StateRead>(
    state: &mut StateDelta<R>,
    vote: &MsgSetPaused,
    quorum: u32,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let mut status = state.bridge_status()?;
    status.votes.insert(vote.member, PauseVote { paused: vote.paused, reason: vote.reason.clone(), height });
    let agreeing = status.votes.values().filter(|cast| cast.paused == vote.paused).count();
    events.push(Event::new(
        ev::PAUSE_VOTE,
        [
            (ev::ATTESTER, vote.member.to_string()),
            (ev::PAUSED, vote.paused.to_string()),
            (ev::ATTESTATIONS, agreeing.to_string()),
            (ev::QUORUM, quorum.to_string()),
        ],
    ));
    if vote.paused != status.paused && u32::try_from(agreeing).unwrap_or(u32::MAX) >= quorum {
        let action = if vote.paused { "paused" } else { "resumed" };
        let reason = format!("{action} by a vote of {agreeing} members: {}", vote.reason);
        flip(state, vote.paused, reason, height, events);
    } else {
        state.put_bridge_status(&status);
    }
    Ok(())
}
