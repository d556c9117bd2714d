//! Ethereum exit root per block at a million claims (issue 17): what a block costs the chain to
//! know the root of the claims it leaves (`ExitTree::root_with`, the node's tree untouched) and
//! the node to follow it at Commit (`ExitTree::set` per changed claim), for 10, 100 and 1,000
//! changed claims — next to a full rebuild of the tree from every claim, measured in the same run
//! (the baseline: recomputing the root from scratch for each heartbeat). Figures only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_types::exit_tree::{ExitTree, Hash, keccak256};

use crate::bls::mean_micros;

/// Claims in the tree.
const CLAIMS: u32 = 1_000_000;
/// Claims a block changes.
const CHANGED: [u32; 3] = [10, 100, 1_000];
/// Each time is the mean over as many runs as fit in this budget (at least three).
const BUDGET: Duration = Duration::from_millis(1500);

/// A leaf standing for claim `index` in version `version` (any 32 bytes do: only hashing counts).
fn leaf(index: u32, version: u32) -> Hash {
    keccak256(&[index.to_be_bytes(), version.to_be_bytes()].concat())
}

/// Runs and prints.
pub fn run() {
    println!("== exit root per block at {CLAIMS} claims (in process, one thread) ==");
    let started = Instant::now();
    let tree = ExitTree::from_leaves((0..CLAIMS).map(|index| (index, leaf(index, 0))));
    let rebuild_ms = started.elapsed().as_secs_f64() * 1e3;
    println!("baseline: full rebuild of the tree from every claim: {rebuild_ms:.0} ms");
    println!("changed claims | root of the block (root_with) | follow at Commit (set each) | vs. rebuild");
    for changed in CHANGED {
        // Spread over the tree, as a block's accounts are.
        let stride = CLAIMS / changed;
        let changes: BTreeMap<u32, Hash> = (0..changed).map(|k| (k * stride, leaf(k * stride, 1))).collect();
        let root_micros = mean_micros(BUDGET, || {
            std::hint::black_box(tree.root_with(&changes));
        });
        let mut following = tree.clone();
        let mut version = 1;
        let follow_micros = mean_micros(BUDGET, || {
            version += 1;
            for &index in changes.keys() {
                following.set(index, leaf(index, version));
            }
        });
        let per_block_ms = (root_micros + follow_micros) / 1e3;
        println!(
            "{changed:>14} | {:>25.2} ms | {:>24.2} ms | {:.4}x",
            root_micros / 1e3,
            follow_micros / 1e3,
            per_block_ms / rebuild_ms
        );
    }
}
