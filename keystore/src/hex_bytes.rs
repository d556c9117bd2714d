//! Serde as lowercase hex for byte arrays and vectors (`#[serde(with = "ferry_keystore::hex_bytes")]`):
//! how the sealing sections and the keystores' public fields are written.

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `bytes` as lowercase hex.
///
/// # Errors
/// Whatever the serializer refuses.
pub fn serialize<S: Serializer>(bytes: impl AsRef<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

/// Reads hex into `T` (a fixed-size array or a vector).
///
/// # Errors
/// Text that is not hex, or hex of the wrong length for `T`.
pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<Vec<u8>>,
{
    let text = String::deserialize(deserializer)?;
    let bytes = hex::decode(&text).map_err(|e| serde::de::Error::custom(format!("`{text}` is not hex: {e}")))?;
    let len = bytes.len();
    T::try_from(bytes).map_err(|_| serde::de::Error::custom(format!("`{text}` is {len} bytes, the wrong length")))
}
