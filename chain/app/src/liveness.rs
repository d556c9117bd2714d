//! Heartbeats: the chain opens a round every `params.liveness.heartbeat_interval` blocks with an
//! unpredictable challenge ([`ferry_types::liveness`]); each member answers with a BLS share and
//! a Bitcoin-key signature (`MsgHeartbeat`, a federation duty), both checked against the keys the
//! federation holds for it. A member is live while it answered one of the last `live_rounds`
//! rounds; `/federation/liveness` and the node's gauges show who is, so a silent member is seen
//! before releases stall.

use ferry_types::event as ev;
use ferry_types::genesis::Federation;
use ferry_types::liveness;
use ferry_types::msg::federation::MsgHeartbeat;
use ferry_types::query::federation::{HeartbeatRound, LivenessView, MemberHeartbeat, MemberLiveness};
use ferry_types::{Address, Params};

use crate::bank::BankError;
use crate::event::Event;
use crate::membership::refused;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of heartbeats.
pub mod keys {
    use ferry_types::Address;

    /// The open round ([`ferry_types::query::federation::HeartbeatRound`]).
    pub const ROUND: &[u8] = b"liveness/round";

    /// A member's last heartbeat ([`ferry_types::query::federation::MemberHeartbeat`]).
    pub fn member(account: &Address) -> Vec<u8> {
        [b"liveness/member/".as_slice(), account.as_bytes().as_slice()].concat()
    }
}

impl<R: StateRead> StateDelta<R> {
    /// The open heartbeat round.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn heartbeat_round(&self) -> Result<Option<HeartbeatRound>, StateError> {
        self.get_record(keys::ROUND)
    }

    /// `account`'s last heartbeat.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn member_heartbeat(&self, account: &Address) -> Result<MemberHeartbeat, StateError> {
        Ok(self.get_record(&keys::member(account))?.unwrap_or_default())
    }

    /// The federation's liveness, as `/federation/liveness` answers it.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn liveness(&self, params: &Params) -> Result<LivenessView, StateError> {
        let federation = self.federation()?;
        let round = self.heartbeat_round()?;
        let current = round.as_ref().map_or(0, |round| round.round);
        let live_rounds = params.liveness.live_rounds.max(1);
        let mut members = Vec::with_capacity(federation.members.len());
        for account in &federation.members {
            let last = self.member_heartbeat(account)?;
            let live = current < live_rounds || last.round.saturating_add(live_rounds) > current;
            members.push(MemberLiveness { account: *account, last_round: last.round, last_height: last.height, live });
        }
        Ok(LivenessView {
            round,
            heartbeat_interval: params.liveness.heartbeat_interval,
            live_rounds,
            threshold: threshold(&federation),
            live: u32::try_from(members.iter().filter(|member| member.live).count()).unwrap_or(u32::MAX),
            members,
        })
    }
}

/// The federation's signing threshold: the peg's, else the BLS key set's, else its quorum.
fn threshold(federation: &Federation) -> u32 {
    if let Some(bitcoin) = &federation.bitcoin {
        return bitcoin.threshold;
    }
    federation
        .bls
        .as_ref()
        .and_then(|bls| ferry_types::release::bls::decode_public_key_set(&bls.public_key_set).ok())
        .map_or(federation.attest_quorum, |set| ferry_types::release::bls::threshold_signatures(&set))
}

/// End of block: opens a round at every multiple of the interval.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn open_round_if_due<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    block: &crate::BlockInput<'_>,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let interval = params.liveness.heartbeat_interval;
    if interval == 0 || !block.height.is_multiple_of(interval) || state.federation()?.members.is_empty() {
        return Ok(());
    }
    let round = block.height / interval;
    let txs: Vec<u8> = block.txs.iter().flat_map(|tx| ferry_types::key::sha256(tx)).collect();
    let challenge = liveness::challenge(block.chain_id, round, block.time_unix, &ferry_types::key::sha256(&txs));
    let record = HeartbeatRound { round, opened_at: block.height, challenge: hex::encode(challenge) };
    events.push(Event::new(
        ev::HEARTBEAT_ROUND,
        [(ev::ROUND, round.to_string()), (ev::CHALLENGE, record.challenge.clone())],
    ));
    state.put_record(keys::ROUND.to_vec(), &record);
    Ok(())
}

/// Records `heartbeat` after checking both signatures against the member's keys.
///
/// # Errors
/// `FederationChange` for another round or a signature that is missing or does not verify;
/// storage failures.
pub fn heartbeat<R: StateRead>(
    state: &mut StateDelta<R>,
    heartbeat: &MsgHeartbeat,
    chain_id: &str,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let Some(round) = state.heartbeat_round()? else {
        return Err(refused("no heartbeat round has opened yet"));
    };
    if heartbeat.round != round.round {
        return Err(refused(format!("round {} is not the open heartbeat round {}", heartbeat.round, round.round)));
    }
    let federation = state.federation()?;
    let index = federation.member_index(&heartbeat.member).ok_or_else(|| refused("not a member"))?;
    let challenge = round.challenge_bytes().ok_or_else(|| refused("the stored challenge is corrupt"))?;
    let message = liveness::heartbeat_message(chain_id, round.round, &challenge);
    if let Some(bls) = &federation.bls {
        let set = ferry_types::release::bls::decode_public_key_set(&bls.public_key_set)
            .map_err(|error| refused(error.to_string()))?;
        let Some(signature) = &heartbeat.bls_signature else {
            return Err(refused("the heartbeat lacks the BLS share the federation's key requires"));
        };
        if !liveness::verify_share(&set, index as u64, signature, &message) {
            return Err(refused(format!("the BLS share of member {index} does not verify for round {}", round.round)));
        }
    }
    if let Some(bitcoin) = &federation.bitcoin {
        let peg = ferry_types::peg::Peg::new(bitcoin).map_err(|error| refused(error.to_string()))?;
        let key = peg.member_key(index).ok_or_else(|| refused("the member's Bitcoin key is not stored"))?.inner;
        let Some(signature) = &heartbeat.bitcoin_signature else {
            return Err(refused("the heartbeat lacks the Bitcoin-key signature the peg requires"));
        };
        if !liveness::verify_bitcoin(&key, signature, &message) {
            return Err(refused(format!(
                "the Bitcoin-key signature of member {index} does not verify for round {}",
                round.round
            )));
        }
    }
    state.put_record(keys::member(&heartbeat.member), &MemberHeartbeat { round: round.round, height });
    events.push(Event::new(
        ev::HEARTBEAT,
        [(ev::MEMBER, heartbeat.member.to_string()), (ev::ROUND, round.round.to_string())],
    ));
    Ok(())
}
