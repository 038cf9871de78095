//! Drift end to end, against the real binary and a tiny model: a reference profile built
//! with `floodgate drift profile --from`, then live traffic through the gateway. Windows
//! drawn from the reference raise nothing; French, code and much longer prompts each
//! raise drift within one window, with the metric, the `drift.detected` admin event, the
//! "retrain suggested" record and the webhook call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[path = "../../floodgate-drift/tests/traffic/mod.rs"]
mod traffic;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, read_request, tiny_config, Server};
use serde_json::{json, Value};
use traffic::{Population, Traffic};

const WINDOW: usize = 40;

/// A webhook receiver: every JSON body POSTed to it.
fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if let Some((_, body)) = read_request(&stream) {
                keep.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                use std::io::Write as _;
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
            }
        }
    });
    (url, got)
}

fn body(text: &str) -> Value {
    json!({"model": "tiny", "max_tokens": 1, "messages": [{"role": "user", "content": text}]})
}

fn send(server: &Server, key: &str, traffic: &mut Traffic, population: Population, n: usize) {
    let http = client();
    for _ in 0..n {
        let (text, _) = traffic.prompt_text(population);
        let r = http
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body(&text))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    }
}

fn drift(server: &Server, key: &str) -> Value {
    client()
        .get(server.url("/admin/drift"))
        .bearer_auth(key)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Waits until the key `tiny` has `windows` tested windows; returns its entry.
fn windows(server: &Server, key: &str, windows: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = drift(server, key);
        let entry = d["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == "tiny")
            .cloned();
        if let Some(e) = entry.filter(|e| e["windows"].as_i64() >= Some(windows)) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "window {windows} never tested: {d:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn shifted_traffic_raises_drift_within_a_window_and_reference_traffic_does_not() {
    let (hook, hooks) = webhook();
    let config = tiny_config(&format!(
        r#"
[auth]
required = true

[drift]
window = {WINDOW}
bootstrap_windows = 400
max_samples_per_second = 100000
profile_refresh_seconds = 1
webhook_url = "{hook}"
"#
    ));
    let server = Server::start(&config);
    let (admin, _) = server.create_key(&["--scopes", "admin", "--rpm", "100000"]);
    let (user, _) = server.create_key(&["--scopes", "inference", "--rpm", "100000"]);

    // The reference: 600 English prompts as request bodies.
    let mut reference = Traffic::new(7);
    let file = server.home().join("reference.jsonl");
    let lines: Vec<String> = (0..600)
        .map(|_| body(&reference.prompt_text(Population::English).0).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = server.cli(&[
        "drift",
        "profile",
        "--key",
        "tiny",
        "--from",
        file.to_str().unwrap(),
    ]);
    assert!(out.contains("profile `tiny`: 600 samples"), "{out}");
    let status = drift(&server, &admin);
    assert_eq!(
        status["data"][0]["status"], "waiting for a full window",
        "{status:#}"
    );

    // Two windows of fresh English traffic (other seeds than the reference): no alarm.
    let mut live = Traffic::new(1234);
    send(&server, &user, &mut live, Population::English, 2 * WINDOW);
    let entry = windows(&server, &admin, 2);
    assert_eq!(entry["alarms"], 0, "{entry:#}");
    assert_eq!(entry["status"], "ok");

    // Each shift raises drift within its window, naming the features that moved.
    let mut expected_windows = 2;
    for (population, moved) in [
        (Population::French, "language"),
        (Population::Code, "kind"),
        (Population::Long, "prompt_chars"),
    ] {
        send(&server, &user, &mut live, population, WINDOW);
        expected_windows += 1;
        let entry = windows(&server, &admin, expected_windows);
        assert_eq!(entry["status"], "drift", "{population:?}: {entry:#}");
        let drifted: Vec<&str> = entry["latest"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["drifted"] == true)
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert!(drifted.contains(&moved), "{population:?}: {drifted:?}");
        println!("{population:?}: drifted {drifted:?}");
    }
    let status = drift(&server, &admin);
    let suggestions = status["retrain_suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 3, "{status:#}");
    assert!(suggestions
        .iter()
        .all(|s| s["key"] == "tiny" && !s["features"].as_array().unwrap().is_empty()));
    assert_eq!(server.metric("floodgate_drift_detected{key=\"tiny\"}"), 1.0);
    assert_eq!(
        server.metric("floodgate_drift_windows_total{key=\"tiny\",result=\"drift\"}"),
        3.0
    );

    // The webhook was called three times; the admin event is in the store.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hooks.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "webhook calls: {:?}",
            hooks.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls = hooks.lock().unwrap().clone();
    assert!(calls.iter().all(|c| c["type"] == "drift.detected"
        && c["key"] == "tiny"
        && c["retrain_suggested"] == true));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events: Value = client()
            .get(server.url("/admin/events"))
            .bearer_auth(&admin)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let n = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["action"]["action"] == "drift.detected" || e["action"] == "drift.detected"
            })
            .count();
        if n == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drift.detected admin events: {events:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // An inference key may not read drift.
    let r = client()
        .get(server.url("/admin/drift"))
        .bearer_auth(&user)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
}
