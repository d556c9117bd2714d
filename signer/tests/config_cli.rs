//! `ferry-signer config validate`, `run` and `audit verify` before they touch a chain or a
//! database: a configuration is accepted only with a keystore that opens and belongs to the
//! manifest, a Bitcoin network that is the manifest's, and a database to record signatures in;
//! each refusal names the key or file at fault.

#![allow(clippy::expect_used)]

mod common;

use std::path::Path;

use common::{TestResult, run, signer};
use ferry_keystore::KdfParams;
use ferry_signer::ceremony::{keystore_path, manifest_path};
use ferry_signer::{Overwrite, keygen, write_ceremony};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const PASSPHRASE: &str = "config test passphrase";

/// A ceremony (seeded) written to `dir`, with the passphrase in `dir/passphrase`.
fn ceremony(dir: &Path, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let ceremony = keygen(4, 3, &mut ChaCha20Rng::seed_from_u64(seed))?;
    write_ceremony(dir, &ceremony, &[PASSPHRASE; 4], KdfParams::with_log_n(10)?, Overwrite::Refuse)?;
    std::fs::write(dir.join("passphrase"), format!("{PASSPHRASE}\n"))?;
    // The light client's trust root: only its presence is checked before `run`.
    std::fs::write(dir.join("genesis.json"), "{}")?;
    Ok(())
}

fn config(keys: &Path, member: u32, manifest: &Path, network: &str) -> String {
    format!(
        r#"
[chain]
rpc = "http://127.0.0.1:1"
genesis_file = "{genesis}"

[keys]
keystore = "{keystore}"
passphrase_file = "{passphrase}"
manifest = "{manifest}"

[ethereum]
chain_id = 31337
vault = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

[bitcoin]
network = "{network}"

[policy]
[policy.caps]
sat = "100000000"
"#,
        keystore = keystore_path(keys, member).display(),
        passphrase = keys.join("passphrase").display(),
        manifest = manifest.display(),
        genesis = keys.join("genesis.json").display(),
    )
}

#[test]
fn validate_opens_the_keystore_and_checks_it_against_the_manifest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("keys");
    ceremony(&keys, 1)?;
    let file = dir.path().join("signer.toml");
    std::fs::write(&file, config(&keys, 2, &manifest_path(&keys), "regtest"))?;
    let (ok, text) = run(signer().args(["config", "validate", "--config"]).arg(&file))?;
    assert!(ok && text.contains("configuration OK: ferry1") && text.contains("is member 2 of the epoch-1"), "{text}");
    assert!(text.contains("[policy.caps]"), "the effective settings are printed: {text}");
    let (ok, text) = run(signer().args(["--json", "config", "validate", "--config"]).arg(&file))?;
    let report: serde_json::Value = serde_json::from_str(&text)?;
    assert!(ok && report["member_index"] == 2, "{text}");

    // The manifest of another ceremony: this keystore is not its member 2, so it is a candidate
    // (it signs only for epochs a key generation it takes part in makes), and says why.
    let other = dir.path().join("other");
    ceremony(&other, 2)?;
    std::fs::write(&file, config(&keys, 2, &manifest_path(&other), "regtest"))?;
    let (ok, text) = run(signer().args(["config", "validate", "--config"]).arg(&file))?;
    assert!(ok && text.contains("a candidate") && text.contains("member 2 does not belong to this manifest"), "{text}");
    let (_, text) = run(signer().args(["--json", "config", "validate", "--config"]).arg(&file))?;
    let report: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(report["genesis_member"], false, "{text}");

    // Another Bitcoin network than the manifest's peg.
    std::fs::write(&file, config(&keys, 2, &manifest_path(&keys), "testnet"))?;
    let (ok, text) = run(signer().args(["config", "validate", "--config"]).arg(&file))?;
    assert!(!ok && text.contains("bitcoin.network") && text.contains("regtest"), "{text}");

    // A wrong passphrase.
    std::fs::write(&file, config(&keys, 2, &manifest_path(&keys), "regtest"))?;
    std::fs::write(keys.join("passphrase"), "not it\n")?;
    let (ok, text) = run(signer().args(["config", "validate", "--config"]).arg(&file))?;
    assert!(!ok && text.contains("keys.keystore") && text.contains("wrong passphrase"), "{text}");
    Ok(())
}

#[test]
fn run_and_audit_verify_name_what_is_missing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("keys");
    ceremony(&keys, 3)?;
    let file = dir.path().join("signer.toml");
    std::fs::write(&file, config(&keys, 0, &manifest_path(&keys), "regtest"))?;
    let (ok, text) = run(signer().args(["run", "--config"]).arg(&file))?;
    assert!(!ok && text.contains("no database"), "{text}");
    let (ok, text) = run(signer().args(["audit", "verify"]))?;
    assert!(!ok && text.contains("no configuration"), "{text}");
    std::fs::write(
        &file,
        config(&keys, 0, &manifest_path(&keys), "regtest").replace("[policy]", "[policy]\nwindow = \"0s\""),
    )?;
    let (ok, text) = run(signer().args(["run", "--config"]).arg(&file))?;
    assert!(!ok && text.contains("policy.window"), "{text}");
    Ok(())
}
