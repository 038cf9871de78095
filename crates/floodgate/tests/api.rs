//! The OpenAI-compatible API, end to end, against the real binary and a tiny model.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{client, sse_data, tiny_config, Server};
use serde_json::{json, Value};

fn chat_body(extra: Value) -> Value {
    let mut body = json!({
        "model": "tiny",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 12,
        "seed": 42,
        "ignore_eos": true,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

#[test]
fn chat_completion_has_the_openai_shape_and_headers() {
    let server = Server::start(&tiny_config(""));
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .header("x-request-id", "my-trace-123")
        .json(&chat_body(json!({})))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "my-trace-123");
    assert_eq!(r.headers()["x-floodgate-model"], "tiny");
    let v: Value = r.json().unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "tiny");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(v["choices"][0]["message"]["content"].is_string());
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 12);
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    // <|im_start|> user \n What is the capital of France ? <|im_end|> \n <|im_start|> assistant \n
    assert_eq!(prompt, 15, "{v}");
    assert_eq!(v["usage"]["total_tokens"].as_u64().unwrap(), prompt + 12);

    // The same conversation again reuses the prompt's KV entries (all but the last token,
    // which must be decoded to predict the answer).
    let again: Value = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat_body(json!({"service_tier": "flex"})))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        again["usage"]["prompt_tokens_details"]["cached_tokens"],
        prompt - 1,
        "{again}"
    );
    assert_eq!(
        again["choices"][0]["message"]["content"],
        v["choices"][0]["message"]["content"]
    );

    // Without a client id, one is minted.
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat_body(json!({"max_tokens": 1})))
        .send()
        .unwrap();
    // Without a client id the server's own (its event's id) is the request id.
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("evt_"), "{id}");
    assert_eq!(r.headers()["x-floodgate-request-id"], id);
}

#[test]
fn same_seed_same_text_and_streaming_matches_plain() {
    let server = Server::start(&tiny_config(""));
    let plain = |seed: u64| -> String {
        let v: Value = client()
            .post(server.url("/v1/chat/completions"))
            .json(&chat_body(json!({"seed": seed, "max_tokens": 24})))
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = plain(7);
    assert_eq!(a, plain(7), "a seeded request must be reproducible");
    assert_ne!(
        a,
        plain(8),
        "different seeds should differ on a random model"
    );

    let body = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat_body(json!({
            "seed": 7, "max_tokens": 24, "stream": true,
            "stream_options": {"include_usage": true}
        })))
        .send()
        .unwrap();
    assert_eq!(body.status(), 200);
    assert!(body.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let data = sse_data(&body.text().unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut text = String::new();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert!(c.as_object().unwrap().contains_key("usage"));
        if let Some(t) = c["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    assert_eq!(text, a, "streamed text must equal the non-streamed text");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage["usage"]["completion_tokens"], 24);
}

#[test]
fn logprobs_cover_every_generated_token() {
    let server = Server::start(&tiny_config(""));
    let v: Value = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat_body(
            json!({"logprobs": true, "top_logprobs": 3, "max_tokens": 10}),
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 10);
    for tok in content {
        let lp = tok["logprob"].as_f64().unwrap();
        assert!(lp <= 0.0 && lp.is_finite(), "{tok}");
        let top = tok["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert!(top[0]["logprob"].as_f64().unwrap() >= top[2]["logprob"].as_f64().unwrap());
        assert!(top[0]["logprob"].as_f64().unwrap() >= lp - 1e-4);
    }
    // Greedy picks the most likely token, so its logprob is the top alternative's.
    let v: Value = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat_body(
            json!({"logprobs": true, "top_logprobs": 1, "temperature": 0}),
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for tok in v["choices"][0]["logprobs"]["content"].as_array().unwrap() {
        let best = tok["top_logprobs"][0]["logprob"].as_f64().unwrap();
        assert!(
            (tok["logprob"].as_f64().unwrap() - best).abs() < 1e-5,
            "{tok}"
        );
    }
    // Streamed, the entries travel with their text (held back with it by the output
    // screen's PII hold-back): all of them arrive, in order, and spell out the text.
    let chunks = common::stream_chunks(
        &server.url("/v1/chat/completions"),
        &chat_body(json!({"logprobs": true, "top_logprobs": 1, "max_tokens": 12, "stream": true})),
    );
    let (mut text, mut tokens, mut entries) = (String::new(), String::new(), 0);
    for c in &chunks {
        if let Some(t) = c["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
        for e in c["choices"][0]["logprobs"]["content"]
            .as_array()
            .into_iter()
            .flatten()
        {
            tokens.push_str(e["token"].as_str().unwrap());
            entries += 1;
        }
    }
    assert_eq!(entries, 12, "{chunks:?}");
    assert_eq!(tokens, text);
}

#[test]
fn text_completions_plain_stream_and_echo() {
    let server = Server::start(&tiny_config(""));
    let v: Value = client()
        .post(server.url("/v1/completions"))
        .json(
            &json!({"model": "tiny-base", "prompt": "the capital of", "max_tokens": 5,
                      "seed": 1, "ignore_eos": true, "logprobs": 2}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(
        v["choices"][0]["logprobs"]["tokens"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let text = v["choices"][0]["text"].as_str().unwrap().to_string();

    let echoed: Value = client()
        .post(server.url("/v1/completions"))
        .json(
            &json!({"model": "tiny-base", "prompt": "the capital of", "max_tokens": 5,
                      "seed": 1, "ignore_eos": true, "echo": true}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        echoed["choices"][0]["text"],
        format!("the capital of{text}")
    );

    let chunks = common::stream_chunks(
        &server.url("/v1/completions"),
        &json!({"model": "tiny-base", "prompt": "the capital of", "max_tokens": 5,
                "seed": 1, "ignore_eos": true, "stream": true}),
    );
    let streamed = common::joined(&chunks, "/choices/0/text");
    assert_eq!(streamed, text);
}

#[test]
fn models_health_ready_and_metrics() {
    let server = Server::start(&tiny_config(""));
    let v: Value = client()
        .get(server.url("/v1/models"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["tiny", "tiny-base"]);
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let ready: Value = client()
        .get(server.url("/readyz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ready["status"], "ready");
    client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat_body(json!({})))
        .send()
        .unwrap();
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for name in [
        "floodgate_http_requests_total{",
        "floodgate_http_response_seconds_bucket",
        "floodgate_generation_duration_seconds_bucket",
        "floodgate_time_to_first_token_seconds_bucket",
        "floodgate_time_per_output_token_seconds_bucket",
        "floodgate_input_tokens_total",
        "floodgate_output_tokens_total",
        "floodgate_requests_in_flight",
        "floodgate_engine_running_sequences",
        "floodgate_model_loaded",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    assert_eq!(
        common::metric_value(&text, "floodgate_output_tokens_total{model=\"tiny\"}"),
        12.0
    );
    assert!(text.contains(r#"route="/v1/chat/completions""#) && text.contains(r#"status="200""#));
}

/// Sends raw bytes and returns (status, parsed JSON body).
fn raw(server: &Server, request: &[u8]) -> (u16, Value) {
    let addr = server.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (413, 431) and close before a huge request is all written;
    // its answer is still there to read.
    if let Err(e) = s.write_all(request) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn bad_input_gets_the_right_openai_error() {
    // A 1 MiB body limit, so that a 100k-token prompt fits in the body.
    let server = Server::start_with_env(
        &tiny_config(""),
        &[],
        &[("FLOODGATE_LIMITS__MAX_BODY_BYTES", "1048576")],
    );
    let ok = r#"{"model":"tiny","messages":[{"role":"user","content":"hi"}]"#;
    let huge = format!(
        r#"{{"model":"tiny","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "a".repeat(1_100_000)
    );
    let long_prompt = format!(
        r#"{{"model":"tiny","messages":[{{"role":"user","content":"{}"}}]}}"#,
        " the".repeat(100_000)
    );
    let mut big_headers =
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".to_vec();
    for i in 0..40 {
        big_headers.extend_from_slice(format!("x-filler-{i}: {}\r\n", "f".repeat(1000)).as_bytes());
    }
    big_headers.extend_from_slice(b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}");
    let deep = format!(
        r#"{{"model":"tiny","messages":[],"metadata":{}}}"#,
        "[".repeat(5000)
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str, Option<&str>)> = vec![
        (
            "malformed JSON",
            post("/v1/chat/completions", b"{\"model\": "),
            400,
            "invalid_json",
            None,
        ),
        (
            "not an object",
            post("/v1/chat/completions", b"[]"),
            400,
            "invalid_type",
            None,
        ),
        (
            "wrong field type",
            post(
                "/v1/chat/completions",
                format!("{ok},\"max_tokens\":\"many\"}}").as_bytes(),
            ),
            400,
            "invalid_type",
            Some("max_tokens"),
        ),
        (
            "negative max_tokens",
            post(
                "/v1/chat/completions",
                format!("{ok},\"max_tokens\":-5}}").as_bytes(),
            ),
            400,
            "invalid_type",
            Some("max_tokens"),
        ),
        (
            "missing messages",
            post("/v1/chat/completions", br#"{"model":"tiny"}"#),
            400,
            "missing_required_parameter",
            Some("messages"),
        ),
        (
            "empty messages",
            post("/v1/chat/completions", br#"{"model":"tiny","messages":[]}"#),
            400,
            "invalid_value",
            Some("messages"),
        ),
        (
            "unknown field",
            post(
                "/v1/chat/completions",
                format!("{ok},\"tempurature\":1}}").as_bytes(),
            ),
            400,
            "unknown_parameter",
            Some("tempurature"),
        ),
        (
            "absurd temperature",
            post(
                "/v1/chat/completions",
                format!("{ok},\"temperature\":1e6}}").as_bytes(),
            ),
            400,
            "invalid_value",
            Some("temperature"),
        ),
        (
            "unknown service tier",
            post(
                "/v1/chat/completions",
                format!("{ok},\"service_tier\":\"gold\"}}").as_bytes(),
            ),
            400,
            "invalid_value",
            Some("service_tier"),
        ),
        (
            "huge n",
            post(
                "/v1/chat/completions",
                format!("{ok},\"n\":100000}}").as_bytes(),
            ),
            400,
            "invalid_value",
            Some("n"),
        ),
        (
            "unknown model",
            post(
                "/v1/chat/completions",
                br#"{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"#,
            ),
            404,
            "model_not_found",
            Some("model"),
        ),
        (
            "body over the limit",
            post("/v1/chat/completions", huge.as_bytes()),
            413,
            "payload_too_large",
            None,
        ),
        (
            "max_tokens beyond the context",
            post(
                "/v1/chat/completions",
                format!("{ok},\"max_tokens\":4090}}").as_bytes(),
            ),
            400,
            "context_length_exceeded",
            Some("messages"),
        ),
        (
            "absurd max_tokens",
            post(
                "/v1/chat/completions",
                format!("{ok},\"max_tokens\":4000000000}}").as_bytes(),
            ),
            400,
            "context_length_exceeded",
            Some("messages"),
        ),
        (
            "invalid UTF-8",
            post(
                "/v1/chat/completions",
                b"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}",
            ),
            400,
            "invalid_encoding",
            None,
        ),
        (
            "deep nesting",
            post("/v1/chat/completions", deep.as_bytes()),
            400,
            "invalid_json",
            None,
        ),
        (
            "chat on a model without a template",
            post(
                "/v1/chat/completions",
                br#"{"model":"tiny-base","messages":[{"role":"user","content":"hi"}]}"#,
            ),
            400,
            "model_not_chat_capable",
            Some("model"),
        ),
        (
            "token id outside the vocabulary",
            post(
                "/v1/completions",
                br#"{"model":"tiny-base","prompt":[1,2,99999999]}"#,
            ),
            400,
            "invalid_value",
            Some("prompt"),
        ),
        (
            "100k-token prompt",
            post("/v1/chat/completions", long_prompt.as_bytes()),
            400,
            "context_length_exceeded",
            Some("messages"),
        ),
        (
            "headers over the limit",
            big_headers,
            431,
            "headers_too_large",
            None,
        ),
        (
            "NaN is not JSON",
            post(
                "/v1/chat/completions",
                format!("{ok},\"temperature\":NaN}}").as_bytes(),
            ),
            400,
            "invalid_json",
            None,
        ),
        (
            "raw control character in a string",
            post(
                "/v1/chat/completions",
                b"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"a\x01b\"}]}",
            ),
            400,
            "invalid_json",
            None,
        ),
        (
            "negative temperature",
            post(
                "/v1/chat/completions",
                format!("{ok},\"temperature\":-1}}").as_bytes(),
            ),
            400,
            "invalid_value",
            Some("temperature"),
        ),
        (
            "wrong method",
            b"GET /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
            405,
            "method_not_allowed",
            None,
        ),
        (
            "unknown path",
            b"GET /v1/nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
            404,
            "unknown_url",
            None,
        ),
    ];
    for (name, request, status, code, param) in cases {
        let (got, body) = raw(&server, &request);
        assert_eq!(got, status, "{name}: {body}");
        let err = &body["error"];
        assert_eq!(err["code"], code, "{name}: {body}");
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {body}"
        );
        assert!(err["type"].is_string(), "{name}: {body}");
        assert_eq!(err["param"].as_str(), param, "{name}: {body}");
    }
    // The server is still healthy and still answers.
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat_body(json!({})))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn client_disconnect_mid_stream_stops_generation() {
    let server = Server::start(&tiny_config(""));
    let addr = server.base.trim_start_matches("http://").to_string();
    let body = serde_json::to_vec(&chat_body(json!({"max_tokens": 4000, "stream": true}))).unwrap();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(&post("/v1/chat/completions", &body)).unwrap();
    // Read until some content chunks have arrived, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&seen)
        .matches("\"content\"")
        .count()
        < 4
    {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let generated = "floodgate_engine_generated_tokens_total{model=\"tiny\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cancelled = server.metric("floodgate_engine_sequences_cancelled_total{model=\"tiny\"}");
        let running = server.metric("floodgate_engine_running_sequences{model=\"tiny\"}");
        if cancelled >= 1.0 && running == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "generation was not cancelled");
        std::thread::sleep(Duration::from_millis(20));
    }
    let after_cancel = server.metric(generated);
    assert!(
        after_cancel < 4000.0,
        "the whole completion was generated: {after_cancel}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.metric(generated),
        after_cancel,
        "tokens kept coming after cancel"
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let mut server = Server::start(&tiny_config(""));
    let url = server.url("/v1/chat/completions");
    let in_flight = std::thread::spawn(move || {
        client()
            .post(url)
            .json(&chat_body(json!({"max_tokens": 1500})))
            .send()
            .map(|r| (r.status().as_u16(), r.json::<Value>().ok()))
    });
    // Wait until the request is being generated.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric("floodgate_engine_running_sequences{model=\"tiny\"}") < 1.0 {
        assert!(Instant::now() < deadline, "request never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.terminate();
    let (status, body) = in_flight.join().unwrap().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.unwrap()["usage"]["completion_tokens"], 1500);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(code) = server.child.try_wait().unwrap() {
            assert_eq!(code.code(), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("shutting down")));
}

#[test]
fn json_logs_carry_the_request_id() {
    let server = Server::start_with_args(&tiny_config(""), &["--log-format", "json"]);
    client()
        .post(server.url("/v1/chat/completions"))
        .header("x-request-id", "trace-json-1")
        .json(&chat_body(json!({"model": "nope"})))
        .send()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let logs = server.logs.lock().unwrap();
    let parsed: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !parsed.is_empty() && parsed.len() == logs.len(),
        "non-JSON log lines: {logs:?}"
    );
    assert!(
        parsed
            .iter()
            .any(|v| v.to_string().contains("trace-json-1")),
        "no log line carries the request id: {logs:?}"
    );
}

#[test]
fn validate_config_reports_every_error_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"nowhere\"\nbogus = 1\n[limits]\nmax_body_bytes = \"big\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["serve", "--validate-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["server.listen", "server.bogus", "limits.max_body_bytes"] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    let good = dir.path().join("good.toml");
    std::fs::write(&good, tiny_config("")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["serve", "--validate-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_quantized_variant_is_served_from_one_config_line() {
    let config = format!(
        "[[model]]\nname = \"tiny-q8\"\npath = \"{}\"\nprecision = \"q8_0\"\nthreads = 1\n",
        common::tiny_chat_model().display()
    );
    let server = Server::start(&config);
    let v: Value = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat_body(json!({"model": "tiny-q8"})))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 12, "{v}");
    let home = server.home();
    let variants: Vec<_> = std::fs::read_dir(home.join("variants"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    assert_eq!(variants.len(), 1, "{variants:?}");
    let converted = std::fs::metadata(&variants[0]).unwrap().len();
    let source = std::fs::metadata(common::tiny_chat_model()).unwrap().len();
    assert!(
        converted < source / 2,
        "q8_0 {converted} bytes vs f32 {source}"
    );
}

#[test]
fn a_body_that_trickles_in_too_slowly_gets_408() {
    let server = Server::start(&tiny_config("").replace(
        "max_body_bytes = 65536",
        "max_body_bytes = 65536\nbody_read_timeout_seconds = 1",
    ));
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":").unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
}
