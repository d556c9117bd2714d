//! The federation's changing parts as the chain records and answers them: registered signer
//! keys, proposals of a new member set, and the key generation (DKG) a proposal starts.
//!
//! Paths: `/signer_keys/<address>`, `/federation/proposals`, `/federation/next`,
//! `/federation/handover[/<epoch>]`, `/federation/epoch/<n>`, `/federation/retired`, `/dkg` (the latest session),
//! `/dkg/<session>` and `/dkg/<session>/dealings` (the current attempt's dealings).

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::dkg::{self, DkgError, ENCRYPTED_SHARE_LEN, EncryptionKey, G1Affine, Received, Run, Scalar};

/// Path prefix of an account's registered signer keys.
pub const SIGNER_KEYS_PATH: &str = "/signer_keys/";
/// Path of the open federation proposals.
pub const FEDERATION_PROPOSALS_PATH: &str = "/federation/proposals";
/// Path of the federation a completed key generation produced, awaiting its hand-over.
pub const NEXT_FEDERATION_PATH: &str = "/federation/next";
/// Path of the federation's liveness (heartbeats).
pub const LIVENESS_PATH: &str = "/federation/liveness";
/// Path of the open parameter proposals and the scheduled change.
pub const PARAMS_PROPOSALS_PATH: &str = "/params/proposals";
/// Path of the hand-over to the next federation while it runs, else of the one that brought in
/// the current federation ([`Handover`]); `/federation/handover/<epoch>` is the one to that epoch.
pub const HANDOVER_PATH: &str = "/federation/handover";
/// Path prefix of a past epoch's federation, as it was when it handed over: `/federation/epoch/<n>`.
pub const RETIRED_FEDERATION_PATH: &str = "/federation/epoch/";
/// Path of every retired federation with its peg's grace ([`RetiredFederation`]), newest first.
pub const RETIRED_FEDERATIONS_PATH: &str = "/federation/retired";
/// Path of the latest DKG session; `/dkg/<n>` is session n, `/dkg/<n>/dealings` its dealings.
pub const DKG_PATH: &str = "/dkg";

/// Keys an account registered to serve in a federation (`MsgRegisterSignerKeys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerKeys {
    /// The account.
    pub account: Address,
    /// DKG encryption key: compressed G1 point, hex.
    pub encryption_key: String,
    /// Bitcoin key: compressed secp256k1 point, hex.
    pub bitcoin_key: String,
    /// Height of the registration.
    pub height: u64,
}

/// One member's standing proposal for the next federation (the latest it sent counts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationProposal {
    /// The proposing member.
    pub member: Address,
    /// The proposed members, in order.
    pub members: Vec<Address>,
    /// The proposed threshold.
    pub threshold: u32,
    /// Height of the proposal.
    pub height: u64,
}

/// The open proposals: members' votes for a next federation, none at quorum yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationProposals {
    /// One per proposing member.
    pub proposals: Vec<FederationProposal>,
}

/// Where a DKG session stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DkgPhase {
    /// Participants post their dealings (`MsgDkgDeal`).
    Dealing,
    /// Participants check their shares and complain about bad ones (`MsgDkgComplain`).
    Complaints,
    /// Participants confirm their final shares (`MsgDkgConfirm`).
    Confirming,
    /// Every participant confirmed: the key is ready for the hand-over.
    Complete,
    /// The session gave up.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Every phase's [`DkgPhase::name`], in order (metric label values).
pub const DKG_PHASE_NAMES: [&str; 5] = ["dealing", "complaints", "confirming", "complete", "failed"];

impl DkgPhase {
    /// Whether the session is still running.
    pub fn is_running(&self) -> bool {
        matches!(self, DkgPhase::Dealing | DkgPhase::Complaints | DkgPhase::Confirming)
    }

    /// The phase's name.
    pub fn name(&self) -> &'static str {
        match self {
            DkgPhase::Dealing => "dealing",
            DkgPhase::Complaints => "complaints",
            DkgPhase::Confirming => "confirming",
            DkgPhase::Complete => "complete",
            DkgPhase::Failed { .. } => "failed",
        }
    }
}

/// A participant of the current attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkgParticipant {
    /// The account.
    pub account: Address,
    /// Its DKG encryption key (hex), as registered when the session started.
    pub encryption_key: String,
    /// Its Bitcoin key (hex), as registered when the session started.
    pub bitcoin_key: String,
    /// Whether it dealt in this attempt.
    pub dealt: bool,
    /// Whether it confirmed its share in this attempt.
    pub confirmed: bool,
}

/// What a participant was dropped for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DkgFaultKind {
    /// It did not act before the phase ended.
    Silent {
        /// The phase it missed.
        phase: String,
    },
    /// A complaint showed its share for `victim` does not match its commitment.
    WrongShare {
        /// Who received the bad share.
        victim: Address,
    },
    /// It complained about a share that matched.
    FalseComplaint {
        /// The dealer it accused.
        accused: Address,
    },
}

/// A participant dropped from a session, with why and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkgFault {
    /// The participant.
    pub account: Address,
    /// The attempt it was dropped in.
    pub attempt: u32,
    /// Why.
    pub fault: DkgFaultKind,
    /// Height.
    pub height: u64,
}

/// A key generation for a proposed federation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkgSession {
    /// Session number (1 first).
    pub session: u64,
    /// The federation epoch the key is for.
    pub epoch: u64,
    /// The signing threshold.
    pub threshold: u32,
    /// The member set as proposed (participants of attempt 1).
    pub proposed: Vec<Address>,
    /// The attempt (1 first); a session restarts without dropped participants.
    pub attempt: u32,
    /// The last attempt allowed.
    pub max_attempts: u32,
    /// The phase.
    pub phase: DkgPhase,
    /// Last height of the phase (inclusive); afterwards the chain moves on without the silent.
    pub phase_ends: u64,
    /// Height the session started.
    pub started: u64,
    /// Height the attempt started.
    pub attempt_started: u64,
    /// The participants of the current attempt, in share order.
    pub participants: Vec<DkgParticipant>,
    /// Everyone dropped so far.
    pub faults: Vec<DkgFault>,
    /// The group's public key set (hex, as the federation's `bls.public_key_set`), once the
    /// complaints phase closed without faults.
    pub public_key_set: Option<String>,
    /// Height the session completed or failed.
    pub finished: Option<u64>,
}

impl DkgSession {
    /// The key set the transcript makes: the sum of the commitments of every dealing of the
    /// final attempt (`dealings`, which must be this session's, one per participant). A signer
    /// reads the next federation's key from this, not from what the chain concluded.
    ///
    /// # Errors
    /// [`DkgError::Missing`] when `dealings` are not the final attempt's or a dealing is missing;
    /// a commitment that does not decode; a sum that is no key.
    pub fn transcript_key_set(&self, dealings: &DkgDealings) -> Result<crate::release::bls::PublicKeySet, DkgError> {
        if dealings.session != self.session || dealings.attempt != self.attempt {
            return Err(DkgError::Missing("final attempt's dealings"));
        }
        let mut commitments = Vec::with_capacity(self.participants.len());
        for position in 0..self.participants.len() {
            let dealing = dealings
                .dealings
                .iter()
                .find(|dealing| usize::try_from(dealing.dealer).ok() == Some(position))
                .ok_or(DkgError::Missing("dealing of a participant"))?;
            commitments.push(dealing.commitment_points()?);
        }
        let group = dkg::group_commitment(commitments.iter().map(Vec::as_slice));
        dkg::key_set(&group).map_err(|_| DkgError::Point { what: "the group key" })
    }

    /// The position of `account` among the current participants.
    pub fn position(&self, account: &Address) -> Option<usize> {
        self.participants.iter().position(|participant| participant.account == *account)
    }

    /// The run of the current attempt.
    pub fn run(&self) -> Run {
        Run { session: self.session, attempt: self.attempt }
    }

    /// What participant `me` (holding `key`) received from each of `dealings` (this attempt's):
    /// `(dealer position, received)`.
    ///
    /// # Errors
    /// When a record does not decode or names a dealer the session lacks.
    pub fn received(
        &self,
        dealings: &DkgDealings,
        me: u32,
        key: &EncryptionKey,
    ) -> Result<Vec<(u32, Received)>, DkgError> {
        let run = self.run();
        let mut out = Vec::with_capacity(dealings.dealings.len());
        for dealing in &dealings.dealings {
            let dealer = self.participants.get(dealing.dealer as usize).ok_or(DkgError::Missing("dealer"))?;
            let dealer_key = dealer.encryption_point()?;
            let commitment = dealing.commitment_points()?;
            let ciphertext = dealing.encrypted_share(me).ok_or(DkgError::Missing("encrypted share"))?;
            out.push((
                dealing.dealer,
                dkg::receive(run, key, me, (dealing.dealer, &dealer_key, &commitment), &ciphertext),
            ));
        }
        Ok(out)
    }

    /// Participant `me`'s final share of the attempt: the sum of the valid shares it received,
    /// or `None` when a dealing is missing or a share is invalid. Only the holder of `me`'s
    /// encryption secret can compute it.
    ///
    /// # Errors
    /// As [`DkgSession::received`].
    pub fn final_share(
        &self,
        dealings: &DkgDealings,
        me: u32,
        key: &EncryptionKey,
    ) -> Result<Option<Scalar>, DkgError> {
        if dealings.dealings.len() != self.participants.len() {
            return Ok(None);
        }
        let mut shares = Vec::with_capacity(dealings.dealings.len());
        for (_, received) in self.received(dealings, me, key)? {
            match received {
                Received::Valid(share) => shares.push(share),
                Received::Invalid => return Ok(None),
            }
        }
        Ok(Some(dkg::combine_shares(shares)))
    }

    /// The participants' encryption keys, in share order.
    ///
    /// # Errors
    /// When a stored key does not decode.
    pub fn encryption_keys(&self) -> Result<Vec<G1Affine>, DkgError> {
        self.participants.iter().map(DkgParticipant::encryption_point).collect()
    }

    /// The group's public key (the key set's constant term), once the key formed.
    ///
    /// # Errors
    /// When the stored key set does not decode.
    pub fn group_key(&self) -> Result<Option<G1Affine>, DkgError> {
        let Some(set) = &self.public_key_set else { return Ok(None) };
        let first = set.get(..2 * crate::release::bls::G1_COMPRESSED_LEN).unwrap_or(set);
        dkg::decode_point_hex(first, "the group key").map(Some)
    }
}

impl DkgParticipant {
    /// The registered encryption key, as a point.
    ///
    /// # Errors
    /// When the stored key does not decode.
    pub fn encryption_point(&self) -> Result<G1Affine, DkgError> {
        dkg::decode_point_hex(&self.encryption_key, "an encryption key")
    }
}

impl DkgDealing {
    /// The commitment, as points.
    ///
    /// # Errors
    /// When a stored coefficient does not decode.
    pub fn commitment_points(&self) -> Result<Vec<G1Affine>, DkgError> {
        self.commitment.iter().map(|text| dkg::decode_point_hex(text, "a commitment coefficient")).collect()
    }

    /// The encrypted share for the participant at `position`, if there is one that decodes.
    pub fn encrypted_share(&self, position: u32) -> Option<[u8; ENCRYPTED_SHARE_LEN]> {
        let text = self.encrypted_shares.get(usize::try_from(position).ok()?)?;
        hex::decode(text).ok()?.try_into().ok()
    }
}

/// One dealing of the current attempt, as posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkgDealing {
    /// The dealer's position among the participants.
    pub dealer: u32,
    /// Commitment coefficients, compressed G1 hex, constant term first.
    pub commitment: Vec<String>,
    /// Encrypted shares (hex), in participant order.
    pub encrypted_shares: Vec<String>,
}

/// The current attempt's dealings of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkgDealings {
    /// The session.
    pub session: u64,
    /// The attempt.
    pub attempt: u32,
    /// The dealings, by dealer position.
    pub dealings: Vec<DkgDealing>,
}

/// The open heartbeat round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRound {
    /// Round number (height / interval).
    pub round: u64,
    /// Height it opened at.
    pub opened_at: u64,
    /// The challenge (hex, 32 bytes).
    pub challenge: String,
}

impl HeartbeatRound {
    /// The challenge's bytes, if the stored text is 32 bytes of hex.
    pub fn challenge_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.challenge).ok()?.try_into().ok()
    }
}

/// One member's last heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberHeartbeat {
    /// The last round answered (0: none).
    pub round: u64,
    /// Height of that answer (0: none).
    pub height: u64,
}

/// A member's liveness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberLiveness {
    /// The member.
    pub account: Address,
    /// The last round it answered (0: none).
    pub last_round: u64,
    /// Height of its last heartbeat (0: none).
    pub last_height: u64,
    /// Whether it answered the current round or one of the `live_rounds − 1` before it (members
    /// count as live during the chain's first `live_rounds` rounds).
    pub live: bool,
}

/// The `/federation/liveness` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessView {
    /// The open round, if one opened yet.
    pub round: Option<HeartbeatRound>,
    /// Blocks between rounds.
    pub heartbeat_interval: u64,
    /// See [`crate::genesis::LivenessParams::live_rounds`].
    pub live_rounds: u64,
    /// The signing threshold (T); an alert fires below T + 1 live members.
    pub threshold: u32,
    /// Live members.
    pub live: u32,
    /// Every member, in member order.
    pub members: Vec<MemberLiveness>,
}

/// One member's standing parameter proposal (the latest it sent counts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsProposal {
    /// The proposing member.
    pub member: Address,
    /// Hex SHA-256 of the parameters' canonical JSON (identical proposals share it).
    pub hash: String,
    /// The proposed parameters.
    pub params: crate::Params,
    /// Height of the proposal.
    pub height: u64,
}

/// A parameter change a quorum accepted, waiting for its height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledParams {
    /// Hex SHA-256 of the parameters' canonical JSON.
    pub hash: String,
    /// The parameters.
    pub params: crate::Params,
    /// Height the quorum was reached.
    pub accepted_at: u64,
    /// First height the parameters apply to.
    pub effective: u64,
}

/// The `/params/proposals` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsProposals {
    /// Proposals below quorum, one per member.
    pub proposals: Vec<ParamsProposal>,
    /// The accepted change waiting for its height.
    pub scheduled: Option<ScheduledParams>,
}

/// A reserve output at the next federation's peg, created by a settled migration batch; it joins
/// the reserve UTXO set when the federation switches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigratedUtxo {
    /// The migration transaction.
    pub txid: String,
    /// The output index.
    pub vout: u32,
    /// Value in satoshi.
    pub amount: crate::Amount,
}

/// The hand-over from the current federation to the one a key generation produced: the vault's
/// rotation on Ethereum, the reserves' migration on Bitcoin, then the switch. Kept after the
/// switch (`switched`) as the record of how the epoch began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The epoch handed to.
    pub epoch: u64,
    /// The key generation session that made its federation (`/dkg/<session>`).
    pub session: u64,
    /// The height whose end started it (the key generation completed).
    pub started: u64,
    /// The vault's rotation batch, once formed (none while Ethereum batches are in flight, and
    /// never on a chain without a vault).
    pub rotation_batch: Option<u64>,
    /// When a quorum attested the rotation on Ethereum (or when the hand-over started, on a chain
    /// without a vault).
    pub rotated: Option<u64>,
    /// The migration batches formed, in order.
    pub migration_batches: Vec<u64>,
    /// The outputs settled migrations created at the next peg.
    pub migrated: Vec<MigratedUtxo>,
    /// When the federation switched (the hand-over is over).
    pub switched: Option<u64>,
    /// Why no migration could form at the last batching height, if none could (the fee budget).
    #[serde(default)]
    pub waiting: Option<String>,
}

impl Handover {
    /// Whether the hand-over is still running.
    pub fn in_progress(&self) -> bool {
        self.switched.is_none()
    }
}

/// A federation that handed over, as relayers watch its peg (answer to
/// [`RETIRED_FEDERATIONS_PATH`], newest first): deposits to it are minted until `grace_until`
/// (`old_peg_grace_blocks` after the switch), and its outputs are swept to the current peg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredFederation {
    /// Its epoch.
    pub epoch: u64,
    /// The federation, as it was when it handed over.
    pub federation: crate::genesis::Federation,
    /// The height of the switch away from it.
    pub switched: u64,
    /// The last height at which a deposit to its peg is still minted (first attested).
    pub grace_until: u64,
}

impl RetiredFederation {
    /// The federation of `epoch` that switched away at height `switched`: deposits to its peg
    /// still mint for `grace_blocks` after the switch (`deposits.old_peg_grace_blocks`).
    pub fn new(epoch: u64, federation: crate::genesis::Federation, switched: u64, grace_blocks: u64) -> Self {
        RetiredFederation { epoch, federation, switched, grace_until: switched.saturating_add(grace_blocks) }
    }
}
