//! Tests with the real catalog models. They run when the models are in the model cache
//! (`floodgate models pull`; CI pulls them) and are reported as ignored, naming the
//! missing model, when they are not (`harness = false`: see `floodgate_test_support::needs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::{client, Server};
use floodgate_engine::{Engine, EngineConfig, Message};
use floodgate_models::ModelStore;
use floodgate_test_support::needs::{self, trial};
use serde_json::{json, Value};

fn main() -> ExitCode {
    needs::run(vec![
        trial(
            "smollm2_knows_the_capital_of_france_and_streams_the_same_text",
            needs::model("smollm2-135m"),
            smollm2_knows_the_capital_of_france_and_streams_the_same_text,
        ),
        trial(
            "smollm2_usage_matches_the_tokenizer",
            needs::model("smollm2-135m"),
            smollm2_usage_matches_the_tokenizer,
        ),
        trial(
            "qwen_coder_answers_chat",
            needs::model("qwen2.5-coder-1.5b"),
            qwen_coder_answers_chat,
        ),
        trial(
            "gemma_base_completes_text_and_refuses_chat",
            needs::model("gemma3-270m"),
            gemma_base_completes_text_and_refuses_chat,
        ),
        trial(
            "the_default_auto_route_cascades_the_real_pair",
            needs::models(&["smollm2-135m", "qwen2.5-coder-1.5b", "all-minilm-l6-v2"]),
            |_| the_default_auto_route_cascades_the_real_pair(),
        ),
    ])
}

fn server_for(name: &str, path: &Path) -> Server {
    Server::start(&format!(
        "[[model]]\nname = \"{name}\"\npath = \"{}\"\nkv_cache_tokens = 4096\nmax_batch_size = 4\n",
        path.display()
    ))
}

/// SmolLM2's built-in default system prompt sends the 135M model off topic (measured:
/// it answers in French about the Marseillaise), so the tests give it a plain one.
fn question() -> Value {
    json!([
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"}
    ])
}

fn chat(server: &Server, model: &str, extra: Value) -> Value {
    let mut body =
        json!({"model": model, "messages": question(), "temperature": 0, "max_tokens": 48});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn smollm2_knows_the_capital_of_france_and_streams_the_same_text(path: PathBuf) {
    let server = server_for("smollm2-135m", &path);
    let v = chat(&server, "smollm2-135m", json!({}));
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("Paris"), "{text}");

    let chunks = common::stream_chunks(
        &server.url("/v1/chat/completions"),
        &json!({"model": "smollm2-135m", "messages": question(), "temperature": 0,
                "max_tokens": 48, "stream": true}),
    );
    let streamed = common::joined(&chunks, "/choices/0/delta/content");
    assert_eq!(streamed, text);
}

fn smollm2_usage_matches_the_tokenizer(path: PathBuf) {
    let server = server_for("smollm2-135m", &path);
    let v = chat(
        &server,
        "smollm2-135m",
        json!({"logprobs": true, "max_tokens": 30}),
    );
    let engine = Engine::load(EngineConfig::new("check", &path)).unwrap();
    let messages: Vec<Message> = question()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message {
            role: m["role"].as_str().unwrap().into(),
            content: m["content"].as_str().unwrap().into(),
        })
        .collect();
    let prompt_tokens = engine.tokenize_chat(&messages).unwrap().len() as u64;
    assert_eq!(v["usage"]["prompt_tokens"].as_u64().unwrap(), prompt_tokens);
    let completion = v["usage"]["completion_tokens"].as_u64().unwrap();
    let logprobs = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(logprobs.len() as u64, completion);
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    let joined: String = logprobs
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    assert_eq!(joined, text, "the tokens must spell the answer");
    assert_eq!(engine.tokenize(text, false).len() as u64, completion);
}

fn qwen_coder_answers_chat(path: PathBuf) {
    let server = server_for("qwen2.5-coder-1.5b", &path);
    let v = chat(&server, "qwen2.5-coder-1.5b", json!({"max_tokens": 24}));
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("Paris"), "{text}");
}

fn gemma_base_completes_text_and_refuses_chat(path: PathBuf) {
    let server = server_for("gemma3-270m", &path);
    let v: Value = client()
        .post(server.url("/v1/completions"))
        .json(&json!({"model": "gemma3-270m", "prompt": "The capital of France is", "temperature": 0, "max_tokens": 8}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(!v["choices"][0]["text"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 8);
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model": "gemma3-270m", "messages": question()}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().unwrap();
    assert_eq!(e["error"]["code"], "model_not_chat_capable");
}

/// The default route `auto` on the real pair with the router shipped in the binary (or
/// one installed in the cache): it answers, says which tier did and why, and the
/// decision record carries the pre-router's score of the real MiniLM embedding.
fn the_default_auto_route_cascades_the_real_pair() {
    let root = ModelStore::default_root();
    let state = tempfile::tempdir().unwrap();
    let config = format!(
        "[models]\npull_missing = false\n[auth]\ndatabase = \"{}\"\n[[model]]\nname = \"smollm2-135m\"\nkv_cache_tokens = 4096\nmax_batch_size = 4\n[[model]]\nname = \"qwen2.5-coder-1.5b\"\nkv_cache_tokens = 4096\nmax_batch_size = 4\n",
        state.path().join("state.db").display()
    );
    let root = root.display().to_string();
    let server = Server::start_with_env(&config, &[], &[("FLOODGATE_HOME", root.as_str())]);
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .header("x-request-id", "auto-paris")
        .json(&json!({"model": "auto", "messages": question(), "temperature": 0, "max_tokens": 24}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-floodgate-route"], "auto");
    let tier = r.headers()["x-floodgate-tier"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        ["smollm2-135m", "qwen2.5-coder-1.5b"].contains(&tier.as_str()),
        "{tier}"
    );
    let body: Value = r.json().unwrap();
    assert_eq!(body["model"], tier.as_str());
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("Paris"), "{text}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let d: Value = loop {
        let r = client()
            .get(server.url("/v1/requests/auto-paris/decision"))
            .send()
            .unwrap();
        if r.status() == 200 || std::time::Instant::now() > deadline {
            break r.json().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let route = &d["route"];
    assert_eq!(route["policy"], "pre+post", "{d}");
    let pre = route["pre_score"]
        .as_f64()
        .expect("the pre-router scored the prompt");
    assert!((0.0..=1.0).contains(&pre), "{d}");
    assert!(route["pre_threshold"].as_f64().is_some(), "calibrated: {d}");
    if tier == "smollm2-135m" || route["post_score"].is_number() {
        // The small tier answered first: its answer was judged.
        assert!(route["signals"]["tokens"].as_u64().unwrap() > 0, "{d}");
    }
}
