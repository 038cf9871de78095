//! One streamed request and what it measured.
//!
//! Timing: the clock starts just before the request is sent; every event is stamped with the
//! time the decoder hands it over, which is as soon as the network read that completed it
//! returns. TTFT is the time to the first chunk with
//! non-empty text. Servers may pack several tokens into one chunk, so two inter-token figures
//! are kept: the raw gaps between text chunks, and the request's mean inter-token latency
//! `(t_last - t_first) / (completion_tokens - 1)` with the token count from `usage`.

use std::time::{Duration, Instant};

use eventsource_stream::EventStreamError;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::BenchError;
use crate::prompts::Prompt;
use crate::sse::{self, classify, snippet, StreamItem};

/// Which OpenAI endpoint to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completions,
}

/// The server and the request options shared by every request of a run.
#[derive(Debug, Clone)]
pub struct Target {
    client: reqwest::Client,
    endpoint: String,
    api: Api,
    api_key: Option<String>,
    /// The body without the prompt: model, sampling options, streaming options.
    base_body: Map<String, Value>,
}

/// The options that go into every request body.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    pub model: String,
    pub max_tokens: u32,
    pub temperature: f64,
    pub ignore_eos: bool,
}

impl Target {
    pub fn new(
        base_url: &str,
        api: Api,
        api_key: Option<String>,
        options: &RequestOptions,
        timeout: Duration,
    ) -> Result<Self, BenchError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .build()?;
        let mut base_body = Map::new();
        base_body.insert("model".into(), options.model.clone().into());
        base_body.insert("max_tokens".into(), options.max_tokens.into());
        base_body.insert("temperature".into(), options.temperature.into());
        base_body.insert("stream".into(), true.into());
        base_body.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
        if options.ignore_eos {
            base_body.insert("ignore_eos".into(), true.into());
        }
        Ok(Self {
            client,
            endpoint: endpoint(base_url, api),
            api,
            api_key,
            base_body,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The JSON body for one prompt.
    pub fn body(&self, prompt: &Prompt) -> Value {
        let mut body = self.base_body.clone();
        match self.api {
            Api::Chat => {
                body.insert("messages".into(), Value::Array(prompt.messages.clone()));
            }
            Api::Completions => {
                body.insert("prompt".into(), prompt.as_text().into());
            }
        }
        Value::Object(body)
    }

    /// Sends one streamed request and reads it to the end. Never fails: a failure is a
    /// `Sample` with `error` set.
    ///
    /// A request that got no response at all (typically a pooled keep-alive connection that
    /// the server closed just as it was reused: llama.cpp's server does this) is sent once
    /// more, on a fresh clock; `retried` records it.
    pub async fn send(&self, prompt: &Prompt) -> Sample {
        let mut retried = false;
        loop {
            let mut m = Measure::new(Instant::now());
            m.retried = retried;
            match self.stream(prompt, &mut m).await {
                Ok(()) => return m.finish(),
                Err(Failure::NoResponse(_)) if !retried => retried = true,
                Err(Failure::NoResponse(e) | Failure::Other(e)) => {
                    m.error = Some(e);
                    return m.finish();
                }
            }
        }
    }

    async fn stream(&self, prompt: &Prompt, m: &mut Measure) -> Result<(), Failure> {
        let mut req = self.client.post(&self.endpoint).json(&self.body(prompt));
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                Failure::Other(describe(&e))
            } else {
                Failure::NoResponse(describe(&e))
            }
        })?;
        Ok(self.read(resp, m).await?)
    }

    async fn read(&self, resp: reqwest::Response, m: &mut Measure) -> Result<(), String> {
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_string))
                .unwrap_or_else(|| snippet(text.trim()));
            return Err(format!("HTTP {}: {message}", status.as_u16()));
        }
        let mut events = std::pin::pin!(sse::events(resp.bytes_stream()));
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| match e {
                EventStreamError::Transport(e) => describe(&e),
                other => format!("unreadable event stream: {other}"),
            })?;
            if m.on_item(classify(&event), Instant::now())? {
                return Ok(());
            }
        }
        if m.finished {
            Ok(()) // a finish_reason arrived; only the `[DONE]` line is missing
        } else {
            Err("stream ended before [DONE]".into())
        }
    }
}

enum Failure {
    /// No response status arrived.
    NoResponse(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Self::Other(e)
    }
}

/// `base` may be the server root or end in `/v1`.
fn endpoint(base: &str, api: Api) -> String {
    let base = base.trim_end_matches('/');
    let path = match api {
        Api::Chat => "chat/completions",
        Api::Completions => "completions",
    };
    if base.ends_with("/v1") {
        format!("{base}/{path}")
    } else {
        format!("{base}/v1/{path}")
    }
}

/// reqwest's `Display` hides the cause ("error sending request"); show the chain.
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        out.push_str(" (timed out)");
    }
    out
}

/// What one request measured. Times are in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Why the request failed; `None` if it succeeded.
    pub error: Option<String>,
    /// Send to first non-empty text chunk.
    pub ttft_s: Option<f64>,
    /// Send to end of stream.
    pub e2e_s: f64,
    /// From `usage` when the server sent it, otherwise the number of text chunks.
    pub completion_tokens: u64,
    pub tokens_from_usage: bool,
    pub text_chunks: u64,
    /// Sent a second time because the first attempt got no response.
    pub retried: bool,
    /// `(t_last - t_first) / (completion_tokens - 1)`; `None` below two tokens.
    pub itl_s: Option<f64>,
    /// Gaps between successive text chunks.
    #[serde(skip)]
    pub chunk_gaps_s: Vec<f64>,
}

struct Measure {
    start: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    gaps: Vec<f64>,
    chunks: u64,
    usage_tokens: Option<u64>,
    finished: bool,
    retried: bool,
    error: Option<String>,
}

impl Measure {
    fn new(start: Instant) -> Self {
        Self {
            start,
            first: None,
            last: None,
            gaps: Vec::new(),
            chunks: 0,
            usage_tokens: None,
            finished: false,
            retried: false,
            error: None,
        }
    }

    /// Returns `Ok(true)` at `[DONE]`, an error for an error event.
    fn on_item(&mut self, item: StreamItem, now: Instant) -> Result<bool, String> {
        match item {
            StreamItem::Done => Ok(true),
            StreamItem::Error(e) => Err(e),
            StreamItem::Chunk {
                text,
                completion_tokens,
                finished,
            } => {
                if !text.is_empty() {
                    if let Some(last) = self.last {
                        self.gaps.push(now.duration_since(last).as_secs_f64());
                    }
                    self.first.get_or_insert(now);
                    self.last = Some(now);
                    self.chunks += 1;
                }
                if completion_tokens.is_some() {
                    self.usage_tokens = completion_tokens;
                }
                self.finished |= finished;
                Ok(false)
            }
        }
    }

    fn finish(self) -> Sample {
        let tokens = self.usage_tokens.unwrap_or(self.chunks);
        let itl_s = match (self.first, self.last) {
            (Some(first), Some(last)) if tokens > 1 => {
                Some(last.duration_since(first).as_secs_f64() / (tokens - 1) as f64)
            }
            _ => None,
        };
        Sample {
            error: self.error,
            ttft_s: self
                .first
                .map(|t| t.duration_since(self.start).as_secs_f64()),
            e2e_s: self.start.elapsed().as_secs_f64(),
            completion_tokens: tokens,
            tokens_from_usage: self.usage_tokens.is_some(),
            text_chunks: self.chunks,
            retried: self.retried,
            itl_s,
            chunk_gaps_s: self.gaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let cases = [
            ("http://h:1", Api::Chat, "http://h:1/v1/chat/completions"),
            ("http://h:1/", Api::Chat, "http://h:1/v1/chat/completions"),
            (
                "http://h:1/v1",
                Api::Completions,
                "http://h:1/v1/completions",
            ),
            (
                "http://h:1/v1/",
                Api::Chat,
                "http://h:1/v1/chat/completions",
            ),
            (
                "https://h/api/v1",
                Api::Chat,
                "https://h/api/v1/chat/completions",
            ),
        ];
        for (base, api, want) in cases {
            assert_eq!(endpoint(base, api), want);
        }
    }

    #[test]
    fn bodies() {
        let opts = RequestOptions {
            model: "m".into(),
            max_tokens: 16,
            temperature: 0.0,
            ignore_eos: true,
        };
        let t = Target::new("http://h", Api::Chat, None, &opts, Duration::from_secs(1)).unwrap();
        let b = t.body(&Prompt::user("hi"));
        assert_eq!(b["model"], "m");
        assert_eq!(b["max_tokens"], 16);
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["ignore_eos"], true);
        assert_eq!(b["messages"][0]["content"], "hi");
        let opts = RequestOptions {
            ignore_eos: false,
            ..opts
        };
        let t = Target::new(
            "http://h",
            Api::Completions,
            None,
            &opts,
            Duration::from_secs(1),
        )
        .unwrap();
        let b = t.body(&Prompt::user("hi"));
        assert_eq!(b["prompt"], "hi");
        assert!(b.get("ignore_eos").is_none());
        assert!(b.get("messages").is_none());
    }

    #[test]
    fn measure_counts_tokens_from_usage_and_falls_back_to_chunks() {
        let start = Instant::now();
        let t = |ms| start + Duration::from_millis(ms);
        let chunk = |text: &str, tokens| StreamItem::Chunk {
            text: text.into(),
            completion_tokens: tokens,
            finished: false,
        };
        let mut m = Measure::new(start);
        assert_eq!(m.on_item(chunk("", None), t(5)), Ok(false)); // role chunk
        m.on_item(chunk("ab", None), t(100)).unwrap();
        m.on_item(chunk("cd", None), t(150)).unwrap();
        m.on_item(chunk("ef", None), t(200)).unwrap();
        m.on_item(chunk("", Some(6)), t(210)).unwrap();
        assert_eq!(m.on_item(StreamItem::Done, t(211)), Ok(true));
        let s = m.finish();
        assert_eq!(s.completion_tokens, 6);
        assert!(s.tokens_from_usage);
        assert_eq!(s.text_chunks, 3);
        assert!((s.ttft_s.unwrap() - 0.1).abs() < 1e-9);
        assert!((s.itl_s.unwrap() - 0.1 / 5.0).abs() < 1e-9);
        assert_eq!(s.chunk_gaps_s.len(), 2);
        assert!((s.chunk_gaps_s[0] - 0.05).abs() < 1e-9);

        let mut m = Measure::new(start);
        m.on_item(chunk("a", None), t(10)).unwrap();
        m.on_item(chunk("b", None), t(20)).unwrap();
        assert_eq!(
            m.on_item(StreamItem::Error("boom".into()), t(30)),
            Err("boom".into())
        );
        let s = m.finish();
        assert_eq!(s.completion_tokens, 2);
        assert!(!s.tokens_from_usage);
    }
}
