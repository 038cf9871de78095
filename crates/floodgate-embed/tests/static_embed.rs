//! The distilled static table on a random-weight BERT (see `floodgate_test_support::tiny_bert`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floodgate_embed::{EmbedOptions, Embedder, StaticEmbedder, TextEncoder, STATIC_ENCODER_SUFFIX};
use floodgate_test_support::tiny_bert::{write_tiny_bert, TinyBert};

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn distilled() -> (tempfile::TempDir, Embedder, StaticEmbedder) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bert(dir.path(), TinyBert::default()).unwrap();
    let encoder = Embedder::load(dir.path(), EmbedOptions::default().with_max_tokens(32)).unwrap();
    let mut calls = 0;
    let fast = StaticEmbedder::distill(&encoder, |done, total| {
        calls += 1;
        assert!(done <= total);
    })
    .unwrap();
    assert!(calls >= 1);
    (dir, encoder, fast)
}

#[test]
fn a_one_token_text_embeds_as_the_encoder_sees_that_token_alone() {
    let (_dir, encoder, fast) = distilled();
    let ids = fast.token_ids("cat").unwrap();
    assert_eq!(ids.len(), 1, "special tokens are left out");
    // The table row is the encoder's embedding of [CLS] cat [SEP].
    let full = encoder.embed_one("cat").unwrap();
    let fast_v = fast.embed_one("cat").unwrap();
    assert!(dot(&full, &fast_v) > 0.999, "{}", dot(&full, &fast_v));
}

#[test]
fn embeddings_are_unit_vectors_and_empty_text_is_zero() {
    let (_dir, _encoder, fast) = distilled();
    let v = fast.embed_one("the cat sat on the mat").unwrap();
    assert_eq!(v.len(), fast.dim());
    assert!((dot(&v, &v) - 1.0).abs() < 1e-4);
    assert!(fast.embed_one("").unwrap().iter().all(|x| *x == 0.0));
    // Word order is lost: that is the price of the speed.
    let a = fast.embed_one("cat sat").unwrap();
    let b = fast.embed_one("sat cat").unwrap();
    assert!(dot(&a, &b) > 0.9999);
}

#[test]
fn idf_weights_shift_a_text_toward_its_rare_tokens_and_survive_save_and_load() {
    let (dir, _encoder, mut fast) = distilled();
    let before = fast.embed_one("the cat").unwrap();
    // "the" is in every document, "cat" in one: after fitting, "cat" dominates.
    fast.fit_weights(["the dog", "the bird", "the fish", "the cat"])
        .unwrap();
    let after = fast.embed_one("the cat").unwrap();
    let cat = fast.embed_one("cat").unwrap();
    assert!(dot(&after, &cat) > dot(&before, &cat));

    let path = dir.path().join("static.safetensors");
    fast.save(&path).unwrap();
    let loaded = StaticEmbedder::load(&path, dir.path()).unwrap();
    assert_eq!(loaded.embed_one("the cat").unwrap(), after);
    assert!(loaded.info().model.ends_with(STATIC_ENCODER_SUFFIX));
}

#[test]
fn long_texts_are_cut_to_head_and_tail() {
    let (_dir, _encoder, fast) = distilled();
    let fast = fast.with_max_tokens(8);
    let text = format!("cat {} dog", "sat ".repeat(100));
    let ids = fast.token_ids(&text).unwrap();
    assert_eq!(ids.len(), 8);
    assert_eq!(ids.first(), fast.token_ids("cat").unwrap().first());
    assert_eq!(ids.last(), fast.token_ids("dog").unwrap().last());
}

#[test]
fn a_table_for_another_vocabulary_is_refused() {
    let (dir, _encoder, _fast) = distilled();
    let path = dir.path().join("other.safetensors");
    let cpu = candle_core::Device::Cpu;
    let tensors = std::collections::HashMap::from([
        (
            "embeddings".to_string(),
            candle_core::Tensor::zeros((10, 32), candle_core::DType::F32, &cpu).unwrap(),
        ),
        (
            "weights".to_string(),
            candle_core::Tensor::ones(10, candle_core::DType::F32, &cpu).unwrap(),
        ),
    ]);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = StaticEmbedder::load(&path, dir.path()).unwrap_err();
    assert!(err.to_string().contains("vocabulary"), "{err}");
}
