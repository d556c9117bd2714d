//! `ferry-audit`: the services' audit logs — append-only, hash-chained PostgreSQL tables, one per
//! service (`relayer_audit`, `signer_audit`), all with the same columns and the same rules.
//!
//! Each row's `hash = sha256(prev || canonical_row(domain, seq, at, kind, subject, detail))`, where
//! `prev` is the previous row's hash ([`GENESIS_PREV_HASH`] for the first row, whose `prev_hash`
//! column is NULL) and `domain` names the log ([`AuditLog::domain`]). The canonical encoding is
//! defined here and nowhere else; a database trigger (created by each service's migration)
//! refuses UPDATE, DELETE and TRUNCATE, and [`AuditLog::verify`] recomputes the chain and names the
//! first row whose content or link no longer matches.
//!
//! Writers serialise on `LOCK TABLE <log> IN EXCLUSIVE MODE` (readers are not blocked), so the
//! row read as "previous" is the last committed row and concurrent appends cannot fork the chain.
//! A service's every writing transaction takes that lock first, so lock order is the same
//! everywhere and writers cannot deadlock. The lock is taken through the migrations' function
//! `ferry_audit_lock(log)` (SECURITY DEFINER, the owner's rights): LOCK in that mode needs
//! UPDATE, DELETE or TRUNCATE on the table, which the services' roles do not have — they may
//! only read and append (`migrations/20261209000002_service_roles.sql`).
//!
//! This crate knows nothing about deposits or releases: kinds, subjects and details are the
//! caller's vocabulary.

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};

/// One service's audit log: its table and the domain tag that opens every canonical row (so an
/// audit hash can never be mistaken for another Ferry hash, nor one log's row for another's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditLog {
    table: &'static str,
    domain: &'static str,
}

impl AuditLog {
    /// The relayer's log.
    pub const RELAYER: AuditLog = AuditLog { table: "relayer_audit", domain: "ferry/relayer/audit/v1" };
    /// The signer's log.
    pub const SIGNER: AuditLog = AuditLog { table: "signer_audit", domain: "ferry/signer/audit/v1" };

    /// The table.
    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The domain tag hashed into every row.
    pub fn domain(&self) -> &'static str {
        self.domain
    }
}

/// Why an audit-log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A query failed.
    #[error("database error while {action}")]
    Database {
        /// What the log was doing.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A detail could not be encoded or decoded as JSON.
    #[error("audit detail is not valid JSON")]
    Detail(#[source] serde_json::Error),
    /// A stored value cannot be read back.
    #[error("stored {what} `{value}` is invalid: {reason}")]
    CorruptRow {
        /// The column.
        what: String,
        /// The value (or the row it is in).
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

fn database(action: &'static str) -> impl Fn(sqlx::Error) -> AuditError + Copy {
    move |source| AuditError::Database { action, source }
}

/// The `prev` hashed into the first row of the chain.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// Rows read per round trip while verifying.
const VERIFY_PAGE: i64 = 1000;

/// One row of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the log (increasing; gaps are possible after rolled-back appends).
    pub seq: i64,
    /// When it was appended, in microseconds since the Unix epoch (UTC).
    pub at_micros: i64,
    /// What happened (`deposit.observed`, …).
    pub kind: String,
    /// What it happened to (a deposit id, `cursor:btc`, …).
    pub subject: String,
    /// Details, as stored (jsonb).
    pub detail: Value,
    /// The previous row's hash; `None` for the first row.
    pub prev_hash: Option<[u8; 32]>,
    /// This row's hash.
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// `at` as RFC 3339 UTC with microseconds, as hashed.
    pub fn at_rfc3339(&self) -> String {
        format_rfc3339_micros(self.at_micros)
    }
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked and found intact (all rows when the chain is intact).
    pub rows_intact: u64,
    /// The last intact row: its `seq` and hash (an operator may record it as an anchor; a chain
    /// cut off after it is only detectable against such an anchor).
    pub head: Option<(i64, [u8; 32])>,
    /// The first row that does not verify, if any; verification stops there.
    pub first_broken: Option<BrokenRow>,
    /// The log checked against an anchored head ([`AuditLog::verify_against`]), if one was given.
    pub anchor: Option<AnchorCheck>,
}

impl VerifyReport {
    /// Whether every row verified and the log holds the anchored head, if one was given.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none() && self.anchor.as_ref().is_none_or(AnchorCheck::holds)
    }

    /// The report as JSON: `intact`, `rows_intact`, `head` (`seq`, `hash`), `first_broken`
    /// (`seq`, `kind`, `subject`, `problem`) and `anchor` (`outcome`, `message` and the anchor).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "intact": self.is_intact(),
            "rows_intact": self.rows_intact,
            "head": self.head.map(|(seq, hash)| serde_json::json!({"seq": seq, "hash": hex::encode(hash)})),
            "first_broken": self.first_broken.as_ref().map(|broken| serde_json::json!({
                "seq": broken.seq,
                "kind": broken.kind,
                "subject": broken.subject,
                "problem": broken.problem.to_string(),
            })),
            "anchor": self.anchor.as_ref().map(AnchorCheck::to_json),
            "report": self.to_string(),
        })
    }
}

/// A head recorded outside the database (on the sidechain: `MsgAnchorAudit`) that the log must
/// still hold: its first `rows` rows, the last of which hashes to `head_hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// Rows the log held when anchored.
    pub rows: u64,
    /// The hash of its `rows`-th row (oldest first).
    pub head_hash: [u8; 32],
    /// Where it was recorded (the sidechain height), for the report.
    pub height: u64,
}

/// The log's head, as [`AuditLog::head`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHead {
    /// Rows in the log.
    pub rows: u64,
    /// The newest row's `seq`.
    pub seq: i64,
    /// The newest row's stored hash.
    pub hash: [u8; 32],
}

/// The log checked against an [`Anchor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorCheck {
    /// The anchored row is in the log and hashes to the anchored head.
    Holds {
        /// The anchor.
        anchor: Anchor,
    },
    /// The log has fewer rows than were anchored: its tail was deleted.
    DeletedTail {
        /// The anchor.
        anchor: Anchor,
        /// Rows the log has.
        log_rows: u64,
    },
    /// The anchored row hashes to something else: the history up to it was rewritten (and
    /// re-hashed, when the chain alone still verifies).
    Rewritten {
        /// The anchor.
        anchor: Anchor,
        /// The `seq` of the log's `anchor.rows`-th row.
        seq: i64,
        /// What that row hashes to.
        hash: [u8; 32],
    },
    /// The chain breaks before the anchored row, so it could not be checked (the break is named).
    NotReached {
        /// The anchor.
        anchor: Anchor,
    },
}

impl AnchorCheck {
    /// Whether the log holds the anchored head.
    pub fn holds(&self) -> bool {
        matches!(self, AnchorCheck::Holds { .. })
    }

    fn anchor(&self) -> &Anchor {
        match self {
            AnchorCheck::Holds { anchor }
            | AnchorCheck::DeletedTail { anchor, .. }
            | AnchorCheck::Rewritten { anchor, .. }
            | AnchorCheck::NotReached { anchor } => anchor,
        }
    }

    /// `holds`, `deleted_tail`, `rewritten` or `not_reached`.
    pub fn outcome(&self) -> &'static str {
        match self {
            AnchorCheck::Holds { .. } => "holds",
            AnchorCheck::DeletedTail { .. } => "deleted_tail",
            AnchorCheck::Rewritten { .. } => "rewritten",
            AnchorCheck::NotReached { .. } => "not_reached",
        }
    }

    fn to_json(&self) -> Value {
        let anchor = self.anchor();
        let mut value = serde_json::json!({
            "outcome": self.outcome(),
            "message": self.to_string(),
            "anchored_rows": anchor.rows,
            "anchored_hash": hex::encode(anchor.head_hash),
            "anchored_height": anchor.height,
        });
        if let (AnchorCheck::DeletedTail { log_rows, .. }, Some(object)) = (self, value.as_object_mut()) {
            object.insert("log_rows".to_owned(), (*log_rows).into());
        }
        if let (AnchorCheck::Rewritten { seq, hash, .. }, Some(object)) = (self, value.as_object_mut()) {
            object.insert("seq".to_owned(), (*seq).into());
            object.insert("hash".to_owned(), hex::encode(hash).into());
        }
        value
    }
}

impl fmt::Display for AnchorCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorCheck::Holds { anchor } => write!(
                f,
                "anchored head holds: row {} hashes to {}, anchored at height {}",
                anchor.rows,
                hex::encode(anchor.head_hash),
                anchor.height
            ),
            AnchorCheck::DeletedTail { anchor, log_rows } => write!(
                f,
                "deleted tail: {} rows anchored at height {}, the log has {log_rows}",
                anchor.rows, anchor.height
            ),
            AnchorCheck::Rewritten { anchor, seq, hash } => write!(
                f,
                "history rewritten: row {} (seq {seq}) hashes to {}, anchored {} at height {}",
                anchor.rows,
                hex::encode(hash),
                hex::encode(anchor.head_hash),
                anchor.height
            ),
            AnchorCheck::NotReached { anchor } => write!(
                f,
                "anchored head not checked: the chain breaks before row {} (anchored at height {})",
                anchor.rows, anchor.height
            ),
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.first_broken, self.head) {
            (Some(broken), _) => write!(f, "audit chain BROKEN after {} intact rows: {broken}", self.rows_intact),
            (None, Some((seq, hash))) => {
                write!(f, "audit chain intact: {} rows, head seq {seq} hash {}", self.rows_intact, hex::encode(hash))
            }
            (None, None) => f.write_str("audit chain intact: empty"),
        }?;
        match &self.anchor {
            Some(check) => write!(f, "\n{check}"),
            None => Ok(()),
        }
    }
}

/// A verification under way: the report, and the anchored row once reached.
struct ChainWalk {
    report: VerifyReport,
    anchored_row: Option<(i64, [u8; 32])>,
}

impl Default for ChainWalk {
    fn default() -> Self {
        ChainWalk {
            report: VerifyReport { rows_intact: 0, head: None, first_broken: None, anchor: None },
            anchored_row: None,
        }
    }
}

/// The first row that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenRow {
    /// Its `seq`.
    pub seq: i64,
    /// Its kind, as stored.
    pub kind: String,
    /// Its subject, as stored.
    pub subject: String,
    /// What does not match.
    pub problem: Break,
}

impl fmt::Display for BrokenRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row seq {} ({} {}): {}", self.seq, self.kind, self.subject, self.problem)
    }
}

/// How a row fails verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// The row's content no longer hashes to its stored hash: the row was altered.
    Content {
        /// The hash recomputed from the row and the previous row's hash.
        expected: [u8; 32],
        /// The hash stored in the row.
        stored: Vec<u8>,
    },
    /// The row's `prev_hash` is not the previous row's hash: a row was removed or inserted before
    /// it, or the previous row was re-hashed after being altered.
    Link {
        /// The previous row's hash (`None`: this is the first row).
        expected: Option<[u8; 32]>,
        /// The `prev_hash` stored in the row.
        stored: Option<Vec<u8>>,
    },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let optional = |hash: Option<&[u8]>| hash.map_or_else(|| "none".to_owned(), hex::encode);
        match self {
            Break::Content { expected, stored } => {
                write!(f, "content altered: expected hash {}, stored {}", hex::encode(expected), hex::encode(stored))
            }
            Break::Link { expected, stored } => write!(
                f,
                "link broken: expected prev_hash {}, stored {}",
                optional(expected.as_ref().map(|h| h.as_slice())),
                optional(stored.as_deref())
            ),
        }
    }
}

/// The canonical bytes of a row, hashed into the chain: the netstrings (`<length>:<bytes>,`) of
/// `domain`, `seq` in decimal, `at` as RFC 3339 UTC with microseconds, `kind`, `subject`
/// and [`canonical_json`] of `detail`. Length prefixes make the encoding unambiguous whatever the
/// fields contain.
pub fn canonical_row(domain: &str, seq: i64, at_micros: i64, kind: &str, subject: &str, detail: &Value) -> Vec<u8> {
    let fields = [
        domain.to_owned(),
        seq.to_string(),
        format_rfc3339_micros(at_micros),
        kind.to_owned(),
        subject.to_owned(),
        canonical_json(detail),
    ];
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(field.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(field.as_bytes());
        out.push(b',');
    }
    out
}

/// `sha256(prev || canonical)`.
pub fn chain_hash(prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// Canonical JSON: no whitespace, object keys sorted by their UTF-8 bytes, strings escaped as
/// `serde_json` escapes them, numbers as `serde_json` prints them. Independent of whether
/// `serde_json` preserves insertion order.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_json_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (position, (key, item)) in entries.into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(text: &str, out: &mut String) {
    // Serialising a `str` cannot fail; `Value::String` goes through the same escaping.
    out.push_str(&Value::String(text.to_owned()).to_string());
}

/// Formats microseconds since the Unix epoch as RFC 3339 UTC with exactly six fractional digits
/// (`2025-11-23T20:33:01.000123Z`).
pub fn format_rfc3339_micros(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:06}Z",
        second_of_day / 3600,
        (second_of_day / 60) % 60,
        second_of_day % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A row as read back, before its hashes are checked.
struct RawRow {
    seq: i64,
    at_micros: i64,
    kind: String,
    subject: String,
    detail: Value,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
}

impl AuditLog {
    /// Takes the writers' lock (`LOCK TABLE <log> IN EXCLUSIVE MODE`, through
    /// `ferry_audit_lock`, until the transaction ends). Every writing transaction of the store
    /// calls this first.
    pub async fn lock(&self, conn: &mut PgConnection) -> Result<(), AuditError> {
        sqlx::query("SELECT ferry_audit_lock($1)")
            .bind(self.table)
            .execute(conn)
            .await
            .map_err(database("locking the audit log"))?;
        Ok(())
    }

    /// Appends a row inside the caller's transaction, which must hold [`lock`].
    pub async fn append_locked(
        &self,
        conn: &mut PgConnection,
        kind: &str,
        subject: &str,
        detail: &Value,
    ) -> Result<AuditEntry, AuditError> {
        let previous: Option<Vec<u8>> =
            sqlx::query_scalar(&format!("SELECT hash FROM {} ORDER BY seq DESC LIMIT 1", self.table))
                .fetch_optional(&mut *conn)
                .await
                .map_err(database("reading the last audit hash"))?;
        let prev_hash = previous.map(|bytes| self.hash_from_db("hash", bytes)).transpose()?;
        // The detail goes through jsonb once before hashing, so what is hashed is exactly what
        // `verify` will read back (jsonb normalises numbers and drops duplicate keys).
        let detail_text = serde_json::to_string(detail).map_err(AuditError::Detail)?;
        let row = sqlx::query(&format!(
            "SELECT nextval(pg_get_serial_sequence('{}', 'seq')) AS seq, \
                (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS at_micros, \
                $1::jsonb::text AS detail",
            self.table
        ))
        .bind(&detail_text)
        .fetch_one(&mut *conn)
        .await
        .map_err(database("allocating an audit row"))?;
        let seq: i64 = row.try_get("seq").map_err(database("reading the audit seq"))?;
        let at_micros: i64 = row.try_get("at_micros").map_err(database("reading the audit time"))?;
        let stored_text: String = row.try_get("detail").map_err(database("reading the audit detail"))?;
        let stored_detail: Value = serde_json::from_str(&stored_text).map_err(AuditError::Detail)?;
        let canonical = canonical_row(self.domain, seq, at_micros, kind, subject, &stored_detail);
        let hash = chain_hash(prev_hash.as_ref().unwrap_or(&GENESIS_PREV_HASH), &canonical);
        sqlx::query(&format!(
            "INSERT INTO {} (seq, at, kind, subject, detail, prev_hash, hash) \
         VALUES ($1, $2::timestamptz, $3, $4, $5::jsonb, $6, $7)",
            self.table
        ))
        .bind(seq)
        .bind(format_rfc3339_micros(at_micros))
        .bind(kind)
        .bind(subject)
        .bind(&stored_text)
        .bind(prev_hash.map(|h| h.to_vec()))
        .bind(hash.to_vec())
        .execute(&mut *conn)
        .await
        .map_err(database("inserting an audit row"))?;
        Ok(AuditEntry {
            seq,
            at_micros,
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            detail: stored_detail,
            prev_hash,
            hash,
        })
    }

    fn hash_from_db(&self, column: &str, bytes: Vec<u8>) -> Result<[u8; 32], AuditError> {
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| AuditError::CorruptRow {
            what: format!("{}.{column}", self.table),
            value: hex::encode(&bytes),
            reason: format!("{} bytes, expected 32", bytes.len()),
        })
    }

    fn select_rows(&self) -> String {
        format!(
            "SELECT seq, (extract(epoch FROM at) * 1000000)::bigint AS at_micros, kind, subject, \
         detail::text AS detail, prev_hash, hash FROM {}",
            self.table
        )
    }

    fn raw_row(&self, row: &sqlx::postgres::PgRow) -> Result<RawRow, AuditError> {
        let read = database("reading an audit row");
        let seq: i64 = row.try_get("seq").map_err(read)?;
        let detail_text: String = row.try_get("detail").map_err(read)?;
        let detail = serde_json::from_str(&detail_text).map_err(|error| AuditError::CorruptRow {
            what: format!("{}.detail", self.table),
            value: format!("seq {seq}"),
            reason: error.to_string(),
        })?;
        Ok(RawRow {
            seq,
            at_micros: row.try_get("at_micros").map_err(read)?,
            kind: row.try_get("kind").map_err(read)?,
            subject: row.try_get("subject").map_err(read)?,
            detail,
            prev_hash: row.try_get("prev_hash").map_err(read)?,
            hash: row.try_get("hash").map_err(read)?,
        })
    }

    /// Recomputes the whole chain in one consistent snapshot and names the first broken row.
    ///
    /// # Errors
    /// Database errors only; a broken chain is reported in the [`VerifyReport`].
    pub async fn verify(&self, pool: &PgPool) -> Result<VerifyReport, AuditError> {
        self.verify_against(pool, None).await
    }

    /// As [`AuditLog::verify`], and checks that the log still holds `anchor`: at least its
    /// `rows` rows, the `rows`-th of which hashes to its head. The hash chain alone cannot show a
    /// deleted tail, nor a history rewritten and re-hashed by someone able to bypass the
    /// append-only trigger; an anchor recorded elsewhere can.
    ///
    /// # Errors
    /// Database errors only; a broken chain or a failed anchor is reported in the [`VerifyReport`].
    pub async fn verify_against(&self, pool: &PgPool, anchor: Option<&Anchor>) -> Result<VerifyReport, AuditError> {
        let ChainWalk { mut report, anchored_row } = self.verify_chain(pool, anchor.map(|anchor| anchor.rows)).await?;
        report.anchor = anchor.map(|anchor| {
            let anchor = *anchor;
            if report.first_broken.is_some() && report.rows_intact < anchor.rows {
                return AnchorCheck::NotReached { anchor };
            }
            match anchored_row {
                None => AnchorCheck::DeletedTail { anchor, log_rows: report.rows_intact },
                Some((_, hash)) if hash == anchor.head_hash => AnchorCheck::Holds { anchor },
                Some((seq, hash)) => AnchorCheck::Rewritten { anchor, seq, hash },
            }
        });
        Ok(report)
    }

    /// The log's head — row count and newest row — in one snapshot; `None` for an empty log.
    /// What a daemon anchors.
    ///
    /// # Errors
    /// Database errors, or a stored hash that is not 32 bytes.
    pub async fn head(&self, pool: &PgPool) -> Result<Option<LogHead>, AuditError> {
        let row = sqlx::query(&format!(
            "SELECT (SELECT count(*) FROM {table}) AS rows, last.seq, last.hash \
             FROM (SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1) AS last",
            table = self.table
        ))
        .fetch_optional(pool)
        .await
        .map_err(database("reading the audit log's head"))?;
        let Some(row) = row else { return Ok(None) };
        let read = database("reading the audit log's head");
        let rows: i64 = row.try_get("rows").map_err(read)?;
        let seq: i64 = row.try_get("seq").map_err(read)?;
        let hash: Vec<u8> = row.try_get("hash").map_err(read)?;
        Ok(Some(LogHead { rows: u64::try_from(rows).unwrap_or(0), seq, hash: self.hash_from_db("hash", hash)? }))
    }

    /// The stored hash of the log's `rows`-th row, oldest first (`None` when it has fewer rows):
    /// what a daemon offers as the row at the count the chain holds anchored.
    ///
    /// # Errors
    /// Database errors, or a stored hash that is not 32 bytes.
    pub async fn hash_at(&self, pool: &PgPool, rows: u64) -> Result<Option<[u8; 32]>, AuditError> {
        let Some(offset) = rows.checked_sub(1).and_then(|offset| i64::try_from(offset).ok()) else { return Ok(None) };
        let stored: Option<Vec<u8>> =
            sqlx::query_scalar(&format!("SELECT hash FROM {} ORDER BY seq LIMIT 1 OFFSET $1", self.table))
                .bind(offset)
                .fetch_optional(pool)
                .await
                .map_err(database("reading an anchored row's hash"))?;
        stored.map(|bytes| self.hash_from_db("hash", bytes)).transpose()
    }

    async fn verify_chain(&self, pool: &PgPool, anchored_rows: Option<u64>) -> Result<ChainWalk, AuditError> {
        let mut report = ChainWalk::default().report;
        let mut anchored_row = None;
        let mut tx = pool.begin().await.map_err(database("beginning the verification"))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(database("starting a snapshot"))?;
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(&format!("{} WHERE seq > $1 ORDER BY seq LIMIT $2", self.select_rows()))
                .bind(after)
                .bind(VERIFY_PAGE)
                .fetch_all(&mut *tx)
                .await
                .map_err(database("reading the audit log"))?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("seq").map_err(database("reading an audit row"))?;
            for row in &rows {
                let row = self.raw_row(row)?;
                let expected_prev = report.head.map(|(_, hash)| hash);
                let broken =
                    |problem| BrokenRow { seq: row.seq, kind: row.kind.clone(), subject: row.subject.clone(), problem };
                if row.prev_hash.as_deref() != expected_prev.as_ref().map(|h| h.as_slice()) {
                    report.first_broken =
                        Some(broken(Break::Link { expected: expected_prev, stored: row.prev_hash.clone() }));
                    return Ok(ChainWalk { report, anchored_row });
                }
                let canonical =
                    canonical_row(self.domain, row.seq, row.at_micros, &row.kind, &row.subject, &row.detail);
                let expected = chain_hash(expected_prev.as_ref().unwrap_or(&GENESIS_PREV_HASH), &canonical);
                if row.hash.as_slice() != expected.as_slice() {
                    report.first_broken = Some(broken(Break::Content { expected, stored: row.hash.clone() }));
                    return Ok(ChainWalk { report, anchored_row });
                }
                report.rows_intact += 1;
                report.head = Some((row.seq, expected));
                if Some(report.rows_intact) == anchored_rows {
                    anchored_row = Some((row.seq, expected));
                }
            }
        }
        tx.commit().await.map_err(database("ending the verification"))?;
        Ok(ChainWalk { report, anchored_row })
    }

    /// The rows about `subject`, oldest first.
    pub async fn entries_for(&self, pool: &PgPool, subject: &str) -> Result<Vec<AuditEntry>, AuditError> {
        let rows = sqlx::query(&format!("{} WHERE subject = $1 ORDER BY seq", self.select_rows()))
            .bind(subject)
            .fetch_all(pool)
            .await
            .map_err(database("reading the audit log"))?;
        rows.iter()
            .map(|row| {
                let raw = self.raw_row(row)?;
                Ok(AuditEntry {
                    seq: raw.seq,
                    at_micros: raw.at_micros,
                    kind: raw.kind,
                    subject: raw.subject,
                    detail: raw.detail,
                    prev_hash: raw.prev_hash.map(|bytes| self.hash_from_db("prev_hash", bytes)).transpose()?,
                    hash: self.hash_from_db("hash", raw.hash)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DOMAIN: &str = "ferry/test/audit/v1";

    #[test]
    fn timestamps_format_as_rfc3339_utc_micros() {
        assert_eq!(format_rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_rfc3339_micros(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(format_rfc3339_micros(1_763_929_981_123_456), "2025-11-23T20:33:01.123456Z");
        assert_eq!(format_rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let detail = json!({"b": [1, {"z": null, "a": true}], "a": "x\"y", "é": 1.5});
        assert_eq!(canonical_json(&detail), r#"{"a":"x\"y","b":[1,{"a":true,"z":null}],"é":1.5}"#);
    }

    #[test]
    fn canonical_rows_are_unambiguous_whatever_the_fields_contain() {
        let detail = json!({});
        let a = canonical_row(DOMAIN, 1, 0, "k|s", "t", &detail);
        let b = canonical_row(DOMAIN, 1, 0, "k", "s|t", &detail);
        assert_ne!(a, b);
        assert!(a.starts_with(format!("{}:{},1:1,", DOMAIN.len(), DOMAIN).as_bytes()));
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_row_hash() {
        let base = chain_hash(&GENESIS_PREV_HASH, &canonical_row(DOMAIN, 1, 5, "k", "s", &json!({"a": 1})));
        let variants = [
            chain_hash(&[1; 32], &canonical_row(DOMAIN, 1, 5, "k", "s", &json!({"a": 1}))),
            chain_hash(&GENESIS_PREV_HASH, &canonical_row(DOMAIN, 2, 5, "k", "s", &json!({"a": 1}))),
            chain_hash(&GENESIS_PREV_HASH, &canonical_row(DOMAIN, 1, 6, "k", "s", &json!({"a": 1}))),
            chain_hash(&GENESIS_PREV_HASH, &canonical_row(DOMAIN, 1, 5, "K", "s", &json!({"a": 1}))),
            chain_hash(&GENESIS_PREV_HASH, &canonical_row(DOMAIN, 1, 5, "k", "S", &json!({"a": 1}))),
            chain_hash(&GENESIS_PREV_HASH, &canonical_row(DOMAIN, 1, 5, "k", "s", &json!({"a": 2}))),
        ];
        for variant in variants {
            assert_ne!(variant, base);
        }
    }
}
