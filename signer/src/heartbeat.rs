//! This member's heartbeats: each round of the daemon reads the chain's open heartbeat round and,
//! once per round, answers its challenge with a BLS share (under the heartbeat tag) and a
//! Bitcoin-key signature over the tagged heartbeat digest ([`ferry_types::liveness`]) — proof
//! that both signing keys are online, in a form no release or Bitcoin transaction can use.

use ferry_client::FerryClient;
use ferry_types::Msg;
use ferry_types::genesis::Federation;
use ferry_types::liveness;
use ferry_types::msg::federation::MsgHeartbeat;
use ferry_types::query::federation::{LIVENESS_PATH, LivenessView};
use ferry_types::release::bls::SecretKeyShare;

use crate::duty::post_duty;
use crate::metrics::{Metrics, now_seconds};
use crate::secrets::MemberSecrets;

/// The heartbeat of `secrets`' member for round `round` with `challenge`, signed with its keys
/// for `federation`'s epoch (`bls`, its share; a BLS share only when the federation has a BLS
/// key, a Bitcoin signature only when it has a peg).
pub fn heartbeat(
    secrets: &MemberSecrets,
    bls: &SecretKeyShare,
    federation: &Federation,
    chain_id: &str,
    round: u64,
    challenge: &[u8; 32],
) -> MsgHeartbeat {
    let message = liveness::heartbeat_message(chain_id, round, challenge);
    MsgHeartbeat {
        member: secrets.account(),
        round,
        bls_signature: federation.bls.as_ref().map(|_| liveness::sign_share(bls, &message)),
        bitcoin_signature: federation
            .bitcoin
            .as_ref()
            .map(|_| liveness::sign_bitcoin(secrets.bitcoin_secret_key(), &message)),
    }
}

/// Answers heartbeat rounds for one member.
#[derive(Debug, Default)]
pub struct Heartbeats {
    chain_id: Option<String>,
}

impl Heartbeats {
    /// Answers the open round at `height` unless this member already did.
    ///
    /// # Errors
    /// When the chain cannot be read or the heartbeat is refused.
    pub async fn round(
        &mut self,
        chain: &FerryClient,
        metrics: &Metrics,
        secrets: &MemberSecrets,
        bls: &SecretKeyShare,
        federation: &Federation,
        height: u64,
    ) -> anyhow::Result<()> {
        let Some(view) = chain.query::<LivenessView>(LIVENESS_PATH, Some(height)).await? else { return Ok(()) };
        let Some(round) = view.round else { return Ok(()) };
        let me = secrets.account();
        let answered = view.members.iter().find(|member| member.account == me).map(|member| member.last_round);
        match answered {
            None => return Ok(()),
            Some(last) if last >= round.round => return Ok(()),
            Some(_) => {}
        }
        let chain_id = match &self.chain_id {
            Some(chain_id) => chain_id.clone(),
            None => {
                let chain_id = chain.chain_id().await?;
                self.chain_id = Some(chain_id.clone());
                chain_id
            }
        };
        let challenge = round.challenge_bytes().ok_or_else(|| {
            anyhow::anyhow!("the chain's heartbeat challenge `{}` is not 32 bytes of hex", round.challenge)
        })?;
        let msg = heartbeat(secrets, bls, federation, &chain_id, round.round, &challenge);
        match post_duty(chain, secrets.account_key(), &Msg::Heartbeat(msg)).await {
            Ok((_, included)) => {
                metrics.heartbeats.with_label_values(&["posted"]).inc();
                metrics.last_heartbeat.set(now_seconds());
                tracing::debug!(round = round.round, height = included, "heartbeat included");
                Ok(())
            }
            Err(error) => {
                metrics.heartbeats.with_label_values(&["failed"]).inc();
                anyhow::bail!("the heartbeat for round {} was not included: {error}", round.round)
            }
        }
    }
}
