//! Stage 1's last step, validate: the OpenAI-shaped body becomes a [`ValidRequest`]
//! that every later stage trusts (`crate::validate` holds the rules).

use floodgate_protocol as p;

use crate::config::LimitsConfig;
use crate::error::GatewayError;
use crate::validate::{self, ValidRequest};

pub fn chat(
    req: p::ChatCompletionRequest,
    limits: &LimitsConfig,
) -> Result<ValidRequest, GatewayError> {
    validate::chat(req, limits)
}

pub fn completion(
    req: p::CompletionRequest,
    limits: &LimitsConfig,
) -> Result<ValidRequest, GatewayError> {
    validate::completion(req, limits)
}
