//! Key records in SQLite: the embedded default, one file shared by the server and the
//! `floodgate keys` command (WAL mode, so the CLI can write while the server reads).

use std::path::Path;
use std::str::FromStr;

use sqlx::{Row, SqlitePool};

use super::{KeyLimits, KeyRecord, KeyStore, Scope, StoreError};

pub struct SqliteKeyStore {
    pool: SqlitePool,
}

impl SqliteKeyStore {
    /// Opens (creating if needed) the database at `path` and its `api_keys` table.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let pool = crate::db::open_sqlite(path).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY,
                prefix TEXT NOT NULL UNIQUE,
                hash BLOB NOT NULL,
                name TEXT NOT NULL,
                tenant TEXT NOT NULL,
                segment TEXT NOT NULL,
                scopes TEXT NOT NULL,
                limits TEXT NOT NULL,
                budget_usd REAL,
                created_at INTEGER NOT NULL,
                revoked_at INTEGER
            )",
        )
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }
}

fn record(row: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |why: String| StoreError::Corrupt {
        id: id.clone(),
        why,
    };
    let scopes: String = row.try_get("scopes")?;
    let scopes = scopes
        .split_whitespace()
        .map(Scope::from_str)
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    let limits: String = row.try_get("limits")?;
    let limits: KeyLimits = serde_json::from_str(&limits).map_err(|e| corrupt(e.to_string()))?;
    Ok(KeyRecord {
        id: id.clone(),
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
        let scopes = r
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let limits = serde_json::to_string(&r.limits).map_err(|e| StoreError::Corrupt {
            id: r.id.clone(),
            why: e.to_string(),
        })?;
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
        .execute(&self.pool)
        .await?;
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
        let hash: Vec<u8> = row.try_get("hash")?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| StoreError::Corrupt {
            id: rec.id.clone(),
            why: "hash is not 32 bytes".into(),
        })?;
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
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}
