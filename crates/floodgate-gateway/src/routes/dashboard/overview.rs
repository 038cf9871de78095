//! `GET /dashboard`: the rollups of a window of hours, summed into slots of a few
//! minutes (at most [`MAX_POINTS`] per chart), drawn as charts, a table per route, model
//! and version, and the sections other subsystems fill in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::records::stats::{minute_of, Totals, OTHER, REFUSED};
use crate::records::MinuteStats;
use crate::AppState;

use super::charts::{Chart, Dash, Series};
use super::html::{escape, millis, number, percent, usd};
use super::panels;

/// Points per chart, at most.
pub const MAX_POINTS: i64 = 120;
/// Slot sizes to choose from, in seconds.
const STEPS: [i64; 8] = [60, 120, 300, 600, 900, 1800, 3600, 7200];
/// Series per chart, at most: the busiest keys, the rest summed as "other".
const MAX_SERIES: usize = 8;

/// The slots a page shows: `slots` of `step` seconds from `start`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: i64,
    pub step: i64,
    pub slots: usize,
}

impl Window {
    /// The last `hours` hours up to the end of the current minute.
    pub fn ending_at(now: i64, hours: u32) -> Self {
        let end = minute_of(now) + 60;
        let span = i64::from(hours.max(1)) * 3600;
        let step = STEPS
            .into_iter()
            .find(|s| span / s <= MAX_POINTS)
            .unwrap_or(STEPS[STEPS.len() - 1]);
        let first = end - span;
        let start = first - first.rem_euclid(step);
        let slots = ((end - start) + step - 1) / step;
        Self {
            start,
            step,
            slots: usize::try_from(slots).unwrap_or(1).max(1),
        }
    }

    /// The first second after the window.
    pub fn end(&self) -> i64 {
        self.start + self.step * self.slots as i64
    }

    fn slot(&self, minute: i64) -> Option<usize> {
        if minute < self.start || minute >= self.end() {
            return None;
        }
        usize::try_from((minute - self.start) / self.step).ok()
    }

    /// Per-minute rate of a count in one slot.
    fn per_minute(&self, count: u64) -> f64 {
        count as f64 * 60.0 / self.step as f64
    }

    fn chart(&self, title: &str, unit: &str) -> Chart {
        Chart::new(title, unit, self.start, self.step, self.slots)
    }
}

/// Whether a model name is a real variant (not [`REFUSED`] or [`OTHER`]).
fn is_variant(model: &str) -> bool {
    model != REFUSED && model != OTHER
}

/// Rows summed per key and slot.
pub fn by_slot<K: Ord>(
    rows: &[MinuteStats],
    window: &Window,
    key: impl Fn(&MinuteStats) -> Option<K>,
) -> BTreeMap<K, Vec<Totals>> {
    let mut out: BTreeMap<K, Vec<Totals>> = BTreeMap::new();
    for row in rows {
        let (Some(k), Some(slot)) = (key(row), window.slot(row.minute)) else {
            continue;
        };
        out.entry(k)
            .or_insert_with(|| vec![Totals::default(); window.slots])[slot]
            .add(&row.totals);
    }
    out
}

/// The busiest `MAX_SERIES - 1` keys, and the rest summed under "other" (when there are
/// more than `MAX_SERIES`).
fn busiest(mut map: BTreeMap<String, Vec<Totals>>) -> Vec<(String, Vec<Totals>)> {
    let mut keys: Vec<(u64, String)> = map
        .iter()
        .map(|(k, v)| (v.iter().map(|t| t.requests).sum(), k.clone()))
        .collect();
    if keys.len() <= MAX_SERIES {
        return map.into_iter().collect();
    }
    keys.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut out = Vec::new();
    let mut rest: Option<Vec<Totals>> = None;
    for (i, (_, k)) in keys.into_iter().enumerate() {
        let Some(v) = map.remove(&k) else { continue };
        if i < MAX_SERIES - 1 {
            out.push((k, v));
        } else {
            let acc = rest.get_or_insert_with(|| vec![Totals::default(); v.len()]);
            for (a, t) in acc.iter_mut().zip(&v) {
                a.add(t);
            }
        }
    }
    if let Some(rest) = rest {
        out.push(("other".into(), rest));
    }
    out
}

fn values(slots: &[Totals], f: impl Fn(&Totals) -> Option<f64>) -> Vec<Option<f64>> {
    slots.iter().map(f).collect()
}

/// The whole overview body (inside `<main>`).
pub fn render(
    state: &AppState,
    window: &Window,
    rows: &[MinuteStats],
    now: i64,
    extras: &panels::Extras,
) -> String {
    let mut all = Totals::default();
    let mut served = Totals::default();
    for r in rows {
        all.add(&r.totals);
        if is_variant(&r.model) {
            served.add(&r.totals);
        }
    }
    let hours = (window.end() - window.start) as f64 / 3600.0;
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<p class=\"muted\">Last {} from {} to {} UTC, {}-minute points; every figure is computed from \
         the request events. Refreshes every 30 s; updated {}.</p>",
        escape(&format!("{hours:.0} h")),
        super::html::clock(window.start),
        super::html::clock(window.end()),
        window.step / 60,
        escape(&super::html::timestamp(now)),
    );
    tiles(&mut out, &all, &served, hours);

    out.push_str("<div class=\"grid\">");
    let panel = |out: &mut String, id: &str, title: &str, chart: &Chart, note: &str| {
        let _ = write!(
            out,
            "<section class=\"panel\" id=\"{id}\"><h2>{}</h2>{}{}</section>",
            escape(title),
            chart.render(),
            note
        );
    };

    // Throughput by route.
    let by_route = busiest(by_slot(rows, window, |r| Some(r.route.clone())));
    let mut chart = window.chart("Throughput by route", "requests/min");
    for (i, (route, slots)) in by_route.iter().enumerate() {
        chart = chart.with(Series::new(
            route.as_str(),
            values(slots, |t| Some(window.per_minute(t.requests))),
            i,
        ));
    }
    panel(&mut out, "throughput", "Throughput", &chart, "");

    // Errors and refusals, all routes.
    let total = by_slot(rows, window, |_| Some(()))
        .remove(&())
        .unwrap_or_else(|| vec![Totals::default(); window.slots]);
    let chart = window
        .chart("Errors and refusals", "requests/min")
        .with(Series::new(
            "errors (5xx, failed)",
            values(&total, |t| Some(window.per_minute(t.errors))),
            3,
        ))
        .with(Series::new(
            "refused (4xx, 429)",
            values(&total, |t| Some(window.per_minute(t.refused))),
            1,
        ));
    panel(&mut out, "errors", "Errors and refusals", &chart, "");

    // Latency and time to first token per model version.
    let by_model = busiest(by_slot(rows, window, |r| {
        is_variant(&r.model).then(|| r.model.clone())
    }));
    let quantiles = [
        (0.5, "p50", Dash::Solid),
        (0.95, "p95", Dash::Dashed),
        (0.99, "p99", Dash::Dotted),
    ];
    let mut chart = window.chart("Latency per model version", "ms");
    for (i, (model, slots)) in by_model.iter().enumerate() {
        for (q, name, dash) in quantiles {
            chart = chart.with(
                Series::new(
                    format!("{model} {name}"),
                    values(slots, |t| t.latency_ms(q)),
                    i,
                )
                .dashed(dash),
            );
        }
    }
    panel(
        &mut out,
        "latency",
        "Latency p50 / p95 / p99 per model version",
        &chart,
        "",
    );
    let mut chart = window.chart("Time to first token per model version", "ms");
    for (i, (model, slots)) in by_model.iter().enumerate() {
        for (q, name, dash) in &quantiles[..2] {
            chart = chart.with(
                Series::new(
                    format!("{model} {name}"),
                    values(slots, |t| t.ttft_ms(*q)),
                    i,
                )
                .dashed(*dash),
            );
        }
    }
    panel(
        &mut out,
        "ttft",
        "Time to first token p50 / p95 per model version",
        &chart,
        "",
    );

    // Tokens.
    let chart = window
        .chart("Tokens per minute", "tokens/min")
        .with(Series::new(
            "prompt (in)",
            values(&total, |t| Some(window.per_minute(t.prompt_tokens))),
            0,
        ))
        .with(Series::new(
            "completion (out)",
            values(&total, |t| Some(window.per_minute(t.completion_tokens))),
            1,
        ));
    panel(&mut out, "tokens", "Tokens in / out", &chart, "");

    // Cost per hour, stacked by model version.
    let by_cost = busiest(by_slot(rows, window, |r| {
        (is_variant(&r.model) || r.totals.cost_usd > 0.0).then(|| r.model.clone())
    }));
    let mut chart = window
        .chart("Cost per hour by model version", "USD/h")
        .bars();
    for (i, (model, slots)) in by_cost.iter().enumerate() {
        chart = chart.with(Series::new(
            model.as_str(),
            values(slots, |t| Some(t.cost_usd * 3600.0 / window.step as f64)),
            i,
        ));
    }
    panel(
        &mut out,
        "cost",
        "Cost per hour, per model version",
        &chart,
        "",
    );

    // Escalation rate per cascade route.
    let config = state.config();
    let cascades: BTreeSet<String> = config
        .route
        .iter()
        .filter(|r| r.is_cascade())
        .map(|r| r.name.clone())
        .chain(
            rows.iter()
                .filter(|r| r.totals.escalated > 0)
                .map(|r| r.route.clone()),
        )
        .collect();
    let by_cascade = busiest(by_slot(rows, window, |r| {
        cascades.contains(&r.route).then(|| r.route.clone())
    }));
    let mut chart = window.chart("Escalation rate per route", "% escalated");
    for (i, (route, slots)) in by_cascade.iter().enumerate() {
        chart = chart.with(Series::new(
            route.as_str(),
            values(slots, |t| {
                (t.requests > 0).then(|| 100.0 * t.escalated as f64 / t.requests as f64)
            }),
            i,
        ));
    }
    let note = if cascades.is_empty() {
        "<p class=\"muted\">No cascade route is configured.</p>"
    } else {
        ""
    };
    panel(&mut out, "escalation", "Escalation rate", &chart, note);

    // Guards.
    let chart = window
        .chart("Guard blocks and flags", "requests/min")
        .with(Series::new(
            "blocked",
            values(&total, |t| Some(window.per_minute(t.guard_blocked))),
            3,
        ))
        .with(Series::new(
            "flagged",
            values(&total, |t| Some(window.per_minute(t.guard_flagged))),
            1,
        ))
        .with(Series::new(
            "redacted",
            values(&total, |t| Some(window.per_minute(t.guard_redacted))),
            4,
        ));
    panel(&mut out, "guard", "Guard blocks and flags", &chart, "");

    // Abuse clusters.
    let by_abuse = busiest(by_slot(rows, window, |r| {
        (r.totals.abuse_refused > 0).then(|| r.route.clone())
    }));
    let mut chart = window
        .chart("Abuse refusals", "requests/min")
        .with(Series::new(
            "all routes",
            values(&total, |t| Some(window.per_minute(t.abuse_refused))),
            8,
        ));
    for (i, (route, slots)) in by_abuse.iter().enumerate() {
        chart = chart.with(Series::new(
            route.as_str(),
            values(slots, |t| Some(window.per_minute(t.abuse_refused))),
            i,
        ));
    }
    let abuse_note = format!(
        "<p class=\"muted\">{} requests in this window were refused as members of a tripped \
         near-duplicate cluster or from a key sending maximal-cost requests (codes \
         <code>abuse_throttled</code>, <code>abuse_blocked</code>). Which clusters are tripped \
         right now is held in each gateway's memory, not in the events; the reasons are in \
         the gateways' logs.</p>",
        all.abuse_refused
    );
    panel(&mut out, "abuse", "Abuse clusters", &chart, &abuse_note);

    let _ = write!(
        out,
        "<section class=\"panel\" id=\"drift\"><h2>Drift</h2>{}</section>\
         <section class=\"panel\" id=\"evaluation\"><h2>Evaluation</h2>{}</section>",
        panels::drift(extras),
        panels::evaluation(extras)
    );
    out.push_str("</div>");

    table(&mut out, rows, window);
    out
}

fn tiles(out: &mut String, all: &Totals, served: &Totals, hours: f64) {
    let minutes = (hours * 60.0).max(1.0);
    let tile = |out: &mut String, value: String, label: &str| {
        let _ = write!(
            out,
            "<div class=\"tile\"><b>{}</b><span>{}</span></div>",
            escape(&value),
            escape(label)
        );
    };
    out.push_str("<div class=\"tiles\">");
    tile(out, number(all.requests as f64), "requests");
    tile(
        out,
        number(all.requests as f64 / minutes),
        "requests/min (mean)",
    );
    tile(out, percent(all.error_rate()), "errors");
    tile(
        out,
        percent(if all.requests == 0 {
            0.0
        } else {
            all.refused as f64 / all.requests as f64
        }),
        "refused",
    );
    tile(out, millis(served.latency_ms(0.5)), "latency p50");
    tile(out, millis(served.latency_ms(0.95)), "latency p95");
    tile(out, millis(served.latency_ms(0.99)), "latency p99");
    tile(out, millis(served.ttft_ms(0.95)), "TTFT p95");
    tile(
        out,
        number((all.prompt_tokens + all.completion_tokens) as f64),
        "tokens",
    );
    tile(out, usd(all.cost_usd), "cost");
    tile(
        out,
        usd(all.cost_usd / hours.max(1.0 / 60.0)),
        "cost per hour (mean)",
    );
    out.push_str("</div>");
}

/// The table of p50/p95/p99 (and the rest) per route, model and version.
fn table(out: &mut String, rows: &[MinuteStats], window: &Window) {
    let mut sums: BTreeMap<(String, String), Totals> = BTreeMap::new();
    for r in rows.iter().filter(|r| window.slot(r.minute).is_some()) {
        sums.entry((r.route.clone(), r.model.clone()))
            .or_default()
            .add(&r.totals);
    }
    out.push_str(
        "<section class=\"panel wide\" id=\"table\" style=\"margin-top:14px\">\
         <h2>Per route, model and version</h2><table><thead><tr>\
         <th class=\"l\">route</th><th class=\"l\">model</th><th class=\"l\">version</th>\
         <th>requests</th><th>errors</th><th>refused</th><th>escalated</th>\
         <th>p50</th><th>p95</th><th>p99</th><th>TTFT p50</th><th>TTFT p95</th>\
         <th>tokens in</th><th>tokens out</th><th>cost</th></tr></thead><tbody>",
    );
    if sums.is_empty() {
        out.push_str(
            "<tr><td class=\"l muted\" colspan=\"15\">No requests in this window.</td></tr>",
        );
    }
    for ((route, variant), t) in &sums {
        let (model, version) = variant.split_once('@').unwrap_or((variant.as_str(), ""));
        let share = |n: u64| {
            percent(if t.requests == 0 {
                0.0
            } else {
                n as f64 / t.requests as f64
            })
        };
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(route),
            escape(model),
            escape(if version.is_empty() { "–" } else { version }),
            t.requests,
            share(t.errors),
            share(t.refused),
            share(t.escalated),
            millis(t.latency_ms(0.5)),
            millis(t.latency_ms(0.95)),
            millis(t.latency_ms(0.99)),
            millis(t.ttft_ms(0.5)),
            millis(t.ttft_ms(0.95)),
            t.prompt_tokens,
            t.completion_tokens,
            usd(t.cost_usd),
        );
    }
    out.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_keep_to_at_most_120_points_on_round_slots() {
        let now = 1_700_000_000; // 22:13:20 UTC
        let w = Window::ending_at(now, 1);
        assert_eq!((w.step, w.end()), (60, 1_700_000_040));
        assert_eq!(w.slots, 60);
        let w = Window::ending_at(now, 6);
        assert_eq!(w.step, 300);
        assert!(w.slots as i64 <= MAX_POINTS + 1);
        assert_eq!(w.start % 300, 0);
        assert!(w.end() >= minute_of(now) + 60);
        let w = Window::ending_at(now, 48);
        assert_eq!(w.step, 1800);
        assert!(w.slots as i64 <= MAX_POINTS + 1);
    }

    #[test]
    fn rows_sum_into_their_slots_and_the_busiest_keys() {
        let w = Window {
            start: 0,
            step: 300,
            slots: 2,
        };
        let row = |minute: i64, route: &str, n: u64| MinuteStats {
            minute,
            route: route.into(),
            model: "m".into(),
            totals: Totals {
                requests: n,
                ..Totals::default()
            },
        };
        let rows = vec![
            row(0, "a", 1),
            row(60, "a", 2),
            row(300, "a", 4),
            row(600, "a", 8),
        ];
        let map = by_slot(&rows, &w, |r| Some(r.route.clone()));
        let a = &map["a"];
        assert_eq!((a[0].requests, a[1].requests), (3, 4));
        let many: Vec<MinuteStats> = (0..12).map(|i| row(0, &format!("r{i:02}"), i)).collect();
        let top = busiest(by_slot(&many, &w, |r| Some(r.route.clone())));
        assert_eq!(top.len(), MAX_SERIES);
        assert_eq!(top[0].0, "r11");
        assert_eq!(top.last().map(|t| t.0.as_str()), Some("other"));
        assert_eq!(top.last().map(|t| t.1[0].requests), Some(10));
    }
}
