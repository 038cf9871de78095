//! Quantization end to end on a tiny random-weight model: conversion, the
//! variant cache, and the quality measures.
//!
//! The tiny model is 256 wide with a 512-wide feed-forward, so every weight
//! row is a multiple of 256 and llama.cpp's k-quants (block size 256) apply
//! rather than falling back to another type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use floodgate_engine::quant::eval::{self, EvalJob, EvalOutput, Phase, Reference};
use floodgate_engine::quant::{self, Precision};
use floodgate_test_support::tiny_llama::{write_tiny_llama, TinyModelOptions};

const CTX: u32 = 128;

fn tiny_options() -> TinyModelOptions {
    TinyModelOptions {
        n_embd: 256,
        n_ff: 512,
        ..Default::default()
    }
}

fn quality(model: &Path, reference: Reference) -> eval::QualityResult {
    let job = EvalJob {
        model: model.to_path_buf(),
        phase: Phase::Quality,
        ctx: CTX,
        chunks: 2,
        threads: 2,
        reference: Some(reference),
        corpus: None,
    };
    match eval::run(&job).unwrap() {
        EvalOutput::Quality(q) => q,
        other => panic!("expected a quality result, got {other:?}"),
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Everything that loads a model is in this one test: llama.cpp's backend is
/// process-wide, and the steps build on each other.
#[test]
fn quantize_evaluate_and_cache() {
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("tiny-f32.gguf");
    write_tiny_llama(&f32_path, &tiny_options()).unwrap();
    assert_eq!(quant::file_type(&f32_path).unwrap(), Some(0), "ALL_F32");

    // Conversion: f16 and q8_0 are loadable, smaller, and labelled as such.
    let f16_path = dir.path().join("out/tiny-f16.gguf");
    let q8_path = dir.path().join("out/tiny-q8_0.gguf");
    quant::quantize(&f32_path, &f16_path, Precision::F16, 2).unwrap();
    quant::quantize(&f32_path, &q8_path, Precision::Q8_0, 2).unwrap();
    assert_eq!(quant::file_type(&f16_path).unwrap(), Some(1), "MOSTLY_F16");
    assert_eq!(quant::file_type(&q8_path).unwrap(), Some(7), "MOSTLY_Q8_0");
    let (f32_bytes, f16_bytes, q8_bytes) = (size(&f32_path), size(&f16_path), size(&q8_path));
    assert!(
        f16_bytes < f32_bytes * 6 / 10,
        "f16 {f16_bytes} vs f32 {f32_bytes}"
    );
    assert!(q8_bytes < f16_bytes, "q8_0 {q8_bytes} vs f16 {f16_bytes}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert!(matches!(
        quant::quantize(&f32_path, &f32_path, Precision::F16, 1),
        Err(quant::QuantError::SameFile(_))
    ));

    // Quality: f32 is the reference; comparing it with itself is exact.
    let reference = dir.path().join("ref.logprobs");
    let base = quality(&f32_path, Reference::Write(reference.clone()));
    assert!(
        base.perplexity.is_finite() && base.perplexity > 1.0,
        "{base:?}"
    );
    assert_eq!(base.chunks, 2);
    assert_eq!(base.scored_tokens, 2 * u64::from(CTX / 2 - 1));
    assert_eq!(base.mean_kl, None);

    let same = quality(&f32_path, Reference::Compare(reference.clone()));
    assert!(same.mean_kl.unwrap().abs() < 1e-9, "{same:?}");
    assert_eq!(same.top1_agreement, Some(1.0));
    assert!((same.perplexity - base.perplexity).abs() < 1e-9);

    let q8 = quality(&q8_path, Reference::Compare(reference.clone()));
    let kl = q8.mean_kl.unwrap();
    assert!(kl > 0.0, "q8_0 should differ from f32: {q8:?}");
    assert!(kl < 0.05, "q8_0 should stay close to f32: {q8:?}");
    assert!(q8.top1_agreement.unwrap() > 0.5, "{q8:?}");
    assert!(
        (q8.perplexity / base.perplexity - 1.0).abs() < 0.1,
        "{q8:?} vs {base:?}"
    );

    // k-quants apply to this shape (no fallback failure), and land below q8_0.
    let q4_path = dir.path().join("out/tiny-q4_k.gguf");
    quant::quantize(&f32_path, &q4_path, Precision::Q4_K, 2).unwrap();
    assert_eq!(
        quant::file_type(&q4_path).unwrap(),
        Some(15),
        "MOSTLY_Q4_K_M"
    );
    assert!(size(&q4_path) < q8_bytes);
    let q4 = quality(&q4_path, Reference::Compare(reference.clone()));
    eprintln!("f32 {base:?}\nq8_0 {q8:?}\nq4_k {q4:?}");
    assert!(
        q4.mean_kl.unwrap() > kl,
        "q4_k {q4:?} should lose more than q8_0 {q8:?}"
    );

    // Requantizing from a quantized source is allowed (it only dequantizes).
    let back = dir.path().join("out/tiny-q8-to-f16.gguf");
    quant::quantize(&q8_path, &back, Precision::F16, 2).unwrap();
    assert_eq!(quant::file_type(&back).unwrap(), Some(1));

    // Speed: the numbers exist and are positive.
    let speed = match eval::run(&EvalJob {
        model: q8_path.clone(),
        phase: Phase::Speed,
        ctx: CTX,
        chunks: 1,
        threads: 2,
        reference: None,
        corpus: None,
    })
    .unwrap()
    {
        EvalOutput::Speed(s) => s,
        other => panic!("expected a speed result, got {other:?}"),
    };
    assert_eq!(speed.prefill_tokens, CTX);
    assert!(speed.prefill_tokens_per_s > 0.0 && speed.decode_tokens_per_s > 0.0);
    if cfg!(target_os = "linux") {
        assert!(speed.peak_rss_bytes.unwrap() > 0);
    }

    // The variant cache converts once: the second call finds the file and does
    // not rewrite it.
    let cache = dir.path().join("variants");
    let first = quant::ensure_variant(&cache, &f32_path, Precision::Q8_0).unwrap();
    assert_eq!(
        first,
        quant::variant_path(&cache, &f32_path, Precision::Q8_0).unwrap()
    );
    let mtime = std::fs::metadata(&first).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = quant::ensure_variant(&cache, &f32_path, Precision::Q8_0).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        std::fs::metadata(&second).unwrap().modified().unwrap(),
        mtime
    );
    assert_eq!(size(&first), q8_bytes, "same conversion, same bytes");
    assert_eq!(
        quant::ensure_variant(&cache, &f32_path, Precision::Source).unwrap(),
        f32_path
    );
}
