//! Helpers shared by Floodgate's tests. Dev-only: no product crate depends on it outside
//! `[dev-dependencies]`, and it is never published.
//!
//! - [`needs`]: what a test needs from outside the checkout (a cached model, a service
//!   URL, Python with the OpenAI SDK, the network), checked at run time, and
//!   [`needs::trial`], a `libtest-mimic` test that runs when its requirement is met and
//!   is reported as *ignored*, with the reason, when it is not. A test that did not run
//!   is never counted as passed; CI (`.ci/run`) provides everything and fails on any
//!   ignored test.
//! - [`tiny_llama`]: a GGUF v3 writer and [`tiny_llama::write_tiny_llama`], a tiny
//!   random-weight Llama model that llama.cpp loads through its ordinary paths.
//! - [`tiny_bert`] (feature `bert`): [`tiny_bert::write_tiny_bert`], a tiny random-weight
//!   BERT in all-MiniLM-L6-v2's file layout, for the encoders and guards.
//!
//! The model writers need no download: tests exercise the real loading code on models
//! written into a temporary directory.

pub mod needs;
#[cfg(feature = "bert")]
pub mod tiny_bert;
pub mod tiny_llama;
