//! The Ethereum exit claims (issue 17): what each account could take out of `FerryVault` once it
//! is frozen, kept as one record per position of the exit tree (`ferry_types::exit_tree`), so
//! any node — or an archive node at an old height — can rebuild the tree and prove a claim.
//!
//! A claim is derived from the records it follows, never edited by hand:
//! - an account's **balance** of an Ethereum asset (`wei`, `erc20/…`): nonce 0;
//! - one **withdrawal** of an Ethereum asset burned but not yet paid: nonce 0 while queued, the
//!   batch's id (the vault's nonce) once batched — the vault refuses such a claim once it released
//!   that batch, so a withdrawal is paid by the release or by the exit, never both. A refunded
//!   withdrawal, or one whose batch settled, claims nothing.
//!
//! [`refresh`] runs last in every block: it re-derives the claims of every account, withdrawal
//! and Ethereum batch the block wrote. Positions are assigned append-only, the first time a claim
//! is non-zero, and kept for good (a claim that falls to zero empties its position); module
//! accounts hold no key and get no claim. The tree itself lives in the node's memory
//! ([`ClaimTree`], updated from each committed block's writes); the node lends it to each block
//! ([`ClaimRoots`]), which computes the root of the claims it leaves, records it under
//! [`state_keys::EXIT_ROOT`] when it changed, and attaches it to the Ethereum release batches
//! it formed ([`attach_root`]): a release carries the root of the state right after its batch
//! formed, so the vault's root always covers every batch it paid.

use ferry_types::exit_tree::{Claim, ExitRoot, ExitTree, Hash};
use ferry_types::query::{BatchRelease, BatchStatus, WithdrawalId};
use ferry_types::{Address, Amount, state_keys};

use crate::state::{ChangeSet, StateDelta, StateError, StateRead, decode, scan_all};

/// Chain-internal keys: where each claim sits in the tree, and the next free position.
mod keys {
    use ferry_types::Address;
    use ferry_types::eth_address::EthAddress;
    use ferry_types::query::WithdrawalId;

    /// Prefix of the positions of balance claims: + account id + token.
    pub const BALANCE_POSITIONS: &[u8] = b"exit/eth/position/balance/";
    /// The next free position (a `u32`).
    pub const NEXT_POSITION: &[u8] = b"exit/eth/next_position";

    /// Position key of `account`'s balance of `token`.
    pub fn balance_position(account: &Address, token: &EthAddress) -> Vec<u8> {
        [BALANCE_POSITIONS, account.as_bytes(), token.as_bytes()].concat()
    }

    /// The prefix of `account`'s balance positions.
    pub fn balance_positions_of(account: &Address) -> Vec<u8> {
        [BALANCE_POSITIONS, account.as_bytes()].concat()
    }

    /// Position key of withdrawal `id`'s claim.
    pub fn withdrawal_position(id: WithdrawalId) -> Vec<u8> {
        [b"exit/eth/position/withdrawal/".as_slice(), &id.0.to_be_bytes()].concat()
    }
}

/// Whether nobody holds a key for `account` (a module account), so no exit could be signed.
pub(crate) fn keyless(account: &Address) -> bool {
    *account == Address::fee_collector() || *account == Address::unattributed_pool()
}

/// The exit tree over the committed claims, as a block sees it: the root the claims would have
/// with the block's writes applied, before the block is committed.
pub trait ClaimRoots: Sync + std::fmt::Debug {
    /// The root over the committed claims with the claim writes among `writes` applied.
    ///
    /// # Errors
    /// A corrupt claim among `writes`.
    fn root_after(&self, writes: &ChangeSet) -> Result<Hash, StateError>;
}

/// Records `root`, the root of the claims at `height`, when it differs from the one recorded:
/// the record names the first height whose claims have that root, which covers every later one
/// until the next record (a block that changes no claim writes nothing).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn record_root<R: StateRead>(state: &mut StateDelta<R>, height: u64, root: Hash) -> Result<(), StateError> {
    let recorded: Option<ExitRoot> = state.get_record(state_keys::EXIT_ROOT)?;
    if recorded.is_none_or(|recorded| recorded.root != root) {
        state.put_record(state_keys::EXIT_ROOT.to_vec(), &ExitRoot { height, root });
    }
    Ok(())
}

/// The end of a block's exit bookkeeping: re-derives the claims it touched ([`refresh`]), and
/// returns the root they leave (from the node's tree), after recording it and attaching it to
/// the Ethereum release batches formed at `height`.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn close_block<R: StateRead>(
    state: &mut StateDelta<R>,
    height: u64,
    claims: &dyn ClaimRoots,
) -> Result<Hash, StateError> {
    refresh(state)?;
    let root = claims.root_after(state.writes())?;
    record_root(state, height, root)?;
    attach_root(state, height, root)?;
    Ok(root)
}

/// Gives each Ethereum release batch formed at `height` the root of the claims the block leaves.
fn attach_root<R: StateRead>(state: &mut StateDelta<R>, height: u64, root: Hash) -> Result<(), StateError> {
    for id in written_batches(state) {
        let Some(mut batch) = state.batch(id)? else { continue };
        let BatchRelease::Ethereum(release) = &mut batch.release else { continue };
        if batch.created_height != height {
            continue;
        }
        release.batch.exit_height = height;
        release.batch.exit_root = root;
        release.payload = hex::encode(release.batch.payload());
        state.put_batch(&batch);
    }
    Ok(())
}

/// Re-derives the claims of every account, withdrawal and Ethereum batch this block wrote.
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn refresh<R: StateRead>(state: &mut StateDelta<R>) -> Result<(), StateError> {
    let mut accounts = Vec::new();
    for key in state.written_under(state_keys::ACCOUNT_PREFIX) {
        if let Ok(id) = <[u8; 20]>::try_from(&key[state_keys::ACCOUNT_PREFIX.len()..]) {
            accounts.push(Address::from_bytes(id));
        }
    }
    let mut withdrawals: Vec<WithdrawalId> = state
        .written_under(state_keys::WITHDRAWAL_PREFIX)
        .iter()
        .filter_map(|key| state_keys::withdrawal_id_of(key))
        .collect();
    for id in written_batches(state) {
        if let Some(batch) = state.batch(id)?
            && batch.asset.ethereum_token().is_some()
        {
            withdrawals.extend(batch.items.iter().map(|item| item.withdrawal));
        }
    }
    for account in accounts {
        refresh_balances(state, &account)?;
    }
    withdrawals.sort_unstable();
    withdrawals.dedup();
    for id in withdrawals {
        refresh_withdrawal(state, id)?;
    }
    Ok(())
}

/// The batches this block wrote.
fn written_batches<R: StateRead>(state: &StateDelta<R>) -> Vec<u64> {
    state.written_under(state_keys::BATCH_PREFIX).iter().filter_map(|key| state_keys::batch_id_of(key)).collect()
}

/// `account`'s balance claims: one per Ethereum asset it holds or held.
fn refresh_balances<R: StateRead>(state: &mut StateDelta<R>, account: &Address) -> Result<(), StateError> {
    if keyless(account) {
        return Ok(());
    }
    let record = state.account(account)?.unwrap_or_default();
    let mut tokens: Vec<_> = record.balances.keys().filter_map(ferry_types::Denom::ethereum_token).collect();
    let prefix = keys::balance_positions_of(account);
    for (key, _) in scan_all(state, &prefix)? {
        if let Ok(token) = <[u8; 20]>::try_from(&key[prefix.len()..]) {
            tokens.push(ferry_types::eth_address::EthAddress::from_bytes(token));
        }
    }
    tokens.sort_unstable();
    tokens.dedup();
    for token in tokens {
        let amount = record.balances.iter().find(|(denom, _)| denom.ethereum_token() == Some(token)).map(|(_, a)| *a);
        let claim = Claim { token, account: *account, nonce: 0, amount: amount.unwrap_or(Amount::ZERO) };
        set_claim(state, keys::balance_position(account, &token), &claim)?;
    }
    Ok(())
}

/// Withdrawal `id`'s claim: its amount while neither paid nor refunded.
fn refresh_withdrawal<R: StateRead>(state: &mut StateDelta<R>, id: WithdrawalId) -> Result<(), StateError> {
    let Some(withdrawal) = state.withdrawal(id)? else { return Ok(()) };
    let Some(token) = withdrawal.asset.ethereum_token() else { return Ok(()) };
    if keyless(&withdrawal.sender) {
        return Ok(());
    }
    let paid = match withdrawal.batch {
        Some(batch) => state.batch(batch)?.is_some_and(|batch| batch.status == BatchStatus::Released),
        None => false,
    };
    let owed = !paid && withdrawal.refunded_height.is_none();
    let claim = Claim {
        token,
        account: withdrawal.sender,
        nonce: withdrawal.batch.unwrap_or(0),
        amount: if owed { withdrawal.amount } else { Amount::ZERO },
    };
    set_claim(state, keys::withdrawal_position(id), &claim)
}

/// Stores `claim` at the position kept under `position_key` (assigning the next one when a
/// non-zero claim has none); a zero claim empties its position.
fn set_claim<R: StateRead>(state: &mut StateDelta<R>, position_key: Vec<u8>, claim: &Claim) -> Result<(), StateError> {
    let position: Option<u32> = state.get_record(&position_key)?;
    let index = match position {
        Some(index) => index,
        None if claim.amount.is_zero() => return Ok(()),
        None => {
            let next: u32 = state.get_record(keys::NEXT_POSITION)?.unwrap_or(0);
            state.put_record(keys::NEXT_POSITION.to_vec(), &next.saturating_add(1));
            state.put_record(position_key, &next);
            next
        }
    };
    let key = state_keys::exit_claim(index);
    let stored: Option<Claim> = state.get_record(&key)?;
    if claim.amount.is_zero() {
        if stored.is_some() {
            state.delete(key);
        }
    } else if stored.as_ref() != Some(claim) {
        state.put_record(key, claim);
    }
    Ok(())
}

/// Every claim in position order, from `from` on, at most `limit` (for queries and exports).
///
/// # Errors
/// On storage failure or a corrupt claim.
pub fn claims_from<R: StateRead>(state: &R, from: u32, limit: usize) -> Result<Vec<(u32, Claim)>, StateError> {
    // Keys are the prefix and a fixed-width big-endian position: past `from - 1` is from `from` on.
    let after = from.checked_sub(1).map(state_keys::exit_claim);
    let scan = crate::state::Scan {
        after: after.as_deref(),
        ..crate::state::Scan::ascending(state_keys::EXIT_CLAIM_PREFIX, limit)
    };
    let mut out = Vec::new();
    for (key, value) in state.scan(scan)? {
        out.push((position_of(&key)?, decode(&key, &value)?));
    }
    Ok(out)
}

/// The position a claim key names.
fn position_of(key: &[u8]) -> Result<u32, StateError> {
    key.get(state_keys::EXIT_CLAIM_PREFIX.len()..)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| StateError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: "not a claim position".to_owned(),
        })
}

/// The exit tree over the committed claims, kept in the node's memory and updated from each
/// committed block's writes (rebuilding it from scratch per block would cost seconds at a
/// million claims; an update rehashes 32 nodes per changed claim).
#[derive(Clone, Debug, Default)]
pub struct ClaimTree {
    tree: ExitTree,
}

impl ClaimRoots for ClaimTree {
    fn root_after(&self, writes: &ChangeSet) -> Result<Hash, StateError> {
        let mut changes = std::collections::BTreeMap::new();
        for (key, value) in claim_writes(writes) {
            let leaf = match value {
                Some(bytes) => decode::<Claim>(key, bytes)?.leaf(),
                None => [0; 32],
            };
            changes.insert(position_of(key)?, leaf);
        }
        Ok(self.tree.root_with(&changes))
    }
}

/// The writes among `changes` to the exit claims.
pub fn claim_writes(changes: &ChangeSet) -> impl Iterator<Item = (&Vec<u8>, &Option<Vec<u8>>)> {
    changes
        .range(state_keys::EXIT_CLAIM_PREFIX.to_vec()..)
        .take_while(|(key, _)| key.starts_with(state_keys::EXIT_CLAIM_PREFIX))
}

impl ClaimTree {
    /// The tree over every claim in `state` (a node's committed state at start-up).
    ///
    /// # Errors
    /// On storage failure or a corrupt claim.
    pub fn load<R: StateRead>(state: &R) -> Result<Self, StateError> {
        let mut leaves = Vec::new();
        for (key, value) in scan_all(state, state_keys::EXIT_CLAIM_PREFIX)? {
            let claim: Claim = decode(&key, &value)?;
            leaves.push((position_of(&key)?, claim.leaf()));
        }
        Ok(ClaimTree { tree: ExitTree::from_leaves(leaves) })
    }

    /// Applies a committed block's writes to the claims.
    ///
    /// # Errors
    /// A corrupt claim in `changes`.
    pub fn apply(&mut self, changes: &ChangeSet) -> Result<(), StateError> {
        for (key, value) in claim_writes(changes) {
            let leaf = match value {
                Some(bytes) => decode::<Claim>(key, bytes)?.leaf(),
                None => [0; 32],
            };
            self.tree.set(position_of(key)?, leaf);
        }
        Ok(())
    }

    /// The root.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The number of non-empty positions.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether no position holds a claim.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}
