//! Shared pieces of the `ferry-signer` binary tests. (Each test binary uses some of them.)
#![allow(dead_code)]

use std::process::{Command, Output};

/// Boxed error for tests.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The `ferry-signer` binary, with no `FERRY_SIGNER_*` variable from the caller's environment
/// (it must not supply flags behind the test's back).
pub fn signer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry-signer"));
    for (name, _) in std::env::vars() {
        if name.starts_with("FERRY_SIGNER_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs the binary; returns its exit status and stdout + stderr.
pub fn run(command: &mut Command) -> Result<(bool, String), Box<dyn std::error::Error>> {
    let Output { status, stdout, stderr } = command.output()?;
    Ok((status.success(), format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr))))
}
