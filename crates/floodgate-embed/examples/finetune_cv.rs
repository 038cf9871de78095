//! Experiment: does fine-tuning all-MiniLM-L6-v2 end to end (encoder + logistic head)
//! separate a labelled set better than a frozen-embedding head? K-fold cross-validation
//! on one JSONL file (`{"text", "label"}`), each fold trained on the other folds plus any
//! extra training files; prints P/R/F1/FPR over the out-of-fold predictions.
//!
//! candle-transformers' BERT cannot be trained as it is: its layer norm is a custom op
//! without a backward pass (`candle_nn::ops::layer_norm`), so no gradient would reach
//! the encoder. This file has its own forward pass with the same weights and a layer
//! norm made of plain (differentiable) tensor ops.
//!
//! ```text
//! cargo run --release -p floodgate-embed --example finetune_cv -- \
//!   MODEL_DIR CV_FILE POSITIVE_LABEL [--train FILE]... [--folds 5] [--epochs 3] \
//!   [--lr 3e-5] [--head-lr 1e-3] [--max-tokens 64] [--batch 16] [--frozen]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Module, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use candle_transformers::models::bert::Config;
use tokenizers::Tokenizer;

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn new(dim: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            w: vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
            b: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.w)?.broadcast_add(&self.b)
    }
}

struct Layer {
    q: candle_nn::Linear,
    k: candle_nn::Linear,
    v: candle_nn::Linear,
    o: candle_nn::Linear,
    ln1: LayerNorm,
    inter: candle_nn::Linear,
    out: candle_nn::Linear,
    ln2: LayerNorm,
}

struct Bert {
    word: candle_nn::Embedding,
    pos: candle_nn::Embedding,
    kind: candle_nn::Embedding,
    ln: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
}

impl Bert {
    fn new(c: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let mut layers = Vec::new();
        for i in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            layers.push(Layer {
                q: candle_nn::linear(h, h, a.pp("self.query"))?,
                k: candle_nn::linear(h, h, a.pp("self.key"))?,
                v: candle_nn::linear(h, h, a.pp("self.value"))?,
                o: candle_nn::linear(h, h, a.pp("output.dense"))?,
                ln1: LayerNorm::new(h, c.layer_norm_eps, a.pp("output.LayerNorm"))?,
                inter: candle_nn::linear(h, c.intermediate_size, l.pp("intermediate.dense"))?,
                out: candle_nn::linear(c.intermediate_size, h, l.pp("output.dense"))?,
                ln2: LayerNorm::new(h, c.layer_norm_eps, l.pp("output.LayerNorm"))?,
            });
        }
        Ok(Self {
            word: candle_nn::embedding(c.vocab_size, h, e.pp("word_embeddings"))?,
            pos: candle_nn::embedding(c.max_position_embeddings, h, e.pp("position_embeddings"))?,
            kind: candle_nn::embedding(c.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            ln: LayerNorm::new(h, c.layer_norm_eps, e.pp("LayerNorm"))?,
            layers,
            heads: c.num_attention_heads,
        })
    }

    /// Mean-pooled last hidden state, `[B, H]`.
    fn pooled(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, ids.device())?.unsqueeze(0)?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.pos.forward(&positions)?)?
            .broadcast_add(&self.kind.forward(&ids.zeros_like()?)?)?;
        let mut x = self.ln.forward(&x)?;
        let h = x.dim(2)?;
        let d = h / self.heads;
        // 0 for real tokens, a large negative number for padding: [B, 1, 1, T].
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        let split = |y: Tensor| -> candle_core::Result<Tensor> {
            y.reshape((b, t, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        for l in &self.layers {
            let q = split(l.q.forward(&x)?)?;
            let k = split(l.k.forward(&x)?)?;
            let v = split(l.v.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? / (d as f64).sqrt())?;
            let p = candle_nn::ops::softmax(&scores.broadcast_add(&bias)?, D::Minus1)?;
            let ctx = p
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, t, h))?;
            x = l.ln1.forward(&(x + l.o.forward(&ctx)?)?)?;
            let ff = l.out.forward(&l.inter.forward(&x)?.gelu_erf()?)?;
            x = l.ln2.forward(&(x + ff)?)?;
        }
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        x.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?)
    }
}

struct Row {
    ids: Vec<u32>,
    label: f32,
}

fn read(path: &Path, positive: &str, tok: &Tokenizer, max: usize) -> Vec<Row> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let text = v["text"].as_str().unwrap();
            let mut ids = tok.encode(text, true).unwrap().get_ids().to_vec();
            if ids.len() > max {
                let sep = ids[ids.len() - 1];
                ids.truncate(max - 1);
                ids.push(sep);
            }
            Row {
                ids,
                label: f32::from(u8::from(v["label"].as_str() == Some(positive))),
            }
        })
        .collect()
}

fn batch(rows: &[&Row], dev: &Device) -> (Tensor, Tensor, Tensor) {
    let t = rows.iter().map(|r| r.ids.len()).max().unwrap_or(1);
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for r in rows {
        ids.extend(r.ids.iter().copied());
        ids.extend(std::iter::repeat_n(0u32, t - r.ids.len()));
        mask.extend(std::iter::repeat_n(1u32, r.ids.len()));
        mask.extend(std::iter::repeat_n(0u32, t - r.ids.len()));
    }
    let labels: Vec<f32> = rows.iter().map(|r| r.label).collect();
    (
        Tensor::from_vec(ids, (rows.len(), t), dev).unwrap(),
        Tensor::from_vec(mask, (rows.len(), t), dev).unwrap(),
        Tensor::from_vec(labels, rows.len(), dev).unwrap(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, cv_file, positive) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]), &args[2]);
    let opt = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .map_or(default.to_string(), |i| args[i + 1].clone())
    };
    let trains: Vec<PathBuf> = args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--train")
        .map(|(i, _)| PathBuf::from(&args[i + 1]))
        .collect();
    let folds: usize = opt("--folds", "5").parse().unwrap();
    let epochs: usize = opt("--epochs", "3").parse().unwrap();
    let lr: f64 = opt("--lr", "3e-5").parse().unwrap();
    let head_lr: f64 = opt("--head-lr", "1e-3").parse().unwrap();
    let max: usize = opt("--max-tokens", "64").parse().unwrap();
    let bs: usize = opt("--batch", "16").parse().unwrap();
    let frozen = args.iter().any(|a| a == "--frozen");

    let dev = Device::Cpu;
    let config: Config =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let tok = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let cv = read(&cv_file, positive, &tok, max);
    let extra: Vec<Row> = trains
        .iter()
        .flat_map(|p| read(p, positive, &tok, max))
        .collect();
    // Stratified folds, fixed shuffle.
    let mut order: Vec<usize> = (0..cv.len()).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let mut fold_of = vec![0usize; cv.len()];
    for label in [0.0f32, 1.0] {
        for (n, &i) in order.iter().filter(|&&i| cv[i].label == label).enumerate() {
            fold_of[i] = n % folds;
        }
    }
    eprintln!(
        "cv rows {}, extra training rows {}, folds {folds}, epochs {epochs}, lr {lr}, head lr {head_lr}, frozen {frozen}",
        cv.len(),
        extra.len()
    );
    let mut scores = vec![0f32; cv.len()];
    let started = Instant::now();
    for f in 0..folds {
        let mut enc_map = VarMap::new();
        let model =
            Bert::new(&config, VarBuilder::from_varmap(&enc_map, DType::F32, &dev)).unwrap();
        enc_map.load(dir.join("model.safetensors")).unwrap();
        let head_map = VarMap::new();
        let head = candle_nn::linear(
            config.hidden_size,
            1,
            VarBuilder::from_varmap(&head_map, DType::F32, &dev),
        )
        .unwrap();
        let params = |lr| ParamsAdamW {
            lr,
            weight_decay: 0.01,
            ..Default::default()
        };
        let enc_vars: Vec<Var> = if frozen {
            Vec::new()
        } else {
            enc_map.all_vars()
        };
        let mut enc_opt = AdamW::new(enc_vars, params(lr)).unwrap();
        let mut head_opt = AdamW::new(head_map.all_vars(), params(head_lr)).unwrap();
        let mut train: Vec<&Row> = extra.iter().collect();
        train.extend((0..cv.len()).filter(|&i| fold_of[i] != f).map(|i| &cv[i]));
        for epoch in 0..epochs {
            // Reshuffle each epoch.
            for i in (1..train.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                train.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut total = 0.0;
            for chunk in train.chunks(bs) {
                let (ids, mask, y) = batch(chunk, &dev);
                let pooled = model.pooled(&ids, &mask).unwrap();
                let pooled = if frozen { pooled.detach() } else { pooled };
                let logit = head.forward(&pooled).unwrap().squeeze(1).unwrap();
                let loss = candle_nn::loss::binary_cross_entropy_with_logit(&logit, &y).unwrap();
                let grads = loss.backward().unwrap();
                if !frozen {
                    enc_opt.step(&grads).unwrap();
                }
                head_opt.step(&grads).unwrap();
                total += loss.to_scalar::<f32>().unwrap() * chunk.len() as f32;
            }
            eprintln!(
                "fold {f} epoch {epoch}: loss {:.4} ({:.0} s)",
                total / train.len() as f32,
                started.elapsed().as_secs_f64()
            );
        }
        let held: Vec<usize> = (0..cv.len()).filter(|&i| fold_of[i] == f).collect();
        for chunk in held.chunks(bs) {
            let rows: Vec<&Row> = chunk.iter().map(|&i| &cv[i]).collect();
            let (ids, mask, _) = batch(&rows, &dev);
            let logit = head
                .forward(&model.pooled(&ids, &mask).unwrap())
                .unwrap()
                .squeeze(1)
                .unwrap();
            let p = candle_nn::ops::sigmoid(&logit)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (&i, s) in chunk.iter().zip(p) {
                scores[i] = s;
            }
        }
    }
    for threshold in [0.3f32, 0.4, 0.5, 0.6, 0.7] {
        let (mut tp, mut fp, mut fneg, mut tn) = (0f64, 0f64, 0f64, 0f64);
        for (r, &s) in cv.iter().zip(&scores) {
            match (s >= threshold, r.label > 0.5) {
                (true, true) => tp += 1.0,
                (true, false) => fp += 1.0,
                (false, true) => fneg += 1.0,
                (false, false) => tn += 1.0,
            }
        }
        let p = tp / (tp + fp).max(1.0);
        let r = tp / (tp + fneg).max(1.0);
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        println!(
            "threshold {threshold:.1}: P {p:.3} R {r:.3} F1 {f1:.3} FPR {:.3}",
            fp / (fp + tn).max(1.0)
        );
    }
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
}
