//! The vault's bindings, the pure conversion of a `Deposited` log into deposit facts, and the
//! release side: a sidechain [`EthBatch`] as the vault's `Batch`, the wallet's `release` call and
//! reads of `released`/`owed`, and the vault's custom errors decoded from a failed call.
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

use std::fmt;
use std::future::IntoFuture;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address as EthAddress, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Log, TransactionRequest};
use alloy::sol_types::{SolCall, SolEvent};
use ferry_types::denom::ERC20_PREFIX;
use ferry_types::deposit::DepositError;
use ferry_types::release::eth::{EthBatch, EthListing, EthReleaseItem, EthRotation};
use ferry_types::{Address, Amount, Denom, DepositFacts, ParentChain};

use super::rpc::EthereumError;
use super::wallet::{Receipt, Wallet, decode_word};
use crate::tracker::Observation;

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

/// A federation-signed action the vault applies once: a release batch or a change of its token
/// allowlist (once per nonce), or the hand-over to the next federation key (once per epoch).
#[derive(Clone, Copy, Debug)]
pub enum VaultAction<'a> {
    /// `release(batch, signature)`.
    Release(&'a EthBatch),
    /// `setListing(listing, signature)`.
    Listing(&'a EthListing),
    /// `rotate(rotation, signature)`.
    Rotation(&'a EthRotation),
}

impl VaultAction<'_> {
    /// What the event of the applied action indexes first ([`applied_topic`](Self::applied_topic)):
    /// the nonce (the sidechain batch id) of a release or listing, the new epoch of a rotation.
    pub fn applied_key(&self) -> u64 {
        match self {
            VaultAction::Release(batch) => batch.nonce,
            VaultAction::Listing(listing) => listing.nonce,
            VaultAction::Rotation(rotation) => rotation.new_epoch,
        }
    }

    /// The vault the action was signed for.
    pub fn vault(&self) -> ferry_types::release::eth::EthAddress {
        match self {
            VaultAction::Release(batch) => batch.vault,
            VaultAction::Listing(listing) => listing.vault,
            VaultAction::Rotation(rotation) => rotation.vault,
        }
    }

    /// The contract function, for messages (`FerryVault.release`, `FerryVault.setListing`,
    /// `FerryVault.rotate`).
    pub fn function(&self) -> &'static str {
        match self {
            VaultAction::Release(_) => "FerryVault.release",
            VaultAction::Listing(_) => "FerryVault.setListing",
            VaultAction::Rotation(_) => "FerryVault.rotate",
        }
    }

    /// `topic0` of the event the vault emits when it applies the action (`Released`,
    /// `ListingSet`, `KeyRotated`), whose first indexed topic is [`applied_key`](Self::applied_key).
    pub fn applied_topic(&self) -> B256 {
        match self {
            VaultAction::Release(_) => RELEASED_TOPIC,
            VaultAction::Listing(_) => LISTING_SET_TOPIC,
            VaultAction::Rotation(_) => KEY_ROTATED_TOPIC,
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
        }
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

/// Where a log sits, for error messages: whatever of transaction hash, log index and block the
/// node supplied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLocation {
    /// Hash of the transaction that emitted the log.
    pub tx_hash: Option<B256>,
    /// Index of the log in its block.
    pub log_index: Option<u64>,
    /// Number of the block holding it.
    pub block_number: Option<u64>,
}

impl LogLocation {
    /// The location of `log`.
    pub fn of(log: &Log) -> Self {
        LogLocation { tx_hash: log.transaction_hash, log_index: log.log_index, block_number: log.block_number }
    }
}

impl fmt::Display for LogLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.log_index {
            Some(index) => write!(f, "log {index}")?,
            None => f.write_str("log ?")?,
        }
        match self.tx_hash {
            Some(hash) => write!(f, " of transaction {hash:#x}")?,
            None => f.write_str(" of transaction ?")?,
        }
        match self.block_number {
            Some(number) => write!(f, " in block {number}"),
            None => f.write_str(" in block ?"),
        }
    }
}

/// Why a log was not turned into a deposit. Each variant names the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DepositLogError {
    /// The node left out a field a mined log has (a pending log, or a broken node).
    #[error("{at}: the node gave no {missing}")]
    Incomplete {
        /// The log.
        at: LogLocation,
        /// The missing field (`transactionHash`, `logIndex`, `blockNumber` or `blockHash`).
        missing: &'static str,
    },
    /// The node marked the log as removed by a reorganisation.
    #[error("{at}: the node marked it removed (reorganised out)")]
    Removed {
        /// The log.
        at: LogLocation,
    },
    /// Emitted by another contract than the vault.
    #[error("{at}: emitted by {emitter}, not by the vault {vault}")]
    NotFromVault {
        /// The log.
        at: LogLocation,
        /// The contract that emitted it.
        emitter: EthAddress,
        /// The vault watched.
        vault: EthAddress,
    },
    /// Not a well-formed `Deposited` event (signature, topic count, data length or padding).
    #[error("{at}: not a well-formed Deposited event: {reason}")]
    Undecodable {
        /// The log.
        at: LogLocation,
        /// What the decoder refused.
        reason: String,
    },
    /// The amount exceeds the sidechain's 128-bit amounts (the vault refuses these, so this is
    /// not a genuine vault log).
    #[error("{at}: amount {amount} does not fit the sidechain's 128-bit amounts")]
    AmountTooLarge {
        /// The log.
        at: LogLocation,
        /// The amount in the log.
        amount: U256,
    },
    /// The log's position in its transaction does not fit the 32-bit index of deposit facts.
    #[error("{at}: its position among the transaction's deposits does not fit 32 bits")]
    PositionTooLarge {
        /// The log.
        at: LogLocation,
    },
    /// The facts are inconsistent (e.g. a zero amount, which the vault refuses).
    #[error("{at}: {source}")]
    InvalidFacts {
        /// The log.
        at: LogLocation,
        /// What `DepositFacts::validate` refused.
        source: DepositError,
    },
}

/// `0x` + 64 lowercase hex digits: the form of transaction and block hashes in deposit facts,
/// deposit ids and observations.
pub fn hash_text(hash: B256) -> String {
    format!("0x{}", hex::encode(hash.as_slice()))
}

/// The denomination of a deposited asset: `wei` for `address(0)`, else `erc20/0x<lowercase>`.
pub fn asset_denom(token: EthAddress) -> Denom {
    if token == EthAddress::ZERO {
        return Denom::wei();
    }
    let text = format!("{ERC20_PREFIX}{}", hex::encode(token.as_slice()));
    // Forty lowercase hex digits behind the prefix always form a valid denomination; the
    // fallback is unreachable but keeps this path free of panics.
    text.parse().unwrap_or_else(|_| Denom::wei())
}

/// Turns a `Deposited` log from `vault`, as `eth_getLogs` returns it, into the deposit's facts
/// and the block it was seen in.
///
/// Facts: chain Ethereum, `tx_id` = transaction hash (`0x` + 64 lowercase hex), `index` =
/// `position`, the log's place among the vault's `Deposited` logs of its transaction (0 for a
/// transaction that deposits once), `asset` = `wei` or `erc20/0x<token>`, `amount`, `recipient` =
/// the 20-byte account id. The deposit id is thus `eth:<txhash>:<position>`: a reorganisation
/// that re-includes the transaction elsewhere in a block (another block-wide log index) or in
/// another block keeps its id, so it can never be minted twice.
///
/// # Errors
/// [`DepositLogError`] naming the log when it is incomplete or removed, comes from another
/// contract, does not decode strictly as `Deposited` (wrong signature, topic count, data length,
/// non-zero padding), or carries an amount above `u128::MAX`, a zero amount or a log index
/// above `u32::MAX`.
pub fn observation_from_log(log: &Log, vault: EthAddress, position: u64) -> Result<Observation, DepositLogError> {
    let at = LogLocation::of(log);
    if log.removed {
        return Err(DepositLogError::Removed { at });
    }
    let missing = |missing| DepositLogError::Incomplete { at, missing };
    let tx_hash = log.transaction_hash.ok_or_else(|| missing("transactionHash"))?;
    let block_number = log.block_number.ok_or_else(|| missing("blockNumber"))?;
    let block_hash = log.block_hash.ok_or_else(|| missing("blockHash"))?;
    if log.address() != vault {
        return Err(DepositLogError::NotFromVault { at, emitter: log.address(), vault });
    }
    let event = Deposited::decode_log_data_validate(log.data())
        .map_err(|error| DepositLogError::Undecodable { at, reason: error.to_string() })?;
    let facts = deposit_facts(tx_hash, position, &event).map_err(|error| error.located(at))?;
    Ok(Observation { facts, block_height: block_number, block_hash: hash_text(block_hash), coinbase: false })
}

/// The unattributed payments among `transfers`, ERC-20 `Transfer` logs to `vault`: tokens the vault
/// received in a transaction with no `Deposited` log of that token among `deposits` (a plain
/// `transfer`, not `depositToken`). Each gets the next place among its transaction's vault
/// deposits (after the `Deposited` ones), so its id is as stable as theirs. Removed logs, logs of
/// other recipients, zero or out-of-range values are skipped.
pub fn plain_transfers(transfers: &[Log], deposits: &[Observation], vault: EthAddress) -> Vec<Observation> {
    let mut logs: Vec<&Log> = transfers.iter().filter(|log| !log.removed).collect();
    logs.sort_by_key(|log| (log.block_number, log.log_index));
    let mut positions: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for deposit in deposits {
        let next = positions.entry(deposit.facts.tx_id.clone()).or_default();
        *next = (*next).max(deposit.facts.index.saturating_add(1));
    }
    let mut found = Vec::new();
    for log in logs {
        let (Some(tx_hash), Some(block_number), Some(block_hash)) =
            (log.transaction_hash, log.block_number, log.block_hash)
        else {
            continue;
        };
        let topics = log.topics();
        if topics.len() != 3 || topics.first() != Some(&TRANSFER_TOPIC) || topics.get(2) != Some(&vault.into_word()) {
            continue;
        }
        let asset = asset_denom(log.address());
        let tx_id = hash_text(tx_hash);
        if deposits.iter().any(|deposit| deposit.facts.tx_id == tx_id && deposit.facts.asset == asset) {
            continue;
        }
        let Some(amount) =
            log.data().data.get(..32).map(U256::from_be_slice).and_then(|value| u128::try_from(value).ok())
        else {
            continue;
        };
        if amount == 0 || log.data().data.len() != 32 {
            continue;
        }
        let index = positions.entry(tx_id.clone()).or_default();
        let facts = DepositFacts {
            chain: ParentChain::Ethereum,
            tx_id,
            index: *index,
            asset,
            amount: Amount::new(amount),
            recipient: Address::unattributed_pool(),
            deposit_address: false,
            unattributed: Some(ferry_types::deposit::Unattributed::PlainTransfer),
            peg_epoch: None,
        };
        *index = index.saturating_add(1);
        if facts.validate().is_ok() {
            found.push(Observation {
                facts,
                block_height: block_number,
                block_hash: hash_text(block_hash),
                coinbase: false,
            });
        }
    }
    found
}

/// Why decoded event fields do not make deposit facts (before the log's location is attached).
enum FactsError {
    AmountTooLarge(U256),
    PositionTooLarge,
    Invalid(DepositError),
}

impl FactsError {
    fn located(self, at: LogLocation) -> DepositLogError {
        match self {
            FactsError::AmountTooLarge(amount) => DepositLogError::AmountTooLarge { at, amount },
            FactsError::PositionTooLarge => DepositLogError::PositionTooLarge { at },
            FactsError::Invalid(source) => DepositLogError::InvalidFacts { at, source },
        }
    }
}

fn deposit_facts(tx_hash: B256, position: u64, event: &Deposited) -> Result<DepositFacts, FactsError> {
    let amount = u128::try_from(event.amount).map_err(|_| FactsError::AmountTooLarge(event.amount))?;
    let index = u32::try_from(position).map_err(|_| FactsError::PositionTooLarge)?;
    let facts = DepositFacts {
        chain: ParentChain::Ethereum,
        tx_id: hash_text(tx_hash),
        index,
        asset: asset_denom(event.token),
        amount: Amount::new(amount),
        recipient: Address::from_bytes(event.recipient.0),
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    };
    facts.validate().map_err(FactsError::Invalid)?;
    Ok(facts)
}

// -------------------------------------------------------------------------------------------
// Releases
// -------------------------------------------------------------------------------------------

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

/// The vault's `Batch` for a sidechain batch: its epoch, nonce and items. (`chain_id` and
/// `vault` are not part of it: the vault signs over its own chain id and address.)
pub fn release_batch(batch: &EthBatch) -> FerryVault::Batch {
    FerryVault::Batch { epoch: batch.epoch, nonce: batch.nonce, items: batch.items.iter().map(release_item).collect() }
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

impl Wallet {
    /// `vault.release(batch, signature)`: delivers a withdrawal batch the federation signed.
    /// `signature` is the combined signature in the EIP-2537 G2 encoding (256 bytes,
    /// `ferry_types::release::bls::eip2537_g2`); other lengths are sent as given (the vault
    /// refuses them).
    ///
    /// # Errors
    /// Transport, node and timeout errors; a refused release fails at gas estimation with the
    /// vault's custom error in its revert data ([`vault_error`]): `WrongEpoch`,
    /// `AlreadyReleased`, `EmptyBatch`, `MalformedSignature`, `BadSignature`.
    pub async fn release(
        &self,
        vault: EthAddress,
        batch: &EthBatch,
        signature: &[u8],
    ) -> Result<Receipt, EthereumError> {
        self.apply(vault, VaultAction::Release(batch), signature).await
    }

    /// Sends `action` (a release or a listing change) with the federation's `signature` and
    /// waits for its receipt.
    ///
    /// # Errors
    /// As [`release`](Self::release) and [`set_listing`](Self::set_listing).
    pub async fn apply(
        &self,
        vault: EthAddress,
        action: VaultAction<'_>,
        signature: &[u8],
    ) -> Result<Receipt, EthereumError> {
        self.send(action.function(), self.action_request(vault, action, signature)).await
    }

    /// Runs `vault.release(batch, signature)` as an `eth_call` from this wallet's address at the
    /// latest block, with `gas_limit` if given; nothing is sent. A pre-flight check: `Ok` when
    /// the release would succeed now.
    ///
    /// # Errors
    /// As [`release`](Self::release); with too low a `gas_limit`, the vault's
    /// `InsufficientGasForPayment`.
    pub async fn simulate_release(
        &self,
        vault: EthAddress,
        batch: &EthBatch,
        signature: &[u8],
        gas_limit: Option<u64>,
    ) -> Result<(), EthereumError> {
        self.simulate(vault, VaultAction::Release(batch), signature, gas_limit).await
    }

    /// As [`simulate_release`](Self::simulate_release), for either vault action.
    ///
    /// # Errors
    /// As [`apply`](Self::apply), with the vault's refusal in the revert data.
    pub async fn simulate(
        &self,
        vault: EthAddress,
        action: VaultAction<'_>,
        signature: &[u8],
        gas_limit: Option<u64>,
    ) -> Result<(), EthereumError> {
        let mut request = self.action_request(vault, action, signature);
        if let Some(gas) = gas_limit {
            request = request.with_gas_limit(gas);
        }
        self.calls.run("eth_call", self.provider.call(request).into_future()).await?;
        Ok(())
    }

    /// The transaction from this wallet that applies `action` with `signature` on `vault` (to be
    /// sent, simulated or signed).
    pub(super) fn action_request(
        &self,
        vault: EthAddress,
        action: VaultAction<'_>,
        signature: &[u8],
    ) -> TransactionRequest {
        TransactionRequest::default().with_to(vault).with_input(action.calldata(signature)).with_from(self.address())
    }

    /// `vault.released(nonce)`: whether the batch with this nonce was paid.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or an answer that is not one ABI word.
    pub async fn released(&self, vault: EthAddress, nonce: u64) -> Result<bool, EthereumError> {
        let answer = self.view(vault, FerryVault::releasedCall { nonce }).await?;
        Ok(!decode_word("eth_call released", &answer)?.is_zero())
    }

    /// `vault.setListing(listing, signature)`: applies a listing change the federation signed.
    ///
    /// # Errors
    /// Transport, node and timeout errors; a refused change fails at gas estimation with the
    /// vault's custom error ([`vault_error`]): `WrongEpoch`, `AlreadyReleased`, `ZeroToken`,
    /// `MalformedSignature`, `BadSignature`.
    pub async fn set_listing(
        &self,
        vault: EthAddress,
        listing: &EthListing,
        signature: &[u8],
    ) -> Result<Receipt, EthereumError> {
        self.apply(vault, VaultAction::Listing(listing), signature).await
    }

    /// `vault.rotate(rotation, signature)`: hands the vault to the next federation key, with the
    /// current federation's signature of [`EthRotation::payload`].
    ///
    /// # Errors
    /// Transport, node and timeout errors; a refused rotation fails at gas estimation with the
    /// vault's custom error ([`vault_error`]): `WrongEpoch`, `WrongNextEpoch`,
    /// `MalformedSignature`, `BadSignature`, `FederationKeyLength`, `FederationKeyNotInG1`,
    /// `FederationKeyIsInfinity`; a key that is not hex is sent as empty (the vault refuses it).
    pub async fn rotate(
        &self,
        vault: EthAddress,
        rotation: &EthRotation,
        signature: &[u8],
    ) -> Result<Receipt, EthereumError> {
        self.apply(vault, VaultAction::Rotation(rotation), signature).await
    }

    /// `vault.epoch()` and `vault.federationKey()`: the epoch and key the vault trusts now.
    ///
    /// # Errors
    /// As [`released`](Self::released).
    pub async fn federation(&self, vault: EthAddress) -> Result<(u64, Vec<u8>), EthereumError> {
        let answer = self.view(vault, FerryVault::epochCall {}).await?;
        let epoch =
            FerryVault::epochCall::abi_decode_returns(&answer).map_err(|e| undecodable("eth_call epoch", &e))?;
        let answer = self.view(vault, FerryVault::federationKeyCall {}).await?;
        let key = FerryVault::federationKeyCall::abi_decode_returns(&answer)
            .map_err(|e| undecodable("eth_call federationKey", &e))?;
        Ok((epoch, key.to_vec()))
    }

    /// `vault.listed(token)`: whether the vault accepts deposits of `token`.
    ///
    /// # Errors
    /// As [`released`](Self::released).
    pub async fn listed(&self, vault: EthAddress, token: EthAddress) -> Result<bool, EthereumError> {
        let answer = self.view(vault, FerryVault::listedCall { token }).await?;
        Ok(!decode_word("eth_call listed", &answer)?.is_zero())
    }

    /// `vault.owed(token, recipient)`: what a failed release payment left for `recipient` to claim.
    ///
    /// # Errors
    /// As [`released`](Self::released).
    pub async fn owed(
        &self,
        vault: EthAddress,
        token: EthAddress,
        recipient: EthAddress,
    ) -> Result<U256, EthereumError> {
        let answer = self.view(vault, FerryVault::owedCall { token, recipient }).await?;
        decode_word("eth_call owed", &answer)
    }

    /// `vault.releaseMessage(batch)`: the bytes the vault verifies the signature over, as the
    /// vault itself encodes them on its chain (to compare with [`EthBatch::payload`]).
    ///
    /// # Errors
    /// Transport, node and timeout errors, or an answer that does not decode as `bytes`.
    pub async fn release_message(&self, vault: EthAddress, batch: &EthBatch) -> Result<Vec<u8>, EthereumError> {
        let call = FerryVault::releaseMessageCall { batch: release_batch(batch) };
        let answer = self.view(vault, call).await?;
        let message = FerryVault::releaseMessageCall::abi_decode_returns(&answer)
            .map_err(|error| undecodable("eth_call releaseMessage", &error))?;
        Ok(message.to_vec())
    }

    /// `vault.claim(token)` from this wallet's address.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or the vault's refusal (`NothingOwed`, a failed payment).
    pub async fn claim(&self, vault: EthAddress, token: EthAddress) -> Result<Receipt, EthereumError> {
        let request = FerryVault::new(vault, &self.provider).claim(token).into_transaction_request();
        self.send("FerryVault.claim", request).await
    }

    /// Deploys the test-only `BLSHarness`.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or a reverted or unmined deployment.
    pub async fn deploy_bls_harness(&self) -> Result<Receipt, EthereumError> {
        let request = BLSHarness::deploy_builder(&self.provider).into_transaction_request();
        self.send("deploy BLSHarness", request).await
    }

    /// `harness.hashToG2(message, dst)`: the point, EIP-2537 G2 (256 bytes), computed with the
    /// node's precompiles.
    ///
    /// # Errors
    /// Transport, node and timeout errors (a node without EIP-2537 reverts with
    /// `PrecompileFailed`), or an answer that does not decode as `bytes`.
    pub async fn harness_hash_to_g2(
        &self,
        harness: EthAddress,
        message: &[u8],
        dst: &[u8],
    ) -> Result<Vec<u8>, EthereumError> {
        let call =
            BLSHarness::hashToG2Call { message: Bytes::copy_from_slice(message), dst: Bytes::copy_from_slice(dst) };
        let answer = self.view(harness, call).await?;
        let point = BLSHarness::hashToG2Call::abi_decode_returns(&answer)
            .map_err(|error| undecodable("eth_call hashToG2", &error))?;
        Ok(point.to_vec())
    }

    /// Deploys the test-only `RefusingRecipient` (refusing ETH until told otherwise).
    ///
    /// # Errors
    /// As [`deploy_bls_harness`](Self::deploy_bls_harness).
    pub async fn deploy_refusing_recipient(&self) -> Result<Receipt, EthereumError> {
        let request = RefusingRecipient::deploy_builder(&self.provider).into_transaction_request();
        self.send("deploy RefusingRecipient", request).await
    }

    /// `recipient.setAccepting(accept)` on a `RefusingRecipient`.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or a revert.
    pub async fn set_accepting(&self, recipient: EthAddress, accept: bool) -> Result<Receipt, EthereumError> {
        let request = RefusingRecipient::new(recipient, &self.provider).setAccepting(accept).into_transaction_request();
        self.send("RefusingRecipient.setAccepting", request).await
    }

    /// `recipient.claimFrom(vault, token)`: the `RefusingRecipient` claims what the vault owes it.
    ///
    /// # Errors
    /// Transport, node and timeout errors, or the vault's refusal.
    pub async fn claim_as_recipient(
        &self,
        recipient: EthAddress,
        vault: EthAddress,
        token: EthAddress,
    ) -> Result<Receipt, EthereumError> {
        let request =
            RefusingRecipient::new(recipient, &self.provider).claimFrom(vault, token).into_transaction_request();
        self.send("RefusingRecipient.claimFrom", request).await
    }

    /// `eth_call` of `call` on `contract` at the latest block; the raw answer.
    async fn view<C: SolCall>(&self, contract: EthAddress, call: C) -> Result<Bytes, EthereumError> {
        let request = TransactionRequest::default().with_to(contract).with_input(call.abi_encode());
        self.calls.run("eth_call", self.provider.call(request).into_future()).await
    }
}

fn undecodable(method: &str, error: &alloy::sol_types::Error) -> EthereumError {
    EthereumError::UnexpectedAnswer { method: method.to_owned(), detail: error.to_string() }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Bytes, LogData, address, b256};

    use super::*;

    const VAULT: EthAddress = address!("e7f1725e7734ce288f8367e1bb143e90bb3f0512");
    const TOKEN: EthAddress = address!("5fbdb2315678afecb367f032d93f642f64180aa3");
    const DEPOSITOR: EthAddress = address!("f39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    const TX: B256 = b256!("0x9a3c2a0e6b3f8d1e0c4b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f");
    const BLOCK: B256 = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");
    const RECIPIENT: [u8; 20] = [
        0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1,
        0xa1, 0xf0,
    ];

    fn word(value: U256) -> B256 {
        B256::from(value.to_be_bytes::<32>())
    }

    /// Topics and data laid out by hand, as in `contracts/smoke.js`.
    fn raw_log(topics: Vec<B256>, data: Vec<u8>) -> Log {
        Log {
            inner: alloy::primitives::Log { address: VAULT, data: LogData::new_unchecked(topics, Bytes::from(data)) },
            block_hash: Some(BLOCK),
            block_number: Some(7),
            block_timestamp: None,
            transaction_hash: Some(TX),
            transaction_index: Some(0),
            log_index: Some(3),
            removed: false,
        }
    }

    fn deposited_log(token: EthAddress, recipient: [u8; 20], amount: U256) -> Log {
        let topics = vec![DEPOSITED_TOPIC, word(U256::from(1)), token.into_word(), DEPOSITOR.into_word()];
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&recipient);
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(&amount.to_be_bytes::<32>());
        raw_log(topics, data)
    }

    /// `token`'s `Transfer(DEPOSITOR → to, amount)` log at log index `log_index` of [`TX`].
    fn transfer_log(token: EthAddress, to: EthAddress, amount: U256, log_index: u64) -> Log {
        let mut log =
            raw_log(vec![TRANSFER_TOPIC, DEPOSITOR.into_word(), to.into_word()], amount.to_be_bytes::<32>().to_vec());
        log.inner.address = token;
        log.log_index = Some(log_index);
        log
    }

    #[test]
    fn tokens_sent_to_the_vault_without_depositing_them_are_unattributed_after_the_deposits()
    -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(TRANSFER_TOPIC, alloy::primitives::keccak256("Transfer(address,address,uint256)"));
        let other = address!("1111111111111111111111111111111111111111");
        let deposit = observation_from_log(&deposited_log(TOKEN, RECIPIENT, U256::from(5)), VAULT, 0)?;
        let transfers = [
            // The transferFrom of the deposit itself: attributed.
            transfer_log(TOKEN, VAULT, U256::from(5), 1),
            // Another token sent plainly in the same transaction: unattributed, the next place.
            transfer_log(other, VAULT, U256::from(9), 2),
            // Sent elsewhere, or nothing: not the vault's.
            transfer_log(other, DEPOSITOR, U256::from(9), 4),
            transfer_log(other, VAULT, U256::ZERO, 5),
        ];
        let found = plain_transfers(&transfers, std::slice::from_ref(&deposit), VAULT);
        let [only] = found.as_slice() else {
            return Err(format!("expected one unattributed transfer: {found:?}").into());
        };
        assert_eq!((only.facts.index, only.facts.amount), (1, Amount::new(9)));
        assert_eq!(only.facts.asset, asset_denom(other));
        assert_eq!(only.facts.recipient, Address::unattributed_pool());
        assert_eq!(only.facts.unattributed, Some(ferry_types::deposit::Unattributed::PlainTransfer));
        // Without the deposit, both transfers to the vault are unattributed, in log order.
        let alone = plain_transfers(&transfers, &[], VAULT);
        assert_eq!(alone.iter().map(|o| o.facts.index).collect::<Vec<_>>(), [0, 1]);
        Ok(())
    }

    fn sample_batch() -> EthBatch {
        let address = |byte| ferry_types::release::eth::EthAddress::from_bytes([byte; 20]);
        EthBatch {
            chain_id: 31337,
            vault: ferry_types::release::eth::EthAddress::from_bytes(VAULT.into()),
            epoch: 3,
            nonce: 0x0102_0304_0506_0708,
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

    /// The vault signs `abi.encode(RELEASE_TAG, chainid, vault, epoch, nonce, items)`; alloy's
    /// encoder of the same values must give the sidechain's payload byte for byte.
    #[test]
    fn sidechain_payload_is_the_abi_encoding_the_vault_verifies() {
        use alloy::sol_types::SolValue;
        let batch = sample_batch();
        let vault_batch = release_batch(&batch);
        let tag = B256::from(ferry_types::release::eth::RELEASE_TAG);
        let encoded = (tag, U256::from(batch.chain_id), VAULT, vault_batch.epoch, vault_batch.nonce, vault_batch.items)
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

    #[test]
    fn eth_deposit_log_becomes_wei_facts_with_the_block_it_was_seen_in() -> Result<(), DepositLogError> {
        let one_eth = U256::from(10).pow(U256::from(18));
        // Log 3 of its block, the transaction's first deposit: the id names position 0.
        let observation = observation_from_log(&deposited_log(EthAddress::ZERO, RECIPIENT, one_eth), VAULT, 0)?;
        let facts = &observation.facts;
        assert_eq!(facts.chain, ParentChain::Ethereum);
        assert_eq!(facts.tx_id, "0x9a3c2a0e6b3f8d1e0c4b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f");
        assert_eq!(facts.index, 0);
        assert_eq!(facts.asset, Denom::wei());
        assert_eq!(facts.amount, Amount::new(1_000_000_000_000_000_000));
        assert_eq!(facts.recipient, Address::from_bytes(RECIPIENT));
        assert_eq!(facts.id().as_str(), "eth:0x9a3c2a0e6b3f8d1e0c4b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f:0");
        assert_eq!(observation.block_height, 7);
        assert_eq!(observation.block_hash, format!("0x{}", "11".repeat(32)));
        Ok(())
    }

    #[test]
    fn token_deposit_log_becomes_lowercase_erc20_facts() -> Result<(), DepositLogError> {
        let observation = observation_from_log(&deposited_log(TOKEN, RECIPIENT, U256::from(250_000_000u64)), VAULT, 0)?;
        assert_eq!(observation.facts.asset.as_str(), "erc20/0x5fbdb2315678afecb367f032d93f642f64180aa3");
        assert_eq!(observation.facts.amount, Amount::new(250_000_000));
        Ok(())
    }

    #[test]
    fn amount_of_exactly_u128_max_is_accepted_and_one_more_is_refused() -> Result<(), DepositLogError> {
        let max = U256::from(u128::MAX);
        let observation = observation_from_log(&deposited_log(TOKEN, RECIPIENT, max), VAULT, 0)?;
        assert_eq!(observation.facts.amount, Amount::new(u128::MAX));
        let too_large = max + U256::from(1);
        let error = observation_from_log(&deposited_log(TOKEN, RECIPIENT, too_large), VAULT, 0);
        assert!(matches!(error, Err(DepositLogError::AmountTooLarge { amount, .. }) if amount == too_large));
        Ok(())
    }

    #[test]
    fn zero_amount_is_refused_as_invalid_facts() {
        let error = observation_from_log(&deposited_log(TOKEN, RECIPIENT, U256::ZERO), VAULT, 0);
        assert!(matches!(error, Err(DepositLogError::InvalidFacts { source: DepositError::ZeroAmount, .. })));
    }

    #[test]
    fn malformed_logs_are_errors_that_name_the_transaction_and_log_index() {
        let good = deposited_log(TOKEN, RECIPIENT, U256::from(5));
        let mut wrong_signature = good.clone();
        let mut topics = good.topics().to_vec();
        topics[0] = alloy::primitives::keccak256("Transfer(address,address,uint256)");
        wrong_signature.inner.data = LogData::new_unchecked(topics, good.data().data.clone());

        let mut missing_topic = good.clone();
        missing_topic.inner.data = LogData::new_unchecked(good.topics()[..3].to_vec(), good.data().data.clone());

        let mut short_data = good.clone();
        short_data.inner.data = LogData::new_unchecked(good.topics().to_vec(), good.data().data.slice(..63));

        let mut dirty_padding = good.clone();
        let mut data = good.data().data.to_vec();
        data[25] = 1; // inside the 12 zero bytes after the 20-byte recipient
        dirty_padding.inner.data = LogData::new_unchecked(good.topics().to_vec(), Bytes::from(data));

        let mut dirty_address_topic = good.clone();
        let mut topics = good.topics().to_vec();
        topics[2].0[0] = 1; // an address topic must be left-padded with zeros
        dirty_address_topic.inner.data = LogData::new_unchecked(topics, good.data().data.clone());

        for (what, log) in [
            ("wrong signature", wrong_signature),
            ("missing topic", missing_topic),
            ("short data", short_data),
            ("dirty recipient padding", dirty_padding),
            ("dirty token topic", dirty_address_topic),
        ] {
            let error = observation_from_log(&log, VAULT, 0).err();
            let here = LogLocation { tx_hash: Some(TX), log_index: Some(3), block_number: Some(7) };
            assert!(
                matches!(&error, Some(DepositLogError::Undecodable { at, .. }) if *at == here),
                "{what}: {error:?}"
            );
            let text = error.map(|error| error.to_string()).unwrap_or_default();
            assert!(
                text.starts_with(
                    "log 3 of transaction 0x9a3c2a0e6b3f8d1e0c4b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f"
                ),
                "{what}: {text}"
            );
        }
    }

    #[test]
    fn log_from_another_contract_is_refused() {
        let log = deposited_log(TOKEN, RECIPIENT, U256::from(5));
        let error = observation_from_log(&log, TOKEN, 0);
        assert!(
            matches!(error, Err(DepositLogError::NotFromVault { emitter, vault, .. }) if emitter == VAULT && vault == TOKEN)
        );
    }

    #[test]
    fn pending_removed_and_huge_index_logs_are_refused() {
        let good = deposited_log(TOKEN, RECIPIENT, U256::from(5));
        let mut pending = good.clone();
        pending.block_hash = None;
        pending.block_number = None;
        assert!(matches!(
            observation_from_log(&pending, VAULT, 0),
            Err(DepositLogError::Incomplete { missing: "blockNumber", .. })
        ));
        let mut no_hash = good.clone();
        no_hash.transaction_hash = None;
        assert!(matches!(
            observation_from_log(&no_hash, VAULT, 0),
            Err(DepositLogError::Incomplete { missing: "transactionHash", .. })
        ));
        let mut removed = good.clone();
        removed.removed = true;
        assert!(matches!(observation_from_log(&removed, VAULT, 0), Err(DepositLogError::Removed { .. })));
        assert!(matches!(
            observation_from_log(&good, VAULT, u64::from(u32::MAX) + 1),
            Err(DepositLogError::PositionTooLarge { .. })
        ));
    }

    /// One entry of an `eth_getLogs` answer captured from anvil 1.7.1: `deposit(0xa1…a1f0)` with
    /// 1 ether, the vault's first deposit.
    #[test]
    fn log_captured_from_anvil_decodes() -> Result<(), Box<dyn std::error::Error>> {
        let log: Log = serde_json::from_str(CAPTURED_ANVIL_LOG)?;
        let observation = observation_from_log(&log, log.address(), 0)?;
        assert_eq!(observation.facts.asset, Denom::wei());
        assert_eq!(observation.facts.amount, Amount::new(1_000_000_000_000_000_000));
        assert_eq!(observation.facts.recipient, Address::from_bytes(RECIPIENT));
        assert_eq!(
            observation.facts.id().as_str(),
            "eth:0x8dc9085beab8b093fb3f4754d1395102ed52d50d978e22e68083cb1eba3782e7:0"
        );
        assert_eq!(observation.block_height, 2);
        assert_eq!(observation.block_hash, "0x78d179311c07e2fede21f3a8ebb5092243698319088b7a86f847d8f4769fcd8c");
        Ok(())
    }

    const CAPTURED_ANVIL_LOG: &str = r#"{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","topics":["0x459e2f854eae867251ca9f4659b4167b672ee2c61680715810bd3ceac856e4c4","0x0000000000000000000000000000000000000000000000000000000000000001","0x0000000000000000000000000000000000000000000000000000000000000000","0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266"],"data":"0xa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1f00000000000000000000000000000000000000000000000000000000000000000000000000de0b6b3a7640000","blockHash":"0x78d179311c07e2fede21f3a8ebb5092243698319088b7a86f847d8f4769fcd8c","blockNumber":"0x2","blockTimestamp":"0x6b04a3a8","transactionHash":"0x8dc9085beab8b093fb3f4754d1395102ed52d50d978e22e68083cb1eba3782e7","transactionIndex":"0x0","logIndex":"0x0","removed":false}"#;
}
