//! Key records in SQLite: the embedded default, one file shared by the server and the
//! `floodgate keys` command (WAL mode, so the CLI can write while the server reads).
//! Schema in `migrations/sqlite`.

use std::path::Path;

use sqlx::{Row, SqlitePool};

use super::{KeyRecord, KeyStore, StoreError};

pub struct SqliteKeyStore {
    pool: SqlitePool,
}

impl SqliteKeyStore {
    /// Opens (creating and migrating if needed) the state database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::from_pool(crate::db::open_sqlite(path).await?))
    }

    /// Over an open, migrated pool (shared with the other stores).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

/// Every change to the keys moves the counter, in the change's own transaction.
const BUMP_EPOCH: &str = "UPDATE key_epoch SET epoch = epoch + 1 WHERE id = 1";

fn record(row: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, StoreError> {
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
impl KeyStore for SqliteKeyStore {
    async fn insert(&self, r: &KeyRecord, hash: &[u8; 32]) -> Result<(), StoreError> {
        let (scopes, limits) = super::encode_columns(r)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, prefix, hash, name, tenant, segment, scopes, limits,
                                   budget_usd, created_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        sqlx::query(BUMP_EPOCH).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<Option<(KeyRecord, [u8; 32])>, StoreError> {
        let Some(row) = sqlx::query("SELECT * FROM api_keys WHERE prefix = ?")
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
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(BUMP_EPOCH).execute(&mut *tx).await?;
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
}
