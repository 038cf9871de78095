//! Labelled text from JSONL files, embedded and fed to [`train`].
//!
//! Rows are `{"text": ..., "label": ...}` objects, one per line; other fields
//! are ignored except `source`, which is counted into the model's metadata so
//! that every figure can say what it was trained on. A label may be a string,
//! a boolean or an integer (normalised to its text: `true`, `1`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{train, Classifier, TrainOptions};
use crate::error::EmbedError;
use crate::TextEncoder;

/// One labelled row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledText {
    pub text: String,
    pub label: String,
    /// The row's `source` field, if it has one.
    pub source: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    text: String,
    label: serde_json::Value,
    #[serde(default)]
    source: Option<String>,
}

/// Reads a JSONL file; blank lines are skipped, anything else that is not a
/// row with a text and a scalar label is an error naming the line.
pub fn read_jsonl(path: &Path) -> Result<Vec<LabeledText>, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|e| EmbedError::io("reading", path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let data = |reason: String| EmbedError::Data {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let row: Row = serde_json::from_str(line).map_err(|e| data(e.to_string()))?;
        let label = match row.label {
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(data(format!(
                    "label must be a string, boolean or number, not {other}"
                )))
            }
        };
        rows.push(LabeledText {
            text: row.text,
            label,
            source: row.source,
        });
    }
    Ok(rows)
}

/// Embeds every row's text; returns `(embedding, label)` pairs in row order.
pub fn embed_labeled(
    embedder: &dyn TextEncoder,
    rows: &[LabeledText],
) -> Result<Vec<(Vec<f32>, String)>, EmbedError> {
    let mut out = Vec::with_capacity(rows.len());
    // Chunks bound the memory of one call; the embedder batches within each.
    for chunk in rows.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        let embeddings = embedder.encode(&texts)?;
        out.extend(
            embeddings
                .into_iter()
                .zip(chunk.iter().map(|r| r.label.clone())),
        );
    }
    Ok(out)
}

/// Reads, embeds and trains on the rows of `paths`, recording the files, the
/// per-source row counts and the embedder's settings in the metadata.
pub fn train_from_jsonl(
    paths: &[&Path],
    embedder: &dyn TextEncoder,
    opts: &TrainOptions,
) -> Result<Classifier, EmbedError> {
    let mut rows = Vec::new();
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    let mut files = Vec::new();
    for path in paths {
        let file_rows = read_jsonl(path)?;
        let file_name = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        for row in &file_rows {
            let source = row.source.clone().unwrap_or_else(|| file_name.clone());
            *sources.entry(source).or_insert(0) += 1;
        }
        files.push(path.display().to_string());
        rows.extend(file_rows);
    }
    let examples = embed_labeled(embedder, &rows)?;
    let mut model = train(&examples, opts)?;
    model.meta.embedding = Some(embedder.info());
    model.meta.sources = sources;
    model.meta.training_files = files;
    Ok(model)
}
