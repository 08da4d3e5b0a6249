"""The engine boundary is public: no module reads another object's private attributes (STYLE.md rule 11).

``x._name`` is allowed only on ``self``/``cls``, or inside a class that defines ``_name`` itself
(a copy of one's own kind, like ``other._tokens`` in ``Vocabulary.__eq__``). Everything else
goes through documented calls, so a stream, a batcher, a benchmark or an exporter cannot come
to depend on another object's insides.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("runtime", "train", "export", "benchmarks", "examples")


def _own_names(cls: ast.ClassDef) -> set[str]:
    """The private names a class defines: its methods and class attributes, and ``self._x = …``."""
    names = set()
    for node in ast.walk(cls):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node in cls.body:
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node in cls.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if n.startswith("_")}


def private_reads(source: str) -> list[tuple[int, str]]:
    """(line, ``expr._name``) for every read of another object's private attribute in ``source``."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, allowed: frozenset[str]) -> None:
        if isinstance(node, ast.ClassDef):
            allowed = allowed | _own_names(node)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not own and node.attr not in allowed:
                found.append((node.lineno, ast.unparse(node)))
        for child in ast.iter_child_nodes(node):
            visit(child, allowed)

    visit(ast.parse(source), frozenset())
    return found


def test_the_rule_catches_a_reach_into_another_object():
    source = '''
class Stream:
    def __init__(self):
        self._pending = ""
    def fork(self, other):
        return other._pending          # the same class: fine

class Batcher:
    def feed(self, stream, model):
        self._members = [stream]
        return stream._pending, model._session, self._members
'''
    assert private_reads(source) == [(11, "stream._pending"), (11, "model._session")]
    assert private_reads("import jieba\njieba._lock\n") == [(2, "jieba._lock")]  # a module's privates too


@pytest.mark.parametrize("folder", CHECKED)
def test_no_module_reads_another_objects_private_attributes(folder):
    reads = [f"{path.relative_to(ROOT)}:{line}: {expr}"
             for path in sorted((ROOT / folder).rglob("*.py"))
             for line, expr in private_reads(path.read_text(encoding="utf-8"))]
    assert not reads, "reads of another object's private attributes (make them public engine calls):\n" + \
        "\n".join(reads)
