//! The signer's database: every payload it signed (`signer_signed`, keyed by federation epoch,
//! batch nonce and release version) and its hash-chained audit log (`signer_audit`, see
//! [`ferry_audit`]).
//!
//! The double-sign guard lives here. [`Store::record_signing`] runs in ONE transaction: take the
//! audit writers' lock (`LOCK TABLE signer_audit IN EXCLUSIVE MODE`, which serialises every
//! writer, also other signer processes on the same database), look up the (epoch, nonce,
//! version) row, and then
//! - a replacement (version `k + 1`) of a version `k` this signer signed, whose payload is not
//!   the one it signed: audit `batch.refused` (`double_sign`) and refuse — a replacement is
//!   signed only in the lineage this signer itself signed;
//! - no row: re-check the local cap against the rows under the lock ([`check_payload_cap`]; a
//!   listing change needs none), insert the row and an audit entry `batch.signed`;
//! - a row with the same payload hash: audit `batch.resigned` (a re-post after a crash or a lost
//!   transaction — the signature is the same bytes);
//! - a row with another payload hash: audit `batch.refused` (`double_sign`) and refuse.
//!
//! It commits before the caller signs anything, so no signature ever leaves the process without
//! its row and audit entry. Every decision about a batch is an audit row whose subject is
//! [`subject`]`(batch id)`.
//!
//! The database holds the same line (`migrations/20261209000001_signer_signed_append_only.sql`):
//! `signer_signed` is append-only (a trigger refuses UPDATE, DELETE and TRUNCATE, as on the audit
//! log), and deferred constraint triggers refuse, at commit, a `signer_signed` row without its
//! `batch.signed` audit row (same epoch, nonce, version and payload hash) and such an audit row
//! without its `signer_signed` row — the two tables cannot disagree silently. The signer connects
//! as `ferry_signer`, which may only read and append to both and owns neither, so it cannot drop
//! those triggers either.
//!
//! Queries are built at run time (`sqlx::query` with binds), as in the relayer, so the crate
//! builds without a database; the schema is `migrations/` (shared with the relayer, tables
//! prefixed by service), applied as the database's owner (`ferry-signer migrate`; or
//! [`Store::connect`] with the owner's URL). This module decides nothing about payloads beyond
//! the guard and the cap re-check.

use std::time::Duration;

use ferry_audit::AuditLog;
pub use ferry_audit::{AuditEntry, Break, BrokenRow, VerifyReport};
use ferry_daemon::postgres;
/// The schema, embedded from `migrations/` at build time.
pub use ferry_daemon::postgres::MIGRATOR;
/// The role this service connects as: it owns no table, and may only read and append to the
/// append-only ones (created by the migrations when missing).
pub const ROLE: &str = ferry_daemon::postgres::SIGNER_ROLE;
use ferry_types::{Amount, Denom, ParentChain};
use serde_json::{Value, json};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};

use crate::policy::{Policy, check_payload_cap};
use crate::rebuild::Rebuilt;
use crate::refusal::{Reason, Refusal};

/// The signer's audit log.
pub const LOG: AuditLog = AuditLog::SIGNER;

/// Connections the store keeps open at most.
const MAX_CONNECTIONS: u32 = 4;

/// Audit kinds written by the signer.
pub mod kind {
    /// A payload recorded as signed for the first time; its signature is about to be posted.
    pub const SIGNED: &str = "batch.signed";
    /// The payload already recorded for this (epoch, nonce, version) is signed again (re-post).
    pub const RESIGNED: &str = "batch.resigned";
    /// The batch was refused; the detail names the reason.
    pub const REFUSED: &str = "batch.refused";
    /// The signatures were included in a block.
    pub const POSTED: &str = "batch.posted";
    /// Posting the signatures failed (refused by the chain, or not confirmed).
    pub const POST_FAILED: &str = "batch.post_failed";
    /// A vote to abort the batch (naming the withdrawals refused) was cast; the detail says
    /// whether it was included.
    pub const ABORT_VOTE: &str = "batch.abort_vote";
    /// This member voted to refund a held withdrawal (`ferry-signer held refund`).
    pub const REFUND_VOTE: &str = "held.refund_vote";
    /// This member proposed to list or unlist a token (`ferry-signer listing`).
    pub const LISTING_PROPOSAL: &str = "listing.proposal";
    /// This member voted on an unattributed payment (`ferry-signer unattributed`).
    pub const UNATTRIBUTED_VOTE: &str = "unattributed.vote";
    /// This member proposed the next federation (`ferry-signer federation propose`).
    pub const FEDERATION_PROPOSAL: &str = "federation.proposal";
    /// This member proposed parameters (`ferry-signer federation propose-params`).
    pub const PARAMS_PROPOSAL: &str = "params.proposal";
    /// This member registered its signer keys (DKG encryption key, Bitcoin key) on the chain.
    pub const SIGNER_KEYS: &str = "federation.signer_keys";
    /// This member posted its dealing in a key generation (commitment and encrypted shares).
    pub const DKG_DEAL: &str = "dkg.deal";
    /// This member complained about a dealer whose share did not match its commitment.
    pub const DKG_COMPLAINT: &str = "dkg.complaint";
    /// This member confirmed its final share (the detail holds its public share).
    pub const DKG_CONFIRM: &str = "dkg.confirm";
}

/// The audit subject of everything about batch `id`: `batch-<id>`.
pub fn subject(batch: u64) -> String {
    format!("batch-{batch}")
}

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
        "the schema is not current and applying the migrations failed (they run as the database owner: `ferry-signer migrate`)"
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
    /// A number does not fit the column (`bigint`).
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
        /// The value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] ferry_audit::AuditError),
}

fn database(action: &'static str) -> impl Fn(sqlx::Error) -> StoreError + Copy {
    move |source| StoreError::Database { action, source }
}

fn to_bigint(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

/// What the double-sign guard decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guarded {
    /// First signature of this (epoch, nonce): recorded; sign and post.
    Recorded,
    /// This very payload was recorded before: sign it again and post (same bytes).
    AlreadyRecorded,
    /// Refused (another payload recorded for the key, or over the cap under the lock); audited.
    Refused(Refusal),
}

/// What the guard does given what is stored for a key and the payload offered. Pure.
fn guard(stored: Option<&[u8]>, offered: &[u8; 32]) -> GuardVerdict {
    match stored {
        None => GuardVerdict::Insert,
        Some(stored) if stored == offered.as_slice() => GuardVerdict::Same,
        Some(stored) => GuardVerdict::Conflict(hex::encode(stored)),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum GuardVerdict {
    Insert,
    Same,
    Conflict(String),
    /// A replacement of a version other than the one this signer signed (its hash).
    Lineage(String),
}

/// A row of `signer_signed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRecord {
    /// Federation epoch.
    pub epoch: u64,
    /// Batch nonce (the batch id).
    pub nonce: u64,
    /// `btc` or `eth`.
    pub chain: String,
    /// The asset.
    pub asset: String,
    /// SHA-256 of what was signed ([`Rebuilt::payload_hash`]).
    pub payload_hash: [u8; 32],
    /// The batch total.
    pub total: Amount,
}

/// The signer's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to `url` and checks that the schema is current. As the service role (`ferry_signer`,
    /// a daemon's usual connection) it applies nothing; as the database's owner it applies the
    /// pending migrations (idempotent; concurrent starts serialise on sqlx's advisory lock).
    ///
    /// # Errors
    /// [`StoreError::Connect`] when the server is unreachable, [`StoreError::Migrate`] when the
    /// schema is not current and cannot be brought up to date (as a service role: run
    /// `ferry-signer migrate` as the owner first).
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

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a writing transaction holding the audit writers' lock (taken first, always).
    async fn begin_write(&self) -> Result<Transaction<'_, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(database("beginning a transaction"))?;
        LOG.lock(&mut tx).await?;
        Ok(tx)
    }

    /// What this signer signed for `asset` within the last `window`, the row of (`epoch`,
    /// `nonce`) excluded (a re-sign must not count its own batch twice).
    ///
    /// # Errors
    /// Database errors; a stored sum that is no amount.
    pub async fn signed_in_window(
        &self,
        asset: &Denom,
        window: Duration,
        epoch: u64,
        nonce: u64,
    ) -> Result<Amount, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(database("acquiring a connection"))?;
        window_total(&mut connection, asset, window, epoch, nonce).await
    }

    /// The double-sign guard and the cap re-check, in one transaction with their audit entry
    /// (see the module documentation). Call it before signing; sign only on
    /// [`Guarded::Recorded`] or [`Guarded::AlreadyRecorded`].
    ///
    /// # Errors
    /// Database errors (nothing is recorded then, and nothing may be signed).
    pub async fn record_signing(&self, rebuilt: &Rebuilt, policy: &Policy) -> Result<Guarded, StoreError> {
        let epoch = to_bigint("epoch", rebuilt.epoch)?;
        let nonce = to_bigint("batch nonce", rebuilt.batch)?;
        let version = i64::from(rebuilt.version);
        let hash = rebuilt.payload_hash();
        let subject = subject(rebuilt.batch);
        let mut detail = json!({
            "epoch": rebuilt.epoch,
            "nonce": rebuilt.batch,
            "version": rebuilt.version,
            "chain": rebuilt.chain.tag(),
            "asset": rebuilt.asset.as_str(),
            "total": rebuilt.total.to_string(),
            "items": rebuilt.items(),
            "payload_hash": hex::encode(hash),
        });
        let mut tx = self.begin_write().await?;
        let signed_hash = |version: i64| {
            sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT payload_hash FROM signer_signed WHERE epoch = $1 AND nonce = $2 AND version = $3",
            )
            .bind(epoch)
            .bind(nonce)
            .bind(version)
        };
        let stored: Option<Vec<u8>> =
            signed_hash(version).fetch_optional(&mut *tx).await.map_err(database("looking up a signed payload"))?;
        // A replacement's lineage: the version it replaces must be the one this signer signed.
        let replaced: Option<Vec<u8>> = match (rebuilt.replaces, version.checked_sub(1)) {
            (Some(_), Some(previous)) if previous >= 0 => signed_hash(previous)
                .fetch_optional(&mut *tx)
                .await
                .map_err(database("looking up the replaced payload"))?,
            _ => None,
        };
        let verdict = match (&replaced, rebuilt.replaces) {
            (Some(signed), Some(claimed)) if signed.as_slice() != claimed.as_slice() && stored.is_none() => {
                GuardVerdict::Lineage(hex::encode(signed))
            }
            _ => guard(stored.as_deref(), &hash),
        };
        let outcome = match verdict {
            GuardVerdict::Lineage(signed) => {
                let refusal = Refusal::new(
                    Reason::DoubleSign,
                    format!(
                        "version {} of epoch {} nonce {} replaces a version this signer did not sign \
                         (signed {signed}, the chain shows {})",
                        rebuilt.version,
                        rebuilt.epoch,
                        rebuilt.batch,
                        rebuilt.replaces.map(hex::encode).unwrap_or_default()
                    ),
                );
                refusal_detail(&mut detail, &refusal);
                LOG.append_locked(&mut tx, kind::REFUSED, &subject, &detail).await?;
                Guarded::Refused(refusal)
            }
            GuardVerdict::Same => {
                LOG.append_locked(&mut tx, kind::RESIGNED, &subject, &detail).await?;
                Guarded::AlreadyRecorded
            }
            GuardVerdict::Conflict(stored) => {
                let refusal = Refusal::new(
                    Reason::DoubleSign,
                    format!(
                        "already signed a different payload for epoch {} nonce {} version {} (signed {stored}, offered {})",
                        rebuilt.epoch,
                        rebuilt.batch,
                        rebuilt.version,
                        hex::encode(hash)
                    ),
                );
                refusal_detail(&mut detail, &refusal);
                detail["signed_payload_hash"] = Value::String(stored);
                LOG.append_locked(&mut tx, kind::REFUSED, &subject, &detail).await?;
                Guarded::Refused(refusal)
            }
            GuardVerdict::Insert => {
                let signed = window_total(&mut tx, &rebuilt.asset, policy.window, rebuilt.epoch, rebuilt.batch).await?;
                match check_payload_cap(policy, rebuilt, signed) {
                    Err(refusal) => {
                        refusal_detail(&mut detail, &refusal);
                        LOG.append_locked(&mut tx, kind::REFUSED, &subject, &detail).await?;
                        Guarded::Refused(refusal)
                    }
                    Ok(()) => {
                        sqlx::query(
                            "INSERT INTO signer_signed (epoch, nonce, version, chain, asset, payload_hash, total) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7::numeric)",
                        )
                        .bind(epoch)
                        .bind(nonce)
                        .bind(version)
                        .bind(rebuilt.chain.tag())
                        .bind(rebuilt.asset.as_str())
                        .bind(hash.to_vec())
                        .bind(rebuilt.total.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(database("recording a signed payload"))?;
                        detail["signed_in_window_before"] = Value::String(signed.to_string());
                        LOG.append_locked(&mut tx, kind::SIGNED, &subject, &detail).await?;
                        Guarded::Recorded
                    }
                }
            }
        };
        tx.commit().await.map_err(database("committing a signing decision"))?;
        Ok(outcome)
    }

    /// Audits a refusal decided before the guard (rebuild or policy), with `detail` merged in.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_refusal(&self, batch: u64, refusal: &Refusal, detail: Value) -> Result<(), StoreError> {
        let mut detail = if detail.is_object() { detail } else { json!({ "context": detail }) };
        refusal_detail(&mut detail, refusal);
        self.append(kind::REFUSED, &subject(batch), &detail).await
    }

    /// Audits that batch `batch`'s signatures were included in transaction `tx` at `height`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_posted(&self, batch: u64, chain: ParentChain, tx: &str, height: u64) -> Result<(), StoreError> {
        self.append(kind::POSTED, &subject(batch), &json!({"chain": chain.tag(), "tx": tx, "height": height})).await
    }

    /// Audits an act of this member's key outside the signing loop (`kind`, about `subject`).
    ///
    /// # Errors
    /// Database errors.
    pub async fn append_event(&self, kind: &str, subject: &str, detail: &Value) -> Result<(), StoreError> {
        self.append(kind, subject, detail).await
    }

    /// Audits this signer's vote to abort batch `batch` and its outcome (`detail`).
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_abort_vote(&self, batch: u64, detail: Value) -> Result<(), StoreError> {
        self.append(kind::ABORT_VOTE, &subject(batch), &detail).await
    }

    /// Audits that posting batch `batch`'s signatures failed, and why.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_post_failed(&self, batch: u64, chain: ParentChain, error: &str) -> Result<(), StoreError> {
        self.append(kind::POST_FAILED, &subject(batch), &json!({"chain": chain.tag(), "error": error})).await
    }

    async fn append(&self, kind: &str, subject: &str, detail: &Value) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        LOG.append_locked(&mut tx, kind, subject, detail).await?;
        tx.commit().await.map_err(database("committing an audit entry"))?;
        Ok(())
    }

    /// Every version of (`epoch`, `nonce`) this signer signed, with its payload hash, in version order.
    ///
    /// # Errors
    /// Database errors; a row that does not read back.
    pub async fn signed_versions(&self, epoch: u64, nonce: u64) -> Result<Vec<(u32, [u8; 32])>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT version, payload_hash FROM signer_signed WHERE epoch = $1 AND nonce = $2 ORDER BY version",
        )
        .bind(to_bigint("epoch", epoch)?)
        .bind(to_bigint("batch nonce", nonce)?)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading the signed versions"))?;
        rows.into_iter()
            .map(|(version, hash)| {
                let corrupt = |what: &'static str, value: String, reason: &str| StoreError::CorruptRow {
                    what,
                    value,
                    reason: reason.to_owned(),
                };
                let version = u32::try_from(version)
                    .map_err(|_| corrupt("signer_signed.version", version.to_string(), "not a version number"))?;
                let hash: [u8; 32] = hash
                    .clone()
                    .try_into()
                    .map_err(|_| corrupt("signer_signed.payload_hash", hex::encode(&hash), "not 32 bytes"))?;
                Ok((version, hash))
            })
            .collect()
    }

    /// The record of (`epoch`, `nonce`) — its newest version — if this signer signed it.
    ///
    /// # Errors
    /// Database errors; a row that does not read back.
    pub async fn signed(&self, epoch: u64, nonce: u64) -> Result<Option<SignedRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT chain, asset, payload_hash, total::text AS total FROM signer_signed \
             WHERE epoch = $1 AND nonce = $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(to_bigint("epoch", epoch)?)
        .bind(to_bigint("batch nonce", nonce)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a signed payload"))?;
        let Some(row) = row else { return Ok(None) };
        let read = database("reading a signed payload");
        let hash: Vec<u8> = row.try_get("payload_hash").map_err(read)?;
        let total: String = row.try_get("total").map_err(read)?;
        Ok(Some(SignedRecord {
            epoch,
            nonce,
            chain: row.try_get("chain").map_err(read)?,
            asset: row.try_get("asset").map_err(read)?,
            payload_hash: hash.as_slice().try_into().map_err(|_| StoreError::CorruptRow {
                what: "signer_signed.payload_hash",
                value: hex::encode(&hash),
                reason: "not 32 bytes".to_owned(),
            })?,
            total: parse_amount("signer_signed.total", &total)?,
        }))
    }

    /// Rows in `signer_signed`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn signed_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM signer_signed")
            .fetch_one(&self.pool)
            .await
            .map_err(database("counting signed payloads"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Recomputes the audit log's hash chain and names the first broken row.
    ///
    /// # Errors
    /// Database errors only; a broken chain is reported in the [`VerifyReport`].
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        Ok(LOG.verify(&self.pool).await?)
    }

    /// The audit rows about batch `batch`, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn entries_for(&self, batch: u64) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(LOG.entries_for(&self.pool, &subject(batch)).await?)
    }
}

/// Sum of the totals signed for `asset` within `window` before now, (`epoch`, `nonce`) excluded;
/// a batch signed in several versions counts once (they pay the same withdrawals, and only one
/// version can confirm).
async fn window_total(
    connection: &mut sqlx::PgConnection,
    asset: &Denom,
    window: Duration,
    epoch: u64,
    nonce: u64,
) -> Result<Amount, StoreError> {
    let micros = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    let total: String = sqlx::query_scalar(
        "SELECT COALESCE(SUM(total), 0)::text FROM ( \
           SELECT DISTINCT ON (epoch, nonce) total FROM signer_signed \
           WHERE asset = $1 AND signed_at > now() - $2::bigint * interval '1 microsecond' \
           AND NOT (epoch = $3 AND nonce = $4) \
           ORDER BY epoch, nonce, version DESC \
         ) AS batches",
    )
    .bind(asset.as_str())
    .bind(micros)
    .bind(to_bigint("epoch", epoch)?)
    .bind(to_bigint("batch nonce", nonce)?)
    .fetch_one(connection)
    .await
    .map_err(database("summing the signed window"))?;
    parse_amount("sum(signer_signed.total)", &total)
}

fn parse_amount(what: &'static str, text: &str) -> Result<Amount, StoreError> {
    text.parse().map_err(|error: ferry_types::AmountError| StoreError::CorruptRow {
        what,
        value: text.to_owned(),
        reason: error.to_string(),
    })
}

fn refusal_detail(detail: &mut Value, refusal: &Refusal) {
    if let Some(object) = detail.as_object_mut() {
        object.insert("reason".to_owned(), Value::String(refusal.reason.label().to_owned()));
        object.insert("message".to_owned(), Value::String(refusal.message.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_inserts_once_repeats_the_same_payload_and_refuses_another() {
        let payload = [7u8; 32];
        assert_eq!(guard(None, &payload), GuardVerdict::Insert);
        assert_eq!(guard(Some(&[7u8; 32]), &payload), GuardVerdict::Same);
        assert_eq!(guard(Some(&[8u8; 32]), &payload), GuardVerdict::Conflict("08".repeat(32)));
    }

    #[test]
    fn subjects_name_the_batch() {
        assert_eq!(subject(42), "batch-42");
    }
}
