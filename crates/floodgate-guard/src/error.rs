//! The crate's one error type. The only fallible step is building the rule sets (their
//! patterns are compiled once at start-up), so a failure here is a programming error
//! that start-up should report, never something a request can trigger.

/// Errors from building the guards.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A built-in or configured pattern did not compile.
    #[error("guard pattern {name} does not compile: {source}")]
    Pattern {
        /// The rule the pattern belongs to.
        name: String,
        /// What the regex compiler said.
        #[source]
        source: regex::Error,
    },
    /// The multi-pattern matcher could not be built.
    #[error("guard lexicon {name} could not be built: {message}")]
    Lexicon {
        /// The lexicon that failed.
        name: String,
        /// What the builder said.
        message: String,
    },
}
