//! A model served by several upstream endpoints, seen by the gateway as one backend.
//!
//! Each request picks an endpoint in [`selection_order`] (healthy first, then the
//! gateway's `server.region`, then fewer outstanding requests, then lower latency).
//! An attempt that fails before its first token is tried again: first on every other
//! endpoint in that order (another region if need be) at once, then, when all have
//! been tried, on the best one again after a jittered exponential backoff (or the
//! upstream's `Retry-After`, capped). There are at most `max(retries + 1, endpoints)`
//! attempts. Once a token has been sent nothing is retried: a failure then reaches
//! the client as `Event::Failed`.
//!
//! Health is active (a check per endpoint every `health_interval_ms`) and passive
//! (every attempt's outcome feeds the endpoint's circuit breaker). All endpoints of a
//! model share one `reqwest::Client`, so connections are pooled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::inference::{Event, Events};
use rand::Rng;

use super::health::{selection_order, EndpointHealth};
use super::upstream::{AttemptError, Endpoint, Timeouts, UpstreamRequest, MAX_RETRY_AFTER};
use super::{Backend, BackendInfo, Generation};
use crate::config::ModelConfig;
use crate::error::GatewayError;
use crate::validate::{GenParams, PromptInput};

/// First backoff before trying an endpoint again; doubles each time, up to the cap.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// Context length reported for an upstream model that configures none.
const DEFAULT_CONTEXT: u32 = 32768;

pub struct UpstreamPool {
    info: BackendInfo,
    region: String,
    endpoints: Vec<Arc<Endpoint>>,
    client: reqwest::Client,
    timeouts: Timeouts,
    retries: u32,
    checks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for UpstreamPool {
    fn drop(&mut self) {
        for c in &self.checks {
            c.abort();
        }
    }
}

impl UpstreamPool {
    /// Builds the pool for an upstream `[[model]]` and starts its health checks (so it
    /// must be called inside the runtime). Fails when an API key's variable is unset.
    pub fn from_config(m: &ModelConfig, region: &str, created: u64) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(m.connect_timeout_ms))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut endpoints = Vec::new();
        for (i, e) in m.endpoints.iter().enumerate() {
            let key = match &e.api_key {
                Some(k) => Some(
                    crate::config::resolve_secret(k)
                        .map_err(|err| format!("endpoints[{i}].api_key: {err}"))?,
                ),
                None => None,
            };
            let health = EndpointHealth::new(
                m.breaker_failures,
                Duration::from_millis(m.breaker_cooldown_ms),
            );
            let model = e
                .model
                .clone()
                .unwrap_or_else(|| m.public_name().to_string());
            endpoints.push(Arc::new(
                Endpoint::new(&e.url, &e.region, &model, key, health)
                    .map_err(|err| format!("endpoints[{i}].url: {err}"))?,
            ));
        }
        let interval = Duration::from_millis(m.health_interval_ms);
        let check_timeout = Duration::from_millis(m.connect_timeout_ms) + Duration::from_secs(2);
        let checks = endpoints
            .iter()
            .map(|e| {
                let (e, client, model) = (Arc::clone(e), client.clone(), m.name.clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(interval);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        let ok = e.check(&client, check_timeout).await;
                        if !ok {
                            tracing::warn!(model = %model, endpoint = %e.label, "upstream health check failed");
                        }
                        e.health.record_check(ok, Instant::now());
                        publish(&model, &e);
                    }
                })
            })
            .collect();
        Ok(Self {
            info: BackendInfo {
                model: m.name.clone(),
                context_length: m.context_length.unwrap_or(DEFAULT_CONTEXT),
                chat: true,
                owned_by: "upstream".into(),
                created,
            },
            region: region.to_string(),
            endpoints,
            client,
            timeouts: Timeouts {
                first_byte: Duration::from_millis(m.first_byte_timeout_ms),
                idle: Duration::from_millis(m.idle_timeout_ms),
            },
            retries: m.retries,
            checks,
        })
    }

    /// The next endpoint to try: the best one in selection order among those tried
    /// least so far whose breaker lets a request through.
    fn pick(&self, tried: &[u32]) -> Option<usize> {
        let now = Instant::now();
        let snapshots: Vec<_> = self
            .endpoints
            .iter()
            .map(|e| e.health.snapshot(&e.region, now))
            .collect();
        let order = selection_order(&snapshots, &self.region);
        let mut rounds: Vec<u32> = tried.to_vec();
        rounds.sort_unstable();
        rounds.dedup();
        rounds.into_iter().find_map(|round| {
            order
                .iter()
                .copied()
                .filter(|&i| tried[i] == round)
                .find(|&i| self.endpoints[i].health.try_acquire(now))
        })
    }
}

/// Exports an endpoint's health as gauges.
fn publish(model: &str, e: &Endpoint) {
    let s = e.health.snapshot(&e.region, Instant::now());
    let labels = [
        ("model", model.to_string()),
        ("endpoint", e.label.clone()),
        ("region", e.region.clone()),
    ];
    metrics::gauge!("floodgate_upstream_healthy", &labels).set(if s.healthy { 1.0 } else { 0.0 });
    metrics::gauge!("floodgate_upstream_breaker_state", &labels).set(s.breaker.gauge());
}

fn count(model: &str, e: &Endpoint, outcome: &'static str) {
    metrics::counter!(
        "floodgate_upstream_attempts_total",
        "model" => model.to_string(),
        "endpoint" => e.label.clone(),
        "region" => e.region.clone(),
        "outcome" => outcome
    )
    .increment(1);
}

/// Full-jitter-ish exponential backoff: half to all of `base * 2^(n-1)`, capped.
fn backoff(n: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << n.saturating_sub(1).min(10));
    let d = exp.min(BACKOFF_CAP);
    d.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[async_trait::async_trait]
impl Backend for UpstreamPool {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    async fn generate(
        &self,
        prompt: &PromptInput,
        params: &GenParams,
        _default_max_tokens: u32,
        echo: bool,
    ) -> Result<Generation, GatewayError> {
        let request = UpstreamRequest::new(&self.info.model, prompt, params)?;
        let model = &self.info.model;
        let attempts = (self.retries + 1).max(self.endpoints.len() as u32);
        let mut tried = vec![0u32; self.endpoints.len()];
        let mut retry_after: Vec<Option<Duration>> = vec![None; self.endpoints.len()];
        let mut last: Option<GatewayError> = None;
        for _ in 0..attempts {
            let Some(i) = self.pick(&tried) else {
                break;
            };
            let endpoint = &self.endpoints[i];
            if tried[i] > 0 {
                let wait = retry_after[i].take().unwrap_or_else(|| backoff(tried[i]));
                tokio::time::sleep(wait.min(MAX_RETRY_AFTER)).await;
            }
            tried[i] += 1;
            let outstanding = endpoint.health.start_request();
            match endpoint.start(&self.client, &request, self.timeouts).await {
                Ok(started) => {
                    endpoint.health.record_success(started.time_to_first_token);
                    count(model, endpoint, "ok");
                    publish(model, endpoint);
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
                    tokio::spawn(started.pump(
                        tx,
                        self.timeouts.idle,
                        Arc::clone(endpoint),
                        outstanding,
                    ));
                    let prompt_text = match (echo, prompt) {
                        (true, PromptInput::Text(t)) => Some(t.clone()),
                        _ => None,
                    };
                    return Ok(Generation {
                        // Estimated: the upstream's count arrives with the finish, and a
                        // client that leaves before it is still charged for its prompt.
                        prompt_tokens: request.prompt_estimate,
                        prompt_text,
                        events: Events::channel(rx),
                    });
                }
                Err(AttemptError::Fatal(e)) => {
                    count(model, endpoint, "request_error");
                    return Err(e);
                }
                Err(AttemptError::Retryable {
                    error,
                    retry_after: after,
                    breaker,
                }) => {
                    count(model, endpoint, "retryable_error");
                    if breaker {
                        endpoint.health.record_failure(Instant::now());
                    }
                    publish(model, endpoint);
                    tracing::warn!(model = %model, endpoint = %endpoint.label, region = %endpoint.region, error = %error, "upstream attempt failed before the first token; trying again");
                    retry_after[i] = after;
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            GatewayError::Overloaded(format!(
                "Every upstream endpoint of `{model}` is unavailable (circuit open); retry shortly."
            ))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_under_the_cap() {
        for n in 1..20 {
            let d = backoff(n);
            let full = BACKOFF_BASE
                .saturating_mul(1u32 << (n - 1).min(10))
                .min(BACKOFF_CAP);
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
    }
}
