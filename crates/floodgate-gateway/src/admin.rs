//! The admin API: key management for holders of the `admin` role.
//!
//! `POST /admin/keys` creates a key and returns its secret once; `GET /admin/keys`
//! lists records (never secrets); `DELETE /admin/keys/{id}` revokes at once. Every change
//! made here is an admin event (`GET /admin/events` lists them from the store).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::auth::{self, Caller, NewKey, Scope};
use crate::edge::ValidJson;
use crate::error::GatewayError;
use crate::AppState;

fn store_error(e: auth::StoreError) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ValidJson(mut new): ValidJson<NewKey>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Admin)?;
    if new.scopes.is_empty() {
        new.scopes.clone_from(&state.config().auth.default_scopes);
    }
    let created = auth::create_key(state.auth.store.as_ref(), new)
        .await
        .map_err(store_error)?;
    tracing::info!(key = %created.record.id, by = caller.key_id(), "key created");
    let r = &created.record;
    state
        .admin_event(
            "key.created",
            caller.key_id(),
            &r.id,
            serde_json::json!({
                "name": r.name, "tenant": r.tenant, "segment": r.segment,
                "scopes": r.scopes, "limits": r.limits, "budget_usd": r.budget_usd,
            }),
        )
        .await;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Admin)?;
    let keys = state.auth.store.list().await.map_err(store_error)?;
    Ok(Json(serde_json::json!({ "object": "list", "data": keys })).into_response())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Admin)?;
    let now = crate::clock::unix_secs();
    if state
        .auth
        .store
        .revoke(&id, now)
        .await
        .map_err(store_error)?
    {
        // This gateway refuses it at once; others within `store.key_cache_refresh_ms`.
        state.auth.forget();
        tracing::info!(key = %id, by = caller.key_id(), "key revoked");
        state
            .admin_event("key.revoked", caller.key_id(), &id, serde_json::json!({}))
            .await;
        Ok(Json(serde_json::json!({ "id": id, "revoked": true })).into_response())
    } else {
        Err(GatewayError::NotFound { what: "key", id })
    }
}

/// `GET /admin/routes`: every ready route's configuration and effective thresholds.
pub async fn list_routes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    caller.require(Scope::Admin)?;
    let routes: Vec<serde_json::Value> = state
        .routes
        .ready()
        .iter()
        .map(|r| {
            serde_json::json!({
                "config": r.config,
                "thresholds": {"pre": r.thresholds.pre, "post": r.thresholds.post},
                "degraded": r.degraded,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({"object": "list", "data": routes})))
}

/// `PATCH /admin/routes/{name}`: change a route's split weights or thresholds at once,
/// without a restart; requests in flight finish on the route they started with.
pub async fn update_route(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ValidJson(update): ValidJson<crate::cascade::RouteUpdate>,
) -> Result<Json<crate::cascade::RouteConfig>, GatewayError> {
    caller.require(Scope::Admin)?;
    let names = state.registry.servable_names();
    let models: Vec<&str> = names.iter().map(String::as_str).collect();
    match state.routes.update(&name, &update, &models) {
        Ok(config) => {
            let detail = serde_json::json!({ "update": update, "route": config });
            state
                .admin_event("route.updated", caller.key_id(), &name, detail)
                .await;
            Ok(Json(config))
        }
        Err(errors) if errors.iter().any(|e| e.starts_with("no route")) => {
            Err(GatewayError::NotFound {
                what: "route",
                id: name,
            })
        }
        Err(errors) => Err(GatewayError::invalid(errors.join("; "), None)),
    }
}

/// `GET /admin/models`: every model variant with its version, backend, precision,
/// region, weight, switch and state.
pub async fn list_models(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    caller.require(Scope::Admin)?;
    Ok(Json(
        serde_json::json!({"object": "list", "data": state.registry.variants()}),
    ))
}

/// What `PATCH /admin/models/{id}` may change.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantUpdate {
    pub enabled: Option<bool>,
    pub weight: Option<u32>,
}

/// `PATCH /admin/models/{id}`: switch a variant on or off, or change its share of its
/// model's traffic, at once. Requests already running finish where they started. The
/// change holds until the variant's `weight` or `enabled` changes in the config file.
pub async fn update_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ValidJson(update): ValidJson<VariantUpdate>,
) -> Result<Json<crate::registry::VariantView>, GatewayError> {
    caller.require(Scope::Admin)?;
    if update.enabled.is_none() && update.weight.is_none() {
        return Err(GatewayError::invalid(
            "Give `enabled`, `weight` or both.",
            None::<String>,
        ));
    }
    if update.weight.is_some_and(|w| w > crate::config::MAX_WEIGHT) {
        return Err(GatewayError::invalid(
            format!("`weight` must be at most {}.", crate::config::MAX_WEIGHT),
            Some("weight".into()),
        ));
    }
    let view = state
        .registry
        .update(&id, update.enabled, update.weight)
        .map_err(|e| match e {
            GatewayError::ModelNotFound(id) => GatewayError::NotFound {
                what: "model variant",
                id,
            },
            e => e,
        })?;
    tracing::info!(variant = %id, enabled = view.enabled, weight = view.weight, by = caller.key_id(), "model variant updated");
    let detail = serde_json::json!({ "enabled": view.enabled, "weight": view.weight });
    state
        .admin_event("model.updated", caller.key_id(), &id, detail)
        .await;
    Ok(Json(view))
}

/// `GET /admin/events` query: admin events from `since_ms` (unix ms) on, oldest first.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AdminEventsQuery {
    #[serde(default)]
    pub since_ms: i64,
    pub limit: Option<u32>,
}

/// The most admin events one `GET /admin/events` returns.
const ADMIN_EVENTS_MAX: u32 = 1_000;

/// `GET /admin/events[?since_ms=&limit=]`: who changed what (keys, models, routes,
/// reloads), as the record store holds it, for admins and auditors. Events reach the
/// store through the event log's store sink, so the newest may lag by a moment.
pub async fn list_admin_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AdminEventsQuery>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    if caller.require(Scope::Auditor).is_err() {
        caller.require(Scope::Admin)?;
    }
    let limit = q.limit.unwrap_or(100).clamp(1, ADMIN_EVENTS_MAX);
    let data = state
        .records
        .admin_since(q.since_ms, limit)
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(Json(serde_json::json!({ "object": "list", "data": data })))
}

/// `GET /admin/drift`: per route or model, its reference profile (source, size, window,
/// thresholds) and its drift state (the latest window's report, windows and alarms so
/// far), and the newest "retrain suggested" records; for admins and auditors. Read
/// from the store, so it answers the same on every gateway.
pub async fn drift_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    if caller.require(Scope::Auditor).is_err() {
        caller.require(Scope::Admin)?;
    }
    let internal = |e: sqlx::Error| GatewayError::Internal(e.to_string());
    let a = &state.analytics;
    let (profiles, states, suggestions) = tokio::try_join!(
        async { a.profiles().await.map_err(internal) },
        async { a.drift_states().await.map_err(internal) },
        async { a.suggestions(20).await.map_err(internal) },
    )?;
    Ok(Json(drift_json(&profiles, &states, &suggestions)))
}

/// The body of `GET /admin/drift` (the dashboard renders the same).
pub fn drift_json(
    profiles: &[crate::analytics::StoredProfile],
    states: &[crate::analytics::DriftState],
    suggestions: &[crate::analytics::RetrainSuggestion],
) -> serde_json::Value {
    let mut keys: std::collections::BTreeSet<&str> =
        profiles.iter().map(|p| p.key.as_str()).collect();
    keys.extend(states.iter().map(|s| s.key.as_str()));
    let data: Vec<serde_json::Value> = keys
        .into_iter()
        .map(|key| {
            let profile = profiles.iter().find(|p| p.key == key).map(|p| {
                let parsed: Option<floodgate_drift::Profile> = serde_json::from_str(&p.profile).ok();
                serde_json::json!({
                    "source": p.source,
                    "created_at": p.created_at,
                    "samples": parsed.as_ref().map(|x| x.n),
                    "window": parsed.as_ref().map(|x| x.window),
                    "false_alarm_rate": parsed.as_ref().map(|x| x.false_alarm_rate),
                    "thresholds": parsed.as_ref().map(|x| x.thresholds().into_iter()
                        .map(|(name, test, t)| serde_json::json!({"feature": name, "test": test, "threshold": t}))
                        .collect::<Vec<_>>()),
                })
            });
            let state = states.iter().find(|s| s.key == key);
            serde_json::json!({
                "key": key,
                "status": match state {
                    None if profile.is_none() => "no profile",
                    None => "waiting for a full window",
                    Some(s) if s.drifted => "drift",
                    Some(_) => "ok",
                },
                "profile": profile,
                "windows": state.map_or(0, |s| s.windows),
                "alarms": state.map_or(0, |s| s.alarms),
                "updated_at": state.map(|s| s.updated_at),
                "latest": state.map(|s| &s.report),
            })
        })
        .collect();
    serde_json::json!({
        "object": "list",
        "data": data,
        "retrain_suggestions": suggestions,
    })
}
