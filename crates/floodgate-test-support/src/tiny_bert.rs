//! A tiny BERT with random weights, written in the same three files as the
//! real all-MiniLM-L6-v2 (`config.json`, `model.safetensors`,
//! `tokenizer.json`), so tests exercise the real loading and embedding code
//! without downloading anything.
//!
//! The vocabulary holds the BERT special tokens, every ASCII letter and digit
//! (also as `##` continuations, so any lowercase ASCII word tokenizes without
//! `[UNK]`), common punctuation and a few whole words. Weights come from a
//! seeded generator, so a given seed always writes the same model.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::Tokenizer;

/// What the writer returns: any error from the file system, candle or the tokenizer,
/// with the file or tensor it was writing.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn context<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> Error {
    move |e| format!("{what}: {e}").into()
}

/// Shape of the tiny model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TinyBert {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub seed: u64,
}

impl Default for TinyBert {
    fn default() -> Self {
        TinyBert {
            hidden: 32,
            layers: 2,
            heads: 4,
            intermediate: 64,
            max_positions: 64,
            seed: 7,
        }
    }
}

const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const WORDS: [&str; 12] = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "hello",
    "world",
    "ignore",
    "previous",
    "instructions",
    "password",
    "please",
];

fn vocabulary() -> Vec<String> {
    let mut vocab: Vec<String> = SPECIALS.iter().map(|s| (*s).to_string()).collect();
    vocab.extend(".,!?'\"-:;()".chars().map(String::from));
    let alnum = ('a'..='z').chain('0'..='9');
    vocab.extend(alnum.clone().map(String::from));
    vocab.extend(alnum.map(|c| format!("##{c}")));
    vocab.extend(WORDS.iter().map(|w| (*w).to_string()));
    vocab
}

/// Writes the tiny model's three files (and the `vocab.txt` the tokenizer
/// was built from) into `dir`, which must exist.
pub fn write_tiny_bert(dir: &Path, shape: TinyBert) -> Result<(), Error> {
    let vocab = vocabulary();
    write_tokenizer(dir, &vocab)?;

    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab.len(),
        "hidden_size": shape.hidden,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "intermediate_size": shape.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": shape.max_positions,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    });
    let config_path = dir.join("config.json");
    fs::write(&config_path, config.to_string())
        .map_err(context(format!("writing {}", config_path.display())))?;

    let mut rng = SplitMix64(shape.seed);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut random = |name: String, dims: &[usize]| -> Result<(), Error> {
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.uniform() * 0.2).collect();
        let t = Tensor::from_vec(values, dims, &Device::Cpu).map_err(context(&name))?;
        tensors.insert(name, t);
        Ok(())
    };
    let (h, i) = (shape.hidden, shape.intermediate);
    random(
        "embeddings.word_embeddings.weight".into(),
        &[vocab.len(), h],
    )?;
    random(
        "embeddings.position_embeddings.weight".into(),
        &[shape.max_positions, h],
    )?;
    random("embeddings.token_type_embeddings.weight".into(), &[2, h])?;
    let mut linears = Vec::new();
    for l in 0..shape.layers {
        let p = format!("encoder.layer.{l}");
        for name in ["query", "key", "value"] {
            linears.push((format!("{p}.attention.self.{name}"), h, h));
        }
        linears.push((format!("{p}.attention.output.dense"), h, h));
        linears.push((format!("{p}.intermediate.dense"), h, i));
        linears.push((format!("{p}.output.dense"), i, h));
    }
    for (name, input, output) in linears {
        random(format!("{name}.weight"), &[output, input])?;
        random(format!("{name}.bias"), &[output])?;
    }
    let mut norms = vec!["embeddings.LayerNorm".to_string()];
    for l in 0..shape.layers {
        norms.push(format!("encoder.layer.{l}.attention.output.LayerNorm"));
        norms.push(format!("encoder.layer.{l}.output.LayerNorm"));
    }
    for name in norms {
        let ones =
            Tensor::ones(h, candle_core::DType::F32, &Device::Cpu).map_err(context(&name))?;
        let zeros = ones.zeros_like().map_err(context(&name))?;
        tensors.insert(format!("{name}.weight"), ones);
        tensors.insert(format!("{name}.bias"), zeros);
    }
    let weights_path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &weights_path).map_err(context(weights_path.display()))
}

/// A BERT-style WordPiece tokenizer over `vocab`: lowercasing normaliser,
/// whitespace-and-punctuation pre-tokenizer, `[CLS] … [SEP]` post-processor.
fn write_tokenizer(dir: &Path, vocab: &[String]) -> Result<(), Error> {
    let vocab_path = dir.join("vocab.txt");
    fs::write(&vocab_path, vocab.join("\n") + "\n")
        .map_err(context(format!("writing {}", vocab_path.display())))?;
    let id = |token: &str| -> Result<u32, Error> {
        let pos = vocab
            .iter()
            .position(|v| v == token)
            .ok_or_else(|| format!("{token} missing from the tiny vocabulary"))?;
        Ok(u32::try_from(pos)?)
    };
    let model = WordPiece::from_file(&vocab_path.to_string_lossy())
        .unk_token("[UNK]".into())
        .build()
        .map_err(context("building the tiny WordPiece model"))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), id("[SEP]")?),
            ("[CLS]".into(), id("[CLS]")?),
        )));
    let path = dir.join("tokenizer.json");
    tokenizer
        .save(&path, false)
        .map_err(context(path.display()))
}

/// Seeded uniform numbers in [-1, 1); enough randomness for test weights.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f32 {
        // The top 24 bits give every representable step of an f32 in [0, 1).
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}
