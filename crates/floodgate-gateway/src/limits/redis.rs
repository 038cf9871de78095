//! Buckets in Redis, shared by every gateway that points at the same server.
//!
//! One call is one `EVALSHA` of a Lua script that checks every bucket and then charges
//! all or none: a single round trip, atomic because Redis runs scripts one at a time.
//! The clock is Redis's own `TIME`, so gateways with skewed clocks still agree.
//! TATs are stored as integer microseconds with a TTL of when the bucket is full again,
//! so idle buckets cost no memory.
//!
//! The connection is made on first use and re-made after failures, in the background
//! (`crate::redis_conn`); every call is bounded by `timeout`, after which the limiter
//! reports itself unavailable and the caller applies the configured fail-open or
//! fail-closed policy.

use std::time::Duration;

use crate::redis_conn::RedisConn;

use super::{BucketState, Charge, Limiter, LimiterError, Verdict};

/// ARGV[1] = mode, then per key: interval µs per unit, burst, amount.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local n = #KEYS
local tats = {}
local out = {1}
for i = 1, n do
  local interval = tonumber(ARGV[2 + (i - 1) * 3])
  local burst = tonumber(ARGV[3 + (i - 1) * 3])
  local amount = tonumber(ARGV[4 + (i - 1) * 3])
  local tat = tats[KEYS[i]] or tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + amount * interval
  if mode == 'acquire' then
    if amount > burst then return {0, i, -1} end
    local ahead = new_tat - now
    local tau = burst * interval
    if ahead > tau + 1 then return {0, i, math.ceil((ahead - tau) / 1000)} end
    table.insert(out, math.floor((tau - ahead) / interval + 1e-9))
    table.insert(out, math.ceil(ahead / 1000))
  else
    if new_tat < now then new_tat = now end
  end
  tats[KEYS[i]] = new_tat
end
for key, tat in pairs(tats) do
  local ttl = math.ceil((tat - now) / 1000) + 1000
  redis.call('SET', key, string.format('%.0f', tat), 'PX', ttl)
end
return out
"#;

pub struct RedisLimiter {
    conn: RedisConn,
    script: redis::Script,
    timeout: Duration,
    prefix: String,
}

impl RedisLimiter {
    /// Does not connect yet: a gateway must start even while Redis is down.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, LimiterError> {
        let client =
            redis::Client::open(url).map_err(|e| LimiterError::Unavailable(e.to_string()))?;
        Ok(Self {
            conn: RedisConn::new(client, timeout),
            script: redis::Script::new(SCRIPT),
            timeout,
            prefix: "floodgate:rl:".into(),
        })
    }

    async fn run(&self, mode: &str, charges: &[Charge]) -> Result<Vec<i64>, LimiterError> {
        let call = async {
            let mut conn = self.conn.get().await.map_err(LimiterError::Unavailable)?;
            let mut inv = self.script.prepare_invoke();
            inv.arg(mode);
            for c in charges {
                inv.key(format!("{}{}", self.prefix, c.bucket));
                inv.arg(c.quota.interval() * 1e6)
                    .arg(c.quota.burst)
                    .arg(c.amount);
            }
            let out: Result<Vec<i64>, _> = inv.invoke_async(&mut conn).await;
            if out.is_err() {
                // Reconnect from scratch next time: a dead server is not waited on twice.
                self.conn.failed();
            }
            out.map_err(|e| LimiterError::Unavailable(e.to_string()))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                self.conn.failed();
                LimiterError::Unavailable(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                ))
            })?
    }
}

#[async_trait::async_trait]
impl Limiter for RedisLimiter {
    async fn acquire(&self, charges: &[Charge]) -> Result<Verdict, LimiterError> {
        let out = self.run("acquire", charges).await?;
        match out.as_slice() {
            [0, index, retry_ms] => Ok(Verdict::Limited {
                index: (*index as usize).saturating_sub(1),
                retry_after: if *retry_ms < 0 {
                    f64::INFINITY
                } else {
                    *retry_ms as f64 / 1000.0
                },
            }),
            [1, rest @ ..] if rest.len() == 2 * charges.len() => Ok(Verdict::Admitted(
                rest.chunks(2)
                    .map(|p| BucketState {
                        remaining: p[0] as f64,
                        reset_seconds: p[1] as f64 / 1000.0,
                    })
                    .collect(),
            )),
            other => Err(LimiterError::Unavailable(format!(
                "unexpected script reply {other:?}"
            ))),
        }
    }

    async fn adjust(&self, charges: &[Charge]) -> Result<(), LimiterError> {
        self.run("adjust", charges).await.map(|_| ())
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

// The script against a real Redis is tested in `tests/redis_limiter.rs`, which is
// reported as ignored when no Redis is configured.
#[cfg(test)]
mod tests {
    use super::super::Quota;
    use super::*;

    fn charge(bucket: &str, per_second: f64, burst: f64, amount: f64) -> Charge {
        Charge {
            bucket: bucket.into(),
            quota: Quota { per_second, burst },
            amount,
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_reported_not_waited_on() {
        // Nothing listens on port 1.
        let l = RedisLimiter::new("redis://127.0.0.1:1", Duration::from_millis(300)).unwrap();
        let started = std::time::Instant::now();
        let r = l.acquire(&[charge("x", 1.0, 1.0, 1.0)]).await;
        assert!(matches!(r, Err(LimiterError::Unavailable(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
