//! Feedback and request ownership in PostgreSQL (schema in `migrations/postgres`).

use sqlx::{PgPool, Row};

use super::{FeedbackItem, FeedbackStore};

pub struct PgFeedbackStore {
    pool: PgPool,
}

impl PgFeedbackStore {
    /// Over an open, migrated pool (shared with the other stores).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn item(row: &sqlx::postgres::PgRow) -> Result<FeedbackItem, sqlx::Error> {
    Ok(FeedbackItem {
        id: row.try_get("id")?,
        request_id: row.try_get("request_id")?,
        key_id: row.try_get("key_id")?,
        rating: row.try_get::<i16, _>("rating")?.clamp(-1, 1) as i8,
        correction: row.try_get("correction")?,
        comment: row.try_get("comment")?,
        weight: row.try_get("weight")?,
        status: row.try_get("status")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait::async_trait]
impl FeedbackStore for PgFeedbackStore {
    async fn insert(&self, i: &FeedbackItem, fingerprint: Option<&str>) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO feedback VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(&i.id)
            .bind(&i.request_id)
            .bind(&i.key_id)
            .bind(i16::from(i.rating))
            .bind(&i.correction)
            .bind(&i.comment)
            .bind(fingerprint)
            .bind(i.weight)
            .bind(&i.status)
            .bind(&i.reason)
            .bind(i.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ratings_of(&self, key_id: &str, request_id: &str) -> Result<Vec<i8>, sqlx::Error> {
        let rows: Vec<i16> = sqlx::query_scalar(
            "SELECT rating FROM feedback WHERE key_id = $1 AND request_id = $2 ORDER BY created_at, id",
        )
        .bind(key_id)
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.clamp(-1, 1) as i8).collect())
    }

    async fn count_since(&self, key_id: &str, since: i64) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM feedback WHERE key_id = $1 AND created_at >= $2",
        )
        .bind(key_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.max(0) as u64)
    }

    async fn with_fingerprint(
        &self,
        fingerprint: &str,
        since: i64,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, key_id FROM feedback WHERE fingerprint = $1 AND created_at >= $2
             ORDER BY created_at, id",
        )
        .bind(fingerprint)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("key_id")?)))
            .collect()
    }

    async fn quarantine(&self, ids: &[String], reason: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE feedback SET status = 'quarantined', reason = $1 WHERE id = ANY($2)")
            .bind(reason)
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn history(&self, key_id: &str) -> Result<(u64, u64), sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE status = 'accepted') AS a,
                    COUNT(*) FILTER (WHERE status = 'quarantined') AS q
             FROM feedback WHERE key_id = $1",
        )
        .bind(key_id)
        .fetch_one(&self.pool)
        .await?;
        let a: i64 = row.try_get("a")?;
        let q: i64 = row.try_get("q")?;
        Ok((a.max(0) as u64, q.max(0) as u64))
    }

    async fn list(&self, status: Option<&str>) -> Result<Vec<FeedbackItem>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT * FROM feedback WHERE $1::text IS NULL OR status = $1 ORDER BY created_at, id",
        )
        .bind(status)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(item).collect()
    }
}
