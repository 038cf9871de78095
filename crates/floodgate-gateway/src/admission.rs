//! Stage 3, admission: rate limits on requests, tokens and cost per key, per client IP
//! and per tenant, and a cap on each key's requests in flight.
//!
//! Tokens and cost are not known until the request finishes, so admission *reserves*
//! the most the request can use (a prompt estimate plus `max_tokens`) and the returned
//! [`Permit`] settles the difference when the real count arrives. A permit dropped
//! without a count (client gone, failure mid-way) keeps its reservation: cheaper to
//! over-charge a broken request than to let a flood of aborted ones through free.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::{Caller, KeyRecord};
use crate::config::{LimiterBackend, OnBackendError, RateLimitConfig};
use crate::error::GatewayError;
use crate::limits::{
    self, BucketState, Charge, Limiter, LimiterError, MemoryLimiter, Quota, RedisLimiter, Verdict,
};

/// What a charge is for, to name it in errors, headers and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Requests,
    Tokens,
    Cost,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Tokens => "tokens",
            Kind::Cost => "cost",
        }
    }
}

struct Planned {
    charge: Charge,
    scope: &'static str,
    kind: Kind,
    /// The configured rate as the client should read it (per minute, or USD per day).
    limit: f64,
}

pub struct Admission {
    limiter: Arc<dyn Limiter>,
    /// `[ratelimit]`, swapped whole by a reload ([`Admission::reconfigure`]); the
    /// limiter backend itself stays until a restart.
    config: arc_swap::ArcSwap<RateLimitConfig>,
    trusted: arc_swap::ArcSwap<Vec<ipnet::IpNet>>,
    in_flight: DashMap<String, Arc<Semaphore>>,
}

/// What one request asks to reserve.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask {
    pub tokens: f64,
    pub cost_usd: f64,
}

fn trusted(config: &RateLimitConfig) -> Vec<ipnet::IpNet> {
    config
        .trusted_proxies
        .iter()
        .filter_map(|s| limits::parse_net(s))
        .collect()
}

impl Admission {
    /// Builds the configured limiter. A Redis URL may be `env::NAME`.
    pub fn from_config(config: &RateLimitConfig) -> anyhow::Result<Self> {
        let limiter: Arc<dyn Limiter> = match config.backend {
            LimiterBackend::Redis => {
                let url = crate::config::resolve_secret(&config.redis_url)?;
                Arc::new(RedisLimiter::new(
                    &url,
                    Duration::from_millis(config.backend_timeout_ms.max(1)),
                )?)
            }
            LimiterBackend::Memory => Arc::new(MemoryLimiter::default()),
        };
        Ok(Self::new(limiter, config))
    }

    pub fn new(limiter: Arc<dyn Limiter>, config: &RateLimitConfig) -> Self {
        Self {
            limiter,
            trusted: arc_swap::ArcSwap::from_pointee(trusted(config)),
            config: arc_swap::ArcSwap::from_pointee(config.clone()),
            in_flight: DashMap::new(),
        }
    }

    /// Applies a reloaded `[ratelimit]`: rates, bursts, concurrency caps, trusted proxies
    /// and `on_backend_error` hold from the next request. (The limiter backend and its
    /// URL stay until a restart.)
    pub fn reconfigure(&self, fresh: &RateLimitConfig) {
        self.trusted.store(Arc::new(trusted(fresh)));
        self.config.store(Arc::new(fresh.clone()));
    }

    fn fail_open(&self) -> bool {
        self.config.load().on_backend_error == OnBackendError::Open
    }

    /// The bucket store, for other per-key limits (feedback).
    pub fn limiter(&self) -> &dyn Limiter {
        self.limiter.as_ref()
    }

    pub fn backend_name(&self) -> &'static str {
        self.limiter.name()
    }

    /// The client address for `peer` given the request's `X-Forwarded-For`.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        limits::client_ip(peer, forwarded_for, &self.trusted.load())
    }

    /// Every charge for one request, in order: the key's, the address's, the tenant's.
    fn plan(&self, caller: &Caller, ip: IpAddr, ask: Ask) -> Vec<Planned> {
        let c = self.config.load();
        let per_minute = |bucket: String, scope, kind, rate: f64, amount: f64| {
            planned(
                bucket,
                scope,
                kind,
                rate,
                Quota::per_minute(rate, c.burst_seconds),
                amount,
            )
        };
        let tenant = caller.tenant();
        let mut out = caller
            .record()
            .map(|key| self.plan_key(key, ask))
            .unwrap_or_default();
        out.extend(
            [
                per_minute(
                    format!("ip:{ip}:req"),
                    "ip",
                    Kind::Requests,
                    c.ip_requests_per_minute,
                    1.0,
                ),
                per_minute(
                    format!("ip:{ip}:tok"),
                    "ip",
                    Kind::Tokens,
                    c.ip_tokens_per_minute,
                    ask.tokens,
                ),
                per_minute(
                    format!("tenant:{tenant}:req"),
                    "tenant",
                    Kind::Requests,
                    c.tenant_requests_per_minute,
                    1.0,
                ),
                per_minute(
                    format!("tenant:{tenant}:tok"),
                    "tenant",
                    Kind::Tokens,
                    c.tenant_tokens_per_minute,
                    ask.tokens,
                ),
            ]
            .into_iter()
            .flatten(),
        );
        out
    }

    /// The key's charges: its own limits, or the `ratelimit.key_*` defaults.
    fn plan_key(&self, key: &KeyRecord, ask: Ask) -> Vec<Planned> {
        let c = self.config.load();
        let l = &key.limits;
        let rpm = l.requests_per_minute.unwrap_or(c.key_requests_per_minute);
        let tpm = l.tokens_per_minute.unwrap_or(c.key_tokens_per_minute);
        let usd = l.cost_usd_per_day.unwrap_or(c.key_cost_usd_per_day);
        let id = &key.id;
        let requests = planned(
            format!("key:{id}:req"),
            "key",
            Kind::Requests,
            rpm,
            Quota::per_minute(rpm, c.burst_seconds),
            1.0,
        );
        let tokens = planned(
            format!("key:{id}:tok"),
            "key",
            Kind::Tokens,
            tpm,
            Quota::per_minute(tpm, c.burst_seconds),
            ask.tokens,
        );
        // A day's budget, spendable at once: cost limits are about totals.
        let cost = (ask.cost_usd > 0.0 && usd > 0.0)
            .then(|| {
                let quota = Quota {
                    per_second: usd / 86_400.0,
                    burst: usd,
                };
                planned(
                    format!("key:{id}:usd"),
                    "key",
                    Kind::Cost,
                    usd,
                    Some(quota),
                    ask.cost_usd,
                )
            })
            .flatten();
        [requests, tokens, cost].into_iter().flatten().collect()
    }

    pub async fn admit(
        &self,
        caller: &Caller,
        ip: IpAddr,
        ask: Ask,
    ) -> Result<Permit, GatewayError> {
        let slot = self.take_slot(caller)?;
        let plan = self.plan(caller, ip, ask);
        let charges: Vec<Charge> = plan.iter().map(|p| p.charge.clone()).collect();
        let verdict = match self.limiter.acquire(&charges).await {
            Ok(v) => Some(v),
            Err(LimiterError::Unavailable(why)) => {
                metrics::counter!("floodgate_ratelimit_backend_errors_total", "backend" => self.limiter.name())
                    .increment(1);
                if self.fail_open() {
                    tracing::warn!(error = %why, "rate limiter unavailable; admitting (fail-open)");
                    None
                } else {
                    return Err(GatewayError::LimiterUnavailable(why));
                }
            }
        };
        let headers = match verdict {
            Some(Verdict::Limited { index, retry_after }) => {
                return Err(refusal(&plan[index], retry_after));
            }
            Some(Verdict::Admitted(states)) => rate_headers(&plan, &states),
            None => Vec::new(),
        };
        let settle = plan
            .into_iter()
            .filter(|p| p.kind != Kind::Requests)
            .map(|p| (p.kind, p.charge))
            .collect();
        Ok(Permit {
            limiter: Arc::clone(&self.limiter),
            settle,
            used: None,
            headers,
            _slot: slot,
        })
    }

    /// How much of what the key may spend at once this request reserves (0 when the key
    /// has no token limit): requests that always ask for the most look like cost abuse.
    pub fn cost_fraction(&self, caller: &Caller, tokens: f64) -> f32 {
        let Some(key) = caller.record() else {
            return 0.0;
        };
        let tpm = key
            .limits
            .tokens_per_minute
            .unwrap_or(self.config.load().key_tokens_per_minute);
        Quota::per_minute(tpm, self.config.load().burst_seconds)
            .map_or(0.0, |q| (tokens / q.burst).min(1.0) as f32)
    }

    /// The stricter limit for a throttled abuse cluster (all its keys together).
    pub async fn throttle(&self, cluster: &str) -> Result<(), GatewayError> {
        let c = self.config.load();
        let rpm = c.abuse_throttle_requests_per_minute;
        let Some(quota) = Quota::per_minute(rpm, c.burst_seconds) else {
            return Ok(());
        };
        let charge = Charge {
            bucket: format!("abuse:{cluster}:req"),
            quota,
            amount: 1.0,
        };
        match self.limiter.acquire(&[charge]).await {
            Ok(Verdict::Limited { retry_after, .. }) => Err(GatewayError::AbuseThrottled(format!(
                "{cluster}, limited to {rpm} requests per minute; retry after {:.0} s",
                retry_after.min(3600.0)
            ))),
            Ok(Verdict::Admitted(_)) => Ok(()),
            Err(e) if self.fail_open() => {
                tracing::warn!(error = %e, "rate limiter unavailable; not throttling (fail-open)");
                Ok(())
            }
            Err(LimiterError::Unavailable(why)) => Err(GatewayError::LimiterUnavailable(why)),
        }
    }

    fn take_slot(&self, caller: &Caller) -> Result<Option<OwnedSemaphorePermit>, GatewayError> {
        let Some(key) = caller.record() else {
            return Ok(None);
        };
        let cap = key
            .limits
            .max_concurrent
            .unwrap_or(self.config.load().key_max_concurrent);
        if cap == 0 {
            return Ok(None);
        }
        let sem = self
            .in_flight
            .entry(key.id.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(cap as usize)))
            .clone();
        sem.try_acquire_owned().map(Some).map_err(|_| {
            metrics::counter!("floodgate_requests_throttled_total", "scope" => "key", "limit" => "concurrency")
                .increment(1);
            GatewayError::ConcurrencyLimited(cap)
        })
    }
}

/// The 429 for the first charge that did not fit.
fn refusal(p: &Planned, retry_after: f64) -> GatewayError {
    metrics::counter!("floodgate_requests_throttled_total", "scope" => p.scope, "limit" => p.kind.as_str())
        .increment(1);
    let what = match p.kind {
        Kind::Requests => format!("{} requests per minute", p.limit),
        Kind::Tokens => format!("{} tokens per minute", p.limit),
        Kind::Cost => format!("{} USD per day", p.limit),
    };
    let message = if retry_after.is_finite() {
        format!(
            "Rate limit reached for {} on {what}: this request needs {:.0}{}. Retry after {:.1} s.",
            p.scope,
            p.charge.amount,
            if p.kind == Kind::Requests {
                ""
            } else {
                " more"
            },
            retry_after
        )
    } else {
        format!(
            "Request too large for the {} limit of {what}: it needs {:.4} at once, more than the limit allows.",
            p.scope, p.charge.amount
        )
    };
    GatewayError::RateLimited {
        message,
        retry_after: retry_after.is_finite().then_some(retry_after),
    }
}

/// `x-ratelimit-*` headers for the key's request and token buckets.
fn rate_headers(plan: &[Planned], states: &[BucketState]) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    for (p, s) in plan.iter().zip(states) {
        if p.scope != "key" || p.kind == Kind::Cost {
            continue;
        }
        let k = p.kind.as_str();
        push_header(
            &mut headers,
            &format!("x-ratelimit-limit-{k}"),
            &format!("{}", p.limit),
        );
        push_header(
            &mut headers,
            &format!("x-ratelimit-remaining-{k}"),
            &format!("{}", s.remaining),
        );
        push_header(
            &mut headers,
            &format!("x-ratelimit-reset-{k}"),
            &format!("{:.3}s", s.reset_seconds),
        );
    }
    headers
}

/// A charge, when its limit is on (`quota` is `None` for a limit of 0).
fn planned(
    bucket: String,
    scope: &'static str,
    kind: Kind,
    limit: f64,
    quota: Option<Quota>,
    amount: f64,
) -> Option<Planned> {
    Some(Planned {
        charge: Charge {
            bucket,
            quota: quota?,
            amount,
        },
        scope,
        kind,
        limit,
    })
}

fn push_header(out: &mut Vec<(HeaderName, HeaderValue)>, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        out.push((n, v));
    }
}

/// An admitted request's hold on its limits. Settles reserved tokens and cost when told
/// the real figures; releases the concurrency slot when dropped.
pub struct Permit {
    limiter: Arc<dyn Limiter>,
    settle: Vec<(Kind, Charge)>,
    used: Option<(f64, f64)>,
    /// `x-ratelimit-*` headers for the response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl Permit {
    /// Records what the request really used; the difference is settled on drop.
    pub fn used(&mut self, tokens: u32, cost_usd: f64) {
        self.used = Some((f64::from(tokens), cost_usd));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some((tokens, cost)) = self.used else {
            return;
        };
        let deltas: Vec<Charge> = self
            .settle
            .drain(..)
            .filter_map(|(kind, mut c)| {
                let used = if kind == Kind::Tokens { tokens } else { cost };
                c.amount = used - c.amount;
                (c.amount.abs() > 1e-12).then_some(c)
            })
            .collect();
        if deltas.is_empty() {
            return;
        }
        let limiter = Arc::clone(&self.limiter);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = limiter.adjust(&deltas).await {
                    tracing::warn!(error = %e, "could not settle rate-limit reservation");
                }
            });
        }
    }
}
