//! Paying from the user's P2WPKH address on a Bitcoin node without a wallet (btcd has none):
//! finding the address's unspent outputs by reading recent blocks and the mempool, choosing
//! inputs, and signing. Coin selection and signing are pure; [`find_unspent`] is the only I/O.
//!
//! This is for regtest and testnet deposits from a local key. It must never spend an output
//! whose spend is already pending: outputs spent by mempool transactions are skipped.

use std::collections::BTreeSet;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use ferry_relayer::bitcoin::rpc::BitcoinRpc;

use crate::error::CliError;

/// Coinbase outputs are spendable this many blocks after their own.
const COINBASE_MATURITY: u64 = 100;
/// Change below this goes to the fee instead of a dust output.
pub const MIN_CHANGE: Amount = Amount::from_sat(1_000);

/// An output the key can spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spendable {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
}

/// Virtual size estimate of a P2WPKH-input transaction: 11 vB of overhead, 68 per input, and
/// each output's 9 bytes plus its script.
fn estimated_vsize(inputs: usize, outputs: &[TxOut]) -> u64 {
    let outputs: usize = outputs.iter().map(|out| 9 + out.script_pubkey.len()).sum();
    u64::try_from(11 + 68 * inputs + outputs).unwrap_or(u64::MAX)
}

/// An unsigned transaction paying `outputs` from `available` (largest first, the fewest inputs),
/// change to `change` at `fee_rate` sat/vB; returns it with the spent outputs in input order.
///
/// # Errors
/// Bad input naming what is missing when the outputs plus the fee exceed what is available.
pub fn build_payment(
    available: &[Spendable],
    outputs: Vec<TxOut>,
    change: &ScriptBuf,
    fee_rate: u64,
) -> Result<(Transaction, Vec<Spendable>), CliError> {
    let paid = outputs.iter().map(|out| out.value).try_fold(Amount::ZERO, Amount::checked_add);
    let paid = paid.ok_or_else(|| CliError::bad_input("the outputs overflow"))?;
    let mut sorted = available.to_vec();
    sorted.sort_by(|a, b| b.value.cmp(&a.value).then(a.outpoint.cmp(&b.outpoint)));
    let total: Amount = sorted.iter().map(|s| s.value).sum();
    let mut chosen = Vec::new();
    let mut sum = Amount::ZERO;
    let with_change = {
        let mut outs = outputs.clone();
        outs.push(TxOut { value: Amount::ZERO, script_pubkey: change.clone() });
        outs
    };
    for spendable in sorted {
        sum += spendable.value;
        chosen.push(spendable);
        let fee = Amount::from_sat(estimated_vsize(chosen.len(), &with_change).saturating_mul(fee_rate));
        if sum >= paid + fee {
            let mut output = outputs;
            let change_value = sum - paid - fee;
            if change_value >= MIN_CHANGE {
                output.push(TxOut { value: change_value, script_pubkey: change.clone() });
            }
            let input = chosen
                .iter()
                .map(|s| TxIn {
                    previous_output: s.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect();
            let tx = Transaction { version: Version::TWO, lock_time: LockTime::ZERO, input, output };
            return Ok((tx, chosen));
        }
    }
    Err(CliError::refused(format!(
        "insufficient funds on Bitcoin: the address holds {} in {} spendable outputs, the payment needs {} plus the fee",
        total.to_sat(),
        available.len(),
        paid.to_sat()
    ))
    .with_hint("fund the address shown by `ferry keys show` (coinbase outputs need 100 confirmations)"))
}

/// Signs every input of `tx` (each spending a P2WPKH output of `secret` worth `spent[i]`),
/// SIGHASH_ALL, segwit v0.
///
/// # Errors
/// When `spent` does not match the inputs.
pub fn sign_p2wpkh(mut tx: Transaction, spent: &[Spendable], secret: &SecretKey) -> Result<Transaction, CliError> {
    let secp = Secp256k1::new();
    let public_key = bitcoin::CompressedPublicKey(secret.public_key(&secp));
    let script = ScriptBuf::new_p2wpkh(&public_key.wpubkey_hash());
    if spent.len() != tx.input.len() {
        return Err(CliError::other(format!("{} inputs but {} spent outputs", tx.input.len(), spent.len())));
    }
    let mut cache = SighashCache::new(&mut tx);
    for (index, spendable) in spent.iter().enumerate() {
        let sighash = cache
            .p2wpkh_signature_hash(index, &script, spendable.value, EcdsaSighashType::All)
            .map_err(|e| CliError::other(format!("sighash of input {index}: {e}")))?;
        let signature = bitcoin::ecdsa::Signature {
            signature: secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), secret),
            sighash_type: EcdsaSighashType::All,
        };
        let witness = cache.witness_mut(index).ok_or_else(|| CliError::other(format!("no input {index}")))?;
        *witness = Witness::p2wpkh(&signature, &public_key.0);
    }
    Ok(tx)
}

/// The outputs paying `script` in the last `depth` blocks that no block or mempool transaction
/// spends (coinbase outputs once mature).
///
/// # Errors
/// RPC errors.
pub async fn find_unspent(rpc: &BitcoinRpc, script: &ScriptBuf, depth: u64) -> Result<Vec<Spendable>, CliError> {
    let tip = rpc.get_block_count().await?;
    let mut found = Vec::new();
    let mut spent = BTreeSet::new();
    let mut note = |tx: &Transaction, height: Option<u64>, found: &mut Vec<Spendable>| {
        for input in &tx.input {
            spent.insert(input.previous_output);
        }
        let immature = tx.is_coinbase() && height.is_none_or(|h| h + COINBASE_MATURITY > tip + 1);
        if immature || height.is_none() {
            return;
        }
        let txid = tx.compute_txid();
        for (vout, out) in tx.output.iter().enumerate() {
            if &out.script_pubkey == script {
                let vout = u32::try_from(vout).unwrap_or(u32::MAX);
                found.push(Spendable { outpoint: OutPoint { txid, vout }, value: out.value });
            }
        }
    };
    for height in tip.saturating_sub(depth).max(1)..=tip {
        let block = rpc.get_block(&rpc.get_block_hash(height).await?).await?;
        for tx in &block.txdata {
            note(tx, Some(height), &mut found);
        }
    }
    let mempool: Vec<String> = rpc.call("getrawmempool", &[]).await?;
    for txid in mempool {
        let Ok(txid) = txid.parse::<Txid>() else { continue };
        // A transaction mined meanwhile is no longer in the mempool: skip it.
        if let Ok(tx) = rpc.get_raw_transaction(&txid).await {
            note(&tx, None, &mut found);
        }
    }
    found.retain(|s| !spent.contains(&s.outpoint));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spendable(n: u8, sats: u64) -> Spendable {
        Spendable {
            outpoint: OutPoint { txid: Txid::from_byte_array([n; 32]), vout: 0 },
            value: Amount::from_sat(sats),
        }
    }

    #[test]
    fn largest_outputs_are_spent_first_and_change_returns() -> Result<(), CliError> {
        let secret = SecretKey::from_slice(&[9; 32]).map_err(|e| CliError::other(e.to_string()))?;
        let change =
            ScriptBuf::new_p2wpkh(&bitcoin::CompressedPublicKey(secret.public_key(&Secp256k1::new())).wpubkey_hash());
        let pay = vec![TxOut { value: Amount::from_sat(150_000), script_pubkey: ScriptBuf::new_op_return([1u8; 4]) }];
        let available = [spendable(1, 100_000), spendable(2, 120_000), spendable(3, 5_000)];
        let (tx, spent) = build_payment(&available, pay.clone(), &change, 2)?;
        assert_eq!(spent, vec![spendable(2, 120_000), spendable(1, 100_000)]);
        let fee = 220_000 - tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
        assert!((200..2_000).contains(&fee), "fee {fee}");
        assert_eq!(tx.output.last().map(|o| &o.script_pubkey), Some(&change));
        let signed = sign_p2wpkh(tx, &spent, &secret)?;
        assert!(signed.input.iter().all(|input| input.witness.len() == 2));
        let short = build_payment(&available[2..], pay, &change, 2).err();
        assert_eq!(short.map(|e| e.exit_code()), Some(4));
        Ok(())
    }
}
