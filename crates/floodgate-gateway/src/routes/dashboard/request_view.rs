//! `GET /dashboard/requests/{id}`: one request's decision record — route decision,
//! guard notes and score, variant, timings, runs and cost — beside the rollups of its
//! route and model in the quarter hour either side of it.

use std::fmt::Write as _;

use crate::records::stats::{self, minute_of};
use crate::records::{DecisionRecord, MinuteStats};
use crate::AppState;

use super::charts::{Chart, Dash, Series};
use super::html::{escape, millis, number, timestamp, usd};
use super::overview::{by_slot, Window};

/// Minutes shown either side of the request.
const AROUND_MINUTES: i64 = 15;

/// The minutes around a request, and the route and model it counts under.
pub struct Around {
    pub start: i64,
    pub slots: usize,
    pub key: Option<(String, String)>,
}

impl Around {
    pub fn of(record: &DecisionRecord) -> Self {
        let minute = minute_of(record.created_at);
        Self {
            start: minute - AROUND_MINUTES * 60,
            slots: (2 * AROUND_MINUTES + 1) as usize,
            key: stats::key_of(record),
        }
    }

    pub fn end(&self) -> i64 {
        self.start + 60 * self.slots as i64
    }

    fn window(&self) -> Window {
        Window {
            start: self.start,
            step: 60,
            slots: self.slots,
        }
    }
}

fn fact(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<dt>{}</dt><dd>{value}</dd>", escape(name));
}

/// `score (≥|<) threshold`, the comparison the decision turned on.
fn against(score: Option<f32>, threshold: Option<f32>) -> String {
    match (score, threshold) {
        (Some(s), Some(t)) => {
            let (op, class) = if s >= t {
                ("≥", "bad")
            } else {
                ("<", "good")
            };
            format!("<span class=\"{class}\">{s:.3} {op} {t:.3}</span>")
        }
        (Some(s), None) => format!("{s:.3}"),
        (None, Some(t)) => format!("not scored (threshold {t:.3})"),
        (None, None) => "–".into(),
    }
}

pub fn render(
    state: &AppState,
    record: &DecisionRecord,
    around: &Around,
    rows: &[MinuteStats],
) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<h2 style=\"margin:4px 0 12px\">Request <code>{}</code></h2><div class=\"grid\">",
        escape(&record.event_id)
    );

    // The request.
    let mut facts = String::new();
    fact(&mut facts, "time", &escape(&timestamp(record.created_at)));
    if !record.request_id.is_empty() {
        fact(
            &mut facts,
            "client request id",
            &format!("<code>{}</code>", escape(&record.request_id)),
        );
    }
    fact(&mut facts, "endpoint", &escape(&record.endpoint));
    fact(
        &mut facts,
        "key",
        &format!("<code>{}</code>", escape(&record.key_id)),
    );
    fact(
        &mut facts,
        "tenant / segment",
        &escape(&format!("{} / {}", record.tenant, record.segment)),
    );
    fact(&mut facts, "requested", &escape(&record.requested));
    fact(
        &mut facts,
        "variant that answered",
        &if record.served_by.is_empty() {
            "none".to_string()
        } else {
            format!("<b>{}</b>", escape(&record.served_by))
        },
    );
    let status_class = if record.http_status >= 400 || record.status.starts_with("failed") {
        "bad"
    } else {
        "good"
    };
    fact(
        &mut facts,
        "outcome",
        &format!(
            "<span class=\"{status_class}\">{}</span>{}",
            escape(&record.status),
            if record.http_status > 0 {
                format!(" (HTTP {})", record.http_status)
            } else {
                String::new()
            }
        ),
    );
    fact(&mut facts, "cost", &escape(&usd(record.cost_usd)));
    let _ = write!(
        out,
        "<section class=\"panel\" id=\"request\"><h2>Request</h2><dl class=\"facts\">{facts}</dl></section>"
    );

    // The route decision.
    let mut facts = String::new();
    match &record.route {
        Some(r) => {
            fact(
                &mut facts,
                "route",
                &escape(&format!("{} (policy {})", r.route, r.policy)),
            );
            let tiers: Vec<String> = r
                .tiers
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut s = escape(t);
                    if i == r.final_tier {
                        s = format!("<b>{s}</b>");
                    }
                    if i == r.start_tier && r.start_tier != r.final_tier {
                        s.push_str(" (answered first, replaced)");
                    }
                    s
                })
                .collect();
            fact(&mut facts, "tiers", &tiers.join(" → "));
            fact(
                &mut facts,
                "escalated",
                if r.escalated {
                    "<span class=\"bad\">yes</span>"
                } else {
                    "no"
                },
            );
            fact(
                &mut facts,
                "pre-router P(escalation helps)",
                &against(r.pre_score, r.pre_threshold),
            );
            // The post check escalates below its threshold: P(answer right) < threshold.
            let post = match (r.post_score, r.post_threshold) {
                (Some(s), Some(t)) => {
                    let (op, class) = if s < t { ("<", "bad") } else { ("≥", "good") };
                    format!("<span class=\"{class}\">{s:.3} {op} {t:.3}</span>")
                }
                (s, t) => against(s, t),
            };
            fact(&mut facts, "post check P(answer right)", &post);
            let reasons: Vec<String> = r.reasons.iter().map(|x| escape(x)).collect();
            fact(&mut facts, "reasons", &reasons.join("<br>"));
            if let Some(sig) = &r.signals {
                fact(
                    &mut facts,
                    "answer signals",
                    &escape(&format!(
                        "{} tokens, mean log-prob {:.2}, min {:.2}, entropy {:.2}, margin {:.2}{}{}",
                        sig.tokens,
                        sig.mean_logprob,
                        sig.min_logprob,
                        sig.mean_entropy,
                        sig.mean_margin,
                        if sig.truncated { ", truncated" } else { "" },
                        if sig.hedged { ", hedged" } else { "" },
                    )),
                );
            }
        }
        None => fact(
            &mut facts,
            "route",
            "none (a model by name, or refused before routing)",
        ),
    }
    let _ = write!(
        out,
        "<section class=\"panel\" id=\"decision\"><h2>Route decision</h2><dl class=\"facts\">{facts}</dl></section>"
    );

    // Guards.
    let mut facts = String::new();
    let threshold = state.config().guard.injection_threshold;
    fact(
        &mut facts,
        "input guard (injection)",
        &format!(
            "{} <span class=\"muted\">(threshold now)</span>",
            against(record.input_guard_score, Some(threshold))
        ),
    );
    let notes: Vec<String> = record.guard.iter().map(|n| escape(n)).collect();
    fact(
        &mut facts,
        "notes",
        &if notes.is_empty() {
            "none".into()
        } else {
            notes.join(", ")
        },
    );
    if let Some(code) = &record.error_code {
        fact(
            &mut facts,
            "error code",
            &format!("<code>{}</code>", escape(code)),
        );
    }
    let _ = write!(
        out,
        "<section class=\"panel\" id=\"guards\"><h2>Guards</h2><dl class=\"facts\">{facts}</dl></section>"
    );

    // Timings.
    let mut rows_html = String::new();
    for s in &record.stages {
        let _ = write!(
            rows_html,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&s.stage),
            escape(&millis(Some(s.ms)))
        );
    }
    let _ = write!(
        out,
        "<section class=\"panel\" id=\"timings\"><h2>Timings</h2><dl class=\"facts\">\
         <dt>queue (engine)</dt><dd>{}</dd><dt>time to first token</dt><dd>{}</dd>\
         <dt>total</dt><dd>{}</dd></dl>\
         <table style=\"margin-top:8px\"><thead><tr><th>stage</th><th>time</th></tr></thead><tbody>{}</tbody></table></section>",
        escape(&millis(Some(record.queue_ms))),
        escape(&millis(record.time_to_first_token_ms)),
        escape(&millis((record.latency_ms > 0.0).then_some(record.latency_ms))),
        if rows_html.is_empty() {
            "<tr><td class=\"muted\" colspan=\"2\">no pipeline stages</td></tr>".to_string()
        } else {
            rows_html
        }
    );

    // Runs and cost.
    let mut runs = String::new();
    for r in &record.runs {
        let _ = write!(
            runs,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.model),
            r.prompt_tokens,
            r.completion_tokens,
            escape(&format!("{:.3} s", r.compute_seconds)),
            escape(&usd(r.cost_usd)),
            if r.served { "served" } else { "discarded" }
        );
    }
    let _ = write!(
        out,
        "<section class=\"panel wide\" id=\"runs\"><h2>Runs and cost</h2><table><thead><tr>\
         <th>model</th><th>prompt tokens</th><th>completion tokens</th><th>compute</th><th>cost</th><th>answer</th>\
         </tr></thead><tbody>{}</tbody><tfoot><tr><td>total</td><td></td><td></td><td></td><td>{}</td><td></td></tr></tfoot></table></section>",
        if runs.is_empty() {
            "<tr><td class=\"muted\" colspan=\"6\">no model ran</td></tr>".to_string()
        } else {
            runs
        },
        escape(&usd(record.cost_usd))
    );

    // The minutes around it, for its route and model.
    let window = around.window();
    let key = around.key.clone();
    let label = key
        .as_ref()
        .map_or_else(|| "all routes".to_string(), |(r, m)| format!("{r} · {m}"));
    let mine = by_slot(rows, &window, |r| {
        key.as_ref()
            .is_none_or(|(route, model)| &r.route == route && &r.model == model)
            .then_some(())
    })
    .remove(&())
    .unwrap_or_else(|| vec![Default::default(); window.slots]);
    let marker = Some((record.created_at, "this request".to_string()));
    let mut traffic = Chart::new(
        "Requests around this one",
        "requests/min",
        window.start,
        60,
        window.slots,
    )
    .with(Series::new(
        "requests",
        mine.iter().map(|t| Some(t.requests as f64)).collect(),
        0,
    ))
    .with(Series::new(
        "errors",
        mine.iter().map(|t| Some(t.errors as f64)).collect(),
        3,
    ))
    .with(Series::new(
        "refused",
        mine.iter().map(|t| Some(t.refused as f64)).collect(),
        1,
    ));
    traffic.marker = marker.clone();
    let mut latency = Chart::new(
        "Latency around this one",
        "ms",
        window.start,
        60,
        window.slots,
    );
    for (q, name, dash) in [
        (0.5, "p50", Dash::Solid),
        (0.95, "p95", Dash::Dashed),
        (0.99, "p99", Dash::Dotted),
    ] {
        latency = latency.with(
            Series::new(
                format!("latency {name}"),
                mine.iter().map(|t| t.latency_ms(q)).collect(),
                0,
            )
            .dashed(dash),
        );
    }
    latency = latency.with(
        Series::new(
            "TTFT p95",
            mine.iter().map(|t| t.ttft_ms(0.95)).collect(),
            2,
        )
        .dashed(Dash::Dashed),
    );
    latency.marker = marker;
    let _ = write!(
        out,
        "<section class=\"panel\" id=\"around-traffic\"><h2>{} — requests, ±{AROUND_MINUTES} min</h2>{}</section>\
         <section class=\"panel\" id=\"around-latency\"><h2>{} — latency, ±{AROUND_MINUTES} min</h2>{}\
         <p class=\"muted\">This request: {} total, {} to first token, {} tokens.</p></section>",
        escape(&label),
        traffic.render(),
        escape(&label),
        latency.render(),
        escape(&millis((record.latency_ms > 0.0).then_some(record.latency_ms))),
        escape(&millis(record.time_to_first_token_ms)),
        escape(&number(
            record
                .runs
                .iter()
                .map(|r| f64::from(r.prompt_tokens + r.completion_tokens))
                .sum()
        )),
    );
    out.push_str("</div><p><a href=\"/dashboard\">← Back to the dashboard</a></p>");
    out
}
