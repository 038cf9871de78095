//! Stage 8, screen output: the answer is screened before the client sees it. A whole
//! answer is screened and redacted at once (blocked → `finish_reason:
//! "content_filter"`); a stream goes through an [`OutputScreen`] that redacts PII with
//! an exact hold-back and cuts the stream with an error when the policy blocks it.
//! Token log-probabilities wait for their text and are dropped where it was redacted.
//!
//! The results are OpenAI-neutral [`WholeAnswer`]s and [`Piece`]s; `routes::openai`
//! shapes them as JSON or SSE. Both settle the request (stage 9) when the answer ends.

use std::collections::VecDeque;
use std::sync::Arc;

use floodgate_protocol as p;

use crate::backend::Generation;
use crate::config::ModelConfig;
use crate::error::GatewayError;
use crate::guard::{LogprobGate, OutputScreen};
use crate::inference::{Event, Finish, FinishReason, TokenLogprob};
use crate::telemetry::GenerationTimer;
use crate::AppState;

use super::settle::Settlement;
use super::{Api, RequestContext};

/// A finished, screened answer.
#[derive(Debug)]
pub struct WholeAnswer {
    /// The text to return: the echoed prompt, if asked for, then the answer.
    pub text: String,
    /// The answer's token log-probabilities (cleared where text was redacted).
    pub logprobs: Vec<TokenLogprob>,
    pub reason: p::FinishReason,
    pub usage: p::Usage,
    /// The output guard's notes.
    pub notes: Vec<&'static str>,
    /// What the request cost in all (every tier that ran).
    pub cost_usd: f64,
}

/// One step of a streamed answer.
#[derive(Debug)]
pub enum Piece {
    /// Text that passed the screen, with the log-probabilities of the tokens it
    /// completes (the echoed prompt comes first, without any).
    Text {
        text: String,
        logprobs: Vec<TokenLogprob>,
    },
    /// The answer ended.
    Finish {
        reason: p::FinishReason,
        usage: p::Usage,
    },
    /// The stream ends with this error (a failure, or the output guard cut it).
    Error(p::ErrorBody),
}

pub fn finish_reason(r: FinishReason) -> p::FinishReason {
    match r {
        FinishReason::Stop => p::FinishReason::Stop,
        FinishReason::Length => p::FinishReason::Length,
    }
}

fn served_model(ctx: &RequestContext) -> (String, Arc<ModelConfig>) {
    let tier = &ctx.tiers[ctx.tier];
    (tier.variant.id.clone(), Arc::clone(&tier.variant.config))
}

/// Reads the whole answer, screens it, and settles.
pub async fn whole(
    state: &AppState,
    ctx: &RequestContext,
    mut generation: Generation,
    mut settlement: Settlement,
) -> Result<WholeAnswer, GatewayError> {
    let (served, model) = served_model(ctx);
    let mut timer = GenerationTimer::new(&served, ctx.started);
    let mut text = generation.prompt_text.take().unwrap_or_default();
    let echo_len = if ctx.api == Api::Text { text.len() } else { 0 };
    let mut logprobs = Vec::new();
    let finish = loop {
        match generation.events.recv().await {
            Some(Event::Token(t)) => {
                timer.token();
                settlement.token();
                text.push_str(&t.text);
                logprobs.extend(t.logprobs);
            }
            Some(Event::Finished(f)) => break f,
            Some(Event::Failed(e)) => {
                settlement.ended(format!("failed: {e}"), Some(&e));
                return Err(e);
            }
            None => {
                let e = GatewayError::Internal("the engine stopped mid-generation".into());
                settlement.ended(format!("failed: {e}"), Some(&e));
                return Err(e);
            }
        }
    };
    timer.finish(finish.prompt_tokens, finish.completion_tokens);
    let usage = p::Usage::new(finish.prompt_tokens, finish.completion_tokens)
        .with_cached(finish.cached_prompt_tokens);
    let mut reason = finish_reason(finish.reason);
    let decision = state.guard.check_output(&text[echo_len..], Some(&model));
    let mut notes = Vec::new();
    if decision.flagged {
        notes.push(if decision.text.is_some() {
            "output-flagged"
        } else {
            "output-blocked"
        });
    }
    text.truncate(echo_len);
    match decision.text {
        Some(t) => {
            if decision.redacted > 0 {
                notes.push("output-redacted");
                // Token log-probabilities would spell out what was redacted.
                logprobs.clear();
            }
            text.push_str(&t);
        }
        None => {
            logprobs.clear();
            reason = p::FinishReason::ContentFilter;
        }
    }
    // Settled after the screen, so that the event carries the output guard's notes.
    settlement.text(&text[echo_len..]);
    let cost_usd = settlement.finished(&finish, &notes);
    settlement.flush().await;
    Ok(WholeAnswer {
        text,
        logprobs,
        reason,
        usage,
        notes,
        cost_usd,
    })
}

/// A streamed answer, screened as it goes. Dropping it cancels the generation and
/// settles what was used.
pub struct AnswerStream {
    generation: Generation,
    timer: GenerationTimer,
    settlement: Settlement,
    screen: OutputScreen,
    /// Token log-probabilities wait here for the screen to release their text.
    logprobs: LogprobGate<TokenLogprob>,
    /// Pieces still to hand out before reading the backend again.
    queue: VecDeque<Piece>,
    done: bool,
    _open: OpenStream,
}

/// Counts a streamed answer in `floodgate_streams_open` while it exists (its headers
/// went out, so it has left `floodgate_requests_in_flight`): with it, in-flight work
/// for an autoscaler is the sum of the two.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!("floodgate_streams_open").increment(1.0);
        Self
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("floodgate_streams_open").decrement(1.0);
    }
}

pub fn stream(
    state: &AppState,
    ctx: &RequestContext,
    mut generation: Generation,
    settlement: Settlement,
) -> AnswerStream {
    let (served, model) = served_model(ctx);
    let mut queue = VecDeque::new();
    if let Some(prompt) = generation.prompt_text.take() {
        queue.push_back(Piece::Text {
            text: prompt,
            logprobs: Vec::new(),
        });
    }
    AnswerStream {
        generation,
        timer: GenerationTimer::new(&served, ctx.started),
        settlement,
        screen: state.guard.output_screen(Some(&model)),
        logprobs: LogprobGate::default(),
        queue,
        done: false,
        _open: OpenStream::new(),
    }
}

impl AnswerStream {
    /// The next piece; `None` after the last.
    pub async fn next(&mut self) -> Option<Piece> {
        loop {
            if let Some(piece) = self.queue.pop_front() {
                if matches!(piece, Piece::Finish { .. } | Piece::Error(_)) {
                    // The last piece: the request's event reaches the log first.
                    self.settlement.flush().await;
                }
                return Some(piece);
            }
            if self.done {
                return None;
            }
            let event = self.generation.events.recv().await;
            self.on_event(event);
        }
    }

    fn on_event(&mut self, event: Option<Event>) {
        match event {
            Some(Event::Token(t)) => {
                self.timer.token();
                self.settlement.token();
                self.logprobs.hold(t.text.len(), t.logprobs);
                let text = self.screen.push(&t.text);
                if let Err(b) = self.screen.check(false) {
                    self.blocked(b.score);
                    return;
                }
                self.release(text);
            }
            Some(Event::Finished(f)) => self.finished(&f),
            Some(Event::Failed(e)) => {
                tracing::error!(error = %e, "generation failed mid-stream");
                self.failed(e);
            }
            None => self.failed(GatewayError::Internal(
                "the engine stopped mid-generation".into(),
            )),
        }
    }

    /// Queues released text with the log-probabilities it completes, if any.
    fn release(&mut self, text: String) {
        self.settlement.text(&text);
        let logprobs = self.logprobs.release(
            self.screen.released_raw(),
            self.screen.last_release_redacted,
        );
        if !text.is_empty() || !logprobs.is_empty() {
            self.queue.push_back(Piece::Text { text, logprobs });
        }
    }

    fn finished(&mut self, f: &Finish) {
        self.timer.finish(f.prompt_tokens, f.completion_tokens);
        // The final flush may redact or block too: settle after it, so that the
        // record's notes and the run's cost are both there.
        let flushed = self.screen.finish();
        let notes: &[&str] = match (&flushed, self.screen.redacted > 0) {
            (Err(_), _) => &["output-blocked"],
            (Ok(_), true) => &["output-redacted"],
            (Ok(_), false) => &[],
        };
        self.settlement.finished(f, notes);
        match flushed {
            Ok(rest) => self.release(rest),
            Err(b) => return self.blocked(b.score),
        }
        self.queue.push_back(Piece::Finish {
            reason: finish_reason(f.reason),
            usage: p::Usage::new(f.prompt_tokens, f.completion_tokens),
        });
        self.done = true;
    }

    /// The output guard cut the stream: one error, then the end (dropping the
    /// generation stops the backend).
    fn blocked(&mut self, score: f32) {
        tracing::warn!(score, "stream cut by the output guard");
        self.queue.push_back(Piece::Error(p::ErrorBody::new(
            format!("The response was stopped by the output guard (toxicity score {score:.2})."),
            "content_filter",
            None,
            Some("output_blocked".into()),
        )));
        self.settlement.ended("output-blocked".into(), None);
        self.done = true;
    }

    fn failed(&mut self, e: GatewayError) {
        self.settlement.ended(format!("failed: {e}"), Some(&e));
        self.queue.push_back(Piece::Error(e.body()));
        self.done = true;
    }
}
