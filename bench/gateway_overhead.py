#!/usr/bin/env python3
"""Gateway overhead (issue #21), in one run on this machine.

A fast fake OpenAI upstream (nginx returning a fixed chat completion) on loopback, and the
same load from `oha` straight to it and through each gateway:

- Floodgate: `serve --role gateway`, auth on (a key), rate limits on (high enough not to
  refuse), rule guards on (input policy `block`), events on (the durable log and the
  SQLite store sink), its own model home;
- LiteLLM's proxy (PyPI `litellm[proxy]`, master key on);
- Portkey's gateway (npm `@portkey-ai/gateway`), custom host = the upstream.

For each target and rate (fixed rates, then as fast as `oha` can with `--max-conns`
connections) it prints p50/p99 latency, their difference from direct, the requests per
second achieved, the non-2xx count and the gateway's CPU seconds per request (the whole
process tree, from /proc). Peers whose tools are missing are reported as skipped.

Environment: RATES ("500 2000"), SECONDS_PER_RUN (10), MAX_CONNS (64), PEERS
("direct floodgate litellm portkey"), FLOODGATE (the binary; target/release/floodgate),
OHA (oha), LITELLM (litellm), PORTKEY (gateway).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATES = [int(r) for r in os.environ.get("RATES", "500 2000").split()]
SECONDS = int(os.environ.get("SECONDS_PER_RUN", "10"))
MAX_CONNS = int(os.environ.get("MAX_CONNS", "64"))
PEERS = os.environ.get("PEERS", "direct floodgate litellm portkey").split()
FLOODGATE = os.environ.get("FLOODGATE", os.path.join(ROOT, "target/release/floodgate"))
OHA = os.environ.get("OHA", "oha")
LITELLM = os.environ.get("LITELLM", "litellm")
PORTKEY = os.environ.get("PORTKEY", "gateway")

UPSTREAM_PORT, FLOODGATE_PORT, LITELLM_PORT, PORTKEY_PORT = 18080, 18081, 18082, 18083
COMPLETION = (
    '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"m",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"Bonjour !"},'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'
)
# Floodgate reads its upstreams as a stream (it sends `"stream": true` whatever the client
# asked), so under /sse/ the same completion comes as server-sent events.
CHUNK = (
    '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"m",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":"Bonjour !"},"finish_reason":null}]}'
)
LAST = (
    '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"m",'
    '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'
)
SSE = f"data: {CHUNK}\\n\\ndata: {LAST}\\n\\ndata: [DONE]\\n\\n"
MODELS = '{"object":"list","data":[{"id":"m","object":"model","created":0,"owned_by":"bench"}]}'
BODY = json.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "Say bonjour."}], "max_tokens": 8}
)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def wait_http(url, headers=None, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status < 500:
                    return True
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.3)
    return False


def post_once(url, headers):
    req = urllib.request.Request(url, data=BODY.encode(), method="POST")
    req.add_header("content-type", "application/json")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(errors="replace")[:300]
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")[:300]
    except Exception as e:  # noqa: BLE001
        return 0, str(e)


def tree_cpu_seconds(pid):
    """utime + stime of `pid` and every descendant, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append((int(p), fields))
        except OSError:
            continue
    total, todo = 0.0, [pid]
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        return 0.0
    while todo:
        for child, fields in children.get(todo.pop(), []):
            total += (int(fields[11]) + int(fields[12])) / tick
            todo.append(child)
    return total


def oha(url, headers, rate):
    cmd = [OHA, "--no-tui", "--output-format", "json", "-z", f"{SECONDS}s", "-c", str(MAX_CONNS),
           "-m", "POST", "-H", "content-type: application/json", "-d", BODY]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if rate:
        # Latency from when each request was due, not when it went out (no coordinated
        # omission: a stalled gateway shows in p99).
        cmd += ["-q", str(rate), "--latency-correction"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"oha failed: {out.stderr[-500:]}")
    r = json.loads(out.stdout)
    codes = r.get("statusCodeDistribution", {})
    ok = sum(n for c, n in codes.items() if c.startswith("2"))
    # Requests still in flight when the run's time is up are cut by oha, not failed.
    failed = {k: n for k, n in r.get("errorDistribution", {}).items() if "deadline" not in k}
    errors = sum(codes.values()) - ok + sum(failed.values())
    pct = r["latencyPercentiles"]
    return {
        # Answered with 2xx per second of the run.
        "rps": ok / r["summary"]["total"],
        "p50": (pct["p50"] or float("nan")) * 1e3,
        "p99": (pct["p99"] or float("nan")) * 1e3,
        "ok": ok,
        "errors": errors,
    }


class Upstream:
    def __init__(self, work):
        self.conf = os.path.join(work, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
daemon off;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  fastcgi_temp_path {work}/nginx-fastcgi;
  uwsgi_temp_path {work}/nginx-uwsgi;
  scgi_temp_path {work}/nginx-scgi;
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{UPSTREAM_PORT} backlog=4096;
    location = /v1/models {{ default_type application/json; return 200 '{MODELS}'; }}
    location = /v1/traces {{ default_type application/x-protobuf; return 200 ''; }}
    location = /sse/v1/models {{ default_type application/json; return 200 '{MODELS}'; }}
    location /sse/ {{ default_type text/event-stream; return 200 '{SSE}'; }}
    location / {{ default_type application/json; return 200 '{COMPLETION}'; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", self.conf, "-e", f"{work}/nginx-error.log"])
        if not wait_http(f"http://127.0.0.1:{UPSTREAM_PORT}/v1/models"):
            raise RuntimeError("nginx did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def start_floodgate(work, telemetry=""):
    home = os.path.join(work, "floodgate-home")
    conf = os.path.join(work, "floodgate.toml")
    with open(conf, "w") as f:
        f.write(f"""
[server]
log_format = "json"
{telemetry}

[auth]
required = true

[ratelimit]
ip_requests_per_minute = 1000000000.0
tenant_requests_per_minute = 1000000000.0
tenant_tokens_per_minute = 1000000000000.0
key_max_concurrent = 100000

[guard]
input_policy = "block"

[[model]]
name = "m"
backend = "upstream"
endpoints = [{{ url = "http://127.0.0.1:{UPSTREAM_PORT}/sse", model = "m" }}]
""")
    env = dict(os.environ, FLOODGATE_HOME=home, RUST_LOG="warn")
    key = json.loads(subprocess.run(
        [FLOODGATE, "keys", "create", "--json", "--config", conf,
         "--rpm", "1000000000", "--tpm", "1000000000000"],
        env=env, capture_output=True, text=True, check=True).stdout)["key"]
    proc = subprocess.Popen(
        [FLOODGATE, "serve", "--role", "gateway", "--config", conf,
         "--listen", f"127.0.0.1:{FLOODGATE_PORT}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "floodgate.log"), "w"))
    if not wait_http(f"http://127.0.0.1:{FLOODGATE_PORT}/readyz"):
        raise RuntimeError("floodgate did not become ready")
    return proc, f"http://127.0.0.1:{FLOODGATE_PORT}/v1/chat/completions", {
        "authorization": f"Bearer {key}"}


def start_floodgate_traced(work):
    """Floodgate with traces at 10 % sampling, exported over OTLP to the fake upstream."""
    return start_floodgate(work, telemetry=f"""
[telemetry]
otlp_endpoint = "http://127.0.0.1:{UPSTREAM_PORT}/v1/traces"
trace_sample_ratio = 0.1
""")


def start_litellm(work):
    conf = os.path.join(work, "litellm.yaml")
    with open(conf, "w") as f:
        f.write(f"""
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      api_base: http://127.0.0.1:{UPSTREAM_PORT}/v1
      api_key: sk-upstream
general_settings:
  master_key: sk-bench-master
litellm_settings:
  telemetry: false
""")
    proc = subprocess.Popen(
        [LITELLM, "--config", conf, "--port", str(LITELLM_PORT), "--host", "127.0.0.1",
         "--num_workers", "1"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "litellm.log"), "w"),
        env=dict(os.environ, LITELLM_LOG="ERROR"))
    if not wait_http(f"http://127.0.0.1:{LITELLM_PORT}/health/liveliness", timeout=120):
        raise RuntimeError("litellm did not start (see litellm.log)")
    return proc, f"http://127.0.0.1:{LITELLM_PORT}/v1/chat/completions", {
        "authorization": "Bearer sk-bench-master"}


def start_portkey(work):
    proc = subprocess.Popen(
        [PORTKEY, f"--port={PORTKEY_PORT}", "--headless"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "portkey.log"), "w"))
    if not wait_http(f"http://127.0.0.1:{PORTKEY_PORT}/", timeout=60):
        raise RuntimeError("portkey did not start (see portkey.log)")
    return proc, f"http://127.0.0.1:{PORTKEY_PORT}/v1/chat/completions", {
        "authorization": "Bearer sk-upstream",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"http://127.0.0.1:{UPSTREAM_PORT}/v1",
    }


def main():
    for tool in (OHA, "nginx"):
        if not shutil.which(tool):
            sys.exit(f"gateway_overhead: `{tool}` is needed (cargo install oha; apt-get install nginx)")
    work = tempfile.mkdtemp(prefix="fg-overhead-")
    upstream = Upstream(work)
    starters = {
        "direct": None,
        "floodgate": start_floodgate,
        "floodgate-traced": start_floodgate_traced,
        "litellm": start_litellm,
        "portkey": start_portkey,
    }
    needs = {"floodgate": FLOODGATE, "floodgate-traced": FLOODGATE, "litellm": LITELLM,
             "portkey": PORTKEY}
    results = {}
    try:
        for peer in PEERS:
            proc = None
            if peer == "direct":
                url, headers = f"http://127.0.0.1:{UPSTREAM_PORT}/v1/chat/completions", {}
            else:
                if not shutil.which(needs[peer]):
                    log(f"{peer}: skipped (`{needs[peer]}` not found)")
                    continue
                try:
                    proc, url, headers = starters[peer](work)
                except Exception as e:  # noqa: BLE001 - report and go on with the others
                    log(f"{peer}: skipped ({e})")
                    continue
            status, text = post_once(url, headers)
            if status != 200:
                log(f"{peer}: skipped (a first request answered {status}: {text})")
                if proc:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait()
                continue
            oha(url, headers, 200)  # warm-up, not reported
            results[peer] = []
            for rate in RATES + [0]:
                cpu0 = tree_cpu_seconds(proc.pid) if proc else 0.0
                r = oha(url, headers, rate)
                cpu = tree_cpu_seconds(proc.pid) - cpu0 if proc else 0.0
                r["rate"] = rate
                r["cpu_ms"] = cpu / max(r["ok"] + r["errors"], 1) * 1e3 if proc else None
                results[peer].append(r)
                log(f"{peer} @ {rate or 'max'}: {r}")
            if proc:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    finally:
        upstream.stop()

    direct = {r["rate"]: r for r in results.get("direct", [])}
    print(f"\n# Gateway overhead: {SECONDS} s per run, {MAX_CONNS} connections, "
          f"{os.cpu_count()} CPUs; fake upstream nginx (1 worker)\n")
    print("| target | offered rate | achieved req/s | p50 ms | p99 ms | p50 − direct | "
          "p99 − direct | non-2xx/errors | CPU ms/request |")
    print("|---|---|---|---|---|---|---|---|---|")
    for peer, rows in results.items():
        for r in rows:
            d = direct.get(r["rate"])
            dp50 = f"{r['p50'] - d['p50']:+.2f}" if d and peer != "direct" else ""
            dp99 = f"{r['p99'] - d['p99']:+.2f}" if d and peer != "direct" else ""
            cpu = f"{r['cpu_ms']:.3f}" if r["cpu_ms"] is not None else ""
            print(f"| {peer} | {r['rate'] or 'max'} | {r['rps']:.0f} | {r['p50']:.2f} | "
                  f"{r['p99']:.2f} | {dp50} | {dp99} | {r['errors']} | {cpu} |")


if __name__ == "__main__":
    main()
