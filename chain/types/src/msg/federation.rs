//! Messages that change the federation: signer key registration, proposals of a new member set,
//! and the three steps of its key generation (deal, complain, confirm). See [`crate::dkg`] for
//! the cryptography and the chain's `dkg` module for the session they drive.

use bls12_381::G1Affine;
use prost::Message;

use super::MsgError;
use crate::address::{Address, AddressError};
use crate::dkg::{self, DkgError, ENCRYPTED_SHARE_LEN, Proof};
use crate::release::bls::{self, SignatureShare};

/// Type URL of [`MsgRegisterSignerKeysProto`].
pub const MSG_REGISTER_SIGNER_KEYS_TYPE_URL: &str = "/ferry.federation.v1.MsgRegisterSignerKeys";
/// Type URL of [`MsgProposeFederationProto`].
pub const MSG_PROPOSE_FEDERATION_TYPE_URL: &str = "/ferry.federation.v1.MsgProposeFederation";
/// Type URL of [`MsgDkgDealProto`].
pub const MSG_DKG_DEAL_TYPE_URL: &str = "/ferry.federation.v1.MsgDkgDeal";
/// Type URL of [`MsgDkgComplainProto`].
pub const MSG_DKG_COMPLAIN_TYPE_URL: &str = "/ferry.federation.v1.MsgDkgComplain";
/// Type URL of [`MsgDkgConfirmProto`].
pub const MSG_DKG_CONFIRM_TYPE_URL: &str = "/ferry.federation.v1.MsgDkgConfirm";

/// Type URL of [`MsgProposeParamsProto`].
pub const MSG_PROPOSE_PARAMS_TYPE_URL: &str = "/ferry.federation.v1.MsgProposeParams";
/// Type URL of [`MsgHeartbeatProto`].
pub const MSG_HEARTBEAT_TYPE_URL: &str = "/ferry.federation.v1.MsgHeartbeat";

/// Most members a federation may have: as many keys as the Bitcoin peg holds.
pub const MAX_FEDERATION_MEMBERS: usize = crate::peg::MAX_PEG_KEYS;

/// Wire form of `ferry.federation.v1.MsgRegisterSignerKeys`: an account (a member, or a candidate
/// for a future federation) registers the keys it would serve with. Fee-exempt; may open the
/// account.
#[derive(Clone, PartialEq, Message)]
pub struct MsgRegisterSignerKeysProto {
    /// The account (the signer), bech32.
    #[prost(string, tag = "1")]
    pub account: String,
    /// Its DKG encryption key: a 48-byte compressed BLS12-381 G1 point.
    #[prost(bytes = "vec", tag = "2")]
    pub encryption_key: Vec<u8>,
    /// Proof of possession of the encryption key, bound to the account (64 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub encryption_key_proof: Vec<u8>,
    /// Its Bitcoin key: a 33-byte compressed secp256k1 public key.
    #[prost(bytes = "vec", tag = "4")]
    pub bitcoin_key: Vec<u8>,
    /// ECDSA signature (64-byte compact) by the Bitcoin key over
    /// [`bitcoin_key_possession_digest`] of the account.
    #[prost(bytes = "vec", tag = "5")]
    pub bitcoin_key_signature: Vec<u8>,
}

/// Wire form of `ferry.federation.v1.MsgProposeFederation`: a member proposes the next member set.
/// `attest_quorum` identical proposals start its key generation.
#[derive(Clone, PartialEq, Message)]
pub struct MsgProposeFederationProto {
    /// The proposing member (the signer), bech32.
    #[prost(string, tag = "1")]
    pub member: String,
    /// The proposed members, bech32, in the order they will hold (share positions, Bitcoin key
    /// order).
    #[prost(string, repeated, tag = "2")]
    pub members: Vec<String>,
    /// Signatures needed to release funds (T).
    #[prost(uint32, tag = "3")]
    pub threshold: u32,
}

/// Wire form of `ferry.federation.v1.MsgDkgDeal`: a participant's commitment, proof of knowledge
/// and encrypted shares.
#[derive(Clone, PartialEq, Message)]
pub struct MsgDkgDealProto {
    /// The participant (the signer), bech32.
    #[prost(string, tag = "1")]
    pub participant: String,
    /// The session.
    #[prost(uint64, tag = "2")]
    pub session: u64,
    /// The attempt.
    #[prost(uint32, tag = "3")]
    pub attempt: u32,
    /// T compressed G1 points (48 bytes each), constant term first.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub commitment: Vec<Vec<u8>>,
    /// Proof of knowledge of the constant term (64 bytes).
    #[prost(bytes = "vec", tag = "5")]
    pub proof: Vec<u8>,
    /// One 32-byte encrypted share per participant, in participant order.
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub encrypted_shares: Vec<Vec<u8>>,
}

/// Wire form of `ferry.federation.v1.MsgDkgComplain`: a participant accuses a dealer of a share
/// that does not match its commitment, revealing their pairwise key with a proof.
#[derive(Clone, PartialEq, Message)]
pub struct MsgDkgComplainProto {
    /// The accuser (the signer), bech32.
    #[prost(string, tag = "1")]
    pub participant: String,
    /// The session.
    #[prost(uint64, tag = "2")]
    pub session: u64,
    /// The attempt.
    #[prost(uint32, tag = "3")]
    pub attempt: u32,
    /// The accused dealer, bech32.
    #[prost(string, tag = "4")]
    pub dealer: String,
    /// The pairwise key (48-byte compressed G1 point).
    #[prost(bytes = "vec", tag = "5")]
    pub pairwise_key: Vec<u8>,
    /// Proof that the key is the accuser's (64 bytes).
    #[prost(bytes = "vec", tag = "6")]
    pub proof: Vec<u8>,
}

/// Wire form of `ferry.federation.v1.MsgDkgConfirm`: a participant's signature share over the
/// run's confirmation message, made with its final share.
#[derive(Clone, PartialEq, Message)]
pub struct MsgDkgConfirmProto {
    /// The participant (the signer), bech32.
    #[prost(string, tag = "1")]
    pub participant: String,
    /// The session.
    #[prost(uint64, tag = "2")]
    pub session: u64,
    /// The attempt.
    #[prost(uint32, tag = "3")]
    pub attempt: u32,
    /// 96-byte compressed G2 signature share.
    #[prost(bytes = "vec", tag = "4")]
    pub signature: Vec<u8>,
}

/// Wire form of `ferry.federation.v1.MsgHeartbeat`: a member's answer to a heartbeat round's
/// challenge (see [`crate::liveness`]).
#[derive(Clone, PartialEq, Message)]
pub struct MsgHeartbeatProto {
    /// The member (the signer), bech32.
    #[prost(string, tag = "1")]
    pub member: String,
    /// The round answered.
    #[prost(uint64, tag = "2")]
    pub round: u64,
    /// BLS signature share (96 bytes) under the heartbeat tag; empty when the federation has no
    /// BLS key.
    #[prost(bytes = "vec", tag = "3")]
    pub bls_signature: Vec<u8>,
    /// Bitcoin-key signature (64-byte compact ECDSA) over the heartbeat digest; empty when the
    /// federation has no Bitcoin peg.
    #[prost(bytes = "vec", tag = "4")]
    pub bitcoin_signature: Vec<u8>,
}

/// A validated heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgHeartbeat {
    /// The member (the signer).
    pub member: Address,
    /// The round answered.
    pub round: u64,
    /// Its BLS share, if the federation has a BLS key.
    pub bls_signature: Option<SignatureShare>,
    /// Its Bitcoin-key signature, if the federation has a peg.
    pub bitcoin_signature: Option<[u8; 64]>,
}

impl MsgHeartbeat {
    /// Validates the wire form (the chain checks the signatures).
    ///
    /// # Errors
    /// A malformed field, named.
    pub fn from_proto(proto: &MsgHeartbeatProto) -> Result<MsgHeartbeat, MsgError> {
        const URL: &str = MSG_HEARTBEAT_TYPE_URL;
        let bls_signature = if proto.bls_signature.is_empty() {
            None
        } else {
            Some(bls::decode_signature_share(&proto.bls_signature).map_err(|e| field(URL, "bls_signature", e))?)
        };
        let bitcoin_signature = if proto.bitcoin_signature.is_empty() {
            None
        } else {
            Some(
                <[u8; 64]>::try_from(proto.bitcoin_signature.as_slice())
                    .map_err(|_| field(URL, "bitcoin_signature", "expected a 64-byte compact signature"))?,
            )
        };
        Ok(MsgHeartbeat {
            member: address(URL, "member", &proto.member)?,
            round: proto.round,
            bls_signature,
            bitcoin_signature,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgHeartbeatProto {
        MsgHeartbeatProto {
            member: self.member.to_string(),
            round: self.round,
            bls_signature: self
                .bls_signature
                .as_ref()
                .map(|s| bls::encode_signature_share(s).to_vec())
                .unwrap_or_default(),
            bitcoin_signature: self.bitcoin_signature.map(|s| s.to_vec()).unwrap_or_default(),
        }
    }
}

/// Wire form of `ferry.federation.v1.MsgProposeParams`: a member proposes the complete next
/// parameter set. `attest_quorum` identical proposals schedule it.
#[derive(Clone, PartialEq, Message)]
pub struct MsgProposeParamsProto {
    /// The proposing member (the signer), bech32.
    #[prost(string, tag = "1")]
    pub member: String,
    /// The parameters, as the `/params` query answers them (JSON).
    #[prost(string, tag = "2")]
    pub params_json: String,
}

/// A validated parameter proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgProposeParams {
    /// The proposing member (the signer).
    pub member: Address,
    /// The proposed parameters (checked like genesis').
    pub params: crate::Params,
}

impl MsgProposeParams {
    /// Validates the wire form: parameters that parse (no unknown field) and pass the genesis
    /// checks.
    ///
    /// # Errors
    /// A malformed member, or parameters that do not parse or check.
    pub fn from_proto(proto: &MsgProposeParamsProto) -> Result<MsgProposeParams, MsgError> {
        const URL: &str = MSG_PROPOSE_PARAMS_TYPE_URL;
        let params: crate::Params =
            serde_json::from_str(&proto.params_json).map_err(|e| field(URL, "params_json", e))?;
        params.validate().map_err(|e| field(URL, "params_json", e))?;
        Ok(MsgProposeParams { member: address(URL, "member", &proto.member)?, params })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgProposeParamsProto {
        MsgProposeParamsProto { member: self.member.to_string(), params_json: params_json(&self.params) }
    }

    /// The proposal's identity: hex SHA-256 of the parameters' canonical JSON, so members who
    /// propose the same parameters agree whatever their JSON looked like.
    pub fn params_hash(&self) -> String {
        hex::encode(crate::key::sha256(params_json(&self.params).as_bytes()))
    }
}

/// The canonical JSON of `params` (serde's field order).
fn params_json(params: &crate::Params) -> String {
    serde_json::to_string(params).unwrap_or_default()
}

/// What a Bitcoin key signs to register for `account`: SHA-256 of a domain tag and the account.
pub fn bitcoin_key_possession_digest(account: &Address) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new().chain_update(b"ferry-register-bitcoin-key-v1").chain_update(account.as_bytes()).finalize().into()
}

/// A validated signer key registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgRegisterSignerKeys {
    /// The account (the signer).
    pub account: Address,
    /// The DKG encryption key.
    pub encryption_key: G1Affine,
    /// Its proof of possession.
    pub encryption_key_proof: Proof,
    /// The Bitcoin key (compressed).
    pub bitcoin_key: [u8; 33],
    /// Its signature over [`bitcoin_key_possession_digest`].
    pub bitcoin_key_signature: [u8; 64],
}

/// A validated federation proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgProposeFederation {
    /// The proposing member (the signer).
    pub member: Address,
    /// The proposed members, in order, distinct.
    pub members: Vec<Address>,
    /// The signing threshold: a majority of the members, at most all of them.
    pub threshold: u32,
}

/// A validated dealing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgDkgDeal {
    /// The participant (the signer).
    pub participant: Address,
    /// Which run.
    pub run: dkg::Run,
    /// The commitment.
    pub commitment: Vec<G1Affine>,
    /// Proof of knowledge of the constant term.
    pub proof: Proof,
    /// Encrypted shares, in participant order.
    pub encrypted_shares: Vec<[u8; ENCRYPTED_SHARE_LEN]>,
}

/// A validated complaint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgDkgComplain {
    /// The accuser (the signer).
    pub participant: Address,
    /// Which run.
    pub run: dkg::Run,
    /// The accused dealer.
    pub dealer: Address,
    /// Their pairwise key.
    pub pairwise_key: G1Affine,
    /// Proof the key is the accuser's.
    pub proof: Proof,
}

/// A validated confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgDkgConfirm {
    /// The participant (the signer).
    pub participant: Address,
    /// Which run.
    pub run: dkg::Run,
    /// The signature share.
    pub signature: SignatureShare,
}

fn field(type_url: &'static str, field: &'static str, reason: impl ToString) -> MsgError {
    MsgError::Field { type_url, field, reason: reason.to_string() }
}

fn address(type_url: &'static str, name: &'static str, text: &str) -> Result<Address, MsgError> {
    text.parse().map_err(|e: AddressError| field(type_url, name, e))
}

fn run(type_url: &'static str, session: u64, attempt: u32) -> Result<dkg::Run, MsgError> {
    if attempt == 0 {
        return Err(field(type_url, "attempt", "attempts are numbered from 1"));
    }
    Ok(dkg::Run { session, attempt })
}

fn dkg_field(type_url: &'static str, name: &'static str) -> impl Fn(DkgError) -> MsgError {
    move |error| field(type_url, name, error)
}

impl MsgRegisterSignerKeys {
    /// Validates the wire form, including both proofs of possession.
    ///
    /// # Errors
    /// A malformed field or a proof that does not verify, named.
    pub fn from_proto(proto: &MsgRegisterSignerKeysProto) -> Result<MsgRegisterSignerKeys, MsgError> {
        const URL: &str = MSG_REGISTER_SIGNER_KEYS_TYPE_URL;
        let account = address(URL, "account", &proto.account)?;
        let encryption_key =
            dkg::decode_point(&proto.encryption_key, "the encryption key").map_err(dkg_field(URL, "encryption_key"))?;
        let proof = Proof::from_bytes(&proto.encryption_key_proof, "the encryption key's proof of possession")
            .map_err(dkg_field(URL, "encryption_key_proof"))?;
        if !dkg::verify_possession(&encryption_key, &account, &proof) {
            return Err(field(URL, "encryption_key_proof", "does not prove possession of the key for this account"));
        }
        let bitcoin_key: [u8; 33] = proto
            .bitcoin_key
            .as_slice()
            .try_into()
            .map_err(|_| field(URL, "bitcoin_key", "expected a 33-byte compressed secp256k1 public key"))?;
        let key = secp256k1::PublicKey::from_slice(&bitcoin_key)
            .map_err(|e| field(URL, "bitcoin_key", format!("not a secp256k1 public key: {e}")))?;
        let signature = secp256k1::ecdsa::Signature::from_compact(&proto.bitcoin_key_signature)
            .map_err(|e| field(URL, "bitcoin_key_signature", format!("not a 64-byte compact signature: {e}")))?;
        let digest = secp256k1::Message::from_digest(bitcoin_key_possession_digest(&account));
        secp256k1::global::SECP256K1.verify_ecdsa(&digest, &signature, &key).map_err(|_| {
            field(URL, "bitcoin_key_signature", "does not prove possession of the Bitcoin key for this account")
        })?;
        let bitcoin_key_signature = signature.serialize_compact();
        Ok(MsgRegisterSignerKeys {
            account,
            encryption_key,
            encryption_key_proof: proof,
            bitcoin_key,
            bitcoin_key_signature,
        })
    }

    /// The registration of `account`'s keys, with both proofs (made by the key holder).
    pub fn new(
        account: Address,
        encryption: &dkg::EncryptionKey,
        bitcoin: &secp256k1::SecretKey,
    ) -> MsgRegisterSignerKeys {
        let digest = secp256k1::Message::from_digest(bitcoin_key_possession_digest(&account));
        let public = secp256k1::PublicKey::from_secret_key(secp256k1::global::SECP256K1, bitcoin);
        MsgRegisterSignerKeys {
            account,
            encryption_key: encryption.public(),
            encryption_key_proof: encryption.prove_possession(&account),
            bitcoin_key: public.serialize(),
            bitcoin_key_signature: secp256k1::global::SECP256K1.sign_ecdsa(&digest, bitcoin).serialize_compact(),
        }
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgRegisterSignerKeysProto {
        MsgRegisterSignerKeysProto {
            account: self.account.to_string(),
            encryption_key: dkg::encode_point(&self.encryption_key).to_vec(),
            encryption_key_proof: self.encryption_key_proof.to_bytes().to_vec(),
            bitcoin_key: self.bitcoin_key.to_vec(),
            bitcoin_key_signature: self.bitcoin_key_signature.to_vec(),
        }
    }
}

impl MsgProposeFederation {
    /// Validates the wire form: 1..=20 distinct members, a threshold that is a majority of them.
    ///
    /// # Errors
    /// A malformed or repeated member, or a threshold out of range.
    pub fn from_proto(proto: &MsgProposeFederationProto) -> Result<MsgProposeFederation, MsgError> {
        const URL: &str = MSG_PROPOSE_FEDERATION_TYPE_URL;
        let member = address(URL, "member", &proto.member)?;
        let members = proto.members.iter().map(|text| address(URL, "members", text)).collect::<Result<Vec<_>, _>>()?;
        if members.is_empty() || members.len() > MAX_FEDERATION_MEMBERS {
            return Err(field(
                URL,
                "members",
                format!("{} members; a federation has 1 to {MAX_FEDERATION_MEMBERS}", members.len()),
            ));
        }
        let distinct: std::collections::BTreeSet<&Address> = members.iter().collect();
        if distinct.len() != members.len() {
            return Err(field(URL, "members", "a member is listed twice"));
        }
        let n = u32::try_from(members.len()).unwrap_or(u32::MAX);
        if proto.threshold == 0 || proto.threshold > n || proto.threshold.saturating_mul(2) <= n {
            return Err(field(
                URL,
                "threshold",
                format!("threshold {} of {n} members: it must be a majority of them and at most all", proto.threshold),
            ));
        }
        Ok(MsgProposeFederation { member, members, threshold: proto.threshold })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgProposeFederationProto {
        MsgProposeFederationProto {
            member: self.member.to_string(),
            members: self.members.iter().map(ToString::to_string).collect(),
            threshold: self.threshold,
        }
    }
}

impl MsgDkgDeal {
    /// Validates the wire form (encodings only; the session checks sizes and the proof).
    ///
    /// # Errors
    /// A malformed field, named.
    pub fn from_proto(proto: &MsgDkgDealProto) -> Result<MsgDkgDeal, MsgError> {
        const URL: &str = MSG_DKG_DEAL_TYPE_URL;
        let participant = address(URL, "participant", &proto.participant)?;
        let run = run(URL, proto.session, proto.attempt)?;
        if proto.commitment.len() > MAX_FEDERATION_MEMBERS || proto.encrypted_shares.len() > MAX_FEDERATION_MEMBERS {
            return Err(field(URL, "commitment", format!("more than {MAX_FEDERATION_MEMBERS} entries")));
        }
        let commitment = proto
            .commitment
            .iter()
            .map(|bytes| dkg::decode_point(bytes, "a commitment coefficient"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(dkg_field(URL, "commitment"))?;
        let proof = Proof::from_bytes(&proto.proof, "the proof of knowledge").map_err(dkg_field(URL, "proof"))?;
        let encrypted_shares = proto
            .encrypted_shares
            .iter()
            .map(|bytes| <[u8; ENCRYPTED_SHARE_LEN]>::try_from(bytes.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| field(URL, "encrypted_shares", "each encrypted share is 32 bytes"))?;
        Ok(MsgDkgDeal { participant, run, commitment, proof, encrypted_shares })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgDkgDealProto {
        MsgDkgDealProto {
            participant: self.participant.to_string(),
            session: self.run.session,
            attempt: self.run.attempt,
            commitment: self.commitment.iter().map(|point| dkg::encode_point(point).to_vec()).collect(),
            proof: self.proof.to_bytes().to_vec(),
            encrypted_shares: self.encrypted_shares.iter().map(|share| share.to_vec()).collect(),
        }
    }
}

impl MsgDkgComplain {
    /// Validates the wire form (the session checks the proof).
    ///
    /// # Errors
    /// A malformed field, named.
    pub fn from_proto(proto: &MsgDkgComplainProto) -> Result<MsgDkgComplain, MsgError> {
        const URL: &str = MSG_DKG_COMPLAIN_TYPE_URL;
        Ok(MsgDkgComplain {
            participant: address(URL, "participant", &proto.participant)?,
            run: run(URL, proto.session, proto.attempt)?,
            dealer: address(URL, "dealer", &proto.dealer)?,
            pairwise_key: dkg::decode_point(&proto.pairwise_key, "the pairwise key")
                .map_err(dkg_field(URL, "pairwise_key"))?,
            proof: Proof::from_bytes(&proto.proof, "the pairwise key's proof").map_err(dkg_field(URL, "proof"))?,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgDkgComplainProto {
        MsgDkgComplainProto {
            participant: self.participant.to_string(),
            session: self.run.session,
            attempt: self.run.attempt,
            dealer: self.dealer.to_string(),
            pairwise_key: dkg::encode_point(&self.pairwise_key).to_vec(),
            proof: self.proof.to_bytes().to_vec(),
        }
    }
}

impl MsgDkgConfirm {
    /// Validates the wire form (the session checks the signature).
    ///
    /// # Errors
    /// A malformed field, named.
    pub fn from_proto(proto: &MsgDkgConfirmProto) -> Result<MsgDkgConfirm, MsgError> {
        const URL: &str = MSG_DKG_CONFIRM_TYPE_URL;
        Ok(MsgDkgConfirm {
            participant: address(URL, "participant", &proto.participant)?,
            run: run(URL, proto.session, proto.attempt)?,
            signature: bls::decode_signature_share(&proto.signature).map_err(|e| field(URL, "signature", e))?,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgDkgConfirmProto {
        MsgDkgConfirmProto {
            participant: self.participant.to_string(),
            session: self.run.session,
            attempt: self.run.attempt,
            signature: bls::encode_signature_share(&self.signature).to_vec(),
        }
    }
}
