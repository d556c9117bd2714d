//! The relayer's PostgreSQL store against a real server: a private cluster per test (or the server
//! `$DATABASE_URL` names, with a database per test dropped at the end). Migrations, the deposit
//! lifecycle across a restart, idempotent observation, the append-only trigger, tamper detection
//! by `verify`, and concurrent appends forming one chain.

mod common;

use std::path::Path;
use std::time::Duration;

use ferry_devnet::postgres::{PgServer, Postgres, ScratchDatabase};
use ferry_relayer::confirmations::ConfirmationPolicy;
use ferry_relayer::store::audit::kind;
use ferry_relayer::store::{Break, Cursor, DepositStatus, MIGRATOR, ObserveOutcome, Store, StoreError, Transition};
use ferry_relayer::tracker::{Effect, Tracker};
use ferry_types::{Address, Amount, Denom, DepositFacts, ParentChain};
use serde_json::json;
use sqlx::{Connection, PgConnection};

type TestResult<T = ()> = anyhow::Result<T>;

/// A server and one fresh database on it (declared first, so it is dropped before the server).
struct TestDatabase {
    database: ScratchDatabase,
    server: PgServer,
}

impl TestDatabase {
    async fn create(test: &str) -> TestResult<TestDatabase> {
        let server = PgServer::from_env_or_start(None).await?;
        let database = server.scratch_database(&format!("store_e2e_{test}")).await?;
        Ok(TestDatabase { database, server })
    }

    fn url(&self) -> &str {
        self.database.url()
    }

    async fn store(&self) -> TestResult<Store> {
        Ok(Store::connect(self.url()).await?)
    }

    async fn connection(&self) -> TestResult<PgConnection> {
        Ok(PgConnection::connect(self.url()).await?)
    }

    /// Drops the database now (a private cluster then stops when `server` drops).
    async fn finish(self) -> TestResult {
        let TestDatabase { database, server } = self;
        database.remove().await?;
        drop(server);
        Ok(())
    }
}

fn btc_facts(tx: u8, vout: u32, sats: u128) -> DepositFacts {
    DepositFacts {
        chain: ParentChain::Bitcoin,
        tx_id: format!("{tx:02x}").repeat(32),
        index: vout,
        asset: Denom::sat(),
        amount: Amount::new(sats),
        recipient: Address::from_bytes([tx; 20]),
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    }
}

fn eth_facts(tx: u8, log_index: u32) -> DepositFacts {
    DepositFacts {
        chain: ParentChain::Ethereum,
        tx_id: format!("0x{}", format!("{tx:02x}").repeat(32)),
        index: log_index,
        asset: Denom::wei(),
        // Above u64: exercises numeric(39,0).
        amount: Amount::new(u128::MAX),
        recipient: Address::from_bytes([0xee; 20]),
        deposit_address: false,
        unattributed: None,
        peg_epoch: None,
    }
}

async fn scalar_i64(connection: &mut PgConnection, sql: &str) -> TestResult<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(connection).await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_twice_and_the_second_run_changes_nothing() -> TestResult {
    let _serial = common::serial().await;
    let db = TestDatabase::create("migrate").await?;
    let store = db.store().await?;
    store.append("test.marker", "migrations", &json!({"run": 1})).await?;
    drop(store);
    let store = db.store().await?;
    MIGRATOR.run(store.pool()).await?;

    let mut connection = db.connection().await?;
    let applied = scalar_i64(&mut connection, "SELECT count(*) FROM _sqlx_migrations WHERE success").await?;
    assert_eq!(usize::try_from(applied)?, MIGRATOR.iter().count());
    for table in ["relayer_cursors", "relayer_deposits", "relayer_rejections", "relayer_audit"] {
        let found: Option<String> =
            sqlx::query_scalar("SELECT to_regclass($1)::text").bind(table).fetch_one(&mut connection).await?;
        assert_eq!(found.as_deref(), Some(table));
    }
    assert_eq!(scalar_i64(&mut connection, "SELECT count(*) FROM relayer_audit").await?, 1);
    assert!(store.verify().await?.is_intact());
    connection.close().await?;
    db.finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn deposit_goes_observed_attesting_attested_and_a_restart_resumes_it() -> TestResult {
    let _serial = common::serial().await;
    let db = TestDatabase::create("lifecycle").await?;
    let store = db.store().await?;
    let facts = btc_facts(0x11, 1, 50_000);
    let id = facts.id();

    assert_eq!(store.record_observed(&facts, 100, "a100").await?, ObserveOutcome::New);
    let pending = store.pending().await?;
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].status, &pending[0].observation.facts), (DepositStatus::Observed, &facts));
    assert_eq!((pending[0].observation.block_height, pending[0].observation.block_hash.as_str()), (100, "a100"));

    // The outcome cannot be recorded before the intent.
    let early = store.mark_attested(&id, "tx-0").await;
    assert!(
        matches!(
            early,
            Err(StoreError::InvalidTransition { from: DepositStatus::Observed, to: DepositStatus::Attested, .. })
        ),
        "{early:?}"
    );
    assert_eq!(store.mark_attesting(&id).await?, 1);

    // Crash after recording the intent: a new process (a new pool) finds the deposit still to be
    // sent. It resumes the way the relayer does on restart: what the store holds pending is fed to
    // a fresh tracker, which decides, at a tip where the deposit is deep enough, to attest it
    // again; the new intent is the second attempt.
    drop(store);
    let store = db.store().await?;
    let pending = store.pending().await?;
    assert_eq!((pending.len(), pending[0].status, pending[0].attempts), (1, DepositStatus::Attesting, 1));
    let mut tracker = Tracker::new(ConfirmationPolicy::flat(3));
    for record in &pending {
        tracker.observe(record.observation.clone());
    }
    let effects = tracker.evaluate(102, |height| (height == 100).then(|| "a100".to_owned()));
    assert_eq!(effects, [Effect::Attest(pending[0].observation.clone())]);
    assert_eq!(store.mark_attesting(&id).await?, 2);
    assert_eq!(store.mark_attested(&id, "ab12").await?, Transition::Applied);
    assert_eq!(store.mark_attested(&id, "ab12").await?, Transition::Unchanged);
    assert!(store.pending().await?.is_empty());
    let record = store.deposit(&id).await?.ok_or_else(|| anyhow::anyhow!("deposit {id} missing"))?;
    assert_eq!(
        (record.status, record.attestation_tx.as_deref(), record.attempts),
        (DepositStatus::Attested, Some("ab12"), 2)
    );
    let dropped_late = store.mark_dropped(&id, "reorg").await;
    assert!(matches!(dropped_late, Err(StoreError::InvalidTransition { from: DepositStatus::Attested, .. })));

    // A u128 amount round-trips through numeric(39,0).
    let big = eth_facts(0x22, 7);
    store.record_observed(&big, 5_000, "0xblock").await?;
    assert_eq!(store.deposit(&big.id()).await?.map(|r| r.observation.facts), Some(big.clone()));

    let kinds: Vec<String> = store.audit_entries(id.as_str()).await?.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [kind::DEPOSIT_OBSERVED, kind::DEPOSIT_ATTESTING, kind::DEPOSIT_ATTESTING, kind::DEPOSIT_ATTESTED]
    );
    let counts = store.counts().await?;
    assert_eq!(counts.deposits.len(), DepositStatus::ALL.len());
    assert_eq!(counts.deposits[&DepositStatus::Attested], 1);
    assert_eq!(counts.deposits[&DepositStatus::Observed], 1);
    assert_eq!(counts.deposits[&DepositStatus::Dropped], 0);

    // Cursors: absent, set, moved back after a reorg, each move audited.
    assert_eq!(store.cursor(ParentChain::Bitcoin).await?, None);
    let tip = Cursor { height: 105, block_hash: "a105".to_owned() };
    store.set_cursor(ParentChain::Bitcoin, &tip).await?;
    let rewound = Cursor { height: 103, block_hash: "a103".to_owned() };
    store.set_cursor(ParentChain::Bitcoin, &rewound).await?;
    assert_eq!(store.cursor(ParentChain::Bitcoin).await?, Some(rewound));
    assert_eq!(store.cursor(ParentChain::Ethereum).await?, None);
    let cursor_log = store.audit_entries("cursor:btc").await?;
    assert_eq!(cursor_log.len(), 2);
    assert_eq!(cursor_log[1].detail["previous"], json!({"height": 105, "block_hash": "a105"}));

    let report = store.verify().await?;
    assert!(report.is_intact(), "{report}");
    // 4 for the first deposit, 1 for the second, 2 cursor moves.
    assert_eq!(report.rows_intact, 7);
    db.finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn reorged_deposit_is_dropped_then_observed_again_in_its_new_block() -> TestResult {
    let _serial = common::serial().await;
    let db = TestDatabase::create("reorg").await?;
    let store = db.store().await?;
    let facts = btc_facts(0x33, 0, 70_000);
    let id = facts.id();

    store.record_observed(&facts, 100, "a100").await?;
    assert_eq!(store.mark_dropped(&id, "block a100 replaced by b100").await?, Transition::Applied);
    assert_eq!(store.mark_dropped(&id, "again").await?, Transition::Unchanged);
    assert!(store.pending().await?.is_empty());
    assert!(matches!(store.mark_attesting(&id).await, Err(StoreError::InvalidTransition { .. })));

    let moved = store.record_observed(&facts, 101, "b101").await?;
    assert_eq!(
        moved,
        ObserveOutcome::Moved {
            previous_status: DepositStatus::Dropped,
            previous_block_height: 100,
            previous_block_hash: "a100".to_owned()
        }
    );
    let pending = store.pending().await?;
    assert_eq!((pending.len(), pending[0].observation.block_height, pending[0].reason.as_deref()), (1, 101, None));

    // The same id with other facts is never a new observation: audited, skipped, the stored
    // deposit unchanged (and the watcher goes on).
    let mut forged = facts.clone();
    forged.amount = Amount::new(70_001);
    let conflict = store.record_observed(&forged, 101, "b101").await?;
    assert!(matches!(&conflict, ObserveOutcome::Conflicting { stored } if **stored == facts), "{conflict:?}");
    let kept = store.deposit(&id).await?.ok_or_else(|| anyhow::anyhow!("{id} vanished"))?;
    assert_eq!(kept.observation.facts, facts);
    let audited = store.audit_entries(id.as_str()).await?;
    assert!(
        audited.iter().any(|entry| entry.kind == "deposit.conflict" && entry.detail["observed"]["amount"] == "70001"),
        "{audited:?}"
    );

    // Rejections are recorded once, with their reason.
    let tx_id = "44".repeat(32);
    assert!(store.record_rejected(ParentChain::Bitcoin, &tx_id, 2, "memo is not a ferry1 address").await?);
    assert!(!store.record_rejected(ParentChain::Bitcoin, &tx_id, 2, "memo is not a ferry1 address").await?);
    let rejected = store.audit_entries(&format!("btc:{tx_id}:2")).await?;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].detail["reason"], "memo is not a ferry1 address");
    assert_eq!(store.counts().await?.rejections, 1);

    let kinds: Vec<String> = store.audit_entries(id.as_str()).await?.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [kind::DEPOSIT_OBSERVED, kind::DEPOSIT_DROPPED, kind::DEPOSIT_REOBSERVED, kind::DEPOSIT_CONFLICT]
    );
    assert!(store.verify().await?.is_intact());
    db.finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn observing_the_same_deposit_twice_keeps_one_row_and_one_audit_entry() -> TestResult {
    let _serial = common::serial().await;
    let db = TestDatabase::create("idempotent").await?;
    let store = db.store().await?;
    let facts = btc_facts(0x55, 3, 10_000);

    assert_eq!(store.record_observed(&facts, 200, "c200").await?, ObserveOutcome::New);
    assert_eq!(
        store.record_observed(&facts, 200, "c200").await?,
        ObserveOutcome::AlreadyKnown(DepositStatus::Observed)
    );
    // And from several writers at once (two relayer tasks rescanning the same block).
    let other = btc_facts(0x56, 0, 10_000);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, other) = (store.clone(), other.clone());
        tasks.push(tokio::spawn(async move { store.record_observed(&other, 201, "c201").await }));
    }
    let mut new = 0;
    for task in tasks {
        match task.await?? {
            ObserveOutcome::New => new += 1,
            ObserveOutcome::AlreadyKnown(DepositStatus::Observed) => {}
            outcome => anyhow::bail!("unexpected {outcome:?}"),
        }
    }
    assert_eq!(new, 1);

    let mut connection = db.connection().await?;
    assert_eq!(scalar_i64(&mut connection, "SELECT count(*) FROM relayer_deposits").await?, 2);
    assert_eq!(store.audit_entries(facts.id().as_str()).await?.len(), 1);
    assert_eq!(store.audit_entries(other.id().as_str()).await?.len(), 1);
    connection.close().await?;
    db.finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_rows_cannot_be_updated_deleted_or_truncated() -> TestResult {
    let _serial = common::serial().await;
    let db = TestDatabase::create("append_only").await?;
    let store = db.store().await?;
    let entry = store.append("test.event", "subject-1", &json!({"n": 1})).await?;
    let mut connection = db.connection().await?;

    for (statement, operation) in [
        ("UPDATE relayer_audit SET detail = '{\"n\": 2}'", "UPDATE"),
        ("UPDATE relayer_audit SET kind = 'x' WHERE false", "UPDATE"),
        ("DELETE FROM relayer_audit", "DELETE"),
        ("TRUNCATE relayer_audit", "TRUNCATE"),
    ] {
        let refused = sqlx::query(statement).execute(&mut connection).await;
        let message = match refused {
            Err(sqlx::Error::Database(error)) => error.message().to_owned(),
            other => anyhow::bail!("`{statement}` was not refused: {other:?}"),
        };
        assert_eq!(message, format!("relayer_audit is append-only: {operation} refused"), "{statement}");
    }
    assert_eq!(scalar_i64(&mut connection, "SELECT count(*) FROM relayer_audit").await?, 1);

    // The time hashed (formatted in Rust) is the time PostgreSQL stores.
    let stored: String = sqlx::query_scalar(
        "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM relayer_audit WHERE seq = $1",
    )
    .bind(entry.seq)
    .fetch_one(&mut connection)
    .await?;
    assert_eq!(stored, entry.at_rfc3339());
    assert!(store.verify().await?.is_intact());
    connection.close().await?;
    db.finish().await
}

/// Runs `statement` with the append-only trigger disabled, as an attacker with the table owner's
/// rights would.
async fn behind_the_triggers_back(connection: &mut PgConnection, statement: &str, seq: i64) -> TestResult {
    let mut tx = connection.begin().await?;
    sqlx::query("ALTER TABLE relayer_audit DISABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    let changed = sqlx::query(statement).bind(seq).execute(&mut *tx).await?.rows_affected();
    sqlx::query("ALTER TABLE relayer_audit ENABLE TRIGGER relayer_audit_append_only").execute(&mut *tx).await?;
    tx.commit().await?;
    assert_eq!(changed, 1, "{statement}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_exactly_the_row_altered_behind_the_triggers_back() -> TestResult {
    let _serial = common::serial().await;
    let db = TestDatabase::create("tamper").await?;
    let store = db.store().await?;
    let mut entries = Vec::new();
    for n in 0..6 {
        entries.push(store.append("test.payment", &format!("wd-{n}"), &json!({"amount": "100", "n": n})).await?);
    }
    let intact = store.verify().await?;
    assert!(intact.is_intact(), "{intact}");
    assert_eq!((intact.rows_intact, intact.head), (6, entries.last().map(|e| (e.seq, e.hash))));

    // Alter one row's detail.
    let victim = &entries[3];
    let mut connection = db.connection().await?;
    behind_the_triggers_back(
        &mut connection,
        "UPDATE relayer_audit SET detail = '{\"amount\": \"999\", \"n\": 3}' WHERE seq = $1",
        victim.seq,
    )
    .await?;
    let report = store.verify().await?;
    let broken = report.first_broken.as_ref().ok_or_else(|| anyhow::anyhow!("tampering not detected: {report}"))?;
    assert_eq!((broken.seq, broken.subject.as_str()), (victim.seq, "wd-3"), "{report}");
    match &broken.problem {
        Break::Content { expected, stored } => {
            assert_eq!(stored.as_slice(), victim.hash.as_slice());
            assert_ne!(expected, &victim.hash);
        }
        other => anyhow::bail!("expected a content break, got {other}"),
    }
    assert_eq!(report.rows_intact, 3);
    assert!(report.to_string().contains(&format!("row seq {}", victim.seq)), "{report}");

    // Restored to the original bytes, the chain verifies again: the check is exact.
    behind_the_triggers_back(
        &mut connection,
        "UPDATE relayer_audit SET detail = '{\"amount\": \"100\", \"n\": 3}' WHERE seq = $1",
        victim.seq,
    )
    .await?;
    assert!(store.verify().await?.is_intact());

    // A removed row breaks the link of the row after it.
    behind_the_triggers_back(&mut connection, "DELETE FROM relayer_audit WHERE seq = $1", entries[1].seq).await?;
    let report = store.verify().await?;
    let broken = report.first_broken.as_ref().ok_or_else(|| anyhow::anyhow!("deletion not detected: {report}"))?;
    assert_eq!(broken.seq, entries[2].seq, "{report}");
    assert!(
        matches!(&broken.problem, Break::Link { expected: Some(e), stored: Some(s) } if *e == entries[0].hash && s.as_slice() == entries[1].hash.as_slice()),
        "{report}"
    );
    connection.close().await?;
    db.finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_from_many_tasks_form_one_valid_chain() -> TestResult {
    let _serial = common::serial().await;
    const STORES: usize = 3;
    const TASKS: usize = 12;
    const APPENDS: usize = 20;
    let db = TestDatabase::create("concurrent").await?;
    // Separate pools stand for separate relayer processes on one database.
    let mut stores = Vec::new();
    for _ in 0..STORES {
        stores.push(db.store().await?);
    }
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = stores[task % STORES].clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..APPENDS {
                store.append("test.concurrent", &format!("task-{task}"), &json!({"task": task, "n": n})).await?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }

    let report = stores[0].verify().await?;
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.rows_intact, u64::try_from(TASKS * APPENDS)?);
    let mut connection = db.connection().await?;
    // No fork: every hash is the predecessor of at most one row, and exactly one row starts the chain.
    let links = scalar_i64(&mut connection, "SELECT count(DISTINCT prev_hash) FROM relayer_audit").await?;
    let roots = scalar_i64(&mut connection, "SELECT count(*) FROM relayer_audit WHERE prev_hash IS NULL").await?;
    assert_eq!((links, roots), (i64::try_from(TASKS * APPENDS - 1)?, 1));
    for task in 0..TASKS {
        let numbers: Vec<serde_json::Value> = stores[0]
            .audit_entries(&format!("task-{task}"))
            .await?
            .into_iter()
            .map(|e| e.detail["n"].clone())
            .collect();
        assert_eq!(numbers, (0..APPENDS).map(|n| json!(n)).collect::<Vec<_>>());
    }
    connection.close().await?;
    db.finish().await
}

fn process_running(pid: u32) -> bool {
    // A zombie still has a /proc entry, but `stop` reaps the postmaster it stops.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread")]
async fn private_cluster_serves_databases_and_stops_when_dropped() -> TestResult {
    let _serial = common::serial().await;
    // The harness itself, whatever DATABASE_URL says.
    let postgres = Postgres::start_temporary().await?;
    let pid = postgres.pid().ok_or_else(|| anyhow::anyhow!("no postmaster"))?;
    let dir = postgres.dir().to_path_buf();
    assert!(process_running(pid));
    assert!(postgres.data_dir().starts_with(&dir));
    let url = postgres.create_database("harness").await?;
    assert_eq!(postgres.create_database("harness").await?, url, "creating twice is idempotent");
    let mut connection = PgConnection::connect(&url).await?;
    let listen: String = sqlx::query_scalar("SHOW listen_addresses").fetch_one(&mut connection).await?;
    assert_eq!(listen, "127.0.0.1");
    connection.close().await?;
    assert!(postgres.create_database("Robert'); DROP TABLE x;--").await.is_err());

    let port = postgres.port();
    drop(postgres);
    assert!(!process_running(pid), "postmaster {pid} still running");
    assert!(std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_err());
    assert!(!dir.exists(), "{} left behind", dir.display());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn scratch_databases_are_unique_per_run_and_dropped_with_their_value() -> TestResult {
    let _serial = common::serial().await;
    let server = PgServer::from_env_or_start(None).await?;
    let exists = |name: String| {
        let url = server.url();
        async move {
            let mut connection = PgConnection::connect(&url).await?;
            let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut connection)
                .await?;
            TestResult::Ok(found.is_some())
        }
    };
    let first = server.scratch_database("scratch_probe").await?;
    let second = server.scratch_database("scratch_probe").await?;
    assert_ne!(first.name(), second.name(), "two runs of one prefix share a database");
    assert!(first.name().starts_with("scratch_probe_"), "{}", first.name());
    let (first_name, second_name) = (first.name().to_owned(), second.name().to_owned());
    assert!(exists(first_name.clone()).await? && exists(second_name.clone()).await?);

    // Rows written in one are not seen in the other.
    let mut connection = PgConnection::connect(first.url()).await?;
    sqlx::query("CREATE TABLE marker (n int)").execute(&mut connection).await?;
    connection.close().await?;
    let mut connection = PgConnection::connect(second.url()).await?;
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'marker'")
        .fetch_one(&mut connection)
        .await?;
    assert_eq!(tables, 0, "the second scratch database sees the first one's table");
    // Dropping the value drops the database, open connections included.
    let _open = connection;
    drop(second);
    assert!(!exists(second_name).await?, "a dropped scratch database is still there");
    first.remove().await?;
    assert!(!exists(first_name).await?, "a removed scratch database is still there");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocks_deposits_are_recorded_together_and_a_conflict_among_them_is_skipped() -> TestResult {
    let _serial = common::serial().await;
    let db = TestDatabase::create("block").await?;
    let store = db.store().await?;
    // The third is paid by the block's coinbase: it is kept as such (attested only when mature).
    let block =
        [(btc_facts(0x55, 0, 10_000), false), (btc_facts(0x55, 1, 20_000), false), (btc_facts(0x56, 0, 30_000), true)];
    assert_eq!(store.record_observed_in_block(&block, 300, "d300").await?, vec![ObserveOutcome::New; 3]);
    let pending = store.pending().await?;
    assert_eq!(pending.len(), 3);
    for (facts, coinbase) in &block {
        let record = pending
            .iter()
            .find(|record| record.observation.facts == *facts)
            .ok_or_else(|| anyhow::anyhow!("{} not pending", facts.id()))?;
        assert_eq!(record.observation.coinbase, *coinbase, "{}", facts.id());
    }
    let audited: usize = {
        let mut total = 0;
        for (facts, _) in &block {
            total += store.audit_entries(facts.id().as_str()).await?.len();
        }
        total
    };
    assert_eq!(audited, 3, "one audit row per deposit");
    // Seen again: nothing changes, nothing is appended.
    assert_eq!(
        store.record_observed_in_block(&block, 300, "d300").await?,
        vec![ObserveOutcome::AlreadyKnown(DepositStatus::Observed); 3]
    );
    // One deposit that conflicts with what is stored is audited and skipped; the new one beside
    // it is recorded (a conflict never stops a watcher).
    let mut forged = block[1].0.clone();
    forged.amount = Amount::new(20_001);
    let newcomer = btc_facts(0x57, 0, 40_000);
    let outcomes = store.record_observed_in_block(&[(newcomer.clone(), false), (forged, false)], 301, "e301").await?;
    assert!(matches!(outcomes.as_slice(), [ObserveOutcome::New, ObserveOutcome::Conflicting { .. }]), "{outcomes:?}");
    assert!(store.deposit(&newcomer.id()).await?.is_some());
    assert_eq!(store.pending().await?.len(), 4);
    assert!(store.verify().await?.is_intact());
    db.finish().await
}

/// SQLSTATE and message of a statement the database must refuse.
async fn refused(connection: &mut PgConnection, statement: &str) -> TestResult<(String, String)> {
    match sqlx::query(statement).execute(connection).await {
        Err(sqlx::Error::Database(error)) => {
            Ok((error.code().map(|code| code.into_owned()).unwrap_or_default(), error.message().to_owned()))
        }
        other => anyhow::bail!("`{statement}` was not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relayer_role_keeps_its_state_but_cannot_change_its_audit_log_or_lift_the_trigger() -> TestResult {
    let _serial = common::serial().await;
    let db = TestDatabase::create("role").await?;
    // Migrated as the owner; the relayer connects as its role, which runs no migration.
    let service_url = ferry_devnet::postgres::migrate_for_service(db.url(), ferry_relayer::store::ROLE).await?;
    let store = Store::connect(&service_url).await?;
    let mut service = PgConnection::connect(&service_url).await?;
    assert_eq!(scalar_text(&mut service, "SELECT current_user::text").await?, "ferry_relayer");

    // Everything the relayer does to its state: cursors, a deposit's lifecycle, the audit log.
    store.set_cursor(ParentChain::Bitcoin, &Cursor { height: 100, block_hash: "a100".to_owned() }).await?;
    store.set_cursor(ParentChain::Bitcoin, &Cursor { height: 101, block_hash: "a101".to_owned() }).await?;
    let facts = btc_facts(0x21, 0, 70_000);
    assert_eq!(store.record_observed(&facts, 100, "a100").await?, ObserveOutcome::New);
    assert_eq!(store.mark_attesting(&facts.id()).await?, 1);
    assert_eq!(store.mark_attested(&facts.id(), "tx-1").await?, Transition::Applied);
    store.append("test.event", "subject-1", &json!({"n": 1})).await?;
    let rows = scalar_i64(&mut service, "SELECT count(*) FROM relayer_audit").await?;

    // It may not change or remove audit rows (no grant), nor lift the append-only trigger, nor
    // change the tables (it owns none of them).
    for statement in ["UPDATE relayer_audit SET kind = 'x'", "DELETE FROM relayer_audit", "TRUNCATE relayer_audit"] {
        let (code, message) = refused(&mut service, statement).await?;
        assert_eq!((code.as_str(), message.as_str()), ("42501", "permission denied for table relayer_audit"));
    }
    for statement in [
        "DROP TRIGGER relayer_audit_append_only ON relayer_audit",
        "ALTER TABLE relayer_audit DISABLE TRIGGER relayer_audit_append_only",
        "ALTER TABLE relayer_audit DISABLE TRIGGER ALL",
        "ALTER TABLE relayer_audit ADD COLUMN note text",
        "ALTER TABLE relayer_deposits DROP CONSTRAINT relayer_deposits_pkey",
        "DROP TABLE relayer_audit",
        "DROP FUNCTION relayer_audit_refuse_change() CASCADE",
    ] {
        let (code, message) = refused(&mut service, statement).await?;
        assert_eq!(code, "42501", "{statement}: {message}");
        assert!(message.starts_with("must be owner of"), "{statement}: {message}");
    }
    assert_eq!(scalar_i64(&mut service, "SELECT count(*) FROM relayer_audit").await?, rows);
    assert!(store.verify().await?.is_intact());
    service.close().await?;
    store.pool().close().await;
    db.finish().await
}

async fn scalar_text(connection: &mut PgConnection, sql: &str) -> TestResult<String> {
    Ok(sqlx::query_scalar(sql).fetch_one(connection).await?)
}
