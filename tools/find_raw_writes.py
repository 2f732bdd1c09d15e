"""Find file writes in speechssl/ that bypass ``utils.atomic`` (docs/DESIGN.md: every file is written through it).

A write is ``Path.write_text`` / ``write_bytes``, ``open(..., "w"|"wb"|"a"...)``, ``np.save``, ``sf.write``,
``torch.save`` or ``savefig`` that is not inside a ``with atomic_path(...)`` block and whose line does not say
``# not atomic: <why>`` (a folder staged and renamed whole, an in-memory buffer). ``python tools/find_raw_writes.py``
prints them as ``file:line: call`` and exits 1 when there is any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent / "speechssl"
WRITERS = {"write_text", "write_bytes", "savefig"}
MODULE_WRITERS = {("np", "save"), ("numpy", "save"), ("sf", "write"), ("soundfile", "write"), ("torch", "save")}


def _is_atomic_with(node: ast.AST) -> bool:
    if not isinstance(node, ast.With):
        return False
    for item in node.items:
        call = item.context_expr
        if isinstance(call, ast.Call):
            f = call.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("atomic_path", "atomic_dir"):
                return True
    return False


def _is_write(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Attribute):
        if f.attr in WRITERS:
            return f.attr
        if isinstance(f.value, ast.Name) and (f.value.id, f.attr) in MODULE_WRITERS:
            return f"{f.value.id}.{f.attr}"
    if isinstance(f, ast.Name) and f.id == "open":
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax"):
            return f"open(mode={mode.value!r})"
    return ""


def raw_writes(root: Path = ROOT) -> List[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "atomic.py":
            continue
        text = path.read_text()
        tree, lines = ast.parse(text), text.splitlines()
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and (what := _is_write(node))
                and "# not atomic:" not in lines[node.lineno - 1]
            ):
                p, inside = parents.get(node), False
                while p is not None and not inside:
                    inside, p = _is_atomic_with(p), parents.get(p)
                if not inside:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {what}")
    return found


if __name__ == "__main__":
    hits = raw_writes()
    print("\n".join(hits) or "no raw writes")
    sys.exit(1 if hits else 0)
