//! Floodgate's lab: the offline work that feeds the serving crates, apart from them.
//!
//! - [`cascade`]: answer a golden set with each tier of a route, train its router on
//!   those answers and calibrate its thresholds (`floodgate cascade run|train|calibrate`).
//! - [`eval`]: grade a served model, version, variant or route on golden sets (alias
//!   matching or an LLM judge), with 95% intervals, slices and regression verdicts
//!   against the previous version (`floodgate eval run|report`).
//! - [`guard`]: train and measure the guard's classifier heads, the fine-tuned toxicity
//!   model and the LLM-embedding probe (`floodgate guard …`).
//! - [`quant`]: convert a model to other precisions and measure what each loses
//!   (`floodgate quant …`).
//!
//! **Invariant:** nothing in a serving crate (`floodgate-gateway`, `floodgate-engine`,
//! `floodgate-embed`, `floodgate-guard`) imports this crate; it writes files (routers,
//! classifier heads, reports) that serving loads.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cascade;
mod chart;
pub mod eval;
pub mod guard;
pub mod quant;
