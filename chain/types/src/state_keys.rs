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

/// Prefix of the release batch records.
pub const BATCH_PREFIX: &[u8] = b"batch/";

/// Key of a release batch record ([`crate::query::Batch`]).
pub fn batch(id: u64) -> Vec<u8> {
    format!("batch/{id}").into_bytes()
}

/// The batch id a [`batch`] key names (`None` for any other key under [`BATCH_PREFIX`]).
pub fn batch_id_of(key: &[u8]) -> Option<u64> {
    decimal_after(key, BATCH_PREFIX)
}

/// Prefix of the withdrawal records.
pub const WITHDRAWAL_PREFIX: &[u8] = b"withdrawal/";

/// Key of a withdrawal record ([`crate::query::Withdrawal`]).
pub fn withdrawal(id: WithdrawalId) -> Vec<u8> {
    format!("withdrawal/{}", id.0).into_bytes()
}

/// The withdrawal a [`withdrawal`] key names (`None` for any other key under
/// [`WITHDRAWAL_PREFIX`]).
pub fn withdrawal_id_of(key: &[u8]) -> Option<WithdrawalId> {
    decimal_after(key, WITHDRAWAL_PREFIX).map(WithdrawalId)
}

/// The decimal number that makes up the rest of `key` after `prefix`, written as the keys write
/// it (no sign, no leading zeros).
fn decimal_after(key: &[u8], prefix: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(key.strip_prefix(prefix)?).ok()?;
    text.parse().ok().filter(|number: &u64| number.to_string() == text)
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

/// The exit tree's root over the claims ([`crate::exit_tree::ExitRoot`]), written by each block
/// that changes a claim.
pub const EXIT_ROOT: &[u8] = b"exit/eth/root";

/// Page `page` of the claims Bitcoin disbursal `exit` (a batch id) pays
/// (`Vec<crate::release::exit::RecordedClaim>`, [`crate::release::exit::CLAIMS_PER_PAGE`] each).
pub fn exit_btc_claims(exit: u64, page: u32) -> Vec<u8> {
    [EXIT_BTC_CLAIMS_PREFIX, &exit.to_be_bytes(), &page.to_be_bytes()].concat()
}

/// Prefix of the holders' Bitcoin recovery scripts ([`recovery_btc`]).
pub const RECOVERY_BTC_PREFIX: &[u8] = b"exit/btc/recovery/";

/// Where the Bitcoin exit pays `account` instead of its own key's P2WPKH (`String`, the address
/// it registered with `MsgSetRecoveryAddress`).
pub fn recovery_btc(account: &Address) -> Vec<u8> {
    [RECOVERY_BTC_PREFIX, account.as_bytes()].concat()
}

/// Prefix of the Bitcoin disbursals' claim pages ([`exit_btc_claims`]).
pub const EXIT_BTC_CLAIMS_PREFIX: &[u8] = b"exit/btc/claims/";
/// Prefix of the disbursal each release version waits for ([`exit_btc_for`]).
pub const EXIT_BTC_FOR_PREFIX: &[u8] = b"exit/btc/for/";

/// The batch id of the Bitcoin disbursal covering the reserve now (`u64`), absent before the
/// first release that had one settled.
pub const EXIT_BTC_COVERING: &[u8] = b"exit/btc/covering";

/// The batch id (`u64`) of the disbursal derived for version `version` of Bitcoin batch `batch`:
/// that version is not signable before this disbursal is signed.
pub fn exit_btc_for(batch: u64, version: u32) -> Vec<u8> {
    [EXIT_BTC_FOR_PREFIX, &batch.to_be_bytes(), &version.to_be_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_back_from_their_keys_and_nothing_else() {
        assert_eq!(batch_id_of(&batch(42)), Some(42));
        assert_eq!(withdrawal_id_of(&withdrawal(WithdrawalId(7))), Some(WithdrawalId(7)));
        for other in [&b"batch/"[..], b"batch/007", b"batch/1/x", b"batch/-1", b"withdrawal/7"] {
            assert_eq!(batch_id_of(other), None, "{}", String::from_utf8_lossy(other));
        }
        assert_eq!(withdrawal_id_of(b"withdrawal_queue/wei/1"), None);
    }
}
