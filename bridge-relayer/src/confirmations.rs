//! How many parent-chain confirmations a deposit needs before it is attested: a default per
//! chain, optionally raised for larger amounts (tiers).

use ferry_types::Amount;
use serde::{Deserialize, Serialize};

/// One tier: deposits of at least `min_amount` need `confirmations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Smallest amount (base units) the tier applies to.
    pub min_amount: Amount,
    /// Confirmations required from that amount up.
    pub confirmations: u32,
}

/// Confirmations required on one parent chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationPolicy {
    /// Confirmations for any deposit (at least 1: the block holding it).
    pub default: u32,
    /// Larger deposits may need more.
    #[serde(default)]
    pub tiers: Vec<Tier>,
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Zero confirmations would attest unmined or instantly reorgable deposits.
    #[error("confirmations must be at least 1 (the block holding the deposit)")]
    Zero,
    /// A tier asks for fewer confirmations than the default or a smaller tier.
    #[error("tier from {min_amount} asks for {confirmations} confirmations, fewer than a smaller amount needs")]
    Decreasing {
        /// The offending tier's threshold.
        min_amount: Amount,
        /// Its confirmations.
        confirmations: u32,
    },
}

impl ConfirmationPolicy {
    /// A policy with no tiers.
    pub fn flat(confirmations: u32) -> Self {
        ConfirmationPolicy { default: confirmations, tiers: Vec::new() }
    }

    /// Checks that every requirement is at least 1 and grows with the amount.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.default == 0 || self.tiers.iter().any(|tier| tier.confirmations == 0) {
            return Err(PolicyError::Zero);
        }
        let mut tiers = self.tiers.clone();
        tiers.sort_by_key(|tier| tier.min_amount);
        let mut floor = self.default;
        for tier in tiers {
            if tier.confirmations < floor {
                return Err(PolicyError::Decreasing { min_amount: tier.min_amount, confirmations: tier.confirmations });
            }
            floor = tier.confirmations;
        }
        Ok(())
    }

    /// Confirmations a deposit of `amount` needs.
    pub fn required(&self, amount: Amount) -> u32 {
        self.tiers
            .iter()
            .filter(|tier| amount >= tier.min_amount)
            .map(|tier| tier.confirmations)
            .fold(self.default, u32::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_deposits_wait_longer() -> Result<(), PolicyError> {
        let policy = ConfirmationPolicy {
            default: 2,
            tiers: vec![
                Tier { min_amount: Amount::new(1_000_000), confirmations: 6 },
                Tier { min_amount: Amount::new(100_000), confirmations: 3 },
            ],
        };
        policy.validate()?;
        assert_eq!(policy.required(Amount::new(99_999)), 2);
        assert_eq!(policy.required(Amount::new(100_000)), 3);
        assert_eq!(policy.required(Amount::new(5_000_000)), 6);
        Ok(())
    }

    #[test]
    fn zero_or_decreasing_requirements_are_refused() {
        assert_eq!(ConfirmationPolicy::flat(0).validate(), Err(PolicyError::Zero));
        let decreasing =
            ConfirmationPolicy { default: 6, tiers: vec![Tier { min_amount: Amount::new(10), confirmations: 3 }] };
        assert!(matches!(decreasing.validate(), Err(PolicyError::Decreasing { .. })));
    }
}
