//! Where the external binaries are: CometBFT from the project's `.tools/bin` (installed by
//! `make setup`), `ferry-chain` from the cargo target directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Paths of the binaries a network needs.
#[derive(Clone, Debug)]
pub struct Tools {
    /// CometBFT v0.38.
    pub cometbft: PathBuf,
    /// The Ferry ABCI application.
    pub ferry_chain: PathBuf,
}

/// The repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or_else(|| manifest.to_path_buf())
}

impl Tools {
    /// Finds the binaries: `$FERRY_COMETBFT` or `.tools/bin/cometbft`; `$FERRY_CHAIN_BIN`, or
    /// `ferry-chain` next to the running executable, or in `target/{release,debug}`.
    ///
    /// # Errors
    /// When a binary is missing, with the command that provides it.
    pub fn locate() -> anyhow::Result<Tools> {
        let root = repo_root();
        let cometbft =
            std::env::var_os("FERRY_COMETBFT").map(PathBuf::from).unwrap_or_else(|| root.join(".tools/bin/cometbft"));
        if !cometbft.exists() {
            bail!("CometBFT not found at {}: run `make setup`", cometbft.display());
        }
        let ferry_chain = match std::env::var_os("FERRY_CHAIN_BIN") {
            Some(path) => PathBuf::from(path),
            None => Self::find_ferry_chain(&root)
                .context("ferry-chain binary not found: run `cargo build --bin ferry-chain` (or `make build`)")?,
        };
        Ok(Tools { cometbft, ferry_chain })
    }

    fn find_ferry_chain(root: &Path) -> Option<PathBuf> {
        let beside_exe = std::env::current_exe().ok().and_then(|exe| {
            // Test binaries live in target/<profile>/deps; binaries in target/<profile>.
            let dir = exe.parent()?;
            let dir = if dir.ends_with("deps") { dir.parent()? } else { dir };
            Some(dir.join("ferry-chain"))
        });
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        [beside_exe, Some(target.join("debug/ferry-chain")), Some(target.join("release/ferry-chain"))]
            .into_iter()
            .flatten()
            .find(|path| path.exists())
    }
}
