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
//! Only the heads and n-gram features are built without the `candle` feature.
//!
//! **Invariant:** nothing here knows HTTP, configuration files or the guard's
//! policy; it maps text to vectors and vectors to probabilities.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod classifier;
#[cfg(feature = "candle")]
mod encoder;
mod error;
#[cfg(feature = "candle")]
pub mod finetune;
pub mod ngrams;
#[cfg(feature = "candle")]
mod static_embed;
mod text_encoder;

pub use classifier::{Classifier, TrainOptions};
#[cfg(feature = "candle")]
pub use encoder::{DeviceChoice, EmbedOptions, Embedder, Truncation, MINILM_DIM};
pub use error::EmbedError;
#[cfg(feature = "candle")]
pub use static_embed::{StaticEmbedder, STATIC_MAX_TOKENS};
pub use text_encoder::TextEncoder;

/// The name suffix of an encoder that is a static token table distilled from another.
pub const STATIC_ENCODER_SUFFIX: &str = "+static-idf";
