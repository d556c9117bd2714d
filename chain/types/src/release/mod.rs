//! Release payloads — what the federation signs to pay out on a parent chain — and the
//! cryptography that checks them. Pure: the chain builds these payloads, signers rebuild them
//! byte for byte before signing, and relayers carry the signed result.

pub mod bitcoin;
pub mod bls;
pub mod eth;
pub mod exit;
pub mod fee;
pub mod standardness;
