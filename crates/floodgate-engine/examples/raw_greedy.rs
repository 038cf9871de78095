//! Greedy decoding straight through llama-cpp-2, to compare with the scheduler:
//! `cargo run --release --example raw_greedy -- MODEL.gguf PROMPT [unified] [TOKENS]` prints
//! the text and the raw engine's single-stream decode speed: the mean over the run, and the
//! rate of the median step (what `floodgate bench` reports as 1 / inter-token p50).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::explicit_counter_loop
)]
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = LlamaBackend::init().unwrap();
    let model =
        LlamaModel::load_from_file(&backend, &args[1], &LlamaModelParams::default()).unwrap();
    let unified: bool = args.get(3).map(|s| s == "unified").unwrap_or(false);
    // Same thread count as the engine uses by default: all cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as i32);
    let mut p = LlamaContextParams::default()
        .with_n_ctx(std::num::NonZeroU32::new(2048))
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    if unified {
        p = p.with_n_seq_max(8).with_kv_unified(true);
    }
    let mut ctx = model.new_context(&backend, p).unwrap();
    let vocab = model.vocab();
    let tokens = vocab.tokenize(args[2].as_bytes(), false, true);
    let mut batch = LlamaBatch::new(512, 1);
    batch.add_sequence(&tokens, 0, false).unwrap();
    ctx.decode(&mut batch).unwrap();
    let mut pos = tokens.len() as i32;
    let mut last_idx = batch.n_tokens() - 1;
    let mut out = Vec::new();
    let n: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(30);
    let started = std::time::Instant::now();
    let mut decoded = 0usize;
    let mut steps = Vec::with_capacity(n);
    for _ in 0..n {
        let step = std::time::Instant::now();
        let logits = ctx.get_logits_ith(last_idx);
        let (best, _) =
            logits
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
        let t = LlamaToken(best as i32);
        if vocab.is_eog(t) && args.get(4).is_none() {
            break;
        }
        decoded += 1;
        out.extend(vocab.token_to_piece(t, false, None));
        batch.clear();
        batch.add(t, pos, &[0], true).unwrap();
        pos += 1;
        last_idx = 0;
        ctx.decode(&mut batch).unwrap();
        steps.push(step.elapsed().as_secs_f64());
    }
    steps.sort_by(f64::total_cmp);
    let median = steps.get(steps.len() / 2).copied().unwrap_or(f64::NAN);
    let secs = started.elapsed().as_secs_f64();
    println!("{}", String::from_utf8_lossy(&out));
    eprintln!(
        "raw engine: {decoded} tokens in {secs:.2} s, {:.1} tok/s mean; median step {:.2} ms = {:.1} tok/s (single stream, greedy)",
        decoded as f64 / secs,
        median * 1e3,
        1.0 / median
    );
}
