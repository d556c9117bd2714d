//! The vault's bindings and the pure conversion of a `Deposited` log into deposit facts.
//!
//! The bindings are generated from the committed artifacts `contracts/out/*.json` (ABI and
//! bytecode), so they cannot drift from the deployed contract: `make contracts` rewrites the
//! artifacts and the next build picks them up.
//!
//! `Deposited(uint256 indexed nonce, address indexed token, address indexed from,
//! bytes20 recipient, uint256 amount)` — topics `[signature, nonce, token, from]`, data
//! `recipient ‖ amount` (64 bytes). `token == address(0)` means ETH.

use std::fmt;

use alloy::primitives::{Address as EthAddress, B256, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;
use ferry_types::denom::ERC20_PREFIX;
use ferry_types::deposit::DepositError;
use ferry_types::{Address, Amount, Denom, DepositFacts, ParentChain};

use crate::tracker::Observation;

/// Bindings generated from the committed artifacts (ABI, creation and runtime bytecode).
#[allow(missing_docs)]
mod bindings {
    alloy::sol!(
        #[sol(rpc)]
        FerryVault,
        "../contracts/out/FerryVault.json"
    );

    alloy::sol!(
        #[sol(rpc)]
        TestToken,
        "../contracts/out/TestToken.json"
    );
}

/// `FerryVault`: `deposit(bytes20)` (payable), `depositToken(address,uint256,bytes20)`,
/// `depositNonce()`, the `Deposited` event and the vault's errors; `FerryVault::BYTECODE` is the
/// creation code of the committed artifact.
pub use bindings::FerryVault;
/// `TestToken`: the mintable ERC-20 of the tests and the devnet (`contracts/out/TestToken.json`).
/// Never deployed outside a devnet.
pub use bindings::TestToken;
/// The `Deposited` event.
pub type Deposited = FerryVault::Deposited;

/// `topic0` of `Deposited`: keccak-256 of `Deposited(uint256,address,address,bytes20,uint256)`.
pub const DEPOSITED_TOPIC: B256 = Deposited::SIGNATURE_HASH;

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
    /// The log index does not fit the 32-bit index of deposit facts.
    #[error("{at}: log index does not fit 32 bits")]
    LogIndexTooLarge {
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
/// Facts: chain Ethereum, `tx_id` = transaction hash (`0x` + 64 lowercase hex), `index` = log
/// index in the block, `asset` = `wei` or `erc20/0x<token>`, `amount`, `recipient` = the 20-byte
/// account id. The deposit id is thus `eth:<txhash>:<logindex>`.
///
/// # Errors
/// [`DepositLogError`] naming the log when it is incomplete or removed, comes from another
/// contract, does not decode strictly as `Deposited` (wrong signature, topic count, data length,
/// non-zero padding), or carries an amount above `u128::MAX`, a zero amount or a log index
/// above `u32::MAX`.
pub fn observation_from_log(log: &Log, vault: EthAddress) -> Result<Observation, DepositLogError> {
    let at = LogLocation::of(log);
    if log.removed {
        return Err(DepositLogError::Removed { at });
    }
    let missing = |missing| DepositLogError::Incomplete { at, missing };
    let tx_hash = log.transaction_hash.ok_or_else(|| missing("transactionHash"))?;
    let log_index = log.log_index.ok_or_else(|| missing("logIndex"))?;
    let block_number = log.block_number.ok_or_else(|| missing("blockNumber"))?;
    let block_hash = log.block_hash.ok_or_else(|| missing("blockHash"))?;
    if log.address() != vault {
        return Err(DepositLogError::NotFromVault { at, emitter: log.address(), vault });
    }
    let event = Deposited::decode_log_data_validate(log.data())
        .map_err(|error| DepositLogError::Undecodable { at, reason: error.to_string() })?;
    let facts = deposit_facts(tx_hash, log_index, &event).map_err(|error| error.located(at))?;
    Ok(Observation { facts, block_height: block_number, block_hash: hash_text(block_hash) })
}

/// Why decoded event fields do not make deposit facts (before the log's location is attached).
enum FactsError {
    AmountTooLarge(U256),
    LogIndexTooLarge,
    Invalid(DepositError),
}

impl FactsError {
    fn located(self, at: LogLocation) -> DepositLogError {
        match self {
            FactsError::AmountTooLarge(amount) => DepositLogError::AmountTooLarge { at, amount },
            FactsError::LogIndexTooLarge => DepositLogError::LogIndexTooLarge { at },
            FactsError::Invalid(source) => DepositLogError::InvalidFacts { at, source },
        }
    }
}

fn deposit_facts(tx_hash: B256, log_index: u64, event: &Deposited) -> Result<DepositFacts, FactsError> {
    let amount = u128::try_from(event.amount).map_err(|_| FactsError::AmountTooLarge(event.amount))?;
    let index = u32::try_from(log_index).map_err(|_| FactsError::LogIndexTooLarge)?;
    let facts = DepositFacts {
        chain: ParentChain::Ethereum,
        tx_id: hash_text(tx_hash),
        index,
        asset: asset_denom(event.token),
        amount: Amount::new(amount),
        recipient: Address::from_bytes(event.recipient.0),
    };
    facts.validate().map_err(FactsError::Invalid)?;
    Ok(facts)
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

    #[test]
    fn deposited_topic_is_the_keccak_of_the_event_signature() {
        assert_eq!(DEPOSITED_TOPIC, alloy::primitives::keccak256("Deposited(uint256,address,address,bytes20,uint256)"));
    }

    #[test]
    fn eth_deposit_log_becomes_wei_facts_with_the_block_it_was_seen_in() -> Result<(), DepositLogError> {
        let one_eth = U256::from(10).pow(U256::from(18));
        let observation = observation_from_log(&deposited_log(EthAddress::ZERO, RECIPIENT, one_eth), VAULT)?;
        let facts = &observation.facts;
        assert_eq!(facts.chain, ParentChain::Ethereum);
        assert_eq!(facts.tx_id, "0x9a3c2a0e6b3f8d1e0c4b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f");
        assert_eq!(facts.index, 3);
        assert_eq!(facts.asset, Denom::wei());
        assert_eq!(facts.amount, Amount::new(1_000_000_000_000_000_000));
        assert_eq!(facts.recipient, Address::from_bytes(RECIPIENT));
        assert_eq!(facts.id().as_str(), "eth:0x9a3c2a0e6b3f8d1e0c4b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f:3");
        assert_eq!(observation.block_height, 7);
        assert_eq!(observation.block_hash, format!("0x{}", "11".repeat(32)));
        Ok(())
    }

    #[test]
    fn token_deposit_log_becomes_lowercase_erc20_facts() -> Result<(), DepositLogError> {
        let observation = observation_from_log(&deposited_log(TOKEN, RECIPIENT, U256::from(250_000_000u64)), VAULT)?;
        assert_eq!(observation.facts.asset.as_str(), "erc20/0x5fbdb2315678afecb367f032d93f642f64180aa3");
        assert_eq!(observation.facts.amount, Amount::new(250_000_000));
        Ok(())
    }

    #[test]
    fn amount_of_exactly_u128_max_is_accepted_and_one_more_is_refused() -> Result<(), DepositLogError> {
        let max = U256::from(u128::MAX);
        let observation = observation_from_log(&deposited_log(TOKEN, RECIPIENT, max), VAULT)?;
        assert_eq!(observation.facts.amount, Amount::new(u128::MAX));
        let too_large = max + U256::from(1);
        let error = observation_from_log(&deposited_log(TOKEN, RECIPIENT, too_large), VAULT);
        assert!(matches!(error, Err(DepositLogError::AmountTooLarge { amount, .. }) if amount == too_large));
        Ok(())
    }

    #[test]
    fn zero_amount_is_refused_as_invalid_facts() {
        let error = observation_from_log(&deposited_log(TOKEN, RECIPIENT, U256::ZERO), VAULT);
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
            let error = observation_from_log(&log, VAULT).err();
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
        let error = observation_from_log(&log, TOKEN);
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
            observation_from_log(&pending, VAULT),
            Err(DepositLogError::Incomplete { missing: "blockNumber", .. })
        ));
        let mut no_hash = good.clone();
        no_hash.transaction_hash = None;
        assert!(matches!(
            observation_from_log(&no_hash, VAULT),
            Err(DepositLogError::Incomplete { missing: "transactionHash", .. })
        ));
        let mut removed = good.clone();
        removed.removed = true;
        assert!(matches!(observation_from_log(&removed, VAULT), Err(DepositLogError::Removed { .. })));
        let mut huge_index = good;
        huge_index.log_index = Some(u64::from(u32::MAX) + 1);
        assert!(matches!(observation_from_log(&huge_index, VAULT), Err(DepositLogError::LogIndexTooLarge { .. })));
    }

    /// One entry of an `eth_getLogs` answer captured from anvil 1.7.1: `deposit(0xa1…a1f0)` with
    /// 1 ether, the vault's first deposit.
    #[test]
    fn log_captured_from_anvil_decodes() -> Result<(), Box<dyn std::error::Error>> {
        let log: Log = serde_json::from_str(CAPTURED_ANVIL_LOG)?;
        let observation = observation_from_log(&log, log.address())?;
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
