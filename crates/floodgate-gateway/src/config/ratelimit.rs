//! `[ratelimit]`: admission limits per key, IP and tenant.

use serde::{Deserialize, Serialize};

/// Where the GCRA buckets live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimiterBackend {
    /// In this process only.
    #[default]
    Memory,
    /// In Redis, shared by every gateway using the same URL.
    Redis,
}

crate::config::value_set!(LimiterBackend { Memory => "memory", Redis => "redis" });

/// What admission does when the limiter backend cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBackendError {
    /// Admit the request.
    #[default]
    Open,
    /// Answer 503.
    Closed,
}

crate::config::value_set!(OnBackendError { Open => "open", Closed => "closed" });

/// Stage 3, admission: GCRA rate limits per key, client IP and tenant, and per-key
/// concurrency. A rate of 0 turns that limit off. A key's own limits override the
/// `key_*` defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// `memory` (this process only) or `redis` (shared by every gateway using the URL).
    pub backend: LimiterBackend,
    /// Redis URL for the `redis` backend, or `env::NAME` to read it from the environment.
    pub redis_url: String,
    /// When Redis cannot be reached: `open` admits the request, `closed` answers 503.
    pub on_backend_error: OnBackendError,
    /// Milliseconds to wait for Redis before treating it as unreachable.
    pub backend_timeout_ms: u64,
    /// How many seconds of a rate may be spent at once (the GCRA burst).
    pub burst_seconds: f64,
    pub key_requests_per_minute: f64,
    /// Tokens per minute; a request reserves prompt estimate + `max_tokens` at admission
    /// and settles to the real count when it finishes.
    pub key_tokens_per_minute: f64,
    /// US dollars per day, from the model's configured prices.
    pub key_cost_usd_per_day: f64,
    /// Requests one key may have in flight at once (per gateway process); 0 = no cap.
    pub key_max_concurrent: u32,
    pub ip_requests_per_minute: f64,
    pub ip_tokens_per_minute: f64,
    pub tenant_requests_per_minute: f64,
    pub tenant_tokens_per_minute: f64,
    /// Peers (CIDRs or addresses) whose `X-Forwarded-For` is believed; the client IP is
    /// the right-most address not in this list.
    pub trusted_proxies: Vec<String>,
    /// Requests per minute a throttled abuse cluster (see `[abuse]`) may make, all its
    /// keys together.
    pub abuse_throttle_requests_per_minute: f64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            backend: LimiterBackend::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            on_backend_error: OnBackendError::Open,
            backend_timeout_ms: 250,
            burst_seconds: 60.0,
            key_requests_per_minute: 600.0,
            key_tokens_per_minute: 400_000.0,
            key_cost_usd_per_day: 0.0,
            key_max_concurrent: 64,
            ip_requests_per_minute: 1200.0,
            ip_tokens_per_minute: 0.0,
            tenant_requests_per_minute: 6000.0,
            tenant_tokens_per_minute: 4_000_000.0,
            trusted_proxies: Vec::new(),
            abuse_throttle_requests_per_minute: 6.0,
        }
    }
}

impl RateLimitConfig {
    /// Problems with this section, each with its path.
    pub(super) fn validate(&self, errors: &mut Vec<String>) {
        let r = self;
        if !(r.burst_seconds.is_finite() && r.burst_seconds > 0.0) {
            errors.push("ratelimit.burst_seconds: must be a positive number".into());
        }
        for (name, v) in [
            ("key_requests_per_minute", r.key_requests_per_minute),
            ("key_tokens_per_minute", r.key_tokens_per_minute),
            ("key_cost_usd_per_day", r.key_cost_usd_per_day),
            ("ip_requests_per_minute", r.ip_requests_per_minute),
            ("ip_tokens_per_minute", r.ip_tokens_per_minute),
            ("tenant_requests_per_minute", r.tenant_requests_per_minute),
            ("tenant_tokens_per_minute", r.tenant_tokens_per_minute),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                errors.push(format!(
                    "ratelimit.{name}: must be a non-negative number (0 = off)"
                ));
            }
        }
        for (i, p) in r.trusted_proxies.iter().enumerate() {
            if parse_net(p).is_none() {
                errors.push(format!(
                    "ratelimit.trusted_proxies[{i}]: `{p}` is not an IP address or CIDR"
                ));
            }
        }
        if self.abuse_throttle_requests_per_minute <= 0.0 {
            errors.push("ratelimit.abuse_throttle_requests_per_minute: must be positive".into());
        }
    }
}

/// Parses `10.0.0.0/8` or a bare address into a network.
pub fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}
