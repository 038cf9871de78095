//! Stage 9, record: what was decided about each request and what it cost.
//!
//! Every completion request leaves a [`DecisionRecord`] — which route and tier answered
//! and why, the cascade's scores and thresholds, the guard's notes, the tiers that ran
//! and their cost — retrievable by its event id or the client's request id
//! (`GET /v1/requests/{id}/decision`) by the key that made the request or by an
//! admin/auditor. Its cost is also added to a daily usage table (per key, tenant, route
//! and model), which budgets and `floodgate cost project` read.
//!
//! A record is written once per event id: replaying an event (a retry after a lost
//! acknowledgement) stores nothing and counts no usage twice, because the record and its
//! usage go in one transaction that only proceeds when the record is new. Usage is kept
//! incrementally (one upsert per day, key, route and model), never summed from records;
//! so are the per-minute rollups the dashboard reads ([`stats`]).

mod postgres;
mod sqlite;
pub mod stats;

pub use postgres::PgRecordStore;
pub use sqlite::SqliteRecordStore;
pub use stats::MinuteStats;

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
    /// The server's unique id for this request: the record's key.
    #[serde(default)]
    pub event_id: String,
    /// The client's `x-request-id`, if it sent one: it may repeat, or be empty.
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
    /// `POST /v1/chat/completions`, ... (empty in records older than the field).
    #[serde(default)]
    pub endpoint: String,
    /// The HTTP status the client got (200 for a stream that failed mid-way; 0 in
    /// records older than the field).
    #[serde(default)]
    pub http_status: u16,
    /// OpenAI-style error code of a refusal (`rate_limit_exceeded`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The key's segment (`free`, `pro`, ...).
    #[serde(default)]
    pub segment: String,
    /// The input guard's injection score, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_guard_score: Option<f32>,
    /// Waiting for a batch slot in the engine.
    #[serde(default)]
    pub queue_ms: f64,
    /// From the request's arrival to its first token, when one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_token_ms: Option<f64>,
    /// Time in each pipeline stage, in order.
    #[serde(default)]
    pub stages: Vec<StageTiming>,
    /// The request's drift features (prompt and answer), when it was sampled: what
    /// `floodgate drift profile --window` builds a reference from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<floodgate_drift::Features>,
}

/// Time one pipeline stage took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTiming {
    pub stage: String,
    pub ms: f64,
}

/// Something an operator did (create or revoke a key, change a model's weight or a
/// route, reload the configuration): the body of an admin event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminAction {
    /// `key.created`, `key.revoked`, `model.updated`, `route.updated`, `config.reloaded`.
    pub action: String,
    /// The key that did it (`cli` for the command line, `system` for the server itself).
    pub actor: String,
    /// What it was done to (a key id, a model variant, a route).
    pub target: String,
    pub detail: serde_json::Value,
}

/// An admin action as the store keeps it, under its event id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdminRecord {
    pub event_id: String,
    /// Unix milliseconds.
    pub time_ms: i64,
    /// The process that did it (`region/host:port`, or `cli/<host>`).
    pub origin: String,
    #[serde(flatten)]
    pub action: AdminAction,
}

/// An `admin_events` row as both backends select it: event id, time, origin, action,
/// actor, target, and the detail as JSON text.
pub(crate) type AdminRow = (String, i64, String, String, String, String, String);

pub(crate) fn admin_from_row(row: AdminRow) -> Result<AdminRecord, sqlx::Error> {
    let (event_id, time_ms, origin, action, actor, target, detail) = row;
    Ok(AdminRecord {
        event_id,
        time_ms,
        origin,
        action: AdminAction {
            action,
            actor,
            target,
            detail: serde_json::from_str(&detail).map_err(|e| sqlx::Error::Decode(e.into()))?,
        },
    })
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
    /// Stores the record under its event id and, only if that id is new, adds its runs
    /// to the usage table in the same transaction. Returns whether the record was new.
    async fn put(&self, record: &DecisionRecord) -> Result<bool, sqlx::Error>;
    /// [`RecordStore::put`] for many records in one transaction (a writer draining a
    /// queue, a bulk load): all or none are stored. Returns how many were new.
    async fn put_batch(&self, records: &[DecisionRecord]) -> Result<u64, sqlx::Error> {
        let mut new = 0;
        for record in records {
            new += u64::from(self.put(record).await?);
        }
        Ok(new)
    }
    /// Stores the admin records whose event ids are new (a replay stores nothing twice).
    /// Returns how many were new.
    async fn put_admin(&self, records: &[AdminRecord]) -> Result<u64, sqlx::Error>;
    /// Admin records from `since_ms` (unix milliseconds) on, oldest first, at most `limit`.
    async fn admin_since(&self, since_ms: i64, limit: u32)
        -> Result<Vec<AdminRecord>, sqlx::Error>;
    /// The record with this event id, else the latest one with this client request id.
    async fn get(&self, id: &str) -> Result<Option<DecisionRecord>, sqlx::Error>;
    /// [`RecordStore::get`] among the records of one key: a client id reused by another
    /// key never hides this key's record.
    async fn get_for_key(
        &self,
        id: &str,
        key_id: &str,
    ) -> Result<Option<DecisionRecord>, sqlx::Error>;
    /// A key's spend in the budget period that contains `now` (unix seconds).
    async fn spent(
        &self,
        key_id: &str,
        period: crate::config::BudgetPeriod,
        now: i64,
    ) -> Result<f64, sqlx::Error>;
    /// Usage rows from `since` (`YYYY-MM-DD`) on.
    async fn usage_since(&self, since: &str) -> Result<Vec<UsageRow>, sqlx::Error>;
    /// Usage rows of the last `days` days (today included, UTC).
    async fn usage_recent(&self, days: u32) -> Result<Vec<UsageRow>, sqlx::Error> {
        let today = crate::clock::unix_secs();
        let since = today - i64::from(days.saturating_sub(1)) * 86_400;
        self.usage_since(&utc_day(since)).await
    }
    /// The per-minute rollups of minutes `from_minute <= minute < to_minute` (unix
    /// seconds), ordered by minute, route and model.
    async fn stats_since(
        &self,
        from_minute: i64,
        to_minute: i64,
    ) -> Result<Vec<MinuteStats>, sqlx::Error>;
    /// Deletes the rollups of minutes before `before_minute`; returns how many rows went.
    async fn prune_stats(&self, before_minute: i64) -> Result<u64, sqlx::Error>;
    /// Decision records of a route since `since` (unix seconds), each with the
    /// reputation-weighted mean of its accepted feedback ratings, if any.
    async fn route_records(
        &self,
        route: &str,
        since: i64,
    ) -> Result<Vec<(DecisionRecord, Option<f64>)>, sqlx::Error>;
}

/// The route a record counts under: its route, or the model the request named.
pub fn route_of(record: &DecisionRecord) -> &str {
    record
        .route
        .as_ref()
        .map_or(record.requested.as_str(), |r| r.route.as_str())
}

/// The usage of the given records, one row per (day, key, route, model): one upsert may
/// not touch a row twice, so rows of the same key are summed first.
pub(crate) fn merged_usage<'a>(records: impl Iterator<Item = &'a DecisionRecord>) -> Vec<UsageRow> {
    let mut rows: std::collections::BTreeMap<(String, String, String, String), UsageRow> =
        std::collections::BTreeMap::new();
    for u in records.flat_map(usage_of) {
        let key = (
            u.day.clone(),
            u.key_id.clone(),
            u.route.clone(),
            u.model.clone(),
        );
        match rows.get_mut(&key) {
            Some(r) => {
                r.requests += u.requests;
                r.prompt_tokens += u.prompt_tokens;
                r.completion_tokens += u.completion_tokens;
                r.compute_seconds += u.compute_seconds;
                r.cost_usd += u.cost_usd;
            }
            None => {
                rows.insert(key, u);
            }
        }
    }
    rows.into_values().collect()
}

/// The usage rows one record adds, one per run. A request counts once, on the model
/// that served it (or its last run); every run counts its tokens and cost.
pub fn usage_of(record: &DecisionRecord) -> Vec<UsageRow> {
    let day = utc_day(record.created_at);
    let route = route_of(record);
    let any_served = record.runs.iter().any(|r| r.served);
    record
        .runs
        .iter()
        .enumerate()
        .map(|(i, run)| UsageRow {
            day: day.clone(),
            key_id: record.key_id.clone(),
            tenant: record.tenant.clone(),
            route: route.to_string(),
            model: run.model.clone(),
            requests: u64::from(run.served || (i + 1 == record.runs.len() && !any_served)),
            prompt_tokens: u64::from(run.prompt_tokens),
            completion_tokens: u64::from(run.completion_tokens),
            compute_seconds: run.compute_seconds,
            cost_usd: run.cost_usd,
        })
        .collect()
}

/// `YYYY-MM-DD` (UTC) of a unix time. Computed here rather than in SQL so that every
/// backend draws day and month boundaries the same way.
pub fn utc_day(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The first usage day of the budget period that contains `now`.
pub fn period_start(period: crate::config::BudgetPeriod, now: i64) -> String {
    use crate::config::BudgetPeriod;
    match period {
        BudgetPeriod::Day => utc_day(now),
        BudgetPeriod::Month => {
            let (y, m, _) = civil_from_days(now.div_euclid(86_400));
            format!("{y:04}-{m:02}-01")
        }
        BudgetPeriod::Total => "0000-00-00".into(),
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day number of a date (inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A stored record's JSON back into a record; records written before event ids had
/// none in their JSON, and take the one their row is keyed by.
pub(crate) fn decode(json: &str, event_id: String) -> Result<DecisionRecord, sqlx::Error> {
    let mut record: DecisionRecord =
        serde_json::from_str(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    if record.event_id.is_empty() {
        record.event_id = event_id;
    }
    Ok(record)
}

/// The record as stored JSON; a record without an event id cannot be stored.
pub(crate) fn encode(record: &DecisionRecord) -> Result<String, sqlx::Error> {
    if record.event_id.is_empty() {
        return Err(sqlx::Error::Encode(
            "a decision record needs an event id".into(),
        ));
    }
    serde_json::to_string(record).map_err(|e| sqlx::Error::Encode(Box::new(e)))
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
