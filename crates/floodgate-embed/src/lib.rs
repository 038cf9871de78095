//! Sentence embeddings and small classifiers over them, in process.
//!
//! The guards (prompt injection, toxicity) and later drift detection and
//! cascade routing need a meaning-level view of a prompt that keyword rules
//! cannot give, within a budget of a few milliseconds on a CPU. This crate
//! provides it in two layers:
//!
//! - [`Embedder`]: all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) run with
//!   candle, tokenized with the model's own `tokenizer.json`; mean-pooled,
//!   L2-normalised 384-d vectors, as sentence-transformers computes them.
//!   The model files come from the model cache (`floodgate models pull
//!   all-minilm-l6-v2`); this crate never downloads anything.
//! - [`classifier`]: one-vs-rest logistic regression heads over an
//!   embedding (plus optional caller features), trained here, stored as JSON
//!   with the metadata needed to trace its figures.
//!
//! - [`StaticEmbedder`]: one vector per vocabulary token distilled from the
//!   encoder (Model2Vec-style); microseconds per text, for the guards' fast
//!   first stage.
//!
//! - [`finetune`]: the encoder itself fine-tuned with a one-label head, for texts a
//!   frozen embedding cannot separate (implicit toxicity); milliseconds per text.
//!
//! [`tiny`] writes a random-weight BERT in the real file layout, so tests load
//! and embed through the real code path without a download.
//!
//! **Invariant:** nothing here knows HTTP, configuration files or the guard's
//! policy; it maps text to vectors and vectors to probabilities.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod classifier;
mod encoder;
mod error;
pub mod finetune;
pub mod ngrams;
mod static_embed;
pub mod tiny;

pub use classifier::{Classifier, TrainOptions};
pub use encoder::{DeviceChoice, EmbedOptions, Embedder, TextEncoder, Truncation, MINILM_DIM};
pub use error::EmbedError;
pub use static_embed::{StaticEmbedder, STATIC_ENCODER_SUFFIX, STATIC_MAX_TOKENS};
