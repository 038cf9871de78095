#!/usr/bin/env bash
# Floodgate against llama.cpp's own servers: same GGUF, same prompts, same `floodgate bench`
# arguments. Writes bench/out/<label>-bench.{md,json,png} per server and bench/out/compare.md.
#
#   bench/compare_llamacpp.sh                      # all three servers
#   SERVERS="floodgate llama-server" bench/compare_llamacpp.sh
#
# Servers (each one that cannot be set up is skipped with a message, never fatal):
#   floodgate        target/release/floodgate serve (built if missing), batch size 16
#   floodgate-noredact  the same with output PII redaction off, as llama.cpp's servers have none
#   llama-server     llama.cpp's C++ server, built with cmake from the first llama.cpp source
#                    tree that contains tools/server (LLAMA_CPP_SRC, the sources vendored in
#                    ~/.cargo/registry for llama-cpp-sys-2, or the llama-cpp-python sdist),
#                    run with --parallel 16 --cont-batching -c 16384
#   llama-cpp-python python -m llama_cpp.server from a venv in bench/.venv, built from source
#                    for the CPU by pip (several minutes the first time). It has no batched
#                    serving: concurrent requests wait for each other.
#
# Environment: MODEL (GGUF path; default $FLOODGATE_HOME/models/smollm2-135m/smollm2-135m.gguf),
# MODEL_NAME (smollm2-135m), CONCURRENCY (1,4,16), MAX_TOKENS (64), REQUESTS (per level;
# default the bench's own), WARMUP (2), PORT_BASE (18740), BENCH_ARGS (more bench flags),
# SERVERS (which to run), READY_TIMEOUT (seconds, 300).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
LOGS=$OUT/logs
mkdir -p "$LOGS"

if [[ -z "${FLOODGATE_HOME:-}" && -d /var/cache/floodgate ]]; then
    export FLOODGATE_HOME=/var/cache/floodgate
fi
MODEL_NAME=${MODEL_NAME:-smollm2-135m}
MODEL=${MODEL:-${FLOODGATE_HOME:-$HOME/.local/share/floodgate}/models/$MODEL_NAME/$MODEL_NAME.gguf}
CONCURRENCY=${CONCURRENCY:-1,4,16}
MAX_TOKENS=${MAX_TOKENS:-64}
WARMUP=${WARMUP:-2}
PORT_BASE=${PORT_BASE:-18740}
READY_TIMEOUT=${READY_TIMEOUT:-300}
SERVERS=${SERVERS:-"floodgate llama-server llama-cpp-python"}
JOBS=$(nproc 2>/dev/null || echo 2)
VENV=$ROOT/bench/.venv
LLAMA_BUILD=$ROOT/bench/.llama-build
LLAMA_SRC_CACHE=$ROOT/bench/.llama-src
FLOODGATE=$ROOT/target/release/floodgate
# llama.cpp's servers get the same CPU extensions as Floodgate's own build
# (.cargo/config.toml): native, without AMX (faults in many VMs) and AVX512-FP16 (scalar
# flash attention for 64-wide heads).
LLAMA_CPU_FLAGS=""
[[ $(uname -m) == x86_64 ]] && LLAMA_CPU_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -mno-avx512fp16"

[[ -f "$MODEL" ]] || { echo "model not found: $MODEL (set MODEL or FLOODGATE_HOME, or run floodgate models pull $MODEL_NAME)" >&2; exit 2; }

log() { echo "== $*" >&2; }

# Servers this script started, stopped on exit (only these pids, never by name).
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# wait_ready URL PID: poll until URL answers 200, the process dies, or the timeout.
wait_ready() {
    local url=$1 pid=$2 deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
        sleep 0.5
    done
    return 1
}

stop() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_args=(--model "$MODEL_NAME" --concurrency "$CONCURRENCY" --max-tokens "$MAX_TOKENS"
    --warmup "$WARMUP" --out "$OUT")
[[ -n "${REQUESTS:-}" ]] && bench_args+=(--requests-per-level "$REQUESTS")
# shellcheck disable=SC2206
[[ -n "${BENCH_ARGS:-}" ]] && bench_args+=($BENCH_ARGS)

RAN=()
SKIPPED=()

# run_bench LABEL URL: the same benchmark against every server.
run_bench() {
    local label=$1 url=$2
    log "$label: floodgate bench against $url"
    if "$FLOODGATE" bench --url "$url" --label "$label" "${bench_args[@]}" | tee "$LOGS/$label-bench.txt"; then
        RAN+=("$label")
    else
        SKIPPED+=("$label: benchmark failed (see $LOGS/$label-bench.txt)")
    fi
}

# --- floodgate (also provides the bench binary) -------------------------------------------
if [[ ! -x "$FLOODGATE" ]]; then
    log "building target/release/floodgate"
    cargo build --release -p floodgate
fi

# $1: label; floodgate-noredact serves with output PII redaction off (llama.cpp's servers
# have none; with it on, streamed text leaves a word at a time). FLOODGATE_MODEL_EXTRA: more
# lines for the [[model]] table (e.g. "max_wait_ms = 10").
run_floodgate() {
    local label=$1 port=$((PORT_BASE + 0)) cfg=$OUT/$1-compare.toml
    {
        [[ $label == floodgate-noredact ]] && printf '[guard]\nredact_output_pii = false\n\n'
        printf '[[model]]\nname = "%s"\npath = "%s"\nkv_cache_tokens = 16384\nmax_batch_size = 16\n%b\n' \
            "$MODEL_NAME" "$MODEL" "${FLOODGATE_MODEL_EXTRA:-}"
    } >"$cfg"
    log "$label: serving on :$port ($LOGS/$label.log)"
    "$FLOODGATE" serve --config "$cfg" --listen "127.0.0.1:$port" >"$LOGS/$label.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if wait_ready "http://127.0.0.1:$port/readyz" "$pid"; then
        run_bench "$label" "http://127.0.0.1:$port"
    else
        SKIPPED+=("$label: server did not become ready (see $LOGS/$label.log)")
    fi
    stop "$pid"
}

# --- llama-server ------------------------------------------------------------------------
find_llama_src() {
    local c
    for c in ${LLAMA_CPP_SRC:-} "$HOME"/.cargo/registry/src/*/llama-cpp-sys-2-*/llama.cpp \
        "$LLAMA_SRC_CACHE"/llama_cpp_python-*/vendor/llama.cpp; do
        if [[ -f "$c/CMakeLists.txt" && -n "$(ls "$c"/tools/server/*.cpp 2>/dev/null)" ]]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

build_llama_server() {
    local bin=$LLAMA_BUILD/bin/llama-server src
    [[ -x "$bin" ]] && { echo "$bin"; return 0; }
    if ! src=$(find_llama_src); then
        # The crate's vendored copy leaves out tools/server; llama-cpp-python's sdist has it.
        log "llama-server: no llama.cpp source with tools/server; fetching the llama-cpp-python sdist" >&2
        mkdir -p "$LLAMA_SRC_CACHE"
        local py=python3
        [[ -x "$VENV/bin/python" ]] && py=$VENV/bin/python
        if "$py" -m pip download --no-deps --no-binary :all: -d "$LLAMA_SRC_CACHE" llama-cpp-python >"$LOGS/llama-src.log" 2>&1; then
            (cd "$LLAMA_SRC_CACHE" && for f in llama_cpp_python-*.tar.gz; do tar xzf "$f"; done)
        fi
        src=$(find_llama_src) || return 1
    fi
    log "llama-server: building from $src ($LOGS/llama-server-build.log)" >&2
    {
        CFLAGS="$LLAMA_CPU_FLAGS" CXXFLAGS="$LLAMA_CPU_FLAGS" cmake -S "$src" -B "$LLAMA_BUILD" -DCMAKE_BUILD_TYPE=Release \
            -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_CURL=OFF -DGGML_CUDA=OFF &&
            cmake --build "$LLAMA_BUILD" --target llama-server -j "$JOBS"
    } >"$LOGS/llama-server-build.log" 2>&1 || return 1
    [[ -x "$bin" ]] && echo "$bin"
}

run_llama_server() {
    local port=$((PORT_BASE + 1)) bin
    if ! bin=$(build_llama_server); then
        SKIPPED+=("llama-server: could not build it (see $LOGS/llama-server-build.log or $LOGS/llama-src.log)")
        return
    fi
    log "llama-server: serving on :$port ($LOGS/llama-server.log)"
    "$bin" -m "$MODEL" --host 127.0.0.1 --port "$port" --parallel 16 --cont-batching -c 16384 \
        --alias "$MODEL_NAME" >"$LOGS/llama-server.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if wait_ready "http://127.0.0.1:$port/health" "$pid"; then
        run_bench llama-server "http://127.0.0.1:$port"
    else
        SKIPPED+=("llama-server: did not become ready (see $LOGS/llama-server.log)")
    fi
    stop "$pid"
}

# --- llama-cpp-python --------------------------------------------------------------------
setup_llama_cpp_python() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
        return 0
    fi
    log "llama-cpp-python: installing into bench/.venv (compiles llama.cpp; several minutes; $LOGS/pip.log)"
    python3 -m venv "$VENV" >"$LOGS/pip.log" 2>&1 || return 1
    # The same CPU flags as llama-server above: pip's native build enables AMX wherever the
    # CPU advertises it, and its server then dies in the AMX matmul (seen on a KVM Xeon).
    CFLAGS="$LLAMA_CPU_FLAGS" CXXFLAGS="$LLAMA_CPU_FLAGS" \
        CMAKE_ARGS="-DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF" \
        CMAKE_BUILD_PARALLEL_LEVEL=$JOBS \
        "$VENV/bin/python" -m pip install --no-cache-dir --no-binary llama-cpp-python 'llama-cpp-python[server]' \
        >>"$LOGS/pip.log" 2>&1 || return 1
}

run_llama_cpp_python() {
    local port=$((PORT_BASE + 2))
    if ! setup_llama_cpp_python; then
        SKIPPED+=("llama-cpp-python: install failed (see $LOGS/pip.log)")
        return
    fi
    log "llama-cpp-python: serving on :$port ($LOGS/llama-cpp-python.log)"
    # interrupt_requests=False: by default a new request aborts the one being streamed.
    "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias "$MODEL_NAME" \
        --n_ctx 8192 --host 127.0.0.1 --port "$port" --interrupt_requests False \
        >"$LOGS/llama-cpp-python.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if wait_ready "http://127.0.0.1:$port/v1/models" "$pid"; then
        run_bench llama-cpp-python "http://127.0.0.1:$port"
    else
        SKIPPED+=("llama-cpp-python: did not become ready (see $LOGS/llama-cpp-python.log)")
    fi
    stop "$pid"
}

for server in $SERVERS; do
    case $server in
        floodgate | floodgate-noredact) run_floodgate "$server" ;;
        llama-server) run_llama_server ;;
        llama-cpp-python) run_llama_cpp_python ;;
        *) echo "unknown server $server" >&2; exit 2 ;;
    esac
done

# --- compare.md ------------------------------------------------------------------------
python3 - "$OUT" "$MODEL" "${RAN[@]+"${RAN[@]}"}" -- "${SKIPPED[@]+"${SKIPPED[@]}"}" <<'EOF'
import json, os, sys
out, model, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
sep = rest.index("--")
labels, skipped = rest[:sep], rest[sep + 1:]
reports = {l: json.load(open(os.path.join(out, f"{l}-bench.json"))) for l in labels}
lines = ["# Floodgate vs llama.cpp servers", "",
         f"Model `{os.path.basename(model)}`; every server got the same `floodgate bench` run "
         "(same prompts, max_tokens, ignore_eos, temperature).", ""]
if reports:
    first = next(iter(reports.values()))
    lines += [f"max_tokens {first['max_tokens']}, ignore_eos {json.dumps(first['ignore_eos'])}, "
              f"temperature {first['temperature']}, prompts {first['prompts']}", ""]
    levels = sorted({l["concurrency"] for r in reports.values() for l in r["levels"]})
    def cell(r, c, f):
        for l in r["levels"]:
            if l["concurrency"] == c:
                return f(l)
        return "–"
    def fmt(x, spec=".1f"):
        return "–" if x is None else format(x, spec)
    for title, f in [
        ("Output tokens/s", lambda l: fmt(l["output_tokens_per_s"])),
        ("TTFT p50 (ms)", lambda l: fmt((l["ttft_ms"] or {}).get("p50"))),
        ("Inter-token latency p50 (ms)", lambda l: fmt((l["itl_ms"] or {}).get("p50"))),
        ("Tokens per request (mean)", lambda l: fmt(l["tokens_per_request_mean"])),
        ("Errors", lambda l: str(l["errors"])),
    ]:
        lines += [f"## {title}", "", "| concurrency | " + " | ".join(reports) + " |",
                  "|---:|" + "---:|" * len(reports)]
        for c in levels:
            lines.append(f"| {c} | " + " | ".join(cell(r, c, f) for r in reports.values()) + " |")
        lines.append("")
    lines += ["## Full tables", ""]
    for l in reports:
        lines.append(open(os.path.join(out, f"{l}-bench.md")).read())
if skipped:
    lines += ["## Skipped", ""] + [f"- {s}" for s in skipped] + [""]
open(os.path.join(out, "compare.md"), "w").write("\n".join(lines))
print("\n".join(lines))
EOF
log "wrote $OUT/compare.md"
