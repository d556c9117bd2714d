//! This member's part in a key generation for the next federation (the chain's `dkg` module
//! runs the session; [`ferry_types::dkg`] holds the cryptography).
//!
//! - **Keys.** The member's DKG encryption key is derived from its account secret
//!   ([`encryption_key`]), so the keystore format does not change and nothing new is stored; its
//!   Bitcoin key is the keystore's. The daemon registers both on the chain when they are missing
//!   or differ (`MsgRegisterSignerKeys`), once per process.
//! - **Steps.** Each round reads the latest session; when this member takes part in the running
//!   attempt, [`plan`] (pure) decides: deal (a fresh random polynomial, posted with its proof and
//!   encrypted shares), complain about each dealer whose share does not match its commitment, or
//!   confirm the final share (the sum of the received shares) with a signature the chain checks
//!   against its public share. Every step is audited.
//! - **What is kept.** Nothing but the encryption secret, which the keystore already seals: the
//!   polynomial is dropped once dealt (a crash before its dealing is included deals a new one;
//!   after, nothing of it is needed), and the final share can be recomputed from the chain's
//!   transcript with the encryption secret (`DkgSession::final_share`). No other participant's share can
//!   be derived from what this member holds.

use anyhow::Context;
use ferry_client::FerryClient;
use ferry_light::ProvenState;
use ferry_types::dkg::{self, DkgError, EncryptionKey, G1Affine, Polynomial, Received, Scalar};
use ferry_types::msg::federation::{MsgDkgComplain, MsgDkgConfirm, MsgDkgDeal, MsgRegisterSignerKeys};
use ferry_types::query::federation::{DkgDealings, DkgPhase, DkgSession, SIGNER_KEYS_PATH, SignerKeys};
use ferry_types::{Address, Msg};
use rand::RngCore;
use serde_json::json;

use crate::duty::post_duty;
use crate::metrics::Metrics;
use crate::secrets::MemberSecrets;
use crate::store::{Store, kind};

/// This member's DKG encryption key, derived from its account secret.
pub fn encryption_key(secrets: &MemberSecrets) -> EncryptionKey {
    let bytes = secrets.to_bytes();
    let account_secret = &bytes[2 * crate::secrets::SECRET_LEN..];
    EncryptionKey::derive(account_secret)
}

/// What this member does next in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: not a participant, not running, or this phase's step is done.
    Idle,
    /// Post a dealing.
    Deal,
    /// Complain about these dealers (positions), whose shares do not match their commitments.
    Complain(Vec<u32>),
    /// Confirm the final share.
    Confirm {
        /// The final secret share.
        share: Scalar,
        /// The group's public key.
        group: G1Affine,
    },
}

/// What `account` should do next in `session` (with the attempt's `dealings`).
///
/// # Errors
/// When a record does not decode.
pub fn plan(
    session: &DkgSession,
    dealings: &DkgDealings,
    account: &Address,
    key: &EncryptionKey,
) -> Result<Plan, DkgError> {
    let Some(position) = session.position(account) else { return Ok(Plan::Idle) };
    let me = u32::try_from(position).map_err(|_| DkgError::Missing("position"))?;
    let participant = &session.participants[position];
    let convicted = |dealer: u32| {
        session.participants.get(dealer as usize).is_some_and(|p| {
            session.faults.iter().any(|fault| fault.attempt == session.attempt && fault.account == p.account)
        })
    };
    let i_am_convicted = convicted(me);
    match &session.phase {
        DkgPhase::Dealing if !participant.dealt => Ok(Plan::Deal),
        DkgPhase::Complaints if !i_am_convicted => {
            let bad: Vec<u32> = session
                .received(dealings, me, key)?
                .into_iter()
                .filter(|(dealer, received)| *received == Received::Invalid && *dealer != me && !convicted(*dealer))
                .map(|(dealer, _)| dealer)
                .collect();
            Ok(if bad.is_empty() { Plan::Idle } else { Plan::Complain(bad) })
        }
        DkgPhase::Confirming if !participant.confirmed => {
            let Some(group) = session.group_key()? else { return Ok(Plan::Idle) };
            Ok(match session.final_share(dealings, me, key)? {
                Some(share) => Plan::Confirm { share, group },
                None => Plan::Idle,
            })
        }
        _ => Ok(Plan::Idle),
    }
}

/// What a round works with: the chain, the audit store, the metrics and this member's secrets.
#[derive(Clone, Copy)]
pub struct RoundContext<'a> {
    /// The sidechain.
    pub chain: &'a FerryClient,
    /// The sidechain's state at the round's height, read proven.
    pub state: ProvenState<'a>,
    /// The audit log.
    pub store: &'a Store,
    /// The daemon's metrics.
    pub metrics: &'a Metrics,
    /// This member's secrets.
    pub secrets: &'a MemberSecrets,
}

/// This member's participant state in the daemon.
pub struct Participant {
    key: EncryptionKey,
    registered: bool,
}

impl Participant {
    /// The participant of the member holding `secrets`.
    pub fn new(secrets: &MemberSecrets) -> Participant {
        Participant { key: encryption_key(secrets), registered: false }
    }

    /// One round at `height`: registers this member's keys if needed, then takes the running
    /// session's next step.
    ///
    /// # Errors
    /// When the chain cannot be read, a record does not decode, or a step is refused.
    pub async fn round(&mut self, io: RoundContext<'_>, height: u64) -> anyhow::Result<()> {
        let RoundContext { state, metrics, secrets, .. } = io;
        let account = secrets.account();
        if !self.registered {
            self.register(io, height).await?;
        }
        // The session and its dealings are read proven: this member encrypts its shares to the
        // participants' keys in the session record.
        let Some(session) = state.latest_dkg().await? else {
            metrics.dkg_state(None);
            return Ok(());
        };
        metrics.dkg_state(Some(&session));
        if !session.phase.is_running() || session.position(&account).is_none() {
            return Ok(());
        }
        let dealings: DkgDealings = if session.phase == DkgPhase::Dealing {
            DkgDealings::default()
        } else {
            state.dkg_dealings(&session).await?
        };
        let run = session.run();
        let subject = format!("dkg-{}-{}", run.session, run.attempt);
        match plan(&session, &dealings, &account, &self.key)? {
            Plan::Idle => Ok(()),
            Plan::Deal => {
                let msg = self.deal(&session, &account)?;
                self.post(io, ("deal", kind::DKG_DEAL, &subject), Msg::DkgDeal(msg), json!({})).await
            }
            Plan::Complain(dealers) => {
                for dealer in dealers {
                    let accused = session.participants[dealer as usize].clone();
                    let dealer_key = accused.encryption_point()?;
                    let pairwise_key = self.key.pairwise_key(&dealer_key);
                    let proof = self.key.prove_pairwise_key(&dealer_key, &pairwise_key, run);
                    let msg =
                        MsgDkgComplain { participant: account, run, dealer: accused.account, pairwise_key, proof };
                    tracing::warn!(session = run.session, attempt = run.attempt, dealer = %accused.account, "share does not match the dealer's commitment: complaining");
                    let detail = json!({"dealer": accused.account});
                    let step = ("complain", kind::DKG_COMPLAINT, subject.as_str());
                    self.post(io, step, Msg::DkgComplain(msg), detail).await?;
                }
                Ok(())
            }
            Plan::Confirm { share, group } => {
                let secret = dkg::secret_key_share(&share).context("the final share is not a scalar")?;
                let signature = dkg::sign_confirmation(&secret, run, &group);
                let msg = MsgDkgConfirm { participant: account, run, signature };
                let public_share = hex::encode(dkg::encode_point(&G1Affine::from(G1Affine::generator() * share)));
                let detail = json!({"public_share": public_share});
                self.post(io, ("confirm", kind::DKG_CONFIRM, &subject), Msg::DkgConfirm(msg), detail).await
            }
        }
    }

    fn deal(&self, session: &DkgSession, account: &Address) -> anyhow::Result<MsgDkgDeal> {
        let position = session.position(account).context("not a participant")?;
        let keys = session.encryption_keys()?;
        let mut rng = rand::rngs::OsRng;
        let random: Vec<[u8; 64]> = (0..session.threshold)
            .map(|_| {
                let mut bytes = [0u8; 64];
                rng.fill_bytes(&mut bytes);
                bytes
            })
            .collect();
        let polynomial = Polynomial::from_uniform_bytes(&random);
        let run = session.run();
        let dealing = dkg::deal(&polynomial, run, u32::try_from(position)?, &self.key, &keys);
        Ok(MsgDkgDeal {
            participant: *account,
            run,
            commitment: dealing.commitment,
            proof: dealing.proof,
            encrypted_shares: dealing.encrypted_shares,
        })
    }

    async fn register(&mut self, io: RoundContext<'_>, height: u64) -> anyhow::Result<()> {
        let RoundContext { chain, secrets, .. } = io;
        let account = secrets.account();
        let mine = MsgRegisterSignerKeys::new(account, &self.key, secrets.bitcoin_secret_key());
        let on_chain: Option<SignerKeys> = chain.query(&format!("{SIGNER_KEYS_PATH}{account}"), Some(height)).await?;
        let same = on_chain.is_some_and(|keys| {
            keys.encryption_key == hex::encode(dkg::encode_point(&mine.encryption_key))
                && keys.bitcoin_key == hex::encode(mine.bitcoin_key)
        });
        if !same {
            let detail = json!({"encryption_key": hex::encode(dkg::encode_point(&mine.encryption_key)), "bitcoin_key": hex::encode(mine.bitcoin_key)});
            let step = ("register", kind::SIGNER_KEYS, "signer-keys");
            self.post(io, step, Msg::RegisterSignerKeys(mine), detail).await?;
        }
        self.registered = true;
        Ok(())
    }

    /// Posts one step and audits it; `step` is (metric label, audit kind, audit subject).
    async fn post(
        &self,
        io: RoundContext<'_>,
        (label, audit_kind, subject): (&'static str, &str, &str),
        msg: Msg,
        mut detail: serde_json::Value,
    ) -> anyhow::Result<()> {
        let RoundContext { chain, store, metrics, secrets, .. } = io;
        match post_duty(chain, secrets.account_key(), &msg).await {
            Ok((tx, height)) => {
                metrics.dkg_steps.with_label_values(&[label, "posted"]).inc();
                detail["tx"] = json!(tx);
                detail["height"] = json!(height);
                store.append_event(audit_kind, subject, &detail).await?;
                tracing::info!(step = label, %subject, height, "key generation step included");
                Ok(())
            }
            Err(error) => {
                metrics.dkg_steps.with_label_values(&[label, "failed"]).inc();
                detail["error"] = json!(error);
                store.append_event(audit_kind, subject, &detail).await?;
                anyhow::bail!("key generation step `{label}` ({subject}) was not included: {error}")
            }
        }
    }
}

#[cfg(test)]
mod tests;
