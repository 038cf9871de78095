//! `POST /v1/chat/completions` and `POST /v1/completions`, plain and streamed.
//!
//! Both endpoints share the path: validate → find the backend → generate → shape the
//! events as one JSON body or as SSE chunks. A streamed generation is cancelled as soon
//! as the client goes away, because dropping the SSE body drops the engine receiver.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use floodgate_engine::{Event, FinishReason as EngineFinish, TokenLogprob as EngineLogprob};
use floodgate_protocol as p;
use futures::Stream;

use crate::admission::{Ask, Permit};
use crate::auth::{Caller, ClientIp, Scope};
use crate::backend::Generation;
use crate::edge::{RequestId, ValidJson};
use crate::error::GatewayError;
use crate::guard::{Guard, LogprobGate, OutputScreen};
use crate::telemetry::GenerationTimer;
use crate::validate::{self, PromptInput, ValidRequest};
use crate::AppState;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Chat,
    Text,
}

pub async fn chat(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(ip): Extension<ClientIp>,
    request_id: Option<Extension<RequestId>>,
    ValidJson(req): ValidJson<p::ChatCompletionRequest>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Inference)?;
    let valid = validate::chat(req, &state.config.limits)?;
    let id = request_id.map(|Extension(r)| r);
    run(state, &caller, ip, id, valid, Api::Chat).await
}

pub async fn completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(ip): Extension<ClientIp>,
    request_id: Option<Extension<RequestId>>,
    ValidJson(req): ValidJson<p::CompletionRequest>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Inference)?;
    let valid = validate::completion(req, &state.config.limits)?;
    let id = request_id.map(|Extension(r)| r);
    run(state, &caller, ip, id, valid, Api::Text).await
}

/// Prompts estimated above this many tokens are screened on a blocking thread.
const GUARD_INLINE_TOKENS: f64 = 1024.0;

/// A cheap upper-side guess of the prompt's tokens before the tokenizer has seen it
/// (about 4 bytes a token for English; the permit settles to the real count).
fn estimate_prompt_tokens(prompt: &validate::PromptInput) -> f64 {
    let bytes = match prompt {
        validate::PromptInput::Chat(messages) => {
            messages.iter().map(|m| m.content.len() + 8).sum::<usize>()
        }
        validate::PromptInput::Text(t) => t.len(),
        validate::PromptInput::Tokens(t) => return t.len() as f64,
    };
    (bytes as f64 / 4.0).ceil()
}

/// What a request costs at the model's configured prices.
fn cost_usd(price: (f64, f64), prompt_tokens: f64, completion_tokens: f64) -> f64 {
    (prompt_tokens * price.0 + completion_tokens * price.1) / 1000.0
}

async fn run(
    state: AppState,
    caller: &Caller,
    ip: ClientIp,
    request_id: Option<RequestId>,
    req: ValidRequest,
    api: Api,
) -> Result<Response, GatewayError> {
    let started = Instant::now();
    let mut req = req;
    let backend = state.registry.get(&req.model)?;
    let price = state
        .config
        .model
        .iter()
        .find(|m| m.name == req.model)
        .map_or((0.0, 0.0), |m| {
            (m.usd_per_1k_prompt_tokens, m.usd_per_1k_completion_tokens)
        });
    let prompt_estimate = estimate_prompt_tokens(&req.prompt);
    // A request can never use more than the model's context, whatever it asks for
    // (asking for more is the engine's 400, not a rate limit).
    let context = f64::from(backend.info().context_length.max(1));
    let prompt_estimate = prompt_estimate.min(context);
    let max_tokens = f64::from(
        req.params
            .max_tokens
            .unwrap_or(state.config.limits.default_max_tokens),
    )
    .min(context - prompt_estimate);
    let mut permit = state
        .admission
        .admit(
            caller,
            ip.0,
            Ask {
                tokens: prompt_estimate + max_tokens,
                cost_usd: cost_usd(price, prompt_estimate, max_tokens),
            },
        )
        .await?;
    // Stage 4: the input guard, then the abuse-cluster check on what it normalised.
    let model_config = state.config.model.iter().find(|m| m.name == req.model);
    let screened = if prompt_estimate > GUARD_INLINE_TOKENS || state.guard.has_slow_classifier() {
        // Long prompts, and any prompt a full-encoder classifier reads, take
        // milliseconds to screen: off the async workers.
        let guard = Arc::clone(&state.guard);
        let model = model_config.cloned();
        let mut prompt = std::mem::replace(&mut req.prompt, PromptInput::Tokens(Vec::new()));
        let (result, prompt) = tokio::task::spawn_blocking(move || {
            let r = guard.check_input(&mut prompt, model.as_ref());
            (r, prompt)
        })
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
        req.prompt = prompt;
        result
    } else {
        state.guard.check_input(&mut req.prompt, model_config)
    };
    let (input, normalized) = match screened {
        Ok(x) => x,
        Err(e) => {
            permit.used(0, 0.0);
            return Err(e);
        }
    };
    let fraction = state
        .admission
        .cost_fraction(caller, prompt_estimate + max_tokens);
    let cluster = state
        .guard
        .check_cluster(caller.key_id(), ip.0, &normalized, fraction)
        .inspect_err(|_| permit.used(0, 0.0))?;
    if let Some(cluster) = cluster {
        if let Err(e) = state.admission.throttle(&cluster).await {
            permit.used(0, 0.0);
            return Err(e);
        }
    }
    crate::feedback::record_owner(&state, caller, request_id.as_ref(), &req.model);
    let mut guard_notes = Vec::new();
    if input.flagged {
        guard_notes.push("input-flagged");
    }
    if input.redacted > 0 {
        guard_notes.push("input-redacted");
    }
    let output = Output {
        guard: Arc::clone(&state.guard),
        model: model_config.cloned(),
    };
    let generation = backend
        .generate(
            &req.prompt,
            &req.params,
            state.config.limits.default_max_tokens,
            req.echo,
        )
        .await
        .map_err(|e| match (api, e) {
            // The engine speaks of "messages"; on the text endpoint the client sent a prompt.
            (
                Api::Text,
                GatewayError::InvalidRequest {
                    message,
                    param,
                    code,
                },
            ) if param.as_deref() == Some("messages") => GatewayError::InvalidRequest {
                message,
                param: Some("prompt".into()),
                code,
            },
            (_, e) => e,
        });
    let generation = match generation {
        Ok(g) => g,
        Err(e) => {
            // Refused before any work: give the reservation back.
            permit.used(0, 0.0);
            return Err(e);
        }
    };
    let meta = Meta {
        id: match api {
            Api::Chat => format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            Api::Text => format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
        },
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: req.model.clone(),
        api,
        include_usage: req.include_usage,
        top_logprobs: req.params.logprobs,
    };
    let timer = GenerationTimer::new(&req.model, started);
    let headers = std::mem::take(&mut permit.headers);
    let settle = Settle { permit, price };
    let mut response = if req.stream {
        stream_response(meta, generation, timer, settle, output).into_response()
    } else {
        let (response, notes) = collect_response(meta, generation, timer, settle, output).await?;
        guard_notes.extend(notes);
        response
    };
    for (n, v) in headers {
        response.headers_mut().insert(n, v);
    }
    if !guard_notes.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&guard_notes.join(",")) {
            response.headers_mut().insert("x-floodgate-guard", v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&req.model) {
        response.headers_mut().insert("x-floodgate-model", v);
    }
    Ok(response)
}

/// Stage 8's inputs: the guard and the model's policy overrides.
struct Output {
    guard: Arc<Guard>,
    model: Option<crate::config::ModelConfig>,
}

/// The admission permit and the prices to settle it with once usage is known.
struct Settle {
    permit: Permit,
    price: (f64, f64),
}

impl Settle {
    fn finished(&mut self, prompt_tokens: u32, completion_tokens: u32) {
        let cost = cost_usd(
            self.price,
            f64::from(prompt_tokens),
            f64::from(completion_tokens),
        );
        self.permit
            .used(prompt_tokens.saturating_add(completion_tokens), cost);
    }
}

struct Meta {
    id: String,
    created: u64,
    model: String,
    api: Api,
    include_usage: bool,
    top_logprobs: Option<usize>,
}

fn finish_reason(r: EngineFinish) -> p::FinishReason {
    match r {
        EngineFinish::Stop => p::FinishReason::Stop,
        EngineFinish::Length => p::FinishReason::Length,
    }
}

fn chat_logprob(lp: &EngineLogprob) -> p::TokenLogprob {
    p::TokenLogprob {
        token: lp.token.clone(),
        logprob: lp.logprob,
        bytes: lp.bytes.clone(),
        top_logprobs: lp
            .top
            .iter()
            .map(|t| p::TopLogprob {
                token: t.token.clone(),
                logprob: t.logprob,
                bytes: t.bytes.clone(),
            })
            .collect(),
    }
}

/// Appends engine logprobs in the legacy completions shape.
fn push_text_logprobs(out: &mut p::CompletionLogprobs, lps: &[EngineLogprob], offset: &mut u32) {
    for lp in lps {
        out.tokens.push(lp.token.clone());
        out.token_logprobs.push(lp.logprob);
        out.top_logprobs.push(
            lp.top
                .iter()
                .map(|t| (t.token.clone(), t.logprob))
                .collect(),
        );
        out.text_offset.push(*offset);
        *offset += lp.token.len() as u32;
    }
}

async fn collect_response(
    meta: Meta,
    mut generation: Generation,
    mut timer: GenerationTimer,
    mut settle: Settle,
    output: Output,
) -> Result<(Response, Vec<&'static str>), GatewayError> {
    let mut text = generation.prompt_text.take().unwrap_or_default();
    let echo_len = text.len();
    let mut logprobs = Vec::new();
    let finish = loop {
        match generation.events.recv().await {
            Some(Event::Token(t)) => {
                timer.token();
                text.push_str(&t.text);
                logprobs.extend(t.logprobs);
            }
            Some(Event::Finished(f)) => break f,
            Some(Event::Failed(e)) => return Err(e.into()),
            None => {
                return Err(GatewayError::Internal(
                    "the engine stopped mid-generation".into(),
                ))
            }
        }
    };
    timer.finish(finish.prompt_tokens, finish.completion_tokens);
    settle.finished(finish.prompt_tokens, finish.completion_tokens);
    let usage = p::Usage::new(finish.prompt_tokens, finish.completion_tokens)
        .with_cached(finish.cached_prompt_tokens);
    let mut reason = finish_reason(finish.reason);
    // Stage 8: the whole answer is screened before the client sees any of it.
    let mut notes = Vec::new();
    let prompt_len = if meta.api == Api::Text { echo_len } else { 0 };
    let decision = output
        .guard
        .check_output(&text[prompt_len..], output.model.as_ref());
    if decision.flagged {
        notes.push(if decision.text.is_some() {
            "output-flagged"
        } else {
            "output-blocked"
        });
    }
    match decision.text {
        Some(t) => {
            if decision.redacted > 0 {
                notes.push("output-redacted");
                // Token log-probabilities would spell out what was redacted.
                logprobs.clear();
            }
            text.truncate(prompt_len);
            text.push_str(&t);
        }
        None => {
            text.truncate(prompt_len);
            logprobs.clear();
            reason = p::FinishReason::ContentFilter;
        }
    }
    let body = match meta.api {
        Api::Chat => serde_json::to_value(p::ChatCompletion {
            id: meta.id,
            object: "chat.completion".into(),
            created: meta.created,
            model: meta.model,
            choices: vec![p::ChatChoice {
                index: 0,
                message: p::AssistantMessage {
                    role: "assistant".into(),
                    content: Some(text),
                    refusal: None,
                },
                finish_reason: reason,
                logprobs: meta.top_logprobs.map(|_| p::ChoiceLogprobs {
                    content: logprobs.iter().map(chat_logprob).collect(),
                    refusal: None,
                }),
            }],
            usage,
            system_fingerprint: None,
        }),
        Api::Text => {
            let lp = meta.top_logprobs.map(|_| {
                let mut out = p::CompletionLogprobs::default();
                let mut offset = 0;
                push_text_logprobs(&mut out, &logprobs, &mut offset);
                out
            });
            serde_json::to_value(p::Completion {
                id: meta.id,
                object: "text_completion".into(),
                created: meta.created,
                model: meta.model,
                choices: vec![p::CompletionChoice {
                    index: 0,
                    text,
                    finish_reason: Some(reason),
                    logprobs: lp,
                }],
                usage: Some(usage),
                system_fingerprint: None,
            })
        }
    }
    .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok((Json(body).into_response(), notes))
}

struct StreamState {
    meta: Meta,
    generation: Generation,
    timer: GenerationTimer,
    settle: Settle,
    screen: OutputScreen,
    /// Token log-probabilities wait here for the screen to release their text.
    logprobs: LogprobGate<EngineLogprob>,
    /// Events still to send before reading the engine again.
    queue: std::collections::VecDeque<SseEvent>,
    started: bool,
    done: bool,
    text_offset: u32,
}

fn json_event<T: serde::Serialize>(value: &T) -> SseEvent {
    SseEvent::default()
        .json_data(value)
        .unwrap_or_else(|_| SseEvent::default().data("{}"))
}

impl StreamState {
    fn chat_chunk(
        &self,
        delta: p::ChunkDelta,
        finish: Option<p::FinishReason>,
        lps: Option<Vec<p::TokenLogprob>>,
    ) -> SseEvent {
        json_event(&p::ChatCompletionChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.meta.created,
            model: self.meta.model.clone(),
            choices: vec![p::ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: lps.map(|content| p::ChoiceLogprobs {
                    content,
                    refusal: None,
                }),
            }],
            usage: self.meta.include_usage.then_some(None),
            system_fingerprint: None,
        })
    }

    fn text_chunk(
        &mut self,
        text: String,
        finish: Option<p::FinishReason>,
        lps: &[EngineLogprob],
    ) -> SseEvent {
        let logprobs = self.meta.top_logprobs.map(|_| {
            let mut out = p::CompletionLogprobs::default();
            push_text_logprobs(&mut out, lps, &mut self.text_offset);
            out
        });
        json_event(&p::Completion {
            id: self.meta.id.clone(),
            object: "text_completion".into(),
            created: self.meta.created,
            model: self.meta.model.clone(),
            choices: vec![p::CompletionChoice {
                index: 0,
                text,
                finish_reason: finish,
                logprobs,
            }],
            usage: None,
            system_fingerprint: None,
        })
    }

    fn usage_chunk(&self, usage: p::Usage) -> SseEvent {
        match self.meta.api {
            Api::Chat => json_event(&p::ChatCompletionChunk {
                id: self.meta.id.clone(),
                object: "chat.completion.chunk".into(),
                created: self.meta.created,
                model: self.meta.model.clone(),
                choices: vec![],
                usage: Some(Some(usage)),
                system_fingerprint: None,
            }),
            Api::Text => json_event(&p::Completion {
                id: self.meta.id.clone(),
                object: "text_completion".into(),
                created: self.meta.created,
                model: self.meta.model.clone(),
                choices: vec![],
                usage: Some(usage),
                system_fingerprint: None,
            }),
        }
    }

    fn push_text(&mut self, text: String, logprobs: &[EngineLogprob]) {
        let ev = match self.meta.api {
            Api::Chat => {
                let lps = self
                    .meta
                    .top_logprobs
                    .map(|_| logprobs.iter().map(chat_logprob).collect());
                self.chat_chunk(
                    p::ChunkDelta {
                        role: None,
                        content: Some(text),
                    },
                    None,
                    lps,
                )
            }
            Api::Text => self.text_chunk(text, None, logprobs),
        };
        self.queue.push_back(ev);
    }

    /// The output guard cut the stream: one error event, then the end (dropping the
    /// generation stops the engine).
    fn output_blocked(&mut self, score: f32) {
        tracing::warn!(score, "stream cut by the output guard");
        let body = p::ErrorBody::new(
            format!("The response was stopped by the output guard (toxicity score {score:.2})."),
            "content_filter",
            None,
            Some("output_blocked".into()),
        );
        self.queue.push_back(json_event(&body));
        self.done = true;
    }

    /// Turns the next engine event into zero or more SSE events.
    fn on_event(&mut self, event: Option<Event>) {
        match event {
            Some(Event::Token(t)) => {
                self.timer.token();
                // Stage 8: redact and screen before anything leaves; log-probabilities
                // leave with their text, and not at all when it was redacted.
                self.logprobs.hold(t.text.len(), t.logprobs);
                let text = self.screen.push(&t.text);
                if let Err(b) = self.screen.check(false) {
                    self.output_blocked(b.score);
                    return;
                }
                let lps = self.logprobs.release(
                    self.screen.released_raw(),
                    self.screen.last_release_redacted,
                );
                if text.is_empty() && lps.is_empty() {
                    return;
                }
                self.push_text(text, &lps);
            }
            Some(Event::Finished(f)) => {
                self.timer.finish(f.prompt_tokens, f.completion_tokens);
                self.settle.finished(f.prompt_tokens, f.completion_tokens);
                match self.screen.finish() {
                    Ok(rest) => {
                        let lps = self.logprobs.release(
                            self.screen.released_raw(),
                            self.screen.last_release_redacted,
                        );
                        if !rest.is_empty() || !lps.is_empty() {
                            self.push_text(rest, &lps);
                        }
                    }
                    Err(b) => {
                        self.output_blocked(b.score);
                        return;
                    }
                }
                let reason = Some(finish_reason(f.reason));
                let ev = match self.meta.api {
                    Api::Chat => self.chat_chunk(p::ChunkDelta::default(), reason, None),
                    Api::Text => self.text_chunk(String::new(), reason, &[]),
                };
                self.queue.push_back(ev);
                if self.meta.include_usage {
                    let usage =
                        self.usage_chunk(p::Usage::new(f.prompt_tokens, f.completion_tokens));
                    self.queue.push_back(usage);
                }
                self.queue.push_back(SseEvent::default().data("[DONE]"));
                self.done = true;
            }
            Some(Event::Failed(e)) => {
                let err: GatewayError = e.into();
                tracing::error!(error = %err, "generation failed mid-stream");
                self.queue.push_back(json_event(&err.body()));
                self.done = true;
            }
            None => {
                let err = GatewayError::Internal("the engine stopped mid-generation".into());
                self.queue.push_back(json_event(&err.body()));
                self.done = true;
            }
        }
    }
}

fn stream_response(
    meta: Meta,
    mut generation: Generation,
    timer: GenerationTimer,
    settle: Settle,
    output: Output,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let echo = generation.prompt_text.take();
    let mut state = StreamState {
        meta,
        generation,
        timer,
        settle,
        screen: output.guard.output_screen(output.model.as_ref()),
        logprobs: LogprobGate::default(),
        queue: Default::default(),
        started: false,
        done: false,
        text_offset: 0,
    };
    if let Some(prompt) = echo {
        let ev = state.text_chunk(prompt, None, &[]);
        state.queue.push_back(ev);
    }
    let stream = futures::stream::unfold(state, |mut s| async move {
        loop {
            if !s.started {
                s.started = true;
                if s.meta.api == Api::Chat {
                    let first = s.chat_chunk(
                        p::ChunkDelta {
                            role: Some("assistant".into()),
                            content: Some(String::new()),
                        },
                        None,
                        None,
                    );
                    return Some((Ok(first), s));
                }
            }
            if let Some(ev) = s.queue.pop_front() {
                return Some((Ok(ev), s));
            }
            if s.done {
                return None;
            }
            let event = s.generation.events.recv().await;
            s.on_event(event);
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
