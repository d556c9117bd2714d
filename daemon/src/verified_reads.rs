//! What both daemons share about their verified reads of the sidechain (`ferry-light`): the
//! `[chain]` keys that configure them (`endpoints`, `genesis_file`, `trusting_period`,
//! `trust_height` + `trust_hash`, `light_store`, beside `rpc`), opening the reader, and
//! exporting what the reads cost and which endpoints lied.
//!
//! The keys sit flat in each daemon's own `[chain]` table (its schema refuses unknown keys, which
//! rules out a flattened shared struct): each daemon lends them here as [`Settings`].

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

/// A daemon's proven-read keys, borrowed from its `[chain]` table.
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    /// `chain.rpc`: the first endpoint.
    pub rpc: &'a str,
    /// `chain.endpoints`: tried after `rpc`, in order.
    pub endpoints: &'a [String],
    /// `chain.genesis_file`: the chain id and, without a trust point, the genesis validators.
    pub genesis_file: &'a Path,
    /// `chain.trusting_period`.
    pub trusting_period: Duration,
    /// `chain.trust_height`.
    pub trust_height: Option<u64>,
    /// `chain.trust_hash` (hex).
    pub trust_hash: Option<&'a str>,
    /// `chain.light_store`: where the newest verified header is kept across restarts.
    pub light_store: Option<&'a Path>,
}

impl Settings<'_> {
    /// The trust point, when both of its keys are set.
    ///
    /// # Errors
    /// When only one of `chain.trust_height` and `chain.trust_hash` is set.
    fn trust_point(&self) -> Result<Option<(u64, &str)>, ConfigError> {
        match (self.trust_height, self.trust_hash) {
            (Some(height), Some(hash)) => Ok(Some((height, hash))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(invalid("chain.trust_hash", "chain.trust_height needs the block's hash")),
            (None, Some(_)) => Err(invalid("chain.trust_height", "chain.trust_hash needs the block's height")),
        }
    }

    /// Checks the keys: URLs, the genesis file's existence, a positive trusting period, a trust
    /// point given whole and well-formed.
    ///
    /// # Errors
    /// The first invalid value, by key.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            check_url("chain.endpoints", endpoint)
                .map_err(|error| invalid("chain.endpoints", format!("entry {index}: {error}")))?;
        }
        check_file("chain.genesis_file", self.genesis_file)?;
        if self.trusting_period.is_zero() {
            return Err(invalid("chain.trusting_period", "must be positive"));
        }
        if let Some((height, hash)) = self.trust_point()? {
            let hex_ok = hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit());
            if height == 0 || !hex_ok {
                return Err(invalid(
                    "chain.trust_hash",
                    "a trust point is a height of 1 or more and a 64-digit hex hash",
                ));
            }
        }
        Ok(())
    }

    /// The reader these settings describe.
    ///
    /// # Errors
    /// When the genesis file is not a usable trust root, the trust point or the light store is
    /// not usable, or an endpoint is not an RPC URL.
    pub fn open(&self) -> anyhow::Result<Reader> {
        let mut root = TrustRoot::from_genesis_file(self.genesis_file)?;
        if let Some((height, hash)) = self.trust_point()? {
            root = root.with_trust_point(height, hash)?;
        }
        let urls: Vec<String> = std::iter::once(self.rpc.to_owned()).chain(self.endpoints.iter().cloned()).collect();
        let reader = Reader::new(&urls, root, self.trusting_period)?;
        Ok(match self.light_store {
            Some(path) => reader.with_store(path)?,
            None => reader,
        })
    }
}

/// The reader of the chain whose genesis is `genesis_file`, through `rpc` alone, with the default
/// trusting period (for tools such as `audit verify`).
///
/// # Errors
/// As [`Settings::open`].
pub fn open_with_genesis(rpc: &str, genesis_file: &Path) -> anyhow::Result<Reader> {
    Settings {
        rpc,
        endpoints: &[],
        genesis_file,
        trusting_period: default_trusting_period(),
        trust_height: None,
        trust_hash: None,
        light_store: None,
    }
    .open()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings<'a>(genesis: &'a Path, height: Option<u64>, hash: Option<&'a str>) -> Settings<'a> {
        Settings {
            rpc: "http://127.0.0.1:26657",
            endpoints: &[],
            genesis_file: genesis,
            trusting_period: default_trusting_period(),
            trust_height: height,
            trust_hash: hash,
            light_store: None,
        }
    }

    #[test]
    fn a_trust_point_is_given_whole_and_well_formed() {
        let genesis = std::env::temp_dir().join(format!("ferry-verified-reads-{}.json", std::process::id()));
        std::fs::write(&genesis, "{}").unwrap_or_default();
        let hash = "AB".repeat(32);
        assert!(settings(&genesis, None, None).check().is_ok());
        assert!(settings(&genesis, Some(7), Some(&hash)).check().is_ok());
        let named = |height, hash| settings(&genesis, height, hash).check().err().map(|e| e.to_string());
        assert!(named(Some(7), None).is_some_and(|e| e.contains("chain.trust_hash")));
        assert!(named(None, Some(hash.as_str())).is_some_and(|e| e.contains("chain.trust_height")));
        assert!(named(Some(0), Some(hash.as_str())).is_some_and(|e| e.contains("height of 1 or more")));
        assert!(named(Some(7), Some("abc")).is_some_and(|e| e.contains("64-digit hex")));
        let _ = std::fs::remove_file(&genesis);
    }
}
