//! A small GGUF v3 writer and a builder for tiny, randomly initialised
//! llama-architecture models.
//!
//! Tests across the project use [`write_tiny_llama`] to produce a real GGUF
//! file (a few hundred kilobytes) that llama.cpp loads through its ordinary
//! loader, tokenizer, chat-template and sampler paths, without downloading
//! anything. The weights are random, so the model's output is gibberish, but
//! every code path is the real one.
//!
//! The writer ([`GgufWriter`]) is generic: it supports every GGUF metadata
//! value type (arrays of scalars and strings included), tensors of the common
//! unquantized types (and raw bytes of `Q8_0`), and honours
//! `general.alignment`.
//!
//! Layout written (see `ggml/include/gguf.h` in llama.cpp):
//!
//! ```text
//! "GGUF" | u32 version=3 | u64 n_tensors | u64 n_kv
//! n_kv    x (string key | u32 type | value)
//! n_tensors x (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset)
//! zero padding up to a multiple of the alignment
//! tensor data, each tensor starting at a multiple of the alignment
//! ```
//!
//! Strings are `u64 length + UTF-8 bytes` (no terminator); arrays are
//! `u32 element type | u64 count | elements`; everything is little-endian.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The GGUF magic bytes.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The GGUF format version this writer produces.
pub const GGUF_VERSION: u32 = 3;
/// Alignment used when `general.alignment` is not set.
pub const GGUF_DEFAULT_ALIGNMENT: u32 = 32;
/// Metadata key that overrides the data alignment (must be a `u32` power of two).
pub const GGUF_KEY_ALIGNMENT: &str = "general.alignment";
/// ggml's limit on tensor names is 64 bytes including the NUL terminator.
pub const GGML_MAX_NAME: usize = 64;
/// ggml tensors have at most 4 dimensions.
pub const GGML_MAX_DIMS: usize = 4;

/// GGUF metadata value type tags (`enum gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GgufType {
    /// `uint8_t`
    U8 = 0,
    /// `int8_t`
    I8 = 1,
    /// `uint16_t`
    U16 = 2,
    /// `int16_t`
    I16 = 3,
    /// `uint32_t`
    U32 = 4,
    /// `int32_t`
    I32 = 5,
    /// `float`
    F32 = 6,
    /// `bool` stored as one byte (0 or 1)
    Bool = 7,
    /// `u64` length followed by UTF-8 bytes
    String = 8,
    /// `u32` element type, `u64` count, elements
    Array = 9,
    /// `uint64_t`
    U64 = 10,
    /// `int64_t`
    I64 = 11,
    /// `double`
    F64 = 12,
}

impl GgufType {
    /// The on-disk tag.
    #[must_use]
    pub fn tag(self) -> u32 {
        self as u32
    }
}

/// A homogeneous GGUF array. Nested arrays are not representable because
/// llama.cpp's reader rejects them.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufArray {
    /// Array of `u8`.
    U8(Vec<u8>),
    /// Array of `i8`.
    I8(Vec<i8>),
    /// Array of `u16`.
    U16(Vec<u16>),
    /// Array of `i16`.
    I16(Vec<i16>),
    /// Array of `u32`.
    U32(Vec<u32>),
    /// Array of `i32`.
    I32(Vec<i32>),
    /// Array of `f32`.
    F32(Vec<f32>),
    /// Array of `bool`.
    Bool(Vec<bool>),
    /// Array of strings.
    String(Vec<String>),
    /// Array of `u64`.
    U64(Vec<u64>),
    /// Array of `i64`.
    I64(Vec<i64>),
    /// Array of `f64`.
    F64(Vec<f64>),
}

impl GgufArray {
    /// Type tag of the elements.
    #[must_use]
    pub fn elem_type(&self) -> GgufType {
        match self {
            Self::U8(_) => GgufType::U8,
            Self::I8(_) => GgufType::I8,
            Self::U16(_) => GgufType::U16,
            Self::I16(_) => GgufType::I16,
            Self::U32(_) => GgufType::U32,
            Self::I32(_) => GgufType::I32,
            Self::F32(_) => GgufType::F32,
            Self::Bool(_) => GgufType::Bool,
            Self::String(_) => GgufType::String,
            Self::U64(_) => GgufType::U64,
            Self::I64(_) => GgufType::I64,
            Self::F64(_) => GgufType::F64,
        }
    }

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write_elems(&self, out: &mut Vec<u8>) {
        match self {
            Self::U8(v) => out.extend_from_slice(v),
            Self::I8(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::U16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::I16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::U32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::Bool(v) => v.iter().for_each(|x| out.push(u8::from(*x))),
            Self::String(v) => v.iter().for_each(|s| write_str(out, s)),
            Self::U64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::I64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::F64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
}

/// A GGUF metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// `u8`
    U8(u8),
    /// `i8`
    I8(i8),
    /// `u16`
    U16(u16),
    /// `i16`
    I16(i16),
    /// `u32`
    U32(u32),
    /// `i32`
    I32(i32),
    /// `f32`
    F32(f32),
    /// `bool`
    Bool(bool),
    /// UTF-8 string
    String(String),
    /// Homogeneous array
    Array(GgufArray),
    /// `u64`
    U64(u64),
    /// `i64`
    I64(i64),
    /// `f64`
    F64(f64),
}

impl GgufValue {
    /// Type tag of the value.
    #[must_use]
    pub fn value_type(&self) -> GgufType {
        match self {
            Self::U8(_) => GgufType::U8,
            Self::I8(_) => GgufType::I8,
            Self::U16(_) => GgufType::U16,
            Self::I16(_) => GgufType::I16,
            Self::U32(_) => GgufType::U32,
            Self::I32(_) => GgufType::I32,
            Self::F32(_) => GgufType::F32,
            Self::Bool(_) => GgufType::Bool,
            Self::String(_) => GgufType::String,
            Self::Array(_) => GgufType::Array,
            Self::U64(_) => GgufType::U64,
            Self::I64(_) => GgufType::I64,
            Self::F64(_) => GgufType::F64,
        }
    }

    /// Appends the type tag and the value.
    fn write_typed(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.value_type().tag().to_le_bytes());
        match self {
            Self::U8(x) => out.push(*x),
            Self::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
            Self::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Self::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Self::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Self::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Self::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Self::Bool(x) => out.push(u8::from(*x)),
            Self::String(s) => write_str(out, s),
            Self::Array(a) => {
                out.extend_from_slice(&a.elem_type().tag().to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                a.write_elems(out);
            }
            Self::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Self::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Self::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
}

macro_rules! impl_from_value {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl From<$t> for GgufValue {
            fn from(x: $t) -> Self {
                Self::$v(x)
            }
        })*
    };
}
impl_from_value!(
    u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32,
    bool => Bool, String => String, GgufArray => Array, u64 => U64, i64 => I64, f64 => F64,
);

impl From<&str> for GgufValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

/// ggml tensor element types the writer knows the size of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GgmlType {
    /// 32-bit float
    F32 = 0,
    /// IEEE half
    F16 = 1,
    /// 8-bit blocks of 32 with an f16 scale (34 bytes per block)
    Q8_0 = 8,
    /// `int8_t`
    I8 = 24,
    /// `int16_t`
    I16 = 25,
    /// `int32_t`
    I32 = 26,
    /// `int64_t`
    I64 = 27,
    /// 64-bit float
    F64 = 28,
    /// bfloat16
    BF16 = 30,
}

impl GgmlType {
    /// The on-disk tag (`enum ggml_type`).
    #[must_use]
    pub fn tag(self) -> u32 {
        self as u32
    }

    /// Elements per block (1 for unquantized types).
    #[must_use]
    pub fn block_size(self) -> u64 {
        match self {
            Self::Q8_0 => 32,
            _ => 1,
        }
    }

    /// Bytes per block.
    #[must_use]
    pub fn type_size(self) -> u64 {
        match self {
            Self::I8 => 1,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
            Self::Q8_0 => 34,
        }
    }
}

/// One tensor queued for writing.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Shape, innermost (contiguous) dimension first: `ne[0]`, `ne[1]`, ...
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Raw little-endian data, exactly `nbytes(dims, ggml_type)` long.
    pub data: Vec<u8>,
}

/// Builds a GGUF v3 file in memory and writes it out.
///
/// KV pairs are written in insertion order (re-adding a key replaces its
/// value in place); tensors are written in insertion order, each at an
/// offset aligned to [`GgufWriter::alignment`].
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    kvs: Vec<(String, GgufValue)>,
    tensors: Vec<GgufTensor>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Rounds `n` up to a multiple of `align` (a power of two).
fn pad_to(n: u64, align: u64) -> u64 {
    n.div_ceil(align) * align
}

impl GgufWriter {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) a metadata KV pair.
    pub fn add_kv(&mut self, key: impl Into<String>, value: impl Into<GgufValue>) -> &mut Self {
        let key = key.into();
        let value = value.into();
        if let Some(slot) = self.kvs.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.kvs.push((key, value));
        }
        self
    }

    /// Sets a `u32` value.
    pub fn add_u32(&mut self, key: impl Into<String>, value: u32) -> &mut Self {
        self.add_kv(key, GgufValue::U32(value))
    }

    /// Sets an `i32` value.
    pub fn add_i32(&mut self, key: impl Into<String>, value: i32) -> &mut Self {
        self.add_kv(key, GgufValue::I32(value))
    }

    /// Sets an `f32` value.
    pub fn add_f32(&mut self, key: impl Into<String>, value: f32) -> &mut Self {
        self.add_kv(key, GgufValue::F32(value))
    }

    /// Sets a `bool` value.
    pub fn add_bool(&mut self, key: impl Into<String>, value: bool) -> &mut Self {
        self.add_kv(key, GgufValue::Bool(value))
    }

    /// Sets a string value.
    pub fn add_string(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.add_kv(key, GgufValue::String(value.into()))
    }

    /// Sets an array-of-strings value.
    pub fn add_string_array(&mut self, key: impl Into<String>, values: Vec<String>) -> &mut Self {
        self.add_kv(key, GgufArray::String(values))
    }

    /// Sets an array-of-`f32` value.
    pub fn add_f32_array(&mut self, key: impl Into<String>, values: Vec<f32>) -> &mut Self {
        self.add_kv(key, GgufArray::F32(values))
    }

    /// Sets an array-of-`i32` value.
    pub fn add_i32_array(&mut self, key: impl Into<String>, values: Vec<i32>) -> &mut Self {
        self.add_kv(key, GgufArray::I32(values))
    }

    /// Sets `general.alignment`. Must be a non-zero power of two.
    ///
    /// # Errors
    /// `InvalidInput` if `alignment` is not a power of two.
    pub fn set_alignment(&mut self, alignment: u32) -> io::Result<&mut Self> {
        if !alignment.is_power_of_two() {
            return Err(invalid(format!(
                "alignment {alignment} is not a power of two"
            )));
        }
        Ok(self.add_u32(GGUF_KEY_ALIGNMENT, alignment))
    }

    /// The effective alignment: `general.alignment` if set, else 32.
    ///
    /// # Errors
    /// `InvalidInput` if `general.alignment` is set with a type other than
    /// `u32` or to a value that is not a power of two (llama.cpp rejects both).
    pub fn alignment(&self) -> io::Result<u32> {
        match self.get(GGUF_KEY_ALIGNMENT) {
            None => Ok(GGUF_DEFAULT_ALIGNMENT),
            Some(GgufValue::U32(a)) if a.is_power_of_two() => Ok(*a),
            Some(other) => Err(invalid(format!(
                "{GGUF_KEY_ALIGNMENT} must be a u32 power of two, got {other:?}"
            ))),
        }
    }

    /// The value stored under `key`, if any.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The metadata pairs, in write order.
    #[must_use]
    pub fn kvs(&self) -> &[(String, GgufValue)] {
        &self.kvs
    }

    /// The queued tensors, in write order.
    #[must_use]
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.tensors
    }

    /// Queues an `F32` tensor. `dims` is innermost-first (`ne[0]` first): a
    /// weight used as `y = W·x` with `x` of size `n_in` and `y` of size
    /// `n_out` has `dims = [n_in, n_out]`.
    ///
    /// # Errors
    /// `InvalidInput` if the name or shape is invalid, the name is already
    /// used, or `data.len()` is not the product of `dims`.
    pub fn add_tensor_f32(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        data: &[f32],
    ) -> io::Result<&mut Self> {
        let mut bytes = Vec::with_capacity(data.len() * 4);
        for x in data {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        self.add_tensor_bytes(name, dims, GgmlType::F32, bytes)
    }

    /// Queues a tensor from raw little-endian bytes of the given type.
    ///
    /// # Errors
    /// `InvalidInput` if the name is empty, too long (ggml allows 63 bytes)
    /// or already used, if `dims` has 0 or more than 4 entries, if `ne[0]`
    /// is not a multiple of the type's block size, or if `data` does not
    /// have exactly the expected size.
    pub fn add_tensor_bytes(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ggml_type: GgmlType,
        data: Vec<u8>,
    ) -> io::Result<&mut Self> {
        let name = name.into();
        if name.is_empty() || name.len() >= GGML_MAX_NAME {
            return Err(invalid(format!(
                "tensor name {name:?} must be 1..{} bytes",
                GGML_MAX_NAME - 1
            )));
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(invalid(format!("duplicate tensor name {name:?}")));
        }
        if dims.is_empty() || dims.len() > GGML_MAX_DIMS {
            return Err(invalid(format!(
                "tensor {name:?} has {} dimensions, expected 1..={GGML_MAX_DIMS}",
                dims.len()
            )));
        }
        let expected = tensor_nbytes(dims, ggml_type).ok_or_else(|| {
            invalid(format!(
                "tensor {name:?}: invalid shape {dims:?} for {ggml_type:?}"
            ))
        })?;
        if data.len() as u64 != expected {
            return Err(invalid(format!(
                "tensor {name:?}: {} data bytes, shape {dims:?} of {ggml_type:?} needs {expected}",
                data.len()
            )));
        }
        self.tensors.push(GgufTensor {
            name,
            dims: dims.to_vec(),
            ggml_type,
            data,
        });
        Ok(self)
    }

    /// Serialises the whole file.
    ///
    /// # Errors
    /// `InvalidInput` if the alignment metadata is invalid or a key is empty.
    pub fn to_bytes(&self) -> io::Result<Vec<u8>> {
        let align = u64::from(self.alignment()?);
        let data_len: u64 = self
            .tensors
            .iter()
            .map(|t| pad_to(t.data.len() as u64, align))
            .sum();
        let mut out = Vec::with_capacity(4096 + usize::try_from(data_len).unwrap_or(0));

        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&GGUF_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());

        for (key, value) in &self.kvs {
            if key.is_empty() {
                return Err(invalid("empty metadata key".to_owned()));
            }
            write_str(&mut out, key);
            value.write_typed(&mut out);
        }

        let mut offset = 0u64;
        for t in &self.tensors {
            write_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.tag().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += pad_to(t.data.len() as u64, align);
        }

        // The data section starts aligned (relative to the file start), and
        // every tensor (the last one included) is padded to the alignment,
        // exactly as gguf_write_to_buf does.
        if !self.tensors.is_empty() {
            pad_vec(&mut out, align);
            for t in &self.tensors {
                out.extend_from_slice(&t.data);
                pad_vec(&mut out, align);
            }
        }
        Ok(out)
    }

    /// Serialises into `w`.
    ///
    /// # Errors
    /// As [`Self::to_bytes`], plus any I/O error from `w`.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let bytes = self.to_bytes()?;
        w.write_all(&bytes)?;
        w.flush()
    }

    /// Writes the file to `path` (created or truncated).
    ///
    /// # Errors
    /// As [`Self::write_to`], plus any error creating the file.
    pub fn write_file(&self, path: &Path) -> io::Result<()> {
        let mut w = BufWriter::new(File::create(path)?);
        self.write_to(&mut w)?;
        w.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()
    }
}

fn pad_vec(out: &mut Vec<u8>, align: u64) {
    let len = out.len() as u64;
    let padded = pad_to(len, align);
    out.resize(out.len() + (padded - len) as usize, 0);
}

/// Size in bytes of a tensor of shape `dims` and type `ty`; `None` if the
/// shape is invalid for the type or the size overflows.
#[must_use]
pub fn tensor_nbytes(dims: &[u64], ty: GgmlType) -> Option<u64> {
    let ne0 = *dims.first()?;
    if ne0 % ty.block_size() != 0 {
        return None;
    }
    let mut n: u64 = 1;
    for d in dims {
        n = n.checked_mul(*d)?;
    }
    (n / ty.block_size()).checked_mul(ty.type_size())
}

// ---------------------------------------------------------------------------
// Tiny llama
// ---------------------------------------------------------------------------

/// The ChatML chat template, as real ChatML models ship it.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// `<unk>`: unknown token (type 2).
pub const TINY_UNK_ID: u32 = 0;
/// `<s>`: BOS (control).
pub const TINY_BOS_ID: u32 = 1;
/// `</s>`: control; llama.cpp also treats it as end-of-generation by its text.
pub const TINY_EOS_TEXT_ID: u32 = 2;
/// `<|im_start|>` (control).
pub const TINY_IM_START_ID: u32 = 3;
/// `<|im_end|>` (control); the model's `eos_token_id`, and end-of-generation.
pub const TINY_IM_END_ID: u32 = 4;
/// `<0x00>`; byte `b` is token `TINY_BYTE_BASE_ID + b`.
pub const TINY_BYTE_BASE_ID: u32 = 5;

/// GGUF token types (`tokenizer.ggml.token_type`).
pub mod token_type {
    /// Normal piece.
    pub const NORMAL: i32 = 1;
    /// Unknown token.
    pub const UNKNOWN: i32 = 2;
    /// Control / special token.
    pub const CONTROL: i32 = 3;
    /// User-defined token.
    pub const USER_DEFINED: i32 = 4;
    /// Unused token.
    pub const UNUSED: i32 = 5;
    /// Byte-fallback token `<0xNN>`.
    pub const BYTE: i32 = 6;
}

/// Shape and seed of the tiny model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinyModelOptions {
    /// Embedding width (default 64). Must be a multiple of `n_head`.
    pub n_embd: u32,
    /// Number of transformer blocks (default 2).
    pub n_layer: u32,
    /// Attention heads (default 4). `n_embd / n_head` must be even (RoPE).
    pub n_head: u32,
    /// KV heads (default 2). Must divide `n_head`.
    pub n_head_kv: u32,
    /// Feed-forward width (default 128).
    pub n_ff: u32,
    /// Training context length written to metadata (default 512).
    pub context_length: u32,
    /// PRNG seed for the weights (default 42).
    pub seed: u64,
    /// `tokenizer.chat_template`; `None` writes no template. Default: ChatML.
    pub chat_template: Option<String>,
}

impl Default for TinyModelOptions {
    fn default() -> Self {
        Self {
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            context_length: 512,
            seed: 42,
            chat_template: Some(CHATML_TEMPLATE.to_owned()),
        }
    }
}

/// A SentencePiece-style vocabulary (parallel arrays).
#[derive(Debug, Clone, PartialEq)]
pub struct TinyVocab {
    /// Token texts; the id is the index.
    pub tokens: Vec<String>,
    /// SentencePiece scores (higher merges first).
    pub scores: Vec<f32>,
    /// GGUF token types (see [`token_type`]).
    pub token_types: Vec<i32>,
}

impl TinyVocab {
    /// Number of tokens.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty (never, for [`tiny_vocab`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of `text`, if present.
    #[must_use]
    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.tokens
            .iter()
            .position(|t| t == text)
            .and_then(|i| u32::try_from(i).ok())
    }
}

/// Words that get whole-word pieces. Each appears as `▁word`; together with
/// all its prefixes (`▁w`, `▁wo`, ...) so SentencePiece merging reaches it.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "with", "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or",
    "had", "by", "hot", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all",
    "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do",
    "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would",
    "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look",
    "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my",
    "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now",
    "find", "any", "new", "work", "part", "take", "get", "place", "made", "live", "where", "after",
    "back", "little", "only", "round", "man", "year", "came", "show", "every", "good", "me",
    "give", "our", "under", "name", "very", "through", "just", "form", "great", "think", "say",
    "help", "low", "line", "turn", "cause", "much", "mean", "before", "move", "right", "boy",
    "old", "too", "same", "tell", "does", "set", "three", "want", "air", "well", "also", "play",
    "small", "end", "put", "home", "read", "hand", "large", "add", "even", "land", "here", "must",
    "big", "high", "such", "follow", "act", "why", "ask", "men", "change", "went", "light", "kind",
    "off", "need", "house", "try", "us", "again", "animal", "point", "mother", "world", "near",
    "build", "self", "earth", "father", "hello", "capital", "city", "country", "France", "Paris",
    "Germany", "Berlin", "Italy", "Rome", "Spain", "Madrid", "London", "England", "answer",
    "question", "model", "user", "assistant", "system", "story", "count", "yes", "hi", "thanks",
    "please", "sure", "today", "weather", "four", "five", "six", "seven", "eight", "nine", "ten",
];

/// Words that also get a bare (no `▁`) piece, with prefixes: sentence
/// starters and words that follow a special token or a newline.
#[rustfmt::skip]
const BARE_WORDS: &[&str] = &[
    "user", "assistant", "system", "What", "Hello", "The", "Tell", "How", "Who", "Write",
    "Please", "You", "Hi", "Yes", "No",
];

/// Builds the tiny SentencePiece ("llama") vocabulary.
///
/// Layout: `0 <unk>`, `1 <s>`, `2 </s>`, `3 <|im_start|>`, `4 <|im_end|>`,
/// `5..=260` byte tokens `<0x00>..<0xFF>`, then `▁`, the printable ASCII
/// characters `!`..`~`, then word pieces (`▁the`, `▁capital`, ...) and their
/// prefixes. Deterministic.
#[must_use]
pub fn tiny_vocab() -> TinyVocab {
    let mut v = TinyVocab {
        tokens: Vec::new(),
        scores: Vec::new(),
        token_types: Vec::new(),
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut push = |v: &mut TinyVocab, text: String, score: f32, ty: i32| {
        if seen.insert(text.clone()) {
            v.tokens.push(text);
            v.scores.push(score);
            v.token_types.push(ty);
        }
    };

    push(&mut v, "<unk>".into(), 0.0, token_type::UNKNOWN);
    push(&mut v, "<s>".into(), 0.0, token_type::CONTROL);
    push(&mut v, "</s>".into(), 0.0, token_type::CONTROL);
    push(&mut v, "<|im_start|>".into(), 0.0, token_type::CONTROL);
    push(&mut v, "<|im_end|>".into(), 0.0, token_type::CONTROL);
    for b in 0u32..256 {
        push(&mut v, format!("<0x{b:02X}>"), 0.0, token_type::BYTE);
    }

    // Normal pieces get strictly decreasing scores, like a real SentencePiece
    // model (score = log-probability rank).
    let mut rank = 0u32;
    let mut push_piece = |v: &mut TinyVocab, text: String| {
        let before = v.tokens.len();
        #[allow(clippy::cast_precision_loss)]
        let score = -(rank as f32);
        push(v, text, score, token_type::NORMAL);
        if v.tokens.len() > before {
            rank += 1;
        }
    };

    push_piece(&mut v, "\u{2581}".to_owned());
    for c in b'!'..=b'~' {
        push_piece(&mut v, char::from(c).to_string());
    }
    let mut add_with_prefixes = |v: &mut TinyVocab, word: String| {
        let mut piece = String::new();
        for ch in word.chars() {
            piece.push(ch);
            if piece.chars().count() >= 2 {
                push_piece(v, piece.clone());
            }
        }
    };
    for w in WORDS {
        add_with_prefixes(&mut v, format!("\u{2581}{w}"));
    }
    for w in BARE_WORDS {
        add_with_prefixes(&mut v, (*w).to_owned());
    }
    v
}

/// splitmix64: tiny, deterministic, good enough for random weights.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn next_unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let x = ((self.next_u64() >> 11) + 1) as f64;
        x / (1u64 << 53) as f64
    }

    /// Normal(0, std) via Box-Muller.
    fn next_normal(&mut self, std: f64) -> f32 {
        let u1 = self.next_unit();
        let u2 = self.next_unit();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        #[allow(clippy::cast_possible_truncation)]
        let out = (z * std) as f32;
        out
    }
}

const WEIGHT_STD: f64 = 0.02;

fn random_tensor(rng: &mut SplitMix64, n: u64) -> Vec<f32> {
    (0..n).map(|_| rng.next_normal(WEIGHT_STD)).collect()
}

fn validate(opts: &TinyModelOptions) -> io::Result<()> {
    let TinyModelOptions {
        n_embd,
        n_layer,
        n_head,
        n_head_kv,
        n_ff,
        context_length,
        ..
    } = *opts;
    if n_embd == 0
        || n_layer == 0
        || n_head == 0
        || n_head_kv == 0
        || n_ff == 0
        || context_length == 0
    {
        return Err(invalid(format!(
            "all tiny model dimensions must be non-zero: {opts:?}"
        )));
    }
    if n_embd % n_head != 0 || (n_embd / n_head) % 2 != 0 {
        return Err(invalid(format!(
            "n_embd ({n_embd}) must be a multiple of n_head ({n_head}) with an even head size"
        )));
    }
    if n_head % n_head_kv != 0 {
        return Err(invalid(format!(
            "n_head ({n_head}) must be a multiple of n_head_kv ({n_head_kv})"
        )));
    }
    Ok(())
}

/// Builds the complete tiny-llama GGUF in memory (metadata, vocabulary,
/// random F32 weights), so callers can add or override KVs before writing.
///
/// # Errors
/// `InvalidInput` if the options describe an impossible model.
pub fn tiny_llama_gguf(opts: &TinyModelOptions) -> io::Result<GgufWriter> {
    validate(opts)?;
    let vocab = tiny_vocab();
    let n_vocab =
        u32::try_from(vocab.len()).map_err(|_| invalid("vocabulary too large".to_owned()))?;
    let arch = "llama";
    let head_dim = opts.n_embd / opts.n_head;
    let n_embd_kv = head_dim * opts.n_head_kv;

    let mut w = GgufWriter::new();
    w.add_string("general.architecture", arch)
        .add_string("general.name", "floodgate-tiny-llama")
        .add_u32(GGUF_KEY_ALIGNMENT, GGUF_DEFAULT_ALIGNMENT)
        .add_u32(format!("{arch}.context_length"), opts.context_length)
        .add_u32(format!("{arch}.embedding_length"), opts.n_embd)
        .add_u32(format!("{arch}.block_count"), opts.n_layer)
        .add_u32(format!("{arch}.feed_forward_length"), opts.n_ff)
        .add_u32(format!("{arch}.attention.head_count"), opts.n_head)
        .add_u32(format!("{arch}.attention.head_count_kv"), opts.n_head_kv)
        .add_u32(format!("{arch}.rope.dimension_count"), head_dim)
        .add_f32(format!("{arch}.rope.freq_base"), 10_000.0)
        .add_f32(format!("{arch}.attention.layer_norm_rms_epsilon"), 1e-5)
        .add_u32(format!("{arch}.vocab_size"), n_vocab)
        .add_u32("general.file_type", 0) // ALL_F32
        .add_string("tokenizer.ggml.model", "llama")
        .add_string_array("tokenizer.ggml.tokens", vocab.tokens)
        .add_f32_array("tokenizer.ggml.scores", vocab.scores)
        .add_i32_array("tokenizer.ggml.token_type", vocab.token_types)
        .add_u32("tokenizer.ggml.bos_token_id", TINY_BOS_ID)
        .add_u32("tokenizer.ggml.eos_token_id", TINY_IM_END_ID)
        .add_u32("tokenizer.ggml.unknown_token_id", TINY_UNK_ID)
        .add_bool("tokenizer.ggml.add_bos_token", false)
        .add_bool("tokenizer.ggml.add_eos_token", false)
        // Without a dummy prefix the text after a special token (e.g. `user`
        // after `<|im_start|>`) is not given a leading `▁`, so ChatML
        // prompts detokenize back to exactly the input.
        .add_bool("tokenizer.ggml.add_space_prefix", false);
    if let Some(t) = &opts.chat_template {
        w.add_string("tokenizer.chat_template", t.clone());
    }

    let mut rng = SplitMix64(opts.seed);
    let e = u64::from(opts.n_embd);
    let v = u64::from(n_vocab);
    let ff = u64::from(opts.n_ff);
    let q = u64::from(head_dim * opts.n_head);
    let kv = u64::from(n_embd_kv);
    let ones = |n: u64| vec![1.0f32; usize::try_from(n).unwrap_or(0)];

    w.add_tensor_f32(
        "token_embd.weight",
        &[e, v],
        &random_tensor(&mut rng, e * v),
    )?;
    for i in 0..opts.n_layer {
        let b = format!("blk.{i}");
        w.add_tensor_f32(format!("{b}.attn_norm.weight"), &[e], &ones(e))?;
        w.add_tensor_f32(
            format!("{b}.attn_q.weight"),
            &[e, q],
            &random_tensor(&mut rng, e * q),
        )?;
        w.add_tensor_f32(
            format!("{b}.attn_k.weight"),
            &[e, kv],
            &random_tensor(&mut rng, e * kv),
        )?;
        w.add_tensor_f32(
            format!("{b}.attn_v.weight"),
            &[e, kv],
            &random_tensor(&mut rng, e * kv),
        )?;
        w.add_tensor_f32(
            format!("{b}.attn_output.weight"),
            &[q, e],
            &random_tensor(&mut rng, q * e),
        )?;
        w.add_tensor_f32(format!("{b}.ffn_norm.weight"), &[e], &ones(e))?;
        w.add_tensor_f32(
            format!("{b}.ffn_gate.weight"),
            &[e, ff],
            &random_tensor(&mut rng, e * ff),
        )?;
        w.add_tensor_f32(
            format!("{b}.ffn_down.weight"),
            &[ff, e],
            &random_tensor(&mut rng, ff * e),
        )?;
        w.add_tensor_f32(
            format!("{b}.ffn_up.weight"),
            &[e, ff],
            &random_tensor(&mut rng, e * ff),
        )?;
    }
    w.add_tensor_f32("output_norm.weight", &[e], &ones(e))?;
    w.add_tensor_f32("output.weight", &[e, v], &random_tensor(&mut rng, e * v))?;
    Ok(w)
}

/// Writes a complete llama-architecture GGUF with random F32 weights and a
/// real SentencePiece-style ("llama") vocabulary to `path`. Returns the
/// vocabulary size.
///
/// Token ids: see [`TINY_UNK_ID`], [`TINY_BOS_ID`], [`TINY_IM_START_ID`],
/// [`TINY_IM_END_ID`] (the EOS / end-of-generation token) and
/// [`TINY_BYTE_BASE_ID`]. `add_bos_token` and `add_space_prefix` are false.
///
/// # Errors
/// `InvalidInput` for impossible options; any I/O error writing the file.
pub fn write_tiny_llama(path: &Path, opts: &TinyModelOptions) -> io::Result<u32> {
    let w = tiny_llama_gguf(opts)?;
    let n_vocab = match w.get("tokenizer.ggml.tokens") {
        Some(GgufValue::Array(a)) => {
            u32::try_from(a.len()).map_err(|_| invalid("vocabulary too large".to_owned()))?
        }
        _ => return Err(invalid("tokenizer.ggml.tokens missing".to_owned())),
    };
    w.write_file(path)?;
    Ok(n_vocab)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn empty_file_is_just_a_header() {
        let b = GgufWriter::new().to_bytes().unwrap();
        assert_eq!(b.len(), 24);
        assert_eq!(&b[0..4], b"GGUF");
        assert_eq!(u32_at(&b, 4), 3);
        assert_eq!(u64_at(&b, 8), 0);
        assert_eq!(u64_at(&b, 16), 0);
    }

    #[test]
    fn scalar_kv_layout() {
        let mut w = GgufWriter::new();
        w.add_u32("a", 7)
            .add_kv("b", GgufValue::I8(-2))
            .add_bool("c", true)
            .add_string("d", "hé")
            .add_kv("e", 1.5f64)
            .add_kv("f", u16::MAX)
            .add_kv("g", -3i64);
        let b = w.to_bytes().unwrap();
        assert_eq!(u64_at(&b, 16), 7);
        let mut p = 24;
        // "a": u32 7
        assert_eq!(u64_at(&b, p), 1);
        assert_eq!(b[p + 8], b'a');
        assert_eq!(u32_at(&b, p + 9), GgufType::U32.tag());
        assert_eq!(u32_at(&b, p + 13), 7);
        p += 17;
        // "b": i8 -2
        assert_eq!(u32_at(&b, p + 9), 1);
        assert_eq!(b[p + 13], 0xFE);
        p += 14;
        // "c": bool is one byte
        assert_eq!(u32_at(&b, p + 9), 7);
        assert_eq!(b[p + 13], 1);
        p += 14;
        // "d": string = u64 len + bytes
        assert_eq!(u32_at(&b, p + 9), 8);
        assert_eq!(u64_at(&b, p + 13), 3);
        assert_eq!(&b[p + 21..p + 24], "hé".as_bytes());
        p += 24;
        // "e": f64
        assert_eq!(u32_at(&b, p + 9), 12);
        assert_eq!(
            f64::from_le_bytes(b[p + 13..p + 21].try_into().unwrap()),
            1.5
        );
        p += 21;
        // "f": u16
        assert_eq!(u32_at(&b, p + 9), 2);
        assert_eq!(&b[p + 13..p + 15], &[0xFF, 0xFF]);
        p += 15;
        // "g": i64
        assert_eq!(u32_at(&b, p + 9), 11);
        assert_eq!(u64_at(&b, p + 13), (-3i64) as u64);
        p += 21;
        assert_eq!(p, b.len(), "no tensors, so no padding");
    }

    #[test]
    fn array_kv_layout() {
        let mut w = GgufWriter::new();
        w.add_string_array("s", vec!["ab".into(), String::new()])
            .add_f32_array("f", vec![1.0, -2.0])
            .add_i32_array("i", vec![-1]);
        let b = w.to_bytes().unwrap();
        let mut p = 24 + 9;
        assert_eq!(u32_at(&b, p), 9); // ARRAY
        assert_eq!(u32_at(&b, p + 4), 8); // of STRING
        assert_eq!(u64_at(&b, p + 8), 2);
        assert_eq!(u64_at(&b, p + 16), 2);
        assert_eq!(&b[p + 24..p + 26], b"ab");
        assert_eq!(u64_at(&b, p + 26), 0);
        p += 34 + 9;
        assert_eq!(u32_at(&b, p), 9);
        assert_eq!(u32_at(&b, p + 4), 6); // of FLOAT32
        assert_eq!(u64_at(&b, p + 8), 2);
        assert_eq!(
            f32::from_le_bytes(b[p + 16..p + 20].try_into().unwrap()),
            1.0
        );
        assert_eq!(
            f32::from_le_bytes(b[p + 20..p + 24].try_into().unwrap()),
            -2.0
        );
        p += 24 + 9;
        assert_eq!(u32_at(&b, p), 9);
        assert_eq!(u32_at(&b, p + 4), 5); // of INT32
        assert_eq!(u64_at(&b, p + 8), 1);
        assert_eq!(u32_at(&b, p + 16), u32::MAX);
        assert_eq!(p + 20, b.len());
    }

    #[test]
    fn readding_a_key_replaces_it_in_place() {
        let mut w = GgufWriter::new();
        w.add_u32("x", 1).add_u32("y", 2).add_string("x", "z");
        assert_eq!(w.kvs().len(), 2);
        assert_eq!(w.kvs()[0].0, "x");
        assert_eq!(w.get("x"), Some(&GgufValue::String("z".into())));
    }

    fn tensor_info_and_data(align: Option<u32>) -> (Vec<u8>, u64) {
        let mut w = GgufWriter::new();
        if let Some(a) = align {
            w.set_alignment(a).unwrap();
        }
        w.add_tensor_f32("a", &[3], &[1.0, 2.0, 3.0]).unwrap();
        w.add_tensor_f32("bb", &[2, 2], &[4.0, 5.0, 6.0, 7.0])
            .unwrap();
        (w.to_bytes().unwrap(), u64::from(w.alignment().unwrap()))
    }

    #[test]
    fn tensor_infos_offsets_and_padding() {
        for align in [None, Some(64), Some(8)] {
            let (b, a) = tensor_info_and_data(align);
            let a_usize = a as usize;
            assert_eq!(u64_at(&b, 8), 2, "n_tensors");
            let mut p = 24;
            if align.is_some() {
                // general.alignment: key(8+17) + type(4) + u32(4)
                assert_eq!(&b[p + 8..p + 25], b"general.alignment");
                assert_eq!(u32_at(&b, p + 25), 4);
                assert_eq!(u64::from(u32_at(&b, p + 29)), a);
                p += 33;
            }
            // tensor "a"
            assert_eq!(u64_at(&b, p), 1);
            assert_eq!(b[p + 8], b'a');
            assert_eq!(u32_at(&b, p + 9), 1); // n_dims
            assert_eq!(u64_at(&b, p + 13), 3); // ne[0]
            assert_eq!(u32_at(&b, p + 21), 0); // F32
            assert_eq!(u64_at(&b, p + 25), 0); // offset
            p += 33;
            // tensor "bb"
            assert_eq!(u64_at(&b, p), 2);
            assert_eq!(&b[p + 8..p + 10], b"bb");
            assert_eq!(u32_at(&b, p + 10), 2);
            assert_eq!(u64_at(&b, p + 14), 2);
            assert_eq!(u64_at(&b, p + 22), 2);
            assert_eq!(u32_at(&b, p + 30), 0);
            let off_bb = u64_at(&b, p + 34);
            assert_eq!(
                off_bb,
                pad_to(12, a),
                "second offset is the padded size of the first"
            );
            p += 42;
            let data_start = pad_to(p as u64, a) as usize;
            assert!(b[p..data_start].iter().all(|&x| x == 0));
            assert_eq!(data_start % a_usize, 0);
            let f = |at: usize| f32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            assert_eq!(
                [f(data_start), f(data_start + 4), f(data_start + 8)],
                [1.0, 2.0, 3.0]
            );
            let bb = data_start + off_bb as usize;
            assert_eq!(bb % a_usize, 0);
            assert_eq!(f(bb + 12), 7.0);
            assert_eq!(
                b.len(),
                bb + pad_to(16, a) as usize,
                "last tensor padded too"
            );
        }
    }

    #[test]
    fn rejects_bad_input() {
        let mut w = GgufWriter::new();
        assert!(w.set_alignment(24).is_err());
        assert!(w.add_tensor_f32("t", &[2, 2], &[1.0; 3]).is_err());
        assert!(w.add_tensor_f32("", &[1], &[1.0]).is_err());
        assert!(w.add_tensor_f32("x".repeat(64), &[1], &[1.0]).is_err());
        assert!(w.add_tensor_f32("t", &[1, 1, 1, 1, 1], &[1.0]).is_err());
        assert!(w
            .add_tensor_bytes("q", &[16], GgmlType::Q8_0, vec![0; 34])
            .is_err());
        assert!(w
            .add_tensor_bytes("q", &[32], GgmlType::Q8_0, vec![0; 34])
            .is_ok());
        assert!(w.add_tensor_f32("t", &[1], &[1.0]).is_ok());
        assert!(
            w.add_tensor_f32("t", &[1], &[1.0]).is_err(),
            "duplicate name"
        );
        w.add_kv(GGUF_KEY_ALIGNMENT, 32u64);
        assert!(w.to_bytes().is_err(), "alignment must be u32");
        assert!(tiny_llama_gguf(&TinyModelOptions {
            n_head: 3,
            ..Default::default()
        })
        .is_err());
        assert!(tiny_llama_gguf(&TinyModelOptions {
            n_head_kv: 3,
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn vocab_shape() {
        let v = tiny_vocab();
        assert!(v.len() >= 500 && v.len() <= 1000, "vocab size {}", v.len());
        assert_eq!(v.tokens.len(), v.scores.len());
        assert_eq!(v.tokens.len(), v.token_types.len());
        assert_eq!(v.id_of("<unk>"), Some(TINY_UNK_ID));
        assert_eq!(v.id_of("<s>"), Some(TINY_BOS_ID));
        assert_eq!(v.id_of("</s>"), Some(TINY_EOS_TEXT_ID));
        assert_eq!(v.id_of("<|im_start|>"), Some(TINY_IM_START_ID));
        assert_eq!(v.id_of("<|im_end|>"), Some(TINY_IM_END_ID));
        assert_eq!(v.id_of("<0x00>"), Some(TINY_BYTE_BASE_ID));
        assert_eq!(v.id_of("<0x0A>"), Some(TINY_BYTE_BASE_ID + 10));
        assert_eq!(v.id_of("<0xFF>"), Some(TINY_BYTE_BASE_ID + 255));
        for w in [
            "\u{2581}the",
            "\u{2581}capital",
            "\u{2581}France",
            "\u{2581}Paris",
            "What",
            "user",
        ] {
            assert!(v.id_of(w).is_some(), "{w} missing");
        }
        let unique: HashSet<&String> = v.tokens.iter().collect();
        assert_eq!(unique.len(), v.len());
        // every piece's prefixes (>= 2 chars) are pieces too
        for (t, ty) in v.tokens.iter().zip(&v.token_types) {
            if *ty == token_type::NORMAL {
                let chars: Vec<char> = t.chars().collect();
                for k in 2..chars.len() {
                    let p: String = chars[..k].iter().collect();
                    assert!(v.id_of(&p).is_some(), "prefix {p:?} of {t:?} missing");
                }
            }
        }
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = tiny_llama_gguf(&TinyModelOptions::default())
            .unwrap()
            .to_bytes()
            .unwrap();
        let b = tiny_llama_gguf(&TinyModelOptions::default())
            .unwrap()
            .to_bytes()
            .unwrap();
        let c = tiny_llama_gguf(&TinyModelOptions {
            seed: 7,
            ..Default::default()
        })
        .unwrap()
        .to_bytes()
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), c.len());
    }

    #[test]
    fn tiny_tensor_shapes() {
        let w = tiny_llama_gguf(&TinyModelOptions::default()).unwrap();
        let n_vocab = tiny_vocab().len() as u64;
        let shape = |n: &str| {
            w.tensors()
                .iter()
                .find(|t| t.name == n)
                .unwrap()
                .dims
                .clone()
        };
        assert_eq!(w.tensors().len(), 3 + 2 * 9);
        assert_eq!(shape("token_embd.weight"), vec![64, n_vocab]);
        assert_eq!(shape("output.weight"), vec![64, n_vocab]);
        assert_eq!(shape("output_norm.weight"), vec![64]);
        assert_eq!(shape("blk.1.attn_q.weight"), vec![64, 64]);
        assert_eq!(shape("blk.1.attn_k.weight"), vec![64, 32]);
        assert_eq!(shape("blk.1.attn_v.weight"), vec![64, 32]);
        assert_eq!(shape("blk.0.attn_output.weight"), vec![64, 64]);
        assert_eq!(shape("blk.0.ffn_gate.weight"), vec![64, 128]);
        assert_eq!(shape("blk.0.ffn_up.weight"), vec![64, 128]);
        assert_eq!(shape("blk.0.ffn_down.weight"), vec![128, 64]);
        let emb = &w.tensors()[0];
        let vals: Vec<f32> = emb
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let mean = vals.iter().sum::<f32>() / vals.len() as f32;
        let var = vals.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / vals.len() as f32;
        assert!(mean.abs() < 0.002, "mean {mean}");
        assert!((var.sqrt() - 0.02).abs() < 0.002, "std {}", var.sqrt());
    }
}
