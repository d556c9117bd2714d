//! Pruning: a node that keeps only its recent history. After each Commit the node asks for the
//! versions below `height - min_retain_blocks + 1` to go (the same height it hands CometBFT as
//! `retain_height`, so blocks and state age out together); a thread of its own deletes them in
//! short store transactions ([`Store::prune`]), so Commit never waits for more than one of them.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;
use crate::store::Store;

/// Entries one pruning transaction deletes at most.
const PASS_BUDGET: usize = 5_000;

/// The oldest height to keep after committing `height` with `min_retain_blocks` kept (0 keeps
/// everything, as does a chain not yet that long). Also CometBFT's `retain_height`, where 0
/// means "prune nothing".
pub fn retain_height(height: u64, min_retain_blocks: u64) -> u64 {
    if min_retain_blocks == 0 || height < min_retain_blocks { 0 } else { height - min_retain_blocks + 1 }
}

/// The handle to the pruning thread; dropping it ends the thread after its current pass.
pub struct Pruner {
    min_retain_blocks: u64,
    requests: Mutex<Sender<u64>>,
}

impl Pruner {
    /// Starts the thread pruning `store`, keeping `min_retain_blocks` heights.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(store: Arc<Store>, min_retain_blocks: u64, metrics: Metrics) -> std::io::Result<Self> {
        let (requests, received) = channel();
        std::thread::Builder::new().name("pruner".to_owned()).spawn(move || run(&store, &received, &metrics))?;
        Ok(Pruner { min_retain_blocks, requests: Mutex::new(requests) })
    }

    /// How many heights the node keeps.
    pub fn min_retain_blocks(&self) -> u64 {
        self.min_retain_blocks
    }

    /// Called once `height` is committed: asks for what falls out of the window to go, and
    /// returns the retain height to hand CometBFT.
    pub fn committed(&self, height: u64) -> u64 {
        let keep_from = retain_height(height, self.min_retain_blocks);
        if keep_from > 0 {
            // The thread only ends with the node; a send to a finished thread changes nothing.
            let _ = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(keep_from);
        }
        keep_from
    }
}

fn run(store: &Store, requests: &Receiver<u64>, metrics: &Metrics) {
    while let Ok(mut below) = requests.recv() {
        // Only the newest request matters: each covers the ones before it.
        while let Ok(newer) = requests.try_recv() {
            below = below.max(newer);
        }
        loop {
            match store.prune(below, PASS_BUDGET) {
                Ok(progress) => {
                    metrics.pruned_entries.inc_by(u64::try_from(progress.deleted).unwrap_or(u64::MAX));
                    if progress.done {
                        break;
                    }
                }
                Err(error) => {
                    // History left behind costs disk, not safety: try again at the next Commit.
                    tracing::error!(%error, below, "pruning pass failed");
                    break;
                }
            }
        }
        metrics.pruned_below.set(i64::try_from(below).unwrap_or(i64::MAX));
        tracing::debug!(below, "pruned");
    }
}

#[cfg(test)]
mod tests {
    use super::retain_height;

    #[test]
    fn the_retain_height_keeps_exactly_the_window() {
        assert_eq!(retain_height(500, 0), 0, "0 keeps everything");
        assert_eq!(retain_height(99, 100), 0, "a chain shorter than the window keeps everything");
        assert_eq!(retain_height(100, 100), 1);
        assert_eq!(retain_height(500, 100), 401, "heights 401..=500 are 100 heights");
    }
}
