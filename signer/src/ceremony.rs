//! The trusted-dealer key ceremony: one process draws every member's secrets, hands each member
//! an encrypted keystore and publishes the federation manifest.
//!
//! The dealer draws a random polynomial of degree T − 1 over the BLS12-381 scalar field (exactly
//! threshold_crypto's `SecretKeySet::random(T - 1, rng)`); member `i`'s BLS secret key share is
//! its value at `i + 1` and the federation's public key set is its commitment. Each member also
//! gets a fresh Bitcoin key and a fresh sidechain account key (secp256k1). The dealer knows every
//! secret while it runs, which is what "trusted dealer" means; the polynomial is zeroized when
//! dropped (threshold_crypto's `Poly` wipes its coefficients), and the members' secrets live in
//! [`MemberSecrets`], which wipes itself. Dealer-free key generation is later work.
//!
//! [`keygen`] is pure apart from the RNG it is handed (a seeded `rand_chacha::ChaCha20Rng` gives
//! reproducible devnet keys; real ceremonies use the OS RNG). [`write_ceremony`] is the only
//! function here that touches the file system. It seals each member's keys under that member's
//! own passphrase and writes them into a directory of that member's own, `member-<i>/` (mode
//! 0700): `keystore.json` (the signer's member keystore), `account.keystore.json` (the
//! sidechain account key alone, for the member's relayer, [`ferry_daemon::account_keystore`])
//! and a copy of the manifest, so each directory can travel to its member on its own; the
//! manifest is also written beside them as `federation.json`. Every file is written atomically,
//! and an existing one is replaced only when told to.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ferry_keystore::KdfParams;
use ferry_types::peg::{BitcoinFederation, BitcoinNetwork};
use ferry_types::release::bls::encode_public_key_set;
use rand::{CryptoRng, RngCore};
use threshold_crypto::PublicKeySet;
use threshold_crypto::poly::Poly;
use zeroize::Zeroizing;

use ferry_daemon::account_keystore::{AccountKeystore, AccountKeystoreError};

use crate::federation_size::{FederationSizeError, check_federation_size};
use crate::keystore::{Keystore, KeystoreError};
use crate::manifest::{Manifest, ManifestMember};
use crate::secrets::{MemberSecrets, PLAINTEXT_LEN, SECRET_LEN, bls_scalar_to_bytes};

/// The epoch of a federation created by a ceremony.
pub const FIRST_EPOCH: u64 = 1;

/// File name of the federation manifest in a ceremony's output directory (and in each member's).
pub const MANIFEST_FILE: &str = "federation.json";
/// File name of the member keystore in a member's directory.
pub const KEYSTORE_FILE: &str = "keystore.json";
/// File name of the account keystore (the relayer's key) in a member's directory.
pub const ACCOUNT_KEYSTORE_FILE: &str = "account.keystore.json";

/// Why a key ceremony failed.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// The member count or threshold was refused.
    #[error(transparent)]
    FederationSize(#[from] FederationSizeError),
    /// The random number generator failed.
    #[error("the random number generator failed: {0}")]
    Randomness(String),
    /// The generated keys do not check out (a bug, never expected).
    #[error("the generated federation does not check out: {0}")]
    Inconsistent(String),
}

/// The outcome of a ceremony: every member's secrets and the public manifest.
#[derive(Debug)]
pub struct Ceremony {
    /// Member `i`'s secrets at position `i`.
    pub members: Vec<MemberSecrets>,
    /// The public manifest (Bitcoin network: regtest; set `manifest.bitcoin.network` for
    /// another — keys do not depend on it).
    pub manifest: Manifest,
}

/// Generates a federation of `members` members of which `threshold` (T) must sign, drawing all
/// randomness from `rng`.
///
/// Draws, in order: the dealer's polynomial (T scalars), then per member its Bitcoin key and its
/// account key; so a seeded RNG yields the same federation every time.
///
/// # Errors
/// A refused member count or threshold, or a failing RNG.
pub fn keygen(members: u32, threshold: u32, rng: &mut (impl RngCore + CryptoRng)) -> Result<Ceremony, CeremonyError> {
    check_federation_size(members, threshold)?;
    // The dealer's secret: wiped by threshold_crypto when dropped at the end of this function.
    let dealer = Poly::try_random(usize::try_from(threshold - 1).unwrap_or(usize::MAX), rng)
        .map_err(|e| CeremonyError::Inconsistent(e.to_string()))?;
    let public_key_set = PublicKeySet::from(dealer.commitment());
    let mut secrets = Vec::new();
    for index in 0..members {
        let mut encoded = Zeroizing::new([0u8; PLAINTEXT_LEN]);
        let (bls, keys) = encoded.split_at_mut(SECRET_LEN);
        bls_scalar_to_bytes(&mut dealer.evaluate(u64::from(index) + 1), bls);
        for key in keys.chunks_exact_mut(SECRET_LEN) {
            fill_secp256k1_secret(rng, key)?;
        }
        let member =
            MemberSecrets::from_bytes(index, encoded).map_err(|e| CeremonyError::Inconsistent(e.to_string()))?;
        secrets.push(member);
    }
    drop(dealer);
    let manifest = Manifest {
        epoch: FIRST_EPOCH,
        threshold,
        members: secrets
            .iter()
            .map(|member| ManifestMember {
                index: member.index(),
                account: member.account(),
                bitcoin_public_key: hex::encode(member.bitcoin_public_key()),
                bls_public_key_share: hex::encode(member.bls_public_key_share().to_bytes()),
            })
            .collect(),
        bls_public_key_set: encode_public_key_set(&public_key_set),
        bitcoin: BitcoinFederation {
            network: BitcoinNetwork::Regtest,
            threshold,
            keys: secrets.iter().map(|member| hex::encode(member.bitcoin_public_key())).collect(),
        },
    };
    manifest.validate().map_err(|e| CeremonyError::Inconsistent(e.to_string()))?;
    Ok(Ceremony { members: secrets, manifest })
}

/// Fills `out` (32 bytes) with a uniformly random valid secp256k1 secret key.
fn fill_secp256k1_secret(rng: &mut impl RngCore, out: &mut [u8]) -> Result<(), CeremonyError> {
    loop {
        rng.try_fill_bytes(out).map_err(|e| CeremonyError::Randomness(e.to_string()))?;
        // Fewer than one draw in 2^127 is zero or above the group order.
        if let Ok(mut key) = secp256k1::SecretKey::from_slice(out) {
            key.non_secure_erase();
            return Ok(());
        }
    }
}

/// Whether [`write_ceremony`] may replace existing files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse if any output file exists (nothing is written then).
    Refuse,
    /// Replace existing files.
    Replace,
}

/// Why a ceremony's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// An output file exists and overwriting was not allowed.
    #[error("refusing to overwrite {0} (pass --force to replace it)")]
    Exists(PathBuf),
    /// A file or directory could not be written.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        error: io::Error,
    },
    /// A member's keystore could not be sealed.
    #[error("member {index}'s keystore: {error}")]
    Seal {
        /// The member.
        index: u32,
        /// The cause.
        error: KeystoreError,
    },
    /// A member's account keystore could not be sealed.
    #[error("member {index}'s account keystore: {error}")]
    SealAccount {
        /// The member.
        index: u32,
        /// The cause.
        error: AccountKeystoreError,
    },
    /// Not one passphrase per member.
    #[error("{passphrases} passphrases for {members} members: each member's keys are sealed under its own passphrase")]
    Passphrases {
        /// Passphrases given.
        passphrases: usize,
        /// Members in the ceremony.
        members: usize,
    },
}

/// Where [`write_ceremony`] put its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenCeremony {
    /// Member `i`'s directory at position `i`.
    pub member_dirs: Vec<PathBuf>,
    /// Member `i`'s keystore at position `i`.
    pub keystores: Vec<PathBuf>,
    /// Member `i`'s account keystore (its relayer's key) at position `i`.
    pub account_keystores: Vec<PathBuf>,
    /// The federation manifest.
    pub manifest: PathBuf,
}

/// Member `index`'s own directory in a ceremony's output directory (`member-<i>`).
pub fn member_dir(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("member-{index}"))
}

/// The path of member `index`'s keystore in a ceremony's output directory.
pub fn keystore_path(dir: &Path, index: u32) -> PathBuf {
    member_dir(dir, index).join(KEYSTORE_FILE)
}

/// The path of member `index`'s account keystore (its relayer's key) in a ceremony's output
/// directory.
pub fn account_keystore_path(dir: &Path, index: u32) -> PathBuf {
    member_dir(dir, index).join(ACCOUNT_KEYSTORE_FILE)
}

/// The path of the federation manifest in a ceremony's output directory.
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_FILE)
}

/// Seals member `i`'s secrets under `passphrases[i]` (fresh salt and nonce from the OS RNG) —
/// its keystore and, separately, its account key — and writes them (mode 0600) with a copy of the
/// manifest into `dir/member-<i>/` (mode 0700), and the manifest (mode 0644) into `dir`, creating
/// the directories if missing. Each file is written to a temporary name, synced and then moved
/// into place.
///
/// # Errors
/// [`WriteError::Passphrases`] unless there is one passphrase per member;
/// [`WriteError::Exists`] (before anything is written) when an output file exists and
/// `overwrite` is [`Overwrite::Refuse`]; an empty passphrase or bad scrypt parameters; I/O errors,
/// naming the path.
pub fn write_ceremony<P: AsRef<[u8]>>(
    dir: &Path,
    ceremony: &Ceremony,
    passphrases: &[P],
    kdf: KdfParams,
    overwrite: Overwrite,
) -> Result<WrittenCeremony, WriteError> {
    if passphrases.len() != ceremony.members.len() {
        return Err(WriteError::Passphrases { passphrases: passphrases.len(), members: ceremony.members.len() });
    }
    let indices: Vec<u32> = ceremony.members.iter().map(MemberSecrets::index).collect();
    let written = WrittenCeremony {
        member_dirs: indices.iter().map(|index| member_dir(dir, *index)).collect(),
        keystores: indices.iter().map(|index| keystore_path(dir, *index)).collect(),
        account_keystores: indices.iter().map(|index| account_keystore_path(dir, *index)).collect(),
        manifest: manifest_path(dir),
    };
    let member_manifests: Vec<PathBuf> = written.member_dirs.iter().map(|member| manifest_path(member)).collect();
    if overwrite == Overwrite::Refuse
        && let Some(existing) = written
            .keystores
            .iter()
            .chain(&written.account_keystores)
            .chain(&member_manifests)
            .chain([&written.manifest])
            .find(|path| path.exists())
    {
        return Err(WriteError::Exists(existing.clone()));
    }
    let mut rng = rand::rngs::OsRng;
    let mut sealed = Vec::new();
    for (member, passphrase) in ceremony.members.iter().zip(passphrases) {
        let index = member.index();
        let keystore = Keystore::seal(member, passphrase.as_ref(), kdf, &mut rng)
            .map_err(|error| WriteError::Seal { index, error })?;
        // The plaintext layout ends with the account key (see `crate::secrets`).
        let account = AccountKeystore::seal(&member.to_bytes()[2 * SECRET_LEN..], passphrase.as_ref(), kdf, &mut rng)
            .map_err(|error| WriteError::SealAccount { index, error })?;
        sealed.push((keystore, account));
    }
    let create_dir = |path: &Path| {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|error| WriteError::Io { path: path.to_owned(), error })
    };
    let sync_dir = |path: &Path| {
        fs::File::open(path).and_then(|d| d.sync_all()).map_err(|error| WriteError::Io { path: path.to_owned(), error })
    };
    create_dir(dir)?;
    let manifest = ceremony.manifest.to_json();
    for (index, (keystore, account)) in sealed.iter().enumerate() {
        let member = &written.member_dirs[index];
        create_dir(member)?;
        write_file(&written.keystores[index], keystore.to_json().as_bytes(), 0o600, overwrite)?;
        write_file(&written.account_keystores[index], account.to_json().as_bytes(), 0o600, overwrite)?;
        write_file(&member_manifests[index], manifest.as_bytes(), 0o644, overwrite)?;
        sync_dir(member)?;
    }
    write_file(&written.manifest, manifest.as_bytes(), 0o644, overwrite)?;
    sync_dir(dir)?;
    Ok(written)
}

/// Writes `contents` to `path` with permissions `mode` via a synced temporary file in the same
/// directory, then moves it into place: by rename when replacing, by hard link (which fails if
/// `path` exists) when refusing to overwrite. The file is never seen half-written.
fn write_file(path: &Path, contents: &[u8], mode: u32, overwrite: Overwrite) -> Result<(), WriteError> {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let io_error = |error| WriteError::Io { path: path.to_owned(), error };
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&temporary)?;
        // The umask may have narrowed `mode`; state it exactly.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        match overwrite {
            Overwrite::Replace => fs::rename(&temporary, path),
            Overwrite::Refuse => fs::hard_link(&temporary, path).and_then(|()| fs::remove_file(&temporary)),
        }
    })();
    result.map_err(|error| {
        // Best effort: the temporary may not exist, and the original error is what matters.
        let _ = fs::remove_file(&temporary);
        if error.kind() == io::ErrorKind::AlreadyExists && overwrite == Overwrite::Refuse {
            WriteError::Exists(path.to_owned())
        } else {
            io_error(error)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use threshold_crypto::SecretKeySet;

    use super::*;

    #[test]
    fn dealer_is_threshold_cryptos_secret_key_set() -> Result<(), CeremonyError> {
        // The same seed through `SecretKeySet::random(T - 1, rng)` gives the same key set and shares.
        let ceremony = keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(9))?;
        let reference = SecretKeySet::random(2, &mut ChaCha20Rng::seed_from_u64(9));
        assert_eq!(ceremony.manifest.public_key_set().ok(), Some(reference.public_keys()));
        for member in &ceremony.members {
            let share = reference.secret_key_share(u64::from(member.index()));
            assert_eq!(member.bls_secret_key_share(), &share);
        }
        Ok(())
    }

    #[test]
    fn any_threshold_of_shares_signs_for_the_federation_and_fewer_cannot() -> Result<(), CeremonyError> {
        let ceremony = keygen(5, 3, &mut ChaCha20Rng::seed_from_u64(10))?;
        let set = ceremony.manifest.public_key_set().map_err(|e| CeremonyError::Inconsistent(e.to_string()))?;
        let message = b"release batch 7";
        let shares: BTreeMap<u64, _> = ceremony
            .members
            .iter()
            .map(|member| (u64::from(member.index()), member.bls_secret_key_share().sign(message)))
            .collect();
        let subsets: [&[u64]; 3] = [&[0, 1, 2], &[2, 3, 4], &[0, 2, 4]];
        for subset in subsets {
            let chosen = subset.iter().filter_map(|index| shares.get(index).map(|share| (*index, share)));
            let signature = set.combine_signatures(chosen).map_err(|e| CeremonyError::Inconsistent(e.to_string()))?;
            assert!(set.public_key().verify(&signature, message), "members {subset:?}");
        }
        let two = [0u64, 1].map(|index| (index, &shares[&index]));
        let short = set.combine_signatures(two).map(|signature| set.public_key().verify(&signature, message));
        assert_ne!(short.ok(), Some(true), "two shares of a 3-of-5 federation signed");
        Ok(())
    }

    #[test]
    fn seeded_ceremonies_repeat_and_members_get_distinct_keys() -> Result<(), CeremonyError> {
        let first = keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(11))?;
        let again = keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(11))?;
        let other = keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(12))?;
        assert_eq!(first.manifest, again.manifest);
        assert_ne!(first.manifest, other.manifest);
        let mut keys = BTreeMap::new();
        for member in &first.members {
            for key in [member.bitcoin_public_key().to_vec(), member.account().as_bytes().to_vec()] {
                assert!(keys.insert(key, member.index()).is_none(), "a key repeats");
            }
        }
        assert_eq!(first.manifest.bitcoin.keys.len(), 4);
        assert_eq!(first.manifest.threshold, 3);
        assert_eq!(first.manifest.epoch, FIRST_EPOCH);
        Ok(())
    }

    #[test]
    fn keygen_refuses_bad_sizes_before_drawing_keys() {
        let result = keygen(4, 2, &mut ChaCha20Rng::seed_from_u64(13));
        assert!(matches!(result, Err(CeremonyError::FederationSize(FederationSizeError::MinorityThreshold { .. }))));
    }
}
