//! The official OpenAI Python SDK, unchanged, against the real binary. Needs Python with
//! the `openai` package; reported as ignored, with the reason, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, ExitCode};

use common::{tiny_config, Server};
use floodgate_test_support::needs::{self, trial};

fn main() -> ExitCode {
    needs::run(vec![trial(
        "openai_python_sdk_works_unchanged",
        needs::python_with_openai(),
        openai_python_sdk_works_unchanged,
    )])
}

fn openai_python_sdk_works_unchanged(python: String) {
    let server = Server::start(&tiny_config(""));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_sdk.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&server.base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "SDK checks failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
