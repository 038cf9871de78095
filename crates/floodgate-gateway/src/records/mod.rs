//! Stage 9, record: what was decided about each request and what it cost.
//!
//! Every completion request leaves a [`DecisionRecord`] — which route and tier answered
//! and why, the cascade's scores and thresholds, the guard's notes, the tiers that ran
//! and their cost — retrievable by request id (`GET /v1/requests/{id}/decision`) by the
//! key that made the request or by an admin/auditor. Its cost is also added to a daily
//! usage table (per key, tenant, route and model), which budgets and
//! `floodgate cost project` read.

mod sqlite;

pub use sqlite::SqliteRecordStore;

use serde::{Deserialize, Serialize};

use crate::cascade::signals::AnswerSignals;

/// The route part of a decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteDecision {
    pub route: String,
    pub policy: String,
    pub tiers: Vec<String>,
    pub start_tier: usize,
    pub final_tier: usize,
    pub escalated: bool,
    /// Why the first tier was chosen, and why the answer was kept or replaced.
    pub reasons: Vec<String>,
    pub pre_score: Option<f32>,
    pub pre_threshold: Option<f32>,
    pub post_score: Option<f32>,
    pub post_threshold: Option<f32>,
    pub signals: Option<AnswerSignals>,
}

/// One model's part in answering a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TierRun {
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Seconds the request spent in the model's running batch.
    pub compute_seconds: f64,
    pub cost_usd: f64,
    /// Whether the client was served this answer.
    pub served: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The server's id for the request (its event's id): unique.
    #[serde(default)]
    pub event_id: String,
    /// The client's `x-request-id`, if it sent one.
    pub request_id: String,
    pub key_id: String,
    pub tenant: String,
    /// Unix seconds.
    pub created_at: i64,
    /// What the client asked for: a route or a model.
    pub requested: String,
    /// The model whose answer the client got.
    pub served_by: String,
    pub route: Option<RouteDecision>,
    pub runs: Vec<TierRun>,
    pub cost_usd: f64,
    /// The guards' notes (`input-flagged`, `output-redacted`, ...).
    pub guard: Vec<String>,
    /// `completed`, `cancelled` (the client left), or `failed: ...`.
    pub status: String,
    /// From the request's arrival to its last token (0 when it did not finish).
    #[serde(default)]
    pub latency_ms: f64,
}

/// One day's usage for one key, route and model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub key_id: String,
    pub tenant: String,
    /// The route, or the model when the request named one directly.
    pub route: String,
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub compute_seconds: f64,
    pub cost_usd: f64,
}

#[async_trait::async_trait]
pub trait RecordStore: Send + Sync {
    /// Stores the record; the first record for a request id wins.
    async fn put(&self, record: &DecisionRecord) -> Result<(), sqlx::Error>;
    async fn get(&self, request_id: &str) -> Result<Option<DecisionRecord>, sqlx::Error>;
    /// Stores records (and their usage) replayed from the event log; idempotent by
    /// `event_id`. Returns how many were new.
    async fn put_batch(&self, records: &[DecisionRecord]) -> Result<u64, sqlx::Error> {
        let mut new = 0;
        for r in records {
            self.put(r).await?;
            self.add_usage(r).await?;
            new += 1;
        }
        Ok(new)
    }
    /// Adds each run of `record` to the usage table (day of `record.created_at`).
    async fn add_usage(&self, record: &DecisionRecord) -> Result<(), sqlx::Error>;
    /// A key's spend in the budget period that contains `now` (unix seconds).
    async fn spent(
        &self,
        key_id: &str,
        period: crate::config::BudgetPeriod,
        now: i64,
    ) -> Result<f64, sqlx::Error>;
    /// Usage rows from `since` (`YYYY-MM-DD`) on.
    async fn usage_since(&self, since: &str) -> Result<Vec<UsageRow>, sqlx::Error>;
    /// Usage rows of the last `days` days (today included).
    async fn usage_recent(&self, days: u32) -> Result<Vec<UsageRow>, sqlx::Error>;
    /// Decision records of a route since `since` (unix seconds), each with the
    /// reputation-weighted mean of its accepted feedback ratings, if any.
    async fn route_records(
        &self,
        route: &str,
        since: i64,
    ) -> Result<Vec<(DecisionRecord, Option<f64>)>, sqlx::Error>;
}

/// A model's prices: per 1k prompt and completion tokens, and per hour of compute.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Price {
    pub prompt_per_1k: f64,
    pub completion_per_1k: f64,
    pub per_compute_hour: f64,
}

impl Price {
    pub fn of(config: &crate::Config, model: &str) -> Self {
        let (prompt_per_1k, completion_per_1k) = config.model_for(model).map_or((0.0, 0.0), |m| {
            (m.usd_per_1k_prompt_tokens, m.usd_per_1k_completion_tokens)
        });
        Self {
            prompt_per_1k,
            completion_per_1k,
            per_compute_hour: config.compute_price(model),
        }
    }

    /// The prices of one configured model or variant (`costs.usd_per_compute_hour`
    /// where it sets no compute price of its own).
    pub fn of_model(config: &crate::Config, m: &crate::config::ModelConfig) -> Self {
        Self {
            prompt_per_1k: m.usd_per_1k_prompt_tokens,
            completion_per_1k: m.usd_per_1k_completion_tokens,
            per_compute_hour: m
                .usd_per_compute_hour
                .unwrap_or(config.costs.usd_per_compute_hour),
        }
    }

    /// The token part of the price (what admission can reserve before the run).
    pub fn tokens(&self, prompt_tokens: f64, completion_tokens: f64) -> f64 {
        (prompt_tokens * self.prompt_per_1k + completion_tokens * self.completion_per_1k) / 1000.0
    }

    pub fn cost(&self, prompt_tokens: u32, completion_tokens: u32, compute_seconds: f64) -> f64 {
        self.tokens(f64::from(prompt_tokens), f64::from(completion_tokens))
            + compute_seconds * self.per_compute_hour / 3600.0
    }

    /// One finished run, priced.
    pub fn run(&self, model: &str, finish: &crate::inference::Finish, served: bool) -> TierRun {
        let compute_seconds = finish
            .finished
            .saturating_duration_since(finish.admitted)
            .as_secs_f64();
        TierRun {
            model: model.to_string(),
            prompt_tokens: finish.prompt_tokens,
            completion_tokens: finish.completion_tokens,
            compute_seconds,
            cost_usd: self.cost(
                finish.prompt_tokens,
                finish.completion_tokens,
                compute_seconds,
            ),
            served,
        }
    }
}
