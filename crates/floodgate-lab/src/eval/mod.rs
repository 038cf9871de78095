//! `floodgate eval run|report`: golden sets answered by a served model, version, variant
//! or route, graded, summarised with 95% intervals, sliced, compared with the previous
//! version and stored.
//!
//! A run sends every row of a golden file ([`set`]: QA rows graded by alias matching,
//! reference rows by the judge) to a Floodgate or any OpenAI-compatible server as a
//! greedy chat request for the target's name ([`client`]); the judge ([`judge`]), a
//! model on the same server, rates correctness against the reference and coherence
//! with a rubric. Every answer is also screened for refusals and toxicity
//! ([`screen`]). The run's record ([`record`]) holds each graded item and a summary
//! with Wilson intervals ([`stats`]), sliced by segment, query type ([`classify`]) and
//! hour of day, and its regression verdicts: against the latest earlier run of the same
//! golden file and model name, and against `--baseline`, a flagged regression being a
//! difference whose whole 95% interval lies below zero. Records are appended to a JSON
//! lines file that [`report`] reads back.
//!
//! **Invariant:** the evaluation only speaks HTTP to a server: it measures what the
//! server serves under that name (routing, variants, guards included), and never
//! loads a model itself.

mod chart;
pub mod classify;
pub mod client;
pub mod judge;
pub mod record;
pub mod report;
pub mod screen;
pub mod set;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use self::classify::QueryClassifier;
use self::client::{ClientOptions, ServerClient};
use self::record::{ItemResult, JudgeResult, RunRecord, RunSettings};
use self::screen::Toxicity;
use self::set::{EvalRow, EvalSet};

/// The system message golden questions are asked with (as `floodgate cascade run`).
pub const DEFAULT_SYSTEM: &str = "Answer the question in a few words.";

/// Everything `floodgate eval run` needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub goldens: Vec<PathBuf>,
    pub targets: Vec<String>,
    /// Also run this target and compare every other target with it.
    pub baseline: Option<String>,
    /// Only the first N rows of each golden file.
    pub limit: Option<usize>,
    /// The judge model; `None`: the largest model the server lists, when one is needed.
    pub judge: Option<String>,
    /// Judge QA rows too (coherence, and agreement with the aliases).
    pub judge_qa: bool,
    pub client: ClientOptions,
    pub concurrency: usize,
    pub max_tokens: u32,
    pub judge_max_tokens: u32,
    pub system: String,
    pub classifier: QueryClassifier,
    /// The results file.
    pub out: PathBuf,
}

/// Runs every target (the baseline first) on every golden file, appending each run's
/// record to the results file as it finishes; returns this invocation's records.
pub async fn run(opts: &RunOptions) -> Result<Vec<RunRecord>, String> {
    if opts.targets.is_empty() && opts.baseline.is_none() {
        return Err("no target: pass --target NAME".into());
    }
    let sets = opts
        .goldens
        .iter()
        .map(|p| set::read_set(p))
        .collect::<Result<Vec<_>, _>>()?;
    if sets.is_empty() {
        return Err("no golden file: pass --golden FILE".into());
    }
    let client = Arc::new(ServerClient::new(&opts.client)?);
    let needs_judge = opts.judge_qa || sets.iter().any(EvalSet::needs_judge);
    let judge = match (&opts.judge, needs_judge) {
        (_, false) => None,
        (Some(j), true) => Some(j.clone()),
        (None, true) => {
            let models = client.models().await?;
            let chosen = judge::default_judge(&models).ok_or_else(|| {
                format!(
                    "no judge: {} lists no chat model with a size; pass --judge MODEL",
                    client.base()
                )
            })?;
            eprintln!(
                "judge: {chosen} (the largest model {} lists)",
                client.base()
            );
            Some(chosen)
        }
    };
    let mut order: Vec<&str> = Vec::new();
    if let Some(b) = &opts.baseline {
        order.push(b);
    }
    for t in &opts.targets {
        if !order.contains(&t.as_str()) {
            order.push(t);
        }
    }
    let (mut history, unreadable) = record::read_runs(&opts.out)?;
    if unreadable > 0 {
        eprintln!(
            "warning: {}: {unreadable} unreadable line(s) skipped",
            opts.out.display()
        );
    }
    let toxicity = Arc::new(Toxicity::new()?);
    let mut done = Vec::new();
    for set in &sets {
        let rows: Vec<EvalRow> = set
            .rows
            .iter()
            .take(opts.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        let mut baseline_run: Option<RunRecord> = None;
        for (index, target) in order.iter().enumerate() {
            let mut run = run_one(
                opts,
                &client,
                &toxicity,
                judge.as_deref(),
                set,
                &rows,
                target,
                index,
            )
            .await?;
            let previous = record::previous_run(&history, &run)
                .and_then(|previous| record::compare(&run, previous, "previous"));
            let baseline = baseline_run
                .as_ref()
                .and_then(|base| record::compare(&run, base, "baseline"));
            run.comparisons.extend(previous.into_iter().chain(baseline));
            record::append_run(&opts.out, &run)?;
            eprintln!(
                "{target}: recorded as {} in {}",
                run.run_id,
                opts.out.display()
            );
            if opts.baseline.as_deref() == Some(*target) && baseline_run.is_none() {
                baseline_run = Some(run.clone());
            }
            history.push(run.clone());
            done.push(run);
        }
    }
    Ok(done)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    opts: &RunOptions,
    client: &Arc<ServerClient>,
    toxicity: &Arc<Toxicity>,
    judge: Option<&str>,
    set: &EvalSet,
    rows: &[EvalRow],
    target: &str,
    index: usize,
) -> Result<RunRecord, String> {
    let started = Instant::now();
    let start_time = unix_now();
    eprintln!(
        "{target}: {} rows of {} (concurrency {})",
        rows.len(),
        set.path.display(),
        opts.concurrency
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, row) in rows.iter().enumerate() {
        let ask = Ask {
            client: Arc::clone(client),
            toxicity: Arc::clone(toxicity),
            target: target.to_string(),
            judge: judge
                .filter(|_| opts.judge_qa || row.expected.needs_judge())
                .map(str::to_string),
            system: opts.system.clone(),
            max_tokens: opts.max_tokens,
            judge_max_tokens: opts.judge_max_tokens,
            query_type: row
                .query_type
                .clone()
                .unwrap_or_else(|| opts.classifier.classify(&row.prompt)),
            row: row.clone(),
        };
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, ask.run().await)
        });
    }
    let mut items: Vec<(usize, ItemResult)> = Vec::with_capacity(rows.len());
    let (mut right, mut graded) = (0usize, 0usize);
    while let Some(joined) = tasks.join_next().await {
        let (i, item) = joined.map_err(|e| format!("an evaluation task failed: {e}"))?;
        if let Some(c) = item.correct {
            graded += 1;
            right += usize::from(c);
        }
        items.push((i, item));
        if items.len().is_multiple_of(25) {
            eprintln!(
                "  {target}: {}/{} answered ({:.1}% right, {:.1} s)",
                items.len(),
                rows.len(),
                100.0 * right as f64 / graded.max(1) as f64,
                started.elapsed().as_secs_f64()
            );
        }
    }
    items.sort_by_key(|(i, _)| *i);
    let items: Vec<ItemResult> = items.into_iter().map(|(_, item)| item).collect();
    if items.iter().all(|i| i.error.is_some()) {
        let why = items
            .first()
            .and_then(|i| i.error.clone())
            .unwrap_or_default();
        return Err(format!("{target}: every request failed: {why}"));
    }
    let summary = record::summarize(&items);
    Ok(RunRecord {
        run_id: format!(
            "{}-{}-{index}",
            record::rfc3339(start_time).replace([':', '-'], ""),
            std::process::id()
        ),
        time: record::rfc3339(start_time),
        unix_time: start_time,
        target: target.to_string(),
        server: client.base().to_string(),
        golden: record::GoldenRef {
            path: set.path.display().to_string(),
            sha256: set.sha256.clone(),
            rows: set.rows.len(),
            asked: rows.len(),
        },
        judge: judge.map(str::to_string),
        settings: RunSettings {
            system: opts.system.clone(),
            max_tokens: opts.max_tokens,
            concurrency: opts.concurrency,
        },
        duration_seconds: started.elapsed().as_secs_f64(),
        slices: record::slices(&items),
        summary,
        comparisons: Vec::new(),
        items,
    })
}

/// One row's request, grading and screening.
struct Ask {
    client: Arc<ServerClient>,
    toxicity: Arc<Toxicity>,
    target: String,
    /// The judge, when this row is judged.
    judge: Option<String>,
    system: String,
    max_tokens: u32,
    judge_max_tokens: u32,
    query_type: String,
    row: EvalRow,
}

impl Ask {
    async fn run(self) -> ItemResult {
        let reply = self
            .client
            .chat(
                &self.target,
                &self.system,
                &self.row.prompt,
                self.max_tokens,
            )
            .await;
        let mut item = ItemResult {
            id: self.row.id.clone(),
            prompt: self.row.prompt.clone(),
            answer: String::new(),
            correct: None,
            scored_by: if self.row.expected.needs_judge() {
                "judge".into()
            } else {
                "aliases".into()
            },
            judge: None,
            refusal: false,
            toxic: false,
            toxicity_score: 0.0,
            guard_blocked: false,
            segment: self.row.segment.clone(),
            query_type: self.query_type.clone(),
            time: unix_now(),
            latency_seconds: 0.0,
            served_by: String::new(),
            error: None,
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                item.error = Some(e);
                return item;
            }
        };
        item.time = unix_now();
        item.latency_seconds = reply.latency_seconds;
        item.served_by = reply.served_by;
        item.guard_blocked = reply.finish_reason == "content_filter";
        item.toxicity_score = self.toxicity.score(&reply.text);
        item.toxic = item.guard_blocked || item.toxicity_score >= screen::TOXICITY_THRESHOLD;
        item.refusal = screen::is_refusal(&reply.text);
        item.correct = self.row.expected.alias_verdict(&reply.text);
        if let Some(judge) = &self.judge {
            let verdict = self.ask_judge(judge, &reply.text).await;
            if item.scored_by == "judge" {
                item.correct = verdict.correct;
            }
            item.judge = Some(verdict);
        }
        item.answer = reply.text;
        item
    }

    async fn ask_judge(&self, judge: &str, answer: &str) -> JudgeResult {
        let prompt = judge::judge_prompt(&self.row.prompt, &self.row.expected.for_judge(), answer);
        match self
            .client
            .chat(judge, judge::RUBRIC, &prompt, self.judge_max_tokens)
            .await
        {
            Ok(reply) => {
                let verdict = judge::parse_verdict(&reply.text);
                JudgeResult {
                    correct: verdict.and_then(|v| v.correct),
                    coherence: verdict.and_then(|v| v.coherence),
                    unparseable: verdict.is_none(),
                    raw: reply.text,
                    failed: false,
                }
            }
            Err(e) => JudgeResult {
                correct: None,
                coherence: None,
                unparseable: false,
                raw: e,
                failed: true,
            },
        }
    }
}

/// The default results file under a model home: `<home>/evals/runs.jsonl`.
pub fn default_results_file(home: &std::path::Path) -> PathBuf {
    home.join("evals").join("runs.jsonl")
}

/// `floodgate eval report`: accuracy over time per target from the results file
/// (optionally only the runs of one golden file, by content), and the chart if asked.
pub fn report(
    out: &std::path::Path,
    golden: Option<&std::path::Path>,
    chart_path: Option<&std::path::Path>,
) -> Result<String, String> {
    let (mut runs, unreadable) = record::read_runs(out)?;
    if let Some(golden) = golden {
        let sha = set::read_set(golden)?.sha256;
        runs.retain(|r| r.golden.sha256 == sha);
    }
    if runs.is_empty() {
        return Err(format!("{}: no runs recorded", out.display()));
    }
    let mut text = report::render_history(&runs);
    if unreadable > 0 {
        text.push_str(&format!("({unreadable} unreadable line(s) skipped)\n"));
    }
    if let Some(path) = chart_path {
        chart::draw_history(path, &report::series(&runs))?;
        text.push_str(&format!("chart: {}\n", path.display()));
    }
    Ok(text)
}
