//! Static sentence embeddings distilled from the encoder: a fast first stage.
//!
//! Running all-MiniLM-L6-v2 costs 8–70 ms per prompt on two CPU cores, far
//! over a guard's budget of a few milliseconds. A static embedder keeps one
//! vector per vocabulary token, computed once by running the encoder on that
//! token alone (`[CLS] token [SEP]`, mean-pooled, as a one-word sentence);
//! a text's embedding is then the weighted mean of its tokens' vectors,
//! L2-normalised. This is the distillation that Model2Vec (Minish Lab, 2024)
//! published: it keeps most of the encoder's lexical semantics (synonyms,
//! topic, language) and loses word order and context. Its cost is one table
//! lookup per token — microseconds for a long prompt — so it can see the whole
//! text instead of the first 128 tokens.
//!
//! Token weights: a token that occurs in most texts says little about any of
//! them. [`StaticEmbedder::fit_weights`] sets each token's weight to its
//! smoothed inverse document frequency over a corpus (the training texts);
//! tokens never seen weigh as the rarest seen ones. Without a corpus every
//! token weighs 1.
//!
//! The table is stored as a safetensors file beside the classifier heads
//! (`embeddings` `[vocab, dim]` f32 and `weights` `[vocab]` f32), with the
//! encoder's `tokenizer.json` read from the model cache at load time.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use crate::classifier::EmbeddingInfo;
use crate::encoder::Embedder;
use crate::error::EmbedError;
use crate::{TextEncoder, STATIC_ENCODER_SUFFIX};

/// Rows per forward pass while distilling.
const DISTILL_BATCH: usize = 512;

/// A vocabulary-sized table of token vectors and weights, and the tokenizer
/// that maps text to its rows.
pub struct StaticEmbedder {
    tokenizer: Tokenizer,
    /// `vocab × dim`, row-major.
    table: Vec<f32>,
    weights: Vec<f32>,
    dim: usize,
    /// Token ids that never contribute (`[CLS]`, `[SEP]`, `[PAD]`, ...).
    special: Vec<bool>,
    /// A text is cut to this many tokens (head and tail kept).
    max_tokens: usize,
    /// The encoder it was distilled from (the model directory's name).
    name: String,
}

impl std::fmt::Debug for StaticEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticEmbedder")
            .field("vocab", &self.weights.len())
            .field("dim", &self.dim)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

/// Default cut: 2,048 tokens is about 8,000 characters of English, more than
/// most prompts, and costs well under a millisecond.
pub const STATIC_MAX_TOKENS: usize = 2048;

impl StaticEmbedder {
    /// Runs `encoder` once per vocabulary token; `progress(done, total)` is
    /// called after every batch. ~30k tokens take tens of seconds on 2 cores.
    pub fn distill(
        encoder: &Embedder,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<StaticEmbedder, EmbedError> {
        let tokenizer = encoder.tokenizer().clone();
        let vocab = tokenizer.get_vocab_size(true);
        let (cls, sep) = (
            special_id(&tokenizer, "[CLS]")?,
            special_id(&tokenizer, "[SEP]")?,
        );
        let dim = encoder.dim();
        let mut table = Vec::with_capacity(vocab * dim);
        let ids: Vec<u32> = (0..u32::try_from(vocab).unwrap_or(u32::MAX)).collect();
        for chunk in ids.chunks(DISTILL_BATCH) {
            let rows: Vec<[u32; 3]> = chunk.iter().map(|&id| [cls, id, sep]).collect();
            let refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
            for v in encoder.forward_ids(&refs)? {
                table.extend_from_slice(&v);
            }
            progress(table.len() / dim, vocab);
        }
        Ok(StaticEmbedder {
            special: special_mask(&tokenizer, vocab),
            tokenizer,
            table,
            weights: vec![1.0; vocab],
            dim,
            max_tokens: STATIC_MAX_TOKENS,
            name: encoder.name().to_string(),
        })
    }

    /// Sets token weights to smoothed IDF over `corpus`: `ln((1 + N) / (1 + df)) + 1`.
    pub fn fit_weights<'a>(
        &mut self,
        corpus: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), EmbedError> {
        let mut df = vec![0u32; self.weights.len()];
        let mut n = 0u32;
        for text in corpus {
            let mut ids = self.token_ids(text)?;
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                if let Some(d) = df.get_mut(id as usize) {
                    *d += 1;
                }
            }
            n += 1;
        }
        let n = n as f32;
        for (w, &d) in self.weights.iter_mut().zip(&df) {
            // Unseen tokens (d = 0) weigh as the rarest seen ones.
            *w = ((1.0 + n) / (1.0 + d.max(1) as f32)).ln() + 1.0;
        }
        Ok(())
    }

    /// Loads a table written by [`save`](Self::save), with the encoder's
    /// tokenizer from `model_dir` (its `tokenizer.json`).
    pub fn load(table_path: &Path, model_dir: &Path) -> Result<StaticEmbedder, EmbedError> {
        let tokenizer = crate::encoder::load_tokenizer(model_dir)?;
        let tensors = candle_core::safetensors::load(table_path, &Device::Cpu)
            .map_err(EmbedError::model(table_path.display().to_string()))?;
        let get = |name: &str| {
            tensors.get(name).ok_or_else(|| {
                EmbedError::Invalid(format!("{} has no `{name}` tensor", table_path.display()))
            })
        };
        let table = get("embeddings")?;
        let (vocab, dim) = table
            .dims2()
            .map_err(EmbedError::model("reading the table's shape"))?;
        let table = table
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(EmbedError::model("reading the table"))?;
        let weights = get("weights")?
            .to_vec1::<f32>()
            .map_err(EmbedError::model("reading the weights"))?;
        if weights.len() != vocab || tokenizer.get_vocab_size(true) != vocab {
            return Err(EmbedError::Invalid(format!(
                "{}: {vocab} rows, {} weights, tokenizer vocabulary {}",
                table_path.display(),
                weights.len(),
                tokenizer.get_vocab_size(true)
            )));
        }
        Ok(StaticEmbedder {
            special: special_mask(&tokenizer, vocab),
            tokenizer,
            table,
            weights,
            dim,
            max_tokens: STATIC_MAX_TOKENS,
            name: model_dir.file_name().map_or_else(
                || model_dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        })
    }

    /// Writes the table and weights as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), EmbedError> {
        let vocab = self.weights.len();
        let err = EmbedError::model(path.display().to_string());
        let table = Tensor::from_slice(&self.table, (vocab, self.dim), &Device::Cpu)
            .map_err(EmbedError::model("building the table"))?;
        let weights = Tensor::from_slice(&self.weights, vocab, &Device::Cpu)
            .map_err(EmbedError::model("building the weights"))?;
        let tensors = HashMap::from([
            ("embeddings".to_string(), table),
            ("weights".to_string(), weights),
        ]);
        candle_core::safetensors::save(&tensors, path).map_err(err)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Cuts texts to `max_tokens` (at least 2), keeping head and tail.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = max_tokens.max(2);
        self
    }

    /// The token ids that contribute to `text`'s embedding (special tokens
    /// left out, head and tail kept when longer than `max_tokens`).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        // ~32 characters per token bounds the tokenizer's work on huge texts.
        let budget = self.max_tokens.saturating_mul(32);
        let cut: std::borrow::Cow<'_, str> = if text.len() > budget {
            let head = crate::encoder::prefix_chars(text, budget / 2);
            let tail = crate::encoder::suffix_chars(text, budget / 2);
            format!("{head} {tail}").into()
        } else {
            text.into()
        };
        let encoding = self
            .tokenizer
            .encode(cut.as_ref(), false)
            .map_err(EmbedError::tokenizer("encoding a text"))?;
        let mut ids: Vec<u32> = encoding
            .get_ids()
            .iter()
            .copied()
            .filter(|&id| !self.special.get(id as usize).copied().unwrap_or(true))
            .collect();
        if ids.len() > self.max_tokens {
            let head = self.max_tokens.div_ceil(2);
            let tail = self.max_tokens - head;
            ids.drain(head..ids.len() - tail);
        }
        Ok(ids)
    }

    /// The unit-length embedding of `text`; all zeros when it has no tokens.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let ids = self.token_ids(text)?;
        let mut out = vec![0f32; self.dim];
        for id in ids {
            let id = id as usize;
            let w = self.weights.get(id).copied().unwrap_or(0.0);
            if let Some(row) = self.table.get(id * self.dim..(id + 1) * self.dim) {
                for (o, x) in out.iter_mut().zip(row) {
                    *o += w * x;
                }
            }
        }
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 1e-12 {
            out.iter_mut().for_each(|x| *x /= norm);
        }
        Ok(out)
    }

    /// One embedding per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        texts.iter().map(|t| self.embed_one(t)).collect()
    }
}

impl TextEncoder for StaticEmbedder {
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed(texts)
    }

    fn info(&self) -> EmbeddingInfo {
        EmbeddingInfo {
            model: format!("{}{STATIC_ENCODER_SUFFIX}", self.name),
            dim: self.dim,
            max_tokens: self.max_tokens,
            truncation: "head_and_tail".into(),
        }
    }
}

fn special_id(tokenizer: &Tokenizer, token: &str) -> Result<u32, EmbedError> {
    tokenizer
        .token_to_id(token)
        .ok_or_else(|| EmbedError::Invalid(format!("the tokenizer has no {token} token")))
}

/// True for ids of added special tokens (`[CLS]`, `[SEP]`, `[PAD]`, `[MASK]`, `[UNK]`).
fn special_mask(tokenizer: &Tokenizer, vocab: usize) -> Vec<bool> {
    let mut mask = vec![false; vocab];
    for (id, added) in tokenizer.get_added_tokens_decoder() {
        if added.special {
            if let Some(m) = mask.get_mut(id as usize) {
                *m = true;
            }
        }
    }
    mask
}
