//! Endpoint health: a circuit breaker fed by passive error tracking and active checks,
//! the load and latency figures selection needs, and the selection order itself.
//!
//! The breaker is the classic three-state machine: **closed** (traffic flows; consecutive
//! failures are counted), **open** after `failures_to_open` consecutive failures (no
//! traffic for `cooldown`), then **half-open** (one trial request, or an active check,
//! may pass; success closes it, failure opens it again for another cool-down).
//!
//! Each endpoint's state sits behind its own small mutex that is held for a few
//! arithmetic operations only; no lock is shared between endpoints or held across I/O.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the breaker lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Cool-down over: one trial may pass.
    HalfOpen,
    Open,
}

impl BreakerState {
    /// The value of the `floodgate_upstream_breaker_state` gauge.
    pub fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Breaker {
    failures_to_open: u32,
    cooldown: Duration,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    /// When the half-open trial was let through; another may pass once it is a
    /// cool-down old (the trial's request may have been cancelled without a verdict).
    trial_at: Option<Instant>,
}

impl Breaker {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Self {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            consecutive_failures: 0,
            opened_at: None,
            trial_at: None,
        }
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if now.saturating_duration_since(at) >= self.cooldown => {
                BreakerState::HalfOpen
            }
            Some(_) => BreakerState::Open,
        }
    }

    /// Whether a request may go now; in half-open, claims the single trial.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                let free = self
                    .trial_at
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.cooldown);
                if free {
                    self.trial_at = Some(now);
                }
                free
            }
        }
    }

    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.opened_at = None;
        self.trial_at = None;
    }

    pub fn record_failure(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let reopen = matches!(self.state(now), BreakerState::HalfOpen | BreakerState::Open);
        if reopen || self.consecutive_failures >= self.failures_to_open {
            self.opened_at = Some(now);
            self.trial_at = None;
        }
    }
}

/// Weight of the newest sample in the latency moving average.
const EWMA_ALPHA: f64 = 0.2;

#[derive(Debug)]
struct Inner {
    breaker: Breaker,
    /// Result of the latest active check (`true` until the first one says otherwise).
    check_ok: bool,
    /// Moving average of time to first token, milliseconds; `None` before any sample.
    ewma_ms: Option<f64>,
}

/// The health, load and latency of one endpoint.
#[derive(Debug)]
pub struct EndpointHealth {
    inner: Mutex<Inner>,
    outstanding: AtomicUsize,
}

/// What selection looks at, read at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub healthy: bool,
    pub breaker: BreakerState,
    pub region: String,
    pub outstanding: usize,
    pub ewma_ms: f64,
}

impl EndpointHealth {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                breaker: Breaker::new(failures_to_open, cooldown),
                check_ok: true,
                ewma_ms: None,
            }),
            outstanding: AtomicUsize::new(0),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub fn snapshot(&self, region: &str, now: Instant) -> Snapshot {
        let (breaker, check_ok, ewma) =
            self.with(|i| (i.breaker.state(now), i.check_ok, i.ewma_ms));
        Snapshot {
            healthy: check_ok && breaker != BreakerState::Open,
            breaker,
            region: region.to_string(),
            outstanding: self.outstanding.load(Ordering::Relaxed),
            ewma_ms: ewma.unwrap_or(0.0),
        }
    }

    pub fn breaker_state(&self, now: Instant) -> BreakerState {
        self.with(|i| i.breaker.state(now))
    }

    pub fn try_acquire(&self, now: Instant) -> bool {
        self.with(|i| i.breaker.try_acquire(now))
    }

    /// A request got its first token (or finished) after `latency`.
    pub fn record_success(&self, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        self.with(|i| {
            i.breaker.record_success();
            i.ewma_ms = Some(match i.ewma_ms {
                None => ms,
                Some(old) => old + EWMA_ALPHA * (ms - old),
            });
        });
    }

    /// A request failed before its first token for a reason that is the endpoint's fault.
    pub fn record_failure(&self, now: Instant) {
        self.with(|i| i.breaker.record_failure(now));
    }

    /// An active check's verdict. A failure counts against the breaker like a failed
    /// request; a success closes a breaker whose cool-down is over (the check was the
    /// half-open trial) but leaves one in its cool-down open.
    pub fn record_check(&self, ok: bool, now: Instant) {
        self.with(|i| {
            i.check_ok = ok;
            if ok {
                if i.breaker.state(now) != BreakerState::Open {
                    i.breaker.record_success();
                }
            } else {
                i.breaker.record_failure(now);
            }
        });
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub fn start_request(self: &std::sync::Arc<Self>) -> Outstanding {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Outstanding(std::sync::Arc::clone(self))
    }
}

/// One request in flight on an endpoint.
pub struct Outstanding(std::sync::Arc<EndpointHealth>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The order in which to try endpoints: healthy first, then those in `region`, then
/// fewer outstanding requests, then lower latency; unhealthy ones stay at the end as a
/// last resort. Returns indices into `endpoints`.
pub fn selection_order(endpoints: &[Snapshot], region: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..endpoints.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&endpoints[a], &endpoints[b]);
        y.healthy
            .cmp(&x.healthy)
            .then_with(|| (y.region == region).cmp(&(x.region == region)))
            .then_with(|| x.outstanding.cmp(&y.outstanding))
            .then_with(|| x.ewma_ms.total_cmp(&y.ewma_ms))
            .then_with(|| a.cmp(&b))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(10);

    #[test]
    fn breaker_opens_after_k_consecutive_failures_and_a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOL);
        b.record_failure(t0);
        b.record_failure(t0);
        b.record_success();
        b.record_failure(t0);
        b.record_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert!(b.try_acquire(t0));
        b.record_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(!b.try_acquire(t0 + COOL / 2));
    }

    #[test]
    fn half_open_lets_one_trial_through_and_its_verdict_decides() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOL);
        b.record_failure(t0);
        let t1 = t0 + COOL;
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        assert!(b.try_acquire(t1), "the trial passes");
        assert!(!b.try_acquire(t1), "only one trial at a time");
        // The trial fails: open again for a whole cool-down.
        b.record_failure(t1);
        assert_eq!(b.state(t1 + COOL / 2), BreakerState::Open);
        let t2 = t1 + COOL;
        assert!(b.try_acquire(t2));
        b.record_success();
        assert_eq!(b.state(t2), BreakerState::Closed);
        assert!(b.try_acquire(t2) && b.try_acquire(t2));
    }

    #[test]
    fn a_lost_trial_is_replaced_after_a_cool_down() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOL);
        b.record_failure(t0);
        assert!(b.try_acquire(t0 + COOL));
        assert!(!b.try_acquire(t0 + COOL + COOL / 2));
        assert!(b.try_acquire(t0 + COOL * 2));
    }

    #[test]
    fn active_checks_feed_the_breaker() {
        let h = EndpointHealth::new(2, COOL);
        let t0 = Instant::now();
        h.record_check(false, t0);
        assert!(!h.snapshot("eu", t0).healthy, "a failed check is unhealthy");
        h.record_check(false, t0);
        assert_eq!(h.breaker_state(t0), BreakerState::Open);
        // A passing check during the cool-down does not close it...
        h.record_check(true, t0 + COOL / 2);
        assert_eq!(h.breaker_state(t0 + COOL / 2), BreakerState::Open);
        // ...one after it does.
        h.record_check(true, t0 + COOL);
        assert_eq!(h.breaker_state(t0 + COOL), BreakerState::Closed);
        assert!(h.snapshot("eu", t0 + COOL).healthy);
    }

    fn snap(healthy: bool, region: &str, outstanding: usize, ewma_ms: f64) -> Snapshot {
        Snapshot {
            healthy,
            breaker: BreakerState::Closed,
            region: region.into(),
            outstanding,
            ewma_ms,
        }
    }

    #[test]
    fn selection_prefers_healthy_then_region_then_load_then_latency() {
        let cases: &[(&str, Vec<Snapshot>, &str, Vec<usize>)] = &[
            (
                "healthy beats region",
                vec![snap(false, "eu", 0, 1.0), snap(true, "us", 5, 50.0)],
                "eu",
                vec![1, 0],
            ),
            (
                "region beats load",
                vec![snap(true, "us", 0, 1.0), snap(true, "eu", 9, 90.0)],
                "eu",
                vec![1, 0],
            ),
            (
                "load within a region",
                vec![
                    snap(true, "eu", 3, 1.0),
                    snap(true, "eu", 1, 90.0),
                    snap(true, "us", 0, 1.0),
                ],
                "eu",
                vec![1, 0, 2],
            ),
            (
                "latency breaks load ties",
                vec![snap(true, "eu", 1, 80.0), snap(true, "eu", 1, 20.0)],
                "eu",
                vec![1, 0],
            ),
            (
                "no preferred region: load then latency",
                vec![
                    snap(true, "eu", 2, 1.0),
                    snap(true, "us", 0, 50.0),
                    snap(true, "ap", 0, 10.0),
                ],
                "",
                vec![2, 1, 0],
            ),
            (
                "all unhealthy: still ordered, none dropped",
                vec![snap(false, "us", 0, 1.0), snap(false, "eu", 4, 1.0)],
                "eu",
                vec![1, 0],
            ),
        ];
        for (name, endpoints, region, want) in cases {
            assert_eq!(&selection_order(endpoints, region), want, "{name}");
        }
    }

    #[test]
    fn outstanding_counts_until_the_guard_drops() {
        let h = std::sync::Arc::new(EndpointHealth::new(3, COOL));
        let a = h.start_request();
        let b = h.start_request();
        assert_eq!(h.snapshot("", Instant::now()).outstanding, 2);
        drop(a);
        drop(b);
        assert_eq!(h.snapshot("", Instant::now()).outstanding, 0);
    }
}
