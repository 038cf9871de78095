//! Key budgets (`budget_usd` per `costs.budget_period`): each key's spend in the
//! current period, held where every gateway sees it.
//!
//! With `ratelimit.backend = "redis"` the spend is one Redis number per key and period,
//! changed only by atomic script calls, so gateways sharing the Redis share the budget;
//! in memory otherwise (one gateway). Admission reserves the request's worst-case token
//! cost before it runs and refuses a key whose spend (reservations included) has reached
//! its budget; settlement corrects the reservation to the real cost. The first time a
//! process meets a key in a period it seeds the number from the record store (what was
//! spent before it started): one store read per key and period, never one per request.
//!
//! If Redis loses its data mid-period (a restart without persistence, a failover to an
//! empty replica, an eviction), the next reservation finds the key missing and seeds it
//! again from the store (`floodgate_budget_reseeded_total`), so spend does not restart
//! at zero; what the store has not yet received (the sinks' lag, reservations in flight)
//! is the only spend forgotten. Settlements of a key that is gone are skipped (the store
//! already counts them). While Redis is unreachable `ratelimit.on_backend_error` decides.
//!
//! Worst-case overshoot: a request is admitted while the spend is below the budget, so
//! the spend can pass it by at most that request's own cost, plus the compute-time cost
//! (not reservable: unknown before the run) of the requests running concurrently.

use std::time::Duration;

use dashmap::DashMap;
use redis::aio::ConnectionManager;

use crate::redis_conn::RedisConn;

use crate::config::BudgetPeriod;
use crate::records::{civil_from_days, days_from_civil};

/// Reserve atomically: seed if absent, refuse at or over the limit, else add.
/// KEYS[1] = spend key; ARGV = seed, ttl seconds, limit, amount. Returns {admitted, spent}.
const RESERVE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[1] == '' then return {2, '0'} end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur >= tonumber(ARGV[3]) then return {0, tostring(cur)} end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[4])
return {1, tostring(cur)}
"#;

/// Settle: correct the spend by ARGV[1], unless the key is gone (Redis lost it: the next
/// reservation seeds it again from the store, which counts this request).
const ADJUST: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
return 1
"#;

#[derive(Debug, thiserror::Error)]
#[error("budget store unreachable: {0}")]
pub struct BudgetUnavailable(String);

/// What a reservation found.
#[derive(Debug, Clone, PartialEq)]
pub enum Reserved {
    /// Admitted; the key had spent this much before.
    Ok { spent_before: f64 },
    /// Refused: the key has spent this much, at or over its budget.
    Exceeded { spent: f64 },
}

/// A reservation to correct at settlement.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub key: String,
    pub reserved: f64,
}

enum Ledger {
    Memory(DashMap<String, f64>),
    Redis {
        conn: Box<RedisConn>,
        script: redis::Script,
        adjust: redis::Script,
        timeout: Duration,
    },
}

pub struct Budgets {
    ledger: Ledger,
    /// Keys (and periods) this process has seeded from the store.
    seeded: DashMap<String, ()>,
}

impl Budgets {
    pub fn memory() -> Self {
        Self {
            ledger: Ledger::Memory(DashMap::new()),
            seeded: DashMap::new(),
        }
    }

    /// Shared through Redis at `url`; connects on first use.
    pub fn redis(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            ledger: Ledger::Redis {
                conn: Box::new(RedisConn::new(redis::Client::open(url)?, timeout)),
                script: redis::Script::new(RESERVE),
                adjust: redis::Script::new(ADJUST),
                timeout,
            },
            seeded: DashMap::new(),
        })
    }

    pub fn from_config(config: &crate::Config) -> anyhow::Result<Self> {
        let r = &config.ratelimit;
        match r.backend {
            crate::config::LimiterBackend::Redis => Self::redis(
                &crate::config::resolve_secret(&r.redis_url)?,
                Duration::from_millis(r.backend_timeout_ms.max(1)),
            ),
            crate::config::LimiterBackend::Memory => Ok(Self::memory()),
        }
    }

    /// The ledger key for `key_id`'s period containing `now`, and seconds until that
    /// period is over (+1 day of slack).
    pub fn period_key(key_id: &str, period: BudgetPeriod, now: i64) -> (String, u64) {
        let days = now.div_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (id, ends) = match period {
            BudgetPeriod::Day => (format!("{y:04}-{m:02}-{d:02}"), (days + 1) * 86_400),
            BudgetPeriod::Month => {
                let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (
                    format!("{y:04}-{m:02}"),
                    days_from_civil(next.0, next.1, 1) * 86_400,
                )
            }
            BudgetPeriod::Total => ("total".to_string(), now + 10 * 365 * 86_400),
        };
        let ttl = u64::try_from(ends - now + 86_400).unwrap_or(86_400);
        (format!("floodgate:budget:{key_id}:{id}"), ttl)
    }

    /// Reserves `amount` against `limit` for the ledger key `key`. `seed` is what the
    /// store says was spent already; it is read only the first time this process
    /// meets `key`.
    pub async fn reserve<F>(
        &self,
        key: &str,
        ttl: u64,
        limit: f64,
        amount: f64,
        seed: F,
    ) -> Result<Reserved, BudgetUnavailable>
    where
        F: std::future::Future<Output = f64>,
    {
        let mut unread = Some(seed);
        let mut seed = None;
        if !self.seeded.contains_key(key) {
            if let Some(read) = unread.take() {
                seed = Some(read.await);
            }
            self.seeded.insert(key.to_string(), ());
        }
        match &self.ledger {
            Ledger::Memory(map) => {
                let mut spent = map.entry(key.to_string()).or_insert(seed.unwrap_or(0.0));
                if *spent >= limit {
                    return Ok(Reserved::Exceeded { spent: *spent });
                }
                let before = *spent;
                *spent += amount;
                Ok(Reserved::Ok {
                    spent_before: before,
                })
            }
            Ledger::Redis { script, .. } => {
                let mut conn = self.connection().await?;
                let (admitted, spent) = loop {
                    let mut inv = script.prepare_invoke();
                    inv.key(key)
                        .arg(seed.map_or_else(String::new, |s| s.to_string()))
                        .arg(ttl)
                        .arg(limit)
                        .arg(amount);
                    let (code, spent): (i64, String) =
                        self.bounded(inv.invoke_async(&mut conn)).await?;
                    if code != 2 {
                        break (code, spent);
                    }
                    // The ledger entry is gone although this process seeded it: Redis
                    // lost its data (a restart without persistence, a failover, an
                    // eviction). Seed it again from the store, or spend would restart
                    // at zero mid-period.
                    metrics::counter!("floodgate_budget_reseeded_total").increment(1);
                    tracing::warn!(
                        key,
                        "budget: the ledger lost this key's spend; seeding it again from the store"
                    );
                    seed = Some(match unread.take() {
                        Some(read) => read.await,
                        None => 0.0,
                    });
                };
                let spent = spent.parse::<f64>().unwrap_or(0.0);
                Ok(if admitted == 1 {
                    Reserved::Ok {
                        spent_before: spent,
                    }
                } else {
                    Reserved::Exceeded { spent }
                })
            }
        }
    }

    /// Corrects a reservation by `delta` (the real cost minus what was reserved).
    pub async fn adjust(&self, key: &str, delta: f64) -> Result<(), BudgetUnavailable> {
        if delta == 0.0 {
            return Ok(());
        }
        match &self.ledger {
            Ledger::Memory(map) => {
                if let Some(mut v) = map.get_mut(key) {
                    *v += delta;
                }
                Ok(())
            }
            Ledger::Redis { adjust, .. } => {
                let mut conn = self.connection().await?;
                let mut inv = adjust.prepare_invoke();
                inv.key(key).arg(delta);
                let _: i64 = self.bounded(inv.invoke_async(&mut conn)).await?;
                Ok(())
            }
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, BudgetUnavailable> {
        let Ledger::Redis { conn, timeout, .. } = &self.ledger else {
            return Err(BudgetUnavailable("not a Redis ledger".into()));
        };
        match tokio::time::timeout(*timeout, conn.get()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(BudgetUnavailable(e)),
            Err(_) => Err(BudgetUnavailable("no connection yet".into())),
        }
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BudgetUnavailable> {
        let (timeout, conn) = match &self.ledger {
            Ledger::Redis { timeout, conn, .. } => (*timeout, Some(conn)),
            Ledger::Memory(_) => (Duration::from_secs(1), None),
        };
        let result = match tokio::time::timeout(timeout, call).await {
            Err(_) => Err(BudgetUnavailable("timed out".into())),
            Ok(r) => r.map_err(|e| BudgetUnavailable(e.to_string())),
        };
        if result.is_err() {
            // Reconnect from scratch next time (crate::redis_conn).
            if let Some(c) = conn {
                c.failed();
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_calendar_periods() {
        // 2026-12-07T14:00:00Z
        let now = 1_796_652_000;
        let (k, ttl) = Budgets::period_key("key_1", BudgetPeriod::Day, now);
        assert_eq!(k, "floodgate:budget:key_1:2026-12-07");
        assert_eq!(ttl, 10 * 3600 + 86_400);
        let (k, _) = Budgets::period_key("key_1", BudgetPeriod::Month, now);
        assert_eq!(k, "floodgate:budget:key_1:2026-12");
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[tokio::test]
    async fn reservations_stop_at_the_limit_and_settle() {
        let b = Budgets::memory();
        let ok = b.reserve("k", 60, 1.0, 0.5, async { 0.25 }).await.unwrap();
        assert_eq!(ok, Reserved::Ok { spent_before: 0.25 });
        // 0.75 spent (reservation included): admitted, once; the seed is read once.
        let ok = b.reserve("k", 60, 1.0, 0.5, async { 99.0 }).await.unwrap();
        assert_eq!(ok, Reserved::Ok { spent_before: 0.75 });
        assert!(matches!(
            b.reserve("k", 60, 1.0, 0.1, async { 0.0 }).await.unwrap(),
            Reserved::Exceeded { .. }
        ));
        // Both cost nothing in the end: the budget is free again.
        b.adjust("k", -1.0).await.unwrap();
        assert!(matches!(
            b.reserve("k", 60, 1.0, 0.1, async { 0.0 }).await.unwrap(),
            Reserved::Ok { .. }
        ));
    }
}
