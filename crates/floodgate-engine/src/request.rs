//! What a generation asks for and what comes back: the types the engine's handle and
//! its scheduler thread exchange.

use std::time::{Duration, Instant};

use crate::sampling::SamplingParams;
use crate::{EngineError, TokenId};

/// One generation job. The prompt is already tokenized.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: Vec<TokenId>,
    pub max_tokens: u32,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// `Some(n)`: report each token's log-probability and the `n` best alternatives.
    pub logprobs: Option<usize>,
    /// Keep generating past end-of-generation tokens (benchmarks, tests).
    pub ignore_eos: bool,
    pub priority: Priority,
    /// Give up (and free the sequence) after this instant.
    pub deadline: Option<Instant>,
}

/// Scheduling class. Interactive requests are admitted before batch ones; FIFO within a
/// class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    #[default]
    Interactive,
    Batch,
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

/// What one decode step produced for a sequence. `text` may be empty while bytes are
/// held back (a split UTF-8 character or a possible stop sequence).
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

#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub reason: FinishReason,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens whose KV entries were reused from an earlier or concurrent request.
    pub cached_prompt_tokens: u32,
    /// Time spent waiting for a batch slot.
    pub queued: Duration,
    /// When the sequence joined the running batch, and when it left it.
    pub admitted: Instant,
    pub finished: Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Token(TokenOutput),
    Finished(Finish),
    Failed(EngineError),
}
