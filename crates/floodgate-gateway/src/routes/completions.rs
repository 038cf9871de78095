//! `POST /v1/chat/completions` and `POST /v1/completions`, plain and streamed.
//!
//! The handlers only speak HTTP: they check the scope, validate the body, run the
//! request pipeline (`crate::pipeline`) and turn its outcome into a response — one
//! JSON body or SSE chunks (`super::openai`) — with the `x-floodgate-*` headers. A
//! streamed generation is cancelled as soon as the client goes away, because dropping
//! the SSE body drops the pipeline's answer stream and with it the backend's events.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use floodgate_protocol as p;

use super::openai::{self, Meta};
use crate::auth::{Caller, ClientIp};
use crate::edge::{RequestId, ValidJson};
use crate::error::GatewayError;
use crate::events::Trace;
use crate::pipeline::{self, identify, Api, Body, Outcome, RequestContext};
use crate::validate;
use crate::AppState;

pub async fn chat(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(ip): Extension<ClientIp>,
    request_id: Option<Extension<RequestId>>,
    Extension(trace): Extension<Arc<Trace>>,
    ValidJson(req): ValidJson<p::ChatCompletionRequest>,
) -> Result<Response, GatewayError> {
    identify::authorize(&caller)?;
    let config = state.config();
    let valid = validate::chat(req, &config.limits)?;
    let request_id = request_id.map(|e| e.0);
    let ctx = RequestContext::new(Api::Chat, config, caller, ip.0, request_id, trace, valid);
    respond(&state, ctx).await
}

pub async fn completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(ip): Extension<ClientIp>,
    request_id: Option<Extension<RequestId>>,
    Extension(trace): Extension<Arc<Trace>>,
    ValidJson(req): ValidJson<p::CompletionRequest>,
) -> Result<Response, GatewayError> {
    identify::authorize(&caller)?;
    let config = state.config();
    let valid = validate::completion(req, &config.limits)?;
    let request_id = request_id.map(|e| e.0);
    let ctx = RequestContext::new(Api::Text, config, caller, ip.0, request_id, trace, valid);
    respond(&state, ctx).await
}

async fn respond(state: &AppState, mut ctx: RequestContext) -> Result<Response, GatewayError> {
    let api = ctx.api;
    let include_usage = ctx.request.include_usage;
    let top_logprobs = ctx.request.params.logprobs;
    let outcome = match pipeline::run(state, &mut ctx).await {
        Ok(o) => o,
        Err(e) => {
            if let Some(event) = pipeline::refusal(&ctx, &state.events, &e) {
                state.events.record(&event, Some(&ctx.trace)).await;
            }
            return Err(e);
        }
    };
    drop(ctx);
    let meta = Meta::new(api, &outcome.served, include_usage, top_logprobs);
    let Outcome {
        served,
        route,
        escalated,
        budget,
        rate_headers,
        mut guard_notes,
        body,
    } = outcome;
    let (mut response, remaining) = match body {
        Body::Whole(answer) => {
            guard_notes.extend(answer.notes.iter().copied());
            let cost = answer.cost_usd;
            let mut response = Json(openai::whole(&meta, answer)).into_response();
            set_header(
                &mut response,
                "x-floodgate-cost-usd",
                &format!("{cost:.10}"),
            );
            (response, budget.map(|b| b.limit_usd - b.spent_usd - cost))
        }
        // Before this request: a stream's cost is known only at its end.
        Body::Stream(answer) => (
            openai::stream(meta, answer).into_response(),
            budget.map(|b| b.limit_usd - b.spent_usd),
        ),
    };
    if let Some(left) = remaining {
        set_header(
            &mut response,
            "x-floodgate-budget-remaining",
            &format!("{:.10}", left.max(0.0)),
        );
    }
    for (n, v) in rate_headers {
        response.headers_mut().insert(n, v);
    }
    if !guard_notes.is_empty() {
        set_header(&mut response, "x-floodgate-guard", &guard_notes.join(","));
    }
    set_header(&mut response, "x-floodgate-model", &served);
    if let Some(route) = route {
        set_header(&mut response, "x-floodgate-route", &route);
        set_header(&mut response, "x-floodgate-tier", &served);
        set_header(
            &mut response,
            "x-floodgate-escalated",
            if escalated { "true" } else { "false" },
        );
    }
    Ok(response)
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}
