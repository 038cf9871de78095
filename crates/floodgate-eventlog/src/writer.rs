//! The writer thread and the producers' side of the queue.
//!
//! A producer that finds the writer idle writes its record itself, under the writer's
//! lock, with one `write` to the current segment: no hand-off to the thread and no
//! wake-up to wait for, so the record is with the OS when `append` returns. Whenever
//! that is not a plain append — the lock is held (the thread is writing a batch or
//! syncing), the segment is full, the log is at its cap, a write failed, or every record
//! must be fsynced (`Fsync::Always`, which the thread's group commit serves) — the
//! record goes through the bounded queue to the writer thread as before. Producers never
//! wait for the lock. While any record is queued, producers queue too, so records keep
//! the order in which they were appended.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::segment::{self, MAX_PAYLOAD};
use crate::{Cursor, Fsync, LogConfig, LogError, Overflow};

enum Msg {
    Append {
        payload: Vec<u8>,
        ack: oneshot::Sender<u64>,
    },
    /// A producer wrote to a clean segment: the fsync interval starts now.
    Dirty,
    Stop,
}

/// Resolves when the record has been handed to the OS (and fsynced, with
/// `Fsync::Always`), with its sequence number; `None` if it was dropped.
pub struct Ack(AckState);

enum AckState {
    /// Written by the producer itself.
    Written(u64),
    /// Queued for the writer thread.
    Queued(oneshot::Receiver<u64>),
}

impl Ack {
    pub async fn written(self) -> Option<u64> {
        match self.0 {
            AckState::Written(seq) => Some(seq),
            AckState::Queued(rx) => rx.await.ok(),
        }
    }

    /// Whether the record is already with the OS (nothing to wait for).
    pub fn is_written(&self) -> bool {
        matches!(self.0, AckState::Written(_))
    }
}

/// What the writer and the cursors share.
pub(crate) struct Shared {
    pub dir: PathBuf,
    /// Each registered sink's committed offset: segments below all of them may go.
    pub sinks: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl Shared {
    fn min_committed(&self) -> u64 {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks
            .values()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// The log: cheap to append to from any thread; one writer thread behind it.
pub struct EventLog {
    tx: flume::Sender<Msg>,
    overflow: Overflow,
    written: watch::Receiver<u64>,
    written_tx: Arc<watch::Sender<u64>>,
    /// The writer's state: the thread holds it while it writes a batch, syncs or
    /// rotates; a producer that finds it free appends its record itself.
    state: Arc<Mutex<Writer>>,
    /// Producers may write themselves (not with `Fsync::Always`).
    inline: bool,
    /// Records handed to the queue and not yet written by the thread.
    queued: Arc<AtomicU64>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Holds the directory's advisory lock (`LOCK`) until the log is closed: one writer
    /// per directory, so two processes never interleave their sequence numbers.
    lock: File,
}

impl EventLog {
    /// Opens the log in `config.dir` (created if needed), cutting a torn tail left by a
    /// crash, and starts the writer thread.
    pub fn open(config: LogConfig) -> Result<Self, LogError> {
        std::fs::create_dir_all(&config.dir).map_err(LogError::io(&config.dir))?;
        let lock_path = config.dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(LogError::io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LogError::InUse(config.dir.clone()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(LogError::io(&lock_path)(e)),
        }
        let shared = Arc::new(Shared {
            dir: config.dir.clone(),
            sinks: Mutex::new(HashMap::new()),
        });
        let writer = Writer::open(config.clone(), Arc::clone(&shared))?;
        let (written_tx, written) = watch::channel(writer.next_seq - 1);
        let written_tx = Arc::new(written_tx);
        let state = Arc::new(Mutex::new(writer));
        let (tx, rx) = flume::bounded(config.queue_capacity.max(1));
        let queued = Arc::new(AtomicU64::new(0));
        let thread = {
            let (state, written_tx) = (Arc::clone(&state), Arc::clone(&written_tx));
            let queued = Arc::clone(&queued);
            let fsync = config.fsync;
            std::thread::Builder::new()
                .name("event-log".into())
                .spawn(move || Writer::run(&state, fsync, &rx, &written_tx, &queued))
                .map_err(LogError::io(&config.dir))?
        };
        Ok(Self {
            tx,
            overflow: config.overflow,
            written,
            written_tx,
            state,
            inline: config.fsync != Fsync::Always,
            queued,
            shared,
            thread: Mutex::new(Some(thread)),
            lock,
        })
    }

    /// Queues a record without ever waiting. With `Overflow::Block` and a full queue
    /// the record is handed to a task that waits for room (inside a tokio runtime),
    /// else it is dropped and counted.
    pub fn append(&self, payload: Vec<u8>) -> Option<Ack> {
        if payload.len() > MAX_PAYLOAD {
            dropped("too large", 1);
            return None;
        }
        if let Some(seq) = self.write_inline(&payload) {
            return Some(Ack(AckState::Written(seq)));
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        self.queued.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(Msg::Append {
            payload,
            ack: ack_tx,
        }) {
            Ok(()) => Some(Ack(AckState::Queued(ack_rx))),
            Err(flume::TrySendError::Full(msg)) if self.overflow == Overflow::Block => {
                let Ok(handle) = tokio::runtime::Handle::try_current() else {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    dropped("queue full", 1);
                    return None;
                };
                metrics::counter!("floodgate_events_delayed_total").increment(1);
                let (tx, queued) = (self.tx.clone(), Arc::clone(&self.queued));
                handle.spawn(async move {
                    if tx.send_async(msg).await.is_err() {
                        queued.fetch_sub(1, Ordering::SeqCst);
                    }
                });
                Some(Ack(AckState::Queued(ack_rx)))
            }
            Err(flume::TrySendError::Full(_)) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                dropped("queue full", 1);
                None
            }
            Err(flume::TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                dropped("closed", 1);
                None
            }
        }
    }

    /// Queues a record, waiting for room with `Overflow::Block`.
    pub async fn append_async(&self, payload: Vec<u8>) -> Option<Ack> {
        if self.overflow == Overflow::Drop || payload.len() > MAX_PAYLOAD {
            return self.append(payload);
        }
        if let Some(seq) = self.write_inline(&payload) {
            return Some(Ack(AckState::Written(seq)));
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        let msg = Msg::Append {
            payload,
            ack: ack_tx,
        };
        if self.tx.len() >= self.tx.capacity().unwrap_or(usize::MAX) {
            metrics::counter!("floodgate_events_delayed_total").increment(1);
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        match self.tx.send_async(msg).await {
            Ok(()) => Some(Ack(AckState::Queued(ack_rx))),
            Err(_) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                dropped("closed", 1);
                None
            }
        }
    }

    /// Appends `payload` on the caller's thread if the writer is idle and the record is a
    /// plain append (see the module's notes); its sequence number, else `None`.
    fn write_inline(&self, payload: &[u8]) -> Option<u64> {
        if !self.inline {
            return None;
        }
        let mut w = self.state.try_lock().ok()?;
        // Records are queued: this one goes behind them.
        if self.queued.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let (seq, was_clean) = w.append_one(payload)?;
        self.written_tx.send_replace(seq);
        drop(w);
        metrics::counter!("floodgate_events_written_total").increment(1);
        if was_clean {
            // The thread starts the fsync interval's clock (once per interval at most).
            let _ = self.tx.try_send(Msg::Dirty);
        }
        Some(seq)
    }

    /// The highest sequence number handed to the OS so far.
    pub fn written(&self) -> watch::Receiver<u64> {
        self.written.clone()
    }

    /// Records waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// A cursor for sink `name`, from the record after its committed offset. The sink
    /// holds back deletion of what it has not committed.
    pub fn cursor(&self, name: &str) -> Result<Cursor, LogError> {
        Cursor::open(Arc::clone(&self.shared), name, self.written.clone())
    }

    /// Stops taking records, writes and fsyncs what is queued, and joins the writer.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        let _ = self.tx.send(Msg::Stop);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        let _ = self.lock.unlock();
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn dropped(reason: &'static str, n: u64) {
    metrics::counter!("floodgate_events_dropped_total", "reason" => reason).increment(n);
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
        *last = Some(Instant::now());
        tracing::error!(
            reason,
            n,
            "event log: dropping events (see floodgate_events_dropped_total)"
        );
    }
}

/// The writer thread's state.
struct Writer {
    config: LogConfig,
    shared: Arc<Shared>,
    file: File,
    path: PathBuf,
    /// Bytes in the current segment.
    pos: u64,
    /// Bytes in all segments.
    bytes: u64,
    next_seq: u64,
    /// Written since the last fsync.
    dirty_since: Option<Instant>,
    /// Closed: producers no longer write themselves.
    closed: bool,
    /// A producer's record, framed (reused).
    frame: Vec<u8>,
}

impl Writer {
    fn open(config: LogConfig, shared: Arc<Shared>) -> Result<Self, LogError> {
        let segments = segment::list(&config.dir)?;
        let mut bytes = 0;
        for (_, p) in &segments {
            bytes += std::fs::metadata(p).map_err(LogError::io(p))?.len();
        }
        let (path, next_seq, pos) = match segments.last() {
            Some((first, p)) => {
                let (last, good_end) = segment::scan(p)?;
                let len = std::fs::metadata(p).map_err(LogError::io(p))?.len();
                if good_end < len {
                    let f = OpenOptions::new()
                        .write(true)
                        .open(p)
                        .map_err(LogError::io(p))?;
                    f.set_len(good_end).map_err(LogError::io(p))?;
                    f.sync_all().map_err(LogError::io(p))?;
                    bytes -= len - good_end;
                }
                (p.clone(), last.map_or(*first, |l| l + 1), good_end)
            }
            None => (config.dir.join(segment::name(1)), 1, 0),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(LogError::io(&path))?;
        Ok(Self {
            config,
            shared,
            file,
            path,
            pos,
            bytes,
            next_seq,
            dirty_since: None,
            closed: false,
            frame: Vec::new(),
        })
    }

    /// A producer's append: one record at the end of the current segment, with one
    /// write. `None` (nothing written) when it is not a plain append — the log is closed,
    /// the segment is full (the thread rotates), the cap is near (the thread reclaims)
    /// or the write failed (the thread retries per the overflow policy). Else the
    /// record's sequence number, and whether the segment was clean before it.
    fn append_one(&mut self, payload: &[u8]) -> Option<(u64, bool)> {
        let len = (payload.len() + segment::HEADER) as u64;
        if self.closed
            || self.pos >= self.config.segment_bytes
            || self.bytes + len > self.config.max_bytes
        {
            return None;
        }
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        segment::encode(&mut frame, self.next_seq, payload);
        let ok = self.file.write_all(&frame).is_ok();
        self.frame = frame;
        if !ok {
            // Never leave part of a record: cut back to the last whole one.
            let _ = self.file.set_len(self.pos);
            return None;
        }
        self.pos += len;
        self.bytes += len;
        let seq = self.next_seq;
        self.next_seq += 1;
        let was_clean = self.dirty_since.is_none();
        if self.config.fsync != Fsync::Never {
            self.dirty_since.get_or_insert_with(Instant::now);
        }
        Some((seq, was_clean && self.config.fsync != Fsync::Never))
    }

    /// The writer thread: writes queued batches (group commit), rotates full segments
    /// and runs the fsync policy, for its own writes and the producers' alike.
    fn run(
        state: &Mutex<Writer>,
        fsync: Fsync,
        rx: &flume::Receiver<Msg>,
        written: &watch::Sender<u64>,
        queued: &AtomicU64,
    ) {
        let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = Vec::new();
        let mut stop = false;
        while !stop {
            let wait = lock().until_fsync();
            let first = rx.recv_timeout(wait);
            let mut w = lock();
            match first {
                Ok(Msg::Append { payload, ack }) => batch.push((payload, ack)),
                Ok(Msg::Dirty) => {}
                Ok(Msg::Stop) | Err(flume::RecvTimeoutError::Disconnected) => stop = true,
                Err(flume::RecvTimeoutError::Timeout) => {}
            }
            while !stop && batch.len() < w.config.batch_max {
                match rx.try_recv() {
                    Ok(Msg::Append { payload, ack }) => batch.push((payload, ack)),
                    Ok(Msg::Dirty) => {}
                    Ok(Msg::Stop) => stop = true,
                    Err(_) => break,
                }
            }
            let taken = batch.len() as u64;
            w.write_batch(&mut batch, written);
            // Under the lock: a producer that sees 0 may write itself, after these.
            queued.fetch_sub(taken, Ordering::SeqCst);
            // Producers' writes may have filled the segment.
            if w.pos >= w.config.segment_bytes {
                w.rotate();
            }
            if matches!(fsync, Fsync::Interval(_)) && w.until_fsync().is_zero() {
                w.sync();
            }
        }
        lock().sync();
    }

    fn until_fsync(&self) -> Duration {
        match (self.config.fsync, self.dirty_since) {
            (Fsync::Interval(every), Some(since)) => every.saturating_sub(since.elapsed()),
            _ => Duration::from_secs(3600),
        }
    }

    fn sync(&mut self) {
        if self.dirty_since.take().is_some() {
            if let Err(e) = self.file.sync_data() {
                tracing::error!(error = %e, path = %self.path.display(), "event log: fsync failed");
            }
        }
    }

    fn write_batch(
        &mut self,
        batch: &mut Vec<(Vec<u8>, oneshot::Sender<u64>)>,
        written: &watch::Sender<u64>,
    ) {
        if batch.is_empty() {
            return;
        }
        let mut buf =
            Vec::with_capacity(batch.iter().map(|(p, _)| p.len() + segment::HEADER).sum());
        for (i, (payload, _)) in batch.iter().enumerate() {
            segment::encode(&mut buf, self.next_seq + i as u64, payload);
        }
        if !self.write_all(&buf) {
            dropped("disk", batch.len() as u64);
            batch.clear();
            return;
        }
        let first = self.next_seq;
        self.next_seq += batch.len() as u64;
        match self.config.fsync {
            Fsync::Always => {
                self.dirty_since.get_or_insert_with(Instant::now);
                self.sync();
            }
            Fsync::Interval(_) => {
                self.dirty_since.get_or_insert_with(Instant::now);
                if self.until_fsync().is_zero() {
                    self.sync();
                }
            }
            Fsync::Never => {}
        }
        metrics::counter!("floodgate_events_written_total").increment(batch.len() as u64);
        written.send_replace(self.next_seq - 1);
        for (i, (_, ack)) in batch.drain(..).enumerate() {
            let _ = ack.send(first + i as u64);
        }
        if self.pos >= self.config.segment_bytes {
            self.rotate();
        }
        metrics::gauge!("floodgate_events_log_bytes").set(self.bytes as f64);
    }

    /// Appends `buf` at the end of the current segment, within the size cap. Gives up
    /// (false) under `Overflow::Drop`; retries until it succeeds under `Block`.
    fn write_all(&mut self, buf: &[u8]) -> bool {
        let mut backoff = Duration::from_millis(50);
        loop {
            let why = if self.bytes + buf.len() as u64 > self.config.max_bytes
                && !self.reclaim(buf.len() as u64)
            {
                "the event log is at its size cap and its sinks have not committed the oldest segment".to_string()
            } else {
                match self.file.write_all(buf) {
                    Ok(()) => {
                        self.pos += buf.len() as u64;
                        self.bytes += buf.len() as u64;
                        return true;
                    }
                    Err(e) => {
                        // Never leave half a batch: cut back to the last whole record.
                        let _ = self.file.set_len(self.pos);
                        format!("write failed: {e}")
                    }
                }
            };
            if self.config.overflow == Overflow::Drop {
                tracing::warn!(why, "event log: cannot write");
                return false;
            }
            metrics::counter!("floodgate_events_write_stalls_total").increment(1);
            tracing::warn!(
                why,
                retry_ms = backoff.as_millis() as u64,
                "event log: cannot write; producers wait"
            );
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn rotate(&mut self) {
        self.dirty_since.get_or_insert_with(Instant::now);
        self.sync();
        let path = self.config.dir.join(segment::name(self.next_seq));
        match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(f) => {
                self.file = f;
                self.path = path;
                self.pos = 0;
            }
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "event log: cannot start a new segment; the current one grows")
            }
        }
        self.reclaim(0);
    }

    /// Deletes the oldest segments every sink has committed while the log is over 80 %
    /// of its cap (or `need` more bytes would not fit). True when `need` fits.
    fn reclaim(&mut self, need: u64) -> bool {
        let target = self.config.max_bytes / 10 * 8;
        let committed = self.shared.min_committed();
        let Ok(segments) = segment::list(&self.config.dir) else {
            return self.bytes + need <= self.config.max_bytes;
        };
        for pair in segments.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            if self.bytes + need <= target || *path == self.path || next_first - 1 > committed {
                break;
            }
            let len = std::fs::metadata(path).map_or(0, |m| m.len());
            if std::fs::remove_file(path).is_ok() {
                self.bytes = self.bytes.saturating_sub(len);
                tracing::info!(path = %path.display(), "event log: deleted a committed segment");
            }
        }
        self.bytes + need <= self.config.max_bytes
    }
}
