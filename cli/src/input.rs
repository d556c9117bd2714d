//! Secrets and confirmations from the user: a passphrase file, a prompt without echo on a
//! terminal, or lines of stdin (passphrase first, then an imported secret) — never argv.
//! Everything read is held in zeroizing buffers.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::CliError;

/// Where secrets come from for one run.
#[derive(Debug)]
pub struct SecretSource {
    passphrase_file: Option<PathBuf>,
}

fn strip_newline(mut text: Zeroizing<String>) -> Zeroizing<String> {
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    text
}

/// One line of stdin, without its newline.
fn stdin_line(what: &str) -> Result<Zeroizing<String>, CliError> {
    let mut line = Zeroizing::new(String::with_capacity(256));
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::bad_input(format!("cannot read the {what} from stdin: {e}")))?;
    if read == 0 {
        return Err(CliError::bad_input(format!("stdin ended before the {what}"))
            .with_hint("give it on stdin (one line each: passphrase first), or use --passphrase-file"));
    }
    Ok(strip_newline(line))
}

fn prompt_hidden(prompt: &str) -> Result<Zeroizing<String>, CliError> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| CliError::bad_input(format!("cannot read from the terminal: {e}")))
}

impl SecretSource {
    /// Secrets from `passphrase_file` when given, else a prompt or stdin.
    pub fn new(passphrase_file: Option<&Path>) -> Self {
        SecretSource { passphrase_file: passphrase_file.map(Path::to_path_buf) }
    }

    /// The passphrase of key `name`; `new` asks twice on a terminal.
    ///
    /// # Errors
    /// An unreadable or empty passphrase, or two different entries.
    pub fn passphrase(&self, name: &str, new: bool) -> Result<Zeroizing<Vec<u8>>, CliError> {
        if let Some(path) = &self.passphrase_file {
            return ferry_keystore::passphrase::read_file(path)
                .map_err(|e| CliError::bad_input(e.to_string()).with_hint("check --passphrase-file"));
        }
        let text = if std::io::stdin().is_terminal() {
            let first = prompt_hidden(&format!("Passphrase for key `{name}`: "))?;
            if new {
                let again = prompt_hidden("Repeat it: ")?;
                if *again != *first {
                    return Err(CliError::bad_input("the two passphrases differ"));
                }
            }
            first
        } else {
            stdin_line("passphrase")?
        };
        if text.is_empty() {
            return Err(CliError::bad_input(format!("the passphrase of key `{name}` is empty")));
        }
        Ok(Zeroizing::new(text.as_bytes().to_vec()))
    }

    /// A secret key to import: 64 hex digits (optionally `0x`) from `file`, else a prompt or the
    /// next line of stdin.
    ///
    /// # Errors
    /// Unreadable input, or not 32 bytes of hex (the text is never echoed back).
    pub fn import_secret(&self, file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, CliError> {
        let text = match file {
            Some(path) => Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| CliError::bad_input(format!("cannot read the secret file {}: {e}", path.display())))?,
            ),
            None if std::io::stdin().is_terminal() => prompt_hidden("Secret key (64 hex digits): ")?,
            None => stdin_line("secret key")?,
        };
        let trimmed = text.trim();
        let hex_text = trimmed.strip_prefix("0x").unwrap_or(trimmed);
        let bytes = Zeroizing::new(hex::decode(hex_text).unwrap_or_default());
        if bytes.len() != 32 {
            return Err(CliError::bad_input("the secret key is not 64 hex digits (32 bytes)"));
        }
        Ok(bytes)
    }
}

/// Asks `question` on a terminal and returns whether the answer was yes. Without a terminal,
/// refuses: the caller must pass `--yes`.
///
/// # Errors
/// Bad input when there is no terminal to ask on.
pub fn confirm(question: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::bad_input("confirmation needed but stdin is not a terminal")
            .with_hint("pass --yes (or FERRY_YES=true) to confirm without asking"));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::bad_input(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
