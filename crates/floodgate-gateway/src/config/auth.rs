//! `[auth]`: API keys and role tokens.

use std::fmt;
use std::str::FromStr;

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

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Inference,
        Scope::Moderations,
        Scope::Feedback,
        Scope::Admin,
        Scope::Reviewer,
        Scope::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Inference => "inference",
            Scope::Moderations => "moderations",
            Scope::Feedback => "feedback",
            Scope::Admin => "admin",
            Scope::Reviewer => "reviewer",
            Scope::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope `{s}` (expected one of {})",
                    Scope::ALL.map(|x| x.as_str()).join(", ")
                )
            })
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
