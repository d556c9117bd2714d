//! Deposit rows (`relayer_deposits`) and their status transitions. Every function that changes a
//! row runs inside the caller's transaction, which already holds the audit writers' lock, and
//! appends the matching audit row there.

use std::fmt;
use std::str::FromStr;

use ferry_types::{DepositFacts, DepositId};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::audit::{self, kind};
use super::{StoreError, database, height_from_db};
use ferry_parent_chains::Observation;

/// Where a deposit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DepositStatus {
    /// Seen, waiting for confirmations.
    Observed,
    /// Intent recorded: an attestation is being sent (outcome unknown until `Attested`).
    Attesting,
    /// The sidechain accepted the attestation.
    Attested,
    /// A reorganisation removed its block.
    Dropped,
    /// The sidechain refused the attestation for good.
    Rejected,
}

impl DepositStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [DepositStatus; 5] = [
        DepositStatus::Observed,
        DepositStatus::Attesting,
        DepositStatus::Attested,
        DepositStatus::Dropped,
        DepositStatus::Rejected,
    ];

    /// The name stored in the `status` column (also a metrics label value).
    pub const fn as_str(self) -> &'static str {
        match self {
            DepositStatus::Observed => "observed",
            DepositStatus::Attesting => "attesting",
            DepositStatus::Attested => "attested",
            DepositStatus::Dropped => "dropped",
            DepositStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for DepositStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DepositStatus {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DepositStatus::ALL.into_iter().find(|status| status.as_str() == text).ok_or_else(|| StoreError::CorruptRow {
            what: "relayer_deposits.status",
            value: text.to_owned(),
            reason: "unknown status".to_owned(),
        })
    }
}

/// A deposit as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositRecord {
    /// Its facts and the block it was (last) seen in.
    pub observation: Observation,
    /// Where it stands.
    pub status: DepositStatus,
    /// Why it was dropped or rejected.
    pub reason: Option<String>,
    /// Attestations attempted (intents recorded).
    pub attempts: u32,
    /// The sidechain transaction that carried the accepted attestation.
    pub attestation_tx: Option<String>,
}

/// What [`super::Store::record_observed`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObserveOutcome {
    /// A new deposit was recorded.
    New,
    /// A known deposit was seen in another block (or again after being dropped) and is
    /// `observed` again at its new place.
    Moved {
        /// Its status before.
        previous_status: DepositStatus,
        /// The block height it was recorded at before.
        previous_block_height: u64,
        /// The block hash it was recorded at before.
        previous_block_hash: String,
    },
    /// Nothing changed: the deposit is known, with this status.
    AlreadyKnown(DepositStatus),
    /// The id is stored with other facts: the observation was audited (`deposit.conflict`) and
    /// skipped; the stored deposit is unchanged.
    Conflicting {
        /// The facts in the store.
        stored: Box<DepositFacts>,
    },
}

/// Whether a status change happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The status changed (and an audit row was appended).
    Applied,
    /// The deposit already had that status; nothing was written.
    Unchanged,
}

const SELECT_DEPOSITS: &str = "SELECT deposit_id, chain, tx_id, idx, asset, amount::text AS amount, recipient, \
                               deposit_address, unattributed, peg_epoch, block_height, block_hash, coinbase, status, reason, \
                               attempts, attestation_tx \
                               FROM relayer_deposits";

fn corrupt(what: &'static str, value: impl fmt::Display, reason: impl fmt::Display) -> StoreError {
    StoreError::CorruptRow { what, value: value.to_string(), reason: reason.to_string() }
}

fn record_from_row(row: &PgRow) -> Result<DepositRecord, StoreError> {
    let read = database("reading a deposit");
    let deposit_id: String = row.try_get("deposit_id").map_err(read)?;
    let chain: String = row.try_get("chain").map_err(read)?;
    let index: i64 = row.try_get("idx").map_err(read)?;
    let asset: String = row.try_get("asset").map_err(read)?;
    let amount: String = row.try_get("amount").map_err(read)?;
    let recipient: String = row.try_get("recipient").map_err(read)?;
    let unattributed: Option<String> = row.try_get("unattributed").map_err(read)?;
    let peg_epoch: Option<i64> = row.try_get("peg_epoch").map_err(read)?;
    let block_height: i64 = row.try_get("block_height").map_err(read)?;
    let status: String = row.try_get("status").map_err(read)?;
    let attempts: i32 = row.try_get("attempts").map_err(read)?;
    let facts = DepositFacts {
        chain: chain.parse().map_err(|e| corrupt("relayer_deposits.chain", &chain, e))?,
        tx_id: row.try_get("tx_id").map_err(read)?,
        index: u32::try_from(index).map_err(|e| corrupt("relayer_deposits.idx", index, e))?,
        asset: asset.parse().map_err(|e| corrupt("relayer_deposits.asset", &asset, e))?,
        amount: amount.parse().map_err(|e| corrupt("relayer_deposits.amount", &amount, e))?,
        recipient: recipient.parse().map_err(|e| corrupt("relayer_deposits.recipient", &recipient, e))?,
        deposit_address: row.try_get("deposit_address").map_err(read)?,
        unattributed: unattributed
            .map(|code| code.parse().map_err(|e| corrupt("relayer_deposits.unattributed", &code, e)))
            .transpose()?,
        peg_epoch: peg_epoch
            .map(|epoch| u64::try_from(epoch).map_err(|e| corrupt("relayer_deposits.peg_epoch", epoch, e)))
            .transpose()?,
    };
    if facts.id().as_str() != deposit_id {
        return Err(corrupt(
            "relayer_deposits.deposit_id",
            &deposit_id,
            format!("the row's facts give {}", facts.id()),
        ));
    }
    Ok(DepositRecord {
        observation: Observation {
            facts,
            block_height: height_from_db("relayer_deposits.block_height", block_height)?,
            block_hash: row.try_get("block_hash").map_err(read)?,
            coinbase: row.try_get("coinbase").map_err(read)?,
        },
        status: status.parse()?,
        reason: row.try_get("reason").map_err(read)?,
        attempts: u32::try_from(attempts).map_err(|e| corrupt("relayer_deposits.attempts", attempts, e))?,
        attestation_tx: row.try_get("attestation_tx").map_err(read)?,
    })
}

/// The deposit's row, locked until the transaction ends.
async fn lock_row(conn: &mut PgConnection, id: &DepositId) -> Result<Option<DepositRecord>, StoreError> {
    let row = sqlx::query(&format!("{SELECT_DEPOSITS} WHERE deposit_id = $1 FOR UPDATE"))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await
        .map_err(database("reading a deposit"))?;
    row.as_ref().map(record_from_row).transpose()
}

pub(super) async fn record_observed(
    conn: &mut PgConnection,
    facts: &DepositFacts,
    coinbase: bool,
    block_height: i64,
    block_hash: &str,
) -> Result<ObserveOutcome, StoreError> {
    let id = facts.id();
    let Some(stored) = lock_row(conn, &id).await? else {
        sqlx::query(
            "INSERT INTO relayer_deposits (deposit_id, chain, tx_id, idx, asset, amount, recipient, deposit_address, \
             unattributed, peg_epoch, block_height, block_hash, coinbase, status) \
             VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $10, $11, $12, $13, 'observed')",
        )
        .bind(id.as_str())
        .bind(facts.chain.tag())
        .bind(&facts.tx_id)
        .bind(i64::from(facts.index))
        .bind(facts.asset.as_str())
        .bind(facts.amount.to_string())
        .bind(facts.recipient.to_string())
        .bind(facts.deposit_address)
        .bind(facts.unattributed.map(|reason| reason.code()))
        .bind(facts.peg_epoch.map(|epoch| i64::try_from(epoch).unwrap_or(i64::MAX)))
        .bind(block_height)
        .bind(block_hash)
        .bind(coinbase)
        .execute(&mut *conn)
        .await
        .map_err(database("inserting a deposit"))?;
        let detail =
            json!({"facts": facts, "block_height": block_height, "block_hash": block_hash, "coinbase": coinbase});
        audit::append_locked(conn, kind::DEPOSIT_OBSERVED, id.as_str(), &detail).await?;
        return Ok(ObserveOutcome::New);
    };
    if stored.observation.facts != *facts {
        // Never a new deposit and never a reason to stop the watcher: recorded, then skipped.
        let detail = json!({
            "stored": stored.observation.facts,
            "observed": facts,
            "block_height": block_height,
            "block_hash": block_hash,
        });
        audit::append_locked(conn, kind::DEPOSIT_CONFLICT, id.as_str(), &detail).await?;
        return Ok(ObserveOutcome::Conflicting { stored: Box::new(stored.observation.facts) });
    }
    let same_block = i64::try_from(stored.observation.block_height).ok() == Some(block_height)
        && stored.observation.block_hash == block_hash;
    let moves = match stored.status {
        DepositStatus::Dropped => true,
        DepositStatus::Observed => !same_block,
        DepositStatus::Attesting | DepositStatus::Attested | DepositStatus::Rejected => false,
    };
    if !moves {
        return Ok(ObserveOutcome::AlreadyKnown(stored.status));
    }
    sqlx::query(
        "UPDATE relayer_deposits SET block_height = $2, block_hash = $3, status = 'observed', reason = NULL, \
         updated_at = now() WHERE deposit_id = $1",
    )
    .bind(id.as_str())
    .bind(block_height)
    .bind(block_hash)
    .execute(&mut *conn)
    .await
    .map_err(database("moving a deposit"))?;
    let detail = json!({
        "from": stored.status.as_str(),
        "previous_block_height": stored.observation.block_height,
        "previous_block_hash": stored.observation.block_hash,
        "block_height": block_height,
        "block_hash": block_hash,
    });
    audit::append_locked(conn, kind::DEPOSIT_REOBSERVED, id.as_str(), &detail).await?;
    Ok(ObserveOutcome::Moved {
        previous_status: stored.status,
        previous_block_height: stored.observation.block_height,
        previous_block_hash: stored.observation.block_hash,
    })
}

pub(super) async fn mark_attesting(conn: &mut PgConnection, id: &DepositId) -> Result<u32, StoreError> {
    let stored = lock_row(conn, id).await?.ok_or_else(|| StoreError::UnknownDeposit(id.clone()))?;
    if !matches!(stored.status, DepositStatus::Observed | DepositStatus::Attesting) {
        return Err(StoreError::InvalidTransition {
            id: id.clone(),
            from: stored.status,
            to: DepositStatus::Attesting,
        });
    }
    let attempts: i32 = sqlx::query_scalar(
        "UPDATE relayer_deposits SET status = 'attesting', attempts = attempts + 1, updated_at = now() \
         WHERE deposit_id = $1 RETURNING attempts",
    )
    .bind(id.as_str())
    .fetch_one(&mut *conn)
    .await
    .map_err(database("recording an attestation intent"))?;
    let attempt = u32::try_from(attempts).map_err(|e| corrupt("relayer_deposits.attempts", attempts, e))?;
    let detail = json!({
        "from": stored.status.as_str(),
        "attempt": attempt,
        "block_height": stored.observation.block_height,
        "block_hash": stored.observation.block_hash,
    });
    audit::append_locked(conn, kind::DEPOSIT_ATTESTING, id.as_str(), &detail).await?;
    Ok(attempt)
}

pub(super) async fn mark_attested(
    conn: &mut PgConnection,
    id: &DepositId,
    attestation_tx: &str,
) -> Result<Transition, StoreError> {
    let stored = lock_row(conn, id).await?.ok_or_else(|| StoreError::UnknownDeposit(id.clone()))?;
    match stored.status {
        DepositStatus::Attested => return Ok(Transition::Unchanged),
        DepositStatus::Attesting => {}
        from => return Err(StoreError::InvalidTransition { id: id.clone(), from, to: DepositStatus::Attested }),
    }
    sqlx::query(
        "UPDATE relayer_deposits SET status = 'attested', attestation_tx = $2, updated_at = now() \
         WHERE deposit_id = $1",
    )
    .bind(id.as_str())
    .bind(attestation_tx)
    .execute(&mut *conn)
    .await
    .map_err(database("recording an attestation outcome"))?;
    let detail = json!({"attestation_tx": attestation_tx, "attempts": stored.attempts});
    audit::append_locked(conn, kind::DEPOSIT_ATTESTED, id.as_str(), &detail).await?;
    Ok(Transition::Applied)
}

/// `observed` or `attesting` → `target` (dropped or rejected), with the reason.
pub(super) async fn mark_finished(
    conn: &mut PgConnection,
    id: &DepositId,
    target: DepositStatus,
    reason: &str,
) -> Result<Transition, StoreError> {
    let stored = lock_row(conn, id).await?.ok_or_else(|| StoreError::UnknownDeposit(id.clone()))?;
    if stored.status == target {
        return Ok(Transition::Unchanged);
    }
    if !matches!(stored.status, DepositStatus::Observed | DepositStatus::Attesting) {
        return Err(StoreError::InvalidTransition { id: id.clone(), from: stored.status, to: target });
    }
    sqlx::query("UPDATE relayer_deposits SET status = $2, reason = $3, updated_at = now() WHERE deposit_id = $1")
        .bind(id.as_str())
        .bind(target.as_str())
        .bind(reason)
        .execute(&mut *conn)
        .await
        .map_err(database("finishing a deposit"))?;
    let audit_kind = if target == DepositStatus::Dropped { kind::DEPOSIT_DROPPED } else { kind::DEPOSIT_REJECTED };
    let detail = json!({
        "from": stored.status.as_str(),
        "reason": reason,
        "block_height": stored.observation.block_height,
        "block_hash": stored.observation.block_hash,
    });
    audit::append_locked(conn, audit_kind, id.as_str(), &detail).await?;
    Ok(Transition::Applied)
}

pub(super) async fn pending(pool: &PgPool) -> Result<Vec<DepositRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT_DEPOSITS} WHERE status IN ('observed', 'attesting') ORDER BY first_seen_at, deposit_id"
    ))
    .fetch_all(pool)
    .await
    .map_err(database("reading pending deposits"))?;
    rows.iter().map(record_from_row).collect()
}

pub(super) async fn attested_up_to(
    pool: &PgPool,
    chain: ferry_types::ParentChain,
    height: u64,
    limit: usize,
) -> Result<Vec<DepositRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT_DEPOSITS} WHERE chain = $1 AND status = 'attested' AND block_height <= $2 \
         ORDER BY block_height DESC, deposit_id LIMIT $3"
    ))
    .bind(chain.tag())
    .bind(i64::try_from(height).unwrap_or(i64::MAX))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(database("reading attested deposits"))?;
    rows.iter().map(record_from_row).collect()
}

pub(super) async fn fetch(pool: &PgPool, id: &DepositId) -> Result<Option<DepositRecord>, StoreError> {
    let row = sqlx::query(&format!("{SELECT_DEPOSITS} WHERE deposit_id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(database("reading a deposit"))?;
    row.as_ref().map(record_from_row).transpose()
}
