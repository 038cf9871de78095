//! The Redis limiter's script against a real Redis: GCRA bursts, all-or-nothing
//! refusals across buckets, and settling. Needs a Redis server at
//! `$FLOODGATE_TEST_REDIS_URL`; reported as ignored, with the reason, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;
use std::time::Duration;

use floodgate_gateway::limits::{Charge, Limiter, Quota, RedisLimiter, Verdict};
use floodgate_test_support::needs::{self, trial};

fn main() -> ExitCode {
    needs::run(vec![
        trial(
            "script_admits_the_burst_refuses_atomically_and_settles",
            needs::redis(),
            |url| block_on(script_admits_the_burst_refuses_atomically_and_settles(url)),
        ),
        trial(
            "a_budget_ledger_lost_by_redis_is_seeded_again_from_the_store",
            needs::redis(),
            |url| block_on(a_lost_budget_ledger_is_seeded_again(url)),
        ),
    ])
}

/// Redis loses a key's spend mid-period (here: the key is deleted, as a restart
/// without persistence would): the next reservation reads the store again instead of
/// starting from zero, and a settlement of the lost key does not recreate it.
async fn a_lost_budget_ledger_is_seeded_again(url: String) {
    use floodgate_gateway::budget::{Budgets, Reserved};
    let budgets = Budgets::redis(&url, Duration::from_secs(2)).unwrap();
    let key = format!("floodgate:budget:t-{}:total", uuid::Uuid::new_v4().simple());
    let reads = std::sync::atomic::AtomicUsize::new(0);
    // A store read counts when the reservation awaits it.
    let store = |spent: f64| {
        let reads = &reads;
        async move {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            spent
        }
    };
    // Seeded once from the store ($0.40 spent), then $0.10 reserved and settled at $0.05.
    let r = budgets
        .reserve(&key, 600, 1.0, 0.1, store(0.4))
        .await
        .unwrap();
    assert_eq!(r, Reserved::Ok { spent_before: 0.4 });
    budgets.adjust(&key, -0.05).await.unwrap();
    let r = budgets
        .reserve(&key, 600, 1.0, 0.1, store(9.9))
        .await
        .unwrap();
    assert!(
        matches!(r, Reserved::Ok { spent_before } if (spent_before - 0.45).abs() < 1e-9),
        "{r:?}"
    );
    assert_eq!(
        reads.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "seeded once"
    );
    // Redis loses the key; a settlement arriving now must not recreate it at -0.1.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    budgets.adjust(&key, -0.1).await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "a settlement does not recreate a lost key");
    // The next reservation seeds again from the store: $0.95 spent, so $0.10 more is
    // admitted and the one after is refused.
    let r = budgets
        .reserve(&key, 600, 1.0, 0.1, store(0.95))
        .await
        .unwrap();
    assert!(
        matches!(r, Reserved::Ok { spent_before } if (spent_before - 0.95).abs() < 1e-9),
        "{r:?}"
    );
    assert_eq!(
        reads.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "seeded again"
    );
    let r = budgets
        .reserve(&key, 600, 1.0, 0.1, store(0.0))
        .await
        .unwrap();
    assert!(matches!(r, Reserved::Exceeded { .. }), "{r:?}");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
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
