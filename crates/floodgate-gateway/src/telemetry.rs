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

// The bucket boundaries OpenTelemetry's GenAI semantic conventions recommend
// (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`,
// `gen_ai.server.request.duration`, `gen_ai.server.time_to_first_token`,
// `gen_ai.server.time_per_output_token`).
const GENAI_TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
const GENAI_DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const GENAI_TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const GENAI_TPOT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

/// Histogram boundaries by metric; a full name wins over the `_seconds` suffix.
fn bucket_overrides() -> Vec<(Matcher, &'static [f64])> {
    let full = |name: &str| Matcher::Full(name.to_string());
    vec![
        (Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS),
        (
            full("floodgate_time_per_output_token_seconds"),
            TOKEN_LATENCY_BUCKETS,
        ),
        (full("floodgate_engine_step_seconds"), TOKEN_LATENCY_BUCKETS),
        (
            full("floodgate_engine_burst_wait_seconds"),
            TOKEN_LATENCY_BUCKETS,
        ),
        (full("floodgate_engine_batch_tokens"), BATCH_BUCKETS),
        (full("floodgate_engine_batch_size"), BATCH_BUCKETS),
        (full(GENAI_TOKEN_USAGE), GENAI_TOKEN_BUCKETS),
        (full(GENAI_CLIENT_DURATION), GENAI_DURATION_BUCKETS),
        (full(GENAI_SERVER_DURATION), GENAI_DURATION_BUCKETS),
        (full(GENAI_TTFT), GENAI_TTFT_BUCKETS),
        (full(GENAI_TPOT), GENAI_TPOT_BUCKETS),
    ]
}

/// `gen_ai.client.token.usage`: tokens per backend call, by `gen_ai_token_type`.
pub const GENAI_TOKEN_USAGE: &str = "gen_ai_client_token_usage";
/// `gen_ai.client.operation.duration`: one backend call, as the gateway waited for it.
pub const GENAI_CLIENT_DURATION: &str = "gen_ai_client_operation_duration_seconds";
/// `gen_ai.server.request.duration`: what the client waited, arrival to last byte.
pub const GENAI_SERVER_DURATION: &str = "gen_ai_server_request_duration_seconds";
/// `gen_ai.server.time_to_first_token`.
pub const GENAI_TTFT: &str = "gen_ai_server_time_to_first_token_seconds";
/// `gen_ai.server.time_per_output_token`.
pub const GENAI_TPOT: &str = "gen_ai_server_time_per_output_token_seconds";

/// Installs the global recorder once and returns its handle. Every series gets its
/// `# HELP` text ([`describe`]) and `floodgate_build_info` is set.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = bucket_overrides()
                .into_iter()
                .try_fold(PrometheusBuilder::new(), |b, (matcher, buckets)| {
                    b.set_buckets_for_metric(matcher, buckets)
                });
            let handle = match builder {
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
            };
            describe();
            build_info();
            handle
        })
        .clone()
}

/// `floodgate_build_info`: 1, labelled with the version, the commit and the features.
fn build_info() {
    let mut features = Vec::new();
    if cfg!(feature = "engine") {
        features.push("engine");
    }
    if cfg!(feature = "cuda") {
        features.push("cuda");
    }
    metrics::gauge!(
        "floodgate_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "git_sha" => option_env!("FLOODGATE_GIT_SHA").unwrap_or("unknown"),
        "features" => features.join(","),
    )
    .set(1.0);
}

/// The `# HELP` text of every metric any crate records (docs/metrics.md has the long
/// form; a test checks that every exported series has its text).
fn describe() {
    use metrics::{describe_counter as c, describe_gauge as g, describe_histogram as h, Unit};
    // HTTP and the pipeline.
    c!(
        "floodgate_http_requests_total",
        Unit::Count,
        "Requests that produced a response, by route template, model and status."
    );
    h!(
        "floodgate_http_response_seconds",
        Unit::Seconds,
        "Request arrival to the handler returning its response (response headers for a stream)."
    );
    g!(
        "floodgate_requests_in_flight",
        "Requests whose response has not been produced yet."
    );
    g!(
        "floodgate_streams_open",
        "Streamed answers whose headers went out and whose stream has not ended."
    );
    h!(
        "floodgate_pipeline_stage_seconds",
        Unit::Seconds,
        "Time a generation request spent in each pipeline stage."
    );
    c!(
        "floodgate_request_errors_total",
        Unit::Count,
        "Error responses by OpenAI error code."
    );
    c!(
        "floodgate_requests_throttled_total",
        Unit::Count,
        "Requests refused with 429 by a rate limit or the concurrency cap."
    );
    c!("floodgate_ratelimit_backend_errors_total", Unit::Count, "Limiter calls that failed; the request was admitted or refused per ratelimit.on_backend_error.");
    c!(
        "floodgate_budget_backend_errors_total",
        Unit::Count,
        "Budget reservations that failed because the spend store was unavailable, by action taken."
    );
    c!(
        "floodgate_budget_reseeded_total",
        Unit::Count,
        "Budget ledgers that Redis had lost and that were seeded again from the store."
    );
    c!(
        "floodgate_abuse_decisions_total",
        Unit::Count,
        "Requests from a tripped abuse cluster or a key flagged for maximal-cost traffic."
    );
    c!(
        "floodgate_guard_decisions_total",
        Unit::Count,
        "Guard decisions other than a plain pass."
    );
    c!(
        "floodgate_moderation_inputs_total",
        Unit::Count,
        "Texts scored by /v1/moderations."
    );
    c!(
        "floodgate_feedback_items_total",
        Unit::Count,
        "Feedback items stored."
    );
    c!(
        "floodgate_store_errors_total",
        Unit::Count,
        "Failed store writes, by what was not written."
    );
    // Generation.
    h!(
        "floodgate_time_to_first_token_seconds",
        Unit::Seconds,
        "Start of a generation to its first token, per model variant."
    );
    h!(
        "floodgate_time_per_output_token_seconds",
        Unit::Seconds,
        "(finish - first token) / (completion tokens - 1), per model variant."
    );
    h!(
        "floodgate_generation_duration_seconds",
        Unit::Seconds,
        "Start of a generation to its end, per model variant."
    );
    c!(
        "floodgate_input_tokens_total",
        Unit::Count,
        "Prompt tokens of finished generations."
    );
    c!(
        "floodgate_output_tokens_total",
        Unit::Count,
        "Completion tokens of finished generations."
    );
    c!(
        "floodgate_cascade_requests_total",
        Unit::Count,
        "Requests to a cascade route, by the tier that served them."
    );
    c!("floodgate_cascade_escalations_total", Unit::Count, "Requests a cascade route sent to a later tier, before (pre) or after (post) the small tier answered.");
    g!(
        "floodgate_model_loaded",
        "1 when the model variant is ready to serve, 0 while loading or after a failure."
    );
    c!(
        "floodgate_upstream_attempts_total",
        Unit::Count,
        "Calls to an upstream endpoint, by outcome."
    );
    g!(
        "floodgate_upstream_healthy",
        "1 while the upstream endpoint's last check passed and its breaker is not open."
    );
    g!(
        "floodgate_upstream_breaker_state",
        "The upstream endpoint's circuit breaker: 0 closed, 1 half-open, 2 open."
    );
    // The engine.
    c!(
        "floodgate_engine_generated_tokens_total",
        Unit::Count,
        "Tokens generated by the engine."
    );
    c!(
        "floodgate_engine_prompt_tokens_total",
        Unit::Count,
        "Prompt tokens of requests the engine admitted."
    );
    c!(
        "floodgate_engine_prefix_cache_hit_tokens_total",
        Unit::Count,
        "Prompt tokens reused from the KV cache instead of prefilled."
    );
    c!(
        "floodgate_engine_prefix_cache_hits_total",
        Unit::Count,
        "Admitted requests that reused at least one cached prompt token."
    );
    c!(
        "floodgate_engine_sequences_cancelled_total",
        Unit::Count,
        "Engine requests dropped because the client went away."
    );
    c!(
        "floodgate_engine_sequences_timed_out_total",
        Unit::Count,
        "Engine requests ended by the request timeout."
    );
    g!("floodgate_engine_kv_reserved_ratio", "Running sequences' KV reservations divided by the KV cache size (a worker autoscaling signal).");
    g!(
        "floodgate_engine_queue_depth",
        "Requests waiting for admission into the running batch (a worker autoscaling signal)."
    );
    g!(
        "floodgate_engine_running_sequences",
        "Sequences in the running batch."
    );
    h!(
        "floodgate_engine_batch_size",
        Unit::Count,
        "Running sequences in each forward pass."
    );
    h!(
        "floodgate_engine_batch_tokens",
        Unit::Count,
        "Tokens in each forward pass."
    );
    h!(
        "floodgate_engine_burst_wait_seconds",
        Unit::Seconds,
        "How long an idle engine held a first request for a burst to gather."
    );
    h!(
        "floodgate_engine_queue_wait_seconds",
        Unit::Seconds,
        "Submission to admission into the running batch."
    );
    h!(
        "floodgate_engine_step_seconds",
        Unit::Seconds,
        "Wall time of one forward pass."
    );
    // The event spine.
    c!(
        "floodgate_events_written_total",
        Unit::Count,
        "Events handed to the OS by the event log."
    );
    c!(
        "floodgate_events_delayed_total",
        Unit::Count,
        "Events that found the log's queue full and waited for room."
    );
    c!(
        "floodgate_events_dropped_total",
        Unit::Count,
        "Events lost by the log (overflow = drop, or a failed write), by reason."
    );
    c!(
        "floodgate_events_write_stalls_total",
        Unit::Count,
        "Times the log writer could not write (disk full, I/O error) and retried."
    );
    c!(
        "floodgate_events_ack_timeouts_total",
        Unit::Count,
        "Requests that answered before their event reached the log (events.ack_timeout_ms passed)."
    );
    g!(
        "floodgate_events_log_bytes",
        Unit::Bytes,
        "Bytes in the event log's segments on disk."
    );
    c!(
        "floodgate_events_sink_applied_total",
        Unit::Count,
        "Events a sink applied, by sink."
    );
    c!(
        "floodgate_events_sink_errors_total",
        Unit::Count,
        "Sink batches that failed and will be retried, by sink."
    );
    g!(
        "floodgate_events_sink_lag",
        "Events in the log that a sink has not committed yet, by sink."
    );
    c!(
        "floodgate_events_undecodable_total",
        Unit::Count,
        "Log records a sink could not decode and skipped, by sink."
    );
    c!(
        "floodgate_analytics_events_total",
        Unit::Count,
        "Events the analytics role consumed from JetStream."
    );
    c!(
        "floodgate_analytics_errors_total",
        Unit::Count,
        "Analytics consumer failures (retried)."
    );
    // OpenTelemetry GenAI.
    h!(GENAI_TOKEN_USAGE, Unit::Count, "Tokens per backend call (gen_ai.client.token.usage), by gen_ai_token_type input or output.");
    h!(GENAI_CLIENT_DURATION, Unit::Seconds, "Duration of one backend call as the gateway waited for it (gen_ai.client.operation.duration).");
    h!(GENAI_SERVER_DURATION, Unit::Seconds, "Arrival of a request to the last byte of its answer or refusal (gen_ai.server.request.duration).");
    h!(
        GENAI_TTFT,
        Unit::Seconds,
        "Arrival of a request to its first output token (gen_ai.server.time_to_first_token)."
    );
    h!(
        GENAI_TPOT,
        Unit::Seconds,
        "Time per output token after the first (gen_ai.server.time_per_output_token)."
    );
    g!(
        "floodgate_build_info",
        "Always 1; the labels name the version, commit and features of this build."
    );
    // Drift and evaluation.
    g!("floodgate_drift_detected", "1 when the latest tested window of the key (route or model) drifted from its profile, else 0.");
    c!(
        "floodgate_drift_windows_total",
        Unit::Count,
        "Drift windows tested, by key and result (ok or drift)."
    );
    c!(
        "floodgate_drift_webhook_failures_total",
        Unit::Count,
        "Drift webhook calls that failed after three attempts."
    );
    c!(
        "floodgate_drift_store_errors_total",
        Unit::Count,
        "Drift window results that could not be stored."
    );
    g!(
        "floodgate_eval_accuracy",
        "Accuracy of the latest stored evaluation run, by target and golden set."
    );
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
