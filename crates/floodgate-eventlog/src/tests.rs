#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use super::*;

fn config(dir: &std::path::Path) -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 10,
        max_bytes: 1 << 20,
        ..LogConfig::new(dir)
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("event-{i}").into_bytes()
}

async fn append_n(log: &EventLog, from: u64, n: u64) {
    let mut acks = Vec::new();
    for i in from..from + n {
        acks.push(log.append(payload(i)).expect("queued"));
    }
    for a in acks {
        assert!(a.written().await.is_some());
    }
}

fn read_all(cursor: &mut Cursor) -> Vec<Record> {
    let mut out = Vec::new();
    loop {
        let batch = cursor.read(100).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

#[tokio::test]
async fn records_come_back_in_order_across_segments_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EventLog::open(config(dir.path())).unwrap();
        for from in (1..=500).step_by(50) {
            append_n(&log, from, 50).await;
        }
    }
    // Reopened: numbering goes on.
    let log = EventLog::open(config(dir.path())).unwrap();
    for from in (501..=1000).step_by(50) {
        append_n(&log, from, 50).await;
    }
    assert!(segment::list(dir.path()).unwrap().len() > 3, "rotated");
    let mut cursor = log.cursor("store").unwrap();
    let records = read_all(&mut cursor);
    assert_eq!(records.len(), 1000);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.payload, payload(i as u64 + 1));
    }
}

#[tokio::test]
async fn a_sink_resumes_after_its_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EventLog::open(config(dir.path())).unwrap();
        append_n(&log, 1, 100).await;
        let mut cursor = log.cursor("nats").unwrap();
        let first = cursor.read(40).unwrap();
        cursor.commit(first.last().unwrap().seq).unwrap();
        // Read but not committed: must come again after a restart.
        let _ = cursor.read(10).unwrap();
    }
    let log = EventLog::open(config(dir.path())).unwrap();
    let mut cursor = log.cursor("nats").unwrap();
    assert_eq!(cursor.committed(), 40);
    let rest = read_all(&mut cursor);
    assert_eq!(rest.first().unwrap().seq, 41);
    assert_eq!(rest.len(), 60);
    // Another sink has its own offset.
    let mut other = log.cursor("store").unwrap();
    assert_eq!(read_all(&mut other).len(), 100);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_numbering_continues() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
        append_n(&log, 1, 10).await;
    }
    let (_, path) = segment::list(dir.path()).unwrap().pop().unwrap();
    // A crash in the middle of a write: half a record at the end.
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len();
    let mut partial = Vec::new();
    segment::encode(&mut partial, 11, b"never finished");
    bytes.extend_from_slice(&partial[..partial.len() / 2]);
    std::fs::write(&path, &bytes).unwrap();
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, whole);
    append_n(&log, 11, 1).await;
    let mut cursor = log.cursor("s").unwrap();
    let records = read_all(&mut cursor);
    assert_eq!(records.len(), 11);
    assert_eq!(records[10].payload, payload(11));
}

#[tokio::test]
async fn a_flipped_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
        append_n(&log, 1, 3).await;
    }
    let (_, path) = segment::list(dir.path()).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let (last_good, _) = segment::scan(&path).unwrap();
    assert_eq!(last_good, Some(2));
}

#[tokio::test]
async fn committed_segments_are_deleted_at_the_cap_and_uncommitted_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2 << 10,
        max_bytes: 16 << 10,
        ..LogConfig::new(dir.path())
    };
    let log = EventLog::open(config).unwrap();
    let mut cursor = log.cursor("slow").unwrap();
    // The sink commits nothing: once the cap is reached new records are dropped.
    let mut dropped = 0;
    for i in 0..2_000u64 {
        match log.append(payload(i)) {
            Some(a) => {
                if a.written().await.is_none() {
                    dropped += 1;
                }
            }
            None => dropped += 1,
        }
    }
    assert!(dropped > 0, "the cap holds");
    let kept = read_all(&mut cursor);
    assert_eq!(kept.len() + dropped, 2_000);
    assert_eq!(kept[0].seq, 1, "nothing uncommitted was deleted");
    // Once committed, old segments go and records are taken again.
    cursor.commit(kept.last().unwrap().seq).unwrap();
    append_n(&log, 10_000, 200).await;
    assert!(segment::list(dir.path()).unwrap()[0].0 > 1);
}

#[tokio::test]
async fn a_cursor_waits_for_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(EventLog::open(LogConfig::new(dir.path())).unwrap());
    let mut cursor = log.cursor("w").unwrap();
    let writer = std::sync::Arc::clone(&log);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = writer.append(b"late".to_vec());
    });
    tokio::time::timeout(Duration::from_secs(5), cursor.wait())
        .await
        .unwrap();
    assert_eq!(cursor.read(10).unwrap()[0].payload, b"late");
}

#[test]
fn close_writes_what_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(LogConfig {
        fsync: Fsync::Always,
        ..LogConfig::new(dir.path())
    })
    .unwrap();
    for i in 0..1000 {
        assert!(log.append(payload(i)).is_some());
    }
    log.close();
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(*log.written().borrow(), 1000);
}

#[tokio::test]
async fn one_writer_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    append_n(&log, 0, 3).await;
    // A second log over the same directory (another process, or this one) is refused.
    assert!(matches!(
        EventLog::open(config(dir.path())),
        Err(LogError::InUse(_))
    ));
    drop(log);
    // Once the first is gone, the directory is free again and numbering goes on.
    let log = EventLog::open(config(dir.path())).unwrap();
    let ack = log.append(payload(3)).unwrap();
    assert_eq!(ack.written().await, Some(4));
}

/// Producers on many threads at once, some writing themselves and some through the
/// queue (when they find the writer busy or the segment full): every record exactly
/// once, numbered without gaps, under every fsync policy.
#[test]
fn concurrent_producers_inline_and_queued() {
    for fsync in [
        Fsync::Never,
        Fsync::Interval(Duration::from_millis(5)),
        Fsync::Always,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(
            EventLog::open(LogConfig {
                fsync,
                // Small batches, so the queue's records rotate segments too.
                batch_max: 16,
                ..config(dir.path())
            })
            .unwrap(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let log = std::sync::Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut acks = Vec::new();
                    let mut inline = 0;
                    for i in 0..500 {
                        let ack = log.append(payload(t * 1000 + i)).expect("taken");
                        inline += usize::from(ack.is_written());
                        acks.push(ack);
                    }
                    (acks, inline)
                })
            })
            .collect();
        let mut inline = 0;
        for t in threads {
            let (acks, n) = t.join().unwrap();
            inline += n;
            for a in acks {
                assert!(rt.block_on(a.written()).is_some());
            }
        }
        if fsync == Fsync::Always {
            assert_eq!(inline, 0, "every record goes through the group commit");
        } else {
            assert!(inline > 0, "producers wrote themselves ({fsync:?})");
        }
        let mut cursor = log.cursor("check").unwrap();
        let records = read_all(&mut cursor);
        assert_eq!(records.len(), 2000, "{fsync:?}");
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1, "{fsync:?}");
            payloads.push(r.payload.clone());
        }
        payloads.sort();
        payloads.dedup();
        assert_eq!(payloads.len(), 2000, "no record twice ({fsync:?})");
        let segments = segment::list(dir.path()).unwrap().len();
        assert!(segments > 3, "rotated ({fsync:?}): {segments} segments");
        log.close();
    }
}
