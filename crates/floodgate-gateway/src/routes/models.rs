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
    let data = state
        .registry
        .snapshot()
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
        .collect();
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}
