//! The text that `floodgate eval run` and `floodgate eval report` print: a table per
//! run with its slices, one verdict line per comparison (`REGRESSION` or `ok`), and
//! accuracy over time per target from the results file.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::record::{Comparison, RunRecord};
use super::stats::Rate;

fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn coherence(run: &RunRecord) -> String {
    run.summary.coherence.map_or_else(
        || "-".to_string(),
        |m| format!("{:.2} [{:.2}, {:.2}]", m.mean, m.low, m.high),
    )
}

/// A run's table: the summary, then its slices.
pub fn render_run(run: &RunRecord) -> String {
    let s = &run.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} on {} ({} of {} rows, sha256 {}), run {} at {}, {:.0} s",
        run.target,
        run.golden.path,
        run.golden.asked,
        run.golden.rows,
        short_sha(&run.golden.sha256),
        run.run_id,
        run.time,
        run.duration_seconds
    );
    let _ = writeln!(
        out,
        "{:>5}  {:<22} {:<20} {:<20} {:<20} {:>6}",
        "n",
        "accuracy [95% CI]",
        "refusal [95% CI]",
        "toxicity [95% CI]",
        "coherence (1-5)",
        "errors"
    );
    let _ = writeln!(
        out,
        "{:>5}  {:<22} {:<20} {:<20} {:<20} {:>6}",
        s.accuracy.n,
        s.accuracy.percent(),
        s.refusal.percent(),
        s.toxicity.percent(),
        coherence(run),
        s.errors
    );
    if let Some(judge) = &run.judge {
        let agreement = s
            .judge_agreement
            .map(|a| format!(", agrees with the aliases on {}", a.percent()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "judge {judge}: {} verdicts, {} unparseable, {} failed, {} answers left ungraded{agreement}",
            s.judged, s.judge_unparseable, s.judge_failed, s.ungraded
        );
    }
    if s.guard_blocked > 0 {
        let _ = writeln!(
            out,
            "the server's output guard blocked {} answers",
            s.guard_blocked
        );
    }
    let _ = writeln!(
        out,
        "slices: {:<8} {:<12} {:>5}  {:<22} {:<20} {:<20}",
        "by", "value", "n", "accuracy [95% CI]", "refusal", "toxicity"
    );
    for slice in &run.slices {
        let _ = writeln!(
            out,
            "        {:<8} {:<12} {:>5}  {:<22} {:<20} {:<20}",
            slice.dimension,
            slice.value,
            slice.accuracy.n,
            slice.accuracy.percent(),
            slice.refusal.percent(),
            slice.toxicity.percent()
        );
    }
    out
}

/// One line per comparison: `REGRESSION …` when the interval lies below zero, else
/// `ok …`.
pub fn render_comparison(run: &RunRecord, c: &Comparison) -> String {
    let verdict = if c.regression { "REGRESSION" } else { "ok" };
    format!(
        "{verdict}: {} vs {} {} (run {}): accuracy {:.1}% vs {:.1}% on {} paired rows, \
         difference {:+.1} points [95% CI {:+.1}, {:+.1}], {} lost / {} gained, McNemar exact p = {}",
        run.target,
        c.against,
        c.target,
        c.run_id,
        100.0 * c.new.rate,
        100.0 * c.old.rate,
        c.paired,
        100.0 * c.difference.difference,
        100.0 * c.difference.high.min(c.difference.low),
        100.0 * c.difference.high.max(c.difference.low),
        c.lost,
        c.gained,
        p_value(c.mcnemar_p)
    )
}

/// `0.031`, or `2.4e-5` below 0.001.
fn p_value(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// Every verdict of `runs`, or a line saying there was nothing to compare with.
pub fn render_verdicts(runs: &[RunRecord]) -> String {
    let mut out = String::new();
    for run in runs {
        if run.comparisons.is_empty() {
            let _ = writeln!(
                out,
                "no comparison: {} has no earlier run of {} (and no baseline)",
                run.target, run.golden.path
            );
        }
        for c in &run.comparisons {
            let _ = writeln!(out, "{}", render_comparison(run, c));
        }
    }
    out
}

/// Accuracy over time per target, per golden file (by content), from the results file.
pub fn render_history(runs: &[RunRecord]) -> String {
    // By content: the same file under another path is the same golden set.
    let mut by_golden: BTreeMap<&str, (&str, BTreeMap<&str, Vec<&RunRecord>>)> = BTreeMap::new();
    for run in runs {
        let (path, targets) = by_golden
            .entry(run.golden.sha256.as_str())
            .or_insert((run.golden.path.as_str(), BTreeMap::new()));
        *path = run.golden.path.as_str();
        targets.entry(run.target.as_str()).or_default().push(run);
    }
    let mut out = String::new();
    for (sha, (path, targets)) in by_golden {
        let _ = writeln!(out, "== {path} (sha256 {})", short_sha(sha));
        let _ = writeln!(
            out,
            "{:<24} {:<20} {:>5}  {:<22} {:<20} {:<20} {:<12} verdicts",
            "target", "time", "n", "accuracy [95% CI]", "refusal", "toxicity", "coherence"
        );
        for (target, mut list) in targets {
            list.sort_by_key(|r| r.unix_time);
            for run in list {
                let verdicts: Vec<String> = run
                    .comparisons
                    .iter()
                    .map(|c| {
                        format!(
                            "{} vs {} {}",
                            if c.regression { "REGRESSION" } else { "ok" },
                            c.against,
                            c.target
                        )
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "{:<24} {:<20} {:>5}  {:<22} {:<20} {:<20} {:<12} {}",
                    target,
                    run.time,
                    run.summary.accuracy.n,
                    run.summary.accuracy.percent(),
                    run.summary.refusal.percent(),
                    run.summary.toxicity.percent(),
                    run.summary
                        .coherence
                        .map_or_else(|| "-".to_string(), |m| format!("{:.2}", m.mean)),
                    if verdicts.is_empty() {
                        "-".to_string()
                    } else {
                        verdicts.join("; ")
                    }
                );
            }
        }
    }
    out
}

/// The (time, accuracy) series per "target (golden file)" for the chart.
pub fn series(runs: &[RunRecord]) -> BTreeMap<String, Vec<(u64, Rate)>> {
    let mut out: BTreeMap<String, Vec<(u64, Rate)>> = BTreeMap::new();
    for run in runs {
        let file = std::path::Path::new(&run.golden.path)
            .file_name()
            .map_or_else(
                || run.golden.path.clone(),
                |f| f.to_string_lossy().into_owned(),
            );
        out.entry(format!("{} ({file})", run.target))
            .or_default()
            .push((run.unix_time, run.summary.accuracy));
    }
    for points in out.values_mut() {
        points.sort_by_key(|p| p.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::record::compare;
    use super::super::record::tests::{item, run};
    use super::*;

    #[test]
    fn a_run_prints_its_intervals_slices_and_verdicts() {
        let items = |right: usize| -> Vec<_> {
            (0..50)
                .map(|i| item(&format!("q{i}"), Some(i < right)))
                .collect()
        };
        let old = run("old", "good", 10, items(20));
        let mut new = run("new", "bad", 20, items(2));
        let verdict = compare(&new, &old, "baseline").unwrap();
        new.comparisons.push(verdict);
        let table = render_run(&new);
        assert!(table.contains("4.0% [1.1, 13.5]"), "{table}");
        assert!(table.contains("type     who"), "{table}");
        assert!(table.contains("hour     23"), "{table}");
        let verdicts = render_verdicts(&[new.clone()]);
        assert!(
            verdicts.starts_with("REGRESSION: bad vs baseline good"),
            "{verdicts}"
        );
        // 18 lost, 0 gained: 2·2⁻¹⁸.
        assert!(
            verdicts.contains("18 lost / 0 gained, McNemar exact p = 7.6e-6"),
            "{verdicts}"
        );
        let history = render_history(&[old, new]);
        assert!(history.contains("REGRESSION vs baseline good"), "{history}");
    }
}
