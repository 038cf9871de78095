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
