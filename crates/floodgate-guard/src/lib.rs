//! Floodgate's guards: the checks the gateway runs on text before it reaches a model
//! (input guard), on text a model produced (output guard), behind `/v1/moderations`, and
//! across requests to spot coordinated abuse.
//!
//! Everything here is pure, synchronous Rust with no I/O, so the gateway can call it on
//! the request path without leaving the async runtime for prompts of ordinary size.
//! Every detector reads text through [`normalize::normalize`] first: obfuscation
//! (invisible characters, look-alike letters, encodings) is undone once, and each
//! detector scans every resulting view instead of re-implementing the decoding.
//!
//! The rule layers ([`injection`], [`toxicity`]) are tuned for precision: they catch
//! explicit cases cheaply and are meant to be combined with an embedding classifier
//! (`floodgate-embed`) that supplies recall.
//!
//! **Architecture invariant:** this crate knows nothing of HTTP, models or the wire
//! protocol; it takes `&str` and returns scores, findings and verdicts.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cluster;
pub mod error;
pub mod injection;
pub mod normalize;
pub mod pii;
pub mod toxicity;
mod wordlist;

pub use error::GuardError;

/// Rewrites `\b`, `\w` and `\W` in a rule pattern to their ASCII forms. Unicode word
/// classes multiply the automaton's size and make the lazy DFA give up on non-ASCII
/// input, which costs milliseconds per prompt; the rules' anchors are ASCII words (and
/// accented letters in the multilingual rules are spelled out as literals), so the
/// ASCII forms lose nothing that the skeleton view does not already recover.
pub(crate) fn ascii_words(pattern: &str) -> String {
    pattern
        .replace(r"\b", r"(?-u:\b)")
        .replace(r"\w", r"[0-9A-Za-z_]")
        .replace(r"\W", r"[^0-9A-Za-z_]")
}
