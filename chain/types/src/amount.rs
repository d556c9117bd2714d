//! Amounts in base units (satoshi, wei, token base units) and coins (amount + denomination).
//!
//! Amounts are unsigned integers with checked arithmetic; there are no floats anywhere in Ferry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::denom::{Denom, DenomError};

/// A non-negative quantity of some asset, in its base unit.
///
/// Serialized as a decimal string (JSON numbers cannot carry 128-bit integers faithfully).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u128);

/// Why an amount could not be parsed or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text is not a decimal integer that fits in 128 bits.
    #[error("`{0}` is not an amount: expected a non-negative integer in base units")]
    Invalid(String),
    /// An addition exceeded 2^128 - 1.
    #[error("amount overflow: {0} + {1}")]
    Overflow(Amount, Amount),
    /// A subtraction would go below zero.
    #[error("amount underflow: {0} - {1}")]
    Underflow(Amount, Amount),
}

impl Amount {
    /// Zero base units.
    pub const ZERO: Amount = Amount(0);

    /// Wraps a count of base units.
    pub const fn new(base_units: u128) -> Self {
        Amount(base_units)
    }

    /// The count of base units.
    pub const fn get(self) -> u128 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`AmountError::Overflow`] when the sum does not fit in 128 bits.
    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        self.0.checked_add(other.0).map(Amount).ok_or(AmountError::Overflow(self, other))
    }

    /// `self - other`.
    ///
    /// # Errors
    /// [`AmountError::Underflow`] when `other > self`.
    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.0.checked_sub(other.0).map(Amount).ok_or(AmountError::Underflow(self, other))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // `u128::from_str` accepts a leading `+`; amounts on the wire must be plain digits.
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::Invalid(text.to_owned()));
        }
        text.parse::<u128>().map(Amount).map_err(|_| AmountError::Invalid(text.to_owned()))
    }
}

impl Serialize for Amount {
    /// Text for people (JSON answers), a 16-byte integer in the binary state encoding.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() { serializer.collect_str(self) } else { serializer.serialize_u128(self.0) }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            u128::deserialize(deserializer).map(Amount)
        }
    }
}

/// An amount of one denomination, written `<amount><denom>` (for example `1500sat`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Coin {
    /// Which asset.
    pub denom: Denom,
    /// How much of it, in base units.
    pub amount: Amount,
}

/// Why a coin could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoinError {
    /// The amount part is bad.
    #[error(transparent)]
    Amount(#[from] AmountError),
    /// The denomination part is bad.
    #[error(transparent)]
    Denom(#[from] DenomError),
}

impl Coin {
    /// A coin of `amount` base units of `denom`.
    pub fn new(amount: u128, denom: Denom) -> Self {
        Coin { denom, amount: Amount::new(amount) }
    }

    /// Builds a coin from its protobuf form, validating both parts.
    ///
    /// # Errors
    /// When the denomination or the amount is malformed.
    pub fn from_proto(coin: &cosmrs::proto::cosmos::base::v1beta1::Coin) -> Result<Self, CoinError> {
        Ok(Coin { denom: coin.denom.parse()?, amount: coin.amount.parse()? })
    }

    /// The protobuf form.
    pub fn to_proto(&self) -> cosmrs::proto::cosmos::base::v1beta1::Coin {
        cosmrs::proto::cosmos::base::v1beta1::Coin { denom: self.denom.to_string(), amount: self.amount.to_string() }
    }
}

impl fmt::Display for Coin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.denom)
    }
}

impl FromStr for Coin {
    type Err = CoinError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (amount, denom) = text.split_at(split);
        Ok(Coin { amount: amount.parse()?, denom: denom.parse()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_rejects_signs_spaces_and_overflow() {
        for bad in ["", "+1", "-1", " 1", "1.5", "340282366920938463463374607431768211456"] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} parsed");
        }
        assert_eq!("340282366920938463463374607431768211455".parse::<Amount>(), Ok(Amount::new(u128::MAX)));
    }

    #[test]
    fn checked_arithmetic_reports_the_operands() {
        let max = Amount::new(u128::MAX);
        assert_eq!(max.checked_add(Amount::new(1)), Err(AmountError::Overflow(max, Amount::new(1))));
        assert_eq!(
            Amount::new(1).checked_sub(Amount::new(2)),
            Err(AmountError::Underflow(Amount::new(1), Amount::new(2)))
        );
    }

    #[test]
    fn coin_round_trips_through_text() -> Result<(), CoinError> {
        let coin: Coin = "1500sat".parse()?;
        assert_eq!(coin, Coin::new(1500, Denom::sat()));
        assert_eq!(coin.to_string(), "1500sat");
        Ok(())
    }
}
