//! The federation manifest (`federation.json`): the public outcome of a key ceremony, from which
//! genesis takes the federation's members, BLS public key set and Bitcoin peg keys.
//!
//! ```json
//! {
//!   "epoch": 1,
//!   "threshold": 3,
//!   "members": [
//!     { "index": 0, "account": "ferry1…", "bitcoin_public_key": "02…", "bls_public_key_share": "a1…" }
//!   ],
//!   "bls_public_key_set": "…",      // ferry_types::release::bls::encode_public_key_set
//!   "bitcoin": { "network": "regtest", "threshold": 3, "keys": ["02…"] }
//! }
//! ```
//!
//! `threshold` is T, the number of members whose signatures make a federation signature (BLS
//! shares combined, Bitcoin multisig signatures); threshold_crypto's own `threshold` is T − 1.
//! [`Manifest::validate`] checks that the parts agree with each other; [`Manifest::check_member`]
//! that a member's secrets are the manifest's member at their index, and
//! [`Manifest::check_chain_federation`] that the chain's federation is this manifest's. None of
//! them does I/O; only [`Manifest::load`] reads a file. Nothing secret is in a manifest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_types::Address;
use ferry_types::genesis::Federation;
use ferry_types::peg::{BitcoinFederation, Peg, PegError};
use ferry_types::release::bls::{BlsError, decode_public_key_set, threshold_signatures};
use serde::{Deserialize, Serialize};
use threshold_crypto::{PublicKeySet, PublicKeyShare};

use crate::federation_size::{FederationSizeError, check_federation_size};
use crate::secrets::MemberSecrets;

/// One member's public keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestMember {
    /// Position in the federation (0-based): threshold_crypto's share index, and the member's
    /// place in genesis's member and Bitcoin key lists.
    pub index: u32,
    /// The member's sidechain account.
    pub account: Address,
    /// The member's compressed secp256k1 Bitcoin public key, hex.
    pub bitcoin_public_key: String,
    /// The member's BLS public key share, a 48-byte compressed G1 point, hex.
    pub bls_public_key_share: String,
}

/// The federation manifest. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The federation epoch these keys belong to (bound into Ethereum release payloads).
    pub epoch: u64,
    /// Signatures needed (T).
    pub threshold: u32,
    /// The members, in index order.
    pub members: Vec<ManifestMember>,
    /// The federation's BLS public key set (see `ferry_types::release::bls::encode_public_key_set`).
    pub bls_public_key_set: String,
    /// The Bitcoin peg: network, threshold and the members' keys in member order (genesis's
    /// `federation.bitcoin`).
    pub bitcoin: BitcoinFederation,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// Not JSON of the manifest schema.
    #[error("not a federation manifest: {0}")]
    NotAManifest(String),
    /// The member count or threshold breaks the ceremony's rules.
    #[error(transparent)]
    FederationSize(#[from] FederationSizeError),
    /// A member's `index` is not its position in the list.
    #[error("members[{position}] has index {index}; members must be listed in index order from 0")]
    IndexOrder {
        /// Position in the list.
        position: usize,
        /// The index it states.
        index: u32,
    },
    /// An account appears twice.
    #[error("account {0} is listed for two members")]
    DuplicateAccount(Address),
    /// The BLS public key set does not decode.
    #[error("bls_public_key_set: {0}")]
    PublicKeySet(BlsError),
    /// The BLS public key set is for another threshold.
    #[error("bls_public_key_set combines {set} signature shares, but threshold is {threshold}")]
    PublicKeySetThreshold {
        /// T of the key set.
        set: u32,
        /// The manifest's threshold.
        threshold: u32,
    },
    /// A member's BLS share does not decode.
    #[error("member {index}: bls_public_key_share `{text}` is not a 48-byte compressed G1 point in hex")]
    BadShare {
        /// The member.
        index: u32,
        /// The text given.
        text: String,
    },
    /// A member's BLS share is not the key set's share for its index.
    #[error("member {index}: bls_public_key_share is not share {index} of bls_public_key_set")]
    ShareMismatch {
        /// The member.
        index: u32,
    },
    /// The Bitcoin section disagrees with the members.
    #[error("bitcoin: {0}")]
    Bitcoin(String),
    /// The Bitcoin keys do not form a valid peg.
    #[error("bitcoin: {0}")]
    Peg(PegError),
    /// A member's secrets are not the manifest's member at their index.
    #[error("the keystore of member {index} does not belong to this manifest: its {field} differs")]
    NotThisMember {
        /// The keystore's member index.
        index: u32,
        /// What differs (`index`, `account`, `bitcoin_public_key`, `bls_public_key_share`).
        field: &'static str,
    },
    /// The chain's federation is not this manifest's.
    #[error("the chain's federation is not this manifest's: {0}")]
    ChainFederation(String),
}

impl Manifest {
    /// Reads and validates a manifest.
    ///
    /// # Errors
    /// An unreadable file, a schema mismatch, or any rule of [`Manifest::validate`].
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| ManifestError::Read { path: path.to_owned(), error })?;
        Manifest::from_json(&bytes)
    }

    /// Parses and validates a manifest's JSON.
    ///
    /// # Errors
    /// A schema mismatch, or any rule of [`Manifest::validate`].
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::NotAManifest(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The manifest as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Plain fields, strings and bech32 addresses always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks that the parts agree: member count and threshold follow the ceremony's rules,
    /// members are listed in index order with distinct accounts, the BLS key set combines
    /// `threshold` shares and gives each member's share at its index, and the Bitcoin section
    /// has the same threshold and the members' keys in member order and forms a valid peg.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let count = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
        check_federation_size(count, self.threshold)?;
        let mut accounts = BTreeSet::new();
        for (position, member) in self.members.iter().enumerate() {
            if usize::try_from(member.index).ok() != Some(position) {
                return Err(ManifestError::IndexOrder { position, index: member.index });
            }
            if !accounts.insert(member.account) {
                return Err(ManifestError::DuplicateAccount(member.account));
            }
        }
        let set = self.public_key_set()?;
        let set_threshold = threshold_signatures(&set);
        if set_threshold != self.threshold {
            return Err(ManifestError::PublicKeySetThreshold { set: set_threshold, threshold: self.threshold });
        }
        for member in &self.members {
            let share = decode_share(&member.bls_public_key_share).ok_or_else(|| ManifestError::BadShare {
                index: member.index,
                text: member.bls_public_key_share.clone(),
            })?;
            if share != set.public_key_share(u64::from(member.index)) {
                return Err(ManifestError::ShareMismatch { index: member.index });
            }
        }
        if self.bitcoin.threshold != self.threshold {
            return Err(ManifestError::Bitcoin(format!(
                "threshold {} differs from the federation threshold {}",
                self.bitcoin.threshold, self.threshold
            )));
        }
        if self.bitcoin.keys.len() != self.members.len() {
            return Err(ManifestError::Bitcoin(format!(
                "{} keys for {} members; list one per member, in member order",
                self.bitcoin.keys.len(),
                self.members.len()
            )));
        }
        if let Some(member) =
            self.members.iter().zip(&self.bitcoin.keys).find_map(|(member, key)| {
                (!member.bitcoin_public_key.eq_ignore_ascii_case(key)).then_some(member.index)
            })
        {
            return Err(ManifestError::Bitcoin(format!("keys[{member}] is not member {member}'s bitcoin_public_key")));
        }
        Peg::new(&self.bitcoin).map_err(ManifestError::Peg)?;
        Ok(())
    }

    /// The federation's BLS public key set.
    ///
    /// # Errors
    /// When `bls_public_key_set` does not decode.
    pub fn public_key_set(&self) -> Result<PublicKeySet, ManifestError> {
        decode_public_key_set(&self.bls_public_key_set).map_err(ManifestError::PublicKeySet)
    }

    /// The members' sidechain accounts, in member order (genesis's `federation.members`).
    pub fn accounts(&self) -> Vec<Address> {
        self.members.iter().map(|member| member.account).collect()
    }

    /// Checks that `secrets` are member `secrets.index()` of this manifest: same account,
    /// Bitcoin public key and BLS public key share.
    ///
    /// # Errors
    /// [`ManifestError::NotThisMember`] naming the first field that differs.
    pub fn check_member(&self, secrets: &MemberSecrets) -> Result<(), ManifestError> {
        let index = secrets.index();
        let not = |field| ManifestError::NotThisMember { index, field };
        let member = usize::try_from(index).ok().and_then(|i| self.members.get(i)).ok_or(not("index"))?;
        if member.account != secrets.account() {
            return Err(not("account"));
        }
        if !member.bitcoin_public_key.eq_ignore_ascii_case(&hex::encode(secrets.bitcoin_public_key())) {
            return Err(not("bitcoin_public_key"));
        }
        if decode_share(&member.bls_public_key_share) != Some(secrets.bls_public_key_share()) {
            return Err(not("bls_public_key_share"));
        }
        Ok(())
    }

    /// Checks that the chain's `federation` is this manifest's: the same members in the same
    /// order, the same epoch, and — where the chain has them — the same BLS public key set and
    /// Bitcoin peg keys, threshold and network. A signer whose manifest is not the chain's
    /// federation signs nothing.
    ///
    /// # Errors
    /// [`ManifestError::ChainFederation`] naming what differs.
    pub fn check_chain_federation(&self, federation: &Federation) -> Result<(), ManifestError> {
        let differs = |what: String| Err(ManifestError::ChainFederation(what));
        if federation.members != self.accounts() {
            return differs(format!(
                "its members are [{}], the manifest's [{}]",
                join(&federation.members),
                join(&self.accounts())
            ));
        }
        if federation.epoch != self.epoch {
            return differs(format!("its epoch is {}, the manifest's {}", federation.epoch, self.epoch));
        }
        if let Some(bls) = &federation.bls {
            let chain_set = decode_public_key_set(&bls.public_key_set).ok();
            if chain_set.as_ref() != Some(&self.public_key_set()?) {
                return differs("its BLS public key set is another".to_owned());
            }
        }
        if let Some(bitcoin) = &federation.bitcoin {
            let lower = |keys: &[String]| keys.iter().map(|key| key.to_ascii_lowercase()).collect::<Vec<_>>();
            if bitcoin.network != self.bitcoin.network
                || bitcoin.threshold != self.bitcoin.threshold
                || lower(&bitcoin.keys) != lower(&self.bitcoin.keys)
            {
                return differs(format!(
                    "its Bitcoin peg is {}-of-{} on {} with other keys or order",
                    bitcoin.threshold,
                    bitcoin.keys.len(),
                    bitcoin.network
                ));
            }
        }
        Ok(())
    }
}

fn join(accounts: &[Address]) -> String {
    accounts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The public key share encoded as hex of a 48-byte compressed G1 point.
fn decode_share(text: &str) -> Option<PublicKeyShare> {
    let bytes: [u8; threshold_crypto::PK_SIZE] = hex::decode(text).ok()?.try_into().ok()?;
    PublicKeyShare::from_bytes(bytes).ok()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::ceremony::keygen;

    fn manifest() -> Manifest {
        match keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(21)) {
            Ok(ceremony) => ceremony.manifest,
            Err(error) => unreachable!("keygen 3 of 4: {error}"),
        }
    }

    fn refusal(edit: impl FnOnce(&mut Manifest)) -> String {
        let mut manifest = manifest();
        edit(&mut manifest);
        Manifest::from_json(manifest.to_json().as_bytes()).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn a_ceremonys_manifest_round_trips_and_validates() -> Result<(), ManifestError> {
        let manifest = manifest();
        assert_eq!(Manifest::from_json(manifest.to_json().as_bytes())?, manifest);
        assert_eq!(manifest.accounts().len(), 4);
        assert_eq!(threshold_signatures(&manifest.public_key_set()?), 3);
        Ok(())
    }

    #[test]
    fn a_members_secrets_match_only_their_own_entry() -> Result<(), ManifestError> {
        let ceremony = keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(21))
            .map_err(|e| ManifestError::NotAManifest(e.to_string()))?;
        let manifest = &ceremony.manifest;
        for secrets in &ceremony.members {
            manifest.check_member(secrets)?;
        }
        let other = keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(22))
            .map_err(|e| ManifestError::NotAManifest(e.to_string()))?;
        let refused = manifest.check_member(&other.members[1]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("member 1 does not belong to this manifest: its account differs"), "{refused}");
        Ok(())
    }

    #[test]
    fn the_chains_federation_must_be_the_manifests() -> Result<(), ManifestError> {
        let manifest = manifest();
        let federation = Federation {
            members: manifest.accounts(),
            attest_quorum: 3,
            bitcoin: Some(manifest.bitcoin.clone()),
            epoch: manifest.epoch,
            bls: Some(ferry_types::genesis::BlsFederation { public_key_set: manifest.bls_public_key_set.clone() }),
        };
        manifest.check_chain_federation(&federation)?;
        let refusal = |edit: &dyn Fn(&mut Federation)| {
            let mut changed = federation.clone();
            edit(&mut changed);
            manifest.check_chain_federation(&changed).err().map(|e| e.to_string()).unwrap_or_default()
        };
        assert!(refusal(&|f| f.members.swap(0, 1)).contains("its members are"));
        assert!(refusal(&|f| f.epoch = 2).contains("its epoch is 2, the manifest's 1"));
        let other = keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(5))
            .map(|c| c.manifest)
            .map_err(|e| ManifestError::NotAManifest(e.to_string()))?;
        let set = other.bls_public_key_set.clone();
        assert!(
            refusal(&|f| f.bls = Some(ferry_types::genesis::BlsFederation { public_key_set: set.clone() }))
                .contains("BLS")
        );
        assert!(
            refusal(&|f| if let Some(b) = &mut f.bitcoin {
                b.keys.swap(0, 1)
            })
            .contains("Bitcoin peg")
        );
        Ok(())
    }

    #[test]
    fn parts_that_disagree_are_named() {
        let swapped = refusal(|m| m.members.swap(1, 2));
        assert!(swapped.contains("members[1] has index 2"), "{swapped}");
        let share = refusal(|m| m.members[1].bls_public_key_share = m.members[2].bls_public_key_share.clone());
        assert!(share.contains("member 1: bls_public_key_share is not share 1"), "{share}");
        let garbage = refusal(|m| m.members[0].bls_public_key_share = "00".repeat(48));
        assert!(garbage.contains("member 0: bls_public_key_share"), "{garbage}");
        let threshold = refusal(|m| {
            m.threshold = 4;
            m.bitcoin.threshold = 4;
        });
        assert!(threshold.contains("combines 3 signature shares, but threshold is 4"), "{threshold}");
        let minority = refusal(|m| m.threshold = 2);
        assert!(minority.contains("not more than half"), "{minority}");
        let bitcoin = refusal(|m| m.bitcoin.threshold = 2);
        assert!(bitcoin.contains("bitcoin: threshold 2 differs"), "{bitcoin}");
        let order = refusal(|m| m.bitcoin.keys.swap(0, 3));
        assert!(order.contains("keys[0] is not member 0"), "{order}");
        let count = refusal(|m| {
            m.bitcoin.keys.pop();
        });
        assert!(count.contains("3 keys for 4 members"), "{count}");
        let account = refusal(|m| m.members[3].account = m.members[0].account);
        assert!(account.contains("is listed for two members"), "{account}");
        let set = refusal(|m| m.bls_public_key_set.truncate(96 * 2));
        assert!(set.contains("combines 2 signature shares"), "{set}");
        let unknown = {
            let mut value: serde_json::Value = serde_json::from_str(&manifest().to_json()).unwrap_or_default();
            value["extra"] = true.into();
            Manifest::from_json(value.to_string().as_bytes()).err().map(|e| e.to_string()).unwrap_or_default()
        };
        assert!(unknown.contains("unknown field `extra`"), "{unknown}");
    }
}
