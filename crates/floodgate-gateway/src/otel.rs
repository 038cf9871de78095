//! OpenTelemetry traces: the sampling decision at the edge, W3C `traceparent` in and
//! out, and the OTLP exporter.
//!
//! A request's spans are not built while it runs. The edge decides whether it is traced
//! (a client's sampled flag is followed, otherwise `telemetry.trace_sample_ratio`) and
//! picks its trace and root span ids; backend calls record their own span (the id they
//! sent upstream in `traceparent`, start, duration, endpoint); when the request's event
//! is emitted, `events::spans` turns the event and these records into the span tree and
//! hands it to the SDK's batch processor, which exports from its own thread. An
//! untraced request costs one random draw; nothing here waits on the collector.
//!
//! **Invariant:** this module knows nothing of events or HTTP routes; it holds ids,
//! the tracer and the per-request [`OtelTrace`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};

use crate::config::{OtlpProtocol, TelemetryConfig};

/// The process's tracer, when `telemetry.otlp_endpoint` is set.
pub struct Tracing {
    pub tracer: SdkTracer,
    provider: SdkTracerProvider,
    ratio: f64,
}

impl Tracing {
    /// Builds the OTLP/HTTP exporter and the batch processor (its own thread).
    pub fn start(config: &TelemetryConfig) -> anyhow::Result<Option<Arc<Tracing>>> {
        use opentelemetry::trace::TracerProvider as _;
        use opentelemetry_otlp::{Protocol, WithExportConfig};
        if !config.tracing_enabled() {
            return Ok(None);
        }
        let (endpoint, protocol, timeout) = (
            config.otlp_endpoint.clone(),
            match config.otlp_protocol {
                OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
                OtlpProtocol::HttpJson => Protocol::HttpJson,
            },
            Duration::from_millis(config.otlp_timeout_ms),
        );
        // The exporter's blocking HTTP client must not be built on an async runtime's
        // thread; it then lives on the batch processor's own thread.
        let exporter = std::thread::spawn(move || {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(protocol)
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("building the OTLP exporter panicked"))??;
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(config.max_queued_spans)
                    .build(),
            )
            .build();
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            // The edge has sampled already: every span built is kept.
            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("floodgate");
        tracing::info!(endpoint = %config.otlp_endpoint, ratio = config.trace_sample_ratio, "traces exported over OTLP");
        Ok(Some(Arc::new(Tracing {
            tracer,
            provider,
            ratio: config.trace_sample_ratio,
        })))
    }

    /// The trace of a new request: the client's `traceparent` continued, or a new
    /// trace sampled at the configured ratio.
    pub fn begin(&self, incoming: Option<&str>) -> Option<Arc<OtelTrace>> {
        let parent = incoming.and_then(parse_traceparent);
        let sampled = match &parent {
            Some(p) => p.sampled,
            None => self.ratio > 0.0 && rand::random::<f64>() < self.ratio,
        };
        if !sampled {
            return incoming.map(OtelTrace::forward);
        }
        let trace_id = parent
            .as_ref()
            .map_or_else(|| TraceId::from_bytes(rand::random()), |p| p.trace_id);
        Some(Arc::new(OtelTrace {
            trace_id,
            root: new_span_id(),
            parent: parent.map(|p| p.span_id),
            sampled: true,
            incoming: None,
            wall_start: SystemTime::now(),
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
        }))
    }

    /// Exports what is queued (at shutdown).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "traces not flushed");
        }
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "tracer shutdown");
        }
    }
}

/// A request's trace: its ids, and the backend calls made for it.
#[derive(Debug)]
pub struct OtelTrace {
    pub trace_id: TraceId,
    /// The request's own (server) span.
    pub root: SpanId,
    /// The client's span, when it sent a `traceparent`.
    pub parent: Option<SpanId>,
    /// Whether spans are built and exported for it.
    pub sampled: bool,
    /// An unsampled client `traceparent`, forwarded unchanged.
    incoming: Option<String>,
    pub wall_start: SystemTime,
    pub start: Instant,
    calls: Mutex<Vec<CallSpan>>,
}

/// One HTTP attempt to an upstream endpoint or a worker.
#[derive(Debug, Clone)]
pub struct CallSpan {
    pub span_id: SpanId,
    pub start: Instant,
    pub duration: Duration,
    pub model: String,
    pub endpoint: String,
    pub region: String,
    /// Empty when the attempt got its first token; otherwise why it did not.
    pub error: String,
}

impl OtelTrace {
    /// Not traced here: the client's `traceparent` is passed on as it came (a
    /// malformed one is not).
    pub fn forward(header: &str) -> Arc<OtelTrace> {
        let parent = parse_traceparent(header);
        let parent = parent.as_ref();
        Arc::new(OtelTrace {
            trace_id: parent.map_or(TraceId::INVALID, |p| p.trace_id),
            root: SpanId::INVALID,
            parent: parent.map(|p| p.span_id),
            sampled: false,
            incoming: parent.map(|_| header.trim().to_string()),
            wall_start: SystemTime::now(),
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The wall-clock time of an instant of this request.
    pub fn wall(&self, at: Instant) -> SystemTime {
        self.wall_start + at.saturating_duration_since(self.start)
    }

    /// The `traceparent` for an outgoing call, and the call's span id if it is traced.
    pub fn outgoing(&self) -> Option<(String, Option<SpanId>)> {
        if !self.sampled {
            return self.incoming.clone().map(|h| (h, None));
        }
        let span = new_span_id();
        Some((format_traceparent(self.trace_id, span, true), Some(span)))
    }

    pub fn record_call(&self, call: CallSpan) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    pub fn calls(&self) -> Vec<CallSpan> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

tokio::task_local! {
    /// The trace of the request this task is serving (set by the edge around the
    /// handler), read by the upstream client to send `traceparent`.
    pub static CURRENT: Arc<OtelTrace>;
}

/// The current request's trace, if it has one.
pub fn current() -> Option<Arc<OtelTrace>> {
    CURRENT.try_with(Arc::clone).ok()
}

fn new_span_id() -> SpanId {
    loop {
        let id = SpanId::from_bytes(rand::random());
        if id != SpanId::INVALID {
            return id;
        }
    }
}

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// Parses a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`); `None` when malformed
/// or all-zero ids (the header is then ignored, as the spec says).
pub fn parse_traceparent(header: &str) -> Option<Parent> {
    let mut parts = header.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2
        || version == "ff"
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !(lower_hex(version) && lower_hex(trace) && lower_hex(span) && lower_hex(flags)) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(Parent {
        trace_id,
        span_id,
        sampled: TraceFlags::new(flags).is_sampled(),
    })
}

pub fn format_traceparent(trace: TraceId, span: SpanId, sampled: bool) -> String {
    format!("00-{trace}-{span}-{}", if sampled { "01" } else { "00" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_malformed() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let p = parse_traceparent(h).unwrap();
        assert!(p.sampled);
        assert_eq!(format_traceparent(p.trace_id, p.span_id, true), h);
        let unsampled =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert!(!unsampled.unwrap().sampled);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }
}
