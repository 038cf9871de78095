//! HTTP: one configured client, retries with backoff, streaming downloads.
//!
//! Downloads stream straight to a file while hashing, so memory use does not
//! depend on file size. Every attempt rewrites the destination from byte
//! zero; there is no resume, which keeps a retried file trivially consistent
//! with its hash. Only transient failures (connect/timeout/broken body, 5xx,
//! 408, 429) are retried; a 404 or a bad hash fails at once.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{IoContext, ModelError};

/// Timeouts and retry policy for all HTTP traffic of a [`crate::ModelStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Limit for establishing a TCP+TLS connection.
    pub connect_timeout: Duration,
    /// Limit on silence between two reads of a response body. There is no
    /// overall limit, since a 1 GB download on a slow link is legitimate.
    pub read_timeout: Duration,
    /// Extra attempts after the first one fails transiently.
    pub retries: u32,
    /// Wait before the first retry; doubles on each further one.
    pub backoff: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            retries: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// What a finished download produced.
#[derive(Debug, Clone)]
pub(crate) struct Downloaded {
    pub bytes: u64,
    pub sha256: String,
}

pub(crate) struct Fetcher {
    client: reqwest::Client,
    cfg: HttpConfig,
    progress: bool,
}

impl Fetcher {
    pub(crate) fn new(cfg: &HttpConfig, progress: bool) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("floodgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .build()
            .map_err(|e| ModelError::Internal(format!("building HTTP client: {e}")))?;
        Ok(Fetcher {
            client,
            cfg: cfg.clone(),
            progress,
        })
    }

    /// Runs `attempt` until it succeeds, fails permanently, or retries run out.
    async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, ModelError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ModelError>>,
    {
        let mut delay = self.cfg.backoff;
        let mut tries_left = self.cfg.retries;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if tries_left > 0 && is_transient(&e) => {
                    tries_left -= 1;
                    tracing::warn!(
                        "{what}: {e}; retrying in {:.1}s ({tries_left} retries left)",
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// GET `url` with the given `Accept` header; returns the body and the
    /// final URL (after redirects), which relative links must be resolved
    /// against.
    pub(crate) async fn get_bytes(
        &self,
        url: &str,
        accept: &str,
    ) -> Result<(Vec<u8>, reqwest::Url, Option<String>), ModelError> {
        self.with_retries(url, || async {
            let resp = self.send(url, Some(accept)).await?;
            let final_url = resp.url().clone();
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.bytes().await.map_err(|e| http_err(url, e))?;
            Ok((body.to_vec(), final_url, content_type))
        })
        .await
    }

    /// Streams `url` into `dest` (created or truncated), hashing on the way.
    pub(crate) async fn download(
        &self,
        url: &str,
        dest: &Path,
        label: &str,
    ) -> Result<Downloaded, ModelError> {
        self.with_retries(url, || self.download_once(url, dest, label))
            .await
    }

    async fn download_once(
        &self,
        url: &str,
        dest: &Path,
        label: &str,
    ) -> Result<Downloaded, ModelError> {
        let mut resp = self.send(url, None).await?;
        // Read before the body: reqwest reports the *remaining* length.
        let announced = resp.content_length();
        let bar = self.bar(label, announced);
        let file = tokio::fs::File::create(dest).await.ctx("creating", dest)?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let result = async {
            while let Some(chunk) = resp.chunk().await.map_err(|e| http_err(url, e))? {
                hasher.update(&chunk);
                out.write_all(&chunk).await.ctx("writing", dest)?;
                bytes += chunk.len() as u64;
                bar.inc(chunk.len() as u64);
            }
            out.flush().await.ctx("writing", dest)?;
            Ok::<(), ModelError>(())
        }
        .await;
        match result {
            Ok(()) => {
                bar.finish();
                // A body shorter than announced means the connection died in a
                // way hyper did not flag; treat it as a broken (retryable) body.
                if let Some(expected) = announced.filter(|&n| n != bytes) {
                    return Err(ModelError::Truncated {
                        url: url.to_string(),
                        got: bytes,
                        expected,
                    });
                }
                Ok(Downloaded {
                    bytes,
                    sha256: hex(&hasher.finalize()),
                })
            }
            Err(e) => {
                bar.abandon();
                Err(e)
            }
        }
    }

    async fn send(&self, url: &str, accept: Option<&str>) -> Result<reqwest::Response, ModelError> {
        let mut req = self.client.get(url);
        if let Some(accept) = accept {
            req = req.header(reqwest::header::ACCEPT, accept);
        }
        let resp = req.send().await.map_err(|e| http_err(url, e))?;
        if !resp.status().is_success() {
            return Err(ModelError::HttpStatus {
                url: url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        Ok(resp)
    }

    fn bar(&self, label: &str, total: Option<u64>) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{prefix} {spinner} {bytes} {bytes_per_sec}",
            ),
        };
        // The templates are constants, so this only falls back if indicatif
        // changes its syntax.
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar
    }
}

fn http_err(url: &str, source: reqwest::Error) -> ModelError {
    ModelError::Http {
        url: url.to_string(),
        source,
    }
}

fn is_transient(e: &ModelError) -> bool {
    match e {
        // Builder errors (a bad URL) will not fix themselves.
        ModelError::Http { source, .. } => !source.is_builder(),
        ModelError::HttpStatus { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        ModelError::Truncated { .. } => true,
        _ => false,
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_of_empty_sha256() {
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn transient_classification() {
        let status = |s| ModelError::HttpStatus {
            url: "u".into(),
            status: s,
        };
        assert!(is_transient(&status(500)));
        assert!(is_transient(&status(503)));
        assert!(is_transient(&status(429)));
        assert!(!is_transient(&status(404)));
        assert!(!is_transient(&status(403)));
        assert!(!is_transient(&ModelError::HashMismatch {
            what: "x".into(),
            expected: "a".into(),
            actual: "b".into()
        }));
    }
}
