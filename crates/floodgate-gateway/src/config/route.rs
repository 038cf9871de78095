//! `[[route]]`: a public model name over tiers of models, and the policy choosing one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a route chooses among its tiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoutePolicy {
    /// No cascade: the first tier answers (an alias).
    #[serde(rename = "first")]
    First,
    /// A traffic split by `weights` (A/B tests, canaries).
    #[serde(rename = "split")]
    Split,
    /// The pre-router may send a prompt straight to the large tier.
    #[serde(rename = "pre")]
    Pre,
    /// The small tier answers; the post check may hand the request to the large tier.
    #[serde(rename = "post")]
    Post,
    /// Both checks.
    #[default]
    #[serde(rename = "pre+post")]
    PrePost,
}

crate::config::value_set!(RoutePolicy { First => "first", Split => "split", Pre => "pre", Post => "post", PrePost => "pre+post" });

/// Streams on a route with a post check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamPost {
    /// Hold the small tier's answer until it is judged.
    #[default]
    Buffer,
    /// Stream the small tier live, without the post check.
    Skip,
}

/// What keeps a caller on one tier of a `split` route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sticky {
    /// The request's `user` field, else the key.
    #[default]
    User,
    /// The key.
    Key,
}

/// Which checks a policy uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    pub pre: bool,
    pub post: bool,
}

/// One route in the configuration (`[[route]]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Public name clients put in `model`; must not be a model's name.
    pub name: String,
    /// Model names, cheapest first. `pre` and `post` need exactly two.
    pub tiers: Vec<String>,
    /// `first` (no cascade: the first tier answers), `split`, `pre`, `post` or `pre+post`.
    #[serde(default)]
    pub policy: RoutePolicy,
    /// Overrides the calibrated pre-router threshold (escalate when P(escalation helps) ≥ it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_threshold: Option<f32>,
    /// Overrides the calibrated post threshold (escalate when P(answer right) < it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_threshold: Option<f32>,
    /// The trained router file; empty = `cascade/<name>.json` in the model home.
    #[serde(default)]
    pub router: String,
    /// Streams with a post check: `buffer` (hold the small answer until judged) or
    /// `skip` (stream the small tier live, no post check).
    #[serde(default)]
    pub stream_post: StreamPost,
    /// Prompts estimated above this many tokens go to the last tier (0 = off).
    #[serde(default)]
    pub escalate_prompt_tokens: u32,
    /// Tenants pinned to a tier (index into `tiers`); no checks run for them.
    #[serde(default)]
    pub tenant_tiers: BTreeMap<String, usize>,
    /// Key segments pinned to a tier.
    #[serde(default)]
    pub segment_tiers: BTreeMap<String, usize>,
    /// Policy `split`: each tier's share of traffic (A/B tests, canaries), in tier order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f64>,
    /// Policy `split`: what keeps a caller on one variant: `user` (the request's `user`
    /// field, else the key) or `key`.
    #[serde(default)]
    pub sticky: Sticky,
}

impl RouteConfig {
    /// The default cascade over the default models.
    pub fn default_auto(tiers: &[&str]) -> Self {
        Self {
            name: "auto".into(),
            tiers: tiers.iter().map(|s| s.to_string()).collect(),
            policy: RoutePolicy::default(),
            pre_threshold: None,
            post_threshold: None,
            router: String::new(),
            stream_post: StreamPost::default(),
            escalate_prompt_tokens: 0,
            tenant_tiers: BTreeMap::new(),
            segment_tiers: BTreeMap::new(),
            weights: Vec::new(),
            sticky: Sticky::default(),
        }
    }

    /// A cascade (the later tier answers what the earlier one should not), as opposed to
    /// an alias (`first`) or a traffic split.
    pub fn is_cascade(&self) -> bool {
        matches!(
            self.policy,
            RoutePolicy::Pre | RoutePolicy::Post | RoutePolicy::PrePost
        )
    }

    pub fn checks(&self) -> Checks {
        Checks {
            pre: matches!(self.policy, RoutePolicy::Pre | RoutePolicy::PrePost),
            post: matches!(self.policy, RoutePolicy::Post | RoutePolicy::PrePost),
        }
    }

    /// Problems with this route, each prefixed with `path`.
    pub fn validate(&self, path: &str, models: &[&str], errors: &mut Vec<String>) {
        if self.name.is_empty() {
            errors.push(format!("{path}.name: must not be empty"));
        }
        if models.contains(&self.name.as_str()) {
            errors.push(format!(
                "{path}.name: `{}` is also a model's name",
                self.name
            ));
        }
        if self.tiers.is_empty() {
            errors.push(format!("{path}.tiers: name at least one model"));
        }
        for t in &self.tiers {
            if !models.contains(&t.as_str()) {
                errors.push(format!("{path}.tiers: `{t}` is not a configured model"));
            }
        }
        match self.policy {
            RoutePolicy::First => {}
            RoutePolicy::Split => {
                if self.weights.len() != self.tiers.len() {
                    errors.push(format!(
                        "{path}.weights: policy `split` needs one weight per tier ({} tiers)",
                        self.tiers.len()
                    ));
                }
                if self.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
                    || self.weights.iter().sum::<f64>() <= 0.0
                {
                    errors.push(format!(
                        "{path}.weights: must be non-negative numbers with a positive sum"
                    ));
                }
            }
            RoutePolicy::Pre | RoutePolicy::Post | RoutePolicy::PrePost => {
                if self.tiers.len() != 2 {
                    errors.push(format!(
                        "{path}.policy: `{}` needs exactly two tiers (small, large)",
                        self.policy
                    ));
                }
            }
        }
        for (what, map) in [
            ("tenant_tiers", &self.tenant_tiers),
            ("segment_tiers", &self.segment_tiers),
        ] {
            for (k, &tier) in map {
                if tier >= self.tiers.len() {
                    errors.push(format!(
                        "{path}.{what}.{k}: tier {tier} does not exist (the route has {})",
                        self.tiers.len()
                    ));
                }
            }
        }
        for (what, t) in [
            ("pre_threshold", self.pre_threshold),
            ("post_threshold", self.post_threshold),
        ] {
            if let Some(t) = t {
                if !(0.0..=1.0).contains(&t) {
                    errors.push(format!("{path}.{what}: {t} is not a probability"));
                }
            }
        }
    }
}
