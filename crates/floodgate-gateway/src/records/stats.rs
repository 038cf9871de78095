//! Per-minute rollups of the decision records: what the dashboard and `floodgate stats`
//! read.
//!
//! Every record the store takes for the first time adds to one row per (minute, route,
//! model) in `stats_minute`, in the same transaction as the record itself, so a replayed
//! event counts once (the same rule as the usage table). A row holds counters and two
//! fixed-bucket histograms (total latency and time to first token), one column per
//! bucket; rows are added bucket by bucket, so any window's percentiles come from the
//! summed buckets, to within one bucket.
//!
//! The route and model a record counts under are bounded sets: a configured route or a
//! model the gateway resolved (a record with a route decision or a run), else the
//! endpoint (a fixed list); a client's made-up model name never becomes a row.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DecisionRecord;

/// Buckets per histogram.
pub const BUCKETS: usize = 20;
/// Upper bound of the first bucket, in milliseconds.
const FIRST_BOUND_MS: f64 = 1.0;
/// Upper bound of the last bucket, in milliseconds (slower requests count in it too).
const LAST_BOUND_MS: f64 = 120_000.0;

/// The model a request counts under when none answered it: refused (4xx) ...
pub const REFUSED: &str = "_refused";
/// ... or anything else that ran no model (a model list, a moderation, a failure).
pub const OTHER: &str = "_other";

/// The upper bound of bucket `i`, in milliseconds: 20 log-spaced bounds from 1 ms to
/// 120 s (each about 1.85× the one before).
pub fn bucket_bound(i: usize) -> f64 {
    let step = (LAST_BOUND_MS / FIRST_BOUND_MS).ln() / (BUCKETS - 1) as f64;
    FIRST_BOUND_MS * (step * i.min(BUCKETS - 1) as f64).exp()
}

/// The bucket a duration falls in (durations past the last bound count in the last).
pub fn bucket_of(ms: f64) -> usize {
    (0..BUCKETS)
        .find(|&i| ms <= bucket_bound(i) * (1.0 + 1e-12))
        .unwrap_or(BUCKETS - 1)
}

/// The `q` quantile (0–1) of a bucketed histogram, interpolated inside its bucket
/// (log-linearly, linearly in the first); `None` when it is empty.
pub fn percentile(buckets: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(f64::MIN_POSITIVE);
    let mut below = 0u64;
    for (i, &count) in buckets.iter().enumerate() {
        if count == 0 {
            continue;
        }
        if (below + count) as f64 >= rank {
            let fraction = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
            let upper = bucket_bound(i);
            return Some(if i == 0 {
                upper * fraction
            } else {
                let lower = bucket_bound(i - 1);
                lower * (upper / lower).powf(fraction)
            });
        }
        below += count;
    }
    Some(LAST_BOUND_MS)
}

/// One minute of one route and model: counters and the two histograms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteStats {
    /// The minute's start, unix seconds (a multiple of 60).
    pub minute: i64,
    /// A configured route, a model the request named, or an endpoint (`/v1/models`).
    pub route: String,
    /// The variant that answered, else [`REFUSED`] or [`OTHER`].
    pub model: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// What a set of records adds up to (one row's values, or a sum of rows).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    /// Server-side failures: status ≥ 500, or an answer that failed mid-way.
    pub errors: u64,
    /// Refusals: status 400–499 (including 429).
    pub refused: u64,
    /// Answered by a later tier than the route's first.
    pub escalated: u64,
    /// A guard blocked the prompt or the answer.
    pub guard_blocked: u64,
    /// A guard flagged the prompt or the answer (and served it).
    pub guard_flagged: u64,
    /// A guard redacted PII in the prompt or the answer.
    pub guard_redacted: u64,
    /// Refused as part of a tripped abuse cluster (throttled or blocked).
    pub abuse_refused: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    /// Arrival to the last byte, per bucket ([`bucket_bound`]).
    pub latency: [u64; BUCKETS],
    /// Time to first token, per bucket (requests that produced a token).
    pub ttft: [u64; BUCKETS],
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.refused += other.refused;
        self.escalated += other.escalated;
        self.guard_blocked += other.guard_blocked;
        self.guard_flagged += other.guard_flagged;
        self.guard_redacted += other.guard_redacted;
        self.abuse_refused += other.abuse_refused;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost_usd += other.cost_usd;
        for i in 0..BUCKETS {
            self.latency[i] += other.latency[i];
            self.ttft[i] += other.ttft[i];
        }
    }

    /// The counters in [`COUNTER_COLUMNS`] order.
    pub fn counters(&self) -> [u64; COUNTER_COLUMNS.len()] {
        [
            self.requests,
            self.errors,
            self.refused,
            self.escalated,
            self.guard_blocked,
            self.guard_flagged,
            self.guard_redacted,
            self.abuse_refused,
            self.prompt_tokens,
            self.completion_tokens,
        ]
    }

    /// The inverse of [`Totals::counters`].
    pub fn set_counters(&mut self, c: [u64; COUNTER_COLUMNS.len()]) {
        [
            self.requests,
            self.errors,
            self.refused,
            self.escalated,
            self.guard_blocked,
            self.guard_flagged,
            self.guard_redacted,
            self.abuse_refused,
            self.prompt_tokens,
            self.completion_tokens,
        ] = c;
    }

    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        percentile(&self.latency, q)
    }

    pub fn ttft_ms(&self, q: f64) -> Option<f64> {
        percentile(&self.ttft, q)
    }

    /// Errors as a share of requests (0–1).
    pub fn error_rate(&self) -> f64 {
        ratio(self.errors, self.requests)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The integer columns of `stats_minute` besides the histograms, in [`Totals::counters`]
/// order.
pub const COUNTER_COLUMNS: [&str; 10] = [
    "requests",
    "errors",
    "refused",
    "escalated",
    "guard_blocked",
    "guard_flagged",
    "guard_redacted",
    "abuse_refused",
    "prompt_tokens",
    "completion_tokens",
];

/// The histogram columns: `lat_00`…`lat_19`, then `ttft_00`…`ttft_19`.
pub fn bucket_columns() -> Vec<String> {
    (0..BUCKETS)
        .map(|i| format!("lat_{i:02}"))
        .chain((0..BUCKETS).map(|i| format!("ttft_{i:02}")))
        .collect()
}

/// Every value column (counters, `cost_usd`, buckets), in the order rows are bound.
pub fn value_columns() -> Vec<String> {
    COUNTER_COLUMNS
        .iter()
        .map(|c| (*c).to_string())
        .chain(std::iter::once("cost_usd".to_string()))
        .chain(bucket_columns())
        .collect()
}

/// `INSERT INTO stats_minute (...) ` — the head of the upsert (rows follow).
pub(crate) fn insert_head() -> String {
    format!(
        "INSERT INTO stats_minute (minute, route, model, {}) ",
        value_columns().join(", ")
    )
}

/// `ON CONFLICT ... DO UPDATE`: a row already there is added to, column by column.
pub(crate) fn upsert_tail() -> String {
    let sets: Vec<String> = value_columns()
        .iter()
        .map(|c| format!("{c} = stats_minute.{c} + excluded.{c}"))
        .collect();
    format!(
        " ON CONFLICT (minute, route, model) DO UPDATE SET {}",
        sets.join(", ")
    )
}

/// Rows per multi-row upsert statement: 53 bound values a row, under both SQLite's
/// (32,766) and PostgreSQL's (65,535) limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 400;

/// The endpoints that count under their own path when no route or model was resolved.
const ENDPOINTS: [&str; 7] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/moderations",
    "/v1/embeddings",
    "/v1/models",
    "/v1/feedback",
    "/v1/requests",
];

/// Where a record counts: its (route, model), or `None` for the dashboard's own pages,
/// which would otherwise make an idle gateway look busy.
pub fn key_of(record: &DecisionRecord) -> Option<(String, String)> {
    let path = record
        .endpoint
        .split_once(' ')
        .map_or(record.endpoint.as_str(), |(_, p)| p);
    if path.starts_with("/dashboard") {
        return None;
    }
    let resolved = record.route.is_some() || !record.runs.is_empty();
    let route = if resolved {
        super::route_of(record).to_string()
    } else if path.starts_with("/admin") {
        "/admin".to_string()
    } else {
        ENDPOINTS
            .iter()
            .find(|e| path.starts_with(*e))
            .map_or(OTHER, |e| e)
            .to_string()
    };
    let model = if !record.served_by.is_empty() {
        record.served_by.clone()
    } else if let Some(last) = record.runs.last() {
        last.model.clone()
    } else if is_refused(record) {
        REFUSED.to_string()
    } else {
        OTHER.to_string()
    };
    Some((route, model))
}

fn is_refused(record: &DecisionRecord) -> bool {
    ((400..500).contains(&record.http_status) && record.http_status != 499)
        || (record.http_status == 0 && record.status.starts_with("refused"))
}

fn is_error(record: &DecisionRecord) -> bool {
    record.http_status >= 500 || record.status.starts_with("failed")
}

/// What one record adds to its row.
pub fn totals_of(record: &DecisionRecord) -> Totals {
    let mut t = Totals {
        requests: 1,
        ..Totals::default()
    };
    let code = record.error_code.as_deref().unwrap_or("");
    t.errors = u64::from(is_error(record));
    t.refused = u64::from(!is_error(record) && is_refused(record));
    t.escalated = u64::from(record.route.as_ref().is_some_and(|r| r.escalated));
    let note = |suffix: &str| record.guard.iter().any(|g| g.ends_with(suffix));
    t.guard_blocked = u64::from(
        note("-blocked")
            || matches!(code, "prompt_blocked" | "output_blocked")
            || record.status.starts_with("output-blocked"),
    );
    t.guard_flagged = u64::from(note("-flagged"));
    t.guard_redacted = u64::from(note("-redacted"));
    t.abuse_refused = u64::from(code.starts_with("abuse_"));
    for run in &record.runs {
        t.prompt_tokens += u64::from(run.prompt_tokens);
        t.completion_tokens += u64::from(run.completion_tokens);
    }
    t.cost_usd = record.cost_usd;
    if record.latency_ms > 0.0 {
        t.latency[bucket_of(record.latency_ms)] = 1;
    }
    if let Some(ttft) = record.time_to_first_token_ms.filter(|v| *v >= 0.0) {
        t.ttft[bucket_of(ttft)] = 1;
    }
    t
}

/// The rows the given (newly stored) records add, one per (minute, route, model): one
/// upsert may not touch a row twice, so records of the same row are summed first.
pub fn rollup<'a>(records: impl Iterator<Item = &'a DecisionRecord>) -> Vec<MinuteStats> {
    let mut rows: BTreeMap<(i64, String, String), Totals> = BTreeMap::new();
    for record in records {
        let Some((route, model)) = key_of(record) else {
            continue;
        };
        let minute = record.created_at - record.created_at.rem_euclid(60);
        rows.entry((minute, route, model))
            .or_default()
            .add(&totals_of(record));
    }
    rows.into_iter()
        .map(|((minute, route, model), totals)| MinuteStats {
            minute,
            route,
            model,
            totals,
        })
        .collect()
}

/// A `stats_minute` row as either backend returns it.
pub(crate) fn from_row<R>(r: &R) -> Result<MinuteStats, sqlx::Error>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    f64: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
    String: sqlx::Type<R::Database> + for<'a> sqlx::Decode<'a, R::Database>,
{
    let count = |c: &str| -> Result<u64, sqlx::Error> { Ok(r.try_get::<i64, _>(c)?.max(0) as u64) };
    let mut totals = Totals::default();
    let mut counters = [0u64; COUNTER_COLUMNS.len()];
    for (slot, c) in counters.iter_mut().zip(COUNTER_COLUMNS) {
        *slot = count(c)?;
    }
    totals.set_counters(counters);
    totals.cost_usd = r.try_get("cost_usd")?;
    let columns = bucket_columns();
    let (lat, ttft) = columns.split_at(BUCKETS);
    for (i, (l, t)) in lat.iter().zip(ttft).enumerate() {
        totals.latency[i] = count(l)?;
        totals.ttft[i] = count(t)?;
    }
    Ok(MinuteStats {
        minute: r.try_get("minute")?,
        route: r.try_get("route")?,
        model: r.try_get("model")?,
        totals,
    })
}

/// The minute (unix seconds, a multiple of 60) that contains `secs`.
pub fn minute_of(secs: i64) -> i64 {
    secs - secs.rem_euclid(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{RouteDecision, TierRun};

    #[test]
    fn bounds_run_from_one_millisecond_to_two_minutes() {
        assert!((bucket_bound(0) - 1.0).abs() < 1e-9);
        assert!((bucket_bound(BUCKETS - 1) - 120_000.0).abs() < 1e-6);
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(1.0), 0);
        assert_eq!(bucket_of(1.01), 1);
        assert_eq!(bucket_of(120_000.0), BUCKETS - 1);
        assert_eq!(bucket_of(10_000_000.0), BUCKETS - 1);
        for i in 1..BUCKETS {
            assert_eq!(bucket_of(bucket_bound(i)), i);
            assert_eq!(bucket_of(bucket_bound(i - 1) * 1.001), i);
        }
    }

    #[test]
    fn percentiles_land_in_the_bucket_of_the_true_value() {
        // 1000 latencies spread log-uniformly over 2 ms .. 20 s.
        let values: Vec<f64> = (0..1000)
            .map(|i| 2.0 * (10_000f64).powf(i as f64 / 999.0))
            .collect();
        let mut h = [0u64; BUCKETS];
        for v in &values {
            h[bucket_of(*v)] += 1;
        }
        for q in [0.5, 0.95, 0.99] {
            let exact = values[((q * 1000.0) as usize).min(999)];
            let est = percentile(&h, q).unwrap();
            let b = bucket_of(exact);
            let lower = if b == 0 { 0.0 } else { bucket_bound(b - 1) };
            assert!(
                est >= lower * 0.999 && est <= bucket_bound(b) * 1.001,
                "q{q}: {est} not in the bucket of {exact}"
            );
        }
        assert_eq!(percentile(&[0; BUCKETS], 0.5), None);
    }

    fn rec(status: u16, outcome: &str) -> DecisionRecord {
        DecisionRecord {
            event_id: "e".into(),
            created_at: 1_700_000_065,
            endpoint: "POST /v1/chat/completions".into(),
            http_status: status,
            status: outcome.into(),
            latency_ms: 42.0,
            ..DecisionRecord::default()
        }
    }

    #[test]
    fn records_count_under_bounded_routes_and_models() {
        // A client's made-up model name, refused: counted under the endpoint.
        let mut r = rec(404, "refused: model_not_found");
        r.requested = "made-up-name".into();
        r.error_code = Some("model_not_found".into());
        assert_eq!(
            key_of(&r),
            Some(("/v1/chat/completions".into(), REFUSED.into()))
        );
        // A route that answered: the route and the variant.
        let mut r = rec(200, "completed");
        r.requested = "auto".into();
        r.served_by = "big@v2".into();
        r.route = Some(RouteDecision {
            route: "auto".into(),
            escalated: true,
            ..RouteDecision::default()
        });
        r.runs = vec![TierRun {
            model: "big@v2".into(),
            prompt_tokens: 7,
            completion_tokens: 3,
            served: true,
            ..TierRun::default()
        }];
        r.time_to_first_token_ms = Some(5.0);
        r.guard = vec!["input-flagged".into(), "output-redacted".into()];
        assert_eq!(key_of(&r), Some(("auto".into(), "big@v2".into())));
        let t = totals_of(&r);
        assert_eq!(
            (
                t.escalated,
                t.guard_flagged,
                t.guard_redacted,
                t.guard_blocked
            ),
            (1, 1, 1, 0)
        );
        assert_eq!((t.prompt_tokens, t.completion_tokens), (7, 3));
        assert_eq!(t.ttft.iter().sum::<u64>(), 1);
        // The dashboard's own pages are not counted; other paths are bounded.
        let mut r = rec(200, "completed");
        r.endpoint = "GET /dashboard".into();
        assert_eq!(key_of(&r), None);
        r.endpoint = "GET /v1/requests/evt_123/decision".into();
        assert_eq!(key_of(&r), Some(("/v1/requests".into(), OTHER.into())));
        r.endpoint = "GET /some/random/path".into();
        assert_eq!(key_of(&r).map(|k| k.0), Some(OTHER.into()));
    }

    #[test]
    fn errors_refusals_blocks_and_abuse_are_told_apart() {
        let t = totals_of(&rec(502, "refused: upstream_error"));
        assert_eq!((t.errors, t.refused), (1, 0));
        let t = totals_of(&rec(200, "failed: engine"));
        assert_eq!((t.errors, t.refused), (1, 0));
        let mut r = rec(400, "refused: prompt_blocked");
        r.error_code = Some("prompt_blocked".into());
        let t = totals_of(&r);
        assert_eq!((t.errors, t.refused, t.guard_blocked), (0, 1, 1));
        let mut r = rec(429, "refused: abuse_throttled");
        r.error_code = Some("abuse_throttled".into());
        let t = totals_of(&r);
        assert_eq!((t.refused, t.abuse_refused), (1, 1));
        // A client that went away is neither.
        let t = totals_of(&rec(200, "cancelled"));
        assert_eq!((t.errors, t.refused), (0, 0));
    }

    #[test]
    fn a_rollup_sums_records_of_one_minute_route_and_model() {
        let mut a = rec(200, "completed");
        a.created_at = 1_700_000_050; // in the minute from 1_700_000_040
        let mut b = a.clone();
        b.created_at = 1_700_000_099;
        let mut c = a.clone();
        c.created_at = 1_700_000_100;
        let rows = rollup([a, b, c].iter());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].minute, 1_700_000_040);
        assert_eq!(rows[0].totals.requests, 2);
        assert_eq!(rows[0].totals.latency.iter().sum::<u64>(), 2);
        assert_eq!(rows[1].totals.requests, 1);
    }

    #[test]
    fn counters_round_trip_through_their_column_order() {
        let mut t = Totals::default();
        let c = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        t.set_counters(c);
        assert_eq!(t.counters(), c);
        assert_eq!(
            value_columns().len(),
            COUNTER_COLUMNS.len() + 1 + 2 * BUCKETS
        );
    }
}
