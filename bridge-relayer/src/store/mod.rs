//! Relay state and the audit log in PostgreSQL: watcher cursors, deposits and what was done about
//! them, scanned-and-refused outputs, releases delivered and attested ([`releases`]), and the
//! hash-chained audit log ([`audit`]), and the relayer's own index of the Bitcoin peg's outputs
//! ([`PegFlows`]).
//!
//! The database records intent before the relayer acts and the outcome after (observed →
//! attesting → attested; delivering → broadcast → confirmed → attesting → attested), so a relayer
//! restarted at any point re-evaluates exactly the deposits in [`Store::pending`] and the releases
//! in [`Store::unsettled_releases`] and never loses one; the chain deduplicates attestations sent
//! twice, and the parent chains pay a release once.
//! Every state change appends an audit row in the same transaction, so the log and the state
//! never disagree.
//!
//! Queries are built at run time (`sqlx::query` with binds), not with the `query!` macros, so the
//! crate builds without a database or `.sqlx/` offline data. The schema lives in `migrations/`
//! and is applied as the database's owner (`ferry-relayer migrate`, or [`Store::connect`] with
//! the owner's URL); the relayer itself connects as `ferry_relayer`, which owns no table. This module decides nothing about deposits: it only
//! refuses transitions that would rewrite history (for example attested → observed).

pub mod audit;
mod deposits;
mod exits;
mod peg_index;
pub mod releases;

use std::collections::BTreeMap;

use ferry_daemon::postgres;
/// The schema, embedded from `migrations/` at build time.
pub use ferry_daemon::postgres::MIGRATOR;
/// The role this service connects as: it owns no table, and may only read and append to the
/// append-only ones (created by the migrations when missing).
pub const ROLE: &str = ferry_daemon::postgres::RELAYER_ROLE;
use ferry_types::{DepositFacts, DepositId, ParentChain, deposit::DepositError};
use serde_json::{Value, json};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};

pub use audit::{AuditEntry, Break, BrokenRow, VerifyReport};
pub use deposits::{DepositRecord, DepositStatus, ObserveOutcome, Transition};
pub use peg_index::PegFlows;
pub use releases::{ReleaseRecord, ReleaseSummary};

pub use crate::delivery::decision::{Inclusion, ReleaseStatus};

/// Connections the store keeps open at most.
const MAX_CONNECTIONS: u32 = 8;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {url}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error(
        "the schema is not current and applying the migrations failed (they run as the database owner: `ferry-relayer migrate`)"
    )]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error while {action}")]
    Database {
        /// What the store was doing.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Deposit facts that are not self-consistent were handed in.
    #[error("refusing to record deposit {id}: {source}")]
    InvalidFacts {
        /// The deposit.
        id: DepositId,
        /// What is wrong.
        #[source]
        source: DepositError,
    },
    /// The deposit is not in the store.
    #[error("deposit {0} is not in the store")]
    UnknownDeposit(DepositId),
    /// The requested status change would rewrite history.
    #[error("deposit {id} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The deposit.
        id: DepositId,
        /// Its current status.
        from: DepositStatus,
        /// The status asked for.
        to: DepositStatus,
    },
    /// The release is not in the store.
    #[error("release of batch {0} is not in the store")]
    UnknownRelease(u64),
    /// The requested release status change would rewrite history.
    #[error("release of batch {batch} cannot go from {from} to {to}")]
    InvalidReleaseTransition {
        /// The batch.
        batch: u64,
        /// Its current status ("no record" when there is none).
        from: String,
        /// The status asked for.
        to: ReleaseStatus,
    },
    /// A number does not fit the column (heights are `bigint`).
    #[error("{what} {value} does not fit in a PostgreSQL bigint")]
    OutOfRange {
        /// What the number is.
        what: &'static str,
        /// The number.
        value: u64,
    },
    /// A stored value cannot be read back.
    #[error("stored {what} `{value}` is invalid: {reason}")]
    CorruptRow {
        /// The column.
        what: &'static str,
        /// The value (or the row it is in).
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] ferry_audit::AuditError),
}

/// Wraps a driver error with what the store was doing.
pub(crate) fn database(action: &'static str) -> impl Fn(sqlx::Error) -> StoreError + Copy {
    move |source| StoreError::Database { action, source }
}

/// Where a watcher stands on its parent chain: the last block fully processed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Its height.
    pub height: u64,
    /// Its hash (to detect a reorganisation below the cursor on restart).
    pub block_hash: String,
}

/// Deposits per status and rejections, for metrics. Every status is present (zero if none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCounts {
    /// Deposits per status.
    pub deposits: BTreeMap<DepositStatus, u64>,
    /// Scanned outputs or logs refused.
    pub rejections: u64,
}

/// The relayer's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to `url` and checks that the schema is current. As the service role (`ferry_relayer`,
    /// a daemon's usual connection) it applies nothing; as the database's owner it applies the
    /// pending migrations (idempotent; concurrent starts serialise on sqlx's advisory lock).
    ///
    /// # Errors
    /// [`StoreError::Connect`] when the server is unreachable, [`StoreError::Migrate`] when the
    /// schema is not current and cannot be brought up to date (as a service role: run
    /// `ferry-relayer migrate` as the owner first; or a migration changed after it was applied).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let pool = postgres::connect(url, MAX_CONNECTIONS)
            .await
            .map_err(|postgres::ConnectError { url, source }| StoreError::Connect { url, source })?;
        Store::from_pool(pool).await
    }

    /// Uses an existing pool, checking the schema as [`Store::connect`] does.
    ///
    /// # Errors
    /// [`StoreError::Migrate`] when the schema is not current and cannot be brought up to date.
    pub async fn from_pool(pool: PgPool) -> Result<Store, StoreError> {
        postgres::ensure_schema(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Store { pool })
    }

    /// The connection pool (for health checks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a writing transaction holding the audit writers' lock (taken first, always, so
    /// writers cannot deadlock).
    async fn begin_write(&self) -> Result<Transaction<'_, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(database("beginning a transaction"))?;
        audit::lock(&mut tx).await?;
        Ok(tx)
    }

    /// The watcher cursor of `chain`, if one was stored.
    ///
    /// # Errors
    /// Database errors; a stored negative height is [`StoreError::CorruptRow`].
    pub async fn cursor(&self, chain: ParentChain) -> Result<Option<Cursor>, StoreError> {
        let row = sqlx::query("SELECT height, block_hash FROM relayer_cursors WHERE chain = $1")
            .bind(chain.tag())
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a cursor"))?;
        let Some(row) = row else { return Ok(None) };
        let read = database("reading a cursor");
        let height: i64 = row.try_get("height").map_err(read)?;
        Ok(Some(Cursor {
            height: height_from_db("relayer_cursors.height", height)?,
            block_hash: row.try_get("block_hash").map_err(read)?,
        }))
    }

    /// Stores the watcher cursor of `chain` (forwards, or backwards after a reorganisation),
    /// with an audit row naming the previous position.
    ///
    /// # Errors
    /// Database errors; a height above `i64::MAX` is [`StoreError::OutOfRange`].
    pub async fn set_cursor(&self, chain: ParentChain, cursor: &Cursor) -> Result<(), StoreError> {
        let height = height_to_db("cursor height", cursor.height)?;
        let mut tx = self.begin_write().await?;
        let previous = sqlx::query("SELECT height, block_hash FROM relayer_cursors WHERE chain = $1")
            .bind(chain.tag())
            .fetch_optional(&mut *tx)
            .await
            .map_err(database("reading a cursor"))?;
        let previous = match previous {
            Some(row) => {
                let read = database("reading a cursor");
                let height: i64 = row.try_get("height").map_err(read)?;
                let hash: String = row.try_get("block_hash").map_err(read)?;
                json!({"height": height, "block_hash": hash})
            }
            None => Value::Null,
        };
        sqlx::query(
            "INSERT INTO relayer_cursors (chain, height, block_hash, updated_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (chain) DO UPDATE SET height = EXCLUDED.height, block_hash = EXCLUDED.block_hash, \
             updated_at = now()",
        )
        .bind(chain.tag())
        .bind(height)
        .bind(&cursor.block_hash)
        .execute(&mut *tx)
        .await
        .map_err(database("storing a cursor"))?;
        let detail = json!({"height": cursor.height, "block_hash": cursor.block_hash, "previous": previous});
        audit::append_locked(&mut tx, audit::kind::CURSOR_SET, &format!("cursor:{}", chain.tag()), &detail).await?;
        tx.commit().await.map_err(database("committing a cursor"))?;
        Ok(())
    }

    /// Records a deposit seen in block (`block_height`, `block_hash`). Idempotent: the same
    /// observation again changes nothing and appends nothing. A deposit seen in another block
    /// while still unconfirmed, or after it was dropped, moves to that block and is `observed`
    /// again (a reorganisation re-included it).
    ///
    /// # Errors
    /// [`StoreError::InvalidFacts`] for inconsistent facts, database errors. The id stored with
    /// other facts is not an error: [`ObserveOutcome::Conflicting`], audited.
    pub async fn record_observed(
        &self,
        facts: &DepositFacts,
        block_height: u64,
        block_hash: &str,
    ) -> Result<ObserveOutcome, StoreError> {
        facts.validate().map_err(|source| StoreError::InvalidFacts { id: facts.id(), source })?;
        let height = height_to_db("block height", block_height)?;
        let mut tx = self.begin_write().await?;
        let outcome = deposits::record_observed(&mut tx, facts, false, height, block_hash).await?;
        tx.commit().await.map_err(database("committing an observation"))?;
        Ok(outcome)
    }

    /// Records every deposit of one block as [`Store::record_observed`] does, in one database
    /// transaction (a watcher catching up writes a block at a time): all are recorded or, on an
    /// error, none. Outcomes are in the order of `observations`. Each deposit comes with whether
    /// a coinbase transaction paid it (attested only once mature).
    ///
    /// # Errors
    /// As [`Store::record_observed`], for the first deposit that fails.
    pub async fn record_observed_in_block(
        &self,
        observations: &[(DepositFacts, bool)],
        block_height: u64,
        block_hash: &str,
    ) -> Result<Vec<ObserveOutcome>, StoreError> {
        for (facts, _) in observations {
            facts.validate().map_err(|source| StoreError::InvalidFacts { id: facts.id(), source })?;
        }
        let height = height_to_db("block height", block_height)?;
        let mut tx = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(observations.len());
        for (facts, coinbase) in observations {
            outcomes.push(deposits::record_observed(&mut tx, facts, *coinbase, height, block_hash).await?);
        }
        tx.commit().await.map_err(database("committing observations"))?;
        Ok(outcomes)
    }

    /// Deposits still to be decided — `observed` (waiting for confirmations) or `attesting`
    /// (intent recorded, outcome unknown: send again) — oldest first. What a restarted relayer
    /// feeds back into its tracker.
    ///
    /// # Errors
    /// Database errors, or a stored row that no longer parses.
    pub async fn pending(&self) -> Result<Vec<DepositRecord>, StoreError> {
        deposits::pending(&self.pool).await
    }

    /// The attested deposits of `chain` seen in blocks at or below `height`, the highest first,
    /// at most `limit`.
    ///
    /// # Errors
    /// Database errors, or a stored row that no longer parses.
    pub async fn attested_up_to(
        &self,
        chain: ParentChain,
        height: u64,
        limit: usize,
    ) -> Result<Vec<DepositRecord>, StoreError> {
        deposits::attested_up_to(&self.pool, chain, height, limit).await
    }

    /// One deposit, whatever its status.
    ///
    /// # Errors
    /// Database errors, or a stored row that no longer parses.
    pub async fn deposit(&self, id: &DepositId) -> Result<Option<DepositRecord>, StoreError> {
        deposits::fetch(&self.pool, id).await
    }

    /// Records the intent to send an attestation (`observed` → `attesting`, or `attesting` again
    /// when resending after a restart). Returns the attempt number, starting at 1.
    ///
    /// # Errors
    /// [`StoreError::UnknownDeposit`], [`StoreError::InvalidTransition`] from any other status.
    pub async fn mark_attesting(&self, id: &DepositId) -> Result<u32, StoreError> {
        let mut tx = self.begin_write().await?;
        let attempt = deposits::mark_attesting(&mut tx, id).await?;
        tx.commit().await.map_err(database("committing an intent"))?;
        Ok(attempt)
    }

    /// Records that the sidechain accepted the attestation sent in transaction `attestation_tx`
    /// (`attesting` → `attested`; already `attested` is [`Transition::Unchanged`]).
    ///
    /// # Errors
    /// [`StoreError::UnknownDeposit`], [`StoreError::InvalidTransition`] when no intent was
    /// recorded (`observed`) or the deposit was dropped or rejected.
    pub async fn mark_attested(&self, id: &DepositId, attestation_tx: &str) -> Result<Transition, StoreError> {
        let mut tx = self.begin_write().await?;
        let transition = deposits::mark_attested(&mut tx, id, attestation_tx).await?;
        tx.commit().await.map_err(database("committing an outcome"))?;
        Ok(transition)
    }

    /// Records that a reorganisation removed the deposit's block (`observed` or `attesting` →
    /// `dropped`; already `dropped` is [`Transition::Unchanged`]).
    ///
    /// # Errors
    /// [`StoreError::UnknownDeposit`], [`StoreError::InvalidTransition`] from `attested` or
    /// `rejected`.
    pub async fn mark_dropped(&self, id: &DepositId, reason: &str) -> Result<Transition, StoreError> {
        let mut tx = self.begin_write().await?;
        let transition = deposits::mark_finished(&mut tx, id, DepositStatus::Dropped, reason).await?;
        tx.commit().await.map_err(database("committing a drop"))?;
        Ok(transition)
    }

    /// Records that the sidechain refused the deposit's attestation for good (`observed` or
    /// `attesting` → `rejected`; already `rejected` is [`Transition::Unchanged`]).
    ///
    /// # Errors
    /// [`StoreError::UnknownDeposit`], [`StoreError::InvalidTransition`] from `attested` or
    /// `dropped`.
    pub async fn mark_rejected(&self, id: &DepositId, reason: &str) -> Result<Transition, StoreError> {
        let mut tx = self.begin_write().await?;
        let transition = deposits::mark_finished(&mut tx, id, DepositStatus::Rejected, reason).await?;
        tx.commit().await.map_err(database("committing a rejection"))?;
        Ok(transition)
    }

    /// Records an output (Bitcoin `vout`) or log (Ethereum log index) that was scanned and refused
    /// — malformed memo, wrong address — with the reason. Idempotent: returns whether it was new
    /// (only a new rejection appends an audit row; the first reason is kept).
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_rejected(
        &self,
        chain: ParentChain,
        tx_id: &str,
        index: u32,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let subject = format!("{chain}:{tx_id}:{index}");
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO relayer_rejections (subject, chain, tx_id, idx, reason) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (subject) DO NOTHING",
        )
        .bind(&subject)
        .bind(chain.tag())
        .bind(tx_id)
        .bind(i64::from(index))
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(database("recording a rejection"))?
        .rows_affected()
            == 1;
        if inserted {
            let detail = json!({"chain": chain.tag(), "tx_id": tx_id, "index": index, "reason": reason});
            audit::append_locked(&mut tx, audit::kind::SCAN_REJECTED, &subject, &detail).await?;
        }
        tx.commit().await.map_err(database("committing a rejection"))?;
        Ok(inserted)
    }

    /// Deposits per status (every status present) and the number of rejections.
    ///
    /// # Errors
    /// Database errors, or an unknown status in the table.
    pub async fn counts(&self) -> Result<StatusCounts, StoreError> {
        let mut deposits: BTreeMap<DepositStatus, u64> = DepositStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        let rows = sqlx::query("SELECT status, count(*) AS n FROM relayer_deposits GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(database("counting deposits"))?;
        let read = database("counting deposits");
        for row in rows {
            let status: String = row.try_get("status").map_err(read)?;
            let count: i64 = row.try_get("n").map_err(read)?;
            deposits.insert(status.parse()?, u64::try_from(count).unwrap_or(0));
        }
        let rejections: i64 = sqlx::query_scalar("SELECT count(*) FROM relayer_rejections")
            .fetch_one(&self.pool)
            .await
            .map_err(database("counting rejections"))?;
        Ok(StatusCounts { deposits, rejections: u64::try_from(rejections).unwrap_or(0) })
    }

    /// One release, whatever its status.
    ///
    /// # Errors
    /// Database errors, or a stored row that no longer parses.
    pub async fn release(&self, batch: u64) -> Result<Option<ReleaseRecord>, StoreError> {
        releases::fetch(&self.pool, batch).await
    }

    /// Releases the sidechain has not settled yet (as far as this store knows), by batch id:
    /// what a restarted delivery loop re-checks besides the chain's pending batches.
    ///
    /// # Errors
    /// Database errors, or a stored row that no longer parses.
    pub async fn unsettled_releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        releases::unsettled(&self.pool).await
    }

    /// Records the intent to hand the release to its parent chain as `parent_tx` (the Bitcoin
    /// txid, or the hash of the signed Ethereum transaction about to be sent): creates the row,
    /// or moves it back to `delivering` from `delivering` or `broadcast` outside a block. Returns
    /// the attempt number, starting at 1.
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] once the release is in a block or further.
    pub async fn mark_release_delivering(&self, summary: &ReleaseSummary, parent_tx: &str) -> Result<u32, StoreError> {
        let mut tx = self.begin_write().await?;
        let attempt = releases::mark_delivering(&mut tx, summary, parent_tx).await?;
        tx.commit().await.map_err(database("committing a delivery intent"))?;
        Ok(attempt)
    }

    /// Records that the parent chain's node took the release (`delivering` → `broadcast`).
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] from any other status.
    pub async fn mark_release_broadcast(&self, batch: u64, parent_tx: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        releases::mark_broadcast(&mut tx, batch, parent_tx).await?;
        tx.commit().await.map_err(database("committing a delivery outcome"))
    }

    /// Records why a delivery failed, keeping the status (a release not yet stored is created
    /// `delivering`); returns whether the reason is new (only a new reason appends an audit row).
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] once the release is in a block; database errors.
    pub async fn record_release_failure(&self, summary: &ReleaseSummary, reason: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = releases::record_delivery_failure(&mut tx, summary, reason).await?;
        tx.commit().await.map_err(database("committing a delivery failure"))?;
        Ok(changed)
    }

    /// Records the block holding the release (found in the best chain, whoever sent it): creates
    /// the row as `broadcast`, or sets the block of a `delivering`/`broadcast` row without one.
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] when a block is already recorded or the release is
    /// further along.
    pub async fn mark_release_included(
        &self,
        summary: &ReleaseSummary,
        inclusion: &Inclusion,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        releases::mark_included(&mut tx, summary, inclusion).await?;
        tx.commit().await.map_err(database("committing a release's block"))
    }

    /// Records that a reorganisation removed the release's block (back to `broadcast`, no block),
    /// naming the hash now canonical at its height.
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] unless a block is recorded and the release is
    /// `broadcast`, `confirmed` or `attesting`.
    pub async fn mark_release_reorged(&self, batch: u64, canonical: Option<&str>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        releases::mark_reorged(&mut tx, batch, canonical).await?;
        tx.commit().await.map_err(database("committing a release reorganisation"))
    }

    /// Records that the release's block is `confirmations` deep and canonical (→ `confirmed`).
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] without a recorded block, or past `broadcast`.
    pub async fn mark_release_confirmed(&self, batch: u64, confirmations: u64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        releases::mark_confirmed(&mut tx, batch, confirmations).await?;
        tx.commit().await.map_err(database("committing a release confirmation"))
    }

    /// Records the intent to send this member's release attestation (`confirmed` → `attesting`,
    /// or `attesting` again when resending). Returns the attempt number, starting at 1.
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] from any other status.
    pub async fn mark_release_attesting(&self, batch: u64) -> Result<u32, StoreError> {
        let mut tx = self.begin_write().await?;
        let attempt = releases::mark_attesting(&mut tx, batch).await?;
        tx.commit().await.map_err(database("committing an attestation intent"))?;
        Ok(attempt)
    }

    /// Records that the sidechain holds this member's attestation of `parent_tx` (carried by
    /// `attestation_tx` when known). Returns whether the row changed.
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] for an unknown or settled release.
    pub async fn mark_release_attested(
        &self,
        batch: u64,
        parent_tx: &str,
        attestation_tx: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = releases::mark_attested(&mut tx, batch, parent_tx, attestation_tx).await?;
        tx.commit().await.map_err(database("committing an attestation outcome"))?;
        Ok(changed)
    }

    /// Records that the sidechain refused the release attestation for good (`attesting` →
    /// `refused`).
    ///
    /// # Errors
    /// [`StoreError::InvalidReleaseTransition`] from any other status.
    pub async fn mark_release_refused(&self, batch: u64, reason: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        releases::mark_refused(&mut tx, batch, reason).await?;
        tx.commit().await.map_err(database("committing an attestation refusal"))
    }

    /// Records that the sidechain settled the batch with `release_tx`. Returns whether the row
    /// changed (already `settled`: no).
    ///
    /// # Errors
    /// [`StoreError::UnknownRelease`], database errors.
    pub async fn mark_release_settled(&self, batch: u64, release_tx: Option<&str>) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = releases::mark_settled(&mut tx, batch, release_tx).await?;
        tx.commit().await.map_err(database("committing a settlement"))?;
        Ok(changed)
    }

    /// Releases per (parent chain, status); combinations without rows are left out.
    ///
    /// # Errors
    /// Database errors, or an unknown chain or status in the table.
    pub async fn release_counts(&self) -> Result<Vec<(ParentChain, ReleaseStatus, u64)>, StoreError> {
        releases::counts(&self.pool).await
    }

    /// Appends an audit row in its own transaction.
    ///
    /// # Errors
    /// Database errors, or a detail JSON cannot hold (jsonb refuses `\u0000` in strings).
    pub async fn append(&self, kind: &str, subject: &str, detail: &Value) -> Result<AuditEntry, StoreError> {
        let mut tx = self.begin_write().await?;
        let entry = audit::append_locked(&mut tx, kind, subject, detail).await?;
        tx.commit().await.map_err(database("committing an audit row"))?;
        Ok(entry)
    }

    /// Recomputes the audit chain and names the first broken row.
    ///
    /// # Errors
    /// Database errors only; a broken chain is reported in the [`VerifyReport`].
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        audit::verify(&self.pool).await
    }

    /// The audit rows about `subject` (a deposit id, `cursor:btc`, …), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit_entries(&self, subject: &str) -> Result<Vec<AuditEntry>, StoreError> {
        audit::entries_for(&self.pool, subject).await
    }
}

fn height_to_db(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

fn height_from_db(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::CorruptRow {
        what,
        value: value.to_string(),
        reason: "negative".to_owned(),
    })
}
