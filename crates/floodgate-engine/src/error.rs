//! The engine's error type.

/// Everything that can go wrong in the engine. Each variant is something a caller can
/// act on: the gateway maps them to HTTP statuses.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum EngineError {
    #[error("failed to load model from {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("model `{0}` has no chat template (it is a completions model); use /v1/completions")]
    NoChatTemplate(String),
    #[error("the model's chat template failed: {0}")]
    Template(String),
    #[error("This model's maximum context length is {limit} tokens. However, you requested {requested} tokens ({prompt} in the prompt, {completion} for the completion). Please reduce the length of the prompt or the completion.")]
    ContextLengthExceeded {
        limit: u32,
        requested: u64,
        prompt: u32,
        completion: u32,
    },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("token id {0} is not in the model's vocabulary")]
    InvalidToken(i64),
    #[error("the engine's queue for model `{0}` is full; retry later")]
    QueueFull(String),
    #[error("the estimated wait for model `{model}` ({estimated_ms} ms) exceeds the request's deadline; retry later")]
    WaitTooLong { model: String, estimated_ms: u64 },
    #[error("the request timed out")]
    Timeout,
    #[error("the engine for model `{0}` has stopped")]
    Stopped(String),
    #[error("inference failed: {0}")]
    Decode(String),
    /// A remote server that was generating the answer failed (the gateway's upstream
    /// backends report their failures with this).
    #[error("{0}")]
    Upstream(String),
}
