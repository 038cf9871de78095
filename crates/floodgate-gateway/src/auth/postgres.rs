//! Key records in PostgreSQL (schema in `migrations/postgres`), shared by every gateway
//! using the database. Each insert and revoke also moves the change counter and sends a
//! notification on [`KEYS_CHANNEL`], so gateways drop their key caches at once.

use futures::stream::{BoxStream, StreamExt};
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};

use super::{KeyRecord, KeyStore, StoreError};

/// The `LISTEN`/`NOTIFY` channel of key changes (delivered when the change commits).
pub const KEYS_CHANNEL: &str = "floodgate_keys";

pub struct PgKeyStore {
    pool: PgPool,
}

impl PgKeyStore {
    /// Over an open, migrated pool (shared with the other stores).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Moves the change counter and notifies listeners, inside the change's transaction.
async fn bump_epoch(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE key_epoch SET epoch = epoch + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(KEYS_CHANNEL)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn record(row: &sqlx::postgres::PgRow) -> Result<KeyRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let (scopes, limits) = super::decode_columns(
        &id,
        &row.try_get::<String, _>("scopes")?,
        &row.try_get::<String, _>("limits")?,
    )?;
    Ok(KeyRecord {
        id,
        prefix: row.try_get("prefix")?,
        name: row.try_get("name")?,
        tenant: row.try_get("tenant")?,
        segment: row.try_get("segment")?,
        scopes,
        limits,
        budget_usd: row.try_get("budget_usd")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[async_trait::async_trait]
impl KeyStore for PgKeyStore {
    async fn insert(&self, r: &KeyRecord, hash: &[u8; 32]) -> Result<(), StoreError> {
        let (scopes, limits) = super::encode_columns(r)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, prefix, hash, name, tenant, segment, scopes, limits,
                                   budget_usd, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&r.id)
        .bind(&r.prefix)
        .bind(&hash[..])
        .bind(&r.name)
        .bind(&r.tenant)
        .bind(&r.segment)
        .bind(scopes)
        .bind(limits)
        .bind(r.budget_usd)
        .bind(r.created_at)
        .bind(r.revoked_at)
        .execute(&mut *tx)
        .await?;
        bump_epoch(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<Option<(KeyRecord, [u8; 32])>, StoreError> {
        let Some(row) = sqlx::query("SELECT * FROM api_keys WHERE prefix = $1")
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let rec = record(&row)?;
        let hash = super::decode_hash(&rec.id, row.try_get("hash")?)?;
        Ok(Some((rec, hash)))
    }

    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record)
            .collect()
    }

    async fn revoke(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump_epoch(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn epoch(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT epoch FROM key_epoch WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn subscribe(&self) -> Result<Option<BoxStream<'static, ()>>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(KEYS_CHANNEL).await?;
        // An error item is a dropped connection, which the listener re-opens on the next
        // poll. It is not a change: a notification missed meanwhile is caught by the
        // epoch poll once the store is readable again, and counting errors as changes
        // would empty the key cache for as long as the store is down. Errors are paced,
        // so a store that stays down is not redialled in a tight loop.
        Ok(Some(Box::pin(listener.into_stream().filter_map(
            |item| async move {
                match item {
                    Ok(_) => Some(()),
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        None
                    }
                }
            },
        ))))
    }
}
