#!/usr/bin/env bash
# The event path's figures (issue #18): request-path cost per event, log and sink
# throughput, and the request path with a sink down. Uses the services .ci/run provides.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLOODGATE_TEST_POSTGRES_URL="${FLOODGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export FLOODGATE_TEST_NATS_URL="${FLOODGATE_TEST_NATS_URL:-nats://127.0.0.1:4222}"
cargo run --release -p floodgate-gateway --no-default-features --example events_bench
