//! The committed contract artifacts (`contracts/out/`) are exactly what the pinned solcjs
//! produces from the sources today.

use std::process::Command;

#[test]
fn committed_contract_artifacts_match_a_fresh_compile() -> Result<(), Box<dyn std::error::Error>> {
    let root = ferry_devnet::tools::repo_root();
    let output =
        Command::new("node").arg(root.join("contracts/build.js")).arg("--check").current_dir(&root).output()?;
    assert!(
        output.status.success(),
        "contracts/out is stale; run `make contracts`:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
