//! Every metric `ferry-signer run` exports, registered in one place. Names follow
//! `ferry_signer_<what>_<unit>`; labels are bounded (`chain`, `outcome`, `reason`), and every
//! series exists from the start at zero.

use ferry_daemon::metrics::MetricsRegistry;
pub use ferry_daemon::metrics::now_seconds;
use ferry_daemon::verified_reads::ReadGauges;
use ferry_types::query::federation::DkgSession;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

use crate::refusal::Reason;

/// Parent chains, as label values.
pub const CHAINS: [&str; 2] = ["btc", "eth"];
/// Signature outcomes, as label values: posted and included, refused by policy or the guard,
/// failed to post.
pub const OUTCOMES: [&str; 3] = ["signed", "refused", "failed"];

/// The signer's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: MetricsRegistry,
    /// Batches by outcome and parent chain.
    pub signatures: IntCounterVec,
    /// Refusals by reason.
    pub rejections: IntCounterVec,
    /// Seconds since the Unix epoch of the last signature included on the chain (0: none yet).
    pub last_signature: Gauge,
    /// Seconds since the last signature (updated when scraped; 0 while none yet).
    pub last_signature_age: Gauge,
    /// The sidechain's latest height seen.
    pub chain_height: IntGauge,
    /// Batches pending on the chain (signing or signed, not yet released).
    pub pending_batches: IntGauge,
    /// Pending batches still waiting for this member's signatures.
    pub awaiting_signature: IntGauge,
    /// Poll rounds that failed (chain unreachable, database down, federation mismatch).
    pub poll_errors: IntCounter,
    /// Seconds since the Unix epoch of the last complete poll round (for `/health`).
    pub last_poll: Gauge,
    /// Key generation steps by step (`register`, `deal`, `complain`, `confirm`) and outcome
    /// (`posted`, `failed`).
    pub dkg_steps: IntCounterVec,
    /// The latest key generation session seen (0: none).
    pub dkg_session: IntGauge,
    /// Its attempt.
    pub dkg_attempt: IntGauge,
    /// 1 for its phase, 0 for the others.
    pub dkg_phase: IntGaugeVec,
    /// Heartbeats by outcome (`posted`, `failed`).
    pub heartbeats: IntCounterVec,
    /// Seconds since the Unix epoch of this member's last included heartbeat (0: none).
    pub last_heartbeat: Gauge,
    /// The federation epoch this member signs for (-1: none — the chain's federation is not
    /// one it holds keys for).
    pub signing_epoch: IntGauge,
    /// What proven reads cost and which endpoints lied.
    pub proven_reads: ReadGauges,
    /// Rows of the audit log's head last anchored on the chain (0: none yet).
    pub audit_anchored_rows: IntGauge,
    /// When it was anchored (or found anchored), Unix seconds (0: never).
    pub audit_anchored_at: Gauge,
}

/// Key generation steps, as label values.
pub const DKG_STEPS: [&str; 4] = ["register", "deal", "complain", "confirm"];

impl Metrics {
    /// Creates and registers every metric, all label combinations initialised to zero.
    ///
    /// # Errors
    /// When a metric is malformed or registered twice.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = MetricsRegistry::new();
        let signatures = registry.int_counter_vec(
            "ferry_signer_signatures_total",
            "Batches signed and posted, refused, or failed to post",
            &["chain", "outcome"],
        )?;
        let rejections = registry.int_counter_vec(
            "ferry_signer_policy_rejections_total",
            "Batches refused, by reason",
            &["reason"],
        )?;
        let last_signature = registry.gauge(
            "ferry_signer_last_signature_timestamp_seconds",
            "When this signer's last signature was included on the chain (Unix seconds; 0: never)",
        )?;
        let last_signature_age = registry.gauge(
            "ferry_signer_last_signature_age_seconds",
            "Seconds since this signer's last signature was included (0: never)",
        )?;
        let chain_height = registry.int_gauge("ferry_signer_chain_height", "Latest sidechain height seen")?;
        let pending_batches =
            registry.int_gauge("ferry_signer_pending_batches", "Batches pending on the chain (signing or signed)")?;
        let awaiting_signature = registry.int_gauge(
            "ferry_signer_batches_awaiting_signature",
            "Batches in signing that this member has not signed yet",
        )?;
        let poll_errors = registry.int_counter("ferry_signer_poll_errors_total", "Poll rounds that failed")?;
        let last_poll = registry
            .gauge("ferry_signer_last_poll_timestamp_seconds", "When the last poll round completed (Unix seconds)")?;
        let dkg_steps = registry.int_counter_vec(
            "ferry_signer_dkg_steps_total",
            "Key generation steps this member posted, or failed to post",
            &["step", "outcome"],
        )?;
        let dkg_session =
            registry.int_gauge("ferry_signer_dkg_session", "The latest key generation session seen (0: none)")?;
        let dkg_attempt =
            registry.int_gauge("ferry_signer_dkg_attempt", "The latest key generation session's attempt")?;
        let dkg_phase = registry.int_gauge_vec(
            "ferry_signer_dkg_phase",
            "1 for the latest key generation session's phase, 0 for the others",
            &["phase"],
        )?;
        let heartbeats = registry.int_counter_vec(
            "ferry_signer_heartbeats_total",
            "Heartbeats this member posted (included) or failed to post",
            &["outcome"],
        )?;
        let last_heartbeat = registry.gauge(
            "ferry_signer_last_heartbeat_timestamp_seconds",
            "When this member's last heartbeat was included (Unix seconds; 0: never)",
        )?;
        let signing_epoch = registry.int_gauge(
            "ferry_signer_signing_epoch",
            "The federation epoch this member signs for (-1: none, it holds no keys for the chain's federation)",
        )?;
        signing_epoch.set(-1);
        let proven_reads = ReadGauges {
            unverified_answers: registry.int_gauge_vec(
                "ferry_signer_unverified_answers_total",
                "Answers of a sidechain endpoint whose proof did not verify against the light client's headers (a lying node)",
                &["endpoint"],
            )?,
            read_seconds: registry.gauge(
                "ferry_signer_proven_read_seconds",
                "Seconds spent in proven reads of the sidechain since start (round trips, header and Merkle proof checks)",
            )?,
        };
        let audit_anchored_rows = registry.int_gauge(
            "ferry_signer_audit_anchored_rows",
            "Rows of the signer audit log's head last anchored on the sidechain (0: none yet)",
        )?;
        let audit_anchored_at = registry.gauge(
            "ferry_signer_audit_anchored_timestamp_seconds",
            "When the signer audit log's head was last anchored on the sidechain (Unix seconds; 0: never)",
        )?;
        for outcome in ["posted", "failed"] {
            heartbeats.with_label_values(&[outcome]);
        }
        for step in DKG_STEPS {
            for outcome in ["posted", "failed"] {
                dkg_steps.with_label_values(&[step, outcome]);
            }
        }
        for phase in ferry_types::query::federation::DKG_PHASE_NAMES {
            dkg_phase.with_label_values(&[phase]);
        }
        for chain in CHAINS {
            for outcome in OUTCOMES {
                signatures.with_label_values(&[chain, outcome]);
            }
        }
        for reason in Reason::ALL {
            rejections.with_label_values(&[reason.label()]);
        }
        Ok(Metrics {
            registry,
            signatures,
            rejections,
            last_signature,
            last_signature_age,
            chain_height,
            pending_batches,
            awaiting_signature,
            poll_errors,
            last_poll,
            dkg_steps,
            dkg_session,
            dkg_attempt,
            dkg_phase,
            heartbeats,
            last_heartbeat,
            signing_epoch,
            proven_reads,
            audit_anchored_rows,
            audit_anchored_at,
        })
    }

    /// The gauges the audit anchorer keeps current.
    pub fn audit_anchor_gauges(&self) -> ferry_daemon::audit_anchor::AnchorGauges {
        ferry_daemon::audit_anchor::AnchorGauges {
            rows: self.audit_anchored_rows.clone(),
            at: self.audit_anchored_at.clone(),
        }
    }

    /// Shows the latest key generation session (or none).
    pub fn dkg_state(&self, session: Option<&DkgSession>) {
        self.dkg_session.set(session.map_or(0, |s| i64::try_from(s.session).unwrap_or(i64::MAX)));
        self.dkg_attempt.set(session.map_or(0, |s| i64::from(s.attempt)));
        for phase in ferry_types::query::federation::DKG_PHASE_NAMES {
            let current = session.is_some_and(|s| s.phase.name() == phase);
            self.dkg_phase.with_label_values(&[phase]).set(i64::from(current));
        }
    }

    /// Counts a refusal of a `chain` batch.
    pub fn refused(&self, chain: &str, reason: Reason) {
        self.signatures.with_label_values(&[chain, "refused"]).inc();
        self.rejections.with_label_values(&[reason.label()]).inc();
    }

    /// Counts a signature included on the chain at `now` (Unix seconds).
    pub fn signed(&self, chain: &str, now: f64) {
        self.signatures.with_label_values(&[chain, "signed"]).inc();
        self.last_signature.set(now);
    }

    /// Counts a failed post.
    pub fn failed(&self, chain: &str) {
        self.signatures.with_label_values(&[chain, "failed"]).inc();
    }

    /// The Prometheus text exposition, with the last signature's age computed for `now` (Unix
    /// seconds).
    pub fn render_at(&self, now: f64) -> String {
        let last = self.last_signature.get();
        self.last_signature_age.set(if last > 0.0 { (now - last).max(0.0) } else { 0.0 });
        self.registry.render()
    }

    /// [`Metrics::render_at`] the current time.
    pub fn render(&self) -> String {
        self.render_at(now_seconds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_start_at_zero() -> Result<(), prometheus::Error> {
        let text = Metrics::new()?.render_at(1_000.0);
        assert!(text.contains(r#"ferry_signer_signatures_total{chain="btc",outcome="refused"} 0"#), "{text}");
        assert!(text.contains(r#"ferry_signer_policy_rejections_total{reason="double_sign"} 0"#), "{text}");
        assert!(text.contains("ferry_signer_last_signature_age_seconds 0"), "{text}");
        Ok(())
    }

    #[test]
    fn the_last_signatures_age_is_computed_at_scrape() -> Result<(), prometheus::Error> {
        let metrics = Metrics::new()?;
        metrics.signed("eth", 1_000.0);
        metrics.refused("btc", Reason::Cap);
        let text = metrics.render_at(1_042.5);
        assert!(text.contains("ferry_signer_last_signature_age_seconds 42.5"), "{text}");
        assert!(text.contains(r#"ferry_signer_signatures_total{chain="eth",outcome="signed"} 1"#), "{text}");
        assert!(text.contains(r#"ferry_signer_policy_rejections_total{reason="cap"} 1"#), "{text}");
        Ok(())
    }
}
