//! How the record store holds up at a million decision records: fills SQLite (a temp
//! file) and, when `FLOODGATE_TEST_POSTGRES_URL` is set, PostgreSQL (a schema of its own,
//! dropped afterwards) with synthetic records, and prints put latency, the budget and
//! report reads (`spent`, `usage_recent`) on an empty store and on a full one, and rates.
//!
//! `cargo run --release -p floodgate-gateway --no-default-features --example store_bench`
//! (`STORE_BENCH_ROWS` sets the row count, 1,000,000 by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_gateway::config::BudgetPeriod;
use floodgate_gateway::records::{DecisionRecord, RecordStore, RouteDecision, TierRun};
use floodgate_gateway::store::Stores;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Records per transaction while filling.
const BATCH: usize = 1000;
/// Single puts timed for the latency figures (each a transaction of its own).
const TIMED_PUTS: usize = 1000;
/// Calls timed for each read's median.
const READS: usize = 200;

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("STORE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Stores::open_sqlite(&dir.path().join("bench.db"), 8)
        .await
        .unwrap();
    bench("sqlite", sqlite.records, rows, 1).await;
    if let Ok(url) = std::env::var("FLOODGATE_TEST_POSTGRES_URL") {
        on_postgres(&url, |stores| bench("postgres", stores.records, rows, 4)).await;
    }
    println!("sqlite file: {:.0} MiB", dir_mib(dir.path()));
}

fn dir_mib(dir: &Path) -> f64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len() as f64)
                .sum::<f64>()
        })
        .unwrap_or(0.0)
        / (1024.0 * 1024.0)
}

async fn on_postgres<F, Fut>(url: &str, run: F)
where
    F: FnOnce(Stores) -> Fut,
    Fut: Future<Output = ()>,
{
    let base = PgConnectOptions::from_str(url).unwrap();
    let mut admin = base.connect().await.unwrap();
    let schema = format!("floodgate_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let options = base.options([("search_path", schema.as_str())]);
    let stores = Stores::open_postgres(options, 16).await.unwrap();
    run(stores).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
}

/// A plausible record: 100 keys, 3 routes, a fifth escalated to a second tier, spread
/// over the last 30 days; client request ids repeat.
fn synthetic(i: usize, now: i64) -> DecisionRecord {
    // Independent-looking picks from one hash of `i`, so keys, routes and days mix.
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    let pick = |n: u64, shift: u32| ((h >> shift) % n) as usize;
    let route = ["auto", "support", "code"][pick(3, 0)];
    let tier = |model: &str, served: bool| TierRun {
        model: model.into(),
        prompt_tokens: 200 + (i % 300) as u32,
        completion_tokens: 50 + (i % 200) as u32,
        compute_seconds: 0.2,
        cost_usd: 0.0004,
        served,
    };
    let runs = if pick(5, 4) == 0 {
        vec![tier("small", false), tier("large", true)]
    } else {
        vec![tier("small", true)]
    };
    DecisionRecord {
        event_id: format!("evt_{i:08}_{}", now),
        request_id: format!("req_{}", i % 50_000),
        key_id: format!("key_{:03}", pick(100, 8)),
        tenant: format!("tenant_{}", pick(10, 8)),
        created_at: now - pick(30, 20) as i64 * 86_400 - pick(3600, 28) as i64,
        requested: route.into(),
        served_by: runs.last().map(|r| r.model.clone()).unwrap_or_default(),
        route: Some(RouteDecision {
            route: route.into(),
            policy: "cascade".into(),
            tiers: vec!["small".into(), "large".into()],
            escalated: runs.len() > 1,
            reasons: vec!["pre-score below threshold".into()],
            pre_score: Some(0.42),
            pre_threshold: Some(0.5),
            ..RouteDecision::default()
        }),
        cost_usd: runs.iter().map(|r| r.cost_usd).sum(),
        runs,
        guard: vec![],
        status: "completed".into(),
        latency_ms: 350.0,
        endpoint: "POST /v1/chat/completions".into(),
        http_status: 200,
        time_to_first_token_ms: Some(80.0),
        ..DecisionRecord::default()
    }
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// Timed single puts (fresh event ids): (p50 ms, p99 ms, puts/s one after another).
async fn timed_puts(store: &dyn RecordStore, from: usize, now: i64) -> (f64, f64, f64) {
    let mut times = Vec::with_capacity(TIMED_PUTS);
    let start = Instant::now();
    for i in from..from + TIMED_PUTS {
        let r = synthetic(i, now);
        let t = Instant::now();
        assert!(store.put(&r).await.unwrap());
        times.push(t.elapsed());
    }
    let rate = TIMED_PUTS as f64 / start.elapsed().as_secs_f64();
    times.sort();
    (quantile(&times, 0.5), quantile(&times, 0.99), rate)
}

/// Median ms of `spent` (a month's budget) and `usage_recent(7)`.
async fn timed_reads(store: &dyn RecordStore, now: i64) -> (f64, f64) {
    let mut spent = Vec::with_capacity(READS);
    let mut recent = Vec::with_capacity(READS);
    for i in 0..READS {
        let key = format!("key_{:03}", i % 100);
        let t = Instant::now();
        store.spent(&key, BudgetPeriod::Month, now).await.unwrap();
        spent.push(t.elapsed());
        let t = Instant::now();
        store.usage_recent(7).await.unwrap();
        recent.push(t.elapsed());
    }
    spent.sort();
    recent.sort();
    (quantile(&spent, 0.5), quantile(&recent, 0.5))
}

/// Fills `store` to `rows` records in batches, `writers` batches at a time: records/s.
async fn fill(
    store: &Arc<dyn RecordStore>,
    from: usize,
    rows: usize,
    writers: usize,
    now: i64,
) -> f64 {
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(from));
    let end = from + rows;
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (store, next) = (Arc::clone(store), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let first = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                    if first >= end {
                        return;
                    }
                    let batch: Vec<_> = (first..(first + BATCH).min(end))
                        .map(|i| synthetic(i, now))
                        .collect();
                    store.put_batch(&batch).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

async fn bench(name: &str, store: Arc<dyn RecordStore>, rows: usize, writers: usize) {
    let now = floodgate_gateway::clock::unix_secs();
    let (spent0, recent0) = timed_reads(store.as_ref(), now).await;
    let (p50_0, p99_0, rate0) = timed_puts(store.as_ref(), 0, now).await;
    let fill_rate = fill(&store, TIMED_PUTS, rows - TIMED_PUTS, writers, now).await;
    let (p50_1, p99_1, rate1) = timed_puts(store.as_ref(), rows, now).await;
    let (spent1, recent1) = timed_reads(store.as_ref(), now).await;
    let usage_rows = store.usage_since("0000-00-00").await.unwrap().len();
    println!("\n## {name}: {rows} records ({usage_rows} usage rows)\n");
    println!("| measure | empty store | {rows} records |");
    println!("|---|---|---|");
    println!("| put p50 (ms) | {p50_0:.3} | {p50_1:.3} |");
    println!("| put p99 (ms) | {p99_0:.3} | {p99_1:.3} |");
    println!("| puts/s, one at a time | {rate0:.0} | {rate1:.0} |");
    println!("| spent(month) median (ms) | {spent0:.3} | {spent1:.3} |");
    println!("| usage_recent(7) median (ms) | {recent0:.3} | {recent1:.3} |");
    println!("\nfill: {fill_rate:.0} records/s (batches of {BATCH}, {writers} writer(s))");
}
