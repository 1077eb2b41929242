#!/usr/bin/env python3
"""Structure figures of dcr-shim's src/: the module import graph, the longest functions and
the count of `pub` items. Usage: python3 tools/codemap.py [src-dir]

Reads `use crate::…` / `crate::…` paths and `super::` imports line by line (no Rust parser:
good enough for this codebase's style, which keeps one item per line in `use` lists)."""
import os
import re
import sys
from collections import defaultdict

SRC = sys.argv[1] if len(sys.argv) > 1 else "src"
LAYERS = ["http", "app", "oauth", "upstream", "store", "config", "domain", "net", "crypto", "keys", "dev_idp"]


def module_of(path):
    rel = os.path.relpath(path, SRC)
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def top(parts):
    return parts[0] if parts else "crate"


def files():
    for root, _, names in os.walk(SRC):
        for n in sorted(names):
            if n.endswith(".rs"):
                yield os.path.join(root, n)


def strip_tests(text):
    # Drop `#[cfg(test)] mod tests { … }` blocks: tests may import what they like.
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]


edges = defaultdict(set)
pub_items = pub_crate = 0
functions = []
fn_re = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")
for path in files():
    text = open(path, encoding="utf-8").read()
    body = strip_tests(text)
    # Comments may name other modules; only code counts as an import.
    code = "\n".join(l for l in body.splitlines() if not l.lstrip().startswith("//"))
    mod = module_of(path)
    here = top(mod)
    for m in re.finditer(r"\bcrate::(\w+)", code):
        if m.group(1) != here:
            edges[here].add(m.group(1))
    for m in re.finditer(r"\buse\s+super::(\w+)", code):
        # `super::x` from a nested file points into the same top module unless the file is
        # directly under src/.
        if len(mod) <= 1 and m.group(1) != here:
            edges[here].add(m.group(1))
    for line in body.splitlines():
        s = line.strip()
        if re.match(r"pub\s+(?:async\s+)?(fn|struct|enum|trait|const|static|type|mod|use)\b", s):
            pub_items += 1
        elif re.match(r"pub\s+\w+\s*:", s):
            pub_items += 1  # a public field
        elif s.startswith("pub(crate)") or s.startswith("pub(super)"):
            pub_crate += 1
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = fn_re.match(lines[i])
        if m and not lines[i].rstrip().endswith(";"):
            indent = len(m.group(1))
            j = i + 1
            while j < len(lines):
                l = lines[j]
                if l.strip() == "}" and len(l) - len(l.lstrip()) == indent:
                    break
                j += 1
            functions.append((j - i + 1, f"{os.path.relpath(path, SRC)}:{i + 1}", m.group(2)))
        i += 1

print("== module imports (crate::X from src/<module>; tests excluded)")
for a in sorted(edges):
    print(f"  {a:10} -> {', '.join(sorted(edges[a]))}")
cycles = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})
print("== two-way imports (each pair imports the other)")
for a, b in cycles:
    print(f"  {a} <-> {b}")
if not cycles:
    print("  none")
print("== longest functions (lines)")
for n, where, name in sorted(functions, reverse=True)[:12]:
    print(f"  {n:4}  {name}  ({where})")
print("== visibility")
print(f"  pub items and fields: {pub_items}")
print(f"  pub(crate)/pub(super): {pub_crate}")
