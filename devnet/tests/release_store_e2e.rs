//! The relayer's release rows against a real PostgreSQL (a private cluster, or the server
//! `$DATABASE_URL` names with a database dropped at the end): every lifecycle transition, the
//! ones refused because they would rewrite history, and the audit entries each one appends.

use ferry_devnet::postgres::PgServer;
use ferry_relayer::store::audit::kind;
use ferry_relayer::store::{Inclusion, ReleaseStatus, ReleaseSummary, Store, StoreError};
use ferry_types::{Amount, Denom, ParentChain};

type TestResult = anyhow::Result<()>;

fn summary(batch: u64) -> ReleaseSummary {
    ReleaseSummary { batch, chain: ParentChain::Ethereum, asset: Denom::wei(), items: 2, total: Amount::new(u128::MAX) }
}

fn block(tx: &str, height: u64, hash: &str) -> Inclusion {
    Inclusion { parent_tx: tx.to_owned(), block_height: height, block_hash: hash.to_owned() }
}

#[tokio::test(flavor = "multi_thread")]
async fn release_rows_follow_their_lifecycle_and_refuse_to_rewrite_history() -> TestResult {
    let server = PgServer::from_env_or_start(None).await?;
    let database = server.scratch_database("release_store").await?;
    let store = Store::connect(database.url()).await?;
    let subject = "batch:7";

    // A failure before any intent creates the row once; the same reason again logs nothing.
    assert!(store.record_release_failure(&summary(7), "vault refuses: BadSignature").await?);
    assert!(!store.record_release_failure(&summary(7), "vault refuses: BadSignature").await?);
    assert_eq!(store.release(7).await?.map(|r| (r.status, r.attempts)), Some((ReleaseStatus::Delivering, 0)));

    assert_eq!(store.mark_release_delivering(&summary(7), "0xaa").await?, 1);
    store.mark_release_broadcast(7, "0xaa").await?;
    // Broadcast, not in a block: confirming or attesting is refused.
    assert!(matches!(store.mark_release_confirmed(7, 2).await, Err(StoreError::InvalidReleaseTransition { .. })));
    assert!(matches!(store.mark_release_attesting(7).await, Err(StoreError::InvalidReleaseTransition { .. })));
    // Another relayer's transaction is what the block holds.
    store.mark_release_included(&summary(7), &block("0xbb", 10, "h10")).await?;
    let record = store.release(7).await?.ok_or_else(|| anyhow::anyhow!("row"))?;
    assert_eq!(record.inclusion(), Some(block("0xbb", 10, "h10")));
    // In a block: delivering again is refused.
    assert!(matches!(
        store.mark_release_delivering(&summary(7), "0xcc").await,
        Err(StoreError::InvalidReleaseTransition { .. })
    ));
    store.mark_release_reorged(7, Some("h10b")).await?;
    assert_eq!(store.release(7).await?.and_then(|r| r.block), None);
    store.mark_release_included(&summary(7), &block("0xbb", 11, "h11")).await?;
    store.mark_release_confirmed(7, 2).await?;
    assert_eq!(store.mark_release_attesting(7).await?, 1);
    assert_eq!(store.mark_release_attesting(7).await?, 2);
    assert!(store.mark_release_attested(7, "0xbb", Some("ABCD")).await?);
    assert!(!store.mark_release_attested(7, "0xbb", None).await?);
    assert!(matches!(store.mark_release_refused(7, "no").await, Err(StoreError::InvalidReleaseTransition { .. })));
    assert!(store.mark_release_settled(7, Some("0xbb")).await?);
    assert!(!store.mark_release_settled(7, Some("0xbb")).await?);
    assert!(matches!(
        store.mark_release_attested(7, "0xbb", None).await,
        Err(StoreError::InvalidReleaseTransition { .. })
    ));
    let record = store.release(7).await?.ok_or_else(|| anyhow::anyhow!("row"))?;
    assert_eq!(record.summary, summary(7));
    assert_eq!(record.attestation_tx.as_deref(), Some("ABCD"));
    assert!(store.unsettled_releases().await?.is_empty());

    // Found in a block without ever delivering (another relayer did); refused attestation.
    store.mark_release_included(&summary(8), &block("0xdd", 3, "h3")).await?;
    store.mark_release_confirmed(8, 5).await?;
    store.mark_release_attesting(8).await?;
    store.mark_release_refused(8, "sidechain refused: not a member").await?;
    let unsettled = store.unsettled_releases().await?;
    assert_eq!(
        unsettled.iter().map(|r| (r.summary.batch, r.status)).collect::<Vec<_>>(),
        [(8, ReleaseStatus::Refused)]
    );
    let counts = store.release_counts().await?;
    assert!(counts.contains(&(ParentChain::Ethereum, ReleaseStatus::Settled, 1)), "{counts:?}");
    assert!(counts.contains(&(ParentChain::Ethereum, ReleaseStatus::Refused, 1)), "{counts:?}");

    let kinds: Vec<String> = store.audit_entries(subject).await?.into_iter().map(|entry| entry.kind).collect();
    assert_eq!(
        kinds,
        [
            kind::RELEASE_DELIVERY_FAILED,
            kind::RELEASE_DELIVERING,
            kind::RELEASE_BROADCAST,
            kind::RELEASE_INCLUDED,
            kind::RELEASE_REORGED,
            kind::RELEASE_INCLUDED,
            kind::RELEASE_CONFIRMED,
            kind::RELEASE_ATTESTING,
            kind::RELEASE_ATTESTING,
            kind::RELEASE_ATTESTED,
            kind::RELEASE_SETTLED,
        ]
    );
    let included = store.audit_entries(subject).await?;
    assert!(included.iter().any(|e| e.kind == kind::RELEASE_INCLUDED && e.detail["delivered_by_us"] == false));
    assert!(store.verify().await?.is_intact());
    drop(store);
    database.remove().await?;
    Ok(())
}
