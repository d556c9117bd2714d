//! `ferry-signer devnet-keygen` and `keystore inspect` end to end: the binary seals each member's
//! keys under that member's own passphrase into a directory of its own — keystores that open only
//! with their own member's passphrase and only while unaltered, and the relayer's account
//! keystore beside them — refuses one passphrase for several members, writes a manifest that
//! validates and whose BLS key set accepts any threshold of members' signature shares and no
//! fewer, refuses to overwrite, and names what is wrong with bad arguments.

#![allow(clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestResult, run, signer};
use ferry_daemon::account_keystore::{AccountKeystore, AccountKeystoreError};
use ferry_keystore::SealError;
use ferry_signer::ceremony::{account_keystore_path, keystore_path, manifest_path, member_dir};
use ferry_signer::{Keystore, KeystoreError, Manifest, MemberSecrets};
use ferry_types::release::bls;

const PASSPHRASE: &str = "correct horse battery staple";

/// Member `index`'s passphrase.
fn passphrase(index: u32) -> String {
    format!("{PASSPHRASE} {index}")
}

/// One passphrase file per member (`member-<i>.passphrase` in `dir`), in member order.
fn passphrase_files(dir: &Path, members: u32) -> Result<Vec<PathBuf>, std::io::Error> {
    (0..members)
        .map(|index| {
            let path = dir.join(format!("member-{index}.passphrase"));
            std::fs::write(&path, format!("{}\n", passphrase(index)))?;
            Ok(path)
        })
        .collect()
}

/// `--passphrase-file` once per file.
fn with_passphrases<'a>(command: &'a mut Command, files: &[PathBuf]) -> &'a mut Command {
    for file in files {
        command.arg("--passphrase-file").arg(file);
    }
    command
}

fn keygen_args(out: &Path, members: u32, threshold: u32) -> Vec<String> {
    [
        "devnet-keygen",
        "--members",
        &members.to_string(),
        "--threshold",
        &threshold.to_string(),
        "--kdf-log-n",
        "10",
        "--out",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([out.display().to_string()])
    .collect()
}

fn open_all(out: &Path, members: u32) -> Result<Vec<MemberSecrets>, KeystoreError> {
    (0..members).map(|index| Keystore::open(keystore_path(out, index), passphrase(index))).collect()
}

#[test]
fn keygen_writes_keystores_that_open_with_the_passphrase_and_a_manifest_whose_threshold_signs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrases = passphrase_files(dir.path(), 4)?;
    let (ok, text) = run(with_passphrases(signer().args(keygen_args(&out, 4, 3)), &passphrases))?;
    assert!(ok, "keygen failed: {text}");

    let manifest = Manifest::load(manifest_path(&out))?;
    assert_eq!((manifest.members.len(), manifest.threshold, manifest.epoch), (4, 3, 1));
    let members = open_all(&out, 4)?;
    for (index, member) in (0u32..).zip(&members) {
        let path = keystore_path(&out, index);
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
        assert!(
            matches!(
                Keystore::open(&path, "correct horse battery stapler"),
                Err(KeystoreError::Sealing(SealError::WrongPassphraseOrCorrupted))
            ),
            "member {index}'s keystore opened with a wrong passphrase"
        );
        // The keystore is the manifest's member `index`.
        let listed = &manifest.members[index as usize];
        assert_eq!(member.index(), index);
        assert_eq!(member.account(), listed.account);
        assert_eq!(hex::encode(member.bitcoin_public_key()), listed.bitcoin_public_key);
        assert_eq!(manifest.bitcoin.keys[index as usize], listed.bitcoin_public_key);
        assert_eq!(hex::encode(member.bls_public_key_share().to_bytes()), listed.bls_public_key_share);
        // No secret reaches the file in the clear.
        let file = std::fs::read_to_string(&path)?;
        let bitcoin_secret = hex::encode(member.bitcoin_secret_key().secret_bytes());
        assert!(!file.contains(&bitcoin_secret), "member {index}'s Bitcoin secret is in its keystore");
    }
    assert!(!std::fs::read_to_string(manifest_path(&out))?.contains(&hex::encode(&members[0].to_bytes()[..16])));

    // Any 3 of the 4 members' shares combine into a signature the manifest's key set accepts.
    let set = manifest.public_key_set()?;
    let message = b"ferry release: epoch 1, batch 1";
    let shares: BTreeMap<u64, _> = members
        .iter()
        .map(|member| (u64::from(member.index()), bls::sign_share(member.bls_secret_key_share(), message)))
        .collect();
    for (index, share) in &shares {
        assert!(bls::verify_share(&set, *index, share, message), "member {index}'s share does not verify");
    }
    for left_out in 0..4u64 {
        let three: Vec<_> = shares.iter().filter(|(index, _)| **index != left_out).map(|(i, s)| (*i, s)).collect();
        let signature = set.combine_signatures(three).map_err(|e| e.to_string())?;
        assert!(bls::verify_signature(&set.public_key(), &signature, message), "3 shares without member {left_out}");
    }
    // Two do not: threshold_crypto refuses to interpolate, and a signature forced from two
    // shares' worth of points (the third taken from another message) does not verify.
    let two: Vec<_> = shares.iter().take(2).map(|(i, s)| (*i, s)).collect();
    assert!(set.combine_signatures(two.clone()).is_err(), "two shares combined");
    let other = bls::sign_share(members[2].bls_secret_key_share(), b"another message");
    let forged = set.combine_signatures(two.into_iter().chain([(2, &other)])).map_err(|e| e.to_string())?;
    assert!(!bls::verify_signature(&set.public_key(), &forged, message), "two honest shares signed");
    Ok(())
}

#[test]
fn each_member_gets_a_directory_of_its_own_whose_keys_open_with_its_own_passphrase_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrases = passphrase_files(dir.path(), 3)?;
    let (ok, text) = run(with_passphrases(signer().args(keygen_args(&out, 3, 2)), &passphrases))?;
    assert!(ok, "keygen failed: {text}");
    let manifest = Manifest::load(manifest_path(&out))?;
    for index in 0..3u32 {
        let own = member_dir(&out, index);
        let mode = std::fs::metadata(&own)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} has mode {mode:o}", own.display());
        let mut files: Vec<String> =
            std::fs::read_dir(&own)?.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into()).collect();
        files.sort();
        assert_eq!(files, ["account.keystore.json", "federation.json", "keystore.json"], "in {}", own.display());
        assert_eq!(Manifest::load(manifest_path(&own))?, manifest);

        // Its own passphrase opens both of its keystores; every other member's opens neither.
        let member = Keystore::open(keystore_path(&out, index), passphrase(index))?;
        let account = AccountKeystore::open(account_keystore_path(&out, index), passphrase(index))?;
        assert_eq!(account.address(), member.account());
        assert_eq!(account.address(), manifest.members[index as usize].account);
        for other in (0..3u32).filter(|other| *other != index) {
            assert!(
                matches!(
                    Keystore::open(keystore_path(&out, index), passphrase(other)),
                    Err(KeystoreError::Sealing(SealError::WrongPassphraseOrCorrupted))
                ),
                "member {other}'s passphrase opened member {index}'s keystore"
            );
            assert!(
                matches!(
                    AccountKeystore::open(account_keystore_path(&out, index), passphrase(other)),
                    Err(AccountKeystoreError::Sealing(SealError::WrongPassphraseOrCorrupted))
                ),
                "member {other}'s passphrase opened member {index}'s account keystore"
            );
        }
        let sealed = std::fs::read_to_string(account_keystore_path(&out, index))?;
        assert!(!sealed.contains(&hex::encode(&member.to_bytes()[64..])), "member {index}'s account key in the clear");
    }
    Ok(())
}

#[test]
fn one_passphrase_for_several_members_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("never");
    let passphrases = passphrase_files(dir.path(), 4)?;
    // The one-passphrase form of earlier versions.
    let (ok, text) = run(signer().args(keygen_args(&out, 4, 3)).arg("--passphrase-file").arg(&passphrases[0]))?;
    assert!(!ok, "one passphrase sealed four members: {text}");
    assert!(text.contains("one passphrase file for 4 members is refused"), "{text}");
    assert!(text.contains("--passphrase-file once per member, in member order"), "{text}");
    let (ok, text) = run(signer().args(keygen_args(&out, 4, 3)).arg("--passphrase-stdin"))?;
    assert!(!ok && text.contains("--passphrase-stdin is refused"), "{text}");
    // Too few, and the same passphrase twice.
    let (ok, text) = run(with_passphrases(signer().args(keygen_args(&out, 4, 3)), &passphrases[..3]))?;
    assert!(!ok && text.contains("3 passphrase files for 4 members"), "{text}");
    let copy = dir.path().join("copy");
    std::fs::copy(&passphrases[1], &copy)?;
    let repeated = [passphrases[0].clone(), passphrases[1].clone(), passphrases[2].clone(), copy];
    let (ok, text) = run(with_passphrases(signer().args(keygen_args(&out, 4, 3)), &repeated))?;
    assert!(!ok && text.contains("members 1 and 3 have the same passphrase"), "{text}");
    assert!(!out.exists(), "a refused keygen created {}", out.display());
    Ok(())
}

#[test]
fn editing_a_public_field_of_a_keystore_makes_it_fail_to_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrases = passphrase_files(dir.path(), 3)?;
    let (ok, text) = run(with_passphrases(signer().args(keygen_args(&out, 3, 2)), &passphrases))?;
    assert!(ok, "keygen failed: {text}");
    let path = keystore_path(&out, 0);
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let member_1: serde_json::Value = serde_json::from_slice(&std::fs::read(keystore_path(&out, 1))?)?;

    // Each edit leaves a well-formed keystore naming other, valid keys.
    for field in ["member_index", "account", "bitcoin_public_key", "bls_public_key_share"] {
        let mut edited = original.clone();
        edited[field] = member_1[field].clone();
        std::fs::write(&path, serde_json::to_vec_pretty(&edited)?)?;
        let error = Keystore::open(&path, passphrase(0)).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("wrong passphrase or corrupted keystore"), "after editing {field}");
    }
    let mut edited = original.clone();
    edited["version"] = 2.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&edited)?)?;
    let error = Keystore::open(&path, passphrase(0)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.starts_with("unsupported keystore version 2"), "{error}");

    std::fs::write(&path, serde_json::to_vec_pretty(&original)?)?;
    Keystore::open(&path, passphrase(0))?;
    Ok(())
}

#[test]
fn keygen_refuses_to_overwrite_a_ceremony_unless_forced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrases = passphrase_files(dir.path(), 4)?;
    let keygen = || {
        let mut command = signer();
        with_passphrases(command.args(keygen_args(&out, 4, 3)), &passphrases);
        command
    };
    let (ok, text) = run(&mut keygen())?;
    assert!(ok, "keygen failed: {text}");
    let before = std::fs::read(manifest_path(&out))?;
    let keystore_before = std::fs::read(keystore_path(&out, 3))?;

    let (ok, text) = run(&mut keygen())?;
    assert!(!ok, "second keygen overwrote the first: {text}");
    assert!(text.contains("refusing to overwrite") && text.contains("--force"), "{text}");
    assert_eq!(std::fs::read(manifest_path(&out))?, before);
    assert_eq!(std::fs::read(keystore_path(&out, 3))?, keystore_before);

    // Only the manifest is in the way: still nothing is written.
    for index in 0..4 {
        std::fs::remove_dir_all(member_dir(&out, index))?;
    }
    let (ok, text) = run(&mut keygen())?;
    assert!(!ok && text.contains("federation.json"), "{text}");
    assert!(!keystore_path(&out, 0).exists(), "keystores written beside a refused manifest");

    let (ok, text) = run(keygen().arg("--force"))?;
    assert!(ok, "keygen --force failed: {text}");
    let replaced = Manifest::load(manifest_path(&out))?;
    assert_ne!(serde_json::to_vec_pretty(&replaced)?, before);
    open_all(&out, 4)?;
    for place in std::iter::once(out.clone()).chain((0..4).map(|index| member_dir(&out, index))) {
        let leftovers: Vec<_> = std::fs::read_dir(&place)?
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left behind in {}: {leftovers:?}", place.display());
    }
    Ok(())
}

#[test]
fn flags_from_the_environment_work() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("from-env");
    let passphrases = passphrase_files(dir.path(), 3)?;
    let mut command = signer();
    command
        .arg("devnet-keygen")
        .env("FERRY_SIGNER_MEMBERS", "3")
        .env("FERRY_SIGNER_THRESHOLD", "2")
        .env("FERRY_SIGNER_OUT", &out)
        .env("FERRY_SIGNER_KDF_LOG_N", "10")
        .env("FERRY_SIGNER_BITCOIN_NETWORK", "signet");
    let (ok, text) = run(with_passphrases(&mut command, &passphrases))?;
    assert!(ok, "keygen failed: {text}");
    assert_eq!(open_all(&out, 3)?.len(), 3);
    let manifest = Manifest::load(manifest_path(&out))?;
    assert_eq!(manifest.threshold, 2);
    assert_eq!(manifest.bitcoin.network, ferry_types::peg::BitcoinNetwork::Signet);
    Ok(())
}

#[test]
fn keystore_inspect_prints_the_public_fields_without_the_passphrase() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrases = passphrase_files(dir.path(), 2)?;
    let (ok, text) = run(with_passphrases(signer().arg("--json").args(keygen_args(&out, 2, 2)), &passphrases))?;
    assert!(ok, "keygen failed: {text}");
    let report: serde_json::Value = serde_json::from_str(&text)?;
    let manifest = Manifest::load(manifest_path(&out))?;
    assert_eq!(report["members"][1]["account"], manifest.members[1].account.to_string());
    assert_eq!(report["members"][1]["dir"], member_dir(&out, 1).display().to_string());
    assert_eq!(report["members"][1]["account_keystore"], account_keystore_path(&out, 1).display().to_string());

    let (ok, text) = run(signer().args(["keystore", "inspect", "--json"]).arg(keystore_path(&out, 1)))?;
    assert!(ok, "inspect failed: {text}");
    let shown: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(shown["member_index"], 1);
    assert_eq!(shown["account"], manifest.members[1].account.to_string());
    assert_eq!(shown["bitcoin_public_key"], manifest.members[1].bitcoin_public_key);
    assert_eq!(shown["bls_public_key_share"], manifest.members[1].bls_public_key_share);
    assert_eq!(shown["kdf"]["log_n"], 10);
    assert!(shown.get("ciphertext").is_none());

    let (ok, text) = run(signer().args(["keystore", "inspect"]).arg(keystore_path(&out, 0)))?;
    assert!(ok && text.contains(&manifest.members[0].account.to_string()), "{text}");
    let (ok, text) = run(signer().args(["keystore", "inspect"]).arg(manifest_path(&out)))?;
    assert!(!ok && text.contains("not a Ferry keystore"), "{text}");
    Ok(())
}

#[test]
fn bad_arguments_are_named_and_exit_non_zero_without_writing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("never");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n")?;
    let cases: Vec<(Vec<String>, u32, &str)> = vec![
        (keygen_args(&out, 4, 5), 4, "threshold 5 exceeds the 4 members"),
        (keygen_args(&out, 4, 2), 4, "threshold 2 of 4 members is not more than half"),
        (keygen_args(&out, 5, 2), 5, "use at least 3"),
        (keygen_args(&out, 4, 0), 4, "threshold 0"),
        (keygen_args(&out, 21, 15), 21, "at most 20"),
    ];
    for (args, members, expected) in cases {
        let passphrases = passphrase_files(dir.path(), members)?;
        let (ok, text) = run(with_passphrases(signer().args(&args), &passphrases))?;
        assert!(!ok, "{args:?} succeeded");
        assert!(text.contains(expected), "{args:?}: expected `{expected}` in: {text}");
    }
    let passphrases = passphrase_files(dir.path(), 4)?;
    let (ok, text) = run(signer().args(keygen_args(&out, 4, 3)))?;
    assert!(!ok && text.contains("no passphrase") && text.contains("--passphrase-file"), "{text}");
    let mut with_empty = passphrases.clone();
    with_empty[2] = empty;
    let (ok, text) = run(with_passphrases(signer().args(keygen_args(&out, 4, 3)), &with_empty))?;
    assert!(!ok && text.contains("the passphrase is empty"), "{text}");
    let mut with_missing = passphrases.clone();
    with_missing[3] = dir.path().join("missing");
    let (ok, text) = run(with_passphrases(signer().args(keygen_args(&out, 4, 3)), &with_missing))?;
    assert!(!ok && text.contains("cannot read the passphrase file"), "{text}");
    let (ok, text) =
        run(with_passphrases(signer().args(keygen_args(&out, 4, 3)).args(["--kdf-log-n", "9"]), &passphrases))?;
    assert!(!ok && text.contains("--kdf-log-n"), "{text}");
    let (ok, text) = run(with_passphrases(
        signer().args(keygen_args(&out, 4, 3)).args(["--bitcoin-network", "mainnet"]),
        &passphrases,
    ))?;
    assert!(!ok && text.contains("not a Bitcoin network"), "{text}");
    assert!(!out.exists(), "a refused keygen created {}", out.display());
    Ok(())
}
