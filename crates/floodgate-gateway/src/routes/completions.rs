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
use crate::backend::{buffer, Backend, Generation};
use crate::cascade::signals::{AnswerSignals, CASCADE_TOP_LOGPROBS};
use crate::cascade::{Facts, Plan, Route};
use crate::edge::{RequestId, ValidJson};
use crate::error::GatewayError;
use crate::guard::{Guard, LogprobGate, OutputScreen};
use crate::records::{DecisionRecord, Price, RouteDecision, TierRun};
use crate::telemetry::GenerationTimer;
use crate::validate::{self, GenParams, PromptInput, ValidRequest};
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
    f64::from(prompt.estimated_tokens())
}

/// The text a pre-router reads: the last user message, or the prompt.
fn router_text(prompt: &PromptInput) -> String {
    match prompt {
        PromptInput::Chat(messages) => messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.clone())
            .unwrap_or_default(),
        PromptInput::Text(t) => t.clone(),
        PromptInput::Tokens(_) => String::new(),
    }
}

/// Stage 5 for a route, off the async workers when the pre-router runs a full encoder.
async fn plan_route(
    route: &Arc<Route>,
    caller: &Caller,
    prompt: &PromptInput,
    prompt_tokens: f64,
    stream: bool,
    user: Option<&str>,
) -> Result<Plan, GatewayError> {
    let tenant = caller.tenant().to_string();
    let key_id = caller.key_id().to_string();
    let user = user.map(str::to_string);
    let segment = caller.record().map(|r| r.segment.clone());
    let text = router_text(prompt);
    let slow = route.router.as_ref().is_some_and(|r| r.pre_is_slow());
    let route = Arc::clone(route);
    let decide = move || {
        let facts = Facts {
            tenant: &tenant,
            segment: segment.as_deref().filter(|s| !s.is_empty()),
            prompt_tokens,
            stream,
            key_id: &key_id,
            user: user.as_deref(),
        };
        route.plan(&facts, || {
            route.router.as_ref().and_then(|r| r.pre_score(&text))
        })
    };
    if slow {
        tokio::task::spawn_blocking(decide)
            .await
            .map_err(|e| GatewayError::Internal(format!("router task failed: {e}")))
    } else {
        Ok(decide())
    }
}

/// Starts a generation on `backend`, mapping the engine's parameter names to the API's.
async fn start(
    backend: &Arc<dyn Backend>,
    req: &ValidRequest,
    params: &GenParams,
    default_max_tokens: u32,
    api: Api,
) -> Result<Generation, GatewayError> {
    backend
        .generate(&req.prompt, params, default_max_tokens, req.echo)
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
        })
}

/// A key's budget: `Some((budget, spent))` when it has one.
async fn budget(state: &AppState, caller: &Caller) -> Result<Option<(f64, f64)>, GatewayError> {
    let Some(budget) = caller.record().and_then(|r| r.budget_usd) else {
        return Ok(None);
    };
    let period = &state.config.costs.budget_period;
    let spent = state
        .records
        .spent(caller.key_id(), period, crate::records::now_unix())
        .await
        .map_err(|e| GatewayError::Internal(format!("usage store: {e}")))?;
    if spent >= budget {
        return Err(GatewayError::BudgetExceeded {
            spent,
            budget,
            period: period.clone(),
        });
    }
    Ok(Some((budget, spent)))
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
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
    // Stage 5, first half: a route's tiers, or the one model asked for.
    let route = state.routes.get(&req.model)?;
    let tiers: Vec<String> = match &route {
        Some(r) => r.config.tiers.clone(),
        None => vec![req.model.clone()],
    };
    // Each tier (or the model) resolves to one of its variants, sticky per user or key.
    let sticky = match (&req.user, caller) {
        (Some(u), _) if !u.is_empty() => u.clone(),
        (_, Caller::Key(k)) => k.id.clone(),
        _ => String::new(),
    };
    let resolved = tiers
        .iter()
        .map(|t| state.registry.resolve(t, &sticky))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| match (&route, e) {
            (Some(_), GatewayError::ModelNotFound(m)) => {
                GatewayError::Internal(format!("route tier `{m}` is not a model"))
            }
            (_, e) => e,
        })?;
    let backends: Vec<_> = resolved.iter().map(|r| Arc::clone(&r.backend)).collect();
    // Tell the first tier's engine this request is on its way: the guards below take
    // milliseconds, and an idle engine then waits for a burst to gather instead of
    // starting on its first arrival alone (`model.burst_wait_ms`).
    let announced = backends.first().and_then(|b| b.expect_request());
    let prices: Vec<Price> = resolved
        .iter()
        .map(|r| Price::of_model(&state.config, &r.config))
        .collect();
    let budget = budget(&state, caller).await?;
    let prompt_estimate = estimate_prompt_tokens(&req.prompt);
    // A request can never use more than the model's context, whatever it asks for
    // (asking for more is the engine's 400, not a rate limit).
    let context = backends
        .iter()
        .map(|b| f64::from(b.info().context_length.max(1)))
        .fold(f64::INFINITY, f64::min);
    let prompt_estimate = prompt_estimate.min(context);
    let max_tokens = f64::from(
        req.params
            .max_tokens
            .unwrap_or(state.config.limits.default_max_tokens),
    )
    .min(context - prompt_estimate);
    // The worst case: every tier runs (a cascade escalates after the small answer).
    let reserve_cost: f64 = prices
        .iter()
        .map(|p| p.tokens(prompt_estimate, max_tokens))
        .sum();
    let mut permit = state
        .admission
        .admit(
            caller,
            ip.0,
            Ask {
                tokens: prompt_estimate + max_tokens,
                cost_usd: reserve_cost,
            },
        )
        .await?;
    // Stage 4: the input guard, then the abuse-cluster check on what it normalised.
    let model_config = Some(&*resolved[0].config);
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
    // Stage 5, second half: which tier answers first.
    let plan = match &route {
        Some(r) => {
            plan_route(
                r,
                caller,
                &req.prompt,
                prompt_estimate,
                req.stream,
                req.user.as_deref(),
            )
            .await?
        }
        None => Plan {
            tier: 0,
            post_check: false,
            reason: String::new(),
            pre_score: None,
        },
    };
    let mut decision = route.as_ref().map(|r| RouteDecision {
        route: r.config.name.clone(),
        policy: r.config.policy.clone(),
        tiers: tiers.clone(),
        start_tier: plan.tier,
        final_tier: plan.tier,
        escalated: plan.tier > 0 && r.config.is_cascade(),
        reasons: vec![plan.reason.clone()],
        pre_score: plan.pre_score,
        pre_threshold: r.thresholds.pre,
        post_score: None,
        post_threshold: r.thresholds.post,
        signals: None,
    });
    // Withdrawn just before the request is handed over (tokenizing is all that is left).
    drop(announced);
    let default_max = state.config.limits.default_max_tokens;
    let mut runs = Vec::new();
    let mut tier = plan.tier;
    let started_generation = if let (true, Some(r), Some(d)) =
        (plan.post_check, &route, decision.as_mut())
    {
        // Stage 6 + 7: the small tier answers in full, with the alternatives the
        // signals need, and the post check judges it before anything is sent.
        let mut params = req.params.clone();
        params.logprobs = Some(params.logprobs.unwrap_or(0).max(CASCADE_TOP_LOGPROBS));
        let first = match start(&backends[tier], &req, &params, default_max, api).await {
            Ok(g) => buffer(g).await,
            Err(e) => Err(e),
        };
        match first {
            Err(e) => Err(e),
            Ok(held) => {
                let prompt_len = held.prompt_text.as_ref().map_or(0, String::len);
                let answer = held.text.get(prompt_len..).unwrap_or(&held.text);
                let signals = AnswerSignals::from_logprobs(
                    &held.logprobs,
                    answer,
                    held.finish.reason == EngineFinish::Length,
                );
                let score = r.router.as_ref().and_then(|x| x.post_score(&signals));
                d.post_score = score;
                d.signals = Some(signals);
                let th = r.thresholds.post.unwrap_or_default();
                if r.escalate_after(score) {
                    d.reasons.push(format!(
                        "post: P(small answer right) = {:.3} < {th:.3}: escalated",
                        score.unwrap_or_default()
                    ));
                    d.escalated = true;
                    runs.push(prices[tier].run(&resolved[tier].id, &held.finish, false));
                    tier = r.last_tier();
                    d.final_tier = tier;
                    metrics::counter!("floodgate_cascade_escalations_total", "route" => r.config.name.clone(), "stage" => "post").increment(1);
                    start(&backends[tier], &req, &req.params, default_max, api).await
                } else {
                    d.reasons.push(format!(
                        "post: P(small answer right) = {:.3} ≥ {th:.3}: kept",
                        score.unwrap_or_default()
                    ));
                    Ok(held.replay(req.params.logprobs))
                }
            }
        }
    } else {
        if let Some(r) = route
            .as_ref()
            .filter(|r| plan.tier > 0 && r.config.is_cascade())
        {
            metrics::counter!("floodgate_cascade_escalations_total", "route" => r.config.name.clone(), "stage" => "pre").increment(1);
        }
        start(&backends[tier], &req, &req.params, default_max, api).await
    };
    let generation = match started_generation {
        Ok(g) => g,
        Err(e) => {
            // Refused before any work was served: give the reservation back, keeping
            // the cost of a discarded small answer.
            let spent: f64 = runs.iter().map(|r: &TierRun| r.cost_usd).sum();
            let tokens: u32 = runs
                .iter()
                .map(|r| r.prompt_tokens + r.completion_tokens)
                .sum();
            permit.used(tokens, spent);
            return Err(e);
        }
    };
    let served = resolved[tier].id.clone();
    if let Some(r) = &route {
        metrics::counter!("floodgate_cascade_requests_total", "route" => r.config.name.clone(), "model" => served.clone()).increment(1);
    }
    let output = Output {
        guard: Arc::clone(&state.guard),
        model: Some((*resolved[tier].config).clone()),
    };
    let meta = Meta {
        id: match api {
            Api::Chat => format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            Api::Text => format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
        },
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: served.clone(),
        api,
        include_usage: req.include_usage,
        top_logprobs: req.params.logprobs,
    };
    let timer = GenerationTimer::new(&served, started);
    let headers = std::mem::take(&mut permit.headers);
    let escalated = decision.as_ref().is_some_and(|d| d.escalated);
    let record = DecisionRecord {
        request_id: request_id.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
        key_id: caller.key_id().to_string(),
        tenant: caller.tenant().to_string(),
        created_at: crate::records::now_unix(),
        requested: req.model.clone(),
        served_by: served.clone(),
        route: decision,
        runs,
        cost_usd: 0.0,
        guard: guard_notes.iter().map(|s| s.to_string()).collect(),
        status: String::new(),
        latency_ms: 0.0,
    };
    let settle = Settle {
        started,
        permit,
        price: prices[tier],
        state: state.clone(),
        record: Some(record),
        prompt_tokens: generation.prompt_tokens,
        generated: 0,
        run_started: Instant::now(),
    };
    let mut response = if req.stream {
        stream_response(meta, generation, timer, settle, output).into_response()
    } else {
        let (response, notes, cost) =
            collect_response(meta, generation, timer, settle, output).await?;
        guard_notes.extend(notes);
        let mut response = response;
        set_header(
            &mut response,
            "x-floodgate-cost-usd",
            &format!("{cost:.10}"),
        );
        if let Some((b, spent)) = budget {
            set_header(
                &mut response,
                "x-floodgate-budget-remaining",
                &format!("{:.10}", (b - spent - cost).max(0.0)),
            );
        }
        response
    };
    if req.stream {
        if let Some((b, spent)) = budget {
            // Before this request: a stream's cost is known only at its end.
            set_header(
                &mut response,
                "x-floodgate-budget-remaining",
                &format!("{:.10}", (b - spent).max(0.0)),
            );
        }
    }
    for (n, v) in headers {
        response.headers_mut().insert(n, v);
    }
    if !guard_notes.is_empty() {
        set_header(&mut response, "x-floodgate-guard", &guard_notes.join(","));
    }
    set_header(&mut response, "x-floodgate-model", &served);
    if let Some(r) = &route {
        set_header(&mut response, "x-floodgate-route", &r.config.name);
        set_header(&mut response, "x-floodgate-tier", &served);
        set_header(
            &mut response,
            "x-floodgate-escalated",
            if escalated { "true" } else { "false" },
        );
    }
    Ok(response)
}

/// Stage 8's inputs: the guard and the model's policy overrides.
struct Output {
    guard: Arc<Guard>,
    model: Option<crate::config::ModelConfig>,
}

/// Stage 9 for one request: settles the admission permit once usage is known and
/// writes the decision record — when the answer finishes, or, if the client leaves or
/// the generation fails first, when this is dropped.
struct Settle {
    /// When the request arrived.
    started: Instant,
    permit: Permit,
    price: Price,
    state: AppState,
    record: Option<DecisionRecord>,
    /// The served run so far, charged if it never finishes: its prompt (the engine's
    /// count, or an upstream's estimate), the tokens generated, and when it started.
    prompt_tokens: u32,
    generated: u32,
    run_started: Instant,
}

impl Settle {
    /// The served run finished: settle and record. Returns the request's total cost.
    fn finished(&mut self, finish: &floodgate_engine::Finish, guard_notes: &[&str]) -> f64 {
        let Some(mut record) = self.record.take() else {
            return 0.0;
        };
        record
            .runs
            .push(self.price.run(&record.served_by, finish, true));
        record.cost_usd = self.settle_permit(&record);
        record
            .guard
            .extend(guard_notes.iter().map(|s| s.to_string()));
        record.status = "completed".into();
        record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let cost = record.cost_usd;
        crate::records::write(&self.state, record);
        cost
    }

    /// Settles the admission permit to the record's runs; returns their total cost.
    fn settle_permit(&mut self, record: &DecisionRecord) -> f64 {
        let cost = record.runs.iter().map(|r| r.cost_usd).sum();
        let tokens = record
            .runs
            .iter()
            .map(|r| r.prompt_tokens.saturating_add(r.completion_tokens))
            .fold(0u32, u32::saturating_add);
        self.permit.used(tokens, cost);
        cost
    }

    /// One more token of the served run was generated.
    fn token(&mut self) {
        self.generated = self.generated.saturating_add(1);
    }

    /// The request ended without a finished answer (the client left, the generation
    /// failed, the output guard cut it). What the served run used until then is
    /// charged: leaving just before the end must not make an answer free.
    fn ended(&mut self, status: String) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        if self.generated > 0 {
            let compute_seconds = self.run_started.elapsed().as_secs_f64();
            record.runs.push(TierRun {
                model: record.served_by.clone(),
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.generated,
                compute_seconds,
                cost_usd: self
                    .price
                    .cost(self.prompt_tokens, self.generated, compute_seconds),
                served: true,
            });
            self.settle_permit(&record);
        }
        // With nothing generated the admission reservation stays charged.
        record.cost_usd = record.runs.iter().map(|r| r.cost_usd).sum();
        record.status = status;
        if tokio::runtime::Handle::try_current().is_ok() {
            crate::records::write(&self.state, record);
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        self.ended("cancelled".into());
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
) -> Result<(Response, Vec<&'static str>, f64), GatewayError> {
    let mut text = generation.prompt_text.take().unwrap_or_default();
    let echo_len = text.len();
    let mut logprobs = Vec::new();
    let finish = loop {
        match generation.events.recv().await {
            Some(Event::Token(t)) => {
                timer.token();
                settle.token();
                text.push_str(&t.text);
                logprobs.extend(t.logprobs);
            }
            Some(Event::Finished(f)) => break f,
            Some(Event::Failed(e)) => {
                let e: GatewayError = e.into();
                settle.ended(format!("failed: {e}"));
                return Err(e);
            }
            None => {
                let e = GatewayError::Internal("the engine stopped mid-generation".into());
                settle.ended(format!("failed: {e}"));
                return Err(e);
            }
        }
    };
    timer.finish(finish.prompt_tokens, finish.completion_tokens);
    let usage = p::Usage::new(finish.prompt_tokens, finish.completion_tokens)
        .with_cached(finish.cached_prompt_tokens);
    let mut reason = finish_reason(finish.reason);
    // Stage 8: the whole answer is screened before the client sees any of it.
    // (Settled after it, so that the record carries the output guard's notes.)
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
    let cost = settle.finished(&finish, &notes);
    Ok((Json(body).into_response(), notes, cost))
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
        self.settle.ended("output-blocked".into());
        self.done = true;
    }

    /// Turns the next engine event into zero or more SSE events.
    fn on_event(&mut self, event: Option<Event>) {
        match event {
            Some(Event::Token(t)) => {
                self.timer.token();
                self.settle.token();
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
                // The final flush may redact or block too: settle after it, so that the
                // record's notes and the run's cost are both there.
                let flushed = self.screen.finish();
                let notes: &[&str] = match (&flushed, self.screen.redacted > 0) {
                    (Err(_), _) => &["output-blocked"],
                    (Ok(_), true) => &["output-redacted"],
                    (Ok(_), false) => &[],
                };
                self.settle.finished(&f, notes);
                match flushed {
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
                self.settle.ended(format!("failed: {err}"));
                self.queue.push_back(json_event(&err.body()));
                self.done = true;
            }
            None => {
                let err = GatewayError::Internal("the engine stopped mid-generation".into());
                self.settle.ended(format!("failed: {err}"));
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
