//! The embedded engine as a backend.

use floodgate_engine::{Engine, GenerateRequest, TokenId};

use super::{Backend, BackendInfo, Generation};
use crate::error::GatewayError;
use crate::validate::{GenParams, PromptInput};

/// Prompts longer than this (bytes) are tokenized off the async runtime.
const INLINE_TOKENIZE_BYTES: usize = 16 * 1024;

pub struct LocalBackend {
    engine: Engine,
    info: BackendInfo,
}

impl LocalBackend {
    pub fn new(engine: Engine, created: u64) -> Self {
        let i = engine.info();
        let info = BackendInfo {
            model: i.name.clone(),
            context_length: i.context_length,
            chat: i.has_chat_template,
            owned_by: "floodgate".into(),
            created,
        };
        Self { engine, info }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn tokenize(engine: &Engine, prompt: &PromptInput) -> Result<Vec<TokenId>, GatewayError> {
        Ok(match prompt {
            PromptInput::Chat(messages) => engine.tokenize_chat(messages)?,
            PromptInput::Text(text) => engine.tokenize(text, true),
            PromptInput::Tokens(tokens) => tokens.clone(),
        })
    }
}

fn prompt_bytes(prompt: &PromptInput) -> usize {
    match prompt {
        PromptInput::Chat(m) => m.iter().map(|m| m.content.len()).sum(),
        PromptInput::Text(t) => t.len(),
        PromptInput::Tokens(t) => t.len(),
    }
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn expect_request(&self) -> Option<floodgate_engine::Incoming> {
        Some(self.engine.expect_request())
    }

    async fn generate(
        &self,
        prompt: &PromptInput,
        params: &GenParams,
        default_max_tokens: u32,
        echo: bool,
    ) -> Result<Generation, GatewayError> {
        let tokens = if prompt_bytes(prompt) > INLINE_TOKENIZE_BYTES {
            let engine = self.engine.clone();
            let prompt = prompt.clone();
            tokio::task::spawn_blocking(move || Self::tokenize(&engine, &prompt))
                .await
                .map_err(|e| GatewayError::Internal(format!("tokenizer task failed: {e}")))??
        } else {
            Self::tokenize(&self.engine, prompt)?
        };
        let prompt_tokens = tokens.len() as u32;
        let context = self.info.context_length;
        let max_tokens = params.max_tokens.unwrap_or_else(|| {
            default_max_tokens
                .min(context.saturating_sub(prompt_tokens))
                .max(1)
        });
        let prompt_text = echo.then(|| match prompt {
            PromptInput::Text(t) => t.clone(),
            _ => tokens.iter().map(|&t| self.engine.token_text(t)).collect(),
        });
        let events = self.engine.generate(GenerateRequest {
            prompt: tokens,
            max_tokens,
            sampling: params.sampling.clone(),
            stop: params.stop.clone(),
            logprobs: params.logprobs,
            ignore_eos: params.ignore_eos,
            priority: params.priority,
            deadline: None,
        })?;
        Ok(Generation {
            prompt_tokens,
            prompt_text,
            events,
        })
    }
}
