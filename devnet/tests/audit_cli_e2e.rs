//! `ferry-relayer audit verify` against a real PostgreSQL: passes on an intact log, and names the
//! row an attacker altered directly in the database (exit status 1). Against a real network too:
//! the log's head anchored on the sidechain (`MsgAnchorAudit`) names a deleted tail and a
//! history rewritten and re-hashed by the database's owner, which the hash chain alone cannot.

mod common;

use std::process::Command;

use ferry_audit::{AuditLog, GENESIS_PREV_HASH, canonical_row, chain_hash};
use ferry_client::{FerryClient, Wallet};
use ferry_daemon::audit_anchor::{AnchorGauges, AnchorPolicy, Anchorer};
use ferry_devnet::accounts::member_key;
use ferry_devnet::postgres::PgServer;
use ferry_relayer::store::Store;
use ferry_types::msg::audit::AuditLogName;
use ferry_types::query::audit::{AuditAnchor, audit_anchor_path};
use ferry_types::{Address, Msg};
use sqlx::{Connection, Row};

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

/// Runs `ferry-relayer audit verify --json` against the chain at `rpc` for `member`; returns the
/// exit code and the JSON report.
fn verify_anchored(
    url: &str,
    rpc: &str,
    member: &Address,
) -> Result<(Option<i32>, serde_json::Value), Box<dyn std::error::Error>> {
    let output = Command::new(ferry_devnet::relayer::binary()?)
        .args(["--database-url", url, "--chain-rpc", rpc, "audit", "verify", "--json", "--member"])
        .arg(member.to_string())
        .env("RUST_LOG", "error")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("{e}: {stdout}{}", String::from_utf8_lossy(&output.stderr)))?;
    Ok((output.status.code(), report))
}

/// A member's relayer anchorer, as `ferry-relayer run` builds it (anchoring at every new row).
fn anchorer(index: usize) -> Result<Anchorer, Box<dyn std::error::Error>> {
    let gauges =
        AnchorGauges { rows: prometheus::IntGauge::new("rows", "rows")?, at: prometheus::Gauge::new("at", "at")? };
    let policy = AnchorPolicy { every_rows: 1, ..AnchorPolicy::default() };
    Ok(Anchorer::new(AuditLog::RELAYER, AuditLogName::Relayer, member_key(index)?.address(), policy, gauges))
}

/// One round of `anchorer` (member `index`'s): the head goes to the chain as a fee-exempt duty.
/// Returns the anchor the chain then answers.
async fn anchor_round(
    anchorer: &mut Anchorer,
    client: &FerryClient,
    pool: &sqlx::PgPool,
    index: usize,
) -> Result<AuditAnchor, Box<dyn std::error::Error>> {
    let mut post = |msg: Msg| {
        let client = client.clone();
        async move {
            let mut wallet = Wallet::load(&client, member_key(index).map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
            let tx = wallet.sign_fee_exempt(&[msg]).map_err(|e| e.to_string())?;
            let included = client.broadcast_and_wait(tx, common::WAIT).await.map_err(|e| e.to_string())?;
            if included.code == 0 { Ok(included.height) } else { Err(included.log) }
        }
    };
    anchorer.round(pool, client, &mut post).await?;
    let path = audit_anchor_path(&member_key(index)?.address(), AuditLogName::Relayer);
    Ok(client.query(&path, None).await?.ok_or("no anchor")?)
}

/// As the database's owner: every row from `from_seq` on re-hashed, so the hash chain verifies again.
async fn rehash_from(tx: &mut sqlx::PgConnection, from_seq: i64) -> TestResult {
    let log = AuditLog::RELAYER;
    let rows = sqlx::query(
        "SELECT seq, (extract(epoch FROM at) * 1000000)::bigint AS at_micros, kind, subject, detail::text AS detail, \
         prev_hash FROM relayer_audit WHERE seq >= $1 ORDER BY seq",
    )
    .bind(from_seq)
    .fetch_all(&mut *tx)
    .await?;
    let first_prev: Option<Vec<u8>> = rows.first().map(|row| row.try_get("prev_hash")).transpose()?.flatten();
    let mut prev: [u8; 32] = match first_prev {
        Some(bytes) => bytes.as_slice().try_into()?,
        None => GENESIS_PREV_HASH,
    };
    for (index, row) in rows.iter().enumerate() {
        let seq: i64 = row.try_get("seq")?;
        let detail: serde_json::Value = serde_json::from_str(row.try_get("detail")?)?;
        let canonical = canonical_row(
            log.domain(),
            seq,
            row.try_get("at_micros")?,
            row.try_get("kind")?,
            row.try_get("subject")?,
            &detail,
        );
        let hash = chain_hash(&prev, &canonical);
        let prev_column = if index == 0 { None } else { Some(prev.to_vec()) };
        let update = if index == 0 {
            sqlx::query("UPDATE relayer_audit SET hash = $2 WHERE seq = $1").bind(seq).bind(hash.to_vec())
        } else {
            sqlx::query("UPDATE relayer_audit SET hash = $2, prev_hash = $3 WHERE seq = $1")
                .bind(seq)
                .bind(hash.to_vec())
                .bind(prev_column)
        };
        update.execute(&mut *tx).await?;
        prev = hash;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_names_a_deleted_tail_and_a_rehashed_history_against_the_anchored_head() -> TestResult {
    let _serial = common::serial().await;
    let network = common::start_network("audit_anchor").await?;
    let client = network.client(0)?;
    let rpc = network.validators()[0].rpc_url();
    let postgres = PgServer::from_env_or_start(None).await?;

    // (a) Member 0's log: six rows anchored, then the owner deletes the newest two.
    let cut = postgres.scratch_database("audit_anchor_cut").await?;
    let store = Store::connect(cut.url()).await?;
    for n in 0..6 {
        store.append("test", &format!("row-{n}"), &serde_json::json!({ "n": n })).await?;
    }
    let member = member_key(0)?.address();
    let mut cut_anchorer = anchorer(0)?;
    let anchor = anchor_round(&mut cut_anchorer, &client, store.pool(), 0).await?;
    assert_eq!(anchor.rows, 6, "{anchor:?}");
    let (code, report) = verify_anchored(cut.url(), &rpc, &member)?;
    assert_eq!(code, Some(0), "intact and anchored: {report}");
    assert_eq!(report["anchor"]["outcome"], "holds", "{report}");
    let mut owner = sqlx::PgConnection::connect(cut.url()).await?;
    let mut tx = owner.begin().await?;
    sqlx::query("ALTER TABLE relayer_audit DISABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    let deleted =
        sqlx::query("DELETE FROM relayer_audit WHERE seq IN (SELECT seq FROM relayer_audit ORDER BY seq DESC LIMIT 2)")
            .execute(&mut *tx)
            .await?
            .rows_affected();
    sqlx::query("ALTER TABLE relayer_audit ENABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    tx.commit().await?;
    assert_eq!(deleted, 2);
    assert!(AuditLog::RELAYER.verify(store.pool()).await?.is_intact(), "the hash chain alone cannot tell");
    let (code, report) = verify_anchored(cut.url(), &rpc, &member)?;
    assert_eq!(code, Some(1), "deleted tail passed: {report}");
    assert_eq!(report["anchor"]["outcome"], "deleted_tail", "{report}");
    let named = format!("deleted tail: 6 rows anchored at height {}, the log has 4", anchor.height);
    assert_eq!(report["anchor"]["message"], named.as_str(), "{report}");
    assert!(report["report"].as_str().is_some_and(|text| text.contains(&named)), "{report}");
    // The log grows back past the anchored count: the chain refuses to move the anchor over
    // another history, keeps the refusal, and verify still names the change.
    for n in 6..9 {
        store.append("test", &format!("row-{n}"), &serde_json::json!({ "n": n })).await?;
    }
    let held = anchor_round(&mut cut_anchorer, &client, store.pool(), 0).await?;
    assert_eq!((held.rows, held.head_hash.as_str(), held.refused), (6, anchor.head_hash.as_str(), 1), "{held:?}");
    assert_eq!(held.last_refused.map(|refused| refused.reason).as_deref(), Some("other_history"));
    let (code, report) = verify_anchored(cut.url(), &rpc, &member)?;
    assert_eq!(code, Some(1), "regrown tail passed: {report}");
    assert_eq!(report["anchor"]["outcome"], "rewritten", "{report}");
    drop(store);
    cut.remove().await?;

    // (b) Member 1's log: six rows anchored, then the owner rewrites the second and re-hashes
    // every row after it, so the chain of hashes verifies again.
    let rewritten = postgres.scratch_database("audit_anchor_rewrite").await?;
    let store = Store::connect(rewritten.url()).await?;
    for n in 0..6 {
        store.append("test", &format!("row-{n}"), &serde_json::json!({ "n": n })).await?;
    }
    let member = member_key(1)?.address();
    let anchor = anchor_round(&mut anchorer(1)?, &client, store.pool(), 1).await?;
    let [second] = store.audit_entries("row-1").await?.try_into().map_err(|rows| format!("row-1 is {rows:?}"))?;
    let mut owner = sqlx::PgConnection::connect(rewritten.url()).await?;
    let mut tx = owner.begin().await?;
    sqlx::query("ALTER TABLE relayer_audit DISABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    sqlx::query("UPDATE relayer_audit SET detail = '{\"n\": 99}'::jsonb WHERE seq = $1")
        .bind(second.seq)
        .execute(&mut *tx)
        .await?;
    rehash_from(&mut tx, second.seq).await?;
    sqlx::query("ALTER TABLE relayer_audit ENABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    tx.commit().await?;
    let chain_only = AuditLog::RELAYER.verify(store.pool()).await?;
    assert!(chain_only.is_intact(), "re-hashed, the chain alone verifies: {chain_only}");
    let head = chain_only.head.ok_or("empty")?;
    let (code, report) = verify_anchored(rewritten.url(), &rpc, &member)?;
    assert_eq!(code, Some(1), "rewritten history passed: {report}");
    assert_eq!(report["anchor"]["outcome"], "rewritten", "{report}");
    let named = format!(
        "history rewritten: row 6 (seq {}) hashes to {}, anchored {} at height {}",
        head.0,
        hex::encode(head.1),
        anchor.head_hash,
        anchor.height
    );
    assert_eq!(report["anchor"]["message"], named.as_str(), "{report}");
    drop(store);
    rewritten.remove().await?;
    Ok(())
}
