//! A vault's deposits as deposit facts: a `Deposited` log turned into an [`Observation`] (the
//! facts and the block they were seen in), strictly, or refused with a [`DepositLogError`] naming
//! the log; and the ERC-20 tokens that reached the vault by a plain `transfer`, as unattributed
//! payments. Pure: the logs come from `EthereumWatcher::deposits_in`.

use alloy::primitives::{Address as EthAddress, B256, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;
use ferry_types::denom::ERC20_PREFIX;
use ferry_types::deposit::DepositError;
use ferry_types::{Address, Amount, Denom, DepositFacts, ParentChain};

use super::error::{DepositLogError, LogLocation};
use super::rpc::hash_text;
use super::vault::{Deposited, TRANSFER_TOPIC};
use crate::observation::Observation;

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

#[cfg(test)]
mod tests {
    use alloy::primitives::{Bytes, LogData, address, b256};

    use super::*;
    use crate::ethereum::vault::DEPOSITED_TOPIC;

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
