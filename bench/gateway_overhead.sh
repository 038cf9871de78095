#!/usr/bin/env bash
# Gateway overhead against its peers (issue #21): the same load from `oha` straight to a
# fake upstream (nginx) and through Floodgate, LiteLLM's proxy and Portkey's gateway, in
# one run. Installs what is missing (nginx, oha, litellm in a venv, Portkey from npm);
# see bench/gateway_overhead.py for the knobs (RATES, SECONDS_PER_RUN, MAX_CONNS, PEERS).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { apt-get update -qq; apt-get install -y -qq nginx; }
command -v oha >/dev/null || cargo install oha --locked
venv="${LITELLM_VENV:-$HOME/.cache/floodgate-bench/litellm}"
[ -x "$venv/bin/litellm" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'litellm[proxy]'; }
command -v gateway >/dev/null || npm install -g @portkey-ai/gateway
cargo build --release -p floodgate --no-default-features --target-dir target/gateway-only
export FLOODGATE="${FLOODGATE:-$PWD/target/gateway-only/release/floodgate}"
export LITELLM="${LITELLM:-$venv/bin/litellm}"
exec python3 bench/gateway_overhead.py
