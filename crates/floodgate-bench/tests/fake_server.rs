//! The benchmark against a tiny in-process OpenAI-style SSE server with known timing: it
//! streams `max_tokens` tokens, two per chunk, the first after `FIRST_MS` and the rest
//! `GAP_MS` apart, splitting every event across two TCP writes and sending keep-alive
//! comments. These are behaviour tests, so the timing bounds are generous.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floodgate_bench::{execute, Api, BenchArgs, Plan};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FIRST_MS: u64 = 50;
const GAP_MS: u64 = 20;
const TOKENS_PER_CHUNK: u64 = 2;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Every request succeeds.
    Ok,
    /// Request k (from 0): k % 3 == 1 gets an error event mid-stream, k % 3 == 2 gets HTTP 503.
    SomeFail,
    /// The first connection is closed without a response, like a stale keep-alive.
    DropFirst,
}

#[derive(Clone)]
struct Fake {
    mode: Mode,
    count: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn start(mode: Mode) -> (String, Fake) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake {
        mode,
        count: Arc::new(AtomicUsize::new(0)),
        bodies: Arc::new(Mutex::new(Vec::new())),
    };
    let f = fake.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let f = f.clone();
            tokio::spawn(async move {
                let _ = handle(sock, f).await;
            });
        }
    });
    (url, fake)
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<(String, Value)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    Ok((path, body))
}

/// Writes one SSE event in two pieces, so that the client sees a line split across reads.
async fn event(sock: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let bytes = format!("data: {data}\n\n").into_bytes();
    let mid = bytes.len() / 2;
    sock.write_all(&bytes[..mid]).await?;
    sock.flush().await?;
    tokio::time::sleep(Duration::from_millis(1)).await;
    sock.write_all(&bytes[mid..]).await?;
    sock.flush().await
}

fn chunk(content: &str, finish: Option<&str>) -> String {
    serde_json::json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    })
    .to_string()
}

async fn handle(mut sock: TcpStream, f: Fake) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let (path, body) = read_request(&mut sock).await?;
    f.bodies.lock().unwrap().push(body.clone());
    let k = f.count.fetch_add(1, Ordering::SeqCst);
    if f.mode == Mode::DropFirst && k == 0 {
        return sock.shutdown().await;
    }
    let fail = if f.mode == Mode::SomeFail { k % 3 } else { 0 };
    if path != "/v1/chat/completions" || fail == 2 {
        let (status, msg) = if fail == 2 {
            ("503 Service Unavailable", "queue is full")
        } else {
            ("404 Not Found", "no such route")
        };
        let body =
            serde_json::json!({"error": {"message": msg, "type": "server_error"}}).to_string();
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(resp.as_bytes()).await?;
        return sock.shutdown().await;
    }
    let max_tokens = body["max_tokens"].as_u64().unwrap_or(16);
    sock.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
    )
    .await?;
    // The role chunk comes at once and has no text: it must not count as the first token.
    event(&mut sock, &chunk("", None)).await?;
    sock.write_all(b": keep-alive\n\n").await?;
    tokio::time::sleep(Duration::from_millis(FIRST_MS)).await;
    let chunks = max_tokens.div_ceil(TOKENS_PER_CHUNK);
    for i in 0..chunks {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(GAP_MS)).await;
        }
        if fail == 1 && i == 2 {
            let err =
                serde_json::json!({"error": {"message": "engine failed", "type": "server_error"}});
            event(&mut sock, &err.to_string()).await?;
            return sock.shutdown().await;
        }
        event(&mut sock, &chunk("ab", None)).await?;
    }
    event(&mut sock, &chunk("", Some("length"))).await?;
    let usage = serde_json::json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake", "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": max_tokens, "total_tokens": max_tokens + 5}
    });
    event(&mut sock, &usage.to_string()).await?;
    event(&mut sock, "[DONE]").await?;
    sock.shutdown().await
}

fn args(
    url: &str,
    concurrency: Vec<usize>,
    requests: usize,
    warmup: usize,
    out: PathBuf,
) -> BenchArgs {
    BenchArgs {
        url: url.to_string(),
        model: "fake-model".into(),
        api: Api::Chat,
        concurrency,
        requests_per_level: Some(requests),
        max_tokens: 16,
        warmup,
        prompts: None,
        out,
        label: Some("fake".into()),
        api_key: Some("sk-test".into()),
        ignore_eos: true,
        temperature: 0.0,
        timeout: 30,
    }
}

#[tokio::test]
async fn measures_tokens_ttft_and_throughput_at_two_concurrency_levels() {
    let (url, fake) = start(Mode::Ok).await;
    let plan = Plan::from_args(args(&url, vec![1, 4], 8, 1, PathBuf::from("unused"))).unwrap();
    let report = execute(&plan).await.unwrap();

    // 1 warm-up + 8 + 8 requests, all with the streaming options the benchmark promises.
    let bodies = fake.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 17);
    for b in &bodies {
        assert_eq!(b["model"], "fake-model");
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["ignore_eos"], true);
        assert_eq!(b["max_tokens"], 16);
        assert_eq!(b["temperature"], 0.0);
        assert!(b["messages"][0]["content"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
    }

    assert_eq!(report.levels.len(), 2);
    // Ideal request: 50 ms to the first token, 7 more chunks 20 ms apart = 190 ms.
    let ideal_e2e = (FIRST_MS + 7 * GAP_MS) as f64 / 1e3;
    for level in &report.levels {
        let c = level.concurrency;
        assert_eq!((level.requests, level.errors), (8, 0), "c={c}");
        assert_eq!(level.output_tokens, 8 * 16, "c={c}: tokens come from usage");
        assert!(level.tokens_from_usage);
        for s in &level.samples {
            assert_eq!(s.completion_tokens, 16);
            assert_eq!(s.text_chunks, 8);
        }
        let ttft = level.ttft_ms.unwrap();
        assert!(
            ttft.p50 >= 45.0 && ttft.p50 < 500.0,
            "c={c}: TTFT p50 {}",
            ttft.p50
        );
        // 7 chunk gaps of 20 ms spread over 15 token intervals.
        let itl = level.itl_ms.unwrap();
        assert!(
            itl.p50 > 7.0 && itl.p50 < 40.0,
            "c={c}: ITL p50 {}",
            itl.p50
        );
        let gap = level.chunk_gap_ms.unwrap();
        assert_eq!(gap.count, 8 * 7);
        assert!(
            gap.p50 >= 18.0 && gap.p50 < 100.0,
            "c={c}: chunk gap p50 {}",
            gap.p50
        );
        // Throughput cannot beat the server's pace, and should not be far below it.
        let waves = 8.0 / c as f64;
        let ideal_tok_s = 8.0 * 16.0 / (waves * ideal_e2e);
        assert!(
            level.output_tokens_per_s <= ideal_tok_s * 1.05
                && level.output_tokens_per_s > ideal_tok_s * 0.3,
            "c={c}: {} tok/s, ideal {ideal_tok_s}",
            level.output_tokens_per_s
        );
    }
    let (one, four) = (&report.levels[0], &report.levels[1]);
    assert!(
        four.output_tokens_per_s > 2.0 * one.output_tokens_per_s,
        "4 in flight should be well over twice as fast as 1: {} vs {}",
        four.output_tokens_per_s,
        one.output_tokens_per_s
    );
    assert!(four.requests_per_s > 2.0 * one.requests_per_s);
}

#[tokio::test]
async fn counts_http_errors_and_error_events() {
    let (url, _fake) = start(Mode::SomeFail).await;
    let plan = Plan::from_args(args(&url, vec![1], 6, 0, PathBuf::from("unused"))).unwrap();
    let report = execute(&plan).await.unwrap();
    let level = &report.levels[0];
    assert_eq!((level.requests, level.succeeded, level.errors), (6, 2, 4));
    assert_eq!(level.output_tokens, 2 * 16, "failed requests add no tokens");
    let errors = level.error_samples.join(" | ");
    assert!(errors.contains("engine failed"), "{errors}");
    assert!(errors.contains("HTTP 503: queue is full"), "{errors}");
}

#[tokio::test]
async fn a_request_that_got_no_response_is_sent_again() {
    let (url, fake) = start(Mode::DropFirst).await;
    let plan = Plan::from_args(args(&url, vec![1], 2, 0, PathBuf::from("unused"))).unwrap();
    let report = execute(&plan).await.unwrap();
    let level = &report.levels[0];
    assert_eq!(
        (level.requests, level.errors),
        (2, 0),
        "{:?}",
        level.error_samples
    );
    assert!(level.samples[0].retried && !level.samples[1].retried);
    assert_eq!(fake.bodies.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn unreachable_server_fails_the_warm_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let plan = Plan::from_args(args(&url, vec![1], 1, 1, PathBuf::from("unused"))).unwrap();
    let err = execute(&plan).await.unwrap_err();
    assert!(
        matches!(err, floodgate_bench::BenchError::Unreachable { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn run_writes_markdown_json_and_png() {
    let (url, _fake) = start(Mode::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let code = floodgate_bench::run(args(&url, vec![1, 2], 2, 0, dir.path().to_path_buf())).await;
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let [md, json, png] = floodgate_bench::output_paths(dir.path(), "fake");
    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.contains("| concurrency |") && md.contains("\n| 2 | 2 | 0 |"),
        "{md}"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(json["levels"][1]["concurrency"], 2);
    assert_eq!(json["levels"][0]["output_tokens"], 32);
    assert_eq!(json["levels"][0]["samples"].as_array().unwrap().len(), 2);
    let png = std::fs::read(png).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}
