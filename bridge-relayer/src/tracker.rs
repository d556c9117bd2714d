//! The deposit tracker: the pure core that decides when an observed deposit may be attested.
//!
//! It is fed observations (facts plus the block they were seen in) and, on each evaluation, the
//! current tip height and a way to look up which block hash is canonical at a height. It answers
//! with effects: attest (confirmed and still in the best chain), dropped (its block was reorged
//! out), or still waiting. It never does I/O, so every decision replays exactly in tests.
//!
//! The confirmations a deposit needs are chosen by the total its block pays the bridge in its
//! asset, not by its own amount: a large deposit split into many small outputs (or
//! transactions, or logs) in one block needs what the large deposit needs.

use std::collections::BTreeMap;

use ferry_types::{Amount, Denom, DepositId};

use ferry_parent_chains::Observation;

use crate::confirmations::ConfirmationPolicy;

/// Confirmations before a coinbase output may be spent (Bitcoin consensus).
pub const COINBASE_MATURITY: u32 = 100;

/// What the relayer should do about a tracked deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Confirmed on a block still in the best chain: attest it.
    Attest(Observation),
    /// Its block is no longer in the best chain: forget it (a re-inclusion is observed anew).
    Dropped {
        /// The observation dropped.
        observation: Observation,
        /// The hash now canonical at its height, if any.
        canonical: Option<String>,
    },
    /// Not deep enough yet.
    Waiting {
        /// The deposit.
        id: DepositId,
        /// Confirmations so far.
        confirmations: u64,
        /// Confirmations required.
        required: u32,
    },
}

/// Deposits observed and not yet attested or dropped.
#[derive(Clone, Debug)]
pub struct Tracker {
    policy: ConfirmationPolicy,
    pending: BTreeMap<DepositId, Observation>,
    attestable_up_to: Option<u64>,
}

impl Tracker {
    /// An empty tracker applying `policy`.
    pub fn new(policy: ConfirmationPolicy) -> Self {
        Tracker { policy, pending: BTreeMap::new(), attestable_up_to: None }
    }

    /// Attests only deposits in blocks at or below `height` (Ethereum's finalized block), however
    /// deep they are; the rest wait.
    pub fn attestable_up_to(mut self, height: u64) -> Self {
        self.attestable_up_to = Some(height);
        self
    }

    /// Starts tracking `observation`; an observation of the same deposit in another block (after a
    /// reorg re-included it) replaces the earlier one.
    pub fn observe(&mut self, observation: Observation) {
        self.pending.insert(observation.facts.id(), observation);
    }

    /// Number of deposits waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Decides about every tracked deposit at chain tip `tip`, re-checking each deposit's block
    /// against `canonical_hash(height)`. Attested and dropped deposits stop being tracked.
    pub fn evaluate(&mut self, tip: u64, canonical_hash: impl Fn(u64) -> Option<String>) -> Vec<Effect> {
        let mut block_totals: BTreeMap<(&str, &Denom), Amount> = BTreeMap::new();
        for observation in self.pending.values() {
            let total = block_totals.entry((observation.block_hash.as_str(), &observation.facts.asset)).or_default();
            *total = total.checked_add(observation.facts.amount).unwrap_or(Amount::new(u128::MAX));
        }
        let mut effects = Vec::new();
        let mut done = Vec::new();
        for (id, observation) in &self.pending {
            let canonical = canonical_hash(observation.block_height);
            if canonical.as_deref() != Some(observation.block_hash.as_str()) {
                effects.push(Effect::Dropped { observation: observation.clone(), canonical });
                done.push(id.clone());
                continue;
            }
            let confirmations = tip.saturating_sub(observation.block_height).saturating_add(1);
            let paid_in_block = block_totals
                .get(&(observation.block_hash.as_str(), &observation.facts.asset))
                .copied()
                .unwrap_or(observation.facts.amount);
            let required = self.policy.required(paid_in_block);
            let required = if observation.coinbase { required.max(COINBASE_MATURITY) } else { required };
            let attestable = observation.block_height <= self.attestable_up_to.unwrap_or(tip);
            if observation.block_height <= tip && attestable && confirmations >= u64::from(required) {
                effects.push(Effect::Attest(observation.clone()));
                done.push(id.clone());
            } else {
                effects.push(Effect::Waiting { id: id.clone(), confirmations, required });
            }
        }
        for id in done {
            self.pending.remove(&id);
        }
        effects
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferry_types::{Address, Amount, Denom, DepositFacts, ParentChain};

    use super::*;

    fn seen(tx: u8, height: u64, hash: &str) -> Observation {
        Observation {
            facts: DepositFacts {
                chain: ParentChain::Bitcoin,
                tx_id: format!("{tx:02x}").repeat(32),
                index: 0,
                asset: Denom::sat(),
                amount: Amount::new(10_000),
                recipient: Address::from_bytes([1; 20]),
                deposit_address: false,
                unattributed: None,
                peg_epoch: None,
            },
            block_height: height,
            block_hash: hash.to_owned(),
            coinbase: false,
        }
    }

    #[test]
    fn a_large_deposit_split_into_small_outputs_needs_the_large_tier() {
        use crate::confirmations::Tier;
        let policy = ConfirmationPolicy {
            default: 2,
            tiers: vec![Tier { min_amount: Amount::new(1_000_000_000), confirmations: 6 }],
        };
        let mut tracker = Tracker::new(policy);
        // Eleven outputs of 0.91 BTC in one block: 10.01 BTC in all, each below the 10 BTC tier.
        for vout in 0..11u32 {
            let mut observation = seen(1, 100, "a100");
            observation.facts.index = vout;
            observation.facts.amount = Amount::new(91_000_000);
            tracker.observe(observation);
        }
        // A small deposit in the next block needs only the default.
        tracker.observe(seen(2, 101, "a101"));
        let lookup = |h: u64| Some(format!("a{h}"));
        let effects = tracker.evaluate(102, lookup);
        assert!(
            matches!(effects.iter().find(|e| matches!(e, Effect::Attest(_))), Some(Effect::Attest(o)) if o.block_height == 101)
        );
        assert_eq!(effects.iter().filter(|e| matches!(e, Effect::Waiting { required: 6, .. })).count(), 11);
        assert!(tracker.evaluate(104, lookup).iter().all(|e| matches!(e, Effect::Waiting { required: 6, .. })));
        let effects = tracker.evaluate(105, lookup);
        assert_eq!(effects.iter().filter(|e| matches!(e, Effect::Attest(_))).count(), 11, "{effects:?}");
    }

    #[test]
    fn a_deposit_deep_enough_waits_until_its_block_is_final() {
        let mut tracker = Tracker::new(ConfirmationPolicy::flat(3)).attestable_up_to(99);
        tracker.observe(seen(1, 100, "a100"));
        let lookup = |h: u64| Some(format!("a{h}"));
        assert!(matches!(tracker.evaluate(150, lookup).as_slice(), [Effect::Waiting { confirmations: 51, .. }]));
        let mut tracker = Tracker::new(ConfirmationPolicy::flat(3)).attestable_up_to(100);
        tracker.observe(seen(1, 100, "a100"));
        assert!(matches!(tracker.evaluate(150, lookup).as_slice(), [Effect::Attest(_)]));
    }

    #[test]
    fn a_coinbase_deposit_waits_for_maturity_whatever_the_policy() {
        let mut tracker = Tracker::new(ConfirmationPolicy::flat(3));
        tracker.observe(Observation { coinbase: true, ..seen(1, 100, "a100") });
        let chain: BTreeMap<u64, String> = (100..=200).map(|h| (h, format!("a{h}"))).collect();
        let lookup = |h: u64| chain.get(&h).cloned();
        assert!(matches!(
            tracker.evaluate(198, lookup).as_slice(),
            [Effect::Waiting { confirmations: 99, required: 100, .. }]
        ));
        assert!(matches!(tracker.evaluate(199, lookup).as_slice(), [Effect::Attest(o)] if o.coinbase));
    }

    #[test]
    fn deposit_is_attested_at_exactly_the_required_depth_and_not_before() {
        let mut tracker = Tracker::new(ConfirmationPolicy::flat(3));
        tracker.observe(seen(1, 100, "a100"));
        let chain: BTreeMap<u64, String> = (100..=110).map(|h| (h, format!("a{h}"))).collect();
        let lookup = |h: u64| chain.get(&h).cloned();
        assert!(matches!(
            tracker.evaluate(101, lookup).as_slice(),
            [Effect::Waiting { confirmations: 2, required: 3, .. }]
        ));
        assert!(matches!(tracker.evaluate(102, lookup).as_slice(), [Effect::Attest(o)] if o.block_height == 100));
        assert!(tracker.is_empty());
    }

    #[test]
    fn deposit_reorged_out_before_confirmations_is_dropped_never_attested() {
        let mut tracker = Tracker::new(ConfirmationPolicy::flat(3));
        tracker.observe(seen(1, 100, "a100"));
        // A competing chain replaced block 100.
        let effects = tracker.evaluate(103, |h| Some(format!("b{h}")));
        assert!(matches!(effects.as_slice(), [Effect::Dropped { canonical: Some(c), .. }] if c == "b100"));
        assert!(tracker.evaluate(110, |h| Some(format!("b{h}"))).is_empty());
    }

    #[test]
    fn re_included_deposit_counts_from_its_new_block() {
        let mut tracker = Tracker::new(ConfirmationPolicy::flat(2));
        tracker.observe(seen(1, 100, "a100"));
        tracker.observe(seen(1, 101, "b101"));
        let effects = tracker.evaluate(101, |h| Some(format!("b{h}")));
        assert!(matches!(effects.as_slice(), [Effect::Waiting { confirmations: 1, .. }]));
    }
}
