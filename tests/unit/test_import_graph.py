"""The import graph: no cycle among the core's modules, and no plugin module imported by the core,
the functions or the CLI (they reach types through ``webbugger.plugins`` / ``webbugger.registry``,
so the built-in plugins are as replaceable as anyone's).

Every import statement counts: at module level, inside functions (lazy imports), and under
``if TYPE_CHECKING:``. A lazy or type-only import is still a dependency a reader has to follow,
and a cycle hidden that way is a cycle all the same. Read from the source with :mod:`ast`, so
nothing is imported (and the functions, loaded by file like Lambda does, are covered too).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "core"
PLUGIN_PACKAGE = "webbugger_plugins"
# Where no plugin module may be imported.
NO_PLUGIN_IMPORTS = (ROOT / "layers" / "core" / "webbugger", ROOT / "functions", ROOT / "cli")
# Packages whose modules must not import each other in a circle, and the directory holding each.
ACYCLIC = (
    (CORE, "webbugger"),
    (ROOT / "cli", "webbugger_cli"),
    (ROOT / "functions" / "admin", "admin_api"),
)


def _module_name(root: Path, file: Path) -> str:
    parts = list(file.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(file: Path, module: str) -> Iterator[tuple[int, str, str | None]]:
    """``(line, module, name)`` of every import in ``file`` (the module ``module``), wherever the
    statement is: ``import a.b`` gives ``(n, "a.b", None)``, ``from a import b`` ``(n, "a", "b")``
    (``a.b`` may be a module or a name in ``a``); relative imports are resolved."""
    tree = ast.parse(file.read_text(), filename=str(file))
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, base, alias.name


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """The modules of ``package`` (under ``root``) and, for each, the package's modules it imports."""
    files = {_module_name(root, file): file for file in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, file in files.items():
        targets = set()
        for _, name, attribute in imported_names(file, module):
            submodule = f"{name}.{attribute}"
            target = submodule if attribute is not None and submodule in files else name
            if target in files and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def plugin_imports(directories: Iterable[Path], plugin_package: str = PLUGIN_PACKAGE) -> list[str]:
    """``file:line: name`` of every import of ``plugin_package`` (or a module in it) under ``directories``."""
    found: dict[str, str] = {}  # one entry per statement: the module it imports from
    for directory in directories:
        for file in sorted(directory.rglob("*.py")):
            module = _module_name(directory.parent, file)
            for line, name, _ in imported_names(file, module):
                if name == plugin_package or name.startswith(f"{plugin_package}."):
                    found.setdefault(f"{file.relative_to(directory.parent)}:{line}", name)
    return [f"{where}: {name}" for where, name in sorted(found.items())]


# --- the project ---------------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    for root, package in ACYCLIC:
        graph = import_graph(root, package)
        assert len(graph) > 3, f"{package} not found under {root}"
        assert cycles(graph) == [], f"modules of {package} import each other in a circle"


def test_no_plugin_module_is_imported_by_the_core_the_functions_or_the_cli() -> None:
    assert plugin_imports(NO_PLUGIN_IMPORTS) == []


# --- the check itself ----------------------------------------------------------------------------


def _package(root: Path, modules: dict[str, str]) -> Path:
    for name, text in modules.items():
        file = root / f"{name.replace('.', '/')}.py"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    return root


def test_the_check_finds_cycles_made_by_lazy_type_only_and_relative_imports(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "pkg.__init__": "",
            "pkg.models": "def bind():\n    from pkg.counters import Counter\n",  # lazy
            "pkg.counters": "from pkg.models import bind\nfrom typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pkg.classify import Verdict\n",  # type-only
            "pkg.classify": "from . import counters\n",  # relative
            "pkg.leaf": "import pkg.models\nfrom pkg import refs\n",
            "pkg.refs": "import json\n",
        },
    )
    graph = import_graph(root, "pkg")
    assert graph["pkg.leaf"] == {"pkg.models", "pkg.refs"}
    assert cycles(graph) == [["pkg.classify", "pkg.counters", "pkg.models"]]
    # Break both edges back to counters: no cycle is left.
    (root / "pkg" / "models.py").write_text("def bind():\n    pass\n")
    (root / "pkg" / "classify.py").write_text("import json\n")
    assert cycles(import_graph(root, "pkg")) == []


def test_the_check_finds_a_plugin_module_imported_anywhere(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "core.__init__": "",
            "core.clean": "from core.plugins import PluginTypes\n",
            "core.direct": "from webbugger_plugins.link import create_link\n",
            "core.lazy": "def f():\n    from webbugger_plugins import url\n",
            "core.whole": "import webbugger_plugins\n",
            "core.lookalike": "import webbugger_plugins_extra\n",
        },
    )
    assert plugin_imports([root / "core"]) == [
        "core/direct.py:1: webbugger_plugins.link",
        "core/lazy.py:2: webbugger_plugins",
        "core/whole.py:1: webbugger_plugins",
    ]


def test_the_check_fails_on_the_core_with_a_cycle_or_a_plugin_import_put_back(tmp_path: Path) -> None:
    core = tmp_path / "webbugger"
    shutil.copytree(CORE / "webbugger", core, ignore=shutil.ignore_patterns("__pycache__", "data"))
    assert cycles(import_graph(tmp_path, "webbugger")) == []
    # What bind_core_models did before it moved to runtime: a lazy import back from models.
    with (core / "models.py").open("a") as models:
        models.write("\n\ndef _bind_counters() -> None:\n    from webbugger.counters import Counter\n")
    assert cycles(import_graph(tmp_path, "webbugger")) == [["webbugger.counters", "webbugger.models"]]
    with (core / "erase.py").open("a") as erase:
        erase.write("\nif TYPE_CHECKING:\n    from webbugger_plugins.link import Link\n")
    assert [line.split(": ")[1] for line in plugin_imports([core])] == ["webbugger_plugins.link"]
