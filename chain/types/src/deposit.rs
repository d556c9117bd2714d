//! Deposits from the parent chains: the facts a federation member attests, and deposit ids.
//!
//! A deposit mints only when `attest_quorum` members attested *identical* facts, so the facts
//! carry everything that decides what is minted — chain, transaction, output or log index, asset,
//! amount, recipient — and nothing an honest observer could see differently (no block height).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::amount::Amount;
use crate::denom::{Denom, ERC20_PREFIX, SAT, WEI};

/// A parent chain Ferry bridges from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParentChain {
    /// Bitcoin (deposit id `btc:<txid>:<vout>`).
    #[serde(rename = "btc")]
    Bitcoin,
    /// Ethereum (deposit id `eth:<txhash>:<logindex>`).
    #[serde(rename = "eth")]
    Ethereum,
}

impl ParentChain {
    /// Every parent chain, in order.
    pub const ALL: [ParentChain; 2] = [ParentChain::Bitcoin, ParentChain::Ethereum];
}

impl ParentChain {
    /// The id prefix and label: `btc` or `eth`.
    pub const fn tag(self) -> &'static str {
        match self {
            ParentChain::Bitcoin => "btc",
            ParentChain::Ethereum => "eth",
        }
    }
}

impl fmt::Display for ParentChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl FromStr for ParentChain {
    type Err = DepositError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "btc" => Ok(ParentChain::Bitcoin),
            "eth" => Ok(ParentChain::Ethereum),
            other => Err(DepositError::UnknownChain(other.to_owned())),
        }
    }
}

/// Why a payment to the peg cannot be attributed to an account: it mints nothing until a quorum
/// of members resolves it (`MsgResolveUnattributed`: credit an account, or refund it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unattributed {
    /// The transaction carries no `FERRY1` memo.
    NoMemo,
    /// The transaction carries more than one `FERRY1` memo.
    SeveralMemos,
    /// The memo is malformed (wrong tag, wrong length, not one push).
    BadMemo,
    /// Ethereum: tokens sent to the vault with a plain ERC-20 `transfer`, not `depositToken`.
    PlainTransfer,
}

impl Unattributed {
    /// The code, as stored and attested (`no_memo`, `several_memos`, `bad_memo`).
    pub const fn code(self) -> &'static str {
        match self {
            Unattributed::NoMemo => "no_memo",
            Unattributed::SeveralMemos => "several_memos",
            Unattributed::BadMemo => "bad_memo",
            Unattributed::PlainTransfer => "plain_transfer",
        }
    }

    /// What went wrong, in words.
    pub const fn description(self) -> &'static str {
        match self {
            Unattributed::NoMemo => "the payment to the peg carries no FERRY1 memo naming an account",
            Unattributed::SeveralMemos => {
                "the payment to the peg carries several FERRY1 memos; a deposit needs exactly one"
            }
            Unattributed::BadMemo => "the payment's FERRY1 memo is malformed (wrong tag or length)",
            Unattributed::PlainTransfer => {
                "the tokens reached the vault by a plain ERC-20 transfer, not depositToken, which names the account"
            }
        }
    }
}

impl fmt::Display for Unattributed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Unattributed {
    type Err = DepositError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "no_memo" => Ok(Unattributed::NoMemo),
            "several_memos" => Ok(Unattributed::SeveralMemos),
            "bad_memo" => Ok(Unattributed::BadMemo),
            "plain_transfer" => Ok(Unattributed::PlainTransfer),
            other => Err(DepositError::UnknownReason(other.to_owned())),
        }
    }
}

/// Why deposit facts or a deposit id were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepositError {
    /// Not `btc` or `eth`.
    #[error("unknown parent chain `{0}`: expected `btc` or `eth`")]
    UnknownChain(String),
    /// The transaction id is not 32 bytes of lowercase hex (Ethereum: with `0x`).
    #[error("`{0}` is not a transaction id: Bitcoin txids are 64 lowercase hex digits, Ethereum hashes 0x + 64")]
    BadTxId(String),
    /// The asset cannot come from that chain.
    #[error("asset `{asset}` cannot be deposited from {chain}")]
    AssetChainMismatch {
        /// The asset named.
        asset: Denom,
        /// The chain named.
        chain: ParentChain,
    },
    /// A zero amount.
    #[error("deposit amount is zero")]
    ZeroAmount,
    /// Not an unattributed-payment reason code.
    #[error("unknown unattributed reason `{0}`: expected no_memo, several_memos, bad_memo or plain_transfer")]
    UnknownReason(String),
    /// An unattributed payment names an account, or an attributed one names the pool.
    #[error(
        "the recipient is the unattributed pool exactly when the payment is unattributed: Bitcoin to the peg without a valid memo, or ERC-20 tokens sent to the vault by a plain transfer"
    )]
    UnattributedRecipient,
    /// Only Bitcoin has deposit addresses.
    #[error("only Bitcoin deposits can be paid to a deposit address")]
    DepositAddressOffBitcoin,
    /// A malformed deposit id.
    #[error("`{0}` is not a deposit id: expected btc:<txid>:<vout> or eth:<0xtxhash>:<logindex>")]
    BadId(String),
}

/// The facts of one deposit, as observed on the parent chain after the required confirmations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositFacts {
    /// Where the deposit was made.
    pub chain: ParentChain,
    /// Bitcoin txid (64 lowercase hex, display order) or Ethereum transaction hash (`0x` + 64 hex).
    pub tx_id: String,
    /// Bitcoin output index (vout) or Ethereum log index.
    pub index: u32,
    /// The wrapped asset to mint.
    pub asset: Denom,
    /// The amount, in the asset's base unit.
    pub amount: Amount,
    /// The sidechain account to credit.
    pub recipient: Address,
    /// Bitcoin: the payment went to the recipient's registered deposit address (P2WSH of
    /// [`crate::peg::Peg::deposit_witness_script`]), not to the peg with a memo. It decides the
    /// script that spends the reserve output, so members must agree on it.
    #[serde(default)]
    pub deposit_address: bool,
    /// Bitcoin: why the payment cannot be attributed to an account, when it cannot; its
    /// `recipient` is then [`Address::unattributed_pool`], and it mints nothing until resolved.
    #[serde(default)]
    pub unattributed: Option<Unattributed>,
    /// Bitcoin: the federation epoch whose peg (or deposit address of it) the output pays, as
    /// the relayer matched its script; `None`: the federation current when the chain executes
    /// the attestation. An earlier epoch's peg is minted only within its grace after the
    /// hand-over (`old_peg_grace_blocks`), and its outputs are swept to the current peg.
    #[serde(default)]
    pub peg_epoch: Option<u64>,
}

fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn valid_tx_id(chain: ParentChain, tx_id: &str) -> bool {
    match chain {
        ParentChain::Bitcoin => is_hex64(tx_id),
        ParentChain::Ethereum => tx_id.strip_prefix("0x").is_some_and(is_hex64),
    }
}

impl DepositFacts {
    /// Checks the facts are self-consistent.
    ///
    /// # Errors
    /// A malformed transaction id, an asset the chain cannot carry, or a zero amount.
    pub fn validate(&self) -> Result<(), DepositError> {
        if !valid_tx_id(self.chain, &self.tx_id) {
            return Err(DepositError::BadTxId(self.tx_id.clone()));
        }
        let asset = self.asset.as_str();
        let fits = match self.chain {
            ParentChain::Bitcoin => asset == SAT,
            ParentChain::Ethereum => asset == WEI || asset.starts_with(ERC20_PREFIX),
        };
        if !fits {
            return Err(DepositError::AssetChainMismatch { asset: self.asset.clone(), chain: self.chain });
        }
        if self.amount.is_zero() {
            return Err(DepositError::ZeroAmount);
        }
        if self.deposit_address && self.chain != ParentChain::Bitcoin {
            return Err(DepositError::DepositAddressOffBitcoin);
        }
        let pooled = self.recipient == Address::unattributed_pool();
        let fits = match self.unattributed {
            None => !pooled,
            Some(Unattributed::PlainTransfer) => {
                pooled && self.chain == ParentChain::Ethereum && self.asset.as_str().starts_with(ERC20_PREFIX)
            }
            Some(_) => pooled && self.chain == ParentChain::Bitcoin && !self.deposit_address,
        };
        if !fits {
            return Err(DepositError::UnattributedRecipient);
        }
        Ok(())
    }

    /// The deposit id: `btc:<txid>:<vout>` or `eth:<txhash>:<logindex>`.
    pub fn id(&self) -> DepositId {
        DepositId(format!("{}:{}:{}", self.chain, self.tx_id, self.index))
    }

    /// A digest identifying these exact facts, to compare attestations.
    pub fn digest(&self) -> [u8; 32] {
        let mut canonical = format!(
            "ferry/deposit/v1|{}|{}|{}|{}|{}|{}",
            self.chain,
            self.tx_id,
            self.index,
            self.asset,
            self.amount,
            hex::encode(self.recipient.as_bytes())
        );
        if self.deposit_address {
            canonical.push_str("|deposit-address");
        }
        if let Some(reason) = self.unattributed {
            canonical.push_str("|unattributed:");
            canonical.push_str(reason.code());
        }
        if let Some(epoch) = self.peg_epoch {
            canonical.push_str(&format!("|peg-epoch:{epoch}"));
        }
        crate::key::sha256(canonical.as_bytes())
    }
}

/// A deposit id (`btc:<txid>:<vout>` or `eth:<txhash>:<logindex>`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DepositId(String);

impl DepositId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The chain part.
    pub fn chain(&self) -> Option<ParentChain> {
        self.0.split(':').next()?.parse().ok()
    }
}

impl FromStr for DepositId {
    type Err = DepositError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || DepositError::BadId(text.to_owned());
        let mut parts = text.split(':');
        let (Some(chain), Some(tx_id), Some(index), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let chain: ParentChain = chain.parse().map_err(|_| bad())?;
        if !valid_tx_id(chain, tx_id) || index.parse::<u32>().map(|i| i.to_string() != index).unwrap_or(true) {
            return Err(bad());
        }
        Ok(DepositId(text.to_owned()))
    }
}

impl TryFrom<String> for DepositId {
    type Error = DepositError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<DepositId> for String {
    fn from(id: DepositId) -> Self {
        id.0
    }
}

impl fmt::Display for DepositId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> DepositFacts {
        DepositFacts {
            chain: ParentChain::Bitcoin,
            tx_id: "ab".repeat(32),
            index: 1,
            asset: Denom::sat(),
            amount: Amount::new(50_000),
            recipient: Address::from_bytes([4; 20]),
            deposit_address: false,
            unattributed: None,
            peg_epoch: None,
        }
    }

    #[test]
    fn ids_round_trip_and_facts_digest_every_field() -> Result<(), DepositError> {
        let facts = btc();
        facts.validate()?;
        let id = facts.id();
        assert_eq!(id.as_str(), format!("btc:{}:1", "ab".repeat(32)));
        assert_eq!(id.as_str().parse::<DepositId>()?, id);
        let mut other = facts.clone();
        other.amount = Amount::new(50_001);
        assert_ne!(facts.digest(), other.digest());
        let mut other = facts.clone();
        other.recipient = Address::from_bytes([5; 20]);
        assert_ne!(facts.digest(), other.digest());
        Ok(())
    }

    #[test]
    fn inconsistent_facts_and_ids_are_refused() {
        let mut wei_on_btc = btc();
        wei_on_btc.asset = Denom::wei();
        assert!(matches!(wei_on_btc.validate(), Err(DepositError::AssetChainMismatch { .. })));
        let mut zero = btc();
        zero.amount = Amount::ZERO;
        assert_eq!(zero.validate(), Err(DepositError::ZeroAmount));
        let mut prefixed = btc();
        prefixed.tx_id = format!("0x{}", "ab".repeat(32));
        assert!(matches!(prefixed.validate(), Err(DepositError::BadTxId(_))));
        for bad in ["btc:xyz:1", "eth:ab:1", "btc:1", "doge:00:1", &format!("btc:{}:01", "ab".repeat(32))] {
            assert!(bad.parse::<DepositId>().is_err(), "{bad} accepted");
        }
    }
}
