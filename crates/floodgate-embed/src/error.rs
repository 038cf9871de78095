//! The crate's one error type.
//!
//! Loading errors name the file at fault, because they surface when an
//! operator points the guard at a model directory; classifier errors say which
//! input was wrong (dimension, label, JSONL line), because they surface while
//! training or while wiring features into a guard.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong loading an encoder, embedding text, or
/// training, evaluating and (de)serialising a classifier.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `config.json` is not a BERT config candle understands.
    #[error("reading BERT config {}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// `tokenizer.json` did not load, or a text could not be tokenized.
    /// (`tokenizers` reports errors as boxed trait objects, so the message is
    /// kept as text.)
    #[error("tokenizer {what}: {message}")]
    Tokenizer { what: String, message: String },

    /// The tensor library failed: weights missing or of the wrong shape, a
    /// device that is not available (CUDA without the `cuda` feature), or a
    /// failed kernel.
    #[cfg(feature = "candle")]
    #[error("model {what}: {source}")]
    Model {
        what: String,
        #[source]
        source: candle_core::Error,
    },

    /// The private thread pool for inference could not be started.
    #[cfg(feature = "candle")]
    #[error("starting the embedding thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),

    /// Options that cannot work (zero max_tokens, an empty training set, a
    /// single-class training set, a feature vector of the wrong length).
    #[error("invalid input: {0}")]
    Invalid(String),

    /// A JSONL training or evaluation row that is not `{"text", "label"}`.
    #[error("{}:{line}: {reason}", path.display())]
    Data {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// A classifier file that is not valid JSON of the expected shape, or
    /// could not be written.
    #[error("classifier JSON {}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl EmbedError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        EmbedError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    #[cfg(feature = "candle")]
    pub(crate) fn model(what: impl Into<String>) -> impl FnOnce(candle_core::Error) -> Self {
        let what = what.into();
        move |source| EmbedError::Model { what, source }
    }

    #[cfg(feature = "candle")]
    pub(crate) fn tokenizer(what: impl Into<String>) -> impl FnOnce(tokenizers::Error) -> Self {
        let what = what.into();
        move |e| EmbedError::Tokenizer {
            what,
            message: e.to_string(),
        }
    }
}
