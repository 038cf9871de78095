//! HTTP handlers, one module per API family.

pub mod completions;
pub mod dashboard;
pub mod decisions;
pub mod feedback;
pub mod health;
pub mod models;
pub mod moderations;
pub mod openai;
