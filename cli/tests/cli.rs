//! The `ferry` binary as a user meets it, without a network: bad input, an unreachable node,
//! the keyring round trip, and `--json` output that parses. Each case checks the documented
//! message and exit code (docs/cli.md).

#![allow(clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Runs `ferry` with `args` and a clean environment (no FERRY_* from the caller's shell).
fn ferry(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .env_clear()
        .env("HOME", dir)
        .env("FERRY_KEYRING", dir.join("keyring.json"))
        .args(args)
        .output()
        .expect("ferry runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON document ({e}): {}", String::from_utf8_lossy(&output.stdout))
    })
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn an_unknown_unit_is_bad_input_naming_the_amount_and_listing_units() -> TestResult {
    let dir = tempfile::tempdir()?;
    let output = ferry(dir.path(), &["withdraw", "btc", "5doge", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("amount `5doge`: unknown unit `doge`; units: btc, sat"), "{}", stderr(&output));
    let output = ferry(dir.path(), &["--json", "send", "ferry1x", "0.5"]);
    assert_eq!(output.status.code(), Some(2));
    let error = json(&output);
    assert_eq!(error["exit_code"], 2);
    assert_eq!(error["error"]["kind"], "bad_input");
    Ok(())
}

#[test]
fn a_bitcoin_address_of_another_network_is_bad_input() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A mainnet address while working on regtest (the default network).
    let output = ferry(dir.path(), &["withdraw", "btc", "0.01btc", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4` is for bitcoin"), "{message}");
    assert!(message.contains("regtest"), "{message}");
    // An Ethereum destination with a broken checksum is named too.
    let output = ferry(dir.path(), &["withdraw", "eth", "1eth", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("EIP-55 checksum mismatch"), "{}", stderr(&output));
    Ok(())
}

#[test]
fn an_unreachable_node_exits_3_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = format!("http://127.0.0.1:{}", closed_port());
    let address = ferry_types::Address::from_bytes([7; 20]).to_string();
    let output = ferry(dir.path(), &["--node", &node, "balance", &address]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains(&node), "{}", stderr(&output));
    assert!(stderr(&output).contains("hint: is a Ferry node running"), "{}", stderr(&output));
    let output = ferry(dir.path(), &["--json", "--node", &node, "federation"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(json(&output)["error"]["kind"], "unreachable");
    Ok(())
}

#[test]
fn keys_add_import_list_show_delete_round_trip_with_a_passphrase_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let passphrase = dir.path().join("pass");
    std::fs::write(&passphrase, "correct horse\n")?;
    let pass = passphrase.to_str().ok_or("path")?;
    let added = ferry(dir.path(), &["--json", "--passphrase-file", pass, "keys", "add", "alice"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let alice = json(&added);
    assert!(alice["account"].as_str().is_some_and(|a| a.starts_with("ferry1")), "{alice}");
    assert!(alice["bitcoin_address"].as_str().is_some_and(|a| a.starts_with("bcrt1q")), "{alice}");

    // Anvil's dev key 0 has a well-known Ethereum address.
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n")?;
    let secret = secret.to_str().ok_or("path")?;
    let imported =
        ferry(dir.path(), &["--json", "--passphrase-file", pass, "keys", "import", "dev", "--secret-file", secret]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert_eq!(json(&imported)["ethereum_address"], "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    let again = ferry(dir.path(), &["--passphrase-file", pass, "keys", "import", "dev", "--secret-file", secret]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("a key named `dev` already exists"), "{}", stderr(&again));

    let list = json(&ferry(dir.path(), &["--json", "keys", "list"]));
    let names: Vec<&str> = list["keys"].as_array().ok_or("keys")?.iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(names, vec!["alice", "dev"]);
    let shown = json(&ferry(dir.path(), &["--json", "keys", "show", "alice"]));
    assert_eq!(shown, alice);
    let testnet = json(&ferry(dir.path(), &["--json", "--bitcoin-network", "testnet", "keys", "show", "alice"]));
    assert!(testnet["bitcoin_address"].as_str().is_some_and(|a| a.starts_with("tb1q")), "{testnet}");

    // The secret never appears in the file; the passphrase opens it (stdin works as well as a
    // file), a wrong one is refused naming the key.
    let file = std::fs::read_to_string(dir.path().join("keyring.json"))?;
    assert!(!file.contains("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"));
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "wrong")?;
    let output = ferry(
        dir.path(),
        &["--from", "alice", "--passphrase-file", wrong.to_str().ok_or("path")?, "send", "dev", "1sat"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("key `alice`: wrong passphrase"), "{}", stderr(&output));

    let deleted = ferry(dir.path(), &["--json", "keys", "delete", "alice", "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    let list = json(&ferry(dir.path(), &["--json", "keys", "list"]));
    assert_eq!(list["keys"].as_array().map(Vec::len), Some(1));
    let missing = ferry(dir.path(), &["keys", "show", "alice"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no key named `alice`"), "{}", stderr(&missing));
    Ok(())
}

#[test]
fn deleting_without_a_terminal_needs_yes_and_completions_print() -> TestResult {
    let dir = tempfile::tempdir()?;
    let passphrase = dir.path().join("pass");
    std::fs::write(&passphrase, "pw")?;
    let added = ferry(dir.path(), &["--passphrase-file", passphrase.to_str().ok_or("path")?, "keys", "add", "bob"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let output = ferry(dir.path(), &["keys", "delete", "bob"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("pass --yes"), "{}", stderr(&output));
    let completions = ferry(dir.path(), &["completions", "bash"]);
    assert!(completions.status.success());
    assert!(String::from_utf8_lossy(&completions.stdout).contains("withdraw"));
    Ok(())
}
