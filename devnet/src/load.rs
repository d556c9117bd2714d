//! Load generation: pre-signed transactions submitted to every validator, and the committed
//! throughput measured from the blocks themselves (transaction counts and BFT header times).
//!
//! The generator paces itself. At most a window of transactions is in flight (offered and not yet
//! seen in a committed block), below the validators' mempool capacity, so the load keeps the
//! mempools stocked without filling them: a full mempool does not only refuse offers, it can
//! also drop a transaction CheckTx has just admitted (CometBFT checks its capacity again after
//! CheckTx), which leaves a gap in that account's sequence. Should a mempool be full anyway, the
//! transaction is offered again after a pause that doubles while it stays full (CometBFT keeps a
//! refused-for-fullness transaction out of its cache, so offering it again is right); a lane
//! never skips a sequence number. Any other refusal stops its lane and fails the run, and so does
//! a run whose committed count differs from the submitted count: a figure is only reported for
//! the whole work, so Ferry and the baselines are compared on the same committed transactions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_client::{ClientError, FerryClient, Wallet};
use ferry_types::{Address, Coin, Denom};
use futures::future::join_all;
use tendermint_rpc::Client;
use tokio::sync::Semaphore;

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
    /// The most transactions in flight (offered, not yet seen committed) at any time.
    pub window: usize,
    /// Times a full mempool made a lane pause and offer a transaction again.
    pub mempool_full_retries: usize,
    /// Transactions in committed blocks with code 0.
    pub committed: usize,
    /// First and last block holding load.
    pub blocks: (u64, u64),
    /// BFT seconds from the commit of the block before the first loaded block to the commit of
    /// the last loaded block (the header times of the first loaded block and of the block after
    /// the last).
    pub seconds: f64,
    /// Wall-clock seconds from the first submission until the last transaction was seen committed.
    pub wall_seconds: f64,
}

impl LoadReport {
    /// Committed transactions per second of BFT time (block header times).
    pub fn tx_per_second(&self) -> f64 {
        if self.seconds > 0.0 { self.committed as f64 / self.seconds } else { 0.0 }
    }

    /// Committed transactions per wall-clock second, submission included.
    pub fn tx_per_wall_second(&self) -> f64 {
        if self.wall_seconds > 0.0 { self.committed as f64 / self.wall_seconds } else { 0.0 }
    }

    /// Blocks from the first to the last holding load.
    pub fn block_count(&self) -> u64 {
        self.blocks.1.saturating_sub(self.blocks.0) + 1
    }
}

/// A lane's first pause before offering again a transaction a full mempool refused; each
/// further refusal of the same transaction doubles it, up to [`MEMPOOL_FULL_MAX_PAUSE`]. The
/// backoff keeps hundreds of waiting lanes from flooding the validators' RPC with offers that
/// only steal the CPU from the blocks being measured.
const MEMPOOL_FULL_FIRST_PAUSE: Duration = Duration::from_millis(25);
/// The longest pause between two offers of one transaction (below a block interval, so the
/// mempool refills as soon as a block drains it).
const MEMPOOL_FULL_MAX_PAUSE: Duration = Duration::from_millis(400);
/// How long one transaction may keep meeting a full mempool before the run gives up.
const MEMPOOL_FULL_GIVE_UP: Duration = Duration::from_secs(120);
/// How long the run waits for a new committed transaction before it stops waiting.
const STALL: Duration = Duration::from_secs(15);
/// How often the committed blocks are read.
const POLL: Duration = Duration::from_millis(50);

/// Whether CometBFT refused a transaction only because its mempool is full (retry later).
fn mempool_full(text: &str) -> bool {
    text.contains("mempool is full")
}

/// Whether CometBFT already holds the transaction (an earlier offer got in after all).
fn already_known(text: &str) -> bool {
    text.contains("tx already exists in cache")
}

/// Submits `load` to the validators (lane `i` to validator `i mod n`, each lane in order, at
/// most `window` transactions in flight, pausing while a mempool is full) and measures the
/// committed throughput. Waits until every submitted transaction is committed, or nothing new
/// is committed for 15 s. `window` should stay below the validators' mempool capacity (each
/// validator's mempool holds every transaction in flight, by gossip).
///
/// # Errors
/// On RPC failures; when CheckTx refuses a transaction for any reason but a full mempool (the
/// refusals are counted by reason in the error); when the committed count differs from the
/// submitted count.
pub async fn run(urls: &[String], load: Load, window: usize) -> anyhow::Result<LoadReport> {
    let clients = urls.iter().map(|url| FerryClient::new(url)).collect::<Result<Vec<_>, _>>()?;
    let first = clients.first().context("no validators")?;
    let start_height = first.latest_height().await?;
    let submitted = load.len();
    let window = window.clamp(1, Semaphore::MAX_PERMITS);
    let in_flight = Arc::new(Semaphore::new(window));
    let started = Instant::now();
    let lanes = load.lanes.into_iter().enumerate().map(|(index, lane)| {
        let client = clients.get(index % clients.len()).cloned();
        let in_flight = in_flight.clone();
        async move {
            match client {
                Some(client) => Submission::submit(&client, &in_flight, lane).await,
                None => Submission::default(),
            }
        }
    });
    let submission = join_all(lanes);
    let watch = watch_commits(first, start_height, submitted, &in_flight);
    tokio::pin!(submission, watch);

    // Commits are counted while the lanes submit: each one frees a place in the window.
    let mut lanes_done: Option<Submission> = None;
    let commits = loop {
        tokio::select! {
            outcomes = &mut submission, if lanes_done.is_none() => {
                let total = Submission::total(outcomes);
                anyhow::ensure!(
                    total.refusals.is_empty(),
                    "{} of {submitted} transactions were not admitted, so the run would measure less work than it was given:\n{}",
                    submitted - total.admitted,
                    total.describe_refusals()
                );
                lanes_done = Some(total);
            }
            commits = &mut watch => break commits?,
        }
    };
    let Some(lanes) = lanes_done else {
        anyhow::bail!(
            "nothing was committed for {STALL:?} while lanes still waited to submit ({} of {submitted} committed): not a valid run",
            commits.committed
        );
    };
    anyhow::ensure!(
        commits.committed == submitted,
        "{} transactions committed of {submitted} submitted ({} admitted): not a valid run",
        commits.committed,
        lanes.admitted
    );
    let (first_loaded, last_loaded) = commits.blocks.context("no transaction was committed")?;

    // A header's time is the weighted median of the validators' precommit times for the block
    // before it: the header of block h + 1 dates the commit of block h. The loaded blocks
    // therefore run from the header of the first (the commit of the block before it) to the
    // header of the block after the last (the last one's commit).
    let after_last = last_loaded + 1;
    let waiting = Instant::now();
    while first.latest_height().await? < after_last {
        anyhow::ensure!(
            waiting.elapsed() < STALL,
            "block {after_last}, which dates the commit of the last loaded block, did not come in {STALL:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    let time_of = |height: u64| {
        let client = first.clone();
        async move {
            let header = client.rpc().header(tendermint::block::Height::try_from(height)?).await?.header;
            anyhow::Ok(header.time)
        }
    };
    let begin = time_of(first_loaded).await?;
    let end = time_of(after_last).await?;
    let seconds = end.duration_since(begin).map(|d| d.as_secs_f64()).unwrap_or_default();
    Ok(LoadReport {
        submitted,
        admitted: lanes.admitted,
        window,
        mempool_full_retries: lanes.retries,
        committed: commits.committed,
        blocks: (first_loaded, last_loaded),
        seconds,
        wall_seconds: commits.last_seen.duration_since(started).as_secs_f64(),
    })
}

/// What the committed blocks held of the load.
struct Commits {
    /// Transactions with code 0.
    committed: usize,
    /// First and last block holding any.
    blocks: Option<(u64, u64)>,
    /// When the last of them was seen committed.
    last_seen: Instant,
}

/// Reads the blocks after `start_height` as they are committed, counting transactions with
/// code 0 and giving their places in the window back, until `expected` are committed or
/// nothing new is committed for [`STALL`].
///
/// # Errors
/// RPC failures.
async fn watch_commits(
    client: &FerryClient,
    start_height: u64,
    expected: usize,
    in_flight: &Semaphore,
) -> anyhow::Result<Commits> {
    let mut commits = Commits { committed: 0, blocks: None, last_seen: Instant::now() };
    let mut next_height = start_height + 1;
    while commits.committed < expected && commits.last_seen.elapsed() < STALL {
        let latest = client.latest_height().await?;
        while next_height <= latest {
            let height = tendermint::block::Height::try_from(next_height)?;
            let results = match client.rpc().block_results(height).await {
                Ok(results) => results,
                // The newest block is stored before its results are: read it on the next round.
                Err(_) if next_height == latest => break,
                Err(error) => return Err(error).with_context(|| format!("block_results at height {next_height}")),
            };
            let ok = results.txs_results.unwrap_or_default().iter().filter(|r| r.code.is_ok()).count();
            if ok > 0 {
                let first = commits.blocks.map_or(next_height, |(first, _)| first);
                commits.blocks = Some((first, next_height));
                commits.committed += ok;
                commits.last_seen = Instant::now();
                in_flight.add_permits(ok);
            }
            next_height += 1;
        }
        if commits.committed < expected {
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(commits)
}

/// Offers `tx` once through `broadcast_tx_sync`: `None` when CheckTx admitted it, else the
/// refusal — CheckTx's code and log, or what the node said in its JSON-RPC error, which is where
/// CometBFT says "mempool is full" or "tx already exists in cache".
async fn broadcast(client: &FerryClient, tx: Vec<u8>) -> Option<Refusal> {
    match client.broadcast_sync(tx).await {
        Ok(outcome) if outcome.code == 0 => None,
        Ok(outcome) => Some(Refusal {
            kind: format!("CheckTx code {}", outcome.code),
            text: outcome.log.split(';').next().unwrap_or_default().to_owned(),
        }),
        Err(ClientError::Rpc { url, reason, .. }) => {
            Some(Refusal { kind: format!("RPC error from {url}"), text: reason })
        }
        Err(error) => Some(Refusal { kind: format!("RPC error from {}", client.url()), text: error.to_string() }),
    }
}

/// Why a transaction was not admitted.
struct Refusal {
    /// The class of the refusal (a CheckTx code, or an RPC error from one node).
    kind: String,
    /// What the node said.
    text: String,
}

/// The refusals of one class: how many, and the first one's words.
#[derive(Default)]
struct RefusalCount {
    count: usize,
    example: String,
}

/// What one lane's submissions, or all of them, came to.
#[derive(Default)]
struct Submission {
    admitted: usize,
    retries: usize,
    refusals: BTreeMap<String, RefusalCount>,
}

impl Submission {
    /// The sum of the lanes' outcomes.
    fn total(lanes: Vec<Submission>) -> Submission {
        let mut total = Submission::default();
        for lane in lanes {
            total.admitted += lane.admitted;
            total.retries += lane.retries;
            for (kind, refusal) in lane.refusals {
                total.count(kind, refusal.example, refusal.count);
            }
        }
        total
    }

    /// One line per class of refusal: the count, the class and an example.
    fn describe_refusals(&self) -> String {
        self.refusals
            .iter()
            .map(|(kind, refusal)| format!("  {:>6} x {kind}  (e.g. {})", refusal.count, refusal.example))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Submission {
    /// Offers `lane`'s transactions in order, each once it has a place in the window
    /// (`in_flight`; the place is given back when the transaction is seen committed). The lane
    /// stops at the first refusal: the transactions after it could only meet future-sequence
    /// refusals.
    async fn submit(client: &FerryClient, in_flight: &Semaphore, lane: Vec<Vec<u8>>) -> Submission {
        let mut outcome = Submission::default();
        let total = lane.len();
        for (index, tx) in lane.into_iter().enumerate() {
            match in_flight.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => break, // the window is never closed; nothing left to wait for
            }
            if let Err(refusal) = outcome.offer(client, tx).await {
                outcome.count(refusal.kind, refusal.text, 1);
                let skipped = total - index - 1;
                if skipped > 0 {
                    outcome.count(
                        "not offered".to_owned(),
                        "an earlier transaction of its lane was refused".to_owned(),
                        skipped,
                    );
                }
                break;
            }
        }
        outcome
    }

    /// Counts `count` refusals of class `kind`, keeping the first example.
    fn count(&mut self, kind: String, example: String, count: usize) {
        let entry = self.refusals.entry(kind).or_default();
        if entry.count == 0 {
            entry.example = example;
        }
        entry.count += count;
    }

    /// Offers `tx` until CheckTx admits it (or already holds it), pausing with a doubling
    /// backoff while the mempool is full; returns any other refusal.
    async fn offer(&mut self, client: &FerryClient, tx: Vec<u8>) -> Result<(), Refusal> {
        let started = Instant::now();
        let mut pause = MEMPOOL_FULL_FIRST_PAUSE;
        loop {
            match broadcast(client, tx.clone()).await {
                None => {
                    self.admitted += 1;
                    return Ok(());
                }
                Some(refusal) if already_known(&refusal.text) => {
                    self.admitted += 1;
                    return Ok(());
                }
                Some(refusal) if mempool_full(&refusal.text) => {
                    if started.elapsed() >= MEMPOOL_FULL_GIVE_UP {
                        return Err(Refusal {
                            kind: "mempool full".to_owned(),
                            text: format!("still full after {MEMPOOL_FULL_GIVE_UP:?}: {}", refusal.text),
                        });
                    }
                    self.retries += 1;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MEMPOOL_FULL_MAX_PAUSE);
                }
                Some(refusal) => return Err(refusal),
            }
        }
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
