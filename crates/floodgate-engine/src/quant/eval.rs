//! Measuring one model variant: the work of one evaluation process.
//!
//! An [`EvalJob`] runs one [`Phase`]:
//!
//! - [`Phase::Speed`]: after a short warm-up, the time of one forward pass over
//!   `ctx` corpus tokens (prefill) and of 64 greedy single-token decodes
//!   (decode), each the fastest of [`SPEED_RUNS`] runs, and the process' peak
//!   resident memory at the end. Run it in a
//!   fresh process so that the peak belongs to this variant alone.
//! - [`Phase::Quality`]: perplexity over the first `chunks` chunks of `ctx`
//!   corpus tokens. As in llama.cpp's `llama-perplexity`, each chunk starts from
//!   an empty KV cache (with BOS in its first position when the model adds one)
//!   and only the second half of it is scored, so that every scored token has at
//!   least `ctx / 2` tokens of context. With [`Reference::Write`] the
//!   log-probabilities of every scored position are saved; with
//!   [`Reference::Compare`] they are read back and the KL divergence and top-1
//!   agreement are computed position by position.
//!
//! The reference file holds `n_vocab` `f32` per scored position (about
//! 50 MB per 512-token chunk for a 49k vocabulary), so it lives in a temporary
//! directory for the length of one report.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};

use super::metrics::{argmax, kl_divergence, log_softmax, QualityTotals};
use super::{peak_rss_bytes, QuantError};

/// The evaluation corpus that ships with the engine (see `corpus/README.md`):
/// US public-domain founding documents, about 13 KB (some 3,000 tokens with a 49k
/// BPE vocabulary, five 512-token chunks).
pub const CORPUS: &str = include_str!("../../corpus/eval.txt");

/// Greedy tokens generated for the decode measurement.
pub const DECODE_TOKENS: u32 = 64;
/// Timed runs of prefill and of decode; the fastest of each is reported.
pub const SPEED_RUNS: u32 = 3;
/// Prompt tokens before the decode measurement.
const DECODE_PROMPT_TOKENS: usize = 32;

/// What an evaluation process measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Prefill and decode throughput, and peak memory.
    Speed,
    /// Perplexity, and KL divergence and top-1 agreement against a reference.
    Quality,
}

/// What a quality run does with reference log-probabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// This model is the reference: write its log-probabilities here.
    Write(PathBuf),
    /// Compare with the log-probabilities written here.
    Compare(PathBuf),
}

/// One evaluation of one model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalJob {
    /// The GGUF file.
    pub model: PathBuf,
    /// What to measure.
    pub phase: Phase,
    /// Tokens per chunk and context size (at least 128).
    pub ctx: u32,
    /// Quality: chunks to score (0: as many as the corpus holds).
    pub chunks: u32,
    /// CPU threads (0: one per core).
    pub threads: u32,
    /// Quality: the reference log-probabilities to write or compare with.
    pub reference: Option<Reference>,
    /// A corpus file to use instead of [`CORPUS`].
    pub corpus: Option<PathBuf>,
}

/// Throughput and memory of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedResult {
    /// Tokens in the timed forward pass (= `ctx`).
    pub prefill_tokens: u32,
    /// Prefill throughput.
    pub prefill_tokens_per_s: f64,
    /// Tokens in the timed greedy decode.
    pub decode_tokens: u32,
    /// Decode throughput, single sequence.
    pub decode_tokens_per_s: f64,
    /// Peak resident memory of the process (`None` without procfs).
    pub peak_rss_bytes: Option<u64>,
}

/// Quality of one variant on the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityResult {
    /// Chunks scored.
    pub chunks: u32,
    /// Positions scored.
    pub scored_tokens: u64,
    /// `exp(mean NLL)` of the scored next tokens.
    pub perplexity: f64,
    /// Mean `KL(reference || this)` in nats ([`Reference::Compare`] only).
    pub mean_kl: Option<f64>,
    /// Share of positions with the reference's top-1 token ([`Reference::Compare`] only).
    pub top1_agreement: Option<f64>,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: Option<u64>,
}

/// What an evaluation produced: one of the two, by phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalOutput {
    /// From [`Phase::Speed`].
    Speed(SpeedResult),
    /// From [`Phase::Quality`].
    Quality(QualityResult),
}

impl EvalJob {
    /// The job as one line of JSON (for a worker process' command line).
    ///
    /// # Errors
    /// Never in practice; serialization of these types cannot fail.
    pub fn to_json(&self) -> Result<String, QuantError> {
        serde_json::to_string(self).map_err(|e| QuantError::Worker(e.to_string()))
    }

    /// Parses [`EvalJob::to_json`]'s output.
    ///
    /// # Errors
    /// The text is not a job.
    pub fn from_json(text: &str) -> Result<Self, QuantError> {
        serde_json::from_str(text).map_err(|e| QuantError::Worker(format!("bad job: {e}")))
    }
}

impl EvalOutput {
    /// The output as one line of JSON (a worker's stdout).
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_json(&self) -> Result<String, QuantError> {
        serde_json::to_string(self).map_err(|e| QuantError::Worker(e.to_string()))
    }

    /// Parses [`EvalOutput::to_json`]'s output.
    ///
    /// # Errors
    /// The text is not an output.
    pub fn from_json(text: &str) -> Result<Self, QuantError> {
        serde_json::from_str(text).map_err(|e| QuantError::Worker(format!("bad output: {e}")))
    }
}

/// Runs one evaluation in this process. Blocking; loads the model and drops it
/// at the end.
///
/// # Errors
/// The model does not load, a forward pass fails, the corpus is too short for
/// one chunk, or the reference file does not match.
pub fn run(job: &EvalJob) -> Result<EvalOutput, QuantError> {
    if job.ctx < 128 {
        return Err(QuantError::Eval(format!("--ctx {} is below 128", job.ctx)));
    }
    let corpus = match &job.corpus {
        Some(path) => std::fs::read_to_string(path).map_err(|e| QuantError::io(path, e))?,
        None => CORPUS.to_owned(),
    };
    let backend = crate::engine::backend().map_err(|e| load_error(&job.model, e.to_string()))?;
    let model = LlamaModel::load_from_file(backend, &job.model, &LlamaModelParams::default())
        .map_err(|e| load_error(&job.model, e.to_string()))?;
    let threads = if job.threads == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        job.threads as usize
    };
    let threads = i32::try_from(threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(job.ctx))
        .with_n_batch(job.ctx)
        .with_n_ubatch(job.ctx)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model
        .new_context(backend, params)
        .map_err(|e| load_error(&job.model, e.to_string()))?;
    let vocab = model.vocab();
    let tokens = vocab.tokenize(corpus.as_bytes(), false, false);
    let bos = (vocab.should_add_bos() && vocab.bos().0 >= 0).then(|| vocab.bos());
    let n_ctx = job.ctx as usize;
    if tokens.len() < n_ctx {
        return Err(QuantError::CorpusTooShort {
            tokens: tokens.len(),
            needed: n_ctx,
            ctx: job.ctx,
        });
    }
    let mut eval = Evaluator {
        ctx: &mut ctx,
        batch: LlamaBatch::new(n_ctx, 1),
        bos,
        n_vocab: usize::try_from(model.n_vocab()).unwrap_or(0),
    };
    match job.phase {
        Phase::Speed => eval.speed(&tokens[..n_ctx]).map(EvalOutput::Speed),
        Phase::Quality => {
            let available = tokens.len() / n_ctx;
            let chunks = if job.chunks == 0 {
                available
            } else {
                available.min(job.chunks as usize)
            };
            eval.quality(&tokens[..chunks * n_ctx], n_ctx, job.reference.as_ref())
                .map(EvalOutput::Quality)
        }
    }
}

fn load_error(path: &Path, reason: String) -> QuantError {
    QuantError::Load {
        path: path.display().to_string(),
        reason,
    }
}

fn eval_error(e: impl std::fmt::Display) -> QuantError {
    QuantError::Eval(e.to_string())
}

struct Evaluator<'a, 'm> {
    ctx: &'a mut LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    bos: Option<LlamaToken>,
    n_vocab: usize,
}

impl Evaluator<'_, '_> {
    /// Clears the KV cache and runs `tokens` from position 0 (BOS first when the
    /// model adds one), with logits for the positions `wants_logits` selects.
    fn forward(
        &mut self,
        tokens: &[LlamaToken],
        wants_logits: impl Fn(usize) -> bool,
    ) -> Result<(), QuantError> {
        self.ctx.clear_kv_cache();
        self.batch.clear();
        for (i, &token) in tokens.iter().enumerate() {
            let token = match (i, self.bos) {
                (0, Some(bos)) => bos,
                _ => token,
            };
            let pos = i32::try_from(i).map_err(eval_error)?;
            self.batch
                .add(token, pos, &[0], wants_logits(i))
                .map_err(eval_error)?;
        }
        self.ctx.decode(&mut self.batch).map_err(eval_error)
    }

    fn speed(&mut self, tokens: &[LlamaToken]) -> Result<SpeedResult, QuantError> {
        let n = tokens.len();
        // Warm-up: pages the weights in and sizes the compute buffers, so the
        // timed passes measure arithmetic rather than first-touch costs.
        self.forward(&tokens[..DECODE_PROMPT_TOKENS.min(n)], |i| {
            i + 1 == DECODE_PROMPT_TOKENS.min(n)
        })?;
        let prompt = DECODE_PROMPT_TOKENS.min(n.saturating_sub(DECODE_TOKENS as usize + 1));
        if prompt == 0 {
            return Err(QuantError::Eval(
                "context too small to time decoding".into(),
            ));
        }
        // The best of a few runs: on a shared machine, the slower runs measure
        // the other tenants.
        let mut prefill_s = f64::INFINITY;
        let mut decode_s = f64::INFINITY;
        for _ in 0..SPEED_RUNS {
            prefill_s = prefill_s.min(self.time_prefill(tokens)?);
            decode_s = decode_s.min(self.time_decode(&tokens[..prompt])?);
        }
        Ok(SpeedResult {
            prefill_tokens: u32::try_from(n).unwrap_or(u32::MAX),
            prefill_tokens_per_s: n as f64 / prefill_s.max(1e-9),
            decode_tokens: DECODE_TOKENS,
            decode_tokens_per_s: f64::from(DECODE_TOKENS) / decode_s.max(1e-9),
            peak_rss_bytes: peak_rss_bytes(),
        })
    }

    /// Seconds for one forward pass over `tokens` from an empty cache.
    fn time_prefill(&mut self, tokens: &[LlamaToken]) -> Result<f64, QuantError> {
        let n = tokens.len();
        let started = Instant::now();
        self.forward(tokens, |i| i + 1 == n)?;
        let last = i32::try_from(n - 1).map_err(eval_error)?;
        // Reading the logits waits for the pass to finish on asynchronous backends.
        let _ = self.ctx.get_logits_ith(last);
        Ok(started.elapsed().as_secs_f64())
    }

    /// Seconds for [`DECODE_TOKENS`] greedy single-token steps after `prompt`
    /// (the prompt's own forward pass is not timed).
    fn time_decode(&mut self, prompt: &[LlamaToken]) -> Result<f64, QuantError> {
        let len = prompt.len();
        self.forward(prompt, |i| i + 1 == len)?;
        let mut last = i32::try_from(len - 1).map_err(eval_error)?;
        let first_pos = last + 1;
        let started = Instant::now();
        for pos in first_pos..first_pos + DECODE_TOKENS.cast_signed() {
            let next = argmax(self.ctx.get_logits_ith(last));
            let next = LlamaToken(i32::try_from(next).map_err(eval_error)?);
            self.batch.clear();
            self.batch.add(next, pos, &[0], true).map_err(eval_error)?;
            self.ctx.decode(&mut self.batch).map_err(eval_error)?;
            last = 0;
        }
        let _ = self.ctx.get_logits_ith(0);
        Ok(started.elapsed().as_secs_f64())
    }

    fn quality(
        &mut self,
        tokens: &[LlamaToken],
        n_ctx: usize,
        reference: Option<&Reference>,
    ) -> Result<QualityResult, QuantError> {
        let chunks = tokens.len() / n_ctx;
        let header = RefHeader {
            n_vocab: u32::try_from(self.n_vocab).map_err(eval_error)?,
            n_ctx: u32::try_from(n_ctx).map_err(eval_error)?,
            chunks: u32::try_from(chunks).map_err(eval_error)?,
            tokens_hash: tokens_hash(tokens),
        };
        let mut writer = None;
        let mut reader = None;
        match reference {
            Some(Reference::Write(path)) => writer = Some(RefWriter::create(path, &header)?),
            Some(Reference::Compare(path)) => reader = Some(RefReader::open(path, &header)?),
            None => {}
        }
        // Score positions first..n_ctx-1; position i predicts token i + 1.
        let first = n_ctx / 2;
        let mut totals = QualityTotals::default();
        let mut reference_row = Vec::new();
        for chunk in tokens.chunks_exact(n_ctx) {
            self.forward(chunk, |i| i >= first && i + 1 < n_ctx)?;
            for i in first..n_ctx - 1 {
                let logits = self
                    .ctx
                    .get_logits_ith(i32::try_from(i).map_err(eval_error)?);
                let logprobs = log_softmax(logits);
                let next = usize::try_from(chunk[i + 1].0).map_err(eval_error)?;
                let lp = logprobs.get(next).copied().ok_or_else(|| {
                    QuantError::Eval(format!("token {next} is outside the vocabulary"))
                })?;
                totals.add_token(lp);
                if let Some(w) = writer.as_mut() {
                    w.write_row(&logprobs)?;
                }
                if let Some(r) = reader.as_mut() {
                    r.read_row(&mut reference_row)?;
                    let kl = kl_divergence(&reference_row, &logprobs);
                    totals.add_comparison(kl, argmax(&reference_row) == argmax(&logprobs));
                }
            }
        }
        if let Some(w) = writer {
            w.finish()?;
        }
        Ok(QualityResult {
            chunks: header.chunks,
            scored_tokens: totals.tokens(),
            perplexity: totals.perplexity(),
            mean_kl: totals.mean_kl(),
            top1_agreement: totals.top1_agreement(),
            peak_rss_bytes: peak_rss_bytes(),
        })
    }
}

/// FNV-1a over the token ids, so that a reference written for other tokens
/// (another tokenizer, corpus or chunking) is refused.
fn tokens_hash(tokens: &[LlamaToken]) -> u64 {
    tokens.iter().fold(0xcbf2_9ce4_8422_2325, |h, t| {
        t.0.to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

const REF_MAGIC: [u8; 8] = *b"FGQREF01";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RefHeader {
    n_vocab: u32,
    n_ctx: u32,
    chunks: u32,
    tokens_hash: u64,
}

impl RefHeader {
    fn to_bytes(self) -> Vec<u8> {
        let mut b = REF_MAGIC.to_vec();
        b.extend_from_slice(&self.n_vocab.to_le_bytes());
        b.extend_from_slice(&self.n_ctx.to_le_bytes());
        b.extend_from_slice(&self.chunks.to_le_bytes());
        b.extend_from_slice(&self.tokens_hash.to_le_bytes());
        b
    }
}

struct RefWriter {
    path: PathBuf,
    out: BufWriter<File>,
    buf: Vec<u8>,
}

impl RefWriter {
    fn create(path: &Path, header: &RefHeader) -> Result<Self, QuantError> {
        let file = File::create(path).map_err(|e| QuantError::io(path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header.to_bytes())
            .map_err(|e| QuantError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            buf: Vec::new(),
        })
    }

    fn write_row(&mut self, logprobs: &[f32]) -> Result<(), QuantError> {
        self.buf.clear();
        for x in logprobs {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self.out
            .write_all(&self.buf)
            .map_err(|e| QuantError::io(&self.path, e))
    }

    fn finish(mut self) -> Result<(), QuantError> {
        self.out.flush().map_err(|e| QuantError::io(&self.path, e))
    }
}

struct RefReader {
    path: PathBuf,
    input: BufReader<File>,
    n_vocab: usize,
    buf: Vec<u8>,
}

impl RefReader {
    fn open(path: &Path, expected: &RefHeader) -> Result<Self, QuantError> {
        let file = File::open(path).map_err(|e| QuantError::io(path, e))?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        let mut header = vec![0u8; expected.to_bytes().len()];
        input
            .read_exact(&mut header)
            .map_err(|e| QuantError::io(path, e))?;
        if header != expected.to_bytes() {
            return Err(QuantError::ReferenceMismatch {
                path: path.display().to_string(),
                reason: "different vocabulary, context size, chunk count or tokens".into(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            input,
            n_vocab: expected.n_vocab as usize,
            buf: vec![0u8; expected.n_vocab as usize * 4],
        })
    }

    fn read_row(&mut self, row: &mut Vec<f32>) -> Result<(), QuantError> {
        self.input
            .read_exact(&mut self.buf)
            .map_err(|e| QuantError::io(&self.path, e))?;
        row.clear();
        row.reserve(self.n_vocab);
        row.extend(
            self.buf
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_outputs_round_trip_as_json() {
        let job = EvalJob {
            model: "/m/x.gguf".into(),
            phase: Phase::Quality,
            ctx: 512,
            chunks: 2,
            threads: 0,
            reference: Some(Reference::Compare("/tmp/ref".into())),
            corpus: None,
        };
        assert_eq!(EvalJob::from_json(&job.to_json().unwrap()).unwrap(), job);
        let out = EvalOutput::Speed(SpeedResult {
            prefill_tokens: 512,
            prefill_tokens_per_s: 1000.5,
            decode_tokens: 64,
            decode_tokens_per_s: 50.25,
            peak_rss_bytes: Some(123),
        });
        assert_eq!(EvalOutput::from_json(&out.to_json().unwrap()).unwrap(), out);
        assert!(EvalJob::from_json("{}").is_err());
    }

    #[test]
    fn reference_rows_round_trip_and_headers_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref");
        let header = RefHeader {
            n_vocab: 3,
            n_ctx: 128,
            chunks: 1,
            tokens_hash: tokens_hash(&[LlamaToken(1), LlamaToken(2)]),
        };
        let mut w = RefWriter::create(&path, &header).unwrap();
        w.write_row(&[-0.5, -1.0, -2.0]).unwrap();
        w.write_row(&[-3.0, -0.1, -4.0]).unwrap();
        w.finish().unwrap();
        let mut r = RefReader::open(&path, &header).unwrap();
        let mut row = Vec::new();
        r.read_row(&mut row).unwrap();
        assert_eq!(row, vec![-0.5, -1.0, -2.0]);
        r.read_row(&mut row).unwrap();
        assert_eq!(row, vec![-3.0, -0.1, -4.0]);
        assert!(r.read_row(&mut row).is_err());
        let other = RefHeader {
            tokens_hash: tokens_hash(&[LlamaToken(2), LlamaToken(1)]),
            ..header
        };
        assert!(matches!(
            RefReader::open(&path, &other),
            Err(QuantError::ReferenceMismatch { .. })
        ));
    }

    #[test]
    fn the_corpus_is_long_enough() {
        // Roughly 4 bytes per token for English prose: several 512-token chunks.
        assert!(CORPUS.len() > 12_000, "{} bytes", CORPUS.len());
        assert!(CORPUS.starts_with("In Congress, July 4, 1776."));
    }
}
