#!/usr/bin/env bash
# Issue #3 targets in one run: for each catalog model, the raw engine's single-stream decode
# speed (median of RUNS), then `floodgate bench` against `floodgate serve` at 1 and 16 concurrent streams,
# RUNS times; prints the median output tok/s, the 16/1 ratio and the server/raw ratio.
# Two 16/1 ratios: of output tok/s (wall clock, prefill and ramp-up included) and of
# aggregate decode tok/s (concurrency / per-request inter-token latency p50: the decode
# rate of the running batch, which is what llama.cpp's own batched bench reports).
#   bench/engine_targets.sh            (models must be cached: floodgate models pull ...)
#   MODELS="gemma3-270m:completions" RUNS=3 bench/engine_targets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export FLOODGATE_HOME=${FLOODGATE_HOME:-/var/cache/floodgate}
RUNS=${RUNS:-3}
MAX_TOKENS=${MAX_TOKENS:-64}
PORT=${PORT:-18790}
OUT=bench/out/targets
mkdir -p "$OUT"
cargo build -q --release --bin floodgate --example raw_greedy -p floodgate -p floodgate-engine
median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.1f}")' "$@"; }
printf '| model | api | raw engine decode tok/s (median step) | server 1-stream decode tok/s (1/ITL p50) | server/raw | server 1-stream output tok/s | 16-stream output tok/s | 16/1 output | 16-stream decode tok/s (16/ITL p50) | 16/1 decode | TTFT p99 @16 ms |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n' > "$OUT/summary.md"
for spec in ${MODELS:-smollm2-135m:chat gemma3-270m:completions qwen2.5-coder-1.5b:chat}; do
  model=${spec%%:*}; api=${spec##*:}
  gguf=$FLOODGATE_HOME/models/$model/$model.gguf
  raws=()
  for run in $(seq 1 "$RUNS"); do
    raws+=("$(target/release/examples/raw_greedy "$gguf" "Write a short story about a lighthouse keeper." plain 128 2>&1 >/dev/null | sed -n 's/.*= \([0-9.]*\) tok\/s.*/\1/p')")
  done
  raw=$(median "${raws[@]}")
  printf '[[model]]\nname = "%s"\n' "$model" > "$OUT/$model.toml"
  RUST_LOG=warn target/release/floodgate serve --config "$OUT/$model.toml" --listen 127.0.0.1:$PORT > "$OUT/$model.log" 2>&1 &
  pid=$!
  until curl -sf http://127.0.0.1:$PORT/readyz >/dev/null; do sleep 0.2; done
  ones=(); decodes=(); sixteens=(); decodes16=(); ttfts=()
  for run in $(seq 1 "$RUNS"); do
    target/release/floodgate bench --url http://127.0.0.1:$PORT --model "$model" --api "$api" \
      --concurrency 1,16 --max-tokens "$MAX_TOKENS" --out "$OUT" --label "$model-run$run" > "$OUT/$model-run$run.txt" 2>&1
    ones+=("$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([l for l in d["levels"] if l["concurrency"]==1][0]["output_tokens_per_s"])' "$OUT/$model-run$run-bench.json")")
    decodes+=("$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(1000/[l for l in d["levels"] if l["concurrency"]==1][0]["itl_ms"]["p50"])' "$OUT/$model-run$run-bench.json")")
    sixteens+=("$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([l for l in d["levels"] if l["concurrency"]==16][0]["output_tokens_per_s"])' "$OUT/$model-run$run-bench.json")")
    decodes16+=("$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(16000/[l for l in d["levels"] if l["concurrency"]==16][0]["itl_ms"]["p50"])' "$OUT/$model-run$run-bench.json")")
    ttfts+=("$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([l for l in d["levels"] if l["concurrency"]==16][0]["ttft_ms"]["p99"])' "$OUT/$model-run$run-bench.json")")
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  one=$(median "${ones[@]}"); dec=$(median "${decodes[@]}"); six=$(median "${sixteens[@]}"); dec16=$(median "${decodes16[@]}"); ttft=$(median "${ttfts[@]}")
  ratio=$(python3 -c "print(f'{$six/$one:.2f}')"); vsraw=$(python3 -c "print(f'{$dec/$raw:.2f}')"); dratio=$(python3 -c "print(f'{$dec16/$dec:.2f}')")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$model" "$api" "$raw" "$dec" "$vsraw" "$one" "$six" "$ratio" "$dec16" "$dratio" "$ttft" >> "$OUT/summary.md"
done
cat "$OUT/summary.md"
echo "medians of $RUNS runs, max_tokens $MAX_TOKENS, temperature 0, ignore_eos"
