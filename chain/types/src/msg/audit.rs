//! `MsgAnchorAudit`: a member anchors the head of one of its daemons' audit logs on the chain (a
//! federation duty: member-only, fee-exempt, counted against the per-block duty limit). See
//! [`crate::query::audit`] for the record it keeps and the chain's `audit_anchor` module for the
//! rules (an anchor only moves forward).

use prost::Message;

use super::MsgError;
use crate::address::{Address, AddressError};
pub use crate::query::audit::AuditLogName;

/// Type URL of [`MsgAnchorAuditProto`].
pub const MSG_ANCHOR_AUDIT_TYPE_URL: &str = "/ferry.audit.v1.MsgAnchorAudit";

/// Wire form of `ferry.audit.v1.MsgAnchorAudit`.
#[derive(Clone, PartialEq, Message)]
pub struct MsgAnchorAuditProto {
    /// The member (the signer), bech32.
    #[prost(string, tag = "1")]
    pub member: String,
    /// Which log: `relayer` or `signer`.
    #[prost(string, tag = "2")]
    pub log: String,
    /// Rows the log holds (at least 1).
    #[prost(uint64, tag = "3")]
    pub rows: u64,
    /// The newest row's hash, 32 bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub head_hash: Vec<u8>,
    /// The hash of the log's row at the count the chain holds anchored (its `rows`-th row, as
    /// the log has it now), 32 bytes; empty for a first anchor. Moving an anchor forward needs
    /// it to equal the held head: a log whose history changed under the anchor cannot be
    /// anchored further (it would otherwise be enough to wait until it grew past the count).
    #[prost(bytes = "vec", tag = "5")]
    pub previous_hash: Vec<u8>,
}

/// A validated anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgAnchorAudit {
    /// The member (the signer).
    pub member: Address,
    /// Which log.
    pub log: AuditLogName,
    /// Rows the log holds.
    pub rows: u64,
    /// The newest row's hash.
    pub head_hash: [u8; 32],
    /// The log's row at the held anchor's count, hashed (`None` for a first anchor).
    pub previous_hash: Option<[u8; 32]>,
}

impl MsgAnchorAudit {
    /// Validates the wire form.
    ///
    /// # Errors
    /// A malformed member, an unknown log, zero rows (an empty log has no head to anchor) or a
    /// hash that is not 32 bytes, named.
    pub fn from_proto(proto: &MsgAnchorAuditProto) -> Result<MsgAnchorAudit, MsgError> {
        let member = proto.member.parse().map_err(|e: AddressError| field("member", e))?;
        let log = proto.log.parse().map_err(|e| field("log", e))?;
        if proto.rows == 0 {
            return Err(field("rows", "an empty log has no head to anchor"));
        }
        let head_hash = <[u8; 32]>::try_from(proto.head_hash.as_slice())
            .map_err(|_| field("head_hash", format!("{} bytes, expected 32", proto.head_hash.len())))?;
        let previous_hash = if proto.previous_hash.is_empty() {
            None
        } else {
            Some(<[u8; 32]>::try_from(proto.previous_hash.as_slice()).map_err(|_| {
                field("previous_hash", format!("{} bytes, expected 32 or none", proto.previous_hash.len()))
            })?)
        };
        Ok(MsgAnchorAudit { member, log, rows: proto.rows, head_hash, previous_hash })
    }

    /// The wire form.
    pub fn to_proto(&self) -> MsgAnchorAuditProto {
        MsgAnchorAuditProto {
            member: self.member.to_string(),
            log: self.log.to_string(),
            rows: self.rows,
            head_hash: self.head_hash.to_vec(),
            previous_hash: self.previous_hash.map(|hash| hash.to_vec()).unwrap_or_default(),
        }
    }
}

fn field(name: &'static str, reason: impl ToString) -> MsgError {
    MsgError::Field { type_url: MSG_ANCHOR_AUDIT_TYPE_URL, field: name, reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto() -> MsgAnchorAuditProto {
        MsgAnchorAuditProto {
            member: Address::from_bytes([7; 20]).to_string(),
            log: "signer".to_owned(),
            rows: 12,
            head_hash: vec![3; 32],
            previous_hash: vec![2; 32],
        }
    }

    #[test]
    fn anchors_round_trip_and_malformed_fields_are_named() {
        let msg = MsgAnchorAudit::from_proto(&proto());
        assert_eq!(msg.as_ref().map(MsgAnchorAudit::to_proto).ok(), Some(proto()));
        type Spoil = fn(&mut MsgAnchorAuditProto);
        let cases: [(&str, Spoil); 5] = [
            ("member", |p| p.member = "nope".to_owned()),
            ("log", |p| p.log = "cli".to_owned()),
            ("rows", |p| p.rows = 0),
            ("head_hash", |p| p.head_hash = vec![1; 31]),
            ("previous_hash", |p| p.previous_hash = vec![1; 33]),
        ];
        for (name, spoil) in cases {
            let mut bad = proto();
            spoil(&mut bad);
            assert!(
                matches!(MsgAnchorAudit::from_proto(&bad), Err(MsgError::Field { field, .. }) if field == name),
                "{name}"
            );
        }
    }
}
