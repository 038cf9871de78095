//! `GET /v1/models`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ModelObject {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
    /// Floodgate extension: the model card, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<ModelCard>,
    /// Floodgate extension, for a model with versions: what this id stands for
    /// (`model`, `version` or `variant`) and the variant ids it may be served by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// What a model is for and what it is not: shown in `/v1/models` and kept with the
/// configuration for documentation and audits.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelCard {
    pub description: String,
    pub intended_use: String,
    pub training_data: Vec<String>,
    pub limitations: String,
    pub license: String,
    /// `minimal`, `limited`, `high` (EU AI Act-style risk tiers), or empty.
    pub risk_category: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelObject>,
}
