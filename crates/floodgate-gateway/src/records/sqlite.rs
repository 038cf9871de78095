//! Decision records and daily usage in the embedded SQLite state database (schema in
//! `migrations/sqlite`). Days are computed by the gateway ([`super::utc_day`]), in UTC.

use crate::config::BudgetPeriod;
use std::path::Path;

use std::collections::HashSet;

use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{stats, AdminRecord, DecisionRecord, MinuteStats, RecordStore, UsageRow};

pub struct SqliteRecordStore {
    pool: SqlitePool,
}

impl SqliteRecordStore {
    /// Opens (creating and migrating if needed) the state database at `path`.
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        Ok(Self::from_pool(crate::db::open_sqlite(path).await?))
    }

    /// Over an open, migrated pool (shared with the other stores).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

/// A usage row already there is added to, never replaced.
const USAGE_CONFLICT: &str = " ON CONFLICT (day, key_id, route, model) DO UPDATE SET
      requests = requests + excluded.requests,
      prompt_tokens = prompt_tokens + excluded.prompt_tokens,
      completion_tokens = completion_tokens + excluded.completion_tokens,
      compute_seconds = compute_seconds + excluded.compute_seconds,
      cost_usd = cost_usd + excluded.cost_usd";

/// Rows per multi-row statement: 7 bound values a decision row (10 a usage row), well
/// under SQLite's limit of 32,766 bound values.
const ROWS_PER_STATEMENT: usize = 500;

/// Inserts the records whose event ids are new, and their usage, in one transaction of a
/// few multi-row statements (not two per record: each statement is a round trip to
/// sqlx's SQLite worker thread). Returns how many were new.
async fn put_all(pool: &SqlitePool, records: &[DecisionRecord]) -> Result<u64, sqlx::Error> {
    if records.is_empty() {
        return Ok(0);
    }
    let json = records
        .iter()
        .map(super::encode)
        .collect::<Result<Vec<_>, _>>()?;
    let mut tx = pool.begin().await?;
    let mut new: HashSet<String> = HashSet::new();
    let rows: Vec<(&DecisionRecord, &String)> = records.iter().zip(&json).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO decisions (event_id, request_id, key_id, tenant, route, created_at, record) ",
        );
        q.push_values(chunk, |mut b, (r, j)| {
            b.push_bind(&r.event_id)
                .push_bind(&r.request_id)
                .push_bind(&r.key_id)
                .push_bind(&r.tenant)
                .push_bind(super::route_of(r))
                .push_bind(r.created_at)
                .push_bind(j.as_str());
        });
        q.push(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
        let inserted: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await?;
        new.extend(inserted);
    }
    let count = new.len() as u64;
    // Within a batch the first record of an event id is the one stored and counted.
    let stored: Vec<&DecisionRecord> = records
        .iter()
        .filter(|r| new.remove(r.event_id.as_str()))
        .collect();
    let usage = super::merged_usage(stored.iter().copied());
    for chunk in usage.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO usage_daily ");
        q.push_values(chunk, |mut b, u| {
            b.push_bind(&u.day)
                .push_bind(&u.key_id)
                .push_bind(&u.tenant)
                .push_bind(&u.route)
                .push_bind(&u.model)
                .push_bind(u.requests as i64)
                .push_bind(u.prompt_tokens as i64)
                .push_bind(u.completion_tokens as i64)
                .push_bind(u.compute_seconds)
                .push_bind(u.cost_usd);
        });
        q.push(USAGE_CONFLICT);
        q.build().execute(&mut *tx).await?;
    }
    add_stats(&mut tx, &stats::rollup(stored.into_iter())).await?;
    tx.commit().await?;
    Ok(count)
}

/// Adds per-minute rollup rows (see [`stats`]), bucket by bucket.
async fn add_stats(
    tx: &mut sqlx::SqliteConnection,
    rows: &[MinuteStats],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(stats::ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(stats::insert_head());
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.minute)
                .push_bind(&r.route)
                .push_bind(&r.model);
            for c in r.totals.counters() {
                b.push_bind(c as i64);
            }
            b.push_bind(r.totals.cost_usd);
            for c in r.totals.latency.iter().chain(&r.totals.ttft) {
                b.push_bind(*c as i64);
            }
        });
        q.push(stats::upsert_tail());
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl RecordStore for SqliteRecordStore {
    async fn put(&self, record: &DecisionRecord) -> Result<bool, sqlx::Error> {
        Ok(put_all(&self.pool, std::slice::from_ref(record)).await? > 0)
    }

    async fn put_batch(&self, records: &[DecisionRecord]) -> Result<u64, sqlx::Error> {
        put_all(&self.pool, records).await
    }

    async fn put_admin(&self, records: &[AdminRecord]) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut new = 0;
        for r in records {
            new += sqlx::query(
                "INSERT INTO admin_events (event_id, time_ms, origin, action, actor, target, detail)
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(&r.event_id)
            .bind(r.time_ms)
            .bind(&r.origin)
            .bind(&r.action.action)
            .bind(&r.action.actor)
            .bind(&r.action.target)
            .bind(r.action.detail.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn admin_since(
        &self,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<AdminRecord>, sqlx::Error> {
        let rows: Vec<super::AdminRow> = sqlx::query_as(
            "SELECT event_id, time_ms, origin, action, actor, target, detail FROM admin_events
             WHERE time_ms >= ? ORDER BY time_ms, event_id LIMIT ?",
        )
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(super::admin_from_row).collect()
    }

    async fn get(&self, id: &str) -> Result<Option<DecisionRecord>, sqlx::Error> {
        if id.is_empty() {
            return Ok(None);
        }
        // Its own event first; else the newest record a client tagged with this id.
        let row = sqlx::query(
            "SELECT event_id, record FROM decisions WHERE event_id = ?1 OR request_id = ?1
             ORDER BY event_id = ?1 DESC, created_at DESC, rowid DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| super::decode(&r.try_get::<String, _>("record")?, r.try_get("event_id")?))
            .transpose()
    }

    async fn get_for_key(
        &self,
        id: &str,
        key_id: &str,
    ) -> Result<Option<DecisionRecord>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT event_id, record FROM decisions
             WHERE (event_id = ?1 OR request_id = ?1) AND key_id = ?2
             ORDER BY event_id = ?1 DESC, created_at DESC, rowid DESC LIMIT 1",
        )
        .bind(id)
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| super::decode(&r.try_get::<String, _>("record")?, r.try_get("event_id")?))
            .transpose()
    }

    async fn spent(
        &self,
        key_id: &str,
        period: BudgetPeriod,
        now: i64,
    ) -> Result<f64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT COALESCE(SUM(cost_usd), 0.0) FROM usage_daily WHERE key_id = ? AND day >= ?",
        )
        .bind(key_id)
        .bind(super::period_start(period, now))
        .fetch_one(&self.pool)
        .await
    }

    async fn stats_since(
        &self,
        from_minute: i64,
        to_minute: i64,
    ) -> Result<Vec<MinuteStats>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT * FROM stats_minute WHERE minute >= ? AND minute < ?
             ORDER BY minute, route, model",
        )
        .bind(from_minute)
        .bind(to_minute)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stats::from_row).collect()
    }

    async fn prune_stats(&self, before_minute: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM stats_minute WHERE minute < ?")
            .bind(before_minute)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn route_records(
        &self,
        route: &str,
        since: i64,
    ) -> Result<Vec<(DecisionRecord, Option<f64>)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT d.event_id AS event_id, d.record AS record,
                (SELECT SUM(f.rating * f.weight) / NULLIF(SUM(f.weight), 0) FROM feedback f
                 WHERE f.request_id = d.event_id AND f.status = 'accepted') AS rating
             FROM decisions d
             WHERE (d.route = ?1
                    OR (json_extract(d.record, '$.route') IS NULL
                        AND substr(d.route, 1, length(?1) + 1) = ?1 || '@'))
               AND d.created_at >= ?2
             ORDER BY d.created_at, d.rowid",
        )
        .bind(route)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let record =
                    super::decode(&r.try_get::<String, _>("record")?, r.try_get("event_id")?)?;
                Ok((record, r.try_get::<Option<f64>, _>("rating")?))
            })
            .collect()
    }

    async fn usage_since(&self, since: &str) -> Result<Vec<UsageRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT * FROM usage_daily WHERE day >= ? ORDER BY day, key_id, route, model",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    day: r.try_get("day")?,
                    key_id: r.try_get("key_id")?,
                    tenant: r.try_get("tenant")?,
                    route: r.try_get("route")?,
                    model: r.try_get("model")?,
                    requests: r.try_get::<i64, _>("requests")?.max(0) as u64,
                    prompt_tokens: r.try_get::<i64, _>("prompt_tokens")?.max(0) as u64,
                    completion_tokens: r.try_get::<i64, _>("completion_tokens")?.max(0) as u64,
                    compute_seconds: r.try_get("compute_seconds")?,
                    cost_usd: r.try_get("cost_usd")?,
                })
            })
            .collect()
    }
}
