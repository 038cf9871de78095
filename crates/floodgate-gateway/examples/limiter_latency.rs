//! What admission's limiter adds to a request: p50/p99/mean of one `acquire` covering
//! the buckets a keyed request charges (key requests + tokens, IP requests, tenant
//! requests + tokens), in memory and, given a URL, in Redis.
//!   cargo run --release -p floodgate-gateway --example limiter_latency [redis://127.0.0.1:6379]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use floodgate_gateway::limits::{Charge, Limiter, MemoryLimiter, Quota, RedisLimiter};

fn charges(i: usize) -> Vec<Charge> {
    let q = Quota {
        per_second: 1e9,
        burst: 1e12,
    };
    let key = i % 1000;
    ["req", "tok"]
        .iter()
        .map(|k| format!("bench:key:{key}:{k}"))
        .chain([format!("bench:ip:10.0.{}.{}:req", key / 256, key % 256)])
        .chain(
            ["req", "tok"]
                .iter()
                .map(|k| format!("bench:tenant:{}:{k}", key % 10)),
        )
        .map(|bucket| Charge {
            bucket,
            quota: q,
            amount: 1.0,
        })
        .collect()
}

async fn measure(name: &str, limiter: &dyn Limiter, n: usize) {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let cs = charges(i);
        let t = Instant::now();
        limiter.acquire(&cs).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    let mean: Duration = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "| {name} | {n} | {:.1} | {:.1} | {:.1} |",
        pct(0.5).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("| limiter | calls | p50 µs | p99 µs | mean µs |\n|---|---:|---:|---:|---:|");
    let memory = MemoryLimiter::default();
    measure("memory (5 buckets)", &memory, 1000).await;
    measure("memory (5 buckets)", &memory, 100_000).await;
    if let Some(url) = std::env::args().nth(1) {
        let redis = RedisLimiter::new(&url, Duration::from_secs(2)).unwrap();
        measure("redis (5 buckets, 1 EVALSHA)", &redis, 200).await;
        measure("redis (5 buckets, 1 EVALSHA)", &redis, 5000).await;
        // The round trip alone, for comparison.
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut times = Vec::new();
        for _ in 0..5000 {
            let t = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "| redis PING round trip | 5000 | {:.1} | {:.1} | |",
            times[2500].as_secs_f64() * 1e6,
            times[4950].as_secs_f64() * 1e6
        );
    }
}
