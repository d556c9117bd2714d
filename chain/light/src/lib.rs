//! `ferry-light`: verified reads of the sidechain for the parties that act on its facts
//! (signers, relayers). A read is accepted only when it is proven:
//!
//! 1. the header is verified by a CometBFT light client ([`tendermint_light_client_verifier`])
//!    from a trust root the operator configures: the chain's genesis file (the first block's
//!    commit must carry more than 2/3 of the genesis validators' power), or a trust point (a
//!    block's height and hash, from the network's operators, as for state sync); every later
//!    header is reached by skipping verification (more than 1/3 of the trusted validators' power
//!    signed it, and 2/3 of its own), bisecting when the validator set changed too much. A
//!    trusted header starts verifications only within the trusting period: past it, a root is
//!    stale and the read fails naming the fix, blaming no endpoint. A light store file (optional)
//!    keeps the newest verified header across restarts, so a daemon restarted after the genesis
//!    or its trust point aged out starts from where it was;
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
use std::path::{Path, PathBuf};
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
    /// The trusted header verification would start from is older than the trusting period (a
    /// local matter: no endpoint is blamed).
    #[error(
        "the trusted header at height {height} is older than the trusting period: configure a recent \
         trust point (chain.trust_height, chain.trust_hash) or a light store (chain.light_store)"
    )]
    TrustExpired {
        /// The trusted header's height.
        height: u64,
    },
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
    /// The trusted header verification would start from, at this height, is older than the
    /// trusting period (nothing the endpoint did).
    #[error("the trusted header at height {0} is older than the trusting period")]
    Stale(u64),
}

fn unavailable(error: impl std::fmt::Display) -> Refused {
    Refused::Unavailable(error.to_string())
}

fn invalid(error: impl std::fmt::Display) -> Refused {
    Refused::Invalid(error.to_string())
}

/// What the light client trusts without verification: the chain id, and the genesis validators
/// or a trust point.
#[derive(Clone, Debug)]
pub struct TrustRoot {
    chain_id: tendermint::chain::Id,
    anchor: Anchor,
}

/// Where verification starts.
#[derive(Clone, Debug)]
enum Anchor {
    /// Block 1, signed by more than 2/3 of these validators' power.
    Genesis(validator::Set),
    /// The block of this height whose header has this hash (then signed by 2/3 of its own
    /// validators, which the header commits to).
    Point { height: u64, hash: tendermint::Hash },
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
        Ok(TrustRoot { chain_id, anchor: Anchor::Genesis(validator::Set::without_proposer(validators)) })
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
        Ok(TrustRoot {
            chain_id: genesis.chain_id,
            anchor: Anchor::Genesis(validator::Set::without_proposer(genesis.validators)),
        })
    }

    /// This root with the trust point (`height`, `hash`: the block's header hash, hex) in place of
    /// the genesis validators: for a chain older than the trusting period.
    ///
    /// # Errors
    /// When the height is 0 or the hash is not 32 bytes of hex.
    pub fn with_trust_point(self, height: u64, hash: &str) -> Result<TrustRoot, ReadError> {
        if height == 0 {
            return Err(ReadError::TrustRoot("a trust point's height is 1 or more".to_owned()));
        }
        let hash = tendermint::Hash::from_hex_upper(tendermint::hash::Algorithm::Sha256, &hash.to_ascii_uppercase())
            .map_err(|error| ReadError::TrustRoot(format!("trust hash `{hash}`: {error}")))?;
        Ok(TrustRoot { anchor: Anchor::Point { height, hash }, ..self })
    }
}

/// A block the light client verified: its header and the validators that sign the next one.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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
    /// The light store: the file the newest verified header is kept in, and when it was last
    /// written.
    store: Option<(PathBuf, Mutex<Option<std::time::Instant>>)>,
}

/// How often the light store is written at most (a restart loses at most this much progress,
/// which only costs one longer verification).
const STORE_EVERY: Duration = Duration::from_secs(30);

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
            store: None,
        })
    }

    /// This reader with a light store at `path`: the newest verified header is written there
    /// (at most every 30 s), and the one found there at start is trusted like the root — it was
    /// verified by this reader before — so a restart does not depend on the root still being
    /// within the trusting period. A store of another chain is refused.
    ///
    /// # Errors
    /// When the file exists but cannot be read, is not a light store, or is of another chain.
    pub fn with_store(mut self, path: &Path) -> Result<Reader, ReadError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let stored: Trusted = serde_json::from_slice(&bytes)
                    .map_err(|error| ReadError::TrustRoot(format!("light store {}: {error}", path.display())))?;
                if stored.header.chain_id != self.root.chain_id {
                    return Err(ReadError::TrustRoot(format!(
                        "light store {} holds chain `{}`, not `{}`",
                        path.display(),
                        stored.header.chain_id,
                        self.root.chain_id
                    )));
                }
                tracing::info!(height = stored.header.height.value(), store = %path.display(), "light client resumes from its store");
                self.keep(&stored);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(ReadError::TrustRoot(format!("light store {}: {error}", path.display())));
            }
        }
        self.store = Some((path.to_owned(), Mutex::new(None)));
        Ok(self)
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
                    if let Refused::Stale(height) = refused {
                        return Err(ReadError::TrustExpired { height });
                    }
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
        let now = tendermint::Time::now();
        let expires = (start.header.time + self.options.trusting_period).map_err(invalid)?;
        if expires <= now {
            return Err(Refused::Stale(start.header.height.value()));
        }
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

    /// The trust root's block, verified: block 1 against the genesis validators, or the trust
    /// point's block against its hash (its validators are the ones its header commits to); then
    /// its commit must carry more than 2/3 of their power.
    async fn verify_first(&self, client: &HttpClient) -> Result<Trusted, Refused> {
        let height = match &self.root.anchor {
            Anchor::Genesis(_) => 1,
            Anchor::Point { height, .. } => *height,
        };
        let first = fetch(client, height).await?;
        if first.signed_header.header.chain_id != self.root.chain_id {
            return Err(invalid(format!(
                "block {height} is of chain `{}`, not `{}`",
                first.signed_header.header.chain_id, self.root.chain_id
            )));
        }
        match &self.root.anchor {
            Anchor::Genesis(validators) if first.validators.hash() != validators.hash() => {
                return Err(invalid("block 1's validators are not the genesis validators"));
            }
            Anchor::Point { hash, .. } if first.signed_header.header.hash() != *hash => {
                return Err(invalid(format!("block {height}'s hash is not the trust point's {hash}")));
            }
            _ => {}
        }
        let state = untrusted(&first);
        for verdict in [self.verifier.verify_validator_sets(&state), self.verifier.verify_commit(&state)] {
            if verdict != Verdict::Success {
                return Err(invalid(format!("block {height}: {verdict:?}")));
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
        let newest = match self.trusted.lock() {
            Ok(mut kept) => {
                kept.insert(trusted.header.height.value(), trusted.clone());
                while kept.len() > KEPT_HEADERS {
                    kept.pop_first();
                }
                kept.last_key_value().is_some_and(|(height, _)| *height == trusted.header.height.value())
            }
            Err(_) => false,
        };
        if newest {
            self.store_newest(trusted);
        }
    }

    /// Writes `trusted` to the light store (if any) when the last write is older than
    /// [`STORE_EVERY`]: to a temporary file, then renamed over the store.
    fn store_newest(&self, trusted: &Trusted) {
        let Some((path, last)) = &self.store else { return };
        let Ok(mut last) = last.lock() else { return };
        if last.is_some_and(|at| at.elapsed() < STORE_EVERY) {
            return;
        }
        let temporary = path.with_extension("tmp");
        let written = serde_json::to_vec(trusted)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temporary, bytes))
            .and_then(|()| std::fs::rename(&temporary, path));
        match written {
            Ok(()) => *last = Some(std::time::Instant::now()),
            Err(error) => tracing::warn!(store = %path.display(), %error, "light store not written"),
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
