//! A GGUF file's precision (`general.file_type`) and embedding width, read from its
//! metadata header with llama.cpp's own GGUF reader (`llama_cpp_2::gguf`), which never
//! loads the weights.

use std::fs::File;
use std::path::Path;

use llama_cpp_2::gguf::GgufContext;
use llama_cpp_sys_2::{GGUF_TYPE_INT32, GGUF_TYPE_UINT32, GGUF_TYPE_UINT64};

use super::QuantError;

// `enum llama_ftype` values (llama.h); `quant::tests` checks them against the bindings.
pub const FTYPE_ALL_F32: u32 = 0;
pub const FTYPE_MOSTLY_F16: u32 = 1;
pub const FTYPE_MOSTLY_Q8_0: u32 = 7;
pub const FTYPE_MOSTLY_Q4_K_M: u32 = 15;
pub const FTYPE_MOSTLY_BF16: u32 = 32;

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
    let gguf = open(path)?;
    match int_value(&gguf, "general.file_type") {
        Ok(None) => Ok(None),
        Ok(Some(t)) => u32::try_from(t)
            .map(Some)
            .map_err(|_| not_gguf(path, "general.file_type out of range")),
        Err(()) => Err(not_gguf(path, "general.file_type is not an integer")),
    }
}

/// The model's embedding width (`<general.architecture>.embedding_length`), if
/// recorded. Quantization block sizes must divide it for a type to apply.
///
/// # Errors
/// The file cannot be read or is not GGUF.
pub fn embedding_length(path: &Path) -> Result<Option<u64>, QuantError> {
    let gguf = open(path)?;
    let arch = gguf.find_key("general.architecture");
    let Some(arch) = (arch >= 0 && gguf.kv_type(arch) == llama_cpp_sys_2::GGUF_TYPE_STRING)
        .then(|| gguf.val_str(arch))
        .flatten()
    else {
        return Ok(None);
    };
    Ok(int_value(&gguf, &format!("{arch}.embedding_length")).unwrap_or(None))
}

/// Opens the metadata header. The file is opened first so that a missing or unreadable
/// file is reported as such: llama.cpp only says that it failed.
fn open(path: &Path) -> Result<GgufContext, QuantError> {
    File::open(path).map_err(|e| QuantError::io(path, e))?;
    GgufContext::from_file(path).ok_or_else(|| QuantError::NotGguf(path.display().to_string()))
}

/// An unsigned or non-negative integer value, `None` if the key is absent, `Err` if it
/// holds another type. The type is checked first: llama.cpp aborts on a read of the wrong
/// type.
fn int_value(gguf: &GgufContext, key: &str) -> Result<Option<u64>, ()> {
    let idx = gguf.find_key(key);
    if idx < 0 {
        return Ok(None);
    }
    match gguf.kv_type(idx) {
        GGUF_TYPE_UINT32 => Ok(Some(u64::from(gguf.val_u32(idx)))),
        GGUF_TYPE_INT32 => u64::try_from(gguf.val_i32(idx)).map(Some).map_err(|_| ()),
        GGUF_TYPE_UINT64 => Ok(Some(gguf.val_u64(idx))),
        _ => Err(()),
    }
}

fn not_gguf(path: &Path, why: &str) -> QuantError {
    QuantError::NotGguf(format!("{} ({why})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_test_support::tiny_llama::{tiny_llama_gguf, GgufWriter, TinyModelOptions};

    fn written(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_the_file_type_after_arrays_and_strings() {
        let dir = tempfile::tempdir().unwrap();
        let tiny = tiny_llama_gguf(&TinyModelOptions::default()).unwrap();
        let path = written(&dir, "tiny.gguf", &tiny.to_bytes().unwrap());
        assert_eq!(file_type(&path).unwrap(), Some(0));
        assert_eq!(embedding_length(&path).unwrap(), Some(64));
        // After string, array-of-string and array-of-float values.
        let mut w = GgufWriter::new();
        w.add_string("general.name", "x")
            .add_string_array("a", vec!["one".into(), "two".into()])
            .add_f32_array("b", vec![1.0, 2.0])
            .add_bool("c", true)
            .add_u32("general.file_type", 7);
        let path = written(&dir, "q8.gguf", &w.to_bytes().unwrap());
        assert_eq!(file_type(&path).unwrap(), Some(7));
        assert_eq!(embedding_length(&path).unwrap(), None, "no architecture");
        let mut none = GgufWriter::new();
        none.add_u32("other", 1);
        let path = written(&dir, "none.gguf", &none.to_bytes().unwrap());
        assert_eq!(file_type(&path).unwrap(), None);
        let mut wrong = GgufWriter::new();
        wrong.add_string("general.file_type", "Q8_0");
        let path = written(&dir, "wrong.gguf", &wrong.to_bytes().unwrap());
        assert!(matches!(file_type(&path), Err(QuantError::NotGguf(_))));
        assert_eq!(file_type_name(7), "Q8_0");
        assert_eq!(file_type_name(99), "ftype 99");
    }

    #[test]
    fn refuses_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [("ggml", &b"GGML0000"[..]), ("short", &b"GG"[..])] {
            let path = written(&dir, name, bytes);
            assert!(
                matches!(file_type(&path), Err(QuantError::NotGguf(_))),
                "{name}"
            );
        }
        let missing = dir.path().join("missing.gguf");
        assert!(matches!(file_type(&missing), Err(QuantError::Io { .. })));
    }
}
