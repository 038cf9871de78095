//! `BenchError`: everything that stops a benchmark run, with the exit status it maps to.
//! Failed requests are not errors here: they are counted in the report.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The command line names an impossible run. Exit status 2, like configuration errors.
    #[error("{0}")]
    Args(String),
    #[error("prompts file {}: {message}", path.display())]
    Prompts { path: PathBuf, message: String },
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Every warm-up request failed: the server is down or refuses the requests.
    #[error("warm-up against {url} failed: {message}")]
    Unreachable { url: String, message: String },
    #[error("could not write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not draw the plot: {0}")]
    Plot(String),
}

impl BenchError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Args(_) | Self::Prompts { .. } => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}
