//! Server-sent events, as OpenAI-compatible servers send them.
//!
//! Two layers: [`SseDecoder`] turns arbitrary byte chunks into complete events (the network
//! may split a line, or a UTF-8 character, anywhere), and [`classify`] reads one event as a
//! streamed completion chunk. Invariant: the decoder's output does not depend on where the
//! byte stream was split, which the tests check by feeding every case at every split point.

use serde_json::Value;

/// One dispatched event: the `data:` lines joined by `\n`, and the `event:` type if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental SSE decoder (the WHATWG event-stream rules that matter here: `\n`, `\r\n` and
/// `\r` line ends, `:` comments, `data`/`event` fields, a blank line dispatches).
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    data: Option<String>,
    event: Option<String>,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            match self.buf[i] {
                b'\n' => {
                    let line = self.buf[start..i].to_vec();
                    self.line(&line, &mut out);
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    // A `\r` at the end of the buffer may be the first half of `\r\n`.
                    if i + 1 == self.buf.len() {
                        break;
                    }
                    let line = self.buf[start..i].to_vec();
                    self.line(&line, &mut out);
                    i += if self.buf[i + 1] == b'\n' { 2 } else { 1 };
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buf.drain(..start);
        out
    }

    /// Ends the stream: a last line without its line end, and an event without its blank
    /// line, are still delivered (servers that close right after the last `data:` line).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.strip_suffix(b"\r").unwrap_or(&rest);
        if !rest.is_empty() {
            self.line(rest, &mut out);
        }
        self.dispatch(&mut out);
        out
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment, e.g. a keep-alive
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {} // id, retry and unknown fields do not matter to a benchmark
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

/// What one event means for a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// `data: [DONE]`.
    Done,
    /// A completion chunk. `text` is the generated text it carries (chat `delta.content` or
    /// `delta.reasoning_content`, or completions `text`), possibly empty (the role chunk, the
    /// usage chunk).
    Chunk {
        text: String,
        completion_tokens: Option<u64>,
        finished: bool,
    },
    /// An error event: `{"error": ...}` in the data, an `event: error`, or data that is not
    /// JSON at all.
    Error(String),
}

/// Reads one event as a streamed chat or text completion chunk.
pub fn classify(event: &SseEvent) -> StreamItem {
    let data = event.data.trim();
    if data == "[DONE]" {
        return StreamItem::Done;
    }
    let value: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(_) => return StreamItem::Error(format!("invalid JSON in stream: {}", snippet(data))),
    };
    if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| snippet(&err.to_string()));
        return StreamItem::Error(message);
    }
    if event.event.as_deref() == Some("error") {
        return StreamItem::Error(snippet(data));
    }
    let mut text = String::new();
    let mut finished = false;
    if let Some(choices) = value.get("choices").and_then(Value::as_array) {
        for choice in choices {
            for piece in [
                choice.pointer("/delta/content"),
                choice.pointer("/delta/reasoning_content"),
                choice.get("text"),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(s) = piece.as_str() {
                    text.push_str(s);
                }
            }
            if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                finished = true;
            }
        }
    }
    let completion_tokens = value
        .pointer("/usage/completion_tokens")
        .and_then(Value::as_u64);
    StreamItem::Chunk {
        text,
        completion_tokens,
        finished,
    }
}

/// The first 200 characters of a message, for error reports.
pub fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(200).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_string(),
        }
    }

    fn decode_all(input: &[u8], split: &[usize]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &s in split {
            out.extend(d.feed(&input[last..s]));
            last = s;
        }
        out.extend(d.feed(&input[last..]));
        out.extend(d.finish());
        out
    }

    #[test]
    fn decoder_cases_at_every_split_point() {
        let cases: &[(&str, &str, Vec<SseEvent>)] = &[
            ("one event", "data: {\"a\":1}\n\n", vec![ev("{\"a\":1}")]),
            (
                "two events and done",
                "data: a\n\ndata: b\n\ndata: [DONE]\n\n",
                vec![ev("a"), ev("b"), ev("[DONE]")],
            ),
            (
                "crlf line ends",
                "data: a\r\n\r\ndata: b\r\n\r\n",
                vec![ev("a"), ev("b")],
            ),
            (
                "bare cr line ends",
                "data: a\r\rdata: b\r\r",
                vec![ev("a"), ev("b")],
            ),
            (
                "keep-alive comments are skipped",
                ": ping\n\ndata: a\n\n: keep-alive\n\n",
                vec![ev("a")],
            ),
            ("no space after colon", "data:a\n\n", vec![ev("a")]),
            (
                "only one leading space stripped",
                "data:  a\n\n",
                vec![ev(" a")],
            ),
            (
                "multi-line data is joined",
                "data: a\ndata: b\n\n",
                vec![ev("a\nb")],
            ),
            (
                "event type is kept",
                "event: error\ndata: {\"x\":1}\n\n",
                vec![SseEvent {
                    event: Some("error".into()),
                    data: "{\"x\":1}".into(),
                }],
            ),
            (
                "id and retry are ignored",
                "id: 7\nretry: 10\ndata: a\n\n",
                vec![ev("a")],
            ),
            (
                "event with no data is not dispatched",
                "event: ping\n\n",
                vec![],
            ),
            (
                "last event without blank line",
                "data: a\n\ndata: b",
                vec![ev("a"), ev("b")],
            ),
            (
                "multibyte UTF-8 survives any split",
                "data: {\"t\":\"héllo ✓ 🦀\"}\n\n",
                vec![ev("{\"t\":\"héllo ✓ 🦀\"}")],
            ),
        ];
        for (name, input, want) in cases {
            let bytes = input.as_bytes();
            assert_eq!(&decode_all(bytes, &[]), want, "{name}: whole");
            for cut in 0..=bytes.len() {
                assert_eq!(&decode_all(bytes, &[cut]), want, "{name}: split at {cut}");
            }
            // One byte at a time.
            let every: Vec<usize> = (1..bytes.len()).collect();
            assert_eq!(&decode_all(bytes, &every), want, "{name}: bytewise");
        }
    }

    #[test]
    fn events_are_delivered_as_soon_as_complete() {
        let mut d = SseDecoder::new();
        assert!(d.feed(b"data: a\n").is_empty());
        assert_eq!(d.feed(b"\ndata: b"), vec![ev("a")]);
        assert_eq!(d.feed(b"\n\n"), vec![ev("b")]);
    }

    #[test]
    fn classify_cases() {
        let chunk = |text: &str, tokens: Option<u64>, finished: bool| StreamItem::Chunk {
            text: text.to_string(),
            completion_tokens: tokens,
            finished,
        };
        let cases: Vec<(&str, SseEvent, StreamItem)> = vec![
            ("done", ev("[DONE]"), StreamItem::Done),
            ("done with spaces", ev(" [DONE] "), StreamItem::Done),
            (
                "chat content",
                ev(r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#),
                chunk("Hi", None, false),
            ),
            (
                "chat role chunk has no text",
                ev(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#),
                chunk("", None, false),
            ),
            (
                "chat null content",
                ev(r#"{"choices":[{"index":0,"delta":{"content":null}}]}"#),
                chunk("", None, false),
            ),
            (
                "reasoning content counts",
                ev(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#),
                chunk("hmm", None, false),
            ),
            (
                "completion text",
                ev(r#"{"choices":[{"index":0,"text":" world","finish_reason":null}]}"#),
                chunk(" world", None, false),
            ),
            (
                "finish reason",
                ev(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#),
                chunk("", None, true),
            ),
            (
                "usage chunk",
                ev(
                    r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":64,"total_tokens":69}}"#,
                ),
                chunk("", Some(64), false),
            ),
            (
                "null usage",
                ev(r#"{"choices":[{"delta":{"content":"a"}}],"usage":null}"#),
                chunk("a", None, false),
            ),
            (
                "openai error object",
                ev(r#"{"error":{"message":"model is loading","type":"server_error"}}"#),
                StreamItem::Error("model is loading".into()),
            ),
            (
                "error without message",
                ev(r#"{"error":"boom"}"#),
                StreamItem::Error("\"boom\"".into()),
            ),
            (
                "event: error",
                SseEvent {
                    event: Some("error".into()),
                    data: r#"{"detail":"x"}"#.into(),
                },
                StreamItem::Error(r#"{"detail":"x"}"#.into()),
            ),
            (
                "not json",
                ev("oops"),
                StreamItem::Error("invalid JSON in stream: oops".into()),
            ),
        ];
        for (name, event, want) in cases {
            assert_eq!(classify(&event), want, "{name}");
        }
    }
}
