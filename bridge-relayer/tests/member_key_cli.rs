//! `ferry-relayer` and its member key, through the real binary: a plaintext key file — the old
//! `chain.member_key_file`, or 64 hex digits where the keystore should be — stops it before it
//! touches anything, saying how to seal the key; `keystore seal` seals one; a sealed keystore
//! opens with its passphrase file only, and with it `config validate` passes and `run` gets past
//! the key to fail later, on the (absent) database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A valid secp256k1 secret, as a relayer's plaintext key file held it.
const HEX_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

/// The binary, with no `FERRY_RELAYER_*` variable from the caller's environment.
fn relayer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry-relayer"));
    for (name, _) in std::env::vars() {
        if name.starts_with("FERRY_RELAYER_") {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> Result<(bool, String), Box<dyn std::error::Error>> {
    let Output { status, stdout, stderr } = command.output()?;
    Ok((status.success(), format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr))))
}

/// A member relayer's configuration watching Bitcoin, with `key_lines` in `[chain]`.
fn config(dir: &Path, key_lines: &str) -> Result<PathBuf, std::io::Error> {
    let password = dir.join("btc.pass");
    std::fs::write(&password, "x\n")?;
    // Only checked to exist here: nothing reads the chain before the key is opened.
    let genesis = dir.join("genesis.json");
    std::fs::write(&genesis, "{}")?;
    let path = dir.join("relayer.toml");
    std::fs::write(
        &path,
        format!(
            "[chain]\nrpc = \"http://127.0.0.1:1\"\ngenesis_file = \"{}\"\n{key_lines}\n\n[bitcoin]\nrpc = \"http://127.0.0.1:1\"\n\
             rpc_user = \"ferry\"\nrpc_password_file = \"{}\"\nconfirmations = {{ default = 1 }}\n\n[database]\n",
            genesis.display(),
            password.display()
        ),
    )?;
    Ok(path)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, std::io::Error> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

#[test]
fn a_plaintext_member_key_file_is_refused_with_how_to_seal_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = write(dir.path(), "member.key", &format!("{HEX_KEY}\n"))?;
    let passphrase = write(dir.path(), "keystore.pass", "relayer passphrase\n")?;

    // The old form of the configuration.
    let old = config(dir.path(), &format!("member_key_file = \"{}\"", key.display()))?;
    for command in [&["config", "validate"][..], &["run"][..]] {
        let (ok, text) = run(relayer()
            .arg("--config")
            .arg(&old)
            .args(command)
            .env("FERRY_RELAYER_DATABASE_URL", "postgres://127.0.0.1:1/none"))?;
        assert!(!ok, "started with a plaintext key: {text}");
        assert!(text.contains("plaintext member keys are refused"), "{command:?}: {text}");
        assert!(
            text.contains("ferry-relayer keystore seal --key-file") && text.contains(&key.display().to_string()),
            "{text}"
        );
        assert!(text.contains("chain.member_keystore"), "{text}");
        assert!(!text.contains(HEX_KEY), "the key was printed: {text}");
    }

    // The new form, pointed at the plaintext file.
    let hex_in_keystore = config(
        dir.path(),
        &format!("member_keystore = \"{}\"\npassphrase_file = \"{}\"", key.display(), passphrase.display()),
    )?;
    for command in [&["config", "validate"][..], &["run"][..]] {
        let (ok, text) = run(relayer().arg("--config").arg(&hex_in_keystore).args(command))?;
        assert!(!ok, "started with a plaintext key: {text}");
        assert!(text.contains("holds a plaintext key") && text.contains("ferry-relayer keystore seal"), "{text}");
        assert!(!text.contains(HEX_KEY), "the key was printed: {text}");
    }
    Ok(())
}

#[test]
fn a_sealed_member_key_opens_with_its_passphrase_and_the_relayer_starts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = write(dir.path(), "member.key", &format!("{HEX_KEY}\n"))?;
    let passphrase = write(dir.path(), "keystore.pass", "relayer passphrase\n")?;
    let keystore = dir.path().join("account.keystore.json");
    let seal = |out: &Path| {
        run(relayer()
            .args(["keystore", "seal", "--kdf-log-n", "10", "--key-file"])
            .arg(&key)
            .arg("--passphrase-file")
            .arg(&passphrase)
            .arg("--out")
            .arg(out))
    };
    let (ok, text) = seal(&keystore)?;
    assert!(ok && text.contains("chain.member_keystore"), "seal failed: {text}");
    let sealed = std::fs::read_to_string(&keystore)?;
    assert!(!sealed.contains(HEX_KEY), "the key in the clear: {sealed}");
    let (ok, text) = seal(&keystore)?;
    assert!(!ok && text.contains("never replaced"), "an existing keystore was replaced: {text}");

    let sealed_config = config(
        dir.path(),
        &format!("member_keystore = \"{}\"\npassphrase_file = \"{}\"", keystore.display(), passphrase.display()),
    )?;
    let (ok, text) = run(relayer().arg("--config").arg(&sealed_config).args(["config", "validate"]))?;
    assert!(ok, "validate failed: {text}");
    let account = ferry_types::AccountKey::from_secret_bytes(&hex::decode(HEX_KEY)?)?.address();
    assert!(text.contains(&format!("member key opened: account {account}")), "{text}");

    // `run` opens the key, then fails on the database nobody serves — a different, named reason.
    let (ok, text) = run(relayer()
        .arg("--config")
        .arg(&sealed_config)
        .arg("run")
        .env("FERRY_RELAYER_DATABASE_URL", "postgres://ferry@127.0.0.1:1/none"))?;
    assert!(!ok, "ran without a database: {text}");
    assert!(text.contains("127.0.0.1:1") && !text.contains("keystore") && !text.contains("passphrase"), "{text}");

    // Another passphrase does not open it.
    let wrong = write(dir.path(), "wrong.pass", "another passphrase\n")?;
    let wrong_config = config(
        dir.path(),
        &format!("member_keystore = \"{}\"\npassphrase_file = \"{}\"", keystore.display(), wrong.display()),
    )?;
    let (ok, text) = run(relayer().arg("--config").arg(&wrong_config).args(["config", "validate"]))?;
    assert!(!ok && text.contains("chain.member_keystore") && text.contains("wrong passphrase"), "{text}");
    Ok(())
}
