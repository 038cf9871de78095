//! The evaluation's side of the wire: chat requests to a Floodgate (or any
//! OpenAI-compatible) server, greedy and bounded, retried on 429 and 5xx.
//!
//! Evaluating "a model, a version, a variant or a route" is asking the server for that
//! name (`MODEL`, `MODEL@VERSION`, `MODEL@VERSION:VARIANT`, a route): the server
//! resolves it exactly as it would for a client, so what is measured is what is served.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

/// One model the server lists at `/v1/models`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListedModel {
    pub id: String,
    #[serde(default)]
    pub owned_by: String,
    /// Floodgate's extension: `model`, `version`, `variant` or `route`.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub card: Option<ListedCard>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ListedCard {
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ListedModel>,
}

/// A chat answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub finish_reason: String,
    /// What served it: `x-floodgate-model`, else the body's `model`.
    pub served_by: String,
    pub completion_tokens: u64,
    pub latency_seconds: f64,
}

/// How requests are sent.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server's base URL (`http://host:port`, with or without `/v1`).
    pub server: String,
    pub key: Option<String>,
    pub timeout: Duration,
    /// Further attempts after a 429, a 5xx or a connection failure.
    pub retries: u32,
}

pub struct ServerClient {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    retries: u32,
}

impl ServerClient {
    pub fn new(opts: &ClientOptions) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            base: base_url(&opts.server),
            key: opts.key.clone().filter(|k| !k.is_empty()),
            retries: opts.retries,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// What the server can serve now (`GET /v1/models`).
    pub async fn models(&self) -> Result<Vec<ListedModel>, String> {
        let url = format!("{}/v1/models", self.base);
        let response = self.send(|| self.http.get(&url)).await?;
        let list: ModelList = response.json().await.map_err(|e| format!("{url}: {e}"))?;
        Ok(list.data)
    }

    /// One greedy chat request (`temperature: 0`) for `model`.
    pub async fn chat(
        &self,
        model: &str,
        system: &str,
        user: &str,
        max_tokens: u32,
    ) -> Result<Reply, String> {
        let mut messages = Vec::new();
        if !system.is_empty() {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": user}));
        let body = json!({
            "model": model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        });
        let url = format!("{}/v1/chat/completions", self.base);
        let started = Instant::now();
        let response = self.send(|| self.http.post(&url).json(&body)).await?;
        let header_model = response
            .headers()
            .get("x-floodgate-model")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let v: serde_json::Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
        let choice = &v["choices"][0];
        Ok(Reply {
            text: choice["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            finish_reason: choice["finish_reason"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            served_by: header_model
                .or_else(|| v["model"].as_str().map(str::to_string))
                .unwrap_or_default(),
            completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
            latency_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Sends the request `build` makes, again after a 429, a 5xx or a failure to
    /// connect (waiting `Retry-After`, else 0.5 s doubling, at most 30 s); any other
    /// error status is an error with the server's message.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        let mut attempt = 0u32;
        loop {
            let result = self.authorized(build()).send().await;
            let retry_after = match result {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok());
                    let url = response.url().to_string();
                    let text = response.text().await.unwrap_or_default();
                    let why = format!("{url}: HTTP {status}: {}", error_message(&text));
                    if !retryable || attempt >= self.retries {
                        return Err(why);
                    }
                    wait
                }
                Err(e) => {
                    let retryable = e.is_connect() || e.is_timeout() || e.is_request();
                    if !retryable || attempt >= self.retries {
                        return Err(e.to_string());
                    }
                    None
                }
            };
            let backoff = 0.5 * f64::from(2u32.saturating_pow(attempt));
            let wait = retry_after.unwrap_or(backoff).clamp(0.0, 30.0);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            attempt += 1;
        }
    }
}

/// `http://host:8080/v1/` → `http://host:8080`.
fn base_url(server: &str) -> String {
    let trimmed = server.trim().trim_end_matches('/');
    trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_string()
}

/// The OpenAI error body's message, else the body itself (shortened).
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_lose_their_v1() {
        assert_eq!(base_url("http://h:1/v1/"), "http://h:1");
        assert_eq!(base_url("http://h:1/"), "http://h:1");
        assert_eq!(base_url(" http://h:1 "), "http://h:1");
    }

    /// A server on a random port that answers each connection with the next of
    /// `responses` (status line, extra headers, body); returns its URL and a request count.
    async fn fake_server(
        responses: Vec<(&'static str, &'static str, &'static str)>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&count);
        tokio::spawn(async move {
            for (status, headers, body) in responses {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await.unwrap();
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        (url, count)
    }

    fn client(url: &str, retries: u32) -> ServerClient {
        ServerClient::new(&ClientOptions {
            server: url.into(),
            key: Some("fg-test".into()),
            timeout: Duration::from_secs(5),
            retries,
        })
        .unwrap()
    }

    const ANSWER: &str = r#"{"model": "m@1:q4", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris."}}], "usage": {"completion_tokens": 2}}"#;
    const BUSY: &str = r#"{"error": {"message": "queue full"}}"#;

    #[tokio::test]
    async fn busy_servers_are_retried_and_answers_read() {
        let (url, count) = fake_server(vec![
            ("503 Service Unavailable", "retry-after: 0\r\n", BUSY),
            ("429 Too Many Requests", "retry-after: 0\r\n", BUSY),
            ("200 OK", "x-floodgate-model: m@1:q4\r\n", ANSWER),
        ])
        .await;
        let reply = client(&url, 3).chat("m", "sys", "q?", 8).await.unwrap();
        assert_eq!(reply.text, "Paris.");
        assert_eq!(reply.finish_reason, "stop");
        assert_eq!(reply.served_by, "m@1:q4");
        assert_eq!(reply.completion_tokens, 2);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn client_errors_and_spent_retries_fail_with_the_message() {
        let (url, count) = fake_server(vec![(
            "404 Not Found",
            "",
            r#"{"error": {"message": "model `x` not found"}}"#,
        )])
        .await;
        let e = client(&url, 3).chat("x", "", "q?", 8).await.unwrap_err();
        assert!(
            e.contains("404") && e.contains("model `x` not found"),
            "{e}"
        );
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
        let (url, count) = fake_server(vec![
            ("503 Service Unavailable", "retry-after: 0\r\n", BUSY),
            ("503 Service Unavailable", "retry-after: 0\r\n", BUSY),
        ])
        .await;
        let e = client(&url, 1).chat("m", "", "q?", 8).await.unwrap_err();
        assert!(e.contains("503") && e.contains("queue full"), "{e}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn error_messages_come_from_the_openai_body() {
        assert_eq!(
            error_message(r#"{"error": {"message": "model `x` not found"}}"#),
            "model `x` not found"
        );
        assert_eq!(error_message("bad gateway"), "bad gateway");
    }
}
