//! The reserves check that can fail: the ledger compared with what the parent chains really hold.
//!
//! The invariant of [`crate::reserves`] compares the ledger with itself, so a fake or double
//! mint, which raises supply and reserves alike, passes it. This check asks the parent chains.
//!
//! - **Rounds.** Every `reserves_interval` blocks a round opens (at the end of the block). For
//!   each parent chain with a parent clock it fixes a parent height, the clock's height, and what
//!   the ledger needs the chain to hold there per asset ([`NeededReserves`]): the reserves plus
//!   the deposits below the minimum, less what unsettled releases may already have paid (their
//!   totals and, for Bitcoin, their fees).
//! - **Why the clock's height.** Relayers report their parent tip before they attest deposits
//!   (`ferry_relayer`), so a minted deposit had a quorum of reports at or above its block, and the
//!   clock — the highest height a quorum reached — is at or above every deposit minted by the
//!   round's opening. A release broadcast after the opening is mined above the clock; one mined
//!   at or below it is still unsettled (allowed for) or settled (already out of the ledger).
//!   Deposits at or below it that are not minted yet, and coins sent to the bridge outside
//!   Ferry's flows, are an excess, never a shortfall.
//! - **Snapshots.** Each member's relayer attests what its own node shows the bridge holding at
//!   that height (`MsgAttestReserves`, a duty): the Bitcoin peg's outputs from its own scan of the
//!   blocks (not from the chain's UTXO list), the vault's ether and token balances. When
//!   `attest_quorum` members' snapshots agree, the chain compares: a shortfall in any asset
//!   pauses the bridge at once, naming the asset and the figures; an excess is reported. Either
//!   way the result is kept (`/reserves/check`, the node's metrics).
//! - Fewer than a quorum of lying members can neither pause the bridge nor hide a shortfall; a
//!   round no quorum agrees on is left unchecked (the age of the last check is a metric, with an
//!   alert).

use std::collections::BTreeMap;

use ferry_types::event as ev;
use ferry_types::msg::{MsgAttestReserves, parent_chain_of};
use ferry_types::query::{AssetCheck, NeededReserves, ReservesCheck, ReservesCheckView, ReservesRound, ReservesTarget};
use ferry_types::{Amount, Denom, DepositId, Params, ParentChain, TxCode, TxRejection};

use crate::bank::BankError;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of the reserves check.
pub mod keys {
    use ferry_types::ParentChain;

    /// The open round ([`ferry_types::query::ReservesRound`]).
    pub const ROUND: &[u8] = b"reserves_check/round";

    /// `chain`'s latest checked round ([`ferry_types::query::ReservesCheck`]).
    pub fn last(chain: ParentChain) -> Vec<u8> {
        format!("reserves_check/last/{chain}").into_bytes()
    }
}

impl<R: StateRead> StateDelta<R> {
    /// The open reserves round, if one has opened.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn reserves_round(&self) -> Result<Option<ReservesRound>, StateError> {
        self.get_record(keys::ROUND)
    }

    /// `chain`'s latest checked round.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn reserves_check(&self, chain: ParentChain) -> Result<Option<ReservesCheck>, StateError> {
        self.get_record(&keys::last(chain))
    }

    /// The `/reserves/check` answer.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn reserves_check_view(&self, params: &Params) -> Result<ReservesCheckView, StateError> {
        let mut last = BTreeMap::new();
        for chain in ParentChain::ALL {
            if let Some(check) = self.reserves_check(chain)? {
                last.insert(chain, check);
            }
        }
        Ok(ReservesCheckView { interval: params.reserves_interval, round: self.reserves_round()?, last })
    }
}

/// Opens a round at `height` when it is a multiple of `reserves_interval` (see the module docs).
/// A previous round some chain never reached a quorum in is dropped, with a warning.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn open_round_if_due<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let interval = params.reserves_interval.max(1);
    if !height.is_multiple_of(interval) {
        return Ok(());
    }
    if let Some(previous) = state.reserves_round()? {
        for (chain, target) in previous.chains.iter().filter(|(_, target)| !target.checked) {
            tracing::warn!(round = previous.number, %chain, snapshots = target.reports.len(), "reserves round closed without a quorum of agreeing snapshots");
        }
    }
    let denoms = state.ledger_denoms()?;
    let mut chains = BTreeMap::new();
    for chain in ParentChain::ALL {
        let parent_height = state.parent_clock(chain)?.height;
        if parent_height == 0 {
            continue;
        }
        let mut needed = BTreeMap::new();
        for denom in denoms.iter().filter(|denom| parent_chain_of(denom) == chain) {
            let ledger = state.ledger(denom)?;
            let held = ledger.reserves.checked_add(ledger.below_minimum).unwrap_or(Amount::new(u128::MAX));
            let in_flight = crate::batch::unsettled(state, denom)?.outflow();
            needed.insert(denom.clone(), NeededReserves { held, in_flight });
        }
        chains.insert(chain, ReservesTarget { parent_height, needed, ..ReservesTarget::default() });
    }
    let round = ReservesRound { number: height / interval, opened_at: height, chains };
    let targets: Vec<String> =
        round.chains.iter().map(|(chain, target)| format!("{chain}={}", target.parent_height)).collect();
    events.push(Event::new(
        ev::RESERVES_ROUND_OPENED,
        [(ev::ROUND, round.number.to_string()), (ev::TARGETS, targets.join(","))],
    ));
    state.put_record(keys::ROUND.to_vec(), &round);
    Ok(())
}

fn refused(log: String) -> BankError {
    BankError::Rejected(TxRejection::new(TxCode::ReservesRound, log))
}

/// Records a member's snapshot; at a quorum of identical snapshots compares them with what the
/// round needs, keeps the result and pauses the bridge on a shortfall. A snapshot after the
/// chain's round was checked is accepted and changes nothing.
///
/// # Errors
/// `ReservesRound` when the snapshot does not answer the open round (another round, another
/// parent height, other assets); storage failures.
pub fn attest_reserves<R: StateRead>(
    state: &mut StateDelta<R>,
    snapshot: &MsgAttestReserves,
    quorum: u32,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let Some(mut round) = state.reserves_round()?.filter(|round| round.number == snapshot.round) else {
        let open = state.reserves_round()?.map_or("none".to_owned(), |round| round.number.to_string());
        return Err(refused(format!("reserves round {} is not open (open: {open})", snapshot.round)));
    };
    let chain = snapshot.chain;
    let Some(target) = round.chains.get_mut(&chain) else {
        return Err(refused(format!("reserves round {} asks nothing of {chain}", round.number)));
    };
    if snapshot.parent_height != target.parent_height {
        return Err(refused(format!(
            "reserves round {} asks for {chain} at parent height {}, not {}",
            round.number, target.parent_height, snapshot.parent_height
        )));
    }
    if !snapshot.holdings.keys().eq(target.needed.keys()) {
        let asked: Vec<&str> = target.needed.keys().map(Denom::as_str).collect();
        return Err(refused(format!(
            "reserves round {} asks for exactly these {chain} assets: [{}]",
            round.number,
            asked.join(", ")
        )));
    }
    if target.checked {
        return Ok(());
    }
    target.reports.insert(snapshot.attester, snapshot.holdings.clone());
    if !snapshot.gone.is_empty() {
        target.gone.insert(snapshot.attester, snapshot.gone.clone());
    }
    let agreeing = target.reports.values().filter(|holdings| **holdings == snapshot.holdings).count();
    events.push(Event::new(
        ev::RESERVES_ATTESTED,
        [
            (ev::ATTESTER, snapshot.attester.to_string()),
            (ev::CHAIN, chain.to_string()),
            (ev::ROUND, round.number.to_string()),
            (ev::ATTESTATIONS, agreeing.to_string()),
            (ev::QUORUM, quorum.to_string()),
        ],
    ));
    let agreeing = u32::try_from(agreeing).unwrap_or(u32::MAX);
    if agreeing >= quorum {
        target.checked = true;
        let check = ReservesCheck {
            round: round.number,
            checked_at: height,
            parent_height: target.parent_height,
            attesters: agreeing,
            assets: compare(&target.needed, &snapshot.holdings),
            gone: gone_by_all(target, &snapshot.holdings),
        };
        conclude(state, chain, &check, height, events)?;
    }
    state.put_record(keys::ROUND.to_vec(), &round);
    Ok(())
}

/// The reserve outputs every member whose snapshot shows `holdings` names gone: what a quorum
/// agreeing on the figures also agrees is missing (a minority cannot add an id).
fn gone_by_all(target: &ReservesTarget, holdings: &BTreeMap<Denom, Amount>) -> Vec<DepositId> {
    let mut agreeing = target.reports.iter().filter(|(_, reported)| *reported == holdings).map(|(member, _)| member);
    let Some(first) = agreeing.next() else { return Vec::new() };
    let mut gone = target.gone.get(first).cloned().unwrap_or_default();
    for member in agreeing {
        let theirs = target.gone.get(member).map(Vec::as_slice).unwrap_or_default();
        gone.retain(|id| theirs.contains(id));
    }
    gone
}

/// Each asset's holdings against what the round needs (see [`AssetCheck`]).
pub fn compare(
    needed: &BTreeMap<Denom, NeededReserves>,
    holdings: &BTreeMap<Denom, Amount>,
) -> BTreeMap<Denom, AssetCheck> {
    needed
        .iter()
        .map(|(denom, needed)| {
            let holdings = holdings.get(denom).copied().unwrap_or(Amount::ZERO);
            let least = needed.least();
            let check = AssetCheck {
                holdings,
                least,
                shortfall: least.checked_sub(holdings).unwrap_or(Amount::ZERO),
                excess: holdings.checked_sub(needed.held).unwrap_or(Amount::ZERO),
            };
            (denom.clone(), check)
        })
        .collect()
}

/// Why `check` falls short, naming each short asset and its figures; `None` when nothing does.
pub fn shortfall_reason(chain: ParentChain, check: &ReservesCheck) -> Option<String> {
    let short: Vec<String> = check
        .assets
        .iter()
        .filter(|(_, asset)| !asset.shortfall.is_zero())
        .map(|(denom, asset)| {
            format!(
                "{denom}: {} held at {chain} height {}, the ledger needs at least {} (short by {})",
                asset.holdings, check.parent_height, asset.least, asset.shortfall
            )
        })
        .collect();
    if short.is_empty() {
        return None;
    }
    let mut reason = format!("reserves shortfall on {chain}: {}", short.join("; "));
    if !check.gone.is_empty() {
        const SHOWN: usize = 3;
        let shown: Vec<&str> = check.gone.iter().take(SHOWN).map(DepositId::as_str).collect();
        let more = check.gone.len().saturating_sub(SHOWN);
        let more = if more > 0 { format!(" and {more} more (`/reserves/check`)") } else { String::new() };
        reason.push_str(&format!("; reserve outputs gone from the parent chain: {}{more}", shown.join(", ")));
    }
    Some(reason)
}

fn conclude<R: StateRead>(
    state: &mut StateDelta<R>,
    chain: ParentChain,
    check: &ReservesCheck,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    state.put_record(keys::last(chain), check);
    let excess: Vec<String> = check
        .assets
        .iter()
        .filter(|(_, asset)| !asset.excess.is_zero())
        .map(|(denom, asset)| format!("{denom}: {} more than the books hold", asset.excess))
        .collect();
    let shortfall = shortfall_reason(chain, check);
    let (result, reason) = match &shortfall {
        Some(reason) => ("shortfall", reason.clone()),
        None if !excess.is_empty() => ("excess", format!("reserves excess on {chain}: {}", excess.join("; "))),
        None => ("ok", String::new()),
    };
    events.push(Event::new(
        ev::RESERVES_CHECKED,
        [
            (ev::CHAIN, chain.to_string()),
            (ev::ROUND, check.round.to_string()),
            (ev::HEIGHT, check.parent_height.to_string()),
            (ev::RESULT, result.to_owned()),
            (ev::REASON, reason.clone()),
        ],
    ));
    if let Some(reason) = shortfall {
        tracing::error!(height, %chain, round = check.round, %reason, "pausing the bridge");
        crate::pause::pause(state, reason, height, events)?;
    } else {
        tracing::info!(height, %chain, round = check.round, parent_height = check.parent_height, result, %reason, "reserves checked");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needed(held: u128, in_flight: u128) -> NeededReserves {
        NeededReserves { held: Amount::new(held), in_flight: Amount::new(in_flight) }
    }

    #[test]
    fn holdings_below_what_the_books_need_less_releases_in_flight_fall_short() {
        let needed: BTreeMap<Denom, NeededReserves> = [(Denom::sat(), needed(1_000, 300))].into_iter().collect();
        let at = |held: u128| {
            let holdings = [(Denom::sat(), Amount::new(held))].into_iter().collect();
            compare(&needed, &holdings).remove(&Denom::sat()).unwrap_or_default()
        };
        // A release of 300 mined but not settled yet: 700 is enough.
        assert_eq!((at(700).shortfall, at(700).excess), (Amount::ZERO, Amount::ZERO));
        assert_eq!(at(699).shortfall, Amount::new(1));
        // Coins the books do not know of: an excess, never hiding anything.
        assert_eq!((at(1_250).shortfall, at(1_250).excess), (Amount::ZERO, Amount::new(250)));
        // An asset missing from the holdings counts as nothing held.
        let none = compare(&needed, &BTreeMap::new());
        assert_eq!(none.get(&Denom::sat()).map(|asset| asset.shortfall), Some(Amount::new(700)));
    }

    #[test]
    fn a_shortfall_names_the_asset_and_the_figures() {
        let assets = [
            (Denom::sat(), AssetCheck { holdings: Amount::new(5), least: Amount::new(5), ..AssetCheck::default() }),
            (
                Denom::wei(),
                AssetCheck {
                    holdings: Amount::new(1),
                    least: Amount::new(4),
                    shortfall: Amount::new(3),
                    excess: Amount::ZERO,
                },
            ),
        ];
        let check = ReservesCheck {
            round: 2,
            parent_height: 90,
            assets: assets.into_iter().collect(),
            ..ReservesCheck::default()
        };
        assert_eq!(
            shortfall_reason(ParentChain::Ethereum, &check).as_deref(),
            Some("reserves shortfall on eth: wei: 1 held at eth height 90, the ledger needs at least 4 (short by 3)")
        );
        let fine = ReservesCheck { assets: BTreeMap::new(), ..check };
        assert_eq!(shortfall_reason(ParentChain::Ethereum, &fine), None);
    }
}
