//! Building ABCI requests without CometBFT, for driving a [`crate::Node`] in process (node tests
//! and the FinalizeBlock benchmark). Times are synthetic: block `h` is at 1_700_000_000 + h.

use bytes::Bytes;
use tendermint::abci::types::CommitInfo;
use tendermint::v0_38::abci::request;

/// Unix time of the synthetic genesis.
const GENESIS_UNIX: i64 = 1_700_000_000;

/// Why a request could not be built (an out-of-range height).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the request: {0}")]
pub struct RequestError(String);

fn error(e: impl std::fmt::Display) -> RequestError {
    RequestError(e.to_string())
}

/// `InitChain` for `chain_id` with `app_state` (genesis JSON) and CometBFT's default parameters.
///
/// # Errors
/// Never in practice (the constants are valid).
pub fn init_chain(chain_id: &str, app_state: Vec<u8>) -> Result<request::InitChain, RequestError> {
    let consensus_params = serde_json::from_str(
        r#"{"block":{"max_bytes":"22020096","max_gas":"-1"},
            "evidence":{"max_age_num_blocks":"100000","max_age_duration":"172800000000000","max_bytes":"1048576"},
            "validator":{"pub_key_types":["ed25519"]},"version":{"app":"0"},
            "abci":{"vote_extensions_enable_height":"0"}}"#,
    )
    .map_err(error)?;
    Ok(request::InitChain {
        time: tendermint::Time::from_unix_timestamp(GENESIS_UNIX, 0).map_err(error)?,
        chain_id: chain_id.to_owned(),
        consensus_params,
        validators: Vec::new(),
        app_state_bytes: app_state.into(),
        initial_height: 1u32.into(),
    })
}

/// `FinalizeBlock` for `height` holding `txs`.
///
/// # Errors
/// When `height` does not fit CometBFT's height type.
pub fn finalize_block(height: u64, txs: &[Vec<u8>]) -> Result<request::FinalizeBlock, RequestError> {
    let seconds = i64::try_from(height).map_err(error)?.saturating_add(GENESIS_UNIX);
    Ok(request::FinalizeBlock {
        txs: txs.iter().map(|tx| Bytes::from(tx.clone())).collect(),
        decided_last_commit: CommitInfo { round: 0u16.into(), votes: Vec::new() },
        misbehavior: Vec::new(),
        hash: tendermint::Hash::None,
        height: height.try_into().map_err(error)?,
        time: tendermint::Time::from_unix_timestamp(seconds, 0).map_err(error)?,
        next_validators_hash: tendermint::Hash::None,
        proposer_address: tendermint::account::Id::new([0; 20]),
    })
}
