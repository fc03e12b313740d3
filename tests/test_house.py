"""The house rules for model/, worker/ and storage/ (migrations aside): no function over 40 lines
and no module over 300, so that each piece reads in one sitting and a module holds one
responsibility."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("model", "worker", "storage")
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 40, 300


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py")
                  if "migrations" not in path.relative_to(REPO).parts)


def oversized(path: Path) -> list[str]:
    """What in this module breaks a rule: the module's length and each long function's."""
    source = path.read_text(encoding="utf-8")
    found = [f"{n} lines" for n in [len(source.splitlines())] if n > MAX_MODULE_LINES]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                found.append(f"{node.name}() at line {node.lineno}: {n} lines")
    return found


def test_functions_and_modules_are_short():
    found = {str(p.relative_to(REPO)): what for p in modules() if (what := oversized(p))}
    assert found == {}
