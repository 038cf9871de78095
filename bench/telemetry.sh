#!/usr/bin/env bash
# What metrics and traces cost per request (issue #19): the emit path's process CPU with
# the GenAI metrics alone and with traces at 0 %, 10 % and 100 % sampling, exported to an
# OTLP receiver on loopback. The end-to-end A/B through a gateway is
# `PEERS="floodgate floodgate-traced" python3 bench/gateway_overhead.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -p floodgate-gateway --example telemetry_bench
