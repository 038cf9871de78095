//! Prints how a chat renders and tokenizes for a model: `cargo run --release --example prompt -- MODEL.gguf "question"`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use floodgate_engine::{Engine, EngineConfig, Message};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let engine = Engine::load(EngineConfig::new("m", &args[1])).unwrap();
    let tokens = engine
        .tokenize_chat(&[Message {
            role: "user".into(),
            content: args[2].clone(),
        }])
        .unwrap();
    println!("{} tokens", tokens.len());
    for t in &tokens {
        print!("[{t}:{:?}]", engine.token_text(*t));
    }
    println!();
}
