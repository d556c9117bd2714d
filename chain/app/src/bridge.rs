//! The bridge's deposit side: attestations by federation members, minting at quorum exactly once
//! per deposit id, and the reserve ledger that backs every wrapped token.
//!
//! The withdrawal side lives in [`crate::withdrawal`] (burn and queue) and [`crate::batch`]
//! (release batches); [`crate::reserves`] checks the ledger's invariant at the end of every block.

use std::collections::BTreeMap;

use ferry_types::deposit_record::Conflict;
use ferry_types::event as ev;
use ferry_types::msg::MsgAttestDeposit;
use ferry_types::release::bitcoin::input_spend_fee;
use ferry_types::{Address, Amount, Coin, DepositFacts, DepositId, Params, ParentChain, TxCode, TxRejection};

use crate::bank::{self, BankError};
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

use ferry_types::deposit_record::{DepositRecord, DepositStatus};
pub use ferry_types::query::{AssetLedger, ReserveUtxo};

/// State keys of the bridge.
pub mod keys {
    use ferry_types::{Amount, Denom, DepositId};

    use crate::state::Collection;

    /// A deposit record.
    pub fn deposit(id: &DepositId) -> Vec<u8> {
        format!("deposit/{id}").into_bytes()
    }

    /// How many undecided (pending) deposit records a member opened (JSON integer).
    pub fn open_deposits(member: &ferry_types::Address) -> Vec<u8> {
        format!("open_deposits/{member}").into_bytes()
    }

    /// An asset's ledger.
    pub fn ledger(denom: &Denom) -> Vec<u8> {
        format!("ledger/{denom}").into_bytes()
    }

    /// Sorted list of the denominations that have a ledger.
    pub const LEDGER_DENOMS: &[u8] = b"ledger_denoms";

    /// The Bitcoin reserve UTXO set, one entry per UTXO keyed by its outpoint (txid, then the
    /// big-endian output index).
    pub fn reserve_utxos() -> Collection {
        Collection::new("btc_utxo/")
    }

    /// The reserve UTXOs no batch has locked, keyed by big-endian amount then outpoint: coin
    /// selection reads the largest, consolidation the smallest, without reading the rest.
    pub fn free_reserve_utxos() -> Collection {
        Collection::new("btc_utxo_free/")
    }

    /// The unlocked reserve UTXOs at a retired federation's peg (deposits minted within its
    /// grace), keyed by big-endian epoch then as [`free_reserve_utxos`]: only a sweep spends them.
    pub fn retired_reserve_utxos() -> Collection {
        Collection::new("btc_utxo_retired/")
    }

    /// The suffix of a UTXO in [`retired_reserve_utxos`].
    pub fn by_epoch(epoch: u64, amount: Amount, txid: &str, vout: u32) -> Vec<u8> {
        [epoch.to_be_bytes().as_slice(), &by_amount(amount, txid, vout)].concat()
    }

    /// The suffix of a UTXO in [`reserve_utxos`].
    pub fn outpoint(txid: &str, vout: u32) -> Vec<u8> {
        [txid.as_bytes(), &vout.to_be_bytes()].concat()
    }

    /// The suffix of a UTXO in [`free_reserve_utxos`].
    pub fn by_amount(amount: Amount, txid: &str, vout: u32) -> Vec<u8> {
        [amount.get().to_be_bytes().as_slice(), &outpoint(txid, vout)].concat()
    }
}

fn rejection(code: TxCode, log: impl Into<String>) -> BankError {
    BankError::Rejected(TxRejection::new(code, log))
}

impl<R: StateRead> StateDelta<R> {
    /// The record of deposit `id`.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn deposit(&self, id: &DepositId) -> Result<Option<DepositRecord>, StateError> {
        self.get_record(&keys::deposit(id))
    }

    /// Writes `record` under its id.
    pub fn put_deposit(&mut self, record: &DepositRecord) {
        self.put_record(keys::deposit(&record.id), record);
    }

    /// The ledger of `denom` (zero when nothing was ever minted or held).
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn ledger(&self, denom: &ferry_types::Denom) -> Result<AssetLedger, StateError> {
        Ok(self.get_record(&keys::ledger(denom))?.unwrap_or_default())
    }

    /// Stores the ledger of `denom` (and lists the denom in the ledger index).
    ///
    /// # Errors
    /// On storage failure or a corrupt index.
    pub fn put_ledger(&mut self, denom: &ferry_types::Denom, ledger: &AssetLedger) -> Result<(), StateError> {
        let mut denoms = self.ledger_denoms()?;
        if let Err(position) = denoms.binary_search(denom) {
            denoms.insert(position, denom.clone());
            self.put_record(keys::LEDGER_DENOMS.to_vec(), &denoms);
        }
        self.put_record(keys::ledger(denom), ledger);
        Ok(())
    }

    /// Every denomination that has a ledger, sorted.
    ///
    /// # Errors
    /// On storage failure or a corrupt index.
    pub fn ledger_denoms(&self) -> Result<Vec<ferry_types::Denom>, StateError> {
        Ok(self.get_record(keys::LEDGER_DENOMS)?.unwrap_or_default())
    }

    /// Every reserve UTXO of the Bitcoin peg, ordered by (txid, vout) (for queries: it reads them all).
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn reserve_utxos(&self) -> Result<Vec<ReserveUtxo>, StateError> {
        self.all_entries(&keys::reserve_utxos())
    }

    /// The reserve UTXO at (txid, vout), if the peg holds it.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn reserve_utxo(&self, txid: &str, vout: u32) -> Result<Option<ReserveUtxo>, StateError> {
        self.get_record(&keys::reserve_utxos().key(&keys::outpoint(txid, vout)))
    }

    /// Up to `limit` free (unlocked) reserve UTXOs, largest first or smallest first (ties by
    /// outpoint, in the same direction).
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn free_reserve_utxos(&self, largest_first: bool, limit: usize) -> Result<Vec<ReserveUtxo>, StateError> {
        self.entries(&keys::free_reserve_utxos(), None, largest_first, limit)
    }

    /// How many reserve UTXOs are free.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn free_reserve_utxo_count(&self) -> Result<u64, StateError> {
        self.entry_count(&keys::free_reserve_utxos())
    }

    /// Up to `limit` unlocked reserve UTXOs at retired federations' pegs, oldest epoch first.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn retired_reserve_utxos(&self, limit: usize) -> Result<Vec<ReserveUtxo>, StateError> {
        self.entries(&keys::retired_reserve_utxos(), None, false, limit)
    }

    /// How many unlocked reserve UTXOs are at retired federations' pegs.
    ///
    /// # Errors
    /// On storage failure or a corrupt counter.
    pub fn retired_reserve_utxo_count(&self) -> Result<u64, StateError> {
        self.entry_count(&keys::retired_reserve_utxos())
    }

    /// Stores a reserve UTXO (new, or locked/unlocked), keeping the free and retired indexes in
    /// step: an unlocked one at the current peg is free, at a retired peg it waits for a sweep.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn put_reserve_utxo(&mut self, utxo: &ReserveUtxo) -> Result<(), StateError> {
        self.remove_reserve_utxo(&utxo.txid, utxo.vout)?;
        self.put_entry(&keys::reserve_utxos(), &keys::outpoint(&utxo.txid, utxo.vout), utxo)?;
        match (utxo.locked_by, utxo.retired_epoch) {
            (Some(_), _) => {}
            (None, None) => {
                self.put_entry(&keys::free_reserve_utxos(), &keys::by_amount(utxo.amount, &utxo.txid, utxo.vout), utxo)?
            }
            (None, Some(epoch)) => self.put_entry(
                &keys::retired_reserve_utxos(),
                &keys::by_epoch(epoch, utxo.amount, &utxo.txid, utxo.vout),
                utxo,
            )?,
        }
        Ok(())
    }

    /// Removes a reserve UTXO (spent), from the free and retired indexes too.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn remove_reserve_utxo(&mut self, txid: &str, vout: u32) -> Result<(), StateError> {
        if let Some(old) = self.reserve_utxo(txid, vout)? {
            self.remove_entry(&keys::free_reserve_utxos(), &keys::by_amount(old.amount, txid, vout))?;
            if let Some(epoch) = old.retired_epoch {
                self.remove_entry(&keys::retired_reserve_utxos(), &keys::by_epoch(epoch, old.amount, txid, vout))?;
            }
            self.remove_entry(&keys::reserve_utxos(), &keys::outpoint(txid, vout))?;
        }
        Ok(())
    }
}

/// Locks the reserve UTXOs `inputs` spend to batch `by` (or frees them when `None`).
///
/// # Errors
/// On storage failure, a corrupt record, or an input the reserves do not hold.
pub(crate) fn lock_reserve_utxos<R: StateRead>(
    state: &mut StateDelta<R>,
    inputs: &[ferry_types::release::bitcoin::Utxo],
    by: Option<u64>,
) -> Result<(), StateError> {
    for input in inputs {
        let mut utxo = state.reserve_utxo(&input.txid, input.vout)?.ok_or_else(|| StateError::Corrupt {
            key: format!("btc_utxo/{}:{}", input.txid, input.vout),
            reason: "a batch spends a UTXO the reserves do not hold".to_owned(),
        })?;
        utxo.locked_by = by;
        state.put_reserve_utxo(&utxo)?;
    }
    Ok(())
}

fn digest_hex(facts: &DepositFacts) -> String {
    hex::encode(facts.digest())
}

/// Records `attest` by a federation member; mints when `quorum` members agree on identical facts.
/// Refused while the bridge is paused (relayers retry later).
///
/// A member's first attestation is the one that counts; repeating it changes nothing. A member
/// that contradicts its own attestation, or whose facts differ from the ones that minted, is
/// recorded as conflicting. After the mint, the deposit never mints again.
///
/// # Errors
/// `BridgePaused`; `Overflow` if crediting or the ledger would overflow; storage failures.
pub fn attest_deposit<R: StateRead>(
    state: &mut StateDelta<R>,
    attest: &MsgAttestDeposit,
    params: &Params,
    quorum: u32,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    crate::pause::ensure_running(state)?;
    let facts = &attest.facts;
    if facts.deposit_address && state.deposit_address(&facts.recipient)?.is_none() {
        return Err(rejection(
            TxCode::InvalidMessage,
            format!(
                "deposit {}: {} has no registered deposit address, so no payment can have gone to one",
                facts.id(),
                facts.recipient
            ),
        ));
    }
    let id = facts.id();
    let digest = digest_hex(facts);
    let existing = state.deposit(&id)?;
    if existing.as_ref().is_none_or(|record| record.status == DepositStatus::Pending) {
        let first_seen = existing.as_ref().map_or(height, |record| record.first_attested_height);
        check_peg_epoch(state, params, facts, first_seen)?;
    }
    if existing.is_none() {
        open_record(state, params, &attest.attester)?;
    }
    let mut record = existing.unwrap_or_else(|| DepositRecord {
        id: id.clone(),
        status: DepositStatus::Pending,
        attestations: BTreeMap::new(),
        candidates: BTreeMap::new(),
        conflicts: Vec::new(),
        minted: None,
        minted_amount: None,
        spend_fee: None,
        first_attested_height: height,
        minted_height: None,
        opened_by: Some(attest.attester),
        unattributed: None,
    });

    let previous = record.attestations.get(&attest.attester).cloned();
    // Who is wrong is known only once facts minted; before that, differing attestations from
    // different members are simply competing candidates. A member contradicting its own earlier
    // attestation, or attesting against the minted facts, is recorded at once.
    let contradicts_itself = previous.as_ref().is_some_and(|earlier| earlier != &digest);
    let contradicts_mint = record.minted.as_ref().is_some_and(|minted| digest_hex(minted) != digest);
    if contradicts_itself || contradicts_mint {
        record_conflict(&mut record, attest.attester, facts, height, events);
    }
    if previous.is_none() {
        record.attestations.insert(attest.attester, digest.clone());
        record.candidates.entry(digest.clone()).or_insert_with(|| facts.clone());
    }
    let agreeing = record.attestations.values().filter(|other| **other == digest).count();
    events.push(Event::new(
        ev::DEPOSIT_ATTESTED,
        [
            (ev::DEPOSIT_ID, id.to_string()),
            (ev::ATTESTER, attest.attester.to_string()),
            (ev::ATTESTATIONS, agreeing.to_string()),
            (ev::QUORUM, quorum.to_string()),
        ],
    ));

    let reached = u32::try_from(agreeing).unwrap_or(u32::MAX) >= quorum;
    if record.status == DepositStatus::Pending
        && reached
        && facts.chain == ParentChain::Bitcoin
        && state.reserve_utxo(&facts.tx_id, facts.index)?.is_some()
    {
        // Only the federation's own transactions (a release's change) create reserve outputs
        // other than deposits: counting one again would back nothing.
        return Err(rejection(
            TxCode::InvalidMessage,
            format!(
                "deposit {id}: {}:{} is already a reserve output of the bridge (a release's change)",
                facts.tx_id, facts.index
            ),
        ));
    }
    if record.status == DepositStatus::Pending && reached {
        if let Some(opener) = record.opened_by {
            close_record(state, &opener)?;
        }
        let spend_fee = spend_fee(state, params, facts)?;
        let minimum = params.deposits.min_deposit(&facts.asset);
        if !params.lists(&facts.asset) {
            unlisted(&mut record, facts, height, events);
        } else if facts.amount < minimum || facts.amount <= spend_fee {
            below_minimum(state, &mut record, facts, minimum, spend_fee, height, events)?;
        } else if let Some(reason) = facts.unattributed {
            crate::unattributed::record(state, &mut record, facts, reason, height, events)?;
        } else {
            let minted = mint(state, facts, spend_fee, events)?;
            record.status = DepositStatus::Minted;
            record.minted = Some(facts.clone());
            record.minted_amount = Some(minted);
            record.spend_fee = (!spend_fee.is_zero()).then_some(spend_fee);
            record.minted_height = Some(height);
            // Every member whose attestation differs from what minted attested conflicting facts.
            let dissenters: Vec<(Address, DepositFacts)> = record
                .attestations
                .iter()
                .filter(|(_, attested)| **attested != digest)
                .filter_map(|(member, attested)| Some((*member, record.candidates.get(attested)?.clone())))
                .collect();
            for (member, their_facts) in dissenters {
                record_conflict(&mut record, member, &their_facts, height, events);
            }
            tracing::info!(deposit_id = %id, recipient = %facts.recipient, amount = %facts.amount, asset = %facts.asset, height, "deposit minted");
        }
    }
    state.put_deposit(&record);
    Ok(())
}

/// Records a deposit of an unlisted token that reached its quorum: never minted, no ledger.
fn unlisted(record: &mut DepositRecord, facts: &DepositFacts, height: u64, events: &mut Vec<Event>) {
    record.status = DepositStatus::Unlisted;
    let id = facts.id();
    events.push(Event::new(
        ev::DEPOSIT_UNLISTED,
        [
            (ev::DEPOSIT_ID, id.to_string()),
            (ev::RECIPIENT, facts.recipient.to_string()),
            (ev::AMOUNT, format!("{}{}", facts.amount, facts.asset)),
            (ev::REASON, format!("{} is not listed on the chain (no withdrawal limit)", facts.asset)),
        ],
    ));
    tracing::warn!(deposit_id = %id, amount = %facts.amount, asset = %facts.asset, height, "deposit of an unlisted token: not minted");
}

/// Counts a new record against `member`'s open records, refusing it (`duty_limit`) at
/// `params.max_open_deposits_per_member`: each attested id is a permanent record, so a member
/// attesting ids that never reach a quorum could otherwise grow state without bound.
fn open_record<R: StateRead>(state: &mut StateDelta<R>, params: &Params, member: &Address) -> Result<(), BankError> {
    let open: u64 = state.get_record(&keys::open_deposits(member))?.unwrap_or(0);
    let limit = u64::from(params.max_open_deposits_per_member);
    if open >= limit {
        return Err(rejection(
            TxCode::DutyLimit,
            format!(
                "member {member} has opened {open} deposit records no quorum has decided yet, at most {limit} (params.max_open_deposits_per_member); attest deposits others opened, or wait until yours are decided"
            ),
        ));
    }
    state.put_record(keys::open_deposits(member), &(open + 1));
    Ok(())
}

/// A record `member` opened was decided (minted, below the minimum or unlisted).
fn close_record<R: StateRead>(state: &mut StateDelta<R>, member: &Address) -> Result<(), StateError> {
    let open: u64 = state.get_record(&keys::open_deposits(member))?.unwrap_or(0);
    state.put_record(keys::open_deposits(member), &open.saturating_sub(1));
    Ok(())
}

/// Records that `member` attested conflicting facts: its first such attestation is kept, later
/// ones only counted, so a member cannot grow the record without bound.
fn record_conflict(
    record: &mut DepositRecord,
    member: Address,
    facts: &DepositFacts,
    height: u64,
    events: &mut Vec<Event>,
) {
    match record.conflicts.iter_mut().find(|conflict| conflict.member == member) {
        Some(conflict) => conflict.count = conflict.count.saturating_add(1),
        None => record.conflicts.push(Conflict { member, facts: facts.clone(), height, count: 1 }),
    }
    events.push(Event::new(
        ev::DEPOSIT_CONFLICT,
        [(ev::DEPOSIT_ID, record.id.to_string()), (ev::ATTESTER, member.to_string())],
    ));
}

/// What a deposit prepays for its own spending: for Bitcoin, the chain's fee rate now on the
/// size one peg input adds to a release ([`input_spend_fee`]); nothing on Ethereum (the relayer
/// pays release gas) or on a chain without a peg.
fn spend_fee<R: StateRead>(state: &StateDelta<R>, params: &Params, facts: &DepositFacts) -> Result<Amount, StateError> {
    if facts.chain != ParentChain::Bitcoin {
        return Ok(Amount::ZERO);
    }
    bitcoin_spend_fee(state, params, reserve_owner(facts).as_ref())
}

/// What spending one reserve output (the peg's, or `owner`'s deposit address's) costs at the
/// chain's fee rate now; nothing on a chain without a peg.
///
/// # Errors
/// On storage failure or a corrupt record.
pub(crate) fn bitcoin_spend_fee<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    owner: Option<&Address>,
) -> Result<Amount, StateError> {
    let Some(peg) = crate::batch::peg_of(&state.federation()?)? else { return Ok(Amount::ZERO) };
    Ok(input_spend_fee(&peg, owner, state.bitcoin_fee_rate(params)?))
}

/// Adds the output of the Bitcoin deposit `facts` (minted or unattributed) to the reserve UTXOs:
/// at the current federation's peg, or at the retired one it pays ([`retired_peg_epoch`] let it
/// through), which only a sweep spends. Nothing for an Ethereum deposit.
///
/// # Errors
/// On storage failure or a corrupt record.
pub(crate) fn put_deposit_utxo<R: StateRead>(
    state: &mut StateDelta<R>,
    facts: &DepositFacts,
) -> Result<(), StateError> {
    if facts.chain != ParentChain::Bitcoin {
        return Ok(());
    }
    let current = state.federation()?.epoch;
    state.put_reserve_utxo(&ReserveUtxo {
        txid: facts.tx_id.clone(),
        vout: facts.index,
        amount: facts.amount,
        locked_by: None,
        owner: reserve_owner(facts),
        retired_epoch: facts.peg_epoch.filter(|epoch| *epoch != current),
    })
}

/// Checks the peg a Bitcoin deposit pays ([`DepositFacts::peg_epoch`]): the current
/// federation's, or a retired one's whose grace (`old_peg_grace_blocks` from its hand-over) was
/// still open when the deposit was first attested, at `first_seen`.
///
/// # Errors
/// `InvalidMessage` naming the epoch and why: the next federation's peg (not a deposit before
/// the switch), a peg no hand-over retired, or one whose grace had ended.
fn check_peg_epoch<R: StateRead>(
    state: &StateDelta<R>,
    params: &Params,
    facts: &DepositFacts,
    first_seen: u64,
) -> Result<(), BankError> {
    let Some(epoch) = facts.peg_epoch.filter(|_| facts.chain == ParentChain::Bitcoin) else { return Ok(()) };
    let current = state.federation()?.epoch;
    if epoch == current {
        return Ok(());
    }
    let refuse = |why: String| {
        Err(rejection(
            TxCode::InvalidMessage,
            format!("deposit {}: it pays the peg of federation epoch {epoch}, {why}: not minted", facts.id()),
        ))
    };
    if epoch > current {
        return refuse(format!("which is not the federation's yet (epoch {current})"));
    }
    let switched = match state.retired_federation(epoch)? {
        Some(_) => crate::handover::switched_away(state, epoch)?,
        None => None,
    };
    let Some(switched) = switched else { return refuse("which no hand-over retired".to_owned()) };
    let until = switched.saturating_add(params.deposits.old_peg_grace_blocks);
    if first_seen > until {
        return refuse(format!("retired at height {switched}; its grace ended at height {until}"));
    }
    Ok(())
}

/// The account whose deposit address a Bitcoin deposit's output pays, if it went to one.
fn reserve_owner(facts: &DepositFacts) -> Option<Address> {
    facts.deposit_address.then_some(facts.recipient)
}

/// Records a deposit that reached its quorum below its asset's minimum (or not worth its own
/// spending): never minted, counted in the ledger's `below_minimum`.
fn below_minimum<R: StateRead>(
    state: &mut StateDelta<R>,
    record: &mut DepositRecord,
    facts: &DepositFacts,
    minimum: Amount,
    spend_fee: Amount,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let mut ledger = state.ledger(&facts.asset)?;
    ledger.below_minimum = ledger
        .below_minimum
        .checked_add(facts.amount)
        .map_err(|_| rejection(TxCode::Overflow, format!("{} below-minimum tally would overflow", facts.asset)))?;
    state.put_ledger(&facts.asset, &ledger)?;
    record.status = DepositStatus::BelowMinimum;
    let id = facts.id();
    events.push(Event::new(
        ev::DEPOSIT_BELOW_MINIMUM,
        [
            (ev::DEPOSIT_ID, id.to_string()),
            (ev::RECIPIENT, facts.recipient.to_string()),
            (ev::AMOUNT, format!("{}{}", facts.amount, facts.asset)),
            (
                ev::REASON,
                format!(
                    "below the minimum deposit of {minimum}{0} (or not above its {spend_fee}{0} spending cost)",
                    facts.asset
                ),
            ),
        ],
    ));
    tracing::warn!(deposit_id = %id, amount = %facts.amount, asset = %facts.asset, %minimum, %spend_fee, height, "deposit below the minimum: not minted");
    Ok(())
}

/// Credits `facts`' recipient its amount less `spend_fee`, which goes to the fee pool; the whole
/// amount joins the reserves. Returns what was credited.
fn mint<R: StateRead>(
    state: &mut StateDelta<R>,
    facts: &DepositFacts,
    spend_fee: Amount,
    events: &mut Vec<Event>,
) -> Result<Amount, BankError> {
    let minted = facts.amount.checked_sub(spend_fee).unwrap_or(Amount::ZERO);
    let coin = Coin { denom: facts.asset.clone(), amount: minted };
    let mut recipient = bank::load_or_create(state, &facts.recipient, events)?;
    bank::credit(&mut recipient, &facts.recipient, &coin).map_err(BankError::Rejected)?;
    state.put_account(&facts.recipient, &recipient);

    let mut ledger = state.ledger(&facts.asset)?;
    let overflow = || rejection(TxCode::Overflow, format!("{} supply or reserves would overflow", facts.asset));
    ledger.supply = ledger.supply.checked_add(minted).map_err(|_| overflow())?;
    ledger.reserves = ledger.reserves.checked_add(facts.amount).map_err(|_| overflow())?;
    ledger.fee_pool = ledger.fee_pool.checked_add(spend_fee).map_err(|_| overflow())?;
    state.put_ledger(&facts.asset, &ledger)?;

    put_deposit_utxo(state, facts)?;
    let mut attributes = vec![
        (ev::DEPOSIT_ID, facts.id().to_string()),
        (ev::RECIPIENT, facts.recipient.to_string()),
        (ev::AMOUNT, coin.to_string()),
    ];
    if !spend_fee.is_zero() {
        attributes.push((ev::SPEND_FEE, format!("{spend_fee}{}", facts.asset)));
    }
    events.push(Event::new(ev::DEPOSIT_MINTED, attributes));
    Ok(minted)
}
