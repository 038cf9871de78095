//! The embedded inference engine: everything that touches model weights.
//!
//! The engine loads a GGUF model through llama.cpp (the `llama-cpp-2` crate), renders
//! chat templates, tokenizes, and runs a continuous-batching scheduler on a dedicated
//! OS thread per model. Callers talk to it through [`Engine`], a cheap cloneable handle:
//! they submit a [`GenerateRequest`] and receive a stream of [`Event`]s.
//!
//! **Architecture invariant:** this is the only crate that links llama.cpp; no llama.cpp
//! type appears in its public API. Nothing here knows about HTTP or the OpenAI format.
//! **Architecture invariant:** llama.cpp calls that run the model happen on the engine's
//! own thread, never on the async runtime ([`embed::LlmEmbedder`] is blocking: callers run
//! it on a blocking thread).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod embed;
mod engine;
mod error;
pub mod quant;
mod request;
pub mod sampling;
mod scheduler;
pub mod template;
pub mod text;

/// A token id in the model's vocabulary.
pub type TokenId = i32;

pub use engine::{Engine, EngineConfig, Incoming, ModelInfo};
pub use error::EngineError;
pub use request::{
    Event, Finish, FinishReason, GenerateRequest, Priority, TokenLogprob, TokenOutput, TopLogprob,
};
pub use sampling::SamplingParams;
pub use template::Message;
