//! Stage 5, route (for now: model name → backend).
//!
//! The registry knows every configured model and its state. Models load in the
//! background after the listener is up, so `/healthz` answers at once and `/readyz`
//! turns ready when every model is servable.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::backend::Backend;
use crate::error::GatewayError;

#[derive(Clone)]
pub enum ModelState {
    Loading(String),
    Ready(Arc<dyn Backend>),
    Failed(String),
}

#[derive(Default)]
pub struct ModelRegistry {
    models: RwLock<BTreeMap<String, ModelState>>,
}

impl ModelRegistry {
    pub fn set(&self, name: &str, state: ModelState) {
        if let Ok(mut m) = self.models.write() {
            m.insert(name.to_string(), state);
        }
    }

    pub fn get(&self, name: &str) -> Result<Arc<dyn Backend>, GatewayError> {
        let models = self
            .models
            .read()
            .map_err(|_| GatewayError::Internal("model registry poisoned".into()))?;
        match models.get(name) {
            Some(ModelState::Ready(b)) => Ok(Arc::clone(b)),
            Some(ModelState::Loading(_)) => Err(GatewayError::ModelLoading(name.to_string())),
            Some(ModelState::Failed(why)) => Err(GatewayError::Overloaded(format!(
                "The model `{name}` failed to load: {why}"
            ))),
            None => Err(GatewayError::ModelNotFound(name.to_string())),
        }
    }

    pub fn snapshot(&self) -> Vec<(String, ModelState)> {
        self.models
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}
