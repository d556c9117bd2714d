//! The chain records signers and relayers act on, read proven ([`Reader::decoded`]) at one
//! state height: one place that knows which key holds which record and how records that span
//! several keys (a session's dealings) are put together, so the daemons never assemble a fact
//! from an unproven answer.

use ferry_types::genesis::Federation;
use ferry_types::query::federation::{DkgDealings, DkgSession, Handover, RetiredFederation};
use ferry_types::query::{Batch, DepositAddressRecord, Withdrawal, WithdrawalId};
use ferry_types::{Params, state_keys};

use crate::{ReadError, Reader};

/// The chain's state at one height, read proven. The state after block `height` is proven
/// against the header of `height + 1`, so a daemon that saw the chain at height `H` reads
/// `Reader::at(H - 1)`.
#[derive(Clone, Copy)]
pub struct ProvenState<'a> {
    reader: &'a Reader,
    height: u64,
}

impl Reader {
    /// The state after block `height`, read proven.
    pub fn at(&self, height: u64) -> ProvenState<'_> {
        ProvenState { reader: self, height }
    }
}

impl ProvenState<'_> {
    /// The state height read.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The chain's parameters.
    ///
    /// # Errors
    /// When no endpoint proves them, or the chain has none (it always has).
    pub async fn params(&self) -> Result<Params, ReadError> {
        self.required(state_keys::PARAMS, "parameters").await
    }

    /// The current federation.
    ///
    /// # Errors
    /// When no endpoint proves it, or the chain has none.
    pub async fn federation(&self) -> Result<Federation, ReadError> {
        self.required(state_keys::FEDERATION, "federation").await
    }

    /// The federation the last completed key generation made, while its hand-over waits.
    ///
    /// # Errors
    /// When no endpoint proves the record or its absence.
    pub async fn next_federation(&self) -> Result<Option<Federation>, ReadError> {
        self.reader.decoded(state_keys::NEXT_FEDERATION, self.height).await
    }

    /// The federation of `epoch`, once it handed over.
    ///
    /// # Errors
    /// When no endpoint proves the record or its absence.
    pub async fn retired_federation(&self, epoch: u64) -> Result<Option<Federation>, ReadError> {
        self.reader.decoded(&state_keys::retired_federation(epoch), self.height).await
    }

    /// The hand-over to `epoch`.
    ///
    /// # Errors
    /// When no endpoint proves the record or its absence.
    pub async fn handover(&self, epoch: u64) -> Result<Option<Handover>, ReadError> {
        self.reader.decoded(&state_keys::handover(epoch), self.height).await
    }

    /// The running hand-over: the one to the next federation, while in progress.
    ///
    /// # Errors
    /// When no endpoint proves the records or their absence.
    pub async fn running_handover(&self) -> Result<Option<Handover>, ReadError> {
        let Some(next) = self.next_federation().await? else { return Ok(None) };
        Ok(self.handover(next.epoch).await?.filter(Handover::in_progress))
    }

    /// Key generation session `n`.
    ///
    /// # Errors
    /// When no endpoint proves the record or its absence.
    pub async fn dkg_session(&self, n: u64) -> Result<Option<DkgSession>, ReadError> {
        self.reader.decoded(&state_keys::dkg_session(n), self.height).await
    }

    /// The latest key generation session, running or not.
    ///
    /// # Errors
    /// When no endpoint proves the records or their absence.
    pub async fn latest_dkg(&self) -> Result<Option<DkgSession>, ReadError> {
        match self.reader.decoded::<u64>(state_keys::DKG_LATEST, self.height).await? {
            Some(n) => self.dkg_session(n).await,
            None => Ok(None),
        }
    }

    /// The dealings posted in `session`'s current attempt, by dealer position: one proven read
    /// per participant (a proven absence for those who did not deal), as the chain assembles them.
    ///
    /// # Errors
    /// When no endpoint proves a dealing or its absence.
    pub async fn dkg_dealings(&self, session: &DkgSession) -> Result<DkgDealings, ReadError> {
        let mut dealings = Vec::new();
        for position in 0..u32::try_from(session.participants.len()).unwrap_or(u32::MAX) {
            let key = state_keys::dkg_dealing(session.session, session.attempt, position);
            if let Some(dealing) = self.reader.decoded(&key, self.height).await? {
                dealings.push(dealing);
            }
        }
        Ok(DkgDealings { session: session.session, attempt: session.attempt, dealings })
    }

    /// Release batch `id`.
    ///
    /// # Errors
    /// When no endpoint proves the record or its absence.
    pub async fn batch(&self, id: u64) -> Result<Option<Batch>, ReadError> {
        self.reader.decoded(&state_keys::batch(id), self.height).await
    }

    /// Every claim Bitcoin exit disbursal `exit` pays, page by page in claim order (`pages`
    /// from its record, [`ferry_types::query::BitcoinExit::claim_pages`]).
    ///
    /// # Errors
    /// When no endpoint proves a page, or a page is missing.
    pub async fn exit_claims(
        &self,
        exit: u64,
        pages: u32,
    ) -> Result<Vec<ferry_types::release::exit::RecordedClaim>, ReadError> {
        let mut claims = Vec::new();
        for page in 0..pages {
            let chunk: Vec<ferry_types::release::exit::RecordedClaim> =
                self.required(&state_keys::exit_btc_claims(exit, page), "a page of an exit disbursal's claims").await?;
            claims.extend(chunk);
        }
        Ok(claims)
    }

    /// Withdrawal record `id`.
    ///
    /// # Errors
    /// When no endpoint proves the record or its absence.
    pub async fn withdrawal(&self, id: WithdrawalId) -> Result<Option<Withdrawal>, ReadError> {
        self.reader.decoded(&state_keys::withdrawal(id), self.height).await
    }

    /// The federations that handed over, newest first, as the chain lists them at
    /// `/federation/retired`: each with the height it switched away and the end of its deposit
    /// grace (`deposits.old_peg_grace_blocks` later).
    ///
    /// # Errors
    /// When no endpoint proves a record or its absence.
    pub async fn retired_federations(&self) -> Result<Vec<RetiredFederation>, ReadError> {
        let grace = self.params().await?.deposits.old_peg_grace_blocks;
        let mut retired = Vec::new();
        let mut epoch = self.federation().await?.epoch;
        while let Some(previous) = epoch.checked_sub(1) {
            let Some(federation) = self.retired_federation(previous).await? else { break };
            let Some(switched) = self.handover(epoch).await?.and_then(|handover| handover.switched) else { break };
            retired.push(RetiredFederation::new(previous, federation, switched, grace));
            epoch = previous;
        }
        Ok(retired)
    }

    /// The deposit-address registrations numbered above `after`, at most `limit`, in order, and
    /// how many are registered in all: the count and each registration proven (a node cannot
    /// hide one below the count, nor add one).
    ///
    /// # Errors
    /// When no endpoint proves a record, or a registration below the proven count is absent.
    pub async fn deposit_addresses_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<DepositAddressRecord>, u64), ReadError> {
        let total = self.reader.decoded::<u64>(&state_keys::deposit_address_count(), self.height).await?.unwrap_or(0);
        let mut registrations = Vec::new();
        for number in after.saturating_add(1)..=total {
            if registrations.len() >= limit {
                break;
            }
            let key = state_keys::deposit_address(number);
            registrations.push(
                self.reader
                    .decoded(&key, self.height)
                    .await?
                    .ok_or(ReadError::Absent("deposit-address registration"))?,
            );
        }
        Ok((registrations, total))
    }

    async fn required<T: serde::de::DeserializeOwned>(&self, key: &[u8], what: &'static str) -> Result<T, ReadError> {
        self.reader.decoded(key, self.height).await?.ok_or(ReadError::Absent(what))
    }
}
