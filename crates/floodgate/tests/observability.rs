//! Metrics in OpenTelemetry GenAI terms and OTLP traces, end to end against the real
//! binary: a client → gateway → worker chain exporting to an OTLP/HTTP receiver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, read_request, tiny_config, tiny_worker_config, Server};
use serde_json::{json, Value};

fn chat(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 6,
        "temperature": 0,
    })
}

/// Every `# TYPE` has its `# HELP`; the metric names exported.
fn exported(text: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut typed = BTreeSet::new();
    let mut helped = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split_whitespace().next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    let missing = typed.difference(&helped).cloned().collect();
    (typed, missing)
}

#[test]
fn genai_metrics_have_bounded_labels_the_conventions_buckets_and_help_text() {
    let server = Server::start(&tiny_config(""));
    let http = client();
    for _ in 0..3 {
        let r = http
            .post(server.url("/v1/chat/completions"))
            .json(&chat("tiny"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let stream = http
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model": "tiny", "stream": true, "max_tokens": 6,
            "messages": [{"role": "user", "content": "Count."}]}))
        .send()
        .unwrap();
    assert_eq!(stream.status(), 200);
    let _ = stream.text().unwrap();
    // A model nobody configured: refused, and its name must not become a label.
    let unknown = "someone-typed-this-9f8e7d";
    let r = http
        .post(server.url("/v1/chat/completions"))
        .json(&chat(unknown))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);

    let text = http
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        !text.contains(unknown),
        "a client's model string became a label"
    );
    let (names, missing_help) = exported(&text);
    assert!(
        missing_help.is_empty(),
        "series without # HELP: {missing_help:?}"
    );

    let count = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let chat_ok = r#"gen_ai_server_request_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_request_model="tiny""#;
    assert_eq!(count(chat_ok), 4.0, "{text}");
    let refused = r#"gen_ai_server_request_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_request_model="_other""#;
    assert_eq!(count(refused), 1.0);
    assert!(text.contains(r#"error_type="model_not_found""#));
    assert_eq!(
        count(
            r#"gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name="chat",gen_ai_request_model="tiny""#
        ),
        4.0
    );
    assert!(count("gen_ai_server_time_per_output_token_seconds_count{") >= 1.0);
    // Input and output tokens of every backend call.
    assert_eq!(
        count(
            r#"gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_request_model="tiny""#
        ),
        8.0
    );
    let output_sum: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("gen_ai_client_token_usage_sum{")
                && l.contains(r#"gen_ai_request_model="tiny""#)
                && l.contains(r#"floodgate_variant="tiny""#)
                && l.contains(r#"gen_ai_token_type="output""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!((4.0..=24.0).contains(&output_sum), "{output_sum}");
    // The semantic conventions' bucket boundaries.
    for (metric, le) in [
        ("gen_ai_client_token_usage_bucket", "67108864"),
        ("gen_ai_server_request_duration_seconds_bucket", "81.92"),
        ("gen_ai_server_time_to_first_token_seconds_bucket", "7.5"),
        (
            "gen_ai_server_time_per_output_token_seconds_bucket",
            "0.075",
        ),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(metric) && l.contains(&format!("le=\"{le}\""))),
            "{metric} lacks le={le}"
        );
    }
    let build = text
        .lines()
        .find(|l| l.starts_with("floodgate_build_info{"))
        .expect("build info");
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.ends_with(" 1"),
        "{build}"
    );

    // docs/metrics.md documents every series the server exports.
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .unwrap();
    let undocumented: Vec<_> = names
        .iter()
        .filter(|n| !docs.contains(&format!("`{n}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/metrics.md: {undocumented:?}"
    );
}

/// One OTLP/HTTP JSON export as the receiver got it.
type Spans = Arc<Mutex<Vec<Value>>>;

/// An OTLP/HTTP receiver (JSON encoding) on a random port: every span it is sent.
fn otlp_receiver() -> (String, Spans) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let spans: Spans = Arc::default();
    let keep = Arc::clone(&spans);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let keep = Arc::clone(&keep);
            std::thread::spawn(move || {
                while let Some((head, body)) = read_request(&stream) {
                    assert!(head.starts_with("POST /v1/traces"), "{head}");
                    let export: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                    let mut got = keep.lock().unwrap();
                    for rs in export["resourceSpans"].as_array().into_iter().flatten() {
                        let service = rs["resource"]["attributes"]
                            .as_array()
                            .and_then(|a| a.iter().find(|kv| kv["key"] == "service.name"))
                            .map(|kv| kv["value"]["stringValue"].clone())
                            .unwrap_or(Value::Null);
                        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                            for span in ss["spans"].as_array().into_iter().flatten() {
                                let mut span = span.clone();
                                span["service"] = service.clone();
                                got.push(span);
                            }
                        }
                    }
                    drop(got);
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                    );
                }
            });
        }
    });
    (url, spans)
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

fn telemetry(url: &str, service: &str, ratio: f64) -> String {
    format!(
        r#"
[telemetry]
otlp_endpoint = "{url}"
otlp_protocol = "http/json"
trace_sample_ratio = {ratio}
service_name = "{service}"
"#
    )
}

#[test]
fn a_clients_trace_continues_through_the_gateway_into_the_worker() {
    let (otlp, spans) = otlp_receiver();
    let worker = Server::start_with_args(
        &format!(
            "{}{}",
            tiny_worker_config(),
            telemetry(&otlp, "worker", 0.0)
        ),
        &["--role", "worker"],
    );
    let gateway_config = format!(
        r#"
[server]
shutdown_grace_seconds = 1
{}
[[model]]
name = "remote"
backend = "upstream"
endpoints = [{{ url = "{}", model = "tiny" }}]
"#,
        telemetry(&otlp, "gateway", 0.0),
        worker.base
    );
    let gateway = Server::start_with_args(&gateway_config, &["--role", "gateway"]);
    let http = client();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let r = http
        .post(gateway.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&chat("remote"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let request_id = r.headers()["x-floodgate-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    // Unsampled by the client and the ratio is 0: nothing is exported for this one.
    let r = http
        .post(gateway.url("/v1/chat/completions"))
        .header(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-00",
        )
        .json(&chat("remote"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // The batch processor exports within its schedule delay (5 s by default).
    let deadline = Instant::now() + Duration::from_secs(20);
    let ours = loop {
        let got: Vec<Value> = spans.lock().unwrap().clone();
        let ours: Vec<Value> = got
            .iter()
            .filter(|s| s["traceId"] == trace_id)
            .cloned()
            .collect();
        let services: BTreeSet<_> = ours.iter().map(|s| s["service"].to_string()).collect();
        if services.len() == 2 && ours.iter().filter(|s| s["kind"] == 2).count() == 2 {
            break ours;
        }
        assert!(Instant::now() < deadline, "spans never arrived: {got:#?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let all = spans.lock().unwrap().clone();
    assert!(
        all.iter()
            .all(|s| s["traceId"] != "11111111111111111111111111111111"),
        "an unsampled request was exported"
    );
    let by_id: HashMap<String, &Value> = ours
        .iter()
        .map(|s| (s["spanId"].as_str().unwrap().to_string(), s))
        .collect();
    // SERVER spans (kind 2): the gateway's, child of the client's span; the worker's,
    // child of the gateway's HTTP attempt span (kind 3, CLIENT).
    let server = |service: &str| {
        ours.iter()
            .find(|s| s["kind"] == 2 && s["service"] == service)
            .unwrap_or_else(|| panic!("no {service} server span: {ours:#?}"))
    };
    let gw = server("gateway");
    assert_eq!(gw["parentSpanId"], client_span);
    assert_eq!(gw["name"], "chat remote");
    assert_eq!(
        attr(gw, "gen_ai.operation.name").unwrap()["stringValue"],
        "chat"
    );
    assert_eq!(
        attr(gw, "gen_ai.request.model").unwrap()["stringValue"],
        "remote"
    );
    assert_eq!(
        attr(gw, "floodgate.request_id").unwrap()["stringValue"],
        request_id.as_str()
    );
    assert!(attr(gw, "gen_ai.usage.output_tokens").is_some());
    let wk = server("worker");
    let attempt = by_id[wk["parentSpanId"].as_str().unwrap()];
    assert_eq!(attempt["kind"], 3, "{attempt:#?}");
    assert_eq!(attempt["parentSpanId"], gw["spanId"]);
    assert!(attempt["name"].as_str().unwrap().starts_with("POST "));
    // Pipeline stages of the gateway, in order, inside its span.
    let stages: Vec<&str> = ours
        .iter()
        .filter(|s| s["parentSpanId"] == gw["spanId"] && s["kind"] == 1)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for stage in ["floodgate.resolve", "floodgate.admit", "floodgate.infer"] {
        assert!(stages.contains(&stage), "{stage} missing from {stages:?}");
    }
    // The worker ran the model: its run span carries the tokens.
    assert!(ours.iter().any(|s| s["service"] == "worker"
        && s["kind"] == 3
        && attr(s, "gen_ai.usage.output_tokens").is_some()));
}

#[test]
fn without_tracing_a_clients_traceparent_is_passed_on_unchanged() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keep = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((head, _)) = read_request(&stream) else {
                continue;
            };
            keep.lock().unwrap().push(head.clone());
            let response = if head.starts_with("GET") {
                let b =
                    json!({"object": "list", "data": [{"id": "m", "object": "model"}]}).to_string();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                    b.len()
                )
            } else {
                // The gateway always streams from upstreams.
                let chunk = json!({"id": "x", "object": "chat.completion.chunk", "created": 1,
                    "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"},
                    "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: {chunk}\n\ndata: [DONE]\n\n"
                )
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    let config = format!(
        r#"
[[model]]
name = "remote"
backend = "upstream"
endpoints = [{{ url = "{url}", model = "m" }}]
"#
    );
    let gateway = Server::start_with_args(&config, &["--role", "gateway"]);
    let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = client()
        .post(gateway.url("/v1/chat/completions"))
        .header("traceparent", header)
        .json(&chat("remote"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let heads = seen.lock().unwrap().clone();
    let post = heads
        .iter()
        .find(|h| h.starts_with("POST"))
        .expect("the upstream was called");
    assert!(
        post.lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("traceparent: {header}"))),
        "{post}"
    );
}
