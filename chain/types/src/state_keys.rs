//! Where the state machine stores the records that parties outside the chain read with a proof
//! (`ferry_types::query::STORE_PATH`, the `ferry-light` reader): a verified reader must build the
//! key itself, since the proof is of the key's hash. One home for these keys; `ferry-app` stores
//! its records under them (its other keys are its own business).

use crate::address::Address;
use crate::query::WithdrawalId;

/// Prefix of account records (`ferry_app::state::AccountRecord`): `acct/` + the 20-byte account id.
pub const ACCOUNT_PREFIX: &[u8] = b"acct/";
/// The chain parameters ([`crate::Params`]).
pub const PARAMS: &[u8] = b"params";
/// The federation ([`crate::genesis::Federation`]).
pub const FEDERATION: &[u8] = b"federation";

/// Key of an account record.
pub fn account(address: &Address) -> Vec<u8> {
    [ACCOUNT_PREFIX, address.as_bytes().as_slice()].concat()
}

/// Key of a release batch record ([`crate::query::Batch`]).
pub fn batch(id: u64) -> Vec<u8> {
    format!("batch/{id}").into_bytes()
}

/// Key of a withdrawal record ([`crate::query::Withdrawal`]).
pub fn withdrawal(id: WithdrawalId) -> Vec<u8> {
    format!("withdrawal/{}", id.0).into_bytes()
}

/// Key of a member's audit-log anchor ([`crate::query::audit::AuditAnchor`]):
/// `audit_anchor/` + the 20-byte member id + `/` + the log's name.
pub fn audit_anchor(member: &Address, log: crate::query::audit::AuditLogName) -> Vec<u8> {
    [b"audit_anchor/".as_slice(), member.as_bytes().as_slice(), b"/", log.as_str().as_bytes()].concat()
}
