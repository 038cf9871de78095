//! The event spine end to end, with real processes and real services: every answered
//! request leaves exactly one event in PostgreSQL and in NATS JetStream through a
//! kill -9, a store outage and a NATS outage; two gateways share keys, revocations
//! and budgets through one PostgreSQL (and Redis); a reused `x-request-id` loses nothing.
//!
//! Needs `FLOODGATE_TEST_POSTGRES_URL`, `FLOODGATE_TEST_NATS_URL` (and for budgets
//! `FLOODGATE_TEST_REDIS_URL`); without them those tests are reported as ignored. Each
//! test works in its own PostgreSQL schema and JetStream stream. Outages last
//! `FLOODGATE_TEST_OUTAGE_SECONDS` (default 60).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::services::{assert_all_once, jetstream_payloads, psql, server_id, Env};
use common::{bonjour_upstream, client, Proxy, Server};
use floodgate_test_support::needs::{self, trial, Need};
use serde_json::{json, Value};

fn main() -> ExitCode {
    let services = || -> Need<(String, String)> { Ok((needs::postgres()?, needs::nats()?)) };
    let all = || -> Need<(String, String, String)> {
        Ok((needs::postgres()?, needs::nats()?, needs::redis()?))
    };
    needs::run(vec![
        trial(
            "kill_9_under_load_loses_and_duplicates_no_event",
            services(),
            |(pg, nats)| kill_9_under_load(&pg, &nats),
        ),
        trial(
            "a_store_outage_is_caught_up_while_requests_are_served",
            services(),
            |(pg, nats)| outage(&pg, &nats, Down::Postgres),
        ),
        trial(
            "a_nats_outage_is_caught_up_while_requests_are_served",
            services(),
            |(pg, nats)| outage(&pg, &nats, Down::Nats),
        ),
        trial(
            "two_gateways_share_keys_revocations_and_budgets",
            all(),
            |(pg, nats, redis)| two_gateways(&pg, &nats, &redis),
        ),
        trial(
            "the_analytics_role_consumes_jetstream_into_postgres",
            services(),
            |(pg, nats)| analytics_role(&pg, &nats),
        ),
        trial("a_reused_request_id_loses_no_record", Ok(()), |()| {
            reused_request_id()
        }),
        trial("events_export_as_jsonl_and_parquet", Ok(()), |()| export()),
    ])
}

/// The events tests' gateway configuration.
trait GatewayConfig {
    fn config(&self, log: &str, upstream: &str, store: &str, nats: &str, extra: &str) -> String;
}

impl GatewayConfig for Env {
    /// A gateway's configuration, its event log in `log` under the test's directory
    /// (one per process: a restarted process reuses its predecessor's).
    fn config(&self, log: &str, upstream: &str, store: &str, nats: &str, extra: &str) -> String {
        format!(
            r#"
[server]
shutdown_grace_seconds = 2

[store]
url = "{store}"

[events]
dir = "{events}"
nats_url = "{nats}"
nats_stream = "{stream}"
nats_subject_prefix = "fgt.{stream}"
sink_retry_max_ms = 500

[[model]]
name = "remote"
backend = "upstream"
endpoints = [{{ url = "{upstream}", model = "m" }}]
usd_per_1k_prompt_tokens = 1.0
usd_per_1k_completion_tokens = 1.0
{extra}
"#,
            events = self.dir.path().join(log).display(),
            stream = self.stream,
        )
    }
}

/// One upstream model, `remote`, and nothing else configured.
fn remote_config(upstream: &str) -> String {
    format!(
        "[[model]]\nname = \"remote\"\nbackend = \"upstream\"\nendpoints = [{{ url = \"{upstream}\", model = \"m\" }}]\n"
    )
}

fn chat() -> Value {
    json!({"model": "remote", "messages": [{"role": "user", "content": "Bonjour ?"}]})
}

/// Sends chat requests from `threads` threads until `stop`; returns the server ids of
/// the answered ones (status 200, whole body read).
fn load(
    base: String,
    threads: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..threads)
        .map(|_| {
            let (base, stop) = (base.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let http = client();
                let mut answered = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(r) = http
                        .post(format!("{base}/v1/chat/completions"))
                        .json(&chat())
                        .send()
                    else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    // Answered or refused (a 429 is an answer too): each has its event,
                    // once the whole body has arrived.
                    let id = server_id(&r);
                    if r.json::<Value>().is_ok() {
                        answered.push(id);
                    }
                }
                answered
            })
        })
        .collect()
}

fn collect(handles: Vec<std::thread::JoinHandle<Vec<String>>>) -> Vec<String> {
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn kill_9_under_load(pg: &str, nats: &str) {
    let env = Env::new(pg, nats, "fgt");
    let upstream = bonjour_upstream();
    // Loopback load: the per-address limit high enough that most requests are served.
    let config = env.config(
        "a",
        &upstream,
        &env.store_url(None),
        &env.nats_url(None),
        "\n[ratelimit]\nip_requests_per_minute = 600000.0\n",
    );
    let mut first = Server::start(&config);
    let stop = Arc::new(AtomicBool::new(false));
    let handles = load(first.base.clone(), 8, Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(3));
    // Mid-load, no warning: SIGKILL.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let answered = collect(handles);
    assert!(answered.len() > 50, "load was served: {}", answered.len());
    // The restarted process replays what its sinks had not committed.
    let second = Server::start(&config);
    assert_all_once("postgres", &answered, 60, || env.stored_ids());
    assert_all_once("jetstream", &answered, 60, || env.streamed_ids());
    drop(second);
}

enum Down {
    Postgres,
    Nats,
}

fn outage_seconds() -> u64 {
    std::env::var("FLOODGATE_TEST_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

fn outage(pg: &str, nats: &str, down: Down) {
    let env = Env::new(pg, nats, "fgt");
    let upstream = bonjour_upstream();
    let pg_proxy = Proxy::start(env.pg.split('@').nth(1).unwrap().split('/').next().unwrap());
    let nats_proxy = Proxy::start(env.nats.trim_start_matches("nats://"));
    let config = env.config(
        "a",
        &upstream,
        &env.store_url(Some(pg_proxy.addr)),
        &env.nats_url(Some(nats_proxy.addr)),
        "",
    );
    let server = Server::start(&config);
    let proxy = match down {
        Down::Postgres => &pg_proxy,
        Down::Nats => &nats_proxy,
    };
    let http = client();
    let timed = || {
        let t = Instant::now();
        let r = http
            .post(server.url("/v1/chat/completions"))
            .json(&chat())
            .send()
            .unwrap();
        (r, t.elapsed())
    };
    // The same steady pace with every sink up, for the latency printed below.
    let mut up = Vec::new();
    for _ in 0..30 {
        let (r, took) = timed();
        assert_eq!(r.status(), 200);
        up.push(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Requests at a steady pace through the outage: every one must be answered.
    proxy.cut();
    let (mut answered, mut refused, mut down_latency) = (Vec::new(), 0, Vec::new());
    let until = Instant::now() + Duration::from_secs(outage_seconds());
    while Instant::now() < until {
        let (r, took) = timed();
        down_latency.push(took);
        if r.status() == 200 {
            answered.push(server_id(&r));
        } else {
            refused += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(refused, 0, "requests refused during the outage");
    // A figure to read, not a timed assertion (the benchmark is bench/events.sh).
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    eprintln!(
        "request latency, median: {:?} with the sinks up, {:?} with {} down ({} requests)",
        median(&mut up),
        median(&mut down_latency),
        match down {
            Down::Postgres => "PostgreSQL",
            Down::Nats => "NATS",
        },
        down_latency.len()
    );
    let errors = server.metric("floodgate_events_sink_errors_total");
    assert!(errors > 0.0, "the sink noticed the outage");
    proxy.restore();
    assert_all_once("postgres", &answered, 90, || env.stored_ids());
    assert_all_once("jetstream", &answered, 90, || env.streamed_ids());
}

fn two_gateways(pg: &str, nats: &str, redis: &str) {
    let env = Env::new(pg, nats, "fgt");
    let upstream = bonjour_upstream();
    let extra = format!(
        "[auth]\nrequired = true\n\n[ratelimit]\nbackend = \"redis\"\nredis_url = \"{redis}\"\n\n[costs]\nbudget_period = \"day\"\n"
    );
    let config = |log| {
        env.config(
            log,
            &upstream,
            &env.store_url(None),
            &env.nats_url(None),
            &extra,
        )
    };
    let a = Server::start(&config("a"));
    let b = Server::start(&config("b"));
    let http = client();
    let ask = |server: &Server, key: &str| {
        http.post(server.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat())
            .send()
            .unwrap()
    };
    // A key made through one gateway's CLI works on the other at once.
    let (key, id) = a.create_key(&[]);
    assert_eq!(ask(&b, &key).status(), 200);
    assert_eq!(ask(&a, &key).status(), 200);
    // Revoked through one: refused by both within a second.
    a.cli(&["keys", "revoke", &id]);
    let revoked = Instant::now();
    let revoked_id = id;
    for server in [&a, &b] {
        loop {
            if ask(server, &key).status() == 401 {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "revocation not seen within 1 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!(
        "revocation seen by both gateways after {:?}",
        revoked.elapsed()
    );
    // One budget across both: 12 tokens at $1/1k = $0.012 a request; the reservation
    // (9 + default max tokens) is larger, so requests stop at or before the budget.
    let budget = 0.1;
    let (key, id) = a.create_key(&["--budget-usd", &budget.to_string()]);
    let mut served = 0;
    for i in 0..200 {
        let server = if i % 2 == 0 { &a } else { &b };
        let r = ask(server, &key);
        match r.status().as_u16() {
            200 => served += 1,
            429 => {
                let v: Value = r.json().unwrap();
                assert_eq!(v["error"]["code"], "budget_exceeded", "{v}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let spent = env.spent_usd(&id);
    let per_request = 0.012;
    eprintln!("budget ${budget}: {served} requests served across two gateways, ${spent:.4} spent");
    assert!(
        served > 0 && served < 200,
        "the budget stopped the key: {served}"
    );
    assert!(
        spent <= budget + per_request + 1e-9,
        "overshoot: spent {spent} of {budget}"
    );

    // Admin actions are events: the CLI's key changes go straight into the store; a key
    // made and a model changed through one gateway's admin API go through its event log
    // into PostgreSQL and into JetStream's `<prefix>.admin`.
    let (admin, admin_id) = a.create_key(&["--scopes", "admin"]);
    let r = http
        .post(b.url("/admin/keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "from-b"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let made_on_b = r.json::<Value>().unwrap()["record"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .patch(b.url("/admin/models/remote"))
        .bearer_auth(&admin)
        .json(&json!({"weight": 2}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let expected = [
        format!("key.created|cli|{revoked_id}"),
        format!("key.revoked|cli|{revoked_id}"),
        format!("key.created|cli|{id}"),
        format!("key.created|cli|{admin_id}"),
        format!("key.created|{admin_id}|{made_on_b}"),
        format!("model.updated|{admin_id}|remote"),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let admin_rows = loop {
        let rows = psql(
            &env.pg,
            &format!(
                "SELECT action || '|' || actor || '|' || target FROM {}.admin_events ORDER BY time_ms",
                env.schema
            ),
        );
        if rows.contains(&expected[5]) || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for e in &expected {
        assert!(admin_rows.contains(e.as_str()), "{e} not in\n{admin_rows}");
    }
    let r = http
        .get(a.url("/admin/events"))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed = r.json::<Value>().unwrap()["data"].as_array().unwrap().len();
    assert_eq!(listed, admin_rows.lines().count(), "{admin_rows}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let streamed = jetstream_kinds(&env.nats, &env.stream);
        let admin_events = streamed.iter().filter(|k| k.as_str() == "admin").count();
        if admin_events == 2 {
            break;
        }
        assert!(
            admin_events < 2 && Instant::now() < deadline,
            "the two admin API actions on the stream: {streamed:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The kind of each message in the stream.
fn jetstream_kinds(url: &str, stream: &str) -> Vec<String> {
    jetstream_payloads(url, stream)
        .iter()
        .map(|v| v["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn analytics_role(pg: &str, nats: &str) {
    let env = Env::new(pg, nats, "fgt");
    let upstream = bonjour_upstream();
    // One gateway keeps its records locally (SQLite) and publishes to NATS; another
    // reads the shared PostgreSQL but writes nothing to it (`store_sink = false`): both
    // reach PostgreSQL only through the stream and the analytics role.
    let local = Server::start(&env.config("local", &upstream, "", &env.nats_url(None), ""));
    let shared = Server::start(
        &env.config(
            "shared",
            &upstream,
            &env.store_url(None),
            &env.nats_url(None),
            "",
        )
        .replace("[events]\n", "[events]\nstore_sink = false\n"),
    );
    let analytics_config = format!(
        "[server]\nrole = \"analytics\"\n\n[store]\nurl = \"{}\"\n\n[events]\nnats_url = \"{}\"\nnats_stream = \"{}\"\nnats_subject_prefix = \"fgt.{}\"\n",
        env.store_url(None),
        env.nats,
        env.stream,
        env.stream
    );
    let analytics = Server::start(&analytics_config);
    let http = client();
    let mut ids = Vec::new();
    for i in 0..20 {
        let gateway = if i % 2 == 0 { &local } else { &shared };
        let r = http
            .post(gateway.url("/v1/chat/completions"))
            .json(&chat())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(server_id(&r));
    }
    assert_all_once("postgres via analytics", &ids, 30, || env.stored_ids());
    // Every request's decision from the analytics process and from the gateway that
    // reads the shared store, whichever gateway served it.
    for id in &ids[..4] {
        for server in [&analytics, &shared] {
            let v = decision(server, id);
            assert_eq!(v["event_id"], id.as_str());
            assert_eq!(v["served_by"], "remote");
        }
    }
}

fn reused_request_id() {
    let upstream = bonjour_upstream();
    let config = remote_config(&upstream);
    let server = Server::start(&config);
    let http = client();
    let mut server_ids = Vec::new();
    for _ in 0..2 {
        let r = http
            .post(server.url("/v1/chat/completions"))
            .header("x-request-id", "same-id")
            .json(&chat())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-request-id"], "same-id");
        server_ids.push(server_id(&r));
    }
    assert_ne!(server_ids[0], server_ids[1]);
    for id in &server_ids {
        let v = decision(&server, id);
        assert_eq!(v["event_id"], id.as_str());
        assert_eq!(v["request_id"], "same-id");
    }
    // A refused request leaves its event too: its record says why.
    let r = http
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let id = server_id(&r);
    let v = decision(&server, &id);
    assert!(v["status"].as_str().unwrap().starts_with("refused"), "{v}");
}

/// The request's decision record, once the store sink has applied its event (10 s).
fn decision(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client()
            .get(server.url(&format!("/v1/requests/{id}/decision")))
            .send()
            .unwrap();
        if r.status() == 200 {
            return r.json().unwrap();
        }
        assert!(Instant::now() < deadline, "no decision record for {id}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn export() {
    let upstream = bonjour_upstream();
    let config = remote_config(&upstream);
    let server = Server::start(&config);
    let http = client();
    for _ in 0..5 {
        let r = http
            .post(server.url("/v1/chat/completions"))
            .json(&chat())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let out = tempfile::tempdir().unwrap();
    let jsonl = out.path().join("events.jsonl");
    server.cli(&[
        "events",
        "export",
        "--format",
        "jsonl",
        "--out",
        jsonl.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let requests: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| {
            v["kind"] == "request" && v["data"]["endpoint"] == "POST /v1/chat/completions"
        })
        .collect();
    assert_eq!(requests.len(), 5, "{text}");
    assert_eq!(requests[0]["schema"], 1);
    assert_eq!(requests[0]["data"]["usage"]["completion_tokens"], 3);
    let parquet = out.path().join("events.parquet");
    let printed = server.cli(&[
        "events",
        "export",
        "--format",
        "parquet",
        "--out",
        parquet.to_str().unwrap(),
    ]);
    let rows: usize = printed
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no row count in {printed:?}"));
    assert!(rows >= 5, "{printed}");
    let bytes = std::fs::read(&parquet).unwrap();
    assert!(
        bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
        "a Parquet file"
    );
}
