//! `POST /v1/moderations`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModerationRequest {
    pub input: ModerationInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// A string, a list of strings, or a list of typed parts (only `text` parts are read).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ModerationInput {
    One(String),
    Many(Vec<String>),
    Parts(Vec<ModerationPart>),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModerationPart {
    Text { text: String },
    ImageUrl { image_url: serde_json::Value },
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ModerationResponse {
    pub id: String,
    pub model: String,
    pub results: Vec<ModerationResult>,
}

/// Categories keyed by OpenAI's names (`harassment`, `self-harm/intent`, …) plus
/// Floodgate's `prompt_injection`; sorted for stable output.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ModerationResult {
    pub flagged: bool,
    pub categories: BTreeMap<String, bool>,
    pub category_scores: BTreeMap<String, f32>,
}
