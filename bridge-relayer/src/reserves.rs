//! Answering the chain's reserves rounds (`/reserves/check`, see `ferry_app::reserves_check`):
//! which round this member still owes a snapshot for, and when its own node can give one.
//!
//! The snapshot itself is I/O (the relayer's peg index in PostgreSQL for Bitcoin, the vault's
//! balances at a block for Ethereum; [`crate::service`]); what to answer is decided here,
//! including which of the chain's reserve outputs a snapshot names gone ([`gone_outputs`]).

use std::collections::BTreeSet;

use ferry_types::msg::MAX_GONE_OUTPUTS;
use ferry_types::query::{ReservesCheckView, ReservesView};
use ferry_types::{Address, Denom, DepositId, ParentChain};

/// What a reserves round asks this member about one parent chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundAsk {
    /// The round.
    pub round: u64,
    /// The sidechain height it opened at (the ledger it asks about is as of then).
    pub opened_at: u64,
    /// The parent height the snapshot is taken at.
    pub parent_height: u64,
    /// The assets it names, in order.
    pub assets: Vec<Denom>,
}

/// The snapshot of `chain` that `member` owes the open round: `None` when no round is open, it
/// asks nothing of `chain`, a quorum already agreed, or `member` already answered.
pub fn round_to_answer(view: &ReservesCheckView, chain: ParentChain, member: &Address) -> Option<RoundAsk> {
    let round = view.round.as_ref()?;
    let target = round.chains.get(&chain)?;
    if target.checked || target.reports.contains_key(member) {
        return None;
    }
    Some(RoundAsk {
        round: round.number,
        opened_at: round.opened_at,
        parent_height: target.parent_height,
        assets: target.needed.keys().cloned().collect(),
    })
}

/// The reserve outputs the chain counted (`reserves`, as of the round's opening) that are free
/// — not being spent by a release in flight — and missing from `held` (what the member's node
/// holds unspent at the snapshot height): ids `btc:<txid>:<vout>`, ascending, at most
/// [`MAX_GONE_OUTPUTS`].
pub fn gone_outputs(reserves: &ReservesView, held: &BTreeSet<(String, u32)>) -> Vec<DepositId> {
    let mut gone: Vec<DepositId> = reserves
        .bitcoin_utxos
        .iter()
        .filter(|utxo| utxo.locked_by.is_none() && !held.contains(&(utxo.txid.clone(), utxo.vout)))
        .filter_map(|utxo| format!("btc:{}:{}", utxo.txid, utxo.vout).parse().ok())
        .collect();
    gone.sort();
    gone.truncate(MAX_GONE_OUTPUTS);
    gone
}

#[cfg(test)]
mod tests {
    use ferry_types::query::{NeededReserves, ReservesRound, ReservesTarget};

    use super::*;

    #[test]
    fn a_member_answers_an_open_unchecked_round_once() {
        let me = Address::from_bytes([1; 20]);
        let target = ReservesTarget {
            parent_height: 140,
            needed: [(Denom::sat(), NeededReserves::default())].into_iter().collect(),
            ..ReservesTarget::default()
        };
        let round =
            ReservesRound { number: 7, opened_at: 70, chains: [(ParentChain::Bitcoin, target)].into_iter().collect() };
        let mut view = ReservesCheckView { interval: 10, round: Some(round), ..ReservesCheckView::default() };
        let ask = round_to_answer(&view, ParentChain::Bitcoin, &me);
        assert_eq!(ask, Some(RoundAsk { round: 7, opened_at: 70, parent_height: 140, assets: vec![Denom::sat()] }));
        assert_eq!(round_to_answer(&view, ParentChain::Ethereum, &me), None, "nothing asked of Ethereum");

        let Some(target) = view.round.as_mut().and_then(|round| round.chains.get_mut(&ParentChain::Bitcoin)) else {
            unreachable!("built above")
        };
        target.reports.insert(me, Default::default());
        assert_eq!(round_to_answer(&view, ParentChain::Bitcoin, &me), None, "already answered");
        assert!(round_to_answer(&view, ParentChain::Bitcoin, &Address::from_bytes([2; 20])).is_some());
        if let Some(target) = view.round.as_mut().and_then(|round| round.chains.get_mut(&ParentChain::Bitcoin)) {
            target.checked = true;
        }
        assert_eq!(round_to_answer(&view, ParentChain::Bitcoin, &Address::from_bytes([2; 20])), None, "checked");
        assert_eq!(round_to_answer(&ReservesCheckView::default(), ParentChain::Bitcoin, &me), None);
    }

    #[test]
    fn outputs_gone_are_the_free_reserve_outputs_the_node_does_not_hold() {
        let txid = |byte: &str| byte.repeat(32);
        let utxo = |id: &str, vout: u32, locked_by: Option<u64>| ferry_types::query::ReserveUtxo {
            txid: txid(id),
            vout,
            amount: ferry_types::Amount::new(1_000),
            locked_by,
            owner: None,
            retired_epoch: None,
        };
        let reserves = ReservesView {
            assets: Default::default(),
            bitcoin_utxos: vec![utxo("bb", 1, None), utxo("aa", 0, None), utxo("cc", 0, Some(4)), utxo("dd", 2, None)],
        };
        let held: BTreeSet<(String, u32)> = [(txid("dd"), 2)].into_iter().collect();
        let gone: Vec<String> = gone_outputs(&reserves, &held).iter().map(ToString::to_string).collect();
        // Ascending; the output a release in flight spends is not gone; the held one is not.
        assert_eq!(gone, [format!("btc:{}:0", txid("aa")), format!("btc:{}:1", txid("bb"))]);
    }
}
