//! Stage 6, inference: where a validated request is turned into tokens.
//!
//! A [`Backend`] serves one model. Implementations live one per file: `local` (the
//! embedded engine) and `pool` (a model served by several OpenAI-compatible upstream
//! endpoints — vLLM, hosted APIs, Floodgate workers — each one an `upstream::Endpoint`
//! with its `health`).

pub mod health;
mod local;
pub mod pool;
pub mod upstream;

pub use local::LocalBackend;
pub use pool::UpstreamPool;

use floodgate_engine::Event;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::GatewayError;
use crate::validate::{GenParams, PromptInput};

/// Facts the request path needs about a served model.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    pub model: String,
    pub context_length: u32,
    pub chat: bool,
    pub owned_by: String,
    pub created: u64,
}

/// A running generation: its prompt size and the stream of engine events.
pub struct Generation {
    pub prompt_tokens: u32,
    /// The prompt tokens' text, for `echo`.
    pub prompt_text: Option<String>,
    pub events: UnboundedReceiver<Event>,
}

#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    fn info(&self) -> &BackendInfo;

    /// Starts generating. Dropping the returned receiver cancels the generation.
    async fn generate(
        &self,
        prompt: &PromptInput,
        params: &GenParams,
        default_max_tokens: u32,
        echo: bool,
    ) -> Result<Generation, GatewayError>;
}
