"""No module reads or writes another class's private attributes.

An ``ast`` scan of ``pytraj/``: ``other._name`` (any receiver but ``self`` / ``cls``) is an
offence unless a class of the same module defines ``_name`` (its own module may reach into
another instance of it) or an allow-list below names it with the reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytraj"

#: Private-looking names that are public by their owners' convention.
ALLOWED_NAMES = {
    "_getframe": "sys._getframe: the standard way to read the caller's frame",
    "_exit": "os._exit: leave a forked child without running the parent's cleanup",
    "_replace": "namedtuple API",
    "_asdict": "namedtuple API",
    "_fields": "namedtuple API",
    "_repr_html_": "IPython's display protocol",
    "_ipython_key_completions_": "IPython's completion protocol",
}

#: PyTables' public-by-convention attribute families (``node._v_attrs``, ``_f_get_child``).
ALLOWED_PREFIXES = ("_v_", "_f_", "_g_", "_c_")


@dataclass(frozen=True)
class Access:
    module: str
    line: int
    text: str
    name: str

    def __str__(self) -> str:
        return f"pytraj/{self.module}:{self.line}: {self.text}"


def _own_private_names(tree: ast.Module) -> set[str]:
    """Private names the module's classes define: methods, slots, ``self._x``, class fields."""
    names: set[str] = set()
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        for node in ast.walk(cls):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in ("self", "cls"):
                    names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        names.add(target.id)
                        if target.id == "__slots__" and isinstance(node.value, ast.Tuple):
                            names.update(
                                str(e.value) for e in node.value.elts if isinstance(e, ast.Constant)
                            )
    return {name for name in names if name.startswith("_")}


def _is_allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def _inside_methods(tree: ast.Module) -> set[int]:
    """Ids of the nodes inside a class's methods, where ``self`` / ``cls`` is that class."""
    inside: set[int] = set()
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        for method in cls.body:
            if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                inside.update(id(node) for node in ast.walk(method))
    return inside


def foreign_private_accesses(package: Path = PACKAGE) -> list[Access]:
    """Every ``other._name`` in ``package`` that its module's classes do not own.

    ``self._name`` and ``cls._name`` count as the class's own only inside its methods: a
    module-level function calling its argument ``cls`` is checked like any other.
    """
    found = []
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = _own_private_names(tree)
        methods = _inside_methods(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            name = node.attr
            if not name.startswith("_") or name.startswith("__") or name in own:
                continue
            receiver = node.value
            by_owner = isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
            if by_owner and id(node) in methods:
                continue
            if _is_allowed(name):
                continue
            found.append(Access(module, node.lineno, ast.unparse(node), name))
    return found


def test_no_module_touches_another_class_private_attributes() -> None:
    offences = foreign_private_accesses()
    listing = "\n".join(map(str, offences))
    assert not offences, (
        f"{len(offences)} reads or writes of another class's private attributes "
        f"(give the owner a public name, or allow-list it with the reason):\n{listing}"
    )


def test_the_scan_finds_a_planted_offence(tmp_path: Path) -> None:
    (tmp_path / "planted.py").write_text(
        "import os, sys\n"
        "class Mine:\n"
        "    def __init__(self, other):\n"
        "        self._own = 1\n"
        "        other._own = 2\n"
        "def peek(traj, node):\n"
        "    sys._getframe(0); node._v_attrs\n"
        "    return traj._active_run\n"
        "def build(cls):\n"
        "    return cls._restore()\n"
    )
    found = foreign_private_accesses(tmp_path)
    assert [(a.module, a.line, a.text) for a in found] == [
        ("planted.py", 8, "traj._active_run"),
        ("planted.py", 10, "cls._restore"),
    ]
