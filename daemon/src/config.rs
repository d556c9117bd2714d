//! Reading a daemon's configuration: a TOML file parsed into the daemon's own schema, the checks
//! every schema needs (files that must exist, http(s) URLs), and secrets read from files.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration was refused; every variant names the file or the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The TOML is malformed or has unknown or missing keys.
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's complaint, with line and key.
        reason: String,
    },
    /// A value is invalid.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// [`ConfigError::Invalid`] for `key`.
pub fn invalid(key: &'static str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.to_string() }
}

/// A daemon's configuration schema, read from a TOML file. Implement it (no methods needed) for
/// the schema's root; unknown keys are refused when the schema says `deny_unknown_fields`.
pub trait ConfigFile: DeserializeOwned {
    /// Parses TOML text read from `path` (named in errors).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the line and key.
    fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), reason: e.to_string() })
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Parse`] when it cannot be
    /// parsed.
    fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::parse(&text, path)
    }
}

/// Checks that `url` (the value of `key`) is an http(s) URL.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `key` and the URL.
pub fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(key, format!("`{url}` is not an http(s) URL")))
    }
}

/// Checks that the file `key` names exists.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `key` and the path.
pub fn check_file(key: &'static str, path: &Path) -> Result<(), ConfigError> {
    if path.is_file() { Ok(()) } else { Err(invalid(key, format!("file {} does not exist", path.display()))) }
}

/// Reads a one-line secret (a database URL, a password, a key) from the file `key` names, without
/// its trailing newline.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `key` when the file cannot be read.
pub fn read_secret(key: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Schema {
        #[allow(dead_code)]
        rpc: String,
    }

    impl ConfigFile for Schema {}

    #[test]
    fn errors_name_the_file_or_the_key() {
        let parse = Schema::parse("rpk = 1", Path::new("x.toml")).err().map(|e| e.to_string());
        assert!(parse.unwrap_or_default().starts_with("config file x.toml: "));
        let read = Schema::load(Path::new("/nonexistent/x.toml")).err().map(|e| e.to_string());
        assert!(read.unwrap_or_default().starts_with("cannot read config file /nonexistent/x.toml: "));
        let url = check_url("chain.rpc", "127.0.0.1:26657").err().map(|e| e.to_string());
        assert_eq!(url.as_deref(), Some("`chain.rpc`: `127.0.0.1:26657` is not an http(s) URL"));
        let file = check_file("keys.keystore", Path::new("/nonexistent/k")).err().map(|e| e.to_string());
        assert_eq!(file.as_deref(), Some("`keys.keystore`: file /nonexistent/k does not exist"));
        assert!(read_secret("database.url_file", Path::new("/nonexistent/url")).is_err());
    }

    #[test]
    fn secrets_lose_their_trailing_newline_only() -> Result<(), Box<dyn std::error::Error>> {
        let path = std::env::temp_dir().join(format!("ferry-daemon-secret-{}", std::process::id()));
        std::fs::write(&path, " postgres://u:pw@h/db \r\n")?;
        let secret = read_secret("database.url_file", &path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(secret?, " postgres://u:pw@h/db ");
        Ok(())
    }
}
