//! A traced request's spans, built from its event when it is emitted: the request
//! (server span, GenAI attributes), one span per pipeline stage in order, one per model
//! run (a cascade's discarded tier included) and one per HTTP attempt to an upstream or
//! worker (the span id that attempt sent in `traceparent`, so the worker's spans join
//! the trace).
//!
//! Stage spans are laid end to end from the arrival, as the stages ran; a run's span
//! starts with the `infer` stage and lasts its compute time. Attempt spans carry their
//! measured start and duration.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue};

use super::{Event, EventBody};
use crate::otel::{OtelTrace, Tracing};
use crate::records::TierRun;

/// Builds and hands over the spans of `event` (a request's) to the batch processor.
pub fn export(tracing: &Tracing, otel: &OtelTrace, event: &Event) {
    let EventBody::Request(r) = &event.body else {
        return;
    };
    let tracer = &tracing.tracer;
    let start = otel.wall_start;
    let end = start + secs(r.timings.total_ms / 1000.0);
    let operation = super::genai::operation(&r.endpoint).unwrap_or("http");
    let parent = match otel.parent {
        Some(p) => Context::new().with_remote_span_context(SpanContext::new(
            otel.trace_id,
            p,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        )),
        None => Context::new(),
    };
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", operation),
        KeyValue::new("gen_ai.provider.name", "floodgate"),
        KeyValue::new("gen_ai.request.model", r.requested.clone()),
        KeyValue::new(
            "gen_ai.usage.input_tokens",
            i64::from(r.usage.prompt_tokens),
        ),
        KeyValue::new(
            "gen_ai.usage.output_tokens",
            i64::from(r.usage.completion_tokens),
        ),
        KeyValue::new("floodgate.request_id", event.id.clone()),
        KeyValue::new("floodgate.outcome", r.outcome.clone()),
        KeyValue::new("floodgate.cost_usd", r.cost_usd),
        KeyValue::new("floodgate.stream", r.stream),
        KeyValue::new("http.response.status_code", i64::from(r.status)),
    ];
    if let Some(served) = &r.served_by {
        attributes.push(KeyValue::new("gen_ai.response.model", served.clone()));
        attributes.push(KeyValue::new("floodgate.variant", served.clone()));
    }
    if let Some(id) = &r.client_request_id {
        attributes.push(KeyValue::new("floodgate.client_request_id", id.clone()));
    }
    if let Some(d) = &r.route {
        attributes.push(KeyValue::new("floodgate.route", d.route.clone()));
        attributes.push(KeyValue::new("floodgate.policy", d.policy.clone()));
        attributes.push(KeyValue::new("floodgate.escalated", d.escalated));
        if let Some(tier) = d.tiers.get(d.final_tier) {
            attributes.push(KeyValue::new("floodgate.tier", tier.clone()));
        }
        attributes.push(KeyValue::new("floodgate.tier_index", d.final_tier as i64));
    }
    if !r.guard.is_empty() {
        attributes.push(KeyValue::new("floodgate.guard", r.guard.join(",")));
    }
    if let Some(s) = r.input_guard_score {
        attributes.push(KeyValue::new("floodgate.input_guard_score", f64::from(s)));
    }
    if let Some(ttft) = r.timings.time_to_first_token_ms {
        attributes.push(KeyValue::new(
            "gen_ai.server.time_to_first_token",
            ttft / 1000.0,
        ));
    }
    if let Some(code) = &r.error_code {
        attributes.push(KeyValue::new("error.type", code.clone()));
    }
    let name = if r.requested.is_empty() {
        operation.to_string()
    } else {
        format!("{operation} {}", r.requested)
    };
    let mut root = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_trace_id(otel.trace_id)
        .with_span_id(otel.root)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    if r.status >= 500 || r.outcome.starts_with("failed") {
        root.set_status(Status::error(r.outcome.clone()));
    }
    let inside = Context::new().with_remote_span_context(SpanContext::new(
        otel.trace_id,
        otel.root,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    ));
    let child =
        |name: String, kind: SpanKind, from: SystemTime, to: SystemTime, attrs: Vec<KeyValue>| {
            let mut s = tracer
                .span_builder(name)
                .with_kind(kind)
                .with_start_time(from)
                .with_attributes(attrs)
                .start_with_context(tracer, &inside);
            s.end_with_timestamp(to.max(from));
        };
    let mut at = start;
    let mut infer_start = None;
    for stage in &r.timings.stages {
        let to = at + secs(stage.ms / 1000.0);
        if stage.stage == "infer" {
            infer_start = Some(at);
        }
        child(
            format!("floodgate.{}", stage.stage),
            SpanKind::Internal,
            at,
            to,
            vec![KeyValue::new("floodgate.stage", stage.stage.clone())],
        );
        at = to;
    }
    let runs_start = infer_start.unwrap_or(at);
    for run in &r.runs {
        child(
            format!("{operation} {}", run.model),
            SpanKind::Client,
            runs_start,
            runs_start + secs(run.compute_seconds),
            run_attributes(operation, run),
        );
    }
    for call in otel.calls() {
        let from = otel.wall(call.start);
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", operation),
            KeyValue::new("gen_ai.request.model", call.model.clone()),
            KeyValue::new("server.address", call.endpoint.clone()),
            KeyValue::new("floodgate.region", call.region.clone()),
        ];
        if !call.error.is_empty() {
            attrs.push(KeyValue::new("error.type", call.error.clone()));
        }
        let mut s = tracer
            .span_builder(format!("POST {}", call.endpoint))
            .with_kind(SpanKind::Client)
            .with_span_id(call.span_id)
            .with_start_time(from)
            .with_attributes(attrs)
            .start_with_context(tracer, &inside);
        s.end_with_timestamp(from + call.duration);
    }
    root.end_with_timestamp(end);
}

fn run_attributes(operation: &'static str, run: &TierRun) -> Vec<KeyValue> {
    vec![
        KeyValue::new("gen_ai.operation.name", operation),
        KeyValue::new("gen_ai.request.model", run.model.clone()),
        KeyValue::new("gen_ai.usage.input_tokens", i64::from(run.prompt_tokens)),
        KeyValue::new(
            "gen_ai.usage.output_tokens",
            i64::from(run.completion_tokens),
        ),
        KeyValue::new("floodgate.served", run.served),
        KeyValue::new("floodgate.cost_usd", run.cost_usd),
    ]
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or_default()
}
