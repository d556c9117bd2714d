//! `ferry-signer devnet-keygen` and `keystore inspect` end to end: the binary writes keystores that open
//! only with the passphrase and only while unaltered, a manifest that validates and whose BLS key
//! set accepts any threshold of members' signature shares and no fewer, refuses to overwrite, and
//! names what is wrong with bad arguments.

#![allow(clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{TestResult, run, signer};
use ferry_keystore::SealError;
use ferry_signer::ceremony::{keystore_path, manifest_path};
use ferry_signer::{Keystore, KeystoreError, Manifest, MemberSecrets};
use ferry_types::release::bls;

const PASSPHRASE: &str = "correct horse battery staple";

fn passphrase_file(dir: &Path, passphrase: &str) -> Result<PathBuf, std::io::Error> {
    let path = dir.join("passphrase");
    std::fs::write(&path, format!("{passphrase}\n"))?;
    Ok(path)
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

fn open_all(out: &Path, members: u32, passphrase: &str) -> Result<Vec<MemberSecrets>, KeystoreError> {
    (0..members).map(|index| Keystore::open(keystore_path(out, index), passphrase)).collect()
}

#[test]
fn keygen_writes_keystores_that_open_with_the_passphrase_and_a_manifest_whose_threshold_signs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrase = passphrase_file(dir.path(), PASSPHRASE)?;
    let (ok, text) = run(signer().args(keygen_args(&out, 4, 3)).arg("--passphrase-file").arg(&passphrase))?;
    assert!(ok, "keygen failed: {text}");

    let manifest = Manifest::load(manifest_path(&out))?;
    assert_eq!((manifest.members.len(), manifest.threshold, manifest.epoch), (4, 3, 1));
    let members = open_all(&out, 4, PASSPHRASE)?;
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
fn editing_a_public_field_of_a_keystore_makes_it_fail_to_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrase = passphrase_file(dir.path(), PASSPHRASE)?;
    let (ok, text) = run(signer().args(keygen_args(&out, 3, 2)).arg("--passphrase-file").arg(&passphrase))?;
    assert!(ok, "keygen failed: {text}");
    let path = keystore_path(&out, 0);
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let member_1: serde_json::Value = serde_json::from_slice(&std::fs::read(keystore_path(&out, 1))?)?;

    // Each edit leaves a well-formed keystore naming other, valid keys.
    for field in ["member_index", "account", "bitcoin_public_key", "bls_public_key_share"] {
        let mut edited = original.clone();
        edited[field] = member_1[field].clone();
        std::fs::write(&path, serde_json::to_vec_pretty(&edited)?)?;
        let error = Keystore::open(&path, PASSPHRASE).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("wrong passphrase or corrupted keystore"), "after editing {field}");
    }
    let mut edited = original.clone();
    edited["version"] = 2.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&edited)?)?;
    let error = Keystore::open(&path, PASSPHRASE).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.starts_with("unsupported keystore version 2"), "{error}");

    std::fs::write(&path, serde_json::to_vec_pretty(&original)?)?;
    Keystore::open(&path, PASSPHRASE)?;
    Ok(())
}

#[test]
fn keygen_refuses_to_overwrite_a_ceremony_unless_forced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrase = passphrase_file(dir.path(), PASSPHRASE)?;
    let keygen = || {
        let mut command = signer();
        command.args(keygen_args(&out, 4, 3)).arg("--passphrase-file").arg(&passphrase);
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
        std::fs::remove_file(keystore_path(&out, index))?;
    }
    let (ok, text) = run(&mut keygen())?;
    assert!(!ok && text.contains("federation.json"), "{text}");
    assert!(!keystore_path(&out, 0).exists(), "keystores written beside a refused manifest");

    let (ok, text) = run(keygen().arg("--force"))?;
    assert!(ok, "keygen --force failed: {text}");
    let replaced = Manifest::load(manifest_path(&out))?;
    assert_ne!(serde_json::to_vec_pretty(&replaced)?, before);
    open_all(&out, 4, PASSPHRASE)?;
    let leftovers: Vec<_> = std::fs::read_dir(&out)?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    Ok(())
}

#[test]
fn passphrase_from_stdin_and_flags_from_the_environment_work() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("from-env");
    let mut child = signer()
        .arg("devnet-keygen")
        .env("FERRY_SIGNER_MEMBERS", "3")
        .env("FERRY_SIGNER_THRESHOLD", "2")
        .env("FERRY_SIGNER_OUT", &out)
        .env("FERRY_SIGNER_KDF_LOG_N", "10")
        .env("FERRY_SIGNER_PASSPHRASE_STDIN", "true")
        .env("FERRY_SIGNER_BITCOIN_NETWORK", "signet")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().ok_or("no stdin")?.write_all(b"from stdin \r\n")?;
    let output = child.wait_with_output()?;
    assert!(output.status.success(), "keygen failed: {}", String::from_utf8_lossy(&output.stderr));

    // One trailing newline is not part of the passphrase; the space before it is.
    let members = open_all(&out, 3, "from stdin ")?;
    assert_eq!(members.len(), 3);
    assert!(matches!(
        Keystore::open(keystore_path(&out, 0), "from stdin"),
        Err(KeystoreError::Sealing(SealError::WrongPassphraseOrCorrupted))
    ));
    let manifest = Manifest::load(manifest_path(&out))?;
    assert_eq!(manifest.threshold, 2);
    assert_eq!(manifest.bitcoin.network, ferry_types::peg::BitcoinNetwork::Signet);
    Ok(())
}

#[test]
fn keystore_inspect_prints_the_public_fields_without_the_passphrase() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ceremony");
    let passphrase = passphrase_file(dir.path(), PASSPHRASE)?;
    let (ok, text) =
        run(signer().arg("--json").args(keygen_args(&out, 2, 2)).arg("--passphrase-file").arg(&passphrase))?;
    assert!(ok, "keygen failed: {text}");
    let report: serde_json::Value = serde_json::from_str(&text)?;
    let manifest = Manifest::load(manifest_path(&out))?;
    assert_eq!(report["members"][1]["account"], manifest.members[1].account.to_string());

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
    let passphrase = passphrase_file(dir.path(), PASSPHRASE)?;
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n")?;
    let cases: Vec<(Vec<String>, &str)> = vec![
        (keygen_args(&out, 4, 5), "threshold 5 exceeds the 4 members"),
        (keygen_args(&out, 4, 2), "threshold 2 of 4 members is not more than half"),
        (keygen_args(&out, 5, 2), "use at least 3"),
        (keygen_args(&out, 4, 0), "threshold 0"),
        (keygen_args(&out, 21, 15), "at most 20"),
    ];
    for (args, expected) in cases {
        let (ok, text) = run(signer().args(&args).arg("--passphrase-file").arg(&passphrase))?;
        assert!(!ok, "{args:?} succeeded");
        assert!(text.contains(expected), "{args:?}: expected `{expected}` in: {text}");
    }
    let (ok, text) = run(signer().args(keygen_args(&out, 4, 3)))?;
    assert!(!ok && text.contains("no passphrase") && text.contains("--passphrase-file"), "{text}");
    let (ok, text) = run(signer().args(keygen_args(&out, 4, 3)).arg("--passphrase-file").arg(&empty))?;
    assert!(!ok && text.contains("the passphrase is empty"), "{text}");
    let (ok, text) =
        run(signer().args(keygen_args(&out, 4, 3)).arg("--passphrase-file").arg(dir.path().join("missing")))?;
    assert!(!ok && text.contains("cannot read the passphrase file"), "{text}");
    let (ok, text) = run(signer()
        .args(keygen_args(&out, 4, 3))
        .arg("--passphrase-file")
        .arg(&passphrase)
        .arg("--passphrase-stdin"))?;
    assert!(!ok && text.contains("cannot be used with"), "{text}");
    let (ok, text) = run(signer().args(keygen_args(&out, 4, 3)).args(["--kdf-log-n", "9", "--passphrase-stdin"]))?;
    assert!(!ok && text.contains("--kdf-log-n"), "{text}");
    let (ok, text) =
        run(signer().args(keygen_args(&out, 4, 3)).args(["--bitcoin-network", "mainnet", "--passphrase-stdin"]))?;
    assert!(!ok && text.contains("not a Bitcoin network"), "{text}");
    assert!(!out.exists(), "a refused keygen created {}", out.display());
    Ok(())
}
