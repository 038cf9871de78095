//! What metrics and traces add to a request (`bench/telemetry.sh` runs it; not a test):
//! the CPU of emitting one request event with the log off, so only the observers
//! run — the GenAI metrics, and the spans of a traced request — with traces off, at
//! 10 % and at 100 % sampling. Spans go to an OTLP/HTTP receiver on loopback that
//! answers 200 at once, so the exporter thread's work is counted in the process CPU.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use floodgate_gateway::config::Config;
use floodgate_gateway::events::{Event, RequestEvent, Spine, StageTiming, Timings, Trace, Usage};
use floodgate_gateway::records::{RouteDecision, TierRun};

fn event() -> Event {
    let r = RequestEvent {
        endpoint: "POST /v1/chat/completions".into(),
        key_id: "key_0001".into(),
        tenant: "acme".into(),
        segment: "pro".into(),
        requested: "auto".into(),
        route: Some(RouteDecision {
            route: "auto".into(),
            policy: "cascade".into(),
            tiers: vec!["small".into(), "large".into()],
            ..RouteDecision::default()
        }),
        served_by: Some("small".into()),
        runs: vec![TierRun {
            model: "small".into(),
            prompt_tokens: 120,
            completion_tokens: 64,
            compute_seconds: 0.8,
            cost_usd: 0.0012,
            served: true,
        }],
        usage: Usage {
            prompt_tokens: 120,
            completion_tokens: 64,
            cached_tokens: 0,
        },
        timings: Timings {
            queue_ms: 0.1,
            time_to_first_token_ms: Some(40.0),
            total_ms: 900.0,
            stages: ["resolve", "admit", "screen_input", "plan", "infer"]
                .iter()
                .map(|s| StageTiming {
                    stage: (*s).into(),
                    ms: 0.05,
                })
                .collect(),
        },
        status: 200,
        outcome: "completed".into(),
        ..RequestEvent::default()
    };
    Event::request(
        floodgate_gateway::events::new_id(),
        floodgate_gateway::events::now_ms(),
        "bench/localhost:8080".into(),
        r,
    )
}

/// An OTLP/HTTP receiver that reads each export and answers 200 with an empty body.
fn receiver() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
    url
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (t(11) + t(12)) / 100.0
}

/// Process CPU per request (µs, exporter thread included) over `n` emits.
fn run(spine: &Spine, n: usize) -> f64 {
    let events: Vec<Event> = (0..1000).map(|_| event()).collect();
    let cpu0 = cpu_seconds();
    for i in 0..n {
        let trace = Trace::new(
            None,
            "POST /v1/chat/completions".into(),
            spine.begin_trace(None),
        );
        let _ = spine.emit(&events[i % events.len()], Some(&trace));
    }
    // Let the batch processor export what is queued, inside the measurement.
    std::thread::sleep(Duration::from_millis(5200));
    (cpu_seconds() - cpu0 - 0.0) / n as f64 * 1e6
}

fn main() {
    let _ = floodgate_gateway::telemetry::recorder();
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let url = receiver();
    let spine_for = |ratio: Option<f64>| -> Arc<Spine> {
        let mut c = Config::default();
        c.events.enabled = false;
        if let Some(r) = ratio {
            c.telemetry.otlp_endpoint = url.clone();
            c.telemetry.trace_sample_ratio = r;
        }
        Arc::new(Spine::open(&c, "bench".into()).unwrap())
    };
    // The idle baseline: the receiver and the sleep alone.
    let idle = {
        let cpu0 = cpu_seconds();
        std::thread::sleep(Duration::from_millis(5200));
        (cpu_seconds() - cpu0) * 1e6 / n as f64
    };
    let cases: [(&str, Option<f64>); 4] = [
        ("metrics, traces off", None),
        ("metrics, traces at 0 %", Some(0.0)),
        ("metrics, traces at 10 %", Some(0.1)),
        ("metrics, traces at 100 %", Some(1.0)),
    ];
    let spines: Vec<_> = cases.iter().map(|(_, r)| spine_for(*r)).collect();
    let mut figures = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, spine) in spines.iter().enumerate() {
            figures[i].push(run(spine, n) - idle);
        }
    }
    println!("\n# Telemetry cost per request: {n} emits per run, {rounds} rounds, median; process CPU (exporter thread included)\n");
    println!("| case | CPU µs/request (median) | runs |");
    println!("|---|---|---|");
    for (i, (name, _)) in cases.iter().enumerate() {
        let mut f = figures[i].clone();
        f.sort_by(f64::total_cmp);
        let runs: Vec<String> = figures[i].iter().map(|v| format!("{v:.2}")).collect();
        println!("| {name} | {:.2} | {} |", f[f.len() / 2], runs.join(", "));
    }
    for s in &spines {
        s.close();
    }
}
