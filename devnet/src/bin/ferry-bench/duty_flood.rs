//! Duties under a paid-transfer flood: how many blocks a federation member's duty (a parent-height
//! report, fee-free) takes from broadcast to its block on a 4-validator network, with the
//! mempool idle (baseline) and while a flood of signed transfers keeps it half full. Proposals
//! put duties first (`ferry_app::block::proposal_order`); the goal is ≤ 2 blocks under the flood.

use std::time::Duration;

use ferry_client::{FerryClient, Wallet};
use ferry_devnet::{Network, NetworkSpec, Tools, accounts, load};

use ferry_types::msg::MsgAttestParentHeight;
use ferry_types::{Msg, ParentChain};

use crate::samples::Samples;

/// Duties timed per phase.
const DUTIES: usize = 20;

/// Sends [`DUTIES`] reports, members in turn, each once the previous is in a block; returns the
/// blocks each took (inclusion height − latest height at broadcast).
async fn duty_blocks(client: &FerryClient, first_report: u64) -> anyhow::Result<Vec<u64>> {
    let mut blocks = Vec::with_capacity(DUTIES);
    for sample in 0..DUTIES {
        let member = accounts::member_key(sample % accounts::FEDERATION_MEMBERS)?;
        let report = MsgAttestParentHeight {
            attester: member.address(),
            chain: ParentChain::Bitcoin,
            height: first_report + u64::try_from(sample)?,
        };
        let mut wallet = Wallet::load(client, member).await?;
        let tx = wallet.sign_fee_exempt(&[Msg::AttestParentHeight(report)])?;
        let sent_at = client.latest_height().await?;
        let included = client.broadcast_and_wait(tx, Duration::from_secs(60)).await?;
        anyhow::ensure!(included.code == 0, "duty refused: {}", included.log);
        blocks.push(included.height.saturating_sub(sent_at));
    }
    Ok(blocks)
}

/// Runs and prints both phases.
pub async fn run(senders: usize, per_sender: usize) -> anyhow::Result<()> {
    println!("\n== duties under a paid-transfer flood (4 validators, {senders} senders x {per_sender} transfers) ==");
    let mut spec = NetworkSpec::isolated("bench-duties", 4, accounts::genesis(senders, 4)?)?;
    spec.timeout_commit = Duration::from_millis(500);
    let chain_id = spec.chain_id.clone();
    let mut network = Network::create(spec, Tools::locate()?)?;
    network.start_all()?;
    network.wait_for_height(2, Duration::from_secs(60)).await?;
    ferry_devnet::funding::attest_openings(&network, senders).await?;
    let client = network.client(0)?;
    let idle = duty_blocks(&client, 1_000).await?;

    // The flood: every lane offers its transfers one after the other as fast as CheckTx admits
    // them (no pacing: the mempool fills), each lane to one validator in turn.
    let flood = load::ferry_transfers(&chain_id, senders, per_sender)?;
    let submitted = flood.len();
    let clients: Vec<FerryClient> = (0..4).map(|member| network.client(member)).collect::<Result<_, _>>()?;
    let start = client.latest_height().await?;
    let mut lanes = Vec::new();
    for (index, lane) in flood.lanes.into_iter().enumerate() {
        let lane_client = clients[index % clients.len()].clone();
        lanes.push(tokio::spawn(async move {
            for tx in lane {
                if lane_client.broadcast_sync(tx).await.is_err() {
                    break;
                }
            }
        }));
    }
    // Let the flood fill the mempool before the duties start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let under_flood = duty_blocks(&client, 2_000).await?;
    let end = client.latest_height().await?;
    for lane in lanes {
        lane.abort();
    }
    // Each sender's sequence counts its committed transfers.
    let mut committed = 0;
    for sender in 0..senders {
        let address = accounts::user_key(sender)?.address();
        committed += client.account(&address, None).await?.map_or(0, |account| account.sequence);
    }
    drop(network);

    let samples = |blocks: &[u64]| {
        let mut samples = Samples::default();
        for block in blocks {
            #[allow(clippy::cast_precision_loss)] // block counts are tiny
            samples.push(*block as f64);
        }
        samples
    };
    let (idle, flooded) = (samples(&idle), samples(&under_flood));
    println!("idle mempool (baseline):  blocks from broadcast to inclusion {}", idle.summary(0));
    println!(
        "under the flood:          blocks from broadcast to inclusion {}  ({submitted} transfers offered, {committed} committed by block {end}, from block {start})",
        flooded.summary(0)
    );
    let worst = flooded.percentile(100);
    println!(
        "ratio flood / idle (worst): {:.2}; goal <= 2 blocks under the flood: {}",
        worst / idle.percentile(100).max(1.0),
        if worst <= 2.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
