//! Load generation: pre-signed transactions submitted to every validator, and the committed
//! throughput measured from the blocks themselves (transaction counts and BFT header times).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_client::{FerryClient, Wallet};
use ferry_types::{Address, Coin, Denom};
use futures::future::join_all;
use tendermint_rpc::Client;

use crate::accounts::user_key;

/// Transactions to submit: each lane is submitted in order to one validator, so sequences from
/// one account arrive in order.
#[derive(Clone, Debug)]
pub struct Load {
    /// Ordered lanes of raw transactions.
    pub lanes: Vec<Vec<Vec<u8>>>,
}

impl Load {
    /// Total number of transactions.
    pub fn len(&self) -> usize {
        self.lanes.iter().map(Vec::len).sum()
    }

    /// Whether there is nothing to submit.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the first transaction (all are the same size).
    pub fn tx_size(&self) -> usize {
        self.lanes.first().and_then(|lane| lane.first()).map_or(0, Vec::len)
    }
}

/// Signed transfers: `senders` genesis user accounts (account numbers `0..senders`) each send
/// `per_sender` transfers of 1 sat, sequences 0, 1, 2, …
///
/// # Errors
/// When signing fails.
pub fn ferry_transfers(chain_id: &str, senders: usize, per_sender: usize) -> anyhow::Result<Load> {
    let recipient = Address::from_bytes([0xbe; 20]);
    let fee = Coin::new(100, Denom::sat());
    let lanes = (0..senders)
        .map(|index| {
            let mut wallet = Wallet::offline(user_key(index)?, chain_id, u64::try_from(index)?, 0);
            (0..per_sender)
                .map(|_| Ok(wallet.sign_transfer(recipient, vec![Coin::new(1, Denom::sat())], &fee)?))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Load { lanes })
}

/// Transactions for CometBFT's `kvstore` (`key=value`), each exactly `size` bytes, in `lanes` lanes.
pub fn kvstore_writes(lanes: usize, per_lane: usize, size: usize) -> Load {
    let lanes = (0..lanes)
        .map(|lane| {
            (0..per_lane)
                .map(|index| {
                    let mut tx = format!("k{lane:05}x{index:06}=").into_bytes();
                    tx.resize(size.max(tx.len() + 1), b'v');
                    tx
                })
                .collect()
        })
        .collect();
    Load { lanes }
}

/// What a load run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Transactions submitted.
    pub submitted: usize,
    /// Transactions CheckTx admitted.
    pub admitted: usize,
    /// Why CheckTx refused the others (reason → count).
    pub refusals: BTreeMap<String, usize>,
    /// Transactions in committed blocks with code 0.
    pub committed: usize,
    /// First and last block holding load.
    pub blocks: (u64, u64),
    /// Seconds between the block before the first loaded block and the last loaded block (BFT time).
    pub seconds: f64,
}

impl LoadReport {
    /// Committed transactions per second.
    pub fn tx_per_second(&self) -> f64 {
        if self.seconds > 0.0 { self.committed as f64 / self.seconds } else { 0.0 }
    }
}

/// Submits `load` to the validators (lane `i` to validator `i mod n`) and measures the committed
/// throughput. Waits until every admitted transaction is committed or nothing new is committed
/// for 15 s.
///
/// # Errors
/// On RPC failures.
pub async fn run(urls: &[String], load: Load) -> anyhow::Result<LoadReport> {
    let clients = urls.iter().map(|url| FerryClient::new(url)).collect::<Result<Vec<_>, _>>()?;
    let first = clients.first().context("no validators")?;
    let start_height = first.latest_height().await?;
    let submitted = load.len();
    let lanes = load.lanes.into_iter().enumerate().map(|(index, lane)| {
        let client = clients.get(index % clients.len()).cloned();
        async move {
            let Some(client) = client else { return (0usize, BTreeMap::new()) };
            let mut admitted = 0;
            let mut refusals = BTreeMap::<String, usize>::new();
            for tx in lane {
                let reason = match client.broadcast_sync(tx).await {
                    Ok(outcome) if outcome.code == 0 => {
                        admitted += 1;
                        continue;
                    }
                    Ok(outcome) => {
                        format!("code {}: {}", outcome.code, outcome.log.split(';').next().unwrap_or_default())
                    }
                    Err(error) => error.to_string(),
                };
                *refusals.entry(reason).or_default() += 1;
            }
            (admitted, refusals)
        }
    });
    let mut admitted = 0usize;
    let mut refusals = BTreeMap::<String, usize>::new();
    for (lane_admitted, lane_refusals) in join_all(lanes).await {
        admitted += lane_admitted;
        for (reason, count) in lane_refusals {
            *refusals.entry(reason).or_default() += count;
        }
    }

    let mut committed = 0usize;
    let mut next_height = start_height + 1;
    let mut first_loaded: Option<u64> = None;
    let mut last_loaded = start_height;
    let mut last_progress = Instant::now();
    while committed < admitted && last_progress.elapsed() < Duration::from_secs(15) {
        // The newest block is stored before its results are: read up to the one below it.
        let latest = first.latest_height().await?.saturating_sub(1);
        while next_height <= latest {
            let results = first.rpc().block_results(tendermint::block::Height::try_from(next_height)?).await?;
            let ok = results.txs_results.unwrap_or_default().iter().filter(|r| r.code.is_ok()).count();
            if ok > 0 {
                first_loaded.get_or_insert(next_height);
                last_loaded = next_height;
                committed += ok;
                last_progress = Instant::now();
            }
            next_height += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first_loaded = first_loaded.context("no transaction was committed")?;
    let time_of = |height: u64| {
        let client = first.clone();
        async move {
            let header = client.rpc().header(tendermint::block::Height::try_from(height)?).await?.header;
            anyhow::Ok(header.time)
        }
    };
    let begin = time_of(first_loaded.saturating_sub(1).max(1)).await?;
    let end = time_of(last_loaded).await?;
    let seconds = end.duration_since(begin).map(|d| d.as_secs_f64()).unwrap_or_default();
    Ok(LoadReport { submitted, admitted, refusals, committed, blocks: (first_loaded, last_loaded), seconds })
}
