//! Sidechain account addresses: 20-byte account ids shown as bech32 with the `ferry` prefix.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The bech32 human-readable prefix of every Ferry account address.
pub const BECH32_PREFIX: &str = "ferry";

/// Tag of the fee collector module account (see [`Address::module`]).
pub const FEE_COLLECTOR_TAG: &str = "ferry/fee_collector";
/// Tag of the unattributed pool (see [`Address::unattributed_pool`]).
pub const UNATTRIBUTED_POOL_TAG: &str = "ferry/unattributed";

/// A 20-byte account id (`RIPEMD160(SHA256(compressed secp256k1 public key))`, as in Cosmos SDK).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address([u8; 20]);

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not bech32, or a checksum mismatch.
    #[error("`{0}` is not a bech32 address")]
    NotBech32(String),
    /// A valid bech32 string for another network.
    #[error("`{address}` has prefix `{prefix}`, expected `{BECH32_PREFIX}`")]
    WrongPrefix {
        /// The address given.
        address: String,
        /// Its prefix.
        prefix: String,
    },
    /// Not 20 bytes long.
    #[error("`{0}` does not hold a 20-byte account id")]
    WrongLength(String),
}

impl Address {
    /// Wraps raw account id bytes.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        Address(bytes)
    }

    /// The raw account id bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The address of a module account: the first 20 bytes of `SHA256(tag)`. Nobody holds a key
    /// for it, so only the state machine moves its funds.
    pub fn module(tag: &str) -> Self {
        let digest = Sha256::digest(tag.as_bytes());
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(&digest[..20]);
        Address(bytes)
    }

    /// The module account that collects transaction fees.
    pub fn fee_collector() -> Self {
        Self::module(FEE_COLLECTOR_TAG)
    }

    /// The unattributed pool: the recipient named by the facts of a payment to the peg that names
    /// no account (no valid memo). Nothing is ever credited to it; a member quorum resolves each
    /// such payment (`MsgResolveUnattributed`). A refund is withdrawn from it.
    pub fn unattributed_pool() -> Self {
        Self::module(UNATTRIBUTED_POOL_TAG)
    }

    fn account_id(&self) -> Option<cosmrs::AccountId> {
        cosmrs::AccountId::new(BECH32_PREFIX, &self.0).ok()
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let id: cosmrs::AccountId = text.parse().map_err(|_| AddressError::NotBech32(text.to_owned()))?;
        if id.prefix() != BECH32_PREFIX {
            return Err(AddressError::WrongPrefix { address: text.to_owned(), prefix: id.prefix().to_owned() });
        }
        let bytes: [u8; 20] = id.to_bytes().try_into().map_err(|_| AddressError::WrongLength(text.to_owned()))?;
        Ok(Address(bytes))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.account_id() {
            Some(id) => write!(f, "{id}"),
            // Unreachable for a 20-byte id and a constant valid prefix; fall back to hex rather than panic.
            None => write!(f, "0x{}", hex::encode(self.0)),
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Address {
    /// Text for people (JSON answers), its 20 bytes in the binary state encoding.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.as_bytes().serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 20]>::deserialize(deserializer).map(Address::from_bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_prefixes() -> Result<(), AddressError> {
        let address = Address::from_bytes([7; 20]);
        let text = address.to_string();
        assert!(text.starts_with("ferry1"));
        assert_eq!(text.parse::<Address>()?, address);
        let cosmos = cosmrs::AccountId::new("cosmos", &[7; 20]).map(|id| id.to_string()).unwrap_or_default();
        assert!(matches!(cosmos.parse::<Address>(), Err(AddressError::WrongPrefix { .. })));
        assert!(matches!("ferry1xyz".parse::<Address>(), Err(AddressError::NotBech32(_))));
        Ok(())
    }
}
