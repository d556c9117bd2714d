//! Ferry's transaction messages and their protobuf wire forms.
//!
//! Messages travel as `google.protobuf.Any` inside a Cosmos SDK `TxBody`. Each message type has a
//! type URL under `/ferry.*`; the prost structs here are the wire format, and [`Msg`] is the
//! validated form the state machine executes.

use cosmrs::Any;
use prost::Message;

use crate::address::Address;
use crate::amount::Coin;
use crate::deposit::DepositFacts;

/// Type URL of [`MsgSendProto`].
pub const MSG_SEND_TYPE_URL: &str = "/ferry.bank.v1.MsgSend";
/// Type URL of [`MsgAttestDepositProto`].
pub const MSG_ATTEST_DEPOSIT_TYPE_URL: &str = "/ferry.bridge.v1.MsgAttestDeposit";
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
}

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

/// A validated message the state machine can execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// `/ferry.bank.v1.MsgSend`.
    Send(MsgSend),
    /// `/ferry.bridge.v1.MsgAttestDeposit`.
    AttestDeposit(MsgAttestDeposit),
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
            MSG_SEND_TYPE_URL => {
                let proto = MsgSendProto::decode(any.value.as_slice())
                    .map_err(|error| MsgError::Decode { type_url: any.type_url.clone(), reason: error.to_string() })?;
                MsgSend::from_proto(&proto).map(Msg::Send)
            }
            MSG_ATTEST_DEPOSIT_TYPE_URL => {
                let proto = MsgAttestDepositProto::decode(any.value.as_slice())
                    .map_err(|error| MsgError::Decode { type_url: any.type_url.clone(), reason: error.to_string() })?;
                MsgAttestDeposit::from_proto(&proto).map(Msg::AttestDeposit)
            }
            other => Err(MsgError::UnknownType(other.to_owned())),
        }
    }

    /// Encodes the message as an `Any`.
    pub fn to_any(&self) -> Any {
        match self {
            Msg::Send(send) => Any { type_url: MSG_SEND_TYPE_URL.to_owned(), value: send.to_proto().encode_to_vec() },
            Msg::AttestDeposit(attest) => {
                Any { type_url: MSG_ATTEST_DEPOSIT_TYPE_URL.to_owned(), value: attest.to_proto().encode_to_vec() }
            }
        }
    }

    /// The account that must sign this message.
    pub fn signer(&self) -> Address {
        match self {
            Msg::Send(send) => send.from,
            Msg::AttestDeposit(attest) => attest.attester,
        }
    }

    /// Denominations this message moves out of the signer's account (a fee must be paid in one
    /// of them).
    pub fn denoms(&self) -> Vec<&crate::Denom> {
        match self {
            Msg::Send(send) => send.amount.iter().map(|coin| &coin.denom).collect(),
            Msg::AttestDeposit(_) => Vec::new(),
        }
    }

    /// Whether this is a federation duty: fee-exempt, and accepted only from federation members.
    pub fn is_federation_duty(&self) -> bool {
        matches!(self, Msg::AttestDeposit(_))
    }
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
        }
    }
}
