//! The on-disk format: segment files of checksummed, numbered records.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::LogError;

pub const HEADER: usize = 16;
pub const MAX_PAYLOAD: usize = 16 << 20;
const SUFFIX: &str = ".seg";

pub fn name(first_seq: u64) -> String {
    format!("{first_seq:020}{SUFFIX}")
}

/// The segments in `dir`, oldest first, as (first sequence number, path).
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io(dir))? {
        let entry = entry.map_err(LogError::io(dir))?;
        let file_name = entry.file_name();
        let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push((first, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(first, _)| *first);
    Ok(out)
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends one record to `buf`.
pub fn encode(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    // Callers check MAX_PAYLOAD, so the length fits in a u32.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// What reading the next record found.
pub enum Next {
    Record {
        seq: u64,
        payload: Vec<u8>,
    },
    /// Clean end of the segment.
    End,
    /// A partial or corrupt record: a torn tail after a crash, or damage.
    Bad(String),
}

/// Reads the next record.
pub fn read(r: &mut impl Read) -> io::Result<Next> {
    let mut header = [0u8; HEADER];
    match read_full(r, &mut header)? {
        0 => return Ok(Next::End),
        n if n < HEADER => return Ok(Next::Bad(format!("torn header ({n} bytes)"))),
        _ => {}
    }
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let len = word(0) as usize;
    let crc = word(4);
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&header[8..16]);
    let seq = u64::from_le_bytes(seq_bytes);
    if len > MAX_PAYLOAD {
        return Ok(Next::Bad(format!("length {len} over the limit")));
    }
    let mut payload = vec![0u8; len];
    let n = read_full(r, &mut payload)?;
    if n < len {
        return Ok(Next::Bad(format!("torn record {seq} ({n} of {len} bytes)")));
    }
    if checksum(seq, &payload) != crc {
        return Ok(Next::Bad(format!("checksum mismatch in record {seq}")));
    }
    Ok(Next::Record { seq, payload })
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The last good record of a segment and where the good part ends. A bad record
/// (torn by a crash) and everything after it are cut by the caller.
pub fn scan(path: &Path) -> Result<(Option<u64>, u64), LogError> {
    let file = File::open(path).map_err(LogError::io(path))?;
    let mut r = io::BufReader::new(file);
    let (mut last, mut good_end) = (None, 0u64);
    loop {
        match read(&mut r).map_err(LogError::io(path))? {
            Next::Record { seq, payload } => {
                last = Some(seq);
                good_end += (HEADER + payload.len()) as u64;
            }
            Next::End => break,
            Next::Bad(why) => {
                tracing::warn!(path = %path.display(), at = good_end, %why, "event log: cutting a torn tail");
                break;
            }
        }
    }
    Ok((last, good_end))
}
