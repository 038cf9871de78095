//! Upstream backends end to end: a gateway (`--role gateway`) in front of Floodgate
//! workers (`--role worker`) in two regions, and in front of a fake upstream that
//! misbehaves on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, joined, metric_value, sse_data, stream_chunks, tiny_worker_config, Server};
use serde_json::{json, Value};

const CHAT: &str = "floodgate_http_requests_total{route=\"/v1/chat/completions\"";

fn worker() -> Server {
    Server::start_with_args(&tiny_worker_config(), &["--role", "worker"])
}

/// A gateway whose model `remote` is served by `endpoints` (url, region); its own
/// region is `eu`. Output guards are off so answers can be compared byte for byte
/// with a worker's.
fn gateway(endpoints: &[(&str, &str)]) -> Server {
    let list: Vec<String> = endpoints
        .iter()
        .map(|(url, region)| format!(r#"{{ url = "{url}", region = "{region}", model = "tiny" }}"#))
        .collect();
    let config = format!(
        r#"
[server]
region = "eu"
shutdown_grace_seconds = 1

[guard]
output_policy = "allow"
redact_output_pii = false

[[model]]
name = "remote"
backend = "upstream"
endpoints = [{}]
health_interval_ms = 200
breaker_failures = 2
breaker_cooldown_ms = 60000
first_byte_timeout_ms = 30000
idle_timeout_ms = 10000
"#,
        list.join(", ")
    );
    Server::start_with_args(&config, &["--role", "gateway"])
}

fn chat(model: &str, content: &str, max_tokens: u32) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 7,
        "ignore_eos": true,
    })
}

fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = client().post(url).json(body).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn port_of(server: &Server) -> String {
    server.base.rsplit(':').next().unwrap().to_string()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn the_preferred_region_serves_until_it_dies_then_every_request_fails_over() {
    let mut eu = worker();
    let us = worker();
    let gw = gateway(&[(&eu.base, "eu"), (&us.base, "us")]);

    // The gateway's region is preferred while healthy.
    for i in 0..4 {
        let (status, body) = post(
            &gw.url("/v1/chat/completions"),
            &chat("remote", &format!("hello {i}"), 4),
        );
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(eu.metric(CHAT), 4.0);
    assert_eq!(us.metric(CHAT), 0.0);

    // Plain and streamed answers through the gateway are the worker's own, in OpenAI shape.
    let body = chat("remote", "What is the capital of France?", 12);
    let (status, via) = post(&gw.url("/v1/chat/completions"), &body);
    assert_eq!(status, 200, "{via}");
    let (_, direct) = post(
        &us.url("/v1/chat/completions"),
        &chat("tiny", "What is the capital of France?", 12),
    );
    assert_eq!(via["object"], "chat.completion");
    assert!(
        via["id"].as_str().unwrap().starts_with("chatcmpl-"),
        "{via}"
    );
    assert_eq!(via["model"], "remote");
    assert_eq!(via["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        via["choices"][0]["message"]["content"],
        direct["choices"][0]["message"]["content"]
    );
    assert_eq!(
        via["choices"][0]["finish_reason"],
        direct["choices"][0]["finish_reason"]
    );
    // Usage comes from the upstream's usage chunk (cached prompt tokens may differ:
    // each worker has its own prefix cache).
    for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(via["usage"][k], direct["usage"][k], "{k}");
    }
    let text = via["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!text.is_empty());

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = stream_chunks(&gw.url("/v1/chat/completions"), &streamed);
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(joined(&chunks, "/choices/0/delta/content"), text);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        usage["completion_tokens"],
        direct["usage"]["completion_tokens"]
    );
    assert_eq!(usage["prompt_tokens"], direct["usage"]["prompt_tokens"]);

    // Text completions go to /v1/completions.
    let text_body = |model: &str| json!({"model": model, "prompt": "Once upon", "max_tokens": 6, "temperature": 0, "seed": 3});
    let (status, via) = post(&gw.url("/v1/completions"), &text_body("remote"));
    assert_eq!(status, 200, "{via}");
    let (_, direct) = post(&us.url("/v1/completions"), &text_body("tiny"));
    assert_eq!(via["object"], "text_completion");
    assert_eq!(via["choices"][0]["text"], direct["choices"][0]["text"]);

    // Token-id prompts cannot be forwarded.
    let (status, err) = post(
        &gw.url("/v1/completions"),
        &json!({"model": "remote", "prompt": [1, 2, 3]}),
    );
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "prompt");

    // The preferred region dies. Under continuous load every request still succeeds.
    let eu_endpoint = format!("endpoint=\"127.0.0.1:{}\"", port_of(&eu));
    let us_before = us.metric(CHAT);
    eu.child.kill().unwrap();
    eu.child.wait().unwrap();
    let url = gw.url("/v1/chat/completions");
    let until = Instant::now() + Duration::from_secs(3);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut results = Vec::new();
                let mut i = 0;
                while Instant::now() < until {
                    results.push(post(&url, &chat("remote", &format!("load {t} {i}"), 3)));
                    i += 1;
                    // Steady load, well inside the default per-key request limit
                    // (600/min with a minute's burst), which a tight loop can exceed.
                    std::thread::sleep(Duration::from_millis(20));
                }
                results
            })
        })
        .collect();
    let results: Vec<(u16, Value)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(results.len() >= 4, "{} requests", results.len());
    for (status, body) in &results {
        assert_eq!(*status, 200, "a request failed during failover: {body}");
        assert_eq!(body["object"], "chat.completion");
    }
    assert_eq!(
        us.metric(CHAT) - us_before,
        results.len() as f64,
        "the other region served them all"
    );

    // The dead endpoint's breaker is open and it is unhealthy; the live one is healthy.
    let metrics = || {
        client()
            .get(gw.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    wait_for("the breaker to open", || {
        let m = metrics();
        m.lines().any(|l| {
            l.starts_with("floodgate_upstream_breaker_state{")
                && l.contains(&eu_endpoint)
                && l.ends_with(" 2")
        })
    });
    let m = metrics();
    let healthy = |needle: &str| {
        m.lines()
            .find(|l| l.starts_with("floodgate_upstream_healthy{") && l.contains(needle))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(healthy(&eu_endpoint), Some(0.0), "{m}");
    assert_eq!(healthy("region=\"us\""), Some(1.0), "{m}");
    assert!(metric_value(&m, "floodgate_upstream_attempts_total{") > 0.0);
    // The gateway itself stays ready.
    assert_eq!(
        client().get(gw.url("/readyz")).send().unwrap().status(),
        200
    );
}

/// One request as the fake upstream saw it.
struct Seen {
    head: String,
    body: String,
}

/// A fake OpenAI-compatible upstream on a random port. `GET /v1/models` is healthy; a
/// POST whose body mentions `bad-request` gets a 400 with an OpenAI error body; any
/// other POST gets two SSE chunks, then the connection is closed mid-generation.
fn fake_upstream() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let Some((head, body)) = common::read_request(&stream) else {
                    return;
                };
                let body = String::from_utf8_lossy(&body).to_string();
                let response = if head.starts_with("GET") {
                    let b = r#"{"object":"list","data":[]}"#;
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}", b.len())
                } else if body.contains("bad-request") {
                    let b = r#"{"error":{"message":"temperature is too spicy","type":"invalid_request_error","param":"temperature","code":null}}"#;
                    format!("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}", b.len())
                } else {
                    let chunk = |t: &str| {
                        format!("data: {{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{t}\"}},\"finish_reason\":null}}]}}\n\n")
                    };
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{}{}",
                        chunk("Hel"),
                        chunk("lo")
                    )
                };
                log.lock().unwrap().push(Seen { head, body });
                let _ = stream.write_all(response.as_bytes());
                let _ = stream.flush();
                // Dropping the socket closes the stream before any finish or [DONE].
            });
        }
    });
    (url, seen)
}

#[test]
fn a_broken_stream_ends_with_an_error_event_upstream_errors_pass_through_and_the_key_is_sent() {
    let (url, seen) = fake_upstream();
    let config = format!(
        r#"
[server]
region = "eu"
shutdown_grace_seconds = 1

# No output hold-back, so the tokens before the failure reach the client at once.
[guard]
redact_output_pii = false

[[model]]
name = "remote"
backend = "upstream"
retries = 0
breaker_failures = 100
health_interval_ms = 200
endpoints = [{{ url = "{url}", region = "eu", api_key = "env::FAKE_UPSTREAM_KEY", model = "fake-model" }}]
"#
    );
    let gw = Server::start_with_env(
        &config,
        &["--role", "gateway"],
        &[("FAKE_UPSTREAM_KEY", "sk-test-4711")],
    );

    // Tokens were sent, then the upstream died: the stream ends with an error event.
    let mut body = chat("remote", "Say hello", 8);
    body["stream"] = json!(true);
    let response = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().unwrap();
    let data = sse_data(&text);
    assert_ne!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    let chunks: Vec<Value> = data
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        joined(&chunks, "/choices/0/delta/content"),
        "Hello",
        "{text}"
    );
    let last = chunks.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mid-stream"),
        "{text}"
    );
    assert_eq!(last["error"]["code"], "upstream_error", "{text}");

    // The same failure on a plain request is an error, never a silent 200.
    let (status, err) = post(
        &gw.url("/v1/chat/completions"),
        &chat("remote", "Say hello", 8),
    );
    assert_eq!(status, 502, "{err}");
    assert_eq!(err["error"]["code"], "upstream_error", "{err}");
    assert!(err["error"]["message"].is_string(), "{err}");

    // An upstream 400 comes back as a 400 with the upstream's message and parameter.
    let (status, err) = post(
        &gw.url("/v1/chat/completions"),
        &chat("remote", "bad-request please", 8),
    );
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["message"], "temperature is too spicy");
    assert_eq!(err["error"]["param"], "temperature");

    // The gateway is still healthy and ready.
    assert_eq!(
        client().get(gw.url("/healthz")).send().unwrap().status(),
        200
    );
    assert_eq!(
        client().get(gw.url("/readyz")).send().unwrap().status(),
        200
    );

    // Every request (and health check) carried the key from the environment; the
    // upstream saw its own model name and a streaming request with usage.
    let seen = seen.lock().unwrap();
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.head.starts_with("POST")).collect();
    assert_eq!(posts.len(), 3);
    assert!(seen.iter().any(|s| s.head.starts_with("GET /v1/models")));
    for s in seen.iter() {
        assert!(
            s.head
                .lines()
                .any(|l| l.eq_ignore_ascii_case("authorization: bearer sk-test-4711")),
            "{}",
            s.head
        );
    }
    let sent: Value = serde_json::from_str(&posts[0].body).unwrap();
    assert!(posts[0].head.starts_with("POST /v1/chat/completions"));
    assert_eq!(sent["model"], "fake-model");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(sent["seed"], 7);
    assert_eq!(sent["max_tokens"], 8);
    assert!(
        !gw.logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("sk-test-4711")),
        "the key was logged"
    );
}
