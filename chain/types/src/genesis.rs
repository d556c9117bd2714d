//! The chain's genesis state, read from CometBFT's `app_state`, and its parameters.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::amount::Coin;

/// Chain parameters, fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Minimum fee per transaction, one entry per denomination. A transaction pays its fee in a
    /// denomination it moves; a denomination without an entry cannot pay fees.
    pub min_fees: Vec<Coin>,
    /// Largest accepted transaction, in bytes.
    pub max_tx_bytes: u64,
    /// Most messages in one transaction.
    pub max_msgs_per_tx: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_fees: vec![Coin::new(100, crate::Denom::sat()), Coin::new(10_000_000_000, crate::Denom::wei())],
            max_tx_bytes: 16 * 1024,
            max_msgs_per_tx: 64,
        }
    }
}

impl Params {
    /// The minimum fee in `denom`, if that denomination can pay fees.
    pub fn min_fee(&self, denom: &crate::Denom) -> Option<crate::Amount> {
        self.min_fees.iter().find(|coin| &coin.denom == denom).map(|coin| coin.amount)
    }
}

/// An account funded at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account.
    pub address: Address,
    /// Its opening balances.
    pub coins: Vec<Coin>,
}

/// The federation as known at genesis.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Federation {
    /// Sidechain accounts of the federation members.
    pub members: Vec<Address>,
    /// How many distinct members must attest identical facts before a deposit mints.
    #[serde(default)]
    pub attest_quorum: u32,
    /// The members' Bitcoin keys and the peg's signing threshold (absent: no Bitcoin peg).
    #[serde(default)]
    pub bitcoin: Option<crate::peg::BitcoinFederation>,
}

impl Federation {
    /// Whether `address` is a member.
    pub fn is_member(&self, address: &Address) -> bool {
        self.members.contains(address)
    }
}

/// Everything the application needs at `InitChain`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisState {
    /// Funded accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Federation members.
    #[serde(default)]
    pub federation: Federation,
    /// Parameters.
    pub params: Params,
}

/// Why a genesis state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The JSON does not match the schema.
    #[error("app_state is not a Ferry genesis: {0}")]
    Json(String),
    /// An account appears twice.
    #[error("genesis account {0} is listed twice")]
    DuplicateAccount(Address),
    /// A denomination repeats in one account.
    #[error("genesis account {0} lists denom `{1}` twice")]
    DuplicateDenom(Address, crate::Denom),
    /// A federation member appears twice.
    #[error("federation member {0} is listed twice")]
    DuplicateMember(Address),
    /// The balances of a denomination add up beyond 2^128 - 1.
    #[error("genesis balances of `{0}` add up beyond 2^128 - 1")]
    SupplyOverflow(crate::Denom),
    /// A fee denomination repeats.
    #[error("min_fees lists denom `{0}` twice")]
    DuplicateFeeDenom(crate::Denom),
    /// A parameter is out of range.
    #[error("parameter `{0}` must be positive")]
    ZeroParam(&'static str),
    /// The Bitcoin peg is invalid.
    #[error("federation.bitcoin: {0}")]
    Peg(crate::peg::PegError),
    /// Not one Bitcoin key per member.
    #[error("federation.bitcoin lists {keys} keys for {members} members; give one per member")]
    KeyCount {
        /// Keys given.
        keys: usize,
        /// Members.
        members: usize,
    },
    /// The quorum cannot be met or could be met by a minority.
    #[error("attest_quorum {quorum} must be more than half of the {members} members and at most all of them")]
    BadQuorum {
        /// The quorum given.
        quorum: u32,
        /// The member count.
        members: usize,
    },
}

impl GenesisState {
    /// Parses and validates `app_state` JSON.
    ///
    /// # Errors
    /// When the JSON does not match the schema or a rule in [`GenesisState::validate`] fails.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GenesisError> {
        let state: GenesisState = serde_json::from_slice(bytes).map_err(|e| GenesisError::Json(e.to_string()))?;
        state.validate()?;
        Ok(state)
    }

    /// Checks uniqueness of accounts, denoms, members and fee denoms, and positive limits.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let mut supply: std::collections::BTreeMap<&crate::Denom, crate::Amount> = Default::default();
        for coin in self.accounts.iter().flat_map(|account| &account.coins) {
            let total = supply.entry(&coin.denom).or_default();
            *total = total.checked_add(coin.amount).map_err(|_| GenesisError::SupplyOverflow(coin.denom.clone()))?;
        }
        let mut accounts = BTreeSet::new();
        for account in &self.accounts {
            if !accounts.insert(account.address) {
                return Err(GenesisError::DuplicateAccount(account.address));
            }
            let mut denoms = BTreeSet::new();
            for coin in &account.coins {
                if !denoms.insert(&coin.denom) {
                    return Err(GenesisError::DuplicateDenom(account.address, coin.denom.clone()));
                }
            }
        }
        let mut members = BTreeSet::new();
        for member in &self.federation.members {
            if !members.insert(member) {
                return Err(GenesisError::DuplicateMember(*member));
            }
        }
        let members = self.federation.members.len();
        let quorum = usize::try_from(self.federation.attest_quorum).unwrap_or(usize::MAX);
        if members > 0 && (quorum > members || quorum.saturating_mul(2) <= members) {
            return Err(GenesisError::BadQuorum { quorum: self.federation.attest_quorum, members });
        }
        if let Some(bitcoin) = &self.federation.bitcoin {
            crate::peg::Peg::new(bitcoin).map_err(GenesisError::Peg)?;
            if bitcoin.keys.len() != members {
                return Err(GenesisError::KeyCount { keys: bitcoin.keys.len(), members });
            }
        }
        let mut fee_denoms = BTreeSet::new();
        for coin in &self.params.min_fees {
            if !fee_denoms.insert(&coin.denom) {
                return Err(GenesisError::DuplicateFeeDenom(coin.denom.clone()));
            }
        }
        if self.params.max_tx_bytes == 0 {
            return Err(GenesisError::ZeroParam("max_tx_bytes"));
        }
        if self.params.max_msgs_per_tx == 0 {
            return Err(GenesisError::ZeroParam("max_msgs_per_tx"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_duplicates_are_refused() {
        let unknown = br#"{"accounts":[],"params":{"min_fees":[],"max_tx_bytes":1,"max_msgs_per_tx":1},"extra":1}"#;
        assert!(matches!(GenesisState::from_json(unknown), Err(GenesisError::Json(_))));
        let address = Address::from_bytes([1; 20]);
        let twice = GenesisState {
            accounts: vec![GenesisAccount { address, coins: vec![] }, GenesisAccount { address, coins: vec![] }],
            ..GenesisState::default()
        };
        assert_eq!(twice.validate(), Err(GenesisError::DuplicateAccount(address)));
    }
}
