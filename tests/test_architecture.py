"""The import graph points down, and no app imports itself in a circle.

The layers, bottom to top: ``opsconsole`` (settings, urls, celery wiring,
and the facilities every app uses: errors, crypto, auth, redaction, local
services), ``cpi`` (the IaaS contract, no Django), ``director`` (the
BOSH-style director), ``tiles`` (products and Apply Changes) and
``console`` (users, backup, the local stack launcher). Each module's source
is parsed with ``ast``; every ``import`` and ``from ... import``, at the
top or inside a function, is an edge to the longest module of ours it
names (``from director import models`` is ``director.models``). Migrations
are left out: they are history, frozen as written.

An import inside a function hides an edge from whoever reads the top of
the module, so each one says why on its line or the line above (a comment
above a run of imports covers the run).
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Bottom to top.
APPS = ("opsconsole", "cpi", "director", "tiles", "console")

#: The only opsconsole modules that may import an app: they wire the project together.
WIRING = frozenset({"opsconsole.urls", "opsconsole.settings", "opsconsole.celery"})

#: Django and the packages built on it: the CPI runs without any of them (``python -m cpi``).
DJANGO = frozenset({"django", "rest_framework", "drf_spectacular", "django_htmx", "celery"})

#: What each app must not import (by top-level package), whatever the module.
FORBIDDEN = {
    "cpi": DJANGO | {"opsconsole", "director", "tiles", "console"},
    "director": frozenset({"tiles", "console"}),
    "tiles": frozenset({"console"}),
    "opsconsole": frozenset({"cpi", "director", "tiles", "console"}),
}


@dataclass(frozen=True)
class Edge:
    source: str  # the importing module
    target: str  # the module of ours it names, or the top-level name of a foreign one
    line: int
    inner: bool  # inside a function body

    def __str__(self) -> str:
        where = "in a function" if self.inner else "at module level"
        return f"{self.source} -> {self.target}  (line {self.line}, {where})"


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: list[Edge]
    #: Imports inside functions with no comment saying why: (module, line, statement).
    unexplained: list[tuple[str, int, str]]

    def app_of(self, module: str) -> str:
        return module.split(".")[0]


def module_files(root: Path, apps: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of ``apps`` except migrations."""
    found = {}
    for app in apps:
        for path in sorted((root / app).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts or "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known) -> list[str]:
    """The modules an import statement names: ours as the longest known module, others by top."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([node.module] if node.module else []))
        # ``from director import models`` names the module ``director.models``.
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        parts = name.split(".")
        while len(parts) > 1 and ".".join(parts) not in known:
            parts.pop()
        out.append(".".join(parts))
    return sorted(set(out))


_PRAGMA = re.compile(
    r"^(noqa(:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(\[[^\]]*\])?)"
)


def _reasons(source: str) -> dict[int, str]:
    """Line -> the comment on it, when the comment says something beyond a lint pragma."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = _PRAGMA.sub("", tok.string.lstrip("#").strip()).strip(" -:()")
            if re.search(r"[A-Za-z]{2}", text):
                out[tok.start[0]] = text
    return out


def _statement_lists(node: ast.AST):
    """Every list of statements directly under ``node`` (bodies, else, finally, handlers)."""
    for name in ("body", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            yield value
    for handler in getattr(node, "handlers", ()):
        yield handler.body
    for case in getattr(node, "cases", ()):
        yield case.body


def _explained(body: list[ast.stmt], i: int, lines: list[str], reasons: dict[int, str]) -> bool:
    """A comment on the import's lines, on the line above, or above the run of imports it is in."""
    node = body[i]
    if any(line in reasons for line in range(node.lineno, node.end_lineno + 1)):
        return True
    above = node.lineno - 1
    if above in reasons and lines[above - 1].strip().startswith("#"):
        return True
    if i > 0 and isinstance(body[i - 1], ast.Import | ast.ImportFrom):
        between = lines[body[i - 1].end_lineno : node.lineno - 1]
        if all(not text.strip() for text in between):
            return _explained(body, i - 1, lines, reasons)
    return False


def _module_imports(module: str, path: Path, known) -> tuple[list[Edge], list]:
    """The import edges of one module, and its imports inside functions that say not why."""
    source = path.read_text()
    lines = source.splitlines()
    reasons = _reasons(source)
    is_package = path.name == "__init__.py"
    edges: list[Edge] = []
    unexplained: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, inner: bool) -> None:
        for body in _statement_lists(node):
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.Import | ast.ImportFrom):
                    for target in _targets(stmt, module, is_package, known):
                        edges.append(Edge(module, target, stmt.lineno, inner))
                    if inner and not _explained(body, i, lines, reasons):
                        text = " ".join(lines[stmt.lineno - 1 : stmt.end_lineno])
                        unexplained.append((module, stmt.lineno, " ".join(text.split())))
                visit(stmt, inner or isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(ast.parse(source, filename=str(path)), inner=False)
    return edges, unexplained


def import_graph(root: Path = ROOT, apps: tuple[str, ...] = APPS) -> Graph:
    modules = module_files(root, apps)
    graph = Graph(modules, [], [])
    for module, path in modules.items():
        edges, unexplained = _module_imports(module, path, modules)
        graph.edges.extend(edges)
        graph.unexplained.extend(unexplained)
    return graph


def wrong_way(graph: Graph) -> list[Edge]:
    """Edges that point up or sideways across apps."""
    bad = []
    for edge in graph.edges:
        app = graph.app_of(edge.source)
        if app == "opsconsole" and edge.source in WIRING:
            continue
        if edge.target.split(".")[0] in FORBIDDEN.get(app, ()):
            bad.append(edge)
    return bad


def cycles(graph: Graph, module_level_only: bool) -> list[list[str]]:
    """Strongly connected components (more than one module) of each app's own import graph."""
    succ: dict[str, set[str]] = defaultdict(set)
    for edge in graph.edges:
        if module_level_only and edge.inner:
            continue
        same_app = graph.app_of(edge.source) == graph.app_of(edge.target)
        if same_app and edge.target in graph.modules and edge.target != edge.source:
            succ[edge.source].add(edge.target)
    # Tarjan's algorithm, iterative (the graph is deep enough to matter for recursion).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(succ[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(succ[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def _describe_cycles(graph: Graph, components: list[list[str]], module_level_only: bool) -> str:
    out = []
    for component in components:
        members = set(component)
        inside = sorted(
            str(e)
            for e in graph.edges
            if e.source in members
            and e.target in members
            and e.source != e.target
            and not (module_level_only and e.inner)
        )
        out.append(f"{len(component)} modules: {', '.join(component)}")
        out.extend(f"    {edge}" for edge in inside)
    return "\n".join(out)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph()


def _fail_on(edges: list[Edge], what: str) -> None:
    assert not edges, f"{len(edges)} {what}:\n" + "\n".join(
        f"  {e}" for e in sorted(edges, key=str)
    )


def test_the_graph_sees_every_app(graph):
    assert {graph.app_of(m) for m in graph.modules} == set(APPS)
    assert ("console.backup.installation", "director.events") in {
        (e.source, e.target) for e in graph.edges
    }


def test_cpi_imports_neither_django_nor_an_app(graph):
    _fail_on([e for e in wrong_way(graph) if e.source.startswith("cpi")], "imports from cpi")


def test_director_never_imports_tiles_or_console(graph):
    bad = [e for e in wrong_way(graph) if e.source.startswith("director")]
    _fail_on(bad, "imports from director up to tiles or console")


def test_tiles_never_imports_console(graph):
    _fail_on([e for e in wrong_way(graph) if e.source.startswith("tiles")], "imports of console")


def test_opsconsole_imports_apps_only_in_wiring(graph):
    bad = [e for e in wrong_way(graph) if e.source.startswith("opsconsole")]
    _fail_on(bad, f"app imports from opsconsole outside {', '.join(sorted(WIRING))}")


def test_no_cycle_inside_an_app_at_module_level(graph):
    components = cycles(graph, module_level_only=True)
    assert not components, "import cycles (module-level imports):\n" + _describe_cycles(
        graph, components, True
    )


def test_no_cycle_inside_an_app_counting_imports_in_functions(graph):
    components = cycles(graph, module_level_only=False)
    assert not components, "import cycles (all imports):\n" + _describe_cycles(
        graph, components, False
    )


def test_imports_inside_functions_say_why(graph):
    found = graph.unexplained
    assert not found, f"{len(found)} imports inside functions without a comment saying why:\n" + (
        "\n".join(f"  {module}:{line}  {text}" for module, line, text in sorted(found))
    )


# ------------------------------------------------------------- the checks themselves


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_checks_find_what_they_are_for(tmp_path):
    """A small project with each fault once: the checks name every one, and nothing else."""
    _write(
        tmp_path,
        {
            "opsconsole/__init__.py": "",
            "opsconsole/urls.py": "from tiles import views\n",
            "opsconsole/auth.py": "def who():\n    # cycle: director imports us\n"
            "    from director.models import Task\n",
            "cpi/__init__.py": "",
            "cpi/base.py": "import django.conf\n",
            "director/__init__.py": "",
            "director/models.py": "from . import runner\n",
            "director/runner.py": "def run():\n    from .models import Task  # noqa: F401\n",
            "director/migrations/0001_initial.py": "from tiles import models\n",
            "tiles/__init__.py": "",
            "tiles/views.py": "from director.models import Task\nfrom console import users\n",
            "tiles/a.py": "from .b import x\n",
            "tiles/b.py": "from tiles import a\n",
            "console/__init__.py": "",
            "console/users.py": "def ready():\n    # registry: loads models\n"
            "    from tiles import views\n\n    from director import models\n",
        },
    )
    graph = import_graph(tmp_path)
    assert "director.migrations.0001_initial" not in graph.modules
    assert sorted(str(e) for e in wrong_way(graph)) == [
        "cpi.base -> django  (line 1, at module level)",
        "opsconsole.auth -> director.models  (line 3, in a function)",
        "tiles.views -> console.users  (line 2, at module level)",
    ]
    assert cycles(graph, module_level_only=True) == [["tiles.a", "tiles.b"]]
    assert cycles(graph, module_level_only=False) == [
        ["director.models", "director.runner"],
        ["tiles.a", "tiles.b"],
    ]
    # A bare lint pragma says nothing; a comment above a run of imports covers the run.
    assert graph.unexplained == [("director.runner", 2, "from .models import Task # noqa: F401")]
