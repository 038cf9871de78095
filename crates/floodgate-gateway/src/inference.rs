//! What a backend is asked for and what it answers with: the gateway's own inference
//! types.
//!
//! The [`crate::backend::Backend`] trait speaks only these types, so the request path
//! compiles without the embedded engine (`--no-default-features`); the local backend
//! converts to and from `floodgate_engine`'s types at its edge, the upstream backend
//! builds them from SSE chunks.
//!
//! **Architecture invariant:** plain data (and one event stream). Nothing here imports a
//! request-path module other than the error type.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::error::GatewayError;

/// A token id in the served model's vocabulary (prompts given as token ids).
pub type TokenId = i32;

/// One chat message, role and text, as the model's chat template renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// Scheduling class. Interactive requests are served before batch ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    #[default]
    Interactive,
    Batch,
}

/// How the next token is picked.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: u32,
    pub min_p: f32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    pub seed: Option<u64>,
    /// Additive biases, as OpenAI's `logit_bias`.
    pub logit_bias: Vec<(TokenId, f32)>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
            logit_bias: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopLogprob {
    pub token: String,
    pub bytes: Vec<u8>,
    pub logprob: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: String,
    pub bytes: Vec<u8>,
    pub logprob: f32,
    pub top: Vec<TopLogprob>,
}

/// Text that is final (it may be empty while the backend holds bytes back), with the
/// log-probabilities of the tokens behind it when they were asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOutput {
    pub text: String,
    pub logprobs: Vec<TokenLogprob>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// End-of-generation token or a stop sequence.
    Stop,
    /// `max_tokens` or the context length reached.
    Length,
}

/// How a generation ended, with its usage and timing.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub reason: FinishReason,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens whose KV entries were reused from an earlier or concurrent request.
    pub cached_prompt_tokens: u32,
    /// Time spent waiting for a batch slot.
    pub queued: Duration,
    /// When the generation started running, and when it ended.
    pub admitted: Instant,
    pub finished: Instant,
}

/// One step of a generation: tokens, then exactly one `Finished` or `Failed`.
#[derive(Debug)]
pub enum Event {
    Token(TokenOutput),
    Finished(Finish),
    Failed(GatewayError),
}

/// A generation's events. Dropping it cancels the generation: the backend sees its
/// receiving end closed.
pub struct Events(Pin<Box<dyn Stream<Item = Event> + Send>>);

impl Events {
    /// Events sent on a channel (upstream pumps, replays).
    pub fn channel(rx: UnboundedReceiver<Event>) -> Self {
        Self(Box::pin(UnboundedReceiverStream::new(rx)))
    }

    /// Any stream of events; a backend maps its own event type here.
    pub fn stream(s: impl Stream<Item = Event> + Send + 'static) -> Self {
        Self(Box::pin(s))
    }

    /// The next event; `None` once the backend has gone away.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.next().await
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

/// A request announced to a backend before its hand-over (see
/// `Backend::expect_request`); dropping it withdraws the announcement.
pub struct Announcement {
    _hold: Box<dyn Send + Sync>,
}

impl Announcement {
    pub fn new(hold: impl Send + Sync + 'static) -> Self {
        Self {
            _hold: Box::new(hold),
        }
    }
}
