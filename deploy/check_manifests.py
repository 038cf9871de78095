#!/usr/bin/env python3
"""Validation steps of deploy/check.sh that need Python (run with the tools' venv).

  manifests FILE...   every object of each rendered chart (helm template output) against
                      the Kubernetes schemas (kubernetes-validate, strict) for each version
                      in $K8S_VERSIONS, the chart's custom resources against
                      deploy/schemas/, and each ConfigMap's floodgate.toml: TOML syntax,
                      every key documented in docs/configuration.md, and, when
                      $FLOODGATE_BIN is a floodgate binary, `serve --validate-config`.
  terraform DIR       every .tf file parses (python-hcl2), and every var.X and local.X
                      that is used is declared.

Prints one line per file and exits 1 if anything failed.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "deploy" / "schemas"
CONFIG_DOC = ROOT / "docs" / "configuration.md"

# Custom resources the chart renders → the schema file that describes them.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.monitoring.coreos.com-v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh-v1alpha1.json",
}

# Values for the env::NAME references when a binary validates the rendered files.
DUMMY_ENV = {
    "FLOODGATE_STORE_URL": "postgres://floodgate@127.0.0.1:5432/floodgate",
    "FLOODGATE_REDIS_URL": "redis://127.0.0.1:6379",
    "FLOODGATE_NATS_URL": "nats://127.0.0.1:4222",
    "FLOODGATE_WORKER_KEY": "fg-check",
    "FLOODGATE_IP_HASH_SALT": "check",
}


def documented_keys() -> set[str]:
    """Every `section.key` in the first column of docs/configuration.md's tables."""
    keys = set()
    for line in CONFIG_DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([a-z_]+(?:\.[a-z_0-9]+)+)` \|", line)
        if m:
            keys.add(m.group(1))
    return keys


def toml_keys(table: dict, prefix: str = ""):
    """Dotted keys of a floodgate.toml: sections, arrays of tables, inline tables in arrays."""
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and not prefix:
            yield from toml_keys(value, path)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            if prefix:
                yield path
            for item in value:
                yield from toml_keys(item, path)
        else:
            yield path


def check_toml(name: str, text: str, role: str, documented: set[str], errors: list[str]) -> None:
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        errors.append(f"{name}: not valid TOML: {e}")
        return
    for key in toml_keys(parsed):
        # Tables that hold free-form maps: model cards, per-tenant pins.
        if re.match(r"^(model(\.versions(\.variants)?)?\.card|route\.(tenant|segment)_tiers)\.", key):
            continue
        generic = re.sub(r"^model\.versions(\.variants)?\.", "model.", key)
        if key not in documented and generic not in documented:
            errors.append(f"{name}: `{key}` is not a key of docs/configuration.md")
    binary = os.environ.get("FLOODGATE_BIN")
    if binary:
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODGATE_")}
        env.update(DUMMY_ENV)
        out = subprocess.run(
            [binary, "serve", "--config", f.name, "--role", role, "--validate-config"],
            capture_output=True, text=True, env=env, timeout=60,
        )
        os.unlink(f.name)
        if out.returncode != 0:
            errors.append(f"{name}: floodgate --validate-config: {(out.stdout + out.stderr).strip()}")


def check_manifests(files: list[str]) -> int:
    import kubernetes_validate

    versions = os.environ.get("K8S_VERSIONS", "1.29.0 1.37.0").split()
    documented = documented_keys()
    schemas = {k: json.loads((SCHEMAS / v).read_text()) for k, v in CRD_SCHEMAS.items()}
    failed = False
    for file in files:
        errors: list[str] = []
        docs = [d for d in yaml.safe_load_all(Path(file).read_text()) if d]
        kinds: dict[str, int] = {}
        tomls = 0
        for doc in docs:
            kind, api = doc.get("kind", "?"), doc.get("apiVersion", "?")
            name = f"{kind}/{doc.get('metadata', {}).get('name', '?')}"
            kinds[kind] = kinds.get(kind, 0) + 1
            if (api, kind) in schemas:
                for err in jsonschema.Draft202012Validator(schemas[(api, kind)]).iter_errors(doc):
                    errors.append(f"{name}: {'.'.join(map(str, err.absolute_path))}: {err.message}")
            else:
                for version in versions:
                    try:
                        kubernetes_validate.validate(doc, version, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        path = ".".join(map(str, e.path))
                        errors.append(f"{name} (Kubernetes {version}): {path}: {e.message}")
                    except kubernetes_validate.SchemaNotFoundError:
                        errors.append(f"{name}: no schema for {api} {kind} in Kubernetes {version}")
            if kind == "ConfigMap" and doc.get("metadata", {}).get("name", "").endswith("-config"):
                for key, text in (doc.get("data") or {}).items():
                    if key.endswith(".toml"):
                        tomls += 1
                        check_toml(f"{name}[{key}]", text, key.removesuffix(".toml"), documented, errors)
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        status = "FAILED" if errors else "ok"
        print(f"  {Path(file).name}: {len(docs)} objects valid against Kubernetes {'/'.join(versions)}"
              f" and deploy/schemas ({summary}); {tomls} floodgate.toml checked: {status}"
              if not errors else f"  {Path(file).name}: {len(errors)} problems in {len(docs)} objects: FAILED")
        for e in errors:
            print(f"    {e}")
        failed |= bool(errors)
    return 1 if failed else 0


def check_terraform(directory: str) -> int:
    import hcl2

    declared_vars, declared_locals, used_vars, used_locals = set(), set(), set(), set()
    failed = False
    files = sorted(Path(directory).glob("*.tf"))
    blocks = 0
    for tf in files:
        text = tf.read_text()
        try:
            parsed = hcl2.loads(text)
        except Exception as e:  # the parser raises lark's exceptions
            print(f"    {tf.name}: does not parse: {e}")
            failed = True
            continue
        for block in parsed.get("variable", []):
            declared_vars.update(k.strip('"') for k in block)
        for block in parsed.get("locals", []):
            declared_locals.update(k.strip('"') for k in block)
        blocks += sum(len(v) for v in parsed.values() if isinstance(v, list))
        code = re.sub(r"#[^\n]*|//[^\n]*", "", text)
        used_vars.update(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", code))
        used_locals.update(re.findall(r"\blocal\.([A-Za-z_][A-Za-z0-9_]*)", code))
    for v in sorted(used_vars - declared_vars):
        print(f"    var.{v} is used but not declared")
        failed = True
    for v in sorted(used_locals - declared_locals):
        print(f"    local.{v} is used but not declared")
        failed = True
    for v in sorted(declared_vars - used_vars):
        print(f"    variable {v} is declared but never used")
        failed = True
    print(f"  terraform: {len(files)} files, {blocks} top-level blocks parse; "
          f"{len(declared_vars)} variables and {len(declared_locals)} locals consistent: "
          f"{'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "manifests":
        return check_manifests(sys.argv[2:])
    if len(sys.argv) == 3 and sys.argv[1] == "terraform":
        return check_terraform(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
