//! The `ferry` binary as a user runs it (`target/debug/ferry`, `cargo build --bins`, or
//! `FERRY_CLI_BIN`), for the tests that drive the CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ferry_devnet::system::System;
use serde_json::Value;

use super::TestResult;

/// The user's shell: the binary with the endpoints `.devnet/env` would hold.
pub struct User {
    /// The binary.
    pub binary: PathBuf,
    /// Its environment (nothing else is inherited).
    pub env: Vec<(&'static str, String)>,
}

impl User {
    /// A user of `system` whose home (keyring, passphrase file) is `home`, expecting
    /// `confirmations` on the parent chains.
    ///
    /// # Errors
    /// When the passphrase file cannot be written.
    pub fn of_system(system: &System, home: &Path, confirmations: u32) -> TestResult<User> {
        let btcd = &system.parents.btcd;
        Ok(User {
            binary: binary()?,
            env: vec![
                ("HOME", home.display().to_string()),
                ("FERRY_NODE", system.chain_rpc(0)),
                ("FERRY_BITCOIN_RPC", btcd.rpc_url()),
                ("FERRY_BITCOIN_RPC_PASSWORD_FILE", btcd.rpc_password_file().display().to_string()),
                ("FERRY_ETHEREUM_RPC", system.parents.anvil.rpc_url().to_owned()),
                ("FERRY_VAULT", system.parents.vault().to_string()),
                ("FERRY_CONFIRMATIONS", confirmations.to_string()),
                ("FERRY_PASSPHRASE_FILE", write(home, "passphrase", "a long test passphrase\n")?),
            ],
        })
    }

    /// The binary with `args`, in the user's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command.env_clear().envs(self.env.iter().map(|(k, v)| (*k, v.as_str()))).args(args);
        command
    }

    /// Runs it with `args` and no input.
    pub fn run(&self, args: &[&str]) -> TestResult<Output> {
        Ok(self.command(args).stdin(Stdio::null()).output()?)
    }

    /// Runs `ferry --json …`, expecting success, and returns its JSON document.
    pub fn json(&self, args: &[&str]) -> TestResult<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all)?;
        if !output.status.success() {
            return Err(format!("ferry {args:?} failed: {}", String::from_utf8_lossy(&output.stderr)).into());
        }
        Ok(serde_json::from_slice(&output.stdout)?)
    }

    /// `balance` of `who` in `denom`'s base units.
    pub fn balance(&self, who: &str, denom: &str) -> TestResult<u128> {
        let view = self.json(&["balance", who])?;
        let balances = view["balances"].as_array().ok_or("no balances")?;
        let found = balances.iter().find(|c| c["denom"] == denom).and_then(|c| c["amount"].as_str());
        Ok(found.map(str::parse).transpose()?.unwrap_or(0))
    }
}

/// The `ferry` binary.
pub fn binary() -> TestResult<PathBuf> {
    Ok(ferry_devnet::process::binary_path("ferry", "FERRY_CLI_BIN")?)
}

/// Writes `text` to `dir/name`; returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> TestResult<String> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.to_str().ok_or("path")?.to_owned())
}
