//! OpenTelemetry GenAI metrics, computed from each request's event as it is emitted,
//! so the metrics and the stored events cannot disagree.
//!
//! Server metrics describe what the client of Floodgate got (`gen_ai.server.*`);
//! client metrics describe each backend call Floodgate made for it, a cascade's
//! discarded tier included (`gen_ai.client.*`).
//!
//! **Bounded labels.** Every label value comes from configuration or a fixed set:
//! `gen_ai_request_model` is the configured model or route the request resolved to
//! (`_other` when it resolved to nothing: an unknown model, a refusal before routing),
//! never the raw string a client sent; `floodgate_variant` / `floodgate_version` name
//! configured variants; `error_type` is one of the gateway's error codes. Keys, users,
//! tenants and request ids are never labels.

use super::{Event, EventBody, RequestEvent};
use crate::telemetry::{
    GENAI_CLIENT_DURATION, GENAI_SERVER_DURATION, GENAI_TOKEN_USAGE, GENAI_TPOT, GENAI_TTFT,
};

/// The label for a request that resolved to no configured model or route.
pub const OTHER_MODEL: &str = "_other";

/// Records the GenAI metrics of one request event (admin events have none).
pub fn observe(event: &Event) {
    if let EventBody::Request(r) = &event.body {
        observe_request(r);
    }
}

fn observe_request(r: &RequestEvent) {
    let Some(operation) = operation(&r.endpoint) else {
        return;
    };
    let resolved = r.served_by.is_some() || r.route.is_some() || !r.runs.is_empty();
    let model = if resolved {
        model_name(&r.requested)
    } else {
        OTHER_MODEL
    };
    let route = r.route.as_ref().map_or("", |d| d.route.as_str());
    let served = r.served_by.as_deref().unwrap_or("");
    let error = r
        .error_code
        .as_deref()
        .unwrap_or(if r.status >= 400 { "http_error" } else { "" });
    let labels = |variant: &str| {
        [
            ("gen_ai_operation_name", operation.to_string()),
            ("gen_ai_request_model", model.to_string()),
            ("floodgate_route", route.to_string()),
            ("floodgate_version", version(variant).to_string()),
            ("floodgate_variant", variant.to_string()),
        ]
    };
    let served_labels = labels(served);
    let total = r.timings.total_ms / 1000.0;
    let mut with_error = served_labels.to_vec();
    with_error.push(("error_type", error.to_string()));
    metrics::histogram!(GENAI_SERVER_DURATION, &with_error).record(total);
    if let Some(ttft) = r.timings.time_to_first_token_ms {
        let ttft = ttft / 1000.0;
        metrics::histogram!(GENAI_TTFT, &served_labels).record(ttft);
        let after_first = r.usage.completion_tokens.saturating_sub(1);
        if after_first > 0 && total > ttft {
            metrics::histogram!(GENAI_TPOT, &served_labels)
                .record((total - ttft) / f64::from(after_first));
        }
    }
    for run in &r.runs {
        let mut l = labels(&run.model).to_vec();
        let failed = run.served && !error.is_empty();
        l.push(("error_type", if failed { error } else { "" }.to_string()));
        metrics::histogram!(GENAI_CLIENT_DURATION, &l).record(run.compute_seconds);
        l.pop();
        l.push(("gen_ai_token_type", "input".to_string()));
        metrics::histogram!(GENAI_TOKEN_USAGE, &l).record(f64::from(run.prompt_tokens));
        l.pop();
        l.push(("gen_ai_token_type", "output".to_string()));
        metrics::histogram!(GENAI_TOKEN_USAGE, &l).record(f64::from(run.completion_tokens));
    }
}

/// `gen_ai.operation.name` of an endpoint; `None` for endpoints that are not GenAI
/// operations (moderations, admin, feedback).
pub(super) fn operation(endpoint: &str) -> Option<&'static str> {
    let path = endpoint.split_once(' ').map_or(endpoint, |(_, p)| p);
    match path {
        "/v1/chat/completions" => Some("chat"),
        "/v1/completions" => Some("text_completion"),
        "/v1/embeddings" => Some("embeddings"),
        _ => None,
    }
}

/// `MODEL` of `MODEL`, `MODEL@VERSION` or `MODEL@VERSION:VARIANT`.
fn model_name(requested: &str) -> &str {
    requested.split_once('@').map_or(requested, |(m, _)| m)
}

/// `VERSION` of a variant id `MODEL@VERSION:VARIANT`; empty for a plain model.
fn version(variant: &str) -> &str {
    variant.split_once('@').map_or("", |(_, rest)| {
        rest.split_once(':').map_or(rest, |(v, _)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split() {
        assert_eq!(model_name("chat@2024-06:q8"), "chat");
        assert_eq!(model_name("chat"), "chat");
        assert_eq!(version("chat@2024-06:q8"), "2024-06");
        assert_eq!(version("chat@2024-06"), "2024-06");
        assert_eq!(version("chat"), "");
        assert_eq!(operation("POST /v1/chat/completions"), Some("chat"));
        assert_eq!(operation("POST /v1/moderations"), None);
    }
}
