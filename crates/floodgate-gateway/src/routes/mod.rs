//! HTTP handlers, one module per API family.

pub mod completions;
pub mod openai;
pub mod health;
pub mod models;
pub mod moderations;
