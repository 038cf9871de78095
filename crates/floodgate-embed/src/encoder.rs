//! Sentence embeddings from a BERT encoder (all-MiniLM-L6-v2), in process.
//!
//! The pipeline is the one sentence-transformers uses for MiniLM: WordPiece
//! tokens with `[CLS]`/`[SEP]`, the encoder's last hidden state, the mean over
//! real (unmasked) tokens, and L2 normalisation, so that a dot product of two
//! embeddings is their cosine similarity. Weights are read with candle; the
//! tokenizer is Hugging Face's `tokenizers` crate reading the model's own
//! `tokenizer.json`, so the token ids are exactly the reference ones.
//!
//! Cost grows with the number of tokens (attention is quadratic), so every
//! text is cut to `max_tokens` before the model sees it. Which tokens survive
//! is a choice ([`Truncation`]): the head (what the model was trained with)
//! or the head and the tail (what a prompt-injection guard wants, because an
//! injected instruction is often appended to a long benign document).
//!
//! Cost, measured with `examples/embed_latency.rs` on the 2-core dev machine
//! (one thread, f32): about 8 ms per call whatever the text (the forward pass
//! streams all 90 MB of weights through the cache), about 14 ms for a 20-word
//! prompt, 30 ms at 64 tokens and 50-70 ms at 128. A second thread cuts wall
//! time by a quarter to two fifths for more total CPU.
//!
//! The encoder runs in f32 only. Half precision was tried and dropped: on CPU
//! candle's f16 matmul is about 2x slower than f32 and it has no bf16 matmul,
//! and candle's BERT builds its attention mask as `(1 - mask) * f32::MIN`,
//! which in f16 is `0 * -inf = NaN`.
//!
//! Threads: candle runs matrix products and element-wise kernels on rayon.
//! With [`EmbedOptions::threads`] set, every call runs inside a private rayon
//! pool of that many threads, so embedding never competes for more cores than
//! given; otherwise it uses rayon's global pool (`RAYON_NUM_THREADS`, else one
//! thread per CPU). candle splits each matrix product into
//! `RAYON_NUM_THREADS`-or-CPU-count tasks whatever the pool size; set
//! `RAYON_NUM_THREADS=1` as well for strictly single-threaded inference.

use std::fs;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

use crate::error::EmbedError;
use crate::TextEncoder;

/// The embedding width of all-MiniLM-L6-v2.
pub const MINILM_DIM: usize = 384;

/// A text longer than this many characters per kept token is cut before
/// tokenizing, so a 1 MB prompt costs no more to tokenize than a 30 KB one.
/// WordPiece tokens of English average about 4 characters; a token longer
/// than 32 characters is rare (a URL or a hash), and only the token at the
/// cut can differ from tokenizing the whole text.
const CHARS_PER_TOKEN_BOUND: usize = 32;

/// Which tokens of a long text the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// The first `max_tokens` (as sentence-transformers does).
    #[default]
    Head,
    /// The first half and the last half of `max_tokens`, for texts whose end
    /// matters as much as their start (an instruction appended to a document).
    HeadAndTail,
}

/// Where the encoder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    /// A CUDA device by ordinal; needs the crate's `cuda` feature.
    Cuda(usize),
}

/// How [`Embedder::load`] sets up the encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedOptions {
    /// Tokens per text, `[CLS]` and `[SEP]` included. At most the model's
    /// `max_position_embeddings` (512 for MiniLM, which was trained on 128).
    pub max_tokens: usize,
    pub truncation: Truncation,
    /// Size of a private rayon pool for inference; `None` uses the global pool.
    pub threads: Option<usize>,
    pub device: DeviceChoice,
    /// Texts per forward pass in [`Embedder::embed`]. Texts are grouped by
    /// length first, so padding stays small.
    pub batch_size: usize,
}

impl EmbedOptions {
    /// The defaults with another token budget.
    pub fn with_max_tokens(self, max_tokens: usize) -> Self {
        EmbedOptions { max_tokens, ..self }
    }
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            max_tokens: 128,
            truncation: Truncation::Head,
            threads: None,
            device: DeviceChoice::Cpu,
            batch_size: 16,
        }
    }
}

/// A loaded encoder and its tokenizer. Cheap to share behind an `Arc`;
/// `embed` takes `&self` and may be called from several threads at once.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pool: Option<rayon::ThreadPool>,
    pad_id: u32,
    dim: usize,
    name: String,
    opts: EmbedOptions,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dim", &self.dim)
            .field("device", &self.device)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from
    /// `dir` (the layout `floodgate models pull all-minilm-l6-v2` leaves in
    /// the model cache).
    pub fn load(dir: &Path, opts: EmbedOptions) -> Result<Embedder, EmbedError> {
        if opts.batch_size == 0 {
            return Err(EmbedError::Invalid("batch_size must be at least 1".into()));
        }
        let (config, _) = read_config(dir)?;
        if opts.max_tokens < 2 || opts.max_tokens > config.max_position_embeddings {
            return Err(EmbedError::Invalid(format!(
                "max_tokens must be between 2 and the model's {} positions, not {}",
                config.max_position_embeddings, opts.max_tokens
            )));
        }

        let tokenizer = load_tokenizer(dir)?;

        let device = match opts.device {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda(ordinal) => Device::new_cuda(ordinal)
                .map_err(EmbedError::model(format!("opening CUDA device {ordinal}")))?,
        };
        let (vb, weights_path) = read_weights(dir, &device)?;
        let model = BertModel::load(vb, &config)
            .map_err(EmbedError::model(weights_path.display().to_string()))?;

        let pool = match opts.threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .thread_name(|i| format!("embed-{i}"))
                    .build()?,
            ),
            None => None,
        };
        Ok(Embedder {
            model,
            tokenizer,
            device,
            pool,
            pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
            dim: config.hidden_size,
            name: dir.file_name().map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            opts,
        })
    }

    /// The model directory's name (`all-minilm-l6-v2` in the model cache);
    /// recorded in classifiers trained on this embedder's output.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The embedding width (384 for MiniLM).
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn options(&self) -> &EmbedOptions {
        &self.opts
    }

    /// One unit-length embedding per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        match &self.pool {
            Some(pool) => pool.install(|| self.embed_here(texts)),
            None => self.embed_here(texts),
        }
    }

    /// The embedding of one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut out = self.embed(&[text])?;
        out.pop()
            .ok_or_else(|| EmbedError::Invalid("the encoder returned no embedding".into()))
    }

    /// The encoder's tokenizer (no padding, no truncation).
    pub(crate) fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Unit-length embeddings of token-id rows given as they are (special
    /// tokens included by the caller), in the configured thread pool.
    pub(crate) fn forward_ids(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        match &self.pool {
            Some(pool) => pool.install(|| self.forward(rows)),
            None => self.forward(rows),
        }
    }

    /// The token ids the model sees for `text`: special tokens included, cut
    /// to `max_tokens` by the configured [`Truncation`].
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let max = self.opts.max_tokens;
        let budget = max.saturating_mul(CHARS_PER_TOKEN_BOUND);
        let cut: std::borrow::Cow<'_, str> = match self.opts.truncation {
            Truncation::Head => prefix_chars(text, budget).into(),
            Truncation::HeadAndTail => {
                let head = prefix_chars(text, budget / 2);
                let tail = suffix_chars(text, budget / 2);
                if head.len() + tail.len() >= text.len() {
                    text.into()
                } else {
                    format!("{head} {tail}").into()
                }
            }
        };
        let ids = self.encode_all(&cut)?;
        if ids.len() <= max {
            return Ok(ids);
        }
        // The post-processor put [CLS] first and [SEP] last; both survive.
        Ok(match self.opts.truncation {
            Truncation::Head => {
                let mut kept = ids[..max - 1].to_vec();
                kept.extend(ids.last());
                kept
            }
            Truncation::HeadAndTail => {
                let head = max.div_ceil(2);
                let tail = max - head;
                let mut kept = ids[..head].to_vec();
                kept.extend_from_slice(&ids[ids.len() - tail..]);
                kept
            }
        })
    }

    /// How many tokens `text` has in full, special tokens included; more than
    /// `max_tokens` means the model sees a truncated text.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        Ok(self.encode_all(text)?.len())
    }

    fn encode_all(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(EmbedError::tokenizer("encoding a text"))?;
        Ok(encoding.get_ids().to_vec())
    }

    fn embed_here(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids = texts
            .iter()
            .map(|t| self.token_ids(t))
            .collect::<Result<Vec<_>, _>>()?;
        // Similar lengths share a batch, so little compute goes to padding.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); ids.len()];
        for batch in order.chunks(self.opts.batch_size) {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
            for (&i, embedding) in batch.iter().zip(self.forward(&rows)?) {
                out[i] = embedding;
            }
        }
        Ok(out)
    }

    /// One forward pass over a batch of token-id rows, padded to the longest.
    fn forward(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let err = EmbedError::model;
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut flat_ids = Vec::with_capacity(rows.len() * width);
        let mut flat_mask = Vec::with_capacity(rows.len() * width);
        for row in rows {
            flat_ids.extend_from_slice(row);
            flat_ids.extend(std::iter::repeat_n(self.pad_id, width - row.len()));
            flat_mask.extend(std::iter::repeat_n(1u32, row.len()));
            flat_mask.extend(std::iter::repeat_n(0u32, width - row.len()));
        }
        let shape = (rows.len(), width);
        let ids =
            Tensor::from_vec(flat_ids, shape, &self.device).map_err(err("building input ids"))?;
        let mask = Tensor::from_vec(flat_mask, shape, &self.device)
            .map_err(err("building attention mask"))?;
        let token_types = ids.zeros_like().map_err(err("building token types"))?;
        let hidden = self
            .model
            .forward(&ids, &token_types, Some(&mask))
            .map_err(err("forward pass"))?;
        // Mean over real tokens: padded positions are zeroed by the mask and
        // left out of the count.
        let mask = mask
            .to_dtype(DType::F32)
            .and_then(|m| m.unsqueeze(2))
            .map_err(err("pooling"))?;
        let pooled = hidden
            .broadcast_mul(&mask)
            .and_then(|h| h.sum(1))
            .and_then(|sum| sum.broadcast_div(&mask.sum(1)?))
            .map_err(err("pooling"))?;
        let unit = pooled
            .sqr()
            .and_then(|s| s.sum_keepdim(1))
            .and_then(|s| s.sqrt())
            .and_then(|n| n.clamp(1e-12f32, f32::MAX))
            .and_then(|n| pooled.broadcast_div(&n))
            .map_err(err("normalising"))?;
        unit.to_device(&Device::Cpu)
            .and_then(|u| u.to_vec2::<f32>())
            .map_err(err("reading embeddings"))
    }
}

/// `dir/tokenizer.json` with its padding and truncation turned off: the shipped
/// tokenizer pads every text to 128; cutting and padding are done by the callers.
/// A model directory's `config.json`, parsed and as bytes (for copying it elsewhere).
pub(crate) fn read_config(dir: &Path) -> Result<(Config, Vec<u8>), EmbedError> {
    let path = dir.join("config.json");
    let text = fs::read(&path).map_err(|e| EmbedError::io("reading", &path, e))?;
    let config = serde_json::from_slice(&text).map_err(|source| EmbedError::Config {
        path: path.clone(),
        source,
    })?;
    Ok((config, text))
}

/// A model directory's `model.safetensors` as a variable builder, and its path.
pub(crate) fn read_weights(
    dir: &Path,
    device: &Device,
) -> Result<(VarBuilder<'static>, std::path::PathBuf), EmbedError> {
    let path = dir.join("model.safetensors");
    // Read, not mmapped: mmap needs `unsafe`, and 90 MB is read once.
    let weights = fs::read(&path).map_err(|e| EmbedError::io("reading", &path, e))?;
    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, device)
        .map_err(EmbedError::model(path.display().to_string()))?;
    Ok((vb, path))
}

pub(crate) fn load_tokenizer(dir: &Path) -> Result<Tokenizer, EmbedError> {
    let path = dir.join("tokenizer.json");
    let mut tokenizer =
        Tokenizer::from_file(&path).map_err(EmbedError::tokenizer(path.display().to_string()))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(EmbedError::tokenizer("disabling truncation"))?;
    Ok(tokenizer)
}

/// The longest prefix of `s` with at most `n` chars.
pub(crate) fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// The longest suffix of `s` with at most `n` chars.
pub(crate) fn suffix_chars(s: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    match s.char_indices().rev().nth(n - 1) {
        Some((at, _)) => &s[at..],
        None => s,
    }
}

impl TextEncoder for Embedder {
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed(texts)
    }

    fn info(&self) -> crate::classifier::EmbeddingInfo {
        crate::classifier::EmbeddingInfo {
            model: self.name.clone(),
            dim: self.dim,
            max_tokens: self.opts.max_tokens,
            truncation: match self.opts.truncation {
                Truncation::Head => "head".into(),
                Truncation::HeadAndTail => "head_and_tail".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_cuts_respect_boundaries() {
        assert_eq!(prefix_chars("héllo", 2), "hé");
        assert_eq!(prefix_chars("hé", 5), "hé");
        assert_eq!(suffix_chars("héllo", 4), "éllo");
        assert_eq!(suffix_chars("ab", 5), "ab");
        assert_eq!(suffix_chars("ab", 0), "");
    }
}
