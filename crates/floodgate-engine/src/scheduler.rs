//! The continuous-batching scheduler: one actor per model, on its own OS thread.
//!
//! The scheduler owns the llama.cpp context, the waiting queue and the running batch.
//! Every step it (1) drops sequences whose client went away and frees their KV cells,
//! (2) admits waiting requests while a batch slot and KV budget are free, (3) builds one
//! batch with a decode token for every running sequence plus prompt chunks of newly
//! admitted ones, (4) runs the forward pass and samples each sequence's next token.
//! Sequences join and leave the batch at every step.
//!
//! Invariant: the sum of KV reservations (prompt + max_tokens) of running sequences
//! never exceeds the cache, so a decode can never run out of KV cells mid-generation.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedSender;

use crate::engine::{
    Event, Finish, FinishReason, GenerateRequest, TokenLogprob, TokenOutput, TopLogprob,
};
use crate::sampling::{self, Sampler};
use crate::text::TextStream;
use crate::{EngineError, TokenId};

pub(crate) enum Command {
    Generate {
        request: Box<GenerateRequest>,
        events: UnboundedSender<Event>,
    },
}

pub(crate) struct SchedulerConfig {
    pub name: String,
    pub context_length: u32,
    pub kv_cache_tokens: u32,
    pub max_batch_size: u32,
    pub max_batch_tokens: u32,
    pub threads: Option<u32>,
}

struct Waiting {
    request: Box<GenerateRequest>,
    events: UnboundedSender<Event>,
}

struct Sequence {
    slot: i32,
    request: Box<GenerateRequest>,
    events: UnboundedSender<Event>,
    sampler: Sampler,
    text: TextStream,
    /// Prompt tokens already in the KV cache.
    prefilled: usize,
    /// Next position to write.
    n_past: i32,
    generated: u32,
    last_token: TokenId,
    /// Index of this sequence's logits in the current batch, if it asked for them.
    logits_at: Option<i32>,
    reserved: u32,
}

pub(crate) fn spawn(
    backend: &'static LlamaBackend,
    model: Arc<LlamaModel>,
    config: SchedulerConfig,
    commands: Receiver<Command>,
    queued: Arc<AtomicUsize>,
) -> Result<(), String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let name = format!("engine-{}", config.name);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let threads = config.threads.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get() as i32),
                |t| t as i32,
            );
            let params = LlamaContextParams::default()
                .with_n_ctx(std::num::NonZeroU32::new(config.kv_cache_tokens))
                .with_n_batch(config.max_batch_tokens)
                .with_n_ubatch(config.max_batch_tokens.min(512))
                .with_n_seq_max(config.max_batch_size)
                .with_kv_unified(true)
                .with_n_threads(threads)
                .with_n_threads_batch(threads);
            let ctx = match model.new_context(backend, params) {
                Ok(ctx) => ctx,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("cannot create context: {e}")));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            Scheduler::new(&model, ctx, config, queued).run(&commands);
        })
        .map_err(|e| e.to_string())?;
    ready_rx
        .recv()
        .map_err(|_| "engine thread died while starting".to_string())?
}

struct Scheduler<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    config: SchedulerConfig,
    queued: Arc<AtomicUsize>,
    waiting: VecDeque<Waiting>,
    running: Vec<Sequence>,
    free_slots: Vec<i32>,
    reserved: u32,
    batch: LlamaBatch<'static>,
    eog_tokens: Vec<TokenId>,
    piece: Vec<u8>,
    generated_tokens: metrics::Counter,
}

impl<'m> Scheduler<'m> {
    fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        config: SchedulerConfig,
        queued: Arc<AtomicUsize>,
    ) -> Self {
        let vocab = model.vocab();
        let eog_tokens = vocab
            .tokens()
            .filter(|&t| vocab.is_eog(t))
            .map(|t| t.0)
            .collect();
        let batch = LlamaBatch::new(config.max_batch_tokens as usize, 1);
        let generated_tokens = metrics::counter!("floodgate_engine_generated_tokens_total", "model" => config.name.clone());
        Self {
            model,
            ctx,
            free_slots: (0..config.max_batch_size as i32).rev().collect(),
            config,
            queued,
            waiting: VecDeque::new(),
            running: Vec::new(),
            reserved: 0,
            batch,
            eog_tokens,
            piece: Vec::with_capacity(32),
            generated_tokens,
        }
    }

    fn run(mut self, commands: &Receiver<Command>) {
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                match commands.recv() {
                    Ok(cmd) => self.accept(cmd),
                    Err(_) => return,
                }
            }
            loop {
                match commands.try_recv() {
                    Ok(cmd) => self.accept(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if self.running.is_empty() && self.waiting.is_empty() {
                            return;
                        }
                        break;
                    }
                }
            }
            self.drop_cancelled();
            self.admit();
            self.publish_gauges();
            if !self.running.is_empty() {
                self.step();
            }
            if self.running.is_empty() && self.waiting.is_empty() {
                self.publish_gauges();
            }
        }
    }

    fn accept(&mut self, cmd: Command) {
        match cmd {
            Command::Generate { request, events } => {
                self.waiting.push_back(Waiting { request, events });
            }
        }
    }

    fn drop_cancelled(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|w| !w.events.is_closed());
        let dropped = before - self.waiting.len();
        if dropped > 0 {
            self.queued.fetch_sub(dropped, Ordering::AcqRel);
            metrics::counter!("floodgate_engine_sequences_cancelled_total", "model" => self.config.name.clone())
                .increment(dropped as u64);
        }
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].events.is_closed() {
                let seq = self.running.swap_remove(i);
                tracing::debug!(
                    slot = seq.slot,
                    generated = seq.generated,
                    "client gone; sequence cancelled"
                );
                metrics::counter!("floodgate_engine_sequences_cancelled_total", "model" => self.config.name.clone())
                    .increment(1);
                self.release(seq);
            } else {
                i += 1;
            }
        }
    }

    /// Frees a sequence's slot, KV cells and reservation.
    fn release(&mut self, seq: Sequence) {
        if let Err(e) = self
            .ctx
            .clear_kv_cache_seq(Some(seq.slot as u32), None, None)
        {
            tracing::warn!(error = %e, slot = seq.slot, "failed to clear KV cells");
        }
        self.reserved -= seq.reserved;
        self.free_slots.push(seq.slot);
    }

    fn admit(&mut self) {
        while let Some(front) = self.waiting.front() {
            let need = front.request.prompt.len() as u32 + front.request.max_tokens;
            if self.free_slots.is_empty() || self.reserved + need > self.config.kv_cache_tokens {
                break;
            }
            let (Some(w), Some(slot)) = (self.waiting.pop_front(), self.free_slots.pop()) else {
                break;
            };
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.reserved += need;
            let sampler = Sampler::new(w.request.sampling.clone());
            let text = TextStream::new(w.request.stop.clone());
            self.running.push(Sequence {
                slot,
                sampler,
                text,
                events: w.events,
                prefilled: 0,
                n_past: 0,
                generated: 0,
                last_token: 0,
                logits_at: None,
                reserved: need,
                request: w.request,
            });
        }
    }

    fn publish_gauges(&self) {
        let model = self.config.name.clone();
        metrics::gauge!("floodgate_engine_running_sequences", "model" => model.clone())
            .set(self.running.len() as f64);
        metrics::gauge!("floodgate_engine_queue_depth", "model" => model.clone())
            .set(self.waiting.len() as f64);
        metrics::gauge!("floodgate_engine_kv_reserved_ratio", "model" => model)
            .set(f64::from(self.reserved) / f64::from(self.config.kv_cache_tokens.max(1)));
    }

    /// One forward pass over every running sequence.
    fn step(&mut self) {
        self.batch.clear();
        let mut budget = self.config.max_batch_tokens as usize;
        let mut ok = true;
        // Decode tokens first, so running streams never wait behind a long prompt.
        for seq in self.running.iter_mut() {
            seq.logits_at = None;
            if seq.prefilled == seq.request.prompt.len() && budget > 0 {
                seq.logits_at = Some(self.batch.n_tokens());
                ok &= self
                    .batch
                    .add(LlamaToken(seq.last_token), seq.n_past, &[seq.slot], true)
                    .is_ok();
                seq.n_past += 1;
                budget -= 1;
            }
        }
        for seq in self.running.iter_mut() {
            let remaining = seq.request.prompt.len() - seq.prefilled;
            if remaining == 0 || budget == 0 {
                continue;
            }
            let take = remaining.min(budget);
            for i in 0..take {
                let pos = seq.prefilled + i;
                let last = pos + 1 == seq.request.prompt.len();
                if last {
                    seq.logits_at = Some(self.batch.n_tokens());
                }
                ok &= self
                    .batch
                    .add(
                        LlamaToken(seq.request.prompt[pos]),
                        pos as i32,
                        &[seq.slot],
                        last,
                    )
                    .is_ok();
            }
            seq.prefilled += take;
            seq.n_past = seq.prefilled as i32;
            budget -= take;
        }
        if self.batch.n_tokens() == 0 {
            return;
        }
        let started = Instant::now();
        let result = if ok {
            self.ctx.decode(&mut self.batch).map_err(|e| e.to_string())
        } else {
            Err("batch overflow".to_string())
        };
        metrics::histogram!("floodgate_engine_step_seconds", "model" => self.config.name.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("floodgate_engine_batch_tokens", "model" => self.config.name.clone())
            .record(f64::from(self.batch.n_tokens()));
        if let Err(e) = result {
            tracing::error!(error = %e, "decode failed; failing the batch");
            for seq in std::mem::take(&mut self.running) {
                let _ = seq
                    .events
                    .send(Event::Failed(EngineError::Decode(e.clone())));
                self.release(seq);
            }
            return;
        }
        let mut i = 0;
        while i < self.running.len() {
            let finished = match self.running[i].logits_at {
                Some(at) => self.sample(i, at),
                None => None,
            };
            match finished {
                Some(reason) => {
                    let mut seq = self.running.swap_remove(i);
                    let rest = seq.text.finish();
                    if !rest.is_empty() {
                        let _ = seq.events.send(Event::Token(TokenOutput {
                            text: rest,
                            logprobs: Vec::new(),
                        }));
                    }
                    let _ = seq.events.send(Event::Finished(Finish {
                        reason,
                        prompt_tokens: seq.request.prompt.len() as u32,
                        completion_tokens: seq.generated,
                    }));
                    self.release(seq);
                }
                None => i += 1,
            }
        }
    }

    /// Samples sequence `i`'s next token from batch logits `at`; returns why it finished.
    fn sample(&mut self, i: usize, at: i32) -> Option<FinishReason> {
        let logits = self.ctx.get_logits_ith(at);
        let seq = &mut self.running[i];
        let banned: &[TokenId] = if seq.request.ignore_eos {
            &self.eog_tokens
        } else {
            &[]
        };
        let token = seq.sampler.sample(logits, banned);
        let logprobs = seq
            .request
            .logprobs
            .map(|n| sampling::logprobs(logits, token, n));
        if !seq.request.ignore_eos && self.eog_tokens.contains(&token) {
            return Some(FinishReason::Stop);
        }
        seq.sampler.accept(token);
        seq.generated += 1;
        self.generated_tokens.increment(1);
        seq.last_token = token;
        let vocab = self.model.vocab();
        self.piece.clear();
        vocab.token_to_piece_into(LlamaToken(token), &mut self.piece, false, None);
        let pushed = seq.text.push(&self.piece);
        let logprobs = match logprobs {
            Some(lp) => {
                let spell = |t: TokenId| {
                    let bytes = vocab.token_to_piece(LlamaToken(t), false, None);
                    (String::from_utf8_lossy(&bytes).into_owned(), bytes)
                };
                let top = lp
                    .top
                    .iter()
                    .map(|&(t, logprob)| {
                        let (token, bytes) = spell(t);
                        TopLogprob {
                            token,
                            bytes,
                            logprob,
                        }
                    })
                    .collect();
                vec![TokenLogprob {
                    token: String::from_utf8_lossy(&self.piece).into_owned(),
                    bytes: self.piece.clone(),
                    logprob: lp.chosen,
                    top,
                }]
            }
            None => Vec::new(),
        };
        if !pushed.text.is_empty() || !logprobs.is_empty() {
            let _ = seq.events.send(Event::Token(TokenOutput {
                text: pushed.text,
                logprobs,
            }));
        }
        if pushed.stopped {
            Some(FinishReason::Stop)
        } else if seq.generated >= seq.request.max_tokens
            || seq.n_past as u32 >= self.config.context_length
        {
            Some(FinishReason::Length)
        } else {
            None
        }
    }
}
