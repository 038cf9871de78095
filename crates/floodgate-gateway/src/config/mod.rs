//! Configuration: one TOML file, compiled-in defaults, `FLOODGATE_*` overrides.
//!
//! Loading goes raw TOML → environment overrides → typed sections → semantic checks.
//! Every problem found on the way is collected and reported together, each with its
//! path (`server.listen`, `model[1].kv_cache_tokens`), so a broken file is fixed in one
//! round. Unknown keys are errors, never silently ignored.
//!
//! Every key and its default is listed in `docs/configuration.md`; a test keeps that
//! page and [`Config::default`] in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The string names of a closed set of configuration values (the same ones serde reads):
/// `ALL`, `as_str`, `Display`, and a `FromStr` whose error lists the allowed values (the
/// command line parses `--role` and `--log-format` with it).
macro_rules! value_set {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|x| x.as_str() == s).ok_or_else(|| {
                    let allowed: Vec<String> = Self::ALL.iter().map(|x| format!("`{x}`")).collect();
                    format!("`{s}` must be one of {}", allowed.join(", "))
                })
            }
        }
    };
}
pub(crate) use value_set;

mod auth;
mod costs;
mod dashboard;
mod drift;
mod events;
mod feedback;
mod guard;
mod limits;
mod model;
mod models;
mod ratelimit;
mod route;
mod server;
mod store;
mod telemetry;

pub use auth::{AuthConfig, Scope};
pub use costs::{BudgetPeriod, CostsConfig};
pub use dashboard::DashboardConfig;
pub use drift::{DriftConfig, DriftEmbedder};
pub use events::{ClientIpMode, EventsConfig, FsyncPolicy, OverflowPolicy};
pub use feedback::FeedbackConfig;
pub use guard::{GuardConfig, Policy};
pub use limits::LimitsConfig;
pub use model::{BackendKind, EndpointConfig, ModelConfig, DEFAULT_MODELS, MAX_WEIGHT};
pub use models::ModelsConfig;
pub use ratelimit::{parse_net, LimiterBackend, OnBackendError, RateLimitConfig};
pub use route::{Checks, RouteConfig, RoutePolicy, Sticky, StreamPost};
pub use server::{LogFormat, Role, ServerConfig};
pub use store::{redact, StoreConfig, StoreUrl};
pub use telemetry::{OtlpProtocol, TelemetryConfig};

/// Environment variables with this prefix override file values: `FLOODGATE_SERVER__LISTEN`
/// sets `server.listen` (double underscore separates path parts).
pub const ENV_PREFIX: &str = "FLOODGATE_";

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub models: ModelsConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub ratelimit: RateLimitConfig,
    pub guard: GuardConfig,
    pub abuse: floodgate_guard::cluster::ClusterConfig,
    pub feedback: FeedbackConfig,
    pub costs: CostsConfig,
    pub events: EventsConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    pub drift: DriftConfig,
    pub dashboard: DashboardConfig,
    pub model: Vec<ModelConfig>,
    pub route: Vec<RouteConfig>,
    /// The file this configuration was read from, if any (route reloads re-read it).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// All problems found in a configuration, each with its path.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Loads `path` (if given, or `./floodgate.toml` if present) plus the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigErrors> {
        let default_path = Path::new("floodgate.toml");
        let (text, origin) = match path {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(t) => (t, p.display().to_string()),
                Err(e) => {
                    return Err(ConfigErrors(vec![format!(
                        "{}: cannot read: {e}",
                        p.display()
                    )]))
                }
            },
            None if default_path.is_file() => match std::fs::read_to_string(default_path) {
                Ok(t) => (t, default_path.display().to_string()),
                Err(e) => return Err(ConfigErrors(vec![format!("floodgate.toml: {e}")])),
            },
            None => (String::new(), "defaults".into()),
        };
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let source = match path {
            Some(p) => Some(p.to_path_buf()),
            None => default_path.is_file().then(|| default_path.to_path_buf()),
        };
        let mut config = Self::from_toml_with_env(&text, &env).map_err(|mut e| {
            for msg in &mut e.0 {
                *msg = format!("{origin}: {msg}");
            }
            e
        })?;
        config.source = source;
        Ok(config)
    }

    /// Parses TOML text with the given `FLOODGATE_*` overrides applied.
    pub fn from_toml_with_env(text: &str, env: &[(String, String)]) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => return Err(ConfigErrors(vec![e.to_string()])),
        };
        apply_env(&mut table, env, &mut errors);
        let mut config = Config::default();
        for (key, value) in table {
            match key.as_str() {
                "server" => config.server = section(&key, value, &mut errors),
                "models" => config.models = section(&key, value, &mut errors),
                "limits" => config.limits = section(&key, value, &mut errors),
                "auth" => config.auth = section(&key, value, &mut errors),
                "ratelimit" => config.ratelimit = section(&key, value, &mut errors),
                "guard" => config.guard = section(&key, value, &mut errors),
                "abuse" => config.abuse = section(&key, value, &mut errors),
                "feedback" => config.feedback = section(&key, value, &mut errors),
                "costs" => config.costs = section(&key, value, &mut errors),
                "events" => config.events = section(&key, value, &mut errors),
                "store" => config.store = section(&key, value, &mut errors),
                "telemetry" => config.telemetry = section(&key, value, &mut errors),
                "drift" => config.drift = section(&key, value, &mut errors),
                "dashboard" => config.dashboard = section(&key, value, &mut errors),
                "route" => match value {
                    toml::Value::Array(items) => {
                        for (i, item) in items.into_iter().enumerate() {
                            let path = format!("route[{i}]");
                            if let Some(r) = section_opt::<RouteConfig>(&path, item, &mut errors) {
                                config.route.push(r);
                            }
                        }
                    }
                    _ => errors.push("route: expected an array of tables ([[route]])".into()),
                },
                "model" => match value {
                    toml::Value::Array(items) => {
                        for (i, item) in items.into_iter().enumerate() {
                            let path = format!("model[{i}]");
                            for item in model::expand_versions(item, &path, &mut errors) {
                                let item = model::normalise_source(item);
                                let path = match item.get("name").and_then(|n| n.as_str()) {
                                    Some(n) if n.contains('@') => format!("{path}({n})"),
                                    _ => path.clone(),
                                };
                                if let Some(m) = section_opt::<ModelConfig>(&path, item, &mut errors) {
                                    config.model.push(m);
                                }
                            }
                        }
                    }
                    _ => errors.push("model: expected an array of tables ([[model]])".into()),
                },
                other => errors.push(format!(
                    "{other}: unknown section (expected one of server, models, limits, auth, ratelimit, guard, abuse, feedback, costs, events, store, telemetry, drift, dashboard, model, route)"
                )),
            }
        }
        if config.model.is_empty() {
            config.model = DEFAULT_MODELS
                .iter()
                .map(|n| ModelConfig::named(n))
                .collect();
        }
        // The default cascade, whenever its two models are served and no route is configured.
        if config.route.is_empty()
            && DEFAULT_MODELS
                .iter()
                .all(|d| config.model.iter().any(|m| m.name == *d))
        {
            config.route = vec![RouteConfig::default_auto(DEFAULT_MODELS)];
        }
        config.validate(&mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn validate(&self, errors: &mut Vec<String>) {
        self.validate_routes(errors);
        self.events.validate(errors);
        errors.extend(self.role_errors());
        self.server.validate(errors);
        self.limits.validate(errors);
        self.ratelimit.validate(errors);
        self.store.validate(errors);
        self.guard.validate(errors);
        self.telemetry.validate(errors);
        self.drift.validate(errors);
        self.dashboard.validate(errors);
        model::validate_models(&self.model, errors);
    }

    fn validate_routes(&self, errors: &mut Vec<String>) {
        if !(self.costs.usd_per_compute_hour.is_finite() && self.costs.usd_per_compute_hour >= 0.0)
        {
            errors.push("costs.usd_per_compute_hour: must be a non-negative number".into());
        }
        let names = self.servable_names();
        let models: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.route.iter().enumerate() {
            let at = format!("route[{i}]");
            if !seen.insert(r.name.as_str()) {
                errors.push(format!("{at}.name: `{}` is configured twice", r.name));
            }
            r.validate(&at, &models, errors);
        }
    }

    /// Problems with `server.role` and the models it may serve (checked again after
    /// `serve --role` overrides the file).
    pub fn role_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let role = self.server.role;
        if role == Role::Analytics && self.events.nats_url.is_empty() {
            errors.push("events.nats_url: the analytics role consumes events from NATS JetStream; give its URL".into());
        }
        for (i, m) in self.model.iter().enumerate() {
            if role == Role::Analytics {
                break;
            }
            if role == Role::Worker && m.is_upstream() {
                errors.push(format!(
                    "model[{i}]: a worker serves local models only; `{}` is an upstream model",
                    m.name
                ));
            }
            if role == Role::Gateway && !m.is_upstream() {
                errors.push(format!(
                    "model[{i}]: a gateway runs no engine; `{}` must be `backend = \"upstream\"` (or use role `all`)",
                    m.name
                ));
            } else if !cfg!(feature = "engine") && !m.is_upstream() {
                errors.push(format!("model[{i}]: {}", no_engine(&m.name)));
            }
        }
        errors
    }

    /// The configuration as this process's role runs it. A worker serves its local
    /// engines to a gateway, which applies the cascade routes and the guards itself:
    /// so it has no routes, every guard policy is `allow` and nothing is redacted.
    /// Authentication stays as configured.
    pub fn for_role(mut self) -> Self {
        if self.server.role == Role::Analytics {
            // It serves no model and routes nothing; its own log has no store sink
            // (the consumer writes the store).
            self.model.clear();
            self.route.clear();
            self.events.store_sink = false;
        }
        if self.server.role == Role::Worker {
            self.route.clear();
            let g = &mut self.guard;
            g.input_policy = Policy::Allow;
            g.output_policy = Policy::Allow;
            g.redact_input_pii = false;
            g.redact_output_pii = false;
            for m in &mut self.model {
                m.input_policy = None;
                m.output_policy = None;
                m.redact_input_pii = None;
                m.redact_output_pii = None;
            }
            // Admission limits are the gateways' job too: a worker sees all its
            // traffic from a few gateway addresses (and one worker key), which the
            // per-IP and per-key defaults would throttle. A worker protects itself
            // with its queue (`max_queue`, the estimated queue wait); a key's own limits
            // (`keys create --rpm ...`) still apply.
            // Drift is about what users send: the gateway in front samples it.
            self.drift.enabled = false;
            let r = &mut self.ratelimit;
            r.key_requests_per_minute = 0.0;
            r.key_tokens_per_minute = 0.0;
            r.key_cost_usd_per_day = 0.0;
            r.key_max_concurrent = 0;
            r.ip_requests_per_minute = 0.0;
            r.ip_tokens_per_minute = 0.0;
            r.tenant_requests_per_minute = 0.0;
            r.tenant_tokens_per_minute = 0.0;
        }
        self
    }

    /// Every name a request (or a route's tier) can put in `model`: each model or
    /// variant, and each model with versions as `MODEL` and `MODEL@VERSION`.
    pub fn servable_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.model.iter().flat_map(ModelConfig::names).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The configured model a name stands for offline (CLI tools): the model or
    /// variant of that name, else the enabled variant of that model (or `MODEL@VERSION`)
    /// with the largest weight.
    pub fn model_for(&self, name: &str) -> Option<&ModelConfig> {
        if let Some(m) = self.model.iter().find(|m| m.name == name) {
            return Some(m);
        }
        self.model
            .iter()
            .filter(|m| m.enabled && m.is_variant_of(name))
            .max_by_key(|m| m.weight)
    }

    /// The model's compute price, US dollars per hour.
    pub fn compute_price(&self, model: &str) -> f64 {
        self.model_for(model)
            .and_then(|m| m.usd_per_compute_hour)
            .unwrap_or(self.costs.usd_per_compute_hour)
    }

    /// The effective configuration as TOML (for `--print-config` and the docs test).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigErrors> {
        self.server
            .listen
            .parse()
            .map_err(|e| ConfigErrors(vec![format!("server.listen: {e}")]))
    }
}

/// A config value that may reference a secret: `env::NAME` reads the environment
/// variable `NAME`, anything else is the value itself. Secrets never sit in the file.
pub fn resolve_secret(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix("env::") {
        Some(name) => std::env::var(name)
            .map_err(|_| anyhow::anyhow!("environment variable `{name}` is not set")),
        None => Ok(value.to_string()),
    }
}

impl Config {
    /// The state database: `auth.database`, else `floodgate.db` in the model home.
    pub fn state_db_path(&self) -> PathBuf {
        if !self.auth.database.is_empty() {
            return PathBuf::from(&self.auth.database);
        }
        let home = if self.models.home.is_empty() {
            floodgate_models::ModelStore::default_root()
        } else {
            PathBuf::from(&self.models.home)
        };
        home.join("floodgate.db")
    }

    /// Where the stores live: `store.url` (with `env::NAME` read from the environment),
    /// else SQLite at [`Config::state_db_path`].
    pub fn store_url(&self) -> Result<StoreUrl, ConfigErrors> {
        let url = resolve_secret(&self.store.url)
            .map_err(|e| ConfigErrors(vec![format!("store.url: {e}")]))?;
        StoreUrl::parse(&url, self.state_db_path())
            .map_err(|e| ConfigErrors(vec![format!("store.url: {e}")]))
    }

    /// Whether requests must carry a key: as configured, else unless on loopback.
    pub fn auth_required(&self) -> bool {
        self.auth
            .required
            .unwrap_or_else(|| self.listen_addr().map_or(true, |a| !a.ip().is_loopback()))
    }
}

fn section<T: DeserializeOwned + Default>(
    path: &str,
    value: toml::Value,
    errors: &mut Vec<String>,
) -> T {
    section_opt(path, value, errors).unwrap_or_default()
}

/// Deserializes one table, collecting *every* bad key: after each failure the key at
/// fault is removed and deserialization is retried.
fn section_opt<T: DeserializeOwned>(
    path: &str,
    value: toml::Value,
    errors: &mut Vec<String>,
) -> Option<T> {
    let mut value = value;
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => return Some(v),
            Err(err) => {
                // toml appends "in `key`" on a line of its own; the path says it already.
                let inner = err
                    .inner()
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let field = err
                    .path()
                    .iter()
                    .next()
                    .map(|s| s.to_string())
                    .filter(|s| s != "?" && !s.is_empty())
                    .or_else(|| {
                        // "unknown field `x`" / "missing field `x`" name the key in backticks.
                        inner.split('`').nth(1).map(str::to_string)
                    });
                let at = match &field {
                    Some(f) => format!("{path}.{f}"),
                    None => path.to_string(),
                };
                errors.push(format!("{at}: {inner}"));
                let removed = match (&field, value.as_table_mut()) {
                    (Some(f), Some(t)) if !inner.starts_with("missing field") => {
                        t.remove(f).is_some()
                    }
                    _ => false,
                };
                if !removed {
                    return None;
                }
            }
        }
    }
    None
}

fn apply_env(table: &mut toml::Table, env: &[(String, String)], errors: &mut Vec<String>) {
    for (key, raw) in env {
        let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // FLOODGATE_HOME is the documented shorthand for the model cache.
        let parts: Vec<String> = if rest == "HOME" {
            vec!["models".into(), "home".into()]
        } else {
            rest.split("__").map(|p| p.to_ascii_lowercase()).collect()
        };
        if parts.len() != 2 {
            // Other FLOODGATE_* variables (e.g. test URLs) are not config keys.
            continue;
        }
        let value = parse_env_value(raw);
        let Some(section) = table
            .entry(parts[0].clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
        else {
            errors.push(format!("{key}: `{}` is not a section", parts[0]));
            continue;
        };
        section.insert(parts[1].clone(), value);
    }
}

/// Environment values are TOML scalars when they parse as one (`8`, `true`), else strings.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Why a local model cannot run in this build.
pub fn no_engine(model: &str) -> String {
    format!(
        "`{model}` is a local model, and this binary was built without the `engine` feature (llama.cpp); serve it from a full build or set `backend = \"upstream\"`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSIONED: &str = r#"
        [[model]]
        name = "chat"
        path = "/models/chat-v1.gguf"
        max_batch_size = 8
        usd_per_1k_completion_tokens = 0.5
        [model.card]
        description = "Our chat model"
        [[model.versions]]
        version = "2024-06"
        [[model.versions.variants]]
        variant = "q8"
        precision = "q8_0"
        weight = 9
        [[model.versions.variants]]
        variant = "q4"
        precision = "q4_k"
        max_batch_size = 16
        [[model.versions]]
        version = 2
        path = "/models/chat-v2.gguf"
        weight = 0
        enabled = false
        [[route]]
        name = "both"
        tiers = ["chat@2024-06", "chat"]
        policy = "first"
    "#;

    #[test]
    fn versions_and_variants_flatten_with_inheritance() {
        let c = Config::from_toml_with_env(VERSIONED, &[]).unwrap();
        let names: Vec<_> = c.model.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["chat@2024-06:q8", "chat@2024-06:q4", "chat@2"]);
        let (q8, q4, v2) = (&c.model[0], &c.model[1], &c.model[2]);
        assert_eq!(q8.group.as_deref(), Some("chat"));
        assert_eq!(q8.version.as_deref(), Some("2024-06"));
        assert_eq!(q8.variant.as_deref(), Some("q8"));
        assert_eq!(q8.precision.as_deref(), Some("q8_0"));
        assert_eq!((q8.weight, q4.weight, v2.weight), (9, 1, 0));
        assert_eq!((q8.max_batch_size, q4.max_batch_size), (8, 16));
        assert_eq!(v2.path.as_deref(), Some(Path::new("/models/chat-v2.gguf")));
        assert!(q8.enabled && !v2.enabled);
        assert_eq!(v2.variant, None);
        for m in &c.model {
            assert_eq!(m.public_name(), "chat");
            assert_eq!(m.usd_per_1k_completion_tokens, 0.5);
            assert_eq!(m.card.as_ref().unwrap().description, "Our chat model");
        }
        assert_eq!(
            c.servable_names(),
            [
                "chat",
                "chat@2",
                "chat@2024-06",
                "chat@2024-06:q4",
                "chat@2024-06:q8"
            ]
        );
        // Offline tools take the heaviest enabled variant.
        assert_eq!(c.model_for("chat").unwrap().name, "chat@2024-06:q8");
        assert_eq!(c.model_for("chat@2").unwrap().name, "chat@2");
        // The effective configuration reads back as the same thing.
        let again = Config::from_toml_with_env(&c.to_toml(), &[]).unwrap();
        assert_eq!(again.model, c.model);
    }

    #[test]
    fn what_needs_a_reload_and_what_does_not() {
        let c = Config::from_toml_with_env(VERSIONED, &[]).unwrap();
        let old = &c.model[0];
        let mut soft = old.clone();
        soft.weight = 3;
        soft.enabled = false;
        soft.usd_per_1k_prompt_tokens = 1.0;
        soft.card = None;
        assert!(!old.needs_reload(&soft));
        let mut hard = old.clone();
        hard.precision = Some("f16".into());
        assert!(old.needs_reload(&hard));
        let mut hard = old.clone();
        hard.max_batch_size = 2;
        assert!(old.needs_reload(&hard));
    }

    #[test]
    fn bad_versions_are_reported_with_their_paths() {
        let cases = [
            (
                "[[model]]\nname = \"x\"\npath = \"/m\"\n[[model.versions]]\npath = \"/n\"\n",
                "model[0].versions[0].version",
            ),
            (
                "[[model]]\nname = \"x y\"\npath = \"/m\"\n[[model.versions]]\nversion = \"1\"\n",
                "model[0].name",
            ),
            (
                "[[model]]\nname = \"x\"\npath = \"/m\"\n[[model.versions]]\nversion = \"1:2\"\n",
                "model[0].versions[0].version",
            ),
            (
                "[[model]]\nname = \"x\"\npath = \"/m\"\n[[model.versions]]\nversion = \"1\"\n[[model.versions.variants]]\nprecision = \"f16\"\n",
                "model[0].versions[0].variants[0].variant",
            ),
            (
                "[[model]]\nname = \"x\"\npath = \"/m\"\n[[model.versions]]\nversion = \"1\"\nweight = -1\n",
                "model[0](x@1).weight",
            ),
            (
                "[[model]]\nname = \"x@1\"\npath = \"/m\"\n",
                "`@` separates a model from its version",
            ),
            (
                "[[model]]\nname = \"x\"\npath = \"/m\"\n[[model.versions]]\nversion = \"1\"\n[[model]]\nname = \"x\"\npath = \"/m\"\n",
                "both a model with versions and a plain model",
            ),
            (
                "[[model]]\nname = \"x\"\npath = \"/m\"\n[[model.versions]]\nversion = \"1\"\n[[route]]\nname = \"r\"\ntiers = [\"x@2\"]\n",
                "route[0]",
            ),
        ];
        for (text, needle) in cases {
            let err = Config::from_toml_with_env(text, &[]).unwrap_err();
            let all = err.0.join("\n");
            assert!(all.contains(needle), "{text}\n→ {all}");
        }
    }

    #[test]
    fn empty_file_gives_defaults_with_the_default_models() {
        let c = Config::from_toml_with_env("", &[]).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        let names: Vec<_> = c.model.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, DEFAULT_MODELS);
    }

    #[test]
    fn every_error_is_reported_at_once_with_its_path() {
        let text = r#"
            [server]
            listen = "nonsense"
            shutdown_grace_seconds = "soon"
            colour = "blue"
            [limits]
            max_body_bytes = 10
            [[model]]
            name = "x"
            max_batch_size = "many"
            [whatever]
        "#;
        let err = Config::from_toml_with_env(text, &[]).unwrap_err();
        let all = err.0.join("\n");
        for needle in [
            "server.shutdown_grace_seconds",
            "server.colour",
            "server.listen",
            "limits.max_body_bytes",
            "model[0].max_batch_size",
            "whatever: unknown section",
        ] {
            assert!(all.contains(needle), "missing {needle} in:\n{all}");
        }
    }

    #[test]
    fn environment_overrides_file_values() {
        let env = vec![
            (
                "FLOODGATE_SERVER__LISTEN".to_string(),
                "0.0.0.0:9000".to_string(),
            ),
            (
                "FLOODGATE_LIMITS__DEFAULT_MAX_TOKENS".to_string(),
                "77".to_string(),
            ),
            ("FLOODGATE_HOME".to_string(), "/srv/models".to_string()),
            (
                "FLOODGATE_TEST_REDIS_URL".to_string(),
                "redis://x".to_string(),
            ),
        ];
        let c = Config::from_toml_with_env("[server]\nlisten = \"127.0.0.1:1\"\n", &env).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.limits.default_max_tokens, 77);
        assert_eq!(c.models.home, "/srv/models");
    }

    #[test]
    fn the_default_route_cascades_the_default_models_and_routes_are_checked() {
        let c = Config::from_toml_with_env("", &[]).unwrap();
        assert_eq!(c.route.len(), 1);
        assert_eq!(c.route[0].name, "auto");
        assert_eq!(c.route[0].tiers, DEFAULT_MODELS);
        // Other models: no default route.
        let c = Config::from_toml_with_env("[[model]]\nname = \"gemma3-270m\"\n", &[]).unwrap();
        assert!(c.route.is_empty());
        let text = "[[model]]\nname = \"gemma3-270m\"\n[model.card]\nrisk_category = \"scary\"\n[[route]]\nname = \"fast\"\ntiers = [\"gemma3-270m\", \"nope\"]\npolicy = \"sometimes\"\n[costs]\nbudget_period = \"week\"\n";
        let all = Config::from_toml_with_env(text, &[])
            .unwrap_err()
            .0
            .join("\n");
        for want in [
            "route[0].tiers: `nope` is not a configured model",
            "route[0].policy: unknown variant `sometimes`",
            "costs.budget_period",
            "model[0].card.risk_category: `scary`",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn model_sources_are_checked() {
        let text = "[[model]]\nname = \"mine\"\nsource = \"ftp://nope\"\n[[model]]\nname = \"unknown-model\"\n";
        let all = Config::from_toml_with_env(text, &[])
            .unwrap_err()
            .0
            .join("\n");
        assert!(all.contains("model[0].source[0]"), "{all}");
        assert!(
            all.contains("model[1]: `unknown-model` is not in the built-in catalog"),
            "{all}"
        );
    }

    #[test]
    fn upstream_models_and_roles_are_checked() {
        let ok = r#"
            [server]
            region = "eu"
            role = "gateway"
            [[model]]
            name = "remote"
            backend = "upstream"
            endpoints = [
                { url = "http://10.0.0.1:8080", region = "eu", api_key = "env::KEY" },
                { url = "https://api.example.com/v1", region = "us", model = "big" },
            ]
        "#;
        let c = Config::from_toml_with_env(ok, &[]).unwrap();
        assert!(c.model[0].is_upstream());
        assert_eq!(c.model[0].endpoints[1].model.as_deref(), Some("big"));
        assert!(c.route.is_empty());

        let bad = r#"
            [server]
            role = "worker"
            [[model]]
            name = "remote"
            backend = "upstream"
            path = "/x.gguf"
            retries = 99
            endpoints = [{ url = "ftp://x", api_key = "sk-live-123" }, { url = "not a url" }]
            [[model]]
            name = "none"
            backend = "upstream"
            [[model]]
            name = "odd"
            backend = "cloud"
        "#;
        let all = Config::from_toml_with_env(bad, &[])
            .unwrap_err()
            .0
            .join("\n");
        for want in [
            "model[0].endpoints[0].url",
            "model[0].endpoints[0].api_key: give `env::NAME`",
            "model[0].endpoints[1].url",
            "model[0]: an upstream model has no weights here",
            "model[0].retries",
            "model[1].endpoints: an upstream model needs at least one endpoint",
            "model[2].backend: unknown variant `cloud`",
            "model[0]: a worker serves local models only",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        assert!(!all.contains("sk-live-123"), "the key leaked into: {all}");
        assert!(!all.contains("model[1]: `none` is not in the built-in catalog"));
    }

    #[test]
    fn a_worker_runs_without_routes_or_guards() {
        let text = "[server]\nrole = \"worker\"\n[guard]\nredact_input_pii = true\n";
        let c = Config::from_toml_with_env(text, &[]).unwrap();
        assert_eq!(c.route.len(), 1, "the file's default route is still there");
        let c = c.for_role();
        assert!(c.route.is_empty());
        assert_eq!(c.guard.input_policy, Policy::Allow);
        assert_eq!(c.guard.output_policy, Policy::Allow);
        assert!(!c.guard.redact_input_pii && !c.guard.redact_output_pii);
    }

    #[test]
    fn documentation_lists_every_key() {
        let doc = include_str!("../../../../docs/configuration.md");
        let config = Config {
            model: vec![ModelConfig::named("m")],
            route: vec![RouteConfig::default_auto(&["m", "n"])],
            ..Config::default()
        };
        let value: toml::Table = toml::from_str(&config.to_toml()).unwrap();
        for (section, v) in value {
            let keys: Vec<String> = match v {
                toml::Value::Table(t) => t.keys().cloned().collect(),
                toml::Value::Array(a) => a
                    .first()
                    .and_then(|x| x.as_table())
                    .map(|t| t.keys().cloned().collect())
                    .unwrap_or_default(),
                _ => vec![],
            };
            for key in keys {
                let needle = format!("`{section}.{key}`");
                assert!(
                    doc.contains(&needle),
                    "docs/configuration.md lacks {needle}"
                );
            }
        }
        for optional in [
            "model.path",
            "model.sha256",
            "model.context_length",
            "model.threads",
            "auth.required",
            "model.input_policy",
            "model.output_policy",
            "model.redact_input_pii",
            "model.redact_output_pii",
            "model.endpoints.url",
            "model.endpoints.region",
            "model.endpoints.api_key",
            "model.endpoints.model",
        ] {
            assert!(
                doc.contains(&format!("`{optional}`")),
                "docs lack {optional}"
            );
        }
    }
}
