//! Bitcoin's standardness policy — what nodes relay and miners take by default — for the
//! transactions Ferry builds and signs (Bitcoin Core's `IsStandardTx`, `IsWitnessStandard` and
//! the minimum relay fee, with Core's default settings).
//!
//! A release that breaks any of these rules is valid in a block but no node relays it, so it
//! would never confirm and the money it moves would be stuck. btcd (run with `--rejectnonstd`)
//! enforces most of them but not the P2WSH witness limits; this check is the one the chain and
//! the signers apply, on the transaction as it will be broadcast or, before signing, with every
//! signature at its longest ([`with_longest_signatures`]).
//!
//! Pure: no I/O, no clock. The limits are consensus-relevant for Ferry only in that every party
//! must apply the same ones, so they are constants here, not configuration.

use bitcoin::{Amount as Sats, Script, ScriptBuf, Transaction, TxOut, Weight, Witness};

use crate::peg::Peg;
use crate::release::fee::FeeRate;

/// The heaviest standard transaction (`MAX_STANDARD_TX_WEIGHT`).
pub const MAX_STANDARD_TX_WEIGHT: Weight = Weight::from_wu(400_000);
/// The largest standard P2WSH witness script (`MAX_STANDARD_P2WSH_SCRIPT_SIZE`).
pub const MAX_STANDARD_P2WSH_SCRIPT_SIZE: usize = 3_600;
/// The most stack items (the witness script not counted) a standard P2WSH spend may push
/// (`MAX_STANDARD_P2WSH_STACK_ITEMS`).
pub const MAX_STANDARD_P2WSH_STACK_ITEMS: usize = 100;
/// The largest stack item (the witness script not counted) of a standard P2WSH spend
/// (`MAX_STANDARD_P2WSH_STACK_ITEM_SIZE`).
pub const MAX_STANDARD_P2WSH_STACK_ITEM_SIZE: usize = 80;
/// The largest standard `OP_RETURN` output script, opcode and pushes included (`-datacarriersize`
/// 80 bytes of data: 83 script bytes).
pub const MAX_OP_RETURN_SCRIPT_SIZE: usize = 83;
/// The minimum relay fee rate (`-minrelaytxfee`, 1 sat/vB).
pub const MIN_RELAY_FEE_RATE: FeeRate = FeeRate::ONE_SAT_PER_VBYTE;

/// The longest signature a witness carries: a low-S strict DER signature is at most 71 bytes (a
/// 33-byte R, a 32-byte S, six bytes of framing), plus the sighash-type byte.
const LONGEST_WITNESS_SIGNATURE: usize = 72;

/// Why a transaction is not standard; each names the offending part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Outside the standard versions 1 and 2.
    #[error("transaction version {0} is not standard (1 or 2)")]
    Version(i32),
    /// Heavier than [`MAX_STANDARD_TX_WEIGHT`].
    #[error("transaction weighs {weight} weight units, over the standard {max}")]
    TooHeavy {
        /// Its weight.
        weight: u64,
        /// The limit.
        max: u64,
    },
    /// `prevouts` does not give one output per input.
    #[error("{inputs} inputs but {prevouts} spent outputs given")]
    PrevoutsMismatch {
        /// Inputs of the transaction.
        inputs: usize,
        /// Outputs given.
        prevouts: usize,
    },
    /// A P2WSH input's witness script is larger than [`MAX_STANDARD_P2WSH_SCRIPT_SIZE`].
    #[error("input {input}: witness script of {size} bytes, over the standard {max}")]
    WitnessScriptTooLarge {
        /// The input.
        input: usize,
        /// The script's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A P2WSH input pushes more than [`MAX_STANDARD_P2WSH_STACK_ITEMS`] items.
    #[error("input {input}: {items} witness stack items, over the standard {max}")]
    TooManyStackItems {
        /// The input.
        input: usize,
        /// Items below the witness script.
        items: usize,
        /// The limit.
        max: usize,
    },
    /// A P2WSH input pushes an item larger than [`MAX_STANDARD_P2WSH_STACK_ITEM_SIZE`].
    #[error("input {input}: witness item {item} of {size} bytes, over the standard {max}")]
    StackItemTooLarge {
        /// The input.
        input: usize,
        /// The item's position on the stack.
        item: usize,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A P2WSH input has no witness script at all.
    #[error("input {input} spends a P2WSH output without a witness script")]
    MissingWitnessScript {
        /// The input.
        input: usize,
    },
    /// An output script of a type nodes do not relay.
    #[error("output {vout}: non-standard script {script}")]
    NonStandardOutput {
        /// The output.
        vout: usize,
        /// Its script, as hex.
        script: String,
    },
    /// More than one `OP_RETURN` output.
    #[error("{count} OP_RETURN outputs; a standard transaction has at most one")]
    SeveralDataOutputs {
        /// How many.
        count: usize,
    },
    /// An output worth less than its dust threshold.
    #[error("output {vout} of {value} sat is dust (threshold {threshold} sat for its type)")]
    Dust {
        /// The output.
        vout: usize,
        /// Its value.
        value: u64,
        /// The least it must hold.
        threshold: u64,
    },
    /// A fee below the minimum relay fee for the transaction's size.
    #[error("fee {fee} sat for {vsize} vB is below the minimum relay fee of {min_fee} sat")]
    FeeBelowRelay {
        /// The fee paid.
        fee: u64,
        /// The transaction's virtual size.
        vsize: u64,
        /// The least it must pay.
        min_fee: u64,
    },
}

/// The least an output with `script` must hold not to be dust (Core's default dust relay fee,
/// 3 sat/vB: 294 sat for P2WPKH, 330 for P2WSH and P2TR, 546 for P2PKH).
pub fn dust_threshold(script: &Script) -> Sats {
    script.minimal_non_dust()
}

/// The least fee that relays a transaction of `vsize` virtual bytes.
pub fn min_relay_fee(vsize: u64) -> Sats {
    MIN_RELAY_FEE_RATE.fee_for(Weight::from_vb_unchecked(vsize))
}

/// Checks `tx`, spending `prevouts` (one per input, in order) and paying `fee`, against the
/// standardness rules above. P2WSH limits are checked on inputs whose spent output is P2WSH.
///
/// # Errors
/// The first [`Violation`] found, naming the input or output.
pub fn check(tx: &Transaction, prevouts: &[TxOut], fee: Sats) -> Result<(), Violation> {
    let version = tx.version.0;
    if !(1..=2).contains(&version) {
        return Err(Violation::Version(version));
    }
    let weight = tx.weight();
    if weight > MAX_STANDARD_TX_WEIGHT {
        return Err(Violation::TooHeavy { weight: weight.to_wu(), max: MAX_STANDARD_TX_WEIGHT.to_wu() });
    }
    if prevouts.len() != tx.input.len() {
        return Err(Violation::PrevoutsMismatch { inputs: tx.input.len(), prevouts: prevouts.len() });
    }
    for (input, (txin, prevout)) in tx.input.iter().zip(prevouts).enumerate() {
        if prevout.script_pubkey.is_p2wsh() {
            check_p2wsh_witness(input, &txin.witness)?;
        }
    }
    let mut data_outputs = 0;
    for (vout, output) in tx.output.iter().enumerate() {
        let script = &output.script_pubkey;
        if script.is_op_return() {
            if script.len() > MAX_OP_RETURN_SCRIPT_SIZE {
                return Err(Violation::NonStandardOutput { vout, script: script.to_hex_string() });
            }
            data_outputs += 1;
            continue;
        }
        let standard_type =
            script.is_p2pkh() || script.is_p2sh() || script.is_p2wpkh() || script.is_p2wsh() || script.is_p2tr();
        if !standard_type {
            return Err(Violation::NonStandardOutput { vout, script: script.to_hex_string() });
        }
        let threshold = dust_threshold(script);
        if output.value < threshold {
            return Err(Violation::Dust { vout, value: output.value.to_sat(), threshold: threshold.to_sat() });
        }
    }
    if data_outputs > 1 {
        return Err(Violation::SeveralDataOutputs { count: data_outputs });
    }
    let vsize = weight.to_vbytes_ceil();
    let min_fee = min_relay_fee(vsize);
    if fee < min_fee {
        return Err(Violation::FeeBelowRelay { fee: fee.to_sat(), vsize, min_fee: min_fee.to_sat() });
    }
    Ok(())
}

/// The P2WSH limits on one input's witness: the script (last item) at most
/// [`MAX_STANDARD_P2WSH_SCRIPT_SIZE`] bytes, at most [`MAX_STANDARD_P2WSH_STACK_ITEMS`] items
/// below it, each at most [`MAX_STANDARD_P2WSH_STACK_ITEM_SIZE`] bytes.
fn check_p2wsh_witness(input: usize, witness: &Witness) -> Result<(), Violation> {
    let Some(script) = witness.last() else {
        return Err(Violation::MissingWitnessScript { input });
    };
    if script.len() > MAX_STANDARD_P2WSH_SCRIPT_SIZE {
        return Err(Violation::WitnessScriptTooLarge {
            input,
            size: script.len(),
            max: MAX_STANDARD_P2WSH_SCRIPT_SIZE,
        });
    }
    let items = witness.len() - 1;
    if items > MAX_STANDARD_P2WSH_STACK_ITEMS {
        return Err(Violation::TooManyStackItems { input, items, max: MAX_STANDARD_P2WSH_STACK_ITEMS });
    }
    for (item, bytes) in witness.iter().take(items).enumerate() {
        if bytes.len() > MAX_STANDARD_P2WSH_STACK_ITEM_SIZE {
            return Err(Violation::StackItemTooLarge {
                input,
                item,
                size: bytes.len(),
                max: MAX_STANDARD_P2WSH_STACK_ITEM_SIZE,
            });
        }
    }
    Ok(())
}

/// `unsigned` (a release spending the peg's outputs) with every input's witness as the signed
/// one will be, each signature at its longest: the empty dummy, `threshold` signatures of
/// [`LONGEST_WITNESS_SIGNATURE`] bytes, the input's witness script (`witness_scripts[i]` for
/// input `i`: the peg's, or a deposit address's, [`Peg::spend_script`]). Its weight bounds the
/// signed transaction's, so [`check`] on it decides before anyone signs.
pub fn with_longest_signatures(unsigned: &Transaction, peg: &Peg, witness_scripts: &[ScriptBuf]) -> Transaction {
    let mut signed = unsigned.clone();
    for (input, script) in signed.input.iter_mut().zip(witness_scripts) {
        let mut witness = Witness::new();
        witness.push([]);
        for _ in 0..peg.threshold() {
            witness.push([0u8; LONGEST_WITNESS_SIGNATURE]);
        }
        witness.push(script.as_bytes());
        input.witness = witness;
    }
    signed
}

#[cfg(test)]
mod tests {
    use bitcoin::absolute::LockTime;
    use bitcoin::hashes::Hash;
    use bitcoin::opcodes::all::OP_PUSHBYTES_0;
    use bitcoin::transaction::Version;
    use bitcoin::{OutPoint, ScriptBuf, TxIn, Txid, WScriptHash};

    use super::*;
    use crate::peg::{BitcoinFederation, BitcoinNetwork};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn peg(members: u8, threshold: u32) -> Result<Peg, Box<dyn std::error::Error>> {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let keys = (1..=members)
            .map(|seed| {
                let secret = bitcoin::secp256k1::SecretKey::from_slice(&[seed; 32])?;
                Ok(bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &secret).to_string())
            })
            .collect::<Result<Vec<_>, bitcoin::secp256k1::Error>>()?;
        Ok(Peg::new(&BitcoinFederation { network: BitcoinNetwork::Regtest, threshold, keys })?)
    }

    fn p2wpkh() -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]))
    }

    /// A release of `peg`: `inputs` peg inputs, one P2WPKH output of `value`, longest witnesses.
    fn release(peg: &Peg, inputs: usize, value: u64) -> (Transaction, Vec<TxOut>) {
        let unsigned = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: (0..inputs)
                .map(|vout| TxIn {
                    previous_output: OutPoint { txid: Txid::all_zeros(), vout: u32::try_from(vout).unwrap_or(0) },
                    ..TxIn::default()
                })
                .collect(),
            output: vec![TxOut { value: Sats::from_sat(value), script_pubkey: p2wpkh() }],
        };
        let prevouts = vec![TxOut { value: Sats::from_sat(100_000), script_pubkey: peg.script_pubkey() }; inputs];
        let scripts = vec![peg.witness_script().to_owned(); inputs];
        (with_longest_signatures(&unsigned, peg, &scripts), prevouts)
    }

    #[test]
    fn a_three_of_four_release_at_the_relay_fee_is_standard() -> TestResult {
        let peg = peg(4, 3)?;
        let (tx, prevouts) = release(&peg, 2, 50_000);
        let min_fee = min_relay_fee(tx.vsize() as u64);
        check(&tx, &prevouts, min_fee)?;
        let short = Sats::from_sat(min_fee.to_sat() - 1);
        assert!(matches!(check(&tx, &prevouts, short), Err(Violation::FeeBelowRelay { .. })));
        Ok(())
    }

    #[test]
    fn dust_thresholds_follow_the_output_type() {
        assert_eq!(dust_threshold(&p2wpkh()).to_sat(), 294);
        assert_eq!(dust_threshold(&ScriptBuf::new_p2wsh(&WScriptHash::all_zeros())).to_sat(), 330);
        assert_eq!(dust_threshold(&ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_byte_array([1; 20]))).to_sat(), 546);
    }

    #[test]
    fn each_limit_is_refused_naming_the_part() -> TestResult {
        let peg = peg(4, 3)?;
        let fee = Sats::from_sat(1_000_000);

        let (mut tx, prevouts) = release(&peg, 1, 293);
        assert_eq!(check(&tx, &prevouts, fee), Err(Violation::Dust { vout: 0, value: 293, threshold: 294 }));
        tx.output[0].value = Sats::from_sat(294);
        check(&tx, &prevouts, fee)?;

        let mut bare = tx.clone();
        bare.output[0].script_pubkey = ScriptBuf::from_bytes(vec![0x51]);
        assert!(matches!(check(&bare, &prevouts, fee), Err(Violation::NonStandardOutput { vout: 0, .. })));

        let mut memos = tx.clone();
        let memo = ScriptBuf::new_op_return([1u8; 20]);
        memos.output.push(TxOut { value: Sats::ZERO, script_pubkey: memo.clone() });
        check(&memos, &prevouts, fee)?;
        memos.output.push(TxOut { value: Sats::ZERO, script_pubkey: memo });
        assert_eq!(check(&memos, &prevouts, fee), Err(Violation::SeveralDataOutputs { count: 2 }));

        let mut big_memo = tx.clone();
        big_memo.output.push(TxOut {
            value: Sats::ZERO,
            script_pubkey: ScriptBuf::new_op_return(bitcoin::script::PushBytesBuf::try_from(vec![1u8; 80])?),
        });
        check(&big_memo, &prevouts, fee)?;
        big_memo.output[1].script_pubkey =
            ScriptBuf::new_op_return(bitcoin::script::PushBytesBuf::try_from(vec![1u8; 81])?);
        assert!(matches!(check(&big_memo, &prevouts, fee), Err(Violation::NonStandardOutput { vout: 1, .. })));

        let mut item = tx.clone();
        let mut witness: Vec<Vec<u8>> = item.input[0].witness.to_vec();
        witness[1] = vec![0x30; 81];
        item.input[0].witness = Witness::from_slice(&witness);
        assert_eq!(
            check(&item, &prevouts, fee),
            Err(Violation::StackItemTooLarge { input: 0, item: 1, size: 81, max: 80 })
        );

        let mut items = tx.clone();
        let script = peg.witness_script().to_bytes();
        let many: Vec<Vec<u8>> = std::iter::repeat_n(vec![1u8], 101).chain([script]).collect();
        items.input[0].witness = Witness::from_slice(&many);
        assert_eq!(check(&items, &prevouts, fee), Err(Violation::TooManyStackItems { input: 0, items: 101, max: 100 }));

        let mut big_script = tx.clone();
        let oversized = vec![OP_PUSHBYTES_0.to_u8(); 3_601];
        big_script.input[0].witness = Witness::from_slice(&[vec![], oversized]);
        assert_eq!(
            check(&big_script, &prevouts, fee),
            Err(Violation::WitnessScriptTooLarge { input: 0, size: 3_601, max: 3_600 })
        );

        let mut old = tx.clone();
        old.version = Version(3);
        assert_eq!(check(&old, &prevouts, fee), Err(Violation::Version(3)));
        assert!(matches!(check(&tx, &[], fee), Err(Violation::PrevoutsMismatch { inputs: 1, prevouts: 0 })));
        Ok(())
    }

    #[test]
    fn a_release_over_the_standard_weight_is_refused() -> TestResult {
        let peg = peg(16, 11)?;
        let (tx, prevouts) = release(&peg, 300, 50_000);
        assert!(matches!(
            check(&tx, &prevouts, Sats::from_sat(10_000_000)),
            Err(Violation::TooHeavy { max: 400_000, .. })
        ));
        Ok(())
    }

    #[test]
    fn the_largest_federation_peg_stays_within_the_p2wsh_limits() -> TestResult {
        // 20 keys is the most a CHECKMULTISIG peg takes (17 to 20 pushed as data); its spend must
        // stay standard, at every threshold.
        for (keys, threshold) in [(16, 16), (17, 12), (20, 14), (20, 20)] {
            let peg = peg(keys, threshold)?;
            assert!(peg.witness_script().len() <= 2 + 20 * 34 + 2 + 1, "{keys} keys");
            let (tx, prevouts) = release(&peg, 1, 50_000);
            check(&tx, &prevouts, Sats::from_sat(100_000))?;
        }
        Ok(())
    }
}
