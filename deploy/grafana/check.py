#!/usr/bin/env python3
"""Checks a Grafana dashboard against the metrics Floodgate exports (standard library only).

    check.py DASHBOARD.json --metrics docs/metrics.md [--metrics scrape.txt ...]
    check.py --self-test

The dashboard must be valid JSON; every panel (panels nested in rows included) must have a
title, a unique integer id, a gridPos inside the 24-column grid and, unless it is a row,
the dashboard's datasource variable (`${DS_PROMETHEUS}`) as its datasource and as the
datasource of each of its queries. Every PromQL expression (panel targets, query
variables, annotations) is tokenized and each metric name it selects must be known:
histogram series (`_bucket`, `_sum`, `_count`) count as their histogram, and a histogram's
bare name is an error (it selects nothing in the text format). Functions must be PromQL
functions, and every `$variable` must be defined. Label names inside `{...}` selectors are
checked against the labels a metric is known to have; they are warnings unless
--strict-labels is given.

Known metrics come from each --metrics FILE: a Markdown reference (`.md`: every table row
whose first cell is a backticked name; the second cell is its type, the third its labels),
or a Prometheus text scrape (`# TYPE`/`# HELP` lines and samples); `-` reads a scrape from
standard input.

Exit status: 0 all good, 1 a check failed, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field

# --- PromQL vocabulary ---------------------------------------------------------------------

AGGREGATORS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
FUNCTIONS = AGGREGATORS | {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "double_exponential_smoothing", "exp", "first_over_time", "floor",
    "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
    "increase", "info", "irate", "label_join", "label_replace", "last_over_time", "ln",
    "log10", "log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month",
    "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate",
    "resets", "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label",
    "sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "ts_of_first_over_time",
    "ts_of_last_over_time", "ts_of_max_over_time", "ts_of_min_over_time", "vector", "year",
    # only after `@`
    "start", "end",
}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
OPERATOR_WORDS = {"and", "or", "unless", "bool", "offset", "atan2"}
NUMBER_WORDS = {"inf", "nan"}
# Grafana's built-in variables.
GRAFANA_BUILTINS = {
    "__rate_interval", "__rate_interval_ms", "__interval", "__interval_ms", "__range",
    "__range_s", "__range_ms", "__from", "__to", "__dashboard", "__org", "__user", "__name",
    "__timeFilter", "__timezone", "__all",
}
# Labels Prometheus or the Kubernetes service discovery puts on every scraped series.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class PromQLError(ValueError):
    pass


@dataclass
class Token:
    kind: str  # str num dur ident var op ( ) { } [ ] ,
    text: str
    start: int
    end: int
    value: str = ""  # a string literal's value


_TOKEN_RES = [
    ("ws", re.compile(r"\s+")),
    ("comment", re.compile(r"#[^\n]*")),
    # Grafana variables: $name, ${name}, ${name:format}, [[name]], [[name:format]]
    ("var", re.compile(r"\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]")),
    ("str", re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', re.S)),
    ("dur", re.compile(r"(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_])")),
    ("num", re.compile(r"(?:0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![A-Za-z0-9_])")),
    ("ident", re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")),
    ("op", re.compile(r"==|!=|>=|<=|=~|!~|[-+*/%^=<>@:]")),
    ("punct", re.compile(r"[(){}\[\],]")),
]


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    i, depth_bracket = 0, 0
    while i < len(expr):
        for kind, rx in _TOKEN_RES:
            if kind == "ident" and expr[i] == ":" and depth_bracket:
                continue  # `[5m:1m]`: a subquery step, not a recording rule's name
            m = rx.match(expr, i)
            if m:
                break
        else:
            raise PromQLError(f"unexpected character {expr[i]!r} at {i}")
        text = m.group(0)
        if kind == "punct":
            kind = text
            depth_bracket += {"[": 1, "]": -1}.get(text, 0)
        if kind == "var":
            tokens.append(Token("var", text, i, m.end(), next(g for g in m.groups() if g)))
        elif kind == "str":
            tokens.append(Token("str", text, i, m.end(), _unquote(text)))
        elif kind not in ("ws", "comment"):
            tokens.append(Token(kind, text, i, m.end()))
        i = m.end()
    return tokens


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    return re.sub(r"\\(.)", r"\1", text[1:-1])


@dataclass
class Selector:
    """One metric reference: its name and the label names of its `{...}` matchers."""

    name: str
    labels: list[str] = field(default_factory=list)


@dataclass
class Extracted:
    selectors: list[Selector] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return sorted({s.name for s in self.selectors})


def extract(expr: str) -> Extracted:
    """Metric names (and more) that a PromQL expression selects."""
    out = Extracted()
    tokens = tokenize(expr)
    # Contexts: "(" an expression, "labels" a grouping list, "{" matchers, "[" a range.
    stack: list[str] = []
    pending_labels = False
    current: Selector | None = None  # the selector whose `{...}` we are in
    last_selector: Selector | None = None  # a name just read, that a `{` may follow

    for n, tok in enumerate(tokens):
        nxt = tokens[n + 1] if n + 1 < len(tokens) else None
        prev = tokens[n - 1] if n else None
        ctx = stack[-1] if stack else "("

        if tok.kind == "var":
            out.variables.append(tok.value)
            glued = (prev is not None and prev.kind == "ident" and prev.end == tok.start) or (
                nxt is not None and nxt.kind in ("ident", "{") and nxt.start == tok.end)
            if ctx == "(" and glued:
                out.problems.append(f"metric name built from variable ${tok.value}: cannot be checked")
            continue
        if tok.kind == "str":
            # `$x` inside a string literal is a Grafana variable too (label_replace's
            # replacement "$1" is not: digits only).
            for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)", tok.value):
                out.variables.append(m.group(1) or m.group(2))
            if ctx == "(":
                continue

        if tok.kind in ("(", "{", "["):
            if tok.kind == "(":
                stack.append("labels" if pending_labels else "(")
            elif tok.kind == "{":
                if ctx != "(":
                    raise PromQLError(f"unexpected '{{' at {tok.start}")
                current = last_selector
                if current is None:  # `{__name__="x"}` or `{"x"}`: the name comes inside
                    current = Selector("")
                stack.append("{")
            else:
                stack.append("[")
            pending_labels = False
            last_selector = None
            continue
        if tok.kind in (")", "}", "]"):
            want = {")": ("(", "labels"), "}": ("{",), "]": ("[",)}[tok.kind]
            if not stack or stack[-1] not in want:
                raise PromQLError(f"unbalanced {tok.text!r} at {tok.start}")
            if stack.pop() == "{":
                if current is not None and not current.name:
                    out.problems.append("a selector without a metric name")
                current = None
            last_selector = None
            continue
        pending_labels = False

        if ctx == "{":
            assert current is not None
            # label matchers: NAME OP "value" | "quoted name" OP "value" | "metric name"
            if tok.kind in ("ident", "str") and nxt is not None and nxt.kind == "op" and nxt.text in ("=", "!=", "=~", "!~"):
                label = tok.value if tok.kind == "str" else tok.text
                value_tok = tokens[n + 2] if n + 2 < len(tokens) else None
                if label == "__name__":
                    _name_matcher(nxt.text, value_tok, current, out)
                else:
                    current.labels.append(label)
            elif tok.kind == "str" and (prev is None or prev.kind in ("{", ",")):
                _add_name(current, tok.value, out)  # Prometheus 3: {"metric.name", ...}
            continue
        if ctx in ("labels", "["):
            continue  # label names of by (...) etc.; durations, `:` and numbers of a range

        if tok.kind == "ident":
            low = tok.text.lower()
            if low in GROUPING:
                pending_labels = nxt is not None and nxt.kind == "("
            elif nxt is not None and nxt.kind == "(" or (low in AGGREGATORS and nxt is not None and nxt.kind == "ident" and nxt.text.lower() in ("by", "without")):
                out.functions.append(tok.text)
                if low not in FUNCTIONS:
                    out.problems.append(f"unknown function {tok.text}")
            elif low in OPERATOR_WORDS or low in NUMBER_WORDS:
                pass
            elif (prev is not None and prev.kind == "var" and prev.end == tok.start) or (
                    nxt is not None and nxt.kind == "var" and nxt.start == tok.end):
                pass  # part of a name built from a variable, reported above
            else:
                sel = Selector(tok.text)
                out.selectors.append(sel)
                last_selector = sel
                continue
        last_selector = None
    if stack:
        raise PromQLError(f"unclosed {stack[-1]!r}")
    return out


def _add_name(sel: Selector, name: str, out: Extracted) -> None:
    if sel.name:
        out.problems.append(f"selector names two metrics: {sel.name} and {name}")
        return
    sel.name = name
    out.selectors.append(sel)


def _name_matcher(op: str, value: Token | None, sel: Selector, out: Extracted) -> None:
    if value is None or value.kind != "str":
        out.problems.append("__name__ matcher without a string value")
    elif op == "=":
        _add_name(sel, value.value, out)
    elif op == "=~" and re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?:\|[a-zA-Z_:][a-zA-Z0-9_:]*)*", value.value):
        first, *rest = value.value.split("|")
        _add_name(sel, first, out)
        for name in rest:
            out.selectors.append(Selector(name, sel.labels))
    elif op == "=~":
        out.problems.append(f"__name__ regex {value.value!r} cannot be checked (write the names as a|b|c)")
    # != and !~ exclude names: nothing to check


def extract_variable_query(query: str) -> Extracted:
    """A Grafana Prometheus query variable: label_values(...), query_result(...), ..."""
    q = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", q, re.S)
    if m:
        return extract(m.group(1))
    if re.fullmatch(r"label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)|label_names\(.*\)|metrics\(.*\)", q, re.S):
        return Extracted()
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    return extract(m.group(1) if m else q)


# --- known metrics -------------------------------------------------------------------------


@dataclass
class Known:
    types: dict[str, str] = field(default_factory=dict)  # name -> counter|gauge|histogram|...
    labels: dict[str, set[str] | None] = field(default_factory=dict)  # None: not known

    def add(self, name: str, kind: str, labels: set[str] | None) -> None:
        if name not in self.types or self.types[name] == "untyped":
            self.types[name] = kind
        if labels is not None:
            self.labels[name] = (self.labels.get(name) or set()) | labels
        else:
            self.labels.setdefault(name, None)

    def resolve(self, name: str) -> tuple[str | None, str]:
        """(the metric a series name belongs to, or None; the suffix it carries)."""
        kind = self.types.get(name)
        if kind is not None and kind != "histogram":
            return name, ""
        for suffix in HISTOGRAM_SUFFIXES:
            base = name[: -len(suffix)]
            if name.endswith(suffix) and (
                self.types.get(base) == "histogram" or (self.types.get(base) == "summary" and suffix != "_bucket")):
                return base, suffix
        return None, ""


def load_markdown(text: str, known: Known) -> int:
    count = 0
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = re.fullmatch(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`(?:\s*[,/]\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`)*", cells[0])
        if not names:
            continue
        kind = cells[1].lower() if len(cells) > 1 else "untyped"
        if kind not in ("counter", "gauge", "histogram", "summary"):
            kind = "untyped"
        labels: set[str] | None = None
        if len(cells) > 2:
            cell = cells[2]
            while re.search(r"\([^()]*\)", cell):
                cell = re.sub(r"\([^()]*\)", "", cell)  # drop the value lists
            found = set(re.findall(r"`([a-zA-Z_][a-zA-Z0-9_]*)`", cell))
            prose = re.sub(r"`[^`]*`|[\s,;+&]|\band\b", "", cell)
            if found and not prose:
                labels = found
            # else: words beside the names ("the five above + `error_type`"): not a full
            # list, so the metric's labels stay unknown and are not checked
            elif cells[2].lower() in ("none", "", "-"):
                labels = set()
        for name in re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0]):
            known.add(name, kind, labels)
            count += 1
    return count


_SAMPLE_RE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+\S+")


def load_scrape(text: str, known: Known) -> int:
    families: dict[str, str] = {}
    seen: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)", line)
        if m:
            families[m.group(1)] = m.group(2)
            known.add(m.group(1), m.group(2), None)
            if m.group(2) == "counter" and not m.group(1).endswith("_total"):
                known.add(m.group(1) + "_total", "counter", None)  # OpenMetrics style
            continue
        m = re.match(r"#\s*HELP\s+([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        if m:
            known.add(m.group(1), families.get(m.group(1), "untyped"), None)
            continue
        if line.startswith("#") or not line.strip():
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        name = m.group(1)
        seen.add(name)
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"', m.group(2) or ""))
        base, suffix = known.resolve(name)
        if base is None:
            known.add(name, "untyped", labels)
        else:
            known.add(base, known.types[base], labels - {"le", "quantile"})
    return len(seen | set(families))


def load_metrics(path: str, known: Known) -> int:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as e:
        raise SystemExit(f"check.py: cannot read {path}: {e.strerror}") from None
    if path.endswith((".md", ".markdown")):
        return load_markdown(text, known)
    return load_scrape(text, known)


# --- the dashboard -------------------------------------------------------------------------


def walk_panels(panels, parent=None):
    for p in panels or []:
        yield p, parent
        if isinstance(p, dict) and isinstance(p.get("panels"), list):
            yield from walk_panels(p["panels"], p)


NO_QUERY_PANELS = {"row", "text", "news", "dashlist", "alertlist", "annolist", "welcome"}


class Report:
    def __init__(self, strict_labels: bool):
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.strict_labels = strict_labels
        self.referenced: set[str] = set()
        self.unknown: dict[str, list[str]] = {}
        self.queries = 0

    def error(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    def check_expr(self, where: str, expr: str, known: Known, variables: set[str], variable_query=False) -> None:
        self.queries += 1
        try:
            got = extract_variable_query(expr) if variable_query else extract(expr)
        except PromQLError as e:
            self.error(where, f"cannot parse {expr!r}: {e}")
            return
        for problem in got.problems:
            self.error(where, problem)
        for var in sorted(set(got.variables)):
            if var not in variables and var not in GRAFANA_BUILTINS:
                self.error(where, f"undefined variable ${var}")
        for sel in got.selectors:
            base, suffix = known.resolve(sel.name)
            if base is None:
                if known.types.get(sel.name) == "histogram":
                    self.error(where, f"histogram {sel.name} has no series of its own: use {sel.name}_bucket, _sum or _count")
                else:
                    # listed once per metric by main(), with every place that names it
                    self.unknown.setdefault(sel.name, []).append(where)
                continue
            self.referenced.add(base)
            have = known.labels.get(base)
            if have is None:
                continue
            allowed = have | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set()) | (
                {"quantile"} if known.types.get(base) == "summary" and not suffix else set())
            for label in sel.labels:
                if label not in allowed:
                    msg = f"{sel.name} has no label {label!r} (known: {', '.join(sorted(have)) or 'none'})"
                    (self.errors if self.strict_labels else self.warnings).append(f"{where}: {msg}")


def _ds_ok(ds, ds_vars: set[str]) -> bool:
    uid = ds.get("uid") if isinstance(ds, dict) else ds
    if not isinstance(uid, str):
        return False
    m = re.fullmatch(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", uid)
    return bool(m) and (m.group(1) or m.group(2)) in ds_vars


def check_dashboard(dash: dict, known: Known, report: Report) -> tuple[int, int]:
    templating = (dash.get("templating") or {}).get("list") or []
    variables = {v.get("name") for v in templating if isinstance(v, dict)}
    ds_vars = {v.get("name") for v in templating if isinstance(v, dict) and v.get("type") == "datasource"}
    ds_vars |= {i.get("name") for i in dash.get("__inputs") or [] if i.get("type") == "datasource"}
    variables |= ds_vars
    if not ds_vars:
        report.error("dashboard", "no datasource variable or __inputs datasource")

    for v in templating:
        where = f"variable ${v.get('name')}"
        if v.get("type") != "query":
            continue
        if not _ds_ok(v.get("datasource"), ds_vars):
            report.error(where, f"datasource {v.get('datasource')!r} is not the datasource variable")
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if not isinstance(q, str) or not q.strip():
            report.error(where, "no query")
            continue
        report.check_expr(where, q, known, variables - {v.get("name")}, variable_query=True)

    for a in (dash.get("annotations") or {}).get("list") or []:
        if isinstance(a, dict) and a.get("expr"):
            report.check_expr(f"annotation {a.get('name')!r}", a["expr"], known, variables)

    ids: dict[int, str] = {}
    n_panels = n_rows = 0
    for p, parent in walk_panels(dash.get("panels")):
        if not isinstance(p, dict):
            report.error("panels", f"not an object: {p!r}")
            continue
        n_panels += 1
        title = p.get("title")
        where = f"panel {p.get('id')} {title!r}" + (f" (row {parent.get('title')!r})" if parent else "")
        if not isinstance(title, str) or not title.strip():
            report.error(where, "no title")
        ptype = p.get("type")
        if not isinstance(ptype, str) or not ptype:
            report.error(where, "no type")
        pid = p.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool):
            report.error(where, "id is not an integer")
        elif pid in ids:
            report.error(where, f"id {pid} is also panel {ids[pid]!r}")
        else:
            ids[pid] = title
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "hwxy"):
            report.error(where, "gridPos missing or without integer h, w, x, y")
        elif g["w"] < 1 or g["h"] < 1 or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > 24:
            report.error(where, f"gridPos {g} is outside the 24-column grid")
        if "libraryPanel" in p:
            report.error(where, "library panels cannot be checked: inline the panel")
        if ptype == "row":
            n_rows += 1
            if p.get("collapsed") is False and p.get("panels"):
                report.error(where, "an expanded row must not nest panels (Grafana ignores them)")
            continue
        if not _ds_ok(p.get("datasource"), ds_vars):
            report.error(where, f"datasource {p.get('datasource')!r} is not the datasource variable")
        targets = p.get("targets") or []
        if not targets and ptype not in NO_QUERY_PANELS:
            report.error(where, "no queries")
        refids = set()
        for t in targets:
            ref = t.get("refId")
            twhere = f"{where} query {ref}"
            if ref in refids:
                report.error(twhere, "duplicate refId")
            refids.add(ref)
            if "datasource" in t and not _ds_ok(t["datasource"], ds_vars):
                report.error(twhere, f"datasource {t['datasource']!r} is not the datasource variable")
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                report.error(twhere, "no expr")
                continue
            report.check_expr(twhere, expr, known, variables)
    return n_panels, n_rows


# --- self-test -----------------------------------------------------------------------------

SELF_TEST = [
    # (expression, metric names it selects)
    ('sum by (le, route) (rate(floodgate_http_response_seconds_bucket{job=~"$job", route!="/metrics"}[$__rate_interval]))',
     ["floodgate_http_response_seconds_bucket"]),
    ("histogram_quantile(0.95, sum(rate(a_bucket[5m])) by (le))", ["a_bucket"]),
    ('sum by (route, stage) (rate(esc_total{route=~"$route"}[5m])) / ignoring (stage) group_left sum by (route) (rate(req_total[5m]))',
     ["esc_total", "req_total"]),
    ('x / on (instance, job) group_left (version, git_sha) build_info', ["build_info", "x"]),
    ('sum without (instance) (up offset 1h) > bool 0', ["up"]),
    ('label_replace(up{job="a"}, "dst", "$1", "instance", "(.*):.*") and on() vector(1)', ["up"]),
    ('max_over_time(rate(http_total[5m])[1h:5m]) unless http_total @ end()', ["http_total"]),
    ('{__name__="drift_gauge", key="a"} or {__name__=~"foo|bar_total"}', ["bar_total", "drift_gauge", "foo"]),
    ('{"otel.metric.name", "service.name"="x"} + 1e3 - 0x1F * Inf', ["otel.metric.name"]),
    ('count_values("le", build_info) # a comment: not_a_metric{x="y"}\n + topk(5, sum by (by) (m:recorded:rate5m))',
     ["build_info", "m:recorded:rate5m"]),
    ('(sum(a{error_type!=""}) or sum(a) * 0) / sum(a)', ["a"]),
    ('increase(windows_total{result="drift", key=~"${key:regex}"}[1h30m]) >= 2', ["windows_total"]),
    ("sum(rate(on_total[5m])) by (on)", ["on_total"]),
    ('SUM BY (le) (RATE(x_bucket[2m]))', ["x_bucket"]),
    ('{a="}", __name__="y"} * on (instance) group_right () -z offset -1w', ["y", "z"]),
    ("sum(\n  rate(a_total[5m:])\n) - time() + absent(gone{job='a'}) == bool 1", ["a_total", "gone"]),
]


def self_test() -> int:
    failures = 0
    total = len(SELF_TEST)
    for expr, want in SELF_TEST:
        try:
            got = extract(expr)
            names, problems = got.names, got.problems
        except PromQLError as e:
            names, problems = [], [str(e)]
        if names != sorted(want) or problems:
            failures += 1
            print(f"FAIL {expr!r}\n  want {sorted(want)}\n  got  {names} {problems}")
    # label names, variables and errors the checks rely on
    def check(cond: bool, what: str) -> None:
        nonlocal failures, total
        total += 1
        if not cond:
            failures += 1
            print(f"FAIL {what}")

    got = extract('sum by (le) (rate(m_bucket{a="1", b=~"$v"}[$__rate_interval]))')
    check(got.selectors[0].labels == ["a", "b"], f"matcher labels: {got.selectors[0].labels}")
    check(sorted(set(got.variables)) == ["__rate_interval", "v"], f"variables: {got.variables}")
    check(extract("histogram_quantle(0.9, x)").problems == ["unknown function histogram_quantle"], "unknown function")
    check(bool(extract('{__name__=~"floodgate_.*"}').problems), "unbounded __name__ regex is reported")
    check(bool(extract("floodgate_${kind}_total").problems), "a name built from a variable is reported")
    for bad in ("sum(rate(x[5m])", "x}", 'x{a="1"'):
        try:
            extract(bad)
            check(False, f"unbalanced {bad!r} is refused")
        except PromQLError:
            pass
    check(extract_variable_query('label_values(m_count{job=~"$job"}, model)').names == ["m_count"], "label_values(metric, label)")
    check(extract_variable_query("label_values(job)").names == [], "label_values(label)")
    check(extract_variable_query("query_result(topk(3, x))").names == ["x"], "query_result")

    known = Known()
    load_markdown(
        "| name | type | labels |\n|---|---|---|\n"
        "| `h_seconds` | histogram | `route`, `stage` (`a`, `b`) | s |\n"
        "| `c_total` | counter | none | x |\n"
        "| `p_total` | counter | the labels above + `x` | x |\n"
        "| suffix `_seconds` | `0.1 1` | `h_seconds` |\n", known)
    check(known.types == {"h_seconds": "histogram", "c_total": "counter", "p_total": "counter"}, f"markdown: {known.types}")
    check(known.labels == {"h_seconds": {"route", "stage"}, "c_total": set(), "p_total": None}, f"markdown labels: {known.labels}")
    check(known.resolve("h_seconds_bucket") == ("h_seconds", "_bucket") and known.resolve("h_seconds")[0] is None
          and known.resolve("c_total_count")[0] is None, "histogram suffixes")
    known = Known()
    load_scrape(
        "# TYPE lat_seconds histogram\nlat_seconds_bucket{model=\"a\",le=\"0.1\"} 1\n"
        "lat_seconds_sum{model=\"a\"} 0.2\nlat_seconds_count{model=\"a\"} 1\n"
        "# HELP up_total x\n# TYPE up_total counter\nup_total 3\ninflight 1\n", known)
    check(known.types == {"lat_seconds": "histogram", "up_total": "counter", "inflight": "untyped"}, f"scrape: {known.types}")
    check(known.labels["lat_seconds"] == {"model"}, f"scrape labels: {known.labels}")

    print(f"self-test: {total - failures}/{total} passed")
    return 1 if failures else 0


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dashboard", nargs="?")
    ap.add_argument("--metrics", action="append", default=[], metavar="FILE",
                    help="docs/metrics.md (.md) or a Prometheus text scrape ('-': stdin); repeatable")
    ap.add_argument("--strict-labels", action="store_true", help="unknown label names in selectors fail the check")
    ap.add_argument("--self-test", action="store_true", help="test the PromQL tokenizer and the loaders")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.dashboard or not args.metrics:
        ap.error("a dashboard and at least one --metrics FILE are required")
    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dash = json.load(f)
    except OSError as e:
        print(f"check.py: cannot read {args.dashboard}: {e.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as e:
        print(f"{args.dashboard}: invalid JSON: {e}", file=sys.stderr)
        return 1
    if not isinstance(dash, dict):
        print(f"{args.dashboard}: not a dashboard object", file=sys.stderr)
        return 1
    known = Known()
    for path in args.metrics:
        if load_metrics(path, known) == 0:
            print(f"check.py: no metric names found in {path}", file=sys.stderr)
            return 2
    report = Report(args.strict_labels)
    n_panels, n_rows = check_dashboard(dash, known, report)
    for w in report.warnings:
        print(f"warning: {w}")
    for e in report.errors:
        print(f"error: {e}")
    # Unknown series grouped by metric: a histogram's _bucket/_sum/_count under its name.
    unknown: dict[str, tuple[set[str], list[str]]] = {}
    for series, wheres in report.unknown.items():
        base = next((series[: -len(s)] for s in HISTOGRAM_SUFFIXES if series.endswith(s)), series)
        suffixes, places = unknown.setdefault(base, (set(), []))
        suffixes.add(series[len(base):])
        places.extend(w.split(" query ")[0] for w in wheres)
    if unknown:
        print(f"unknown metrics ({len(unknown)}), in none of {', '.join(args.metrics)}:")
        for base in sorted(unknown):
            suffixes, places = unknown[base]
            shown = base if suffixes == {""} else f"{base} (as {', '.join(sorted(x or 'itself' for x in suffixes))})"
            print(f"  {shown}: {'; '.join(dict.fromkeys(places))}")
    status = "FAILED" if report.errors or report.unknown else "ok"
    print(f"{args.dashboard}: {status}: {n_panels} panels ({n_rows} rows), {report.queries} queries, "
          f"{len(report.referenced) + len(unknown)} metrics referenced ({len(unknown)} unknown), "
          f"{len(report.errors)} other errors, {len(report.warnings)} warnings")
    return 1 if report.errors or report.unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
