//! `ferry-relayer audit verify` against a real PostgreSQL: passes on an intact log, and names the
//! row an attacker altered directly in the database (exit status 1).

use std::process::Command;

use ferry_devnet::postgres::PgServer;
use ferry_relayer::store::Store;
use sqlx::Connection;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn verify(url: &str) -> Result<(bool, String), Box<dyn std::error::Error>> {
    let output = Command::new(ferry_devnet::relayer::binary()?)
        .args(["--database-url", url, "audit", "verify"])
        .env("RUST_LOG", "error")
        .output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), text))
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
    let (ok, text) = verify(&url)?;
    assert!(ok, "intact log refused: {text}");

    // Alter row 3's detail behind the append-only trigger's back.
    let mut connection = sqlx::PgConnection::connect(&url).await?;
    let mut tx = connection.begin().await?;
    sqlx::query("ALTER TABLE relayer_audit DISABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    let changed = sqlx::query("UPDATE relayer_audit SET detail = '{\"n\": 99}'::jsonb WHERE seq = 3")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("ALTER TABLE relayer_audit ENABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    tx.commit().await?;
    assert_eq!(changed, 1);

    let (ok, text) = verify(&url)?;
    assert!(!ok, "tampered log accepted: {text}");
    assert!(text.contains("seq 3") || text.contains("row 3"), "the report does not name row 3: {text}");
    drop(store);
    database.remove().await?;
    Ok(())
}
