//! The quantization report: convert a model to several precisions, measure each
//! variant, and render the comparison as a markdown table.
//!
//! Every measurement runs through a caller-supplied `worker` function. The
//! `floodgate` binary passes one that re-runs itself as a child process per
//! [`EvalJob`], so each variant's peak memory is its own; tests pass
//! `floodgate_engine::quant::eval::run` to stay in-process.
//!
//! The quality reference is always the source file. Each variant is converted
//! from it, so none can carry more information than it: for a quantized source
//! (Q4_1, Q4_K_M) an f16 or f32 variant is a dequantized copy, not a better
//! model. The report says so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use floodgate_engine::quant::eval::{
    EvalJob, EvalOutput, Phase, QualityResult, Reference, SpeedResult, DECODE_TOKENS, SPEED_RUNS,
};
use floodgate_engine::quant::gguf::{self, embedding_length, file_type, file_type_name};
use floodgate_engine::quant::{ensure_variant, Precision, QuantError};

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The model's name in the report (and the output file name).
    pub model_name: String,
    /// The source GGUF.
    pub source: PathBuf,
    /// Variants to convert and measure, in this order ([`Precision::Source`] is
    /// ignored: the source is always measured, as the reference).
    pub variants: Vec<Precision>,
    /// Tokens per chunk / context size.
    pub ctx: u32,
    /// Chunks of the corpus to score (0: all).
    pub chunks: u32,
    /// CPU threads for evaluation (0: one per core).
    pub threads: u32,
    /// Where converted variants are cached.
    pub cache_dir: PathBuf,
    /// Where the reference log-probabilities are written while the report runs.
    pub work_dir: PathBuf,
}

/// One measured file.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantRow {
    /// `source (Q4_1)`, `q8_0`, ...
    pub label: String,
    /// [`Precision::Source`] for the source row.
    pub precision: Precision,
    /// The measured file.
    pub path: PathBuf,
    /// Its size.
    pub file_bytes: u64,
    /// Whether this row is the quality reference.
    pub is_reference: bool,
    /// Speed and memory.
    pub speed: SpeedResult,
    /// Perplexity, KL and agreement.
    pub quality: QualityResult,
}

/// The finished report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The model's name.
    pub model_name: String,
    /// The source's precision as llama.cpp names it (`Q4_1`, `F16`, ...).
    pub source_type: String,
    /// Tokens per chunk.
    pub ctx: u32,
    /// Chunks scored.
    pub chunks: u32,
    /// Positions scored per variant.
    pub scored_tokens: u64,
    /// Threads used (0: one per core).
    pub threads: u32,
    /// Caveats to print with the table (reference choice, requantization).
    pub notes: Vec<String>,
    /// The source first, then the variants.
    pub rows: Vec<VariantRow>,
}

/// Whether a `llama_ftype` stores (most) weights unquantized.
fn is_float_type(ftype: u32) -> bool {
    matches!(
        ftype,
        gguf::FTYPE_ALL_F32 | gguf::FTYPE_MOSTLY_F16 | gguf::FTYPE_MOSTLY_BF16
    )
}

/// Deletes the reference log-probabilities however the report ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Converts (or reuses) every variant, measures the source and each variant,
/// and returns the report. `progress` receives one line per step.
///
/// # Errors
/// A conversion or an evaluation fails.
pub fn run(
    opts: &ReportOptions,
    worker: &mut dyn FnMut(&EvalJob) -> Result<EvalOutput, QuantError>,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, QuantError> {
    let ftype = file_type(&opts.source)?;
    let source_type = ftype.map_or_else(|| "unknown type".to_owned(), file_type_name);
    let mut notes = vec![format!(
        "Reference for KL divergence and top-1 agreement: the source ({source_type}). \
         Every variant is converted from it, so no variant has higher precision than the source."
    )];
    if ftype.is_some_and(|t| !is_float_type(t)) {
        let up: Vec<&str> = opts
            .variants
            .iter()
            .filter(|p| matches!(p, Precision::F32 | Precision::F16 | Precision::Bf16))
            .map(|p| p.as_str())
            .collect();
        notes.push(format!(
            "The source is already quantized ({source_type}). Requantizing cannot recover lost \
             precision: {} only dequantize{} the {source_type} weights (bigger and slower, not \
             better), and lower-precision variants are requantized from {source_type}, so they \
             add their error to its error. Perplexity may still differ slightly between the \
             source and a dequantized copy: with quantized weights llama.cpp also rounds the \
             activations to 8 bits inside the matrix products, so the arithmetic differs; the \
             KL column measures how much.",
            if up.is_empty() {
                "f16/f32 variants".to_owned()
            } else {
                up.join("/")
            },
            if up.len() == 1 { "s" } else { "" }
        ));
    }
    if opts.variants.contains(&Precision::Q4_K) {
        if let Some(width) = embedding_length(&opts.source)?.filter(|w| w % 256 != 0) {
            notes.push(format!(
                "q4_k: the model's width ({width}) is not a multiple of 256, the k-quant block \
                 size, so llama.cpp stores many tensors in fallback types (q5_0, q8_0) instead; \
                 the file is bigger than a true Q4_K_M and the speed reflects the mix."
            ));
        }
    }

    std::fs::create_dir_all(&opts.work_dir).map_err(|e| QuantError::io(&opts.work_dir, e))?;
    let reference_file = TempFile(
        opts.work_dir
            .join(format!("quant-reference-{}.logprobs", std::process::id())),
    );

    let mut targets: Vec<(String, Precision, PathBuf)> = vec![(
        format!("source ({source_type})"),
        Precision::Source,
        opts.source.clone(),
    )];
    for &p in &opts.variants {
        if p == Precision::Source || targets.iter().any(|t| t.1 == p) {
            continue;
        }
        let started = Instant::now();
        progress(&format!("{p}: converting (or reusing the cached variant)"));
        let path = ensure_variant(&opts.cache_dir, &opts.source, p)?;
        progress(&format!(
            "{p}: {} ({:.1}s)",
            path.display(),
            started.elapsed().as_secs_f64()
        ));
        targets.push((p.to_string(), p, path));
    }

    let mut rows = Vec::new();
    for (i, (label, precision, path)) in targets.into_iter().enumerate() {
        let is_reference = i == 0;
        let reference = if is_reference {
            Reference::Write(reference_file.0.clone())
        } else {
            Reference::Compare(reference_file.0.clone())
        };
        let job = |phase, reference| EvalJob {
            model: path.clone(),
            phase,
            ctx: opts.ctx,
            chunks: opts.chunks,
            threads: opts.threads,
            reference,
            corpus: None,
        };
        progress(&format!("{label}: measuring quality"));
        let quality = match worker(&job(Phase::Quality, Some(reference)))? {
            EvalOutput::Quality(q) => q,
            EvalOutput::Speed(_) => return Err(QuantError::Worker("wrong output phase".into())),
        };
        progress(&format!("{label}: measuring speed and memory"));
        let speed = match worker(&job(Phase::Speed, None))? {
            EvalOutput::Speed(s) => s,
            EvalOutput::Quality(_) => return Err(QuantError::Worker("wrong output phase".into())),
        };
        let file_bytes = std::fs::metadata(&path)
            .map_err(|e| QuantError::io(&path, e))?
            .len();
        rows.push(VariantRow {
            label,
            precision,
            path,
            file_bytes,
            is_reference,
            speed,
            quality,
        });
    }
    let (chunks, scored_tokens) = rows
        .first()
        .map_or((0, 0), |r| (r.quality.chunks, r.quality.scored_tokens));
    Ok(Report {
        model_name: opts.model_name.clone(),
        source_type,
        ctx: opts.ctx,
        chunks,
        scored_tokens,
        threads: opts.threads,
        notes,
        rows,
    })
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

impl Report {
    /// The report as markdown: a heading, the settings, the table, the notes.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Quantization report: {}\n", self.model_name);
        let _ = writeln!(
            s,
            "Source: {}. Quality on the built-in corpus (`crates/floodgate-engine/corpus/`): \
             {} chunk(s) of {} tokens, second half of each chunk scored ({} positions). \
             Prefill: one forward pass over {} tokens. Decode: {} greedy tokens, one sequence \
             (each the fastest of {} runs). Threads: {}. Peak RSS: `VmHWM` of a separate process per variant.\n",
            self.source_type,
            self.chunks,
            self.ctx,
            self.scored_tokens,
            self.ctx,
            DECODE_TOKENS,
            SPEED_RUNS,
            if self.threads == 0 {
                "one per core".to_owned()
            } else {
                self.threads.to_string()
            }
        );
        s.push_str(
            "| variant | file MB | peak RSS MB | prefill tok/s | decode tok/s | perplexity | mean KL | top-1 agreement |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let (kl, top1) = if r.is_reference {
                ("0 (reference)".to_owned(), "100% (reference)".to_owned())
            } else {
                (
                    r.quality
                        .mean_kl
                        .map_or_else(|| "n/a".to_owned(), |k| format!("{k:.5}")),
                    r.quality
                        .top1_agreement
                        .map_or_else(|| "n/a".to_owned(), |a| format!("{:.1}%", a * 100.0)),
                )
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {:.1} | {:.3} | {} | {} |",
                r.label,
                mb(r.file_bytes),
                r.speed.peak_rss_bytes.map_or_else(|| "n/a".to_owned(), mb),
                r.speed.prefill_tokens_per_s,
                r.speed.decode_tokens_per_s,
                r.quality.perplexity,
                kl,
                top1
            );
        }
        s.push('\n');
        for note in &self.notes {
            let _ = writeln!(s, "- {note}");
        }
        s
    }
}

/// `<dir>/quant-<model>.md`, with the model name made safe for a file name.
#[must_use]
pub fn markdown_path(dir: &Path, model_name: &str) -> PathBuf {
    let safe: String = model_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("quant-{safe}.md"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, is_reference: bool, kl: Option<f64>) -> VariantRow {
        VariantRow {
            label: label.into(),
            precision: Precision::Q8_0,
            path: "/x".into(),
            file_bytes: 144_000_000,
            is_reference,
            speed: SpeedResult {
                prefill_tokens: 512,
                prefill_tokens_per_s: 1234.56,
                decode_tokens: 64,
                decode_tokens_per_s: 78.9,
                peak_rss_bytes: Some(200_000_000),
            },
            quality: QualityResult {
                chunks: 2,
                scored_tokens: 510,
                perplexity: 12.3456,
                mean_kl: kl,
                top1_agreement: kl.map(|_| 0.9512),
                peak_rss_bytes: None,
            },
        }
    }

    #[test]
    fn markdown_table_shape() {
        let report = Report {
            model_name: "m".into(),
            source_type: "Q4_1".into(),
            ctx: 512,
            chunks: 2,
            scored_tokens: 510,
            threads: 2,
            notes: vec!["a note".into()],
            rows: vec![
                row("source (Q4_1)", true, None),
                row("q8_0", false, Some(0.012_34)),
            ],
        };
        let md = report.to_markdown();
        assert!(md.contains(
            "| source (Q4_1) | 144.0 | 200.0 | 1234.6 | 78.9 | 12.346 | 0 (reference) | 100% (reference) |"
        ));
        assert!(md.contains("| q8_0 | 144.0 | 200.0 | 1234.6 | 78.9 | 12.346 | 0.01234 | 95.1% |"));
        assert!(md.contains("- a note"));
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.matches('|').count() == 9));
    }

    #[test]
    fn markdown_path_is_safe() {
        assert_eq!(
            markdown_path(Path::new("/o"), "smollm2-135m"),
            PathBuf::from("/o/quant-smollm2-135m.md")
        );
        assert_eq!(
            markdown_path(Path::new("/o"), "a/b c"),
            PathBuf::from("/o/quant-a_b_c.md")
        );
    }
}
