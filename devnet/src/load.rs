//! Load generation: pre-signed transactions submitted to every validator, and the committed
//! throughput measured from the blocks themselves (transaction counts and BFT header times).
//!
//! The generator paces itself: a transaction a full mempool refuses is offered again after a
//! pause (CometBFT keeps a refused-for-fullness transaction out of its cache), so a lane never
//! skips a sequence number and every submitted transaction is committed. A run whose committed
//! count differs from the submitted count is an error, not a figure: Ferry and the baselines
//! are compared on the same committed work.

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
    /// Transactions submitted (each until admitted: equal to the committed count in a valid run).
    pub submitted: usize,
    /// Transactions CheckTx admitted.
    pub admitted: usize,
    /// Times a full mempool made a lane pause and offer a transaction again.
    pub mempool_full_retries: usize,
    /// Transactions in committed blocks with code 0.
    pub committed: usize,
    /// First and last block holding load.
    pub blocks: (u64, u64),
    /// Seconds between the block before the first loaded block and the last loaded block (BFT time).
    pub seconds: f64,
    /// Wall-clock seconds from the first submission until the last transaction was seen committed.
    pub wall_seconds: f64,
}

/// How long a lane pauses before offering a transaction a full mempool refused again.
const MEMPOOL_FULL_PAUSE: Duration = Duration::from_millis(50);
/// How often one transaction may meet a full mempool before the run gives up.
const MEMPOOL_FULL_ATTEMPTS: usize = 2_400;

/// Whether CometBFT refused a transaction only because its mempool is full (retry later).
fn mempool_full(text: &str) -> bool {
    text.contains("mempool is full")
}

/// Whether CometBFT already holds the transaction (an earlier offer got in after all).
fn already_known(text: &str) -> bool {
    text.contains("tx already exists in cache")
}

impl LoadReport {
    /// Committed transactions per second.
    pub fn tx_per_second(&self) -> f64 {
        if self.seconds > 0.0 { self.committed as f64 / self.seconds } else { 0.0 }
    }
}

/// Submits `load` to the validators (lane `i` to validator `i mod n`, each lane in order,
/// pausing while a mempool is full) and measures the committed throughput. Waits until every
/// submitted transaction is committed or nothing new is committed for 15 s.
///
/// # Errors
/// On RPC failures; when CheckTx refuses a transaction for any reason but a full mempool (the
/// reasons are counted in the error); when fewer transactions are committed than submitted.
pub async fn run(urls: &[String], load: Load) -> anyhow::Result<LoadReport> {
    let clients = urls.iter().map(|url| FerryClient::new(url)).collect::<Result<Vec<_>, _>>()?;
    let first = clients.first().context("no validators")?;
    let start_height = first.latest_height().await?;
    let submitted = load.len();
    let started = Instant::now();
    let lanes = load.lanes.into_iter().enumerate().map(|(index, lane)| {
        let client = clients.get(index % clients.len()).cloned();
        async move {
            let mut outcome = LaneOutcome::default();
            let Some(client) = client else { return outcome };
            for tx in lane {
                outcome.offer(&client, tx).await;
            }
            outcome
        }
    });
    let mut admitted = 0usize;
    let mut mempool_full_retries = 0usize;
    let mut refusals = BTreeMap::<String, usize>::new();
    for lane in join_all(lanes).await {
        admitted += lane.admitted;
        mempool_full_retries += lane.retries;
        for (reason, count) in lane.refusals {
            *refusals.entry(reason).or_default() += count;
        }
    }
    anyhow::ensure!(
        refusals.is_empty(),
        "{} of {submitted} transactions were refused, so the run measures less work than it was given: {refusals:?}",
        submitted - admitted
    );

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
    let wall_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        committed == submitted,
        "{committed} transactions committed of {submitted} submitted ({admitted} admitted): not a valid run"
    );
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
    Ok(LoadReport {
        submitted,
        admitted,
        mempool_full_retries,
        committed,
        blocks: (first_loaded, last_loaded),
        seconds,
        wall_seconds,
    })
}

/// What one lane's submissions came to.
#[derive(Default)]
struct LaneOutcome {
    admitted: usize,
    retries: usize,
    refusals: BTreeMap<String, usize>,
}

impl LaneOutcome {
    /// Offers `tx` until CheckTx admits it (or already holds it), pausing while the mempool is
    /// full; any other refusal is counted by reason.
    async fn offer(&mut self, client: &FerryClient, tx: Vec<u8>) {
        for _ in 0..MEMPOOL_FULL_ATTEMPTS {
            let refusal = match client.broadcast_sync(tx.clone()).await {
                Ok(outcome) if outcome.code == 0 => None,
                Ok(outcome) => {
                    Some(format!("code {}: {}", outcome.code, outcome.log.split(';').next().unwrap_or_default()))
                }
                Err(error) => Some(error.to_string()),
            };
            match refusal {
                None => {
                    self.admitted += 1;
                    return;
                }
                Some(text) if already_known(&text) => {
                    self.admitted += 1;
                    return;
                }
                Some(text) if mempool_full(&text) => {
                    self.retries += 1;
                    tokio::time::sleep(MEMPOOL_FULL_PAUSE).await;
                }
                Some(text) => {
                    *self.refusals.entry(text).or_default() += 1;
                    return;
                }
            }
        }
        *self.refusals.entry(format!("mempool still full after {MEMPOOL_FULL_ATTEMPTS} attempts")).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_mempool_is_retried() {
        assert!(mempool_full("Internal error: mempool is full: number of txs 5000 (max: 5000)"));
        assert!(!mempool_full("code 32: account sequence mismatch"));
        assert!(already_known("tx already exists in cache"));
    }
}
