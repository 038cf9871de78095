//! `GET /v1/models`: every name a request can use right now.
//!
//! Plain models are listed by name. A model with versions is listed as `MODEL` (any of
//! its variants, by weight), `MODEL@VERSION` and each variant id, each only while a
//! request for it would be served (enabled, loaded, with weight where weight counts).
//! Routes whose tiers are all servable are listed too.

use axum::extract::State;
use axum::{Extension, Json};
use floodgate_protocol::{ModelList, ModelObject};

use crate::auth::{Caller, Scope};
use crate::config::ModelConfig;
use crate::error::GatewayError;
use crate::AppState;

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ModelList>, GatewayError> {
    caller.require(Scope::Inference)?;
    let registry = &state.registry;
    let configs = registry.configs();
    let mut data = Vec::new();
    for name in registry.servable_names() {
        let Ok(served) = registry.resolve(&name, "") else {
            continue;
        };
        let info = served.backend.info();
        let c = &served.config;
        // A model with versions: what the name stands for, and what may serve it.
        let (kind, variants) = match &c.group {
            None => (None, Vec::new()),
            Some(_) if name == c.name => (Some("variant"), Vec::new()),
            Some(g) => (
                Some(if name == *g { "model" } else { "version" }),
                configs
                    .iter()
                    .filter(|m| m.is_variant_of(&name))
                    .map(|m| m.name.clone())
                    .collect(),
            ),
        };
        data.push(ModelObject {
            id: name.clone(),
            object: "model".into(),
            created: info.created,
            owned_by: info.owned_by.clone(),
            card: card_of(c),
            kind: kind.map(str::to_string),
            variants,
        });
    }
    // A route is servable when its router is loaded and every tier is: it is listed
    // like a model.
    data.extend(
        state
            .routes
            .ready()
            .iter()
            .filter(|r| r.config.tiers.iter().all(|t| registry.servable(t)))
            .map(|r| ModelObject {
                id: r.config.name.clone(),
                object: "model".into(),
                created: 0,
                owned_by: "floodgate-route".into(),
                card: Some(floodgate_protocol::ModelCard {
                    description: format!(
                        "Route over {}: policy `{}`",
                        r.config.tiers.join(" -> "),
                        r.config.policy
                    ),
                    ..Default::default()
                }),
                kind: Some("route".into()),
                variants: Vec::new(),
            }),
    );
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}

/// The configured card, else the catalog's description for catalog models.
fn card_of(m: &ModelConfig) -> Option<floodgate_protocol::ModelCard> {
    if let Some(card) = &m.card {
        return Some(card.clone());
    }
    let entry = floodgate_models::catalog_entry(m.public_name())
        .filter(|_| m.source.is_empty() && m.path.is_none() && !m.is_upstream())?;
    Some(floodgate_protocol::ModelCard {
        description: entry.description,
        ..Default::default()
    })
}
