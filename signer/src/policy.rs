//! The signer's decision: sign a batch or refuse it, and why.
//!
//! [`decide`] is the whole rule set, pure: it takes the batch as the chain shows it, the
//! withdrawal records its items name, the chain's withdrawal parameters, what this member knows
//! for itself ([`LocalKnowledge`]), its local [`Policy`] and how much it already signed for the
//! asset in the current window, and answers [`Decision::Sign`] with the payload it rebuilt or
//! [`Decision::Refuse`] with a [`Refusal`]. It reads no clock, no database and no network; the
//! service hands everything in and acts on the answer.
//!
//! In order:
//! 1. the item count is within the local maximum (and not zero);
//! 2. the payload rebuilds byte for byte from the withdrawal records and local knowledge
//!    ([`crate::rebuild`]) — amounts equal the burns, destinations parse for the parent chain;
//! 3. no destination is on the local denylist;
//! 4. what this signer signed for the asset in its rolling window, plus this batch, stays within
//!    the local cap ([`check_cap`]; an asset without a local cap is never signed).
//!
//! The one rule that needs the database — never two payloads for one (epoch, nonce) — is applied
//! by [`crate::store`] inside the transaction that records the signature, which also re-runs
//! [`check_cap`] under the writers' lock so that two signer processes sharing a database cannot
//! both spend the same headroom.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bitcoin::ScriptBuf;
use ferry_types::genesis::WithdrawalParams;
use ferry_types::query::{Batch, Withdrawal, WithdrawalId};
use ferry_types::release::eth::EthAddress;
use ferry_types::{Amount, Denom};

use crate::rebuild::{Destination, LocalKnowledge, Rebuilt, rebuild};
use crate::refusal::{Reason, Refusal};

/// Destinations this signer never pays, whatever the chain says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Denylist {
    ethereum: BTreeSet<EthAddress>,
    bitcoin: BTreeMap<ScriptBuf, String>,
}

/// Why a denylist entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither an Ethereum address (0x + 40 hex digits) nor a Bitcoin address")]
pub struct DenylistError(pub String);

impl Denylist {
    /// A denylist of `entries`: Ethereum addresses (any capitalisation) and Bitcoin addresses
    /// of any network (matched by the output script they pay).
    ///
    /// # Errors
    /// The first entry that is neither.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Denylist, DenylistError> {
        let mut denylist = Denylist::default();
        for entry in entries {
            if entry.starts_with("0x") {
                // Any capitalisation: an operator copying an address must not be tripped by EIP-55.
                let address =
                    entry.to_ascii_lowercase().parse::<EthAddress>().map_err(|_| DenylistError(entry.to_owned()))?;
                denylist.ethereum.insert(address);
            } else {
                let address = entry
                    .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
                    .map_err(|_| DenylistError(entry.to_owned()))?;
                denylist.bitcoin.insert(address.assume_checked().script_pubkey(), entry.to_owned());
            }
        }
        Ok(denylist)
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.ethereum.len() + self.bitcoin.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry `destination` matches, if any.
    fn denies(&self, destination: &Destination) -> Option<String> {
        match destination {
            Destination::Ethereum(address) => self.ethereum.contains(address).then(|| address.to_string()),
            Destination::Bitcoin { script, .. } => self.bitcoin.get(script).cloned(),
        }
    }
}

/// This member's own limits, from its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The rolling window the caps apply to.
    pub window: Duration,
    /// Most this signer signs per asset (sum of batch totals, in base units) within `window`.
    /// An asset without an entry is never signed.
    pub caps: BTreeMap<Denom, Amount>,
    /// Most items in one batch.
    pub max_batch_items: u32,
    /// Destinations never paid.
    pub denylist: Denylist,
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct DecisionInput<'a> {
    /// The batch, as the chain's state holds it (proven, see `ferry_light`).
    pub batch: &'a Batch,
    /// The chain's records of the withdrawals the batch's items name (missing ones absent),
    /// proven as the batch is.
    pub withdrawals: &'a BTreeMap<WithdrawalId, Withdrawal>,
    /// The chain's withdrawal parameters (the Bitcoin per-withdrawal fee).
    pub params: &'a WithdrawalParams,
    /// What this member knows for itself.
    pub local: &'a LocalKnowledge,
    /// Its limits.
    pub policy: &'a Policy,
    /// What it signed for the batch's asset within the window, this batch's own record (if any)
    /// excluded.
    pub signed_in_window: Amount,
    /// For an exit disbursal: its claims and the release it follows, proven as the batch is.
    pub exit: Option<&'a crate::rebuild::ExitFacts>,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Sign this payload (the signer's own rebuild, never the chain's bytes).
    Sign(Box<Rebuilt>),
    /// Do not sign.
    Refuse(Refusal),
}

/// Decides whether to sign `input.batch` (see the module documentation for the rules and their
/// order).
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    match approve(input) {
        Ok(rebuilt) => Decision::Sign(Box::new(rebuilt)),
        Err(refusal) => Decision::Refuse(refusal),
    }
}

fn approve(input: &DecisionInput<'_>) -> Result<Rebuilt, Refusal> {
    let batch = input.batch;
    if matches!(batch.release, ferry_types::query::BatchRelease::BitcoinExit(_)) {
        // A disbursal pays every holder and confirms only after the federation went silent: no
        // local cap or denylist applies (crate::rebuild::exit).
        let none = crate::rebuild::ExitFacts::default();
        return crate::rebuild::rebuild_exit(batch, input.exit.unwrap_or(&none), input.params, input.local);
    }
    let items = batch.items.len();
    let max = usize::try_from(input.policy.max_batch_items).unwrap_or(usize::MAX);
    // Batches without items: a Bitcoin consolidation or migration of the reserves, a listing
    // change or the vault's rotation; the rebuild checks each. A listing or a rotation moves no
    // funds, so no cap applies to it.
    let itemless = !matches!(&batch.release, ferry_types::query::BatchRelease::Ethereum(_));
    if items == 0 && !itemless {
        return Err(Refusal::new(Reason::ItemCount, format!("batch {} has no items", batch.id)));
    }
    if items > max {
        return Err(Refusal::new(
            Reason::ItemCount,
            format!("batch {} has {items} items; this signer signs at most {max} per batch", batch.id),
        ));
    }
    let rebuilt = rebuild(batch, input.withdrawals, input.params, input.local)?;
    let denied: Vec<(usize, String)> = rebuilt
        .destinations
        .iter()
        .enumerate()
        .filter_map(|(position, destination)| Some((position, input.policy.denylist.denies(destination)?)))
        .collect();
    if let Some((position, entry)) = denied.first() {
        let mut refusal = Refusal::new(
            Reason::Destination,
            format!(
                "item {position} of batch {} pays `{entry}`, which is on this signer's denylist{}",
                batch.id,
                if denied.len() > 1 { format!(" ({} items in all)", denied.len()) } else { String::new() }
            ),
        );
        refusal.items =
            denied.iter().filter_map(|(position, _)| batch.items.get(*position)).map(|i| i.withdrawal).collect();
        return Err(refusal);
    }
    check_payload_cap(input.policy, &rebuilt, input.signed_in_window)?;
    Ok(rebuilt)
}

/// [`check_cap`] for what `rebuilt` pays out; a listing change or a rotation pays nothing and
/// needs no cap.
///
/// # Errors
/// As [`check_cap`].
pub fn check_payload_cap(policy: &Policy, rebuilt: &Rebuilt, signed_in_window: Amount) -> Result<(), Refusal> {
    if matches!(
        rebuilt.payload,
        crate::rebuild::Payload::Listing { .. }
            | crate::rebuild::Payload::Rotation { .. }
            | crate::rebuild::Payload::Heartbeat { .. }
    ) {
        return Ok(());
    }
    check_cap(policy, &rebuilt.asset, signed_in_window, rebuilt.total)
}

/// Checks that signing `total` more of `asset`, after `signed_in_window` already signed in the
/// window, stays within the local cap.
///
/// # Errors
/// [`Reason::Cap`] when the asset has no local cap or the sum exceeds it.
pub fn check_cap(policy: &Policy, asset: &Denom, signed_in_window: Amount, total: Amount) -> Result<(), Refusal> {
    let window = humantime_window(policy.window);
    let Some(cap) = policy.caps.get(asset) else {
        return Err(Refusal::new(
            Reason::Cap,
            format!("this signer has no local cap for `{asset}` (policy.caps), so it signs none of it"),
        ));
    };
    match signed_in_window.checked_add(total) {
        Ok(after) if after <= *cap => Ok(()),
        _ => Err(Refusal::new(
            Reason::Cap,
            format!(
                "signing {total}{asset} after {signed_in_window}{asset} signed in the last {window} would exceed the \
                 local cap of {cap}{asset}"
            ),
        )),
    }
}

/// A duration as an operator wrote it (`24h`, `90m`).
fn humantime_window(window: Duration) -> String {
    humantime_serde::re::humantime::format_duration(window).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cap: u128) -> Policy {
        Policy {
            window: Duration::from_secs(86_400),
            caps: BTreeMap::from([(Denom::sat(), Amount::new(cap))]),
            max_batch_items: 4,
            denylist: Denylist::default(),
        }
    }

    #[test]
    fn the_cap_counts_what_was_signed_in_the_window_plus_this_batch() {
        let policy = policy(1_000);
        assert_eq!(check_cap(&policy, &Denom::sat(), Amount::new(600), Amount::new(400)), Ok(()));
        let over = check_cap(&policy, &Denom::sat(), Amount::new(600), Amount::new(401));
        assert_eq!(over.as_ref().map_err(|r| r.reason), Err(Reason::Cap));
        let message = over.err().map(|r| r.message).unwrap_or_default();
        assert!(message.contains("after 600sat signed in the last 1day"), "{message}");
        let overflow = check_cap(&policy, &Denom::sat(), Amount::new(u128::MAX), Amount::new(1));
        assert_eq!(overflow.map_err(|r| r.reason), Err(Reason::Cap));
    }

    #[test]
    fn an_asset_without_a_local_cap_is_never_signed() {
        let refused = check_cap(&policy(1_000), &Denom::wei(), Amount::ZERO, Amount::new(1));
        assert!(refused.is_err_and(|r| r.reason == Reason::Cap && r.message.contains("no local cap for `wei`")));
    }

    #[test]
    fn denylist_matches_ethereum_addresses_in_any_case_and_bitcoin_by_script() -> Result<(), DenylistError> {
        let lower = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359";
        let regtest = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        let denylist = Denylist::parse([lower.to_ascii_uppercase().replacen("0X", "0x", 1).as_str(), regtest])?;
        assert_eq!(denylist.len(), 2);
        let eth = Destination::Ethereum(lower.parse().map_err(|_| DenylistError(lower.to_owned()))?);
        assert!(denylist.denies(&eth).is_some());
        // The testnet spelling of the same witness program pays the same script.
        let testnet: bitcoin::Address<bitcoin::address::NetworkUnchecked> =
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx".parse().map_err(|_| DenylistError("tb1".to_owned()))?;
        let script = testnet.assume_checked().script_pubkey();
        let btc = Destination::Bitcoin { address: "tb1…".to_owned(), script };
        assert_eq!(denylist.denies(&btc).as_deref(), Some(regtest));
        assert!(Denylist::parse(["not-an-address"]).is_err());
        assert!(Denylist::parse(["0x1234"]).is_err());
        Ok(())
    }

    #[test]
    fn every_reason_has_a_distinct_label() {
        let labels: BTreeSet<_> = Reason::ALL.iter().map(|reason| reason.label()).collect();
        assert_eq!(labels.len(), Reason::ALL.len());
    }
}
