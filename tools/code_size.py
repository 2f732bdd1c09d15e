"""Module and function sizes of speechssl: the modules over ``--module-lines`` and the functions over
``--function-lines`` (data tables, i.e. functions that are one literal, are not counted). Exit 1 when any is
over. ``python tools/code_size.py [--module-lines 600] [--function-lines 100]``; the test suite runs it."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "speechssl"


def oversized(module_lines: int, function_lines: int):
    modules, functions = [], []
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text()
        n = len(text.splitlines())
        rel = path.relative_to(ROOT.parent)
        if n > module_lines:
            modules.append((str(rel), n))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
                is_table = (
                    len(body) == 1
                    and isinstance(body[0], ast.Return)
                    and isinstance(body[0].value, (ast.Dict, ast.List, ast.Tuple, ast.Call))
                )
                if length > function_lines and not is_table:
                    functions.append((f"{rel}:{node.lineno} {node.name}", length))
    return modules, functions


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--module-lines", type=int, default=600)
    p.add_argument("--function-lines", type=int, default=100)
    a = p.parse_args()
    modules, functions = oversized(a.module_lines, a.function_lines)
    for name, n in modules:
        print(f"module {name}: {n} lines")
    for name, n in functions:
        print(f"function {name}: {n} lines")
    print(f"{len(modules)} modules over {a.module_lines} lines, {len(functions)} functions over {a.function_lines}")
    return 1 if modules or functions else 0


if __name__ == "__main__":
    sys.exit(main())
