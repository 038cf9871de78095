//! The model registry end to end: a model with versions and variants (each its own
//! engine over a tiny random-weight model), weighted sticky choice, the admin switches,
//! and a config-file reload that adds, changes and removes variants while requests keep
//! arriving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, sse_data, tiny_chat_model, Server};
use serde_json::{json, Value};

/// `chat` with version 1 (variants `a` weight 3, `b` weight 1) and version 2 (one
/// variant, weight 0: reachable only by name), plus `extra` appended.
fn config(versions_extra: &str, extra: &str) -> String {
    format!(
        r#"
[auth]
required = true
[server]
reload_poll_seconds = 0
shutdown_grace_seconds = 30
[ratelimit]
ip_requests_per_minute = 100000

[[model]]
name = "chat"
path = "{path}"
kv_cache_tokens = 2048
context_length = 2048
max_batch_size = 4
threads = 1
[model.card]
description = "A tiny test chat model"
license = "Apache-2.0"

[[model.versions]]
version = "1"
[[model.versions.variants]]
variant = "a"
weight = 3
[[model.versions.variants]]
variant = "b"
weight = 1
usd_per_1k_completion_tokens = 1.0
{versions_extra}
{extra}
"#,
        path = tiny_chat_model().display()
    )
}

const VERSION_2: &str = "[[model.versions]]\nversion = \"2\"\nweight = 0\n";

fn chat(server: &Server, key: &str, model: &str, user: &str) -> (u16, String, Value) {
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": model,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 3,
            "user": user,
        }))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let served = served_by(&r);
    (status, served, r.json().unwrap_or(Value::Null))
}

/// The variant that answered (`x-floodgate-model`).
fn served_by(r: &reqwest::blocking::Response) -> String {
    r.headers()
        .get("x-floodgate-model")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// `GET /admin/models`.
fn admin_models(server: &Server, admin: &str) -> Value {
    client()
        .get(server.url("/admin/models"))
        .bearer_auth(admin)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn hup(server: &Server) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn listed(server: &Server, key: &str) -> BTreeMap<String, Value> {
    let v: Value = client()
        .get(server.url("/v1/models"))
        .bearer_auth(key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_string(), m.clone()))
        .collect()
}

#[test]
fn versions_and_variants_are_chosen_by_weight_stickily_and_switch_at_runtime() {
    let server = Server::start(&config(VERSION_2, ""));
    let (user, _) = server.create_key(&["--scopes", "inference", "--rpm", "100000"]);
    let (admin, _) = server.create_key(&["--scopes", "admin"]);

    // /v1/models: the model, each version and each variant, with the card.
    let models = listed(&server, &user);
    for id in ["chat", "chat@1", "chat@1:a", "chat@1:b", "chat@2"] {
        assert!(models.contains_key(id), "{id} missing from {models:?}");
    }
    assert_eq!(models["chat"]["kind"], "model");
    assert_eq!(
        models["chat"]["card"]["description"],
        "A tiny test chat model"
    );
    assert_eq!(
        models["chat"]["variants"],
        json!(["chat@1:a", "chat@1:b", "chat@2"])
    );
    assert_eq!(models["chat@1"]["kind"], "version");
    assert_eq!(
        models["chat@1"]["variants"],
        json!(["chat@1:a", "chat@1:b"])
    );
    assert_eq!(models["chat@1:b"]["kind"], "variant");

    // `chat` goes to version 1's variants by weight (3:1), never to weight-0 version 2;
    // a user stays on one variant.
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for u in 0..40 {
        let who = format!("user-{u}");
        let (status, served, body) = chat(&server, &user, "chat", &who);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model"], served.as_str());
        assert_eq!(chat(&server, &user, "chat", &who).1, served, "sticky");
        *counts.entry(served).or_default() += 1;
    }
    assert_eq!(
        counts.keys().map(String::as_str).collect::<Vec<_>>(),
        ["chat@1:a", "chat@1:b"],
        "{counts:?}"
    );
    assert!(counts["chat@1:a"] > counts["chat@1:b"], "{counts:?}");
    assert_eq!(chat(&server, &user, "chat@2", "x").1, "chat@2");
    assert_eq!(chat(&server, &user, "chat@1:b", "x").1, "chat@1:b");
    let (status, _, body) = chat(&server, &user, "chat@9", "x");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");

    // The admin API: listed with switches and state; only for admins; validated.
    let variants = admin_models(&server, &admin);
    let a = variants["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "chat@1:a")
        .unwrap();
    assert_eq!(
        (
            &a["model"],
            &a["version"],
            &a["variant"],
            &a["weight"],
            &a["enabled"],
            &a["state"]
        ),
        (
            &json!("chat"),
            &json!("1"),
            &json!("a"),
            &json!(3),
            &json!(true),
            &json!("ready")
        )
    );
    let patch = |key: &str, id: &str, body: Value| {
        client()
            .patch(server.url(&format!("/admin/models/{id}")))
            .bearer_auth(key)
            .json(&body)
            .send()
            .unwrap()
    };
    assert_eq!(
        patch(&user, "chat@1:a", json!({"enabled": false})).status(),
        403
    );
    assert_eq!(
        patch(&admin, "chat@7:a", json!({"enabled": false})).status(),
        404
    );
    assert_eq!(
        patch(&admin, "chat@1:a", json!({"weight": "lots"})).status(),
        400
    );
    assert_eq!(patch(&admin, "chat@1:a", json!({})).status(), 400);

    // Disable `a`: everyone on `chat` moves to `b`; `a` named directly is refused.
    let r = patch(&admin, "chat@1:a", json!({"enabled": false}));
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["enabled"], false);
    for u in 0..10 {
        assert_eq!(
            chat(&server, &user, "chat", &format!("user-{u}")).1,
            "chat@1:b"
        );
    }
    let (status, _, body) = chat(&server, &user, "chat@1:a", "x");
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("disabled"));
    assert!(!listed(&server, &user).contains_key("chat@1:a"));

    // Give version 2 all the weight: `chat` follows.
    assert_eq!(patch(&admin, "chat@2", json!({"weight": 10})).status(), 200);
    assert_eq!(
        patch(&admin, "chat@1:b", json!({"weight": 0})).status(),
        200
    );
    for u in 0..10 {
        assert_eq!(
            chat(&server, &user, "chat", &format!("user-{u}")).1,
            "chat@2"
        );
    }
    // `ab report` groups the model's requests by the variant that served them.
    let report = server.cli(&["ab", "report", "--model", "chat"]);
    for id in ["chat@1:a", "chat@1:b", "chat@2"] {
        assert!(report.contains(&format!("| {id} |")), "{report}");
    }
}

/// Streams `model` until stopped; returns (status, served variant, complete) for each.
fn stream_load(
    server: &Server,
    key: &str,
    model: &'static str,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(u16, String, bool)>> {
    let (url, key, stop) = (
        server.url("/v1/chat/completions"),
        key.to_string(),
        Arc::clone(stop),
    );
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let r = client()
                .post(&url)
                .bearer_auth(&key)
                .json(&json!({
                    "model": model,
                    "messages": [{"role": "user", "content": "tell me a story"}],
                    "max_tokens": 48,
                    "stream": true,
                    "user": format!("{model}-{i}"),
                }))
                .send()
                .unwrap();
            let status = r.status().as_u16();
            let served = served_by(&r);
            let body = r.text().unwrap_or_default();
            let complete = if status == 200 {
                let data = sse_data(&body);
                data.last().map(String::as_str) == Some("[DONE]")
                    && data.iter().any(|d| d.contains("\"finish_reason\":\""))
                    && !body.contains("\"error\"")
            } else {
                false
            };
            seen.push((status, served, complete));
            i += 1;
            std::thread::sleep(Duration::from_millis(15));
        }
        seen
    })
}

#[test]
fn a_config_reload_adds_changes_and_removes_variants_without_dropping_requests() {
    let server = Server::start(&config(VERSION_2, ""));
    let (user, _) = server.create_key(&["--scopes", "inference", "--rpm", "100000"]);
    let (admin, _) = server.create_key(&["--scopes", "admin"]);
    let stop = Arc::new(AtomicBool::new(false));
    let on_chat = stream_load(&server, &user, "chat", &stop);
    let on_v2 = stream_load(&server, &user, "chat@2", &stop);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        server.metric("floodgate_model_loaded{model=\"chat@2\"}"),
        1.0
    );

    // Version 2 goes, version 3 arrives, variant `a` changes what it loads
    // (max_batch_size) and `b`'s price changes (no reload needed).
    let version_3 = "[[model.versions]]\nversion = \"3\"\nweight = 0\n";
    // `a` loads with another batch size (a reload); `b` costs more (no reload).
    let edited = |versions: &str| {
        config(versions, "")
            .replace(
                "variant = \"a\"\nweight = 3",
                "variant = \"a\"\nweight = 3\nmax_batch_size = 2",
            )
            .replace(
                "usd_per_1k_completion_tokens = 1.0",
                "usd_per_1k_completion_tokens = 2.0",
            )
    };
    let changed = edited(version_3);
    assert_ne!(changed, config(version_3, ""));
    std::fs::write(server.config_path(), &changed).unwrap();
    hup(&server);

    // chat@3 turns servable once loaded; chat@2 is gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, served, _) = chat(&server, &user, "chat@3", "x");
        if status == 200 {
            assert_eq!(served, "chat@3");
            break;
        }
        assert!(
            matches!(status, 404 | 503),
            "chat@3 while loading: {status}"
        );
        assert!(Instant::now() < deadline, "chat@3 never loaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let variants = admin_models(&server, &admin);
        let ids: BTreeSet<String> = variants["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        let states: Vec<&str> = variants["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["state"].as_str().unwrap())
            .collect();
        if states.iter().all(|s| *s == "ready") {
            assert_eq!(
                ids.into_iter().collect::<Vec<_>>(),
                ["chat@1:a", "chat@1:b", "chat@3"]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reload never settled: {variants}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        server.metric("floodgate_model_loaded{model=\"chat@2\"}"),
        0.0
    );
    assert_eq!(
        server.metric("floodgate_model_loaded{model=\"chat@3\"}"),
        1.0
    );
    // A variant that cannot load is reported, but does not take the server out of
    // rotation (it was not there at start) and leaves the others serving.
    let later = tempfile::tempdir().unwrap();
    let later_path = later.path().join("later.gguf");
    let version_4 = format!(
        "{version_3}[[model.versions]]\nversion = \"4\"\npath = \"{}\"\nweight = 0\n",
        later_path.display()
    );
    let changed = edited(&version_4);
    std::fs::write(server.config_path(), &changed).unwrap();
    hup(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client().get(server.url("/readyz")).send().unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().unwrap();
        if body["models"]["chat@4"]["state"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _, body) = chat(&server, &user, "chat@4", "x");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed to load"),
        "{body}"
    );
    // Once its file is there, the next reload (even of an unchanged file) loads it.
    std::fs::copy(tiny_chat_model(), &later_path).unwrap();
    hup(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    while chat(&server, &user, "chat@4", "x").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "a failed variant was not retried"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    // A file that does not parse is refused and everything keeps serving.
    std::fs::write(server.config_path(), "[[model]\nbroken").unwrap();
    hup(&server);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(chat(&server, &user, "chat@3", "x").0, 200);
    stop.store(true, Ordering::Relaxed);

    let chat_seen = on_chat.join().unwrap();
    assert!(chat_seen.len() > 10, "too little load: {}", chat_seen.len());
    for (status, served, complete) in &chat_seen {
        assert_eq!(*status, 200, "{chat_seen:?}");
        assert!(*complete, "a stream on `chat` was cut: {chat_seen:?}");
        assert!(served.starts_with("chat@1:"), "{served}");
    }
    // Requests on the removed version: every one that started finished whole; after
    // the removal the name is unknown.
    let v2_seen = on_v2.join().unwrap();
    let before: Vec<_> = v2_seen.iter().take_while(|(s, _, _)| *s == 200).collect();
    assert!(!before.is_empty(), "{v2_seen:?}");
    assert!(before
        .iter()
        .all(|(_, served, complete)| *complete && served == "chat@2"));
    let after = &v2_seen[before.len()..];
    assert!(!after.is_empty(), "chat@2 was never removed: {v2_seen:?}");
    assert!(after.iter().all(|(s, _, _)| *s == 404), "{after:?}");
    // The log lines, without terminal colours.
    let logs: Vec<String> = server
        .logs
        .lock()
        .unwrap()
        .iter()
        .map(|l| {
            let mut plain = String::new();
            let mut chars = l.chars();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    for c in chars.by_ref() {
                        if c == 'm' {
                            break;
                        }
                    }
                } else {
                    plain.push(c);
                }
            }
            plain
        })
        .collect();
    let logged = |what: &str, model: &str| {
        logs.iter()
            .any(|l| l.contains(what) && l.contains(&format!("model={model}")))
    };
    assert!(
        logged("model changed; loading it again", "chat@1:a"),
        "{logs:?}"
    );
    assert!(logged("model settings updated", "chat@1:b"), "{logs:?}");
    assert!(logged("model added", "chat@3"), "{logs:?}");
    assert!(logged("model removed", "chat@2"), "{logs:?}");
    assert!(logs
        .iter()
        .any(|l| l.contains("configuration reload refused")));
}
