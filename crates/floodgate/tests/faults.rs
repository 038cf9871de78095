//! The fault harness (issue #21): a small fleet of real processes on loopback — three
//! gateways, two workers in two regions, an analytics process — over PostgreSQL, Redis
//! and NATS JetStream, driven with load while things break:
//!
//! - the preferred region's worker is killed with SIGKILL mid-load: every request is
//!   answered or ends with a clear OpenAI-format error, none hangs; the gateways fail
//!   over to the other region and come back when the worker returns on its address;
//! - the same worker is stopped with SIGTERM mid-load: it drains, and no request fails
//!   (those it had not started are retried on the other region before their first
//!   token);
//! - Redis, then PostgreSQL, then NATS "restart" mid-load: each service's connections
//!   are all cut and new ones refused for a few seconds (a TCP proxy in front of each;
//!   the services themselves are shared with the other tests on the machine, so the
//!   harness restarts them as their clients see it). Requests keep being served (the
//!   limiter fails open, as configured) and no event is lost: every answered request's
//!   event reaches PostgreSQL (through the analytics role) and JetStream exactly once;
//! - one key's rate limit holds across three gateways in two regions (one Redis)
//!   within 1 % of the configured rate, and one key's budget is overshot by at most one
//!   request per gateway.
//!
//! Every figure is printed. Needs `FLOODGATE_TEST_POSTGRES_URL`,
//! `FLOODGATE_TEST_NATS_URL` and `FLOODGATE_TEST_REDIS_URL`; without them the trials are
//! reported as ignored. Outages last `FLOODGATE_TEST_RESTART_SECONDS` (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::services::{assert_all_once, jetstream_ids, server_id, Env};
use common::{bonjour_upstream, free_addr, metric_value, tiny_worker_config, Proxy, Server};
use floodgate_test_support::needs::{self, trial, Need};
use serde_json::{json, Value};

fn main() -> ExitCode {
    let all = || -> Need<(String, String, String)> {
        Ok((needs::postgres()?, needs::nats()?, needs::redis()?))
    };
    needs::run(vec![
        trial(
            "a_fleet_survives_a_worker_kill_and_service_restarts_losing_no_event",
            all(),
            |(pg, nats, redis)| fleet(&pg, &nats, &redis),
        ),
        trial(
            "one_key_rate_limit_and_budget_hold_across_three_gateways",
            all(),
            |(pg, nats, redis)| shared_limits(&pg, &nats, &redis),
        ),
    ])
}

fn restart_seconds() -> u64 {
    std::env::var("FLOODGATE_TEST_RESTART_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// The `[events]` section of a process in the fleet.
trait EventsSection {
    fn events(&self, log: &str, nats: &str, store_sink: bool) -> String;
}

impl EventsSection for Env {
    fn events(&self, log: &str, nats: &str, store_sink: bool) -> String {
        format!(
            "[events]\ndir = \"{}\"\nstore_sink = {store_sink}\nnats_url = \"{nats}\"\nnats_stream = \"{s}\"\nnats_subject_prefix = \"fgf.{s}\"\nsink_retry_max_ms = 500\n",
            self.dir.path().join(log).display(),
            s = self.stream,
        )
    }
}

/// What one request came to.
#[derive(Debug, Clone)]
struct Outcome {
    /// The server's id, when a whole response (answer or error) arrived.
    id: Option<String>,
    /// `200`, or `"<status> <error code>"` for a well-formed OpenAI error.
    result: String,
}

/// Sends chat requests round-robin to `bases` from `threads` threads until `stop`,
/// asking for `max_tokens` (the server's default when `None`).
fn load(
    bases: Vec<String>,
    key: String,
    threads: usize,
    max_tokens: Option<u32>,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Outcome>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let (bases, key, stop, out) = (
                bases.clone(),
                key.clone(),
                Arc::clone(&stop),
                Arc::clone(&out),
            );
            std::thread::spawn(move || {
                // A request that takes this long counts as hung.
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let base = &bases[i % bases.len()];
                    i += 1;
                    let mut body = json!({"model": "remote",
                        "messages": [{"role": "user", "content": format!("Hello {i}")}]});
                    if let Some(n) = max_tokens {
                        body["max_tokens"] = json!(n);
                    }
                    let outcome = match http
                        .post(format!("{base}/v1/chat/completions"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                    {
                        Err(e) if e.is_timeout() => Outcome {
                            id: None,
                            result: "hung".into(),
                        },
                        Err(e) => Outcome {
                            id: None,
                            result: format!("transport error: {e}"),
                        },
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let id = server_id(&r);
                            match r.json::<Value>() {
                                Err(e) if e.is_timeout() => Outcome {
                                    id: None,
                                    result: "hung".into(),
                                },
                                Err(e) => Outcome {
                                    id: None,
                                    result: format!("{status} unreadable body: {e}"),
                                },
                                Ok(_) if status == 200 => Outcome {
                                    id: Some(id),
                                    result: "200".into(),
                                },
                                Ok(v) => {
                                    let message = v["error"]["message"].as_str().unwrap_or("");
                                    let code = v["error"]["code"]
                                        .as_str()
                                        .or(v["error"]["type"].as_str())
                                        .unwrap_or("");
                                    let result = if message.is_empty() {
                                        format!("{status} without an OpenAI error body: {v}")
                                    } else {
                                        format!("{status} {code}")
                                    };
                                    Outcome {
                                        id: Some(id),
                                        result,
                                    }
                                }
                            }
                        }
                    };
                    out.lock().unwrap_or_else(|e| e.into_inner()).push(outcome);
                }
            })
        })
        .collect()
}

/// Requests a worker has served (its chat counter).
fn served(worker: &Server) -> f64 {
    let text = reqwest::blocking::get(worker.url("/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default();
    metric_value(
        &text,
        "floodgate_http_requests_total{route=\"/v1/chat/completions\"",
    )
}

fn fleet(pg: &str, nats: &str, redis: &str) {
    let env = Env::new(pg, nats, "fgf");
    let pg_proxy = Proxy::start(&Env::host_port(&env.pg));
    let nats_proxy = Proxy::start(&Env::host_port(&env.nats));
    let redis_proxy = Proxy::start(&Env::host_port(redis));
    let store = env.store_url(Some(pg_proxy.addr));
    let nats_via = format!("nats://{}", nats_proxy.addr);

    // Two workers, one per region, on fixed addresses so a restarted one comes back
    // where the gateways expect it.
    let (eu_addr, us_addr) = (free_addr(), free_addr());
    let mut eu = Server::start_on(&eu_addr, &tiny_worker_config(), &["--role", "worker"]);
    let us = Server::start_on(&us_addr, &tiny_worker_config(), &["--role", "worker"]);

    // Three gateways in region eu: they prefer the eu worker. Events go to NATS only
    // (`store_sink = false`); the analytics role writes them into PostgreSQL.
    let gateway_config = |log: &str| {
        format!(
            r#"
[server]
region = "eu"
shutdown_grace_seconds = 2

[auth]
required = true

[store]
url = "{store}"

[ratelimit]
backend = "redis"
redis_url = "redis://{redis_via}"
on_backend_error = "open"
backend_timeout_ms = 100
ip_requests_per_minute = 6000000.0
tenant_requests_per_minute = 6000000.0

{events}
[[model]]
name = "remote"
backend = "upstream"
endpoints = [{{ url = "http://{eu_addr}", region = "eu", model = "tiny" }}, {{ url = "http://{us_addr}", region = "us", model = "tiny" }}]
health_interval_ms = 200
breaker_failures = 2
breaker_cooldown_ms = 1000
first_byte_timeout_ms = 10000
idle_timeout_ms = 5000
"#,
            redis_via = redis_proxy.addr,
            events = env.events(log, &nats_via, false),
        )
    };
    let gateways: Vec<Server> = ["g1", "g2", "g3"]
        .iter()
        .map(|log| Server::start_with_args(&gateway_config(log), &["--role", "gateway"]))
        .collect();
    let analytics = Server::start(&format!(
        "[server]\nrole = \"analytics\"\n\n[store]\nurl = \"{store}\"\n\n{}",
        env.events("analytics", &nats_via, false)
    ));
    let (key, _) = gateways[0].create_key(&["--rpm", "100000000", "--tpm", "100000000000"]);

    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let bases: Vec<String> = gateways.iter().map(|g| g.base.clone()).collect();
    let handles = load(
        bases,
        key,
        6,
        Some(4),
        Arc::clone(&stop),
        Arc::clone(&outcomes),
    );
    let count = || outcomes.lock().unwrap().len();
    let phase = |name: &str, secs: u64, from: usize| {
        std::thread::sleep(Duration::from_secs(secs));
        let all = outcomes.lock().unwrap();
        let ok = all[from..].iter().filter(|o| o.result == "200").count();
        eprintln!(
            "fleet: {name}: {} requests, {ok} answered 200",
            all.len() - from
        );
        all.len()
    };

    let mark = phase("steady", 3, 0);
    let (eu_before, us_before) = (served(&eu), served(&us));
    assert!(
        eu_before > us_before,
        "the gateways prefer their region's worker: eu {eu_before}, us {us_before}"
    );

    // The preferred worker dies without warning.
    eu.child.kill().unwrap();
    eu.child.wait().unwrap();
    let us_at_kill = served(&us);
    let mark = phase("eu worker killed", 3, mark);
    assert!(
        served(&us) > us_at_kill,
        "the gateways failed over to the us worker"
    );

    // It comes back on its address; the gateways return to it.
    let restart = || {
        let restarted = Instant::now();
        let worker = Server::start_on(&eu_addr, &tiny_worker_config(), &["--role", "worker"]);
        loop {
            let before = served(&worker);
            std::thread::sleep(Duration::from_millis(200));
            if served(&worker) > before {
                return (worker, restarted.elapsed());
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(20),
                "the gateways did not come back to the restarted eu worker"
            );
        }
    };
    let (worker, back) = restart();
    eu = worker;
    eprintln!("fleet: the restarted eu worker serves again {back:?} after its restart began");
    let mark = phase("eu worker back", 2, mark);

    // A worker that is stopped (SIGTERM) drains: what it runs finishes, what it has not
    // started is retried on the other region before its first token; no request fails.
    let from = count();
    eu.terminate();
    eu.child.wait().unwrap();
    phase("eu worker drained on SIGTERM", 1, mark);
    {
        let all = outcomes.lock().unwrap();
        let failed: Vec<&Outcome> = all[from..].iter().filter(|o| o.result != "200").collect();
        assert!(
            failed.is_empty(),
            "requests failed while a worker drained: {:?}",
            &failed[..failed.len().min(5)]
        );
    }
    let (worker, back) = restart();
    eu = worker;
    eprintln!(
        "fleet: after its drain, the eu worker serves again {back:?} after its restart began"
    );

    let down = restart_seconds();
    for (name, proxy) in [
        ("redis", &redis_proxy),
        ("postgres", &pg_proxy),
        ("nats", &nats_proxy),
    ] {
        let from = count();
        proxy.cut();
        std::thread::sleep(Duration::from_secs(down));
        proxy.restore();
        let all = outcomes.lock().unwrap();
        let ok = all[from..].iter().filter(|o| o.result == "200").count();
        let n = all.len() - from;
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &all[from..] {
            *seen.entry(o.result.as_str()).or_default() += 1;
        }
        eprintln!("fleet: {name} down {down} s: {n} requests, {ok} answered 200: {seen:?}");
        assert!(
            ok * 10 >= n * 9 && ok > 0,
            "requests kept being served while {name} was down: {ok} of {n}: {seen:?}"
        );
        drop(all);
        phase(&format!("{name} back"), 2, count());
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }

    let all = outcomes.lock().unwrap().clone();
    let mut by_result: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &all {
        *by_result.entry(o.result.as_str()).or_default() += 1;
    }
    eprintln!("fleet: {} requests in all: {by_result:?}", all.len());
    let hung = by_result.get("hung").copied().unwrap_or(0);
    let unclear: Vec<&&str> = by_result
        .keys()
        .filter(|r| {
            r.contains("transport error")
                || r.contains("unreadable")
                || r.contains("without an OpenAI error body")
        })
        .collect();
    assert_eq!(hung, 0, "hung requests");
    assert!(
        unclear.is_empty(),
        "requests without a clear answer: {unclear:?}"
    );
    let answered: Vec<String> = all.iter().filter_map(|o| o.id.clone()).collect();
    assert!(
        by_result.get("200").copied().unwrap_or(0) * 10 >= all.len() * 9,
        "most requests answered"
    );
    assert_all_once("fleet: postgres (analytics role)", &answered, 90, || {
        env.stored_ids()
    });
    assert_all_once("fleet: jetstream", &answered, 90, || {
        jetstream_ids(&env.nats, &env.stream)
    });
    eprintln!(
        "fleet: figures: {} requests, {} answered or refused with an event, 0 hung, 0 events lost",
        all.len(),
        answered.len()
    );
    // What the processes logged at warning level or above, once per message.
    let mut warned: BTreeMap<String, usize> = BTreeMap::new();
    for (who, server) in gateways.iter().map(|g| ("gateway", g)).chain([
        ("analytics", &analytics),
        ("worker eu", &eu),
        ("worker us", &us),
    ]) {
        for line in server.logs.lock().unwrap().iter() {
            if line.contains("WARN") || line.contains("ERROR") {
                let text: String = line
                    .split_once("floodgate")
                    .map_or(line.as_str(), |(_, rest)| rest)
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .take(400)
                    .collect();
                *warned.entry(format!("{who}: {text}")).or_default() += 1;
            }
        }
    }
    for (line, n) in &warned {
        eprintln!("fleet: logged {n}×: {line}");
    }
    drop(analytics);
}

fn shared_limits(pg: &str, nats: &str, redis: &str) {
    let env = Env::new(pg, nats, "fgf");
    let upstream = bonjour_upstream();
    let store = env.store_url(None);
    // Bursts of one second's worth, so the long-run rate dominates the count. The
    // gateways are in two regions; the limits and budgets are one through Redis.
    let config = |log: &str, region: &str| {
        format!(
            r#"
[server]
region = "{region}"

[auth]
required = true

[store]
url = "{store}"

[ratelimit]
backend = "redis"
redis_url = "{redis}"
burst_seconds = 1
ip_requests_per_minute = 6000000.0
tenant_requests_per_minute = 6000000.0

[costs]
budget_period = "day"

{events}
[[model]]
name = "remote"
backend = "upstream"
endpoints = [{{ url = "{upstream}", model = "m" }}]
usd_per_1k_prompt_tokens = 1.0
usd_per_1k_completion_tokens = 1.0
"#,
            events = env.events(log, "", true),
        )
    };
    let gateways: Vec<Server> = [("l1", "eu"), ("l2", "eu"), ("l3", "us")]
        .iter()
        .map(|(log, region)| Server::start(&config(log, region)))
        .collect();
    let bases: Vec<String> = gateways.iter().map(|g| g.base.clone()).collect();

    // Rate: 2,400 a minute (40/s, burst 40), driven well past it through all three.
    let rpm = 2400.0;
    let (key, _) = gateways[0].create_key(&["--rpm", "2400", "--tpm", "100000000000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let handles = load(
        bases.clone(),
        key,
        6,
        Some(4),
        Arc::clone(&stop),
        Arc::clone(&outcomes),
    );
    std::thread::sleep(Duration::from_secs(15));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let window = started.elapsed().as_secs_f64();
    let all = outcomes.lock().unwrap().clone();
    let admitted = all.iter().filter(|o| o.result == "200").count() as f64;
    let refused = all
        .iter()
        .filter(|o| o.result == "429 rate_limit_exceeded")
        .count();
    let other: Vec<&Outcome> = all
        .iter()
        .filter(|o| o.result != "200" && o.result != "429 rate_limit_exceeded")
        .collect();
    assert!(
        other.is_empty(),
        "unexpected answers: {:?}",
        &other[..other.len().min(5)]
    );
    // GCRA: a burst of one second's worth, then the rate.
    let expected = rpm / 60.0 * (1.0 + window);
    let error = (admitted - expected).abs() / expected;
    eprintln!(
        "limits: one key at {rpm}/min through 3 gateways for {window:.2} s: {admitted} admitted (expected {expected:.1}), {refused} refused, error {:.2} %",
        error * 100.0
    );
    assert!(refused > 0, "the load exceeded the limit");
    assert!(
        error <= 0.01,
        "rate limit error {:.2} % > 1 %",
        error * 100.0
    );

    // Budget: $0.30 a day; a request costs 12 tokens at $1/1k = $0.012. Admission
    // reserves the most a request can cost (the default max_tokens), so concurrent
    // requests through the three gateways cannot all slip under the limit at once.
    let budget = 0.3;
    let per_request = 0.012;
    let (key, id) = gateways[0].create_key(&[
        "--budget-usd",
        "0.3",
        "--rpm",
        "100000000",
        "--tpm",
        "100000000000",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let handles = load(
        bases,
        key,
        6,
        None,
        Arc::clone(&stop),
        Arc::clone(&outcomes),
    );
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let all = outcomes.lock().unwrap().clone();
    let admitted = all.iter().filter(|o| o.result == "200").count();
    let ids: Vec<String> = all.iter().filter_map(|o| o.id.clone()).collect();
    let unexpected: Vec<&Outcome> = all
        .iter()
        .filter(|o| o.result != "200" && o.result != "429 budget_exceeded")
        .collect();
    assert!(
        unexpected.is_empty(),
        "only answers and budget refusals: {:?}",
        &unexpected[..unexpected.len().min(5)]
    );
    // Spend as the store settled it, once every request's event is in.
    assert_all_once("limits: postgres", &ids, 30, || env.stored_ids());
    let spent = env.spent_usd(&id);
    let overshoot = (spent - budget).max(0.0) / per_request;
    eprintln!(
        "limits: budget ${budget} through 3 gateways: {admitted} requests served, ${spent:.4} spent, overshoot {overshoot:.2} requests (at most 3 allowed: one per gateway)"
    );
    assert!(admitted > 0, "the budget let requests through");
    assert!(
        spent <= budget + 3.0 * per_request + 1e-9,
        "overshoot: spent {spent} of {budget}"
    );
}
