//! What Bitcoin releases pay miners: the fee rate the chain keeps, the parent clock it learns
//! Bitcoin's height from, and the controller that moves the rate without a fee oracle.
//!
//! - **Parent clock.** Each member's relayer reports Bitcoin's best height
//!   (`MsgAttestParentHeight`, a fee-exempt duty; Ethereum's heights keep a clock of their own,
//!   for reserves rounds — [`crate::reserves_check`]); the clock is the highest height at least
//!   `attest_quorum` members reported ([`ParentClock`]). Fewer than a quorum of lying members can
//!   neither push it ahead nor hold it back.
//! - **Fee rate.** Starts at genesis `bitcoin_start_fee_rate`, stays within
//!   `bitcoin_min_fee_rate ..= bitcoin_max_fee_rate`. Every Bitcoin batch is priced at the rate of
//!   its forming block ([`ferry_types::release::bitcoin::plan_release_at_rate`]).
//! - **Controller** ([`next_rate`], after Nomic's checkpoint fee controller). When a release
//!   settles, the parent blocks it took — from the clock's height when the batch was signed to
//!   the block holding it (the median of the heights its attesters saw) — are compared with
//!   `bitcoin_target_confirm_blocks`: slower, and the rate rises ×1.25 (at least +1 sat/vB), or
//!   to the rate of the replacement that was mined when that is higher (the market cleared there
//!   and not below: the next release need not climb the same bumps again); faster, and it falls
//!   ×0.75 (at least −1 sat/vB). A release with no clock reading (no quorum reported yet) leaves
//!   the rate alone.

use ferry_types::Params;
use ferry_types::event as ev;
use ferry_types::msg::MsgAttestParentHeight;
use ferry_types::query::{Batch, BatchRelease, BitcoinFeesView, ParentClock};
use ferry_types::release::fee::{FeeRate, next_rate};

use crate::bank::BankError;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of Bitcoin fees.
pub mod keys {
    /// The current fee rate (sat per 1,000 vB; absent: genesis `bitcoin_start_fee_rate`).
    pub const FEE_RATE: &[u8] = b"bitcoin/fee_rate";
    /// Bitcoin's parent clock ([`ferry_types::query::ParentClock`]).
    pub const PARENT_CLOCK: &[u8] = b"bitcoin/parent_clock";
    /// Ethereum's parent clock (used by reserves rounds only).
    pub const ETHEREUM_PARENT_CLOCK: &[u8] = b"ethereum/parent_clock";

    /// The parent clock of `chain`.
    pub const fn parent_clock(chain: ferry_types::ParentChain) -> &'static [u8] {
        match chain {
            ferry_types::ParentChain::Bitcoin => PARENT_CLOCK,
            ferry_types::ParentChain::Ethereum => ETHEREUM_PARENT_CLOCK,
        }
    }
    /// Parent blocks the last settled release took (JSON integer).
    pub const LAST_RELEASE_WAITED: &[u8] = b"bitcoin/last_release_waited";
}

impl<R: StateRead> StateDelta<R> {
    /// The rate the next Bitcoin release is priced at.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn bitcoin_fee_rate(&self, params: &Params) -> Result<FeeRate, StateError> {
        let start = FeeRate::from_sat_per_vb(params.withdrawals.bitcoin_start_fee_rate);
        Ok(self.get_record(keys::FEE_RATE)?.unwrap_or(start))
    }

    /// Bitcoin's parent clock.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn bitcoin_clock(&self) -> Result<ParentClock, StateError> {
        self.parent_clock(ferry_types::ParentChain::Bitcoin)
    }

    /// `chain`'s parent clock.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn parent_clock(&self, chain: ferry_types::ParentChain) -> Result<ParentClock, StateError> {
        Ok(self.get_record(keys::parent_clock(chain))?.unwrap_or_default())
    }

    /// The `/bitcoin/fees` answer (`None` before genesis stored the parameters).
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn bitcoin_fees(&self) -> Result<Option<BitcoinFeesView>, StateError> {
        let Some(params) = self.get_record::<Params>(crate::state::keys::PARAMS)? else { return Ok(None) };
        let bounds = params.withdrawals.bitcoin_fee_bounds();
        Ok(Some(BitcoinFeesView {
            fee_rate: self.bitcoin_fee_rate(&params)?,
            min_fee_rate: bounds.min,
            max_fee_rate: bounds.max,
            target_confirm_blocks: params.withdrawals.bitcoin_target_confirm_blocks,
            parent_height: self.bitcoin_clock()?.height,
            last_release_waited: self.get_record(keys::LAST_RELEASE_WAITED)?,
        }))
    }
}

/// Records a member's report of a parent chain's height (each chain has its own clock). A report
/// below the member's last is ignored.
///
/// # Errors
/// Storage failures only: any member may report any height, and only a quorum moves the clock.
pub fn attest_parent_height<R: StateRead>(
    state: &mut StateDelta<R>,
    report: &MsgAttestParentHeight,
    quorum: u32,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let mut clock = state.parent_clock(report.chain)?;
    if clock.reports.get(&report.attester).is_some_and(|last| *last >= report.height) {
        return Ok(());
    }
    if clock.report(report.attester, report.height, quorum) {
        events.push(Event::new(
            ev::PARENT_HEIGHT,
            [(ev::CHAIN, report.chain.to_string()), (ev::HEIGHT, clock.height.to_string())],
        ));
    }
    state.put_record(keys::parent_clock(report.chain).to_vec(), &clock);
    Ok(())
}

/// The clock's Bitcoin height, for stamping a batch as it is signed (`None` before a quorum reported).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn clock_height<R: StateRead>(state: &StateDelta<R>) -> Result<Option<u64>, StateError> {
    Ok(Some(state.bitcoin_clock()?.height).filter(|height| *height > 0))
}

/// The median of the heights `batch`'s attesters saw its release mined at (the lower middle of an
/// even count), if any reported one.
fn mined_height(batch: &Batch) -> Option<u64> {
    let mut heights: Vec<u64> = batch.release_heights.values().copied().filter(|height| *height > 0).collect();
    heights.sort_unstable();
    let middle = heights.len().checked_sub(1)? / 2;
    heights.get(middle).copied()
}

/// Feeds a settled Bitcoin release's confirmation delay to the controller (see the module docs).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn release_settled<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    batch: &Batch,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let BatchRelease::Bitcoin(release) = &batch.release else { return Ok(()) };
    let (Some(signed), Some(mined)) = (release.signed_parent_height, mined_height(batch)) else {
        return Ok(());
    };
    let waited = mined.saturating_sub(signed);
    let rules = &params.withdrawals;
    let current = state.bitcoin_fee_rate(params)?;
    // The version that was mined (settlement recorded its txid); the current one if none matches.
    let mined_tx = batch.release_tx.as_deref();
    let cleared = release
        .superseded
        .iter()
        .find(|old| Some(old.txid.as_str()) == mined_tx)
        .map_or(release.fee_rate, |old| old.fee_rate);
    let next = next_rate(current, waited, rules.bitcoin_target_confirm_blocks, cleared, rules.bitcoin_fee_bounds());
    state.put_record(keys::LAST_RELEASE_WAITED.to_vec(), &waited);
    if next != current {
        state.put_record(keys::FEE_RATE.to_vec(), &next);
        events.push(Event::new(
            ev::FEE_RATE_CHANGED,
            [
                (ev::BATCH_ID, batch.id.to_string()),
                (ev::WAITED_BLOCKS, waited.to_string()),
                (ev::FEE_RATE, next.sat_per_kvb().to_string()),
            ],
        ));
        tracing::info!(batch_id = batch.id, waited, target = rules.bitcoin_target_confirm_blocks, from = %current, to = %next, height, "bitcoin fee rate moved");
    }
    Ok(())
}
