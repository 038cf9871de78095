//! `[telemetry]`: OpenTelemetry traces exported over OTLP.

use serde::{Deserialize, Serialize};

/// `[telemetry]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Where spans go, an OTLP/HTTP traces URL (`http://collector:4318/v1/traces`);
    /// empty: no traces (the default).
    pub otlp_endpoint: String,
    /// `http/protobuf` (the default) or `http/json`.
    pub otlp_protocol: OtlpProtocol,
    /// Share of requests traced when the client sent no `traceparent`; a client's
    /// sampled flag is followed (parent-based sampling).
    pub trace_sample_ratio: f64,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Longest wait for one export call.
    pub otlp_timeout_ms: u64,
    /// Spans held for export at most; more are dropped (counted), never waited for.
    pub max_queued_spans: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "http/json")]
    HttpJson,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            otlp_protocol: OtlpProtocol::HttpProtobuf,
            trace_sample_ratio: 0.1,
            service_name: "floodgate".into(),
            otlp_timeout_ms: 5_000,
            max_queued_spans: 8_192,
        }
    }
}

impl TelemetryConfig {
    pub fn tracing_enabled(&self) -> bool {
        !self.otlp_endpoint.is_empty()
    }

    pub(super) fn validate(&self, errors: &mut Vec<String>) {
        if !(0.0..=1.0).contains(&self.trace_sample_ratio) {
            errors.push("telemetry.trace_sample_ratio: must be between 0 and 1".into());
        }
        let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if !self.otlp_endpoint.is_empty() && !http(&self.otlp_endpoint) {
            errors.push("telemetry.otlp_endpoint: must be an http:// or https:// URL".into());
        }
        if self.max_queued_spans == 0 {
            errors.push("telemetry.max_queued_spans: must be at least 1".into());
        }
    }
}
