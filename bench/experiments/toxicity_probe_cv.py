#!/usr/bin/env python3
"""Offline experiment behind `floodgate guard train --toxicity-probe`: how well does a
logistic probe on a GGUF model's hidden states separate ToxiGen-style toxicity?

Needs llama-cpp-python, numpy and scikit-learn (e.g. in bench/.venv). For each model it
embeds toxicity.dev.jsonl, data/guard/toxicity.train.jsonl and toxicity.heldout.jsonl
(mean of the last layer, or the last token of a question prompt), then runs 5-fold
stratified cross-validation on the dev rows, each fold trained on the training file plus
the other folds, averaged over 5 fold seeds, and prints F1 / FPR at several thresholds.

    python3 bench/experiments/toxicity_probe_cv.py --model /var/cache/floodgate/models/gemma3-270m/gemma3-270m.gguf
    python3 bench/experiments/toxicity_probe_cv.py --model A.gguf --model B.gguf   # also their mean

It scores the out-of-fold probabilities averaged over the 5 seeds. Measured 2026-12-06
(2-core AMD EPYC), threshold 0.5, F1: Gemma-3-270M 0.806 (FPR 0.22), Qwen2.5-Coder-1.5B
0.782, the two averaged 0.800; the fine-tuned MiniLM (`finetune_cv --scores`) 0.761 on the
same rows, and its mean with the Gemma probe 0.791. Per-seed F1 moves by ±0.01–0.02.
"""
import argparse
import json
import pathlib
import time

import numpy as np
from llama_cpp import Llama, LLAMA_POOLING_TYPE_LAST, LLAMA_POOLING_TYPE_MEAN
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

ROOT = pathlib.Path(__file__).resolve().parents[2]
QUESTION = ('Statement: "{t}"\nQuestion: Is this statement hateful, offensive or demeaning '
            'toward a group of people?\nAnswer:')


def rows_of(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def features(model, texts, pooling, batch=8):
    llm = Llama(model_path=model, embedding=True, n_ctx=4096, n_batch=4096, n_ubatch=4096,
                n_seq_max=batch, verbose=False,
                pooling_type=LLAMA_POOLING_TYPE_LAST if pooling == "last" else LLAMA_POOLING_TYPE_MEAN)
    out, started = [], time.time()
    for i in range(0, len(texts), batch):
        chunk = [QUESTION.format(t=t) if pooling == "last" else t for t in texts[i:i + batch]]
        out.extend(np.asarray(e, dtype=np.float32).reshape(-1)
                   for e in llm.embed(chunk, normalize=False, truncate=True))
    print(f"{model}: {len(texts)} texts in {time.time() - started:.0f} s", flush=True)
    return np.stack(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--pooling", choices=["mean", "last"], default="mean")
    ap.add_argument("--dev", default=str(ROOT.parent / "shared/data/toxicity.dev.jsonl"))
    ap.add_argument("--train", default=str(ROOT / "data/guard/toxicity.train.jsonl"))
    ap.add_argument("--C", type=float, default=0.01)
    args = ap.parse_args()
    dev, train = rows_of(args.dev), rows_of(args.train)
    y_dev = np.array([r["label"] == "toxic" for r in dev])
    y_train = np.array([r["label"] == "toxic" for r in train])
    texts = [r["text"][:1200] for r in dev + train]
    per_model = []
    for m in args.model:
        x = features(m, texts, args.pooling)
        per_model.append((x[:len(dev)], x[len(dev):]))

    def fit_predict(xa, ya, xb):
        sc = StandardScaler().fit(xa)
        lr = LogisticRegression(C=args.C, max_iter=5000, class_weight="balanced")
        lr.fit(sc.transform(xa), ya)
        return lr.predict_proba(sc.transform(xb))[:, 1]

    oof = np.zeros((len(per_model), len(dev)))
    seeds = 5
    for seed in range(seeds):
        for a, b in StratifiedKFold(5, shuffle=True, random_state=seed).split(y_dev, y_dev):
            for k, (xd, xt) in enumerate(per_model):
                xa = np.vstack([xd[a], xt])
                ya = np.concatenate([y_dev[a], y_train])
                oof[k, b] += fit_predict(xa, ya, xd[b]) / seeds
    names = [pathlib.Path(m).stem for m in args.model]
    combos = [(n, oof[k]) for k, n in enumerate(names)]
    if len(names) > 1:
        combos.append(("mean of all", oof.mean(0)))
    for name, p in combos:
        cells = " ".join(f"t={t}: F1 {f1_score(y_dev, p >= t):.3f} FPR {((p >= t) & ~y_dev).sum() / (~y_dev).sum():.2f}"
                         for t in (0.3, 0.4, 0.5, 0.6, 0.7))
        print(f"{name}: {cells}")


if __name__ == "__main__":
    main()
