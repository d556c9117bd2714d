//! Broadcasting a signed Bitcoin exit disbursal ([`SignedDisbursal`]) in the order its
//! transactions become valid: nothing before its lock height; then the intermediate, once every
//! reserve UTXO it spends is still unspent; then, once the intermediate is in a block, the
//! fan-outs (sending them all unconfirmed could exceed a node's descendant limits).
//!
//! [`advance`] takes one step and says where the disbursal stands; call it again (each relayer
//! round, or `ferry exit btc` again) until [`DisbursalStep::Done`] or [`DisbursalStep::Dead`].
//! Used by the relayer, which keeps every signed disbursal and broadcasts it when it opens, and
//! by `ferry exit btc`.

use bitcoin::Txid;
use ferry_types::release::exit::{ExitError, SignedDisbursal};

use crate::bitcoin::{BitcoinRpc, RpcError};

/// Where a disbursal stands after one [`advance`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisbursalStep {
    /// Not valid yet: the tip is below the lock height.
    Locked {
        /// The node's tip.
        tip: u64,
        /// The lock height.
        lock_height: u32,
    },
    /// A reserve UTXO it spends was spent by another transaction (a later release): it can
    /// never confirm.
    Dead {
        /// The spent outpoint (`txid:vout`).
        spent: String,
    },
    /// The intermediate is in the mempool (sent now or before): the fan-outs follow once it is
    /// in a block.
    IntermediatePending {
        /// Its txid.
        txid: Txid,
    },
    /// The intermediate is in a block; these fan-outs are in the mempool.
    FanOutsPending {
        /// How many of them still wait for a block.
        pending: usize,
    },
    /// Every transaction is in a block.
    Done,
}

/// Why a step could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DisbursalError {
    /// The stored disbursal is malformed.
    #[error(transparent)]
    Malformed(#[from] ExitError),
    /// The node refused a transaction or could not be asked.
    #[error("{what}: {error}")]
    Rpc {
        /// What was being done.
        what: String,
        /// The node's answer.
        error: RpcError,
    },
}

fn rpc(what: impl Into<String>) -> impl FnOnce(RpcError) -> DisbursalError {
    let what = what.into();
    move |error| DisbursalError::Rpc { what, error }
}

/// Takes the next step of broadcasting `disbursal` through `node` (module docs).
///
/// # Errors
/// A malformed disbursal; a node that cannot be asked or refuses a transaction for another
/// reason than knowing it already.
pub async fn advance(node: &BitcoinRpc, disbursal: &SignedDisbursal) -> Result<DisbursalStep, DisbursalError> {
    let transactions = disbursal.decoded()?;
    let Some((intermediate, fan_outs)) = transactions.split_first() else {
        return Err(ExitError::NoReserve.into());
    };
    // Below the lock height no node takes the intermediate (non-final), so nothing else needs
    // asking: a kept disbursal costs one call a round until it opens.
    let tip = node.get_block_count().await.map_err(rpc("reading the tip"))?;
    if tip < u64::from(disbursal.lock_height) {
        return Ok(DisbursalStep::Locked { tip, lock_height: disbursal.lock_height });
    }
    let txid = intermediate.compute_txid();
    let status =
        node.get_transaction_status(&txid).await.map_err(rpc(format!("looking up the intermediate {txid}")))?;
    match status {
        None => {
            for input in &disbursal.inputs {
                let outpoint = input.outpoint().map_err(|_| ExitError::Decode { tx: 0 })?;
                let unspent = node
                    .get_tx_out(&outpoint.txid, outpoint.vout, true)
                    .await
                    .map_err(rpc(format!("looking up reserve UTXO {input}")))?;
                if unspent.is_none() {
                    return Ok(DisbursalStep::Dead { spent: input.to_string() });
                }
            }
            send(node, intermediate, "the intermediate").await?;
            Ok(DisbursalStep::IntermediatePending { txid })
        }
        Some(status) if status.confirmations.unwrap_or(0) == 0 => Ok(DisbursalStep::IntermediatePending { txid }),
        Some(_) => {
            let mut pending = 0;
            for (index, fan_out) in fan_outs.iter().enumerate() {
                let fan_txid = fan_out.compute_txid();
                let known = node
                    .get_transaction_status(&fan_txid)
                    .await
                    .map_err(rpc(format!("looking up fan-out {index} ({fan_txid})")))?;
                match known {
                    Some(status) if status.confirmations.unwrap_or(0) > 0 => {}
                    Some(_) => pending += 1,
                    None => {
                        send(node, fan_out, &format!("fan-out {index}")).await?;
                        pending += 1;
                    }
                }
            }
            Ok(if pending == 0 { DisbursalStep::Done } else { DisbursalStep::FanOutsPending { pending } })
        }
    }
}

async fn send(node: &BitcoinRpc, tx: &bitcoin::Transaction, what: &str) -> Result<(), DisbursalError> {
    match node.send_raw_transaction(tx).await {
        Ok(_) => Ok(()),
        Err(error) if error.is_already_known() => Ok(()),
        Err(error) => Err(DisbursalError::Rpc { what: format!("sending {what} ({})", tx.compute_txid()), error }),
    }
}
