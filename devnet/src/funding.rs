//! How devnet users come to hold wrapped coins: by deposits, as anyone's do. A genesis holds no
//! balances, so every coin on a devnet has reserves behind it and the reserves invariant holds
//! with no exception.
//!
//! - [`deposit_openings`]: with parent chains running (a [`System`]), real deposits — the regtest
//!   miner pays the peg with each user's memo, anvil's dev account deposits ether to the vault —
//!   attested by the relayers like any other.
//! - [`attest_openings`] / [`opening_blocks`]: a sidechain without parent chains (chain tests,
//!   throughput benchmarks) has the devnet federation attest deposits whose parent-chain
//!   transactions are made up (ids derived from the user's index). The ledger stays exact —
//!   supply equals reserves — but those reserves exist on no parent chain, which is why only
//!   networks without relayers or signers, which never release anything, use them.
//!
//! Each user opens with [`OPENING_SAT`] (less what its Bitcoin deposit prepays for its own
//! spending) and [`OPENING_WEI`].

use std::time::Duration;

use anyhow::Context;
use ferry_client::Wallet;
use ferry_types::msg::MsgAttestDeposit;
use ferry_types::{Amount, Denom, DepositFacts, Msg, ParentChain};

use crate::Network;
use crate::accounts::{self, user_key};
use crate::system::System;

/// What each devnet user deposits in Bitcoin (10 BTC; the recipient is credited this less the
/// deposit's prepaid spending fee).
pub const OPENING_SAT: u64 = 1_000_000_000;
/// What each devnet user deposits in ether (100 ETH).
pub const OPENING_WEI: u128 = 100_000_000_000_000_000_000;

/// How long the openings may take to mint.
const OPENING_TIMEOUT: Duration = Duration::from_secs(120);

/// The made-up deposits opening users `0..users` on a sidechain without parent chains: per user
/// a Bitcoin deposit of [`OPENING_SAT`] and an Ethereum deposit of [`OPENING_WEI`].
///
/// # Errors
/// Never in practice (a user key that does not derive).
pub fn made_up_openings(users: usize) -> anyhow::Result<Vec<DepositFacts>> {
    let mut facts = Vec::with_capacity(2 * users);
    for index in 0..users {
        let recipient = user_key(index)?.address();
        let tx = |chain: &str| {
            hex::encode(ferry_types::key::sha256(format!("ferry-devnet/opening/{chain}/{index}").as_bytes()))
        };
        facts.push(DepositFacts {
            chain: ParentChain::Bitcoin,
            tx_id: tx("bitcoin"),
            index: 0,
            asset: Denom::sat(),
            amount: Amount::new(u128::from(OPENING_SAT)),
            recipient,
            deposit_address: false,
            unattributed: None,
            peg_epoch: None,
        });
        facts.push(DepositFacts {
            chain: ParentChain::Ethereum,
            tx_id: format!("0x{}", tx("ethereum")),
            index: 0,
            asset: Denom::wei(),
            amount: Amount::new(OPENING_WEI),
            recipient,
            deposit_address: false,
            unattributed: None,
            peg_epoch: None,
        });
    }
    Ok(facts)
}

/// The blocks that mint `facts`: a quorum of devnet members (`wallets`, one per member) attest
/// every one, each member's transactions carrying at most `max_msgs_per_tx` messages and each
/// block at most `max_duty_msgs_per_block` of one member's messages (the chain's duty limit).
/// Each block's transactions are in order per member (they carry consecutive sequences).
///
/// # Errors
/// When signing fails.
pub fn opening_blocks(
    wallets: &mut [Wallet],
    facts: &[DepositFacts],
    max_msgs_per_tx: usize,
    max_duty_msgs_per_block: usize,
) -> anyhow::Result<Vec<Vec<Vec<u8>>>> {
    let per_tx = max_msgs_per_tx.max(1);
    let per_block = (max_duty_msgs_per_block / per_tx).max(1) * per_tx;
    let mut blocks = Vec::new();
    for block_facts in facts.chunks(per_block) {
        let mut txs = Vec::new();
        for wallet in wallets.iter_mut() {
            for tx_facts in block_facts.chunks(per_tx) {
                let attester = wallet.address();
                let msgs: Vec<Msg> = tx_facts
                    .iter()
                    .map(|facts| Msg::AttestDeposit(MsgAttestDeposit { attester, facts: facts.clone() }))
                    .collect();
                txs.push(wallet.sign_fee_exempt(&msgs)?);
            }
        }
        blocks.push(txs);
    }
    Ok(blocks)
}

/// [`opening_blocks`] for an in-process chain of `genesis` under `chain_id`, users `0..users`
/// opened by its attest quorum of devnet members, signed offline: genesis numbers its accounts
/// first and the members after them, the first member as account `first_member`.
///
/// # Errors
/// When a key does not derive or signing fails.
pub fn offline_opening_blocks(
    genesis: &ferry_types::GenesisState,
    chain_id: &str,
    users: usize,
    first_member: usize,
) -> anyhow::Result<Vec<Vec<Vec<u8>>>> {
    let mut members = (0..usize::try_from(genesis.federation.attest_quorum)?)
        .map(|index| {
            let number = u64::try_from(first_member + index)?;
            Ok(Wallet::offline(accounts::member_key(index)?, chain_id, number, 0))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    opening_blocks(
        &mut members,
        &made_up_openings(users)?,
        usize::try_from(genesis.params.max_msgs_per_tx)?,
        usize::try_from(genesis.params.max_duty_msgs_per_block)?,
    )
}

/// Opens users `0..users` of a running sidechain without parent chains (its genesis from
/// [`accounts::genesis`] with the devnet federation): a quorum of members attests
/// [`made_up_openings`], block by block; returns once every attestation is in a block (the last
/// of a quorum mints, in the block that holds it).
///
/// # Errors
/// When an attestation is refused (the error names why) or the openings do not mint in time.
pub async fn attest_openings(network: &Network, users: usize) -> anyhow::Result<()> {
    let client = network.client(0)?;
    let params = client.params().await?;
    let mut wallets = Vec::new();
    for member in 0..usize::try_from(accounts::attest_quorum(accounts::FEDERATION_MEMBERS))? {
        wallets.push(Wallet::load(&client, accounts::member_key(member)?).await?);
    }
    let facts = made_up_openings(users)?;
    let blocks = opening_blocks(
        &mut wallets,
        &facts,
        usize::try_from(params.max_msgs_per_tx)?,
        usize::try_from(params.max_duty_msgs_per_block)?,
    )?;
    let mut last = 0;
    for txs in blocks {
        let mut hashes = Vec::new();
        for tx in txs {
            let checked = client.broadcast_sync(tx).await?;
            anyhow::ensure!(checked.code == 0, "an opening attestation was refused: {}", checked.log);
            hashes.push(checked.hash);
        }
        // The next group waits for this one's inclusion, so no member exceeds its duty limit.
        for hash in hashes {
            let included = client.wait_for_tx(hash, OPENING_TIMEOUT).await?;
            anyhow::ensure!(included.code == 0, "an opening attestation failed: {}", included.log);
            last = last.max(included.height);
        }
    }
    // Every validator holds the openings before anyone reads them there (validator 0 saw them
    // first; another may still be a block behind).
    for index in 0..network.validators().len() {
        network.client(index)?.wait_for_height(last, OPENING_TIMEOUT).await?;
    }
    Ok(())
}

/// Opens users `0..users` of a running [`System`] by real deposits: for each, the regtest miner
/// pays the peg [`OPENING_SAT`] with the user's memo and anvil's dev account deposits
/// [`OPENING_WEI`] to the vault; both parent chains then mine until the relayers have attested
/// every one. Returns once all are minted.
///
/// # Errors
/// When a parent chain refuses a deposit or the chain does not mint them in time (naming which).
pub async fn deposit_openings(system: &mut System, users: usize) -> anyhow::Result<()> {
    if users == 0 {
        return Ok(());
    }
    // One mature coinbase per Bitcoin deposit (the miner pays each from its own).
    system.parents.btcd.mine(u32::try_from(users)?).await?;
    let mut bitcoin = Vec::new();
    for index in 0..users {
        let recipient = user_key(index)?.address();
        let txid = system.deposit_btc(&recipient, OPENING_SAT).await.with_context(|| format!("user {index}'s BTC"))?;
        bitcoin.push(txid);
        let wei = ferry_parent_chains::ethereum::U256::from(OPENING_WEI);
        system.parents.anvil.deposit_eth(&recipient, wei).await.with_context(|| format!("user {index}'s ETH"))?;
    }
    let interval = Duration::from_millis(300);
    for (index, txid) in bitcoin.iter().enumerate() {
        let record = system.wait_for_deposit(txid, 0, interval, OPENING_TIMEOUT).await?;
        anyhow::ensure!(
            record.status == ferry_types::deposit_record::DepositStatus::Minted,
            "user {index}'s opening deposit btc:{txid}:0 was not minted: {record:?}"
        );
        let recipient = user_key(index)?.address();
        system.wait_for_balance(&recipient, &Denom::wei(), OPENING_WEI, interval, OPENING_TIMEOUT).await?;
    }
    Ok(())
}
