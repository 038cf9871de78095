//! A durable local append-only log, the first stop of every event.
//!
//! The request path hands a payload to [`EventLog::append`]. When the writer is idle
//! (its lock is free, nothing is queued, the segment has room and the policy is not
//! `Fsync::Always`) the caller appends the record itself with one `write` and gets an
//! [`Ack`] that is already done: no hand-off, no wake-up. Otherwise the record goes on
//! a bounded in-process queue, and one writer thread drains the queue in batches and
//! appends them to segment files: each record is `[len u32][crc32 u32][seq u64][payload]`
//! (little-endian; the CRC covers the sequence number and the payload), and a segment
//! is named after its first sequence number. Either way records keep the order of the
//! `append` calls. The writer thread fsyncs by policy ([`Fsync`]),
//! rotates segments at a size, and keeps the directory under a size cap by deleting
//! segments every sink has committed.
//!
//! Sinks read the log through a [`Cursor`] from their own committed offset (a small
//! file per sink, replaced atomically), so each sink sees every record at least once,
//! after a crash too: what a sink had not committed is read again. Sinks apply records
//! idempotently (by the id inside the payload), which makes "at least once" "exactly
//! once" in effect.
//!
//! When the disk is full or slow the policy decides ([`Overflow`]): `Drop` loses the
//! newest events and counts them (`floodgate_events_dropped_total`), `Block` makes the
//! producers wait. A record handed to the OS survives the process being killed; one
//! that must survive a power cut needs `Fsync::Always`.

mod cursor;
mod segment;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

pub use cursor::{scan_dir, Cursor, Record};
pub use writer::{Ack, EventLog};

/// When the writer calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every batch it writes (group commit): a record acknowledged is on disk.
    Always,
    /// At most this long after a record was written.
    Interval(Duration),
    /// Never explicitly (the OS writes back when it likes; a killed process loses
    /// nothing, a power cut may).
    Never,
}

/// What happens to a new record when the queue or the disk cannot take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// The record is dropped, counted and logged; the producer never waits.
    Drop,
    /// The producer waits until there is room.
    Block,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub dir: PathBuf,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// The directory's cap: past it, committed segments are deleted, and if none can
    /// be, the overflow policy applies.
    pub max_bytes: u64,
    /// Records waiting for the writer, at most.
    pub queue_capacity: usize,
    pub fsync: Fsync,
    pub overflow: Overflow,
    /// Records the writer takes from the queue per write, at most.
    pub batch_max: usize,
}

impl LogConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            segment_bytes: 64 << 20,
            max_bytes: 1 << 30,
            queue_capacity: 65_536,
            fsync: Fsync::Interval(Duration::from_millis(100)),
            overflow: Overflow::Drop,
            batch_max: 4_096,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("event log: record of {0} bytes is over the 16 MiB limit")]
    TooLarge(usize),
    #[error("event log: the writer has stopped")]
    Closed,
    #[error("event log {0}: in use by another process (each process needs its own `events.dir`)")]
    InUse(PathBuf),
    #[error("event log: sink name {0:?} must be letters, digits, '-' or '_'")]
    BadSinkName(String),
}

impl LogError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }
}

#[cfg(test)]
mod tests;
