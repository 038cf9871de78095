#!/usr/bin/env python3
"""Does a long prompt stall running streams? (issue #3 target)

Starts N streams decoding, then sends one ~2k-token prompt, and reports the running
streams' inter-token latency median and p99 over the whole run, plus the worst gap seen
while the long prompt was being prefilled. A baseline run first does the same without the
long prompt: with output PII redaction on, text leaves a word at a time (a word could still
become an e-mail address), so the gaps between SSE chunks vary with word length even when
nothing else runs; the baseline shows how much of the ratio that is.

Usage: python3 bench/experiments/long_prompt_stall.py --url http://127.0.0.1:8080 --model smollm2-135m
"""
import argparse
import json
import statistics
import threading
import time
import urllib.request

FILLER = ("The river runs past the mill and under the old stone bridge, where the "
          "children fish for trout in the long summer evenings. ")


def stream(url, body, times, done):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                break
            if line.startswith("data:"):
                chunk = json.loads(line[5:])
                for c in chunk.get("choices", []):
                    if (c.get("delta") or {}).get("content"):
                        times.append(time.perf_counter())
    done.append(time.perf_counter())


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run_streams(url, args, long_prompt):
    all_times = [[] for _ in range(args.streams)]
    threads = []
    for i in range(args.streams):
        body = {"model": args.model, "max_tokens": args.max_tokens, "stream": True,
                "ignore_eos": True, "temperature": 0,
                "messages": [{"role": "user", "content": f"Tell story number {i} about a lighthouse."}]}
        t = threading.Thread(target=stream, args=(url, body, all_times[i], []))
        t.start()
        threads.append(t)
    sent = prefill_end = None
    if long_prompt:
        time.sleep(1.0)
        # A fresh opening each run, so the prompt is never served from the prefix cache.
        long_text = f"Report {time.time_ns()}.\n" + FILLER * (args.prompt_words // len(FILLER.split()) + 1)
        long_body = {"model": args.model, "max_tokens": 1, "stream": True,
                     "messages": [{"role": "user", "content": long_text + "\nSummarise."}]}
        long_times, long_done = [], []
        sent = time.perf_counter()
        lt = threading.Thread(target=stream, args=(url, long_body, long_times, long_done))
        lt.start()
        lt.join()
        prefill_end = long_times[0] if long_times else long_done[0]
    for t in threads:
        t.join()
    gaps, during = [], []
    for ts in all_times:
        for a, b in zip(ts, ts[1:]):
            gaps.append(b - a)
            if sent is not None and sent <= a <= prefill_end:
                during.append(b - a)
    return gaps, during, (prefill_end - sent if sent is not None else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=300)
    ap.add_argument("--prompt-words", type=int, default=1500)
    args = ap.parse_args()
    url = args.url.rstrip("/") + "/v1/chat/completions"
    base, _, _ = run_streams(url, args, long_prompt=False)
    gaps, during, ttft = run_streams(url, args, long_prompt=True)
    bmed, bp99 = statistics.median(base), pct(base, 99)
    med, p99 = statistics.median(gaps), pct(gaps, 99)
    print(f"{args.streams} streams x {args.max_tokens} tokens; long prompt ~{args.prompt_words} words sent after 1 s, "
          f"its first token after {ttft:.2f} s")
    print(f"baseline (no long prompt): inter-token median {bmed*1e3:.1f} ms, p99 {bp99*1e3:.1f} ms, "
          f"p99/median {bp99/bmed:.2f}")
    print(f"with the long prompt: inter-token median {med*1e3:.1f} ms, p99 {p99*1e3:.1f} ms, "
          f"p99/median {p99/med:.2f}; worst gap during the long prefill {max(during or [0])*1e3:.1f} ms")


if __name__ == "__main__":
    main()
