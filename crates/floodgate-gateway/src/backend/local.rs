//! The embedded engine as a backend: the one place where the gateway's inference types
//! meet `floodgate_engine`'s.

use std::path::PathBuf;
use std::time::Duration;

use floodgate_engine as engine;
use floodgate_engine::quant::{ensure_variant, Precision};
use floodgate_engine::{Engine, EngineConfig, GenerateRequest};
use floodgate_models::ModelStore;
use futures::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{Backend, BackendInfo, Generation};
use crate::config::{Config, ModelConfig};
use crate::error::GatewayError;
use crate::inference::{
    Announcement, Event, Events, Finish, FinishReason, Message, Priority, SamplingParams, TokenId,
    TokenLogprob, TokenOutput, TopLogprob,
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

    /// The same backend, reporting `created` as its load time.
    pub fn with_created(mut self, created: u64) -> Self {
        self.info.created = created;
        self
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn tokenize(engine: &Engine, prompt: &PromptInput) -> Result<Vec<TokenId>, GatewayError> {
        Ok(match prompt {
            PromptInput::Chat(messages) => {
                let messages: Vec<engine::Message> =
                    messages.iter().map(to_engine_message).collect();
                engine.tokenize_chat(&messages)?
            }
            PromptInput::Text(text) => engine.tokenize(text, true),
            PromptInput::Tokens(tokens) => tokens.clone(),
        })
    }
}

/// Converts the weights to the configured precision (once; variants are cached).
async fn convert(
    store: &ModelStore,
    m: &ModelConfig,
    path: PathBuf,
    progress: Option<&(dyn Fn(&str) + Sync)>,
) -> Result<PathBuf, String> {
    let Some(precision) = &m.precision else {
        return Ok(path);
    };
    let precision: Precision = precision.parse().map_err(|e| format!("{e}"))?;
    let cache = store.root().join("variants");
    if let Some(p) = progress {
        p(&format!("converting to {precision}"));
    }
    tokio::task::spawn_blocking(move || ensure_variant(&cache, &path, precision))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The engine settings of a configured model whose weights are at `path`.
pub fn engine_config(m: &ModelConfig, path: PathBuf) -> EngineConfig {
    EngineConfig {
        name: m.name.clone(),
        path,
        context_length: m.context_length,
        kv_cache_tokens: m.kv_cache_tokens,
        max_batch_size: m.max_batch_size,
        max_batch_tokens: m.max_batch_tokens,
        max_prefill_tokens_per_step: m.max_prefill_tokens_per_step,
        prefill_tokens_per_decoding_sequence: m.prefill_tokens_per_decoding_sequence,
        short_prompt_tokens: m.short_prompt_tokens,
        max_wait_ms: m.max_wait_ms,
        burst_wait_ms: m.burst_wait_ms,
        burst_gap_ms: m.burst_gap_ms,
        prefix_cache: m.prefix_cache,
        kv_unified: m.kv_unified,
        request_timeout: (m.request_timeout_seconds > 0)
            .then(|| Duration::from_secs(m.request_timeout_seconds)),
        max_queue: m.max_queue,
        threads: m.threads,
        gpu_layers: m.gpu_layers,
    }
}

/// Finds (or fetches, if the configuration allows) a local model's weights, converts
/// them to the configured precision and loads them into an engine. `progress` hears
/// each step's label.
pub async fn load(
    config: &Config,
    store: &ModelStore,
    m: &ModelConfig,
    progress: Option<&(dyn Fn(&str) + Sync)>,
) -> Result<LocalBackend, String> {
    let path = crate::model_cache::resolve(config, store, m, progress).await?;
    let path = convert(store, m, path, progress).await?;
    if let Some(p) = progress {
        p("loading weights");
    }
    start_engine(m, path).await
}

/// Loads the weights at `path` into an engine configured as `m` (off the runtime).
async fn start_engine(m: &ModelConfig, path: PathBuf) -> Result<LocalBackend, String> {
    let engine_config = engine_config(m, path);
    let engine = tokio::task::spawn_blocking(move || Engine::load(engine_config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(LocalBackend::new(engine, 0))
}

/// Loads a configured model from the cache (or its `path`) for offline use by the
/// CLI; converts it to its configured precision if needed. Never downloads.
pub async fn load_cached_model(config: &Config, m: &ModelConfig) -> Result<LocalBackend, String> {
    if m.is_upstream() {
        return Err(format!(
            "`{}` is served by upstream endpoints; only local models can be loaded here",
            m.name
        ));
    }
    let store = crate::model_cache::model_store(config);
    let path = match &m.path {
        Some(p) => p.clone(),
        None => store
            .cached(&crate::model_cache::model_spec(m)?)
            .ok_or_else(|| {
                format!(
                    "`{}` is not in the model cache {}; run `floodgate models pull {}`",
                    m.name,
                    store.root().display(),
                    m.name
                )
            })?,
    };
    let path = convert(&store, m, path, None).await?;
    start_engine(m, path).await
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
