//! ABCI query paths and their JSON answers.
//!
//! Paths: `/account/<address>`, `/balances/<address>`, `/params`, `/app_hash`,
//! `/deposit/<id>`, `/reserves`, `/federation`, `/peg`, `/withdrawal/wd-<n>`, `/batch/<n>`,
//! `/batches/pending[/<after>]`, `/bridge`, `/bitcoin/fees`, `/audit_anchor/<member>/<log>`. Every query is answered at the height CometBFT
//! passes (0 = latest committed).
//!
//! The withdrawal side's records ([`Withdrawal`], [`Batch`], [`BridgeStatus`]) are defined here
//! because they are what the chain answers with: the state machine stores exactly these, and the
//! signers, relayers and CLI read them back. A signer rebuilds a batch's payload from the
//! [`Batch`] record before it signs anything.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::amount::{Amount, Coin};
use crate::denom::Denom;
use crate::release::bitcoin::ReleasePlan;
use crate::release::eth::{EthBatch, EthListing};
use crate::release::fee::FeeRate;

pub mod audit;
pub mod federation;

/// Path prefix of the account query.
pub const ACCOUNT_PATH: &str = "/account/";
/// Path prefix of the balances query.
pub const BALANCES_PATH: &str = "/balances/";
/// Path of the params query.
pub const PARAMS_PATH: &str = "/params";
/// Query path prefix of a token's listing proposals (`/listing/0x…`, [`TokenProposals`]).
pub const LISTING_PATH: &str = "/listing/";
/// Path prefix of the deposit query (`/deposit/<deposit id>`).
pub const DEPOSIT_PATH: &str = "/deposit/";
/// Path of the reserves query (per-asset supply and reserves, and the Bitcoin reserve UTXOs).
pub const RESERVES_PATH: &str = "/reserves";
/// Path of the federation query.
pub const FEDERATION_PATH: &str = "/federation";
/// Path of the Bitcoin peg query.
pub const PEG_PATH: &str = "/peg";
/// Path prefix of the withdrawal query (`/withdrawal/wd-<n>`).
pub const WITHDRAWAL_PATH: &str = "/withdrawal/";
/// Path prefix of the batch query (`/batch/<n>`).
pub const BATCH_PATH: &str = "/batch/";
/// Path of the pending-batches query: batches awaiting signatures or release, oldest first, at
/// most [`PENDING_BATCHES_PAGE`] of them; `/batches/pending/<n>` continues after batch `n`.
pub const PENDING_BATCHES_PATH: &str = "/batches/pending";
/// Path of the bridge status query (paused or not, why, pause votes).
pub const BRIDGE_PATH: &str = "/bridge";
/// Most batches one `/batches/pending` answer carries.
pub const PENDING_BATCHES_PAGE: usize = 16;
/// Path of the app-hash query: the Merkle root this node computed at the height.
pub const APP_HASH_PATH: &str = "/app_hash";
/// Path of the raw-record query: the query's `data` is a state key; the answer's value is the
/// record's stored bytes (BCS, see `ferry_app::records`), code [`QUERY_NOT_FOUND`] when absent.
/// With `prove = true` the answer carries one proof op of type [`JMT_PROOF_OP`]: its `key` is
/// the state key, its `data` the borsh encoding of jmt's `SparseMerkleProof<Sha256>` for the key
/// hash SHA-256(key), which verifies the value (or its absence) against the app hash of the
/// queried height — the root in the header of the *next* height. This is what verified readers
/// (signers, relayers) read their facts through.
pub const STORE_PATH: &str = "/store";
/// Proof-op type of [`STORE_PATH`] answers: a Jellyfish Merkle Tree proof, SHA-256 hashing, as
/// jmt 0.12 encodes it with borsh.
pub const JMT_PROOF_OP: &str = "jmt:sha256:v0";
/// Path of the Bitcoin fee query: the release fee rate, its bounds, and the parent clock.
pub const BITCOIN_FEES_PATH: &str = "/bitcoin/fees";
/// Path of the reserves check: the open round and each parent chain's last check ([`ReservesCheckView`]).
pub const RESERVES_CHECK_PATH: &str = "/reserves/check";
/// Path prefix of an account's deposit address (`/deposit_address/<account>`, [`DepositAddressView`]).
pub const DEPOSIT_ADDRESS_PATH: &str = "/deposit_address/";
/// Path prefix of the registered deposit addresses in registration order
/// (`/deposit_addresses/<after>`: those numbered above `after`, [`DepositAddressPage`]).
pub const DEPOSIT_ADDRESSES_PATH: &str = "/deposit_addresses/";
/// Path of the open unattributed payments (`/unattributed`, or `/unattributed/<after deposit id>`
/// for the next page; [`UnattributedPage`]).
pub const UNATTRIBUTED_PATH: &str = "/unattributed";
/// Most unattributed payments one `/unattributed` answer carries.
pub const UNATTRIBUTED_PAGE: usize = 100;
/// Most registrations one `/deposit_addresses/<after>` answer carries.
pub const DEPOSIT_ADDRESSES_PAGE: usize = 1_000;

/// Path of the exit tree's root over the claims ([`crate::exit_tree::ExitRoot`]): asked at
/// height `h`, the root of the claims committed at `h`, with the first height that had it.
pub const EXIT_ROOT_PATH: &str = "/exit/eth/root";
/// Path of a page of the Ethereum exit claims from a position on (`/exit/eth/claims/<from>`,
/// [`ExitClaimPage`]): with every page, anyone rebuilds the exit tree at that height.
pub const EXIT_CLAIMS_PATH: &str = "/exit/eth/claims/";
/// The most exit claims one page holds.
pub const EXIT_CLAIMS_PAGE: usize = 2_000;

/// Path of the Bitcoin exit's standing ([`BtcExitStatus`]).
pub const EXIT_BTC_PATH: &str = "/exit/btc";
/// Path of one Bitcoin exit disbursal with its claims (`/exit/btc/<batch id>`, [`BtcDisbursalView`]).
pub const EXIT_BTC_DISBURSAL_PATH: &str = "/exit/btc/";

/// Answer to `/exit/btc`: which disbursal covers the reserve now, and the quorum's Bitcoin clock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtcExitStatus {
    /// The covering disbursal's batch id (none before the first release with one confirmed).
    pub covering: Option<u64>,
    /// The Bitcoin height the members' quorum reported last.
    pub clock: Option<u64>,
    /// The disbursals derived for the release in flight, if any (candidates).
    pub candidates: Vec<u64>,
}

/// Path of an account's Bitcoin recovery address (`/exit/btc/recovery/<ferry1…>`, [`RecoveryView`]).
pub const EXIT_BTC_RECOVERY_PATH: &str = "/exit/btc/recovery/";

/// Answer to `/exit/btc/recovery/<account>`: where the Bitcoin exit pays the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryView {
    /// The account.
    pub account: Address,
    /// The address it registered (`MsgSetRecoveryAddress`), if any.
    pub registered: Option<String>,
    /// Its own key's P2WPKH address on the peg's network (paid when it registered none).
    pub default: Option<String>,
}

/// Answer to `/exit/btc/<id>`: the disbursal's batch record (signatures included) and its claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtcDisbursalView {
    /// The batch record.
    pub batch: Batch,
    /// Its claims, in claim order.
    pub claims: Vec<crate::release::exit::RecordedClaim>,
}

/// One page of the Ethereum exit claims, in position order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitClaimPage {
    /// (position, claim) from the asked position on, at most [`EXIT_CLAIMS_PAGE`].
    pub claims: Vec<(u32, crate::exit_tree::Claim)>,
    /// Where the next page starts, when there may be one.
    pub next: Option<u32>,
}

/// Query answer code: found.
pub const QUERY_OK: u32 = 0;
/// Query answer code: the path or its argument is malformed.
pub const QUERY_BAD_REQUEST: u32 = 1;
/// Query answer code: nothing stored under that key at that height.
pub const QUERY_NOT_FOUND: u32 = 2;
/// Query answer code: the height is not available (in the future or before genesis).
pub const QUERY_BAD_HEIGHT: u32 = 3;
/// Query answer code: the height is older than this node keeps (it prunes its history; an
/// archive node still answers).
pub const QUERY_PRUNED: u32 = 4;

/// Answer to `/account/<address>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The account.
    pub address: Address,
    /// Its number (bound into every signature).
    pub account_number: u64,
    /// The next sequence it must sign with.
    pub sequence: u64,
    /// Hex compressed public key, once the account has signed a transaction.
    pub public_key: Option<String>,
}

/// Answer to `/balances/<address>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancesView {
    /// The account.
    pub address: Address,
    /// Non-zero balances, sorted by denom.
    pub balances: Vec<Coin>,
}

/// Answer to `/app_hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHashView {
    /// The height.
    pub height: u64,
    /// Hex Merkle root of the state after that height.
    pub app_hash: String,
}

/// Answer to `/peg`: where Bitcoin deposits go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegView {
    /// Bitcoin network.
    pub network: crate::peg::BitcoinNetwork,
    /// The P2WSH address deposits pay to.
    pub address: String,
    /// Hex witness script (the t-of-n multisig).
    pub witness_script: String,
    /// Signatures needed to spend.
    pub threshold: u32,
    /// Hex keys in script order.
    pub keys: Vec<String>,
}

impl PegView {
    /// The view of `peg`.
    pub fn of(peg: &crate::peg::Peg, network: crate::peg::BitcoinNetwork) -> Self {
        PegView {
            network,
            address: peg.address().to_string(),
            witness_script: hex::encode(peg.witness_script().as_bytes()),
            threshold: peg.threshold(),
            keys: peg.keys().iter().map(ToString::to_string).collect(),
        }
    }
}

/// One registered deposit address, as the chain keeps it: the account it commits to, numbered
/// from 1 in registration order (relayers follow the list by number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositAddressRecord {
    /// Registration number.
    pub number: u64,
    /// The account payments to it mint to.
    pub account: Address,
    /// The sidechain height it was registered at.
    pub height: u64,
}

/// Answer to `/deposit_address/<account>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositAddressView {
    /// The registration.
    #[serde(flatten)]
    pub record: DepositAddressRecord,
    /// The bech32 P2WSH address (for the peg's current keys).
    pub address: String,
    /// `bitcoin:<address>` (BIP 21), for wallets and QR codes.
    pub uri: String,
    /// Hex witness script: `<account id> OP_DROP` then the peg's multisig.
    pub witness_script: String,
}

impl DepositAddressView {
    /// The view of `record` for `peg`.
    pub fn of(record: DepositAddressRecord, peg: &crate::peg::Peg) -> Self {
        let address = peg.deposit_address(&record.account).to_string();
        DepositAddressView {
            record,
            uri: format!("bitcoin:{address}"),
            address,
            witness_script: hex::encode(peg.deposit_witness_script(&record.account).as_bytes()),
        }
    }
}

/// Answer to `/deposit_addresses/<after>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositAddressPage {
    /// Registrations numbered above `after`, in order, at most [`DEPOSIT_ADDRESSES_PAGE`].
    pub registrations: Vec<DepositAddressRecord>,
    /// How many are registered in all.
    pub total: u64,
}

/// An open (unresolved) unattributed payment to the peg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenUnattributed {
    /// Its deposit id, `btc:<txid>:<vout>`.
    pub id: crate::deposit::DepositId,
    /// What it paid, in satoshi.
    pub amount: Amount,
    /// Why it names no account.
    pub reason: crate::deposit::Unattributed,
    /// When a quorum recorded it.
    pub height: u64,
}

/// Answer to `/unattributed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnattributedPage {
    /// Open payments in deposit id order, at most [`UNATTRIBUTED_PAGE`].
    pub open: Vec<OpenUnattributed>,
    /// How many are open in all.
    pub total: u64,
}

/// A withdrawal id: `wd-<n>`, numbered from 1 in the order withdrawals were accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WithdrawalId(pub u64);

/// Why text is not a withdrawal id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a withdrawal id: expected wd-<n>, n a positive integer without leading zeros")]
pub struct WithdrawalIdError(pub String);

impl fmt::Display for WithdrawalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wd-{}", self.0)
    }
}

impl FromStr for WithdrawalId {
    type Err = WithdrawalIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.strip_prefix("wd-")
            .and_then(|number| number.parse::<u64>().ok().filter(|n| *n > 0 && n.to_string() == number))
            .map(WithdrawalId)
            .ok_or_else(|| WithdrawalIdError(text.to_owned()))
    }
}

impl TryFrom<String> for WithdrawalId {
    type Error = WithdrawalIdError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<WithdrawalId> for String {
    fn from(id: WithdrawalId) -> Self {
        id.to_string()
    }
}

/// A withdrawal as the chain records it when the tokens are burned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// Its id.
    pub id: WithdrawalId,
    /// Who burned the tokens.
    pub sender: Address,
    /// The wrapped denomination burned.
    pub asset: Denom,
    /// The amount burned (a Bitcoin destination receives this minus its share of the release's fee).
    pub amount: Amount,
    /// Where it is paid (an Ethereum address in EIP-55 form, or a Bitcoin address).
    pub destination: String,
    /// Bitcoin: the largest share of a release's miner fee it accepts (zero on Ethereum, where
    /// the relayer pays the gas).
    #[serde(default)]
    pub max_fee: Amount,
    /// The height of the burn.
    pub burned_height: u64,
    /// The first height at which it may be batched (later than the burn when it waits its delay).
    pub eligible_height: u64,
    /// The batch releasing it, once batched.
    pub batch: Option<u64>,
    /// Why the last batch of its asset left it queued (its fee share above its budget, say);
    /// cleared when it is batched.
    #[serde(default)]
    pub waiting: Option<String>,
    /// Set when an aborted batch held it: why, and the members' refund votes since.
    #[serde(default)]
    pub held: Option<Held>,
    /// The height it was refunded at, if it was.
    #[serde(default)]
    pub refunded_height: Option<u64>,
}

/// Why a withdrawal is held, and who voted to refund it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The aborted batch that held it.
    pub batch: u64,
    /// The members' reasons for refusing it.
    pub reason: String,
    /// The height it was held at.
    pub height: u64,
    /// Members that voted to refund it (`MsgResolveHeld`).
    #[serde(default)]
    pub refund_votes: std::collections::BTreeSet<Address>,
}

impl From<&Withdrawal> for crate::release::bitcoin::ReleaseRequest {
    /// What a Bitcoin release pays for `withdrawal`: its destination, its burn, its budget.
    fn from(withdrawal: &Withdrawal) -> Self {
        crate::release::bitcoin::ReleaseRequest {
            destination: withdrawal.destination.clone(),
            burned: withdrawal.amount,
            max_fee: withdrawal.max_fee,
        }
    }
}

/// Where a withdrawal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    /// Burned, waiting for a batch (its delay, the window cap or the reserves may hold it back).
    Queued,
    /// In a batch that awaits the federation's signatures.
    Batched,
    /// Its batch is signed and can be released on the parent chain.
    Signed,
    /// Its batch's release is confirmed on the parent chain.
    Released,
    /// Enough members refused to pay it (a named reason) that its batch was aborted: it waits
    /// for a member quorum to refund it (`MsgResolveHeld`).
    Held,
    /// Refunded to the sender's sidechain balance after it was held.
    Refunded,
}

/// Answer to `/withdrawal/wd-<n>`: the record and its progress through its batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalView {
    /// Where it stands.
    pub status: WithdrawalStatus,
    /// The record.
    #[serde(flatten)]
    pub withdrawal: Withdrawal,
    /// What the destination receives, once batched: the amount burned, less its share of the
    /// miner fee on Bitcoin.
    pub paid: Option<Amount>,
    /// When its batch formed.
    pub batched_height: Option<u64>,
    /// When its batch reached its signing threshold.
    pub signed_height: Option<u64>,
    /// When its batch's release settled.
    pub released_height: Option<u64>,
    /// The release transaction on the parent chain, once settled.
    pub release_tx: Option<String>,
}

impl WithdrawalView {
    /// The view of `withdrawal` given its batch (`None` while it is queued).
    pub fn of(withdrawal: Withdrawal, batch: Option<&Batch>) -> Self {
        let replaced =
            |batch: &Batch| matches!(&batch.release, BatchRelease::Bitcoin(release) if !release.superseded.is_empty());
        let status = match batch.map(|batch| (batch.status, replaced(batch))) {
            _ if withdrawal.refunded_height.is_some() => WithdrawalStatus::Refunded,
            _ if withdrawal.held.is_some() => WithdrawalStatus::Held,
            None | Some((BatchStatus::Aborted, _)) => WithdrawalStatus::Queued,
            // A replacement being signed: an earlier version is signed and out there.
            Some((BatchStatus::Signing, true)) => WithdrawalStatus::Signed,
            Some((BatchStatus::Signing, false)) => WithdrawalStatus::Batched,
            Some((BatchStatus::Signed, _)) => WithdrawalStatus::Signed,
            Some((BatchStatus::Released, _)) => WithdrawalStatus::Released,
        };
        let paid = batch
            .and_then(|batch| batch.items.iter().find(|item| item.withdrawal == withdrawal.id))
            .map(|item| item.paid);
        WithdrawalView {
            status,
            withdrawal,
            paid,
            batched_height: batch.map(|batch| batch.created_height),
            signed_height: batch.and_then(|batch| batch.signed_height),
            released_height: batch.and_then(|batch| batch.released_height),
            release_tx: batch.and_then(|batch| batch.release_tx.clone()),
        }
    }
}

/// Where a batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Collecting the members' signatures.
    Signing,
    /// Signed by the threshold; a relayer can release it.
    Signed,
    /// The release is confirmed on the parent chain (by a quorum of attestations); settled.
    Released,
    /// Dissolved before it was fully signed: its inputs unlocked, its withdrawals re-queued or
    /// held. Its id (the Ethereum nonce) is never used again, and nobody signs it.
    Aborted,
}

/// One withdrawal in a batch. Item `i` is the `i`-th item of the Ethereum payload or the `i`-th
/// output of the Bitcoin release transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    /// The withdrawal.
    pub withdrawal: WithdrawalId,
    /// Its destination.
    pub destination: String,
    /// The amount burned.
    pub amount: Amount,
    /// What the destination receives: the amount burned, less its share of the miner fee on Bitcoin.
    pub paid: Amount,
}

/// What the federation signs for a batch, by parent chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchRelease {
    /// An Ethereum batch: a BLS threshold signature over the payload, checked by `FerryVault.release`.
    Ethereum(EthereumRelease),
    /// A Bitcoin release transaction: each input signed by the threshold of members.
    Bitcoin(BitcoinRelease),
    /// A change to the vault's token allowlist, decided by a member quorum
    /// (`MsgProposeListing`): a BLS threshold signature checked by `FerryVault.setListing`.
    /// Such a batch has no items and a total of zero.
    EthereumListing(EthereumListing),
    /// The hand-over of the vault to the next federation's key ([`crate::query::federation::Handover`]):
    /// a BLS threshold signature of the current key checked by `FerryVault.rotate`. Such a batch
    /// has no items and a total of zero.
    EthereumRotation(EthereumRotation),
    /// The federation's heartbeat to the vault: the exit tree's root at a height, checked by
    /// `FerryVault.heartbeat` (issue 17; not the members' liveness heartbeat). Such a batch has
    /// no items and a total of zero.
    EthereumHeartbeat(EthereumHeartbeat),
    /// The Bitcoin emergency disbursal for the reserve a release leaves behind (issue 17): a
    /// height-locked tree of transactions each input signed by the threshold of members, like a
    /// release's. Such a batch has no items and a total of zero, and is never delivered: it is
    /// kept, and broadcast only once its lock height passed with its inputs unspent.
    BitcoinExit(BitcoinExit),
}

impl BatchRelease {
    /// For a sweep, the retired epoch whose peg its inputs are at (that federation signs it).
    pub fn sweep_epoch(&self) -> Option<u64> {
        match self {
            BatchRelease::Bitcoin(release) => release.sweep,
            _ => None,
        }
    }

    /// The epoch of the federation that signs this batch, when the batch names it: a sweep's
    /// retired epoch, a disbursal's [`BitcoinExit::epoch`]. `None`: the current federation signs.
    pub fn signer_epoch(&self) -> Option<u64> {
        match self {
            BatchRelease::BitcoinExit(exit) => Some(exit.epoch),
            release => release.sweep_epoch(),
        }
    }

    /// The bytes the federation's BLS key signs, for the two Ethereum kinds; `None` for Bitcoin.
    pub fn bls_message(&self) -> Option<Vec<u8>> {
        match self {
            BatchRelease::Ethereum(release) => Some(release.batch.signing_message()),
            BatchRelease::EthereumListing(listing) => Some(listing.listing.payload()),
            BatchRelease::EthereumRotation(rotation) => rotation.rotation.payload(),
            BatchRelease::EthereumHeartbeat(heartbeat) => Some(heartbeat.heartbeat.payload()),
            BatchRelease::Bitcoin(_) | BatchRelease::BitcoinExit(_) => None,
        }
    }

    /// The BIP 143 digests a member signs, hex, in the order it posts its signatures: a release's
    /// inputs, or a disbursal's transactions' inputs flattened; `None` for the Ethereum kinds.
    pub fn bitcoin_sighashes(&self) -> Option<Vec<&str>> {
        match self {
            BatchRelease::Bitcoin(release) => Some(release.sighashes.iter().map(String::as_str).collect()),
            BatchRelease::BitcoinExit(exit) => Some(exit.sighashes.iter().flatten().map(String::as_str).collect()),
            _ => None,
        }
    }

    /// Records the combined BLS signature (EIP-2537 form and compressed, hex) on an Ethereum
    /// kind; does nothing for Bitcoin.
    pub fn set_bls_signature(&mut self, eip2537: String, compressed: String) {
        let (signature, signature_compressed) = match self {
            BatchRelease::Ethereum(release) => (&mut release.signature, &mut release.signature_compressed),
            BatchRelease::EthereumListing(listing) => (&mut listing.signature, &mut listing.signature_compressed),
            BatchRelease::EthereumRotation(rotation) => (&mut rotation.signature, &mut rotation.signature_compressed),
            BatchRelease::EthereumHeartbeat(heartbeat) => {
                (&mut heartbeat.signature, &mut heartbeat.signature_compressed)
            }
            BatchRelease::Bitcoin(_) | BatchRelease::BitcoinExit(_) => return,
        };
        *signature = Some(eip2537);
        *signature_compressed = Some(compressed);
    }

    /// The parent chain the federation's signature is used on.
    pub fn parent_chain(&self) -> crate::deposit::ParentChain {
        match self {
            BatchRelease::Bitcoin(_) | BatchRelease::BitcoinExit(_) => crate::deposit::ParentChain::Bitcoin,
            BatchRelease::Ethereum(_)
            | BatchRelease::EthereumListing(_)
            | BatchRelease::EthereumRotation(_)
            | BatchRelease::EthereumHeartbeat(_) => crate::deposit::ParentChain::Ethereum,
        }
    }
}

/// Where a Bitcoin disbursal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStanding {
    /// Derived for a release version that has not confirmed: it becomes the covering one if that
    /// version confirms.
    Candidate,
    /// The release it follows confirmed: it pays out the reserve the chain holds now.
    Covering,
    /// Another version or a later release confirmed, or the release was aborted: its inputs are
    /// (or will be) spent, so it can never confirm.
    Superseded,
}

/// The release version a disbursal follows: it spends that version's change, so only that
/// version's confirmation can make it valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowedRelease {
    /// The release batch.
    pub batch: u64,
    /// Its version.
    pub version: u32,
    /// That version's txid.
    pub txid: String,
}

/// A Bitcoin emergency disbursal as the chain derived it ([`crate::release::exit`]): what it was
/// planned from (its claims are recorded in pages, [`crate::state_keys::exit_btc_claims`]), the
/// transactions' ids and every digest members sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitcoinExit {
    /// The release version it follows.
    pub follows: FollowedRelease,
    /// The federation epoch whose peg holds its inputs and whose members sign it: the current
    /// federation's, or for a hand-over's migration the next one's (the migration's output is at
    /// the next peg).
    pub epoch: u64,
    /// The sidechain height whose balances it pays.
    pub snapshot_height: u64,
    /// The quorum's Bitcoin clock when it was derived (its lock is this plus `lock_blocks`).
    pub clock: u64,
    /// Inputs, fee rate, lock height and limits it was planned with.
    pub basis: crate::release::exit::ExitBasis,
    /// Claims recorded (pages of [`crate::release::exit::CLAIMS_PER_PAGE`]).
    pub claim_count: u32,
    /// The claims it pays an output to.
    pub recipients: u32,
    /// The claims too small to be paid on their own, left in the residual.
    pub pooled: u32,
    /// What goes back to the peg.
    pub residual: Amount,
    /// Every transaction's fee together.
    pub fees: Amount,
    /// Each transaction's txid, the intermediate first.
    pub txids: Vec<String>,
    /// Each transaction's sighashes (hex, per input), the intermediate first.
    pub sighashes: Vec<Vec<String>>,
    /// Where it stands.
    pub standing: ExitStanding,
}

impl BitcoinExit {
    /// How many claim pages it has.
    pub fn claim_pages(&self) -> u32 {
        let per_page = u32::try_from(crate::release::exit::CLAIMS_PER_PAGE).unwrap_or(u32::MAX);
        self.claim_count.div_ceil(per_page)
    }
}

/// One member's latest proposal to list or unlist a token (`MsgProposeListing`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingProposal {
    /// `Some` limits to list, `None` to unlist.
    pub limit: Option<crate::genesis::AssetLimit>,
    /// When it was made.
    pub height: u64,
}

/// Answer to `/listing/<0x token>`: the members' proposals for the token since its last listing
/// batch formed, and the listing batch in flight for it, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenProposals {
    /// Each member's latest proposal.
    pub proposals: BTreeMap<Address, ListingProposal>,
    /// The listing batch being signed or delivered.
    pub in_flight: Option<u64>,
}

/// A listing change as the chain decided it, and once signed the federation signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthereumListing {
    /// What the vault applies: chain id, vault, epoch, nonce (the batch id), token, listed.
    pub listing: EthListing,
    /// The withdrawal limits the chain adopts for the token when the listing settles (`None` for
    /// an unlisting, which keeps the token's limits so holders can still withdraw).
    pub limit: Option<crate::genesis::AssetLimit>,
    /// The members whose identical proposals made the quorum, with the height of each.
    pub proposers: BTreeMap<Address, u64>,
    /// Hex of [`EthListing::payload`], the bytes members sign.
    pub payload: String,
    /// The combined signature in the EIP-2537 form `FerryVault.setListing` takes (hex, 256 bytes).
    pub signature: Option<String>,
    /// The combined signature, compressed (hex, 96 bytes).
    pub signature_compressed: Option<String>,
}

/// The vault's hand-over to the next federation key as the chain formed it, and once signed the
/// current federation's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthereumRotation {
    /// What the vault applies: chain id, vault, the current and next epoch, the next key.
    pub rotation: crate::release::eth::EthRotation,
    /// Hex of [`crate::release::eth::EthRotation::payload`], the bytes members sign.
    pub payload: String,
    /// The combined signature in the EIP-2537 form `FerryVault.rotate` takes (hex, 256 bytes).
    pub signature: Option<String>,
    /// The combined signature, compressed (hex, 96 bytes).
    pub signature_compressed: Option<String>,
}

/// The federation's heartbeat to the vault as the chain formed it, and once signed its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthereumHeartbeat {
    /// What the vault applies: chain id, vault, epoch, nonce (the batch id), height, root.
    pub heartbeat: crate::release::eth::EthHeartbeat,
    /// The combined signature in the EIP-2537 form `FerryVault.heartbeat` takes (hex, 256 bytes).
    pub signature: Option<String>,
    /// The combined signature, compressed (hex, 96 bytes).
    pub signature_compressed: Option<String>,
}

/// An Ethereum batch's payload and, once signed, the federation signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthereumRelease {
    /// The batch the vault pays: chain id, vault, epoch, nonce (the batch id) and items.
    pub batch: EthBatch,
    /// Hex of [`EthBatch::payload`], the bytes members sign.
    pub payload: String,
    /// The combined signature in the EIP-2537 form `FerryVault.release` takes (hex, 256 bytes).
    pub signature: Option<String>,
    /// The combined signature, compressed (hex, 96 bytes).
    pub signature_compressed: Option<String>,
}

/// A Bitcoin batch's unsigned release transaction: its newest version, and the earlier versions
/// it replaces.
///
/// A release unconfirmed `bitcoin_bump_after_blocks` parent blocks after it was signed is
/// replaced by the chain (BIP 125): version `k + 1` spends the same inputs, pays the same
/// destinations no more than version `k` did, and pays miners more. Every signed version stays
/// valid until one confirms — they share their inputs, so only one can — and the batch settles
/// with whichever it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitcoinRelease {
    /// Inputs (reserve UTXOs, locked by this batch until it settles), outputs, change and fee.
    pub plan: ReleasePlan,
    /// The unsigned transaction, consensus-encoded hex.
    pub unsigned_tx: String,
    /// Its txid (final: the witness is not part of it).
    pub txid: String,
    /// Hex BIP 143 sighash of each input, in input order: what members sign.
    pub sighashes: Vec<String>,
    /// The fee rate it was priced at: its fee is this rate × its size with the longest signatures
    /// (a replacement's shares may be capped by the withdrawals' budgets).
    pub fee_rate: FeeRate,
    /// The parent chain's height (the chain's [parent clock](ParentClock)) when the first
    /// version was signed: the release's confirmation delay is counted from here.
    pub signed_parent_height: Option<u64>,
    /// The version: 0 for the first, `k + 1` for the replacement of version `k`.
    #[serde(default)]
    pub version: u32,
    /// The parent clock when the newest signed version was signed: a replacement is due
    /// `bitcoin_bump_after_blocks` later.
    #[serde(default)]
    pub bump_parent_height: Option<u64>,
    /// Earlier versions, each fully signed, oldest first.
    #[serde(default)]
    pub superseded: Vec<SignedBitcoinVersion>,
    /// Why the chain could not replace it when a replacement was due (every budget spent, or the
    /// rate at its ceiling); cleared by the next replacement.
    #[serde(default)]
    pub bump_blocked: Option<String>,
    /// For a hand-over migration: the epoch whose peg its one output pays (every reserve UTXO
    /// spent moves there, less the fee). `None` for releases and consolidations.
    #[serde(default)]
    pub migration: Option<u64>,
    /// For a sweep: the retired epoch whose peg its inputs are at (deposits minted within that
    /// peg's grace); that epoch's federation signs it, and its one output pays the current peg.
    /// `None` otherwise.
    #[serde(default)]
    pub sweep: Option<u64>,
}

/// A member's vote to abort a batch it will not sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortVote {
    /// Why, in words (the signer's refusal).
    pub reason: String,
    /// The withdrawals it refuses to pay, if its refusal names them (a denylisted destination).
    pub items: Vec<WithdrawalId>,
    /// When the vote was cast.
    pub height: u64,
}

/// Why and when a batch was aborted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aborted {
    /// The height.
    pub height: u64,
    /// Why.
    pub reason: String,
    /// The withdrawals held (refused by enough members); the others were re-queued.
    pub held: Vec<WithdrawalId>,
}

impl BitcoinRelease {
    /// Whether it moves the reserves from one peg to another (a migration or a sweep): one
    /// output, to another federation's peg, no withdrawal.
    pub fn moves_reserves(&self) -> bool {
        self.migration.is_some() || self.sweep.is_some()
    }

    /// The first version (0) of the release of `plan`, priced at `rate`: its unsigned transaction,
    /// txid and sighashes for `peg`, not signed yet.
    ///
    /// # Errors
    /// When the sighashes cannot be computed (a plan that does not match its transaction).
    pub fn new(
        plan: ReleasePlan,
        rate: FeeRate,
        peg: &crate::peg::Peg,
    ) -> Result<BitcoinRelease, crate::release::bitcoin::BtcReleaseError> {
        let tx = crate::release::bitcoin::unsigned_transaction(&plan, peg);
        let hashes = crate::release::bitcoin::sighashes(&tx, &plan, peg)?;
        Ok(BitcoinRelease {
            unsigned_tx: bitcoin::consensus::encode::serialize_hex(&tx),
            txid: tx.compute_txid().to_string(),
            sighashes: hashes.iter().map(hex::encode).collect(),
            plan,
            fee_rate: rate,
            signed_parent_height: None,
            version: 0,
            bump_parent_height: None,
            superseded: Vec::new(),
            bump_blocked: None,
            migration: None,
            sweep: None,
        })
    }
}

/// An earlier, fully signed version of a Bitcoin release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBitcoinVersion {
    /// Its version number.
    pub version: u32,
    /// Its plan (the same inputs and change as every version of the release).
    pub plan: ReleasePlan,
    /// Its unsigned transaction, consensus-encoded hex.
    pub unsigned_tx: String,
    /// Its txid.
    pub txid: String,
    /// Its sighashes, in input order.
    pub sighashes: Vec<String>,
    /// Its fee rate.
    pub fee_rate: FeeRate,
    /// Each member's verified signatures, one per input.
    pub signatures: BTreeMap<Address, Vec<String>>,
}

/// A release batch: withdrawals of one asset, what the federation signs to pay them, and the
/// signatures and release attestations collected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The batch id (the Ethereum batch nonce), numbered from 1.
    pub id: u64,
    /// The wrapped denomination released.
    pub asset: Denom,
    /// Where it stands.
    pub status: BatchStatus,
    /// The withdrawals, in payload order.
    pub items: Vec<BatchItem>,
    /// The amount burned by its withdrawals, which reserves fall by when it settles.
    pub total: Amount,
    /// The height at whose end it formed.
    pub created_height: u64,
    /// When it reached its signing threshold.
    pub signed_height: Option<u64>,
    /// When its release settled.
    pub released_height: Option<u64>,
    /// What is signed.
    pub release: BatchRelease,
    /// Each member's verified signatures, hex: its one BLS share (Ethereum), or one DER
    /// signature per input (Bitcoin).
    pub signatures: BTreeMap<Address, Vec<String>>,
    /// Each member's (first) attestation of the release transaction.
    pub release_attestations: BTreeMap<Address, String>,
    /// The parent-chain height each attesting member saw the release transaction mined at.
    #[serde(default)]
    pub release_heights: BTreeMap<Address, u64>,
    /// Each member's (first) vote to abort the batch, while it is being signed.
    #[serde(default)]
    pub abort_votes: BTreeMap<Address, AbortVote>,
    /// Why and when it was aborted, if it was.
    #[serde(default)]
    pub aborted: Option<Aborted>,
    /// The release transaction, once a quorum attested it.
    pub release_tx: Option<String>,
}

impl Batch {
    /// The newest fully signed version of a Bitcoin release — the current one once it is signed,
    /// else the last it replaces — which is the one to broadcast; `None` for an Ethereum batch
    /// or a release not signed yet.
    pub fn signed_bitcoin_version(&self) -> Option<SignedBitcoinVersion> {
        let BatchRelease::Bitcoin(release) = &self.release else { return None };
        if self.status != BatchStatus::Signing {
            return Some(SignedBitcoinVersion {
                version: release.version,
                plan: release.plan.clone(),
                unsigned_tx: release.unsigned_tx.clone(),
                txid: release.txid.clone(),
                sighashes: release.sighashes.clone(),
                fee_rate: release.fee_rate,
                signatures: self.signatures.clone(),
            });
        }
        release.superseded.last().cloned()
    }

    /// Every version of a Bitcoin release, newest first, as (version, txid, plan); empty for an
    /// Ethereum batch.
    pub fn bitcoin_versions(&self) -> Vec<(u32, &str, &ReleasePlan)> {
        let BatchRelease::Bitcoin(release) = &self.release else { return Vec::new() };
        std::iter::once((release.version, release.txid.as_str(), &release.plan))
            .chain(release.superseded.iter().rev().map(|old| (old.version, old.txid.as_str(), &old.plan)))
            .collect()
    }
}

/// Answer to `/batch/<n>`: the batch and how far its signing is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchView {
    /// The record.
    #[serde(flatten)]
    pub batch: Batch,
    /// Members whose signatures are recorded.
    pub signature_count: u32,
    /// Signatures needed.
    pub threshold: u32,
    /// Release attestations needed to settle.
    pub release_quorum: u32,
    /// For a Bitcoin release: the exit disbursal (a batch id) its current version waits for —
    /// its signatures are refused until that is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaits_exit: Option<u64>,
}

/// Answer to `/batches/pending`: batches still signing or signed but not yet released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingBatchesView {
    /// At most [`PENDING_BATCHES_PAGE`] batches, oldest first.
    pub batches: Vec<BatchView>,
    /// How many batches are pending in all.
    pub pending: u64,
    /// When more follow: the id to continue after (`/batches/pending/<id>`).
    pub next_after: Option<u64>,
}

/// A member's vote to pause or resume the bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseVote {
    /// `true` to pause, `false` to resume.
    pub paused: bool,
    /// Why.
    pub reason: String,
    /// When it was cast.
    pub height: u64,
}

/// Answer to `/bridge`: whether the bridge is paused, why and since when, and the pause votes
/// cast since the last flip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeStatus {
    /// Paused: no mints, withdrawals, new batches or signature submissions.
    pub paused: bool,
    /// Why it last paused or resumed.
    pub reason: String,
    /// The height of the last flip (0: never flipped).
    pub since_height: u64,
    /// Each member's latest vote since the last flip.
    pub votes: BTreeMap<Address, PauseVote>,
}

/// Per-asset totals: wrapped supply, the parent-chain reserves backing it, and what was burned
/// but not yet paid out.
///
/// The reserves invariant (`ferry_app::reserves`):
/// `supply + unreleased + fee_pool + unattributed <= reserves`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetLedger {
    /// Wrapped tokens in existence.
    pub supply: Amount,
    /// Parent-chain funds the bridge controls for this asset.
    pub reserves: Amount,
    /// Burned by withdrawals whose release has not settled yet: still owed from the reserves.
    #[serde(default)]
    pub unreleased: Amount,
    /// Deposits below the asset's minimum: received by the bridge's address, never minted and
    /// never spent (not part of `reserves`). Counted so the parent chain's balance reconciles.
    #[serde(default)]
    pub below_minimum: Amount,
    /// Bitcoin: what deposits prepaid for their own spending, held in the reserves and owed to
    /// miners; consolidations are paid from it.
    #[serde(default)]
    pub fee_pool: Amount,
    /// Bitcoin: payments to the peg that name no account (no valid memo), held in the reserves
    /// until a member quorum credits or refunds each (`/unattributed`).
    #[serde(default)]
    pub unattributed: Amount,
}

/// A reserve UTXO of the Bitcoin peg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveUtxo {
    /// Txid (display order hex).
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Value in satoshi.
    pub amount: Amount,
    /// The unsettled batch whose release transaction spends it; no other batch may use it.
    #[serde(default)]
    pub locked_by: Option<u64>,
    /// The account whose deposit address it pays; `None` for the peg's own script (see
    /// [`crate::release::bitcoin::Utxo::owner`]).
    #[serde(default)]
    pub owner: Option<Address>,
    /// For a deposit to a retired federation's peg minted within its grace: that federation's
    /// epoch. Only a sweep signed by that federation spends it (into the current peg); `None`:
    /// the current federation's peg.
    #[serde(default)]
    pub retired_epoch: Option<u64>,
}

impl ReserveUtxo {
    /// The UTXO as release planning sees it.
    pub fn utxo(&self) -> crate::release::bitcoin::Utxo {
        crate::release::bitcoin::Utxo {
            txid: self.txid.clone(),
            vout: self.vout,
            amount: self.amount,
            owner: self.owner,
        }
    }
}

/// Answer to `/reserves`: every asset's ledger and the Bitcoin peg's reserve UTXOs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservesView {
    /// Per denomination: wrapped supply and reserves.
    pub assets: std::collections::BTreeMap<Denom, AssetLedger>,
    /// The peg's UTXOs.
    pub bitcoin_utxos: Vec<ReserveUtxo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawal_ids_round_trip_and_refuse_lookalikes() {
        let id: WithdrawalId = "wd-17".parse().unwrap_or(WithdrawalId(0));
        assert_eq!(id, WithdrawalId(17));
        assert_eq!(id.to_string(), "wd-17");
        for bad in ["wd-0", "wd-017", "wd-", "17", "wd-+1", "WD-1", "wd-1 "] {
            assert!(bad.parse::<WithdrawalId>().is_err(), "{bad} accepted");
        }
    }
}

/// The chain's view of a parent chain's height, from the members' relayers
/// (`MsgAttestParentHeight`): each member's highest report, and the highest height at least
/// `attest_quorum` members have reported — a height that fewer than a quorum of lying members
/// can neither raise nor hold back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentClock {
    /// Each member's highest reported height.
    pub reports: BTreeMap<Address, u64>,
    /// The height a quorum has reached (0 before one has).
    pub height: u64,
}

impl ParentClock {
    /// Records `member`'s report of `height` (a lower report than its last is ignored: parent
    /// chains reorganize, but the clock only counts blocks) and recomputes the quorum height.
    /// Returns whether the quorum height moved.
    pub fn report(&mut self, member: Address, height: u64, quorum: u32) -> bool {
        let entry = self.reports.entry(member).or_insert(0);
        *entry = (*entry).max(height);
        let mut heights: Vec<u64> = self.reports.values().copied().collect();
        heights.sort_unstable_by(|a, b| b.cmp(a));
        let index = usize::try_from(quorum).unwrap_or(usize::MAX).saturating_sub(1);
        let reached = heights.get(index).copied().unwrap_or(0).max(self.height);
        let moved = reached != self.height;
        self.height = reached;
        moved
    }
}

/// Answer to `/bitcoin/fees`: how Bitcoin releases are priced now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitcoinFeesView {
    /// The rate the next release is priced at.
    pub fee_rate: FeeRate,
    /// The floor (genesis).
    pub min_fee_rate: FeeRate,
    /// The ceiling (genesis).
    pub max_fee_rate: FeeRate,
    /// The confirmation delay the controller aims at, in parent blocks.
    pub target_confirm_blocks: u64,
    /// Bitcoin's height by the parent clock (0 before a quorum reported).
    pub parent_height: u64,
    /// Parent blocks the last settled release took from its signing to its block, if known.
    pub last_release_waited: Option<u64>,
}

/// What the ledger needs a parent chain to hold for one asset at a reserves round's parent
/// height: everything the bridge holds there on the books (`held`: reserves and deposits below
/// the minimum), less what releases on their way may already have paid (`in_flight`: the
/// unsettled batches of the asset, fees included).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeededReserves {
    /// Reserves plus deposits below the minimum, as the round opened.
    pub held: Amount,
    /// What unsettled releases of the asset pay at most (totals and, for Bitcoin, their fees).
    pub in_flight: Amount,
}

impl NeededReserves {
    /// The least the parent chain may hold without a shortfall.
    pub fn least(&self) -> Amount {
        self.held.checked_sub(self.in_flight).unwrap_or(Amount::ZERO)
    }
}

/// What a reserves round asks of one parent chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservesTarget {
    /// The parent height every member's snapshot is taken at: the chain's parent clock when the
    /// round opened, at or above every deposit minted by then.
    pub parent_height: u64,
    /// Per asset of the chain, what the ledger needs there.
    pub needed: BTreeMap<Denom, NeededReserves>,
    /// The members' snapshots so far.
    pub reports: BTreeMap<Address, BTreeMap<Denom, Amount>>,
    /// What each member's snapshot names gone (reserve outputs on Bitcoin, attested deposits on
    /// Ethereum; members naming none are absent).
    #[serde(default)]
    pub gone: BTreeMap<Address, Vec<crate::DepositId>>,
    /// Whether a quorum agreed on one snapshot (the round is done for this chain).
    pub checked: bool,
}

/// A reserves round: opened every `reserves_interval` blocks, answered by each member's relayer
/// with a snapshot of what its own parent-chain node holds for the bridge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservesRound {
    /// Round number (the opening height divided by the interval).
    pub number: u64,
    /// The sidechain height it opened at (the ledger figures are as of that block's end).
    pub opened_at: u64,
    /// What it asks of each parent chain that has a parent clock.
    pub chains: BTreeMap<crate::deposit::ParentChain, ReservesTarget>,
}

/// One asset's outcome of a reserves check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetCheck {
    /// What a quorum of members' nodes showed the bridge holding.
    pub holdings: Amount,
    /// The least the ledger needed ([`NeededReserves::least`]).
    pub least: Amount,
    /// How much less than `least` the parent chain held (zero when none).
    pub shortfall: Amount,
    /// How much more than the books' `held` it held (zero when none): coins sent to the bridge
    /// outside Ferry's flows, deposits not minted yet.
    pub excess: Amount,
}

/// The outcome of a parent chain's latest checked round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservesCheck {
    /// The round.
    pub round: u64,
    /// The sidechain height the quorum was reached at.
    pub checked_at: u64,
    /// The parent height of the snapshot.
    pub parent_height: u64,
    /// How many members' snapshots agreed.
    pub attesters: u32,
    /// Per asset.
    pub assets: BTreeMap<Denom, AssetCheck>,
    /// What every agreeing member's node no longer holds — reserve outputs on Bitcoin, attested
    /// deposits on Ethereum: the ids a parent-chain rewind or a theft took away.
    #[serde(default)]
    pub gone: Vec<crate::DepositId>,
}

impl ReservesCheck {
    /// Whether any asset fell short.
    pub fn short(&self) -> bool {
        self.assets.values().any(|asset| !asset.shortfall.is_zero())
    }
}

/// The `/reserves/check` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservesCheckView {
    /// Blocks between rounds.
    pub interval: u64,
    /// The open round, if one has opened.
    pub round: Option<ReservesRound>,
    /// Each parent chain's latest checked round.
    pub last: BTreeMap<crate::deposit::ParentChain, ReservesCheck>,
}
