//! Bitcoin release fees by size: a fee *rate* the chain keeps and moves without an oracle, the
//! bump a replacement must pay, and the exact split of a release's fee among its withdrawals.
//!
//! - [`FeeRate`] is satoshi per 1,000 virtual bytes (Bitcoin Core's unit for relay fees), so
//!   ×1.25 and ×0.75 steps stay exact enough in integers; fees round up to whole satoshi.
//! - [`next_rate`] is the controller (after Nomic's checkpoint fee rate): when the last release
//!   took longer than the target number of parent blocks to confirm, the rate rises to
//!   `max(rate × 5/4, rate + 1 sat/vB)`; when it took fewer, it falls to
//!   `min(rate × 3/4, rate − 1 sat/vB)`; always within the genesis bounds.
//! - [`bumped_rate`] is what a replacement of a stuck release pays: at least ×1.25 and at least
//!   BIP 125's incremental relay fee (1 sat/vB) more — the replacement has the same inputs and
//!   outputs, so the same size, and a higher rate is a higher fee.
//! - [`split_fee`] divides `rate × size` among the withdrawals a release pays: each pays its own
//!   output's share and an equal part of the rest (inputs, overhead, change), the remainder of a
//!   satoshi going to the first ones; the parts add up to the fee exactly, so the destination
//!   receives its amount minus its part and the reserves fall by exactly what was burned.
//!
//! Pure: integers only, no clock.

use bitcoin::{Amount as Sats, Weight};
use serde::{Deserialize, Serialize};

/// One virtual byte is four weight units.
const WEIGHT_PER_VBYTE: u64 = 4;

/// A fee rate in satoshi per 1,000 virtual bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeeRate(u64);

impl FeeRate {
    /// Bitcoin Core's default minimum relay fee rate, and BIP 125's incremental relay fee: 1 sat/vB.
    pub const ONE_SAT_PER_VBYTE: FeeRate = FeeRate(1_000);

    /// `sat_per_kvb` satoshi per 1,000 virtual bytes.
    pub const fn from_sat_per_kvb(sat_per_kvb: u64) -> FeeRate {
        FeeRate(sat_per_kvb)
    }

    /// `sat_per_vb` satoshi per virtual byte.
    pub const fn from_sat_per_vb(sat_per_vb: u64) -> FeeRate {
        FeeRate(sat_per_vb.saturating_mul(1_000))
    }

    /// Satoshi per 1,000 virtual bytes.
    pub const fn sat_per_kvb(self) -> u64 {
        self.0
    }

    /// The fee for `weight` at this rate: its virtual size rounded up to whole bytes (as nodes
    /// count it), times the rate, rounded up to a whole satoshi (saturating).
    pub fn fee_for(self, weight: Weight) -> Sats {
        let scaled = u128::from(self.0) * u128::from(weight.to_vbytes_ceil());
        let sats = scaled.div_ceil(1_000);
        Sats::from_sat(u64::try_from(sats).unwrap_or(u64::MAX))
    }
}

impl std::fmt::Display for FeeRate {
    /// `12.5 sat/vB` (three decimals at most, trailing zeros dropped).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = self.0 / 1_000;
        let fraction = self.0 % 1_000;
        if fraction == 0 {
            write!(f, "{whole} sat/vB")
        } else {
            let digits = format!("{fraction:03}");
            write!(f, "{whole}.{} sat/vB", digits.trim_end_matches('0'))
        }
    }
}

/// The least and most the chain's fee rate may be (genesis parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRateBounds {
    /// The floor (at least the minimum relay fee rate).
    pub min: FeeRate,
    /// The ceiling.
    pub max: FeeRate,
}

impl FeeRateBounds {
    /// `rate` within the bounds.
    pub fn clamp(self, rate: FeeRate) -> FeeRate {
        rate.max(self.min).min(self.max)
    }
}

/// The controller's next rate after a release confirmed `waited` parent blocks after its
/// broadcast, against a target of `target` blocks, the version that confirmed having paid
/// `cleared`: up by ×1.25 (at least 1 sat/vB) when it waited longer — or straight to `cleared`
/// when that is higher: a replacement at `cleared` was mined where the lower versions were not,
/// so the market is known to clear there — down by ×0.75 (at least 1 sat/vB) when it waited
/// less, unchanged on target; always within `bounds`.
pub fn next_rate(current: FeeRate, waited: u64, target: u64, cleared: FeeRate, bounds: FeeRateBounds) -> FeeRate {
    let rate = current.0;
    let next = match waited.cmp(&target) {
        std::cmp::Ordering::Greater => {
            rate.saturating_mul(5).div_ceil(4).max(rate.saturating_add(FeeRate::ONE_SAT_PER_VBYTE.0)).max(cleared.0)
        }
        std::cmp::Ordering::Less => (rate.saturating_mul(3) / 4).min(rate.saturating_sub(FeeRate::ONE_SAT_PER_VBYTE.0)),
        std::cmp::Ordering::Equal => rate,
    };
    bounds.clamp(FeeRate(next))
}

/// The rate a replacement of a release paid at `previous` must pay: at least ×1.25 and at least
/// BIP 125's incremental relay fee above it (same size, so a strictly higher fee). Not clamped:
/// the caller compares it with the ceiling and each withdrawal's budget.
pub fn bumped_rate(previous: FeeRate) -> FeeRate {
    let rate = previous.0;
    FeeRate(rate.saturating_mul(5).div_ceil(4).max(rate.saturating_add(FeeRate::ONE_SAT_PER_VBYTE.0)))
}

/// Why a fee cannot be split.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeeSplitError {
    /// A release pays at least one withdrawal.
    #[error("a release without withdrawals has no one to pay its fee")]
    NoWithdrawals,
    /// The withdrawals' outputs weigh more than the whole transaction.
    #[error("the outputs weigh {outputs} WU, more than the transaction's {total} WU")]
    OutputsHeavierThanTransaction {
        /// The outputs' weight.
        outputs: u64,
        /// The transaction's weight.
        total: u64,
    },
}

/// Splits the fee of a release weighing `total` (its longest-signature form) at `rate` among
/// the withdrawals whose outputs weigh `outputs` (in output order): withdrawal `i` pays
/// `rate × outputs[i]` (rounded down) plus an equal part of the rest of `rate × total` (rounded
/// up), the first `rest mod n` paying one satoshi more. The parts add up to the fee exactly.
///
/// # Errors
/// [`FeeSplitError::NoWithdrawals`] for an empty `outputs`;
/// [`FeeSplitError::OutputsHeavierThanTransaction`] when they outweigh `total`.
pub fn split_fee(total: Weight, outputs: &[Weight], rate: FeeRate) -> Result<Vec<Sats>, FeeSplitError> {
    let count = u64::try_from(outputs.len()).unwrap_or(u64::MAX);
    if count == 0 {
        return Err(FeeSplitError::NoWithdrawals);
    }
    let output_weight: u64 = outputs.iter().map(|weight| weight.to_wu()).sum();
    if output_weight > total.to_wu() {
        return Err(FeeSplitError::OutputsHeavierThanTransaction { outputs: output_weight, total: total.to_wu() });
    }
    let fee = rate.fee_for(total).to_sat();
    let own: Vec<u64> = outputs
        .iter()
        .map(|weight| {
            let scaled = u128::from(rate.0) * u128::from(weight.to_wu()) / (u128::from(WEIGHT_PER_VBYTE) * 1_000);
            u64::try_from(scaled).unwrap_or(u64::MAX)
        })
        .collect();
    // Each own part is at most its share of the rounded-up total, so the rest is not negative.
    let shared = fee.saturating_sub(own.iter().sum());
    let (equal, remainder) = (shared / count, shared % count);
    Ok(own.iter().zip(0..).map(|(own, index)| Sats::from_sat(own + equal + u64::from(index < remainder))).collect())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const BOUNDS: FeeRateBounds =
        FeeRateBounds { min: FeeRate::from_sat_per_vb(1), max: FeeRate::from_sat_per_vb(500) };

    #[test]
    fn fees_round_up_to_whole_satoshi() {
        let rate = FeeRate::from_sat_per_kvb(1_500);
        assert_eq!(rate.fee_for(Weight::from_wu(4 * 100)), Sats::from_sat(150));
        // 401 WU is 101 vB as nodes count it: 151.5 sat, rounded up.
        assert_eq!(rate.fee_for(Weight::from_wu(4 * 100 + 1)), Sats::from_sat(152));
        assert_eq!(FeeRate::from_sat_per_vb(2).fee_for(Weight::from_wu(1_561)), Sats::from_sat(782));
    }

    #[test]
    fn the_controller_steps_up_slow_and_down_fast_within_bounds() {
        let ten = FeeRate::from_sat_per_vb(10);
        assert_eq!(next_rate(ten, 7, 6, ten, BOUNDS), FeeRate::from_sat_per_kvb(12_500));
        assert_eq!(next_rate(ten, 3, 6, ten, BOUNDS), FeeRate::from_sat_per_kvb(7_500));
        assert_eq!(next_rate(ten, 6, 6, ten, BOUNDS), ten);
        // At least 1 sat/vB a step, whichever way.
        let low = FeeRate::from_sat_per_kvb(2_000);
        assert_eq!(next_rate(low, 9, 6, low, BOUNDS), FeeRate::from_sat_per_kvb(3_000));
        assert_eq!(next_rate(low, 1, 6, low, BOUNDS), FeeRate::from_sat_per_kvb(1_000));
        // Never past the bounds.
        assert_eq!(next_rate(BOUNDS.min, 0, 6, BOUNDS.min, BOUNDS), BOUNDS.min);
        assert_eq!(next_rate(BOUNDS.max, 100, 6, BOUNDS.max, BOUNDS), BOUNDS.max);
    }

    #[test]
    fn a_slow_release_mined_at_a_replacement_rate_moves_the_controller_to_it() {
        let ten = FeeRate::from_sat_per_vb(10);
        let cleared = FeeRate::from_sat_per_kvb(24_414);
        assert_eq!(next_rate(ten, 25, 3, cleared, BOUNDS), cleared);
        // A cleared rate below the usual step changes nothing; a fast release ignores it.
        assert_eq!(next_rate(ten, 25, 3, FeeRate::from_sat_per_vb(11), BOUNDS), FeeRate::from_sat_per_kvb(12_500));
        assert_eq!(next_rate(ten, 1, 3, cleared, BOUNDS), FeeRate::from_sat_per_kvb(7_500));
        assert_eq!(next_rate(ten, 25, 3, FeeRate::from_sat_per_kvb(u64::MAX), BOUNDS), BOUNDS.max);
    }

    #[test]
    fn a_bump_pays_a_quarter_more_and_at_least_the_incremental_relay_fee() {
        assert_eq!(bumped_rate(FeeRate::from_sat_per_vb(20)), FeeRate::from_sat_per_vb(25));
        assert_eq!(bumped_rate(FeeRate::from_sat_per_vb(1)), FeeRate::from_sat_per_vb(2));
        assert_eq!(bumped_rate(FeeRate::from_sat_per_kvb(1_001)), FeeRate::from_sat_per_kvb(2_001));
    }

    #[test]
    fn a_split_names_what_it_cannot_split() {
        let rate = FeeRate::from_sat_per_vb(3);
        assert_eq!(split_fee(Weight::from_wu(1_000), &[], rate), Err(FeeSplitError::NoWithdrawals));
        assert_eq!(
            split_fee(Weight::from_wu(100), &[Weight::from_wu(124)], rate),
            Err(FeeSplitError::OutputsHeavierThanTransaction { outputs: 124, total: 100 })
        );
    }

    #[test]
    fn a_larger_output_pays_more_and_the_remainder_goes_first() -> Result<(), FeeSplitError> {
        // P2WPKH outputs weigh 124 WU, P2WSH and P2TR outputs 172 WU.
        let parts = split_fee(
            Weight::from_wu(1_561),
            &[Weight::from_wu(124), Weight::from_wu(172)],
            FeeRate::from_sat_per_vb(2),
        )?;
        // Fee 782 (391 vB): own parts 62 and 86, the rest 634 split 317 + 317.
        assert_eq!(parts, [Sats::from_sat(62 + 317), Sats::from_sat(86 + 317)]);
        let odd = split_fee(
            Weight::from_wu(1_565),
            &[Weight::from_wu(124), Weight::from_wu(172)],
            FeeRate::ONE_SAT_PER_VBYTE,
        )?;
        // Fee 392: own parts 31 and 43, the rest 318 split 159 + 159; 1 sat/vB is exact.
        assert_eq!(odd, [Sats::from_sat(31 + 159), Sats::from_sat(43 + 159)]);
        Ok(())
    }

    proptest! {
        #[test]
        fn the_parts_add_up_to_the_fee_and_each_covers_its_own_output(
            outputs in proptest::collection::vec(100u64..400, 1..60),
            overhead in 0u64..200_000,
            rate in 1_000u64..2_000_000,
        ) {
            let total = Weight::from_wu(outputs.iter().sum::<u64>() + overhead);
            let weights: Vec<Weight> = outputs.iter().copied().map(Weight::from_wu).collect();
            let rate = FeeRate::from_sat_per_kvb(rate);
            let parts = split_fee(total, &weights, rate).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parts.iter().map(|part| part.to_sat()).sum::<u64>(), rate.fee_for(total).to_sat());
            for (part, weight) in parts.iter().zip(&weights) {
                prop_assert!(part.to_sat() * 4_000 >= rate.sat_per_kvb() * weight.to_wu() - 4_000);
            }
            let most = parts.iter().max().copied().unwrap_or_default();
            let least = parts.iter().min().copied().unwrap_or_default();
            // Parts differ only by their outputs' sizes and one satoshi of remainder.
            let spread = rate.fee_for(Weight::from_wu(300)).to_sat() + 1;
            prop_assert!(most.to_sat() - least.to_sat() <= spread);
        }

        #[test]
        fn the_controller_never_leaves_its_bounds(rate in 0u64..1_000_000, waited in 0u64..20, cleared in 0u64..2_000_000) {
            let next = next_rate(FeeRate::from_sat_per_kvb(rate), waited, 6, FeeRate::from_sat_per_kvb(cleared), BOUNDS);
            prop_assert!(next >= BOUNDS.min && next <= BOUNDS.max);
        }
    }
}
