//! What both daemons share about their verified reads of the sidechain (`ferry-light`): the
//! three `[chain]` keys that configure them (`endpoints`, `genesis_file`, `trusting_period`,
//! beside `rpc`), opening the reader, and exporting which endpoints lied to a gauge.
//!
//! The keys sit flat in each daemon's own `[chain]` table (its schema refuses unknown keys, which
//! rules out a flattened shared struct), so this module gives the checks and defaults, not the
//! struct.

use std::path::Path;
use std::time::Duration;

use ferry_light::{Reader, TrustRoot};
use prometheus::{Gauge, IntGaugeVec};

use crate::config::{ConfigError, check_file, check_url, invalid};

/// The default `chain.trusting_period`: 14 days (must be shorter than the time in which a third
/// of the validators' power could change hands).
pub fn default_trusting_period() -> Duration {
    Duration::from_secs(14 * 24 * 3600)
}

/// Checks `chain.endpoints`, `chain.genesis_file` and `chain.trusting_period`.
///
/// # Errors
/// The first invalid value, by key.
pub fn check(endpoints: &[String], genesis_file: &Path, trusting_period: Duration) -> Result<(), ConfigError> {
    for (index, endpoint) in endpoints.iter().enumerate() {
        check_url("chain.endpoints", endpoint)
            .map_err(|error| invalid("chain.endpoints", format!("entry {index}: {error}")))?;
    }
    check_file("chain.genesis_file", genesis_file)?;
    if trusting_period.is_zero() {
        return Err(invalid("chain.trusting_period", "must be positive"));
    }
    Ok(())
}

/// The reader of the chain whose genesis is `genesis_file`, through `rpc` then `endpoints`.
///
/// # Errors
/// When the genesis file is not a usable trust root or an endpoint is not an RPC URL.
pub fn open(rpc: &str, endpoints: &[String], genesis_file: &Path, trusting_period: Duration) -> anyhow::Result<Reader> {
    let root = TrustRoot::from_genesis_file(genesis_file)?;
    let urls: Vec<String> = std::iter::once(rpc.to_owned()).chain(endpoints.iter().cloned()).collect();
    Ok(Reader::new(&urls, root, trusting_period)?)
}

/// The gauges a daemon exports about its proven reads.
#[derive(Clone)]
pub struct ReadGauges {
    /// Answers of each endpoint that did not verify so far, by `endpoint`.
    pub unverified_answers: IntGaugeVec,
    /// Seconds spent in proven reads so far (round trips and verification).
    pub read_seconds: Gauge,
}

/// Sets the gauges from `reader`: how many answers of each endpoint did not verify, and the time
/// proven reads took, so far.
pub fn export(reader: &Reader, gauges: &ReadGauges) {
    for (endpoint, count) in reader.liars() {
        gauges.unverified_answers.with_label_values(&[&endpoint]).set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    gauges.read_seconds.set(reader.time_spent().as_secs_f64());
}
