//! Federation epochs as this signer sees them: the keys it signs with for the chain's current
//! federation ([`EpochKeys`]), and the next federation while a hand-over to it runs
//! ([`NextFederation`]), which the rotation and migration batches must match before this member
//! signs them ([`crate::rebuild`]).
//!
//! - **The genesis epoch** is the manifest's: the chain's federation must be exactly it, and the
//!   keystore's BLS share signs.
//! - **A later epoch** was made by a key generation: the chain's federation must be exactly what
//!   that session's transcript makes — members, threshold, the group key summed from the dealers'
//!   posted commitments (`DkgSession::transcript_key_set`), the participants' registered Bitcoin
//!   keys — and this member's BLS share is recomputed from the transcript with its DKG
//!   encryption key (`DkgSession::final_share`) and checked against its public share. Nothing of
//!   it is stored; a restarted daemon finds it again.
//! - **The next federation** is rebuilt the same way from the completed session, never taken from
//!   the chain's `/federation/next`.
//!
//! Every record this rests on (the federation, the hand-over, the session, each dealing) is read
//! proven ([`ferry_light::ProvenState`]): a node that forges a self-consistent transcript (its
//! own dealings, a federation it controls) gets no signature on a migration to it.
//!
//! Results are kept per epoch and per session, so a round reads a transcript once.

use anyhow::Context;
use ferry_light::ProvenState;
use ferry_types::dkg::{self, EncryptionKey};
use ferry_types::genesis::Federation;
use ferry_types::peg::{BitcoinFederation, BitcoinNetwork, Peg};
use ferry_types::query::federation::{DkgDealings, DkgPhase, DkgSession};
use ferry_types::release::bls::{self, PublicKeySet, SecretKeyShare};

use crate::manifest::Manifest;
use crate::rebuild::NextFederation;
use crate::secrets::MemberSecrets;

/// The keys this member signs with for one federation epoch.
#[derive(Clone, Debug)]
pub struct EpochKeys {
    /// The epoch.
    pub epoch: u64,
    /// This member's BLS secret share of the epoch's key.
    pub bls: SecretKeyShare,
    /// The epoch's peg on the locally configured network (none without one).
    pub peg: Option<Peg>,
}

/// Finds and keeps this member's keys for the chain's federation epochs.
pub struct EpochView {
    manifest: Manifest,
    /// Why the secrets are not a genesis member's (a candidate's keystore), if they are not.
    not_genesis: Option<String>,
    encryption: EncryptionKey,
    known: Option<EpochKeys>,
    /// The pegs of retired epochs rebuilt for sweeps.
    retired: std::collections::BTreeMap<u64, Option<Peg>>,
}

impl EpochView {
    /// The view of the member holding `secrets`, whose genesis federation `manifest` describes.
    /// A keystore that is not one of the manifest's members is a candidate's: it holds keys only
    /// for epochs a key generation it took part in made.
    pub fn new(manifest: Manifest, secrets: &MemberSecrets) -> EpochView {
        let not_genesis = manifest.check_member(secrets).err().map(|error| error.to_string());
        if let Some(reason) = &not_genesis {
            tracing::info!(%reason, "not a genesis member: a candidate, signing only for epochs it helped generate");
        }
        EpochView {
            encryption: crate::dkg::encryption_key(secrets),
            manifest,
            not_genesis,
            known: None,
            retired: Default::default(),
        }
    }

    /// The keys for the chain's `federation` in `state` (see the module docs); `network` is the
    /// locally configured Bitcoin network, if any.
    ///
    /// # Errors
    /// When this member is not in `federation`, or `federation` is neither the manifest's nor the
    /// one its key generation's transcript makes: a signer then signs nothing.
    pub async fn keys_for(
        &mut self,
        federation: &Federation,
        state: ProvenState<'_>,
        secrets: &MemberSecrets,
        network: Option<BitcoinNetwork>,
    ) -> anyhow::Result<&EpochKeys> {
        if self.known.as_ref().is_none_or(|keys| keys.epoch != federation.epoch) {
            // Nothing is signed with another epoch's keys while this one's are not found.
            self.known = None;
            let keys = if federation.epoch == self.manifest.epoch {
                if let Some(reason) = &self.not_genesis {
                    anyhow::bail!("this member is not in the genesis federation ({reason})");
                }
                self.manifest.check_chain_federation(federation)?;
                let peg = network.map(|_| Peg::new(&self.manifest.bitcoin)).transpose()?;
                EpochKeys { epoch: federation.epoch, bls: secrets.bls_secret_key_share().clone(), peg }
            } else {
                self.generated_keys(federation, state, secrets, network).await?
            };
            tracing::info!(epoch = keys.epoch, "signing for federation epoch {}", keys.epoch);
            self.known = Some(keys);
        }
        self.known.as_ref().context("no epoch keys")
    }

    /// The keys found by the last successful [`keys_for`](Self::keys_for) (none after a failed one).
    pub fn current(&self) -> Option<&EpochKeys> {
        self.known.as_ref()
    }

    /// The peg of the retired epoch of `retired` (the chain's `/federation/epoch/<n>`), for a
    /// sweep of it: this member must have been in it, and the record must be exactly the
    /// manifest's (the genesis epoch) or what the key generation that made it makes — as when
    /// this member signed for it. Kept per epoch.
    ///
    /// # Errors
    /// When this member was not in it, or the record is not what made it.
    pub async fn retired_peg(
        &mut self,
        retired: &Federation,
        state: ProvenState<'_>,
        secrets: &MemberSecrets,
        network: Option<BitcoinNetwork>,
    ) -> anyhow::Result<Option<Peg>> {
        let epoch = retired.epoch;
        if let Some(peg) = self.retired.get(&epoch) {
            return Ok(peg.clone());
        }
        if !retired.is_member(&secrets.account()) {
            anyhow::bail!("this member was not in the federation of epoch {epoch}");
        }
        let peg = if epoch == self.manifest.epoch {
            if let Some(reason) = &self.not_genesis {
                anyhow::bail!("this member is not in the genesis federation ({reason})");
            }
            self.manifest.check_chain_federation(retired)?;
            network.map(|_| Peg::new(&self.manifest.bitcoin)).transpose()?
        } else {
            let (session, _, key_set) = transcript_of(retired, state).await?;
            next_of(&session, &key_set, network)?.bitcoin
        };
        self.retired.insert(epoch, peg.clone());
        Ok(peg)
    }

    /// This member's keys for an epoch a key generation made.
    async fn generated_keys(
        &self,
        federation: &Federation,
        state: ProvenState<'_>,
        secrets: &MemberSecrets,
        network: Option<BitcoinNetwork>,
    ) -> anyhow::Result<EpochKeys> {
        let epoch = federation.epoch;
        let (session, dealings, key_set) = transcript_of(federation, state).await?;
        let position = session
            .position(&secrets.account())
            .with_context(|| format!("this member is not in the federation of epoch {epoch}"))?;
        let me = u32::try_from(position)?;
        let share = session
            .final_share(&dealings, me, &self.encryption)?
            .context("a share dealt to this member does not match its dealer's commitment")?;
        let bls = dkg::secret_key_share(&share).context("the final share is not a scalar")?;
        if key_set.public_key_share(u64::from(me)) != bls.public_key_share() {
            anyhow::bail!("this member's recomputed share of epoch {epoch} does not match its public share");
        }
        Ok(EpochKeys { epoch, bls, peg: next_of(&session, &key_set, network)?.bitcoin })
    }
}

/// The key generation that made `federation` (an epoch a hand-over brought in), its dealings and
/// its transcript's key set, once `federation` is checked to be exactly what it makes
/// ([`check_generated`]). Every record is read proven.
async fn transcript_of(
    federation: &Federation,
    state: ProvenState<'_>,
) -> anyhow::Result<(DkgSession, DkgDealings, PublicKeySet)> {
    let epoch = federation.epoch;
    let handover = state
        .handover(epoch)
        .await?
        .with_context(|| format!("the federation of epoch {epoch} was brought in by no hand-over"))?;
    let (session, dealings) = completed_session(state, handover.session).await?;
    let key_set = session.transcript_key_set(&dealings).context("the key generation's transcript")?;
    check_generated(federation, &session, &key_set)?;
    Ok((session, dealings, key_set))
}

/// The completed key generation `number` and its final attempt's dealings, proven.
async fn completed_session(state: ProvenState<'_>, number: u64) -> anyhow::Result<(DkgSession, DkgDealings)> {
    let session = state.dkg_session(number).await?.with_context(|| format!("no key generation session {number}"))?;
    if session.phase != DkgPhase::Complete {
        anyhow::bail!("key generation session {number} is {}, not complete", session.phase.name());
    }
    let dealings = state.dkg_dealings(&session).await?;
    Ok((session, dealings))
}

/// Checks that `federation` is exactly what the completed `session` makes: its participants in
/// order, its threshold as quorum and peg threshold, its epoch, the key set its transcript
/// makes (`key_set`) and the participants' registered Bitcoin keys.
///
/// # Errors
/// Naming the first difference.
pub fn check_generated(federation: &Federation, session: &DkgSession, key_set: &PublicKeySet) -> anyhow::Result<()> {
    let epoch = federation.epoch;
    let members: Vec<_> = session.participants.iter().map(|participant| participant.account).collect();
    if federation.members != members
        || federation.epoch != session.epoch
        || federation.attest_quorum != session.threshold
    {
        anyhow::bail!(
            "the chain's federation of epoch {epoch} is not the members, epoch and threshold key generation {} made",
            session.session
        );
    }
    let chain_set = federation.bls.as_ref().map(|bls| bls::decode_public_key_set(&bls.public_key_set)).transpose()?;
    if chain_set.as_ref() != Some(key_set) {
        anyhow::bail!(
            "the chain's key set of epoch {epoch} is not the one key generation {}'s transcript makes",
            session.session
        );
    }
    if let Some(bitcoin) = &federation.bitcoin {
        let registered: Vec<String> =
            session.participants.iter().map(|participant| participant.bitcoin_key.to_ascii_lowercase()).collect();
        let keys: Vec<String> = bitcoin.keys.iter().map(|key| key.to_ascii_lowercase()).collect();
        if keys != registered || bitcoin.threshold != session.threshold {
            anyhow::bail!("the chain's peg of epoch {epoch} is not the participants' registered Bitcoin keys");
        }
    }
    Ok(())
}

/// The next federation of the last completed session, rebuilt once per session.
#[derive(Default)]
pub struct HandoverView {
    rebuilt: Option<(u64, NextFederation)>,
}

impl HandoverView {
    /// The next federation while a hand-over runs in `state` (`None` when none runs), with its
    /// peg on `network` (none without a local Bitcoin network).
    ///
    /// # Errors
    /// When the records are not proven, or the completed session's transcript makes no key or peg.
    pub async fn next_federation(
        &mut self,
        state: ProvenState<'_>,
        network: Option<BitcoinNetwork>,
    ) -> anyhow::Result<Option<NextFederation>> {
        let Some(handover) = state.running_handover().await? else { return Ok(None) };
        if let Some((number, next)) = &self.rebuilt
            && *number == handover.session
        {
            return Ok(Some(next.clone()));
        }
        let (session, dealings) = completed_session(state, handover.session).await?;
        if session.epoch != handover.epoch {
            anyhow::bail!(
                "the hand-over to epoch {} names key generation {}, which made epoch {}",
                handover.epoch,
                session.session,
                session.epoch
            );
        }
        let key_set = session.transcript_key_set(&dealings).context("the key generation's transcript")?;
        let next = next_of(&session, &key_set, network)?;
        tracing::info!(epoch = next.epoch, session = session.session, key = %next.key, "next federation rebuilt from the key generation's transcript");
        self.rebuilt = Some((session.session, next.clone()));
        Ok(Some(next))
    }
}

/// The federation a completed `session` makes, with `key_set` its transcript's key set and its peg
/// on `network` (pure).
///
/// # Errors
/// When the registered Bitcoin keys make no peg.
pub fn next_of(
    session: &DkgSession,
    key_set: &PublicKeySet,
    network: Option<BitcoinNetwork>,
) -> anyhow::Result<NextFederation> {
    let bitcoin = network
        .map(|network| {
            Peg::new(&BitcoinFederation {
                network,
                threshold: session.threshold,
                keys: session.participants.iter().map(|participant| participant.bitcoin_key.clone()).collect(),
            })
        })
        .transpose()
        .context("the participants' registered Bitcoin keys")?;
    Ok(NextFederation {
        epoch: session.epoch,
        key: hex::encode(bls::eip2537_g1(&key_set.public_key())),
        members: session.participants.iter().map(|participant| participant.account).collect(),
        bitcoin,
    })
}
