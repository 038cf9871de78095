//! A request's identity in the event spine, from the edge to its event.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::auth::Caller;
use crate::otel::OtelTrace;

use super::{RequestEvent, Spine};

/// Made by the edge for every request: the server-generated id, the client's
/// `x-request-id`, and who called once identification knows. Whoever claims it emits
/// the request's event; the HTTP layer emits one for every request nobody claimed (a
/// refusal before the pipeline, an embedding, a 404).
#[derive(Debug)]
pub struct Trace {
    pub id: String,
    pub time_ms: i64,
    pub started: Instant,
    pub client_request_id: Option<String>,
    pub endpoint: String,
    caller: OnceLock<(Caller, IpAddr)>,
    claimed: AtomicBool,
    /// Its OpenTelemetry trace, when traces are on and it was sampled, or the client's
    /// unsampled `traceparent` to pass on.
    pub otel: Option<Arc<OtelTrace>>,
}

impl Trace {
    pub fn new(
        client_request_id: Option<String>,
        endpoint: String,
        otel: Option<Arc<OtelTrace>>,
    ) -> Self {
        Self {
            id: super::new_id(),
            time_ms: super::now_ms(),
            started: Instant::now(),
            client_request_id,
            endpoint,
            caller: OnceLock::new(),
            claimed: AtomicBool::new(false),
            otel,
        }
    }

    /// The identify stage knows who calls.
    pub fn identified(&self, caller: &Caller, ip: IpAddr) {
        let _ = self.caller.set((caller.clone(), ip));
    }

    /// Takes over emitting this request's event; false if someone already had.
    pub fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    pub fn claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// The request event's fields known at the edge.
    pub fn base(&self, spine: &Spine) -> RequestEvent {
        let (key_id, tenant, segment, ip) = match self.caller.get() {
            Some((caller, ip)) => (
                caller.key_id().to_string(),
                caller.tenant().to_string(),
                caller
                    .record()
                    .map_or_else(|| "default".to_string(), |r| r.segment.clone()),
                spine.client_ip(*ip),
            ),
            None => (String::new(), String::new(), String::new(), None),
        };
        RequestEvent {
            client_request_id: self.client_request_id.clone(),
            endpoint: self.endpoint.clone(),
            key_id,
            tenant,
            segment,
            client_ip: ip,
            ..RequestEvent::default()
        }
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }
}
