//! A sink's view of the log: records after its committed offset, in order.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::segment::{self, Next};
use crate::writer::Shared;
use crate::LogError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub payload: Vec<u8>,
}

pub struct Cursor {
    shared: Arc<Shared>,
    name: String,
    offset_path: PathBuf,
    committed: Arc<AtomicU64>,
    /// The next sequence number to hand out.
    next: u64,
    /// The open segment: its first sequence number and a reader positioned at `next`.
    file: Option<(u64, BufReader<File>)>,
    written: watch::Receiver<u64>,
}

impl Cursor {
    pub(crate) fn open(
        shared: Arc<Shared>,
        name: &str,
        written: watch::Receiver<u64>,
    ) -> Result<Self, LogError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(LogError::BadSinkName(name.to_string()));
        }
        let dir = shared.dir.join("offsets");
        std::fs::create_dir_all(&dir).map_err(LogError::io(&dir))?;
        let offset_path = dir.join(name);
        let committed = match std::fs::read_to_string(&offset_path) {
            Ok(s) => s.trim().parse::<u64>().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(LogError::io(&offset_path)(e)),
        };
        let committed_cell = Arc::new(AtomicU64::new(committed));
        shared
            .sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), Arc::clone(&committed_cell));
        Ok(Self {
            shared,
            name: name.to_string(),
            offset_path,
            committed: committed_cell,
            next: committed + 1,
            file: None,
            written,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last sequence number this sink has committed.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Records written but not yet committed by this sink.
    pub fn lag(&self) -> u64 {
        self.written.borrow().saturating_sub(self.committed())
    }

    /// Records written that this cursor has not read yet.
    pub fn pending(&self) -> u64 {
        (*self.written.borrow() + 1).saturating_sub(self.next)
    }

    /// Waits until there is a record after the ones already read.
    pub async fn wait(&mut self) {
        let next = self.next;
        let _ = self.written.wait_for(|w| *w >= next).await;
    }

    /// Up to `max` records after the ones already read (blocking file reads).
    pub fn read(&mut self, max: usize) -> Result<Vec<Record>, LogError> {
        let written = *self.written.borrow();
        let mut out = Vec::new();
        while self.next <= written && out.len() < max {
            match self.read_one()? {
                Some(r) => out.push(r),
                None => break,
            }
        }
        Ok(out)
    }

    fn read_one(&mut self) -> Result<Option<Record>, LogError> {
        loop {
            if self.file.is_none() && !self.seek_segment()? {
                return Ok(None);
            }
            let Some((first, reader)) = self.file.as_mut() else {
                return Ok(None);
            };
            let first = *first;
            match segment::read(reader).map_err(LogError::io(&self.shared.dir))? {
                Next::Record { seq, payload } if seq >= self.next => {
                    self.next = seq + 1;
                    return Ok(Some(Record { seq, payload }));
                }
                Next::Record { .. } => {}
                other => {
                    if let Next::Bad(why) = &other {
                        tracing::error!(sink = %self.name, %why, "event log: damaged segment; going on with the next");
                    }
                    // Record `next` is in a later segment (the writer rotated): go there.
                    // Else keep this reader where it is; the writer appends behind it.
                    let later = segment::list(&self.shared.dir)?
                        .into_iter()
                        .find(|(f, _)| *f > first);
                    let Some((f, path)) = later else {
                        return Ok(None);
                    };
                    self.next = self.next.max(f);
                    self.open_at(f, path)?;
                }
            }
        }
    }

    /// Opens the segment holding `next` (the last one starting at or before it).
    fn seek_segment(&mut self) -> Result<bool, LogError> {
        let segments = segment::list(&self.shared.dir)?;
        let Some((first, path)) = segments.iter().rev().find(|(first, _)| *first <= self.next)
        else {
            // Everything before the oldest segment was deleted: start there.
            let Some((first, path)) = segments.first() else {
                return Ok(false);
            };
            tracing::warn!(sink = %self.name, from = self.next, to = first, "event log: records this sink never committed were deleted");
            self.next = *first;
            return self.open_at(*first, path.clone());
        };
        self.open_at(*first, path.clone())
    }

    fn open_at(&mut self, first: u64, path: PathBuf) -> Result<bool, LogError> {
        let file = File::open(&path).map_err(LogError::io(&path))?;
        self.file = Some((first, BufReader::with_capacity(256 << 10, file)));
        Ok(true)
    }

    /// Marks everything up to `seq` as applied by this sink (a small file, replaced
    /// atomically, so a crash leaves the old or the new offset).
    pub fn commit(&mut self, seq: u64) -> Result<(), LogError> {
        if seq <= self.committed() {
            return Ok(());
        }
        let tmp = self.offset_path.with_extension("tmp");
        std::fs::write(&tmp, seq.to_string()).map_err(LogError::io(&tmp))?;
        std::fs::rename(&tmp, &self.offset_path).map_err(LogError::io(&self.offset_path))?;
        self.committed.store(seq, Ordering::Release);
        Ok(())
    }
}

/// Reads every whole record in `dir` from `from_seq` on, without a writer (for export
/// tools next to a running server): stops at the end or at a record still being written.
pub fn scan_dir(
    dir: &std::path::Path,
    from_seq: u64,
    mut each: impl FnMut(Record),
) -> Result<u64, LogError> {
    let segments = segment::list(dir)?;
    let mut n = 0;
    for (i, (_, path)) in segments.iter().enumerate() {
        if segments
            .get(i + 1)
            .is_some_and(|(next, _)| *next <= from_seq)
        {
            continue;
        }
        let file = File::open(path).map_err(LogError::io(path))?;
        let mut r = BufReader::new(file);
        // To the end, or to the first bad record (a torn tail the writer cuts on open).
        while let Next::Record { seq, payload } =
            segment::read(&mut r).map_err(LogError::io(path))?
        {
            if seq >= from_seq {
                n += 1;
                each(Record { seq, payload });
            }
        }
    }
    Ok(n)
}
