//! Dashboard sections fed by other parts of the system than the per-minute rollups: the
//! drift state per route or model, and evaluation scores over time. Both are read from
//! the analytics store ([`Extras::load`]) like `GET /admin/drift` and `floodgate eval
//! report`; never from the request path.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::charts::{Chart, Series};
use super::html::escape;
use crate::analytics::{DriftState, EvalRunRecord, RetrainSuggestion, StoredProfile};
use crate::AppState;

/// Evaluation runs shown, at most (the newest).
const EVAL_RUNS_MAX: u32 = 500;

/// What the two sections show, read before the page is rendered.
#[derive(Default)]
pub struct Extras {
    profiles: Vec<StoredProfile>,
    states: Vec<DriftState>,
    suggestions: Vec<RetrainSuggestion>,
    evals: Vec<EvalRunRecord>,
    /// A store error, shown instead of the sections.
    error: Option<String>,
    now: i64,
    window_start: i64,
}

impl Extras {
    /// Reads the drift state and the evaluation runs of the last `days`.
    pub async fn load(state: &AppState, now: i64, days: i64) -> Extras {
        let a = &state.analytics;
        let read = async {
            Ok::<_, sqlx::Error>(Extras {
                profiles: a.profiles().await?,
                states: a.drift_states().await?,
                suggestions: a.suggestions(5).await?,
                evals: a.eval_runs(now - days * 86_400, EVAL_RUNS_MAX).await?,
                error: None,
                now,
                window_start: now - days * 86_400,
            })
        };
        read.await.unwrap_or_else(|e| Extras {
            error: Some(e.to_string()),
            ..Extras::default()
        })
    }
}

fn when(t: i64) -> String {
    let day = crate::records::utc_day(t);
    let secs = t.rem_euclid(86_400);
    format!("{day} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

/// The "Drift" section's body: per key, its profile and the latest window's verdict with
/// the features that moved, then the newest "retrain suggested" records.
pub fn drift(x: &Extras) -> String {
    if let Some(e) = &x.error {
        return format!(
            "<p class=\"muted\">The analytics store cannot be read: {}</p>",
            escape(e)
        );
    }
    if x.profiles.is_empty() && x.states.is_empty() {
        return "<p class=\"muted\">No drift profile yet: build one with <code>floodgate drift \
                profile --key ROUTE_OR_MODEL --window 7d</code> (or <code>--from FILE.jsonl</code>); \
                live windows are then tested against it.</p>"
            .into();
    }
    let body = crate::admin::drift_json(&x.profiles, &x.states, &x.suggestions);
    let mut out = String::from(
        "<table><thead><tr><th>route / model</th><th>status</th><th>profile</th>\
         <th>windows</th><th>alarms</th><th>latest window</th><th>moved</th></tr></thead><tbody>",
    );
    for k in body["data"].as_array().into_iter().flatten() {
        let status = k["status"].as_str().unwrap_or("");
        let class = if status == "drift" { "bad" } else { "" };
        let moved: Vec<String> = k["latest"]["features"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["drifted"] == true)
            .map(|f| {
                format!(
                    "{} ({} {:.3} &gt; {:.3})",
                    escape(f["name"].as_str().unwrap_or("")),
                    escape(f["test"].as_str().unwrap_or("")),
                    f["statistic"].as_f64().unwrap_or(0.0),
                    f["threshold"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        let profile = match &k["profile"] {
            serde_json::Value::Null => "none".to_string(),
            p => format!(
                "{} samples, {}",
                p["samples"].as_u64().unwrap_or(0),
                escape(p["source"].as_str().unwrap_or(""))
            ),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(k["key"].as_str().unwrap_or("")),
            escape(status),
            profile,
            k["windows"].as_i64().unwrap_or(0),
            k["alarms"].as_i64().unwrap_or(0),
            k["updated_at"].as_i64().map_or_else(|| "-".into(), when),
            if moved.is_empty() { "-".into() } else { moved.join(", ") },
        );
    }
    out.push_str("</tbody></table>");
    if !x.suggestions.is_empty() {
        out.push_str("<h3>Retrain suggested</h3><ul>");
        for s in &x.suggestions {
            let _ = write!(
                out,
                "<li>{}: <b>{}</b> — {}</li>",
                when(s.created_at),
                escape(&s.key),
                escape(&s.features.join(", "))
            );
        }
        out.push_str("</ul>");
    }
    out
}

/// The "Evaluation" section's body: accuracy over time per target (model, version,
/// variant or route) and golden set, with the latest run's interval and verdict.
pub fn evaluation(x: &Extras) -> String {
    if let Some(e) = &x.error {
        return format!(
            "<p class=\"muted\">The analytics store cannot be read: {}</p>",
            escape(e)
        );
    }
    if x.evals.is_empty() {
        return "<p class=\"muted\">No evaluation runs yet: <code>floodgate eval run --golden \
                data/golden/qa.test.jsonl --target MODEL</code> stores its results here.</p>"
            .into();
    }
    // One series per (target, golden), one point per run, in run order.
    let mut by: BTreeMap<(&str, &str), Vec<&EvalRunRecord>> = BTreeMap::new();
    for r in &x.evals {
        by.entry((r.target.as_str(), r.golden.as_str()))
            .or_default()
            .push(r);
    }
    // One slot per day of the window, each holding that day's latest run.
    let start = x.window_start - x.window_start.rem_euclid(86_400);
    let days = usize::try_from((x.now - start) / 86_400 + 1)
        .unwrap_or(1)
        .max(1);
    let mut chart = Chart::new("Accuracy, latest run per day", "%", start, 86_400, days);
    for (i, ((target, golden), rs)) in by.iter().enumerate() {
        let mut values = vec![None; days];
        for r in rs {
            let slot = usize::try_from((r.created_at - start) / 86_400).unwrap_or(0);
            if let (Some(v), Some(a)) = (values.get_mut(slot), r.accuracy) {
                *v = Some(a * 100.0);
            }
        }
        chart = chart.with(Series::new(format!("{target} · {golden}"), values, i));
    }
    let mut out = chart.render();
    out.push_str(
        "<table><thead><tr><th>target</th><th>golden set</th><th>runs</th><th>latest</th>\
         <th>accuracy [95% CI]</th><th>n</th><th>verdict</th></tr></thead><tbody>",
    );
    for ((target, golden), rs) in &by {
        let Some(last) = rs.last() else { continue };
        let ci = match (last.accuracy, last.accuracy_low, last.accuracy_high) {
            (Some(a), Some(lo), Some(hi)) => {
                format!("{:.1}% [{:.1}, {:.1}]", a * 100.0, lo * 100.0, hi * 100.0)
            }
            (Some(a), _, _) => format!("{:.1}%", a * 100.0),
            _ => "-".into(),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            escape(target),
            escape(golden),
            rs.len(),
            when(last.created_at),
            ci,
            last.n,
            if last.regression { "bad" } else { "" },
            if last.regression { "regression" } else { "ok" },
        );
    }
    out.push_str("</tbody></table>");
    out
}
