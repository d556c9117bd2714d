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
/// `bitcoin`, its Bitcoin key. `None` for a BLS payload without a share (a candidate of the next
/// federation holds no share of the current key; it signs only Bitcoin disbursals of the next
/// epoch, with its one Bitcoin key).
pub fn sign(
    rebuilt: &Rebuilt,
    bls: Option<&SecretKeyShare>,
    bitcoin: &bitcoin::secp256k1::SecretKey,
) -> Option<ReleaseSignatures> {
    match &rebuilt.payload {
        Payload::Ethereum { bytes, .. }
        | Payload::Listing { bytes, .. }
        | Payload::Rotation { bytes, .. }
        | Payload::Heartbeat { bytes, .. } => {
            let share = bls::sign_share(bls?, bytes);
            Some(ReleaseSignatures::Bls(bls::encode_signature_share(&share).to_vec()))
        }
        Payload::Bitcoin { sighashes, .. } => {
            Some(ReleaseSignatures::Bitcoin(sighashes.iter().map(|sighash| sign_input(bitcoin, sighash)).collect()))
        }
    }
}
