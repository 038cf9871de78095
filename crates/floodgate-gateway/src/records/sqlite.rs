//! Decision records and daily usage in the embedded SQLite state database. Dates are
//! computed by SQLite (`date(?, 'unixepoch')`), in UTC.

use crate::config::BudgetPeriod;
use std::path::Path;

use sqlx::{Row, SqlitePool};

use super::{DecisionRecord, RecordStore, UsageRow};

pub struct SqliteRecordStore {
    pool: SqlitePool,
}

impl SqliteRecordStore {
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let pool = crate::db::open_sqlite(path).await?;
        for ddl in [
            "CREATE TABLE IF NOT EXISTS decisions (
                request_id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                record TEXT NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS usage_daily (
                day TEXT NOT NULL,
                key_id TEXT NOT NULL,
                tenant TEXT NOT NULL,
                route TEXT NOT NULL,
                model TEXT NOT NULL,
                requests INTEGER NOT NULL,
                prompt_tokens INTEGER NOT NULL,
                completion_tokens INTEGER NOT NULL,
                compute_seconds REAL NOT NULL,
                cost_usd REAL NOT NULL,
                PRIMARY KEY (day, key_id, route, model)
            )",
            "CREATE INDEX IF NOT EXISTS usage_key ON usage_daily (key_id, day)",
        ] {
            sqlx::query(ddl).execute(&pool).await?;
        }
        Ok(Self { pool })
    }
}

#[async_trait::async_trait]
impl RecordStore for SqliteRecordStore {
    async fn put(&self, record: &DecisionRecord) -> Result<(), sqlx::Error> {
        let json = serde_json::to_string(record).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        // The first record of an id stays: a client cannot overwrite another's record by
        // reusing its id as `x-request-id`.
        sqlx::query("INSERT OR IGNORE INTO decisions VALUES (?, ?, ?, ?)")
            .bind(&record.request_id)
            .bind(&record.key_id)
            .bind(record.created_at)
            .bind(json)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get(&self, request_id: &str) -> Result<Option<DecisionRecord>, sqlx::Error> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT record FROM decisions WHERE request_id = ?")
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()
    }

    async fn add_usage(&self, record: &DecisionRecord) -> Result<(), sqlx::Error> {
        let route = record
            .route
            .as_ref()
            .map_or(record.requested.as_str(), |r| r.route.as_str());
        let mut tx = self.pool.begin().await?;
        for (i, run) in record.runs.iter().enumerate() {
            // A request counts once, on the model that served it (or its last run).
            let counts =
                run.served || (i + 1 == record.runs.len() && !record.runs.iter().any(|r| r.served));
            sqlx::query(
                "INSERT INTO usage_daily VALUES (date(?, 'unixepoch'), ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (day, key_id, route, model) DO UPDATE SET
                   requests = requests + excluded.requests,
                   prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                   completion_tokens = completion_tokens + excluded.completion_tokens,
                   compute_seconds = compute_seconds + excluded.compute_seconds,
                   cost_usd = cost_usd + excluded.cost_usd",
            )
            .bind(record.created_at)
            .bind(&record.key_id)
            .bind(&record.tenant)
            .bind(route)
            .bind(&run.model)
            .bind(i64::from(counts))
            .bind(i64::from(run.prompt_tokens))
            .bind(i64::from(run.completion_tokens))
            .bind(run.compute_seconds)
            .bind(run.cost_usd)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    async fn spent(
        &self,
        key_id: &str,
        period: BudgetPeriod,
        now: i64,
    ) -> Result<f64, sqlx::Error> {
        let since = match period {
            BudgetPeriod::Day => "date(?, 'unixepoch')",
            BudgetPeriod::Month => "date(?, 'unixepoch', 'start of month')",
            BudgetPeriod::Total => "'0000-00-00' AND ? IS NOT NULL",
        };
        let sql = format!(
            "SELECT COALESCE(SUM(cost_usd), 0.0) FROM usage_daily WHERE key_id = ? AND day >= {since}"
        );
        sqlx::query_scalar(&sql)
            .bind(key_id)
            .bind(now)
            .fetch_one(&self.pool)
            .await
    }

    async fn route_records(
        &self,
        route: &str,
        since: i64,
    ) -> Result<Vec<(DecisionRecord, Option<f64>)>, sqlx::Error> {
        let with_feedback = "SELECT d.record AS record,
                (SELECT SUM(f.rating * f.weight) / SUM(f.weight) FROM feedback f
                 WHERE f.request_id = d.request_id AND f.status = 'accepted') AS rating
             FROM decisions d
             WHERE (json_extract(d.record, '$.route.route') = ?1
                    OR (json_extract(d.record, '$.route') IS NULL
                        AND (json_extract(d.record, '$.requested') = ?1
                             OR substr(json_extract(d.record, '$.requested'), 1, length(?1) + 1) = ?1 || '@')))
               AND d.created_at >= ?2
             ORDER BY d.created_at";
        let rows = match sqlx::query(with_feedback)
            .bind(route)
            .bind(since)
            .fetch_all(&self.pool)
            .await
        {
            Ok(rows) => rows,
            // No feedback table yet (a fresh database): records without ratings.
            Err(_) => {
                sqlx::query(
                    "SELECT record, NULL AS rating FROM decisions
                     WHERE (json_extract(record, '$.route.route') = ?1
                            OR (json_extract(record, '$.route') IS NULL
                                AND (json_extract(record, '$.requested') = ?1
                                     OR substr(json_extract(record, '$.requested'), 1, length(?1) + 1) = ?1 || '@')))
                       AND created_at >= ?2
                     ORDER BY created_at",
                )
                .bind(route)
                .bind(since)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                let json: String = r.try_get("record")?;
                let record: DecisionRecord =
                    serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                Ok((record, r.try_get::<Option<f64>, _>("rating")?))
            })
            .collect()
    }

    async fn usage_recent(&self, days: u32) -> Result<Vec<UsageRow>, sqlx::Error> {
        let since: String = sqlx::query_scalar("SELECT date('now', '-' || ? || ' days')")
            .bind(i64::from(days.saturating_sub(1)))
            .fetch_one(&self.pool)
            .await?;
        self.usage_since(&since).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{RouteDecision, TierRun};

    fn record(id: &str, key: &str, at: i64, runs: Vec<TierRun>) -> DecisionRecord {
        DecisionRecord {
            request_id: id.into(),
            key_id: key.into(),
            tenant: "t".into(),
            created_at: at,
            requested: "auto".into(),
            served_by: runs.last().map(|r| r.model.clone()).unwrap_or_default(),
            route: Some(RouteDecision {
                route: "auto".into(),
                ..RouteDecision::default()
            }),
            cost_usd: runs.iter().map(|r| r.cost_usd).sum(),
            runs,
            guard: vec![],
            status: "completed".into(),
            latency_ms: 12.0,
        }
    }

    fn run(model: &str, cost: f64, served: bool) -> TierRun {
        TierRun {
            model: model.into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            compute_seconds: 0.5,
            cost_usd: cost,
            served,
        }
    }

    #[tokio::test]
    async fn records_round_trip_and_the_first_owner_keeps_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteRecordStore::open(&dir.path().join("s.db"))
            .await
            .unwrap();
        let r = record("req-1", "k1", 1_700_000_000, vec![run("small", 0.01, true)]);
        store.put(&r).await.unwrap();
        store
            .put(&record("req-1", "intruder", 1_700_000_001, vec![]))
            .await
            .unwrap();
        assert_eq!(store.get("req-1").await.unwrap().unwrap(), r);
        assert!(store.get("nope").await.unwrap().is_none());
        // By route, without a feedback table: no ratings.
        let by_route = store.route_records("auto", 0).await.unwrap();
        assert_eq!(by_route, vec![(r.clone(), None)]);
        assert!(store.route_records("other", 0).await.unwrap().is_empty());
        assert!(store
            .route_records("auto", 1_800_000_000)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn usage_adds_up_per_day_and_budgets_read_their_period() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteRecordStore::open(&dir.path().join("s.db"))
            .await
            .unwrap();
        // 2023-11-14 22:13:20 UTC, and the next day, and the month before.
        let day1 = 1_700_000_000;
        let day2 = day1 + 86_400;
        let last_month = day1 - 20 * 86_400;
        let escalated = record(
            "a",
            "k1",
            day1,
            vec![run("small", 0.01, false), run("large", 0.10, true)],
        );
        store.add_usage(&escalated).await.unwrap();
        store
            .add_usage(&record("b", "k1", day1, vec![run("small", 0.01, true)]))
            .await
            .unwrap();
        store
            .add_usage(&record("c", "k1", day2, vec![run("small", 0.02, true)]))
            .await
            .unwrap();
        store
            .add_usage(&record(
                "d",
                "k1",
                last_month,
                vec![run("large", 1.0, true)],
            ))
            .await
            .unwrap();
        store
            .add_usage(&record("e", "k2", day1, vec![run("large", 5.0, true)]))
            .await
            .unwrap();
        let rows = store.usage_since("2023-11-14").await.unwrap();
        let small_day1 = rows
            .iter()
            .find(|r| r.day == "2023-11-14" && r.key_id == "k1" && r.model == "small")
            .unwrap();
        // The escalated request's small run costs but is not counted as a request.
        assert_eq!(small_day1.requests, 1);
        assert!((small_day1.cost_usd - 0.02).abs() < 1e-12);
        assert_eq!(small_day1.prompt_tokens, 20);
        let spent_day = store.spent("k1", BudgetPeriod::Day, day2).await.unwrap();
        assert!((spent_day - 0.02).abs() < 1e-12, "{spent_day}");
        let spent_month = store.spent("k1", BudgetPeriod::Month, day2).await.unwrap();
        assert!((spent_month - 0.14).abs() < 1e-12, "{spent_month}");
        let spent_total = store.spent("k1", BudgetPeriod::Total, day2).await.unwrap();
        assert!((spent_total - 1.14).abs() < 1e-12, "{spent_total}");
        assert_eq!(
            store
                .spent("nobody", BudgetPeriod::Month, day2)
                .await
                .unwrap(),
            0.0
        );
    }
}
