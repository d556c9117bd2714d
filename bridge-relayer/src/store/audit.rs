//! The relayer's audit log (`relayer_audit`): what it writes there. The log itself — hash
//! chaining, the writers' lock, verification — is [`ferry_audit`]'s; this module names the
//! relayer's kinds and maps the log's errors into the store's.

use ferry_audit::AuditLog;
pub use ferry_audit::{AuditEntry, Break, BrokenRow, VerifyReport};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::StoreError;

/// The relayer's log.
pub const LOG: AuditLog = AuditLog::RELAYER;

/// Audit kinds written by the relayer.
pub mod kind {
    /// A deposit seen for the first time.
    pub const DEPOSIT_OBSERVED: &str = "deposit.observed";
    /// A deposit seen again in another block (after a reorganisation).
    pub const DEPOSIT_REOBSERVED: &str = "deposit.reobserved";
    /// Intent: an attestation is about to be sent.
    pub const DEPOSIT_ATTESTING: &str = "deposit.attesting";
    /// Outcome: the sidechain accepted the attestation.
    pub const DEPOSIT_ATTESTED: &str = "deposit.attested";
    /// A reorganisation removed the deposit's block.
    pub const DEPOSIT_DROPPED: &str = "deposit.dropped";
    /// The sidechain refused the attestation for good.
    pub const DEPOSIT_REJECTED: &str = "deposit.rejected";
    /// A deposit id seen again with other facts than the stored ones: recorded, never followed.
    pub const DEPOSIT_CONFLICT: &str = "deposit.conflict";
    /// Something scanned and refused (malformed memo, wrong address).
    pub const SCAN_REJECTED: &str = "scan.rejected";
    /// A watcher's cursor moved.
    pub const CURSOR_SET: &str = "cursor.set";
    /// Intent: a release is about to be handed to its parent chain.
    pub const RELEASE_DELIVERING: &str = "release.delivering";
    /// Outcome: the parent chain's node took the release.
    pub const RELEASE_BROADCAST: &str = "release.broadcast";
    /// A delivery failed (logged again only when the reason changes).
    pub const RELEASE_DELIVERY_FAILED: &str = "release.delivery_failed";
    /// The release was found in a block (this relayer's transaction or another's).
    pub const RELEASE_INCLUDED: &str = "release.included";
    /// A reorganisation removed the release's block.
    pub const RELEASE_REORGED: &str = "release.reorged";
    /// The release's block is deep enough and canonical.
    pub const RELEASE_CONFIRMED: &str = "release.confirmed";
    /// Intent: a release attestation is about to be sent.
    pub const RELEASE_ATTESTING: &str = "release.attesting";
    /// Outcome: the sidechain holds this member's release attestation.
    pub const RELEASE_ATTESTED: &str = "release.attested";
    /// The sidechain refused the release attestation for good.
    pub const RELEASE_REFUSED: &str = "release.refused";
    /// The sidechain settled the batch.
    pub const RELEASE_SETTLED: &str = "release.settled";
    /// A signed exit disbursal was kept.
    pub const EXIT_KEPT: &str = "exit.kept";
    /// Broadcasting a kept exit disbursal moved on (its new state in the detail).
    pub const EXIT_STATE: &str = "exit.state";
}

/// Takes the writers' lock. Every writing transaction of the store calls this first.
pub(super) async fn lock(conn: &mut PgConnection) -> Result<(), StoreError> {
    Ok(LOG.lock(conn).await?)
}

/// Appends a row inside the caller's transaction, which must hold [`lock`].
pub(super) async fn append_locked(
    conn: &mut PgConnection,
    kind: &str,
    subject: &str,
    detail: &Value,
) -> Result<AuditEntry, StoreError> {
    Ok(LOG.append_locked(conn, kind, subject, detail).await?)
}

/// Recomputes the whole chain and names the first broken row.
pub(super) async fn verify(pool: &PgPool) -> Result<VerifyReport, StoreError> {
    Ok(LOG.verify(pool).await?)
}

/// The rows about `subject`, oldest first.
pub(super) async fn entries_for(pool: &PgPool, subject: &str) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(LOG.entries_for(pool, subject).await?)
}
