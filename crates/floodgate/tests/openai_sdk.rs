//! The official OpenAI Python SDK, unchanged, against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{tiny_config, Server};

fn python_with_openai() -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

#[test]
fn openai_python_sdk_works_unchanged() {
    let Some(python) = python_with_openai() else {
        eprintln!(
            "SKIPPED: python3 with the `openai` package is not available (pip install openai)"
        );
        return;
    };
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
