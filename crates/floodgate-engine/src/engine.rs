//! The public handle to one loaded model.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::request::{Event, GenerateRequest};
use crate::scheduler::{self, Command, SchedulerConfig};
use crate::template::{ChatTemplate, Message, PromptSegment};
use crate::{EngineError, TokenId};

/// How to load and run one model. Every number here is configuration (see the gateway's
/// `[[model]]` section); the defaults suit a small CPU machine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub name: String,
    pub path: PathBuf,
    /// Longest prompt + completion of one request; `None` = the model's training context,
    /// capped by `kv_cache_tokens`.
    pub context_length: Option<u32>,
    /// Total KV-cache size in tokens, shared by all running sequences.
    pub kv_cache_tokens: u32,
    /// How many sequences decode together in one batch.
    pub max_batch_size: u32,
    /// Most tokens (prompt chunks + decode tokens) in one forward pass.
    pub max_batch_tokens: u32,
    /// Most prompt tokens prefilled in one step, so a long prompt is cut into chunks
    /// interleaved with the running streams' decode steps.
    pub max_prefill_tokens_per_step: u32,
    /// While streams decode, prompt tokens per step are also capped at this many per
    /// decoding sequence (at least 16), bounding their inter-token latency.
    pub prefill_tokens_per_decoding_sequence: u32,
    /// A prompt of at most this many tokens is prefilled whole in one step even while
    /// streams decode (still within `max_prefill_tokens_per_step`): a one-off cost to
    /// them, where chunking it would add steps to its first token.
    pub short_prompt_tokens: u32,
    /// When the engine is idle, how long the first request waits for others to share
    /// its first batch (dynamic batching); 0 = start at once.
    pub max_wait_ms: u64,
    /// Burst batching on an idle engine: the most its first request waits, beyond
    /// `max_wait_ms`, for a burst to gather into one first batch; 0 = off.
    pub burst_wait_ms: u64,
    /// Burst batching: each arrival keeps the first batch open this much longer (within
    /// `burst_wait_ms`), as does each request announced as on its way
    /// ([`Engine::expect_request`]); a lone request waits this once. 0 = wait only for
    /// announced requests.
    pub burst_gap_ms: u64,
    /// Reuse KV entries of a shared prompt prefix (same system prompt) across requests.
    pub prefix_cache: bool,
    /// One KV cache shared by all sequences (a running sequence's prompt prefix can be
    /// shared with a newcomer, but every token attends over every used cell), or one KV
    /// stream per sequence (attention spans only the sequence's own cells; prefixes are
    /// reused only within a slot).
    pub kv_unified: bool,
    /// A request still running (or waiting) after this long is ended with a timeout.
    pub request_timeout: Option<Duration>,
    /// Requests waiting for a batch slot beyond this are refused.
    pub max_queue: usize,
    /// CPU threads for llama.cpp; `None` = all available cores.
    pub threads: Option<u32>,
    /// Layers to offload to a GPU (only with the `cuda` feature).
    pub gpu_layers: u32,
}

impl EngineConfig {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            context_length: None,
            kv_cache_tokens: 16384,
            max_batch_size: 16,
            max_batch_tokens: 512,
            max_prefill_tokens_per_step: 256,
            prefill_tokens_per_decoding_sequence: 2,
            short_prompt_tokens: 128,
            max_wait_ms: 0,
            burst_wait_ms: 20,
            burst_gap_ms: 2,
            prefix_cache: true,
            kv_unified: true,
            request_timeout: None,
            max_queue: 256,
            threads: None,
            gpu_layers: 0,
        }
    }
}

/// Facts about a loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    pub architecture: String,
    pub context_length: u32,
    pub train_context_length: u32,
    pub vocab_size: u32,
    pub has_chat_template: bool,
    pub file_bytes: u64,
    pub parameters: u64,
}

/// A loaded model and its scheduler. Cloning is cheap; the scheduler thread stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    info: ModelInfo,
    model: Arc<LlamaModel>,
    template: Option<ChatTemplate>,
    commands: Sender<Command>,
    /// Requests submitted but not yet running; shared with the scheduler.
    queued: Arc<AtomicUsize>,
    max_queue: usize,
    /// Moving average of request duration (ms), kept by the scheduler.
    mean_request_ms: Arc<AtomicU64>,
    /// Requests announced by `expect_request` and not yet submitted or given up.
    incoming: Arc<AtomicUsize>,
    max_batch_size: u32,
    request_timeout: Option<Duration>,
    add_bos: bool,
    bos: TokenId,
}

/// A request announced to the engine ([`Engine::expect_request`]); dropping it withdraws
/// the announcement.
#[derive(Debug)]
#[must_use = "the announcement ends when this guard is dropped"]
pub struct Incoming(Arc<AtomicUsize>);

impl Drop for Incoming {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("info", &self.inner.info)
            .finish()
    }
}

pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| EngineError::Load {
            path: String::new(),
            reason: reason.clone(),
        })
}

impl Engine {
    /// Loads the model and starts its scheduler thread. Blocking: call it from a
    /// blocking context (`spawn_blocking`) in async code.
    pub fn load(config: EngineConfig) -> Result<Self, EngineError> {
        let backend = backend()?;
        let load_err = |reason: String| EngineError::Load {
            path: config.path.display().to_string(),
            reason,
        };
        if !config.path.is_file() {
            return Err(load_err("no such file".into()));
        }
        let params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
        let model = LlamaModel::load_from_file(backend, &config.path, &params)
            .map_err(|e| load_err(e.to_string()))?;
        let model = Arc::new(model);
        let vocab = model.vocab();
        let train_ctx = model.n_ctx_train();
        let context_length = config
            .context_length
            .unwrap_or(train_ctx)
            .min(train_ctx.max(1))
            .min(config.kv_cache_tokens);
        // With a KV stream per sequence, each sequence gets an equal share of the cache.
        let context_length = if config.kv_unified {
            context_length
        } else {
            context_length.min(config.kv_cache_tokens / config.max_batch_size.max(1))
        };
        let piece = |t: LlamaToken| {
            String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
        };
        let bos = vocab.bos();
        let eos = vocab.eos();
        let bos_text = if bos.0 >= 0 {
            piece(bos)
        } else {
            String::new()
        };
        let eos_text = if eos.0 >= 0 {
            piece(eos)
        } else {
            String::new()
        };
        let template = match model.meta_val_str("tokenizer.chat_template") {
            Ok(src) if !src.trim().is_empty() => Some(
                ChatTemplate::new(&src, bos_text, eos_text)
                    .map_err(|e| load_err(format!("invalid chat template: {e}")))?,
            ),
            _ => None,
        };
        let info = ModelInfo {
            name: config.name.clone(),
            architecture: model
                .meta_val_str("general.architecture")
                .unwrap_or_default(),
            context_length,
            train_context_length: train_ctx,
            vocab_size: u32::try_from(model.n_vocab()).unwrap_or(0),
            has_chat_template: template.is_some(),
            file_bytes: model.size(),
            parameters: model.n_params(),
        };
        let add_bos = vocab.should_add_bos() && bos.0 >= 0;
        let bos = bos.0;
        let (tx, rx) = channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let mean_request_ms = Arc::new(AtomicU64::new(0));
        let incoming = Arc::new(AtomicUsize::new(0));
        let sched = SchedulerConfig {
            name: config.name.clone(),
            context_length,
            kv_cache_tokens: config.kv_cache_tokens,
            max_batch_size: config.max_batch_size.max(1),
            max_batch_tokens: config.max_batch_tokens.max(config.max_batch_size).max(1),
            max_prefill_tokens_per_step: config.max_prefill_tokens_per_step.max(1),
            prefill_tokens_per_decoding_sequence: config.prefill_tokens_per_decoding_sequence.max(1)
                as usize,
            short_prompt_tokens: config.short_prompt_tokens as usize,
            max_wait: Duration::from_millis(config.max_wait_ms),
            burst_wait: Duration::from_millis(config.burst_wait_ms),
            burst_gap: Duration::from_millis(config.burst_gap_ms),
            prefix_cache: config.prefix_cache,
            kv_unified: config.kv_unified,
            threads: config.threads,
        };
        scheduler::spawn(
            backend,
            Arc::clone(&model),
            sched,
            rx,
            Arc::clone(&queued),
            Arc::clone(&mean_request_ms),
            Arc::clone(&incoming),
        )
        .map_err(load_err)?;
        tracing::info!(
            model = %info.name,
            arch = %info.architecture,
            context_length,
            params = info.parameters,
            "model loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                info,
                model,
                template,
                commands: tx,
                queued,
                max_queue: config.max_queue,
                mean_request_ms,
                incoming,
                max_batch_size: config.max_batch_size.max(1),
                request_timeout: config.request_timeout,
                add_bos,
                bos,
            }),
        })
    }

    /// How long a request submitted now would wait for a batch slot: the queue ahead of
    /// it divided among the batch slots, times the recent mean request duration.
    pub fn estimated_wait(&self) -> Duration {
        let queued = self.inner.queued.load(Ordering::Acquire) as f64;
        let mean_ms = self.inner.mean_request_ms.load(Ordering::Acquire) as f64;
        let slots = f64::from(self.inner.max_batch_size.max(1));
        Duration::from_millis((queued / slots * mean_ms) as u64)
    }

    /// Announces a request that will be submitted shortly (its caller is still screening
    /// or preparing it). While any are announced, an idle engine lets its first request
    /// wait (up to `burst_wait_ms`) so that a burst is prefilled in one batch. Drop the
    /// returned guard just before submitting the request, or when giving it up.
    pub fn expect_request(&self) -> Incoming {
        self.inner.incoming.fetch_add(1, Ordering::AcqRel);
        Incoming(Arc::clone(&self.inner.incoming))
    }

    /// Requests waiting for a batch slot.
    pub fn queue_depth(&self) -> usize {
        self.inner.queued.load(Ordering::Acquire)
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// Tokenizes client text. Special-token text in it is *not* parsed as special tokens.
    pub fn tokenize(&self, text: &str, add_bos: bool) -> Vec<TokenId> {
        let vocab = self.inner.model.vocab();
        let mut out: Vec<TokenId> = Vec::new();
        if add_bos && self.inner.add_bos {
            out.push(self.inner.bos);
        }
        out.extend(
            vocab
                .tokenize(text.as_bytes(), false, false)
                .into_iter()
                .map(|t| t.0),
        );
        out
    }

    /// Renders the conversation with the model's chat template and tokenizes it.
    pub fn tokenize_chat(&self, messages: &[Message]) -> Result<Vec<TokenId>, EngineError> {
        let template = self
            .inner
            .template
            .as_ref()
            .ok_or_else(|| EngineError::NoChatTemplate(self.inner.info.name.clone()))?;
        let segments = template
            .render(messages)
            .map_err(|e| EngineError::Template(e.to_string()))?;
        let vocab = self.inner.model.vocab();
        let mut out: Vec<TokenId> = Vec::new();
        if self.inner.add_bos {
            out.push(self.inner.bos);
        }
        for seg in segments {
            let (text, special) = match &seg {
                PromptSegment::Template(t) => (t, true),
                PromptSegment::Content(c) => (c, false),
            };
            out.extend(
                vocab
                    .tokenize(text.as_bytes(), false, special)
                    .into_iter()
                    .map(|t| t.0),
            );
        }
        // Templates that print `bos_token` themselves would otherwise get two.
        if self.inner.add_bos && out.len() >= 2 && out[1] == self.inner.bos {
            out.remove(0);
        }
        Ok(out)
    }

    /// The text of one token, as the model's vocabulary spells it.
    pub fn token_text(&self, token: TokenId) -> String {
        let vocab = self.inner.model.vocab();
        String::from_utf8_lossy(&vocab.token_to_piece(LlamaToken(token), false, None)).into_owned()
    }

    /// Submits a job. Refuses at once (never queues without bound) when the request
    /// cannot fit the context or the queue is full.
    pub fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::UnboundedReceiver<Event>, EngineError> {
        let info = &self.inner.info;
        if request.prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if let Some(&bad) = request
            .prompt
            .iter()
            .find(|&&t| t < 0 || t as u32 >= info.vocab_size)
        {
            return Err(EngineError::InvalidToken(i64::from(bad)));
        }
        let prompt = request.prompt.len() as u64;
        let requested = prompt + u64::from(request.max_tokens);
        if requested > u64::from(info.context_length) {
            return Err(EngineError::ContextLengthExceeded {
                limit: info.context_length,
                requested,
                prompt: u32::try_from(prompt).unwrap_or(u32::MAX),
                completion: request.max_tokens,
            });
        }
        let mut request = request;
        if let Some(timeout) = self.inner.request_timeout {
            let deadline = Instant::now() + timeout;
            request.deadline = Some(request.deadline.map_or(deadline, |d| d.min(deadline)));
        }
        if let Some(deadline) = request.deadline {
            let wait = self.estimated_wait();
            if Instant::now() + wait > deadline {
                return Err(EngineError::WaitTooLong {
                    model: info.name.clone(),
                    estimated_ms: wait.as_millis() as u64,
                });
            }
        }
        // Reserve a queue place first so concurrent callers cannot overshoot the bound.
        if self.inner.queued.fetch_add(1, Ordering::AcqRel) >= self.inner.max_queue {
            self.inner.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(EngineError::QueueFull(info.name.clone()));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let command = Command::Generate {
            request: Box::new(request),
            events: tx,
        };
        if self.inner.commands.send(command).is_err() {
            self.inner.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(EngineError::Stopped(info.name.clone()));
        }
        Ok(rx)
    }
}
