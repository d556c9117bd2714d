//! Every record the state holds, by key: which type lives under which key. One table, so that
//! the encoding can be checked for every record the application writes (decoding then encoding
//! gives back the stored bytes: [`reencode`]) and any entry can be shown as JSON ([`to_json`]).
//! A key no entry of the table matches is an error: adding a record means adding it here.

use ferry_types::deposit_record::DepositRecord;
use ferry_types::genesis::Federation;
use ferry_types::query::audit::AuditAnchor;
use ferry_types::query::federation::{
    DkgDealing, DkgSession, FederationProposals, Handover, HeartbeatRound, MemberHeartbeat, ParamsProposals, SignerKeys,
};
use ferry_types::query::{
    AssetLedger, Batch, BridgeStatus, DepositAddressRecord, OpenUnattributed, ParentClock, ReserveUtxo, ReservesCheck,
    ReservesRound, TokenProposals, Withdrawal, WithdrawalId,
};
use ferry_types::release::fee::FeeRate;
use ferry_types::{Denom, Params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::WindowOutflow;
use crate::deposit_address::BlockLoad;
use crate::duties::DutyLoad;
use crate::state::{AccountRecord, StateError, decode, encode};

/// How a key is matched.
#[derive(Clone, Copy, Debug)]
enum Match {
    /// Exactly this key.
    Exact(&'static [u8]),
    /// Any key starting with this.
    Prefix(&'static [u8]),
}

/// Decodes the bytes stored under a key (the key names a corrupt record) into an `Out`.
type Decoder<Out> = fn(&[u8], &[u8]) -> Result<Out, StateError>;

/// What one kind of record is decoded as: its re-encoding and its JSON.
struct Codec {
    reencode: Decoder<Vec<u8>>,
    to_json: Decoder<serde_json::Value>,
}

fn reencode_as<T: Serialize + DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<Vec<u8>, StateError> {
    Ok(encode(&decode::<T>(key, bytes)?))
}

fn json_as<T: Serialize + DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<serde_json::Value, StateError> {
    serde_json::to_value(decode::<T>(key, bytes)?)
        .map_err(|e| StateError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), reason: e.to_string() })
}

const fn codec<T: Serialize + DeserializeOwned>() -> Codec {
    Codec { reencode: reencode_as::<T>, to_json: json_as::<T> }
}

/// Every record kind, the more specific keys first (`deposit_address/` before `deposit/`…).
const RECORDS: &[(Match, Codec)] = &[
    (Match::Prefix(b"count/"), codec::<u64>()),
    (Match::Prefix(crate::state::keys::ACCOUNT_PREFIX), codec::<AccountRecord>()),
    (Match::Exact(crate::state::keys::PARAMS), codec::<Params>()),
    (Match::Exact(crate::state::keys::FEDERATION), codec::<Federation>()),
    (Match::Exact(crate::state::keys::NEXT_ACCOUNT_NUMBER), codec::<u64>()),
    (Match::Prefix(b"federation/epoch/"), codec::<Federation>()),
    (Match::Exact(b"federation_proposals"), codec::<FederationProposals>()),
    (Match::Prefix(b"signer_keys/"), codec::<SignerKeys>()),
    (Match::Exact(b"dkg/latest"), codec::<u64>()),
    (Match::Prefix(b"dkg/session/"), codec::<DkgSession>()),
    (Match::Prefix(b"dkg/dealing/"), codec::<DkgDealing>()),
    (Match::Exact(b"dkg/next_federation"), codec::<Federation>()),
    (Match::Prefix(b"handover/"), codec::<Handover>()),
    (Match::Exact(b"liveness/round"), codec::<HeartbeatRound>()),
    (Match::Prefix(b"liveness/member/"), codec::<MemberHeartbeat>()),
    (Match::Exact(b"governance/params"), codec::<ParamsProposals>()),
    (Match::Prefix(b"listing/"), codec::<TokenProposals>()),
    (Match::Prefix(b"duty_load/"), codec::<DutyLoad>()),
    (Match::Prefix(b"audit_anchor/"), codec::<AuditAnchor>()),
    (Match::Exact(b"bridge_status"), codec::<BridgeStatus>()),
    (Match::Exact(b"reserves_check/round"), codec::<ReservesRound>()),
    (Match::Prefix(b"reserves_check/last/"), codec::<ReservesCheck>()),
    (Match::Exact(b"bitcoin/fee_rate"), codec::<FeeRate>()),
    (Match::Exact(b"bitcoin/parent_clock"), codec::<ParentClock>()),
    (Match::Exact(b"ethereum/parent_clock"), codec::<ParentClock>()),
    (Match::Exact(b"bitcoin/last_release_waited"), codec::<u64>()),
    (Match::Prefix(b"deposit_address_of/"), codec::<u64>()),
    (Match::Exact(b"deposit_address_load"), codec::<BlockLoad>()),
    (Match::Prefix(b"deposit_address/"), codec::<DepositAddressRecord>()),
    (Match::Prefix(b"deposit/"), codec::<DepositRecord>()),
    (Match::Prefix(b"open_deposits/"), codec::<u64>()),
    (Match::Exact(b"ledger_denoms"), codec::<Vec<Denom>>()),
    (Match::Prefix(b"ledger/"), codec::<AssetLedger>()),
    (Match::Prefix(b"btc_utxo/"), codec::<ReserveUtxo>()),
    (Match::Prefix(b"btc_utxo_free/"), codec::<ReserveUtxo>()),
    (Match::Prefix(b"btc_utxo_retired/"), codec::<ReserveUtxo>()),
    (Match::Prefix(b"unattributed_open/"), codec::<OpenUnattributed>()),
    (Match::Prefix(b"withdrawal_queue/"), codec::<WithdrawalId>()),
    (Match::Prefix(b"withdrawal/"), codec::<Withdrawal>()),
    (Match::Prefix(b"withdrawn/"), codec::<WindowOutflow>()),
    (Match::Exact(b"last_withdrawal"), codec::<u64>()),
    (Match::Prefix(b"pending_batch/"), codec::<u64>()),
    (Match::Prefix(b"batch/"), codec::<Batch>()),
    (Match::Exact(b"last_batch"), codec::<u64>()),
    (Match::Prefix(b"outflow/"), codec::<WindowOutflow>()),
    (Match::Prefix(ferry_types::state_keys::EXIT_CLAIM_PREFIX), codec::<ferry_types::exit_tree::Claim>()),
    (Match::Exact(ferry_types::state_keys::EXIT_ROOT), codec::<ferry_types::exit_tree::ExitRoot>()),
    (Match::Prefix(b"exit/eth/position/"), codec::<u32>()),
    (Match::Exact(b"exit/eth/next_position"), codec::<u32>()),
    (Match::Exact(b"exit/eth/heartbeat/in_flight"), codec::<u64>()),
    (Match::Exact(b"exit/eth/heartbeat/formed"), codec::<u64>()),
    (Match::Exact(b"exit/eth/heartbeat/landed"), codec::<crate::vault_heartbeat::Landed>()),
    (
        Match::Prefix(ferry_types::state_keys::EXIT_BTC_CLAIMS_PREFIX),
        codec::<Vec<ferry_types::release::exit::RecordedClaim>>(),
    ),
    (Match::Prefix(ferry_types::state_keys::EXIT_BTC_FOR_PREFIX), codec::<u64>()),
    (Match::Exact(ferry_types::state_keys::EXIT_BTC_COVERING), codec::<u64>()),
    (Match::Prefix(ferry_types::state_keys::RECOVERY_BTC_PREFIX), codec::<String>()),
    (Match::Prefix(b"exit/btc/live/"), codec::<(u64, u32)>()),
    (Match::Prefix(b"exit/btc/holder/"), codec::<(ferry_types::Address, ferry_types::Amount)>()),
];

/// A key no record kind is known for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No entry of the table matches the key.
    #[error("no record kind is known for key `{0}` (add it to ferry_app::records)")]
    UnknownKey(String),
    /// The bytes do not decode as the key's record.
    #[error(transparent)]
    Corrupt(#[from] StateError),
}

fn codec_of(key: &[u8]) -> Result<&'static Codec, RecordError> {
    RECORDS
        .iter()
        .find(|(rule, _)| match rule {
            Match::Exact(exact) => key == *exact,
            Match::Prefix(prefix) => key.starts_with(prefix),
        })
        .map(|(_, codec)| codec)
        .ok_or_else(|| RecordError::UnknownKey(String::from_utf8_lossy(key).into_owned()))
}

/// The record under `key` decoded as its type and encoded again (equal to `bytes` for every
/// record the application wrote).
///
/// # Errors
/// [`RecordError`] for an unknown key or bytes that do not decode.
pub fn reencode(key: &[u8], bytes: &[u8]) -> Result<Vec<u8>, RecordError> {
    Ok((codec_of(key)?.reencode)(key, bytes)?)
}

/// The record under `key`, as JSON.
///
/// # Errors
/// [`RecordError`] for an unknown key or bytes that do not decode.
pub fn to_json(key: &[u8], bytes: &[u8]) -> Result<serde_json::Value, RecordError> {
    Ok((codec_of(key)?.to_json)(key, bytes)?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferry_types::release::eth::EthAddress;
    use ferry_types::{Address, Amount};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Accounts with any balances: the binary form round-trips byte for byte, is much smaller
        /// than the JSON the state used to hold, and the JSON form (answers) is unchanged text.
        #[test]
        fn account_records_round_trip(
            number in any::<u64>(),
            sequence in any::<u64>(),
            balances in proptest::collection::btree_map("[a-z]{3,5}", any::<u128>(), 0..4),
            key in proptest::option::of("[0-9a-f]{66}"),
        ) {
            let balances: BTreeMap<Denom, Amount> = balances
                .into_iter()
                .filter_map(|(denom, amount)| Some((denom.parse().ok()?, Amount::new(amount))))
                .collect();
            let record = AccountRecord { account_number: number, sequence, public_key: key, balances };
            let bytes = encode(&record);
            prop_assert_eq!(reencode(b"acct/12345678901234567890", &bytes)?, bytes.clone());
            prop_assert_eq!(decode::<AccountRecord>(b"acct/", &bytes)?, record.clone());
            prop_assert!(bytes.len() < serde_json::to_vec(&record).map_err(|e| TestCaseError::fail(e.to_string()))?.len());
        }

        #[test]
        fn addresses_and_amounts_are_fixed_width_binary_and_text_in_json(bytes in any::<[u8; 20]>(), amount in any::<u128>()) {
            let (address, eth, amount) = (Address::from_bytes(bytes), EthAddress::from_bytes(bytes), Amount::new(amount));
            prop_assert_eq!(encode(&address), bytes.to_vec());
            prop_assert_eq!(encode(&eth), bytes.to_vec());
            prop_assert_eq!(encode(&amount), amount.get().to_le_bytes().to_vec());
            prop_assert_eq!(decode::<Address>(b"k", &encode(&address))?, address);
            prop_assert_eq!(decode::<Amount>(b"k", &encode(&amount))?, amount);
            prop_assert_eq!(serde_json::to_value(address).ok(), Some(serde_json::Value::String(address.to_string())));
            prop_assert_eq!(serde_json::to_value(amount).ok(), Some(serde_json::Value::String(amount.to_string())));
        }
    }

    #[test]
    fn unknown_keys_and_trailing_bytes_are_refused() {
        assert!(matches!(reencode(b"no_such_record", &[]), Err(RecordError::UnknownKey(_))));
        let mut bytes = encode(&7u64);
        bytes.push(0);
        assert!(matches!(reencode(b"last_batch", &bytes), Err(RecordError::Corrupt(_))), "not canonical");
        assert_eq!(to_json(b"last_batch", &encode(&7u64)).ok(), Some(serde_json::json!(7)));
    }
}
