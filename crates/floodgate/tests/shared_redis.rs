//! Two gateways sharing one Redis enforce one rate for a key. Needs a Redis server at
//! `$FLOODGATE_TEST_REDIS_URL`; reported as ignored, with the reason, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{client, tiny_config, Server};
use floodgate_test_support::needs::{self, trial};
use serde_json::json;

fn main() -> ExitCode {
    needs::run(vec![trial(
        "two_gateways_sharing_redis_enforce_one_rate",
        needs::env_url("FLOODGATE_TEST_REDIS_URL"),
        two_gateways_sharing_redis_enforce_one_rate,
    )])
}

fn two_gateways_sharing_redis_enforce_one_rate(url: String) {
    let db = tempfile::tempdir().unwrap();
    let extra = format!(
        "[auth]\nrequired = true\ndatabase = \"{}\"\n[ratelimit]\nbackend = \"redis\"\nredis_url = \"{url}\"\nburst_seconds = 1\nip_requests_per_minute = 0\ntenant_requests_per_minute = 0\ntenant_tokens_per_minute = 0\n",
        db.path().join("shared.db").display()
    );
    let a = Server::start(&tiny_config(&extra));
    let b = Server::start(&tiny_config(&extra));
    // 3000 per minute = 50/s with a burst of 50; tokens off so only requests count.
    let (key, _) = a.create_key(&["--rpm", "3000", "--tpm", "0"]);
    // Admitted but cheap: the prompt + max_tokens overflow the tiny model's context,
    // so the engine refuses it (400) right after admission, without generating.
    let body = json!({
        "model": "tiny-base", "prompt": "hi", "max_tokens": 100000,
    });
    let run_for = Duration::from_secs(8);
    let started = Instant::now();
    let results: Vec<(u32, u32)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let base = if i % 2 == 0 {
                    a.base.clone()
                } else {
                    b.base.clone()
                };
                let (key, body) = (key.clone(), body.clone());
                s.spawn(move || {
                    let c = client();
                    let (mut admitted, mut limited) = (0, 0);
                    while started.elapsed() < run_for {
                        let r = c
                            .post(format!("{base}/v1/completions"))
                            .bearer_auth(&key)
                            .json(&body)
                            .send()
                            .unwrap();
                        match r.status().as_u16() {
                            400 => admitted += 1,
                            429 => limited += 1,
                            s => panic!("unexpected {s}: {}", r.text().unwrap()),
                        }
                    }
                    (admitted, limited)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let admitted: u32 = results.iter().map(|r| r.0).sum();
    let limited: u32 = results.iter().map(|r| r.1).sum();
    let expected = 50.0 + 50.0 * elapsed;
    let error = (f64::from(admitted) - expected).abs() / expected;
    eprintln!(
        "two gateways, one key at 50/s: admitted {admitted} (limited {limited}) in {elapsed:.2} s, expected {expected:.1}, error {:.2}%",
        error * 100.0
    );
    assert!(limited > 0, "the load never reached the limit");
    assert!(error <= 0.01, "admitted {admitted}, expected {expected:.1}");
}
