//! `[limits]`: bounds on what one request may ask for.

use serde::{Deserialize, Serialize};

/// Bounds on what one request may ask for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted (bytes); larger gets 413.
    pub max_body_bytes: usize,
    /// Largest total size of a request's headers (bytes); larger gets 431.
    pub max_header_bytes: usize,
    /// A body not fully received within this many seconds gets 408 (slow-body clients).
    pub body_read_timeout_seconds: u64,
    /// Completion length when the client gives no `max_tokens` (capped by the context).
    pub default_max_tokens: u32,
    /// Most stop sequences in one request.
    pub max_stop_sequences: usize,
    /// Most messages in one chat request.
    pub max_messages: usize,
    /// Most `top_logprobs` alternatives per token.
    pub max_top_logprobs: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            body_read_timeout_seconds: 30,
            default_max_tokens: 1024,
            max_stop_sequences: 4,
            max_messages: 1024,
            max_top_logprobs: 20,
        }
    }
}

impl LimitsConfig {
    /// Problems with this section, each with its path.
    pub(super) fn validate(&self, errors: &mut Vec<String>) {
        if self.max_body_bytes < 1024 {
            errors.push("limits.max_body_bytes: must be at least 1024".into());
        }
        if self.max_header_bytes < 1024 {
            errors.push("limits.max_header_bytes: must be at least 1024".into());
        }
        if self.body_read_timeout_seconds == 0 {
            errors.push("limits.body_read_timeout_seconds: must be at least 1".into());
        }
        if self.default_max_tokens == 0 {
            errors.push("limits.default_max_tokens: must be at least 1".into());
        }
    }
}
