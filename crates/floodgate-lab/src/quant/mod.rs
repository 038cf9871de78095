//! `floodgate quant`: convert a model to another precision, and compare
//! precisions in a report (markdown table + PNG chart).
//!
//! The work is in `floodgate_engine::quant`. This module resolves the model
//! name, runs each evaluation in a child process (this executable again, with
//! the hidden `quant worker` subcommand, so that each variant's peak RSS is its
//! own) and draws the chart.

pub mod report;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use self::report::{Report, ReportOptions};
use clap::Subcommand;
use floodgate_engine::quant::eval::{self, EvalJob, EvalOutput};
use floodgate_engine::quant::{self, Precision, QuantError};
use floodgate_models::{catalog_entry, ModelStore};

/// DejaVu Sans (Debian/Ubuntu package `fonts-dejavu-core`) for the chart's text.

#[derive(Subcommand)]
pub enum QuantCommand {
    /// Convert variants of a model and compare them: size, peak memory, speed
    /// and quality against the source.
    Report {
        /// A GGUF file, or the name of a cached catalog model.
        model: String,
        /// Precisions to convert to and measure.
        #[arg(long, value_delimiter = ',', default_value = "f32,f16,bf16,q8_0,q4_k")]
        variants: Vec<Precision>,
        /// Tokens per evaluation chunk (and context size).
        #[arg(long, default_value_t = 512)]
        ctx: u32,
        /// Corpus chunks to score (0: all the corpus holds).
        #[arg(long, default_value_t = 4)]
        chunks: u32,
        /// CPU threads per evaluation (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: u32,
        /// Directory for quant-<model>.md and quant-<model>.png.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Convert a model to another precision.
    Convert {
        /// A GGUF file, or the name of a cached catalog model.
        model: String,
        /// The precision to convert to.
        #[arg(long)]
        to: Precision,
        /// Output file (default: the variant cache, where `precision = ...` in
        /// floodgate.toml would find it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// CPU threads (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: u32,
    },
    /// Runs one evaluation job and prints its result as JSON (used by `report`).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        job: String,
    },
}

pub async fn run(command: QuantCommand) -> ExitCode {
    if !matches!(command, QuantCommand::Worker { .. }) {
        init_logging();
    }
    let result = tokio::task::spawn_blocking(move || run_blocking(command)).await;
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr like the rest of the CLI, but keeps llama.cpp to errors:
/// quantizing prints a line per tensor, and a warning for every tensor that
/// falls back to another type (the report states that once instead).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,llama-cpp-2=error,llama_cpp_2=error")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run_blocking(command: QuantCommand) -> Result<(), String> {
    match command {
        QuantCommand::Worker { job } => {
            let job = EvalJob::from_json(&job).map_err(|e| e.to_string())?;
            let output = eval::run(&job).map_err(|e| e.to_string())?;
            let line = output.to_json().map_err(|e| e.to_string())?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{line}").map_err(|e| e.to_string())
        }
        QuantCommand::Convert {
            model,
            to,
            out,
            threads,
        } => {
            let (_, src) = resolve_model(&model)?;
            let started = std::time::Instant::now();
            let dst = match out {
                Some(dst) => {
                    quant::quantize(&src, &dst, to, threads).map_err(|e| e.to_string())?;
                    dst
                }
                None => {
                    quant::ensure_variant(&variant_cache(), &src, to).map_err(|e| e.to_string())?
                }
            };
            let source_type = source_type(&src);
            println!(
                "{} ({source_type}) -> {} ({to}, {:.1} MB, {:.1}s)",
                src.display(),
                dst.display(),
                std::fs::metadata(&dst).map_or(0.0, |m| m.len() as f64 / 1e6),
                started.elapsed().as_secs_f64()
            );
            if is_quantized(&src) && matches!(to, Precision::F32 | Precision::F16 | Precision::Bf16)
            {
                println!(
                    "note: the source is already quantized ({source_type}); a {to} copy only \
                     dequantizes it and cannot recover the precision it lost"
                );
            }
            Ok(())
        }
        QuantCommand::Report {
            model,
            variants,
            ctx,
            chunks,
            threads,
            out,
        } => {
            let (name, src) = resolve_model(&model)?;
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let opts = ReportOptions {
                model_name: name,
                source: src,
                variants,
                ctx,
                chunks,
                threads,
                cache_dir: variant_cache(),
                work_dir: std::env::temp_dir().join("floodgate-quant"),
            };
            let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
            let report = report::run(&opts, &mut |job| run_worker(&exe, job), &mut |line| {
                eprintln!("{line}")
            })
            .map_err(|e| e.to_string())?;
            let markdown = report.to_markdown();
            println!("{markdown}");
            let md_path = report::markdown_path(&out, &report.model_name);
            std::fs::write(&md_path, &markdown)
                .map_err(|e| format!("{}: {e}", md_path.display()))?;
            eprintln!("wrote {}", md_path.display());
            let png_path = md_path.with_extension("png");
            match draw_chart(&report, &png_path) {
                Ok(()) => eprintln!("wrote {}", png_path.display()),
                Err(e) => eprintln!("warning: no chart: {e}"),
            }
            Ok(())
        }
    }
}

/// Where converted variants live: `<model cache>/variants`.
fn variant_cache() -> PathBuf {
    ModelStore::default_root().join("variants")
}

/// A GGUF path as given, or a catalog model from the cache. Returns the name
/// to put in the report and the file.
fn resolve_model(model: &str) -> Result<(String, PathBuf), String> {
    let path = Path::new(model);
    if path.is_file() {
        let name = path
            .file_stem()
            .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned());
        return Ok((name, path.to_path_buf()));
    }
    let spec = catalog_entry(model).ok_or_else(|| {
        format!("`{model}` is neither a file nor a catalog model (see `floodgate models list`)")
    })?;
    let store = ModelStore::new(ModelStore::default_root());
    let cached = store.cached(&spec).ok_or_else(|| {
        format!(
            "`{model}` is not in the cache at {}; run `floodgate models pull {model}` first",
            store.root().display()
        )
    })?;
    Ok((model.to_owned(), cached))
}

fn source_type(src: &Path) -> String {
    match quant::file_type(src) {
        Ok(Some(t)) => quant::file_type_name(t),
        _ => "unknown type".to_owned(),
    }
}

fn is_quantized(src: &Path) -> bool {
    matches!(quant::file_type(src), Ok(Some(t)) if !matches!(t, 0 | 1 | 32))
}

/// Runs one evaluation in a child process and parses its JSON line.
fn run_worker(exe: &Path, job: &EvalJob) -> Result<EvalOutput, QuantError> {
    let output = Command::new(exe)
        .args(["quant", "worker", "--job", &job.to_json()?])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| QuantError::Worker(format!("{}: {e}", exe.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(QuantError::Worker(format!(
            "{} on {}: {}",
            output.status,
            job.model.display(),
            tail.join("\n")
        )));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| QuantError::Worker("the worker printed nothing".into()))?;
    EvalOutput::from_json(line)
}

/// A 2-panel PNG: perplexity and decode speed against file size, one labelled
/// point per variant. Needs DejaVu Sans for the text; without it there is no
/// chart (the markdown report is complete on its own).
fn draw_chart(report: &Report, path: &Path) -> Result<(), String> {
    use plotters::prelude::*;

    crate::chart::register_chart_font()?;

    let points: Vec<(String, f64, f64, f64)> = report
        .rows
        .iter()
        .map(|r| {
            (
                r.label.clone(),
                r.file_bytes as f64 / 1e6,
                r.quality.perplexity,
                r.speed.decode_tokens_per_s,
            )
        })
        .collect();
    if points.is_empty() {
        return Err("nothing to draw".into());
    }
    let range = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let pad = ((hi - lo) * 0.15).max(hi.abs() * 0.05).max(1e-3);
        ((lo - pad).max(0.0), hi + pad)
    };
    let (x_lo, x_hi) = range(&mut points.iter().map(|p| p.1));
    let (ppl_lo, ppl_hi) = range(&mut points.iter().map(|p| p.2));
    let (tps_lo, tps_hi) = range(&mut points.iter().map(|p| p.3));

    let root = BitMapBackend::new(path, (1200, 520)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(
            &format!(
                "Quantization: {} (source {})",
                report.model_name, report.source_type
            ),
            ("sans-serif", 24),
        )
        .map_err(|e| err(&e))?;
    let panels = root.split_evenly((1, 2));
    let specs = [
        ("perplexity (lower is better)", ppl_lo, ppl_hi, 2usize),
        ("decode tok/s (higher is better)", tps_lo, tps_hi, 3usize),
    ];
    for (panel, (caption, y_lo, y_hi, field)) in panels.iter().zip(specs) {
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("file MB")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(points.iter().enumerate().map(|(i, p)| {
                let y = if field == 2 { p.2 } else { p.3 };
                let color = crate::chart::COLORS[i % crate::chart::COLORS.len()];
                EmptyElement::at((p.1, y))
                    + Circle::new((0, 0), 6, color.filled())
                    + Text::new(p.0.clone(), (8, -16), ("sans-serif", 14))
            }))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
