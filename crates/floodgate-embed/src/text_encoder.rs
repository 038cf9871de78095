//! The one interface the classifier heads read vectors through.

use crate::error::EmbedError;

/// Anything that maps texts to fixed-width vectors a classifier head can read:
/// the full encoder (`Embedder`) or its distilled table
/// (`StaticEmbedder`), both with the `candle` feature.
pub trait TextEncoder: Send + Sync {
    /// One vector per text, in order.
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// What a classifier trained on these vectors records, so that the same
    /// encoder is used to score with it.
    fn info(&self) -> crate::classifier::EmbeddingInfo;
}
