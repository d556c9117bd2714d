//! The vault's bindings and the release side of its ABI: a sidechain [`EthBatch`] as the vault's
//! `Batch`, the calldata of each federation-signed [`VaultAction`], the events' topics, and the
//! vault's custom errors decoded from a failed call. Pure: calls to a node are `Wallet`'s and
//! `EthereumWatcher`'s, reading a `Deposited` log is `deposit_log.rs`'s.
//!
//! The bindings are generated from the committed artifacts `contracts/out/*.json` (ABI and
//! bytecode), so they cannot drift from the deployed contract: `make contracts` rewrites the
//! artifacts and the next build picks them up.
//!
//! `Deposited(uint256 indexed nonce, address indexed token, address indexed from,
//! bytes20 recipient, uint256 amount)` — topics `[signature, nonce, token, from]`, data
//! `recipient ‖ amount` (64 bytes). `token == address(0)` means ETH.
//!
//! `release((uint64 epoch, uint64 nonce, (address token, address recipient, uint256 amount)[] items),
//! bytes signature)` verifies the federation's BLS signature (EIP-2537 G2, 256 bytes) of
//! `abi.encode(RELEASE_TAG, chainid, vault, epoch, nonce, items)` — byte for byte
//! [`EthBatch::payload`] — and pays each nonce once. `setListing((uint64 epoch, uint64 nonce,
//! address token, bool listed), bytes signature)` changes the token allowlist under the same key
//! and nonce space ([`EthListing::payload`]). [`VaultAction`] is either of the two. Nothing here
//! signs or decides to release: the action and its signature come from the sidechain.

use alloy::primitives::{Address as EthAddress, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolEvent};
use ferry_types::release::eth::{EthBatch, EthHeartbeat, EthListing, EthReleaseItem, EthRotation};

use super::error::EthereumError;

/// Bindings generated from the committed artifacts (ABI, creation and runtime bytecode).
#[allow(missing_docs)]
mod bindings {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        FerryVault,
        "../contracts/out/FerryVault.json"
    );

    alloy::sol!(
        #[sol(rpc)]
        TestToken,
        "../contracts/out/TestToken.json"
    );

    alloy::sol!(
        #[sol(rpc)]
        BLSHarness,
        "../contracts/out/BLSHarness.json"
    );

    alloy::sol!(
        #[sol(rpc)]
        RefusingRecipient,
        "../contracts/out/RefusingRecipient.json"
    );
}

/// `BLSHarness`: the vault's BLS12-381 library as external views (`hashToG2`,
/// `expandMessageXmd`, `verify`), for tests only.
pub use bindings::BLSHarness;
/// `FerryVault`: `deposit(bytes20)` (payable), `depositToken(address,uint256,bytes20)`,
/// `depositNonce()`, `release(Batch,bytes)`, `released(uint64)`, `owed(address,address)`,
/// `claim(address)`, `releaseMessage(Batch)`, the events and the vault's errors
/// (`FerryVault::FerryVaultErrors`); `FerryVault::BYTECODE` is the creation code of the
/// committed artifact, whose constructor takes the federation key and epoch.
pub use bindings::FerryVault;
/// `RefusingRecipient`: a contract refusing ETH until `setAccepting(true)`, which can
/// `claimFrom(vault, token)`; for tests only.
pub use bindings::RefusingRecipient;
/// `TestToken`: the mintable ERC-20 of the tests and the devnet (`contracts/out/TestToken.json`).
/// Never deployed outside a devnet.
pub use bindings::TestToken;
/// The `Deposited` event.
pub type Deposited = FerryVault::Deposited;
/// The vault's custom errors, decoded from revert data (see [`vault_error`]).
pub type VaultError = FerryVault::FerryVaultErrors;

/// `topic0` of `Deposited`: keccak-256 of `Deposited(uint256,address,address,bytes20,uint256)`.
pub const DEPOSITED_TOPIC: B256 = Deposited::SIGNATURE_HASH;
/// `topic0` of ERC-20's `Transfer(address indexed from, address indexed to, uint256 value)`.
pub const TRANSFER_TOPIC: B256 =
    alloy::primitives::b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
/// `topic0` of `Released(uint64 indexed nonce, uint64 epoch, uint256 items)`.
pub const RELEASED_TOPIC: B256 = FerryVault::Released::SIGNATURE_HASH;
/// `topic0` of `Paid(uint64 indexed nonce, address indexed token, address indexed recipient,
/// uint256 amount)`.
pub const PAID_TOPIC: B256 = FerryVault::Paid::SIGNATURE_HASH;
/// `topic0` of `PaymentDeferred(uint64 indexed nonce, address indexed token,
/// address indexed recipient, uint256 amount)`.
pub const PAYMENT_DEFERRED_TOPIC: B256 = FerryVault::PaymentDeferred::SIGNATURE_HASH;
/// `topic0` of `ListingSet(uint64 indexed nonce, address indexed token, bool listed)`.
pub const LISTING_SET_TOPIC: B256 = FerryVault::ListingSet::SIGNATURE_HASH;
/// `topic0` of `KeyRotated(uint64 indexed epoch, bytes key)`.
pub const KEY_ROTATED_TOPIC: B256 = FerryVault::KeyRotated::SIGNATURE_HASH;
/// `topic0` of `HeartbeatPosted(uint64 indexed nonce, uint64 epoch, uint64 height, bytes32 root)`.
pub const HEARTBEAT_POSTED_TOPIC: B256 = FerryVault::HeartbeatPosted::SIGNATURE_HASH;

/// A federation-signed action the vault applies once: a release batch, a change of its token
/// allowlist or a heartbeat (once per nonce), or the hand-over to the next federation key (once
/// per epoch).
#[derive(Clone, Copy, Debug)]
pub enum VaultAction<'a> {
    /// `release(batch, signature)`.
    Release(&'a EthBatch),
    /// `setListing(listing, signature)`.
    Listing(&'a EthListing),
    /// `rotate(rotation, signature)`.
    Rotation(&'a EthRotation),
    /// `heartbeat(hb, signature)`.
    Heartbeat(&'a EthHeartbeat),
}

impl VaultAction<'_> {
    /// What the event of the applied action indexes first ([`applied_topic`](Self::applied_topic)):
    /// the nonce (the sidechain batch id) of a release or listing, the new epoch of a rotation.
    pub fn applied_key(&self) -> u64 {
        match self {
            VaultAction::Release(batch) => batch.nonce,
            VaultAction::Listing(listing) => listing.nonce,
            VaultAction::Rotation(rotation) => rotation.new_epoch,
            VaultAction::Heartbeat(heartbeat) => heartbeat.nonce,
        }
    }

    /// The vault the action was signed for.
    pub fn vault(&self) -> ferry_types::release::eth::EthAddress {
        match self {
            VaultAction::Release(batch) => batch.vault,
            VaultAction::Listing(listing) => listing.vault,
            VaultAction::Rotation(rotation) => rotation.vault,
            VaultAction::Heartbeat(heartbeat) => heartbeat.vault,
        }
    }

    /// The contract function, for messages (`FerryVault.release`, `FerryVault.setListing`,
    /// `FerryVault.rotate`).
    pub fn function(&self) -> &'static str {
        match self {
            VaultAction::Release(_) => "FerryVault.release",
            VaultAction::Listing(_) => "FerryVault.setListing",
            VaultAction::Rotation(_) => "FerryVault.rotate",
            VaultAction::Heartbeat(_) => "FerryVault.heartbeat",
        }
    }

    /// `topic0` of the event the vault emits when it applies the action (`Released`,
    /// `ListingSet`, `KeyRotated`), whose first indexed topic is [`applied_key`](Self::applied_key).
    pub fn applied_topic(&self) -> B256 {
        match self {
            VaultAction::Release(_) => RELEASED_TOPIC,
            VaultAction::Listing(_) => LISTING_SET_TOPIC,
            VaultAction::Rotation(_) => KEY_ROTATED_TOPIC,
            VaultAction::Heartbeat(_) => HEARTBEAT_POSTED_TOPIC,
        }
    }

    /// The calldata applying the action with the federation's `signature` (EIP-2537 G2). A
    /// rotation key that is not hex is sent as empty (the vault refuses it).
    pub fn calldata(&self, signature: &[u8]) -> Vec<u8> {
        let signature = Bytes::copy_from_slice(signature);
        match self {
            VaultAction::Release(batch) => release_calldata(batch, &signature[..]),
            VaultAction::Listing(listing) => {
                FerryVault::setListingCall { listing: vault_listing(listing), signature }.abi_encode()
            }
            VaultAction::Rotation(rotation) => FerryVault::rotateCall {
                rotation: FerryVault::Rotation {
                    epoch: rotation.epoch,
                    newEpoch: rotation.new_epoch,
                    newKey: Bytes::from(hex::decode(&rotation.new_key).unwrap_or_default()),
                },
                signature,
            }
            .abi_encode(),
            VaultAction::Heartbeat(heartbeat) => {
                FerryVault::heartbeatCall { hb: vault_heartbeat(heartbeat), signature }.abi_encode()
            }
        }
    }
}

/// The vault's `Heartbeat` for a sidechain heartbeat. (`chain_id` and `vault` are not part of
/// it: the vault signs over its own chain id and address.)
pub fn vault_heartbeat(heartbeat: &EthHeartbeat) -> FerryVault::Heartbeat {
    FerryVault::Heartbeat {
        epoch: heartbeat.epoch,
        nonce: heartbeat.nonce,
        height: heartbeat.height,
        balancesRoot: B256::from(heartbeat.balances_root),
    }
}

/// The vault's `Listing` for a sidechain listing change. (`chain_id` and `vault` are not part of
/// it: the vault signs over its own chain id and address.)
pub fn vault_listing(listing: &EthListing) -> FerryVault::Listing {
    FerryVault::Listing {
        epoch: listing.epoch,
        nonce: listing.nonce,
        token: eth_address(&listing.token),
        listed: listing.listed,
    }
}

/// An Ethereum address of the sidechain's types as alloy's.
fn eth_address(address: &ferry_types::release::eth::EthAddress) -> EthAddress {
    EthAddress::from(*address.as_bytes())
}

/// The vault's `Item` for a release item (`token` zero = ETH).
pub fn release_item(item: &EthReleaseItem) -> FerryVault::Item {
    FerryVault::Item {
        token: eth_address(&item.token),
        recipient: eth_address(&item.recipient),
        amount: U256::from(item.amount.get()),
    }
}

/// The vault's `Batch` for a sidechain batch: its epoch, nonce, exit root and items. (`chain_id` and
/// `vault` are not part of it: the vault signs over its own chain id and address.)
pub fn release_batch(batch: &EthBatch) -> FerryVault::Batch {
    FerryVault::Batch {
        epoch: batch.epoch,
        nonce: batch.nonce,
        exitHeight: batch.exit_height,
        exitRoot: B256::from(batch.exit_root),
        items: batch.items.iter().map(release_item).collect(),
    }
}

/// The calldata of `release(batch, signature)`: what a release transaction carries (its size
/// and zero bytes set the transaction's intrinsic gas).
pub fn release_calldata(batch: &EthBatch, signature: &[u8]) -> Vec<u8> {
    FerryVault::releaseCall { batch: release_batch(batch), signature: Bytes::copy_from_slice(signature) }.abi_encode()
}

/// The vault custom error `error` carries, when it is a node's refusal of a call or transaction
/// (e.g. at gas estimation) with revert data that decodes as one of the vault's errors
/// (`AlreadyReleased`, `BadSignature`, …). `None` for any other failure.
pub fn vault_error(error: &EthereumError) -> Option<VaultError> {
    match error {
        EthereumError::Rpc { source, .. } => source.as_error_resp()?.as_decoded_interface_error::<VaultError>(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::address;
    use ferry_types::Amount;

    use super::*;

    const VAULT: EthAddress = address!("e7f1725e7734ce288f8367e1bb143e90bb3f0512");
    const TOKEN: EthAddress = address!("5fbdb2315678afecb367f032d93f642f64180aa3");

    fn sample_batch() -> EthBatch {
        let address = |byte| ferry_types::release::eth::EthAddress::from_bytes([byte; 20]);
        EthBatch {
            chain_id: 31337,
            vault: ferry_types::release::eth::EthAddress::from_bytes(VAULT.into()),
            epoch: 3,
            nonce: 0x0102_0304_0506_0708,
            exit_height: 77,
            exit_root: [0x5e; 32],
            items: vec![
                EthReleaseItem {
                    token: ferry_types::release::eth::EthAddress::ZERO,
                    recipient: address(0xa1),
                    amount: Amount::new(u128::MAX),
                },
                EthReleaseItem {
                    token: ferry_types::release::eth::EthAddress::from_bytes(TOKEN.into()),
                    recipient: address(0xb0),
                    amount: Amount::new(250_000_000),
                },
            ],
        }
    }

    /// The vault signs `abi.encode(RELEASE_TAG, chainid, vault, epoch, nonce, exitHeight,
    /// exitRoot, items)`; alloy's encoder of the same values must give the sidechain's payload
    /// byte for byte.
    #[test]
    fn sidechain_payload_is_the_abi_encoding_the_vault_verifies() {
        use alloy::sol_types::SolValue;
        let batch = sample_batch();
        let vault_batch = release_batch(&batch);
        let tag = B256::from(ferry_types::release::eth::RELEASE_TAG);
        let encoded = (
            tag,
            U256::from(batch.chain_id),
            VAULT,
            vault_batch.epoch,
            vault_batch.nonce,
            vault_batch.exitHeight,
            vault_batch.exitRoot,
            vault_batch.items,
        )
            .abi_encode_params();
        assert_eq!(hex::encode(&encoded), hex::encode(batch.payload()));
    }

    #[test]
    fn release_calldata_carries_the_batch_and_signature_unchanged() -> Result<(), alloy::sol_types::Error> {
        let batch = sample_batch();
        let signature: Vec<u8> = (0..=255).collect();
        let call = FerryVault::releaseCall::abi_decode(&release_calldata(&batch, &signature))?;
        assert_eq!(call.batch, release_batch(&batch));
        assert_eq!(call.batch.items[0].amount, U256::from(u128::MAX));
        assert_eq!(call.batch.items[1].token, TOKEN);
        assert_eq!(call.signature.to_vec(), signature);
        Ok(())
    }

    /// A refusal as anvil answers `eth_estimateGas`: code 3 and the revert data.
    fn refused_with(revert_data: &[u8]) -> Result<EthereumError, serde_json::Error> {
        let json = format!(
            r#"{{"code":3,"message":"execution reverted: custom error","data":"0x{}"}}"#,
            hex::encode(revert_data)
        );
        Ok(EthereumError::Rpc {
            method: "eth_sendRawTransaction".to_owned(),
            source: alloy::transports::TransportError::ErrorResp(serde_json::from_str(&json)?),
        })
    }

    #[test]
    fn vault_errors_are_decoded_from_revert_data_and_nothing_else() -> Result<(), serde_json::Error> {
        use alloy::sol_types::SolError;
        let replay = refused_with(&FerryVault::AlreadyReleased { nonce: 7 }.abi_encode())?;
        assert!(matches!(
            vault_error(&replay),
            Some(VaultError::AlreadyReleased(FerryVault::AlreadyReleased { nonce: 7 }))
        ));
        let epoch = refused_with(&FerryVault::WrongEpoch { expected: 3, got: 4 }.abi_encode())?;
        assert!(matches!(
            vault_error(&epoch),
            Some(VaultError::WrongEpoch(FerryVault::WrongEpoch { expected: 3, got: 4 }))
        ));
        // A token's own error, a bare revert, a non-RPC failure: not the vault's.
        let selector_only = refused_with(&alloy::primitives::keccak256("Unknown()")[..4])?;
        assert!(vault_error(&selector_only).is_none());
        assert!(vault_error(&refused_with(&[])?).is_none());
        assert!(vault_error(&EthereumError::BadPrivateKey).is_none());
        Ok(())
    }

    #[test]
    fn deposited_topic_is_the_keccak_of_the_event_signature() {
        assert_eq!(DEPOSITED_TOPIC, alloy::primitives::keccak256("Deposited(uint256,address,address,bytes20,uint256)"));
    }
}
