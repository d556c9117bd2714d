//! Passphrases read from a file or stdin — never from argv or a configuration file — into
//! zeroizing buffers, without one trailing newline (`\n` or `\r\n`).

use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why a passphrase could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    /// The file could not be read.
    #[error("cannot read the passphrase file {path}: {error}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// Stdin could not be read.
    #[error("cannot read the passphrase from stdin: {0}")]
    Stdin(std::io::Error),
    /// Nothing but (at most) a newline was read.
    #[error("the passphrase is empty (read from {0})")]
    Empty(String),
}

/// Reads the passphrase in `path`.
///
/// # Errors
/// An unreadable or empty file.
pub fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, PassphraseError> {
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|error| PassphraseError::File { path: path.to_owned(), error })?);
    finish(bytes, &path.display().to_string())
}

/// Reads the passphrase from stdin, to its end.
///
/// # Errors
/// A read error or an empty passphrase.
pub fn read_stdin() -> Result<Zeroizing<Vec<u8>>, PassphraseError> {
    // Reserved up front so that reading does not reallocate and leave copies behind.
    let mut buffer = Zeroizing::new(Vec::with_capacity(4096));
    std::io::stdin().read_to_end(&mut buffer).map_err(PassphraseError::Stdin)?;
    finish(buffer, "stdin")
}

fn finish(mut secret: Zeroizing<Vec<u8>>, source: &str) -> Result<Zeroizing<Vec<u8>>, PassphraseError> {
    if secret.ends_with(b"\n") {
        secret.pop();
        if secret.ends_with(b"\r") {
            secret.pop();
        }
    }
    if secret.is_empty() {
        return Err(PassphraseError::Empty(source.to_owned()));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_dropped_and_empty_secrets_refused() {
        let read = |bytes: &[u8]| finish(Zeroizing::new(bytes.to_vec()), "test").map(|s| s.to_vec());
        assert_eq!(read(b"pass\n").ok(), Some(b"pass".to_vec()));
        assert_eq!(read(b"pass\r\n").ok(), Some(b"pass".to_vec()));
        assert_eq!(read(b"pass\n\n").ok(), Some(b"pass\n".to_vec()));
        assert!(matches!(read(b"\n"), Err(PassphraseError::Empty(_))));
    }
}
