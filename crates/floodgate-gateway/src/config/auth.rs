//! `[auth]`: API keys and role tokens.

use serde::{Deserialize, Serialize};

/// What a key may do. Role scopes (`admin`, `reviewer`, `auditor`) open the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Chat, completions and the model list.
    Inference,
    Moderations,
    Feedback,
    Admin,
    Reviewer,
    Auditor,
}

crate::config::value_set!(Scope {
    Inference => "inference",
    Moderations => "moderations",
    Feedback => "feedback",
    Admin => "admin",
    Reviewer => "reviewer",
    Auditor => "auditor",
});

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
    pub default_scopes: Vec<Scope>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            required: None,
            database: String::new(),
            default_scopes: vec![Scope::Inference, Scope::Moderations, Scope::Feedback],
        }
    }
}
