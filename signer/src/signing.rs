//! This member's signatures over a payload it rebuilt and approved: a BLS signature share over
//! an Ethereum payload, or one ECDSA signature per Bitcoin input sighash.
//!
//! Takes only a [`Rebuilt`] payload — the signer's own bytes, never the chain's — and is called
//! only after the double-sign guard has recorded that payload ([`crate::store`]). Pure and
//! deterministic (BLS signatures are; Bitcoin signatures use RFC 6979 nonces), so signing the same
//! payload again after a crash yields the same bytes.

use ferry_types::msg::ReleaseSignatures;
use ferry_types::release::bitcoin::sign_input;
use ferry_types::release::bls::{self, SecretKeyShare};

use crate::rebuild::{Payload, Rebuilt};

/// This member's signatures over `rebuilt`: with `bls`, its share of the epoch's key, or with
/// `bitcoin`, its Bitcoin key.
pub fn sign(rebuilt: &Rebuilt, bls: &SecretKeyShare, bitcoin: &bitcoin::secp256k1::SecretKey) -> ReleaseSignatures {
    match &rebuilt.payload {
        Payload::Ethereum { bytes, .. }
        | Payload::Listing { bytes, .. }
        | Payload::Rotation { bytes, .. }
        | Payload::Heartbeat { bytes, .. } => {
            let share = bls::sign_share(bls, bytes);
            ReleaseSignatures::Bls(bls::encode_signature_share(&share).to_vec())
        }
        Payload::Bitcoin { sighashes, .. } => {
            ReleaseSignatures::Bitcoin(sighashes.iter().map(|sighash| sign_input(bitcoin, sighash)).collect())
        }
    }
}
