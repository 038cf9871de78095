//! The HTTP application: routes and the layers every request passes through.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::error::{ErrorCode, GatewayError};
use crate::events::{Event, Trace};
use crate::routes::{completions, health, models, moderations};
use crate::AppState;

pub fn router(state: AppState) -> Router {
    // Everything a key is checked for; health and metrics stay open for probes.
    let api = Router::new()
        .route("/v1/chat/completions", post(completions::chat))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/models", get(models::list))
        .route("/v1/moderations", post(moderations::moderate))
        .route("/v1/feedback", post(crate::routes::feedback::submit))
        .route(
            "/v1/requests/{id}/decision",
            get(crate::routes::decisions::get_decision),
        )
        .route("/admin/feedback", get(crate::routes::feedback::list))
        .route(
            "/admin/keys",
            get(crate::admin::list_keys).post(crate::admin::create_key),
        )
        .route("/admin/keys/{id}", delete(crate::admin::revoke_key))
        .route("/admin/events", get(crate::admin::list_admin_events))
        .route("/admin/drift", get(crate::admin::drift_status))
        .route("/admin/routes", get(crate::admin::list_routes))
        .route("/admin/models", get(crate::admin::list_models))
        .route(
            "/admin/models/{id}",
            axum::routing::patch(crate::admin::update_model),
        )
        .route(
            "/admin/routes/{name}",
            axum::routing::patch(crate::admin::update_route),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::edge::identify,
        ));
    Router::new()
        .merge(api)
        // Outside `identify`: a browser without a session is sent to the login form.
        .merge(crate::routes::dashboard::router(&state))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(unknown_route)
        .layer(middleware::from_fn(method_not_allowed))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::edge::header_limit,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::edge::request_id,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .with_state(state)
}

async fn unknown_route(req: Request) -> GatewayError {
    GatewayError::UnknownRoute {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    }
}

/// axum answers a wrong method with an empty 405; give it OpenAI's error body.
async fn method_not_allowed(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = response.headers().get("allow").cloned();
        let mut r = GatewayError::MethodNotAllowed { method, path }.into_response();
        if let Some(a) = allow {
            r.headers_mut().insert("allow", a);
        }
        return r;
    }
    response
}

/// The event of a request that no pipeline stage described: its status and error code.
fn unclaimed_event(state: &AppState, trace: &Trace, response: &Response) -> Event {
    let mut e = trace.base(&state.events);
    e.status = response.status().as_u16();
    e.error_code = response
        .extensions()
        .get::<ErrorCode>()
        .map(|c| c.0.to_string());
    e.outcome = if e.error_code.is_some() || !response.status().is_success() {
        "refused".into()
    } else {
        "completed".into()
    };
    e.timings.total_ms = trace.elapsed_ms();
    Event::request(
        trace.id.clone(),
        trace.time_ms,
        state.events.origin.clone(),
        e,
    )
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    GatewayError::Internal("internal error".into()).into_response()
}

/// Request counters, latency to response headers and the in-flight gauge; and the
/// event of every request the pipeline did not take over (refusals before it, other
/// endpoints), written before the response goes out.
async fn record(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let trace = req.extensions().get::<Arc<Trace>>().cloned();
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics");
    let mut guard = InFlight::new(route);
    let response = next.run(req).await;
    if let Some(trace) = trace.filter(|t| !probe && t.claim()) {
        state
            .events
            .record(&unclaimed_event(&state, &trace, &response), Some(&trace))
            .await;
    }
    let model = response
        .headers()
        .get("x-floodgate-model")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    guard.finish(response.status().as_u16(), model);
    response
}

/// Counts a request in flight until it completes or is dropped; a request whose client
/// went away before the response was ready is recorded with status 499.
struct InFlight {
    route: String,
    started: Instant,
    done: bool,
}

impl InFlight {
    fn new(route: String) -> Self {
        metrics::gauge!("floodgate_requests_in_flight").increment(1.0);
        Self {
            route,
            started: Instant::now(),
            done: false,
        }
    }

    fn finish(&mut self, status: u16, model: String) {
        self.done = true;
        let route = std::mem::take(&mut self.route);
        let latency = self.started.elapsed().as_secs_f64();
        tracing::info!(status, %route, model = %model, latency_ms = latency * 1e3, "request completed");
        metrics::counter!("floodgate_http_requests_total", "route" => route.clone(), "model" => model.clone(), "status" => status.to_string())
            .increment(1);
        metrics::histogram!("floodgate_http_response_seconds", "route" => route, "model" => model)
            .record(latency);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("floodgate_requests_in_flight").decrement(1.0);
        if !self.done {
            self.finish(499, String::new());
        }
    }
}
