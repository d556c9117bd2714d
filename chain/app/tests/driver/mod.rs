//! An in-process driver for `ferry-app` ("mock consensus"): it plays the part of CometBFT and the
//! node's store, so app tests run blocks, CheckTx and queries without a network or a database.
//!
//! Committed state is a `BTreeMap` per height (height 0 is genesis), so queries can be answered
//! at any committed height. The mempool is a [`StateDelta`] over the latest committed state,
//! reset after every block, exactly as the node resets its mempool overlay at Commit.

// Each test crate uses a different subset of the driver.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;

use ferry_app::bridge::ReserveUtxo;
use ferry_app::execute::TxContext;
use ferry_app::exit_claims::ClaimTree;
use ferry_app::query::{QueryAnswer, ReservesView, query};
use ferry_app::state::{AccountRecord, keys};
use ferry_app::{
    BlockInput, BlockOutcome, ChangeSet, Entries, Event, Scan, StateDelta, StateError, StateRead, TxOutcome,
};
use ferry_types::deposit_record::DepositRecord;
use ferry_types::genesis::Federation;
use ferry_types::msg::{MsgAttestDeposit, MsgSend};
use ferry_types::query::{
    ACCOUNT_PATH, AccountView, BALANCES_PATH, BATCH_PATH, BRIDGE_PATH, BalancesView, BatchView, BridgeStatus,
    DEPOSIT_PATH, PENDING_BATCHES_PATH, PendingBatchesView, QUERY_BAD_HEIGHT, QUERY_NOT_FOUND, QUERY_OK, RESERVES_PATH,
    WITHDRAWAL_PATH, WithdrawalView,
};
use ferry_types::{
    AccountKey, Address, Amount, Coin, Denom, DepositFacts, DepositId, GenesisAccount, GenesisState, Msg, Params,
    TxBuilder,
};

/// The chain id every test chain runs under.
pub const CHAIN_ID: &str = "ferry-test-1";
/// Block time of height 1, seconds since the Unix epoch.
pub const FIRST_BLOCK_TIME: i64 = 1_700_000_000;
/// Seconds between consecutive blocks.
pub const BLOCK_INTERVAL_SECONDS: i64 = 5;

/// The error type of the driver and of the tests that use it.
pub type TestError = Box<dyn Error>;
/// The result type of the driver and of the tests that use it.
pub type TestResult<T = ()> = Result<T, TestError>;

/// Committed state at one height: the key-value map the node's store would hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryState(BTreeMap<Vec<u8>, Vec<u8>>);

/// Checks the state encoding on every record `changes` writes: each is the canonical encoding
/// of a known record kind — decoding it as that kind and encoding it again gives back exactly
/// the stored bytes ([`ferry_app::records::reencode`]). Every test chain runs it on genesis and
/// on every block, so every record kind any app test writes, with the values it really holds,
/// is round-tripped.
///
/// # Errors
/// Naming the key whose record is unknown, does not decode, or re-encodes differently.
pub fn check_encoding(changes: &ChangeSet) -> TestResult {
    for (key, value) in changes {
        let Some(bytes) = value else { continue };
        let again = ferry_app::records::reencode(key, bytes)?;
        if &again != bytes {
            return Err(format!(
                "record `{}` does not round-trip: stored {}, re-encoded {}",
                String::from_utf8_lossy(key),
                hex::encode(bytes),
                hex::encode(&again)
            )
            .into());
        }
    }
    Ok(())
}

impl MemoryState {
    /// Applies a block's writes; `None` deletes the key.
    pub fn apply(&mut self, changes: &ChangeSet) {
        for (key, value) in changes {
            match value {
                Some(value) => {
                    self.0.insert(key.clone(), value.clone());
                }
                None => {
                    self.0.remove(key);
                }
            }
        }
    }

    /// Every key and value.
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.0
    }

    /// Every account record (keys under `acct/`), decoded, in key order.
    ///
    /// # Errors
    /// When a key does not hold a 20-byte account id or a record does not decode.
    pub fn accounts(&self) -> TestResult<Vec<(Address, AccountRecord)>> {
        let mut accounts = Vec::new();
        let prefixed = self.0.range(keys::ACCOUNT_PREFIX.to_vec()..);
        for (key, value) in prefixed.take_while(|(key, _)| key.starts_with(keys::ACCOUNT_PREFIX)) {
            let id: [u8; 20] = key
                .get(keys::ACCOUNT_PREFIX.len()..)
                .and_then(|id| id.try_into().ok())
                .ok_or_else(|| format!("account key {} does not hold a 20-byte id", hex::encode(key)))?;
            let record: AccountRecord = ferry_app::state::decode(key, value)?;
            accounts.push((Address::from_bytes(id), record));
        }
        Ok(accounts)
    }

    /// The total of `denom` over every account record, the fee collector included.
    ///
    /// # Errors
    /// When a record does not decode or the total exceeds `u128::MAX`.
    pub fn supply(&self, denom: &Denom) -> TestResult<u128> {
        let mut total: u128 = 0;
        for (address, record) in self.accounts()? {
            total = total
                .checked_add(record.balance(denom).get())
                .ok_or_else(|| format!("supply of {denom} overflows at {address}"))?;
        }
        Ok(total)
    }
}

impl StateRead for MemoryState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }

    fn scan(&self, scan: Scan<'_>) -> Result<Entries, StateError> {
        Ok(scan.over(&self.0))
    }
}

/// A chain driven in-process: InitChain, FinalizeBlock + Commit, CheckTx and Query.
#[derive(Debug)]
pub struct Chain {
    chain_id: String,
    /// Committed state per height; index 0 is genesis, the last entry the latest commit.
    history: Vec<MemoryState>,
    /// The writes of the transactions CheckTx admitted since the last commit.
    mempool: ChangeSet,
    /// The node's memo of verified signatures, shared by CheckTx and FinalizeBlock as in the node.
    signatures: ferry_app::SignatureCache,
    genesis_events: Vec<Event>,
    /// The exit tree over the committed claims, followed block by block as the node does.
    claims: ClaimTree,
}

impl Chain {
    /// Runs InitChain with `genesis` under [`CHAIN_ID`] and commits it as height 0.
    ///
    /// # Errors
    /// When the genesis is refused.
    pub fn start(genesis: &GenesisState) -> TestResult<Chain> {
        Chain::start_with_chain_id(CHAIN_ID, genesis)
    }

    /// Runs InitChain with `genesis` under `chain_id` and commits it as height 0.
    ///
    /// # Errors
    /// When the genesis is refused.
    pub fn start_with_chain_id(chain_id: &str, genesis: &GenesisState) -> TestResult<Chain> {
        Chain::start_funded_with_chain_id(chain_id, genesis, &[])
    }

    /// Runs InitChain with `genesis` and commits it as height 0 together with `holdings`, as if
    /// deposits had minted them: each balance is credited and its asset's supply and reserves
    /// both rise by it (satoshi holdings add reserve UTXO `FUNDING_TXID:<position>`). A genesis holds no balances; this shortcut lets bank tests start from
    /// funded accounts without playing the deposits (the deposit tests play them).
    ///
    /// # Errors
    /// When the genesis is refused or a sum overflows.
    pub fn start_funded(genesis: &GenesisState, holdings: &[Holding]) -> TestResult<Chain> {
        Chain::start_funded_with_chain_id(CHAIN_ID, genesis, holdings)
    }

    fn start_funded_with_chain_id(chain_id: &str, genesis: &GenesisState, holdings: &[Holding]) -> TestResult<Chain> {
        let (changes, genesis_events) = ferry_app::init_chain(genesis)?;
        check_encoding(&changes)?;
        let mut state = MemoryState::default();
        state.apply(&changes);
        let mut funded = StateDelta::new(&state);
        for (vout, holding) in (0u32..).zip(holdings) {
            let mut record = match funded.account(&holding.address)? {
                Some(record) => record,
                None => AccountRecord { account_number: funded.next_account_number()?, ..AccountRecord::default() },
            };
            for coin in &holding.coins {
                record.set_balance(&coin.denom, record.balance(&coin.denom).checked_add(coin.amount)?);
                let mut ledger = funded.ledger(&coin.denom)?;
                ledger.supply = ledger.supply.checked_add(coin.amount)?;
                ledger.reserves = ledger.reserves.checked_add(coin.amount)?;
                funded.put_ledger(&coin.denom, &ledger)?;
                if coin.denom == Denom::sat() {
                    let txid = FUNDING_TXID.to_owned();
                    funded.put_reserve_utxo(&ReserveUtxo {
                        txid,
                        vout,
                        amount: coin.amount,
                        locked_by: None,
                        owner: None,
                        retired_epoch: None,
                    })?;
                }
            }
            funded.put_account(&holding.address, &record);
        }
        // The claims follow the holdings, as they would follow the deposits.
        ferry_app::exit_claims::refresh(&mut funded)?;
        let changes = funded.into_writes();
        check_encoding(&changes)?;
        state.apply(&changes);
        let claims = ClaimTree::load(&state)?;
        let mut rooted = StateDelta::new(&state);
        ferry_app::exit_claims::record_root(&mut rooted, 0, claims.root())?;
        let changes = rooted.into_writes();
        state.apply(&changes);
        Ok(Chain {
            chain_id: chain_id.to_owned(),
            history: vec![state],
            mempool: ChangeSet::new(),
            signatures: ferry_app::SignatureCache::new(10_000),
            genesis_events,
            claims,
        })
    }

    /// This chain's id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The events InitChain returned.
    pub fn genesis_events(&self) -> &[Event] {
        &self.genesis_events
    }

    /// The latest committed height (0 before the first block).
    pub fn height(&self) -> u64 {
        u64::try_from(self.history.len().saturating_sub(1)).unwrap_or(u64::MAX)
    }

    /// The latest committed state.
    pub fn committed(&self) -> &MemoryState {
        // `history` is never empty: `start` commits genesis.
        self.history.last().unwrap_or(&EMPTY)
    }

    /// The committed state at `height`, if that height was committed.
    pub fn committed_at(&self, height: u64) -> Option<&MemoryState> {
        usize::try_from(height).ok().and_then(|index| self.history.get(index))
    }

    /// Executes `txs` as the block at the next height, commits its writes and resets the mempool.
    ///
    /// # Errors
    /// On a storage failure inside the state machine.
    pub fn finalize_block<T: AsRef<[u8]>>(&mut self, txs: &[T]) -> TestResult<BlockOutcome> {
        let height = self.height().saturating_add(1);
        let offset = i64::try_from(height.saturating_sub(1)).unwrap_or(i64::MAX);
        let raw: Vec<&[u8]> = txs.iter().map(AsRef::as_ref).collect();
        let block = BlockInput {
            height,
            time_unix: FIRST_BLOCK_TIME.saturating_add(offset.saturating_mul(BLOCK_INTERVAL_SECONDS)),
            chain_id: &self.chain_id,
            txs: &raw,
            claims: &self.claims,
        };
        let outcome = ferry_app::finalize_block(self.committed(), &block, &self.signatures)?;
        check_encoding(&outcome.changes)?;
        let mut next = self.committed().clone();
        next.apply(&outcome.changes);
        // The tree followed block by block must be the tree rebuilt from the committed claims.
        self.claims.apply(&outcome.changes)?;
        if self.claims.root() != ClaimTree::load(&next)?.root() {
            return Err(format!("height {height}: the followed exit tree differs from a rebuild").into());
        }
        // The root the block recorded (from the tree as it was lent to the block) is that tree's.
        let answer = query(&next, ferry_types::query::EXIT_ROOT_PATH)?;
        let recorded: ferry_types::exit_tree::ExitRoot = serde_json::from_slice(&answer.value)?;
        if recorded.root != self.claims.root() {
            return Err(format!("height {height}: the recorded exit root is not the tree's: {recorded:?}").into());
        }
        self.history.push(next);
        self.mempool.clear();
        Ok(outcome)
    }

    /// Commits a block without transactions.
    ///
    /// # Errors
    /// On a storage failure inside the state machine.
    pub fn empty_block(&mut self) -> TestResult<BlockOutcome> {
        self.finalize_block::<&[u8]>(&[])
    }

    /// Executes `txs` as the next block and returns only the per-transaction results.
    ///
    /// # Errors
    /// On a storage failure inside the state machine.
    pub fn execute_block<T: AsRef<[u8]>>(&mut self, txs: &[T]) -> TestResult<Vec<TxOutcome>> {
        Ok(self.finalize_block(txs)?.tx_results)
    }

    /// Runs CheckTx on the mempool overlay; an admitted transaction's effects stay in the overlay
    /// until the next block.
    ///
    /// # Errors
    /// On a storage failure inside the state machine.
    pub fn check_tx(&mut self, bytes: &[u8]) -> TestResult<TxOutcome> {
        let committed = self.history.last().unwrap_or(&EMPTY);
        let mut mempool = StateDelta::new(committed);
        mempool.absorb(std::mem::take(&mut self.mempool));
        let params = mempool.params()?;
        let height = self.height().saturating_add(1);
        let context = TxContext { chain_id: &self.chain_id, params: &params, signatures: &self.signatures, height };
        let executed = ferry_app::check_tx(&mut mempool, &context, bytes);
        self.mempool = mempool.into_writes();
        Ok(executed?)
    }

    /// Answers `path` from the latest committed state.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn query(&self, path: &str) -> TestResult<QueryAnswer> {
        Ok(query(self.committed(), path)?)
    }

    /// Answers `path` from the state committed at `height` (0 is genesis; unlike ABCI, 0 does not
    /// mean "latest"), or a `QUERY_BAD_HEIGHT` answer when that height is not committed.
    ///
    /// # Errors
    /// On a storage failure.
    pub fn query_at(&self, height: u64, path: &str) -> TestResult<QueryAnswer> {
        match self.committed_at(height) {
            Some(state) => Ok(query(state, path)?),
            None => Ok(QueryAnswer::error(
                QUERY_BAD_HEIGHT,
                format!("height {height} is not committed (latest {})", self.height()),
            )),
        }
    }

    /// Answers `path` from the mempool overlay (committed state plus admitted transactions).
    ///
    /// # Errors
    /// On a storage failure.
    pub fn query_mempool(&self, path: &str) -> TestResult<QueryAnswer> {
        let mut overlay = StateDelta::new(self.committed());
        overlay.absorb(self.mempool.clone());
        Ok(query(overlay, path)?)
    }

    /// The account of `address` in the latest committed state, or `None` when it does not exist.
    ///
    /// # Errors
    /// When the answer is neither an account nor "not found".
    pub fn account(&self, address: &Address) -> TestResult<Option<AccountView>> {
        self.account_at(self.height(), address)
    }

    /// The account of `address` committed at `height`, or `None` when it did not exist then.
    ///
    /// # Errors
    /// When the answer is neither an account nor "not found".
    pub fn account_at(&self, height: u64, address: &Address) -> TestResult<Option<AccountView>> {
        account_view(&self.query_at(height, &format!("{ACCOUNT_PATH}{address}"))?)
    }

    /// The account of `address` in the mempool overlay.
    ///
    /// # Errors
    /// When the answer is neither an account nor "not found".
    pub fn mempool_account(&self, address: &Address) -> TestResult<Option<AccountView>> {
        account_view(&self.query_mempool(&format!("{ACCOUNT_PATH}{address}"))?)
    }

    /// The balance of `address` in `denom` in the latest committed state (0 for no account).
    ///
    /// # Errors
    /// When the balances query fails.
    pub fn balance(&self, address: &Address, denom: &Denom) -> TestResult<u128> {
        self.balance_at(self.height(), address, denom)
    }

    /// The balance of `address` in `denom` committed at `height`.
    ///
    /// # Errors
    /// When the balances query fails (for example an uncommitted height).
    pub fn balance_at(&self, height: u64, address: &Address, denom: &Denom) -> TestResult<u128> {
        balance_of(&self.query_at(height, &format!("{BALANCES_PATH}{address}"))?, denom)
    }

    /// The balance of `address` in `denom` in the mempool overlay.
    ///
    /// # Errors
    /// When the balances query fails.
    pub fn mempool_balance(&self, address: &Address, denom: &Denom) -> TestResult<u128> {
        balance_of(&self.query_mempool(&format!("{BALANCES_PATH}{address}"))?, denom)
    }

    /// A signer for `key`, with the account number the chain assigned to it.
    ///
    /// # Errors
    /// When the key has no account yet.
    pub fn signer(&self, key: &AccountKey) -> TestResult<Signer> {
        let account =
            self.account(&key.address())?.ok_or_else(|| format!("{} has no account to sign for", key.address()))?;
        Ok(Signer::new(key.clone(), &self.chain_id, account.account_number))
    }
}

static EMPTY: MemoryState = MemoryState(BTreeMap::new());

fn check_answer(answer: &QueryAnswer) -> TestResult {
    if answer.code == QUERY_OK {
        Ok(())
    } else {
        Err(format!("query refused with code {}: {}", answer.code, answer.log).into())
    }
}

fn account_view(answer: &QueryAnswer) -> TestResult<Option<AccountView>> {
    if answer.code == ferry_types::query::QUERY_NOT_FOUND {
        return Ok(None);
    }
    check_answer(answer)?;
    Ok(Some(serde_json::from_slice(&answer.value)?))
}

fn balance_of(answer: &QueryAnswer, denom: &Denom) -> TestResult<u128> {
    check_answer(answer)?;
    let view: BalancesView = serde_json::from_slice(&answer.value)?;
    Ok(view.balances.iter().find(|coin| &coin.denom == denom).map_or(0, |coin| coin.amount.get()))
}

/// Signs transactions for one account key on one chain.
#[derive(Clone, Debug)]
pub struct Signer {
    /// The account key.
    pub key: AccountKey,
    /// Its address.
    pub address: Address,
    /// The builder, carrying the chain id and account number to sign for.
    pub builder: TxBuilder,
}

impl Signer {
    /// A signer for `key` on `chain_id` with `account_number`.
    pub fn new(key: AccountKey, chain_id: &str, account_number: u64) -> Signer {
        Signer { address: key.address(), key, builder: TxBuilder::new(chain_id, account_number) }
    }

    /// Signs `msgs` at `sequence` paying `fee`.
    ///
    /// # Errors
    /// When the builder refuses (for example an invalid chain id).
    pub fn sign(&self, sequence: u64, fee: &Coin, msgs: &[Msg]) -> TestResult<Vec<u8>> {
        Ok(self.builder.sign(&self.key, sequence, fee, msgs)?)
    }

    /// Signs a transfer of `amount` to `to` at `sequence` paying `fee`.
    ///
    /// # Errors
    /// When the builder refuses.
    pub fn transfer(&self, sequence: u64, to: &Address, amount: &[Coin], fee: &Coin) -> TestResult<Vec<u8>> {
        self.sign(sequence, fee, &[send(&self.address, to, amount)])
    }
}

/// A `MsgSend` of `amount` from `from` to `to`.
pub fn send(from: &Address, to: &Address, amount: &[Coin]) -> Msg {
    Msg::Send(MsgSend { from: *from, to: *to, amount: amount.to_vec() })
}

/// The deterministic test key of `seed`.
///
/// # Errors
/// In the negligible case that the seed hashes to an invalid scalar.
pub fn key(seed: &str) -> TestResult<AccountKey> {
    Ok(AccountKey::from_seed(seed)?)
}

/// `amount` satoshi.
pub fn sat(amount: u128) -> Coin {
    Coin::new(amount, Denom::sat())
}

/// `amount` wei.
pub fn wei(amount: u128) -> Coin {
    Coin::new(amount, Denom::wei())
}

/// The Bitcoin transaction [`Chain::start_funded`] pretends paid the satoshi holdings.
pub const FUNDING_TXID: &str = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";

/// The reserve UTXOs of `reserves` that deposits paid (those [`Chain::start_funded`] wrote left out).
pub fn deposit_utxos(reserves: &ReservesView) -> Vec<ReserveUtxo> {
    reserves.bitcoin_utxos.iter().filter(|utxo| utxo.txid != FUNDING_TXID).cloned().collect()
}

/// An account a test chain opens with coins ([`Chain::start_funded`]).
#[derive(Clone, Debug)]
pub struct Holding {
    /// The account.
    pub address: Address,
    /// What it holds.
    pub coins: Vec<Coin>,
}

/// `address` holding `coins`.
pub fn funded(address: &Address, coins: &[Coin]) -> Holding {
    Holding { address: *address, coins: coins.to_vec() }
}

/// A genesis creating the accounts of `holdings` (numbered in that order) with default
/// parameters; [`Chain::start_funded`] credits them.
pub fn genesis(holdings: &[Holding]) -> GenesisState {
    let accounts = holdings.iter().map(|holding| GenesisAccount { address: holding.address }).collect();
    GenesisState { accounts, params: Params::default(), ..GenesisState::default() }
}

/// The minimum fee of `denom` under the default parameters.
///
/// # Errors
/// When the default parameters have no fee schedule for `denom`.
pub fn default_min_fee(denom: &Denom) -> TestResult<Amount> {
    Params::default().min_fee(denom).ok_or_else(|| format!("default params have no minimum fee in {denom}").into())
}

/// The attributes of `event` as a map.
pub fn attributes(event: &Event) -> BTreeMap<&'static str, &str> {
    event.attributes.iter().map(|(key, value)| (*key, value.as_str())).collect()
}

/// The events of `kind` among `events`.
pub fn events_of<'a>(events: &'a [Event], kind: &str) -> Vec<&'a Event> {
    events.iter().filter(|event| event.kind == kind).collect()
}

// Deposits and the bridge ledger.

impl MemoryState {
    /// Every denomination some account holds a non-zero balance of, sorted.
    ///
    /// # Errors
    /// When a record does not decode.
    pub fn held_denoms(&self) -> TestResult<BTreeSet<Denom>> {
        Ok(self.accounts()?.into_iter().flat_map(|(_, record)| record.balances.into_keys()).collect())
    }
}

impl Chain {
    /// The next sequence of `address` in the latest committed state.
    ///
    /// # Errors
    /// When `address` has no account.
    pub fn sequence(&self, address: &Address) -> TestResult<u64> {
        Ok(self.account(address)?.ok_or_else(|| format!("{address} has no account"))?.sequence)
    }

    /// The record of deposit `id` in the latest committed state, or `None` before any attestation.
    ///
    /// # Errors
    /// When the answer is neither a record nor "not found".
    pub fn deposit(&self, id: &DepositId) -> TestResult<Option<DepositRecord>> {
        self.deposit_at(self.height(), id)
    }

    /// The record of deposit `id` committed at `height`.
    ///
    /// # Errors
    /// When the answer is neither a record nor "not found".
    pub fn deposit_at(&self, height: u64, id: &DepositId) -> TestResult<Option<DepositRecord>> {
        let answer = self.query_at(height, &format!("{DEPOSIT_PATH}{id}"))?;
        if answer.code == QUERY_NOT_FOUND {
            return Ok(None);
        }
        check_answer(&answer)?;
        Ok(Some(serde_json::from_slice(&answer.value)?))
    }

    /// The `/reserves` answer in the latest committed state.
    ///
    /// # Errors
    /// When the query fails or its answer does not decode.
    pub fn reserves(&self) -> TestResult<ReservesView> {
        let answer = self.query(RESERVES_PATH)?;
        check_answer(&answer)?;
        Ok(serde_json::from_slice(&answer.value)?)
    }
}

impl Signer {
    /// Signs `msgs` at `sequence` without a fee (federation duties).
    ///
    /// # Errors
    /// When the builder refuses.
    pub fn sign_fee_exempt(&self, sequence: u64, msgs: &[Msg]) -> TestResult<Vec<u8>> {
        Ok(self.builder.sign_fee_exempt(&self.key, sequence, msgs)?)
    }

    /// Signs this signer's fee-exempt attestation of `facts` at `sequence`.
    ///
    /// # Errors
    /// When the builder refuses.
    pub fn attest(&self, sequence: u64, facts: &DepositFacts) -> TestResult<Vec<u8>> {
        self.sign_fee_exempt(sequence, &[attestation(&self.address, facts)])
    }
}

/// A `MsgAttestDeposit` of `facts` by `attester`.
pub fn attestation(attester: &Address, facts: &DepositFacts) -> Msg {
    Msg::AttestDeposit(MsgAttestDeposit { attester: *attester, facts: facts.clone() })
}

/// As [`genesis`], with a federation of `members` with `attest_quorum`.
pub fn federation_genesis(holdings: &[Holding], members: &[Address], attest_quorum: u32) -> GenesisState {
    GenesisState {
        federation: Federation { members: members.to_vec(), attest_quorum, ..Federation::default() },
        ..genesis(holdings)
    }
}

// Withdrawals, batches and the pause switch.

impl Chain {
    /// The JSON answer to `path` in the latest committed state, or `None` when it is "not found".
    ///
    /// # Errors
    /// When the query is refused otherwise or its answer does not decode.
    pub fn query_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> TestResult<Option<T>> {
        let answer = self.query(path)?;
        if answer.code == QUERY_NOT_FOUND {
            return Ok(None);
        }
        check_answer(&answer)?;
        Ok(Some(serde_json::from_slice(&answer.value)?))
    }

    /// The `/withdrawal/<id>` answer, which must exist.
    ///
    /// # Errors
    /// When there is no such withdrawal or the query fails.
    pub fn withdrawal(&self, id: &str) -> TestResult<WithdrawalView> {
        self.query_json(&format!("{WITHDRAWAL_PATH}{id}"))?.ok_or_else(|| format!("no withdrawal {id}").into())
    }

    /// The `/batch/<id>` answer, which must exist.
    ///
    /// # Errors
    /// When there is no such batch or the query fails.
    pub fn batch(&self, id: u64) -> TestResult<BatchView> {
        self.query_json(&format!("{BATCH_PATH}{id}"))?.ok_or_else(|| format!("no batch {id}").into())
    }

    /// The `/batches/pending` answer (after batch `after`, when given).
    ///
    /// # Errors
    /// When the query fails.
    pub fn pending_batches(&self, after: Option<u64>) -> TestResult<PendingBatchesView> {
        let path = match after {
            Some(after) => format!("{PENDING_BATCHES_PATH}/{after}"),
            None => PENDING_BATCHES_PATH.to_owned(),
        };
        self.query_json(&path)?.ok_or_else(|| "no pending batches answer".into())
    }

    /// The `/bridge` answer.
    ///
    /// # Errors
    /// When the query fails.
    pub fn bridge_status(&self) -> TestResult<BridgeStatus> {
        self.query_json(BRIDGE_PATH)?.ok_or_else(|| "no bridge status".into())
    }

    /// Overwrites `key` with `value` in the latest committed state, as a bug elsewhere in the
    /// state machine or a corrupted record would: the next block starts from it.
    pub fn overwrite_committed(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if let Some(latest) = self.history.last_mut() {
            latest.0.insert(key, value);
        }
    }
}
