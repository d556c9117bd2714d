//! Bitcoin release transactions: built by the chain from the reserve UTXOs, signed per input by the federation.
//!
//! The chain plans a release deterministically inside consensus ([`plan_release`]: coin
//! selection over the reserve UTXO set, change back to the peg), turns the plan into the
//! unsigned transaction ([`unsigned_transaction`]) whose txid is already final (segwit: the
//! witness is not part of the txid), and hands out one BIP 143 sighash per input
//! ([`sighashes`]). Each member's signer signs every sighash with its Bitcoin key
//! ([`sign_input`]); the chain checks each signature ([`verify_input_signature`]); once an input
//! has `threshold` valid signatures any relayer can build the witness ([`assemble_witness`]) and
//! broadcast.
//!
//! Fixed choices every party must share, since they change the txid or the sighashes:
//! - version 2, lock time 0, every input's sequence `0xFFFFFFFD` (BIP 125 replaceable, no
//!   relative lock time), so a release stuck at a low fee can later be replaced by another
//!   release the federation signs;
//! - inputs in coin-selection order, outputs in the plan's order with the change (if any) last;
//! - SIGHASH_ALL, segwit v0, over the input's witness script (the peg's, or the deposit address
//!   script of the account the UTXO names, [`Peg::spend_script`]) and the input's amount.
//!
//! Signatures travel as strict DER, low-S, *without* the sighash-type byte; the witness gets
//! `0x01` (SIGHASH_ALL) appended when it is assembled.
//!
//! Pure: no I/O, no clock, no randomness (signing is RFC 6979 deterministic). It must not
//! depend on anything that differs between the chain, signers and relayers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use bitcoin::absolute::LockTime;
use bitcoin::address::{AddressType, NetworkUnchecked};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{Message, SECP256K1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount as Sats, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::amount::Amount;
use crate::peg::{BitcoinNetwork, Peg};
use crate::release::fee::{FeeRate, split_fee};
use crate::release::standardness::{self, Violation, dust_threshold, with_longest_signatures};

/// Every release input's sequence: BIP 125 replaceable, no relative lock time (`0xFFFFFFFD`).
pub const RELEASE_SEQUENCE: Sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;

/// The most inputs a release spends. With the largest federation the peg allows (16-of-16),
/// an input weighs at most ~1,900 weight units signed, so 150 inputs and [`MAX_RELEASE_OUTPUTS`]
/// outputs stay under the 400,000 weight units a standard transaction may have.
pub const MAX_RELEASE_INPUTS: usize = 150;

/// The most reserve UTXOs one consolidation spends (standard for any federation size).
pub const CONSOLIDATION_INPUTS: usize = 100;

/// The most outputs a release pays, change included (see [`MAX_RELEASE_INPUTS`]).
pub const MAX_RELEASE_OUTPUTS: usize = 500;

/// The sighash-type byte appended to each signature in the witness: SIGHASH_ALL.
const SIGHASH_ALL_BYTE: u8 = 0x01;

/// A reserve UTXO of the peg: an output of a confirmed deposit (or of a release's change).
///
/// Ordered by `(txid, vout)` (then amount, which an outpoint determines anyway).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Utxo {
    /// The txid in display order: 64 lowercase hex digits, as block explorers and RPCs print it.
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Value in satoshi.
    pub amount: Amount,
    /// The account whose deposit address this output pays ([`Peg::deposit_witness_script`]);
    /// `None` for the peg's own script. Decides the witness script that spends it.
    #[serde(default)]
    pub owner: Option<Address>,
}

impl Utxo {
    /// The outpoint this UTXO is.
    ///
    /// # Errors
    /// [`BtcReleaseError::BadUtxo`] when the txid is not 64 lowercase hex digits.
    pub fn outpoint(&self) -> Result<OutPoint, BtcReleaseError> {
        let bad = || BtcReleaseError::BadUtxo {
            utxo: self.to_string(),
            reason: "the txid is not 64 lowercase hex digits".to_owned(),
        };
        let txid = Txid::from_str(&self.txid).map_err(|_| bad())?;
        // Every party orders UTXOs by this text, so only one spelling of a txid is accepted.
        if txid.to_string() != self.txid {
            return Err(bad());
        }
        Ok(OutPoint { txid, vout: self.vout })
    }
}

impl fmt::Display for Utxo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

/// One payment of a release: a withdrawal's destination and what it receives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseOutput {
    /// The address as the user wrote it (for display and audit; the script below is what is paid).
    pub destination: String,
    /// The output script paid, hex on the wire.
    #[serde(with = "script_hex")]
    pub script_pubkey: ScriptBuf,
    /// Value in satoshi.
    pub amount: Amount,
}

impl ReleaseOutput {
    /// A payment of `amount` to `destination`, an address of `network`.
    ///
    /// # Errors
    /// As [`parse_destination`].
    pub fn new(destination: &str, network: BitcoinNetwork, amount: Amount) -> Result<Self, BtcReleaseError> {
        Ok(ReleaseOutput {
            destination: destination.to_owned(),
            script_pubkey: parse_destination(destination, network)?,
            amount,
        })
    }
}

/// What a release spends and pays. Built only by [`plan_release`] (or read back through serde,
/// which checks the same invariants): every txid is canonical, no UTXO appears twice, every
/// amount is a valid Bitcoin amount, and `inputs = outputs + fee + change` exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PlanRecord", into = "PlanRecord")]
pub struct ReleasePlan {
    inputs: Vec<Utxo>,
    outputs: Vec<ReleaseOutput>,
    change: Option<Amount>,
    fee: Amount,
    /// The inputs as outpoints with their values, in input order.
    spends: Vec<(OutPoint, Sats)>,
    /// The outputs as transaction outputs (without the change), in output order.
    pays: Vec<TxOut>,
    /// The change value.
    change_sats: Option<Sats>,
}

/// A [`ReleasePlan`]'s serialized form.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanRecord {
    inputs: Vec<Utxo>,
    outputs: Vec<ReleaseOutput>,
    change: Option<Amount>,
    fee: Amount,
}

impl ReleasePlan {
    /// Checks the invariants and derives the transaction parts.
    fn from_parts(
        inputs: Vec<Utxo>,
        outputs: Vec<ReleaseOutput>,
        change: Option<Amount>,
        fee: Amount,
    ) -> Result<ReleasePlan, BtcReleaseError> {
        if inputs.is_empty() {
            return Err(BtcReleaseError::Unbalanced("a release spends at least one input".to_owned()));
        }
        if inputs.len() > MAX_RELEASE_INPUTS {
            return Err(BtcReleaseError::TooManyInputs { needed: inputs.len(), max: MAX_RELEASE_INPUTS });
        }
        // A consolidation pays nothing but its change back to the peg.
        if !(outputs.is_empty() && change.is_some()) {
            check_outputs(&outputs)?;
        }
        let total_outputs = outputs.len() + usize::from(change.is_some());
        if total_outputs > MAX_RELEASE_OUTPUTS {
            return Err(BtcReleaseError::TooManyOutputs { outputs: total_outputs, max: MAX_RELEASE_OUTPUTS });
        }
        let mut seen = BTreeSet::new();
        let mut spends = Vec::with_capacity(inputs.len());
        for utxo in &inputs {
            let outpoint = utxo.outpoint()?;
            if !seen.insert(outpoint) {
                return Err(BtcReleaseError::DuplicateUtxo(utxo.to_string()));
            }
            spends.push((outpoint, sats(utxo.amount, || format!("reserve UTXO {utxo}"))?));
        }
        let pays = outputs
            .iter()
            .enumerate()
            .map(|(index, output)| {
                let value = sats(output.amount, || format!("output {index} to {}", output.destination))?;
                Ok(TxOut { value, script_pubkey: output.script_pubkey.clone() })
            })
            .collect::<Result<Vec<_>, BtcReleaseError>>()?;
        let change_sats = match change {
            Some(amount) if amount.is_zero() => {
                return Err(BtcReleaseError::Unbalanced("a change output of 0 sat".to_owned()));
            }
            Some(amount) => Some(sats(amount, || "change".to_owned())?),
            None => None,
        };
        sats(fee, || "fee".to_owned())?;
        let spent = sum(inputs.iter().map(|utxo| utxo.amount))?;
        let paid = sum(outputs.iter().map(|output| output.amount).chain([fee, change.unwrap_or(Amount::ZERO)]))?;
        if spent != paid {
            return Err(BtcReleaseError::Unbalanced(format!(
                "inputs hold {spent} sat but outputs + fee + change come to {paid} sat"
            )));
        }
        Ok(ReleasePlan { inputs, outputs, change, fee, spends, pays, change_sats })
    }

    /// The reserve UTXOs spent, in input order.
    pub fn inputs(&self) -> &[Utxo] {
        &self.inputs
    }

    /// The payments, in output order (the change output, if any, follows them).
    pub fn outputs(&self) -> &[ReleaseOutput] {
        &self.outputs
    }

    /// The change paid back to the peg, if any (never below the dust limit it was planned with).
    pub fn change(&self) -> Option<Amount> {
        self.change
    }

    /// The miner fee: exactly what the inputs hold beyond the outputs and the change.
    pub fn fee(&self) -> Amount {
        self.fee
    }

    /// The index of the change output in the transaction (it is the last output), if any: with the
    /// txid, the new reserve UTXO the release creates.
    pub fn change_vout(&self) -> Option<u32> {
        self.change.map(|_| u32::try_from(self.outputs.len()).unwrap_or(u32::MAX))
    }

    /// The total value of the inputs.
    pub fn input_total(&self) -> Amount {
        // `from_parts` checked the sum fits.
        sum(self.inputs.iter().map(|utxo| utxo.amount)).unwrap_or(Amount::ZERO)
    }

    /// An upper bound of the signed transaction's virtual size for `peg`: the size of
    /// [`with_longest_signatures`] of its unsigned transaction.
    pub fn max_vsize(&self, peg: &Peg) -> u64 {
        self.longest(peg).weight().to_vbytes_ceil()
    }

    /// Each input's witness script, in input order ([`Peg::spend_script`] of its owner).
    pub fn witness_scripts(&self, peg: &Peg) -> Vec<ScriptBuf> {
        self.inputs.iter().map(|utxo| peg.spend_script(utxo.owner.as_ref())).collect()
    }

    /// The unsigned transaction with every signature at its longest ([`with_longest_signatures`]).
    fn longest(&self, peg: &Peg) -> Transaction {
        with_longest_signatures(&unsigned_transaction(self, peg), peg, &self.witness_scripts(peg))
    }

    /// Checks the release against Bitcoin's standardness policy, fee included, with every
    /// signature at its longest ([`standardness::check`] on [`with_longest_signatures`]), so it
    /// is decided before anyone signs.
    ///
    /// # Errors
    /// The [`Violation`] found, naming the input or output.
    pub fn check_standard(&self, peg: &Peg) -> Result<(), Violation> {
        let longest = self.longest(peg);
        let prevouts: Vec<TxOut> = self
            .spends
            .iter()
            .zip(self.witness_scripts(peg))
            .map(|((_, value), script)| TxOut {
                value: *value,
                script_pubkey: ScriptBuf::new_p2wsh(&script.wscript_hash()),
            })
            .collect();
        // `from_parts` checked that the fee is a Bitcoin amount.
        let fee = Sats::from_sat(u64::try_from(self.fee.get()).unwrap_or(u64::MAX));
        standardness::check(&longest, &prevouts, fee)
    }
}

impl TryFrom<PlanRecord> for ReleasePlan {
    type Error = BtcReleaseError;

    fn try_from(record: PlanRecord) -> Result<Self, Self::Error> {
        ReleasePlan::from_parts(record.inputs, record.outputs, record.change, record.fee)
    }
}

impl From<ReleasePlan> for PlanRecord {
    fn from(plan: ReleasePlan) -> Self {
        PlanRecord { inputs: plan.inputs, outputs: plan.outputs, change: plan.change, fee: plan.fee }
    }
}

/// Why a release could not be planned, built, signed or assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtcReleaseError {
    /// The text is not a Bitcoin address.
    #[error("`{address}` is not a Bitcoin address: {reason}")]
    NotAnAddress {
        /// The text given.
        address: String,
        /// What the parser said.
        reason: String,
    },
    /// The address belongs to another network.
    #[error("address `{address}` is for {address_network}; this peg is on {peg_network}")]
    WrongNetwork {
        /// The address.
        address: String,
        /// The network(s) it is valid for.
        address_network: String,
        /// The peg's network.
        peg_network: BitcoinNetwork,
    },
    /// The address is valid but not one the peg pays (P2PKH, P2SH, P2WPKH, P2WSH, P2TR).
    #[error("address `{address}` is {kind}; releases pay only P2PKH, P2SH, P2WPKH, P2WSH or P2TR addresses")]
    UnsupportedAddress {
        /// The address.
        address: String,
        /// What kind of address it is.
        kind: String,
    },
    /// The release pays nothing.
    #[error("a release needs at least one output")]
    NoOutputs,
    /// An output is below the dust limit (nodes would not relay the transaction).
    #[error("output {index} to `{destination}` pays {amount} sat, below the dust limit of {dust_limit} sat")]
    OutputBelowDust {
        /// Position in the outputs.
        index: usize,
        /// Its destination.
        destination: String,
        /// Its amount.
        amount: Amount,
        /// The limit.
        dust_limit: Amount,
    },
    /// A reserve UTXO record is malformed.
    #[error("reserve UTXO {utxo}: {reason}")]
    BadUtxo {
        /// The UTXO (`txid:vout`).
        utxo: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A reserve UTXO is listed twice.
    #[error("reserve UTXO {0} is listed twice")]
    DuplicateUtxo(String),
    /// An amount is not a valid Bitcoin amount (above 21,000,000 BTC), or a sum overflowed.
    #[error("{what}: {amount} sat is not a valid Bitcoin amount (at most 21,000,000 BTC)")]
    AmountOutOfRange {
        /// Which amount.
        what: String,
        /// Its value.
        amount: Amount,
    },
    /// The reserves cannot cover the outputs and the fee: the batch must wait for deposits.
    #[error(
        "reserves of {available} sat cannot cover {needed} sat (outputs + fee); the batch must wait for more reserves"
    )]
    InsufficientReserves {
        /// Outputs + fee.
        needed: Amount,
        /// All reserve UTXOs together.
        available: Amount,
    },
    /// Every reserve UTXO is spent and the change would still be dust, which the chain will not
    /// give to miners (supply and reserves stay exactly reconciled): the batch must wait.
    #[error(
        "change of {change} sat is below the dust limit of {dust_limit} sat and no reserve UTXO is left to add; \
         the batch must wait for more reserves"
    )]
    DustChange {
        /// The change left over.
        change: Amount,
        /// The dust limit.
        dust_limit: Amount,
    },
    /// Covering the release takes more inputs than a standard transaction can hold.
    #[error("covering the release needs {needed} reserve UTXOs, more than the {max} a release may spend")]
    TooManyInputs {
        /// Inputs needed.
        needed: usize,
        /// The limit.
        max: usize,
    },
    /// More outputs than a standard transaction can hold.
    #[error("a release of {outputs} outputs (change included) exceeds the limit of {max}")]
    TooManyOutputs {
        /// Outputs requested.
        outputs: usize,
        /// The limit.
        max: usize,
    },
    /// A plan whose amounts do not add up (a stored plan that was altered).
    #[error("release plan does not balance: {0}")]
    Unbalanced(String),
    /// The transaction is not the plan's.
    #[error("transaction {got} is not the plan's transaction {expected}")]
    TransactionMismatch {
        /// The plan's txid.
        expected: Txid,
        /// The txid given.
        got: Txid,
    },
    /// A withdrawal's share of the fee at this rate is more than its `max_fee`: it waits for a
    /// lower rate (or a batch that shares the fee among more withdrawals).
    #[error(
        "output {index} to `{destination}`: its share of the fee at {rate} is {share} sat, above its max_fee of {max_fee} sat"
    )]
    FeeOverBudget {
        /// Position in the outputs.
        index: usize,
        /// Its destination.
        destination: String,
        /// The fee rate priced at.
        rate: FeeRate,
        /// Its share of the fee.
        share: Amount,
        /// Its budget.
        max_fee: Amount,
    },
    /// A replacement would pay another destination than the version it replaces.
    #[error("output {index} of the replacement pays `{destination}`, the version it replaces `{previous}`")]
    ReplacementDestination {
        /// Position in the outputs.
        index: usize,
        /// What the replacement pays.
        destination: String,
        /// What the replaced version paid.
        previous: String,
    },
    /// The withdrawals' budgets leave no room for a replacement nodes would accept.
    #[error(
        "a replacement at {rate} can pay {fee} sat within the withdrawals' budgets; nodes replace only for {needed} sat or more"
    )]
    ReplacementTooCheap {
        /// The most the budgets allow.
        fee: Amount,
        /// The previous fee plus the incremental relay fee on the size.
        needed: Amount,
        /// The rate tried.
        rate: FeeRate,
    },
    /// The release would break Bitcoin's standardness policy, so nodes would not relay it.
    #[error("the release would not be relayed: {0}")]
    NonStandard(Violation),
    /// The number of per-input items does not match the transaction's inputs.
    #[error("the transaction has {inputs} inputs but {given} {what} were given")]
    InputCountMismatch {
        /// Inputs of the transaction.
        inputs: usize,
        /// Items given.
        given: usize,
        /// What they are ("sighashes", "signature sets").
        what: &'static str,
    },
    /// No member has this index.
    #[error("no federation member {member} (the federation has {members} members)")]
    UnknownMember {
        /// The index given.
        member: usize,
        /// The federation's size.
        members: usize,
    },
    /// The signature is not strict DER (a trailing sighash-type byte counts as malformed).
    #[error("signature of member {member} is not a strict DER ECDSA signature without sighash type: {reason}")]
    MalformedSignature {
        /// The member.
        member: usize,
        /// What is wrong.
        reason: String,
    },
    /// The signature has a high S value (malleable; nodes refuse it).
    #[error("signature of member {member} has a high S value; only low-S signatures are accepted")]
    HighS {
        /// The member.
        member: usize,
    },
    /// The signature does not verify against the sighash with the member's key.
    #[error("signature of member {member} does not verify against sighash {sighash} with the member's key")]
    SignatureMismatch {
        /// The member.
        member: usize,
        /// The sighash (hex).
        sighash: String,
    },
    /// An input has fewer than `threshold` valid signatures.
    #[error("input {input} has {valid} valid signatures, {needed} needed{}", refused_note(refused))]
    NotEnoughSignatures {
        /// The input.
        input: usize,
        /// Valid signatures found.
        valid: usize,
        /// The threshold.
        needed: usize,
        /// The signatures refused, with the reason.
        refused: Vec<String>,
    },
}

impl BtcReleaseError {
    /// Whether the release cannot be built *yet* — the reserves are short or too fragmented —
    /// so the withdrawals should stay queued and be batched later, rather than being refused.
    pub fn must_wait(&self) -> bool {
        matches!(
            self,
            BtcReleaseError::InsufficientReserves { .. }
                | BtcReleaseError::DustChange { .. }
                | BtcReleaseError::TooManyInputs { .. }
                | BtcReleaseError::NonStandard(_)
        )
    }

    /// The output (withdrawal) this error is about, when leaving that one out of the release
    /// could let the others go: its fee share is over its budget, or what it would receive is dust.
    pub fn blocking_output(&self) -> Option<usize> {
        match self {
            BtcReleaseError::FeeOverBudget { index, .. } | BtcReleaseError::OutputBelowDust { index, .. } => {
                Some(*index)
            }
            _ => None,
        }
    }
}

fn refused_note(refused: &[String]) -> String {
    if refused.is_empty() { String::new() } else { format!(" (refused: {})", refused.join("; ")) }
}

/// The output script paying `address`, which must be a standard address (P2PKH, P2SH, P2WPKH,
/// P2WSH or P2TR) of `network`.
///
/// Legacy (base58) testnet addresses are also regtest and signet addresses — Bitcoin gives the
/// three one prefix — so they are accepted on any of those networks; bech32 addresses are not.
///
/// # Errors
/// [`BtcReleaseError::NotAnAddress`], [`BtcReleaseError::WrongNetwork`] (naming the address's
/// network) or [`BtcReleaseError::UnsupportedAddress`].
pub fn parse_destination(address: &str, network: BitcoinNetwork) -> Result<ScriptBuf, BtcReleaseError> {
    let unchecked: bitcoin::Address<NetworkUnchecked> =
        address.parse().map_err(|error: bitcoin::address::ParseError| BtcReleaseError::NotAnAddress {
            address: address.to_owned(),
            reason: error.to_string(),
        })?;
    if !unchecked.is_valid_for_network(network.network()) {
        let networks: Vec<String> =
            [BitcoinNetwork::Bitcoin, BitcoinNetwork::Testnet, BitcoinNetwork::Signet, BitcoinNetwork::Regtest]
                .into_iter()
                .filter(|candidate| unchecked.is_valid_for_network(candidate.network()))
                .map(|candidate| candidate.to_string())
                .collect();
        let address_network = if networks.is_empty() { "another network".to_owned() } else { networks.join(" or ") };
        return Err(BtcReleaseError::WrongNetwork {
            address: address.to_owned(),
            address_network,
            peg_network: network,
        });
    }
    let checked = unchecked.assume_checked();
    let unsupported = |kind: String| BtcReleaseError::UnsupportedAddress { address: address.to_owned(), kind };
    match checked.address_type() {
        Some(AddressType::P2pkh | AddressType::P2sh | AddressType::P2wpkh | AddressType::P2wsh | AddressType::P2tr) => {
            Ok(checked.script_pubkey())
        }
        Some(AddressType::P2a) => Err(unsupported("a pay-to-anchor output, which anyone can spend".to_owned())),
        Some(other) => Err(unsupported(format!("of type {other}"))),
        None => Err(unsupported(match checked.witness_program() {
            Some(program) => format!("a segwit version {} program", program.version().to_num()),
            None => "of an unknown type".to_owned(),
        })),
    }
}

/// Plans a release paying `outputs` (in this order) plus `fee` to miners from `utxos`.
///
/// Coin selection, the same for every party whatever order `utxos` come in: sort the UTXOs by
/// amount, largest first, ties by `(txid, vout)`; take them in that order until they cover
/// `sum(outputs) + fee` — the fewest inputs that can. Change at or above `dust_limit` goes back
/// to the peg as the last output. When the change is positive but below `dust_limit`, take the
/// next UTXO too (repeatedly, while the change stays dust); if none is left, refuse with
/// [`BtcReleaseError::DustChange`]: the chain never gives residue to miners, so the batch waits.
///
/// # Errors
/// Malformed inputs ([`BtcReleaseError::NoOutputs`], [`BtcReleaseError::OutputBelowDust`],
/// [`BtcReleaseError::BadUtxo`], [`BtcReleaseError::DuplicateUtxo`],
/// [`BtcReleaseError::AmountOutOfRange`], [`BtcReleaseError::TooManyOutputs`]), or reserves that
/// cannot pay the release yet ([`BtcReleaseError::must_wait`]).
pub fn plan_release(
    utxos: &[Utxo],
    outputs: &[ReleaseOutput],
    fee: Amount,
    dust_limit: Amount,
) -> Result<ReleasePlan, BtcReleaseError> {
    check_outputs(outputs)?;
    for (index, output) in outputs.iter().enumerate() {
        if output.amount.is_zero() || output.amount < dust_limit {
            return Err(BtcReleaseError::OutputBelowDust {
                index,
                destination: output.destination.clone(),
                amount: output.amount,
                dust_limit,
            });
        }
    }
    let mut seen = BTreeSet::new();
    for utxo in utxos {
        utxo.outpoint()?;
        sats(utxo.amount, || format!("reserve UTXO {utxo}"))?;
        if !seen.insert((utxo.txid.as_str(), utxo.vout)) {
            return Err(BtcReleaseError::DuplicateUtxo(utxo.to_string()));
        }
    }
    let needed = sum(outputs.iter().map(|output| output.amount).chain([fee]))?;
    let available = sum(utxos.iter().map(|utxo| utxo.amount))?;

    let mut candidates: Vec<&Utxo> = utxos.iter().collect();
    candidates.sort_by(|a, b| b.amount.cmp(&a.amount).then_with(|| (&a.txid, a.vout).cmp(&(&b.txid, b.vout))));
    let mut candidates = candidates.into_iter();
    let mut inputs = Vec::new();
    let mut selected = Amount::ZERO;
    while selected < needed {
        let Some(utxo) = candidates.next() else {
            return Err(BtcReleaseError::InsufficientReserves { needed, available });
        };
        selected = selected.checked_add(utxo.amount).map_err(|_| out_of_range("selected inputs", available))?;
        inputs.push(utxo.clone());
    }
    let mut change = selected.checked_sub(needed).map_err(|_| out_of_range("change", selected))?;
    while !change.is_zero() && change < dust_limit {
        let Some(utxo) = candidates.next() else {
            return Err(BtcReleaseError::DustChange { change, dust_limit });
        };
        change = change.checked_add(utxo.amount).map_err(|_| out_of_range("change", change))?;
        inputs.push(utxo.clone());
    }
    if inputs.len() > MAX_RELEASE_INPUTS {
        return Err(BtcReleaseError::TooManyInputs { needed: inputs.len(), max: MAX_RELEASE_INPUTS });
    }
    let change = if change.is_zero() { None } else { Some(change) };
    ReleasePlan::from_parts(inputs, outputs.to_vec(), change, fee)
}

/// One withdrawal a release pays: where, what was burned for it, and the most of that which may
/// go to miners (its `max_fee`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRequest {
    /// The destination address.
    pub destination: String,
    /// The amount burned: what the output gets before its share of the fee.
    pub burned: Amount,
    /// The largest fee share it accepts.
    pub max_fee: Amount,
}

/// A release priced at a fee rate: its plan and each withdrawal's share of the fee, in output
/// order (`burned − share` is what the output pays; the shares add up to the plan's fee).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedRelease {
    /// The plan.
    pub plan: ReleasePlan,
    /// Each withdrawal's share of the fee.
    pub shares: Vec<Amount>,
}

/// Plans a release paying `requests` at `rate`: coin selection as [`plan_release`] over the
/// burned amounts (the fee comes out of them, so what is selected does not depend on it), then
/// [`price_release`].
///
/// # Errors
/// As [`plan_release`] and [`price_release`].
pub fn plan_release_at_rate(
    utxos: &[Utxo],
    requests: &[ReleaseRequest],
    rate: FeeRate,
    peg: &Peg,
    dust_limit: Amount,
) -> Result<PricedRelease, BtcReleaseError> {
    let burned = burned_outputs(requests, peg.network())?;
    let selected = plan_release(utxos, &burned, Amount::ZERO, dust_limit)?;
    price_release(selected.inputs(), selected.change(), requests, rate, peg, dust_limit)
}

/// Prices the release spending `inputs` (which hold exactly the burned amounts plus `change`)
/// and paying `requests` at `rate`: the fee is `rate ×` the transaction's size with every
/// signature at its longest, split by [`split_fee`]; each output pays its burned amount minus
/// its share. The chain calls this through [`plan_release_at_rate`]; a signer calls it on the
/// chain's inputs to rebuild the same plan.
///
/// # Errors
/// [`BtcReleaseError::FeeOverBudget`] or [`BtcReleaseError::OutputBelowDust`] naming the first
/// withdrawal that cannot pay its share ([`BtcReleaseError::blocking_output`]);
/// [`BtcReleaseError::NonStandard`]; [`BtcReleaseError::Unbalanced`] when the inputs do not hold
/// the burned amounts plus the change; malformed destinations or amounts.
pub fn price_release(
    inputs: &[Utxo],
    change: Option<Amount>,
    requests: &[ReleaseRequest],
    rate: FeeRate,
    peg: &Peg,
    dust_limit: Amount,
) -> Result<PricedRelease, BtcReleaseError> {
    let burned = burned_outputs(requests, peg.network())?;
    let unpriced = ReleasePlan::from_parts(inputs.to_vec(), burned, change, Amount::ZERO)?;
    let longest = unpriced.longest(peg);
    let output_weights: Vec<bitcoin::Weight> = unpriced.pays.iter().map(TxOut::weight).collect();
    let shares = split_fee(longest.weight(), &output_weights, rate)
        .map_err(|error| BtcReleaseError::Unbalanced(error.to_string()))?;
    let mut outputs = Vec::with_capacity(requests.len());
    let mut priced_shares = Vec::with_capacity(requests.len());
    for (index, ((request, share), output)) in requests.iter().zip(&shares).zip(unpriced.outputs).enumerate() {
        let share = Amount::new(u128::from(share.to_sat()));
        if share > request.max_fee {
            return Err(BtcReleaseError::FeeOverBudget {
                index,
                destination: request.destination.clone(),
                rate,
                share,
                max_fee: request.max_fee,
            });
        }
        outputs.push(paying(index, request, share, output, dust_limit)?);
        priced_shares.push(share);
    }
    let fee = sum(priced_shares.iter().copied())?;
    let plan = ReleasePlan::from_parts(inputs.to_vec(), outputs, change, fee)?;
    plan.check_standard(peg).map_err(BtcReleaseError::NonStandard)?;
    Ok(PricedRelease { plan, shares: priced_shares })
}

/// Prices the replacement of `previous` at `rate` (BIP 125): the same inputs, change and
/// destinations in the same order; each withdrawal's share is its share at `rate` (split as in
/// [`price_release`]) capped by its `max_fee`, and never below its share in `previous`, so no
/// output is paid more than before. The fee must exceed the previous fee by at least the
/// incremental relay fee (1 sat/vB) on the replacement's size, or nodes would not replace it.
///
/// # Errors
/// [`BtcReleaseError::ReplacementDestination`] when a destination differs from `previous`'s;
/// [`BtcReleaseError::ReplacementTooCheap`] when the budgets leave no room for a high enough
/// fee; [`BtcReleaseError::NonStandard`]; [`BtcReleaseError::Unbalanced`] when the requests are
/// not `previous`'s withdrawals.
pub fn price_replacement(
    previous: &ReleasePlan,
    requests: &[ReleaseRequest],
    rate: FeeRate,
    peg: &Peg,
    dust_limit: Amount,
) -> Result<PricedRelease, BtcReleaseError> {
    if requests.len() != previous.outputs().len() {
        return Err(BtcReleaseError::Unbalanced(format!(
            "{} withdrawals for a release paying {} outputs",
            requests.len(),
            previous.outputs().len()
        )));
    }
    let burned = burned_outputs(requests, peg.network())?;
    for (index, (ours, theirs)) in burned.iter().zip(previous.outputs()).enumerate() {
        if ours.script_pubkey != theirs.script_pubkey {
            return Err(BtcReleaseError::ReplacementDestination {
                index,
                destination: ours.destination.clone(),
                previous: theirs.destination.clone(),
            });
        }
    }
    let unpriced = ReleasePlan::from_parts(previous.inputs().to_vec(), burned, previous.change(), Amount::ZERO)?;
    let longest = unpriced.longest(peg);
    let output_weights: Vec<bitcoin::Weight> = unpriced.pays.iter().map(TxOut::weight).collect();
    let at_rate = split_fee(longest.weight(), &output_weights, rate)
        .map_err(|error| BtcReleaseError::Unbalanced(error.to_string()))?;
    let mut outputs = Vec::with_capacity(requests.len());
    let mut shares = Vec::with_capacity(requests.len());
    for (index, ((request, share), (output, before))) in
        requests.iter().zip(&at_rate).zip(unpriced.outputs.into_iter().zip(previous.outputs())).enumerate()
    {
        let before_share = request.burned.checked_sub(before.amount).map_err(|_| {
            BtcReleaseError::Unbalanced(format!("output {index} paid {} of a {} burn", before.amount, request.burned))
        })?;
        let share = Amount::new(u128::from(share.to_sat())).min(request.max_fee).max(before_share);
        outputs.push(paying(index, request, share, output, dust_limit)?);
        shares.push(share);
    }
    let fee = sum(shares.iter().copied())?;
    check_replacement_fee(previous, fee, longest.weight(), rate)?;
    let plan = ReleasePlan::from_parts(previous.inputs().to_vec(), outputs, previous.change(), fee)?;
    plan.check_standard(peg).map_err(BtcReleaseError::NonStandard)?;
    Ok(PricedRelease { plan, shares })
}

/// BIP 125's rule that a replacement pays for its own relay: its `fee` must be at least the fee
/// of `previous` plus the incremental relay fee (1 sat/vB) on its size (`weight`).
///
/// # Errors
/// [`BtcReleaseError::ReplacementTooCheap`] naming the fee needed.
fn check_replacement_fee(
    previous: &ReleasePlan,
    fee: Amount,
    weight: bitcoin::Weight,
    rate: FeeRate,
) -> Result<(), BtcReleaseError> {
    let increment = Amount::new(u128::from(standardness::min_relay_fee(weight.to_vbytes_ceil()).to_sat()));
    let needed = previous.fee().checked_add(increment).map_err(|_| out_of_range("fee", previous.fee()))?;
    if fee < needed {
        return Err(BtcReleaseError::ReplacementTooCheap { fee, needed, rate });
    }
    Ok(())
}

/// What spending one reserve output costs at `rate`: the weight one more input adds to a
/// release, with its witness at its longest (the peg's script, or `owner`'s deposit address
/// script, [`Peg::spend_script`]). A Bitcoin deposit prepays this into the fee pool, which pays
/// the consolidations that spend small deposits.
pub fn input_spend_fee(peg: &Peg, owner: Option<&Address>, rate: FeeRate) -> Amount {
    let input = |vout: u32| TxIn {
        previous_output: OutPoint { txid: Txid::all_zeros(), vout },
        script_sig: ScriptBuf::new(),
        sequence: RELEASE_SEQUENCE,
        witness: Witness::new(),
    };
    let with_inputs = |count: u32| {
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: (0..count).map(input).collect(),
            output: vec![TxOut { value: Sats::from_sat(100_000), script_pubkey: peg.script_pubkey() }],
        };
        let scripts = vec![peg.spend_script(owner); tx.input.len()];
        with_longest_signatures(&tx, peg, &scripts).weight()
    };
    let one_input = with_inputs(2) - with_inputs(1);
    Amount::new(u128::from(rate.fee_for(one_input).to_sat()))
}

/// Plans a consolidation: `inputs` spent into one output back to the peg (the change), paying
/// `rate ×` its size with the longest signatures from the fee pool (the output is the inputs less
/// the fee). A replacement is the same inputs planned again at a higher rate.
///
/// # Errors
/// [`BtcReleaseError::Unbalanced`] for fewer than two inputs; [`BtcReleaseError::DustChange`]
/// when the inputs cannot pay the fee and leave more than the dust limit;
/// [`BtcReleaseError::NonStandard`]; malformed inputs.
pub fn plan_consolidation(
    inputs: &[Utxo],
    rate: FeeRate,
    peg: &Peg,
    dust_limit: Amount,
) -> Result<ReleasePlan, BtcReleaseError> {
    if inputs.is_empty() {
        // One input is a refresh: it spends the covering exit disbursal's inputs (crate::release::exit).
        return Err(BtcReleaseError::Unbalanced("a consolidation spends at least one reserve UTXO".to_owned()));
    }
    let total = sum(inputs.iter().map(|utxo| utxo.amount))?;
    let unpriced = ReleasePlan::from_parts(inputs.to_vec(), Vec::new(), Some(total), Amount::ZERO)?;
    let longest = unpriced.longest(peg);
    let fee = Amount::new(u128::from(rate.fee_for(longest.weight()).to_sat()));
    let change = total.checked_sub(fee).unwrap_or(Amount::ZERO);
    let limit = dust_limit.max(Amount::new(u128::from(dust_threshold(&peg.script_pubkey()).to_sat())));
    if change < limit {
        return Err(BtcReleaseError::DustChange { change, dust_limit: limit });
    }
    let plan = ReleasePlan::from_parts(inputs.to_vec(), Vec::new(), Some(change), fee)?;
    plan.check_standard(peg).map_err(BtcReleaseError::NonStandard)?;
    Ok(plan)
}

/// Plans the replacement of the consolidation `previous` at `rate`: the same inputs planned
/// again ([`plan_consolidation`]), its fee at least the incremental relay fee above the previous
/// one. The chain checks the fee pool can pay it; a signer rebuilds it with this.
///
/// # Errors
/// As [`plan_consolidation`]; [`BtcReleaseError::ReplacementTooCheap`].
pub fn replace_consolidation(
    previous: &ReleasePlan,
    rate: FeeRate,
    peg: &Peg,
    dust_limit: Amount,
) -> Result<ReleasePlan, BtcReleaseError> {
    let plan = plan_consolidation(previous.inputs(), rate, peg, dust_limit)?;
    let weight = plan.longest(peg).weight();
    check_replacement_fee(previous, plan.fee(), weight, rate)?;
    Ok(plan)
}

/// Plans a hand-over migration: `inputs`, reserve UTXOs of `peg`, spent into one output paying
/// the peg of the next federation (`next`) what they hold less the fee at `rate` on the release's
/// size with the longest signatures — like a consolidation whose output leaves for the next peg.
/// The chain pays the fee from the fee pool; a signer rebuilds the plan with this.
///
/// # Errors
/// [`BtcReleaseError::DustChange`] when the fee leaves the output below the dust limit; a
/// non-standard release; a bad input.
pub fn plan_migration(
    inputs: &[Utxo],
    rate: FeeRate,
    peg: &Peg,
    next: &Peg,
    dust_limit: Amount,
) -> Result<ReleasePlan, BtcReleaseError> {
    let total = sum(inputs.iter().map(|utxo| utxo.amount))?;
    let to_next =
        |amount| ReleaseOutput { destination: next.address().to_string(), script_pubkey: next.script_pubkey(), amount };
    let unpriced = ReleasePlan::from_parts(inputs.to_vec(), vec![to_next(total)], None, Amount::ZERO)?;
    let fee = Amount::new(u128::from(rate.fee_for(unpriced.longest(peg).weight()).to_sat()));
    let moved = total.checked_sub(fee).unwrap_or(Amount::ZERO);
    let limit = dust_limit.max(Amount::new(u128::from(dust_threshold(&next.script_pubkey()).to_sat())));
    if moved < limit {
        return Err(BtcReleaseError::DustChange { change: moved, dust_limit: limit });
    }
    let plan = ReleasePlan::from_parts(inputs.to_vec(), vec![to_next(moved)], None, fee)?;
    plan.check_standard(peg).map_err(BtcReleaseError::NonStandard)?;
    Ok(plan)
}

/// Plans the replacement of the migration `previous` at `rate`: the same inputs planned again
/// ([`plan_migration`]), its fee at least the incremental relay fee above the previous one.
///
/// # Errors
/// As [`plan_migration`]; [`BtcReleaseError::ReplacementTooCheap`].
pub fn replace_migration(
    previous: &ReleasePlan,
    rate: FeeRate,
    peg: &Peg,
    next: &Peg,
    dust_limit: Amount,
) -> Result<ReleasePlan, BtcReleaseError> {
    let plan = plan_migration(previous.inputs(), rate, peg, next, dust_limit)?;
    let weight = plan.longest(peg).weight();
    check_replacement_fee(previous, plan.fee(), weight, rate)?;
    Ok(plan)
}

/// The fee share of a withdrawal of `amount` to `destination` paid alone by a release spending
/// `inputs` reserve UTXOs with change, at `rate`: what the CLI quotes, and (at the floor rate) the
/// least budget the chain accepts.
///
/// # Errors
/// A malformed destination, or an amount that cannot pay it above the dust limit.
pub fn lone_release_fee(
    peg: &Peg,
    destination: &str,
    amount: Amount,
    inputs: usize,
    rate: FeeRate,
) -> Result<Amount, BtcReleaseError> {
    const CHANGE: u128 = 100_000;
    let each = Amount::new(amount.get().saturating_add(CHANGE));
    let placeholder = |vout: usize| Utxo {
        txid: "00".repeat(32),
        vout: u32::try_from(vout).unwrap_or(u32::MAX),
        amount: if vout == 0 { each } else { Amount::new(CHANGE) },
        owner: None,
    };
    let spent: Vec<Utxo> = (0..inputs.max(1)).map(placeholder).collect();
    let change =
        sum(spent.iter().map(|utxo| utxo.amount))?.checked_sub(amount).map_err(|_| out_of_range("change", amount))?;
    let request = ReleaseRequest { destination: destination.to_owned(), burned: amount, max_fee: amount };
    let priced = price_release(&spent, Some(change), &[request], rate, peg, Amount::ZERO)?;
    Ok(priced.shares.first().copied().unwrap_or(Amount::ZERO))
}

/// `output` (request `index`'s destination) paying its burn less `share`, which must leave more
/// than the dust limit of its type (and at least `dust_limit`).
fn paying(
    index: usize,
    request: &ReleaseRequest,
    share: Amount,
    output: ReleaseOutput,
    dust_limit: Amount,
) -> Result<ReleaseOutput, BtcReleaseError> {
    let limit = dust_limit.max(Amount::new(u128::from(dust_threshold(&output.script_pubkey).to_sat())));
    let paid = request.burned.checked_sub(share).unwrap_or(Amount::ZERO);
    if paid < limit || paid.is_zero() {
        return Err(BtcReleaseError::OutputBelowDust {
            index,
            destination: request.destination.clone(),
            amount: paid,
            dust_limit: limit,
        });
    }
    Ok(ReleaseOutput { amount: paid, ..output })
}

/// The outputs paying each request its whole burned amount (before its fee share).
fn burned_outputs(requests: &[ReleaseRequest], network: BitcoinNetwork) -> Result<Vec<ReleaseOutput>, BtcReleaseError> {
    requests.iter().map(|request| ReleaseOutput::new(&request.destination, network, request.burned)).collect()
}

/// The unsigned release transaction of `plan`: version 2, lock time 0, the plan's inputs in
/// order (sequence [`RELEASE_SEQUENCE`], empty script_sig and witness), its outputs in order,
/// then the change to `peg`'s script. Its txid is the signed transaction's txid.
pub fn unsigned_transaction(plan: &ReleasePlan, peg: &Peg) -> Transaction {
    let input = plan
        .spends
        .iter()
        .map(|(outpoint, _)| TxIn {
            previous_output: *outpoint,
            script_sig: ScriptBuf::new(),
            sequence: RELEASE_SEQUENCE,
            witness: Witness::new(),
        })
        .collect();
    let mut output = plan.pays.clone();
    if let Some(value) = plan.change_sats {
        output.push(TxOut { value, script_pubkey: peg.script_pubkey() });
    }
    Transaction { version: Version::TWO, lock_time: LockTime::ZERO, input, output }
}

/// The BIP 143 (segwit v0) SIGHASH_ALL digest of each input of `tx`, over the input's witness
/// script ([`ReleasePlan::witness_scripts`]) and its amount from `plan`, in input order. These 32-byte digests are what
/// members sign and what [`verify_input_signature`] checks.
///
/// # Errors
/// [`BtcReleaseError::TransactionMismatch`] when `tx` (witnesses aside) is not
/// [`unsigned_transaction`]`(plan, peg)`.
pub fn sighashes(tx: &Transaction, plan: &ReleasePlan, peg: &Peg) -> Result<Vec<[u8; 32]>, BtcReleaseError> {
    let expected = unsigned_transaction(plan, peg).compute_txid();
    let got = tx.compute_txid();
    if got != expected {
        return Err(BtcReleaseError::TransactionMismatch { expected, got });
    }
    let mut cache = SighashCache::new(tx);
    plan.spends
        .iter()
        .zip(plan.witness_scripts(peg))
        .enumerate()
        .map(|(index, ((_, value), script))| {
            cache
                .p2wsh_signature_hash(index, &script, *value, EcdsaSighashType::All)
                .map(|sighash| sighash.to_byte_array())
                // Unreachable: the txids match, so `tx` has exactly the plan's inputs.
                .map_err(|_| BtcReleaseError::TransactionMismatch { expected, got })
        })
        .collect()
}

/// Checks that `der_signature` is member `member_key_index`'s signature of `sighash`.
///
/// `member_key_index` is the member's position in the federation's member order (as
/// [`crate::peg::BitcoinFederation::keys`] lists them), not the key's position in the BIP 67
/// sorted witness script. The signature must be strict DER without a sighash-type byte, with a
/// low S (as Bitcoin's standardness rules require).
///
/// # Errors
/// [`BtcReleaseError::UnknownMember`], [`BtcReleaseError::MalformedSignature`],
/// [`BtcReleaseError::HighS`] or [`BtcReleaseError::SignatureMismatch`].
pub fn verify_input_signature(
    peg: &Peg,
    member_key_index: usize,
    sighash: &[u8; 32],
    der_signature: &[u8],
) -> Result<(), BtcReleaseError> {
    let member = member_key_index;
    let key =
        peg.member_key(member).ok_or(BtcReleaseError::UnknownMember { member, members: peg.member_keys().len() })?;
    let signature = Signature::from_der(der_signature)
        .map_err(|error| BtcReleaseError::MalformedSignature { member, reason: error.to_string() })?;
    if signature.serialize_der().as_ref() != der_signature {
        return Err(BtcReleaseError::MalformedSignature {
            member,
            reason: "not the canonical DER encoding of its values".to_owned(),
        });
    }
    let mut normalized = signature;
    normalized.normalize_s();
    if normalized != signature {
        return Err(BtcReleaseError::HighS { member });
    }
    SECP256K1
        .verify_ecdsa(&Message::from_digest(*sighash), &signature, &key.inner)
        .map_err(|_| BtcReleaseError::SignatureMismatch { member, sighash: hex::encode(sighash) })
}

/// Signs one input's sighash: strict DER, low-S, no sighash-type byte. Deterministic (RFC 6979),
/// so a signer that signs the same sighash twice produces the same bytes.
pub fn sign_input(secret: &SecretKey, sighash: &[u8; 32]) -> Vec<u8> {
    // libsecp256k1 signs with RFC 6979 nonces and always returns low-S signatures.
    SECP256K1.sign_ecdsa(&Message::from_digest(*sighash), secret).serialize_der().to_vec()
}

/// `tx` (the unsigned transaction of `plan`) with every input's P2WSH multisig witness: the empty
/// dummy `OP_CHECKMULTISIG` pops, then exactly `threshold` signatures (each + `0x01`,
/// SIGHASH_ALL) in the witness script's key order, then the input's witness script. Any witness `tx` already had is replaced.
///
/// `signatures[i]` holds input `i`'s signatures by member index (federation order); each is
/// checked against `sighashes[i]` ([`verify_input_signature`]). Invalid ones are left out; of
/// the valid ones, those of the keys earliest in the script are used.
///
/// # Errors
/// [`BtcReleaseError::InputCountMismatch`] when `sighashes` or `signatures` do not have one entry
/// per input; [`BtcReleaseError::NotEnoughSignatures`] (naming the refused ones) when an input
/// has fewer than `threshold` valid signatures.
pub fn assemble_witness(
    tx: &Transaction,
    plan: &ReleasePlan,
    peg: &Peg,
    sighashes: &[[u8; 32]],
    signatures: &[BTreeMap<usize, Vec<u8>>],
) -> Result<Transaction, BtcReleaseError> {
    let inputs = tx.input.len();
    let scripts = plan.witness_scripts(peg);
    if scripts.len() != inputs {
        return Err(BtcReleaseError::InputCountMismatch { inputs, given: scripts.len(), what: "plan inputs" });
    }
    if sighashes.len() != inputs {
        return Err(BtcReleaseError::InputCountMismatch { inputs, given: sighashes.len(), what: "sighashes" });
    }
    if signatures.len() != inputs {
        return Err(BtcReleaseError::InputCountMismatch { inputs, given: signatures.len(), what: "signature sets" });
    }
    let needed = usize::try_from(peg.threshold()).unwrap_or(usize::MAX);
    let mut signed = tx.clone();
    for (input, (((txin, sighash), by_member), script)) in
        signed.input.iter_mut().zip(sighashes).zip(signatures).zip(&scripts).enumerate()
    {
        // Valid signatures by the signing key's position in the witness script.
        let mut valid = BTreeMap::new();
        let mut refused = Vec::new();
        for (&member, der) in by_member {
            match verify_input_signature(peg, member, sighash, der) {
                Ok(()) => {
                    if let Some(position) = peg.script_position(member) {
                        valid.insert(position, der);
                    }
                }
                Err(error) => refused.push(error.to_string()),
            }
        }
        if valid.len() < needed {
            return Err(BtcReleaseError::NotEnoughSignatures { input, valid: valid.len(), needed, refused });
        }
        let mut witness = Witness::new();
        witness.push([]);
        for der in valid.values().take(needed) {
            let mut with_type = der.to_vec();
            with_type.push(SIGHASH_ALL_BYTE);
            witness.push(with_type);
        }
        witness.push(script.as_bytes());
        txin.witness = witness;
    }
    Ok(signed)
}

/// Outputs are present and within the standard-size limit.
fn check_outputs(outputs: &[ReleaseOutput]) -> Result<(), BtcReleaseError> {
    if outputs.is_empty() {
        return Err(BtcReleaseError::NoOutputs);
    }
    // One slot is kept for the change.
    if outputs.len() >= MAX_RELEASE_OUTPUTS {
        return Err(BtcReleaseError::TooManyOutputs { outputs: outputs.len() + 1, max: MAX_RELEASE_OUTPUTS });
    }
    Ok(())
}

/// `amount` as a Bitcoin amount, if it is one.
fn sats(amount: Amount, what: impl FnOnce() -> String) -> Result<Sats, BtcReleaseError> {
    u64::try_from(amount.get())
        .ok()
        .map(Sats::from_sat)
        .filter(|value| *value <= Sats::MAX_MONEY)
        .ok_or_else(|| BtcReleaseError::AmountOutOfRange { what: what(), amount })
}

fn out_of_range(what: &str, amount: Amount) -> BtcReleaseError {
    BtcReleaseError::AmountOutOfRange { what: what.to_owned(), amount }
}

/// The sum of `amounts`.
fn sum(amounts: impl IntoIterator<Item = Amount>) -> Result<Amount, BtcReleaseError> {
    amounts.into_iter().try_fold(Amount::ZERO, |total, amount| {
        total.checked_add(amount).map_err(|_| out_of_range("a sum of amounts", total))
    })
}

/// Serde for scripts as lowercase hex.
mod script_hex {
    use bitcoin::ScriptBuf;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(script: &ScriptBuf, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&script.to_hex_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ScriptBuf, D::Error> {
        let text = String::deserialize(deserializer)?;
        ScriptBuf::from_hex(&text).map_err(|error| serde::de::Error::custom(format!("script `{text}`: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::key::CompressedPublicKey;
    use bitcoin::secp256k1::PublicKey as SecpPublicKey;
    use bitcoin::{KnownHrp, Network, WitnessProgram, WitnessVersion};
    use proptest::prelude::*;

    use super::*;
    use crate::peg::BitcoinFederation;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const DUST: Amount = Amount::new(546);
    const FEE: Amount = Amount::new(2_000);

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_slice(&[seed; 32]).unwrap_or_else(|_| unreachable!("small seeds are valid keys"))
    }

    fn public(seed: u8) -> SecpPublicKey {
        secret(seed).public_key(SECP256K1)
    }

    /// Member seeds in federation order; chosen so member order differs from the script's.
    const MEMBERS: [u8; 4] = [4, 1, 3, 2];

    fn peg() -> Peg {
        let keys = MEMBERS.iter().map(|seed| public(*seed).to_string()).collect();
        Peg::new(&BitcoinFederation { network: BitcoinNetwork::Regtest, threshold: 3, keys })
            .unwrap_or_else(|error| unreachable!("test federation is valid: {error}"))
    }

    fn txid(byte: u8) -> String {
        hex::encode([byte; 32])
    }

    fn utxo(byte: u8, vout: u32, amount: u128) -> Utxo {
        Utxo { txid: txid(byte), vout, amount: Amount::new(amount), owner: None }
    }

    fn regtest_p2wpkh(seed: u8) -> String {
        bitcoin::Address::p2wpkh(&CompressedPublicKey(public(seed)), KnownHrp::Regtest).to_string()
    }

    fn output(seed: u8, amount: u128) -> ReleaseOutput {
        ReleaseOutput::new(&regtest_p2wpkh(seed), BitcoinNetwork::Regtest, Amount::new(amount))
            .unwrap_or_else(|error| unreachable!("a regtest address: {error}"))
    }

    fn spent(plan: &ReleasePlan) -> Vec<(String, u32)> {
        plan.inputs().iter().map(|utxo| (utxo.txid.clone(), utxo.vout)).collect()
    }

    #[test]
    fn same_reserves_in_any_order_give_the_same_transaction() -> TestResult {
        let peg = peg();
        let reserves = vec![utxo(3, 0, 40_000), utxo(1, 2, 25_000), utxo(2, 1, 40_000), utxo(9, 0, 7_000)];
        let outputs = vec![output(10, 30_000), output(11, 20_000)];
        let plan = plan_release(&reserves, &outputs, FEE, DUST)?;
        let tx = unsigned_transaction(&plan, &peg);
        let mut reversed = reserves.clone();
        reversed.reverse();
        let again = plan_release(&reversed, &outputs, FEE, DUST)?;
        assert_eq!(again, plan);
        assert_eq!(unsigned_transaction(&again, &peg).compute_txid(), tx.compute_txid());
        assert_eq!(sighashes(&tx, &again, &peg)?, sighashes(&tx, &plan, &peg)?);

        assert_eq!(tx.version, Version::TWO);
        assert_eq!(tx.lock_time, LockTime::ZERO);
        assert!(tx.input.iter().all(|input| input.sequence == RELEASE_SEQUENCE && input.witness.is_empty()));
        // Outputs in plan order, change to the peg last.
        let values: Vec<u64> = tx.output.iter().map(|out| out.value.to_sat()).collect();
        assert_eq!(values, [30_000, 20_000, 80_000 - 52_000]);
        assert_eq!(tx.output.last().map(|out| &out.script_pubkey), Some(&peg.script_pubkey()));
        assert_eq!(plan.change_vout(), Some(2));
        Ok(())
    }

    #[test]
    fn exact_cover_has_no_change() -> TestResult {
        let reserves = vec![utxo(1, 0, 10_000), utxo(2, 0, 42_000), utxo(3, 0, 5_000)];
        let plan = plan_release(&reserves, &[output(10, 40_000)], FEE, DUST)?;
        assert_eq!(spent(&plan), [(txid(2), 0)]);
        assert_eq!(plan.change(), None);
        assert_eq!(plan.change_vout(), None);
        assert_eq!(unsigned_transaction(&plan, &peg()).output.len(), 1);
        Ok(())
    }

    #[test]
    fn fewest_inputs_largest_first_ties_by_outpoint_with_change_to_the_peg() -> TestResult {
        // 30,000 + 2,000 fee needs two of these; the two largest are the 20,000s, tie broken by
        // (txid, vout): txid 1 before txid 5, and 5:0 before 5:1.
        let reserves = vec![utxo(5, 1, 20_000), utxo(9, 0, 15_000), utxo(1, 3, 20_000), utxo(5, 0, 20_000)];
        let plan = plan_release(&reserves, &[output(10, 30_000)], FEE, DUST)?;
        assert_eq!(spent(&plan), [(txid(1), 3), (txid(5), 0)]);
        assert_eq!(plan.change(), Some(Amount::new(8_000)));
        assert_eq!(plan.input_total(), Amount::new(40_000));
        Ok(())
    }

    #[test]
    fn dust_change_takes_one_more_input() -> TestResult {
        // 10,000 covers 7,700 + 2,000 leaving 300 sat, below the 546 dust limit: the next UTXO
        // (4,000) is added and the change becomes 4,300.
        let reserves = vec![utxo(1, 0, 10_000), utxo(2, 0, 4_000)];
        let plan = plan_release(&reserves, &[output(10, 7_700)], FEE, DUST)?;
        assert_eq!(spent(&plan), [(txid(1), 0), (txid(2), 0)]);
        assert_eq!(plan.change(), Some(Amount::new(4_300)));
        Ok(())
    }

    #[test]
    fn dust_change_with_nothing_left_to_add_waits() {
        let error = plan_release(&[utxo(1, 0, 10_000)], &[output(10, 7_700)], FEE, DUST);
        let Err(error) = error else { unreachable!("planned a release with dust change: {error:?}") };
        assert_eq!(error, BtcReleaseError::DustChange { change: Amount::new(300), dust_limit: DUST });
        assert!(error.must_wait());
        assert!(error.to_string().contains("must wait"), "{error}");
    }

    #[test]
    fn insufficient_reserves_wait_and_name_the_shortfall() {
        let reserves = vec![utxo(1, 0, 10_000), utxo(2, 0, 20_000)];
        let error = plan_release(&reserves, &[output(10, 29_000)], FEE, DUST);
        let Err(error) = error else { unreachable!("planned an uncovered release: {error:?}") };
        assert_eq!(
            error,
            BtcReleaseError::InsufficientReserves { needed: Amount::new(31_000), available: Amount::new(30_000) }
        );
        assert!(error.must_wait());
        assert!(error.to_string().contains("must wait"), "{error}");
        let none = plan_release(&[], &[output(10, 1_000)], FEE, DUST);
        assert!(matches!(none, Err(BtcReleaseError::InsufficientReserves { .. })), "{none:?}");
    }

    #[test]
    fn malformed_plans_are_refused_and_do_not_wait() {
        let reserves = vec![utxo(1, 0, 100_000)];
        let refused = |result: Result<ReleasePlan, BtcReleaseError>| match result {
            Ok(plan) => unreachable!("planned {plan:?}"),
            Err(error) => {
                assert!(!error.must_wait(), "{error}");
                error
            }
        };
        assert_eq!(refused(plan_release(&reserves, &[], FEE, DUST)), BtcReleaseError::NoOutputs);
        assert!(matches!(
            refused(plan_release(&reserves, &[output(10, 545)], FEE, DUST)),
            BtcReleaseError::OutputBelowDust { index: 0, .. }
        ));
        let twice = vec![utxo(1, 0, 100_000), utxo(1, 0, 100_000)];
        assert!(matches!(
            refused(plan_release(&twice, &[output(10, 5_000)], FEE, DUST)),
            BtcReleaseError::DuplicateUtxo(_)
        ));
        let upper = Utxo { txid: txid(0xab).to_uppercase(), vout: 0, amount: Amount::new(100_000), owner: None };
        assert!(matches!(
            refused(plan_release(&[upper], &[output(10, 5_000)], FEE, DUST)),
            BtcReleaseError::BadUtxo { .. }
        ));
        let huge = utxo(2, 0, 21_000_000 * 100_000_000 + 1);
        assert!(matches!(
            refused(plan_release(&[huge], &[output(10, 5_000)], FEE, DUST)),
            BtcReleaseError::AmountOutOfRange { .. }
        ));
    }

    #[test]
    fn too_fragmented_reserves_wait() {
        let reserves: Vec<Utxo> = (0..200).map(|vout| utxo(7, vout, 1_000)).collect();
        // 149,000 + 2,000 fee takes 151 of the 1,000-sat UTXOs.
        let error = plan_release(&reserves, &[output(10, 149_000)], FEE, DUST);
        assert!(
            matches!(error, Err(BtcReleaseError::TooManyInputs { needed: 151, max: MAX_RELEASE_INPUTS })),
            "{error:?}"
        );
        assert!(error.is_err_and(|error| error.must_wait()));
    }

    #[test]
    fn standard_addresses_of_the_peg_network_are_paid() -> TestResult {
        let key = CompressedPublicKey(public(7));
        let script = peg().witness_script().to_owned();
        let (xonly, _) = public(7).x_only_public_key();
        let addresses = [
            bitcoin::Address::p2pkh(key, Network::Regtest),
            bitcoin::Address::p2sh(&script, Network::Regtest)?,
            bitcoin::Address::p2wpkh(&key, KnownHrp::Regtest),
            bitcoin::Address::p2wsh(&script, KnownHrp::Regtest),
            bitcoin::Address::p2tr(SECP256K1, xonly, None, KnownHrp::Regtest),
        ];
        for address in addresses {
            assert_eq!(parse_destination(&address.to_string(), BitcoinNetwork::Regtest)?, address.script_pubkey());
        }
        // A base58 testnet address is a regtest address too (one prefix for both).
        let legacy = bitcoin::Address::p2pkh(key, Network::Testnet).to_string();
        assert!(parse_destination(&legacy, BitcoinNetwork::Regtest).is_ok());
        Ok(())
    }

    #[test]
    fn addresses_of_other_networks_are_refused_naming_both_networks() {
        let key = CompressedPublicKey(public(7));
        let testnet = bitcoin::Address::p2wpkh(&key, KnownHrp::Testnets).to_string();
        let error = parse_destination(&testnet, BitcoinNetwork::Regtest).err();
        assert_eq!(
            error.map(|error| error.to_string()),
            Some(format!("address `{testnet}` is for testnet or signet; this peg is on regtest"))
        );
        let mainnet = bitcoin::Address::p2pkh(key, Network::Bitcoin).to_string();
        let error = parse_destination(&mainnet, BitcoinNetwork::Regtest).err();
        assert!(
            matches!(&error, Some(BtcReleaseError::WrongNetwork { address_network, .. }) if address_network == "bitcoin")
        );
        let regtest = regtest_p2wpkh(7);
        let error = parse_destination(&regtest, BitcoinNetwork::Bitcoin).err();
        assert!(
            matches!(&error, Some(BtcReleaseError::WrongNetwork { address_network, .. }) if address_network == "regtest")
        );
    }

    #[test]
    fn text_that_is_no_address_and_unpaid_kinds_are_refused() -> TestResult {
        for text in ["", "ferry1qqqqqqqqqq", "bcrt1qinvalidchecksum", "0x52908400098527886E0F7030069857D2E4169EE7"] {
            let error = parse_destination(text, BitcoinNetwork::Regtest).err();
            assert!(matches!(error, Some(BtcReleaseError::NotAnAddress { .. })), "{text}: {error:?}");
            assert!(error.is_some_and(|error| error.to_string().contains("is not a Bitcoin address")));
        }
        let v2 = bitcoin::Address::from_witness_program(
            WitnessProgram::new(WitnessVersion::V2, &[1; 32])?,
            KnownHrp::Regtest,
        );
        let error = parse_destination(&v2.to_string(), BitcoinNetwork::Regtest).err();
        assert!(error.is_some_and(|error| error.to_string().contains("segwit version 2")), "{v2}");
        let anchor = bitcoin::Address::from_witness_program(
            WitnessProgram::new(WitnessVersion::V1, &[0x4e, 0x73])?,
            KnownHrp::Regtest,
        );
        let error = parse_destination(&anchor.to_string(), BitcoinNetwork::Regtest).err();
        assert!(error.is_some_and(|error| error.to_string().contains("anyone can spend")), "{anchor}");
        Ok(())
    }

    /// A two-input release, its unsigned transaction and sighashes.
    struct Release {
        peg: Peg,
        plan: ReleasePlan,
        tx: Transaction,
        digests: Vec<[u8; 32]>,
    }

    fn two_input_release() -> Result<Release, BtcReleaseError> {
        let peg = peg();
        let plan = plan_release(&[utxo(1, 0, 30_000), utxo(2, 0, 30_000)], &[output(10, 50_000)], FEE, DUST)?;
        let tx = unsigned_transaction(&plan, &peg);
        let digests = sighashes(&tx, &plan, &peg)?;
        Ok(Release { peg, plan, tx, digests })
    }

    fn signature_sets(digests: &[[u8; 32]], members: &[usize]) -> Vec<BTreeMap<usize, Vec<u8>>> {
        digests
            .iter()
            .map(|digest| {
                members
                    .iter()
                    .filter_map(|&m| MEMBERS.get(m).map(|seed| (m, sign_input(&secret(*seed), digest))))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn signatures_verify_only_for_their_member_and_input() -> TestResult {
        let Release { peg, digests, .. } = two_input_release()?;
        let [first, second] = digests[..] else { return Err("expected two sighashes".into()) };
        assert_ne!(first, second);
        // Member 1 holds seed 1.
        let signature = sign_input(&secret(1), &first);
        assert_eq!(signature, sign_input(&secret(1), &first), "RFC 6979 signing is deterministic");
        verify_input_signature(&peg, 1, &first, &signature)?;
        assert!(matches!(
            verify_input_signature(&peg, 1, &second, &signature),
            Err(BtcReleaseError::SignatureMismatch { member: 1, .. })
        ));
        // Member 0 is seed 4: a signature by seed 1 is not theirs, although seed 1's key sits
        // first… somewhere in the sorted script.
        assert!(matches!(
            verify_input_signature(&peg, 0, &first, &signature),
            Err(BtcReleaseError::SignatureMismatch { member: 0, .. })
        ));
        assert!(matches!(
            verify_input_signature(&peg, 4, &first, &signature),
            Err(BtcReleaseError::UnknownMember { member: 4, members: 4 })
        ));
        let mut with_type = signature.clone();
        with_type.push(SIGHASH_ALL_BYTE);
        assert!(matches!(
            verify_input_signature(&peg, 1, &first, &with_type),
            Err(BtcReleaseError::MalformedSignature { member: 1, .. })
        ));
        assert!(matches!(
            verify_input_signature(&peg, 1, &first, &[0x30, 0x00]),
            Err(BtcReleaseError::MalformedSignature { .. })
        ));
        Ok(())
    }

    /// The curve order n, big-endian.
    const CURVE_ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae,
        0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
    ];

    /// `signature` with S replaced by n − S: equally valid for libsecp256k1's maths, but malleable.
    fn high_s(signature: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let compact = Signature::from_der(signature)?.serialize_compact();
        let (r, s) = compact.split_at(32);
        let mut flipped = [0u8; 32];
        let mut borrow = 0i16;
        for index in (0..32).rev() {
            let digit = i16::from(CURVE_ORDER[index]) - i16::from(s[index]) - borrow;
            borrow = i16::from(digit < 0);
            flipped[index] = u8::try_from(digit.rem_euclid(256))?;
        }
        let mut bytes = r.to_vec();
        bytes.extend_from_slice(&flipped);
        Ok(Signature::from_compact(&bytes)?.serialize_der().to_vec())
    }

    #[test]
    fn high_s_signatures_are_refused() -> TestResult {
        let Release { peg, digests, .. } = two_input_release()?;
        let digest = digests.first().ok_or("no sighash")?;
        let low = sign_input(&secret(2), digest);
        let high = high_s(&low)?;
        assert_ne!(high, low);
        let mut normalized = Signature::from_der(&high)?;
        normalized.normalize_s();
        assert_eq!(normalized.serialize_der().to_vec(), low, "n − S is the same signature's other form");
        // Member 3 holds seed 2.
        verify_input_signature(&peg, 3, digest, &low)?;
        assert_eq!(verify_input_signature(&peg, 3, digest, &high), Err(BtcReleaseError::HighS { member: 3 }));
        Ok(())
    }

    #[test]
    fn witness_has_threshold_signatures_in_script_key_order() -> TestResult {
        let Release { peg, plan, tx, digests } = two_input_release()?;
        // All four sign; exactly three go in, those of the keys first in the script.
        let signed = assemble_witness(&tx, &plan, &peg, &digests, &signature_sets(&digests, &[0, 1, 2, 3]))?;
        assert_eq!(signed.compute_txid(), tx.compute_txid(), "the witness does not change the txid");
        for (input, digest) in signed.input.iter().zip(&digests) {
            let items: Vec<&[u8]> = input.witness.iter().collect();
            assert_eq!(items.len(), 5, "dummy, three signatures, script");
            assert_eq!(items.first(), Some(&&[][..]));
            assert_eq!(items.last(), Some(&peg.witness_script().as_bytes()));
            let signatures = items.get(1..4).ok_or("no signatures")?;
            for (signature, key) in signatures.iter().zip(peg.keys()) {
                let (der, sighash_type) = signature.split_at(signature.len() - 1);
                assert_eq!(sighash_type, [SIGHASH_ALL_BYTE]);
                let signature = Signature::from_der(der)?;
                SECP256K1.verify_ecdsa(&Message::from_digest(*digest), &signature, &key.inner)?;
            }
        }
        Ok(())
    }

    #[test]
    fn witness_skips_a_missing_member_and_keeps_script_order() -> TestResult {
        let Release { peg, plan, tx, digests } = two_input_release()?;
        // Members 0, 2, 3 (seeds 4, 3, 2): in script order they are the keys of seeds 2, 3, 4
        // wherever those sort; each signature must match the next key in the script.
        let signed = assemble_witness(&tx, &plan, &peg, &digests, &signature_sets(&digests, &[0, 2, 3]))?;
        let absent = peg.script_position(1).ok_or("member 1 is not in the script")?;
        for (input, digest) in signed.input.iter().zip(&digests) {
            let signatures: Vec<&[u8]> = input.witness.iter().skip(1).take(3).collect();
            let keys = peg.keys().iter().enumerate().filter(|(position, _)| *position != absent).map(|(_, key)| key);
            for (signature, key) in signatures.iter().zip(keys) {
                let der = signature.get(..signature.len() - 1).ok_or("empty signature")?;
                SECP256K1.verify_ecdsa(&Message::from_digest(*digest), &Signature::from_der(der)?, &key.inner)?;
            }
        }
        Ok(())
    }

    #[test]
    fn too_few_valid_signatures_are_refused_naming_the_bad_one() -> TestResult {
        let Release { peg, plan, tx, digests } = two_input_release()?;
        let two = assemble_witness(&tx, &plan, &peg, &digests, &signature_sets(&digests, &[0, 2]));
        assert!(
            matches!(two, Err(BtcReleaseError::NotEnoughSignatures { input: 0, valid: 2, needed: 3, ref refused }) if refused.is_empty()),
            "{two:?}"
        );
        // Three signatures, but member 3 signed input 0's sighash for input 1 too.
        let mut sets = signature_sets(&digests, &[0, 2, 3]);
        let first = digests.first().ok_or("no sighash")?;
        if let Some(set) = sets.get_mut(1) {
            set.insert(3, sign_input(&secret(2), first));
        }
        let error =
            assemble_witness(&tx, &plan, &peg, &digests, &sets).err().ok_or("assembled with a wrong signature")?;
        assert!(matches!(error, BtcReleaseError::NotEnoughSignatures { input: 1, valid: 2, .. }), "{error:?}");
        assert!(error.to_string().contains("signature of member 3 does not verify"), "{error}");
        // One set per input, one sighash per input.
        assert!(matches!(
            assemble_witness(&tx, &plan, &peg, &digests, &sets[..1]),
            Err(BtcReleaseError::InputCountMismatch { inputs: 2, given: 1, .. })
        ));
        Ok(())
    }

    #[test]
    fn sighashes_are_refused_for_another_transaction() -> TestResult {
        let Release { peg, plan, tx, .. } = two_input_release()?;
        let mut other = tx.clone();
        if let Some(out) = other.output.first_mut() {
            out.value = Sats::from_sat(49_999);
        }
        assert!(matches!(sighashes(&other, &plan, &peg), Err(BtcReleaseError::TransactionMismatch { .. })));
        Ok(())
    }

    #[test]
    fn max_vsize_bounds_the_signed_transaction() -> TestResult {
        let Release { peg, plan, tx, digests } = two_input_release()?;
        let signed = assemble_witness(&tx, &plan, &peg, &digests, &signature_sets(&digests, &[1, 2, 3]))?;
        let actual = signed.vsize() as u64;
        let bound = plan.max_vsize(&peg);
        assert!(actual <= bound, "vsize {actual} above the bound {bound}");
        // At most one byte per signature (R without its high bit) plus rounding apart.
        assert!(bound - actual <= 2, "vsize {actual}, bound {bound}");
        Ok(())
    }

    #[test]
    fn plan_round_trips_through_json_and_an_altered_one_is_refused() -> TestResult {
        let Release { plan, .. } = two_input_release()?;
        let json = serde_json::to_value(&plan)?;
        let back: ReleasePlan = serde_json::from_value(json.clone())?;
        assert_eq!(back, plan);
        let mut altered = json;
        altered["fee"] = serde_json::Value::String("1000".to_owned());
        let error = serde_json::from_value::<ReleasePlan>(altered).err().ok_or("accepted an unbalanced plan")?;
        assert!(error.to_string().contains("does not balance"), "{error}");
        Ok(())
    }

    fn request(seed: u8, burned: u128, max_fee: u128) -> ReleaseRequest {
        ReleaseRequest { destination: regtest_p2wpkh(seed), burned: Amount::new(burned), max_fee: Amount::new(max_fee) }
    }

    #[test]
    fn a_priced_release_pays_the_rate_on_its_longest_size_out_of_the_burns() -> TestResult {
        let rate = FeeRate::from_sat_per_vb(7);
        let requests = [request(10, 300_000, 50_000), request(11, 120_000, 50_000)];
        let reserves = [utxo(1, 0, 250_000), utxo(2, 1, 250_000)];
        let priced = plan_release_at_rate(&reserves, &requests, rate, &peg(), DUST)?;
        let plan = &priced.plan;
        let longest = plan.longest(&peg());
        assert_eq!(plan.fee().get(), u128::from(rate.fee_for(longest.weight()).to_sat()));
        assert_eq!(plan.fee().get(), priced.shares.iter().map(|share| share.get()).sum::<u128>());
        for ((output, request), share) in plan.outputs().iter().zip(&requests).zip(&priced.shares) {
            assert_eq!(output.amount.get() + share.get(), request.burned.get(), "each pays its burn less its share");
        }
        // The burns, not the reserves, pay the fee: the change is what the inputs hold beyond them.
        assert_eq!(plan.change().map(Amount::get), Some(500_000 - 420_000));
        plan.check_standard(&peg())?;
        Ok(())
    }

    #[test]
    fn a_share_above_its_budget_or_leaving_dust_names_the_withdrawal() -> TestResult {
        let rate = FeeRate::from_sat_per_vb(20);
        let reserves = [utxo(1, 0, 1_000_000)];
        let tight = [request(10, 300_000, 50_000), request(11, 120_000, 500)];
        let error = plan_release_at_rate(&reserves, &tight, rate, &peg(), DUST).err().ok_or("priced over budget")?;
        assert_eq!(error.blocking_output(), Some(1), "{error}");
        assert!(error.to_string().contains("above its max_fee of 500 sat"), "{error}");
        let dusty = [request(10, 300_000, 50_000), request(11, 3_000, 3_000)];
        let error = plan_release_at_rate(&reserves, &dusty, rate, &peg(), DUST).err().ok_or("priced into dust")?;
        assert!(matches!(error, BtcReleaseError::OutputBelowDust { index: 1, .. }), "{error}");
        // A lone withdrawal's quote is its share in a one-input release with change.
        let quote = lone_release_fee(&peg(), &regtest_p2wpkh(11), Amount::new(120_000), 1, rate)?;
        let alone = plan_release_at_rate(
            &reserves,
            &tight[1..]
                .iter()
                .map(|r| ReleaseRequest { max_fee: Amount::new(u128::MAX >> 64), ..r.clone() })
                .collect::<Vec<_>>(),
            rate,
            &peg(),
            DUST,
        )?;
        assert_eq!(Some(&quote), alone.shares.first());
        Ok(())
    }

    #[test]
    fn a_deposit_prepays_the_rate_on_the_size_one_input_adds() -> TestResult {
        let rate = FeeRate::from_sat_per_vb(10);
        let prepaid = input_spend_fee(&peg(), None, rate);
        // Two releases that differ by one input differ in fee by about that.
        let one = plan_release_at_rate(&[utxo(1, 0, 100_000)], &[request(10, 50_000, 50_000)], rate, &peg(), DUST)?;
        let two = plan_release_at_rate(
            &[utxo(1, 0, 40_000), utxo(2, 0, 40_000)],
            &[request(10, 50_000, 50_000)],
            rate,
            &peg(),
            DUST,
        )?;
        let difference = two.plan.fee().get() - one.plan.fee().get();
        assert!(prepaid.get().abs_diff(difference) <= 10, "prepaid {prepaid} vs {difference}");
        // A 3-of-4 P2WSH input: 41 vB, plus a witness of three 73-byte signatures and the 139-byte
        // script at a quarter each: about 132 vB.
        assert!((1_280..=1_360).contains(&prepaid.get()), "{prepaid}");
        Ok(())
    }

    #[test]
    fn a_deposit_address_input_signs_over_its_own_script_and_costs_its_22_more_witness_bytes() -> TestResult {
        let peg = peg();
        let alice = Address::from_bytes([0xa1; 20]);
        let mut owned = utxo(1, 0, 200_000);
        owned.owner = Some(alice);
        let plan = plan_release(&[owned, utxo(2, 1, 100_000)], &[output(10, 250_000)], Amount::new(5_000), DUST)?;
        assert_eq!(
            plan.witness_scripts(&peg),
            vec![peg.deposit_witness_script(&alice), peg.witness_script().to_owned()]
        );
        let tx = unsigned_transaction(&plan, &peg);
        let digests = sighashes(&tx, &plan, &peg)?;
        // The same transaction signed as if both inputs paid the peg has another first sighash.
        let mut plain = plan.clone();
        plain.inputs[0].owner = None;
        assert_ne!(sighashes(&tx, &plain, &peg)?[0], digests[0]);
        assert_eq!(sighashes(&tx, &plain, &peg)?[1], digests[1]);
        let signed = assemble_witness(&tx, &plan, &peg, &digests, &signature_sets(&digests, &[0, 1, 2]))?;
        assert_eq!(signed.input[0].witness.last(), Some(peg.deposit_witness_script(&alice).as_bytes()));
        assert_eq!(signed.input[1].witness.last(), Some(peg.witness_script().as_bytes()));
        plan.check_standard(&peg)?;
        // Signed at their longest, the deposit address input weighs 22 WU (5.5 vB) more: its
        // witness script's push and OP_DROP.
        let weight = |scripts: &[ScriptBuf]| with_longest_signatures(&tx, &peg, scripts).weight().to_wu();
        let plain_scripts = plain.witness_scripts(&peg);
        assert_eq!(weight(&plan.witness_scripts(&peg)) - weight(&plain_scripts), 22);
        let rate = FeeRate::from_sat_per_vb(10);
        assert!(input_spend_fee(&peg, Some(&alice), rate) > input_spend_fee(&peg, None, rate));
        Ok(())
    }

    #[test]
    fn a_consolidation_pays_the_rate_on_its_size_and_returns_the_rest_to_the_peg() -> TestResult {
        let rate = FeeRate::from_sat_per_vb(3);
        let inputs: Vec<Utxo> = (0..40).map(|i| utxo(i, 0, 12_000)).collect();
        let plan = plan_consolidation(&inputs, rate, &peg(), DUST)?;
        let tx = unsigned_transaction(&plan, &peg());
        assert_eq!(tx.output.len(), 1);
        assert_eq!(tx.output[0].script_pubkey, peg().script_pubkey());
        let longest = with_longest_signatures(&tx, &peg(), &plan.witness_scripts(&peg()));
        assert_eq!(plan.fee().get(), u128::from(rate.fee_for(longest.weight()).to_sat()));
        assert_eq!(plan.change().map(Amount::get), Some(40 * 12_000 - plan.fee().get()));
        plan.check_standard(&peg())?;
        // Too little to pay for itself, or no input, is refused; one input is an exit refresh.
        let poor: Vec<Utxo> = (0..4).map(|i| utxo(i, 0, 300)).collect();
        assert!(matches!(plan_consolidation(&poor, rate, &peg(), DUST), Err(BtcReleaseError::DustChange { .. })));
        assert!(plan_consolidation(&[], rate, &peg(), DUST).is_err());
        assert_eq!(plan_consolidation(&inputs[..1], rate, &peg(), DUST)?.inputs().len(), 1);
        // It survives serialization (a plan without payments, only the change).
        let back: ReleasePlan = serde_json::from_value(serde_json::to_value(&plan)?)?;
        assert_eq!(back, plan);
        Ok(())
    }

    #[test]
    fn a_migration_pays_everything_less_its_fee_to_the_next_peg_and_only_there() -> TestResult {
        let rate = FeeRate::from_sat_per_vb(3);
        let next = Peg::new(&BitcoinFederation {
            network: BitcoinNetwork::Regtest,
            threshold: 2,
            keys: (11..=13u8).map(|seed| public(seed).to_string()).collect(),
        })?;
        let alice = Address::from_bytes([5; 20]);
        let mut inputs: Vec<Utxo> = (0..3).map(|i| utxo(i, 0, 50_000)).collect();
        inputs.push(Utxo { owner: Some(alice), ..utxo(9, 1, 70_000) });
        let plan = plan_migration(&inputs, rate, &peg(), &next, DUST)?;
        let tx = unsigned_transaction(&plan, &peg());
        assert_eq!(tx.output.len(), 1, "one output, no change back to the old peg");
        assert_eq!(tx.output[0].script_pubkey, next.script_pubkey());
        assert_eq!(plan.change(), None);
        let longest = with_longest_signatures(&tx, &peg(), &plan.witness_scripts(&peg()));
        assert_eq!(plan.fee().get(), u128::from(rate.fee_for(longest.weight()).to_sat()));
        assert_eq!(plan.outputs()[0].amount.get(), 220_000 - plan.fee().get());
        // A single input migrates too; dust does not.
        assert!(plan_migration(&inputs[..1], rate, &peg(), &next, DUST).is_ok());
        assert!(matches!(
            plan_migration(&[utxo(1, 0, 600)], rate, &peg(), &next, DUST),
            Err(BtcReleaseError::DustChange { .. })
        ));
        // A replacement keeps the inputs and pays more.
        let bumped = replace_migration(&plan, FeeRate::from_sat_per_vb(6), &peg(), &next, DUST)?;
        assert_eq!(bumped.inputs(), plan.inputs());
        assert!(bumped.fee() > plan.fee());
        assert!(replace_migration(&plan, rate, &peg(), &next, DUST).is_err(), "no bump without a higher fee");
        Ok(())
    }

    proptest! {
        /// Whatever the reserves: either the batch waits, or the plan balances exactly, its change
        /// is none or at least the dust limit, and no fewer inputs could have covered the release.
        #[test]
        fn plans_balance_and_use_the_fewest_inputs(
            amounts in proptest::collection::vec(1u64..200_000, 0..12),
            paid in proptest::collection::vec(546u64..150_000, 1..4),
            fee in 0u64..5_000,
        ) {
            let reserves: Vec<Utxo> =
                amounts.iter().enumerate().map(|(i, a)| utxo(u8::try_from(i).unwrap_or(0), 0, u128::from(*a))).collect();
            let outputs: Vec<ReleaseOutput> = paid.iter().map(|a| output(10, u128::from(*a))).collect();
            let needed: u128 = paid.iter().map(|a| u128::from(*a)).sum::<u128>() + u128::from(fee);
            match plan_release(&reserves, &outputs, Amount::new(u128::from(fee)), DUST) {
                Err(error) => prop_assert!(error.must_wait(), "{}", error),
                Ok(plan) => {
                    let spent: u128 = plan.inputs().iter().map(|u| u.amount.get()).sum();
                    let change = plan.change().map_or(0, Amount::get);
                    prop_assert_eq!(spent, needed + change);
                    prop_assert!(change == 0 || change >= DUST.get());
                    let mut sorted: Vec<u128> = amounts.iter().map(|a| u128::from(*a)).collect();
                    sorted.sort_unstable_by(|a, b| b.cmp(a));
                    let fewest = sorted.iter().scan(0u128, |total, a| { *total += a; Some(*total) })
                        .position(|total| total >= needed).map_or(0, |p| p + 1);
                    // Dust change may add inputs beyond the fewest that cover.
                    prop_assert!(plan.inputs().len() >= fewest);
                    if plan.inputs().len() > fewest {
                        let covered: u128 = sorted.iter().take(fewest).sum();
                        prop_assert!(covered - needed < DUST.get() && covered != needed);
                    }
                    let tx = unsigned_transaction(&plan, &peg());
                    prop_assert_eq!(tx.output.len(), outputs.len() + usize::from(change > 0));
                }
            }
        }

        /// Priced at any rate: the plan balances, the shares add up to the fee, each output gets
        /// its burn less its share, and the fee is never below the rate on the signed size.
        #[test]
        fn priced_releases_balance_and_pay_at_least_the_rate(
            burns in proptest::collection::vec(20_000u64..400_000, 1..8),
            rate in 1_000u64..60_000,
        ) {
            let requests: Vec<ReleaseRequest> = burns.iter().enumerate()
                .map(|(i, b)| request(u8::try_from(i + 10).unwrap_or(10), u128::from(*b), u128::from(*b) / 2)).collect();
            let reserves = [utxo(1, 0, 2_000_000), utxo(2, 0, 1_500_000)];
            let rate = FeeRate::from_sat_per_kvb(rate);
            match plan_release_at_rate(&reserves, &requests, rate, &peg(), DUST) {
                Err(error) => prop_assert!(error.blocking_output().is_some(), "{}", error),
                Ok(priced) => {
                    let plan = priced.plan;
                    prop_assert_eq!(plan.fee().get(), priced.shares.iter().map(|s| s.get()).sum::<u128>());
                    let burned: u128 = burns.iter().map(|b| u128::from(*b)).sum();
                    let paid: u128 = plan.outputs().iter().map(|o| o.amount.get()).sum();
                    prop_assert_eq!(paid + plan.fee().get(), burned);
                    let longest = plan.longest(&peg());
                    prop_assert!(plan.fee().get() * 1_000 >= u128::from(rate.sat_per_kvb()) * u128::from(longest.vsize() as u64));
                    prop_assert!(plan.check_standard(&peg()).is_ok());
                }
            }
        }
    }
}
