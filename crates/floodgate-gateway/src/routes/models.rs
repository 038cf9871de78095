//! `GET /v1/models`.

use axum::extract::State;
use axum::{Extension, Json};
use floodgate_protocol::{ModelList, ModelObject};

use crate::auth::{Caller, Scope};
use crate::error::GatewayError;
use crate::registry::ModelState;
use crate::AppState;

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ModelList>, GatewayError> {
    caller.require(Scope::Inference)?;
    let snapshot = state.registry.snapshot();
    let ready = |name: &str| {
        snapshot
            .iter()
            .any(|(n, s)| n == name && matches!(s, ModelState::Ready(_)))
    };
    // A route is servable when its router is loaded and every tier is: it is listed
    // like a model.
    let routes: Vec<ModelObject> = state
        .routes
        .ready()
        .iter()
        .filter(|r| r.config.tiers.iter().all(|t| ready(t)))
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
        })
        .collect();
    let data = snapshot
        .into_iter()
        .filter_map(|(_, s)| match s {
            ModelState::Ready(b) => {
                let i = b.info();
                Some(ModelObject {
                    id: i.model.clone(),
                    object: "model".into(),
                    created: i.created,
                    owned_by: i.owned_by.clone(),
                    card: card_of(&state.config, &i.model),
                })
            }
            _ => None,
        })
        .chain(routes)
        .collect();
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}

/// The configured card, else the catalog's description for catalog models.
fn card_of(config: &crate::Config, model: &str) -> Option<floodgate_protocol::ModelCard> {
    let m = config.model.iter().find(|m| m.name == model)?;
    if let Some(card) = &m.card {
        return Some(card.clone());
    }
    let entry = floodgate_models::catalog_entry(model)
        .filter(|_| m.source.is_empty() && m.path.is_none())?;
    Some(floodgate_protocol::ModelCard {
        description: entry.description,
        ..Default::default()
    })
}
