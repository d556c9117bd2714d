//! Answering the chain's reserves rounds (`/reserves/check`, see `ferry_app::reserves_check`):
//! which round this member still owes a snapshot for, and when its own node can give one.
//!
//! The snapshot itself is I/O (the relayer's peg index in PostgreSQL for Bitcoin, the vault's
//! balances at a block for Ethereum; [`crate::service`]); what to answer is decided here.

use ferry_types::query::ReservesCheckView;
use ferry_types::{Address, Denom, ParentChain};

/// What a reserves round asks this member about one parent chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundAsk {
    /// The round.
    pub round: u64,
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
        parent_height: target.parent_height,
        assets: target.needed.keys().cloned().collect(),
    })
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
        assert_eq!(ask, Some(RoundAsk { round: 7, parent_height: 140, assets: vec![Denom::sat()] }));
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
}
