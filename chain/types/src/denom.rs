//! Denominations of the wrapped assets Ferry knows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Wrapped bitcoin, in satoshi (displayed as `fBTC`).
pub const SAT: &str = "sat";
/// Wrapped ether, in wei (displayed as `fETH`).
pub const WEI: &str = "wei";
/// Prefix of wrapped ERC-20 denominations: `erc20/0x<40 lowercase hex digits>`.
pub const ERC20_PREFIX: &str = "erc20/0x";

/// A validated denomination: `sat`, `wei` or `erc20/0x…` (lowercase token address).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Denom(String);

/// Why a denomination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Ferry denomination: expected `sat`, `wei` or `erc20/0x<40 lowercase hex digits>`")]
pub struct DenomError(pub String);

impl Denom {
    /// Wrapped bitcoin.
    pub fn sat() -> Self {
        Denom(SAT.to_owned())
    }

    /// Wrapped ether.
    pub fn wei() -> Self {
        Denom(WEI.to_owned())
    }

    /// The denomination as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Ethereum asset this denomination wraps: the zero address for ETH, the token contract
    /// for an ERC-20; `None` for a Bitcoin denomination.
    pub fn ethereum_token(&self) -> Option<crate::eth_address::EthAddress> {
        if self.0 == WEI {
            return Some(crate::eth_address::EthAddress::default());
        }
        let hex = self.0.strip_prefix(ERC20_PREFIX)?;
        let bytes: [u8; 20] = hex::decode(hex).ok()?.try_into().ok()?;
        Some(crate::eth_address::EthAddress::from_bytes(bytes))
    }

    /// The wrapped form of ERC-20 `token`.
    pub fn erc20(token: &crate::eth_address::EthAddress) -> Self {
        Denom(format!("{ERC20_PREFIX}{}", hex::encode(token.as_bytes())))
    }
}

impl FromStr for Denom {
    type Err = DenomError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = text == SAT
            || text == WEI
            || text.strip_prefix(ERC20_PREFIX).is_some_and(|hex| {
                hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            });
        if valid { Ok(Denom(text.to_owned())) } else { Err(DenomError(text.to_owned())) }
    }
}

impl fmt::Display for Denom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Denom {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Denom {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_known_forms() {
        for good in ["sat", "wei", "erc20/0x00000000000000000000000000000000000000ab"] {
            assert!(good.parse::<Denom>().is_ok(), "{good} refused");
        }
        for bad in ["", "btc", "SAT", "erc20/0xAB", "erc20/0x00000000000000000000000000000000000000AB"] {
            assert!(bad.parse::<Denom>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ethereum_token_of_each_form() {
        let token = crate::eth_address::EthAddress::from_bytes([0xab; 20]);
        assert_eq!(Denom::wei().ethereum_token(), Some(crate::eth_address::EthAddress::default()));
        assert_eq!(Denom::erc20(&token).ethereum_token(), Some(token));
        assert_eq!(Denom::sat().ethereum_token(), None);
    }
}
