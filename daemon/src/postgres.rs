//! Connecting to PostgreSQL and applying the embedded migrations (`migrations/`, one schema for
//! every daemon, tables prefixed by service). The daemons' stores wrap these errors in their own.
//!
//! Two kinds of connection: migrations run as the database's owner ([`migrate`]; the daemons'
//! `migrate` command), and the daemons run as service roles ([`RELAYER_ROLE`], [`SIGNER_ROLE`])
//! that own no table and may only read and append to the append-only ones. A daemon therefore
//! only checks that the schema is current ([`ensure_schema`] applies nothing then); given the
//! owner's URL it applies what is pending, as before.

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

/// The role `ferry-relayer` connects as (created by the migrations when missing).
pub const RELAYER_ROLE: &str = "ferry_relayer";
/// The role `ferry-signer` connects as (created by the migrations when missing).
pub const SIGNER_ROLE: &str = "ferry_signer";

/// Applies the embedded migrations (idempotent; concurrent starts serialise on sqlx's advisory
/// lock). Run it as the database's owner: the migrations create tables, triggers, the service
/// roles and their grants.
///
/// # Errors
/// When the schema cannot be applied (for example a migration changed after it was applied).
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// The embedded migrations not (successfully) applied to the database, or applied with another
/// checksum, by version. Reads `_sqlx_migrations` only, so a service role may call it.
///
/// # Errors
/// When the query fails.
pub async fn pending_migrations(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(pool).await?;
    let applied: Vec<(i64, Vec<u8>)> = if exists {
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success").fetch_all(pool).await?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .filter(|migration| {
            !applied.iter().any(|(version, checksum)| {
                *version == migration.version && checksum.as_slice() == migration.checksum.as_ref()
            })
        })
        .map(|migration| migration.version)
        .collect())
}

/// Makes sure the schema is current: nothing to do when every migration is applied (the only
/// case a service role meets in a deployment), else [`migrate`] — which succeeds only as the
/// owner.
///
/// # Errors
/// When migrations are pending and cannot be applied (as a service role: run the daemon's
/// `migrate` command as the owner first).
pub async fn ensure_schema(pool: &PgPool) -> Result<(), MigrateError> {
    if pending_migrations(pool).await?.is_empty() {
        return Ok(());
    }
    migrate(pool).await
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
