# syntax=docker/dockerfile:1
#
# Floodgate container image: one binary that runs every role (`--role gateway|worker|analytics|all`).
#
#   docker build -t floodgate .                                   # full build, x86-64-v3
#   docker build --build-arg FEATURES=gateway -t floodgate:gateway .   # no llama.cpp, no candle
#   docker build --build-arg TARGET_CPU=x86-64-v2 -t floodgate:v2 .     # CPUs without AVX2
#
# The repository's .cargo/config.toml builds for the building machine's CPU
# (target-cpu=native); an image must run on other machines, so RUSTFLAGS below replaces it
# with a fixed x86-64 level. llama-cpp-sys-2 passes that level to llama.cpp as -march and
# turns the level's features into GGML_* switches; the GGML_* variables set per level
# below make llama.cpp's choice explicit (ggml would otherwise switch AVX2/FMA/F16C on for
# any non-native build). docs/deployment.md lists the variants.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

# full: the engine (llama.cpp, candle) and the offline commands; gateway: upstream models only.
ARG FEATURES=full
# x86-64-v2 (SSE4.2), x86-64-v3 (AVX2, FMA, F16C; the default), x86-64-v4 (AVX-512), or
# "generic" for the toolchain's default (aarch64 builds: llama.cpp then targets armv8-a).
ARG TARGET_CPU=x86-64-v3

# llama.cpp is compiled from the sources vendored by llama-cpp-sys-2: cmake, and libclang
# for bindgen. The gateway-only build needs only the C compiler the image already has.
RUN if [ "$FEATURES" = "full" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends cmake clang libclang-dev \
      && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /src
COPY . .

RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    case "$TARGET_CPU" in \
      generic) export RUSTFLAGS="" ;; \
      *) export RUSTFLAGS="-C target-cpu=$TARGET_CPU" ;; \
    esac; \
    case "$TARGET_CPU" in \
      x86-64-v2) export GGML_SSE42=ON GGML_AVX=OFF GGML_AVX2=OFF GGML_FMA=OFF GGML_F16C=OFF GGML_BMI2=OFF GGML_AVX512=OFF ;; \
      x86-64-v3) export GGML_SSE42=ON GGML_AVX=ON GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON GGML_BMI2=ON GGML_AVX512=OFF ;; \
      x86-64-v4) export GGML_SSE42=ON GGML_AVX=ON GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON GGML_BMI2=ON GGML_AVX512=ON ;; \
    esac; \
    case "$FEATURES" in \
      full) cargo build --release --locked -p floodgate ;; \
      gateway) cargo build --release --locked -p floodgate --no-default-features ;; \
      *) echo "FEATURES must be full or gateway, not $FEATURES" >&2; exit 1 ;; \
    esac; \
    install -D -m 0755 target/release/floodgate /out/floodgate

FROM docker.io/library/debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: model downloads and upstream servers over HTTPS (rustls with the
# system's roots). libgomp1: llama.cpp's OpenMP threads (full build).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 floodgate \
    && useradd --system --uid 10001 --gid floodgate --home-dir /var/lib/floodgate --shell /usr/sbin/nologin floodgate \
    && mkdir -p /var/lib/floodgate /etc/floodgate \
    && chown floodgate:floodgate /var/lib/floodgate

COPY --from=builder /out/floodgate /usr/local/bin/floodgate

# The model cache, the SQLite state (when no PostgreSQL is configured) and the event log.
ENV FLOODGATE_HOME=/var/lib/floodgate
VOLUME ["/var/lib/floodgate"]
WORKDIR /var/lib/floodgate

USER 10001:10001
EXPOSE 8080

# Liveness: /healthz answers 200 as soon as the listener is up (readiness, /readyz, waits
# for the models). The image has no HTTP client; bash's /dev/tcp speaks HTTP/1.0 instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]

# SIGTERM drains: no new connections, requests in flight finish within
# server.shutdown_grace_seconds (30 s by default), then the event sinks flush.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/floodgate", "serve", "--listen", "0.0.0.0:8080"]
CMD []
