//! The analytics tables in the embedded SQLite database (`migrations/sqlite`).

use sqlx::{Row, SqlitePool};

use super::{json, AnalyticsStore, DriftState, EvalRunRecord, RetrainSuggestion, StoredProfile};

pub struct SqliteAnalyticsStore {
    pool: SqlitePool,
}

impl SqliteAnalyticsStore {
    /// Over an open, migrated pool (shared with the other stores).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl AnalyticsStore for SqliteAnalyticsStore {
    async fn put_profile(&self, p: &StoredProfile) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO drift_profiles (key, profile, source, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET profile = excluded.profile,
               source = excluded.source, created_at = excluded.created_at",
        )
        .bind(&p.key)
        .bind(&p.profile)
        .bind(&p.source)
        .bind(p.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn profiles(&self) -> Result<Vec<StoredProfile>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT key, profile, source, created_at FROM drift_profiles ORDER BY key")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredProfile {
                    key: r.try_get("key")?,
                    profile: r.try_get("profile")?,
                    source: r.try_get("source")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn delete_profile(&self, key: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM drift_profiles WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_window(
        &self,
        key: &str,
        at: i64,
        drifted: bool,
        report: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO drift_status (key, updated_at, drifted, windows, alarms, report)
             VALUES (?, ?, ?, 1, ?, ?)
             ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at,
               drifted = excluded.drifted, windows = windows + 1,
               alarms = alarms + excluded.alarms, report = excluded.report",
        )
        .bind(key)
        .bind(at)
        .bind(i64::from(drifted))
        .bind(i64::from(drifted))
        .bind(report.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn drift_states(&self) -> Result<Vec<DriftState>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT key, updated_at, drifted, windows, alarms, report FROM drift_status ORDER BY key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DriftState {
                    key: r.try_get("key")?,
                    updated_at: r.try_get("updated_at")?,
                    drifted: r.try_get::<i64, _>("drifted")? != 0,
                    windows: r.try_get("windows")?,
                    alarms: r.try_get("alarms")?,
                    report: json(&r.try_get::<String, _>("report")?),
                })
            })
            .collect()
    }

    async fn put_suggestion(&self, s: &RetrainSuggestion) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO retrain_suggestions (id, key, created_at, features, report)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.key)
        .bind(s.created_at)
        .bind(serde_json::to_string(&s.features).unwrap_or_default())
        .bind(s.report.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn suggestions(&self, limit: u32) -> Result<Vec<RetrainSuggestion>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, key, created_at, features, report FROM retrain_suggestions
             ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RetrainSuggestion {
                    id: r.try_get("id")?,
                    key: r.try_get("key")?,
                    created_at: r.try_get("created_at")?,
                    features: serde_json::from_str(&r.try_get::<String, _>("features")?)
                        .unwrap_or_default(),
                    report: json(&r.try_get::<String, _>("report")?),
                })
            })
            .collect()
    }

    async fn put_eval_run(&self, e: &EvalRunRecord) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO eval_runs (id, created_at, target, golden, n, accuracy, accuracy_low,
               accuracy_high, regression, run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&e.id)
        .bind(e.created_at)
        .bind(&e.target)
        .bind(&e.golden)
        .bind(e.n)
        .bind(e.accuracy)
        .bind(e.accuracy_low)
        .bind(e.accuracy_high)
        .bind(i64::from(e.regression))
        .bind(e.run.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn eval_runs(&self, since: i64, limit: u32) -> Result<Vec<EvalRunRecord>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, created_at, target, golden, n, accuracy, accuracy_low, accuracy_high,
               regression, run FROM eval_runs WHERE created_at >= ?
             ORDER BY created_at, id LIMIT ?",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EvalRunRecord {
                    id: r.try_get("id")?,
                    created_at: r.try_get("created_at")?,
                    target: r.try_get("target")?,
                    golden: r.try_get("golden")?,
                    n: r.try_get("n")?,
                    accuracy: r.try_get("accuracy")?,
                    accuracy_low: r.try_get("accuracy_low")?,
                    accuracy_high: r.try_get("accuracy_high")?,
                    regression: r.try_get::<i64, _>("regression")? != 0,
                    run: json(&r.try_get::<String, _>("run")?),
                })
            })
            .collect()
    }
}
