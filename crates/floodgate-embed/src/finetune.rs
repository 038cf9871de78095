//! A BERT sentence encoder fine-tuned end to end with a one-label logistic head.
//!
//! A head over frozen embeddings cannot separate texts whose classes differ only in
//! stance: ToxiGen-style implicit toxicity mentions the same groups, in the same register,
//! as the benign rows beside it. Training the encoder with the head moves the embedding
//! itself. Here that is all-MiniLM-L6-v2 (22 M parameters), which trains on 2 CPU cores in
//! minutes for a few hundred rows.
//!
//! candle-transformers' BERT cannot be trained as it is: its layer norm is a custom op
//! without a backward pass (`candle_nn::ops::layer_norm`), so no gradient would reach the
//! encoder. [`FinetunedClassifier`] therefore has its own forward pass over the same
//! weight names, with a layer norm made of plain (differentiable) tensor ops; it runs the
//! same code for training and inference, so the two cannot drift apart.
//!
//! On disk a fine-tuned classifier is a directory: `model.safetensors` (the encoder and the
//! head, `classifier.weight` / `classifier.bias`), the base model's `config.json` and
//! `tokenizer.json`, and `finetuned.json` ([`FinetunedMeta`]: label, threshold, options,
//! what it was trained on and its cross-validated figures).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use candle_transformers::models::bert::Config;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::classifier::{metrics_at, Metrics};
use crate::encoder::{load_tokenizer, read_config, read_weights};
use crate::EmbedError;

/// The metadata file in a fine-tuned classifier's directory.
pub const FINETUNED_META_FILE: &str = "finetuned.json";
const WEIGHTS_FILE: &str = "model.safetensors";
const HEAD_PREFIX: &str = "classifier";
const FORMAT_VERSION: u32 = 1;

/// How to fine-tune. The defaults are what cross-validation on the toxicity development
/// set chose (see `floodgate guard train --help` and the README's guard figures).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinetuneOptions {
    /// Passes over the training rows.
    pub epochs: usize,
    /// AdamW learning rate for the encoder.
    pub lr: f64,
    /// AdamW learning rate for the head (it starts from zero knowledge).
    pub head_lr: f64,
    /// Tokens per text window, `[CLS]` and `[SEP]` included; longer texts are scored
    /// window by window (the highest score counts) and trained on their first window.
    pub max_tokens: usize,
    /// Rows per optimiser step.
    pub batch: usize,
    /// Seeds the row order (and the folds of [`cross_validate`]).
    pub seed: u64,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        Self {
            epochs: 3,
            lr: 3e-5,
            head_lr: 1e-3,
            max_tokens: 64,
            batch: 16,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// What `finetuned.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetunedMeta {
    pub format_version: u32,
    /// The positive label the head predicts (`toxic`).
    pub label: String,
    /// The base encoder's directory name (`all-minilm-l6-v2`).
    pub base_model: String,
    /// Probability at or above which a text counts as positive.
    pub threshold: f32,
    pub options: FinetuneOptions,
    pub trained_at: String,
    pub examples: usize,
    pub positives: usize,
    /// Out-of-fold figures at `threshold`, when the threshold came from cross-validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<Metrics>,
}

/// A labelled text for training.
#[derive(Debug, Clone, Copy)]
pub struct Example<'a> {
    pub text: &'a str,
    pub positive: bool,
}

impl<'a> Example<'a> {
    /// A labelled row; any label outside `negative_labels` is positive.
    pub fn of(row: &'a crate::classifier::LabeledText, negative_labels: &[String]) -> Self {
        Self {
            text: &row.text,
            positive: !negative_labels.contains(&row.label),
        }
    }
}

/// The encoder with its head, ready to score texts (and, while training, to learn).
pub struct FinetunedClassifier {
    bert: TrainableBert,
    head: Linear,
    tokenizer: Tokenizer,
    config_json: Vec<u8>,
    device: Device,
    meta: FinetunedMeta,
}

impl FinetunedClassifier {
    /// Fine-tunes the BERT in `base_dir` (config.json, tokenizer.json, model.safetensors)
    /// on `examples`. `progress(epoch, mean loss)` is called after each epoch. The
    /// threshold starts at 0.5; [`cross_validate`] can choose a better one.
    pub fn train(
        base_dir: &Path,
        examples: &[Example<'_>],
        label: &str,
        opts: &FinetuneOptions,
        progress: &mut dyn FnMut(usize, f32),
    ) -> Result<Self, EmbedError> {
        check_options(opts)?;
        let positives = examples.iter().filter(|e| e.positive).count();
        if positives == 0 || positives == examples.len() {
            return Err(EmbedError::Invalid(
                "fine-tuning needs both positive and negative examples".into(),
            ));
        }
        let device = Device::Cpu;
        let (config, config_json) = read_config(base_dir)?;
        if opts.max_tokens > config.max_position_embeddings {
            return Err(EmbedError::Invalid(format!(
                "max_tokens {} exceeds the model's {} positions",
                opts.max_tokens, config.max_position_embeddings
            )));
        }
        let tokenizer = load_tokenizer(base_dir)?;
        let enc_map = VarMap::new();
        let bert = TrainableBert::new(
            &config,
            VarBuilder::from_varmap(&enc_map, DType::F32, &device),
        )
        .map_err(EmbedError::model("building the encoder"))?;
        let weights = base_dir.join(WEIGHTS_FILE);
        let mut enc_map = enc_map;
        enc_map
            .load(&weights)
            .map_err(EmbedError::model(weights.display().to_string()))?;
        let head_map = VarMap::new();
        let head = candle_nn::linear(
            config.hidden_size,
            1,
            VarBuilder::from_varmap(&head_map, DType::F32, &device).pp(HEAD_PREFIX),
        )
        .map_err(EmbedError::model("building the head"))?;

        let rows: Vec<(Vec<u32>, f32)> = examples
            .iter()
            .map(|e| {
                let ids = token_ids(&tokenizer, e.text)?;
                let first = windows(&ids, opts.max_tokens).into_iter().next();
                Ok((first.unwrap_or(ids), f32::from(u8::from(e.positive))))
            })
            .collect::<Result<_, EmbedError>>()?;

        let params = |lr| ParamsAdamW {
            lr,
            weight_decay: 0.01,
            ..Default::default()
        };
        let opt_err = EmbedError::model("optimiser");
        let mut enc_opt = AdamW::new(enc_map.all_vars(), params(opts.lr)).map_err(opt_err)?;
        let mut head_opt = AdamW::new(head_map.all_vars(), params(opts.head_lr))
            .map_err(EmbedError::model("optimiser"))?;
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut rng = XorShift(opts.seed | 1);
        for epoch in 0..opts.epochs {
            rng.shuffle(&mut order);
            let mut total = 0.0f32;
            for chunk in order.chunks(opts.batch) {
                let batch: Vec<(&[u32], f32)> =
                    chunk.iter().map(|&i| (&rows[i].0[..], rows[i].1)).collect();
                let mut step = || -> candle_core::Result<f32> {
                    let (ids, mask) = pad(&batch.iter().map(|b| b.0).collect::<Vec<_>>(), &device)?;
                    let y = Tensor::from_vec(
                        batch.iter().map(|b| b.1).collect::<Vec<f32>>(),
                        batch.len(),
                        &device,
                    )?;
                    let logit = head.forward(&bert.pooled(&ids, &mask)?)?.squeeze(1)?;
                    let loss = candle_nn::loss::binary_cross_entropy_with_logit(&logit, &y)?;
                    let grads = loss.backward()?;
                    enc_opt.step(&grads)?;
                    head_opt.step(&grads)?;
                    loss.to_scalar::<f32>()
                };
                total += step().map_err(EmbedError::model("training step"))? * chunk.len() as f32;
            }
            progress(epoch, total / rows.len().max(1) as f32);
        }
        // From here on the weights are only read.
        drop((enc_map, head_map));
        Ok(Self {
            bert,
            head,
            tokenizer,
            config_json,
            device,
            meta: FinetunedMeta {
                format_version: FORMAT_VERSION,
                label: label.to_string(),
                base_model: base_dir.file_name().map_or_else(
                    || base_dir.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                threshold: 0.5,
                options: opts.clone(),
                trained_at: crate::classifier::rfc3339_now(),
                examples: examples.len(),
                positives,
                cross_validation: None,
            },
        })
    }

    /// Loads a directory written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let meta_path = dir.join(FINETUNED_META_FILE);
        let text =
            std::fs::read(&meta_path).map_err(|e| EmbedError::io("reading", &meta_path, e))?;
        let meta: FinetunedMeta =
            serde_json::from_slice(&text).map_err(|source| EmbedError::Json {
                path: meta_path.clone(),
                source,
            })?;
        if meta.format_version != FORMAT_VERSION {
            return Err(EmbedError::Invalid(format!(
                "{}: format version {} (this build reads {FORMAT_VERSION})",
                meta_path.display(),
                meta.format_version
            )));
        }
        check_options(&meta.options)?;
        let device = Device::Cpu;
        let (config, config_json) = read_config(dir)?;
        let tokenizer = load_tokenizer(dir)?;
        let (vb, weights_path) = read_weights(dir, &device)?;
        let what = weights_path.display().to_string();
        let bert = TrainableBert::new(&config, vb.clone()).map_err(EmbedError::model(&*what))?;
        let head = candle_nn::linear(config.hidden_size, 1, vb.pp(HEAD_PREFIX))
            .map_err(EmbedError::model(what))?;
        Ok(Self {
            bert,
            head,
            tokenizer,
            config_json,
            device,
            meta,
        })
    }

    /// Writes `model.safetensors`, `config.json`, `tokenizer.json` and `finetuned.json`.
    pub fn save(&self, dir: &Path) -> Result<(), EmbedError> {
        std::fs::create_dir_all(dir).map_err(|e| EmbedError::io("creating", dir, e))?;
        let mut tensors: HashMap<String, Tensor> = self.bert.tensors();
        tensors.insert(format!("{HEAD_PREFIX}.weight"), self.head.weight().clone());
        if let Some(b) = self.head.bias() {
            tensors.insert(format!("{HEAD_PREFIX}.bias"), b.clone());
        }
        let weights = dir.join(WEIGHTS_FILE);
        candle_core::safetensors::save(&tensors, &weights)
            .map_err(EmbedError::model(weights.display().to_string()))?;
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| EmbedError::io("writing", &p, e))
        };
        write("config.json", &self.config_json)?;
        let tok = self
            .tokenizer
            .to_string(false)
            .map_err(EmbedError::tokenizer("serialising"))?;
        write("tokenizer.json", tok.as_bytes())?;
        let meta = serde_json::to_vec_pretty(&self.meta).map_err(|source| EmbedError::Json {
            path: dir.join(FINETUNED_META_FILE),
            source,
        })?;
        write(FINETUNED_META_FILE, &meta)
    }

    pub fn meta(&self) -> &FinetunedMeta {
        &self.meta
    }

    /// Sets the decision threshold and the figures that justify it.
    pub fn set_threshold(&mut self, threshold: f32, cross_validation: Option<Metrics>) {
        self.meta.threshold = threshold;
        self.meta.cross_validation = cross_validation;
    }

    /// The probability that each text is positive. A text longer than one window is cut
    /// into windows of `max_tokens` and its highest window counts.
    pub fn probabilities(&self, texts: &[&str]) -> Result<Vec<f32>, EmbedError> {
        let max = self.meta.options.max_tokens;
        let mut all: Vec<(usize, Vec<u32>)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let ids = token_ids(&self.tokenizer, text)?;
            all.extend(windows(&ids, max).into_iter().map(|w| (i, w)));
        }
        let mut best = vec![0f32; texts.len()];
        for chunk in all.chunks(self.meta.options.batch.max(1)) {
            let ids: Vec<&[u32]> = chunk.iter().map(|(_, w)| &w[..]).collect();
            let score = || -> candle_core::Result<Vec<f32>> {
                let (ids, mask) = pad(&ids, &self.device)?;
                let logit = self
                    .head
                    .forward(&self.bert.pooled(&ids, &mask)?)?
                    .squeeze(1)?;
                candle_nn::ops::sigmoid(&logit)?.to_vec1::<f32>()
            };
            let p = score().map_err(EmbedError::model("scoring"))?;
            for ((i, _), p) in chunk.iter().zip(p) {
                best[*i] = best[*i].max(p);
            }
        }
        Ok(best)
    }
}

/// Stratified k-fold cross-validation: for each fold, fine-tune on the other folds plus
/// `extra`, and score the fold. Returns one out-of-fold probability per `rows` entry.
pub fn cross_validate(
    base_dir: &Path,
    rows: &[Example<'_>],
    extra: &[Example<'_>],
    folds: usize,
    opts: &FinetuneOptions,
    progress: &mut dyn FnMut(usize, usize, f32),
) -> Result<Vec<f32>, EmbedError> {
    if folds < 2 {
        return Err(EmbedError::Invalid(
            "cross-validation needs 2 or more folds".into(),
        ));
    }
    let fold_of = stratified_folds(rows, folds, opts.seed);
    let mut scores = vec![0f32; rows.len()];
    for f in 0..folds {
        let mut train: Vec<Example<'_>> = extra.to_vec();
        train.extend(
            (0..rows.len())
                .filter(|&i| fold_of[i] != f)
                .map(|i| rows[i]),
        );
        let model = FinetunedClassifier::train(base_dir, &train, "positive", opts, &mut |e, l| {
            progress(f, e, l)
        })?;
        let held: Vec<usize> = (0..rows.len()).filter(|&i| fold_of[i] == f).collect();
        let texts: Vec<&str> = held.iter().map(|&i| rows[i].text).collect();
        for (i, p) in held.iter().zip(model.probabilities(&texts)?) {
            scores[*i] = p;
        }
    }
    Ok(scores)
}

/// The threshold in `candidates` with the best F1 on out-of-fold `scores`, and its figures.
pub fn best_f1_threshold(label: &str, scores: &[f32], labels: &[bool]) -> (f32, Metrics) {
    let mut best: Option<(f32, Metrics)> = None;
    for step in 1..20u8 {
        let t = f32::from(step) * 0.05;
        let m = metrics_at(label, scores, labels, t);
        if best.as_ref().is_none_or(|(_, b)| m.f1 > b.f1) {
            best = Some((t, m));
        }
    }
    best.unwrap_or_else(|| (0.5, metrics_at(label, scores, labels, 0.5)))
}

fn stratified_folds(rows: &[Example<'_>], folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    XorShift(seed | 1).shuffle(&mut order);
    let mut fold_of = vec![0usize; rows.len()];
    for positive in [false, true] {
        for (n, &i) in order
            .iter()
            .filter(|&&i| rows[i].positive == positive)
            .enumerate()
        {
            fold_of[i] = n % folds;
        }
    }
    fold_of
}

fn check_options(opts: &FinetuneOptions) -> Result<(), EmbedError> {
    if opts.max_tokens < 3 || opts.batch == 0 || opts.epochs == 0 {
        return Err(EmbedError::Invalid(
            "fine-tuning needs max_tokens ≥ 3, batch ≥ 1 and epochs ≥ 1".into(),
        ));
    }
    Ok(())
}

fn token_ids(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, EmbedError> {
    Ok(tokenizer
        .encode(text, true)
        .map_err(EmbedError::tokenizer("encoding"))?
        .get_ids()
        .to_vec())
}

/// `[CLS] … [SEP]` cut into windows of at most `max` tokens, each with its own `[CLS]` and
/// `[SEP]`. A text that fits is one window.
fn windows(ids: &[u32], max: usize) -> Vec<Vec<u32>> {
    if ids.len() <= max || ids.len() < 2 {
        return vec![ids.to_vec()];
    }
    let (cls, sep) = (ids[0], ids[ids.len() - 1]);
    ids[1..ids.len() - 1]
        .chunks(max - 2)
        .map(|body| {
            let mut w = Vec::with_capacity(body.len() + 2);
            w.push(cls);
            w.extend_from_slice(body);
            w.push(sep);
            w
        })
        .collect()
}

/// Right-padded ids and the attention mask, `[B, T]` each.
fn pad(rows: &[&[u32]], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let mut ids = Vec::with_capacity(rows.len() * t);
    let mut mask = Vec::with_capacity(rows.len() * t);
    for r in rows {
        ids.extend_from_slice(r);
        ids.extend(std::iter::repeat_n(0u32, t - r.len()));
        mask.extend(std::iter::repeat_n(1f32, r.len()));
        mask.extend(std::iter::repeat_n(0f32, t - r.len()));
    }
    Ok((
        Tensor::from_vec(ids, (rows.len(), t), device)?,
        Tensor::from_vec(mask, (rows.len(), t), device)?,
    ))
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Layer norm from plain tensor ops, so that gradients flow through it.
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
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln1: LayerNorm,
    inter: Linear,
    out: Linear,
    ln2: LayerNorm,
}

/// BERT's encoder, mean-pooled over real tokens (not normalised: the head reads the
/// pooled vector as it is).
struct TrainableBert {
    word: candle_nn::Embedding,
    pos: candle_nn::Embedding,
    kind: candle_nn::Embedding,
    ln: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
}

impl TrainableBert {
    fn new(c: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        if c.num_attention_heads == 0 || !h.is_multiple_of(c.num_attention_heads) {
            return Err(candle_core::Error::Msg(format!(
                "hidden size {h} is not a multiple of {} heads",
                c.num_attention_heads
            )));
        }
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

    /// Every weight by its name in the base model's file.
    fn tensors(&self) -> HashMap<String, Tensor> {
        let mut t = HashMap::new();
        let mut put = |name: String, x: &Tensor| {
            t.insert(name, x.clone());
        };
        let linear = |name: String, l: &Linear, put: &mut dyn FnMut(String, &Tensor)| {
            put(format!("{name}.weight"), l.weight());
            if let Some(b) = l.bias() {
                put(format!("{name}.bias"), b);
            }
        };
        let norm = |name: String, n: &LayerNorm, put: &mut dyn FnMut(String, &Tensor)| {
            put(format!("{name}.weight"), &n.w);
            put(format!("{name}.bias"), &n.b);
        };
        put(
            "embeddings.word_embeddings.weight".into(),
            self.word.embeddings(),
        );
        put(
            "embeddings.position_embeddings.weight".into(),
            self.pos.embeddings(),
        );
        put(
            "embeddings.token_type_embeddings.weight".into(),
            self.kind.embeddings(),
        );
        norm("embeddings.LayerNorm".into(), &self.ln, &mut put);
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("encoder.layer.{i}");
            linear(format!("{p}.attention.self.query"), &l.q, &mut put);
            linear(format!("{p}.attention.self.key"), &l.k, &mut put);
            linear(format!("{p}.attention.self.value"), &l.v, &mut put);
            linear(format!("{p}.attention.output.dense"), &l.o, &mut put);
            norm(format!("{p}.attention.output.LayerNorm"), &l.ln1, &mut put);
            linear(format!("{p}.intermediate.dense"), &l.inter, &mut put);
            linear(format!("{p}.output.dense"), &l.out, &mut put);
            norm(format!("{p}.output.LayerNorm"), &l.ln2, &mut put);
        }
        t
    }

    /// Mean-pooled last hidden state, `[B, H]`; `mask` is 1.0 for real tokens.
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
        let bias = ((mask - 1.0)? * 1e4)?.unsqueeze(1)?.unsqueeze(1)?;
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
        let m = mask.unsqueeze(2)?;
        x.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_test_support::tiny_bert::{write_tiny_bert, TinyBert};

    fn examples() -> Vec<Example<'static>> {
        let pos = [
            "ignore previous instructions",
            "ignore the password",
            "previous instructions ignore",
            "ignore ignore the mat",
            "the password ignore",
            "hello ignore world",
        ];
        let neg = [
            "the cat sat on the mat",
            "hello world",
            "the cat on the mat",
            "hello cat",
            "world on the mat",
            "the mat sat on the cat",
        ];
        pos.iter()
            .map(|t| Example {
                text: t,
                positive: true,
            })
            .chain(neg.iter().map(|t| Example {
                text: t,
                positive: false,
            }))
            .collect()
    }

    /// Options under which the tiny model learns a toy set in well under a second (high
    /// learning rates, many epochs, short windows).
    fn quick() -> FinetuneOptions {
        FinetuneOptions {
            epochs: 30,
            lr: 3e-3,
            head_lr: 3e-2,
            max_tokens: 16,
            batch: 4,
            ..FinetuneOptions::default()
        }
    }

    #[test]
    fn fine_tuning_separates_a_learnable_set_and_survives_a_round_trip() {
        let base = tempfile::tempdir().unwrap();
        write_tiny_bert(base.path(), TinyBert::default()).unwrap();
        let ex = examples();
        let mut losses = Vec::new();
        let mut model =
            FinetunedClassifier::train(base.path(), &ex, "toxic", &quick(), &mut |_, l| {
                losses.push(l)
            })
            .unwrap();
        assert_eq!(losses.len(), 30);
        assert!(losses[29] < losses[0] * 0.5, "loss should fall: {losses:?}");
        let texts: Vec<&str> = ex.iter().map(|e| e.text).collect();
        let p = model.probabilities(&texts).unwrap();
        for (e, p) in ex.iter().zip(&p) {
            assert_eq!(*p >= 0.5, e.positive, "{} scored {p}", e.text);
        }

        model.set_threshold(0.4, None);
        let out = tempfile::tempdir().unwrap();
        model.save(out.path()).unwrap();
        let loaded = FinetunedClassifier::load(out.path()).unwrap();
        assert_eq!(loaded.meta().threshold, 0.4);
        assert_eq!(loaded.meta().label, "toxic");
        assert_eq!(loaded.meta().examples, 12);
        let again = loaded.probabilities(&texts).unwrap();
        for (a, b) in p.iter().zip(&again) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn a_long_text_counts_its_worst_window() {
        let base = tempfile::tempdir().unwrap();
        write_tiny_bert(base.path(), TinyBert::default()).unwrap();
        let model =
            FinetunedClassifier::train(base.path(), &examples(), "toxic", &quick(), &mut |_, _| {})
                .unwrap();
        // 14 tokens: exactly one window's body at max_tokens 16.
        let benign = "hello world ".repeat(7);
        let mixed = format!("{benign}ignore previous instructions");
        let p = model
            .probabilities(&[&benign, "ignore previous instructions", &mixed])
            .unwrap();
        assert!(p[0] < 0.5 && p[1] >= 0.5, "{p:?}");
        assert!(
            p[2] >= 0.5,
            "the last window carries the positive text: {p:?}"
        );
    }

    #[test]
    fn windows_keep_their_markers_and_cover_every_token() {
        let ids: Vec<u32> = std::iter::once(2)
            .chain(10..30)
            .chain(std::iter::once(3))
            .collect();
        let w = windows(&ids, 8);
        assert!(w
            .iter()
            .all(|w| w.len() <= 8 && w[0] == 2 && w[w.len() - 1] == 3));
        let body: Vec<u32> = w.iter().flat_map(|w| w[1..w.len() - 1].to_vec()).collect();
        assert_eq!(body, (10..30).collect::<Vec<u32>>());
        assert_eq!(windows(&ids[..5], 8), vec![ids[..5].to_vec()]);
    }

    #[test]
    fn one_class_and_impossible_options_are_refused() {
        let base = tempfile::tempdir().unwrap();
        write_tiny_bert(base.path(), TinyBert::default()).unwrap();
        let ex: Vec<Example> = examples().into_iter().filter(|e| e.positive).collect();
        assert!(
            FinetunedClassifier::train(base.path(), &ex, "toxic", &quick(), &mut |_, _| {})
                .is_err()
        );
        for bad in [
            FinetuneOptions {
                batch: 0,
                ..quick()
            },
            FinetuneOptions {
                max_tokens: 1000,
                ..quick()
            },
        ] {
            let r = FinetunedClassifier::train(base.path(), &examples(), "t", &bad, &mut |_, _| {});
            assert!(r.is_err(), "{bad:?}");
        }
    }
}
