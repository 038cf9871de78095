//! `[events]`: the durable local event log every request's event goes to first, and the
//! sinks that replay it (the record store, NATS JetStream).

use serde::{Deserialize, Serialize};

/// When the event log calls fsync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// After every batch (group commit): an acknowledged event survives a power cut.
    Always,
    /// At most `fsync_interval_ms` after a write: a killed process loses nothing, a
    /// power cut at most that much.
    #[default]
    Interval,
    /// Left to the OS.
    Never,
}

crate::config::value_set!(FsyncPolicy { Always => "always", Interval => "interval", Never => "never" });

/// What happens to an event when the log's queue or disk cannot take it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverflowPolicy {
    /// The event is dropped and counted (`floodgate_events_dropped_total`); requests
    /// never wait.
    #[default]
    Drop,
    /// Requests wait for room: no event is lost, at the price of latency.
    Block,
}

crate::config::value_set!(OverflowPolicy { Drop => "drop", Block => "block" });

/// How a request's client address goes into its event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientIpMode {
    /// As is.
    Full,
    /// A salted SHA-256 (`ip_hash_salt`), first 16 hex digits: groups a client's
    /// requests without storing its address.
    #[default]
    Hash,
    None,
}

crate::config::value_set!(ClientIpMode { Full => "full", Hash => "hash", None => "none" });

/// `[events]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Write an event per request (and per admin action). Off: no log, no sinks.
    pub enabled: bool,
    /// The log's directory; empty = `events/` in the model home.
    pub dir: String,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// A segment file is closed past this size (MiB).
    pub segment_mb: u64,
    /// The log's size cap (MiB): past it, segments every sink has committed are
    /// deleted; if none can be, `overflow` applies.
    pub max_mb: u64,
    /// Events waiting for the writer thread, at most.
    pub queue_capacity: usize,
    pub overflow: OverflowPolicy,
    /// How long a request waits, at most, for its queued event to reach the log before
    /// its answer is completed (an event the request wrote itself needs no wait; the
    /// writer's group commit takes microseconds; a slow disk
    /// never holds a request longer than this). 0: never wait.
    pub ack_timeout_ms: u64,
    /// Put the prompt and answer text in request events.
    pub include_text: bool,
    pub client_ip: ClientIpMode,
    /// Salt for `client_ip = "hash"`, or `env::NAME`.
    pub ip_hash_salt: String,
    /// Replay events into the record store (decision records, usage).
    pub store_sink: bool,
    /// NATS server for the JetStream sink (`nats://host:4222` or `env::NAME`); empty: off.
    pub nats_url: String,
    /// The JetStream stream (created if missing) and its subject prefix: events go to
    /// `<prefix>.<kind>` (`floodgate.events.request`, `floodgate.events.admin`).
    pub nats_stream: String,
    pub nats_subject_prefix: String,
    /// The stream's deduplication window (s): an event replayed within it (after a crash
    /// or a lost acknowledgement) is stored once; the analytics consumer is idempotent
    /// beyond it.
    pub nats_dedup_window_seconds: u64,
    /// Events a sink takes from the log per batch, at most.
    pub sink_batch: usize,
    /// Longest pause between a failing sink's retries (ms); it backs off from 100 ms.
    pub sink_retry_max_ms: u64,
    /// How long a sink lets events gather before it applies them (ms), unless a whole
    /// `sink_batch` is waiting: one store transaction per batch instead of one per
    /// event at low rates. Records reach the store this much later. 0: apply at once.
    pub sink_linger_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: String::new(),
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 100,
            segment_mb: 64,
            max_mb: 1024,
            queue_capacity: 65_536,
            overflow: OverflowPolicy::Drop,
            ack_timeout_ms: 50,
            include_text: false,
            client_ip: ClientIpMode::Hash,
            ip_hash_salt: String::new(),
            store_sink: true,
            nats_url: String::new(),
            nats_stream: "FLOODGATE_EVENTS".into(),
            nats_subject_prefix: "floodgate.events".into(),
            nats_dedup_window_seconds: 600,
            sink_batch: 512,
            sink_retry_max_ms: 5_000,
            sink_linger_ms: 50,
        }
    }
}

impl EventsConfig {
    pub fn validate(&self, errors: &mut Vec<String>) {
        if self.segment_mb == 0 || self.max_mb < self.segment_mb * 2 {
            errors.push(
                "events: segment_mb must be at least 1 and max_mb at least twice segment_mb".into(),
            );
        }
        if self.queue_capacity == 0 || self.sink_batch == 0 {
            errors.push("events: queue_capacity and sink_batch must be at least 1".into());
        }
        if self.nats_stream.is_empty()
            || !self
                .nats_stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            errors.push("events.nats_stream: letters, digits, '_' or '-' only".into());
        }
        if self.nats_subject_prefix.is_empty() || self.nats_subject_prefix.contains([' ', '*', '>'])
        {
            errors.push("events.nats_subject_prefix: a subject without spaces or wildcards".into());
        }
    }
}
