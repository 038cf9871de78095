//! Metrics: the Prometheus recorder and the request-path measurements.
//!
//! Names follow `floodgate_<noun>_<unit>`, `_total` for counters; every metric is
//! listed in `docs/metrics.md`.

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
const TOKEN_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Installs the global recorder once and returns its handle.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("floodgate_time_per_output_token_seconds".into()),
                        TOKEN_LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("floodgate_engine_step_seconds".into()),
                        TOKEN_LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("floodgate_engine_burst_wait_seconds".into()),
                        TOKEN_LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("floodgate_engine_batch_tokens".into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("floodgate_engine_batch_size".into()),
                        BATCH_BUCKETS,
                    )
                });
            match builder {
                Ok(b) => {
                    let recorder = b.build_recorder();
                    let handle = recorder.handle();
                    if metrics::set_global_recorder(recorder).is_err() {
                        tracing::warn!("a metrics recorder was already installed");
                    }
                    handle
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics buckets rejected; using defaults");
                    let recorder = PrometheusBuilder::new().build_recorder();
                    let handle = recorder.handle();
                    let _ = metrics::set_global_recorder(recorder);
                    handle
                }
            }
        })
        .clone()
}

/// Measures one generation: time to first token, time per output token, totals.
pub struct GenerationTimer {
    model: String,
    started: Instant,
    first_token: Option<Instant>,
}

impl GenerationTimer {
    pub fn new(model: &str, started: Instant) -> Self {
        Self {
            model: model.to_string(),
            started,
            first_token: None,
        }
    }

    pub fn token(&mut self) {
        if self.first_token.is_none() {
            let now = Instant::now();
            self.first_token = Some(now);
            metrics::histogram!("floodgate_time_to_first_token_seconds", "model" => self.model.clone())
                .record((now - self.started).as_secs_f64());
        }
    }

    pub fn finish(&self, prompt_tokens: u32, completion_tokens: u32) {
        let now = Instant::now();
        let model = self.model.clone();
        metrics::histogram!("floodgate_generation_duration_seconds", "model" => model.clone())
            .record((now - self.started).as_secs_f64());
        if let Some(first) = self.first_token {
            if completion_tokens > 1 {
                metrics::histogram!("floodgate_time_per_output_token_seconds", "model" => model.clone())
                    .record((now - first).as_secs_f64() / f64::from(completion_tokens - 1));
            }
        }
        metrics::counter!("floodgate_input_tokens_total", "model" => model.clone())
            .increment(u64::from(prompt_tokens));
        metrics::counter!("floodgate_output_tokens_total", "model" => model)
            .increment(u64::from(completion_tokens));
    }
}
