//! Audit-log anchors in the state machine (`MsgAnchorAudit`): a member's anchor of a log only
//! moves forward; a head that went back or changed is refused, kept as evidence and announced;
//! only members may anchor, without a fee, within the per-block duty limit.

mod driver;

use driver::{Chain, Signer, TestResult, attributes, events_of, federation_genesis, funded, key};
use ferry_app::TxOutcome;
use ferry_types::event as ev;
use ferry_types::msg::audit::{AuditLogName, MsgAnchorAudit};
use ferry_types::query::audit::{
    AuditAnchor, REFUSED_FEWER_ROWS, REFUSED_OTHER_HASH, REFUSED_OTHER_HISTORY, audit_anchor_path,
};
use ferry_types::{Address, Msg, TxCode};

struct Federation {
    chain: Chain,
    members: Vec<Signer>,
}

impl Federation {
    fn start(max_duty_msgs_per_block: u32) -> TestResult<Federation> {
        let keys = ["m0", "m1", "m2", "outsider"].map(key).into_iter().collect::<TestResult<Vec<_>>>()?;
        let holdings: Vec<_> = keys.iter().map(|key| funded(&key.address(), &[])).collect();
        let members: Vec<Address> = keys.iter().take(3).map(|key| key.address()).collect();
        let mut genesis = federation_genesis(&holdings, &members, 2);
        genesis.params.max_duty_msgs_per_block = max_duty_msgs_per_block;
        let chain = Chain::start(&genesis)?;
        let members = keys.iter().map(|key| chain.signer(key)).collect::<TestResult<Vec<_>>>()?;
        Ok(Federation { chain, members })
    }

    /// Member `index`'s anchor of `log`: `rows` rows, head `[hash; 32]`, and the row at the held
    /// count hashing to `[previous; 32]`.
    fn anchor_over(
        &self,
        index: usize,
        sequence_offset: u64,
        log: AuditLogName,
        (rows, hash): (u64, u8),
        previous: Option<u8>,
    ) -> TestResult<Vec<u8>> {
        let signer = &self.members[index];
        let sequence = self.chain.sequence(&signer.address)? + sequence_offset;
        let msg = Msg::AnchorAudit(MsgAnchorAudit {
            member: signer.address,
            log,
            rows,
            head_hash: [hash; 32],
            previous_hash: previous.map(|byte| [byte; 32]),
        });
        signer.sign_fee_exempt(sequence, &[msg])
    }

    /// As [`Federation::anchor_over`], over the held head (the log grew on the same history).
    fn anchor(&mut self, index: usize, log: AuditLogName, rows: u64, hash: u8) -> TestResult<TxOutcome> {
        let held = self.held(index, log)?;
        let previous = held.and_then(|held| hex::decode(&held.head_hash).ok().and_then(|bytes| bytes.first().copied()));
        let tx = self.anchor_over(index, 0, log, (rows, hash), previous)?;
        self.one(tx)
    }

    fn one(&mut self, tx: Vec<u8>) -> TestResult<TxOutcome> {
        let mut results = self.chain.execute_block(&[tx])?;
        results.pop().ok_or_else(|| "no result".into())
    }

    fn held(&self, index: usize, log: AuditLogName) -> TestResult<Option<AuditAnchor>> {
        self.chain.query_json(&audit_anchor_path(&self.members[index].address, log))
    }
}

#[test]
fn an_anchor_moves_forward_and_is_answered_with_the_height_it_was_recorded_at() -> TestResult {
    let mut federation = Federation::start(512)?;
    assert_eq!(federation.held(0, AuditLogName::Signer)?, None, "nothing anchored yet");
    let first = federation.anchor(0, AuditLogName::Signer, 10, 1)?;
    assert_eq!(first.code, TxCode::Ok, "{}", first.log);
    let anchored = events_of(&first.events, ev::AUDIT_ANCHORED);
    let event = anchored.first().map(|event| attributes(event)).ok_or("no anchored event")?;
    assert_eq!(event.get(ev::ROWS), Some(&"10"));
    assert_eq!(event.get(ev::AUDIT_LOG), Some(&"signer"));
    let held = federation.held(0, AuditLogName::Signer)?.ok_or("anchor not stored")?;
    assert_eq!((held.rows, held.head_hash.as_str(), held.height), (10, hex::encode([1; 32]).as_str(), 1));

    let second = federation.anchor(0, AuditLogName::Signer, 25, 2)?;
    assert_eq!(second.code, TxCode::Ok, "{}", second.log);
    let held = federation.held(0, AuditLogName::Signer)?.ok_or("anchor not stored")?;
    assert_eq!((held.rows, held.height, held.anchors, held.refused), (25, 2, 2, 0));

    // Repeating the head changes nothing; the other log and the other members are separate.
    let repeat = federation.anchor(0, AuditLogName::Signer, 25, 2)?;
    assert_eq!(repeat.code, TxCode::Ok, "{}", repeat.log);
    assert!(repeat.log.contains("already anchored"), "{}", repeat.log);
    assert_eq!(federation.held(0, AuditLogName::Signer)?.map(|held| held.height), Some(2));
    assert_eq!(federation.held(0, AuditLogName::Relayer)?, None);
    assert_eq!(federation.held(1, AuditLogName::Signer)?, None);
    assert_eq!(federation.anchor(1, AuditLogName::Relayer, 3, 9)?.code, TxCode::Ok);
    assert_eq!(federation.held(1, AuditLogName::Relayer)?.map(|held| held.rows), Some(3));
    Ok(())
}

#[test]
fn a_head_that_went_back_or_changed_is_refused_and_kept_as_evidence() -> TestResult {
    let mut federation = Federation::start(512)?;
    assert_eq!(federation.anchor(0, AuditLogName::Relayer, 40, 4)?.code, TxCode::Ok);

    // Fewer rows than anchored: a deleted tail.
    let cut = federation.anchor(0, AuditLogName::Relayer, 30, 5)?;
    assert_eq!(cut.code, TxCode::Ok, "the evidence stays on chain: {}", cut.log);
    assert!(cut.log.contains("refused") && cut.log.contains(REFUSED_FEWER_ROWS), "{}", cut.log);
    let refused = events_of(&cut.events, ev::AUDIT_ANCHOR_REFUSED);
    let event = refused.first().map(|event| attributes(event)).ok_or("no refusal event")?;
    assert_eq!(event.get(ev::REASON), Some(&REFUSED_FEWER_ROWS));
    assert_eq!(event.get(ev::ANCHORED_ROWS), Some(&"40"));
    assert_eq!(event.get(ev::ROWS), Some(&"30"));
    assert!(events_of(&cut.events, ev::AUDIT_ANCHORED).is_empty());
    let held = federation.held(0, AuditLogName::Relayer)?.ok_or("anchor lost")?;
    assert_eq!((held.rows, held.head_hash, held.height), (40, hex::encode([4; 32]), 1), "the anchor stays");
    assert_eq!(held.refused, 1);
    let last = held.last_refused.ok_or("refusal not kept")?;
    assert_eq!((last.rows, last.height, last.reason.as_str()), (30, 2, REFUSED_FEWER_ROWS));

    // The same count with another hash: a rewritten history.
    let rewritten = federation.anchor(0, AuditLogName::Relayer, 40, 6)?;
    assert!(rewritten.log.contains(REFUSED_OTHER_HASH), "{}", rewritten.log);
    assert_eq!(events_of(&rewritten.events, ev::AUDIT_ANCHOR_REFUSED).len(), 1);
    let held = federation.held(0, AuditLogName::Relayer)?.ok_or("anchor lost")?;
    assert_eq!((held.rows, held.head_hash, held.refused), (40, hex::encode([4; 32]), 2));
    assert_eq!(held.last_refused.map(|last| last.reason), Some(REFUSED_OTHER_HASH.to_owned()));

    // More rows, but the log's row at the anchored count is not the anchored head: the history
    // changed under the anchor (or a cut tail grew back past it) — refused too.
    let tx = federation.anchor_over(0, 0, AuditLogName::Relayer, (50, 8), Some(6))?;
    let regrown = federation.one(tx)?;
    assert!(regrown.log.contains(REFUSED_OTHER_HISTORY), "{}", regrown.log);
    let tx = federation.anchor_over(0, 0, AuditLogName::Relayer, (50, 8), None)?;
    assert!(federation.one(tx)?.log.contains(REFUSED_OTHER_HISTORY), "no previous hash, no move");
    let held = federation.held(0, AuditLogName::Relayer)?.ok_or("anchor lost")?;
    assert_eq!((held.rows, held.refused), (40, 4));

    // The log grows on over the anchored head: the anchor moves forward and the evidence stays.
    assert_eq!(federation.anchor(0, AuditLogName::Relayer, 41, 7)?.code, TxCode::Ok);
    let held = federation.held(0, AuditLogName::Relayer)?.ok_or("anchor lost")?;
    assert_eq!((held.rows, held.anchors, held.refused), (41, 2, 4));
    Ok(())
}

#[test]
fn only_members_anchor_fee_free_and_within_the_duty_limit_per_block() -> TestResult {
    let mut federation = Federation::start(2)?;
    let outsider = federation.anchor(3, AuditLogName::Signer, 1, 1)?;
    assert_eq!(outsider.code, TxCode::Unauthorized, "{}", outsider.log);
    assert_eq!(federation.held(3, AuditLogName::Signer)?, None);

    // Three anchors of one member in one block: the third passes the limit of two.
    let txs = (0..3)
        .map(|n| federation.anchor_over(0, n, AuditLogName::Signer, (10 + n, 1), (n > 0).then_some(1)))
        .collect::<TestResult<Vec<_>>>()?;
    let results = federation.chain.execute_block(&txs)?;
    let codes: Vec<TxCode> = results.iter().map(|result| result.code).collect();
    assert_eq!(codes, [TxCode::Ok, TxCode::Ok, TxCode::DutyLimit], "{results:?}");
    assert_eq!(federation.held(0, AuditLogName::Signer)?.map(|held| held.rows), Some(11));

    Ok(())
}
