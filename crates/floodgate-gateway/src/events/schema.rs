//! The event schema, version [`SCHEMA_VERSION`]. Fields are only ever added (with
//! serde defaults), so a reader of version N reads every event of versions ≤ N; a
//! change that cannot be additive bumps the version.

use serde::{Deserialize, Serialize};

use crate::records::{AdminRecord, DecisionRecord, RouteDecision, TierRun};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema: u32,
    /// Server-generated, unique (`evt_` + a UUIDv7): the sinks' idempotency key.
    pub id: String,
    /// Unix milliseconds.
    pub time_ms: i64,
    /// The process that emitted it (`region/host:port`).
    #[serde(default)]
    pub origin: String,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum EventBody {
    Request(Box<RequestEvent>),
    Admin(AdminEvent),
}

impl EventBody {
    /// The kind's name, as NATS subjects and the store use it.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Request(_) => "request",
            EventBody::Admin(_) => "admin",
        }
    }
}

/// One request, answered or refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestEvent {
    /// The client's `x-request-id`, if it sent one (not unique: clients reuse them).
    pub client_request_id: Option<String>,
    /// `POST /v1/chat/completions`, ...
    pub endpoint: String,
    pub key_id: String,
    pub tenant: String,
    pub segment: String,
    /// The client address, as `events.client_ip` says (as is, hashed or absent).
    pub client_ip: Option<String>,
    /// The model or route the client asked for.
    pub requested: String,
    pub stream: bool,
    /// The route's policy, tiers tried, escalation and why, router and confidence
    /// scores and thresholds.
    pub route: Option<RouteDecision>,
    /// The variant whose answer the client got.
    pub served_by: Option<String>,
    /// Every model run, served or discarded, with its tokens and cost.
    pub runs: Vec<TierRun>,
    pub usage: Usage,
    pub timings: Timings,
    /// The guards' actions (`input-flagged`, `output-redacted`, `output-blocked`, ...).
    pub guard: Vec<String>,
    /// The input guard's injection score, when it ran.
    pub input_guard_score: Option<f32>,
    pub cost_usd: f64,
    /// The HTTP status the client got (200 for a stream that failed mid-way).
    pub status: u16,
    /// `completed`, `cancelled` (the client left), `failed: ...`, `output-blocked`, or
    /// `refused`.
    pub outcome: String,
    /// OpenAI-style error code for refusals (`rate_limit_exceeded`, `invalid_api_key`, ...).
    pub error_code: Option<String>,
    /// The prompt's drift features, when this request was sampled (`[drift]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<floodgate_drift::Features>,
    /// Only with `events.include_text`.
    pub prompt: Option<String>,
    pub completion: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens served from the KV cache.
    pub cached_tokens: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timings {
    /// Waiting for a batch slot in the engine.
    pub queue_ms: f64,
    pub time_to_first_token_ms: Option<f64>,
    /// Arrival to the last byte of the answer (or the refusal).
    pub total_ms: f64,
    /// Per pipeline stage, in order.
    pub stages: Vec<StageTiming>,
}

/// Time one pipeline stage took (the decision record keeps the same list).
pub use crate::records::StageTiming;

/// Something an operator did (the store keeps it as an [`AdminRecord`]).
pub use crate::records::AdminAction as AdminEvent;

impl Event {
    pub fn request(id: String, time_ms: i64, origin: String, r: RequestEvent) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            id,
            time_ms,
            origin,
            body: EventBody::Request(Box::new(r)),
        }
    }

    pub fn admin(origin: String, a: AdminEvent) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            id: super::new_id(),
            time_ms: super::now_ms(),
            origin,
            body: EventBody::Admin(a),
        }
    }

    /// The admin record an admin event becomes in the store.
    pub fn admin_record(&self) -> Option<AdminRecord> {
        let EventBody::Admin(a) = &self.body else {
            return None;
        };
        Some(AdminRecord {
            event_id: self.id.clone(),
            time_ms: self.time_ms,
            origin: self.origin.clone(),
            action: a.clone(),
        })
    }

    /// The decision record a request event becomes in the store.
    pub fn decision(&self) -> Option<DecisionRecord> {
        let EventBody::Request(r) = &self.body else {
            return None;
        };
        Some(DecisionRecord {
            event_id: self.id.clone(),
            request_id: r.client_request_id.clone().unwrap_or_default(),
            key_id: r.key_id.clone(),
            tenant: r.tenant.clone(),
            created_at: self.time_ms.div_euclid(1000),
            requested: r.requested.clone(),
            served_by: r.served_by.clone().unwrap_or_default(),
            route: r.route.clone(),
            runs: r.runs.clone(),
            cost_usd: r.cost_usd,
            guard: r.guard.clone(),
            status: match &r.error_code {
                Some(code) => format!("{}: {code}", r.outcome),
                None => r.outcome.clone(),
            },
            latency_ms: r.timings.total_ms,
            endpoint: r.endpoint.clone(),
            http_status: r.status,
            error_code: r.error_code.clone(),
            segment: r.segment.clone(),
            input_guard_score: r.input_guard_score,
            queue_ms: r.timings.queue_ms,
            time_to_first_token_ms: r.timings.time_to_first_token_ms,
            stages: r.timings.stages.clone(),
            drift: r.drift_features(),
        })
    }
}

impl RequestEvent {
    /// A sampled request's full drift features: the prompt's (from the request path)
    /// and what the event says about its answer; `None` when it was not sampled.
    pub fn drift_features(&self) -> Option<floodgate_drift::Features> {
        let mut f = self.drift.clone()?;
        f.prompt_tokens = self.usage.prompt_tokens;
        f.completion_tokens = self.usage.completion_tokens;
        f.guard_score = self.input_guard_score;
        f.router_score = self.route.as_ref().and_then(|d| d.pre_score);
        f.escalated = self.route.as_ref().is_some_and(|d| d.escalated);
        f.refused = self.outcome == "refused" || self.outcome == "output-blocked";
        Some(f)
    }
}
