//! Parameter changes by member quorum, with a delay.
//!
//! A member proposes the complete next parameter set (`MsgProposeParams`; each member's latest
//! proposal counts). When `attest_quorum` current members propose the same parameters, the
//! change is scheduled for `height + params.governance.delay_blocks` and takes effect from that
//! height (it is written at the end of the block before, so the whole block at the stated height
//! runs under it). A newer quorum replaces a scheduled change. Below quorum nothing changes.
//!
//! What a proposal may not change, because something outside the chain must change with it: the
//! Ethereum vault binding (`withdrawals.ethereum`'s chain id and vault; its heartbeat interval
//! may change), and which ERC-20 tokens are listed or
//! unlisted (the listing path, `MsgProposeListing`, changes the vault first). Everything else —
//! caps, delays, fee-rate bounds, minimums, batch sizes, the denylist, intervals — may change,
//! and the result must pass the same checks as genesis.

use ferry_types::event as ev;
use ferry_types::msg::federation::MsgProposeParams;
use ferry_types::query::federation::{ParamsProposal, ParamsProposals, ScheduledParams};
use ferry_types::{Denom, Params};

use crate::bank::BankError;
use crate::event::Event;
use crate::membership::refused;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of parameter governance.
pub mod keys {
    /// The open proposals and the scheduled change ([`ferry_types::query::federation::ParamsProposals`]).
    pub const PROPOSALS: &[u8] = b"governance/params";
}

impl<R: StateRead> StateDelta<R> {
    /// The open parameter proposals and the scheduled change.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn params_proposals(&self) -> Result<ParamsProposals, StateError> {
        Ok(self.get_record(keys::PROPOSALS)?.unwrap_or_default())
    }
}

/// The ERC-20 denominations `params` lists (has limits for) and unlists.
fn token_listing(params: &Params) -> (Vec<&Denom>, Vec<&Denom>) {
    let mut listed: Vec<&Denom> = params
        .withdrawals
        .limits
        .iter()
        .map(|limit| &limit.denom)
        .filter(|denom| ferry_types::msg::erc20_token(denom).is_some())
        .collect();
    listed.sort();
    let mut unlisted: Vec<&Denom> = params.deposits.unlisted.iter().collect();
    unlisted.sort();
    (listed, unlisted)
}

/// Why `next` cannot replace `current` by a vote, if it cannot.
fn forbidden_change(current: &Params, next: &Params) -> Option<String> {
    // The vault's chain and address are bound outside the chain; how often heartbeats go to it
    // is the chain's own business.
    let binding = |params: &Params| params.withdrawals.ethereum.as_ref().map(|bridge| (bridge.chain_id, bridge.vault));
    if binding(current) != binding(next) {
        return Some("withdrawals.ethereum (the vault binding) cannot change by a parameter vote".to_owned());
    }
    if token_listing(current) != token_listing(next) {
        return Some(
            "the listed and unlisted tokens change only through listing proposals (MsgProposeListing), which change the vault first"
                .to_owned(),
        );
    }
    None
}

/// Records `proposal`; at quorum schedules the change.
///
/// # Errors
/// `FederationChange` for parameters that change what a vote may not; storage failures.
pub fn propose_params<R: StateRead>(
    state: &mut StateDelta<R>,
    proposal: &MsgProposeParams,
    current: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    if let Some(reason) = forbidden_change(current, &proposal.params) {
        return Err(refused(reason));
    }
    let federation = state.federation()?;
    let hash = proposal.params_hash();
    let mut record = state.params_proposals()?;
    record.proposals.retain(|existing| existing.member != proposal.member && federation.is_member(&existing.member));
    record.proposals.push(ParamsProposal {
        member: proposal.member,
        hash: hash.clone(),
        params: proposal.params.clone(),
        height,
    });
    let agreeing = record.proposals.iter().filter(|existing| existing.hash == hash).count();
    let quorum = federation.attest_quorum;
    events.push(Event::new(
        ev::PARAMS_PROPOSED,
        [
            (ev::MEMBER, proposal.member.to_string()),
            (ev::HASH, hash.clone()),
            (ev::ATTESTATIONS, agreeing.to_string()),
            (ev::QUORUM, quorum.to_string()),
        ],
    ));
    if u32::try_from(agreeing).unwrap_or(u32::MAX) >= quorum {
        let effective = height.saturating_add(current.governance.delay_blocks.max(1));
        events.push(Event::new(ev::PARAMS_SCHEDULED, [(ev::HASH, hash.clone()), (ev::HEIGHT, effective.to_string())]));
        tracing::info!(%hash, effective, "parameter change scheduled");
        record.scheduled =
            Some(ScheduledParams { hash, params: proposal.params.clone(), accepted_at: height, effective });
        record.proposals.clear();
    }
    state.put_record(keys::PROPOSALS.to_vec(), &record);
    Ok(())
}

/// End of block: writes a scheduled change whose effective height is the next block's.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn apply_due<R: StateRead>(
    state: &mut StateDelta<R>,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let mut record = state.params_proposals()?;
    let Some(scheduled) = record.scheduled.take_if(|scheduled| scheduled.effective <= height.saturating_add(1)) else {
        return Ok(());
    };
    state.put_params(&scheduled.params);
    state.put_record(keys::PROPOSALS.to_vec(), &record);
    events.push(Event::new(
        ev::PARAMS_CHANGED,
        [(ev::HASH, scheduled.hash.clone()), (ev::HEIGHT, scheduled.effective.to_string())],
    ));
    tracing::info!(hash = %scheduled.hash, effective = scheduled.effective, "parameters changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use ferry_types::genesis::EthereumBridge;
    use ferry_types::release::eth::EthAddress;

    use super::*;

    #[test]
    fn a_vote_may_change_the_heartbeat_interval_but_not_the_vault_binding() {
        let mut current = Params::default();
        current.withdrawals.ethereum = Some(EthereumBridge::new(1, EthAddress::from_bytes([7; 20])));
        let mut slower = current.clone();
        if let Some(bridge) = slower.withdrawals.ethereum.as_mut() {
            bridge.heartbeat_interval_blocks *= 2;
        }
        assert_eq!(forbidden_change(&current, &slower), None);
        let mut moved = current.clone();
        moved.withdrawals.ethereum = Some(EthereumBridge::new(1, EthAddress::from_bytes([8; 20])));
        assert!(forbidden_change(&current, &moved).is_some_and(|why| why.contains("vault binding")));
        let mut dropped = current.clone();
        dropped.withdrawals.ethereum = None;
        assert!(forbidden_change(&current, &dropped).is_some());
    }
}
