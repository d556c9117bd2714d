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

/// The number of the latest key generation session (a `u64`).
pub const DKG_LATEST: &[u8] = b"dkg/latest";

/// Key generation session `n` ([`crate::query::federation::DkgSession`]).
pub fn dkg_session(n: u64) -> Vec<u8> {
    [b"dkg/session/".as_slice(), &n.to_be_bytes()].concat()
}

/// The dealing ([`crate::query::federation::DkgDealing`]) of participant `position` in attempt
/// `attempt` of session `n`.
pub fn dkg_dealing(n: u64, attempt: u32, position: u32) -> Vec<u8> {
    [b"dkg/dealing/".as_slice(), &n.to_be_bytes(), &attempt.to_be_bytes(), &position.to_be_bytes()].concat()
}

/// The federation the last completed key generation made, until its hand-over
/// ([`crate::genesis::Federation`]).
pub const NEXT_FEDERATION: &[u8] = b"dkg/next_federation";

/// The hand-over to `epoch` ([`crate::query::federation::Handover`]).
pub fn handover(epoch: u64) -> Vec<u8> {
    format!("handover/{epoch:020}").into_bytes()
}

/// The federation of `epoch`, kept when it handed over ([`crate::genesis::Federation`]).
pub fn retired_federation(epoch: u64) -> Vec<u8> {
    format!("federation/epoch/{epoch:020}").into_bytes()
}

/// Prefix of the deposit-address registrations (`DepositAddressRecord`s), each keyed by its
/// big-endian registration number (1, 2, …).
pub const DEPOSIT_ADDRESS_PREFIX: &[u8] = b"deposit_address/";

/// Key of deposit-address registration `number`.
pub fn deposit_address(number: u64) -> Vec<u8> {
    [DEPOSIT_ADDRESS_PREFIX, &number.to_be_bytes()].concat()
}

/// Key of the number of deposit-address registrations (a `u64`; the collection's counter).
pub fn deposit_address_count() -> Vec<u8> {
    [b"count/".as_slice(), DEPOSIT_ADDRESS_PREFIX].concat()
}

/// Prefix of the Ethereum exit claims ([`crate::exit_tree::Claim`]), each keyed by its position
/// in the exit tree as a big-endian `u32`: the leaves the exit tree is built from.
pub const EXIT_CLAIM_PREFIX: &[u8] = b"exit/eth/claim/";

/// Key of the exit claim at position `index`.
pub fn exit_claim(index: u32) -> Vec<u8> {
    [EXIT_CLAIM_PREFIX, &index.to_be_bytes()].concat()
}

/// The exit tree's root over the committed claims ([`crate::exit_tree::ExitRoot`]), written by
/// the first block after the claims changed.
pub const EXIT_ROOT: &[u8] = b"exit/eth/root";
