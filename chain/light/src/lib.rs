//! `ferry-light`: verified reads of the sidechain for the parties that act on its facts
//! (signers, relayers). A read is accepted only when it is proven:
//!
//! 1. the header is verified by a CometBFT light client ([`tendermint_light_client_verifier`])
//!    from a trust root the operator configures (the chain's genesis file): the first block's
//!    commit must carry more than 2/3 of the genesis validators' power, and every later header
//!    is reached by skipping verification (more than 1/3 of the trusted validators' power signed
//!    it, and 2/3 of its own), bisecting when the validator set changed too much;
//! 2. the record's value (or its absence) is checked by its Jellyfish Merkle proof
//!    ([`ferry_types::query::STORE_PATH`]) against the app hash that header commits to.
//!
//! Several RPC endpoints may be configured: each answer is checked on its own, an endpoint whose
//! answer does not verify is reported ([`Reader::liars`]) and not followed, and the read succeeds
//! with the first answer that verifies. One honest, live endpoint is enough; none can make a read
//! accept a false value.
//!
//! Must not: trust any node's word for a header, a validator set or a value; hold keys; write.

mod records;

pub use records::ProvenState;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use jmt::proof::SparseMerkleProof;
use tendermint::block::signed_header::SignedHeader;
use tendermint::block::{Header, Height};
use tendermint::validator;
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::{TrustThreshold, TrustedBlockState, UntrustedBlockState};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};
use tendermint_rpc::{Client, HttpClient, Paging};

/// Why a read was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The trust root (genesis file) cannot be used.
    #[error("trust root: {0}")]
    TrustRoot(String),
    /// No endpoint gave an answer that verifies; each endpoint's reason, in order.
    #[error("no endpoint gave a verified answer: {}", .0.join("; "))]
    Unverified(Vec<String>),
    /// A proven record is not the type asked for (this reader and the chain disagree on a record
    /// format: a version mismatch, not a lie).
    #[error("the proven record `{key}` does not decode: {error}")]
    Undecodable {
        /// The record's key (lossy UTF-8).
        key: String,
        /// The decoder's complaint.
        error: String,
    },
    /// The chain proves it holds no record where one must be (its parameters, its federation).
    #[error("the chain proves it holds no {0}")]
    Absent(&'static str),
}

/// Why one endpoint's answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The endpoint did not answer (down, lagging, pruned).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The endpoint answered something that does not verify: it lies, or serves another chain.
    #[error("does not verify: {0}")]
    Invalid(String),
}

fn unavailable(error: impl std::fmt::Display) -> Refused {
    Refused::Unavailable(error.to_string())
}

fn invalid(error: impl std::fmt::Display) -> Refused {
    Refused::Invalid(error.to_string())
}

/// What the light client trusts without verification: the chain id and genesis validators.
#[derive(Clone, Debug)]
pub struct TrustRoot {
    chain_id: tendermint::chain::Id,
    validators: validator::Set,
}

impl TrustRoot {
    /// A trust root from a chain id and the validators of its first block (a configured trust
    /// point instead of a genesis file).
    ///
    /// # Errors
    /// When there are no validators or the chain id is not one.
    pub fn new(chain_id: &str, validators: Vec<validator::Info>) -> Result<TrustRoot, ReadError> {
        if validators.is_empty() {
            return Err(ReadError::TrustRoot("a trust root needs validators".to_owned()));
        }
        let chain_id =
            chain_id.parse().map_err(|error| ReadError::TrustRoot(format!("chain id `{chain_id}`: {error}")))?;
        Ok(TrustRoot { chain_id, validators: validator::Set::without_proposer(validators) })
    }

    /// The trust root in a CometBFT genesis file.
    ///
    /// # Errors
    /// When the file cannot be read or is not a genesis with validators.
    pub fn from_genesis_file(path: &Path) -> Result<TrustRoot, ReadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ReadError::TrustRoot(format!("reading {}: {error}", path.display())))?;
        let genesis: tendermint::Genesis<serde_json::Value> = serde_json::from_str(&text)
            .map_err(|error| ReadError::TrustRoot(format!("{} is not a CometBFT genesis: {error}", path.display())))?;
        if genesis.validators.is_empty() {
            return Err(ReadError::TrustRoot(format!("{} names no validators", path.display())));
        }
        Ok(TrustRoot { chain_id: genesis.chain_id, validators: validator::Set::without_proposer(genesis.validators) })
    }
}

/// A block the light client verified: its header and the validators that sign the next one.
#[derive(Clone, Debug)]
struct Trusted {
    header: Header,
    next_validators: validator::Set,
}

/// A light block fetched from one endpoint, not verified yet.
struct Fetched {
    signed_header: SignedHeader,
    validators: validator::Set,
    next_validators: validator::Set,
}

/// How many verified headers are kept (by height) to start later verifications from.
const KEPT_HEADERS: usize = 256;

/// Verified reads over one or more RPC endpoints of one chain.
pub struct Reader {
    endpoints: Vec<(String, HttpClient)>,
    root: TrustRoot,
    options: Options,
    verifier: ProdVerifier,
    trusted: Mutex<BTreeMap<u64, Trusted>>,
    liars: Mutex<BTreeMap<String, u64>>,
    /// Time spent in [`Reader::record`] so far (verification and round trips), for the daemons'
    /// metrics: what proven reads cost them.
    spent: Mutex<Duration>,
}

impl Reader {
    /// A reader of the chain `root` describes through `urls` (tried in order).
    ///
    /// # Errors
    /// When a URL is not an RPC address.
    pub fn new(urls: &[String], root: TrustRoot, trusting_period: Duration) -> Result<Reader, ReadError> {
        let endpoints = urls
            .iter()
            .map(|url| {
                HttpClient::new(url.as_str())
                    .map(|client| (url.clone(), client))
                    .map_err(|error| ReadError::TrustRoot(format!("endpoint {url}: {error}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = Options {
            trust_threshold: TrustThreshold::ONE_THIRD,
            trusting_period,
            clock_drift: Duration::from_secs(10),
        };
        Ok(Reader {
            endpoints,
            root,
            options,
            verifier: ProdVerifier::default(),
            trusted: Mutex::new(BTreeMap::new()),
            liars: Mutex::new(BTreeMap::new()),
            spent: Mutex::new(Duration::ZERO),
        })
    }

    /// How many answers from each endpoint failed verification so far (endpoints that never
    /// lied are absent).
    pub fn liars(&self) -> BTreeMap<String, u64> {
        self.liars.lock().map(|liars| liars.clone()).unwrap_or_default()
    }

    /// The record stored at `key` in the state committed at `height`, proven: `None` is a proven
    /// absence.
    ///
    /// # Errors
    /// [`ReadError::Unverified`] when no endpoint gives an answer that verifies.
    pub async fn record(&self, key: &[u8], height: u64) -> Result<Option<Vec<u8>>, ReadError> {
        let started = std::time::Instant::now();
        let read = self.record_uncounted(key, height).await;
        if let Ok(mut spent) = self.spent.lock() {
            *spent += started.elapsed();
        }
        read
    }

    /// The time spent in [`record`](Self::record) so far, every read and endpoint included.
    pub fn time_spent(&self) -> Duration {
        self.spent.lock().map(|spent| *spent).unwrap_or_default()
    }

    async fn record_uncounted(&self, key: &[u8], height: u64) -> Result<Option<Vec<u8>>, ReadError> {
        let mut reasons = Vec::new();
        for (url, client) in &self.endpoints {
            match self.record_from(client, key, height).await {
                Ok(value) => return Ok(value),
                Err(refused) => {
                    if matches!(refused, Refused::Invalid(_)) {
                        self.report_liar(url, &refused);
                    }
                    reasons.push(format!("{url}: {refused}"));
                }
            }
        }
        Err(ReadError::Unverified(reasons))
    }

    /// The record stored at `key` at `height`, proven ([`record`](Self::record)) and decoded:
    /// the chain stores its records in BCS.
    ///
    /// # Errors
    /// [`ReadError::Unverified`] as [`record`](Self::record); [`ReadError::Undecodable`] when the
    /// proven bytes are not a `T`.
    pub async fn decoded<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        height: u64,
    ) -> Result<Option<T>, ReadError> {
        let Some(bytes) = self.record(key, height).await? else { return Ok(None) };
        bcs::from_bytes(&bytes).map(Some).map_err(|error| ReadError::Undecodable {
            key: String::from_utf8_lossy(key).into_owned(),
            error: error.to_string(),
        })
    }

    fn report_liar(&self, url: &str, refused: &Refused) {
        tracing::warn!(endpoint = url, reason = %refused, "sidechain endpoint answered something that does not verify");
        if let Ok(mut liars) = self.liars.lock() {
            *liars.entry(url.to_owned()).or_insert(0) += 1;
        }
    }

    async fn record_from(&self, client: &HttpClient, key: &[u8], height: u64) -> Result<Option<Vec<u8>>, Refused> {
        let asked = Height::try_from(height).map_err(invalid)?;
        let answer = client
            .abci_query(Some(ferry_types::query::STORE_PATH.to_owned()), key.to_vec(), Some(asked), true)
            .await
            .map_err(unavailable)?;
        if answer.height != asked {
            return Err(invalid(format!("answered for height {} when asked for {height}", answer.height)));
        }
        let value = match answer.code.value() {
            0 => Some(answer.value),
            code if code == ferry_types::query::QUERY_NOT_FOUND => None,
            code => return Err(unavailable(format!("code {code}: {}", answer.log))),
        };
        let op = match answer.proof.as_ref().map(|proof| proof.ops.as_slice()) {
            Some([op]) => op,
            _ => return Err(invalid("the answer carries no single proof op")),
        };
        if op.field_type != ferry_types::query::JMT_PROOF_OP || op.key != key {
            return Err(invalid(format!(
                "proof op `{}` is not a {} proof of the key asked",
                op.field_type,
                ferry_types::query::JMT_PROOF_OP
            )));
        }
        let proof: SparseMerkleProof<sha2::Sha256> = borsh::from_slice(&op.data).map_err(invalid)?;
        // The state after block `height` is committed to by the header of `height + 1`.
        let header = self.verified_header(client, height.saturating_add(1)).await?;
        let root = <[u8; 32]>::try_from(header.app_hash.as_bytes())
            .map_err(|_| invalid("the verified header's app hash is not 32 bytes"))?;
        proof.verify(jmt::RootHash(root), jmt::KeyHash::with::<sha2::Sha256>(key), value.as_deref()).map_err(
            |error| invalid(format!("the Merkle proof of the value does not verify against the app hash: {error}")),
        )?;
        Ok(value)
    }

    /// The header at `height`, verified from the trust root (or from the highest header verified
    /// earlier below `height`).
    async fn verified_header(&self, client: &HttpClient, height: u64) -> Result<Header, Refused> {
        if let Some(trusted) = self.trusted_at(height) {
            return Ok(trusted.header);
        }
        let start = match self.trusted_below(height) {
            Some(trusted) => trusted,
            None => self.verify_first(client).await?,
        };
        let mut trusted = start;
        let mut target = height;
        // Skipping verification; on too little overlap, verify the midpoint first.
        while trusted.header.height.value() < height {
            let fetched = fetch(client, target).await?;
            let verdict = self.verifier.verify_update_header(
                untrusted(&fetched),
                TrustedBlockState {
                    chain_id: &self.root.chain_id,
                    header_time: trusted.header.time,
                    height: trusted.header.height,
                    next_validators: &trusted.next_validators,
                    next_validators_hash: trusted.header.next_validators_hash,
                },
                &self.options,
                tendermint::Time::now(),
            );
            match verdict {
                Verdict::Success => {
                    trusted = Trusted {
                        header: fetched.signed_header.header.clone(),
                        next_validators: fetched.next_validators,
                    };
                    self.keep(&trusted);
                    target = height;
                }
                Verdict::NotEnoughTrust(tally) => {
                    let low = trusted.header.height.value();
                    if target <= low + 1 {
                        return Err(invalid(format!("header {target} does not verify from {low}: {tally}")));
                    }
                    target = low + (target - low) / 2;
                }
                Verdict::Invalid(detail) => return Err(invalid(format!("header {target}: {detail}"))),
            }
        }
        Ok(trusted.header)
    }

    /// Block 1, verified against the genesis validators: the trust root's only step.
    async fn verify_first(&self, client: &HttpClient) -> Result<Trusted, Refused> {
        let first = fetch(client, 1).await?;
        if first.signed_header.header.chain_id != self.root.chain_id {
            return Err(invalid(format!(
                "block 1 is of chain `{}`, not `{}`",
                first.signed_header.header.chain_id, self.root.chain_id
            )));
        }
        if first.validators.hash() != self.root.validators.hash() {
            return Err(invalid("block 1's validators are not the genesis validators"));
        }
        let state = untrusted(&first);
        for verdict in [self.verifier.verify_validator_sets(&state), self.verifier.verify_commit(&state)] {
            if verdict != Verdict::Success {
                return Err(invalid(format!("block 1: {verdict:?}")));
            }
        }
        let trusted = Trusted { header: first.signed_header.header.clone(), next_validators: first.next_validators };
        self.keep(&trusted);
        Ok(trusted)
    }

    fn trusted_at(&self, height: u64) -> Option<Trusted> {
        self.trusted.lock().ok()?.get(&height).cloned()
    }

    fn trusted_below(&self, height: u64) -> Option<Trusted> {
        self.trusted.lock().ok()?.range(..height).next_back().map(|(_, trusted)| trusted.clone())
    }

    fn keep(&self, trusted: &Trusted) {
        if let Ok(mut kept) = self.trusted.lock() {
            kept.insert(trusted.header.height.value(), trusted.clone());
            while kept.len() > KEPT_HEADERS {
                kept.pop_first();
            }
        }
    }
}

fn untrusted(fetched: &Fetched) -> UntrustedBlockState<'_> {
    UntrustedBlockState {
        signed_header: &fetched.signed_header,
        validators: &fetched.validators,
        next_validators: Some(&fetched.next_validators),
    }
}

/// The signed header at `height` and the validator sets of `height` and `height + 1`.
async fn fetch(client: &HttpClient, height: u64) -> Result<Fetched, Refused> {
    let at = Height::try_from(height).map_err(invalid)?;
    let next = at.increment();
    let commit = client.commit(at).await.map_err(unavailable)?;
    let validators = client.validators(at, Paging::All).await.map_err(unavailable)?;
    let next_validators = client.validators(next, Paging::All).await.map_err(unavailable)?;
    Ok(Fetched {
        signed_header: commit.signed_header,
        validators: validator::Set::without_proposer(validators.validators),
        next_validators: validator::Set::without_proposer(next_validators.validators),
    })
}
