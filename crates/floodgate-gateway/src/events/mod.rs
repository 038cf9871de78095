//! The event spine: one typed, versioned event per request (answered or refused) and
//! per admin action, appended to the durable local log (`floodgate-eventlog`) and
//! replayed from there by sinks — the record store (decision records, usage) and NATS
//! JetStream — each from its own committed offset.
//!
//! **Architecture invariant:** the request path never waits on a sink. It serializes
//! its event and queues it for the log's writer thread; at most it waits
//! `events.ack_timeout_ms` for the writer to hand the event to the OS before its answer
//! is completed, so that an answered request's event survives the process being killed.
//! Sinks are idempotent by event id, so replaying after a crash duplicates nothing.

mod genai;
mod nats;
mod schema;
mod sink;
mod spans;
mod store_sink;
mod trace;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use floodgate_eventlog::{Ack, EventLog, Fsync, LogConfig, Overflow};
use sha2::{Digest, Sha256};

use crate::config::{ClientIpMode, Config, EventsConfig, FsyncPolicy, OverflowPolicy};

pub use nats::{consume_into_store, JetStream};
pub use schema::{
    AdminEvent, Event, EventBody, RequestEvent, StageTiming, Timings, Usage, SCHEMA_VERSION,
};
pub use sink::{run_sink, Sink, SinkPacing};
pub use store_sink::StoreSink;
pub use trace::Trace;

/// Where events go: the log, and how requests describe themselves in it.
pub struct Spine {
    log: Option<Arc<EventLog>>,
    ack_timeout: Duration,
    include_text: bool,
    client_ip: ClientIpMode,
    ip_salt: String,
    /// This process, as events name it (`region/host:port`).
    pub origin: String,
    /// Where traced requests' spans go (`[telemetry]`), if anywhere.
    pub tracing: Option<Arc<crate::otel::Tracing>>,
    /// Samples prompts for their drift features (`[drift]`), if on.
    pub prompts: Option<crate::prompt_features::PromptSampler>,
}

impl Spine {
    /// Opens the log in `events.dir` (default: `events/` in the model home).
    pub fn open(config: &Config, origin: String) -> anyhow::Result<Self> {
        let e = &config.events;
        let log = if e.enabled {
            let log = EventLog::open(log_config(config)).map_err(|err| anyhow::anyhow!("{err}"))?;
            Some(Arc::new(log))
        } else {
            None
        };
        Ok(Self {
            log,
            ack_timeout: Duration::from_millis(e.ack_timeout_ms),
            include_text: e.include_text,
            client_ip: e.client_ip,
            ip_salt: crate::config::resolve_secret(&e.ip_hash_salt)?,
            origin,
            tracing: crate::otel::Tracing::start(&config.telemetry)?,
            prompts: crate::prompt_features::PromptSampler::new(config),
        })
    }

    /// No log: events are not kept (tests of other parts, `events.enabled = false`).
    pub fn disabled() -> Self {
        Self {
            log: None,
            ack_timeout: Duration::ZERO,
            include_text: false,
            client_ip: ClientIpMode::None,
            ip_salt: String::new(),
            origin: String::new(),
            tracing: None,
            prompts: None,
        }
    }

    pub fn log(&self) -> Option<&Arc<EventLog>> {
        self.log.as_ref()
    }

    pub fn include_text(&self) -> bool {
        self.include_text
    }

    /// The client address as configured: as is, hashed, or left out.
    pub fn client_ip(&self, ip: IpAddr) -> Option<String> {
        match self.client_ip {
            ClientIpMode::Full => Some(ip.to_string()),
            ClientIpMode::None => None,
            ClientIpMode::Hash => {
                let mut h = Sha256::new();
                h.update(self.ip_salt.as_bytes());
                h.update(ip.to_string().as_bytes());
                Some(hex::encode(&h.finalize()[..8]))
            }
        }
    }

    /// A new request's trace: the client's `traceparent` continued or a sampling draw
    /// (`None` when traces are off and the client sent none).
    pub fn begin_trace(&self, traceparent: Option<&str>) -> Option<Arc<crate::otel::OtelTrace>> {
        match &self.tracing {
            Some(t) => t.begin(traceparent),
            None => traceparent.map(crate::otel::OtelTrace::forward),
        }
    }

    /// Records the event's GenAI metrics, exports its spans if `trace` was sampled, and
    /// queues it for the log; never waits.
    pub fn emit(&self, event: &Event, trace: Option<&Trace>) -> Option<Ack> {
        genai::observe(event);
        if let (Some(tracing), Some(otel)) = (&self.tracing, trace.and_then(|t| t.otel.as_ref())) {
            if otel.sampled {
                spans::export(tracing, otel, event);
            }
        }
        let log = self.log.as_ref()?;
        // Sized for a typical event (about 1 kB), so serializing does not reallocate.
        let mut bytes = Vec::with_capacity(1536);
        match serde_json::to_writer(&mut bytes, event) {
            Ok(()) => log.append(bytes),
            Err(e) => {
                tracing::error!(error = %e, id = %event.id, "event not serializable");
                None
            }
        }
    }

    /// Waits, at most `events.ack_timeout_ms`, for a queued event to reach the log.
    pub async fn settle(&self, ack: Option<Ack>) {
        let Some(ack) = ack else { return };
        // Written by the request's own thread (the usual case): nothing to wait for.
        if ack.is_written() || self.ack_timeout.is_zero() {
            return;
        }
        if tokio::time::timeout(self.ack_timeout, ack.written())
            .await
            .is_err()
        {
            metrics::counter!("floodgate_events_ack_timeouts_total").increment(1);
        }
    }

    /// Emits and waits for the log ([`Spine::settle`]).
    pub async fn record(&self, event: &Event, trace: Option<&Trace>) {
        let ack = self.emit(event, trace);
        self.settle(ack).await;
    }

    /// Writes what is queued and stops the writer; exports the spans still queued.
    pub fn close(&self) {
        if let Some(t) = &self.tracing {
            t.shutdown();
        }
        if let Some(log) = &self.log {
            log.close();
        }
    }
}

/// The log's directory: `events.dir`, else `events/` in the model home.
pub fn log_dir(config: &Config) -> PathBuf {
    if !config.events.dir.is_empty() {
        return PathBuf::from(&config.events.dir);
    }
    crate::model_cache::model_store(config)
        .root()
        .join("events")
}

fn log_config(config: &Config) -> LogConfig {
    let e: &EventsConfig = &config.events;
    LogConfig {
        dir: log_dir(config),
        segment_bytes: e.segment_mb << 20,
        max_bytes: e.max_mb << 20,
        queue_capacity: e.queue_capacity,
        fsync: match e.fsync {
            FsyncPolicy::Always => Fsync::Always,
            FsyncPolicy::Interval => Fsync::Interval(Duration::from_millis(e.fsync_interval_ms)),
            FsyncPolicy::Never => Fsync::Never,
        },
        overflow: match e.overflow {
            OverflowPolicy::Drop => Overflow::Drop,
            OverflowPolicy::Block => Overflow::Block,
        },
        batch_max: 4_096,
    }
}

/// A new event id: a UUIDv7 (time-ordered, so ids sort by arrival), `evt_` + 32 hex.
pub fn new_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The sinks a process runs, fed from its log.
pub struct Sinks {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sinks {
    /// Starts the configured sinks: the record store (`events.store_sink`) and NATS
    /// JetStream (`events.nats_url`).
    pub async fn start(
        config: &Config,
        spine: &Spine,
        records: Arc<dyn crate::records::RecordStore>,
    ) -> anyhow::Result<Self> {
        let (stop, _) = tokio::sync::watch::channel(false);
        let tasks = Vec::new();
        if spine.log().is_none() {
            return Ok(Self { stop, tasks });
        }
        let e = &config.events;
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        if e.store_sink {
            sinks.push(Arc::new(
                StoreSink::new(records).with_retention(config.dashboard.stats_retention_days),
            ));
        }
        if !e.nats_url.is_empty() {
            sinks.push(Arc::new(JetStream::connect(e).await?));
        }
        let mut me = Self { stop, tasks };
        for sink in sinks {
            me.add_log_sink(config, spine, sink);
        }
        Ok(me)
    }

    /// One more sink following the log from its own offset (the drift watcher), paced
    /// like the others; nothing happens without a log.
    pub fn add_log_sink(&mut self, config: &Config, spine: &Spine, sink: Arc<dyn Sink>) {
        let Some(log) = spine.log() else { return };
        let e = &config.events;
        tracing::info!(sink = sink.name(), "event sink started");
        let pacing = SinkPacing {
            batch: e.sink_batch,
            retry_max: Duration::from_millis(e.sink_retry_max_ms),
            linger: Duration::from_millis(e.sink_linger_ms),
            drain: Duration::from_secs(config.server.shutdown_grace_seconds.min(10)),
        };
        self.tasks.push(tokio::spawn(run_sink(
            Arc::clone(log),
            sink,
            pacing,
            self.stop.subscribe(),
        )));
    }

    /// The analytics role's consumer (JetStream into the store, then `also` — the drift
    /// watcher — with each stored batch), under the same stop.
    pub fn add_consumer(
        &mut self,
        js: JetStream,
        records: Arc<dyn crate::records::RecordStore>,
        batch: usize,
        also: Option<Arc<dyn Sink>>,
    ) {
        let stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(consume_into_store(
            js, records, batch, also, stop,
        )));
    }

    /// Lets each sink apply what the log holds (for a bounded time), then stops them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
