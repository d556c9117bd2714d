//! The reserves invariant, checked at the end of every block: for every asset,
//! `supply + unreleased + fee_pool + unattributed <= reserves` — every wrapped token, every burned
//! but unpaid withdrawal, every satoshi deposits prepaid for their spending and every unattributed
//! payment still owed to its payer is backed by parent-chain funds the bridge controls. There is no exception: supply enters only by attested deposits
//! (a genesis holds no balances).
//!
//! A violation means a bug or an attack: the bridge pauses ([`crate::pause`]) with the asset and
//! the figures as the reason, an error is logged, and the block still commits — the chain keeps
//! producing blocks, and only the bridge stops.

use ferry_types::Amount;

use crate::bridge::AssetLedger;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// What the reserves back: supply, unreleased, fee pool and unattributed (`None` beyond
/// 2^128 - 1, which nothing can back).
fn owed(ledger: &AssetLedger) -> Option<Amount> {
    ledger
        .supply
        .checked_add(ledger.unreleased)
        .and_then(|owed| owed.checked_add(ledger.fee_pool))
        .and_then(|owed| owed.checked_add(ledger.unattributed))
        .ok()
}

/// What the reserves hold beyond everything they back (deposits below the minimum, fees
/// overpaid): it may pay a miner without breaking the invariant.
pub fn surplus(ledger: &AssetLedger) -> Amount {
    owed(ledger).and_then(|owed| ledger.reserves.checked_sub(owed).ok()).unwrap_or(Amount::ZERO)
}

/// Why `ledger` breaks the invariant, if it does.
pub fn violation(ledger: &AssetLedger) -> Option<String> {
    let broken = owed(ledger).is_none_or(|owed| owed > ledger.reserves);
    broken.then(|| {
        let mut pool =
            if ledger.fee_pool == Amount::ZERO { String::new() } else { format!(" + fee pool {}", ledger.fee_pool) };
        if ledger.unattributed != Amount::ZERO {
            pool.push_str(&format!(" + unattributed {}", ledger.unattributed));
        }
        format!(
            "supply {} + unreleased {}{pool} exceeds reserves {}",
            ledger.supply, ledger.unreleased, ledger.reserves
        )
    })
}

/// Checks every asset's ledger; on the first violation pauses the bridge (when it is not paused
/// already) with reason `reserves invariant violated for <denom>: …`.
///
/// # Errors
/// On storage failure.
pub fn check_invariant<R: StateRead>(
    state: &mut StateDelta<R>,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    for denom in state.ledger_denoms()? {
        let ledger = state.ledger(&denom)?;
        if let Some(why) = violation(&ledger) {
            if !state.bridge_status()?.paused {
                let reason = format!("reserves invariant violated for {denom}: {why}");
                tracing::error!(height, asset = %denom, %reason, "pausing the bridge");
                crate::pause::pause(state, reason, height, events)?;
            }
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(supply: u128, unreleased: u128, reserves: u128, fee_pool: u128) -> AssetLedger {
        AssetLedger {
            supply: Amount::new(supply),
            reserves: Amount::new(reserves),
            unreleased: Amount::new(unreleased),
            below_minimum: Amount::ZERO,
            fee_pool: Amount::new(fee_pool),
            unattributed: Amount::ZERO,
        }
    }

    #[test]
    fn unattributed_payments_are_owed_too() {
        let held = AssetLedger { unattributed: Amount::new(10), ..ledger(50, 40, 100, 0) };
        assert_eq!(violation(&held), None);
        let short = AssetLedger { unattributed: Amount::new(11), ..ledger(50, 40, 100, 0) };
        assert!(violation(&short).is_some_and(|why| why.contains("unattributed 11")), "{:?}", violation(&short));
    }

    #[test]
    fn owed_above_reserves_is_a_violation_naming_the_figures() {
        assert_eq!(violation(&ledger(60, 40, 100, 0)), None);
        assert_eq!(violation(&ledger(50, 40, 100, 10)), None);
        let why = violation(&ledger(61, 40, 100, 0)).unwrap_or_default();
        assert_eq!(why, "supply 61 + unreleased 40 exceeds reserves 100");
        let why = violation(&ledger(51, 40, 100, 10)).unwrap_or_default();
        assert_eq!(why, "supply 51 + unreleased 40 + fee pool 10 exceeds reserves 100");
        assert!(violation(&ledger(u128::MAX, 1, u128::MAX, 0)).is_some());
    }
}
