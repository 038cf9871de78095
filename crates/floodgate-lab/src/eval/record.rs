//! A run's record: every graded item, the summary with its intervals, the slices and
//! the regression verdicts, stored as one JSON line appended to the results file
//! (`$FLOODGATE_HOME/evals/runs.jsonl` by default). The file is the history that
//! "previous version" comparisons and `floodgate eval report` read.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::stats::{mcnemar_exact, mean_interval, newcombe_difference, Difference, Mean, Rate};

/// One golden row as the target answered it and as it was graded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub id: String,
    pub prompt: String,
    pub answer: String,
    /// Right or wrong; `None` when unknown (the request failed, or the judge's verdict
    /// on a reference row was unparseable): such items are left out of the accuracy.
    pub correct: Option<bool>,
    /// `aliases` or `judge`.
    pub scored_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeResult>,
    pub refusal: bool,
    /// Toxic by the guard's rules or blocked by the server's output guard.
    pub toxic: bool,
    /// The guard rules' highest category score.
    pub toxicity_score: f32,
    /// The server's output guard stopped the answer (`finish_reason: content_filter`).
    pub guard_blocked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    pub query_type: String,
    /// When the answer arrived, Unix seconds (UTC): the hour-of-day slice reads it.
    pub time: u64,
    pub latency_seconds: f64,
    /// What served the answer (the variant or route tier the server chose).
    #[serde(default)]
    pub served_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the judge said about one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeResult {
    pub correct: Option<bool>,
    pub coherence: Option<u8>,
    /// The reply could not be read as a verdict.
    pub unparseable: bool,
    /// The judge's reply (or the error that stopped it).
    pub raw: String,
    #[serde(default)]
    pub failed: bool,
}

/// A run's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub rows: usize,
    /// Requests that failed after retries (left out of every rate).
    pub errors: usize,
    /// Answers without a correctness verdict (a reference row the judge did not grade):
    /// left out of the accuracy.
    pub ungraded: usize,
    pub accuracy: Rate,
    pub refusal: Rate,
    pub toxicity: Rate,
    /// Answers the server's output guard blocked.
    pub guard_blocked: usize,
    /// The judge's coherence (1–5), when a judge ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coherence: Option<Mean>,
    pub judged: usize,
    pub judge_unparseable: usize,
    pub judge_failed: usize,
    /// On alias-scored rows the judge also graded: how often it agreed with the aliases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_agreement: Option<Rate>,
    pub mean_latency_seconds: f64,
}

/// One slice: the items of one segment, query type or hour of day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// `segment`, `type` or `hour` (UTC).
    pub dimension: String,
    pub value: String,
    pub accuracy: Rate,
    pub refusal: Rate,
    pub toxicity: Rate,
}

/// This run against an earlier one on the rows both answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// `previous` (the latest earlier run of the same model name) or `baseline`.
    pub against: String,
    pub run_id: String,
    pub target: String,
    /// Rows both runs graded.
    pub paired: usize,
    pub new: Rate,
    pub old: Rate,
    /// new − old with its 95% interval (Newcombe): the verdict reads it.
    pub difference: Difference,
    /// Rows right before and wrong now, and the reverse.
    pub lost: usize,
    pub gained: usize,
    /// McNemar's exact two-sided p-value on those rows (reported, not the verdict).
    pub mcnemar_p: f64,
    /// The whole interval lies below zero: this run is worse beyond chance.
    pub regression: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenRef {
    pub path: String,
    pub sha256: String,
    /// Rows in the file, and how many this run asked.
    pub rows: usize,
    pub asked: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub system: String,
    pub max_tokens: u32,
    pub concurrency: usize,
}

/// One run: one target on one golden file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// RFC 3339, UTC; `unix_time` is the same instant.
    pub time: String,
    pub unix_time: u64,
    pub target: String,
    pub server: String,
    pub golden: GoldenRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    pub settings: RunSettings,
    pub duration_seconds: f64,
    pub summary: Summary,
    pub slices: Vec<Slice>,
    pub comparisons: Vec<Comparison>,
    pub items: Vec<ItemResult>,
}

impl RunRecord {
    pub fn regressed(&self) -> bool {
        self.comparisons.iter().any(|c| c.regression)
    }
}

/// The model a target names: what comes before `@` (`chat@2:q4` → `chat`).
pub fn model_name(target: &str) -> &str {
    target.split('@').next().unwrap_or(target)
}

pub fn summarize(items: &[ItemResult]) -> Summary {
    let answered: Vec<&ItemResult> = items.iter().filter(|i| i.error.is_none()).collect();
    let graded: Vec<bool> = items.iter().filter_map(|i| i.correct).collect();
    let count = |f: &dyn Fn(&ItemResult) -> bool| answered.iter().filter(|&&i| f(i)).count();
    let judged: Vec<&JudgeResult> = items.iter().filter_map(|i| i.judge.as_ref()).collect();
    let coherence: Vec<f64> = judged
        .iter()
        .filter_map(|j| j.coherence.map(f64::from))
        .collect();
    let agreement: Vec<bool> = items
        .iter()
        .filter(|i| i.scored_by == "aliases")
        .filter_map(|i| Some(i.judge.as_ref()?.correct? == i.correct?))
        .collect();
    let latency: f64 = answered.iter().map(|i| i.latency_seconds).sum();
    Summary {
        rows: items.len(),
        errors: items.len() - answered.len(),
        ungraded: answered.iter().filter(|i| i.correct.is_none()).count(),
        accuracy: Rate::new(graded.iter().filter(|c| **c).count(), graded.len()),
        refusal: Rate::new(count(&|i| i.refusal), answered.len()),
        toxicity: Rate::new(count(&|i| i.toxic), answered.len()),
        guard_blocked: count(&|i| i.guard_blocked),
        coherence: mean_interval(&coherence),
        judged: judged.iter().filter(|j| !j.failed).count(),
        judge_unparseable: judged.iter().filter(|j| j.unparseable).count(),
        judge_failed: judged.iter().filter(|j| j.failed).count(),
        judge_agreement: (!agreement.is_empty())
            .then(|| Rate::new(agreement.iter().filter(|a| **a).count(), agreement.len())),
        mean_latency_seconds: latency / answered.len().max(1) as f64,
    }
}

/// The hour of day (UTC, `00`–`23`) of a Unix time.
pub fn hour_of_day(unix: u64) -> String {
    format!("{:02}", (unix / 3600) % 24)
}

/// Slices by segment (`-` for rows without one), query type and hour of day, each
/// sorted by value.
pub fn slices(items: &[ItemResult]) -> Vec<Slice> {
    type Key<'a> = &'a dyn Fn(&ItemResult) -> String;
    let dimensions: [(&str, Key); 3] = [
        ("segment", &|i: &ItemResult| {
            i.segment.clone().unwrap_or_else(|| "-".into())
        }),
        ("type", &|i: &ItemResult| i.query_type.clone()),
        ("hour", &|i: &ItemResult| hour_of_day(i.time)),
    ];
    let mut out = Vec::new();
    for (dimension, key) in dimensions {
        let mut groups: BTreeMap<String, Vec<&ItemResult>> = BTreeMap::new();
        for item in items {
            groups.entry(key(item)).or_default().push(item);
        }
        for (value, group) in groups {
            let answered: Vec<&&ItemResult> = group.iter().filter(|i| i.error.is_none()).collect();
            let graded: Vec<bool> = group.iter().filter_map(|i| i.correct).collect();
            out.push(Slice {
                dimension: dimension.into(),
                value,
                accuracy: Rate::new(graded.iter().filter(|c| **c).count(), graded.len()),
                refusal: Rate::new(
                    answered.iter().filter(|i| i.refusal).count(),
                    answered.len(),
                ),
                toxicity: Rate::new(answered.iter().filter(|i| i.toxic).count(), answered.len()),
            });
        }
    }
    out
}

/// `new` against `old` on the rows (by id) both graded; `None` when they share none.
pub fn compare(new: &RunRecord, old: &RunRecord, against: &str) -> Option<Comparison> {
    let before: HashMap<&str, bool> = old
        .items
        .iter()
        .filter_map(|i| Some((i.id.as_str(), i.correct?)))
        .collect();
    let pairs: Vec<(bool, bool)> = new
        .items
        .iter()
        .filter_map(|i| Some((i.correct?, *before.get(i.id.as_str())?)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len();
    let new_rate = Rate::new(pairs.iter().filter(|p| p.0).count(), n);
    let old_rate = Rate::new(pairs.iter().filter(|p| p.1).count(), n);
    let lost = pairs.iter().filter(|p| p.1 && !p.0).count();
    let gained = pairs.iter().filter(|p| p.0 && !p.1).count();
    let difference = newcombe_difference(&new_rate, &old_rate);
    Some(Comparison {
        against: against.into(),
        run_id: old.run_id.clone(),
        target: old.target.clone(),
        paired: n,
        new: new_rate,
        old: old_rate,
        difference,
        lost,
        gained,
        mcnemar_p: mcnemar_exact(lost, gained),
        regression: difference.high < 0.0,
    })
}

/// The latest run in `history` before `run` of the same golden file (by content)
/// whose target names the same model.
pub fn previous_run<'a>(history: &'a [RunRecord], run: &RunRecord) -> Option<&'a RunRecord> {
    history
        .iter()
        .filter(|r| r.run_id != run.run_id)
        .filter(|r| r.golden.sha256 == run.golden.sha256)
        .filter(|r| model_name(&r.target) == model_name(&run.target))
        .rfind(|r| r.unix_time <= run.unix_time)
}

/// Reads the results file: its runs in file order, and how many lines were unreadable
/// (a torn last line after a crash is skipped, not fatal). A missing file is empty.
pub fn read_runs(path: &Path) -> Result<(Vec<RunRecord>, usize), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut runs = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(run) => runs.push(run),
            Err(_) => bad += 1,
        }
    }
    Ok((runs, bad))
}

/// Appends `run` as one line, creating the file and its directory.
pub fn append_run(path: &Path, run: &RunRecord) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut line = serde_json::to_string(run).map_err(|e| e.to_string())?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // One write of the whole line, so concurrent appenders do not interleave lines.
    file.write_all(line.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `2026-12-06T14:03:09Z` for a Unix time.
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil: days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn item(id: &str, correct: Option<bool>) -> ItemResult {
        ItemResult {
            id: id.into(),
            prompt: format!("Who is {id}?"),
            answer: "x".into(),
            correct,
            scored_by: "aliases".into(),
            judge: None,
            refusal: false,
            toxic: false,
            toxicity_score: 0.0,
            guard_blocked: false,
            segment: None,
            query_type: "who".into(),
            time: 1_798_761_599, // 2026-12-31T23:59:59Z
            latency_seconds: 1.0,
            served_by: "m".into(),
            error: None,
        }
    }

    pub(crate) fn run(id: &str, target: &str, unix: u64, items: Vec<ItemResult>) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            time: rfc3339(unix),
            unix_time: unix,
            target: target.into(),
            server: "http://127.0.0.1:8080".into(),
            golden: GoldenRef {
                path: "g.jsonl".into(),
                sha256: "abc".into(),
                rows: items.len(),
                asked: items.len(),
            },
            judge: None,
            settings: RunSettings {
                system: String::new(),
                max_tokens: 32,
                concurrency: 2,
            },
            duration_seconds: 1.0,
            summary: summarize(&items),
            slices: slices(&items),
            comparisons: Vec::new(),
            items,
        }
    }

    fn items(right: usize, n: usize) -> Vec<ItemResult> {
        (0..n)
            .map(|i| item(&format!("q{i}"), Some(i < right)))
            .collect()
    }

    #[test]
    fn summaries_leave_failures_out_of_the_rates() {
        let mut v = items(3, 10);
        v[9].correct = None;
        v[9].error = Some("HTTP 503".into());
        v[0].refusal = true;
        v[1].toxic = true;
        let s = summarize(&v);
        assert_eq!((s.rows, s.errors), (10, 1));
        assert_eq!((s.accuracy.successes, s.accuracy.n), (3, 9));
        assert_eq!((s.refusal.successes, s.refusal.n), (1, 9));
        assert_eq!((s.toxicity.successes, s.toxicity.n), (1, 9));
        assert!(s.coherence.is_none());
    }

    #[test]
    fn slices_group_by_segment_type_and_hour() {
        let mut v = items(2, 4);
        v[0].segment = Some("pro".into());
        v[1].query_type = "what".into();
        v[2].time = 3600 * 5 + 10;
        let s = slices(&v);
        let find = |d: &str, value: &str| {
            s.iter()
                .find(|x| x.dimension == d && x.value == value)
                .unwrap()
                .accuracy
        };
        assert_eq!((find("segment", "pro").n, find("segment", "-").n), (1, 3));
        assert_eq!((find("type", "who").n, find("type", "what").n), (3, 1));
        assert_eq!((find("hour", "23").n, find("hour", "05").n), (3, 1));
        assert_eq!(find("hour", "05").successes, 0);
    }

    /// 20/100 before, 8/100 now on the same rows: Wilson [0.1333, 0.2888] and
    /// [0.0411, 0.1500]; d = −0.12, upper = −0.12 + √(0.07² + 0.0667²) = −0.0233 < 0.
    #[test]
    fn a_worse_run_is_a_regression_and_an_equal_one_is_not() {
        let old = run("a", "m@1", 10, items(20, 100));
        let new = run("b", "m@2", 20, items(8, 100));
        let c = compare(&new, &old, "previous").unwrap();
        assert_eq!((c.paired, c.lost, c.gained), (100, 12, 0));
        assert!((c.difference.difference + 0.12).abs() < 1e-12);
        assert!((c.difference.high - -0.0233).abs() < 1e-3, "{c:?}");
        assert!(c.regression);
        // 2·(1/2)^12.
        assert!((c.mcnemar_p - 2.0 / 4096.0).abs() < 1e-12);
        let same = run("c", "m@2", 30, items(20, 100));
        let c = compare(&same, &old, "previous").unwrap();
        assert!(!c.regression && c.difference.difference == 0.0);
        // 14/100 vs 20/100 is within chance.
        let slightly = run("d", "m@2", 30, items(14, 100));
        assert!(!compare(&slightly, &old, "previous").unwrap().regression);
    }

    #[test]
    fn comparisons_use_only_rows_both_runs_graded() {
        let old = run("a", "m", 10, items(5, 10));
        let mut newer = items(5, 20);
        newer[0].correct = None;
        let new = run("b", "m", 20, newer);
        let c = compare(&new, &old, "baseline").unwrap();
        assert_eq!(c.paired, 9);
        let other = run("c", "m", 20, vec![item("zz", Some(true))]);
        assert!(compare(&other, &old, "baseline").is_none());
    }

    #[test]
    fn the_previous_run_is_the_latest_of_the_same_model_and_golden_file() {
        let mut history = vec![
            run("1", "chat@1", 10, items(1, 2)),
            run("2", "other", 20, items(1, 2)),
            run("3", "chat@2:q4", 30, items(1, 2)),
            run("4", "chat", 40, items(1, 2)),
        ];
        history[3].golden.sha256 = "different".into();
        let now = run("5", "chat@3", 50, items(1, 2));
        assert_eq!(previous_run(&history, &now).unwrap().run_id, "3");
        assert_eq!(model_name("chat@2:q4"), "chat");
        assert_eq!(model_name("auto"), "auto");
    }

    #[test]
    fn runs_round_trip_through_the_results_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evals").join("runs.jsonl");
        assert_eq!(read_runs(&path).unwrap().0.len(), 0);
        let a = run("a", "m", 10, items(1, 3));
        append_run(&path, &a).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"torn\n")
            .unwrap();
        let (runs, bad) = read_runs(&path).unwrap();
        assert_eq!((runs, bad), (vec![a], 1));
    }

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3_661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(hour_of_day(1_798_761_599), "23");
    }
}
