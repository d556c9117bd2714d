//! Anchoring this daemon's audit log on the sidechain (issue 15 item 4): every so often the head
//! of the log — its row count and newest row's hash — goes to the chain as `MsgAnchorAudit`, a
//! fee-exempt duty of the member account. `audit verify` then checks the log against the
//! chain's last anchor, so a deleted tail or a history rewritten and re-hashed by whoever owns
//! the database is named, not silently accepted.
//!
//! When: once [`AnchorPolicy::every_rows`] rows were appended since the last anchor, or
//! [`AnchorPolicy::interval`] passed and anything was appended; never when nothing changed.
//! Each anchor carries the log's row at the count the chain holds anchored (`previous_hash`),
//! and the chain moves the anchor forward only when that row is the anchored head: a log cut or
//! rewritten under its anchor cannot be anchored again by waiting until it grew past the count.
//! A log that does not hold the chain's anchor is logged as an error and its head still sent, so
//! the chain records the refusal as evidence.

use std::future::Future;
use std::time::{Duration, Instant};

use ferry_audit::{AuditError, AuditLog, LogHead};
use ferry_client::{ClientError, FerryClient};
use ferry_types::msg::audit::{AuditLogName, MsgAnchorAudit};
use ferry_types::query::audit::{AuditAnchor, audit_anchor_path};
use ferry_types::{Address, Msg};
use prometheus::{Gauge, IntGauge};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// How often a daemon anchors its audit log: the `[audit_anchor]` section of the relayer's and
/// the signer's configuration (every key optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorPolicy {
    /// Anchor once this many rows were appended since the last anchor (at least 1; default 100).
    #[serde(default = "default_every_rows")]
    pub every_rows: u64,
    /// Anchor at least this often while rows are appended (default 5 minutes).
    #[serde(with = "humantime_serde", default = "default_interval")]
    pub interval: Duration,
    /// How often the log's head is looked at (at least 1 s; default 5 s).
    #[serde(with = "humantime_serde", default = "default_check_every")]
    pub check_every: Duration,
}

fn default_every_rows() -> u64 {
    100
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}

fn default_check_every() -> Duration {
    Duration::from_secs(5)
}

impl Default for AnchorPolicy {
    /// 100 rows or 5 minutes, looked at every 5 seconds.
    fn default() -> Self {
        AnchorPolicy {
            every_rows: default_every_rows(),
            interval: default_interval(),
            check_every: default_check_every(),
        }
    }
}

/// The gauges an anchorer keeps current (the daemon registers them in its `metrics.rs`).
#[derive(Clone)]
pub struct AnchorGauges {
    /// Rows of the last head anchored (or found anchored) on the chain.
    pub rows: IntGauge,
    /// Seconds since the Unix epoch when it was anchored (or found anchored).
    pub at: Gauge,
}

/// Why a round of anchoring failed.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The log's head could not be read.
    #[error("reading the audit log's head")]
    Audit(#[from] AuditError),
    /// The chain's anchor could not be read.
    #[error("reading the chain's anchor")]
    Chain(#[from] ClientError),
    /// The anchor was not included.
    #[error("anchoring the audit log: {0}")]
    Post(String),
    /// The chain answered an anchor that does not decode.
    #[error("the chain answers an anchor hash `{0}`, not 32 bytes of hex")]
    BadAnswer(String),
    /// The anchor could not be read proven (no endpoint's answer verified, or no trust root).
    #[error("reading the chain's anchor proven: {0:#}")]
    Unverified(anyhow::Error),
}

/// Decides when to anchor one log, and remembers what was anchored.
pub struct Anchorer {
    log: AuditLog,
    name: AuditLogName,
    member: Address,
    policy: AnchorPolicy,
    gauges: AnchorGauges,
    last: Option<(LogHead, Instant)>,
}

impl Anchorer {
    /// An anchorer of `log` (named `name` on the chain) for `member`.
    pub fn new(log: AuditLog, name: AuditLogName, member: Address, policy: AnchorPolicy, gauges: AnchorGauges) -> Self {
        Anchorer { log, name, member, policy, gauges, last: None }
    }

    /// The message to send now, if any, with the head it anchors. Before sending, reads the
    /// chain's anchor and offers the log's row at its count as `previous_hash`: the chain moves
    /// the anchor forward only over the same history.
    ///
    /// # Errors
    /// When the log or the chain cannot be read.
    pub async fn due(
        &mut self,
        pool: &PgPool,
        chain: &FerryClient,
        now: Instant,
    ) -> Result<Option<(Msg, LogHead)>, AnchorError> {
        let Some(head) = self.log.head(pool).await? else { return Ok(None) };
        if let Some((last, at)) = self.last {
            if head.rows == last.rows && head.hash == last.hash {
                return Ok(None);
            }
            let grown = head.rows.saturating_sub(last.rows);
            let changed = head.rows <= last.rows;
            if !changed && grown < self.policy.every_rows.max(1) && now.duration_since(at) < self.policy.interval {
                return Ok(None);
            }
        }
        let held: Option<AuditAnchor> = chain.query(&audit_anchor_path(&self.member, self.name), None).await?;
        let mut previous_hash = None;
        if let Some(held) = held {
            if held.rows == head.rows && held.head_hash == hex::encode(head.hash) {
                self.record(head, now);
                return Ok(None);
            }
            previous_hash = self.log.hash_at(pool, held.rows).await?;
            if held.rows >= head.rows || previous_hash.map(hex::encode).as_deref() != Some(held.head_hash.as_str()) {
                tracing::error!(
                    log = %self.name,
                    anchored_rows = held.rows,
                    anchored_hash = %held.head_hash,
                    anchored_height = held.height,
                    rows = head.rows,
                    hash = %hex::encode(head.hash),
                    "the audit log does not hold the head anchored on the chain (deleted tail or rewritten history?): run `audit verify`; the chain will refuse this anchor and keep it as evidence"
                );
            }
        }
        Ok(Some((self.message(&head, previous_hash), head)))
    }

    /// Records that `head` was anchored.
    pub fn record(&mut self, head: LogHead, now: Instant) {
        self.gauges.rows.set(i64::try_from(head.rows).unwrap_or(i64::MAX));
        self.gauges.at.set(crate::metrics::now_seconds());
        self.last = Some((head, now));
    }

    fn message(&self, head: &LogHead, previous_hash: Option<[u8; 32]>) -> Msg {
        Msg::AnchorAudit(MsgAnchorAudit {
            member: self.member,
            log: self.name,
            rows: head.rows,
            head_hash: head.hash,
            previous_hash,
        })
    }

    /// Anchors forever: each [`AnchorPolicy::check_every`], sends what is due through `post`
    /// (which answers the inclusion height, or why not). Failures are logged and tried again.
    pub async fn run<F, Fut>(mut self, pool: PgPool, chain: FerryClient, mut post: F)
    where
        F: FnMut(Msg) -> Fut,
        Fut: Future<Output = Result<u64, String>>,
    {
        loop {
            tokio::time::sleep(self.policy.check_every.max(Duration::from_secs(1))).await;
            if let Err(error) = self.round(&pool, &chain, &mut post).await {
                tracing::warn!(log = %self.name, error = format!("{error:#}"), "audit anchor round failed");
            }
        }
    }

    /// One round: anchors the head if due.
    ///
    /// # Errors
    /// When the log or the chain cannot be read, or the anchor was not included.
    pub async fn round<F, Fut>(&mut self, pool: &PgPool, chain: &FerryClient, post: &mut F) -> Result<(), AnchorError>
    where
        F: FnMut(Msg) -> Fut,
        Fut: Future<Output = Result<u64, String>>,
    {
        let Some((msg, head)) = self.due(pool, chain, Instant::now()).await? else { return Ok(()) };
        let height = post(msg).await.map_err(AnchorError::Post)?;
        tracing::info!(log = %self.name, rows = head.rows, hash = %hex::encode(head.hash), height, "audit log anchored");
        self.record(head, Instant::now());
        Ok(())
    }
}

/// The anchor `audit verify` checks log `name` against: `member`'s last anchor on the chain at
/// `rpc`, read proven through the light client when the chain's `genesis_file` is known (the
/// daemon's `chain.genesis_file`): whoever rewrote the log and also controls that node cannot
/// answer a matching anchor. Without a genesis file the anchor is read unverified, and stderr
/// says so. `None` when the member or the RPC is unknown, or nothing is anchored yet (said on
/// stderr).
///
/// # Errors
/// As [`chain_anchor`], an `rpc` that is not an RPC address, or an anchor that does not verify.
pub async fn anchor_to_verify_against(
    member: Option<Address>,
    rpc: Option<&str>,
    genesis_file: Option<&std::path::Path>,
    name: AuditLogName,
) -> Result<Option<ferry_audit::Anchor>, AnchorError> {
    let (Some(member), Some(rpc)) = (member, rpc) else { return Ok(None) };
    let chain = FerryClient::new(rpc)?;
    let anchor = match genesis_file {
        Some(genesis_file) => proven_anchor(&chain, rpc, genesis_file, &member, name).await?,
        None => {
            eprintln!("note: the anchor is read unverified from {rpc} (no chain.genesis_file to verify it with)");
            chain_anchor(&chain, &member, name).await?
        }
    };
    if anchor.is_none() {
        eprintln!("note: {member} has not anchored its {name} audit log on the chain yet");
    }
    Ok(anchor)
}

/// `member`'s anchor of `name` in the state the chain's latest header commits to, proven from
/// the trust root in `genesis_file` through `rpc`.
async fn proven_anchor(
    chain: &FerryClient,
    rpc: &str,
    genesis_file: &std::path::Path,
    member: &Address,
    name: AuditLogName,
) -> Result<Option<ferry_audit::Anchor>, AnchorError> {
    let reader = crate::verified_reads::open_with_genesis(rpc, genesis_file).map_err(AnchorError::Unverified)?;
    let height = chain.latest_height().await?.saturating_sub(1);
    let key = ferry_types::state_keys::audit_anchor(member, name);
    let held: Option<AuditAnchor> =
        reader.decoded(&key, height).await.map_err(|error| AnchorError::Unverified(error.into()))?;
    held.map(anchor_of).transpose()
}

/// The anchor a chain record holds.
fn anchor_of(held: AuditAnchor) -> Result<ferry_audit::Anchor, AnchorError> {
    let head_hash = hex::decode(&held.head_hash)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| AnchorError::BadAnswer(held.head_hash.clone()))?;
    Ok(ferry_audit::Anchor { rows: held.rows, head_hash, height: held.height })
}

/// The head `member` last anchored for `name` on the chain, as `audit verify` checks the log
/// against it; `None` when it never anchored that log.
///
/// # Errors
/// When the chain cannot be read, or answers a hash that is not 32 bytes of hex.
pub async fn chain_anchor(
    chain: &FerryClient,
    member: &Address,
    name: AuditLogName,
) -> Result<Option<ferry_audit::Anchor>, AnchorError> {
    let held: Option<AuditAnchor> = chain.query(&audit_anchor_path(member, name), None).await?;
    held.map(anchor_of).transpose()
}
