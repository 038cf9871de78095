//! One OpenAI-compatible upstream endpoint: vLLM, TGI, llama.cpp's server, Ollama, a
//! hosted API or another Floodgate (`--role worker`).
//!
//! A request is always sent with `stream: true` and `stream_options.include_usage`,
//! so one code path serves plain and streamed clients; the SSE chunks (parsed by
//! `eventsource-stream`) become the engine's [`Event`]s. An attempt counts as started
//! only once the first token (or the finish) has arrived: everything before that is
//! bounded by `first_byte_timeout_ms` and may be retried elsewhere by the pool
//! (`pool.rs`); everything after it is pumped by a task that ends the generation with
//! `Event::Failed` if the upstream breaks, stalls past `idle_timeout_ms` or closes
//! without finishing. That task drops the HTTP response as soon as the receiver is
//! dropped, so a client that goes away cancels the upstream request too.
//!
//! **Invariant:** the API key is only ever written into the `Authorization` header;
//! it has no `Display` and its `Debug` prints `***`.

use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::inference::{
    Event, Finish, FinishReason, Priority, TokenLogprob, TokenOutput, TopLogprob,
};
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::health::{EndpointHealth, Outstanding};
use crate::error::GatewayError;
use crate::validate::{GenParams, PromptInput};

/// How long an upstream's `Retry-After` is honoured at most before the next attempt.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Error bodies longer than this are cut before they reach a message.
const MAX_ERROR_BODY: usize = 2048;

/// Timeouts shared by every endpoint of one model.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From sending the request to the first token (headers included).
    pub first_byte: Duration,
    /// Longest silence between two chunks once tokens flow.
    pub idle: Duration,
}

/// An API key; never printed.
#[derive(Clone)]
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// One upstream server of a model.
#[derive(Debug)]
pub struct Endpoint {
    /// `…/v1/chat/completions`, `…/v1/completions` and `…/v1/models` under the base
    /// URL (with or without a final `/v1`), parsed once rather than per request.
    chat_url: reqwest::Url,
    completions_url: reqwest::Url,
    models_url: reqwest::Url,
    /// `host:port`: the label in logs and metrics (never the full URL, which could
    /// carry credentials).
    pub label: String,
    pub region: String,
    /// The model's name on the upstream.
    pub model: String,
    api_key: Option<ApiKey>,
    pub health: std::sync::Arc<EndpointHealth>,
}

/// Why an attempt failed before its first token.
#[derive(Debug)]
pub enum AttemptError {
    /// The endpoint's trouble (connection, timeout, 5xx, 408, 429, a stream that broke
    /// early): worth another attempt. `error` is what the client gets if none is left.
    Retryable {
        error: GatewayError,
        retry_after: Option<Duration>,
        /// Whether it counts against the endpoint's breaker (429 does not: busy, not broken).
        breaker: bool,
    },
    /// The request's own fault (a 4xx): returned to the client as it is.
    Fatal(GatewayError),
}

type SseStream = Pin<
    Box<
        dyn Stream<
                Item = Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<reqwest::Error>,
                >,
            > + Send,
    >,
>;

/// An attempt that produced its first events; [`Started::pump`] forwards the rest.
pub struct Started {
    first: Vec<Event>,
    rest: SseStream,
    decoder: Decoder,
    pub time_to_first_token: Duration,
}

impl Endpoint {
    /// `api_key` is the resolved secret (see `config::resolve_secret`).
    pub fn new(
        url: &str,
        region: &str,
        model: &str,
        api_key: Option<String>,
        health: EndpointHealth,
    ) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
        let host = parsed.host_str().unwrap_or_default();
        let label = match parsed.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let base = url.trim_end_matches('/');
        let under = |path: &str| {
            let full = if base.ends_with("/v1") {
                format!("{base}{path}")
            } else {
                format!("{base}/v1{path}")
            };
            reqwest::Url::parse(&full).map_err(|e| format!("`{url}`: {e}"))
        };
        Ok(Self {
            chat_url: under("/chat/completions")?,
            completions_url: under("/completions")?,
            models_url: under("/models")?,
            label,
            region: region.to_string(),
            model: model.to_string(),
            api_key: api_key.filter(|k| !k.is_empty()).map(ApiKey),
            health: std::sync::Arc::new(health),
        })
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(k) => req.bearer_auth(&k.0),
            None => req,
        }
    }

    /// An active health check: `GET /v1/models` answers 2xx within `timeout`.
    pub async fn check(&self, client: &reqwest::Client, timeout: Duration) -> bool {
        let req = self.authorize(client.get(self.models_url.clone()));
        matches!(
            tokio::time::timeout(timeout, req.send()).await,
            Ok(Ok(r)) if r.status().is_success()
        )
    }

    /// Sends one attempt and waits for its first token.
    pub async fn start(
        &self,
        client: &reqwest::Client,
        request: &UpstreamRequest,
        timeouts: Timeouts,
    ) -> Result<Started, AttemptError> {
        let started = Instant::now();
        let mut body = request.body.clone();
        body.insert("model".into(), Value::String(self.model.clone()));
        let url = if request.chat {
            &self.chat_url
        } else {
            &self.completions_url
        };
        let mut req = self.authorize(client.post(url.clone()).json(&body));
        // Trace context goes to upstreams and workers; a traced call records its span.
        let otel = crate::otel::current();
        let call = otel.as_ref().and_then(|o| o.outgoing());
        if let Some((traceparent, _)) = &call {
            req = req.header("traceparent", traceparent);
        }
        let result = self.attempt(req, request, started, timeouts).await;
        if let (Some(otel), Some((_, Some(span_id)))) = (&otel, call) {
            otel.record_call(crate::otel::CallSpan {
                span_id,
                start: started,
                duration: started.elapsed(),
                model: self.model.clone(),
                endpoint: self.label.clone(),
                region: self.region.clone(),
                error: match &result {
                    Ok(_) => String::new(),
                    Err(AttemptError::Fatal(e)) | Err(AttemptError::Retryable { error: e, .. }) => {
                        e.code().to_string()
                    }
                },
            });
        }
        result
    }

    /// One attempt, from sending to the first token.
    async fn attempt(
        &self,
        req: reqwest::RequestBuilder,
        request: &UpstreamRequest,
        started: Instant,
        timeouts: Timeouts,
    ) -> Result<Started, AttemptError> {
        let response = match tokio::time::timeout(timeouts.first_byte, req.send()).await {
            Err(_) => return Err(self.timed_out(timeouts.first_byte)),
            Ok(Err(e)) => {
                return Err(AttemptError::Retryable {
                    error: GatewayError::Overloaded(format!(
                        "The upstream {} could not be reached: {}",
                        self.label,
                        e.without_url()
                    )),
                    retry_after: None,
                    breaker: true,
                })
            }
            Ok(Ok(r)) => r,
        };
        if !response.status().is_success() {
            return Err(self.refused(response, started, timeouts).await);
        }
        let mut rest: SseStream = Box::pin(response.bytes_stream().eventsource());
        let mut decoder = Decoder::new(request.chat, started);
        decoder.prompt_estimate = request.prompt_estimate;
        let first = self
            .first_events(&mut rest, &mut decoder, started, timeouts)
            .await?;
        Ok(Started {
            first,
            rest,
            decoder,
            time_to_first_token: started.elapsed(),
        })
    }

    /// An error status: what to retry and what the client would see.
    async fn refused(
        &self,
        response: reqwest::Response,
        started: Instant,
        timeouts: Timeouts,
    ) -> AttemptError {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s).min(MAX_RETRY_AFTER));
        let left = timeouts.first_byte.saturating_sub(started.elapsed());
        let text = match tokio::time::timeout(left, response.text()).await {
            Ok(Ok(t)) => t,
            _ => String::new(),
        };
        self.classify(status, &text, retry_after)
    }

    /// Reads the stream until it yields its first events (a token, or the end).
    async fn first_events(
        &self,
        rest: &mut SseStream,
        decoder: &mut Decoder,
        started: Instant,
        timeouts: Timeouts,
    ) -> Result<Vec<Event>, AttemptError> {
        loop {
            let left = timeouts.first_byte.saturating_sub(started.elapsed());
            let next = match tokio::time::timeout(left, rest.next()).await {
                Err(_) => return Err(self.timed_out(timeouts.first_byte)),
                Ok(next) => next,
            };
            let step = match next {
                Some(Ok(sse)) => decoder.feed(&sse.data),
                Some(Err(e)) => Err(format!("the stream broke: {e}")),
                None => decoder.end(),
            };
            match step {
                Ok(events) if events.is_empty() => continue,
                Ok(events) => return Ok(events),
                Err(why) => {
                    return Err(AttemptError::Retryable {
                        error: GatewayError::Overloaded(format!(
                            "The upstream {} failed before the first token: {why}",
                            self.label
                        )),
                        retry_after: None,
                        breaker: true,
                    })
                }
            }
        }
    }

    fn timed_out(&self, after: Duration) -> AttemptError {
        tracing::warn!(endpoint = %self.label, after_ms = after.as_millis() as u64, "upstream sent no first token in time");
        AttemptError::Retryable {
            error: GatewayError::Timeout,
            retry_after: None,
            breaker: true,
        }
    }

    /// Maps an upstream error status to a retry decision and the client's error.
    fn classify(
        &self,
        status: StatusCode,
        body: &str,
        retry_after: Option<Duration>,
    ) -> AttemptError {
        let (message, param) = error_message(body);
        let message = if message.is_empty() {
            format!("HTTP {status}")
        } else {
            message
        };
        let label = &self.label;
        match status.as_u16() {
            408 | 429 | 500..=599 => AttemptError::Retryable {
                error: if status == StatusCode::TOO_MANY_REQUESTS {
                    GatewayError::TooBusy(format!("The upstream {label} is busy: {message}"))
                } else {
                    GatewayError::Overloaded(format!(
                        "The upstream {label} answered {status}: {message}"
                    ))
                },
                retry_after,
                breaker: status != StatusCode::TOO_MANY_REQUESTS,
            },
            401 | 403 => AttemptError::Fatal(GatewayError::Upstream(format!(
                "The upstream {label} refused the gateway's credentials ({status}): {message}"
            ))),
            404 => AttemptError::Fatal(GatewayError::Upstream(format!(
                "The upstream {label} does not serve `{}` ({status}): {message}",
                self.model
            ))),
            _ => AttemptError::Fatal(GatewayError::InvalidRequest {
                message,
                param,
                code: None,
            }),
        }
    }
}

/// `{"error": {"message", "param"}}` (OpenAI), `{"error": "..."}`, `{"message": ...}` or
/// the raw text, cut to a sane length.
fn error_message(body: &str) -> (String, Option<String>) {
    let cut = |s: &str| s.chars().take(MAX_ERROR_BODY).collect::<String>();
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return (cut(body.trim()), None);
    };
    let err = v.get("error").unwrap_or(&v);
    if let Some(s) = err.as_str() {
        return (cut(s), None);
    }
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| cut(body.trim()), cut);
    let param = err.get("param").and_then(Value::as_str).map(str::to_string);
    (message, param)
}

impl Started {
    /// Forwards the first events and then the rest of the stream to `tx` until the
    /// generation finishes, fails, or `tx`'s receiver is dropped (which drops the
    /// upstream response). `outstanding` is released when it returns.
    pub async fn pump(
        mut self,
        tx: UnboundedSender<Event>,
        idle: Duration,
        endpoint: std::sync::Arc<Endpoint>,
        outstanding: Outstanding,
    ) {
        let _outstanding = outstanding;
        for event in std::mem::take(&mut self.first) {
            let last = !matches!(event, Event::Token(_));
            if tx.send(event).is_err() || last {
                return;
            }
        }
        loop {
            let next = tokio::select! {
                () = tx.closed() => return,
                next = tokio::time::timeout(idle, self.rest.next()) => next,
            };
            let step = match next {
                Err(_) => Err(format!("nothing arrived for {} ms", idle.as_millis())),
                Ok(Some(Ok(sse))) => self.decoder.feed(&sse.data),
                Ok(Some(Err(e))) => Err(format!("the stream broke: {e}")),
                Ok(None) => self.decoder.end(),
            };
            match step {
                Ok(events) => {
                    for event in events {
                        let last = !matches!(event, Event::Token(_));
                        if tx.send(event).is_err() || last {
                            return;
                        }
                    }
                }
                Err(why) => {
                    tracing::warn!(endpoint = %endpoint.label, error = %why, "upstream failed mid-stream");
                    endpoint.health.record_failure(Instant::now());
                    let _ = tx.send(Event::Failed(GatewayError::Upstream(format!(
                        "The upstream {} failed mid-stream: {why}",
                        endpoint.label
                    ))));
                    return;
                }
            }
        }
    }
}

/// A request in the upstream's terms, less the `model` each endpoint fills in.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub chat: bool,
    pub body: Map<String, Value>,
    /// Our estimate of the prompt's tokens, used until (or unless) the upstream
    /// reports its usage.
    pub prompt_estimate: u32,
}

impl UpstreamRequest {
    /// Chat prompts go to `/v1/chat/completions`, text to `/v1/completions`; token-id
    /// prompts cannot be sent (the upstream's vocabulary is not ours to know).
    pub fn new(
        model: &str,
        prompt: &PromptInput,
        params: &GenParams,
    ) -> Result<Self, GatewayError> {
        let mut body = Map::new();
        let chat = match prompt {
            PromptInput::Chat(messages) => {
                let messages: Vec<Value> = messages
                    .iter()
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect();
                body.insert("messages".into(), Value::Array(messages));
                true
            }
            PromptInput::Text(text) => {
                body.insert("prompt".into(), Value::String(text.clone()));
                false
            }
            PromptInput::Tokens(_) => {
                return Err(GatewayError::InvalidRequest {
                    message: format!(
                        "The model `{model}` is served by an upstream server, which does not take token-id prompts; send the prompt as text."
                    ),
                    param: Some("prompt".into()),
                    code: None,
                })
            }
        };
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
        insert_params(&mut body, params, chat);
        Ok(Self {
            chat,
            body,
            prompt_estimate: prompt.estimated_tokens(),
        })
    }
}

/// The generation parameters in OpenAI's names (and the common extensions).
fn insert_params(body: &mut Map<String, Value>, params: &GenParams, chat: bool) {
    if let Some(n) = params.max_tokens {
        body.insert("max_tokens".into(), json!(n));
    }
    let s = &params.sampling;
    body.insert("temperature".into(), json!(s.temperature));
    body.insert("top_p".into(), json!(s.top_p));
    if s.presence_penalty != 0.0 {
        body.insert("presence_penalty".into(), json!(s.presence_penalty));
    }
    if s.frequency_penalty != 0.0 {
        body.insert("frequency_penalty".into(), json!(s.frequency_penalty));
    }
    // Not in OpenAI's API, but vLLM, llama.cpp, Ollama and Floodgate take them;
    // sent only when set so strict servers see nothing new.
    if s.top_k > 0 {
        body.insert("top_k".into(), json!(s.top_k));
    }
    if s.min_p > 0.0 {
        body.insert("min_p".into(), json!(s.min_p));
    }
    if params.ignore_eos {
        body.insert("ignore_eos".into(), json!(true));
    }
    if let Some(seed) = s.seed {
        // Validation reinterpreted the client's i64; give it back as it came.
        body.insert("seed".into(), json!(seed as i64));
    }
    if !s.logit_bias.is_empty() {
        let bias: Map<String, Value> = s
            .logit_bias
            .iter()
            .map(|(t, b)| (t.to_string(), json!(b)))
            .collect();
        body.insert("logit_bias".into(), Value::Object(bias));
    }
    if !params.stop.is_empty() {
        body.insert("stop".into(), json!(params.stop));
    }
    if let Some(k) = params.logprobs {
        if chat {
            body.insert("logprobs".into(), json!(true));
            body.insert("top_logprobs".into(), json!(k));
        } else {
            body.insert("logprobs".into(), json!(k));
        }
    }
    if params.priority == Priority::Batch {
        body.insert("service_tier".into(), json!("flex"));
    }
}

/// Turns the upstream's SSE `data:` payloads into events.
struct Decoder {
    chat: bool,
    started: Instant,
    finish_reason: Option<FinishReason>,
    usage: Option<(u32, u32, u32)>,
    /// Completion tokens counted from the chunks, for upstreams that send no usage.
    counted: u32,
    /// Prompt tokens to report when the upstream sends no usage.
    prompt_estimate: u32,
    done: bool,
}

impl Decoder {
    fn new(chat: bool, started: Instant) -> Self {
        Self {
            chat,
            started,
            finish_reason: None,
            usage: None,
            counted: 0,
            prompt_estimate: 0,
            done: false,
        }
    }

    /// Events for one payload; `Err` when the upstream reported an error or sent junk.
    fn feed(&mut self, data: &str) -> Result<Vec<Event>, String> {
        if self.done {
            return Ok(Vec::new());
        }
        let data = data.trim();
        if data == "[DONE]" {
            return self.end();
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let chunk: Value =
            serde_json::from_str(data).map_err(|e| format!("a chunk is not JSON: {e}"))?;
        if let Some(err) = chunk.get("error") {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| err.to_string(), str::to_string);
            return Err(format!("it sent an error: {message}"));
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0) as u32;
            self.usage = Some((
                n("/prompt_tokens"),
                n("/completion_tokens"),
                n("/prompt_tokens_details/cached_tokens"),
            ));
        }
        let mut events = Vec::new();
        let Some(choice) = chunk.pointer("/choices/0") else {
            return Ok(events);
        };
        let text = if self.chat {
            choice.pointer("/delta/content")
        } else {
            choice.get("text")
        }
        .and_then(Value::as_str)
        .unwrap_or_default();
        let logprobs = if self.chat {
            chat_logprobs(choice.pointer("/logprobs/content"))
        } else {
            completion_logprobs(choice.get("logprobs"))
        };
        if !text.is_empty() || !logprobs.is_empty() {
            self.counted += if logprobs.is_empty() {
                1
            } else {
                logprobs.len() as u32
            };
            events.push(Event::Token(TokenOutput {
                text: text.to_string(),
                logprobs,
            }));
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(match reason {
                "length" => FinishReason::Length,
                _ => FinishReason::Stop,
            });
        }
        Ok(events)
    }

    /// The stream ended (`[DONE]` or the connection closed).
    fn end(&mut self) -> Result<Vec<Event>, String> {
        if self.done {
            return Ok(Vec::new());
        }
        let Some(reason) = self.finish_reason else {
            return Err("it closed the stream before the generation finished".into());
        };
        self.done = true;
        let (prompt_tokens, completion_tokens, cached) =
            self.usage
                .unwrap_or((self.prompt_estimate, self.counted, 0));
        Ok(vec![Event::Finished(Finish {
            reason,
            prompt_tokens,
            completion_tokens,
            cached_prompt_tokens: cached,
            queued: Duration::ZERO,
            admitted: self.started,
            finished: Instant::now(),
        })])
    }
}

fn bytes_of(v: &Value, token: &str) -> Vec<u8> {
    v.get("bytes")
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .filter_map(Value::as_u64)
                .map(|x| x.min(255) as u8)
                .collect()
        })
        .unwrap_or_else(|| token.as_bytes().to_vec())
}

/// Chat logprobs: `logprobs.content[] = {token, logprob, bytes, top_logprobs[]}`.
fn chat_logprobs(content: Option<&Value>) -> Vec<TokenLogprob> {
    let Some(items) = content.and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let token = item
                .get("token")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let top = item
                .get("top_logprobs")
                .and_then(Value::as_array)
                .map(|alts| {
                    alts.iter()
                        .map(|a| {
                            let t = a
                                .get("token")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string();
                            TopLogprob {
                                bytes: bytes_of(a, &t),
                                logprob: a.get("logprob").and_then(Value::as_f64).unwrap_or(0.0)
                                    as f32,
                                token: t,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            TokenLogprob {
                bytes: bytes_of(item, &token),
                logprob: item.get("logprob").and_then(Value::as_f64).unwrap_or(0.0) as f32,
                token,
                top,
            }
        })
        .collect()
}

/// Legacy completions logprobs: parallel `tokens`, `token_logprobs`, `top_logprobs`
/// (a map token → logprob per position).
fn completion_logprobs(lp: Option<&Value>) -> Vec<TokenLogprob> {
    let Some(lp) = lp.filter(|v| v.is_object()) else {
        return Vec::new();
    };
    let list = |k: &str| {
        lp.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (tokens, logprobs, tops) = (list("tokens"), list("token_logprobs"), list("top_logprobs"));
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let token = t.as_str().unwrap_or_default().to_string();
            let mut top: Vec<TopLogprob> = tops
                .get(i)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| TopLogprob {
                            token: k.clone(),
                            bytes: k.as_bytes().to_vec(),
                            logprob: v.as_f64().unwrap_or(0.0) as f32,
                        })
                        .collect()
                })
                .unwrap_or_default();
            top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
            TokenLogprob {
                bytes: token.as_bytes().to_vec(),
                logprob: logprobs.get(i).and_then(Value::as_f64).unwrap_or(0.0) as f32,
                token,
                top,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(events: &[Event]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Token(t) => Some(t.text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn chat_chunks_become_tokens_and_a_finish_with_the_upstreams_usage() {
        let mut d = Decoder::new(true, Instant::now());
        let mut all = Vec::new();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":{"content":[{"token":"Hel","logprob":-0.5,"bytes":[72,101,108],"top_logprobs":[{"token":"Hel","logprob":-0.5},{"token":"Hi","logprob":-1.5}]}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"length"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":3}}}"#,
            "[DONE]",
        ] {
            all.extend(d.feed(data).unwrap());
        }
        assert_eq!(tokens(&all), "Hello");
        let Event::Token(first) = &all[0] else {
            panic!("{all:?}")
        };
        assert_eq!(first.logprobs[0].bytes, b"Hel");
        assert_eq!(first.logprobs[0].top[1].token, "Hi");
        let Some(Event::Finished(f)) = all.last() else {
            panic!("{all:?}")
        };
        assert_eq!(f.reason, FinishReason::Length);
        assert_eq!(
            (f.prompt_tokens, f.completion_tokens, f.cached_prompt_tokens),
            (7, 2, 3)
        );
    }

    #[test]
    fn without_usage_completion_tokens_are_counted_and_an_unfinished_stream_is_an_error() {
        let mut d = Decoder::new(false, Instant::now());
        d.feed(r#"{"choices":[{"text":"a"}]}"#).unwrap();
        d.feed(r#"{"choices":[{"text":"b","finish_reason":"stop"}]}"#)
            .unwrap();
        let Ok(events) = d.end() else { panic!() };
        let Some(Event::Finished(f)) = events.last() else {
            panic!()
        };
        assert_eq!(f.completion_tokens, 2);
        assert_eq!(f.prompt_tokens, 0, "no estimate given");
        let mut d = Decoder::new(false, Instant::now());
        d.prompt_estimate = 12;
        d.feed(r#"{"choices":[{"text":"b","finish_reason":"stop"}]}"#)
            .unwrap();
        let Ok(events) = d.end() else { panic!() };
        let Some(Event::Finished(f)) = events.last() else {
            panic!()
        };
        assert_eq!((f.prompt_tokens, f.completion_tokens), (12, 1));

        let mut d = Decoder::new(true, Instant::now());
        d.feed(r#"{"choices":[{"delta":{"content":"a"}}]}"#)
            .unwrap();
        assert!(d.end().is_err());
        assert!(d
            .feed(r#"{"error":{"message":"boom"}}"#)
            .unwrap_err()
            .contains("boom"));
    }

    #[test]
    fn completion_logprobs_are_mapped_best_first() {
        let v: Value = serde_json::from_str(
            r#"{"tokens":["x"],"token_logprobs":[-0.1],"top_logprobs":[{"y":-3.0,"x":-0.1}]}"#,
        )
        .unwrap();
        let lp = completion_logprobs(Some(&v));
        assert_eq!(lp[0].token, "x");
        assert_eq!(lp[0].top[0].token, "x");
        assert_eq!(lp[0].top[1].token, "y");
    }

    #[test]
    fn upstream_errors_are_classified() {
        let e = Endpoint::new(
            "http://127.0.0.1:9/v1",
            "eu",
            "m",
            Some("sk-secret".into()),
            EndpointHealth::new(3, Duration::from_secs(1)),
        )
        .unwrap();
        assert_eq!(e.models_url.as_str(), "http://127.0.0.1:9/v1/models");
        assert_eq!(
            e.chat_url.as_str(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        let bare = Endpoint::new(
            "http://127.0.0.1:9/",
            "eu",
            "m",
            None,
            EndpointHealth::new(3, Duration::from_secs(1)),
        )
        .unwrap();
        assert_eq!(
            bare.completions_url.as_str(),
            "http://127.0.0.1:9/v1/completions"
        );
        assert!(!format!("{e:?}").contains("sk-secret"));
        let bad = e.classify(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"bad temperature","param":"temperature"}}"#,
            None,
        );
        match bad {
            AttemptError::Fatal(GatewayError::InvalidRequest { message, param, .. }) => {
                assert_eq!(message, "bad temperature");
                assert_eq!(param.as_deref(), Some("temperature"));
            }
            other => panic!("{other:?}"),
        }
        for (status, breaker) in [(503, true), (500, true), (408, true), (429, false)] {
            match e.classify(StatusCode::from_u16(status).unwrap(), "x", None) {
                AttemptError::Retryable { breaker: b, .. } => assert_eq!(b, breaker, "{status}"),
                other => panic!("{status}: {other:?}"),
            }
        }
        assert!(matches!(
            e.classify(StatusCode::UNAUTHORIZED, "no", None),
            AttemptError::Fatal(GatewayError::Upstream(_))
        ));
    }

    #[test]
    fn token_prompts_are_refused_and_params_are_passed() {
        let params = GenParams {
            max_tokens: Some(5),
            sampling: crate::inference::SamplingParams {
                temperature: 0.0,
                seed: Some(7),
                ..Default::default()
            },
            stop: vec!["\n".into()],
            logprobs: Some(2),
            ignore_eos: false,
            priority: Priority::Interactive,
        };
        let err = UpstreamRequest::new("m", &PromptInput::Tokens(vec![1, 2]), &params).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        let r = UpstreamRequest::new("m", &PromptInput::Text("hi".into()), &params).unwrap();
        assert!(!r.chat);
        let b = Value::Object(r.body);
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_tokens"], 5);
        assert_eq!(b["seed"], 7);
        assert_eq!(b["stop"][0], "\n");
        assert_eq!(b["logprobs"], 2);
    }
}
