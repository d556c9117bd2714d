//! Ferry's transaction messages and their protobuf wire forms.
//!
//! Messages travel as `google.protobuf.Any` inside a Cosmos SDK `TxBody`. Each message type has a
//! type URL under `/ferry.*`; the prost structs here are the wire format, and [`Msg`] is the
//! validated form the state machine executes.

use cosmrs::Any;
use prost::Message;

use crate::address::Address;
use crate::amount::{Amount, Coin};
use crate::denom::{Denom, ERC20_PREFIX, SAT};
use crate::deposit::{DepositFacts, ParentChain};
use crate::release::eth::EthAddress;

pub mod audit;
pub mod federation;

use audit::{MSG_ANCHOR_AUDIT_TYPE_URL, MsgAnchorAudit};

use federation::{
    MSG_DKG_COMPLAIN_TYPE_URL, MSG_DKG_CONFIRM_TYPE_URL, MSG_DKG_DEAL_TYPE_URL, MSG_HEARTBEAT_TYPE_URL,
    MSG_PROPOSE_FEDERATION_TYPE_URL, MSG_PROPOSE_PARAMS_TYPE_URL, MSG_REGISTER_SIGNER_KEYS_TYPE_URL, MsgDkgComplain,
    MsgDkgConfirm, MsgDkgDeal, MsgHeartbeat, MsgProposeFederation, MsgProposeParams, MsgRegisterSignerKeys,
};

/// Type URL of [`MsgSendProto`].
pub const MSG_SEND_TYPE_URL: &str = "/ferry.bank.v1.MsgSend";
/// Type URL of the Cosmos SDK's `MsgSend`, which stock wallets send: the same fields and tags as
/// [`MsgSendProto`], accepted as the same transfer.
pub const COSMOS_MSG_SEND_TYPE_URL: &str = "/cosmos.bank.v1beta1.MsgSend";
/// Type URL of [`MsgAttestDepositProto`].
pub const MSG_ATTEST_DEPOSIT_TYPE_URL: &str = "/ferry.bridge.v1.MsgAttestDeposit";
/// Type URL of [`MsgWithdrawProto`].
pub const MSG_WITHDRAW_TYPE_URL: &str = "/ferry.bridge.v1.MsgWithdraw";
/// Type URL of [`MsgSubmitSignaturesProto`].
pub const MSG_SUBMIT_SIGNATURES_TYPE_URL: &str = "/ferry.bridge.v1.MsgSubmitSignatures";
/// Type URL of [`MsgAttestReleaseProto`].
pub const MSG_ATTEST_RELEASE_TYPE_URL: &str = "/ferry.bridge.v1.MsgAttestRelease";
/// Type URL of [`MsgAttestParentHeightProto`].
pub const MSG_ATTEST_PARENT_HEIGHT_TYPE_URL: &str = "/ferry.bridge.v1.MsgAttestParentHeight";
/// Type URL of [`MsgAbortBatchProto`].
pub const MSG_ABORT_BATCH_TYPE_URL: &str = "/ferry.bridge.v1.MsgAbortBatch";
/// Type URL of [`MsgResolveHeldProto`].
pub const MSG_RESOLVE_HELD_TYPE_URL: &str = "/ferry.bridge.v1.MsgResolveHeld";
/// Type URL of [`MsgSetPausedProto`].
pub const MSG_SET_PAUSED_TYPE_URL: &str = "/ferry.bridge.v1.MsgSetPaused";
/// Type URL of [`MsgAttestReservesProto`].
pub const MSG_ATTEST_RESERVES_TYPE_URL: &str = "/ferry.bridge.v1.MsgAttestReserves";
/// Type URL of [`MsgProposeListingProto`].
pub const MSG_PROPOSE_LISTING_TYPE_URL: &str = "/ferry.bridge.v1.MsgProposeListing";
/// Type URL of [`MsgRegisterDepositAddressProto`].
pub const MSG_REGISTER_DEPOSIT_ADDRESS_TYPE_URL: &str = "/ferry.bridge.v1.MsgRegisterDepositAddress";
/// Type URL of [`MsgSetRecoveryAddressProto`].
pub const MSG_SET_RECOVERY_ADDRESS_TYPE_URL: &str = "/ferry.bridge.v1.MsgSetRecoveryAddress";
/// Type URL of [`MsgResolveUnattributedProto`].
pub const MSG_RESOLVE_UNATTRIBUTED_TYPE_URL: &str = "/ferry.bridge.v1.MsgResolveUnattributed";
/// Type URL of [`ChainBindingProto`].
pub const CHAIN_BINDING_TYPE_URL: &str = "/ferry.tx.v1.ChainBinding";

/// Wire form of `ferry.bank.v1.MsgSend`: move coins from the signer to another account.
#[derive(Clone, PartialEq, Message)]
pub struct MsgSendProto {
    /// Sender, bech32; must be the transaction's signer.
    #[prost(string, tag = "1")]
    pub from_address: String,
    /// Recipient, bech32.
    #[prost(string, tag = "2")]
    pub to_address: String,
    /// Coins to move; at least one, no zero amounts, no repeated denom.
    #[prost(message, repeated, tag = "3")]
    pub amount: Vec<cosmrs::proto::cosmos::base::v1beta1::Coin>,
}

/// Wire form of `ferry.bridge.v1.MsgAttestDeposit`: a federation member states that it saw a
/// deposit with the required confirmations.
#[derive(Clone, PartialEq, Message)]
pub struct MsgAttestDepositProto {
    /// The attesting member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub attester: String,
    /// `btc` or `eth`.
    #[prost(string, tag = "2")]
    pub chain: String,
    /// Bitcoin txid or Ethereum transaction hash.
    #[prost(string, tag = "3")]
    pub tx_id: String,
    /// Output index or log index.
    #[prost(uint32, tag = "4")]
    pub index: u32,
    /// Wrapped denomination to mint.
    #[prost(string, tag = "5")]
    pub asset: String,
    /// Amount in base units (decimal).
    #[prost(string, tag = "6")]
    pub amount: String,
    /// Recipient, bech32.
    #[prost(string, tag = "7")]
    pub recipient: String,
    /// Bitcoin: paid to the recipient's registered deposit address rather than to the peg with a
    /// memo (decides the script that spends the output).
    #[prost(bool, tag = "8")]
    pub deposit_address: bool,
    /// Bitcoin: why the payment names no account (`no_memo`, `several_memos`, `bad_memo`), when
    /// it does not; empty otherwise. The recipient is then the unattributed pool.
    #[prost(string, tag = "9")]
    pub unattributed: String,
    /// Bitcoin: the federation epoch whose peg (or deposit address) the output pays; absent:
    /// the federation current when the chain executes it.
    #[prost(uint64, optional, tag = "10")]
    pub peg_epoch: Option<u64>,
}

/// Wire form of `ferry.bridge.v1.MsgRegisterDepositAddress`: an account asks for its own Bitcoin
/// deposit address, which any wallet can pay without a memo. Fee-exempt (a new user has nothing
/// to pay with yet) and allowed from an account the chain does not know yet (it opens it);
/// registering again changes nothing.
#[derive(Clone, PartialEq, Message)]
pub struct MsgRegisterDepositAddressProto {
    /// The account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub account: String,
}

/// Wire form of `ferry.bridge.v1.MsgSetRecoveryAddress`: where the Bitcoin exit disbursal pays
/// the signer's wrapped BTC should the federation stop signing (issue 17), instead of the P2WPKH
/// address of its own key. An empty address goes back to that default.
#[derive(Clone, PartialEq, Message)]
pub struct MsgSetRecoveryAddressProto {
    /// The account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub account: String,
    /// The wrapped asset whose exit pays there (`sat`).
    #[prost(string, tag = "2")]
    pub asset: String,
    /// The address on the asset's parent chain; empty for the default.
    #[prost(string, tag = "3")]
    pub address: String,
}

/// Wire form of `ferry.bridge.v1.MsgWithdraw`: burn wrapped tokens and have the federation pay
/// them out on their parent chain.
#[derive(Clone, PartialEq, Message)]
pub struct MsgWithdrawProto {
    /// The account burning, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub sender: String,
    /// Wrapped denomination to burn.
    #[prost(string, tag = "2")]
    pub asset: String,
    /// Amount in base units (decimal).
    #[prost(string, tag = "3")]
    pub amount: String,
    /// Where to pay on the parent chain: a Bitcoin address for `sat`, an EIP-55 Ethereum
    /// address for `wei` and ERC-20 denominations.
    #[prost(string, tag = "4")]
    pub destination: String,
    /// Bitcoin: the largest share of the release's miner fee the sender accepts, in satoshi
    /// (decimal; required). Ethereum: empty.
    #[prost(string, tag = "5")]
    pub max_fee: String,
}

/// Wire form of `ferry.bridge.v1.MsgSubmitSignatures`: a federation member's signatures for a
/// release batch.
#[derive(Clone, PartialEq, Message)]
pub struct MsgSubmitSignaturesProto {
    /// The signing member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub signer: String,
    /// The batch id.
    #[prost(uint64, tag = "2")]
    pub batch: u64,
    /// Ethereum batches: the member's BLS signature share over the batch payload (empty for Bitcoin).
    #[prost(bytes = "vec", tag = "3")]
    pub bls_share: Vec<u8>,
    /// Bitcoin batches: one DER signature (without sighash byte) per input, in input order
    /// (empty for Ethereum).
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub btc_signatures: Vec<Vec<u8>>,
}

/// Wire form of `ferry.bridge.v1.MsgAttestRelease`: a federation member states that a batch's
/// release transaction is confirmed on its parent chain.
#[derive(Clone, PartialEq, Message)]
pub struct MsgAttestReleaseProto {
    /// The attesting member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub attester: String,
    /// The batch id.
    #[prost(uint64, tag = "2")]
    pub batch: u64,
    /// The release transaction: Bitcoin txid (64 lowercase hex) or Ethereum transaction hash (`0x` + 64).
    #[prost(string, tag = "3")]
    pub parent_tx: String,
    /// The height of the parent block holding it.
    #[prost(uint64, tag = "4")]
    pub parent_height: u64,
}

/// Wire form of `ferry.bridge.v1.MsgAttestParentHeight`: a federation member's relayer reports
/// the height of a parent chain's best block (the chain's parent clock).
#[derive(Clone, PartialEq, Message)]
pub struct MsgAttestParentHeightProto {
    /// The reporting member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub attester: String,
    /// `btc` or `eth` (each parent chain has its own clock).
    #[prost(string, tag = "2")]
    pub chain: String,
    /// The best block's height.
    #[prost(uint64, tag = "3")]
    pub height: u64,
}

/// Wire form of `ferry.bridge.v1.MsgAttestReserves`: a federation member's relayer states what
/// its own parent-chain node holds for the bridge at the height a reserves round asked for.
#[derive(Clone, PartialEq, Message)]
pub struct MsgAttestReservesProto {
    /// The reporting member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub attester: String,
    /// The reserves round answered (`/reserves/check`).
    #[prost(uint64, tag = "2")]
    pub round: u64,
    /// `btc` or `eth`.
    #[prost(string, tag = "3")]
    pub chain: String,
    /// The parent height of the snapshot (the round's target for the chain).
    #[prost(uint64, tag = "4")]
    pub parent_height: u64,
    /// What the bridge holds there, one coin per asset of the chain (zero amounts allowed).
    #[prost(message, repeated, tag = "5")]
    pub holdings: Vec<cosmrs::proto::cosmos::base::v1beta1::Coin>,
    /// What the member's node no longer holds, by id, ascending, at most [`MAX_GONE_OUTPUTS`]:
    /// on Bitcoin the reserve outputs the chain counted (free at the round's opening) that are
    /// not unspent at the snapshot height (`btc:<txid>:<vout>`); on Ethereum, after the node lost
    /// blocks, the deposits the member attested whose transactions are in no block at or below it.
    #[prost(string, repeated, tag = "6")]
    pub gone: Vec<String>,
}

/// The most gone reserve outputs one reserves snapshot names (the first, in id order).
pub const MAX_GONE_OUTPUTS: usize = 50;

/// Wire form of `ferry.bridge.v1.MsgAbortBatch`: a federation member's vote to abort a batch it
/// will not sign.
#[derive(Clone, PartialEq, Message)]
pub struct MsgAbortBatchProto {
    /// The voting member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub member: String,
    /// The batch id.
    #[prost(uint64, tag = "2")]
    pub batch: u64,
    /// Why (its signer's refusal; at most [`MAX_REASON_BYTES`] bytes).
    #[prost(string, tag = "3")]
    pub reason: String,
    /// The withdrawals (numbers `n` of `wd-n`) it refuses to pay, if the refusal names them.
    #[prost(uint64, repeated, tag = "4")]
    pub items: Vec<u64>,
}

/// Wire form of `ferry.bridge.v1.MsgResolveHeld`: a federation member's vote to refund a held
/// withdrawal to its sender's sidechain balance.
#[derive(Clone, PartialEq, Message)]
pub struct MsgResolveHeldProto {
    /// The voting member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub member: String,
    /// The withdrawal number (`n` of `wd-n`).
    #[prost(uint64, tag = "2")]
    pub withdrawal: u64,
}

/// Wire form of `ferry.bridge.v1.MsgResolveUnattributed`: a federation member's vote on what to do
/// with an unattributed payment to the peg: credit it to an account, or refund it to a Bitcoin
/// address in the next batch (paying its own miner fee, at most `max_fee`).
#[derive(Clone, PartialEq, Message)]
pub struct MsgResolveUnattributedProto {
    /// The voting member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub member: String,
    /// The payment's deposit id, `btc:<txid>:<vout>`.
    #[prost(string, tag = "2")]
    pub deposit_id: String,
    /// Credit: the account, bech32 (empty for a refund).
    #[prost(string, tag = "3")]
    pub credit_to: String,
    /// Refund: the Bitcoin address (empty for a credit).
    #[prost(string, tag = "4")]
    pub refund_to: String,
    /// Refund: the largest miner fee share it may pay, in satoshi (decimal).
    #[prost(string, tag = "5")]
    pub max_fee: String,
}

/// Wire form of `ferry.bridge.v1.MsgSetPaused`: a federation member's vote to pause or resume
/// the bridge.
#[derive(Clone, PartialEq, Message)]
pub struct MsgSetPausedProto {
    /// The voting member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub member: String,
    /// `true` to pause, `false` to resume.
    #[prost(bool, tag = "2")]
    pub paused: bool,
    /// Why, in words (at most [`MAX_REASON_BYTES`] bytes).
    #[prost(string, tag = "3")]
    pub reason: String,
}

/// Wire form of `ferry.bridge.v1.MsgProposeListing`: a federation member's proposal to list an
/// ERC-20 token in the vault (with the withdrawal limits the chain adopts for it) or to unlist
/// it. Identical proposals of `attest_quorum` members become a listing batch the federation
/// signs and relayers deliver to the vault.
#[derive(Clone, PartialEq, Message)]
pub struct MsgProposeListingProto {
    /// The proposing member's account, bech32; must be the signer.
    #[prost(string, tag = "1")]
    pub member: String,
    /// The token contract, `0x` + 40 hex digits.
    #[prost(string, tag = "2")]
    pub token: String,
    /// `true` to list, `false` to unlist.
    #[prost(bool, tag = "3")]
    pub listed: bool,
    /// Listing only: the most batched for release per outflow window (decimal base units).
    #[prost(string, tag = "4")]
    pub window_cap: String,
    /// Listing only: withdrawals above this wait the delay (decimal base units).
    #[prost(string, tag = "5")]
    pub delay_above: String,
    /// Listing only: the smallest withdrawal accepted (decimal base units).
    #[prost(string, tag = "6")]
    pub min_amount: String,
}

/// Longest destination accepted, in bytes (a bech32 address is at most 90 characters).
pub const MAX_DESTINATION_BYTES: usize = 100;
/// Longest pause reason accepted, in bytes.
pub const MAX_REASON_BYTES: usize = 256;

/// Wire form of `ferry.tx.v1.ChainBinding`, a non-critical `TxBody` extension that states the
/// chain id the transaction was signed for. The chain id is also bound by the sign doc; stating it
/// in the body lets the chain tell "wrong chain" apart from "bad signature".
#[derive(Clone, PartialEq, Message)]
pub struct ChainBindingProto {
    /// The chain id the signer intended.
    #[prost(string, tag = "1")]
    pub chain_id: String,
}

/// A validated bank transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgSend {
    /// Sender (the signer).
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// Non-empty, non-zero, one coin per denom.
    pub amount: Vec<Coin>,
}

/// A validated deposit attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgAttestDeposit {
    /// The attesting member (the signer).
    pub attester: Address,
    /// What it observed.
    pub facts: DepositFacts,
}

/// A validated withdrawal request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgWithdraw {
    /// The account burning (the signer).
    pub sender: Address,
    /// The wrapped denomination burned.
    pub asset: Denom,
    /// How much is burned (non-zero).
    pub amount: Amount,
    /// The destination, syntactically valid for the asset's parent chain (an Ethereum address
    /// in EIP-55 form; a Bitcoin address whose network is checked against the peg's at execution).
    pub destination: String,
    /// Bitcoin: the largest share of the release's miner fee accepted (positive). Ethereum: zero.
    pub max_fee: Amount,
}

/// A member's signatures for one batch, by the batch's parent chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseSignatures {
    /// An Ethereum batch: the member's BLS signature share (threshold_crypto's encoding).
    Bls(Vec<u8>),
    /// A Bitcoin batch: one DER signature per input, in input order.
    Bitcoin(Vec<Vec<u8>>),
}

/// A validated signature submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgSubmitSignatures {
    /// The signing member (the signer).
    pub signer: Address,
    /// The batch id.
    pub batch: u64,
    /// The signatures.
    pub signatures: ReleaseSignatures,
}

/// A validated release attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgAttestRelease {
    /// The attesting member (the signer).
    pub attester: Address,
    /// The batch id.
    pub batch: u64,
    /// The release transaction on the parent chain (lowercase; `0x`-prefixed on Ethereum).
    pub parent_tx: String,
    /// The height of the parent block holding it.
    pub parent_height: u64,
}

/// A validated parent-height report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgAttestParentHeight {
    /// The reporting member (the signer).
    pub attester: Address,
    /// The parent chain.
    pub chain: ParentChain,
    /// Its best block's height.
    pub height: u64,
}

/// A validated reserves snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgAttestReserves {
    /// The reporting member (the signer).
    pub attester: Address,
    /// The reserves round answered.
    pub round: u64,
    /// The parent chain.
    pub chain: ParentChain,
    /// The snapshot's parent height.
    pub parent_height: u64,
    /// What the bridge holds there per asset of `chain`.
    pub holdings: std::collections::BTreeMap<Denom, Amount>,
    /// Reserve outputs (Bitcoin) or attested deposits (Ethereum) the member's node no longer
    /// holds (see [`MsgAttestReservesProto::gone`]).
    pub gone: Vec<crate::DepositId>,
}

/// A validated abort vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgAbortBatch {
    /// The voting member (the signer).
    pub member: Address,
    /// The batch id.
    pub batch: u64,
    /// Why.
    pub reason: String,
    /// The withdrawals it refuses to pay (may be empty).
    pub items: Vec<crate::query::WithdrawalId>,
}

/// A validated refund vote for a held withdrawal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgResolveHeld {
    /// The voting member (the signer).
    pub member: Address,
    /// The held withdrawal.
    pub withdrawal: crate::query::WithdrawalId,
}

/// What a member votes to do with an unattributed payment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Mint it to this account (less what it prepays for its own spending, as a deposit).
    Credit {
        /// The account.
        account: Address,
    },
    /// Pay it back to this address of its parent chain in the next batch. Bitcoin: its share of
    /// the miner fee, at most `max_fee`, comes out of it; Ethereum: `max_fee` is zero (the
    /// relayer pays the gas).
    Refund {
        /// The Bitcoin address.
        destination: String,
        /// The largest fee share it may pay, in satoshi.
        max_fee: Amount,
    },
}

/// A validated vote on an unattributed payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgResolveUnattributed {
    /// The voting member (the signer).
    pub member: Address,
    /// The payment.
    pub deposit: crate::deposit::DepositId,
    /// What to do with it.
    pub resolution: Resolution,
}

impl MsgResolveUnattributed {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_RESOLVE_UNATTRIBUTED_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed member, deposit id (or one not on Bitcoin), account, address or fee; both or
    /// neither of `credit_to` and `refund_to`; a fee with a credit.
    pub fn from_proto(proto: &MsgResolveUnattributedProto) -> Result<MsgResolveUnattributed, MsgError> {
        let member = proto.member.parse().map_err(|e| Self::field_error("member", e))?;
        let deposit: crate::deposit::DepositId =
            proto.deposit_id.parse().map_err(|e| Self::field_error("deposit_id", e))?;
        let resolution = match (proto.credit_to.as_str(), proto.refund_to.as_str()) {
            (account, "") if !account.is_empty() => {
                if !proto.max_fee.is_empty() {
                    return Err(Self::field_error("max_fee", "a credit pays no miner fee"));
                }
                Resolution::Credit { account: account.parse().map_err(|e| Self::field_error("credit_to", e))? }
            }
            ("", destination) if !destination.is_empty() => {
                // The payment's parent chain decides the address's form: checked at execution.
                if destination.len() > MAX_DESTINATION_BYTES {
                    let reason = format!("is {} bytes, at most {MAX_DESTINATION_BYTES}", destination.len());
                    return Err(Self::field_error("refund_to", reason));
                }
                let max_fee: Amount = match proto.max_fee.as_str() {
                    "" => Amount::ZERO,
                    text => text.parse().map_err(|e| Self::field_error("max_fee", e))?,
                };
                Resolution::Refund { destination: destination.to_owned(), max_fee }
            }
            _ => return Err(Self::field_error("credit_to", "give exactly one of credit_to and refund_to")),
        };
        Ok(MsgResolveUnattributed { member, deposit, resolution })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgResolveUnattributedProto {
        let (credit_to, refund_to, max_fee) = match &self.resolution {
            Resolution::Credit { account } => (account.to_string(), String::new(), String::new()),
            Resolution::Refund { destination, max_fee } => (String::new(), destination.clone(), max_fee.to_string()),
        };
        MsgResolveUnattributedProto {
            member: self.member.to_string(),
            deposit_id: self.deposit.to_string(),
            credit_to,
            refund_to,
            max_fee,
        }
    }
}

/// A validated listing proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgProposeListing {
    /// The proposing member (the signer).
    pub member: Address,
    /// The ERC-20 token.
    pub token: EthAddress,
    /// Listing: the withdrawal limits adopted for the token (its denomination is the token's).
    /// Unlisting: `None`.
    pub limit: Option<crate::genesis::AssetLimit>,
}

impl MsgProposeListing {
    /// Whether this proposes to list (rather than unlist) the token.
    pub fn lists(&self) -> bool {
        self.limit.is_some()
    }
}

/// A validated pause vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgSetPaused {
    /// The voting member (the signer).
    pub member: Address,
    /// `true` to pause, `false` to resume.
    pub paused: bool,
    /// Why.
    pub reason: String,
}

/// A validated deposit address registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgRegisterDepositAddress {
    /// The account (the signer).
    pub account: Address,
}

impl MsgRegisterDepositAddress {
    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed account.
    pub fn from_proto(proto: &MsgRegisterDepositAddressProto) -> Result<MsgRegisterDepositAddress, MsgError> {
        let account = proto.account.parse().map_err(|e: crate::address::AddressError| MsgError::Field {
            type_url: MSG_REGISTER_DEPOSIT_ADDRESS_TYPE_URL,
            field: "account",
            reason: e.to_string(),
        })?;
        Ok(MsgRegisterDepositAddress { account })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgRegisterDepositAddressProto {
        MsgRegisterDepositAddressProto { account: self.account.to_string() }
    }
}

/// A validated recovery address registration. The address's network is checked against the
/// peg's at execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgSetRecoveryAddress {
    /// The account (the signer).
    pub account: Address,
    /// The wrapped asset whose exit pays there: `sat` (an Ethereum exit pays where its holder
    /// says when it exits, so it needs no registration).
    pub asset: Denom,
    /// The Bitcoin address; `None` for the default (P2WPKH of the account's own key).
    pub address: Option<String>,
}

impl MsgSetRecoveryAddress {
    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed account, an asset other than `sat`, or an address with spaces or too long.
    pub fn from_proto(proto: &MsgSetRecoveryAddressProto) -> Result<MsgSetRecoveryAddress, MsgError> {
        let field = |field: &'static str, reason: String| MsgError::Field {
            type_url: MSG_SET_RECOVERY_ADDRESS_TYPE_URL,
            field,
            reason,
        };
        let account =
            proto.account.parse().map_err(|e: crate::address::AddressError| field("account", e.to_string()))?;
        let asset: Denom = proto.asset.parse().map_err(|e: crate::denom::DenomError| field("asset", e.to_string()))?;
        if asset != Denom::sat() {
            return Err(field(
                "asset",
                format!("only `sat` has a pre-signed exit; `{asset}` exits pay where the holder says when it exits"),
            ));
        }
        let address = match proto.address.as_str() {
            "" => None,
            text if text.len() > 100 || text.chars().any(char::is_whitespace) => {
                return Err(field("address", format!("`{text}` is not a Bitcoin address")));
            }
            text => Some(text.to_owned()),
        };
        Ok(MsgSetRecoveryAddress { account, asset, address })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgSetRecoveryAddressProto {
        MsgSetRecoveryAddressProto {
            account: self.account.to_string(),
            asset: self.asset.to_string(),
            address: self.address.clone().unwrap_or_default(),
        }
    }
}

/// A validated message the state machine can execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// `/ferry.bank.v1.MsgSend`.
    Send(MsgSend),
    /// `/ferry.bridge.v1.MsgAttestDeposit`.
    AttestDeposit(MsgAttestDeposit),
    /// `/ferry.bridge.v1.MsgWithdraw`.
    Withdraw(MsgWithdraw),
    /// `/ferry.bridge.v1.MsgSubmitSignatures`.
    SubmitSignatures(MsgSubmitSignatures),
    /// `/ferry.bridge.v1.MsgAttestRelease`.
    AttestRelease(MsgAttestRelease),
    /// `/ferry.bridge.v1.MsgAttestParentHeight`.
    AttestParentHeight(MsgAttestParentHeight),
    /// `/ferry.bridge.v1.MsgAbortBatch`.
    AbortBatch(MsgAbortBatch),
    /// `/ferry.bridge.v1.MsgResolveHeld`.
    ResolveHeld(MsgResolveHeld),
    /// `/ferry.bridge.v1.MsgSetPaused`.
    SetPaused(MsgSetPaused),
    /// `/ferry.bridge.v1.MsgProposeListing`.
    ProposeListing(MsgProposeListing),
    /// `/ferry.bridge.v1.MsgAttestReserves`.
    AttestReserves(MsgAttestReserves),
    /// `/ferry.bridge.v1.MsgRegisterDepositAddress`.
    RegisterDepositAddress(MsgRegisterDepositAddress),
    /// `/ferry.bridge.v1.MsgSetRecoveryAddress`.
    SetRecoveryAddress(MsgSetRecoveryAddress),
    /// `/ferry.bridge.v1.MsgResolveUnattributed`.
    ResolveUnattributed(MsgResolveUnattributed),
    /// `/ferry.federation.v1.MsgRegisterSignerKeys`.
    RegisterSignerKeys(MsgRegisterSignerKeys),
    /// `/ferry.federation.v1.MsgProposeFederation`.
    ProposeFederation(MsgProposeFederation),
    /// `/ferry.federation.v1.MsgDkgDeal`.
    DkgDeal(MsgDkgDeal),
    /// `/ferry.federation.v1.MsgDkgComplain`.
    DkgComplain(MsgDkgComplain),
    /// `/ferry.federation.v1.MsgDkgConfirm`.
    DkgConfirm(MsgDkgConfirm),
    /// `/ferry.federation.v1.MsgHeartbeat`.
    Heartbeat(MsgHeartbeat),
    /// `/ferry.federation.v1.MsgProposeParams`.
    ProposeParams(MsgProposeParams),
    /// `/ferry.audit.v1.MsgAnchorAudit`.
    AnchorAudit(MsgAnchorAudit),
}

/// Why a message was refused before execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// The type URL is not a Ferry message.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// The message bytes do not decode.
    #[error("message `{type_url}` does not decode: {reason}")]
    Decode {
        /// The message type.
        type_url: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// A field is invalid.
    #[error("message `{type_url}` field `{field}`: {reason}")]
    Field {
        /// The message type.
        type_url: &'static str,
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Msg {
    /// Decodes and validates a message from its `Any` wrapper.
    ///
    /// # Errors
    /// When the type is unknown, the bytes do not decode, or a field is invalid.
    pub fn from_any(any: &Any) -> Result<Msg, MsgError> {
        match any.type_url.as_str() {
            MSG_SEND_TYPE_URL | COSMOS_MSG_SEND_TYPE_URL => MsgSend::from_proto(&decode(any)?).map(Msg::Send),
            MSG_ATTEST_DEPOSIT_TYPE_URL => MsgAttestDeposit::from_proto(&decode(any)?).map(Msg::AttestDeposit),
            MSG_WITHDRAW_TYPE_URL => MsgWithdraw::from_proto(&decode(any)?).map(Msg::Withdraw),
            MSG_SUBMIT_SIGNATURES_TYPE_URL => MsgSubmitSignatures::from_proto(&decode(any)?).map(Msg::SubmitSignatures),
            MSG_ATTEST_RELEASE_TYPE_URL => MsgAttestRelease::from_proto(&decode(any)?).map(Msg::AttestRelease),
            MSG_ATTEST_PARENT_HEIGHT_TYPE_URL => {
                MsgAttestParentHeight::from_proto(&decode(any)?).map(Msg::AttestParentHeight)
            }
            MSG_ABORT_BATCH_TYPE_URL => MsgAbortBatch::from_proto(&decode(any)?).map(Msg::AbortBatch),
            MSG_RESOLVE_HELD_TYPE_URL => MsgResolveHeld::from_proto(&decode(any)?).map(Msg::ResolveHeld),
            MSG_SET_PAUSED_TYPE_URL => MsgSetPaused::from_proto(&decode(any)?).map(Msg::SetPaused),
            MSG_ATTEST_RESERVES_TYPE_URL => MsgAttestReserves::from_proto(&decode(any)?).map(Msg::AttestReserves),
            MSG_PROPOSE_LISTING_TYPE_URL => MsgProposeListing::from_proto(&decode(any)?).map(Msg::ProposeListing),
            MSG_REGISTER_DEPOSIT_ADDRESS_TYPE_URL => {
                MsgRegisterDepositAddress::from_proto(&decode(any)?).map(Msg::RegisterDepositAddress)
            }
            MSG_SET_RECOVERY_ADDRESS_TYPE_URL => {
                MsgSetRecoveryAddress::from_proto(&decode(any)?).map(Msg::SetRecoveryAddress)
            }
            MSG_RESOLVE_UNATTRIBUTED_TYPE_URL => {
                MsgResolveUnattributed::from_proto(&decode(any)?).map(Msg::ResolveUnattributed)
            }
            MSG_REGISTER_SIGNER_KEYS_TYPE_URL => {
                MsgRegisterSignerKeys::from_proto(&decode(any)?).map(Msg::RegisterSignerKeys)
            }
            MSG_PROPOSE_FEDERATION_TYPE_URL => {
                MsgProposeFederation::from_proto(&decode(any)?).map(Msg::ProposeFederation)
            }
            MSG_DKG_DEAL_TYPE_URL => MsgDkgDeal::from_proto(&decode(any)?).map(Msg::DkgDeal),
            MSG_DKG_COMPLAIN_TYPE_URL => MsgDkgComplain::from_proto(&decode(any)?).map(Msg::DkgComplain),
            MSG_DKG_CONFIRM_TYPE_URL => MsgDkgConfirm::from_proto(&decode(any)?).map(Msg::DkgConfirm),
            MSG_HEARTBEAT_TYPE_URL => MsgHeartbeat::from_proto(&decode(any)?).map(Msg::Heartbeat),
            MSG_PROPOSE_PARAMS_TYPE_URL => MsgProposeParams::from_proto(&decode(any)?).map(Msg::ProposeParams),
            MSG_ANCHOR_AUDIT_TYPE_URL => MsgAnchorAudit::from_proto(&decode(any)?).map(Msg::AnchorAudit),
            other => Err(MsgError::UnknownType(other.to_owned())),
        }
    }

    /// Encodes the message as an `Any`.
    pub fn to_any(&self) -> Any {
        match self {
            Msg::Send(send) => Any { type_url: MSG_SEND_TYPE_URL.to_owned(), value: send.to_proto().encode_to_vec() },
            Msg::AttestDeposit(attest) => any(MSG_ATTEST_DEPOSIT_TYPE_URL, &attest.to_proto()),
            Msg::Withdraw(withdraw) => any(MSG_WITHDRAW_TYPE_URL, &withdraw.to_proto()),
            Msg::SubmitSignatures(submit) => any(MSG_SUBMIT_SIGNATURES_TYPE_URL, &submit.to_proto()),
            Msg::AttestRelease(attest) => any(MSG_ATTEST_RELEASE_TYPE_URL, &attest.to_proto()),
            Msg::AttestParentHeight(report) => any(MSG_ATTEST_PARENT_HEIGHT_TYPE_URL, &report.to_proto()),
            Msg::AbortBatch(vote) => any(MSG_ABORT_BATCH_TYPE_URL, &vote.to_proto()),
            Msg::ResolveHeld(vote) => any(MSG_RESOLVE_HELD_TYPE_URL, &vote.to_proto()),
            Msg::SetPaused(vote) => any(MSG_SET_PAUSED_TYPE_URL, &vote.to_proto()),
            Msg::AttestReserves(snapshot) => any(MSG_ATTEST_RESERVES_TYPE_URL, &snapshot.to_proto()),
            Msg::ProposeListing(proposal) => any(MSG_PROPOSE_LISTING_TYPE_URL, &proposal.to_proto()),
            Msg::RegisterDepositAddress(register) => any(MSG_REGISTER_DEPOSIT_ADDRESS_TYPE_URL, &register.to_proto()),
            Msg::SetRecoveryAddress(set) => any(MSG_SET_RECOVERY_ADDRESS_TYPE_URL, &set.to_proto()),
            Msg::ResolveUnattributed(vote) => any(MSG_RESOLVE_UNATTRIBUTED_TYPE_URL, &vote.to_proto()),
            Msg::RegisterSignerKeys(register) => any(MSG_REGISTER_SIGNER_KEYS_TYPE_URL, &register.to_proto()),
            Msg::ProposeFederation(proposal) => any(MSG_PROPOSE_FEDERATION_TYPE_URL, &proposal.to_proto()),
            Msg::DkgDeal(deal) => any(MSG_DKG_DEAL_TYPE_URL, &deal.to_proto()),
            Msg::DkgComplain(complaint) => any(MSG_DKG_COMPLAIN_TYPE_URL, &complaint.to_proto()),
            Msg::DkgConfirm(confirm) => any(MSG_DKG_CONFIRM_TYPE_URL, &confirm.to_proto()),
            Msg::Heartbeat(heartbeat) => any(MSG_HEARTBEAT_TYPE_URL, &heartbeat.to_proto()),
            Msg::ProposeParams(proposal) => any(MSG_PROPOSE_PARAMS_TYPE_URL, &proposal.to_proto()),
            Msg::AnchorAudit(anchor) => any(MSG_ANCHOR_AUDIT_TYPE_URL, &anchor.to_proto()),
        }
    }

    /// The account that must sign this message.
    pub fn signer(&self) -> Address {
        match self {
            Msg::Send(send) => send.from,
            Msg::AttestDeposit(attest) => attest.attester,
            Msg::Withdraw(withdraw) => withdraw.sender,
            Msg::SubmitSignatures(submit) => submit.signer,
            Msg::AttestRelease(attest) => attest.attester,
            Msg::AttestParentHeight(report) => report.attester,
            Msg::AbortBatch(vote) => vote.member,
            Msg::ResolveHeld(vote) => vote.member,
            Msg::SetPaused(vote) => vote.member,
            Msg::AttestReserves(snapshot) => snapshot.attester,
            Msg::ProposeListing(proposal) => proposal.member,
            Msg::RegisterDepositAddress(register) => register.account,
            Msg::SetRecoveryAddress(set) => set.account,
            Msg::ResolveUnattributed(vote) => vote.member,
            Msg::RegisterSignerKeys(register) => register.account,
            Msg::ProposeFederation(proposal) => proposal.member,
            Msg::DkgDeal(deal) => deal.participant,
            Msg::DkgComplain(complaint) => complaint.participant,
            Msg::DkgConfirm(confirm) => confirm.participant,
            Msg::Heartbeat(heartbeat) => heartbeat.member,
            Msg::ProposeParams(proposal) => proposal.member,
            Msg::AnchorAudit(anchor) => anchor.member,
        }
    }

    /// Denominations this message moves out of the signer's account (a fee must be paid in one
    /// of them).
    pub fn denoms(&self) -> Vec<&crate::Denom> {
        match self {
            Msg::Send(send) => send.amount.iter().map(|coin| &coin.denom).collect(),
            Msg::Withdraw(withdraw) => vec![&withdraw.asset],
            // Paid for in the asset whose exit it directs (the holder holds some).
            Msg::SetRecoveryAddress(set) => vec![&set.asset],
            Msg::AttestDeposit(_)
            | Msg::SubmitSignatures(_)
            | Msg::AttestRelease(_)
            | Msg::AttestParentHeight(_)
            | Msg::AbortBatch(_)
            | Msg::ResolveHeld(_)
            | Msg::SetPaused(_)
            | Msg::ProposeListing(_)
            | Msg::AttestReserves(_)
            | Msg::RegisterDepositAddress(_)
            | Msg::ResolveUnattributed(_)
            | Msg::RegisterSignerKeys(_)
            | Msg::ProposeFederation(_)
            | Msg::DkgDeal(_)
            | Msg::DkgComplain(_)
            | Msg::DkgConfirm(_)
            | Msg::Heartbeat(_)
            | Msg::ProposeParams(_)
            | Msg::AnchorAudit(_) => Vec::new(),
        }
    }

    /// Whether this is a federation duty: fee-exempt, and accepted only from federation members.
    pub fn is_federation_duty(&self) -> bool {
        match self {
            Msg::AttestDeposit(_)
            | Msg::SubmitSignatures(_)
            | Msg::AttestRelease(_)
            | Msg::AttestParentHeight(_)
            | Msg::AbortBatch(_)
            | Msg::ResolveHeld(_)
            | Msg::SetPaused(_)
            | Msg::ProposeListing(_)
            | Msg::AttestReserves(_)
            | Msg::ResolveUnattributed(_)
            | Msg::ProposeFederation(_)
            | Msg::Heartbeat(_)
            | Msg::ProposeParams(_)
            | Msg::AnchorAudit(_) => true,
            Msg::Send(_)
            | Msg::Withdraw(_)
            | Msg::SetRecoveryAddress(_)
            | Msg::RegisterDepositAddress(_)
            | Msg::RegisterSignerKeys(_)
            | Msg::DkgDeal(_)
            | Msg::DkgComplain(_)
            | Msg::DkgConfirm(_) => false,
        }
    }

    /// Whether this is a step of a key generation: fee-exempt, accepted only from a participant
    /// of the running DKG (who need not be a member yet), like a federation duty.
    pub fn is_dkg_step(&self) -> bool {
        matches!(self, Msg::DkgDeal(_) | Msg::DkgComplain(_) | Msg::DkgConfirm(_))
    }

    /// Whether this is a duty (a federation duty or a key generation step): fee-exempt, counted
    /// against the sender's per-block duty limit, and given the duty share of each block.
    pub fn is_duty(&self) -> bool {
        self.is_federation_duty() || self.is_dkg_step()
    }

    /// Whether this message is fee-exempt without being a federation duty, and may come from an
    /// account the chain does not know yet (which it then opens): a deposit address registration,
    /// the first thing a new user does, before it holds anything to pay a fee with.
    pub fn opens_account(&self) -> bool {
        matches!(self, Msg::RegisterDepositAddress(_) | Msg::RegisterSignerKeys(_))
    }
}

fn decode<T: Message + Default>(any: &Any) -> Result<T, MsgError> {
    T::decode(any.value.as_slice())
        .map_err(|error| MsgError::Decode { type_url: any.type_url.clone(), reason: error.to_string() })
}

fn any(type_url: &str, proto: &impl Message) -> Any {
    Any { type_url: type_url.to_owned(), value: proto.encode_to_vec() }
}

/// The parent chain a wrapped denomination is withdrawn to: Bitcoin for `sat`, Ethereum for
/// `wei` and ERC-20 denominations.
pub fn parent_chain_of(asset: &Denom) -> ParentChain {
    if asset.as_str() == SAT { ParentChain::Bitcoin } else { ParentChain::Ethereum }
}

/// The ERC-20 token contract of a wrapped ERC-20 denomination; `None` for `wei` (native ether)
/// and `sat`.
pub fn erc20_token(asset: &Denom) -> Option<EthAddress> {
    let hex = asset.as_str().strip_prefix(ERC20_PREFIX)?;
    // The denomination holds 40 lowercase hex digits, which always parse (no checksum to check).
    format!("0x{hex}").parse().ok()
}

/// Checks `destination` is an address of `asset`'s parent chain, as far as that is possible
/// without chain state, and returns its canonical form (Ethereum: EIP-55). A Bitcoin address
/// is checked for its encoding and checksum here; its network against the peg's at execution.
///
/// # Errors
/// Text naming what is wrong: too long, bad checksum, the zero address.
pub fn check_destination(asset: &Denom, destination: &str) -> Result<String, String> {
    if destination.len() > MAX_DESTINATION_BYTES {
        return Err(format!("is {} bytes, at most {MAX_DESTINATION_BYTES} are accepted", destination.len()));
    }
    match parent_chain_of(asset) {
        ParentChain::Bitcoin => destination
            .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
            .map(|_| destination.to_owned())
            .map_err(|error| format!("`{destination}` is not a Bitcoin address: {error}")),
        ParentChain::Ethereum => {
            // The parse error names the text and what is wrong with it.
            let address: EthAddress =
                destination.parse().map_err(|error: crate::release::eth::EthAddressError| error.to_string())?;
            if address == EthAddress::ZERO {
                return Err("the zero address cannot receive a release".to_owned());
            }
            Ok(address.to_string())
        }
    }
}

/// Whether `parent_tx` is a parent-chain transaction id as releases are attested: a Bitcoin
/// txid (64 lowercase hex) or an Ethereum transaction hash (`0x` + 64 lowercase hex).
fn is_parent_tx(parent_tx: &str) -> bool {
    let hex64 = |text: &str| text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex64(parent_tx) || parent_tx.strip_prefix("0x").is_some_and(hex64)
}

impl MsgSend {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_SEND_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// When an address or coin is malformed, a coin is zero, a denom repeats or no coin is given.
    pub fn from_proto(proto: &MsgSendProto) -> Result<MsgSend, MsgError> {
        let from = proto.from_address.parse().map_err(|e| Self::field_error("from_address", e))?;
        let to = proto.to_address.parse().map_err(|e| Self::field_error("to_address", e))?;
        if proto.amount.is_empty() {
            return Err(Self::field_error("amount", "no coins given"));
        }
        let mut amount: Vec<Coin> = Vec::with_capacity(proto.amount.len());
        for coin in &proto.amount {
            let coin = Coin::from_proto(coin).map_err(|e| Self::field_error("amount", e))?;
            if coin.amount.is_zero() {
                return Err(Self::field_error("amount", format!("zero amount of `{}`", coin.denom)));
            }
            if amount.iter().any(|seen| seen.denom == coin.denom) {
                return Err(Self::field_error("amount", format!("denom `{}` given twice", coin.denom)));
            }
            amount.push(coin);
        }
        Ok(MsgSend { from, to, amount })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgSendProto {
        MsgSendProto {
            from_address: self.from.to_string(),
            to_address: self.to.to_string(),
            amount: self.amount.iter().map(Coin::to_proto).collect(),
        }
    }
}

impl MsgAttestDeposit {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_ATTEST_DEPOSIT_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// When a field is malformed or the facts are inconsistent.
    pub fn from_proto(proto: &MsgAttestDepositProto) -> Result<MsgAttestDeposit, MsgError> {
        let attester = proto.attester.parse().map_err(|e| Self::field_error("attester", e))?;
        let facts = DepositFacts {
            chain: proto.chain.parse().map_err(|e| Self::field_error("chain", e))?,
            tx_id: proto.tx_id.clone(),
            index: proto.index,
            asset: proto.asset.parse().map_err(|e| Self::field_error("asset", e))?,
            amount: proto.amount.parse().map_err(|e| Self::field_error("amount", e))?,
            recipient: proto.recipient.parse().map_err(|e| Self::field_error("recipient", e))?,
            deposit_address: proto.deposit_address,
            unattributed: match proto.unattributed.as_str() {
                "" => None,
                code => Some(code.parse().map_err(|e| Self::field_error("unattributed", e))?),
            },
            peg_epoch: proto.peg_epoch,
        };
        facts.validate().map_err(|e| Self::field_error("facts", e))?;
        Ok(MsgAttestDeposit { attester, facts })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgAttestDepositProto {
        MsgAttestDepositProto {
            attester: self.attester.to_string(),
            chain: self.facts.chain.to_string(),
            tx_id: self.facts.tx_id.clone(),
            index: self.facts.index,
            asset: self.facts.asset.to_string(),
            amount: self.facts.amount.to_string(),
            recipient: self.facts.recipient.to_string(),
            deposit_address: self.facts.deposit_address,
            unattributed: self.facts.unattributed.map(|reason| reason.code().to_owned()).unwrap_or_default(),
            peg_epoch: self.facts.peg_epoch,
        }
    }
}

impl MsgWithdraw {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_WITHDRAW_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed sender, asset, amount or max_fee, a zero amount, or a destination that is not
    /// an address of the asset's parent chain (see [`check_destination`]).
    pub fn from_proto(proto: &MsgWithdrawProto) -> Result<MsgWithdraw, MsgError> {
        let sender = proto.sender.parse().map_err(|e| Self::field_error("sender", e))?;
        let asset: Denom = proto.asset.parse().map_err(|e| Self::field_error("asset", e))?;
        let amount: Amount = proto.amount.parse().map_err(|e| Self::field_error("amount", e))?;
        if amount.is_zero() {
            return Err(Self::field_error("amount", "zero amount"));
        }
        let destination =
            check_destination(&asset, &proto.destination).map_err(|e| Self::field_error("destination", e))?;
        let max_fee = if proto.max_fee.is_empty() {
            Amount::ZERO
        } else {
            proto.max_fee.parse().map_err(|e| Self::field_error("max_fee", e))?
        };
        Ok(MsgWithdraw { sender, asset, amount, destination, max_fee })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgWithdrawProto {
        MsgWithdrawProto {
            sender: self.sender.to_string(),
            asset: self.asset.to_string(),
            amount: self.amount.to_string(),
            destination: self.destination.clone(),
            max_fee: if self.max_fee.is_zero() { String::new() } else { self.max_fee.to_string() },
        }
    }
}

impl MsgSubmitSignatures {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_SUBMIT_SIGNATURES_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form: exactly one of `bls_share` and `btc_signatures` is given, and no
    /// Bitcoin signature is empty.
    ///
    /// # Errors
    /// A malformed signer, both or neither kind of signature, or an empty Bitcoin signature.
    pub fn from_proto(proto: &MsgSubmitSignaturesProto) -> Result<MsgSubmitSignatures, MsgError> {
        let signer = proto.signer.parse().map_err(|e| Self::field_error("signer", e))?;
        let signatures = match (proto.bls_share.is_empty(), proto.btc_signatures.is_empty()) {
            (false, true) => ReleaseSignatures::Bls(proto.bls_share.clone()),
            (true, false) => {
                if let Some(input) = proto.btc_signatures.iter().position(Vec::is_empty) {
                    return Err(Self::field_error("btc_signatures", format!("signature for input {input} is empty")));
                }
                ReleaseSignatures::Bitcoin(proto.btc_signatures.clone())
            }
            (true, true) => {
                return Err(Self::field_error("bls_share", "give a BLS share (Ethereum) or Bitcoin signatures"));
            }
            (false, false) => {
                return Err(Self::field_error("bls_share", "a BLS share and Bitcoin signatures cannot go together"));
            }
        };
        Ok(MsgSubmitSignatures { signer, batch: proto.batch, signatures })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgSubmitSignaturesProto {
        let (bls_share, btc_signatures) = match &self.signatures {
            ReleaseSignatures::Bls(share) => (share.clone(), Vec::new()),
            ReleaseSignatures::Bitcoin(signatures) => (Vec::new(), signatures.clone()),
        };
        MsgSubmitSignaturesProto { signer: self.signer.to_string(), batch: self.batch, bls_share, btc_signatures }
    }
}

impl MsgAttestRelease {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_ATTEST_RELEASE_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed attester or parent transaction id.
    pub fn from_proto(proto: &MsgAttestReleaseProto) -> Result<MsgAttestRelease, MsgError> {
        let attester = proto.attester.parse().map_err(|e| Self::field_error("attester", e))?;
        if !is_parent_tx(&proto.parent_tx) {
            return Err(Self::field_error(
                "parent_tx",
                format!(
                    "`{}` is neither a Bitcoin txid (64 lowercase hex) nor an Ethereum transaction hash (0x + 64)",
                    proto.parent_tx
                ),
            ));
        }
        Ok(MsgAttestRelease {
            attester,
            batch: proto.batch,
            parent_tx: proto.parent_tx.clone(),
            parent_height: proto.parent_height,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgAttestReleaseProto {
        MsgAttestReleaseProto {
            attester: self.attester.to_string(),
            batch: self.batch,
            parent_tx: self.parent_tx.clone(),
            parent_height: self.parent_height,
        }
    }
}

impl MsgAttestParentHeight {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_ATTEST_PARENT_HEIGHT_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed attester or chain.
    pub fn from_proto(proto: &MsgAttestParentHeightProto) -> Result<MsgAttestParentHeight, MsgError> {
        let attester = proto.attester.parse().map_err(|e| Self::field_error("attester", e))?;
        let chain: ParentChain = proto.chain.parse().map_err(|e| Self::field_error("chain", e))?;
        Ok(MsgAttestParentHeight { attester, chain, height: proto.height })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgAttestParentHeightProto {
        MsgAttestParentHeightProto {
            attester: self.attester.to_string(),
            chain: self.chain.to_string(),
            height: self.height,
        }
    }
}

/// Checks a free-text reason: at most [`MAX_REASON_BYTES`], no control characters.
fn check_reason(reason: &str) -> Result<(), String> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(format!("is {} bytes, at most {MAX_REASON_BYTES} are accepted", reason.len()));
    }
    if reason.chars().any(char::is_control) {
        return Err("holds control characters".to_owned());
    }
    Ok(())
}

/// Most withdrawals one abort vote names.
pub const MAX_ABORT_ITEMS: usize = 512;

impl MsgAbortBatch {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_ABORT_BATCH_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed member, a reason that is empty, too long or holds control characters, or
    /// more than [`MAX_ABORT_ITEMS`] items.
    pub fn from_proto(proto: &MsgAbortBatchProto) -> Result<MsgAbortBatch, MsgError> {
        let member = proto.member.parse().map_err(|e| Self::field_error("member", e))?;
        if proto.reason.trim().is_empty() {
            return Err(Self::field_error("reason", "an abort vote says why"));
        }
        check_reason(&proto.reason).map_err(|e| Self::field_error("reason", e))?;
        if proto.items.len() > MAX_ABORT_ITEMS {
            return Err(Self::field_error("items", format!("{} items, at most {MAX_ABORT_ITEMS}", proto.items.len())));
        }
        let items = proto.items.iter().map(|n| crate::query::WithdrawalId(*n)).collect();
        Ok(MsgAbortBatch { member, batch: proto.batch, reason: proto.reason.clone(), items })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgAbortBatchProto {
        MsgAbortBatchProto {
            member: self.member.to_string(),
            batch: self.batch,
            reason: self.reason.clone(),
            items: self.items.iter().map(|id| id.0).collect(),
        }
    }
}

impl MsgResolveHeld {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_RESOLVE_HELD_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed member.
    pub fn from_proto(proto: &MsgResolveHeldProto) -> Result<MsgResolveHeld, MsgError> {
        let member = proto.member.parse().map_err(|e| Self::field_error("member", e))?;
        Ok(MsgResolveHeld { member, withdrawal: crate::query::WithdrawalId(proto.withdrawal) })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgResolveHeldProto {
        MsgResolveHeldProto { member: self.member.to_string(), withdrawal: self.withdrawal.0 }
    }
}

impl MsgSetPaused {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_SET_PAUSED_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed member, or a reason longer than [`MAX_REASON_BYTES`] or holding control characters.
    pub fn from_proto(proto: &MsgSetPausedProto) -> Result<MsgSetPaused, MsgError> {
        let member = proto.member.parse().map_err(|e| Self::field_error("member", e))?;
        check_reason(&proto.reason).map_err(|e| Self::field_error("reason", e))?;
        Ok(MsgSetPaused { member, paused: proto.paused, reason: proto.reason.clone() })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgSetPausedProto {
        MsgSetPausedProto { member: self.member.to_string(), paused: self.paused, reason: self.reason.clone() }
    }
}

impl MsgProposeListing {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_PROPOSE_LISTING_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed member or token, the zero token; for a listing a malformed or zero window cap,
    /// a malformed delay threshold or minimum, or a minimum above the cap; for an unlisting any
    /// limit given.
    pub fn from_proto(proto: &MsgProposeListingProto) -> Result<MsgProposeListing, MsgError> {
        let member = proto.member.parse().map_err(|e| Self::field_error("member", e))?;
        let token: EthAddress = proto.token.parse().map_err(|e| Self::field_error("token", e))?;
        if token.is_zero() {
            return Err(Self::field_error("token", "the zero address is native ether, not a token"));
        }
        if !proto.listed {
            for (field, value) in [
                ("window_cap", &proto.window_cap),
                ("delay_above", &proto.delay_above),
                ("min_amount", &proto.min_amount),
            ] {
                if !value.is_empty() {
                    return Err(Self::field_error(field, "an unlisting keeps the token's limits; give none"));
                }
            }
            return Ok(MsgProposeListing { member, token, limit: None });
        }
        let amount = |field: &'static str, text: &str| -> Result<Amount, MsgError> {
            text.parse().map_err(|e| Self::field_error(field, e))
        };
        let window_cap = amount("window_cap", &proto.window_cap)?;
        if window_cap == Amount::ZERO {
            return Err(Self::field_error("window_cap", "must be above zero, or nothing could ever be withdrawn"));
        }
        let min_amount = amount("min_amount", &proto.min_amount)?;
        if min_amount > window_cap {
            return Err(Self::field_error("min_amount", format!("{min_amount} is above the window cap {window_cap}")));
        }
        let limit = crate::genesis::AssetLimit {
            denom: Denom::erc20(&token),
            window_cap,
            delay_above: amount("delay_above", &proto.delay_above)?,
            min_amount,
        };
        Ok(MsgProposeListing { member, token, limit: Some(limit) })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgProposeListingProto {
        let text = |pick: fn(&crate::genesis::AssetLimit) -> Amount| {
            self.limit.as_ref().map(|limit| pick(limit).to_string()).unwrap_or_default()
        };
        MsgProposeListingProto {
            member: self.member.to_string(),
            token: self.token.to_string(),
            listed: self.lists(),
            window_cap: text(|limit| limit.window_cap),
            delay_above: text(|limit| limit.delay_above),
            min_amount: text(|limit| limit.min_amount),
        }
    }
}

impl MsgAttestReserves {
    fn field_error(field: &'static str, reason: impl ToString) -> MsgError {
        MsgError::Field { type_url: MSG_ATTEST_RESERVES_TYPE_URL, field, reason: reason.to_string() }
    }

    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed attester, chain or coin, an asset given twice, or an asset of another chain.
    pub fn from_proto(proto: &MsgAttestReservesProto) -> Result<MsgAttestReserves, MsgError> {
        let attester = proto.attester.parse().map_err(|e| Self::field_error("attester", e))?;
        let chain: ParentChain = proto.chain.parse().map_err(|e| Self::field_error("chain", e))?;
        let mut holdings = std::collections::BTreeMap::new();
        for coin in &proto.holdings {
            let coin = Coin::from_proto(coin).map_err(|e| Self::field_error("holdings", e))?;
            if parent_chain_of(&coin.denom) != chain {
                return Err(Self::field_error("holdings", format!("`{}` is not an asset of {chain}", coin.denom)));
            }
            if holdings.insert(coin.denom.clone(), coin.amount).is_some() {
                return Err(Self::field_error("holdings", format!("denom `{}` given twice", coin.denom)));
            }
        }
        let mut gone: Vec<crate::DepositId> = Vec::with_capacity(proto.gone.len());
        if proto.gone.len() > MAX_GONE_OUTPUTS {
            return Err(Self::field_error("gone", format!("{} ids; at most {MAX_GONE_OUTPUTS}", proto.gone.len())));
        }
        for text in &proto.gone {
            let id: crate::DepositId = text.parse().map_err(|e| Self::field_error("gone", e))?;
            if id.chain() != Some(chain) {
                return Err(Self::field_error("gone", format!("`{id}` is not an id of {chain}")));
            }
            if gone.last().is_some_and(|last| *last >= id) {
                return Err(Self::field_error("gone", format!("`{id}` is out of order or repeated (ascending ids)")));
            }
            gone.push(id);
        }
        Ok(MsgAttestReserves {
            attester,
            round: proto.round,
            chain,
            parent_height: proto.parent_height,
            holdings,
            gone,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgAttestReservesProto {
        MsgAttestReservesProto {
            attester: self.attester.to_string(),
            round: self.round,
            chain: self.chain.to_string(),
            parent_height: self.parent_height,
            holdings: self
                .holdings
                .iter()
                .map(|(denom, amount)| Coin::new(amount.get(), denom.clone()).to_proto())
                .collect(),
            gone: self.gone.iter().map(ToString::to_string).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "erc20/0x00000000000000000000000000000000000000ab";
    /// EIP-55's own example address.
    const CHECKSUMMED: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    const REGTEST: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

    fn withdraw_proto(asset: &str, destination: &str) -> MsgWithdrawProto {
        MsgWithdrawProto {
            sender: Address::from_bytes([1; 20]).to_string(),
            asset: asset.to_owned(),
            amount: "5000".to_owned(),
            destination: destination.to_owned(),
            max_fee: String::new(),
        }
    }

    fn field_of(error: MsgError) -> &'static str {
        match error {
            MsgError::Field { field, .. } => field,
            _ => "",
        }
    }

    #[test]
    fn bridge_messages_round_trip_through_any() -> Result<(), MsgError> {
        let member = Address::from_bytes([2; 20]);
        let messages = [
            Msg::Withdraw(MsgWithdraw::from_proto(&withdraw_proto("wei", CHECKSUMMED))?),
            Msg::SubmitSignatures(MsgSubmitSignatures {
                signer: member,
                batch: 7,
                signatures: ReleaseSignatures::Bitcoin(vec![vec![0x30, 1], vec![0x30, 2]]),
            }),
            Msg::SubmitSignatures(MsgSubmitSignatures {
                signer: member,
                batch: 8,
                signatures: ReleaseSignatures::Bls(vec![7; 96]),
            }),
            Msg::AttestRelease(MsgAttestRelease {
                attester: member,
                batch: 7,
                parent_tx: "ab".repeat(32),
                parent_height: 412,
            }),
            Msg::AttestParentHeight(MsgAttestParentHeight {
                attester: member,
                chain: ParentChain::Bitcoin,
                height: 415,
            }),
            Msg::Withdraw(MsgWithdraw {
                max_fee: Amount::new(1_234),
                ..MsgWithdraw::from_proto(&withdraw_proto("sat", REGTEST))?
            }),
            Msg::SetPaused(MsgSetPaused { member, paused: true, reason: "reserves look wrong".to_owned() }),
            Msg::AttestReserves(MsgAttestReserves {
                attester: member,
                round: 4,
                chain: ParentChain::Bitcoin,
                parent_height: 230,
                holdings: [(Denom::sat(), Amount::new(1_500_000))].into_iter().collect(),
                gone: format!("btc:{}:1", "ab".repeat(32)).parse::<crate::DepositId>().into_iter().collect(),
            }),
        ];
        for msg in messages {
            assert_eq!(Msg::from_any(&msg.to_any())?, msg);
        }
        Ok(())
    }

    #[test]
    fn withdrawals_pay_fees_in_their_asset_and_duties_are_fee_exempt() -> Result<(), MsgError> {
        let withdraw = Msg::Withdraw(MsgWithdraw::from_proto(&withdraw_proto("sat", REGTEST))?);
        assert_eq!(withdraw.denoms(), [&Denom::sat()]);
        assert!(!withdraw.is_federation_duty());
        let vote =
            Msg::SetPaused(MsgSetPaused { member: Address::from_bytes([2; 20]), paused: false, reason: String::new() });
        assert!(vote.is_federation_duty());
        assert!(vote.denoms().is_empty());
        Ok(())
    }

    #[test]
    fn destinations_are_checked_for_the_assets_parent_chain() {
        let lowercase = CHECKSUMMED.to_lowercase();
        let canonical = MsgWithdraw::from_proto(&withdraw_proto(TOKEN, &lowercase)).map(|msg| msg.destination);
        assert_eq!(canonical.as_deref(), Ok(CHECKSUMMED), "stored in EIP-55 form");
        let bad_checksum = CHECKSUMMED.replace("aAe", "AAe");
        for (asset, destination) in [
            ("wei", bad_checksum.as_str()),
            ("wei", "0x0000000000000000000000000000000000000000"),
            ("wei", REGTEST),
            ("sat", CHECKSUMMED),
            ("sat", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081"),
            ("sat", &"1".repeat(MAX_DESTINATION_BYTES + 1)),
        ] {
            let refused = MsgWithdraw::from_proto(&withdraw_proto(asset, destination)).map_err(field_of);
            assert_eq!(refused, Err("destination"), "{asset} to {destination}");
        }
        let zero = withdraw_proto("wei", CHECKSUMMED);
        let zero = MsgWithdrawProto { amount: "0".to_owned(), ..zero };
        assert_eq!(MsgWithdraw::from_proto(&zero).map_err(field_of), Err("amount"));
        let budget = MsgWithdrawProto { max_fee: "12e3".to_owned(), ..withdraw_proto("sat", REGTEST) };
        assert_eq!(MsgWithdraw::from_proto(&budget).map_err(field_of), Err("max_fee"));
        let report = |chain: &str| {
            MsgAttestParentHeight::from_proto(&MsgAttestParentHeightProto {
                attester: Address::from_bytes([2; 20]).to_string(),
                chain: chain.to_owned(),
                height: 9,
            })
            .map_err(field_of)
        };
        assert!(report("btc").is_ok());
        assert!(report("eth").is_ok());
        assert_eq!(report("ltc"), Err("chain"));
        let snapshot_gone = |chain: &str, coins: &[(u128, Denom)], gone: &[String]| {
            MsgAttestReserves::from_proto(&MsgAttestReservesProto {
                attester: Address::from_bytes([2; 20]).to_string(),
                round: 3,
                chain: chain.to_owned(),
                parent_height: 120,
                holdings: coins.iter().map(|(amount, denom)| Coin::new(*amount, denom.clone()).to_proto()).collect(),
                gone: gone.to_vec(),
            })
            .map_err(field_of)
        };
        let snapshot = |chain: &str, coins: &[(u128, Denom)]| snapshot_gone(chain, coins, &[]);
        let output = |vout: u32| format!("btc:{}:{vout}", "cd".repeat(32));
        let sat = [(5, Denom::sat())];
        assert!(snapshot_gone("btc", &sat, &[output(0), output(1)]).is_ok());
        assert_eq!(snapshot_gone("btc", &sat, &[output(1), output(0)]), Err("gone"), "out of order");
        assert_eq!(snapshot_gone("btc", &sat, &[output(1), output(1)]), Err("gone"), "repeated");
        assert_eq!(snapshot_gone("btc", &sat, &["btc:nope:0".to_owned()]), Err("gone"), "malformed");
        let eth_id = format!("eth:0x{}:0", "ef".repeat(32));
        assert!(snapshot_gone("eth", &[(0, Denom::wei())], std::slice::from_ref(&eth_id)).is_ok());
        assert_eq!(snapshot_gone("eth", &[(0, Denom::wei())], &[output(0)]), Err("gone"), "another chain's id");
        assert_eq!(snapshot_gone("btc", &sat, &[eth_id]), Err("gone"), "another chain's id");
        let many: Vec<String> = (0..=50).map(output).collect();
        assert_eq!(snapshot_gone("btc", &sat, &many), Err("gone"), "too many");
        assert!(snapshot("eth", &[(0, Denom::wei()), (5, Denom::erc20(&EthAddress::from_bytes([7; 20])))]).is_ok());
        assert_eq!(snapshot("btc", &[(5, Denom::wei())]), Err("holdings"), "an asset of another chain");
        assert_eq!(snapshot("btc", &[(5, Denom::sat()), (6, Denom::sat())]), Err("holdings"), "twice");
        assert_eq!(snapshot("doge", &[]), Err("chain"));
    }

    #[test]
    fn malformed_duties_are_refused_naming_the_field() {
        let signer = Address::from_bytes([2; 20]).to_string();
        let submit = |bls_share: Vec<u8>, btc_signatures: Vec<Vec<u8>>| {
            MsgSubmitSignatures::from_proto(&MsgSubmitSignaturesProto {
                signer: signer.clone(),
                batch: 1,
                bls_share,
                btc_signatures,
            })
            .map_err(field_of)
        };
        assert_eq!(submit(Vec::new(), Vec::new()), Err("bls_share"));
        assert_eq!(submit(vec![1], vec![vec![1]]), Err("bls_share"));
        assert_eq!(submit(Vec::new(), vec![vec![1], Vec::new()]), Err("btc_signatures"));

        let attest = |parent_tx: &str| {
            MsgAttestRelease::from_proto(&MsgAttestReleaseProto {
                attester: signer.clone(),
                batch: 1,
                parent_tx: parent_tx.to_owned(),
                parent_height: 0,
            })
            .map_err(field_of)
        };
        assert!(attest(&"ab".repeat(32)).is_ok());
        assert!(attest(&format!("0x{}", "ab".repeat(32))).is_ok());
        for bad in ["AB".repeat(32), "ab".repeat(31), format!("0X{}", "ab".repeat(32)), String::new()] {
            assert_eq!(attest(&bad), Err("parent_tx"), "{bad}");
        }

        let vote = |reason: String| {
            MsgSetPaused::from_proto(&MsgSetPausedProto { member: signer.clone(), paused: true, reason })
                .map_err(field_of)
        };
        assert!(vote("x".repeat(MAX_REASON_BYTES)).is_ok());
        assert_eq!(vote("x".repeat(MAX_REASON_BYTES + 1)), Err("reason"));
        assert_eq!(vote("line\nbreak".to_owned()), Err("reason"));
    }

    #[test]
    fn erc20_denoms_name_their_token_and_ether_has_none() {
        assert_eq!(erc20_token(&Denom::wei()), None);
        let token = TOKEN.parse::<Denom>().map(|denom| erc20_token(&denom).map(|address| address.to_string()));
        assert_eq!(token, Ok(Some("0x00000000000000000000000000000000000000AB".to_owned())));
        assert_eq!(parent_chain_of(&Denom::sat()), ParentChain::Bitcoin);
        assert_eq!(parent_chain_of(&Denom::wei()), ParentChain::Ethereum);
    }
}
