//! Running a sink: read the log from the sink's committed offset, apply, commit.

use std::sync::Arc;
use std::time::Duration;

use floodgate_eventlog::{Cursor, EventLog};
use tokio::sync::watch;

use super::Event;

/// Somewhere events are replayed into. `apply` must be idempotent by event id: after a
/// crash the records since the last commit come again.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    fn name(&self) -> &'static str;
    /// Applies a batch, all or nothing as far as the caller knows: an error makes the
    /// runner retry the whole batch.
    async fn apply(&self, events: &[Event]) -> anyhow::Result<()>;
}

/// How a sink takes events from the log.
#[derive(Debug, Clone, Copy)]
pub struct SinkPacing {
    /// Events per batch, at most.
    pub batch: usize,
    /// Longest pause between retries of a failing batch.
    pub retry_max: Duration,
    /// How long events may gather before a batch smaller than `batch` is applied.
    pub linger: Duration,
    /// After `stop`, how long the sink may go on catching up.
    pub drain: Duration,
}

/// Feeds `sink` from the log until `stop` turns true and the sink has caught up (or
/// `stop` has been true for `drain` — what is left is applied after the restart).
pub async fn run_sink(
    log: Arc<EventLog>,
    sink: Arc<dyn Sink>,
    pacing: SinkPacing,
    mut stop: watch::Receiver<bool>,
) {
    let SinkPacing {
        batch,
        retry_max,
        linger,
        drain,
    } = pacing;
    let name = sink.name();
    let mut cursor = match log.cursor(name) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(sink = name, error = %e, "event sink cannot start");
            return;
        }
    };
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        if cursor.pending() == 0 {
            if !wait_for_more(&mut cursor, &mut stop).await {
                return;
            }
            continue;
        }
        // Let a batch gather (one transaction and one offset commit for many events),
        // unless a whole one is already waiting or the process is stopping.
        if !linger.is_zero() && cursor.pending() < batch as u64 && !*stop.borrow() {
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                _ = stop.changed() => {}
            }
        }
        // File reads, decoding and the offset commit are blocking work: off the async
        // workers that serve requests.
        let Ok((back, read)) = tokio::task::spawn_blocking(move || {
            let read = read_batch(&mut cursor, batch, name);
            (cursor, read)
        })
        .await
        else {
            tracing::error!(sink = name, "event sink reader panicked; the sink stops");
            return;
        };
        cursor = back;
        let (events, last) = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(sink = name, error = %e, "event log unreadable");
                tokio::time::sleep(retry_max).await;
                continue;
            }
        };
        if last == 0 {
            if !wait_for_more(&mut cursor, &mut stop).await {
                return;
            }
            continue;
        }
        if *stop.borrow() && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + drain);
        }
        if !apply_until_done(sink.as_ref(), &events, retry_max, deadline).await {
            return;
        }
        let Ok(back) = tokio::task::spawn_blocking(move || {
            commit(&mut cursor, last, name);
            cursor
        })
        .await
        else {
            tracing::error!(sink = name, "event sink commit panicked; the sink stops");
            return;
        };
        cursor = back;
    }
}

/// Waits for a record after those read, or for `stop`; false when stopping.
async fn wait_for_more(cursor: &mut Cursor, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = cursor.wait() => {}
        _ = stop.changed() => {}
    }
    true
}

/// Up to `max` records after those already read, decoded (undecodable ones are counted
/// and skipped), and the last one's sequence number (0: none).
fn read_batch(
    cursor: &mut Cursor,
    max: usize,
    name: &'static str,
) -> Result<(Vec<Event>, u64), floodgate_eventlog::LogError> {
    let records = cursor.read(max)?;
    let last = records.last().map_or(0, |r| r.seq);
    let events = records
        .iter()
        .filter_map(|r| match serde_json::from_slice(&r.payload) {
            Ok(e) => Some(e),
            Err(e) => {
                metrics::counter!("floodgate_events_undecodable_total", "sink" => name).increment(1);
                tracing::error!(sink = name, seq = r.seq, error = %e, "skipping an undecodable event");
                None
            }
        })
        .collect();
    Ok((events, last))
}

/// Applies one batch, retrying with backoff; false when the drain deadline passed.
async fn apply_until_done(
    sink: &dyn Sink,
    events: &[Event],
    retry_max: Duration,
    deadline: Option<tokio::time::Instant>,
) -> bool {
    let name = sink.name();
    let mut backoff = Duration::from_millis(100);
    let mut failures = 0u64;
    loop {
        match sink.apply(events).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(sink = name, failures, "event sink is back; catching up");
                }
                metrics::counter!("floodgate_events_sink_applied_total", "sink" => name)
                    .increment(events.len() as u64);
                return true;
            }
            Err(e) => {
                failures += 1;
                metrics::counter!("floodgate_events_sink_errors_total", "sink" => name)
                    .increment(1);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(sink = name, failures, error = %e, "event sink failing; requests are unaffected, events wait in the log");
                }
            }
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() + backoff > d) {
            tracing::warn!(
                sink = name,
                "shutting down with events not yet applied; they are applied after the restart"
            );
            return false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(retry_max);
    }
}

fn commit(cursor: &mut Cursor, seq: u64, name: &'static str) {
    if let Err(e) = cursor.commit(seq) {
        // Not fatal: the batch is applied again after a restart (idempotently).
        tracing::error!(sink = name, error = %e, "cannot commit the sink's offset");
    }
    metrics::gauge!("floodgate_events_sink_lag", "sink" => name).set(cursor.lag() as f64);
}
