#!/usr/bin/env python3
"""Startup time, single-request latency, decode speed and peak RSS of `floodgate serve`.

Usage: python3 bench/experiments/serve_figures.py [--binary target/release/floodgate] [--runs 3]
Needs the catalog models in the cache (`floodgate models pull smollm2-135m
qwen2.5-coder-1.5b gemma3-270m`). Prints a markdown table of medians.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

MODELS = [
    ("smollm2-135m", "chat"),
    ("qwen2.5-coder-1.5b", "chat"),
    ("gemma3-270m", "text"),
]
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def post_stream(url, body):
    """Returns (ttft_s, total_s, token_times) for one streamed request."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    start = time.perf_counter()
    times, usage = [], None
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                usage = chunk["usage"]
            for c in chunk.get("choices", []):
                piece = c.get("text") if "text" in c else (c.get("delta") or {}).get("content")
                if piece:
                    times.append(time.perf_counter())
    total = time.perf_counter() - start
    return times[0] - start, total, times, usage


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/floodgate")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "floodgate.toml")
        with open(cfg, "w") as f:
            f.write("[models]\npull_missing = false\n")
            for name, _ in MODELS:
                f.write(f'[[model]]\nname = "{name}"\nkv_cache_tokens = 4096\n')
        started = time.perf_counter()
        proc = subprocess.Popen(
            [args.binary, "serve", "--config", cfg, "--listen", "127.0.0.1:0"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        base = None
        for line in proc.stderr:
            m = re.search(r"listening on (http://[0-9.:]+)", line)
            if m:
                base = m.group(1)
                break
        if base is None:
            sys.exit("server did not start")
        listening = time.perf_counter() - started
        # Keep draining stderr so the server never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if proc.poll() is not None:
                sys.exit("server exited")
            time.sleep(0.02)
        ready = time.perf_counter() - started

        rows = []
        for name, kind in MODELS:
            if kind == "chat":
                url = base + "/v1/chat/completions"
                body = {"model": name, "messages": [{"role": "user", "content": PROMPT}]}
            else:
                url = base + "/v1/completions"
                body = {"model": name, "prompt": PROMPT}
            body.update({"max_tokens": args.max_tokens, "temperature": 0, "ignore_eos": True,
                         "stream": True, "stream_options": {"include_usage": True}})
            post_stream(url, dict(body, max_tokens=8))  # warm-up
            ttfts, totals, decode = [], [], []
            for _ in range(args.runs):
                ttft, total, times, usage = post_stream(url, body)
                ttfts.append(ttft)
                totals.append(total)
                n = usage["completion_tokens"]
                decode.append((n - 1) / (times[-1] - times[0]))
            rows.append((name, usage["prompt_tokens"], n, statistics.median(ttfts),
                         statistics.median(totals), statistics.median(decode)))
        with open(f"/proc/{proc.pid}/status") as f:
            hwm = next(l for l in f if l.startswith("VmHWM")).split()[1]
        proc.terminate()
        code = proc.wait(timeout=60)

    print(f"startup: listening after {listening:.2f} s, ready (3 models loaded) after {ready:.2f} s")
    print(f"peak RSS (VmHWM) with all three models loaded: {int(hwm) / 1024:.0f} MiB; exit code after SIGTERM: {code}")
    print()
    print(f"| model | prompt tokens | completion tokens | TTFT (s) | request latency (s) | decode tok/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, p, n, ttft, total, tps in rows:
        print(f"| {name} | {p} | {n} | {ttft:.3f} | {total:.2f} | {tps:.1f} |")
    print(f"\nmedians of {args.runs} runs, temperature 0, one request at a time, streamed")


if __name__ == "__main__":
    main()
