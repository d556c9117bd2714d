//! Release rows (`relayer_releases`) and their status transitions. Every function that changes a
//! row runs inside the caller's transaction, which already holds the audit writers' lock, and
//! appends the matching audit row there (subject `batch:<id>`).
//!
//! Transitions allowed (anything else is [`StoreError::InvalidReleaseTransition`]):
//! - none | delivering | broadcast (no block) → delivering: intent to hand the release over (or,
//!   from none, a first delivery that failed before any intent);
//! - delivering → broadcast: handed over;
//! - none | delivering | broadcast → broadcast with a block: found in a block;
//! - delivering | broadcast with a block → confirmed (a release seen in a block straight after
//!   sending skips `broadcast`);
//! - broadcast | confirmed | attesting (with a block) → broadcast without one: reorganised out;
//! - confirmed | attesting → attesting;
//! - anything but settled → attested (the sidechain holds this member's attestation);
//! - attesting → refused;
//! - anything → settled.

use std::fmt;

use ferry_types::{Amount, Denom, ParentChain};
use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::audit::{self, kind};
use super::{StoreError, database, height_from_db, height_to_db};
use crate::delivery::decision::{Inclusion, Progress, ReleaseStatus};

/// What identifies a release when its row is first written: the batch and what it pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSummary {
    /// The batch id (the Ethereum batch nonce).
    pub batch: u64,
    /// The parent chain it pays on.
    pub chain: ParentChain,
    /// The wrapped denomination released.
    pub asset: Denom,
    /// Withdrawals it pays.
    pub items: u32,
    /// The amount burned by them.
    pub total: Amount,
}

/// A release as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRecord {
    /// The batch and what it pays.
    pub summary: ReleaseSummary,
    /// Where it stands.
    pub status: ReleaseStatus,
    /// The release transaction: the one sent, or the one found in a block.
    pub parent_tx: Option<String>,
    /// The block holding it (height, hash), while it is in the best chain.
    pub block: Option<(u64, String)>,
    /// Deliveries attempted (intents recorded).
    pub attempts: u32,
    /// Attestations attempted (intents recorded).
    pub attest_attempts: u32,
    /// Why the last delivery failed or the attestation was refused.
    pub reason: Option<String>,
    /// The sidechain transaction that carried the accepted attestation.
    pub attestation_tx: Option<String>,
}

impl ReleaseRecord {
    /// The recorded inclusion, if the release is in a block.
    pub fn inclusion(&self) -> Option<Inclusion> {
        let (block_height, block_hash) = self.block.clone()?;
        Some(Inclusion { parent_tx: self.parent_tx.clone()?, block_height, block_hash })
    }

    /// The progress the delivery core decides from.
    pub fn progress(&self) -> Progress {
        Progress { status: self.status, inclusion: self.inclusion() }
    }
}

/// The audit subject of a batch's release.
pub fn subject(batch: u64) -> String {
    format!("batch:{batch}")
}

const SELECT_RELEASES: &str = "SELECT batch_id, chain, asset, items, total::text AS total, status, parent_tx, \
                               block_height, block_hash, attempts, attest_attempts, reason, attestation_tx \
                               FROM relayer_releases";

fn corrupt(what: &'static str, value: impl fmt::Display, reason: impl fmt::Display) -> StoreError {
    StoreError::CorruptRow { what, value: value.to_string(), reason: reason.to_string() }
}

fn count_from_db(what: &'static str, value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|e| corrupt(what, value, e))
}

fn record_from_row(row: &PgRow) -> Result<ReleaseRecord, StoreError> {
    let read = database("reading a release");
    let batch: i64 = row.try_get("batch_id").map_err(read)?;
    let chain: String = row.try_get("chain").map_err(read)?;
    let asset: String = row.try_get("asset").map_err(read)?;
    let items: i32 = row.try_get("items").map_err(read)?;
    let total: String = row.try_get("total").map_err(read)?;
    let status: String = row.try_get("status").map_err(read)?;
    let block_height: Option<i64> = row.try_get("block_height").map_err(read)?;
    let block_hash: Option<String> = row.try_get("block_hash").map_err(read)?;
    let block = match (block_height, block_hash) {
        (Some(height), Some(hash)) => Some((height_from_db("relayer_releases.block_height", height)?, hash)),
        (None, None) => None,
        _ => return Err(corrupt("relayer_releases.block_height", batch, "block height and hash must come together")),
    };
    Ok(ReleaseRecord {
        summary: ReleaseSummary {
            batch: height_from_db("relayer_releases.batch_id", batch)?,
            chain: chain.parse().map_err(|e| corrupt("relayer_releases.chain", &chain, e))?,
            asset: asset.parse().map_err(|e| corrupt("relayer_releases.asset", &asset, e))?,
            items: count_from_db("relayer_releases.items", items)?,
            total: total.parse().map_err(|e| corrupt("relayer_releases.total", &total, e))?,
        },
        status: status.parse().map_err(|e| corrupt("relayer_releases.status", &status, e))?,
        parent_tx: row.try_get("parent_tx").map_err(read)?,
        block,
        attempts: count_from_db("relayer_releases.attempts", row.try_get("attempts").map_err(read)?)?,
        attest_attempts: count_from_db(
            "relayer_releases.attest_attempts",
            row.try_get("attest_attempts").map_err(read)?,
        )?,
        reason: row.try_get("reason").map_err(read)?,
        attestation_tx: row.try_get("attestation_tx").map_err(read)?,
    })
}

/// The release's row, locked until the transaction ends.
async fn lock_row(conn: &mut PgConnection, batch: u64) -> Result<Option<ReleaseRecord>, StoreError> {
    let row = sqlx::query(&format!("{SELECT_RELEASES} WHERE batch_id = $1 FOR UPDATE"))
        .bind(height_to_db("batch id", batch)?)
        .fetch_optional(conn)
        .await
        .map_err(database("reading a release"))?;
    row.as_ref().map(record_from_row).transpose()
}

fn invalid(batch: u64, from: Option<ReleaseStatus>, to: ReleaseStatus, block: bool) -> StoreError {
    let from = match from {
        None => "no record".to_owned(),
        Some(status) if block => format!("{status} (in a block)"),
        Some(status) => status.to_string(),
    };
    StoreError::InvalidReleaseTransition { batch, from, to }
}

/// Whether a transition needs the row to be in a block.
#[derive(Clone, Copy)]
enum InBlock {
    /// In a block or not.
    Either,
    /// Only while in a block.
    Yes,
    /// Only while in no block.
    No,
}

/// The rows a status transition accepts: which statuses it leaves, and whether the row must (or
/// must not) be in a block. One entry per line of the module's transition list.
struct Transition {
    to: ReleaseStatus,
    from: &'static [ReleaseStatus],
    in_block: InBlock,
}

/// Delivery intent; from no row too (the caller inserts it).
const TO_DELIVERING: Transition = Transition {
    to: ReleaseStatus::Delivering,
    from: &[ReleaseStatus::Delivering, ReleaseStatus::Broadcast],
    in_block: InBlock::No,
};
/// Handed over.
const TO_BROADCAST: Transition =
    Transition { to: ReleaseStatus::Broadcast, from: &[ReleaseStatus::Delivering], in_block: InBlock::Either };
/// Found in a block; from no row too (the caller inserts it).
const TO_INCLUDED: Transition = Transition {
    to: ReleaseStatus::Broadcast,
    from: &[ReleaseStatus::Delivering, ReleaseStatus::Broadcast],
    in_block: InBlock::No,
};
/// Reorganised out of its block.
const TO_REORGED: Transition = Transition {
    to: ReleaseStatus::Broadcast,
    from: &[ReleaseStatus::Broadcast, ReleaseStatus::Confirmed, ReleaseStatus::Attesting],
    in_block: InBlock::Yes,
};
const TO_CONFIRMED: Transition = Transition {
    to: ReleaseStatus::Confirmed,
    from: &[ReleaseStatus::Delivering, ReleaseStatus::Broadcast],
    in_block: InBlock::Yes,
};
const TO_ATTESTING: Transition = Transition {
    to: ReleaseStatus::Attesting,
    from: &[ReleaseStatus::Confirmed, ReleaseStatus::Attesting],
    in_block: InBlock::Either,
};
/// From anything but settled (attested itself is a no-op the caller detects).
const TO_ATTESTED: Transition = Transition {
    to: ReleaseStatus::Attested,
    from: &[
        ReleaseStatus::Delivering,
        ReleaseStatus::Broadcast,
        ReleaseStatus::Confirmed,
        ReleaseStatus::Attesting,
        ReleaseStatus::Attested,
        ReleaseStatus::Refused,
    ],
    in_block: InBlock::Either,
};
const TO_REFUSED: Transition =
    Transition { to: ReleaseStatus::Refused, from: &[ReleaseStatus::Attesting], in_block: InBlock::Either };
/// From anything (settled itself is a no-op the caller detects).
const TO_SETTLED: Transition =
    Transition { to: ReleaseStatus::Settled, from: &ReleaseStatus::ALL, in_block: InBlock::Either };

/// The statuses a delivery failure may be recorded in (the row keeps its status).
const DELIVERY_FAILURE_FROM: &[ReleaseStatus] = &[ReleaseStatus::Delivering, ReleaseStatus::Broadcast];

impl Transition {
    fn accepts(&self, record: &ReleaseRecord) -> bool {
        let block = match self.in_block {
            InBlock::Either => true,
            InBlock::Yes => record.block.is_some(),
            InBlock::No => record.block.is_none(),
        };
        block && self.from.contains(&record.status)
    }

    /// `record` if it may take this transition, else [`StoreError::InvalidReleaseTransition`].
    fn check(&self, batch: u64, record: ReleaseRecord) -> Result<ReleaseRecord, StoreError> {
        if self.accepts(&record) {
            Ok(record)
        } else {
            Err(invalid(batch, Some(record.status), self.to, record.block.is_some()))
        }
    }
}

/// The batch's row, locked until the transaction ends, if it may take `transition`; no row is
/// [`StoreError::InvalidReleaseTransition`].
async fn lock_for(conn: &mut PgConnection, batch: u64, transition: &Transition) -> Result<ReleaseRecord, StoreError> {
    match lock_row(conn, batch).await? {
        Some(record) => transition.check(batch, record),
        None => Err(invalid(batch, None, transition.to, false)),
    }
}

/// As [`lock_for`], but no row is `Ok(None)`, for the caller to insert one or refuse otherwise.
async fn lock_for_or_absent(
    conn: &mut PgConnection,
    batch: u64,
    transition: &Transition,
) -> Result<Option<ReleaseRecord>, StoreError> {
    lock_row(conn, batch).await?.map(|record| transition.check(batch, record)).transpose()
}

async fn insert(conn: &mut PgConnection, summary: &ReleaseSummary, status: ReleaseStatus) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO relayer_releases (batch_id, chain, asset, items, total, status) \
         VALUES ($1, $2, $3, $4, $5::numeric, $6)",
    )
    .bind(height_to_db("batch id", summary.batch)?)
    .bind(summary.chain.tag())
    .bind(summary.asset.as_str())
    .bind(i64::from(summary.items))
    .bind(summary.total.to_string())
    .bind(status.as_str())
    .execute(conn)
    .await
    .map_err(database("inserting a release"))?;
    Ok(())
}

/// Applies `assignments` (SQL `SET` items over `$2`…) to the batch's row and appends an audit
/// row of `audit_kind` with `detail`.
async fn update(
    conn: &mut PgConnection,
    batch: u64,
    assignments: &str,
    binds: &[Option<String>],
    audit_kind: &str,
    detail: &Value,
) -> Result<(), StoreError> {
    let sql = format!("UPDATE relayer_releases SET {assignments}, updated_at = now() WHERE batch_id = $1");
    let mut query = sqlx::query(&sql).bind(height_to_db("batch id", batch)?);
    for bind in binds {
        query = query.bind(bind.clone());
    }
    query.execute(&mut *conn).await.map_err(database("updating a release"))?;
    audit::append_locked(conn, audit_kind, &subject(batch), detail).await?;
    Ok(())
}

pub(super) async fn mark_delivering(
    conn: &mut PgConnection,
    summary: &ReleaseSummary,
    parent_tx: &str,
) -> Result<u32, StoreError> {
    let batch = summary.batch;
    let stored = lock_for_or_absent(conn, batch, &TO_DELIVERING).await?;
    let from = stored.as_ref().map(|record| record.status);
    if stored.is_none() {
        insert(conn, summary, ReleaseStatus::Delivering).await?;
    }
    let attempts: i32 = sqlx::query_scalar(
        "UPDATE relayer_releases SET status = 'delivering', parent_tx = $2, attempts = attempts + 1, \
         updated_at = now() WHERE batch_id = $1 RETURNING attempts",
    )
    .bind(height_to_db("batch id", batch)?)
    .bind(parent_tx)
    .fetch_one(&mut *conn)
    .await
    .map_err(database("recording a delivery intent"))?;
    let attempt = count_from_db("relayer_releases.attempts", attempts)?;
    let detail = json!({
        "chain": summary.chain.tag(),
        "asset": summary.asset.as_str(),
        "items": summary.items,
        "total": summary.total.to_string(),
        "parent_tx": parent_tx,
        "attempt": attempt,
        "from": from.map(ReleaseStatus::as_str),
    });
    audit::append_locked(conn, kind::RELEASE_DELIVERING, &subject(batch), &detail).await?;
    Ok(attempt)
}

pub(super) async fn mark_broadcast(conn: &mut PgConnection, batch: u64, parent_tx: &str) -> Result<(), StoreError> {
    lock_for(conn, batch, &TO_BROADCAST).await?;
    let detail = json!({"parent_tx": parent_tx});
    update(
        conn,
        batch,
        "status = 'broadcast', parent_tx = $2, reason = NULL",
        &[Some(parent_tx.to_owned())],
        kind::RELEASE_BROADCAST,
        &detail,
    )
    .await
}

/// Records why a delivery failed, creating the row (`delivering`, no attempt counted) when the
/// failure came before any intent was recorded (a release that cannot be assembled, or that the
/// vault refuses at simulation); an existing row keeps its status. An audit row is appended only
/// when the reason differs from the one stored (so a delivery failing the same way every round
/// logs once).
pub(super) async fn record_delivery_failure(
    conn: &mut PgConnection,
    summary: &ReleaseSummary,
    reason: &str,
) -> Result<bool, StoreError> {
    let batch = summary.batch;
    let stored = lock_row(conn, batch).await?;
    let stored = match stored {
        None => {
            insert(conn, summary, ReleaseStatus::Delivering).await?;
            None
        }
        Some(record) if record.reason.as_deref() == Some(reason) => return Ok(false),
        Some(record) => {
            let stays = Transition { to: record.status, from: DELIVERY_FAILURE_FROM, in_block: InBlock::Either };
            Some(stays.check(batch, record)?)
        }
    };
    let detail = json!({
        "status": stored.as_ref().map_or(ReleaseStatus::Delivering, |record| record.status).as_str(),
        "attempts": stored.as_ref().map_or(0, |record| record.attempts),
        "reason": reason,
    });
    update(conn, batch, "reason = $2", &[Some(reason.to_owned())], kind::RELEASE_DELIVERY_FAILED, &detail).await?;
    Ok(true)
}

pub(super) async fn mark_included(
    conn: &mut PgConnection,
    summary: &ReleaseSummary,
    inclusion: &Inclusion,
) -> Result<(), StoreError> {
    let batch = summary.batch;
    let stored = lock_for_or_absent(conn, batch, &TO_INCLUDED).await?;
    if stored.is_none() {
        insert(conn, summary, ReleaseStatus::Broadcast).await?;
    }
    let sent = stored.as_ref().and_then(|record| record.parent_tx.clone());
    let detail = json!({
        "parent_tx": inclusion.parent_tx,
        "block_height": inclusion.block_height,
        "block_hash": inclusion.block_hash,
        "sent_tx": sent,
        "delivered_by_us": sent.as_deref() == Some(inclusion.parent_tx.as_str()),
    });
    sqlx::query(
        "UPDATE relayer_releases SET status = 'broadcast', parent_tx = $2, block_height = $3, block_hash = $4, \
         reason = NULL, updated_at = now() WHERE batch_id = $1",
    )
    .bind(height_to_db("batch id", batch)?)
    .bind(&inclusion.parent_tx)
    .bind(height_to_db("block height", inclusion.block_height)?)
    .bind(&inclusion.block_hash)
    .execute(&mut *conn)
    .await
    .map_err(database("recording a release's block"))?;
    audit::append_locked(conn, kind::RELEASE_INCLUDED, &subject(batch), &detail).await?;
    Ok(())
}

pub(super) async fn mark_reorged(
    conn: &mut PgConnection,
    batch: u64,
    canonical: Option<&str>,
) -> Result<(), StoreError> {
    let record = lock_for(conn, batch, &TO_REORGED).await?;
    let (height, hash) = record.block.clone().unwrap_or_default();
    let detail = json!({
        "from": record.status.as_str(),
        "parent_tx": record.parent_tx,
        "block_height": height,
        "block_hash": hash,
        "canonical_hash": canonical,
    });
    update(
        conn,
        batch,
        "status = 'broadcast', block_height = NULL, block_hash = NULL",
        &[],
        kind::RELEASE_REORGED,
        &detail,
    )
    .await
}

pub(super) async fn mark_confirmed(conn: &mut PgConnection, batch: u64, confirmations: u64) -> Result<(), StoreError> {
    let record = lock_for(conn, batch, &TO_CONFIRMED).await?;
    let (height, hash) = record.block.clone().unwrap_or_default();
    let detail = json!({
        "parent_tx": record.parent_tx,
        "block_height": height,
        "block_hash": hash,
        "confirmations": confirmations,
    });
    update(conn, batch, "status = 'confirmed'", &[], kind::RELEASE_CONFIRMED, &detail).await
}

pub(super) async fn mark_attesting(conn: &mut PgConnection, batch: u64) -> Result<u32, StoreError> {
    let record = lock_for(conn, batch, &TO_ATTESTING).await?;
    let attempts: i32 = sqlx::query_scalar(
        "UPDATE relayer_releases SET status = 'attesting', attest_attempts = attest_attempts + 1, \
         updated_at = now() WHERE batch_id = $1 RETURNING attest_attempts",
    )
    .bind(height_to_db("batch id", batch)?)
    .fetch_one(&mut *conn)
    .await
    .map_err(database("recording an attestation intent"))?;
    let attempt = count_from_db("relayer_releases.attest_attempts", attempts)?;
    let detail = json!({"from": record.status.as_str(), "parent_tx": record.parent_tx, "attempt": attempt});
    audit::append_locked(conn, kind::RELEASE_ATTESTING, &subject(batch), &detail).await?;
    Ok(attempt)
}

/// Records that the sidechain holds this member's attestation of `parent_tx`, carried by
/// `attestation_tx` when this process saw it accepted (`None` when the chain's batch record
/// shows it). Returns whether the row changed.
pub(super) async fn mark_attested(
    conn: &mut PgConnection,
    batch: u64,
    parent_tx: &str,
    attestation_tx: Option<&str>,
) -> Result<bool, StoreError> {
    let record = lock_for(conn, batch, &TO_ATTESTED).await?;
    if record.status == ReleaseStatus::Attested {
        return Ok(false);
    }
    let detail = json!({
        "from": record.status.as_str(),
        "parent_tx": parent_tx,
        "attestation_tx": attestation_tx,
        "attempts": record.attest_attempts,
    });
    update(
        conn,
        batch,
        "status = 'attested', attestation_tx = coalesce($2, attestation_tx), reason = NULL",
        &[attestation_tx.map(str::to_owned)],
        kind::RELEASE_ATTESTED,
        &detail,
    )
    .await?;
    Ok(true)
}

pub(super) async fn mark_refused(conn: &mut PgConnection, batch: u64, reason: &str) -> Result<(), StoreError> {
    let record = lock_for(conn, batch, &TO_REFUSED).await?;
    let detail = json!({"parent_tx": record.parent_tx, "attempts": record.attest_attempts, "reason": reason});
    update(conn, batch, "status = 'refused', reason = $2", &[Some(reason.to_owned())], kind::RELEASE_REFUSED, &detail)
        .await
}

/// Records that the sidechain settled the batch with `release_tx`. Returns whether the row changed.
pub(super) async fn mark_settled(
    conn: &mut PgConnection,
    batch: u64,
    release_tx: Option<&str>,
) -> Result<bool, StoreError> {
    let Some(record) = lock_for_or_absent(conn, batch, &TO_SETTLED).await? else {
        return Err(StoreError::UnknownRelease(batch));
    };
    if record.status == ReleaseStatus::Settled {
        return Ok(false);
    }
    let detail = json!({
        "from": record.status.as_str(),
        "release_tx": release_tx,
        "parent_tx": record.parent_tx,
        "agrees": release_tx.is_some() && release_tx == record.parent_tx.as_deref(),
    });
    update(conn, batch, "status = 'settled'", &[], kind::RELEASE_SETTLED, &detail).await?;
    Ok(true)
}

pub(super) async fn fetch(pool: &PgPool, batch: u64) -> Result<Option<ReleaseRecord>, StoreError> {
    let row = sqlx::query(&format!("{SELECT_RELEASES} WHERE batch_id = $1"))
        .bind(height_to_db("batch id", batch)?)
        .fetch_optional(pool)
        .await
        .map_err(database("reading a release"))?;
    row.as_ref().map(record_from_row).transpose()
}

pub(super) async fn unsettled(pool: &PgPool) -> Result<Vec<ReleaseRecord>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT_RELEASES} WHERE status <> 'settled' ORDER BY batch_id"))
        .fetch_all(pool)
        .await
        .map_err(database("reading unsettled releases"))?;
    rows.iter().map(record_from_row).collect()
}

pub(super) async fn counts(pool: &PgPool) -> Result<Vec<(ParentChain, ReleaseStatus, u64)>, StoreError> {
    let rows = sqlx::query("SELECT chain, status, count(*) AS n FROM relayer_releases GROUP BY chain, status")
        .fetch_all(pool)
        .await
        .map_err(database("counting releases"))?;
    let read = database("counting releases");
    let mut counts = Vec::with_capacity(rows.len());
    for row in rows {
        let chain: String = row.try_get("chain").map_err(read)?;
        let status: String = row.try_get("status").map_err(read)?;
        let count: i64 = row.try_get("n").map_err(read)?;
        counts.push((
            chain.parse().map_err(|e| corrupt("relayer_releases.chain", &chain, e))?,
            status.parse().map_err(|e| corrupt("relayer_releases.status", &status, e))?,
            u64::try_from(count).unwrap_or(0),
        ));
    }
    Ok(counts)
}
