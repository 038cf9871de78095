//! The operators' dashboard: `GET /dashboard` (one server-rendered page of SVG charts
//! over the per-minute rollups, refreshing itself every 30 s) and
//! `GET /dashboard/requests/{id}` (one request's decision record beside the metrics of
//! the minutes around it), for keys with the admin or auditor role.
//!
//! A browser signs in at `POST /dashboard/login` with the form field `key` and gets a
//! signed, expiring session cookie ([`session`]); API clients send the usual
//! `Authorization` header instead. Keys never travel in URLs. These routes sit outside
//! the `identify` middleware (which would answer 401 before a browser could be sent to
//! the login form), and only they read the session cookie.
//!
//! **Architecture invariant:** the dashboard reads only the store (decision records and
//! their rollups), never the request path's state: every figure is computed from the
//! events, so a page shows the same numbers on every gateway sharing the store, and
//! rendering it costs the request path nothing.

mod charts;
mod html;
mod overview;
pub mod panels;
mod request_view;
mod session;

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use crate::auth::{presented_key, Caller, Scope};
use crate::error::GatewayError;
use crate::events::Trace;
use crate::AppState;

pub use html::escape;
use session::{Claims, Sessions};

/// The page's policy: nothing from anywhere else, no script at all, no framing.
const CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Hours the overview shows by default, and at most.
const DEFAULT_HOURS: u32 = 6;
const MAX_HOURS: u32 = 48;

/// The dashboard's routes, with their session signing key (from
/// `dashboard.session_secret`, read once at start).
pub fn router(state: &AppState) -> Router<AppState> {
    let sessions = Arc::new(Sessions::from_config(
        &state.config().dashboard.session_secret,
    ));
    Router::new()
        .route("/dashboard", get(overview_page))
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/requests/{id}", get(request_page))
        .layer(Extension(sessions))
}

/// What the handlers need from a request besides its body: headers, the request's
/// trace (to name the caller in its event) and the client address.
pub struct Visit {
    headers: HeaderMap,
    trace: Option<Arc<Trace>>,
    ip: IpAddr,
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        Ok(Visit {
            ip: state.admission.client_ip(peer, forwarded),
            trace: parts.extensions.get::<Arc<Trace>>().cloned(),
            headers: parts.headers.clone(),
        })
    }
}

impl Visit {
    /// The request's event names who viewed the page.
    fn identified(&self, caller: &Caller) {
        if let Some(trace) = &self.trace {
            trace.identified(caller, self.ip);
        }
    }

    fn secure(&self, state: &AppState) -> bool {
        session::secure(&self.headers, state.config().dashboard.secure_cookie)
    }
}

/// An HTML response with the dashboard's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 303 to `location`, optionally setting a cookie.
fn see_other(location: &'static str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static(location));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, v);
    }
    r
}

/// A short HTML page for an error a browser meets.
fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/dashboard\">Back to the dashboard</a></p>",
        escape(status.canonical_reason().unwrap_or("Error")),
        escape(message)
    );
    html(status, html::page("Floodgate dashboard", "", "", &body))
}

/// Who is viewing: a key in the `Authorization` header (API clients; errors as the API
/// gives them), else a valid session whose key is still valid and still has its role.
/// A browser without one is sent to the login form.
async fn authorize(
    state: &AppState,
    sessions: &Sessions,
    visit: &Visit,
) -> Result<(Caller, Scope), Response> {
    if let Some(key) = presented_key(&visit.headers) {
        let caller = state
            .auth
            .identify(Some(key))
            .await
            .map_err(IntoResponse::into_response)?;
        visit.identified(&caller);
        let scope = if caller.require(Scope::Admin).is_ok() {
            Scope::Admin
        } else if caller.require(Scope::Auditor).is_ok() {
            Scope::Auditor
        } else {
            return Err(GatewayError::Forbidden("admin or auditor").into_response());
        };
        return Ok((caller, scope));
    }
    let to_login = |had_cookie: bool| {
        see_other(
            "/dashboard/login",
            had_cookie.then(|| session::clear_cookie(visit.secure(state))),
        )
    };
    let Some(token) = session::from_cookies(&visit.headers) else {
        return Err(to_login(false));
    };
    let Some(claims) = sessions.verify(token, crate::clock::unix_secs()) else {
        return Err(to_login(true));
    };
    match state.auth.session_key(&claims.prefix, &claims.key_id).await {
        Ok(record) if record.scopes.contains(&claims.scope) => {
            let caller = Caller::Key(record);
            visit.identified(&caller);
            Ok((caller, claims.scope))
        }
        Ok(_) | Err(GatewayError::Unauthorized(_)) => Err(to_login(true)),
        Err(e) => Err(error_page(
            e.status(),
            "The key store cannot be read right now; try again in a moment.",
        )),
    }
}

/// The top bar: windows, who is signed in, and the logout button.
fn top_bar(caller: &Caller, scope: Scope, hours: Option<u32>) -> String {
    let mut nav = String::new();
    for h in [1, 6, 24, 48] {
        let on = if Some(h) == hours {
            " class=\"on\""
        } else {
            ""
        };
        nav.push_str(&format!("<a{on} href=\"/dashboard?hours={h}\">{h} h</a>"));
    }
    format!(
        "<h1><a href=\"/dashboard\" style=\"text-decoration:none\">Floodgate</a></h1><nav>{nav}</nav>\
         <span class=\"muted\" style=\"color:#b9c0cf\">{} ({})</span>\
         <form method=\"post\" action=\"/dashboard/logout\"><button type=\"submit\">Sign out</button></form>",
        escape(caller.key_id()),
        escape(scope.as_str())
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    hours: Option<String>,
}

/// `GET /dashboard?hours=N` (1–48, default 6).
async fn overview_page(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    Query(query): Query<OverviewQuery>,
    visit: Visit,
) -> Response {
    let (caller, scope) = match authorize(&state, &sessions, &visit).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let hours = query
        .hours
        .as_deref()
        .and_then(|h| h.trim().parse::<u32>().ok())
        .unwrap_or(DEFAULT_HOURS)
        .clamp(1, MAX_HOURS);
    let now = crate::clock::unix_secs();
    let window = overview::Window::ending_at(now, hours);
    let rows = match state.records.stats_since(window.start, window.end()).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: the rollups cannot be read");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The record store cannot be read right now; try again in a moment.",
            );
        }
    };
    let extras = panels::Extras::load(&state, now, 30).await;
    let body = overview::render(&state, &window, &rows, now, &extras);
    html(
        StatusCode::OK,
        html::page(
            "Floodgate dashboard",
            "<meta http-equiv=\"refresh\" content=\"30\">",
            &top_bar(&caller, scope, Some(hours)),
            &body,
        ),
    )
}

/// `GET /dashboard/requests/{id}`: one request, by its event id or client request id.
async fn request_page(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    let (caller, scope) = match authorize(&state, &sessions, &visit).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let bar = top_bar(&caller, scope, None);
    let record = match state.records.get(&id).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            let body = format!(
                "<h2>No such request</h2><p>No decision record has the id <code>{}</code> \
                 (records appear a moment after their request ends).</p>\
                 <p><a href=\"/dashboard\">Back to the dashboard</a></p>",
                escape(&id)
            );
            return html(
                StatusCode::NOT_FOUND,
                html::page("Unknown request — Floodgate", "", &bar, &body),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: a decision record cannot be read");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The record store cannot be read right now; try again in a moment.",
            );
        }
    };
    let around = request_view::Around::of(&record);
    let rows = state
        .records
        .stats_since(around.start, around.end())
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dashboard: the rollups cannot be read");
            Vec::new()
        });
    let body = request_view::render(&state, &record, &around, &rows);
    html(
        StatusCode::OK,
        html::page(
            &format!("Request {} — Floodgate", record.event_id),
            "",
            &bar,
            &body,
        ),
    )
}

/// The login form, with an optional message (already known to be safe to show).
fn login_page(status: StatusCode, message: &str, ttl_minutes: u64) -> Response {
    let error = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message))
    };
    let body = format!(
        "<form class=\"login\" method=\"post\" action=\"/dashboard/login\">\
         <h1>Floodgate dashboard</h1>{error}\
         <label for=\"key\">API key with the admin or auditor role</label>\
         <input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Sign in</button>\
         <p class=\"muted\">The key goes in this form's body only, never in a URL. \
         The session lasts {ttl_minutes} minutes.</p></form>"
    );
    html(status, html::page("Sign in — Floodgate", "", "", &body))
}

/// `GET /dashboard/login`: the form (or straight to the dashboard with a valid session).
async fn login_form(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    visit: Visit,
) -> Response {
    let now = crate::clock::unix_secs();
    if session::from_cookies(&visit.headers).is_some_and(|t| sessions.verify(t, now).is_some()) {
        return see_other("/dashboard", None);
    }
    login_page(
        StatusCode::OK,
        "",
        state.config().dashboard.session_ttl_minutes,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
}

/// `POST /dashboard/login` with the form field `key`: the key is checked as the
/// `Authorization` header's would be, must have the admin or auditor role, and buys a
/// session cookie; then 303 to the dashboard.
async fn login(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    visit: Visit,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let config = state.config();
    let ttl = config.dashboard.session_ttl_minutes;
    if !session::same_origin(&visit.headers) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign in from the dashboard's own login page (this request's Origin is another site's, or missing).",
        );
    }
    let key = form.map(|Form(f)| f.key).unwrap_or_default();
    let key = key.trim();
    if key.is_empty() {
        return login_page(StatusCode::UNAUTHORIZED, "Enter a key.", ttl);
    }
    let caller = match state.auth.identify(Some(key)).await {
        Ok(caller) => caller,
        Err(GatewayError::Unauthorized(_)) => {
            return login_page(
                StatusCode::UNAUTHORIZED,
                "That key is not valid (unknown or revoked).",
                ttl,
            )
        }
        Err(e) => {
            return login_page(
                e.status(),
                "The key store cannot be read right now; try again in a moment.",
                ttl,
            )
        }
    };
    visit.identified(&caller);
    let Caller::Key(record) = &caller else {
        // Auth is off and the key is unknown: the anonymous caller has no role.
        return login_page(
            StatusCode::UNAUTHORIZED,
            "That key is not valid (unknown or revoked).",
            ttl,
        );
    };
    let scope = if record.scopes.contains(&Scope::Admin) {
        Scope::Admin
    } else if record.scopes.contains(&Scope::Auditor) {
        Scope::Auditor
    } else {
        return login_page(
            StatusCode::FORBIDDEN,
            "That key has neither the admin nor the auditor role.",
            ttl,
        );
    };
    let ttl_secs = ttl.saturating_mul(60);
    let claims = Claims {
        key_id: record.id.clone(),
        prefix: record.prefix.clone(),
        scope,
        expires: crate::clock::unix_secs()
            .saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
    };
    let Some(token) = sessions.sign(&claims) else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The session could not be signed.",
        );
    };
    tracing::info!(key_id = %record.id, scope = %scope, "dashboard: signed in");
    see_other(
        "/dashboard",
        Some(session::set_cookie(&token, ttl_secs, visit.secure(&state))),
    )
}

/// `POST /dashboard/logout`: deletes the cookie (the token itself stays valid until it
/// expires or its key is revoked: sessions are stateless).
async fn logout(State(state): State<AppState>, visit: Visit) -> Response {
    if !session::same_origin(&visit.headers) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign out from the dashboard itself (this request's Origin is another site's, or missing).",
        );
    }
    see_other(
        "/dashboard/login",
        Some(session::clear_cookie(visit.secure(&state))),
    )
}

#[cfg(test)]
mod tests;
