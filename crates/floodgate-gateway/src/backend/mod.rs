//! Stage 6, inference: where a validated request is turned into tokens.
//!
//! A [`Backend`] serves one model. Implementations live one per file: `local` (the
//! embedded engine) and `pool` (a model served by several OpenAI-compatible upstream
//! endpoints — vLLM, hosted APIs, Floodgate workers — each one an `upstream::Endpoint`
//! with its `health`).

pub mod health;
#[cfg(feature = "engine")]
pub mod local;
pub mod pool;
pub mod upstream;

#[cfg(feature = "engine")]
pub use local::LocalBackend;
pub use pool::UpstreamPool;

use crate::error::GatewayError;
use crate::inference::{Announcement, Event, Events, Finish, TokenLogprob};
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
    pub events: Events,
}

#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    fn info(&self) -> &BackendInfo;

    /// Announces a request that will be started on this backend shortly, so an idle
    /// embedded engine can gather a burst into one first batch
    /// (the engine's `expect_request`). Dropping the announcement withdraws it.
    /// Backends that do not batch in-process ignore it.
    fn expect_request(&self) -> Option<Announcement> {
        None
    }

    /// Starts generating. Dropping the returned receiver cancels the generation.
    async fn generate(
        &self,
        prompt: &PromptInput,
        params: &GenParams,
        default_max_tokens: u32,
        echo: bool,
    ) -> Result<Generation, GatewayError>;
}

/// A whole answer, held back (a cascade's post check judges it before anything is sent).
pub struct Buffered {
    pub prompt_tokens: u32,
    pub prompt_text: Option<String>,
    pub events: Vec<Event>,
    pub text: String,
    pub logprobs: Vec<TokenLogprob>,
    pub finish: Finish,
}

/// Reads a generation to its end: its events, text and log-probabilities.
pub async fn buffer(mut generation: Generation) -> Result<Buffered, GatewayError> {
    let mut events = Vec::new();
    let mut text = String::new();
    let mut logprobs = Vec::new();
    loop {
        match generation.events.recv().await {
            Some(Event::Token(t)) => {
                text.push_str(&t.text);
                logprobs.extend(t.logprobs.iter().cloned());
                events.push(Event::Token(t));
            }
            Some(Event::Finished(f)) => {
                events.push(Event::Finished(f.clone()));
                return Ok(Buffered {
                    prompt_tokens: generation.prompt_tokens,
                    prompt_text: generation.prompt_text,
                    events,
                    text,
                    logprobs,
                    finish: f,
                });
            }
            Some(Event::Failed(e)) => return Err(e),
            None => {
                return Err(GatewayError::Internal(
                    "the engine stopped mid-generation".into(),
                ))
            }
        }
    }
}

impl Buffered {
    /// Replays the held answer as a generation, with log-probabilities cut to what the
    /// client asked for (a cascade's check asks for more).
    pub fn replay(self, top_logprobs: Option<usize>) -> Generation {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for event in self.events {
            let event = match event {
                Event::Token(mut t) => {
                    match top_logprobs {
                        None => t.logprobs.clear(),
                        Some(k) => t.logprobs.iter_mut().for_each(|lp| lp.top.truncate(k)),
                    }
                    Event::Token(t)
                }
                other => other,
            };
            let _ = tx.send(event);
        }
        Generation {
            prompt_tokens: self.prompt_tokens,
            prompt_text: self.prompt_text,
            events: Events::channel(rx),
        }
    }
}
