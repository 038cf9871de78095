//! Routes and cascades end to end on tiny random-weight models: each policy, the
//! threshold edges, streaming with a buffered post check, transparency headers, decision
//! records by request id (owner or auditor only), cost headers and budgets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{client, sse_data, tiny_chat_model, Server};
use floodgate_embed::classifier::{train, ThresholdRule};
use floodgate_embed::TrainOptions;
use floodgate_gateway::cascade::router::{
    RouterFile, POST_LABEL, PRE_LABEL, PROMPT_FEATURES, PROMPT_FEATURE_PREFIX,
    ROUTER_FORMAT_VERSION,
};
use floodgate_gateway::cascade::signals::FEATURE_NAMES;
use serde_json::{json, Value};

/// A logistic head with the given weights, built through the real trainer so that every
/// field is what a trained file holds.
fn head(
    label: &str,
    negative: &str,
    names: Vec<String>,
    weights: Vec<f32>,
    bias: f32,
) -> floodgate_embed::Classifier {
    let dim = names.len();
    let examples: Vec<(Vec<f32>, String)> = (0..8)
        .map(|i| {
            let v = vec![i as f32; dim];
            let l = if i % 2 == 0 { label } else { negative };
            (v, l.to_string())
        })
        .collect();
    let mut model = train(
        &examples,
        &TrainOptions {
            negative_labels: vec![negative.into()],
            feature_names: names,
            threshold: ThresholdRule::Fixed { threshold: 0.5 },
            ..TrainOptions::default()
        },
    )
    .unwrap();
    model.heads[0].weights = weights;
    model.heads[0].bias = bias;
    model
}

/// A router whose pre-router says "small tier wrong" for long prompts (weight on the
/// prompt's log length) and whose post scorer always gives P(right) = sigmoid(`post_bias`).
fn write_router(path: &Path, post_bias: f32) {
    let names: Vec<String> = PROMPT_FEATURES
        .iter()
        .map(|n| format!("{PROMPT_FEATURE_PREFIX}{n}"))
        .collect();
    let mut w = vec![0.0; names.len()];
    w[0] = 2.0; // log_chars: "hi" → 0.02, a 300-character prompt → 0.99
    let pre = head(PRE_LABEL, "no_gain", names, w, -6.0);
    let post_names: Vec<String> = FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
    let post = head(
        POST_LABEL,
        "small_wrong",
        post_names.clone(),
        vec![0.0; post_names.len()],
        post_bias,
    );
    let file = RouterFile {
        format_version: ROUTER_FORMAT_VERSION,
        route: "r".into(),
        tiers: vec!["small".into(), "large".into()],
        pre: Some(pre),
        post: Some(post),
        calibration: None,
    };
    file.save(path).unwrap();
}

fn config(dir: &Path, extra: &str) -> String {
    let keep = dir.join("keep.json");
    let escalate = dir.join("escalate.json");
    write_router(&keep, 5.0);
    write_router(&escalate, -5.0);
    let model = |name: &str, price: f64| {
        format!(
            "[[model]]\nname = \"{name}\"\npath = \"{}\"\nkv_cache_tokens = 4096\ncontext_length = 2048\nmax_batch_size = 4\nthreads = 1\nusd_per_1k_prompt_tokens = {price}\nusd_per_1k_completion_tokens = {price}\nusd_per_compute_hour = 1.0\n",
            tiny_chat_model().display()
        )
    };
    format!(
        r#"
{small}
[model.card]
description = "A tiny random-weight chat model"
intended_use = "tests"
training_data = ["none: random weights"]
limitations = "says nothing useful"
license = "Apache-2.0"
risk_category = "minimal"
{large}
[[route]]
name = "keep"
tiers = ["small", "large"]
policy = "pre+post"
pre_threshold = 0.5
post_threshold = 0.5
router = "{keep}"
tenant_tiers = {{ vip = 1 }}

[[route]]
name = "escalate"
tiers = ["small", "large"]
policy = "post"
post_threshold = 0.5
router = "{escalate}"

[[route]]
name = "live"
tiers = ["small", "large"]
policy = "post"
post_threshold = 0.5
router = "{escalate}"
stream_post = "skip"

[[route]]
name = "ab"
tiers = ["small", "large"]
policy = "split"
weights = [50, 50]

[[route]]
name = "uncalibrated"
tiers = ["small", "large"]
router = "{missing}"
{extra}
"#,
        small = model("small", 0.001),
        large = model("large", 0.01),
        keep = keep.display(),
        escalate = escalate.display(),
        missing = dir.join("missing.json").display(),
    )
}

fn ask(
    server: &Server,
    key: Option<&str>,
    model: &str,
    content: &str,
    id: &str,
) -> reqwest::blocking::Response {
    let mut r = client()
        .post(server.url("/v1/chat/completions"))
        .header("x-request-id", id)
        .json(&json!({
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 6,
            "temperature": 0,
        }));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().unwrap()
}

fn header(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Decision records are written just after the response; poll briefly.
fn decision(server: &Server, key: Option<&str>, id: &str) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut r = client().get(server.url(&format!("/v1/requests/{id}/decision")));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap();
        if status != 404 || Instant::now() > deadline {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn each_policy_routes_and_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path(), ""));

    // The routes are listed like models.
    let models: Value = client()
        .get(server.url("/v1/models"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for want in [
        "small",
        "large",
        "keep",
        "escalate",
        "live",
        "ab",
        "uncalibrated",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    let card = |id: &str| {
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()["card"]
            .clone()
    };
    assert_eq!(card("small")["license"], "Apache-2.0");
    assert_eq!(card("small")["risk_category"], "minimal");
    assert_eq!(card("small")["training_data"][0], "none: random weights");
    assert!(
        card("large").is_null(),
        "no card configured, not a catalog model"
    );
    assert!(card("keep")["description"]
        .as_str()
        .unwrap()
        .contains("small -> large"));

    // pre+post, short prompt: the pre-router keeps it small, the post check keeps it.
    let r = ask(&server, None, "keep", "hi", "req-short");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-floodgate-route"), "keep");
    assert_eq!(header(&r, "x-floodgate-tier"), "small");
    assert_eq!(header(&r, "x-floodgate-escalated"), "false");
    let cost: f64 = header(&r, "x-floodgate-cost-usd").parse().unwrap();
    let body: Value = r.json().unwrap();
    assert_eq!(body["model"], "small");
    // The post check asked for log-probabilities; the client did not, so none leave.
    assert!(body["choices"][0]["logprobs"].is_null(), "{body}");
    let (status, d) = decision(&server, None, "req-short");
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["route"]["route"], "keep");
    assert_eq!(d["route"]["escalated"], false);
    assert!(d["route"]["pre_score"].as_f64().unwrap() < 0.5, "{d}");
    assert!(d["route"]["post_score"].as_f64().unwrap() >= 0.5, "{d}");
    assert!(
        d["route"]["signals"]["tokens"].as_u64().unwrap() >= 1,
        "{d}"
    );
    let reasons = d["route"]["reasons"].to_string();
    assert!(
        reasons.contains("pre-router") && reasons.contains("kept"),
        "{reasons}"
    );
    assert_eq!(d["runs"].as_array().unwrap().len(), 1);
    assert!(
        (d["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
        "{d} vs {cost}"
    );
    assert!(cost > 0.0);

    // pre+post, long prompt: the pre-router sends it to the large tier at once.
    let long = "tell me about the history of the region and its rivers ".repeat(6);
    let r = ask(&server, None, "keep", &long, "req-long");
    assert_eq!(header(&r, "x-floodgate-tier"), "large");
    assert_eq!(header(&r, "x-floodgate-escalated"), "true");
    let (_, d) = decision(&server, None, "req-long");
    assert!(d["route"]["pre_score"].as_f64().unwrap() >= 0.5, "{d}");
    assert!(
        d["route"]["post_score"].is_null(),
        "no post check after a pre escalation"
    );
    assert_eq!(d["runs"].as_array().unwrap().len(), 1);

    // post: the small answer is judged wrong and replaced; both runs are paid for.
    let r = ask(&server, None, "escalate", "hi", "req-post");
    assert_eq!(header(&r, "x-floodgate-tier"), "large");
    assert_eq!(header(&r, "x-floodgate-escalated"), "true");
    let cost: f64 = header(&r, "x-floodgate-cost-usd").parse().unwrap();
    assert_eq!(r.json::<Value>().unwrap()["model"], "large");
    let (_, d) = decision(&server, None, "req-post");
    let runs = d["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{d}");
    assert_eq!(
        (runs[0]["model"].as_str(), runs[0]["served"].as_bool()),
        (Some("small"), Some(false))
    );
    assert_eq!(
        (runs[1]["model"].as_str(), runs[1]["served"].as_bool()),
        (Some("large"), Some(true))
    );
    let sum = runs[0]["cost_usd"].as_f64().unwrap() + runs[1]["cost_usd"].as_f64().unwrap();
    assert!((sum - cost).abs() < 1e-9);
    assert!(d["route"]["reasons"].to_string().contains("escalated"));

    // A streamed request under a buffered post check: the client only ever sees the
    // large tier's answer.
    let stream_body = json!({
        "model": "escalate",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 6, "temperature": 0, "stream": true,
    });
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .json(&stream_body)
        .send()
        .unwrap();
    assert_eq!(header(&r, "x-floodgate-tier"), "large");
    let text = r.text().unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    for chunk in &data[..data.len() - 1] {
        let v: Value = serde_json::from_str(chunk).unwrap();
        assert_eq!(v["model"], "large", "{chunk}");
    }
    // stream_post = skip: the small tier streams live, no post check.
    let mut live = stream_body.clone();
    live["model"] = json!("live");
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .json(&live)
        .send()
        .unwrap();
    assert_eq!(header(&r, "x-floodgate-tier"), "small");
    assert_eq!(header(&r, "x-floodgate-escalated"), "false");

    // A pinned tenant (anonymous callers are tenant "default"; not pinned) and an
    // uncalibrated route, which serves on its last tier and says why.
    let r = ask(&server, None, "uncalibrated", "hi", "req-uncal");
    assert_eq!(header(&r, "x-floodgate-tier"), "large");
    let (_, d) = decision(&server, None, "req-uncal");
    assert!(
        d["route"]["reasons"].to_string().contains("not calibrated"),
        "{d}"
    );

    // A plain model request has a record too, without a route part.
    let r = ask(&server, None, "small", "hi", "req-plain");
    assert!(header(&r, "x-floodgate-route").is_empty());
    let (_, d) = decision(&server, None, "req-plain");
    assert!(d["route"].is_null());
    assert_eq!(d["served_by"], "small");

    // A sticky A/B split: one user always gets the same variant, and across users both
    // variants serve; the decision names the variant and it is not an escalation.
    let ab = |user: &str, id: &str| {
        let r = client()
            .post(server.url("/v1/chat/completions"))
            .header("x-request-id", id)
            .json(&json!({
                "model": "ab",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 2,
                "user": user,
            }))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-floodgate-escalated"), "false");
        header(&r, "x-floodgate-tier")
    };
    let first = ab("alice", "ab-alice-0");
    for i in 1..5 {
        assert_eq!(ab("alice", &format!("ab-alice-{i}")), first);
    }
    let tiers: std::collections::BTreeSet<String> = (0..16)
        .map(|i| ab(&format!("user-{i}"), &format!("ab-u{i}")))
        .collect();
    assert_eq!(tiers.len(), 2, "16 users all on one variant: {tiers:?}");
    let (_, d) = decision(&server, None, "ab-alice-0");
    assert!(
        d["route"]["reasons"].to_string().contains("split: variant"),
        "{d}"
    );
    assert_eq!(d["route"]["escalated"], false);
    assert!(d["latency_ms"].as_f64().unwrap() > 0.0, "{d}");
    // Feedback on one of them shows up as that variant's quality in the A/B report.
    let r = client()
        .post(server.url("/v1/feedback"))
        .json(&json!({"request_id": "ab-alice-0", "rating": 1}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    // Records are written off the request path, each by its own task: wait for all 21.
    for id in (0..5)
        .map(|i| format!("ab-alice-{i}"))
        .chain((0..16).map(|i| format!("ab-u{i}")))
    {
        assert_eq!(decision(&server, None, &id).0, 200, "{id}");
    }
    let report = server.cli(&["ab", "report", "--route", "ab"]);
    assert!(report.contains("21 requests"), "{report}");
    let alice_row = report
        .lines()
        .find(|l| l.starts_with(&format!("| {first} |")))
        .unwrap_or_else(|| panic!("{report}"));
    let cells: Vec<&str> = alice_row.split('|').map(str::trim).collect();
    assert_eq!(cells[7], "1", "one rated request: {alice_row}");
    assert!(cells[8].starts_with("1.00"), "{alice_row}");

    // Cascade metrics.
    assert!(
        server.metric("floodgate_cascade_escalations_total{route=\"keep\",stage=\"pre\"}") >= 1.0
    );
    assert!(
        server.metric("floodgate_cascade_escalations_total{route=\"escalate\",stage=\"post\"}")
            >= 2.0
    );
}

#[test]
fn decisions_are_for_their_owner_pins_apply_and_budgets_stop_spending() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path(), "[auth]\nrequired = true\n"));
    let (alice, _) = server.create_key(&["--scopes", "inference", "--tenant", "vip"]);
    let (bob, _) = server.create_key(&["--scopes", "inference"]);
    let (auditor, _) = server.create_key(&["--scopes", "auditor"]);
    let (thrifty, _) = server.create_key(&["--scopes", "inference", "--budget-usd", "0.0000001"]);

    // Alice's tenant is pinned to the large tier: no checks run.
    let r = ask(&server, Some(&alice), "keep", "hi", "alice-1");
    assert_eq!(header(&r, "x-floodgate-tier"), "large");
    let (status, d) = decision(&server, Some(&alice), "alice-1");
    assert_eq!(status, 200);
    assert!(
        d["route"]["reasons"].to_string().contains("tenant `vip`"),
        "{d}"
    );
    // Bob cannot read it (it does not exist for him); an auditor can.
    let (status, body) = decision(&server, Some(&bob), "alice-1");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(decision(&server, Some(&auditor), "alice-1").0, 200);
    // Bob reusing Alice's request id does not take the record over.
    let _ = ask(&server, Some(&bob), "keep", "hi", "alice-1");
    std::thread::sleep(Duration::from_millis(300));
    let (_, d) = decision(&server, Some(&alice), "alice-1");
    assert!(d["route"]["reasons"].to_string().contains("tenant `vip`"));

    // Budget: the first request fits and reports what is left; once its cost is
    // recorded, the key is refused.
    let r = ask(&server, Some(&thrifty), "small", "hi", "thrifty-1");
    assert_eq!(r.status(), 200);
    let remaining: f64 = header(&r, "x-floodgate-budget-remaining").parse().unwrap();
    assert_eq!(remaining, 0.0, "one request costs more than the budget");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let r = ask(&server, Some(&thrifty), "small", "hi", "thrifty-2");
        if r.status() == 429 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_none());
    let body: Value = refused.json().unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded");
    // Other keys are unaffected.
    assert_eq!(
        ask(&server, Some(&bob), "small", "hi", "bob-2").status(),
        200
    );

    // The usage table feeds `floodgate cost project`. Usage reaches the store through
    // the event sink (`events.sink_linger_ms` after the answer): poll briefly.
    let project = || {
        server.cli(&[
            "cost",
            "project",
            "--users",
            "1000",
            "--queries-per-user-day",
            "2",
        ])
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = project();
    while !(out.contains("| keep |") && out.contains("| small |")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        out = project();
    }
    assert!(out.contains("60000 requests/month"), "{out}");
    assert!(
        out.contains("| keep |") && out.contains("| small |"),
        "{out}"
    );
}

/// Weights change at runtime through the admin API and through an edited config file
/// (SIGHUP), while requests keep arriving: none fails, and traffic follows.
#[test]
fn routes_change_under_load_without_dropping_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let base = config(
        dir.path(),
        "[auth]\nrequired = true\n[server]\nreload_poll_seconds = 0\n",
    );
    let with_weights = |w: &str| base.replace("weights = [50, 50]", &format!("weights = {w}"));
    let server = Server::start(&with_weights("[100, 0]"));
    // Enough request rate that the load is never throttled (the default is 600/min
    // with a minute's burst, which a tight loop on tiny models can exceed).
    let (user, _) = server.create_key(&["--scopes", "inference", "--rpm", "100000"]);
    let (admin, _) = server.create_key(&["--scopes", "admin"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = server.url("/v1/chat/completions");
    let load: Vec<_> = (0..3)
        .map(|t| {
            let (stop, url, user) = (stop.clone(), url.clone(), user.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = client()
                        .post(&url)
                        .bearer_auth(&user)
                        .json(&json!({
                            "model": "ab",
                            "messages": [{"role": "user", "content": "hi"}],
                            "max_tokens": 3,
                            "user": format!("u{t}-{i}"),
                        }))
                        .send()
                        .unwrap();
                    let status = r.status().as_u16();
                    let tier = header(&r, "x-floodgate-tier");
                    seen.push((status, tier));
                    i += 1;
                    // Steady load, well inside the per-IP request limit.
                    std::thread::sleep(Duration::from_millis(20));
                }
                seen
            })
        })
        .collect();
    let tier_now = || {
        let r = ask(&server, Some(&user), "ab", "hi", "probe");
        assert_eq!(r.status(), 200);
        header(&r, "x-floodgate-tier")
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tier_now(), "small");

    // The admin API: only admins, validated, applied at once.
    let patch = |key: &str, body: Value| {
        client()
            .patch(server.url("/admin/routes/ab"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .unwrap()
    };
    assert_eq!(patch(&user, json!({"weights": [0, 100]})).status(), 403);
    let bad = patch(&admin, json!({"weights": [1, 2, 3]}));
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("one weight per tier"));
    assert_eq!(patch(&admin, json!({"weights": [0, 100]})).status(), 200);
    assert_eq!(tier_now(), "large");
    std::thread::sleep(Duration::from_millis(500));

    // The file, on SIGHUP.
    std::fs::write(server.config_path(), with_weights("[100, 0]")).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while tier_now() != "small" {
        assert!(Instant::now() < deadline, "the reload never took effect");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken file is refused; the running routes stay.
    std::fs::write(server.config_path(), "[[route]\nbroken").unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tier_now(), "small");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen: Vec<(u16, String)> = load.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert!(seen.len() > 10, "too little load: {}", seen.len());
    assert!(seen.iter().all(|(s, _)| *s == 200), "{seen:?}");
    let tiers: std::collections::BTreeSet<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(tiers.len(), 2, "traffic followed the changes: {tiers:?}");
    let listed: Value = client()
        .get(server.url("/admin/routes"))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ab = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["config"]["name"] == "ab")
        .unwrap();
    assert_eq!(ab["config"]["weights"], json!([100.0, 0.0]));
}

/// A client that hangs up mid-stream is charged for what was generated until then:
/// leaving just before the end must not make an answer free.
#[test]
fn a_client_that_leaves_mid_stream_pays_for_what_was_generated() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path(), "[auth]\nrequired = true\n"));
    let (key, _) = server.create_key(&["--scopes", "inference"]);
    let body = serde_json::to_vec(&json!({
        "model": "small",
        "messages": [{"role": "user", "content": "tell me everything"}],
        "max_tokens": 2000,
        "ignore_eos": true,
        "stream": true,
    }))
    .unwrap();
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nauthorization: Bearer {key}\r\nx-request-id: leaver-1\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&seen)
        .matches("\"content\"")
        .count()
        < 8
    {
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&seen)));
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = loop {
        let (status, d) = decision(&server, Some(&key), "leaver-1");
        if status == 200 && d["status"] == "cancelled" {
            break d;
        }
        assert!(Instant::now() < deadline, "{status} {d}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = &d["runs"][0];
    assert_eq!(run["served"], true, "{d}");
    assert_eq!(run["model"], "small", "{d}");
    let generated = run["completion_tokens"].as_u64().unwrap();
    assert!((8..2000).contains(&generated), "{d}");
    assert!(run["prompt_tokens"].as_u64().unwrap() > 0, "{d}");
    assert!(d["cost_usd"].as_f64().unwrap() > 0.0, "{d}");
}
