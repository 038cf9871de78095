//! Drift, live: request events into tumbling windows per route or model, each window
//! tested against the key's stored profile. A drifted window raises
//! `floodgate_drift_detected{key}`, a `drift.detected` admin event, a "retrain
//! suggested" record naming the features that moved, and a webhook call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floodgate_drift::{Monitor, Profile, WindowReport};

use super::{AnalyticsStore, RetrainSuggestion};
use crate::config::Config;
use crate::events::{Event, EventBody, RequestEvent, Sink, Spine};

/// The key a request's drift is tracked under: its route, else the model it resolved to
/// (before any `@version`). `None` for a request that resolved to nothing (an unknown
/// model, a malformed request, a refusal before routing).
pub fn drift_key(r: &RequestEvent) -> Option<String> {
    if let Some(d) = &r.route {
        return Some(d.route.clone());
    }
    if r.requested.is_empty() || r.error_code.as_deref() == Some("model_not_found") {
        return None;
    }
    let model = r
        .requested
        .split_once('@')
        .map_or(r.requested.as_str(), |(m, _)| m);
    Some(model.to_string())
}

pub struct DriftWatcher {
    store: Arc<dyn AnalyticsStore>,
    monitor: Mutex<Monitor>,
    /// When each key's loaded profile was made (to notice a replaced one).
    loaded: Mutex<HashMap<String, i64>>,
    last_refresh: Mutex<Option<Instant>>,
    refresh_every: Duration,
    spine: Option<Arc<Spine>>,
    webhook: Option<(reqwest::Client, String)>,
}

impl DriftWatcher {
    pub fn new(
        config: &Config,
        store: Arc<dyn AnalyticsStore>,
        spine: Option<Arc<Spine>>,
    ) -> Arc<Self> {
        let d = &config.drift;
        let webhook = (!d.webhook_url.is_empty()).then(|| {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(d.webhook_timeout_ms))
                .build()
                .unwrap_or_default();
            (client, d.webhook_url.clone())
        });
        Arc::new(Self {
            store,
            monitor: Mutex::new(Monitor::new()),
            loaded: Mutex::new(HashMap::new()),
            last_refresh: Mutex::new(None),
            refresh_every: Duration::from_secs(d.profile_refresh_seconds),
            spine,
            webhook,
        })
    }

    /// Re-reads the stored profiles when the refresh interval has passed.
    async fn refresh(&self) -> anyhow::Result<()> {
        {
            let last = self
                .last_refresh
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            if last.is_some_and(|t| t.elapsed() < self.refresh_every) {
                return Ok(());
            }
        }
        let stored = self.store.profiles().await?;
        let mut parsed = Vec::new();
        {
            let loaded = self
                .loaded
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            for p in &stored {
                if loaded.get(&p.key) == Some(&p.created_at) {
                    continue;
                }
                match serde_json::from_str::<Profile>(&p.profile) {
                    Ok(profile) => parsed.push((p.key.clone(), p.created_at, profile)),
                    Err(e) => {
                        tracing::warn!(key = %p.key, error = %e, "drift: stored profile unreadable; skipped")
                    }
                }
            }
        }
        let mut monitor = self
            .monitor
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        for (key, created, profile) in parsed {
            tracing::info!(key = %key, "drift: profile loaded");
            monitor.set_profile(key.clone(), profile);
            loaded.insert(key, created);
        }
        let gone: Vec<String> = loaded
            .keys()
            .filter(|k| !stored.iter().any(|p| &p.key == *k))
            .cloned()
            .collect();
        for k in gone {
            monitor.remove_profile(&k);
            loaded.remove(&k);
        }
        drop((monitor, loaded));
        if let Ok(mut last) = self.last_refresh.lock() {
            *last = Some(Instant::now());
        }
        Ok(())
    }

    /// Feeds request events into the windows; handles every window that completes.
    /// Never fails: the windows are in memory and a batch is not fed twice, so a store
    /// that is down costs the stored state of the windows that completed meanwhile (the
    /// metric, the log line and the webhook still happen), never a double count.
    pub async fn observe(&self, events: &[Event]) -> anyhow::Result<()> {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "drift: profiles not refreshed; testing with those loaded");
        }
        let mut done: Vec<(String, WindowReport)> = Vec::new();
        {
            let mut monitor = self
                .monitor
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            for e in events {
                let EventBody::Request(r) = &e.body else {
                    continue;
                };
                let (Some(key), Some(f)) = (drift_key(r), r.drift_features()) else {
                    continue;
                };
                if let Some(report) = monitor.push(&key, f) {
                    done.push((key, report));
                }
            }
        }
        for (key, report) in done {
            if let Err(e) = self.window(&key, report).await {
                metrics::counter!("floodgate_drift_store_errors_total").increment(1);
                tracing::warn!(key = %key, error = %e, "drift: window result not stored");
            }
        }
        Ok(())
    }

    async fn window(&self, key: &str, report: WindowReport) -> anyhow::Result<()> {
        let now = crate::events::now_ms() / 1000;
        let json = serde_json::to_value(&report)?;
        metrics::gauge!("floodgate_drift_detected", "key" => key.to_string())
            .set(if report.drifted { 1.0 } else { 0.0 });
        metrics::counter!(
            "floodgate_drift_windows_total",
            "key" => key.to_string(),
            "result" => if report.drifted { "drift" } else { "ok" }
        )
        .increment(1);
        let stored = self
            .store
            .record_window(key, now, report.drifted, &json)
            .await;
        if !report.drifted {
            return Ok(stored?);
        }
        let moved: Vec<String> = report.moved().iter().map(|s| s.to_string()).collect();
        tracing::warn!(key, moved = ?moved, "drift detected; retrain suggested");
        let suggestion = RetrainSuggestion {
            id: format!("rs_{}", uuid::Uuid::now_v7().simple()),
            key: key.to_string(),
            created_at: now,
            features: moved.clone(),
            report: json.clone(),
        };
        let stored = stored.and(self.store.put_suggestion(&suggestion).await);
        let body = serde_json::json!({
            "type": "drift.detected",
            "key": key,
            "time": now,
            "retrain_suggested": true,
            "suggestion_id": suggestion.id,
            "moved": moved,
            "report": json,
        });
        if let Some(spine) = &self.spine {
            let event = Event::admin(
                spine.origin.clone(),
                crate::events::AdminEvent {
                    action: "drift.detected".into(),
                    actor: "floodgate-drift".into(),
                    target: key.to_string(),
                    detail: body.clone(),
                },
            );
            spine.record(&event, None).await;
        }
        if let Some((client, url)) = &self.webhook {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { webhook(&client, &url, &body).await });
        }
        Ok(stored?)
    }
}

/// POSTs the report, three attempts with a pause between; failures are logged.
async fn webhook(client: &reqwest::Client, url: &str, body: &serde_json::Value) {
    for attempt in 1..=3u32 {
        match client.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::warn!(status = %r.status(), attempt, "drift webhook refused"),
            Err(e) => tracing::warn!(error = %e.without_url(), attempt, "drift webhook failed"),
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
    metrics::counter!("floodgate_drift_webhook_failures_total").increment(1);
}

/// The watcher as a sink of the local event log.
pub struct DriftSink(pub Arc<DriftWatcher>);

#[async_trait::async_trait]
impl Sink for DriftSink {
    fn name(&self) -> &'static str {
        "drift"
    }

    async fn apply(&self, events: &[Event]) -> anyhow::Result<()> {
        self.0.observe(events).await
    }
}
