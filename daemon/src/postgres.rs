//! Connecting to PostgreSQL and applying the embedded migrations (`migrations/`, one schema for
//! every daemon, tables prefixed by service). The daemons' stores wrap these errors in their own.

use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The schema, embedded from `migrations/` at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How long to wait for a free connection (or a first connection) before failing.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server could not be reached or refused the connection.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to PostgreSQL at {url}")]
pub struct ConnectError {
    /// The URL, password removed.
    pub url: String,
    /// The driver's error.
    #[source]
    pub source: sqlx::Error,
}

/// Opens a pool of at most `max_connections` to `url`, waiting [`ACQUIRE_TIMEOUT`] for a
/// connection. Apply [`migrate`] before using it.
///
/// # Errors
/// [`ConnectError`], its URL without the password, when the server is unreachable.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, ConnectError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await
        .map_err(|source| ConnectError { url: redact_password(url), source })
}

/// Applies the embedded migrations (idempotent; concurrent starts serialise on sqlx's advisory
/// lock).
///
/// # Errors
/// When the schema cannot be applied (for example a migration changed after it was applied).
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for error messages.
pub fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_owned() };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_from_urls_in_errors() {
        assert_eq!(redact_password("postgres://u:pw@h:5432/db?x=1"), "postgres://u:***@h:5432/db?x=1");
        assert_eq!(
            redact_password("postgres://ferry:secret@127.0.0.1:5432/db"),
            "postgres://ferry:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_password("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_password("not a url"), "not a url");
    }
}
