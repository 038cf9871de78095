//! Helpers for tests against the real services (PostgreSQL through `psql`, NATS
//! JetStream through async-nats) and for counting events end to end.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
}

pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Event ids of the messages in the stream, one per message.
pub fn jetstream_ids(url: &str, stream: &str) -> Vec<String> {
    jetstream_payloads(url, stream)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every message in the stream, as JSON.
pub fn jetstream_payloads(url: &str, stream: &str) -> Vec<Value> {
    runtime().block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let Ok(mut s) = js.get_stream(stream).await else {
            return Vec::new();
        };
        let last = s.info().await.unwrap().state.last_sequence;
        let mut all = Vec::new();
        for seq in 1..=last {
            if let Ok(m) = s.get_raw_message(seq).await {
                all.push(serde_json::from_slice(&m.payload).unwrap());
            }
        }
        all
    })
}

pub fn delete_stream(url: &str, stream: &str) {
    runtime().block_on(async {
        if let Ok(client) = async_nats::connect(url).await {
            let _ = async_nats::jetstream::new(client)
                .delete_stream(stream)
                .await;
        }
    });
}

/// The server's own id for the request (`x-floodgate-request-id`).
pub fn server_id(r: &reqwest::blocking::Response) -> String {
    r.headers()["x-floodgate-request-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Waits (up to `secs`) until every id in `answered` is in `found()`; then checks that
/// none is there twice.
pub fn assert_all_once(
    what: &str,
    answered: &[String],
    secs: u64,
    found: impl Fn() -> Vec<String>,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let ids = found();
        let have: HashSet<&String> = ids.iter().collect();
        let missing = answered.iter().filter(|id| !have.contains(id)).count();
        if missing == 0 {
            let mut counts: HashMap<&String, usize> = HashMap::new();
            for id in &ids {
                *counts.entry(id).or_default() += 1;
            }
            let duplicated = counts.values().filter(|&&n| n > 1).count();
            assert_eq!(duplicated, 0, "{what}: {duplicated} events stored twice");
            eprintln!(
                "{what}: {} answered, 0 lost, 0 duplicated ({} stored)",
                answered.len(),
                ids.len()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {missing} of {} answered requests have no event after {secs} s",
            answered.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A PostgreSQL schema, a JetStream stream and a directory of the test's own; the
/// schema and the stream are removed when it is dropped.
pub struct Env {
    pub schema: String,
    pub stream: String,
    pub pg: String,
    pub nats: String,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// Names start with `prefix` (`<prefix>_<tag>` and `<PREFIX>_<TAG>`).
    pub fn new(pg: &str, nats: &str, prefix: &str) -> Env {
        let tag = format!("{:08x}", rand_u32());
        let env = Env {
            schema: format!("{prefix}_{tag}"),
            stream: format!("{}_{}", prefix.to_uppercase(), tag.to_uppercase()),
            pg: pg.to_string(),
            nats: nats.to_string(),
            dir: tempfile::tempdir().unwrap(),
        };
        psql(&env.pg, &format!("CREATE SCHEMA {}", env.schema));
        env
    }

    /// `host:port` of a `scheme://[user@]host:port/...` URL.
    pub fn host_port(url: &str) -> String {
        let rest = url.split("://").nth(1).unwrap();
        let rest = rest.rsplit('@').next().unwrap();
        rest.split(['/', '?']).next().unwrap().to_string()
    }

    /// The store URL in the test's schema, through `via` (a proxy) if given.
    pub fn store_url(&self, via: Option<SocketAddr>) -> String {
        let base = match via {
            Some(addr) => self
                .pg
                .replace(&Self::host_port(&self.pg), &addr.to_string()),
            None => self.pg.clone(),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{}", self.schema)
    }

    pub fn nats_url(&self, via: Option<SocketAddr>) -> String {
        via.map_or_else(|| self.nats.clone(), |a| format!("nats://{a}"))
    }

    /// Event ids in the decisions table.
    pub fn stored_ids(&self) -> Vec<String> {
        psql(
            &self.pg,
            &format!("SELECT event_id FROM {}.decisions", self.schema),
        )
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// What `key_id` spent, as the store's usage rows say.
    pub fn spent_usd(&self, key_id: &str) -> f64 {
        psql(
            &self.pg,
            &format!(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM {}.usage_daily WHERE key_id = '{key_id}'",
                self.schema
            ),
        )
        .trim()
        .parse()
        .unwrap()
    }

    /// Event ids of the messages in the stream, one per message.
    pub fn streamed_ids(&self) -> Vec<String> {
        jetstream_ids(&self.nats, &self.stream)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        psql(
            &self.pg,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        );
        delete_stream(&self.nats, &self.stream);
    }
}
