//! Federation duties (attestations, signatures, votes) are fee-free, so what bounds a member's
//! load on the chain is a count: at most `max_duty_msgs_per_block` duty messages of one member
//! are executed per block. A transaction past the limit uses its sequence (the block space was
//! spent) but executes nothing, with [`TxCode::DutyLimit`]; the member sends the rest in a later
//! block. One member flooding duties thus cannot crowd out the others' attestations or users'
//! transfers, and a proposer puts duties first ([`crate::block::proposal_order`]).

use ferry_types::{Address, Params, TxCode, TxRejection};
use serde::{Deserialize, Serialize};

use crate::state::{StateDelta, StateError, StateRead};

/// State keys of duty accounting.
pub mod keys {
    use ferry_types::Address;

    /// A member's duty messages in the block being executed.
    pub fn load(member: &Address) -> Vec<u8> {
        [b"duty_load/".as_slice(), member.as_bytes().as_slice()].concat()
    }
}

/// A member's duty messages executed at `height`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DutyLoad {
    height: u64,
    msgs: u64,
}

/// Counts `msgs` duty messages of `member` in the block at `height`, or refuses them when that
/// would pass the member's limit for the block.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn charge<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    member: &Address,
    msgs: usize,
    height: u64,
) -> Result<Result<(), TxRejection>, StateError> {
    let stored: DutyLoad = state.get_record(&keys::load(member))?.unwrap_or_default();
    let used = if stored.height == height { stored.msgs } else { 0 };
    let limit = u64::from(params.max_duty_msgs_per_block);
    let wanted = used.saturating_add(u64::try_from(msgs).unwrap_or(u64::MAX));
    if wanted > limit {
        return Ok(Err(TxRejection::new(
            TxCode::DutyLimit,
            format!(
                "{member} has {used} duty messages in block {height}; {msgs} more would pass the limit of {limit} per block: send them in a later block"
            ),
        )));
    }
    state.put_record(keys::load(member), &DutyLoad { height, msgs: wanted });
    Ok(Ok(()))
}
