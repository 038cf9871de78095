//! The crate's one error type.

/// Why a profile could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DriftError {
    #[error(
        "too few reference samples for a drift profile: {have}, need at least {need} \
         (twice the window, and at least min_reference)"
    )]
    TooFewSamples { have: usize, need: usize },
    #[error("invalid drift profile config: {0}")]
    InvalidConfig(String),
}
