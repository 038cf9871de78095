//! The store contract, once for each backend: every test runs against SQLite (a fresh
//! file) and against PostgreSQL (a fresh schema in `$FLOODGATE_TEST_POSTGRES_URL`,
//! dropped afterwards; reported as ignored, with the reason, without the variable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_gateway::auth::{create_key, Auth, Caller, NewKey, Scope};
use floodgate_gateway::config::BudgetPeriod;
use floodgate_gateway::error::GatewayError;
use floodgate_gateway::feedback::FeedbackItem;
use floodgate_gateway::records::stats::{bucket_bound, bucket_of, Totals};
use floodgate_gateway::records::{
    AdminAction, AdminRecord, DecisionRecord, RouteDecision, TierRun,
};
use floodgate_gateway::store::Stores;
use floodgate_test_support::needs::{self, trial};
use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Where a test's stores live; `open` may be called more than once (two gateways).
#[derive(Clone)]
enum Db {
    Sqlite(PathBuf),
    Postgres(Box<PgConnectOptions>),
}

impl Db {
    async fn open(&self) -> Stores {
        match self {
            Db::Sqlite(path) => Stores::open_sqlite(path, 4).await.unwrap(),
            Db::Postgres(options) => Stores::open_postgres(options.as_ref().clone(), 4)
                .await
                .unwrap(),
        }
    }
}

type Test = fn(Db) -> BoxFuture<'static, ()>;

macro_rules! suite {
    ($($name:ident),+ $(,)?) => {
        vec![$((stringify!($name), (|db| $name(db).boxed()) as Test)),+]
    };
}

fn main() -> ExitCode {
    let tests = suite![
        keys_insert_find_list_revoke_and_move_the_epoch,
        a_replayed_event_is_stored_and_counted_once,
        admin_records_are_stored_once_and_listed_in_time_order,
        a_batch_stores_each_new_event_once_and_counts_its_usage_once,
        client_request_ids_may_repeat_without_losing_records,
        usage_adds_up_per_day_key_route_model_and_budgets_read_their_period,
        route_records_carry_their_weighted_feedback_rating,
        feedback_counts_fingerprints_quarantine_and_history,
        opening_twice_migrates_once,
        two_gateways_share_keys_and_see_a_revocation_within_a_second,
        per_minute_stats_count_each_event_once_and_give_percentiles_within_a_bucket,
    ];
    let mut trials = Vec::new();
    for (name, test) in tests {
        trials.push(trial(&format!("sqlite::{name}"), Ok(()), move |()| {
            on_sqlite(test)
        }));
        trials.push(trial(
            &format!("postgres::{name}"),
            needs::postgres(),
            move |url| on_postgres(&url, test),
        ));
    }
    trials.push(trial(
        "sqlite::an_older_database_upgrades_in_place",
        Ok(()),
        |()| block_on(an_older_database_upgrades_in_place()),
    ));
    needs::run(trials)
}

fn block_on<F: std::future::Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

fn on_sqlite(test: Test) {
    let dir = tempfile::tempdir().unwrap();
    block_on(test(Db::Sqlite(dir.path().join("state.db"))));
}

/// Runs `test` in a schema of its own (other test processes share the database), and
/// drops the schema whatever the outcome.
fn on_postgres(url: &str, test: Test) {
    block_on(async move {
        let base = PgConnectOptions::from_str(url).unwrap();
        let mut admin = base.connect().await.unwrap();
        let schema = format!("floodgate_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let options = base.options([("search_path", schema.as_str())]);
        let outcome = AssertUnwindSafe(test(Db::Postgres(Box::new(options))))
            .catch_unwind()
            .await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}

// 2023-11-14 22:13:20 UTC.
const DAY1: i64 = 1_700_000_000;

fn record(event: &str, client_id: &str, key: &str, at: i64, runs: Vec<TierRun>) -> DecisionRecord {
    DecisionRecord {
        event_id: event.into(),
        request_id: client_id.into(),
        key_id: key.into(),
        tenant: "t".into(),
        created_at: at,
        requested: "auto".into(),
        served_by: runs.last().map(|r| r.model.clone()).unwrap_or_default(),
        route: Some(RouteDecision {
            route: "auto".into(),
            ..RouteDecision::default()
        }),
        cost_usd: runs.iter().map(|r| r.cost_usd).sum(),
        runs,
        guard: vec![],
        status: "completed".into(),
        latency_ms: 12.0,
        endpoint: "POST /v1/chat/completions".into(),
        http_status: 200,
        time_to_first_token_ms: Some(4.0),
        ..DecisionRecord::default()
    }
}

fn run(model: &str, cost: f64, served: bool) -> TierRun {
    TierRun {
        model: model.into(),
        prompt_tokens: 10,
        completion_tokens: 5,
        compute_seconds: 0.5,
        cost_usd: cost,
        served,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn per_minute_stats_count_each_event_once_and_give_percentiles_within_a_bucket(db: Db) {
    let records = db.open().await.records;
    let minute = DAY1 - DAY1.rem_euclid(60);
    // 200 answered requests over two minutes, latencies 10..=2000 ms, TTFT a tenth;
    // every tenth escalated; plus refusals and one failure.
    let mut batch = Vec::new();
    let mut latencies = Vec::new();
    for i in 0..200u32 {
        let latency = 10.0 * f64::from(i + 1);
        latencies.push(latency);
        let mut r = record(
            &format!("evt_s{i}"),
            "",
            "key_a",
            minute + i64::from(i % 2) * 60 + 5,
            vec![run("small@v1", 0.001, true)],
        );
        r.latency_ms = latency;
        r.time_to_first_token_ms = Some(latency / 10.0);
        if let Some(route) = r.route.as_mut() {
            route.escalated = i % 10 == 0;
        }
        batch.push(r);
    }
    for i in 0..5 {
        let mut r = record(&format!("evt_r{i}"), "", "key_a", minute + 10, vec![]);
        r.route = None;
        r.served_by = String::new();
        r.requested = "made-up".into();
        r.http_status = 429;
        r.status = "refused: abuse_throttled".into();
        r.error_code = Some("abuse_throttled".into());
        r.time_to_first_token_ms = None;
        batch.push(r);
    }
    let mut failed = record(
        "evt_f",
        "",
        "key_a",
        minute + 70,
        vec![run("small@v1", 0.0, true)],
    );
    failed.http_status = 502;
    failed.status = "refused: upstream_error".into();
    batch.push(failed);
    assert_eq!(records.put_batch(&batch).await.unwrap(), 206);
    // Replays, as a batch and one by one, count nothing.
    assert_eq!(records.put_batch(&batch).await.unwrap(), 0);
    assert!(!records.put(&batch[3]).await.unwrap());

    let rows = records.stats_since(minute, minute + 120).await.unwrap();
    let key =
        |r: &floodgate_gateway::records::MinuteStats| (r.minute, r.route.clone(), r.model.clone());
    let keys: Vec<_> = rows.iter().map(key).collect();
    assert_eq!(
        keys,
        vec![
            (
                minute,
                "/v1/chat/completions".to_string(),
                "_refused".to_string()
            ),
            (minute, "auto".into(), "small@v1".into()),
            (minute + 60, "auto".into(), "small@v1".into()),
        ]
    );
    let mut answered = Totals::default();
    for r in rows.iter().filter(|r| r.model == "small@v1") {
        answered.add(&r.totals);
    }
    assert_eq!(answered.requests, 201);
    assert_eq!(answered.errors, 1);
    assert_eq!(answered.escalated, 20);
    assert_eq!(answered.prompt_tokens, 201 * 10);
    assert_eq!(answered.completion_tokens, 201 * 5);
    assert!(close(answered.cost_usd, 0.2));
    let refused = &rows[0].totals;
    assert_eq!(
        (refused.requests, refused.refused, refused.abuse_refused),
        (5, 5, 5)
    );
    // Percentiles from the summed buckets land in the bucket of the exact value.
    latencies.push(12.0); // the failed request's
    latencies.sort_by(f64::total_cmp);
    for q in [0.5, 0.95, 0.99] {
        let exact = latencies[((q * latencies.len() as f64).ceil() as usize).max(1) - 1];
        let b = bucket_of(exact);
        let lower = if b == 0 { 0.0 } else { bucket_bound(b - 1) };
        let got = answered.latency_ms(q).unwrap();
        assert!(
            got >= lower * 0.999 && got <= bucket_bound(b) * 1.001,
            "p{q}: {got} vs {exact}"
        );
    }
    let ttft_p50 = answered.ttft_ms(0.5).unwrap();
    assert!((60.0..=170.0).contains(&ttft_p50), "{ttft_p50}");

    // Only the window asked for, and pruning drops what is older.
    assert_eq!(
        records
            .stats_since(minute + 60, minute + 120)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(records.prune_stats(minute + 60).await.unwrap(), 2);
    assert_eq!(records.stats_since(0, i64::MAX).await.unwrap().len(), 1);
}

async fn keys_insert_find_list_revoke_and_move_the_epoch(db: Db) {
    let keys = db.open().await.keys;
    let e0 = keys.epoch().await.unwrap();
    let created = create_key(
        keys.as_ref(),
        NewKey {
            name: "n".into(),
            tenant: "acme".into(),
            scopes: vec![Scope::Inference, Scope::Admin],
            budget_usd: Some(5.0),
            ..NewKey::default()
        },
    )
    .await
    .unwrap();
    let e1 = keys.epoch().await.unwrap();
    assert!(e1 > e0);
    let (found, hash) = keys
        .find_by_prefix(&created.record.prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created.record);
    assert_ne!(hash, [0; 32]);
    assert!(keys.find_by_prefix("fg-nothing").await.unwrap().is_none());
    assert_eq!(keys.list().await.unwrap(), vec![created.record.clone()]);
    assert!(keys.revoke(&created.record.id, 7).await.unwrap());
    let e2 = keys.epoch().await.unwrap();
    assert!(e2 > e1);
    // Nothing changed: the counter stays.
    assert!(!keys.revoke(&created.record.id, 8).await.unwrap());
    assert!(!keys.revoke("key_nope", 8).await.unwrap());
    assert_eq!(keys.epoch().await.unwrap(), e2);
    assert_eq!(keys.list().await.unwrap()[0].revoked_at, Some(7));
}

async fn a_replayed_event_is_stored_and_counted_once(db: Db) {
    let records = db.open().await.records;
    let r = record("evt-1", "req-1", "k1", DAY1, vec![run("small", 0.01, true)]);
    assert!(records.put(&r).await.unwrap());
    assert!(!records.put(&r).await.unwrap());
    assert_eq!(records.get("evt-1").await.unwrap().unwrap(), r);
    let rows = records.usage_since("2023-11-14").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].requests, 1);
    assert_eq!(rows[0].prompt_tokens, 10);
    assert!(close(rows[0].cost_usd, 0.01));
    // A record without an event id is refused rather than stored under "".
    assert!(records
        .put(&record("", "x", "k1", DAY1, vec![]))
        .await
        .is_err());
}

async fn a_batch_stores_each_new_event_once_and_counts_its_usage_once(db: Db) {
    let records = db.open().await.records;
    let old = record("evt-old", "", "k1", DAY1, vec![run("small", 0.01, true)]);
    assert!(records.put(&old).await.unwrap());
    // More than one statement's worth of rows, an event twice within the batch, and one
    // already stored: 1,200 new records.
    let mut batch: Vec<DecisionRecord> = (0..1_200)
        .map(|i| {
            record(
                &format!("evt-{i}"),
                "",
                "k1",
                DAY1,
                vec![run("small", 0.01, true)],
            )
        })
        .collect();
    batch.insert(600, batch[3].clone());
    batch.push(old.clone());
    assert_eq!(records.put_batch(&batch).await.unwrap(), 1_200);
    assert_eq!(
        records.put_batch(&batch).await.unwrap(),
        0,
        "a replayed batch"
    );
    let rows = records.usage_since("2023-11-14").await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].requests, 1_201);
    assert!(close(rows[0].cost_usd, 12.01), "{}", rows[0].cost_usd);
    assert_eq!(
        records.get("evt-1199").await.unwrap().unwrap(),
        batch[1_200]
    );
}

fn admin(event: &str, time_ms: i64, action: &str, target: &str) -> AdminRecord {
    AdminRecord {
        event_id: event.into(),
        time_ms,
        origin: "test".into(),
        action: AdminAction {
            action: action.into(),
            actor: "key_admin".into(),
            target: target.into(),
            detail: serde_json::json!({ "weight": 3, "scopes": ["inference"] }),
        },
    }
}

async fn admin_records_are_stored_once_and_listed_in_time_order(db: Db) {
    let records = db.open().await.records;
    let created = admin("evt-a1", 1_000, "key.created", "key_1");
    let revoked = admin("evt-a2", 3_000, "key.revoked", "key_1");
    let weighted = admin("evt-a3", 2_000, "model.updated", "m@v1");
    assert_eq!(
        records
            .put_admin(&[created.clone(), revoked.clone()])
            .await
            .unwrap(),
        2
    );
    // A replay (the same event again, in a batch with a new one) stores only the new one.
    assert_eq!(
        records
            .put_admin(&[revoked.clone(), weighted.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        records.admin_since(0, 100).await.unwrap(),
        vec![created, weighted.clone(), revoked.clone()]
    );
    assert_eq!(
        records.admin_since(1_500, 100).await.unwrap(),
        vec![weighted, revoked]
    );
    assert_eq!(records.admin_since(0, 1).await.unwrap().len(), 1);
}

async fn client_request_ids_may_repeat_without_losing_records(db: Db) {
    let records = db.open().await.records;
    let first = record("evt-a", "same", "k1", DAY1, vec![run("small", 0.01, true)]);
    let second = record("evt-b", "same", "k2", DAY1, vec![run("large", 0.1, true)]);
    assert!(records.put(&first).await.unwrap());
    assert!(records.put(&second).await.unwrap());
    assert_eq!(records.get("evt-a").await.unwrap().unwrap(), first);
    assert_eq!(records.get("evt-b").await.unwrap().unwrap(), second);
    // By the client's id: the latest (same second: the later write).
    assert_eq!(records.get("same").await.unwrap().unwrap(), second);
    let later = record("evt-c", "same", "k1", DAY1 + 5, vec![]);
    assert!(records.put(&later).await.unwrap());
    assert_eq!(records.get("same").await.unwrap().unwrap(), later);
    assert!(records.get("nope").await.unwrap().is_none());
    // Records without a client id are found by event id only.
    let anonymous = record("evt-d", "", "k1", DAY1 + 9, vec![]);
    assert!(records.put(&anonymous).await.unwrap());
    assert!(records.get("").await.unwrap().is_none());
    assert_eq!(records.get("evt-d").await.unwrap().unwrap(), anonymous);
    let rows = records.usage_since("2023-11-14").await.unwrap();
    assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 2);
}

async fn usage_adds_up_per_day_key_route_model_and_budgets_read_their_period(db: Db) {
    let records = db.open().await.records;
    let day2 = DAY1 + 86_400;
    let last_month = DAY1 - 20 * 86_400;
    let escalated = vec![run("small", 0.01, false), run("large", 0.10, true)];
    for r in [
        record("a", "", "k1", DAY1, escalated),
        record("b", "", "k1", DAY1, vec![run("small", 0.01, true)]),
        record("c", "", "k1", day2, vec![run("small", 0.02, true)]),
        record("d", "", "k1", last_month, vec![run("large", 1.0, true)]),
        record("e", "", "k2", DAY1, vec![run("large", 5.0, true)]),
    ] {
        assert!(records.put(&r).await.unwrap());
    }
    let rows = records.usage_since("2023-11-14").await.unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let small_day1 = rows
        .iter()
        .find(|r| r.day == "2023-11-14" && r.key_id == "k1" && r.model == "small")
        .unwrap();
    // The escalated request's small run costs but is not counted as a request.
    assert_eq!(small_day1.requests, 1);
    assert!(close(small_day1.cost_usd, 0.02));
    assert_eq!(small_day1.prompt_tokens, 20);
    assert_eq!(small_day1.completion_tokens, 10);
    assert!(close(small_day1.compute_seconds, 1.0));
    assert_eq!(
        (small_day1.tenant.as_str(), small_day1.route.as_str()),
        ("t", "auto")
    );
    let spent = |period| {
        let records = Arc::clone(&records);
        async move { records.spent("k1", period, day2).await.unwrap() }
    };
    assert!(close(spent(BudgetPeriod::Day).await, 0.02));
    assert!(close(spent(BudgetPeriod::Month).await, 0.14));
    assert!(close(spent(BudgetPeriod::Total).await, 1.14));
    let nobody = records.spent("nobody", BudgetPeriod::Month, day2).await;
    assert_eq!(nobody.unwrap(), 0.0);
    // Recent usage is counted back from today: these 2023 rows are long gone.
    assert!(records.usage_recent(7).await.unwrap().is_empty());
    let now = floodgate_gateway::clock::unix_secs();
    assert!(records
        .put(&record("f", "", "k1", now, vec![run("small", 0.5, true)]))
        .await
        .unwrap());
    assert_eq!(records.usage_recent(1).await.unwrap().len(), 1);
    assert!(close(
        records.spent("k1", BudgetPeriod::Day, now).await.unwrap(),
        0.5
    ));
}

fn feedback(id: &str, request: &str, key: &str, rating: i8, weight: f64, at: i64) -> FeedbackItem {
    FeedbackItem {
        id: id.into(),
        request_id: request.into(),
        key_id: key.into(),
        rating,
        correction: None,
        comment: None,
        weight,
        status: "accepted".into(),
        reason: None,
        created_at: at,
    }
}

async fn route_records_carry_their_weighted_feedback_rating(db: Db) {
    let stores = db.open().await;
    let rated = record("e1", "req-1", "k1", DAY1, vec![run("small", 0.01, true)]);
    let unrated = record(
        "e2",
        "req-2",
        "k1",
        DAY1 + 1,
        vec![run("small", 0.01, true)],
    );
    // A request that named a model version directly (no route decision).
    let mut direct = record("e3", "req-3", "k1", DAY1 + 2, vec![]);
    direct.route = None;
    direct.requested = "chat@2".into();
    for r in [&rated, &unrated, &direct] {
        assert!(stores.records.put(r).await.unwrap());
    }
    let f = &stores.feedback;
    // Feedback names a request by its event id.
    f.insert(&feedback("f1", "e1", "k1", 1, 1.0, DAY1), None)
        .await
        .unwrap();
    f.insert(&feedback("f2", "e1", "k2", -1, 0.5, DAY1), None)
        .await
        .unwrap();
    // One naming the client's id rates nothing (that id may be reused).
    f.insert(&feedback("f4", "req-2", "k2", -1, 1.0, DAY1), None)
        .await
        .unwrap();
    let mut ignored = feedback("f3", "e1", "k3", -1, 1.0, DAY1);
    ignored.status = "quarantined".into();
    f.insert(&ignored, None).await.unwrap();
    let by_route = stores.records.route_records("auto", 0).await.unwrap();
    assert_eq!(by_route.len(), 2);
    assert_eq!(by_route[0].0, rated);
    // (1 × 1.0 − 1 × 0.5) / 1.5, the quarantined item left out.
    assert!(
        close(by_route[0].1.unwrap(), 1.0 / 3.0),
        "{:?}",
        by_route[0].1
    );
    assert_eq!(by_route[1], (unrated, None));
    assert_eq!(
        stores.records.route_records("chat", 0).await.unwrap(),
        vec![(direct.clone(), None)]
    );
    assert_eq!(
        stores
            .records
            .route_records("chat@2", 0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(stores
        .records
        .route_records("other", 0)
        .await
        .unwrap()
        .is_empty());
    assert!(stores
        .records
        .route_records("auto", DAY1 + 100)
        .await
        .unwrap()
        .is_empty());
}

async fn feedback_counts_fingerprints_quarantine_and_history(db: Db) {
    let f = db.open().await.feedback;
    let mut with_correction = feedback("f1", "req-1", "k1", 1, 0.5, DAY1);
    with_correction.correction = Some("Paris".into());
    with_correction.comment = Some("fine".into());
    f.insert(&with_correction, Some("fp-paris")).await.unwrap();
    f.insert(&feedback("f2", "req-1", "k1", -1, 0.5, DAY1 + 10), None)
        .await
        .unwrap();
    f.insert(
        &feedback("f3", "req-2", "k2", 0, 0.5, DAY1 + 20),
        Some("fp-paris"),
    )
    .await
    .unwrap();
    let mut ratings = f.ratings_of("k1", "req-1").await.unwrap();
    ratings.sort();
    assert_eq!(ratings, vec![-1, 1]);
    assert!(f.ratings_of("k2", "req-1").await.unwrap().is_empty());
    assert_eq!(f.count_since("k1", DAY1).await.unwrap(), 2);
    assert_eq!(f.count_since("k1", DAY1 + 5).await.unwrap(), 1);
    assert_eq!(f.count_since("k9", 0).await.unwrap(), 0);
    let mut same = f.with_fingerprint("fp-paris", DAY1).await.unwrap();
    same.sort();
    assert_eq!(
        same,
        vec![("f1".into(), "k1".into()), ("f3".into(), "k2".into())]
    );
    assert_eq!(
        f.with_fingerprint("fp-paris", DAY1 + 15)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(f.history("k1").await.unwrap(), (2, 0));
    f.quarantine(&["f1".into(), "f3".into()], "campaign")
        .await
        .unwrap();
    assert_eq!(f.history("k1").await.unwrap(), (1, 1));
    assert_eq!(f.history("k2").await.unwrap(), (0, 1));
    assert_eq!(f.history("k9").await.unwrap(), (0, 0));
    let quarantined = f.list(Some("quarantined")).await.unwrap();
    let mut expected = with_correction.clone();
    expected.status = "quarantined".into();
    expected.reason = Some("campaign".into());
    assert_eq!(quarantined.len(), 2);
    assert_eq!(quarantined[0], expected);
    let all = f.list(None).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["f1", "f2", "f3"]);
}

async fn opening_twice_migrates_once(db: Db) {
    let first = db.open().await;
    let created = create_key(first.keys.as_ref(), NewKey::default())
        .await
        .unwrap();
    let again = db.open().await;
    assert_eq!(again.keys.list().await.unwrap(), vec![created.record]);
}

async fn identified(auth: &Auth, key: &str) -> Result<Caller, GatewayError> {
    auth.identify(Some(key)).await
}

/// A gateway's identity stage over its own connection to the store, as `serve` builds it.
async fn gateway(db: &Db) -> Arc<Auth> {
    let auth = Arc::new(Auth::new(db.open().await.keys, true));
    auth.spawn_refresh(Duration::from_millis(250), Duration::from_secs(300));
    auth
}

async fn two_gateways_share_keys_and_see_a_revocation_within_a_second(db: Db) {
    let (a, b) = (gateway(&db).await, gateway(&db).await);
    let created = create_key(
        a.store.as_ref(),
        NewKey {
            tenant: "acme".into(),
            scopes: vec![Scope::Inference],
            ..NewKey::default()
        },
    )
    .await
    .unwrap();
    for auth in [&a, &b] {
        let caller = identified(auth, &created.key).await.unwrap();
        assert_eq!(caller.tenant(), "acme");
    }
    // A wrong key is refused, and refused again from the cache.
    let mut wrong = created.key.clone();
    let last = if wrong.pop() == Some('x') { 'y' } else { 'x' };
    wrong.push(last);
    for _ in 0..2 {
        assert!(matches!(
            identified(&b, &wrong).await,
            Err(GatewayError::Unauthorized(_))
        ));
    }
    assert!(a.store.revoke(&created.record.id, 1).await.unwrap());
    let revoked_at = Instant::now();
    loop {
        match identified(&b, &created.key).await {
            Err(GatewayError::Unauthorized(_)) => break,
            Ok(_) => assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "the other gateway still accepts a key revoked {:?} ago",
                revoked_at.elapsed()
            ),
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
}

/// A state database written before versioned migrations (records keyed by the client's
/// request id, no change counter) is upgraded when opened, its records kept.
async fn an_older_database_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = record("", "req-old", "k1", DAY1, vec![run("small", 0.01, true)]);
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut conn = options.connect().await.unwrap();
        sqlx::query(
            "CREATE TABLE decisions (request_id TEXT PRIMARY KEY, key_id TEXT NOT NULL,
                                     created_at INTEGER NOT NULL, record TEXT NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let mut json = serde_json::to_value(&old).unwrap();
        json.as_object_mut().unwrap().remove("event_id");
        sqlx::query("INSERT INTO decisions VALUES ('req-old', 'k1', ?, ?)")
            .bind(DAY1)
            .bind(json.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let stores = Stores::open_sqlite(&path, 2).await.unwrap();
    let mut expected = old.clone();
    expected.event_id = "req-old".into();
    assert_eq!(
        stores.records.get("req-old").await.unwrap().unwrap(),
        expected
    );
    assert_eq!(
        stores.records.route_records("auto", 0).await.unwrap(),
        vec![(expected, None)]
    );
    assert_eq!(stores.keys.epoch().await.unwrap(), 0);
}
