//! Key generation sessions: the chain as the broadcast channel and the judge of a dealer-free
//! DKG ([`ferry_types::dkg`]) for the next federation.
//!
//! A session starts when a federation proposal reaches its quorum ([`crate::membership`]). Each
//! attempt runs three phases, each at most `params.dkg.phase_blocks` long:
//!
//! 1. **Dealing**: every participant posts its commitment, proof of knowledge and encrypted
//!    shares (`MsgDkgDeal`); the chain checks the commitment's size and the proof. The phase
//!    closes as soon as everyone dealt.
//! 2. **Complaints**: a participant whose share does not match its dealer's commitment reveals
//!    their pairwise key with a proof (`MsgDkgComplain`); the chain verifies the proof, decrypts
//!    the share and checks it, and convicts whichever side lied — at once, deterministically, with
//!    no vote. The phase always runs its full length.
//! 3. **Confirming**: the group key set is the sum of the dealers' commitments; each participant
//!    signs the run's confirmation message with its final share (`MsgDkgConfirm`), which the
//!    chain verifies against that participant's public share. The session completes when all
//!    confirmed.
//!
//! When a phase ends with participants silent, or the complaints phase with anyone convicted, the
//! session restarts without them (a new attempt: fresh polynomials, contiguous share positions),
//! while at least `threshold` remain and at most `params.dkg.max_attempts` attempts in all; then
//! it fails. A completed session leaves the next federation ([`StateDelta::next_federation`]):
//! its members, threshold, BLS key set and Bitcoin keys, with the epoch after the current one,
//! for the hand-over to adopt. No one but each participant ever learns its own share.

use ferry_types::dkg::{self, Run, Verdict};
use ferry_types::event as ev;
use ferry_types::genesis::{BlsFederation, Federation};
use ferry_types::msg::federation::{MsgDkgComplain, MsgDkgConfirm, MsgDkgDeal};
use ferry_types::peg::BitcoinFederation;
use ferry_types::query::federation::{
    DkgDealing, DkgDealings, DkgFault, DkgFaultKind, DkgParticipant, DkgPhase, DkgSession, SignerKeys,
};
use ferry_types::{Address, Params, TxCode, TxRejection};

use crate::bank::BankError;
use crate::event::Event;
use crate::membership::refused;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of key generation (their home is [`ferry_types::state_keys`]: signers read them
/// proven).
pub mod keys {
    pub use ferry_types::state_keys::{
        DKG_LATEST as LATEST, NEXT_FEDERATION, dkg_dealing as dealing, dkg_session as session,
    };
}

impl<R: StateRead> StateDelta<R> {
    /// Session `n`.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn dkg_session(&self, n: u64) -> Result<Option<DkgSession>, StateError> {
        self.get_record(&keys::session(n))
    }

    /// The latest session, running or not.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn latest_dkg(&self) -> Result<Option<DkgSession>, StateError> {
        match self.get_record::<u64>(keys::LATEST)? {
            Some(n) => self.dkg_session(n),
            None => Ok(None),
        }
    }

    /// The running session, if one is.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn running_dkg(&self) -> Result<Option<DkgSession>, StateError> {
        Ok(self.latest_dkg()?.filter(|session| session.phase.is_running()))
    }

    /// The dealings posted in `session`'s current attempt.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn dkg_dealings(&self, session: &DkgSession) -> Result<DkgDealings, StateError> {
        let mut dealings = Vec::new();
        for position in 0..u32::try_from(session.participants.len()).unwrap_or(u32::MAX) {
            if let Some(dealing) = stored_dealing(self, session, position)? {
                dealings.push(dealing);
            }
        }
        Ok(DkgDealings { session: session.session, attempt: session.attempt, dealings })
    }

    /// The federation the last completed session produced, until its hand-over.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn next_federation(&self) -> Result<Option<Federation>, StateError> {
        self.get_record(keys::NEXT_FEDERATION)
    }

    fn put_dkg_session(&mut self, session: &DkgSession) {
        self.put_record(keys::session(session.session), session);
    }
}

/// Whether `account` takes part in the running session (and so may send its steps, fee-exempt).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn is_participant<R: StateRead>(state: &StateDelta<R>, account: &Address) -> Result<bool, StateError> {
    Ok(state.running_dkg()?.is_some_and(|session| session.position(account).is_some()))
}

fn run_of(session: &DkgSession) -> Run {
    Run { session: session.session, attempt: session.attempt }
}

fn started_event(session: &DkgSession) -> Event {
    Event::new(
        ev::DKG_STARTED,
        [
            (ev::SESSION, session.session.to_string()),
            (ev::ATTEMPT, session.attempt.to_string()),
            (ev::EPOCH, session.epoch.to_string()),
            (ev::MEMBERS, members_text(session)),
            (ev::THRESHOLD, session.threshold.to_string()),
        ],
    )
}

fn members_text(session: &DkgSession) -> String {
    crate::event::accounts_text(session.participants.iter().map(|p| &p.account))
}

/// Starts a session for `members` (their registered keys, in order) at `threshold`.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn start<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    members: &[SignerKeys],
    threshold: u32,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let number = state.get_record::<u64>(keys::LATEST)?.unwrap_or(0).saturating_add(1);
    let session = DkgSession {
        session: number,
        epoch: state.federation()?.epoch.saturating_add(1),
        threshold,
        proposed: members.iter().map(|keys| keys.account).collect(),
        attempt: 1,
        max_attempts: params.dkg.max_attempts.max(1),
        phase: DkgPhase::Dealing,
        phase_ends: height.saturating_add(params.dkg.phase_blocks),
        started: height,
        attempt_started: height,
        participants: members
            .iter()
            .map(|keys| DkgParticipant {
                account: keys.account,
                encryption_key: keys.encryption_key.clone(),
                bitcoin_key: keys.bitcoin_key.clone(),
                dealt: false,
                confirmed: false,
            })
            .collect(),
        faults: Vec::new(),
        public_key_set: None,
        finished: None,
    };
    state.put_record(keys::LATEST.to_vec(), &number);
    state.put_dkg_session(&session);
    events.push(started_event(&session));
    tracing::info!(
        session = number,
        epoch = session.epoch,
        members = session.participants.len(),
        threshold,
        "key generation started"
    );
    Ok(())
}

/// The running session `run` names, in `phase`, and `account`'s position in it.
fn session_for<R: StateRead>(
    state: &StateDelta<R>,
    run: Run,
    phase: &DkgPhase,
    account: &Address,
) -> Result<(DkgSession, u32), BankError> {
    let Some(session) = state.running_dkg()? else {
        return Err(refused("no key generation is running"));
    };
    if run_of(&session) != run {
        return Err(refused(format!(
            "session {} attempt {} is not the running one; the running one is session {} attempt {}",
            run.session, run.attempt, session.session, session.attempt
        )));
    }
    if &session.phase != phase {
        return Err(refused(format!(
            "session {} is in phase {}, not {}",
            session.session,
            session.phase.name(),
            phase.name()
        )));
    }
    let Some(position) = session.position(account) else {
        return Err(BankError::Rejected(TxRejection::new(
            TxCode::Unauthorized,
            format!("{account} is not a participant of attempt {} of session {}", run.attempt, run.session),
        )));
    };
    Ok((session, u32::try_from(position).unwrap_or(u32::MAX)))
}

fn participant_key(session: &DkgSession, position: u32) -> Result<dkg::G1Affine, BankError> {
    let participant = session.participants.get(position as usize).ok_or_else(|| refused("no such participant"))?;
    participant.encryption_point().map_err(|error| refused(error.to_string()))
}

/// Records a dealing.
///
/// # Errors
/// `FederationChange` for another run or phase, a repeated dealing, a wrong share count, or a
/// commitment or proof that does not check; `Unauthorized` for a non-participant.
pub fn deal<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    msg: &MsgDkgDeal,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let (mut session, position) = session_for(state, msg.run, &DkgPhase::Dealing, &msg.participant)?;
    if session.participants.get(position as usize).is_some_and(|p| p.dealt) {
        return Err(refused(format!("{} already dealt in this attempt", msg.participant)));
    }
    if msg.encrypted_shares.len() != session.participants.len() {
        return Err(refused(format!(
            "{} encrypted shares for {} participants",
            msg.encrypted_shares.len(),
            session.participants.len()
        )));
    }
    let threshold = session.threshold as usize;
    dkg::check_dealing(&msg.commitment, &msg.proof, msg.run, position, threshold)
        .map_err(|error| refused(format!("dealing refused: {error}")))?;
    let dealing = DkgDealing {
        dealer: position,
        commitment: msg.commitment.iter().map(|point| hex::encode(dkg::encode_point(point))).collect(),
        encrypted_shares: msg.encrypted_shares.iter().map(hex::encode).collect(),
    };
    state.put_record(keys::dealing(session.session, session.attempt, position), &dealing);
    if let Some(participant) = session.participants.get_mut(position as usize) {
        participant.dealt = true;
    }
    events.push(Event::new(
        ev::DKG_DEALT,
        [
            (ev::SESSION, session.session.to_string()),
            (ev::ATTEMPT, session.attempt.to_string()),
            (ev::MEMBER, msg.participant.to_string()),
        ],
    ));
    if session.participants.iter().all(|p| p.dealt) {
        session.phase = DkgPhase::Complaints;
        session.phase_ends = height.saturating_add(params.dkg.phase_blocks);
    }
    state.put_dkg_session(&session);
    Ok(())
}

fn stored_dealing<R: StateRead>(
    state: &StateDelta<R>,
    session: &DkgSession,
    position: u32,
) -> Result<Option<DkgDealing>, StateError> {
    state.get_record(&keys::dealing(session.session, session.attempt, position))
}

fn fault_of(session: &DkgSession, account: &Address) -> bool {
    session.faults.iter().any(|fault| fault.attempt == session.attempt && fault.account == *account)
}

/// Judges a complaint: convicts the dealer when the revealed share does not match its
/// commitment, the accuser when it does.
///
/// # Errors
/// `FederationChange` for another run or phase, an accused who is not a dealer of this attempt
/// or is the accuser, or a revealed key whose proof does not verify; `Unauthorized` for a
/// non-participant.
pub fn complain<R: StateRead>(
    state: &mut StateDelta<R>,
    msg: &MsgDkgComplain,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let (mut session, accuser) = session_for(state, msg.run, &DkgPhase::Complaints, &msg.participant)?;
    let Some(dealer) = session.position(&msg.dealer).and_then(|p| u32::try_from(p).ok()) else {
        return Err(refused(format!("{} is not a participant of this attempt", msg.dealer)));
    };
    if dealer == accuser {
        return Err(refused("a participant cannot complain about its own dealing"));
    }
    let (accuser_key, dealer_key) = (participant_key(&session, accuser)?, participant_key(&session, dealer)?);
    if !dkg::verify_pairwise_key(&accuser_key, &dealer_key, &msg.pairwise_key, msg.run, &msg.proof) {
        return Err(refused(
            "the revealed pairwise key's proof does not verify against the accuser's and the dealer's registered keys",
        ));
    }
    let Some(dealing) = stored_dealing(state, &session, dealer)? else {
        return Err(refused(format!("{} has no dealing in this attempt", msg.dealer)));
    };
    let commitment = dealing.commitment_points().map_err(|error| refused(error.to_string()))?;
    let ciphertext =
        dealing.encrypted_share(accuser).ok_or_else(|| refused("the dealing has no share for the accuser"))?;
    let verdict = dkg::judge_complaint(msg.run, (dealer, &commitment), (accuser, &ciphertext), &msg.pairwise_key);
    let (faulty, kind) = match verdict {
        Verdict::DealerFaulty => (msg.dealer, DkgFaultKind::WrongShare { victim: msg.participant }),
        Verdict::AccuserFaulty => (msg.participant, DkgFaultKind::FalseComplaint { accused: msg.dealer }),
    };
    events.push(Event::new(
        ev::DKG_COMPLAINT,
        [
            (ev::SESSION, session.session.to_string()),
            (ev::ATTEMPT, session.attempt.to_string()),
            (ev::MEMBER, msg.participant.to_string()),
            (ev::DEALER, msg.dealer.to_string()),
            (ev::FAULTY, faulty.to_string()),
        ],
    ));
    tracing::warn!(session = session.session, attempt = session.attempt, accuser = %msg.participant, dealer = %msg.dealer, %faulty, "key generation complaint judged");
    if !fault_of(&session, &faulty) {
        session.faults.push(DkgFault { account: faulty, attempt: session.attempt, fault: kind, height });
        state.put_dkg_session(&session);
    }
    Ok(())
}

/// Records a confirmation; the last one completes the session.
///
/// # Errors
/// `FederationChange` for another run or phase, a repeated confirmation, or a signature that
/// does not verify against the participant's public share; `Unauthorized` for a non-participant.
pub fn confirm<R: StateRead>(
    state: &mut StateDelta<R>,
    msg: &MsgDkgConfirm,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let (mut session, position) = session_for(state, msg.run, &DkgPhase::Confirming, &msg.participant)?;
    if session.participants.get(position as usize).is_some_and(|p| p.confirmed) {
        return Err(refused(format!("{} already confirmed in this attempt", msg.participant)));
    }
    let text = session.public_key_set.clone().ok_or_else(|| refused("the session has no key set yet"))?;
    let set = ferry_types::release::bls::decode_public_key_set(&text).map_err(|error| refused(error.to_string()))?;
    let group = session
        .group_key()
        .map_err(|error| refused(error.to_string()))?
        .ok_or_else(|| refused("the session has no key set yet"))?;
    if !dkg::verify_confirmation(&set, position, &msg.signature, msg.run, &group) {
        return Err(refused(format!(
            "the confirmation of {} does not verify against its public share of the group key",
            msg.participant
        )));
    }
    if let Some(participant) = session.participants.get_mut(position as usize) {
        participant.confirmed = true;
    }
    events.push(Event::new(
        ev::DKG_CONFIRMED,
        [
            (ev::SESSION, session.session.to_string()),
            (ev::ATTEMPT, session.attempt.to_string()),
            (ev::MEMBER, msg.participant.to_string()),
        ],
    ));
    if session.participants.iter().all(|p| p.confirmed) {
        complete(state, &mut session, height, events)?;
    }
    state.put_dkg_session(&session);
    Ok(())
}

fn complete<R: StateRead>(
    state: &mut StateDelta<R>,
    session: &mut DkgSession,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let current = state.federation()?;
    let public_key_set = session.public_key_set.clone().unwrap_or_default();
    let next = Federation {
        members: session.participants.iter().map(|p| p.account).collect(),
        attest_quorum: session.threshold,
        bitcoin: current.bitcoin.as_ref().map(|bitcoin| BitcoinFederation {
            network: bitcoin.network,
            threshold: session.threshold,
            keys: session.participants.iter().map(|p| p.bitcoin_key.clone()).collect(),
        }),
        epoch: session.epoch,
        bls: Some(BlsFederation { public_key_set: public_key_set.clone() }),
    };
    state.put_record(keys::NEXT_FEDERATION.to_vec(), &next);
    crate::handover::start(state, &next, session.session, height, events)?;
    session.phase = DkgPhase::Complete;
    session.finished = Some(height);
    events.push(Event::new(
        ev::DKG_COMPLETE,
        [
            (ev::SESSION, session.session.to_string()),
            (ev::EPOCH, session.epoch.to_string()),
            (ev::MEMBERS, members_text(session)),
            (ev::THRESHOLD, session.threshold.to_string()),
            (ev::PUBLIC_KEY, public_key_set.get(..96).unwrap_or_default().to_owned()),
        ],
    ));
    tracing::info!(
        session = session.session,
        epoch = session.epoch,
        members = session.participants.len(),
        "key generation complete"
    );
    Ok(())
}

/// End of block: closes a phase whose time is up — dropping the silent and the convicted and
/// restarting, or forming the group key after a clean complaints phase.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn advance<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let Some(mut session) = state.running_dkg()? else { return Ok(()) };
    if height < session.phase_ends {
        return Ok(());
    }
    let phase = session.phase.name().to_owned();
    let silent: Vec<Address> = match session.phase {
        DkgPhase::Dealing => session.participants.iter().filter(|p| !p.dealt).map(|p| p.account).collect(),
        DkgPhase::Confirming => session.participants.iter().filter(|p| !p.confirmed).map(|p| p.account).collect(),
        _ => Vec::new(),
    };
    for account in &silent {
        if !fault_of(&session, account) {
            let fault = DkgFaultKind::Silent { phase: phase.clone() };
            session.faults.push(DkgFault { account: *account, attempt: session.attempt, fault, height });
        }
    }
    let dropped: Vec<Address> =
        session.faults.iter().filter(|fault| fault.attempt == session.attempt).map(|fault| fault.account).collect();
    if dropped.is_empty() && session.phase == DkgPhase::Complaints {
        form_key(state, params, &mut session, height, events)?;
    } else {
        restart(params, &mut session, &dropped, height, events);
    }
    state.put_dkg_session(&session);
    Ok(())
}

fn form_key<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    session: &mut DkgSession,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let mut commitments = Vec::with_capacity(session.participants.len());
    for position in 0..u32::try_from(session.participants.len()).unwrap_or(u32::MAX) {
        if let Some(commitment) = stored_dealing(state, session, position)?.and_then(|d| d.commitment_points().ok()) {
            commitments.push(commitment);
        }
    }
    let group = dkg::group_commitment(commitments.iter().map(Vec::as_slice));
    match (commitments.len() == session.participants.len(), dkg::key_set(&group)) {
        (true, Ok(_)) => {
            let text = dkg::encode_key_set(&group);
            events.push(Event::new(
                ev::DKG_KEY_FORMED,
                [
                    (ev::SESSION, session.session.to_string()),
                    (ev::ATTEMPT, session.attempt.to_string()),
                    (ev::PUBLIC_KEY, text.get(..96).unwrap_or_default().to_owned()),
                ],
            ));
            session.public_key_set = Some(text);
            session.phase = DkgPhase::Confirming;
            session.phase_ends = height.saturating_add(params.dkg.phase_blocks);
        }
        // A sum that cancelled to the identity (or a dealing lost): run again with everyone.
        _ => restart(params, session, &[], height, events),
    }
    Ok(())
}

fn restart(params: &Params, session: &mut DkgSession, dropped: &[Address], height: u64, events: &mut Vec<Event>) {
    for account in dropped {
        events.push(Event::new(
            ev::DKG_DROPPED,
            [
                (ev::SESSION, session.session.to_string()),
                (ev::ATTEMPT, session.attempt.to_string()),
                (ev::MEMBER, account.to_string()),
                (ev::REASON, fault_reason(session, account)),
            ],
        ));
        tracing::warn!(session = session.session, attempt = session.attempt, %account, reason = %fault_reason(session, account), "key generation participant dropped");
    }
    session.participants.retain(|p| !dropped.contains(&p.account));
    let remaining = session.participants.len();
    let failure = if remaining < session.threshold as usize {
        Some(format!("{remaining} participants remain, the threshold is {}", session.threshold))
    } else if session.attempt >= session.max_attempts {
        Some(format!("attempt {} of {} ended without a key", session.attempt, session.max_attempts))
    } else {
        None
    };
    if let Some(reason) = failure {
        events.push(Event::new(
            ev::DKG_FAILED,
            [(ev::SESSION, session.session.to_string()), (ev::REASON, reason.clone())],
        ));
        tracing::error!(session = session.session, %reason, "key generation failed");
        session.phase = DkgPhase::Failed { reason };
        session.finished = Some(height);
        return;
    }
    session.attempt = session.attempt.saturating_add(1);
    session.attempt_started = height;
    session.phase = DkgPhase::Dealing;
    session.phase_ends = height.saturating_add(params.dkg.phase_blocks);
    session.public_key_set = None;
    for participant in &mut session.participants {
        participant.dealt = false;
        participant.confirmed = false;
    }
    events.push(started_event(session));
}

fn fault_reason(session: &DkgSession, account: &Address) -> String {
    let fault = session.faults.iter().rev().find(|fault| fault.attempt == session.attempt && fault.account == *account);
    match fault.map(|fault| &fault.fault) {
        Some(DkgFaultKind::Silent { phase }) => format!("silent in the {phase} phase"),
        Some(DkgFaultKind::WrongShare { victim }) => {
            format!("dealt {victim} a share that does not match its commitment")
        }
        Some(DkgFaultKind::FalseComplaint { accused }) => format!("complained about {accused}'s valid share"),
        None => "dropped".to_owned(),
    }
}
