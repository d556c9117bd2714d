//! Keeping and broadcasting the Bitcoin exit disbursals (issue 17): every relayer that talks to
//! Bitcoin — a member's or a `--deliver-only` one — keeps each signed disbursal the chain shows
//! (the covering one, and the ones derived for the release in flight, which become valid if that
//! release confirms) in `relayer_exits`, and steps each one that can still confirm
//! ([`ferry_parent_chains::disbursal::advance`]): nothing before its lock height; then, while
//! every reserve UTXO it spends is unspent, its transactions in the order they become valid. A
//! disbursal whose input a later release spent is marked dead.
//!
//! The disbursal is read from a node without a proof: what is broadcast is the federation's
//! signed transactions, which Bitcoin itself checks (a lying node can only make the relayer send
//! something nodes refuse, or a disbursal that was valid anyway). Kept rows need no sidechain: a
//! relayer broadcasts them with the sidechain gone, which is when they matter.

use ferry_parent_chains::disbursal::{DisbursalStep, advance};
use ferry_types::query::{BtcExitStatus, EXIT_BTC_PATH};
use serde_json::json;

use super::Delivery;

/// The states a kept disbursal can be in.
pub const STATES: [&str; 5] = ["kept", "intermediate_pending", "fan_outs_pending", "done", "dead"];

fn state_of(step: &DisbursalStep) -> &'static str {
    match step {
        DisbursalStep::Locked { .. } => "kept",
        DisbursalStep::Dead { .. } => "dead",
        DisbursalStep::IntermediatePending { .. } => "intermediate_pending",
        DisbursalStep::FanOutsPending { .. } => "fan_outs_pending",
        DisbursalStep::Done => "done",
    }
}

impl Delivery {
    /// One round: keep the disbursals the chain shows (when it answers), then step each kept one.
    ///
    /// # Errors
    /// When the database cannot be read or written (a node that does not answer is logged).
    pub async fn exits_round(&self) -> anyhow::Result<()> {
        let Some(bitcoin) = &self.bitcoin else { return Ok(()) };
        if let Err(error) = self.keep_exits().await {
            tracing::debug!(target: "ferry_relayer::exits", error = format!("{error:#}"), "no new exit disbursal learnt this round");
        }
        let mut opens_in: Option<i64> = None;
        let mut counts = std::collections::BTreeMap::new();
        for (disbursal, state) in self.store.live_exits().await? {
            let step = match advance(&bitcoin.rpc, &disbursal).await {
                Ok(step) => step,
                Err(error) => {
                    tracing::warn!(target: "ferry_relayer::exits", exit = disbursal.exit, error = %error, "exit disbursal not stepped; will retry");
                    *counts.entry(state).or_insert(0) += 1;
                    continue;
                }
            };
            let next = state_of(&step);
            if let DisbursalStep::Locked { tip, lock_height } = &step {
                let blocks = i64::from(*lock_height).saturating_sub(i64::try_from(*tip).unwrap_or(i64::MAX));
                opens_in = Some(opens_in.map_or(blocks, |other| other.max(blocks)));
            }
            if next != state {
                let detail = match &step {
                    DisbursalStep::Dead { spent } => json!({ "spent": spent }),
                    DisbursalStep::IntermediatePending { txid } => json!({ "intermediate": txid.to_string() }),
                    DisbursalStep::FanOutsPending { pending } => json!({ "pending": pending }),
                    _ => json!({}),
                };
                self.store.set_exit_state(disbursal.exit, next, &detail).await?;
                if matches!(step, DisbursalStep::Dead { .. }) {
                    tracing::info!(target: "ferry_relayer::exits", exit = disbursal.exit, "exit disbursal superseded: a later release spent its reserve");
                } else {
                    tracing::warn!(target: "ferry_relayer::exits", exit = disbursal.exit, state = next, "EXIT DISBURSAL BROADCAST: its lock height passed with its reserve unspent");
                }
            }
            *counts.entry(next.to_owned()).or_insert(0) += 1;
        }
        self.metrics.exit_opens_in_blocks.set(opens_in.unwrap_or(-1));
        for state in STATES {
            self.metrics.exit_disbursals.with_label_values(&[state]).set(counts.get(state).copied().unwrap_or(0));
        }
        Ok(())
    }

    /// Keeps the covering disbursal and the signed ones derived for releases in flight. One
    /// already kept is not read again (its claims and signatures are the round's largest read).
    async fn keep_exits(&self) -> anyhow::Result<()> {
        let status: BtcExitStatus = self.chain.query(EXIT_BTC_PATH, None).await?.unwrap_or_default();
        let shown: Vec<u64> = status.covering.into_iter().chain(status.candidates).collect();
        let kept = self.store.kept_exit_ids(&shown).await?;
        for id in shown.into_iter().filter(|id| !kept.contains(id)) {
            // A candidate not signed yet is kept once it is.
            let Ok(disbursal) = self.chain.signed_disbursal(id).await else { continue };
            if self.store.keep_exit(&disbursal).await? {
                tracing::info!(target: "ferry_relayer::exits", exit = id, lock_height = disbursal.lock_height, payouts = disbursal.payouts.len(), "exit disbursal kept");
            }
        }
        Ok(())
    }
}
