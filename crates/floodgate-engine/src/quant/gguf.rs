//! Just enough of a GGUF reader to learn a file's precision
//! (`general.file_type`) without loading the model.
//!
//! The layout is the one `crate::tiny` writes: magic, version, tensor count,
//! KV count, then the KV pairs. Only the KV section is walked.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::QuantError;

// `enum llama_ftype` values (llama.h); `quant::tests` checks them against the bindings.
pub(super) const FTYPE_ALL_F32: u32 = 0;
pub(super) const FTYPE_MOSTLY_F16: u32 = 1;
pub(super) const FTYPE_MOSTLY_Q8_0: u32 = 7;
pub(super) const FTYPE_MOSTLY_Q4_K_M: u32 = 15;
pub(super) const FTYPE_MOSTLY_BF16: u32 = 32;

/// A readable name for a `llama_ftype` value, as llama.cpp prints it.
#[must_use]
pub fn file_type_name(ftype: u32) -> String {
    let name = match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        other => return format!("ftype {other}"),
    };
    name.to_owned()
}

/// The `general.file_type` of a GGUF file (a `llama_ftype` value), or `None`
/// if the file does not record one.
///
/// # Errors
/// The file cannot be read or is not GGUF.
pub fn file_type(path: &Path) -> Result<Option<u32>, QuantError> {
    let file = File::open(path).map_err(|e| QuantError::io(path, e))?;
    let mut r = BufReader::new(file);
    read_file_type(&mut r).map_err(|e| map_err(path, e))
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn u32_of(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn u64_of(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn skip(r: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied == n {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

fn string_of(r: &mut impl Read) -> io::Result<String> {
    let len = u64_of(r)?;
    if len > 1 << 20 {
        return Err(bad("key too long"));
    }
    let mut b = vec![0u8; usize::try_from(len).map_err(|_| bad("key too long"))?];
    r.read_exact(&mut b)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Size of a scalar GGUF value type, `None` for strings and arrays.
fn scalar_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn skip_value(r: &mut impl Read, ty: u32) -> io::Result<()> {
    match ty {
        8 => {
            let len = u64_of(r)?;
            skip(r, len)
        }
        9 => {
            let elem = u32_of(r)?;
            let count = u64_of(r)?;
            if let Some(size) = scalar_size(elem) {
                skip(
                    r,
                    count
                        .checked_mul(size)
                        .ok_or_else(|| bad("array too long"))?,
                )
            } else if elem == 8 {
                for _ in 0..count {
                    let len = u64_of(r)?;
                    skip(r, len)?;
                }
                Ok(())
            } else {
                Err(bad("nested or unknown array type"))
            }
        }
        other => match scalar_size(other) {
            Some(size) => skip(r, size),
            None => Err(bad("unknown value type")),
        },
    }
}

/// A scalar metadata value: integers widened to `u64`, strings kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaValue {
    /// Any unsigned or non-negative integer type.
    Int(u64),
    /// A string.
    Str(String),
}

/// Reads the KV section and returns the integer and string values; floats,
/// booleans, negative integers and arrays are skipped.
fn read_scalars(r: &mut impl Read) -> io::Result<Vec<(String, MetaValue)>> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)?;
    if &magic != b"GGUF" {
        return Err(bad("bad magic"));
    }
    let version = u32_of(r)?;
    if !(2..=3).contains(&version) {
        return Err(bad("unsupported GGUF version"));
    }
    let _n_tensors = u64_of(r)?;
    let n_kv = u64_of(r)?;
    let mut out = Vec::new();
    for _ in 0..n_kv {
        let key = string_of(r)?;
        let ty = u32_of(r)?;
        let value = match ty {
            0 => {
                let mut b = [0u8; 1];
                r.read_exact(&mut b)?;
                Some(MetaValue::Int(u64::from(b[0])))
            }
            2 => {
                let mut b = [0u8; 2];
                r.read_exact(&mut b)?;
                Some(MetaValue::Int(u64::from(u16::from_le_bytes(b))))
            }
            4 => Some(MetaValue::Int(u64::from(u32_of(r)?))),
            5 => u64::try_from(u32_of(r)?.cast_signed())
                .ok()
                .map(MetaValue::Int),
            10 => Some(MetaValue::Int(u64_of(r)?)),
            8 => Some(MetaValue::Str(string_of(r)?)),
            _ => {
                skip_value(r, ty)?;
                None
            }
        };
        if let Some(v) = value {
            out.push((key, v));
        }
    }
    Ok(out)
}

fn read_file_type(r: &mut impl Read) -> io::Result<Option<u32>> {
    let kvs = read_scalars(r)?;
    match kvs.iter().find(|(k, _)| k == "general.file_type") {
        None => Ok(None),
        Some((_, MetaValue::Int(t))) => u32::try_from(*t)
            .map(Some)
            .map_err(|_| bad("general.file_type out of range")),
        Some(_) => Err(bad("general.file_type is not an integer")),
    }
}

/// The model's embedding width (`<general.architecture>.embedding_length`), if
/// recorded. Quantization block sizes must divide it for a type to apply.
///
/// # Errors
/// The file cannot be read or is not GGUF.
pub fn embedding_length(path: &Path) -> Result<Option<u64>, QuantError> {
    let file = File::open(path).map_err(|e| QuantError::io(path, e))?;
    let kvs = read_scalars(&mut BufReader::new(file)).map_err(|e| map_err(path, e))?;
    let arch = kvs.iter().find_map(|(k, v)| match (k.as_str(), v) {
        ("general.architecture", MetaValue::Str(a)) => Some(a.clone()),
        _ => None,
    });
    let Some(arch) = arch else { return Ok(None) };
    let key = format!("{arch}.embedding_length");
    Ok(kvs.iter().find_map(|(k, v)| match v {
        MetaValue::Int(n) if *k == key => Some(*n),
        _ => None,
    }))
}

fn map_err(path: &Path, e: io::Error) -> QuantError {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            QuantError::NotGguf(path.display().to_string())
        }
        _ => QuantError::io(path, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiny::{tiny_llama_gguf, GgufWriter, TinyModelOptions};

    #[test]
    fn reads_the_file_type_after_arrays_and_strings() {
        let tiny = tiny_llama_gguf(&TinyModelOptions::default()).unwrap();
        let bytes = tiny.to_bytes().unwrap();
        assert_eq!(read_file_type(&mut bytes.as_slice()).unwrap(), Some(0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(embedding_length(&path).unwrap(), Some(64));
        // After string, array-of-string and array-of-float values, so the reader
        // must skip each kind correctly.
        let mut w = GgufWriter::new();
        w.add_string("general.name", "x")
            .add_string_array("a", vec!["one".into(), "two".into()])
            .add_f32_array("b", vec![1.0, 2.0])
            .add_bool("c", true)
            .add_u32("general.file_type", 7);
        let bytes = w.to_bytes().unwrap();
        assert_eq!(read_file_type(&mut bytes.as_slice()).unwrap(), Some(7));
        let mut none = GgufWriter::new();
        none.add_u32("other", 1);
        assert_eq!(
            read_file_type(&mut none.to_bytes().unwrap().as_slice()).unwrap(),
            None
        );
        assert_eq!(file_type_name(7), "Q8_0");
        assert_eq!(file_type_name(99), "ftype 99");
    }

    #[test]
    fn refuses_other_files() {
        assert!(read_file_type(&mut b"GGML0000".as_slice()).is_err());
        assert!(read_file_type(&mut b"GG".as_slice()).is_err());
    }
}
