//! Server-sent events, as OpenAI-compatible servers send them.
//!
//! Two layers: [`events`] turns a byte stream (split anywhere by the network, even inside a
//! line or a UTF-8 character) into complete events with the `eventsource-stream` crate, the
//! same parser the gateway reads upstream servers with, and [`classify`] reads one event as a
//! streamed completion chunk. Invariant: the events do not depend on where the byte stream
//! was split, which the tests check by feeding every case at every split point.

use eventsource_stream::{Event, EventStream, Eventsource};
use futures::stream::{self, Stream, StreamExt};
use serde_json::Value;

/// Decodes an event stream. One thing is added to the WHATWG rules that `eventsource-stream`
/// follows: an event that the server did not end with a blank line before closing (servers
/// that close right after the last `data:` line) is still delivered, by ending the byte
/// stream with a blank line of our own (which dispatches nothing after a complete event).
pub fn events<S, B, E>(body: S) -> EventStream<impl Stream<Item = Result<B, E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]> + From<&'static [u8]>,
{
    let blank_line: &'static [u8] = b"\n\n";
    body.chain(stream::iter([Ok(B::from(blank_line))]))
        .eventsource()
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
pub fn classify(event: &Event) -> StreamItem {
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
    if event.event == "error" {
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
    use futures::channel::mpsc;
    use futures::FutureExt;
    use std::convert::Infallible;

    fn ev(data: &str) -> Event {
        typed("message", data)
    }

    fn typed(event: &str, data: &str) -> Event {
        Event {
            event: event.to_string(),
            data: data.to_string(),
            ..Event::default()
        }
    }

    /// The (type, data) of every event decoded from `input` cut at the `split` offsets.
    fn decode_all(input: &[u8], split: &[usize]) -> Vec<(String, String)> {
        let mut chunks = Vec::new();
        let mut last = 0;
        for &s in split {
            chunks.push(Ok::<_, Infallible>(input[last..s].to_vec()));
            last = s;
        }
        chunks.push(Ok(input[last..].to_vec()));
        futures::executor::block_on(events(stream::iter(chunks)).collect::<Vec<_>>())
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                (e.event, e.data)
            })
            .collect()
    }

    #[test]
    fn decoder_cases_at_every_split_point() {
        let pair = |e: Event| (e.event, e.data);
        let cases: &[(&str, &str, Vec<Event>)] = &[
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
                vec![typed("error", "{\"x\":1}")],
            ),
            (
                "id and retry do not change the data",
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
                "last event without its final line end",
                "data: a\n\ndata: b\r",
                vec![ev("a"), ev("b")],
            ),
            (
                "multibyte UTF-8 survives any split",
                "data: {\"t\":\"héllo ✓ 🦀\"}\n\n",
                vec![ev("{\"t\":\"héllo ✓ 🦀\"}")],
            ),
        ];
        for (name, input, want) in cases {
            let want: Vec<_> = want.iter().cloned().map(pair).collect();
            let bytes = input.as_bytes();
            assert_eq!(decode_all(bytes, &[]), want, "{name}: whole");
            for cut in 0..=bytes.len() {
                assert_eq!(decode_all(bytes, &[cut]), want, "{name}: split at {cut}");
            }
            // One byte at a time.
            let every: Vec<usize> = (1..bytes.len()).collect();
            assert_eq!(decode_all(bytes, &every), want, "{name}: bytewise");
        }
    }

    #[test]
    fn events_are_delivered_as_soon_as_complete() {
        let (tx, rx) = mpsc::unbounded::<Result<Vec<u8>, Infallible>>();
        let mut decoded = events(rx);
        let mut next = || {
            decoded
                .next()
                .now_or_never()
                .map(|e| e.map(|e| e.unwrap().data))
        };
        tx.unbounded_send(Ok(b"data: a\n".to_vec())).unwrap();
        assert_eq!(next(), None, "pending until the blank line");
        tx.unbounded_send(Ok(b"\ndata: b".to_vec())).unwrap();
        assert_eq!(next(), Some(Some("a".to_string())));
        assert_eq!(next(), None);
        tx.unbounded_send(Ok(b"\n\n".to_vec())).unwrap();
        assert_eq!(next(), Some(Some("b".to_string())));
        drop(tx);
        assert_eq!(next(), Some(None), "the stream ends with its body");
    }

    #[test]
    fn classify_cases() {
        let chunk = |text: &str, tokens: Option<u64>, finished: bool| StreamItem::Chunk {
            text: text.to_string(),
            completion_tokens: tokens,
            finished,
        };
        let cases: Vec<(&str, Event, StreamItem)> = vec![
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
                typed("error", r#"{"detail":"x"}"#),
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
