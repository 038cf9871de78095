//! OpenAI-shaped wire types.
//!
//! This crate knows the JSON shapes of the OpenAI API and nothing else: no HTTP, no
//! models, no configuration. Request types are the *unvalidated* form a client sent;
//! the gateway turns them into validated requests once, at the edge.
//!
//! **Architecture invariant:** this crate depends on serde and serde_json only; every other crate may
//! depend on it.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod chat;
pub mod completion;
pub mod error;
pub mod models;
pub mod moderation;
pub mod shared;

pub use chat::*;
pub use completion::*;
pub use error::*;
pub use models::*;
pub use moderation::*;
pub use shared::*;
