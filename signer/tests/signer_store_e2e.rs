//! The signer's double-sign guard and audit log against a real PostgreSQL (a private cluster per
//! test, or the server `$DATABASE_URL` names with a database per test): one row per (epoch,
//! nonce), the same payload may be signed again, a different one is refused and audited, the
//! local cap is re-checked under the lock, concurrent attempts cannot both insert, and the audit
//! chain verifies — also through `ferry-signer audit verify` — and names a row altered behind the
//! append-only trigger's back. The double-sign table is append-only too, each of its rows has its
//! audit row (one without the other is refused at commit), and the signer's role (`ferry_signer`)
//! can neither change rows nor lift those protections.

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use ferry_devnet::postgres::{PgServer, ScratchDatabase};
use ferry_signer::policy::{Denylist, Policy};
use ferry_signer::rebuild::{Payload, Rebuilt};
use ferry_signer::refusal::Reason;
use ferry_signer::store::{Guarded, Store, kind};
use ferry_types::release::eth::{EthAddress, EthBatch};
use ferry_types::{Amount, Denom, ParentChain};
use sqlx::{Connection, PgConnection};

type TestResult<T = ()> = anyhow::Result<T>;

const EPOCH: u64 = 1;

/// A server and one fresh database on it (declared first, so it is dropped before the server).
struct TestDatabase {
    database: ScratchDatabase,
    server: PgServer,
}

impl TestDatabase {
    async fn create(test: &str) -> TestResult<TestDatabase> {
        let server = PgServer::from_env_or_start(None).await?;
        let database = server.scratch_database(&format!("signer_e2e_{test}")).await?;
        Ok(TestDatabase { database, server })
    }

    fn url(&self) -> &str {
        self.database.url()
    }

    async fn store(&self) -> TestResult<Store> {
        Ok(Store::connect(self.url()).await?)
    }

    /// Drops the database now (a private cluster then stops when `server` drops).
    async fn finish(self) -> TestResult {
        let TestDatabase { database, server } = self;
        database.remove().await?;
        drop(server);
        Ok(())
    }
}

/// An ether batch `nonce` of `wei` paying its payload `tag`: payloads with different tags differ.
fn rebuilt(nonce: u64, wei: u128, tag: u8) -> Rebuilt {
    let batch = EthBatch {
        chain_id: 31_337,
        vault: EthAddress::from_bytes([tag; 20]),
        epoch: EPOCH,
        nonce,
        exit_height: 0,
        exit_root: [0; 32],
        items: Vec::new(),
    };
    let bytes = batch.payload();
    Rebuilt {
        batch: nonce,
        version: 0,
        replaces: None,
        epoch: EPOCH,
        asset: Denom::wei(),
        chain: ParentChain::Ethereum,
        total: Amount::new(wei),
        destinations: Vec::new(),
        payload: Payload::Ethereum { batch, bytes },
    }
}

fn policy(cap: u128) -> Policy {
    Policy {
        window: Duration::from_secs(3600),
        caps: BTreeMap::from([(Denom::wei(), Amount::new(cap))]),
        max_batch_items: 32,
        denylist: Denylist::default(),
    }
}

fn kinds(entries: &[ferry_signer::store::AuditEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.kind.as_str()).collect()
}

/// `ferry-signer audit verify --database-url URL`: exit status and output.
/// Runs `ferry-signer audit verify`; returns its exit code and stdout + stderr.
fn audit_verify(url: &str) -> TestResult<(Option<i32>, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-signer"))
        .args(["audit", "verify", "--database-url", url])
        .env_remove("FERRY_SIGNER_CONFIG")
        .output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Ok((output.status.code(), text))
}

/// Held for the whole of each test: each starts its own PostgreSQL cluster (unless
/// `$DATABASE_URL` is set), one at a time on the two-core CI machine.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guard_signs_one_payload_per_epoch_and_nonce_and_audits_every_decision() -> TestResult {
    let _serial = serial().await;
    let db = TestDatabase::create("guard").await?;
    let store = db.store().await?;
    let policy = policy(10_000);
    let honest = rebuilt(7, 4_000, 1);

    // The same payload twice: one row; the second time it may be signed again (re-post).
    assert_eq!(store.record_signing(&honest, &policy).await?, Guarded::Recorded);
    assert_eq!(store.record_signing(&honest, &policy).await?, Guarded::AlreadyRecorded);
    assert_eq!(store.signed_count().await?, 1);
    let row = store.signed(EPOCH, 7).await?.expect("the row");
    assert_eq!((row.payload_hash, row.total, row.chain.as_str()), (honest.payload_hash(), Amount::new(4_000), "eth"));

    // A different payload for the same (epoch, nonce): refused, audited, the row unchanged.
    let forged = rebuilt(7, 4_000, 2);
    let Guarded::Refused(refusal) = store.record_signing(&forged, &policy).await? else {
        anyhow::bail!("a second payload for epoch 1 nonce 7 was accepted");
    };
    assert_eq!(refusal.reason, Reason::DoubleSign);
    assert!(refusal.message.contains("already signed a different payload for epoch 1 nonce 7"), "{}", refusal.message);
    assert_eq!(store.signed(EPOCH, 7).await?.map(|row| row.payload_hash), Some(honest.payload_hash()));
    assert_eq!(store.signed_count().await?, 1);
    let entries = store.entries_for(7).await?;
    assert_eq!(kinds(&entries), [kind::SIGNED, kind::RESIGNED, kind::REFUSED]);
    let refused = &entries[2].detail;
    assert_eq!(refused["reason"], "double_sign");
    assert_eq!(refused["payload_hash"], hex::encode(forged.payload_hash()));
    assert_eq!(refused["signed_payload_hash"], hex::encode(honest.payload_hash()));
    assert_eq!(entries[2].subject, "batch-7");

    // The window counts what was signed, the asked-about batch's own row excluded.
    assert_eq!(store.signed_in_window(&Denom::wei(), policy.window, EPOCH, 8).await?, Amount::new(4_000));
    assert_eq!(store.signed_in_window(&Denom::wei(), policy.window, EPOCH, 7).await?, Amount::ZERO);
    assert_eq!(store.signed_in_window(&Denom::sat(), policy.window, EPOCH, 8).await?, Amount::ZERO);

    // The cap is re-checked under the lock: 4 000 + 6 000 fits 10 000, one more wei does not.
    assert!(matches!(
        store.record_signing(&rebuilt(9, 6_001, 3), &policy).await?,
        Guarded::Refused(refusal) if refusal.reason == Reason::Cap
    ));
    assert_eq!(store.record_signing(&rebuilt(8, 6_000, 3), &policy).await?, Guarded::Recorded);
    assert_eq!(kinds(&store.entries_for(9).await?), [kind::REFUSED]);

    // Outcomes and refusals decided before the guard are audited under the batch too.
    store.record_posted(8, ParentChain::Ethereum, "ABCD", 42).await?;
    store.record_post_failed(8, ParentChain::Ethereum, "timed out").await?;
    let refusal = ferry_signer::Refusal::new(Reason::Destination, "item 0 pays a denied address");
    store.record_refusal(10, &refusal, serde_json::json!({"asset": "wei"})).await?;
    assert_eq!(kinds(&store.entries_for(8).await?), [kind::SIGNED, kind::POSTED, kind::POST_FAILED]);
    let denied = store.entries_for(10).await?;
    assert_eq!(
        (denied[0].detail["reason"].as_str(), denied[0].detail["asset"].as_str()),
        (Some("destination"), Some("wei"))
    );

    // The chain of all these rows verifies, in the library and through the command.
    let report = store.verify().await?;
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.rows_intact, 8);
    let (code, output) = audit_verify(db.url())?;
    assert!(code == Some(0) && output.contains("audit chain intact: 8 rows"), "{output}");
    store.pool().close().await;
    db.finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_attempts_cannot_both_insert() -> TestResult {
    let _serial = serial().await;
    let db = TestDatabase::create("race").await?;
    let policy = policy(u128::MAX);
    // Eight signer processes' worth of pools on one database, offering two different payloads for
    // the same (epoch, nonce) at once.
    let mut stores = Vec::new();
    for _ in 0..8 {
        stores.push(db.store().await?);
    }
    let attempts = stores.iter().enumerate().map(|(n, store)| {
        let offer = rebuilt(5, 1_000, 1 + (n % 2) as u8);
        let policy = policy.clone();
        async move { (offer.payload_hash(), store.record_signing(&offer, &policy).await) }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let store = &stores[0];
    let winner = store.signed(EPOCH, 5).await?.expect("one payload recorded").payload_hash;
    let mut recorded = 0;
    for (offered, outcome) in outcomes {
        match outcome? {
            Guarded::Recorded => {
                recorded += 1;
                assert_eq!(offered, winner);
            }
            Guarded::AlreadyRecorded => assert_eq!(offered, winner),
            Guarded::Refused(refusal) => {
                assert_eq!(refusal.reason, Reason::DoubleSign);
                assert_ne!(offered, winner);
            }
        }
    }
    assert_eq!(recorded, 1, "exactly one attempt inserts");
    assert_eq!(store.signed_count().await?, 1);
    let entries = store.entries_for(5).await?;
    assert_eq!(entries.len(), 8);
    assert_eq!(entries.iter().filter(|entry| entry.kind == kind::SIGNED).count(), 1);
    assert!(store.verify().await?.is_intact());
    for store in &stores {
        store.pool().close().await;
    }
    db.finish().await
}

/// The database's refusal message of a statement that must have been refused.
fn refusal(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> String {
    match result {
        Err(sqlx::Error::Database(error)) => error.message().to_owned(),
        other => format!("not refused by the database: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_append_only_and_verify_names_an_altered_row() -> TestResult {
    let _serial = serial().await;
    let db = TestDatabase::create("tamper").await?;
    let store = db.store().await?;
    let policy = policy(u128::MAX);
    for nonce in 1..=4 {
        assert_eq!(store.record_signing(&rebuilt(nonce, 10, 1), &policy).await?, Guarded::Recorded);
    }
    let victim = store.entries_for(3).await?.into_iter().next().expect("batch 3's row");

    let mut connection = PgConnection::connect(db.url()).await?;
    let refused = sqlx::query("UPDATE signer_audit SET kind = 'batch.posted' WHERE seq = $1")
        .bind(victim.seq)
        .execute(&mut connection)
        .await;
    assert_eq!(refusal(refused), "signer_audit is append-only: UPDATE refused");
    for (statement, operation) in [("DELETE FROM signer_audit", "DELETE"), ("TRUNCATE signer_audit", "TRUNCATE")] {
        let refused = sqlx::query(statement).execute(&mut connection).await;
        assert_eq!(refusal(refused), format!("signer_audit is append-only: {operation} refused"), "{statement}");
    }
    assert_eq!(store.entries_for(3).await?.first().map(|entry| entry.seq), Some(victim.seq), "nothing removed");

    // Someone with the owner's rights disables the trigger and edits batch 3's row.
    let mut tx = connection.begin().await?;
    sqlx::query("ALTER TABLE signer_audit DISABLE TRIGGER signer_audit_append_only").execute(&mut *tx).await?;
    sqlx::query("UPDATE signer_audit SET detail = jsonb_set(detail, '{total}', '\"1000000\"') WHERE seq = $1")
        .bind(victim.seq)
        .execute(&mut *tx)
        .await?;
    sqlx::query("ALTER TABLE signer_audit ENABLE TRIGGER signer_audit_append_only").execute(&mut *tx).await?;
    tx.commit().await?;

    let report = store.verify().await?;
    let broken = report.first_broken.as_ref().expect("tampering detected");
    assert_eq!((broken.seq, broken.subject.as_str(), report.rows_intact), (victim.seq, "batch-3", 2), "{report}");
    let (code, output) = audit_verify(db.url())?;
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("BROKEN") && output.contains(&format!("row seq {}", victim.seq)), "{output}");
    connection.close().await?;
    store.pool().close().await;
    db.finish().await
}

/// The database's refusal of a statement that must have been refused: its SQLSTATE and message.
fn refused_with(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> (String, String) {
    match result {
        Err(sqlx::Error::Database(error)) => {
            (error.code().map(|code| code.into_owned()).unwrap_or_default(), error.message().to_owned())
        }
        other => (String::new(), format!("not refused by the database: {other:?}")),
    }
}

/// SQLSTATE `insufficient_privilege`: a missing grant ("permission denied …"), not owning the
/// object ("must be owner of …"), and the append-only triggers' own refusal.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

#[tokio::test(flavor = "multi_thread")]
async fn the_signed_table_is_append_only_and_the_service_role_cannot_lift_that() -> TestResult {
    let _serial = serial().await;
    let db = TestDatabase::create("roles").await?;
    // Migrated as the owner (the test's connection); the signer connects as its role.
    let owner_store = db.store().await?;
    let policy = policy(u128::MAX);
    assert_eq!(owner_store.record_signing(&rebuilt(1, 10, 1), &policy).await?, Guarded::Recorded);
    let service_url = ferry_devnet::postgres::url_as_role(db.url(), ferry_signer::store::ROLE);
    let store = Store::connect(&service_url).await?;
    let mut service = PgConnection::connect(&service_url).await?;
    let role: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(&mut service).await?;
    assert_eq!(role, "ferry_signer");

    // The service role signs as usual: the guard's lock, the row, its audit entry.
    assert_eq!(store.record_signing(&rebuilt(2, 10, 1), &policy).await?, Guarded::Recorded);
    let again = store.record_signing(&rebuilt(2, 10, 2), &policy).await?;
    assert!(matches!(&again, Guarded::Refused(refusal) if refusal.reason == Reason::DoubleSign), "{again:?}");

    // Even the owner cannot change or remove a signed row: the trigger refuses.
    let mut owner = PgConnection::connect(db.url()).await?;
    for (statement, operation) in [
        ("DELETE FROM signer_signed WHERE nonce = 1", "DELETE"),
        ("UPDATE signer_signed SET payload_hash = sha256('other') WHERE nonce = 1", "UPDATE"),
        ("UPDATE signer_signed SET total = 0 WHERE false", "UPDATE"),
        ("TRUNCATE signer_signed", "TRUNCATE"),
    ] {
        let (code, message) = refused_with(sqlx::query(statement).execute(&mut owner).await);
        assert_eq!(message, format!("signer_signed is append-only: {operation} refused"), "{statement}");
        assert_eq!(code, INSUFFICIENT_PRIVILEGE, "{statement}");
    }

    // The service role has no right to change or remove rows of either table at all.
    for statement in [
        "DELETE FROM signer_signed WHERE nonce = 1",
        "DELETE FROM signer_signed",
        "UPDATE signer_signed SET payload_hash = sha256('other') WHERE nonce = 1",
        "TRUNCATE signer_signed",
        "DELETE FROM signer_audit",
        "UPDATE signer_audit SET kind = 'batch.posted'",
        "TRUNCATE signer_audit",
    ] {
        let (code, message) = refused_with(sqlx::query(statement).execute(&mut service).await);
        assert_eq!(code, INSUFFICIENT_PRIVILEGE, "{statement}: {message}");
        assert!(message.starts_with("permission denied for table signer_"), "{statement}: {message}");
    }

    // Nor can it lift the protection: it owns neither table, trigger nor function.
    for statement in [
        "DROP TRIGGER signer_signed_append_only ON signer_signed",
        "DROP TRIGGER signer_audit_append_only ON signer_audit",
        "DROP TRIGGER signer_signed_audited ON signer_signed",
        "ALTER TABLE signer_signed DISABLE TRIGGER signer_signed_append_only",
        "ALTER TABLE signer_audit DISABLE TRIGGER ALL",
        "ALTER TABLE signer_signed DROP CONSTRAINT signer_signed_pkey",
        "ALTER TABLE signer_audit OWNER TO ferry_signer",
        "DROP TABLE signer_signed",
        "CREATE OR REPLACE FUNCTION ferry_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql \
         AS $$ BEGIN RETURN NULL; END; $$",
        "DROP FUNCTION ferry_audit_refuse_change() CASCADE",
    ] {
        let (code, message) = refused_with(sqlx::query(statement).execute(&mut service).await);
        assert_eq!(code, INSUFFICIENT_PRIVILEGE, "{statement}: {message}");
        assert!(
            message.starts_with("must be owner of") || message == "permission denied for schema public",
            "{statement}: {message}"
        );
    }
    // Its lock function takes the audit logs' lock and nothing else.
    let (_, message) =
        refused_with(sqlx::query("SELECT ferry_audit_lock('signer_signed')").execute(&mut service).await);
    assert_eq!(message, "signer_signed is not an audit log");

    assert_eq!(store.signed_count().await?, 2);
    assert_eq!(store.signed(EPOCH, 1).await?.map(|row| row.payload_hash), Some(rebuilt(1, 10, 1).payload_hash()));
    assert!(store.verify().await?.is_intact());
    service.close().await?;
    owner.close().await?;
    store.pool().close().await;
    owner_store.pool().close().await;
    db.finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signed_row_has_its_audit_row_and_one_without_the_other_is_refused_at_commit() -> TestResult {
    let _serial = serial().await;
    let db = TestDatabase::create("audited").await?;
    db.store().await?.pool().close().await;
    let service_url = ferry_devnet::postgres::url_as_role(db.url(), ferry_signer::store::ROLE);
    let store = Store::connect(&service_url).await?;

    // Through the store: the row and the audit entry naming its payload hash, together.
    let offer = rebuilt(9, 500, 1);
    assert_eq!(store.record_signing(&offer, &policy(u128::MAX)).await?, Guarded::Recorded);
    let row = store.signed(EPOCH, 9).await?.expect("the row");
    let entries = store.entries_for(9).await?;
    assert_eq!(kinds(&entries), [kind::SIGNED]);
    let detail = &entries[0].detail;
    assert_eq!(detail["payload_hash"].as_str(), Some(hex::encode(row.payload_hash).as_str()));
    assert_eq!(
        (detail["epoch"].as_u64(), detail["nonce"].as_u64(), detail["version"].as_u64()),
        (Some(EPOCH), Some(9), Some(0))
    );

    // A row inserted behind the store's back, without its audit entry, fails at commit.
    let mut service = PgConnection::connect(&service_url).await?;
    let mut tx = service.begin().await?;
    sqlx::query(
        "INSERT INTO signer_signed (epoch, nonce, version, chain, asset, payload_hash, total) \
         VALUES (1, 10, 0, 'eth', 'wei', sha256('unaudited'), 1)",
    )
    .execute(&mut *tx)
    .await?;
    let committed = tx.commit().await;
    let message = match committed {
        Err(sqlx::Error::Database(error)) => error.message().to_owned(),
        other => format!("committed: {other:?}"),
    };
    assert!(
        message.starts_with("signer_signed row (epoch 1, nonce 10, version 0, payload ")
            && message.ends_with("has no batch.signed audit row"),
        "{message}"
    );

    // An audit entry claiming a signature with no row fails the same way.
    let mut tx = service.begin().await?;
    ferry_signer::store::LOG.lock(&mut tx).await?;
    let claimed = serde_json::json!({"epoch": 1, "nonce": 11, "version": 0, "payload_hash": "00".repeat(32)});
    ferry_signer::store::LOG.append_locked(&mut tx, kind::SIGNED, "batch-11", &claimed).await?;
    let committed = tx.commit().await;
    let message = match committed {
        Err(sqlx::Error::Database(error)) => error.message().to_owned(),
        other => format!("committed: {other:?}"),
    };
    assert!(message.ends_with("(batch-11) has no signer_signed row"), "{message}");

    assert_eq!(store.signed_count().await?, 1);
    assert!(store.entries_for(10).await?.is_empty() && store.entries_for(11).await?.is_empty());
    assert!(store.verify().await?.is_intact());
    service.close().await?;
    store.pool().close().await;
    db.finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_role_applies_no_migration_and_names_migrate_when_the_schema_is_behind() -> TestResult {
    let _serial = serial().await;
    let db = TestDatabase::create("behind").await?;
    // One database migrated: the roles exist in the cluster. A second one has no schema yet.
    db.store().await?.pool().close().await;
    let bare = db.server.scratch_database("signer_e2e_bare").await?;
    let service_url = ferry_devnet::postgres::url_as_role(bare.url(), ferry_signer::store::ROLE);
    let error = Store::connect(&service_url).await.expect_err("the role cannot migrate");
    assert!(matches!(error, ferry_signer::store::StoreError::Migrate(_)), "{error:?}");
    assert!(error.to_string().contains("`ferry-signer migrate`"), "{error}");
    let mut owner = PgConnection::connect(bare.url()).await?;
    let created: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('signer_signed')::text").fetch_one(&mut owner).await?;
    assert_eq!(created, None, "the role created the schema");
    // The owner migrates (`ferry-signer migrate`); then the role connects.
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-signer"))
        .args(["migrate", "--database-url", bare.url()])
        .env_remove("FERRY_SIGNER_CONFIG")
        .output()?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Store::connect(&service_url).await?.pool().close().await;
    owner.close().await?;
    bare.remove().await?;
    db.finish().await
}
