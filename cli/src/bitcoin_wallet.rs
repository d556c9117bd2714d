//! Paying from the user's P2WPKH address on a Bitcoin node without a wallet (btcd has none):
//! finding the address's unspent outputs, choosing inputs, and signing. Coin selection and
//! signing are pure; [`find_unspent`] is the only I/O.
//!
//! Coins are found however old they are, with what the node offers ([`Coverage`]): btcd's
//! address index (`searchrawtransactions`, `--addrindex`, which the devnet enables), else Bitcoin
//! Core's `scantxoutset`; only a node with neither is searched block by block over the last
//! blocks, and then every message says that older coins were not looked for.
//!
//! This is for regtest and testnet deposits from a local key. It must never spend an output
//! whose spend is already pending: outputs spent by mempool transactions are skipped.

use std::collections::BTreeSet;
use std::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use ferry_parent_chains::bitcoin::{BitcoinRpc, RpcError};
use serde::Deserialize;
use serde_json::json;

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

/// How much of the chain [`find_unspent`] looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// btcd's address index: every block and the mempool.
    AddressIndex,
    /// Bitcoin Core's UTXO set scan: every block (mempool spends checked with `gettxout`).
    UtxoSet,
    /// Only the last `depth` blocks and the mempool: the node offers neither of the above.
    RecentBlocks {
        /// Blocks searched back from the tip.
        depth: u64,
    },
}

impl Coverage {
    /// Whether every block was looked at.
    pub fn is_complete(self) -> bool {
        !matches!(self, Coverage::RecentBlocks { .. })
    }

    /// A short label for `--json`: `address_index`, `utxo_set` or `recent_blocks`.
    pub fn label(self) -> &'static str {
        match self {
            Coverage::AddressIndex => "address_index",
            Coverage::UtxoSet => "utxo_set",
            Coverage::RecentBlocks { .. } => "recent_blocks",
        }
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Coverage::AddressIndex => f.write_str("every block and the mempool, through the node's address index"),
            Coverage::UtxoSet => f.write_str("the node's whole UTXO set (scantxoutset)"),
            Coverage::RecentBlocks { depth } => write!(
                f,
                "only the last {depth} blocks and the mempool: the node offers neither an address index (btcd --addrindex, searchrawtransactions) nor scantxoutset (Bitcoin Core), so older coins were not looked for"
            ),
        }
    }
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
    coverage: Coverage,
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
    let held = if coverage.is_complete() { "the address holds" } else { "the blocks searched hold for the address" };
    let error = CliError::refused(format!(
        "insufficient funds on Bitcoin: {held} {} sat in {} spendable outputs, the payment needs {} sat plus the fee (searched {coverage})",
        total.to_sat(),
        available.len(),
        paid.to_sat()
    ));
    Err(if coverage.is_complete() {
        error.with_hint("fund the address shown by `ferry keys show` (coinbase outputs need 100 confirmations)")
    } else {
        error.with_hint("search further back with --bitcoin-scan-blocks, or use a node with an address index (btcd --txindex --addrindex) or scantxoutset (Bitcoin Core)")
    })
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

/// The outputs of `address` that no block or mempool transaction spends (coinbase outputs once
/// mature), found however old they are when the node allows it, and how far it looked:
/// btcd's address index first, then Bitcoin Core's `scantxoutset`, else the last `depth` blocks.
///
/// # Errors
/// RPC errors other than the node not offering a method.
pub async fn find_unspent(
    rpc: &BitcoinRpc,
    address: &bitcoin::Address,
    depth: u64,
) -> Result<(Vec<Spendable>, Coverage), CliError> {
    let script = address.script_pubkey();
    if let Some(found) = from_address_index(rpc, address, &script).await? {
        return Ok((found, Coverage::AddressIndex));
    }
    if let Some(found) = from_utxo_set(rpc, address).await? {
        return Ok((found, Coverage::UtxoSet));
    }
    Ok((from_recent_blocks(rpc, &script, depth).await?, Coverage::RecentBlocks { depth }))
}

/// Whether `error` says the node does not offer the method (or, btcd, has the index it needs
/// switched off): another way must be tried.
fn not_offered(error: &RpcError) -> bool {
    const METHOD_NOT_FOUND: i64 = -32601;
    const BTCD_MISC: i64 = -1;
    match error.rpc_code() {
        Some(METHOD_NOT_FOUND) => true,
        Some(BTCD_MISC) => error.to_string().contains("index"),
        _ => false,
    }
}

/// Every transaction touching `address` through btcd's `searchrawtransactions` (confirmed and
/// pending), and the outputs paying `script` none of them spends; `None` when the node has no
/// address index.
async fn from_address_index(
    rpc: &BitcoinRpc,
    address: &bitcoin::Address,
    script: &ScriptBuf,
) -> Result<Option<Vec<Spendable>>, CliError> {
    /// One verbose `searchrawtransactions` entry (the fields used).
    #[derive(Deserialize)]
    struct Found {
        hex: String,
        #[serde(default)]
        confirmations: Option<u64>,
    }
    const PAGE: usize = 1_000;
    let mut seen = Vec::new();
    loop {
        let params = [json!(address.to_string()), json!(1), json!(seen.len()), json!(PAGE), json!(0), json!(false)];
        let page: Vec<Found> = match rpc.call("searchrawtransactions", &params).await {
            Ok(page) => page,
            // btcd answers "No Txns available" past the last one.
            Err(error) if error.rpc_code() == Some(ferry_parent_chains::bitcoin::RPC_NOT_FOUND) => Vec::new(),
            Err(error) if not_offered(&error) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let count = page.len();
        for found in page {
            let tx: Transaction = bitcoin::consensus::encode::deserialize_hex(&found.hex).map_err(|e| {
                CliError::other(format!("searchrawtransactions returned a transaction that does not decode: {e}"))
            })?;
            seen.push((tx, found.confirmations.filter(|n| *n > 0)));
        }
        if count < PAGE {
            break;
        }
    }
    let spent: BTreeSet<OutPoint> =
        seen.iter().flat_map(|(tx, _)| tx.input.iter().map(|input| input.previous_output)).collect();
    let mut found = Vec::new();
    for (tx, confirmations) in &seen {
        // Pending or immature coinbase outputs cannot be spent yet.
        let Some(confirmations) = confirmations else { continue };
        if tx.is_coinbase() && *confirmations < COINBASE_MATURITY {
            continue;
        }
        let txid = tx.compute_txid();
        for (vout, out) in tx.output.iter().enumerate() {
            let outpoint = OutPoint { txid, vout: u32::try_from(vout).unwrap_or(u32::MAX) };
            if &out.script_pubkey == script && !spent.contains(&outpoint) {
                found.push(Spendable { outpoint, value: out.value });
            }
        }
    }
    Ok(Some(found))
}

/// The address's outputs in Bitcoin Core's UTXO set (`scantxoutset`), less those a pending
/// transaction spends; `None` when the node has no such method.
async fn from_utxo_set(rpc: &BitcoinRpc, address: &bitcoin::Address) -> Result<Option<Vec<Spendable>>, CliError> {
    /// One `scantxoutset` unspent (the fields used).
    #[derive(Deserialize)]
    struct Unspent {
        txid: String,
        vout: u32,
        amount: f64,
        height: u64,
        #[serde(default)]
        coinbase: bool,
    }
    #[derive(Deserialize)]
    struct Scan {
        unspents: Vec<Unspent>,
    }
    let descriptor = json!([format!("addr({address})")]);
    let scan: Scan = match rpc.call("scantxoutset", &[json!("start"), descriptor]).await {
        Ok(scan) => scan,
        Err(error) if not_offered(&error) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let tip = rpc.get_block_count().await?;
    let mut found = Vec::new();
    for unspent in scan.unspents {
        let txid: Txid =
            unspent.txid.parse().map_err(|e| CliError::other(format!("scantxoutset txid `{}`: {e}", unspent.txid)))?;
        if unspent.coinbase && unspent.height + COINBASE_MATURITY > tip + 1 {
            continue;
        }
        // Bitcoin Core's gettxout with the mempool leaves out what a pending transaction spends.
        if rpc.get_tx_out(&txid, unspent.vout, true).await?.is_none() {
            continue;
        }
        let value = Amount::from_btc(unspent.amount)
            .map_err(|e| CliError::other(format!("scantxoutset amount {}: {e}", unspent.amount)))?;
        found.push(Spendable { outpoint: OutPoint { txid, vout: unspent.vout }, value });
    }
    Ok(Some(found))
}

/// The outputs paying `script` in the last `depth` blocks that no block or mempool transaction
/// spends (coinbase outputs once mature).
async fn from_recent_blocks(rpc: &BitcoinRpc, script: &ScriptBuf, depth: u64) -> Result<Vec<Spendable>, CliError> {
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
        let (tx, spent) = build_payment(&available, Coverage::AddressIndex, pay.clone(), &change, 2)?;
        assert_eq!(spent, vec![spendable(2, 120_000), spendable(1, 100_000)]);
        let fee = 220_000 - tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
        assert!((200..2_000).contains(&fee), "fee {fee}");
        assert_eq!(tx.output.last().map(|o| &o.script_pubkey), Some(&change));
        let signed = sign_p2wpkh(tx, &spent, &secret)?;
        assert!(signed.input.iter().all(|input| input.witness.len() == 2));
        let short = build_payment(&available[2..], Coverage::AddressIndex, pay.clone(), &change, 2).err();
        assert_eq!(short.as_ref().map(CliError::exit_code), Some(4));
        assert!(short.is_some_and(|e| e.message.contains("the address holds 5000 sat")));
        // A partial search never claims the address is empty.
        let partial = build_payment(&[], Coverage::RecentBlocks { depth: 1_000 }, pay, &change, 2).err();
        let message = partial.map(|e| e.message).unwrap_or_default();
        assert!(!message.contains("the address holds") && message.contains("only the last 1000 blocks"), "{message}");
        Ok(())
    }
}
