//! Rebuilding a batch's payload from chain state and local knowledge, byte for byte, before
//! anything is signed.
//!
//! The chain shows a batch with its payload already built. A signer never signs those bytes: it
//! builds its own from the withdrawal records the batch's items name (each burn's asset, amount
//! and destination) and from what it knows for itself ([`LocalKnowledge`]: the federation epoch
//! of its keys, the Ethereum chain id and vault it expects, the peg its manifest's keys make) —
//! then refuses the batch unless the chain's payload is exactly that. Comparisons run field by
//! field first, so a refusal names what differs (a destination, an amount, the vault, the change
//! address, the inputs) rather than just "bytes differ"; a final byte comparison catches anything
//! else.
//!
//! - Ethereum: `EthBatch { chain_id, vault, epoch, nonce = batch id, exit_height, exit_root,
//!   items }` with each item's token from the asset (`wei` → the zero address, `erc20/0x…` →
//!   that token), recipient from the burn's destination and amount = the burn; the exit root is
//!   the chain's, and must be of the height the batch formed at; [`EthBatch::payload`] must equal
//!   the chain's hex.
//! - Bitcoin: the batch's fee rate must lie within the chain's bounds; the inputs and the change
//!   amount come from the batch's plan (they must hold exactly the burns plus the change), the
//!   change goes to the local peg; each output pays the burn's destination (parsed for the local
//!   network, never the peg itself) its amount minus its share of `rate ×` the release's size
//!   with the longest signatures ([`price_release`], the chain's own pricing), and no share may
//!   exceed the burn's `max_fee`; the release must be standard; the unsigned transaction built
//!   from that must equal the chain's, and the sighashes signed are the ones computed here.
//!   A replacement (version `k + 1`) is priced from version `k` instead ([`price_replacement`]):
//!   the same inputs, change and destination scripts, no output paid more, each share within its
//!   budget, a fee up by at least the incremental relay fee; the guard then checks that version
//!   `k` is the one this signer signed, if it signed it.
//!
//! - Listing change (no items, a total of zero): `EthListing { chain_id, vault, epoch, nonce =
//!   batch id, token, listed }` with the token from the batch's asset and `listed` from whether
//!   the chain adopts limits for it (which must be for that token); signed only when this member
//!   is among its proposers on the chain — a member's BLS share backs only a change its own
//!   member proposed.
//!
//! - Rotation (no items, a total of zero): `EthRotation { chain_id, vault, epoch, new_epoch,
//!   new_key }` with the chain id and vault local, the epoch this member's, and the next epoch and
//!   key as this signer rebuilt them from the completed key generation's transcript
//!   ([`NextFederation`]).
//! - Vault heartbeat (no items, a total of zero, asset `wei`): `EthHeartbeat { chain_id, vault,
//!   epoch, nonce = batch id, height, balances_root }` with the chain id, vault and epoch local;
//!   the height must be the one the batch formed at, and the root is the chain's record of the
//!   exit tree over the claims at that height — a consensus fact read with a proof, as the
//!   withdrawal records are.
//! - Migration (a Bitcoin release without items that names the next epoch): the same inputs
//!   spent into one output at the next federation's peg as this signer rebuilt it, at the
//!   batch's rate on its size ([`plan_migration`]); a replacement as for a consolidation.
//! - Sweep (a Bitcoin release without items that names a retired epoch): inputs at that epoch's
//!   peg as this member rebuilt it when it signed for it ([`LocalKnowledge::retired`]), spent
//!   into one output at the current peg, priced as a migration.
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::{ScriptBuf, Transaction};
use ferry_types::genesis::{EthereumBridge, WithdrawalParams};
use ferry_types::msg::{erc20_token, parent_chain_of};
use ferry_types::peg::Peg;
use ferry_types::query::{
    Batch, BatchRelease, BitcoinRelease, EthereumHeartbeat, EthereumListing, EthereumRelease, EthereumRotation,
    Withdrawal, WithdrawalId,
};
use ferry_types::release::bitcoin::{
    BtcReleaseError, ReleasePlan, ReleaseRequest, parse_destination, plan_consolidation, plan_migration, price_release,
    price_replacement, replace_consolidation, replace_migration, sighashes, unsigned_transaction,
};
use ferry_types::release::eth::{EthAddress, EthBatch, EthHeartbeat, EthListing, EthReleaseItem, EthRotation};
use ferry_types::release::fee::FeeRate;
use ferry_types::{Amount, Denom, ParentChain};
use sha2::{Digest, Sha256};

use crate::refusal::{Reason, Refusal};

/// What a member knows for itself and never takes from the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalKnowledge {
    /// This member's sidechain account.
    pub member: ferry_types::Address,
    /// The federation epoch of this member's keys (its manifest's).
    pub epoch: u64,
    /// The Ethereum chain id and vault this member pays from (absent: it signs no Ethereum batch).
    pub ethereum: Option<EthereumBridge>,
    /// The peg this member's manifest's keys make, on the locally configured network (absent: it
    /// signs no Bitcoin batch).
    pub bitcoin: Option<Peg>,
    /// The federation a completed key generation produced, as this member's signer rebuilt it from
    /// the key generation's transcript, while the hand-over to it runs (absent otherwise: it signs
    /// no rotation or migration).
    pub next: Option<NextFederation>,
    /// The pegs of retired epochs this member signed for, as it rebuilt them (manifest or
    /// transcript), by epoch: a sweep of one spends it into `bitcoin` (read when a sweep waits).
    pub retired: BTreeMap<u64, Peg>,
}

/// The next federation as a signer rebuilds it from a completed key generation: the group key
/// from the qualified dealers' commitments, the peg from the participants' registered Bitcoin
/// keys and the threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextFederation {
    /// Its epoch.
    pub epoch: u64,
    /// Its group key, EIP-2537 G1, hex (what the vault's rotation installs).
    pub key: String,
    /// Its members, in share order (the key generation's participants).
    pub members: Vec<ferry_types::Address>,
    /// Its peg on the locally configured network (absent without one).
    pub bitcoin: Option<Peg>,
}

/// Where one item pays, as rebuilt (checked against the denylist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// An Ethereum recipient.
    Ethereum(EthAddress),
    /// A Bitcoin address and the output script it pays.
    Bitcoin {
        /// The address as the burn named it.
        address: String,
        /// The script paid.
        script: ScriptBuf,
    },
}

/// What this member signs for a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// An Ethereum batch: the BLS share is over `bytes` ([`EthBatch::payload`]).
    Ethereum {
        /// The batch as rebuilt.
        batch: EthBatch,
        /// Its payload bytes.
        bytes: Vec<u8>,
    },
    /// A listing change: the BLS share is over `bytes` ([`EthListing::payload`]).
    Listing {
        /// The change as rebuilt.
        listing: EthListing,
        /// Its payload bytes.
        bytes: Vec<u8>,
    },
    /// The vault's hand-over to the next federation key: the BLS share is over `bytes`
    /// ([`EthRotation::payload`]).
    Rotation {
        /// The rotation as rebuilt.
        rotation: EthRotation,
        /// Its payload bytes.
        bytes: Vec<u8>,
    },
    /// The vault heartbeat (the exit tree's root): the BLS share is over `bytes`
    /// ([`EthHeartbeat::payload`]).
    Heartbeat {
        /// The heartbeat as rebuilt.
        heartbeat: EthHeartbeat,
        /// Its payload bytes.
        bytes: Vec<u8>,
    },
    /// A Bitcoin release: one signature per sighash, in input order.
    Bitcoin {
        /// The rebuilt transaction's txid.
        txid: String,
        /// BIP 143 sighashes of its inputs, in input order.
        sighashes: Vec<[u8; 32]>,
    },
}

/// A batch's payload as this member rebuilt it, with what its policy checks look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// The batch id (the Ethereum nonce, and the nonce of the double-sign guard).
    pub batch: u64,
    /// The release version (0, or `k` for the `k`-th replacement of a Bitcoin release): the
    /// guard's third key part.
    pub version: u32,
    /// For a replacement: the payload hash of the version it replaces, as the chain shows it
    /// (the guard checks it is what this signer signed, if it signed that version).
    pub replaces: Option<[u8; 32]>,
    /// The federation epoch (the other half of the double-sign guard's key).
    pub epoch: u64,
    /// The asset released.
    pub asset: Denom,
    /// Its parent chain.
    pub chain: ParentChain,
    /// The amount burned by its withdrawals (what the local cap counts).
    pub total: Amount,
    /// Each item's destination, in item order.
    pub destinations: Vec<Destination>,
    /// What is signed.
    pub payload: Payload,
}

impl Rebuilt {
    /// SHA-256 of exactly what is signed: the Ethereum payload bytes, or a Bitcoin release's
    /// sighashes concatenated in input order (they commit to the whole transaction and the
    /// amounts spent). The double-sign guard compares these.
    pub fn payload_hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        match &self.payload {
            Payload::Ethereum { bytes, .. }
            | Payload::Listing { bytes, .. }
            | Payload::Rotation { bytes, .. }
            | Payload::Heartbeat { bytes, .. } => {
                hasher.update(bytes);
            }
            Payload::Bitcoin { sighashes, .. } => sighashes.iter().for_each(|sighash| hasher.update(sighash)),
        }
        hasher.finalize().into()
    }
}

/// [`Rebuilt::payload_hash`] of a Bitcoin version the chain shows (hex sighashes; one that does
/// not decode hashes as its text, which matches nothing this signer signed).
pub fn sighash_payload_hash(sighashes: &[String]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for sighash in sighashes {
        match hex::decode(sighash) {
            Ok(bytes) => hasher.update(bytes),
            Err(_) => hasher.update(sighash.as_bytes()),
        }
    }
    hasher.finalize().into()
}

impl Rebuilt {
    /// How many items it pays.
    pub fn items(&self) -> usize {
        self.destinations.len()
    }
}

fn refuse<T>(reason: Reason, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(reason, message))
}

/// Rebuilds `batch`'s payload from the `withdrawals` records, the chain's withdrawal `params`
/// and `local` knowledge, and checks that the chain's payload is exactly it (see the module
/// documentation).
///
/// # Errors
/// A [`Refusal`] naming the first difference.
pub fn rebuild(
    batch: &Batch,
    withdrawals: &BTreeMap<WithdrawalId, Withdrawal>,
    params: &WithdrawalParams,
    local: &LocalKnowledge,
) -> Result<Rebuilt, Refusal> {
    let burns = burns(batch, withdrawals)?;
    let total = burns.iter().try_fold(Amount::ZERO, |sum, burn| sum.checked_add(burn.amount)).or_else(|_| {
        refuse(Reason::AmountMismatch, format!("the burns of batch {} add up beyond 2^128 - 1", batch.id))
    })?;
    if total != batch.total {
        return refuse(
            Reason::AmountMismatch,
            format!("batch {} states a total of {}, its withdrawals burned {total}", batch.id, batch.total),
        );
    }
    let chain = parent_chain_of(&batch.asset);
    let (payload, destinations) = match (&batch.release, chain) {
        (BatchRelease::Ethereum(release), ParentChain::Ethereum) => ethereum(batch, release, &burns, local)?,
        (BatchRelease::Bitcoin(release), ParentChain::Bitcoin) => bitcoin(batch, release, &burns, params, local)?,
        (BatchRelease::EthereumListing(change), ParentChain::Ethereum) => (listing(batch, change, local)?, Vec::new()),
        (BatchRelease::EthereumRotation(change), ParentChain::Ethereum) => {
            (rotation(batch, change, local)?, Vec::new())
        }
        (BatchRelease::EthereumHeartbeat(change), ParentChain::Ethereum) => {
            (heartbeat(batch, change, local)?, Vec::new())
        }
        (release, chain) => {
            let kind = match release {
                BatchRelease::Ethereum(_) => "an Ethereum",
                BatchRelease::EthereumListing(_) => "a listing",
                BatchRelease::EthereumRotation(_) => "a rotation",
                BatchRelease::EthereumHeartbeat(_) => "a vault heartbeat",
                BatchRelease::Bitcoin(_) => "a Bitcoin",
                BatchRelease::BitcoinExit(_) => "an exit disbursal",
            };
            return refuse(
                Reason::PayloadMismatch,
                format!("batch {} releases `{}`, paid on {chain}, but carries {kind} release", batch.id, batch.asset),
            );
        }
    };
    let (version, replaces) = match &batch.release {
        BatchRelease::Bitcoin(release) => {
            (release.version, release.superseded.last().map(|previous| sighash_payload_hash(&previous.sighashes)))
        }
        _ => (0, None),
    };
    Ok(Rebuilt {
        batch: batch.id,
        version,
        replaces,
        epoch: local.epoch,
        asset: batch.asset.clone(),
        chain,
        total,
        destinations,
        payload,
    })
}

/// The burn behind each item, in item order, after checking that the item is that burn: the
/// record exists, belongs to this batch, burned this asset and this amount, named this
/// destination, and no withdrawal is listed twice.
fn burns<'a>(
    batch: &Batch,
    withdrawals: &'a BTreeMap<WithdrawalId, Withdrawal>,
) -> Result<Vec<&'a Withdrawal>, Refusal> {
    let mut seen = BTreeSet::new();
    let mut burns = Vec::with_capacity(batch.items.len());
    for (position, item) in batch.items.iter().enumerate() {
        let id = item.withdrawal;
        let at = format!("item {position} ({id}) of batch {}", batch.id);
        if !seen.insert(id) {
            return refuse(Reason::UnknownWithdrawal, format!("{at}: {id} is listed twice"));
        }
        let Some(burn) = withdrawals.get(&id) else {
            return refuse(Reason::UnknownWithdrawal, format!("{at}: the chain has no record of {id}"));
        };
        if burn.id != id {
            return refuse(Reason::UnknownWithdrawal, format!("{at}: the record returned is {}", burn.id));
        }
        if burn.batch != Some(batch.id) {
            let recorded = burn.batch.map_or_else(|| "no batch".to_owned(), |other| format!("batch {other}"));
            return refuse(Reason::UnknownWithdrawal, format!("{at}: {id} is recorded in {recorded}"));
        }
        if burn.asset != batch.asset {
            return refuse(
                Reason::AmountMismatch,
                format!("{at}: {id} burned `{}`, the batch releases `{}`", burn.asset, batch.asset),
            );
        }
        if item.amount != burn.amount {
            return refuse(
                Reason::AmountMismatch,
                format!("{at}: the item states {}, {id} burned {}", item.amount, burn.amount),
            );
        }
        if item.destination != burn.destination {
            return refuse(
                Reason::Destination,
                format!("{at}: the item pays `{}`, {id} named `{}`", item.destination, burn.destination),
            );
        }
        burns.push(burn);
    }
    Ok(burns)
}

/// Checks an item's stated `paid` against what this signer computes.
fn check_paid(batch: &Batch, position: usize, expected: Amount) -> Result<(), Refusal> {
    match batch.items.get(position) {
        Some(item) if item.paid == expected => Ok(()),
        Some(item) => refuse(
            Reason::AmountMismatch,
            format!(
                "item {position} ({}) of batch {} states {} paid, this signer computes {expected}",
                item.withdrawal, batch.id, item.paid
            ),
        ),
        None => refuse(Reason::ItemCount, format!("batch {} has no item {position}", batch.id)),
    }
}

fn ethereum(
    batch: &Batch,
    release: &EthereumRelease,
    burns: &[&Withdrawal],
    local: &LocalKnowledge,
) -> Result<(Payload, Vec<Destination>), Refusal> {
    let bridge = local_vault(local, batch.id, "is an Ethereum release")?;
    let token = erc20_token(&batch.asset).unwrap_or(EthAddress::ZERO);
    let mut items = Vec::with_capacity(burns.len());
    for (position, burn) in burns.iter().enumerate() {
        let recipient = match burn.destination.parse::<EthAddress>() {
            Ok(recipient) if !recipient.is_zero() => recipient,
            Ok(_) => return refuse(Reason::Destination, format!("{} pays the zero address", burn.id)),
            Err(error) => return refuse(Reason::Destination, format!("{}: {error}", burn.id)),
        };
        check_paid(batch, position, burn.amount)?;
        items.push(EthReleaseItem { token, recipient, amount: burn.amount });
    }
    // The exit root is the chain's record of the claims where the batch formed (a consensus fact,
    // read with a proof like the withdrawals): it must be of that height, where the batch's
    // withdrawals name its nonce, or a release could leave them claimable after it paid them.
    if release.batch.exit_height != batch.created_height {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "batch {} formed at height {} carries the exit root of height {}",
                batch.id, batch.created_height, release.batch.exit_height
            ),
        );
    }
    let rebuilt = EthBatch {
        chain_id: bridge.chain_id,
        vault: bridge.vault,
        epoch: local.epoch,
        nonce: batch.id,
        exit_height: release.batch.exit_height,
        exit_root: release.batch.exit_root,
        items,
    };
    compare_eth(batch.id, &release.batch, &rebuilt)?;
    let bytes = rebuilt.payload();
    if hex::decode(&release.payload).ok().as_deref() != Some(bytes.as_slice()) {
        return refuse(
            Reason::PayloadMismatch,
            format!("batch {}: the chain's payload bytes are not the payload this signer rebuilds", batch.id),
        );
    }
    let destinations = rebuilt.items.iter().map(|item| Destination::Ethereum(item.recipient)).collect();
    Ok((Payload::Ethereum { batch: rebuilt, bytes }, destinations))
}

/// The vault this signer knows for itself, for batch `id` (`what` it does, for the refusal).
fn local_vault<'a>(local: &'a LocalKnowledge, id: u64, what: &str) -> Result<&'a EthereumBridge, Refusal> {
    local.ethereum.as_ref().ok_or_else(|| {
        Refusal::new(
            Reason::Unsupported,
            format!("batch {id} {what} and this signer has no [ethereum] chain id and vault"),
        )
    })
}

/// Refuses (`reason`) unless the chain's vault action of batch `id` is the one rebuilt.
fn same_action<T: PartialEq + std::fmt::Debug>(
    id: u64,
    kind: &str,
    chain: &T,
    rebuilt: &T,
    reason: Reason,
    from: &str,
) -> Result<(), Refusal> {
    if chain == rebuilt {
        return Ok(());
    }
    refuse(
        reason,
        format!("{kind} batch {id}: the chain's {kind} is {chain:?}, this signer rebuilds {rebuilt:?}{from}"),
    )
}

/// Rebuilds a listing change (see the module documentation).
fn listing(batch: &Batch, change: &EthereumListing, local: &LocalKnowledge) -> Result<Payload, Refusal> {
    let id = batch.id;
    let bridge = local_vault(local, id, "is a listing change")?;
    if !batch.items.is_empty() || batch.total != Amount::ZERO {
        return refuse(Reason::ItemCount, format!("listing batch {id} carries withdrawals"));
    }
    let Some(token) = erc20_token(&batch.asset) else {
        return refuse(Reason::PayloadMismatch, format!("listing batch {id} is for `{}`, not a token", batch.asset));
    };
    if let Some(limit) = &change.limit
        && limit.denom != batch.asset
    {
        return refuse(
            Reason::PayloadMismatch,
            format!("listing batch {id} adopts limits for `{}`, not for `{}`", limit.denom, batch.asset),
        );
    }
    if !change.proposers.contains_key(&local.member) {
        return refuse(
            Reason::Listing,
            format!(
                "listing batch {id} ({} {token}) was not proposed by this member ({})",
                if change.limit.is_some() { "list" } else { "unlist" },
                local.member
            ),
        );
    }
    let rebuilt = EthListing {
        chain_id: bridge.chain_id,
        vault: bridge.vault,
        epoch: local.epoch,
        nonce: id,
        token,
        listed: change.limit.is_some(),
    };
    same_action(id, "listing", &change.listing, &rebuilt, Reason::PayloadMismatch, "")?;
    let bytes = rebuilt.payload();
    if hex::decode(&change.payload).ok().as_deref() != Some(bytes.as_slice()) {
        return refuse(
            Reason::PayloadMismatch,
            format!("listing batch {id}: the chain's payload bytes are not the payload this signer rebuilds"),
        );
    }
    Ok(Payload::Listing { listing: rebuilt, bytes })
}

/// Rebuilds a vault heartbeat (see the module documentation).
fn heartbeat(batch: &Batch, change: &EthereumHeartbeat, local: &LocalKnowledge) -> Result<Payload, Refusal> {
    let id = batch.id;
    let bridge = local_vault(local, id, "is a vault heartbeat")?;
    if !batch.items.is_empty() || batch.total != Amount::ZERO || batch.asset != Denom::wei() {
        return refuse(Reason::ItemCount, format!("vault heartbeat batch {id} carries withdrawals or an asset"));
    }
    let covered = change.heartbeat.height;
    if covered != batch.created_height {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "vault heartbeat batch {id} formed at height {} posts the root of height {covered}, not of its own",
                batch.created_height
            ),
        );
    }
    let rebuilt = EthHeartbeat {
        chain_id: bridge.chain_id,
        vault: bridge.vault,
        epoch: local.epoch,
        nonce: id,
        height: covered,
        balances_root: change.heartbeat.balances_root,
    };
    same_action(id, "heartbeat", &change.heartbeat, &rebuilt, Reason::PayloadMismatch, "")?;
    let bytes = rebuilt.payload();
    Ok(Payload::Heartbeat { heartbeat: rebuilt, bytes })
}

/// Rebuilds the vault's rotation (see the module documentation).
fn rotation(batch: &Batch, change: &EthereumRotation, local: &LocalKnowledge) -> Result<Payload, Refusal> {
    let id = batch.id;
    let bridge = local_vault(local, id, "rotates the vault")?;
    if !batch.items.is_empty() || batch.total != Amount::ZERO {
        return refuse(Reason::ItemCount, format!("rotation batch {id} carries withdrawals"));
    }
    let Some(next) = &local.next else {
        return refuse(
            Reason::HandOver,
            format!("batch {id} rotates the vault, but this signer saw no key generation complete a next federation"),
        );
    };
    let rebuilt = EthRotation {
        chain_id: bridge.chain_id,
        vault: bridge.vault,
        epoch: local.epoch,
        new_epoch: next.epoch,
        new_key: next.key.clone(),
    };
    same_action(id, "rotation", &change.rotation, &rebuilt, Reason::HandOver, " from the key generation's transcript")?;
    let bytes = rebuilt
        .payload()
        .ok_or_else(|| Refusal::new(Reason::HandOver, format!("rotation batch {id}: the next key is not hex")))?;
    if hex::decode(&change.payload).ok().as_deref() != Some(bytes.as_slice()) {
        return refuse(
            Reason::PayloadMismatch,
            format!("rotation batch {id}: the chain's payload bytes are not the payload this signer rebuilds"),
        );
    }
    Ok(Payload::Rotation { rotation: rebuilt, bytes })
}

/// Names the first field where the chain's batch differs from the rebuilt one.
fn compare_eth(id: u64, chain: &EthBatch, rebuilt: &EthBatch) -> Result<(), Refusal> {
    let mismatch = |field: &str, chain: String, local: String| {
        refuse(
            Reason::PayloadMismatch,
            format!("batch {id}: the chain's payload has {field} {chain}, this signer expects {local}"),
        )
    };
    if chain.chain_id != rebuilt.chain_id {
        return mismatch("chain id", chain.chain_id.to_string(), rebuilt.chain_id.to_string());
    }
    if chain.vault != rebuilt.vault {
        return mismatch("vault", chain.vault.to_string(), rebuilt.vault.to_string());
    }
    if chain.epoch != rebuilt.epoch {
        return mismatch("epoch", chain.epoch.to_string(), rebuilt.epoch.to_string());
    }
    if chain.nonce != rebuilt.nonce {
        return mismatch("nonce", chain.nonce.to_string(), rebuilt.nonce.to_string());
    }
    if chain.items.len() != rebuilt.items.len() {
        return mismatch("item count", chain.items.len().to_string(), rebuilt.items.len().to_string());
    }
    for (position, (theirs, ours)) in chain.items.iter().zip(&rebuilt.items).enumerate() {
        if theirs.token != ours.token {
            return mismatch(&format!("item {position} token"), theirs.token.to_string(), ours.token.to_string());
        }
        if theirs.recipient != ours.recipient {
            return refuse(
                Reason::Destination,
                format!(
                    "batch {id}: the chain's payload pays item {position} to {}, the burn named {}",
                    theirs.recipient, ours.recipient
                ),
            );
        }
        if theirs.amount != ours.amount {
            return refuse(
                Reason::AmountMismatch,
                format!(
                    "batch {id}: the chain's payload pays item {position} {}, the burn was {}",
                    theirs.amount, ours.amount
                ),
            );
        }
    }
    Ok(())
}

fn bitcoin(
    batch: &Batch,
    release: &BitcoinRelease,
    burns: &[&Withdrawal],
    params: &WithdrawalParams,
    local: &LocalKnowledge,
) -> Result<(Payload, Vec<Destination>), Refusal> {
    let id = batch.id;
    let Some(current) = &local.bitcoin else {
        return refuse(
            Reason::Unsupported,
            format!("batch {id} is a Bitcoin release and this signer has no [bitcoin] network configured"),
        );
    };
    // A sweep spends a retired peg this member signed for into the current one.
    let peg = match release.sweep {
        None => current,
        Some(epoch) => local.retired.get(&epoch).ok_or_else(|| {
            Refusal::new(
                Reason::HandOver,
                format!(
                    "batch {id} sweeps the peg of epoch {epoch}, which this signer did not rebuild as one it signed for"
                ),
            )
        })?,
    };
    let bounds = params.bitcoin_fee_bounds();
    let rate = release.fee_rate;
    if bounds.clamp(rate) != rate {
        return refuse(
            Reason::Fee,
            format!("batch {id}: priced at {rate}, outside the chain's bounds of {} to {}", bounds.min, bounds.max),
        );
    }
    let peg_script = peg.script_pubkey();
    let mut requests = Vec::with_capacity(burns.len());
    let mut destinations = Vec::with_capacity(burns.len());
    for burn in burns {
        let script = parse_destination(&burn.destination, peg.network())
            .or_else(|error| refuse(Reason::Destination, format!("{}: {error}", burn.id)))?;
        if script == peg_script {
            return refuse(Reason::Destination, format!("{} pays the federation's own peg address", burn.id));
        }
        destinations.push(Destination::Bitcoin { address: burn.destination.clone(), script });
        requests.push(ReleaseRequest::from(*burn));
    }
    let plan = &release.plan;
    let previous = match release.superseded.last() {
        None if release.version == 0 => None,
        Some(previous) if previous.version.checked_add(1) == Some(release.version) => Some(previous),
        _ => {
            return refuse(
                Reason::PayloadMismatch,
                format!("batch {id}: version {} does not follow the versions it claims to replace", release.version),
            );
        }
    };
    let dust = params.bitcoin_dust_limit;
    let priced = match previous {
        // A migration: no withdrawal, one output to the next federation's peg; a sweep: to the
        // current one.
        _ if release.moves_reserves() => {
            let to = match release.sweep {
                Some(_) if burns.is_empty() => current,
                Some(_) => return refuse(Reason::ItemCount, format!("sweep batch {id} carries withdrawals")),
                None => migration_target(batch, release, burns, local)?,
            };
            let previous = previous.map(|previous| &previous.plan);
            match previous {
                None => plan_migration(plan.inputs(), rate, peg, to, dust),
                Some(previous) => replace_migration(previous, rate, peg, to, dust),
            }
        }
        // A consolidation: no withdrawal, only the change back to the peg, at the rate on its size.
        _ if requests.is_empty() => consolidation(id, plan, previous.map(|previous| &previous.plan), rate, peg, dust),
        None => price_release(plan.inputs(), plan.change(), &requests, rate, peg, dust).map(|priced| priced.plan),
        Some(previous) => price_replacement(&previous.plan, &requests, rate, peg, dust).map(|priced| priced.plan),
    };
    let priced = priced.or_else(|error| {
        let reason = match &error {
            BtcReleaseError::FeeOverBudget { .. } | BtcReleaseError::ReplacementTooCheap { .. } => Reason::Fee,
            BtcReleaseError::NonStandard(_) => Reason::NonStandard,
            BtcReleaseError::ReplacementDestination { .. } => Reason::Destination,
            _ => Reason::AmountMismatch,
        };
        refuse(reason, format!("batch {id}: {error}"))
    })?;
    compare_outputs(id, plan, &priced)?;
    // A migration's or sweep's one output is no withdrawal's: it pays the peg rebuilt above.
    if !release.moves_reserves() {
        for (position, output) in priced.outputs().iter().enumerate() {
            check_paid(batch, position, output.amount)?;
        }
    }
    let tx = unsigned_transaction(&priced, peg);
    let chain_tx = chain_transaction(id, release)?;
    compare_transactions(id, &chain_tx, &tx, peg)?;
    let txid = tx.compute_txid().to_string();
    if release.txid != txid {
        return refuse(
            Reason::PayloadMismatch,
            format!("batch {id}: the chain states txid {}, the rebuilt transaction is {txid}", release.txid),
        );
    }
    let hashes = sighashes(&tx, &priced, peg)
        .or_else(|error| refuse(Reason::PayloadMismatch, format!("batch {id}: {error}")))?;
    let ours: Vec<String> = hashes.iter().map(hex::encode).collect();
    if release.sighashes != ours {
        return refuse(
            Reason::PayloadMismatch,
            format!("batch {id}: the chain's sighashes are not the rebuilt transaction's"),
        );
    }
    Ok((Payload::Bitcoin { txid, sighashes: hashes }, destinations))
}

/// The peg a migration may pay: the next federation's, as this signer rebuilt it, for the epoch
/// the migration names — and only for a migration without withdrawals.
fn migration_target<'a>(
    batch: &Batch,
    release: &BitcoinRelease,
    burns: &[&Withdrawal],
    local: &'a LocalKnowledge,
) -> Result<&'a Peg, Refusal> {
    let id = batch.id;
    if !burns.is_empty() {
        return refuse(Reason::ItemCount, format!("migration batch {id} carries withdrawals"));
    }
    let next = local.next.as_ref().filter(|next| Some(next.epoch) == release.migration);
    let Some(next) = next else {
        return refuse(
            Reason::HandOver,
            format!(
                "batch {id} migrates the reserves to epoch {}, for which this signer saw no key generation complete",
                release.migration.unwrap_or_default()
            ),
        );
    };
    next.bitcoin.as_ref().ok_or_else(|| {
        Refusal::new(Reason::HandOver, format!("batch {id} migrates the reserves, but the next federation has no peg"))
    })
}

/// Rebuilds a consolidation (see `ferry_app::consolidation`): it pays nothing but its change
/// back to the peg, at `rate` on its size; a replacement spends the inputs of the version it
/// replaces and pays at least the incremental relay fee more.
fn consolidation(
    id: u64,
    plan: &ReleasePlan,
    previous: Option<&ReleasePlan>,
    rate: FeeRate,
    peg: &Peg,
    dust: Amount,
) -> Result<ReleasePlan, BtcReleaseError> {
    if !plan.outputs().is_empty() {
        return Err(BtcReleaseError::Unbalanced(format!("batch {id} pays no withdrawal but its plan pays outputs")));
    }
    match previous {
        None => plan_consolidation(plan.inputs(), rate, peg, dust),
        Some(previous) => replace_consolidation(previous, rate, peg, dust),
    }
}

/// Names the first difference between the chain's plan and the one this signer priced.
fn compare_outputs(id: u64, chain: &ReleasePlan, rebuilt: &ReleasePlan) -> Result<(), Refusal> {
    if chain.outputs().len() != rebuilt.outputs().len() {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "batch {id}: the plan pays {} outputs for {} withdrawals",
                chain.outputs().len(),
                rebuilt.outputs().len()
            ),
        );
    }
    for (position, (theirs, ours)) in chain.outputs().iter().zip(rebuilt.outputs()).enumerate() {
        if theirs.script_pubkey != ours.script_pubkey {
            return refuse(
                Reason::Destination,
                format!(
                    "batch {id}: the plan's output {position} pays `{}`, the burn named `{}`",
                    theirs.destination, ours.destination
                ),
            );
        }
        if theirs.amount != ours.amount {
            return refuse(
                Reason::AmountMismatch,
                format!(
                    "batch {id}: the plan's output {position} pays {}, this signer computes {}",
                    theirs.amount, ours.amount
                ),
            );
        }
    }
    if chain.fee() != rebuilt.fee() {
        return refuse(
            Reason::AmountMismatch,
            format!(
                "batch {id}: the plan gives miners {} sat, this signer computes {} sat",
                chain.fee(),
                rebuilt.fee()
            ),
        );
    }
    Ok(())
}

/// The chain's unsigned transaction, decoded.
fn chain_transaction(id: u64, release: &BitcoinRelease) -> Result<Transaction, Refusal> {
    let bytes = hex::decode(&release.unsigned_tx)
        .or_else(|_| refuse(Reason::PayloadMismatch, format!("batch {id}: unsigned_tx is not hex")))?;
    bitcoin::consensus::deserialize(&bytes)
        .or_else(|error| refuse(Reason::PayloadMismatch, format!("batch {id}: unsigned_tx does not decode: {error}")))
}

/// Names the first difference between the chain's transaction and the rebuilt one.
fn compare_transactions(id: u64, chain: &Transaction, rebuilt: &Transaction, peg: &Peg) -> Result<(), Refusal> {
    let outpoints = |tx: &Transaction| tx.input.iter().map(|input| input.previous_output).collect::<Vec<_>>();
    let (theirs, ours) = (outpoints(chain), outpoints(rebuilt));
    if theirs != ours {
        let list = |points: &[bitcoin::OutPoint]| points.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        return refuse(
            Reason::Inputs,
            format!("batch {id}: the chain's transaction spends [{}], its plan [{}]", list(&theirs), list(&ours)),
        );
    }
    if chain.output.len() != rebuilt.output.len() {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "batch {id}: the chain's transaction has {} outputs, the rebuilt one {}",
                chain.output.len(),
                rebuilt.output.len()
            ),
        );
    }
    let peg_script = peg.script_pubkey();
    for (position, (theirs, ours)) in chain.output.iter().zip(&rebuilt.output).enumerate() {
        if theirs.script_pubkey == ours.script_pubkey {
            if theirs.value != ours.value {
                return refuse(
                    Reason::AmountMismatch,
                    format!("batch {id}: output {position} pays {}, the rebuilt one {}", theirs.value, ours.value),
                );
            }
            continue;
        }
        let shown = bitcoin::Address::from_script(&theirs.script_pubkey, peg.network().network())
            .map_or_else(|_| hex::encode(theirs.script_pubkey.as_bytes()), |address| address.to_string());
        return if ours.script_pubkey == peg_script {
            refuse(
                Reason::ChangeAddress,
                format!("batch {id}: the change output pays `{shown}`, not this federation's peg {}", peg.address()),
            )
        } else {
            refuse(
                Reason::Destination,
                format!("batch {id}: output {position} of the chain's transaction pays `{shown}`"),
            )
        };
    }
    if bitcoin::consensus::serialize(chain) != bitcoin::consensus::serialize(rebuilt) {
        return refuse(
            Reason::PayloadMismatch,
            format!(
                "batch {id}: the chain's transaction differs from the rebuilt one in version, lock time or sequences"
            ),
        );
    }
    Ok(())
}

mod exit;
pub use exit::{ExitFacts, rebuild_exit};

#[cfg(test)]
mod tests;
