//! Decision records and daily usage in PostgreSQL (schema in `migrations/postgres`).
//! Records are JSONB; the columns queries filter on are kept beside them. Days are
//! computed by the gateway ([`super::utc_day`]), in UTC.

use std::collections::HashSet;

use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::{stats, AdminRecord, DecisionRecord, MinuteStats, RecordStore, UsageRow};
use crate::config::BudgetPeriod;

pub struct PgRecordStore {
    pool: PgPool,
}

impl PgRecordStore {
    /// Over an open, migrated pool (shared with the other stores).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }
}

const UPSERT_USAGE: &str = "INSERT INTO usage_daily
      SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                           $6::bigint[], $7::bigint[], $8::bigint[], $9::float8[], $10::float8[])
    ON CONFLICT (day, key_id, route, model) DO UPDATE SET
      requests = usage_daily.requests + excluded.requests,
      prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
      completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,
      compute_seconds = usage_daily.compute_seconds + excluded.compute_seconds,
      cost_usd = usage_daily.cost_usd + excluded.cost_usd";

/// Adds usage rows in one statement (the rows arrive as parallel arrays).
async fn add_usage(tx: &mut sqlx::PgConnection, rows: &[UsageRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&UsageRow) -> &str| rows.iter().map(|r| f(r).to_string()).collect::<Vec<_>>();
    let count = |f: fn(&UsageRow) -> u64| rows.iter().map(|r| f(r) as i64).collect::<Vec<_>>();
    let real = |f: fn(&UsageRow) -> f64| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(UPSERT_USAGE)
        .bind(text(|r| &r.day))
        .bind(text(|r| &r.key_id))
        .bind(text(|r| &r.tenant))
        .bind(text(|r| &r.route))
        .bind(text(|r| &r.model))
        .bind(count(|r| r.requests))
        .bind(count(|r| r.prompt_tokens))
        .bind(count(|r| r.completion_tokens))
        .bind(real(|r| r.compute_seconds))
        .bind(real(|r| r.cost_usd))
        .execute(tx)
        .await?;
    Ok(())
}

/// Adds per-minute rollup rows (see [`stats`]), bucket by bucket.
async fn add_stats(tx: &mut sqlx::PgConnection, rows: &[MinuteStats]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(stats::ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(stats::insert_head());
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

/// Inserts the records whose event ids are new, and their usage, in one transaction of
/// two statements whatever the batch size. Returns how many were new.
async fn put_all(pool: &PgPool, records: &[DecisionRecord]) -> Result<u64, sqlx::Error> {
    let json = records
        .iter()
        .map(super::encode)
        .collect::<Result<Vec<_>, _>>()?;
    let text = |f: fn(&DecisionRecord) -> &str| {
        records.iter().map(|r| f(r).to_string()).collect::<Vec<_>>()
    };
    let mut tx = pool.begin().await?;
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO decisions (event_id, request_id, key_id, tenant, route, created_at, record)
         SELECT e, q, k, t, r, c, j::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                     $7::text[]) AS u(e, q, k, t, r, c, j)
         ON CONFLICT (event_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(text(|r| &r.event_id))
    .bind(text(|r| &r.request_id))
    .bind(text(|r| &r.key_id))
    .bind(text(|r| &r.tenant))
    .bind(text(super::route_of))
    .bind(records.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .bind(json)
    .fetch_all(&mut *tx)
    .await?;
    // Within a batch the first record of an event id is the one stored.
    let mut new: HashSet<&str> = inserted.iter().map(String::as_str).collect();
    let stored: Vec<&DecisionRecord> = records
        .iter()
        .filter(|r| new.remove(r.event_id.as_str()))
        .collect();
    add_usage(&mut tx, &super::merged_usage(stored.iter().copied())).await?;
    add_stats(&mut tx, &stats::rollup(stored.into_iter())).await?;
    tx.commit().await?;
    Ok(inserted.len() as u64)
}

#[async_trait::async_trait]
impl RecordStore for PgRecordStore {
    async fn put(&self, record: &DecisionRecord) -> Result<bool, sqlx::Error> {
        Ok(put_all(&self.pool, std::slice::from_ref(record)).await? > 0)
    }

    async fn put_batch(&self, records: &[DecisionRecord]) -> Result<u64, sqlx::Error> {
        put_all(&self.pool, records).await
    }

    async fn put_admin(&self, records: &[AdminRecord]) -> Result<u64, sqlx::Error> {
        let text = |f: fn(&AdminRecord) -> &str| {
            records.iter().map(|r| f(r).to_string()).collect::<Vec<_>>()
        };
        let done = sqlx::query(
            "INSERT INTO admin_events (event_id, time_ms, origin, action, actor, target, detail)
             SELECT e, t, o, a, w, g, d::jsonb
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[]) AS u(e, t, o, a, w, g, d)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(text(|r| &r.event_id))
        .bind(records.iter().map(|r| r.time_ms).collect::<Vec<_>>())
        .bind(text(|r| &r.origin))
        .bind(text(|r| &r.action.action))
        .bind(text(|r| &r.action.actor))
        .bind(text(|r| &r.action.target))
        .bind(
            records
                .iter()
                .map(|r| r.action.detail.to_string())
                .collect::<Vec<_>>(),
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn admin_since(
        &self,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<AdminRecord>, sqlx::Error> {
        let rows: Vec<super::AdminRow> = sqlx::query_as(
            "SELECT event_id, time_ms, origin, action, actor, target, detail::text
             FROM admin_events WHERE time_ms >= $1 ORDER BY time_ms, event_id LIMIT $2",
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
            "SELECT event_id, record::text AS record FROM decisions
             WHERE event_id = $1 OR request_id = $1
             ORDER BY event_id = $1 DESC, created_at DESC, seq DESC LIMIT 1",
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
            "SELECT event_id, record::text AS record FROM decisions
             WHERE (event_id = $1 OR request_id = $1) AND key_id = $2
             ORDER BY event_id = $1 DESC, created_at DESC, seq DESC LIMIT 1",
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
            "SELECT COALESCE(SUM(cost_usd), 0)::float8 FROM usage_daily
             WHERE key_id = $1 AND day >= $2",
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
            "SELECT * FROM stats_minute WHERE minute >= $1 AND minute < $2
             ORDER BY minute, route, model",
        )
        .bind(from_minute)
        .bind(to_minute)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stats::from_row).collect()
    }

    async fn prune_stats(&self, before_minute: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM stats_minute WHERE minute < $1")
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
            "SELECT d.event_id, d.record::text AS record,
                (SELECT SUM(f.rating * f.weight) / NULLIF(SUM(f.weight), 0) FROM feedback f
                 WHERE f.request_id = d.event_id AND f.status = 'accepted') AS rating
             FROM decisions d
             WHERE (d.route = $1
                    OR (jsonb_typeof(d.record -> 'route') IS DISTINCT FROM 'object'
                        AND left(d.route, length($1) + 1) = $1 || '@'))
               AND d.created_at >= $2
             ORDER BY d.created_at, d.seq",
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
            "SELECT * FROM usage_daily WHERE day >= $1 ORDER BY day, key_id, route, model",
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
