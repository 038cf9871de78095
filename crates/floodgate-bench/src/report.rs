//! The figures of a run: per-level summaries, the markdown table and the JSON file.
//!
//! Only successful requests count towards tokens, throughput and latencies; failed ones are
//! counted in `errors` and a few of their messages are kept. Latencies are reported in
//! milliseconds.

use serde::Serialize;

use crate::load::LevelRun;
use crate::request::{Api, Sample};
use crate::stats::Summary;

/// How many distinct error messages a level keeps.
const ERROR_SAMPLES: usize = 5;

/// The whole run, as written to `<label>-bench.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub url: String,
    pub endpoint: String,
    pub model: String,
    pub api: Api,
    pub max_tokens: u32,
    pub temperature: f64,
    pub ignore_eos: bool,
    pub warmup: usize,
    pub prompts: String,
    pub prompt_count: usize,
    /// Seconds since the Unix epoch at the start of the run.
    pub started_unix_s: u64,
    pub levels: Vec<LevelReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LevelReport {
    pub concurrency: usize,
    pub requests: usize,
    pub succeeded: usize,
    pub errors: usize,
    pub wall_s: f64,
    /// Completion tokens of the successful requests.
    pub output_tokens: u64,
    pub output_tokens_per_s: f64,
    pub requests_per_s: f64,
    pub tokens_per_request_mean: Option<f64>,
    /// Whether every successful request reported `usage` (otherwise tokens are partly
    /// counted as text chunks).
    pub tokens_from_usage: bool,
    pub ttft_ms: Option<Summary>,
    /// Per-request mean inter-token latency, `(t_last - t_first) / (tokens - 1)`.
    pub itl_ms: Option<Summary>,
    /// Raw gaps between successive text chunks, over all requests.
    pub chunk_gap_ms: Option<Summary>,
    pub e2e_ms: Option<Summary>,
    pub error_samples: Vec<String>,
    pub samples: Vec<Sample>,
}

impl LevelReport {
    pub fn from_run(run: LevelRun) -> Self {
        let ok: Vec<&Sample> = run.samples.iter().filter(|s| s.error.is_none()).collect();
        let ms = |v: Vec<f64>| Summary::of(&v.iter().map(|s| s * 1e3).collect::<Vec<_>>());
        let output_tokens: u64 = ok.iter().map(|s| s.completion_tokens).sum();
        let per_s = |x: f64| {
            if run.wall_s > 0.0 {
                x / run.wall_s
            } else {
                0.0
            }
        };
        let mut error_samples: Vec<String> = Vec::new();
        for e in run.samples.iter().filter_map(|s| s.error.as_ref()) {
            if error_samples.len() < ERROR_SAMPLES && !error_samples.contains(e) {
                error_samples.push(e.clone());
            }
        }
        Self {
            concurrency: run.concurrency,
            requests: run.samples.len(),
            succeeded: ok.len(),
            errors: run.samples.len() - ok.len(),
            wall_s: run.wall_s,
            output_tokens,
            output_tokens_per_s: per_s(output_tokens as f64),
            requests_per_s: per_s(ok.len() as f64),
            tokens_per_request_mean: (!ok.is_empty())
                .then(|| output_tokens as f64 / ok.len() as f64),
            tokens_from_usage: ok.iter().all(|s| s.tokens_from_usage),
            ttft_ms: ms(ok.iter().filter_map(|s| s.ttft_s).collect()),
            itl_ms: ms(ok.iter().filter_map(|s| s.itl_s).collect()),
            chunk_gap_ms: ms(ok
                .iter()
                .flat_map(|s| s.chunk_gaps_s.iter().copied())
                .collect()),
            e2e_ms: ms(ok.iter().map(|s| s.e2e_s).collect()),
            error_samples,
            samples: run.samples,
        }
    }
}

impl Report {
    /// A heading line and the markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### {}\n\n`{}` at {} ({} API), max_tokens {}, temperature {}, ignore_eos {}, \
             {} warm-up, {} prompts ({})\n\n",
            self.label,
            self.model,
            self.url,
            match self.api {
                Api::Chat => "chat",
                Api::Completions => "completions",
            },
            self.max_tokens,
            self.temperature,
            self.ignore_eos,
            self.warmup,
            self.prompt_count,
            self.prompts,
        );
        out.push_str(
            "| concurrency | requests | errors | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms \
             | chunk gap p50 ms | chunk gap p99 ms | output tok/s | req/s | tok/req |\n",
        );
        out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for l in &self.levels {
            let p = |s: &Option<Summary>, f: fn(&Summary) -> f64| match s {
                Some(s) => format!("{:.1}", f(s)),
                None => "–".to_string(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.2} | {}{} |\n",
                l.concurrency,
                l.requests,
                l.errors,
                p(&l.ttft_ms, |s| s.p50),
                p(&l.ttft_ms, |s| s.p99),
                p(&l.itl_ms, |s| s.p50),
                p(&l.itl_ms, |s| s.p99),
                p(&l.chunk_gap_ms, |s| s.p50),
                p(&l.chunk_gap_ms, |s| s.p99),
                l.output_tokens_per_s,
                l.requests_per_s,
                l.tokens_per_request_mean
                    .map_or_else(|| "–".to_string(), |t| format!("{t:.1}")),
                if l.tokens_from_usage { "" } else { "*" },
            ));
        }
        if self.levels.iter().any(|l| !l.tokens_from_usage) {
            out.push_str(
                "\n\\* some responses carried no `usage`; their tokens are counted as text chunks.\n",
            );
        }
        let errors: Vec<String> = self
            .levels
            .iter()
            .filter(|l| !l.error_samples.is_empty())
            .map(|l| {
                format!(
                    "- concurrency {}: {}",
                    l.concurrency,
                    l.error_samples.join(" | ")
                )
            })
            .collect();
        if !errors.is_empty() {
            out.push_str("\nErrors:\n");
            out.push_str(&errors.join("\n"));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(tokens: u64, ttft: f64, error: Option<&str>) -> Sample {
        Sample {
            error: error.map(str::to_string),
            ttft_s: Some(ttft),
            e2e_s: ttft + 0.1,
            completion_tokens: tokens,
            tokens_from_usage: true,
            text_chunks: tokens,
            retried: false,
            itl_s: Some(0.01),
            chunk_gaps_s: vec![0.01; tokens.saturating_sub(1) as usize],
        }
    }

    #[test]
    fn level_counts_only_successes() {
        let run = LevelRun {
            concurrency: 2,
            wall_s: 2.0,
            samples: vec![
                sample(10, 0.1, None),
                sample(10, 0.3, None),
                sample(3, 0.2, Some("HTTP 503: busy")),
                sample(0, 0.2, Some("HTTP 503: busy")),
            ],
        };
        let l = LevelReport::from_run(run);
        assert_eq!((l.requests, l.succeeded, l.errors), (4, 2, 2));
        assert_eq!(l.output_tokens, 20);
        assert!((l.output_tokens_per_s - 10.0).abs() < 1e-9);
        assert!((l.requests_per_s - 1.0).abs() < 1e-9);
        assert_eq!(l.tokens_per_request_mean, Some(10.0));
        assert!((l.ttft_ms.unwrap().p50 - 200.0).abs() < 1e-6);
        assert_eq!(l.chunk_gap_ms.unwrap().count, 18);
        assert_eq!(l.error_samples, vec!["HTTP 503: busy".to_string()]);
    }

    #[test]
    fn table_has_one_row_per_level_and_dashes_for_empty_levels() {
        let report = Report {
            label: "x".into(),
            url: "http://h".into(),
            endpoint: "http://h/v1/chat/completions".into(),
            model: "m".into(),
            api: Api::Chat,
            max_tokens: 8,
            temperature: 0.0,
            ignore_eos: true,
            warmup: 0,
            prompts: "built-in".into(),
            prompt_count: 16,
            started_unix_s: 0,
            levels: vec![
                LevelReport::from_run(LevelRun {
                    concurrency: 1,
                    wall_s: 1.0,
                    samples: vec![sample(8, 0.05, None)],
                }),
                LevelReport::from_run(LevelRun {
                    concurrency: 4,
                    wall_s: 1.0,
                    samples: vec![sample(0, 0.0, Some("refused"))],
                }),
            ],
        };
        let md = report.markdown();
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 3, "{md}");
        assert!(rows[1].starts_with("| 1 | 1 | 0 | 50.0 |"), "{md}");
        assert!(rows[2].starts_with("| 4 | 1 | 1 | – |"), "{md}");
        assert!(md.contains("concurrency 4: refused"), "{md}");
    }
}
