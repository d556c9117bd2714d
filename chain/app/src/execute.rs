//! One transaction against state: checks that need state (fee schedule, account, sequence,
//! signature), then the fee and sequence, then the messages.

use ferry_types::event as ev;
use ferry_types::{Address, Coin, DecodedTx, Msg, TxCode, TxRejection};

use crate::bank::{self, BankError};
use crate::event::Event;
use crate::signature_cache::SignatureCache;
use crate::state::{StateDelta, StateError, StateRead};
use crate::{batch, bridge, pause, withdrawal};

/// What the chain knows about the transaction's context.
#[derive(Clone, Debug)]
pub struct TxContext<'a> {
    /// This chain's id.
    pub chain_id: &'a str,
    /// The chain parameters (read once per block).
    pub params: &'a ferry_types::Params,
    /// Signatures this node already verified.
    pub signatures: &'a SignatureCache,
    /// Height of the block being executed (for CheckTx: the next block).
    pub height: u64,
}

/// A signature verified ahead of execution (in parallel, see [`crate::block`]) against the
/// account number the signer had then.
#[derive(Clone, Debug)]
pub struct PreVerified {
    /// The account number used.
    pub account_number: u64,
    /// The verification result.
    pub result: Result<(), TxRejection>,
}

/// The result of executing one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// `Ok` or the reason for refusal.
    pub code: TxCode,
    /// What happened, in words.
    pub log: String,
    /// Events of the state changes made.
    pub events: Vec<Event>,
}

impl Executed {
    fn rejected(rejection: TxRejection) -> Self {
        Executed { code: rejection.code, log: rejection.log, events: Vec::new() }
    }
}

/// Checks the message count, and who pays what: federation duties are fee-exempt and only
/// accepted from members; everything else pays a fee in a denomination it moves, at least that
/// denomination's minimum. Returns the fee to charge.
fn check_fee_and_authority<R: StateRead>(
    state: &StateDelta<R>,
    tx: &DecodedTx,
    params: &ferry_types::Params,
) -> Result<Result<Option<Coin>, TxRejection>, StateError> {
    if u64::try_from(tx.msgs.len()).unwrap_or(u64::MAX) > u64::from(params.max_msgs_per_tx) {
        return Ok(Err(TxRejection::new(
            TxCode::InvalidMessage,
            format!("{} messages, the limit is {}", tx.msgs.len(), params.max_msgs_per_tx),
        )));
    }
    let duties = tx.msgs.iter().filter(|msg| msg.is_duty()).count();
    if duties > 0 {
        if duties != tx.msgs.len() {
            return Ok(Err(TxRejection::new(
                TxCode::InvalidMessage,
                "federation duties cannot share a transaction with other messages",
            )));
        }
        if tx.msgs.iter().any(Msg::is_federation_duty)
            && !state.federation()?.is_member(&tx.signer)
            && !crate::batch::signs_for_named_federation(state, &tx.signer, &tx.msgs)?
        {
            return Ok(Err(TxRejection::new(
                TxCode::Unauthorized,
                format!("{} is not a federation member; only members may perform federation duties", tx.signer),
            )));
        }
        if tx.msgs.iter().any(Msg::is_dkg_step) && !crate::dkg::is_participant(state, &tx.signer)? {
            return Ok(Err(TxRejection::new(
                TxCode::Unauthorized,
                format!("{} takes part in no running key generation; only its participants send its steps", tx.signer),
            )));
        }
        if let Some(fee) = &tx.fee {
            return Ok(Err(TxRejection::new(
                TxCode::InvalidMessage,
                format!("federation duties are fee-exempt; remove the fee {fee}"),
            )));
        }
        return Ok(Ok(None));
    }
    let openers = tx.msgs.iter().filter(|msg| msg.opens_account()).count();
    if openers > 0 {
        if openers != tx.msgs.len() {
            return Ok(Err(TxRejection::new(
                TxCode::InvalidMessage,
                "a registration (deposit address, signer keys) is fee-exempt and cannot share a transaction with other messages",
            )));
        }
        if let Some(fee) = &tx.fee {
            return Ok(Err(TxRejection::new(
                TxCode::InvalidMessage,
                format!("a registration (deposit address, signer keys) is fee-exempt; remove the fee {fee}"),
            )));
        }
        return Ok(Ok(None));
    }
    let Some(fee) = &tx.fee else {
        return Ok(Err(TxRejection::new(TxCode::InsufficientFee, "transaction offers no fee")));
    };
    let denom = &fee.denom;
    let Some(minimum) = params.min_fee(denom) else {
        return Ok(Err(TxRejection::new(TxCode::InsufficientFee, format!("fees cannot be paid in `{denom}`"))));
    };
    if !tx.msgs.iter().flat_map(Msg::denoms).any(|moved| moved == denom) {
        return Ok(Err(TxRejection::new(
            TxCode::InsufficientFee,
            format!("fee is in `{denom}`, which the transaction does not move; pay it in the asset being moved"),
        )));
    }
    if fee.amount < minimum {
        return Ok(Err(TxRejection::new(
            TxCode::InsufficientFee,
            format!("fee {fee} is below the minimum {minimum}{denom}"),
        )));
    }
    Ok(Ok(Some(fee.clone())))
}

/// The fee `tx` must pay: `None` when it is fee-exempt (federation duties, registrations);
/// otherwise the minimum fee in the denomination it offers its fee in, or else in the first
/// denomination it moves that can pay fees. `None` too when no denomination qualifies (the
/// transaction is then refused for its fee when executed).
pub fn fee_needed(tx: &DecodedTx, params: &ferry_types::Params) -> Option<Coin> {
    if tx.msgs.iter().all(Msg::is_duty) || tx.msgs.iter().all(Msg::opens_account) {
        return None;
    }
    let offered = tx.fee.iter().map(|fee| &fee.denom);
    offered
        .chain(tx.msgs.iter().flat_map(Msg::denoms))
        .find_map(|denom| params.min_fee(denom).map(|amount| Coin { denom: denom.clone(), amount }))
}

/// Executes `tx` on `state`.
///
/// A transaction refused before its fee is charged leaves `state` untouched. Once the fee and
/// sequence are charged they stay, even if a message then fails (its writes are discarded): the
/// block space was used.
///
/// # Errors
/// Only on storage failure; every transaction-level problem is an [`Executed`] with a non-zero code.
pub fn execute<R: StateRead>(
    state: &mut StateDelta<R>,
    context: &TxContext<'_>,
    tx: &DecodedTx,
    pre_verified: Option<&PreVerified>,
) -> Result<Executed, StateError> {
    if let Err(rejection) = tx.check_stated_chain_id(context.chain_id) {
        return Ok(Executed::rejected(rejection));
    }
    let fee = match check_fee_and_authority(state, tx, context.params)? {
        Ok(fee) => fee,
        Err(rejection) => return Ok(Executed::rejected(rejection)),
    };
    let opens_account = tx.msgs.iter().all(Msg::opens_account);
    if opens_account {
        let mut new = 0;
        for msg in &tx.msgs {
            match msg {
                Msg::RegisterDepositAddress(register) if state.deposit_address(&register.account)?.is_none() => {
                    new += 1;
                }
                Msg::RegisterSignerKeys(_) => new += 1,
                _ => {}
            }
        }
        if let Err(rejection) = crate::deposit_address::check_room(state, context.params, new, context.height)? {
            return Ok(Executed::rejected(rejection));
        }
    }
    // A registration may open its signer's account: it is then signed with account number 0
    // (the client cannot know the number the chain will assign) and sequence 0, and the account
    // gets its number once the signature checked.
    let (mut signer, opening) = match state.account(&tx.signer)? {
        Some(signer) => (signer, false),
        None if opens_account => (crate::state::AccountRecord::default(), true),
        None => {
            return Ok(Executed::rejected(TxRejection::new(
                TxCode::UnknownAccount,
                format!("signer {} has no account; fund it first", tx.signer),
            )));
        }
    };
    if tx.sequence < signer.sequence {
        return Ok(Executed::rejected(TxRejection::new(
            TxCode::StaleSequence,
            format!("sequence {} of {} was already used; next is {}", tx.sequence, tx.signer, signer.sequence),
        )));
    }
    if tx.sequence > signer.sequence {
        return Ok(Executed::rejected(TxRejection::new(
            TxCode::FutureSequence,
            format!("sequence {} of {} is ahead; next is {}", tx.sequence, tx.signer, signer.sequence),
        )));
    }
    let verified = match pre_verified {
        Some(pre) if pre.account_number == signer.account_number => pre.result.clone(),
        _ if context.signatures.contains(&tx.hash, signer.account_number) => Ok(()),
        _ => tx.verify_signature(context.chain_id, signer.account_number),
    };
    if let Err(rejection) = verified {
        return Ok(Executed::rejected(rejection));
    }
    context.signatures.insert(tx.hash, signer.account_number);

    // Fee and sequence.
    let mut events = Vec::new();
    let signer_text = tx.signer.to_string();
    if opening {
        signer = bank::load_or_create(state, &tx.signer, &mut events)?;
    }
    signer.sequence = signer.sequence.saturating_add(1);
    signer.public_key = Some(hex::encode(tx.signer_public_key));
    if let Some(fee) = &fee {
        if let Err(rejection) = bank::debit(&mut signer, &tx.signer, fee) {
            return Ok(Executed::rejected(rejection));
        }
        let fee_collector = Address::fee_collector();
        let mut collector = state.fork();
        let mut collector_record = bank::load_or_create(&mut collector, &fee_collector, &mut events)?;
        if let Err(rejection) = bank::credit(&mut collector_record, &fee_collector, fee) {
            return Ok(Executed::rejected(rejection));
        }
        collector.put_account(&fee_collector, &collector_record);
        let collector_writes = collector.into_writes();
        state.absorb(collector_writes);
        events.push(Event::new(ev::FEE, [(ev::PAYER, signer_text.clone()), (ev::AMOUNT, fee.to_string())]));
    }
    state.put_account(&tx.signer, &signer);
    events.push(Event::new(
        ev::SEQUENCE,
        [(ev::ADDRESS, signer_text), (ev::SEQUENCE_VALUE, signer.sequence.to_string())],
    ));

    // A member's duties count against its per-block limit (all of a transaction's or none).
    if tx.msgs.iter().all(Msg::is_duty)
        && let Err(rejection) = crate::duties::charge(state, context.params, &tx.signer, tx.msgs.len(), context.height)?
    {
        return Ok(Executed { code: rejection.code, log: format!("{}; messages not executed", rejection.log), events });
    }

    // Messages, all or nothing.
    let mut messages = state.fork();
    let mut message_events = Vec::new();
    let mut notes = Vec::new();
    for (index, msg) in tx.msgs.iter().enumerate() {
        let outcome = execute_message(&mut messages, context, msg, &mut message_events);
        match outcome {
            Ok(None) => {}
            Ok(Some(note)) => notes.push(note),
            Err(BankError::State(error)) => return Err(error),
            Err(BankError::Rejected(rejection)) => {
                return Ok(Executed {
                    code: rejection.code,
                    log: if fee.is_some() {
                        format!("message {index}: {}; fee charged, messages reverted", rejection.log)
                    } else {
                        format!("message {index}: {}; messages reverted", rejection.log)
                    },
                    events,
                });
            }
        }
    }
    let message_writes = messages.into_writes();
    state.absorb(message_writes);
    events.append(&mut message_events);
    Ok(Executed { code: TxCode::Ok, log: notes.join("; "), events })
}

/// Executes one message; returns what the transaction's log should tell its sender (a new
/// withdrawal's id), if anything.
fn execute_message<R: StateRead>(
    state: &mut StateDelta<R>,
    context: &TxContext<'_>,
    msg: &Msg,
    events: &mut Vec<Event>,
) -> Result<Option<String>, BankError> {
    let height = context.height;
    match msg {
        Msg::Send(send) => bank::transfer(state, &send.from, &send.to, &send.amount, events).map(|()| None),
        Msg::AttestDeposit(attest) => {
            let quorum = state.federation()?.attest_quorum;
            bridge::attest_deposit(state, attest, context.params, quorum, height, events).map(|()| None)
        }
        Msg::Withdraw(withdraw) => withdrawal::withdraw(state, withdraw, context.params, height, events)
            .map(|id| Some(format!("withdrawal {id} queued"))),
        Msg::SubmitSignatures(submit) => batch::submit_signatures(state, submit, height, events).map(|()| None),
        Msg::AttestRelease(attest) => {
            let quorum = state.federation()?.attest_quorum;
            batch::attest_release(state, attest, context.params, quorum, height, events).map(|()| None)
        }
        Msg::AttestParentHeight(report) => {
            let quorum = state.federation()?.attest_quorum;
            crate::bitcoin_fees::attest_parent_height(state, report, quorum, events).map(|()| None)
        }
        Msg::AbortBatch(vote) => crate::abort::abort_vote(state, vote, context.params, height, events).map(|()| None),
        Msg::ResolveHeld(vote) => {
            let quorum = state.federation()?.attest_quorum;
            crate::abort::resolve_held(state, vote, quorum, height, events).map(|()| None)
        }
        Msg::SetPaused(vote) => {
            let quorum = state.federation()?.attest_quorum;
            pause::set_paused(state, vote, quorum, height, events).map(|()| None)
        }
        Msg::ProposeListing(proposal) => {
            crate::listing::propose_listing(state, proposal, context.params, height, events).map(|()| None)
        }
        Msg::AttestReserves(snapshot) => {
            let quorum = state.federation()?.attest_quorum;
            crate::reserves_check::attest_reserves(state, snapshot, quorum, height, events).map(|()| None)
        }
        Msg::ResolveUnattributed(vote) => {
            let quorum = state.federation()?.attest_quorum;
            crate::unattributed::resolve(state, vote, context.params, quorum, height, events).map(|()| None)
        }
        Msg::RegisterDepositAddress(register) => {
            let number = crate::deposit_address::register(state, register, height, events)?;
            Ok(Some(format!("deposit address {number} of {}", register.account)))
        }
        Msg::SetRecoveryAddress(set) => crate::btc_exit::set_recovery_address(state, set, context.params, events)
            .map(|()| Some(format!("recovery address of {} set", set.account))),
        Msg::RegisterSignerKeys(register) => {
            crate::membership::register_signer_keys(state, register, height, events).map(|()| None)
        }
        Msg::ProposeFederation(proposal) => {
            crate::membership::propose_federation(state, proposal, context.params, height, events).map(|()| None)
        }
        Msg::DkgDeal(deal) => crate::dkg::deal(state, context.params, deal, height, events).map(|()| None),
        Msg::DkgComplain(complaint) => crate::dkg::complain(state, complaint, height, events).map(|()| None),
        Msg::DkgConfirm(confirm) => crate::dkg::confirm(state, confirm, height, events).map(|()| None),
        Msg::ProposeParams(proposal) => {
            crate::governance::propose_params(state, proposal, context.params, height, events).map(|()| None)
        }
        Msg::Heartbeat(heartbeat) => {
            crate::liveness::heartbeat(state, heartbeat, context.chain_id, height, events).map(|()| None)
        }
        Msg::AnchorAudit(anchor) => crate::audit_anchor::anchor_audit(state, anchor, height, events),
    }
}

/// CheckTx: decode, check and simulate `bytes` on the mempool state. Only a transaction that
/// would fully succeed is admitted; its effects stay in `mempool` so later transactions from the
/// same account are checked against the advanced sequence and balance.
///
/// # Errors
/// Only on storage failure.
pub fn check_tx<R: StateRead>(
    mempool: &mut StateDelta<R>,
    context: &TxContext<'_>,
    bytes: &[u8],
) -> Result<Executed, StateError> {
    let tx = match DecodedTx::decode(bytes, context.params.max_tx_bytes) {
        Ok(tx) => tx,
        Err(rejection) => return Ok(Executed::rejected(rejection)),
    };
    let mut scratch = mempool.fork();
    let executed = execute(&mut scratch, context, &tx, None)?;
    if executed.code == TxCode::Ok {
        let writes = scratch.into_writes();
        mempool.absorb(writes);
    }
    Ok(executed)
}
