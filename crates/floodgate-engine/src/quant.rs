//! Quantization: converting a GGUF model to another precision, caching the
//! converted variants, and measuring what each variant costs and loses.
//!
//! - [`quantize`] converts one file with llama.cpp's `llama_model_quantize`
//!   (written to a temporary file, then renamed, so a reader never sees half a
//!   model).
//! - [`ensure_variant`] is the serving entry point: it returns the cached
//!   variant of a source model at a [`Precision`], converting it once. Variants
//!   are keyed by a sha256 of the source's bytes ([`variant_path`]).
//! - [`eval`] measures one variant (speed, peak memory, perplexity, KL
//!   divergence and top-1 agreement against a reference), and [`report`] runs
//!   that for every variant, each in its own process, and renders the table.
//!
//! **Requantizing cannot recover precision.** Every variant is computed from the
//! source file. If the source is already quantized (the catalog models are
//! Q4_1 and Q4_K_M), an `f16` or `f32` "variant" only dequantizes those 4-bit
//! weights: it is larger and slower, and no more accurate than the source. For
//! the same reason the quality reference of a report is always the source
//! itself: no variant derived from it can hold more information.
//!
//! **Architecture invariant:** the call into `llama_model_quantize` in
//! [`ffi`] is the only `unsafe` code in the workspace outside llama-cpp-2; every
//! other llama.cpp call here goes through the safe wrapper.

mod ffi;
pub mod gguf;

pub mod eval;
pub mod metrics;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

pub use gguf::{embedding_length, file_type, file_type_name};

/// A precision to convert a model to.
#[allow(non_camel_case_types)] // named as llama.cpp names the types
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    /// Every tensor in 32-bit float.
    F32,
    /// IEEE half precision (norms and small tensors stay f32).
    F16,
    /// bfloat16 (norms and small tensors stay f32).
    Bf16,
    /// 8-bit blocks of 32 weights with one f16 scale (8.5 bits per weight).
    Q8_0,
    /// llama.cpp's `Q4_K_M` mix: mostly 4-bit k-quants, with some tensors
    /// (attention V, feed-forward down) in 6-bit (about 4.8 bits per weight).
    Q4_K,
    /// The source file as it is; no conversion.
    Source,
}

impl Precision {
    /// Every precision a model can be converted to, highest first.
    pub const CONVERTIBLE: [Precision; 5] = [
        Precision::F32,
        Precision::F16,
        Precision::Bf16,
        Precision::Q8_0,
        Precision::Q4_K,
    ];

    /// The name used on the command line, in config and in file names.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
            Precision::Q8_0 => "q8_0",
            Precision::Q4_K => "q4_k",
            Precision::Source => "source",
        }
    }

    /// llama.cpp's `llama_ftype` for this precision (`None` for [`Precision::Source`]).
    /// The values are checked against the generated bindings in the tests.
    #[must_use]
    pub fn ftype(self) -> Option<u32> {
        match self {
            Precision::F32 => Some(gguf::FTYPE_ALL_F32),
            Precision::F16 => Some(gguf::FTYPE_MOSTLY_F16),
            Precision::Bf16 => Some(gguf::FTYPE_MOSTLY_BF16),
            Precision::Q8_0 => Some(gguf::FTYPE_MOSTLY_Q8_0),
            Precision::Q4_K => Some(gguf::FTYPE_MOSTLY_Q4_K_M),
            Precision::Source => None,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Precision::F32),
            "f16" | "fp16" => Ok(Precision::F16),
            "bf16" => Ok(Precision::Bf16),
            "q8_0" | "q8" => Ok(Precision::Q8_0),
            "q4_k" | "q4_k_m" => Ok(Precision::Q4_K),
            "source" => Ok(Precision::Source),
            other => Err(QuantError::UnknownPrecision(other.to_owned())),
        }
    }
}

/// Everything that can go wrong while converting or evaluating a model. These
/// are offline (CLI and startup) errors; none of them reaches a client request,
/// so they carry no HTTP mapping, unlike [`crate::EngineError`].
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("unknown precision `{0}` (expected f32, f16, bf16, q8_0 or q4_k)")]
    UnknownPrecision(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not a GGUF file")]
    NotGguf(String),
    #[error(
        "llama.cpp failed to convert {src} to {precision} (llama_model_quantize returned {code})"
    )]
    Quantize {
        src: String,
        precision: Precision,
        code: u32,
    },
    #[error("the source and destination are the same file: {0}")]
    SameFile(String),
    #[error("failed to load {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("evaluation failed: {0}")]
    Eval(String),
    #[error("the evaluation corpus has {tokens} tokens; {needed} are needed for one chunk of --ctx {ctx}")]
    CorpusTooShort {
        tokens: usize,
        needed: usize,
        ctx: u32,
    },
    #[error("the reference log-probabilities in {path} do not match this run: {reason}")]
    ReferenceMismatch { path: String, reason: String },
    #[error("evaluation worker failed: {0}")]
    Worker(String),
}

impl QuantError {
    /// A filesystem failure at `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        QuantError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Converts `src` to `precision` and writes the result to `dst`.
///
/// llama.cpp does the work (`llama_model_quantize` with its default parameters
/// plus `allow_requantize`), on `threads` threads (0: one per core). The model
/// is written to a temporary file next to `dst` and renamed over it at the end,
/// so `dst` is either the old file or the complete new one.
///
/// A quantized source is accepted: its tensors are dequantized and converted
/// again. That cannot recover precision the source has already lost; an f16
/// copy of a Q4_1 model is a bigger Q4_1 model. Tensors whose rows are not a
/// multiple of the target's block size (32 for Q8_0, 256 for k-quants) are
/// written in a fallback type chosen by llama.cpp. [`Precision::Source`] copies
/// the file.
///
/// # Errors
/// I/O errors, `src == dst`, or llama.cpp refusing the file.
pub fn quantize(
    src: &Path,
    dst: &Path,
    precision: Precision,
    threads: u32,
) -> Result<(), QuantError> {
    if !src.is_file() {
        return Err(QuantError::io(
            src,
            io::Error::new(io::ErrorKind::NotFound, "no such file"),
        ));
    }
    if let (Ok(a), Ok(b)) = (src.canonicalize(), dst.canonicalize()) {
        if a == b {
            return Err(QuantError::SameFile(dst.display().to_string()));
        }
    }
    if let Some(parent) = dst.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| QuantError::io(parent, e))?;
    }
    let tmp = temp_path(dst);
    let result = match precision.ftype() {
        None => fs::copy(src, &tmp)
            .map(drop)
            .map_err(|e| QuantError::io(&tmp, e)),
        Some(ftype) => {
            // llama.cpp needs ggml's quantization tables, which backend init sets up.
            crate::engine::backend().map_err(|e| QuantError::Load {
                path: src.display().to_string(),
                reason: e.to_string(),
            })?;
            let nthread = i32::try_from(threads).unwrap_or(i32::MAX);
            let code = ffi::model_quantize(&c_path(src)?, &c_path(&tmp)?, ftype, nthread);
            if code == 0 {
                Ok(())
            } else {
                Err(QuantError::Quantize {
                    src: src.display().to_string(),
                    precision,
                    code,
                })
            }
        }
    };
    let result = result.and_then(|()| fs::rename(&tmp, dst).map_err(|e| QuantError::io(dst, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A unique sibling of `dst` to write into before the rename.
fn temp_path(dst: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = dst
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    dst.with_file_name(format!(".{name}.tmp-{}-{nanos}", std::process::id()))
}

fn c_path(path: &Path) -> Result<std::ffi::CString, QuantError> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or_else(|| {
            QuantError::io(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "path is not UTF-8"),
            )
        })?
        .as_bytes()
        .to_vec();
    std::ffi::CString::new(bytes)
        .map_err(|e| QuantError::io(path, io::Error::new(io::ErrorKind::InvalidInput, e)))
}

/// The sha256 of a file's bytes, in lowercase hex. Variants are keyed by it, so
/// a source that changes in any byte gets new variants, and a source that is
/// moved or touched keeps its old ones. Hashing reads the whole file (about a
/// second per GB); it happens once per [`ensure_variant`] call.
///
/// # Errors
/// The file cannot be read.
pub fn source_hash(src: &Path) -> Result<String, QuantError> {
    let mut file = File::open(src).map_err(|e| QuantError::io(src, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| QuantError::io(src, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where the `precision` variant of the source whose sha256 is `hash` lives:
/// `<cache_dir>/<first 16 hex digits of the hash>-<precision>.gguf`.
fn variant_path_for_hash(cache_dir: &Path, hash: &str, precision: Precision) -> PathBuf {
    let key = hash.get(..16).unwrap_or(hash);
    cache_dir.join(format!("{key}-{precision}.gguf"))
}

/// Where the `precision` variant of `src` is (or would be) cached:
/// `<cache_dir>/<sha256 of src, 16 hex digits>-<precision>.gguf`. For
/// [`Precision::Source`] it is `src` itself.
///
/// # Errors
/// `src` cannot be read (it is hashed).
pub fn variant_path(
    cache_dir: &Path,
    src: &Path,
    precision: Precision,
) -> Result<PathBuf, QuantError> {
    if precision == Precision::Source {
        return Ok(src.to_path_buf());
    }
    Ok(variant_path_for_hash(
        cache_dir,
        &source_hash(src)?,
        precision,
    ))
}

/// The `precision` variant of `src`, converted into `cache_dir` on first use
/// and reused afterwards (see [`variant_path`]). [`Precision::Source`] returns
/// `src` unchanged. Blocking: conversion takes seconds to minutes.
///
/// Two processes converting the same variant at once both succeed; each writes
/// its own temporary file and the last rename wins with identical content.
///
/// # Errors
/// See [`quantize`] and [`variant_path`].
pub fn ensure_variant(
    cache_dir: &Path,
    src: &Path,
    precision: Precision,
) -> Result<PathBuf, QuantError> {
    let dst = variant_path(cache_dir, src, precision)?;
    if precision == Precision::Source || dst.is_file() {
        return Ok(dst);
    }
    tracing::info!(
        src = %src.display(),
        dst = %dst.display(),
        %precision,
        "converting model variant"
    );
    quantize(src, &dst, precision, 0)?;
    Ok(dst)
}

/// The peak resident set size of this process (`VmHWM` in `/proc/self/status`),
/// in bytes; `None` where procfs is not available.
#[must_use]
pub fn peak_rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmHWM:")?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_round_trips() {
        for p in Precision::CONVERTIBLE
            .into_iter()
            .chain([Precision::Source])
        {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("Q4_K_M".parse::<Precision>().unwrap(), Precision::Q4_K);
        assert!("q3".parse::<Precision>().is_err());
    }

    #[test]
    fn ftypes_match_the_bindings() {
        use llama_cpp_sys_2 as sys;
        assert_eq!(Precision::F32.ftype(), Some(sys::LLAMA_FTYPE_ALL_F32));
        assert_eq!(Precision::F16.ftype(), Some(sys::LLAMA_FTYPE_MOSTLY_F16));
        assert_eq!(Precision::Bf16.ftype(), Some(sys::LLAMA_FTYPE_MOSTLY_BF16));
        assert_eq!(Precision::Q8_0.ftype(), Some(sys::LLAMA_FTYPE_MOSTLY_Q8_0));
        assert_eq!(
            Precision::Q4_K.ftype(),
            Some(sys::LLAMA_FTYPE_MOSTLY_Q4_K_M)
        );
        assert_eq!(Precision::Source.ftype(), None);
    }

    #[test]
    fn variant_paths_are_keyed_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.gguf");
        let b = dir.path().join("b.gguf");
        fs::write(&a, b"same bytes").unwrap();
        fs::write(&b, b"same bytes").unwrap();
        let cache = dir.path().join("cache");
        let pa = variant_path(&cache, &a, Precision::Q8_0).unwrap();
        assert_eq!(pa, variant_path(&cache, &b, Precision::Q8_0).unwrap());
        assert_ne!(pa, variant_path(&cache, &a, Precision::F16).unwrap());
        assert!(pa.starts_with(&cache));
        assert!(pa.to_string_lossy().ends_with("-q8_0.gguf"));
        fs::write(&b, b"other bytes").unwrap();
        assert_ne!(pa, variant_path(&cache, &b, Precision::Q8_0).unwrap());
        assert_eq!(variant_path(&cache, &a, Precision::Source).unwrap(), a);
    }

    #[test]
    fn sha256_is_the_standard_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("abc");
        fs::write(&f, b"abc").unwrap();
        assert_eq!(
            source_hash(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 1 << 20);
        }
    }
}
