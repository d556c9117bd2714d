//! The Bitcoin emergency disbursal ("exit", issue 17 item 1): a pre-signed, height-locked tree of
//! transactions that pays every wrapped-BTC holder its share of the covered reserve if the
//! federation stops signing.
//!
//! [`plan_exit`] is the pure planner the chain runs in consensus and every signer runs again
//! before signing (docs/exits.md). Same request, same plan, same txids:
//! integers only, no I/O, no clock, and the claims and reserve UTXOs are put in a canonical order
//! whatever order they are given in.
//!
//! # The tree
//!
//! - The **intermediate** transaction spends every covered reserve UTXO (largest first, ties by
//!   outpoint, as [`plan_release`](crate::release::bitcoin::plan_release) selects; at most
//!   [`MAX_EXIT_INPUTS`]) and pays one output to the peg per fan-out transaction, then the
//!   **residual** output to the peg. It too must fit [`ExitLimits::max_tx_vbytes`].
//! - Each **fan-out** transaction spends one intermediate output (a plain peg output, so it is
//!   signed like any reserve input) and pays recipients in claim order. It weighs at most
//!   [`ExitLimits::max_tx_vbytes`], with every signature at its longest
//!   ([`with_longest_signatures`]). There are at most [`MAX_FAN_OUTS`] of them: with the
//!   intermediate that is Bitcoin Core's 25-transaction descendant limit.
//! - Every transaction is version 2, `nLockTime` = the lock height, and every input has sequence
//!   [`RELEASE_SEQUENCE`] (`0xFFFFFFFD`, not final), so no node takes any of them before the
//!   lock height. A later release spends one of the intermediate's inputs and kills the tree.
//!
//! # Who gets what (the exact rule)
//!
//! Claims are the holders (ordered by account id) followed by the unpaid withdrawals (ordered by
//! id); a claim of 0 is owed nothing and is neither paid nor listed. A holder is paid to its recovery script, by default P2WPKH of its account id
//! ([`default_recovery_script`]: the id *is* the hash160 of the account's compressed key). A
//! withdrawal is paid to its destination. With `V` the covered reserve and `O` the sum of all
//! claims:
//!
//! 1. **Own fee.** Recipient `j` pays for its own output:
//!    `fee_j = ⌊rate × output vbytes_j⌋` (31 vB for P2WPKH, 43 for P2WSH and P2TR), the rate
//!    rounded down as [`split_fee`](crate::release::fee::split_fee) prices an output's own part.
//! 2. **Overhead.** Everything else the tree weighs — the intermediate (inputs, outputs,
//!    skeleton) and each fan-out's skeleton and input — costs
//!    `H = fee(intermediate) + Σ_k (fee(fan-out k) − Σ_{j in k} fee_j)`, each `fee(tx)` being
//!    [`FeeRate::fee_for`] the transaction's weight with its longest signatures. `H` is paid
//!    first, out of the pool (fee pool, surplus, unattributed, module balances: what `V` holds
//!    beyond `O`). Each deposit prepaid its own input into the fee pool, so in the normal case
//!    holders pay only their own output.
//! 3. **Pro rata.** `payable = V − H`. If `payable ≥ O` every claim is entitled to its whole
//!    amount: `e_j = c_j`. Otherwise `e_j = ⌊c_j × payable / O⌋`: the shortfall (the pool could
//!    not pay the overhead, or reserves are uncovered or short) is shared in proportion to what
//!    each claims, never equally (an equal split is what Nomic does and hurts small holders).
//! 4. **Pooling.** Claim `j` is paid `e_j − fee_j` if that is at least
//!    `max(dust threshold of its script, min_output)`. Otherwise it is **pooled**: it gets no
//!    output, its `e_j` stays in the residual at the peg, and it is listed in
//!    [`ExitPlan::pooled`] with its claim and entitlement, so the chain and `ferry exit status`
//!    can say so. Pooling changes the layout, so steps 2–4 repeat until no claim is newly pooled;
//!    the paid set only shrinks, so this ends (usually after two rounds). A pooled claim stays
//!    pooled even if a later round would have paid it.
//! 5. **Residual.** `residual = payable − Σ_{paid} e_j`: the pool beyond the overhead, the pooled
//!    entitlements and the rounding remainders of step 3. It is paid to the peg, the only party
//!    able to return it. If it is below the peg output's dust threshold it is left to miners in
//!    the intermediate's fee (under 330 sat, on top of the fee its left-out output was priced
//!    at), or, when no fan-out is left either, the reserve is too small to exit
//!    ([`ExitError::ReserveTooSmall`]).
//! 6. **Values.** Fan-out `k`'s input (intermediate output `k`) is `Σ_{j in k} paid_j +
//!    fee(fan-out k)`; the intermediate's fee is what is left.
//!
//! Invariant (tested): the outputs of the tree that leave it plus every transaction's fee add up
//! to `V` exactly, no output is below its floor, and every transaction is within the size limit
//! and Bitcoin's standardness policy ([`standardness::check`]).
//!
//! # Signing
//!
//! Amounts are `u128` satoshi inside the planner: every reserve UTXO and claim is checked to be a
//! Bitcoin amount (≤ 21,000,000 BTC) first, so no sum or the pro-rata product can overflow.
//!
//! [`exit_sighashes`] lists the BIP 143 digests every member signs: per transaction (the
//! intermediate first, then the fan-outs in order), per input, over the input's witness script
//! ([`Peg::spend_script`]) — `N + F` signatures per member, not one per holder. They are signed
//! with [`sign_input`](crate::release::bitcoin::sign_input) and put in witnesses with
//! [`assemble_exit`] exactly as a release's are.
//!
//! Pure: no I/O, no clock, no randomness. It must not depend on anything that differs between the
//! chain, signers and relayers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount as Sats, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid, WPubkeyHash, Weight, Witness};

use crate::address::Address;
use crate::amount::Amount;
use crate::peg::Peg;
use crate::release::bitcoin::{
    BtcReleaseError, CONSOLIDATION_INPUTS, RELEASE_SEQUENCE, ReleasePlan, Utxo, assemble_witness,
};
use crate::release::fee::FeeRate;
use crate::release::standardness::{self, MAX_STANDARD_TX_WEIGHT, Violation, dust_threshold, with_longest_signatures};

/// The most fan-out transactions one disbursal has: with the intermediate, the 25 transactions
/// Bitcoin Core accepts in one chain of unconfirmed descendants.
pub const MAX_FAN_OUTS: usize = 24;

/// The most reserve UTXOs one intermediate spends (the consolidation limit: standard for any
/// federation size the peg allows).
pub const MAX_EXIT_INPUTS: usize = CONSOLIDATION_INPUTS;

/// Weight units per virtual byte.
const WEIGHT_PER_VBYTE: u64 = 4;

/// Size and amount limits of a disbursal (genesis parameters `exit.max_tx_vbytes` and
/// `exit.min_output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitLimits {
    /// The largest transaction of the tree, in virtual bytes with the longest signatures (at most
    /// the 100,000 vB standardness allows; Nomic uses 50,000).
    pub max_tx_vbytes: u64,
    /// The least net payment an output carries, above its type's dust threshold (Nomic: 1,000).
    pub min_output: Amount,
}

impl Default for ExitLimits {
    fn default() -> Self {
        ExitLimits { max_tx_vbytes: 50_000, min_output: Amount::new(1_000) }
    }
}

/// A wrapped-BTC holder: its account, its `sat` balance and, if it registered one, its recovery
/// script (otherwise it is paid to [`default_recovery_script`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The account id (never a module account: those have no key, their balance is the pool's).
    pub account: Address,
    /// Its `sat` balance.
    pub balance: Amount,
    /// The output script it registered for exits, if any.
    pub recovery_script: Option<ScriptBuf>,
}

/// A withdrawal burned on the sidechain but not yet paid on Bitcoin: the exit pays it like a holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnpaidWithdrawal {
    /// The withdrawal's id.
    pub id: u64,
    /// Its destination's output script.
    pub script: ScriptBuf,
    /// The amount burned.
    pub amount: Amount,
}

/// Who a claim belongs to. Holders sort before withdrawals, each by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claimant {
    /// A holder's balance.
    Holder(Address),
    /// An unpaid withdrawal.
    Withdrawal(u64),
}

impl fmt::Display for Claimant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Claimant::Holder(account) => write!(f, "holder {account}"),
            Claimant::Withdrawal(id) => write!(f, "withdrawal {id}"),
        }
    }
}

/// What the disbursal is planned from.
#[derive(Clone, Copy, Debug)]
pub struct ExitRequest<'a> {
    /// The covered reserve UTXOs (any order; at most [`MAX_EXIT_INPUTS`]).
    pub reserve: &'a [Utxo],
    /// The holders (any order; each account once).
    pub holders: &'a [Holder],
    /// The unpaid withdrawals (any order; each id once).
    pub withdrawals: &'a [UnpaidWithdrawal],
    /// The peg that holds the reserve and receives the residual.
    pub peg: &'a Peg,
    /// The fee rate every transaction pays.
    pub rate: FeeRate,
    /// The parent-chain height before which no transaction of the tree is valid (`nLockTime`).
    pub lock_height: u32,
    /// Size and amount limits.
    pub limits: ExitLimits,
}

/// One transaction of the tree, unsigned, with what each of its inputs spends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitTx {
    /// The unsigned transaction (its txid is final: segwit).
    pub tx: Transaction,
    /// What each input spends, in input order (a fan-out's one input is intermediate output `k`).
    pub spends: Vec<Utxo>,
    /// Its miner fee: what its inputs hold beyond its outputs.
    pub fee: Amount,
}

/// A claim the tree pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Whose claim.
    pub claimant: Claimant,
    /// The output script paid.
    pub script: ScriptBuf,
    /// The claim (balance or burned amount).
    pub claim: Amount,
    /// Its pro-rata entitlement (the claim when the reserve pays every claim in full).
    pub entitled: Amount,
    /// The fee its own output costs.
    pub fee: Amount,
    /// What its output holds: `entitled − fee`.
    pub paid: Amount,
    /// The fan-out transaction that pays it.
    pub fan_out: usize,
    /// Its output's index in that transaction.
    pub vout: u32,
}

/// A claim too small to be paid on its own at this fee rate: its entitlement stays in the
/// residual at the peg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pooled {
    /// Whose claim.
    pub claimant: Claimant,
    /// The claim.
    pub claim: Amount,
    /// The entitlement left in the residual.
    pub entitled: Amount,
}

/// A planned disbursal. Built only by [`plan_exit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitPlan {
    lock_height: u32,
    rate: FeeRate,
    intermediate: ExitTx,
    fan_outs: Vec<ExitTx>,
    residual: Option<Amount>,
    recipients: Vec<Recipient>,
    pooled: Vec<Pooled>,
    overhead: Amount,
}

impl ExitPlan {
    /// The `nLockTime` height of every transaction.
    pub fn lock_height(&self) -> u32 {
        self.lock_height
    }

    /// The fee rate it was planned at.
    pub fn rate(&self) -> FeeRate {
        self.rate
    }

    /// The covered reserve UTXOs, in the intermediate's input order.
    pub fn inputs(&self) -> &[Utxo] {
        &self.intermediate.spends
    }

    /// The intermediate transaction.
    pub fn intermediate(&self) -> &ExitTx {
        &self.intermediate
    }

    /// The fan-out transactions, in intermediate output order.
    pub fn fan_outs(&self) -> &[ExitTx] {
        &self.fan_outs
    }

    /// Every transaction: the intermediate, then the fan-outs (the order of [`exit_sighashes`]).
    pub fn transactions(&self) -> impl Iterator<Item = &ExitTx> {
        std::iter::once(&self.intermediate).chain(&self.fan_outs)
    }

    /// The residual paid back to the peg (the last intermediate output), if any.
    pub fn residual(&self) -> Option<Amount> {
        self.residual
    }

    /// The claims paid, in claim order.
    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// The claims pooled into the residual, in claim order.
    pub fn pooled(&self) -> &[Pooled] {
        &self.pooled
    }

    /// The overhead `H` paid before the pro-rata split (module doc, step 2).
    pub fn overhead(&self) -> Amount {
        self.overhead
    }

    /// What the covered reserve holds.
    pub fn input_total(&self) -> Amount {
        Amount::new(self.intermediate.spends.iter().map(|utxo| utxo.amount.get()).sum())
    }

    /// Every transaction's fee together.
    pub fn fee_total(&self) -> Amount {
        Amount::new(self.transactions().map(|tx| tx.fee.get()).sum())
    }

    /// Each transaction's virtual size with every signature at its longest: an upper bound of the
    /// signed size, in [`ExitPlan::transactions`] order.
    pub fn max_vsizes(&self, peg: &Peg) -> Vec<u64> {
        self.transactions().map(|tx| longest(tx, peg).weight().to_vbytes_ceil()).collect()
    }

    /// Every input's sighash count: `N + F`, what one member signs.
    pub fn signature_count(&self) -> usize {
        self.transactions().map(|tx| tx.spends.len()).sum()
    }

    /// Checks every transaction against Bitcoin's standardness policy with its longest signatures
    /// ([`standardness::check`]), fee included.
    ///
    /// # Errors
    /// [`ExitError::NonStandard`] naming the transaction (0 the intermediate, `k + 1` fan-out `k`).
    pub fn check_standard(&self, peg: &Peg) -> Result<(), ExitError> {
        for (index, tx) in self.transactions().enumerate() {
            let prevouts = prevouts(tx, peg);
            standardness::check(&longest(tx, peg), &prevouts, sats_of(tx.fee))
                .map_err(|violation| ExitError::NonStandard { tx: index, violation })?;
        }
        Ok(())
    }
}

/// Claims one recorded page holds ([`crate::state_keys::exit_btc_claims`]): about 60 KB, well
/// under what one proven read carries.
pub const CLAIMS_PER_PAGE: usize = 1_000;

/// One claim as the chain records it with a derived disbursal: whose, the script paid, the amount
/// claimed (a holder's balance, a withdrawal's burned amount). Signers, relayers and the CLI plan
/// the disbursal again from these ([`plan_recorded`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedClaim {
    /// Whose claim.
    pub claimant: Claimant,
    /// The output script paid, hex.
    pub script: String,
    /// The claim.
    pub amount: Amount,
}

/// What a disbursal was planned from besides its claims, as the chain records it: the planner's
/// inputs, so a parameter change later does not change what was signed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitBasis {
    /// The covered reserve UTXOs, in the intermediate's input order.
    pub inputs: Vec<Utxo>,
    /// The fee rate every transaction pays.
    pub rate: FeeRate,
    /// The `nLockTime` height of every transaction.
    pub lock_height: u32,
    /// [`ExitLimits::min_output`].
    pub min_output: Amount,
    /// [`ExitLimits::max_tx_vbytes`].
    pub max_tx_vbytes: u64,
}

impl ExitBasis {
    /// The size and amount limits planned with.
    pub fn limits(&self) -> ExitLimits {
        ExitLimits { max_tx_vbytes: self.max_tx_vbytes, min_output: self.min_output }
    }
}

/// The recorded form of `holders` and `withdrawals`, in claim order (holders by account, then
/// withdrawals by id), each holder's script its recovery script or [`default_recovery_script`].
pub fn record_claims(holders: &[Holder], withdrawals: &[UnpaidWithdrawal]) -> Vec<RecordedClaim> {
    let mut claims: Vec<RecordedClaim> = holders
        .iter()
        .map(|holder| RecordedClaim {
            claimant: Claimant::Holder(holder.account),
            script: hex::encode(
                holder.recovery_script.clone().unwrap_or_else(|| default_recovery_script(&holder.account)).as_bytes(),
            ),
            amount: holder.balance,
        })
        .chain(withdrawals.iter().map(|withdrawal| RecordedClaim {
            claimant: Claimant::Withdrawal(withdrawal.id),
            script: hex::encode(withdrawal.script.as_bytes()),
            amount: withdrawal.amount,
        }))
        .collect();
    claims.sort_by_key(|claim| claim.claimant);
    claims
}

/// Plans the disbursal recorded as `basis` and `claims` for `peg` ([`plan_exit`]): what the chain
/// derived, planned again by a signer before signing or by a relayer before broadcasting.
///
/// # Errors
/// [`ExitError::BadScript`] for a script that is not hex; as [`plan_exit`].
pub fn plan_recorded(basis: &ExitBasis, claims: &[RecordedClaim], peg: &Peg) -> Result<ExitPlan, ExitError> {
    let mut holders = Vec::new();
    let mut withdrawals = Vec::new();
    for claim in claims {
        let script = hex::decode(&claim.script).map(ScriptBuf::from_bytes).map_err(|_| ExitError::BadScript {
            claimant: claim.claimant,
            script: claim.script.clone(),
            reason: "is not hex",
        })?;
        match claim.claimant {
            Claimant::Holder(account) => {
                holders.push(Holder { account, balance: claim.amount, recovery_script: Some(script) });
            }
            Claimant::Withdrawal(id) => withdrawals.push(UnpaidWithdrawal { id, script, amount: claim.amount }),
        }
    }
    plan_exit(&ExitRequest {
        reserve: &basis.inputs,
        holders: &holders,
        withdrawals: &withdrawals,
        peg,
        rate: basis.rate,
        lock_height: basis.lock_height,
        limits: basis.limits(),
    })
}

/// One output a signed disbursal pays a claim.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payout {
    /// Whose claim.
    pub claimant: Claimant,
    /// The output script, hex.
    pub script: String,
    /// The claim.
    pub claim: Amount,
    /// What the output holds (the entitlement less the output's own fee).
    pub paid: Amount,
    /// The transaction paying it.
    pub txid: String,
    /// The output's index in it.
    pub vout: u32,
}

/// A disbursal with every input signed: what relayers keep and `ferry exit btc` broadcasts once
/// the lock height passed. Self-contained: it needs neither the sidechain nor the federation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedDisbursal {
    /// Its batch id on the sidechain.
    pub exit: u64,
    /// The sidechain height whose balances it pays.
    pub snapshot_height: u64,
    /// No transaction is valid before this Bitcoin height.
    pub lock_height: u32,
    /// The reserve UTXOs the intermediate spends: once any is spent otherwise, the disbursal is dead.
    pub inputs: Vec<Utxo>,
    /// The signed transactions, raw hex: the intermediate first, then the fan-outs (each spends
    /// one intermediate output, so they are valid once the intermediate is in a block).
    pub transactions: Vec<String>,
    /// Every output paid to a claim.
    pub payouts: Vec<Payout>,
    /// The claims pooled into the residual (too small for an output of their own).
    pub pooled: Vec<Claimant>,
    /// What goes back to the peg.
    pub residual: Amount,
    /// Every transaction's fee together.
    pub fees: Amount,
}

impl SignedDisbursal {
    /// The transactions, decoded.
    ///
    /// # Errors
    /// [`ExitError::Decode`] naming the transaction that does not decode.
    pub fn decoded(&self) -> Result<Vec<Transaction>, ExitError> {
        self.transactions
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                hex::decode(raw)
                    .ok()
                    .and_then(|bytes| bitcoin::consensus::deserialize(&bytes).ok())
                    .ok_or(ExitError::Decode { tx: index })
            })
            .collect()
    }
}

/// Assembles the disbursal recorded as `basis` and `claims`, signed by `signatures` (each member
/// index's DER signatures, flattened in [`exit_sighashes`] order, as the chain records them), for
/// `peg`: the plan is made again ([`plan_recorded`]) and each input's witness assembled
/// ([`assemble_exit`]).
///
/// # Errors
/// As [`plan_recorded`] and [`assemble_exit`]; [`ExitError::CountMismatch`] when a member's
/// signature list does not have one signature per input.
pub fn assemble_recorded(
    exit: u64,
    snapshot_height: u64,
    basis: &ExitBasis,
    claims: &[RecordedClaim],
    signatures: &BTreeMap<usize, Vec<Vec<u8>>>,
    peg: &Peg,
) -> Result<SignedDisbursal, ExitError> {
    let plan = plan_recorded(basis, claims, peg)?;
    let sighashes = exit_sighashes(&plan, peg)?;
    let count: usize = sighashes.iter().map(Vec::len).sum();
    let mut per_tx: Vec<Vec<BTreeMap<usize, Vec<u8>>>> =
        sighashes.iter().map(|tx| vec![BTreeMap::new(); tx.len()]).collect();
    for (member, ders) in signatures {
        if ders.len() != count {
            return Err(ExitError::CountMismatch {
                what: "signatures of a member",
                expected: count,
                given: ders.len(),
            });
        }
        let mut ders = ders.iter();
        for tx in &mut per_tx {
            for input in tx.iter_mut() {
                if let Some(der) = ders.next() {
                    input.insert(*member, der.clone());
                }
            }
        }
    }
    let signed = assemble_exit(&plan, peg, &sighashes, &per_tx)?;
    let txids: Vec<String> = signed.iter().map(|tx| tx.compute_txid().to_string()).collect();
    let payouts = plan
        .recipients()
        .iter()
        .map(|recipient| Payout {
            claimant: recipient.claimant,
            script: hex::encode(recipient.script.as_bytes()),
            claim: recipient.claim,
            paid: recipient.paid,
            txid: txids.get(recipient.fan_out + 1).cloned().unwrap_or_default(),
            vout: recipient.vout,
        })
        .collect();
    Ok(SignedDisbursal {
        exit,
        snapshot_height,
        lock_height: plan.lock_height(),
        inputs: plan.inputs().to_vec(),
        transactions: signed.iter().map(|tx| hex::encode(bitcoin::consensus::serialize(tx))).collect(),
        payouts,
        pooled: plan.pooled().iter().map(|pooled| pooled.claimant).collect(),
        residual: plan.residual().unwrap_or(Amount::ZERO),
        fees: plan.fee_total(),
    })
}

/// Why a disbursal could not be planned or assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExitError {
    /// There is no covered reserve to disburse.
    #[error("no reserve UTXO to disburse")]
    NoReserve,
    /// A stored transaction does not decode.
    #[error("transaction {tx} of the signed disbursal does not decode")]
    Decode {
        /// Its index (0 the intermediate).
        tx: usize,
    },
    /// More reserve UTXOs than one intermediate spends.
    #[error("{inputs} reserve UTXOs; one disbursal spends at most {max}")]
    TooManyInputs {
        /// UTXOs given.
        inputs: usize,
        /// The limit.
        max: usize,
    },
    /// A reserve UTXO is malformed, listed twice or out of range.
    #[error("reserve: {0}")]
    BadReserve(BtcReleaseError),
    /// A claimant appears twice.
    #[error("{0} is listed twice")]
    DuplicateClaimant(Claimant),
    /// A module account (no key) was given as a holder.
    #[error("{0} is a module account; its balance belongs to the residual")]
    ModuleAccount(Address),
    /// A claim above the 21,000,000 BTC any Bitcoin amount is.
    #[error("{claimant} claims {amount} sat, more than any Bitcoin amount")]
    ClaimOutOfRange {
        /// Whose claim.
        claimant: Claimant,
        /// The claim.
        amount: Amount,
    },
    /// A recovery or destination script the exit cannot pay.
    #[error("{claimant}: script {script} {reason}")]
    BadScript {
        /// Whose script.
        claimant: Claimant,
        /// The script, hex.
        script: String,
        /// Why.
        reason: &'static str,
    },
    /// The lock height is zero or not a block height (`nLockTime` ≥ 500,000,000 is a time).
    #[error("lock height {0} is not a block height above 0 and below 500,000,000")]
    LockHeight(u32),
    /// Limits no tree can meet.
    #[error("max_tx_vbytes {max_tx_vbytes}: {reason}")]
    Limits {
        /// The limit given.
        max_tx_vbytes: u64,
        /// Why it cannot be met.
        reason: String,
    },
    /// The intermediate would exceed the size limit.
    #[error("the intermediate spending {inputs} UTXOs into {outputs} outputs is {vbytes} vB, over the {max} vB limit")]
    IntermediateTooLarge {
        /// Its inputs.
        inputs: usize,
        /// Its outputs.
        outputs: usize,
        /// Its size with the longest signatures.
        vbytes: u64,
        /// The limit.
        max: u64,
    },
    /// More recipients than [`MAX_FAN_OUTS`] fan-outs can pay.
    #[error("{recipients} recipients need {fan_outs} fan-out transactions; at most {max} (a third level is not built)")]
    TooManyFanOuts {
        /// Recipients to pay.
        recipients: usize,
        /// Fan-outs they need.
        fan_outs: usize,
        /// The limit.
        max: usize,
    },
    /// The reserve cannot pay the tree's own fees and leave a standard output.
    #[error("a reserve of {reserve} sat cannot pay the disbursal's {needed} sat of fees and a standard output")]
    ReserveTooSmall {
        /// The covered reserve.
        reserve: Amount,
        /// The least it would take.
        needed: Amount,
    },
    /// A transaction of the tree breaks the standardness policy.
    #[error("transaction {tx} of the disbursal would not be relayed: {violation}")]
    NonStandard {
        /// 0 the intermediate, `k + 1` fan-out `k`.
        tx: usize,
        /// The rule broken.
        violation: Violation,
    },
    /// A per-transaction list does not have one entry per transaction or input.
    #[error("{given} {what} given for {expected}")]
    CountMismatch {
        /// What was given.
        what: &'static str,
        /// How many were expected.
        expected: usize,
        /// How many were given.
        given: usize,
    },
    /// Witness assembly of a transaction failed (too few valid signatures, …).
    #[error("transaction {tx} of the disbursal: {error}")]
    Witness {
        /// 0 the intermediate, `k + 1` fan-out `k`.
        tx: usize,
        /// What the release code said.
        error: BtcReleaseError,
    },
}

/// The output script a holder is paid to by default: P2WPKH of its account id, which is the
/// hash160 of the account's compressed public key ([`crate::key::address_of_compressed`]), so
/// the account's own key spends it and no public key needs to be known.
pub fn default_recovery_script(account: &Address) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(*account.as_bytes()))
}

/// A claim in canonical order.
struct Claim {
    claimant: Claimant,
    script: ScriptBuf,
    amount: u128,
    /// `⌊rate × output vbytes⌋`.
    own_fee: u128,
    /// `max(dust threshold, min_output)`.
    floor: u128,
    /// The output's weight.
    weight: Weight,
}

/// The fan-outs for the claims being paid: each a run of claim indices and its weight with the
/// longest signatures.
struct Layout {
    fan_outs: Vec<(Vec<usize>, Weight)>,
    intermediate_weight: Weight,
}

/// The outcome of the pooling rounds: the layout no claim was newly pooled in, its overhead `H`,
/// and every claim's entitlement (by claim index).
struct Settled {
    layout: Layout,
    overhead: u128,
    entitled: Vec<u128>,
}

/// Plans the disbursal of `request.reserve` to the claims (module doc: the tree and the rule).
///
/// # Errors
/// Malformed input ([`ExitError::NoReserve`], [`ExitError::TooManyInputs`],
/// [`ExitError::BadReserve`], [`ExitError::DuplicateClaimant`], [`ExitError::ModuleAccount`],
/// [`ExitError::ClaimOutOfRange`], [`ExitError::BadScript`], [`ExitError::LockHeight`],
/// [`ExitError::Limits`]); a tree that cannot be built ([`ExitError::IntermediateTooLarge`],
/// [`ExitError::TooManyFanOuts`], [`ExitError::ReserveTooSmall`], [`ExitError::NonStandard`]).
pub fn plan_exit(request: &ExitRequest<'_>) -> Result<ExitPlan, ExitError> {
    let ExitRequest { peg, rate, lock_height, limits, .. } = *request;
    let lock_time = match LockTime::from_height(lock_height) {
        Ok(lock_time) if lock_height > 0 => lock_time,
        _ => return Err(ExitError::LockHeight(lock_height)),
    };
    let max_weight = Weight::from_vb(limits.max_tx_vbytes)
        .filter(|weight| *weight <= MAX_STANDARD_TX_WEIGHT)
        .ok_or_else(|| ExitError::Limits {
            max_tx_vbytes: limits.max_tx_vbytes,
            reason: format!(
                "above the {} vB a standard transaction may have",
                MAX_STANDARD_TX_WEIGHT.to_vbytes_floor()
            ),
        })?;
    let inputs = reserve_inputs(request.reserve)?;
    let claims = claims(request)?;
    let reserve: u128 = inputs.iter().map(|utxo| utxo.amount.get()).sum();
    let claimed: u128 = claims.iter().map(|claim| claim.amount).sum();

    let mut paying: Vec<bool> = claims.iter().map(|claim| claim.amount > 0).collect();
    let settled = loop {
        let layout = lay_out(&claims, &paying, &inputs, peg, max_weight, limits.max_tx_vbytes)?;
        let overhead = overhead(&layout, &claims, rate);
        let payable = reserve
            .checked_sub(overhead)
            .ok_or(ExitError::ReserveTooSmall { reserve: Amount::new(reserve), needed: Amount::new(overhead) })?;
        let entitled: Vec<u128> = claims.iter().map(|claim| pro_rata(claim.amount, payable, claimed)).collect();
        let mut pooled_now = false;
        for ((claim, entitled), paid) in claims.iter().zip(&entitled).zip(paying.iter_mut()) {
            if *paid && entitled.saturating_sub(claim.own_fee) < claim.floor {
                *paid = false;
                pooled_now = true;
            }
        }
        if !pooled_now {
            break Settled { layout, overhead, entitled };
        }
    };
    build(request, lock_time, inputs, &claims, &settled, reserve)
}

/// The reserve in input order (largest first, ties by outpoint), checked.
fn reserve_inputs(reserve: &[Utxo]) -> Result<Vec<Utxo>, ExitError> {
    if reserve.is_empty() {
        return Err(ExitError::NoReserve);
    }
    if reserve.len() > MAX_EXIT_INPUTS {
        return Err(ExitError::TooManyInputs { inputs: reserve.len(), max: MAX_EXIT_INPUTS });
    }
    let mut seen = BTreeSet::new();
    for utxo in reserve {
        let outpoint = utxo.outpoint().map_err(ExitError::BadReserve)?;
        if u64::try_from(utxo.amount.get()).map_or(true, |sat| Sats::from_sat(sat) > Sats::MAX_MONEY) {
            return Err(ExitError::BadReserve(BtcReleaseError::AmountOutOfRange {
                what: format!("reserve UTXO {utxo}"),
                amount: utxo.amount,
            }));
        }
        if !seen.insert(outpoint) {
            return Err(ExitError::BadReserve(BtcReleaseError::DuplicateUtxo(utxo.to_string())));
        }
    }
    let mut inputs = reserve.to_vec();
    inputs.sort_by(|a, b| b.amount.cmp(&a.amount).then_with(|| (&a.txid, a.vout).cmp(&(&b.txid, b.vout))));
    Ok(inputs)
}

/// The claims in canonical order (holders by account, then withdrawals by id), checked and priced.
fn claims(request: &ExitRequest<'_>) -> Result<Vec<Claim>, ExitError> {
    let modules = [Address::fee_collector(), Address::unattributed_pool()];
    let mut by_claimant = BTreeMap::new();
    let holders = request.holders.iter().map(|holder| {
        if modules.contains(&holder.account) {
            return Err(ExitError::ModuleAccount(holder.account));
        }
        let script = holder.recovery_script.clone().unwrap_or_else(|| default_recovery_script(&holder.account));
        Ok((Claimant::Holder(holder.account), script, holder.balance))
    });
    let withdrawals = request
        .withdrawals
        .iter()
        .map(|withdrawal| Ok((Claimant::Withdrawal(withdrawal.id), withdrawal.script.clone(), withdrawal.amount)));
    for entry in holders.chain(withdrawals) {
        let (claimant, script, amount) = entry?;
        if u64::try_from(amount.get()).map_or(true, |sat| Sats::from_sat(sat) > Sats::MAX_MONEY) {
            return Err(ExitError::ClaimOutOfRange { claimant, amount });
        }
        check_script(claimant, &script, request.peg)?;
        let output = TxOut { value: Sats::ZERO, script_pubkey: script };
        let weight = output.weight();
        let claim = Claim {
            claimant,
            amount: amount.get(),
            own_fee: own_fee(request.rate, weight),
            floor: u128::from(dust_threshold(&output.script_pubkey).to_sat()).max(request.limits.min_output.get()),
            weight,
            script: output.script_pubkey,
        };
        if by_claimant.insert(claimant, claim).is_some() {
            return Err(ExitError::DuplicateClaimant(claimant));
        }
    }
    Ok(by_claimant.into_values().collect())
}

/// A script the exit may pay: a standard output type, and not the peg (that is the residual's).
fn check_script(claimant: Claimant, script: &ScriptBuf, peg: &Peg) -> Result<(), ExitError> {
    let bad = |reason| ExitError::BadScript { claimant, script: script.to_hex_string(), reason };
    let standard = script.is_p2pkh() || script.is_p2sh() || script.is_p2wpkh() || script.is_p2wsh() || script.is_p2tr();
    if !standard {
        return Err(bad("is not a standard output type (P2PKH, P2SH, P2WPKH, P2WSH, P2TR)"));
    }
    if *script == peg.script_pubkey() {
        return Err(bad("is the peg's own script"));
    }
    Ok(())
}

/// An output's own fee: `⌊rate × its virtual bytes⌋` (outputs weigh whole virtual bytes), the own
/// part [`split_fee`](crate::release::fee::split_fee) gives an output.
fn own_fee(rate: FeeRate, weight: Weight) -> u128 {
    u128::from(rate.sat_per_kvb()) * u128::from(weight.to_wu()) / (u128::from(WEIGHT_PER_VBYTE) * 1_000)
}

/// `⌊claim × payable / claimed⌋`, or the whole claim when the payable covers every claim.
fn pro_rata(claim: u128, payable: u128, claimed: u128) -> u128 {
    if payable >= claimed {
        claim
    } else {
        // claim ≤ 2.1e15 and payable < claimed, so the product (< 4.5e30) fits and claimed > 0.
        claim.saturating_mul(payable) / claimed.max(1)
    }
}

/// A placeholder transaction: version 2, the lock time, one input per outpoint, these outputs.
fn skeleton(lock_time: LockTime, spends: &[OutPoint], output: Vec<TxOut>) -> Transaction {
    let input = spends
        .iter()
        .map(|outpoint| TxIn {
            previous_output: *outpoint,
            script_sig: ScriptBuf::new(),
            sequence: RELEASE_SEQUENCE,
            witness: Witness::new(),
        })
        .collect();
    Transaction { version: Version::TWO, lock_time, input, output }
}

/// The length of Bitcoin's CompactSize encoding of `count`.
fn compact_size_len(count: usize) -> u64 {
    match count {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        _ => 5,
    }
}

/// Packs the claims being paid into fan-outs in claim order, each at most `max_weight` with its
/// longest signatures, and weighs the intermediate that feeds them.
fn lay_out(
    claims: &[Claim],
    paying: &[bool],
    inputs: &[Utxo],
    peg: &Peg,
    max_weight: Weight,
    max_tx_vbytes: u64,
) -> Result<Layout, ExitError> {
    let placeholder = OutPoint { txid: Txid::all_zeros(), vout: 0 };
    let empty_fan_out = skeleton(LockTime::ZERO, &[placeholder], Vec::new());
    // A fan-out weighs its skeleton with no outputs, plus each output, plus the growth of the
    // output count's encoding (4 weight units per byte of it).
    let base = with_longest_signatures(&empty_fan_out, peg, &[peg.witness_script().to_owned()]).weight();
    let weigh = |outputs: usize, output_weight: Weight| {
        base + output_weight + Weight::from_wu(WEIGHT_PER_VBYTE * (compact_size_len(outputs) - 1))
    };
    let mut fan_outs: Vec<(Vec<usize>, Weight)> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_outputs = Weight::ZERO;
    for (index, claim) in claims.iter().enumerate().filter(|(index, _)| paying.get(*index) == Some(&true)) {
        let grown = current_outputs + claim.weight;
        if weigh(current.len() + 1, grown) <= max_weight {
            current.push(index);
            current_outputs = grown;
            continue;
        }
        if current.is_empty() {
            return Err(ExitError::Limits {
                max_tx_vbytes,
                reason: format!("a fan-out paying one output weighs {} vB", weigh(1, grown).to_vbytes_ceil()),
            });
        }
        let weight = weigh(current.len(), current_outputs);
        fan_outs.push((std::mem::take(&mut current), weight));
        current.push(index);
        current_outputs = claim.weight;
    }
    if !current.is_empty() {
        let weight = weigh(current.len(), current_outputs);
        fan_outs.push((current, weight));
    }
    let recipients: usize = fan_outs.iter().map(|(run, _)| run.len()).sum();
    if fan_outs.len() > MAX_FAN_OUTS {
        return Err(ExitError::TooManyFanOuts { recipients, fan_outs: fan_outs.len(), max: MAX_FAN_OUTS });
    }
    let peg_output = TxOut { value: Sats::ZERO, script_pubkey: peg.script_pubkey() };
    let outpoints: Vec<OutPoint> =
        inputs.iter().map(|utxo| OutPoint { txid: Txid::all_zeros(), vout: utxo.vout }).collect();
    let intermediate = skeleton(LockTime::ZERO, &outpoints, vec![peg_output; fan_outs.len() + 1]);
    let scripts: Vec<ScriptBuf> = inputs.iter().map(|utxo| peg.spend_script(utxo.owner.as_ref())).collect();
    let intermediate_weight = with_longest_signatures(&intermediate, peg, &scripts).weight();
    if intermediate_weight > max_weight {
        return Err(ExitError::IntermediateTooLarge {
            inputs: inputs.len(),
            outputs: fan_outs.len() + 1,
            vbytes: intermediate_weight.to_vbytes_ceil(),
            max: max_tx_vbytes,
        });
    }
    Ok(Layout { fan_outs, intermediate_weight })
}

/// `H` of the module doc: the intermediate's fee plus each fan-out's fee beyond its outputs' own fees.
fn overhead(layout: &Layout, claims: &[Claim], rate: FeeRate) -> u128 {
    let fan_outs: u128 = layout
        .fan_outs
        .iter()
        .map(|(run, weight)| {
            let own: u128 = run.iter().filter_map(|index| claims.get(*index)).map(|claim| claim.own_fee).sum();
            // Each own fee rounds down what the whole transaction's fee rounds up.
            fee(rate, *weight).saturating_sub(own)
        })
        .sum();
    fee(rate, layout.intermediate_weight) + fan_outs
}

/// [`FeeRate::fee_for`] as a count of satoshi.
fn fee(rate: FeeRate, weight: Weight) -> u128 {
    u128::from(rate.fee_for(weight).to_sat())
}

/// Builds the transactions of the settled layout and checks the result.
fn build(
    request: &ExitRequest<'_>,
    lock_time: LockTime,
    inputs: Vec<Utxo>,
    claims: &[Claim],
    settled: &Settled,
    reserve: u128,
) -> Result<ExitPlan, ExitError> {
    let peg = request.peg;
    let Settled { layout, overhead, entitled } = settled;
    let overhead = *overhead;
    let paid_set: BTreeSet<usize> = layout.fan_outs.iter().flat_map(|(run, _)| run.iter().copied()).collect();
    let entitled_of = |index: usize| entitled.get(index).copied().unwrap_or(0);
    let payable = reserve.saturating_sub(overhead);
    let paid_entitled: u128 = paid_set.iter().map(|index| entitled_of(*index)).sum();
    let residual = payable.saturating_sub(paid_entitled);
    let peg_dust = u128::from(dust_threshold(&peg.script_pubkey()).to_sat());
    if residual < peg_dust && layout.fan_outs.is_empty() {
        return Err(ExitError::ReserveTooSmall {
            reserve: Amount::new(reserve),
            needed: Amount::new(overhead.saturating_add(peg_dust)),
        });
    }
    let residual = (residual >= peg_dust).then_some(residual);

    // Fan-out outputs and what each fan-out's input must hold.
    let mut recipients = Vec::with_capacity(paid_set.len());
    let mut fan_out_outputs = Vec::with_capacity(layout.fan_outs.len());
    let mut fan_out_values = Vec::with_capacity(layout.fan_outs.len());
    for (fan_out, (run, weight)) in layout.fan_outs.iter().enumerate() {
        let fan_out_fee = fee(request.rate, *weight);
        let mut outputs = Vec::with_capacity(run.len());
        let mut value = fan_out_fee;
        for (vout, index) in run.iter().enumerate() {
            let Some(claim) = claims.get(*index) else { continue };
            let entitled = entitled_of(*index);
            let paid = entitled.saturating_sub(claim.own_fee);
            value = value.saturating_add(paid);
            outputs.push(TxOut { value: sats_of(Amount::new(paid)), script_pubkey: claim.script.clone() });
            recipients.push(Recipient {
                claimant: claim.claimant,
                script: claim.script.clone(),
                claim: Amount::new(claim.amount),
                entitled: Amount::new(entitled),
                fee: Amount::new(claim.own_fee),
                paid: Amount::new(paid),
                fan_out,
                vout: u32::try_from(vout).unwrap_or(u32::MAX),
            });
        }
        fan_out_outputs.push((outputs, fan_out_fee));
        fan_out_values.push(value);
    }
    let pooled = claims
        .iter()
        .enumerate()
        .filter(|(index, claim)| !paid_set.contains(index) && claim.amount > 0)
        .map(|(index, claim)| Pooled {
            claimant: claim.claimant,
            claim: Amount::new(claim.amount),
            entitled: Amount::new(entitled_of(index)),
        })
        .collect();

    let mut intermediate_outputs: Vec<TxOut> = fan_out_values
        .iter()
        .map(|value| TxOut { value: sats_of(Amount::new(*value)), script_pubkey: peg.script_pubkey() })
        .collect();
    if let Some(residual) = residual {
        intermediate_outputs.push(TxOut { value: sats_of(Amount::new(residual)), script_pubkey: peg.script_pubkey() });
    }
    let paid_out: u128 = fan_out_values.iter().sum::<u128>() + residual.unwrap_or(0);
    let intermediate_fee = reserve
        .checked_sub(paid_out)
        .ok_or(ExitError::ReserveTooSmall { reserve: Amount::new(reserve), needed: Amount::new(paid_out) })?;
    let outpoints = inputs.iter().map(Utxo::outpoint).collect::<Result<Vec<_>, _>>().map_err(ExitError::BadReserve)?;
    let intermediate_tx = skeleton(lock_time, &outpoints, intermediate_outputs);
    let intermediate_txid = intermediate_tx.compute_txid();
    let intermediate = ExitTx { tx: intermediate_tx, spends: inputs, fee: Amount::new(intermediate_fee) };

    let fan_outs = fan_out_outputs
        .into_iter()
        .zip(&fan_out_values)
        .enumerate()
        .map(|(vout, ((outputs, fan_out_fee), value))| {
            let vout = u32::try_from(vout).unwrap_or(u32::MAX);
            let spends =
                vec![Utxo { txid: intermediate_txid.to_string(), vout, amount: Amount::new(*value), owner: None }];
            let tx = skeleton(lock_time, &[OutPoint { txid: intermediate_txid, vout }], outputs);
            ExitTx { tx, spends, fee: Amount::new(fan_out_fee) }
        })
        .collect();
    let plan = ExitPlan {
        lock_height: request.lock_height,
        rate: request.rate,
        intermediate,
        fan_outs,
        residual: residual.map(Amount::new),
        recipients,
        pooled,
        overhead: Amount::new(overhead),
    };
    let max_weight = Weight::from_vb_unchecked(request.limits.max_tx_vbytes);
    for (index, tx) in plan.transactions().enumerate() {
        let weight = longest(tx, peg).weight();
        if weight > max_weight {
            // The layout weighed this transaction; a mismatch is a bug, refused rather than signed.
            return Err(ExitError::NonStandard {
                tx: index,
                violation: Violation::TooHeavy { weight: weight.to_wu(), max: max_weight.to_wu() },
            });
        }
    }
    plan.check_standard(peg)?;
    Ok(plan)
}

/// `tx` with every signature at its longest.
fn longest(tx: &ExitTx, peg: &Peg) -> Transaction {
    let scripts: Vec<ScriptBuf> = tx.spends.iter().map(|utxo| peg.spend_script(utxo.owner.as_ref())).collect();
    with_longest_signatures(&tx.tx, peg, &scripts)
}

/// The outputs `tx` spends, for the standardness check.
fn prevouts(tx: &ExitTx, peg: &Peg) -> Vec<TxOut> {
    tx.spends
        .iter()
        .map(|utxo| TxOut {
            value: sats_of(utxo.amount),
            script_pubkey: ScriptBuf::new_p2wsh(&peg.spend_script(utxo.owner.as_ref()).wscript_hash()),
        })
        .collect()
}

/// `amount` as a Bitcoin amount; every amount of a plan was checked to be one.
fn sats_of(amount: Amount) -> Sats {
    Sats::from_sat(u64::try_from(amount.get()).unwrap_or(u64::MAX))
}

/// Every sighash the federation signs for `plan`: per transaction (the intermediate, then each
/// fan-out), per input, the BIP 143 SIGHASH_ALL digest over the input's witness script
/// ([`Peg::spend_script`] of its owner; a fan-out's input is a plain peg output) and its amount —
/// the digest [`crate::release::bitcoin::sighashes`] gives a release input. Flattened in this
/// order they are what a member posts, one DER signature each.
///
/// # Errors
/// [`ExitError::CountMismatch`] if the sighash of an input cannot be computed (a plan not built
/// by [`plan_exit`]).
pub fn exit_sighashes(plan: &ExitPlan, peg: &Peg) -> Result<Vec<Vec<[u8; 32]>>, ExitError> {
    plan.transactions()
        .map(|tx| {
            let mut cache = SighashCache::new(&tx.tx);
            tx.spends
                .iter()
                .enumerate()
                .map(|(index, utxo)| {
                    cache
                        .p2wsh_signature_hash(
                            index,
                            &peg.spend_script(utxo.owner.as_ref()),
                            sats_of(utxo.amount),
                            EcdsaSighashType::All,
                        )
                        .map(|sighash| sighash.to_byte_array())
                        .map_err(|_| ExitError::CountMismatch {
                            what: "inputs",
                            expected: tx.spends.len(),
                            given: tx.tx.input.len(),
                        })
                })
                .collect()
        })
        .collect()
}

/// `sighashes` ([`exit_sighashes`]) as the chain records them: hex, per transaction.
pub fn sighashes_hex(sighashes: &[Vec<[u8; 32]>]) -> Vec<Vec<String>> {
    sighashes.iter().map(|tx| tx.iter().map(hex::encode).collect()).collect()
}

/// The signed transactions of `plan`, in [`ExitPlan::transactions`] order: each input's witness
/// assembled by [`assemble_witness`] from `signatures[tx][input]` (signatures by member index),
/// checked against `sighashes` ([`exit_sighashes`]).
///
/// # Errors
/// [`ExitError::CountMismatch`] when the lists do not have one entry per transaction;
/// [`ExitError::Witness`] naming the transaction when an input lacks `threshold` valid signatures.
pub fn assemble_exit(
    plan: &ExitPlan,
    peg: &Peg,
    sighashes: &[Vec<[u8; 32]>],
    signatures: &[Vec<BTreeMap<usize, Vec<u8>>>],
) -> Result<Vec<Transaction>, ExitError> {
    let count = plan.fan_outs.len() + 1;
    for (what, given) in [("sighash lists", sighashes.len()), ("signature lists", signatures.len())] {
        if given != count {
            return Err(ExitError::CountMismatch { what, expected: count, given });
        }
    }
    plan.transactions()
        .zip(sighashes.iter().zip(signatures))
        .enumerate()
        .map(|(index, (tx, (digests, sets)))| {
            let witnessing = witness_plan(&tx.spends).map_err(|error| ExitError::Witness { tx: index, error })?;
            assemble_witness(&tx.tx, &witnessing, peg, digests, sets)
                .map_err(|error| ExitError::Witness { tx: index, error })
        })
        .collect()
}

/// A release plan spending `spends` in this order (a consolidation of them: no payment, all
/// change). [`assemble_witness`] reads only each input's witness script from the plan it is given,
/// and this plan's are the exit transaction's, so the release code assembles exit witnesses too.
fn witness_plan(spends: &[Utxo]) -> Result<ReleasePlan, BtcReleaseError> {
    let total = Amount::new(spends.iter().map(|utxo| utxo.amount.get()).sum());
    let record = serde_json::json!({ "inputs": spends, "outputs": [], "change": total, "fee": Amount::ZERO });
    serde_json::from_value(record).map_err(|error| BtcReleaseError::Unbalanced(error.to_string()))
}

#[cfg(test)]
mod tests {
    use bitcoin::key::CompressedPublicKey;
    use bitcoin::secp256k1::{SECP256K1, SecretKey};
    use bitcoin::{KnownHrp, Sequence};
    use proptest::prelude::*;

    use super::*;
    use crate::key::address_of_compressed;
    use crate::peg::{BitcoinFederation, BitcoinNetwork};
    use crate::release::bitcoin::sign_input;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Member seeds in federation order (not the script's), a 3-of-4 peg like the devnet's.
    const MEMBERS: [u8; 4] = [4, 1, 3, 2];
    const LOCK: u32 = 900_000;

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_slice(&[seed; 32]).unwrap_or_else(|_| unreachable!("small seeds are valid keys"))
    }

    fn peg() -> Peg {
        let keys = MEMBERS.iter().map(|seed| secret(*seed).public_key(SECP256K1).to_string()).collect();
        Peg::new(&BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: 3, keys })
            .unwrap_or_else(|error| unreachable!("test federation is valid: {error}"))
    }

    fn utxo(byte: u8, vout: u32, amount: u128) -> Utxo {
        Utxo { txid: hex::encode([byte; 32]), vout, amount: Amount::new(amount), owner: None }
    }

    fn holder(byte: u8, balance: u128) -> Holder {
        Holder { account: Address::from_bytes([byte; 20]), balance: Amount::new(balance), recovery_script: None }
    }

    fn request<'a>(
        reserve: &'a [Utxo],
        holders: &'a [Holder],
        peg: &'a Peg,
        rate: FeeRate,
        max_tx_vbytes: u64,
    ) -> ExitRequest<'a> {
        ExitRequest {
            reserve,
            holders,
            withdrawals: &[],
            peg,
            rate,
            lock_height: LOCK,
            limits: ExitLimits { max_tx_vbytes, min_output: Amount::new(1_000) },
        }
    }

    /// Outputs that leave the tree (recipients and residual) plus every fee equal the reserve.
    fn assert_conserves(plan: &ExitPlan) {
        let leaving: u128 =
            plan.recipients().iter().map(|r| r.paid.get()).sum::<u128>() + plan.residual().map_or(0, Amount::get);
        assert_eq!(leaving + plan.fee_total().get(), plan.input_total().get());
        // And each transaction's fee is exactly what its inputs hold beyond its outputs.
        for tx in plan.transactions() {
            let spent: u128 = tx.spends.iter().map(|u| u.amount.get()).sum();
            let paid: u128 = tx.tx.output.iter().map(|o| u128::from(o.value.to_sat())).sum();
            assert_eq!(spent, paid + tx.fee.get());
        }
    }

    #[test]
    fn a_covered_reserve_pays_each_holder_its_balance_less_its_own_output_fee() -> TestResult {
        let peg = peg();
        let reserve = [utxo(1, 0, 600_000), utxo(2, 1, 500_000)];
        let holders = [holder(0xa1, 300_000), holder(0xa2, 200_000), holder(0xa3, 100_000)];
        let rate = FeeRate::from_sat_per_vb(10);
        let plan = plan_exit(&request(&reserve, &holders, &peg, rate, 50_000))?;
        assert_eq!(plan.fan_outs().len(), 1);
        assert!(plan.pooled().is_empty());
        for (recipient, holder) in plan.recipients().iter().zip(&holders) {
            assert_eq!(recipient.entitled, holder.balance, "the pool pays the overhead");
            // A P2WPKH output is 31 vB: 310 sat at 10 sat/vB.
            assert_eq!(recipient.fee, Amount::new(310));
            assert_eq!(recipient.paid.get(), holder.balance.get() - 310);
            assert_eq!(recipient.script, default_recovery_script(&holder.account));
        }
        // The residual is the surplus less the overhead.
        assert_eq!(plan.residual().map(Amount::get), Some(500_000 - plan.overhead().get()));
        assert_conserves(&plan);
        Ok(())
    }

    #[test]
    fn a_short_reserve_pays_pro_rata_with_the_rounding_in_the_residual() -> TestResult {
        let peg = peg();
        let reserve = [utxo(1, 0, 100_000)];
        let holders = [holder(1, 70_001), holder(2, 50_003), holder(3, 33_337)];
        let rate = FeeRate::from_sat_per_vb(2);
        let plan = plan_exit(&request(&reserve, &holders, &peg, rate, 50_000))?;
        let claimed: u128 = holders.iter().map(|h| h.balance.get()).sum();
        let payable = 100_000 - plan.overhead().get();
        for (recipient, holder) in plan.recipients().iter().zip(&holders) {
            assert_eq!(recipient.entitled.get(), holder.balance.get() * payable / claimed);
        }
        let entitled: u128 = plan.recipients().iter().map(|r| r.entitled.get()).sum();
        let remainder = payable - entitled;
        assert!(remainder < 3, "only rounding is left over: {remainder}");
        // Below the peg's dust the remainder goes to the intermediate's fee.
        assert_eq!(plan.residual(), None);
        // The intermediate was priced with the residual's output, which is then left out.
        let residual_output = TxOut { value: Sats::ZERO, script_pubkey: peg.script_pubkey() }.weight();
        let priced = longest(plan.intermediate(), &peg).weight() + residual_output;
        assert_eq!(plan.intermediate().fee.get(), fee(rate, priced) + remainder);
        assert_conserves(&plan);
        Ok(())
    }

    #[test]
    fn holders_below_the_floor_after_their_fee_are_pooled_into_the_residual_and_listed() -> TestResult {
        let peg = peg();
        let reserve = [utxo(1, 0, 2_000_000)];
        // At 20 sat/vB a P2WPKH output costs 620 sat: 1,500 leaves 880 < 1,000.
        let holders = [holder(1, 500_000), holder(2, 1_500), holder(3, 1_620), holder(4, 200)];
        let plan = plan_exit(&request(&reserve, &holders, &peg, FeeRate::from_sat_per_vb(20), 50_000))?;
        let pooled: Vec<(Claimant, u128)> = plan.pooled().iter().map(|p| (p.claimant, p.entitled.get())).collect();
        assert_eq!(
            pooled,
            [
                (Claimant::Holder(Address::from_bytes([2; 20])), 1_500),
                (Claimant::Holder(Address::from_bytes([4; 20])), 200)
            ]
        );
        let paid: Vec<u128> = plan.recipients().iter().map(|r| r.paid.get()).collect();
        assert_eq!(paid, [500_000 - 620, 1_000]);
        let expected_residual = 2_000_000 - plan.overhead().get() - 500_000 - 1_620;
        assert_eq!(plan.residual().map(Amount::get), Some(expected_residual), "pooled value stays at the peg");
        assert_conserves(&plan);
        Ok(())
    }

    #[test]
    fn a_recovery_script_and_an_unpaid_withdrawal_are_paid_where_they_name() -> TestResult {
        let peg = peg();
        let reserve = [utxo(1, 0, 1_000_000)];
        let taproot = ScriptBuf::from_hex(&format!("5120{}", "ab".repeat(32)))?;
        let mut with_recovery = holder(1, 300_000);
        with_recovery.recovery_script = Some(taproot.clone());
        let holders = [with_recovery, holder(2, 100_000)];
        let withdrawal_script = default_recovery_script(&Address::from_bytes([9; 20]));
        let withdrawals = [UnpaidWithdrawal { id: 7, script: withdrawal_script.clone(), amount: Amount::new(50_000) }];
        let plan = plan_exit(&ExitRequest {
            withdrawals: &withdrawals,
            ..request(&reserve, &holders, &peg, FeeRate::from_sat_per_vb(5), 50_000)
        })?;
        let scripts: Vec<(&Claimant, &ScriptBuf)> =
            plan.recipients().iter().map(|r| (&r.claimant, &r.script)).collect();
        assert_eq!(scripts.len(), 3);
        assert_eq!(scripts[0], (&Claimant::Holder(Address::from_bytes([1; 20])), &taproot));
        assert_eq!(scripts[2], (&Claimant::Withdrawal(7), &withdrawal_script));
        // A 43 vB Taproot output costs its own 43 vB.
        assert_eq!(plan.recipients()[0].fee, Amount::new(215));
        // The peg's own script, a non-standard script and a module account are refused.
        let mut to_peg = holder(3, 10_000);
        to_peg.recovery_script = Some(peg.script_pubkey());
        let refused = [to_peg];
        let error = plan_exit(&request(&reserve, &refused, &peg, FeeRate::from_sat_per_vb(5), 50_000))
            .err()
            .ok_or("paid the peg")?;
        assert!(matches!(error, ExitError::BadScript { reason: "is the peg's own script", .. }), "{error}");
        let module = [Holder { account: Address::fee_collector(), balance: Amount::new(5_000), recovery_script: None }];
        assert!(matches!(
            plan_exit(&request(&reserve, &module, &peg, FeeRate::from_sat_per_vb(5), 50_000)),
            Err(ExitError::ModuleAccount(_))
        ));
        Ok(())
    }

    #[test]
    fn the_default_recovery_script_is_the_accounts_own_p2wpkh_address() {
        let key = secret(42).public_key(SECP256K1);
        let account = address_of_compressed(&key.serialize());
        let address = bitcoin::Address::p2wpkh(&CompressedPublicKey(key), KnownHrp::Regtest);
        assert_eq!(default_recovery_script(&account), address.script_pubkey());
    }

    #[test]
    fn every_transaction_is_height_locked_and_the_lock_is_enforced() -> TestResult {
        let peg = peg();
        let reserve: Vec<Utxo> = (0..4).map(|i| utxo(i, 0, 500_000)).collect();
        let holders: Vec<Holder> = (0..60).map(|i| holder(i, 25_000)).collect();
        let plan = plan_exit(&request(&reserve, &holders, &peg, FeeRate::from_sat_per_vb(3), 800))?;
        assert!(plan.fan_outs().len() > 2, "{} fan-outs", plan.fan_outs().len());
        for tx in plan.transactions() {
            assert_eq!(tx.tx.lock_time, LockTime::from_height(LOCK)?);
            assert!(tx.tx.input.iter().all(|input| input.sequence == Sequence(0xFFFF_FFFD)));
            assert!(tx.tx.input.iter().all(|input| input.sequence.enables_absolute_lock_time()));
        }
        // Each fan-out spends its intermediate output, which holds its outputs plus its fee.
        let intermediate = plan.intermediate().tx.compute_txid();
        for (vout, fan_out) in plan.fan_outs().iter().enumerate() {
            assert_eq!(
                fan_out.tx.input[0].previous_output,
                OutPoint { txid: intermediate, vout: u32::try_from(vout)? }
            );
            assert_eq!(
                plan.intermediate().tx.output[vout].value.to_sat(),
                u64::try_from(fan_out.spends[0].amount.get())?
            );
        }
        for vsize in plan.max_vsizes(&peg).iter().skip(1) {
            assert!(*vsize <= 800, "{vsize} vB");
        }
        assert!(matches!(
            plan_exit(&ExitRequest {
                lock_height: 500_000_000,
                ..request(&reserve, &holders, &peg, FeeRate::from_sat_per_vb(3), 800)
            }),
            Err(ExitError::LockHeight(500_000_000))
        ));
        Ok(())
    }

    #[test]
    fn the_same_claims_in_any_order_give_the_same_txids() -> TestResult {
        let peg = peg();
        let reserve: Vec<Utxo> = (0..6).map(|i| utxo(i, i.into(), 150_000 + u128::from(i % 2) * 1_000)).collect();
        let holders: Vec<Holder> = (0..40).map(|i| holder(i, 10_000 + u128::from(i) * 977)).collect();
        let rate = FeeRate::from_sat_per_vb(4);
        let plan = plan_exit(&request(&reserve, &holders, &peg, rate, 1_000))?;
        let (mut reserve_reversed, mut holders_reversed) = (reserve.clone(), holders.clone());
        reserve_reversed.reverse();
        holders_reversed.reverse();
        let again = plan_exit(&request(&reserve_reversed, &holders_reversed, &peg, rate, 1_000))?;
        assert_eq!(again, plan);
        assert_eq!(exit_sighashes(&again, &peg)?, exit_sighashes(&plan, &peg)?);
        let duplicated = [holder(1, 5_000), holder(1, 6_000)];
        assert!(matches!(
            plan_exit(&request(&reserve, &duplicated, &peg, rate, 1_000)),
            Err(ExitError::DuplicateClaimant(_))
        ));
        Ok(())
    }

    #[test]
    fn a_3_of_4_tree_signed_by_three_members_is_standard_and_within_its_estimate() -> TestResult {
        let peg = peg();
        let alice = Address::from_bytes([0xa1; 20]);
        // 25 reserve UTXOs, one of them at a deposit address (a longer witness script).
        let mut reserve: Vec<Utxo> = (0..25).map(|i| utxo(i, 0, 40_000 + u128::from(i) * 1_000)).collect();
        reserve[3].owner = Some(alice);
        let holders: Vec<Holder> = (0..120).map(|i| holder(i, 3_000 + u128::from(i) * 97)).collect();
        let plan = plan_exit(&request(&reserve, &holders, &peg, FeeRate::from_sat_per_vb(2), 3_500))?;
        assert!(plan.fan_outs().len() >= 2);
        let digests = exit_sighashes(&plan, &peg)?;
        assert_eq!(digests.iter().map(Vec::len).sum::<usize>(), plan.signature_count());
        assert_eq!(plan.signature_count(), 25 + plan.fan_outs().len());
        // Members 3, 0 and 2 sign every digest (sign_input, as a signer does).
        let signatures: Vec<Vec<BTreeMap<usize, Vec<u8>>>> = digests
            .iter()
            .map(|tx| {
                tx.iter()
                    .map(|digest| {
                        [3usize, 0, 2].iter().map(|m| (*m, sign_input(&secret(MEMBERS[*m]), digest))).collect()
                    })
                    .collect()
            })
            .collect();
        let signed = assemble_exit(&plan, &peg, &digests, &signatures)?;
        let estimates = plan.max_vsizes(&peg);
        for ((tx, signed), estimate) in plan.transactions().zip(&signed).zip(&estimates) {
            assert_eq!(signed.compute_txid(), tx.tx.compute_txid(), "witnesses do not change the txid");
            let vsize = signed.vsize() as u64;
            assert!(vsize <= *estimate, "signed {vsize} vB above the estimate {estimate}");
            standardness::check(signed, &prevouts(tx, &peg), sats_of(tx.fee))?;
            // The fee pays at least the rate on the signed size.
            assert!(tx.fee.get() >= u128::from(vsize) * 2);
        }
        let owned = plan.inputs().iter().position(|u| u.owner == Some(alice)).ok_or("alice's input is spent")?;
        assert_eq!(signed[0].input[owned].witness.last(), Some(peg.deposit_witness_script(&alice).as_bytes()));
        // Two signatures are not enough.
        let mut short = signatures.clone();
        short[1][0].remove(&3);
        short[1][0].remove(&0);
        assert!(matches!(assemble_exit(&plan, &peg, &digests, &short), Err(ExitError::Witness { tx: 1, .. })));
        Ok(())
    }

    #[test]
    fn the_fan_out_weight_formula_matches_the_built_transaction() -> TestResult {
        let peg = peg();
        // 300 outputs crosses the 253-output step of the output count's encoding.
        let reserve = [utxo(1, 0, 20_000_000)];
        let holders: Vec<Holder> = (0..300u32)
            .map(|i| Holder {
                account: Address::from_bytes({
                    let mut bytes = [0u8; 20];
                    bytes[..4].copy_from_slice(&i.to_be_bytes());
                    bytes
                }),
                balance: Amount::new(50_000),
                recovery_script: None,
            })
            .collect();
        let rate = FeeRate::from_sat_per_vb(1);
        let plan = plan_exit(&request(&reserve, &holders, &peg, rate, 50_000))?;
        assert_eq!(plan.fan_outs().len(), 1);
        let fan_out = &plan.fan_outs()[0];
        assert_eq!(fan_out.tx.output.len(), 300);
        assert_eq!(fan_out.fee.get(), fee(rate, longest(fan_out, &peg).weight()));
        Ok(())
    }

    proptest! {
        /// Whatever the reserve, claims, rate and size limit: the tree conserves value exactly,
        /// no output is below its floor, every transaction is within the limit and standard, and
        /// replanning gives the same txids.
        #[test]
        fn exits_conserve_value_and_respect_floors_and_limits(
            amounts in proptest::collection::vec(2_000u64..3_000_000, 1..8),
            balances in proptest::collection::vec(0u64..400_000, 0..80),
            rate in 1_000u64..40_000,
            max_tx_vbytes in 1_200u64..6_000,
        ) {
            let peg = peg();
            let reserve: Vec<Utxo> = amounts.iter().enumerate()
                .map(|(i, a)| utxo(u8::try_from(i).unwrap_or(0), 0, u128::from(*a))).collect();
            let holders: Vec<Holder> = balances.iter().enumerate()
                .map(|(i, b)| holder(u8::try_from(i).unwrap_or(0), u128::from(*b))).collect();
            let request = request(&reserve, &holders, &peg, FeeRate::from_sat_per_kvb(rate), max_tx_vbytes);
            match plan_exit(&request) {
                Err(error) => prop_assert!(
                    matches!(error, ExitError::ReserveTooSmall { .. } | ExitError::TooManyFanOuts { .. }),
                    "{}", error
                ),
                Ok(plan) => {
                    let leaving: u128 = plan.recipients().iter().map(|r| r.paid.get()).sum::<u128>()
                        + plan.residual().map_or(0, Amount::get);
                    prop_assert_eq!(leaving + plan.fee_total().get(), plan.input_total().get());
                    for tx in plan.transactions() {
                        let spent: u128 = tx.spends.iter().map(|u| u.amount.get()).sum();
                        let paid: u128 = tx.tx.output.iter().map(|o| u128::from(o.value.to_sat())).sum();
                        prop_assert_eq!(spent, paid + tx.fee.get());
                    }
                    for recipient in plan.recipients() {
                        prop_assert!(recipient.paid.get() >= 1_000);
                        prop_assert_eq!(recipient.paid.get() + recipient.fee.get(), recipient.entitled.get());
                        prop_assert!(recipient.entitled <= recipient.claim);
                    }
                    let listed = plan.recipients().len() + plan.pooled().len();
                    prop_assert_eq!(listed, balances.iter().filter(|b| **b > 0).count(), "nobody dropped silently");
                    for vsize in plan.max_vsizes(&peg) {
                        prop_assert!(vsize <= max_tx_vbytes);
                    }
                    prop_assert!(plan.check_standard(&peg).is_ok());
                    let again = plan_exit(&request).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(again.intermediate().tx.compute_txid(), plan.intermediate().tx.compute_txid());
                    prop_assert_eq!(again, plan);
                }
            }
        }
    }
}
