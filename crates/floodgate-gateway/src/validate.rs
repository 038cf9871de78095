//! Turning OpenAI-shaped requests into validated ones, once, at the edge.
//!
//! Everything downstream trusts these types: ranges are checked, unsupported options
//! are refused with the parameter named, and defaults are filled in.

use crate::inference::{Message, Priority, SamplingParams, TokenId};
use floodgate_protocol::{ChatCompletionRequest, CompletionRequest, Prompt};

use crate::config::LimitsConfig;
use crate::error::GatewayError;

/// Generation settings common to chat and text completions.
#[derive(Debug, Clone)]
pub struct GenParams {
    /// `None`: the configured default, capped by what the context leaves.
    pub max_tokens: Option<u32>,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// Alternatives per token when log-probabilities were asked for.
    pub logprobs: Option<usize>,
    pub ignore_eos: bool,
    /// `service_tier: "flex"` asks for the batch class; everything else is interactive.
    pub priority: Priority,
}

#[derive(Debug, Clone)]
pub enum PromptInput {
    Chat(Vec<Message>),
    Text(String),
    Tokens(Vec<TokenId>),
}

impl PromptInput {
    /// A tokenizer-free estimate of the prompt's size in tokens (about 4 bytes a token,
    /// plus a little per chat message), for admission before the real count is known
    /// and for upstreams that report no usage.
    pub fn estimated_tokens(&self) -> u32 {
        let bytes = match self {
            PromptInput::Chat(messages) => messages.iter().map(|m| m.content.len() + 8).sum(),
            PromptInput::Text(t) => t.len(),
            PromptInput::Tokens(t) => return u32::try_from(t.len()).unwrap_or(u32::MAX),
        };
        u32::try_from(bytes.div_ceil(4)).unwrap_or(u32::MAX)
    }

    /// The prompt as text for a request's event (`events.include_text`): chat messages
    /// one per line as `role: content`, token ids as numbers.
    /// What the user wrote — a chat's user messages (joined by newlines), a completion's
    /// prompt; nothing for token prompts — and the number of user turns, for the drift
    /// features.
    pub fn user_text(&self) -> (std::borrow::Cow<'_, str>, u32) {
        use std::borrow::Cow;
        match self {
            PromptInput::Chat(messages) => {
                let mut users = messages.iter().filter(|m| m.role == "user");
                let turns = u32::try_from(users.clone().count()).unwrap_or(u32::MAX);
                match (users.next(), users.next()) {
                    (None, _) => (Cow::Borrowed(""), 0),
                    (Some(only), None) => (Cow::Borrowed(only.content.as_str()), turns),
                    (Some(first), Some(second)) => {
                        let mut text = format!("{}\n{}", first.content, second.content);
                        for m in users {
                            text.push('\n');
                            text.push_str(&m.content);
                        }
                        (Cow::Owned(text), turns)
                    }
                }
            }
            PromptInput::Text(t) => (Cow::Borrowed(t.as_str()), 1),
            PromptInput::Tokens(_) => (Cow::Borrowed(""), 1),
        }
    }

    pub fn text_for_events(&self) -> String {
        match self {
            PromptInput::Chat(messages) => messages
                .iter()
                .map(|m| format!("{}: {}", m.role, m.content))
                .collect::<Vec<_>>()
                .join("\n"),
            PromptInput::Text(t) => t.clone(),
            PromptInput::Tokens(t) => t
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub model: String,
    pub prompt: PromptInput,
    pub params: GenParams,
    pub stream: bool,
    pub include_usage: bool,
    /// Completions only: return the prompt before the completion.
    pub echo: bool,
    pub user: Option<String>,
}

fn invalid(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid(message, Some(param.to_string()))
}

fn range(param: &str, v: Option<f32>, lo: f32, hi: f32) -> Result<(), GatewayError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) || !x.is_finite() => Err(invalid(
            param,
            format!("Invalid '{param}': {x} is out of range; it must be between {lo} and {hi}."),
        )),
        _ => Ok(()),
    }
}

struct Common<'a> {
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u32>,
    min_p: Option<f32>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    n: Option<u32>,
    seed: Option<i64>,
    stop: Option<floodgate_protocol::StopSequences>,
    logit_bias: Option<&'a std::collections::BTreeMap<String, f32>>,
    logprobs: Option<usize>,
    ignore_eos: Option<bool>,
}

fn common(c: Common<'_>, limits: &LimitsConfig) -> Result<GenParams, GatewayError> {
    range("temperature", c.temperature, 0.0, 2.0)?;
    range("top_p", c.top_p, 0.0, 1.0)?;
    range("min_p", c.min_p, 0.0, 1.0)?;
    range("presence_penalty", c.presence_penalty, -2.0, 2.0)?;
    range("frequency_penalty", c.frequency_penalty, -2.0, 2.0)?;
    if let Some(n) = c.n {
        if n != 1 {
            return Err(invalid(
                "n",
                format!("Invalid 'n': {n}. Only n = 1 is supported."),
            ));
        }
    }
    if c.max_tokens == Some(0) {
        return Err(invalid(
            "max_tokens",
            "Invalid 'max_tokens': it must be at least 1.",
        ));
    }
    let stop: Vec<String> = c.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > limits.max_stop_sequences {
        return Err(invalid(
            "stop",
            format!(
                "Invalid 'stop': at most {} stop sequences are allowed.",
                limits.max_stop_sequences
            ),
        ));
    }
    if stop.iter().any(String::is_empty) {
        return Err(invalid(
            "stop",
            "Invalid 'stop': stop sequences must not be empty.",
        ));
    }
    let mut logit_bias = Vec::new();
    for (k, &v) in c.logit_bias.into_iter().flatten() {
        let Ok(token) = k.parse::<TokenId>() else {
            return Err(invalid(
                "logit_bias",
                format!("Invalid 'logit_bias': key `{k}` is not a token id."),
            ));
        };
        if !(-100.0..=100.0).contains(&v) {
            return Err(invalid(
                "logit_bias",
                format!(
                    "Invalid 'logit_bias': bias {v} for token {k} must be between -100 and 100."
                ),
            ));
        }
        logit_bias.push((token, v));
    }
    Ok(GenParams {
        max_tokens: c.max_tokens,
        sampling: SamplingParams {
            temperature: c.temperature.unwrap_or(1.0),
            top_p: c.top_p.unwrap_or(1.0),
            top_k: c.top_k.unwrap_or(0),
            min_p: c.min_p.unwrap_or(0.0),
            presence_penalty: c.presence_penalty.unwrap_or(0.0),
            frequency_penalty: c.frequency_penalty.unwrap_or(0.0),
            // Any i64 is a valid seed; reinterpret the bits.
            seed: c.seed.map(|s| s as u64),
            logit_bias,
        },
        stop,
        logprobs: c.logprobs,
        ignore_eos: c.ignore_eos.unwrap_or(false),
        priority: Priority::Interactive,
    })
}

fn model_name(model: &str) -> Result<String, GatewayError> {
    if model.trim().is_empty() {
        return Err(invalid("model", "Invalid 'model': it must not be empty."));
    }
    Ok(model.to_string())
}

pub fn chat(
    req: ChatCompletionRequest,
    limits: &LimitsConfig,
) -> Result<ValidRequest, GatewayError> {
    let model = model_name(&req.model)?;
    let messages = chat_messages(&req, limits)?;
    refuse_unsupported(&req)?;
    let logprobs = chat_logprobs(&req, limits)?;
    let mut params = common(
        Common {
            max_tokens: req.max_completion_tokens.or(req.max_tokens),
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: req.top_k,
            min_p: req.min_p,
            presence_penalty: req.presence_penalty,
            frequency_penalty: req.frequency_penalty,
            n: req.n,
            seed: req.seed,
            stop: req.stop.clone(),
            logit_bias: req.logit_bias.as_ref(),
            logprobs,
            ignore_eos: req.ignore_eos,
        },
        limits,
    )
    .map_err(|e| name_max_tokens(e, req.max_completion_tokens.is_some()))?;
    params.priority = priority(req.service_tier.as_deref())?;
    let stream = req.stream.unwrap_or(false);
    Ok(ValidRequest {
        model,
        prompt: PromptInput::Chat(messages),
        params,
        stream,
        include_usage: stream && req.stream_options.as_ref().is_some_and(|o| o.include_usage),
        echo: false,
        user: req.user,
    })
}

/// The messages, with `developer` read as `system` and text parts joined.
fn chat_messages(
    req: &ChatCompletionRequest,
    limits: &LimitsConfig,
) -> Result<Vec<Message>, GatewayError> {
    if req.messages.is_empty() {
        return Err(invalid(
            "messages",
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
        ));
    }
    if req.messages.len() > limits.max_messages {
        return Err(invalid(
            "messages",
            format!(
                "Invalid 'messages': at most {} messages are allowed.",
                limits.max_messages
            ),
        ));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "developer" => "system",
            r @ ("system" | "user" | "assistant" | "tool") => r,
            other => {
                return Err(invalid(
                    &format!("messages[{i}].role"),
                    format!("Invalid value: '{other}'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'."),
                ))
            }
        };
        let content = match &m.content {
            Some(c) => c.text().map_err(|kind| {
                invalid(
                    &format!("messages[{i}].content"),
                    format!("Content parts of type '{kind}' are not supported by this model; only 'text'."),
                )
            })?,
            None if role == "assistant" => String::new(),
            None => {
                return Err(invalid(
                    &format!("messages[{i}].content"),
                    "Invalid 'content': a string or an array of text parts is required.",
                ))
            }
        };
        messages.push(Message {
            role: role.to_string(),
            content,
        });
    }
    Ok(messages)
}

/// Options that parse but that this server does not serve yet.
fn refuse_unsupported(req: &ChatCompletionRequest) -> Result<(), GatewayError> {
    if let Some(tools) = &req.tools {
        if tools.as_array().is_some_and(|a| !a.is_empty()) {
            return Err(invalid(
                "tools",
                "Tool calling is not supported by this server yet.",
            ));
        }
    }
    if let Some(format) = &req.response_format {
        if format.get("type").and_then(|t| t.as_str()) != Some("text") {
            return Err(invalid(
                "response_format",
                "Only response_format {\"type\": \"text\"} is supported.",
            ));
        }
    }
    Ok(())
}

/// `logprobs` + `top_logprobs` → alternatives per token, if log-probabilities are asked.
fn chat_logprobs(
    req: &ChatCompletionRequest,
    limits: &LimitsConfig,
) -> Result<Option<usize>, GatewayError> {
    match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (_, Some(n)) if n > limits.max_top_logprobs => Err(invalid(
            "top_logprobs",
            format!(
                "Invalid 'top_logprobs': at most {}.",
                limits.max_top_logprobs
            ),
        )),
        (false, Some(n)) if n > 0 => Err(invalid(
            "top_logprobs",
            "'top_logprobs' requires 'logprobs' to be true.",
        )),
        (true, n) => Ok(Some(n.unwrap_or(0) as usize)),
        (false, _) => Ok(None),
    }
}

/// An error about `max_tokens` names `max_completion_tokens` when that is what was sent.
fn name_max_tokens(e: GatewayError, sent_max_completion_tokens: bool) -> GatewayError {
    match e {
        GatewayError::InvalidRequest {
            message,
            param,
            code,
        } => GatewayError::InvalidRequest {
            param: param.map(|p| {
                if p == "max_tokens" && sent_max_completion_tokens {
                    "max_completion_tokens".to_string()
                } else {
                    p
                }
            }),
            message,
            code,
        },
        other => other,
    }
}

/// `service_tier: "flex"` asks for the batch class; the others are interactive.
fn priority(service_tier: Option<&str>) -> Result<Priority, GatewayError> {
    match service_tier {
        None | Some("auto" | "default" | "priority" | "scale") => Ok(Priority::Interactive),
        Some("flex") => Ok(Priority::Batch),
        Some(other) => Err(invalid(
            "service_tier",
            format!("Invalid 'service_tier': '{other}'. Supported values are 'auto', 'default', 'flex' and 'priority'."),
        )),
    }
}

pub fn completion(
    req: CompletionRequest,
    limits: &LimitsConfig,
) -> Result<ValidRequest, GatewayError> {
    let model = model_name(&req.model)?;
    let prompt = match req.prompt.clone() {
        Prompt::Text(t) => PromptInput::Text(t),
        Prompt::Texts(mut v) if v.len() == 1 => PromptInput::Text(v.remove(0)),
        Prompt::Tokens(t) => PromptInput::Tokens(
            t.into_iter()
                .map(|x| TokenId::try_from(x).unwrap_or(TokenId::MAX))
                .collect(),
        ),
        Prompt::TokenLists(mut v) if v.len() == 1 => PromptInput::Tokens(
            v.remove(0)
                .into_iter()
                .map(|x| TokenId::try_from(x).unwrap_or(TokenId::MAX))
                .collect(),
        ),
        _ => {
            return Err(invalid(
                "prompt",
                "Batched prompts are not supported; send one prompt per request.",
            ))
        }
    };
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid(
            "suffix",
            "'suffix' is not supported by this model.",
        ));
    }
    if req.best_of.is_some_and(|b| b != 1) {
        return Err(invalid("best_of", "Only best_of = 1 is supported."));
    }
    let logprobs = match req.logprobs {
        Some(n) if n > 5 => {
            return Err(invalid(
                "logprobs",
                "Invalid 'logprobs': it must be between 0 and 5.",
            ))
        }
        Some(n) => Some(n as usize),
        None => None,
    };
    let params = common(
        Common {
            // The legacy endpoint's documented default is 16 tokens.
            max_tokens: Some(req.max_tokens.unwrap_or(16)),
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: req.top_k,
            min_p: req.min_p,
            presence_penalty: req.presence_penalty,
            frequency_penalty: req.frequency_penalty,
            n: req.n,
            seed: req.seed,
            stop: req.stop.clone(),
            logit_bias: req.logit_bias.as_ref(),
            logprobs,
            ignore_eos: req.ignore_eos,
        },
        limits,
    )?;
    let stream = req.stream.unwrap_or(false);
    Ok(ValidRequest {
        model,
        prompt,
        params,
        stream,
        include_usage: stream && req.stream_options.as_ref().is_some_and(|o| o.include_usage),
        echo: req.echo.unwrap_or(false),
        user: req.user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::parse_json;

    fn chat_err(body: &str) -> GatewayError {
        let req: ChatCompletionRequest = parse_json(body.as_bytes()).unwrap();
        chat(req, &LimitsConfig::default()).unwrap_err()
    }

    #[test]
    fn absurd_parameters_are_refused_with_their_name() {
        let m = r#""model":"m","messages":[{"role":"user","content":"hi"}]"#;
        let cases = [
            (format!("{{{m},\"temperature\":3}}"), "temperature"),
            (format!("{{{m},\"top_p\":-0.1}}"), "top_p"),
            (format!("{{{m},\"n\":50}}"), "n"),
            (format!("{{{m},\"max_tokens\":0}}"), "max_tokens"),
            (
                format!("{{{m},\"max_completion_tokens\":0}}"),
                "max_completion_tokens",
            ),
            (
                format!("{{{m},\"presence_penalty\":9}}"),
                "presence_penalty",
            ),
            (
                format!("{{{m},\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}}"),
                "stop",
            ),
            (format!("{{{m},\"top_logprobs\":3}}"), "top_logprobs"),
            (
                format!("{{{m},\"logprobs\":true,\"top_logprobs\":99}}"),
                "top_logprobs",
            ),
            (format!("{{{m},\"logit_bias\":{{\"x\":1}}}}"), "logit_bias"),
            (
                format!("{{{m},\"tools\":[{{\"type\":\"function\"}}]}}"),
                "tools",
            ),
            (r#"{"model":"m","messages":[]}"#.to_string(), "messages"),
            (
                r#"{"model":"","messages":[{"role":"user","content":"x"}]}"#.to_string(),
                "model",
            ),
            (
                r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#.to_string(),
                "messages[0].role",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}]}"#.to_string(),
                "messages[0].content",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#
                    .to_string(),
                "messages[0].content",
            ),
        ];
        for (body, param) in cases {
            let e = chat_err(&body);
            assert_eq!(e.param().as_deref(), Some(param), "{body}: {e}");
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let req: ChatCompletionRequest = parse_json(
            br#"{"model":"m","messages":[{"role":"developer","content":"be nice"},{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"seed":-1}"#,
        )
        .unwrap();
        let v = chat(req, &LimitsConfig::default()).unwrap();
        assert!(v.stream && v.include_usage);
        assert_eq!(v.params.sampling.temperature, 1.0);
        assert_eq!(v.params.sampling.seed, Some(u64::MAX));
        let PromptInput::Chat(msgs) = v.prompt else {
            panic!()
        };
        assert_eq!(msgs[0].role, "system");
    }
}
