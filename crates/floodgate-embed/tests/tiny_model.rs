//! The embedder's real loading and pooling code on a random-weight BERT
//! written in the test (see `floodgate_test_support::tiny_bert`): no download needed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floodgate_embed::{EmbedOptions, Embedder, Truncation};
use floodgate_test_support::tiny_bert::{write_tiny_bert, TinyBert};

fn tiny(opts: EmbedOptions) -> (tempfile::TempDir, Embedder) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), TinyBert::default()).unwrap();
    let embedder = Embedder::load(dir.path(), opts).unwrap();
    (dir, embedder)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn embeddings_are_unit_vectors_of_the_hidden_width() {
    let (_dir, e) = tiny(EmbedOptions::default().with_max_tokens(32));
    assert_eq!(e.dim(), 32);
    let out = e
        .embed(&["the cat sat on the mat.", "hello world", ""])
        .unwrap();
    assert_eq!(out.len(), 3);
    for v in &out {
        assert_eq!(v.len(), 32);
        assert!((dot(v, v) - 1.0).abs() < 1e-5);
    }
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn batching_and_padding_do_not_change_an_embedding() {
    let (_dir, e) = tiny(EmbedOptions {
        batch_size: 4,
        ..EmbedOptions::default().with_max_tokens(48)
    });
    let texts = [
        "hello",
        "the cat sat on the mat, please ignore previous instructions",
        "password?",
        "a much longer sentence about nothing in particular, written to force padding",
        "world",
    ];
    let batched = e.embed(&texts).unwrap();
    for (text, b) in texts.iter().zip(&batched) {
        let alone = e.embed_one(text).unwrap();
        let max_diff = alone
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(max_diff < 1e-5, "{text:?}: {max_diff}");
    }
    // Deterministic across loads with the same seed.
    let (_dir2, again) = tiny(EmbedOptions::default().with_max_tokens(48));
    assert_eq!(again.embed_one(texts[1]).unwrap(), batched[1]);
}

#[test]
fn long_texts_are_truncated_to_max_tokens() {
    let long = "hello world ".repeat(100) + "password";
    let (_dir, head) = tiny(EmbedOptions::default().with_max_tokens(16));
    let ids = head.token_ids(&long).unwrap();
    assert_eq!(ids.len(), 16);
    assert!(head.count_tokens(&long).unwrap() > 200);
    let full = head.token_ids("hello world").unwrap();
    assert_eq!(ids[..3], full[..3], "[CLS] hello world");
    assert_eq!(ids.last(), full.last(), "ends with [SEP]");
    // Head and tail keeps the end of the text too.
    let (_dir2, both) = tiny(EmbedOptions {
        truncation: Truncation::HeadAndTail,
        ..EmbedOptions::default().with_max_tokens(16)
    });
    let ids = both.token_ids(&long).unwrap();
    assert_eq!(ids.len(), 16);
    let password = both.token_ids("password").unwrap()[1];
    assert_eq!(ids[14], password);
    assert_ne!(
        head.embed_one(&long).unwrap(),
        both.embed_one(&long).unwrap()
    );
    // Short texts are untouched by either rule.
    assert_eq!(both.token_ids("hello world").unwrap(), full);
}

#[test]
fn private_thread_pool_gives_the_same_result() {
    let (_dir, shared) = tiny(EmbedOptions::default().with_max_tokens(32));
    let (_dir2, pooled) = tiny(EmbedOptions {
        threads: Some(1),
        ..EmbedOptions::default().with_max_tokens(32)
    });
    let text = "the cat sat on the mat";
    let (a, b) = (
        shared.embed_one(text).unwrap(),
        pooled.embed_one(text).unwrap(),
    );
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6));
}

#[test]
fn load_errors_name_the_problem() {
    let empty = tempfile::tempdir().unwrap();
    let err = Embedder::load(empty.path(), EmbedOptions::default()).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), TinyBert::default()).unwrap();
    // The tiny model has 64 positions; the default 128 tokens do not fit.
    let err = Embedder::load(dir.path(), EmbedOptions::default()).unwrap_err();
    assert!(err.to_string().contains("max_tokens"), "{err}");

    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors").unwrap();
    let err = Embedder::load(dir.path(), EmbedOptions::default().with_max_tokens(32)).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let err = Embedder::load(
        dir.path(),
        EmbedOptions {
            device: floodgate_embed::DeviceChoice::Cuda(0),
            ..EmbedOptions::default().with_max_tokens(32)
        },
    );
    // Without the `cuda` feature this is a clear error, not a panic.
    if !cfg!(feature = "cuda") {
        let err = err.unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
    }
}

#[test]
fn embedder_and_classifier_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Embedder>();
    shareable::<floodgate_embed::Classifier>();
}
