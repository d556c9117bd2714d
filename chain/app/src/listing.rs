//! The token allowlist as a federation action: which ERC-20 tokens the vault accepts and the
//! chain mints.
//!
//! A member proposes to list a token (with the withdrawal limits the chain will apply to it) or
//! to unlist it (`MsgProposeListing`). Proposals are kept per token and member (the latest
//! counts); when `attest_quorum` members' proposals are identical, the chain records a listing
//! batch ([`ferry_types::query::EthereumListing`], no items, a total of zero) whose nonce is the
//! batch id. From there it travels the release path: members sign the payload with their BLS
//! shares, the chain combines them, a relayer delivers `FerryVault.setListing`, and a quorum
//! attests the transaction (`MsgAttestRelease`). Only then does the chain change its own
//! allowlist ([`ferry_types::Params::apply_listing`]): a token is minted only once the vault
//! accepts it, and an unlisted token stops minting once the vault refuses it. While a token's
//! change is in flight, a member proposing the same change joins its proposers (signers sign a
//! change only when their own member proposed it) and a different proposal is refused; an
//! aborted listing batch frees the token again.
//!
//! Proposals below a quorum do nothing but wait.

use std::collections::BTreeMap;

use ferry_types::event as ev;
use ferry_types::msg::MsgProposeListing;
use ferry_types::query::{Batch, BatchRelease, EthereumListing, ListingProposal, TokenProposals};
use ferry_types::release::eth::{EthAddress, EthListing};
use ferry_types::{Denom, TxCode, TxRejection};

use crate::bank::BankError;
use crate::event::Event;
use crate::state::{StateDelta, StateError, StateRead};

/// State keys of the allowlist proposals.
pub mod keys {
    use ferry_types::release::eth::EthAddress;

    /// The proposals for one token ([`ferry_types::query::TokenProposals`]).
    pub fn proposals(token: &EthAddress) -> Vec<u8> {
        format!("listing/{}", hex::encode(token.as_bytes())).into_bytes()
    }
}

impl<R: StateRead> StateDelta<R> {
    /// The proposals for `token` (empty when there are none).
    ///
    /// # Errors
    /// On storage failure or a corrupt record.
    pub fn token_proposals(&self, token: &EthAddress) -> Result<TokenProposals, StateError> {
        Ok(self.get_record(&keys::proposals(token))?.unwrap_or_default())
    }

    fn put_token_proposals(&mut self, token: &EthAddress, proposals: &TokenProposals) {
        self.put_record(keys::proposals(token), proposals);
    }
}

fn refused(code: TxCode, log: impl Into<String>) -> BankError {
    BankError::Rejected(TxRejection::new(code, log))
}

/// Records `proposal`; at the federation's `attest_quorum` identical proposals records the
/// listing batch for the vault of `params` (the block's parameters).
///
/// # Errors
/// `BadBatch` when the chain has no Ethereum vault or a change of this token is in flight;
/// storage failures.
pub fn propose_listing<R: StateRead>(
    state: &mut StateDelta<R>,
    proposal: &MsgProposeListing,
    params: &ferry_types::Params,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), BankError> {
    let Some(bridge) = params.withdrawals.ethereum.clone() else {
        return Err(refused(TxCode::BadBatch, "this chain has no Ethereum vault (params.withdrawals.ethereum)"));
    };
    let token = proposal.token;
    let federation = state.federation()?;
    let (quorum, epoch) = (federation.attest_quorum, federation.epoch);
    let mut record = state.token_proposals(&token)?;
    if let Some(id) = record.in_flight {
        return join_in_flight(state, id, proposal, height);
    }
    record.proposals.insert(proposal.member, ListingProposal { limit: proposal.limit.clone(), height });
    let agreeing: BTreeMap<ferry_types::Address, u64> = record
        .proposals
        .iter()
        .filter(|(_, cast)| cast.limit == proposal.limit)
        .map(|(member, cast)| (*member, cast.height))
        .collect();
    events.push(Event::new(
        ev::LISTING_PROPOSED,
        [
            (ev::ATTESTER, proposal.member.to_string()),
            (ev::TOKEN, token.to_string()),
            (ev::LISTED, proposal.lists().to_string()),
            (ev::ATTESTATIONS, agreeing.len().to_string()),
            (ev::QUORUM, quorum.to_string()),
        ],
    ));
    if u32::try_from(agreeing.len()).unwrap_or(u32::MAX) < quorum {
        state.put_token_proposals(&token, &record);
        return Ok(());
    }
    let limit = proposal.limit.clone();
    let id = crate::batch::record_itemless(
        state,
        &Denom::erc20(&token),
        |nonce| {
            let listing = EthListing {
                chain_id: bridge.chain_id,
                vault: bridge.vault,
                epoch,
                nonce,
                token,
                listed: limit.is_some(),
            };
            BatchRelease::EthereumListing(EthereumListing {
                payload: hex::encode(listing.payload()),
                listing,
                limit,
                proposers: agreeing,
                signature: None,
                signature_compressed: None,
            })
        },
        height,
        events,
    )?;
    tracing::info!(%token, listed = proposal.lists(), batch_id = id, height, "listing change decided by a member quorum");
    state.put_token_proposals(&token, &TokenProposals { proposals: BTreeMap::new(), in_flight: Some(id) });
    Ok(())
}

/// A proposal for a token whose listing batch `id` is in flight: the same change joins its
/// proposers while it is being signed; anything else is refused.
fn join_in_flight<R: StateRead>(
    state: &mut StateDelta<R>,
    id: u64,
    proposal: &MsgProposeListing,
    height: u64,
) -> Result<(), BankError> {
    let busy = || {
        refused(
            TxCode::BadBatch,
            format!(
                "listing batch {id} for {} is in flight with another change; propose again once it settles or is aborted",
                proposal.token
            ),
        )
    };
    let Some(mut batch) = state.batch(id)? else { return Err(busy()) };
    let signing = batch.status == ferry_types::query::BatchStatus::Signing;
    match &mut batch.release {
        BatchRelease::EthereumListing(change) if change.limit == proposal.limit => {
            if signing {
                change.proposers.entry(proposal.member).or_insert(height);
                state.put_batch(&batch);
            }
            Ok(())
        }
        _ => Err(busy()),
    }
}

/// The listing change of `batch` reached the vault: the chain adopts it (a listing starts
/// minting the token with its limits; an unlisting stops its mints) and frees the token for new
/// proposals. Does nothing for other batches.
///
/// # Errors
/// On storage failure.
pub(crate) fn settled<R: StateRead>(
    state: &mut StateDelta<R>,
    batch: &Batch,
    events: &mut Vec<Event>,
) -> Result<(), StateError> {
    let BatchRelease::EthereumListing(change) = &batch.release else { return Ok(()) };
    let token = change.listing.token;
    let mut params = state.params()?;
    params.apply_listing(&Denom::erc20(&token), change.limit.as_ref());
    state.put_params(&params);
    free(state, &token, batch.id)?;
    events.push(Event::new(
        ev::LISTING_SETTLED,
        [
            (ev::BATCH_ID, batch.id.to_string()),
            (ev::TOKEN, token.to_string()),
            (ev::LISTED, change.listing.listed.to_string()),
        ],
    ));
    tracing::info!(%token, listed = change.listing.listed, batch_id = batch.id, "token listing changed");
    Ok(())
}

/// A listing batch was aborted: nothing changed, and the token is free for new proposals. Does
/// nothing for other batches.
///
/// # Errors
/// On storage failure.
pub(crate) fn aborted<R: StateRead>(state: &mut StateDelta<R>, batch: &Batch) -> Result<(), StateError> {
    let BatchRelease::EthereumListing(change) = &batch.release else { return Ok(()) };
    free(state, &change.listing.token, batch.id)
}

fn free<R: StateRead>(state: &mut StateDelta<R>, token: &EthAddress, batch: u64) -> Result<(), StateError> {
    let mut record = state.token_proposals(token)?;
    if record.in_flight == Some(batch) {
        record.in_flight = None;
        state.put_token_proposals(token, &record);
    }
    Ok(())
}
