//! The gateway core: configuration, the HTTP app and the request-path stages.
//!
//! The request path, stage by stage (see `ARCHITECTURE.md`): [`edge`] parses and
//! limits, [`auth`] identifies the caller, [`validate`] produces the validated request,
//! [`admission`] applies rate limits ([`limits`]), [`registry`] routes it to a
//! [`backend`], [`routes`] shape the answer, [`telemetry`] records it.
//!
//! **Architecture invariant:** this crate never calls llama.cpp; it reaches models only
//! through the [`backend::Backend`] trait.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
pub mod admission;
pub mod analytics;
pub mod app;
pub mod auth;
pub mod backend;
pub mod budget;
pub mod cascade;
pub mod clock;
pub mod config;
pub mod db;
pub mod edge;
pub mod error;
pub mod events;
pub mod feedback;
pub mod guard;
pub mod inference;
#[cfg(feature = "engine")]
pub mod learned;
pub mod limits;
pub mod loading;
pub mod model_cache;
pub mod otel;
pub mod pipeline;
pub mod prompt_features;
pub mod records;
pub mod redis_conn;
pub mod registry;
pub mod reload;
pub mod routes;
pub mod server;
pub mod state;
pub mod sticky;
pub mod store;
pub mod telemetry;
pub mod validate;

pub use config::Config;
pub use state::AppState;
