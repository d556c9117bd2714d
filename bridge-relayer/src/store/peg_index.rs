//! The relayer's own index of the Bitcoin peg's outputs (`relayer_peg_outputs`): every output
//! paying the peg script in a scanned block, and the block that spent it. It answers "what did
//! the peg hold at height h" for reserves snapshots from this member's node alone, independently
//! of the sidechain's reserve UTXO list, so coins spent behind the federation's back (or never
//! known to the chain) show.
//!
//! Rewinding is part of scanning: before a block is indexed again, everything above the height
//! the scan continues from is undone ([`Store::unwind_peg_index`]), so a reorganisation, or a
//! crash between indexing and storing the cursor, never leaves a stale branch's outputs behind.

use super::{Store, StoreError, database, height_to_db};

/// One block's effect on the peg: outputs created (txid, vout, sat) and outpoints spent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PegFlows {
    /// Outputs paying the peg script.
    pub created: Vec<(String, u32, u64)>,
    /// Every outpoint the block's transactions spend (those that are not the peg's change nothing).
    pub spent: Vec<(String, u32)>,
}

impl Store {
    /// Forgets what blocks above `height` did to the peg: their outputs are removed and their
    /// spends undone.
    ///
    /// # Errors
    /// Database errors.
    pub async fn unwind_peg_index(&self, height: u64) -> Result<(), StoreError> {
        let height = height_to_db("peg index height", height)?;
        let mut tx = self.pool.begin().await.map_err(database("beginning a transaction"))?;
        sqlx::query("DELETE FROM relayer_peg_outputs WHERE height > $1")
            .bind(height)
            .execute(&mut *tx)
            .await
            .map_err(database("unwinding the peg index"))?;
        sqlx::query("UPDATE relayer_peg_outputs SET spent_height = NULL WHERE spent_height > $1")
            .bind(height)
            .execute(&mut *tx)
            .await
            .map_err(database("unwinding the peg index"))?;
        tx.commit().await.map_err(database("committing the peg index"))
    }

    /// Records block `height`'s [`PegFlows`] in one database transaction: its outputs first, then
    /// its spends (an output spent in its own block is both). Idempotent.
    ///
    /// # Errors
    /// Database errors; values beyond `i64`.
    pub async fn index_peg_block(&self, height: u64, flows: &PegFlows) -> Result<(), StoreError> {
        if flows.created.is_empty() && flows.spent.is_empty() {
            return Ok(());
        }
        let height = height_to_db("peg index height", height)?;
        let mut tx = self.pool.begin().await.map_err(database("beginning a transaction"))?;
        for (txid, vout, sat) in &flows.created {
            sqlx::query(
                "INSERT INTO relayer_peg_outputs (txid, vout, amount_sat, height) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (txid, vout) DO UPDATE SET amount_sat = EXCLUDED.amount_sat, height = EXCLUDED.height, \
                 spent_height = NULL",
            )
            .bind(txid)
            .bind(i32::try_from(*vout).map_err(|_| StoreError::OutOfRange { what: "vout", value: u64::from(*vout) })?)
            .bind(i64::try_from(*sat).map_err(|_| StoreError::OutOfRange { what: "output value", value: *sat })?)
            .bind(height)
            .execute(&mut *tx)
            .await
            .map_err(database("indexing a peg output"))?;
        }
        if !flows.spent.is_empty() {
            let txids: Vec<&str> = flows.spent.iter().map(|(txid, _)| txid.as_str()).collect();
            let vouts: Vec<i32> =
                flows.spent.iter().map(|(_, vout)| i32::try_from(*vout).unwrap_or(i32::MAX)).collect();
            sqlx::query(
                "UPDATE relayer_peg_outputs AS o SET spent_height = $1 \
                 FROM unnest($2::text[], $3::integer[]) AS s(txid, vout) \
                 WHERE o.txid = s.txid AND o.vout = s.vout AND o.spent_height IS NULL",
            )
            .bind(height)
            .bind(&txids)
            .bind(&vouts)
            .execute(&mut *tx)
            .await
            .map_err(database("indexing peg spends"))?;
        }
        tx.commit().await.map_err(database("committing the peg index"))
    }

    /// Which of `outputs` (txid, vout) the peg held unspent at `height` by this relayer's scan.
    ///
    /// # Errors
    /// Database errors.
    pub async fn peg_outputs_held_at(
        &self,
        outputs: &[(String, u32)],
        height: u64,
    ) -> Result<std::collections::BTreeSet<(String, u32)>, StoreError> {
        let height = height_to_db("peg index height", height)?;
        let txids: Vec<&str> = outputs.iter().map(|(txid, _)| txid.as_str()).collect();
        let vouts: Vec<i32> = outputs.iter().map(|(_, vout)| i32::try_from(*vout).unwrap_or(i32::MAX)).collect();
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "SELECT o.txid, o.vout FROM relayer_peg_outputs o \
             JOIN UNNEST($2::text[], $3::integer[]) AS asked(txid, vout) ON o.txid = asked.txid AND o.vout = asked.vout \
             WHERE o.height <= $1 AND (o.spent_height IS NULL OR o.spent_height > $1)",
        )
        .bind(height)
        .bind(&txids)
        .bind(&vouts)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading the peg's outputs"))?;
        Ok(rows.into_iter().map(|(txid, vout)| (txid, u32::try_from(vout).unwrap_or_default())).collect())
    }

    /// What the peg held at `height` by this relayer's scan: the outputs created at or below it
    /// and not spent at or below it, in sat.
    ///
    /// # Errors
    /// Database errors.
    pub async fn peg_holdings_at(&self, height: u64) -> Result<u64, StoreError> {
        let height = height_to_db("peg index height", height)?;
        let sum: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(amount_sat), 0)::bigint FROM relayer_peg_outputs \
             WHERE height <= $1 AND (spent_height IS NULL OR spent_height > $1)",
        )
        .bind(height)
        .fetch_one(&self.pool)
        .await
        .map_err(database("summing the peg's outputs"))?;
        Ok(u64::try_from(sum).unwrap_or(0))
    }
}
