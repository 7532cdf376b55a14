#!/usr/bin/env python3
"""Checks crates/server/src against the layer rules in ARCHITECTURE.md ("Layers"): every
`crate::x` reference must point at the same or a lower layer, and no two files may import
each other in a circle. Prints violations and exits 1 if there are any.
Usage: scripts/layers.py [crate-src-dir] [--graph]"""
import os, re, sys
from collections import defaultdict

# Bottom first. A module may import its own layer and anything below it.
LAYERS = [
    ["model", "clock", "failpoint", "net"],
    ["config", "metrics"],
    ["store"],
    ["record", "hub", "rules", "keys"],
    ["archive"],
    ["state"],
    ["push"],
    ["ingest", "http"],
    ["app", "bench"],
]
LEVEL = {m: i for i, layer in enumerate(LAYERS) for m in layer}

def files(root):
    for d, _, fs in os.walk(root):
        for f in fs:
            if f.endswith(".rs"):
                yield os.path.join(d, f)

def module_path(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return rel  # e.g. ["push", "commit"]

def strip_tests(text):
    # Unit tests may reach across layers, and comments name anything: only the code counts.
    i = text.find("#[cfg(test)]\nmod tests")
    text = text if i < 0 else text[:i]
    return re.sub(r"//[^\n]*", "", text)

def refs(root, path, mods):
    text = strip_tests(open(path).read())
    me = module_path(root, path)
    out = set()
    for m in re.finditer(r"\bcrate::([a-z_]+)(?:::([a-z_]+))?", text):
        out.add(tuple(x for x in m.groups() if x))
    # `super::x` from a file inside a module: a sibling in the same top-level module.
    for m in re.finditer(r"\bsuper::([a-z_]+)", text):
        parent = me[:-1] if len(me) > 1 else me
        if me[-1] in ("mod",) or len(me) == 1:
            continue
        out.add(tuple(parent[:1]) + ((m.group(1),) if len(parent) == 1 else ()))
    return me, out

def main():
    root = next((a for a in sys.argv[1:] if not a.startswith("--")), "crates/server/src")
    problems = []
    edges = defaultdict(set)
    for p in files(root):
        me, rs = refs(root, p, None)
        top = me[0] if me else "lib"
        if top in ("lib", "main"):
            continue
        for r in rs:
            target = r[0]
            if target not in LEVEL:
                continue
            if top in LEVEL and LEVEL[target] > LEVEL[top]:
                problems.append(f"{os.path.relpath(p, root)}: {top} (layer {LEVEL[top]}) imports {target} (layer {LEVEL[target]})")
            # file graph: module file -> target top-level module (or submodule when same top)
            src = "/".join(me)
            if target == top and len(r) > 1:
                dst = f"{top}/{r[1]}"
            else:
                dst = target
            if dst != src:
                edges[src].add(dst)
    # cycles among files/modules (a module node "x" stands for x/mod.rs and its re-exports)
    nodes = set(edges) | {d for ds in edges.values() for d in ds}
    def norm(n):
        return n
    color = {}
    stack = []
    cycles = []
    def dfs(n):
        color[n] = 1
        stack.append(n)
        for d in sorted(edges.get(n, ())):
            if color.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in color:
                dfs(d)
        stack.pop()
        color[n] = 2
    for n in sorted(nodes):
        if n not in color:
            dfs(n)
    for c in cycles:
        # A submodule importing its own parent module's re-exports is not a circle.
        if len(c) == 3 and (c[1].startswith(c[0] + "/") or c[0].startswith(c[1] + "/")):
            continue
        problems.append("import circle: " + " -> ".join(c))
    if "--graph" in sys.argv:
        for n in sorted(edges):
            print(f"{n}: {' '.join(sorted(edges[n]))}")
    for p in problems:
        print(p)
    print(f"{len(problems)} layer problem(s)")
    sys.exit(1 if problems else 0)

main()
