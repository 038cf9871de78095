//! Loading models into the registry: at start, and when a reload changes `[[model]]`.

use std::sync::Arc;

use floodgate_models::ModelStore;

use crate::backend::Backend;
use crate::config::{Config, ModelConfig};
use crate::registry::{ModelRegistry, ModelState};

/// Where a load reports its progress: the registry entry it will fill, and the load's
/// generation (so a superseded load reports nothing).
/// Only local loads have steps to report, so a build without the engine never reads it.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "engine"), allow(dead_code))]
struct Progress<'a> {
    registry: &'a ModelRegistry,
    generation: u64,
}

#[cfg_attr(not(feature = "engine"), allow(dead_code))]
impl Progress<'_> {
    fn say(self, m: &ModelConfig, label: &str) {
        self.registry.progress(&m.name, self.generation, label);
    }
}

/// Makes one variant servable: an upstream pool, or local weights fetched, converted
/// and loaded into an engine.
async fn load_variant(
    config: &Config,
    store: &ModelStore,
    m: &ModelConfig,
    progress: Progress<'_>,
    created: u64,
) -> ModelState {
    let loaded = if m.is_upstream() {
        // Nothing to fetch or load: ready once built; health is the pool's business.
        crate::backend::UpstreamPool::from_config(m, &config.server.region, created)
            .map(|pool| Arc::new(pool) as Arc<dyn Backend>)
    } else {
        load_local(config, store, m, progress, created).await
    };
    match loaded {
        Ok(backend) => {
            tracing::info!(model = %m.name, backend = %m.backend, "model ready");
            ModelState::Ready(backend)
        }
        Err(e) => {
            tracing::error!(model = %m.name, error = %e, "model unavailable");
            ModelState::Failed(e)
        }
    }
}

#[cfg(feature = "engine")]
async fn load_local(
    config: &Config,
    store: &ModelStore,
    m: &ModelConfig,
    progress: Progress<'_>,
    created: u64,
) -> Result<Arc<dyn Backend>, String> {
    let say = |label: &str| progress.say(m, label);
    let backend = crate::backend::local::load(config, store, m, Some(&say)).await?;
    Ok(Arc::new(backend.with_created(created)))
}

/// Configuration validation refuses local models in a build without the engine, so
/// this is reached only through a configuration that bypassed it.
#[cfg(not(feature = "engine"))]
async fn load_local(
    _config: &Config,
    _store: &ModelStore,
    m: &ModelConfig,
    _progress: Progress<'_>,
    _created: u64,
) -> Result<Arc<dyn Backend>, String> {
    Err(crate::config::no_engine(&m.name))
}

/// Loads variants one after another (each with the generation its load was given) and
/// installs each result unless a newer load of the same variant began meanwhile.
pub async fn load_models(
    config: Arc<Config>,
    registry: Arc<ModelRegistry>,
    work: Vec<(ModelConfig, u64)>,
) {
    let store = crate::model_cache::model_store(&config);
    let created = u64::try_from(crate::clock::unix_secs()).unwrap_or(0);
    for (m, generation) in work {
        let progress = Progress {
            registry: &registry,
            generation,
        };
        let state = load_variant(&config, &store, &m, progress, created).await;
        let name = m.name.clone();
        if !registry.finish_load(m, generation, state) {
            tracing::info!(model = %name, "a newer load or removal superseded this load");
        }
    }
    tracing::info!("all models processed");
}

/// Applies a reloaded configuration's `[[model]]` tables: new variants load, removed
/// ones leave the registry (requests running on them finish), changed weights or
/// sources load in the background while the old variant keeps serving, variants whose
/// load failed are tried again, and changes that need no load (weights, switches,
/// prices, cards, guard overrides) apply at once.
pub fn apply_models(fresh: &Arc<Config>, registry: &Arc<ModelRegistry>) {
    let current: std::collections::BTreeMap<String, Arc<ModelConfig>> = registry
        .configs()
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let mut work = Vec::new();
    for m in &fresh.model {
        match current.get(&m.name) {
            // A variant whose load failed is tried again on every reload.
            Some(old) if !old.needs_reload(m) && !registry.failed(&m.name) => {
                if **old != *m {
                    tracing::info!(model = %m.name, "model settings updated");
                    registry.refresh(m.clone());
                }
            }
            Some(_) => {
                tracing::info!(model = %m.name, "model changed; loading it again while the running one serves");
                work.push((m.clone(), registry.begin_load(&m.name)));
            }
            None => {
                tracing::info!(model = %m.name, "model added");
                let generation =
                    registry.insert_later(m.clone(), ModelState::Loading("queued".into()));
                work.push((m.clone(), generation));
            }
        }
    }
    for name in current.keys() {
        if !fresh.model.iter().any(|m| m.name == *name) {
            tracing::info!(model = %name, "model removed; requests running on it finish");
            registry.remove(name);
            metrics::gauge!("floodgate_model_loaded", "model" => name.clone()).set(0.0);
        }
    }
    if !work.is_empty() {
        tokio::spawn(load_models(Arc::clone(fresh), Arc::clone(registry), work));
    }
}
