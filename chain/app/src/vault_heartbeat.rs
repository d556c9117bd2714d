//! The federation's heartbeat to the vault (issue 17): every `heartbeat_interval_blocks` the
//! chain forms a vault action carrying the exit tree's root over the claims of its block
//! ([`crate::exit_claims`]); members sign it with their BLS shares like a listing, relayers
//! deliver it to `FerryVault.heartbeat` and attest it like a release. Each landed heartbeat keeps
//! the vault's escape hatch closed for another `escapeDelay` and gives it the newest root, so
//! holders could exit with what the chain said they own should the federation disappear.
//!
//! One heartbeat is in flight at a time; none forms while a federation hand-over is running (the
//! rotation changes the epoch the vault checks), nor without an Ethereum bridge. The heartbeat
//! keeps going while the bridge is paused: it moves no money, and a paused federation is still
//! there.

use ferry_types::event as ev;
use ferry_types::exit_tree::Hash;
use ferry_types::query::{Batch, BatchRelease, EthereumHeartbeat};
use ferry_types::release::eth::EthHeartbeat;
use ferry_types::{Denom, Params};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// Where the chain keeps its view of the vault heartbeats.
mod keys {
    /// The heartbeat batch being signed or delivered, if any (a `u64` batch id).
    pub const IN_FLIGHT: &[u8] = b"exit/eth/heartbeat/in_flight";
    /// The height the last heartbeat was formed at (a `u64`).
    pub const FORMED: &[u8] = b"exit/eth/heartbeat/formed";
    /// The last heartbeat that landed ([`super::Landed`]).
    pub const LANDED: &[u8] = b"exit/eth/heartbeat/landed";
}

/// The last heartbeat the vault applied, as the chain learnt it from the relayers' attestations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landed {
    /// Its batch id (the vault's nonce).
    pub nonce: u64,
    /// The sidechain height whose claims its root covers.
    pub height: u64,
    /// The root (hex).
    #[serde(with = "hex::serde")]
    pub root: Hash,
    /// The sidechain height its delivery settled at.
    pub settled_height: u64,
}

impl<R: StateRead> StateDelta<R> {
    /// The last heartbeat the vault applied, if any.
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn last_vault_heartbeat(&self) -> Result<Option<Landed>, StateError> {
        self.get_record(keys::LANDED)
    }
}

/// End of block: forms the heartbeat when one is due (see the module docs). `exit_root` is the
/// root over the claims this block leaves (those of `height`).
///
/// # Errors
/// On storage failure or a corrupt record.
pub fn form_if_due<R: StateRead>(
    state: &mut StateDelta<R>,
    params: &Params,
    height: u64,
    exit_root: Hash,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let Some(bridge) = params.withdrawals.ethereum.as_ref() else { return Ok(()) };
    let interval = bridge.heartbeat_interval_blocks.max(1);
    let formed: u64 = state.get_record(keys::FORMED)?.unwrap_or(0);
    let in_flight: Option<u64> = state.get_record(keys::IN_FLIGHT)?;
    if height < formed.saturating_add(interval) || in_flight.is_some() || state.running_handover()?.is_some() {
        return Ok(());
    }
    let epoch = state.federation()?.epoch;
    let covered = height;
    let id = crate::batch::record_itemless(
        state,
        &Denom::wei(),
        |nonce| {
            BatchRelease::EthereumHeartbeat(EthereumHeartbeat {
                heartbeat: EthHeartbeat {
                    chain_id: bridge.chain_id,
                    vault: bridge.vault,
                    epoch,
                    nonce,
                    height: covered,
                    balances_root: exit_root,
                },
                signature: None,
                signature_compressed: None,
            })
        },
        height,
        events,
    )?;
    state.put_record(keys::IN_FLIGHT.to_vec(), &id);
    state.put_record(keys::FORMED.to_vec(), &height);
    events.push(Event::new(
        ev::VAULT_HEARTBEAT_FORMED,
        [(ev::BATCH_ID, id.to_string()), (ev::HEIGHT, covered.to_string()), (ev::EXIT_ROOT, hex::encode(exit_root))],
    ));
    tracing::info!(batch_id = id, covered, root = %hex::encode(exit_root), "vault heartbeat formed");
    Ok(())
}

/// A heartbeat's delivery settled: it is the last one landed. Does nothing for other batches.
///
/// # Errors
/// On storage failure.
pub(crate) fn settled<R: StateRead>(
    state: &mut StateDelta<R>,
    batch: &Batch,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let BatchRelease::EthereumHeartbeat(heartbeat) = &batch.release else { return Ok(()) };
    let heartbeat = &heartbeat.heartbeat;
    free(state, batch.id)?;
    let landed = Landed {
        nonce: heartbeat.nonce,
        height: heartbeat.height,
        root: heartbeat.balances_root,
        settled_height: height,
    };
    state.put_record(keys::LANDED.to_vec(), &landed);
    events.push(Event::new(
        ev::VAULT_HEARTBEAT_LANDED,
        [
            (ev::BATCH_ID, batch.id.to_string()),
            (ev::HEIGHT, heartbeat.height.to_string()),
            (ev::EXIT_ROOT, hex::encode(heartbeat.balances_root)),
        ],
    ));
    tracing::info!(batch_id = batch.id, covered = heartbeat.height, "vault heartbeat landed");
    Ok(())
}

/// A heartbeat batch was aborted: the next one may form. Does nothing for other batches.
///
/// # Errors
/// On storage failure.
pub(crate) fn aborted<R: StateRead>(state: &mut StateDelta<R>, batch: &Batch) -> Result<(), StateError> {
    if matches!(batch.release, BatchRelease::EthereumHeartbeat(_)) {
        free(state, batch.id)?;
    }
    Ok(())
}

fn free<R: StateRead>(state: &mut StateDelta<R>, id: u64) -> Result<(), StateError> {
    let in_flight: Option<u64> = state.get_record(keys::IN_FLIGHT)?;
    if in_flight == Some(id) {
        state.delete(keys::IN_FLIGHT.to_vec());
    }
    Ok(())
}
