//! Audit-log anchors: the head (row count and newest row's hash) of a member's relayer or signer
//! audit log, as the member last anchored it on the chain (`MsgAnchorAudit`). `audit verify`
//! checks the daemon's PostgreSQL log against it, so a deleted tail or a re-hashed history is
//! named even though the hash chain alone would still verify.
//!
//! Path: `/audit_anchor/<member>/<log>` ([`AuditAnchor`]), `<log>` being `relayer` or `signer`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::address::Address;

/// Path prefix of an anchor: `/audit_anchor/<member>/<log>`.
pub const AUDIT_ANCHOR_PATH: &str = "/audit_anchor/";

/// The query path of `member`'s anchor of `log`.
pub fn audit_anchor_path(member: &Address, log: AuditLogName) -> String {
    format!("{AUDIT_ANCHOR_PATH}{member}/{log}")
}

/// Which of a member's audit logs (`ferry_audit::AuditLog::RELAYER` / `SIGNER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditLogName {
    /// The relayer's log (`relayer_audit`).
    Relayer,
    /// The signer's log (`signer_audit`).
    Signer,
}

impl AuditLogName {
    /// The name on the wire, in paths and in state keys.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditLogName::Relayer => "relayer",
            AuditLogName::Signer => "signer",
        }
    }
}

impl fmt::Display for AuditLogName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an audit log's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an audit log: expected `relayer` or `signer`")]
pub struct UnknownAuditLog(pub String);

impl FromStr for AuditLogName {
    type Err = UnknownAuditLog;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "relayer" => Ok(AuditLogName::Relayer),
            "signer" => Ok(AuditLogName::Signer),
            other => Err(UnknownAuditLog(other.to_owned())),
        }
    }
}

/// A member's latest anchor of one of its audit logs, and the anchors the chain refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditAnchor {
    /// The member.
    pub member: Address,
    /// The log.
    pub log: AuditLogName,
    /// Rows the log held (the head is the `rows`-th row, oldest first).
    pub rows: u64,
    /// The newest row's hash (the chain's head), hex.
    pub head_hash: String,
    /// Height at which this anchor was recorded.
    pub height: u64,
    /// Anchors that moved it forward, this one included.
    pub anchors: u64,
    /// Anchors refused (fewer rows than anchored, or the same count with another hash): each is
    /// evidence that the log was cut or rewritten (or restored from an old backup).
    pub refused: u64,
    /// The latest refused anchor.
    pub last_refused: Option<RefusedAnchor>,
}

/// An anchor the chain refused, kept as evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusedAnchor {
    /// The rows offered.
    pub rows: u64,
    /// The head hash offered, hex.
    pub head_hash: String,
    /// Height of the refusal.
    pub height: u64,
    /// Why: [`REFUSED_FEWER_ROWS`], [`REFUSED_OTHER_HASH`] or [`REFUSED_OTHER_HISTORY`].
    pub reason: String,
}

/// Refusal reason: the anchor has fewer rows than the anchored head (a deleted tail).
pub const REFUSED_FEWER_ROWS: &str = "fewer_rows";
/// Refusal reason: the anchor has the anchored count but another hash (a rewritten history).
pub const REFUSED_OTHER_HASH: &str = "other_hash";
/// Refusal reason: more rows, but the log's row at the anchored count (`previous_hash`) is not
/// the anchored head (a history rewritten, or a tail deleted and grown back, under the anchor).
pub const REFUSED_OTHER_HISTORY: &str = "other_history";
