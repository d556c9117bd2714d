//! Kept exit disbursals (`relayer_exits`): each signed disbursal the relayer learnt of, and where
//! broadcasting it stands. Each change appends an audit row (subject `exit:<id>`).

use ferry_types::release::exit::SignedDisbursal;
use serde_json::json;
use sqlx::Row;

use super::audit::{self, kind};
use super::{Store, StoreError, database, height_to_db};

/// States no further step changes.
const FINAL: [&str; 2] = ["dead", "done"];

impl Store {
    /// Keeps `disbursal` (nothing when it is kept already); returns whether it is new.
    ///
    /// # Errors
    /// Database errors.
    pub async fn keep_exit(&self, disbursal: &SignedDisbursal) -> Result<bool, StoreError> {
        let body = serde_json::to_value(disbursal).map_err(|e| StoreError::CorruptRow {
            what: "exit disbursal",
            value: disbursal.exit.to_string(),
            reason: e.to_string(),
        })?;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO relayer_exits (exit_id, lock_height, disbursal) VALUES ($1, $2, $3) \
             ON CONFLICT (exit_id) DO NOTHING",
        )
        .bind(height_to_db("exit id", disbursal.exit)?)
        .bind(i64::from(disbursal.lock_height))
        .bind(&body)
        .execute(&mut *tx)
        .await
        .map_err(database("keeping an exit disbursal"))?
        .rows_affected()
            == 1;
        if inserted {
            let detail = json!({
                "lock_height": disbursal.lock_height,
                "snapshot_height": disbursal.snapshot_height,
                "transactions": disbursal.transactions.len(),
                "payouts": disbursal.payouts.len(),
            });
            audit::append_locked(&mut tx, kind::EXIT_KEPT, &format!("exit:{}", disbursal.exit), &detail).await?;
        }
        tx.commit().await.map_err(database("committing a kept exit disbursal"))?;
        Ok(inserted)
    }

    /// Which of `ids` are kept already.
    ///
    /// # Errors
    /// Database errors.
    pub async fn kept_exit_ids(&self, ids: &[u64]) -> Result<std::collections::BTreeSet<u64>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| height_to_db("exit id", *id)).collect::<Result<_, _>>()?;
        let rows = sqlx::query("SELECT exit_id FROM relayer_exits WHERE exit_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading the kept exit disbursal ids"))?;
        Ok(rows.iter().filter_map(|row| u64::try_from(row.get::<i64, _>("exit_id")).ok()).collect())
    }

    /// The kept disbursals whose broadcasting is not over, with their state, oldest first.
    ///
    /// # Errors
    /// Database errors, or a row that does not decode.
    pub async fn live_exits(&self) -> Result<Vec<(SignedDisbursal, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT disbursal, state FROM relayer_exits WHERE NOT (state = ANY($1)) ORDER BY exit_id")
                .bind(FINAL.as_slice())
                .fetch_all(&self.pool)
                .await
                .map_err(database("reading the kept exit disbursals"))?;
        rows.iter()
            .map(|row| {
                let body: serde_json::Value = row.get("disbursal");
                let disbursal = serde_json::from_value(body).map_err(|e| StoreError::CorruptRow {
                    what: "exit disbursal",
                    value: String::new(),
                    reason: e.to_string(),
                })?;
                Ok((disbursal, row.get::<String, _>("state")))
            })
            .collect()
    }

    /// Records that disbursal `exit` is now in `state`, with `detail` in the audit row.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_exit_state(&self, exit: u64, state: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE relayer_exits SET state = $2, updated_at = now() WHERE exit_id = $1")
            .bind(height_to_db("exit id", exit)?)
            .bind(state)
            .execute(&mut *tx)
            .await
            .map_err(database("updating an exit disbursal"))?;
        let mut detail = detail.clone();
        detail["state"] = json!(state);
        audit::append_locked(&mut tx, kind::EXIT_STATE, &format!("exit:{exit}"), &detail).await?;
        tx.commit().await.map_err(database("committing an exit disbursal's state"))
    }
}
