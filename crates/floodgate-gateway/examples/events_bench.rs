//! The event path, measured (`bench/events.sh` runs it; not a test):
//! 1. the request path's added cost per request, one request at a time and 64 at a
//!    time: the request thread's CPU to build, serialize and queue the event (p50/p99,
//!    from the thread's CPU clock), the wall time until the writer has handed it to the
//!    OS (p50/p99), and the whole process's CPU per event (writer thread included);
//! 2. events per second the log sustains (fsync `interval` and `always`);
//! 3. events per second each sink sustains from the log: SQLite, PostgreSQL
//!    (`FLOODGATE_TEST_POSTGRES_URL`) and NATS JetStream (`FLOODGATE_TEST_NATS_URL`);
//! 4. the request path's event cost with the sinks up vs the store sink down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_gateway::config::{Config, FsyncPolicy};
use floodgate_gateway::events::{Event, RequestEvent, Sink, Spine, StoreSink, Usage};
use floodgate_gateway::records::{RouteDecision, TierRun};

fn event(i: u64) -> Event {
    let r = RequestEvent {
        client_request_id: Some(format!("client-{i}")),
        endpoint: "POST /v1/chat/completions".into(),
        key_id: format!("key_{:04}", i % 1000),
        tenant: "acme".into(),
        segment: "pro".into(),
        client_ip: Some("3f2a9c0d1e4b5a6c".into()),
        requested: "auto".into(),
        stream: i.is_multiple_of(2),
        route: Some(RouteDecision {
            route: "auto".into(),
            policy: "cascade".into(),
            tiers: vec!["small".into(), "large".into()],
            reasons: vec!["pre-score below threshold".into()],
            pre_score: Some(0.42),
            pre_threshold: Some(0.5),
            ..RouteDecision::default()
        }),
        served_by: Some("small".into()),
        runs: vec![TierRun {
            model: "small".into(),
            prompt_tokens: 120,
            completion_tokens: 64,
            compute_seconds: 0.8,
            cost_usd: 0.0012,
            served: true,
        }],
        usage: Usage {
            prompt_tokens: 120,
            completion_tokens: 64,
            cached_tokens: 32,
        },
        guard: vec!["input-redacted".into()],
        input_guard_score: Some(0.03),
        cost_usd: 0.0012,
        status: 200,
        outcome: "completed".into(),
        ..RequestEvent::default()
    };
    Event::request(
        floodgate_gateway::events::new_id(),
        floodgate_gateway::events::now_ms(),
        "bench/localhost:8080".into(),
        r,
    )
}

fn config(dir: &std::path::Path, fsync: FsyncPolicy) -> Config {
    let mut c = Config::default();
    c.events.dir = dir.display().to_string();
    c.events.fsync = fsync;
    c
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// This thread's CPU time, in µs (the request thread's own work, whatever else runs).
fn thread_cpu_us() -> f64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// The request path's figures.
struct PathCost {
    /// The request thread's CPU for building, serializing and queueing one event, µs.
    emit_p50: f64,
    emit_p99: f64,
    /// Emit plus the wait for the writer to hand the event to the OS (wall), µs.
    settled_p50: f64,
    settled_p99: f64,
    /// The whole process's CPU per event (writer thread and wake-ups included), µs.
    cpu: f64,
}

/// `concurrency` requests at a time, each emitting its event and waiting for the write,
/// `n` events in all.
async fn request_path(spine: &Arc<Spine>, n: u64, concurrency: u64) -> PathCost {
    let cpu0 = cpu_seconds();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let spine = Arc::clone(spine);
            tokio::spawn(async move {
                let mut emit = Vec::new();
                let mut settled = Vec::new();
                for i in (t..n).step_by(concurrency as usize) {
                    let t0 = Instant::now();
                    let c0 = thread_cpu_us();
                    let ack = spine.emit(&event(i), None);
                    emit.push(thread_cpu_us() - c0);
                    spine.settle(ack).await;
                    settled.push(t0.elapsed().as_secs_f64() * 1e6);
                }
                (emit, settled)
            })
        })
        .collect();
    let mut emit = Vec::with_capacity(n as usize);
    let mut settled = Vec::with_capacity(n as usize);
    for t in tasks {
        let (e, s) = t.await.unwrap();
        emit.extend(e);
        settled.extend(s);
    }
    let cpu = (cpu_seconds() - cpu0) / n as f64 * 1e6;
    emit.sort_by(f64::total_cmp);
    settled.sort_by(f64::total_cmp);
    PathCost {
        emit_p50: percentile(&emit, 0.5),
        emit_p99: percentile(&emit, 0.99),
        settled_p50: percentile(&settled, 0.5),
        settled_p99: percentile(&settled, 0.99),
        cpu,
    }
}

impl std::fmt::Display for PathCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request thread CPU to build+serialize+queue p50 {:.1} µs p99 {:.1} µs; emit+wait for the write p50 {:.1} µs p99 {:.1} µs; process CPU {:.1} µs/event",
            self.emit_p50, self.emit_p99, self.settled_p50, self.settled_p99, self.cpu
        )
    }
}

/// Where the request thread's CPU goes, one event at a time: (build, serialize, queue,
/// and reading the CPU clock itself, the floor of every figure here) as (p50, p99) in µs.
async fn breakdown(spine: &Spine, n: u64) -> [(f64, f64); 4] {
    let mut parts = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let log = spine.log().unwrap();
    for i in 0..n {
        let c0 = thread_cpu_us();
        let e = event(i);
        let c1 = thread_cpu_us();
        let bytes = serde_json::to_vec(&e).unwrap();
        let c2 = thread_cpu_us();
        let ack = log.append(bytes);
        let c3 = thread_cpu_us();
        let c4 = thread_cpu_us();
        parts[0].push(c1 - c0);
        parts[1].push(c2 - c1);
        parts[2].push(c3 - c2);
        parts[3].push(c4 - c3);
        spine.settle(ack).await;
    }
    parts.map(|mut p| {
        p.sort_by(f64::total_cmp);
        (percentile(&p, 0.5), percentile(&p, 0.99))
    })
}

/// Appends `n` events as fast as the log takes them; events per second.
async fn log_throughput(spine: &Spine, n: u64) -> f64 {
    let payloads: Vec<Event> = (0..n).map(event).collect();
    let t = Instant::now();
    let mut last = None;
    for e in &payloads {
        last = spine.emit(e, None).or(last);
    }
    if let Some(a) = last {
        a.written().await;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Applies `n` events in batches of `batch` to `sink`; events per second.
async fn sink_throughput(sink: &dyn Sink, n: u64, batch: usize) -> f64 {
    let events: Vec<Event> = (0..n).map(event).collect();
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        sink.apply(chunk).await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    println!(
        "events_bench: {n} events of {} bytes (JSON)",
        serde_json::to_vec(&event(0)).unwrap().len()
    );

    let spine = Arc::new(
        Spine::open(
            &config(&dir.path().join("a"), FsyncPolicy::Interval),
            "bench".into(),
        )
        .unwrap(),
    );
    for concurrency in [1, 64] {
        let cost = request_path(&spine, n.min(50_000), concurrency).await;
        println!("request path, fsync=interval, {concurrency} at a time: {cost}");
    }
    let [build, ser, queue, clock] = breakdown(&spine, n.min(20_000)).await;
    println!(
        "  of which (p50/p99 µs): build {:.1}/{:.1}, serialize {:.1}/{:.1}, queue and wake the writer {:.1}/{:.1}; reading the CPU clock {:.1}/{:.1}",
        build.0, build.1, ser.0, ser.1, queue.0, queue.1, clock.0, clock.1
    );
    let rate = log_throughput(&spine, n).await;
    println!("log, fsync=interval: {rate:.0} events/s");
    spine.close();
    let spine = Arc::new(
        Spine::open(
            &config(&dir.path().join("b"), FsyncPolicy::Always),
            "bench".into(),
        )
        .unwrap(),
    );
    let rate = log_throughput(&spine, n).await;
    println!("log, fsync=always (group commit): {rate:.0} events/s");
    for concurrency in [1, 64] {
        let cost = request_path(&spine, 5_000, concurrency).await;
        println!("request path, fsync=always, {concurrency} at a time: {cost}");
    }
    spine.close();

    let sqlite = floodgate_gateway::records::SqliteRecordStore::open(&dir.path().join("s.db"))
        .await
        .unwrap();
    let sink = StoreSink::new(Arc::new(sqlite));
    let rate = sink_throughput(&sink, n.min(50_000), 512).await;
    println!("store sink, SQLite: {rate:.0} events/s");

    if let Ok(url) = std::env::var("FLOODGATE_TEST_POSTGRES_URL") {
        let schema = format!("fgbench_{}", std::process::id());
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let stores = floodgate_gateway::store::Stores::open_postgres(
            options.options([("search_path", schema.as_str())]),
            8,
        )
        .await
        .unwrap();
        let sink = StoreSink::new(Arc::clone(&stores.records));
        let rate = sink_throughput(&sink, n.min(50_000), 512).await;
        println!("store sink, PostgreSQL: {rate:.0} events/s");
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
    } else {
        println!("store sink, PostgreSQL: skipped (set FLOODGATE_TEST_POSTGRES_URL)");
    }
    if let Ok(url) = std::env::var("FLOODGATE_TEST_NATS_URL") {
        let mut c = Config::default();
        c.events.nats_url = url.clone();
        c.events.nats_stream = format!("FGBENCH_{}", std::process::id());
        c.events.nats_subject_prefix = format!("fgbench.{}", std::process::id());
        let js = floodgate_gateway::events::JetStream::connect(&c.events)
            .await
            .unwrap();
        let rate = sink_throughput(&js, n.min(50_000), 512).await;
        println!("NATS JetStream sink: {rate:.0} events/s");
        let _ = js.context().delete_stream(&c.events.nats_stream).await;
    } else {
        println!("NATS JetStream sink: skipped (set FLOODGATE_TEST_NATS_URL)");
    }

    // The request path with a sink down: the store sink retries against a closed port
    // while requests emit their events.
    for (label, url) in [
        ("sinks up", None),
        (
            "store sink down",
            Some("postgres://postgres@127.0.0.1:9/none"),
        ),
    ] {
        let mut c = config(
            &dir.path().join(label.replace(' ', "-")),
            FsyncPolicy::Interval,
        );
        c.events.sink_retry_max_ms = 200;
        let spine = Arc::new(Spine::open(&c, "bench".into()).unwrap());
        let records: Arc<dyn floodgate_gateway::records::RecordStore> = match url {
            None => Arc::new(
                floodgate_gateway::records::SqliteRecordStore::open(
                    &dir.path().join(format!("{label}.db")),
                )
                .await
                .unwrap(),
            ),
            Some(u) => {
                let options: sqlx::postgres::PgConnectOptions = u.parse().unwrap();
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .acquire_timeout(Duration::from_millis(200))
                    .connect_lazy_with(options);
                Arc::new(floodgate_gateway::records::PgRecordStore::from_pool(pool))
            }
        };
        let sinks = floodgate_gateway::events::Sinks::start(&c, &spine, records)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for concurrency in [1, 64] {
            let cost = request_path(&spine, 20_000, concurrency).await;
            println!("request path, {label}, {concurrency} at a time: {cost}");
        }
        drop(sinks);
        spine.close();
    }
}
