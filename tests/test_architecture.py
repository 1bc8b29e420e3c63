"""The import order of the package: every import goes down, and no import cycle exists.

The order, from the bottom up (a module may import its own layer and the layers below)::

    errors, _version             what can go wrong; the version
    crashpoints                  the test hook of the crash suites
    tree                         named nodes, paths, rendering (no values, no storage):
                                 names -> annotations -> render -> node
    storage                      values and records to bytes and files (knows no nodes)
      values:  records, valuecodec_base, valuecodec_registry, valuecodec, and the
               pandas and sparse codecs (registered, never named by the core),
               recordformat, recordslots, runbatch, recorddecode, recordcodec
      interface, memory
      hdf5:    layout, options -> sizes -> writeguard -> journal_format -> journal
               -> damage -> files (handles, locks) -> codecs -> columns -> cells
               -> buffering -> samedefinition -> skeletonnode -> definitions -> skeleton -> runs
               -> groups -> store
               -> recovery -> writer -> backend -> overlay -> inspect -> the package
    leaves                       parameters and results: values -> base -> parameter, result
    trajectory                   the tree of a study, its runs and views
    io -> run                    files opened and saved; the environment that runs a study
    report
    pytraj                       the public API (``pytraj/__init__.py``)
    cli, compat                  built over the public API
    testing, __main__

How imports count:

- module-level imports count for both checks;
- imports inside functions count for both, unless a comment on the import (or the line
  above it) says it keeps ``import pytraj`` fast (:data:`SPEED_MARK`): those load a heavy
  part on first use and are allowed to point anywhere;
- imports under ``if TYPE_CHECKING`` count for the order (naming a type of a higher layer
  is depending on it) but not for cycles (they never run, and a part annotated with the
  type of the object that holds it is the normal back-reference of composition).

An import of a package's ``__init__`` (``from pytraj.storage import x`` where ``x`` is not a
submodule) is an import of that package's top, which sits above all its modules.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent.parent / "pytraj"

#: A function-level import with this text in a comment beside it (or on the line above)
#: is there to keep ``import pytraj`` fast, and is left out of both checks.
SPEED_MARK = "keeps import pytraj fast"

#: The layers from the bottom up; each entry names modules or packages (a package stands
#: for every module under it not named more precisely elsewhere in the list; "pytraj"
#: itself stands for ``pytraj/__init__.py`` only, so that a new module must be placed).
LAYERS: list[tuple[str, ...]] = [
    ("pytraj.errors", "pytraj._version"),
    ("pytraj.crashpoints",),
    ("pytraj.tree.names",),
    ("pytraj.tree.annotations",),
    ("pytraj.tree.render",),
    ("pytraj.tree.shadowing",),
    ("pytraj.tree.node",),
    ("pytraj.tree",),
    ("pytraj.storage.records",),
    ("pytraj.storage.explored",),
    ("pytraj.storage.valuecodec_base",),
    ("pytraj.storage.valuecodec_registry",),
    ("pytraj.storage.valuecodec",),
    ("pytraj.storage.valuecodec_pandas", "pytraj.storage.valuecodec_sparse"),
    ("pytraj.storage.recordformat",),
    ("pytraj.storage.recordslots",),
    ("pytraj.storage.runbatch",),
    ("pytraj.storage.recorddecode",),
    ("pytraj.storage.recordcodec",),
    ("pytraj.storage.interface",),
    ("pytraj.storage.memory",),
    ("pytraj.storage.hdf5.layout", "pytraj.storage.hdf5.options"),
    ("pytraj.storage.hdf5.sizes",),
    ("pytraj.storage.hdf5.writeguard",),
    ("pytraj.storage.hdf5.journal_format",),
    ("pytraj.storage.hdf5.journal",),
    ("pytraj.storage.hdf5.damage",),
    ("pytraj.storage.hdf5.files",),
    ("pytraj.storage.hdf5.codecs",),
    ("pytraj.storage.hdf5.columns",),
    ("pytraj.storage.hdf5.cells",),
    ("pytraj.storage.hdf5.buffering",),
    ("pytraj.storage.hdf5.samedefinition",),
    ("pytraj.storage.hdf5.skeletonnode",),
    ("pytraj.storage.hdf5.definitions",),
    ("pytraj.storage.hdf5.skeleton",),
    ("pytraj.storage.hdf5.runs",),
    ("pytraj.storage.hdf5.groups",),
    ("pytraj.storage.hdf5.store",),
    ("pytraj.storage.hdf5.recovery",),
    ("pytraj.storage.hdf5.writer",),
    ("pytraj.storage.hdf5.backend",),
    ("pytraj.storage.hdf5.overlay",),
    ("pytraj.storage.hdf5.inspect",),
    ("pytraj.storage.hdf5",),
    ("pytraj.storage",),
    ("pytraj.leaves.values",),
    ("pytraj.leaves.base",),
    ("pytraj.leaves.parameter", "pytraj.leaves.result"),
    ("pytraj.leaves",),
    ("pytraj.trajectory",),
    ("pytraj.io",),
    ("pytraj.run",),
    ("pytraj.report",),
    ("pytraj",),
    ("pytraj.cli", "pytraj.compat"),
    ("pytraj.testing", "pytraj.__main__"),
]


@dataclass(frozen=True)
class Import:
    """One import of a pytraj module by another."""

    source: str
    target: str
    line: int
    kind: str  # "module", "function", "type-checking" or "lazy"


def module_names(root: pathlib.Path = PACKAGE_ROOT) -> dict[str, pathlib.Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "pytraj"]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    if base.split(".")[0] != "pytraj":
        return []
    # "from package import name" imports a submodule when one has that name.
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
    ]


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _import_nodes(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    def walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, kind
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), "type-checking")
                for statement in child.orelse:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), kind)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, "type-checking" if kind == "type-checking" else "function")
            else:
                yield from walk(child, kind)

    yield from walk(tree, "module")


def _marked_fast(lines: list[str], node: ast.stmt) -> bool:
    end = node.end_lineno or node.lineno
    nearby = lines[max(node.lineno - 2, 0) : end]
    return any(SPEED_MARK in line for line in nearby)


def read_imports(root: pathlib.Path = PACKAGE_ROOT) -> list[Import]:
    """Every import of a pytraj module inside the package."""
    modules = module_names(root)
    known = set(modules)
    found = []
    for module, path in modules.items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        is_package = path.name == "__init__.py"
        for node, kind in _import_nodes(ast.parse(source)):
            lazy = kind == "function" and _marked_fast(lines, node)
            for target in _targets(node, module, is_package, known):
                if target != module:
                    found.append(Import(module, target, node.lineno, "lazy" if lazy else kind))
    return found


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of the most precise entry naming ``module``."""
    best, best_length = -1, -1
    for index, entry in enumerate(LAYERS):
        for name in entry:
            below = name != "pytraj" and module.startswith(name + ".")
            if (module == name or below) and len(name) > best_length:
                best, best_length = index, len(name)
    if best < 0:
        raise AssertionError(f"module {module} is in no layer of LAYERS; add it there")
    return best


def upward_imports(imports: Iterable[Import]) -> list[Import]:
    """Imports of a higher layer (lazy ones excepted)."""
    return [
        edge
        for edge in imports
        if edge.kind != "lazy" and layer_of(edge.target) > layer_of(edge.source)
    ]


def find_cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(groups)


def runtime_edges(imports: Iterable[Import]) -> set[tuple[str, str]]:
    """The imports that run and can form a cycle (not lazy, not for type checking)."""
    return {(edge.source, edge.target) for edge in imports if edge.kind in ("module", "function")}


def _describe_cycle(group: list[str], edges: set[tuple[str, str]]) -> str:
    members = set(group)
    inside = sorted(f"    {s} -> {t}" for s, t in edges if s in members and t in members)
    return "cycle among " + ", ".join(group) + ":\n" + "\n".join(inside)


# -- the checks ------------------------------------------------------------------------------


def test_every_module_has_a_layer() -> None:
    assert layer_of("pytraj.storage.hdf5.files") < layer_of("pytraj.storage.hdf5.backend")
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("pytraj.unplaced")
    unplaced = []
    for module in module_names():
        try:
            layer_of(module)
        except AssertionError:
            unplaced.append(module)
    assert unplaced == []


def test_imports_only_go_down() -> None:
    upward = upward_imports(read_imports())
    report = sorted(
        {f"{edge.source}:{edge.line} imports {edge.target} ({edge.kind})" for edge in upward}
    )
    assert report == [], "imports of a higher layer:\n" + "\n".join(report)


def test_no_import_cycle() -> None:
    edges = runtime_edges(read_imports())
    cycles = find_cycles(edges)
    assert cycles == [], "\n".join(_describe_cycle(group, edges) for group in cycles)


# -- the checker itself ----------------------------------------------------------------------


def test_find_cycles_finds_a_synthetic_cycle_and_nothing_in_a_chain() -> None:
    chain = [("a", "b"), ("b", "c")]
    assert find_cycles(chain) == []
    assert find_cycles([*chain, ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]
    assert find_cycles([("x", "y"), ("y", "x"), ("p", "q"), ("q", "p")]) == [["p", "q"], ["x", "y"]]


def test_read_imports_classifies_and_marks(tmp_path: pathlib.Path) -> None:
    package = tmp_path / "pytraj"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from pytraj.low import b\n"
        "if TYPE_CHECKING:\n"
        "    from pytraj.high import c\n"
        "def f():\n"
        "    from . import b\n"
        "    # keeps import pytraj fast\n"
        "    from pytraj.high.c import thing\n"
    )
    (package / "low" / "b.py").write_text("def g():\n    from pytraj.low.a import f\n")
    (package / "high").mkdir()
    (package / "high" / "__init__.py").write_text("from pytraj.high.c import thing\n")
    (package / "high" / "c.py").write_text("thing = 1\n")
    imports = read_imports(package)
    kinds = sorted((edge.source, edge.target, edge.kind) for edge in imports)
    assert kinds == [
        ("pytraj.high", "pytraj.high.c", "module"),
        ("pytraj.low.a", "pytraj.high.c", "lazy"),
        ("pytraj.low.a", "pytraj.high.c", "type-checking"),
        ("pytraj.low.a", "pytraj.low.b", "function"),
        ("pytraj.low.a", "pytraj.low.b", "module"),
        ("pytraj.low.b", "pytraj.low.a", "function"),
    ]
    # The function-level import back from b is a cycle; the other two kinds are not.
    assert find_cycles(runtime_edges(imports)) == [["pytraj.low.a", "pytraj.low.b"]]
