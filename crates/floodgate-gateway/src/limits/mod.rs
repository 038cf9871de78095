//! Rate limiters: GCRA buckets behind one trait, in memory or in Redis.
//!
//! GCRA keeps one number per bucket, the theoretical arrival time (TAT): the moment the
//! bucket would be empty again if nothing more arrived. A charge of `n` units moves it
//! `n × T` later (`T` = seconds per unit); the charge is admitted when the new TAT is at
//! most `burst × T` ahead of now. That is a token bucket without a refill loop: exact at
//! any rate, O(1) memory per bucket, and the same arithmetic runs in the Redis script.
//!
//! One call charges several buckets (key, IP, tenant × requests, tokens, cost) all or
//! nothing, so a request refused by its tenant's limit does not use up its key's.
//!
//! `governor` implements GCRA too, but one limiter has one quota for all its keys and
//! cannot refund; token limits need per-key quotas and settling (reserve `max_tokens`,
//! return what was not used), so the arithmetic here is our own.

mod memory;
mod redis;

use std::net::IpAddr;

pub use memory::MemoryLimiter;
pub use redis::RedisLimiter;

/// A rate: `per_second` units per second, up to `burst` units at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub per_second: f64,
    pub burst: f64,
}

impl Quota {
    /// `per_minute` units a minute with `burst_seconds` worth of burst (at least 1 unit);
    /// `None` when the rate is 0 (the limit is off).
    pub fn per_minute(per_minute: f64, burst_seconds: f64) -> Option<Quota> {
        (per_minute > 0.0 && per_minute.is_finite()).then(|| Quota {
            per_second: per_minute / 60.0,
            burst: (per_minute / 60.0 * burst_seconds).max(1.0),
        })
    }

    /// Seconds per unit.
    pub fn interval(&self) -> f64 {
        1.0 / self.per_second
    }
}

/// One bucket charged by a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// Bucket name, e.g. `key:key_12ab:tokens`.
    pub bucket: String,
    pub quota: Quota,
    /// Units to take (or, for [`Limiter::adjust`], to take back when negative).
    pub amount: f64,
}

/// What the limiter said about a set of charges.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// All charged. Per charge, in order: units left now, seconds until full again.
    Admitted(Vec<BucketState>),
    /// Nothing charged: charge `index` would overflow; it fits after `retry_after` s.
    /// `retry_after` is infinite when the amount exceeds the bucket's burst.
    Limited { index: usize, retry_after: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    pub remaining: f64,
    pub reset_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    #[error("rate-limit backend unreachable: {0}")]
    Unavailable(String),
}

/// A store of GCRA buckets. Implementations must apply a call's charges atomically.
#[async_trait::async_trait]
pub trait Limiter: Send + Sync {
    /// Charges every bucket, or none if any would overflow.
    async fn acquire(&self, charges: &[Charge]) -> Result<Verdict, LimiterError>;
    /// Settles earlier charges unconditionally: positive amounts take more (a request
    /// that used more than it reserved), negative ones give back.
    async fn adjust(&self, charges: &[Charge]) -> Result<(), LimiterError>;
    fn name(&self) -> &'static str;
}

/// GCRA step for one bucket: the new TAT if `amount` fits at `now`, else the wait.
/// Times are seconds on any common clock.
pub(crate) fn gcra(
    tat: f64,
    now: f64,
    quota: Quota,
    amount: f64,
) -> Result<(f64, BucketState), f64> {
    let t = quota.interval();
    let tau = quota.burst * t;
    if amount > quota.burst {
        return Err(f64::INFINITY);
    }
    let new_tat = tat.max(now) + amount * t;
    let ahead = new_tat - now;
    if ahead > tau + 1e-9 {
        return Err(ahead - tau);
    }
    Ok((
        new_tat,
        BucketState {
            remaining: ((tau - ahead) / t + 1e-9).floor().max(0.0),
            reset_seconds: ahead,
        },
    ))
}

/// Settling: moves the TAT by `amount` units without a check, never before `now`.
pub(crate) fn gcra_adjust(tat: f64, now: f64, quota: Quota, amount: f64) -> f64 {
    (tat.max(now) + amount * quota.interval()).max(now)
}

pub use crate::config::parse_net;

/// The client's address: the peer, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(chain) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in chain.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // A malformed entry ends the chain we can believe.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(per_second: f64, burst: f64) -> Quota {
        Quota { per_second, burst }
    }

    #[test]
    fn a_fresh_bucket_admits_its_burst_then_one_unit_per_interval() {
        let quota = q(2.0, 4.0);
        let mut tat = 0.0;
        for i in 0..4 {
            let (t, s) = gcra(tat, 10.0, quota, 1.0).unwrap();
            tat = t;
            assert_eq!(s.remaining, 3.0 - i as f64);
        }
        let wait = gcra(tat, 10.0, quota, 1.0).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        assert!(gcra(tat, 10.5, quota, 1.0).is_ok());
    }

    #[test]
    fn a_charge_larger_than_the_burst_never_fits() {
        assert_eq!(gcra(0.0, 0.0, q(1.0, 5.0), 6.0), Err(f64::INFINITY));
        assert!(gcra(0.0, 0.0, q(1.0, 5.0), 5.0).is_ok());
    }

    #[test]
    fn settling_gives_back_unused_units_but_not_credit() {
        let quota = q(1.0, 10.0);
        let (tat, _) = gcra(0.0, 100.0, quota, 10.0).unwrap();
        assert!(gcra(tat, 100.0, quota, 1.0).is_err());
        let tat = gcra_adjust(tat, 100.0, quota, -4.0);
        let (_, s) = gcra(tat, 100.0, quota, 4.0).unwrap();
        assert_eq!(s.remaining, 0.0);
        // Refunding more than was taken does not bank capacity beyond the burst.
        assert_eq!(gcra_adjust(tat, 100.0, quota, -1000.0), 100.0);
    }

    #[test]
    fn client_ip_believes_forwarded_for_only_from_trusted_proxies() {
        let trusted = vec![
            parse_net("10.0.0.0/8").unwrap(),
            parse_net("192.168.1.1").unwrap(),
        ];
        let peer: IpAddr = "10.1.2.3".parse().unwrap();
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        let cases = [
            (outsider, Some("1.1.1.1"), "203.0.113.9"),
            (peer, None, "10.1.2.3"),
            (peer, Some("198.51.100.7"), "198.51.100.7"),
            // The client may forge entries to the left; the right-most untrusted wins.
            (
                peer,
                Some("6.6.6.6, 198.51.100.7, 192.168.1.1"),
                "198.51.100.7",
            ),
            (peer, Some("garbage, 10.9.9.9"), "10.9.9.9"),
        ];
        for (peer, xff, want) in cases {
            assert_eq!(client_ip(peer, xff, &trusted).to_string(), want, "{xff:?}");
        }
    }
}
