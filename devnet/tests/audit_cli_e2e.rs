//! `ferry-relayer audit verify` against a real PostgreSQL: passes on an intact log, and names the
//! row an attacker altered directly in the database (exit status 1).

use std::process::Command;

use ferry_devnet::postgres::PgServer;
use ferry_relayer::store::Store;
use sqlx::Connection;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Runs `ferry-relayer audit verify`; returns its exit code and its report (stdout), with stderr
/// after it.
fn verify(url: &str) -> Result<(Option<i32>, String, String), Box<dyn std::error::Error>> {
    let output = Command::new(ferry_devnet::relayer::binary()?)
        .args(["--database-url", url, "audit", "verify"])
        .env("RUST_LOG", "error")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok((output.status.code(), stdout, String::from_utf8_lossy(&output.stderr).into_owned()))
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_names_the_row_altered_directly_in_the_database() -> TestResult {
    let postgres = PgServer::from_env_or_start(None).await?;
    let database = postgres.scratch_database("audit_cli").await?;
    let url = database.url().to_owned();
    let store = Store::connect(&url).await?;
    for n in 0..5 {
        store.append("test", &format!("row-{n}"), &serde_json::json!({ "n": n })).await?;
    }
    let (code, report, errors) = verify(&url)?;
    assert_eq!(code, Some(0), "intact log refused: {report}{errors}");
    assert!(report.starts_with("audit chain intact: 5 rows, head seq "), "{report}{errors}");
    let rows = store.audit_entries("row-2").await?;
    let [altered] = rows.as_slice() else { return Err(format!("row-2 is {rows:?}").into()) };

    // Alter the third row's detail behind the append-only trigger's back.
    let mut connection = sqlx::PgConnection::connect(&url).await?;
    let mut tx = connection.begin().await?;
    sqlx::query("ALTER TABLE relayer_audit DISABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    let changed = sqlx::query("UPDATE relayer_audit SET detail = '{\"n\": 99}'::jsonb WHERE seq = $1")
        .bind(altered.seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("ALTER TABLE relayer_audit ENABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    tx.commit().await?;
    assert_eq!(changed, 1);

    // Exit status 1, with the report naming the altered row and what is wrong (a failure to
    // verify at all exits 1 too, but prints no report).
    let (code, report, errors) = verify(&url)?;
    assert_eq!(code, Some(1), "tampered log: {report}{errors}");
    let named =
        format!("audit chain BROKEN after 2 intact rows: row seq {} (test row-2): content altered", altered.seq);
    assert!(report.starts_with(&named), "the report does not name the altered row: {report}{errors}");
    drop(store);
    database.remove().await?;
    Ok(())
}
