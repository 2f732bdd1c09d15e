"""Imports between speechssl's modules: cycles (module-level and in function bodies), function-local imports,
imports that go up the layers of docs/DESIGN.md, and imports from one task module to another.
``python tools/import_graph.py [--local]``; exit 1 on a cycle, an upward import or a new import between tasks.
The test suite runs it (tests/test_layout.py)."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent / "speechssl"
# lower layers never import higher ones (a package may import itself and anything below)
LAYERS = [
    ("constants", "errors", "utils", "config"),
    ("audio",),
    ("data",),
    ("corpus",),
    ("nn",),
    ("models",),
    ("interop",),
    ("hub", "objectives", "clustering", "pipelines"),
    ("s3prl",),
    ("downstream",),
    ("tasks", "config_check"),
    ("report",),
    ("cli",),
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
# tasks/ modules that are not tasks: what several tasks share (data modules, the TTS helpers) and the registry that
# names every task; a task may import these, never another task (issue 41)
TASK_HELPERS = {"common", "audio_data", "data_source", "shard_data", "tts_common", "vocoder_data", "registry"}
# known task -> task imports, each a debt to move out; a new one fails (none left since WavThruVec's inference
# and judges moved to downstream/)
TASK_IMPORT_DEBTS: Set[Tuple[str, str]] = set()


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(current: str, is_package: bool, node: ast.ImportFrom) -> List[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        pkg = current.split(".") if is_package else current.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    if not base.startswith("speechssl"):
        return []
    return [f"{base}.{a.name}" for a in node.names] + [base]  # `from pkg import module` -> pkg.module


def edges() -> Tuple[Dict[str, Set[str]], List[Tuple[str, int, str]]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: Dict[str, Set[str]] = defaultdict(set)
    local: List[Tuple[str, int, str]] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = resolve(name, path.name == "__init__.py", node)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("speechssl")]
            else:
                continue
            p, in_function = parents.get(node), False
            while p is not None:
                in_function |= isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef))
                p = parents.get(p)
            if in_function:
                local.append((name, node.lineno, ast.unparse(node)))
            resolved = set()
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    resolved.add(t)
            if (
                isinstance(node, ast.ImportFrom)
                and targets
                and any(f"{targets[-1]}.{a.name}" in modules for a in node.names)
            ):
                resolved.discard(targets[-1])  # `from . import x` imports the module x, not its package's names
            graph[name] |= resolved
    return graph, local


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def upward(graph: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
    out = []
    for a, targets in graph.items():
        la = LAYER.get(a.split(".")[1] if "." in a else "", None)
        for b in targets:
            lb = LAYER.get(b.split(".")[1] if "." in b else "", None)
            if la is not None and lb is not None and lb > la:
                out.append((a, b))
    return sorted(out)


def task_imports(graph: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
    """``(task, task)`` pairs where one task module imports another (a package like ``superb`` is one task)."""
    out = set()
    for a, targets in graph.items():
        for b in targets:
            pa, pb = a.split("."), b.split(".")
            if len(pa) > 2 and len(pb) > 2 and pa[1] == pb[1] == "tasks" and pa[2] != pb[2]:
                if pa[2] != "registry" and pb[2] not in TASK_HELPERS:
                    out.add((pa[2], pb[2]))
    return sorted(out)


def main() -> int:
    graph, local = edges()
    cyc = cycles(graph)
    up = upward(graph)
    sideways = [pair for pair in task_imports(graph) if pair not in TASK_IMPORT_DEBTS]
    for a, b in sideways:
        print(f"import between two tasks: speechssl.tasks.{a} -> speechssl.tasks.{b}")
    for comp in cyc:
        print("cycle:", " <-> ".join(comp))
    for a, b in up:
        print(f"upward import: {a} -> {b}")
    if "--local" in sys.argv:
        for name, line, text in local:
            print(f"local import: {name}:{line}: {text}")
    print(
        f"{len(cyc)} cycles, {len(up)} upward imports, {len(sideways)} imports between tasks "
        f"({len(TASK_IMPORT_DEBTS)} known, listed in TASK_IMPORT_DEBTS), {len(local)} function-local imports"
    )
    return 1 if cyc or up or sideways else 0


if __name__ == "__main__":
    sys.exit(main())
