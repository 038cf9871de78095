//! Helpers shared by Floodgate's tests. Dev-only: no product crate depends on it outside
//! `[dev-dependencies]`, and it is never published.
//!
//! - [`needs`]: what a test needs from outside the checkout (a cached model, a service
//!   URL, Python with the OpenAI SDK, the network), checked at run time, and
//!   [`needs::trial`], a `libtest-mimic` test that runs when its requirement is met and
//!   is reported as *ignored*, with the reason, when it is not. A test that did not run
//!   is never counted as passed; CI (`.ci/run`) provides everything and fails on any
//!   ignored test.

pub mod needs;
