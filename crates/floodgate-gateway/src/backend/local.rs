//! The embedded engine as a backend: the one place where the gateway's inference types
//! meet `floodgate_engine`'s.

use floodgate_engine as engine;
use floodgate_engine::{Engine, GenerateRequest};
use futures::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{Backend, BackendInfo, Generation};
use crate::error::GatewayError;
use crate::inference::{
    Announcement, Event, Events, Finish, FinishReason, Message, Priority, SamplingParams,
    TokenId, TokenLogprob, TokenOutput, TopLogprob,
};
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
            PromptInput::Chat(messages) => {
                let messages: Vec<engine::Message> = messages.iter().map(to_engine_message).collect();
                engine.tokenize_chat(&messages)?
            }
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

    fn expect_request(&self) -> Option<Announcement> {
        Some(Announcement::new(self.engine.expect_request()))
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
            sampling: to_engine_sampling(&params.sampling),
            stop: params.stop.clone(),
            logprobs: params.logprobs,
            ignore_eos: params.ignore_eos,
            priority: match params.priority {
                Priority::Interactive => engine::Priority::Interactive,
                Priority::Batch => engine::Priority::Batch,
            },
            deadline: None,
        })?;
        // Mapped as they are read: dropping `Events` drops the engine's receiver, which
        // is how the scheduler learns that the client went away.
        let events = UnboundedReceiverStream::new(events).map(from_engine_event);
        Ok(Generation {
            prompt_tokens,
            prompt_text,
            events: Events::stream(events),
        })
    }
}

fn to_engine_message(m: &Message) -> engine::Message {
    engine::Message {
        role: m.role.clone(),
        content: m.content.clone(),
    }
}

fn to_engine_sampling(s: &SamplingParams) -> engine::SamplingParams {
    engine::SamplingParams {
        temperature: s.temperature,
        top_p: s.top_p,
        top_k: s.top_k,
        min_p: s.min_p,
        presence_penalty: s.presence_penalty,
        frequency_penalty: s.frequency_penalty,
        seed: s.seed,
        logit_bias: s.logit_bias.clone(),
    }
}

fn from_engine_event(e: engine::Event) -> Event {
    match e {
        engine::Event::Token(t) => Event::Token(TokenOutput {
            text: t.text,
            logprobs: t.logprobs.into_iter().map(from_engine_logprob).collect(),
        }),
        engine::Event::Finished(f) => Event::Finished(Finish {
            reason: match f.reason {
                engine::FinishReason::Stop => FinishReason::Stop,
                engine::FinishReason::Length => FinishReason::Length,
            },
            prompt_tokens: f.prompt_tokens,
            completion_tokens: f.completion_tokens,
            cached_prompt_tokens: f.cached_prompt_tokens,
            queued: f.queued,
            admitted: f.admitted,
            finished: f.finished,
        }),
        engine::Event::Failed(e) => Event::Failed(e.into()),
    }
}

fn from_engine_logprob(lp: engine::TokenLogprob) -> TokenLogprob {
    TokenLogprob {
        token: lp.token,
        bytes: lp.bytes,
        logprob: lp.logprob,
        top: lp
            .top
            .into_iter()
            .map(|t| TopLogprob {
                token: t.token,
                bytes: t.bytes,
                logprob: t.logprob,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sampling_is_the_engines_default() {
        assert_eq!(
            to_engine_sampling(&SamplingParams::default()),
            engine::SamplingParams::default()
        );
    }
}
