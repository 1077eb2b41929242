#!/usr/bin/env python3
"""Checks the spans that receiver.py wrote (JSON lines) against expectations given as arguments.

Standard library only: any python3 runs it, the receiver's venv is not needed.

It picks ONE trace (by its root span, by id, or the only one there is) and checks that
  - the trace is connected: one root (--roots), and every other span's parent is a span of the
    same trace (a parent found under another trace id is reported as such);
  - the spans asked for are in it (--require-span, --require-attr, --count, --require-child,
    --require-descendant) and the ones forbidden are not (--forbid-span);
and, over the whole file, the number of traces (--expect-traces) and that no attribute value
matches a pattern (--forbid-value, e.g. tokens or secrets that must never reach a trace).

SELECTORS: conditions joined by " & " (spaces around the ampersand), each one of
    KEY            present (not empty)          !KEY           absent
    KEY=VALUE      equal                        KEY!=VALUE     not equal (or absent)
    KEY~=REGEX     re.search matches            KEY!~REGEX     does not match (or absent)
  KEY is a span field: name, kind (SERVER, CLIENT, INTERNAL...; any case), status (UNSET, OK,
  ERROR; any case), status.message, service (resource service.name), scope (scope name),
  trace_id, span_id, parent_span_id, event (any event's name);
  or attr.NAME / resource.NAME for an attribute; any other KEY is a span attribute.
  Values compare as text: true/false for booleans, decimal for numbers.
  e.g.  'name~=^(GET|POST) ' & 'kind=server & http.route=/demo/token & http.response.status_code=200'

EXAMPLES
  check_trace.py spans.jsonl --wait 15 --select service=dcr-shim \\
      --expect-root-route /demo/authorize \\
      --require-span 'name~=HTTP' --require-attr http.route=/demo/token \\
      --require-descendant 'http.route=/demo/authorize >> kind=client' \\
      --forbid-span 'status=ERROR' --forbid-value 'eyJ[A-Za-z0-9_-]{10,}'
  check_trace.py spans.jsonl --list          (every trace, with its tree)

Exit status: 0 all checks pass, 1 a check failed, 2 bad arguments.
"""

import argparse
import collections
import json
import os
import re
import sys
import time

OPERATORS = ("!~", "~=", "!=", "=")
FIELD_KEYS = {"name", "kind", "status", "status.message", "service", "scope", "trace_id",
              "span_id", "parent_span_id", "event"}
CASELESS = {"kind", "status"}


# ---------------------------------------------------------------------------------------------
# Loading and grouping


def load_spans(path):
    """Every span in the JSON-lines file; a last line still being written is skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    if lines and lines[-1] and not text.endswith("\n"):
        lines = lines[:-1]  # incomplete
    spans = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                spans.append(json.loads(line))
            except ValueError as e:
                raise SystemExit(f"{path}:{n}: not JSON: {e}")
    return spans


def group_by_trace(spans):
    """{trace_id: [spans]} in the order the traces were first seen."""
    traces = {}
    for s in spans:
        traces.setdefault(s["trace_id"], []).append(s)
    return traces


def find_roots(trace_spans):
    """Spans with no parent, or whose parent is not among these spans."""
    ids = {s["span_id"] for s in trace_spans}
    return [s for s in trace_spans if not s.get("parent_span_id") or s["parent_span_id"] not in ids]


def children_map(trace_spans):
    kids = {}
    for s in trace_spans:
        kids.setdefault(s.get("parent_span_id") or "", []).append(s)
    for v in kids.values():
        v.sort(key=lambda s: (s.get("start_time_unix_nano", 0), s["span_id"]))
    return kids


def ancestors(span, by_id):
    seen = set()
    parent = span.get("parent_span_id")
    while parent and parent in by_id and parent not in seen:
        seen.add(parent)
        yield by_id[parent]
        parent = by_id[parent].get("parent_span_id")


# ---------------------------------------------------------------------------------------------
# Selectors


def _text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def resolve(span, key):
    """The values KEY has on SPAN, as text ([] when absent or empty)."""
    if key == "name":
        vals = [span.get("name")]
    elif key == "kind":
        vals = [span.get("kind")]
    elif key == "status":
        vals = [(span.get("status") or {}).get("code")]
    elif key == "status.message":
        vals = [(span.get("status") or {}).get("message")]
    elif key == "service":
        vals = [span.get("service_name")]
    elif key == "scope":
        vals = [(span.get("scope") or {}).get("name")]
    elif key in ("trace_id", "span_id", "parent_span_id"):
        vals = [span.get(key)]
    elif key == "event":
        vals = [e.get("name") for e in span.get("events") or []]
    elif key.startswith("resource."):
        vals = [(span.get("resource") or {}).get(key[len("resource."):])]
    else:
        name = key[len("attr."):] if key.startswith("attr.") else key
        vals = [(span.get("attributes") or {}).get(name)]
    return [_text(v) for v in vals if v is not None and v != ""]


class Condition:
    def __init__(self, text):
        self.text = text.strip()
        t = self.text
        best = None
        for op in OPERATORS:
            i = t.find(op)
            if i > 0 and (best is None or i < best[0] or (i == best[0] and len(op) > len(best[1]))):
                best = (i, op)
        if best is None:
            self.negate = t.startswith("!")
            self.key, self.op, self.value = t.lstrip("!").strip(), "exists", None
        else:
            i, op = best
            self.key, self.op, self.value = t[:i].strip(), op, t[i + len(op):].strip()
            self.negate = False
        if not self.key:
            raise ValueError(f"no key in condition {text!r}")
        if self.op in ("~=", "!~"):
            try:
                self.regex = re.compile(self.value)
            except re.error as e:
                raise ValueError(f"bad regex in {text!r}: {e}") from None

    def __call__(self, span):
        vals = resolve(span, self.key)
        caseless = self.key in CASELESS
        if self.op == "exists":
            return bool(vals) != self.negate
        if self.op in ("=", "!="):
            want = self.value.upper() if caseless else self.value
            hit = any((v.upper() if caseless else v) == want for v in vals)
            return hit if self.op == "=" else not hit
        hit = any(self.regex.search(v) for v in vals)
        return hit if self.op == "~=" else not hit


class Selector:
    """Conditions joined by ' & '; a span matches when every condition holds."""

    def __init__(self, text):
        self.text = text
        self.conditions = [Condition(c) for c in re.split(r"\s+&\s+", text.strip()) if c.strip()]
        if not self.conditions:
            raise ValueError(f"empty selector {text!r}")

    def __call__(self, span):
        return all(c(span) for c in self.conditions)

    def __str__(self):
        return self.text


def parse_relation(text, sep):
    parts = text.split(f" {sep} ")
    if len(parts) != 2:
        raise ValueError(f"want 'PARENT {sep} CHILD' (spaces around {sep}), got {text!r}")
    return Selector(parts[0]), Selector(parts[1])


# ---------------------------------------------------------------------------------------------
# Output


def describe(span, verbose=False):
    a = span.get("attributes") or {}
    bits = [f"{span.get('name')!r}", span.get("kind", "?")]
    for k in ("http.request.method", "http.method", "http.route", "url.path",
              "http.response.status_code", "http.status_code"):
        if k in a:
            bits.append(f"{k}={_text(a[k])}")
    st = span.get("status") or {}
    if st.get("code") not in (None, "", "UNSET"):
        bits.append(f"status={st['code']}" + (f"({st.get('message')})" if st.get("message") else ""))
    bits.append(f"{span.get('duration_ms', 0)}ms")
    bits.append(f"span={span['span_id']}")
    if verbose:
        bits.append(f"attrs={json.dumps(a, sort_keys=True)}")
        if span.get("events"):
            bits.append(f"events={[e.get('name') for e in span['events']]}")
    return " ".join(bits)


def format_tree(trace_spans, verbose=False):
    by_id = {s["span_id"]: s for s in trace_spans}
    kids = children_map(trace_spans)
    out, seen = [], set()

    def walk(span, depth):
        if span["span_id"] in seen:
            out.append("  " * depth + f"(cycle at {span['span_id']})")
            return
        seen.add(span["span_id"])
        out.append("  " * depth + describe(span, verbose))
        for child in kids.get(span["span_id"], []):
            walk(child, depth + 1)

    roots = sorted(find_roots(trace_spans), key=lambda s: s.get("start_time_unix_nano", 0))
    for r in roots:
        parent = r.get("parent_span_id")
        if parent and parent not in by_id:
            out.append(f"  (parent {parent} not in this trace)")
        walk(r, 1)
    for s in trace_spans:  # spans only reachable through a cycle
        if s["span_id"] not in seen:
            walk(s, 1)
    return "\n".join(out)


def trace_summary(trace_id, trace_spans):
    roots = find_roots(trace_spans)
    names = ", ".join(repr(r.get("name")) for r in roots[:3])
    services = sorted({s.get("service_name") or "?" for s in trace_spans})
    return (f"trace {trace_id}: {len(trace_spans)} spans, {len(roots)} root(s) [{names}], "
            f"services {services}")


# ---------------------------------------------------------------------------------------------
# Checks


def connectivity_problems(trace_id, trace_spans, all_spans, want_roots, allow_remote_parent,
                          allow_orphans):
    problems = []
    ids = [s["span_id"] for s in trace_spans]
    dupes = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
    if dupes:
        problems.append(f"span ids seen more than once in the trace: {dupes}")
    elsewhere = {s["span_id"]: s["trace_id"] for s in all_spans if s["trace_id"] != trace_id}
    roots = find_roots(trace_spans)
    id_set = set(ids)
    for s in trace_spans:
        parent = s.get("parent_span_id")
        if not parent or parent in id_set or allow_orphans:
            continue
        if parent in elsewhere:
            problems.append(f"span {s.get('name')!r} ({s['span_id']}) has parent {parent}, "
                            f"which is in another trace ({elsewhere[parent]})")
        elif not allow_remote_parent:
            problems.append(f"span {s.get('name')!r} ({s['span_id']}) has parent {parent}, "
                            "which was not exported (a caller's traceparent? "
                            "--allow-remote-parent accepts that for the root)")
    if want_roots is not None and len(roots) != want_roots:
        problems.append(f"{len(roots)} root spans, want {want_roots}: "
                        + ", ".join(f"{r.get('name')!r} ({r['span_id']})" for r in roots))
    return problems


def choose_trace(traces, args, root_sel):
    """(trace_id or None, problems)"""
    if args.trace_id:
        tid = args.trace_id.lower()
        return (tid, []) if tid in traces else (None, [f"no trace {tid}"])
    if root_sel is None:
        if len(traces) == 1:
            return next(iter(traces)), []
        return None, [f"{len(traces)} traces and no --root/--expect-root-route/--trace-id "
                      "to pick one"]
    matching = [tid for tid, sp in traces.items() if any(root_sel(r) for r in find_roots(sp))]
    if not matching:
        return None, [f"no trace has a root span matching {root_sel}"]
    if len(matching) > 1 and args.pick == "one":
        return None, [f"{len(matching)} traces have a root span matching {root_sel} "
                      f"(use --pick first|last|any): {matching}"]
    if args.pick == "last":
        return matching[-1], []
    return matching[0], []


def check_one_trace(tid, trace_spans, spans, args):
    problems = connectivity_problems(tid, trace_spans, spans, args.roots,
                                     args.allow_remote_parent, args.allow_orphans)
    if len(trace_spans) < args.min_spans:
        problems.append(f"{len(trace_spans)} spans, want at least {args.min_spans}")
    for sel in args.require:
        if not any(sel(s) for s in trace_spans):
            others = sorted({s["trace_id"] for s in spans if s["trace_id"] != tid and sel(s)})
            hint = f" (but spans in {len(others)} other trace(s) do: {others[:3]})" if others else ""
            problems.append(f"no span matches {sel}{hint}")
    for sel in args.forbid:
        bad = [s for s in trace_spans if sel(s)]
        if bad:
            problems.append(f"{len(bad)} span(s) match forbidden {sel}: "
                            + "; ".join(describe(s) for s in bad[:5]))
    for sel, want in args.counts:
        n = sum(1 for s in trace_spans if sel(s))
        at_least = want.endswith("+")
        w = int(want.rstrip("+"))
        if (n < w) if at_least else (n != w):
            problems.append(f"{n} spans match {sel}, want {want}")
    by_id = {s["span_id"]: s for s in trace_spans}
    for parent_sel, child_sel in args.children:
        if not any(child_sel(s) and s.get("parent_span_id") in by_id
                   and parent_sel(by_id[s["parent_span_id"]]) for s in trace_spans):
            problems.append(f"no span matching {child_sel} has a parent matching {parent_sel}")
    for anc_sel, desc_sel in args.descendants:
        if not any(desc_sel(s) and any(anc_sel(a) for a in ancestors(s, by_id))
                   for s in trace_spans):
            problems.append(f"no span matching {desc_sel} has an ancestor matching {anc_sel}")
    return problems


def _values(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _values(v)
    elif isinstance(node, list):
        for v in node:
            yield from _values(v)
    elif node is not None:
        yield _text(node)


def forbidden_value_problems(spans, patterns):
    problems = []
    for rx in patterns:
        for s in spans:
            places = [("attributes", s.get("attributes")), ("resource", s.get("resource")),
                      ("events", [e.get("attributes") for e in s.get("events") or []]),
                      ("links", [ln.get("attributes") for ln in s.get("links") or []]),
                      ("name", s.get("name")),
                      ("status.message", (s.get("status") or {}).get("message"))]
            for where, node in places:
                for v in _values(node):
                    if rx.search(v):
                        problems.append(f"span {s.get('name')!r} ({s['span_id']}) {where} has a "
                                        f"value matching forbidden /{rx.pattern}/: {v[:80]!r}")
                        break
    return problems


def evaluate(args, root_sel):
    """(problems, report lines)"""
    spans = [s for s in load_spans(args.spans) if all(sel(s) for sel in args.select)]
    traces = group_by_trace(spans)
    report = [f"{len(spans)} spans in {len(traces)} traces"
              + (f" (selected by {', '.join(map(str, args.select))})" if args.select else "")]
    if not spans:
        return ["no spans (yet)"], report
    problems = []
    if args.expect_traces is not None and len(traces) != args.expect_traces:
        problems.append(f"{len(traces)} traces, want {args.expect_traces}: "
                        + "; ".join(trace_summary(t, sp) for t, sp in traces.items()))
    problems += forbidden_value_problems(spans, args.forbid_value)
    if args.list:
        for tid, sp in traces.items():
            report += [trace_summary(tid, sp), format_tree(sp, args.verbose)]
        return problems, report

    tid, pick_problems = choose_trace(traces, args, root_sel)
    problems += pick_problems
    if tid is None:
        report += [trace_summary(t, sp) for t, sp in traces.items()]
        return problems, report

    if args.pick == "any" and root_sel is not None:
        candidates = [t for t, sp in traces.items() if any(root_sel(r) for r in find_roots(sp))]
        results = [(t, check_one_trace(t, traces[t], spans, args)) for t in candidates]
        good = [t for t, p in results if not p]
        tid = good[0] if good else tid
        problems += [] if good else dict(results)[tid]
    else:
        problems += check_one_trace(tid, traces[tid], spans, args)
    report += [trace_summary(tid, traces[tid]), format_tree(traces[tid], args.verbose)]
    return problems, report


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("SELECTORS"):],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spans", help="the JSON-lines file receiver.py writes")
    p.add_argument("--select", action="append", default=[], metavar="SEL",
                   help="consider only spans matching SEL (repeatable), e.g. service=dcr-shim")
    g = p.add_argument_group("which trace")
    g.add_argument("--root", metavar="SEL", help="the trace whose root span matches SEL")
    g.add_argument("--expect-root-route", metavar="ROUTE",
                   help="the trace whose root span has http.route=ROUTE (adds to --root)")
    g.add_argument("--trace-id", metavar="HEX", help="this trace")
    g.add_argument("--pick", choices=("one", "first", "last", "any"), default="one",
                   help="several traces match the root: one = that is an error (default); "
                        "first/last = check that one; any = pass if any of them passes")
    g = p.add_argument_group("expectations on that trace")
    g.add_argument("--require-span", action="append", default=[], metavar="SEL",
                   help="some span matches SEL (repeatable)")
    g.add_argument("--require-attr", action="append", default=[], metavar="KEY=VALUE",
                   help="some span has attribute KEY=VALUE (also KEY~=REGEX) (repeatable)")
    g.add_argument("--forbid-span", action="append", default=[], metavar="SEL",
                   help="no span matches SEL (repeatable), e.g. status=ERROR")
    g.add_argument("--count", action="append", nargs=2, default=[], metavar=("SEL", "N"),
                   help="exactly N spans match SEL ('N+': at least N) (repeatable)")
    g.add_argument("--require-child", action="append", default=[], metavar="'A > B'",
                   help="some span matching B has a parent matching A (repeatable)")
    g.add_argument("--require-descendant", action="append", default=[], metavar="'A >> B'",
                   help="some span matching B has an ancestor matching A (repeatable)")
    g.add_argument("--roots", type=int, default=1,
                   help="how many root spans the trace has (default 1)")
    g.add_argument("--allow-remote-parent", action="store_true",
                   help="the root may name a parent that was not exported (a caller's "
                        "traceparent); by default a root has no parent")
    g.add_argument("--allow-orphans", action="store_true",
                   help="do not require every parent to be in the trace")
    g.add_argument("--min-spans", type=int, default=1, help="at least this many spans")
    g = p.add_argument_group("over all selected spans")
    g.add_argument("--expect-traces", type=int, metavar="N", help="exactly N distinct traces")
    g.add_argument("--forbid-value", action="append", default=[], metavar="REGEX",
                   help="no attribute value, span name or status message matches REGEX")
    g.add_argument("--forbid-literal", action="append", default=[], metavar="TEXT",
                   help="like --forbid-value for an exact text (a token, a secret); write "
                        "--forbid-literal=TEXT, as a secret may begin with '-'")
    g = p.add_argument_group("running")
    g.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="re-read the file until every check passes or SECONDS have passed "
                        "(exporters send in batches)")
    g.add_argument("--list", action="store_true", help="print every trace as a tree")
    g.add_argument("-v", "--verbose", action="store_true", help="print all attributes")
    g.add_argument("-q", "--quiet", action="store_true", help="print the tree only on failure")
    args = p.parse_args(argv)

    try:
        args.select = [Selector(s) for s in args.select]
        roots = [Selector(s) for s in ([args.root] if args.root else [])]
        if args.expect_root_route:
            roots.append(Selector(f"http.route={args.expect_root_route}"))
        root_sel = None
        if roots:
            root_sel = Selector(" & ".join(s.text for s in roots))
        args.require = ([Selector(s) for s in args.require_span]
                        + [Selector(f"attr.{a}" if not a.startswith("attr.") else a)
                           for a in args.require_attr])
        args.forbid = [Selector(s) for s in args.forbid_span]
        for _, n in args.count:
            if not re.fullmatch(r"\d+\+?", n):
                raise ValueError(f"--count wants N or N+, got {n!r}")
        args.counts = [(Selector(s), n) for s, n in args.count]
        args.children = [parse_relation(t, ">") for t in args.require_child]
        args.descendants = [parse_relation(t, ">>") for t in args.require_descendant]
        args.forbid_value = ([re.compile(r) for r in args.forbid_value]
                             + [re.compile(re.escape(t)) for t in args.forbid_literal if t])
        if any(not t for t in args.forbid_literal):
            raise ValueError("--forbid-literal was given an empty text")
    except (ValueError, re.error) as e:
        p.error(str(e))

    deadline = time.monotonic() + args.wait
    while True:
        problems, report = evaluate(args, root_sel)
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(0.25)

    if problems or not args.quiet:
        print("\n".join(report))
    name = os.path.basename(args.spans)
    if problems:
        for pr in problems:
            print(f"FAIL: {pr}")
        print(f"check_trace: {name}: {len(problems)} problem(s)")
        return 1
    print(f"check_trace: {name}: all checks pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
