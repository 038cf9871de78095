//! The dashboard's handlers called directly over a real SQLite store: who gets in, what
//! the cookie says, and that nothing a client chose reaches the page unescaped.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};

use super::session::{Claims, Sessions};
use super::*;
use crate::auth::{create_key, NewKey};
use crate::records::{DecisionRecord, RouteDecision, TierRun};

struct Fixture {
    state: AppState,
    sessions: Arc<Sessions>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::Config::default();
    let stores = crate::store::Stores::open_sqlite(&dir.path().join("state.db"), 2)
        .await
        .unwrap();
    let events = Arc::new(crate::events::Spine::disabled());
    let state = AppState::new(crate::state::Services {
        config: Arc::new(arc_swap::ArcSwap::from_pointee(config.clone())),
        registry: Arc::new(crate::registry::ModelRegistry::new("")),
        metrics: crate::telemetry::recorder(),
        auth: Arc::new(crate::auth::Auth::new(stores.keys, true)),
        admission: Arc::new(crate::admission::Admission::from_config(&config.ratelimit).unwrap()),
        guard: Arc::new(crate::guard::Guard::new(&config, None).unwrap()),
        feedback: stores.feedback,
        routes: Arc::new(crate::cascade::Routes::pending(&config)),
        records: stores.records,
        analytics: stores.analytics,
        budgets: Arc::new(crate::budget::Budgets::memory()),
        events,
    });
    Fixture {
        state,
        sessions: Arc::new(Sessions::with_secret(
            b"a test secret of some length".to_vec(),
        )),
        _dir: dir,
    }
}

async fn key(f: &Fixture, scopes: Vec<Scope>) -> crate::auth::CreatedKey {
    create_key(
        f.state.auth.store.as_ref(),
        NewKey {
            name: "k".into(),
            scopes,
            ..NewKey::default()
        },
    )
    .await
    .unwrap()
}

fn visit(pairs: &[(header::HeaderName, String)]) -> Visit {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("gw:8080"));
    for (k, v) in pairs {
        headers.append(k.clone(), HeaderValue::from_str(v).unwrap());
    }
    Visit {
        headers,
        trace: None,
        ip: [127, 0, 0, 1].into(),
    }
}

async fn body(r: Response) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn login_with(f: &Fixture, key: &str, origin: &str) -> Response {
    login(
        State(f.state.clone()),
        Extension(Arc::clone(&f.sessions)),
        visit(&[(header::ORIGIN, origin.into())]),
        Ok(Form(LoginForm { key: key.into() })),
    )
    .await
}

fn cookie_of(r: &Response) -> String {
    r.headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

async fn overview_with(f: &Fixture, pairs: &[(header::HeaderName, String)]) -> Response {
    overview_page(
        State(f.state.clone()),
        Extension(Arc::clone(&f.sessions)),
        Query(OverviewQuery::default()),
        visit(pairs),
    )
    .await
}

#[tokio::test]
async fn an_auditor_signs_in_with_a_form_and_the_session_opens_the_page() {
    let f = fixture().await;
    let auditor = key(&f, vec![Scope::Auditor]).await;
    let r = login_with(&f, &auditor.key, "http://gw:8080").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/dashboard");
    let cookie = cookie_of(&r);
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Path=/dashboard") && cookie.contains("Max-Age=3600"));
    assert!(
        !cookie.contains(&auditor.key),
        "the key itself is never in the cookie"
    );
    let token = cookie.split(';').next().unwrap().to_string();
    let page = overview_with(&f, &[(header::COOKIE, token)]).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
    let html = body(page).await;
    for section in [
        "Throughput",
        "Latency p50",
        "Drift",
        "Evaluation",
        "Abuse clusters",
    ] {
        assert!(html.contains(section), "{section}");
    }
    assert!(html.contains("http-equiv=\"refresh\""));
}

#[tokio::test]
async fn wrong_keys_inference_keys_and_cross_site_logins_are_refused() {
    let f = fixture().await;
    let r = login_with(&f, "fg-not-a-real-key-at-all-no", "http://gw:8080").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert!(body(r).await.contains("<form class=\"login\""));
    let inference = key(&f, vec![Scope::Inference]).await;
    let r = login_with(&f, &inference.key, "http://gw:8080").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let admin = key(&f, vec![Scope::Admin]).await;
    let r = login_with(&f, &admin.key, "http://evil.example").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn without_a_valid_session_a_browser_goes_to_the_login_form() {
    let f = fixture().await;
    let r = overview_with(&f, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/dashboard/login");
    // Expired, and signed by someone else.
    let admin = key(&f, vec![Scope::Admin]).await;
    let claims = |expires| Claims {
        key_id: admin.record.id.clone(),
        prefix: admin.record.prefix.clone(),
        scope: Scope::Admin,
        expires,
    };
    let expired = f.sessions.sign(&claims(1)).unwrap();
    let forged = Sessions::with_secret(b"not the gateway's secret at all".to_vec())
        .sign(&claims(i64::MAX))
        .unwrap();
    for token in [expired, forged] {
        let r = overview_with(&f, &[(header::COOKIE, format!("fg_session={token}"))]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(
            cookie_of(&r).contains("Max-Age=0"),
            "the bad cookie is deleted"
        );
    }
    // A revoked key's session ends.
    let valid = f.sessions.sign(&claims(i64::MAX)).unwrap();
    let cookie = (header::COOKIE, format!("fg_session={valid}"));
    assert_eq!(
        overview_with(&f, std::slice::from_ref(&cookie))
            .await
            .status(),
        StatusCode::OK
    );
    f.state
        .auth
        .store
        .revoke(&admin.record.id, 1)
        .await
        .unwrap();
    f.state.auth.forget();
    assert_eq!(
        overview_with(&f, &[cookie]).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn api_clients_use_the_authorization_header() {
    let f = fixture().await;
    let admin = key(&f, vec![Scope::Admin]).await;
    let inference = key(&f, vec![Scope::Inference]).await;
    let bearer = |k: &str| (header::AUTHORIZATION, format!("Bearer {k}"));
    assert_eq!(
        overview_with(&f, &[bearer(&admin.key)]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        overview_with(&f, &[bearer(&inference.key)]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        overview_with(&f, &[bearer("fg-wrongwrongwrong")])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_request_view_escapes_everything_a_client_could_choose() {
    let f = fixture().await;
    let admin = key(&f, vec![Scope::Admin]).await;
    let evil = "<script>alert(1)</script>";
    let record = DecisionRecord {
        event_id: "evt_1".into(),
        request_id: evil.into(),
        key_id: "key_1".into(),
        created_at: crate::clock::unix_secs(),
        requested: evil.into(),
        served_by: "m".into(),
        route: Some(RouteDecision {
            route: "r".into(),
            reasons: vec![evil.into()],
            tiers: vec!["m".into()],
            ..RouteDecision::default()
        }),
        runs: vec![TierRun {
            model: "m".into(),
            served: true,
            ..TierRun::default()
        }],
        guard: vec![evil.into()],
        status: "completed".into(),
        latency_ms: 12.0,
        endpoint: "POST /v1/chat/completions".into(),
        http_status: 200,
        ..DecisionRecord::default()
    };
    f.state.records.put(&record).await.unwrap();
    let view = |id: &str| {
        request_page(
            State(f.state.clone()),
            Extension(Arc::clone(&f.sessions)),
            Path(id.to_string()),
            visit(&[(header::AUTHORIZATION, format!("Bearer {}", admin.key))]),
        )
    };
    let r = view("evt_1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = body(r).await;
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("this request"), "the marker is drawn");
    // Found by its client request id too, which is markup here.
    assert_eq!(view(evil).await.status(), StatusCode::OK);
    let r = view("<img src=x onerror=alert(1)>").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let html = body(r).await;
    assert!(
        !html.contains("<img") && html.contains("&lt;img src=x"),
        "{html}"
    );
}
