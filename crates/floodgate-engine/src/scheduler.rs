//! The continuous-batching scheduler: one actor per model, on its own OS thread.
//!
//! The scheduler owns the llama.cpp context, the waiting queues and the running batch.
//! Every step it (1) ends sequences whose client went away or whose deadline passed and
//! frees their KV cells, (2) admits waiting requests (interactive before batch, FIFO
//! within a class) while a batch slot and KV budget are free, reusing the KV entries of
//! a shared prompt prefix where one exists, (3) builds one batch with a decode token for
//! every running sequence plus prompt chunks of newly admitted ones (at most
//! `max_prefill_tokens_per_step`, so a long prompt never freezes running streams), and
//! (4) runs the forward pass and samples each sequence's next token. Sequences join and
//! leave the batch at every step.
//!
//! Invariant: the KV reservations (prompt + max_tokens) of running sequences plus the
//! tokens cached in idle slots never exceed the cache, so a decode can never run out of
//! KV cells mid-generation; idle caches are evicted (least recently used first) to make
//! room.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedSender;

use crate::request::{
    Event, Finish, FinishReason, GenerateRequest, Priority, TokenLogprob, TokenOutput, TopLogprob,
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
    pub max_prefill_tokens_per_step: u32,
    pub prefill_tokens_per_decoding_sequence: usize,
    pub short_prompt_tokens: usize,
    pub max_wait: Duration,
    pub burst_wait: Duration,
    pub burst_gap: Duration,
    pub prefix_cache: bool,
    pub kv_unified: bool,
    pub threads: Option<u32>,
}

/// Prompt tokens a step may always prefill, so a long prompt progresses even next to a
/// single decoding stream.
const MIN_PREFILL_CHUNK: usize = 16;

/// After the last announced request is withdrawn (handed to the engine, or given up),
/// how long an idle engine still waits for it to arrive.
const BURST_GRACE: Duration = Duration::from_millis(2);

/// How often an idle engine gathering a burst looks at the announced count again.
const BURST_POLL: Duration = Duration::from_micros(500);

/// Weight of the newest request in the moving average of request durations.
const DURATION_EWMA_ALPHA: f64 = 0.2;

struct Waiting {
    request: Box<GenerateRequest>,
    events: UnboundedSender<Event>,
    submitted: Instant,
}

/// An idle KV slot and the prompt tokens whose entries it still holds.
struct IdleSlot {
    id: i32,
    cached: Vec<TokenId>,
    last_used: Instant,
}

struct Sequence {
    slot: i32,
    request: Box<GenerateRequest>,
    events: UnboundedSender<Event>,
    sampler: Sampler,
    text: TextStream,
    /// Prompt tokens already in the KV cache.
    prefilled: usize,
    cached_prompt: usize,
    /// Next position to write.
    n_past: i32,
    generated: u32,
    last_token: TokenId,
    /// Index of this sequence's logits in the current batch, if it asked for them.
    logits_at: Option<i32>,
    reserved: u32,
    started: Instant,
    queued: Duration,
    admitted: Instant,
}

pub(crate) fn spawn(
    backend: &'static LlamaBackend,
    model: Arc<LlamaModel>,
    config: SchedulerConfig,
    commands: Receiver<Command>,
    queued: Arc<AtomicUsize>,
    mean_request_ms: Arc<AtomicU64>,
    incoming: Arc<AtomicUsize>,
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
                .with_kv_unified(config.kv_unified)
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
            Scheduler::new(&model, ctx, config, queued, mean_request_ms, incoming).run(&commands);
        })
        .map_err(|e| e.to_string())?;
    ready_rx
        .recv()
        .map_err(|_| "engine thread died while starting".to_string())?
}

struct Metrics {
    generated_tokens: metrics::Counter,
    prompt_tokens: metrics::Counter,
    prefix_hit_tokens: metrics::Counter,
    prefix_hits: metrics::Counter,
    cancelled: metrics::Counter,
    timed_out: metrics::Counter,
    queue_wait: metrics::Histogram,
    batch_size: metrics::Histogram,
    batch_tokens: metrics::Histogram,
    step_seconds: metrics::Histogram,
    /// How long an idle engine held its first request while a burst gathered.
    burst_wait: metrics::Histogram,
    running: metrics::Gauge,
    queue_depth: metrics::Gauge,
    kv_reserved: metrics::Gauge,
}

impl Metrics {
    fn new(model: &str) -> Self {
        let m = model.to_string();
        Self {
            generated_tokens: metrics::counter!("floodgate_engine_generated_tokens_total", "model" => m.clone()),
            prompt_tokens: metrics::counter!("floodgate_engine_prompt_tokens_total", "model" => m.clone()),
            prefix_hit_tokens: metrics::counter!("floodgate_engine_prefix_cache_hit_tokens_total", "model" => m.clone()),
            prefix_hits: metrics::counter!("floodgate_engine_prefix_cache_hits_total", "model" => m.clone()),
            cancelled: metrics::counter!("floodgate_engine_sequences_cancelled_total", "model" => m.clone()),
            timed_out: metrics::counter!("floodgate_engine_sequences_timed_out_total", "model" => m.clone()),
            queue_wait: metrics::histogram!("floodgate_engine_queue_wait_seconds", "model" => m.clone()),
            batch_size: metrics::histogram!("floodgate_engine_batch_size", "model" => m.clone()),
            batch_tokens: metrics::histogram!("floodgate_engine_batch_tokens", "model" => m.clone()),
            step_seconds: metrics::histogram!("floodgate_engine_step_seconds", "model" => m.clone()),
            burst_wait: metrics::histogram!("floodgate_engine_burst_wait_seconds", "model" => m.clone()),
            running: metrics::gauge!("floodgate_engine_running_sequences", "model" => m.clone()),
            queue_depth: metrics::gauge!("floodgate_engine_queue_depth", "model" => m.clone()),
            kv_reserved: metrics::gauge!("floodgate_engine_kv_reserved_ratio", "model" => m),
        }
    }
}

struct Scheduler<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    config: SchedulerConfig,
    queued: Arc<AtomicUsize>,
    mean_request_ms: Arc<AtomicU64>,
    /// Requests announced as on their way (`Engine::expect_request`).
    incoming: Arc<AtomicUsize>,
    interactive: VecDeque<Waiting>,
    batch_class: VecDeque<Waiting>,
    running: Vec<Sequence>,
    idle: Vec<IdleSlot>,
    reserved: u32,
    batch: LlamaBatch<'static>,
    eog_tokens: Vec<TokenId>,
    piece: Vec<u8>,
    metrics: Metrics,
}

fn common_prefix(a: &[TokenId], b: &[TokenId]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<'m> Scheduler<'m> {
    fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        config: SchedulerConfig,
        queued: Arc<AtomicUsize>,
        mean_request_ms: Arc<AtomicU64>,
        incoming: Arc<AtomicUsize>,
    ) -> Self {
        let vocab = model.vocab();
        let eog_tokens = vocab
            .tokens()
            .filter(|&t| vocab.is_eog(t))
            .map(|t| t.0)
            .collect();
        let batch = LlamaBatch::new(config.max_batch_tokens as usize, 1);
        let now = Instant::now();
        let idle = (0..config.max_batch_size as i32)
            .map(|id| IdleSlot {
                id,
                cached: Vec::new(),
                last_used: now,
            })
            .collect();
        let metrics = Metrics::new(&config.name);
        Self {
            model,
            ctx,
            config,
            queued,
            mean_request_ms,
            incoming,
            interactive: VecDeque::new(),
            batch_class: VecDeque::new(),
            running: Vec::new(),
            idle,
            reserved: 0,
            batch,
            eog_tokens,
            piece: Vec::with_capacity(32),
            metrics,
        }
    }

    fn waiting_len(&self) -> usize {
        self.interactive.len() + self.batch_class.len()
    }

    fn run(mut self, commands: &Receiver<Command>) {
        loop {
            if self.running.is_empty() && self.waiting_len() == 0 {
                match commands.recv() {
                    Ok(cmd) => self.accept(cmd),
                    Err(_) => return,
                }
                self.gather_first_batch(commands);
            }
            loop {
                match commands.try_recv() {
                    Ok(cmd) => self.accept(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if self.running.is_empty() && self.waiting_len() == 0 {
                            return;
                        }
                        break;
                    }
                }
            }
            self.drop_finished_clients();
            self.admit();
            self.publish_gauges();
            if !self.running.is_empty() {
                self.step();
            }
            if self.running.is_empty() && self.waiting_len() == 0 {
                self.publish_gauges();
            }
        }
    }

    /// Dynamic batching on an idle engine, once its first request is in. It waits
    /// `max_wait` in any case; beyond that, while a burst seems to be arriving: each
    /// arrival keeps the batch open for `burst_gap` more, and so does each moment a
    /// request is announced as on its way (still in the gateway's guards; at least
    /// `BURST_GRACE` after the last announcement ends, while it is handed over), never
    /// past `burst_wait` after the first arrival. With `burst_gap` 0 and nothing
    /// announced, a lone request starts at once.
    fn gather_first_batch(&mut self, commands: &Receiver<Command>) {
        let start = Instant::now();
        let fixed = start + self.config.max_wait;
        let cap = start + self.config.burst_wait;
        let gap = self.config.burst_gap;
        let mut last_sign = start;
        let mut hold = gap;
        while self.waiting_len() < self.config.max_batch_size as usize {
            let now = Instant::now();
            if self.incoming.load(Ordering::Acquire) > 0 {
                last_sign = now;
                hold = gap.max(BURST_GRACE);
            }
            let until = fixed.max((last_sign + hold).min(cap));
            let left = until.saturating_duration_since(now);
            if left.is_zero() {
                break;
            }
            // Look at the announced count again every poll.
            match commands.recv_timeout(left.min(BURST_POLL)) {
                Ok(cmd) => {
                    self.accept(cmd);
                    last_sign = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let waited = start.elapsed();
        if waited > self.config.max_wait {
            self.metrics.burst_wait.record(waited.as_secs_f64());
            tracing::debug!(
                waited_ms = waited.as_secs_f64() * 1e3,
                gathered = self.waiting_len(),
                "first batch gathered"
            );
        }
    }

    fn accept(&mut self, cmd: Command) {
        match cmd {
            Command::Generate { request, events } => {
                let w = Waiting {
                    request,
                    events,
                    submitted: Instant::now(),
                };
                match w.request.priority {
                    Priority::Interactive => self.interactive.push_back(w),
                    Priority::Batch => self.batch_class.push_back(w),
                }
            }
        }
    }

    /// Ends waiting and running requests whose client went away or whose deadline passed.
    fn drop_finished_clients(&mut self) {
        let now = Instant::now();
        let expired = |r: &GenerateRequest| r.deadline.is_some_and(|d| now >= d);
        let mut dropped = 0;
        for queue in [&mut self.interactive, &mut self.batch_class] {
            queue.retain(|w| {
                if w.events.is_closed() {
                    dropped += 1;
                    self.metrics.cancelled.increment(1);
                    false
                } else if expired(&w.request) {
                    dropped += 1;
                    self.metrics.timed_out.increment(1);
                    let _ = w.events.send(Event::Failed(EngineError::Timeout));
                    false
                } else {
                    true
                }
            });
        }
        if dropped > 0 {
            self.queued.fetch_sub(dropped, Ordering::AcqRel);
        }
        let mut i = 0;
        while i < self.running.len() {
            let seq = &self.running[i];
            if seq.events.is_closed() {
                let seq = self.running.swap_remove(i);
                tracing::debug!(
                    slot = seq.slot,
                    generated = seq.generated,
                    "client gone; sequence cancelled"
                );
                self.metrics.cancelled.increment(1);
                self.release(seq);
            } else if expired(&seq.request) {
                let seq = self.running.swap_remove(i);
                self.metrics.timed_out.increment(1);
                let _ = seq.events.send(Event::Failed(EngineError::Timeout));
                self.release(seq);
            } else {
                i += 1;
            }
        }
    }

    /// Returns a sequence's slot to the idle pool. Its prompt's KV entries stay cached
    /// for reuse by a later request with the same prefix; everything after is freed.
    fn release(&mut self, seq: Sequence) {
        self.reserved -= seq.reserved;
        let keep = if self.config.prefix_cache {
            seq.prefilled
        } else {
            0
        };
        let cached = if self.remove_kv(seq.slot, keep as u32) {
            seq.request.prompt[..keep].to_vec()
        } else {
            self.remove_kv(seq.slot, 0);
            Vec::new()
        };
        self.idle.push(IdleSlot {
            id: seq.slot,
            cached,
            last_used: Instant::now(),
        });
        self.update_mean_duration(seq.started.elapsed());
    }

    /// Frees a slot's KV entries from position `from` on.
    fn remove_kv(&mut self, slot: i32, from: u32) -> bool {
        match self
            .ctx
            .clear_kv_cache_seq(Some(slot as u32), Some(from), None)
        {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, slot, "failed to clear KV cells");
                false
            }
        }
    }

    fn update_mean_duration(&self, took: Duration) {
        let ms = took.as_millis() as f64;
        let old = self.mean_request_ms.load(Ordering::Acquire) as f64;
        let new = if old == 0.0 {
            ms
        } else {
            old * (1.0 - DURATION_EWMA_ALPHA) + ms * DURATION_EWMA_ALPHA
        };
        self.mean_request_ms.store(new as u64, Ordering::Release);
    }

    fn cached_idle_tokens(&self) -> u32 {
        self.idle.iter().map(|s| s.cached.len() as u32).sum()
    }

    fn admit(&mut self) {
        loop {
            let from_interactive = !self.interactive.is_empty();
            let Some(front) = self
                .interactive
                .front()
                .or_else(|| self.batch_class.front())
            else {
                return;
            };
            let need = front.request.prompt.len() as u32 + front.request.max_tokens;
            if self.idle.is_empty() || self.reserved + need > self.config.kv_cache_tokens {
                return;
            }
            let prompt = front.request.prompt.clone();
            // Make room: idle caches go, least recently used first, until the new
            // reservation fits next to them.
            while self.reserved + need + self.cached_idle_tokens() > self.config.kv_cache_tokens {
                let Some(lru) = self
                    .idle
                    .iter_mut()
                    .filter(|s| !s.cached.is_empty())
                    .min_by_key(|s| s.last_used)
                else {
                    break;
                };
                lru.cached.clear();
                let id = lru.id;
                self.remove_kv(id, 0);
            }
            let w = if from_interactive {
                self.interactive.pop_front()
            } else {
                self.batch_class.pop_front()
            };
            let Some(w) = w else { return };
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.metrics
                .queue_wait
                .record(w.submitted.elapsed().as_secs_f64());
            let (slot, reused) = self.take_slot(&prompt);
            self.reserved += need;
            self.metrics.prompt_tokens.increment(prompt.len() as u64);
            if reused > 0 {
                self.metrics.prefix_hits.increment(1);
                self.metrics.prefix_hit_tokens.increment(reused as u64);
            }
            let sampler = Sampler::new(w.request.sampling.clone());
            let text = TextStream::new(w.request.stop.clone());
            self.running.push(Sequence {
                slot,
                sampler,
                text,
                events: w.events,
                prefilled: reused,
                cached_prompt: reused,
                n_past: reused as i32,
                generated: 0,
                last_token: 0,
                logits_at: None,
                reserved: need,
                started: w.submitted,
                queued: w.submitted.elapsed(),
                admitted: Instant::now(),
                request: w.request,
            });
        }
    }

    /// Picks an idle slot for `prompt` and reuses the longest cached prefix available,
    /// from an idle slot's own cache or by sharing a running sequence's entries.
    /// Returns the slot and how many prompt tokens are already in its KV cache.
    fn take_slot(&mut self, prompt: &[TokenId]) -> (i32, usize) {
        // The last prompt token is always decoded: its logits pick the first new token.
        let usable = prompt.len().saturating_sub(1);
        let best_idle = self
            .idle
            .iter()
            .enumerate()
            .map(|(i, s)| (i, common_prefix(&s.cached, prompt).min(usable)))
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(self.idle[i].cached.len())));
        let best_running = self
            .running
            .iter()
            .map(|s| {
                let ready = &s.request.prompt[..s.prefilled];
                (s.slot, common_prefix(ready, prompt).min(usable))
            })
            .max_by_key(|&(_, n)| n);
        let idle_n = best_idle.map_or(0, |(_, n)| n);
        let running_n = best_running.map_or(0, |(_, n)| n);
        // Entries are copied between sequences only within one unified cache.
        let use_running = self.config.prefix_cache && self.config.kv_unified && running_n > idle_n;
        // Take the idle slot with the best own prefix; when sharing from a running
        // sequence instead, take the idle slot with the least cached (least loss).
        let index = if use_running {
            self.idle
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.cached.len())
                .map_or(0, |(i, _)| i)
        } else {
            best_idle.map_or(0, |(i, _)| i)
        };
        let slot = self.idle.swap_remove(index);
        let mut reused = if self.config.prefix_cache && !use_running {
            idle_n
        } else {
            0
        };
        if !self.remove_kv(slot.id, reused as u32) {
            self.remove_kv(slot.id, 0);
            reused = 0;
        }
        if use_running {
            if let Some((src, n)) = best_running {
                self.ctx
                    .copy_kv_cache_seq(src, slot.id, Some(0), Some(n as u32))
                    .map_or_else(
                        |e| tracing::warn!(error = %e, "prefix copy failed; prefilling in full"),
                        |()| reused = n,
                    );
            }
        }
        (slot.id, reused)
    }

    fn publish_gauges(&self) {
        self.metrics.running.set(self.running.len() as f64);
        self.metrics.queue_depth.set(self.waiting_len() as f64);
        self.metrics
            .kv_reserved
            .set(f64::from(self.reserved) / f64::from(self.config.kv_cache_tokens.max(1)));
    }

    /// One forward pass over every running sequence.
    fn step(&mut self) {
        self.batch.clear();
        if !self.config.kv_unified {
            // With a KV stream per sequence, llama.cpp cuts a batch into micro-batches of
            // consecutive sequence ids: keep the batch in slot order.
            self.running.sort_unstable_by_key(|s| s.slot);
        }
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
        // While streams are decoding, a step's prompt tokens are capped in proportion to
        // them: on CPU a step costs about linearly in its tokens, so k prefill tokens per
        // decoding sequence keeps their inter-token latency within (1 + k)x a plain decode
        // step. An idle batch prefills at full speed.
        let decoding = self
            .running
            .iter()
            .filter(|s| s.logits_at.is_some())
            .count();
        // A short prompt is taken whole within the hard limit: one slightly longer step
        // for the running streams instead of several steps before its first token.
        let mut hard_budget = if decoding > 0 {
            budget.min(self.config.max_prefill_tokens_per_step as usize)
        } else {
            budget
        };
        let mut prefill_budget = if decoding > 0 {
            let proportional = (self.config.prefill_tokens_per_decoding_sequence * decoding)
                .max(MIN_PREFILL_CHUNK);
            hard_budget.min(proportional)
        } else {
            budget
        };
        for seq in self.running.iter_mut() {
            let remaining = seq.request.prompt.len() - seq.prefilled;
            if remaining == 0 || hard_budget == 0 {
                continue;
            }
            let short = seq.request.prompt.len() <= self.config.short_prompt_tokens;
            let take = if short && remaining <= hard_budget {
                remaining
            } else {
                remaining.min(prefill_budget)
            };
            if take == 0 {
                continue;
            }
            hard_budget -= take;
            prefill_budget = prefill_budget.saturating_sub(take);
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
        self.metrics
            .step_seconds
            .record(started.elapsed().as_secs_f64());
        self.metrics
            .batch_tokens
            .record(f64::from(self.batch.n_tokens()));
        self.metrics.batch_size.record(self.running.len() as f64);
        if let Err(e) = result {
            tracing::error!(error = %e, "decode failed; failing the batch");
            for mut seq in std::mem::take(&mut self.running) {
                let _ = seq
                    .events
                    .send(Event::Failed(EngineError::Decode(e.clone())));
                // The KV state of a failed pass is unknown: cache nothing.
                seq.prefilled = 0;
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
                        cached_prompt_tokens: seq.cached_prompt as u32,
                        queued: seq.queued,
                        admitted: seq.admitted,
                        finished: Instant::now(),
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
        self.metrics.generated_tokens.increment(1);
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
