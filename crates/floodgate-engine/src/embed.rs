//! Text features from a generative model: the mean of its last hidden layer over a text's
//! tokens (llama.cpp's embeddings mode with mean pooling).
//!
//! Why: a linear probe on a language model's hidden states separates implicit,
//! in-register toxicity (ToxiGen-style statements about groups) better than a
//! sentence-embedding encoder does, fine-tuned or not, because the model has read far
//! more of that kind of text. The guard uses it for toxicity on the moderation path
//! (`floodgate guard train --toxicity-probe`).
//!
//! The embedder has no scheduler: each call makes a small context of its own (a few MB of
//! KV cache for a few hundred tokens), decodes the texts in batches of whole sequences,
//! and frees it. The model file is memory-mapped, so a model the engine also serves is in
//! memory once.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

use crate::engine::backend;
use crate::EngineError;

/// How texts are cut and batched.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmEmbedOptions {
    /// Tokens read per text (after the BOS token); longer texts keep their first
    /// `max_tokens`.
    pub max_tokens: u32,
    /// Tokens decoded per step, summed over the texts in it.
    pub batch_tokens: u32,
    /// CPU threads (default: all cores).
    pub threads: Option<u32>,
    /// Layers offloaded to a GPU in a GPU build.
    pub gpu_layers: u32,
}

impl Default for LlmEmbedOptions {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            batch_tokens: 1024,
            threads: None,
            gpu_layers: 0,
        }
    }
}

/// A GGUF model loaded for features.
pub struct LlmEmbedder {
    model: LlamaModel,
    path: PathBuf,
    options: LlmEmbedOptions,
    add_bos: bool,
}

impl std::fmt::Debug for LlmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmEmbedder")
            .field("path", &self.path)
            .field("dim", &self.dim())
            .finish()
    }
}

impl LlmEmbedder {
    /// Loads the model file. Blocking.
    pub fn load(path: &Path, options: LlmEmbedOptions) -> Result<Self, EngineError> {
        let load_err = |reason: String| EngineError::Load {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(load_err("no such file".into()));
        }
        if options.max_tokens == 0 || options.batch_tokens <= options.max_tokens {
            return Err(load_err(format!(
                "batch_tokens ({}) must exceed max_tokens ({}) and max_tokens must be positive",
                options.batch_tokens, options.max_tokens
            )));
        }
        let params = LlamaModelParams::default().with_n_gpu_layers(options.gpu_layers);
        let model = LlamaModel::load_from_file(backend()?, path, &params)
            .map_err(|e| load_err(e.to_string()))?;
        let vocab = model.vocab();
        let add_bos = vocab.should_add_bos() && vocab.bos().0 >= 0;
        Ok(Self {
            model,
            path: path.to_path_buf(),
            options,
            add_bos,
        })
    }

    /// Width of each feature vector (the model's hidden size).
    pub fn dim(&self) -> usize {
        usize::try_from(self.model.n_embd()).unwrap_or(0)
    }

    /// The model file this embedder reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tokens(&self, text: &str) -> Vec<llama_cpp_2::token::LlamaToken> {
        let vocab = self.model.vocab();
        let mut out = Vec::new();
        if self.add_bos {
            out.push(vocab.bos());
        }
        let body = vocab.tokenize(text.as_bytes(), false, false);
        out.extend(body.into_iter().take(self.options.max_tokens as usize));
        if out.is_empty() {
            // A model without BOS and an empty text: one space stands for it.
            out.extend(vocab.tokenize(b" ", false, false));
        }
        out
    }

    /// One mean-pooled last-layer vector per text, in order. Blocking (milliseconds to
    /// tenths of a second per text on a CPU, with the model's size).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokenized: Vec<_> = texts.iter().map(|t| self.tokens(t)).collect();
        let lens: Vec<usize> = tokenized.iter().map(Vec::len).collect();
        let batches = plan_batches(
            &lens,
            self.options.batch_tokens as usize,
            MAX_TEXTS_PER_BATCH,
        );
        // A power of two: llama.cpp reserves its graph for `n_ctx / n_seq_max` tokens per
        // sequence and fails an assertion in mean pooling when that division has a remainder.
        let max_seqs = batches
            .iter()
            .map(|r| r.len())
            .max()
            .unwrap_or(1)
            .next_power_of_two();
        let threads = self.options.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get() as i32),
            |t| t as i32,
        );
        // llama.cpp pads the KV cache to a multiple of 256 cells; a context of another size
        // fails an assertion in mean pooling (seen with 1025), so ask for the padded size.
        let n_ctx = self.options.batch_tokens.div_ceil(256) * 256;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx)
            .with_n_ubatch(n_ctx)
            .with_n_seq_max(max_seqs as u32)
            // One KV pool for all texts of a batch (per-sequence streams would split it).
            .with_kv_unified(true)
            .with_embeddings(true)
            .with_pooling_type(LlamaPoolingType::Mean)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let decode_err = |e: String| EngineError::Decode(format!("embedding: {e}"));
        let mut ctx = self
            .model
            .new_context(backend()?, params)
            .map_err(|e| decode_err(e.to_string()))?;
        let mut out = Vec::with_capacity(texts.len());
        let mut batch = LlamaBatch::new(n_ctx as usize, max_seqs as i32);
        for range in batches {
            batch.clear();
            ctx.clear_kv_cache();
            for (seq, tokens) in tokenized[range.clone()].iter().enumerate() {
                batch
                    .add_sequence(tokens, seq as i32, true)
                    .map_err(|e| decode_err(e.to_string()))?;
            }
            ctx.decode(&mut batch)
                .map_err(|e| decode_err(e.to_string()))?;
            for seq in 0..range.len() {
                let v = ctx
                    .embeddings_seq_ith(seq as i32)
                    .map_err(|e| decode_err(e.to_string()))?;
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(decode_err("the model produced a non-finite value".into()));
                }
                out.push(v.to_vec());
            }
        }
        Ok(out)
    }
}

/// Texts decoded together at most (llama.cpp allows 256 sequences; a power of two).
const MAX_TEXTS_PER_BATCH: usize = 64;

/// Consecutive runs of at most `max_texts` whole texts whose token counts sum to at most
/// `limit` (a longer text gets a run of its own).
fn plan_batches(lens: &[usize], limit: usize, max_texts: usize) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut used) = (0, 0usize);
    for (i, len) in lens.iter().enumerate() {
        if (used + len > limit || i - start >= max_texts) && i > start {
            batches.push(start..i);
            (start, used) = (i, 0);
        }
        used += len;
    }
    batches.push(start..lens.len());
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_test_support::tiny_llama::{write_tiny_llama, TinyModelOptions};

    fn tiny() -> (tempfile::TempDir, LlmEmbedder) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_llama(&path, &TinyModelOptions::default()).unwrap();
        let e = LlmEmbedder::load(
            &path,
            LlmEmbedOptions {
                max_tokens: 16,
                batch_tokens: 20,
                threads: Some(1),
                gpu_layers: 0,
            },
        )
        .unwrap();
        (dir, e)
    }

    /// The real llama.cpp path on a random-weight model: one vector per text of the
    /// model's width, the same vector for a text whatever batch it is decoded in (so
    /// sequences do not see each other), different vectors for different texts, over
    /// more than one batch (20 tokens hold two or three of these texts).
    #[test]
    fn each_text_gets_its_own_vector_whatever_it_is_batched_with() {
        let (_dir, e) = tiny();
        assert!(e.dim() > 0);
        let texts = [
            "hello world",
            "the cat sat on the mat",
            "hello world",
            "",
            "a much longer text that goes past the token limit of sixteen tokens for sure, \
             with more and more words after it",
            "and a sixth",
        ];
        let all = e.embed(&texts).unwrap();
        assert_eq!(all.len(), texts.len());
        assert!(all.iter().all(|v| v.len() == e.dim()));
        let cos = |a: &[f32], b: &[f32]| {
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            dot / (n(a) * n(b))
        };
        // Batch layout changes the order of floating-point sums (and a random-weight model
        // amplifies that), so "the same" is a cosine near 1; two different texts are far apart.
        assert!(cos(&all[0], &all[2]) > 0.95, "same text, same vector");
        assert!(
            cos(&all[0], &all[1]) < 0.8,
            "different texts, different vectors"
        );
        for (i, t) in texts.iter().enumerate() {
            let alone = e.embed(&[t]).unwrap().pop().unwrap();
            let c = cos(&alone, &all[i]);
            assert!(
                c > 0.95,
                "text {i} alone is not the vector it gets in a batch: cosine {c}"
            );
        }
        assert!(e.embed(&[]).unwrap().is_empty());

        // All six in one batch: six sequences in a 512-cell context (llama.cpp aborts the
        // process on this unless the sequence count is rounded to a power of two).
        let one_batch = LlmEmbedder::load(
            e.path(),
            LlmEmbedOptions {
                batch_tokens: 300,
                ..e.options.clone()
            },
        )
        .unwrap();
        let again = one_batch.embed(&texts).unwrap();
        assert_eq!(again.len(), texts.len());
        for (i, v) in again.iter().enumerate() {
            let c = cos(v, &all[i]);
            assert!(c > 0.95, "text {i} in one batch: cosine {c}");
        }
    }

    #[test]
    fn texts_are_batched_whole_up_to_the_token_limit() {
        assert_eq!(plan_batches(&[3, 7, 3, 1, 17], 40, 64), vec![0..5]);
        assert_eq!(plan_batches(&[3, 7, 3, 1, 17], 20, 64), vec![0..4, 4..5]);
        assert_eq!(plan_batches(&[10, 10, 10], 20, 64), vec![0..2, 2..3]);
        assert_eq!(plan_batches(&[25, 5], 20, 64), vec![0..1, 1..2]);
        assert_eq!(plan_batches(&[4], 20, 64), vec![0..1]);
        assert_eq!(plan_batches(&[1; 5], 100, 2), vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn bad_options_and_missing_files_are_load_errors() {
        let err = LlmEmbedder::load(Path::new("/nonexistent.gguf"), LlmEmbedOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_llama(&path, &TinyModelOptions::default()).unwrap();
        let err = LlmEmbedder::load(
            &path,
            LlmEmbedOptions {
                max_tokens: 64,
                batch_tokens: 64,
                ..LlmEmbedOptions::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("must exceed"), "{err}");
    }
}
