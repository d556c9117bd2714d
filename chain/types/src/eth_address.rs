//! Ethereum addresses: 20 bytes, shown with their EIP-55 checksum, read in any capitalisation that
//! is all lower, all upper or correctly checksummed. A vocabulary type of its own, below
//! [`denom`](crate::denom) (an ERC-20 denomination names its token) and the release payloads
//! ([`release::eth`](crate::release::eth), which re-exports it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};

/// A 20-byte Ethereum account or contract address, shown with its EIP-55 checksum.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EthAddress([u8; 20]);

/// Why text was refused as an Ethereum address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthAddressError {
    /// Not `0x` followed by 40 hex digits.
    #[error("`{0}` is not an Ethereum address: expected 0x followed by 40 hex digits")]
    Malformed(String),
    /// Mixed case whose capitalisation is not the EIP-55 checksum of the address.
    #[error("`{given}` is not an Ethereum address: EIP-55 checksum mismatch; did you mean {expected}?")]
    ChecksumMismatch {
        /// The text given.
        given: String,
        /// The same address with the correct checksum.
        expected: String,
    },
}

impl EthAddress {
    /// The zero address; as a release item's token it means native ETH.
    pub const ZERO: EthAddress = EthAddress([0; 20]);

    /// Wraps raw address bytes.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        EthAddress(bytes)
    }

    /// The raw address bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Whether this is the zero address.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 20]
    }

    /// The address as a 32-byte ABI word (12 zero bytes, then the address).
    pub fn abi_word(&self) -> [u8; 32] {
        let mut word = [0u8; 32];
        word[12..].copy_from_slice(&self.0);
        word
    }

    /// The 40 hex digits with EIP-55 capitalisation: a letter is upper case when the matching
    /// nibble of `keccak256(lowercase hex)` is 8 or more.
    fn checksummed_hex(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        lower
            .chars()
            .enumerate()
            .map(|(position, digit)| {
                let byte = hash[position / 2];
                let nibble = if position % 2 == 0 { byte >> 4 } else { byte & 0x0f };
                if nibble >= 8 { digit.to_ascii_uppercase() } else { digit }
            })
            .collect()
    }
}

impl FromStr for EthAddress {
    type Err = EthAddressError;

    /// Accepts `0x` and 40 hex digits: all lower case, all upper case, or mixed case that carries
    /// the correct EIP-55 checksum.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text
            .strip_prefix("0x")
            .filter(|digits| digits.len() == 40 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| EthAddressError::Malformed(text.to_owned()))?;
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| EthAddressError::Malformed(text.to_owned()))?;
        let address = EthAddress(bytes);
        let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper && digits != address.checksummed_hex() {
            return Err(EthAddressError::ChecksumMismatch { given: text.to_owned(), expected: address.to_string() });
        }
        Ok(address)
    }
}

impl fmt::Display for EthAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", self.checksummed_hex())
    }
}

impl fmt::Debug for EthAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for EthAddress {
    /// Text for people (JSON answers), its 20 bytes in the binary state encoding.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.as_bytes().serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for EthAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 20]>::deserialize(deserializer).map(EthAddress::from_bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_serde_as_checksummed_text() -> Result<(), serde_json::Error> {
        let address: EthAddress = serde_json::from_str("\"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359\"")?;
        assert_eq!(serde_json::to_string(&address)?, "\"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359\"");
        assert!(serde_json::from_str::<EthAddress>("\"0xfb69\"").is_err());
        Ok(())
    }
}
