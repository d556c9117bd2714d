//! Rotation time on the whole system (`devnet::system`): the four devnet members propose
//! themselves again (a re-key); the dealer-free key generation runs through the chain, then the
//! hand-over — the vault's rotation on anvil and the reserves' migration on btcd, each attested —
//! until the federation switches. Printed in sidechain blocks and seconds from the proposal's
//! block, beside a baseline measured in the same run: `batch_interval` blocks at the run's mean
//! block time (the floor of any withdrawal).

use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_devnet::accounts::{member_key, user_key};
use ferry_devnet::system::System;
use ferry_parent_chains::ethereum::U256;
use ferry_signer::duty::post_duty;
use ferry_types::msg::federation::MsgProposeFederation;
use ferry_types::query::federation::{DKG_PATH, DkgPhase, DkgSession, HANDOVER_PATH, Handover};
use ferry_types::{Address, Msg};

/// A parent-chain block is mined this often while the bench waits.
const PARENT_BLOCK: Duration = Duration::from_millis(400);
/// How long the key generation and the hand-over may take together.
const ROTATION_WAIT: Duration = Duration::from_secs(300);
/// The devnet federation's size and the re-keyed one's threshold.
const MEMBERS: usize = 4;
const THRESHOLD: u32 = 3;

/// Runs one re-key of the devnet federation with reserves on both parent chains and prints its
/// phases.
///
/// # Errors
/// The system cannot start, a deposit or the proposal fails, or the rotation does not complete
/// in time.
pub async fn run() -> anyhow::Result<()> {
    let mut system = System::isolated("bench-rotation", 1).await?;
    let client = system.client(0)?;
    let user = user_key(0)?.address();
    // Reserves to hand over on both parent chains.
    let deposit = system.deposit_btc(&user, 100_000_000).await?;
    system.wait_for_deposit(&deposit, 0, PARENT_BLOCK, ROTATION_WAIT).await?;
    system.parents.anvil.deposit_eth(&user, U256::from(1_000_000_000_000_000_000u128)).await?;
    // Transaction fees paid in `sat`: what a migration's overhead takes beyond the fees deposits
    // prepaid comes from them, as on a live chain with traffic.
    let mut wallet = ferry_client::Wallet::load(&client, user_key(0)?).await?;
    let fee = ferry_types::Coin::new(30_000, ferry_types::Denom::sat());
    let paid = wallet
        .send(
            &client,
            member_key(0)?.address(),
            vec![ferry_types::Coin::new(1_000, ferry_types::Denom::sat())],
            &fee,
            ROTATION_WAIT,
        )
        .await?;
    anyhow::ensure!(paid.code == 0, "the fee-paying transfer: {}", paid.log);

    let members: Vec<Address> =
        (0..MEMBERS).map(|i| member_key(i).map(|key| key.address())).collect::<Result<_, _>>()?;
    let started = (Instant::now(), client.latest_height().await?);
    let mut proposed_at = 0;
    for proposer in 0..usize::try_from(THRESHOLD)? {
        let key = member_key(proposer)?;
        let msg = MsgProposeFederation { member: key.address(), members: members.clone(), threshold: THRESHOLD };
        let (_, height) = post_duty(&client, &key, &Msg::ProposeFederation(msg))
            .await
            .map_err(|e| anyhow::anyhow!("proposal: {e}"))?;
        proposed_at = proposed_at.max(height);
    }
    let proposed = Instant::now();

    let mut generated: Option<(DkgSession, Instant)> = None;
    let mut mined_at = Instant::now();
    let switched = loop {
        if generated.is_none()
            && let Some(session) = client.query::<DkgSession>(DKG_PATH, None).await?
            && !session.phase.is_running()
        {
            anyhow::ensure!(session.phase == DkgPhase::Complete, "the key generation ended {:?}", session.phase);
            generated = Some((session, Instant::now()));
        }
        if let Some((session, _)) = &generated {
            let path = format!("{HANDOVER_PATH}/{}", session.epoch);
            let handover: Option<Handover> = client.query(&path, None).await?;
            if let Some(handover) = handover.filter(|handover| handover.switched.is_some()) {
                break (handover, Instant::now());
            }
        }
        if proposed.elapsed() >= ROTATION_WAIT {
            let handover: Option<Handover> = client.query(HANDOVER_PATH, None).await?;
            anyhow::bail!(
                "no switch after {ROTATION_WAIT:?}; the key generation: {generated:?}; the hand-over: {handover:?}"
            );
        }
        if mined_at.elapsed() >= PARENT_BLOCK {
            system.mine_parents(1).await?;
            mined_at = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (session, generated_at) = generated.context("no key generation")?;
    let (handover, switched_at) = switched;
    let switch_height = handover.switched.unwrap_or_default();
    let run_blocks = client.latest_height().await?.saturating_sub(started.1);
    let block_seconds = started.0.elapsed().as_secs_f64() / run_blocks.max(1) as f64;
    let batch_interval = client.params().await?.withdrawals.batch_interval;
    let floor_seconds = batch_interval as f64 * block_seconds;
    let total = switched_at.duration_since(proposed).as_secs_f64();

    println!(
        "\n== federation rotation (re-key of {MEMBERS} members, threshold {THRESHOLD}; reserves on btcd and anvil; \
         parent block every {} ms) ==",
        PARENT_BLOCK.as_millis()
    );
    println!(
        "  floor: batch_interval {batch_interval} blocks x mean block {block_seconds:.3} s = {floor_seconds:.2} s  (baseline)"
    );
    println!(
        "  key generation   {:>4} blocks  {:>6.2} s",
        session.finished.unwrap_or_default().saturating_sub(session.started),
        generated_at.duration_since(proposed).as_secs_f64()
    );
    println!(
        "  hand-over        {:>4} blocks  {:>6.2} s  ({} migration batch(es), vault rotated)",
        switch_height.saturating_sub(handover.started),
        switched_at.duration_since(generated_at).as_secs_f64(),
        handover.migration_batches.len()
    );
    println!(
        "  proposal -> both chains attested  {:>4} blocks  {total:>6.2} s  ratio to floor {:.1}",
        switch_height.saturating_sub(proposed_at),
        total / floor_seconds
    );
    drop(system);
    Ok(())
}
