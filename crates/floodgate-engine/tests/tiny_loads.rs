//! Writes the tiny llama GGUF and runs it through llama.cpp's real loader,
//! tokenizer, chat-template and decode paths.
//!
//! `LlamaBackend::init()` may only be called once per process, so everything
//! lives in a single test function.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroU32;
use std::path::PathBuf;

use floodgate_test_support::tiny_llama::{
    tiny_vocab, write_tiny_llama, TinyModelOptions, CHATML_TEMPLATE, TINY_BOS_ID,
    TINY_BYTE_BASE_ID, TINY_IM_END_ID, TINY_IM_START_ID,
};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::gguf::GgufContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("floodgate-tiny-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tok(id: u32) -> LlamaToken {
    LlamaToken(i32::try_from(id).unwrap())
}

#[test]
fn tiny_llama_loads_tokenizes_and_decodes() {
    let dir = TempDir::new();
    let path = dir.0.join("tiny.gguf");
    let opts = TinyModelOptions::default();
    let n_vocab = write_tiny_llama(&path, &opts).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "tiny model: {n_vocab} tokens, {size} bytes at {}",
        path.display()
    );
    assert_eq!(n_vocab as usize, tiny_vocab().len());

    // ggml's own GGUF parser accepts the header, KVs and tensor infos
    // (it validates offsets and the aligned data section).
    let g = GgufContext::from_file(&path).expect("gguf_init_from_file failed");
    assert_eq!(g.n_tensors(), 3 + 2 * 9);
    let k = g.find_key("general.architecture");
    assert!(k >= 0);
    assert_eq!(g.val_str(k), Some("llama"));
    let k = g.find_key("general.alignment");
    assert_eq!(g.val_u32(k), 32);
    let k = g.find_key("llama.vocab_size");
    assert_eq!(g.val_u32(k), n_vocab);
    drop(g);

    let backend = LlamaBackend::init().unwrap();
    let model = LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default())
        .expect("llama.cpp failed to load the tiny model");

    assert_eq!(model.n_vocab(), i32::try_from(n_vocab).unwrap());
    assert_eq!(model.n_ctx_train(), opts.context_length);
    assert_eq!(model.n_layer(), opts.n_layer);
    assert_eq!(model.n_head(), opts.n_head);
    assert_eq!(model.n_head_kv(), opts.n_head_kv);
    assert_eq!(u32::try_from(model.n_embd()).unwrap(), opts.n_embd);

    let vocab = model.vocab();
    assert_eq!(vocab.bos(), tok(TINY_BOS_ID));
    assert_eq!(vocab.eos(), tok(TINY_IM_END_ID));
    assert!(
        vocab.is_eog(tok(TINY_IM_END_ID)),
        "<|im_end|> must end generation"
    );
    assert!(!vocab.is_eog(tok(TINY_IM_START_ID)));
    assert!(vocab.is_control(tok(TINY_IM_START_ID)));
    assert_eq!(vocab.nl(), tok(TINY_BYTE_BASE_ID + u32::from(b'\n')));
    assert!(!vocab.should_add_bos());

    // Tokenize a ChatML turn with special-token parsing.
    let text = "<|im_start|>user\nWhat is the capital of France?<|im_end|>";
    let toks = vocab.tokenize(text.as_bytes(), false, true);
    let pieces: Vec<String> = toks
        .iter()
        .map(|t| String::from_utf8_lossy(&vocab.token_to_piece(*t, true, None)).into_owned())
        .collect();
    eprintln!("tokens: {toks:?}\npieces: {pieces:?}");
    assert_eq!(toks.first(), Some(&tok(TINY_IM_START_ID)));
    assert_eq!(toks.last(), Some(&tok(TINY_IM_END_ID)));
    let tv = tiny_vocab();
    for word in [
        "user",
        "What",
        "\u{2581}is",
        "\u{2581}the",
        "\u{2581}capital",
        "\u{2581}of",
        "\u{2581}France",
    ] {
        let id = tv.id_of(word).unwrap();
        assert!(
            toks.contains(&tok(id)),
            "{word:?} ({id}) should be one token"
        );
    }
    assert_eq!(
        toks.len(),
        11,
        "im_start user \\n What is the capital of France ? im_end"
    );
    let back = vocab.detokenize(&toks, false, true);
    assert_eq!(String::from_utf8(back).unwrap(), text);

    // Without parse_special the markers are plain text.
    let plain = vocab.tokenize(text.as_bytes(), false, false);
    assert!(!plain.contains(&tok(TINY_IM_START_ID)));
    assert!(!plain.contains(&tok(TINY_IM_END_ID)));

    // Any UTF-8 round-trips through byte fallback.
    let odd = "héllo wörld — 日本語 🦀 tabs\tand\nnewlines";
    let odd_toks = vocab.tokenize(odd.as_bytes(), false, false);
    assert!(odd_toks
        .iter()
        .any(|t| t.0 >= TINY_BYTE_BASE_ID as i32 && t.0 < TINY_BYTE_BASE_ID as i32 + 256));
    assert_eq!(
        String::from_utf8(vocab.detokenize(&odd_toks, false, false)).unwrap(),
        odd
    );

    // Chat template metadata.
    assert_eq!(
        model.meta_val_str("tokenizer.chat_template").unwrap(),
        CHATML_TEMPLATE
    );
    let tmpl = model.chat_template(None).unwrap();
    assert_eq!(tmpl.to_str().unwrap(), CHATML_TEMPLATE);
    let msgs =
        [LlamaChatMessage::new("user".into(), "What is the capital of France?".into()).unwrap()];
    let prompt = model.apply_chat_template(&tmpl, &msgs, true).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );

    // One batch decode of the prompt, then one more token.
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(256))
        .with_n_batch(256)
        .with_n_threads(2)
        .with_n_threads_batch(2);
    let mut ctx = model.new_context(&backend, ctx_params).unwrap();
    let prompt_toks = vocab.tokenize(prompt.as_bytes(), false, true);
    let mut batch = LlamaBatch::new(256, 1);
    let last = prompt_toks.len() - 1;
    for (i, t) in prompt_toks.iter().enumerate() {
        batch
            .add(*t, i32::try_from(i).unwrap(), &[0], i == last)
            .unwrap();
    }
    ctx.decode(&mut batch).unwrap();
    let logits = ctx.get_logits_ith(batch.n_tokens() - 1);
    assert_eq!(logits.len(), n_vocab as usize);
    assert!(logits.iter().all(|x| x.is_finite()), "non-finite logits");
    let (argmax, max) =
        logits
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |acc, (i, &x)| {
                if x > acc.1 {
                    (i, x)
                } else {
                    acc
                }
            });
    let min = logits.iter().copied().fold(f32::INFINITY, f32::min);
    eprintln!("logits: min {min} max {max} argmax {argmax}");
    assert!(max > min, "logits should not be constant");

    batch.clear();
    batch
        .add(
            LlamaToken(i32::try_from(argmax).unwrap()),
            i32::try_from(prompt_toks.len()).unwrap(),
            &[0],
            true,
        )
        .unwrap();
    ctx.decode(&mut batch).unwrap();
    let logits2 = ctx.get_logits_ith(0);
    assert!(logits2.iter().all(|x| x.is_finite()));
}
