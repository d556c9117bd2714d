//! Who may serve in the next federation: accounts register the keys they would serve with, and
//! the current members propose the next member set.
//!
//! - **Signer keys** (`MsgRegisterSignerKeys`): a DKG encryption key and a Bitcoin key, each with
//!   a proof of possession bound to the account (checked when the message decodes). Fee-exempt
//!   and allowed from an account the chain does not know yet (a candidate need hold nothing),
//!   bounded like deposit address registrations. Keys cannot change while their account takes
//!   part in a running key generation.
//! - **Proposals** (`MsgProposeFederation`, a federation duty): each member's latest proposal
//!   counts; when `attest_quorum` current members propose the same members and threshold, the
//!   chain starts a key generation for it ([`crate::dkg::start`]) and clears the proposals. Every
//!   proposed member must have registered keys, and their Bitcoin keys must form a valid peg.

use ferry_types::event as ev;
use ferry_types::msg::federation::{MsgProposeFederation, MsgRegisterSignerKeys};
use ferry_types::peg::{BitcoinFederation, Peg};
use ferry_types::query::federation::{FederationProposal, FederationProposals, SignerKeys};
use ferry_types::{Address, TxCode, TxRejection};

use crate::bank::BankError;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of signer keys and proposals.
pub mod keys {
    use ferry_types::Address;

    /// An account's registered signer keys ([`ferry_types::query::federation::SignerKeys`]).
    pub fn signer_keys(account: &Address) -> Vec<u8> {
        [b"signer_keys/".as_slice(), account.as_bytes().as_slice()].concat()
    }

    /// The open proposals ([`ferry_types::query::federation::FederationProposals`]).
    pub const PROPOSALS: &[u8] = b"federation_proposals";
}

impl<R: StateRead> StateDelta<R> {
    /// `account`'s registered signer keys.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn signer_keys(&self, account: &Address) -> Result<Option<SignerKeys>, StateError> {
        self.get_record(&keys::signer_keys(account))
    }

    /// The open federation proposals.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn federation_proposals(&self) -> Result<FederationProposals, StateError> {
        Ok(self.get_record(keys::PROPOSALS)?.unwrap_or_default())
    }
}

pub(crate) fn refused(log: impl Into<String>) -> BankError {
    BankError::Rejected(TxRejection::new(TxCode::FederationChange, log))
}

/// Records `register`'s keys (replacing earlier ones).
///
/// # Errors
/// `FederationChange` while the account takes part in a running key generation; storage failures.
pub fn register_signer_keys<R: StateRead>(
    state: &mut StateDelta<R>,
    register: &MsgRegisterSignerKeys,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let account = register.account;
    if let Some(session) = state.running_dkg()?
        && session.position(&account).is_some()
    {
        return Err(refused(format!(
            "{account} takes part in key generation session {} (phase {}); its keys cannot change until the session ends",
            session.session,
            session.phase.name()
        )));
    }
    let record = SignerKeys {
        account,
        encryption_key: hex::encode(ferry_types::dkg::encode_point(&register.encryption_key)),
        bitcoin_key: hex::encode(register.bitcoin_key),
        height,
    };
    events.push(Event::new(
        ev::SIGNER_KEYS_REGISTERED,
        [
            (ev::ADDRESS, account.to_string()),
            (ev::ENCRYPTION_KEY, record.encryption_key.clone()),
            (ev::BITCOIN_KEY, record.bitcoin_key.clone()),
        ],
    ));
    state.put_record(keys::signer_keys(&account), &record);
    tracing::info!(%account, height, "signer keys registered");
    Ok(())
}

/// Records `proposal`; at `attest_quorum` identical proposals of current members starts its key
/// generation.
///
/// # Errors
/// `FederationChange` while a key generation or a hand-over runs, for a member without registered keys, or for
/// Bitcoin keys that do not form a peg; storage failures.
pub fn propose_federation<R: StateRead>(
    state: &mut StateDelta<R>,
    proposal: &MsgProposeFederation,
    params: &ferry_types::Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    if let Some(session) = state.running_dkg()? {
        return Err(refused(format!(
            "key generation session {} is running (attempt {}, phase {}); propose again once it completes or fails",
            session.session,
            session.attempt,
            session.phase.name()
        )));
    }
    if let Some(handover) = state.running_handover()? {
        return Err(refused(format!(
            "the hand-over to epoch {} is running; propose again once the federation switched",
            handover.epoch
        )));
    }
    let mut registered = Vec::with_capacity(proposal.members.len());
    for member in &proposal.members {
        match state.signer_keys(member)? {
            Some(keys) => registered.push(keys),
            None => {
                return Err(refused(format!(
                    "{member} has no registered signer keys (MsgRegisterSignerKeys; `ferry-signer register-keys`)"
                )));
            }
        }
    }
    let federation = state.federation()?;
    if let Some(bitcoin) = &federation.bitcoin {
        let next = BitcoinFederation {
            network: bitcoin.network,
            threshold: proposal.threshold,
            keys: registered.iter().map(|keys| keys.bitcoin_key.clone()).collect(),
        };
        if let Err(error) = Peg::new(&next) {
            return Err(refused(format!("the proposed members' Bitcoin keys do not form a peg: {error}")));
        }
    }
    let mut open = state.federation_proposals()?;
    open.proposals.retain(|existing| existing.member != proposal.member && federation.is_member(&existing.member));
    open.proposals.push(FederationProposal {
        member: proposal.member,
        members: proposal.members.clone(),
        threshold: proposal.threshold,
        height,
    });
    let agreeing = open
        .proposals
        .iter()
        .filter(|existing| existing.members == proposal.members && existing.threshold == proposal.threshold)
        .count();
    let quorum = federation.attest_quorum;
    events.push(Event::new(
        ev::FEDERATION_PROPOSED,
        [
            (ev::MEMBER, proposal.member.to_string()),
            (ev::MEMBERS, proposal.members.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")),
            (ev::THRESHOLD, proposal.threshold.to_string()),
            (ev::ATTESTATIONS, agreeing.to_string()),
            (ev::QUORUM, quorum.to_string()),
        ],
    ));
    tracing::info!(member = %proposal.member, agreeing, quorum, "federation proposed");
    if u32::try_from(agreeing).unwrap_or(u32::MAX) >= quorum {
        state.put_record(keys::PROPOSALS.to_vec(), &FederationProposals::default());
        crate::dkg::start(state, params, &registered, proposal.threshold, height, events)?;
    } else {
        state.put_record(keys::PROPOSALS.to_vec(), &open);
    }
    Ok(())
}
