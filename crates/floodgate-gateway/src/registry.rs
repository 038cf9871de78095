//! Stage 5, route: model name → variant → backend.
//!
//! The registry holds every configured model variant (one `[[model]]` entry, or one
//! variant of a `[[model.versions]]` model), its live configuration, its state and its
//! runtime switches (enabled, weight). Models load in the background after the listener
//! is up, so `/healthz` answers at once and `/readyz` turns ready when every enabled
//! variant is servable. A request names a model in one of three ways:
//!
//! - `MODEL`: every variant of every version, chosen by weight;
//! - `MODEL@VERSION`: the variants of one version, chosen by weight;
//! - a variant's id (`MODEL@VERSION:VARIANT`, or a plain model's name): that variant.
//!
//! Choice among candidates: enabled first, then servable (loaded), then those in this
//! server's region if any, then by weight with a sticky bucket per user or key
//! (`sticky`), so a user stays on one variant while weights stand.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::backend::Backend;
use crate::config::ModelConfig;
use crate::error::GatewayError;

#[derive(Clone)]
pub enum ModelState {
    Loading(String),
    Ready(Arc<dyn Backend>),
    Failed(String),
}

impl ModelState {
    fn label(&self) -> String {
        match self {
            ModelState::Loading(why) => format!("loading: {why}"),
            ModelState::Ready(_) => "ready".into(),
            ModelState::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// One variant as the registry holds it.
#[derive(Clone)]
pub struct Entry {
    /// The live configuration (reloads replace it).
    pub config: Arc<ModelConfig>,
    pub state: ModelState,
    /// Runtime switches: start from the config, changed by the admin API.
    pub enabled: bool,
    pub weight: u32,
    /// Bumped whenever a load is started for this id, so that only the newest load's
    /// result is installed.
    generation: u64,
    /// Configured at start: readiness waits for it. A variant added by a reload does
    /// not take a serving instance out of rotation while it loads.
    at_start: bool,
    /// Where it runs (see [`ModelRegistry::region_of`]), worked out when its
    /// configuration is set rather than on every request.
    region: String,
}

impl Entry {
    /// Takes a configuration from the file. Its `weight` and `enabled` apply when they
    /// changed in the file; otherwise the runtime switches (admin API) stay.
    fn configure(&mut self, config: ModelConfig, region: String) {
        if self.config.weight != config.weight {
            self.weight = config.weight;
        }
        if self.config.enabled != config.enabled {
            self.enabled = config.enabled;
        }
        self.config = Arc::new(config);
        self.region = region;
    }
}

/// The variant a request was given.
#[derive(Clone)]
pub struct Resolved {
    /// The variant's id (its `[[model]]` name).
    pub id: String,
    pub backend: Arc<dyn Backend>,
    pub config: Arc<ModelConfig>,
}

/// A variant as the admin API and `/v1/models` show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VariantView {
    pub id: String,
    /// The public model it belongs to.
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    pub region: String,
    pub weight: u32,
    pub enabled: bool,
    /// `ready`, `loading: …` or `failed: …`.
    pub state: String,
}

pub struct ModelRegistry {
    /// This server's region: variants here are preferred.
    region: String,
    entries: RwLock<BTreeMap<String, Entry>>,
}

impl Default for ModelRegistry {
    fn default() -> Self {
        Self::new("")
    }
}

impl ModelRegistry {
    pub fn new(region: &str) -> Self {
        Self {
            region: region.to_string(),
            entries: RwLock::new(BTreeMap::new()),
        }
    }

    fn read(
        &self,
    ) -> Result<std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>>, GatewayError> {
        self.entries
            .read()
            .map_err(|_| GatewayError::Internal("model registry poisoned".into()))
    }

    /// Adds (or replaces) a variant configured at start with its configured switches;
    /// returns the load generation to pass to [`ModelRegistry::finish_load`].
    pub fn insert(&self, config: ModelConfig, state: ModelState) -> u64 {
        self.add(config, state, true)
    }

    /// Adds a variant that a configuration reload brought (readiness does not wait
    /// for it).
    pub fn insert_later(&self, config: ModelConfig, state: ModelState) -> u64 {
        self.add(config, state, false)
    }

    fn add(&self, config: ModelConfig, state: ModelState, at_start: bool) -> u64 {
        let Ok(mut m) = self.entries.write() else {
            return 0;
        };
        let generation = m.get(&config.name).map_or(1, |e| e.generation + 1);
        let region = self.region_of(&config);
        m.insert(
            config.name.clone(),
            Entry {
                enabled: config.enabled,
                weight: config.weight,
                config: Arc::new(config),
                state,
                generation,
                at_start,
                region,
            },
        );
        generation
    }

    /// Sets a variant's state.
    #[cfg(test)]
    pub fn set(&self, name: &str, state: ModelState) {
        if let Ok(mut m) = self.entries.write() {
            if let Some(e) = m.get_mut(name) {
                e.state = state;
            }
        }
    }

    /// Progress of load `generation` (`downloading`, `converting to q8_0`, ...): shown
    /// until the variant first serves, ignored once it does or once a newer load began.
    pub fn progress(&self, name: &str, generation: u64, label: &str) {
        if let Ok(mut m) = self.entries.write() {
            if let Some(e) = m.get_mut(name) {
                if e.generation == generation && !matches!(e.state, ModelState::Ready(_)) {
                    e.state = ModelState::Loading(label.to_string());
                }
            }
        }
    }

    /// Starts a reload of a variant that may be serving: it keeps serving until
    /// [`ModelRegistry::finish_load`] installs the new backend. Returns the generation.
    pub fn begin_load(&self, name: &str) -> u64 {
        let Ok(mut m) = self.entries.write() else {
            return 0;
        };
        match m.get_mut(name) {
            Some(e) => {
                e.generation += 1;
                e.generation
            }
            None => 0,
        }
    }

    /// Installs the result of load `generation` with the configuration it was loaded
    /// for, unless a newer load was started or the variant was removed meanwhile. A
    /// failed reload of a serving variant keeps the old backend. Returns whether the
    /// result was installed.
    pub fn finish_load(&self, config: ModelConfig, generation: u64, state: ModelState) -> bool {
        let Ok(mut m) = self.entries.write() else {
            return false;
        };
        let Some(e) = m.get_mut(&config.name) else {
            return false;
        };
        if e.generation != generation {
            return false;
        }
        if matches!(state, ModelState::Failed(_)) && matches!(e.state, ModelState::Ready(_)) {
            return false;
        }
        let region = self.region_of(&config);
        e.configure(config, region);
        e.state = state;
        true
    }

    /// Replaces a variant's configuration where no reload is needed (prices, card,
    /// guard overrides); the file's `weight` and `enabled` apply when they changed in
    /// the file, otherwise the runtime switches stay.
    pub fn refresh(&self, config: ModelConfig) {
        let region = self.region_of(&config);
        if let Ok(mut m) = self.entries.write() {
            if let Some(e) = m.get_mut(&config.name) {
                e.configure(config, region);
            }
        }
    }

    /// Removes a variant. Requests already running on it keep their backend, which
    /// shuts down when the last of them finishes.
    pub fn remove(&self, name: &str) -> bool {
        self.entries
            .write()
            .map(|mut m| m.remove(name).is_some())
            .unwrap_or(false)
    }

    /// The configuration of every variant, as last loaded or refreshed.
    pub fn configs(&self) -> Vec<Arc<ModelConfig>> {
        self.entries
            .read()
            .map(|m| m.values().map(|e| Arc::clone(&e.config)).collect())
            .unwrap_or_default()
    }

    /// True when the variant's last load failed and nothing serves under its name.
    pub fn failed(&self, id: &str) -> bool {
        self.entries
            .read()
            .map(|m| matches!(m.get(id).map(|e| &e.state), Some(ModelState::Failed(_))))
            .unwrap_or(false)
    }

    /// The configuration of one variant.
    #[cfg(test)]
    pub fn config_of(&self, id: &str) -> Option<Arc<ModelConfig>> {
        self.entries
            .read()
            .ok()
            .and_then(|m| m.get(id).map(|e| Arc::clone(&e.config)))
    }

    /// Switches a variant on or off and/or changes its weight (admin API).
    pub fn update(
        &self,
        id: &str,
        enabled: Option<bool>,
        weight: Option<u32>,
    ) -> Result<VariantView, GatewayError> {
        let mut m = self
            .entries
            .write()
            .map_err(|_| GatewayError::Internal("model registry poisoned".into()))?;
        let Some(e) = m.get_mut(id) else {
            return Err(GatewayError::ModelNotFound(id.to_string()));
        };
        if let Some(on) = enabled {
            e.enabled = on;
        }
        if let Some(w) = weight {
            e.weight = w;
        }
        Ok(self.view(id, e))
    }

    fn view(&self, id: &str, e: &Entry) -> VariantView {
        let c = &e.config;
        VariantView {
            id: id.to_string(),
            model: c.public_name().to_string(),
            version: c.version.clone(),
            variant: c.variant.clone(),
            backend: c.backend.to_string(),
            precision: c.precision.clone(),
            region: e.region.clone(),
            weight: e.weight,
            enabled: e.enabled,
            state: e.state.label(),
        }
    }

    /// A variant's region: its own, else an upstream model's endpoints' regions, else
    /// (a local model) this server's.
    fn region_of(&self, c: &ModelConfig) -> String {
        if let Some(r) = &c.region {
            return r.clone();
        }
        if c.is_upstream() {
            let mut regions: Vec<&str> = c.endpoints.iter().map(|e| e.region.as_str()).collect();
            regions.sort_unstable();
            regions.dedup();
            return regions.join(",");
        }
        self.region.clone()
    }

    /// Every variant with its switches and state, by id.
    pub fn variants(&self) -> Vec<VariantView> {
        self.entries
            .read()
            .map(|m| m.iter().map(|(id, e)| self.view(id, e)).collect())
            .unwrap_or_default()
    }

    /// The candidates `name` stands for (see the module docs), and whether it named one
    /// variant exactly.
    fn candidates<'a>(
        m: &'a BTreeMap<String, Entry>,
        name: &str,
    ) -> (Vec<(&'a String, &'a Entry)>, bool) {
        if let Some((id, e)) = m.get_key_value(name) {
            return (vec![(id, e)], true);
        }
        let found = m
            .iter()
            .filter(|(_, e)| e.config.is_variant_of(name))
            .collect();
        (found, false)
    }

    /// Every name a request can use: variant ids, `MODEL@VERSION` and `MODEL`.
    pub fn servable_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .read()
            .map(|m| m.values().flat_map(|e| e.config.names()).collect())
            .unwrap_or_default();
        names.sort();
        names.dedup();
        names
    }

    /// True when a request for `name` would find a loaded, enabled variant.
    pub fn servable(&self, name: &str) -> bool {
        self.resolve(name, "").is_ok()
    }

    /// Picks the variant that serves a request for `name`; `sticky` (a user or key id)
    /// keeps a caller on the same variant while the weights stand. An empty `sticky`
    /// picks at random by weight.
    pub fn resolve(&self, name: &str, sticky: &str) -> Result<Resolved, GatewayError> {
        let m = self.read()?;
        let (all, exact) = Self::candidates(&m, name);
        if all.is_empty() {
            return Err(GatewayError::ModelNotFound(name.to_string()));
        }
        let enabled: Vec<_> = all.into_iter().filter(|(_, e)| e.enabled).collect();
        if enabled.is_empty() {
            return Err(GatewayError::Overloaded(format!(
                "The model `{name}` is disabled by an administrator."
            )));
        }
        // A variant named exactly serves even at weight 0 (a shadow or test variant).
        let weighted: Vec<_> = enabled
            .into_iter()
            .filter(|(_, e)| exact || e.weight > 0)
            .collect();
        if weighted.is_empty() {
            return Err(GatewayError::Overloaded(format!(
                "Every variant of `{name}` has weight 0; name a variant to reach it."
            )));
        }
        let ready: Vec<(&String, &Entry, Arc<dyn Backend>)> = weighted
            .iter()
            .filter_map(|(id, e)| match &e.state {
                ModelState::Ready(b) => Some((*id, *e, Arc::clone(b))),
                _ => None,
            })
            .collect();
        if ready.is_empty() {
            if weighted
                .iter()
                .any(|(_, e)| matches!(e.state, ModelState::Loading(_)))
            {
                return Err(GatewayError::ModelLoading(name.to_string()));
            }
            let why = weighted
                .iter()
                .find_map(|(_, e)| match &e.state {
                    ModelState::Failed(w) => Some(w.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            return Err(GatewayError::Overloaded(format!(
                "The model `{name}` failed to load: {why}"
            )));
        }
        let weighted = ready;
        let here: Vec<_> = weighted
            .iter()
            .filter(|(_, e, _)| {
                self.region.is_empty()
                    || e.region
                        .split(',')
                        .any(|r| r.is_empty() || r == self.region)
            })
            .cloned()
            .collect();
        let pool = if here.is_empty() { weighted } else { here };
        let bucket = if sticky.is_empty() {
            rand::random::<f64>()
        } else {
            crate::sticky::bucket(name, sticky)
        };
        let weights: Vec<f64> = pool
            .iter()
            .map(|(_, e, _)| f64::from(e.weight.max(u32::from(exact))))
            .collect();
        // Every weight in the pool is positive (weight 0 serves only when named exactly,
        // and then counts as 1), so there is always a pick.
        let i = crate::sticky::pick(&weights, bucket).unwrap_or(0);
        let (id, e, backend) = &pool[i];
        Ok(Resolved {
            id: (*id).clone(),
            backend: Arc::clone(backend),
            config: Arc::clone(&e.config),
        })
    }

    /// Every variant, its state, whether it is enabled, and whether readiness waits
    /// for it (enabled and configured at start).
    pub fn snapshot(&self) -> Vec<(String, ModelState, bool, bool)> {
        self.entries
            .read()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.state.clone(),
                            v.enabled,
                            v.enabled && v.at_start,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::backend::{BackendInfo, Generation};

    struct Fake(BackendInfo);

    #[async_trait::async_trait]
    impl Backend for Fake {
        fn info(&self) -> &BackendInfo {
            &self.0
        }
        async fn generate(
            &self,
            _prompt: &crate::validate::PromptInput,
            _params: &crate::validate::GenParams,
            _default_max_tokens: u32,
            _echo: bool,
        ) -> Result<Generation, GatewayError> {
            Err(GatewayError::Internal("not used".into()))
        }
    }

    fn ready(name: &str) -> ModelState {
        ModelState::Ready(Arc::new(Fake(BackendInfo {
            model: name.into(),
            context_length: 100,
            chat: true,
            owned_by: "test".into(),
            created: 0,
        })))
    }

    fn variant(group: &str, version: &str, variant: &str, weight: u32) -> ModelConfig {
        let mut c = ModelConfig::named(&format!("{group}@{version}:{variant}"));
        c.group = Some(group.into());
        c.version = Some(version.into());
        c.variant = Some(variant.into());
        c.weight = weight;
        c
    }

    fn registry() -> ModelRegistry {
        let r = ModelRegistry::new("eu");
        for (v, x, w) in [("1", "q8", 3), ("1", "q4", 1), ("2", "q8", 0)] {
            let c = variant("chat", v, x, w);
            let id = c.name.clone();
            r.insert(c, ready(&id));
        }
        r
    }

    #[test]
    fn names_resolve_to_groups_versions_and_variants() {
        let r = registry();
        assert_eq!(r.resolve("chat@1:q4", "u").unwrap().id, "chat@1:q4");
        // Weight 0 is reachable only by its exact id or version.
        assert_eq!(r.resolve("chat@2:q8", "u").unwrap().id, "chat@2:q8");
        assert!(matches!(
            r.resolve("chat@2", "u"),
            Err(GatewayError::Overloaded(_))
        ));
        for u in 0..50 {
            let id = r.resolve("chat", &format!("user-{u}")).unwrap().id;
            assert!(id.starts_with("chat@1:"), "{id}");
        }
        assert!(matches!(
            r.resolve("chat@3", "u"),
            Err(GatewayError::ModelNotFound(_))
        ));
        assert!(matches!(
            r.resolve("cha", "u"),
            Err(GatewayError::ModelNotFound(_))
        ));
    }

    #[test]
    fn weights_split_traffic_and_assignment_is_sticky() {
        let r = registry();
        let mut q8 = 0;
        for u in 0..4000 {
            let user = format!("user-{u}");
            let first = r.resolve("chat", &user).unwrap().id;
            assert_eq!(r.resolve("chat", &user).unwrap().id, first, "sticky");
            if first == "chat@1:q8" {
                q8 += 1;
            }
        }
        // Weights 3:1 → 75% ± a few points.
        assert!((2850..=3150).contains(&q8), "q8 share {q8}/4000");
    }

    #[test]
    fn disabled_and_unloaded_variants_are_skipped() {
        let r = registry();
        r.update("chat@1:q8", Some(false), None).unwrap();
        for u in 0..50 {
            assert_eq!(r.resolve("chat", &format!("u{u}")).unwrap().id, "chat@1:q4");
        }
        assert!(matches!(
            r.resolve("chat@1:q8", "u"),
            Err(GatewayError::Overloaded(_))
        ));
        r.set("chat@1:q4", ModelState::Loading("weights".into()));
        assert!(matches!(
            r.resolve("chat", "u"),
            Err(GatewayError::ModelLoading(_))
        ));
        r.set("chat@1:q4", ModelState::Failed("bad file".into()));
        match r.resolve("chat@1", "u") {
            Err(GatewayError::Overloaded(m)) => assert!(m.contains("bad file"), "{m}"),
            _ => panic!("expected a failure"),
        }
        r.update("chat@1:q8", Some(true), Some(5)).unwrap();
        assert_eq!(r.resolve("chat", "u").unwrap().id, "chat@1:q8");
    }

    #[test]
    fn the_local_region_is_preferred() {
        let r = ModelRegistry::new("eu");
        let mut far = variant("chat", "1", "us", 100);
        far.region = Some("us".into());
        r.insert(far, ready("chat@1:us"));
        let mut near = variant("chat", "1", "eu", 1);
        near.region = Some("eu".into());
        r.insert(near, ready("chat@1:eu"));
        for u in 0..50 {
            assert_eq!(r.resolve("chat", &format!("u{u}")).unwrap().id, "chat@1:eu");
        }
        r.update("chat@1:eu", Some(false), None).unwrap();
        assert_eq!(r.resolve("chat", "u").unwrap().id, "chat@1:us");
    }

    #[test]
    fn stale_loads_and_failed_reloads_do_not_replace_a_serving_variant() {
        let r = registry();
        let c = r.config_of("chat@1:q8").unwrap();
        let g1 = r.begin_load("chat@1:q8");
        let g2 = r.begin_load("chat@1:q8");
        assert!(!r.finish_load((*c).clone(), g1, ready("old")));
        assert!(!r.finish_load((*c).clone(), g2, ModelState::Failed("no such file".into())));
        assert_eq!(r.variants()[0].state, "ready");
        assert!(r.finish_load((*c).clone(), g2, ready("new")));
        assert_eq!(
            r.resolve("chat@1:q8", "").unwrap().backend.info().model,
            "new"
        );
        assert!(r.remove("chat@1:q8"));
        assert!(!r.finish_load((*c).clone(), g2 + 1, ready("late")));
    }

    #[test]
    fn refresh_keeps_runtime_switches_unless_the_file_changed_them() {
        let r = registry();
        r.update("chat@1:q8", None, Some(50)).unwrap();
        let mut c = (*r.config_of("chat@1:q8").unwrap()).clone();
        c.usd_per_1k_prompt_tokens = 0.5;
        r.refresh(c.clone());
        let v = r
            .variants()
            .into_iter()
            .find(|v| v.id == "chat@1:q8")
            .unwrap();
        assert_eq!(v.weight, 50);
        c.weight = 7;
        r.refresh(c);
        let v = r
            .variants()
            .into_iter()
            .find(|v| v.id == "chat@1:q8")
            .unwrap();
        assert_eq!(v.weight, 7);
    }
}
