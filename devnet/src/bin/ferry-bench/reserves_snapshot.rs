//! Reserves snapshots at scale: what a relayer's Bitcoin snapshot costs when the peg holds 10,000
//! outputs, next to the same snapshot over 10 outputs, on the same PostgreSQL in the same run.
//!
//! A snapshot is a sum over the relayer's own peg index (`relayer_peg_outputs`), which the
//! scan fills block by block; the bench fills it the same way (`Store::index_peg_block`, blocks
//! of 500 outputs, half of them later spent) and times `Store::peg_holdings_at` at the last
//! height. The goal is at most 1 s per relayer.

use std::time::Instant;

use ferry_devnet::postgres::PgServer;
use ferry_relayer::store::{PegFlows, Store};

/// Outputs per indexed block.
const OUTPUTS_PER_BLOCK: usize = 500;
/// Timed snapshots per size (the median is printed).
const ROUNDS: usize = 21;

/// Indexes `outputs` peg outputs (half spent again) into a fresh database; returns the median
/// snapshot time in milliseconds and the sum it found.
async fn snapshot_ms(server: &PgServer, outputs: usize) -> anyhow::Result<(f64, u64)> {
    let database = server.scratch_database(&format!("bench_snapshot_{outputs}")).await?;
    let store = Store::connect(database.url()).await?;
    let mut height = 1;
    let mut created = Vec::new();
    for block in 0..outputs.div_ceil(OUTPUTS_PER_BLOCK) {
        let count = OUTPUTS_PER_BLOCK.min(outputs - block * OUTPUTS_PER_BLOCK);
        let flows = PegFlows {
            created: (0..count as u64).map(|i| (format!("{block:032x}{i:032x}"), 0, 10_000 + i)).collect(),
            spent: Vec::new(),
        };
        created.extend(flows.created.iter().map(|(txid, vout, _)| (txid.clone(), *vout)));
        store.index_peg_block(height, &flows).await?;
        height += 1;
    }
    // Every other output spent in one later block.
    let spent = PegFlows { created: Vec::new(), spent: created.iter().step_by(2).cloned().collect() };
    store.index_peg_block(height, &spent).await?;
    let mut times = Vec::with_capacity(ROUNDS);
    let mut held = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        held = store.peg_holdings_at(height).await?;
        times.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times.get(ROUNDS / 2).copied().unwrap_or_default(), held))
}

/// Runs and prints the comparison.
pub async fn run() -> anyhow::Result<()> {
    println!("\n== reserves snapshot (a relayer's peg index, PostgreSQL) ==");
    let server = PgServer::from_env_or_start(None).await?;
    let (small_ms, small_held) = snapshot_ms(&server, 10).await?;
    let (large_ms, large_held) = snapshot_ms(&server, 10_000).await?;
    println!("10 peg outputs (5 unspent, {small_held} sat):          snapshot {small_ms:>8.2} ms (median of {ROUNDS})");
    println!("10,000 peg outputs (5,000 unspent, {large_held} sat): snapshot {large_ms:>8.2} ms (median of {ROUNDS})");
    println!(
        "ratio 10,000 / 10 outputs: {:.2}; goal <= 1 s per relayer: {}",
        large_ms / small_ms.max(f64::MIN_POSITIVE),
        if large_ms <= 1_000.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
