//! Ethereum release batches: the payload `FerryVault.release` verifies. The addresses they name are
//! [`EthAddress`]es ([`crate::eth_address`]).
//!
//! The chain forms an [`EthBatch`], members sign [`EthBatch::signing_message`] with
//! [`super::bls::sign_share`], and the vault rebuilds the same bytes with Solidity's `abi.encode`
//! before checking the federation signature. The byte layout is the contract between this crate
//! and `FerryVault`; it is written out on [`EthBatch::payload`].

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::amount::Amount;
/// Part of this module's vocabulary: every release payload names its vault, tokens and recipients
/// by [`EthAddress`].
pub use crate::eth_address::{EthAddress, EthAddressError};

/// Domain tag leading every Ethereum release payload: Solidity `bytes32("FERRY_RELEASE_V1")`,
/// the ASCII text right-padded with zero bytes.
pub const RELEASE_TAG: [u8; 32] = pad_right(b"FERRY_RELEASE_V1");

/// Domain tag leading every Ethereum listing payload: Solidity `bytes32("FERRY_LISTING_V1")`.
pub const LISTING_TAG: [u8; 32] = pad_right(b"FERRY_LISTING_V1");

/// Domain tag leading every Ethereum rotation payload: Solidity `bytes32("FERRY_ROTATION_V1")`.
pub const ROTATION_TAG: [u8; 32] = pad_right(b"FERRY_ROTATION_V1");

/// `text` as a Solidity `bytes32` literal: left-aligned, zero-padded (the vault's domain tags).
pub(crate) const fn pad_right(text: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut index = 0;
    while index < text.len() && index < 32 {
        out[index] = text[index];
        index += 1;
    }
    out
}

/// One payout of an Ethereum release batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthReleaseItem {
    /// ERC-20 token contract; [`EthAddress::ZERO`] pays native ETH.
    pub token: EthAddress,
    /// Who receives the funds.
    pub recipient: EthAddress,
    /// How much, in the token's base units (wei for ETH).
    pub amount: Amount,
}

/// An Ethereum release batch: what the federation signs and `FerryVault.release` pays out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthBatch {
    /// EIP-155 chain id of the parent chain the vault lives on.
    pub chain_id: u64,
    /// The vault contract that may pay this batch.
    pub vault: EthAddress,
    /// The federation epoch whose key signs the batch.
    pub epoch: u64,
    /// The batch nonce; the vault pays each nonce once.
    pub nonce: u64,
    /// The sidechain height the batch formed at, whose exit claims `exit_root` covers (the
    /// batch's withdrawals are claims naming its nonce there): the vault takes the root when it
    /// releases the batch, so its root always covers every batch it paid (issue 17).
    pub exit_height: u64,
    /// The exit tree's root over the claims at `exit_height` (hex, 32 bytes).
    #[serde(with = "hex::serde")]
    pub exit_root: [u8; 32],
    /// The payouts, in order.
    pub items: Vec<EthReleaseItem>,
}

impl EthBatch {
    /// The payload bytes, exactly Solidity's
    /// `abi.encode(bytes32 RELEASE_TAG, uint256 chainId, address vault, uint64 epoch, uint64 nonce,
    /// uint64 exitHeight, bytes32 exitRoot, Item[] items)` with `struct Item { address token;
    /// address recipient; uint256 amount; }`.
    ///
    /// That is a sequence of 32-byte words:
    ///
    /// | word        | content                                                      |
    /// |-------------|--------------------------------------------------------------|
    /// | 0           | [`RELEASE_TAG`]                                              |
    /// | 1           | `chain_id`, big-endian, left-padded                          |
    /// | 2           | `vault`, left-padded with 12 zero bytes                      |
    /// | 3           | `epoch`, big-endian, left-padded                             |
    /// | 4           | `nonce`, big-endian, left-padded                             |
    /// | 5           | `exit_height`, big-endian, left-padded                       |
    /// | 6           | `exit_root`                                                  |
    /// | 7           | `0x100`: byte offset of the items array (8 head words × 32)  |
    /// | 8           | number of items                                              |
    /// | 9 + 3i      | item i's `token`, left-padded                                |
    /// | 10 + 3i     | item i's `recipient`, left-padded                            |
    /// | 11 + 3i     | item i's `amount`, big-endian, left-padded                   |
    ///
    /// so `32 × (9 + 3 × items)` bytes in all.
    pub fn payload(&self) -> Vec<u8> {
        /// Eight head words (seven static parameters and the items' offset) precede the items.
        const ITEMS_OFFSET: u64 = 8 * 32;
        let mut out = Vec::with_capacity(32 * (9 + 3 * self.items.len()));
        out.extend_from_slice(&RELEASE_TAG);
        out.extend_from_slice(&uint_word(u128::from(self.chain_id)));
        out.extend_from_slice(&self.vault.abi_word());
        out.extend_from_slice(&uint_word(u128::from(self.epoch)));
        out.extend_from_slice(&uint_word(u128::from(self.nonce)));
        out.extend_from_slice(&uint_word(u128::from(self.exit_height)));
        out.extend_from_slice(&self.exit_root);
        out.extend_from_slice(&uint_word(u128::from(ITEMS_OFFSET)));
        out.extend_from_slice(&uint_word(self.items.len() as u128));
        for item in &self.items {
            out.extend_from_slice(&item.token.abi_word());
            out.extend_from_slice(&item.recipient.abi_word());
            out.extend_from_slice(&uint_word(item.amount.get()));
        }
        out
    }

    /// The bytes hashed to G2 and signed ([`super::bls::sign_share`]): the [`payload`](Self::payload).
    pub fn signing_message(&self) -> Vec<u8> {
        self.payload()
    }
}

/// A change to the vault's token allowlist: what the federation signs and `FerryVault.setListing`
/// applies. Its nonce is a sidechain batch id, so listings and releases share the vault's nonce
/// space and each signed action applies once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthListing {
    /// EIP-155 chain id of the parent chain the vault lives on.
    pub chain_id: u64,
    /// The vault whose allowlist changes.
    pub vault: EthAddress,
    /// The federation epoch whose key signs it.
    pub epoch: u64,
    /// The action's nonce (the sidechain batch id).
    pub nonce: u64,
    /// The ERC-20 token.
    pub token: EthAddress,
    /// `true` lists the token (deposits accepted), `false` unlists it (deposits refused; releases
    /// of it go on).
    pub listed: bool,
}

impl EthListing {
    /// The payload bytes, exactly Solidity's
    /// `abi.encode(bytes32 LISTING_TAG, uint256 chainId, address vault, uint64 epoch, uint64 nonce, address token, bool listed)`:
    /// seven 32-byte words — [`LISTING_TAG`], `chain_id`, `vault`, `epoch`, `nonce`, `token`
    /// (addresses left-padded with 12 zero bytes, integers big-endian), and `listed` as 0 or 1.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(7 * 32);
        out.extend_from_slice(&LISTING_TAG);
        out.extend_from_slice(&uint_word(u128::from(self.chain_id)));
        out.extend_from_slice(&self.vault.abi_word());
        out.extend_from_slice(&uint_word(u128::from(self.epoch)));
        out.extend_from_slice(&uint_word(u128::from(self.nonce)));
        out.extend_from_slice(&self.token.abi_word());
        out.extend_from_slice(&uint_word(u128::from(self.listed)));
        out
    }
}

/// A hand-over of the vault to the next federation key: what the current key signs and
/// `FerryVault.rotate` applies. The vault accepts only `new_epoch == epoch + 1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthRotation {
    /// EIP-155 chain id of the parent chain the vault lives on.
    pub chain_id: u64,
    /// The vault handed over.
    pub vault: EthAddress,
    /// The current epoch (whose key signs).
    pub epoch: u64,
    /// The next epoch.
    pub new_epoch: u64,
    /// The next federation key, EIP-2537 G1 (128 bytes; `bls::eip2537_g1`), hex.
    pub new_key: String,
}

impl EthRotation {
    /// The payload bytes, exactly Solidity's
    /// `abi.encode(bytes32 ROTATION_TAG, uint256 chainId, address vault, uint64 epoch, uint64 newEpoch, bytes32 keccak256(newKey))`:
    /// six 32-byte words. `None` when `new_key` is not hex.
    pub fn payload(&self) -> Option<Vec<u8>> {
        let key = hex::decode(&self.new_key).ok()?;
        let mut out = Vec::with_capacity(6 * 32);
        out.extend_from_slice(&ROTATION_TAG);
        out.extend_from_slice(&uint_word(u128::from(self.chain_id)));
        out.extend_from_slice(&self.vault.abi_word());
        out.extend_from_slice(&uint_word(u128::from(self.epoch)));
        out.extend_from_slice(&uint_word(u128::from(self.new_epoch)));
        out.extend_from_slice(&Keccak256::digest(&key));
        Some(out)
    }
}

/// The federation's heartbeat to the vault (issue 17): the exit tree's root over the claims
/// committed at sidechain `height`, under the batch id `nonce` — what `FerryVault.heartbeat`
/// applies. The vault keeps the root of the highest height it was given and counts every
/// heartbeat as a sign of life that puts its escape hatch off by `escapeDelay`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthHeartbeat {
    /// EIP-155 chain id of the parent chain the vault lives on.
    pub chain_id: u64,
    /// The vault.
    pub vault: EthAddress,
    /// The epoch whose key signs.
    pub epoch: u64,
    /// The batch id; the vault applies each nonce once (shared with releases and listings).
    pub nonce: u64,
    /// The sidechain height whose committed claims `balances_root` covers.
    pub height: u64,
    /// The exit tree's root (hex, 32 bytes).
    #[serde(with = "hex::serde")]
    pub balances_root: [u8; 32],
}

impl EthHeartbeat {
    /// The payload bytes, exactly Solidity's `abi.encode(bytes32 HEARTBEAT_TAG, uint256 chainId,
    /// address vault, uint64 epoch, uint64 nonce, uint64 height, bytes32 balancesRoot)`: seven
    /// 32-byte words (`FerryVault.heartbeatMessage`).
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(7 * 32);
        out.extend_from_slice(&crate::exit_tree::HEARTBEAT_TAG);
        out.extend_from_slice(&uint_word(u128::from(self.chain_id)));
        out.extend_from_slice(&self.vault.abi_word());
        out.extend_from_slice(&uint_word(u128::from(self.epoch)));
        out.extend_from_slice(&uint_word(u128::from(self.nonce)));
        out.extend_from_slice(&uint_word(u128::from(self.height)));
        out.extend_from_slice(&self.balances_root);
        out
    }
}

/// An unsigned integer as a 32-byte big-endian ABI word.
fn uint_word(value: u128) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[16..].copy_from_slice(&value.to_be_bytes());
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_tag_is_solidity_bytes32_of_the_text() {
        assert_eq!(&RELEASE_TAG[..16], b"FERRY_RELEASE_V1");
        assert_eq!(&RELEASE_TAG[16..], &[0u8; 16]);
    }

    #[test]
    fn listing_payload_is_seven_words_ending_in_the_token_and_flag() {
        let token = EthAddress::from_bytes([7; 20]);
        let listing = EthListing {
            chain_id: 31337,
            vault: EthAddress::from_bytes([9; 20]),
            epoch: 1,
            nonce: 12,
            token,
            listed: true,
        };
        let payload = listing.payload();
        assert_eq!(payload.len(), 7 * 32);
        assert_eq!(&payload[..32], &LISTING_TAG);
        assert_eq!(&payload[5 * 32..6 * 32], &token.abi_word());
        assert_eq!(payload[7 * 32 - 1], 1);
        let unlisting = EthListing { listed: false, ..listing };
        assert_eq!(unlisting.payload()[7 * 32 - 1], 0);
    }
}
