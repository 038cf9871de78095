//! OpenAI response shaping: a pipeline answer as one `chat.completion` /
//! `text_completion` JSON body, or as SSE chunks (a role chunk for chat, content
//! chunks, a finish chunk, an optional usage chunk, `[DONE]`; an error event ends a
//! stream that failed or was cut). Formatting only: no decisions are taken here.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use floodgate_protocol as p;
use futures::Stream;
use serde_json::Value;

use crate::inference::TokenLogprob;
use crate::pipeline::{AnswerStream, Api, Piece, WholeAnswer};

/// What every chunk of one response repeats.
pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub api: Api,
    pub include_usage: bool,
    pub top_logprobs: Option<usize>,
}

impl Meta {
    pub fn new(api: Api, model: &str, include_usage: bool, top_logprobs: Option<usize>) -> Self {
        let prefix = match api {
            Api::Chat => "chatcmpl",
            Api::Text => "cmpl",
        };
        Self {
            id: format!("{prefix}-{}", uuid::Uuid::new_v4().simple()),
            created: u64::try_from(crate::clock::unix_secs()).unwrap_or(0),
            model: model.to_string(),
            api,
            include_usage,
            top_logprobs,
        }
    }
}

fn chat_logprob(lp: &TokenLogprob) -> p::TokenLogprob {
    p::TokenLogprob {
        token: lp.token.clone(),
        logprob: lp.logprob,
        bytes: lp.bytes.clone(),
        top_logprobs: lp
            .top
            .iter()
            .map(|t| p::TopLogprob {
                token: t.token.clone(),
                logprob: t.logprob,
                bytes: t.bytes.clone(),
            })
            .collect(),
    }
}

/// Appends log-probabilities in the legacy completions shape; `offset` is the text
/// offset of the next token.
fn push_text_logprobs(out: &mut p::CompletionLogprobs, lps: &[TokenLogprob], offset: &mut u32) {
    for lp in lps {
        out.tokens.push(lp.token.clone());
        out.token_logprobs.push(lp.logprob);
        out.top_logprobs.push(
            lp.top
                .iter()
                .map(|t| (t.token.clone(), t.logprob))
                .collect(),
        );
        out.text_offset.push(*offset);
        *offset += lp.token.len() as u32;
    }
}

/// A whole answer as the endpoint's JSON body.
pub fn whole(meta: &Meta, answer: WholeAnswer) -> Value {
    let body = match meta.api {
        Api::Chat => serde_json::to_value(p::ChatCompletion {
            id: meta.id.clone(),
            object: "chat.completion".into(),
            created: meta.created,
            model: meta.model.clone(),
            choices: vec![p::ChatChoice {
                index: 0,
                message: p::AssistantMessage {
                    role: "assistant".into(),
                    content: Some(answer.text),
                    refusal: None,
                },
                finish_reason: answer.reason,
                logprobs: meta.top_logprobs.map(|_| p::ChoiceLogprobs {
                    content: answer.logprobs.iter().map(chat_logprob).collect(),
                    refusal: None,
                }),
            }],
            usage: answer.usage,
            system_fingerprint: None,
        }),
        Api::Text => {
            let logprobs = meta.top_logprobs.map(|_| {
                let mut out = p::CompletionLogprobs::default();
                push_text_logprobs(&mut out, &answer.logprobs, &mut 0);
                out
            });
            serde_json::to_value(p::Completion {
                id: meta.id.clone(),
                object: "text_completion".into(),
                created: meta.created,
                model: meta.model.clone(),
                choices: vec![p::CompletionChoice {
                    index: 0,
                    text: answer.text,
                    finish_reason: Some(answer.reason),
                    logprobs,
                }],
                usage: Some(answer.usage),
                system_fingerprint: None,
            })
        }
    };
    // The protocol types always serialize; an empty object is never sent in practice.
    body.unwrap_or_else(|_| Value::Object(Default::default()))
}

fn json_event<T: serde::Serialize>(value: &T) -> SseEvent {
    SseEvent::default()
        .json_data(value)
        .unwrap_or_else(|_| SseEvent::default().data("{}"))
}

/// Shapes a streamed answer's pieces as SSE chunks.
struct Chunker {
    meta: Meta,
    /// Text offset of the next token in the legacy completions shape.
    text_offset: u32,
}

impl Chunker {
    fn chat_chunk(
        &self,
        delta: p::ChunkDelta,
        finish: Option<p::FinishReason>,
        logprobs: Option<Vec<p::TokenLogprob>>,
    ) -> SseEvent {
        json_event(&p::ChatCompletionChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.meta.created,
            model: self.meta.model.clone(),
            choices: vec![p::ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: logprobs.map(|content| p::ChoiceLogprobs {
                    content,
                    refusal: None,
                }),
            }],
            usage: self.meta.include_usage.then_some(None),
            system_fingerprint: None,
        })
    }

    fn text_chunk(
        &mut self,
        text: String,
        finish: Option<p::FinishReason>,
        lps: &[TokenLogprob],
    ) -> SseEvent {
        let logprobs = self.meta.top_logprobs.map(|_| {
            let mut out = p::CompletionLogprobs::default();
            push_text_logprobs(&mut out, lps, &mut self.text_offset);
            out
        });
        json_event(&p::Completion {
            id: self.meta.id.clone(),
            object: "text_completion".into(),
            created: self.meta.created,
            model: self.meta.model.clone(),
            choices: vec![p::CompletionChoice {
                index: 0,
                text,
                finish_reason: finish,
                logprobs,
            }],
            usage: None,
            system_fingerprint: None,
        })
    }

    fn role_chunk(&self) -> SseEvent {
        self.chat_chunk(
            p::ChunkDelta {
                role: Some("assistant".into()),
                content: Some(String::new()),
            },
            None,
            None,
        )
    }

    fn usage_chunk(&self, usage: p::Usage) -> SseEvent {
        match self.meta.api {
            Api::Chat => json_event(&p::ChatCompletionChunk {
                id: self.meta.id.clone(),
                object: "chat.completion.chunk".into(),
                created: self.meta.created,
                model: self.meta.model.clone(),
                choices: vec![],
                usage: Some(Some(usage)),
                system_fingerprint: None,
            }),
            Api::Text => json_event(&p::Completion {
                id: self.meta.id.clone(),
                object: "text_completion".into(),
                created: self.meta.created,
                model: self.meta.model.clone(),
                choices: vec![],
                usage: Some(usage),
                system_fingerprint: None,
            }),
        }
    }

    /// The SSE events for one piece, in order.
    fn events(&mut self, piece: Piece) -> Vec<SseEvent> {
        match piece {
            Piece::Text { text, logprobs } => vec![match self.meta.api {
                Api::Chat => {
                    let lps = self
                        .meta
                        .top_logprobs
                        .map(|_| logprobs.iter().map(chat_logprob).collect());
                    self.chat_chunk(
                        p::ChunkDelta {
                            role: None,
                            content: Some(text),
                        },
                        None,
                        lps,
                    )
                }
                Api::Text => self.text_chunk(text, None, &logprobs),
            }],
            Piece::Finish { reason, usage } => {
                let mut out = vec![match self.meta.api {
                    Api::Chat => self.chat_chunk(p::ChunkDelta::default(), Some(reason), None),
                    Api::Text => self.text_chunk(String::new(), Some(reason), &[]),
                }];
                if self.meta.include_usage {
                    out.push(self.usage_chunk(usage));
                }
                out.push(SseEvent::default().data("[DONE]"));
                out
            }
            Piece::Error(body) => vec![json_event(&body)],
        }
    }
}

/// A streamed answer as SSE. Dropping the body (the client left) drops the answer
/// stream, which cancels the generation and settles what it used.
pub fn stream(
    meta: Meta,
    answer: AnswerStream,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let chunker = Chunker {
        meta,
        text_offset: 0,
    };
    let mut pending = std::collections::VecDeque::new();
    if chunker.meta.api == Api::Chat {
        pending.push_back(chunker.role_chunk());
    }
    let stream = futures::stream::unfold(
        (chunker, answer, pending),
        |(mut chunker, mut answer, mut pending)| async move {
            loop {
                if let Some(ev) = pending.pop_front() {
                    return Some((Ok(ev), (chunker, answer, pending)));
                }
                let piece = answer.next().await?;
                pending.extend(chunker.events(piece));
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
