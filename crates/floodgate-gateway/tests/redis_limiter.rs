//! The Redis limiter's script against a real Redis: GCRA bursts, all-or-nothing
//! refusals across buckets, and settling. Needs a Redis server at
//! `$FLOODGATE_TEST_REDIS_URL`; reported as ignored, with the reason, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;
use std::time::Duration;

use floodgate_gateway::limits::{Charge, Limiter, Quota, RedisLimiter, Verdict};
use floodgate_test_support::needs::{self, trial};

fn main() -> ExitCode {
    needs::run(vec![trial(
        "script_admits_the_burst_refuses_atomically_and_settles",
        needs::redis(),
        |url| block_on(script_admits_the_burst_refuses_atomically_and_settles(url)),
    )])
}

fn block_on<F: std::future::Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

fn charge(bucket: &str, per_second: f64, burst: f64, amount: f64) -> Charge {
    Charge {
        bucket: bucket.into(),
        quota: Quota { per_second, burst },
        amount,
    }
}

async fn script_admits_the_burst_refuses_atomically_and_settles(url: String) {
    let l = RedisLimiter::new(&url, Duration::from_secs(2)).unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let key = format!("t:{tag}:key");
    let tenant = format!("t:{tag}:tenant");
    for i in 0..3 {
        match l.acquire(&[charge(&key, 0.01, 3.0, 1.0)]).await.unwrap() {
            Verdict::Admitted(s) => assert_eq!(s[0].remaining, 2.0 - i as f64),
            v => panic!("{v:?}"),
        }
    }
    match l.acquire(&[charge(&key, 0.01, 3.0, 1.0)]).await.unwrap() {
        Verdict::Limited {
            index: 0,
            retry_after,
        } => {
            assert!((99.0..=101.0).contains(&retry_after), "{retry_after}")
        }
        v => panic!("{v:?}"),
    }
    // A refusal by the second bucket charges neither.
    assert!(matches!(
        l.acquire(&[charge(&tenant, 0.01, 2.0, 2.0)]).await.unwrap(),
        Verdict::Admitted(_)
    ));
    let other = format!("t:{tag}:other");
    assert!(matches!(
        l.acquire(&[
            charge(&other, 0.01, 1.0, 1.0),
            charge(&tenant, 0.01, 2.0, 1.0)
        ])
        .await
        .unwrap(),
        Verdict::Limited { index: 1, .. }
    ));
    assert!(matches!(
        l.acquire(&[charge(&other, 0.01, 1.0, 1.0)]).await.unwrap(),
        Verdict::Admitted(_)
    ));
    // Settling gives units back.
    l.adjust(&[charge(&key, 0.01, 3.0, -2.0)]).await.unwrap();
    assert!(matches!(
        l.acquire(&[charge(&key, 0.01, 3.0, 2.0)]).await.unwrap(),
        Verdict::Admitted(_)
    ));
    assert!(matches!(
        l.acquire(&[charge(&key, 0.01, 3.0, 4.0)]).await.unwrap(),
        Verdict::Limited { retry_after, .. } if retry_after.is_infinite()
    ));
}
