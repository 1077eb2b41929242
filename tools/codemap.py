#!/usr/bin/env python3
"""Structure of dcr-shim's src/: which file imports which, checked.

    python3 tools/codemap.py [--src DIR]          the graph, the longest functions, `pub` counts
    python3 tools/codemap.py --check [--src DIR]  exit 1 on a file-level import circle or an
                                                  arrow against the layers (docs/architecture.md)

An import is a path to an item of another file: `use crate::a::b::Item` (braces expanded),
`super::…`, `self::…`, `crate::…` written inline, and `dcr_shim::…` from the binary. A path
is followed through the re-exports of the file it names (`pub use x::Item` in a `mod.rs`), so
that the arrow points at the file that defines the item; a `mod.rs` or `lib.rs` re-exporting
its children is a module's face, not an importer. Test modules (`#[cfg(test)]` to the end of
the file) import what they like and are left out. No Rust parser: this codebase's style (one
`use` tree per statement, `mod tests` last) is what it reads.
"""
import argparse
import os
import re
import sys
from collections import defaultdict

# Top-level modules from the top layer down: a file may import files of its own layer or of a
# layer below, never above. Names on one line are one layer (they may import each other's
# files, the file graph still having no circle).
LAYERS = [
    ["main"],
    ["admin_cli"],
    ["app"],
    ["reload", "admin"],
    ["http", "dev_idp"],
    ["gateway"],
    ["oauth", "log_budget"],
    ["minting"],
    ["secret_fingerprint"],
    ["upstream", "store"],
    ["telemetry", "metrics", "audit_log"],
    ["config"],
    ["domain", "net"],
    ["crypto"],
    ["clock"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def module_files(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    out = {}
    for root, _, names in os.walk(src):
        for n in names:
            if not n.endswith(".rs"):
                continue
            path = os.path.join(root, n)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts == ["lib"]:
                parts = []
            out[tuple(parts)] = path
    return out


TEST_MOD_RE = re.compile(r"^\s*#\[cfg\(test\)\]\s*\n\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", re.M)


def strip_tests(text):
    """The file up to its test module (`#[cfg(test)] mod … {`, last in this codebase's files)."""
    m = TEST_MOD_RE.search(text)
    return text if not m else text[: m.start()]


def code_of(text):
    """The file without tests, comments and string contents."""
    body = strip_tests(text)
    body = re.sub(r"/\*.*?\*/", " ", body, flags=re.S)
    lines = []
    for line in body.splitlines():
        line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
        i = line.find("//")
        lines.append(line if i < 0 else line[:i])
    return "\n".join(lines)


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [re.sub(r"\s+as\s+\w+$", "", tree)] if tree else []
    prefix = tree[:i]
    inner = tree[i + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        for e in expand(p):
            out.append(prefix + e if e != "self" else prefix.rstrip(":"))
    return out


USE_RE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
INLINE_RE = re.compile(r"\b((?:crate|super|self|dcr_shim)(?:::\w+)+)")


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = module_files(src)
        self.by_file = {f: m for m, f in self.files.items()}
        self.code = {f: code_of(open(f, encoding="utf-8").read()) for f in self.files.values()}
        # Re-exports: module -> name -> absolute path.
        self.reexports = defaultdict(dict)
        for module, f in self.files.items():
            for m in USE_RE.finditer(self.code[f]):
                if not m.group(1):
                    continue
                for path in expand(m.group(2)):
                    segs = self.absolute(module, path.split("::"))
                    if segs:
                        self.reexports[module][segs[-1]] = segs

    def is_binary(self, module):
        return module == ("main",)

    def absolute(self, module, segs):
        """A path as written in `module`, from the crate root; None for other crates. `self`
        and `super` are relative to the module itself (the file `a/b.rs` is module a::b)."""
        segs = [s.strip() for s in segs if s.strip()]
        if not segs:
            return None
        here = list(module)
        head = segs[0]
        if head == "crate" or (head == "dcr_shim" and self.is_binary(module)):
            return segs[1:]
        if head == "self":
            return here + segs[1:]
        if head == "super":
            while segs and segs[0] == "super":
                here = here[:-1]
                segs = segs[1:]
            return here + segs
        # A plain path: a child module of this one (`use tokens::X` in a mod.rs), else an
        # outside crate.
        if tuple(here + [head]) in self.files:
            return here + segs
        return None

    def resolve(self, segs, depth=0):
        """The file that defines the item `segs` names (following re-exports)."""
        for n in range(len(segs), -1, -1):
            module = tuple(segs[:n])
            if module in self.files:
                rest = segs[n:]
                if rest and depth < 8 and rest[0] in self.reexports.get(module, {}):
                    target = self.reexports[module][rest[0]] + rest[1:]
                    return self.resolve(target, depth + 1)
                return self.files[module]
        return None

    def children(self, module):
        return {m[-1] for m in self.files if len(m) == len(module) + 1 and m[: len(module)] == module}

    def edges(self):
        out = defaultdict(set)
        for module, f in self.files.items():
            face = f.endswith(("mod.rs", "lib.rs"))
            text_wo_use = USE_RE.sub(" ", self.code[f])
            # Module declarations (`mod copy;`) name a child, they do not use it.
            text_wo_use = re.sub(r"\b(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*;", " ", text_wo_use)
            used_words = set(re.findall(r"\b\w+\b", text_wo_use))
            paths = []
            for m in USE_RE.finditer(self.code[f]):
                for path in expand(m.group(2)):
                    # A module's face re-exporting its children imports nothing by that, unless
                    # it uses the name itself.
                    name = re.split(r"\s+as\s+|::", path)[-1].strip()
                    if m.group(1) and face and name not in used_words:
                        continue
                    paths.append(re.sub(r"\s+as\s+\w+$", "", path))
            paths += [m.group(1) for m in INLINE_RE.finditer(text_wo_use)]
            # A child module named by its bare name (`token::token` in a mod.rs).
            kids = self.children(module)
            if kids:
                kid_re = re.compile(r"(?<![\w:])((?:" + "|".join(sorted(kids)) + r")(?:::\w+)+)")
                paths += [m.group(1) for m in kid_re.finditer(text_wo_use)]
            for path in paths:
                segs = self.absolute(module, path.split("::"))
                if segs is None:
                    continue
                target = self.resolve(segs)
                if target and target != f:
                    out[f].add(target)
        return out

    def top(self, f):
        m = self.by_file[f]
        return m[0] if m else "lib"


def circles(edges):
    """Strongly connected components of two files or more (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def layer_violations(crate, edges):
    out = []
    for a, targets in edges.items():
        ta = crate.top(a)
        for b in targets:
            tb = crate.top(b)
            if ta == tb or "lib" in (ta, tb):
                continue
            if ta not in RANK or tb not in RANK:
                out.append((a, b, f"{ta if ta not in RANK else tb} has no layer in tools/codemap.py"))
            elif RANK[tb] < RANK[ta]:
                out.append((a, b, f"{ta} is below {tb}"))
    return sorted(out)


def longest_functions(crate, n=12):
    fn_re = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")
    found = []
    for f in crate.files.values():
        lines = strip_tests(open(f, encoding="utf-8").read()).splitlines()
        for i, line in enumerate(lines):
            m = fn_re.match(line)
            if not m or line.rstrip().endswith(";"):
                continue
            indent = len(m.group(1))
            j = i + 1
            while j < len(lines) and not (lines[j].strip() == "}" and len(lines[j]) - len(lines[j].lstrip()) == indent):
                j += 1
            found.append((j - i + 1, f"{os.path.relpath(f, crate.src)}:{i + 1}", m.group(2)))
    return sorted(found, reverse=True)[:n]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", default="src")
    p.add_argument("--check", action="store_true", help="exit 1 on a circle or a layer violation")
    args = p.parse_args(argv)
    crate = Crate(args.src)
    edges = crate.edges()
    found_circles = circles(edges)
    violations = layer_violations(crate, edges)
    rel = lambda f: os.path.relpath(f, args.src)
    if not args.check:
        tops = defaultdict(set)
        for a, ts in edges.items():
            for b in ts:
                if crate.top(a) != crate.top(b):
                    tops[crate.top(a)].add(crate.top(b))
        print("== module imports (top-level modules; arrows between files of src/)")
        for a in sorted(tops):
            print(f"  {a:18} -> {', '.join(sorted(tops[a]))}")
        print(f"== files: {len(crate.files)}, file-level arrows: {sum(len(t) for t in edges.values())}")
        print("== longest functions (lines)")
        for n, where, name in longest_functions(crate):
            print(f"  {n:4}  {name}  ({where})")
    print("== import circles between files")
    for c in found_circles:
        print("  " + " <-> ".join(rel(f) for f in c))
        for a in c:
            for b in sorted(edges[a]):
                if b in c:
                    print(f"      {rel(a)} -> {rel(b)}")
    if not found_circles:
        print("  none")
    print("== arrows against the layers (docs/architecture.md)")
    for a, b, why in violations:
        print(f"  {rel(a)} -> {rel(b)}: {why}")
    if not violations:
        print("  none")
    if args.check and (found_circles or violations):
        print("codemap: the structure check failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
