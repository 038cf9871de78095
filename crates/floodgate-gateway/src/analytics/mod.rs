//! Analytics over the request events: drift against reference profiles
//! ([`DriftWatcher`]), and the store of what analytics produce — profiles, the drift state
//! per key, "retrain suggested" records, evaluation runs ([`AnalyticsStore`], one file
//! per backend).
//!
//! **Architecture invariant:** nothing here runs on the request path. The watcher is fed
//! by a sink that follows the event log (or the analytics role's JetStream consumer);
//! the request path only computes prompt features (`prompt_features`).

mod postgres;
mod sqlite;
mod watcher;

use serde::{Deserialize, Serialize};

pub use postgres::PgAnalyticsStore;
pub use sqlite::SqliteAnalyticsStore;
pub use watcher::{drift_key, DriftSink, DriftWatcher};

/// A stored reference profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredProfile {
    /// The route or model it describes.
    pub key: String,
    /// `floodgate_drift::Profile` as JSON.
    pub profile: String,
    /// Where its samples came from (`file:...`, `window:7d`).
    pub source: String,
    pub created_at: i64,
}

/// The drift state of one key: its latest window and how many windows and alarms so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftState {
    pub key: String,
    pub updated_at: i64,
    pub drifted: bool,
    pub windows: i64,
    pub alarms: i64,
    /// The latest `floodgate_drift::WindowReport` as JSON.
    pub report: serde_json::Value,
}

/// A "retrain suggested" record: a window drifted, and these features moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainSuggestion {
    pub id: String,
    pub key: String,
    pub created_at: i64,
    pub features: Vec<String>,
    pub report: serde_json::Value,
}

/// One evaluation run's summary (the whole run is in `run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRunRecord {
    pub id: String,
    pub created_at: i64,
    pub target: String,
    pub golden: String,
    pub n: i64,
    pub accuracy: Option<f64>,
    pub accuracy_low: Option<f64>,
    pub accuracy_high: Option<f64>,
    pub regression: bool,
    pub run: serde_json::Value,
}

#[async_trait::async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Stores (or replaces) the profile of a key.
    async fn put_profile(&self, p: &StoredProfile) -> Result<(), sqlx::Error>;
    async fn profiles(&self) -> Result<Vec<StoredProfile>, sqlx::Error>;
    async fn delete_profile(&self, key: &str) -> Result<bool, sqlx::Error>;
    /// Records a tested window: the state's report replaced, its counters moved.
    async fn record_window(
        &self,
        key: &str,
        at: i64,
        drifted: bool,
        report: &serde_json::Value,
    ) -> Result<(), sqlx::Error>;
    async fn drift_states(&self) -> Result<Vec<DriftState>, sqlx::Error>;
    async fn put_suggestion(&self, s: &RetrainSuggestion) -> Result<(), sqlx::Error>;
    /// Newest first.
    async fn suggestions(&self, limit: u32) -> Result<Vec<RetrainSuggestion>, sqlx::Error>;
    /// Idempotent by run id.
    async fn put_eval_run(&self, r: &EvalRunRecord) -> Result<(), sqlx::Error>;
    /// Oldest first, since `since` (unix seconds).
    async fn eval_runs(&self, since: i64, limit: u32) -> Result<Vec<EvalRunRecord>, sqlx::Error>;
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// Publishes `floodgate_eval_accuracy{target, golden}` (the latest stored run of each
/// pair, runs of the last 90 days) every `every`, so Prometheus and Grafana see the
/// evaluation scores `floodgate eval run` stores.
pub fn spawn_eval_gauges(store: std::sync::Arc<dyn AnalyticsStore>, every: std::time::Duration) {
    tokio::spawn(async move {
        loop {
            let since = crate::clock::unix_secs() - 90 * 86_400;
            match store.eval_runs(since, 10_000).await {
                Ok(runs) => {
                    let mut latest: std::collections::BTreeMap<(String, String), f64> =
                        std::collections::BTreeMap::new();
                    for r in runs {
                        if let Some(a) = r.accuracy {
                            latest.insert((r.target, r.golden), a);
                        }
                    }
                    for ((target, golden), a) in latest {
                        metrics::gauge!("floodgate_eval_accuracy", "target" => target, "golden" => golden)
                            .set(a);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "evaluation runs not read"),
            }
            tokio::time::sleep(every).await;
        }
    });
}
